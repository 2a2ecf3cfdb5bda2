//! The edge between the wire and the roll-out's rules: protobuf roll-outs
//! and steps to [`tilewave_core::rollout`] types and back.
//!
//! A wire state the rules do not know (`UNSPECIFIED`, or a number from a
//! newer peer) is no roll-out state: [`state`] gives `None`, and the
//! callers treat such a roll-out as needing nothing. An unknown step state
//! counts as pending, as the planner always treated it.

use jiff::Timestamp;
use tilewave_core::planner::{DEFAULT_APPLY_TIME, DEFAULT_BAKE, PlanInput};
use tilewave_core::rollout::{
    Effect, FailurePolicy, PauseCause, Refusal, Refused, State, Step, StepState, View,
};
use tilewave_proto::ShortName;
use tilewave_proto::rollout::v1 as wire;
use tilewave_store::clock::{from_proto_timestamp, to_proto_timestamp};

use crate::error::Error;
use crate::spec;

/// The roll-out state of a wire number; `None` when unknown.
pub fn state(n: i32) -> Option<State> {
    Some(match wire::RolloutState::try_from(n).ok()? {
        wire::RolloutState::Unspecified => return None,
        wire::RolloutState::Pending => State::Pending,
        wire::RolloutState::Running => State::Running,
        wire::RolloutState::Paused => State::Paused,
        wire::RolloutState::Succeeded => State::Succeeded,
        wire::RolloutState::Failed => State::Failed,
        wire::RolloutState::Aborted => State::Aborted,
        wire::RolloutState::RollingBack => State::RollingBack,
        wire::RolloutState::RolledBack => State::RolledBack,
    })
}

/// The wire number of a roll-out state.
pub fn state_to_wire(s: State) -> i32 {
    i32::from(match s {
        State::Pending => wire::RolloutState::Pending,
        State::Running => wire::RolloutState::Running,
        State::Paused => wire::RolloutState::Paused,
        State::Succeeded => wire::RolloutState::Succeeded,
        State::Failed => wire::RolloutState::Failed,
        State::Aborted => wire::RolloutState::Aborted,
        State::RollingBack => wire::RolloutState::RollingBack,
        State::RolledBack => wire::RolloutState::RolledBack,
    })
}

/// The step state of a wire number (unknown: pending).
pub fn step_state(n: i32) -> StepState {
    match wire::StepState::try_from(n).unwrap_or_default() {
        wire::StepState::Unspecified | wire::StepState::Pending => StepState::Pending,
        wire::StepState::Applying => StepState::Applying,
        wire::StepState::Baking => StepState::Baking,
        wire::StepState::Verified => StepState::Verified,
        wire::StepState::Failed => StepState::Failed,
        wire::StepState::Skipped => StepState::Skipped,
        wire::StepState::RollingBack => StepState::RollingBack,
        wire::StepState::RolledBack => StepState::RolledBack,
    }
}

/// The wire number of a step state.
pub fn step_state_to_wire(s: StepState) -> i32 {
    i32::from(match s {
        StepState::Pending => wire::StepState::Pending,
        StepState::Applying => wire::StepState::Applying,
        StepState::Baking => wire::StepState::Baking,
        StepState::Verified => wire::StepState::Verified,
        StepState::Failed => wire::StepState::Failed,
        StepState::Skipped => wire::StepState::Skipped,
        StepState::RollingBack => wire::StepState::RollingBack,
        StepState::RolledBack => wire::StepState::RolledBack,
    })
}

fn pause_cause(n: i32) -> Option<PauseCause> {
    match wire::PauseCause::try_from(n).unwrap_or_default() {
        wire::PauseCause::Unspecified => None,
        wire::PauseCause::Manual => Some(PauseCause::Manual),
        wire::PauseCause::Failure => Some(PauseCause::Failure),
        wire::PauseCause::Hold => Some(PauseCause::Hold),
    }
}

/// The wire number of a pause cause (none: unspecified).
pub fn pause_cause_to_wire(c: Option<PauseCause>) -> i32 {
    i32::from(match c {
        None => wire::PauseCause::Unspecified,
        Some(PauseCause::Manual) => wire::PauseCause::Manual,
        Some(PauseCause::Failure) => wire::PauseCause::Failure,
        Some(PauseCause::Hold) => wire::PauseCause::Hold,
    })
}

/// Whether a wire roll-out state is final.
pub fn is_terminal(n: i32) -> bool {
    state(n).is_some_and(|s| s.is_terminal())
}

fn ts(t: Option<&prost_types::Timestamp>) -> Option<Timestamp> {
    t.and_then(|t| from_proto_timestamp(t).ok())
}

fn dur(d: Option<&prost_types::Duration>, default: jiff::SignedDuration) -> jiff::SignedDuration {
    d.and_then(|d| spec::duration_of("", d).ok()).unwrap_or(default)
}

/// A wire step as the rules see it.
pub fn step(s: &wire::RolloutStep) -> Step {
    Step {
        region: s.region.clone(),
        wave: s.wave,
        state: step_state(s.state),
        apply_started_at: ts(s.apply_started_at.as_ref()),
        applied_at: ts(s.applied_at.as_ref()),
        bake_ends_at: ts(s.bake_ends_at.as_ref()),
        last_health_at: ts(s.last_health_at.as_ref()),
        skip_reason: s.skip_reason.clone(),
    }
}

/// Wire steps as the rules see them.
pub fn steps(steps: &[wire::RolloutStep]) -> Vec<Step> {
    steps.iter().map(step).collect()
}

/// A wire roll-out with its steps as the rules see it; `plan` is the
/// planner input of a re-plan from now (only needed while running).
/// FAILED_PRECONDITION when its state is unknown.
pub fn view(
    r: &wire::Rollout,
    wire_steps: &[wire::RolloutStep],
    plan: Result<PlanInput, String>,
) -> Result<View, Error> {
    let state = state(r.state).ok_or_else(|| {
        Error::FailedPrecondition(format!(
            "roll-out {} is in state {} ({}), which this service does not know",
            r.id,
            wire::RolloutState::short_name_of(r.state),
            r.state
        ))
    })?;
    let spec = r.spec.clone().unwrap_or_default();
    let bakes = if spec.bake_per_wave.is_empty() {
        vec![dur(spec.bake.as_ref(), DEFAULT_BAKE)]
    } else {
        spec.bake_per_wave
            .iter()
            .map(|b| dur(Some(b), DEFAULT_BAKE))
            .collect()
    };
    Ok(View {
        id: r.id.clone(),
        state,
        pause_cause: pause_cause(r.pause_cause),
        paused_reason: r.paused_reason.clone(),
        held_after_wave: r.held_after_wave,
        approved_waves: r.approved_waves.clone(),
        hold_after_waves: spec.hold_after_waves.clone(),
        policy: if spec.on_failure() == wire::OnFailure::RollbackWave {
            FailurePolicy::RollbackWave
        } else {
            FailurePolicy::Pause
        },
        earliest_start: ts(spec.earliest_start.as_ref()),
        started_at: ts(r.started_at.as_ref()),
        finished_at: ts(r.finished_at.as_ref()),
        frozen: r.frozen,
        planned_at: ts(r.plan.as_ref().and_then(|p| p.computed_at.as_ref())),
        apply_time: dur(spec.apply_time.as_ref(), DEFAULT_APPLY_TIME),
        bakes,
        concurrency: usize::try_from(spec.concurrency.max(1)).unwrap_or(1),
        wave_count: r.wave_count,
        previous_revision: r.previous_revision,
        pause_after_rollback: r.pause_after_rollback,
        rollback_regions: r.rollback_regions.clone(),
        steps: steps(wire_steps),
        plan,
    })
}

/// Writes what a command changed from `before` to `after` onto the wire
/// roll-out and its steps.
pub fn write_back(before: &View, after: &View, r: &mut wire::Rollout, wire_steps: &mut [wire::RolloutStep]) {
    if after.state != before.state {
        r.state = state_to_wire(after.state);
    }
    if after.pause_cause != before.pause_cause {
        r.pause_cause = pause_cause_to_wire(after.pause_cause);
    }
    r.paused_reason.clone_from(&after.paused_reason);
    r.held_after_wave = after.held_after_wave;
    r.approved_waves.clone_from(&after.approved_waves);
    if after.finished_at != before.finished_at {
        r.finished_at = after.finished_at.map(to_proto_timestamp);
    }
    r.pause_after_rollback = after.pause_after_rollback;
    r.rollback_regions.clone_from(&after.rollback_regions);
    for ((old, new), s) in before.steps.iter().zip(&after.steps).zip(wire_steps.iter_mut()) {
        if new.state != old.state {
            s.state = step_state_to_wire(new.state);
        }
        s.skip_reason.clone_from(&new.skip_reason);
    }
}

/// Carries out a command's effects on the roll-out's spec.
pub fn apply_effects(effects: &[Effect], r: &mut wire::Rollout) {
    let waves = usize::try_from(r.wave_count.max(1)).unwrap_or(1);
    let spec = r.spec.get_or_insert_with(Default::default);
    for effect in effects {
        match *effect {
            Effect::SetBake { from_wave, bake } => {
                let old: Vec<prost_types::Duration> = (1..=waves)
                    .map(|w| {
                        if spec.bake_per_wave.is_empty() {
                            spec.bake.unwrap_or_default()
                        } else {
                            spec.bake_per_wave[(w - 1).min(spec.bake_per_wave.len() - 1)]
                        }
                    })
                    .collect();
                spec.bake_per_wave = old
                    .into_iter()
                    .zip(1..)
                    .map(|(d, w)| {
                        if w >= from_wave {
                            spec::proto_duration(bake)
                        } else {
                            d
                        }
                    })
                    .collect();
            }
            Effect::SetConcurrency(c) => spec.concurrency = c,
        }
    }
}

impl From<Refused> for Error {
    fn from(r: Refused) -> Self {
        let message = r.to_string();
        match r.reason {
            Refusal::NoSuchRegion { .. } => Error::NotFound(message),
            Refusal::NotARegion { .. } => Error::invalid("regions", message),
            Refusal::WrongState
            | Refusal::Held { .. }
            | Refusal::NotFailed { .. }
            | Refusal::NotSkippable { .. }
            | Refusal::NotHeld
            | Refusal::HeldAfterOtherWave { .. } => Error::FailedPrecondition(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_goes_to_the_wire_and_back() {
        for s in State::ALL {
            assert_eq!(state(state_to_wire(s)), Some(s));
            assert_eq!(wire::RolloutState::short_name_of(state_to_wire(s)), s.name());
        }
        assert_eq!(state(0), None);
        assert_eq!(state(99), None);
        for s in StepState::ALL {
            assert_eq!(step_state(step_state_to_wire(s)), s);
            assert_eq!(wire::StepState::short_name_of(step_state_to_wire(s)), s.name());
        }
        assert_eq!(step_state(0), StepState::Pending);
        for c in [
            None,
            Some(PauseCause::Manual),
            Some(PauseCause::Failure),
            Some(PauseCause::Hold),
        ] {
            assert_eq!(pause_cause(pause_cause_to_wire(c)), c);
        }
    }

    #[test]
    fn a_view_carries_the_spec_with_defaults() {
        let r = wire::Rollout {
            id: "r".into(),
            state: state_to_wire(State::Running),
            spec: Some(wire::RolloutSpec {
                on_failure: wire::OnFailure::RollbackWave.into(),
                bake_per_wave: vec![spec::proto_duration(jiff::SignedDuration::from_mins(10))],
                ..Default::default()
            }),
            ..Default::default()
        };
        let v = view(&r, &[], Err(String::new())).unwrap();
        assert_eq!(v.policy, FailurePolicy::RollbackWave);
        assert_eq!(v.bake_of(3), jiff::SignedDuration::from_mins(10));
        assert_eq!((v.apply_time, v.concurrency), (DEFAULT_APPLY_TIME, 1));
        let unknown = wire::Rollout { state: 0, ..r };
        assert!(view(&unknown, &[], Err(String::new())).is_err());
    }

    #[test]
    fn resume_with_a_bake_sets_it_from_a_wave_on() {
        let mins = |m| spec::proto_duration(jiff::SignedDuration::from_mins(m));
        let mut r = wire::Rollout {
            wave_count: 3,
            spec: Some(wire::RolloutSpec {
                bake: Some(mins(60)),
                ..Default::default()
            }),
            ..Default::default()
        };
        apply_effects(
            &[
                Effect::SetBake {
                    from_wave: 2,
                    bake: jiff::SignedDuration::from_mins(5),
                },
                Effect::SetConcurrency(4),
            ],
            &mut r,
        );
        let spec = r.spec.unwrap_or_default();
        assert_eq!(spec.bake_per_wave, [mins(60), mins(5), mins(5)]);
        assert_eq!(spec.concurrency, 4);
    }
}
