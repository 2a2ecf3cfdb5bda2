//! Measure 4, reads (issue 18): GetTile and ListTiles against a gRPC
//! health check (`grpc.health.v1.Health/Check`) on the same connection to
//! one registry (mutual TLS), a tile with five revisions. The load
//! generator is this process making one call at a time (a closed loop:
//! the rate this machine sustains on one connection, reported). Each run
//! makes a warm-up round and `--rounds` counted rounds, each a block of
//! `--block` health checks, then GetTile, then ListTiles, so that load
//! from elsewhere hits the three alike. Quoted per run: p50 and p99 of
//! every call of each kind, and the per-round ratio of each block to the
//! health-check block. Targets: p99 within 1.3x of the health check's p99,
//! and under 1 ms.

use std::time::Duration;

use anyhow::Context as _;
use tilewave_proto::registry::v1::{
    GetTileRequest, ImportPartnerConfigRequest, ListTilesRequest, UpdateTileRequest, update_tile_request,
};
use tokio::time::Instant;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::report::{Measure, Report, Summary, Target};
use crate::stack::{self, RIVERFLOW, Stack};

/// Options of `tilewave-bench reads`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// How many runs.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Counted rounds per run (after one warm-up round).
    #[arg(long, default_value_t = 11)]
    pub rounds: usize,
    /// Calls of each kind per round.
    #[arg(long, default_value_t = 200)]
    pub block: usize,
}

impl Args {
    /// Tiny sizes for the smoke run.
    pub fn smoke() -> Self {
        Self {
            runs: 1,
            rounds: 2,
            block: 25,
        }
    }
}

/// p99 at most this many times the health check's.
const TARGET_RATIO: f64 = 1.3;
/// p99 under this many microseconds.
const TARGET_P99_US: f64 = 1000.0;

const KINDS: [&str; 3] = ["health check", "GetTile", "ListTiles"];

/// Runs the measure and adds it to `report`.
pub async fn run(args: &Args, report: &mut Report) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.runs >= 1 && args.rounds >= 1 && args.block >= 1,
        "--runs, --rounds and --block must be at least 1"
    );
    let stack = Box::pin(Stack::start(&[], false)).await?;
    let channel = tilewave_testkit::journeys::connect(
        "the registry",
        &stack.registry,
        tilewave_testkit::pki::RELEASE_ENGINEER,
        stack::CONNECT,
    )
    .await?;
    let mut c =
        tilewave_proto::registry::v1::registry_service_client::RegistryServiceClient::new(channel.clone());
    let mut h = HealthClient::new(channel);
    let mut tile = c
        .import_partner_config(ImportPartnerConfigRequest {
            config_json: RIVERFLOW.into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .tile
        .context("ImportPartnerConfig answered without a tile")?;
    for n in 2..=5 {
        tile = c
            .update_tile(UpdateTileRequest {
                id: tile.id.clone(),
                etag: tile.etag,
                source: Some(update_tile_request::Source::ConfigJson(RIVERFLOW.into())),
                note: format!("v{n}"),
                ..Default::default()
            })
            .await?
            .into_inner()
            .tile
            .context("UpdateTile answered without a tile")?;
    }
    let id = tile.id.clone();
    // Per run: [p50, p99] of each kind; p99 ratios; per-round ratio medians.
    let mut p50: [Vec<f64>; 3] = Default::default();
    let mut p99: [Vec<f64>; 3] = Default::default();
    let mut p99_ratio: [Vec<f64>; 2] = Default::default();
    let mut round_ratio: [Vec<f64>; 2] = Default::default();
    let mut rate = Vec::new();
    for run in 0..args.runs {
        let mut calls: [Vec<f64>; 3] = Default::default();
        let mut ratios: [Vec<f64>; 2] = Default::default();
        let mut busy = Duration::ZERO;
        for round in 0..=args.rounds {
            let mut block = [Duration::ZERO; 3];
            for (v, total) in block.iter_mut().enumerate() {
                for _ in 0..args.block {
                    let t = Instant::now();
                    match v {
                        0 => {
                            h.check(HealthCheckRequest {
                                service: "tilewave.registry.v1.RegistryService".into(),
                            })
                            .await
                            .context("health check")?;
                        }
                        1 => {
                            c.get_tile(GetTileRequest {
                                id: id.clone(),
                                revision: 0,
                            })
                            .await
                            .context("GetTile")?;
                        }
                        _ => {
                            c.list_tiles(ListTilesRequest::default())
                                .await
                                .context("ListTiles")?;
                        }
                    }
                    let d = t.elapsed();
                    *total += d;
                    if round > 0 {
                        calls[v].push(d.as_secs_f64() * 1e6);
                    }
                }
            }
            // Round 0 warms the connection and the caches up.
            if round > 0 {
                busy += block.iter().sum::<Duration>();
                for v in 0..2 {
                    ratios[v].push(block[v + 1].as_secs_f64() / block[0].as_secs_f64());
                }
            }
        }
        let mut line = Vec::new();
        for (v, kind) in KINDS.iter().enumerate() {
            let s = Summary::of(&calls[v]).context("no calls")?;
            let (a, b) = (s.percentile(50.0), s.percentile(99.0));
            p50[v].push(a);
            p99[v].push(b);
            line.push(format!("{kind} p50 {a:.0} us p99 {b:.0} us"));
        }
        for v in 0..2 {
            p99_ratio[v].push(p99[v + 1][run] / p99[0][run]);
            let s = Summary::of(&ratios[v]).context("no rounds")?;
            round_ratio[v].push(s.median);
        }
        let n = calls.iter().map(Vec::len).sum::<usize>() as f64;
        rate.push(n / busy.as_secs_f64());
        println!(
            "reads run {run}: {}; per round / health: GetTile {:.2}, ListTiles {:.2}; {:.0} calls/s",
            line.join(", "),
            round_ratio[0][run],
            round_ratio[1][run],
            rate[run]
        );
    }
    let mut m = Measure::new("reads");
    m.figure(
        "GetTile p99 / health check p99",
        "x",
        &p99_ratio[0],
        Some(Target::AtMost(TARGET_RATIO)),
    )?;
    m.figure(
        "ListTiles p99 / health check p99",
        "x",
        &p99_ratio[1],
        Some(Target::AtMost(TARGET_RATIO)),
    )?;
    m.figure("GetTile p99", "us", &p99[1], Some(Target::AtMost(TARGET_P99_US)))?;
    m.figure(
        "ListTiles p99",
        "us",
        &p99[2],
        Some(Target::AtMost(TARGET_P99_US)),
    )?;
    m.figure("health check p99", "us", &p99[0], None)?;
    for (v, kind) in KINDS.iter().enumerate() {
        m.figure(&format!("{kind} p50"), "us", &p50[v], None)?;
    }
    m.figure(
        "GetTile / health check, per round (median)",
        "x",
        &round_ratio[0],
        None,
    )?;
    m.figure(
        "ListTiles / health check, per round (median)",
        "x",
        &round_ratio[1],
        None,
    )?;
    m.figure("calls per second (one at a time)", "calls/s", &rate, None)?;
    report.add(m.details(serde_json::json!({
        "rounds": args.rounds,
        "block": args.block,
        "revisions": 5,
    })));
    Ok(())
}
