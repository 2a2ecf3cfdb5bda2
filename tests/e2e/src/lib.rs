//! End-to-end tests of tilewave across processes: the real `tilewave` CLI
//! against the real services and etcd, with OpenTelemetry export pointed at
//! the telemetry crate's in-process OTLP receiver, asserting on the spans
//! that were actually exported and on the Prometheus metrics served.
//!
//! The tests are in `tests/it`; `e2e-origin-probe` is a helper process that
//! schedules a durable timer inside a request span (one process) or fires it
//! (another), for the test that long-running work links back to its origin.
//! There is no library code.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
