//! One shutdown signal for every background task, and the named tasks a
//! service stops in order.
//!
//! A [`Shutdown`] is a cloneable signal: hand a clone to every task, which
//! selects on [`Shutdown::requested`] (or checks
//! [`Shutdown::is_requested`]). A service starts its background tasks
//! through [`Tasks::spawn`], each under a name and with a signal of its own,
//! and [`Tasks::stop`] stops them one at a time, the last started first,
//! waiting for each to end (at most a grace period, then it is aborted) and
//! logging each by name. A [`Trigger`] dropped without firing counts as a
//! request: a task never outlives whoever started it.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Asks the tasks holding its [`Shutdown`]s to stop.
#[derive(Debug)]
pub struct Trigger {
    tx: watch::Sender<bool>,
}

impl Trigger {
    /// Requests the shutdown (again: no effect).
    pub fn request(&self) {
        self.tx.send_replace(true);
    }

    /// A signal that completes on [`Trigger::request`].
    pub fn signal(&self) -> Shutdown {
        Shutdown {
            rx: self.tx.subscribe(),
            _keep: None,
        }
    }
}

/// A request to stop, shared by every task it is cloned into.
#[derive(Debug, Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
    /// Keeps the sender of [`Shutdown::never`] alive.
    _keep: Option<std::sync::Arc<watch::Sender<bool>>>,
}

impl Shutdown {
    /// A trigger and its signal.
    pub fn new() -> (Trigger, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (Trigger { tx }, Shutdown { rx, _keep: None })
    }

    /// A signal that is never requested (for tests and one-off runs).
    pub fn never() -> Shutdown {
        let (tx, rx) = watch::channel(false);
        Shutdown {
            rx,
            _keep: Some(std::sync::Arc::new(tx)),
        }
    }

    /// A signal requested when `future` completes (e.g. the server's
    /// shutdown future); the future runs on its own task.
    pub fn on(future: impl Future<Output = ()> + Send + 'static) -> Shutdown {
        let (trigger, signal) = Shutdown::new();
        tokio::spawn(async move {
            future.await;
            trigger.request();
        });
        signal
    }

    /// Whether the shutdown was requested (or its trigger dropped).
    pub fn is_requested(&self) -> bool {
        *self.rx.borrow() || self.rx.has_changed().is_err()
    }

    /// Completes once the shutdown is requested (or its trigger dropped).
    pub async fn requested(&self) {
        let mut rx = self.rx.clone();
        // An error means the trigger is gone: that stops the task as well.
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// One named background task.
#[derive(Debug)]
struct Task {
    name: String,
    trigger: Trigger,
    handle: JoinHandle<()>,
}

/// The background tasks of a service, each named and with a shutdown signal
/// of its own, stopped in the reverse order of their start.
#[derive(Debug, Default)]
pub struct Tasks {
    tasks: Vec<Task>,
}

impl Tasks {
    /// No tasks yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts `task` under `name`, handing it its shutdown signal.
    pub fn spawn<F, Fut>(&mut self, name: &str, task: F)
    where
        F: FnOnce(Shutdown) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (trigger, signal) = Shutdown::new();
        let handle = tokio::spawn(task(signal));
        tracing::debug!(task = name, "background task started");
        self.tasks.push(Task {
            name: name.to_owned(),
            trigger,
            handle,
        });
    }

    /// The tasks' names, in start order.
    pub fn names(&self) -> Vec<&str> {
        self.tasks.iter().map(|t| t.name.as_str()).collect()
    }

    /// Stops every task, the last started first: requests its shutdown and
    /// waits for it to end, at most `grace` (then aborts it).
    pub async fn stop(self, grace: Duration) {
        for mut task in self.tasks.into_iter().rev() {
            task.trigger.request();
            match tokio::time::timeout(grace, &mut task.handle).await {
                Ok(Ok(())) => tracing::debug!(task = %task.name, "background task stopped"),
                Ok(Err(e)) => tracing::warn!(task = %task.name, error = %e, "background task failed"),
                Err(_) => {
                    tracing::warn!(task = %task.name, ?grace, "background task outlived its grace; aborting it");
                    task.handle.abort();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[tokio::test]
    async fn a_signal_completes_on_request_and_on_a_dropped_trigger() {
        let (trigger, signal) = Shutdown::new();
        let copy = signal.clone();
        assert!(!copy.is_requested());
        trigger.request();
        copy.requested().await;
        assert!(signal.is_requested());

        let (trigger, signal) = Shutdown::new();
        drop(trigger);
        assert!(signal.is_requested());
        signal.requested().await;

        let never = Shutdown::never();
        assert!(!never.is_requested());
        let waited = tokio::time::timeout(Duration::from_millis(20), never.requested()).await;
        assert!(waited.is_err(), "never requested");
    }

    #[tokio::test]
    async fn tasks_stop_last_started_first() {
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Tasks::new();
        for name in ["controller", "timers", "lifecycle"] {
            let order = Arc::clone(&order);
            tasks.spawn(name, move |shutdown| async move {
                shutdown.requested().await;
                if let Ok(mut o) = order.lock() {
                    o.push(name);
                }
            });
        }
        assert_eq!(tasks.names(), ["controller", "timers", "lifecycle"]);
        tasks.stop(Duration::from_secs(5)).await;
        let order = order.lock().map(|o| o.clone()).unwrap_or_default();
        assert_eq!(order, ["lifecycle", "timers", "controller"]);
    }

    #[tokio::test]
    async fn a_task_that_ignores_its_signal_is_aborted_after_the_grace() {
        let mut tasks = Tasks::new();
        tasks.spawn("stubborn", |_shutdown| std::future::pending());
        tokio::time::timeout(Duration::from_secs(5), tasks.stop(Duration::from_millis(20)))
            .await
            .expect("stop returns after the grace");
    }
}
