//! Mitigate really pauses the roll-out: the registry, one agent and the
//! rollout service beside the escalation service (mutual TLS on every
//! hop), a scheduled tile's roll-out started, an incident on it, and
//! PAUSE_ROLLOUT through the rollout service.

use jiff::SignedDuration;
use tilewave_proto::common::v1::Severity;
use tilewave_proto::escalation::v1::*;
use tilewave_proto::registry::v1::registry_service_client::RegistryServiceClient;
use tilewave_proto::registry::v1::*;
use tilewave_proto::rollout::v1::rollout_service_client::RolloutServiceClient;
use tilewave_proto::rollout::v1::{GetRolloutRequest, RolloutSpec, RolloutState, StartRolloutRequest};
use tilewave_testkit::journeys::{self, Release, ts};
use tilewave_testkit::pki::{ONCALL, RELEASE_ENGINEER};
use tilewave_testkit::{ServiceProcess, ServiceSpec, bin_path, eventually};
use tonic::Code;

use crate::*;

const REGION: &str = "aws:us-east-1";

/// Imports riverflow, gives it a workspace, passes its validation, signs
/// it off, finishes its go-to-market items and sets GA a week ahead.
async fn scheduled_tile(c: &mut RegistryServiceClient<tonic::transport::Channel>) -> anyhow::Result<Tile> {
    let release = Release {
        id: "riverflow",
        gtm_due: "2026-03-01",
        ..Release::default()
    };
    journeys::scheduled_tile(c, &release, t0() + SignedDuration::from_hours(24 * 7)).await
}

/// The stack with a roll-out service beside it.
#[allow(missing_debug_implementations)]
struct WithRollouts {
    stack: Stack,
    _registry: ServiceProcess,
    _agent: ServiceProcess,
    rollout: ServiceProcess,
    /// The roll-out started (PENDING: it starts an hour after T0).
    rollout_id: String,
}

impl WithRollouts {
    /// The stack, the tile scheduled, a roll-out to `REGION` started at
    /// `T0 + start_in`.
    async fn start(start_in: SignedDuration) -> anyhow::Result<Self> {
        // etcd and the clock first, then the registry, an agent, the rollout
        // service, and an escalation replica pointed at it.
        let mut stack = Stack::start(0).await?;
        let endpoints = stack.etcd.endpoints().join(",");
        let registry =
            ServiceProcess::start(journeys::registry_spec(&endpoints, PREFIX)?, stack.dir.path()).await?;
        let data = stack.dir.path().join("agent");
        let agent = ServiceProcess::start(
            journeys::agent_spec("agent", REGION, &data, &endpoints, PREFIX)?,
            stack.dir.path(),
        )
        .await?;
        let rollout = ServiceProcess::start(
            ServiceSpec::new("rollout", bin_path("tilewave-rollout")?)
                .with_args([
                    "--etcd",
                    &endpoints,
                    "--prefix",
                    PREFIX,
                    "--registry",
                    &registry.endpoint(),
                    "--regions",
                    REGION,
                ])
                .with_health_service(Some("tilewave.rollout.v1.RolloutService")),
            stack.dir.path(),
        )
        .await?;
        let kek = stack.dir.path().join("kek");
        stack.replicas.push(
            ServiceProcess::start(
                spec(&stack.etcd, "escalation-0", &kek).with_args(["--rollout", &rollout.endpoint()]),
                stack.dir.path(),
            )
            .await?,
        );

        let mut reg = RegistryServiceClient::new(registry.channel(RELEASE_ENGINEER).await?);
        scheduled_tile(&mut reg).await?;
        let mut ro = RolloutServiceClient::new(rollout.channel(RELEASE_ENGINEER).await?);
        // It starts an hour from now: PENDING until then (the clock stands still).
        let started = ro
            .start_rollout(StartRolloutRequest {
                spec: Some(RolloutSpec {
                    tile_id: "riverflow".into(),
                    regions: vec![REGION.into()],
                    apply_time: Some(mins(5)),
                    bake: Some(mins(30)),
                    concurrency: 1,
                    wave_growth: 1,
                    earliest_start: Some(ts(t0() + start_in)),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await?
            .into_inner()
            .rollout
            .context("rollout")?;
        assert_ne!(started.state, RolloutState::Paused as i32);
        Ok(Self {
            stack,
            _registry: registry,
            _agent: agent,
            rollout,
            rollout_id: started.id,
        })
    }

    /// The roll-out as the rollout service has it now.
    async fn rollout_state(&self) -> anyhow::Result<tilewave_proto::rollout::v1::Rollout> {
        RolloutServiceClient::new(self.rollout.channel(RELEASE_ENGINEER).await?)
            .get_rollout(GetRolloutRequest {
                id: self.rollout_id.clone(),
                ..Default::default()
            })
            .await?
            .into_inner()
            .rollout
            .context("rollout")
    }

    /// Waits until the roll-out is PAUSED.
    async fn paused(&self) -> anyhow::Result<tilewave_proto::rollout::v1::Rollout> {
        self.until(&[RolloutState::Paused]).await
    }

    /// Waits until the roll-out is in one of `states`.
    async fn until(&self, states: &[RolloutState]) -> anyhow::Result<tilewave_proto::rollout::v1::Rollout> {
        eventually(&format!("the roll-out {states:?}"), WAIT, || async {
            let r = self.rollout_state().await.map_err(|e| e.to_string())?;
            if states.iter().any(|s| r.state == *s as i32) {
                Ok(r)
            } else {
                Err(format!("state {}", r.state))
            }
        })
        .await
    }
}

#[tokio::test]
async fn mitigating_with_pause_rollout_pauses_the_roll_out_in_the_rollout_service() -> anyhow::Result<()> {
    let w = WithRollouts::start(SignedDuration::from_hours(1)).await?;
    let stack = &w.stack;
    let started_id = w.rollout_id.clone();
    let mut esc = stack.client_of(0, ONCALL).await?;
    let incident = esc
        .open_incident(OpenIncidentRequest {
            title: "riverflow: health gate failed".into(),
            severity: Severity::Sev2 as i32,
            tile_id: "riverflow".into(),
            regions: vec![REGION.into()],
            rollout_id: started_id.clone(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .incident
        .context("incident")?;
    let mitigated = esc
        .mitigate(MitigateRequest {
            id: incident.id.clone(),
            action: MitigationAction::PauseRollout as i32,
            note: "stop the waves while we look".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .incident
        .context("incident")?;
    assert_eq!(mitigated.state, IncidentState::Mitigated as i32);
    assert_eq!(
        mitigated.mitigations.first().map(|m| m.action),
        Some(MitigationAction::PauseRollout as i32)
    );
    let paused = w.paused().await?;
    assert!(
        paused.paused_reason.contains(&incident.id),
        "{}",
        paused.paused_reason
    );

    // Pausing again: the rollout service refuses, the incident is unchanged.
    let before = stack.incident(&incident.id).await?;
    let again = esc
        .mitigate(MitigateRequest {
            id: incident.id.clone(),
            action: MitigationAction::PauseRollout as i32,
            ..Default::default()
        })
        .await
        .err()
        .context("a second pause is refused")?;
    assert_ne!(again.code(), Code::Ok);
    assert_eq!(stack.incident(&incident.id).await?.etag, before.etag);
    Ok(())
}

#[tokio::test]
async fn an_unacknowledged_sev1_pauses_its_roll_out_at_the_policy_s_limit() -> anyhow::Result<()> {
    let w = WithRollouts::start(SignedDuration::from_hours(1)).await?;
    let stack = &w.stack;
    let r = &stack.receiver;
    r.set_secret("/ops", secret_for("ops").parse()?);
    stack
        .client()
        .await?
        .set_policy(SetPolicyRequest {
            policy: Some(Policy {
                name: "sev1".into(),
                severities: vec![Severity::Sev1 as i32],
                levels: vec![Level {
                    targets: vec![webhook("ops", &r.url("/ops"))],
                    delay: Some(mins(60)),
                }],
                pause_rollout_after: Some(mins(10)),
                ..Default::default()
            }),
            etag: 0,
            signing_secrets: [("ops".to_owned(), secret_for("ops"))].into_iter().collect(),
        })
        .await?;
    r.expect("/ops", serde_json::json!({"incident": "INC-1", "level": 1}));
    let mut esc = stack.client_of(0, ONCALL).await?;
    esc.open_incident(OpenIncidentRequest {
        title: "riverflow: wave 1 failing".into(),
        severity: Severity::Sev1 as i32,
        tile_id: "riverflow".into(),
        rollout_id: w.rollout_id.clone(),
        ..Default::default()
    })
    .await?;
    r.wait_for_expected(WAIT).await?;
    // Not yet at 9 minutes; paused at 10, and the incident says so.
    stack.at(SignedDuration::from_mins(9)).await?;
    assert_ne!(w.rollout_state().await?.state, RolloutState::Paused as i32);
    stack.at(SignedDuration::from_mins(10)).await?;
    let paused = w.paused().await?;
    assert!(paused.paused_reason.contains("INC-1"), "{}", paused.paused_reason);
    let i = stack.incident("INC-1").await?;
    let at: Vec<_> = i
        .timeline
        .iter()
        .filter(|e| e.kind == TimelineKind::RolloutPaused as i32)
        .filter_map(|e| e.at.as_ref())
        .filter_map(|t| tilewave_store::clock::from_proto_timestamp(t).ok())
        .collect();
    assert_eq!(at, [t0() + SignedDuration::from_mins(10)]);
    assert!(i.escalation.as_ref().is_some_and(|e| e.rollout_paused));
    r.assert_all_expected_and_nothing_else();
    Ok(())
}

#[tokio::test]
async fn mitigating_with_remove_tile_rolls_the_region_back() -> anyhow::Result<()> {
    // The roll-out starts at once; past its 5-minute apply the region
    // bakes (30 minutes; the clock then stands still).
    let w = WithRollouts::start(SignedDuration::ZERO).await?;
    let stack = &w.stack;
    eventually("the region applying", WAIT, || async {
        let r = w.rollout_state().await.map_err(|e| e.to_string())?;
        match r.steps.first() {
            Some(s) if s.state != tilewave_proto::rollout::v1::StepState::Pending as i32 => Ok(()),
            other => Err(format!("{:?}", other.map(|s| s.state))),
        }
    })
    .await?;
    stack.at(SignedDuration::from_mins(6)).await?;
    eventually("the region applied", WAIT, || async {
        let r = w.rollout_state().await.map_err(|e| e.to_string())?;
        match r.steps.first() {
            Some(s) if s.state == tilewave_proto::rollout::v1::StepState::Baking as i32 => Ok(()),
            other => Err(format!("{:?}", other.map(|s| s.state))),
        }
    })
    .await?;
    let mut esc = stack.client_of(0, ONCALL).await?;
    let incident = esc
        .open_incident(OpenIncidentRequest {
            title: "riverflow: broken in us-east-1".into(),
            severity: Severity::Sev2 as i32,
            tile_id: "riverflow".into(),
            regions: vec![REGION.into()],
            rollout_id: w.rollout_id.clone(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .incident
        .context("incident")?;
    let mitigated = esc
        .mitigate(MitigateRequest {
            id: incident.id.clone(),
            action: MitigationAction::RemoveTile as i32,
            note: "take it out of us-east-1".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .incident
        .context("incident")?;
    assert_eq!(mitigated.state, IncidentState::Mitigated as i32);
    let m = mitigated.mitigations.first().context("the mitigation")?;
    assert_eq!(m.action, MitigationAction::RemoveTile as i32);
    assert_eq!(m.regions, [REGION]);
    w.until(&[RolloutState::RollingBack, RolloutState::RolledBack])
        .await?;
    Ok(())
}

#[tokio::test]
async fn mitigating_with_rotate_credential_starts_an_emergency_rotation() -> anyhow::Result<()> {
    use tilewave_proto::credentials::v1::credentials_service_client::CredentialsServiceClient;
    use tilewave_proto::credentials::v1::{GetRotationRequest, SubmitCredentialRequest};
    // etcd and the clock, the registry (the tile), the credentials service
    // (sharing the stack's key file), and an escalation replica pointed at
    // it.
    let mut stack = Stack::start(0).await?;
    let endpoints = stack.etcd.endpoints().join(",");
    let registry =
        ServiceProcess::start(journeys::registry_spec(&endpoints, PREFIX)?, stack.dir.path()).await?;
    let kek = stack.dir.path().join("kek");
    let credentials = ServiceProcess::start(
        ServiceSpec::new("credentials", bin_path("tilewave-credentials")?)
            .with_args([
                "--etcd",
                &endpoints,
                "--prefix",
                PREFIX,
                "--kek-file",
                &kek.display().to_string(),
                "--regions",
                REGION,
            ])
            .with_health_service(Some("tilewave.credentials.v1.CredentialsService")),
        stack.dir.path(),
    )
    .await?;
    stack.replicas.push(
        ServiceProcess::start(
            spec(&stack.etcd, "escalation-0", &kek).with_args(["--credentials", &credentials.endpoint()]),
            stack.dir.path(),
        )
        .await?,
    );
    let mut reg = RegistryServiceClient::new(registry.channel(RELEASE_ENGINEER).await?);
    scheduled_tile(&mut reg).await?;
    let mut esc = stack.client_of(0, ONCALL).await?;
    let incident = esc
        .open_incident(OpenIncidentRequest {
            title: "riverflow: the partner's credential leaked".into(),
            severity: Severity::Sev1 as i32,
            tile_id: "riverflow".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .incident
        .context("incident")?;
    let rotate = MitigateRequest {
        id: incident.id.clone(),
        action: MitigationAction::RotateCredential as i32,
        note: "rotate the leaked credential now".into(),
        ..Default::default()
    };
    // No PENDING version yet: the credentials service's refusal, and the
    // incident unchanged.
    let refused = esc
        .mitigate(rotate.clone())
        .await
        .expect_err("no PENDING credential to rotate to");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains("emergency credential rotation"),
        "{refused:?}"
    );
    let unchanged = esc
        .get_incident(GetIncidentRequest {
            id: incident.id.clone(),
        })
        .await?
        .into_inner()
        .incident
        .context("incident")?;
    assert_eq!(unchanged.state, IncidentState::Triggered as i32);
    assert!(unchanged.mitigations.is_empty());
    // The partner hands in a new one: the mitigation starts an emergency
    // rotation to it.
    let mut creds = CredentialsServiceClient::new(credentials.channel(RELEASE_ENGINEER).await?);
    creds
        .submit_credential(SubmitCredentialRequest {
            tile_id: "riverflow".into(),
            username: "tilewave".into(),
            plaintext: "a-new-password-after-the-leak".into(),
            ..Default::default()
        })
        .await?;
    let mitigated = esc
        .mitigate(rotate)
        .await?
        .into_inner()
        .incident
        .context("incident")?;
    assert_eq!(mitigated.state, IncidentState::Mitigated as i32);
    assert_eq!(
        mitigated.mitigations.first().map(|m| m.action),
        Some(MitigationAction::RotateCredential as i32)
    );
    let rotation = creds
        .get_rotation(GetRotationRequest {
            tile_id: "riverflow".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .rotation
        .context("rotation")?;
    assert!(rotation.emergency, "{rotation:?}");
    assert_eq!(rotation.to_version, 1);
    Ok(())
}
