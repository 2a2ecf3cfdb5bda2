//! Measure 5: the registry at scale, and audit retention (issue 18).
//!
//! Starts one etcd and one `tilewave-registry` (mutual TLS, a frozen
//! virtual clock, audit retention on), then:
//!
//! 1. loads `--tiles` tiles with `--revisions` revisions each through the
//!    registry's own RPCs (ImportPartnerConfig, then UpdateTile), at most
//!    `--in-flight` tiles at a time, and reports the write rate;
//! 2. lists every tile with ListTiles (`--page-size`), `--runs` times:
//!    latency per page (p50, p99) and per full listing;
//! 3. starts `--runs` new WatchTiles watchers: time to the first event and
//!    to the end of the initial snapshot;
//! 4. reads the registry's resident memory (VmRSS) idle and loaded, and per
//!    tile;
//! 5. writes `--history-days` days of audit history, `--records-per-day`
//!    records a day over `--history-tiles` tiles (at their own domain
//!    times, as the services would), times GetHistory of one tile, moves
//!    the virtual clock to the end of that history so that everything
//!    older than `--retention-days` is folded into daily summaries, and
//!    reports the audit key count and GetHistory's latency before and after.

use std::time::Duration;

use anyhow::Context as _;
use etcd_client::GetOptions;
use futures::StreamExt as _;
use jiff::{SignedDuration, Timestamp};
use tilewave_proto::common::v1::{PageRequest, TimeRange};
use tilewave_proto::registry::v1::registry_service_client::RegistryServiceClient;
use tilewave_proto::registry::v1::{
    GetHistoryRequest, ImportPartnerConfigRequest, ListTilesRequest, TileEventType, UpdateTileRequest,
    WatchTilesRequest, update_tile_request,
};
use tilewave_store::audit::{self, AuditRecordExt};
use tilewave_store::clock::to_proto_timestamp;
use tilewave_store::{Actor, Change, Store, VirtualClock};
use tilewave_testkit::pki::RELEASE_ENGINEER;
use tilewave_testkit::{EtcdCluster, ServiceProcess, ServiceSpec, TestDir, bin_path};
use tokio::time::Instant;
use tonic::transport::Channel;

use crate::report::{Measure, Report, Target};

/// The partner configuration every tile is made from (its name is
/// replaced per tile).
const CONFIG: &str =
    include_str!("../../../crates/core/tests/fixtures/partner-connect/riverflow-ingest.json");

/// The key prefix of the measure.
const PREFIX: &str = "/tilewave-bench-scale/";

/// The memory targets: idle and loaded (10,000 tiles).
const IDLE_MIB: f64 = 30.0;
const LOADED_MIB: f64 = 150.0;

/// Options of `tilewave-bench scale`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// How many listings and watch start-ups are timed.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Tiles to load.
    #[arg(long, default_value_t = 10_000)]
    pub tiles: usize,
    /// Revisions per tile (the import is the first).
    #[arg(long, default_value_t = 5)]
    pub revisions: usize,
    /// Tiles written at once while loading (and audit records written at
    /// once while making history).
    #[arg(long, default_value_t = 32)]
    pub in_flight: usize,
    /// ListTiles page size.
    #[arg(long, default_value_t = 500)]
    pub page_size: i32,
    /// Days of simulated audit history.
    #[arg(long, default_value_t = 365)]
    pub history_days: i64,
    /// Audit records per day of history.
    #[arg(long, default_value_t = 50)]
    pub records_per_day: i64,
    /// Tiles the history is about.
    #[arg(long, default_value_t = 20)]
    pub history_tiles: usize,
    /// The registry's audit retention, in days.
    #[arg(long, default_value_t = 90)]
    pub retention_days: i64,
}

impl Args {
    /// Tiny sizes for the smoke run.
    pub fn smoke() -> Self {
        Self {
            runs: 1,
            tiles: 50,
            revisions: 2,
            in_flight: 8,
            page_size: 20,
            history_days: 7,
            records_per_day: 20,
            history_tiles: 3,
            retention_days: 2,
        }
    }

    fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.runs > 0, "--runs must be at least 1");
        anyhow::ensure!(self.tiles > 0, "--tiles must be at least 1");
        anyhow::ensure!(self.revisions > 0, "--revisions must be at least 1");
        anyhow::ensure!(self.in_flight > 0, "--in-flight must be at least 1");
        anyhow::ensure!(self.page_size > 0, "--page-size must be at least 1");
        anyhow::ensure!(self.history_days > 0, "--history-days must be at least 1");
        anyhow::ensure!(self.records_per_day > 0, "--records-per-day must be at least 1");
        anyhow::ensure!(
            (1..self.tiles).contains(&self.history_tiles),
            "--history-tiles must be at least 1 and below --tiles (a tile outside the history is timed too)"
        );
        anyhow::ensure!(
            (1..self.history_days).contains(&self.retention_days),
            "--retention-days must be at least 1 and below --history-days"
        );
        Ok(())
    }
}

/// Milliseconds since `start`.
fn ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

fn tile_id(i: usize) -> String {
    format!("scale-{i:05}")
}

/// The registry's resident memory in MiB (VmRSS of /proc/<pid>/status).
fn rss_mib(pid: u32) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no VmRSS in {path}"))?;
    Ok(kib / 1024.0)
}

/// How many keys lie in `[start, end)`.
async fn count(store: &Store, start: &str, end: &str) -> anyhow::Result<i64> {
    let resp = store
        .etcd()
        .get(start, Some(GetOptions::new().with_range(end).with_count_only()))
        .await?;
    Ok(resp.count())
}

/// One tile with its revisions, through the RPCs.
async fn load_tile(mut c: RegistryServiceClient<Channel>, i: usize, revisions: usize) -> anyhow::Result<()> {
    let id = tile_id(i);
    let json = CONFIG.replacen("\"Riverflow\"", &format!("\"Scale tile {i:05}\""), 1);
    let mut tile = c
        .import_partner_config(ImportPartnerConfigRequest {
            config_json: json.clone(),
            id: id.clone(),
            ..Default::default()
        })
        .await
        .with_context(|| format!("importing {id}"))?
        .into_inner()
        .tile
        .with_context(|| format!("no tile for {id}"))?;
    for n in 2..=revisions {
        tile = c
            .update_tile(UpdateTileRequest {
                id: id.clone(),
                etag: tile.etag,
                source: Some(update_tile_request::Source::ConfigJson(json.clone())),
                note: format!("revision {n}"),
                ..Default::default()
            })
            .await
            .with_context(|| format!("updating {id} to revision {n}"))?
            .into_inner()
            .tile
            .with_context(|| format!("no tile for {id}"))?;
    }
    Ok(())
}

/// Every page of ListTiles: the latency of each page (ms) and the count.
async fn list_all(
    c: &mut RegistryServiceClient<Channel>,
    page_size: i32,
) -> anyhow::Result<(Vec<f64>, usize)> {
    let (mut pages, mut tiles) = (Vec::new(), 0);
    let mut token = String::new();
    loop {
        let start = Instant::now();
        let resp = c
            .list_tiles(ListTilesRequest {
                page: Some(PageRequest {
                    page_size,
                    page_token: token.clone(),
                }),
                ..Default::default()
            })
            .await?
            .into_inner();
        pages.push(ms(start));
        tiles += resp.tiles.len();
        if resp.next_page_token.is_empty() {
            return Ok((pages, tiles));
        }
        anyhow::ensure!(resp.next_page_token != token, "ListTiles repeated a page token");
        token = resp.next_page_token;
    }
}

/// A new watcher: ms to its first event and to SNAPSHOT_END, and the
/// snapshot's size.
async fn watch_start(c: &mut RegistryServiceClient<Channel>) -> anyhow::Result<(f64, f64, usize)> {
    let start = Instant::now();
    let mut stream = c.watch_tiles(WatchTilesRequest::default()).await?.into_inner();
    let (mut first, mut tiles) = (None, 0);
    while let Some(event) = stream.next().await {
        let event = event?;
        first.get_or_insert_with(|| ms(start));
        match TileEventType::try_from(event.r#type) {
            Ok(TileEventType::Snapshot) => tiles += 1,
            Ok(TileEventType::SnapshotEnd) => {
                return Ok((first.unwrap_or_default(), ms(start), tiles));
            }
            _ => {}
        }
    }
    anyhow::bail!("WatchTiles ended before SNAPSHOT_END")
}

/// GetHistory of `id`, every page: ms, records and summaries (and the
/// records the summaries stand for).
async fn history(
    c: &mut RegistryServiceClient<Channel>,
    id: &str,
) -> anyhow::Result<(f64, usize, usize, i64)> {
    history_in(c, id, None).await
}

/// GetHistory of `id` within `range` (all when `None`), every page.
async fn history_in(
    c: &mut RegistryServiceClient<Channel>,
    id: &str,
    range: Option<TimeRange>,
) -> anyhow::Result<(f64, usize, usize, i64)> {
    let start = Instant::now();
    let (mut records, mut summaries, mut folded) = (0, 0, 0);
    let mut token = String::new();
    loop {
        let resp = c
            .get_history(GetHistoryRequest {
                id: id.to_owned(),
                range,
                page: Some(PageRequest {
                    page_size: 1000,
                    page_token: token.clone(),
                }),
                ..Default::default()
            })
            .await?
            .into_inner();
        records += resp.records.len();
        summaries += resp.summaries.len();
        folded += resp.summaries.iter().map(|s| s.record_count).sum::<i64>();
        if resp.next_page_token.is_empty() {
            return Ok((ms(start), records, summaries, folded));
        }
        anyhow::ensure!(resp.next_page_token != token, "GetHistory repeated a page token");
        token = resp.next_page_token;
    }
}

/// Runs the measure and adds it to `report`.
pub async fn run(args: &Args, report: &mut Report) -> anyhow::Result<()> {
    args.check()?;
    let dir = TestDir::new("bench-scale")?;
    let etcd = EtcdCluster::start(1).await?;
    let store = etcd.store(PREFIX).await?;
    let actor = Actor::new("bench");
    // 2026-01-01T00:00:00Z, frozen: the history is written ahead of it.
    let t0 = Timestamp::from_second(1_767_225_600)?;
    let clock = VirtualClock::start(&store, t0, 0.0, &actor).await?;
    let retention = args.retention_days.to_string();
    let spec = ServiceSpec::new("registry", bin_path("tilewave-registry")?)
        .with_args([
            "--etcd",
            &etcd.endpoints().join(","),
            "--prefix",
            PREFIX,
            "--audit-retention-days",
            &retention,
            "--audit-retention-interval-ms",
            "200",
        ])
        .with_health_service(Some(tilewave_registry_health()));
    let registry = ServiceProcess::start(spec, dir.path()).await?;
    let pid = registry.pid().context("the registry has no pid")?;
    let client = RegistryServiceClient::new(registry.channel(RELEASE_ENGINEER).await?)
        .max_decoding_message_size(64 << 20);
    let idle = rss_mib(pid)?;

    // 1. Load.
    let start = Instant::now();
    let loads = futures::stream::iter(0..args.tiles)
        .map(|i| load_tile(client.clone(), i, args.revisions))
        .buffer_unordered(args.in_flight);
    futures::pin_mut!(loads);
    while let Some(done) = loads.next().await {
        done?;
    }
    let load_secs = start.elapsed().as_secs_f64();
    let writes = (args.tiles * args.revisions) as f64;
    let loaded = rss_mib(pid)?;
    println!(
        "scale: loaded {} tiles x {} revisions ({writes} writes) in {load_secs:.1} s",
        args.tiles, args.revisions
    );

    // 2. ListTiles.
    println!("scale: listing");
    let mut c = client.clone();
    let (mut pages, mut listings) = (Vec::new(), Vec::new());
    for _ in 0..args.runs {
        let start = Instant::now();
        let (p, n) = list_all(&mut c, args.page_size).await?;
        listings.push(ms(start));
        anyhow::ensure!(
            n == args.tiles,
            "ListTiles listed {n} tiles, {} loaded",
            args.tiles
        );
        pages.extend(p);
    }

    // 3. WatchTiles start-up.
    println!("scale: watching");
    let (mut firsts, mut ends) = (Vec::new(), Vec::new());
    for _ in 0..args.runs {
        let (first, end, n) = watch_start(&mut c).await?;
        anyhow::ensure!(
            n == args.tiles,
            "the snapshot held {n} tiles, {} loaded",
            args.tiles
        );
        firsts.push(first);
        ends.push(end);
    }

    // 5. A year (or --history-days) of audit history.
    println!("scale: writing audit history");
    let day = SignedDuration::from_hours(24);
    let per_day = args.records_per_day;
    let total = args.history_days * per_day;
    let step = SignedDuration::from_secs(86_400 / per_day.max(1));
    let start = Instant::now();
    let commits = futures::stream::iter(0..total)
        .map(|n| {
            let (store, actor) = (store.clone(), actor.clone());
            let at = t0 + day * ((n / per_day) as i32) + step * ((n % per_day) as i32);
            let id = tile_id((n as usize) % args.history_tiles);
            async move {
                let record = audit::record("SetGtmItem", "tile", &id, format!("history record {n}"))
                    .revision(1)
                    .detail("state", "DRAFT")
                    .at(at);
                store.commit(Change::new().audit(record), &actor).await
            }
        })
        .buffer_unordered(args.in_flight * 2);
    futures::pin_mut!(commits);
    while let Some(done) = commits.next().await {
        done?;
    }
    let history_secs = start.elapsed().as_secs_f64();
    let keys = store.keys().clone();
    let audit_before = count(&store, &keys.audit_prefix(), &keys.audit_end()).await?;
    let watched = tile_id(0);
    let mut before = Vec::new();
    let mut before_entries = (0, 0, 0);
    for _ in 0..args.runs {
        let (t, records, summaries, folded) = history(&mut c, &watched).await?;
        before.push(t);
        before_entries = (records, summaries, folded);
    }

    // A tile outside the history: its own few records (the load's), among
    // every other object's.
    let quiet = tile_id(args.history_tiles);
    let mut quiet_before = Vec::new();
    for _ in 0..args.runs {
        let (t, records, _, _) = history(&mut c, &quiet).await?;
        anyhow::ensure!(
            records == args.revisions,
            "GetHistory of {quiet} returned {records} records, {} written",
            args.revisions
        );
        quiet_before.push(t);
    }

    // The last week of the history only: a range read of the audit keys.
    let end = t0 + day * (args.history_days as i32);
    let week = TimeRange {
        start: Some(to_proto_timestamp(end - day * 7)),
        end: Some(to_proto_timestamp(end)),
    };
    let mut ranged = Vec::new();
    for _ in 0..args.runs {
        let (t, records, _, _) = history_in(&mut c, &watched, Some(week)).await?;
        anyhow::ensure!(
            records > 0,
            "GetHistory of {watched} over the last week returned nothing"
        );
        ranged.push(t);
    }

    // Move to the end of the history: everything older than the retention
    // is folded.
    println!("scale: folding");
    let boundary = end - day * (args.retention_days as i32);
    let start = Instant::now();
    clock.set(end, &actor).await?;
    let folding = (args.tiles * args.revisions) as u64 + total.max(0) as u64;
    let fold_timeout = Duration::from_secs(60) + Duration::from_millis(folding * 10);
    tilewave_testkit::eventually(
        "every audit record older than the retention folded",
        fold_timeout,
        || async {
            let old = count(&store, &keys.audit_prefix(), &keys.audit_before(boundary))
                .await
                .map_err(|e| e.to_string())?;
            if old == 0 {
                Ok(())
            } else {
                Err(format!("{old} record(s) left to fold"))
            }
        },
    )
    .await?;
    let fold_secs = start.elapsed().as_secs_f64();
    let audit_after = count(&store, &keys.audit_prefix(), &keys.audit_end()).await?;
    let summaries_after = count(
        &store,
        &keys.audit_summaries(),
        &String::from_utf8_lossy(&prefix_end(keys.audit_summaries().as_bytes())),
    )
    .await?;
    let mut after = Vec::new();
    let mut after_entries = (0, 0, 0);
    for _ in 0..args.runs {
        let (t, records, summaries, folded) = history(&mut c, &watched).await?;
        after.push(t);
        after_entries = (records, summaries, folded);
    }
    // The audit index's backfill, as the first registry of a version with
    // the index finds the log: every entry and the mark removed, then
    // given back by the registry's own backfill, run here.
    let mut kv = store.etcd().kv_client();
    kv.delete(
        format!("{}audit-index", keys.prefix()),
        Some(etcd_client::DeleteOptions::new().with_prefix()),
    )
    .await?;
    let unindexed = count(&store, &keys.audit_prefix(), &keys.audit_end()).await?;
    let start = Instant::now();
    let indexed = tilewave_store::retention::backfill_index(&store, &actor).await?;
    let backfill_secs = start.elapsed().as_secs_f64();
    anyhow::ensure!(
        i64::try_from(indexed)? >= unindexed,
        "the backfill gave {indexed} of {unindexed} records their entries"
    );

    // The history is the same, only folded: every record is either kept or
    // counted in a summary.
    anyhow::ensure!(
        before_entries.0 as i64 + before_entries.2 == after_entries.0 as i64 + after_entries.2,
        "GetHistory of {watched}: {before_entries:?} (records, summaries, folded) before, {after_entries:?} after"
    );
    anyhow::ensure!(
        after_entries.1 > 0,
        "GetHistory of {watched} returned no summaries after the fold"
    );

    let mut m = Measure::new("scale");
    m.figure(
        "load: registry writes per second",
        "writes/s",
        &[writes / load_secs],
        None,
    )?;
    let page_p99 = crate::report::Summary::of(&pages)
        .map(|s| s.percentile(99.0))
        .unwrap_or(f64::NAN);
    m.figure("ListTiles page (median = p50)", "ms", &pages, None)?;
    m.figure("ListTiles page p99", "ms", &[page_p99], None)?;
    m.figure("ListTiles full listing", "ms", &listings, None)?;
    m.figure("WatchTiles: first event", "ms", &firsts, None)?;
    m.figure("WatchTiles: snapshot end", "ms", &ends, None)?;
    m.figure(
        "registry RSS idle",
        "MiB",
        &[idle],
        Some(Target::AtMost(IDLE_MIB)),
    )?;
    m.figure(
        "registry RSS loaded",
        "MiB",
        &[loaded],
        Some(Target::AtMost(LOADED_MIB)),
    )?;
    m.figure(
        "registry RSS per tile",
        "KiB",
        &[(loaded - idle) * 1024.0 / args.tiles as f64],
        None,
    )?;
    m.figure(
        "audit keys before retention",
        "keys",
        &[audit_before as f64],
        None,
    )?;
    m.figure("audit keys after retention", "keys", &[audit_after as f64], None)?;
    m.figure(
        "audit summaries after retention",
        "keys",
        &[summaries_after as f64],
        None,
    )?;
    m.figure("GetHistory of one tile, before retention", "ms", &before, None)?;
    m.figure(
        "GetHistory of a tile outside the history (its own records), before retention",
        "ms",
        &quiet_before,
        None,
    )?;
    m.figure(
        "GetHistory of one tile, last 7 days, before retention",
        "ms",
        &ranged,
        None,
    )?;
    m.figure("GetHistory of one tile, after retention", "ms", &after, None)?;
    m.figure(
        "audit index backfill (records without entries)",
        "records/s",
        &[indexed as f64 / backfill_secs.max(f64::MIN_POSITIVE)],
        None,
    )?;
    let ratio = median(&before) / median(&after).max(f64::MIN_POSITIVE);
    m.figure(
        "GetHistory before / after",
        "x",
        &[ratio],
        Some(Target::AtLeast(1.0)),
    )?;
    let m = m.details(serde_json::json!({
        "tiles": args.tiles,
        "revisions": args.revisions,
        "in_flight": args.in_flight,
        "page_size": args.page_size,
        "load_seconds": load_secs,
        "history_days": args.history_days,
        "records_per_day": args.records_per_day,
        "history_tiles": args.history_tiles,
        "history_write_seconds": history_secs,
        "retention_days": args.retention_days,
        "fold_seconds": fold_secs,
        "backfill": {"records": indexed, "seconds": backfill_secs},
        "history_before": {"records": before_entries.0, "summaries": before_entries.1},
        "history_after": {"records": after_entries.0, "summaries": after_entries.1, "folded": after_entries.2},
    }));
    report.add(m);
    drop(registry);
    drop(etcd);
    Ok(())
}

fn median(values: &[f64]) -> f64 {
    crate::report::Summary::of(values).map_or(f64::NAN, |s| s.median)
}

/// The exclusive end of a prefix range.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// The registry's gRPC health service name (as the registry crate names it;
/// the bench does not link the registry).
fn tilewave_registry_health() -> &'static str {
    "tilewave.registry.v1.RegistryService"
}
