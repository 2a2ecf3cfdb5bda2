//! The `RegistryService` RPCs.
//!
//! Reads are served from watch-backed caches of `tiles/` (the latest tiles,
//! and every revision's summary); every write reads
//! the tile fresh from etcd, applies one domain rule from `tilewave-core`
//! (through [`crate::domain`]), and commits the new tile, any revision
//! snapshot and its audit record in one transaction guarded by the tile's
//! etag. After a commit the handler waits (briefly) until its own cache has
//! caught up, so a caller reads its own writes on the same replica.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use jiff::Timestamp;
use prost::bytes::Bytes;
use tilewave_auth::Scope;
use tilewave_core::quote::quote;
use tilewave_proto::ShortName;
use tilewave_proto::common::v1::{AuditRecord, AuditSummary, Cloud, PageRequest, PartnerCategory, TileState};
use tilewave_proto::registry::v1::registry_service_server::RegistryService;
use tilewave_proto::registry::v1::*;
use tilewave_service::limits;
use tilewave_service::paging::{Page, PageError};
use tilewave_store::audit::{self, AuditRecordExt};
use tilewave_store::audit_summary;
use tilewave_store::clock::{from_proto_timestamp, to_proto_timestamp};
use tilewave_store::{Actor, Change, Clock, Store, Versioned, WatchCache};
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::domain;
use crate::encoded::{Kept, ListKey};
use crate::error::{Error, Result};
use crate::summaries::RevisionRecord;

/// How long a write waits for its own replica's cache to show it.
const READ_YOUR_WRITES_WAIT: Duration = Duration::from_secs(2);

/// How many times a write that a concurrent launch-slot booking raced is
/// done again from the read.
const SLOT_ATTEMPTS: u32 = 16;

/// The largest launch-slot capacity accepted.
const MAX_SLOT_CAPACITY: i32 = 1000;

/// A stored moment as the messages show it.
fn show_time(t: &prost_types::Timestamp) -> String {
    from_proto_timestamp(t).map_or_else(|_| format!("{}s", t.seconds), |t| t.to_string())
}

/// The registry's shared state: the store, the tile cache and the clock.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    tiles: WatchCache<Tile>,
    /// The revision snapshots under `tiles/` as [`RevisionRecord`]s: the
    /// summaries GetTile lists. Its watch covers the latest tiles' keys too
    /// (not kept), so its revision follows every tile write.
    revisions: WatchCache<RevisionRecord>,
    clock: Arc<dyn Clock>,
    /// GetTile's encoded answers of the latest revisions.
    encoded: Kept<String>,
    /// ListTiles' recent encoded answers.
    lists: Kept<ListKey>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("store", &self.inner.store)
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// Starts the tile cache and returns the service state.
    pub async fn new(store: Store, clock: Arc<dyn Clock>) -> Result<Self> {
        let prefix = store.keys().tiles();
        // The latest tiles only: revision snapshots (`tiles/<id>/rev/<n>`)
        // stay out of this cache.
        let tiles = WatchCache::children(&store, &prefix).await?;
        // Only the revision snapshots are kept; the latest tiles' writes
        // still move its revision (a filtered key's event does).
        let under = prefix.clone();
        let revisions = WatchCache::prefix_filtered(
            &store,
            &prefix,
            Arc::new(move |key: &str| !tilewave_store::keys::Keys::is_direct_child(&under, key)),
        )
        .await?;
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                tiles,
                revisions,
                clock,
                encoded: crate::encoded::tile_answers(),
                lists: crate::encoded::list_answers(),
            }),
        })
    }

    /// GetTile's answer: the tile from the cache (or, for an older
    /// revision, its snapshot) and its revisions' summaries.
    async fn get_tile_answer(&self, scope: &Scope, r: GetTileRequest) -> Result<GetTileResponse> {
        domain::check_id("id", &r.id)?;
        let latest = self.cached(&r.id, scope).ok_or_else(|| no_tile(&r.id))?;
        if r.revision < 0 || r.revision > latest.revision {
            return Err(Error::NotFound(format!(
                "tile {} has revisions 1 to {}, not {}",
                quote(&r.id),
                latest.revision,
                r.revision
            )));
        }
        let revisions = self
            .revision_records(&r.id, &latest)
            .await?
            .into_iter()
            .map(|v| RevisionSummary {
                revision: v.revision,
                created_at: v.created_at,
                signed_off: latest
                    .sign_offs
                    .iter()
                    .filter(|s| s.revision == v.revision)
                    .map(|s| s.role)
                    .collect(),
                created_by: v.created_by,
                note: v.maintenance.map(|m| m.summary).unwrap_or_default(),
            })
            .collect();
        let tile = if r.revision == 0 || r.revision == latest.revision {
            latest
        } else {
            let snap = self.read_revision(&r.id, r.revision).await?;
            Tile {
                name: snap.name,
                revision: snap.revision,
                config: snap.config,
                raw_config: snap.raw_config,
                config_format: snap.config_format,
                maintenance: snap.maintenance,
                warnings: snap.warnings,
                ..latest
            }
        };
        Ok(GetTileResponse {
            tile: Some(tile),
            revisions,
        })
    }

    /// GetTile as the server answers it (see `server.rs`): the latest
    /// revision's answer is encoded once per tile version and kept
    /// ([`Kept`]), so a tile read again and again is neither
    /// copied out of the cache nor encoded again. Any other revision, and
    /// a miss, is answered by [`Registry::get_tile_answer`].
    #[instrument(name = "get_tile", skip_all, fields(tile = %req.get_ref().id))]
    pub(crate) async fn get_tile_encoded(
        &self,
        req: Request<GetTileRequest>,
    ) -> Result<Response<Bytes>, Status> {
        let scope = Scope::of_request(&req);
        let r = req.into_inner();
        let latest = r.revision == 0;
        if latest
            && domain::check_id("id", &r.id).is_ok()
            && let Some(Some(etag)) = self.inner.tiles.inspect(&self.tile_key(&r.id), |v| {
                scope.sees(Some(&v.value.partner_id)).then_some(v.etag)
            })
            && let Some(kept) = self.inner.encoded.get(&r.id, etag)
        {
            return Ok(Response::new(kept));
        }
        let id = r.id.clone();
        let answer = self.get_tile_answer(&scope, r).await?;
        let bytes = Bytes::from(prost::Message::encode_to_vec(&answer));
        if latest && let Some(tile) = &answer.tile {
            self.inner.encoded.put(id, tile.etag, bytes.clone());
        }
        Ok(Response::new(bytes))
    }

    /// The history entries with their records read (in one read per
    /// [`tilewave_store::GET_MANY_CHUNK`] records), in order; a record
    /// gone since its index entry was listed (folded by retention) is
    /// left out.
    async fn read_records(
        &self,
        entries: Vec<HistoryEntry<String>>,
    ) -> Result<Vec<HistoryEntry<AuditRecord>>> {
        let wanted: Vec<String> = entries
            .iter()
            .filter_map(|e| match e {
                HistoryEntry::Record(k) => Some(k.clone()),
                HistoryEntry::Summary(_) => None,
            })
            .collect();
        let mut found: HashMap<String, AuditRecord> = self
            .store()
            .get_many::<AuditRecord>(&wanted)
            .await?
            .into_iter()
            .map(|v| (v.key, v.value))
            .collect();
        Ok(entries
            .into_iter()
            .filter_map(|e| match e {
                HistoryEntry::Summary(s) => Some(HistoryEntry::Summary(s)),
                HistoryEntry::Record(k) => found.remove(&k).map(HistoryEntry::Record),
            })
            .collect())
    }

    fn store(&self) -> &Store {
        &self.inner.store
    }

    fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    fn tile_key(&self, id: &str) -> String {
        self.store().keys().tile(id)
    }

    /// Marks the workspace that holds a self-test tile.
    fn self_test_marker(&self, workspace: &str) -> String {
        self.store().keys().self_test_workspace(workspace)
    }

    fn revision_key(&self, id: &str, revision: i64) -> String {
        self.store().keys().tile_revision(id, revision)
    }

    /// The latest tile from the cache, with its etag filled in, if the
    /// caller may see it (a tile of another partner is as absent as a
    /// missing one).
    fn cached(&self, id: &str, scope: &Scope) -> Option<Tile> {
        self.inner
            .tiles
            .get(&self.tile_key(id))
            .map(with_etag)
            .filter(|t| scope.sees(Some(&t.partner_id)))
    }

    /// The latest tile, read fresh from etcd (for writes); a tile the
    /// caller may not see is answered exactly as a missing one, before its
    /// etag is compared.
    async fn read_fresh(&self, id: &str, scope: &Scope) -> Result<Versioned<Tile>> {
        domain::check_id("id", id)?;
        self.store()
            .get::<Tile>(&self.tile_key(id))
            .await?
            .filter(|t| scope.sees(Some(&t.value.partner_id)))
            .ok_or_else(|| no_tile(id))
    }

    async fn read_revision(&self, id: &str, revision: i64) -> Result<Tile> {
        self.store()
            .get::<Tile>(&self.revision_key(id, revision))
            .await?
            .map(|v| v.value)
            .ok_or_else(|| Error::NotFound(format!("tile {} has no revision {revision}", quote(id))))
    }

    async fn wait_for(&self, revision: i64) {
        // Best effort: the write is committed; a slow cache only delays
        // read-your-writes on this replica, it does not lose anything.
        let (tiles, revisions) = futures::join!(
            self.inner
                .tiles
                .wait_for_revision(revision, READ_YOUR_WRITES_WAIT),
            self.inner
                .revisions
                .wait_for_revision(revision, READ_YOUR_WRITES_WAIT)
        );
        if let Err(e) = tiles.and(revisions) {
            tracing::warn!(error = %e, revision, "tile cache is behind the write just made");
        }
    }

    /// The stored revisions of tile `id` as of (at least) the tile cache's
    /// `latest`: from the summary cache once it has reached the tile's
    /// commit (at once, unless this replica's two watches are a moment
    /// apart), else, after [`READ_YOUR_WRITES_WAIT`], one range read of
    /// etcd.
    async fn revision_records(&self, id: &str, latest: &Tile) -> Result<Vec<RevisionRecord>> {
        let prefix = self.store().keys().tile_revisions(id);
        let cache = &self.inner.revisions;
        if cache.revision() >= latest.etag
            || cache
                .wait_for_revision(latest.etag, READ_YOUR_WRITES_WAIT)
                .await
                .is_ok()
        {
            return Ok(cache.with_prefix(&prefix).into_iter().map(|v| v.value).collect());
        }
        tracing::warn!(
            tile = id,
            "revision summary cache is behind the tile; reading etcd"
        );
        let listing = self.store().list::<RevisionRecord>(&prefix).await?;
        Ok(listing.items.into_iter().map(|v| v.value).collect())
    }

    /// Reads the tile, checks the caller's etag (0: no check), lets `edit`
    /// change it, and commits it with its audit record in one transaction
    /// guarded by the etag read. The launch-slot bookings the change moves
    /// (the place the tile held, the place it takes) are written in the same
    /// transaction, guarded on their own mod revision; when another writer
    /// changed a bookings record in between, the whole read-check-write is
    /// done again (a few times), so a slot never holds more than its
    /// capacity.
    async fn mutate<F>(&self, who: &Who, id: &str, etag: i64, action: &str, edit: F) -> Result<Tile>
    where
        F: Fn(&mut Tile, Timestamp) -> Result<String>,
    {
        self.mutate_with(who, id, etag, action, false, edit).await
    }

    /// [`Registry::mutate`]; with `snapshot`, the change also creates the
    /// revision snapshot of the tile's (new) revision.
    async fn mutate_with<F>(
        &self,
        who: &Who,
        id: &str,
        etag: i64,
        action: &str,
        snapshot: bool,
        edit: F,
    ) -> Result<Tile>
    where
        F: Fn(&mut Tile, Timestamp) -> Result<String>,
    {
        let Who { actor, scope } = who;
        let slots = self.store().keys().launch_slots();
        let tile_key = self.tile_key(id);
        let mut attempt = 0;
        // The first try edits the tile cache's copy, saving a read of
        // etcd: the transaction compares the tile's etag, so a copy a
        // moment behind is refused (CONFLICT on the tile's key) and the
        // next try reads etcd. A copy whose etag is not the caller's is
        // not used (it may be the one behind).
        let mut from_cache = true;
        domain::check_id("id", id)?;
        loop {
            attempt += 1;
            let cached = from_cache
                .then(|| self.inner.tiles.get(&tile_key))
                .flatten()
                .filter(|t| scope.sees(Some(&t.value.partner_id)) && (etag == 0 || etag == t.etag));
            let used_cache = cached.is_some();
            let current = match cached {
                Some(c) => c,
                None => self.read_fresh(id, scope).await?,
            };
            check_etag(id, etag, current.etag)?;
            let now = self.now();
            let mut tile = current.value.clone();
            let summary = edit(&mut tile, now)?;
            domain::refresh_readiness(&mut tile)?;
            tile.updated_at = Some(to_proto_timestamp(now));
            tile.updated_by = actor.as_str().to_string();
            tile.etag = 0;
            let mut change = Change::new().update(self.tile_key(id), &tile, current.etag);
            if snapshot {
                change = change.create(self.revision_key(id, tile.revision), &revision_snapshot(&tile));
            }
            if tile.self_test && tile.state == TileState::Withdrawn as i32 {
                // The workspace may hold a new self-test tile now.
                change = change.delete_unchecked(self.self_test_marker(&tile.test_workspace_id));
            }
            let (bookings, booked) = self.slot_bookings(&current.value, &tile).await?;
            let change =
                change
                    .merge(bookings)
                    .audit(audit(now, action, &tile, format!("{summary}{booked}")));
            match self.store().commit(change, actor).await {
                Ok(info) => {
                    self.wait_for(info.revision).await;
                    tile.etag = info.revision;
                    return Ok(tile);
                }
                Err(tilewave_store::Error::Conflict { key }) if used_cache && key == tile_key => {
                    tracing::debug!(key, "the tile cache's copy was behind; reading etcd");
                    from_cache = false;
                    attempt -= 1;
                }
                Err(
                    tilewave_store::Error::Conflict { key } | tilewave_store::Error::AlreadyExists { key },
                ) if key.starts_with(&slots) && attempt < SLOT_ATTEMPTS => {
                    tracing::debug!(key, attempt, "launch slot changed under the write; again");
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The writes to `launch-slots/` that go with a change of `old` into
    /// `new`: the tile leaves the slot it held (the key deleted when it was
    /// the last) and takes a place in the slot it books, refused when the
    /// slot already holds its capacity of other tiles. Also what the audit
    /// summary adds. Re-booking the slot it holds changes nothing.
    async fn slot_bookings(&self, old: &Tile, new: &Tile) -> Result<(Change, String)> {
        let held = old.ga_slot.as_ref().and_then(|s| s.at);
        let booking = new.ga_slot.as_ref().filter(|s| s.at.is_some());
        let wanted = booking.and_then(|s| s.at);
        let mut change = Change::new();
        let mut said = String::new();
        if held == wanted {
            return Ok((change, said));
        }
        if let Some(at) = held {
            let key = self.slot_key(&at)?;
            if let Some(v) = self.store().get::<SlotBookings>(&key).await? {
                let mut b = v.value;
                b.tile_ids.retain(|t| t != &new.id);
                change = if b.tile_ids.is_empty() {
                    change.delete(key, v.etag)
                } else {
                    change.update(key, &b, v.etag)
                };
                said.push_str(&format!(
                    "; freed its place in the launch slot {}",
                    show_time(&at)
                ));
            }
        }
        if let (Some(slot), Some(at)) = (booking, wanted) {
            let key = self.slot_key(&at)?;
            let current = self.store().get::<SlotBookings>(&key).await?;
            let mut b = current
                .as_ref()
                .map(|v| v.value.clone())
                .unwrap_or_else(|| SlotBookings {
                    at: Some(at),
                    ..Default::default()
                });
            let others: Vec<&str> = b
                .tile_ids
                .iter()
                .filter(|t| **t != new.id)
                .map(String::as_str)
                .collect();
            let capacity = usize::try_from(slot.capacity).unwrap_or_default();
            if others.len() >= capacity {
                return Err(Error::FailedPrecondition(format!(
                    "slot {} is full ({} of {} booked: {}): choose another with `tilewave ga schedule {}`",
                    show_time(&at),
                    others.len(),
                    slot.capacity,
                    others.join(", "),
                    new.id
                )));
            }
            if !b.tile_ids.contains(&new.id) {
                b.tile_ids.push(new.id.clone());
            }
            b.capacity = slot.capacity;
            said.push_str(&format!(
                "; booked a place in the launch slot {} ({} of {})",
                show_time(&at),
                b.tile_ids.len(),
                slot.capacity
            ));
            change = match current {
                Some(v) => change.update(key, &b, v.etag),
                None => change.create(key, &b),
            };
        }
        Ok((change, said))
    }

    fn slot_key(&self, at: &prost_types::Timestamp) -> Result<String> {
        let at = from_proto_timestamp(at).map_err(|e| Error::invalid("ga_time", e.to_string()))?;
        self.store()
            .keys()
            .launch_slot(at)
            .map_err(|e| Error::invalid("ga_time", e.to_string()))
    }

    /// Creates revision 1 of a tile, or (with `etag`) the next revision.
    async fn store_revision(
        &self,
        who: &Who,
        new: domain::NewRevision,
        etag: i64,
        action: &str,
    ) -> Result<Tile> {
        let actor = &who.actor;
        let now = self.now();
        let id = new.id.clone();
        if etag == 0 {
            let mut tile = new.into_first_tile(now, actor.as_str());
            let mut change = Change::new()
                .create(self.tile_key(&id), &tile)
                .create(self.revision_key(&id, 1), &revision_snapshot(&tile));
            // One self-test tile per workspace: a marker key created in the
            // same transaction makes the rule hold across replicas.
            let marker = tile
                .self_test
                .then(|| self.self_test_marker(&tile.test_workspace_id));
            if let Some(marker) = &marker {
                change = change.create(
                    marker.clone(),
                    &Tile {
                        id: id.clone(),
                        ..Default::default()
                    },
                );
            }
            let summary = format!("created revision 1 of {}", quote(&tile.name));
            let change = change.audit(audit(now, action, &tile, summary));
            let workspace = tile.test_workspace_id.clone();
            let info = self.store().commit(change, actor).await.map_err(|e| match e {
                tilewave_store::Error::AlreadyExists { key } if Some(&key) == marker.as_ref() => {
                    Error::AlreadyExists(format!(
                        "workspace {workspace} already has a self-test tile (one per workspace): withdraw it \
                         first"
                    ))
                }
                tilewave_store::Error::AlreadyExists { .. } => Error::AlreadyExists(format!(
                    "tile {} exists: pass its etag to make a new revision (`tilewave tile update`), or \
                     import with another --id",
                    quote(&id)
                )),
                other => other.into(),
            })?;
            self.wait_for(info.revision).await;
            tile.etag = info.revision;
            return Ok(tile);
        }
        self.mutate_with(who, &id, etag, action, true, |tile, now| {
            domain::apply_new_revision(tile, new.clone(), now, actor.as_str())
        })
        .await
    }

    /// Whether ListTiles answers `t` to this request and caller: the
    /// caller's tiles only, before paging (so that neither a page token
    /// nor a count tells of others).
    fn lists(req: &ListTilesRequest, scope: &Scope, t: &Tile) -> bool {
        scope.sees(Some(&t.partner_id))
            && (req.states.is_empty() || req.states.contains(&t.state))
            && (req.partner_id.is_empty() || t.partner_id == req.partner_id)
            && (req.cloud == Cloud::Unspecified as i32
                || t.config
                    .as_ref()
                    .is_some_and(|c| c.supported_clouds.contains(&req.cloud)))
            && (req.category == PartnerCategory::Unspecified as i32
                || t.config.as_ref().is_some_and(|c| c.category == req.category))
            && (req.include_self_test || !t.self_test)
    }

    /// One page of the tiles ListTiles answers, in key order, how many it
    /// answers in all, and the cache's revision they are read at (under
    /// the same lock): only the page's tiles are copied out of the cache
    /// (a page of 500 of 10,000 tiles copied all 10,000, with their raw
    /// configurations).
    fn list_page(
        &self,
        req: &ListTilesRequest,
        scope: &Scope,
        offset: usize,
        size: usize,
    ) -> (Vec<Tile>, usize, i64) {
        let mut total = 0usize;
        let (revision, tiles) = self.inner.tiles.scan_at(|v| {
            if !Self::lists(req, scope, &v.value) {
                return None;
            }
            let at = total;
            total += 1;
            (at >= offset && at - offset < size).then(|| {
                let mut t = with_etag(v.clone());
                if !req.include_raw_config {
                    t.raw_config.clear();
                }
                t
            })
        });
        (tiles, total, revision)
    }

    /// ListTiles' answer: a page of the tile cache, read at one revision.
    fn list_tiles_answer(&self, scope: &Scope, r: &ListTilesRequest) -> Result<ListTilesResponse> {
        limits::count("states", r.states.len(), limits::MAX_LIST_ITEMS)?;
        limits::id("partner_id", &r.partner_id)?;
        let page = page_of(r.page.as_ref())?;
        let offset = page.offset().map_err(page_error)?;
        let (tiles, total, read_revision) = self.list_page(r, scope, offset, page.size);
        let next_page_token = page.next_after(offset, total);
        Ok(ListTilesResponse {
            tiles,
            next_page_token,
            read_revision,
        })
    }

    /// ListTiles as the server answers it (see `server.rs`):
    /// the answer is a function of the tile cache's revision, the request
    /// and what the caller may see, so a few recent answers are kept
    /// encoded ([`Kept`]) and the same listing asked again before any
    /// tile changed is answered with those bytes.
    #[instrument(name = "list_tiles", skip_all)]
    pub(crate) async fn list_tiles_encoded(
        &self,
        req: Request<ListTilesRequest>,
    ) -> Result<Response<Bytes>, Status> {
        let scope = Scope::of_request(&req);
        let r = req.into_inner();
        let asked = ListKey::new(&scope, &r);
        if let Some(kept) = self.inner.lists.get(&asked, self.inner.tiles.revision()) {
            return Ok(Response::new(kept));
        }
        let answer = self.list_tiles_answer(&scope, &r)?;
        let bytes = Bytes::from(prost::Message::encode_to_vec(&answer));
        self.inner.lists.put(asked, answer.read_revision, bytes.clone());
        Ok(Response::new(bytes))
    }
}

/// The NOT_FOUND of a tile that does not exist, or that the caller may
/// not see: the same answer, so that it says nothing about other
/// partners' tiles.
fn no_tile(id: &str) -> Error {
    Error::NotFound(format!(
        "no tile {}: `tilewave tile list` shows the tiles",
        quote(id)
    ))
}

fn with_etag(v: Versioned<Tile>) -> Tile {
    let mut t = v.value;
    t.etag = v.etag;
    t
}

fn check_etag(id: &str, asked: i64, current: i64) -> Result<()> {
    if asked != 0 && asked != current {
        return Err(Error::Conflict(format!(
            "tile {} changed since it was read (etag {asked}, now {current}): read it again and retry",
            quote(id)
        )));
    }
    Ok(())
}

/// What a revision snapshot keeps: the fields that belong to the revision.
fn revision_snapshot(tile: &Tile) -> Tile {
    Tile {
        id: tile.id.clone(),
        partner_id: tile.partner_id.clone(),
        name: tile.name.clone(),
        revision: tile.revision,
        latest_revision: tile.revision,
        config: tile.config.clone(),
        raw_config: tile.raw_config.clone(),
        config_format: tile.config_format,
        self_test: tile.self_test,
        maintenance: tile.maintenance.clone(),
        created_at: tile.updated_at,
        created_by: tile.updated_by.clone(),
        updated_at: tile.updated_at,
        updated_by: tile.updated_by.clone(),
        warnings: tile.warnings.clone(),
        ..Default::default()
    }
}

fn audit(now: Timestamp, action: &str, tile: &Tile, summary: String) -> AuditRecord {
    AuditRecord {
        at: Some(to_proto_timestamp(now)),
        ..audit::record(action, "tile", &tile.id, summary)
            .revision(tile.revision)
            .detail("state", TileState::short_name_of(tile.state))
    }
}

/// Bounds a revision's maintenance info (regions and summary).
fn check_maintenance(m: Option<&MaintenanceInfo>) -> Result<()> {
    if let Some(m) = m {
        limits::count(
            "maintenance.affected_clouds",
            m.affected_clouds.len(),
            limits::MAX_LIST_ITEMS,
        )?;
        limits::each_id("maintenance.affected_regions", &m.affected_regions)?;
        limits::text("maintenance.summary", &m.summary)?;
    }
    Ok(())
}

/// One entry of a tile's history: a summary of an old day, or a record
/// (`R`: the record, or its key before it is read).
enum HistoryEntry<R> {
    Summary(Box<AuditSummary>),
    Record(R),
}

impl<R> HistoryEntry<R> {
    fn summary(s: AuditSummary) -> Self {
        Self::Summary(Box::new(s))
    }
}

/// A checked page request.
fn page_of(page: Option<&PageRequest>) -> Result<Page> {
    Page::parse(page).map_err(page_error)
}

fn page_error(e: PageError) -> Error {
    Error::invalid(e.field, e.message)
}

/// Who calls: the actor its audit records name, and which partners'
/// tiles it may see.
struct Who {
    actor: Actor,
    scope: Scope,
}

impl Who {
    fn of<T>(req: &Request<T>) -> Self {
        Self {
            actor: Actor::from_request(req),
            scope: Scope::of_request(req),
        }
    }
}

type TileEventStream = Pin<Box<dyn Stream<Item = Result<TileEvent, Status>> + Send>>;

#[tonic::async_trait]
impl RegistryService for Registry {
    #[instrument(skip_all, fields(tile = %req.get_ref().id))]
    async fn create_tile(
        &self,
        req: Request<CreateTileRequest>,
    ) -> Result<Response<CreateTileResponse>, Status> {
        let who = Who::of(&req);
        let r = req.into_inner();
        let config = r.config.ok_or_else(|| Error::invalid("config", "required"))?;
        let new = domain::from_typed(&r.id, &r.partner_id, config, r.self_test, &r.workspace_id)?;
        let warnings = new.warnings.clone();
        if r.dry_run {
            let tile = new.into_first_tile(self.now(), who.actor.as_str());
            return Ok(Response::new(CreateTileResponse {
                tile: Some(tile),
                warnings,
            }));
        }
        let tile = self.store_revision(&who, new, 0, "CreateTile").await?;
        Ok(Response::new(CreateTileResponse {
            tile: Some(tile),
            warnings,
        }))
    }

    #[instrument(skip_all, fields(tile = %req.get_ref().id))]
    async fn import_partner_config(
        &self,
        req: Request<ImportPartnerConfigRequest>,
    ) -> Result<Response<ImportPartnerConfigResponse>, Status> {
        let who = Who::of(&req);
        let r = req.into_inner();
        limits::document("config_json", &r.config_json).map_err(Error::from)?;
        limits::text("note", &r.note).map_err(Error::from)?;
        check_maintenance(r.maintenance.as_ref())?;
        let parsed = domain::from_document(&r.config_json, &r.id, &r.partner_id, &r.workspace_id);
        let mut new = match parsed {
            Ok(new) => new,
            Err(Error::Invalid { message, violations }) if r.dry_run => {
                let errors = violations
                    .into_iter()
                    .map(|v| ConfigIssue {
                        path: v.field,
                        code: String::new(),
                        message: v.description,
                    })
                    .collect();
                tracing::debug!(%message, "dry run found errors");
                return Ok(Response::new(ImportPartnerConfigResponse {
                    errors,
                    ..Default::default()
                }));
            }
            Err(e) => return Err(e.into()),
        };
        new.note = r.note;
        new.maintenance = r.maintenance;
        let warnings = new.warnings.clone();
        let format = new.format as i32;
        if r.dry_run {
            let tile = new.into_first_tile(self.now(), who.actor.as_str());
            return Ok(Response::new(ImportPartnerConfigResponse {
                tile: Some(tile),
                warnings,
                errors: vec![],
                format,
            }));
        }
        let tile = self
            .store_revision(&who, new, r.etag, "ImportPartnerConfig")
            .await?;
        Ok(Response::new(ImportPartnerConfigResponse {
            tile: Some(tile),
            warnings,
            errors: vec![],
            format,
        }))
    }

    #[instrument(skip_all, fields(tile = %req.get_ref().id))]
    async fn update_tile(
        &self,
        req: Request<UpdateTileRequest>,
    ) -> Result<Response<UpdateTileResponse>, Status> {
        let who = Who::of(&req);
        let r = req.into_inner();
        if r.etag == 0 {
            return Err(Error::invalid(
                "etag",
                "required: the etag of the tile as read (`tilewave tile get`)",
            )
            .into());
        }
        limits::text("note", &r.note).map_err(Error::from)?;
        check_maintenance(r.maintenance.as_ref())?;
        if let Some(update_tile_request::Source::ConfigJson(j)) = &r.source {
            limits::document("config_json", j).map_err(Error::from)?;
        }
        let current = self.read_fresh(&r.id, &who.scope).await?;
        let partner = if r.partner_id.is_empty() {
            current.value.partner_id.clone()
        } else {
            r.partner_id
        };
        let mut new = match r.source {
            Some(update_tile_request::Source::Config(c)) => domain::from_typed(
                &r.id,
                &partner,
                c,
                current.value.self_test,
                &current.value.test_workspace_id,
            )?,
            Some(update_tile_request::Source::ConfigJson(j)) => {
                let ws = if current.value.self_test {
                    current.value.test_workspace_id.as_str()
                } else {
                    ""
                };
                domain::from_document(&j, &r.id, &partner, ws)?
            }
            None => {
                return Err(Error::invalid("source", "give the new configuration, typed or as JSON").into());
            }
        };
        new.note = r.note;
        new.maintenance = r.maintenance;
        let warnings = new.warnings.clone();
        if r.dry_run {
            let mut tile = current.value;
            domain::apply_new_revision(&mut tile, new, self.now(), who.actor.as_str())?;
            return Ok(Response::new(UpdateTileResponse {
                tile: Some(tile),
                warnings,
            }));
        }
        let tile = self.store_revision(&who, new, r.etag, "UpdateTile").await?;
        Ok(Response::new(UpdateTileResponse {
            tile: Some(tile),
            warnings,
        }))
    }

    #[instrument(skip_all, fields(tile = %req.get_ref().id))]
    async fn get_tile(&self, req: Request<GetTileRequest>) -> Result<Response<GetTileResponse>, Status> {
        let scope = Scope::of_request(&req);
        Ok(Response::new(
            self.get_tile_answer(&scope, req.into_inner()).await?,
        ))
    }

    #[instrument(skip_all)]
    async fn list_tiles(
        &self,
        req: Request<ListTilesRequest>,
    ) -> Result<Response<ListTilesResponse>, Status> {
        let scope = Scope::of_request(&req);
        Ok(Response::new(self.list_tiles_answer(&scope, req.get_ref())?))
    }

    type WatchTilesStream = TileEventStream;

    #[instrument(skip_all)]
    async fn watch_tiles(
        &self,
        req: Request<WatchTilesRequest>,
    ) -> Result<Response<Self::WatchTilesStream>, Status> {
        let scope = Scope::of_request(&req);
        let r = req.into_inner();
        if !r.tile_id.is_empty() {
            domain::check_id("tile_id", &r.tile_id)?;
        }
        let snapshot = self.snapshot_for_watch(&r, &scope);
        let stream = crate::watch::watch_tiles(self.store().clone(), snapshot, r, scope).await?;
        Ok(Response::new(stream))
    }

    #[instrument(skip_all, fields(tile = %req.get_ref().id))]
    async fn get_history(
        &self,
        req: Request<GetHistoryRequest>,
    ) -> Result<Response<GetHistoryResponse>, Status> {
        let scope = Scope::of_request(&req);
        let r = req.into_inner();
        domain::check_id("id", &r.id)?;
        let page = page_of(r.page.as_ref())?;
        if self.cached(&r.id, &scope).is_none() {
            return Err(no_tile(&r.id).into());
        }
        let (from, to) = match &r.range {
            Some(range) => (
                range
                    .start
                    .as_ref()
                    .map(from_proto_timestamp)
                    .transpose()
                    .map_err(Error::from)?,
                range
                    .end
                    .as_ref()
                    .map(from_proto_timestamp)
                    .transpose()
                    .map_err(Error::from)?,
            ),
            None => (None, None),
        };
        let keys = self.store().keys();
        let summaries: Vec<AuditSummary> = self
            .store()
            .list::<AuditSummary>(&keys.audit_summaries_of("tile", &r.id))
            .await
            .map_err(Error::from)?
            .items
            .into_iter()
            .map(|v| v.value)
            .filter(|s| audit_summary::overlaps(s, from, to))
            .filter(|s| audit_summary::may_name_revision(s, r.revision))
            .collect();
        // One sequence, summaries (older) first, then the records of the
        // requested span in time order, paged together. The records are
        // found through the tile's own entries of the audit index (complete
        // since the registry started); only the page's records are read
        // (all of the span's when filtered by revision, which only the
        // records tell).
        let (start, end) = (
            from.map_or_else(
                || keys.audit_index_of("tile", &r.id),
                |f| keys.audit_index_before("tile", &r.id, f),
            ),
            to.map_or_else(
                || keys.audit_index_end("tile", &r.id),
                |t| keys.audit_index_before("tile", &r.id, t),
            ),
        );
        let record_keys: Vec<String> = if start < end {
            self.store()
                .list_range::<()>(&start, &end)
                .await
                .map_err(Error::from)?
                .items
                .into_iter()
                .filter_map(|v| keys.audit_of_index_entry("tile", &r.id, &v.key))
                .collect()
        } else {
            Vec::new()
        };
        let (entries, next_page_token) = if r.revision == 0 {
            let sequence: Vec<HistoryEntry<String>> = summaries
                .into_iter()
                .map(HistoryEntry::summary)
                .chain(record_keys.into_iter().map(HistoryEntry::Record))
                .collect();
            let (entries, token) = page.by_offset(sequence).map_err(page_error)?;
            (self.read_records(entries).await?, token)
        } else {
            let records = self
                .read_records(record_keys.into_iter().map(HistoryEntry::Record).collect())
                .await?
                .into_iter()
                .filter(|e| matches!(e, HistoryEntry::Record(a) if a.object_revision == r.revision));
            let sequence = summaries
                .into_iter()
                .map(HistoryEntry::summary)
                .chain(records)
                .collect();
            page.by_offset(sequence).map_err(page_error)?
        };
        let mut resp = GetHistoryResponse {
            next_page_token,
            ..Default::default()
        };
        for e in entries {
            match e {
                HistoryEntry::Summary(s) => resp.summaries.push(*s),
                HistoryEntry::Record(a) => resp.records.push(a),
            }
        }
        Ok(Response::new(resp))
    }

    #[instrument(skip_all, fields(tile = %req.get_ref().id))]
    async fn record_sign_off(
        &self,
        req: Request<RecordSignOffRequest>,
    ) -> Result<Response<RecordSignOffResponse>, Status> {
        let who = Who::of(&req);
        let r = req.into_inner();
        let role = domain::role("role", r.role)?;
        limits::text("note", &r.note).map_err(Error::from)?;
        let signer = who.actor.as_str().to_string();
        let tile = self
            .mutate(&who, &r.id, r.etag, "RecordSignOff", |tile, now| {
                domain::record_sign_off(tile, role, r.revision, &signer, &r.note, now)
            })
            .await?;
        Ok(Response::new(RecordSignOffResponse { tile: Some(tile) }))
    }

    #[instrument(skip_all, fields(tile = %req.get_ref().id))]
    async fn withdraw_sign_off(
        &self,
        req: Request<WithdrawSignOffRequest>,
    ) -> Result<Response<WithdrawSignOffResponse>, Status> {
        let who = Who::of(&req);
        let r = req.into_inner();
        let role = domain::role("role", r.role)?;
        limits::text("reason", &r.reason).map_err(Error::from)?;
        let tile = self
            .mutate(&who, &r.id, r.etag, "WithdrawSignOff", |tile, now| {
                domain::withdraw_sign_off(tile, role, r.revision, &r.reason, now)
            })
            .await?;
        Ok(Response::new(WithdrawSignOffResponse { tile: Some(tile) }))
    }

    #[instrument(skip_all, fields(tile = %req.get_ref().id))]
    async fn set_test_workspace(
        &self,
        req: Request<SetTestWorkspaceRequest>,
    ) -> Result<Response<SetTestWorkspaceResponse>, Status> {
        let who = Who::of(&req);
        let r = req.into_inner();
        domain::check_workspace("workspace_id", &r.workspace_id, true)?;
        let tile = self
            .mutate(&who, &r.id, r.etag, "SetTestWorkspace", |tile, now| {
                domain::set_test_workspace(tile, &r.workspace_id, now)
            })
            .await?;
        Ok(Response::new(SetTestWorkspaceResponse { tile: Some(tile) }))
    }

    #[instrument(skip_all, fields(tile = %req.get_ref().id))]
    async fn set_ga_date(
        &self,
        req: Request<SetGaDateRequest>,
    ) -> Result<Response<SetGaDateResponse>, Status> {
        let who = Who::of(&req);
        let r = req.into_inner();
        let ga = r
            .ga_time
            .as_ref()
            .map(from_proto_timestamp)
            .transpose()
            .map_err(|e| Error::invalid("ga_time", e.to_string()))?;
        limits::text("reason", &r.reason).map_err(Error::from)?;
        limits::text("gtm_override", &r.gtm_override).map_err(Error::from)?;
        if !(0..=MAX_SLOT_CAPACITY).contains(&r.slot_capacity) {
            return Err(Error::invalid(
                "slot_capacity",
                format!(
                    "{} is not a slot capacity (0 to {MAX_SLOT_CAPACITY}; 0: no slot)",
                    r.slot_capacity
                ),
            )
            .into());
        }
        if ga.is_none() && r.slot_capacity > 0 {
            return Err(Error::invalid("slot_capacity", "a slot needs its ga_time").into());
        }
        if ga.is_none() && !r.gtm_override.is_empty() {
            return Err(Error::invalid(
                "gtm_override",
                "an override goes with a GA date being set, not cleared",
            )
            .into());
        }
        let date = domain::GaDate {
            ga,
            reason: r.reason,
            slot_capacity: r.slot_capacity,
            gtm_override: r.gtm_override,
        };
        let by = who.actor.as_str().to_string();
        let tile = self
            .mutate(&who, &r.id, r.etag, "SetGaDate", |tile, now| {
                domain::set_ga(tile, &date, &by, now)
            })
            .await?;
        Ok(Response::new(SetGaDateResponse { tile: Some(tile) }))
    }

    #[instrument(skip_all, fields(tile = %req.get_ref().id))]
    async fn advance_lifecycle(
        &self,
        req: Request<AdvanceLifecycleRequest>,
    ) -> Result<Response<AdvanceLifecycleResponse>, Status> {
        let who = Who::of(&req);
        let r = req.into_inner();
        let target = TileState::try_from(r.target_state)
            .ok()
            .filter(|s| *s != TileState::Unspecified)
            .ok_or_else(|| Error::invalid("target_state", "not a tile state"))?;
        limits::text("reason", &r.reason).map_err(Error::from)?;
        limits::id("rollout_id", &r.rollout_id).map_err(Error::from)?;
        let tile = self
            .mutate(&who, &r.id, 0, "AdvanceLifecycle", |tile, now| {
                domain::advance(tile, target, r.expected_revision, &r.reason, &r.rollout_id, now)
            })
            .await?;
        Ok(Response::new(AdvanceLifecycleResponse { tile: Some(tile) }))
    }

    #[instrument(skip_all, fields(tile = %req.get_ref().id))]
    async fn withdraw(&self, req: Request<WithdrawRequest>) -> Result<Response<WithdrawResponse>, Status> {
        let who = Who::of(&req);
        let r = req.into_inner();
        limits::text("reason", &r.reason).map_err(Error::from)?;
        let tile = self
            .mutate(&who, &r.id, r.etag, "Withdraw", |tile, now| {
                domain::withdraw(tile, &r.reason, now)
            })
            .await?;
        let removal_pending = tile.withdraw_requested_at.is_some();
        Ok(Response::new(WithdrawResponse {
            tile: Some(tile),
            removal_pending,
        }))
    }

    #[instrument(skip_all, fields(tile = %req.get_ref().id))]
    async fn record_validation(
        &self,
        req: Request<RecordValidationRequest>,
    ) -> Result<Response<RecordValidationResponse>, Status> {
        let who = Who::of(&req);
        let r = req.into_inner();
        limits::count("case_ids", r.case_ids.len(), limits::MAX_LIST_ITEMS).map_err(Error::from)?;
        limits::each_id("case_ids", &r.case_ids).map_err(Error::from)?;
        limits::text("note", &r.note).map_err(Error::from)?;
        let outcome = domain::outcome("outcome", r.outcome)?;
        let cases = match (r.all_open, r.case_ids.is_empty()) {
            (true, true) => domain::Cases::AllOpen,
            (false, false) => domain::Cases::Named(r.case_ids),
            (false, true) => {
                return Err(Error::invalid(
                    "case_ids",
                    "required: the cases (e.g. P100), or all_open for every open case",
                )
                .into());
            }
            (true, false) => {
                return Err(Error::invalid("all_open", "give the cases or all_open, not both").into());
            }
        };
        if r.outcome == ValidationOutcome::Waived as i32 && r.note.trim().is_empty() {
            return Err(Error::invalid(
                "note",
                "a waiver needs a reason: say why the case is not required with --note REASON",
            )
            .into());
        }
        let evidence = self.evidence(&who, &r.evidence_tile, r.evidence_revision).await?;
        let v = domain::Validation {
            revision: r.revision,
            cases,
            outcome,
            note: r.note,
            evidence,
        };
        let recorder = who.actor.as_str().to_string();
        let tile = self
            .mutate(&who, &r.id, r.etag, "RecordValidation", |tile, now| {
                domain::record_validation(tile, &v, &recorder, now)
            })
            .await?;
        Ok(Response::new(RecordValidationResponse { tile: Some(tile) }))
    }

    #[instrument(skip_all, fields(tile = %req.get_ref().id))]
    async fn set_gtm_item(
        &self,
        req: Request<SetGtmItemRequest>,
    ) -> Result<Response<SetGtmItemResponse>, Status> {
        let who = Who::of(&req);
        let r = req.into_inner();
        limits::id("item", &r.item).map_err(Error::from)?;
        limits::text("owner", &r.owner).map_err(Error::from)?;
        limits::id("due", &r.due).map_err(Error::from)?;
        limits::text("link", &r.link).map_err(Error::from)?;
        let set = domain::GtmSet {
            item: r.item,
            status: r.status,
            owner: r.owner,
            due: r.due,
            link: r.link,
        };
        let by = who.actor.as_str().to_string();
        let tile = self
            .mutate(&who, &r.id, r.etag, "SetGtmItem", |tile, now| {
                domain::set_gtm_item(tile, &set, &by, now)
            })
            .await?;
        Ok(Response::new(SetGtmItemResponse { tile: Some(tile) }))
    }
}

impl Registry {
    /// The evidence a validation result names: a self-test tile that exists
    /// (and the caller may see) and one of its revisions (0: its latest).
    async fn evidence(
        &self,
        who: &Who,
        tile: &str,
        revision: i64,
    ) -> Result<Option<tilewave_core::readiness::validation::Evidence>> {
        if tile.is_empty() {
            if revision != 0 {
                return Err(Error::invalid("evidence_revision", "given without evidence_tile"));
            }
            return Ok(None);
        }
        let id = tilewave_core::slug::TileId::parse(tile)
            .map_err(|e| Error::invalid("evidence_tile", e.to_string()))?;
        let found = self
            .store()
            .get::<Tile>(&self.tile_key(tile))
            .await?
            .map(|v| v.value)
            .filter(|t| who.scope.sees(Some(&t.partner_id)));
        let Some(found) = found else {
            return Err(Error::invalid(
                "evidence_tile",
                format!("no tile {}: evidence is a self-test tile's results", quote(tile)),
            ));
        };
        if !found.self_test {
            return Err(Error::invalid(
                "evidence_tile",
                format!(
                    "tile {} is not a self-test tile: evidence is the results of a self-test tile",
                    quote(tile)
                ),
            ));
        }
        let revision = if revision == 0 { found.revision } else { revision };
        if revision < 1 || revision > found.latest_revision.max(found.revision) {
            return Err(Error::invalid(
                "evidence_revision",
                format!(
                    "self-test tile {} has revisions 1 to {}, not {revision}",
                    quote(tile),
                    found.revision
                ),
            ));
        }
        let revision = u32::try_from(revision)
            .map(tilewave_core::signoff::RevisionNo)
            .map_err(|_| Error::invalid("evidence_revision", format!("{revision} is not a revision")))?;
        Ok(Some(tilewave_core::readiness::validation::Evidence {
            self_test_tile: id,
            revision,
        }))
    }

    /// The snapshot a watch from revision 0 starts with: the cache's tiles at
    /// one revision, only those the watcher may see and asked for copied,
    /// their raw documents dropped at once unless asked for (10,000 tiles,
    /// 12 MB of them).
    fn snapshot_for_watch(&self, r: &WatchTilesRequest, scope: &Scope) -> (i64, Vec<Tile>) {
        self.inner.tiles.snapshot_scan(|v| {
            let wanted =
                scope.sees(Some(&v.value.partner_id)) && (r.tile_id.is_empty() || v.value.id == r.tile_id);
            wanted.then(|| {
                let mut tile = with_etag(v.clone());
                if !r.include_raw_config {
                    drop(std::mem::take(&mut tile.raw_config));
                }
                tile
            })
        })
    }
}

/// The RPCs whose handlers scope what they answer to the caller's partner
/// ([`Scope`]): every row of the access table a partner may call.
pub const PARTNER_SCOPED: &[&str] = &[
    "GetTile",
    "ListTiles",
    "WatchTiles",
    "GetHistory",
    "RecordSignOff",
    "WithdrawSignOff",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rpc_a_partner_may_call_is_scoped() {
        assert_eq!(
            tilewave_auth::table::partner_scoped("tilewave.registry.v1.RegistryService"),
            PARTNER_SCOPED,
            "a row that lets partners call a registry RPC needs its handler scoped (Scope::sees)"
        );
    }

    #[test]
    fn a_hidden_tile_and_a_missing_one_get_one_answer() {
        let status = tonic::Status::from(no_tile("globex-tile"));
        assert_eq!(status.code(), tonic::Code::NotFound);
        assert_eq!(
            status.message(),
            "no tile \"globex-tile\": `tilewave tile list` shows the tiles"
        );
    }
}
