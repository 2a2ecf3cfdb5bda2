//! Every etcd operation the store makes is observed: a `tracing` span named
//! `etcd.<op>` (a child of whatever span is current, so a handler's etcd
//! calls appear under its RPC span), and the operation's latency in
//! [`Metrics::global`] (`tilewave_etcd_op_duration_seconds{op}`, and
//! `tilewave_etcd_errors_total{op}` when etcd failed).
//!
//! Span attributes follow the OpenTelemetry database conventions:
//! `db.system = "etcd"`, `db.operation`, and `db.etcd.key` (the key, or the
//! start of the range for a listing or watch; never a value). A failure of
//! etcd itself (unavailable, deadline, refused request) sets the span's
//! error status and `error.type`. A refused guard (stale etag, existing key,
//! fenced owner) is etcd answering correctly: the span records it in
//! `db.etcd.outcome` without error status, and the metrics count the
//! operation as successful.
//!
//! The hot path stays cheap: the key is passed as `&str` and only copied by
//! a layer that records the span; with no subscriber the span is disabled
//! and nothing is formatted. Spans are not entered while the operation is
//! polled (no user code runs inside them), which spares every layer an
//! enter and exit per poll.

use std::fmt::Display;
use std::future::Future;

use tilewave_telemetry::Metrics;
use tokio::time::Instant;
use tracing::Span;
use tracing::field::{Empty, display};

use crate::error::{Error, Result};

/// An etcd operation: the `op` label of the metrics and the `etcd.<op>` span
/// name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EtcdOp {
    /// A single-key read.
    Get,
    /// A range read (a prefix listing, paged).
    List,
    /// A transaction: every commit and ownership claim.
    Txn,
    /// Opening a watch.
    Watch,
    /// Granting a lease.
    LeaseGrant,
    /// Opening a lease keep-alive stream.
    LeaseKeepAlive,
    /// Revoking a lease.
    LeaseRevoke,
    /// Compacting history.
    Compact,
}

impl EtcdOp {
    /// The metric label and `db.operation`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            EtcdOp::Get => "get",
            EtcdOp::List => "list",
            EtcdOp::Txn => "txn",
            EtcdOp::Watch => "watch",
            EtcdOp::LeaseGrant => "lease_grant",
            EtcdOp::LeaseKeepAlive => "lease_keep_alive",
            EtcdOp::LeaseRevoke => "lease_revoke",
            EtcdOp::Compact => "compact",
        }
    }

    /// The span name.
    fn span_name(self) -> &'static str {
        match self {
            EtcdOp::Get => "etcd.get",
            EtcdOp::List => "etcd.list",
            EtcdOp::Txn => "etcd.txn",
            EtcdOp::Watch => "etcd.watch",
            EtcdOp::LeaseGrant => "etcd.lease_grant",
            EtcdOp::LeaseKeepAlive => "etcd.lease_keep_alive",
            EtcdOp::LeaseRevoke => "etcd.lease_revoke",
            EtcdOp::Compact => "etcd.compact",
        }
    }
}

/// The metric label of one lease renewal on an open keep-alive stream.
/// Renewals are counted but get no span: the keeper renews every third of
/// the TTL for as long as the work is owned, and a parentless span for each
/// would bury the traces that matter.
pub(crate) const LEASE_RENEW: &str = "lease_renew";

/// Whether `e` means etcd itself failed, rather than answering "no" to a
/// guard, or the store refusing what it read.
pub(crate) fn etcd_failed(e: &Error) -> bool {
    match e {
        Error::Unavailable { .. } | Error::DeadlineExceeded { .. } | Error::Etcd { .. } => true,
        Error::NotFound { .. }
        | Error::AlreadyExists { .. }
        | Error::Conflict { .. }
        | Error::Fenced { .. }
        | Error::Decode { .. }
        | Error::ClockBackwards { .. }
        | Error::ClockNotVirtual
        | Error::InvalidArgument(_) => false,
    }
}

/// A short name of the error's kind, for `error.type` and `db.etcd.outcome`.
fn kind(e: &Error) -> &'static str {
    match e {
        Error::NotFound { .. } => "not_found",
        Error::AlreadyExists { .. } => "already_exists",
        Error::Conflict { .. } => "conflict",
        Error::Fenced { .. } => "fenced",
        Error::Unavailable { .. } => "unavailable",
        Error::DeadlineExceeded { .. } => "deadline_exceeded",
        Error::Decode { .. } => "decode",
        Error::ClockBackwards { .. } => "clock_backwards",
        Error::ClockNotVirtual => "clock_not_virtual",
        Error::InvalidArgument(_) => "invalid_argument",
        Error::Etcd { .. } => "etcd",
    }
}

/// One etcd operation in flight: its span and start time.
#[derive(Debug)]
pub(crate) struct Observed {
    span: Span,
    op: EtcdOp,
    start: Instant,
}

impl Observed {
    /// Opens the span (a child of the current one) and starts the clock.
    pub(crate) fn start(op: EtcdOp, key: &str) -> Self {
        let span = tracing::info_span!(
            target: "tilewave::etcd",
            "etcd",
            otel.name = op.span_name(),
            otel.kind = "client",
            db.system = "etcd",
            db.operation = op.name(),
            db.etcd.key = key,
            db.etcd.outcome = Empty,
            error.type = Empty,
            otel.status_code = Empty,
            otel.status_description = Empty,
        );
        Observed {
            span,
            op,
            start: Instant::now(),
        }
    }

    /// Ends a successful operation.
    pub(crate) fn ok(self) {
        Metrics::global().record_etcd_op(self.op.name(), self.start.elapsed(), true);
    }

    /// Ends a failed operation. `etcd_failed`: etcd itself failed (error
    /// status, error metric); else etcd answered and the store refused
    /// (`kind` recorded as the outcome).
    pub(crate) fn failed(self, etcd_failed: bool, kind: &'static str, message: &dyn Display) {
        let elapsed = self.start.elapsed();
        if !self.span.is_disabled() {
            if etcd_failed {
                self.span.record("error.type", kind);
                self.span.record("otel.status_code", "ERROR");
                self.span.record("otel.status_description", display(message));
            } else {
                self.span.record("db.etcd.outcome", kind);
            }
        }
        Metrics::global().record_etcd_op(self.op.name(), elapsed, !etcd_failed);
    }

    /// Ends the operation with its result.
    pub(crate) fn finish<T>(self, result: &Result<T>) {
        match result {
            Ok(_) => self.ok(),
            Err(e) => self.failed(etcd_failed(e), kind(e), e),
        }
    }
}

/// Runs `fut`, one etcd operation `op` on `key` (retries included), as an
/// observed operation.
pub(crate) async fn observe<T, Fut>(op: EtcdOp, key: &str, fut: Fut) -> Result<T>
where
    Fut: Future<Output = Result<T>>,
{
    let observed = Observed::start(op, key);
    let result = fut.await;
    observed.finish(&result);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_refusals_are_not_etcd_failures() {
        assert!(!etcd_failed(&Error::Conflict { key: "k".into() }));
        assert!(!etcd_failed(&Error::AlreadyExists { key: "k".into() }));
        assert!(etcd_failed(&Error::DeadlineExceeded { op: "get" }));
        assert_eq!(
            kind(&Error::Fenced {
                owner_key: "o".into(),
                token: 1
            }),
            "fenced"
        );
    }

    #[tokio::test]
    async fn every_operation_is_counted_once_with_its_outcome() {
        let before = Metrics::global().encode();
        let count = |text: &str, line: &str| {
            text.lines()
                .find(|l| l.starts_with(line))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let ok: Result<()> = observe(EtcdOp::Compact, "k", async { Ok(()) }).await;
        assert!(ok.is_ok());
        let refused: Result<()> = observe(EtcdOp::Compact, "k", async {
            Err(Error::Conflict { key: "k".into() })
        })
        .await;
        assert!(refused.is_err());
        let failed: Result<()> = observe(EtcdOp::Compact, "k", async {
            Err(Error::DeadlineExceeded { op: "x" })
        })
        .await;
        assert!(failed.is_err());
        let after = Metrics::global().encode();
        let duration = r#"tilewave_etcd_op_duration_seconds_count{op="compact"}"#;
        let errors = r#"tilewave_etcd_errors_total{op="compact"}"#;
        assert_eq!(count(&after, duration) - count(&before, duration), 3);
        assert_eq!(count(&after, errors) - count(&before, errors), 1);
    }
}
