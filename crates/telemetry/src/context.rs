//! W3C trace context: span contexts for a process that exports nothing
//! (no `OTEL_EXPORTER_OTLP_ENDPOINT`), and `traceparent` written and read
//! by hand.
//!
//! Turning every `tracing` span into an SDK span only to drop it when it ends
//! was most of what the layers cost a call (BENCHMARKS.md, "Telemetry
//! overhead"). Without an exporter, what a span must still have is a W3C
//! span context: a trace id shared with its parent (local, or remote from the
//! request's `traceparent`), a span id of its own and the sampled flag, so
//! that trace context flows on to services that do export, log lines carry
//! `trace_id`/`span_id`, and [`crate::current_origin`] and
//! [`crate::trace_id_of_current`] work.
//! [`ContextGen`](crate::context_gen::ContextGen) makes those contexts; the
//! [`LocalLayer`](crate::layer::LocalLayer) keeps one in each span.
//!
//! [`span_context`] and [`set_parent`] work with either: the local layer's
//! context when it keeps one, else `tracing-opentelemetry`'s.

use std::str::FromStr as _;

use opentelemetry::Context;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::Registry;
use tracing_subscriber::registry::LookupSpan as _;

use crate::layer::{LocalLayer, SpanState};

/// The local layer's context of the span `id` or of its nearest ancestor
/// that has one, when `id` lives in a [`Registry`].
fn local_context_of(id: &tracing::Id, dispatch: &tracing::Dispatch) -> Option<SpanContext> {
    let registry = dispatch.downcast_ref::<Registry>()?;
    let span = registry.span(id)?;
    span.scope().find_map(|s| {
        s.extensions()
            .get::<SpanState>()
            .and_then(|state| state.context.clone())
    })
}

/// The W3C span context of `span` (or of its nearest ancestor that has one);
/// `None` when it has none (no subscriber, or a span no layer keeps).
pub(crate) fn span_context(span: &Span) -> Option<SpanContext> {
    if let Some(sc) = span
        .with_subscriber(|(id, dispatch)| local_context_of(id, dispatch))
        .flatten()
    {
        return Some(sc);
    }
    let cx = span.context();
    let otel = cx.span();
    let sc = otel.span_context();
    sc.is_valid().then(|| sc.clone())
}

/// Makes the remote span context `remote` (extracted from a request) the
/// parent of `span`, which must not have been entered or have children yet.
pub(crate) fn set_parent(span: &Span, remote: SpanContext) {
    let handled = span
        .with_subscriber(|(id, dispatch)| {
            let (Some(layer), Some(registry)) = (
                dispatch.downcast_ref::<LocalLayer>(),
                dispatch.downcast_ref::<Registry>(),
            ) else {
                return false;
            };
            let (Some(contexts), Some(data)) = (layer.context_gen(), registry.span(id)) else {
                return false;
            };
            let mut extensions = data.extensions_mut();
            let Some(SpanState {
                context: Some(sc), ..
            }) = extensions.get_mut::<SpanState>()
            else {
                return false;
            };
            *sc = contexts.joined(&remote, sc.span_id());
            true
        })
        .unwrap_or(false);
    if !handled {
        // Fails only when the span was already started or no OpenTelemetry
        // layer is installed; either way the span stays a root.
        let _ = span.set_parent(Context::new().with_remote_span_context(remote));
    }
}

/// Without an exporter, the context a client call sends: a new span id
/// under the current span's context (a new trace without one). `None` when
/// OpenTelemetry's layer keeps contexts (spans are exported) or no
/// subscriber does: then the client makes a real span.
///
/// Without an exporter a client span would be seen by nothing: no user code
/// runs inside it, and nothing records it. The id the server is told is its
/// parent is all that is left of it, and costs a fraction of a span.
pub(crate) fn local_client_context() -> Option<SpanContext> {
    tracing::dispatcher::get_default(|dispatch| {
        let contexts = dispatch.downcast_ref::<LocalLayer>()?.context_gen()?;
        // Not `Span::current()`: inside `get_default` it sees no subscriber.
        let parent = dispatch
            .current_span()
            .id()
            .and_then(|id| local_context_of(id, dispatch));
        Some(contexts.child_of(parent.as_ref()))
    })
}

/// Length of a version-00 `traceparent`: `00-<32 hex>-<16 hex>-<2 hex>`.
const TRACEPARENT_LEN: usize = 55;

/// The `traceparent` header value of `sc` (W3C Trace Context, version 00),
/// as bytes: always ASCII.
pub(crate) fn traceparent_bytes(sc: &SpanContext) -> [u8; TRACEPARENT_LEN] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [b'-'; TRACEPARENT_LEN];
    out[0] = b'0';
    out[1] = b'0';
    let mut put = |at: usize, bytes: &[u8]| {
        for (i, b) in bytes.iter().enumerate() {
            out[at + 2 * i] = HEX[usize::from(b >> 4)];
            out[at + 2 * i + 1] = HEX[usize::from(b & 0xf)];
        }
    };
    put(3, &sc.trace_id().to_bytes());
    put(36, &sc.span_id().to_bytes());
    put(53, &[sc.trace_flags().to_u8()]);
    out
}

/// The `traceparent` header value of `sc` (W3C Trace Context, version 00).
pub(crate) fn traceparent(sc: &SpanContext) -> String {
    String::from_utf8_lossy(&traceparent_bytes(sc)).into_owned()
}

/// `n` lowercase hex digits as bytes; `None` for anything else.
fn hex<const N: usize>(digits: &[u8]) -> Option<[u8; N]> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    if digits.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

/// Parses a remote parent from a `traceparent` (and `tracestate`) value, as
/// W3C Trace Context says: lowercase hex, version `ff` and all-zero ids are
/// invalid, a version-00 value is exactly 55 characters, later versions may
/// append `-`-separated fields. Only the sampled flag is kept. A malformed
/// `tracestate` is dropped, not the parent.
pub(crate) fn parse_traceparent(traceparent: &str, tracestate: Option<&str>) -> Option<SpanContext> {
    let b = traceparent.trim().as_bytes();
    if b.len() < TRACEPARENT_LEN || b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
        return None;
    }
    let [version] = hex::<1>(&b[0..2])?;
    if version == 0xff
        || (version == 0 && b.len() != TRACEPARENT_LEN)
        || (b.len() > TRACEPARENT_LEN && b[TRACEPARENT_LEN] != b'-')
    {
        return None;
    }
    let trace_id = TraceId::from_bytes(hex::<16>(&b[3..35])?);
    let span_id = SpanId::from_bytes(hex::<8>(&b[36..52])?);
    let [flags] = hex::<1>(&b[53..55])?;
    if trace_id == TraceId::INVALID || span_id == SpanId::INVALID {
        return None;
    }
    let state = tracestate
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .and_then(|s| TraceState::from_str(s).ok())
        .unwrap_or_default();
    Some(SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(flags) & TraceFlags::SAMPLED,
        true,
        state,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, Pipeline};

    fn quiet() -> Pipeline {
        let pipeline = Pipeline::new(&Config::from_lookup("ctx", |_| None)).expect("pipeline");
        assert!(!pipeline.exports());
        pipeline
    }

    #[test]
    fn children_share_the_trace_and_roots_start_one() {
        let pipeline = quiet();
        tracing::subscriber::with_default(pipeline.subscriber(), || {
            let parent = tracing::info_span!("parent");
            let child = parent.in_scope(|| tracing::info_span!("child"));
            let root = parent.in_scope(|| tracing::info_span!(parent: None, "root"));
            let (p, c, r) = (
                span_context(&parent).expect("parent"),
                span_context(&child).expect("child"),
                span_context(&root).expect("root"),
            );
            assert_eq!(p.trace_id(), c.trace_id());
            assert_ne!(p.span_id(), c.span_id());
            assert_ne!(p.trace_id(), r.trace_id());
            assert!(p.is_sampled() && c.is_sampled());
            let origin = child.in_scope(crate::current_origin);
            assert_eq!(origin.traceparent, traceparent(&c));
            assert_eq!(
                child.in_scope(crate::trace_id_of_current),
                c.trace_id().to_string()
            );
        });
    }

    #[test]
    fn a_remote_parent_is_joined_with_its_sampled_flag_and_state() {
        let pipeline = quiet();
        let remote = crate::span_context_of(&tilewave_proto::common::v1::SpanOrigin {
            traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00".into(),
            tracestate: "vendor=x".into(),
        })
        .expect("valid");
        tracing::subscriber::with_default(pipeline.subscriber(), || {
            let server = tracing::info_span!("server");
            set_parent(&server, remote.clone());
            let handler = server.in_scope(|| tracing::info_span!("handler"));
            for span in [&server, &handler] {
                let sc = span_context(span).expect("context");
                assert_eq!(sc.trace_id(), remote.trace_id());
                assert_ne!(sc.span_id(), remote.span_id());
                assert!(!sc.is_sampled(), "parent-based: not sampled like the caller");
                assert_eq!(sc.trace_state().header(), "vendor=x");
            }
        });
    }

    #[test]
    fn traceparent_is_written_and_read_as_w3c_says() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let sc = parse_traceparent(tp, Some("vendor=x,other=y")).expect("valid");
        assert_eq!(sc.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(sc.span_id().to_string(), "00f067aa0ba902b7");
        assert!(sc.is_sampled() && sc.is_remote());
        assert_eq!(sc.trace_state().header(), "vendor=x,other=y");
        assert_eq!(traceparent(&sc), tp);
        assert_eq!(&traceparent_bytes(&sc)[..], tp.as_bytes());

        // Flags other than sampled are dropped; a bad tracestate is dropped,
        // not the parent; a later version may carry more fields.
        let sc = parse_traceparent(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-fe",
            Some("=bad="),
        )
        .unwrap();
        assert!(!sc.is_sampled());
        assert_eq!(sc.trace_state().header(), "");
        assert!(
            parse_traceparent(
                "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
                None
            )
            .is_some()
        );

        let invalid = [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-é",
        ];
        for tp in invalid {
            assert!(parse_traceparent(tp, None).is_none(), "{tp:?}");
        }
    }

    #[test]
    fn no_subscriber_means_no_context() {
        assert!(span_context(&tracing::info_span!("nothing")).is_none());
        set_parent(&Span::none(), SpanContext::empty_context());
    }
}
