//! The ladder: levels at exactly their delays, repeats, exhaustion, the
//! unacknowledged-SEV1 roll-out pause, acknowledgement stopping it,
//! catching up after downtime, urgency and working hours, policy
//! validation.

use std::collections::BTreeMap;

use jiff::civil::Time;
use jiff::{SignedDuration, Timestamp};

use super::super::*;
use super::{date, hm, ts};

const T0: &str = "2026-11-05T03:00:00Z"; // a Thursday, 04:00 in Berlin

fn at(mins: i64) -> Timestamp {
    ts(T0).checked_add(SignedDuration::from_mins(mins)).unwrap()
}

fn target(kind: &str, name: &str, url: Option<&str>) -> Target {
    Target {
        kind: TargetKind::from(kind),
        name: name.into(),
        url: url.map(str::to_string),
    }
}

fn policy() -> Policy {
    Policy {
        name: "default".into(),
        severities: vec![],
        levels: vec![
            Level {
                targets: vec![target("schedule", "primary", None)],
                delay: SignedDuration::from_mins(15),
            },
            Level {
                targets: vec![target("person", "bob", None)],
                delay: SignedDuration::from_mins(10),
            },
            Level {
                targets: vec![target(
                    "webhook",
                    "eng-manager",
                    Some("https://hooks.example.com/em"),
                )],
                delay: SignedDuration::from_mins(5),
            },
        ],
        repeat: 1,
        pause_rollout_after: Some(SignedDuration::from_mins(30)),
        speedups: vec![],
    }
}

fn person(id: &str, tz: &str) -> Person {
    Person {
        id: id.into(),
        name: id.to_uppercase(),
        time_zone: tz.into(),
        working_hours: WeeklyWindow::office_hours(),
        contacts: vec![Contact {
            name: "phone".into(),
            url: format!("https://pager.example.com/{id}"),
        }],
    }
}

fn directory() -> Directory {
    let primary = Schedule {
        name: "primary".into(),
        layers: vec![Layer {
            name: "weekly".into(),
            level: 0,
            rotation: Rotation {
                people: vec!["alice".into()],
                shift_length: ShiftLength::Days(7),
                handoff: hm(9, 0),
                time_zone: "Europe/Berlin".into(),
                start: date("2026-01-05"),
            },
            active: None,
        }],
        overrides: vec![],
    };
    Directory {
        people: BTreeMap::from([
            ("alice".into(), person("alice", "Europe/Berlin")),
            ("bob".into(), person("bob", "America/Chicago")),
        ]),
        schedules: BTreeMap::from([("primary".into(), primary)]),
        partners: BTreeMap::from([(
            "riverflow-inc".into(),
            vec![Contact {
                name: "oncall".into(),
                url: "https://riverflow.example.com/page".into(),
            }],
        )]),
    }
}

fn incident(severity: Severity) -> Incident {
    let new = NewIncident {
        id: "INC-42".into(),
        title: "health gate failed in gcp:me-central2 (wave 4)".into(),
        tile: "riverflow".into(),
        regions: vec!["gcp:me-central2".into()],
        severity,
        source: Source::RolloutFailure {
            rollout: "ro-7".into(),
            wave: 4,
        },
        side: Side::Partner,
        partner: Some("riverflow-inc".into()),
        rollout: None,
        deadline: None,
        policy: "default".into(),
        linked_to: None,
    };
    let sops = default_sops();
    open(
        new,
        sop_for(&sops, SourceKind::RolloutFailure),
        at(0),
        SYSTEM_ACTOR,
    )
    .unwrap()
    .incident
}

/// When a `step` paged, and the notifications' keys.
type Pages = Vec<(Timestamp, Vec<String>)>;

/// Drives the ladder the way the service does: at every timer, `step`,
/// until nothing is due before `until`. Returns (when, keys) per call that
/// paged, and every effect.
fn run(i: &Incident, until: Timestamp) -> (Incident, Pages, Vec<Effect>) {
    let (p, dir) = (policy(), directory());
    let mut i = i.clone();
    let mut pages = Vec::new();
    let mut effects = Vec::new();
    let mut now = at(0);
    loop {
        let s = step(&p, &i, &dir, now);
        if !s.notifications.is_empty() {
            pages.push((now, s.notifications.iter().map(|n| n.key.clone()).collect()));
        }
        effects.extend(s.effects);
        i = s.incident;
        match s.next_timer {
            Some(t) if t <= until => now = t.max(now),
            Some(_) | None => return (i, pages, effects),
        }
    }
}

#[test]
fn an_unacknowledged_sev1_climbs_the_ladder_on_time_and_repeats() {
    let (i, pages, effects) = run(&incident(Severity::Sev1), at(24 * 60));
    let want: Pages = vec![
        (at(0), vec!["INC-42/c0/r0/l0/person/alice/phone".into()]),
        (at(15), vec!["INC-42/c0/r0/l1/person/bob/phone".into()]),
        (at(25), vec!["INC-42/c0/r0/l2/webhook/eng-manager".into()]),
        (at(30), vec!["INC-42/c0/r1/l0/person/alice/phone".into()]),
        (at(45), vec!["INC-42/c0/r1/l1/person/bob/phone".into()]),
        (at(55), vec!["INC-42/c0/r1/l2/webhook/eng-manager".into()]),
    ];
    assert_eq!(pages, want);
    // The roll-out is paused once, 30 minutes in.
    assert_eq!(
        effects,
        [Effect::PauseRollout {
            rollout: "ro-7".into()
        }]
    );
    assert_eq!(i.escalation.ladder, Ladder::Exhausted { at: at(60) });
    let kinds: Vec<(&str, Timestamp)> = i.timeline.iter().map(|e| (e.kind.name(), e.at)).collect();
    assert_eq!(
        kinds,
        [
            ("OPENED", at(0)),
            ("PAGED", at(0)),
            ("ESCALATED", at(15)),
            ("ESCALATED", at(25)),
            ("ROLLOUT_PAUSED", at(30)),
            ("ESCALATED", at(30)),
            ("ESCALATED", at(45)),
            ("ESCALATED", at(55)),
            ("EXHAUSTED", at(60)),
        ]
    );
    assert_eq!(
        i.timeline[1].message,
        "level 1 (round 1 of 2, high urgency): paged \"alice\" (on call on \"primary\")"
    );
    assert_eq!(
        i.timeline[4].message,
        "SEV1 unacknowledged since 2026-11-05T03:00:00Z (policy \"default\" pauses after 30m): \
         pausing roll-out \"ro-7\""
    );
}

#[test]
fn step_pages_only_what_is_due_and_is_idempotent() {
    let (p, dir) = (policy(), directory());
    let i = incident(Severity::Sev2);
    let first = step(&p, &i, &dir, at(0));
    assert_eq!(first.next_timer, Some(at(15)));
    let n = &first.notifications[0];
    assert_eq!(n.url, "https://pager.example.com/alice");
    assert_eq!(n.deliver_at, at(0));
    assert_eq!(n.urgency, Urgency::High);
    assert_eq!(
        n.recipient,
        Recipient::Person {
            person: "alice".into(),
            contact: "phone".into(),
            via: Some("primary".into())
        }
    );
    assert_eq!(
        n.summary,
        "SEV2 riverflow: health gate failed in gcp:me-central2 (wave 4) (level 1), SOP: integration-health"
    );
    // An early or repeated timer changes nothing.
    for mins in [0, 5, 14] {
        let again = step(&p, &first.incident, &dir, at(mins));
        assert!(!again.changed(&first.incident));
        assert!(again.notifications.is_empty());
        assert_eq!(again.next_timer, Some(at(15)));
    }
    // A SEV2 never pauses the roll-out.
    let (_, _, effects) = run(&i, at(24 * 60));
    assert!(effects.is_empty());
}

#[test]
fn acknowledging_stops_the_ladder() {
    let (p, dir) = (policy(), directory());
    let s = step(&p, &incident(Severity::Sev1), &dir, at(0));
    let t = handle(&s.incident, &Command::Acknowledge, at(7), "alice").unwrap();
    assert_eq!(t.effects, [Effect::CancelPending]);
    assert_eq!(t.incident.escalation.ladder, Ladder::Stopped { at: at(7) });
    for mins in [15, 30, 60] {
        let s = step(&p, &t.incident, &dir, at(mins));
        assert!(s.notifications.is_empty() && s.effects.is_empty());
        assert_eq!(s.next_timer, None);
        assert!(!s.changed(&t.incident));
    }
}

#[test]
fn a_late_timer_catches_up_one_level_at_a_time_on_the_original_schedule() {
    let (p, dir) = (policy(), directory());
    let mut i = incident(Severity::Sev2);
    // The service was down until minute 27: levels due at 0, 15 and 25 fire
    // one per call, and the next stays due at 30.
    let mut keys = Vec::new();
    let mut timer = Some(at(0));
    while timer.is_some_and(|t| t <= at(27)) {
        let s = step(&p, &i, &dir, at(27));
        keys.extend(s.notifications.iter().map(|n| n.key.clone()));
        timer = s.next_timer;
        i = s.incident;
    }
    assert_eq!(keys.len(), 3);
    assert_eq!(timer, Some(at(30)));
}

#[test]
fn low_urgency_waits_for_working_hours_in_the_persons_zone() {
    let (p, dir) = (policy(), directory());
    // Thursday 04:00 in Berlin: alice's page waits for 09:00 Berlin.
    let s = step(&p, &incident(Severity::Sev3), &dir, at(0));
    let n = &s.notifications[0];
    assert_eq!(
        (n.urgency, n.deliver_at),
        (Urgency::Low, ts("2026-11-05T08:00:00Z"))
    );
    assert_eq!(
        s.incident.timeline.last().unwrap().message,
        "level 1 (round 1 of 2, low urgency): \"alice\" (on call on \"primary\"): deferred to \
         2026-11-05T08:00:00Z, the start of their working hours (mon,tue,wed,thu,fri 09:00-17:00 \
         Europe/Berlin)"
    );
    // (urgency, person, now, deliver at)
    let cases = [
        // Friday 18:00 Berlin: Monday 09:00.
        (
            Severity::Sev4,
            "alice",
            "2026-11-06T17:00:00Z",
            "2026-11-09T08:00:00Z",
        ),
        // Inside working hours: at once.
        (
            Severity::Sev3,
            "alice",
            "2026-11-05T10:00:00Z",
            "2026-11-05T10:00:00Z",
        ),
        // Bob in Chicago at 04:00 Berlin is 21:00 Wednesday: 09:00 Thursday CST.
        (Severity::Sev3, "bob", T0, "2026-11-05T15:00:00Z"),
        // High urgency: at once, at any hour.
        (Severity::Sev1, "bob", T0, T0),
        (
            Severity::Sev2,
            "alice",
            "2026-11-07T02:00:00Z",
            "2026-11-07T02:00:00Z",
        ),
    ];
    let mut direct = policy();
    for (severity, who, now, want) in cases {
        direct.levels[0].targets = vec![target("person", who, None)];
        let mut i = incident(severity);
        i.escalation = Escalation::start("default", ts(now), 0);
        let s = step(&direct, &i, &dir, ts(now));
        assert_eq!(
            s.notifications[0].deliver_at,
            ts(want),
            "{severity} {who} at {now}"
        );
    }
    // Webhooks have no working hours.
    let mut hook = policy();
    hook.levels[0].targets = vec![target("webhook", "ops", Some("http://ops.local/page"))];
    let s = step(&hook, &incident(Severity::Sev4), &dir, at(0));
    assert_eq!(s.notifications[0].deliver_at, at(0));
}

#[test]
fn targets_that_reach_nobody_are_on_the_timeline() {
    let mut dir = directory();
    dir.people.get_mut("bob").unwrap().contacts.clear();
    dir.schedules.get_mut("primary").unwrap().overrides = vec![Override {
        kind: OverrideKind::Remove,
        person: "alice".into(),
        by: None,
        start: at(-60),
        end: at(60),
    }];
    let mut p = policy();
    p.levels[0].targets = vec![
        target("schedule", "primary", None),
        target("person", "bob", None),
        target("person", "zed", None),
        target("schedule", "nope", None),
        target("pager", "x", None),
    ];
    let s = step(&p, &incident(Severity::Sev1), &dir, at(0));
    assert!(s.notifications.is_empty());
    assert_eq!(
        s.incident.timeline.last().unwrap().message,
        "level 1 (round 1 of 2, high urgency): nobody is on call on schedule \"primary\"; \"bob\": \
         no contact method, not paged; \"zed\": no such person, not paged; no schedule \"nope\": \
         nobody paged; unknown target kind \"pager\": nobody paged"
    );
    // The same person twice in a level gets one notification a contact.
    let mut p = policy();
    p.levels[0].targets = vec![
        target("schedule", "primary", None),
        target("person", "alice", None),
    ];
    let s = step(&p, &incident(Severity::Sev1), &directory(), at(0));
    assert_eq!(s.notifications.len(), 1);
}

#[test]
fn policies_are_chosen_by_severity() {
    let mut sev1 = policy();
    sev1.name = "sev1".into();
    sev1.severities = vec![Severity::Sev1];
    let policies = [sev1, policy()];
    assert_eq!(
        policy_for(&policies, Severity::Sev1).map(|p| p.name.as_str()),
        Some("sev1")
    );
    assert_eq!(
        policy_for(&policies, Severity::Sev3).map(|p| p.name.as_str()),
        Some("default")
    );
    assert_eq!(policy_for(&policies[..1], Severity::Sev3), None);
}

#[test]
fn policy_validation_returns_every_problem_with_its_path() {
    assert!(validate_policy(&policy(), Some(&directory())).is_ok());
    let mut bad = policy();
    bad.name = "".into();
    bad.levels[0].delay = SignedDuration::ZERO;
    bad.levels[0].targets = vec![
        target("pager", "x", None),
        target("webhook", "hook", Some("ftp://example.com/x")),
        target("webhook", "hook2", None),
        target("person", "zed", Some("https://x.example.com")),
        target("schedule", "nope", None),
    ];
    bad.levels[1].targets.clear();
    bad.levels[2].delay = SignedDuration::from_mins(-5);
    bad.repeat = 99;
    bad.pause_rollout_after = Some(SignedDuration::ZERO);
    bad.speedups = vec![
        Speedup {
            within: SignedDuration::ZERO,
            percent: 50,
        },
        Speedup {
            within: SignedDuration::from_hours(1),
            percent: 0,
        },
    ];
    let e = validate_policy(&bad, Some(&directory())).unwrap_err();
    assert_eq!(
        e.paths(),
        [
            "name",
            "levels[0].delay",
            "levels[0].targets[0].kind",
            "levels[0].targets[1].url",
            "levels[0].targets[2].url",
            "levels[0].targets[3].url",
            "levels[0].targets[3].name",
            "levels[0].targets[4].name",
            "levels[1].targets",
            "levels[2].delay",
            "repeat",
            "pause_rollout_after",
            "speedups[0].within",
            "speedups[1].percent",
        ],
        "{e}"
    );
    let text = e.to_string();
    for line in [
        "levels[0].delay: must be more than zero",
        "levels[0].targets[0].kind: unknown target kind \"pager\"; use person, schedule, webhook or partner",
        "levels[0].targets[1].url: the URL uses the scheme \"ftp\", not http or https; give one such as \"https://hooks.example.com/page\"",
        "levels[0].targets[4].name: no schedule \"nope\"; known: \"primary\"",
        "levels[0].targets[3].name: no person \"zed\"; known: \"alice\", \"bob\"",
    ] {
        assert!(text.lines().any(|l| l == line), "{line}\n{text}");
    }
    let empty = Policy {
        levels: vec![],
        ..policy()
    };
    assert_eq!(
        validate_policy(&empty, None).unwrap_err().to_string(),
        "levels: a policy needs at least one level"
    );
    // Without a directory, references are not checked.
    let mut unknown = policy();
    unknown.levels[0].targets = vec![target("person", "zed", None)];
    assert!(validate_policy(&unknown, None).is_ok());
}

#[test]
fn urls_and_people() {
    // (url, is http(s))
    let cases = [
        ("https://hooks.example.com/page", true),
        ("http://127.0.0.1:8080/x", true),
        ("HTTPS://Example.com", true),
        ("https://", false),
        ("ftp://example.com", false),
        ("example.com", false),
        ("https://exa mple.com", false),
        ("", false),
    ];
    for (url, want) in cases {
        assert_eq!(directory::is_http_url(url), want, "{url}");
    }
    let mut p = person("alice", "Europe/Berlin");
    assert!(validate_person(&p).is_ok());
    p.id = "".into();
    p.time_zone = "Nowhere/Town".into();
    p.contacts.push(Contact {
        name: "phone".into(),
        url: "mailto:alice@example.com".into(),
    });
    assert_eq!(
        validate_person(&p).unwrap_err().paths(),
        ["id", "time_zone", "contacts[1].name", "contacts[1].url"]
    );
    // URL problems name the scheme, never the whole URL (it may hold a token).
    // (url, message)
    let cases = [
        ("https://", "the URL has no host"),
        (
            "hooks.example.com/T0K3N",
            "the URL has no http:// or https:// scheme",
        ),
        (
            "ftp://files.example.com/T0K3N",
            "the URL uses the scheme \"ftp\", not http or https",
        ),
    ];
    for (url, want) in cases {
        let mut p = person("alice", "UTC");
        p.contacts[0].url = url.into();
        let e = validate_person(&p).unwrap_err().to_string();
        assert_eq!(
            e,
            format!("contacts[0].url: {want}; give one such as \"https://hooks.example.com/page\"")
        );
        assert!(!e.contains("T0K3N"));
    }
}

#[test]
fn policies_and_people_parse() {
    let p: Policy = serde_json::from_value(serde_json::json!({
        "name": "default",
        "levels": [
            {"targets": [{"kind": "schedule", "name": "primary"}], "delay": "15m"},
            {"targets": [{"kind": "pager", "name": "x"}], "delay": "PT10M"}
        ],
        "repeat": 2,
        "pause_rollout_after": "30m"
    }))
    .unwrap();
    assert_eq!(p.levels[0].delay, SignedDuration::from_mins(15));
    assert_eq!(p.levels[1].delay, SignedDuration::from_mins(10));
    assert_eq!(p.levels[1].targets[0].kind, TargetKind::Unknown("pager".into()));
    assert_eq!(
        validate_policy(&p, None).unwrap_err().paths(),
        ["levels[1].targets[0].kind"]
    );
    let person: Person = serde_json::from_value(serde_json::json!({
        "id": "alice", "time_zone": "Europe/Berlin",
        "contacts": [{"name": "phone", "url": "https://pager.example.com/alice"}]
    }))
    .unwrap();
    assert_eq!(person.working_hours.start, Time::constant(9, 0, 0, 0));
}

#[test]
fn delays_shorten_near_the_deadline() {
    let mut p = policy();
    p.speedups = vec![
        Speedup {
            within: SignedDuration::from_hours(48),
            percent: 50,
        },
        Speedup {
            within: SignedDuration::from_hours(12),
            percent: 20,
        },
    ];
    let level = &p.levels[0]; // 15 minutes
    // (deadline from now, delay)
    let cases = [
        (None, 15 * 60),
        (Some(72 * 60), 15 * 60),
        (Some(48 * 60), 7 * 60 + 30),
        (Some(13 * 60), 7 * 60 + 30),
        (Some(12 * 60), 3 * 60),
        (Some(1), 3 * 60),
        (Some(-60), 15 * 60), // past: no speed-up
    ];
    for (deadline, secs) in cases {
        let d = deadline.map(at);
        assert_eq!(
            p.delay(level, d, at(0)),
            SignedDuration::from_secs(secs),
            "{deadline:?}"
        );
    }
    // The ladder uses it and says so.
    let mut i = incident(Severity::Sev1);
    i.deadline = Some(at(6 * 60));
    let s = step(&p, &i, &directory(), at(0));
    assert_eq!(s.next_timer, Some(at(3)));
    assert!(
        s.incident
            .timeline
            .last()
            .unwrap()
            .message
            .ends_with("next level in 3m instead of 15m: the GA deadline is near"),
        "{:?}",
        s.incident.timeline.last()
    );
}

#[test]
fn policy_coverage_finds_windows_where_nobody_is_reached() {
    let mut dir = directory();
    // alice is on call only on weekdays 09:00-17:00 Berlin.
    dir.schedules.get_mut("primary").unwrap().layers[0].active = Some(WeeklyWindow::office_hours());
    let from = ts("2026-11-05T00:00:00Z"); // Thursday 01:00 Berlin
    let to = ts("2026-11-06T00:00:00Z");
    let only_schedule = Policy {
        levels: vec![policy().levels[0].clone()],
        ..policy()
    };
    let gaps: Vec<(Timestamp, Timestamp)> = policy_coverage(&only_schedule, &dir, from, to)
        .iter()
        .map(|g| (g.start, g.end))
        .collect();
    assert_eq!(
        gaps,
        [
            (from, ts("2026-11-05T08:00:00Z")),
            (ts("2026-11-05T16:00:00Z"), to),
        ]
    );
    // A person with a contact, or a webhook, always reaches someone.
    assert!(policy_coverage(&policy(), &dir, from, to).is_empty());
    // An unknown schedule reaches nobody.
    let mut unknown = only_schedule.clone();
    unknown.levels[0].targets = vec![target("schedule", "nope", None)];
    assert_eq!(
        policy_coverage(&unknown, &dir, from, to),
        [Gap { start: from, end: to }]
    );
}

#[test]
fn directory_validation_checks_people_and_references() {
    assert!(validate_directory(&directory()).is_ok());
    let mut dir = directory();
    dir.people.get_mut("bob").unwrap().time_zone = "Mars/Base".into();
    let s = dir.schedules.get_mut("primary").unwrap();
    s.layers[0].rotation.people.push("zed".into());
    s.overrides.push(Override {
        kind: OverrideKind::Replace,
        person: "alice".into(),
        by: Some("yan".into()),
        start: at(0),
        end: at(60),
    });
    dir.schedules.insert(
        "other".into(),
        Schedule {
            name: "x".into(),
            layers: vec![],
            overrides: vec![],
        },
    );
    assert_eq!(
        validate_directory(&dir).unwrap_err().paths(),
        [
            "people[\"bob\"].time_zone",
            "schedules[\"other\"].name",
            "schedules[\"other\"].layers",
            "schedules[\"primary\"].layers[0].rotation.people[1]",
            "schedules[\"primary\"].overrides[0].by",
        ]
    );
}

#[test]
fn partner_side_incidents_page_the_partner() {
    let mut p = policy();
    p.levels[0].targets = vec![target("partner", "", None), target("schedule", "primary", None)];
    assert!(validate_policy(&p, Some(&directory())).is_ok());
    let s = step(&p, &incident(Severity::Sev4), &directory(), at(0));
    let keys: Vec<(&str, Timestamp)> = s
        .notifications
        .iter()
        .map(|n| (n.key.as_str(), n.deliver_at))
        .collect();
    // The partner is paged at once; alice (low urgency, 04:00 Berlin) at 09:00.
    assert_eq!(
        keys,
        [
            ("INC-42/c0/r0/l0/partner/riverflow-inc/oncall", at(0)),
            ("INC-42/c0/r0/l0/person/alice/phone", ts("2026-11-05T08:00:00Z")),
        ]
    );
    assert_eq!(
        s.notifications[0].recipient,
        Recipient::Partner {
            partner: "riverflow-inc".into(),
            contact: "oncall".into()
        }
    );
    // A platform-side incident does not page the partner.
    let mut i = incident(Severity::Sev1);
    i.side = Side::Platform;
    let s = step(&p, &i, &directory(), at(0));
    assert_eq!(s.notifications.len(), 1);
    assert!(
        s.incident
            .timeline
            .last()
            .unwrap()
            .message
            .contains("a platform-side incident: the partner is not paged")
    );
}

#[test]
fn deliveries_are_recorded_on_the_incident() {
    let (p, dir) = (policy(), directory());
    let s = step(&p, &incident(Severity::Sev1), &dir, at(0));
    let n = &s.notifications[0];
    let record = |i: &Incident, attempt: Attempt, mins: i64| {
        handle(
            i,
            &Command::RecordDelivery {
                key: n.key.clone(),
                recipient: "alice/phone".into(),
                attempt,
            },
            at(mins),
            SYSTEM_ACTOR,
        )
        .unwrap()
    };
    let fail = |retry: Option<i64>| Attempt::Failed {
        error: "HTTP 503".into(),
        retry_at: retry.map(at),
    };
    let t1 = record(&s.incident, fail(Some(1)), 0);
    let t2 = record(&t1.incident, fail(Some(3)), 1);
    let t3 = record(&t2.incident, Attempt::Delivered, 3);
    let d = &t3.incident.deliveries[0];
    assert_eq!((d.attempts, d.delivered_at, d.gave_up), (3, Some(at(3)), false));
    assert_eq!(d.last_error.as_deref(), Some("HTTP 503"));
    let messages: Vec<&str> = t3
        .incident
        .timeline
        .iter()
        .rev()
        .take(3)
        .rev()
        .map(|e| e.message.as_str())
        .collect();
    assert_eq!(
        messages,
        [
            "delivery to \"alice/phone\" failed (attempt 1): \"HTTP 503\"; retrying at 2026-11-05T03:01:00Z",
            "delivery to \"alice/phone\" failed (attempt 2): \"HTTP 503\"; retrying at 2026-11-05T03:03:00Z",
            "delivered to \"alice/phone\" (attempt 3)",
        ]
    );
    // A replayed report changes nothing.
    let again = record(&t3.incident, Attempt::Delivered, 4);
    assert!(!again.changed(&t3.incident));
    // Giving up is visible too.
    let gave_up = record(&t2.incident, fail(None), 3);
    assert!(gave_up.incident.deliveries[0].gave_up);
    assert_eq!(
        gave_up.incident.timeline.last().unwrap().message,
        "gave up delivering to \"alice/phone\" after 3 attempts: \"HTTP 503\""
    );
}

#[test]
fn the_page_payload_carries_what_the_on_call_needs() {
    let (p, dir) = (policy(), directory());
    let s = step(&p, &incident(Severity::Sev2), &dir, at(0));
    let body = page_payload(
        &s.incident,
        &s.notifications[0],
        Some("4bf92f3577b34da6a3ce929d0e0e4736"),
    );
    assert_eq!(
        serde_json::to_value(&body).unwrap(),
        serde_json::json!({
            "key": "INC-42/c0/r0/l0/person/alice/phone",
            "incident": "INC-42",
            "title": "health gate failed in gcp:me-central2 (wave 4)",
            "tile": "riverflow",
            "regions": ["gcp:me-central2"],
            "severity": "SEV2",
            "state": "TRIGGERED",
            "source": "rollout-failure",
            "side": "partner",
            "count": 1,
            "level": 1,
            "round": 1,
            "sop": "integration-health",
            "deadline": null,
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            "summary": "SEV2 riverflow: health gate failed in gcp:me-central2 (wave 4) (level 1), SOP: integration-health",
            "show": "tilewave incident show INC-42",
            "ack": "tilewave incident ack INC-42",
        })
    );
}
