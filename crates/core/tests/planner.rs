//! Property tests of the roll-out planner over random inputs: blackouts,
//! concurrency, wave order, deadlines, suggestions and determinism.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use jiff::civil::{Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};
use proptest::prelude::*;
use tilewave_core::planner::{
    BakePolicy, BlackoutWindow, Blackouts, Days, GA_SEARCH_STEP, Period, Plan, PlanError, PlanInput,
    Recurring, RegionBlackout, RegionSelection, plan,
};
use tilewave_core::regions::{Cloud, RegionCatalog};

const ZONES: [&str; 4] = [
    "Europe/Berlin",
    "America/New_York",
    "Australia/Sydney",
    "Asia/Kolkata",
];

fn base() -> Timestamp {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

prop_compose! {
    /// A recurring window on a 15-minute grid, shorter than a day.
    fn recurring()(days in 1u8..128, from in 0i64..96, len in 1i64..72, zone in proptest::option::of(0..ZONES.len()))
        -> Recurring {
        let to = (from + len) % 96;
        let wd = |i: i8| Weekday::from_monday_zero_offset(i).unwrap();
        let days = Days::of(&(0..7).filter(|i| days & (1 << i) != 0).map(wd).collect::<Vec<_>>());
        let t = |q: i64| Time::constant((q / 4) as i8, ((q % 4) * 15) as i8, 0, 0);
        Recurring { days, from: t(from), to: t(to), tz: zone.map(|z| ZONES[z].to_string()) }
    }
}

prop_compose! {
    fn input(max_window: i64, max_bake: i64, max_apply: i64)(
        picks in proptest::sample::subsequence((0..70usize).collect::<Vec<_>>(), 1..16),
        apply in 1i64..max_apply,
        bake in 0i64..max_bake,
        concurrency in 1usize..6,
        // Somewhere in 2026, so both DST changes of every zone are crossed.
        start_min in 0i64..(330 * 1440),
        window_min in 30i64..max_window,
        global in proptest::collection::vec((0i64..(3 * 1440), 1i64..600), 0..3),
        local in proptest::collection::vec((0usize..16, recurring()), 0..4),
    ) -> PlanInput {
        let catalog = RegionCatalog::builtin();
        let ids: Vec<String> = picks.iter().map(|&i| catalog.all()[i].id.clone()).collect();
        let start = base() + SignedDuration::from_mins(start_min);
        let mut input = PlanInput::launch(catalog, &Cloud::ALL, start, start);
        input.ga = None;
        input.earliest_start = Some(start);
        input.deadline = Some(start + SignedDuration::from_mins(window_min));
        input.regions = RegionSelection::Only(ids.clone());
        input.apply_time = SignedDuration::from_mins(apply);
        input.bake = BakePolicy::Uniform(SignedDuration::from_mins(bake));
        input.concurrency = concurrency;
        input.blackouts = Blackouts {
            global: global
                .into_iter()
                .map(|(at, len)| {
                    let s = start + SignedDuration::from_mins(at);
                    Period::new(s, s + SignedDuration::from_mins(len))
                })
                .collect(),
            regions: local
                .into_iter()
                .map(|(i, rule)| RegionBlackout {
                    region: ids[i % ids.len()].clone(),
                    window: BlackoutWindow::Recurring(rule),
                })
                .collect(),
        };
        input
    }
}

/// Independent check, through `Zoned`: is `t` inside one of the rule's windows?
fn in_recurring(rule: &Recurring, region_tz: &TimeZone, t: Timestamp) -> bool {
    let tz = rule
        .tz
        .as_ref()
        .map_or(region_tz.clone(), |n| TimeZone::get(n).unwrap());
    let local = t.to_zoned(tz.clone());
    (-2i64..=0).any(|back| {
        let day = local.date().checked_add(back.days()).unwrap();
        if !rule.days.contains(day.weekday()) {
            return false;
        }
        let open = day
            .to_datetime(rule.from)
            .to_zoned(tz.clone())
            .unwrap()
            .timestamp();
        let close_day = if rule.to <= rule.from {
            day.tomorrow().unwrap()
        } else {
            day
        };
        let close = tz
            .to_ambiguous_zoned(close_day.to_datetime(rule.to))
            .later()
            .unwrap()
            .timestamp();
        open <= t && t < close
    })
}

/// The plan, late or not.
fn plan_of(input: &PlanInput) -> (Plan, bool) {
    match plan(input) {
        Ok(p) => (p, true),
        Err(PlanError::Infeasible(late)) => (late.plan, false),
        Err(e) => panic!("unexpected error {e}"),
    }
}

fn fits(input: &PlanInput) -> bool {
    plan(input).is_ok()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn planner_respects_every_constraint(input in input(4 * 1440, 360, 30)) {
        let (p, ok) = plan_of(&input);
        let catalog = RegionCatalog::builtin();
        let RegionSelection::Only(ids) = &input.regions else { unreachable!() };
        // Every region exactly once.
        let mut got: Vec<&str> = p.regions.iter().map(|r| r.region.as_str()).collect();
        got.sort_unstable();
        let mut want: Vec<&str> = ids.iter().map(String::as_str).collect();
        want.sort_unstable();
        prop_assert_eq!(got, want);

        for r in &p.regions {
            // No apply starts inside a blackout.
            for g in &input.blackouts.global {
                prop_assert!(!(g.start <= r.apply_start && r.apply_start < g.end), "{} starts in {:?}", r.region, g);
            }
            let region = catalog.get(&r.region).unwrap();
            for b in input.blackouts.regions.iter().filter(|b| b.region == r.region) {
                let BlackoutWindow::Recurring(rule) = &b.window else { continue };
                prop_assert!(
                    !in_recurring(rule, &region.tz, r.apply_start),
                    "{} starts at {} in {:?}", r.region, r.apply_start, rule
                );
            }
            prop_assert_eq!(r.apply_end, r.apply_start + input.apply_time);
            prop_assert!(r.apply_start >= p.start);
        }

        // Never more than `concurrency` applies at once.
        for r in &p.regions {
            let overlapping = p.regions.iter()
                .filter(|o| o.apply_start <= r.apply_start && r.apply_start < o.apply_end)
                .count();
            prop_assert!(overlapping <= input.concurrency, "{} applies at {}", overlapping, r.apply_start);
        }

        // Waves never overlap; each starts after every region of the one before is verified.
        for pair in p.waves.windows(2) {
            prop_assert!(pair[1].start >= pair[0].end);
            let prev_end = p.regions.iter().filter(|r| r.wave == pair[0].index).map(|r| r.bake_end).max().unwrap();
            prop_assert_eq!(prev_end, pair[0].end);
        }

        // It fits exactly when it ends by the deadline.
        prop_assert_eq!(ok, p.planned_end <= p.deadline);
        prop_assert_eq!(p.slack, p.deadline.duration_since(p.planned_end));

        // Same input, same output.
        prop_assert_eq!(plan(&input), plan(&input));
    }

    #[test]
    fn planner_suggestions_fit_and_one_step_tighter_does_not(input in input(1440, 720, 180), ga_mode in any::<bool>()) {
        let mut input = input;
        if ga_mode {
            // Deadline and earliest start follow GA; `now` (the old start) pins the start.
            let deadline = input.deadline.unwrap();
            input.ga = Some(deadline + SignedDuration::from_hours(24));
            input.deadline = None;
            input.earliest_start = None;
        }
        let late = match plan(&input) {
            Err(PlanError::Infeasible(late)) => late,
            _ => return Ok(()),
        };
        prop_assert!(late.late_by.is_positive());
        let s = late.suggestions;
        if let Some(b) = s.longest_bake_that_fits {
            let mut i = input.clone();
            i.bake = BakePolicy::Uniform(b);
            prop_assert!(fits(&i), "bake {}", b);
            i.bake = BakePolicy::Uniform(b + SignedDuration::from_mins(1));
            prop_assert!(!fits(&i), "bake {} + 1 min", b);
        }
        if let Some(c) = s.smallest_concurrency_that_fits {
            let mut i = input.clone();
            i.concurrency = c;
            prop_assert!(fits(&i), "concurrency {}", c);
            if c > 1 {
                i.concurrency = c - 1;
                prop_assert!(!fits(&i), "concurrency {} - 1", c);
            }
        }
        if let Some(g) = s.earliest_ga_that_fits {
            let mut i = input.clone();
            i.ga = Some(g);
            prop_assert!(fits(&i), "GA {}", g);
            i.ga = Some(g - GA_SEARCH_STEP);
            prop_assert!(!fits(&i), "GA {} - 1 min", g);
        }
        if ga_mode {
            // Without blackouts a later GA always fits here (the start stays at `now`).
            if input.blackouts.global.is_empty() && input.blackouts.regions.is_empty() {
                prop_assert!(s.earliest_ga_that_fits.is_some());
            }
        } else {
            prop_assert_eq!(s.earliest_ga_that_fits, None);
        }
    }
}
