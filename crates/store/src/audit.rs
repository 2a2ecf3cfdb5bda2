//! Audit records: the one constructor every change uses.
//!
//! A record names the action (the RPC or the automatic step, `StartRollout`,
//! `GaReached`), the object it changed (`tile`/`rollout`/`freeze`/`timer` and
//! its id) and a one-line summary. The committing [`crate::Actor`], the time
//! (the store clock's now when not set) and the trace id of the current
//! request are filled in at commit ([`crate::Store::commit`]).

use tilewave_proto::common::v1::AuditRecord;

/// An audit record of `action` on the `kind` object `id`.
pub fn record(action: &str, kind: &str, id: &str, summary: impl Into<String>) -> AuditRecord {
    AuditRecord {
        action: action.to_owned(),
        object_kind: kind.to_owned(),
        object_id: id.to_owned(),
        summary: summary.into(),
        ..Default::default()
    }
}

/// Builders for the optional parts of a record.
pub trait AuditRecordExt: Sized {
    /// The object's revision.
    fn revision(self, revision: i64) -> Self;
    /// The trace id of the request behind the change (when it is not the
    /// current one, e.g. a step of a roll-out started long ago).
    fn trace(self, trace_id: impl Into<String>) -> Self;
    /// One detail (`state` = `SCHEDULED`).
    fn detail(self, key: impl Into<String>, value: impl Into<String>) -> Self;
    /// The domain time of the change, when it is not the store clock's now
    /// (e.g. a clock change records the time it moved to).
    fn at(self, at: jiff::Timestamp) -> Self;
}

impl AuditRecordExt for AuditRecord {
    fn revision(mut self, revision: i64) -> Self {
        self.object_revision = revision;
        self
    }

    fn trace(mut self, trace_id: impl Into<String>) -> Self {
        self.trace_id = trace_id.into();
        self
    }

    fn detail(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.details.insert(key.into(), value.into());
        self
    }

    fn at(mut self, at: jiff::Timestamp) -> Self {
        self.at = Some(crate::time::to_proto_timestamp(at));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_carries_what_it_is_given() {
        let r = record("StartRollout", "rollout", "riverflow-r1", "started")
            .revision(1)
            .trace("abc")
            .detail("state", "RUNNING");
        assert_eq!(
            (
                r.action.as_str(),
                r.object_kind.as_str(),
                r.object_id.as_str(),
                r.summary.as_str()
            ),
            ("StartRollout", "rollout", "riverflow-r1", "started")
        );
        assert_eq!((r.object_revision, r.trace_id.as_str()), (1, "abc"));
        assert_eq!(r.details.get("state").map(String::as_str), Some("RUNNING"));
        assert!(r.actor.is_empty() && r.at.is_none(), "set at commit");
    }
}
