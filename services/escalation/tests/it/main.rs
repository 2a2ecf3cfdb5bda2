//! Process-level tests of the escalation service: real etcd and
//! `tilewave-escalation` as child processes, mutual TLS (the test kit's
//! shared PKI), a virtual clock standing still that the tests move, and a
//! local webhook receiver that records every request and fails the test
//! on any page it did not expect.
//!
//! - `ladder.rs`: an unacknowledged SEV1 climbs the ladder at exactly the
//!   configured delays and repeats; acknowledging stops it; a receiver
//!   failing twice gets each page once, signatures verifying.
//! - `events.rs`: three ROLLOUT_FAILED events of one wave make one
//!   incident with a count of three.
//! - `failover.rs`: the ladder's owner killed with SIGKILL between two
//!   levels; the next level still fires once, on time.
//! - `bad_input.rs`: refusals with clear errors and etcd unchanged.

mod bad_input;
mod events;
mod failover;
mod ladder;
mod mitigate;
mod oncall;
mod rewrap;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result};
use jiff::{SignedDuration, Timestamp};
use tilewave_proto::escalation::v1::escalation_service_client::EscalationServiceClient;
use tilewave_proto::escalation::v1::*;
use tilewave_store::{Actor, VirtualClock};
use tilewave_testkit::pki::ONCALL;
use tilewave_testkit::pki::RELEASE_ENGINEER;
use tilewave_testkit::{EtcdCluster, ServiceProcess, ServiceSpec, TestDir, WebhookReceiver, bin_path};
use tonic::transport::Channel;

pub const PREFIX: &str = "/tilewave-escalation-it/";
/// Where the virtual clock starts (a Monday, 10:00 UTC).
pub const T0: &str = "2026-03-02T10:00:00Z";
/// How long the tests wait for something to happen.
pub const WAIT: Duration = Duration::from_secs(30);

/// etcd, a virtual clock, escalation replicas and a webhook receiver.
#[allow(missing_debug_implementations)]
pub struct Stack {
    pub etcd: EtcdCluster,
    pub replicas: Vec<ServiceProcess>,
    pub receiver: WebhookReceiver,
    pub clock: std::sync::Arc<VirtualClock>,
    pub dir: TestDir,
}

/// The start of the virtual clock.
pub fn t0() -> Timestamp {
    T0.parse().unwrap_or(Timestamp::UNIX_EPOCH)
}

/// The arguments of one escalation replica.
pub fn spec(etcd: &EtcdCluster, name: &str, kek_file: &Path) -> ServiceSpec {
    ServiceSpec::new(
        name,
        bin_path("tilewave-escalation").unwrap_or_else(|_| PathBuf::from("tilewave-escalation")),
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
        "--webhook-retry-first-ms",
        "50",
        "--webhook-retry-cap-ms",
        "200",
        "--webhook-retry-attempts",
        "5",
        "--replica",
        name,
    ])
    .with_health_service(Some(tilewave_escalation::server::HEALTH_SERVICE))
}

impl Stack {
    /// A stack with `n` escalation replicas on a virtual clock standing
    /// still at [`T0`].
    pub async fn start(n: usize) -> Result<Self> {
        let dir = TestDir::new("escalation-it")?;
        let etcd = EtcdCluster::start(1).await?;
        let store = etcd.store(PREFIX).await?;
        let clock = VirtualClock::start(&store, t0(), 0.0, &Actor::new("test")).await?;
        let kek = dir.path().join("kek");
        let key = tilewave_secrets::Kek::generate("k1")?;
        std::fs::write(&kek, &*key.to_text())?;
        let mut replicas = Vec::new();
        for i in 0..n {
            // The certificate is the service's; the name tells replicas apart.
            let s = spec(&etcd, &format!("escalation-{i}"), &kek);
            replicas.push(ServiceProcess::start(s, dir.path()).await?);
        }
        let receiver = WebhookReceiver::start().await?;
        Ok(Self {
            etcd,
            replicas,
            receiver,
            clock,
            dir,
        })
    }

    /// Replica `i` as `who`.
    pub async fn client_of(&self, i: usize, who: &str) -> Result<EscalationServiceClient<Channel>> {
        let replica = self.replicas.get(i).context("no such replica")?;
        Ok(EscalationServiceClient::new(replica.channel(who).await?))
    }

    /// The first replica as a release engineer.
    pub async fn client(&self) -> Result<EscalationServiceClient<Channel>> {
        self.client_of(0, RELEASE_ENGINEER).await
    }

    /// The first replica as the on-call.
    pub async fn oncall(&self) -> Result<EscalationServiceClient<Channel>> {
        self.client_of(0, ONCALL).await
    }

    /// Moves the virtual clock to `T0 + by`.
    pub async fn at(&self, by: SignedDuration) -> Result<()> {
        self.clock.set(t0() + by, &Actor::new("test")).await?;
        Ok(())
    }

    /// Every key and value under the prefix but owner records.
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

    /// The incident `id`.
    pub async fn incident(&self, id: &str) -> Result<Incident> {
        self.client()
            .await?
            .get_incident(GetIncidentRequest { id: id.into() })
            .await?
            .into_inner()
            .incident
            .context("incident")
    }
}

/// The tests' key builder.
pub fn keys() -> Result<tilewave_store::Keys> {
    Ok(tilewave_store::Keys::new(PREFIX)?)
}

/// A wire duration of `mins` minutes.
pub fn mins(mins: i64) -> prost_types::Duration {
    prost_types::Duration {
        seconds: mins * 60,
        nanos: 0,
    }
}

/// A webhook target.
pub fn webhook(name: &str, url: &str) -> Target {
    Target {
        kind: "webhook".into(),
        name: name.into(),
        url: url.into(),
    }
}

/// The signing secret the tests give target `name`.
pub fn secret_for(name: &str) -> String {
    format!("test-signing-secret-of-{name}-0123456789")
}

/// Sets policy `name` for SEV1 and SEV2: level 1 pages webhook `primary`
/// and waits 5 minutes, level 2 pages `secondary` and waits 10; the
/// ladder repeats once. The receiver checks both targets' signatures.
pub async fn sev1_policy(stack: &Stack, name: &str) -> Result<Policy> {
    for target in ["primary", "secondary"] {
        stack.receiver.set_secret(
            &format!("/{target}"),
            secret_for(target).parse().context("secret")?,
        );
    }
    let policy = Policy {
        name: name.into(),
        severities: vec![
            tilewave_proto::common::v1::Severity::Sev1 as i32,
            tilewave_proto::common::v1::Severity::Sev2 as i32,
        ],
        levels: vec![
            Level {
                targets: vec![webhook("primary", &stack.receiver.url("/primary"))],
                delay: Some(mins(5)),
            },
            Level {
                targets: vec![webhook("secondary", &stack.receiver.url("/secondary"))],
                delay: Some(mins(10)),
            },
        ],
        repeat: 1,
        ..Default::default()
    };
    let r = stack
        .client()
        .await?
        .set_policy(SetPolicyRequest {
            policy: Some(policy),
            etag: 0,
            signing_secrets: ["primary", "secondary"]
                .into_iter()
                .map(|t| (t.to_owned(), secret_for(t)))
                .collect(),
        })
        .await?
        .into_inner();
    r.policy.context("policy")
}

/// Opens a SEV1 incident by hand on tile `tile`.
pub async fn open_sev1(stack: &Stack, tile: &str) -> Result<Incident> {
    stack
        .oncall()
        .await?
        .open_incident(OpenIncidentRequest {
            title: format!("{tile}: health gate failed"),
            severity: tilewave_proto::common::v1::Severity::Sev1 as i32,
            tile_id: tile.into(),
            regions: vec!["aws:us-east-1".into()],
            ..Default::default()
        })
        .await?
        .into_inner()
        .incident
        .context("incident")
}

/// The domain times of the incident's PAGED and ESCALATED entries.
pub fn page_times(i: &Incident) -> Vec<Timestamp> {
    i.timeline
        .iter()
        .filter(|e| e.kind == TimelineKind::Paged as i32 || e.kind == TimelineKind::Escalated as i32)
        .filter_map(|e| e.at.as_ref())
        .filter_map(|t| tilewave_store::clock::from_proto_timestamp(t).ok())
        .collect()
}
