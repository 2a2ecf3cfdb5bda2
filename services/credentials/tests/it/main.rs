//! Process-level tests of the credentials service: real etcd, the real
//! registry (tiles) and `tilewave-credentials` as child processes, mutual
//! TLS on every hop (the test kit's shared PKI), a key-encryption key file
//! of the test's own.
//!
//! What needs agents (a rotation that installs, verifies and promotes) is
//! in `rotation.rs`; here: submitting (encrypted at rest, fingerprints
//! only, bad input refused with etcd unchanged), a rotation with no agent
//! to reach failing with CURRENT untouched and one CREDENTIAL_FAILED event,
//! KEK rotation with rewrap, and no start without a KEK.

mod credentials;
mod failover;
mod random_input;
mod rotation;
mod schedule;
mod secret_scan;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use tilewave_proto::credentials::v1::credentials_service_client::CredentialsServiceClient;
use tilewave_proto::registry::v1::ImportPartnerConfigRequest;
use tilewave_proto::registry::v1::registry_service_client::RegistryServiceClient;
use tilewave_testkit::pki::RELEASE_ENGINEER;
use tilewave_testkit::{EtcdCluster, ServiceProcess, ServiceSpec, TestDir, bin_path};
use tonic::transport::Channel;

pub const PREFIX: &str = "/tilewave-credentials-it/";
pub const RIVERFLOW: &str =
    include_str!("../../../../crates/core/tests/fixtures/partner-connect/riverflow-ingest.json");

/// etcd, the registry and one credentials service.
#[allow(missing_debug_implementations)]
pub struct Stack {
    pub etcd: EtcdCluster,
    pub registry: ServiceProcess,
    pub credentials: ServiceProcess,
    pub dir: TestDir,
}

/// The arguments of a credentials service of this stack.
pub fn credentials_spec(etcd: &EtcdCluster, name: &str, kek_file: &Path) -> ServiceSpec {
    ServiceSpec::new(
        name,
        bin_path("tilewave-credentials").unwrap_or_else(|_| PathBuf::from("tilewave-credentials")),
    )
    .with_args([
        "--etcd",
        &etcd.endpoints().join(","),
        "--prefix",
        PREFIX,
        "--kek-file",
        &kek_file.display().to_string(),
        "--lease-ttl-ms",
        "2000",
        "--rpc-timeout-ms",
        "1000",
        // Failed regions are retried at once here, so that a rotation that
        // cannot succeed fails in real time; the retries' waits have a test
        // of their own on the virtual clock.
        "--rotation-retry-delay-ms",
        "0",
    ])
    .with_health_service(Some(tilewave_credentials::server::HEALTH_SERVICE))
}

impl Stack {
    /// A stack whose credentials service reads the keys in `kek_text`.
    pub async fn start(kek_text: &str) -> Result<Self> {
        Self::start_with_regions(kek_text, &[]).await
    }

    /// As [`Stack::start`], with the credentials service's region catalog
    /// narrowed to `regions` (none: the whole catalog).
    pub async fn start_with_regions(kek_text: &str, regions: &[&str]) -> Result<Self> {
        Self::start_full(kek_text, regions, None).await
    }

    /// As [`Stack::start_with_regions`], on a virtual clock created at
    /// `clock_at` (standing still) before any service starts.
    pub async fn start_full(
        kek_text: &str,
        regions: &[&str],
        clock_at: Option<jiff::Timestamp>,
    ) -> Result<Self> {
        Self::start_with_env(kek_text, regions, clock_at, &[]).await
    }

    /// As [`Stack::start_full`], the registry and the credentials service
    /// started with `env` added to their environment (say, the `OTEL_*`
    /// variables of a test's span receiver).
    pub async fn start_with_env(
        kek_text: &str,
        regions: &[&str],
        clock_at: Option<jiff::Timestamp>,
        env: &[(String, String)],
    ) -> Result<Self> {
        let with_env = |spec: ServiceSpec| env.iter().fold(spec, |s, (k, v)| s.with_env(k, v));
        let dir = TestDir::new("credentials-it")?;
        let etcd = EtcdCluster::start(1).await?;
        if let Some(at) = clock_at {
            let store = etcd.store(PREFIX).await?;
            tilewave_store::VirtualClock::start(&store, at, 0.0, &tilewave_store::Actor::new("test")).await?;
        }
        let registry = ServiceProcess::start(
            with_env(
                ServiceSpec::new("registry", bin_path("tilewave-registry")?)
                    .with_args(["--etcd", &etcd.endpoints().join(","), "--prefix", PREFIX])
                    .with_health_service(Some("tilewave.registry.v1.RegistryService")),
            ),
            dir.path(),
        )
        .await?;
        let kek = dir.path().join("kek");
        std::fs::write(&kek, kek_text)?;
        let mut spec = with_env(credentials_spec(&etcd, "credentials", &kek));
        if !regions.is_empty() {
            spec = spec.with_args(["--regions".to_owned(), regions.join(",")]);
        }
        let credentials = ServiceProcess::start(spec, dir.path()).await?;
        Ok(Self {
            etcd,
            registry,
            credentials,
            dir,
        })
    }

    /// The credentials service as a release engineer.
    pub async fn client(&self) -> Result<CredentialsServiceClient<Channel>> {
        Ok(CredentialsServiceClient::new(
            self.credentials.channel(RELEASE_ENGINEER).await?,
        ))
    }

    /// Imports riverflow as `id`.
    pub async fn tile(&self, id: &str) -> Result<()> {
        RegistryServiceClient::new(self.registry.channel(RELEASE_ENGINEER).await?)
            .import_partner_config(ImportPartnerConfigRequest {
                config_json: RIVERFLOW.into(),
                id: id.into(),
                ..Default::default()
            })
            .await
            .context("import")?;
        Ok(())
    }

    /// Every event stored (`events/`), decoded.
    pub async fn events(&self) -> Result<Vec<tilewave_proto::common::v1::Event>> {
        let prefix = keys()?.events();
        Ok(self
            .etcd
            .dump(PREFIX)
            .await?
            .into_iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .filter_map(|(_, (v, _))| prost::Message::decode(v.as_slice()).ok())
            .collect())
    }

    /// Every key and value under the prefix but the owner records.
    pub async fn dump(&self) -> Result<BTreeMap<String, Vec<u8>>> {
        let owners = keys()?.owners();
        Ok(self
            .etcd
            .dump(PREFIX)
            .await?
            .into_iter()
            .filter(|(k, _)| !k.starts_with(&owners))
            .map(|(k, (v, _))| (k, v))
            .collect())
    }
}

/// The tests' key builder (every key as the services build it).
pub fn keys() -> Result<tilewave_store::Keys> {
    Ok(tilewave_store::Keys::new(PREFIX)?)
}

/// A keyring file's text with one fresh key per id, the first primary.
pub fn keyring_text(ids: &[&str]) -> Result<(String, Vec<tilewave_secrets::Kek>)> {
    let keys: Vec<tilewave_secrets::Kek> = ids
        .iter()
        .map(|id| tilewave_secrets::Kek::generate(id))
        .collect::<Result<_, _>>()?;
    let text = keys
        .iter()
        .map(|k| k.to_text().to_string())
        .collect::<Vec<_>>()
        .join("\n");
    Ok((text, keys))
}
