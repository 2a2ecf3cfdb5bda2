//! The outbox sender, on one replica at a time
//! (`owners/escalation-sender`): every due entry of `escalation-outbox/`
//! is POSTed with `tilewave_clients::webhook::WebhookSender` (the body
//! stored with the entry, signed with the target's secret, its key as the
//! `Idempotency-Key`, the incident's `traceparent`), retried with
//! `Backoff` (real time) and recorded on the incident (`RecordDelivery`);
//! a delivered or given-up entry is deleted in the same fenced
//! transaction that records it. Acknowledging deletes the undelivered
//! entries, so at most an attempt already in flight lands after it.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use tilewave_clients::webhook::{Delivery, Next};
use tilewave_core::escalation::{self as core, Attempt, Command};
use tilewave_proto::escalation::v1 as wire;
use tilewave_store::{Change, FencingToken, Owned, OwnerLoop, Shutdown, Versioned, WatchCache};

use crate::convert;
use crate::error::{Error, Result};
use crate::model::{Ctx, IncidentWrite};

/// How often the outbox is looked at when nothing changes (real time).
const IDLE_PASS: Duration = Duration::from_secs(1);

/// Runs the sender whenever this replica owns it.
pub async fn run(ctx: Ctx, shutdown: Shutdown) {
    let owner = OwnerLoop::new(
        &ctx.store,
        tilewave_store::keys::work::ESCALATION_SENDER,
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
    let cache =
        WatchCache::<wire::OutboxEntry>::prefix(&ctx.store, &ctx.keys().escalation_outbox_all()).await?;
    let mut changes = cache.revision_watch();
    let in_flight: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        changes.borrow_and_update();
        let now = ctx.clock.now();
        let mut next: Option<Timestamp> = None;
        for entry in cache.list() {
            let due = convert::ts(entry.value.deliver_at.as_ref()).unwrap_or(now);
            if due > now {
                next = Some(next.map_or(due, |n| n.min(due)));
                continue;
            }
            let fresh = in_flight
                .lock()
                .map(|mut set| set.insert(entry.key.clone()))
                .unwrap_or(false);
            if !fresh {
                continue;
            }
            let (ctx, token, in_flight) = (ctx.clone(), owned.token(), Arc::clone(&in_flight));
            tasks.spawn(async move {
                let key = entry.key.clone();
                if let Err(e) = deliver(&ctx, &token, entry).await {
                    tracing::warn!(%key, error = %e, "delivering a page failed; it stays in the outbox");
                }
                if let Ok(mut set) = in_flight.lock() {
                    set.remove(&key);
                }
            });
        }
        while tasks.try_join_next().is_some() {}
        let clock = ctx.clock.clone();
        let due = async move {
            match next {
                Some(t) => clock.sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = owned.stopping() => {
                tasks.abort_all();
                return Ok(());
            }
            _ = changes.changed() => {}
            () = due => {}
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            () = tokio::time::sleep(IDLE_PASS) => {}
        }
    }
}

/// Delivers one entry until it is delivered or given up (or the entry is
/// gone: acknowledged), recording every attempt.
async fn deliver(ctx: &Ctx, token: &FencingToken, entry: Versioned<wire::OutboxEntry>) -> Result<()> {
    let e = &entry.value;
    let secret = match ctx.secret(&e.target).await {
        Ok(s) => s,
        // Nothing to sign with (the target's definition went): give up at
        // once, on the incident, rather than retry forever.
        Err(Error::NotFound(why)) => {
            let gave_up = Attempt::Failed {
                error: why,
                retry_at: None,
            };
            return record_attempt(ctx, token, &entry, e.attempts + 1, gave_up, true).await;
        }
        Err(other) => return Err(other),
    };
    let incident = ctx.incident(&e.incident_id).await?;
    let traceparent = incident
        .value
        .origin
        .as_ref()
        .map(|o| o.traceparent.clone())
        .filter(|t| tilewave_clients::webhook::validate_traceparent(t).is_ok())
        .unwrap_or_else(crate::model::fresh_traceparent);
    let mut attempt = e.attempts;
    loop {
        // Acknowledged (or resolved) since: nothing more to send.
        if ctx.store.get::<wire::OutboxEntry>(&entry.key).await?.is_none() {
            return Ok(());
        }
        attempt += 1;
        let now = ctx.clock.now();
        // Signed at wall time: receivers check the signature's age against
        // their own clocks, whatever the domain clock says.
        let signed_at = u64::try_from(tilewave_store::clock::wall_now().as_second()).unwrap_or(0);
        let outcome = ctx
            .sender
            .deliver(&Delivery {
                url: &e.url,
                body: &e.body,
                traceparent: &traceparent,
                idempotency_key: &e.key,
                secret: &secret,
                signed_at,
            })
            .await;
        let next = ctx.backoff.next(&outcome, attempt, rand::random::<f64>());
        let (record, done, wait) = match next {
            Next::Done(_) => (Attempt::Delivered, true, None),
            Next::GiveUp(why) => (
                Attempt::Failed {
                    error: why,
                    retry_at: None,
                },
                true,
                None,
            ),
            Next::RetryIn(wait) => {
                let retry_at = jiff::SignedDuration::try_from(wait)
                    .ok()
                    .and_then(|w| now.checked_add(w).ok());
                (
                    Attempt::Failed {
                        error: match &outcome {
                            tilewave_clients::webhook::Outcome::Retryable(why)
                            | tilewave_clients::webhook::Outcome::Permanent(why) => why.clone(),
                            tilewave_clients::webhook::Outcome::Delivered(s) => format!("status {s}"),
                        },
                        retry_at,
                    },
                    false,
                    Some(wait),
                )
            }
        };
        record_attempt(ctx, token, &entry, attempt, record, done).await?;
        match wait {
            None => return Ok(()),
            Some(wait) => tokio::time::sleep(wait).await,
        }
    }
}

/// Records attempt `n` on the incident and the entry (deleted when
/// `done`), in one fenced transaction; retried on a lost race.
async fn record_attempt(
    ctx: &Ctx,
    token: &FencingToken,
    entry: &Versioned<wire::OutboxEntry>,
    n: u32,
    attempt: Attempt,
    done: bool,
) -> Result<()> {
    let e = &entry.value;
    let cmd = Command::RecordDelivery {
        key: e.key.clone(),
        recipient: e.recipient.clone(),
        attempt,
    };
    let mut last = None;
    for _ in 0..5 {
        let prev = ctx.incident(&e.incident_id).await?;
        let before = convert::incident(&prev.value);
        let now = ctx.clock.now();
        let t = core::handle(&before, &cmd, now, core::SYSTEM_ACTOR)?;
        let current = ctx.store.get::<wire::OutboxEntry>(&entry.key).await?;
        let mut change = Change::new();
        match (&current, done) {
            (Some(c), true) => change = change.delete(entry.key.clone(), c.etag),
            (Some(c), false) => {
                let mut v = c.value.clone();
                v.attempts = n;
                change = change.update(entry.key.clone(), &v, c.etag);
            }
            (None, _) => {}
        }
        if t.changed(&before) {
            let w = IncidentWrite::new(Some(prev), t.incident, now);
            change = change.merge(w.change(ctx.keys(), "RecordDelivery", t.summary)?);
        } else if change.is_empty() {
            return Ok(());
        }
        match ctx.store.commit(change.fence(token), &ctx.actor).await {
            Ok(_) => return Ok(()),
            Err(err) => {
                let err = Error::from(err);
                if !err.is_conflict() {
                    return Err(err);
                }
                last = Some(err);
            }
        }
    }
    Err(last.unwrap_or_else(|| Error::Conflict("the incident kept changing".into())))
}
