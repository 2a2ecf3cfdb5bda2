//! The planned apply time is the planner's estimate, not a wait (issue 18):
//! once an agent acknowledges an apply the region has the revision, and
//! its health gate (the start of its bake) comes at once. Waiting out the
//! estimate after the acknowledgement cost one `--apply-time` per wave: a
//! 70-region zero-bake roll-out with `--apply-time 1s` at rate 1 took 5.1 s
//! for five waves whose etcd transactions and agent calls need a tenth of
//! that.

use std::time::Duration;

use tokio::time::Instant;

use anyhow::Context as _;
use jiff::SignedDuration;
use tilewave_proto::agent::v1::ApplyTileRequest;
use tilewave_proto::registry::v1::GetTileRequest;
use tilewave_proto::rollout::v1::{RolloutSpec, RolloutState, StepState};
use tilewave_store::audit;
use tilewave_store::{Actor, Change};

use crate::*;

/// Every region at once, a planned apply time of `apply`, no bake.
fn zero_bake(tile: &str, now: jiff::Timestamp, apply: SignedDuration) -> RolloutSpec {
    RolloutSpec {
        apply_time: Some(dur(apply)),
        ..quick_spec(tile, now, &REGIONS, SignedDuration::ZERO, 8)
    }
}

/// With the clock stopped, no domain time passes: a roll-out that waited
/// for its planned apply time (an hour here) would never leave its first
/// wave. Acknowledged applies are gated at once, so it succeeds at the
/// very moment it started, every region applied once.
#[tokio::test]
async fn a_zero_bake_roll_out_does_not_wait_out_its_planned_apply_time() -> anyhow::Result<()> {
    let stack = Stack::start(1).await?;
    let tile = stack.scheduled_tile(SignedDuration::from_hours(24 * 8)).await?;
    let now = stack.now().await?;
    // The stack's clock is frozen (rate 0) from the start.
    let started = stack
        .start_rollout(zero_bake(&tile.id, now, SignedDuration::from_hours(1)))
        .await?;
    assert!(started.wave_count >= 3, "{started:?}");
    let done = eventually("the roll-out SUCCEEDED on a stopped clock", SHORT, || async {
        let r = stack.get(&started.id).await.ok()?;
        (r.state == RolloutState::Succeeded as i32).then_some(r)
    })
    .await?;
    assert_eq!(stack.now().await?, now, "the clock stayed where it was");
    for s in &done.steps {
        assert_eq!(s.state, StepState::Verified as i32, "{s:?}");
        assert_eq!(s.attempts, 1, "{s:?}");
        // The bake (none) starts when the agent acknowledged the apply.
        assert_eq!(from_ts(&s.bake_ends_at), from_ts(&s.applied_at), "{s:?}");
        assert_eq!(from_ts(&s.verified_at), now, "{s:?}");
    }
    assert_eq!(from_ts(&done.finished_at), now);
    for (region, n) in stack.apply_counts(&tile.id).await? {
        assert_eq!(n, 1, "{region}");
    }
    Ok(())
}

/// Measures (not run by default; BENCHMARKS.md, "Roll-out wall time"):
/// the wall time of a zero-bake roll-out of the eight regions at rate 1
/// with `--apply-time 1s`, from StartRollout to SUCCEEDED as the client
/// sees it (polling GetRollout every 5 ms), against a floor measured in the
/// same process: per wave, two etcd transactions (the apply recorded
/// before the call, the result after) and one agent call per region of
/// the wave at once (an ApplyTile of a new revision of a tile of its own,
/// with the tile's configuration and the probe after it, as a step asks).
/// Prints one line per run.
///
/// `BENCH_RUNS=5 cargo nextest run -p tilewave-rollout --test it --run-ignored only -E 'test(measure_zero_bake_wall_time)' --no-capture`
#[tokio::test]
#[ignore = "a measurement: run by hand (BENCHMARKS.md)"]
async fn measure_zero_bake_wall_time() -> anyhow::Result<()> {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let stack = Stack::start(1).await?;
    stack.set_rate(1.0).await?;
    let mut ratios = Vec::new();
    for run in 0..runs {
        let id = format!("bench-{run}");
        let tile = stack
            .scheduled(RIVERFLOW, &id, SignedDuration::from_hours(24 * 8))
            .await?;
        let now = stack.now().await?;
        let t0 = Instant::now();
        let started = stack
            .start_rollout(zero_bake(&tile.id, now, SignedDuration::from_secs(1)))
            .await?;
        let start_call = t0.elapsed();
        let done = eventually("SUCCEEDED", WAIT, || async {
            let r = stack.get(&started.id).await.ok()?;
            if r.state == RolloutState::Succeeded as i32 {
                return Some(r);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
            None
        })
        .await?;
        let wall = t0.elapsed();
        // Where the time went, from the roll-out's own timestamps (domain
        // time at rate 1: milliseconds after the roll-out was created).
        let base = from_ts(&done.created_at);
        let ms = |t: &Option<prost_types::Timestamp>| from_ts(t).duration_since(base).as_secs_f64() * 1e3;
        let mut line = format!("started {:.0}", ms(&done.started_at));
        for w in 1..=done.wave_count {
            let steps: Vec<_> = done.steps.iter().filter(|s| s.wave == w).collect();
            let base_ms = base.as_millisecond() as f64;
            let last = |f: fn(&tilewave_proto::rollout::v1::RolloutStep) -> f64| {
                steps.iter().map(|s| f(s) - base_ms).fold(0.0, f64::max)
            };
            line.push_str(&format!(
                "; wave {w}: apply started {:.0}, acknowledged {:.0}, verified {:.0}",
                last(|s| from_ts(&s.apply_started_at).as_millisecond() as f64),
                last(|s| from_ts(&s.applied_at).as_millisecond() as f64),
                last(|s| from_ts(&s.verified_at).as_millisecond() as f64),
            ));
        }
        line.push_str(&format!(
            "; finished {:.0}; StartRollout call {:.0}",
            ms(&done.finished_at),
            start_call.as_secs_f64() * 1e3
        ));
        println!("run {run} timeline (ms): {line}");

        // The floor, in the same process, just after.
        let config = stack
            .registry()
            .await?
            .get_tile(GetTileRequest {
                id: tile.id.clone(),
                revision: 0,
            })
            .await?
            .into_inner()
            .tile
            .and_then(|t| t.config);
        let t1 = Instant::now();
        let key = format!("{}bench-floor", PREFIX);
        for w in 1..=done.wave_count {
            let regions = wave(&done, w);
            for n in 0..2 {
                let msg = tilewave_proto::common::v1::Event {
                    message: format!("wave {w} {n}"),
                    ..Default::default()
                };
                stack
                    .store
                    .commit(
                        Change::new()
                            .put_unchecked(key.clone(), &msg)
                            .audit(audit::record("Bench", "bench", "floor", format!("wave {w}"))),
                        &Actor::new("bench"),
                    )
                    .await?;
                if n == 0 {
                    // The apply each region needs: a new revision of a
                    // tile of the floor's own, with the tile's
                    // configuration, probed after (what a step asks).
                    let calls = regions.iter().map(|region| async {
                        let mut a = stack.agent(region).await?;
                        a.apply_tile(ApplyTileRequest {
                            tile_id: format!("bench-floor-{run}"),
                            revision: i64::from(w),
                            config: config.clone(),
                            fencing_token: i64::MAX,
                            probe_after: true,
                            ..Default::default()
                        })
                        .await
                        .context("apply")?;
                        anyhow::Ok(())
                    });
                    futures::future::try_join_all(calls).await?;
                }
            }
        }
        let floor = t1.elapsed();
        let ratio = wall.as_secs_f64() / floor.as_secs_f64();
        ratios.push(ratio);
        println!(
            "run {run}: {} waves, wall {:.1} ms, floor {:.1} ms, ratio {ratio:.2}",
            done.wave_count,
            wall.as_secs_f64() * 1e3,
            floor.as_secs_f64() * 1e3
        );
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "median ratio {:.2} (min {:.2}, max {:.2})",
        ratios[ratios.len() / 2],
        ratios[0],
        ratios[ratios.len() - 1]
    );
    Ok(())
}
