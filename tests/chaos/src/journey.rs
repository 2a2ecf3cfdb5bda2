//! What the chaos test drives through the cluster's published ports, each
//! call retried on the other replica while containers are killed: tiles to
//! SCHEDULED, roll-outs, a rollback, a maintenance revision, a credential
//! rotation, the paging policy.

use std::time::Duration;

use anyhow::Context as _;
use jiff::{SignedDuration, Timestamp};
use tilewave_proto::clock::v1::clock_service_client::ClockServiceClient;
use tilewave_proto::clock::v1::{AdvanceRequest, GetTimeRequest, SetRateRequest};
use tilewave_proto::common::v1::{Severity, SignOffRole, TileState};
use tilewave_proto::credentials::v1::credentials_service_client::CredentialsServiceClient;
use tilewave_proto::credentials::v1::{
    GetRotationRequest, Rotation, RotationState, StartRotationRequest, SubmitCredentialRequest,
};
use tilewave_proto::escalation::v1::escalation_service_client::EscalationServiceClient;
use tilewave_proto::escalation::v1::{
    GetPolicyRequest, Incident, Level, ListIncidentsRequest, Policy, SetPolicyRequest, Target,
};
use tilewave_proto::registry::v1::registry_service_client::RegistryServiceClient;
use tilewave_proto::registry::v1::{
    GetTileRequest, GtmStatus, ImportPartnerConfigRequest, RecordSignOffRequest, RecordValidationRequest,
    SetGaDateRequest, SetGtmItemRequest, SetTestWorkspaceRequest, Tile, UpdateTileRequest, ValidationOutcome,
    update_tile_request,
};
use tilewave_proto::rollout::v1::rollout_service_client::RolloutServiceClient;
use tilewave_proto::rollout::v1::{
    GetRolloutRequest, ListRolloutsRequest, RetryRegionRequest, RollbackRolloutRequest, Rollout, RolloutSpec,
    RolloutState, StartRolloutRequest,
};
use tonic::{Code, Status};

use crate::conn::Replicas;

/// Partner Connect documents of the fixtures: riverflow (every cloud) and
/// lumen (azure only; a later revision adds gcp).
pub const RIVERFLOW: &str =
    include_str!("../../../crates/core/tests/fixtures/partner-connect/riverflow-ingest.json");
/// Azure only.
pub const LUMEN: &str = include_str!("../../../crates/core/tests/fixtures/partner-connect/lumen-bi.json");

/// The five launch sign-offs.
pub const ROLES: [SignOffRole; 5] = [
    SignOffRole::Engineering,
    SignOffRole::PartnerSolutionArchitect,
    SignOffRole::Product,
    SignOffRole::Partner,
    SignOffRole::Legal,
];

/// The services of the cluster.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// The registry's two replicas.
    pub registry: Replicas,
    /// The rollout service's (and its clock's).
    pub rollout: Replicas,
    /// The credentials service's.
    pub credentials: Replicas,
    /// The escalation service's.
    pub escalation: Replicas,
}

fn rpc_err(what: &str, s: Status) -> anyhow::Error {
    anyhow::anyhow!("{what}: {:?}: {}", s.code(), s.message())
}

fn ts(t: Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.as_second(),
        nanos: t.subsec_nanosecond(),
    }
}

/// A protobuf duration.
pub fn dur(d: SignedDuration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: d.as_secs(),
        nanos: d.subsec_nanos(),
    }
}

/// A protobuf timestamp as jiff's, or the epoch.
pub fn time_of(t: Option<&prost_types::Timestamp>) -> Timestamp {
    t.and_then(|t| Timestamp::new(t.seconds, t.nanos).ok())
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

/// A launch (or maintenance) spec: `regions`, 10-minute applies, `bake`
/// between waves, `concurrency` at once, canary waves growing by one,
/// starting at `now`.
pub fn spec(
    tile: &str,
    regions: Vec<String>,
    now: Timestamp,
    bake: SignedDuration,
    concurrency: i32,
) -> RolloutSpec {
    RolloutSpec {
        tile_id: tile.to_owned(),
        regions,
        apply_time: Some(dur(SignedDuration::from_mins(10))),
        bake: Some(dur(bake)),
        concurrency,
        wave_growth: 1,
        earliest_start: Some(ts(now)),
        ..Default::default()
    }
}

impl Cluster {
    /// Domain now.
    pub async fn now(&self) -> anyhow::Result<Timestamp> {
        let r = self
            .rollout
            .call("GetTime", |c| async move {
                ClockServiceClient::new(c).get_time(GetTimeRequest {}).await
            })
            .await
            .map_err(|s| rpc_err("GetTime", s))?
            .into_inner();
        Ok(time_of(r.clock.and_then(|c| c.now).as_ref()))
    }

    /// Sets the virtual clock's rate.
    pub async fn set_rate(&self, rate: f64) -> anyhow::Result<()> {
        self.rollout
            .call("SetRate", |c| async move {
                ClockServiceClient::new(c).set_rate(SetRateRequest { rate }).await
            })
            .await
            .map_err(|s| rpc_err("SetRate", s))?;
        Ok(())
    }

    /// Moves the virtual clock forward.
    pub async fn advance(&self, by: SignedDuration) -> anyhow::Result<()> {
        self.rollout
            .call("Advance", |c| async move {
                ClockServiceClient::new(c)
                    .advance(AdvanceRequest { by: Some(dur(by)) })
                    .await
            })
            .await
            .map_err(|s| rpc_err("Advance", s))?;
        Ok(())
    }

    /// The tile now.
    pub async fn tile(&self, id: &str) -> anyhow::Result<Tile> {
        self.registry
            .call("GetTile", |c| async move {
                RegistryServiceClient::new(c)
                    .get_tile(GetTileRequest {
                        id: id.to_owned(),
                        revision: 0,
                    })
                    .await
            })
            .await
            .map_err(|s| rpc_err("GetTile", s))?
            .into_inner()
            .tile
            .context("GetTile: no tile")
    }

    /// One registry write that answers the tile, retried from a fresh read
    /// when a lost answer already moved the etag (ABORTED).
    async fn tile_write<F, Fut>(&self, what: &str, id: &str, f: F) -> anyhow::Result<Tile>
    where
        F: Fn(RegistryServiceClient<tonic::transport::Channel>, Tile) -> Fut,
        Fut: std::future::Future<Output = Result<Option<Tile>, Status>>,
    {
        for _ in 0..5 {
            let tile = self.tile(id).await?;
            let f = &f;
            let answer = self
                .registry
                .call(what, |c| {
                    let tile = tile.clone();
                    async move { f(RegistryServiceClient::new(c), tile).await }
                })
                .await;
            match answer {
                Ok(t) => return t.with_context(|| format!("{what}: no tile")),
                Err(s) if s.code() == Code::Aborted => continue,
                Err(s) => return Err(rpc_err(what, s)),
            }
        }
        anyhow::bail!("{what} on {id}: the etag kept moving")
    }

    /// Imports `doc` as `id`, with a test workspace, every validation case
    /// passed, the five sign-offs, go-to-market done and GA at `ga`.
    pub async fn scheduled_tile(&self, doc: &str, id: &str, ga: Timestamp) -> anyhow::Result<Tile> {
        let imported = self
            .registry
            .call("ImportPartnerConfig", |c| async move {
                RegistryServiceClient::new(c)
                    .import_partner_config(ImportPartnerConfigRequest {
                        config_json: doc.to_owned(),
                        id: id.to_owned(),
                        ..Default::default()
                    })
                    .await
            })
            .await;
        match imported {
            Ok(_) => {}
            Err(s) if s.code() == Code::AlreadyExists => {}
            Err(s) => return Err(rpc_err("ImportPartnerConfig", s)),
        }
        self.tile_write("SetTestWorkspace", id, |mut c, t| async move {
            c.set_test_workspace(SetTestWorkspaceRequest {
                id: t.id.clone(),
                workspace_id: "6051921418418893".into(),
                etag: t.etag,
            })
            .await
            .map(|r| r.into_inner().tile)
        })
        .await?;
        self.sign_off(id, &ROLES).await?;
        for item in ["mini-site", "logo", "blog", "docs"] {
            self.tile_write("SetGtmItem", id, |mut c, t| async move {
                c.set_gtm_item(SetGtmItemRequest {
                    id: t.id.clone(),
                    item: item.into(),
                    status: GtmStatus::Done as i32,
                    owner: "partner-marketing".into(),
                    due: "2026-12-01".into(),
                    link: format!("https://partner.example/{item}"),
                    etag: t.etag,
                })
                .await
                .map(|r| r.into_inner().tile)
            })
            .await?;
        }
        self.tile_write("SetGaDate", id, |mut c, t| async move {
            c.set_ga_date(SetGaDateRequest {
                id: t.id.clone(),
                ga_time: Some(ts(ga)),
                etag: t.etag,
                reason: "chaos test".into(),
                ..Default::default()
            })
            .await
            .map(|r| r.into_inner().tile)
        })
        .await
    }

    /// Passes the open validation cases, then records `roles` on the
    /// latest revision (a sign-off already there is skipped).
    pub async fn sign_off(&self, id: &str, roles: &[SignOffRole]) -> anyhow::Result<Tile> {
        let t = self.tile(id).await?;
        if t.validation.as_ref().is_some_and(|v| !v.open_cases.is_empty()) {
            self.tile_write("RecordValidation", id, |mut c, t| async move {
                c.record_validation(RecordValidationRequest {
                    id: t.id.clone(),
                    revision: t.revision,
                    all_open: true,
                    outcome: ValidationOutcome::Pass as i32,
                    note: "ran in the test workspace".into(),
                    etag: t.etag,
                    ..Default::default()
                })
                .await
                .map(|r| r.into_inner().tile)
            })
            .await?;
        }
        let mut tile = self.tile(id).await?;
        for role in roles {
            let done = tile
                .sign_offs
                .iter()
                .any(|s| s.role == *role as i32 && s.revision == tile.revision);
            if done {
                continue;
            }
            let role = *role;
            tile = self
                .tile_write("RecordSignOff", id, |mut c, t| async move {
                    c.record_sign_off(RecordSignOffRequest {
                        id: t.id.clone(),
                        role: role as i32,
                        revision: t.revision,
                        note: String::new(),
                        etag: t.etag,
                    })
                    .await
                    .map(|r| r.into_inner().tile)
                })
                .await?;
        }
        Ok(tile)
    }

    /// Starts a roll-out of `spec`; when a lost answer hid the start, the
    /// tile's roll-out of that kind is found and returned.
    pub async fn start(&self, spec: RolloutSpec) -> anyhow::Result<Rollout> {
        let tile = spec.tile_id.clone();
        let request_id = format!("chaos-{tile}-{}", spec.regions.len());
        let answer = self
            .rollout
            .call("StartRollout", |c| {
                let spec = spec.clone();
                let request_id = request_id.clone();
                async move {
                    RolloutServiceClient::new(c)
                        .start_rollout(StartRolloutRequest {
                            spec: Some(spec),
                            accept_late: false,
                            request_id,
                        })
                        .await
                }
            })
            .await;
        match answer {
            Ok(r) => r.into_inner().rollout.context("StartRollout: no roll-out"),
            Err(s) if matches!(s.code(), Code::AlreadyExists | Code::FailedPrecondition) => {
                let active = self.latest_rollout(&tile).await?;
                active.with_context(|| format!("StartRollout {tile}: {}", s.message()))
            }
            Err(s) => Err(rpc_err("StartRollout", s)),
        }
    }

    /// The tile's newest roll-out.
    pub async fn latest_rollout(&self, tile: &str) -> anyhow::Result<Option<Rollout>> {
        let list = self
            .rollout
            .call("ListRollouts", |c| async move {
                RolloutServiceClient::new(c)
                    .list_rollouts(ListRolloutsRequest {
                        tile_id: tile.to_owned(),
                        ..Default::default()
                    })
                    .await
            })
            .await
            .map_err(|s| rpc_err("ListRollouts", s))?
            .into_inner();
        let mut all = list.rollouts;
        all.sort_by_key(|r| time_of(r.created_at.as_ref()));
        Ok(all.pop())
    }

    /// A roll-out now.
    pub async fn rollout(&self, id: &str) -> anyhow::Result<Rollout> {
        self.rollout
            .call("GetRollout", |c| async move {
                RolloutServiceClient::new(c)
                    .get_rollout(GetRolloutRequest {
                        id: id.to_owned(),
                        ..Default::default()
                    })
                    .await
            })
            .await
            .map_err(|s| rpc_err("GetRollout", s))?
            .into_inner()
            .rollout
            .context("GetRollout: no roll-out")
    }

    /// Polls a roll-out until `done` holds, for at most `timeout`.
    pub async fn wait_rollout(
        &self,
        id: &str,
        what: &str,
        timeout: Duration,
        done: impl Fn(&Rollout) -> bool,
    ) -> anyhow::Result<Rollout> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let r = self.rollout(id).await?;
            if done(&r) {
                return Ok(r);
            }
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!(
                    "{id}: {what} not reached within {timeout:?}: {} ({} {})",
                    RolloutState::try_from(r.state).map_or("?", |s| s.as_str_name()),
                    r.paused_reason,
                    r.steps
                        .iter()
                        .map(|s| format!("{}={}", s.region, s.last_error))
                        .collect::<Vec<_>>()
                        .join(" ")
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Rolls a roll-out back (read, then commanded with its etag; a
    /// moved etag is read again).
    pub async fn rollback(&self, id: &str) -> anyhow::Result<()> {
        let done = self
            .steer("RollbackRollout", id, |c, etag| async move {
                RolloutServiceClient::new(c)
                    .rollback_rollout(RollbackRolloutRequest {
                        id: id.to_owned(),
                        etag,
                        reason: "chaos test: the rollback".into(),
                        regions: Vec::new(),
                    })
                    .await
                    .map(drop)
            })
            .await;
        match done {
            Ok(()) => Ok(()),
            Err(e) => {
                // A lost answer may have hidden the success.
                let rolling = [RolloutState::RollingBack as i32, RolloutState::RolledBack as i32];
                if rolling.contains(&self.rollout(id).await?.state) {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Applies a FAILED region again.
    pub async fn retry_region(&self, id: &str, region: &str) -> anyhow::Result<()> {
        self.steer("RetryRegion", id, |c, etag| async move {
            RolloutServiceClient::new(c)
                .retry_region(RetryRegionRequest {
                    id: id.to_owned(),
                    region: region.to_owned(),
                    etag,
                })
                .await
                .map(drop)
        })
        .await
    }

    /// A steering command with the roll-out's etag, read again while the
    /// owner keeps moving it (ABORTED), up to 20 times.
    async fn steer<F, Fut>(&self, what: &str, id: &str, f: F) -> anyhow::Result<()>
    where
        F: Fn(tonic::transport::Channel, i64) -> Fut,
        Fut: std::future::Future<Output = Result<(), Status>>,
    {
        let mut last = None;
        for _ in 0..20 {
            let etag = self.rollout(id).await?.etag;
            let f = &f;
            match self.rollout.call(what, |c| async move { f(c, etag).await }).await {
                Ok(()) => return Ok(()),
                Err(s) if s.code() == Code::Aborted => {
                    last = Some(s);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(s) => return Err(rpc_err(&format!("{what} {id}"), s)),
            }
        }
        Err(last.map_or_else(
            || anyhow::anyhow!("{what} {id}"),
            |s| rpc_err(&format!("{what} {id}"), s),
        ))
    }

    /// A maintenance revision of a GA lumen tile: gcp added, engineering
    /// and partner sign-offs.
    pub async fn maintenance_revision(&self, id: &str) -> anyhow::Result<Tile> {
        let mut doc: serde_json::Value = serde_json::from_str(LUMEN)?;
        doc["supported_clouds"] = serde_json::json!(["azure", "gcp"]);
        let doc = doc.to_string();
        let tile = self.tile(id).await?;
        if tile.revision < 2 {
            self.tile_write("UpdateTile", id, |mut c, t| {
                let doc = doc.clone();
                async move {
                    c.update_tile(UpdateTileRequest {
                        id: t.id.clone(),
                        etag: t.etag,
                        source: Some(update_tile_request::Source::ConfigJson(doc)),
                        note: "adds GCP support".into(),
                        ..Default::default()
                    })
                    .await
                    .map(|r| r.into_inner().tile)
                }
            })
            .await?;
        }
        self.sign_off(id, &[SignOffRole::Engineering, SignOffRole::Partner])
            .await
    }

    /// Waits until the tile is GA.
    pub async fn wait_ga(&self, id: &str, timeout: Duration) -> anyhow::Result<Tile> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let t = self.tile(id).await?;
            if t.state == TileState::Ga as i32 {
                return Ok(t);
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "{id} is not GA within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Hands in the partner's credential for `tile` and starts rotating it
    /// into every region.
    pub async fn rotate(&self, tile: &str, user: &str, password: &str) -> anyhow::Result<Rotation> {
        let submitted = self
            .credentials
            .call("SubmitCredential", |c| async move {
                CredentialsServiceClient::new(c)
                    .submit_credential(SubmitCredentialRequest {
                        tile_id: tile.to_owned(),
                        username: user.to_owned(),
                        plaintext: password.to_owned(),
                        request_id: format!("chaos-submit-{tile}"),
                        ..Default::default()
                    })
                    .await
            })
            .await;
        match submitted {
            Ok(_) => {}
            // A lost answer: the same secret is already PENDING.
            Err(s) if matches!(s.code(), Code::AlreadyExists | Code::FailedPrecondition) => {}
            Err(s) => return Err(rpc_err("SubmitCredential", s)),
        }
        let started = self
            .credentials
            .call("StartRotation", |c| async move {
                CredentialsServiceClient::new(c)
                    .start_rotation(StartRotationRequest {
                        tile_id: tile.to_owned(),
                        emergency: true,
                        ..Default::default()
                    })
                    .await
            })
            .await;
        match started {
            Ok(r) => r.into_inner().rotation.context("StartRotation: no rotation"),
            Err(s) if matches!(s.code(), Code::AlreadyExists | Code::FailedPrecondition) => {
                self.rotation_of(tile).await
            }
            Err(s) => Err(rpc_err("StartRotation", s)),
        }
    }

    /// The tile's running (or latest) rotation.
    pub async fn rotation_of(&self, tile: &str) -> anyhow::Result<Rotation> {
        self.credentials
            .call("GetRotation", |c| async move {
                CredentialsServiceClient::new(c)
                    .get_rotation(GetRotationRequest {
                        tile_id: tile.to_owned(),
                        ..Default::default()
                    })
                    .await
            })
            .await
            .map_err(|s| rpc_err("GetRotation", s))?
            .into_inner()
            .rotation
            .context("GetRotation: no rotation")
    }

    /// Waits until the tile's rotation is PROMOTED or ended.
    pub async fn wait_rotation(&self, tile: &str, timeout: Duration) -> anyhow::Result<Rotation> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let r = self.rotation_of(tile).await?;
            let ended = [
                RotationState::Promoted as i32,
                RotationState::Completed as i32,
                RotationState::Failed as i32,
                RotationState::Cancelled as i32,
            ];
            if ended.contains(&r.state) {
                return Ok(r);
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "the rotation of {tile} did not end within {timeout:?}: {}",
                r.progress
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The `default` policy pages `url` (every severity, one level).
    pub async fn page_to(&self, url: &str) -> anyhow::Result<()> {
        let etag = match self
            .escalation
            .call("GetPolicy", |c| async move {
                EscalationServiceClient::new(c)
                    .get_policy(GetPolicyRequest {
                        name: "default".into(),
                    })
                    .await
            })
            .await
        {
            Ok(r) => r.into_inner().policy.map_or(0, |p| p.etag),
            Err(s) if s.code() == Code::NotFound => 0,
            Err(s) => return Err(rpc_err("GetPolicy", s)),
        };
        let policy = Policy {
            name: "default".into(),
            severities: [Severity::Sev1, Severity::Sev2, Severity::Sev3, Severity::Sev4]
                .iter()
                .map(|s| *s as i32)
                .collect(),
            levels: vec![Level {
                targets: vec![Target {
                    kind: "webhook".into(),
                    name: "chaos-ops".into(),
                    url: url.to_owned(),
                }],
                delay: Some(dur(SignedDuration::from_hours(24))),
            }],
            repeat: 0,
            ..Policy::default()
        };
        self.escalation
            .call("SetPolicy", |c| {
                let policy = policy.clone();
                async move {
                    EscalationServiceClient::new(c)
                        .set_policy(SetPolicyRequest {
                            policy: Some(policy),
                            etag,
                            signing_secrets: Default::default(),
                        })
                        .await
                }
            })
            .await
            .map_err(|s| rpc_err("SetPolicy", s))?;
        Ok(())
    }

    /// Every incident (first 1000).
    pub async fn incidents(&self) -> anyhow::Result<Vec<Incident>> {
        let r = self
            .escalation
            .call("ListIncidents", |c| async move {
                EscalationServiceClient::new(c)
                    .list_incidents(ListIncidentsRequest {
                        page: Some(tilewave_proto::common::v1::PageRequest {
                            page_size: 1000,
                            ..Default::default()
                        }),
                        ..Default::default()
                    })
                    .await
            })
            .await
            .map_err(|s| rpc_err("ListIncidents", s))?;
        Ok(r.into_inner().incidents)
    }
}
