//! Polling until something converges, against a deadline: the replacement
//! for fixed sleeps in tests. A try can also say that waiting longer is
//! pointless ([`Outcome::Abort`], e.g. a roll-out that failed), so that
//! the wait ends at once instead of at the deadline.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

/// How often [`eventually`] tries again.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// One try's outcome as [`eventually`] sees it: a value, or why not yet.
/// Implemented for `Result<T, E: Display>` and `Option<T>` (a failure is
/// tried again) and for [`Outcome`] (which can also stop the wait).
pub trait Attempt<T> {
    /// The value, or a description of the failure.
    fn into_attempt(self) -> Result<T, String>;

    /// The value, a failure worth another try, or one that is not: by
    /// default every failure is tried again.
    fn into_outcome(self) -> Outcome<T>
    where
        Self: Sized,
    {
        match self.into_attempt() {
            Ok(v) => Outcome::Done(v),
            Err(e) => Outcome::Retry(e),
        }
    }
}

/// A try's outcome that can end the wait early: [`Outcome::Abort`] when
/// what is waited for can no longer happen (a roll-out that FAILED or
/// PAUSED will not succeed by itself), so [`eventually`] fails at once
/// instead of polling until the deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<T> {
    /// Converged: the value.
    Done(T),
    /// Not yet: why, for the error at the deadline.
    Retry(String),
    /// Never: why, for the error returned at once.
    Abort(String),
}

impl<T> Attempt<T> for Outcome<T> {
    fn into_attempt(self) -> Result<T, String> {
        match self {
            Outcome::Done(v) => Ok(v),
            Outcome::Retry(e) | Outcome::Abort(e) => Err(e),
        }
    }

    fn into_outcome(self) -> Outcome<T> {
        self
    }
}

impl<T, E: Display> Attempt<T> for Result<T, E> {
    fn into_attempt(self) -> Result<T, String> {
        // `{:#}` prints an anyhow error with its causes on one line.
        self.map_err(|e| format!("{e:#}"))
    }
}

impl<T> Attempt<T> for Option<T> {
    fn into_attempt(self) -> Result<T, String> {
        self.ok_or_else(|| "got None".to_owned())
    }
}

/// Calls `f` every [`POLL_INTERVAL`] until it returns `Ok`/`Some`, and
/// returns that value; fails once `timeout` has passed, with an error naming
/// `what`, the number of tries and the last failure. A try still running at
/// the deadline is cancelled. A try that returns [`Outcome::Abort`] fails
/// the wait at once.
pub async fn eventually<T, R, F, Fut>(what: &str, timeout: Duration, f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = R>,
    R: Attempt<T>,
{
    eventually_every(what, timeout, POLL_INTERVAL, f).await
}

/// [`eventually`], trying every `interval` instead of every
/// [`POLL_INTERVAL`] (a benchmark that polls at its own pace).
pub async fn eventually_every<T, R, F, Fut>(
    what: &str,
    timeout: Duration,
    interval: Duration,
    mut f: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = R>,
    R: Attempt<T>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut tries = 0u32;
    let mut last = String::from("no try finished before the deadline");
    loop {
        tries += 1;
        match tokio::time::timeout_at(deadline, f()).await {
            Ok(outcome) => match outcome.into_outcome() {
                Outcome::Done(v) => return Ok(v),
                Outcome::Retry(e) => last = e,
                Outcome::Abort(e) => {
                    anyhow::bail!("gave up waiting for {what} after {tries} tries: {e}")
                }
            },
            Err(_) => last = format!("the last try was still running at the deadline (previously: {last})"),
        }
        let next = tokio::time::Instant::now() + interval;
        if next >= deadline {
            anyhow::bail!(
                "timed out after {timeout:?} waiting for {what} ({tries} tries); last failure: {last}"
            );
        }
        tokio::time::sleep_until(next).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_abort_stops_the_wait_at_once() {
        let start = tokio::time::Instant::now();
        let mut tries = 0;
        let e = eventually("a roll-out SUCCEEDED", Duration::from_secs(30), || {
            tries += 1;
            let outcome = if tries < 3 {
                Outcome::Retry("RUNNING".to_owned())
            } else {
                Outcome::<()>::Abort("FAILED".to_owned())
            };
            async move { outcome }
        })
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert_eq!(tries, 3);
        assert!(
            e.contains("gave up") && e.contains("FAILED") && e.contains("3 tries"),
            "{e}"
        );
        assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());
    }

    #[tokio::test]
    async fn a_retry_waits_until_the_deadline() {
        let e = eventually("never", Duration::from_millis(200), || async {
            Outcome::<()>::Retry("not yet".to_owned())
        })
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(e.contains("timed out") && e.contains("not yet"), "{e}");
    }
}
