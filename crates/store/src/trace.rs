//! Where long-running work came from: the W3C trace context of the request
//! that started it, stored as a `SpanOrigin` with timers and events so that
//! every later step links back to it.
//!
//! The context comes from the telemetry crate's current span
//! (`tilewave_telemetry::current_origin`) without anything to install, so a
//! service cannot forget it: audit records and timers get the trace id of the
//! request that made them. [`set_current_provider`] replaces that source
//! (tests, tools without telemetry); [`from_traceparent`] and
//! [`from_metadata`] read a context given explicitly.

use std::sync::OnceLock;

use tilewave_proto::common::v1::SpanOrigin;

use crate::error::{Error, Result};

/// Supplies the current span's context.
pub type Provider = fn() -> Option<SpanOrigin>;

static PROVIDER: OnceLock<Provider> = OnceLock::new();

/// Replaces the source of the current trace context (once per process;
/// later calls are ignored and return `false`). Without it, the telemetry
/// crate's current span is the source.
pub fn set_current_provider(provider: Provider) -> bool {
    PROVIDER.set(provider).is_ok()
}

/// The current trace context: the installed provider's, else the current
/// span's as the telemetry crate sees it; `None` outside any span (or with
/// no telemetry set up).
pub fn current() -> Option<SpanOrigin> {
    match PROVIDER.get() {
        Some(provider) => provider(),
        None => telemetry_current(),
    }
}

/// The telemetry crate's view of the current span, as an origin.
fn telemetry_current() -> Option<SpanOrigin> {
    let origin = tilewave_telemetry::current_origin();
    (!origin.traceparent.is_empty()).then_some(origin)
}

/// A `SpanOrigin` from a `traceparent` (and optional `tracestate`) header
/// value, checked against the W3C format
/// (`<version>-<32 hex trace id>-<16 hex span id>-<2 hex flags>`, ids not
/// all zero).
pub fn from_traceparent(traceparent: &str, tracestate: Option<&str>) -> Result<SpanOrigin> {
    let tp = traceparent.trim();
    let parts: Vec<&str> = tp.split('-').collect();
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let ok = parts.len() >= 4
        && hex(parts[0], 2)
        && parts[0] != "ff"
        && (parts[0] != "00" || parts.len() == 4)
        && hex(parts[1], 32)
        && parts[1].bytes().any(|b| b != b'0')
        && hex(parts[2], 16)
        && parts[2].bytes().any(|b| b != b'0')
        && hex(parts[3], 2);
    if !ok {
        return Err(Error::invalid(format!(
            "traceparent {tp:?} is not W3C trace context"
        )));
    }
    Ok(SpanOrigin {
        traceparent: tp.to_owned(),
        tracestate: tracestate.unwrap_or_default().trim().to_owned(),
    })
}

/// The trace context carried by gRPC metadata (`traceparent`,
/// `tracestate`), if valid.
pub fn from_metadata(md: &tonic::metadata::MetadataMap) -> Option<SpanOrigin> {
    let tp = md.get("traceparent")?.to_str().ok()?;
    let ts = md.get("tracestate").and_then(|v| v.to_str().ok());
    from_traceparent(tp, ts).ok()
}

/// The context to store with new work: the current span's, else the one in
/// `md`.
pub fn capture(md: Option<&tonic::metadata::MetadataMap>) -> Option<SpanOrigin> {
    current().or_else(|| md.and_then(from_metadata))
}

/// The trace id (32 hex digits) of an origin.
pub fn trace_id(origin: &SpanOrigin) -> Option<&str> {
    origin.traceparent.split('-').nth(1).filter(|id| id.len() == 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_valid_traceparent() {
        let o = from_traceparent(TP, Some("congo=t61rcWkgMzE")).unwrap();
        assert_eq!(trace_id(&o), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert_eq!(o.tracestate, "congo=t61rcWkgMzE");
    }

    #[test]
    fn rejects_invalid_traceparent() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(from_traceparent(bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn from_grpc_metadata() {
        let mut md = tonic::metadata::MetadataMap::new();
        assert!(from_metadata(&md).is_none());
        md.insert("traceparent", TP.parse().unwrap());
        assert_eq!(from_metadata(&md).unwrap().traceparent, TP);
        assert_eq!(capture(Some(&md)).unwrap().traceparent, TP);
    }
}
