//! One telemetry crate for every tilewave process (docs/design.md, "Code layout").
//!
//! - [`init`] sets up logging (JSON lines on stderr carrying the current
//!   `trace_id` and `span_id`), OpenTelemetry spans and the W3C propagator,
//!   and returns a [`Guard`] that flushes the last batch of spans on drop.
//!   Span export is OTLP/gRPC and is configured only by the standard
//!   `OTEL_*` variables; without an endpoint nothing is exported, but trace
//!   ids are still made and propagated so they flow through this process.
//! - [`server_layer`] and [`traced_channel`] put W3C trace context on every
//!   gRPC hop and open one span per RPC with the OpenTelemetry RPC semantic
//!   conventions; the server layer also records the RPC metrics.
//! - [`Metrics`] and [`serve_metrics`] are the Prometheus side.
//! - [`current_origin`] and [`span_linked_to`] let long-running work keep a
//!   link back to the request that started it.
//! - `receiver` (feature `receiver`) is an in-process OTLP collector for
//!   tests.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod context;
mod context_gen;
mod grpc;
mod layer;
mod log;
mod metrics;
mod origin;
mod pipeline;
#[cfg(feature = "receiver")]
pub mod receiver;

pub use grpc::{
    ClientLayer, ResponseFuture, ServerLayer, Traced, TracedBody, TracedChannel, client_layer, server_layer,
    traced_channel,
};
pub use metrics::{Metrics, serve_metrics};
pub use origin::{
    current_origin, link_to_origin, origin_of, span_context_of, span_linked_to, trace_id_of_current,
};
pub use pipeline::{
    Config, DEFAULT_LOG_FILTER, Guard, LogFormat, Pipeline, Sampling, init, init_for_cli, init_with,
};

/// What can go wrong while setting telemetry up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The OTLP exporter could not be built from the configuration.
    #[error("building the OTLP span exporter for {endpoint}: {source}")]
    Exporter {
        /// The endpoint it was built for.
        endpoint: String,
        /// Why it failed.
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
    /// An OTLP endpoint is configured but there is no tokio runtime to run
    /// the exporter's channel on.
    #[error("span export needs a tokio runtime: set telemetry up inside it")]
    NoRuntime,
    /// A global subscriber was already installed in this process.
    #[error("installing the global tracing subscriber: {0}")]
    Subscriber(#[from] tracing_subscriber::util::TryInitError),
    /// `RUST_LOG` does not parse as a filter.
    #[error("RUST_LOG is not a valid filter: {0}")]
    Filter(#[from] tracing_subscriber::filter::ParseError),
    /// Flushing or shutting down the tracer provider failed.
    #[error("shutting the tracer provider down: {0}")]
    Shutdown(#[from] opentelemetry_sdk::error::OTelSdkError),
}

/// This crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;
