//! The lifecycle loop (`owners/lifecycle`): what the rollout service does
//! on its own. An abort whose replica died before telling the registry
//! still moves the tile back to SCHEDULED (simulated by committing ABORTED
//! straight into etcd, as the dead replica's handler would have); and a
//! tile withdrawn mid-launch has its launch aborted and a removal roll-out
//! started, which takes it off every agent and confirms the withdrawal.

use jiff::SignedDuration;
use tilewave_proto::common::v1::{AuditRecord, TileState};
use tilewave_proto::registry::v1::WithdrawRequest;
use tilewave_proto::rollout::v1::{ListRolloutsRequest, Rollout, RolloutKind, RolloutState};
use tilewave_store::{Actor, Change};

use crate::*;

#[tokio::test]
async fn an_abort_committed_without_the_registry_call_still_schedules_the_tile() -> anyhow::Result<()> {
    let stack = Stack::start(2).await?;
    let tile = stack.scheduled_tile(SignedDuration::from_hours(24 * 8)).await?;
    let now = stack.now().await?;
    let launch = stack
        .start_rollout(quick_spec(
            &tile.id,
            now,
            &REGIONS,
            SignedDuration::from_mins(30),
            2,
        ))
        .await?;
    // The clock stands still: the roll-out starts and stays RUNNING.
    eventually("the tile ROLLING_OUT", WAIT, || async {
        let t = stack.tile(&tile.id).await.ok()?;
        (t.state == TileState::RollingOut as i32).then_some(())
    })
    .await?;

    // What AbortRollout commits, written straight into etcd: the replica
    // that committed it "died" before anything else happened.
    // The owner may be writing (its applies): read, change and commit
    // until no write came in between.
    eventually("ABORTED committed straight into etcd", WAIT, || async {
        let keys = stack.store.keys();
        let key = keys.rollout(&launch.id);
        let current = stack.store.get::<Rollout>(&key).await.ok()??;
        let mut aborted = current.value.clone();
        aborted.state = RolloutState::Aborted as i32;
        aborted.finished_at = Some(ts(stack.now().await.ok()?));
        aborted.paused_reason = "aborted by a replica that then died".into();
        let change = Change::new()
            .update(key, &aborted, current.etag)
            .delete_unchecked(keys.rollout_active(&tile.id))
            .audit(AuditRecord {
                action: "AbortRollout".into(),
                object_kind: "rollout".into(),
                object_id: launch.id.clone(),
                summary: "aborted (simulated crash right after the commit)".into(),
                ..Default::default()
            });
        stack.store.commit(change, &Actor::new("test")).await.ok()
    })
    .await?;

    let t = eventually("the tile back to SCHEDULED", WAIT, || async {
        let t = stack.tile(&tile.id).await.ok()?;
        (t.state == TileState::Scheduled as i32).then_some(t)
    })
    .await?;
    assert_eq!(t.revision, launch.revision);
    assert_eq!(
        stack.get(&launch.id).await?.state,
        RolloutState::Aborted as i32,
        "the roll-out stays aborted"
    );
    Ok(())
}

#[tokio::test]
async fn a_tile_withdrawn_mid_launch_has_its_launch_aborted_and_is_removed() -> anyhow::Result<()> {
    let stack = Stack::start(2).await?;
    let tile = stack.scheduled_tile(SignedDuration::from_hours(24 * 8)).await?;
    let now = stack.now().await?;
    let launch = stack
        .start_rollout(quick_spec(
            &tile.id,
            now,
            &REGIONS,
            SignedDuration::from_mins(30),
            3,
        ))
        .await?;
    // Wave 1 applied (the clock stands still: it bakes and waits).
    let first = wave(&launch, 1);
    eventually("wave 1 applied at the agents", WAIT, || async {
        for region in &first {
            stack.entry(region, &tile.id).await.ok()??;
        }
        Some(())
    })
    .await?;

    let w = stack
        .registry()
        .await?
        .withdraw(WithdrawRequest {
            id: tile.id.clone(),
            etag: stack.tile(&tile.id).await?.etag,
            reason: "partner pulled out mid-launch".into(),
        })
        .await?
        .into_inner();
    assert!(w.removal_pending, "{w:?}");

    stack.wait_state(&launch.id, RolloutState::Aborted).await?;
    stack.set_rate(600.0).await?;
    let confirmed = eventually("the withdrawal confirmed", WAIT, || async {
        let t = stack.tile(&tile.id).await.ok()?;
        t.withdraw_requested_at.is_none().then_some(t)
    })
    .await?;
    stack.set_rate(0.0).await?;
    assert_eq!(confirmed.state, TileState::Withdrawn as i32);
    for region in REGIONS {
        assert!(
            stack.entry(region, &tile.id).await?.is_none(),
            "{region} still lists it"
        );
    }
    let removals = stack
        .rollout(stack.live())
        .await?
        .list_rollouts(ListRolloutsRequest {
            tile_id: tile.id.clone(),
            kind: RolloutKind::Withdraw as i32,
            ..Default::default()
        })
        .await?
        .into_inner()
        .rollouts;
    assert_eq!(removals.len(), 1, "{removals:?}");
    let removal = stack.get(&removals[0].id).await?;
    assert_eq!(removal.state, RolloutState::Succeeded as i32, "{removal:?}");
    let mut removed: Vec<String> = removal.steps.iter().map(|s| s.region.clone()).collect();
    removed.sort();
    let mut applied = first.clone();
    applied.sort();
    assert_eq!(removed, applied, "only where the launch had put it");
    Ok(())
}
