//! GetTile's revision summaries come from the replica's summary cache
//! (issue 18: they were one etcd range read per call): right after each
//! UpdateTile on the replica written to (read your writes), on a second
//! replica once its watch has the writes, and for an older revision too;
//! always what etcd holds under `tiles/<id>/rev/`.

use std::time::Duration;

use anyhow::Context as _;
use prost::Message as _;
use tilewave_testkit::eventually;
use tokio::time::Instant;

use crate::*;

/// The summaries etcd's revision snapshots of `id` make, as GetTile made
/// them when it read them from etcd.
async fn stored_summaries(stack: &Stack, id: &str) -> Result<Vec<(i64, String, String)>> {
    let needle = format!("tiles/{id}/rev/");
    let mut out = Vec::new();
    for (key, (bytes, _)) in stack.dump().await? {
        if key.contains(&needle) {
            let t = Tile::decode(bytes.as_slice())?;
            let note = t.maintenance.map(|m| m.summary).unwrap_or_default();
            out.push((t.revision, t.created_by, note));
        }
    }
    Ok(out)
}

fn summaries(r: &GetTileResponse) -> Vec<(i64, String, String)> {
    r.revisions
        .iter()
        .map(|s| (s.revision, s.created_by.clone(), s.note.clone()))
        .collect()
}

#[tokio::test]
async fn get_tile_lists_every_revision_on_every_replica_after_updates() -> Result<()> {
    let stack = Stack::start(2).await?;
    let mut a = stack.client(0).await?;
    let mut b = stack.client(1).await?;
    let mut tile = import(&mut a, RIVERFLOW, "").await?;
    let id = tile.id.clone();
    for n in 2..=4 {
        tile = a
            .update_tile(UpdateTileRequest {
                id: id.clone(),
                etag: tile.etag,
                source: Some(update_tile_request::Source::ConfigJson(RIVERFLOW.into())),
                note: format!("v{n}"),
                ..Default::default()
            })
            .await?
            .into_inner()
            .tile
            .context("tile")?;
        assert_eq!(tile.revision, n);
        // Read your writes: the replica written to lists the new revision
        // at once.
        let got = get_at(&mut a, &id, 0).await?;
        let revs: Vec<i64> = got.revisions.iter().map(|s| s.revision).collect();
        assert_eq!(revs, (1..=n).collect::<Vec<_>>(), "after update {n}: {got:?}");
        let created = got.revisions.last().and_then(|s| s.created_at);
        assert_eq!(created, tile.updated_at, "the new revision's created_at");
    }
    let want = stored_summaries(&stack, &id).await?;
    assert_eq!(want.len(), 4, "{want:?}");
    assert_eq!(summaries(&get_at(&mut a, &id, 0).await?), want);
    // The other replica, through its own watch.
    let on_b = eventually(
        "the second replica lists revision 4",
        Duration::from_secs(30),
        || {
            let mut b = b.clone();
            let id = id.clone();
            async move {
                let r = get_at(&mut b, &id, 0).await.ok()?;
                (r.revisions.len() == 4).then_some(r)
            }
        },
    )
    .await?;
    assert_eq!(summaries(&on_b), want);
    // An older revision: its own document, the same list.
    let old = get_at(&mut b, &id, 2).await?;
    assert_eq!(old.tile.as_ref().map(|t| t.revision), Some(2));
    assert_eq!(summaries(&old), want);
    Ok(())
}

/// Measures (not run by default; BENCHMARKS.md, "Registry reads against a
/// health check"): one registry, a tile with 5 revisions, one mutual-TLS
/// connection; rounds of a block of 200 gRPC health checks, then 200
/// GetTile, then 200 ListTiles, one call at a time. Prints, per call, the
/// p50 and p99 over every call and the median (and spread) of the
/// per-round ratios to the health check's block.
///
/// `BENCH_ROUNDS=21 cargo nextest run -p tilewave-registry --test it --run-ignored only -E 'test(measure_reads_against_health)' --no-capture`
#[tokio::test]
#[ignore = "a measurement: run by hand (BENCHMARKS.md)"]
async fn measure_reads_against_health() -> Result<()> {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(11);
    const BLOCK: usize = 200;
    let stack = Stack::start(1).await?;
    let channel = stack.replicas[0]
        .channel(tilewave_testkit::pki::RELEASE_ENGINEER)
        .await?;
    let mut c = RegistryServiceClient::new(channel.clone());
    let mut h = HealthClient::new(channel);
    let mut tile = import(&mut c, RIVERFLOW, "").await?;
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
            .context("tile")?;
    }
    let id = tile.id.clone();
    // [health, get, list]: every call's latency, and each round's block time.
    let mut calls: [Vec<Duration>; 3] = Default::default();
    let mut ratios: [Vec<f64>; 2] = Default::default();
    for round in 0..=rounds {
        let mut block = [Duration::ZERO; 3];
        for (v, total) in block.iter_mut().enumerate() {
            for _ in 0..BLOCK {
                let t = Instant::now();
                match v {
                    0 => {
                        h.check(HealthCheckRequest {
                            service: tilewave_registry::HEALTH_SERVICE.into(),
                        })
                        .await?;
                    }
                    1 => {
                        get_at(&mut c, &id, 0).await?;
                    }
                    _ => {
                        c.list_tiles(ListTilesRequest::default()).await?;
                    }
                }
                let d = t.elapsed();
                *total += d;
                if round > 0 {
                    calls[v].push(d);
                }
            }
        }
        // Round 0 warms the connection and caches up.
        if round > 0 {
            for v in 0..2 {
                ratios[v].push(block[v + 1].as_secs_f64() / block[0].as_secs_f64());
            }
        }
    }
    let pct = |v: &mut Vec<Duration>, p: f64| {
        v.sort();
        let i = ((v.len() as f64 - 1.0) * p).round() as usize;
        v[i].as_secs_f64() * 1e6
    };
    let mid = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        (v[n / 2], v[n / 4], v[(3 * n) / 4])
    };
    for (v, name) in ["health check", "GetTile", "ListTiles"].iter().enumerate() {
        let (p50, p99) = (pct(&mut calls[v], 0.5), pct(&mut calls[v], 0.99));
        let ratio = if v == 0 {
            String::from("1 (baseline)")
        } else {
            let (m, lo, hi) = mid(&mut ratios[v - 1]);
            format!("{m:.2} ({lo:.2}-{hi:.2})")
        };
        println!("{name}: p50 {p50:.0} us, p99 {p99:.0} us, per-round ratio to health {ratio}");
    }
    Ok(())
}
