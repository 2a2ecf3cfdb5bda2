//! `tilewave-chaos`: the chaos test of the compose deployment (issue 17),
//! run by `deploy/chaos-test` against a stack it brought up (with the
//! `test` profile and `deploy/compose.chaos.yml`: a fast virtual clock).
//!
//! While 20 roll-outs run (18 launches, one of them rolled back, and a
//! maintenance revision after its launch), a credential rotation and the escalation of an agent outage,
//! it kills a random service container every few seconds (SIGKILL, started
//! again shortly after), stops and restarts one etcd member, and cuts one
//! region agent off the network for longer than the rollout service
//! retries an unreachable agent. Then it checks, and prints the counts of:
//! every roll-out in the right terminal state; every region holding exactly
//! the revision it should, asked of the agents; no agent accepting an
//! apply with an older fencing token than one it had accepted (from the
//! agents' logs); one audit record per step transition (started, applied
//! per region, ended); the rotation promoted with zero authentication
//! failures at the partner; the outage's step retried as transient and
//! then failed with one incident for it; and no page delivered twice for
//! one idempotency key.

mod checks;
mod conn;
mod docker;
mod journey;
mod restore;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use jiff::SignedDuration;
use rand::Rng as _;
use tilewave_proto::rollout::v1::{RolloutState, StepState};

use crate::conn::{Replicas, tls_of};
use crate::docker::Project;
use crate::journey::{Cluster, LUMEN, RIVERFLOW, time_of};

/// The agents of the compose file: (compose service, region, host port).
pub const AGENTS: [(&str, &str, u16); 6] = [
    ("agent-aws-ap-northeast-1", "aws:ap-northeast-1", 17501),
    ("agent-azure-eastus2euap", "azure:eastus2euap", 17502),
    ("agent-gcp-asia-northeast1", "gcp:asia-northeast1", 17503),
    ("agent-aws-ap-northeast-2", "aws:ap-northeast-2", 17504),
    ("agent-azure-australiacentral", "azure:australiacentral", 17505),
    ("agent-gcp-asia-south1", "gcp:asia-south1", 17506),
];
/// The agent cut off the network (not a canary).
pub const OUTAGE: (&str, &str) = ("agent-aws-ap-northeast-2", "aws:ap-northeast-2");
/// The services whose containers are killed at random (the outage agent
/// is left to its own fault).
const KILLABLE: [&str; 13] = [
    "registry-1",
    "registry-2",
    "rollout-1",
    "rollout-2",
    "credentials-1",
    "credentials-2",
    "escalation-1",
    "escalation-2",
    "agent-aws-ap-northeast-1",
    "agent-azure-eastus2euap",
    "agent-gcp-asia-northeast1",
    "agent-azure-australiacentral",
    "agent-gcp-asia-south1",
];

/// The chaos test of the compose cluster (see the crate docs).
#[derive(Debug, Parser)]
#[command(
    name = "tilewave-chaos",
    about = "The chaos test of the compose deployment (run by deploy/chaos-test)"
)]
struct Args {
    /// The compose project under test.
    #[arg(long, default_value = "tilewave-chaos")]
    project: String,
    /// A directory with ca.crt, ops.crt/.key (release engineer) and
    /// agent.crt/.key (service role, to ask the agents).
    #[arg(long)]
    certs: PathBuf,
    /// Seconds between container kills (each one +-1 s).
    #[arg(long, default_value_t = 3)]
    kill_every: u64,
    /// The virtual clock's rate while the roll-outs run.
    #[arg(long, default_value_t = 600.0)]
    rate: f64,
    /// How many launches that stay (the outage's among them); with the
    /// rolled-back launch and the maintenance tile's launch and maintenance
    /// roll-out, 20 roll-outs by default.
    #[arg(long, default_value_t = 17)]
    launches: usize,
    /// What to do: the chaos run, or a phase of deploy/restore-test
    /// (restore-start prints the roll-out id the later phases take).
    #[arg(long, value_enum, default_value_t = Phase::Chaos)]
    phase: Phase,
    /// The roll-out of restore-advance and restore-check.
    #[arg(long, required_if_eq_any = [("phase", "restore-advance"), ("phase", "restore-check")])]
    rollout: Option<String>,
}

/// The chaos run or a phase of the restore test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Phase {
    Chaos,
    RestoreStart,
    RestoreAdvance,
    RestoreCheck,
}

/// What the fault loop did.
#[derive(Debug, Default)]
pub struct Faults {
    /// Kills per service.
    pub kills: BTreeMap<String, u32>,
    /// etcd members stopped and started again.
    pub etcd_restarts: u32,
}

#[tokio::main]
async fn main() -> anyhow::Result<std::process::ExitCode> {
    let args = Args::parse();
    let started = tokio::time::Instant::now();
    match run(&args).await {
        Ok(report) => {
            println!("{report}");
            println!("chaos: PASSED in {:.0?}", started.elapsed());
            Ok(std::process::ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("chaos: FAILED after {:.0?}: {e:#}", started.elapsed());
            Ok(std::process::ExitCode::FAILURE)
        }
    }
}

async fn run(args: &Args) -> anyhow::Result<String> {
    let ops = tls_of(&args.certs, "ops")?;
    let service = tls_of(&args.certs, "agent")?;
    let cluster = Cluster {
        registry: Replicas::new("registry", &[17401, 17411], &ops)?,
        rollout: Replicas::new("rollout", &[17402, 17412], &ops)?,
        credentials: Replicas::new("credentials", &[17403, 17413], &ops)?,
        escalation: Replicas::new("escalation", &[17404, 17414], &ops)?,
    };
    let rollout = args.rollout.as_deref().unwrap_or_default();
    match args.phase {
        Phase::Chaos => {}
        Phase::RestoreStart => {
            return restore::start(&cluster, args.rate)
                .await
                .map(|id| format!("restore-rollout: {id}"));
        }
        Phase::RestoreAdvance => return restore::advance(&cluster, rollout).await.map(|()| String::new()),
        Phase::RestoreCheck => return restore::check(&cluster, rollout, args.rate, &service).await,
    }
    let project = Project {
        name: args.project.clone(),
    };
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(
            args.certs.join("ca.crt"),
        )?)?)
        .timeout(Duration::from_secs(10))
        .build()?;

    // Set-up, on a stopped clock: the paging policy, the tiles.
    cluster.set_rate(0.0).await?;
    cluster.page_to("http://webhook-receiver:8080/ops").await?;
    let t0 = cluster.now().await?;
    let ga = t0 + SignedDuration::from_hours(24 * 8);
    let maint_ga = t0 + SignedDuration::from_hours(24 * 7 + 2);
    let maint = "chaos-maint".to_owned();
    let rolled_back = "chaos-rollback".to_owned();
    let outage_tile = "chaos-outage".to_owned();
    let launches: Vec<String> = (1..=args.launches.saturating_sub(1))
        .map(|i| format!("chaos-{i:02}"))
        .collect();
    cluster.scheduled_tile(LUMEN, &maint, maint_ga).await?;
    for id in launches.iter().chain([&rolled_back, &outage_tile]) {
        cluster.scheduled_tile(RIVERFLOW, id, ga).await?;
    }
    // The rotated tile's partner API is the double (a tile's URL must be
    // https off loopback).
    let mut doc: serde_json::Value = serde_json::from_str(RIVERFLOW)?;
    doc["base_url"] = serde_json::json!("https://partner-double:8443");
    let rotated = "chaos-rotated".to_owned();
    cluster.scheduled_tile(&doc.to_string(), &rotated, ga).await?;
    println!("chaos: set up {} tiles at {t0}", launches.len() + 4);

    // The faults run from here until every roll-out ended.
    let stop = Arc::new(AtomicBool::new(false));
    let faults = tokio::spawn(fault_loop(project.clone(), Arc::clone(&stop), args.kill_every));
    cluster.set_rate(args.rate).await?;
    let now = cluster.now().await?;
    let others: Vec<String> = AGENTS
        .iter()
        .map(|a| a.1.to_owned())
        .filter(|r| *r != OUTAGE.1)
        .collect();
    let spec = |tile: &str, regions: Vec<String>| {
        journey::spec(tile, regions, now, SignedDuration::from_hours(2), 2)
    };
    // The rotation, against the partner double, while the roll-outs start.
    let issued =
        crate::conn::json(http.post("https://127.0.0.1:18443/_double/credentials?user=chaos")).await?;
    let password = issued["password"]
        .as_str()
        .context("the double issued no password")?;
    cluster.rotate(&rotated, "chaos", password).await?;
    let azure = vec![
        "azure:eastus2euap".to_owned(),
        "azure:australiacentral".to_owned(),
    ];
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    let clock = tokio::time::Instant::now();
    let at = move || format!("[{:>3}s]", clock.elapsed().as_secs());
    ids.insert(
        maint.clone(),
        cluster.start(spec(&maint, azure.clone())).await?.id,
    );
    for id in launches.iter().chain([&rolled_back]) {
        ids.insert(id.clone(), cluster.start(spec(id, others.clone())).await?.id);
    }
    println!(
        "chaos: {} roll-outs started; faults every {} s",
        ids.len(),
        args.kill_every
    );

    // The rollback, once a region applied.
    let rb = ids[&rolled_back].clone();
    cluster
        .wait_rollout(&rb, "a region applied", Duration::from_secs(180), |r| {
            r.steps.iter().any(|s| s.applied_at.is_some())
        })
        .await?;
    cluster.rollback(&rb).await?;
    println!("chaos: {} {rb} rolling back", at());

    // The rotation ends before the outage (it covers every region).
    let rotation = cluster.wait_rotation(&rotated, Duration::from_secs(240)).await?;
    println!(
        "chaos: {} the rotation of {rotated} ended: {}",
        at(),
        rotation.progress
    );

    // The outage: the agent cut off, the roll-out that needs it started.
    project.disconnect(OUTAGE.0).await?;
    let cut_at = tokio::time::Instant::now();
    let mut all = others.clone();
    all.push(OUTAGE.1.to_owned());
    let outage_id = cluster.start(spec(&outage_tile, all)).await?.id;
    println!("chaos: {} {} cut off; {outage_id} started", at(), OUTAGE.0);
    ids.insert(outage_tile.clone(), outage_id.clone());
    // It fails once the retries are spent; retried by hand while the agent
    // is still cut off, it fails again, and the repeat folds into the same
    // incident.
    let failed_in = |attempt: i32| {
        move |r: &tilewave_proto::rollout::v1::Rollout| {
            r.steps
                .iter()
                .any(|s| s.region == OUTAGE.1 && s.state == StepState::Failed as i32 && s.attempts >= attempt)
        }
    };
    let mut failed = cluster
        .wait_rollout(
            &outage_id,
            "the outage's step failed",
            Duration::from_secs(300),
            failed_in(1),
        )
        .await;
    if failed.is_ok() {
        println!(
            "chaos: {} {outage_id} failed in {}; retried while still cut off",
            at(),
            OUTAGE.1
        );
        cluster.retry_region(&outage_id, OUTAGE.1).await?;
        failed = cluster
            .wait_rollout(
                &outage_id,
                "the outage's step failed again",
                Duration::from_secs(300),
                failed_in(2),
            )
            .await;
    }
    let reconnect = project.connect(OUTAGE.0).await;
    let failed = failed?;
    reconnect?;
    let outage_secs = cut_at.elapsed();
    let failed_step = failed
        .steps
        .iter()
        .find(|s| s.region == OUTAGE.1)
        .cloned()
        .context("the outage region's step")?;
    println!(
        "chaos: {} {outage_id} failed in {} after {:.0?}: {}",
        at(),
        OUTAGE.1,
        outage_secs,
        failed_step.last_error
    );
    wait_healthy(&project, OUTAGE.0, Duration::from_secs(120)).await?;
    cluster.retry_region(&outage_id, OUTAGE.1).await?;
    println!("chaos: {} {} back; {outage_id} retried there", at(), OUTAGE.0);

    // Every launch ends; then the maintenance revision of the GA tile.
    let mut ends = BTreeMap::new();
    for (tile, id) in &ids {
        let want = if *tile == rolled_back {
            RolloutState::RolledBack
        } else {
            RolloutState::Succeeded
        };
        let r = cluster
            .wait_rollout(id, want.as_str_name(), Duration::from_secs(400), |r| {
                let failed_pause = r.state == RolloutState::Paused as i32
                    && r.pause_cause == tilewave_proto::rollout::v1::PauseCause::Failure as i32;
                r.state == want as i32
                    || failed_pause
                    || [RolloutState::Aborted as i32, RolloutState::Failed as i32].contains(&r.state)
            })
            .await?;
        anyhow::ensure!(
            r.state == want as i32,
            "{id} ended {} ({}), not {}",
            RolloutState::try_from(r.state).map_or("?", |s| s.as_str_name()),
            r.paused_reason,
            want.as_str_name()
        );
        ends.insert(id.clone(), want);
    }
    println!("chaos: {} every launch ended as it should", at());
    let now = cluster.now().await?;
    cluster
        .advance(maint_ga.duration_since(now) + SignedDuration::from_mins(1))
        .await?;
    cluster.wait_ga(&maint, Duration::from_secs(120)).await?;
    cluster.maintenance_revision(&maint).await?;
    let gcp = vec!["gcp:asia-northeast1".to_owned(), "gcp:asia-south1".to_owned()];
    let maint_id = cluster.start(spec(&maint, gcp)).await?.id;
    cluster
        .wait_rollout(&maint_id, "SUCCEEDED", Duration::from_secs(300), |r| {
            r.state == RolloutState::Succeeded as i32
        })
        .await?;
    ends.insert(maint_id.clone(), RolloutState::Succeeded);
    println!("chaos: {} the maintenance roll-out {maint_id} succeeded", at());

    stop.store(true, Ordering::SeqCst);
    let faults = faults.await.context("the fault loop")??;
    for (service, _, _) in AGENTS {
        wait_healthy(&project, service, Duration::from_secs(120)).await?;
    }

    let expected = checks::Expected {
        launches: launches.iter().chain([&outage_tile]).cloned().collect(),
        outage_tile: outage_tile.clone(),
        maint: maint.clone(),
        rolled_back: rolled_back.clone(),
        others,
    };
    let report = checks::check_all(checks::Inputs {
        cluster: &cluster,
        project: &project,
        http: &http,
        service_tls: &service,
        ops_dir: &args.certs,
        expected: &expected,
        ends: &ends,
        rotation: &rotation,
        failed_step: &failed_step,
        outage: outage_secs,
        faults: &faults,
        started_at: time_of(None),
    })
    .await?;
    Ok(report)
}

/// Polls docker's health of a service's container until "healthy".
pub async fn wait_healthy(project: &Project, service: &str, timeout: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let h = project.health(service).await.unwrap_or_default();
        if h == "healthy" {
            return Ok(());
        }
        if h == "exited" {
            project.start(service).await?;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{service} is not healthy within {timeout:?} ({h})"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Kills a random killable container every `every` +- 1 s and starts it
/// again 1 to 2 s later; stops etcd2 gracefully once and starts it 10 s
/// later; until `stop`. Leaves everything started.
async fn fault_loop(project: Project, stop: Arc<AtomicBool>, every: u64) -> anyhow::Result<Faults> {
    let mut faults = Faults::default();
    let started = tokio::time::Instant::now();
    let mut etcd_stopped_at = None;
    while !stop.load(Ordering::SeqCst) {
        let (pause, victim, back_after) = {
            let mut rng = rand::rng();
            let pause =
                Duration::from_millis(rng.random_range(every.saturating_sub(1) * 1000..=(every + 1) * 1000));
            let victim = KILLABLE[rng.random_range(0..KILLABLE.len())];
            (
                pause,
                victim,
                Duration::from_millis(rng.random_range(1000..=2000)),
            )
        };
        tokio::time::sleep(pause).await;
        if stop.load(Ordering::SeqCst) {
            break;
        }
        if etcd_stopped_at.is_none()
            && faults.etcd_restarts == 0
            && started.elapsed() > Duration::from_secs(10)
        {
            println!("chaos: stopping etcd2");
            project.stop("etcd2", 5).await?;
            etcd_stopped_at = Some(tokio::time::Instant::now());
        }
        if let Some(at) = etcd_stopped_at
            && at.elapsed() > Duration::from_secs(10)
        {
            println!("chaos: starting etcd2 again");
            project.start("etcd2").await?;
            faults.etcd_restarts += 1;
            etcd_stopped_at = None;
        }
        project.kill(victim).await?;
        *faults.kills.entry(victim.to_owned()).or_default() += 1;
        tokio::time::sleep(back_after).await;
        project.start(victim).await?;
    }
    if etcd_stopped_at.is_some() {
        project.start("etcd2").await?;
        faults.etcd_restarts += 1;
    }
    for service in KILLABLE {
        project.start(service).await?;
    }
    Ok(faults)
}
