//! Trace context without OpenTelemetry spans, for a process that exports
//! nothing (no `OTEL_EXPORTER_OTLP_ENDPOINT`).
//!
//! Turning every `tracing` span into an SDK span only to drop it when it ends
//! was most of what the layers cost a call (BENCHMARKS.md, "Telemetry
//! overhead"). Without an exporter, what a span must still have is a W3C
//! span context: a trace id shared with its parent (local, or remote from the
//! request's `traceparent`), a span id of its own and the sampled flag, so
//! that trace context flows on to services that do export, log lines carry
//! `trace_id`/`span_id`, and [`crate::current_origin`] and
//! [`crate::trace_id_of_current`] work. [`ContextLayer`] keeps just that in
//! each span's extensions.
//!
//! [`span_context`] and [`set_parent`] work with either layer: the
//! [`ContextLayer`] when it is installed, else `tracing-opentelemetry`'s.

use std::cell::RefCell;

use opentelemetry::Context;
use opentelemetry::trace::{SpanContext, SpanId, SpanKind, TraceContextExt as _, TraceFlags, TraceId};
use opentelemetry_sdk::trace::{
    IdGenerator as _, RandomIdGenerator, Sampler, SamplingDecision, ShouldSample as _,
};
use tracing::span::{Attributes, Id};
use tracing::{Span, Subscriber};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::Registry;
use tracing_subscriber::layer::{Context as LayerContext, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::Sampling;

/// A span's W3C context, in its extensions.
#[derive(Debug, Clone)]
struct Ids(SpanContext);

thread_local! {
    /// The contexts of the spans this thread is in, innermost last: what a
    /// log line written outside any span this layer sees carries.
    static ENTERED: RefCell<Vec<(Id, TraceId, SpanId)>> = const { RefCell::new(Vec::new()) };
}

/// Gives every span it sees a W3C span context, and nothing else.
#[derive(Debug)]
pub(crate) struct ContextLayer {
    ids: RandomIdGenerator,
    sampler: Sampler,
    parent_based: bool,
}

impl ContextLayer {
    pub(crate) fn new(sampling: Sampling) -> Self {
        let parent_based = matches!(
            sampling,
            Sampling::ParentBasedAlwaysOn
                | Sampling::ParentBasedAlwaysOff
                | Sampling::ParentBasedTraceIdRatio(_)
        );
        ContextLayer {
            ids: RandomIdGenerator::default(),
            sampler: sampling.to_sampler(),
            parent_based,
        }
    }

    /// The flags of a span in `trace_id` whose parent is `parent` (local or
    /// remote), as the SDK's sampler would decide them.
    fn flags(&self, trace_id: TraceId, parent: Option<&SpanContext>) -> TraceFlags {
        if let (Some(parent), true) = (parent, self.parent_based) {
            return if parent.is_sampled() {
                TraceFlags::SAMPLED
            } else {
                TraceFlags::default()
            };
        }
        let result = self
            .sampler
            .should_sample(None, trace_id, "", &SpanKind::Internal, &[], &[]);
        match result.decision {
            SamplingDecision::RecordAndSample => TraceFlags::SAMPLED,
            SamplingDecision::Drop | SamplingDecision::RecordOnly => TraceFlags::default(),
        }
    }
}

impl<S> Layer<S> for ContextLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, _attrs: &Attributes<'_>, id: &Id, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let parent = span
            .parent()
            .and_then(|p| p.extensions().get::<Ids>().map(|i| i.0.clone()));
        let span_id = self.ids.new_span_id();
        let sc = match parent {
            Some(parent) => SpanContext::new(
                parent.trace_id(),
                span_id,
                self.flags(parent.trace_id(), Some(&parent)),
                false,
                parent.trace_state().clone(),
            ),
            None => {
                let trace_id = self.ids.new_trace_id();
                SpanContext::new(
                    trace_id,
                    span_id,
                    self.flags(trace_id, None),
                    false,
                    Default::default(),
                )
            }
        };
        span.extensions_mut().insert(Ids(sc));
    }

    fn on_enter(&self, id: &Id, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let Some(ids) = span
            .extensions()
            .get::<Ids>()
            .map(|i| (i.0.trace_id(), i.0.span_id()))
        else {
            return;
        };
        ENTERED.with(|entered| entered.borrow_mut().push((id.clone(), ids.0, ids.1)));
    }

    fn on_exit(&self, id: &Id, _ctx: LayerContext<'_, S>) {
        ENTERED.with(|entered| {
            let mut entered = entered.borrow_mut();
            if let Some(at) = entered.iter().rposition(|(entered_id, _, _)| entered_id == id) {
                entered.remove(at);
            }
        });
    }
}

/// The trace and span id of the innermost span this thread is in that has
/// a [`ContextLayer`] context, if any.
pub(crate) fn entered_ids() -> Option<(TraceId, SpanId)> {
    ENTERED.with(|entered| entered.borrow().last().map(|(_, t, s)| (*t, *s)))
}

/// The [`ContextLayer`] context of the span `id` or its nearest ancestor
/// that has one, when `id` lives in a [`Registry`].
fn light_context_of(id: &Id, dispatch: &tracing::Dispatch) -> Option<SpanContext> {
    let registry = dispatch.downcast_ref::<Registry>()?;
    let span = registry.span(id)?;
    span.scope()
        .find_map(|s| s.extensions().get::<Ids>().map(|i| i.0.clone()))
}

/// The W3C span context of `span` (or of its nearest ancestor that has one);
/// `None` when it has none (no subscriber, or a span no layer keeps).
pub(crate) fn span_context(span: &Span) -> Option<SpanContext> {
    if let Some(sc) = span
        .with_subscriber(|(id, dispatch)| light_context_of(id, dispatch))
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
                dispatch.downcast_ref::<ContextLayer>(),
                dispatch.downcast_ref::<Registry>(),
            ) else {
                return false;
            };
            let Some(data) = registry.span(id) else {
                return false;
            };
            let mut extensions = data.extensions_mut();
            let Some(Ids(sc)) = extensions.get_mut::<Ids>() else {
                return false;
            };
            *sc = SpanContext::new(
                remote.trace_id(),
                sc.span_id(),
                layer.flags(remote.trace_id(), Some(&remote)),
                false,
                remote.trace_state().clone(),
            );
            true
        })
        .unwrap_or(false);
    if !handled {
        // Fails only when the span was already started or no OpenTelemetry
        // layer is installed; either way the span stays a root.
        let _ = span.set_parent(Context::new().with_remote_span_context(remote));
    }
}

/// The `traceparent` header value of `sc` (W3C Trace Context, version 00).
pub(crate) fn traceparent(sc: &SpanContext) -> String {
    format!(
        "00-{}-{}-{:02x}",
        sc.trace_id(),
        sc.span_id(),
        sc.trace_flags().to_u8()
    )
}

/// The trace and span id a [`ContextLayer`] gave `span`, if it did.
pub(crate) fn ids_of<R: for<'a> LookupSpan<'a>>(
    span: &tracing_subscriber::registry::SpanRef<'_, R>,
) -> Option<(TraceId, SpanId)> {
    span.extensions()
        .get::<Ids>()
        .map(|i| (i.0.trace_id(), i.0.span_id()))
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
    fn no_subscriber_means_no_context() {
        assert!(span_context(&tracing::info_span!("nothing")).is_none());
        set_parent(&Span::none(), SpanContext::empty_context());
    }
}
