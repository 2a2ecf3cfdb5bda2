//! `WatchTiles`: the current tiles (from the cache, at one revision), then
//! every change from etcd's own watch, so a client that resumes from
//! `revision + 1` of the last event it saw, on any replica, misses nothing
//! and sees nothing twice. A partner sees only its own tiles' events
//! (`tilewave_auth::Scope`): another partner's are left out as if they
//! had not happened.

use std::pin::Pin;

use etcd_client::{EventType, WatchOptions};
use futures::{Stream, StreamExt as _};
use tilewave_auth::Scope;
use tilewave_proto::registry::v1::{Tile, TileEvent, TileEventType, WatchTilesRequest};
use tilewave_store::Store;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

/// How many events may wait for a slow client before the watch stalls.
const BUFFER: usize = 256;

type EventStream = Pin<Box<dyn Stream<Item = Result<TileEvent, Status>> + Send>>;

fn event(kind: TileEventType, tile: Option<Tile>, revision: i64) -> TileEvent {
    TileEvent {
        r#type: kind as i32,
        tile,
        revision,
    }
}

/// Starts the stream. `snapshot` is the cache's `(revision, tiles)` the
/// caller may see (raw documents left out unless asked for), used only when
/// the request starts from revision 0;
/// `scope` filters the changes that follow.
pub async fn watch_tiles(
    store: Store,
    snapshot: (i64, Vec<Tile>),
    req: WatchTilesRequest,
    scope: Scope,
) -> Result<EventStream, Status> {
    if req.start_revision < 0 {
        return Err(Status::invalid_argument("start_revision: must not be negative"));
    }
    let (tx, rx) = mpsc::channel(BUFFER);
    // The snapshot goes ahead of the channel, not through it: sent into the
    // channel before the stream is returned, a snapshot larger than the
    // buffer would wait forever for a reader that does not exist yet.
    let mut snapshot_events = Vec::new();
    let start_from = if req.start_revision == 0 {
        let (revision, tiles) = snapshot;
        snapshot_events.reserve(tiles.len() + 1);
        // Without raw documents unless asked for (`snapshot_for_watch`).
        for tile in tiles {
            snapshot_events.push(Ok(event(TileEventType::Snapshot, Some(tile), revision)));
        }
        snapshot_events.push(Ok(event(TileEventType::SnapshotEnd, None, revision)));
        revision + 1
    } else {
        req.start_revision
    };

    let prefix = store.keys().tiles();
    let mut client = store.watcher();
    let options = WatchOptions::new()
        .with_prefix()
        .with_start_revision(start_from)
        .with_progress_notify()
        .with_prev_key();
    let mut events = client
        .watch(prefix.clone(), Some(options))
        .await
        .map_err(|e| Status::unavailable(format!("cannot watch etcd: {e}")))?;
    tokio::spawn(async move {
        loop {
            let msg = tokio::select! {
                msg = events.message() => msg,
                () = tx.closed() => break,
            };
            let resp = match msg {
                Ok(Some(resp)) => resp,
                Ok(None) => {
                    let _ = tx
                        .send(Err(Status::unavailable(
                            "etcd ended the watch: resume from the last revision + 1",
                        )))
                        .await;
                    break;
                }
                Err(e) => {
                    let _ = tx
                        .send(Err(Status::unavailable(format!(
                            "etcd watch failed: {e}; resume from the last revision + 1"
                        ))))
                        .await;
                    break;
                }
            };
            if resp.compact_revision() > 0 {
                let _ = tx
                    .send(Err(Status::out_of_range(format!(
                        "revision {start_from} is compacted (oldest kept: {}): watch again from 0",
                        resp.compact_revision()
                    ))))
                    .await;
                break;
            }
            if resp.canceled() {
                let _ = tx
                    .send(Err(Status::unavailable(format!(
                        "etcd cancelled the watch: {}",
                        resp.cancel_reason()
                    ))))
                    .await;
                break;
            }
            let header_rev = resp.header().map(|h| h.revision()).unwrap_or_default();
            if resp.events().is_empty() {
                if tx
                    .send(Ok(event(TileEventType::Bookmark, None, header_rev)))
                    .await
                    .is_err()
                {
                    break;
                }
                continue;
            }
            for ev in resp.events() {
                let Some(kv) = ev.kv() else { continue };
                let Ok(key) = kv.key_str() else { continue };
                let Some(rest) = key.strip_prefix(prefix.as_str()) else {
                    continue;
                };
                if rest.is_empty() || rest.contains('/') {
                    continue; // a revision snapshot, not a tile
                }
                if !req.tile_id.is_empty() && rest != req.tile_id {
                    continue;
                }
                let (kind, bytes, etag) = match ev.event_type() {
                    EventType::Put => (TileEventType::Put, kv.value(), kv.mod_revision()),
                    EventType::Delete => {
                        let prev = ev.prev_kv().map(|p| p.value()).unwrap_or_default();
                        (TileEventType::Delete, prev, kv.mod_revision())
                    }
                };
                let tile = match <Tile as prost::Message>::decode(bytes) {
                    // Another partner's tile: not this caller's business.
                    Ok(t) if !scope.sees(Some(&t.partner_id)) => continue,
                    Ok(mut t) => {
                        t.etag = etag;
                        if !req.include_raw_config {
                            t.raw_config.clear();
                        }
                        Some(t)
                    }
                    Err(e) => {
                        tracing::error!(key, error = %e, "undecodable tile in etcd");
                        if !scope.is_all() {
                            continue; // whose it is cannot be told
                        }
                        None
                    }
                };
                if tx.send(Ok(event(kind, tile, kv.mod_revision()))).await.is_err() {
                    break;
                }
            }
        }
        // Dropping the stream ends the watch at etcd.
        drop(events);
    });
    Ok(Box::pin(
        futures::stream::iter(snapshot_events).chain(ReceiverStream::new(rx)),
    ))
}
