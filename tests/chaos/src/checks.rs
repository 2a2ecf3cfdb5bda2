//! The invariants after the chaos, each with the counts it printed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use tilewave_proto::agent::v1::ListTilesRequest;
use tilewave_proto::agent::v1::agent_service_client::AgentServiceClient;
use tilewave_proto::common::v1::AuditRecord;
use tilewave_proto::credentials::v1::{Rotation, RotationState};
use tilewave_proto::rollout::v1::{RolloutState, RolloutStep};
use tilewave_tls::Tls;

use crate::docker::Project;
use crate::journey::Cluster;
use crate::{AGENTS, Faults, OUTAGE};

/// What the run set out to do.
#[derive(Debug)]
pub struct Expected {
    /// Tiles launched and kept (the outage tile among them).
    pub launches: Vec<String>,
    /// The tile whose roll-out met the outage.
    pub outage_tile: String,
    /// The lumen tile: launched in azure, then its gcp maintenance revision.
    pub maint: String,
    /// The tile whose launch was rolled back.
    pub rolled_back: String,
    /// The regions of the launches but the outage tile's.
    pub others: Vec<String>,
}

/// Everything the checks read.
#[derive(Debug)]
pub struct Inputs<'a> {
    pub cluster: &'a Cluster,
    pub project: &'a Project,
    pub http: &'a reqwest::Client,
    pub service_tls: &'a Tls,
    pub ops_dir: &'a Path,
    pub expected: &'a Expected,
    pub ends: &'a BTreeMap<String, RolloutState>,
    pub rotation: &'a Rotation,
    pub failed_step: &'a RolloutStep,
    pub outage: Duration,
    pub faults: &'a Faults,
    pub started_at: jiff::Timestamp,
}

/// Runs every check; the report, or the first broken invariant.
pub async fn check_all(i: Inputs<'_>) -> anyhow::Result<String> {
    let mut report = vec![format!(
        "faults: {} kills ({}), etcd member restarts {}, agent {} cut off for {:.0?}",
        i.faults.kills.values().sum::<u32>(),
        i.faults
            .kills
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        i.faults.etcd_restarts,
        OUTAGE.1,
        i.outage
    )];

    // 1. Terminal states.
    let mut states = BTreeMap::<&str, usize>::new();
    for (id, want) in i.ends {
        let r = i.cluster.rollout(id).await?;
        anyhow::ensure!(
            r.state == *want as i32,
            "{id} is {:?}, not {}",
            RolloutState::try_from(r.state),
            want.as_str_name()
        );
        *states.entry(want.as_str_name()).or_default() += 1;
    }
    report.push(format!(
        "terminal states: {} roll-outs as expected ({})",
        i.ends.len(),
        states
            .iter()
            .map(|(s, n)| format!("{n} {s}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));

    // 2. What every agent holds, asked of the agents.
    let want = expected_revisions(i.expected);
    let mut held: BTreeMap<(String, String), i64> = BTreeMap::new();
    for (_, region, port) in AGENTS {
        let channel = tilewave_tls::endpoint(&format!("127.0.0.1:{port}"), Some(i.service_tls))?
            .connect()
            .await
            .with_context(|| format!("the agent of {region}"))?;
        let list = AgentServiceClient::new(channel)
            .list_tiles(ListTilesRequest::default())
            .await
            .with_context(|| format!("ListTiles of {region}"))?
            .into_inner();
        for e in list.entries {
            if e.revision > 0 && e.tile_id.starts_with("chaos-") {
                held.insert((region.to_owned(), e.tile_id), e.revision);
            }
        }
    }
    let wrong: Vec<String> = want
        .iter()
        .filter(|(k, v)| held.get(*k) != Some(v))
        .map(|((r, t), v)| {
            format!(
                "{t} in {r}: r{v} wanted, {:?} held",
                held.get(&(r.clone(), t.clone()))
            )
        })
        .chain(
            held.iter()
                .filter(|(k, _)| !want.contains_key(*k))
                .map(|((r, t), v)| format!("{t} in {r}: r{v} held, nothing wanted")),
        )
        .collect();
    anyhow::ensure!(
        wrong.is_empty(),
        "agents hold the wrong revisions: {}",
        wrong.join("; ")
    );
    report.push(format!(
        "agents: {} (region, tile) entries, each at the revision it should be; the rolled-back tile nowhere",
        held.len()
    ));

    // 3. Fencing: per agent and tile, the tokens of accepted applies never
    //    go down (the agents' logs, across their restarts).
    let mut accepted = 0usize;
    for (service, region, _) in AGENTS {
        let log = i.project.logs(service).await?;
        let mut newest: BTreeMap<String, i64> = BTreeMap::new();
        for line in log.lines() {
            if !(line.contains("\"tile applied\"") || line.contains("\"tile removed\"")) {
                continue;
            }
            let (Some(tile), Some(token)) = (field(line, "tile_id"), field(line, "fencing_token")) else {
                continue;
            };
            let token: i64 = token.parse().unwrap_or(0);
            accepted += 1;
            let seen = newest.entry(tile.to_owned()).or_insert(token);
            anyhow::ensure!(
                token >= *seen,
                "the agent of {region} accepted {tile} with token {token} after {seen}"
            );
            *seen = token;
        }
    }
    anyhow::ensure!(accepted > 0, "no accepted apply found in the agents' logs");
    report.push(format!(
        "fencing: {accepted} accepted applies and removals in the agents' logs, none with a token older than one accepted before"
    ));

    // 4. The audit log: one record per step transition of every roll-out.
    let records = audit_records(i.ops_dir).await?;
    let mut per_rollout: BTreeMap<&str, Vec<&AuditRecord>> = BTreeMap::new();
    for r in &records {
        if r.object_kind == "rollout" {
            per_rollout.entry(r.object_id.as_str()).or_default().push(r);
        }
    }
    let mut transitions = 0usize;
    for (id, end) in i.ends {
        let recs = per_rollout.get(id.as_str()).cloned().unwrap_or_default();
        let count = |action: &str| recs.iter().filter(|r| r.action == action).count();
        anyhow::ensure!(
            count("Started") == 1,
            "{id}: {} Started records",
            count("Started")
        );
        let ended = match end {
            RolloutState::Succeeded => count("Succeeded"),
            _ => recs
                .iter()
                .filter(|r| r.action == "RolledBack" && r.summary.ends_with("rolled back"))
                .count(),
        };
        anyhow::ensure!(ended == 1, "{id}: {ended} records of its end");
        let r = i.cluster.rollout(id).await?;
        for step in r.steps.iter().filter(|s| s.applied_at.is_some()) {
            let applied = recs
                .iter()
                .filter(|a| {
                    a.summary
                        .split_once(" applied in ")
                        .and_then(|(_, rest)| rest.split(';').next())
                        .is_some_and(|regions| regions.split(", ").any(|x| x.trim() == step.region))
                })
                .count();
            anyhow::ensure!(applied == 1, "{id}: {applied} records of {} applied", step.region);
            transitions += 1;
        }
        transitions += 2;
    }
    report.push(format!(
        "audit: {} records read; {transitions} step transitions (started, each region applied, ended) with exactly one record each",
        records.len()
    ));

    // 5. The rotation: promoted everywhere, no authentication failure at
    //    the partner.
    anyhow::ensure!(
        [RotationState::Promoted as i32, RotationState::Completed as i32].contains(&i.rotation.state),
        "the rotation ended {:?}: {}",
        RotationState::try_from(i.rotation.state),
        i.rotation.progress
    );
    let partner = crate::conn::json(i.http.get("https://127.0.0.1:18443/_double/summary")).await?;
    let failures = partner["auth_failures"].as_u64().unwrap_or(u64::MAX);
    anyhow::ensure!(failures == 0, "the partner refused {failures} calls: {partner}");
    report.push(format!(
        "rotation: promoted, {} of {} regions verified; the partner answered {} calls and refused 0",
        i.rotation.regions_verified, i.rotation.regions_total, partner["requests"]
    ));

    // 6. The outage: retried as transient, then failed, one incident.
    anyhow::ensure!(
        i.failed_step.last_error.contains("agent unreachable") && i.failed_step.unreachable_attempts >= 1,
        "the outage's step did not fail as an unreachable agent: {:?}",
        i.failed_step
    );
    let incidents = i.cluster.incidents().await?;
    let outage_incidents: Vec<_> = incidents
        .iter()
        .filter(|n| n.tile_id == i.expected.outage_tile && n.regions.iter().any(|r| r == OUTAGE.1))
        .collect();
    anyhow::ensure!(
        outage_incidents.len() == 1,
        "the outage opened {} incidents: {:?}",
        outage_incidents.len(),
        outage_incidents.iter().map(|n| &n.id).collect::<Vec<_>>()
    );
    anyhow::ensure!(
        outage_incidents[0].count >= 2,
        "the outage's two failures did not fold into one incident: {:?}",
        outage_incidents[0]
    );
    let mut keys: BTreeMap<&str, usize> = BTreeMap::new();
    for n in incidents
        .iter()
        .filter(|n| !n.dedup_key.is_empty() && n.linked_to.is_empty())
    {
        *keys.entry(n.dedup_key.as_str()).or_default() += 1;
    }
    let doubled: Vec<_> = keys.iter().filter(|(_, n)| **n > 1).collect();
    anyhow::ensure!(
        doubled.is_empty(),
        "incidents opened twice for one dedup key: {doubled:?}"
    );
    report.push(format!(
        "outage: the step was retried {} times as unreachable, then failed, twice (retried by hand in between), over {:.0?}; {} incident for it ({}, key {}, {} failures folded in); {} incidents in all, one per dedup key",
        i.failed_step.unreachable_attempts,
        i.outage,
        outage_incidents.len(),
        outage_incidents[0].id,
        outage_incidents[0].dedup_key,
        outage_incidents[0].count,
        incidents.len()
    ));

    // 7. Pages: none delivered twice for one idempotency key.
    let pages = crate::conn::json(i.http.get("http://127.0.0.1:18081/summary")).await?;
    let mut delivered_keys = 0usize;
    if let Some(keys) = pages["keys"].as_object() {
        for (key, v) in keys {
            let delivered = v["delivered"].as_u64().unwrap_or(0);
            anyhow::ensure!(delivered == 1, "the page {key} was delivered {delivered} times");
            delivered_keys += 1;
        }
    }
    anyhow::ensure!(delivered_keys >= 1, "no page reached the receiver: {pages}");
    report.push(format!(
        "pages: {} requests, {delivered_keys} idempotency keys each delivered once ({} repeated sends answered as duplicates)",
        pages["requests"], pages["duplicates"]
    ));
    let _ = i.started_at;
    Ok(report
        .iter()
        .map(|l| format!("chaos: {l}"))
        .collect::<Vec<_>>()
        .join("\n"))
}

/// (region, tile) -> the revision it should hold.
fn expected_revisions(e: &Expected) -> BTreeMap<(String, String), i64> {
    let mut want = BTreeMap::new();
    for tile in &e.launches {
        let regions: Vec<String> = if *tile == e.outage_tile {
            AGENTS.iter().map(|a| a.1.to_owned()).collect()
        } else {
            e.others.clone()
        };
        for r in regions {
            want.insert((r, tile.clone()), 1);
        }
    }
    for r in ["azure:eastus2euap", "azure:australiacentral"] {
        want.insert((r.to_owned(), e.maint.clone()), 1);
    }
    for r in ["gcp:asia-northeast1", "gcp:asia-south1"] {
        want.insert((r.to_owned(), e.maint.clone()), 2);
    }
    let _: &BTreeSet<String> = &BTreeSet::new();
    let _ = &e.rolled_back;
    want
}

/// A JSON field's value in a log line: `"name":"v"` or `"name":v`.
fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let pat = format!("\"{name}\":");
    let at = line.find(&pat)? + pat.len();
    let rest = &line[at..];
    if let Some(s) = rest.strip_prefix('"') {
        s.split('"').next()
    } else {
        rest.split([',', '}']).next().map(str::trim)
    }
}

/// Every audit record, read from etcd (member 1, published on the host)
/// with the operator's certificate.
async fn audit_records(dir: &Path) -> anyhow::Result<Vec<AuditRecord>> {
    use etcd_client::{Certificate, Client, ConnectOptions, GetOptions, Identity, TlsOptions};
    let read = |f: &str| std::fs::read(dir.join(f)).with_context(|| format!("reading {f}"));
    let tls = TlsOptions::new()
        .ca_certificate(Certificate::from_pem(read("ca.crt")?))
        .identity(Identity::from_pem(read("ops.crt")?, read("ops.key")?));
    let mut client = Client::connect(
        ["https://127.0.0.1:12379"],
        Some(
            ConnectOptions::new()
                .with_tls(tls)
                .with_timeout(Duration::from_secs(10)),
        ),
    )
    .await
    .context("connecting to etcd")?;
    // The compose file's services use the default prefix.
    let prefix = tilewave_store::Keys::new(tilewave_store::keys::DEFAULT_PREFIX)?.audit_prefix();
    let resp = client
        .get(prefix, Some(GetOptions::new().with_prefix()))
        .await
        .context("reading the audit log")?;
    resp.kvs()
        .iter()
        .map(|kv| <AuditRecord as prost::Message>::decode(kv.value()).context("an audit record"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn fields_of_a_log_line() {
        let line =
            r#"{"message":"tile applied","revision":1,"span":{"tile_id":"chaos-01","fencing_token":123}}"#;
        assert_eq!(field(line, "tile_id"), Some("chaos-01"));
        assert_eq!(field(line, "fencing_token"), Some("123"));
        assert_eq!(field(line, "nothing"), None);
    }
}
