//! Unit tests of the planner: the default plan, input errors, blackouts
//! across DST changes (exact UTC instants), explanations of late plans,
//! re-planning and the Gantt chart.

use jiff::civil::{Time, Weekday};

use super::gantt::{Granularity, render};
use super::*;
use crate::regions::{Cloud, RegionCatalog};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn mins(m: i64) -> SignedDuration {
    SignedDuration::from_mins(m)
}

fn hm(h: i8, m: i8) -> Time {
    Time::constant(h, m, 0, 0)
}

/// Journey 1: GA Tue 8 Dec 17:00 UTC, asked on Mon 30 Nov.
fn launch() -> PlanInput {
    PlanInput::launch(
        RegionCatalog::builtin(),
        &Cloud::ALL,
        ts("2026-12-08T17:00:00Z"),
        ts("2026-11-30T09:00:00Z"),
    )
}

/// One region, starting at `start`, with a deadline far away.
fn single(region: &str, start: &str, window: BlackoutWindow) -> PlanInput {
    let mut input = launch();
    input.regions = RegionSelection::Only(vec![region.to_string()]);
    input.ga = None;
    input.now = ts(start);
    input.deadline = Some(ts("2027-12-31T00:00:00Z"));
    input.blackouts.regions.push(RegionBlackout {
        region: region.to_string(),
        window,
    });
    input
}

fn first_apply(input: &PlanInput) -> Timestamp {
    plan(input).unwrap().regions[0].apply_start
}

fn infeasible(input: &PlanInput) -> Box<Infeasible> {
    match plan(input) {
        Err(PlanError::Infeasible(i)) => i,
        other => panic!("expected an infeasible plan, got {other:?}"),
    }
}

#[test]
fn default_plan_of_seventy_regions() {
    let p = plan(&launch()).unwrap();
    assert_eq!(p.regions.len(), 70);
    let sizes: Vec<usize> = p.waves.iter().map(|w| w.regions.len()).collect();
    assert_eq!(sizes, [3, 6, 12, 24, 25]);
    assert_eq!(
        p.waves[0].regions,
        ["aws:ap-northeast-1", "gcp:asia-northeast1", "azure:eastus2euap"]
    );
    // Start at GA - 7 d; wave k takes ceil(size/4) applies of 5 min + 4 h.
    assert_eq!(p.start, ts("2026-12-01T17:00:00Z"));
    assert_eq!(p.waves[0].end, ts("2026-12-01T21:05:00Z"));
    assert_eq!(p.planned_end, ts("2026-12-02T14:35:00Z"));
    assert_eq!(
        p.to_string(),
        "70 regions, 5 waves, canaries aws:ap-northeast-1, gcp:asia-northeast1, azure:eastus2euap; \
         bake 4h; ends Wed 2 Dec 14:35 UTC; deadline Mon 7 Dec 17:00 UTC (GA - 24h); slack 5d 02h 25m"
    );
    // Every cloud shows up in every later wave (fair interleaving).
    for w in &p.waves[1..] {
        for cloud in ["aws:", "gcp:", "azure:"] {
            assert!(
                w.regions.iter().any(|r| r.starts_with(cloud)),
                "{cloud} in wave {}",
                w.index
            );
        }
    }
}

#[test]
fn same_input_same_output() {
    let mut input = launch();
    input.blackouts.regions.push(RegionBlackout {
        region: "aws:eu-central-1".into(),
        window: BlackoutWindow::Recurring(Recurring::weekdays(hm(9, 0), hm(17, 0))),
    });
    assert_eq!(plan(&input), plan(&input));
}

#[test]
fn excluded_canary_falls_back_to_first_selected_region_of_its_cloud() {
    let mut input = launch();
    input.clouds = vec![Cloud::Azure];
    input.regions = RegionSelection::AllExcept(vec!["azure:eastus2euap".into()]);
    let p = plan(&input).unwrap();
    assert_eq!(p.waves[0].regions, ["azure:australiacentral"]);
    assert_eq!(p.regions.len(), 38);
}

/// A change to a valid input.
type Edit = Box<dyn Fn(&mut PlanInput)>;

#[test]
fn contradictory_inputs_are_typed_errors() {
    let base = launch();
    let cases: Vec<(Edit, PlanError)> = vec![
        (
            Box::new(|i| i.regions = RegionSelection::Only(vec!["aws:mars-1".into()])),
            PlanError::UnknownRegion("aws:mars-1".into()),
        ),
        (
            Box::new(|i| i.regions = RegionSelection::AllExcept(vec!["gcp:pluto".into()])),
            PlanError::UnknownRegion("gcp:pluto".into()),
        ),
        (
            Box::new(|i| {
                i.clouds = vec![Cloud::Aws];
                i.regions = RegionSelection::Only(vec!["gcp:me-central2".into()]);
            }),
            PlanError::UnsupportedCloud {
                region: "gcp:me-central2".into(),
                cloud: Cloud::Gcp,
            },
        ),
        (Box::new(|i| i.clouds.clear()), PlanError::NoClouds),
        (
            Box::new(|i| {
                i.clouds = vec![Cloud::Gcp];
                i.regions = RegionSelection::AllExcept(
                    i.catalog.of_cloud(Cloud::Gcp).map(|r| r.id.clone()).collect(),
                );
            }),
            PlanError::NoRegions,
        ),
        (Box::new(|i| i.concurrency = 0), PlanError::ZeroConcurrency),
        (
            Box::new(|i| i.apply_time = SignedDuration::ZERO),
            PlanError::NonPositiveApply(SignedDuration::ZERO),
        ),
        (
            Box::new(|i| i.bake = BakePolicy::PerWave(vec![mins(60), mins(-1)])),
            PlanError::NegativeBake(mins(-1)),
        ),
        (
            Box::new(|i| i.bake = BakePolicy::PerWave(vec![])),
            PlanError::NoBakes,
        ),
        (
            Box::new(|i| i.holds_after = vec![6]),
            PlanError::HoldOutOfRange { after: 6, waves: 5 },
        ),
        (
            Box::new(|i| i.deadline = Some(ts("2026-12-01T00:00:00Z"))),
            PlanError::DeadlineBeforeStart {
                deadline: ts("2026-12-01T00:00:00Z"),
                start: ts("2026-12-01T17:00:00Z"),
            },
        ),
        (
            Box::new(|i| {
                i.ga = None;
                i.deadline = None;
            }),
            PlanError::NoDeadline,
        ),
        (
            Box::new(|i| {
                i.clouds = vec![Cloud::Gcp];
                i.waves = WaveShape::Explicit(vec![vec!["gcp:us-east1".into()]]);
            }),
            PlanError::MissingFromWaves(i_gcp().into_iter().filter(|r| r != "gcp:us-east1").collect()),
        ),
        (
            Box::new(|i| i.waves = WaveShape::Explicit(vec![vec![]])),
            PlanError::EmptyWave(1),
        ),
        (
            Box::new(|i| {
                i.regions = RegionSelection::Only(vec!["aws:us-east-1".into()]);
                i.waves =
                    WaveShape::Explicit(vec![vec!["aws:us-east-1".into()], vec!["aws:us-east-1".into()]]);
            }),
            PlanError::DuplicateRegion("aws:us-east-1".into()),
        ),
        (
            Box::new(|i| {
                i.blackouts.regions.push(RegionBlackout {
                    region: "aws:us-east-1".into(),
                    window: BlackoutWindow::Recurring(
                        Recurring::weekdays(hm(9, 0), hm(17, 0)).in_tz("Mars/Base"),
                    ),
                })
            }),
            PlanError::UnknownTimeZone("Mars/Base".into()),
        ),
        (
            Box::new(|i| i.waves = WaveShape::Canary { growth: 0 }),
            PlanError::ZeroGrowth,
        ),
    ];
    for (k, (edit, want)) in cases.into_iter().enumerate() {
        let mut input = base.clone();
        edit(&mut input);
        assert_eq!(plan(&input), Err(want.clone()), "case {k}");
        assert!(!want.to_string().is_empty());
    }
    assert_eq!(
        PlanError::UnknownRegion("aws:mars-1".into()).to_string(),
        "unknown region \"aws:mars-1\": not in regions.toml"
    );
}

fn i_gcp() -> Vec<String> {
    RegionCatalog::builtin()
        .of_cloud(Cloud::Gcp)
        .map(|r| r.id.clone())
        .collect()
}

#[test]
fn explicit_waves_and_per_wave_bakes_with_the_last_repeating() {
    let mut input = launch();
    input.regions = RegionSelection::Only(vec![
        "aws:us-east-1".into(),
        "aws:us-west-2".into(),
        "gcp:us-east1".into(),
    ]);
    input.waves = WaveShape::Explicit(vec![
        vec!["gcp:us-east1".into()],
        vec!["aws:us-west-2".into()],
        vec!["aws:us-east-1".into()],
    ]);
    input.bake = BakePolicy::PerWave(vec![mins(60), mins(30)]);
    input.holds_after = vec![1];
    let p = plan(&input).unwrap();
    let bakes: Vec<SignedDuration> = p.waves.iter().map(|w| w.bake).collect();
    assert_eq!(bakes, [mins(60), mins(30), mins(30)]);
    assert!(p.waves[0].hold_after && !p.waves[1].hold_after);
    assert_eq!(
        p.planned_end,
        ts("2026-12-01T17:00:00Z") + mins(5 + 60 + 5 + 30 + 5 + 30)
    );
    let s = p.to_string();
    assert!(
        s.starts_with(
            "3 regions, 3 waves, first wave gcp:us-east1; bakes 1h, 30m, 30m; manual hold after wave 1"
        ),
        "{s}"
    );
}

#[test]
fn concurrency_limits_applies_at_once() {
    let mut input = launch();
    input.concurrency = 2;
    input.bake = BakePolicy::Uniform(SignedDuration::ZERO);
    let p = plan(&input).unwrap();
    // Wave 2 (6 regions, 2 at once): three rounds of 5 minutes.
    let w2: Vec<&RegionPlan> = p.regions.iter().filter(|r| r.wave == 2).collect();
    let starts: Vec<i64> = w2
        .iter()
        .map(|r| r.apply_start.duration_since(p.waves[1].start).as_mins())
        .collect();
    assert_eq!(starts, [0, 0, 5, 5, 10, 10]);
}

#[test]
fn berlin_business_hours_across_both_dst_changes() {
    let rule = BlackoutWindow::Recurring(Recurring {
        days: Days::EVERY_DAY,
        from: hm(9, 0),
        to: hm(17, 0),
        tz: None, // aws:eu-central-1 is in Europe/Berlin
    });
    let at = |start: &str| first_apply(&single("aws:eu-central-1", start, rule.clone()));
    // Sat 28 Mar, CET (UTC+1): 09:00-17:00 local = 08:00-16:00 UTC.
    assert_eq!(at("2026-03-28T09:00:00Z"), ts("2026-03-28T16:00:00Z"));
    assert_eq!(at("2026-03-28T07:59:00Z"), ts("2026-03-28T07:59:00Z"));
    // Sun 29 Mar, CEST (UTC+2) from 02:00 local: 07:00-15:00 UTC.
    assert_eq!(at("2026-03-29T07:00:00Z"), ts("2026-03-29T15:00:00Z"));
    assert_eq!(at("2026-03-29T06:59:00Z"), ts("2026-03-29T06:59:00Z"));
    // Sat 24 Oct, CEST: 07:00-15:00 UTC.
    assert_eq!(at("2026-10-24T08:00:00Z"), ts("2026-10-24T15:00:00Z"));
    // Sun 25 Oct, CET again from 03:00 local: 08:00-16:00 UTC.
    assert_eq!(at("2026-10-25T07:30:00Z"), ts("2026-10-25T07:30:00Z"));
    assert_eq!(at("2026-10-25T08:00:00Z"), ts("2026-10-25T16:00:00Z"));
}

#[test]
fn berlin_overnight_window_spanning_the_dst_night() {
    let rule = BlackoutWindow::Recurring(Recurring {
        days: Days::of(&[Weekday::Saturday]),
        from: hm(22, 0),
        to: hm(6, 0),
        tz: None,
    });
    let at = |start: &str| first_apply(&single("aws:eu-central-1", start, rule.clone()));
    // Sat 22:00 CET (21:00 UTC) to Sun 06:00 CEST (04:00 UTC): 7 hours.
    assert_eq!(at("2026-03-28T20:59:00Z"), ts("2026-03-28T20:59:00Z"));
    assert_eq!(at("2026-03-28T21:00:00Z"), ts("2026-03-29T04:00:00Z"));
    // Sat 22:00 CEST (20:00 UTC) to Sun 06:00 CET (05:00 UTC): 9 hours.
    assert_eq!(at("2026-10-24T20:00:00Z"), ts("2026-10-25T05:00:00Z"));
    assert_eq!(at("2026-10-25T04:59:00Z"), ts("2026-10-25T05:00:00Z"));
}

#[test]
fn new_york_weekdays_across_both_dst_changes() {
    let rule = BlackoutWindow::Recurring(Recurring::weekdays(hm(9, 0), hm(17, 0)));
    let at = |start: &str| first_apply(&single("aws:us-east-1", start, rule.clone()));
    // Fri 6 Mar, EST (UTC-5): 14:00-22:00 UTC.
    assert_eq!(at("2026-03-06T15:00:00Z"), ts("2026-03-06T22:00:00Z"));
    // The weekend is free.
    assert_eq!(at("2026-03-07T15:00:00Z"), ts("2026-03-07T15:00:00Z"));
    // Mon 9 Mar, EDT (UTC-4) since Sun 8 Mar: 13:00-21:00 UTC.
    assert_eq!(at("2026-03-09T13:00:00Z"), ts("2026-03-09T21:00:00Z"));
    assert_eq!(at("2026-03-09T12:59:00Z"), ts("2026-03-09T12:59:00Z"));
    // Fri 30 Oct, EDT: 13:00-21:00 UTC.
    assert_eq!(at("2026-10-30T13:00:00Z"), ts("2026-10-30T21:00:00Z"));
    // Mon 2 Nov, EST since Sun 1 Nov: 14:00-22:00 UTC.
    assert_eq!(at("2026-11-02T13:30:00Z"), ts("2026-11-02T13:30:00Z"));
    assert_eq!(at("2026-11-02T14:00:00Z"), ts("2026-11-02T22:00:00Z"));
}

#[test]
fn a_named_zone_overrides_the_regions_own() {
    // Berlin region, New York hours: Mon 9 Mar 2026 09:00-17:00 EDT.
    let rule = BlackoutWindow::Recurring(Recurring::weekdays(hm(9, 0), hm(17, 0)).in_tz("America/New_York"));
    let p = single("aws:eu-central-1", "2026-03-09T14:00:00Z", rule);
    assert_eq!(first_apply(&p), ts("2026-03-09T21:00:00Z"));
}

#[test]
fn a_window_opening_in_the_spring_gap_opens_when_the_gap_ends() {
    // 02:30 does not exist in New York on Sun 8 Mar 2026 (02:00 EST -> 03:00 EDT).
    let rule = BlackoutWindow::Recurring(Recurring {
        days: Days::of(&[Weekday::Sunday]),
        from: hm(2, 30),
        to: hm(4, 0),
        tz: None,
    });
    let at = |start: &str| first_apply(&single("aws:us-east-1", start, rule.clone()));
    // 03:00 EDT = 07:00 UTC is free (the window opens 03:30 EDT), 07:30 is not.
    assert_eq!(at("2026-03-08T07:00:00Z"), ts("2026-03-08T07:00:00Z"));
    assert_eq!(at("2026-03-08T07:30:00Z"), ts("2026-03-08T08:00:00Z"));
}

#[test]
fn blackout_stops_starts_only_bakes_and_running_applies_go_through() {
    let mut input = single(
        "aws:us-east-1",
        "2026-06-01T12:59:00Z",
        BlackoutWindow::Once(Period::new(
            ts("2026-06-01T13:00:00Z"),
            ts("2026-06-01T20:00:00Z"),
        )),
    );
    input.bake = BakePolicy::Uniform(mins(60));
    let p = plan(&input).unwrap();
    // Starts a minute before the window, applies and bakes into it.
    assert_eq!(p.regions[0].apply_start, ts("2026-06-01T12:59:00Z"));
    assert_eq!(p.regions[0].bake_end, ts("2026-06-01T14:04:00Z"));
    // A global freeze works the same, and an apply may start as it ends.
    input.blackouts.regions.clear();
    input.blackouts.global.push(Period::new(
        ts("2026-06-01T12:00:00Z"),
        ts("2026-06-01T14:00:00Z"),
    ));
    assert_eq!(first_apply(&input), ts("2026-06-01T14:00:00Z"));
}

#[test]
fn a_blacked_out_region_does_not_hold_back_the_others() {
    let mut input = launch();
    input.clouds = vec![Cloud::Aws];
    input.regions = RegionSelection::Only(vec!["aws:eu-central-1".into(), "aws:us-east-1".into()]);
    input.waves = WaveShape::Explicit(vec![vec!["aws:eu-central-1".into(), "aws:us-east-1".into()]]);
    input.concurrency = 1;
    input.blackouts.regions.push(RegionBlackout {
        region: "aws:eu-central-1".into(),
        window: BlackoutWindow::Once(Period::new(
            ts("2026-12-01T00:00:00Z"),
            ts("2026-12-01T18:00:00Z"),
        )),
    });
    let p = plan(&input).unwrap();
    assert_eq!(p.regions[0].region, "aws:us-east-1");
    assert_eq!(p.regions[0].apply_start, ts("2026-12-01T17:00:00Z"));
    assert_eq!(p.regions[1].apply_start, ts("2026-12-01T18:00:00Z"));
}

#[test]
fn a_region_blacked_out_for_ever_is_an_error() {
    let input = single(
        "aws:us-east-1",
        "2026-06-01T12:00:00Z",
        BlackoutWindow::Recurring(Recurring {
            days: Days::EVERY_DAY,
            from: hm(0, 0),
            to: hm(0, 0),
            tz: None,
        }),
    );
    assert!(
        matches!(plan(&input), Err(PlanError::AlwaysBlackedOut { region, .. }) if region == "aws:us-east-1")
    );
}

/// Checks the suggestions of a late plan by planning with each of them and
/// one step tighter.
fn assert_suggestions_verified(input: &PlanInput, s: &Suggestions) {
    let fits = |i: &PlanInput| plan(i).is_ok();
    if let Some(b) = s.longest_bake_that_fits {
        let mut i = input.clone();
        i.bake = BakePolicy::Uniform(b);
        assert!(fits(&i), "bake {b} should fit");
        i.bake = BakePolicy::Uniform(b + mins(1));
        assert!(!fits(&i), "bake {b} + 1 min should not fit");
    }
    if let Some(c) = s.smallest_concurrency_that_fits {
        let mut i = input.clone();
        i.concurrency = c;
        assert!(fits(&i), "concurrency {c} should fit");
        if c > 1 {
            i.concurrency = c - 1;
            assert!(!fits(&i), "concurrency {c} - 1 should not fit");
        }
    }
    if let Some(g) = s.earliest_ga_that_fits {
        let mut i = input.clone();
        i.ga = Some(g);
        assert!(fits(&i), "GA {g} should fit");
        i.ga = Some(g - GA_SEARCH_STEP);
        assert!(!fits(&i), "GA {g} - 1 min should not fit");
    }
}

#[test]
fn late_because_of_bakes() {
    let mut input = launch();
    input.bake = BakePolicy::Uniform(SignedDuration::from_hours(30));
    input.now = ts("2026-12-01T17:00:00Z");
    let late = infeasible(&input);
    // 5 waves x 30 h plus applies vs 6 days.
    assert_eq!(
        late.late_by,
        late.plan.planned_end.duration_since(late.plan.deadline)
    );
    assert!(matches!(late.binding, Binding::Bake { .. }), "{:?}", late.binding);
    let s = late.suggestions;
    // 5 bakes + 95 min of applies must fit in 144 h: bake <= 28 h 29 min.
    assert_eq!(s.longest_bake_that_fits, Some(mins(28 * 60 + 29)));
    assert_eq!(s.smallest_concurrency_that_fits, None);
    // Start and deadline move with GA: no GA fits.
    assert_eq!(s.earliest_ga_that_fits, None);
    assert_suggestions_verified(&input, &s);
    assert!(
        PlanError::Infeasible(late)
            .to_string()
            .starts_with("the plan ends ")
    );
}

#[test]
fn late_because_of_concurrency() {
    let mut input = launch();
    input.apply_time = SignedDuration::from_hours(2);
    input.concurrency = 1;
    let late = infeasible(&input);
    assert_eq!(late.binding, Binding::Concurrency);
    let s = late.suggestions;
    assert!(s.smallest_concurrency_that_fits.is_some_and(|c| c > 1));
    assert_suggestions_verified(&input, &s);
}

#[test]
fn late_because_of_a_late_start_suggests_a_later_ga() {
    let mut input = launch();
    // Asked on Sun 6 Dec: the plan (21 h 35 min) cannot end by Mon 7 Dec 17:00.
    input.now = ts("2026-12-06T22:00:00Z");
    let late = infeasible(&input);
    assert!(
        matches!(late.binding, Binding::LateStart { .. }),
        "{:?}",
        late.binding
    );
    let s = late.suggestions;
    // Ends Mon 7 Dec 19:35; GA 24 h later.
    assert_eq!(s.earliest_ga_that_fits, Some(ts("2026-12-08T19:35:00Z")));
    assert_suggestions_verified(&input, &s);
}

#[test]
fn late_because_of_blackouts() {
    let mut input = launch();
    input.blackouts.global.push(Period::new(
        ts("2026-12-01T17:01:00Z"),
        ts("2026-12-07T00:00:00Z"),
    ));
    let late = infeasible(&input);
    assert!(
        matches!(late.binding, Binding::Blackouts { .. }),
        "{:?}",
        late.binding
    );
    assert_suggestions_verified(&input, &late.suggestions);
}

#[test]
fn late_because_of_the_earliest_start() {
    let mut input = launch();
    input.earliest_start = Some(ts("2026-12-07T00:00:00Z"));
    let late = infeasible(&input);
    assert_eq!(late.binding, Binding::EarliestStart);
    assert_suggestions_verified(&input, &late.suggestions);
}

fn progress(states: &[(&str, RegionState)]) -> Progress {
    Progress {
        regions: states.iter().map(|(id, s)| (id.to_string(), *s)).collect(),
        paused_since: None,
    }
}

#[test]
fn replan_mid_roll_out() {
    let input = launch();
    let full = plan(&input).unwrap();
    // Wave 1 verified, wave 2: two applying, two baking, two pending.
    let now = full.waves[1].start + mins(3);
    let mut states: Vec<(&str, RegionState)> = full.waves[0]
        .regions
        .iter()
        .map(|r| (r.as_str(), RegionState::Verified))
        .collect();
    let w2 = &full.waves[1].regions;
    states.push((
        &w2[0],
        RegionState::Baking {
            until: now + mins(100),
        },
    ));
    states.push((
        &w2[1],
        RegionState::Baking {
            until: now + mins(100),
        },
    ));
    states.push((&w2[2], RegionState::Applying { since: now - mins(1) }));
    states.push((&w2[3], RegionState::Applying { since: now - mins(2) }));
    let r = replan(&input, &progress(&states), now).unwrap();
    assert_eq!(r.done, 3);
    assert_eq!(r.plan.start, now);
    assert_eq!(r.plan.waves[0].index, 2);
    assert_eq!(r.plan.regions.len(), 67);
    // The applying regions end at since + 5 min; the pending ones take their slots.
    let pending: Vec<&RegionPlan> = r
        .plan
        .regions
        .iter()
        .filter(|p| p.region == w2[4] || p.region == w2[5])
        .collect();
    assert_eq!(pending[0].apply_start, now);
    assert!(r.at_risk.is_none());
    assert!(r.to_string().starts_with("3/70 regions done, ETA "), "{r}");
}

#[test]
fn replan_of_a_paused_roll_out_reports_the_risk() {
    let input = launch();
    let full = plan(&input).unwrap();
    // Paused in wave 4 with a failed region, resumed on Mon 7 Dec 10:00.
    let mut states: Vec<(&str, RegionState)> = Vec::new();
    for w in &full.waves[..3] {
        states.extend(w.regions.iter().map(|r| (r.as_str(), RegionState::Verified)));
    }
    states.push(("gcp:me-central2", RegionState::Failed));
    let mut pr = progress(&states);
    pr.paused_since = Some(ts("2026-12-03T03:00:00Z"));
    let now = ts("2026-12-07T10:00:00Z");
    let r = replan(&input, &pr, now).unwrap();
    assert_eq!(r.paused_for, Some(SignedDuration::from_hours(4 * 24 + 7)));
    // Waves 4 and 5 from now: 30 min + 4 h, 35 min + 4 h -> 19:05, 2h05 late.
    assert_eq!(r.eta, ts("2026-12-07T19:05:00Z"));
    let risk = r.at_risk.clone().unwrap();
    assert_eq!(risk.late_by, mins(125));
    assert_eq!(risk.suggestions.longest_bake_that_fits, Some(mins(177)));
    assert_eq!(
        risk.suggestions.earliest_ga_that_fits,
        Some(ts("2026-12-08T19:05:00Z"))
    );
    let line = r.to_string();
    assert!(line.contains("at risk by 2h 05m"), "{line}");
    // Shorter bakes for what is left fit.
    let mut shorter = input.clone();
    shorter.bake = BakePolicy::Uniform(mins(177));
    assert!(replan(&shorter, &pr, now).unwrap().at_risk.is_none());
    shorter.bake = BakePolicy::Uniform(mins(178));
    assert!(replan(&shorter, &pr, now).unwrap().at_risk.is_some());
}

#[test]
fn replan_rejects_regions_not_in_the_plan() {
    let mut input = launch();
    input.clouds = vec![Cloud::Aws];
    let now = ts("2026-12-02T00:00:00Z");
    assert_eq!(
        replan(
            &input,
            &progress(&[("gcp:me-central2", RegionState::Verified)]),
            now
        ),
        Err(PlanError::ProgressUnknownRegion("gcp:me-central2".into()))
    );
    assert_eq!(
        replan(&input, &progress(&[("aws:moon-1", RegionState::Verified)]), now),
        Err(PlanError::UnknownRegion("aws:moon-1".into()))
    );
}

#[test]
fn gantt_fits_80_and_120_columns() {
    let mut input = launch();
    input.holds_after = vec![2];
    let p = plan(&input).unwrap();
    for g in [Granularity::PerRegion, Granularity::PerWave] {
        for width in [80, 120, 40] {
            let text = render(&p, g, width);
            for line in text.lines() {
                assert!(line.chars().count() <= width, "{g:?} {width}: {line:?}");
            }
            assert!(
                text.contains('#') && text.contains('=') && text.contains('|'),
                "{text}"
            );
        }
    }
    let waves = render(&p, Granularity::PerWave, 80);
    assert_eq!(waves.lines().count(), 1 + 2 + 5 + 1);
    assert!(waves.contains("wave 2 (6) H"), "{waves}");
    let regions = render(&p, Granularity::PerRegion, 120);
    assert_eq!(regions.lines().count(), 1 + 2 + 70 + 1);
}

#[test]
fn durations_read_like_the_journeys() {
    assert_eq!(format_duration(SignedDuration::from_hours(20)), "20h");
    assert_eq!(format_duration(SignedDuration::from_hours(122)), "5d 02h");
    assert_eq!(format_duration(mins(270)), "4h 30m");
    assert_eq!(format_duration(mins(-45)), "-45m");
    assert_eq!(format_duration(SignedDuration::ZERO), "0m");
}
