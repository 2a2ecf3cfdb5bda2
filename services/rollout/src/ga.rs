//! The GA moment: a durable timer (`timers/ga/<due>/ga/<tile>`, kind "ga")
//! scheduled when a launch roll-out succeeds. One replica runs the timer
//! loop under `owners/timers` (the store's owner loop); firing calls the
//! registry's AdvanceLifecycle (GA) and deletes the timer in a fenced
//! transaction, so it takes effect once. The registry call is idempotent by
//! looking at the tile first. The loop registers only the "ga" kind: timers
//! of other kinds (other services') are never read, fired or deleted here.

use std::sync::Arc;

use tilewave_proto::common::v1::{TileState, Timer};
use tilewave_proto::rollout::v1::GaTimerPayload;
use tilewave_store::audit;
use tilewave_store::{Change, OwnerLoop, Shutdown, TimerKinds, Versioned};

use crate::controller::GA_TIMER_KIND;
use crate::error::Error;
use crate::model::Ctx;

/// The timer kinds this service fires, with their handlers.
pub fn timer_kinds(ctx: &Ctx) -> TimerKinds {
    let ctx = ctx.clone();
    TimerKinds::new().on(GA_TIMER_KIND, move |t| fire(ctx.clone(), t))
}

/// Runs the timer loop whenever this replica owns it, until `shutdown`.
pub async fn run(ctx: Ctx, shutdown: Shutdown) {
    let owner = OwnerLoop::new(
        &ctx.store,
        tilewave_store::keys::work::TIMERS,
        &ctx.holder,
        ctx.ttl,
    );
    owner
        .run(&shutdown, |owned| {
            let ctx = ctx.clone();
            async move {
                tilewave_store::run_timer_loop(
                    &ctx.store,
                    Arc::clone(&ctx.clock),
                    owned.token(),
                    ctx.actor.clone(),
                    timer_kinds(&ctx),
                    owned.stopping(),
                )
                .await
            }
        })
        .await;
}

/// The effect of a due timer.
async fn fire(ctx: Ctx, t: Versioned<Timer>) -> tilewave_store::Result<Change> {
    let timer = t.value;
    let p: GaTimerPayload = prost::Message::decode(timer.payload.as_slice())
        .map_err(|e| tilewave_store::Error::invalid(format!("GA timer payload: {e}")))?;
    let span = tilewave_telemetry::span_linked_to(&timer.origin.clone().unwrap_or_default(), "rollout.ga");
    let _guard = span.enter();
    let unavailable = |e: Error| tilewave_store::Error::Unavailable {
        op: "GA timer",
        source: e.to_string().into(),
    };
    let tile = ctx.registry.get_tile(&p.tile_id, 0).await.map_err(unavailable)?;
    let summary = if tile.state() == TileState::RolledOut {
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
            tile.state().as_str_name()
        )
    };
    tracing::info!(tile = %p.tile_id, %summary, "GA timer fired");
    Ok(Change::new().audit(audit::record("GaReached", "tile", &p.tile_id, summary)))
}
