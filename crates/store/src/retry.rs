//! Deadlines and back-off for etcd calls (infrastructure time: tokio).
//!
//! Policy: every etcd call runs under an overall deadline (the store's
//! `op_timeout` unless told otherwise). Idempotent calls (reads, watch and
//! keep-alive set-up, lease grants) are retried on transient errors
//! (UNAVAILABLE, connection refused or reset: a dead member stays in
//! etcd-client's endpoint pool) with jittered exponential back-off until the
//! deadline. One attempt may take at most a third of the deadline (and at
//! least a second), so that a hung member leaves time to try another.
//! Writes are retried only where a marker makes the retry safe (see
//! [`crate::Store::commit`]).

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use crate::error::{BoxError, Error, Result, is_transient};

/// The first back-off delay.
pub const BACKOFF_INITIAL: Duration = Duration::from_millis(50);
/// The longest back-off delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Jittered exponential back-off.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(BACKOFF_INITIAL, BACKOFF_MAX)
    }
}

impl Backoff {
    /// Starts at `initial`, doubles up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self { next: initial, max }
    }

    /// The next delay: uniformly random between half and all of the current
    /// step, which then doubles.
    pub fn next_delay(&mut self) -> Duration {
        let step = self.next;
        self.next = (self.next * 2).min(self.max);
        let half = step / 2;
        let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        half + Duration::from_millis(rand::rng().random_range(0..=jitter_ms))
    }

    /// Back to the initial delay after a success.
    pub fn reset(&mut self) {
        self.next = BACKOFF_INITIAL.min(self.max);
    }
}

/// The longest a single attempt may take within `deadline`.
pub(crate) fn attempt_cap(deadline: Duration) -> Duration {
    (deadline / 3).max(Duration::from_secs(1)).min(deadline)
}

/// What an attempt reported.
pub(crate) enum Attempt<T> {
    /// Done, successfully or with a final error.
    Done(Result<T>),
    /// A transient failure: retry if time allows.
    Transient(BoxError),
}

/// Runs `f` until it is done or `deadline` has passed, backing off between
/// transient failures. `f` gets the attempt number (from 1).
pub(crate) async fn with_retries<T, F, Fut>(op: &'static str, deadline: Duration, mut f: F) -> Result<T>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Attempt<T>>,
{
    let end = Instant::now() + deadline;
    let cap = attempt_cap(deadline);
    let mut backoff = Backoff::default();
    let mut last: Option<BoxError> = None;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let remaining = end.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(out_of_time(op, last));
        }
        match tokio::time::timeout(remaining.min(cap), f(attempt)).await {
            Ok(Attempt::Done(r)) => return r,
            Ok(Attempt::Transient(e)) => {
                tracing::debug!(op, attempt, error = %e, "transient etcd error; retrying");
                last = Some(e);
            }
            Err(_) => {
                tracing::debug!(op, attempt, "etcd attempt timed out; retrying");
                last =
                    Some(format!("attempt {attempt} got no answer within {:?}", remaining.min(cap)).into());
            }
        }
        let remaining = end.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(out_of_time(op, last));
        }
        tokio::time::sleep(backoff.next_delay().min(remaining)).await;
    }
}

/// Runs an idempotent etcd call with retries: transient etcd errors are
/// retried, others are final.
pub(crate) async fn idempotent<T, F, Fut>(op: &'static str, deadline: Duration, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, etcd_client::Error>>,
{
    with_retries(op, deadline, |_| {
        let fut = f();
        async move {
            match fut.await {
                Ok(v) => Attempt::Done(Ok(v)),
                Err(e) => classify(op, e),
            }
        }
    })
    .await
}

/// Sorts an etcd-client error into retryable or final.
pub(crate) fn classify<T>(op: &'static str, e: etcd_client::Error) -> Attempt<T> {
    if is_transient(&e) {
        Attempt::Transient(Box::new(e))
    } else {
        Attempt::Done(Err(Error::Etcd { op, source: e }))
    }
}

fn out_of_time(op: &'static str, last: Option<BoxError>) -> Error {
    match last {
        Some(source) => Error::Unavailable { op, source },
        None => Error::DeadlineExceeded { op },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(400));
        let d1 = b.next_delay();
        assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100));
        b.next_delay();
        for _ in 0..5 {
            let d = b.next_delay();
            assert!(d >= Duration::from_millis(200) && d <= Duration::from_millis(400));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_until_deadline_then_unavailable() {
        let mut calls = 0;
        let r: Result<()> = with_retries("test", Duration::from_secs(2), |_| {
            calls += 1;
            async { Attempt::Transient("refused".into()) }
        })
        .await;
        assert!(matches!(r, Err(Error::Unavailable { op: "test", .. })));
        assert!(calls > 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_attempt_gives_way_to_another() {
        let r: Result<u32> = with_retries("test", Duration::from_secs(6), |n| async move {
            if n == 1 {
                std::future::pending::<()>().await;
            }
            Attempt::Done(Ok(n))
        })
        .await;
        assert_eq!(r.unwrap(), 2);
    }
}
