//! Test-only fault injection: the faults in force ([`Faults`]), which the
//! agent's calls and health read. The `FaultInjectionService` that sets them
//! is [`crate::fault_injection`]; it is served only with
//! `--enable-fault-injection`; without it every call is UNIMPLEMENTED
//! (tonic's answer for a service that is not there).
//!
//! - Latency and failures apply to AgentService calls only (not to health
//!   checks, reflection or this service), before the handler runs.
//! - A failed call is not counted in any tile's error rate: the error rate
//!   is about calls to the partner, and a caller already sees the agent's
//!   failures directly. ReportUnhealthy is the way to make a tile look
//!   unhealthy, optionally with an error rate.
//! - RefuseToStart persists a flag file in the data directory; ClearFaults
//!   removes it too.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use tilewave_proto::agent::v1::FaultState;
use tonic::Code;

use tilewave_core::quote::quote;

use crate::error::{Error, Result};
use crate::persist::DataDir;

/// The AgentService methods faults may name.
pub const METHODS: [&str; 6] = [
    "ApplyTile",
    "RemoveTile",
    "ListTiles",
    "Health",
    "InstallCredential",
    "VerifyCredential",
];

/// A tile forced unhealthy by ReportUnhealthy.
#[derive(Debug, Clone, PartialEq)]
pub struct Forced {
    /// The error rate to report; 0 leaves the real one.
    pub error_rate: f64,
    /// The probe message to report; empty: a default.
    pub message: String,
}

#[derive(Debug, Default)]
struct State {
    latency: Duration,
    latency_methods: Vec<String>,
    failures_remaining: i32,
    failure_methods: Vec<String>,
    failure_code: i32,
    failure_message: String,
    unhealthy: BTreeMap<String, Forced>,
}

/// The faults in force on this agent.
#[derive(Debug)]
pub struct Faults {
    state: Mutex<State>,
    data: DataDir,
}

fn applies(methods: &[String], method: &str) -> bool {
    methods.is_empty() || methods.iter().any(|m| m == method)
}

fn check_methods(methods: &[String]) -> Result<()> {
    match methods.iter().find(|m| !METHODS.contains(&m.as_str())) {
        Some(m) => Err(Error::invalid(
            "methods",
            format!("unknown AgentService method {} (one of {METHODS:?})", quote(m)),
        )),
        None => Ok(()),
    }
}

impl Faults {
    /// No faults; the refuse flag lives in `data`.
    pub fn new(data: DataDir) -> Self {
        Self {
            state: Mutex::new(State::default()),
            data,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock leaves plain data behind; use it.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs before every AgentService call: waits out injected latency, then
    /// fails the call if a failure is due.
    pub async fn before_call(&self, method: &str) -> Result<()> {
        let (latency, failure) = {
            let mut s = self.lock();
            let latency = if applies(&s.latency_methods, method) {
                s.latency
            } else {
                Duration::ZERO
            };
            let failure = if s.failures_remaining > 0 && applies(&s.failure_methods, method) {
                s.failures_remaining -= 1;
                let code = match s.failure_code {
                    0 => Code::Unavailable,
                    c => Code::from_i32(c),
                };
                let message = if s.failure_message.is_empty() {
                    format!(
                        "injected fault: {method} failed ({} more to fail)",
                        s.failures_remaining
                    )
                } else {
                    s.failure_message.clone()
                };
                Some(Error::Injected { code, message })
            } else {
                None
            };
            (latency, failure)
        };
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        match failure {
            Some(e) => {
                tracing::info!(method, error = %e, "failing call (injected fault)");
                Err(e)
            }
            None => Ok(()),
        }
    }

    /// Whether a tile is forced unhealthy, and how.
    pub fn forced(&self, tile_id: &str) -> Option<Forced> {
        self.lock().unhealthy.get(tile_id).cloned()
    }

    /// The faults in force, in wire form.
    pub fn snapshot(&self) -> FaultState {
        let s = self.lock();
        FaultState {
            latency: prost_types::Duration::try_from(s.latency)
                .ok()
                .filter(|_| !s.latency.is_zero()),
            latency_methods: s.latency_methods.clone(),
            failures_remaining: s.failures_remaining,
            failure_methods: s.failure_methods.clone(),
            failure_code: if s.failures_remaining > 0 {
                s.failure_code.max(Code::Unavailable as i32)
            } else {
                0
            },
            unhealthy_tiles: s.unhealthy.keys().cloned().collect(),
            refuse_to_start: self.data.refuse_flag(),
        }
    }

    /// InjectLatency.
    pub fn set_latency(&self, latency: Duration, methods: Vec<String>) -> Result<()> {
        check_methods(&methods)?;
        let mut s = self.lock();
        s.latency = latency;
        s.latency_methods = methods;
        Ok(())
    }

    /// FailNextCalls.
    pub fn fail_next(&self, count: i32, methods: Vec<String>, code: i32, message: String) -> Result<()> {
        check_methods(&methods)?;
        if count < 0 {
            return Err(Error::invalid("count", "must not be negative"));
        }
        // 0 means the default, UNAVAILABLE.
        if !(0..=16).contains(&code) {
            return Err(Error::invalid(
                "code",
                format!("{code} is not a failing gRPC status code"),
            ));
        }
        let mut s = self.lock();
        s.failures_remaining = count;
        s.failure_methods = methods;
        s.failure_code = if code == 0 { Code::Unavailable as i32 } else { code };
        s.failure_message = message;
        Ok(())
    }

    /// ReportUnhealthy.
    pub fn set_unhealthy(
        &self,
        tile_id: &str,
        unhealthy: bool,
        error_rate: f64,
        message: String,
    ) -> Result<()> {
        if tile_id.is_empty() {
            return Err(Error::invalid("tile_id", "must not be empty"));
        }
        if !(0.0..=1.0).contains(&error_rate) {
            return Err(Error::invalid(
                "error_rate",
                format!("must be between 0 and 1, got {error_rate}"),
            ));
        }
        let mut s = self.lock();
        if unhealthy {
            s.unhealthy
                .insert(tile_id.to_owned(), Forced { error_rate, message });
        } else {
            s.unhealthy.remove(tile_id);
        }
        Ok(())
    }

    /// ClearFaults: everything, the persisted refuse flag included.
    pub fn clear(&self) -> Result<()> {
        *self.lock() = State::default();
        self.data.set_refuse_flag(false)
    }

    /// RefuseToStart.
    pub fn set_refuse(&self, refuse: bool) -> Result<()> {
        self.data.set_refuse_flag(refuse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn faults() -> (tempfile::TempDir, Faults) {
        let dir = tempfile::tempdir().unwrap();
        let f = Faults::new(DataDir::new(dir.path()));
        (dir, f)
    }

    #[tokio::test]
    async fn exactly_n_matching_calls_fail() {
        let (_d, f) = faults();
        f.fail_next(2, vec!["ApplyTile".into()], 0, String::new())
            .unwrap();
        assert!(
            f.before_call("ListTiles").await.is_ok(),
            "other methods are not affected"
        );
        let e = f.before_call("ApplyTile").await.unwrap_err();
        assert_eq!(tonic::Status::from(e).code(), Code::Unavailable);
        assert!(f.before_call("ApplyTile").await.is_err());
        assert!(f.before_call("ApplyTile").await.is_ok());
        assert_eq!(f.snapshot().failures_remaining, 0);
    }

    #[tokio::test]
    async fn a_code_and_message_can_be_chosen() {
        let (_d, f) = faults();
        f.fail_next(1, vec![], Code::ResourceExhausted as i32, "slow down".into())
            .unwrap();
        let s = tonic::Status::from(f.before_call("Health").await.unwrap_err());
        assert_eq!((s.code(), s.message()), (Code::ResourceExhausted, "slow down"));
        assert!(f.fail_next(1, vec!["Apply".into()], 0, String::new()).is_err());
        assert!(f.fail_next(1, vec![], 99, String::new()).is_err());
        assert!(f.fail_next(-1, vec![], 0, String::new()).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn latency_is_added() {
        let (_d, f) = faults();
        f.set_latency(Duration::from_secs(2), vec!["Health".into()])
            .unwrap();
        let t0 = tokio::time::Instant::now();
        f.before_call("Health").await.unwrap();
        assert!(t0.elapsed() >= Duration::from_secs(2));
        let t1 = tokio::time::Instant::now();
        f.before_call("ApplyTile").await.unwrap();
        assert!(t1.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn unhealthy_and_refuse_are_cleared_together() {
        let (_d, f) = faults();
        f.set_unhealthy("riverflow", true, 0.9, "boom".into()).unwrap();
        f.set_refuse(true).unwrap();
        let s = f.snapshot();
        assert_eq!(s.unhealthy_tiles, ["riverflow"]);
        assert!(s.refuse_to_start);
        assert_eq!(f.forced("riverflow").unwrap().error_rate, 0.9);
        f.clear().unwrap();
        assert_eq!(f.snapshot(), FaultState::default());
        assert!(f.set_unhealthy("", true, 0.0, String::new()).is_err());
    }
}
