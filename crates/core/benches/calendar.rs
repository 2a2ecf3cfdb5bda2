//! Launch-calendar benchmarks: scheduling 5,000 ready tiles at once over
//! daily launch days of 20 tiles (250 days of slots, inside the one-year
//! horizon), first ready first served. Each tile's `plan_end` is the real
//! planner over the 70 regions of the catalog (one plan per tile: a full
//! slot is skipped before the planner runs), and, as the baseline, a cheap
//! closure, which shows the calendar's own share.
//!
//! Run: `cargo bench -p tilewave-core --bench calendar -- --warm-up-time 1 --measurement-time 5`.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use jiff::civil::Time;
use jiff::{SignedDuration, Timestamp};
use tilewave_core::calendar::{
    BatchTile, BoxedPlanEnd, Choice, ChooseOptions, Days, Gtm, LaunchCalendar, LaunchRule, Reservations,
    plan_end_with_planner, schedule_batch,
};
use tilewave_core::planner::PlanInput;
use tilewave_core::regions::{Cloud, RegionCatalog};

const TILES: usize = 5_000;

fn ts(s: &str) -> Timestamp {
    s.parse().expect("a valid timestamp")
}

fn calendar() -> LaunchCalendar {
    LaunchCalendar {
        rules: vec![LaunchRule {
            name: "daily launch".into(),
            days: Days::EVERY_DAY,
            time: Time::constant(17, 0, 0, 0),
            tz: "UTC".into(),
            capacity: 20,
        }],
        ..Default::default()
    }
}

fn tiles(now: Timestamp, real: bool) -> Vec<BatchTile<BoxedPlanEnd>> {
    let input = PlanInput::launch(RegionCatalog::builtin(), &Cloud::ALL, now, now);
    (0..TILES)
        .map(|k| {
            let plan_end: BoxedPlanEnd = if real {
                Box::new(plan_end_with_planner(&input))
            } else {
                Box::new(|ga: Timestamp| Some(ga - SignedDuration::from_hours(5 * 24)))
            };
            BatchTile {
                id: format!("tile-{k:05}"),
                ready_at: now - SignedDuration::from_mins((k % 997) as i64),
                gtm: Gtm::Done,
                plan_end,
            }
        })
        .collect()
}

fn run(cal: &LaunchCalendar, now: Timestamp, tiles: Vec<BatchTile<BoxedPlanEnd>>) -> usize {
    let mut booked = Reservations::new();
    let out = schedule_batch(cal, now, &mut booked, tiles, &ChooseOptions::default()).unwrap();
    out.iter()
        .filter(|b| matches!(b.choice, Choice::Chosen(_)))
        .count()
}

fn benches(c: &mut Criterion) {
    let cal = calendar();
    let now = ts("2026-11-30T09:00:00Z");
    assert_eq!(run(&cal, now, tiles(now, true)), TILES);
    let mut g = c.benchmark_group("schedule_batch");
    g.sample_size(10);
    g.bench_function("5000 tiles, daily slots of 20, 70-region planner", |b| {
        b.iter_batched(
            || tiles(now, true),
            |t| run(black_box(&cal), now, t),
            criterion::BatchSize::LargeInput,
        )
    });
    g.bench_function("5000 tiles, daily slots of 20, cheap plan_end", |b| {
        b.iter_batched(
            || tiles(now, false),
            |t| run(black_box(&cal), now, t),
            criterion::BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(calendar_benches, benches);
criterion_main!(calendar_benches);
