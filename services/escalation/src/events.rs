//! Events in: one replica at a time (`owners/escalation-events`) reads
//! `events/` in creation order from a cursor stored in etcd
//! (`escalation-cursor`: the create revision of the last event consumed)
//! and turns ROLLOUT_FAILED, DEADLINE_AT_RISK, CREDENTIAL_FAILED and
//! DRIFT_REPAIRED into incidents with `core::route`: a repeat of an open
//! incident's failure folds into it (count + 1), a repeat of a resolved
//! one opens a new, linked incident. The incident's write and the
//! cursor's move are one fenced transaction, so no event is lost or
//! handled twice across restarts. Other kinds only move the cursor.

use std::time::Duration;

use tilewave_core::escalation::{self as core, Command, Effect, NewIncident, Route, Severity, Side, Source};
use tilewave_proto::common::v1::{Event, EventKind};
use tilewave_proto::escalation::v1 as wire;
use tilewave_proto::registry::v1::Tile;
use tilewave_store::{Change, FencingToken, Owned, OwnerLoop, Shutdown, Versioned, WatchCache};

use crate::convert;
use crate::error::{Error, Result};
use crate::model::{Ctx, IncidentWrite, advance, next_timer};
use crate::service::{Opening, open_incident, pause_rollouts};

/// How often `events/` is looked at when nothing changes (real time).
const IDLE_PASS: Duration = Duration::from_secs(2);

/// The most events one removal transaction deletes.
const MAX_REMOVED: usize = 100;

/// The longest incident title made from an event.
const MAX_TITLE: usize = 200;

/// Runs the consumer whenever this replica owns it.
pub async fn run(ctx: Ctx, shutdown: Shutdown) {
    let owner = OwnerLoop::new(
        &ctx.store,
        tilewave_store::keys::work::ESCALATION_EVENTS,
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
    let cache = WatchCache::<Event>::prefix(&ctx.store, &ctx.keys().events()).await?;
    let mut changes = cache.revision_watch();
    loop {
        changes.borrow_and_update();
        match pass(&ctx, &owned.token(), &cache).await {
            Ok(()) => {}
            Err(Error::Store(e @ tilewave_store::Error::Fenced { .. })) => return Err(e),
            Err(e) => tracing::warn!(error = %e, "consuming events failed; trying again"),
        }
        tokio::select! {
            () = owned.stopping() => return Ok(()),
            _ = changes.changed() => {}
            () = tokio::time::sleep(IDLE_PASS) => {}
        }
    }
}

/// Consumes every event after the cursor, one transaction each.
async fn pass(ctx: &Ctx, token: &FencingToken, cache: &WatchCache<Event>) -> Result<()> {
    let cursor_key = ctx.keys().escalation_cursor();
    let cursor = ctx
        .store
        .get::<wire::EventCursor>(&cursor_key)
        .await?
        .map_or(0, |c| c.value.revision);
    let mut events: Vec<Versioned<Event>> = cache
        .list()
        .into_iter()
        .filter(|e| e.create_revision > cursor)
        .collect();
    events.sort_by_key(|e| e.create_revision);
    let mut last = cursor;
    for e in events {
        let moved = Change::new().put_unchecked(
            cursor_key.clone(),
            &wire::EventCursor {
                revision: e.create_revision,
            },
        );
        consume(ctx, token, &e.value, moved).await?;
        last = e.create_revision;
    }
    if let Some(keep) = ctx.event_retention {
        remove_old(ctx, token, cache, last, keep).await?;
    }
    Ok(())
}

/// Deletes the consumed events (created at or before `cursor`) older than
/// `keep` in domain time, in one fenced, audited transaction.
async fn remove_old(
    ctx: &Ctx,
    token: &FencingToken,
    cache: &WatchCache<Event>,
    cursor: i64,
    keep: jiff::SignedDuration,
) -> Result<()> {
    let Ok(before) = ctx.clock.now().checked_sub(keep) else {
        return Ok(());
    };
    let old: Vec<Versioned<Event>> = cache
        .list()
        .into_iter()
        .filter(|e| e.create_revision <= cursor)
        .filter(|e| convert::ts(e.value.at.as_ref()).is_some_and(|at| at < before))
        .take(MAX_REMOVED)
        .collect();
    if old.is_empty() {
        return Ok(());
    }
    let mut change = Change::new();
    for e in &old {
        change = change.delete(e.key.clone(), e.etag);
    }
    let change = change.fence(token).audit(tilewave_store::audit::record(
        "RemoveEvents",
        "event",
        &old[0].value.id,
        format!("removed {} consumed event(s) older than {before}", old.len()),
    ));
    match ctx.store.commit(change, &ctx.actor).await {
        Ok(_) => Ok(()),
        // One changed or went since the listing: the next pass retries.
        Err(tilewave_store::Error::Conflict { .. } | tilewave_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// What an event raises, if anything: its source, severity and side.
fn source_of(e: &Event) -> Option<(Source, Side)> {
    let kind = EventKind::try_from(e.kind).ok()?;
    Some(match kind {
        EventKind::RolloutFailed => (
            Source::RolloutFailure {
                rollout: e.rollout_id.clone(),
                wave: e.attributes.get("wave").and_then(|w| w.parse().ok()).unwrap_or(0),
            },
            Side::Platform,
        ),
        EventKind::DeadlineAtRisk => (
            Source::DeadlineAtRisk {
                rollout: e.rollout_id.clone(),
            },
            Side::Platform,
        ),
        EventKind::CredentialFailed => (
            Source::CredentialFailure {
                rotation: e.attributes.get("rotation").cloned().unwrap_or_default(),
            },
            Side::Partner,
        ),
        EventKind::DriftRepaired => (Source::Drift, Side::Platform),
        EventKind::Unspecified | EventKind::RolloutSucceeded | EventKind::PreflightFailed => return None,
    })
}

fn title(e: &Event) -> String {
    let mut t = format!("{}: {}", e.tile_id, e.message.trim());
    if t.chars().count() > MAX_TITLE {
        t = t.chars().take(MAX_TITLE).collect::<String>() + "...";
    }
    t
}

/// Turns one event into an incident's change, with the cursor's move.
async fn consume(ctx: &Ctx, token: &FencingToken, e: &Event, moved: Change) -> Result<()> {
    let Some((source, side)) = source_of(e).filter(|_| !e.tile_id.is_empty()) else {
        ctx.store.commit(moved.fence(token), &ctx.actor).await?;
        return Ok(());
    };
    let severity = convert::severity(e.severity).unwrap_or(Severity::Sev2);
    let regions: Vec<String> = (!e.region.is_empty())
        .then(|| e.region.clone())
        .into_iter()
        .collect();
    let key = source.dedup_key(&e.tile_id);
    let latest = ctx
        .store
        .list::<wire::Incident>(&ctx.keys().incidents())
        .await?
        .items
        .into_iter()
        .filter(|i| key.is_some() && Some(&i.value.dedup_key) == key.as_ref())
        .max_by_key(|i| i.create_revision);
    let latest_core = latest.as_ref().map(|i| convert::incident(&i.value));
    match core::route(key.as_deref(), latest_core.as_ref()) {
        Route::Fold { .. } => {
            let Some(prev) = latest else {
                return Ok(());
            };
            let before = convert::incident(&prev.value);
            let now = ctx.clock.now();
            let cmd = Command::EventArrived(core::Event {
                source,
                tile: e.tile_id.clone(),
                regions,
                severity,
                message: e.message.clone(),
            });
            let t = match core::handle(&before, &cmd, now, core::SYSTEM_ACTOR) {
                Ok(t) => t,
                Err(refused) => {
                    tracing::warn!(event = %e.id, %refused, "event not folded");
                    ctx.store.commit(moved.fence(token), &ctx.actor).await?;
                    return Ok(());
                }
            };
            let mut w = IncidentWrite::new(Some(prev), t.incident, now);
            let mut pauses = Vec::new();
            if t.effects.contains(&Effect::Escalate) {
                let adv = advance(
                    &ctx.policies().await?,
                    &ctx.directory().await?,
                    w.incident.clone(),
                    now,
                );
                w.incident = adv.incident;
                w.notifications = adv.notifications;
                w.timer = next_timer(adv.timer, &w.incident, now);
                pauses = adv.effects;
            }
            let change = w
                .change(ctx.keys(), "EventArrived", t.summary)?
                .merge(moved)
                .fence(token);
            ctx.store.commit(change, &ctx.actor).await?;
            pause_rollouts(ctx, &w.incident.id, &pauses).await;
            Ok(())
        }
        Route::Open | Route::OpenLinked { .. } => {
            let linked_to = match core::route(key.as_deref(), latest_core.as_ref()) {
                Route::OpenLinked { previous } => Some(previous),
                Route::Open | Route::Fold { .. } => None,
            };
            let tile = ctx
                .store
                .get::<Tile>(&ctx.keys().tile(&e.tile_id))
                .await?
                .map(|t| t.value);
            let policies = ctx.policies().await?;
            let policy = core::policy_for(&policies, severity)
                .map(|p| p.name.clone())
                .unwrap_or_else(|| "default".to_owned());
            let opening = Opening {
                new: NewIncident {
                    id: String::new(),
                    title: title(e),
                    tile: e.tile_id.clone(),
                    regions,
                    severity,
                    source,
                    side,
                    partner: tile
                        .as_ref()
                        .map(|t| t.partner_id.clone())
                        .filter(|p| !p.is_empty()),
                    rollout: (!e.rollout_id.is_empty()).then(|| e.rollout_id.clone()),
                    deadline: tile.as_ref().and_then(|t| convert::ts(t.ga_time.as_ref())),
                    policy,
                    linked_to,
                },
                sop: None,
                origin: e.origin.clone(),
            };
            open_incident(ctx, &ctx.actor, opening, moved, Some(token)).await?;
            Ok(())
        }
    }
}
