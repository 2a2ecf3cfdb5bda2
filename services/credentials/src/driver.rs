//! The driver: one owner per running rotation (`owners/credential-rotation-
//! <id>`, the store's owner loop, `run_once` per rotation as the rollout
//! service's controller does) carries out `tilewave_core::rotation::decide`.
//!
//! **Write-ahead.** Before any agent is called to install or verify, the
//! intent (the regions becoming INSTALLING or VERIFYING) is committed,
//! fenced by the owner's token; the answers are then applied with
//! `rotation::apply` and committed together. A crash between the two
//! leaves the intent stored, and the next owner re-issues exactly those
//! regions (agents treat a repeated install of the same fingerprint and
//! slot as a no-op), so no step is skipped and nothing is verified without
//! a verification. Promotion, retirement and withdrawal are called on every
//! region until each agent acknowledged (idempotent there), then recorded.

use std::collections::HashMap;

use jiff::Timestamp;
use tilewave_core::rotation::{self, Decision, Effect, Intent, Outcome};
use tilewave_proto::agent::v1::install_credential_request::Secret as WireSecret;
use tilewave_proto::agent::v1::{CredentialSlot, InstallCredentialRequest, VerifyCredentialRequest};
use tilewave_proto::common::v1::{Event, EventKind, Severity};
use tilewave_proto::credentials::v1::{CredentialKind, CredentialVersions, Rotation};
use tilewave_store::clock::to_proto_timestamp;
use tilewave_store::{Change, Owned, OwnerLoop, Shutdown, Versioned};
use tracing::Instrument as _;

use crate::convert::{self, kind_name};
use crate::error::{Error, Result};
use crate::model::{Ctx, terminal};

/// A step boundary a test may have a replica crash at (`--crash-at`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// The install intent is recorded; no agent was called.
    AfterInstallIntent,
    /// The first installs' answers are recorded (mid-distribution).
    MidDistribution,
    /// The verify intent is recorded; no agent was called.
    AfterVerifyIntent,
    /// Every agent acknowledged the promotion; it is not recorded.
    BeforePromotion,
}

impl CrashPoint {
    /// Parses the flag's value.
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        match s {
            "after-install-intent" => Ok(Self::AfterInstallIntent),
            "mid-distribution" => Ok(Self::MidDistribution),
            "after-verify-intent" => Ok(Self::AfterVerifyIntent),
            "before-promotion" => Ok(Self::BeforePromotion),
            other => Err(format!(
                "{other:?}: one of after-install-intent, mid-distribution, after-verify-intent, before-promotion"
            )),
        }
    }
}

/// Exits the process at once when `ctx` was told to crash at `point` (as
/// kill -9 would: nothing is released, the owner's lease expires).
fn crash_point(ctx: &Ctx, point: CrashPoint) {
    if ctx.crash_at == Some(point) {
        tracing::error!(at = ?point, "crash injection: exiting now");
        std::process::exit(86);
    }
}

/// How long to wait before trying agents again when one could not take a
/// promotion, retirement or withdrawal (real time).
const AGAIN: std::time::Duration = std::time::Duration::from_millis(500);

/// Adds what `effects` need to `change` (which writes `next`): the
/// CREDENTIAL_FAILED event, the versions' stage changes, and, once `next`
/// is over, the removal of the tile's active-rotation marker.
pub async fn with_effects(
    ctx: &Ctx,
    mut change: Change,
    next: &Rotation,
    effects: &[Effect],
    now: Timestamp,
) -> Result<Change> {
    let kind = CredentialKind::try_from(next.kind).unwrap_or(CredentialKind::PartnerBasicAuth);
    let kind_s = kind_name(kind);
    let mut versions: Option<(Versioned<CredentialVersions>, rotation::Versions)> = None;
    for e in effects {
        match e {
            Effect::CredentialFailedEvent { region, message } => {
                let ev = Event {
                    id: format!("{}-credential-failed-{}", next.id, now.as_millisecond()),
                    kind: EventKind::CredentialFailed as i32,
                    severity: Severity::Sev2 as i32,
                    at: Some(to_proto_timestamp(now)),
                    tile_id: next.tile_id.clone(),
                    rollout_id: String::new(),
                    region: region.clone(),
                    message: message.clone(),
                    origin: next.origin.clone(),
                    attributes: HashMap::from([("rotation".to_owned(), next.id.clone())]),
                };
                change = change.create(ctx.keys().event(&ev.id), &ev);
            }
            Effect::PromoteVersion(id) | Effect::RetireVersion(id) => {
                if versions.is_none() {
                    let stored = ctx.versions(&next.tile_id, kind).await?.ok_or_else(|| {
                        Error::FailedPrecondition(format!("{}'s {kind_s} versions are gone", next.tile_id))
                    })?;
                    let core = convert::versions(&stored.value);
                    versions = Some((stored, core));
                }
                if let Some((_, core)) = versions.as_mut() {
                    *core = match e {
                        Effect::PromoteVersion(_) => core.promote(*id)?,
                        _ => core.retire(*id)?,
                    };
                }
            }
            Effect::Withdraw { .. } => {}
        }
    }
    if let Some((stored, core)) = versions {
        let mut doc = stored.value.clone();
        convert::merge_versions(&mut doc, &core, now, None);
        change = change.update(stored.key.clone(), &doc, stored.etag);
    }
    if finished(next, now) {
        change = change.delete_unchecked(ctx.keys().credential_rotation_active(&next.tile_id, &kind_s));
    }
    Ok(change)
}

/// Whether a rotation needs nothing more: over, and (failed or cancelled)
/// its pending version withdrawn from every region it reached. Until
/// then it holds its tile (its active marker stays) and is driven.
pub fn finished(r: &Rotation, now: Timestamp) -> bool {
    terminal(r.state) && convert::rotation(r).is_ok_and(|core| rotation::decide(&core, now) == Decision::Done)
}

/// Drives every running rotation whose owner is free, until `shutdown`.
pub async fn run(ctx: Ctx, shutdown: Shutdown) {
    let mut changes = ctx.rotations.revision_watch();
    let mut driving: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    loop {
        driving.retain(|_, h| !h.is_finished());
        let now = ctx.clock.now();
        for r in ctx.rotations.list() {
            let id = r.value.id.clone();
            if finished(&r.value, now) || driving.contains_key(&id) {
                continue;
            }
            let owner = OwnerLoop::new(
                &ctx.store,
                tilewave_store::keys::work::credential_rotation(&id),
                &ctx.holder,
                ctx.ttl,
            );
            let origin = r.value.origin.clone().unwrap_or_default();
            let (ctx, shutdown, rid) = (ctx.clone(), shutdown.clone(), id.clone());
            let task = async move {
                let key = ctx.keys().credential_rotation(&rid);
                let needed = || {
                    ctx.rotations
                        .get(&key)
                        .is_some_and(|r| !finished(&r.value, ctx.clock.now()))
                };
                let work = |owned| {
                    let span = tilewave_telemetry::span_linked_to(&origin, "credentials.rotate");
                    // Boxed: the driving future is large (debug builds
                    // overflowed a worker's stack with it inline).
                    Box::pin(drive(ctx.clone(), rid.clone(), owned)).instrument(span)
                };
                match owner.run_once_when_free(&shutdown, needed, work).await {
                    Ok(Some(tilewave_store::Ended::Finished(Err(e)))) => {
                        tracing::warn!(rotation = %rid, error = %e, "stopped driving the rotation");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::debug!(rotation = %rid, error = %e, "cannot take ownership"),
                }
            };
            driving.insert(id, tokio::spawn(task));
        }
        tokio::select! {
            () = shutdown.requested() => break,
            _ = changes.changed() => {}
            () = tokio::time::sleep(ctx.ttl / 3) => {}
        }
    }
    for (_, h) in driving {
        let _ = h.await;
    }
}

/// Commits `outcomes` applied in order to the stored rotation, fenced;
/// once one of them ends the rotation (a region out of attempts), the rest
/// are dropped (a rotation that had ended before the batch, being
/// withdrawn, takes them all).
async fn commit_outcomes(
    ctx: &Ctx,
    owned: &Owned,
    stored: &Versioned<Rotation>,
    outcomes: Vec<Outcome>,
) -> Result<()> {
    let now = ctx.clock.now();
    let mut core = convert::rotation(&stored.value)?;
    let mut effects = Vec::new();
    let mut summaries = Vec::new();
    // A stored failed or cancelled rotation still takes its withdrawal.
    let ended_before = core.state.is_terminal();
    for o in outcomes {
        // A region's last failed attempt may have failed the rotation in
        // this batch: the answers after it change nothing.
        if !ended_before && core.state.is_terminal() {
            break;
        }
        let t = rotation::apply(&core, o, now)?;
        core = t.rotation;
        effects.extend(t.effects);
        summaries.push(t.summary);
    }
    let next = convert::rotation_to_wire(&core, &stored.value);
    let change = with_effects(
        ctx,
        Change::new().update(stored.key.clone(), &next, stored.etag),
        &next,
        &effects,
        now,
    )
    .await?
    .fence(&owned.token())
    .audit(tilewave_store::audit::record(
        "RotationStep",
        "rotation",
        &next.id,
        summaries.join("; "),
    ));
    ctx.store.commit(change, &ctx.actor).await?;
    Ok(())
}

/// The request to an agent about a credential of the rotation's tile.
fn install(
    r: &Rotation,
    fingerprint: &str,
    username: &str,
    slot: CredentialSlot,
    token: i64,
) -> InstallCredentialRequest {
    InstallCredentialRequest {
        tile_id: r.tile_id.clone(),
        kind: r.kind,
        fingerprint: fingerprint.to_owned(),
        username: username.to_owned(),
        slot: slot as i32,
        secret: None,
        fencing_token: token,
        credential_id: format!(
            "{}/{}/{}",
            r.tile_id,
            kind_name(CredentialKind::try_from(r.kind).unwrap_or(CredentialKind::PartnerBasicAuth)),
            if fingerprint == r.old_fingerprint {
                r.from_version
            } else {
                r.to_version
            }
        ),
        partner: None,
    }
}

/// Calls `req` on every region's agent at once; the regions that failed,
/// with why.
async fn on_agents(ctx: &Ctx, regions: &[String], req: &InstallCredentialRequest) -> Vec<(String, String)> {
    let calls = regions.iter().map(|region| {
        let req = req.clone();
        async move {
            let result = match ctx.agents.client(region).await {
                Ok(mut c) => c
                    .install_credential(request(req, ctx.agents.timeout()))
                    .await
                    .map(drop)
                    .map_err(|s| tilewave_service::in_words(&s)),
                Err(e) => Err(e.to_string()),
            };
            (region.clone(), result)
        }
    });
    futures::future::join_all(calls)
        .await
        .into_iter()
        .filter_map(|(r, res)| res.err().map(|e| (r, e)))
        .collect()
}

/// A request with the service's deadline.
fn request<T>(msg: T, timeout: std::time::Duration) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.set_timeout(timeout);
    r
}

/// Drives rotation `id` while this replica owns it.
pub async fn drive(ctx: Ctx, id: String, owned: Owned) -> Result<()> {
    loop {
        if owned.is_lost() {
            return Ok(());
        }
        let stored = ctx.rotation(&id).await?;
        let r = stored.value.clone();
        let core = convert::rotation(&r)?;
        let now = ctx.clock.now();
        let kind = CredentialKind::try_from(r.kind).unwrap_or(CredentialKind::PartnerBasicAuth);
        let token = owned.token().agent_token();
        let username = || async {
            Ok::<String, Error>(
                ctx.versions(&r.tile_id, kind)
                    .await?
                    .and_then(|v| {
                        v.value
                            .versions
                            .iter()
                            .find(|c| c.version == r.to_version)
                            .map(|c| c.username.clone())
                    })
                    .unwrap_or_default(),
            )
        };
        match rotation::decide(&core, now) {
            Decision::Install { regions } => {
                commit_outcomes(
                    &ctx,
                    &owned,
                    &stored,
                    vec![Outcome::IntentRecorded {
                        regions: regions.clone(),
                        intent: Intent::Install,
                    }],
                )
                .await?;
                crash_point(&ctx, CrashPoint::AfterInstallIntent);
                let secret = ctx
                    .secret(&r.tile_id, kind, u64::try_from(r.to_version).unwrap_or(0))
                    .await?;
                let mut req = install(
                    &r,
                    &r.new_fingerprint,
                    &username().await?,
                    CredentialSlot::Pending,
                    token,
                );
                req.secret = Some(WireSecret::Plaintext(secret.expose().to_owned()));
                // The partner's API, so a region where the tile is not live
                // yet (a launch's pre-flight) can verify it too.
                req.partner = ctx.tile(&r.tile_id).ok().and_then(|t| t.config);
                let failed: HashMap<String, String> =
                    on_agents(&ctx, &regions, &req).await.into_iter().collect();
                let outcomes = regions
                    .into_iter()
                    .map(|region| match failed.get(&region) {
                        Some(error) => Outcome::InstallFailed {
                            region,
                            error: error.clone(),
                        },
                        None => Outcome::Installed { region },
                    })
                    .collect();
                let stored = ctx.rotation(&id).await?;
                commit_outcomes(&ctx, &owned, &stored, outcomes).await?;
                crash_point(&ctx, CrashPoint::MidDistribution);
            }
            Decision::Verify { regions } => {
                commit_outcomes(
                    &ctx,
                    &owned,
                    &stored,
                    vec![Outcome::IntentRecorded {
                        regions: regions.clone(),
                        intent: Intent::Verify,
                    }],
                )
                .await?;
                crash_point(&ctx, CrashPoint::AfterVerifyIntent);
                let calls = regions.iter().map(|region| {
                    let ctx = &ctx;
                    let r = &r;
                    async move {
                        let answer = match ctx.agents.client(region).await {
                            Ok(mut c) => c
                                .verify_credential(request(
                                    VerifyCredentialRequest {
                                        tile_id: r.tile_id.clone(),
                                        fingerprint: r.new_fingerprint.clone(),
                                    },
                                    ctx.agents.timeout(),
                                ))
                                .await
                                .map(tonic::Response::into_inner)
                                .map_err(|s| tilewave_service::in_words(&s)),
                            Err(e) => Err(e.to_string()),
                        };
                        match answer {
                            Ok(a) if a.ok => Outcome::Verified {
                                region: region.clone(),
                            },
                            Ok(a) => Outcome::VerifyFailed {
                                region: region.clone(),
                                error: a.probe.map_or_else(
                                    || "the partner refused the credential".to_owned(),
                                    |p| {
                                        format!(
                                            "the partner answered {}{}",
                                            p.http_status,
                                            if p.message.is_empty() {
                                                String::new()
                                            } else {
                                                format!(": {}", p.message)
                                            }
                                        )
                                    },
                                ),
                            },
                            Err(error) => Outcome::VerifyFailed {
                                region: region.clone(),
                                error,
                            },
                        }
                    }
                });
                let outcomes = futures::future::join_all(calls).await;
                let stored = ctx.rotation(&id).await?;
                commit_outcomes(&ctx, &owned, &stored, outcomes).await?;
            }
            Decision::Promote => {
                let regions: Vec<String> = core.waves.iter().flatten().cloned().collect();
                let req = install(
                    &r,
                    &r.new_fingerprint,
                    &username().await?,
                    CredentialSlot::Current,
                    token,
                );
                let failed = on_agents(&ctx, &regions, &req).await;
                if failed.is_empty() {
                    crash_point(&ctx, CrashPoint::BeforePromotion);
                    commit_outcomes(&ctx, &owned, &stored, vec![Outcome::Promoted]).await?;
                } else {
                    tracing::warn!(rotation = %id, failed = ?failed, "promotion not acknowledged everywhere yet");
                    wait(&ctx, &owned, None).await;
                }
            }
            Decision::NotifyPartner => {
                // The partner's notification channel is the audit record
                // and the rotation's state (`tilewave creds status`) until
                // the escalation service's webhooks exist.
                commit_outcomes(&ctx, &owned, &stored, vec![Outcome::PartnerNotified]).await?;
            }
            Decision::Retire => {
                let regions: Vec<String> = core.waves.iter().flatten().cloned().collect();
                let req = install(&r, &r.old_fingerprint, "", CredentialSlot::Retired, token);
                let failed = if r.old_fingerprint.is_empty() {
                    Vec::new()
                } else {
                    on_agents(&ctx, &regions, &req).await
                };
                if failed.is_empty() {
                    commit_outcomes(&ctx, &owned, &stored, vec![Outcome::Retired]).await?;
                } else {
                    tracing::warn!(rotation = %id, failed = ?failed, "retirement not acknowledged everywhere yet");
                    wait(&ctx, &owned, None).await;
                }
            }
            Decision::Withdraw { regions } => {
                let req = install(&r, &r.new_fingerprint, "", CredentialSlot::Retired, token);
                let failed = on_agents(&ctx, &regions, &req).await;
                if failed.is_empty() {
                    commit_outcomes(&ctx, &owned, &stored, vec![Outcome::Withdrawn]).await?;
                } else {
                    tracing::warn!(rotation = %id, failed = ?failed, "withdrawal not acknowledged everywhere yet");
                    wait(&ctx, &owned, None).await;
                }
            }
            Decision::WaitUntil(t) => wait(&ctx, &owned, Some(t)).await,
            Decision::AwaitConfirmation => wait(&ctx, &owned, None).await,
            Decision::Done => return Ok(()),
            Decision::Inconsistent(m) => {
                return Err(Error::FailedPrecondition(format!("rotation {id}: {m}")));
            }
        }
    }
}

/// Waits for a change of the rotations, the domain time `until`, a
/// moment to try agents again, or the loss of ownership.
async fn wait(ctx: &Ctx, owned: &Owned, until: Option<Timestamp>) {
    let mut changes = ctx.rotations.revision_watch();
    let clock = ctx.clock.clone();
    let due = async move {
        match until {
            Some(t) => clock.sleep_until(t).await,
            None => tokio::time::sleep(AGAIN).await,
        }
    };
    tokio::select! {
        () = owned.stopping() => {}
        _ = changes.changed() => {}
        () = due => {}
    }
}
