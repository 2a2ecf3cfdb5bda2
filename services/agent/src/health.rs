//! Per-tile health: the last synthetic probe, the error rate of calls to
//! the partner over a sliding window, injected faults, and the verdict the
//! roll-out health gate reads.
//!
//! Verdict, first match wins:
//! 1. forced by ReportUnhealthy: UNHEALTHY;
//! 2. the probe FAILed: UNHEALTHY;
//! 3. the error rate is over the threshold: UNHEALTHY;
//! 4. the probe PASSed: HEALTHY;
//! 5. the probe was skipped (no endpoint, or a host that may not be
//!    contacted, see [`crate::probe`]): HEALTHY, resting on the error rate
//!    and injected faults alone;
//! 6. otherwise (the partner itself reported a test UNKNOWN): UNKNOWN.

use std::collections::HashMap;
use std::time::Duration;

use tilewave_proto::common::v1::{HealthStatus, ProbeResult, TestStatus};
use tokio::time::Instant;

use crate::faults::Forced;
use crate::probe::SKIPPED;
use crate::window::{ErrorWindow, Rate};

/// What the agent remembers of a tile's health.
#[derive(Debug, Clone)]
pub struct TileProbes {
    /// The last probe that ran; `None` until one did (or after a new
    /// revision was applied).
    pub last: Option<ProbeResult>,
    /// Outcomes of calls to the partner.
    pub window: ErrorWindow,
}

/// Health state of every tile.
#[derive(Debug)]
pub struct HealthBook {
    span: Duration,
    tiles: HashMap<String, TileProbes>,
}

impl HealthBook {
    /// Empty, with error windows over `span`.
    pub fn new(span: Duration) -> Self {
        Self {
            span,
            tiles: HashMap::new(),
        }
    }

    /// The window span.
    pub fn span(&self) -> Duration {
        self.span
    }

    fn tile(&mut self, tile_id: &str) -> &mut TileProbes {
        let span = self.span;
        self.tiles
            .entry(tile_id.to_owned())
            .or_insert_with(|| TileProbes {
                last: None,
                window: ErrorWindow::new(span),
            })
    }

    /// Records a probe that ran: PASS and FAIL count as calls to the
    /// partner; UNKNOWN (skipped) does not.
    pub fn record_probe(&mut self, tile_id: &str, result: ProbeResult, now: Instant) {
        let t = self.tile(tile_id);
        match result.status() {
            TestStatus::Pass => t.window.record(now, true),
            TestStatus::Fail => t.window.record(now, false),
            TestStatus::Unknown | TestStatus::Unspecified => {}
        }
        t.last = Some(result);
    }

    /// The last probe of a tile.
    pub fn last_probe(&self, tile_id: &str) -> Option<&ProbeResult> {
        self.tiles.get(tile_id).and_then(|t| t.last.as_ref())
    }

    /// The tile's calls within the window.
    pub fn rate(&mut self, tile_id: &str, now: Instant) -> Rate {
        self.tiles
            .get_mut(tile_id)
            .map(|t| t.window.rate(now))
            .unwrap_or_default()
    }

    /// A new revision is live: its probe is yet to run. The error window
    /// stays (it is what the region saw).
    pub fn new_revision(&mut self, tile_id: &str) {
        if let Some(t) = self.tiles.get_mut(tile_id) {
            t.last = None;
        }
    }

    /// The tile left the catalog.
    pub fn forget(&mut self, tile_id: &str) {
        self.tiles.remove(tile_id);
    }

    /// The catalog was lost.
    pub fn clear(&mut self) {
        self.tiles.clear();
    }
}

/// The verdict and its one-line reason (see the module docs).
pub fn verdict(
    probe: &ProbeResult,
    rate: Rate,
    threshold: f64,
    forced: Option<&Forced>,
) -> (HealthStatus, String) {
    let rate_text = format!(
        "error rate {:.2} ({} of {} calls) vs threshold {threshold:.2}",
        rate.error_rate(),
        rate.failures,
        rate.calls
    );
    if let Some(f) = forced {
        let why = if f.message.is_empty() {
            "ReportUnhealthy"
        } else {
            f.message.as_str()
        };
        return (HealthStatus::Unhealthy, format!("fault injected: {why}"));
    }
    match probe.status() {
        TestStatus::Fail => {
            return (
                HealthStatus::Unhealthy,
                format!("probe failed: {}", probe.message),
            );
        }
        TestStatus::Pass | TestStatus::Unknown | TestStatus::Unspecified => {}
    }
    if rate.calls > 0 && rate.error_rate() > threshold {
        return (HealthStatus::Unhealthy, format!("{rate_text}: over"));
    }
    match probe.status() {
        TestStatus::Pass => (HealthStatus::Healthy, format!("probe passed; {rate_text}")),
        _ if probe.message.starts_with(SKIPPED) => {
            (HealthStatus::Healthy, format!("{}; {rate_text}", probe.message))
        }
        _ => (
            HealthStatus::Unknown,
            format!("probe inconclusive: {}", probe.message),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(status: TestStatus, message: &str) -> ProbeResult {
        ProbeResult {
            status: status as i32,
            message: message.into(),
            ..Default::default()
        }
    }

    #[test]
    fn verdicts() {
        let ok = Rate {
            calls: 4,
            failures: 1,
        };
        let bad = Rate {
            calls: 4,
            failures: 3,
        };
        let cases = [
            (
                probe(TestStatus::Pass, "1 passed"),
                ok,
                None,
                HealthStatus::Healthy,
            ),
            (
                probe(TestStatus::Pass, "1 passed"),
                bad,
                None,
                HealthStatus::Unhealthy,
            ),
            (
                probe(TestStatus::Fail, "failed: write"),
                ok,
                None,
                HealthStatus::Unhealthy,
            ),
            (
                probe(TestStatus::Unknown, "probe skipped: host not allowed"),
                Rate::default(),
                None,
                HealthStatus::Healthy,
            ),
            (
                probe(TestStatus::Unknown, "probe skipped: host not allowed"),
                bad,
                None,
                HealthStatus::Unhealthy,
            ),
            (
                probe(TestStatus::Unknown, "the partner reports a test UNKNOWN"),
                ok,
                None,
                HealthStatus::Unknown,
            ),
        ];
        for (p, rate, forced, want) in cases {
            let (got, why) = verdict(&p, rate, 0.5, forced);
            assert_eq!(got, want, "{p:?} {rate:?}: {why}");
        }
        let forced = Forced {
            error_rate: 0.0,
            message: "partner down".into(),
        };
        let (got, why) = verdict(
            &probe(TestStatus::Pass, "ok"),
            Rate::default(),
            0.5,
            Some(&forced),
        );
        assert_eq!(got, HealthStatus::Unhealthy);
        assert_eq!(why, "fault injected: partner down");
    }

    #[tokio::test(start_paused = true)]
    async fn probes_feed_the_window_and_a_new_revision_resets_the_last_probe() {
        let mut book = HealthBook::new(Duration::from_secs(60));
        let now = Instant::now();
        book.record_probe("t", probe(TestStatus::Pass, "ok"), now);
        book.record_probe("t", probe(TestStatus::Fail, "no"), now);
        book.record_probe("t", probe(TestStatus::Unknown, "probe skipped: x"), now);
        assert_eq!(
            book.rate("t", now),
            Rate {
                calls: 2,
                failures: 1
            }
        );
        assert_eq!(book.last_probe("t").unwrap().message, "probe skipped: x");
        book.new_revision("t");
        assert!(book.last_probe("t").is_none());
        assert_eq!(book.rate("t", now).calls, 2);
        book.forget("t");
        assert_eq!(book.rate("t", now), Rate::default());
    }
}
