//! A launch across eight regions: plan order, the concurrency limit, a
//! blackout, kill -9 of the owner mid-roll-out (every region applied exactly
//! once, counted at the agents), the GA timer, and reconciliation of a lost
//! catalog.

use anyhow::Context as _;
use jiff::SignedDuration;
use tilewave_proto::agent::v1::{ListTilesRequest, LoseCatalogRequest};
use tilewave_proto::clock::v1::AdvanceRequest;
use tilewave_proto::common::v1::{EventKind, TileState, TimeRange};
use tilewave_proto::registry::v1::GetTileRequest;
use tilewave_proto::rollout::v1::{
    BlackoutWindow, RolloutState, StartRolloutRequest, StepState, WhereIsTileRequest, blackout_window,
};
use tilewave_testkit::eventually;

use crate::*;

#[tokio::test]
async fn launch_survives_kill_of_its_owner_respects_plan_and_turns_ga() -> anyhow::Result<()> {
    let mut stack = Stack::start(2).await?;
    let tile = stack.scheduled_tile(SignedDuration::from_hours(24 * 8)).await?;
    let ga = from_ts(&tile.ga_time);
    let now = stack.now().await?;
    let blackout_from = now + SignedDuration::from_mins(40);
    let blackout_to = now + SignedDuration::from_mins(60);
    let mut s = spec(&tile.id, now);
    s.blackouts.push(BlackoutWindow {
        name: "maintenance window".into(),
        regions: Vec::new(),
        when: Some(blackout_window::When::Once(TimeRange {
            start: Some(ts(blackout_from)),
            end: Some(ts(blackout_to)),
        })),
    });
    let mut c = stack.rollout(1).await?;
    let started = c
        .start_rollout(StartRolloutRequest {
            spec: Some(s),
            ..Default::default()
        })
        .await?
        .into_inner()
        .rollout
        .context("rollout")?;
    assert_eq!(started.wave_count, 3);
    assert_eq!(started.regions_total, 8);
    assert!(
        !started.trace_id.is_empty(),
        "the start request's trace is stored"
    );
    let id = started.id.clone();

    stack.set_rate(600.0).await?;

    // Kill -9 the owner once wave 2 is under way.
    let owner = eventually("wave 2 under way", WAIT, || async {
        let r = stack.get(&id).await.ok()?;
        let wave2 = r
            .steps
            .iter()
            .any(|s| s.wave == 2 && s.state != StepState::Pending as i32);
        if !wave2 {
            return None;
        }
        stack.owner_of(&id).await.ok().flatten()
    })
    .await?;
    stack.mark_down(owner);
    stack.rollouts[owner].kill()?;
    let survivor = 1 - owner;

    let done = eventually("the roll-out succeeds on the surviving replica", WAIT, || async {
        let mut c = stack.rollout(survivor).await.ok()?;
        let r = c
            .get_rollout(GetRolloutRequest {
                id: id.clone(),
                tile_id: String::new(),
            })
            .await
            .ok()?
            .into_inner()
            .rollout?;
        (r.state == RolloutState::Succeeded as i32).then_some(r)
    })
    .await?;

    // At least 24 h before GA.
    let finished = from_ts(&done.finished_at);
    assert!(
        finished <= ga - SignedDuration::from_hours(24),
        "finished {finished}, GA {ga}"
    );

    // In plan order: a wave starts only once the previous one is verified.
    for w in 2..=done.wave_count {
        let prev_verified = done
            .steps
            .iter()
            .filter(|s| s.wave == w - 1)
            .map(|s| from_ts(&s.verified_at))
            .max()
            .context("verified")?;
        let first_start = done
            .steps
            .iter()
            .filter(|s| s.wave == w)
            .map(|s| from_ts(&s.apply_started_at))
            .min()
            .context("started")?;
        assert!(
            first_start >= prev_verified,
            "wave {w} started {first_start} before wave {} was verified {prev_verified}",
            w - 1
        );
    }
    // Never more than two applies at once (an apply runs from its start
    // to the agent's acknowledgement), never starting in the blackout.
    for s in &done.steps {
        assert_eq!(s.state, StepState::Verified as i32, "{s:?}");
        let start = from_ts(&s.apply_started_at);
        let overlapping = done
            .steps
            .iter()
            .filter(|o| from_ts(&o.apply_started_at) <= start && start < from_ts(&o.applied_at))
            .count();
        assert!(overlapping <= 2, "{overlapping} applies at once at {start}");
        assert!(
            !(blackout_from <= start && start < blackout_to),
            "{} started in the blackout at {start}",
            s.region
        );
    }

    // Every region applied exactly once, counted at the agents.
    for region in REGIONS {
        let entries = stack
            .agent(region)
            .await?
            .list_tiles(ListTilesRequest { page: None })
            .await?
            .into_inner()
            .entries;
        let e = entries.iter().find(|e| e.tile_id == tile.id).context("entry")?;
        assert_eq!((e.revision, e.apply_count), (1, 1), "{region}: {e:?}");
        // The agent applied it during its step's apply call (which, checked
        // above, started outside the blackout), not at some later moment:
        // a wall-clock-free form of "no apply in the blackout" (at 600x a
        // busy machine's 100 ms is a virtual minute).
        let at = from_ts(&e.applied_at);
        let step = done.steps.iter().find(|s| s.region == region).context("step")?;
        let (called, returned) = (from_ts(&step.apply_started_at), from_ts(&step.applied_at));
        let rounding = SignedDuration::from_secs(1);
        assert!(
            called - rounding <= at && at <= returned + rounding,
            "{region} applied at {at}, outside its apply call {called}..{returned}"
        );
    }
    let mut reg = stack.registry().await?;
    let t = reg
        .get_tile(GetTileRequest {
            id: tile.id.clone(),
            revision: 0,
        })
        .await?
        .into_inner()
        .tile
        .context("tile")?;
    assert_eq!(t.state, TileState::RolledOut as i32);
    let events = stack.events().await?;
    assert_eq!(
        events
            .iter()
            .filter(|e| e.kind == EventKind::RolloutSucceeded as i32)
            .count(),
        1
    );

    // A lost catalog is repaired by reconciliation and recorded.
    let victim = "aws:us-east-1";
    stack
        .faults(victim)
        .await?
        .lose_catalog(LoseCatalogRequest {})
        .await?;
    eventually("the lost catalog is repaired", WAIT, || async {
        let entries = stack
            .agent(victim)
            .await
            .ok()?
            .list_tiles(ListTilesRequest { page: None })
            .await
            .ok()?
            .into_inner()
            .entries;
        entries
            .iter()
            .find(|e| e.tile_id == tile.id && e.revision == 1)
            .map(|_| ())
    })
    .await?;
    let drift = eventually("a DRIFT_REPAIRED event", SHORT, || async {
        let events = stack.events().await.ok()?;
        events
            .into_iter()
            .find(|e| e.kind == EventKind::DriftRepaired as i32 && e.region == victim)
    })
    .await?;
    assert_eq!(drift.tile_id, tile.id);
    let placements = stack
        .rollout(survivor)
        .await?
        .where_is_tile(WhereIsTileRequest {
            tile_id: tile.id.clone(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .placements;
    assert_eq!(placements.len(), 8);
    assert!(
        placements
            .iter()
            .all(|p| p.live_revision == 1 && p.since.is_some()),
        "{placements:?}"
    );

    // The GA timer turns the tile GA at its GA moment, once.
    stack.set_rate(0.0).await?;
    let left = ga.duration_since(stack.now().await?);
    stack
        .clock(survivor)
        .await?
        .advance(AdvanceRequest {
            by: Some(dur(left + SignedDuration::from_mins(1))),
        })
        .await?;
    eventually("the tile turns GA", WAIT, || async {
        let mut reg = stack.registry().await.ok()?;
        let t = reg
            .get_tile(GetTileRequest {
                id: tile.id.clone(),
                revision: 0,
            })
            .await
            .ok()?
            .into_inner()
            .tile?;
        (t.state == TileState::Ga as i32).then_some(())
    })
    .await?;
    Ok(())
}
