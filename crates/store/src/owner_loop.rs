//! One owner loop for every piece of long-running work.
//!
//! An [`OwnerLoop`] names the work (`owners/<work>`, see [`crate::keys::work`]),
//! the replica and the lease TTL. [`OwnerLoop::run`] keeps the work running
//! on this replica whenever it owns it: it campaigns (waits for the current
//! owner to release or lose the key), runs the work with an [`Owned`] (the
//! fencing token, the loss and shutdown signals), stops the work *at once*
//! on loss or shutdown (the work's future is dropped), releases the key on
//! every other exit, and campaigns again. [`OwnerLoop::run_once`] takes the
//! work only if it is free now and runs it once (a roll-out's owner, a
//! reconciliation pass).
//!
//! The policy is the same for every work: a failed campaign or a failed run
//! is logged with the work's name and retried after a jittered back-off
//! (100 ms doubling up to a third of the TTL); a lost ownership is logged
//! ("ownership lost") and campaigned for again at once.

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use crate::change::FencingToken;
use crate::error::Result;
use crate::ownership::{Ownership, ReplicaLease, current_owner, wait_for_delete};
use crate::retry::Backoff;
use crate::shutdown::Shutdown;
use crate::store::Store;

/// The first back-off after a failure.
const BACKOFF_INITIAL: Duration = Duration::from_millis(100);

/// What a running owner sees of its ownership.
#[derive(Debug, Clone)]
pub struct Owned {
    token: FencingToken,
    lost: watch::Receiver<bool>,
    shutdown: Shutdown,
    /// Set by the work once a write of its released the owner key
    /// ([`crate::Change::release`]): the loop then has nothing to release.
    released: Arc<AtomicBool>,
}

impl Owned {
    /// The fencing token: pass it to [`crate::Change::fence`] on every write
    /// (and to agents).
    pub fn token(&self) -> FencingToken {
        self.token.clone()
    }

    /// Whether the ownership is known lost (writes would be fenced).
    pub fn is_lost(&self) -> bool {
        *self.lost.borrow()
    }

    /// Tells the loop that a committed write of the work released the owner
    /// key ([`crate::Change::release`], in the work's last write): when the
    /// work returns, the loop does not release it again (one transaction
    /// fewer per run of short work, a roll-out's among them).
    pub fn released(&self) {
        self.released.store(true, Ordering::Release);
    }

    /// The service's shutdown signal.
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// Completes on loss or shutdown (the loop stops the work then anyway;
    /// for work that hands the signal on, e.g. to [`crate::run_timer_loop`]).
    pub async fn stopping(&self) {
        let mut lost = self.lost.clone();
        tokio::select! {
            _ = lost.wait_for(|l| *l) => {}
            () = self.shutdown.requested() => {}
        }
    }
}

/// How one run of the work ended.
#[derive(Debug)]
pub enum Ended<T> {
    /// The work returned (the key was released).
    Finished(T),
    /// The ownership was lost: the work was stopped at once.
    Lost,
    /// Shutdown was requested: the work was stopped and the key released.
    Shutdown,
}

/// The owner loop of one piece of work.
#[derive(Debug, Clone)]
pub struct OwnerLoop {
    store: Store,
    work: String,
    holder: String,
    ttl: Duration,
    /// The replica's shared lease, if the work is claimed on it.
    lease: Option<ReplicaLease>,
}

impl OwnerLoop {
    /// The loop of `work` (`owners/<work>`) for replica `holder`, with leases
    /// of `ttl`.
    pub fn new(store: &Store, work: impl Into<String>, holder: impl Into<String>, ttl: Duration) -> Self {
        Self {
            store: store.clone(),
            work: work.into(),
            holder: holder.into(),
            ttl,
            lease: None,
        }
    }

    /// Claims the work in [`OwnerLoop::run_once`] and
    /// [`OwnerLoop::run_once_when_free`] on the replica's shared lease
    /// instead of a lease of its own (its TTL replaces the loop's; `run`
    /// keeps a lease of its own): a claim is then one
    /// transaction, without the read of the owner key first (a refused
    /// claim leaves no lease to revoke).
    #[must_use]
    pub fn on_lease(mut self, lease: &ReplicaLease) -> Self {
        self.ttl = lease.ttl();
        self.lease = Some(lease.clone());
        self
    }

    /// The work's name.
    pub fn work(&self) -> &str {
        &self.work
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(BACKOFF_INITIAL, (self.ttl / 3).max(BACKOFF_INITIAL))
    }

    /// Runs `work` whenever this replica owns the work, until `shutdown`:
    /// campaign, run, stop on loss, release, campaign again. A run that
    /// returns `Ok` is taken again at once, one that returns `Err` after a
    /// back-off.
    pub async fn run<F, Fut, E>(&self, shutdown: &Shutdown, mut work: F)
    where
        F: FnMut(Owned) -> Fut,
        Fut: Future<Output = std::result::Result<(), E>>,
        E: Display,
    {
        let mut backoff = self.backoff();
        while !shutdown.is_requested() {
            let acquired = tokio::select! {
                r = Box::pin(Ownership::acquire(&self.store, &self.work, &self.holder, self.ttl)) => r,
                () = shutdown.requested() => return,
            };
            let own = match acquired {
                Ok(own) => own,
                Err(e) => {
                    tracing::warn!(work = %self.work, error = %e, "cannot take the work; retrying");
                    self.pause(shutdown, backoff.next_delay()).await;
                    continue;
                }
            };
            tracing::info!(work = %self.work, holder = %self.holder, "running the work");
            match self.drive(own, shutdown, &mut work).await {
                Ended::Finished(Ok(())) => backoff.reset(),
                Ended::Finished(Err(e)) => {
                    tracing::warn!(work = %self.work, error = %e, "the work failed; taking it again after a back-off");
                    self.pause(shutdown, backoff.next_delay()).await;
                }
                Ended::Lost => backoff.reset(),
                Ended::Shutdown => return,
            }
        }
    }

    /// Runs `work` once if nobody owns the work now; `None` when someone
    /// does. A taken work costs one read of its owner key.
    pub async fn run_once<F, Fut, T>(&self, shutdown: &Shutdown, work: F) -> Result<Option<Ended<T>>>
    where
        F: FnOnce(Owned) -> Fut,
        Fut: Future<Output = T>,
    {
        if shutdown.is_requested() {
            return Ok(Some(Ended::Shutdown));
        }
        let claimed = match &self.lease {
            Some(lease) => {
                Box::pin(Ownership::try_acquire_on(
                    &self.store,
                    &self.work,
                    &self.holder,
                    lease,
                ))
                .await?
            }
            None => {
                // Read first: a claim on a lease of its own grants one,
                // which a refused claim would have to revoke.
                if Box::pin(current_owner(&self.store, &self.work)).await?.is_some() {
                    return Ok(None);
                }
                Box::pin(Ownership::try_acquire(
                    &self.store,
                    &self.work,
                    &self.holder,
                    self.ttl,
                ))
                .await?
            }
        };
        let Some(own) = claimed else {
            return Ok(None);
        };
        Ok(Some(self.drive(own, shutdown, work).await))
    }

    /// [`OwnerLoop::run_once`] for work that one replica of several must
    /// take (a roll-out, a rotation): owned elsewhere, it waits for the
    /// owner key to go ([`OwnerLoop::wait_free`]) and tries again while
    /// `needed()` holds, so a dead owner's work is taken as soon as etcd
    /// expires its lease. `None` once it is no longer needed (or on
    /// shutdown) without having run here.
    pub async fn run_once_when_free<F, Fut, T>(
        &self,
        shutdown: &Shutdown,
        needed: impl Fn() -> bool,
        mut work: F,
    ) -> Result<Option<Ended<T>>>
    where
        F: FnMut(Owned) -> Fut,
        Fut: Future<Output = T>,
    {
        loop {
            if let Some(ended) = self.run_once(shutdown, &mut work).await? {
                return Ok(Some(ended));
            }
            self.wait_free(shutdown).await;
            if shutdown.is_requested() || !needed() {
                return Ok(None);
            }
        }
    }

    /// Waits until the work may be free: completes when its owner key is
    /// absent or gets deleted (released, or its lease expired), after one
    /// TTL at most, or on shutdown. For a caller of [`OwnerLoop::run_once`]
    /// that found the work owned elsewhere: trying again when this returns
    /// takes a dead owner's work as soon as etcd expires its lease, where a
    /// poll would add up to its interval (BENCHMARKS.md, "Failover").
    pub async fn wait_free(&self, shutdown: &Shutdown) {
        let key = self.store.keys().owner(&self.work);
        tokio::select! {
            () = Box::pin(wait_for_delete(&self.store, &key, self.ttl)) => {}
            () = shutdown.requested() => {}
        }
    }

    /// Runs the work once under `own`; releases the key unless it was lost.
    ///
    /// The etcd calls and the work are boxed here and above: a task that
    /// runs an owner loop is as large as its largest state, and a replica
    /// keeps one such task per owned roll-out or rotation, mostly waiting.
    async fn drive<F, Fut, T>(&self, own: Ownership, shutdown: &Shutdown, work: F) -> Ended<T>
    where
        F: FnOnce(Owned) -> Fut,
        Fut: Future<Output = T>,
    {
        let released = Arc::new(AtomicBool::new(false));
        let owned = Owned {
            token: own.token(),
            lost: own.lost_signal(),
            shutdown: shutdown.clone(),
            released: released.clone(),
        };
        let ended = tokio::select! {
            biased;
            () = own.lost() => Ended::Lost,
            () = shutdown.requested() => Ended::Shutdown,
            t = Box::pin(work(owned)) => Ended::Finished(t),
        };
        if matches!(ended, Ended::Lost) || own.is_lost() {
            // The key is gone (or going): nothing to release.
            tracing::warn!(work = %self.work, token = own.token().revision, "ownership lost: the work stopped at once");
            return ended;
        }
        if released.load(Ordering::Acquire) {
            // The work's last write deleted the key.
            own.forget();
            return ended;
        }
        if let Err(e) = Box::pin(own.release()).await {
            tracing::debug!(work = %self.work, error = %e, "release failed; the lease will expire");
        }
        ended
    }

    /// Sleeps `delay`, or less on shutdown.
    async fn pause(&self, shutdown: &Shutdown, delay: Duration) {
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shutdown.requested() => {}
        }
    }
}
