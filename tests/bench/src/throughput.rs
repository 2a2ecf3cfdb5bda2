//! Measure 2, throughput (issue 18): many roll-outs at once (1,000 of 20
//! regions each by default) on one etcd member and one rollout replica,
//! no bake, agents that answer at once (one agent process per region).
//!
//! The roll-outs are started first, all with the same earliest start an
//! hour of domain time ahead: each is PENDING, owned by the replica and
//! waiting. Once every one has its owner key, the virtual clock is moved
//! forward by that hour, so that all of them run at once. Region-steps
//! per second, from the clock's move until no roll-out is active
//! (`rollout-active/` is empty, or holds only roll-outs that paused on a
//! failed step: counted, their verified regions counted), divided by the
//! raw etcd transaction rate measured right after in the same run: as
//! many concurrent writers as roll-outs, each committing audited
//! transactions of a roll-out decision's size (the roll-out record and
//! one step) one after another through the same store code, for a fixed
//! time. Target: at least 0.5. The starts (StartRollout and the claims)
//! are reported on their own, as roll-outs started per second.
//!
//! Also reported: etcd's transactions and writes (raft proposals) per
//! region-step during the roll-outs (its metrics), and what the rollout
//! service's own etcd operations and served calls cost per region-step
//! (its metrics), largest first: the per-step work that dominates.
//!
//! The tiles are made SCHEDULED (the registry's RPCs, 16 tiles at once)
//! before the rollout service starts, so that its GA scheduler does not
//! re-plan a growing set of scheduled tiles while they are made; their GA
//! dates lie 10 days ahead, never reached.

use std::time::Duration;

use anyhow::Context as _;
use futures::{StreamExt as _, TryStreamExt as _};
use jiff::SignedDuration;
use tilewave_proto::rollout::v1::{Rollout, RolloutSpec, RolloutState, StepState};
use tilewave_store::{Actor, Change, audit};
use tilewave_testkit::{Outcome, eventually_every};
use tokio::time::Instant;

use crate::overhead::{etcd_txns, where_the_time_went};
use crate::report::{Measure, Report, Target};
use crate::stack::{self, Stack, dur, ts};

/// Options of `tilewave-bench throughput`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// How many runs (new tiles and roll-outs each, on the same stack).
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
    /// Roll-outs at once.
    #[arg(long, default_value_t = 1000)]
    pub rollouts: usize,
    /// Regions of each roll-out (of the catalog's 70, canaries first); one
    /// agent process each, shared by every roll-out.
    #[arg(long, default_value_t = 20)]
    pub regions: usize,
    /// StartRollout calls in flight at once (the starts are not part of
    /// the timed run).
    #[arg(long, default_value_t = 32)]
    pub start_concurrency: usize,
    /// How long the raw etcd loop runs, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub raw_secs: f64,
    /// Give up on a run after this many seconds.
    #[arg(long, default_value_t = 3600)]
    pub timeout_secs: u64,
    /// Run the rollout service with its GA scheduler off
    /// (`--ga-scheduler false`), to see what the scheduler costs.
    #[arg(long)]
    pub no_ga_scheduler: bool,
    /// Time the starts too: each roll-out runs as soon as StartRollout
    /// made it, and the run is timed from the first call (the measure as
    /// it was before the roll-outs were started together).
    #[arg(long)]
    pub with_starts: bool,
}

impl Args {
    /// Tiny sizes for the smoke run.
    pub fn smoke() -> Self {
        Self {
            runs: 1,
            rollouts: 5,
            regions: 3,
            start_concurrency: 5,
            raw_secs: 0.5,
            timeout_secs: 120,
            no_ga_scheduler: false,
            with_starts: false,
        }
    }
}

/// The target on region-steps per second / raw etcd transactions per second.
const TARGET: f64 = 0.5;

/// Domain time from the starts to the roll-outs' common earliest start:
/// the clock is moved by it once all of them are owned.
const LEAD: SignedDuration = SignedDuration::from_hours(1);

/// How long the roll-outs may take to be owned after their starts.
const CLAIM_WITHIN: Duration = Duration::from_secs(120);

/// How often the end of a run is looked for.
const POLL: Duration = Duration::from_millis(20);

/// How often the roll-outs stopped on a failed step are listed.
const STUCK_EVERY: Duration = Duration::from_millis(500);

/// How many tiles are made SCHEDULED at once.
const TILE_CONCURRENCY: usize = 16;

/// Runs the measure and adds it to `report`.
pub async fn run(args: &Args, report: &mut Report) -> anyhow::Result<()> {
    anyhow::ensure!(args.runs >= 1, "--runs must be at least 1");
    anyhow::ensure!(args.rollouts >= 1, "--rollouts must be at least 1");
    anyhow::ensure!(
        (1..=70).contains(&args.regions),
        "--regions must be 1 to 70, not {}",
        args.regions
    );
    anyhow::ensure!(args.raw_secs > 0.0, "--raw-secs must be positive");
    let regions = stack::regions(args.regions);
    let mut stack = Box::pin(Stack::start(&regions, false)).await?;
    let mut figures: [Vec<f64>; 8] = Default::default();
    let mut runs = Vec::new();
    for run in 0..args.runs {
        let ids: Vec<String> = (0..args.rollouts).map(|i| format!("tp{run}-{i}")).collect();
        let t = Instant::now();
        let tiles = Box::pin(stack.scheduled_tiles(&ids, TILE_CONCURRENCY)).await?;
        let tiles_secs = t.elapsed().as_secs_f64();
        println!(
            "throughput run {run}: {} tiles SCHEDULED in {tiles_secs:.1} s",
            tiles.len()
        );
        if stack.rollout.is_none() {
            let extra: &[&str] = if args.no_ga_scheduler {
                &["--ga-scheduler", "false"]
            } else {
                &[]
            };
            stack.start_rollout_service_with(extra).await?;
        }
        let start_at = if args.with_starts {
            stack.now()
        } else {
            stack
                .now()
                .checked_add(LEAD)
                .context("the roll-outs' earliest start")?
        };
        // With the starts timed, the counters are taken before them.
        let mut before = if args.with_starts {
            Some(Counters::take(&stack).await?)
        } else {
            None
        };
        let starting = Instant::now();
        let specs = tiles.iter().map(|tile| RolloutSpec {
            tile_id: tile.id.clone(),
            regions: regions.clone(),
            apply_time: Some(dur(SignedDuration::from_secs(1))),
            bake: Some(dur(SignedDuration::ZERO)),
            concurrency: i32::try_from(regions.len()).unwrap_or(i32::MAX),
            wave_growth: 0,
            earliest_start: Some(ts(start_at)),
            ..Default::default()
        });
        let stack_ref = &stack;
        let started: Vec<(Rollout, usize)> =
            futures::stream::iter(specs.map(|s| async move { stack_ref.start_rollout_retrying(s).await }))
                .buffer_unordered(args.start_concurrency.max(1))
                .try_collect()
                .await?;
        let retries: usize = started.iter().map(|(_, n)| n).sum();
        let started: Vec<Rollout> = started.into_iter().map(|(r, _)| r).collect();
        if !args.with_starts {
            wait_owned(&stack, started.len()).await?;
        }
        let all_started = starting.elapsed();
        let starts_per_sec = started.len() as f64 / all_started.as_secs_f64();
        println!(
            "throughput run {run}: {} roll-outs {} in {:.1} s ({starts_per_sec:.0} a second, {} StartRollout calls in flight; {retries} answered UNAVAILABLE and retried)",
            started.len(),
            if args.with_starts {
                "started"
            } else {
                "started and owned"
            },
            all_started.as_secs_f64(),
            args.start_concurrency.max(1),
        );
        let t0 = if before.is_some() {
            starting
        } else {
            before = Some(Counters::take(&stack).await?);
            let t0 = Instant::now();
            stack
                .clock
                .advance(LEAD, &Actor::new("bench"))
                .await
                .context("moving the virtual clock to the roll-outs' earliest start")?;
            t0
        };
        let before = before.context("the counters before the run")?;
        let deadline = Duration::from_secs(args.timeout_secs);
        let mut said = Instant::now();
        // Done when every roll-out that is still active has stopped on a
        // failed step (paused): those are counted, not waited for.
        // The active count (one count-only read) is polled often, so that
        // the end is seen within a few milliseconds; the stopped ones (a
        // ListRollouts) twice a second.
        let mut stuck = Vec::new();
        let mut stuck_checked: Option<Instant> = None;
        let complete = loop {
            let active = stack.active_rollouts().await?;
            if active == 0 {
                break true;
            }
            if stuck_checked.is_none_or(|t| t.elapsed() >= STUCK_EVERY) {
                stuck = stack.stuck_rollouts().await?;
                stuck_checked = Some(Instant::now());
                if usize::try_from(active).unwrap_or(usize::MAX) <= stuck.len() {
                    break true;
                }
            }
            if t0.elapsed() >= deadline {
                println!(
                    "throughput run {run}: {active} of {} roll-outs still active after {deadline:?}: counting the steps verified so far",
                    started.len()
                );
                break false;
            }
            if said.elapsed() >= Duration::from_secs(30) {
                println!(
                    "throughput run {run}: {active} roll-outs active after {:.0} s ({} stopped on a failed step)",
                    t0.elapsed().as_secs_f64(),
                    stuck.len()
                );
                said = Instant::now();
            }
            tokio::time::sleep(POLL).await;
        };
        if let Some(id) = stuck.first() {
            let r = stack.get(id).await?;
            println!(
                "throughput run {run}: {} roll-outs stopped on a failed step (paused), e.g. {id}: {}",
                stuck.len(),
                stack::step_summary(&r)
            );
        }
        let elapsed = t0.elapsed();
        let etcd = stack.etcd_metrics().await?.since(&before.etcd);
        let svc = stack.rollout_metrics().await?.since(&before.svc);
        let cpu_after = stack.cpu()?;
        let cpu: std::collections::BTreeMap<&str, f64> = cpu_after
            .iter()
            .map(|(k, v)| (*k, v - before.cpu.get(k).copied().unwrap_or(0.0)))
            .collect();
        // When complete, every roll-out must have succeeded, every region
        // verified; otherwise the verified regions count.
        let mut steps = 0usize;
        let mut sample = None;
        for r in &started {
            let done = stack.get(&r.id).await?;
            anyhow::ensure!(
                !complete || done.state == RolloutState::Succeeded as i32 || stuck.contains(&done.id),
                "roll-out {} ended {} (steps: {}); {}",
                done.id,
                RolloutState::try_from(done.state).map_or("?", |s| s.as_str_name()),
                stack::step_summary(&done),
                stack::logs_of(stack.dir.path())
            );
            steps += done
                .steps
                .iter()
                .filter(|s| s.state == StepState::Verified as i32)
                .count();
            if done.state == RolloutState::Succeeded as i32 || sample.is_none() {
                sample = Some(done);
            }
        }
        let sample = sample.context("no roll-out")?;
        let steps_f = steps as f64;
        let steps_per_sec = steps_f / elapsed.as_secs_f64();
        let raw = Box::pin(raw_txn_rate(
            &stack,
            &sample,
            args.rollouts,
            Duration::from_secs_f64(args.raw_secs),
        ))
        .await?;
        let ratio = steps_per_sec / raw;
        let txns = etcd_txns(&etcd);
        let proposals = etcd.sum("etcd_server_proposals_committed_total", &[]);
        let ranges = etcd.sum("grpc_server_handled_total", &["grpc_method=\"Range\""]);
        let work = where_the_time_went(&svc);
        let per_step: Vec<String> = work
            .rows
            .iter()
            .take(6)
            .map(|(w, n, s)| format!("{w} {:.2} calls {:.2} ms", n / steps_f, s * 1e3 / steps_f))
            .collect();
        println!(
            "throughput run {run}: {} roll-outs x {} regions: {steps} region-steps in {:.1} s: {steps_per_sec:.1} steps/s; raw etcd {raw:.0} txns/s; ratio {ratio:.3}",
            started.len(),
            regions.len(),
            elapsed.as_secs_f64(),
        );
        println!(
            "  etcd per region-step: {:.2} txns, {:.2} writes (raft proposals), {:.2} ranges; the rollout service per region-step: {}",
            txns / steps_f,
            proposals / steps_f,
            ranges / steps_f,
            per_step.join(", ")
        );
        let cpu_line: Vec<String> = cpu
            .iter()
            .map(|(k, v)| format!("{k} {:.1} s ({:.2} ms a step)", v, v * 1e3 / steps_f))
            .collect();
        println!(
            "  CPU during the roll-outs ({:.1} s of wall time on this machine's cores): {}",
            elapsed.as_secs_f64(),
            cpu_line.join(", ")
        );
        figures[0].push(ratio);
        figures[1].push(steps_per_sec);
        figures[2].push(raw);
        figures[3].push(txns / steps_f);
        figures[4].push(proposals / steps_f);
        figures[5].push(elapsed.as_secs_f64());
        figures[6].push(ranges / steps_f);
        figures[7].push(starts_per_sec);
        runs.push(serde_json::json!({
            "run": run,
            "rollouts": started.len(),
            "regions": regions.len(),
            "region_steps": steps,
            "seconds": elapsed.as_secs_f64(),
            "started_and_owned_seconds": all_started.as_secs_f64(),
            "starts_per_second": starts_per_sec,
            "tiles_scheduled_seconds": tiles_secs,
            "steps_per_second": steps_per_sec,
            "raw_etcd_txns_per_second": raw,
            "etcd_txns_per_step": txns / steps_f,
            "etcd_writes_per_step": proposals / steps_f,
            "etcd_ranges_per_step": ranges / steps_f,
            "complete": complete,
            "cpu_seconds": cpu,
            "start_retries": retries,
            "stopped_on_a_failed_step": stuck.len(),
            "rollout_service_calls": work.json,
        }));
    }
    let mut m = Measure::new("throughput");
    m.figure(
        "region-steps/s / raw etcd txns/s",
        "x",
        &figures[0],
        Some(Target::AtLeast(TARGET)),
    )?;
    m.figure("region-steps per second", "steps/s", &figures[1], None)?;
    m.figure("raw etcd transactions per second", "txns/s", &figures[2], None)?;
    m.figure("etcd transactions per region-step", "txns", &figures[3], None)?;
    m.figure(
        "etcd writes (raft proposals) per region-step",
        "writes",
        &figures[4],
        None,
    )?;
    m.figure("wall time", "s", &figures[5], None)?;
    m.figure("etcd ranges (reads) per region-step", "ranges", &figures[6], None)?;
    m.figure(
        "roll-outs started and owned per second (not timed above)",
        "starts/s",
        &figures[7],
        None,
    )?;
    report.add(m.details(serde_json::json!({
        "rollouts": args.rollouts,
        "regions": args.regions,
        "ga_scheduler": !args.no_ga_scheduler,
        "with_starts": args.with_starts,
        "runs": runs,
    })));
    Ok(())
}

/// Waits until `n` roll-outs are owned (PENDING and owned: their starts
/// are over), for at most [`CLAIM_WITHIN`].
async fn wait_owned(stack: &Stack, n: usize) -> anyhow::Result<()> {
    let what = format!("{n} roll-outs owned after their starts");
    eventually_every(&what, CLAIM_WITHIN, Duration::from_millis(50), || async {
        match stack.owned_rollouts().await {
            Ok(owned) if usize::try_from(owned).unwrap_or(0) >= n => Outcome::Done(()),
            Ok(owned) => Outcome::Retry(format!("{owned} of {n} owned")),
            // A count that cannot be read ends the wait.
            Err(e) => Outcome::Abort(format!("{e:#}")),
        }
    })
    .await
}

/// What a run's figures are taken as differences of: etcd's and the
/// rollout service's metrics, and every process's CPU time.
struct Counters {
    etcd: crate::stack::Metrics,
    svc: crate::stack::Metrics,
    cpu: std::collections::BTreeMap<&'static str, f64>,
}

impl Counters {
    async fn take(stack: &Stack) -> anyhow::Result<Self> {
        Ok(Self {
            etcd: stack.etcd_metrics().await?,
            svc: stack.rollout_metrics().await?,
            cpu: stack.cpu()?,
        })
    }
}

/// The raw etcd transaction rate: `writers` tasks, each committing, one
/// after another for `time`, an audited transaction that writes a
/// roll-out record (without its steps) and one step, as a decision of the
/// controller does, to keys of its own. Transactions per second.
async fn raw_txn_rate(
    stack: &Stack,
    sample: &Rollout,
    writers: usize,
    time: Duration,
) -> anyhow::Result<f64> {
    let record = Rollout {
        steps: Vec::new(),
        ..sample.clone()
    };
    let step = sample.steps.first().cloned().unwrap_or_default();
    let actor = Actor::new("bench");
    let end = Instant::now() + time;
    let t = Instant::now();
    let counts = futures::future::try_join_all((0..writers).map(|w| {
        let (record, step, actor) = (&record, &step, &actor);
        async move {
            let key = format!("{}bench-raw/{w}", stack::PREFIX);
            let mut n = 0u64;
            while Instant::now() < end {
                let change = Change::new()
                    .put_unchecked(key.clone(), record)
                    .put_unchecked(format!("{key}/steps/0"), step)
                    .audit(audit::record("Bench", "bench", "raw", format!("writer {w}")));
                stack
                    .store
                    .commit(change, actor)
                    .await
                    .context("a raw etcd transaction")?;
                n += 1;
            }
            anyhow::Ok(n)
        }
    }))
    .await?;
    let total: u64 = counts.iter().sum();
    Ok(total as f64 / t.elapsed().as_secs_f64())
}
