//! Process-level tests of the registry: real etcd, two `tilewave-registry`
//! replicas as child processes, gRPC clients against both; mutual TLS on
//! every hop (the test kit's shared PKI), clients as a release engineer
//! unless a test says otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bounded;
mod connections;
mod encoded;
mod lifecycle;
mod no_certificate;
mod random_input;
mod readiness;
mod retention;
mod revisions;
mod snapshot_size;
mod tls;
mod watch;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, Result};
use tilewave_proto::common::v1::SignOffRole;
use tilewave_proto::registry::v1::registry_service_client::RegistryServiceClient;
use tilewave_proto::registry::v1::*;
use tilewave_testkit::pki::RELEASE_ENGINEER;
use tilewave_testkit::{EtcdCluster, ServiceProcess, ServiceSpec, TestDir, bin_path};
use tonic::transport::Channel;

/// The shared fixtures, kept in the core crate.
pub const RIVERFLOW: &str =
    include_str!("../../../../crates/core/tests/fixtures/partner-connect/riverflow-ingest.json");
pub const LUMEN: &str = include_str!("../../../../crates/core/tests/fixtures/partner-connect/lumen-bi.json");
pub const QUARRY: &str =
    include_str!("../../../../crates/core/tests/fixtures/partner-connect/self-test-quarry.json");
pub const BROKEN: &str =
    include_str!("../../../../crates/core/tests/fixtures/partner-connect/invalid-several-errors.json");
pub const BROKEN_EXPECTED: &str =
    include_str!("../../../../crates/core/tests/fixtures/partner-connect/invalid-several-errors.expected");

/// Every launch role.
pub const ROLES: [SignOffRole; 5] = [
    SignOffRole::Engineering,
    SignOffRole::PartnerSolutionArchitect,
    SignOffRole::Product,
    SignOffRole::Partner,
    SignOffRole::Legal,
];

/// etcd plus `n` registry replicas, all under one test directory.
#[allow(missing_debug_implementations)]
pub struct Stack {
    pub etcd: EtcdCluster,
    pub replicas: Vec<ServiceProcess>,
    pub dir: TestDir,
}

pub const PREFIX: &str = "/tilewave-it/";

impl Stack {
    pub async fn start(replicas: usize) -> Result<Self> {
        let dir = TestDir::new("registry-it")?;
        let etcd = EtcdCluster::start(1).await?;
        let binary = bin_path("tilewave-registry")?;
        let mut procs = Vec::new();
        for i in 0..replicas {
            let spec = ServiceSpec::new(format!("registry-{i}"), binary.clone())
                .with_args(["--etcd", &etcd.endpoints().join(","), "--prefix", PREFIX])
                .with_health_service(Some(tilewave_registry::HEALTH_SERVICE));
            procs.push(ServiceProcess::start(spec, dir.path()).await?);
        }
        Ok(Self {
            etcd,
            replicas: procs,
            dir,
        })
    }

    /// A client of replica `i` as a release engineer.
    pub async fn client(&self, i: usize) -> Result<RegistryServiceClient<Channel>> {
        self.client_as(i, RELEASE_ENGINEER).await
    }

    /// A client of replica `i` presenting `identity`'s certificate.
    pub async fn client_as(&self, i: usize, identity: &str) -> Result<RegistryServiceClient<Channel>> {
        let channel = self.replicas[i]
            .channel(identity)
            .await
            .with_context(|| format!("connecting replica {i} as {identity}"))?;
        Ok(RegistryServiceClient::new(channel))
    }

    /// Every key and value under the prefix: to prove a refused request
    /// changed nothing.
    pub async fn dump(&self) -> Result<BTreeMap<String, (Vec<u8>, i64)>> {
        self.etcd.dump(PREFIX).await
    }
}

/// A request carrying the name the caller claims (ignored with TLS but from
/// the `service` role: the certificate identity is the actor).
pub fn as_actor<T>(actor: &str, msg: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    if let Ok(v) = actor.parse() {
        req.metadata_mut().insert("x-tilewave-actor", v);
    }
    req
}

pub async fn import(c: &mut RegistryServiceClient<Channel>, json: &str, workspace: &str) -> Result<Tile> {
    let resp = c
        .import_partner_config(as_actor(
            "alice",
            ImportPartnerConfigRequest {
                config_json: json.to_string(),
                workspace_id: workspace.to_string(),
                ..Default::default()
            },
        ))
        .await?;
    resp.into_inner().tile.context("no tile in response")
}

/// Every open validation case of the tile's latest revision passed: the
/// gate of the engineering sign-off.
pub async fn pass_checklist(c: &mut RegistryServiceClient<Channel>, id: &str) -> Result<Tile> {
    let resp = c
        .record_validation(RecordValidationRequest {
            id: id.into(),
            all_open: true,
            outcome: ValidationOutcome::Pass as i32,
            note: "ran in the test workspace".into(),
            ..Default::default()
        })
        .await?;
    resp.into_inner().tile.context("no tile")
}

/// The go-to-market items a release engineer sets (all but the agreement,
/// which is legal's sign-off), done: the gate of a GA date.
pub const GTM_ITEMS: [&str; 4] = ["mini-site", "logo", "blog", "docs"];

/// Every settable go-to-market item of the tile done, with an owner, a due
/// date and a link.
pub async fn gtm_done(c: &mut RegistryServiceClient<Channel>, id: &str) -> Result<Tile> {
    let mut tile = None;
    for item in GTM_ITEMS {
        let resp = c
            .set_gtm_item(SetGtmItemRequest {
                id: id.into(),
                item: item.into(),
                status: GtmStatus::Done as i32,
                owner: "partner-marketing".into(),
                due: "2026-12-01".into(),
                link: format!("https://partner.example/{item}"),
                ..Default::default()
            })
            .await?;
        tile = resp.into_inner().tile;
    }
    tile.context("no tile")
}

pub async fn get(c: &mut RegistryServiceClient<Channel>, id: &str) -> Result<Tile> {
    let resp = c
        .get_tile(GetTileRequest {
            id: id.into(),
            revision: 0,
        })
        .await?;
    resp.into_inner().tile.context("no tile")
}

/// GetTile of `revision` (0: the latest), the whole answer.
pub async fn get_at(
    c: &mut RegistryServiceClient<Channel>,
    id: &str,
    revision: i64,
) -> Result<GetTileResponse> {
    Ok(c.get_tile(GetTileRequest {
        id: id.into(),
        revision,
    })
    .await?
    .into_inner())
}

pub fn ts(t: jiff::Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.as_second(),
        nanos: t.subsec_nanosecond(),
    }
}

pub const WAIT: Duration = Duration::from_secs(10);
