//! Tests of the on-call commands: argv to request, YAML files to requests
//! (and to every problem), the shipped examples, and calls against a fake
//! escalation service.

use clap::Parser as _;
use tilewave_proto::common::v1::Severity;
use tilewave_proto::escalation::v1 as pb;

use super::incident::*;
use super::*;
use crate::cli::{Cli, Command};
use crate::oncall::render::tests::incident;

const POLICY: &str = include_str!("../../../../docs/examples/escalation/policy.yaml");
const SCHEDULE: &str = include_str!("../../../../docs/examples/escalation/schedule.yaml");
const SOP: &str = include_str!("../../../../docs/examples/escalation/sop.yaml");
const PERSON: &str = include_str!("../../../../docs/examples/escalation/person.yaml");
const PARTNER: &str = include_str!("../../../../docs/examples/escalation/partner.yaml");

fn parse(args: &[&str]) -> Result<Command, clap::Error> {
    let argv = ["tilewave"].iter().chain(args.iter()).copied();
    Ok(Cli::try_parse_from(argv)?.command)
}

fn incident_cmd(args: &[&str]) -> IncidentCommand {
    match parse(&[&["incident"], args].concat()).unwrap() {
        Command::Incident(c) => c,
        other => panic!("{other:?}"),
    }
}

#[test]
fn list_and_open_requests_from_argv() {
    let IncidentCommand::List(a) = incident_cmd(&[
        "list",
        "--state",
        "triggered,acknowledged",
        "--tile",
        "riverflow",
        "--severity",
        "sev1",
    ]) else {
        panic!()
    };
    let r = list_request(&a, "t2");
    assert_eq!(
        r.states,
        vec![
            pb::IncidentState::Triggered as i32,
            pb::IncidentState::Acknowledged as i32
        ]
    );
    assert_eq!(
        (r.severity, r.tile_id.as_str()),
        (Severity::Sev1 as i32, "riverflow")
    );
    assert_eq!(r.page.unwrap().page_token, "t2");
    let IncidentCommand::List(a) = incident_cmd(&["list"]) else {
        panic!()
    };
    assert_eq!(
        list_request(&a, ""),
        pb::ListIncidentsRequest {
            page: Some(PageRequest::default()),
            ..Default::default()
        }
    );

    let IncidentCommand::Open(a) = incident_cmd(&[
        "open",
        "--tile",
        "riverflow",
        "--severity",
        "SEV2",
        "--title",
        "partner reports login errors",
        "--regions",
        "aws:us-east-1,gcp:us-central1",
        "--side",
        "partner",
        "--partner",
        "riverflow-inc",
        "--deadline",
        "2026-12-08 17:00",
    ]) else {
        panic!()
    };
    let r = open_request(&a).unwrap();
    assert_eq!(
        (r.tile_id.as_str(), r.severity, r.side, r.partner.as_str()),
        (
            "riverflow",
            Severity::Sev2 as i32,
            pb::Side::Partner as i32,
            "riverflow-inc"
        )
    );
    assert_eq!(r.regions, vec!["aws:us-east-1", "gcp:us-central1"]);
    assert_eq!(r.deadline.map(|d| d.seconds), Some(1_796_749_200));
    assert_eq!((r.policy.as_str(), r.sop_id.as_str()), ("", ""));
}

#[test]
fn changes_are_built_on_the_incident_read_first() {
    let i = incident();
    // (argv, the request's fields as text)
    let IncidentCommand::Step(a) = incident_cmd(&[
        "step",
        "INC-42",
        "3",
        "--done",
        "--note",
        "their TLS cert expired",
    ]) else {
        panic!()
    };
    assert_eq!(
        step_request(&a, &i).unwrap(),
        pb::CompleteStepRequest {
            id: "INC-42".into(),
            step: 3,
            note: "their TLS cert expired".into(),
            skip_reason: String::new(),
            etag: 17,
        }
    );
    let IncidentCommand::Step(a) =
        incident_cmd(&["step", "INC-42", "3", "--skip", "--reason", "partner fixed it"])
    else {
        panic!()
    };
    let r = step_request(&a, &i).unwrap();
    assert_eq!(
        (r.note.as_str(), r.skip_reason.as_str()),
        ("", "partner fixed it")
    );
    // Done is the default (JOURNEYS.md 3 writes `step INC-42 1 --note ...`).
    let IncidentCommand::Step(a) = incident_cmd(&["step", "INC-42", "3", "--note", "500 since 02:10"]) else {
        panic!()
    };
    let r = step_request(&a, &i).unwrap();
    assert_eq!((r.note.as_str(), r.skip_reason.as_str()), ("500 since 02:10", ""));

    let IncidentCommand::Mitigate(a) = incident_cmd(&[
        "mitigate",
        "INC-42",
        "--action",
        "remove-tile",
        "--regions",
        "gcp:me-central2",
        "--note",
        "roll back there",
    ]) else {
        panic!()
    };
    assert_eq!(
        mitigate_request(&a, &i).unwrap(),
        pb::MitigateRequest {
            id: "INC-42".into(),
            action: pb::MitigationAction::RemoveTile as i32,
            regions: vec!["gcp:me-central2".into()],
            note: "roll back there".into(),
            etag: 17,
        }
    );
    // (argv, action)
    let cases: &[(&[&str], pb::MitigationAction)] = &[
        (&["--action", "pause-rollout"], pb::MitigationAction::PauseRollout),
        (&["--pause-rollout"], pb::MitigationAction::PauseRollout),
        (&["--hide-tile"], pb::MitigationAction::RemoveTile),
        (&["--remove-tile"], pb::MitigationAction::RemoveTile),
        (&["--rotate-credential"], pb::MitigationAction::RotateCredential),
        (
            &["--action", "manual", "--note", "flag off"],
            pb::MitigationAction::Manual,
        ),
    ];
    for (flags, want) in cases {
        let IncidentCommand::Mitigate(a) = incident_cmd(&[&["mitigate", "INC-42"], *flags].concat()) else {
            panic!()
        };
        assert_eq!(
            mitigate_request(&a, &i).unwrap().action,
            *want as i32,
            "{flags:?}"
        );
    }
    let IncidentCommand::Resolve(a) = incident_cmd(&["resolve", "INC-42", "--note", "fixed"]) else {
        panic!()
    };
    assert_eq!(
        (
            resolve_request(&a, &i).etag,
            resolve_request(&a, &i).note.as_str()
        ),
        (17, "fixed")
    );
    let IncidentCommand::Reopen(a) = incident_cmd(&["reopen", "INC-42", "--reason", "again"]) else {
        panic!()
    };
    assert_eq!(reopen_request(&a, &i).unwrap().reason, "again");
    let IncidentCommand::Ack(a) = incident_cmd(&["ack", "INC-42"]) else {
        panic!()
    };
    assert_eq!(
        ack_request(&a),
        pb::AcknowledgeRequest {
            id: "INC-42".into(),
            etag: 0
        }
    );
    let IncidentCommand::Note(a) = incident_cmd(&["note", "INC-42", "--message", "on the bridge"]) else {
        panic!()
    };
    assert_eq!(note_request(&a).unwrap().note, "on the bridge");
}

#[test]
fn bad_changes_say_what_to_do_and_exit_2_or_3() {
    let i = incident();
    let mut no_rollout = incident();
    no_rollout.rollout_id.clear();
    // (argv, the incident, exit code, what the error says)
    let cases: Vec<(&[&str], &pb::Incident, u8, &str)> = vec![
        (
            &["step", "INC-42", "9", "--done"],
            &i,
            2,
            "no step 9; its steps are 1, 2, 3",
        ),
        (
            &["step", "INC-42", "1", "--done"],
            &i,
            3,
            "step 1 of INC-42 is DONE already",
        ),
        (&["step", "INC-42", "3", "--done"], &i, 2, "needs --note"),
        (
            &["step", "INC-42", "3", "--skip", "--reason", " "],
            &i,
            2,
            "--reason",
        ),
        (&["mitigate", "INC-42", "--action", "manual"], &i, 2, "--note"),
        (
            &["mitigate", "INC-42", "--action", "pause-rollout"],
            &no_rollout,
            2,
            "no roll-out",
        ),
        (
            &[
                "mitigate",
                "INC-42",
                "--action",
                "pause-rollout",
                "--regions",
                "aws:us-east-1",
            ],
            &i,
            2,
            "--regions does not apply",
        ),
        (
            &[
                "mitigate",
                "INC-42",
                "--action",
                "remove-tile",
                "--regions",
                "us-east-1",
            ],
            &i,
            2,
            "--regions",
        ),
        (&["reopen", "INC-42", "--reason", ""], &i, 2, "--reason"),
        (&["note", "INC-42", "--message", "  "], &i, 2, "--message"),
    ];
    for (argv, inc, code, want) in cases {
        let err = match incident_cmd(argv) {
            IncidentCommand::Step(a) => step_request(&a, inc).unwrap_err(),
            IncidentCommand::Mitigate(a) => mitigate_request(&a, inc).unwrap_err(),
            IncidentCommand::Reopen(a) => reopen_request(&a, inc).unwrap_err(),
            IncidentCommand::Note(a) => note_request(&a).unwrap_err(),
            other => panic!("{other:?}"),
        };
        assert_eq!(err.exit_code(), code, "{argv:?}: {err}");
        assert!(err.to_string().contains(want), "{argv:?}: {want:?} in {err}");
    }
    let IncidentCommand::Open(a) = incident_cmd(&[
        "open",
        "--tile",
        "rf",
        "--severity",
        "SEV1",
        "--title",
        "x",
        "--side",
        "partner",
    ]) else {
        panic!()
    };
    assert!(open_request(&a).unwrap_err().to_string().contains("--partner"));
}

#[test]
fn bad_flags_exit_2_naming_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (&["incident", "list", "--severity", "SEV5"], "--severity"),
        (&["incident", "list", "--state", "open"], "--state"),
        (
            &[
                "incident", "step", "INC-42", "1", "--done", "--skip", "--reason", "r",
            ],
            "--skip",
        ),
        (&["incident", "step", "INC-42", "1", "--skip"], "--reason"),
        (&["incident", "step", "INC-42", "0", "--done"], "0"),
        (
            &["incident", "mitigate", "INC-42", "--action", "reboot"],
            "--action",
        ),
        (&["incident", "mitigate", "INC-42"], "--action"),
        (
            &["incident", "mitigate", "INC-42", "--hide-tile", "--pause-rollout"],
            "--pause-rollout",
        ),
        (&["incident", "reopen", "INC-42"], "--reason"),
        (
            &["incident", "open", "--tile", "rf", "--title", "x"],
            "--severity",
        ),
        (&["oncall", "now", "--at", "tomorrow"], "--at"),
        (&["policy", "set"], "--file"),
    ];
    for (argv, flag) in cases {
        let err = parse(argv).unwrap_err();
        assert_eq!(err.exit_code(), 2, "{argv:?}");
        assert!(err.to_string().contains(flag), "{argv:?}: {err}");
    }
}

#[test]
fn oncall_now_asks_for_a_moment_and_a_schedule() {
    let Command::Oncall(OncallCommand::Now(a)) = parse(&[
        "oncall",
        "now",
        "--at",
        "2026-03-08T08:30:00Z",
        "--schedule",
        "primary",
    ])
    .unwrap() else {
        panic!()
    };
    let r = now_request(&a);
    assert_eq!(r.schedule, "primary");
    assert_eq!(r.at.map(|t| t.seconds), Some(1_772_958_600));
    let Command::Oncall(OncallCommand::Now(a)) = parse(&["oncall", "now"]).unwrap() else {
        panic!()
    };
    assert_eq!(now_request(&a), pb::WhoIsOnCallRequest::default());
}

#[test]
fn oncall_rewrap_takes_dry_run() {
    for (argv, dry_run) in [
        (&["oncall", "rewrap"][..], false),
        (&["oncall", "rewrap", "--dry-run"][..], true),
    ] {
        let Command::Oncall(OncallCommand::Rewrap(a)) = parse(argv).unwrap() else {
            panic!("{argv:?}")
        };
        assert_eq!(a.dry_run, dry_run, "{argv:?}");
    }
    assert!(parse(&["oncall", "rewrap", "--force"]).is_err());
}

#[test]
fn the_shipped_examples_parse_validate_and_round_trip() {
    let p = defs::load_policy("policy.yaml", POLICY).unwrap();
    assert_eq!(p.levels.len(), 2);
    assert_eq!(p.levels[0].delay, jiff::SignedDuration::from_mins(5));
    let pb = defs::policy_to_pb(&p, 3);
    assert_eq!(
        pb.levels[0].targets[1].url,
        "https://hooks.example.com/tilewave/ops"
    );
    assert_eq!(pb.severities, vec![Severity::Sev1 as i32, Severity::Sev2 as i32]);
    assert_eq!(defs::policy_from_pb(&pb).unwrap(), p);

    let s = defs::load_schedule("schedule.yaml", SCHEDULE).unwrap();
    let zones: Vec<&str> = s.layers.iter().map(|l| l.rotation.time_zone.as_str()).collect();
    assert_eq!(zones, vec!["America/Chicago", "Europe/Berlin"]);
    let pb = defs::schedule_to_pb(&s, 0);
    assert_eq!(pb.layers[0].rotation.as_ref().unwrap().shift_hours, 7 * 24);
    assert_eq!(
        pb.layers[1].rotation.as_ref().unwrap().handoff,
        Some(tilewave_proto::common::v1::LocalTime { hour: 8, minute: 0 })
    );
    assert_eq!(defs::schedule_from_pb(&pb).unwrap(), s);

    let sop = defs::load_sop("sop.yaml", SOP).unwrap();
    assert_eq!(sop.steps.len(), 3);
    assert_eq!(defs::sop_from_pb(&defs::sop_to_pb(&sop, 0)).unwrap(), sop);

    let person = defs::load_person("person.yaml", PERSON).unwrap();
    assert_eq!(
        defs::person_from_pb(&defs::person_to_pb(&person, 0)).unwrap(),
        person
    );

    let partner = defs::load_partner("partner.yaml", PARTNER).unwrap();
    assert_eq!(defs::partner_to_pb(&partner, 0).contacts.len(), 1);

    // `get -o yaml` prints what `set -f` reads back.
    for text in [
        crate::output::to_yaml(&serde_json::to_value(&p).unwrap()),
        crate::output::to_yaml(&serde_json::to_value(&s).unwrap()),
    ] {
        assert!(
            defs::load_policy("x.yaml", &text).is_ok() || defs::load_schedule("x.yaml", &text).is_ok(),
            "{text}"
        );
    }
    let text = crate::output::to_yaml(&serde_json::to_value(&s).unwrap());
    assert_eq!(defs::load_schedule("x.yaml", &text).unwrap(), s);
    let text = crate::output::to_yaml(&serde_json::to_value(&p).unwrap());
    assert_eq!(defs::load_policy("x.yaml", &text).unwrap(), p);
}

#[test]
fn every_problem_of_a_file_is_named_with_its_path_in_one_answer() {
    // (loader, file, what every line of the error says, in order)
    type Load = fn(&str, &str) -> Result<(), crate::error::CliError>;
    let policy: Load = |n, t| defs::load_policy(n, t).map(|_| ());
    let schedule: Load = |n, t| defs::load_schedule(n, t).map(|_| ());
    let sop: Load = |n, t| defs::load_sop(n, t).map(|_| ());
    let person: Load = |n, t| defs::load_person(n, t).map(|_| ());
    let partner: Load = |n, t| defs::load_partner(n, t).map(|_| ());
    let cases: Vec<(Load, &str, Vec<&str>)> = vec![
        (
            policy,
            "name: p\nlevels:\n  - targets: []\n    delay: 0s\n  - targets:\n      - {kind: pager, name: x}\n      - {kind: webhook, name: w, url: ftp://x}\n    delay: 5m\nrepeat: 99\n",
            vec![
                "f.yaml: 5 problems; nothing was sent",
                "f.yaml: levels[0].delay: must be more than zero",
                "f.yaml: levels[0].targets: a level needs at least one target",
                "f.yaml: levels[1].targets[0].kind: unknown target kind \"pager\"",
                "f.yaml: levels[1].targets[1].url: the URL uses the scheme \"ftp\"",
                "f.yaml: repeat: at most 20; got 99",
            ],
        ),
        (
            policy,
            "name: p\nlevels: []\n",
            vec![
                "f.yaml: 1 problem; nothing was sent",
                "f.yaml: levels: a policy needs at least one level",
            ],
        ),
        (
            schedule,
            "name: primary\nlayers:\n  - name: a\n    level: 1\n    rotation: {people: [ada], shift_length: {days: 7}, handoff: \"09:00\", time_zone: America/Chicago, start: 2026-03-02}\n  - name: b\n    level: 1\n    rotation: {people: [], shift_length: {hours: 0}, handoff: \"09:00:30\", time_zone: Mars/Olympus, start: 2026-03-02}\n",
            vec![
                "f.yaml: 5 problems; nothing was sent",
                "f.yaml: layers[1].rotation.people: a rotation needs at least one person",
                "f.yaml: layers[1].rotation.shift_length: must be more than zero",
                "f.yaml: layers[1].rotation.time_zone: unknown time zone \"Mars/Olympus\"",
                "f.yaml: layers[1]: overlaps layers[0]",
                "f.yaml: layers[1].rotation.handoff: 09:00:30 has seconds; give HH:MM",
            ],
        ),
        (
            sop,
            "id: x\ntitle: t\nsteps: []\n",
            vec!["f.yaml: 1 problem; nothing was sent", "f.yaml: steps:"],
        ),
        (
            person,
            "id: ''\ntime_zone: Nowhere\ncontacts: [{name: a, url: x}, {name: a, url: https://h/x}]\n",
            vec![
                "f.yaml: 4 problems; nothing was sent",
                "f.yaml: id: a person needs an id",
                "f.yaml: time_zone: unknown time zone \"Nowhere\"",
                "f.yaml: contacts[0].url",
                "f.yaml: contacts[1].name: \"a\" names two contacts",
            ],
        ),
        (
            partner,
            "partner: ' '\ncontacts: [{name: '', url: 'file:///etc/passwd'}]\n",
            vec![
                "f.yaml: 3 problems; nothing was sent",
                "f.yaml: partner: must not be empty",
                "f.yaml: contacts[0].name: must not be empty",
                "f.yaml: contacts[0].url: must be an http(s) URL",
            ],
        ),
    ];
    for (load, text, wants) in cases {
        let err = load("f.yaml", text).unwrap_err();
        assert_eq!(err.exit_code(), 2, "{text}");
        let shown = err.to_string();
        let lines: Vec<&str> = shown.lines().map(str::trim).collect();
        assert_eq!(lines.len(), wants.len(), "{shown}");
        for (line, want) in lines.iter().zip(&wants) {
            assert!(
                line.starts_with(want),
                "{want:?} at the start of {line:?}\n{shown}"
            );
        }
    }
}

#[test]
fn a_yaml_error_names_the_line_and_column_and_quotes_little() {
    let long = "x".repeat(10_000);
    // (file, what the error says)
    let cases = [
        (
            "name: p\nlevels:\n  - targets: [\n",
            vec!["f.yaml: line ", "nothing was sent"],
        ),
        (
            "name: p\nlevles: []\n",
            vec!["f.yaml: line 2, column 1: ", "levles"],
        ),
        (
            "name: p\nname: q\nlevels: []\n",
            vec!["f.yaml: line 2, column 1: duplicate mapping key: name; give each key once"],
        ),
        (
            "name: p\nlevels:\n  - targets: []\n    delay: soon\n",
            vec!["f.yaml: line 4, column 12: ", "write a duration such as 5m"],
        ),
        (
            &format!("name: p\nlevels:\n  - targets: []\n    delay: {long}\n"),
            vec!["f.yaml: line 4, column 12: "],
        ),
        ("- just\n- a list\n", vec!["f.yaml: line 1"]),
    ];
    for (text, wants) in &cases {
        let err = defs::load_policy("f.yaml", text).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let shown = err.to_string();
        for want in wants {
            assert!(shown.contains(want), "{want:?} in {shown}");
        }
        assert!(shown.len() < 400, "bounded: {} chars: {shown}", shown.len());
        assert_eq!(shown.lines().count(), 1, "{shown}");
    }
}

#[test]
fn a_missing_or_huge_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let err = defs::read_file(&dir.path().join("nope.yaml")).unwrap_err();
    assert!(
        err.to_string().contains("nope.yaml") && err.to_string().contains("-f"),
        "{err}"
    );
    let big = dir.path().join("big.yaml");
    std::fs::write(&big, "#".repeat(defs::MAX_FILE_BYTES as usize + 10)).unwrap();
    let err = defs::read_file(&big).unwrap_err();
    assert!(err.to_string().contains("larger than"), "{err}");
}

#[test]
fn definitions_for_people() {
    let p = defs::load_policy("policy.yaml", POLICY).unwrap();
    let text = policy_text(&p, 3);
    for want in [
        "POLICY      default",
        "SEVERITIES  SEV1, SEV2",
        "the ladder runs 3 time(s)",
        "pauses its roll-out after 30m",
        "within 12h",
        "1      schedule \"primary\", webhook \"ops-channel\"  5m",
        "2      person \"grace\", partner \"\"",
    ] {
        assert!(text.contains(want), "{want:?} in\n{text}");
    }
    let s = defs::load_schedule("schedule.yaml", SCHEDULE).unwrap();
    let text = schedule_text(&s, 1);
    assert!(text.contains("berlin-days  2      clara,dieter  1d"), "{text}");
    assert!(text.contains("mon,tue,wed,thu,fri 08:00-18:00"), "{text}");
    assert!(text.contains("replace   ada     bo"), "{text}");
    let sop = defs::load_sop("sop.yaml", SOP).unwrap();
    assert!(
        sop_text(&sop, 0).contains("2     partner   required  The partner checks"),
        "{}",
        sop_text(&sop, 0)
    );
}

#[tokio::test]
async fn commands_against_a_fake_service() {
    let (fake, ctx) = fake::serve().await;
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };

    // A step reads the incident first and sends its etag.
    incident::run(
        incident_cmd(&["step", "INC-42", "3", "--done", "--note", "cert expired"]),
        &ctx,
    )
    .await
    .unwrap();
    incident::run(incident_cmd(&["ack", "INC-42"]), &ctx)
        .await
        .unwrap();
    incident::run(
        incident_cmd(&["mitigate", "INC-42", "--action", "pause-rollout"]),
        &ctx,
    )
    .await
    .unwrap();
    {
        let seen = fake.seen.lock().unwrap();
        assert_eq!(
            (seen.steps.len(), seen.steps[0].etag, seen.steps[0].step),
            (1, 17, 3)
        );
        assert_eq!(
            seen.acks,
            vec![pb::AcknowledgeRequest {
                id: "INC-42".into(),
                etag: 0
            }]
        );
        assert_eq!(
            seen.mitigations[0].action,
            pb::MitigationAction::PauseRollout as i32
        );
    }
    // The service's refusal comes through with its code: 3.
    let err = incident::run(incident_cmd(&["resolve", "INC-42"]), &ctx)
        .await
        .unwrap_err();
    assert_eq!(crate::error::exit_code(&err), 3);
    assert!(err.to_string().contains("step 3 is open"), "{err}");
    let err = incident::run(incident_cmd(&["show", "INC-7"]), &ctx)
        .await
        .unwrap_err();
    assert_eq!(crate::error::exit_code(&err), 3);
    assert!(
        err.to_string()
            .contains("`tilewave incident list` lists incidents"),
        "{err}"
    );
    // A problem in the file: nothing is sent.
    let bad = write("bad.yaml", "name: p\nlevels: []\n");
    let err = run_policy(
        PolicyCommand::Set(FileArgs {
            file: bad,
            dry_run: false,
        }),
        &ctx,
    )
    .await
    .unwrap_err();
    assert_eq!(crate::error::exit_code(&err), 2);
    assert!(fake.seen.lock().unwrap().set_policies.is_empty());
    // New: etag 0; again: the etag read.
    let good = write("policy.yaml", POLICY);
    for _ in 0..2 {
        run_policy(
            PolicyCommand::Set(FileArgs {
                file: good.clone(),
                dry_run: false,
            }),
            &ctx,
        )
        .await
        .unwrap();
    }
    let etags: Vec<i64> = fake
        .seen
        .lock()
        .unwrap()
        .set_policies
        .iter()
        .map(|r| r.etag)
        .collect();
    assert_eq!(etags, vec![0, 1]);
    run_policy(PolicyCommand::Get(PolicyNameArgs { name: None }), &ctx)
        .await
        .unwrap();
    // A dry run sends nothing.
    let sched = write("schedule.yaml", SCHEDULE);
    run_oncall(
        OncallCommand::Schedule(ScheduleCommand::Set(FileArgs {
            file: sched.clone(),
            dry_run: true,
        })),
        &ctx,
    )
    .await
    .unwrap();
    assert!(fake.seen.lock().unwrap().set_schedules.is_empty());
    run_oncall(
        OncallCommand::Schedule(ScheduleCommand::Set(FileArgs {
            file: sched,
            dry_run: false,
        })),
        &ctx,
    )
    .await
    .unwrap();
    run_oncall(
        OncallCommand::Schedule(ScheduleCommand::Get(NameArgs {
            name: "primary".into(),
        })),
        &ctx,
    )
    .await
    .unwrap();
    let stored = fake
        .stored
        .lock()
        .unwrap()
        .schedules
        .get("primary")
        .cloned()
        .unwrap();
    assert_eq!(
        defs::schedule_from_pb(&stored).unwrap(),
        defs::load_schedule("s", SCHEDULE).unwrap()
    );
    let sop = write("sop.yaml", SOP);
    run_sop(
        SopCommand::Set(FileArgs {
            file: sop,
            dry_run: false,
        }),
        &ctx,
    )
    .await
    .unwrap();
    assert_eq!(fake.seen.lock().unwrap().set_sops[0].etag, 0);
    let person = write("person.yaml", PERSON);
    run_oncall(
        OncallCommand::Person(PersonCommand::Set(FileArgs {
            file: person,
            dry_run: false,
        })),
        &ctx,
    )
    .await
    .unwrap();
    run_oncall(
        OncallCommand::Person(PersonCommand::Get(NameArgs { name: "ada".into() })),
        &ctx,
    )
    .await
    .unwrap();
    let Command::Oncall(now) = parse(&["oncall", "now", "--schedule", "primary"]).unwrap() else {
        panic!()
    };
    run_oncall(now, &ctx).await.unwrap();
    assert_eq!(fake.seen.lock().unwrap().whos[0].schedule, "primary");
    // The watch prints the snapshot and the change, reconnects when the
    // stream drops, and ends with a refusal.
    let end = incident::run(incident_cmd(&["watch", "--tile", "riverflow"]), &ctx)
        .await
        .unwrap_err();
    assert!(end.to_string().contains("WatchIncidents"), "{end:#}");
    assert_eq!(fake.seen.lock().unwrap().watches, 2, "one reconnection");
    incident::run(incident_cmd(&["list", "--state", "triggered"]), &ctx)
        .await
        .unwrap();
    assert_eq!(
        fake.seen.lock().unwrap().lists[0].states,
        vec![pb::IncidentState::Triggered as i32]
    );
}

#[test]
fn watch_prints_a_line_per_change_and_documents_for_scripts() {
    let i = incident();
    let line = incident::watch_text(Format::Table, pb::IncidentEventType::Put, Some(&i))
        .unwrap()
        .unwrap();
    assert!(line.starts_with("INC-42 SEV1 ACKNOWLEDGED riverflow: "), "{line}");
    assert_eq!(
        incident::watch_text(Format::Json, pb::IncidentEventType::SnapshotEnd, None).unwrap(),
        None
    );
    let json = incident::watch_text(Format::Json, pb::IncidentEventType::Snapshot, Some(&i))
        .unwrap()
        .unwrap();
    assert_eq!(json.lines().count(), 1);
    let yaml = incident::watch_text(Format::Yaml, pb::IncidentEventType::Put, Some(&i))
        .unwrap()
        .unwrap();
    assert!(yaml.starts_with("---\nid: INC-42\n"), "{yaml}");
}

/// The error docs/journeys.md shows for a broken copy of the example
/// schedule, word for word.
#[test]
fn the_journeys_example_error_is_what_set_prints() {
    let broken = SCHEDULE
        .replace("time_zone: Europe/Berlin", "time_zone: Europe/Berln")
        .replace("people: [clara, dieter]", "people: []");
    let err = defs::load_schedule("schedule.yaml", &broken).unwrap_err();
    let doc = include_str!("../../../../docs/journeys.md");
    let shown = format!("error: {err}");
    assert!(doc.contains(&shown), "docs/journeys.md should show:\n{shown}");
}

/// Times, dates and durations may be written without quotes.
#[test]
fn unquoted_times_dates_and_durations_read_as_written() {
    let s = defs::load_schedule(
        "s.yaml",
        "name: p\nlayers:\n  - name: a\n    level: 1\n    rotation:\n      people: [ada]\n      shift_length: {hours: 12}\n      handoff: 09:30\n      time_zone: UTC\n      start: 2026-03-02\n    active: {days: [sat, sun], start: 20:00, end: 08:00}\n",
    )
    .unwrap();
    let l = &s.layers[0];
    assert_eq!(l.rotation.handoff, jiff::civil::time(9, 30, 0, 0));
    assert_eq!(l.rotation.start, jiff::civil::date(2026, 3, 2));
    assert_eq!(l.active.as_ref().unwrap().end, jiff::civil::time(8, 0, 0, 0));
    let p = defs::load_policy(
        "p.yaml",
        "name: p\nlevels:\n  - targets: [{kind: person, name: ada}]\n    delay: 1h30m\n  - targets: [{kind: person, name: bo}]\n    delay: PT5M\n",
    )
    .unwrap();
    assert_eq!(p.levels[0].delay, jiff::SignedDuration::from_mins(90));
    assert_eq!(p.levels[1].delay, jiff::SignedDuration::from_mins(5));
}

/// Every command `incident show` suggests is one this CLI parses.
#[test]
fn the_suggested_commands_exist() {
    let mut i = incident();
    i.state = pb::IncidentState::Triggered as i32;
    i.linked_to = "INC-41".into();
    let links = render::links(&i);
    assert_eq!(links.len(), 5, "{links:?}");
    for l in links {
        let (_, cmd) = l.split_once("  ").unwrap();
        let cmd = cmd.split(" (").next().unwrap().replace('"', "");
        let argv: Vec<&str> = cmd.split_whitespace().collect();
        assert_eq!(argv[0], "tilewave", "{l}");
        Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{l}: {e}"));
    }
}
