//! Process-level tests of the region agent: real etcd (one member), the
//! `tilewave-agent` binary as a child process with fault injection on,
//! gRPC clients against it; mutual TLS on every hop (the test kit's shared
//! PKI), clients as the rollout service (agents answer only the `service`
//! role).

mod catalog;
mod credentials;
mod faults;
mod probe;
mod random_input;
mod registration;
mod roles;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result};
use tilewave_proto::agent::v1::agent_service_client::AgentServiceClient;
use tilewave_proto::agent::v1::fault_injection_service_client::FaultInjectionServiceClient;
use tilewave_proto::agent::v1::*;
use tilewave_proto::common::v1::{PartnerConfig, PartnerEndpoints};
use tilewave_testkit::{EtcdCluster, ServiceProcess, ServiceSpec, TestDir, bin_path};
use tonic::transport::Channel;

/// The region every test's agent serves.
pub const REGION: &str = "aws:eu-west-1";
/// The key prefix of the tests.
pub const PREFIX: &str = "/t/";
/// Lease TTL of the agents under test.
pub const LEASE_TTL_SECS: u64 = 3;
/// How long convergence may take.
pub const WAIT: Duration = Duration::from_secs(15);
/// Who the tests call the agent as: the rollout service's certificate.
pub const CALLER: &str = "rollout";

/// etcd plus one agent, under one test directory.
#[derive(Debug)]
pub struct Stack {
    pub agent: ServiceProcess,
    pub etcd: EtcdCluster,
    pub dir: TestDir,
}

impl Stack {
    /// Starts etcd and an agent for [`REGION`] (without a KEK).
    pub async fn start() -> Result<Self> {
        let dir = TestDir::new("agent-it")?;
        let etcd = EtcdCluster::start(1).await?;
        let agent = ServiceProcess::start(spec(&etcd, &dir)?, dir.path()).await?;
        Ok(Self { agent, etcd, dir })
    }

    /// Starts etcd and an agent for [`REGION`] whose `--kek-file` holds
    /// [`test_kek`].
    pub async fn start_with_kek() -> Result<Self> {
        Self::start_with_kek_and(&[]).await
    }

    /// As [`Stack::start_with_kek`], with more arguments.
    pub async fn start_with_kek_and(args: &[&str]) -> Result<Self> {
        let dir = TestDir::new("agent-it")?;
        let etcd = EtcdCluster::start(1).await?;
        let kek_file = dir.path().join("kek");
        std::fs::write(&kek_file, test_kek()?.to_text().as_bytes())?;
        let spec = spec(&etcd, &dir)?
            .with_args(["--kek-file", &kek_file.display().to_string()])
            .with_args(args.iter().copied());
        let agent = ServiceProcess::start(spec, dir.path()).await?;
        Ok(Self { agent, etcd, dir })
    }

    /// The agent's data directory.
    pub fn data_dir(&self) -> PathBuf {
        data_dir(&self.dir)
    }

    /// A channel to the agent as `identity`.
    pub async fn channel(&self, identity: &str) -> Result<Channel> {
        self.agent
            .channel(identity)
            .await
            .with_context(|| format!("connecting {} as {identity}", self.agent.endpoint()))
    }

    /// An AgentService client, as the rollout service.
    pub async fn client(&self) -> Result<AgentServiceClient<Channel>> {
        Ok(AgentServiceClient::new(self.channel(CALLER).await?))
    }

    /// A FaultInjectionService client, as the rollout service.
    pub async fn faults(&self) -> Result<FaultInjectionServiceClient<Channel>> {
        Ok(FaultInjectionServiceClient::new(self.channel(CALLER).await?))
    }

    /// The registration key of [`REGION`].
    pub fn agent_key(&self) -> Result<String> {
        Ok(tilewave_store::Keys::new(PREFIX)?.agent(REGION))
    }

    /// The live entries.
    pub async fn list(&self) -> Result<ListTilesResponse> {
        Ok(self
            .client()
            .await?
            .list_tiles(ListTilesRequest::default())
            .await?
            .into_inner())
    }
}

fn data_dir(dir: &TestDir) -> PathBuf {
    dir.path().join("agent-data")
}

/// How the agent is started.
pub fn spec(etcd: &EtcdCluster, dir: &TestDir) -> Result<ServiceSpec> {
    // A partner's 5xx is retried after 1, 2 and 4 s in production.
    spec_with_retry_delays(etcd, dir, "10ms,20ms,40ms")
}

/// As [`spec`], with the waits before retrying a partner's 5xx.
pub fn spec_with_retry_delays(etcd: &EtcdCluster, dir: &TestDir, delays: &str) -> Result<ServiceSpec> {
    let data = data_dir(dir);
    Ok(ServiceSpec::new("agent", bin_path("tilewave-agent")?)
        .with_args([
            "--region",
            REGION,
            "--etcd",
            &etcd.endpoints().join(","),
            "--prefix",
            PREFIX,
            "--data-dir",
            &data.display().to_string(),
            "--lease-ttl-secs",
            &LEASE_TTL_SECS.to_string(),
            "--enable-fault-injection",
            "--partner-retry-delays",
            delays,
        ])
        .without_env("TILEWAVE_KEK")
        .without_env("TILEWAVE_KEK_FILE")
        .with_health_service(Some(tilewave_agent::HEALTH_SERVICE)))
}

/// The key-encryption key of the agents started with
/// [`Stack::start_with_kek`]; the credentials service's keys in these tests.
pub fn test_kek() -> Result<tilewave_secrets::Kek> {
    Ok(tilewave_secrets::Kek::new("test-kek", [7; 32])?)
}

/// A configuration whose probe points at `base_url` + `path`.
pub fn config(base_url: &str, path: &str) -> PartnerConfig {
    PartnerConfig {
        name: "Riverflow Ingest".into(),
        base_url: base_url.into(),
        endpoints: Some(PartnerEndpoints {
            connect_path: "/connect".into(),
            test_connection_path: path.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// An apply of `tile` at `revision` with `token`, configured like the
/// riverflow fixture (a partner host that must not be contacted).
pub fn apply(tile: &str, revision: i64, token: i64) -> ApplyTileRequest {
    ApplyTileRequest {
        tile_id: tile.into(),
        revision,
        config: Some(config("https://api.riverflow.example", "/test-connection")),
        fencing_token: token,
        rollout_id: "r-1".into(),
        hidden: None,
        probe_after: false,
    }
}
