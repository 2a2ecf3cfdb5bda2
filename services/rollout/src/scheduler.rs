//! The GA scheduler loop: one owner at a time (`owners/scheduler`, the
//! store's owner loop), it looks at every SCHEDULED tile whenever a tile,
//! roll-out or the calendar changes, or the domain clock reaches the next
//! moment it waits for, and
//!
//! - before the tile's start (GA - 7 days): re-plans its launch roll-out
//!   (the calendar's blackouts included) and raises DEADLINE_AT_RISK when
//!   the slack falls below the margin (12 h by default), with how late it
//!   would be and what would fix it, and again, as certain, when not even
//!   the planner's suggestions fit: each once per tile, revision and GA
//!   moment (the event id is derived from them, and created only if
//!   absent);
//! - from the start on (or at once when it has passed and the plan still
//!   fits): runs the pre-flight (not held, no global freeze, the plan fits,
//!   every planned region has a live agent) and starts the roll-out
//!   through the same code as StartRollout, fenced by the owner's token. A
//!   failed pre-flight is stored at `launch-blocked/<tile>` (what `ga list`
//!   shows) and raises PREFLIGHT_FAILED once per distinct reason.
//!
//! A revision whose launch roll-out was ever created (even aborted) is
//! never started again by the scheduler: after an abort a person decides
//! (`tilewave rollout start`, or `tilewave ga move`). Two replicas cannot
//! start one launch twice: the roll-out id and the tile's active marker
//! are created only if absent, in the transaction that creates it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tilewave_core::calendar::{PLAN_MARGIN, format_instant};
use tilewave_core::planner::{self, format_duration};
use tilewave_proto::common::v1::{Event, EventKind, Severity, SpanOrigin, TileState};
use tilewave_proto::registry::v1::Tile;
use tilewave_proto::rollout::v1::{LaunchBlocked, RolloutKind, RolloutSpec};
use tilewave_store::clock::to_proto_timestamp;
use tilewave_store::{Actor, Change, FencingToken, Owned, OwnerLoop, Shutdown};
use tracing::Instrument;

use crate::error::{Error, Result};
use crate::launch::{self, LAUNCH_LEAD};
use crate::model::Ctx;
use crate::service::{Preflight, Rollouts};
use crate::spec;

/// Why a scheduled launch has no plan that fits.
#[derive(Debug)]
pub enum PlanFailure {
    /// The plan ends after the deadline.
    Late(Box<planner::Infeasible>),
    /// The planner found no plan at all (its error).
    None(String),
}

/// The scheduler's settings.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Whether it runs at all.
    pub enabled: bool,
    /// DEADLINE_AT_RISK below this much planned slack.
    pub at_risk_margin: SignedDuration,
    /// The pre-flight checks that the tile's CURRENT partner credential was
    /// verified in every planned region.
    pub preflight_credentials: bool,
    /// The pre-flight checks that an incident during the launch window
    /// would page someone (the escalation service's policies, people and
    /// schedules).
    pub preflight_oncall: bool,
}

/// How often a pass runs when nothing changes (real time), besides the
/// wake-ups on changes and on the next due moment.
const IDLE_PASS: Duration = Duration::from_secs(2);

/// How long (domain time) a scheduled tile's plan serves later passes while
/// its launch is not yet due and neither the tile nor the calendar changed.
/// A pass runs after every burst of changes (100 ms apart while roll-outs
/// run), and planning every scheduled tile in each was most of the
/// scheduler's cost (BENCHMARKS.md, throughput). The deadline watch sees a
/// plan at most this old; a due launch is always planned afresh.
const PLAN_REUSE: SignedDuration = SignedDuration::from_mins(1);

/// A scheduled launch's plan from now: `Ok` when it fits.
type PlanResult = std::result::Result<planner::Plan, Box<PlanFailure>>;

/// A plan and what it was made from.
#[derive(Debug)]
struct Planned {
    /// The tile's etag.
    tile: i64,
    /// The launch calendar's etag (0: none).
    calendar: i64,
    /// The domain time it was made at.
    at: Timestamp,
    plan: Arc<PlanResult>,
}

impl Planned {
    /// Whether it may serve a pass at `now` for the tile and calendar at
    /// these etags, its launch `due` or not.
    fn serves(&self, tile: i64, calendar: i64, now: Timestamp, due: bool) -> bool {
        !due && self.tile == tile
            && self.calendar == calendar
            && self.at <= now
            && now.duration_since(self.at) < PLAN_REUSE
    }
}

/// The scheduler's plans of scheduled tiles, by tile id, kept between
/// passes while it owns the work.
#[derive(Debug, Default)]
struct Plans(HashMap<String, Planned>);

impl Plans {
    /// `tile`'s plan at `now`: the kept one when it serves, else a new one.
    fn plan(
        &mut self,
        ctx: &Ctx,
        tile: &Tile,
        etags: (i64, i64),
        now: Timestamp,
        due: bool,
    ) -> Arc<PlanResult> {
        let (tile_etag, calendar) = etags;
        if let Some(p) = self.0.get(&tile.id)
            && p.serves(tile_etag, calendar, now, due)
        {
            return Arc::clone(&p.plan);
        }
        let plan = Arc::new(plan_of(ctx, tile, now));
        self.0.insert(
            tile.id.clone(),
            Planned {
                tile: tile_etag,
                calendar,
                at: now,
                plan: Arc::clone(&plan),
            },
        );
        plan
    }

    /// Forgets the plans of tiles not in `ids` (no longer scheduled).
    fn keep_only(&mut self, ids: &HashSet<&str>) {
        self.0.retain(|id, _| ids.contains(id.as_str()));
    }
}

/// A scheduled tile's launch plan from `now`.
fn plan_of(ctx: &Ctx, tile: &Tile, now: Timestamp) -> PlanResult {
    match launch::scheduled_plan(ctx, tile, now) {
        Ok(p) => p.map_err(|i| Box::new(PlanFailure::Late(i))),
        Err(e) => {
            // No plan at all (every apply blacked out, no region...): the
            // miss is certain.
            tracing::warn!(tile = %tile.id, error = %e, "cannot plan the scheduled launch");
            Err(Box::new(PlanFailure::None(e.to_string())))
        }
    }
}

/// Runs the scheduler whenever this replica owns it, until `shutdown`.
pub async fn run(ctx: Ctx, settings: Settings, shutdown: Shutdown) {
    if !settings.enabled {
        tracing::info!("the GA scheduler is off (--ga-scheduler false)");
        shutdown.requested().await;
        return;
    }
    let owner = OwnerLoop::new(
        &ctx.store,
        tilewave_store::keys::work::SCHEDULER,
        &ctx.holder,
        ctx.ttl,
    );
    owner
        .run(&shutdown, |owned| {
            let ctx = ctx.clone();
            async move { work(ctx, settings, owned).await }
        })
        .await;
}

/// The scheduler's work while this replica owns it.
async fn work(ctx: Ctx, settings: Settings, owned: Owned) -> tilewave_store::Result<()> {
    tracing::info!(holder = %ctx.holder, "GA scheduler running");
    let mut tiles = ctx.tiles.revision_watch();
    let mut rollouts = ctx.rollouts.revision_watch();
    let mut calendar = ctx.calendar.revision_watch();
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut plans = Plans::default();
    loop {
        let next = match pass(&ctx, &settings, &owned.token(), &mut seen, &mut plans).await {
            Ok(next) => next,
            Err(e) => {
                tracing::warn!(error = %e, "GA scheduler pass failed; trying again");
                None
            }
        };
        let clock = ctx.clock.clone();
        let due = async move {
            match next {
                Some(t) => clock.sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        let changed = tokio::select! {
            () = owned.stopping() => return Ok(()),
            _ = tiles.changed() => true,
            _ = rollouts.changed() => true,
            _ = calendar.changed() => true,
            () = due => false,
            () = tokio::time::sleep(IDLE_PASS) => false,
        };
        if changed {
            // Changes come in bursts (every step of every running
            // roll-out is one): one pass for a burst, not one per change.
            tokio::select! {
                () = owned.stopping() => return Ok(()),
                () = tokio::time::sleep(crate::model::CHANGE_DEBOUNCE) => {}
            }
            tiles.borrow_and_update();
            rollouts.borrow_and_update();
            calendar.borrow_and_update();
        }
    }
}

/// One look at every scheduled tile. Returns the next domain moment a
/// start falls due.
async fn pass(
    ctx: &Ctx,
    settings: &Settings,
    token: &FencingToken,
    seen: &mut HashMap<String, String>,
    plans: &mut Plans,
) -> Result<Option<Timestamp>> {
    let now = ctx.clock.now();
    let calendar = ctx.calendar.get(&ctx.keys().calendar()).map_or(0, |c| c.etag);
    // The holds and blocked records matter only to a launch that is due:
    // read once a pass finds one (a pass runs on every burst of changes,
    // and most find none).
    let mut due: Option<launch::Records> = None;
    let mut next: Option<Timestamp> = None;
    // The revisions with a launch roll-out (any state: after an abort a
    // person decides), by tile, in one look at the roll-outs: a look per
    // scheduled tile made a pass quadratic (1,000 scheduled tiles and as
    // many roll-outs in issue 18's throughput run).
    let mut launched: HashMap<String, Vec<i64>> = HashMap::new();
    for (tile, revision) in ctx
        .rollouts
        .scan(|r| launch::is_launch(&r.value).then(|| (r.value.tile_id.clone(), r.value.revision)))
    {
        launched.entry(tile).or_default().push(revision);
    }
    // Only the scheduled tiles still to launch are copied out of the cache.
    let scheduled = ctx.tiles.scan(|t| {
        let tile = &t.value;
        (!tile.self_test
            && tile.state() == TileState::Scheduled
            && !launched
                .get(tile.id.as_str())
                .is_some_and(|revisions| revisions.contains(&tile.revision)))
        .then(|| (t.etag, tile.clone()))
    });
    let ids: HashSet<&str> = scheduled.iter().map(|(_, t)| t.id.as_str()).collect();
    plans.keep_only(&ids);
    for (etag, tile) in &scheduled {
        let Some(ga) = launch::ga_of(tile) else { continue };
        let start_at = ga.checked_sub(LAUNCH_LEAD).unwrap_or(ga);
        let plan = plans.plan(ctx, tile, (*etag, calendar), now, now >= start_at);
        let plan = plan.as_ref();
        watch_deadline(ctx, settings, token, tile, ga, plan, now).await;
        if now < start_at {
            next = Some(next.map_or(start_at, |n| n.min(start_at)));
            continue;
        }
        let due = match &mut due {
            Some(d) => d,
            None => due.insert(launch::Records::read(ctx).await?),
        };
        let (holds, blocked) = (&due.holds, &due.blocked);
        let reason = if let Some(h) = holds.get(&tile.id) {
            Some(format!("held by {}: {}", h.by, h.reason))
        } else if ctx.frozen() {
            Some("the global freeze is active: the launch starts when it is lifted".to_owned())
        } else if let Err(f) = &plan {
            Some(match f.as_ref() {
                PlanFailure::Late(i) => format!(
                    "the plan cannot fit: it ends {} after the deadline {}",
                    format_duration(i.late_by),
                    format_instant(i.plan.deadline)
                ),
                PlanFailure::None(e) => format!("no plan: {e}"),
            })
        } else if let Ok(p) = &plan {
            let planned: Vec<String> = p.regions.iter().map(|r| r.region.clone()).collect();
            let mut reason = None;
            if settings.preflight_credentials {
                reason = credential_gap(ctx, &tile.id, &planned).await?;
            }
            if reason.is_none() && settings.preflight_oncall {
                reason = oncall_gap(ctx, now, ga).await?;
            }
            reason
        } else {
            None
        };
        let outcome = match reason {
            Some(r) => Err(r),
            None => start(ctx, token, tile).await,
        };
        let current = blocked.get(&tile.id);
        match outcome {
            Ok(id) => {
                tracing::info!(tile = %tile.id, rollout = %id, "GA scheduler started the launch roll-out");
                seen.remove(&tile.id);
                if let Some(b) = current {
                    let change = Change::new().delete(b.key.clone(), b.etag).fence(token);
                    if let Err(e) = ctx.store.commit(change, &ctx.actor).await {
                        tracing::debug!(tile = %tile.id, error = %e, "could not clear launch-blocked");
                    }
                }
            }
            Err(reason) => {
                let unchanged =
                    current.is_some_and(|b| b.value.reason == reason && b.value.revision == tile.revision);
                if unchanged || seen.get(&tile.id) == Some(&reason) {
                    continue;
                }
                let recorded = record_blocked(
                    ctx,
                    token,
                    tile,
                    current,
                    &reason,
                    now,
                    holds.contains_key(&tile.id),
                )
                .await;
                if recorded {
                    seen.insert(tile.id.clone(), reason);
                }
            }
        }
    }
    Ok(next)
}

/// Starts a due launch: the pre-flight's agent check, then the roll-out,
/// as StartRollout would (fenced). The refusal is the reason it did not.
async fn start(ctx: &Ctx, token: &FencingToken, tile: &Tile) -> std::result::Result<String, String> {
    let spec = RolloutSpec {
        tile_id: tile.id.clone(),
        kind: RolloutKind::Launch as i32,
        ..Default::default()
    };
    let span = tracing::info_span!("scheduler.start", tile = %tile.id);
    let origin = {
        let _g = span.enter();
        tilewave_telemetry::current_origin()
    };
    let rollouts = Rollouts::new(ctx.clone());
    match rollouts
        .start_fenced(
            &Actor::system("scheduler"),
            origin,
            spec,
            Preflight::Agents,
            token,
        )
        .instrument(span)
        .await
    {
        Ok(r) => Ok(r.id),
        Err(Error::FailedPrecondition(m)) | Err(Error::Invalid { message: m, .. }) => {
            Err(format!("pre-flight: {m}"))
        }
        Err(e) => Err(format!("could not start: {e}")),
    }
}

/// Why the tile's partner credential is not ready for a launch over
/// `planned` (`core::rotation::preflight`), from the credentials service's
/// stored versions and rotations; `None` when it is.
async fn credential_gap(ctx: &Ctx, tile: &str, planned: &[String]) -> Result<Option<String>> {
    use tilewave_core::rotation::preflight::{self, CredentialFacts};
    use tilewave_proto::credentials::v1::{
        CredentialKind, CredentialStage, CredentialVersions, RegionRotationState, Rotation, RotationState,
    };
    let kind = CredentialKind::PartnerBasicAuth;
    let kind_name = "partner-basic-auth";
    let versions = ctx
        .store
        .get::<CredentialVersions>(&ctx.keys().credential_versions(tile, kind_name))
        .await?
        .map(|v| v.value.versions)
        .unwrap_or_default();
    let version_in = |stage: CredentialStage| {
        versions
            .iter()
            .filter(|v| v.stage() == stage)
            .map(|v| u64::try_from(v.version).unwrap_or(0))
            .max()
    };
    let mut facts = CredentialFacts {
        current: version_in(CredentialStage::Current),
        pending: version_in(CredentialStage::Pending),
        ..CredentialFacts::default()
    };
    let rotations = ctx
        .store
        .list::<Rotation>(&ctx.keys().credential_rotations())
        .await?
        .items;
    for r in rotations.iter().map(|r| &r.value) {
        if r.tile_id != tile || r.kind() != kind {
            continue;
        }
        let to = u64::try_from(r.to_version).unwrap_or(0);
        match r.state() {
            RotationState::Distributing | RotationState::Promoting => {
                facts.rotating |= Some(to) == facts.pending;
            }
            RotationState::Promoted | RotationState::Completed if Some(to) == facts.current => {
                facts.verified.extend(
                    r.regions
                        .iter()
                        .filter(|g| g.state() == RegionRotationState::Verified)
                        .map(|g| g.region.clone()),
                );
            }
            _ => {}
        }
    }
    Ok(preflight::check(tile, &facts, planned)
        .err()
        .map(|gap| format!("pre-flight: {gap}")))
}

/// Why an incident during the launch window `[from, to)` would page
/// nobody (`core::escalation::preflight`), from the escalation service's
/// stored policies, people and schedules; `None` when it would page
/// someone. A stored definition this service cannot read counts as absent.
async fn oncall_gap(ctx: &Ctx, from: Timestamp, to: Timestamp) -> Result<Option<String>> {
    use tilewave_core::escalation::{Directory, preflight};
    use tilewave_proto::escalation::v1 as esc;
    use tilewave_service::escalation as wire;
    let keys = ctx.keys();
    let policies: Vec<_> = ctx
        .store
        .list::<esc::Policy>(&keys.escalation_policies())
        .await?
        .items
        .iter()
        .filter_map(|p| wire::policy(&p.value).ok())
        .collect();
    let mut dir = Directory::default();
    for p in ctx
        .store
        .list::<esc::Person>(&keys.escalation_people())
        .await?
        .items
    {
        if let Ok(person) = wire::person(&p.value) {
            dir.people.insert(person.id.clone(), person);
        }
    }
    for s in ctx
        .store
        .list::<esc::Schedule>(&keys.escalation_schedules())
        .await?
        .items
    {
        if let Ok(schedule) = wire::schedule(&s.value) {
            dir.schedules.insert(schedule.name.clone(), schedule);
        }
    }
    Ok(preflight::launch_coverage(&policies, &dir, from, to)
        .err()
        .map(|gap| format!("pre-flight: {gap}")))
}

/// Stores why a due launch did not start and raises PREFLIGHT_FAILED (not
/// for a hold: that was a person's decision); whether it was stored (a
/// failed write is tried again on the next pass). The event's id is
/// derived from the tile, revision, moment and reason, so two reasons at
/// one moment are two events.
async fn record_blocked(
    ctx: &Ctx,
    token: &FencingToken,
    tile: &Tile,
    current: Option<&tilewave_store::Versioned<LaunchBlocked>>,
    reason: &str,
    now: Timestamp,
    held: bool,
) -> bool {
    let record = LaunchBlocked {
        tile_id: tile.id.clone(),
        revision: tile.revision,
        reason: reason.to_owned(),
        at: Some(to_proto_timestamp(now)),
    };
    let key = ctx.keys().launch_blocked(&tile.id);
    let mut change = match current {
        Some(c) => Change::new().update(key, &record, c.etag),
        None => Change::new().create(key, &record),
    }
    .fence(token);
    if !held {
        let e = event(
            tile,
            EventKind::PreflightFailed,
            Severity::Sev2,
            format!(
                "the launch roll-out of {} (GA {}) did not start: {reason}",
                tile.id,
                launch::ga_of(tile).map_or_else(|| "?".into(), format_instant)
            ),
            format!(
                "preflight-{}-r{}-{}-{:016x}",
                tile.id,
                tile.revision,
                now.as_millisecond(),
                {
                    use std::hash::{Hash as _, Hasher as _};
                    let mut h = std::hash::DefaultHasher::new();
                    reason.hash(&mut h);
                    h.finish()
                }
            ),
            now,
            HashMap::new(),
        );
        change = change.create(ctx.keys().event(&e.id), &e);
    }
    match ctx.store.commit(change, &Actor::system("scheduler")).await {
        Ok(_) => {
            tracing::warn!(tile = %tile.id, %reason, "launch not started");
            true
        }
        Err(e) => {
            tracing::info!(tile = %tile.id, error = %e, "could not record the blocked launch; trying again");
            false
        }
    }
}

/// Raises DEADLINE_AT_RISK for a scheduled launch whose planned slack is
/// under the margin (once per tile, revision and GA moment), and again as
/// certain when no suggestion of the planner fits either.
async fn watch_deadline(
    ctx: &Ctx,
    settings: &Settings,
    token: &FencingToken,
    tile: &Tile,
    ga: Timestamp,
    plan: &std::result::Result<planner::Plan, Box<PlanFailure>>,
    now: Timestamp,
) {
    let deadline = ga.checked_sub(PLAN_MARGIN).unwrap_or(ga);
    let (slack, fixes, certain) = match plan {
        Ok(p) => {
            let slack = p.planned_end.duration_until(deadline);
            if slack >= settings.at_risk_margin {
                return;
            }
            (slack, Vec::new(), false)
        }
        Err(f) => match f.as_ref() {
            PlanFailure::Late(i) => {
                let p = spec::late_problem(i.late_by, i.binding, &i.suggestions, false);
                // Certain when nothing but a later GA would fit.
                let certain = !p.suggestions.iter().any(|s| {
                    !matches!(
                        s.change,
                        Some(tilewave_proto::rollout::v1::plan_suggestion::Change::GaTime(_))
                    )
                });
                (
                    -i.late_by,
                    p.suggestions.iter().map(|s| s.message.clone()).collect(),
                    certain,
                )
            }
            PlanFailure::None(e) => (SignedDuration::MIN, vec![format!("no plan: {e}")], true),
        },
    };
    let ga_s = ga.as_second();
    let mut changes = Vec::new();
    let mut attributes = HashMap::new();
    if slack != SignedDuration::MIN {
        attributes.insert("slack".to_owned(), format_duration(slack));
    }
    attributes.insert("ga".to_owned(), format_instant(ga));
    for (i, f) in fixes.iter().enumerate() {
        attributes.insert(format!("fix_{}", i + 1), f.clone());
    }
    let late = if slack == SignedDuration::MIN {
        "has no plan at all".to_owned()
    } else if slack < SignedDuration::ZERO {
        format!(
            "would end {} after the deadline {}",
            format_duration(-slack),
            format_instant(deadline)
        )
    } else {
        format!(
            "would end only {} before the deadline {} (margin {})",
            format_duration(slack),
            format_instant(deadline),
            format_duration(settings.at_risk_margin)
        )
    };
    let fix_text = if fixes.is_empty() {
        String::new()
    } else {
        format!("; {}", fixes.join("; "))
    };
    changes.push(event(
        tile,
        EventKind::DeadlineAtRisk,
        Severity::Sev2,
        format!(
            "the launch of {} (GA {}) is at risk: its roll-out, starting {}, {late}{fix_text}",
            tile.id,
            format_instant(ga),
            format_instant(ga.checked_sub(LAUNCH_LEAD).unwrap_or(ga).max(now))
        ),
        format!("at-risk-{}-r{}-{ga_s}", tile.id, tile.revision),
        now,
        attributes.clone(),
    ));
    if certain {
        let mut a = attributes;
        a.insert("certain".to_owned(), "true".to_owned());
        changes.push(event(
            tile,
            EventKind::DeadlineAtRisk,
            Severity::Sev1,
            format!(
                "the launch of {} (GA {}) will miss its deadline: no bake or concurrency fits; move the GA date (`tilewave ga move {}`) or remove a blackout",
                tile.id,
                format_instant(ga),
                tile.id
            ),
            format!("at-risk-{}-r{}-{ga_s}-certain", tile.id, tile.revision),
            now,
            a,
        ));
    }
    for e in changes {
        let key = ctx.keys().event(&e.id);
        let change = Change::new().create(key, &e).fence(token);
        match ctx.store.commit(change, &Actor::system("scheduler")).await {
            Ok(_) => tracing::warn!(tile = %tile.id, event = %e.id, "{}", e.message),
            Err(tilewave_store::Error::AlreadyExists { .. }) => {}
            Err(err) => tracing::debug!(tile = %tile.id, error = %err, "could not raise the at-risk event"),
        }
    }
}

/// An event about a tile's launch.
fn event(
    tile: &Tile,
    kind: EventKind,
    severity: Severity,
    message: String,
    id: String,
    now: Timestamp,
    attributes: HashMap<String, String>,
) -> Event {
    Event {
        id,
        kind: kind as i32,
        severity: severity as i32,
        at: Some(to_proto_timestamp(now)),
        tile_id: tile.id.clone(),
        rollout_id: String::new(),
        region: String::new(),
        message,
        origin: Some(SpanOrigin::default()),
        attributes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_plan_serves_only_an_unchanged_tile_and_calendar_for_a_minute_and_never_a_due_launch() {
        let at: Timestamp = "2026-12-01T09:00:00Z".parse().unwrap();
        let kept = Planned {
            tile: 7,
            calendar: 3,
            at,
            plan: Arc::new(Err(Box::new(PlanFailure::None("test".into())))),
        };
        let secs = |n: i64| at + SignedDuration::from_secs(n);
        let table = [
            // (tile etag, calendar etag, now, due) -> serves
            ((7, 3, secs(0), false), true),
            ((7, 3, secs(59), false), true),
            ((7, 3, secs(60), false), false),
            ((7, 3, secs(-1), false), false),
            ((8, 3, secs(1), false), false),
            ((7, 4, secs(1), false), false),
            ((7, 3, secs(1), true), false),
        ];
        for ((tile, calendar, now, due), want) in table {
            assert_eq!(
                kept.serves(tile, calendar, now, due),
                want,
                "tile {tile}, calendar {calendar}, {now}, due {due}"
            );
        }
    }
}
