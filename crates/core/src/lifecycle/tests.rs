//! The full transition table of [`super::step`]: every (state, event) pair,
//! allowed or refused, for both tile kinds.

use super::*;

type Outcome = Result<(State, Vec<Effect>), Refusal>;

const GA: Timestamp = Timestamp::constant(1_800_000_000, 0);

fn ok(state: State, effects: Vec<Effect>) -> Outcome {
    Ok((state, effects))
}

fn no(reason: Refusal) -> Outcome {
    Err(reason)
}

fn ga(m: Maintenance) -> State {
    State::Ga { maintenance: m }
}

/// Every state a tile can be in.
fn all_states() -> Vec<State> {
    vec![
        State::Draft,
        State::Validating,
        State::SignedOff,
        State::Scheduled,
        State::RollingOut,
        State::RolledOut,
        ga(Maintenance::Idle),
        ga(Maintenance::Open),
        ga(Maintenance::SignedOff),
        ga(Maintenance::RollingOut),
        State::Withdrawn,
    ]
}

/// Every event, in the column order of [`partner_table`].
fn all_events() -> [Event; 11] {
    [
        Event::StartValidation {
            workspace: "ws-2".into(),
        },
        Event::AllSignedOff,
        Event::SignOffWithdrawn,
        Event::GaDateSet { ga: GA },
        Event::GaDateCleared,
        Event::RolloutStarted,
        Event::RolloutCompleted,
        Event::RolloutRolledBack,
        Event::GaReached,
        Event::NewRevision,
        Event::Withdraw,
    ]
}

/// One row per state; one column per event of [`all_events`].
fn partner_table() -> Vec<(State, [Outcome; 11])> {
    use Effect as Fx;
    use Maintenance as M;
    use Refusal as R;
    use State as S;
    let show = || Fx::ShowInTestWorkspace {
        workspace: "ws-2".into(),
    };
    let open = |maintenance| Fx::OpenRevision { maintenance };
    let arm = || Fx::ArmGaTimer { at: GA };
    vec![
        (
            S::Draft,
            [
                ok(S::Validating, vec![show()]),
                no(R::NotValidating),
                ok(S::Draft, vec![]),
                no(R::NotValidating),
                no(R::NotScheduled),
                no(R::NotScheduled),
                no(R::NoRolloutInProgress),
                no(R::NoRolloutInProgress),
                no(R::NotScheduled),
                ok(S::Draft, vec![open(false)]),
                ok(S::Withdrawn, vec![]),
            ],
        ),
        (
            S::Validating,
            [
                ok(S::Validating, vec![Fx::HideFromTestWorkspace, show()]),
                ok(S::SignedOff, vec![]),
                ok(S::Validating, vec![]),
                no(R::NotSignedOff),
                no(R::NotScheduled),
                no(R::NotScheduled),
                no(R::NoRolloutInProgress),
                no(R::NoRolloutInProgress),
                no(R::NotScheduled),
                ok(S::Validating, vec![open(false), Fx::RefreshTestWorkspace]),
                ok(S::Withdrawn, vec![Fx::HideFromTestWorkspace]),
            ],
        ),
        (
            S::SignedOff,
            [
                no(R::ValidationOver),
                no(R::AlreadySignedOff),
                ok(S::Validating, vec![]),
                ok(S::Scheduled, vec![arm()]),
                no(R::NotScheduled),
                no(R::NotScheduled),
                no(R::NoRolloutInProgress),
                no(R::NoRolloutInProgress),
                no(R::NotScheduled),
                ok(S::Validating, vec![open(false), Fx::RefreshTestWorkspace]),
                ok(S::Withdrawn, vec![Fx::HideFromTestWorkspace]),
            ],
        ),
        (
            S::Scheduled,
            [
                no(R::ValidationOver),
                no(R::AlreadySignedOff),
                ok(S::Validating, vec![Fx::CancelGaTimer, Fx::ClearGaDate]),
                ok(S::Scheduled, vec![arm()]),
                ok(S::SignedOff, vec![Fx::CancelGaTimer, Fx::ClearGaDate]),
                ok(S::RollingOut, vec![]),
                no(R::NoRolloutInProgress),
                no(R::NoRolloutInProgress),
                no(R::NotRolledOut),
                ok(
                    S::Validating,
                    vec![
                        open(false),
                        Fx::CancelGaTimer,
                        Fx::ClearGaDate,
                        Fx::RefreshTestWorkspace,
                    ],
                ),
                ok(S::Withdrawn, vec![Fx::CancelGaTimer, Fx::HideFromTestWorkspace]),
            ],
        ),
        (
            S::RollingOut,
            [
                no(R::LiveInRegions),
                no(R::AlreadySignedOff),
                no(R::LiveInRegions),
                ok(S::RollingOut, vec![arm()]),
                no(R::LiveInRegions),
                no(R::RolloutInProgress),
                ok(S::RolledOut, vec![]),
                ok(S::Scheduled, vec![]),
                no(R::NotRolledOut),
                no(R::LiveInRegions),
                ok(
                    S::Withdrawn,
                    vec![
                        Fx::AbortRollout,
                        Fx::CancelGaTimer,
                        Fx::HideFromTestWorkspace,
                        Fx::StartRemovalRollout,
                    ],
                ),
            ],
        ),
        (
            S::RolledOut,
            [
                no(R::LiveInRegions),
                no(R::AlreadySignedOff),
                no(R::LiveInRegions),
                ok(S::RolledOut, vec![arm()]),
                no(R::LiveInRegions),
                no(R::AlreadyRolledOut),
                no(R::AlreadyRolledOut),
                ok(S::Scheduled, vec![]),
                ok(ga(M::Idle), vec![Fx::AnnounceGa]),
                no(R::LiveInRegions),
                ok(
                    S::Withdrawn,
                    vec![
                        Fx::CancelGaTimer,
                        Fx::HideFromTestWorkspace,
                        Fx::StartRemovalRollout,
                    ],
                ),
            ],
        ),
        (
            ga(M::Idle),
            [
                no(R::AlreadyGa),
                no(R::NoMaintenanceRevision),
                no(R::NoMaintenanceRevision),
                no(R::AlreadyGa),
                no(R::AlreadyGa),
                no(R::NoMaintenanceRevision),
                no(R::NoRolloutInProgress),
                no(R::NoRolloutInProgress),
                no(R::AlreadyGa),
                ok(ga(M::Open), vec![open(true)]),
                ok(S::Withdrawn, vec![Fx::StartRemovalRollout]),
            ],
        ),
        (
            ga(M::Open),
            [
                no(R::AlreadyGa),
                ok(ga(M::SignedOff), vec![]),
                ok(ga(M::Open), vec![]),
                no(R::AlreadyGa),
                no(R::AlreadyGa),
                no(R::MaintenanceNotSignedOff),
                no(R::NoRolloutInProgress),
                no(R::NoRolloutInProgress),
                no(R::AlreadyGa),
                ok(ga(M::Open), vec![open(true)]),
                ok(S::Withdrawn, vec![Fx::StartRemovalRollout]),
            ],
        ),
        (
            ga(M::SignedOff),
            [
                no(R::AlreadyGa),
                no(R::AlreadySignedOff),
                ok(ga(M::Open), vec![]),
                no(R::AlreadyGa),
                no(R::AlreadyGa),
                ok(ga(M::RollingOut), vec![]),
                no(R::NoRolloutInProgress),
                no(R::NoRolloutInProgress),
                no(R::AlreadyGa),
                ok(ga(M::Open), vec![open(true)]),
                ok(S::Withdrawn, vec![Fx::StartRemovalRollout]),
            ],
        ),
        (
            ga(M::RollingOut),
            [
                no(R::AlreadyGa),
                no(R::AlreadySignedOff),
                no(R::RolloutInProgress),
                no(R::AlreadyGa),
                no(R::AlreadyGa),
                no(R::RolloutInProgress),
                ok(ga(M::Idle), vec![]),
                ok(ga(M::SignedOff), vec![]),
                no(R::AlreadyGa),
                no(R::RolloutInProgress),
                ok(S::Withdrawn, vec![Fx::AbortRollout, Fx::StartRemovalRollout]),
            ],
        ),
        (
            S::Withdrawn,
            [
                no(R::Withdrawn),
                no(R::Withdrawn),
                no(R::Withdrawn),
                no(R::Withdrawn),
                no(R::Withdrawn),
                no(R::Withdrawn),
                no(R::Withdrawn),
                no(R::Withdrawn),
                no(R::Withdrawn),
                no(R::Withdrawn),
                no(R::Withdrawn),
            ],
        ),
    ]
}

fn run(kind: TileKind, state: State, event: &Event) -> Outcome {
    match step(kind, state, event) {
        Ok(t) => Ok(t),
        Err(e) => {
            assert_eq!(
                (e.state, e.event, e.kind),
                (state, event.name(), kind),
                "error names its inputs"
            );
            Err(e.reason)
        }
    }
}

#[test]
fn the_table_covers_every_state_once() {
    let table = partner_table();
    let states: Vec<State> = table.iter().map(|(s, _)| *s).collect();
    assert_eq!(states, all_states());
}

#[test]
fn partner_tile_transitions_match_the_table() {
    let mut allowed = 0;
    let mut refused = 0;
    for (state, row) in partner_table() {
        for (event, want) in all_events().iter().zip(row) {
            let got = run(TileKind::Partner, state, event);
            assert_eq!(got, want, "{state} + {event}");
            if want.is_ok() {
                allowed += 1;
            } else {
                refused += 1;
            }
        }
    }
    assert_eq!(allowed + refused, 11 * 11);
    assert_eq!(allowed, 40, "allowed transitions");
}

#[test]
fn self_test_tile_refuses_every_launch_event_and_otherwise_matches() {
    for (state, row) in partner_table() {
        for (event, partner) in all_events().iter().zip(row) {
            let got = run(TileKind::SelfTest, state, event);
            let want = if state == State::Withdrawn {
                Err(Refusal::Withdrawn)
            } else if event.is_launch_event() {
                Err(Refusal::SelfTest)
            } else {
                partner
            };
            assert_eq!(got, want, "self-test {state} + {event}");
        }
    }
}

#[test]
fn self_test_tile_lives_in_its_workspace() {
    let kind = TileKind::SelfTest;
    let ev = Event::StartValidation {
        workspace: "ws-1".into(),
    };
    let (s, fx) = step(kind, State::Draft, &ev).unwrap();
    assert_eq!(s, State::Validating);
    assert_eq!(
        fx,
        vec![Effect::ShowInTestWorkspace {
            workspace: "ws-1".into()
        }]
    );
    for e in [
        Event::AllSignedOff,
        Event::GaDateSet { ga: GA },
        Event::RolloutStarted,
    ] {
        let err = step(kind, s, &e).unwrap_err();
        assert_eq!(err.reason, Refusal::SelfTest);
    }
    assert_eq!(step(kind, s, &Event::Withdraw).unwrap().0, State::Withdrawn);
}

#[test]
fn the_launch_path_and_a_maintenance_revision() {
    let k = TileKind::Partner;
    let path = [
        (
            Event::StartValidation {
                workspace: "ws".into(),
            },
            State::Validating,
        ),
        (Event::AllSignedOff, State::SignedOff),
        (Event::GaDateSet { ga: GA }, State::Scheduled),
        (Event::RolloutStarted, State::RollingOut),
        (Event::RolloutCompleted, State::RolledOut),
        (Event::GaReached, ga(Maintenance::Idle)),
        (Event::NewRevision, ga(Maintenance::Open)),
        (Event::AllSignedOff, ga(Maintenance::SignedOff)),
        (Event::RolloutStarted, ga(Maintenance::RollingOut)),
        (Event::RolloutCompleted, ga(Maintenance::Idle)),
        (Event::Withdraw, State::Withdrawn),
    ];
    let mut s = State::Draft;
    for (e, want) in path {
        s = step(k, s, &e).unwrap().0;
        assert_eq!(s, want, "after {e}");
    }
}

#[test]
fn errors_read_well() {
    let err = step(TileKind::Partner, State::Scheduled, &Event::GaReached).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot make the tile GA while the partner tile is SCHEDULED: the roll-out has not completed"
    );
    let err = step(TileKind::SelfTest, State::Validating, &Event::RolloutStarted).unwrap_err();
    assert!(err.to_string().contains("never rolled out"), "{err}");
}
