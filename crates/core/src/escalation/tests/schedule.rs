//! Schedules: handoffs across the 2026 DST changes in America/Chicago and
//! Europe/Berlin, layers, overrides, the next handoff, coverage gaps and
//! validation.

use super::super::local::{Day, WeeklyWindow, resolve};
use super::super::schedule::*;
use super::{date, hm, ts};

fn rotation(people: &[&str], shift: ShiftLength, handoff: (i8, i8), tz: &str, start: &str) -> Rotation {
    Rotation {
        people: people.iter().map(|p| p.to_string()).collect(),
        shift_length: shift,
        handoff: hm(handoff.0, handoff.1),
        time_zone: tz.into(),
        start: date(start),
    }
}

fn single(name: &str, r: Rotation) -> Schedule {
    Schedule {
        name: name.into(),
        layers: vec![Layer {
            name: "base".into(),
            level: 0,
            rotation: r,
            active: None,
        }],
        overrides: vec![],
    }
}

fn who(s: &Schedule, at: &str) -> Vec<String> {
    who_is_on_call(s, ts(at))
        .unwrap()
        .into_iter()
        .map(|c| c.person)
        .collect()
}

/// (zone, local handoff, start date, instants and who is on call then).
type DstCase = (
    &'static str,
    (i8, i8),
    &'static str,
    &'static [(&'static str, &'static str)],
);

#[test]
fn daily_handoffs_across_the_2026_dst_changes() {
    // A daily rotation of a, b, c; the person on call on day `start + n` is
    // people[n % 3].
    let cases: &[DstCase] = &[
        // Chicago springs forward on Mar 8 at 02:00 CST (08:00Z) to 03:00
        // CDT: a 02:30 handoff does not exist that day and moves to the next
        // valid minute, 03:00 CDT = 08:00Z (jiff's "compatible" would say
        // 03:30). The day before and after it is 02:30 local.
        (
            "America/Chicago",
            (2, 30),
            "2026-03-06",
            &[
                ("2026-03-07T08:29:59Z", "a"),
                ("2026-03-07T08:30:00Z", "b"), // Mar 7 02:30 CST
                ("2026-03-08T07:59:59Z", "b"),
                ("2026-03-08T08:00:00Z", "c"), // Mar 8 03:00 CDT, the jump
                ("2026-03-09T07:29:59Z", "c"),
                ("2026-03-09T07:30:00Z", "a"), // Mar 9 02:30 CDT
            ],
        ),
        // Chicago falls back on Nov 1 at 02:00 CDT (07:00Z) to 01:00 CST:
        // 01:30 happens twice (06:30Z and 07:30Z); the handoff is the first.
        (
            "America/Chicago",
            (1, 30),
            "2026-10-30",
            &[
                ("2026-10-31T06:29:59Z", "a"),
                ("2026-10-31T06:30:00Z", "b"), // Oct 31 01:30 CDT
                ("2026-11-01T06:29:59Z", "b"),
                ("2026-11-01T06:30:00Z", "c"), // Nov 1 01:30 CDT, first
                ("2026-11-01T07:30:00Z", "c"), // the second 01:30: no handoff
                ("2026-11-02T07:29:59Z", "c"), // a 25-hour shift
                ("2026-11-02T07:30:00Z", "a"), // Nov 2 01:30 CST
            ],
        ),
        // Berlin springs forward on Mar 29 at 02:00 CET (01:00Z) to 03:00
        // CEST: 02:15 does not exist; the handoff is at 03:00 CEST = 01:00Z.
        (
            "Europe/Berlin",
            (2, 15),
            "2026-03-27",
            &[
                ("2026-03-28T01:14:59Z", "a"),
                ("2026-03-28T01:15:00Z", "b"), // Mar 28 02:15 CET
                ("2026-03-29T00:59:59Z", "b"),
                ("2026-03-29T01:00:00Z", "c"), // Mar 29 03:00 CEST
                ("2026-03-30T00:14:59Z", "c"),
                ("2026-03-30T00:15:00Z", "a"), // Mar 30 02:15 CEST
            ],
        ),
        // Berlin falls back on Oct 25 at 03:00 CEST (01:00Z) to 02:00 CET:
        // 02:30 happens twice (00:30Z and 01:30Z); the handoff is the first.
        (
            "Europe/Berlin",
            (2, 30),
            "2026-10-23",
            &[
                ("2026-10-24T00:29:59Z", "a"),
                ("2026-10-24T00:30:00Z", "b"), // Oct 24 02:30 CEST
                ("2026-10-25T00:29:59Z", "b"),
                ("2026-10-25T00:30:00Z", "c"), // Oct 25 02:30 CEST, first
                ("2026-10-25T01:30:00Z", "c"), // the second 02:30: no handoff
                ("2026-10-26T01:29:59Z", "c"),
                ("2026-10-26T01:30:00Z", "a"), // Oct 26 02:30 CET
            ],
        ),
    ];
    for (tz, handoff, start, checks) in cases {
        let s = single(
            "primary",
            rotation(&["a", "b", "c"], ShiftLength::Days(1), *handoff, tz, start),
        );
        for (at, person) in *checks {
            assert_eq!(who(&s, at), vec![person.to_string()], "{tz} at {at}");
        }
    }
}

#[test]
fn resolve_follows_the_written_rules() {
    // (zone, local date-time, instant)
    let cases = [
        ("America/Chicago", "2026-03-08T02:00", "2026-03-08T08:00:00Z"),
        ("America/Chicago", "2026-03-08T02:59", "2026-03-08T08:00:00Z"),
        ("America/Chicago", "2026-03-08T03:00", "2026-03-08T08:00:00Z"),
        ("America/Chicago", "2026-11-01T01:00", "2026-11-01T06:00:00Z"),
        ("America/Chicago", "2026-11-01T01:59", "2026-11-01T06:59:00Z"),
        ("America/Chicago", "2026-11-01T02:00", "2026-11-01T08:00:00Z"),
        ("Europe/Berlin", "2026-03-29T02:30", "2026-03-29T01:00:00Z"),
        ("Europe/Berlin", "2026-10-25T02:00", "2026-10-25T00:00:00Z"),
        ("Europe/Berlin", "2026-10-25T03:00", "2026-10-25T02:00:00Z"),
        ("UTC", "2026-06-01T12:00", "2026-06-01T12:00:00Z"),
    ];
    for (tz, local, want) in cases {
        let zone = jiff::tz::TimeZone::get(tz).unwrap();
        let got = resolve(&zone, local.parse().unwrap()).unwrap();
        assert_eq!(got, ts(want), "{tz} {local}");
    }
}

#[test]
fn weekly_shifts_keep_their_local_handoff_across_dst() {
    let s = single(
        "primary",
        rotation(
            &["a", "b"],
            ShiftLength::Days(7),
            (9, 0),
            "America/Chicago",
            "2026-03-02",
        ),
    );
    // Mar 2 09:00 CST = 15:00Z; Mar 9 09:00 CDT = 14:00Z (a 167-hour shift).
    let on = who_is_on_call(&s, ts("2026-03-09T13:59:59Z")).unwrap();
    assert_eq!(on[0].person, "a");
    assert_eq!(
        on[0].span,
        (ts("2026-03-02T15:00:00Z"), ts("2026-03-09T14:00:00Z"))
    );
    assert_eq!(on[0].layer.as_deref(), Some("base"));
    assert!(!on[0].by_override);
    assert_eq!(who(&s, "2026-03-09T14:00:00Z"), ["b"]);
    // Before the first handoff nobody is on call.
    assert!(who(&s, "2026-03-02T14:59:59Z").is_empty());
    // Twelve-hour shifts hand off at 09:00 and 21:00 local.
    let s = single(
        "primary",
        rotation(
            &["day", "night"],
            ShiftLength::Hours(12),
            (9, 0),
            "Europe/Berlin",
            "2026-03-28",
        ),
    );
    assert_eq!(who(&s, "2026-03-28T19:59:59Z"), ["day"]); // 20:59 CET
    assert_eq!(who(&s, "2026-03-28T20:00:00Z"), ["night"]); // 21:00 CET
    assert_eq!(who(&s, "2026-03-29T06:59:59Z"), ["night"]); // 08:59 CEST: an 11-hour night
    assert_eq!(who(&s, "2026-03-29T07:00:00Z"), ["day"]); // 09:00 CEST
}

fn layered() -> Schedule {
    let weekend = WeeklyWindow {
        days: vec![Day::Sat],
        start: hm(0, 0),
        end: hm(0, 0),
    };
    let mut sunday = weekend.clone();
    sunday.days = vec![Day::Sun];
    Schedule {
        name: "primary".into(),
        layers: vec![
            Layer {
                name: "weekly".into(),
                level: 0,
                rotation: rotation(
                    &["alice", "bob"],
                    ShiftLength::Days(7),
                    (9, 0),
                    "Europe/Berlin",
                    "2026-11-02",
                ),
                active: None,
            },
            Layer {
                name: "saturday".into(),
                level: 1,
                rotation: rotation(
                    &["carol"],
                    ShiftLength::Days(1),
                    (0, 0),
                    "Europe/Berlin",
                    "2026-01-01",
                ),
                active: Some(weekend),
            },
            Layer {
                name: "sunday".into(),
                level: 1,
                rotation: rotation(
                    &["dan"],
                    ShiftLength::Days(1),
                    (0, 0),
                    "Europe/Berlin",
                    "2026-01-01",
                ),
                active: Some(sunday),
            },
        ],
        overrides: vec![],
    }
}

#[test]
fn a_higher_layer_wins_where_it_has_someone() {
    let s = layered();
    // (instant, who) Nov 2 2026 is a Monday; Berlin is UTC+1.
    let cases = [
        ("2026-11-06T12:00:00Z", "alice"), // Friday
        ("2026-11-06T22:59:59Z", "alice"), // Friday 23:59:59 local
        ("2026-11-06T23:00:00Z", "carol"), // Saturday 00:00 local
        ("2026-11-07T23:00:00Z", "dan"),   // Sunday 00:00 local
        ("2026-11-08T23:00:00Z", "alice"), // Monday 00:00
        ("2026-11-09T08:00:00Z", "bob"),   // Monday 09:00: the weekly handoff
    ];
    for (at, person) in cases {
        assert_eq!(who(&s, at), [person], "at {at}");
    }
    assert!(validate_schedule(&s).is_ok());
}

#[test]
fn overrides_add_replace_and_remove() {
    let mut s = layered();
    let o = |kind, person: &str, by: Option<&str>, start, end| Override {
        kind,
        person: person.into(),
        by: by.map(str::to_string),
        start: ts(start),
        end: ts(end),
    };
    s.overrides = vec![
        o(
            OverrideKind::Add,
            "erin",
            None,
            "2026-11-04T00:00:00Z",
            "2026-11-05T00:00:00Z",
        ),
        o(
            OverrideKind::Replace,
            "alice",
            Some("frank"),
            "2026-11-04T12:00:00Z",
            "2026-11-04T13:00:00Z",
        ),
        o(
            OverrideKind::Remove,
            "alice",
            None,
            "2026-11-05T12:00:00Z",
            "2026-11-05T13:00:00Z",
        ),
        // Replacing someone not on call changes nothing.
        o(
            OverrideKind::Replace,
            "bob",
            Some("gina"),
            "2026-11-05T00:00:00Z",
            "2026-11-06T00:00:00Z",
        ),
    ];
    let cases: [(&str, &[&str]); 5] = [
        ("2026-11-03T12:00:00Z", &["alice"]),
        ("2026-11-04T11:00:00Z", &["alice", "erin"]),
        ("2026-11-04T12:30:00Z", &["erin", "frank"]),
        ("2026-11-05T12:30:00Z", &[]),
        ("2026-11-05T13:00:00Z", &["alice"]),
    ];
    for (at, people) in cases {
        assert_eq!(who(&s, at), people, "at {at}");
    }
    let on = who_is_on_call(&s, ts("2026-11-04T12:30:00Z")).unwrap();
    assert_eq!(on[1].layer, None);
    assert!(on[1].by_override);
    assert_eq!(
        on[1].span,
        (ts("2026-11-04T12:00:00Z"), ts("2026-11-04T13:00:00Z"))
    );
    // The next change after 11:00 is frank replacing alice at 12:00.
    let (at, then) = next_handoff(&s, ts("2026-11-04T11:00:00Z")).unwrap().unwrap();
    assert_eq!(at, ts("2026-11-04T12:00:00Z"));
    assert_eq!(
        then.iter().map(|c| c.person.as_str()).collect::<Vec<_>>(),
        ["erin", "frank"]
    );
}

#[test]
fn next_handoff_skips_boundaries_that_change_nothing() {
    // One person in a daily rotation: handoffs change nothing, so there is
    // no next handoff within the horizon.
    let s = single(
        "solo",
        rotation(&["a"], ShiftLength::Days(1), (9, 0), "UTC", "2026-01-01"),
    );
    assert_eq!(next_handoff(&s, ts("2026-06-01T00:00:00Z")).unwrap(), None);
    // Before the start, the first handoff is the next.
    let (at, then) = next_handoff(&s, ts("2025-12-31T00:00:00Z")).unwrap().unwrap();
    assert_eq!(at, ts("2026-01-01T09:00:00Z"));
    assert_eq!(then[0].person, "a");
    // Across the Chicago spring-forward day, with a handoff in the gap.
    let s = single(
        "primary",
        rotation(
            &["a", "b"],
            ShiftLength::Days(1),
            (2, 30),
            "America/Chicago",
            "2026-03-01",
        ),
    );
    let (at, _) = next_handoff(&s, ts("2026-03-07T12:00:00Z")).unwrap().unwrap();
    assert_eq!(at, ts("2026-03-08T08:00:00Z"));
}

#[test]
fn coverage_reports_every_uncovered_span() {
    let office = WeeklyWindow::office_hours();
    let s = Schedule {
        name: "office".into(),
        layers: vec![Layer {
            name: "day".into(),
            level: 0,
            rotation: rotation(
                &["a", "b"],
                ShiftLength::Days(1),
                (9, 0),
                "America/Chicago",
                "2026-11-04",
            ),
            active: Some(office),
        }],
        overrides: vec![],
    };
    // Wed Nov 4 2026 00:00 CST to Fri Nov 6 00:00 CST: Wednesday 09:00 to
    // 17:00 and Thursday 09:00 to 17:00 covered.
    let c = coverage(&s, ts("2026-11-04T06:00:00Z"), ts("2026-11-06T06:00:00Z")).unwrap();
    let gaps: Vec<(Timestamp, Timestamp)> = c.gaps.iter().map(|g| (g.start, g.end)).collect();
    assert_eq!(
        gaps,
        [
            (ts("2026-11-04T06:00:00Z"), ts("2026-11-04T15:00:00Z")),
            (ts("2026-11-04T23:00:00Z"), ts("2026-11-05T15:00:00Z")),
            (ts("2026-11-05T23:00:00Z"), ts("2026-11-06T06:00:00Z")),
        ]
    );
    assert!(!c.is_complete());
    assert_eq!(
        c.warnings()[0],
        "schedule \"office\": nobody is on call from 2026-11-04T06:00:00Z to 2026-11-04T15:00:00Z (9h)"
    );
    // An always-active layer covers everything after its start.
    let full = single(
        "full",
        rotation(&["a", "b"], ShiftLength::Days(1), (9, 0), "UTC", "2026-11-04"),
    );
    let c = coverage(&full, ts("2026-11-04T00:00:00Z"), ts("2026-11-10T00:00:00Z")).unwrap();
    assert_eq!(
        c.gaps,
        [Gap {
            start: ts("2026-11-04T00:00:00Z"),
            end: ts("2026-11-04T09:00:00Z")
        }]
    );
    let c = coverage(&full, ts("2026-11-05T00:00:00Z"), ts("2026-11-10T00:00:00Z")).unwrap();
    assert!(c.is_complete());
}

use jiff::Timestamp;

#[test]
fn validation_returns_every_problem_with_its_path() {
    let good = layered();
    let mut bad = good.clone();
    bad.name = " ".into();
    bad.layers[0].rotation.people.clear();
    bad.layers[0].rotation.shift_length = ShiftLength::Hours(0);
    bad.layers[0].rotation.time_zone = "Mars/Olympus".into();
    bad.layers[1].name = "weekly".into();
    // Sunday at level 1 all day overlaps a second all-days level-1 layer.
    let mut clash = good.layers[2].clone();
    clash.name = "nights".into();
    clash.active = Some(WeeklyWindow {
        days: vec![],
        start: hm(20, 0),
        end: hm(8, 0),
    });
    bad.layers.push(clash);
    bad.overrides = vec![
        Override {
            kind: OverrideKind::Replace,
            person: "".into(),
            by: None,
            start: ts("2026-11-04T12:00:00Z"),
            end: ts("2026-11-04T12:00:00Z"),
        },
        Override {
            kind: OverrideKind::Add,
            person: "x".into(),
            by: Some("y".into()),
            start: ts("2026-11-04T12:00:00Z"),
            end: ts("2026-11-04T13:00:00Z"),
        },
    ];
    let e = validate_schedule(&bad).unwrap_err();
    assert_eq!(
        e.paths(),
        [
            "name",
            "layers[0].rotation.people",
            "layers[0].rotation.shift_length",
            "layers[0].rotation.time_zone",
            "layers[1].name",
            "layers[3]",
            "layers[3]",
            "overrides[0].end",
            "overrides[0].person",
            "overrides[0].by",
            "overrides[1].by",
        ],
        "{e}"
    );
    let text = e.to_string();
    assert!(
        text.contains("layers[0].rotation.time_zone: unknown time zone \"Mars/Olympus\"; use an IANA name")
    );
    assert!(text.contains("layers[3]: overlaps layers[1]: both are level 1 and active at the same time"));
    assert!(text.contains("layers[0].rotation.shift_length: must be more than zero"));
    // Same level, disjoint hours: fine. Same level, no hours: overlap.
    let mut two = good.clone();
    two.layers[2].active = None;
    assert_eq!(validate_schedule(&two).unwrap_err().paths(), ["layers[2]"]);
    let empty = Schedule {
        name: "x".into(),
        layers: vec![],
        overrides: vec![],
    };
    assert_eq!(validate_schedule(&empty).unwrap_err().paths(), ["layers"]);
    // The queries validate first.
    assert!(who_is_on_call(&bad, ts("2026-11-04T12:00:00Z")).is_err());
}

#[test]
fn schedules_parse_from_yaml_like_json() {
    let s: Schedule = serde_json::from_value(serde_json::json!({
        "name": "primary",
        "layers": [{
            "name": "weekly", "level": 0,
            "rotation": {
                "people": ["alice", "bob"], "shift_length": {"days": 7},
                "handoff": "09:00", "time_zone": "Europe/Berlin", "start": "2026-11-02"
            },
            "active": {"days": ["mon", "tue"], "start": "09:00", "end": "17:00"}
        }],
        "overrides": [{"kind": "replace", "person": "alice", "by": "bob",
                       "start": "2026-11-04T12:00:00Z", "end": "2026-11-04T13:00:00Z"}]
    }))
    .unwrap();
    assert_eq!(s.layers[0].rotation.shift_length, ShiftLength::Days(7));
    assert_eq!(s.overrides[0].kind, OverrideKind::Replace);
    assert!(validate_schedule(&s).is_ok());
}

mod properties {
    use jiff::SignedDuration;
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// For any instant of 2026 and any handoff time, in both zones:
        /// the shift holds the instant, starts at the handoff's local time
        /// (or at the end of a DST gap that swallowed it), and lasts its
        /// length give or take the one-hour DST change.
        #[test]
        fn shifts_hold_the_instant_and_start_at_the_handoff(
            secs in 0i64..365 * 86_400,
            hour in 0i8..24,
            minute in 0i8..60,
            days in 1u32..8,
            berlin in any::<bool>(),
        ) {
            let tz_name = if berlin { "Europe/Berlin" } else { "America/Chicago" };
            let s = single(
                "p",
                rotation(&["a", "b", "c"], ShiftLength::Days(days), (hour, minute), tz_name, "2025-12-01"),
            );
            let t = ts("2026-01-01T00:00:00Z").checked_add(SignedDuration::from_secs(secs)).unwrap();
            let on = who_is_on_call(&s, t).unwrap();
            prop_assert_eq!(on.len(), 1);
            let (start, end) = on[0].span;
            prop_assert!(start <= t && t < end);
            let nominal = SignedDuration::from_hours(i64::from(days) * 24);
            let len = end.duration_since(start);
            prop_assert!((len - nominal).abs() <= SignedDuration::from_hours(1), "{len:?}");
            let tz = jiff::tz::TimeZone::get(tz_name).unwrap();
            let local = tz.to_datetime(start).time();
            let want = hm(hour, minute);
            // Either the handoff time itself, or the first minute after a gap.
            let in_gap = local != want && resolve(&tz, tz.to_datetime(start).date().to_datetime(want)) == Some(start);
            prop_assert!(local == want || in_gap, "{start} local {local} want {want}");
            // Nothing changes inside the shift.
            let last = end.checked_sub(SignedDuration::from_secs(1)).unwrap();
            prop_assert_eq!(who_is_on_call(&s, last).unwrap()[0].person.clone(), on[0].person.clone());
        }
    }
}
