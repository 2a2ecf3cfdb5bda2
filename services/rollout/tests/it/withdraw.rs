//! Withdraw as a removal roll-out: a rolled-out tile withdrawn at the
//! registry (nothing else: the rollout service starts the removal by
//! itself) is removed region by region (wave order, the concurrency
//! limit), no agent lists it any more, WhereIsTile shows nothing live, and
//! the tile is WITHDRAWN with its withdrawal confirmed (the mark cleared),
//! after exactly one removal roll-out. ListRollouts filters the tile's two roll-outs by
//! state and kind.

use anyhow::Context as _;
use jiff::SignedDuration;
use tilewave_proto::common::v1::TileState;
use tilewave_proto::registry::v1::WithdrawRequest;
use tilewave_proto::rollout::v1::{
    ListRolloutsRequest, RolloutKind, RolloutState, StepState, WhereIsTileRequest,
};

use crate::*;

#[tokio::test]
async fn withdraw_removes_the_tile_region_by_region() -> anyhow::Result<()> {
    let stack = Stack::start(2).await?;
    let tile = stack.scheduled_tile(SignedDuration::from_hours(24 * 8)).await?;
    let now = stack.now().await?;
    let launch = stack
        .start_rollout(quick_spec(
            &tile.id,
            now,
            &REGIONS,
            SignedDuration::from_mins(10),
            3,
        ))
        .await?;
    stack.set_rate(600.0).await?;
    stack.wait_state(&launch.id, RolloutState::Succeeded).await?;
    stack.set_rate(0.0).await?;

    let w = stack
        .registry()
        .await?
        .withdraw(WithdrawRequest {
            id: tile.id.clone(),
            etag: stack.tile(&tile.id).await?.etag,
            reason: "partner discontinued the product".into(),
        })
        .await?
        .into_inner();
    assert!(w.removal_pending, "{w:?}");

    // Nobody calls StartRollout: the rollout service reacts to the mark.
    let mut c = stack.rollout(stack.live()).await?;
    let removal = eventually("the removal roll-out to start by itself", WAIT, || {
        let mut c = c.clone();
        let tile_id = tile.id.clone();
        async move {
            c.list_rollouts(ListRolloutsRequest {
                tile_id,
                kind: RolloutKind::Withdraw as i32,
                ..Default::default()
            })
            .await
            .ok()?
            .into_inner()
            .rollouts
            .into_iter()
            .next()
        }
    })
    .await?;
    assert_eq!(removal.kind, RolloutKind::Withdraw as i32);
    assert_eq!(removal.regions_total, 8, "every region where it is live");

    // Two roll-outs of the tile: filtered by state and by kind.
    let list = |states: Vec<i32>, kind: RolloutKind| ListRolloutsRequest {
        tile_id: tile.id.clone(),
        states,
        kind: kind as i32,
        ..Default::default()
    };
    let all = c
        .list_rollouts(list(vec![], RolloutKind::Unspecified))
        .await?
        .into_inner()
        .rollouts;
    assert_eq!(all.len(), 2, "{all:?}");
    let done = c
        .list_rollouts(list(
            vec![RolloutState::Succeeded as i32],
            RolloutKind::Unspecified,
        ))
        .await?
        .into_inner()
        .rollouts;
    assert_eq!(
        done.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        [launch.id.as_str()]
    );
    let withdraws = c
        .list_rollouts(list(vec![], RolloutKind::Withdraw))
        .await?
        .into_inner()
        .rollouts;
    assert_eq!(
        withdraws.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        [removal.id.as_str()]
    );
    let none = c
        .list_rollouts(ListRolloutsRequest {
            tile_id: "no-such-tile".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .rollouts;
    assert!(none.is_empty(), "{none:?}");

    stack.set_rate(600.0).await?;
    let done = stack.wait_state(&removal.id, RolloutState::Succeeded).await?;
    stack.set_rate(0.0).await?;
    assert!(
        done.steps.iter().all(|s| s.state == StepState::Verified as i32),
        "{:?}",
        done.steps
    );
    // Region by region: never more removals at once than the concurrency
    // limit, wave after wave.
    let limit = done
        .spec
        .as_ref()
        .map_or(0, |s| usize::try_from(s.concurrency).unwrap_or(0));
    let limit = if limit == 0 { 4 } else { limit };
    assert!(done.wave_count >= 2, "canaries first: {done:?}");
    // (A removal runs from its start to the agent's acknowledgement.)
    for s in &done.steps {
        let start = from_ts(&s.apply_started_at);
        let overlapping = done
            .steps
            .iter()
            .filter(|o| from_ts(&o.apply_started_at) <= start && start < from_ts(&o.applied_at))
            .count();
        assert!(overlapping <= limit, "{overlapping} removals at once at {start}");
        if s.wave > 1 {
            let prev = done
                .steps
                .iter()
                .filter(|p| p.wave == s.wave - 1)
                .map(|p| from_ts(&p.verified_at))
                .max()
                .context("previous wave")?;
            assert!(
                start >= prev,
                "{} removed before wave {} was verified",
                s.region,
                s.wave - 1
            );
        }
    }
    for region in REGIONS {
        assert!(
            stack.entry(region, &tile.id).await?.is_none(),
            "{region} still lists it"
        );
    }
    let placements = stack
        .rollout(stack.live())
        .await?
        .where_is_tile(WhereIsTileRequest {
            tile_id: tile.id.clone(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .placements;
    assert!(
        placements
            .iter()
            .all(|p| p.live_revision == 0 && p.reported_revision == 0),
        "{placements:?}"
    );
    // The removal's AdvanceLifecycle(WITHDRAWN) confirmed the withdrawal.
    let confirmed = eventually("the withdrawal confirmed", SHORT, || async {
        let t = stack.tile(&tile.id).await.ok()?;
        t.withdraw_requested_at.is_none().then_some(t)
    })
    .await?;
    assert_eq!(confirmed.state, TileState::Withdrawn as i32);
    // Exactly one removal, even after the lifecycle loop looked again.
    let withdraws = stack
        .rollout(stack.live())
        .await?
        .list_rollouts(list(vec![], RolloutKind::Withdraw))
        .await?
        .into_inner()
        .rollouts;
    assert_eq!(withdraws.len(), 1, "{withdraws:?}");
    Ok(())
}
