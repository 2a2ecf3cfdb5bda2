//! Durable timers: bake ends, acknowledgement deadlines, grace periods, GA
//! moments.
//!
//! A timer is a `Timer` message at `timers/<kind>/<due as zero-padded unix
//! milliseconds>/<id>`, so a kind's keys sort in due order. It is scheduled
//! inside the change that needs it ([`crate::Change::schedule`]). Firing
//! commits the timer's effect and the deletion of the timer key in **one**
//! fenced transaction that also compares the timer key's etag: whichever
//! replica fires first wins, a second attempt finds the key gone
//! ([`Fired::AlreadyFired`]) and a replica that lost ownership is
//! [`crate::Error::Fenced`]. So a timer takes effect exactly once, across
//! crashes and competing owners.
//!
//! [`run_timer_loop`] drives firing from a [`Clock`] for the kinds it was
//! given handlers for ([`TimerKinds`]): it lists and watches only those
//! kinds, so a timer of a kind another service handles is never touched
//! here. When the clock jumps, every timer of its kinds that fell due fires,
//! in due order.
//!
//! **Migration.** Before timers had kinds their keys were
//! `timers/<due>/<id>`. Every timer loop first moves such keys to
//! `timers/<kind>/<due>/<id>` ([`Store::migrate_legacy_timers`]), whatever
//! their kind, one fenced transaction per timer (guarded on the old key's
//! etag, so concurrent migrations and firings move or fire each once).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use jiff::Timestamp;
use tilewave_proto::common::v1::{AuditRecord, Timer};
use tracing::Instrument as _;

use crate::actor::Actor;
use crate::audit::{self, AuditRecordExt as _};
use crate::cache::WatchCache;
use crate::change::{Change, CommitInfo, FencingToken};
use crate::error::{Error, Result};
use crate::keys::check_timer_kind;
use crate::retry::Backoff;
use crate::store::{Store, Versioned, decode};
use crate::time::{BoxFuture, Clock, from_proto_timestamp};

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
    /// Every timer of `kind` due at or before `now`, in due order.
    pub async fn due_timers(&self, kind: &str, now: Timestamp) -> Result<Vec<Versioned<Timer>>> {
        let keys = self.keys();
        let end = keys.timers_due_end(kind, now)?;
        let (kvs, _) = self
            .list_raw(&keys.timers_of(kind)?, Some(end.into_bytes()))
            .await?;
        kvs.iter().map(decode).collect()
    }

    /// Moves every timer still under the layout before kinds
    /// (`timers/<due>/<id>`) to `timers/<kind>/<due>/<id>`, one transaction
    /// per timer fenced by `token` and guarded on the old key's etag (a timer
    /// moved or fired meanwhile is left alone). A timer without a valid kind
    /// or due time stays where it is (and is logged). Returns how many moved.
    pub async fn migrate_legacy_timers(&self, token: &FencingToken, actor: &Actor) -> Result<usize> {
        let (start, end) = self.keys().legacy_timers();
        let (kvs, _) = self.list_raw(&start, Some(end.into_bytes())).await?;
        let mut moved = 0;
        for kv in &kvs {
            let old: Versioned<Timer> = match decode(kv) {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(error = %e, "a timer of the old layout cannot be read; left in place");
                    continue;
                }
            };
            let new_key = match self.keys().timer_of(&old.value) {
                Ok(k) => k,
                Err(e) => {
                    tracing::warn!(timer = %old.key, error = %e, "a timer of the old layout has no valid kind or due time; left in place");
                    continue;
                }
            };
            let t = &old.value;
            let change = Change::new()
                .delete(old.key.clone(), old.etag)
                .create(new_key, t)
                .fence(token)
                .audit(timer_audit("MigrateTimer", t, "moved to the timers of its kind"));
            match self.commit(change, actor).await {
                Ok(_) => moved += 1,
                // Moved, fired or cancelled by someone else meanwhile.
                Err(Error::Conflict { .. } | Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        if moved > 0 {
            tracing::info!(moved, "timers moved to the layout by kind");
        }
        Ok(moved)
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
            change = change.audit(timer_audit("FireTimer", &timer.value, "fired"));
        }
        match self.commit(change, actor).await {
            Ok(info) => Ok(Fired::Fired(info)),
            Err(Error::Conflict { key }) if key == timer.key => Ok(Fired::AlreadyFired),
            Err(e) => Err(e),
        }
    }
}

/// The audit record of `action` on timer `t` ("timer <id> (<kind>) <what>"),
/// carrying the trace id of the request that scheduled it.
fn timer_audit(action: &str, t: &Timer, what: &str) -> AuditRecord {
    audit::record(
        action,
        "timer",
        &t.id,
        format!("timer {} ({}) {what}", t.id, t.kind),
    )
    .trace(
        t.origin
            .as_ref()
            .and_then(crate::trace::trace_id)
            .unwrap_or_default(),
    )
}

/// The handler of one timer kind: turns a due timer into its effect.
type Handler = Box<dyn FnMut(Versioned<Timer>) -> BoxFuture<'static, Result<Change>> + Send>;

/// The timer kinds a loop fires, each with its handler. A loop lists,
/// watches and fires only these kinds: other kinds belong to other loops.
#[derive(Default)]
pub struct TimerKinds {
    handlers: BTreeMap<String, Handler>,
}

impl std::fmt::Debug for TimerKinds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.handlers.keys()).finish()
    }
}

impl TimerKinds {
    /// No kinds yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fires the timers of `kind` with `handler` (which replaces an earlier
    /// handler of the kind). The kind is checked when the loop starts.
    pub fn on<H, F>(mut self, kind: &str, mut handler: H) -> Self
    where
        H: FnMut(Versioned<Timer>) -> F + Send + 'static,
        F: Future<Output = Result<Change>> + Send + 'static,
    {
        self.handlers
            .insert(kind.to_owned(), Box::new(move |t| Box::pin(handler(t))));
        self
    }

    /// The registered kinds, in order.
    pub fn kinds(&self) -> Vec<&str> {
        self.handlers.keys().map(String::as_str).collect()
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

/// Fires the timers of the registered `kinds` as they fall due on `clock`,
/// until `shutdown` completes or the ownership behind `token` is lost (then
/// [`Error::Fenced`]). It first moves timers of the old layout
/// ([`Store::migrate_legacy_timers`]).
///
/// A kind's handler turns a due timer into its effect (a [`Change`],
/// possibly with its own audit record); its error leaves the timer in place
/// to be retried after a back-off. Timers fire in due order (across the
/// registered kinds): a failure restarts the round. Timers of other kinds
/// are never read, fired or deleted. Run it under an ownership of the timer
/// work ([`crate::OwnerLoop`]). Each firing (handler and commit) runs in a
/// `timer.fire` span linked to the timer's origin.
pub async fn run_timer_loop(
    store: &Store,
    clock: Arc<dyn Clock>,
    token: FencingToken,
    actor: Actor,
    mut kinds: TimerKinds,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    if kinds.handlers.is_empty() {
        return Err(Error::invalid("a timer loop needs at least one timer kind"));
    }
    // Owned names: a borrow of the handlers must not live across an await
    // (they are `Send`, not `Sync`).
    let names: Vec<String> = kinds.handlers.keys().cloned().collect();
    for kind in &names {
        check_timer_kind(kind)?;
    }
    let store = store.with_clock(Arc::clone(&clock));
    let prefixes = names
        .iter()
        .map(|k| store.keys().timers_of(k))
        .collect::<Result<Vec<_>>>()?;
    let filter_prefixes = prefixes.clone();
    let cache = WatchCache::<Timer>::prefix_filtered(
        &store,
        &store.keys().timers(),
        Arc::new(move |k: &str| filter_prefixes.iter().any(|p| k.starts_with(p.as_str()))),
    )
    .await?;
    let mut changes = cache.revision_watch();
    let mut backoff = Backoff::default();
    let mut migrated = false;
    tokio::pin!(shutdown);
    loop {
        changes.borrow_and_update();
        let mut last_commit = 0;
        let mut failed = false;
        if !migrated {
            match store.migrate_legacy_timers(&token, &actor).await {
                Ok(_) => migrated = true,
                Err(e @ Error::Fenced { .. }) => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot move timers of the old layout yet; will retry");
                    failed = true;
                }
            }
        }
        let mut due = Vec::new();
        if !failed {
            for kind in &names {
                match store.due_timers(kind, clock.now()).await {
                    Ok(list) => due.extend(list.into_iter().map(|t| (kind.clone(), t))),
                    Err(e) => {
                        tracing::warn!(kind = %kind, error = %e, "cannot read due timers; will retry");
                        failed = true;
                        break;
                    }
                }
            }
        }
        // In due order across kinds (each kind's list is in due order).
        due.sort_by_key(|(_, t)| due_of(&t.value).ok());
        for (kind, timer) in if failed { Vec::new() } else { due } {
            let Some(handler) = kinds.handlers.get_mut(&kind) else {
                continue;
            };
            let id = timer.value.id.clone();
            // Each firing is a step of the work that scheduled the timer:
            // its own root span, linked to that request.
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
                    tracing::warn!(timer = %id, %kind, error = %e, "timer handler failed; will retry");
                    failed = true;
                    break;
                }
                Ok(Fired::Fired(info)) => {
                    tracing::debug!(timer = %id, %kind, revision = info.revision, "timer fired");
                    last_commit = info.revision;
                }
                Ok(Fired::AlreadyFired) => {
                    tracing::debug!(timer = %id, %kind, "timer already fired elsewhere");
                }
                Err(Step::Fire(e @ Error::Fenced { .. })) => return Err(e),
                Err(Step::Fire(e)) => {
                    tracing::warn!(timer = %id, %kind, error = %e, "firing failed; will retry");
                    failed = true;
                    break;
                }
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
        let next = cache.list().iter().filter_map(|t| due_of(&t.value).ok()).min();
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
