//! The error rate a region saw: outcomes of calls over a sliding window of
//! real time (infrastructure time: `tokio::time::Instant`, passed in so the
//! window is a pure value).

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// Outcomes of calls within the last `span`.
#[derive(Debug, Clone)]
pub struct ErrorWindow {
    span: Duration,
    events: VecDeque<(Instant, bool)>,
}

/// What a window holds at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Rate {
    /// Calls in the window.
    pub calls: u64,
    /// Of which failed.
    pub failures: u64,
}

impl Rate {
    /// Failed calls over all calls, 0 to 1; 0 without calls.
    pub fn error_rate(&self) -> f64 {
        if self.calls == 0 {
            0.0
        } else {
            self.failures as f64 / self.calls as f64
        }
    }

    /// Both windows' calls together.
    pub fn plus(self, other: Rate) -> Rate {
        Rate {
            calls: self.calls + other.calls,
            failures: self.failures + other.failures,
        }
    }
}

impl ErrorWindow {
    /// An empty window over `span`.
    pub fn new(span: Duration) -> Self {
        Self {
            span,
            events: VecDeque::new(),
        }
    }

    /// The window's span.
    pub fn span(&self) -> Duration {
        self.span
    }

    /// Records one call's outcome at `now`.
    pub fn record(&mut self, now: Instant, ok: bool) {
        self.prune(now);
        self.events.push_back((now, ok));
    }

    /// The calls within the window ending at `now`.
    pub fn rate(&mut self, now: Instant) -> Rate {
        self.prune(now);
        let failures = self.events.iter().filter(|(_, ok)| !ok).count() as u64;
        Rate {
            calls: self.events.len() as u64,
            failures,
        }
    }

    /// Drops what fell out of the window.
    fn prune(&mut self, now: Instant) {
        while let Some((at, _)) = self.events.front() {
            if now.saturating_duration_since(*at) > self.span {
                self.events.pop_front();
            } else {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn failures_slide_out_of_the_window() {
        let t0 = Instant::now();
        let mut w = ErrorWindow::new(Duration::from_secs(60));
        assert_eq!(w.rate(t0).error_rate(), 0.0);
        w.record(t0, false);
        w.record(t0 + Duration::from_secs(10), true);
        w.record(t0 + Duration::from_secs(20), true);
        w.record(t0 + Duration::from_secs(30), false);
        let r = w.rate(t0 + Duration::from_secs(30));
        assert_eq!(
            r,
            Rate {
                calls: 4,
                failures: 2
            }
        );
        assert_eq!(r.error_rate(), 0.5);
        // The first failure is older than 60 s at t0 + 61 s.
        let r = w.rate(t0 + Duration::from_secs(61));
        assert_eq!(
            r,
            Rate {
                calls: 3,
                failures: 1
            }
        );
        let r = w.rate(t0 + Duration::from_secs(200));
        assert_eq!(r, Rate::default());
    }

    #[test]
    fn rates_add_up() {
        let a = Rate {
            calls: 2,
            failures: 1,
        };
        let b = Rate {
            calls: 2,
            failures: 0,
        };
        assert_eq!(a.plus(b).error_rate(), 0.25);
    }
}
