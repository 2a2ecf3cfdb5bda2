//! The roll-out's rules: every (state, command) pair of [`super::handle`],
//! allowed or refused, the details of each command, every branch of
//! [`super::decide`] and both failure policies of [`super::fail`].

use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::planner::{self, PlanInput, RegionSelection};
use crate::regions::{Cloud, RegionCatalog};

const T: Timestamp = Timestamp::constant(1_800_000_000, 0);

fn at(mins: i64) -> Timestamp {
    T.checked_add(SignedDuration::from_mins(mins)).unwrap()
}

fn step(region: &str, wave: i32, state: StepState) -> Step {
    Step {
        state,
        ..Step::pending(region, wave)
    }
}

/// A running roll-out of two waves: `aws:a` (wave 1) failed after its
/// apply started, `aws:b` (wave 2) pending.
fn view(state: State, cause: Option<PauseCause>) -> View {
    let mut failed = step("aws:a", 1, StepState::Failed);
    failed.apply_started_at = Some(at(-30));
    View {
        id: "riverflow-r2".into(),
        state,
        pause_cause: cause,
        paused_reason: if cause.is_some() {
            "why".into()
        } else {
            String::new()
        },
        held_after_wave: if cause == Some(PauseCause::Hold) { 1 } else { 0 },
        approved_waves: vec![],
        hold_after_waves: vec![],
        policy: FailurePolicy::Pause,
        earliest_start: None,
        started_at: Some(at(-60)),
        finished_at: None,
        frozen: false,
        planned_at: Some(at(-1)),
        apply_time: SignedDuration::from_mins(5),
        bakes: vec![SignedDuration::from_mins(60)],
        concurrency: 1,
        wave_count: 2,
        previous_revision: 1,
        pause_after_rollback: false,
        rollback_regions: vec![],
        steps: vec![failed, step("aws:b", 2, StepState::Pending)],
        plan: Err("no plan in this test".into()),
    }
}

// ---------------------------------------------------------------- commands

type Outcome = Result<State, Refusal>;

/// A row of the table: a state, with its pause cause.
type Row = (State, Option<PauseCause>);

fn ok(state: State) -> Outcome {
    Ok(state)
}

fn no(reason: Refusal) -> Outcome {
    Err(reason)
}

/// Every command, in the column order of [`table`].
fn all_commands() -> [Command; 7] {
    [
        Command::Pause {
            reason: String::new(),
        },
        Command::Resume {
            bake: None,
            concurrency: None,
        },
        Command::RetryRegion {
            region: "aws:a".into(),
        },
        Command::SkipRegion {
            region: "aws:b".into(),
            reason: "capacity".into(),
        },
        Command::Approve {
            wave: 1,
            note: "looks good".into(),
        },
        Command::Abort {
            reason: "superseded".into(),
        },
        Command::Rollback {
            regions: vec![],
            reason: "bad config".into(),
        },
    ]
}

/// One row per (state, pause cause); one column per command of
/// [`all_commands`].
fn table() -> Vec<(Row, [Outcome; 7])> {
    use PauseCause as P;
    use Refusal as R;
    use State as S;
    let held = || R::Held { after_wave: 1 };
    let over = |s: State| {
        (
            (s, None),
            [
                no(R::WrongState),
                no(R::WrongState),
                no(R::WrongState),
                no(R::WrongState),
                no(R::NotHeld),
                no(R::WrongState),
                ok(S::RollingBack),
            ],
        )
    };
    let rolling = |s: State| {
        (
            (s, None),
            [
                no(R::WrongState),
                no(R::WrongState),
                no(R::WrongState),
                no(R::WrongState),
                no(R::NotHeld),
                no(R::WrongState),
                no(R::WrongState),
            ],
        )
    };
    vec![
        (
            (S::Pending, None),
            [
                ok(S::Paused),
                no(R::WrongState),
                no(R::WrongState),
                ok(S::Pending),
                no(R::NotHeld),
                ok(S::Aborted),
                no(R::WrongState),
            ],
        ),
        (
            (S::Running, None),
            [
                ok(S::Paused),
                no(R::WrongState),
                ok(S::Running),
                ok(S::Running),
                no(R::NotHeld),
                ok(S::Aborted),
                ok(S::RollingBack),
            ],
        ),
        (
            (S::Paused, Some(P::Manual)),
            [
                no(R::WrongState),
                ok(S::Running),
                ok(S::Paused),
                ok(S::Paused),
                no(R::NotHeld),
                ok(S::Aborted),
                ok(S::RollingBack),
            ],
        ),
        (
            (S::Paused, Some(P::Failure)),
            [
                no(R::WrongState),
                ok(S::Running),
                // The only failed region is retried: the roll-out runs again.
                ok(S::Running),
                // aws:a is still failed: skipping aws:b keeps it paused.
                ok(S::Paused),
                no(R::NotHeld),
                ok(S::Aborted),
                ok(S::RollingBack),
            ],
        ),
        (
            (S::Paused, Some(P::Hold)),
            [
                no(R::WrongState),
                no(held()),
                ok(S::Paused),
                ok(S::Paused),
                ok(S::Running),
                ok(S::Aborted),
                ok(S::RollingBack),
            ],
        ),
        over(S::Succeeded),
        over(S::Failed),
        over(S::Aborted),
        rolling(S::RollingBack),
        rolling(S::RolledBack),
    ]
}

#[test]
fn every_state_and_command() {
    let rows = table();
    for state in State::ALL {
        assert!(rows.iter().any(|((s, _), _)| *s == state), "{state} has no row");
    }
    for ((state, cause), expected) in rows {
        let v = view(state, cause);
        for (command, want) in all_commands().iter().zip(expected) {
            let got = handle(&v, command, T).map(|t| t.view.state).map_err(|r| {
                assert_eq!(
                    (r.state, r.verb, r.id.as_str()),
                    (state, command.verb(), "riverflow-r2")
                );
                r.reason
            });
            assert_eq!(got, want, "{} in {state} ({cause:?})", command.action());
        }
    }
}

#[test]
fn refusals_say_what_and_why() {
    let refused = |v: &View, c: Command| handle(v, &c, T).unwrap_err().to_string();
    let done = view(State::Succeeded, None);
    assert_eq!(
        refused(
            &done,
            Command::Pause {
                reason: String::new()
            }
        ),
        "cannot pause roll-out riverflow-r2: it is SUCCEEDED (finished)"
    );
    let running = view(State::Running, None);
    assert_eq!(
        refused(
            &running,
            Command::Resume {
                bake: None,
                concurrency: None
            }
        ),
        "cannot resume roll-out riverflow-r2: it is RUNNING"
    );
    assert_eq!(
        refused(
            &running,
            Command::RetryRegion {
                region: "aws:b".into()
            }
        ),
        "aws:b is PENDING, not FAILED: only a failed region is retried"
    );
    assert_eq!(
        refused(
            &running,
            Command::RetryRegion {
                region: "aws:zz".into()
            }
        ),
        "roll-out riverflow-r2 has no region \"aws:zz\""
    );
    let mut verified = view(State::Running, None);
    verified.steps[1].state = StepState::Verified;
    assert_eq!(
        refused(
            &verified,
            Command::SkipRegion {
                region: "aws:b".into(),
                reason: String::new()
            }
        ),
        "aws:b is VERIFIED: only a pending or failed region can be skipped"
    );
    assert_eq!(
        refused(
            &running,
            Command::Approve {
                wave: 1,
                note: String::new()
            }
        ),
        "roll-out riverflow-r2 is RUNNING and not held: nothing to approve"
    );
    let held = view(State::Paused, Some(PauseCause::Hold));
    assert_eq!(
        refused(
            &held,
            Command::Approve {
                wave: 2,
                note: String::new()
            }
        ),
        "roll-out riverflow-r2 is held after wave 1, not wave 2"
    );
    assert_eq!(
        refused(
            &held,
            Command::Resume {
                bake: None,
                concurrency: None
            }
        ),
        "roll-out riverflow-r2 is held after wave 1: release it with Approve"
    );
    assert_eq!(
        refused(
            &running,
            Command::Rollback {
                regions: vec!["aws:a".into(), "gcp:x".into()],
                reason: String::new()
            }
        ),
        "\"gcp:x\" is not a region of roll-out riverflow-r2"
    );
}

#[test]
fn pause_records_the_reason_or_a_default() {
    let v = view(State::Running, None);
    let t = handle(
        &v,
        &Command::Pause {
            reason: String::new(),
        },
        T,
    )
    .unwrap();
    assert_eq!(t.view.pause_cause, Some(PauseCause::Manual));
    assert_eq!(t.view.paused_reason, "paused by request");
    assert_eq!(t.summary, "paused: paused by request");
    let t = handle(
        &v,
        &Command::Pause {
            reason: "change freeze".into(),
        },
        T,
    )
    .unwrap();
    assert_eq!(t.view.paused_reason, "change freeze");
}

#[test]
fn resume_retries_failed_and_rolled_back_regions_with_new_settings() {
    let mut v = view(State::Paused, Some(PauseCause::Failure));
    v.steps.push(step("aws:c", 2, StepState::RolledBack));
    let t = handle(
        &v,
        &Command::Resume {
            bake: Some(SignedDuration::from_mins(30)),
            concurrency: Some(3),
        },
        T,
    )
    .unwrap();
    let states: Vec<StepState> = t.view.steps.iter().map(|s| s.state).collect();
    assert_eq!(states, [StepState::Pending; 3]);
    assert_eq!((t.view.pause_cause, t.view.paused_reason.as_str()), (None, ""));
    assert_eq!(
        t.effects,
        [
            Effect::SetBake {
                from_wave: 1,
                bake: SignedDuration::from_mins(30)
            },
            Effect::SetConcurrency(3)
        ]
    );
    assert_eq!(t.summary, "resumed; 2 failed regions to retry");
    let t = handle(
        &v,
        &Command::Resume {
            bake: None,
            concurrency: Some(0),
        },
        T,
    )
    .unwrap();
    assert!(t.effects.is_empty(), "concurrency 0 keeps the old one");
}

#[test]
fn retry_and_skip_release_a_failure_pause_only_when_no_region_failed() {
    let v = view(State::Paused, Some(PauseCause::Failure));
    let t = handle(
        &v,
        &Command::RetryRegion {
            region: "aws:a".into(),
        },
        T,
    )
    .unwrap();
    assert_eq!(t.view.steps[0].state, StepState::Pending);
    assert_eq!((t.view.state, t.view.pause_cause), (State::Running, None));
    assert_eq!(t.summary, "retrying aws:a");

    let skip = |region: &str| Command::SkipRegion {
        region: region.into(),
        reason: "no capacity".into(),
    };
    let t = handle(&v, &skip("aws:a"), T).unwrap();
    assert_eq!(
        (t.view.steps[0].state, t.view.steps[0].skip_reason.as_str()),
        (StepState::Skipped, "no capacity")
    );
    assert_eq!((t.view.state, t.view.pause_cause), (State::Running, None));
    assert_eq!(t.summary, "skipped aws:a: no capacity");

    // A running roll-out with a stale failure cause: skip leaves it alone,
    // retry clears the cause.
    let stale = view(State::Running, Some(PauseCause::Failure));
    let t = handle(&stale, &skip("aws:a"), T).unwrap();
    assert_eq!(t.view.pause_cause, Some(PauseCause::Failure));
    let t = handle(
        &stale,
        &Command::RetryRegion {
            region: "aws:a".into(),
        },
        T,
    )
    .unwrap();
    assert_eq!(t.view.pause_cause, None);
}

#[test]
fn approve_releases_the_hold_once() {
    let v = view(State::Paused, Some(PauseCause::Hold));
    let t = handle(
        &v,
        &Command::Approve {
            wave: 1,
            note: "ok".into(),
        },
        T,
    )
    .unwrap();
    assert_eq!(t.view.approved_waves, [1]);
    assert_eq!(
        (t.view.state, t.view.pause_cause, t.view.held_after_wave),
        (State::Running, None, 0)
    );
    assert_eq!(t.summary, "approved wave 1: ok");
}

#[test]
fn abort_and_rollback_record_when_and_why() {
    let v = view(State::Running, None);
    let t = handle(
        &v,
        &Command::Abort {
            reason: "superseded".into(),
        },
        T,
    )
    .unwrap();
    assert_eq!(
        (t.view.finished_at, t.view.paused_reason.as_str()),
        (Some(T), "superseded")
    );
    assert_eq!(t.summary, "aborted: superseded");

    let mut done = view(State::Succeeded, None);
    done.finished_at = Some(at(-5));
    done.pause_after_rollback = true;
    let t = handle(
        &done,
        &Command::Rollback {
            regions: vec!["aws:a".into()],
            reason: "bad config".into(),
        },
        T,
    )
    .unwrap();
    assert_eq!(t.view.rollback_regions, ["aws:a"]);
    assert_eq!((t.view.finished_at, t.view.pause_after_rollback), (None, false));
    assert_eq!(t.summary, "rolling back to r1 in aws:a: bad config");
    let t = handle(
        &done,
        &Command::Rollback {
            regions: vec![],
            reason: "bad".into(),
        },
        T,
    )
    .unwrap();
    assert_eq!(t.summary, "rolling back to r1: bad");
}

// ---------------------------------------------------------------- decide

/// A running roll-out of `steps`, started, with nothing recorded yet.
fn running(steps: Vec<Step>) -> View {
    View {
        steps,
        ..view(State::Running, None)
    }
}

fn applying(region: &str, wave: i32, since: i64, acknowledged: bool) -> Step {
    Step {
        apply_started_at: Some(at(since)),
        applied_at: acknowledged.then(|| at(since)),
        ..step(region, wave, StepState::Applying)
    }
}

fn baking(region: &str, wave: i32, until: i64, last_check: Option<i64>) -> Step {
    Step {
        apply_started_at: Some(at(until - 65)),
        applied_at: Some(at(until - 65)),
        bake_ends_at: Some(at(until)),
        last_health_at: last_check.map(at),
        ..step(region, wave, StepState::Baking)
    }
}

#[test]
fn a_finished_roll_out_needs_no_owner() {
    for state in [State::Succeeded, State::Failed, State::Aborted, State::RolledBack] {
        assert_eq!(decide(&view(state, None), T, false), Decision::Done, "{state}");
        assert!(!state.needs_owner());
    }
    for state in [State::Pending, State::Running, State::Paused, State::RollingBack] {
        assert!(state.needs_owner(), "{state}");
    }
}

#[test]
fn a_pending_roll_out_waits_for_its_earliest_start() {
    let mut v = view(State::Pending, None);
    v.earliest_start = Some(at(10));
    assert_eq!(decide(&v, T, false), Decision::WaitUntil(at(10)));
    assert_eq!(decide(&v, at(10), false), Decision::StartRunning);
    v.earliest_start = None;
    assert_eq!(decide(&v, T, false), Decision::StartRunning);
}

#[test]
fn the_first_decision_of_a_running_roll_out_marks_it_started() {
    let mut v = running(vec![step("aws:a", 1, StepState::Pending)]);
    v.started_at = None;
    assert_eq!(decide(&v, T, false), Decision::MarkStarted);
    v.state = State::Paused;
    assert_ne!(decide(&v, T, false), Decision::MarkStarted, "only once running");
}

#[test]
fn unacknowledged_applies_are_issued_first() {
    let v = running(vec![
        applying("aws:a", 1, -10, false),
        applying("aws:b", 1, -1, true),
        applying("aws:c", 1, -1, false),
    ]);
    assert_eq!(decide(&v, T, false), Decision::IssueApplies(vec![0, 2]));
}

#[test]
fn the_health_gate_of_a_finished_apply_comes_before_new_applies() {
    let v = running(vec![
        applying("aws:a", 1, -10, true),
        baking("aws:b", 1, 30, Some(-1)),
        baking("aws:c", 1, 30, None),
        step("aws:d", 1, StepState::Pending),
    ]);
    // The plan input is missing: had the round not come first, this
    // would be CannotPlan.
    assert_eq!(
        decide(&v, T, false),
        Decision::HealthRound(vec![
            Check::Gate {
                step: 0,
                bake_ends_at: at(-10 + 60)
            },
            Check::Bake { step: 2 },
        ])
    );
}

#[test]
fn bakes_are_checked_every_five_minutes_and_at_their_end() {
    let v = running(vec![
        baking("aws:a", 1, 30, Some(-5)),
        baking("aws:b", 1, 0, Some(-1)),
        baking("aws:c", 1, 30, Some(-1)),
    ]);
    let mut frozen = v.clone();
    frozen.frozen = true;
    // Frozen, so no applies are asked of the (missing) plan.
    assert_eq!(
        decide(&frozen, T, true),
        Decision::HealthRound(vec![Check::Bake { step: 0 }, Check::Verify { step: 1 }])
    );
    // Nothing due: wait for the next check of aws:c.
    let v = running(vec![baking("aws:c", 1, 30, Some(-1))]);
    let mut frozen = v;
    frozen.frozen = true;
    assert_eq!(decide(&frozen, T, true), Decision::WaitUntil(at(4)));
}

#[test]
fn an_acknowledged_apply_is_gated_at_once_not_after_its_planned_apply_time() {
    // Acknowledged 2 minutes into a 5-minute planned apply: its bake
    // starts now, from the acknowledgement (issue 18: waiting out the
    // estimate cost a second per wave at `--apply-time 1s`).
    let mut v = running(vec![applying("aws:a", 1, -2, true)]);
    v.frozen = true;
    assert_eq!(
        decide(&v, T, true),
        Decision::HealthRound(vec![Check::Gate {
            step: 0,
            bake_ends_at: at(-2 + 60)
        }])
    );
    // With no bake the gate's region is verified by the next round.
    v.bakes = vec![SignedDuration::ZERO];
    v.steps[0] = Step {
        state: StepState::Baking,
        bake_ends_at: Some(at(-2)),
        last_health_at: Some(T),
        ..v.steps[0].clone()
    };
    assert_eq!(
        decide(&v, T, true),
        Decision::HealthRound(vec![Check::Verify { step: 0 }])
    );
}

#[test]
fn every_region_verified_or_skipped_finishes() {
    let v = running(vec![
        step("aws:a", 1, StepState::Verified),
        step("aws:b", 2, StepState::Skipped),
    ]);
    assert_eq!(decide(&v, T, false), Decision::Finish);
    let mut paused = v;
    paused.state = State::Paused;
    assert_eq!(decide(&paused, T, false), Decision::Finish);
}

#[test]
fn a_paused_roll_out_re_plans_every_five_minutes() {
    let mut v = view(State::Paused, Some(PauseCause::Manual));
    v.planned_at = Some(at(-5));
    assert_eq!(decide(&v, T, false), Decision::Replan);
    v.planned_at = None;
    assert_eq!(decide(&v, T, false), Decision::Replan);
    v.planned_at = Some(at(-1));
    assert_eq!(decide(&v, T, false), Decision::WaitUntil(at(4)));
}

#[test]
fn a_wave_with_a_hold_waits_for_approve() {
    let mut v = running(vec![
        step("aws:a", 1, StepState::Verified),
        step("aws:b", 2, StepState::Pending),
    ]);
    v.hold_after_waves = vec![1];
    assert!(v.held(2));
    assert_eq!(decide(&v, T, false), Decision::Hold { after_wave: 1 });
    v.approved_waves = vec![1];
    assert!(!v.held(2));
    let mut touched = v.clone();
    touched.approved_waves.clear();
    touched.steps[1].state = StepState::Failed;
    assert!(!touched.held(2), "a wave already under way is not held");
}

#[test]
fn the_freeze_is_recorded_once_and_its_lifting_too() {
    let mut v = running(vec![step("aws:a", 1, StepState::Pending)]);
    assert_eq!(decide(&v, T, true), Decision::Freeze);
    v.frozen = true;
    assert_eq!(decide(&v, T, true), Decision::WaitUntil(at(5)));
    assert_eq!(
        decide(&v, T, false),
        Decision::CannotPlan("no plan in this test".into())
    );
}

/// Two AWS regions with their plan: the canary in wave 1, the other in
/// wave 2.
fn planned(now: Timestamp) -> View {
    let mut input = PlanInput::launch(RegionCatalog::builtin(), &[Cloud::Aws], at(60 * 24 * 30), now);
    input.regions = RegionSelection::Only(vec!["aws:ap-northeast-1".into(), "aws:us-east-1".into()]);
    input.ga = None;
    input.deadline = Some(at(60 * 24 * 300));
    input.blackouts = Default::default();
    input.concurrency = 1;
    let plan = planner::plan(&input).unwrap();
    let steps = plan
        .regions
        .iter()
        .map(|p| step(&p.region, i32::try_from(p.wave).unwrap(), StepState::Pending))
        .collect();
    View {
        plan: Ok(input),
        ..running(steps)
    }
}

#[test]
fn the_re_plan_starts_the_applies_of_the_current_wave() {
    let v = planned(T);
    assert_eq!((v.steps[0].wave, v.steps[1].wave), (1, 2));
    assert_eq!(decide(&v, T, false), Decision::StartApplies(vec![0]));
    // Frozen: no apply starts, the freeze is recorded.
    assert_eq!(decide(&v, T, true), Decision::Freeze);
}

#[test]
fn the_concurrency_limit_holds_applies_back() {
    let mut v = planned(T);
    v.steps[1].wave = 1;
    v.concurrency = 1;
    // Two pending regions of one wave, one at a time: one starts (the
    // re-plan starts the other later).
    assert_eq!(decide(&v, T, false), Decision::StartApplies(vec![0]));
}

#[test]
fn a_planned_start_later_wakes_the_owner_then() {
    let mut v = planned(T);
    v.plan
        .as_mut()
        .unwrap()
        .blackouts
        .global
        .push(planner::Period::new(at(-10), at(30)));
    assert_eq!(decide(&v, T, false), Decision::WaitUntil(at(30)));
}

#[test]
fn the_recorded_freeze_is_lifted_when_the_freeze_is() {
    let mut v = planned(T);
    v.steps[0].state = StepState::Verified;
    v.hold_after_waves = vec![];
    v.frozen = true;
    // The re-plan may start wave 2 now; with the freeze lifted it does.
    assert_eq!(decide(&v, T, false), Decision::StartApplies(vec![1]));
    let mut idle = v.clone();
    idle.steps[1] = baking(&idle.steps[1].region.clone(), 2, 30, Some(-1));
    assert_eq!(decide(&idle, T, false), Decision::Unfreeze);
    idle.frozen = false;
    assert_eq!(decide(&idle, T, false), Decision::WaitUntil(at(4)));
}

// ---------------------------------------------------------------- rollback

fn rolling_back(steps: Vec<Step>) -> View {
    View {
        steps,
        ..view(State::RollingBack, None)
    }
}

#[test]
fn a_rollback_restores_the_newest_applied_region_first() {
    let v = rolling_back(vec![
        baking("aws:a", 1, 10, None),
        applying("aws:b", 1, -1, true),
        step("aws:c", 2, StepState::Pending),
    ]);
    assert_eq!(decide(&v, T, false), Decision::BeginRollback(1));
    let mut v = v;
    v.steps[0].state = StepState::RollingBack;
    assert_eq!(
        decide(&v, T, false),
        Decision::Restore(0),
        "the one already rolling back first"
    );
}

#[test]
fn a_rollback_covers_its_regions_and_what_was_touched() {
    let mut failed_early = step("aws:a", 1, StepState::Failed);
    let mut failed_late = step("aws:b", 1, StepState::Failed);
    failed_late.apply_started_at = Some(at(-1));
    let mut v = rolling_back(vec![failed_early.clone(), failed_late.clone()]);
    assert!(!needs_rollback(&v, &failed_early), "never applied");
    assert!(needs_rollback(&v, &failed_late));
    for s in StepState::ALL {
        failed_early.state = s;
        let touched = matches!(
            s,
            StepState::Applying | StepState::Baking | StepState::Verified | StepState::RollingBack
        );
        assert_eq!(needs_rollback(&v, &failed_early), touched, "{s}");
        assert_eq!(failed_early.touched(), touched, "{s}");
    }
    v.rollback_regions = vec!["aws:a".into()];
    assert!(!needs_rollback(&v, &failed_late), "out of scope");
}

#[test]
fn a_rollback_ends_rolled_back_or_paused_after_a_wave() {
    let mut v = rolling_back(vec![step("aws:a", 1, StepState::RolledBack)]);
    assert_eq!(decide(&v, T, false), Decision::RolledBack);
    v.pause_after_rollback = true;
    assert_eq!(decide(&v, T, false), Decision::WaveRolledBack);
}

// ---------------------------------------------------------------- failure

#[test]
fn a_failed_region_pauses_the_roll_out_by_default() {
    let v = running(vec![
        applying("aws:a", 1, -1, true),
        applying("aws:b", 1, -1, true),
        step("aws:c", 2, StepState::Pending),
    ]);
    let f = fail(&v, "riverflow", 1, "health gate: 500");
    assert_eq!(
        f,
        Failure {
            state: State::Paused,
            pause_cause: PauseCause::Failure,
            rollback_wave: None,
            reason: "riverflow failed in aws:b (wave 1): health gate: 500".into(),
            event: "riverflow failed in aws:b (wave 1): health gate: 500; roll-out paused".into(),
        }
    );
}

#[test]
fn a_failed_region_rolls_its_wave_back_under_that_policy() {
    let mut v = running(vec![
        applying("aws:a", 1, -1, true),
        applying("aws:b", 1, -1, true),
        step("aws:c", 2, StepState::Pending),
    ]);
    v.policy = FailurePolicy::RollbackWave;
    let f = fail(&v, "riverflow", 0, "apply: boom");
    assert_eq!(f.state, State::RollingBack);
    assert_eq!(f.rollback_wave, Some(vec!["aws:a".into(), "aws:b".into()]));
    assert_eq!(
        f.event,
        "riverflow failed in aws:a (wave 1): apply: boom; roll-out rolling the wave back"
    );
}

#[test]
fn names_and_terminal_states() {
    let names: Vec<&str> = State::ALL.iter().map(State::name).collect();
    assert_eq!(
        names,
        [
            "PENDING",
            "RUNNING",
            "PAUSED",
            "SUCCEEDED",
            "FAILED",
            "ABORTED",
            "ROLLING_BACK",
            "ROLLED_BACK"
        ]
    );
    let terminal: Vec<State> = State::ALL.into_iter().filter(State::is_terminal).collect();
    assert_eq!(
        terminal,
        [State::Succeeded, State::Failed, State::Aborted, State::RolledBack]
    );
    let done: Vec<StepState> = StepState::ALL.into_iter().filter(StepState::is_done).collect();
    assert_eq!(done, [StepState::Verified, StepState::Skipped]);
    let v = view(State::Running, None);
    assert_eq!(v.bake_of(1), SignedDuration::from_mins(60));
    assert_eq!(
        v.bake_of(7),
        SignedDuration::from_mins(60),
        "the last bake repeats"
    );
    assert_eq!(v.bake_of(0), SignedDuration::from_mins(60));
}

#[test]
fn progress_tells_the_planner_where_regions_stand() {
    let mut v = running(vec![
        applying("aws:a", 1, -1, true),
        baking("aws:b", 1, 30, None),
        step("aws:c", 2, StepState::RolledBack),
        step("aws:d", 2, StepState::Failed),
    ]);
    let p = v.progress();
    use planner::RegionState as R;
    assert_eq!(p.regions["aws:a"], R::Applying { since: at(-1) });
    assert_eq!(p.regions["aws:b"], R::Baking { until: at(30) });
    assert_eq!(p.regions["aws:c"], R::Pending);
    assert_eq!(p.regions["aws:d"], R::Failed);
    assert_eq!(p.paused_since, None);
    v.state = State::Paused;
    assert_eq!(v.progress().paused_since, Some(at(-1)));
}

#[test]
fn a_re_plan_past_the_deadline_is_at_risk_and_crossed_once() {
    let v = planned(T);
    let mut input = v.plan.clone().unwrap();
    let on_plan = planner::replan(&input, &v.progress(), T).unwrap();
    assert_eq!(deadline(&on_plan, true, false), Deadline::OnPlan);
    assert_eq!(deadline(&on_plan, true, true), Deadline::OnPlan, "back on plan");
    input.deadline = Some(at(10));
    let late = planner::replan(&input, &v.progress(), T).unwrap();
    let late_by = late.at_risk.as_ref().unwrap().late_by;
    assert!(late_by.is_positive());
    assert_eq!(
        deadline(&late, true, false),
        Deadline::AtRisk {
            late_by,
            crossed: true
        }
    );
    assert_eq!(
        deadline(&late, true, true),
        Deadline::AtRisk {
            late_by,
            crossed: false
        }
    );
    assert_eq!(
        deadline(&late, false, false),
        Deadline::OnPlan,
        "only a real deadline"
    );
}

#[test]
fn only_a_live_roll_out_is_re_planned() {
    let replans: Vec<State> = State::ALL.into_iter().filter(State::replans).collect();
    assert_eq!(replans, [State::Pending, State::Running, State::Paused]);
}
