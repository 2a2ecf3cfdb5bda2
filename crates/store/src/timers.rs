//! Durable timers: bake ends, acknowledgement deadlines, grace periods, GA
//! moments.
//!
//! A timer is a `Timer` message at `timers/<due as zero-padded unix
//! milliseconds>/<id>`, so keys sort in due order. It is scheduled inside the
//! change that needs it ([`crate::Change::schedule`]). Firing commits the
//! timer's effect and the deletion of the timer key in **one** fenced
//! transaction that also compares the timer key's etag: whichever replica
//! fires first wins, a second attempt finds the key gone
//! ([`Fired::AlreadyFired`]) and a replica that lost ownership is
//! [`crate::Error::Fenced`]. So a timer takes effect exactly once, across
//! crashes and competing owners.
//!
//! [`run_timer_loop`] drives firing from a [`Clock`]: when the clock jumps,
//! every timer that fell due fires, in due order.

use std::future::Future;
use std::sync::Arc;

use jiff::Timestamp;
use tilewave_proto::common::v1::{AuditRecord, Timer};
use tracing::Instrument as _;

use crate::actor::Actor;
use crate::cache::WatchCache;
use crate::change::{Change, CommitInfo, FencingToken};
use crate::clock::{Clock, from_proto_timestamp, to_proto_timestamp};
use crate::error::{Error, Result};
use crate::retry::Backoff;
use crate::store::{Store, Versioned, decode};

/// What firing a timer did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fired {
    /// This call fired it; its effect is committed.
    Fired(CommitInfo),
    /// Someone else fired (or cancelled) it first; nothing was changed.
    AlreadyFired,
}

/// A timer's due time.
pub fn due_of(timer: &Timer) -> Result<Timestamp> {
    timer
        .due
        .as_ref()
        .ok_or_else(|| Error::invalid("timer.due is missing"))
        .and_then(from_proto_timestamp)
}

impl Store {
    /// Every timer due at or before `now`, in due order.
    pub async fn due_timers(&self, now: Timestamp) -> Result<Vec<Versioned<Timer>>> {
        let keys = self.keys();
        let end = keys.timers_due_end(now)?;
        let (kvs, _) = self.list_raw(&keys.timers(), Some(end.into_bytes())).await?;
        kvs.iter().map(decode).collect()
    }

    /// Fires `timer`: commits `effect`, the deletion of the timer key (which
    /// must still be at the etag read) and, if `effect` has none, an audit
    /// record, in one transaction fenced by `token`.
    pub async fn fire_timer(
        &self,
        timer: &Versioned<Timer>,
        effect: Change,
        token: &FencingToken,
        actor: &Actor,
    ) -> Result<Fired> {
        let mut change = effect.delete(timer.key.clone(), timer.etag).fence(token);
        if !change.has_audit() {
            change = change.audit(AuditRecord {
                at: Some(to_proto_timestamp(self.clock().now())),
                action: "FireTimer".into(),
                object_kind: "timer".into(),
                object_id: timer.value.id.clone(),
                summary: format!("timer {} ({}) fired", timer.value.id, timer.value.kind),
                trace_id: timer
                    .value
                    .origin
                    .as_ref()
                    .and_then(crate::trace::trace_id)
                    .unwrap_or_default()
                    .to_owned(),
                ..Default::default()
            });
        }
        match self.commit(change, actor).await {
            Ok(info) => Ok(Fired::Fired(info)),
            Err(Error::Conflict { key }) if key == timer.key => Ok(Fired::AlreadyFired),
            Err(e) => Err(e),
        }
    }
}

/// Where firing one timer failed.
enum Step {
    /// The caller's handler: the timer stays.
    Handler(Error),
    /// The commit.
    Fire(Error),
}

/// The span of one timer firing: a root span named `timer.fire`, linked to
/// the request that scheduled the timer (its stored origin), so the step can
/// be found from that request's trace however much later and wherever it
/// runs. The handler's and the commit's spans are its children.
fn step_span(timer: &Timer) -> tracing::Span {
    let origin = timer.origin.clone().unwrap_or_default();
    tilewave_telemetry::span_linked_to(&origin, "timer.fire")
}

/// Fires timers as they fall due on `clock`, until `shutdown` completes or
/// the ownership behind `token` is lost (then [`Error::Fenced`]).
///
/// `handler` turns a due timer into its effect (a [`Change`], possibly with
/// its own audit record); its error leaves the timer in place to be retried
/// after a back-off. Timers fire in due order: a failure restarts the round.
/// Run it under an [`crate::Ownership`] of the timer work, and select on
/// [`crate::Ownership::lost`] too. Each firing (handler and commit) runs in a
/// `timer.fire` span linked to the timer's origin.
pub async fn run_timer_loop<H, F>(
    store: &Store,
    clock: Arc<dyn Clock>,
    token: FencingToken,
    actor: Actor,
    mut handler: H,
    shutdown: impl Future<Output = ()>,
) -> Result<()>
where
    H: FnMut(Versioned<Timer>) -> F,
    F: Future<Output = Result<Change>>,
{
    let store = store.with_clock(Arc::clone(&clock));
    let cache = WatchCache::<Timer>::prefix(&store, &store.keys().timers()).await?;
    let mut changes = cache.revision_watch();
    let mut backoff = Backoff::default();
    tokio::pin!(shutdown);
    loop {
        changes.borrow_and_update();
        let mut last_commit = 0;
        let mut failed = false;
        match store.due_timers(clock.now()).await {
            Ok(due) => {
                for timer in due {
                    let id = timer.value.id.clone();
                    // Each firing is a step of the work that scheduled the
                    // timer: its own root span, linked to that request.
                    let step = step_span(&timer.value);
                    let outcome = async {
                        let effect = handler(timer.clone()).await.map_err(Step::Handler)?;
                        store
                            .fire_timer(&timer, effect, &token, &actor)
                            .await
                            .map_err(Step::Fire)
                    }
                    .instrument(step)
                    .await;
                    match outcome {
                        Err(Step::Handler(e)) => {
                            tracing::warn!(timer = %id, error = %e, "timer handler failed; will retry");
                            failed = true;
                            break;
                        }
                        Ok(Fired::Fired(info)) => {
                            tracing::debug!(timer = %id, revision = info.revision, "timer fired");
                            last_commit = info.revision;
                        }
                        Ok(Fired::AlreadyFired) => {
                            tracing::debug!(timer = %id, "timer already fired elsewhere");
                        }
                        Err(Step::Fire(e @ Error::Fenced { .. })) => return Err(e),
                        Err(Step::Fire(e)) => {
                            tracing::warn!(timer = %id, error = %e, "firing failed; will retry");
                            failed = true;
                            break;
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read due timers; will retry");
                failed = true;
            }
        }
        if failed {
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                () = tokio::time::sleep(backoff.next_delay()) => {}
            }
            continue;
        }
        backoff.reset();
        if last_commit > 0 {
            // Let the cache see the deletions before choosing the next wake-up.
            if let Err(e) = cache.wait_for_revision(last_commit, store.op_timeout()).await {
                tracing::debug!(error = %e, "timer cache lags");
            }
            continue;
        }
        let next = cache.first().and_then(|t| due_of(&t.value).ok());
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            _ = changes.changed() => {}
            () = async {
                match next {
                    Some(t) => clock.sleep_until(t).await,
                    None => std::future::pending().await,
                }
            } => {}
        }
    }
}
