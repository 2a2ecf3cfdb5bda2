//! What mutual TLS costs a registry call (issue 13: "measure a CLI call and
//! a service-to-service call with TLS against without").
//!
//! Registries run in this process on one real etcd (started by the test
//! kit), each under a key prefix of its own, built with
//! `tilewave_tls::server` and called through `tilewave_tls::endpoint`, the
//! same functions the services and the CLI use:
//! - `plain`: no TLS (today's default), the baseline;
//! - `plain_again`: the same again, the A/A control (the band of noise);
//! - `mtls`: the certificates of a fresh `Ca` (registry certificate,
//!   client certificate required).
//!
//! Two kinds of call: `GetTile` over one connection kept open (what a
//! service does: connections are reused), and a new connection per
//! `GetTile` (what one CLI command does: connect, handshake, one call).
//! Variants are timed in interleaved rounds; quote each variant's median
//! per-round ratio to `plain`, with `plain_again` as the noise band.
//!
//! `cargo bench -p tilewave-registry --bench tls_overhead`
//! (`BENCH_ROUNDS=<n>` for more or fewer rounds).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use std::hint::black_box;
use tilewave_proto::registry::v1::registry_service_client::RegistryServiceClient;
use tilewave_proto::registry::v1::registry_service_server::RegistryServiceServer;
use tilewave_proto::registry::v1::{GetTileRequest, ImportPartnerConfigRequest};
use tilewave_registry::Registry;
use tilewave_store::{Store, StoreConfig};
use tilewave_testkit::ratios::{self, Variant, interleaved};
use tilewave_testkit::{EtcdCluster, TestDir};
use tilewave_tls::files::write_pair;
use tilewave_tls::{Ca, Tls};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tonic::transport::Channel;

const RIVERFLOW: &str =
    include_str!("../../../crates/core/tests/fixtures/partner-connect/riverflow-ingest.json");

/// One registry under test: where it is, how to reach it, a kept client.
struct End {
    addr: SocketAddr,
    tls: Option<Tls>,
    client: RegistryServiceClient<Channel>,
    tile: String,
}

impl End {
    fn request(&self) -> GetTileRequest {
        GetTileRequest {
            id: self.tile.clone(),
            revision: 0,
        }
    }

    /// One `GetTile` over the kept connection.
    async fn get(&mut self) -> Result<()> {
        let req = self.request();
        black_box(self.client.get_tile(req).await?);
        Ok(())
    }

    /// A new connection (and handshake), then one `GetTile`.
    async fn connect_and_get(&self) -> Result<()> {
        let channel = tilewave_tls::endpoint(&self.addr.to_string(), self.tls.as_ref())?
            .connect()
            .await?;
        black_box(
            RegistryServiceClient::new(channel)
                .get_tile(self.request())
                .await?,
        );
        Ok(())
    }
}

/// Starts a registry under `prefix`, with mutual TLS when `tls` is given
/// (the server's and the client's material), and imports riverflow.
async fn start(etcd: &EtcdCluster, prefix: &str, tls: Option<(Tls, Tls)>) -> Result<End> {
    let store = Store::connect(StoreConfig::new(etcd.endpoints()).with_prefix(prefix)).await?;
    let clock = tilewave_store::clock::domain_clock(&store).await?;
    let registry = Registry::new(store.with_clock(Arc::clone(&clock)), clock).await?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr: SocketAddr = listener.local_addr()?;
    let (server_tls, client_tls) = match tls {
        Some((s, c)) => (Some(s), Some(c)),
        None => (None, None),
    };
    tokio::spawn(
        tilewave_tls::server("bench", server_tls.as_ref())?
            .add_service(RegistryServiceServer::new(registry))
            .serve_with_incoming(tilewave_service::incoming(listener)),
    );
    let channel = tilewave_tls::endpoint(&addr.to_string(), client_tls.as_ref())?
        .connect()
        .await?;
    let mut client = RegistryServiceClient::new(channel);
    let tile = client
        .import_partner_config(ImportPartnerConfigRequest {
            config_json: RIVERFLOW.to_owned(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .tile
        .context("the imported tile")?;
    Ok(End {
        addr,
        tls: client_tls,
        client,
        tile: tile.id,
    })
}

/// The registry's and a user's TLS material from a fresh CA, as files.
fn certificates(dir: &TestDir) -> Result<(Tls, Tls)> {
    let ca = Ca::generate()?;
    let d = dir.path();
    let (ca_cert, _) = write_pair(d, "ca", &ca.issued(), false)?;
    let (sc, sk) = write_pair(d, "registry", &ca.issue_service("registry", &[])?, false)?;
    let (cc, ck) = write_pair(d, "bench", &ca.issue_client("bench")?, false)?;
    Ok((
        Tls::from_files(&sc, &sk, &ca_cert)?,
        Tls::from_files(&cc, &ck, &ca_cert)?,
    ))
}

fn variants<'a>(rt: &'a Runtime, ends: &'a mut [End; 3], reconnect: bool) -> Vec<Variant<'a>> {
    let [plain, again, mtls] = ends;
    let block = move |end: &mut End, n: u32| -> Duration {
        rt.block_on(async {
            let start = tokio::time::Instant::now();
            for _ in 0..n {
                let ok = if reconnect {
                    end.connect_and_get().await
                } else {
                    end.get().await
                };
                if let Err(error) = ok {
                    panic!("a call failed: {error:#}");
                }
            }
            start.elapsed()
        })
    };
    vec![
        Variant::new("plain", move |n| block(plain, n)),
        Variant::new("plain_again", move |n| block(again, n)),
        Variant::new("mtls", move |n| block(mtls, n)),
    ]
}

fn main() -> Result<()> {
    let rounds = ratios::rounds_from_env(41);
    let dir = TestDir::new("tls-bench")?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut ends = rt.block_on(async {
        let etcd = EtcdCluster::start(1).await?;
        let ends = [
            start(&etcd, "/bench-plain/", None).await?,
            start(&etcd, "/bench-again/", None).await?,
            start(&etcd, "/bench-mtls/", Some(certificates(&dir)?)).await?,
        ];
        anyhow::Ok((etcd, ends))
    })?;
    let (_etcd, ends) = &mut ends;
    for _ in 0..20 {
        for end in ends.iter_mut() {
            rt.block_on(async {
                end.get().await?;
                end.connect_and_get().await
            })?;
        }
    }
    let kept = interleaved(&mut variants(&rt, ends, false), rounds, 100);
    ratios::report("GetTile over a kept connection, 100 calls a block", &kept);
    let fresh = interleaved(&mut variants(&rt, ends, true), rounds, 10);
    ratios::report(
        "a new connection (TCP + handshake) and one GetTile, 10 a block",
        &fresh,
    );
    Ok(())
}
