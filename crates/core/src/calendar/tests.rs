//! Table tests of the launch calendar: validation (every refusal names its
//! field), slot enumeration (several weekdays, DST kept in local time, gaps,
//! merged slots, blackouts), the choice (every skip reason, every refusal,
//! the exact boundaries), the batch (50 tiles, first ready first served, no
//! slot overfilled) and the real planner behind the `plan_end` closure.

use std::collections::BTreeMap;

use jiff::civil::{Time, Weekday};
use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::planner::{Period, PlanInput};
use crate::regions::{Cloud, RegionCatalog};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn hours(h: i64) -> SignedDuration {
    SignedDuration::from_hours(h)
}

/// Journey 1's "now": Mon 30 Nov 2026 09:00 UTC.
fn now() -> Timestamp {
    ts("2026-11-30T09:00:00Z")
}

fn rule(days: &[Weekday], h: i8, m: i8, tz: &str, capacity: u32) -> LaunchRule {
    LaunchRule {
        name: format!("{days:?} {h:02}:{m:02} {tz}"),
        days: Days::of(days),
        time: Time::constant(h, m, 0, 0),
        tz: tz.into(),
        capacity,
    }
}

fn blackout(start: &str, end: &str, reason: &str) -> Blackout {
    Blackout {
        start: ts(start),
        end: ts(end),
        reason: reason.into(),
    }
}

fn extra(at: &str, capacity: u32, name: &str) -> ExtraSlot {
    ExtraSlot {
        at: ts(at),
        capacity,
        name: name.into(),
    }
}

fn tuesdays(capacity: u32) -> LaunchCalendar {
    LaunchCalendar {
        rules: vec![LaunchRule::tuesdays_17_utc(capacity)],
        ..Default::default()
    }
}

fn instants(cal: &LaunchCalendar, from: &str, to: &str) -> Vec<String> {
    cal.slots(ts(from), ts(to))
        .unwrap()
        .iter()
        .map(|s| s.at.to_string())
        .collect()
}

/// A plan that always ends 5 days before GA.
fn fits(ga: Timestamp) -> Option<Timestamp> {
    Some(ga - hours(5 * 24))
}

// ---------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------

type Edit = Box<dyn Fn(&mut LaunchCalendar)>;

#[test]
fn validation_refusals_name_the_field() {
    let base = || {
        let mut c = tuesdays(5);
        c.blackouts.push(blackout(
            "2026-12-21T00:00:00Z",
            "2027-01-04T00:00:00Z",
            "Christmas",
        ));
        c.extra_slots
            .push(extra("2026-12-10T17:00:00Z", 3, "extra Thursday"));
        c
    };
    base().validate(now()).unwrap();
    let cases: Vec<(&str, Edit, &str, &str)> = vec![
        (
            "unknown zone",
            Box::new(|c| c.rules[0].tz = "Mars/Olympus".into()),
            "rules[0].tz",
            "unknown time zone \"Mars/Olympus\"",
        ),
        (
            "no weekday",
            Box::new(|c| c.rules[0].days = Days::NONE),
            "rules[0].days",
            "names no weekday",
        ),
        (
            "rule capacity 0",
            Box::new(|c| c.rules[0].capacity = 0),
            "rules[0].capacity",
            "got 0",
        ),
        (
            "extra capacity 0",
            Box::new(|c| c.extra_slots[0].capacity = 0),
            "extra_slots[0].capacity",
            "at least 1 tile",
        ),
        (
            "blackout ends before it starts",
            Box::new(|c| c.blackouts[0].end = ts("2026-12-20T00:00:00Z")),
            "blackouts[0].end",
            "ends (2026-12-20T00:00:00Z) at or before it starts (2026-12-21T00:00:00Z)",
        ),
        (
            "empty blackout",
            Box::new(|c| c.blackouts[0].end = c.blackouts[0].start),
            "blackouts[0].end",
            "at or before it starts",
        ),
        (
            "no reason",
            Box::new(|c| c.blackouts[0].reason = "  ".into()),
            "blackouts[0].reason",
            "needs a reason",
        ),
        (
            "slot in the past",
            Box::new(|c| c.extra_slots[0].at = ts("2026-11-30T08:59:59Z")),
            "extra_slots[0].at",
            "is in the past (now is 2026-11-30T09:00:00Z)",
        ),
        (
            "slot in a blackout",
            Box::new(|c| c.extra_slots[0].at = ts("2026-12-24T12:00:00Z")),
            "extra_slots[0].at",
            "inside blackout blackouts[0] (\"Christmas\")",
        ),
        (
            "rule with no slot in the next year",
            Box::new(|c| {
                c.extra_slots.clear();
                c.blackouts.push(blackout(
                    "2026-11-01T00:00:00Z",
                    "2028-01-01T00:00:00Z",
                    "moratorium",
                ));
            }),
            "rules[0]",
            "yields no slot outside blackouts between 2026-11-30T09:00:00Z and 2027-11-30T09:00:00Z",
        ),
        (
            "second rule blacked out on its only weekday",
            Box::new(|c| {
                c.rules.push(rule(&[Weekday::Saturday], 10, 0, "UTC", 1));
                // Every Saturday of the next year, one by one.
                let mut day = ts("2026-12-05T00:00:00Z");
                while day < ts("2027-12-05T00:00:00Z") {
                    c.blackouts.push(Blackout {
                        start: day,
                        end: day + hours(24),
                        reason: "weekend".into(),
                    });
                    day += hours(7 * 24);
                }
            }),
            "rules[1]",
            "yields no slot",
        ),
    ];
    for (name, edit, field, message) in cases {
        let mut c = base();
        edit(&mut c);
        let err = c.validate(now()).expect_err(name);
        assert_eq!(err.field(), field, "{name}: {err}");
        let text = err.to_string();
        assert!(text.starts_with(&format!("{field}: ")), "{name}: {text}");
        assert!(text.contains(message), "{name}: {text}");
    }
}

#[test]
fn prune_forgets_the_past_so_an_old_calendar_validates() {
    let mut c = tuesdays(5);
    c.extra_slots.push(extra("2026-11-01T17:00:00Z", 1, "old"));
    c.blackouts.push(blackout(
        "2026-10-01T00:00:00Z",
        "2026-10-02T00:00:00Z",
        "old freeze",
    ));
    assert_eq!(c.validate(now()).unwrap_err().field(), "extra_slots[0].at");
    c.prune(now());
    assert!(c.extra_slots.is_empty() && c.blackouts.is_empty());
    c.validate(now()).unwrap();
}

#[test]
fn a_long_input_is_quoted_bounded() {
    let mut c = tuesdays(1);
    c.rules[0].tz = "x".repeat(100_000);
    let text = c.validate(now()).unwrap_err().to_string();
    assert!(text.len() < 300, "{text}");
    assert!(text.contains("(100000 bytes)"), "{text}");
}

// ---------------------------------------------------------------------------
// Slots
// ---------------------------------------------------------------------------

#[test]
fn tuesday_17_utc_slots_in_order_half_open() {
    let c = tuesdays(5);
    assert_eq!(
        instants(&c, "2026-12-01T17:00:00Z", "2026-12-22T17:00:00Z"),
        [
            "2026-12-01T17:00:00Z",
            "2026-12-08T17:00:00Z",
            "2026-12-15T17:00:00Z"
        ]
    );
    assert!(instants(&c, "2026-12-01T17:00:01Z", "2026-12-08T17:00:00Z").is_empty());
    assert!(instants(&c, "2026-12-08T17:00:00Z", "2026-12-08T17:00:00Z").is_empty());
    let s = &c.slots(now(), now() + hours(24 * 7)).unwrap()[0];
    assert_eq!((s.capacity, s.sources.clone()), (5, vec![SlotSource::Rule(0)]));
    assert_eq!(s.to_string(), "Tue 1 Dec 2026 17:00 UTC (room for 5)");
}

#[test]
fn several_weekdays() {
    let c = LaunchCalendar {
        rules: vec![rule(&[Weekday::Tuesday, Weekday::Thursday], 9, 30, "UTC", 2)],
        ..Default::default()
    };
    assert_eq!(
        instants(&c, "2026-11-30T00:00:00Z", "2026-12-08T00:00:00Z"),
        ["2026-12-01T09:30:00Z", "2026-12-03T09:30:00Z"]
    );
}

#[test]
fn dst_keeps_the_local_time() {
    let cases = [
        // New York, DST starts Sun 14 Mar 2027: 17:00 EST = 22:00Z, then EDT = 21:00Z.
        (
            "America/New_York",
            "2027-03-08T00:00:00Z",
            "2027-03-20T00:00:00Z",
            ["2027-03-09T22:00:00Z", "2027-03-16T21:00:00Z"],
        ),
        // Berlin, DST ends Sun 25 Oct 2026: 17:00 CEST = 15:00Z, then CET = 16:00Z.
        (
            "Europe/Berlin",
            "2026-10-19T00:00:00Z",
            "2026-10-31T00:00:00Z",
            ["2026-10-20T15:00:00Z", "2026-10-27T16:00:00Z"],
        ),
        // Sydney, DST ends Sun 4 Apr 2027 (southern hemisphere): AEDT +11, then AEST +10.
        (
            "Australia/Sydney",
            "2027-03-29T00:00:00Z",
            "2027-04-10T00:00:00Z",
            ["2027-03-30T06:00:00Z", "2027-04-06T07:00:00Z"],
        ),
    ];
    for (tz, from, to, want) in cases {
        let c = LaunchCalendar {
            rules: vec![rule(&[Weekday::Tuesday], 17, 0, tz, 5)],
            ..Default::default()
        };
        assert_eq!(instants(&c, from, to), want, "{tz}");
    }
}

#[test]
fn a_time_in_a_dst_gap_is_taken_when_the_gap_ends() {
    // 02:30 does not exist in New York on Sun 14 Mar 2027: 03:30 EDT.
    let c = LaunchCalendar {
        rules: vec![rule(&[Weekday::Sunday], 2, 30, "America/New_York", 1)],
        ..Default::default()
    };
    assert_eq!(
        instants(&c, "2027-03-07T00:00:00Z", "2027-03-22T00:00:00Z"),
        [
            "2027-03-07T07:30:00Z",
            "2027-03-14T07:30:00Z",
            "2027-03-21T06:30:00Z"
        ]
    );
}

#[test]
fn same_instant_slots_merge_and_blackouts_are_left_out() {
    let mut c = tuesdays(5);
    c.rules.push(rule(
        &[Weekday::Tuesday, Weekday::Friday],
        18,
        0,
        "Europe/Berlin",
        2,
    )); // 17:00Z in winter
    c.extra_slots
        .push(extra("2026-12-08T17:00:00Z", 4, "launch party"));
    c.blackouts.push(blackout(
        "2026-12-15T00:00:00Z",
        "2026-12-16T00:00:00Z",
        "release freeze",
    ));
    let all = c
        .candidate_slots(ts("2026-12-07T00:00:00Z"), ts("2026-12-17T00:00:00Z"))
        .unwrap();
    let got: Vec<(String, u32, usize, Option<usize>)> = all
        .iter()
        .map(|c| {
            (
                c.slot.at.to_string(),
                c.slot.capacity,
                c.slot.sources.len(),
                c.blackout,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("2026-12-08T17:00:00Z".to_string(), 11, 3, None),
            ("2026-12-11T17:00:00Z".to_string(), 2, 1, None),
            ("2026-12-15T17:00:00Z".to_string(), 7, 2, Some(0)),
        ]
    );
    assert_eq!(
        c.describe_sources(&all[0].slot),
        "Tuesday group launch + [Tuesday, Friday] 18:00 Europe/Berlin + launch party"
    );
    assert_eq!(
        instants(&c, "2026-12-07T00:00:00Z", "2026-12-17T00:00:00Z"),
        ["2026-12-08T17:00:00Z", "2026-12-11T17:00:00Z"]
    );
}

#[test]
fn a_year_of_daily_slots_is_365_steps() {
    let c = LaunchCalendar {
        rules: vec![rule(&[Weekday::Monday], 0, 0, "UTC", 1), {
            let mut r = rule(&[], 12, 0, "UTC", 20);
            r.days = Days::EVERY_DAY;
            r
        }],
        ..Default::default()
    };
    let s = c
        .slots(ts("2027-01-01T00:00:00Z"), ts("2028-01-01T00:00:00Z"))
        .unwrap();
    assert_eq!(s.len(), 365 + 52);
    assert!(s.windows(2).all(|w| w[0].at < w[1].at));
}

// ---------------------------------------------------------------------------
// The choice
// ---------------------------------------------------------------------------

fn reasons(choice: &Choice) -> Vec<(String, String)> {
    choice
        .skipped()
        .iter()
        .map(|s| (s.at.to_string(), s.reason.to_string()))
        .collect()
}

#[test]
fn every_skip_reason_in_one_choice() {
    // Tuesdays 17:00 UTC, room for 2.
    let mut c = tuesdays(2);
    c.blackouts.push(blackout(
        "2026-12-08T00:00:00Z",
        "2026-12-09T00:00:00Z",
        "release freeze",
    ));
    let mut booked = Reservations::new();
    booked.set(ts("2026-12-22T17:00:00Z"), 2);
    booked.set(ts("2027-01-05T17:00:00Z"), 1);
    let gtm = Gtm::Pending {
        ready_by: Some(ts("2026-12-16T00:00:00Z")),
    };
    let mut calls = Vec::new();
    let choice = choose(&c, now(), &booked, gtm, &ChooseOptions::default(), |ga| {
        calls.push(ga);
        // Misses by an hour for 29 Dec, fits for 5 Jan.
        if ga == ts("2026-12-29T17:00:00Z") {
            Some(ga - hours(23))
        } else {
            fits(ga)
        }
    })
    .unwrap();
    assert_eq!(
        reasons(&choice),
        [
            (
                "2026-12-01T17:00:00Z",
                "under 7 days away (the earliest GA is Mon 7 Dec 2026 09:00 UTC)"
            ),
            (
                "2026-12-08T17:00:00Z",
                "blackout \"release freeze\" (blackouts[0])"
            ),
            (
                "2026-12-15T17:00:00Z",
                "go-to-market pending (due Wed 16 Dec 2026 00:00 UTC)"
            ),
            ("2026-12-22T17:00:00Z", "slot full (2 of 2 booked)"),
            (
                "2026-12-29T17:00:00Z",
                "the plan cannot fit: it ends Mon 28 Dec 2026 18:00 UTC, 1h after the deadline \
                 Mon 28 Dec 2026 17:00 UTC (GA - 24h)"
            ),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    // The planner runs only for slots that pass every other test.
    assert_eq!(calls, [ts("2026-12-29T17:00:00Z"), ts("2027-01-05T17:00:00Z")]);
    let Choice::Chosen(chosen) = &choice else {
        panic!("{choice}")
    };
    assert_eq!(chosen.slot.at, ts("2027-01-05T17:00:00Z"));
    assert_eq!((chosen.booked, chosen.slot.capacity), (1, 2));
    assert_eq!(chosen.slack, hours(4 * 24));
    assert!(!chosen.committable());
    assert!(
        choice
            .to_string()
            .contains("go-to-market pending: a proposal, to commit once it is done"),
        "{choice}"
    );
    assert!(
        choice.to_string().starts_with(
            "GA Tue 5 Jan 2027 17:00 UTC: 1 of 2 booked before; the roll-out ends Thu 31 Dec 2026 17:00 UTC, \
             slack 4d 00h; go-to-market pending: a proposal, to commit once it is done\n  skipped Tue 1 Dec 2026 17:00 UTC: under 7 days away"
        ),
        "{choice}"
    );
}

#[test]
fn boundaries_are_inclusive() {
    // A slot exactly 7 days ahead qualifies, and a plan ending exactly 24 h
    // before it fits.
    let c = tuesdays(1);
    let now = ts("2026-12-01T17:00:00Z");
    let choice = choose(
        &c,
        now,
        &Reservations::new(),
        Gtm::Done,
        &ChooseOptions::default(),
        |ga| Some(ga - PLAN_MARGIN),
    )
    .unwrap();
    let Choice::Chosen(chosen) = &choice else {
        panic!("{choice}")
    };
    assert_eq!(chosen.slot.at, ts("2026-12-08T17:00:00Z"));
    assert_eq!(chosen.slack, SignedDuration::ZERO);
    // The Tuesday of `now` itself is listed as under 7 days.
    assert_eq!(reasons(&choice).len(), 1);
    // One second less of lead time and the slot is out.
    let choice = choose(
        &c,
        now + SignedDuration::from_secs(1),
        &Reservations::new(),
        Gtm::Done,
        &ChooseOptions::default(),
        fits,
    )
    .unwrap();
    assert_eq!(choice.ga(), Some(ts("2026-12-15T17:00:00Z")));
}

#[test]
fn gtm_override_and_not_before() {
    let c = tuesdays(1);
    let opts = ChooseOptions {
        not_before: Some(ts("2026-12-20T00:00:00Z")),
        ..Default::default()
    };
    let choice = choose(&c, now(), &Reservations::new(), Gtm::Overridden, &opts, fits).unwrap();
    let Choice::Chosen(chosen) = &choice else {
        panic!("{choice}")
    };
    assert_eq!(chosen.slot.at, ts("2026-12-22T17:00:00Z"));
    assert!(chosen.committable() && chosen.gtm == Gtm::Overridden);
    assert!(
        choice.to_string().contains("go-to-market pending, OVERRIDDEN"),
        "{choice}"
    );
    let c = SkipCounts::of(&chosen.skipped);
    assert_eq!((c.not_before, c.total()), (3, 3));
}

/// A refusal case: the calendar, the reservations, GTM, the plan, and what
/// the "no slot before" answer must count.
struct Refusal {
    name: &'static str,
    calendar: LaunchCalendar,
    booked: Vec<(&'static str, u32)>,
    gtm: Gtm,
    plan: fn(Timestamp) -> Option<Timestamp>,
    want: SkipCounts,
    says: &'static str,
}

#[test]
fn no_slot_before_the_horizon_says_why() {
    let year_of_tuesdays = 52;
    let full: Vec<(&str, u32)> = Vec::new();
    let cases = vec![
        Refusal {
            name: "every slot full",
            calendar: tuesdays(1),
            booked: full,
            gtm: Gtm::Done,
            plan: fits,
            want: SkipCounts {
                under_lead_time: 1,
                full: year_of_tuesdays - 1,
                ..Default::default()
            },
            says: "1 under 7 days away, 51 full",
        },
        Refusal {
            name: "a blackout over the whole horizon",
            calendar: {
                let mut c = tuesdays(3);
                c.blackouts.push(blackout(
                    "2026-12-02T00:00:00Z",
                    "2028-01-01T00:00:00Z",
                    "moratorium",
                ));
                c
            },
            booked: Vec::new(),
            gtm: Gtm::Done,
            plan: fits,
            want: SkipCounts {
                under_lead_time: 1,
                blackout: year_of_tuesdays - 1,
                ..Default::default()
            },
            says: "1 under 7 days away, 51 blacked out",
        },
        Refusal {
            name: "GTM pending without a due date",
            calendar: tuesdays(3),
            booked: Vec::new(),
            gtm: Gtm::Pending { ready_by: None },
            plan: fits,
            want: SkipCounts {
                under_lead_time: 1,
                gtm_pending: year_of_tuesdays - 1,
                ..Default::default()
            },
            says: "51 go-to-market pending",
        },
        Refusal {
            name: "the planner finds no plan",
            calendar: tuesdays(3),
            booked: Vec::new(),
            gtm: Gtm::Done,
            plan: |_| None,
            want: SkipCounts {
                under_lead_time: 1,
                plan_does_not_fit: year_of_tuesdays - 1,
                ..Default::default()
            },
            says: "51 the plan cannot fit",
        },
        Refusal {
            name: "an empty calendar",
            calendar: LaunchCalendar::default(),
            booked: Vec::new(),
            gtm: Gtm::Done,
            plan: fits,
            want: SkipCounts::default(),
            says: "the calendar has no launch slot in that time",
        },
    ];
    for case in cases {
        let mut booked = Reservations::new();
        for (t, n) in &case.booked {
            booked.set(ts(t), *n);
        }
        if case.name == "every slot full" {
            for s in case.calendar.slots(now(), now() + DEFAULT_HORIZON).unwrap() {
                booked.set(s.at, s.capacity);
            }
        }
        let choice = choose(
            &case.calendar,
            now(),
            &booked,
            case.gtm,
            &ChooseOptions::default(),
            case.plan,
        )
        .unwrap();
        let Choice::NoSlot(no) = &choice else {
            panic!("{}: {choice}", case.name)
        };
        assert_eq!(no.before, ts("2027-11-30T09:00:00Z"), "{}", case.name);
        assert_eq!(no.counts, case.want, "{}", case.name);
        assert_eq!(no.skipped.len(), case.want.total(), "{}", case.name);
        let text = choice.to_string();
        assert!(
            text.starts_with("no slot before Tue 30 Nov 2027 09:00 UTC: "),
            "{}: {text}",
            case.name
        );
        assert!(
            text.lines().next().unwrap().contains(case.says),
            "{}: {text}",
            case.name
        );
    }
}

#[test]
fn reservations_never_overfill() {
    let c = tuesdays(2);
    let slot = c.slots(now(), now() + hours(24 * 7)).unwrap().remove(0);
    let mut r = Reservations::new();
    assert!(r.book(&slot) && r.book(&slot));
    assert!(!r.book(&slot));
    assert_eq!(r.booked(slot.at), 2);
    r.release(slot.at);
    assert_eq!(r.iter().collect::<Vec<_>>(), [(slot.at, 1)]);
    r.release(slot.at);
    r.release(slot.at);
    assert_eq!(r.iter().count(), 0);
}

// ---------------------------------------------------------------------------
// The batch
// ---------------------------------------------------------------------------

#[test]
fn fifty_tiles_first_ready_first_served_never_overfilled() {
    // Tuesdays room for 4, Thursdays room for 3, one extra slot of 2, a
    // blackout over Christmas, and 1 place of 8 Dec already booked.
    let mut c = LaunchCalendar {
        rules: vec![
            rule(&[Weekday::Tuesday], 17, 0, "UTC", 4),
            rule(&[Weekday::Thursday], 12, 0, "America/New_York", 3),
        ],
        ..Default::default()
    };
    c.extra_slots
        .push(extra("2026-12-12T10:00:00Z", 2, "Saturday special"));
    c.blackouts.push(blackout(
        "2026-12-21T00:00:00Z",
        "2027-01-04T00:00:00Z",
        "Christmas",
    ));
    c.validate(now()).unwrap();
    let mut booked = Reservations::new();
    booked.set(ts("2026-12-08T17:00:00Z"), 1);
    let before = booked.clone();

    // Ready times in a scrambled order with ties (ids break them); tile-13
    // never has a plan that fits and must not hold anyone up.
    let tiles: Vec<BatchTile<BoxedPlanEnd>> = (0..50)
        .map(|k: i64| {
            let plan: BoxedPlanEnd = if k == 13 { Box::new(Some) } else { Box::new(fits) };
            BatchTile {
                id: format!("tile-{k:02}"),
                ready_at: now() - hours((k * 37) % 11),
                gtm: Gtm::Done,
                plan_end: plan,
            }
        })
        .collect();
    let mut order: Vec<(Timestamp, String)> = tiles.iter().map(|t| (t.ready_at, t.id.clone())).collect();
    order.sort();

    let out = schedule_batch(&c, now(), &mut booked, tiles, &ChooseOptions::default()).unwrap();
    assert_eq!(out.len(), 50);
    // Answers come in first-ready order.
    let ids: Vec<&str> = out.iter().map(|b| b.id.as_str()).collect();
    let want: Vec<&str> = order.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(ids, want);

    // Each slot holds at most its capacity, counting the earlier booking.
    let caps: BTreeMap<Timestamp, u32> = c
        .slots(now(), now() + DEFAULT_HORIZON)
        .unwrap()
        .into_iter()
        .map(|s| (s.at, s.capacity))
        .collect();
    let mut count: BTreeMap<Timestamp, u32> = before.iter().collect();
    for b in &out {
        if let Some(ga) = b.choice.ga() {
            *count.entry(ga).or_default() += 1;
        }
    }
    for (at, n) in &count {
        assert!(n <= &caps[at], "{at}: {n} > {}", caps[at]);
        assert_eq!(booked.booked(*at), *n, "{at}");
    }
    // First ready first served: GA dates never go down along the order, and
    // every chosen date is 7 days ahead with the plan ending 24 h before.
    let mut last = Timestamp::MIN;
    for b in &out {
        match &b.choice {
            Choice::Chosen(ch) => {
                assert!(ch.slot.at >= last, "{} jumped the queue", b.id);
                last = ch.slot.at;
                assert!(ch.slot.at >= now() + MIN_LEAD);
                assert!(ch.planned_end <= ch.slot.at - PLAN_MARGIN);
                assert!(ch.skipped.iter().all(|s| s.at < ch.slot.at));
            }
            Choice::NoSlot(no) => {
                assert_eq!(b.id, "tile-13");
                let n = no.counts;
                assert_eq!((n.gtm_pending, n.not_before), (0, 0));
                assert!(n.plan_does_not_fit > 0 && n.full > 0 && n.blackout == 4, "{n:?}");
            }
        }
    }
    // The first slots fill exactly: 8 Dec (3 left), 10 Dec (3), 12 Dec (2),
    // 15 Dec (4), 17 Dec (3); Christmas skipped; 49 tiles need 15 + 34 more.
    let dec = |d: &str| count.get(&ts(d)).copied().unwrap_or(0);
    assert_eq!(dec("2026-12-08T17:00:00Z"), 4);
    assert_eq!(dec("2026-12-10T17:00:00Z"), 3);
    assert_eq!(dec("2026-12-12T10:00:00Z"), 2);
    assert_eq!(dec("2026-12-15T17:00:00Z"), 4);
    assert_eq!(dec("2026-12-22T17:00:00Z"), 0);
    assert_eq!(count.values().sum::<u32>(), 1 + 49);
    let first = &out[0];
    assert_eq!(first.choice.ga(), Some(ts("2026-12-08T17:00:00Z")));
}

// ---------------------------------------------------------------------------
// The real planner behind the closure
// ---------------------------------------------------------------------------

#[test]
fn the_planner_backs_the_choice() {
    // Journey 1's launch; a roll-out freeze over the whole week before
    // 8 Dec leaves no time for a plan for that slot, so 15 Dec is chosen.
    let mut input = PlanInput::launch(
        RegionCatalog::builtin(),
        &Cloud::ALL,
        ts("2026-12-08T17:00:00Z"),
        now(),
    );
    input.blackouts.global.push(Period::new(
        ts("2026-11-30T00:00:00Z"),
        ts("2026-12-08T00:00:00Z"),
    ));
    let choice = choose(
        &tuesdays(5),
        now(),
        &Reservations::new(),
        Gtm::Done,
        &ChooseOptions::default(),
        plan_end_with_planner(&input),
    )
    .unwrap();
    let Choice::Chosen(chosen) = &choice else {
        panic!("{choice}")
    };
    assert_eq!(chosen.slot.at, ts("2026-12-15T17:00:00Z"));
    // The default plan of 70 regions takes 21h 35m from GA - 7 days.
    assert_eq!(chosen.planned_end, ts("2026-12-09T14:35:00Z"));
    assert!(
        matches!(chosen.skipped[1].reason, SkipReason::PlanDoesNotFit { planned_end: Some(end), .. }
            if end == ts("2026-12-08T21:35:00Z")),
        "{choice}"
    );

    // Without a freeze the first slot 7 days ahead is chosen.
    input.blackouts.global.clear();
    let mut plan_end = plan_end_with_planner(&input);
    assert_eq!(
        plan_end(ts("2026-12-08T17:00:00Z")),
        Some(ts("2026-12-02T14:35:00Z"))
    );

    // An input the planner refuses gives no plan at all.
    input.clouds.clear();
    let mut plan_end = plan_end_with_planner(&input);
    assert_eq!(plan_end(ts("2026-12-08T17:00:00Z")), None);
}

// ---------------------------------------------------------------------------
// Per-item edits
// ---------------------------------------------------------------------------

#[test]
fn edits_add_and_remove_items_and_refuse_bad_ones() {
    let c = tuesdays(2);
    let slot = extra("2026-12-10T17:00:00Z", 3, "extra");
    let c = c.edited(CalendarEdit::AddExtraSlot(slot.clone()), now()).unwrap();
    let c = c
        .edited(
            CalendarEdit::AddBlackout(blackout(
                "2026-12-21T00:00:00Z",
                "2027-01-04T00:00:00Z",
                "Christmas",
            )),
            now(),
        )
        .unwrap();
    assert_eq!((c.extra_slots.len(), c.blackouts.len()), (1, 1));
    assert_eq!(
        instants(&c, "2026-12-07T00:00:00Z", "2026-12-24T00:00:00Z"),
        [
            "2026-12-08T17:00:00Z",
            "2026-12-10T17:00:00Z",
            "2026-12-15T17:00:00Z"
        ]
    );

    let cases: Vec<(CalendarEdit, &str)> = vec![
        (
            CalendarEdit::AddExtraSlot(ExtraSlot {
                at: ts("2026-11-01T00:00:00Z"),
                ..slot.clone()
            }),
            "extra_slots[1].at",
        ),
        (
            CalendarEdit::AddExtraSlot(ExtraSlot {
                at: ts("2026-12-25T17:00:00Z"),
                ..slot.clone()
            }),
            "extra_slots[1].at",
        ),
        (
            CalendarEdit::AddRule(LaunchRule::tuesdays_17_utc(0)),
            "rules[1].capacity",
        ),
        (
            CalendarEdit::AddBlackout(blackout(
                "2026-12-01T00:00:00Z",
                "2027-12-31T00:00:00Z",
                "forever",
            )),
            "extra_slots[0].at",
        ),
        (CalendarEdit::RemoveRule(1), "rules[1]"),
        (CalendarEdit::RemoveBlackout(5), "blackouts[5]"),
        (CalendarEdit::RemoveExtraSlot(1), "extra_slots[1]"),
    ];
    for (edit, field) in cases {
        let err = c.edited(edit.clone(), now()).expect_err(&format!("{edit:?}"));
        assert_eq!(err.field(), field, "{edit:?}: {err}");
    }
    assert!(
        c.edited(CalendarEdit::RemoveBlackout(5), now())
            .unwrap_err()
            .to_string()
            .contains("no such item (the calendar has 1)")
    );

    let c = c.edited(CalendarEdit::RemoveExtraSlot(0), now()).unwrap();
    let c = c.edited(CalendarEdit::RemoveBlackout(0), now()).unwrap();
    assert_eq!(c, tuesdays(2));
    // Removing the only rule leaves an empty calendar, which is valid: the
    // choice then answers "no slot".
    let empty = c.edited(CalendarEdit::RemoveRule(0), now()).unwrap();
    assert_eq!(empty, LaunchCalendar::default());
}

proptest::proptest! {
    /// Whatever the capacities, earlier bookings and ready times: no slot
    /// ends above its capacity, and a tile ready earlier never gets a later
    /// slot than one ready after it.
    #[test]
    fn batches_never_overfill(
        tue in 1u32..5,
        fri in 1u32..5,
        pre in proptest::collection::vec((0usize..20, 0u32..6), 0..10),
        ready in proptest::collection::vec(0i64..100, 1..60),
    ) {
        let c = LaunchCalendar {
            rules: vec![
                rule(&[Weekday::Tuesday], 17, 0, "UTC", tue),
                rule(&[Weekday::Friday], 9, 0, "Asia/Tokyo", fri),
            ],
            ..Default::default()
        };
        let slots = c.slots(now(), now() + DEFAULT_HORIZON).unwrap();
        let mut booked = Reservations::new();
        for (i, n) in &pre {
            booked.set(slots[*i].at, *n);
        }
        let before = booked.clone();
        let tiles: Vec<_> = ready
            .iter()
            .enumerate()
            .map(|(k, h)| BatchTile {
                id: format!("t{k:03}"),
                ready_at: now() - hours(*h),
                gtm: Gtm::Done,
                plan_end: fits,
            })
            .collect();
        let out = schedule_batch(&c, now(), &mut booked, tiles, &ChooseOptions::default()).unwrap();
        let mut last = Timestamp::MIN;
        for b in &out {
            let ga = b.choice.ga().unwrap();
            proptest::prop_assert!(ga >= last);
            last = ga;
        }
        for s in &slots {
            let added = out.iter().filter(|b| b.choice.ga() == Some(s.at)).count() as u32;
            let n = booked.booked(s.at);
            proptest::prop_assert_eq!(n, before.booked(s.at) + added);
            proptest::prop_assert!(added == 0 || n <= s.capacity);
        }
    }
}
