//! What telemetry costs the registry's own calls when no `OTEL_*` variable
//! is set (issue 5: "the latency of a call is unchanged within noise"),
//! against the same registry with no telemetry at all.
//!
//! Three registries run in this process on one real etcd (started by the
//! test kit), each under a key prefix of its own so that none sees the
//! others' writes:
//! - `plain`: served without the telemetry layer, called over a plain
//!   channel, no subscriber: tilewave without telemetry;
//! - `plain_again`: the same again, the A/A control (how far two things
//!   that differ in nothing spread in the same minutes);
//! - `no_otel_env`: what a service runs by default: the server layer (a
//!   span per RPC, W3C context, RPC metrics), the handler's and etcd's
//!   spans, a traced channel, JSON logs at info, no exporter; each call
//!   inside a caller's span, as the CLI makes it.
//!
//! The calls are the two kinds the CLI makes: `GetTile` (the tile from the
//! watch cache, its revision list from one etcd range read) and
//! `SetTestWorkspace` (a write: read from etcd, an
//! audited, etag-guarded transaction, then the wait for the replica's own
//! cache). Client, registries and etcd client share one current-thread
//! runtime, so a call's latency is the work on its path plus etcd's.
//! Variants are timed in interleaved rounds; the figure to quote is each
//! variant's median per-round ratio to `plain`, with `plain_again` as the
//! band of noise.
//!
//! `cargo bench -p tilewave-registry --bench telemetry_overhead`
//! (`BENCH_ROUNDS=<n>` for more or fewer rounds).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use std::hint::black_box;
use tilewave_proto::registry::v1::registry_service_client::RegistryServiceClient;
use tilewave_proto::registry::v1::registry_service_server::RegistryServiceServer;
use tilewave_proto::registry::v1::{GetTileRequest, ImportPartnerConfigRequest, SetTestWorkspaceRequest};
use tilewave_registry::Registry;
use tilewave_store::{Store, StoreConfig};
use tilewave_telemetry::{Config, Pipeline, TracedChannel, server_layer, traced_channel};
use tilewave_testkit::EtcdCluster;
use tilewave_testkit::ratios::{self, Variant, interleaved};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tonic::transport::{Channel, Server};
use tracing::Instrument as _;

const RIVERFLOW: &str =
    include_str!("../../../crates/core/tests/fixtures/partner-connect/riverflow-ingest.json");
/// The two workspaces a write alternates between (every write changes the tile).
const WORKSPACES: [&str; 2] = ["6051921418418893", "6051921418418894"];

/// A client of one of the registries.
#[derive(Clone)]
enum Client {
    Plain(RegistryServiceClient<Channel>),
    Traced(RegistryServiceClient<TracedChannel>),
}

/// One registry under test: its client, its tile and the tile's etag.
struct End {
    client: Client,
    tile: String,
    etag: i64,
    writes: usize,
}

impl End {
    /// One `GetTile`; through the traced end inside a caller's span.
    async fn get(&mut self) -> Result<i64> {
        let req = GetTileRequest {
            id: self.tile.clone(),
            revision: 0,
        };
        let resp = match &mut self.client {
            Client::Plain(c) => c.get_tile(req).await?,
            Client::Traced(c) => {
                c.get_tile(req)
                    .instrument(tracing::info_span!("bench.command"))
                    .await?
            }
        };
        Ok(resp.into_inner().tile.map_or(0, |t| t.etag))
    }

    /// One `SetTestWorkspace` naming the etag the last write returned.
    async fn write(&mut self) -> Result<()> {
        self.writes += 1;
        let req = SetTestWorkspaceRequest {
            id: self.tile.clone(),
            workspace_id: WORKSPACES[self.writes % 2].to_owned(),
            etag: self.etag,
        };
        let resp = match &mut self.client {
            Client::Plain(c) => c.set_test_workspace(req).await?,
            Client::Traced(c) => {
                c.set_test_workspace(req)
                    .instrument(tracing::info_span!("bench.command"))
                    .await?
            }
        };
        self.etag = resp.into_inner().tile.context("a tile in the response")?.etag;
        Ok(())
    }
}

/// Starts a registry under `prefix`, with or without the telemetry layer,
/// and imports the riverflow fixture into it.
async fn start(etcd: &EtcdCluster, prefix: &str, traced: bool) -> Result<End> {
    let store = Store::connect(StoreConfig::new(etcd.endpoints()).with_prefix(prefix)).await?;
    let clock = tilewave_store::clock::domain_clock(&store).await?;
    let registry = Registry::new(store.with_clock(Arc::clone(&clock)), clock).await?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr: SocketAddr = listener.local_addr()?;
    let incoming = tilewave_service::incoming(listener);
    let service = RegistryServiceServer::new(registry);
    if traced {
        tokio::spawn(
            Server::builder()
                .layer(server_layer())
                .add_service(service)
                .serve_with_incoming(incoming),
        );
    } else {
        tokio::spawn(
            Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming),
        );
    }
    let channel = Channel::from_shared(format!("http://{addr}"))?.connect().await?;
    let mut client = if traced {
        Client::Traced(RegistryServiceClient::new(traced_channel(channel)))
    } else {
        Client::Plain(RegistryServiceClient::new(channel))
    };
    let import = ImportPartnerConfigRequest {
        config_json: RIVERFLOW.to_owned(),
        ..Default::default()
    };
    let tile = match &mut client {
        Client::Plain(c) => c.import_partner_config(import).await?,
        Client::Traced(c) => c.import_partner_config(import).await?,
    }
    .into_inner()
    .tile
    .context("the imported tile")?;
    Ok(End {
        client,
        tile: tile.id,
        etag: tile.etag,
        writes: 0,
    })
}

/// The subscriber a service runs with when no `OTEL_*` variable is set.
fn service_default() -> Result<tracing::Dispatch> {
    let config = Config::from_lookup("tilewave-registry", |_| None);
    let pipeline = Pipeline::new(&config)?;
    anyhow::ensure!(!pipeline.exports(), "no OTEL variables, no exporter");
    Ok(tracing::Dispatch::new(pipeline.full_subscriber(&config)?))
}

/// The three variants of one kind of call (`write` or not), in order:
/// `plain` (the baseline), `plain_again`, `no_otel_env`.
fn variants<'a>(
    rt: &'a Runtime,
    ends: &'a mut [End; 3],
    subscriber: &'a tracing::Dispatch,
    write: bool,
) -> Vec<Variant<'a>> {
    let [plain, again, traced] = ends;
    let block = move |end: &mut End, n: u32| -> Duration {
        rt.block_on(async {
            let start = tokio::time::Instant::now();
            for _ in 0..n {
                let ok = if write {
                    end.write().await.map(|()| 0)
                } else {
                    end.get().await
                };
                if let Err(error) = ok {
                    panic!(
                        "a {} call failed: {error:#}",
                        if write { "write" } else { "read" }
                    );
                }
                black_box(ok.ok());
            }
            start.elapsed()
        })
    };
    vec![
        Variant::new("plain", move |n| block(plain, n)),
        Variant::new("plain_again", move |n| block(again, n)),
        Variant::new("no_otel_env", move |n| {
            tracing::dispatcher::with_default(subscriber, || block(traced, n))
        }),
    ]
}

fn main() -> Result<()> {
    let rounds = ratios::rounds_from_env(41);
    // The service's subscriber exists before any callsite is hit, so every
    // span callsite (the layer's, the handlers', the store's) registers its
    // interest with it (see BENCHMARKS.md, "A measurement trap").
    let subscriber = service_default()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut ends = rt.block_on(async {
        let etcd = EtcdCluster::start(1).await?;
        let ends = [
            start(&etcd, "/bench-plain/", false).await?,
            start(&etcd, "/bench-again/", false).await?,
            tracing::dispatcher::with_default(&subscriber, || start(&etcd, "/bench-traced/", true)).await?,
        ];
        anyhow::Ok((etcd, ends))
    })?;
    let (_etcd, ends) = &mut ends;
    // Warm-up: every end reads and writes before anything is timed.
    for _ in 0..20 {
        for (i, end) in ends.iter_mut().enumerate() {
            let warm = async {
                end.get().await?;
                end.write().await
            };
            if i == 2 {
                tracing::dispatcher::with_default(&subscriber, || rt.block_on(warm))?;
            } else {
                rt.block_on(warm)?;
            }
        }
    }
    let reads = interleaved(&mut variants(&rt, ends, &subscriber, false), rounds, 100);
    ratios::report(
        "GetTile (the cache plus an etcd range of its revisions), 100 calls a block",
        &reads,
    );
    let writes = interleaved(&mut variants(&rt, ends, &subscriber, true), rounds, 10);
    ratios::report(
        "SetTestWorkspace (an audited etcd transaction), 10 calls a block",
        &writes,
    );
    Ok(())
}
