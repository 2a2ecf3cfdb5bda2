//! Scheduled rotations: one replica at a time (`owners/credential-
//! schedules`, the owner loop) looks at every schedule whenever the domain
//! clock reaches the earliest next rotation (or every 2 s). A schedule that
//! is due, for a tile no rotation holds, starts a rotation to the tile's
//! PENDING version, as StartRotation would (started by
//! `system:credentials-schedule`), and its next moment is computed from
//! now. A partner's Basic-auth credential is issued by the partner: with no
//! PENDING version to rotate to, the due rotation raises one event per due
//! moment asking for it (`tilewave creds submit TILE`), and waits.

use std::collections::HashMap;
use std::time::Duration;

use jiff::Timestamp;
use tilewave_proto::common::v1::{Event, EventKind, Severity};
use tilewave_proto::credentials::v1::{CredentialKind, RotationSchedule, StartRotationRequest};
use tilewave_store::clock::{from_proto_timestamp, to_proto_timestamp};
use tilewave_store::{Actor, Change, FencingToken, Owned, OwnerLoop, Shutdown};

use crate::convert::{self, kind_name};
use crate::error::Result;
use crate::model::Ctx;

/// How often a pass runs when nothing falls due (real time).
const IDLE_PASS: Duration = Duration::from_secs(2);

/// Runs the schedules whenever this replica owns them, until `shutdown`.
pub async fn run(ctx: Ctx, shutdown: Shutdown) {
    let owner = OwnerLoop::new(
        &ctx.store,
        tilewave_store::keys::work::CREDENTIAL_SCHEDULES,
        &ctx.holder,
        ctx.ttl,
    );
    owner
        .run(&shutdown, |owned| {
            let ctx = ctx.clone();
            async move { Box::pin(work(ctx, owned)).await }
        })
        .await;
}

async fn work(ctx: Ctx, owned: Owned) -> tilewave_store::Result<()> {
    loop {
        let next = match pass(&ctx, &owned.token()).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "rotation schedule pass failed; trying again");
                None
            }
        };
        let clock = ctx.clock.clone();
        let due = async move {
            match next {
                Some(t) => clock.sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = owned.stopping() => return Ok(()),
            () = due => {}
            () = tokio::time::sleep(IDLE_PASS) => {}
        }
    }
}

/// One look at every schedule; the earliest moment one falls due.
async fn pass(ctx: &Ctx, token: &FencingToken) -> Result<Option<Timestamp>> {
    let now = ctx.clock.now();
    let schedules = ctx
        .store
        .list::<RotationSchedule>(&ctx.keys().credential_schedules())
        .await?
        .items;
    let mut next: Option<Timestamp> = None;
    for stored in schedules {
        let s = &stored.value;
        let Some(due) = s.next_due.as_ref().and_then(|t| from_proto_timestamp(t).ok()) else {
            continue;
        };
        if due > now {
            next = Some(next.map_or(due, |n| n.min(due)));
            continue;
        }
        let kind = CredentialKind::try_from(s.kind).unwrap_or(CredentialKind::PartnerBasicAuth);
        let Ok(tile) = ctx.tile(&s.tile_id) else { continue };
        if ctx
            .latest_rotation(&tile.id, kind)
            .is_some_and(|l| !crate::driver::finished(&l.value, now))
        {
            continue;
        }
        let pending = ctx
            .versions(&tile.id, kind)
            .await?
            .is_some_and(|v| convert::versions(&v.value).pending().is_some());
        if !pending {
            ask_for_credential(ctx, token, s, due, now).await;
            continue;
        }
        let req = StartRotationRequest {
            tile_id: tile.id.clone(),
            kind: kind as i32,
            ..Default::default()
        };
        let actor = Actor::system("credentials-schedule");
        let origin = tilewave_telemetry::current_origin();
        match crate::service::start_rotation(ctx, &actor, origin, &tile, &req).await {
            Ok(r) => tracing::info!(tile = %tile.id, rotation = %r.id, "scheduled rotation started"),
            Err(e) => {
                tracing::warn!(tile = %tile.id, error = %e, "scheduled rotation could not start");
                continue;
            }
        }
        let mut next_s = s.clone();
        next_s.next_due = crate::service::next_due(ctx, s, now)
            .await?
            .map(to_proto_timestamp);
        let change = Change::new()
            .update(stored.key.clone(), &next_s, stored.etag)
            .fence(token)
            .audit(tilewave_store::audit::record(
                "ScheduledRotation",
                "credential",
                &tile.id,
                format!(
                    "scheduled rotation of {}'s {} credential started; the next is due {}",
                    tile.id,
                    kind_name(kind),
                    next_s
                        .next_due
                        .as_ref()
                        .and_then(|t| from_proto_timestamp(t).ok())
                        .map_or_else(|| "never (no slot within a year)".to_owned(), |t| t.to_string())
                ),
            ));
        ctx.store.commit(change, &actor).await?;
    }
    Ok(next)
}

/// Raises, once per due moment, the event asking the partner for a new
/// credential.
async fn ask_for_credential(
    ctx: &Ctx,
    token: &FencingToken,
    s: &RotationSchedule,
    due: Timestamp,
    now: Timestamp,
) {
    let kind = CredentialKind::try_from(s.kind).unwrap_or(CredentialKind::PartnerBasicAuth);
    let ev = Event {
        id: format!(
            "rotation-due-{}-{}-{}",
            s.tile_id,
            kind_name(kind),
            due.as_second()
        ),
        kind: EventKind::CredentialFailed as i32,
        severity: Severity::Sev3 as i32,
        at: Some(to_proto_timestamp(now)),
        tile_id: s.tile_id.clone(),
        rollout_id: String::new(),
        region: String::new(),
        message: format!(
            "the {} credential of {} is due for rotation since {due}, and no new one was handed in: \
             the partner submits it with `tilewave creds submit {}`",
            kind_name(kind),
            s.tile_id,
            s.tile_id
        ),
        origin: None,
        attributes: HashMap::from([("reason".to_owned(), "rotation-due".to_owned())]),
    };
    let change = Change::new().create(ctx.keys().event(&ev.id), &ev).fence(token);
    match ctx.store.commit(change, &ctx.actor).await {
        Ok(_) => tracing::warn!(tile = %s.tile_id, "{}", ev.message),
        Err(tilewave_store::Error::AlreadyExists { .. }) => {}
        Err(e) => tracing::debug!(tile = %s.tile_id, error = %e, "could not raise the rotation-due event"),
    }
}
