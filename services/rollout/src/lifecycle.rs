//! The lifecycle loop: what the rollout service does on its own when a
//! tile or a roll-out reaches a state that asks for it. One replica runs it
//! at a time, under `owners/lifecycle`, driven by the watch caches of tiles
//! (read-only: the registry stays the only writer of tiles) and roll-outs.
//!
//! - **Removals**: a tile the registry marked for withdrawal
//!   (`withdraw_requested_at` set) gets a WITHDRAW roll-out, started through
//!   the same path as StartRollout (so the per-tile active marker and the
//!   create-if-absent roll-out id keep it to one). A launch or maintenance
//!   roll-out of the tile still running is aborted first (the lifecycle's
//!   AbortRollout effect). When the removal succeeds, its AdvanceLifecycle
//!   (WITHDRAWN) confirms the withdrawal and the registry clears the mark.
//!   Where the tile was never applied anywhere, the withdrawal is confirmed
//!   at once.
//! - **Finished roll-outs**: a roll-out that ended ABORTED or ROLLED_BACK
//!   while its tile is still ROLLING_OUT for its revision (say the replica
//!   that committed the abort died before telling the registry) moves the
//!   tile back to SCHEDULED (a maintenance revision: back to SIGNED_OFF).
//!   AdvanceLifecycle is called only after a fresh read of the tile, so
//!   repeating it is harmless.

use std::collections::{BTreeSet, HashMap, HashSet};

use jiff::SignedDuration;
use tilewave_core::rollout::State;
use tilewave_proto::common::v1::TileState;
use tilewave_proto::registry::v1::{MaintenanceState, Tile};
use tilewave_proto::rollout::v1::{Rollout, RolloutKind, RolloutSpec, RolloutStep};
use tilewave_store::{OwnerLoop, Shutdown, Versioned};
use tracing::Instrument as _;

use crate::convert;
use crate::error::{Error, Result};
use crate::model::{Ctx, is_terminal};
use crate::service::Rollouts;
use crate::spec::proto_duration;

/// Runs the lifecycle loop whenever this replica owns it, until `shutdown`.
/// `removal_bake`: the bake of each wave of a removal roll-out.
pub async fn run(ctx: Ctx, removal_bake: SignedDuration, shutdown: Shutdown) {
    let service = Rollouts::new(ctx.clone());
    let owner = OwnerLoop::new(
        &ctx.store,
        tilewave_store::keys::work::LIFECYCLE,
        &ctx.holder,
        ctx.ttl,
    );
    owner
        .run(&shutdown, |_owned| owned_loop(&ctx, &service, removal_bake))
        .await;
}

/// The loop while this replica owns the work: a pass on every change of the
/// tiles or roll-outs (at least every third of the TTL). The owner loop
/// stops it at once on loss or shutdown.
async fn owned_loop(
    ctx: &Ctx,
    service: &Rollouts,
    removal_bake: SignedDuration,
) -> std::result::Result<(), std::convert::Infallible> {
    tracing::info!(holder = %ctx.holder, "running the lifecycle loop");
    let mut tiles = ctx.tiles.revision_watch();
    let mut rollouts = ctx.rollouts.revision_watch();
    loop {
        tiles.borrow_and_update();
        rollouts.borrow_and_update();
        pass(ctx, service, removal_bake).await;
        let changed = tokio::select! {
            _ = tiles.changed() => true,
            _ = rollouts.changed() => true,
            () = tokio::time::sleep(ctx.ttl / 3) => false,
        };
        if changed {
            // One pass for a burst of changes (every step of every running
            // roll-out is one), as the GA scheduler does.
            tokio::time::sleep(crate::model::CHANGE_DEBOUNCE).await;
        }
    }
}

/// One look at every tile that may need something: a tile marked for
/// withdrawal, or one still rolling out whose latest roll-out ended
/// unfinished. Only those tiles and their roll-outs are copied out of the
/// caches (a pass runs on every burst of changes, with a thousand
/// roll-outs under way).
async fn pass(ctx: &Ctx, service: &Rollouts, removal_bake: SignedDuration) {
    // Each tile's latest roll-out (by creation): whether it ended
    // unfinished, and its kind and revision.
    let mut latest: HashMap<String, (i64, bool, RolloutKind, i64)> = HashMap::new();
    for (tile_id, now) in ctx.rollouts.scan(|r| {
        let kind = RolloutKind::try_from(r.value.kind).unwrap_or(RolloutKind::Launch);
        Some((
            r.value.tile_id.clone(),
            (
                r.create_revision,
                ended_unfinished(&r.value),
                kind,
                r.value.revision,
            ),
        ))
    }) {
        let e = latest.entry(tile_id).or_insert(now);
        if now.0 >= e.0 {
            *e = now;
        }
    }
    // What `remove` and `settle_finished` act on; the rest is left alone
    // without being copied.
    let tiles = ctx.tiles.scan(|t| {
        let tile = &t.value;
        let settle = latest
            .get(&tile.id)
            .is_some_and(|(_, unfinished, kind, revision)| {
                *unfinished && rolling_out(tile, *kind, *revision)
            });
        (tile.withdraw_requested_at.is_some() || settle).then(|| tile.clone())
    });
    if tiles.is_empty() {
        return;
    }
    let wanted: HashSet<&str> = tiles.iter().map(|t| t.id.as_str()).collect();
    let mut by_tile: HashMap<String, Vec<Versioned<Rollout>>> = HashMap::new();
    for r in ctx
        .rollouts
        .scan(|r| wanted.contains(r.value.tile_id.as_str()).then(|| r.clone()))
    {
        by_tile.entry(r.value.tile_id.clone()).or_default().push(r);
    }
    for list in by_tile.values_mut() {
        list.sort_by_key(|r| r.create_revision);
    }
    for tile in &tiles {
        let of_tile = by_tile.get(&tile.id).map(Vec::as_slice).unwrap_or_default();
        let result = if tile.withdraw_requested_at.is_some() {
            remove(ctx, service, tile, of_tile, removal_bake).await
        } else {
            settle_finished(ctx, tile, of_tile).await
        };
        if let Err(e) = result {
            tracing::warn!(tile = %tile.id, error = %e, "lifecycle step failed; trying again later");
        }
    }
}

/// A roll-out that ended without completing, as the latest of its tile.
fn ended_unfinished(r: &Rollout) -> bool {
    matches!(
        convert::state(r.state),
        Some(State::Aborted | State::RolledBack | State::Failed)
    )
}

/// Whether `tile` shows a roll-out of `kind` under way for `revision`.
fn rolling_out(tile: &Tile, kind: RolloutKind, revision: i64) -> bool {
    if tile.revision != revision {
        return false;
    }
    match kind {
        RolloutKind::Launch | RolloutKind::Unspecified => tile.state() == TileState::RollingOut,
        RolloutKind::Maintenance => {
            tile.state() == TileState::Ga && tile.maintenance_state() == MaintenanceState::RollingOut
        }
        RolloutKind::Withdraw => false,
    }
}

/// The tile's latest roll-out ended ABORTED or ROLLED_BACK but the tile is
/// still ROLLING_OUT for it: move it back (SCHEDULED).
async fn settle_finished(ctx: &Ctx, cached: &Tile, of_tile: &[Versioned<Rollout>]) -> Result<()> {
    let Some(latest) = of_tile.last().map(|r| &r.value) else {
        return Ok(());
    };
    let kind = RolloutKind::try_from(latest.kind).unwrap_or(RolloutKind::Launch);
    if !ended_unfinished(latest) || !rolling_out(cached, kind, latest.revision) {
        return Ok(());
    }
    // The cache may lag: decide on a fresh read.
    let tile = ctx.registry.get_tile(&cached.id, 0).await?;
    if !rolling_out(&tile, kind, latest.revision) {
        return Ok(());
    }
    let ended = crate::model::state_name(latest.state).to_ascii_lowercase();
    tracing::info!(tile = %tile.id, rollout = %latest.id, %ended, "moving the tile back: its roll-out ended");
    ctx.registry
        .advance(
            &tile.id,
            TileState::Scheduled,
            latest.revision,
            &format!("roll-out {} {ended}", latest.id),
            &latest.id,
        )
        .await?;
    Ok(())
}

/// Regions where a roll-out of the tile other than a removal may have put
/// it: every step that started applying and was not rolled back.
async fn touched_regions(ctx: &Ctx, of_tile: &[Versioned<Rollout>]) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for r in of_tile {
        if r.value.kind() == RolloutKind::Withdraw {
            continue;
        }
        let steps = ctx
            .store
            .list::<RolloutStep>(&ctx.keys().rollout_steps(&r.value.id))
            .await?
            .items;
        out.extend(
            steps
                .iter()
                .map(|s| convert::step(&s.value))
                .filter(|s| s.touched())
                .map(|s| s.region),
        );
    }
    Ok(out)
}

/// A tile marked for withdrawal: abort what still runs, then start (once)
/// the removal roll-out, or confirm at once when there is nothing to remove.
async fn remove(
    ctx: &Ctx,
    service: &Rollouts,
    cached: &Tile,
    of_tile: &[Versioned<Rollout>],
    removal_bake: SignedDuration,
) -> Result<()> {
    if let Some(active) = of_tile.iter().find(|r| !is_terminal(r.value.state)) {
        let r = &active.value;
        if r.kind() == RolloutKind::Withdraw || convert::state(r.state) == Some(State::RollingBack) {
            // The removal runs, or a rollback finishes first.
            return Ok(());
        }
        tracing::info!(tile = %r.tile_id, rollout = %r.id, "aborting the roll-out of a withdrawn tile");
        match service
            .abort(&ctx.actor, &r.id, active.etag, "the tile is withdrawn")
            .await
        {
            Ok(_) | Err(Error::Conflict(_) | Error::FailedPrecondition(_)) => {}
            Err(Error::Store(tilewave_store::Error::Conflict { .. })) => {}
            Err(e) => return Err(e),
        }
        // The next pass (woken by the change) starts the removal.
        return Ok(());
    }
    // The cache may lag behind a confirmation: decide on a fresh read.
    let tile = ctx.registry.get_tile(&cached.id, 0).await?;
    if tile.withdraw_requested_at.is_none() {
        return Ok(());
    }
    let removed = of_tile.iter().map(|r| &r.value).find(|r| {
        r.kind() == RolloutKind::Withdraw
            && r.revision == tile.revision
            && convert::state(r.state) == Some(State::Succeeded)
    });
    let mut regions: BTreeSet<String> = crate::reconcile::desired(ctx, Some(&tile.id))
        .await?
        .into_iter()
        .filter(|(_, d)| d.revision > 0)
        .map(|((_, region), _)| region)
        .collect();
    regions.extend(touched_regions(ctx, of_tile).await?);
    if removed.is_some() || regions.is_empty() {
        let by = removed.map_or("", |r| r.id.as_str());
        tracing::info!(tile = %tile.id, removal = %by, "confirming the withdrawal: nothing left to remove");
        ctx.registry
            .advance(
                &tile.id,
                TileState::Withdrawn,
                0,
                if by.is_empty() {
                    "never live anywhere: nothing to remove"
                } else {
                    "removed everywhere"
                },
                by,
            )
            .await?;
        return Ok(());
    }
    if ctx.frozen() {
        // StartRollout would refuse: the removal starts once it is lifted.
        tracing::debug!(tile = %tile.id, "removal waits for the global freeze to lift");
        return Ok(());
    }
    // In catalog order, which the planner turns into waves.
    let ordered: Vec<String> = ctx
        .catalog
        .all()
        .iter()
        .filter(|r| regions.contains(&r.id))
        .map(|r| r.id.clone())
        .collect();
    let spec = RolloutSpec {
        tile_id: tile.id.clone(),
        revision: tile.revision,
        kind: RolloutKind::Withdraw as i32,
        regions: ordered,
        bake: Some(proto_duration(removal_bake)),
        ..Default::default()
    };
    let span = tracing::info_span!("rollout.withdraw", tile = %tile.id);
    let origin = span.in_scope(tilewave_telemetry::current_origin);
    match service
        .start(&ctx.actor, origin, spec, true)
        .instrument(span)
        .await
    {
        Ok(r) => {
            tracing::info!(tile = %tile.id, rollout = %r.id, regions = r.regions_total, "removal roll-out started");
            Ok(())
        }
        // Someone else's roll-out of the tile (or this one) won the race.
        Err(Error::FailedPrecondition(m)) if m.contains("already") || m.contains("still active") => Ok(()),
        Err(e) => Err(e),
    }
}
