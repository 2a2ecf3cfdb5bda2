//! The kit's own runtime, for the connections it keeps open for reuse (a
//! service's channels, the etcd client of `dump`). A test's runtime is
//! blocked while the kit's `Drop` terminates the children; connections
//! driven by that runtime could not close, and every server would wait out
//! its shutdown grace for them. Driven here, they close as soon as they
//! are dropped.

use std::future::Future;
use std::sync::OnceLock;

use anyhow::Context as _;

fn runtime() -> anyhow::Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("tilewave-testkit")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| anyhow::anyhow!("starting the test kit's runtime: {e}"))
}

/// Runs `fut` on the kit's runtime (what it spawns, such as a channel's
/// connection, stays there) and waits for its output.
pub(crate) async fn run<F>(fut: F) -> anyhow::Result<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    runtime()?
        .spawn(fut)
        .await
        .context("a task on the test kit's runtime failed")
}
