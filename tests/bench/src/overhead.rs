//! Measure 1, orchestration overhead (issue 18): one tile over every
//! region (70), no bake, agents that answer at once (the real agent
//! binary, one process per region, its catalog in a temporary directory);
//! the wall time from StartRollout until the client sees SUCCEEDED
//! (WatchRollout; `--poll`: GetRollout every 5 ms), divided by the floor
//! measured in the same run, right before the roll-out and right after it
//! (the mean of the two: drift over the run and which one goes first
//! cancel out): a plain loop that, per wave of the roll-out,
//! commits an audited etcd transaction (the applies recorded), calls
//! ApplyTile on every agent of the wave at once (the same concurrency;
//! a tile of its own, so each call is a real change that writes the
//! agent's catalog), and commits a second transaction (the results).
//! Target: at most 1.3x.
//!
//! The stack's first roll-out is a warm-up, printed but not counted: it
//! pays what happens once per replica (its connections to every agent,
//! its lease), where the floor makes its connections before its clock
//! starts; it also gives the first run's floor before the roll-out its
//! shape (a floor needs a finished roll-out's waves and size).
//!
//! Also reported, per run: the roll-out's own timeline (milliseconds of
//! domain time, rate 1, after it was created: when each wave's applies
//! started, were acknowledged and verified), etcd's transactions and
//! ranges during the roll-out (its metrics), and what the rollout service
//! spent them on (its `tilewave_etcd_op_duration_seconds` and
//! `tilewave_rpc_duration_seconds`).

use std::time::Duration;

use anyhow::Context as _;
use jiff::SignedDuration;
use tilewave_proto::agent::v1::ApplyTileRequest;
use tilewave_proto::rollout::v1::{Rollout, RolloutSpec};
use tilewave_store::{Actor, Change, audit};
use tokio::time::Instant;

use crate::report::{Measure, Report, Target};
use crate::stack::{self, Metrics, Stack, dur, from_ts, ts};

/// Options of `tilewave-bench overhead`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// How many runs (a new tile and roll-out each).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// How many regions (of the 70 in the catalog, canaries first); one
    /// agent process each.
    #[arg(long, default_value_t = 70)]
    pub regions: usize,
    /// Size ratio of consecutive waves (the spec's `wave_growth`); 0 is
    /// the service's default shape (2: five waves for 70 regions).
    #[arg(long, default_value_t = 0)]
    pub wave_growth: i32,
    /// See SUCCEEDED by polling GetRollout every 5 ms (as the earlier
    /// ad-hoc measure did) instead of WatchRollout; the polls load the
    /// service being measured.
    #[arg(long)]
    pub poll: bool,
}

impl Args {
    /// Tiny sizes for the smoke run.
    pub fn smoke() -> Self {
        Self {
            runs: 1,
            regions: 3,
            wave_growth: 0,
            poll: false,
        }
    }
}

/// The target on wall / floor.
const TARGET: f64 = 1.3;

/// The pause between the phases of a run (the tile's setup, the floor
/// before, the roll-out, the floor after), so that the background passes
/// a phase sets off run between phases, not inside the next one: the GA
/// scheduler and the lifecycle loop debounce changes by 100 ms
/// (`CHANGE_DEBOUNCE`), so the passes the tile's setup set off (its GA
/// plan among them) fell inside the roll-out, and those the roll-out set
/// off inside the floor after it. Not a readiness wait: nothing becomes
/// ready, the pause only keeps the phases apart.
const SETTLE: Duration = Duration::from_millis(250);

/// Runs the measure and adds it to `report`.
pub async fn run(args: &Args, report: &mut Report) -> anyhow::Result<()> {
    anyhow::ensure!(args.runs >= 1, "--runs must be at least 1");
    anyhow::ensure!(
        (1..=70).contains(&args.regions),
        "--regions must be 1 to 70, not {}",
        args.regions
    );
    let regions = stack::regions(args.regions);
    let started = Instant::now();
    let stack = Box::pin(Stack::start(&regions, true)).await?;
    println!(
        "overhead: stack of {} agents up in {:.1} s",
        regions.len(),
        started.elapsed().as_secs_f64()
    );
    let (mut walls, mut floors, mut ratios, mut txns, mut runs) = (vec![], vec![], vec![], vec![], vec![]);
    let (mut rollout_cpu, mut registry_cpu) = (vec![], vec![]);
    // The shape of the floor before each counted roll-out: the previous
    // roll-out (the same regions and waves).
    let mut previous: Option<Rollout> = None;
    // Run 0 is the warm-up.
    for run in 0..=args.runs {
        let id = format!("overhead-{run}");
        let tile = Box::pin(stack.scheduled_tile(&id, stack.now())).await?;
        tokio::time::sleep(SETTLE).await;
        let before = match &previous {
            Some(p) => Some(Box::pin(floor(&stack, p, &tile, &format!("{run}-before"))).await?),
            None => None,
        };
        let etcd_before = stack.etcd_metrics().await?;
        let svc_before = stack.rollout_metrics().await?;
        let registry_before = stack.registry_metrics().await?;
        tokio::time::sleep(SETTLE).await;
        let spec = RolloutSpec {
            tile_id: tile.id.clone(),
            regions: regions.clone(),
            apply_time: Some(dur(SignedDuration::from_secs(1))),
            bake: Some(dur(SignedDuration::ZERO)),
            concurrency: i32::try_from(regions.len())?,
            wave_growth: args.wave_growth,
            earliest_start: Some(ts(stack.now())),
            ..Default::default()
        };
        let cpu_before = stack.service_cpu_ms()?;
        let (t0, domain0) = (Instant::now(), stack.now());
        let r = stack.start_rollout(spec).await?;
        let answered = t0.elapsed();
        let done = if args.poll {
            stack
                .wait_succeeded(&r.id, Duration::from_millis(5), Duration::from_secs(300))
                .await?
        } else {
            stack.watch_succeeded(&r.id, Duration::from_secs(300)).await?
        };
        let wall = t0.elapsed();
        let cpu_after = stack.service_cpu_ms()?;
        let cpu = (cpu_after.0 - cpu_before.0, cpu_after.1 - cpu_before.1);
        let etcd = stack.etcd_metrics().await?.since(&etcd_before);
        let svc = stack.rollout_metrics().await?.since(&svc_before);
        let registry = where_the_time_went(&stack.registry_metrics().await?.since(&registry_before));
        let timeline = format!(
            "created {:.1} and answered {:.1} after the call; {}; SUCCEEDED seen {:.1}",
            from_ts(&done.created_at).duration_since(domain0).as_secs_f64() * 1e3,
            answered.as_secs_f64() * 1e3,
            timeline(&done),
            wall.as_secs_f64() * 1e3,
        );
        tokio::time::sleep(SETTLE).await;
        let (after, floor_timeline) = Box::pin(floor(&stack, &done, &tile, &format!("{run}-after"))).await?;
        let floor = match &before {
            Some((b, _)) => (*b + after) / 2,
            None => after,
        };
        let ratio = wall.as_secs_f64() / floor.as_secs_f64();
        let floor_before = before.as_ref().map(|(b, _)| b.as_secs_f64() * 1e3);
        previous = Some(done.clone());
        if run == 0 {
            println!(
                "overhead warm-up (not counted): wall {:.1} ms, floor {:.1} ms, ratio {ratio:.2}",
                wall.as_secs_f64() * 1e3,
                floor.as_secs_f64() * 1e3
            );
            continue;
        }
        let etcd_txns = etcd_txns(&etcd);
        let work = where_the_time_went(&svc);
        println!(
            "overhead run {run}: {} regions in {} waves: wall {:.1} ms, floor {:.1} ms (before {:.1}, after {:.1}), ratio {ratio:.2}; etcd during the roll-out: {etcd_txns:.0} txns, {:.0} writes (raft proposals)",
            regions.len(),
            done.wave_count,
            wall.as_secs_f64() * 1e3,
            floor.as_secs_f64() * 1e3,
            floor_before.unwrap_or(f64::NAN),
            after.as_secs_f64() * 1e3,
            etcd.sum("etcd_server_proposals_committed_total", &[]),
        );
        println!("  timeline (ms of domain time after creation): {timeline}");
        println!("  the floor's timeline after the roll-out (ms after its start): {floor_timeline}");
        println!(
            "  CPU during the roll-out: the rollout service {:.1} ms, the registry {:.1} ms",
            cpu.0, cpu.1
        );
        println!("  the rollout service's calls: {}", work.line);
        println!("  the registry's calls: {}", registry.line);
        walls.push(wall.as_secs_f64() * 1e3);
        floors.push(floor.as_secs_f64() * 1e3);
        ratios.push(ratio);
        txns.push(etcd_txns);
        rollout_cpu.push(cpu.0);
        registry_cpu.push(cpu.1);
        runs.push(serde_json::json!({
            "run": run,
            "waves": done.wave_count,
            "wall_ms": wall.as_secs_f64() * 1e3,
            "floor_ms": floor.as_secs_f64() * 1e3,
            "floor_before_ms": floor_before,
            "floor_after_ms": after.as_secs_f64() * 1e3,
            "timeline_ms": timeline,
            "floor_timeline_ms": floor_timeline,
            "etcd_txns": etcd_txns,
            "etcd_proposals": etcd.sum("etcd_server_proposals_committed_total", &[]),
            "etcd_ranges": etcd.sum("etcd_mvcc_range_total", &[]) + etcd.sum("etcd_debugging_mvcc_range_total", &[]),
            "rollout_service_cpu_ms": cpu.0,
            "registry_cpu_ms": cpu.1,
            "rollout_service_calls": work.json,
            "registry_calls": registry.json,
        }));
    }
    // What a wave's transaction costs etcd against the floor's, on the
    // last roll-out's shape.
    let shapes = match &previous {
        Some(done) => Some(Box::pin(txn_shapes(&stack, done, SHAPE_ROUNDS)).await?),
        None => None,
    };
    let mut m = Measure::new("overhead");
    m.figure("wall / floor", "x", &ratios, Some(Target::AtMost(TARGET)))?;
    m.figure("wall time", "ms", &walls, None)?;
    m.figure("floor", "ms", &floors, None)?;
    m.figure("etcd transactions per roll-out", "txns", &txns, None)?;
    m.figure("rollout service CPU per roll-out", "ms", &rollout_cpu, None)?;
    m.figure("registry CPU per roll-out", "ms", &registry_cpu, None)?;
    if let Some(s) = &shapes {
        m.figure("floor-shaped transaction", "ms", &s.floor, None)?;
        m.figure("wave-shaped transaction (steps compared)", "ms", &s.wave, None)?;
        m.figure(
            "wave-shaped transaction (steps not compared)",
            "ms",
            &s.unchecked,
            None,
        )?;
    }
    report.add(m.details(serde_json::json!({ "regions": regions.len(), "runs": runs })));
    Ok(())
}

/// When each wave's applies started, were acknowledged and verified (the
/// latest of its regions), in milliseconds of domain time after the
/// roll-out was created.
fn timeline(r: &Rollout) -> String {
    let base = from_ts(&r.created_at);
    let ms = |t: &Option<prost_types::Timestamp>| from_ts(t).duration_since(base).as_secs_f64() * 1e3;
    let mut line = format!("started {:.0}", ms(&r.started_at));
    for w in 1..=r.wave_count {
        let steps: Vec<_> = r.steps.iter().filter(|s| s.wave == w).collect();
        let last = |f: fn(&tilewave_proto::rollout::v1::RolloutStep) -> &Option<prost_types::Timestamp>| {
            steps.iter().map(|s| ms(f(s))).fold(0.0, f64::max)
        };
        line.push_str(&format!(
            "; wave {w} ({} regions): applies started {:.0}, acknowledged {:.0}, verified {:.0}",
            steps.len(),
            last(|s| &s.apply_started_at),
            last(|s| &s.applied_at),
            last(|s| &s.verified_at),
        ));
    }
    line.push_str(&format!("; finished {:.0}", ms(&r.finished_at)));
    line
}

/// The floor of roll-out `done`: per wave, an audited transaction, every
/// agent of the wave's ApplyTile at once, a second transaction; each
/// transaction writes the finished roll-out (its size) to a key of its
/// own. The agents apply a tile of their own (`floor-<name>`), new to
/// them, so each call writes the catalog as the roll-out's did. Also its
/// own timeline (ms after its start), to set beside the roll-out's.
async fn floor(
    stack: &Stack,
    done: &Rollout,
    tile: &tilewave_proto::registry::v1::Tile,
    name: &str,
) -> anyhow::Result<(Duration, String)> {
    let key = format!("{PREFIX}bench-floor/{name}", PREFIX = stack::PREFIX);
    let actor = Actor::new("bench");
    let floor_tile = format!("floor-{name}");
    // Connections are made before the clock starts (the roll-out's were
    // made by its earlier runs or its start-up too).
    for region in &stack.regions {
        stack.agent(region).await?;
    }
    let t = Instant::now();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mut marks = Vec::new();
    for w in 1..=done.wave_count {
        let regions: Vec<&str> = done
            .steps
            .iter()
            .filter(|s| s.wave == w)
            .map(|s| s.region.as_str())
            .collect();
        for n in 0..2 {
            let change = Change::new()
                .put_unchecked(key.clone(), done)
                .audit(audit::record("Bench", "bench", "floor", format!("wave {w} {n}")));
            stack
                .store
                .commit(change, &actor)
                .await
                .context("the floor's transaction")?;
            if n == 0 {
                let calls = regions.iter().map(|region| {
                    let request = ApplyTileRequest {
                        tile_id: floor_tile.clone(),
                        revision: tile.revision,
                        config: tile.config.clone(),
                        fencing_token: 1,
                        rollout_id: format!("bench-floor-{name}"),
                        ..Default::default()
                    };
                    async move {
                        let mut a = stack.agent(region).await?;
                        a.apply_tile(request)
                            .await
                            .with_context(|| format!("the floor's ApplyTile in {region}"))?;
                        anyhow::Ok(())
                    }
                });
                let applies = t.elapsed();
                futures::future::try_join_all(calls).await?;
                marks.push(format!(
                    "wave {w}: applies started {:.1}, acknowledged {:.1}",
                    ms(applies),
                    ms(t.elapsed())
                ));
            }
        }
    }
    let took = t.elapsed();
    marks.push(format!("end {:.1}", ms(took)));
    Ok((took, marks.join("; ")))
}

/// Rounds of [`txn_shapes`].
const SHAPE_ROUNDS: usize = 31;

/// Commit times (ms) of three transaction shapes, interleaved round by
/// round so that drift hits them alike.
struct Shapes {
    /// The floor's: the finished roll-out under one key, audited.
    floor: Vec<f64>,
    /// A wave's (its largest): the roll-out's key and one key per step of
    /// the two largest waves (their acknowledgements and the next
    /// applies), each compared with its etag, audited.
    wave: Vec<f64>,
    /// The same keys written without comparing the steps' etags.
    unchecked: Vec<f64>,
}

/// Times the three shapes of [`Shapes`] on roll-out `done`: how much of a
/// wave's transaction is its number of keys rather than its bytes.
async fn txn_shapes(stack: &Stack, done: &Rollout, rounds: usize) -> anyhow::Result<Shapes> {
    let actor = Actor::new("bench");
    let base = format!("{PREFIX}bench-shape/", PREFIX = stack::PREFIX);
    let mut sizes: Vec<usize> = (1..=done.wave_count)
        .map(|w| done.steps.iter().filter(|s| s.wave == w).count())
        .collect();
    sizes.sort_unstable();
    let n = sizes.iter().rev().take(2).sum::<usize>().max(1);
    let mut stored = done.clone();
    stored.steps.clear();
    let step_keys: Vec<(String, &tilewave_proto::rollout::v1::RolloutStep)> = done
        .steps
        .iter()
        .cycle()
        .take(n)
        .enumerate()
        .map(|(i, s)| (format!("{base}steps/{i:04}"), s))
        .collect();
    let audited = |what: &str| audit::record("Bench", "bench", "shape", what.to_owned());
    // Every step key written, each compared with `etag` when given.
    let with_steps = |change: Change, etag: Option<i64>| {
        step_keys.iter().fold(change, |c, (k, s)| match etag {
            Some(etag) => c.update(k.clone(), *s, etag),
            None => c.put_unchecked(k.clone(), *s),
        })
    };
    // The keys exist first, so that the compared shape compares etags.
    let mut etag = stack
        .store
        .commit(with_steps(Change::new(), None), &actor)
        .await?
        .revision;
    let mut out = Shapes {
        floor: vec![],
        wave: vec![],
        unchecked: vec![],
    };
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1e3;
    for _ in 0..rounds {
        let change = Change::new()
            .put_unchecked(format!("{base}floor"), done)
            .audit(audited("floor"));
        let t = Instant::now();
        stack.store.commit(change, &actor).await?;
        out.floor.push(ms(t));
        let change = with_steps(
            Change::new().put_unchecked(format!("{base}rollout"), &stored),
            Some(etag),
        );
        let t = Instant::now();
        stack.store.commit(change.audit(audited("wave")), &actor).await?;
        out.wave.push(ms(t));
        let change = with_steps(
            Change::new().put_unchecked(format!("{base}rollout"), &stored),
            None,
        );
        let t = Instant::now();
        etag = stack
            .store
            .commit(change.audit(audited("unchecked")), &actor)
            .await?
            .revision;
        out.unchecked.push(ms(t));
    }
    Ok(out)
}

/// etcd's transactions in a metrics delta: its `Txn` RPCs, as counted by
/// its gRPC metrics.
pub fn etcd_txns(etcd: &Metrics) -> f64 {
    etcd.sum("grpc_server_handled_total", &["grpc_method=\"Txn\""])
}

/// What a service's calls cost in a metrics delta: count and seconds per
/// etcd operation and per RPC method it made or served.
pub struct Work {
    /// One line, largest total time first.
    pub line: String,
    /// The same as JSON.
    pub json: serde_json::Value,
    /// (what, count, seconds), largest total time first.
    pub rows: Vec<(String, f64, f64)>,
}

/// The rows of [`Work`] from a delta of a service's metrics.
pub fn where_the_time_went(svc: &Metrics) -> Work {
    let mut rows: Vec<(String, f64, f64)> = Vec::new();
    for (k, count) in &svc.0 {
        let Some((name, labels)) = k.split_once('{') else {
            continue;
        };
        let what = match name {
            "tilewave_etcd_op_duration_seconds_count" => format!("etcd {}", label(labels, "op")),
            "tilewave_rpc_duration_seconds_count" => {
                format!("served {}/{}", label(labels, "service"), label(labels, "method"))
            }
            _ => continue,
        };
        let sum_key = format!("{}_sum{{{labels}", name.trim_end_matches("_count"));
        let secs = svc.0.get(&sum_key).copied().unwrap_or(0.0);
        rows.push((what, *count, secs));
    }
    rows.sort_by(|a, b| b.2.total_cmp(&a.2));
    let line = rows
        .iter()
        .map(|(w, n, s)| format!("{w} {n:.0} calls {:.0} ms", s * 1e3))
        .collect::<Vec<_>>()
        .join(", ");
    let json = rows
        .iter()
        .map(|(w, n, s)| serde_json::json!({ "what": w, "calls": n, "seconds": s }))
        .collect();
    Work { line, json, rows }
}

/// The value of `key="..."` in a label set (empty when absent).
fn label<'a>(labels: &'a str, key: &str) -> &'a str {
    let pat = format!("{key}=\"");
    labels
        .split(',')
        .find_map(|l| l.trim().trim_start_matches('{').strip_prefix(pat.as_str()))
        .map_or("", |v| v.split('"').next().unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_work_is_read_from_its_metrics() {
        let m = Metrics::parse(concat!(
            "tilewave_etcd_op_duration_seconds_count{op=\"txn\"} 4\n",
            "tilewave_etcd_op_duration_seconds_sum{op=\"txn\"} 0.2\n",
            "tilewave_etcd_op_duration_seconds_count{op=\"get\"} 10\n",
            "tilewave_etcd_op_duration_seconds_sum{op=\"get\"} 0.05\n",
        ));
        let w = where_the_time_went(&m);
        assert_eq!(w.rows[0], ("etcd txn".to_owned(), 4.0, 0.2));
        assert_eq!(w.rows[1].0, "etcd get");
        assert_eq!(label("{op=\"txn\",x=\"y\"}", "x"), "y");
    }
}
