//! The owner paused (SIGSTOP) past its lease: another replica takes over,
//! the stale fencing token is refused at etcd and at the agents, the paused
//! replica stops when resumed, and the roll-out completes with every region
//! applied once. Then a rollback restores the previous state (a launch: the
//! tile removed) everywhere, newest region first.

use anyhow::Context as _;
use jiff::SignedDuration;
use tilewave_proto::agent::v1::{ApplyTileRequest, ListTilesRequest};
use tilewave_proto::common::v1::{AuditRecord, TileState};
use tilewave_proto::registry::v1::GetTileRequest;
use tilewave_proto::rollout::v1::{RollbackRolloutRequest, RolloutState, StartRolloutRequest, StepState};
use tilewave_store::{Actor, Change, FencingToken};
use tilewave_testkit::eventually;
use tonic::Code;

use crate::*;

#[tokio::test]
async fn a_paused_owner_is_fenced_out_and_rollback_removes_the_launch() -> anyhow::Result<()> {
    let stack = Stack::start(2).await?;
    let tile = stack.scheduled_tile(SignedDuration::from_hours(24 * 8)).await?;
    let now = stack.now().await?;
    let mut c = stack.rollout(0).await?;
    let r = c
        .start_rollout(StartRolloutRequest {
            spec: Some(spec(&tile.id, now)),
            ..Default::default()
        })
        .await?
        .into_inner()
        .rollout
        .context("rollout")?;
    let id = r.id.clone();
    stack.set_rate(600.0).await?;
    let owner_key = stack
        .store
        .keys()
        .owner(&tilewave_store::keys::work::rollout(&id));
    let (owner, old_token) = eventually("an owner applying wave 1", WAIT, || async {
        let r = stack.get(&id).await.ok()?;
        if !r.steps.iter().any(|s| s.state == StepState::Baking as i32) {
            return None;
        }
        let o =
            tilewave_store::ownership::current_owner(&stack.store, &tilewave_store::keys::work::rollout(&id))
                .await
                .ok()??;
        let i: usize = o.value.holder.strip_prefix("replica-")?.parse().ok()?;
        Some((i, o.create_revision))
    })
    .await?;
    stack.mark_down(owner);
    stack.rollouts[owner].stop()?;
    let new_token = eventually("the other replica takes over", WAIT, || async {
        let o =
            tilewave_store::ownership::current_owner(&stack.store, &tilewave_store::keys::work::rollout(&id))
                .await
                .ok()??;
        (o.value.holder == format!("replica-{}", 1 - owner)).then_some(o.create_revision)
    })
    .await?;
    assert!(new_token > old_token);

    // A write under the stale token is refused by etcd ...
    let stale = FencingToken {
        owner_key: owner_key.clone(),
        revision: old_token,
        epoch: 0,
    };
    let e = stack
        .store
        .commit(
            Change::new()
                .put_unchecked(
                    stack.store.keys().rollout_step(&id, "late-write"),
                    &AuditRecord::default(),
                )
                .fence(&stale)
                .audit(AuditRecord {
                    action: "LateWrite".into(),
                    ..Default::default()
                }),
            &Actor::new("test"),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, tilewave_store::Error::Fenced { .. }), "{e:?}");
    // ... and by an agent that has seen the new owner's token. A step that
    // records an attempt does so before its ApplyTile reaches the agent, so
    // the agent's own catalog is what says the new token has arrived.
    let region = eventually("the new owner's apply reaches an agent", WAIT, || async {
        let r = stack.get(&id).await.ok()?;
        for s in r.steps.iter().filter(|s| s.wave >= 2 && s.attempts > 0) {
            if let Ok(Some(e)) = stack.entry(&s.region, &tile.id).await
                && e.fencing_token == new_token
            {
                return Some(s.region.clone());
            }
        }
        None
    })
    .await?;
    let mut agent = stack.agent(&region).await?;
    let e = agent
        .apply_tile(ApplyTileRequest {
            tile_id: tile.id.clone(),
            revision: 1,
            fencing_token: old_token,
            rollout_id: id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{region}: {e:?}");

    // The paused replica, resumed, stops driving the roll-out.
    stack.rollouts[owner].cont()?;
    let done = eventually("the roll-out succeeds", WAIT, || async {
        let r = stack.get(&id).await.ok()?;
        (r.state == RolloutState::Succeeded as i32).then_some(r)
    })
    .await?;
    assert!(done.steps.iter().all(|s| s.state == StepState::Verified as i32));
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
    }
    let log = std::fs::read_to_string(stack.rollouts[owner].log_path())?;
    assert!(
        log.contains("ownership lost") || log.contains("fenced"),
        "the paused replica did not notice it lost the roll-out"
    );

    // Rollback of a launch removes the tile everywhere, newest region first.
    let mut c = stack.rollout(1 - owner).await?;
    let rb = c
        .rollback_rollout(RollbackRolloutRequest {
            id: id.clone(),
            reason: "test".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .rollout
        .context("rollout")?;
    assert_eq!(rb.state, RolloutState::RollingBack as i32);
    let back = eventually("the roll-out is rolled back", WAIT, || async {
        let r = stack.get(&id).await.ok()?;
        (r.state == RolloutState::RolledBack as i32).then_some(r)
    })
    .await?;
    assert!(
        back.steps.iter().all(|s| s.state == StepState::RolledBack as i32),
        "{:?}",
        back.steps
    );
    for region in REGIONS {
        let entries = stack
            .agent(region)
            .await?
            .list_tiles(ListTilesRequest { page: None })
            .await?
            .into_inner()
            .entries;
        assert!(
            entries.iter().all(|e| e.tile_id != tile.id),
            "{region} still has the tile: {entries:?}"
        );
    }
    let t = stack
        .registry()
        .await?
        .get_tile(GetTileRequest {
            id: tile.id.clone(),
            revision: 0,
        })
        .await?
        .into_inner()
        .tile
        .context("tile")?;
    assert_eq!(t.state, TileState::Scheduled as i32, "{t:?}");
    Ok(())
}

/// A roll-out that succeeds releases its owner key in the same transaction
/// that marks it SUCCEEDED (no release transaction after it): the key is
/// there at the revision before that write and gone at it.
#[tokio::test]
async fn a_succeeded_roll_out_releases_its_owner_key_with_its_last_write() -> anyhow::Result<()> {
    let stack = Stack::start(1).await?;
    let tile = stack.scheduled_tile(SignedDuration::from_hours(24 * 8)).await?;
    let now = stack.now().await?;
    let r = stack
        .start_rollout(quick_spec(&tile.id, now, &REGIONS[..2], SignedDuration::ZERO, 2))
        .await?;
    stack.set_rate(600.0).await?;
    let done = stack.wait_state(&r.id, RolloutState::Succeeded).await?;
    let key = stack
        .store
        .keys()
        .owner(&tilewave_store::keys::work::rollout(&r.id));
    let at = |revision: i64| {
        let key = key.clone();
        let mut kv = stack.store.kv();
        async move {
            let got = kv
                .get(key, Some(etcd_client::GetOptions::new().with_revision(revision)))
                .await?;
            anyhow::Ok(!got.kvs().is_empty())
        }
    };
    assert!(at(done.etag - 1).await?, "owned right before the last write");
    assert!(!at(done.etag).await?, "released by the last write itself");
    assert_eq!(stack.owner_of(&r.id).await?, None);
    Ok(())
}
