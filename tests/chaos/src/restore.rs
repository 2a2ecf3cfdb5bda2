//! The phases of `deploy/restore-test`, between which the script takes an
//! etcd snapshot and restores it into fresh volumes: a roll-out started
//! and partly applied before the backup, applied further after it (so the
//! agents have seen newer fencing tokens than the restored etcd hands
//! out), and then, on the restored cluster with the epoch bumped, resumed
//! to SUCCEEDED with every region at its revision as the agents report.

use std::time::Duration;

use anyhow::Context as _;
use jiff::SignedDuration;
use tilewave_proto::agent::v1::ListTilesRequest;
use tilewave_proto::agent::v1::agent_service_client::AgentServiceClient;
use tilewave_proto::rollout::v1::{Rollout, RolloutState};
use tilewave_tls::Tls;

use crate::AGENTS;
use crate::journey::{Cluster, RIVERFLOW};

/// The restored tile.
pub const TILE: &str = "restore-riverflow";

fn applied(r: &Rollout) -> usize {
    r.steps.iter().filter(|s| s.applied_at.is_some()).count()
}

/// Before the backup: the tile, and its launch over the six agents' regions
/// (one region at a time, a bake between), running until one region
/// applied. Prints the roll-out's id.
pub async fn start(cluster: &Cluster, rate: f64) -> anyhow::Result<String> {
    cluster.set_rate(0.0).await?;
    let now = cluster.now().await?;
    cluster
        .scheduled_tile(RIVERFLOW, TILE, now + SignedDuration::from_hours(24 * 8))
        .await?;
    let regions = AGENTS.iter().map(|a| a.1.to_owned()).collect();
    let spec = crate::journey::spec(TILE, regions, now, SignedDuration::from_hours(1), 1);
    let r = cluster.start(spec).await?;
    cluster.set_rate(rate).await?;
    let r = cluster
        .wait_rollout(&r.id, "one region applied", Duration::from_secs(120), |r| {
            applied(r) >= 1
        })
        .await?;
    println!(
        "restore: {} running, {} of {} regions applied at the backup",
        r.id,
        applied(&r),
        r.steps.len()
    );
    Ok(r.id)
}

/// After the backup: the roll-out applies at least one more region, then
/// the clock stops (so the restored cluster resumes where it was).
pub async fn advance(cluster: &Cluster, id: &str) -> anyhow::Result<()> {
    let before = applied(&cluster.rollout(id).await?);
    let r = cluster
        .wait_rollout(id, "one more region applied", Duration::from_secs(120), |r| {
            applied(r) > before
        })
        .await?;
    cluster.set_rate(0.0).await?;
    println!(
        "restore: {} regions applied before the restore (the backup has {before})",
        applied(&r)
    );
    Ok(())
}

/// On the restored cluster: the roll-out resumes to SUCCEEDED and every
/// agent holds revision 1 of the tile, with a token above the epoch's.
pub async fn check(cluster: &Cluster, id: &str, rate: f64, service: &Tls) -> anyhow::Result<String> {
    // The restored clock runs at the backup's rate: the roll-out may
    // already be moving again.
    cluster.set_rate(rate).await?;
    let done = cluster
        .wait_rollout(id, "SUCCEEDED", Duration::from_secs(240), |r| {
            r.state == RolloutState::Succeeded as i32
        })
        .await?;
    let mut tokens = Vec::new();
    for (_, region, port) in AGENTS {
        let channel = tilewave_tls::endpoint(&format!("127.0.0.1:{port}"), Some(service))?
            .connect()
            .await
            .with_context(|| format!("the agent of {region}"))?;
        let list = AgentServiceClient::new(channel)
            .list_tiles(ListTilesRequest::default())
            .await?
            .into_inner();
        let entry = list
            .entries
            .iter()
            .find(|e| e.tile_id == TILE)
            .with_context(|| format!("{TILE} is not live in {region}"))?;
        anyhow::ensure!(entry.revision == 1, "{TILE} in {region}: r{}", entry.revision);
        tokens.push(entry.fencing_token);
    }
    let after_epoch = tokens.iter().filter(|t| **t >= 1 << 40).count();
    anyhow::ensure!(
        after_epoch >= 1,
        "no region was applied under the new epoch: {tokens:?}"
    );
    Ok(format!(
        "restore: {id} resumed on the restored cluster to {} ({} steps), every agent holding r1; {after_epoch} regions applied (or applied again) under the bumped epoch (token >= 2^40)",
        RolloutState::try_from(done.state).map_or("?", |s| s.as_str_name()),
        done.steps.len()
    ))
}
