//! The W3C span context of a new span, for a process that exports nothing:
//! its ids, and the sampled flag the configured sampler would give. The
//! [`LocalLayer`](crate::layer::LocalLayer) gives one to each span it keeps;
//! [`crate::context`] reads them back.

use opentelemetry::trace::{SpanContext, SpanId, SpanKind, TraceFlags, TraceId, TraceState};
use opentelemetry_sdk::trace::{
    IdGenerator as _, RandomIdGenerator, Sampler, SamplingDecision, ShouldSample as _,
};

use crate::Sampling;

/// Makes the W3C context of new spans: ids, and the sampled flag the
/// configured sampler would give.
#[derive(Debug)]
pub(crate) struct ContextGen {
    ids: RandomIdGenerator,
    sampler: Sampler,
    parent_based: bool,
}

impl ContextGen {
    pub(crate) fn new(sampling: Sampling) -> Self {
        let parent_based = matches!(
            sampling,
            Sampling::ParentBasedAlwaysOn
                | Sampling::ParentBasedAlwaysOff
                | Sampling::ParentBasedTraceIdRatio(_)
        );
        ContextGen {
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

    /// The context of a new span under `parent` (a new trace when `None`).
    pub(crate) fn child_of(&self, parent: Option<&SpanContext>) -> SpanContext {
        let span_id = self.ids.new_span_id();
        match parent {
            Some(parent) => self.joined(parent, span_id),
            None => {
                let trace_id = self.ids.new_trace_id();
                SpanContext::new(
                    trace_id,
                    span_id,
                    self.flags(trace_id, None),
                    false,
                    TraceState::NONE,
                )
            }
        }
    }

    /// The context of span `span_id` whose parent is `parent`.
    pub(crate) fn joined(&self, parent: &SpanContext, span_id: SpanId) -> SpanContext {
        SpanContext::new(
            parent.trace_id(),
            span_id,
            self.flags(parent.trace_id(), Some(parent)),
            false,
            parent.trace_state().clone(),
        )
    }
}
