//! A backup taken during a roll-out restores into a fresh cluster that
//! resumes it (issue 17). etcd 3.4's `snapshot restore` takes the revisions
//! back to the backup's, and fencing tokens are revisions: the agents, which
//! keep their catalogs, have seen tokens newer than anything the restored
//! cluster hands out, so without `tilewave admin bump-epoch` they refuse the
//! new owners; after it the roll-out completes.

use anyhow::Context as _;
use jiff::SignedDuration;
use tilewave_proto::agent::v1::{ApplyTileRequest, CatalogEntry};
use tilewave_proto::common::v1::AuditRecord;
use tilewave_proto::rollout::v1::{RolloutState, StepState};
use tilewave_store::keys::work;
use tilewave_store::{Actor, Change, Ownership};
use tilewave_testkit::eventually;
use tonic::Code;

use crate::*;

/// Writes the cluster makes between the backup and the restore in the test
/// (in production: hours of roll-outs and reconciliation): enough that a
/// token handed out after them is above any the restored cluster hands out
/// before the services are running again.
const WRITES_AFTER_BACKUP: usize = 150;

/// The ApplyTile a probe owner sends `region`'s agent: the tile's live
/// revision again (a no-op when accepted), under `token`.
fn probe_apply(tile: &str, entry: &CatalogEntry, token: i64) -> ApplyTileRequest {
    ApplyTileRequest {
        tile_id: tile.to_owned(),
        revision: entry.revision,
        fencing_token: token,
        rollout_id: "restore-probe".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_backup_taken_during_a_roll_out_resumes_after_an_epoch_bump() -> anyhow::Result<()> {
    let mut stack = Stack::start(1).await?;
    let tile = stack.scheduled_tile(SignedDuration::from_hours(24 * 8)).await?;
    let now = stack.now().await?;
    // The clock runs until wave 1 is applied, then stops (wave 1's apply
    // slot and bake take 3.5 s at this rate): the backup is taken with wave
    // 1 applied and the rest pending.
    let started = stack.start_rollout(spec(&tile.id, now)).await?;
    let id = started.id.clone();
    stack.set_rate(600.0).await?;
    let wave1 = stack
        .wait_for(&id, "wave 1 applied", |r| {
            r.steps
                .iter()
                .filter(|s| s.wave == 1)
                .all(|s| s.applied_at.is_some())
        })
        .await?;
    stack.set_rate(0.0).await?;
    let wave1 = wave(&wave1, 1);
    let pending = stack.get(&id).await?;
    anyhow::ensure!(
        pending
            .steps
            .iter()
            .filter(|s| s.wave >= 2)
            .all(|s| s.state == StepState::Pending as i32),
        "the clock stopped too late: {:?}",
        pending.steps
    );
    for region in &wave1 {
        let e = stack.entry(region, &tile.id).await?.context("wave 1 entry")?;
        assert_eq!(e.revision, tile.revision, "{region}: {e:?}");
    }

    // The backup, as an operator takes it (etcdctl, mutual TLS).
    let backup = stack.dir.path().join("backup.db");
    stack.etcd.snapshot_save(&backup).await?;
    let backup_revision = stack.store.revision().await?;

    // The cluster lives on: writes, then a new owner of the roll-out (the
    // replica restarted), which applies wave 2 under a token the restored
    // cluster will not reach for a while.
    for i in 0..WRITES_AFTER_BACKUP {
        stack
            .store
            .commit(
                Change::new().audit(AuditRecord {
                    action: "AfterBackup".into(),
                    object_kind: "test".into(),
                    object_id: i.to_string(),
                    ..Default::default()
                }),
                &Actor::new("test"),
            )
            .await?;
    }
    stack.rollouts[0].restart().await?;
    stack.advance(SignedDuration::from_mins(40)).await?;
    let (region, token_after_backup) = eventually("a wave 2 apply by the new owner", WAIT, || async {
        let owner = tilewave_store::ownership::current_owner(&stack.store, &work::rollout(&id))
            .await
            .ok()??;
        if owner.create_revision <= backup_revision + WRITES_AFTER_BACKUP as i64 {
            return None;
        }
        let r = stack.get(&id).await.ok()?;
        for s in r.steps.iter().filter(|s| s.wave == 2) {
            if let Ok(Some(e)) = stack.entry(&s.region, &tile.id).await
                && e.fencing_token == owner.create_revision
            {
                return Some((s.region.clone(), e.fencing_token));
            }
        }
        None
    })
    .await?;
    stack.rollouts[0].terminate(Duration::from_secs(10)).await?;

    // Restore into a fresh cluster (same endpoints: the registry and the
    // agents keep running, the agents keep their catalogs).
    stack.etcd.restore_snapshot(&backup).await?;
    let restored_revision = stack.store.revision().await?;
    assert!(
        restored_revision < token_after_backup,
        "the restore took the revision back: {restored_revision} vs the token {token_after_backup} \
         the agent of {region} saw"
    );
    let entry = stack.entry(&region, &tile.id).await?.context("wave 2 entry")?;

    // Without an epoch bump a new owner's token is refused by the agent.
    let probe = Ownership::try_acquire(&stack.store, "restore-probe", "test", Duration::from_secs(3))
        .await?
        .context("the probe work is free")?;
    assert_eq!(probe.token().epoch, 0);
    let refused = stack
        .agent(&region)
        .await?
        .apply_tile(probe_apply(&tile.id, &entry, probe.token().agent_token()))
        .await
        .err()
        .context("the agent accepted a token older than one it saw")?;
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains("stale fencing token"),
        "{}",
        refused.message()
    );
    probe.release().await?;

    // The operator bumps the epoch (the CLI, mutual TLS to etcd).
    let tls = stack.etcd.tls_files().context("etcd serves TLS")?.clone();
    let cli = bin_path("tilewave")?;
    let args: Vec<String> = vec![
        "admin".into(),
        "bump-epoch".into(),
        "--etcd".into(),
        stack.etcd.endpoints().join(","),
        "--prefix".into(),
        PREFIX.into(),
        "--etcd-cacert".into(),
        tls.ca.display().to_string(),
        "--etcd-cert".into(),
        tls.cert.display().to_string(),
        "--etcd-key".into(),
        tls.key.display().to_string(),
        "--actor".into(),
        "ops".into(),
        "-o".into(),
        "json".into(),
    ];
    let out =
        tokio::task::spawn_blocking(move || std::process::Command::new(cli).args(args).output()).await??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bump-epoch failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: serde_json::Value = serde_json::from_str(&stdout)?;
    assert_eq!(
        (printed["old_epoch"].as_i64(), printed["new_epoch"].as_i64()),
        (Some(0), Some(1))
    );
    assert_eq!(stack.store.epoch().await?, 1);

    // The services start again against the restored cluster and the
    // roll-out, back where the backup left it (wave 1 applied), completes.
    stack.rollouts[0].restart().await?;
    let r = stack.get(&id).await?;
    assert!(
        r.steps
            .iter()
            .filter(|s| s.wave == 2)
            .all(|s| s.state == StepState::Pending as i32),
        "the backup's roll-out: {:?}",
        r.steps
    );
    stack.set_rate(600.0).await?;
    let done = stack.wait_state(&id, RolloutState::Succeeded).await?;
    assert!(
        done.steps.iter().all(|s| s.state == StepState::Verified as i32),
        "{:?}",
        done.steps
    );
    // No agent refused the owners after the restore. (Without the epoch
    // they are refused until etcd's revision passes the newest token an
    // agent saw: a roll-out stalled for as long as the cluster took to make
    // the writes between the backup and the restore.)
    let log = std::fs::read_to_string(stack.rollouts[0].log_path())?;
    assert!(
        !log.contains("(agent of "),
        "an agent refused the roll-out's owner after the restore; see {}",
        stack.rollouts[0].log_path().display()
    );
    for region in REGIONS {
        let e = stack.entry(region, &tile.id).await?.context("entry")?;
        assert_eq!(
            (e.revision, e.apply_count),
            (tile.revision, 1),
            "{region}: applied once, at the tile's revision: {e:?}"
        );
        if !wave1.contains(&region.to_string()) {
            assert!(
                e.fencing_token > 1 << 40,
                "{region}: applied after the restore under epoch 1: {e:?}"
            );
        }
    }
    Ok(())
}
