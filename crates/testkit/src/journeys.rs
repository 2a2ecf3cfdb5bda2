//! What the process tests and the benchmark harness do as clients of the
//! services, written once (feature `journeys`): the partner configuration
//! fixtures, protobuf time, the registry's and an agent's process specs,
//! a channel to a service process as an identity, a tile made SCHEDULED through the registry's RPCs the way a release
//! engineer does it, and StartRollout retried while the service answers
//! UNAVAILABLE.
//!
//! The registry steps take a client and the tile of the previous step, and
//! return the tile the registry answered, so a caller can stop half way
//! (a tile SIGNED_OFF but without a GA date) or read its clock between two
//! steps.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use jiff::{SignedDuration, Timestamp};
use tilewave_proto::common::v1::SignOffRole;
use tilewave_proto::registry::v1::registry_service_client::RegistryServiceClient;
use tilewave_proto::registry::v1::{
    GtmStatus, ImportPartnerConfigRequest, RecordSignOffRequest, RecordValidationRequest, SetGaDateRequest,
    SetGtmItemRequest, SetTestWorkspaceRequest, Tile, ValidationOutcome,
};
use tilewave_proto::rollout::v1::rollout_service_client::RolloutServiceClient;
use tilewave_proto::rollout::v1::{GetRolloutRequest, Rollout, RolloutSpec, StartRolloutRequest};
use tonic::transport::Channel;

use crate::{ServiceProcess, ServiceSpec, bin_path, eventually};

/// A partner configuration supported on all three clouds (riverflow).
pub const RIVERFLOW: &str = include_str!("../../core/tests/fixtures/partner-connect/riverflow-ingest.json");

/// A partner configuration on Azure only (lumen); a later revision adds
/// GCP.
pub const LUMEN: &str = include_str!("../../core/tests/fixtures/partner-connect/lumen-bi.json");

/// Agents answer only the `service` role: tests call them with the rollout
/// service's certificate.
pub const AGENT_CALLER: &str = "rollout";

/// The five sign-off roles a GA date needs.
pub const SIGN_OFF_ROLES: [SignOffRole; 5] = [
    SignOffRole::Engineering,
    SignOffRole::PartnerSolutionArchitect,
    SignOffRole::Product,
    SignOffRole::Partner,
    SignOffRole::Legal,
];

/// The test workspace every tile gets.
pub const TEST_WORKSPACE: &str = "6051921418418893";

/// The go-to-market items a release engineer sets (all but the agreement,
/// which is legal's sign-off): done, they are the gate of a GA date.
pub const GTM_ITEMS: [&str; 4] = ["mini-site", "logo", "blog", "docs"];

/// Virtual time when a stack starts (a Tuesday).
pub fn t0() -> Timestamp {
    "2026-12-01T00:00:00Z".parse().unwrap_or(Timestamp::UNIX_EPOCH)
}

/// A protobuf timestamp.
pub fn ts(t: Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.as_second(),
        nanos: t.subsec_nanosecond(),
    }
}

/// A protobuf timestamp as a jiff one (the epoch when absent or invalid).
pub fn from_ts(t: &Option<prost_types::Timestamp>) -> Timestamp {
    t.as_ref()
        .and_then(|t| Timestamp::new(t.seconds, t.nanos).ok())
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

/// A protobuf duration.
pub fn dur(d: SignedDuration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: d.as_secs(),
        nanos: d.subsec_nanos(),
    }
}

/// The registry (`tilewave-registry`) on etcd `endpoints` (comma
/// separated) under `prefix`, ready once its health service is SERVING.
pub fn registry_spec(endpoints: &str, prefix: &str) -> anyhow::Result<ServiceSpec> {
    Ok(ServiceSpec::new("registry", bin_path("tilewave-registry")?)
        .with_args(["--etcd", endpoints, "--prefix", prefix])
        .with_health_service(Some("tilewave.registry.v1.RegistryService")))
}

/// The agent (`tilewave-agent`) `name` serving `region`, its catalog under
/// `data`, on etcd `endpoints` under `prefix`, ready once its health
/// service is SERVING; a caller adds its own flags after these.
pub fn agent_spec(
    name: impl Into<String>,
    region: &str,
    data: &Path,
    endpoints: &str,
    prefix: &str,
) -> anyhow::Result<ServiceSpec> {
    Ok(ServiceSpec::new(name, bin_path("tilewave-agent")?)
        .with_args([
            "--region",
            region,
            "--data-dir",
            &data.to_string_lossy(),
            "--etcd",
            endpoints,
            "--prefix",
            prefix,
        ])
        .with_health_service(Some("tilewave.agent.v1.AgentService")))
}

/// A channel to `process` as `identity` (reused), retrying for up to
/// `within` (on a busy machine a freshly accepted connection can take
/// seconds); the error names `what` was being connected and where.
pub async fn connect(
    what: &str,
    process: &ServiceProcess,
    identity: &str,
    within: Duration,
) -> anyhow::Result<Channel> {
    eventually(&format!("a connection to {what}"), within, || {
        process.channel(identity)
    })
    .await
    .with_context(|| format!("connecting {what} at {} as {identity}", process.endpoint()))
}

/// What differs between the callers that make a tile SCHEDULED: which
/// configuration, under which id, and the words and dates they record.
#[derive(Debug, Clone, Copy)]
pub struct Release<'a> {
    /// The partner configuration imported.
    pub config_json: &'a str,
    /// The tile's id (its slug when empty).
    pub id: &'a str,
    /// The note of the validation record.
    pub note: &'a str,
    /// The reason of the GA date.
    pub reason: &'a str,
    /// The due date of the go-to-market items (`YYYY-MM-DD`).
    pub gtm_due: &'a str,
}

impl Default for Release<'_> {
    /// Riverflow under its slug, as the process tests record it.
    fn default() -> Self {
        Self {
            config_json: RIVERFLOW,
            id: "",
            note: "ran in the test workspace",
            reason: "test",
            gtm_due: "2026-12-01",
        }
    }
}

/// The tile of an answer, or an error naming the tile asked for.
fn tile_of(tile: Option<Tile>, id: &str) -> anyhow::Result<Tile> {
    tile.with_context(|| format!("the registry answered without tile {id:?}"))
}

/// Imports `config_json` (as `id`, or its slug when empty) and gives it
/// the test workspace: DRAFT, ready for validation and sign-offs.
pub async fn imported(
    c: &mut RegistryServiceClient<Channel>,
    config_json: &str,
    id: &str,
) -> anyhow::Result<Tile> {
    let tile = c
        .import_partner_config(ImportPartnerConfigRequest {
            config_json: config_json.into(),
            id: id.into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .tile;
    let tile = tile_of(tile, id)?;
    let answer = c
        .set_test_workspace(SetTestWorkspaceRequest {
            id: tile.id.clone(),
            workspace_id: TEST_WORKSPACE.into(),
            etag: tile.etag,
        })
        .await?;
    tile_of(answer.into_inner().tile, &tile.id)
}

/// Records `roles` on the tile's latest revision; before the engineering
/// sign-off, passes every validation case still open (its gate), with
/// `note`.
pub async fn sign_off(
    c: &mut RegistryServiceClient<Channel>,
    tile: &Tile,
    roles: &[SignOffRole],
    note: &str,
) -> anyhow::Result<Tile> {
    let mut tile = tile.clone();
    let open = tile.validation.as_ref().is_some_and(|v| !v.open_cases.is_empty());
    if roles.contains(&SignOffRole::Engineering) && open {
        let answer = c
            .record_validation(RecordValidationRequest {
                id: tile.id.clone(),
                revision: tile.revision,
                all_open: true,
                outcome: ValidationOutcome::Pass as i32,
                note: note.into(),
                etag: tile.etag,
                ..Default::default()
            })
            .await?;
        tile = tile_of(answer.into_inner().tile, &tile.id)?;
    }
    for role in roles {
        let answer = c
            .record_sign_off(RecordSignOffRequest {
                id: tile.id.clone(),
                role: *role as i32,
                revision: tile.revision,
                note: String::new(),
                etag: tile.etag,
            })
            .await?;
        tile = tile_of(answer.into_inner().tile, &tile.id)?;
    }
    Ok(tile)
}

/// Every item of [`GTM_ITEMS`] done (owner partner marketing, due `due`).
pub async fn gtm_done(
    c: &mut RegistryServiceClient<Channel>,
    tile: &Tile,
    due: &str,
) -> anyhow::Result<Tile> {
    let mut tile = tile.clone();
    for item in GTM_ITEMS {
        let answer = c
            .set_gtm_item(SetGtmItemRequest {
                id: tile.id.clone(),
                item: item.into(),
                status: GtmStatus::Done as i32,
                owner: "partner-marketing".into(),
                due: due.into(),
                link: format!("https://partner.example/{item}"),
                etag: tile.etag,
            })
            .await?;
        tile = tile_of(answer.into_inner().tile, &tile.id)?;
    }
    Ok(tile)
}

/// Sets the tile's GA date to `ga`, for `reason`: SCHEDULED.
pub async fn set_ga(
    c: &mut RegistryServiceClient<Channel>,
    tile: &Tile,
    ga: Timestamp,
    reason: &str,
) -> anyhow::Result<Tile> {
    let answer = c
        .set_ga_date(SetGaDateRequest {
            id: tile.id.clone(),
            ga_time: Some(ts(ga)),
            etag: tile.etag,
            reason: reason.into(),
            ..Default::default()
        })
        .await?;
    tile_of(answer.into_inner().tile, &tile.id)
}

/// Makes a tile SCHEDULED as a release engineer would: imports the
/// release's configuration, gives it the test workspace, passes its
/// validation, records the five sign-offs, finishes the go-to-market items
/// and sets GA at `ga` (at least 7 days after the clock's now, which the
/// registry checks).
pub async fn scheduled_tile(
    c: &mut RegistryServiceClient<Channel>,
    release: &Release<'_>,
    ga: Timestamp,
) -> anyhow::Result<Tile> {
    let tile = imported(c, release.config_json, release.id).await?;
    let tile = sign_off(c, &tile, &SIGN_OFF_ROLES, release.note).await?;
    let tile = gtm_done(c, &tile, release.gtm_due).await?;
    set_ga(c, &tile, ga, release.reason).await
}

/// How often [`start_rollout_retrying`] tries again at the most.
pub const START_RETRIES: usize = 20;

/// StartRollout as a client that retries what the service answers
/// UNAVAILABLE (an etcd read or write that timed out under load), every
/// 250 ms, up to [`START_RETRIES`] times. A retried start may have been
/// committed the first time: ALREADY_EXISTS or FAILED_PRECONDITION after a
/// retry reads the tile's roll-out instead. The roll-out and the number of
/// retries.
pub async fn start_rollout_retrying(
    c: &mut RolloutServiceClient<Channel>,
    spec: RolloutSpec,
) -> anyhow::Result<(Rollout, usize)> {
    let tile = spec.tile_id.clone();
    let mut retried = 0;
    loop {
        let answer = c
            .start_rollout(StartRolloutRequest {
                spec: Some(spec.clone()),
                ..Default::default()
            })
            .await;
        match answer {
            Ok(r) => {
                let r = r
                    .into_inner()
                    .rollout
                    .context("StartRollout answered without a roll-out")?;
                return Ok((r, retried));
            }
            Err(e) if e.code() == tonic::Code::Unavailable && retried < START_RETRIES => {
                retried += 1;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e)
                if retried > 0
                    && matches!(
                        e.code(),
                        tonic::Code::AlreadyExists | tonic::Code::FailedPrecondition
                    ) =>
            {
                let r = c
                    .get_rollout(GetRolloutRequest {
                        id: String::new(),
                        tile_id: tile.clone(),
                    })
                    .await
                    .with_context(|| format!("getting the roll-out of {tile} after a retried start ({e})"))?
                    .into_inner()
                    .rollout
                    .context("GetRollout answered without a roll-out")?;
                return Ok((r, retried));
            }
            Err(e) => {
                return Err(anyhow::Error::new(e)
                    .context(format!("starting a roll-out of {tile} (after {retried} retries)")));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protobuf_time_goes_there_and_back() {
        let t = t0() + SignedDuration::from_millis(1500);
        assert_eq!(from_ts(&Some(ts(t))), t);
        assert_eq!(from_ts(&None), Timestamp::UNIX_EPOCH);
        let d = dur(SignedDuration::from_millis(2500));
        assert_eq!((d.seconds, d.nanos), (2, 500_000_000));
    }

    #[test]
    fn the_fixtures_are_partner_configurations() {
        for doc in [RIVERFLOW, LUMEN] {
            let v: serde_json::Value = serde_json::from_str(doc).unwrap_or_default();
            assert!(v.is_object(), "{doc}");
        }
    }
}
