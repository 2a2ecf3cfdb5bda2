//! What the owner of a roll-out does next ([`decide`]) and what a failed
//! region does to it ([`fail`]).

use jiff::{SignedDuration, Timestamp};

use crate::planner::Replan;

use super::{FailurePolicy, HEALTH_CHECK_EVERY, PauseCause, State, Step, StepState, View};

/// A health check of one region, and what its step becomes when healthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The agent acknowledged the apply: the health gate; healthy, the
    /// step bakes until `bake_ends_at`.
    Gate {
        /// The step's index.
        step: usize,
        /// When its bake ends.
        bake_ends_at: Timestamp,
    },
    /// A check during the bake; healthy, the step keeps baking.
    Bake {
        /// The step's index.
        step: usize,
    },
    /// The bake is over: the last check; healthy, the step is verified.
    Verify {
        /// The step's index.
        step: usize,
    },
}

impl Check {
    /// The index of the step checked.
    pub fn step(&self) -> usize {
        match *self {
            Check::Gate { step, .. } | Check::Bake { step } | Check::Verify { step } => step,
        }
    }
}

/// One decision of a roll-out's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The roll-out is over: it needs no owner.
    Done,
    /// Nothing to do before this domain time (or a change).
    WaitUntil(Timestamp),
    /// The earliest start has come: PENDING becomes RUNNING.
    StartRunning,
    /// Running for the first time: the tile's lifecycle moves to rolling
    /// out and the roll-out records when it started.
    MarkStarted,
    /// (Re)issue these recorded applies the agents have not acknowledged,
    /// all at once (steps by index).
    IssueApplies(Vec<usize>),
    /// Health-check these regions at once; the first unhealthy one fails
    /// ([`fail`]), the healthy ones move on.
    HealthRound(Vec<Check>),
    /// Start applying these pending regions now (steps by index), as the
    /// re-plan from now starts them within the concurrency limit.
    StartApplies(Vec<usize>),
    /// Every region is verified or skipped: the roll-out succeeds.
    Finish,
    /// Paused: refresh the re-plan so that a deadline at risk shows.
    Replan,
    /// The next wave waits for an Approve of this wave.
    Hold {
        /// The wave just done.
        after_wave: i32,
    },
    /// Record that the global freeze holds new applies back.
    Freeze,
    /// Record that the freeze was lifted.
    Unfreeze,
    /// Rolling back: mark this step (the newest applied) rolling back.
    BeginRollback(usize),
    /// Rolling back: restore what was live before in this step's region.
    Restore(usize),
    /// The failed wave is rolled back: the roll-out pauses.
    WaveRolledBack,
    /// Every touched region is restored: the roll-out is rolled back.
    RolledBack,
    /// The re-plan from now cannot be computed; try again later.
    CannotPlan(String),
}

/// The earliest domain time the owner must look again.
#[derive(Debug, Default)]
struct Wake(Option<Timestamp>);

impl Wake {
    fn at(&mut self, t: Timestamp) {
        self.0 = Some(self.0.map_or(t, |w| w.min(t)));
    }

    fn or(&self, default: Timestamp) -> Timestamp {
        self.0.unwrap_or(default)
    }
}

fn plus(t: Timestamp, d: jiff::SignedDuration) -> Timestamp {
    t.checked_add(d).unwrap_or(t)
}

/// What the owner of `view` does at `now`, with the global freeze `frozen`.
///
/// For a RUNNING or PAUSED roll-out the order matters on a fast virtual
/// clock, where one decision costs more domain time than a bake check's
/// period: unacknowledged applies first, then the health gates of
/// acknowledged applies, then the applies the re-plan starts now, then the
/// bake checks, each for every region it concerns at once. Bake checks that
/// are always due must not hold new applies back.
pub fn decide(view: &View, now: Timestamp, frozen: bool) -> Decision {
    match view.state {
        State::Succeeded | State::Failed | State::Aborted | State::RolledBack => Decision::Done,
        State::Pending => match view.earliest_start {
            Some(t) if t > now => Decision::WaitUntil(t),
            _ => Decision::StartRunning,
        },
        State::Running | State::Paused => advance(view, now, frozen),
        State::RollingBack => rollback(view),
    }
}

fn advance(view: &View, now: Timestamp, frozen: bool) -> Decision {
    let running = view.state == State::Running;
    let mut wake = Wake::default();

    if running && view.started_at.is_none() {
        return Decision::MarkStarted;
    }

    let open: Vec<usize> = (0..view.steps.len())
        .filter(|&i| view.steps[i].state == StepState::Applying && view.steps[i].applied_at.is_none())
        .collect();
    if !open.is_empty() {
        return Decision::IssueApplies(open);
    }

    // An acknowledged apply has its health gate (the start of its bake)
    // before anything else starts: an unhealthy region stops the roll-out
    // before more regions take the revision. The planned apply time is
    // the planner's estimate, not a wait: the agent acknowledges an apply
    // once the region has the revision (waiting out the estimate after
    // that cost a second per wave with `--apply-time 1s`, issue 18).
    let gate_due = view
        .steps
        .iter()
        .any(|s| s.state == StepState::Applying && s.applied_at.is_some());
    if gate_due {
        let checks = health_checks(view, now, &mut wake);
        if !checks.is_empty() {
            return Decision::HealthRound(checks);
        }
    }

    let wave = view.current_wave();
    if running
        && let Some(wave) = wave
        && !view.held(wave)
        && !frozen
    {
        match starts(view, wave, now, &mut wake) {
            Ok(starting) if !starting.is_empty() => return Decision::StartApplies(starting),
            Ok(_) => {}
            Err(why) => return Decision::CannotPlan(why),
        }
    }

    let checks = health_checks(view, now, &mut wake);
    if !checks.is_empty() {
        return Decision::HealthRound(checks);
    }

    let Some(wave) = wave else {
        return Decision::Finish;
    };

    if !running {
        // Paused: keep the re-plan current so a deadline at risk shows.
        let next_refresh = view
            .planned_at
            .and_then(|c| c.checked_add(HEALTH_CHECK_EVERY).ok());
        if next_refresh.is_none_or(|t| now >= t) {
            return Decision::Replan;
        }
        if let Some(t) = next_refresh {
            wake.at(t);
        }
        return Decision::WaitUntil(wake.or(now));
    }

    if view.held(wave) {
        return Decision::Hold { after_wave: wave - 1 };
    }

    if frozen {
        if !view.frozen {
            return Decision::Freeze;
        }
        return Decision::WaitUntil(wake.or(plus(now, HEALTH_CHECK_EVERY)));
    }

    if view.frozen {
        return Decision::Unfreeze;
    }
    Decision::WaitUntil(wake.or(plus(now, HEALTH_CHECK_EVERY)))
}

/// Every region whose apply the agent acknowledged (its bake starts,
/// health-checked) and every bake due a check (every
/// [`HEALTH_CHECK_EVERY`] and at its end); `wake` learns when the next one
/// will be due.
fn health_checks(view: &View, now: Timestamp, wake: &mut Wake) -> Vec<Check> {
    let mut due = Vec::new();
    for (i, s) in view.steps.iter().enumerate() {
        match s.state {
            StepState::Applying => {
                // Not acknowledged yet: the apply is (re)issued first.
                let Some(applied) = s.applied_at else {
                    continue;
                };
                due.push(Check::Gate {
                    step: i,
                    bake_ends_at: plus(applied, view.bake_of(s.wave)),
                });
            }
            StepState::Baking => {
                let end = s.bake_ends_at.unwrap_or(now);
                let check_due = s
                    .last_health_at
                    .and_then(|l| l.checked_add(HEALTH_CHECK_EVERY).ok());
                if now < end && check_due.is_some_and(|c| now < c) {
                    wake.at(end.min(check_due.unwrap_or(end)));
                    continue;
                }
                due.push(if now >= end {
                    Check::Verify { step: i }
                } else {
                    Check::Bake { step: i }
                });
            }
            StepState::Pending
            | StepState::Verified
            | StepState::Failed
            | StepState::Skipped
            | StepState::RollingBack
            | StepState::RolledBack => {}
        }
    }
    due
}

/// The pending regions of `wave` the re-plan from now starts now, as far as
/// the concurrency limit allows; `wake` learns when the next one will.
fn starts(view: &View, wave: i32, now: Timestamp, wake: &mut Wake) -> Result<Vec<usize>, String> {
    let input = view.plan.as_ref().map_err(Clone::clone)?;
    let re = crate::planner::replan(input, &view.progress(), now).map_err(|e| e.to_string())?;
    let applying = view
        .steps
        .iter()
        .filter(|s| s.state == StepState::Applying)
        .count();
    let pending_here = |region: &str| {
        view.steps
            .iter()
            .any(|s| s.region == region && s.wave == wave && s.state == StepState::Pending)
    };
    let mut starting = Vec::new();
    for planned in &re.plan.regions {
        if !pending_here(&planned.region) {
            continue;
        }
        if planned.apply_start > now {
            wake.at(planned.apply_start);
            continue;
        }
        if applying + starting.len() >= view.concurrency.max(1) {
            break;
        }
        if let Some(i) = view.step_of(&planned.region) {
            starting.push(i);
        }
    }
    Ok(starting)
}

/// Whether `step` changed its region and so needs restoring by a rollback
/// of `view`.
pub fn needs_rollback(view: &View, step: &Step) -> bool {
    let in_scope = view.rollback_regions.is_empty() || view.rollback_regions.contains(&step.region);
    in_scope && step.touched()
}

/// One decision of a ROLLING_BACK roll-out: restore the newest applied
/// region (the one already rolling back first), or finish.
fn rollback(view: &View) -> Decision {
    let newest = view
        .steps
        .iter()
        .enumerate()
        .filter(|(_, s)| needs_rollback(view, s))
        .max_by_key(|(_, s)| {
            let t = s
                .applied_at
                .or(s.apply_started_at)
                .unwrap_or(Timestamp::UNIX_EPOCH);
            (s.state == StepState::RollingBack, t)
        });
    match newest {
        Some((i, s)) if s.state == StepState::RollingBack => Decision::Restore(i),
        Some((i, _)) => Decision::BeginRollback(i),
        None if view.pause_after_rollback => Decision::WaveRolledBack,
        None => Decision::RolledBack,
    }
}

/// What a failed region does to its roll-out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The roll-out's next state: PAUSED, or ROLLING_BACK the wave.
    pub state: State,
    /// The pause cause (kept while the wave rolls back).
    pub pause_cause: PauseCause,
    /// Set when the wave rolls back: its regions; the roll-out pauses when
    /// they are restored.
    pub rollback_wave: Option<Vec<String>>,
    /// The pause reason: "`tile` failed in `region` (wave `n`): `why`".
    pub reason: String,
    /// The failure event's message.
    pub event: String,
}

/// Step `step` of `view` (a roll-out of `tile`) failed its apply or health
/// gate because of `why`: what the roll-out's [`FailurePolicy`] makes of it.
pub fn fail(view: &View, tile: &str, step: usize, why: &str) -> Failure {
    let (region, wave) = view
        .steps
        .get(step)
        .map_or(("", 0), |s| (s.region.as_str(), s.wave));
    let reason = format!("{tile} failed in {region} (wave {wave}): {why}");
    let (state, rollback_wave, then) = match view.policy {
        FailurePolicy::Pause => (State::Paused, None, "paused"),
        FailurePolicy::RollbackWave => (
            State::RollingBack,
            Some(
                view.steps
                    .iter()
                    .filter(|s| s.wave == wave)
                    .map(|s| s.region.clone())
                    .collect(),
            ),
            "rolling the wave back",
        ),
    };
    Failure {
        state,
        pause_cause: PauseCause::Failure,
        rollback_wave,
        event: format!("{reason}; roll-out {then}"),
        reason,
    }
}

/// What a re-plan from now says about a roll-out's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    /// The ETA meets the deadline, or the roll-out has no real deadline.
    OnPlan,
    /// The ETA is past the deadline.
    AtRisk {
        /// By how much.
        late_by: SignedDuration,
        /// It was on plan before this re-plan: raise DEADLINE_AT_RISK (once
        /// per crossing).
        crossed: bool,
    },
}

/// The deadline verdict of `re` for a roll-out that `has_deadline` (not
/// just the planning horizon) and `was_at_risk` before.
pub fn deadline(re: &Replan, has_deadline: bool, was_at_risk: bool) -> Deadline {
    match &re.at_risk {
        Some(risk) if has_deadline => Deadline::AtRisk {
            late_by: risk.late_by,
            crossed: !was_at_risk,
        },
        Some(_) | None => Deadline::OnPlan,
    }
}
