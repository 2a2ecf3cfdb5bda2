//! The rules of a roll-out (docs/domain.md "Roll-outs", docs/design.md "Rollout
//! service") as pure functions, the way [`crate::lifecycle`] holds a tile's.
//!
//! A roll-out applies one tile revision region by region, wave by wave. The
//! rollout service keeps it in etcd and carries out what this module
//! decides:
//!
//! - [`decide`] looks at a [`View`] of a roll-out and its steps at `now`,
//!   with the global freeze, and says what the owner does next: start
//!   running, (re)issue applies, health-check applies and bakes, start the
//!   applies the re-plan starts now, hold for an Approve, finish, record the
//!   freeze, roll back the newest applied region, or wait until a time.
//! - [`fail`] applies the roll-out's [`FailurePolicy`] to a region that
//!   failed its apply or its health gate: pause, or roll the wave back.
//! - [`handle`] answers a person's [`Command`] (pause, resume, retry a
//!   region, skip a region, approve, abort, roll back) with the next
//!   [`View`] and the [`Effect`]s to carry out, or a [`Refusal`]. Every
//!   (state, command) pair is matched explicitly (docs/design.md, "Code layout").
//!
//! Nothing here reads a clock or does I/O; the service converts its wire
//! types to these at its edge.

mod command;
mod decide;

use std::collections::BTreeMap;
use std::fmt;

use jiff::{SignedDuration, Timestamp};

use crate::planner::{PlanInput, Progress, RegionState};

pub use command::{Command, Effect, Refusal, Refused, Transition, handle};
pub use decide::{Check, Deadline, Decision, Failure, deadline, decide, fail, needs_rollback};

/// A bake is health-checked at least this often (domain time); a paused
/// roll-out is re-planned as often, so a deadline at risk shows.
pub const HEALTH_CHECK_EVERY: SignedDuration = SignedDuration::from_mins(5);

/// Where a roll-out stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Started but waiting for its earliest start.
    Pending,
    /// Applying and baking waves.
    Running,
    /// Not starting applies: by request, after a failure, or at a hold
    /// ([`PauseCause`]).
    Paused,
    /// Every region verified or skipped. Terminal.
    Succeeded,
    /// Failed and cannot continue. Terminal.
    Failed,
    /// Stopped by Abort. Terminal.
    Aborted,
    /// Restoring the previous revision, newest region first.
    RollingBack,
    /// The previous revision is restored everywhere it was replaced. Terminal.
    RolledBack,
}

impl State {
    /// Every state, for tables.
    pub const ALL: [State; 8] = [
        State::Pending,
        State::Running,
        State::Paused,
        State::Succeeded,
        State::Failed,
        State::Aborted,
        State::RollingBack,
        State::RolledBack,
    ];

    /// The upper-snake name used on the wire and in messages.
    pub fn name(&self) -> &'static str {
        match self {
            State::Pending => "PENDING",
            State::Running => "RUNNING",
            State::Paused => "PAUSED",
            State::Succeeded => "SUCCEEDED",
            State::Failed => "FAILED",
            State::Aborted => "ABORTED",
            State::RollingBack => "ROLLING_BACK",
            State::RolledBack => "ROLLED_BACK",
        }
    }

    /// True once the roll-out is over (a rollback may still revive it).
    pub fn is_terminal(&self) -> bool {
        match self {
            State::Succeeded | State::Failed | State::Aborted | State::RolledBack => true,
            State::Pending | State::Running | State::Paused | State::RollingBack => false,
        }
    }

    /// Whether a roll-out in this state needs an owner driving it.
    pub fn needs_owner(&self) -> bool {
        !self.is_terminal()
    }

    /// Whether its remaining work is re-planned from now after each change
    /// (not once it is over, nor while it rolls back).
    pub fn replans(&self) -> bool {
        match self {
            State::Pending | State::Running | State::Paused => true,
            State::Succeeded | State::Failed | State::Aborted | State::RollingBack | State::RolledBack => {
                false
            }
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a roll-out is paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PauseCause {
    /// Someone asked for it.
    Manual,
    /// A region failed its apply or health gate.
    Failure,
    /// A manual hold after a wave; Approve releases it.
    Hold,
}

/// What a roll-out does when a region fails its apply or health gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FailurePolicy {
    /// Pause the roll-out (the default).
    #[default]
    Pause,
    /// Roll the failed wave back to the previous revision, then pause.
    RollbackWave,
}

/// Where one region of a roll-out stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepState {
    /// Not started.
    Pending,
    /// The agent is applying (or removing).
    Applying,
    /// Applied; health-checked until the wave's bake ends.
    Baking,
    /// Baked and healthy.
    Verified,
    /// The apply or the health gate failed.
    Failed,
    /// Left out by SkipRegion.
    Skipped,
    /// Restoring the previous revision.
    RollingBack,
    /// The previous revision is restored.
    RolledBack,
}

impl StepState {
    /// Every step state, for tables.
    pub const ALL: [StepState; 8] = [
        StepState::Pending,
        StepState::Applying,
        StepState::Baking,
        StepState::Verified,
        StepState::Failed,
        StepState::Skipped,
        StepState::RollingBack,
        StepState::RolledBack,
    ];

    /// The upper-snake name used on the wire and in messages.
    pub fn name(&self) -> &'static str {
        match self {
            StepState::Pending => "PENDING",
            StepState::Applying => "APPLYING",
            StepState::Baking => "BAKING",
            StepState::Verified => "VERIFIED",
            StepState::Failed => "FAILED",
            StepState::Skipped => "SKIPPED",
            StepState::RollingBack => "ROLLING_BACK",
            StepState::RolledBack => "ROLLED_BACK",
        }
    }

    /// Verified or skipped: the region needs nothing more.
    pub fn is_done(&self) -> bool {
        match self {
            StepState::Verified | StepState::Skipped => true,
            StepState::Pending
            | StepState::Applying
            | StepState::Baking
            | StepState::Failed
            | StepState::RollingBack
            | StepState::RolledBack => false,
        }
    }
}

impl fmt::Display for StepState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One region of a roll-out, as far as the rules need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The region id ("aws:us-east-1").
    pub region: String,
    /// Its wave, from 1.
    pub wave: i32,
    /// Where it stands.
    pub state: StepState,
    /// When its (last) apply started.
    pub apply_started_at: Option<Timestamp>,
    /// When the agent acknowledged that apply.
    pub applied_at: Option<Timestamp>,
    /// When its bake ends.
    pub bake_ends_at: Option<Timestamp>,
    /// Its last health check.
    pub last_health_at: Option<Timestamp>,
    /// Why it was skipped.
    pub skip_reason: String,
}

impl Step {
    /// Whether the roll-out may have changed the region: an apply started
    /// and was not rolled back (what a rollback restores, and what a
    /// removal removes).
    pub fn touched(&self) -> bool {
        match self.state {
            StepState::Applying | StepState::Baking | StepState::Verified | StepState::RollingBack => true,
            StepState::Failed => self.apply_started_at.is_some(),
            StepState::Pending | StepState::Skipped | StepState::RolledBack => false,
        }
    }

    /// A pending step of `region` in `wave`.
    pub fn pending(region: &str, wave: i32) -> Self {
        Self {
            region: region.to_owned(),
            wave,
            state: StepState::Pending,
            apply_started_at: None,
            applied_at: None,
            bake_ends_at: None,
            last_health_at: None,
            skip_reason: String::new(),
        }
    }
}

/// A roll-out and its steps, as the rules see it.
#[derive(Debug, Clone)]
pub struct View {
    /// The roll-out's id, for messages.
    pub id: String,
    /// Where it stands.
    pub state: State,
    /// Why it is paused (also kept while a failed wave rolls back).
    pub pause_cause: Option<PauseCause>,
    /// The human reason of the pause, failure or abort.
    pub paused_reason: String,
    /// For a hold: the wave after which it waits.
    pub held_after_wave: i32,
    /// Waves whose hold Approve released.
    pub approved_waves: Vec<i32>,
    /// Waves after which the roll-out holds for an Approve.
    pub hold_after_waves: Vec<i32>,
    /// What a failed region does to the roll-out.
    pub policy: FailurePolicy,
    /// No apply starts before this.
    pub earliest_start: Option<Timestamp>,
    /// When it started applying, if it has.
    pub started_at: Option<Timestamp>,
    /// When it finished, if it has.
    pub finished_at: Option<Timestamp>,
    /// Whether the roll-out records that the freeze holds it back.
    pub frozen: bool,
    /// When its plan was last computed.
    pub planned_at: Option<Timestamp>,
    /// The planner's estimate of one apply (the owner does not wait it
    /// out: an acknowledged apply's bake starts at once).
    pub apply_time: SignedDuration,
    /// The bake of each wave (the last one counts for later waves); at
    /// least one.
    pub bakes: Vec<SignedDuration>,
    /// Regions of a wave applying at once (at least 1).
    pub concurrency: usize,
    /// How many waves the plan has.
    pub wave_count: i32,
    /// The revision a rollback restores (for messages).
    pub previous_revision: i64,
    /// While rolling back: pause when done instead of ending ROLLED_BACK.
    pub pause_after_rollback: bool,
    /// The regions a rollback restores; empty means every touched one.
    pub rollback_regions: Vec<String>,
    /// Its steps, in planned order.
    pub steps: Vec<Step>,
    /// The planner's input for a re-plan from now (or why it cannot be
    /// rebuilt); only needed while running.
    pub plan: Result<PlanInput, String>,
}

impl View {
    /// The bake of wave `wave` (from 1).
    pub fn bake_of(&self, wave: i32) -> SignedDuration {
        let last = self.bakes.len().saturating_sub(1);
        let i = usize::try_from(wave - 1).unwrap_or(0).min(last);
        self.bakes.get(i).copied().unwrap_or(crate::planner::DEFAULT_BAKE)
    }

    /// The lowest wave with a region not yet verified or skipped.
    pub fn current_wave(&self) -> Option<i32> {
        current_wave(&self.steps)
    }

    /// The index of `region`'s step.
    pub fn step_of(&self, region: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.region == region)
    }

    /// Whether `wave` waits for an Approve of the wave before it (its
    /// regions untouched so far).
    pub fn held(&self, wave: i32) -> bool {
        let prev = wave - 1;
        let untouched = self
            .steps
            .iter()
            .filter(|s| s.wave == wave)
            .all(|s| s.state == StepState::Pending);
        prev >= 1
            && self.hold_after_waves.contains(&prev)
            && untouched
            && !self.approved_waves.contains(&prev)
    }

    /// Where the planner should think each region stands.
    pub fn progress(&self) -> Progress {
        let paused_since = if self.state == State::Paused {
            self.planned_at
        } else {
            None
        };
        progress(&self.steps, paused_since)
    }
}

/// The lowest wave with a region not yet verified or skipped.
pub fn current_wave(steps: &[Step]) -> Option<i32> {
    steps.iter().filter(|s| !s.state.is_done()).map(|s| s.wave).min()
}

/// Where the planner should think each region stands, for a roll-out of
/// `steps` paused since `paused_since` (if it is).
pub fn progress(steps: &[Step], paused_since: Option<Timestamp>) -> Progress {
    let mut regions = BTreeMap::new();
    for s in steps {
        let rs = match s.state {
            StepState::Pending | StepState::RolledBack | StepState::RollingBack => RegionState::Pending,
            StepState::Applying => match s.apply_started_at {
                Some(since) => RegionState::Applying { since },
                None => RegionState::Pending,
            },
            StepState::Baking => match s.bake_ends_at {
                Some(until) => RegionState::Baking { until },
                None => RegionState::Pending,
            },
            StepState::Verified => RegionState::Verified,
            StepState::Failed => RegionState::Failed,
            StepState::Skipped => RegionState::Skipped,
        };
        regions.insert(s.region.clone(), rs);
    }
    Progress {
        regions,
        paused_since,
    }
}

#[cfg(test)]
mod tests;
