//! The controller that runs roll-outs. Every replica runs one
//! ([`run`]); it watches the roll-outs and, for each one that needs work
//! (PENDING, RUNNING, PAUSED, ROLLING_BACK) and has no owner, tries to take
//! `owners/rollout-<id>`. The owner drives the roll-out ([`drive`]) one
//! decision at a time, each decision a fenced transaction written *before*
//! its side effect (an agent call), so that a replica that takes over
//! continues from the recorded steps and a replica that lost its lease can
//! neither write to etcd nor (through the fencing token) to the agents.
//!
//! What each decision is comes from the pure rules in
//! [`tilewave_core::rollout`] ([`rollout::decide`], [`rollout::fail`]);
//! this module reads the roll-out, converts it at the edge
//! ([`crate::convert`]) and carries the decision out: etcd commits, agent
//! calls, registry transitions.
//!
//! A RUNNING roll-out follows its re-plan from now: a PENDING region starts
//! applying when the re-plan starts it now (which honours blackouts, the
//! concurrency limit and wave order); once its agent acknowledges the
//! apply (the planned apply time is only the planner's estimate) its bake
//! starts, health-checked at the start, at least every
//! [`rollout::HEALTH_CHECK_EVERY`] and at the end; the next wave starts only when
//! every region of the previous one is verified (or skipped), after an
//! Approve if the wave has a hold.

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};
use tilewave_core::rollout::{self, Check, Decision, State, StepState, View};
use tilewave_proto::agent::v1::{ApplyTileRequest, HealthRequest, RemoveTileRequest, TileHealth};
use tilewave_proto::common::v1::{EventKind, HealthStatus, Severity, TileState, Timer};
use tilewave_proto::registry::v1::{MaintenanceState, Tile};
use tilewave_proto::rollout::v1::{GaTimerPayload, Rollout, RolloutKind, RolloutStep};
use tilewave_store::audit::{self, AuditRecordExt as _};
use tilewave_store::clock::to_proto_timestamp;
use tilewave_store::{Change, Ended, FencingToken, Owned, OwnerLoop, Shutdown};
use tracing::Instrument as _;

use crate::clients::request;
use crate::convert;
use crate::error::{Error, Result};
use crate::model::{self, Ctx, Loaded};

/// The kind of the GA timer.
pub const GA_TIMER_KIND: &str = "ga";

/// Longest real wait between two looks at a roll-out, whatever the clock
/// says (a safety net; changes and clock jumps wake the owner earlier).
const MAX_IDLE: std::time::Duration = std::time::Duration::from_secs(2);
/// Back-off after an error other than a conflict.
const ERROR_BACKOFF: std::time::Duration = std::time::Duration::from_millis(300);

/// Whether a roll-out in this state needs an owner.
pub fn needs_owner(state: i32) -> bool {
    convert::state(state).is_some_and(|s| s.needs_owner())
}

/// Runs the controller until `shutdown`: every roll-out that needs an owner
/// and is not driven here gets a try at its owner key
/// (`owners/rollout-<id>`) through the owner loop, which drives it while
/// owned, stops at once on loss or shutdown, and releases the key.
/// `starts`: the roll-outs this replica's starts announce
/// ([`model::Starts`]), owned before the scan of the cache.
pub async fn run(
    ctx: Ctx,
    mut starts: tokio::sync::mpsc::UnboundedReceiver<model::Start>,
    shutdown: Shutdown,
) {
    let mut changes = ctx.rollouts.revision_watch();
    let mut driving: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    loop {
        driving.retain(|_, h| !h.is_finished());
        // The roll-outs announced by this replica's starts first: each was
        // announced before its creating transaction, so before the cache
        // can show it to the scan below.
        while let Ok(start) = starts.try_recv() {
            take_start(&ctx, &shutdown, &mut driving, start);
        }
        // Only the roll-outs to claim are copied out of the cache (a
        // thousand active ones changed many times a second).
        let claim = ctx.rollouts.scan(|r| {
            (needs_owner(r.value.state) && !driving.contains_key(&r.value.id))
                .then(|| (r.value.id.clone(), r.value.origin.clone().unwrap_or_default()))
        });
        for (id, origin) in claim {
            let task = own(&ctx, &shutdown, id.clone(), origin, None);
            driving.insert(id, task);
        }
        tokio::select! {
            () = shutdown.requested() => break,
            _ = changes.changed() => {}
            Some(start) = starts.recv() => take_start(&ctx, &shutdown, &mut driving, start),
            () = tokio::time::sleep(ctx.ttl / 3) => {}
        }
    }
    // Each owner loop stops its roll-out and releases it on shutdown.
    for (_, h) in driving {
        let _ = h.await;
    }
}

/// Owns a roll-out this replica is creating ([`own`]), unless one of this
/// controller's owner loops already has it.
fn take_start(
    ctx: &Ctx,
    shutdown: &Shutdown,
    driving: &mut HashMap<String, tokio::task::JoinHandle<()>>,
    start: model::Start,
) {
    if let std::collections::hash_map::Entry::Vacant(e) = driving.entry(start.id.clone()) {
        e.insert(own(ctx, shutdown, start.id, start.origin, Some(start.created)));
    }
}

/// Tries to own roll-out `id` through its owner loop and drives it while
/// owned; when the owner key is held elsewhere, waits for it to go while
/// the roll-out needs an owner. `created`: a roll-out this replica is
/// creating ([`model::Starts`]), claimed while it is written; its owner
/// starts driving once the creation is known, and lets the key go at once
/// if the creation failed.
fn own(
    ctx: &Ctx,
    shutdown: &Shutdown,
    id: String,
    origin: tilewave_proto::common::v1::SpanOrigin,
    created: Option<tokio::sync::watch::Receiver<Option<bool>>>,
) -> tokio::task::JoinHandle<()> {
    let owner = OwnerLoop::new(
        &ctx.store,
        tilewave_store::keys::work::rollout(&id),
        &ctx.holder,
        ctx.ttl,
    )
    .on_lease(&ctx.lease);
    let (ctx, shutdown) = (ctx.clone(), shutdown.clone());
    tokio::spawn(async move {
        let key = ctx.keys().rollout(&id);
        let needed = || ctx.rollouts.get(&key).is_some_and(|r| needs_owner(r.value.state));
        let work = |owned| {
            let span = tilewave_telemetry::span_linked_to(&origin, "rollout.drive");
            let (ctx, id, created) = (ctx.clone(), id.clone(), created.clone());
            async move {
                if let Some(mut created) = created {
                    let made = created
                        .wait_for(Option::is_some)
                        .await
                        .is_ok_and(|c| *c == Some(true));
                    if !made {
                        return Ok(());
                    }
                }
                drive(ctx, id, owned).await
            }
            .instrument(span)
        };
        match owner.run_once_when_free(&shutdown, needed, work).await {
            Ok(Some(Ended::Finished(Err(e)))) => {
                tracing::warn!(rollout = %id, error = %e, "stopped driving the roll-out");
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(rollout = %id, error = %e, "cannot take ownership"),
        }
        // Driven elsewhere, or no more: nothing kept here is current.
        ctx.written.forget(&id);
    })
}

/// What the owner does after one decision.
#[derive(Debug)]
enum Next {
    /// Decide again at once.
    Again,
    /// Nothing to do before this domain time, or before the roll-out (at
    /// this etag) or the freeze changes.
    Until(Timestamp, i64),
    /// The roll-out needs no owner any more.
    Done,
    /// The roll-out needs no owner any more, and the write that ended it
    /// released the owner key too.
    Released,
    /// An agent was unreachable: decide again after this real-time wait.
    Retry(std::time::Duration),
}

/// Drives one roll-out while this replica owns it (the owner loop stops
/// it at once on loss or shutdown). Returns when the roll-out needs no owner
/// any more, or with the error that made driving it pointless (a fenced
/// write: another replica owns it).
pub async fn drive(ctx: Ctx, id: String, owned: Owned) -> Result<()> {
    let token = owned.token();
    let mut changes = ctx.rollouts.revision_watch();
    let mut freeze = ctx.freeze.revision_watch();
    tracing::info!(rollout = %id, token = token.revision, holder = %ctx.holder, "driving roll-out");
    // Whether this owner saw the registry show the roll-out started (see
    // `start`: the move and the start's transaction run at once).
    let mut shown_started = false;
    loop {
        changes.borrow_and_update();
        freeze.borrow_and_update();
        // Boxed: a decision's future (etcd and agent calls) is large, and
        // an owner spends most of its life waiting; unboxed, every waiting
        // owner's task would keep room for it (about 70 KiB each).
        let next = Box::pin(decide(&ctx, &id, &token, &mut shown_started)).await;
        if !matches!(next, Ok(Next::Again)) {
            // Waiting (or failing): the next decision reads etcd.
            ctx.written.forget(&id);
        }
        match next {
            Ok(Next::Again) => continue,
            Ok(Next::Done) => {
                ctx.written.forget(&id);
                tracing::info!(rollout = %id, "roll-out needs no owner any more; releasing");
                return Ok(());
            }
            Ok(Next::Released) => {
                ctx.written.forget(&id);
                owned.released();
                tracing::info!(rollout = %id, "roll-out needs no owner any more; released with its last write");
                return Ok(());
            }
            // The whole wait: other roll-outs' changes must not shorten
            // the back-off (they did: ten retries in a few seconds).
            Ok(Next::Retry(wait)) => tokio::time::sleep(wait).await,
            Ok(Next::Until(t, etag)) => {
                // Woken by a change of this roll-out, not by every other
                // one's (a thousand baking roll-outs would each read etcd
                // on every step anywhere).
                let key = ctx.keys().rollout(&id);
                let due = ctx.clock.sleep_until(t);
                let idle = tokio::time::sleep(MAX_IDLE);
                tokio::pin!(due, idle);
                loop {
                    tokio::select! {
                        () = &mut due => break,
                        () = &mut idle => break,
                        _ = freeze.changed() => break,
                        changed = changes.changed() => {
                            let current = ctx.rollouts.get(&key).map(|v| v.etag);
                            if changed.is_err() || current != Some(etag) {
                                break;
                            }
                        }
                    }
                }
            }
            Err(e @ Error::Store(tilewave_store::Error::Fenced { .. })) => {
                tracing::warn!(rollout = %id, "write fenced: another replica owns the roll-out; stopping");
                return Err(e);
            }
            Err(Error::Store(tilewave_store::Error::Conflict { .. })) => {}
            Err(e) => {
                tracing::warn!(rollout = %id, error = %e, "roll-out step failed; retrying");
                tokio::time::sleep(ERROR_BACKOFF).await;
            }
        }
    }
}

/// One fenced transaction of the owner: the roll-out (re-planned with the
/// steps as they will be), the changed steps, events and extras.
struct Write<'a> {
    ctx: &'a Ctx,
    token: &'a FencingToken,
    loaded: &'a Loaded,
    rollout: Rollout,
    steps: Vec<(usize, RolloutStep)>,
    extra: Change,
    events: Vec<tilewave_proto::common::v1::Event>,
}

impl<'a> Write<'a> {
    fn new(ctx: &'a Ctx, token: &'a FencingToken, loaded: &'a Loaded) -> Self {
        Self {
            ctx,
            token,
            loaded,
            rollout: loaded.rollout.value.clone(),
            steps: Vec::new(),
            extra: Change::new(),
            events: Vec::new(),
        }
    }

    fn step(&mut self, i: usize, s: RolloutStep) {
        self.steps.retain(|(j, _)| *j != i);
        self.steps.push((i, s));
    }

    /// [`Self::step`] for each `(index, step)`.
    fn steps(&mut self, changes: impl IntoIterator<Item = (usize, RolloutStep)>) {
        for (i, s) in changes {
            self.step(i, s);
        }
    }

    /// Every step as it will be once this write is committed.
    fn staged(&self) -> Vec<RolloutStep> {
        let mut all: Vec<RolloutStep> = self.loaded.steps.iter().map(|s| s.value.clone()).collect();
        for (i, s) in &self.steps {
            all[*i] = s.clone();
        }
        all
    }

    /// Commits the write (fenced, every read etag compared) and keeps
    /// what it wrote for the owner's next decision ([`model::Written`]).
    async fn commit(mut self, action: &str, summary: String) -> Result<()> {
        let now = self.ctx.clock.now();
        let all = self.staged();
        let re = model::replan_into(self.ctx, &mut self.rollout, &all, now);
        // As stored, in place: the roll-out is encoded from here and then
        // moved into what the owner keeps, not copied.
        strip_to_stored(&mut self.rollout);
        let keys = self.ctx.keys();
        let mut change = Change::new()
            .update(
                keys.rollout(&self.rollout.id),
                &self.rollout,
                self.loaded.rollout.etag,
            )
            .fence(self.token)
            .merge(self.extra);
        change = model::with_active_marker(keys, change, self.loaded.rollout.value.state, &self.rollout);
        change = model::with_steps(
            change,
            self.steps.iter().map(|(i, s)| (&self.loaded.steps[*i], s)),
        );
        for e in self.events.iter().chain(re.crossed.iter()) {
            change = model::with_event(keys, change, e);
        }
        let change = change
            .audit(audit::record(action, "rollout", &self.rollout.id, summary).trace(&self.rollout.trace_id));
        let info = self.ctx.store.commit(change, &self.ctx.actor).await?;
        let mut steps = self.loaded.steps.clone();
        for (i, s) in self.steps {
            steps[i].value = s;
            steps[i].etag = info.revision;
        }
        model::sort_steps(&mut steps);
        let rollout = tilewave_store::Versioned {
            key: self.loaded.rollout.key.clone(),
            value: self.rollout,
            etag: info.revision,
            create_revision: self.loaded.rollout.create_revision,
        };
        self.ctx.written.put(Loaded { rollout, steps });
        Ok(())
    }
}

/// The roll-out as stored: without steps and etag.
pub fn stored(r: &Rollout) -> Rollout {
    let mut r = r.clone();
    strip_to_stored(&mut r);
    r
}

/// Makes `r` what is stored of it: its steps (stored under keys of their
/// own) and its etag (etcd's revision) dropped.
fn strip_to_stored(r: &mut Rollout) {
    r.steps.clear();
    r.etag = 0;
}

/// One decision of the owner: the rules of [`tilewave_core::rollout::decide`]
/// on the roll-out as read now, carried out. `shown_started`: whether this
/// owner saw the registry show the roll-out started; until it has, no
/// apply is made for a started roll-out before the registry is asked.
async fn decide(ctx: &Ctx, id: &str, token: &FencingToken, shown_started: &mut bool) -> Result<Next> {
    let loaded = match ctx.written.take(id) {
        Some(kept) => kept,
        None => model::load(&ctx.store, id).await?,
    };
    let r = &loaded.rollout.value;
    let now = ctx.clock.now();
    let steps: Vec<RolloutStep> = loaded.steps.iter().map(|s| s.value.clone()).collect();
    let Some((view, decision)) = decide_on(ctx, r, &steps, now)? else {
        return Ok(Next::Done);
    };
    let w = || Write::new(ctx, token, &loaded);
    match decision {
        Decision::Done => Ok(Next::Done),
        Decision::WaitUntil(t) => Ok(Next::Until(t, loaded.rollout.etag)),
        Decision::StartRunning | Decision::MarkStarted => {
            Box::pin(start(w(), decision, now, shown_started)).await
        }
        // Boxed: with the configuration held across the agents' calls the
        // future overflowed a worker's stack in debug builds.
        Decision::IssueApplies(open) => {
            if !*shown_started && r.started_at.is_some() {
                // A start whose move failed after its transaction, or a
                // roll-out taken over: the registry first (from the tile
                // cache, without a call, when it shows the move made).
                ensure_lifecycle_started(ctx, r).await?;
                *shown_started = true;
            }
            Box::pin(issue_applies(ctx, token, &loaded, &view, &open)).await
        }
        Decision::HealthRound(checks) => health_round(ctx, token, &loaded, &view, &checks, now).await,
        Decision::StartApplies(starting) => {
            let starting = starting_steps(&steps, starting, now);
            let regions = region_list(&loaded, &starting);
            let mut w = w();
            w.rollout.frozen = false;
            w.steps(starting);
            w.commit(
                "Apply",
                format!("applying {} r{} in {regions}", r.tile_id, r.revision),
            )
            .await?;
            Ok(Next::Again)
        }
        Decision::Finish => finish(ctx, token, &loaded, now).await,
        Decision::Replan => {
            w().commit("Replan", format!("re-planned {} while paused", r.id))
                .await?;
            Ok(Next::Again)
        }
        Decision::Hold { after_wave } => {
            let mut w = w();
            w.rollout.state = convert::state_to_wire(State::Paused);
            w.rollout.pause_cause = convert::pause_cause_to_wire(Some(rollout::PauseCause::Hold));
            w.rollout.held_after_wave = after_wave;
            w.rollout.paused_reason = format!("held after wave {after_wave}: waiting for Approve");
            w.commit("Hold", format!("held after wave {after_wave}")).await?;
            Ok(Next::Again)
        }
        Decision::Freeze => {
            w().commit("Frozen", "the global freeze holds new applies back".into())
                .await?;
            Ok(Next::Again)
        }
        Decision::Unfreeze => {
            w().commit("Unfrozen", "the global freeze was lifted".into())
                .await?;
            Ok(Next::Again)
        }
        Decision::BeginRollback(i) => {
            let step = &loaded.steps[i].value;
            let mut next = step.clone();
            next.state = convert::step_state_to_wire(StepState::RollingBack);
            let mut w = w();
            w.step(i, next);
            w.commit("RollingBack", format!("restoring {}", step.region))
                .await?;
            Ok(Next::Again)
        }
        Decision::Restore(i) => restore(ctx, token, &loaded, i, now).await,
        Decision::WaveRolledBack => {
            let mut w = w();
            w.rollout.state = convert::state_to_wire(State::Paused);
            w.rollout.pause_after_rollback = false;
            w.rollout.rollback_regions.clear();
            w.commit("WaveRolledBack", "failed wave rolled back; paused".into())
                .await?;
            Ok(Next::Again)
        }
        Decision::RolledBack => rolled_back(ctx, token, &loaded, now).await,
        Decision::CannotPlan(why) => Err(Error::FailedPrecondition(format!(
            "cannot re-plan roll-out {id} from now: {why}"
        ))),
    }
}

/// The start of a roll-out, in one transaction: RUNNING once its earliest
/// start is reached, marked started, and the first applies the re-plan
/// starts now. The registry's move of the tile to ROLLING_OUT runs at the
/// same time as that transaction (one round trip instead of two); the
/// applies wait for both, and an owner that has not seen the move made
/// asks the registry before any apply (`decide`), so no agent gets the
/// tile before the registry shows it rolling out.
async fn start(mut w: Write<'_>, first: Decision, now: Timestamp, shown_started: &mut bool) -> Result<Next> {
    let (ctx, loaded) = (w.ctx, w.loaded);
    let mut marked_started = false;
    let mut action = "StartApplying";
    let mut summary = "earliest start reached".to_owned();
    let mut decision = first;
    // At most the three steps of a start; anything else waits for the
    // next decision.
    for _ in 0..3 {
        match decision {
            Decision::StartRunning => w.rollout.state = convert::state_to_wire(State::Running),
            Decision::MarkStarted => {
                marked_started = true;
                w.rollout.started_at = Some(to_proto_timestamp(now));
                action = "Started";
                summary = format!("roll-out {} started applying", w.rollout.id);
            }
            Decision::StartApplies(starting) => {
                let starting = starting_steps(&w.staged(), starting, now);
                let regions = region_list(loaded, &starting);
                w.rollout.frozen = false;
                w.steps(starting);
                summary.push_str(&format!(
                    "; applying {} r{} in {regions}",
                    w.rollout.tile_id, w.rollout.revision
                ));
                break;
            }
            _ => break,
        }
        let rollout = w.rollout.clone();
        match decide_on(ctx, &rollout, &w.staged(), now)? {
            Some((_, next)) => decision = next,
            None => break,
        }
    }
    if marked_started {
        let rollout = w.rollout.clone();
        let (moved, committed) =
            futures::join!(ensure_lifecycle_started(ctx, &rollout), w.commit(action, summary));
        *shown_started = moved.is_ok();
        committed?;
        moved?;
    } else {
        w.commit(action, summary).await?;
    }
    Ok(Next::Again)
}

/// The rules of [`rollout::decide`] on roll-out `r` with `steps` (as read,
/// or as a write will leave them); `None` when its state is unknown.
fn decide_on(
    ctx: &Ctx,
    r: &Rollout,
    steps: &[RolloutStep],
    now: Timestamp,
) -> Result<Option<(View, Decision)>> {
    let Some(state) = convert::state(r.state) else {
        return Ok(None);
    };
    let plan = match state {
        State::Running | State::Paused => model::resolved_of(ctx, r, now)
            .map(|resolved| resolved.input)
            .map_err(|e| e.to_string()),
        State::Pending
        | State::Succeeded
        | State::Failed
        | State::Aborted
        | State::RollingBack
        | State::RolledBack => Err(format!("roll-out {} is {state}: no re-plan", r.id)),
    };
    let view = convert::view(r, steps, plan)?;
    let decision = rollout::decide(&view, now, ctx.frozen());
    Ok(Some((view, decision)))
}

/// The steps `starting` as they start applying now.
fn starting_steps(steps: &[RolloutStep], starting: Vec<usize>, now: Timestamp) -> Vec<(usize, RolloutStep)> {
    starting
        .into_iter()
        .map(|i| {
            let mut next = steps[i].clone();
            next.state = convert::step_state_to_wire(StepState::Applying);
            next.attempts += 1;
            next.apply_started_at = Some(to_proto_timestamp(now));
            next.applied_at = None;
            next.bake_ends_at = None;
            next.last_error.clear();
            // A new attempt (a retried region) gets the whole bound.
            next.unreachable_attempts = 0;
            (i, next)
        })
        .collect()
}

/// Makes sure the registry shows the roll-out as started (idempotent: the
/// move is asked for only while the tile, as cached or as the registry
/// has it, still needs it).
async fn ensure_lifecycle_started(ctx: &Ctx, r: &Rollout) -> Result<()> {
    let kind = RolloutKind::try_from(r.kind).unwrap_or(RolloutKind::Launch);
    let needed = |tile: &Tile| match kind {
        RolloutKind::Launch | RolloutKind::Unspecified => tile.state() == TileState::Scheduled,
        RolloutKind::Maintenance => tile.maintenance_state() != MaintenanceState::RollingOut,
        RolloutKind::Withdraw => false,
    };
    let reason = format!("roll-out {} started", r.id);
    let advance = || {
        ctx.registry
            .advance(&r.tile_id, TileState::RollingOut, r.revision, &reason, &r.id)
    };
    // The usual case without a read of the registry: the replica's tile
    // cache shows the tile still to be moved, and the registry checks the
    // move anyway. Anything else (the cache says it moved, or the move is
    // refused because a cache a few milliseconds behind was wrong) asks
    // the registry first, as before.
    if cached_tile(ctx, &r.tile_id).is_some_and(|t| needed(&t)) && advance().await.is_ok() {
        return Ok(());
    }
    let tile = ctx.registry.get_tile(&r.tile_id, 0).await?;
    if needed(&tile) {
        advance().await?;
    }
    Ok(())
}

/// The tile as this replica's tile cache has it (a few milliseconds behind
/// the registry at most): only for a first guess the registry checks.
fn cached_tile(ctx: &Ctx, id: &str) -> Option<Tile> {
    ctx.tiles.get(&ctx.keys().tile(id)).map(|v| v.value)
}

/// The configuration of `tile` at `revision` (asked of the registry once:
/// a revision's document never changes).
async fn config_of(
    ctx: &Ctx,
    tile: &str,
    revision: i64,
) -> Result<tilewave_proto::common::v1::PartnerConfig> {
    if let Some(config) = ctx.configs.get(tile, revision) {
        return Ok(config);
    }
    let config = ctx
        .registry
        .get_tile(tile, revision)
        .await?
        .config
        .unwrap_or_default();
    ctx.configs.put(tile, revision, config.clone());
    Ok(config)
}

/// The span of one step in one region: its own root (the step is its own
/// unit of work), linked to the request that started the roll-out, and
/// naming the region, roll-out and revision (fields must be declared when
/// a span is made: recording an undeclared one later is silently dropped).
fn step_span(r: &Rollout, name: &str, region: &str, revision: i64) -> tracing::Span {
    let span = tracing::info_span!(
        target: "tilewave::work",
        parent: None,
        "work",
        otel.name = %name,
        otel.kind = "internal",
        region = %region,
        rollout = %r.id,
        tile = %r.tile_id,
        revision,
    );
    tilewave_telemetry::link_to_origin(&span, &r.origin.clone().unwrap_or_default());
    span
}

/// The outcome of a call to an agent.
enum AgentOutcome {
    /// Done; for an apply, the tile's health probed after it (the gate's
    /// check, when the agent answered with one).
    Ok(Option<Box<TileHealth>>),
    /// The agent refused our fencing token: someone newer owns the tile.
    Fenced(String),
    /// It failed; the message says how.
    Failed(String),
    /// The agent could not be reached (not registered, UNAVAILABLE,
    /// DEADLINE_EXCEEDED): transient, retried for a bounded time.
    Unreachable(String),
}

/// Whether a status from an agent call means "not reached" rather than
/// an answer: UNAVAILABLE, DEADLINE_EXCEEDED, or a connection that broke
/// under the call (tonic's "transport error", UNKNOWN or CANCELLED, as when
/// the agent is killed mid-call). Applies and removals are idempotent, so
/// calling again is safe.
fn unreachable_status(s: &tonic::Status) -> bool {
    match s.code() {
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => true,
        tonic::Code::Unknown | tonic::Code::Cancelled | tonic::Code::Internal => {
            let m = s.message();
            m.starts_with("transport error") || m.contains("connection") || m.contains("h2 protocol error")
        }
        _ => false,
    }
}

/// Applies `revision` of the roll-out's tile in `region` (0: removes it);
/// `config` is the revision's configuration when the caller has it (one
/// registry read for a whole batch), else it is read here.
async fn apply_at(
    ctx: &Ctx,
    r: &Rollout,
    region: &str,
    revision: i64,
    config: Option<&tilewave_proto::common::v1::PartnerConfig>,
    token: i64,
) -> Result<AgentOutcome> {
    let span = step_span(r, "rollout.apply", region, revision);
    async {
        let mut client = match ctx.agents.client(region).await {
            Ok(c) => c,
            Err(e) => return Ok(AgentOutcome::Unreachable(e.to_string())),
        };
        let result = if revision == 0 {
            client
                .remove_tile(request(
                    RemoveTileRequest {
                        tile_id: r.tile_id.clone(),
                        fencing_token: token,
                        rollout_id: r.id.clone(),
                    },
                    ctx.agents.timeout(),
                ))
                .await
                .map(|_| None)
        } else {
            let config = match config {
                Some(c) => c.clone(),
                None => config_of(ctx, &r.tile_id, revision).await?,
            };
            client
                .apply_tile(request(
                    ApplyTileRequest {
                        tile_id: r.tile_id.clone(),
                        revision,
                        config: Some(config),
                        fencing_token: token,
                        rollout_id: r.id.clone(),
                        probe_after: true,
                        ..Default::default()
                    },
                    ctx.agents.timeout(),
                ))
                .await
                .map(|resp| resp.into_inner().health.map(Box::new))
        };
        Ok(match result {
            Ok(health) => AgentOutcome::Ok(health),
            Err(s) if s.code() == tonic::Code::FailedPrecondition => {
                AgentOutcome::Fenced(s.message().to_owned())
            }
            Err(s) if unreachable_status(&s) => {
                AgentOutcome::Unreachable(format!("apply in {region}: {}", crate::error::in_words(&s)))
            }
            Err(s) => AgentOutcome::Failed(format!("apply in {region}: {}", crate::error::in_words(&s))),
        })
    }
    .instrument(span)
    .await
}

/// Health of the tile in a region: `Ok(None)` healthy (or no verdict yet),
/// `Ok(Some(reason))` unhealthy, `Err` when the agent cannot be asked.
async fn health_at(ctx: &Ctx, r: &Rollout, region: &str) -> Result<(HealthStatus, Option<String>)> {
    let span = step_span(r, "rollout.bake_check", region, r.revision_to_apply());
    async {
        let mut client = ctx.agents.client(region).await?;
        let resp = client
            .health(request(
                HealthRequest {
                    tile_ids: vec![r.tile_id.clone()],
                    probe_now: true,
                },
                ctx.agents.timeout(),
            ))
            .await
            .map_err(|s| Error::remote(format!("health in {region}"), s))?
            .into_inner();
        Ok(verdict(resp.tiles.into_iter().find(|t| t.tile_id == r.tile_id)))
    }
    .instrument(span)
    .await
}

/// An agent's health of the tile as a verdict: `(status, None)` healthy
/// (or no verdict yet), `(UNHEALTHY, Some(reason))` unhealthy.
fn verdict(th: Option<TileHealth>) -> (HealthStatus, Option<String>) {
    match th {
        Some(t) if t.status() == HealthStatus::Unhealthy => (
            HealthStatus::Unhealthy,
            Some(if t.reason.is_empty() {
                format!("error rate {:.3}", t.error_rate)
            } else {
                t.reason
            }),
        ),
        Some(t) => (
            HealthStatus::try_from(t.status).unwrap_or(HealthStatus::Unknown),
            None,
        ),
        None => (HealthStatus::Unknown, None),
    }
}

/// Marks step `i` FAILED, pauses the roll-out or rolls the wave back (the
/// roll-out's policy, [`rollout::fail`]) and writes the one failure event,
/// in one transaction: `w`, which may already hold other steps' changes
/// (what the same round learnt about them).
async fn fail_step(
    mut w: Write<'_>,
    view: &View,
    i: usize,
    mut step: RolloutStep,
    why: String,
    now: Timestamp,
) -> Result<Next> {
    let r = &w.loaded.rollout.value;
    let failure = rollout::fail(view, &r.tile_id, i, &why);
    step.state = convert::step_state_to_wire(StepState::Failed);
    step.last_error = why.clone();
    w.rollout.state = convert::state_to_wire(failure.state);
    if let Some(regions) = failure.rollback_wave {
        w.rollout.pause_after_rollback = true;
        w.rollout.rollback_regions = regions;
    }
    w.rollout.pause_cause = convert::pause_cause_to_wire(Some(failure.pause_cause));
    w.rollout.paused_reason = failure.reason;
    let mut attributes = HashMap::new();
    attributes.insert("wave".to_owned(), step.wave.to_string());
    attributes.insert("error".to_owned(), why);
    let event = model::event(
        r,
        EventKind::RolloutFailed,
        Severity::Sev2,
        &step.region,
        failure.event,
        now,
        attributes,
    );
    w.events.push(event);
    let region = step.region.clone();
    w.step(i, step);
    w.commit("StepFailed", format!("{region} failed")).await?;
    Ok(Next::Again)
}

/// Applies recorded but not (known to be) done: (re)issues them, all at
/// once, and records what they did in one transaction. The agent treats
/// the same (tile, revision) as a no-op.
async fn issue_applies(
    ctx: &Ctx,
    token: &FencingToken,
    loaded: &Loaded,
    view: &View,
    open: &[usize],
) -> Result<Next> {
    let r = &loaded.rollout.value;
    let revision = r.revision_to_apply();
    // The configuration once for the batch, not once per region.
    let config = if revision == 0 {
        None
    } else {
        Some(Box::new(Box::pin(config_of(ctx, &r.tile_id, revision)).await?))
    };
    let outcomes = futures::future::join_all(open.iter().map(|&i| {
        apply_at(
            ctx,
            r,
            &loaded.steps[i].value.region,
            revision,
            config.as_deref(),
            token.agent_token(),
        )
    }))
    .await;
    // The acknowledgements' time: their gates are due from it.
    let now = ctx.clock.now();
    let mut done = Vec::new();
    let mut probed = HashMap::new();
    let mut failed = None;
    let mut unreachable = Vec::new();
    let limit = ctx.unreachable.attempts;
    for (&i, outcome) in open.iter().zip(outcomes) {
        let step = &loaded.steps[i].value;
        match outcome? {
            AgentOutcome::Ok(health) => {
                let mut next = step.clone();
                next.applied_at = Some(to_proto_timestamp(now));
                next.last_error.clear();
                next.unreachable_attempts = 0;
                done.push((i, next));
                if let Some(h) = health.filter(|h| h.tile_id == r.tile_id) {
                    probed.insert(i, *h);
                }
            }
            AgentOutcome::Fenced(m) => return Err(agent_fenced(token, &step.region, &m)),
            AgentOutcome::Unreachable(why) => {
                let n = u32::try_from(step.unreachable_attempts)
                    .unwrap_or(0)
                    .saturating_add(1);
                if n >= limit {
                    if failed.is_none() {
                        let why = format!(
                            "agent unreachable {n} times in a row (retried for {:?}): {why}",
                            ctx.unreachable.bound()
                        );
                        failed = Some((i, step.clone(), why));
                    }
                } else {
                    let mut next = step.clone();
                    next.unreachable_attempts = i32::try_from(n).unwrap_or(i32::MAX);
                    next.last_error = format!("agent unreachable (attempt {n} of {limit}; retrying): {why}");
                    unreachable.push((i, next, n));
                }
            }
            AgentOutcome::Failed(why) => {
                if failed.is_none() {
                    failed = Some((i, step.clone(), why));
                }
            }
        }
    }
    let regions = region_list(loaded, &done);
    let mut w = Write::new(ctx, token, loaded);
    w.steps(done);
    if let Some((i, step, why)) = failed {
        return fail_step(w, view, i, step, why, now).await;
    }
    let wait = unreachable
        .iter()
        .map(|(_, _, n)| ctx.unreachable.delay(*n))
        .min();
    if let Some(wait) = wait {
        let waiting: Vec<(usize, RolloutStep)> = unreachable.into_iter().map(|(i, s, _)| (i, s)).collect();
        let names = region_list(loaded, &waiting);
        w.steps(waiting);
        let summary = if regions.is_empty() {
            format!("agent unreachable in {names}; retrying in {wait:?}")
        } else {
            format!(
                "{} applied in {regions}; agent unreachable in {names}, retrying in {wait:?}",
                r.tile_id
            )
        };
        w.commit("AgentUnreachable", summary).await?;
        return Ok(Next::Retry(wait));
    }
    let mut summary = format!("{} applied in {regions}", r.tile_id);
    if let Some(next) = Box::pin(gate_with_applies(&mut w, view, &probed, &mut summary, now)).await? {
        return Ok(next);
    }
    // The last applies verified everywhere (a zero bake): the finish goes
    // into the same write, one transaction instead of two.
    if finishes(ctx, &w, now)? {
        Box::pin(stage_finish(&mut w, now)).await?;
        summary.push_str("; succeeded");
        w.commit("Succeeded", summary).await?;
        return Ok(Next::Released);
    }
    w.commit("Applied", summary).await?;
    Ok(Next::Again)
}

/// Whether the rules finish the roll-out once `w` is committed: every
/// region verified or skipped (checked first: the re-plan the rules make
/// is not free).
fn finishes(ctx: &Ctx, w: &Write<'_>, now: Timestamp) -> Result<bool> {
    let staged = w.staged();
    let done = |s: &RolloutStep| {
        matches!(
            convert::step_state(s.state),
            StepState::Verified | StepState::Skipped
        )
    };
    if !staged.iter().all(done) {
        return Ok(false);
    }
    Ok(matches!(
        decide_on(ctx, &w.rollout, &staged, now)?,
        Some((_, Decision::Finish))
    ))
}

/// Folds into `w` (the applies just acknowledged) what the rules decide
/// next when it needs no other call: the health gates of those regions,
/// answered by the probes that came with the acknowledgements
/// (`probed`, by step), and then the applies the re-plan starts now (the
/// next wave after a zero bake). One transaction instead of three, and no
/// second round of agent calls. Returns the outcome when a gate failed
/// its step (committed there), else leaves `w` to be committed.
async fn gate_with_applies(
    w: &mut Write<'_>,
    view: &View,
    probed: &HashMap<usize, TileHealth>,
    summary: &mut String,
    now: Timestamp,
) -> Result<Option<Next>> {
    let (ctx, loaded) = (w.ctx, w.loaded);
    let r = &loaded.rollout.value;
    let staged = w.staged();
    let Some((_, Decision::HealthRound(checks))) = decide_on(ctx, r, &staged, now)? else {
        return Ok(None);
    };
    let answered = |c: &Check| matches!(c, Check::Gate { .. }) && probed.contains_key(&c.step());
    if checks.is_empty() || !checks.iter().all(answered) {
        return Ok(None);
    }
    let answers = checks
        .iter()
        .map(|c| verdict(probed.get(&c.step()).cloned()))
        .collect();
    let (_, gates) = match stage_round(w, view, &staged, &checks, answers, now).await? {
        Ok(said) => said,
        Err(failed) => return Ok(Some(failed)),
    };
    if let Some(rest) = gates.strip_prefix(&r.tile_id) {
        summary.push(';');
        summary.push_str(rest);
    }
    let staged = w.staged();
    if let Some((_, Decision::StartApplies(starting))) = decide_on(ctx, r, &staged, now)? {
        let starting = starting_steps(&staged, starting, now);
        let regions = region_list(loaded, &starting);
        w.rollout.frozen = false;
        w.steps(starting);
        summary.push_str(&format!("; applying r{} in {regions}", r.revision));
    }
    Ok(None)
}

/// The error of an agent that refused our fencing token: someone newer
/// owns the tile there.
fn agent_fenced(token: &FencingToken, region: &str, message: &str) -> Error {
    Error::Store(tilewave_store::Error::Fenced {
        owner_key: format!("{} (agent of {region}: {message})", token.owner_key),
        token: token.agent_token(),
    })
}

/// One health round: the `checks` [`rollout::decide`] found due, asked at
/// once and recorded in one transaction; the first unhealthy region fails
/// its step.
async fn health_round(
    ctx: &Ctx,
    token: &FencingToken,
    loaded: &Loaded,
    view: &View,
    checks: &[Check],
    now: Timestamp,
) -> Result<Next> {
    let r = &loaded.rollout.value;
    let answers = futures::future::join_all(
        checks
            .iter()
            .map(|c| health_at(ctx, r, &loaded.steps[c.step()].value.region)),
    )
    .await
    .into_iter()
    .collect::<Result<Vec<_>>>()?;
    let steps: Vec<RolloutStep> = loaded.steps.iter().map(|s| s.value.clone()).collect();
    let mut w = Write::new(ctx, token, loaded);
    let (action, summary) = match stage_round(&mut w, view, &steps, checks, answers, now).await? {
        Ok(said) => said,
        Err(failed) => return Ok(failed),
    };
    w.commit(action, summary).await?;
    Ok(Next::Again)
}

/// Stages in `w` what a round of `checks` on `steps` with the agents'
/// `answers` makes of them ([`round_results`]): every healthy step as it
/// becomes, with the round's audit action and summary
/// ([`round_summary`]) for the caller's commit; or, when a step is
/// unhealthy, fails it (committed here, with the healthy ones) and
/// returns what the owner does next as the `Err`.
async fn stage_round(
    w: &mut Write<'_>,
    view: &View,
    steps: &[RolloutStep],
    checks: &[Check],
    answers: Vec<(HealthStatus, Option<String>)>,
    now: Timestamp,
) -> Result<std::result::Result<(&'static str, String), Next>> {
    let (ctx, loaded, token) = (w.ctx, w.loaded, w.token);
    let (healthy, unhealthy) = round_results(steps, checks, answers, now);
    let said = round_summary(&loaded.rollout.value, loaded, &healthy);
    w.steps(healthy.into_iter().map(|(i, next, _)| (i, next)));
    if let Some((i, step, why)) = unhealthy {
        let w = std::mem::replace(w, Write::new(ctx, token, loaded));
        return Ok(Err(fail_step(
            w,
            view,
            i,
            step,
            format!("health gate: {why}"),
            now,
        )
        .await?));
    }
    Ok(Ok(said))
}

/// A healthy step after a round's check, and the first unhealthy one.
type RoundResults = (
    Vec<(usize, RolloutStep, Check)>,
    Option<(usize, RolloutStep, String)>,
);

/// What a round of `checks` on `steps` with the agents' `answers` (in
/// the checks' order) makes of them: each healthy step as it becomes (a
/// gate starts its bake, or verifies it when there is none left; a last
/// check verifies), and the first unhealthy one as it stood, with the
/// verdict, to fail.
fn round_results(
    steps: &[RolloutStep],
    checks: &[Check],
    answers: Vec<(HealthStatus, Option<String>)>,
    now: Timestamp,
) -> RoundResults {
    let mut healthy = Vec::new();
    let mut unhealthy = None;
    for (check, (status, bad)) in checks.iter().zip(answers) {
        let i = check.step();
        let mut next = steps[i].clone();
        match *check {
            Check::Gate { bake_ends_at, .. } => {
                next.bake_ends_at = Some(to_proto_timestamp(bake_ends_at));
                if bake_ends_at <= now {
                    // No bake (or one already over): this check is
                    // also its last, so one round instead of two.
                    next.state = convert::step_state_to_wire(StepState::Verified);
                    next.verified_at = Some(to_proto_timestamp(now));
                } else {
                    next.state = convert::step_state_to_wire(StepState::Baking);
                }
            }
            Check::Bake { .. } => {}
            Check::Verify { .. } => {
                next.state = convert::step_state_to_wire(StepState::Verified);
                next.verified_at = Some(to_proto_timestamp(now));
            }
        }
        next.last_health = status.into();
        next.last_health_at = Some(to_proto_timestamp(now));
        match bad {
            Some(why) => {
                if unhealthy.is_none() {
                    // The step as it was, with the verdict: it fails where it stood.
                    let mut failed = steps[i].clone();
                    failed.last_health = next.last_health;
                    failed.last_health_at = next.last_health_at;
                    unhealthy = Some((i, failed, why));
                }
            }
            None => healthy.push((i, next, *check)),
        }
    }
    (healthy, unhealthy)
}

/// The regions of some steps, for a summary ("aws:x, gcp:y").
fn region_list(loaded: &Loaded, steps: &[(usize, RolloutStep)]) -> String {
    steps
        .iter()
        .map(|(i, _)| loaded.steps[*i].value.region.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The audit action and summary of a health round: "Baking" when it only
/// starts bakes, else "BakeCheck"; the regions grouped by what they became.
fn round_summary(
    r: &Rollout,
    loaded: &Loaded,
    healthy: &[(usize, RolloutStep, Check)],
) -> (&'static str, String) {
    let mut groups: [(&str, Vec<&str>); 3] = [
        ("baking", Vec::new()),
        ("verified", Vec::new()),
        ("healthy", Vec::new()),
    ];
    let verified = convert::step_state_to_wire(StepState::Verified);
    for (i, next, check) in healthy {
        let g = match check {
            Check::Gate { .. } if next.state == verified => 1,
            Check::Gate { .. } => 0,
            Check::Verify { .. } => 1,
            Check::Bake { .. } => 2,
        };
        groups[g].1.push(loaded.steps[*i].value.region.as_str());
    }
    let only_bakes_start = groups[1].1.is_empty() && groups[2].1.is_empty();
    let parts: Vec<String> = groups
        .iter()
        .filter(|(_, regions)| !regions.is_empty())
        .map(|(word, regions)| format!("{word} in {}", regions.join(", ")))
        .collect();
    let action = if only_bakes_start { "Baking" } else { "BakeCheck" };
    (action, format!("{} {}", r.tile_id, parts.join("; ")))
}

trait RevisionToApply {
    /// The revision a step of this roll-out makes live (0: removed).
    fn revision_to_apply(&self) -> i64;
}

impl RevisionToApply for Rollout {
    fn revision_to_apply(&self) -> i64 {
        if self.kind() == RolloutKind::Withdraw {
            0
        } else {
            self.revision
        }
    }
}

/// Every region verified or skipped: the tile's lifecycle moves, then the
/// roll-out succeeds (with the GA timer for a launch) in one transaction.
async fn finish(ctx: &Ctx, token: &FencingToken, loaded: &Loaded, now: Timestamp) -> Result<Next> {
    let mut w = Write::new(ctx, token, loaded);
    stage_finish(&mut w, now).await?;
    let id = &loaded.rollout.value.id;
    w.commit("Succeeded", format!("roll-out {id} succeeded")).await?;
    Ok(Next::Released)
}

/// Makes `w` the roll-out's last write: the registry's move of the tile
/// first (ROLLED_OUT, GA or WITHDRAWN: the move is the registry's, and the
/// roll-out is recorded succeeded only once it is made), then SUCCEEDED
/// with the GA timer of a launch, the owner key released in the same
/// write, and its event.
async fn stage_finish(w: &mut Write<'_>, now: Timestamp) -> Result<()> {
    let (ctx, token, loaded) = (w.ctx, w.token, w.loaded);
    let r = &loaded.rollout.value;
    let kind = RolloutKind::try_from(r.kind).unwrap_or(RolloutKind::Launch);
    let reason = format!("roll-out {} verified everywhere", r.id);
    // The registry's move of the tile this roll-out completes, when `tile`
    // still needs it (a finish decided again after a crash finds it done).
    let (target, needed): (TileState, fn(&Tile) -> bool) = match kind {
        RolloutKind::Launch | RolloutKind::Unspecified => {
            (TileState::RolledOut, |t| t.state() == TileState::RollingOut)
        }
        RolloutKind::Maintenance => (TileState::Ga, |t| {
            t.maintenance_state() == MaintenanceState::RollingOut
        }),
        // Also on a WITHDRAWN tile: confirming clears its
        // withdraw_requested_at mark.
        RolloutKind::Withdraw => (TileState::Withdrawn, |t| {
            t.state() != TileState::Withdrawn || t.withdraw_requested_at.is_some()
        }),
    };
    let expected = if kind == RolloutKind::Withdraw {
        0
    } else {
        r.revision
    };
    let advance = || ctx.registry.advance(&r.tile_id, target, expected, &reason, &r.id);
    // As at the start: the cache's guess first, the registry's word when
    // the guess is "done already" or the move is refused.
    let advanced = if cached_tile(ctx, &r.tile_id).is_some_and(|t| needed(&t)) {
        advance().await.ok()
    } else {
        None
    };
    let tile = match advanced {
        Some(tile) => tile,
        None => {
            let tile = ctx.registry.get_tile(&r.tile_id, 0).await?;
            if needed(&tile) { advance().await? } else { tile }
        }
    };
    w.rollout.state = convert::state_to_wire(State::Succeeded);
    w.rollout.finished_at = Some(to_proto_timestamp(now));
    // The owner key goes with this last write: no release after it.
    let mut extra = Change::new().release(token);
    if kind == RolloutKind::Launch
        && let Some(ga) = tile
            .ga_time
            .as_ref()
            .or(r.plan.as_ref().and_then(|p| p.ga_time.as_ref()))
    {
        let timer = ga_timer(r, *ga);
        let key = ctx.keys().timer_of(&timer)?;
        extra = extra.put_unchecked(key, &timer);
    }
    // Merged: the finish may go into a write that already carries extras.
    w.extra = std::mem::take(&mut w.extra).merge(extra);
    w.events.push(model::event(
        r,
        EventKind::RolloutSucceeded,
        Severity::Sev4,
        "",
        format!("roll-out {} of {} r{} succeeded", r.id, r.tile_id, r.revision),
        now,
        HashMap::new(),
    ));
    Ok(())
}

/// The GA timer of a launch roll-out.
pub fn ga_timer(r: &Rollout, ga: prost_types::Timestamp) -> Timer {
    Timer {
        id: format!("ga/{}", r.tile_id),
        due: Some(ga),
        kind: GA_TIMER_KIND.into(),
        payload: prost::Message::encode_to_vec(&GaTimerPayload {
            tile_id: r.tile_id.clone(),
            revision: r.revision,
            rollout_id: r.id.clone(),
        }),
        origin: r.origin.clone(),
    }
}

/// Restores what was live before this roll-out in step `i`'s region (a
/// maintenance revision that added a cloud leaves nothing behind in it, a
/// withdraw puts the launched revision back).
async fn restore(ctx: &Ctx, token: &FencingToken, loaded: &Loaded, i: usize, now: Timestamp) -> Result<Next> {
    let r = &loaded.rollout.value;
    let step = &loaded.steps[i].value;
    let restore = crate::reconcile::live_before(ctx, &r.tile_id, loaded.rollout.create_revision)
        .await?
        .get(&step.region)
        .copied()
        .unwrap_or(0);
    match apply_at(ctx, r, &step.region, restore, None, token.agent_token()).await? {
        AgentOutcome::Ok(_) => {
            let mut next = step.clone();
            next.state = convert::step_state_to_wire(StepState::RolledBack);
            next.last_error.clear();
            let mut w = Write::new(ctx, token, loaded);
            w.step(i, next);
            w.commit("RolledBack", format!("r{restore} restored in {}", step.region))
                .await?;
            Ok(Next::Again)
        }
        AgentOutcome::Fenced(m) => Err(agent_fenced(token, &step.region, &m)),
        AgentOutcome::Failed(why) | AgentOutcome::Unreachable(why) => {
            // Keep trying: a rollback must not give up on a region.
            tracing::warn!(rollout = %r.id, region = %step.region, %why, "rollback apply failed; retrying");
            Ok(Next::Until(
                now.checked_add(SignedDuration::from_mins(1)).unwrap_or(now),
                loaded.rollout.etag,
            ))
        }
    }
}

/// Every touched region is restored: the tile's lifecycle moves back and
/// the roll-out ends ROLLED_BACK (without the GA timer of a launch).
async fn rolled_back(ctx: &Ctx, token: &FencingToken, loaded: &Loaded, now: Timestamp) -> Result<Next> {
    let r = &loaded.rollout.value;
    let mut w = Write::new(ctx, token, loaded);
    let kind = RolloutKind::try_from(r.kind).unwrap_or(RolloutKind::Launch);
    let tile = ctx.registry.get_tile(&r.tile_id, 0).await?;
    let reason = format!("roll-out {} rolled back", r.id);
    let target = match kind {
        RolloutKind::Launch | RolloutKind::Unspecified => {
            matches!(tile.state(), TileState::RollingOut | TileState::RolledOut)
                .then_some(TileState::Scheduled)
        }
        // SCHEDULED asks the registry for "rolled back": a GA tile's
        // maintenance revision goes back to SIGNED_OFF (GA would
        // mean "completed", IDLE).
        RolloutKind::Maintenance => {
            (tile.maintenance_state() == MaintenanceState::RollingOut).then_some(TileState::Scheduled)
        }
        RolloutKind::Withdraw => None,
    };
    if let Some(target) = target
        && let Err(e) = ctx
            .registry
            .advance(&r.tile_id, target, r.revision, &reason, &r.id)
            .await
    {
        tracing::warn!(rollout = %r.id, error = %e, "the registry refused the rollback transition");
    }
    w.rollout.state = convert::state_to_wire(State::RolledBack);
    w.rollout.finished_at = Some(to_proto_timestamp(now));
    if let Some(ga) = r.plan.as_ref().and_then(|p| p.ga_time).or(tile.ga_time)
        && kind == RolloutKind::Launch
    {
        let key = ctx.keys().timer_of(&ga_timer(r, ga))?;
        w.extra = Change::new().delete_unchecked(key);
    }
    w.commit("RolledBack", format!("roll-out {} rolled back", r.id))
        .await?;
    Ok(Next::Done)
}

/// Whether a roll-out is over (for callers outside the controller).
pub fn finished(r: &Rollout) -> bool {
    convert::is_terminal(r.state)
}

#[cfg(test)]
mod tests {
    use super::unreachable_status;
    use tonic::{Code, Status};

    #[test]
    fn not_reached_is_told_from_an_answer() {
        let cases = [
            (Status::unavailable("connection refused"), true),
            (Status::deadline_exceeded("timeout"), true),
            (Status::unknown("transport error"), true),
            (
                Status::cancelled("connection closed before message completed"),
                true,
            ),
            (Status::internal("h2 protocol error: stream reset"), true),
            (Status::unknown("the agent's own failure"), false),
            (Status::internal("catalog write failed"), false),
            (
                Status::failed_precondition("fencing token 3 is older than 5"),
                false,
            ),
            (Status::invalid_argument("revision"), false),
            (Status::new(Code::PermissionDenied, "role"), false),
        ];
        for (status, unreachable) in cases {
            assert_eq!(unreachable_status(&status), unreachable, "{status:?}");
        }
    }
}
