//! Planner benchmarks: a full 70-region plan (with local business-hours
//! blackouts), a trivial 3-region plan as the baseline, a re-plan in the
//! middle of a roll-out, and an infeasible plan with its searched suggestions.
//!
//! Run: `cargo bench -p tilewave-core --bench planner -- --warm-up-time 1 --measurement-time 3`.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use jiff::civil::Time;
use jiff::{SignedDuration, Timestamp};
use tilewave_core::planner::{
    BakePolicy, BlackoutWindow, PlanError, PlanInput, Progress, Recurring, RegionBlackout, RegionSelection,
    RegionState, plan, replan,
};
use tilewave_core::regions::{Cloud, RegionCatalog};

fn ts(s: &str) -> Timestamp {
    s.parse().expect("a valid timestamp")
}

/// Journey 1's launch, with every AWS region frozen during its local
/// business hours on weekdays.
fn launch() -> PlanInput {
    let mut input = PlanInput::launch(
        RegionCatalog::builtin(),
        &Cloud::ALL,
        ts("2026-12-08T17:00:00Z"),
        ts("2026-11-30T09:00:00Z"),
    );
    let hours = Recurring::weekdays(Time::constant(9, 0, 0, 0), Time::constant(17, 0, 0, 0));
    input.blackouts.regions = input
        .catalog
        .of_cloud(Cloud::Aws)
        .map(|r| RegionBlackout {
            region: r.id.clone(),
            window: BlackoutWindow::Recurring(hours.clone()),
        })
        .collect();
    input
}

fn benches(c: &mut Criterion) {
    let full = launch();
    let mut trivial = launch();
    trivial.regions = RegionSelection::Only(vec![
        "aws:ap-northeast-1".into(),
        "gcp:asia-northeast1".into(),
        "azure:eastus2euap".into(),
    ]);
    assert!(plan(&full).is_ok() && plan(&trivial).is_ok());

    // Mid-roll-out: waves 1 and 2 verified, wave 3 half done, paused.
    let p = plan(&full).expect("the launch plan fits");
    let mut progress = Progress::default();
    for w in &p.waves[..2] {
        for r in &w.regions {
            progress.regions.insert(r.clone(), RegionState::Verified);
        }
    }
    let now = p.waves[2].start + SignedDuration::from_mins(7);
    for (k, r) in p.waves[2].regions.iter().enumerate().take(6) {
        let state = if k < 4 {
            RegionState::Baking {
                until: now + SignedDuration::from_hours(3),
            }
        } else {
            RegionState::Applying { since: now }
        };
        progress.regions.insert(r.clone(), state);
    }
    progress.paused_since = Some(now);

    let mut late = launch();
    late.bake = BakePolicy::Uniform(SignedDuration::from_hours(40));
    assert!(matches!(plan(&late), Err(PlanError::Infeasible(_))));

    c.bench_function("plan/3 regions (baseline)", |b| {
        b.iter(|| plan(black_box(&trivial)))
    });
    c.bench_function("plan/70 regions", |b| b.iter(|| plan(black_box(&full))));
    c.bench_function("replan/70 regions mid-roll-out", |b| {
        b.iter(|| replan(black_box(&full), black_box(&progress), now))
    });
    c.bench_function("plan/70 regions infeasible + suggestions", |b| {
        b.iter(|| plan(black_box(&late)))
    });
}

criterion_group!(planner, benches);
criterion_main!(planner);
