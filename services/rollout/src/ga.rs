//! The GA moment: a durable timer (`timers/<due>/ga/<tile>`, kind "ga")
//! scheduled when a launch roll-out succeeds. One replica runs the timer
//! loop under `owners/timers`; firing calls the registry's AdvanceLifecycle
//! (GA) and deletes the timer in a fenced transaction, so it takes effect
//! once. The registry call is idempotent by looking at the tile first.

use std::sync::Arc;

use tilewave_proto::common::v1::{AuditRecord, TileState, Timer};
use tilewave_proto::rollout::v1::GaTimerPayload;
use tilewave_store::{Change, Ownership, Versioned};

use crate::controller::GA_TIMER_KIND;
use crate::error::Error;
use crate::model::Ctx;

/// The owner work of the timer loop.
pub const TIMERS_WORK: &str = "timers";

/// Runs the timer loop whenever this replica owns it, until `shutdown`.
pub async fn run(ctx: Ctx, shutdown: impl std::future::Future<Output = ()> + Send + 'static) {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut stop = stop_rx.clone();
    let waiter = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    tokio::spawn(waiter);
    loop {
        if *stop.borrow() {
            return;
        }
        let own = tokio::select! {
            r = Ownership::acquire(&ctx.store, TIMERS_WORK, &ctx.holder, ctx.ttl) => r,
            _ = stop.changed() => return,
        };
        let own = match own {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(error = %e, "cannot take the timer loop");
                tokio::time::sleep(ctx.ttl / 3).await;
                continue;
            }
        };
        let token = own.token();
        let mut lost = own.lost_signal();
        let mut stop2 = stop_rx.clone();
        let handler_ctx = ctx.clone();
        let result = tilewave_store::run_timer_loop(
            &ctx.store,
            Arc::clone(&ctx.clock),
            token,
            ctx.actor.clone(),
            move |t| fire(handler_ctx.clone(), t),
            async move {
                tokio::select! {
                    _ = lost.wait_for(|l| *l) => {}
                    _ = stop2.wait_for(|s| *s) => {}
                }
            },
        )
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "timer loop stopped");
        }
        if own.is_lost() {
            continue;
        }
        let _ = own.release().await;
    }
}

/// The effect of a due timer.
async fn fire(ctx: Ctx, t: Versioned<Timer>) -> tilewave_store::Result<Change> {
    let timer = t.value;
    if timer.kind != GA_TIMER_KIND {
        tracing::warn!(timer = %timer.id, kind = %timer.kind, "no handler for this timer kind; dropping it");
        return Ok(Change::new());
    }
    let p: GaTimerPayload = prost::Message::decode(timer.payload.as_slice())
        .map_err(|e| tilewave_store::Error::invalid(format!("GA timer payload: {e}")))?;
    let span = tilewave_telemetry::span_linked_to(&timer.origin.clone().unwrap_or_default(), "rollout.ga");
    let _guard = span.enter();
    let unavailable = |e: Error| tilewave_store::Error::Unavailable {
        op: "GA timer",
        source: e.to_string().into(),
    };
    let tile = ctx.registry.get_tile(&p.tile_id, 0).await.map_err(unavailable)?;
    let summary = if tile.state == TileState::RolledOut as i32 {
        ctx.registry
            .advance(
                &p.tile_id,
                TileState::Ga,
                p.revision,
                "GA moment reached",
                &p.rollout_id,
            )
            .await
            .map_err(unavailable)?;
        format!("{} is GA", p.tile_id)
    } else {
        format!(
            "GA moment of {} reached, but it is {}: nothing to do",
            p.tile_id,
            TileState::try_from(tile.state)
                .unwrap_or(TileState::Unspecified)
                .as_str_name()
        )
    };
    tracing::info!(tile = %p.tile_id, %summary, "GA timer fired");
    Ok(Change::new().audit(AuditRecord {
        action: "GaReached".into(),
        object_kind: "tile".into(),
        object_id: p.tile_id.clone(),
        summary,
        ..Default::default()
    }))
}
