//! Re-planning a running roll-out from `now`: what is left, when it ends and
//! whether it still makes the deadline.
//!
//! The waves are those of the original plan (same input, same shape). Done
//! waves are left out. In the current and later waves, verified and skipped
//! regions need nothing; a region applying since `t` holds a concurrency
//! slot until `t + apply` (or `now`, if that has passed); a baking region is
//! verified at its bake end (or `now`); pending and failed regions (a failed
//! one is retried) are scheduled from `now` like in [`plan`](super::plan).
//! A paused roll-out's remaining plan starts at `now`, as if resumed now.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};

use super::schedule::{Knobs, Stage, schedule};
use super::search::Ctx;
use super::{Binding, Plan, PlanError, PlanInput, Suggestions, resolve};

/// Where one region of a running roll-out stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionState {
    /// Not started.
    Pending,
    /// Being applied since this instant.
    Applying {
        /// When the apply started.
        since: Timestamp,
    },
    /// Applied; baking until this instant.
    Baking {
        /// When the bake ends.
        until: Timestamp,
    },
    /// Baked and healthy.
    Verified,
    /// Failed its apply or health gate; it will be retried.
    Failed,
    /// Skipped on purpose (SkipRegion): not rolled out.
    Skipped,
}

/// The state of a running roll-out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// State per region id; a region not named is pending.
    pub regions: BTreeMap<String, RegionState>,
    /// When the roll-out was paused, if it is.
    pub paused_since: Option<Timestamp>,
}

/// The remaining plan is late.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtRisk {
    /// How late the remaining plan ends.
    pub late_by: SignedDuration,
    /// The constraint that binds.
    pub binding: Binding,
    /// What would fit, for the remaining waves (bakes of regions already
    /// baking stay as they are).
    pub suggestions: Suggestions,
}

/// The rest of a running roll-out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replan {
    /// The remaining plan, starting at `now`.
    pub plan: Plan,
    /// When the last region will be verified.
    pub eta: Timestamp,
    /// `deadline - eta`.
    pub slack: SignedDuration,
    /// Regions verified or skipped.
    pub done: usize,
    /// Regions in the roll-out.
    pub total: usize,
    /// How long the roll-out has been paused, if it is.
    pub paused_for: Option<SignedDuration>,
    /// Set as soon as the remaining plan ends after the deadline.
    pub at_risk: Option<AtRisk>,
    /// `now`, for reporting.
    pub now: Timestamp,
}

/// Plans the rest of a roll-out from `now`, given its progress. Lateness is
/// not an error here: it is reported in [`Replan::at_risk`] with the
/// binding constraint and suggestions.
pub fn replan(input: &PlanInput, progress: &Progress, now: Timestamp) -> Result<Replan, PlanError> {
    let r = resolve::resolve(input)?;
    let mut stages = vec![Stage::Todo; r.regions.len()];
    for (id, state) in &progress.regions {
        let Some(i) = r.regions.iter().position(|reg| &reg.id == id) else {
            input
                .catalog
                .get(id)
                .map_err(|_| PlanError::UnknownRegion(id.clone()))?;
            return Err(PlanError::ProgressUnknownRegion(id.clone()));
        };
        stages[i] = match *state {
            RegionState::Pending | RegionState::Failed => Stage::Todo,
            RegionState::Applying { since } => Stage::Applying(since),
            RegionState::Baking { until } => Stage::Baking(until),
            RegionState::Verified | RegionState::Skipped => Stage::Done,
        };
    }
    let mut frame = r.frame(input.ga, now)?;
    frame.start = now;
    let knobs = Knobs {
        bake: None,
        concurrency: r.concurrency,
        frame,
        ga: input.ga,
        blackouts: true,
    };
    let plan = schedule(&r, &knobs, Some((&stages, now)))?;
    let at_risk = if plan.slack.is_negative() {
        let ctx = Ctx {
            r: &r,
            progress: Some(&stages),
            now,
        };
        let (binding, suggestions) = ctx.explain(&knobs, &plan)?;
        Some(AtRisk {
            late_by: -plan.slack,
            binding,
            suggestions,
        })
    } else {
        None
    };
    Ok(Replan {
        eta: plan.planned_end,
        slack: plan.slack,
        done: stages.iter().filter(|s| **s == Stage::Done).count(),
        total: stages.len(),
        paused_for: progress.paused_since.map(|p| now.duration_since(p)),
        at_risk,
        now,
        plan,
    })
}
