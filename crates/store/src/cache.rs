//! Watch-backed caches, informer style: serve reads and drive reactions
//! without a round trip to etcd.
//!
//! A [`WatchCache`] lists its range at revision R, then watches from R + 1.
//! Each watch response is applied under one write lock and the cache's
//! revision moves only after it, so readers never see a torn state (part of
//! a transaction). When the connection is lost it reconnects with back-off
//! and resumes the watch from its revision + 1, so no change is missed; when
//! that history was compacted (the watch is cancelled with
//! `compact_revision`), or a waiter needs a revision the watch has not shown
//! (see [`WatchCache::wait_for_revision`]), or etcd's revision on
//! reconnecting is behind the cache's (the cluster was restored from a
//! backup: [`ResyncReason::Restored`]), it relists and replaces its state
//! atomically, broadcasting the differences and then
//! [`CacheEvent::Resynced`]; after a restore its revision goes back with
//! etcd's. While etcd is unreachable it keeps serving its
//! last consistent state.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use etcd_client::{EventType, KeyValue, WatchOptions};
use tokio::sync::{Notify, broadcast, watch};
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::keys::prefix_end;
use crate::observe::{EtcdOp, Observed};
use crate::retry::Backoff;
use crate::store::{Store, Versioned, decode};

/// How many change events a slow subscriber may fall behind before it sees
/// `RecvError::Lagged` (and should re-read the cache).
const EVENT_CAPACITY: usize = 1024;
/// How long [`WatchCache::wait_for_revision`] waits for the watch before it
/// asks for a relist to catch up.
const CATCH_UP_AFTER: Duration = Duration::from_millis(150);

/// Which keys in the range a cache keeps.
pub type KeyFilter = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// A change the cache applied.
#[derive(Debug, Clone, PartialEq)]
pub enum CacheEvent<T> {
    /// A key was created or updated.
    Put(Versioned<T>),
    /// A key was deleted.
    Delete {
        /// The full key.
        key: String,
        /// The revision of the deletion (of the relist, after a resync).
        revision: i64,
    },
    /// The cache replaced its state from a fresh listing (the differences
    /// were broadcast just before).
    Resynced {
        /// The listing's revision.
        revision: i64,
        /// Why.
        reason: ResyncReason,
    },
}

/// Why a cache relisted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResyncReason {
    /// The watch's history was compacted away.
    Compacted,
    /// A waiter needed a newer revision than the watch had shown.
    CatchUp,
    /// etcd cancelled the watch for another reason.
    Cancelled,
    /// etcd's revision was behind the cache's when the watch (re)connected:
    /// the cluster went back in time (restored from a backup), so resuming
    /// would wait for revisions that mean something else there.
    Restored,
}

struct State<T> {
    /// Boxed: a map node holds eleven values inline, and a large value (a
    /// tile is about 1.5 KB) left half-filled nodes holding more memory
    /// than the values (issue 18: the registry with 10,000 tiles).
    items: BTreeMap<String, Box<Versioned<T>>>,
    revision: i64,
}

struct Shared<T> {
    state: RwLock<State<T>>,
    revision: watch::Sender<i64>,
    events: broadcast::Sender<CacheEvent<T>>,
    relist: Notify,
    resyncs: AtomicU64,
    start: String,
    end: Vec<u8>,
    filter: Option<KeyFilter>,
}

impl<T> Shared<T> {
    fn read(&self) -> RwLockReadGuard<'_, State<T>> {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    fn write(&self) -> RwLockWriteGuard<'_, State<T>> {
        self.state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    fn keeps(&self, key: &str) -> bool {
        self.filter.as_ref().is_none_or(|f| f(key))
    }
}

/// A local copy of a key range, kept current by a watch.
pub struct WatchCache<T> {
    shared: Arc<Shared<T>>,
    task: tokio::task::JoinHandle<()>,
}

impl<T> std::fmt::Debug for WatchCache<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchCache")
            .field("start", &self.shared.start)
            .field("revision", &*self.shared.revision.borrow())
            .finish_non_exhaustive()
    }
}

impl<T> Drop for WatchCache<T> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<T> WatchCache<T>
where
    T: prost::Message + Default + Clone + 'static,
{
    /// Caches every key under `prefix`.
    pub async fn prefix(store: &Store, prefix: &str) -> Result<Self> {
        Self::start(store, prefix.to_owned(), prefix_end(prefix.as_bytes()), None).await
    }

    /// Caches the keys under `prefix` that `filter` accepts (e.g. roll-outs
    /// but not their steps: [`crate::Keys::is_direct_child`]).
    pub async fn prefix_filtered(store: &Store, prefix: &str, filter: KeyFilter) -> Result<Self> {
        Self::start(
            store,
            prefix.to_owned(),
            prefix_end(prefix.as_bytes()),
            Some(filter),
        )
        .await
    }

    /// Caches the keys directly under `prefix`, not those further down
    /// (roll-outs but not their steps, agents' registrations, tiles but not
    /// their revisions: [`crate::Keys::is_direct_child`]).
    pub async fn children(store: &Store, prefix: &str) -> Result<Self> {
        let filter_prefix = prefix.to_owned();
        Self::prefix_filtered(
            store,
            prefix,
            Arc::new(move |k: &str| crate::Keys::is_direct_child(&filter_prefix, k)),
        )
        .await
    }

    /// Caches one key.
    pub async fn key(store: &Store, key: &str) -> Result<Self> {
        let mut end = key.as_bytes().to_vec();
        end.push(0);
        Self::start(store, key.to_owned(), end, None).await
    }

    async fn start(store: &Store, start: String, end: Vec<u8>, filter: Option<KeyFilter>) -> Result<Self> {
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let (revision, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            state: RwLock::new(State {
                items: BTreeMap::new(),
                revision: 0,
            }),
            revision,
            events,
            relist: Notify::new(),
            resyncs: AtomicU64::new(0),
            start,
            end,
            filter,
        });
        relist(store, &shared, None).await?;
        let task = tokio::spawn(run(store.clone(), Arc::clone(&shared)));
        Ok(Self { shared, task })
    }

    /// The cached value at `key`.
    pub fn get(&self, key: &str) -> Option<Versioned<T>> {
        self.shared.read().items.get(key).map(|v| (**v).clone())
    }

    /// What `look` makes of the cached value under `key`, without copying
    /// the value (a reader that needs its etag or a field of a large
    /// value; the cache is read-locked meanwhile: keep `look` short).
    pub fn inspect<R>(&self, key: &str, look: impl FnOnce(&Versioned<T>) -> R) -> Option<R> {
        self.shared.read().items.get(key).map(|v| look(v))
    }

    /// Every cached value, in key order.
    pub fn list(&self) -> Vec<Versioned<T>> {
        self.snapshot().1
    }

    /// What `pick` makes of each cached value it wants, in key order,
    /// without copying the others (the cache is read-locked meanwhile:
    /// keep `pick` short).
    pub fn scan<R>(&self, pick: impl FnMut(&Versioned<T>) -> Option<R>) -> Vec<R> {
        self.scan_at(pick).1
    }

    /// [`WatchCache::scan`], and the revision the cache shows these values
    /// at, read under the same lock: what `pick` saw is the cache's state
    /// at exactly that revision.
    pub fn scan_at<R>(&self, mut pick: impl FnMut(&Versioned<T>) -> Option<R>) -> (i64, Vec<R>) {
        let state = self.shared.read();
        let picked = state.items.values().filter_map(|v| pick(v)).collect();
        (state.revision, picked)
    }

    /// The cached values whose keys start with `prefix`, in key order (a
    /// range of the map: the other keys are not visited).
    pub fn with_prefix(&self, prefix: &str) -> Vec<Versioned<T>> {
        use std::ops::Bound;
        self.shared
            .read()
            .items
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| (**v).clone())
            .collect()
    }

    /// The revision and every cached value, consistently.
    pub fn snapshot(&self) -> (i64, Vec<Versioned<T>>) {
        self.snapshot_scan(|v| Some(v.clone()))
    }

    /// [`WatchCache::scan`] with the revision it saw, consistently: a
    /// snapshot of only what `pick` wants (read-locked meanwhile).
    pub fn snapshot_scan<R>(&self, mut pick: impl FnMut(&Versioned<T>) -> Option<R>) -> (i64, Vec<R>) {
        let s = self.shared.read();
        (s.revision, s.items.values().filter_map(|v| pick(v)).collect())
    }

    /// The first cached value in key order (the next timer, for the timer
    /// range).
    pub fn first(&self) -> Option<Versioned<T>> {
        self.shared.read().items.values().next().map(|v| (**v).clone())
    }

    /// The revision the cache reflects: every change to its range up to it
    /// is applied.
    pub fn revision(&self) -> i64 {
        self.shared.read().revision
    }

    /// How many times the cache relisted since it started.
    pub fn resyncs(&self) -> u64 {
        self.shared.resyncs.load(Ordering::Relaxed)
    }

    /// Change events, from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<CacheEvent<T>> {
        self.shared.events.subscribe()
    }

    /// The cache's revision as a watch channel: wakes on every applied
    /// change or resync.
    pub fn revision_watch(&self) -> watch::Receiver<i64> {
        self.shared.revision.subscribe()
    }

    /// Waits until the cache reflects store revision `rev` (e.g. a commit's
    /// revision: read your own writes). Changes outside the range do not
    /// reach the watch, so after a short wait the cache relists to catch up.
    pub async fn wait_for_revision(&self, rev: i64, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut rx = self.shared.revision.subscribe();
        loop {
            if *rx.borrow_and_update() >= rev {
                return Ok(());
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(Error::DeadlineExceeded {
                    op: "wait_for_revision",
                });
            }
            match tokio::time::timeout(remaining.min(CATCH_UP_AFTER), rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => {
                    return Err(Error::Unavailable {
                        op: "wait_for_revision",
                        source: "the cache stopped".into(),
                    });
                }
                Err(_) => self.shared.relist.notify_one(),
            }
        }
    }
}

/// Opens a watch of `key` with `opts` within the store's deadline, timed
/// and traced as an `etcd.watch` operation (the caches and
/// [`crate::Family`]).
pub(crate) async fn open_watch(
    store: &Store,
    key: &str,
    opts: WatchOptions,
) -> Result<etcd_client::WatchStream> {
    let mut client = store.watcher();
    let observed = Observed::start(EtcdOp::Watch, key);
    match tokio::time::timeout(store.op_timeout(), client.watch(key.to_owned(), Some(opts))).await {
        Ok(Ok(stream)) => {
            observed.ok();
            Ok(stream)
        }
        Ok(Err(source)) => {
            observed.failed(true, "etcd", &source);
            Err(Error::Etcd { op: "watch", source })
        }
        Err(_) => {
            observed.failed(true, "deadline_exceeded", &"no answer to the watch request");
            Err(Error::DeadlineExceeded { op: "watch" })
        }
    }
}

/// Why the watch loop left a watch.
enum Next {
    Relist(ResyncReason),
    Reconnect(String),
}

async fn run<T>(store: Store, shared: Arc<Shared<T>>)
where
    T: prost::Message + Default + Clone + 'static,
{
    let mut backoff = Backoff::default();
    loop {
        let from = shared.read().revision + 1;
        let opts = WatchOptions::new()
            .with_range(shared.end.clone())
            .with_start_revision(from)
            .with_progress_notify();
        let next = match open_watch(&store, &shared.start, opts).await {
            Err(e) => Next::Reconnect(e.to_string()),
            Ok(mut stream) => loop {
                tokio::select! {
                    biased;
                    () = shared.relist.notified() => break Next::Relist(ResyncReason::CatchUp),
                    msg = stream.message() => match msg {
                        Ok(Some(resp)) => {
                            let now = resp.header().map_or(i64::MAX, |h| h.revision());
                            if resp.created() && now < from - 1 {
                                tracing::warn!(
                                    range = %shared.start,
                                    cache_revision = from - 1,
                                    etcd_revision = now,
                                    "etcd's revision is behind the cache's: the cluster went back in time \
                                     (restored from a backup?); relisting instead of resuming"
                                );
                                break Next::Relist(ResyncReason::Restored);
                            }
                            if resp.canceled() {
                                if resp.compact_revision() > 0 {
                                    break Next::Relist(ResyncReason::Compacted);
                                }
                                let reason = resp.cancel_reason();
                                if reason.contains("no leader") || reason.is_empty() {
                                    break Next::Reconnect(format!("watch cancelled: {reason:?}"));
                                }
                                break Next::Relist(ResyncReason::Cancelled);
                            }
                            if !resp.events().is_empty() {
                                apply(&shared, resp.events());
                                backoff.reset();
                            }
                        }
                        Ok(None) => break Next::Reconnect("the watch stream ended".to_owned()),
                        Err(e) => break Next::Reconnect(e.to_string()),
                    },
                }
            },
        };
        match next {
            Next::Reconnect(why) => {
                tracing::warn!(range = %shared.start, revision = from - 1, %why, "watch lost; resuming after back-off");
                tokio::time::sleep(backoff.next_delay()).await;
            }
            Next::Relist(reason) => loop {
                match relist(&store, &shared, Some(reason)).await {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::warn!(range = %shared.start, error = %e, "relist failed; retrying after back-off");
                        tokio::time::sleep(backoff.next_delay()).await;
                    }
                }
            },
        }
    }
}

/// Applies one watch response atomically, then announces it.
fn apply<T>(shared: &Shared<T>, events: &[etcd_client::Event])
where
    T: prost::Message + Default + Clone + 'static,
{
    // Events are copied for subscribers only: most caches have none, and a
    // copy of every value (a whole tile, configuration and all) made and
    // dropped next to the one kept cost CPU and left the heap fragmented
    // (issue 18: the registry's memory with 10,000 tiles).
    let subscribed = shared.events.receiver_count() > 0;
    let mut out = Vec::with_capacity(if subscribed { events.len() } else { 0 });
    let revision = {
        let mut state = shared.write();
        let mut revision = state.revision;
        for ev in events {
            let Some(kv) = ev.kv() else { continue };
            revision = revision.max(kv.mod_revision());
            let key = String::from_utf8_lossy(kv.key()).into_owned();
            if !shared.keeps(&key) {
                continue;
            }
            match ev.event_type() {
                EventType::Put => match decode::<T>(kv) {
                    Ok(v) => {
                        // The copy is kept, not the decoded value: a copy's
                        // strings and lists are exactly their size, where
                        // decoding leaves room to grow (measured: 188
                        // against 163 MiB at 10,000 tiles).
                        state.items.insert(key, Box::new(v.clone()));
                        if subscribed {
                            out.push(CacheEvent::Put(v));
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "skipping an undecodable value");
                        if state.items.remove(&key).is_some() && subscribed {
                            out.push(CacheEvent::Delete {
                                key,
                                revision: kv.mod_revision(),
                            });
                        }
                    }
                },
                EventType::Delete => {
                    state.items.remove(&key);
                    if subscribed {
                        out.push(CacheEvent::Delete {
                            key,
                            revision: kv.mod_revision(),
                        });
                    }
                }
            }
        }
        state.revision = revision;
        revision
    };
    for ev in out {
        // No subscribers is fine.
        let _ = shared.events.send(ev);
    }
    shared.revision.send_modify(|r| *r = (*r).max(revision));
}

/// Replaces the state from a fresh listing and broadcasts the differences.
async fn relist<T>(store: &Store, shared: &Shared<T>, reason: Option<ResyncReason>) -> Result<()>
where
    T: prost::Message + Default + Clone + 'static,
{
    let (kvs, revision): (Vec<KeyValue>, i64) =
        store.list_raw(&shared.start, Some(shared.end.clone())).await?;
    // After a restore the cache's revision must go back with etcd's, or it
    // would resume from a revision the restored cluster has not reached.
    let back_in_time = reason == Some(ResyncReason::Restored);
    let mut fresh = BTreeMap::new();
    for kv in &kvs {
        // Filter on the key before decoding: a range may hold other kinds of
        // values (a roll-out's steps under the roll-out), which are not
        // undecodable, only not ours.
        if !kv.key_str().is_ok_and(|k| shared.keeps(k)) {
            continue;
        }
        match decode::<T>(kv) {
            Ok(v) => {
                fresh.insert(v.key.clone(), Box::new(v.clone()));
            }
            Err(e) => tracing::warn!(error = %e, "skipping an undecodable value"),
        }
    }
    let mut out = Vec::new();
    {
        let mut state = shared.write();
        // The differences go to subscribers only (see `apply`).
        if reason.is_some() && shared.events.receiver_count() > 0 {
            for (key, v) in &fresh {
                if state.items.get(key).is_none_or(|old| old.etag != v.etag) {
                    out.push(CacheEvent::Put((**v).clone()));
                }
            }
            for key in state.items.keys() {
                if !fresh.contains_key(key) {
                    out.push(CacheEvent::Delete {
                        key: key.clone(),
                        revision,
                    });
                }
            }
        }
        state.items = fresh;
        state.revision = if back_in_time {
            revision
        } else {
            state.revision.max(revision)
        };
    }
    if let Some(reason) = reason {
        shared.resyncs.fetch_add(1, Ordering::Relaxed);
        tracing::info!(range = %shared.start, revision, ?reason, "cache resynced");
        out.push(CacheEvent::Resynced { revision, reason });
    }
    for ev in out {
        let _ = shared.events.send(ev);
    }
    // Not `send_replace(max(borrow()))`: the borrow would still hold the
    // channel's lock while sending, a deadlock.
    shared.revision.send_modify(|r| {
        *r = if back_in_time {
            revision
        } else {
            (*r).max(revision)
        }
    });
    Ok(())
}
