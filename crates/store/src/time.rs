//! Domain time at the bottom of the store: the [`Clock`] trait every
//! service reads plans, bakes, deadlines and GA moments from (docs/design.md,
//! "Time"), the [`SystemClock`], and the conversions between jiff and
//! protobuf timestamps. Nothing here talks to etcd; the virtual clock, which
//! does, lives above the store in [`crate::clock`].
//!
//! This is the only module that reads the wall clock ([`wall_now`]);
//! `clippy.toml` denies it everywhere else. Infrastructure time (leases, RPC
//! deadlines, back-off) uses `tokio::time` and never this module.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::error::{Error, Result};

/// A boxed future, for [`Clock::sleep_until`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The longest single real sleep while waiting for a domain time: the wall
/// clock may be adjusted, so sleeps re-check at least this often.
pub(crate) const MAX_REAL_SLEEP: Duration = Duration::from_secs(60);

/// Domain time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current domain time.
    fn now(&self) -> Timestamp;
    /// Whether this is the virtual clock (and so may be moved).
    fn is_virtual(&self) -> bool;
    /// Completes once [`Clock::now`] has reached `t`; wakes early to
    /// re-check when the clock is changed.
    fn sleep_until(&self, t: Timestamp) -> BoxFuture<'_, ()>;
}

/// The wall clock: the one place it is read.
#[allow(clippy::disallowed_methods)] // the clock module is where time is read (clippy.toml)
pub fn wall_now() -> Timestamp {
    Timestamp::now()
}

/// The system (wall) clock, used in production.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        wall_now()
    }

    fn is_virtual(&self) -> bool {
        false
    }

    fn sleep_until(&self, t: Timestamp) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            loop {
                let now = wall_now();
                if now >= t {
                    return;
                }
                tokio::time::sleep(real_duration(t.duration_since(now)).min(MAX_REAL_SLEEP)).await;
            }
        })
    }
}

/// A protobuf timestamp from a jiff one.
pub fn to_proto_timestamp(t: Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.as_second(),
        nanos: t.subsec_nanosecond(),
    }
}

/// A jiff timestamp from a protobuf one ([`Error::InvalidArgument`] when out
/// of range).
pub fn from_proto_timestamp(t: &prost_types::Timestamp) -> Result<Timestamp> {
    Timestamp::new(t.seconds, t.nanos).map_err(|e| Error::invalid(format!("bad timestamp: {e}")))
}

/// A non-negative real duration from a signed one (negative: zero).
pub(crate) fn real_duration(d: SignedDuration) -> Duration {
    Duration::try_from(d).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn system_clock_sleeps_until() {
        let c = SystemClock;
        let t = c.now() + SignedDuration::from_millis(30);
        c.sleep_until(t).await;
        assert!(c.now() >= t);
    }
}
