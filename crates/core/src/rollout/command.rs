//! A person's commands on a roll-out ([`handle`]): pause, resume, retry a
//! region, skip a region, approve a hold, abort, roll back.

use std::fmt;

use jiff::{SignedDuration, Timestamp};

use super::{PauseCause, State, StepState, View, current_wave};

/// A command on a roll-out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Stop starting applies (what runs finishes).
    Pause {
        /// Why; empty means "paused by request".
        reason: String,
    },
    /// Continue a paused roll-out, retrying its failed and rolled-back
    /// regions, optionally with a new bake (from the current wave on) or
    /// concurrency.
    Resume {
        /// The bake of the current and later waves.
        bake: Option<SignedDuration>,
        /// The new concurrency (when positive).
        concurrency: Option<i32>,
    },
    /// Apply a failed region again.
    RetryRegion {
        /// The region.
        region: String,
    },
    /// Leave a pending or failed region out.
    SkipRegion {
        /// The region.
        region: String,
        /// Why.
        reason: String,
    },
    /// Release the hold after a wave.
    Approve {
        /// The wave the roll-out is held after.
        wave: i32,
        /// A note for the audit log.
        note: String,
    },
    /// Stop the roll-out for good.
    Abort {
        /// Why.
        reason: String,
    },
    /// Restore the previous revision, in some regions or everywhere the
    /// revision was applied.
    Rollback {
        /// The regions; empty means every touched one.
        regions: Vec<String>,
        /// Why.
        reason: String,
    },
}

impl Command {
    /// The audit action (the RPC's name).
    pub fn action(&self) -> &'static str {
        match self {
            Command::Pause { .. } => "PauseRollout",
            Command::Resume { .. } => "ResumeRollout",
            Command::RetryRegion { .. } => "RetryRegion",
            Command::SkipRegion { .. } => "SkipRegion",
            Command::Approve { .. } => "Approve",
            Command::Abort { .. } => "AbortRollout",
            Command::Rollback { .. } => "RollbackRollout",
        }
    }

    /// What the command does, for "cannot `verb` roll-out `id`".
    pub fn verb(&self) -> &'static str {
        match self {
            Command::Pause { .. } => "pause",
            Command::Resume { .. } => "resume",
            Command::RetryRegion { .. } => "retry a region of",
            Command::SkipRegion { .. } => "skip a region of",
            Command::Approve { .. } => "approve",
            Command::Abort { .. } => "abort",
            Command::Rollback { .. } => "roll back",
        }
    }
}

/// What the caller must do besides storing the new [`View`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Set the bake of wave `from_wave` and every later wave in the spec.
    SetBake {
        /// The first wave with the new bake.
        from_wave: i32,
        /// The bake.
        bake: SignedDuration,
    },
    /// Set the spec's concurrency.
    SetConcurrency(i32),
}

/// An accepted command: the roll-out as it becomes, what else to do, and
/// the audit summary.
#[derive(Debug, Clone)]
pub struct Transition {
    /// The roll-out and its steps after the command.
    pub view: View,
    /// What else to carry out.
    pub effects: Vec<Effect>,
    /// The audit record's summary.
    pub summary: String,
}

/// Why a command is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The roll-out's state does not allow the command.
    WrongState,
    /// A held roll-out is released with Approve, not Resume.
    Held {
        /// The wave it is held after.
        after_wave: i32,
    },
    /// The roll-out has no such region.
    NoSuchRegion {
        /// The region asked for.
        region: String,
    },
    /// Only a failed region is retried.
    NotFailed {
        /// The region.
        region: String,
        /// Where it stands.
        state: StepState,
    },
    /// Only a pending or failed region can be skipped.
    NotSkippable {
        /// The region.
        region: String,
        /// Where it stands.
        state: StepState,
    },
    /// Approve on a roll-out that is not held.
    NotHeld,
    /// Approve of another wave than the one it is held after.
    HeldAfterOtherWave {
        /// The wave it is held after.
        held: i32,
        /// The wave named.
        asked: i32,
    },
    /// A rollback names a region the roll-out does not have (bad input).
    NotARegion {
        /// The region named.
        region: String,
    },
}

/// A refused command, with what it was refused on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Refused {
    /// The roll-out's id.
    pub id: String,
    /// Its state.
    pub state: State,
    /// The command's verb ([`Command::verb`]).
    pub verb: &'static str,
    /// Why.
    pub reason: Refusal,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = &self.id;
        match &self.reason {
            Refusal::WrongState => write!(
                f,
                "cannot {} roll-out {id}: it is {}{}",
                self.verb,
                self.state,
                if self.state.is_terminal() {
                    " (finished)"
                } else {
                    ""
                }
            ),
            Refusal::Held { after_wave } => {
                write!(
                    f,
                    "roll-out {id} is held after wave {after_wave}: release it with Approve"
                )
            }
            Refusal::NoSuchRegion { region } => write!(f, "roll-out {id} has no region {region:?}"),
            Refusal::NotFailed { region, state } => {
                write!(
                    f,
                    "{region} is {state}, not FAILED: only a failed region is retried"
                )
            }
            Refusal::NotSkippable { region, state } => {
                write!(
                    f,
                    "{region} is {state}: only a pending or failed region can be skipped"
                )
            }
            Refusal::NotHeld => write!(
                f,
                "roll-out {id} is {} and not held: nothing to approve",
                self.state
            ),
            Refusal::HeldAfterOtherWave { held, asked } => {
                write!(f, "roll-out {id} is held after wave {held}, not wave {asked}")
            }
            Refusal::NotARegion { region } => write!(f, "{region:?} is not a region of roll-out {id}"),
        }
    }
}

/// Clears a pause: the roll-out runs.
fn run(v: &mut View) {
    v.state = State::Running;
    v.pause_cause = None;
    v.paused_reason.clear();
}

/// Answers `command` on `view` at `now`: the roll-out as it becomes and
/// what else to do, or why not.
pub fn handle(view: &View, command: &Command, now: Timestamp) -> Result<Transition, Refused> {
    use Command as C;
    use State as S;

    let refuse = |reason: Refusal| {
        Err(Refused {
            id: view.id.clone(),
            state: view.state,
            verb: command.verb(),
            reason,
        })
    };
    let mut v = view.clone();
    let mut effects = Vec::new();

    let summary = match (view.state, command) {
        // ---- Pause: a running or pending roll-out.
        (S::Running | S::Pending, C::Pause { reason }) => {
            v.state = S::Paused;
            v.pause_cause = Some(PauseCause::Manual);
            v.paused_reason = if reason.is_empty() {
                "paused by request".into()
            } else {
                reason.clone()
            };
            format!("paused: {}", v.paused_reason)
        }
        (
            S::Paused | S::Succeeded | S::Failed | S::Aborted | S::RollingBack | S::RolledBack,
            C::Pause { .. },
        ) => return refuse(Refusal::WrongState),

        // ---- Resume: a paused roll-out that is not held.
        (S::Paused, C::Resume { bake, concurrency }) => {
            if view.pause_cause == Some(PauseCause::Hold) {
                return refuse(Refusal::Held {
                    after_wave: view.held_after_wave,
                });
            }
            let mut retried = 0;
            for s in &mut v.steps {
                if matches!(s.state, StepState::Failed | StepState::RolledBack) {
                    s.state = StepState::Pending;
                    retried += 1;
                }
            }
            if let Some(bake) = *bake {
                let from_wave = current_wave(&v.steps).unwrap_or(1);
                effects.push(Effect::SetBake { from_wave, bake });
            }
            if let Some(c) = concurrency.filter(|c| *c > 0) {
                effects.push(Effect::SetConcurrency(c));
            }
            run(&mut v);
            format!("resumed; {retried} failed regions to retry")
        }
        (
            S::Pending | S::Running | S::Succeeded | S::Failed | S::Aborted | S::RollingBack | S::RolledBack,
            C::Resume { .. },
        ) => return refuse(Refusal::WrongState),

        // ---- RetryRegion: a failed region of a running or paused roll-out.
        (S::Running | S::Paused, C::RetryRegion { region }) => {
            let Some(i) = view.step_of(region) else {
                return refuse(Refusal::NoSuchRegion {
                    region: region.clone(),
                });
            };
            let state = view.steps[i].state;
            if state != StepState::Failed {
                return refuse(Refusal::NotFailed {
                    region: region.clone(),
                    state,
                });
            }
            v.steps[i].state = StepState::Pending;
            if view.pause_cause == Some(PauseCause::Failure)
                && !v.steps.iter().any(|s| s.state == StepState::Failed)
            {
                run(&mut v);
            }
            format!("retrying {region}")
        }
        (
            S::Pending | S::Succeeded | S::Failed | S::Aborted | S::RollingBack | S::RolledBack,
            C::RetryRegion { .. },
        ) => return refuse(Refusal::WrongState),

        // ---- SkipRegion: a pending or failed region of a live roll-out.
        (S::Running | S::Paused | S::Pending, C::SkipRegion { region, reason }) => {
            let Some(i) = view.step_of(region) else {
                return refuse(Refusal::NoSuchRegion {
                    region: region.clone(),
                });
            };
            let state = view.steps[i].state;
            if !matches!(state, StepState::Failed | StepState::Pending) {
                return refuse(Refusal::NotSkippable {
                    region: region.clone(),
                    state,
                });
            }
            v.steps[i].state = StepState::Skipped;
            v.steps[i].skip_reason = reason.clone();
            if view.pause_cause == Some(PauseCause::Failure)
                && view.state == S::Paused
                && !v.steps.iter().any(|s| s.state == StepState::Failed)
            {
                run(&mut v);
            }
            format!("skipped {region}: {reason}")
        }
        (S::Succeeded | S::Failed | S::Aborted | S::RollingBack | S::RolledBack, C::SkipRegion { .. }) => {
            return refuse(Refusal::WrongState);
        }

        // ---- Approve: a roll-out held after the wave named.
        (S::Paused, C::Approve { wave, note }) => {
            if view.pause_cause != Some(PauseCause::Hold) {
                return refuse(Refusal::NotHeld);
            }
            if view.held_after_wave != *wave {
                return refuse(Refusal::HeldAfterOtherWave {
                    held: view.held_after_wave,
                    asked: *wave,
                });
            }
            v.approved_waves.push(*wave);
            run(&mut v);
            v.held_after_wave = 0;
            format!("approved wave {wave}: {note}")
        }
        (
            S::Pending | S::Running | S::Succeeded | S::Failed | S::Aborted | S::RollingBack | S::RolledBack,
            C::Approve { .. },
        ) => return refuse(Refusal::NotHeld),

        // ---- Abort: a roll-out that has not finished and is not rolling back.
        (S::Pending | S::Running | S::Paused, C::Abort { reason }) => {
            v.state = S::Aborted;
            v.finished_at = Some(now);
            v.paused_reason = reason.clone();
            format!("aborted: {reason}")
        }
        (S::Succeeded | S::Failed | S::Aborted | S::RollingBack | S::RolledBack, C::Abort { .. }) => {
            return refuse(Refusal::WrongState);
        }

        // ---- Rollback: anything applied that is not already rolling back
        // (a finished roll-out comes back to life).
        (S::Running | S::Paused | S::Succeeded | S::Aborted | S::Failed, C::Rollback { regions, reason }) => {
            if let Some(region) = regions.iter().find(|r| view.step_of(r).is_none()) {
                return refuse(Refusal::NotARegion {
                    region: region.clone(),
                });
            }
            v.state = S::RollingBack;
            v.rollback_regions = regions.clone();
            v.pause_after_rollback = false;
            v.finished_at = None;
            v.paused_reason = reason.clone();
            format!(
                "rolling back to r{}{}: {reason}",
                view.previous_revision,
                if regions.is_empty() {
                    String::new()
                } else {
                    format!(" in {}", regions.join(", "))
                },
            )
        }
        (S::Pending | S::RollingBack | S::RolledBack, C::Rollback { .. }) => {
            return refuse(Refusal::WrongState);
        }
    };
    Ok(Transition {
        view: v,
        effects,
        summary,
    })
}
