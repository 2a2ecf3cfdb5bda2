//! A full rotation against the partner API double: eight agents (real
//! processes) hold the tile live, their own probes calling the partner every
//! 200 ms with the CURRENT credential, and a test loop calls VerifyCredential
//! with the credential each agent would present throughout. The partner
//! accepts the old and the new credential during the switch, as partners
//! do; it must record zero authentication failures. Then a region whose
//! partner endpoint rejects the next credential stops that rotation with
//! CURRENT unchanged everywhere and one CREDENTIAL_FAILED event.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tilewave_proto::agent::v1::agent_service_client::AgentServiceClient;
use tilewave_proto::agent::v1::{ApplyTileRequest, VerifyCredentialRequest};
use tilewave_proto::common::v1::{Event, EventKind, PartnerConfig, PartnerEndpoints};
use tilewave_proto::credentials::v1::*;
use tilewave_testkit::partner::TEST_CONNECTION_PATH;
use tilewave_testkit::{PartnerDouble, ServiceProcess, eventually};

use crate::*;

/// Eight regions across the three clouds.
pub const REGIONS: [&str; 8] = [
    "aws:us-east-1",
    "aws:eu-west-1",
    "aws:ap-northeast-1",
    "azure:eastus2euap",
    "azure:westeurope",
    "gcp:us-central1",
    "gcp:europe-west1",
    "gcp:asia-northeast1",
];
pub const USER: &str = "tilewave";
const OLD: &str = "old-password-5f2c9a01";
const NEW: &str = "new-password-e1b4aa77";
const NEXT: &str = "next-password-0b7d3c22";
const WAIT: Duration = Duration::from_secs(90);
/// The rollout service's identity: agents serve only the `service` role.
const AS_SERVICE: &str = "rollout";

fn tile_config(base_url: &str) -> PartnerConfig {
    PartnerConfig {
        name: "Riverflow Ingest".into(),
        base_url: base_url.into(),
        endpoints: Some(PartnerEndpoints {
            connect_path: "/connect".into(),
            test_connection_path: TEST_CONNECTION_PATH.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub struct Agents {
    pub procs: BTreeMap<&'static str, ServiceProcess>,
}

impl Agents {
    pub async fn client(&self, region: &str) -> Result<AgentServiceClient<Channel>> {
        let p = self.procs.get(region).context("no such agent")?;
        Ok(AgentServiceClient::new(p.channel(AS_SERVICE).await?))
    }
}

/// Starts an agent per region (with their own KEK), the tile live in each
/// with its probe pointing at `partner` (or `other` for `odd_region`).
pub async fn agents(
    stack: &Stack,
    partner: &PartnerDouble,
    odd: Option<(&str, &PartnerDouble)>,
) -> Result<Agents> {
    agents_probing(stack, partner, odd, "200ms").await
}

/// As [`agents`], the agents probing every `probe_interval`.
pub async fn agents_probing(
    stack: &Stack,
    partner: &PartnerDouble,
    odd: Option<(&str, &PartnerDouble)>,
    probe_interval: &str,
) -> Result<Agents> {
    agents_in(stack, &REGIONS, partner, odd, probe_interval, &[]).await
}

/// As [`agents_probing`], an agent for each of `regions` only, each
/// started with `env` added to its environment. Their key ring is the file
/// `agent-kek` in the stack's directory.
pub async fn agents_in(
    stack: &Stack,
    regions: &[&'static str],
    partner: &PartnerDouble,
    odd: Option<(&str, &PartnerDouble)>,
    probe_interval: &str,
    env: &[(String, String)],
) -> Result<Agents> {
    let kek = stack.dir.path().join("agent-kek");
    let (text, _) = keyring_text(&["agent-1"])?;
    std::fs::write(&kek, text)?;
    let binary = bin_path("tilewave-agent")?;
    let mut procs = BTreeMap::new();
    for &region in regions {
        let name = format!("agent-{}", region.replace(':', "-"));
        let data = stack.dir.path().join(&name);
        let spec = ServiceSpec::new(name, binary.clone())
            .with_args([
                "--region",
                region,
                "--data-dir",
                &data.display().to_string(),
                "--etcd",
                &stack.etcd.endpoints().join(","),
                "--prefix",
                PREFIX,
                "--lease-ttl-secs",
                "3",
                "--kek-file",
                &kek.display().to_string(),
                "--probe-interval",
                probe_interval,
                "--partner-retry-delays",
                "10ms,20ms,40ms",
            ])
            .with_health_service(Some("tilewave.agent.v1.AgentService"));
        let spec = env.iter().fold(spec, |s, (k, v)| s.with_env(k, v));
        procs.push_or(region, spec, stack).await?;
    }
    let agents = Agents { procs };
    for &region in regions {
        let url = match odd {
            Some((r, other)) if r == region => other.base_url(),
            _ => partner.base_url(),
        };
        agents
            .client(region)
            .await?
            .apply_tile(ApplyTileRequest {
                tile_id: "riverflow".into(),
                revision: 1,
                config: Some(tile_config(&url)),
                fencing_token: 1,
                rollout_id: "r-1".into(),
                hidden: None,
                probe_after: false,
            })
            .await?;
    }
    Ok(agents)
}

trait PushOr {
    async fn push_or(&mut self, region: &'static str, spec: ServiceSpec, stack: &Stack) -> Result<()>;
}

impl PushOr for BTreeMap<&'static str, ServiceProcess> {
    async fn push_or(&mut self, region: &'static str, spec: ServiceSpec, stack: &Stack) -> Result<()> {
        let p = ServiceProcess::start(spec, stack.dir.path()).await?;
        self.insert(region, p);
        Ok(())
    }
}

pub async fn submit(c: &mut CredentialsServiceClient<Channel>, password: &str) -> Result<Credential> {
    c.submit_credential(SubmitCredentialRequest {
        tile_id: "riverflow".into(),
        username: USER.into(),
        plaintext: password.into(),
        ..Default::default()
    })
    .await?
    .into_inner()
    .credential
    .context("credential")
}

async fn rotate(c: &mut CredentialsServiceClient<Channel>) -> Result<Rotation> {
    c.start_rotation(StartRotationRequest {
        tile_id: "riverflow".into(),
        regions: REGIONS.iter().map(|r| (*r).to_owned()).collect(),
        bake: Some(prost_types::Duration::default()),
        retirement: Retirement::OnConfirmation as i32,
        ..Default::default()
    })
    .await?
    .into_inner()
    .rotation
    .context("rotation")
}

pub async fn until_state(
    c: &CredentialsServiceClient<Channel>,
    id: &str,
    state: RotationState,
) -> Result<Rotation> {
    let what = format!("rotation {id} {}", state.as_str_name());
    until_rotation(c, id, &what, WAIT, |r| {
        (r.state == state as i32).then(|| r.clone())
    })
    .await
}

/// Reads rotation `id` until `seen` finds in it what is waited for (at most
/// `wait`).
pub async fn until_rotation<T>(
    c: &CredentialsServiceClient<Channel>,
    id: &str,
    what: &str,
    wait: Duration,
    seen: impl Fn(&Rotation) -> Option<T>,
) -> Result<T> {
    let seen = &seen;
    eventually(what, wait, || {
        let mut c = c.clone();
        let id = id.to_owned();
        async move {
            let r = c
                .get_rotation(GetRotationRequest {
                    id,
                    ..Default::default()
                })
                .await
                .ok()?
                .into_inner()
                .rotation?;
            seen(&r)
        }
    })
    .await
}

fn stages(list: &[Credential]) -> Vec<(i64, i32)> {
    list.iter().map(|c| (c.version, c.stage)).collect()
}

#[tokio::test]
async fn a_rotation_keeps_every_region_working_and_a_rejection_leaves_current_untouched() -> anyhow::Result<()>
{
    let (text, _) = keyring_text(&["k1"])?;
    let stack = Stack::start_with_regions(&text, &REGIONS).await?;
    stack.tile("riverflow").await?;
    let partner = PartnerDouble::start().await?;
    partner.set_accepted(&[(USER, OLD)]);
    let strict = PartnerDouble::start().await?;
    strict.set_accepted(&[(USER, OLD), (USER, NEW)]);
    let agents = agents(&stack, &partner, Some(("gcp:asia-northeast1", &strict))).await?;
    let mut c = stack.client().await?;

    // The first credential: nothing current yet; rotated in, it becomes
    // CURRENT everywhere.
    submit(&mut c, OLD).await?;
    let first = rotate(&mut c).await?;
    until_state(&c, &first.id, RotationState::Completed).await?;

    // The partner issues a new credential and accepts both during the
    // switch (the strict one too).
    partner.set_accepted(&[(USER, OLD), (USER, NEW)]);
    partner.clear_requests();
    strict.clear_requests();
    let calls = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut loops = Vec::new();
    for region in REGIONS {
        let mut client = agents.client(region).await?;
        let (calls, stop) = (Arc::clone(&calls), Arc::clone(&stop));
        loops.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                // The credential the agent would present now: CURRENT.
                match client
                    .verify_credential(VerifyCredentialRequest {
                        tile_id: "riverflow".into(),
                        fingerprint: String::new(),
                    })
                    .await
                {
                    Ok(r) if r.get_ref().ok => {}
                    Ok(r) => failures.push(format!("{region}: {:?}", r.into_inner().probe)),
                    Err(s) => failures.push(format!("{region}: {}", s.message())),
                }
                calls.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            failures
        }));
    }
    submit(&mut c, NEW).await?;
    let second = rotate(&mut c).await?;
    let promoted = until_state(&c, &second.id, RotationState::Promoted).await?;
    assert_eq!(promoted.regions_verified, 8, "{promoted:?}");
    let listed = c
        .list_credentials(ListCredentialsRequest {
            tile_id: "riverflow".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .credentials;
    assert_eq!(
        stages(&listed),
        [
            (1, CredentialStage::Previous as i32),
            (2, CredentialStage::Current as i32)
        ]
    );
    // The partner removes the old one and says so.
    c.confirm_old_retired(ConfirmOldRetiredRequest {
        tile_id: "riverflow".into(),
        ..Default::default()
    })
    .await?;
    partner.set_accepted(&[(USER, NEW)]);
    strict.set_accepted(&[(USER, NEW)]);
    until_state(&c, &second.id, RotationState::Completed).await?;
    // A few more rounds on the new credential alone.
    let seen = calls.load(Ordering::Relaxed);
    eventually("more verification rounds", WAIT, || {
        let calls = Arc::clone(&calls);
        async move { (calls.load(Ordering::Relaxed) > seen + 16).then_some(()) }
    })
    .await?;
    stop.store(true, Ordering::Relaxed);
    let mut failures = Vec::new();
    for l in loops {
        failures.extend(l.await?);
    }
    assert!(failures.is_empty(), "every region kept working: {failures:?}");
    assert!(calls.load(Ordering::Relaxed) > 8 * 4, "the loop ran");
    assert_eq!(partner.auth_failures(), 0, "{:?}", partner.requests());
    assert_eq!(strict.auth_failures(), 0, "{:?}", strict.requests());
    assert!(
        partner.requests().len() > 20,
        "the agents' probes and the verifications reached the partner"
    );

    // The next credential: the strict region's partner does not know it.
    partner.set_accepted(&[(USER, NEW), (USER, NEXT)]);
    submit(&mut c, NEXT).await?;
    let third = rotate(&mut c).await?;
    let failed = until_state(&c, &third.id, RotationState::Failed).await?;
    assert_eq!(failed.failed_region, "gcp:asia-northeast1");
    let listed = c
        .list_credentials(ListCredentialsRequest {
            tile_id: "riverflow".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .credentials;
    assert!(
        listed
            .iter()
            .any(|c| c.version == 2 && c.stage == CredentialStage::Current as i32),
        "CURRENT unchanged: {listed:?}"
    );
    // Every region still presents the CURRENT (second) credential.
    for region in REGIONS {
        let r = agents
            .client(region)
            .await?
            .verify_credential(VerifyCredentialRequest {
                tile_id: "riverflow".into(),
                fingerprint: String::new(),
            })
            .await?
            .into_inner();
        assert!(r.ok, "{region}: {:?}", r.probe);
        assert_eq!(r.fingerprint, listed[1].fingerprint, "{region}");
    }
    let events: Vec<Event> = stack
        .events()
        .await?
        .into_iter()
        .filter(|e| e.kind == EventKind::CredentialFailed as i32)
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].region, "gcp:asia-northeast1");
    // No secret in plain text in etcd or any log.
    let dump = stack.etcd.dump(PREFIX).await?;
    for (k, (v, _)) in &dump {
        for s in [OLD, NEW, NEXT] {
            assert!(
                !v.windows(s.len()).any(|w| w == s.as_bytes()),
                "{k} holds a secret"
            );
        }
    }
    let mut logs = vec![std::fs::read(stack.credentials.log_path())?];
    for p in agents.procs.values() {
        logs.push(std::fs::read(p.log_path())?);
    }
    for log in logs {
        for s in [OLD, NEW, NEXT] {
            assert!(
                !log.windows(s.len()).any(|w| w == s.as_bytes()),
                "a log holds a secret"
            );
        }
    }
    Ok(())
}

#[tokio::test]
async fn a_credential_every_region_rejects_fails_the_rotation_once() -> anyhow::Result<()> {
    // Every region's last attempt fails in the same batch of answers: the
    // first one ends the rotation, the others change nothing (they used to
    // make the whole batch fail to commit, for ever).
    let regions = [REGIONS[0], REGIONS[3], REGIONS[6]];
    let (text, _) = keyring_text(&["k1"])?;
    let stack = Stack::start_with_regions(&text, &REGIONS).await?;
    stack.tile("riverflow").await?;
    let partner = PartnerDouble::start().await?;
    partner.set_accepted(&[(USER, OLD)]);
    let _agents = agents_in(&stack, &regions, &partner, None, "200ms", &[]).await?;
    let mut c = stack.client().await?;
    let start = |c: &mut CredentialsServiceClient<Channel>| {
        let mut c = c.clone();
        async move {
            c.start_rotation(StartRotationRequest {
                tile_id: "riverflow".into(),
                regions: regions.iter().map(|r| (*r).to_owned()).collect(),
                bake: Some(prost_types::Duration::default()),
                ..Default::default()
            })
            .await?
            .into_inner()
            .rotation
            .context("rotation")
        }
    };
    let old = submit(&mut c, OLD).await?;
    let first = start(&mut c).await?;
    until_state(&c, &first.id, RotationState::Completed).await?;
    submit(&mut c, NEW).await?;
    let second = start(&mut c).await?;
    let failed = until_state(&c, &second.id, RotationState::Failed).await?;
    assert!(regions.contains(&failed.failed_region.as_str()), "{failed:?}");
    let events: Vec<Event> = stack
        .events()
        .await?
        .into_iter()
        .filter(|e| e.kind == EventKind::CredentialFailed as i32)
        .collect();
    assert_eq!(events.len(), 1, "{events:#?}");
    let list = c
        .list_credentials(ListCredentialsRequest {
            tile_id: "riverflow".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let current: Vec<&Credential> = list
        .credentials
        .iter()
        .filter(|v| v.stage == CredentialStage::Current as i32)
        .collect();
    assert_eq!(current.len(), 1, "{list:?}");
    assert_eq!(current[0].fingerprint, old.fingerprint, "CURRENT unchanged");
    // The failed rotation withdraws the pending credential from the regions
    // it reached, then lets a new one start.
    partner.accept(USER, NEXT);
    submit(&mut c, NEXT).await?;
    let third = eventually("a new rotation may start", WAIT, || {
        let mut c = c.clone();
        async move { start(&mut c).await.map_err(|e| e.to_string()) }
    })
    .await?;
    until_state(&c, &third.id, RotationState::Promoted).await?;
    Ok(())
}
