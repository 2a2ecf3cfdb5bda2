//! The escalation rules: schedules across the 2026 DST changes, layers,
//! overrides, coverage and validation.

use jiff::Timestamp;
use jiff::civil::{Date, Time};

mod incident;
mod ladder;
mod schedule;
mod sop;

/// An instant from RFC 3339 (test input).
fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// A local time of day.
fn hm(h: i8, m: i8) -> Time {
    Time::constant(h, m, 0, 0)
}

/// A date.
fn date(s: &str) -> Date {
    s.parse().unwrap()
}
