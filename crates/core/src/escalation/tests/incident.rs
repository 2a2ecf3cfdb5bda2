//! Incidents: every (state, command) pair, the refusals' messages, SOP
//! steps and resolution, mitigations and their effects, dedup and routing,
//! re-rating near the GA deadline.

use jiff::{SignedDuration, Timestamp};

use super::super::*;
use super::ts;

const T0: &str = "2026-11-05T03:00:00Z";

fn at(mins: i64) -> Timestamp {
    ts(T0).checked_add(SignedDuration::from_mins(mins)).unwrap()
}

fn source() -> Source {
    Source::RolloutFailure {
        rollout: "ro-7".into(),
        wave: 4,
    }
}

fn new_incident(severity: Severity, deadline: Option<Timestamp>) -> NewIncident {
    NewIncident {
        id: "INC-42".into(),
        title: "riverflow: health gate failed in gcp:me-central2 (wave 4)".into(),
        tile: "riverflow".into(),
        regions: vec!["gcp:me-central2".into(), "aws:us-east-1".into()],
        severity,
        source: source(),
        side: Side::Partner,
        partner: Some("riverflow-inc".into()),
        rollout: None,
        deadline,
        policy: "default".into(),
        linked_to: None,
    }
}

fn opened(severity: Severity) -> Incident {
    let sops = default_sops();
    let sop = sop_for(&sops, SourceKind::RolloutFailure);
    let t = open(new_incident(severity, None), sop, at(0), SYSTEM_ACTOR).unwrap();
    assert_eq!(t.effects, [Effect::Escalate]);
    t.incident
}

fn apply(i: &Incident, c: Command, mins: i64, actor: &str) -> Incident {
    handle(i, &c, at(mins), actor).unwrap().incident
}

/// A SEV3 incident driven into `state` by real commands.
fn in_state(state: State) -> Incident {
    let i = opened(Severity::Sev3);
    match state {
        State::Triggered => i,
        State::Acknowledged => apply(&i, Command::Acknowledge, 1, "alice"),
        State::Mitigated => apply(&in_state(State::Acknowledged), mitigate_pause(), 2, "alice"),
        State::Resolved => apply(
            &in_state(State::Mitigated),
            Command::Resolve {
                note: "partner deployed fix".into(),
            },
            3,
            "alice",
        ),
    }
}

fn mitigate_pause() -> Command {
    Command::Mitigate {
        action: Action::PauseRollout,
        regions: vec![],
        note: "stop the waves".into(),
    }
}

fn event() -> Event {
    Event {
        source: source(),
        tile: "riverflow".into(),
        regions: vec!["azure:westeurope".into()],
        severity: Severity::Sev3,
        message: "health gate failed again".into(),
    }
}

fn refusal_name(r: &Refusal) -> &'static str {
    match r {
        Refusal::Resolved { .. } => "Resolved",
        Refusal::AlreadyAcknowledged { .. } => "AlreadyAcknowledged",
        Refusal::NotResolved => "NotResolved",
        Refusal::Empty { .. } => "Empty",
        Refusal::NoSuchStep { .. } => "NoSuchStep",
        Refusal::StepClosed { .. } => "StepClosed",
        Refusal::NoteRequired { .. } => "NoteRequired",
        Refusal::OpenSteps { .. } => "OpenSteps",
        Refusal::NoRollout => "NoRollout",
        Refusal::UnknownRegions { .. } => "UnknownRegions",
        Refusal::NoRegions => "NoRegions",
        Refusal::KeyMismatch { .. } => "KeyMismatch",
    }
}

#[test]
fn every_state_and_command() {
    use State::*;
    let commands: Vec<(&str, Command)> = vec![
        ("ack", Command::Acknowledge),
        (
            "note",
            Command::AddNote {
                note: "partner /connect returns 500".into(),
            },
        ),
        (
            "step",
            Command::CompleteStep {
                number: 2,
                outcome: StepOutcome::Done { note: None },
            },
        ),
        ("mitigate", mitigate_pause()),
        ("resolve", Command::Resolve { note: "fixed".into() }),
        (
            "reopen",
            Command::Reopen {
                reason: "it failed again".into(),
            },
        ),
        ("event", Command::EventArrived(event())),
        ("rerate", Command::Rerate),
        (
            "delivery",
            Command::RecordDelivery {
                key: "INC-42/c0/r0/l0/person/alice/phone".into(),
                recipient: "alice/phone".into(),
                attempt: Attempt::Delivered,
            },
        ),
    ];
    // (state, expected per command in the order above): Ok(new state) or
    // Err(refusal).
    type Want = Result<State, &'static str>;
    const NR: Want = Err("NotResolved");
    const AA: Want = Err("AlreadyAcknowledged");
    const RS: Want = Err("Resolved");
    // ack, note, step, mitigate, resolve, reopen, event, rerate, delivery
    #[rustfmt::skip]
    let table: [(State, [Want; 9]); 4] = [
        (Triggered,    [Ok(Acknowledged), Ok(Triggered), Ok(Triggered), Ok(Mitigated), Ok(Resolved), NR, Ok(Triggered), Ok(Triggered), Ok(Triggered)]),
        (Acknowledged, [AA, Ok(Acknowledged), Ok(Acknowledged), Ok(Mitigated), Ok(Resolved), NR, Ok(Acknowledged), Ok(Acknowledged), Ok(Acknowledged)]),
        (Mitigated,    [AA, Ok(Mitigated), Ok(Mitigated), Ok(Mitigated), Ok(Resolved), NR, Ok(Mitigated), Ok(Mitigated), Ok(Mitigated)]),
        (Resolved,     [RS, Ok(Resolved), RS, RS, RS, Ok(Triggered), RS, Ok(Resolved), Ok(Resolved)]),
    ];
    for (state, wants) in table {
        let i = in_state(state);
        assert_eq!(i.state, state);
        for ((name, command), want) in commands.iter().zip(wants) {
            let got = handle(&i, command, at(10), "bob");
            match (got, want) {
                (Ok(t), Ok(s)) => {
                    assert_eq!(t.incident.state, s, "{state} {name}");
                    // Every change is on the timeline (re-rating with no
                    // deadline changes nothing).
                    let grew = t.incident.timeline.len() > i.timeline.len();
                    assert_eq!(grew, *name != "rerate", "{state} {name}: timeline");
                }
                (Err(e), Err(r)) => {
                    assert_eq!(refusal_name(&e.reason), r, "{state} {name}: {e}");
                    assert_eq!(e.state, state);
                }
                (got, want) => panic!("{state} {name}: got {got:?}, want {want:?}"),
            }
        }
    }
}

#[test]
fn refusals_say_what_to_do() {
    let resolved = in_state(State::Resolved);
    let acked = in_state(State::Acknowledged);
    let no_rollout = {
        let mut i = acked.clone();
        i.rollout = None;
        i
    };
    // (incident, command, message)
    let cases: Vec<(&Incident, Command, &str)> = vec![
        (
            &resolved,
            Command::Acknowledge,
            "cannot acknowledge INC-42: it is RESOLVED (resolved by \"alice\" at 2026-11-05T03:03:00Z); \
             reopen it with `tilewave incident reopen INC-42 --reason TEXT` first",
        ),
        (
            &acked,
            Command::Acknowledge,
            "INC-42 is already acknowledged by \"alice\" at 2026-11-05T03:01:00Z and is ACKNOWLEDGED; \
             nothing changed",
        ),
        (
            &acked,
            Command::Reopen { reason: "x".into() },
            "cannot reopen INC-42: it is ACKNOWLEDGED, not resolved; it is still open",
        ),
        (
            &resolved,
            Command::Reopen { reason: " ".into() },
            "cannot reopen INC-42: the reason is empty; say what happened",
        ),
        (
            &acked,
            Command::AddNote { note: "".into() },
            "cannot add a note to INC-42: the note is empty; say what happened",
        ),
        (
            &acked,
            Command::CompleteStep {
                number: 9,
                outcome: StepOutcome::Done { note: None },
            },
            "INC-42 has no SOP step 9; its steps are 1, 2, 3, 4, 5",
        ),
        (
            &acked,
            Command::CompleteStep {
                number: 1,
                outcome: StepOutcome::Done {
                    note: Some(" ".into()),
                },
            },
            "step 1 of INC-42 (\"Confirm the failure and its scope\") needs a note saying what you found: \
             `tilewave incident step INC-42 1 --note TEXT`",
        ),
        (
            &acked,
            Command::CompleteStep {
                number: 1,
                outcome: StepOutcome::Skipped { reason: "".into() },
            },
            "cannot complete a step of INC-42: the reason is empty; say what happened",
        ),
        (
            &no_rollout,
            mitigate_pause(),
            "cannot pause a roll-out for INC-42: it concerns no roll-out; pause one with `tilewave \
             rollout pause`, or remove the tile from regions instead",
        ),
        (
            &acked,
            Command::Mitigate {
                action: Action::RemoveTile,
                regions: vec!["gcp:nowhere".into()],
                note: "".into(),
            },
            "cannot mitigate INC-42: it does not affect \"gcp:nowhere\"; its regions are \
             \"gcp:me-central2\", \"aws:us-east-1\"",
        ),
        (
            &acked,
            Command::Mitigate {
                action: Action::Manual,
                regions: vec![],
                note: "".into(),
            },
            "cannot mitigate INC-42: the note is empty; say what happened",
        ),
        (
            &acked,
            Command::EventArrived(Event {
                source: Source::Health,
                ..event()
            }),
            "cannot fold the event into INC-42: its dedup key \"health/riverflow\" is not INC-42's \
             \"rollout-failure/riverflow/ro-7/wave-4\"; route it with `route` to its own incident",
        ),
    ];
    for (i, command, want) in cases {
        let e = handle(i, &command, at(10), "bob").unwrap_err();
        assert_eq!(e.to_string(), want);
    }
}

#[test]
fn a_sev2_resolves_only_with_every_step_closed() {
    let i = apply(&opened(Severity::Sev2), Command::Acknowledge, 1, "alice");
    let e = handle(&i, &Command::Resolve { note: "".into() }, at(2), "alice").unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot resolve INC-42: a SEV2 needs every SOP step done or skipped with a reason; still \
         open: 1 (\"Confirm the failure and its scope\"), 2 (\"Contain it\"), 3 (\"The partner \
         diagnoses their endpoint\"), 4 (\"The partner deploys a fix\"), 5 (\"Verify and restore\"); \
         complete each with `tilewave incident step INC-42 N --note TEXT` or skip it with `--skip \
         --reason TEXT`"
    );
    let mut i = i;
    for n in 1..=4 {
        i = apply(
            &i,
            Command::CompleteStep {
                number: n,
                outcome: StepOutcome::Done {
                    note: Some(format!("finding {n}")),
                },
            },
            3,
            "alice",
        );
    }
    let e = handle(&i, &Command::Resolve { note: "".into() }, at(4), "alice").unwrap_err();
    assert!(matches!(&*e.reason, Refusal::OpenSteps { steps, .. } if steps.len() == 1 && steps[0].0 == 5));
    let i = apply(
        &i,
        Command::CompleteStep {
            number: 5,
            outcome: StepOutcome::Skipped {
                reason: "verified by the partner's own probe".into(),
            },
        },
        4,
        "alice",
    );
    // A closed step stays closed.
    let e = handle(
        &i,
        &Command::CompleteStep {
            number: 5,
            outcome: StepOutcome::Done {
                note: Some("x".into()),
            },
        },
        at(5),
        "bob",
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "step 5 of INC-42 is already skipped by \"alice\" at 2026-11-05T03:04:00Z; nothing changed"
    );
    let t = handle(
        &i,
        &Command::Resolve {
            note: "partner deployed fix 07:40".into(),
        },
        at(6),
        "alice",
    )
    .unwrap();
    assert_eq!(t.incident.state, State::Resolved);
    assert_eq!(t.effects, [Effect::CancelPending]);
    let last = t.incident.timeline.last().unwrap();
    assert_eq!(
        (last.kind, last.message.as_str()),
        (
            EntryKind::Resolved,
            "resolved by alice: partner deployed fix 07:40"
        )
    );
    assert_eq!(
        t.incident
            .timeline
            .iter()
            .map(|e| e.kind.name())
            .collect::<Vec<_>>(),
        [
            "OPENED",
            "ACKNOWLEDGED",
            "STEP_COMPLETED",
            "STEP_COMPLETED",
            "STEP_COMPLETED",
            "STEP_COMPLETED",
            "STEP_SKIPPED",
            "RESOLVED"
        ]
    );
    // A SEV3 resolves with open steps.
    let t = handle(
        &in_state(State::Acknowledged),
        &Command::Resolve { note: "".into() },
        at(6),
        "alice",
    );
    assert!(t.is_ok());
}

#[test]
fn mitigations_act_through_effects() {
    let trig = opened(Severity::Sev2);
    // (action, regions given, effects, regions recorded)
    type Case = (Action, Vec<&'static str>, Vec<Effect>, Vec<&'static str>);
    let cases: Vec<Case> = vec![
        (
            Action::PauseRollout,
            vec![],
            vec![Effect::PauseRollout {
                rollout: "ro-7".into(),
            }],
            vec!["gcp:me-central2", "aws:us-east-1"],
        ),
        (
            Action::RemoveTile,
            vec!["gcp:me-central2"],
            vec![Effect::RemoveTile {
                tile: "riverflow".into(),
                regions: vec!["gcp:me-central2".into()],
            }],
            vec!["gcp:me-central2"],
        ),
        (
            Action::RotateCredential,
            vec![],
            vec![Effect::RotateCredential {
                tile: "riverflow".into(),
            }],
            vec!["gcp:me-central2", "aws:us-east-1"],
        ),
        (
            Action::Manual,
            vec![],
            vec![],
            vec!["gcp:me-central2", "aws:us-east-1"],
        ),
    ];
    for (action, regions, effects, recorded) in cases {
        let command = Command::Mitigate {
            action,
            regions: regions.iter().map(|r| r.to_string()).collect(),
            note: "contain".into(),
        };
        // From TRIGGERED, mitigating also acknowledges and stops the ladder.
        let t = handle(&trig, &command, at(5), "alice").unwrap();
        let mut want = vec![Effect::CancelPending];
        want.extend(effects.clone());
        assert_eq!(t.effects, want, "{action}");
        assert_eq!(t.incident.state, State::Mitigated);
        assert_eq!(
            t.incident.acknowledged.as_ref().map(|s| s.by.as_str()),
            Some("alice")
        );
        assert!(matches!(t.incident.escalation.ladder, Ladder::Stopped { .. }));
        assert_eq!(t.incident.mitigations[0].regions, recorded, "{action}");
        // From ACKNOWLEDGED, only the action's effects.
        let acked = apply(&trig, Command::Acknowledge, 1, "alice");
        let t = handle(&acked, &command, at(5), "alice").unwrap();
        assert_eq!(t.effects, effects, "{action}");
    }
}

#[test]
fn a_failure_repeating_folds_into_one_incident_with_a_count() {
    let sops = default_sops();
    let key = source().dedup_key("riverflow");
    assert_eq!(key.as_deref(), Some("rollout-failure/riverflow/ro-7/wave-4"));
    // Nothing yet: open.
    assert_eq!(route(key.as_deref(), None), Route::Open);
    let mut i = open(
        new_incident(Severity::Sev3, None),
        sop_for(&sops, SourceKind::RolloutFailure),
        at(0),
        SYSTEM_ACTOR,
    )
    .unwrap()
    .incident;
    // The same wave fails twice more: folded.
    for n in 1..=2 {
        assert_eq!(
            route(key.as_deref(), Some(&i)),
            Route::Fold {
                incident: "INC-42".into()
            }
        );
        i = apply(&i, Command::EventArrived(event()), n, SYSTEM_ACTOR);
    }
    assert_eq!(i.count, 3);
    assert_eq!(
        i.regions,
        ["gcp:me-central2", "aws:us-east-1", "azure:westeurope"]
    );
    assert_eq!(
        i.timeline.last().unwrap().message,
        "the same failure again (count 3): health gate failed again"
    );
    // A worse repeat raises the severity and escalates again.
    let t = handle(
        &i,
        &Command::EventArrived(Event {
            severity: Severity::Sev1,
            ..event()
        }),
        at(3),
        SYSTEM_ACTOR,
    )
    .unwrap();
    assert_eq!(t.incident.severity, Severity::Sev1);
    assert_eq!(t.effects, [Effect::Escalate, Effect::Expedite]);
    // Once resolved, a repeat opens a new incident linked to it.
    let resolved = apply(
        &apply(&i, Command::Acknowledge, 4, "a"),
        Command::Resolve { note: "".into() },
        5,
        "a",
    );
    assert_eq!(
        route(key.as_deref(), Some(&resolved)),
        Route::OpenLinked {
            previous: "INC-42".into()
        }
    );
    let again = open(
        NewIncident {
            id: "INC-43".into(),
            linked_to: Some("INC-42".into()),
            ..new_incident(Severity::Sev3, None)
        },
        None,
        at(6),
        SYSTEM_ACTOR,
    )
    .unwrap()
    .incident;
    assert_eq!(again.linked_to.as_deref(), Some("INC-42"));
    assert!(
        again.timeline[0]
            .message
            .contains("the same failure as resolved \"INC-42\"")
    );
    // Manual incidents have no key and never fold; other keys open anew.
    assert_eq!(route(None, Some(&i)), Route::Open);
    assert_eq!(route(Some("health/riverflow"), Some(&i)), Route::Open);
}

#[test]
fn dedup_keys_come_from_the_source() {
    let cases = [
        (Source::Manual, None),
        (source(), Some("rollout-failure/riverflow/ro-7/wave-4")),
        (
            Source::DeadlineAtRisk {
                rollout: "ro-7".into(),
            },
            Some("deadline-at-risk/riverflow/ro-7"),
        ),
        (
            Source::CredentialFailure {
                rotation: "rot-3".into(),
            },
            Some("credential-failure/riverflow/rot-3"),
        ),
        (Source::Drift, Some("drift/riverflow")),
        (Source::Health, Some("health/riverflow")),
    ];
    for (s, want) in cases {
        assert_eq!(s.dedup_key("riverflow").as_deref(), want, "{s:?}");
    }
    // The SOPs follow the kinds.
    let sops = default_sops();
    let sop = |k| sop_for(&sops, k).map(|s| s.id.as_str());
    assert_eq!(sop(SourceKind::RolloutFailure), Some("integration-health"));
    assert_eq!(sop(SourceKind::Health), Some("integration-health"));
    assert_eq!(sop(SourceKind::Drift), Some("integration-health"));
    assert_eq!(sop(SourceKind::CredentialFailure), Some("credential-failure"));
    assert_eq!(sop(SourceKind::DeadlineAtRisk), Some("deadline-at-risk"));
    assert_eq!(sop(SourceKind::Manual), None);
}

#[test]
fn severity_rises_as_the_deadline_nears_and_never_falls() {
    let deadline = at(72 * 60);
    let i = open(
        new_incident(Severity::Sev3, Some(deadline)),
        None,
        at(0),
        SYSTEM_ACTOR,
    )
    .unwrap()
    .incident;
    assert_eq!(i.severity, Severity::Sev3);
    // The next rise is 48 h before the deadline.
    assert_eq!(next_rerate(&i, at(0)), Some(at(24 * 60)));
    let t = handle(&i, &Command::Rerate, at(24 * 60 - 1), SYSTEM_ACTOR).unwrap();
    assert_eq!((t.incident.severity, t.effects.len()), (Severity::Sev3, 0));
    let t = handle(&i, &Command::Rerate, at(24 * 60), SYSTEM_ACTOR).unwrap();
    assert_eq!(t.incident.severity, Severity::Sev2);
    assert_eq!(t.effects, [Effect::Escalate, Effect::Expedite]);
    let entry = t.incident.timeline.last().unwrap();
    assert_eq!(entry.kind, EntryKind::Rerated);
    assert_eq!(entry.actor, SYSTEM_ACTOR);
    assert_eq!(
        entry.message,
        "re-rated SEV3 -> SEV2: the GA deadline 2026-11-08T03:00:00Z is 48h away (SEV2 within 48h, \
         SEV1 within 12h); severity never lowers by itself"
    );
    let i = t.incident;
    assert_eq!(next_rerate(&i, at(24 * 60)), Some(at(60 * 60)));
    // SEV2 to SEV1 stays high urgency: nothing to expedite.
    let t = handle(&i, &Command::Rerate, at(61 * 60), SYSTEM_ACTOR).unwrap();
    assert_eq!(t.effects, [Effect::Escalate]);
    let i = t.incident;
    assert_eq!(i.severity, Severity::Sev1);
    assert_eq!(next_rerate(&i, at(61 * 60)), None);
    // Opened 10 h before the deadline: SEV1 at once, and it says so.
    let i = open(
        new_incident(Severity::Sev4, Some(at(10 * 60))),
        None,
        at(0),
        SYSTEM_ACTOR,
    )
    .unwrap()
    .incident;
    assert_eq!(i.severity, Severity::Sev1);
    assert_eq!(i.timeline[1].kind, EntryKind::Rerated);
    // Never lowered: a SEV1 far from its deadline stays SEV1; after the
    // deadline nothing changes and no rise is due.
    let i = open(
        new_incident(Severity::Sev1, Some(at(100 * 60))),
        None,
        at(0),
        SYSTEM_ACTOR,
    )
    .unwrap()
    .incident;
    assert_eq!(
        apply(&i, Command::Rerate, 1, SYSTEM_ACTOR).severity,
        Severity::Sev1
    );
    let i = open(
        new_incident(Severity::Sev3, Some(at(60))),
        None,
        at(0),
        SYSTEM_ACTOR,
    )
    .unwrap()
    .incident;
    assert_eq!(
        apply(&i, Command::Rerate, 120, SYSTEM_ACTOR).severity,
        Severity::Sev1
    );
    let late = open(
        new_incident(Severity::Sev3, Some(at(-60))),
        None,
        at(0),
        SYSTEM_ACTOR,
    )
    .unwrap()
    .incident;
    assert_eq!(late.severity, Severity::Sev3);
    assert_eq!(next_rerate(&late, at(0)), None);
}

#[test]
fn reopening_restarts_the_ladder_as_a_new_cycle() {
    let r = in_state(State::Resolved);
    let t = handle(
        &r,
        &Command::Reopen {
            reason: "it failed again".into(),
        },
        at(30),
        "bob",
    )
    .unwrap();
    assert_eq!(t.effects, [Effect::Escalate]);
    let i = t.incident;
    assert_eq!(i.state, State::Triggered);
    assert_eq!((i.acknowledged.clone(), i.resolved.clone()), (None, None));
    assert_eq!(i.escalation.cycle, 1);
    assert_eq!(i.escalation.started_at, at(30));
    assert_eq!(
        i.escalation.ladder,
        Ladder::Pending {
            round: 0,
            level: 0,
            due: at(30)
        }
    );
    assert_eq!(
        i.timeline.last().unwrap().message,
        "reopened by bob: it failed again"
    );
    // Notes are still welcome on a resolved incident.
    let t = handle(
        &r,
        &Command::AddNote {
            note: "postmortem: PM-7".into(),
        },
        at(31),
        "bob",
    )
    .unwrap();
    assert_eq!(t.incident.timeline.last().unwrap().kind, EntryKind::Note);
}

#[test]
fn opening_needs_an_id_a_title_and_a_tile() {
    let e = open(
        NewIncident {
            id: "".into(),
            title: " ".into(),
            ..new_incident(Severity::Sev2, None)
        },
        None,
        at(0),
        SYSTEM_ACTOR,
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "id: must not be empty\ntitle: must not be empty");
}
