//! Live updates: a page's server-sent event stream, fed by a Watch RPC with
//! the user's certificate. Each change is sent as an `update` event whose
//! JSON carries the re-rendered summary and chart (HTML) and the cells
//! (state per region); the script swaps classes and fragments in place.
//! When the gRPC stream drops, a `reconnecting` event is sent and the watch
//! is resumed from the last revision seen (with back-off, as `rollout
//! status --watch` does); the browser shows its banner on that event and
//! when the event stream itself fails, and hides it on the next update.

use std::convert::Infallible;

use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde::Serialize;
use tilewave_core::regions::RegionCatalog;
use tilewave_proto::escalation::v1::{IncidentEventType, WatchIncidentsRequest};
use tilewave_proto::registry::v1::{TileEventType, WatchTilesRequest};
use tilewave_proto::rollout::v1::{Rollout, RolloutEventType};
use tokio::sync::mpsc;

use super::rollout::{Context, calendar_blackouts, callable, head};
use super::{Shared, gantt, grid};
use crate::rollout::render::is_terminal;
use crate::rollout::status::{DomainNow, watch_request};
use crate::tile::watch::{Backoff, OnError, on_error};

/// What an `update` event carries.
#[derive(Debug, Serialize)]
pub struct Update {
    /// The summary block (`#head`), HTML.
    pub head: String,
    /// The chart (`#gantt-box`'s content), HTML.
    pub gantt: String,
    /// Every region's cell.
    pub cells: Vec<grid::Cell>,
    /// Whether the roll-out has ended (no more updates).
    pub finished: bool,
}

/// The update for a roll-out state.
pub fn update(r: &Rollout, now: Option<jiff::Timestamp>, cx: &Context<'_>) -> Update {
    Update {
        head: head(r, now, cx.may, cx.trace_url).into_string(),
        gantt: gantt::svg(&gantt::chart(r, now, cx.calendar)).into_string(),
        cells: grid::cells(r, cx.catalog),
        finished: is_terminal(r),
    }
}

/// An event named `name` with `data`.
fn event(name: &str, data: &str) -> Event {
    Event::default().event(name).data(data)
}

/// `GET /rollouts/{id}/events`.
pub async fn rollout_events(
    State(app): State<Shared>,
    Path(id): Path<String>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let (tx, rx) = mpsc::channel::<Event>(16);
    tokio::spawn(Box::pin(follow(app, id, tx)));
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// Follows roll-out `id` into `tx` until the page goes away.
async fn follow(app: Shared, id: String, tx: mpsc::Sender<Event>) {
    let catalog = RegionCatalog::builtin();
    let clock = DomainNow::read(&app.ctx).await;
    let may = callable(&app).await;
    let calendar = calendar_blackouts(&app).await;
    let cx = Context {
        may: &may,
        trace_url: app.trace_url.as_deref(),
        catalog: &catalog,
        calendar: &calendar,
    };
    let mut client = match app.ctx.rollouts_streaming() {
        Ok(c) => c,
        Err(e) => {
            let _ = tx.send(event("failed", &e.to_string())).await;
            tx.closed().await;
            return;
        }
    };
    let mut start_revision = 0;
    let mut backoff = Backoff::default();
    loop {
        let req = match app.ctx.request(watch_request(&id, start_revision)) {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.send(event("failed", &e.to_string())).await;
                tx.closed().await;
                return;
            }
        };
        let failure = match client.watch_rollout(req).await {
            Ok(resp) => {
                let mut stream = resp.into_inner();
                loop {
                    tokio::select! {
                        () = tx.closed() => return,
                        msg = stream.message() => match msg {
                            Ok(Some(ev)) => {
                                backoff.reset();
                                start_revision = ev.revision + 1;
                                let finished = ev.r#type == RolloutEventType::Finished as i32;
                                if let Some(r) = ev.rollout {
                                    let u = update(&r, clock.map(|c| c.now()), &cx);
                                    let data = serde_json::to_string(&u).unwrap_or_default();
                                    if tx.send(event("update", &data)).await.is_err() {
                                        return;
                                    }
                                    if finished || u.finished {
                                        // Nothing more will come: keep the page's stream open and quiet.
                                        tx.closed().await;
                                        return;
                                    }
                                }
                            }
                            Ok(None) => break tonic::Status::unavailable("the rollout service closed the stream"),
                            Err(status) => break status,
                        }
                    }
                }
            }
            Err(status) => status,
        };
        let text = format!("{:?}: {}", failure.code(), failure.message());
        match on_error(failure.code()) {
            OnError::Fail => {
                let _ = tx.send(event("failed", &text)).await;
                tx.closed().await;
                return;
            }
            OnError::Resync => start_revision = 0,
            OnError::Retry => {}
        }
        if tx.send(event("reconnecting", &text)).await.is_err() {
            return;
        }
        tokio::select! {
            () = tx.closed() => return,
            () = tokio::time::sleep(backoff.next_delay()) => {}
        }
    }
}

/// What a page's `changed` stream follows.
#[derive(Debug, serde::Deserialize)]
pub struct ChangesQuery {
    /// `tiles` (WatchTiles) or `incidents` (WatchIncidents).
    pub feed: String,
    /// Only this tile.
    #[serde(default)]
    pub tile: String,
}

/// `GET /events/changes?feed=tiles|incidents[&tile=ID]`: a `changed` event
/// whenever a tile (or an incident) changes, after the watch's snapshot;
/// the script then fetches the page again and swaps its content. Pages
/// whose data has no list watch (credentials) have no stream.
pub async fn changes(
    State(app): State<Shared>,
    Query(q): Query<ChangesQuery>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let (tx, rx) = mpsc::channel::<Event>(16);
    tokio::spawn(Box::pin(follow_changes(app, q, tx)));
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// One watch of a feed until it fails: `Ok` never (it runs while the page
/// is open), `Err` with the status when the stream drops.
async fn watch_once(app: &Shared, q: &ChangesQuery, tx: &mpsc::Sender<Event>) -> Result<(), tonic::Status> {
    let ctx = &app.ctx;
    let bad = |e: crate::error::CliError| tonic::Status::invalid_argument(e.to_string());
    if q.feed == "incidents" {
        let mut client = ctx.escalation_streaming().map_err(bad)?;
        let req = ctx
            .request(WatchIncidentsRequest {
                tile_id: q.tile.clone(),
            })
            .map_err(bad)?;
        let mut stream = client.watch_incidents(req).await?.into_inner();
        while let Some(ev) = stream.message().await? {
            let kind = IncidentEventType::try_from(ev.r#type).unwrap_or(IncidentEventType::Unspecified);
            if matches!(kind, IncidentEventType::Put | IncidentEventType::Delete) {
                let what = ev.incident.map(|i| i.id).unwrap_or_default();
                if tx.send(event("changed", &what)).await.is_err() {
                    return Ok(());
                }
            }
        }
    } else {
        let mut client = ctx.registry_streaming().map_err(bad)?;
        let req = ctx
            .request(WatchTilesRequest {
                start_revision: 0,
                tile_id: q.tile.clone(),
                include_raw_config: false,
            })
            .map_err(bad)?;
        let mut stream = client.watch_tiles(req).await?.into_inner();
        while let Some(ev) = stream.message().await? {
            let kind = TileEventType::try_from(ev.r#type).unwrap_or(TileEventType::Unspecified);
            if matches!(kind, TileEventType::Put | TileEventType::Delete) {
                let what = ev.tile.map(|t| t.id).unwrap_or_default();
                if tx.send(event("changed", &what)).await.is_err() {
                    return Ok(());
                }
            }
        }
    }
    Err(tonic::Status::unavailable("the service closed the stream"))
}

/// Follows a feed into `tx` until the page goes away, reconnecting with
/// back-off (and a `changed` after each reconnection: a change may have
/// been missed in between).
async fn follow_changes(app: Shared, q: ChangesQuery, tx: mpsc::Sender<Event>) {
    let mut backoff = Backoff::default();
    let mut dropped = false;
    loop {
        if dropped && tx.send(event("changed", "reconnected")).await.is_err() {
            return;
        }
        let result = tokio::select! {
            () = tx.closed() => return,
            r = watch_once(&app, &q, &tx) => r,
        };
        let Err(failure) = result else { return };
        let text = format!("{:?}: {}", failure.code(), failure.message());
        if on_error(failure.code()) == OnError::Fail {
            let _ = tx.send(event("failed", &text)).await;
            tx.closed().await;
            return;
        }
        if tx.send(event("reconnecting", &text)).await.is_err() {
            return;
        }
        dropped = true;
        tokio::select! {
            () = tx.closed() => return,
            () = tokio::time::sleep(backoff.next_delay()) => {}
        }
    }
}
