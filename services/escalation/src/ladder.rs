//! The ladder's durable timers (`timers/escalation/<due>/<incident>`), run
//! by one replica at a time (`owners/escalation-timers`). A due timer
//! re-rates the incident if its GA deadline asks for it, then steps its
//! ladder as far as now allows; the incident, the new pages (outbox
//! entries) and the next timer are written with the timer's deletion in
//! one transaction fenced by the owner's token, so each level is paged
//! exactly once across restarts and failover.

use std::sync::Arc;

use tilewave_core::escalation::{self as core, Command, Effect};
use tilewave_proto::common::v1::Timer;
use tilewave_store::{Change, OwnerLoop, Shutdown, TimerKinds, Versioned};

use crate::convert;
use crate::error::Error;
use crate::model::{Ctx, IncidentWrite, TIMER_KIND, advance, next_timer, outbox};
use crate::service::pause_rollouts;

/// Runs the ladder's timers whenever this replica owns them.
pub async fn run(ctx: Ctx, shutdown: Shutdown) {
    let owner = OwnerLoop::new(
        &ctx.store,
        tilewave_store::keys::work::ESCALATION_TIMERS,
        &ctx.holder,
        ctx.ttl,
    );
    owner
        .run(&shutdown, |owned| {
            let ctx = ctx.clone();
            async move {
                let handler_ctx = ctx.clone();
                tilewave_store::run_timer_loop(
                    &ctx.store,
                    Arc::clone(&ctx.clock),
                    owned.token(),
                    ctx.actor.clone(),
                    TimerKinds::new().on(TIMER_KIND, move |t| fire(handler_ctx.clone(), t)),
                    owned.stopping(),
                )
                .await
            }
        })
        .await;
}

fn unavailable(e: Error) -> tilewave_store::Error {
    tilewave_store::Error::Unavailable {
        op: "escalation timer",
        source: e.to_string().into(),
    }
}

/// The effect of a due ladder timer.
async fn fire(ctx: Ctx, t: Versioned<Timer>) -> tilewave_store::Result<Change> {
    let timer = t.value;
    let span =
        tilewave_telemetry::span_linked_to(&timer.origin.clone().unwrap_or_default(), "escalation.step");
    let fired = tilewave_store::timers::due_of(&timer).ok();
    let Some(prev) = ctx
        .store
        .get::<tilewave_proto::escalation::v1::Incident>(&ctx.keys().incident(&timer.id))
        .await?
    else {
        // The incident is gone: the timer just goes.
        return Ok(Change::new());
    };
    let now = ctx.clock.now();
    let mut incident = convert::incident(&prev.value);
    let mut summary = Vec::new();
    let mut expedite = false;
    if let Ok(t) = core::handle(&incident, &Command::Rerate, now, core::SYSTEM_ACTOR)
        && t.changed(&incident)
    {
        summary.push(t.summary.clone());
        expedite = t.effects.contains(&Effect::Expedite);
        incident = t.incident;
    }
    let policies = ctx.policies().await.map_err(unavailable)?;
    let dir = ctx.directory().await.map_err(unavailable)?;
    let adv = advance(&policies, &dir, incident, now);
    let mut w = IncidentWrite::new(Some(prev), adv.incident, now);
    w.fired = fired;
    w.notifications = adv.notifications;
    w.timer = next_timer(adv.timer, &w.incident, now);
    if expedite {
        w.expedite = outbox(&ctx, &timer.id)
            .await
            .map_err(unavailable)?
            .into_iter()
            .filter(|e| convert::ts(e.value.deliver_at.as_ref()).is_some_and(|t| t > now))
            .collect();
    }
    summary.push(format!(
        "stepped the ladder of {}: {} page(s)",
        timer.id,
        w.notifications.len()
    ));
    let change = {
        let _g = span.enter();
        w.change(ctx.keys(), "EscalationStep", summary.join("; "))
            .map_err(unavailable)?
    };
    // The pause rule's calls happen once the step is decided; a failure is
    // logged (the incident's timeline already says it was asked for).
    let pauses = adv.effects;
    if !pauses.is_empty() {
        let ctx = ctx.clone();
        let id = timer.id.clone();
        tokio::spawn(async move { pause_rollouts(&ctx, &id, &pauses).await });
    }
    Ok(change)
}
