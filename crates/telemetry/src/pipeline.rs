//! Setting telemetry up: configuration from the standard `OTEL_*` variables
//! and `RUST_LOG`, the tracer provider (with a batch OTLP exporter only when
//! an endpoint is configured), the subscriber, and the [`Guard`] that flushes
//! the last batch of spans.
//!
//! Services call [`init`]; the CLI calls [`init_for_cli`]. Tests build a
//! [`Pipeline`] from a [`Config`] they make themselves and install its
//! [`Pipeline::subscriber`] with `tracing::subscriber::set_default`, so that
//! tests in one process never fight over the global subscriber or the
//! environment.

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};
use tracing::Subscriber;
use tracing_subscriber::filter::EnvFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{Layer, Registry};

use crate::context_gen::ContextGen;
use crate::layer::{LocalLayer, LogFilter};
use crate::{Error, Result};

/// The level logs default to when `RUST_LOG` is unset.
pub const DEFAULT_LOG_FILTER: &str = "info";

/// How long shutting the provider down may wait for the last export.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// The instrumentation scope our spans are reported under.
const TRACER_NAME: &str = "tilewave";

/// Which spans are sampled, from `OTEL_TRACES_SAMPLER` and
/// `OTEL_TRACES_SAMPLER_ARG` (the OpenTelemetry SDK specification's names).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Sampling {
    /// `always_on`.
    AlwaysOn,
    /// `always_off`.
    AlwaysOff,
    /// `traceidratio` with its ratio.
    TraceIdRatio(f64),
    /// `parentbased_always_on`: the default.
    #[default]
    ParentBasedAlwaysOn,
    /// `parentbased_always_off`.
    ParentBasedAlwaysOff,
    /// `parentbased_traceidratio` with its ratio.
    ParentBasedTraceIdRatio(f64),
}

impl Sampling {
    /// Reads the sampler the way the specification says: an unknown name
    /// falls back to the default, a missing or bad ratio to 1.0.
    pub fn from_env_values(sampler: Option<&str>, arg: Option<&str>) -> Self {
        let ratio = || {
            arg.and_then(|a| a.trim().parse::<f64>().ok())
                .filter(|r| (0.0..=1.0).contains(r))
                .unwrap_or(1.0)
        };
        match sampler.map(str::trim) {
            Some("always_on") => Sampling::AlwaysOn,
            Some("always_off") => Sampling::AlwaysOff,
            Some("traceidratio") => Sampling::TraceIdRatio(ratio()),
            Some("parentbased_always_off") => Sampling::ParentBasedAlwaysOff,
            Some("parentbased_traceidratio") => Sampling::ParentBasedTraceIdRatio(ratio()),
            _ => Sampling::ParentBasedAlwaysOn,
        }
    }

    pub(crate) fn to_sampler(self) -> Sampler {
        match self {
            Sampling::AlwaysOn => Sampler::AlwaysOn,
            Sampling::AlwaysOff => Sampler::AlwaysOff,
            Sampling::TraceIdRatio(r) => Sampler::TraceIdRatioBased(r),
            Sampling::ParentBasedAlwaysOn => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
            Sampling::ParentBasedAlwaysOff => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
            Sampling::ParentBasedTraceIdRatio(r) => {
                Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(r)))
            }
        }
    }
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line with `trace_id` and `span_id`: services.
    Json,
    /// Human-readable single lines: the CLI with `-v`.
    Compact,
    /// No logs at all: the CLI by default.
    Off,
}

/// Everything telemetry needs, read from the environment by
/// [`Config::from_env`].
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `service.name` of exported spans: `OTEL_SERVICE_NAME`, else the name
    /// the process passed in.
    pub service_name: String,
    /// Where spans go: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`. `None` means no exporter at all.
    pub otlp_endpoint: Option<String>,
    /// Which spans are sampled.
    pub sampling: Sampling,
    /// The log filter directives (`RUST_LOG`, else [`DEFAULT_LOG_FILTER`]).
    pub log_filter: String,
    /// How logs are written.
    pub log_format: LogFormat,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env(service: &str) -> Self {
        Self::from_lookup(service, |key| std::env::var(key).ok())
    }

    /// Reads configuration through `lookup` (the environment in
    /// production, a map in tests). Empty values count as unset.
    pub fn from_lookup(service: &str, lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |key: &str| lookup(key).filter(|v| !v.trim().is_empty());
        Config {
            service_name: get("OTEL_SERVICE_NAME").unwrap_or_else(|| service.to_owned()),
            otlp_endpoint: get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                .or_else(|| get("OTEL_EXPORTER_OTLP_ENDPOINT")),
            sampling: Sampling::from_env_values(
                get("OTEL_TRACES_SAMPLER").as_deref(),
                get("OTEL_TRACES_SAMPLER_ARG").as_deref(),
            ),
            log_filter: get("RUST_LOG").unwrap_or_else(|| DEFAULT_LOG_FILTER.to_owned()),
            log_format: LogFormat::Json,
        }
    }
}

/// A tracer provider built from a [`Config`]: the OpenTelemetry half of
/// telemetry, without anything global.
#[derive(Debug, Clone)]
pub struct Pipeline {
    provider: SdkTracerProvider,
    exporting: bool,
    sampling: Sampling,
}

impl Pipeline {
    /// Builds the provider. With an endpoint, spans go to a batch exporter
    /// (its own thread; a request never waits on it), which must be built
    /// inside a tokio runtime. Without one there is no exporter and no
    /// processor: spans still get ids so that trace context flows, and are
    /// dropped when they end.
    pub fn new(config: &Config) -> Result<Self> {
        let resource = Resource::builder()
            .with_service_name(config.service_name.clone())
            .with_attribute(KeyValue::new("service.namespace", "tilewave"))
            .build();
        let mut builder = SdkTracerProvider::builder()
            .with_resource(resource)
            .with_sampler(config.sampling.to_sampler());
        let exporting = match &config.otlp_endpoint {
            Some(endpoint) => {
                if tokio::runtime::Handle::try_current().is_err() {
                    return Err(Error::NoRuntime);
                }
                let exporter = opentelemetry_otlp::SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(endpoint.clone())
                    .build()
                    .map_err(|source| Error::Exporter {
                        endpoint: endpoint.clone(),
                        source,
                    })?;
                builder = builder.with_batch_exporter(exporter);
                true
            }
            None => false,
        };
        Ok(Pipeline {
            provider: builder.build(),
            exporting,
            sampling: config.sampling,
        })
    }

    /// Whether spans are exported anywhere.
    pub fn exports(&self) -> bool {
        self.exporting
    }

    /// The provider, for flushing in tests.
    pub fn provider(&self) -> &SdkTracerProvider {
        &self.provider
    }

    /// A tracer of this provider.
    pub fn tracer(&self) -> SdkTracer {
        self.provider.tracer(TRACER_NAME)
    }

    /// The `tracing` layer that turns spans at INFO and above into
    /// OpenTelemetry spans, independent of the log filter, so that turning
    /// logs down never breaks traces.
    pub fn otel_layer<S>(&self) -> impl Layer<S> + Send + Sync + 'static + use<S>
    where
        S: Subscriber + for<'span> LookupSpan<'span> + Send + Sync,
    {
        tracing_opentelemetry::layer()
            .with_tracer(self.tracer())
            .with_threads(false)
            .with_tracked_inactivity(false)
            .with_filter(crate::layer::span_targets())
    }

    /// The layers for `logs`: OpenTelemetry's when spans are exported, and
    /// the [`LocalLayer`], which then only writes logs, and otherwise also
    /// gives spans a W3C context of their own (ids and the sampled flag), so
    /// that trace context still flows and logs still carry ids, at a fraction
    /// of the cost of SDK spans that would be dropped unread.
    fn layers(
        &self,
        logs: LogFilter,
        json: Option<BoxMakeWriter>,
    ) -> Vec<Box<dyn Layer<Registry> + Send + Sync>> {
        let mut layers: Vec<Box<dyn Layer<Registry> + Send + Sync>> = Vec::with_capacity(3);
        let context = if self.exporting {
            layers.push(self.otel_layer().boxed());
            None
        } else {
            Some(ContextGen::new(self.sampling))
        };
        if context.is_some() || !matches!(logs, LogFilter::Off) {
            layers.push(LocalLayer::new(context, logs, json).boxed());
        }
        layers
    }

    /// A subscriber with this pipeline's spans and no logs, for
    /// `tracing::subscriber::set_default` in tests and benchmarks.
    pub fn subscriber(&self) -> impl Subscriber + Send + Sync + 'static + use<> {
        Registry::default().with(self.layers(LogFilter::Off, None))
    }

    /// Exports every finished span now.
    pub fn force_flush(&self) -> Result<()> {
        Ok(self.provider.force_flush()?)
    }

    /// The subscriber [`init_with`] installs: this pipeline's spans plus
    /// logs on stderr as `config` says. For benchmarks and tests that want
    /// exactly a service's set-up without installing it globally.
    pub fn full_subscriber(
        &self,
        config: &Config,
    ) -> Result<impl Subscriber + Send + Sync + 'static + use<>> {
        self.subscriber_with_writer(config, BoxMakeWriter::new(std::io::stderr))
    }

    /// [`Pipeline::full_subscriber`] with JSON lines going to `writer`.
    pub(crate) fn subscriber_with_writer(
        &self,
        config: &Config,
        writer: BoxMakeWriter,
    ) -> Result<impl Subscriber + Send + Sync + 'static + use<>> {
        let mut layers = match config.log_format {
            LogFormat::Json => self.layers(LogFilter::parse(&config.log_filter)?, Some(writer)),
            LogFormat::Compact => {
                // The compact layer filters for itself; the local layer
                // must let through what it wants.
                let mut layers = self.layers(LogFilter::parse(&config.log_filter)?, None);
                let filter = EnvFilter::try_new(&config.log_filter)?;
                layers.push(crate::log::compact_layer().with_filter(filter).boxed());
                layers
            }
            LogFormat::Off => self.layers(LogFilter::Off, None),
        };
        layers.shrink_to_fit();
        Ok(Registry::default().with(layers))
    }

    /// Exports every finished span now, from a blocking thread so that the
    /// runtime stays free to drive the export (works on a current-thread
    /// runtime too).
    pub async fn flush(&self) -> Result<()> {
        let provider = self.provider.clone();
        match tokio::task::spawn_blocking(move || provider.force_flush()).await {
            Ok(result) => Ok(result?),
            Err(_) => Ok(()),
        }
    }

    /// Flushes and stops the exporter. Blocks up to a few seconds.
    pub fn shutdown(&self) -> Result<()> {
        Ok(self.provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT)?)
    }
}

/// Keeps telemetry running; flushes and shuts the tracer provider down when
/// dropped (or, better in `async fn main`, by [`Guard::shutdown`]), so the
/// last batch of spans is not lost.
#[derive(Debug)]
#[must_use = "dropping the guard shuts span export down"]
pub struct Guard {
    pipeline: Option<Pipeline>,
}

impl Guard {
    /// Whether spans are exported.
    pub fn exports(&self) -> bool {
        self.pipeline.as_ref().is_some_and(Pipeline::exports)
    }

    /// Flushes and shuts down on a blocking thread, leaving the runtime free
    /// to drive the exporter's last request. Call at the end of `main`.
    pub async fn shutdown(mut self) -> Result<()> {
        let Some(pipeline) = self.pipeline.take() else {
            return Ok(());
        };
        match tokio::task::spawn_blocking(move || pipeline.shutdown()).await {
            Ok(result) => result,
            // The blocking task panicked or was cancelled: nothing left to do.
            Err(_) => Ok(()),
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let Some(pipeline) = self.pipeline.take() else {
            return;
        };
        // The exporter's channel is driven by the runtime: on a multi-thread
        // runtime, let the other workers run while this one blocks. On a
        // current-thread runtime the export may time out; use
        // `Guard::shutdown().await` there.
        let result = match tokio::runtime::Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| pipeline.shutdown())
            }
            _ => pipeline.shutdown(),
        };
        if let Err(error) = result {
            eprintln!("telemetry: shutting span export down: {error}");
        }
    }
}

/// Sets telemetry up for a service named `service`: JSON logs on stderr at
/// `RUST_LOG` (default `info`), spans exported by OTLP/gRPC only when
/// `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set, and the
/// W3C TraceContext propagator. Call it inside the tokio runtime.
pub fn init(service: &str) -> Result<Guard> {
    init_with(Config::from_env(service))
}

/// Like [`init`] for the CLI: no logs unless `RUST_LOG` is set or
/// `verbosity` (`-v` count) is above zero, and human-readable when shown.
pub fn init_for_cli(service: &str, verbosity: u8) -> Result<Guard> {
    let rust_log_set = std::env::var("RUST_LOG").is_ok_and(|v| !v.trim().is_empty());
    let mut config = Config::from_env(service);
    config.log_format = LogFormat::Compact;
    if !rust_log_set {
        match verbosity {
            0 => config.log_format = LogFormat::Off,
            1 => config.log_filter = "info".to_owned(),
            2 => config.log_filter = "debug".to_owned(),
            _ => config.log_filter = "trace".to_owned(),
        }
    }
    init_with(config)
}

/// Sets telemetry up from an explicit configuration and installs it
/// globally: the subscriber, the tracer provider and the propagator.
pub fn init_with(config: Config) -> Result<Guard> {
    let pipeline = Pipeline::new(&config)?;
    pipeline.full_subscriber(&config)?.try_init()?;
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    opentelemetry::global::set_tracer_provider(pipeline.provider().clone());
    Ok(Guard {
        pipeline: Some(pipeline),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Config {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup("catalog", |k| map.get(k).cloned())
    }

    #[test]
    fn nothing_set_means_no_endpoint_and_defaults() {
        let c = config(&[]);
        assert_eq!(c.service_name, "catalog");
        assert_eq!(c.otlp_endpoint, None);
        assert_eq!(c.sampling, Sampling::ParentBasedAlwaysOn);
        assert_eq!(c.log_filter, "info");
        assert_eq!(c.log_format, LogFormat::Json);
    }

    #[test]
    fn standard_variables_are_read() {
        let c = config(&[
            ("OTEL_SERVICE_NAME", "catalog-eu"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
            ("RUST_LOG", "debug,h2=warn"),
        ]);
        assert_eq!(c.service_name, "catalog-eu");
        assert_eq!(c.otlp_endpoint.as_deref(), Some("http://collector:4317"));
        assert_eq!(c.sampling, Sampling::ParentBasedTraceIdRatio(0.25));
        assert_eq!(c.log_filter, "debug,h2=warn");
    }

    #[test]
    fn traces_endpoint_wins_and_empty_counts_as_unset() {
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4317"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:4317"),
        ]);
        assert_eq!(c.otlp_endpoint.as_deref(), Some("http://b:4317"));
        let c = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")]);
        assert_eq!(c.otlp_endpoint, None);
    }

    #[test]
    fn samplers_parse_with_fallbacks() {
        let cases = [
            (Some("always_on"), None, Sampling::AlwaysOn),
            (Some("always_off"), None, Sampling::AlwaysOff),
            (Some("traceidratio"), Some("0.5"), Sampling::TraceIdRatio(0.5)),
            (Some("traceidratio"), Some("7"), Sampling::TraceIdRatio(1.0)),
            (Some("traceidratio"), None, Sampling::TraceIdRatio(1.0)),
            (
                Some("parentbased_always_off"),
                None,
                Sampling::ParentBasedAlwaysOff,
            ),
            (Some("nonsense"), None, Sampling::ParentBasedAlwaysOn),
            (None, Some("0.1"), Sampling::ParentBasedAlwaysOn),
        ];
        for (name, arg, want) in cases {
            assert_eq!(Sampling::from_env_values(name, arg), want, "{name:?} {arg:?}");
        }
    }

    #[test]
    fn no_endpoint_builds_without_a_runtime_and_exports_nothing() {
        let pipeline = Pipeline::new(&config(&[])).expect("pipeline");
        assert!(!pipeline.exports());
        assert!(pipeline.shutdown().is_ok());
    }

    /// The only test in this binary that installs the global subscriber.
    #[test]
    fn init_installs_once_and_the_guard_shuts_down() {
        let mut c = config(&[]);
        c.log_format = LogFormat::Off;
        let guard = init_with(c.clone()).expect("first init");
        assert!(!guard.exports());
        let span = tracing::info_span!("global");
        let id = span.in_scope(crate::trace_id_of_current);
        assert_eq!(id.len(), 32, "the global subscriber makes trace ids");
        assert!(matches!(init_with(c), Err(Error::Subscriber(_))));
        drop(guard);
    }

    #[test]
    fn a_bad_rust_log_is_reported() {
        let mut c = config(&[("RUST_LOG", "info,[[[")]);
        c.log_format = LogFormat::Compact;
        assert!(matches!(init_with(c), Err(Error::Filter(_))));
    }

    #[test]
    fn an_endpoint_outside_a_runtime_is_an_error_not_a_panic() {
        let c = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")]);
        assert!(matches!(Pipeline::new(&c), Err(Error::NoRuntime)));
    }
}
