//! Long-running work keeps its origin: the W3C context of the request that
//! started it is captured as strings ([`SpanOrigin`], stored in etcd with
//! the work), and every later step span, on any replica and however much
//! later, carries an OpenTelemetry *link* (not a parent) back to it.

use opentelemetry::trace::SpanContext;
use tilewave_proto::common::v1::SpanOrigin;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The W3C context of the current span, to store with work it starts.
/// Empty strings when there is no current span (or no telemetry).
pub fn current_origin() -> SpanOrigin {
    origin_of(&tracing::Span::current())
}

/// The W3C context of `span`.
pub fn origin_of(span: &tracing::Span) -> SpanOrigin {
    match crate::context::span_context(span) {
        Some(sc) => SpanOrigin {
            traceparent: crate::context::traceparent(&sc),
            tracestate: sc.trace_state().header(),
        },
        None => SpanOrigin::default(),
    }
}

/// Parses a stored origin; `None` when it is empty or malformed.
pub fn span_context_of(origin: &SpanOrigin) -> Option<SpanContext> {
    if origin.traceparent.is_empty() {
        return None;
    }
    crate::context::parse_traceparent(&origin.traceparent, Some(&origin.tracestate))
}

/// Adds a link from `span` to the stored origin. Returns whether a link was
/// added (false for an empty or malformed origin). Call before the span is
/// first entered so the link is there when the span starts.
pub fn link_to_origin(span: &tracing::Span, origin: &SpanOrigin) -> bool {
    match span_context_of(origin) {
        Some(sc) => {
            span.add_link(sc);
            true
        }
        None => false,
    }
}

/// A new root span named `name` (an INFO span; its OpenTelemetry name is
/// `name`) linked to `origin`: one step of long-running work. It is a root
/// because the step is its own unit of work, whatever happens to be current;
/// the link is what leads back to the request.
pub fn span_linked_to(origin: &SpanOrigin, name: &str) -> tracing::Span {
    let span = tracing::info_span!(
        target: "tilewave::work",
        parent: None,
        "work",
        otel.name = %name,
        otel.kind = "internal",
    );
    link_to_origin(&span, origin);
    span
}

/// The trace id of the current span as 32 lowercase hex digits, or an empty
/// string when there is none: for the CLI's `--trace` and error messages.
pub fn trace_id_of_current() -> String {
    crate::context::span_context(&tracing::Span::current())
        .map(|sc| sc.trace_id().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_malformed_origins_are_ignored() {
        assert!(span_context_of(&SpanOrigin::default()).is_none());
        let bad = SpanOrigin {
            traceparent: "00-zz-yy-01".into(),
            tracestate: String::new(),
        };
        assert!(span_context_of(&bad).is_none());
        let span = tracing::Span::none();
        assert!(!link_to_origin(&span, &bad));
    }

    #[test]
    fn a_valid_origin_parses() {
        let origin = SpanOrigin {
            traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
            tracestate: "vendor=x".into(),
        };
        let sc = span_context_of(&origin).unwrap();
        assert_eq!(sc.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(sc.span_id().to_string(), "00f067aa0ba902b7");
        assert!(sc.is_sampled());
        assert_eq!(sc.trace_state().header(), "vendor=x");
    }

    #[test]
    fn no_subscriber_means_empty_ids() {
        assert_eq!(trace_id_of_current(), "");
        assert_eq!(current_origin(), SpanOrigin::default());
    }
}
