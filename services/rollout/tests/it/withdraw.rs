//! Withdraw as a removal roll-out: a rolled-out tile withdrawn at the
//! registry is removed region by region (wave order, the concurrency
//! limit), no agent lists it any more, WhereIsTile shows nothing live, and
//! the tile is WITHDRAWN. ListRollouts filters the tile's two roll-outs by
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

    let now = stack.now().await?;
    let mut s = quick_spec(&tile.id, now, &[], SignedDuration::from_mins(10), 2);
    s.kind = RolloutKind::Withdraw as i32;
    let removal = stack.start_rollout(s).await?;
    assert_eq!(removal.kind, RolloutKind::Withdraw as i32);
    assert_eq!(removal.regions_total, 8, "every region where it is live");

    // Two roll-outs of the tile: filtered by state and by kind.
    let mut c = stack.rollout(stack.live()).await?;
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
    // Region by region: never more than two removals at once, wave after wave.
    let apply = SignedDuration::from_mins(5);
    for s in &done.steps {
        let start = from_ts(&s.apply_started_at);
        let overlapping = done
            .steps
            .iter()
            .filter(|o| {
                let os = from_ts(&o.apply_started_at);
                os <= start && start < os + apply
            })
            .count();
        assert!(overlapping <= 2, "{overlapping} removals at once at {start}");
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
    assert_eq!(stack.tile(&tile.id).await?.state, TileState::Withdrawn as i32);
    Ok(())
}
