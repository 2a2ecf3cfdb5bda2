//! The roll-out planner: a pure, deterministic function from a tile's
//! roll-out inputs (regions, waves, bakes, concurrency, blackouts, GA) to a
//! timed plan, with its slack against the deadline (docs/domain.md, "The
//! planner").
//!
//! - [`plan`] plans a roll-out from scratch. When it would end after the
//!   deadline it fails with [`PlanError::Infeasible`], which carries the plan,
//!   how late it is, which constraint binds and what would fit, each
//!   suggestion found by searching (re-planning), not estimated.
//! - [`replan`] plans the rest of a running (or paused) roll-out from `now`,
//!   so a service can say "at risk by 6h" the moment that becomes true.
//! - [`gantt::render`] draws a plan as text; `Display` on [`Plan`] gives the
//!   one-line summary the CLI prints.
//!
//! Nothing here reads the clock: `now` is an input.

mod blackout;
mod display;
pub mod gantt;
mod input;
mod replan;
mod resolve;
mod schedule;
mod search;

use jiff::{SignedDuration, Timestamp};

pub use blackout::{BLACKOUT_HORIZON, BlackoutWindow, Blackouts, Days, Period, Recurring, RegionBlackout};
pub use display::format_duration;
pub use input::{
    BakePolicy, DEFAULT_APPLY_TIME, DEFAULT_BAKE, DEFAULT_CONCURRENCY, DEFAULT_GA_MARGIN, DEFAULT_LEAD_TIME,
    DEFAULT_WAVE_GROWTH, PlanInput, RegionSelection, WaveShape,
};
pub use replan::{AtRisk, Progress, RegionState, Replan, replan};
pub use search::{GA_SEARCH_LIMIT, GA_SEARCH_STEP};

use crate::regions::Cloud;

/// When one region applies and bakes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionPlan {
    /// Region id.
    pub region: String,
    /// Wave number, from 1.
    pub wave: usize,
    /// The apply starts (never inside a blackout of the region or a global one).
    pub apply_start: Timestamp,
    /// The apply is done and the bake starts.
    pub apply_end: Timestamp,
    /// The region is verified.
    pub bake_end: Timestamp,
}

/// When one wave runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WavePlan {
    /// Wave number, from 1 (kept when re-planning, where done waves are left out).
    pub index: usize,
    /// Its region ids, in the order their applies start.
    pub regions: Vec<String>,
    /// Its first apply starts.
    pub start: Timestamp,
    /// Its last region is verified.
    pub end: Timestamp,
    /// Its bake.
    pub bake: SignedDuration,
    /// A person must Approve before the next wave. The plan counts the wait
    /// as zero time, so the real end is later by however long that takes.
    pub hold_after: bool,
}

/// Where the deadline came from, for explaining it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadlineSource {
    /// GA minus this margin.
    BeforeGa(SignedDuration),
    /// Given explicitly.
    Given,
}

/// A timed roll-out plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Every region with work left, in the order their applies start.
    pub regions: Vec<RegionPlan>,
    /// Every wave with work left, in order.
    pub waves: Vec<WavePlan>,
    /// The plan starts: `max(now, earliest start)`, or `now` when re-planning.
    pub start: Timestamp,
    /// The last wave is verified (holds counted as zero time).
    pub planned_end: Timestamp,
    /// The roll-out must be verified everywhere by then.
    pub deadline: Timestamp,
    /// How the deadline was derived.
    pub deadline_source: DeadlineSource,
    /// The GA moment, when known.
    pub ga: Option<Timestamp>,
    /// `deadline - planned_end`; negative means late.
    pub slack: SignedDuration,
    /// Wave 1 is the one-canary-per-cloud wave (default wave shape).
    pub canary_wave: bool,
}

impl Plan {
    /// Whether any wave waits for a manual approval (untimed).
    pub fn has_holds(&self) -> bool {
        self.waves.iter().any(|w| w.hold_after)
    }
}

/// Which constraint makes a plan late, checked in this order (each is a
/// what-if re-plan).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// The roll-out starts after its earliest start (`now` is later), and
    /// started on time it would fit: the time lost is what is missing.
    LateStart {
        /// `now - earliest start`.
        lost: SignedDuration,
    },
    /// Blackouts delay applies: without any blackout the plan would fit.
    Blackouts {
        /// How much later the plan ends because of blackouts.
        delay: SignedDuration,
    },
    /// Too few regions apply at once: with a whole wave applying at once
    /// (and no blackouts) it would fit.
    Concurrency,
    /// The earliest start holds the plan back: starting `now` it would fit.
    EarliestStart,
    /// The waves' bakes and applies in sequence alone, with unlimited
    /// concurrency and no blackouts, need more than the time to the deadline.
    Bake {
        /// Duration of that critical path.
        critical_path: SignedDuration,
        /// Time from the plan's start to the deadline.
        window: SignedDuration,
    },
}

/// What would make a late plan fit, each found by re-planning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Suggestions {
    /// The longest bake, in whole minutes, that, used for every wave, gives
    /// slack >= 0 (one minute longer does not). `None` if even no bake fails.
    pub longest_bake_that_fits: Option<SignedDuration>,
    /// The smallest concurrency that gives slack >= 0 (one less does not).
    /// `None` if even a whole wave applying at once does not fit.
    pub smallest_concurrency_that_fits: Option<usize>,
    /// The earliest GA, in whole minutes after the given one, that fits
    /// (one minute earlier does not); the earliest start and deadline follow
    /// GA unless they were given explicitly. `None` without a GA or when no
    /// GA within [`GA_SEARCH_LIMIT`] fits.
    pub earliest_ga_that_fits: Option<Timestamp>,
}

/// A plan that ends after its deadline, with why and what would fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Infeasible {
    /// The plan as it stands.
    pub plan: Plan,
    /// `planned_end - deadline`.
    pub late_by: SignedDuration,
    /// The constraint that binds.
    pub binding: Binding,
    /// What would fit.
    pub suggestions: Suggestions,
}

/// Why no plan could be made, or why the plan does not fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The plan ends after the deadline.
    #[error("the plan ends {} after the deadline: {}", format_duration((.0).late_by), (.0).binding)]
    Infeasible(Box<Infeasible>),
    /// The tile supports no cloud.
    #[error("the tile supports no cloud: nothing to roll out to")]
    NoClouds,
    /// No region is left after exclusions.
    #[error("no region to roll out to (every region of the tile's clouds is excluded)")]
    NoRegions,
    /// A region id not in the catalog.
    #[error("unknown region {0:?}: not in regions.toml")]
    UnknownRegion(String),
    /// A region of a cloud the tile does not support.
    #[error("region {region:?} is on {cloud}, which the tile does not support")]
    UnsupportedCloud {
        /// The region id.
        region: String,
        /// Its cloud.
        cloud: Cloud,
    },
    /// A region listed twice.
    #[error("region {0:?} is listed twice")]
    DuplicateRegion(String),
    /// An explicit wave names a region that is excluded or not selected.
    #[error("wave lists region {0:?}, which is not among the selected regions")]
    NotSelected(String),
    /// Explicit waves leave selected regions out.
    #[error("the waves leave out selected regions: {}", .0.join(", "))]
    MissingFromWaves(Vec<String>),
    /// An empty list of explicit waves.
    #[error("explicit waves given, but no wave")]
    NoWaves,
    /// An explicit wave with no region.
    #[error("wave {0} has no region")]
    EmptyWave(usize),
    /// Wave growth of zero.
    #[error("wave growth must be at least 1")]
    ZeroGrowth,
    /// Apply time of zero or less.
    #[error("apply time must be positive, got {0}")]
    NonPositiveApply(SignedDuration),
    /// A negative bake.
    #[error("bake must not be negative, got {0}")]
    NegativeBake(SignedDuration),
    /// A per-wave bake list with no entry.
    #[error("per-wave bakes given, but the list is empty")]
    NoBakes,
    /// Concurrency of zero.
    #[error("concurrency must be at least 1 (regions applying at once)")]
    ZeroConcurrency,
    /// A hold after a wave that does not exist.
    #[error("hold after wave {after}, but the plan has waves 1 to {waves}")]
    HoldOutOfRange {
        /// The wave named.
        after: usize,
        /// How many waves there are.
        waves: usize,
    },
    /// A blackout period that ends before it starts.
    #[error("blackout {0:?} ends before it starts")]
    EmptyBlackout(Period),
    /// A recurring blackout on no day.
    #[error("recurring blackout of {0} names no day of the week")]
    NoBlackoutDays(String),
    /// An IANA zone name jiff does not know.
    #[error("unknown time zone {0:?}")]
    UnknownTimeZone(String),
    /// Neither GA nor a deadline.
    #[error("no deadline: give a GA date or an explicit deadline")]
    NoDeadline,
    /// The deadline is before the plan could start.
    #[error(
        "the deadline {deadline} is before the plan can start ({start}: the later of now and the earliest start)"
    )]
    DeadlineBeforeStart {
        /// The deadline.
        deadline: Timestamp,
        /// The start.
        start: Timestamp,
    },
    /// Blackouts leave a region no start within the horizon.
    #[error(
        "region {region} is blacked out for over {} from {from}: no apply can start",
        format_duration(BLACKOUT_HORIZON)
    )]
    AlwaysBlackedOut {
        /// The region.
        region: String,
        /// From when it was looked for.
        from: Timestamp,
    },
    /// Progress names a region that is not in the plan.
    #[error("progress names region {0:?}, which is not in the plan")]
    ProgressUnknownRegion(String),
    /// Time arithmetic out of jiff's range.
    #[error("time out of range: {0}")]
    Time(String),
}

/// `t + d`, or a [`PlanError::Time`].
pub(crate) fn add(t: Timestamp, d: SignedDuration) -> Result<Timestamp, PlanError> {
    t.checked_add(d).map_err(|e| PlanError::Time(e.to_string()))
}

/// `t - d`, or a [`PlanError::Time`].
pub(crate) fn sub(t: Timestamp, d: SignedDuration) -> Result<Timestamp, PlanError> {
    t.checked_sub(d).map_err(|e| PlanError::Time(e.to_string()))
}

/// Plans a roll-out from scratch. Fails with [`PlanError::Infeasible`] when
/// the plan ends after the deadline, and with another variant when the input
/// contradicts itself.
pub fn plan(input: &PlanInput) -> Result<Plan, PlanError> {
    let r = resolve::resolve(input)?;
    let frame = r.frame(input.ga, input.now)?;
    if frame.deadline < frame.start {
        return Err(PlanError::DeadlineBeforeStart {
            deadline: frame.deadline,
            start: frame.start,
        });
    }
    let knobs = schedule::Knobs {
        bake: None,
        concurrency: r.concurrency,
        frame,
        ga: input.ga,
        blackouts: true,
    };
    let p = schedule::schedule(&r, &knobs, None)?;
    if !p.slack.is_negative() {
        return Ok(p);
    }
    let ctx = search::Ctx {
        r: &r,
        progress: None,
        now: input.now,
    };
    let (binding, suggestions) = ctx.explain(&knobs, &p)?;
    Err(PlanError::Infeasible(Box::new(Infeasible {
        late_by: -p.slack,
        plan: p,
        binding,
        suggestions,
    })))
}

#[cfg(test)]
mod tests;
