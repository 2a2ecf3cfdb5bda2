//! Roll-out state in etcd and what every part of the service shares: the
//! context ([`Ctx`]), reading a roll-out with its steps, re-planning it from
//! now, and events.
//!
//! Layout: `rollouts/<id>` (a `Rollout` without its steps),
//! `rollouts/<id>/steps/<region>` (one `RolloutStep` per region),
//! `events/<id>` (common `Event`s), `freeze`, `rollout-active/<tile>`,
//! `owners/rollout-<id>` (the roll-out's owner), `owners/timers`,
//! `owners/lifecycle`, `owners/reconciler`, and the GA timers under
//! `timers/ga/`: every key is built by `tilewave_store::Keys`, every owner
//! work name in `tilewave_store::keys::work`.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tilewave_core::planner::{self, Progress};
use tilewave_core::regions::RegionCatalog;
use tilewave_core::rollout::{Deadline, State as RolloutState_};
use tilewave_proto::ShortName;
use tilewave_proto::common::v1::{Event, EventKind, PartnerConfig, Severity, SpanOrigin, TileState};
use tilewave_proto::registry::v1::Tile;
use tilewave_proto::rollout::v1::{Freeze, Rollout, RolloutKind, RolloutSpec, RolloutState, RolloutStep};
use tilewave_store::clock::{from_proto_timestamp, to_proto_timestamp};
use tilewave_store::{Actor, Change, Clock, Keys, Store, Versioned, WatchCache};

use crate::clients::{Agents, Registry};
use crate::convert;
use crate::error::{Error, Result};
use crate::spec::{self, Resolved};

pub use tilewave_core::rollout::HEALTH_CHECK_EVERY;

/// Everything the RPCs, the controller and the loops share.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// etcd, with the domain clock.
    pub store: Store,
    /// Domain time.
    pub clock: Arc<dyn Clock>,
    /// The registry.
    pub registry: Registry,
    /// The region agents.
    pub agents: Agents,
    /// The regions that exist.
    pub catalog: Arc<RegionCatalog>,
    /// Every roll-out (not its steps), watch-backed.
    pub rollouts: Arc<WatchCache<Rollout>>,
    /// The global freeze, watch-backed.
    pub freeze: Arc<WatchCache<Freeze>>,
    /// Every tile (`tiles/<id>`, not their revisions), watch-backed and
    /// read-only: the registry is the only writer of tiles.
    pub tiles: Arc<WatchCache<Tile>>,
    /// The launch calendar (`calendar`), watch-backed: its blackouts are
    /// every plan's global blackouts, its slots the GA scheduler's.
    pub calendar: Arc<WatchCache<tilewave_proto::rollout::v1::LaunchCalendar>>,
    /// This replica's name in owner records.
    pub holder: String,
    /// Lease TTL of owned work.
    pub ttl: Duration,
    /// The lease every roll-out this replica owns is held on (one
    /// keep-alive for all of them).
    pub lease: tilewave_store::ReplicaLease,
    /// The actor of automatic changes.
    pub actor: Actor,
    /// How calls to an unreachable agent are retried before its step fails.
    pub unreachable: Unreachable,
    /// What this replica's owners last wrote of the roll-outs they drive.
    pub written: Arc<Written>,
    /// Revisions' configurations, read once from the registry.
    pub configs: Arc<Configs>,
    /// Roll-outs being created here, handed to this replica's controller.
    pub starts: Starts,
    /// The steps of each roll-out as the desired state last read them.
    pub steps_seen: Arc<crate::reconcile::StepsSeen>,
}

/// Roll-outs this replica is creating, announced to its controller before
/// the creating transaction: the controller claims the owner key while
/// the roll-out is being written (the claim's transaction alongside the
/// creating one, not after it), and its owner makes the first decision as
/// soon as the creation is known here, not after the watch has brought
/// the new roll-out to the controller (issue 18's overhead measure: the
/// two were about 3 ms of a 40 ms roll-out).
///
/// Only a speed-up: an announcement the controller never sees, or sees
/// after its scan of the cache found the roll-out, changes nothing (the
/// controller's own claim takes the roll-out as before), and a claim made
/// for a creation that failed is released at once.
#[derive(Debug, Clone)]
pub struct Starts(tokio::sync::mpsc::UnboundedSender<Start>);

/// One roll-out being created, as the controller receives it.
#[derive(Debug)]
pub struct Start {
    /// The roll-out's id.
    pub id: String,
    /// Where the start came from (the owner's span links to it).
    pub origin: SpanOrigin,
    /// `Some(true)` once the roll-out is created and kept in
    /// [`Written`]; `Some(false)`, or the sender gone, when it was not.
    pub created: tokio::sync::watch::Receiver<Option<bool>>,
}

/// The creating side of a [`Start`]: dropped without
/// [`Announced::created`], the creation counts as failed.
#[derive(Debug)]
pub struct Announced(tokio::sync::watch::Sender<Option<bool>>);

impl Announced {
    /// The roll-out is created (and kept in [`Written`]).
    pub fn created(self) {
        self.0.send_replace(Some(true));
    }
}

impl Starts {
    /// The announcing side, and the receiving end for the controller
    /// ([`crate::controller::run`]); once that end is gone (the controller
    /// stopped), nothing is announced.
    pub fn channel() -> (Self, tokio::sync::mpsc::UnboundedReceiver<Start>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (Self(tx), rx)
    }

    /// Announces roll-out `id` before its creating transaction; `None`
    /// when no controller listens here.
    pub fn announce(&self, id: &str, origin: SpanOrigin) -> Option<Announced> {
        let (tx, created) = tokio::sync::watch::channel(None);
        let start = Start {
            id: id.to_owned(),
            origin,
            created,
        };
        self.0.send(start).ok().map(|()| Announced(tx))
    }
}

/// What an owner last committed of each roll-out it drives: the next
/// decision starts from it instead of reading etcd again (the owner wrote
/// it; the transaction compared every etag it read). A change made by
/// anyone else since then makes the owner's next write conflict, and the
/// owner reads etcd again; an owner that stops waiting or stops driving
/// forgets its entry. Only the task driving a roll-out touches its entry.
#[derive(Debug, Default)]
pub struct Written(std::sync::Mutex<std::collections::HashMap<String, Loaded>>);

impl Written {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Loaded>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps what was just committed of roll-out `loaded`.
    pub fn put(&self, loaded: Loaded) {
        self.lock().insert(loaded.rollout.value.id.clone(), loaded);
    }

    /// Keeps a roll-out just created here, unless its owner already keeps
    /// a newer state of it (an owner on this replica may have claimed,
    /// read and written it before the creating call got its answer). If
    /// another replica owns it, the controller forgets it.
    pub fn put_created(&self, loaded: Loaded) {
        self.lock()
            .entry(loaded.rollout.value.id.clone())
            .or_insert(loaded);
    }

    /// Takes what was last committed of roll-out `id`, if kept.
    pub fn take(&self, id: &str) -> Option<Loaded> {
        self.lock().remove(id)
    }

    /// Forgets roll-out `id`: its next decision reads etcd.
    pub fn forget(&self, id: &str) {
        self.lock().remove(id);
    }
}

/// The configuration of each (tile, revision) the owners applied: a
/// revision's document never changes, so the registry is asked once.
/// Bounded: emptied when it holds [`Configs::MAX`] entries.
#[derive(Debug, Default)]
pub struct Configs(std::sync::Mutex<std::collections::HashMap<(String, i64), PartnerConfig>>);

impl Configs {
    /// The most configurations kept.
    pub const MAX: usize = 1024;

    /// The configuration of `tile` at `revision`, if kept.
    pub fn get(&self, tile: &str, revision: i64) -> Option<PartnerConfig> {
        let map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(&(tile.to_owned(), revision)).cloned()
    }

    /// Keeps the configuration of `tile` at `revision`.
    pub fn put(&self, tile: &str, revision: i64, config: PartnerConfig) {
        let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= Self::MAX {
            map.clear();
        }
        map.insert((tile.to_owned(), revision), config);
    }
}

/// How a step whose agent cannot be reached (UNAVAILABLE,
/// DEADLINE_EXCEEDED, no agent registered: a restart, a partition, an
/// expired registration) is retried as transient: after `first`, doubling
/// up to `cap` (real time: a network does not heal faster on a fast virtual
/// clock), until `attempts` calls in a row failed so; then the step fails
/// as any other. The count lives in the step (`unreachable_attempts`), so
/// the bound holds across a change of owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unreachable {
    /// Calls in a row that may find the agent unreachable.
    pub attempts: u32,
    /// The first wait.
    pub first: Duration,
    /// The longest wait.
    pub cap: Duration,
}

impl Unreachable {
    /// The wait before retrying after the `n`th unreachable call (1-based).
    pub fn delay(&self, n: u32) -> Duration {
        let doubled = self.first.saturating_mul(1u32 << n.saturating_sub(1).min(16));
        doubled.min(self.cap)
    }

    /// The real time the retries of one outage take at most (the sum of
    /// the waits).
    pub fn bound(&self) -> Duration {
        (1..self.attempts).map(|n| self.delay(n)).sum()
    }
}

impl Ctx {
    /// The key builder.
    pub fn keys(&self) -> &Keys {
        self.store.keys()
    }

    /// Whether the global freeze is active now.
    pub fn frozen(&self) -> bool {
        let key = self.keys().freeze();
        self.freeze.get(&key).is_some_and(|f| {
            f.value.active
                && f.value
                    .until
                    .as_ref()
                    .and_then(|u| from_proto_timestamp(u).ok())
                    .is_none_or(|u| self.clock.now() < u)
        })
    }

    /// The stored launch calendar in the core's terms; `None` when none is
    /// stored (or the stored one cannot be read, which is logged).
    pub fn launch_calendar(&self) -> Option<tilewave_core::calendar::LaunchCalendar> {
        let stored = self.calendar.get(&self.keys().calendar())?;
        match convert::calendar(&stored.value, "calendar.") {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(error = %e, "the stored launch calendar cannot be read");
                None
            }
        }
    }

    /// Adds the launch calendar's blackouts to a plan's global blackouts:
    /// no apply starts inside a holiday or a freeze of the calendar.
    pub fn with_calendar_blackouts(&self, input: &mut planner::PlanInput) {
        if let Some(cal) = self.launch_calendar() {
            input
                .blackouts
                .global
                .extend(cal.blackouts.iter().map(|b| planner::Period::new(b.start, b.end)));
        }
    }
}

pub use crate::convert::is_terminal;

/// A state's short name, for messages ("RUNNING").
pub fn state_name(state: i32) -> &'static str {
    RolloutState::short_name_of(state)
}

/// `rollout-active/<tile>`: present while a roll-out of the tile is not
/// finished, holding that roll-out (id, tile, revision). Created in the
/// StartRollout transaction (and when a rollback revives a finished
/// roll-out), deleted in the transaction that finishes it: at most one
/// roll-out of a tile is active, whatever runs concurrently.
///
/// This is the value of that key (`Keys::rollout_active`).
pub fn active_marker(r: &Rollout) -> Rollout {
    Rollout {
        id: r.id.clone(),
        tile_id: r.tile_id.clone(),
        revision: r.revision,
        ..Default::default()
    }
}

/// Keeps the active marker of `r`'s tile in step with a state change from
/// `before` to `r.state`.
pub fn with_active_marker(keys: &Keys, change: Change, before: i32, r: &Rollout) -> Change {
    match (is_terminal(before), is_terminal(r.state)) {
        (false, true) => change.delete_unchecked(keys.rollout_active(&r.tile_id)),
        (true, false) => change.create(keys.rollout_active(&r.tile_id), &active_marker(r)),
        _ => change,
    }
}

/// Adds the changed steps of a roll-out to `change`, which must compare
/// and write the roll-out's own key (`rollouts/<id>`) with the etag it was
/// read at. The steps' own etags are not compared: every write of a step
/// key (its creation, the owner's writes, the commands) is made in a
/// transaction that also writes the roll-out's key, so a step written since
/// the read has moved the roll-out's key too, and that one comparison
/// refuses the write. One comparison instead of one per step: a wave's
/// write changes up to twice the wave's regions (`tilewave-bench overhead`
/// times a 49-step write at 12 to 14 % more with the comparisons). The
/// reconciler's [`crate::reconcile::StepsSeen`] relies on the same rule: an
/// unchanged roll-out etag means unchanged steps.
pub fn with_steps<'a>(
    change: Change,
    steps: impl IntoIterator<Item = (&'a Versioned<RolloutStep>, &'a RolloutStep)>,
) -> Change {
    steps
        .into_iter()
        .fold(change, |c, (old, new)| c.put_unchecked(old.key.clone(), new))
}

/// A roll-out and its steps as read from etcd.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The roll-out key.
    pub rollout: Versioned<Rollout>,
    /// Its steps, in planned order.
    pub steps: Vec<Versioned<RolloutStep>>,
}

impl Loaded {
    /// The etcd revision of the newest change in this state (the roll-out or
    /// any of its steps).
    pub fn revision(&self) -> i64 {
        self.steps
            .iter()
            .map(|s| s.etag)
            .fold(self.rollout.etag, i64::max)
    }

    /// The roll-out as the API returns it, steps included.
    pub fn assemble(&self) -> Rollout {
        let mut r = self.rollout.value.clone();
        r.etag = self.rollout.etag;
        r.steps = self.steps.iter().map(|s| s.value.clone()).collect();
        r
    }

    /// The step of `region`.
    pub fn step(&self, region: &str) -> Option<&Versioned<RolloutStep>> {
        self.steps.iter().find(|s| s.value.region == region)
    }
}

/// How long a loop that follows the caches (the GA scheduler, the
/// lifecycle loop) waits after a change for the changes that come with it,
/// so that a burst of changes makes one pass (real time).
pub const CHANGE_DEBOUNCE: std::time::Duration = std::time::Duration::from_millis(100);

/// No roll-out id is longer (a tile id, its revision and a counter): a
/// longer one is not looked up in etcd, whose request limit it may break.
const MAX_ROLLOUT_ID_LEN: usize = 256;

/// The NOT_FOUND of a roll-out that does not exist, or that the caller may
/// not see (another partner's tile's): the same answer, naming the id
/// (bounded).
pub fn no_rollout(id: &str) -> Error {
    Error::NotFound(format!("no roll-out {}", tilewave_core::quote::quoted(id)))
}

/// Reads a roll-out and its steps; NOT_FOUND naming the id (bounded).
pub async fn load(store: &Store, id: &str) -> Result<Loaded> {
    let not_found = || no_rollout(id);
    if id.len() > MAX_ROLLOUT_ID_LEN {
        return Err(not_found());
    }
    // One read at one revision: the owner writes a step and the roll-out in
    // one transaction, and two reads could see one without the other.
    let (rollout, steps) = store
        .get_with_children::<Rollout, RolloutStep>(&store.keys().rollout(id), &store.keys().rollout_steps(id))
        .await?
        .ok_or_else(not_found)?;
    let mut steps = steps.items;
    sort_steps(&mut steps);
    Ok(Loaded { rollout, steps })
}

/// Reads a roll-out and its steps at one revision, to follow them with
/// one watch ([`tilewave_store::Family`]); NOT_FOUND naming the id (bounded).
pub async fn follow(store: &Store, id: &str) -> Result<tilewave_store::Family<Rollout, RolloutStep>> {
    if id.len() > MAX_ROLLOUT_ID_LEN {
        return Err(no_rollout(id));
    }
    store
        .follow_with_children::<Rollout, RolloutStep>(
            &store.keys().rollout(id),
            &store.keys().rollout_steps(id),
        )
        .await?
        .ok_or_else(|| no_rollout(id))
}

impl Loaded {
    /// The state a followed roll-out is at, its steps in planned order.
    pub fn of(family: &tilewave_store::Family<Rollout, RolloutStep>) -> Self {
        let mut steps: Vec<_> = family.children().cloned().collect();
        sort_steps(&mut steps);
        Self {
            rollout: family.parent().clone(),
            steps,
        }
    }
}

/// Steps in planned order: by wave, planned start, region.
pub fn sort_steps(steps: &mut [Versioned<RolloutStep>]) {
    steps.sort_by_key(|s| {
        (
            s.value.wave,
            s.value.planned_apply_start.as_ref().map(|t| (t.seconds, t.nanos)),
            s.value.region.clone(),
        )
    });
}

/// Where the planner should think each region stands.
pub fn progress(rollout: &Rollout, steps: &[RolloutStep]) -> Progress {
    let paused_since = (convert::state(rollout.state) == Some(RolloutState_::Paused))
        .then(|| rollout.plan.as_ref().and_then(|p| p.computed_at.as_ref()))
        .flatten()
        .and_then(|t| from_proto_timestamp(t).ok());
    tilewave_core::rollout::progress(&convert::steps(steps), paused_since)
}

/// The planner input of a stored roll-out, rebuilt from its spec (whose
/// region list was made explicit at start).
pub fn resolved_of(ctx: &Ctx, rollout: &Rollout, now: Timestamp) -> Result<Resolved> {
    let unset = RolloutSpec::default();
    let spec = rollout.spec.as_ref().unwrap_or(&unset);
    let mut clouds: Vec<i32> = spec
        .regions
        .iter()
        .map(|r| spec::region_cloud(&ctx.catalog, r))
        .collect();
    clouds.sort_unstable();
    clouds.dedup();
    let kind = RolloutKind::try_from(rollout.kind).unwrap_or(RolloutKind::Launch);
    let tile = Tile {
        id: rollout.tile_id.clone(),
        revision: rollout.revision,
        state: if kind == RolloutKind::Maintenance {
            TileState::Ga
        } else {
            TileState::Scheduled
        }
        .into(),
        config: Some(PartnerConfig {
            supported_clouds: clouds,
            ..Default::default()
        }),
        ga_time: rollout.plan.as_ref().and_then(|p| p.ga_time),
        ..Default::default()
    };
    let mut resolved = spec::resolve(spec, &tile, &ctx.catalog, now, &[])?;
    ctx.with_calendar_blackouts(&mut resolved.input);
    Ok(resolved)
}

/// What a re-plan changed that needs an event.
#[derive(Debug, Clone, Default)]
pub struct Replanned {
    /// The ETA just crossed the deadline: raise DEADLINE_AT_RISK.
    pub crossed: Option<Event>,
}

/// Re-plans `rollout` (with `steps`) from `now` and stores the result on
/// it: plan, ETA, at-risk amount, counts, current wave. Returns the
/// DEADLINE_AT_RISK event when the ETA has just passed the deadline.
pub fn replan_into(ctx: &Ctx, rollout: &mut Rollout, steps: &[RolloutStep], now: Timestamp) -> Replanned {
    rollout.regions_total = i32::try_from(steps.len()).unwrap_or(i32::MAX);
    let core_steps = convert::steps(steps);
    rollout.regions_verified = i32::try_from(
        core_steps
            .iter()
            .filter(|s| s.state == tilewave_core::rollout::StepState::Verified)
            .count(),
    )
    .unwrap_or(i32::MAX);
    rollout.current_wave = tilewave_core::rollout::current_wave(&core_steps).unwrap_or(rollout.wave_count);
    rollout.frozen = ctx.frozen();
    if !convert::state(rollout.state).is_some_and(|s| s.replans()) {
        return Replanned::default();
    }
    let resolved = match resolved_of(ctx, rollout, now) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(rollout = %rollout.id, error = %e, "cannot rebuild the plan input");
            return Replanned::default();
        }
    };
    let re = match planner::replan(&resolved.input, &progress(rollout, steps), now) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(rollout = %rollout.id, error = %e, "re-plan failed");
            return Replanned::default();
        }
    };
    let mut plan = spec::plan_to_proto(&re.plan, &resolved, now);
    let was_at_risk = rollout.at_risk_by.is_some();
    rollout.eta = Some(to_proto_timestamp(re.eta));
    rollout.deadline = plan.deadline;
    let mut out = Replanned::default();
    let verdict = tilewave_core::rollout::deadline(&re, resolved.has_deadline, was_at_risk);
    match (verdict, &re.at_risk) {
        (Deadline::AtRisk { late_by, crossed }, Some(risk)) => {
            let problem = spec::at_risk_problem(risk);
            plan.feasible = false;
            rollout.at_risk_by = Some(spec::proto_duration(late_by));
            if crossed {
                let mut attributes = std::collections::HashMap::new();
                attributes.insert("late_by".to_owned(), planner::format_duration(late_by));
                for (i, s) in problem.suggestions.iter().enumerate() {
                    attributes.insert(format!("fix_{}", i + 1), s.message.clone());
                }
                out.crossed = Some(event(
                    rollout,
                    EventKind::DeadlineAtRisk,
                    Severity::Sev2,
                    "",
                    format!(
                        "roll-out {} of {} is at risk: ETA {} is {} past the deadline; {}",
                        rollout.id,
                        rollout.tile_id,
                        re.eta,
                        planner::format_duration(late_by),
                        problem.message
                    ),
                    now,
                    attributes,
                ));
            }
            plan.problems.push(problem);
        }
        (Deadline::AtRisk { .. } | Deadline::OnPlan, _) => rollout.at_risk_by = None,
    }
    rollout.plan = Some(plan);
    out
}

/// A new event about a roll-out, with a unique id.
pub fn event(
    rollout: &Rollout,
    kind: EventKind,
    severity: Severity,
    region: &str,
    message: String,
    now: Timestamp,
    attributes: std::collections::HashMap<String, String>,
) -> Event {
    let tag = kind.short_name().to_ascii_lowercase();
    Event {
        id: format!(
            "{}-{tag}-{}-{:08x}",
            rollout.id,
            now.as_millisecond(),
            rand::random::<u32>()
        ),
        kind: kind as i32,
        severity: severity as i32,
        at: Some(to_proto_timestamp(now)),
        tile_id: rollout.tile_id.clone(),
        rollout_id: rollout.id.clone(),
        region: region.to_owned(),
        message,
        origin: rollout.origin.clone().or_else(|| Some(SpanOrigin::default())),
        attributes,
    }
}

/// Adds the creation of `events/<id>` to a change.
pub fn with_event(keys: &Keys, change: Change, e: &Event) -> Change {
    change.create(keys.event(&e.id), e)
}

#[cfg(test)]
mod unreachable_tests {
    use super::Unreachable;
    use std::time::Duration;

    #[test]
    fn waits_double_to_the_cap_and_the_bound_sums_them() {
        let u = Unreachable {
            attempts: 10,
            first: Duration::from_millis(500),
            cap: Duration::from_secs(5),
        };
        let waits: Vec<u128> = (1..=6).map(|n| u.delay(n).as_millis()).collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 5000, 5000]);
        // Nine waits between ten calls: 0.5 + 1 + 2 + 4 + 5 * 5.
        assert_eq!(u.bound(), Duration::from_millis(32_500));
        let one = Unreachable { attempts: 1, ..u };
        assert_eq!(one.bound(), Duration::ZERO, "one call: no retry");
        assert_eq!(u.delay(u32::MAX), Duration::from_secs(5), "no overflow");
    }
}
