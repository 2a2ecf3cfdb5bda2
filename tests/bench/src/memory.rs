//! Measure 6, memory (issue 18): the resident memory (`VmRSS` of
//! `/proc/<pid>/status`) of each service process, idle and with many
//! active roll-outs (1,000 of 20 regions by default).
//!
//! Idle: a fresh stack (etcd, the registry, the rollout service, one agent
//! per region, and the credentials and escalation services) with nothing
//! in it, sampled every 500 ms for `--settle-secs`; the largest sample of
//! each process counts. Loaded: then `--rollouts` tiles are made
//! SCHEDULED and a roll-out of each started with a one-hour bake (the
//! virtual clock runs at rate 1, so none finishes): once every one is
//! active and the stack has settled, sampled the same way. For the agents
//! the largest of all agents counts (each serves one region; every
//! roll-out applies to it). Targets: under 30 MB idle, under 150 MB
//! loaded (MiB here). The 10,000 tiles of the loaded case are the
//! scale measure's.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{StreamExt as _, TryStreamExt as _};
use jiff::SignedDuration;
use tilewave_proto::rollout::v1::{RolloutSpec, RolloutState};
use tilewave_testkit::{Outcome, ServiceProcess, ServiceSpec, bin_path, eventually_every};
use tokio::time::Instant;

use crate::report::{Measure, Report, Target};
use crate::stack::{self, Stack, dur, rss_mib, ts};

/// Options of `tilewave-bench memory`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// How many runs (a fresh stack each).
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
    /// Active roll-outs in the loaded case.
    #[arg(long, default_value_t = 1000)]
    pub rollouts: usize,
    /// Regions of each roll-out; one agent process each.
    #[arg(long, default_value_t = 20)]
    pub regions: usize,
    /// How long each case is sampled, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub settle_secs: f64,
}

impl Args {
    /// Tiny sizes for the smoke run.
    pub fn smoke() -> Self {
        Self {
            runs: 1,
            rollouts: 5,
            regions: 3,
            settle_secs: 1.0,
        }
    }
}

/// Idle target, MiB.
const IDLE_TARGET: f64 = 30.0;
/// Loaded target, MiB.
const LOADED_TARGET: f64 = 150.0;

/// Runs the measure and adds it to `report`.
pub async fn run(args: &Args, report: &mut Report) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.runs >= 1 && args.rollouts >= 1,
        "--runs and --rollouts must be at least 1"
    );
    anyhow::ensure!(
        (1..=70).contains(&args.regions),
        "--regions must be 1 to 70, not {}",
        args.regions
    );
    anyhow::ensure!(args.settle_secs > 0.0, "--settle-secs must be positive");
    let regions = stack::regions(args.regions);
    let settle = Duration::from_secs_f64(args.settle_secs);
    // figures[(service, case)] = per-run MiB.
    let mut figures: BTreeMap<(String, &str), Vec<f64>> = BTreeMap::new();
    for run in 0..args.runs {
        let stack = Box::pin(Stack::start(&regions, true)).await?;
        let others = Box::pin(start_others(&stack)).await?;
        let idle = sample(&stack, &others, settle).await?;
        for (service, mib) in &idle {
            figures.entry((service.clone(), "idle")).or_default().push(*mib);
        }
        let ids: Vec<String> = (0..args.rollouts).map(|i| format!("mem{run}-{i}")).collect();
        let tiles = Box::pin(stack.scheduled_tiles(&ids, 16)).await?;
        let now = stack.now();
        let stack_ref = &stack;
        let specs = tiles.iter().map(|t| RolloutSpec {
            tile_id: t.id.clone(),
            regions: regions.clone(),
            apply_time: Some(dur(SignedDuration::from_secs(1))),
            bake: Some(dur(SignedDuration::from_hours(1))),
            concurrency: i32::try_from(regions.len()).unwrap_or(i32::MAX),
            wave_growth: 0,
            earliest_start: Some(ts(now)),
            ..Default::default()
        });
        let started: Vec<_> = futures::stream::iter(
            specs.map(|s| async move { stack_ref.start_rollout_retrying(s).await.map(|(r, _)| r) }),
        )
        .buffer_unordered(8)
        .try_collect()
        .await?;
        let active = stack.active_rollouts().await?;
        anyhow::ensure!(
            usize::try_from(active).unwrap_or(0) == started.len(),
            "{active} roll-outs active of {} started; {}",
            started.len(),
            stack::logs_of(stack.dir.path())
        );
        // Every roll-out running (its first wave applying or baking).
        let deadline = Instant::now() + Duration::from_secs(600);
        for r in &started {
            let left = deadline.saturating_duration_since(Instant::now());
            let what = format!("an applied region of roll-out {} (10 min for all)", r.id);
            eventually_every(&what, left, Duration::from_millis(200), || async {
                let got = match stack.get(&r.id).await {
                    Ok(got) => got,
                    Err(e) => return Outcome::Abort(format!("{e:#}")),
                };
                let running = got.state == RolloutState::Running as i32;
                if running && got.steps.iter().any(|s| s.applied_at.is_some()) {
                    Outcome::Done(())
                } else if running || got.state == RolloutState::Pending as i32 {
                    Outcome::Retry(format!("steps: {}", stack::step_summary(&got)))
                } else {
                    Outcome::Abort(format!(
                        "roll-out {} is {:?} (steps: {})",
                        r.id,
                        RolloutState::try_from(got.state).map_or("?", |s| s.as_str_name()),
                        stack::step_summary(&got)
                    ))
                }
            })
            .await?;
        }
        let loaded = sample(&stack, &others, settle).await?;
        for (service, mib) in &loaded {
            figures.entry((service.clone(), "loaded")).or_default().push(*mib);
        }
        println!(
            "memory run {run}: idle {idle:.1?} MiB; with {} active roll-outs {loaded:.1?} MiB",
            started.len()
        );
    }
    let mut m = Measure::new("memory");
    for ((service, case), values) in &figures {
        let target = match (service.as_str(), *case) {
            ("etcd", _) => None,
            (_, "idle") => Some(Target::AtMost(IDLE_TARGET)),
            ("credentials" | "escalation", _) => None,
            _ => Some(Target::AtMost(LOADED_TARGET)),
        };
        m.figure(&format!("{service} {case}"), "MiB", values, target)?;
    }
    report.add(m.details(serde_json::json!({
        "rollouts": args.rollouts,
        "regions": args.regions,
        "agents": args.regions,
        "settle_secs": args.settle_secs,
    })));
    Ok(())
}

/// The credentials and escalation services on the stack's etcd, each with
/// a key-encryption key of its own.
async fn start_others(stack: &Stack) -> anyhow::Result<Vec<(String, ServiceProcess)>> {
    let endpoints = stack.etcd.endpoints().join(",");
    let mut out = Vec::new();
    for (name, bin, health) in [
        (
            "credentials",
            "tilewave-credentials",
            "tilewave.credentials.v1.CredentialsService",
        ),
        (
            "escalation",
            "tilewave-escalation",
            "tilewave.escalation.v1.EscalationService",
        ),
    ] {
        let kek = stack.dir.path().join(format!("{name}.kek"));
        std::fs::write(&kek, &*tilewave_secrets::Kek::generate("k1")?.to_text())?;
        let spec = ServiceSpec::new(name, bin_path(bin)?)
            .with_args([
                "--etcd",
                &endpoints,
                "--prefix",
                stack::PREFIX,
                "--kek-file",
                &kek.to_string_lossy(),
            ])
            .with_health_service(Some(health))
            .with_ready_timeout(Duration::from_secs(120));
        out.push((
            name.to_owned(),
            ServiceProcess::start(spec, stack.dir.path()).await?,
        ));
    }
    Ok(out)
}

/// The largest resident memory of each service over `settle`, sampled
/// every 500 ms (agents: the largest of them).
async fn sample(
    stack: &Stack,
    others: &[(String, ServiceProcess)],
    settle: Duration,
) -> anyhow::Result<BTreeMap<String, f64>> {
    let mut out: BTreeMap<String, f64> = BTreeMap::new();
    let end = Instant::now() + settle;
    loop {
        let mut procs: Vec<(&str, Option<u32>)> = vec![
            ("registry", stack.registry.pid()),
            ("rollout", stack.rollout.as_ref().and_then(ServiceProcess::pid)),
            ("etcd", stack.etcd.member_pid(0)),
        ];
        procs.extend(stack.agents.values().map(|a| ("agent (largest)", a.pid())));
        procs.extend(others.iter().map(|(n, p)| (n.as_str(), p.pid())));
        for (name, pid) in procs {
            let pid = pid.ok_or_else(|| {
                anyhow::anyhow!("{name} is not running; {}", stack::logs_of(stack.dir.path()))
            })?;
            let mib = rss_mib(pid)?;
            let e = out.entry(name.to_owned()).or_insert(0.0);
            *e = e.max(mib);
        }
        if Instant::now() >= end {
            return Ok(out);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
