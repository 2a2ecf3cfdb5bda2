//! The virtual clock: domain time stored at `clock` as `{virtual_base,
//! real_base, rate}`: virtual now = virtual_base + rate x (real now -
//! real_base). Every process watches the key (a [`WatchCache`]), so all
//! compute the same time; changes are compare-and-swap updates of the key
//! with an audit record, and only ever move it forward.
//!
//! The [`Clock`] trait, the [`SystemClock`] and the timestamp conversions sit
//! at the bottom of the store ([`crate::time`]) and are re-exported here; this
//! module sits above the store, its transactions and its caches, which it
//! uses.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tilewave_proto::common::v1::VirtualClock as VirtualClockMsg;

use crate::actor::Actor;
use crate::audit::{self, AuditRecordExt as _};
use crate::cache::WatchCache;
use crate::change::Change;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::time::MAX_REAL_SLEEP;
pub use crate::time::{BoxFuture, Clock, SystemClock, from_proto_timestamp, to_proto_timestamp, wall_now};

/// How many compare-and-swap rounds a clock change tries before giving up.
const CAS_ROUNDS: usize = 32;

/// The virtual clock's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClockState {
    /// Virtual time at `real_base`.
    pub virtual_base: Timestamp,
    /// The real time the state was set at.
    pub real_base: Timestamp,
    /// Virtual seconds per real second; 0 freezes the clock.
    pub rate: f64,
}

impl ClockState {
    /// Virtual time at real time `real`.
    pub fn at(&self, real: Timestamp) -> Timestamp {
        let elapsed = real.duration_since(self.real_base).as_nanos() as f64;
        let advanced = (elapsed * self.rate).clamp(-1e27, 1e27) as i128;
        let nanos = self.virtual_base.as_nanosecond().saturating_add(advanced);
        Timestamp::from_nanosecond(nanos).unwrap_or(if advanced >= 0 {
            Timestamp::MAX
        } else {
            Timestamp::MIN
        })
    }

    /// From the stored message.
    pub fn from_proto(m: &VirtualClockMsg) -> Result<Self> {
        let field = |t: &Option<prost_types::Timestamp>, name: &str| {
            t.as_ref()
                .ok_or_else(|| Error::invalid(format!("clock.{name} is missing")))
                .and_then(from_proto_timestamp)
        };
        Ok(Self {
            virtual_base: field(&m.virtual_base, "virtual_base")?,
            real_base: field(&m.real_base, "real_base")?,
            rate: check_rate(m.rate)?,
        })
    }

    /// To the stored message.
    pub fn to_proto(&self) -> VirtualClockMsg {
        VirtualClockMsg {
            virtual_base: Some(to_proto_timestamp(self.virtual_base)),
            real_base: Some(to_proto_timestamp(self.real_base)),
            rate: self.rate,
        }
    }
}

fn check_rate(rate: f64) -> Result<f64> {
    if rate.is_finite() && rate >= 0.0 {
        Ok(rate)
    } else {
        Err(Error::invalid(format!(
            "clock rate must be finite and >= 0, got {rate}"
        )))
    }
}

/// The domain clock a service follows: the virtual clock when one is stored
/// in etcd (tests, the demo), else the system clock.
pub async fn domain_clock(store: &Store) -> Result<Arc<dyn Clock>> {
    match VirtualClock::attach(store).await {
        Ok(clock) => Ok(clock),
        Err(Error::ClockNotVirtual) => Ok(Arc::new(SystemClock)),
        Err(e) => Err(e),
    }
}

/// The virtual clock, shared by every process through the `clock` key.
pub struct VirtualClock {
    store: Store,
    key: String,
    cache: WatchCache<VirtualClockMsg>,
    /// The latest time this process returned: `now()` never goes back, even
    /// if a change reaches this process a moment late.
    last: Mutex<Timestamp>,
}

impl std::fmt::Debug for VirtualClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtualClock")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl VirtualClock {
    /// Follows the virtual clock, creating it (on behalf of `actor`) with
    /// `initial` as virtual now and `rate` if the key is absent; an existing
    /// clock is left alone.
    pub async fn start(store: &Store, initial: Timestamp, rate: f64, actor: &Actor) -> Result<Arc<Self>> {
        let rate = check_rate(rate)?;
        let key = store.keys().clock();
        if store.get::<VirtualClockMsg>(&key).await?.is_none() {
            let state = ClockState {
                virtual_base: initial,
                real_base: wall_now(),
                rate,
            };
            let change = Change::new().create(key.clone(), &state.to_proto()).audit(
                audit::record(
                    "StartVirtualClock",
                    "clock",
                    "clock",
                    format!("virtual clock started at {initial} with rate {rate}"),
                )
                .at(initial),
            );
            match store.commit(change, actor).await {
                Ok(_) | Err(Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Self::attach(store).await
    }

    /// Follows an existing virtual clock; [`Error::ClockNotVirtual`] if the
    /// key is absent (the system clock is in use).
    pub async fn attach(store: &Store) -> Result<Arc<Self>> {
        let key = store.keys().clock();
        let cache = WatchCache::<VirtualClockMsg>::key(store, &key).await?;
        let state = cache
            .get(&key)
            .ok_or(Error::ClockNotVirtual)
            .and_then(|v| ClockState::from_proto(&v.value))?;
        Ok(Arc::new(Self {
            store: store.clone(),
            key,
            cache,
            last: Mutex::new(state.at(wall_now())),
        }))
    }

    /// The clock's current parameters, as this process last saw them.
    pub fn state(&self) -> Option<ClockState> {
        self.cache
            .get(&self.key)
            .and_then(|v| ClockState::from_proto(&v.value).ok())
    }

    /// Moves the clock forward by `by`; a negative amount is
    /// [`Error::ClockBackwards`]. Returns the new virtual now.
    pub async fn advance(&self, by: SignedDuration, actor: &Actor) -> Result<Timestamp> {
        self.modify(actor, "Advance", |s, real| {
            let now = s.at(real);
            let to = now
                .checked_add(by)
                .map_err(|e| Error::invalid(format!("cannot advance by {by}: {e}")))?;
            if by.is_negative() {
                return Err(Error::ClockBackwards {
                    current: now,
                    requested: to,
                });
            }
            Ok((
                ClockState {
                    virtual_base: to,
                    real_base: real,
                    rate: s.rate,
                },
                format!("advanced by {by:#} to {to}"),
            ))
        })
        .await
    }

    /// Sets the clock to `to`; an earlier time than now is
    /// [`Error::ClockBackwards`]. Returns the new virtual now.
    pub async fn set(&self, to: Timestamp, actor: &Actor) -> Result<Timestamp> {
        self.modify(actor, "Set", |s, real| {
            let now = s.at(real);
            if to < now {
                return Err(Error::ClockBackwards {
                    current: now,
                    requested: to,
                });
            }
            Ok((
                ClockState {
                    virtual_base: to,
                    real_base: real,
                    rate: s.rate,
                },
                format!("set to {to}"),
            ))
        })
        .await
    }

    /// Sets the rate (0 freezes), continuing from the current virtual now.
    pub async fn set_rate(&self, rate: f64, actor: &Actor) -> Result<Timestamp> {
        let rate = check_rate(rate)?;
        self.modify(actor, "SetRate", |s, real| {
            Ok((
                ClockState {
                    virtual_base: s.at(real),
                    real_base: real,
                    rate,
                },
                format!("rate set to {rate}"),
            ))
        })
        .await
    }

    /// Compare-and-swap on the clock key until the change applies to the
    /// state it was computed from.
    async fn modify<F>(&self, actor: &Actor, action: &str, f: F) -> Result<Timestamp>
    where
        F: Fn(ClockState, Timestamp) -> Result<(ClockState, String)>,
    {
        for _ in 0..CAS_ROUNDS {
            let current = match self.store.get::<VirtualClockMsg>(&self.key).await? {
                Some(c) => c,
                None => return Err(Error::ClockNotVirtual),
            };
            let real = wall_now();
            let (next, summary) = f(ClockState::from_proto(&current.value)?, real)?;
            let now = next.virtual_base;
            let change = Change::new()
                .update(self.key.clone(), &next.to_proto(), current.etag)
                .audit(audit::record(action, "clock", "clock", summary).at(now));
            match self.store.commit(change, actor).await {
                Ok(info) => {
                    // Read your own write: this process's now() reflects it.
                    self.cache
                        .wait_for_revision(info.revision, self.store.op_timeout())
                        .await?;
                    return Ok(now);
                }
                Err(Error::Conflict { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Conflict {
            key: self.key.clone(),
        })
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> Timestamp {
        let computed = self.state().map(|s| s.at(wall_now()));
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(t) = computed
            && t > *last
        {
            *last = t;
        }
        *last
    }

    fn is_virtual(&self) -> bool {
        true
    }

    fn sleep_until(&self, t: Timestamp) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let mut changed = self.cache.revision_watch();
            loop {
                changed.borrow_and_update();
                let now = self.now();
                if now >= t {
                    return;
                }
                let rate = self.state().map_or(0.0, |s| s.rate);
                if rate > 0.0 {
                    let virtual_left = t.duration_since(now).as_secs_f64();
                    let real = Duration::try_from_secs_f64(virtual_left / rate)
                        .unwrap_or(MAX_REAL_SLEEP)
                        .clamp(Duration::from_millis(1), MAX_REAL_SLEEP);
                    tokio::select! {
                        () = tokio::time::sleep(real) => {}
                        _ = changed.changed() => {}
                    }
                } else if changed.changed().await.is_err() {
                    tokio::time::sleep(MAX_REAL_SLEEP).await;
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    #[test]
    fn virtual_now_follows_rate() {
        let s = ClockState {
            virtual_base: ts(1_000_000),
            real_base: ts(10),
            rate: 3600.0,
        };
        assert_eq!(s.at(ts(10)), ts(1_000_000));
        assert_eq!(s.at(ts(12)), ts(1_000_000 + 7200));
        let frozen = ClockState { rate: 0.0, ..s };
        assert_eq!(frozen.at(ts(1_000)), ts(1_000_000));
    }

    #[test]
    fn proto_round_trip() {
        let s = ClockState {
            virtual_base: Timestamp::new(5, 7).unwrap(),
            real_base: ts(9),
            rate: 2.5,
        };
        assert_eq!(ClockState::from_proto(&s.to_proto()).unwrap(), s);
        let bad = VirtualClockMsg {
            rate: -1.0,
            ..s.to_proto()
        };
        assert!(ClockState::from_proto(&bad).is_err());
    }
}
