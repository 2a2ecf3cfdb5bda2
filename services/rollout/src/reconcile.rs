//! Reconciliation: the revision of each tile that should be live in each
//! region (desired state, from the recorded steps of finished roll-outs)
//! against what each agent reports. A region that lost its catalog or holds
//! a wrong revision is repaired and a DRIFT_REPAIRED event recorded.
//!
//! One replica reconciles at a time: each pass takes `owners/reconciler`
//! anew, so its fencing token is newer than those of the roll-outs that
//! finished before it (agents refuse older tokens), and tiles with a
//! roll-out still under way are left to that roll-out's owner.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use futures::StreamExt as _;

use jiff::Timestamp;
use tilewave_core::rollout::StepState;
use tilewave_proto::agent::v1::{ApplyTileRequest, ListTilesRequest, RemoveTileRequest};
use tilewave_proto::common::v1::{Event, EventKind, Severity};
use tilewave_proto::rollout::v1::{RolloutKind, RolloutStep};
use tilewave_store::audit;
use tilewave_store::clock::to_proto_timestamp;
use tilewave_store::{Change, Ended, Owned, OwnerLoop, Shutdown};

use crate::clients::request;
use crate::convert;
use crate::error::Result;
use crate::model::{Ctx, is_terminal};

/// What should be live in one region for one tile.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Desired {
    /// The revision that should be live; 0: none.
    pub revision: i64,
    /// The revision recorded live (verified, or being baked).
    pub live_revision: i64,
    /// Since when (domain time).
    pub since: Option<prost_types::Timestamp>,
    /// The roll-out that last changed the region.
    pub rollout_id: String,
    /// Whether a roll-out of the tile is under way (its owner decides).
    pub in_flight: bool,
}

/// Desired state per (tile, region), from every roll-out's steps in the
/// order the roll-outs were created (`tile`: only that tile's).
pub async fn desired(ctx: &Ctx, tile: Option<&str>) -> Result<BTreeMap<(String, String), Desired>> {
    desired_among(ctx, tile, i64::MAX).await
}

/// What was live of `tile` in each region before the roll-out created at
/// etcd revision `created`: the desired state of the tile's earlier
/// roll-outs (0: nothing). A rollback restores it.
pub async fn live_before(ctx: &Ctx, tile: &str, created: i64) -> Result<BTreeMap<String, i64>> {
    Ok(desired_among(ctx, Some(tile), created)
        .await?
        .into_iter()
        .map(|((_, region), d)| (region, d.live_revision))
        .collect())
}

/// What of one step the desired state is made of.
#[derive(Debug)]
struct SeenStep {
    region: String,
    state: StepState,
    /// Applied (or, before that, started applying) at.
    since: Option<prost_types::Timestamp>,
}

/// The steps of each roll-out as last read, under the etag the roll-out's
/// key had in that same read (`get_with_children`: one revision). Every
/// write of a step also writes the roll-out's key
/// ([`crate::model::with_steps`]), so while the roll-out's etag is the
/// same its steps are too: a reconciliation pass (every 10 s) and a start
/// read only the roll-outs that changed since, not every roll-out's steps
/// ever made (one etcd range each, as it was). Entries of roll-outs gone
/// from the roll-out cache are dropped by the next pass over every tile.
/// Kept small: the three fields the desired state needs per step.
#[derive(Debug, Default)]
pub struct StepsSeen(std::sync::Mutex<Kept>);

/// Roll-out id -> (its etag when read, its steps).
type Kept = std::collections::HashMap<String, (i64, Arc<[SeenStep]>)>;

impl StepsSeen {
    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The steps of roll-out `id` as read at its etag `etag`, if kept.
    fn get(&self, id: &str, etag: i64) -> Option<Arc<[SeenStep]>> {
        self.lock()
            .get(id)
            .filter(|(seen, _)| *seen == etag)
            .map(|(_, steps)| Arc::clone(steps))
    }
}

/// The steps of roll-out `id`, whose key the roll-out cache has at `etag`:
/// kept ones when the etag is the same, else read (with the roll-out, at
/// one revision) and kept under the etag of that read. `None` when the
/// roll-out is gone.
async fn steps_of(ctx: &Ctx, id: &str, etag: i64) -> Result<Option<Arc<[SeenStep]>>> {
    if let Some(kept) = ctx.steps_seen.get(id, etag) {
        return Ok(Some(kept));
    }
    let keys = ctx.keys();
    // The roll-out's value is skipped (`()`): only its etag is needed.
    let Some((rollout, steps)) = ctx
        .store
        .get_with_children::<(), RolloutStep>(&keys.rollout(id), &keys.rollout_steps(id))
        .await?
    else {
        return Ok(None);
    };
    let seen: Arc<[SeenStep]> = steps
        .items
        .into_iter()
        .map(|s| SeenStep {
            state: convert::step_state(s.value.state),
            since: s.value.applied_at.or(s.value.apply_started_at),
            region: s.value.region,
        })
        .collect();
    ctx.steps_seen
        .lock()
        .insert(id.to_owned(), (rollout.etag, Arc::clone(&seen)));
    Ok(Some(seen))
}

/// The fields of a cached roll-out the desired state reads (not its
/// spec and plan).
struct Brief {
    id: String,
    tile_id: String,
    target: i64,
    in_flight: bool,
    etag: i64,
    create_revision: i64,
}

/// [`desired`] from the roll-outs created before etcd revision `before`.
async fn desired_among(
    ctx: &Ctx,
    tile: Option<&str>,
    before: i64,
) -> Result<BTreeMap<(String, String), Desired>> {
    let mut rollouts = ctx.rollouts.scan(|r| {
        (tile.is_none_or(|t| r.value.tile_id == t) && r.create_revision < before).then(|| Brief {
            id: r.value.id.clone(),
            tile_id: r.value.tile_id.clone(),
            target: if r.value.kind() == RolloutKind::Withdraw {
                0
            } else {
                r.value.revision
            },
            in_flight: !is_terminal(r.value.state),
            etag: r.etag,
            create_revision: r.create_revision,
        })
    });
    rollouts.sort_by_key(|r| r.create_revision);
    if tile.is_none() && before == i64::MAX {
        // Every roll-out is here: forget those gone.
        let ids: HashSet<&str> = rollouts.iter().map(|r| r.id.as_str()).collect();
        ctx.steps_seen.lock().retain(|id, _| ids.contains(id.as_str()));
    }
    let mut out: BTreeMap<(String, String), Desired> = BTreeMap::new();
    for ro in rollouts {
        let Some(steps) = steps_of(ctx, &ro.id, ro.etag).await? else {
            continue;
        };
        let (target, in_flight) = (ro.target, ro.in_flight);
        for s in steps.iter() {
            let key = (ro.tile_id.clone(), s.region.clone());
            let entry = out.entry(key).or_default();
            entry.in_flight |= in_flight;
            match s.state {
                StepState::Verified | StepState::Baking => {
                    entry.revision = target;
                    entry.live_revision = target;
                    entry.since = s.since;
                    entry.rollout_id = ro.id.clone();
                }
                StepState::Applying if in_flight => {
                    entry.revision = target;
                    entry.rollout_id = ro.id.clone();
                }
                // What was live before this roll-out is live again: the
                // entry as the earlier roll-outs left it (nothing, where
                // none had put the tile in this region).
                StepState::RolledBack => {
                    entry.rollout_id = ro.id.clone();
                }
                StepState::Applying
                | StepState::Pending
                | StepState::Failed
                | StepState::Skipped
                | StepState::RollingBack => {}
            }
        }
    }
    out.retain(|_, d| d.revision > 0 || !d.rollout_id.is_empty());
    Ok(out)
}

/// Runs reconciliation passes every `interval` until `shutdown`. Each pass
/// takes `owners/reconciler` afresh through the owner loop (skipped when
/// another replica holds it), and is stopped at once on loss or shutdown.
pub async fn run(ctx: Ctx, interval: std::time::Duration, shutdown: Shutdown) {
    let owner = OwnerLoop::new(
        &ctx.store,
        tilewave_store::keys::work::RECONCILER,
        &ctx.holder,
        ctx.ttl,
    );
    let ctx = &ctx;
    loop {
        tokio::select! {
            () = shutdown.requested() => return,
            () = tokio::time::sleep(interval) => {}
        }
        match owner
            .run_once(&shutdown, |owned| async move { pass(ctx, &owned).await })
            .await
        {
            Ok(Some(Ended::Finished(Err(e)))) => tracing::warn!(error = %e, "reconciliation pass failed"),
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "cannot take the reconciler"),
        }
    }
}

/// How many agents a pass asks for their tiles at once.
const LISTINGS_AT_ONCE: usize = 16;

/// One pass: compare and repair.
pub async fn pass(ctx: &Ctx, own: &Owned) -> Result<usize> {
    let desired = desired(ctx, None).await?;
    let tiles: HashSet<&str> = desired.keys().map(|(t, _)| t.as_str()).collect();
    let token = own.token();
    let mut repaired = 0;
    // The agents are asked at once, a bounded number at a time: one after
    // another, 70 agents a cross-cloud round trip away (100 ms, say) take
    // 7 s of the pass's 10 s interval. Repairs stay one at a time, region
    // by region, in the order the agents were listed.
    let listed: Vec<_> = futures::stream::iter(ctx.agents.all().await?.into_iter().map(
        |(region, mut client)| async move {
            let listed = client
                .list_tiles(request(ListTilesRequest { page: None }, ctx.agents.timeout()))
                .await;
            (region, client, listed)
        },
    ))
    .buffered(LISTINGS_AT_ONCE)
    .collect()
    .await;
    for (region, mut client, listed) in listed {
        let Ok(resp) = listed else {
            continue;
        };
        let entries = resp.into_inner().entries;
        for tile in &tiles {
            let Some(d) = desired.get(&((*tile).to_owned(), region.clone())) else {
                continue;
            };
            if d.in_flight || own.is_lost() {
                continue;
            }
            let have = entries
                .iter()
                .find(|e| e.tile_id == *tile)
                .map_or(0, |e| e.revision);
            if have == d.revision {
                continue;
            }
            let outcome = if d.revision > 0 {
                let config = ctx.registry.get_tile(tile, d.revision).await?.config;
                client
                    .apply_tile(request(
                        ApplyTileRequest {
                            tile_id: (*tile).to_owned(),
                            revision: d.revision,
                            config,
                            fencing_token: token.agent_token(),
                            rollout_id: d.rollout_id.clone(),
                            ..Default::default()
                        },
                        ctx.agents.timeout(),
                    ))
                    .await
                    .map(|_| ())
            } else {
                client
                    .remove_tile(request(
                        RemoveTileRequest {
                            tile_id: (*tile).to_owned(),
                            fencing_token: token.agent_token(),
                            rollout_id: d.rollout_id.clone(),
                        },
                        ctx.agents.timeout(),
                    ))
                    .await
                    .map(|_| ())
            };
            if let Err(s) = outcome {
                tracing::warn!(tile, %region, status = %s, "drift repair failed");
                continue;
            }
            repaired += 1;
            let now = ctx.clock.now();
            let e = drift_event(tile, &region, have, d, now);
            tracing::info!(tile, %region, have, want = d.revision, "drift repaired");
            let change = Change::new()
                .create(ctx.keys().event(&e.id), &e)
                .fence(&token)
                .audit(audit::record("RepairDrift", "tile", tile, e.message.clone()));
            ctx.store.commit(change, &ctx.actor).await?;
        }
    }
    Ok(repaired)
}

fn drift_event(tile: &str, region: &str, have: i64, d: &Desired, now: Timestamp) -> Event {
    let mut attributes = std::collections::HashMap::new();
    attributes.insert("reported_revision".into(), have.to_string());
    attributes.insert("desired_revision".into(), d.revision.to_string());
    Event {
        id: format!(
            "drift-{tile}-{}-{}",
            region.replace(':', "_"),
            now.as_millisecond()
        ),
        kind: EventKind::DriftRepaired as i32,
        severity: Severity::Sev4 as i32,
        at: Some(to_proto_timestamp(now)),
        tile_id: tile.to_owned(),
        rollout_id: d.rollout_id.clone(),
        region: region.to_owned(),
        message: format!(
            "{region} reported {tile} at revision {have} but r{} should be live: repaired",
            d.revision
        ),
        origin: None,
        attributes,
    }
}
