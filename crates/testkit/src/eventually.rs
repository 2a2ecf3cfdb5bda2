//! Polling until something converges, against a deadline: the replacement
//! for fixed sleeps in tests.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

/// How often [`eventually`] tries again.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// One try's outcome as [`eventually`] sees it: a value, or why not yet.
/// Implemented for `Result<T, E: Display>` and `Option<T>`.
pub trait Attempt<T> {
    /// The value, or a description of the failure.
    fn into_attempt(self) -> Result<T, String>;
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
/// the deadline is cancelled.
pub async fn eventually<T, R, F, Fut>(what: &str, timeout: Duration, mut f: F) -> anyhow::Result<T>
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
            Ok(outcome) => match outcome.into_attempt() {
                Ok(v) => return Ok(v),
                Err(e) => last = e,
            },
            Err(_) => last = format!("the last try was still running at the deadline (previously: {last})"),
        }
        let next = tokio::time::Instant::now() + POLL_INTERVAL;
        if next >= deadline {
            anyhow::bail!(
                "timed out after {timeout:?} waiting for {what} ({tries} tries); last failure: {last}"
            );
        }
        tokio::time::sleep_until(next).await;
    }
}
