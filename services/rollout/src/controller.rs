//! The controller that runs roll-outs. Every replica runs one
//! ([`run`]); it watches the roll-outs and, for each one that needs work
//! (PENDING, RUNNING, PAUSED, ROLLING_BACK) and has no owner, tries to take
//! `owners/rollout-<id>`. The owner drives the roll-out ([`drive`]) one
//! decision at a time, each decision a fenced transaction written *before*
//! its side effect (an agent call), so that a replica that takes over
//! continues from the recorded steps and a replica that lost its lease can
//! neither write to etcd nor (through the fencing token) to the agents.
//!
//! A RUNNING roll-out follows its re-plan from now: a PENDING region starts
//! applying when the re-plan starts it now (which honours blackouts, the
//! concurrency limit and wave order); its apply holds its slot for the
//! apply time; its bake is health-checked at the start, at least every
//! [`HEALTH_CHECK_EVERY`] and at the end; the next wave starts only when
//! every region of the previous one is verified (or skipped), after an
//! Approve if the wave has a hold.

use std::collections::{HashMap, HashSet};

use jiff::{SignedDuration, Timestamp};
use tilewave_proto::agent::v1::{ApplyTileRequest, HealthRequest, RemoveTileRequest};
use tilewave_proto::common::v1::{AuditRecord, EventKind, HealthStatus, Severity, TileState, Timer};
use tilewave_proto::registry::v1::MaintenanceState;
use tilewave_proto::rollout::v1::{
    GaTimerPayload, OnFailure, PauseCause, Rollout, RolloutKind, RolloutState, RolloutStep, StepState,
};
use tilewave_store::clock::{from_proto_timestamp, to_proto_timestamp};
use tilewave_store::{Change, FencingToken, Ownership};
use tracing::Instrument as _;

use crate::clients::request;
use crate::error::{Error, Result};
use crate::model::{self, Ctx, HEALTH_CHECK_EVERY, Loaded, is_terminal};
use crate::spec;

/// The kind of the GA timer.
pub const GA_TIMER_KIND: &str = "ga";

/// Longest real wait between two looks at a roll-out, whatever the clock
/// says (a safety net; changes and clock jumps wake the owner earlier).
const MAX_IDLE: std::time::Duration = std::time::Duration::from_secs(2);
/// Back-off after an error other than a conflict.
const ERROR_BACKOFF: std::time::Duration = std::time::Duration::from_millis(300);

/// Whether a roll-out in this state needs an owner.
pub fn needs_owner(state: i32) -> bool {
    matches!(
        RolloutState::try_from(state).unwrap_or(RolloutState::Unspecified),
        RolloutState::Pending | RolloutState::Running | RolloutState::Paused | RolloutState::RollingBack
    )
}

/// Runs the controller until `shutdown`.
pub async fn run(ctx: Ctx, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    let mut changes = ctx.rollouts.revision_watch();
    let mut driving: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    loop {
        driving.retain(|_, h| !h.is_finished());
        for r in ctx.rollouts.list() {
            let id = r.value.id.clone();
            if !needs_owner(r.value.state) || driving.contains_key(&id) {
                continue;
            }
            let work = model::owner_work(&id);
            match tilewave_store::ownership::current_owner(&ctx.store, &work).await {
                Ok(Some(_)) => continue,
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(rollout = %id, error = %e, "cannot read the owner");
                    continue;
                }
            }
            match Ownership::try_acquire(&ctx.store, &work, &ctx.holder, ctx.ttl).await {
                Ok(Some(own)) => {
                    let ctx = ctx.clone();
                    let origin = r.value.origin.clone().unwrap_or_default();
                    let span = tilewave_telemetry::span_linked_to(&origin, "rollout.drive");
                    let rid = id.clone();
                    driving.insert(id, tokio::spawn(drive(ctx, rid, own).instrument(span)));
                }
                Ok(None) => {}
                Err(e) => tracing::debug!(rollout = %id, error = %e, "cannot take ownership"),
            }
        }
        tokio::select! {
            () = &mut shutdown => break,
            _ = changes.changed() => {}
            () = tokio::time::sleep(ctx.ttl / 3) => {}
        }
    }
    for (_, h) in driving {
        h.abort();
    }
}

/// What the owner does after one decision.
#[derive(Debug)]
enum Next {
    /// Decide again at once.
    Again,
    /// Nothing to do before this domain time (or a change).
    Until(Timestamp),
    /// The roll-out needs no owner any more.
    Done,
}

/// Drives one roll-out while `own` holds it.
pub async fn drive(ctx: Ctx, id: String, own: Ownership) {
    let token = own.token();
    let mut lost = own.lost_signal();
    let mut changes = ctx.rollouts.revision_watch();
    let mut freeze = ctx.freeze.revision_watch();
    tracing::info!(rollout = %id, token = token.revision, holder = %ctx.holder, "driving roll-out");
    loop {
        if *lost.borrow() {
            tracing::warn!(rollout = %id, "ownership lost: stopping at once");
            return;
        }
        changes.borrow_and_update();
        freeze.borrow_and_update();
        let step = tokio::select! {
            r = decide(&ctx, &id, &token) => r,
            _ = lost.wait_for(|l| *l) => {
                tracing::warn!(rollout = %id, "ownership lost mid-step: stopping at once");
                return;
            }
        };
        match step {
            Ok(Next::Again) => continue,
            Ok(Next::Done) => {
                tracing::info!(rollout = %id, "roll-out needs no owner any more; releasing");
                if let Err(e) = own.release().await {
                    tracing::debug!(rollout = %id, error = %e, "release failed; the lease will expire");
                }
                return;
            }
            Ok(Next::Until(t)) => {
                tokio::select! {
                    () = ctx.clock.sleep_until(t) => {}
                    _ = changes.changed() => {}
                    _ = freeze.changed() => {}
                    _ = lost.changed() => {}
                    () = tokio::time::sleep(MAX_IDLE) => {}
                }
            }
            Err(Error::Store(tilewave_store::Error::Fenced { .. })) => {
                tracing::warn!(rollout = %id, "write fenced: another replica owns the roll-out; stopping");
                return;
            }
            Err(Error::Store(tilewave_store::Error::Conflict { .. })) => {}
            Err(e) => {
                tracing::warn!(rollout = %id, error = %e, "roll-out step failed; retrying");
                tokio::time::sleep(ERROR_BACKOFF).await;
            }
        }
    }
}

fn ts(t: Option<&prost_types::Timestamp>) -> Option<Timestamp> {
    t.and_then(|t| from_proto_timestamp(t).ok())
}

fn state_of(s: &RolloutStep) -> StepState {
    StepState::try_from(s.state).unwrap_or(StepState::Unspecified)
}

fn dur(d: Option<&prost_types::Duration>, default: SignedDuration) -> SignedDuration {
    d.and_then(|d| spec::duration_of("", d).ok()).unwrap_or(default)
}

/// The bake of a wave (1-based) under a spec.
fn bake_of(r: &Rollout, wave: i32) -> SignedDuration {
    let spec = r.spec.clone().unwrap_or_default();
    if spec.bake_per_wave.is_empty() {
        return dur(spec.bake.as_ref(), tilewave_core::planner::DEFAULT_BAKE);
    }
    let i = usize::try_from(wave - 1)
        .unwrap_or(0)
        .min(spec.bake_per_wave.len() - 1);
    dur(spec.bake_per_wave.get(i), tilewave_core::planner::DEFAULT_BAKE)
}

fn apply_time(r: &Rollout) -> SignedDuration {
    dur(
        r.spec.as_ref().and_then(|s| s.apply_time.as_ref()),
        tilewave_core::planner::DEFAULT_APPLY_TIME,
    )
}

fn audit(action: &str, r: &Rollout, summary: String) -> AuditRecord {
    AuditRecord {
        action: action.to_owned(),
        object_kind: "rollout".into(),
        object_id: r.id.clone(),
        summary,
        trace_id: r.trace_id.clone(),
        ..Default::default()
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

    async fn commit(mut self, action: &str, summary: String) -> Result<()> {
        let now = self.ctx.clock.now();
        let mut all: Vec<RolloutStep> = self.loaded.steps.iter().map(|s| s.value.clone()).collect();
        for (i, s) in &self.steps {
            all[*i] = s.clone();
        }
        let re = model::replan_into(self.ctx, &mut self.rollout, &all, now);
        let keys = self.ctx.keys();
        let mut change = Change::new()
            .update(
                keys.rollout(&self.rollout.id),
                &stored(&self.rollout),
                self.loaded.rollout.etag,
            )
            .fence(self.token)
            .merge(self.extra);
        change = model::with_active_marker(keys, change, self.loaded.rollout.value.state, &self.rollout);
        for (i, s) in &self.steps {
            let v = &self.loaded.steps[*i];
            change = change.update(v.key.clone(), s, v.etag);
        }
        for e in self.events.iter().chain(re.crossed.iter()) {
            change = model::with_event(keys, change, e);
        }
        let change = change.audit(audit(action, &self.rollout, summary));
        self.ctx.store.commit(change, &self.ctx.actor).await?;
        Ok(())
    }
}

/// The roll-out as stored: without steps and etag.
pub fn stored(r: &Rollout) -> Rollout {
    let mut r = r.clone();
    r.steps.clear();
    r.etag = 0;
    r
}

/// One decision of the owner.
async fn decide(ctx: &Ctx, id: &str, token: &FencingToken) -> Result<Next> {
    let loaded = model::load(&ctx.store, id).await?;
    let r = &loaded.rollout.value;
    let now = ctx.clock.now();
    match RolloutState::try_from(r.state).unwrap_or(RolloutState::Unspecified) {
        RolloutState::Succeeded
        | RolloutState::Failed
        | RolloutState::Aborted
        | RolloutState::RolledBack
        | RolloutState::Unspecified => Ok(Next::Done),
        RolloutState::Pending => {
            let earliest = ts(r.spec.as_ref().and_then(|s| s.earliest_start.as_ref()));
            match earliest {
                Some(t) if t > now => Ok(Next::Until(t)),
                _ => {
                    let mut w = Write::new(ctx, token, &loaded);
                    w.rollout.state = RolloutState::Running as i32;
                    w.commit("StartApplying", "earliest start reached".into()).await?;
                    Ok(Next::Again)
                }
            }
        }
        RolloutState::Running | RolloutState::Paused => advance(ctx, token, &loaded, now).await,
        RolloutState::RollingBack => rollback_step(ctx, token, &loaded, now).await,
    }
}

/// Makes sure the registry shows the roll-out as started (idempotent: it
/// looks at the tile first).
async fn ensure_lifecycle_started(ctx: &Ctx, r: &Rollout) -> Result<()> {
    let tile = ctx.registry.get_tile(&r.tile_id, 0).await?;
    let kind = RolloutKind::try_from(r.kind).unwrap_or(RolloutKind::Launch);
    let needed = match kind {
        RolloutKind::Launch | RolloutKind::Unspecified => tile.state == TileState::Scheduled as i32,
        RolloutKind::Maintenance => tile.maintenance_state != MaintenanceState::RollingOut as i32,
        RolloutKind::Withdraw => false,
    };
    if needed {
        ctx.registry
            .advance(
                &r.tile_id,
                TileState::RollingOut,
                r.revision,
                &format!("roll-out {} started", r.id),
                &r.id,
            )
            .await?;
    }
    Ok(())
}

async fn config_of(
    ctx: &Ctx,
    tile: &str,
    revision: i64,
) -> Result<tilewave_proto::common::v1::PartnerConfig> {
    Ok(ctx
        .registry
        .get_tile(tile, revision)
        .await?
        .config
        .unwrap_or_default())
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
    Ok,
    /// The agent refused our fencing token: someone newer owns the tile.
    Fenced(String),
    /// It failed; the message says how.
    Failed(String),
}

async fn apply_at(ctx: &Ctx, r: &Rollout, region: &str, revision: i64, token: i64) -> Result<AgentOutcome> {
    let span = step_span(r, "rollout.apply", region, revision);
    async {
        let mut client = match ctx.agents.client(region).await {
            Ok(c) => c,
            Err(e) => return Ok(AgentOutcome::Failed(e.to_string())),
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
                .map(|_| ())
        } else {
            let config = config_of(ctx, &r.tile_id, revision).await?;
            client
                .apply_tile(request(
                    ApplyTileRequest {
                        tile_id: r.tile_id.clone(),
                        revision,
                        config: Some(config),
                        fencing_token: token,
                        rollout_id: r.id.clone(),
                        ..Default::default()
                    },
                    ctx.agents.timeout(),
                ))
                .await
                .map(|_| ())
        };
        Ok(match result {
            Ok(()) => AgentOutcome::Ok,
            Err(s) if s.code() == tonic::Code::FailedPrecondition => {
                AgentOutcome::Fenced(s.message().to_owned())
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
        let th = resp.tiles.into_iter().find(|t| t.tile_id == r.tile_id);
        Ok(match th {
            Some(t) if t.status == HealthStatus::Unhealthy as i32 => (
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
        })
    }
    .instrument(span)
    .await
}

/// Marks step `i` FAILED, pauses the roll-out (or rolls the wave back) and
/// writes the one failure event, in one transaction: `w`, which may already
/// hold other steps' changes (what the same round learnt about them).
async fn fail_step(
    mut w: Write<'_>,
    i: usize,
    mut step: RolloutStep,
    why: String,
    now: Timestamp,
) -> Result<Next> {
    let loaded = w.loaded;
    let r = &loaded.rollout.value;
    step.state = StepState::Failed as i32;
    step.last_error = why.clone();
    let rollback_wave = r
        .spec
        .as_ref()
        .is_some_and(|s| s.on_failure == OnFailure::RollbackWave as i32);
    let message = format!(
        "{} failed in {} (wave {}): {why}",
        r.tile_id, step.region, step.wave
    );
    if rollback_wave {
        w.rollout.state = RolloutState::RollingBack as i32;
        w.rollout.pause_after_rollback = true;
        w.rollout.rollback_regions = loaded
            .steps
            .iter()
            .filter(|s| s.value.wave == step.wave)
            .map(|s| s.value.region.clone())
            .collect();
    } else {
        w.rollout.state = RolloutState::Paused as i32;
    }
    w.rollout.pause_cause = PauseCause::Failure as i32;
    w.rollout.paused_reason = message.clone();
    let mut attributes = HashMap::new();
    attributes.insert("wave".to_owned(), step.wave.to_string());
    attributes.insert("error".to_owned(), why);
    w.events.push(model::event(
        r,
        EventKind::RolloutFailed,
        Severity::Sev2,
        &step.region,
        format!(
            "{message}; roll-out {}",
            if rollback_wave {
                "rolling the wave back"
            } else {
                "paused"
            }
        ),
        now,
        attributes,
    ));
    let region = step.region.clone();
    w.step(i, step);
    w.commit("StepFailed", format!("{region} failed")).await?;
    Ok(Next::Again)
}

/// One decision for a RUNNING or PAUSED roll-out.
///
/// Its order matters on a fast virtual clock, where one decision (an etcd
/// transaction, an agent call) costs more domain time than a bake check's
/// period: unacknowledged applies first, then the health gates of applies
/// whose time is over, then the applies the re-plan starts now, then the
/// bake checks, each step for every region it concerns at once (one
/// transaction). Bake checks that are always due must not hold new applies
/// back (they did: a wave's regions then applied one bake after another).
async fn advance(ctx: &Ctx, token: &FencingToken, loaded: &Loaded, now: Timestamp) -> Result<Next> {
    let r = &loaded.rollout.value;
    let running = r.state == RolloutState::Running as i32;
    let mut wake = Wake::default();

    if running && r.started_at.is_none() {
        ensure_lifecycle_started(ctx, r).await?;
        let mut w = Write::new(ctx, token, loaded);
        w.rollout.started_at = Some(to_proto_timestamp(now));
        w.commit("Started", format!("roll-out {} started applying", r.id))
            .await?;
        return Ok(Next::Again);
    }

    if let Some(next) = issue_applies(ctx, token, loaded, now).await? {
        return Ok(next);
    }

    // An apply whose time is over has its health gate (the start of its
    // bake) before anything else starts: an unhealthy region stops the
    // roll-out before more regions take the revision.
    let apply = apply_time(r);
    let gate_due = loaded.steps.iter().any(|s| {
        state_of(&s.value) == StepState::Applying
            && ts(s.value.apply_started_at.as_ref())
                .and_then(|t| t.checked_add(apply).ok())
                .is_some_and(|end| now >= end)
    });
    if gate_due && let Some(next) = health_round(ctx, token, loaded, now, &mut wake).await? {
        return Ok(next);
    }

    let steps: Vec<RolloutStep> = loaded.steps.iter().map(|s| s.value.clone()).collect();
    let wave = model::current_wave(&steps);
    if running
        && let Some(wave) = wave
        && !held(r, &steps, wave)
        && !ctx.frozen()
        && let Some(next) = start_applies(ctx, token, loaded, &steps, wave, now, &mut wake).await?
    {
        return Ok(next);
    }

    if let Some(next) = health_round(ctx, token, loaded, now, &mut wake).await? {
        return Ok(next);
    }

    let Some(wave) = wave else {
        return finish(ctx, token, loaded, now).await;
    };

    if !running {
        // Paused: keep the re-plan current so a deadline at risk shows.
        let computed = ts(r.plan.as_ref().and_then(|p| p.computed_at.as_ref()));
        let next_refresh = computed.and_then(|c| c.checked_add(HEALTH_CHECK_EVERY).ok());
        if next_refresh.is_none_or(|t| now >= t) {
            Write::new(ctx, token, loaded)
                .commit("Replan", format!("re-planned {} while paused", r.id))
                .await?;
            return Ok(Next::Again);
        }
        if let Some(t) = next_refresh {
            wake.at(t);
        }
        return Ok(Next::Until(wake.or(now)));
    }

    if held(r, &steps, wave) {
        let prev = wave - 1;
        let mut w = Write::new(ctx, token, loaded);
        w.rollout.state = RolloutState::Paused as i32;
        w.rollout.pause_cause = PauseCause::Hold as i32;
        w.rollout.held_after_wave = prev;
        w.rollout.paused_reason = format!("held after wave {prev}: waiting for Approve");
        w.commit("Hold", format!("held after wave {prev}")).await?;
        return Ok(Next::Again);
    }

    if ctx.frozen() {
        if !r.frozen {
            Write::new(ctx, token, loaded)
                .commit("Frozen", "the global freeze holds new applies back".into())
                .await?;
            return Ok(Next::Again);
        }
        return Ok(Next::Until(
            wake.or(now.checked_add(HEALTH_CHECK_EVERY).unwrap_or(now)),
        ));
    }

    if r.frozen {
        Write::new(ctx, token, loaded)
            .commit("Unfrozen", "the global freeze was lifted".into())
            .await?;
        return Ok(Next::Again);
    }
    Ok(Next::Until(
        wake.or(now.checked_add(HEALTH_CHECK_EVERY).unwrap_or(now)),
    ))
}

/// The earliest domain time the owner must look again.
#[derive(Debug, Default)]
struct Wake(Option<Timestamp>);

impl Wake {
    fn at(&mut self, t: Timestamp) {
        self.0 = Some(self.0.map_or(t, |w| w.min(t)));
    }

    fn or(self, default: Timestamp) -> Timestamp {
        self.0.unwrap_or(default)
    }
}

/// Whether wave `wave` waits for an Approve of the wave before it (its
/// regions untouched so far).
fn held(r: &Rollout, steps: &[RolloutStep], wave: i32) -> bool {
    let prev = wave - 1;
    let hold = r
        .spec
        .as_ref()
        .is_some_and(|s| s.hold_after_waves.contains(&prev));
    let untouched = steps
        .iter()
        .filter(|s| s.wave == wave)
        .all(|s| s.state == StepState::Pending as i32);
    prev >= 1 && hold && untouched && !r.approved_waves.contains(&prev)
}

/// Applies recorded but not (known to be) done: (re)issues them, all at
/// once, and records what they did in one transaction. The agent treats
/// the same (tile, revision) as a no-op. `None` when there were none.
async fn issue_applies(
    ctx: &Ctx,
    token: &FencingToken,
    loaded: &Loaded,
    now: Timestamp,
) -> Result<Option<Next>> {
    let r = &loaded.rollout.value;
    let open: Vec<usize> = loaded
        .steps
        .iter()
        .enumerate()
        .filter(|(_, s)| state_of(&s.value) == StepState::Applying && s.value.applied_at.is_none())
        .map(|(i, _)| i)
        .collect();
    if open.is_empty() {
        return Ok(None);
    }
    let outcomes = futures::future::join_all(open.iter().map(|&i| {
        apply_at(
            ctx,
            r,
            &loaded.steps[i].value.region,
            r.revision_to_apply(),
            token.revision,
        )
    }))
    .await;
    let mut done = Vec::new();
    let mut failed = None;
    for (&i, outcome) in open.iter().zip(outcomes) {
        let step = &loaded.steps[i].value;
        match outcome? {
            AgentOutcome::Ok => {
                let mut next = step.clone();
                next.applied_at = Some(to_proto_timestamp(ctx.clock.now()));
                next.last_error.clear();
                done.push((i, next));
            }
            AgentOutcome::Fenced(m) => {
                return Err(Error::Store(tilewave_store::Error::Fenced {
                    owner_key: format!("{} (agent of {}: {m})", token.owner_key, step.region),
                    token: token.revision,
                }));
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
        return fail_step(w, i, step, why, now).await.map(Some);
    }
    w.commit("Applied", format!("{} applied in {regions}", r.tile_id))
        .await?;
    Ok(Some(Next::Again))
}

/// Starts, in one transaction, every pending region of `wave` that the
/// re-plan starts now, as far as the concurrency limit allows. `None` when
/// none starts now (`wake` learns when one will).
async fn start_applies(
    ctx: &Ctx,
    token: &FencingToken,
    loaded: &Loaded,
    steps: &[RolloutStep],
    wave: i32,
    now: Timestamp,
    wake: &mut Wake,
) -> Result<Option<Next>> {
    let r = &loaded.rollout.value;
    let resolved = model::resolved_of(ctx, r, now)?;
    let re = tilewave_core::planner::replan(&resolved.input, &model::progress(r, steps), now)?;
    let concurrency = usize::try_from(r.spec.as_ref().map_or(1, |s| s.concurrency.max(1))).unwrap_or(1);
    let applying = steps
        .iter()
        .filter(|s| s.state == StepState::Applying as i32)
        .count();
    let pending_here: HashSet<&str> = steps
        .iter()
        .filter(|s| s.wave == wave && s.state == StepState::Pending as i32)
        .map(|s| s.region.as_str())
        .collect();
    let mut starting = Vec::new();
    for planned in &re.plan.regions {
        if !pending_here.contains(planned.region.as_str()) {
            continue;
        }
        if planned.apply_start > now {
            wake.at(planned.apply_start);
            continue;
        }
        if applying + starting.len() >= concurrency {
            break;
        }
        let Some(i) = loaded.steps.iter().position(|s| s.value.region == planned.region) else {
            continue;
        };
        let mut next = loaded.steps[i].value.clone();
        next.state = StepState::Applying as i32;
        next.attempts += 1;
        next.apply_started_at = Some(to_proto_timestamp(now));
        next.applied_at = None;
        next.bake_ends_at = None;
        next.last_error.clear();
        starting.push((i, next));
    }
    if starting.is_empty() {
        return Ok(None);
    }
    let regions = region_list(loaded, &starting);
    let mut w = Write::new(ctx, token, loaded);
    w.rollout.frozen = false;
    w.steps(starting);
    w.commit(
        "Apply",
        format!("applying {} r{} in {regions}", r.tile_id, r.revision),
    )
    .await?;
    Ok(Some(Next::Again))
}

/// One health round: every applied region whose apply time is over (its
/// bake starts, health-checked) and every bake due a check (every
/// [`HEALTH_CHECK_EVERY`] and at its end), asked at once and recorded in
/// one transaction; the first unhealthy region fails its step. `None` when
/// no region needs a check (`wake` learns when one will).
async fn health_round(
    ctx: &Ctx,
    token: &FencingToken,
    loaded: &Loaded,
    now: Timestamp,
    wake: &mut Wake,
) -> Result<Option<Next>> {
    let r = &loaded.rollout.value;
    let apply = apply_time(r);
    // (step, the step after a healthy check)
    let mut due: Vec<(usize, RolloutStep)> = Vec::new();
    for (i, s) in loaded.steps.iter().enumerate() {
        let step = &s.value;
        match state_of(step) {
            StepState::Applying => {
                let Some(started) = ts(step.apply_started_at.as_ref()) else {
                    continue;
                };
                let slot_end = started.checked_add(apply).unwrap_or(started);
                if now < slot_end {
                    wake.at(slot_end);
                    continue;
                }
                let mut next = step.clone();
                next.state = StepState::Baking as i32;
                let bake_end = slot_end.checked_add(bake_of(r, step.wave)).unwrap_or(slot_end);
                next.bake_ends_at = Some(to_proto_timestamp(bake_end));
                due.push((i, next));
            }
            StepState::Baking => {
                let end = ts(step.bake_ends_at.as_ref()).unwrap_or(now);
                let last = ts(step.last_health_at.as_ref());
                let check_due = last.and_then(|l| l.checked_add(HEALTH_CHECK_EVERY).ok());
                if now < end && check_due.is_some_and(|c| now < c) {
                    wake.at(end.min(check_due.unwrap_or(end)));
                    continue;
                }
                let mut next = step.clone();
                if now >= end {
                    next.state = StepState::Verified as i32;
                    next.verified_at = Some(to_proto_timestamp(now));
                }
                due.push((i, next));
            }
            _ => {}
        }
    }
    if due.is_empty() {
        return Ok(None);
    }
    let answers = futures::future::join_all(
        due.iter()
            .map(|(i, _)| health_at(ctx, r, &loaded.steps[*i].value.region)),
    )
    .await;
    let mut healthy = Vec::new();
    let mut unhealthy = None;
    for ((i, mut next), answer) in due.into_iter().zip(answers) {
        let (status, bad) = answer?;
        next.last_health = status as i32;
        next.last_health_at = Some(to_proto_timestamp(now));
        match bad {
            Some(why) => {
                if unhealthy.is_none() {
                    // The step as it was, with the verdict: it fails where it stood.
                    let mut failed = loaded.steps[i].value.clone();
                    failed.last_health = next.last_health;
                    failed.last_health_at = next.last_health_at;
                    unhealthy = Some((i, failed, why));
                }
            }
            None => healthy.push((i, next)),
        }
    }
    let (action, summary) = round_summary(r, loaded, &healthy);
    let mut w = Write::new(ctx, token, loaded);
    w.steps(healthy);
    if let Some((i, step, why)) = unhealthy {
        return fail_step(w, i, step, format!("health gate: {why}"), now)
            .await
            .map(Some);
    }
    w.commit(action, summary).await?;
    Ok(Some(Next::Again))
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
fn round_summary(r: &Rollout, loaded: &Loaded, healthy: &[(usize, RolloutStep)]) -> (&'static str, String) {
    let mut groups: [(&str, Vec<&str>); 3] = [
        ("baking", Vec::new()),
        ("verified", Vec::new()),
        ("healthy", Vec::new()),
    ];
    for (i, next) in healthy {
        let was = &loaded.steps[*i].value;
        let g = if next.state == StepState::Verified as i32 {
            1
        } else if state_of(was) == StepState::Applying {
            0
        } else {
            2
        };
        groups[g].1.push(was.region.as_str());
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
        if self.kind == RolloutKind::Withdraw as i32 {
            0
        } else {
            self.revision
        }
    }
}

/// Every region verified or skipped: the tile's lifecycle moves, then the
/// roll-out succeeds (with the GA timer for a launch) in one transaction.
async fn finish(ctx: &Ctx, token: &FencingToken, loaded: &Loaded, now: Timestamp) -> Result<Next> {
    let r = &loaded.rollout.value;
    let kind = RolloutKind::try_from(r.kind).unwrap_or(RolloutKind::Launch);
    let tile = ctx.registry.get_tile(&r.tile_id, 0).await?;
    let reason = format!("roll-out {} verified everywhere", r.id);
    match kind {
        RolloutKind::Launch | RolloutKind::Unspecified => {
            if tile.state == TileState::RollingOut as i32 {
                ctx.registry
                    .advance(&r.tile_id, TileState::RolledOut, r.revision, &reason, &r.id)
                    .await?;
            }
        }
        RolloutKind::Maintenance => {
            if tile.maintenance_state == MaintenanceState::RollingOut as i32 {
                ctx.registry
                    .advance(&r.tile_id, TileState::Ga, r.revision, &reason, &r.id)
                    .await?;
            }
        }
        RolloutKind::Withdraw => {
            // Also on a WITHDRAWN tile: confirming clears its
            // withdraw_requested_at mark.
            if tile.state != TileState::Withdrawn as i32 || tile.withdraw_requested_at.is_some() {
                ctx.registry
                    .advance(&r.tile_id, TileState::Withdrawn, 0, &reason, &r.id)
                    .await?;
            }
        }
    }
    let mut w = Write::new(ctx, token, loaded);
    w.rollout.state = RolloutState::Succeeded as i32;
    w.rollout.finished_at = Some(to_proto_timestamp(now));
    if kind == RolloutKind::Launch
        && let Some(ga) = tile
            .ga_time
            .as_ref()
            .or(r.plan.as_ref().and_then(|p| p.ga_time.as_ref()))
    {
        let timer = ga_timer(r, *ga);
        let key = ctx.keys().timer(from_proto_timestamp(ga)?, &timer.id)?;
        w.extra = Change::new().put_unchecked(key, &timer);
    }
    w.events.push(model::event(
        r,
        EventKind::RolloutSucceeded,
        Severity::Sev4,
        "",
        format!("roll-out {} of {} r{} succeeded", r.id, r.tile_id, r.revision),
        now,
        HashMap::new(),
    ));
    w.commit("Succeeded", format!("roll-out {} succeeded", r.id))
        .await?;
    Ok(Next::Done)
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

/// Whether step `s` changed its region and so needs restoring.
fn needs_rollback(r: &Rollout, s: &RolloutStep) -> bool {
    let in_scope = r.rollback_regions.is_empty() || r.rollback_regions.contains(&s.region);
    let touched = match state_of(s) {
        StepState::Applying | StepState::Baking | StepState::Verified | StepState::RollingBack => true,
        StepState::Failed => s.apply_started_at.is_some(),
        StepState::Pending | StepState::Skipped | StepState::RolledBack | StepState::Unspecified => false,
    };
    in_scope && touched
}

/// One decision of a ROLLING_BACK roll-out: restore the newest applied
/// region, or finish.
async fn rollback_step(ctx: &Ctx, token: &FencingToken, loaded: &Loaded, now: Timestamp) -> Result<Next> {
    let r = &loaded.rollout.value;
    let newest = loaded
        .steps
        .iter()
        .enumerate()
        .filter(|(_, s)| needs_rollback(r, &s.value))
        .max_by_key(|(_, s)| {
            let t = s
                .value
                .applied_at
                .or(s.value.apply_started_at)
                .unwrap_or_default();
            (s.value.state == StepState::RollingBack as i32, t.seconds, t.nanos)
        });
    if let Some((i, s)) = newest {
        let step = &s.value;
        if state_of(step) != StepState::RollingBack {
            let mut next = step.clone();
            next.state = StepState::RollingBack as i32;
            let mut w = Write::new(ctx, token, loaded);
            w.step(i, next);
            w.commit("RollingBack", format!("restoring {}", step.region))
                .await?;
            return Ok(Next::Again);
        }
        // What was live there before this roll-out: a maintenance revision
        // that added a cloud leaves nothing behind in it, a withdraw puts
        // the launched revision back.
        let restore = crate::reconcile::live_before(ctx, &r.tile_id, loaded.rollout.create_revision)
            .await?
            .get(&step.region)
            .copied()
            .unwrap_or(0);
        match apply_at(ctx, r, &step.region, restore, token.revision).await? {
            AgentOutcome::Ok => {
                let mut next = step.clone();
                next.state = StepState::RolledBack as i32;
                next.last_error.clear();
                let mut w = Write::new(ctx, token, loaded);
                w.step(i, next);
                w.commit("RolledBack", format!("r{restore} restored in {}", step.region))
                    .await?;
                Ok(Next::Again)
            }
            AgentOutcome::Fenced(m) => Err(Error::Store(tilewave_store::Error::Fenced {
                owner_key: format!("{} (agent of {}: {m})", token.owner_key, step.region),
                token: token.revision,
            })),
            AgentOutcome::Failed(why) => {
                // Keep trying: a rollback must not give up on a region.
                tracing::warn!(rollout = %r.id, region = %step.region, %why, "rollback apply failed; retrying");
                Ok(Next::Until(
                    now.checked_add(SignedDuration::from_mins(1)).unwrap_or(now),
                ))
            }
        }
    } else {
        let mut w = Write::new(ctx, token, loaded);
        if r.pause_after_rollback {
            w.rollout.state = RolloutState::Paused as i32;
            w.rollout.pause_after_rollback = false;
            w.rollout.rollback_regions.clear();
            w.commit("WaveRolledBack", "failed wave rolled back; paused".into())
                .await?;
            return Ok(Next::Again);
        }
        let kind = RolloutKind::try_from(r.kind).unwrap_or(RolloutKind::Launch);
        let tile = ctx.registry.get_tile(&r.tile_id, 0).await?;
        let reason = format!("roll-out {} rolled back", r.id);
        let target = match kind {
            RolloutKind::Launch | RolloutKind::Unspecified => (tile.state == TileState::RollingOut as i32
                || tile.state == TileState::RolledOut as i32)
                .then_some(TileState::Scheduled),
            // SCHEDULED asks the registry for "rolled back": a GA tile's
            // maintenance revision goes back to SIGNED_OFF (GA would
            // mean "completed", IDLE).
            RolloutKind::Maintenance => (tile.maintenance_state == MaintenanceState::RollingOut as i32)
                .then_some(TileState::Scheduled),
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
        w.rollout.state = RolloutState::RolledBack as i32;
        w.rollout.finished_at = Some(to_proto_timestamp(now));
        if let Some(ga) = r.plan.as_ref().and_then(|p| p.ga_time).or(tile.ga_time)
            && kind == RolloutKind::Launch
        {
            let key = ctx
                .keys()
                .timer(from_proto_timestamp(&ga)?, &format!("ga/{}", r.tile_id))?;
            w.extra = Change::new().delete_unchecked(key);
        }
        w.commit("RolledBack", format!("roll-out {} rolled back", r.id))
            .await?;
        Ok(Next::Done)
    }
}

/// Whether a roll-out is over (for callers outside the controller).
pub fn finished(r: &Rollout) -> bool {
    is_terminal(r.state)
}
