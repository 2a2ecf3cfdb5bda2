//! The connection to etcd: configuration, typed reads, and the plumbing the
//! other modules share.
//!
//! A [`Store`] is cheap to clone (it shares one etcd-client channel). Every
//! call carries a deadline ([`StoreConfig::op_timeout`]); reads are
//! linearizable and retried on transient errors (see [`crate::retry`]).
//! Values are protobuf messages; a read returns them as [`Versioned`], with
//! the key's mod revision as the etag that an update must name.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{
    Client, CompactionOptions, ConnectOptions, GetOptions, KeyValue, KvClient, LeaseClient, Txn, TxnOp,
    TxnOpResponse, WatchClient,
};

use crate::error::{Error, Result};
use crate::keys::{DEFAULT_PREFIX, Keys, prefix_end};
use crate::observe::{EtcdOp, observe};
use crate::retry;
use crate::time::{Clock, SystemClock};

/// Default deadline of one store operation, retries included.
pub const DEFAULT_OP_TIMEOUT: Duration = Duration::from_secs(5);
/// Default deadline for establishing a connection to an etcd member.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// HTTP/2 keep-alive ping interval and timeout: a member that stopped
/// answering (killed, paused, partitioned) is noticed within a few seconds,
/// even by a watch that is otherwise idle.
pub const KEEP_ALIVE: Duration = Duration::from_secs(2);
/// Page size of prefix listings.
const LIST_PAGE: i64 = 500;

/// Keys read per transaction by [`Store::get_many`].
pub const GET_MANY_CHUNK: usize = 100;
/// Transactions of [`Store::get_many`] in flight at once.
pub const GET_MANY_AT_ONCE: usize = 4;

/// How to reach etcd.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// etcd client URLs, e.g. `http://127.0.0.1:2379`.
    pub endpoints: Vec<String>,
    /// Key prefix every key lives under (default `/tilewave/`).
    pub prefix: String,
    /// Deadline of one store operation, retries included: an etcd without
    /// quorum gives [`Error::Unavailable`] after at most this long.
    pub op_timeout: Duration,
    /// Deadline for a TCP/HTTP2 connection to a member, and for the first
    /// successful read in [`Store::connect`].
    pub connect_timeout: Duration,
    /// Client TLS (the CA to trust, the certificate to present) for
    /// `https://` endpoints; ignored when the endpoints are `http://`
    /// (etcd-client refuses TLS options on those).
    pub tls: Option<etcd_client::TlsOptions>,
}

impl StoreConfig {
    /// Defaults for everything but the endpoints.
    pub fn new(endpoints: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            prefix: DEFAULT_PREFIX.to_owned(),
            op_timeout: DEFAULT_OP_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            tls: None,
        }
    }

    /// With client TLS for `https://` endpoints (see [`StoreConfig::tls`]).
    pub fn with_tls(mut self, tls: Option<etcd_client::TlsOptions>) -> Self {
        self.tls = tls;
        self
    }

    /// With another key prefix.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// With another operation deadline.
    pub fn with_op_timeout(mut self, timeout: Duration) -> Self {
        self.op_timeout = timeout;
        self
    }
}

/// A protobuf message read from etcd, with the revisions that version it.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    /// The full etcd key.
    pub key: String,
    /// The decoded message.
    pub value: T,
    /// The key's mod revision: name it to update or delete the object.
    pub etag: i64,
    /// The key's create revision (for an owner key: the fencing token).
    pub create_revision: i64,
}

/// The items under a prefix, read at one revision.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing<T> {
    /// In key order.
    pub items: Vec<Versioned<T>>,
    /// The store revision the listing was read at.
    pub revision: i64,
}

/// The handle services use to talk to etcd.
#[derive(Clone)]
pub struct Store {
    /// Shared, and never cloned per call: a `Client` carries its connect
    /// options (the TLS identity among them), which a clone copies; each
    /// call clones only the sub-client it needs ([`Store::kv`] and the
    /// like), a channel handle.
    client: Arc<Client>,
    keys: Keys,
    cfg: Arc<StoreConfig>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("endpoints", &self.cfg.endpoints)
            .field("prefix", &self.keys.prefix())
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connects, and checks within `connect_timeout` that some member answers
    /// a read. Domain time comes from the system clock until
    /// [`Store::with_clock`].
    pub async fn connect(cfg: StoreConfig) -> Result<Self> {
        if cfg.endpoints.is_empty() {
            return Err(Error::invalid("no etcd endpoints"));
        }
        if cfg.op_timeout.is_zero() || cfg.connect_timeout.is_zero() {
            return Err(Error::invalid("timeouts must be positive"));
        }
        let keys = Keys::new(cfg.prefix.clone())?;
        let options = ConnectOptions::new()
            .with_connect_timeout(cfg.connect_timeout)
            .with_keep_alive(KEEP_ALIVE, KEEP_ALIVE)
            .with_keep_alive_while_idle(true)
            // Without a leader a member refuses requests at once (UNAVAILABLE,
            // retried elsewhere) instead of queueing them, and cancels watches.
            .with_require_leader(true);
        let all_https = cfg.endpoints.iter().all(|e| e.starts_with("https://"));
        let options = match &cfg.tls {
            Some(tls) if all_https => options.with_tls(tls.clone()),
            _ => options,
        };
        let client = tokio::time::timeout(
            cfg.connect_timeout,
            Client::connect(&cfg.endpoints, Some(options)),
        )
        .await
        .map_err(|_| Error::DeadlineExceeded { op: "connect" })?
        .map_err(|e| Error::Unavailable {
            op: "connect",
            source: Box::new(e),
        })?;
        let store = Self {
            client: Arc::new(client),
            keys,
            cfg: Arc::new(cfg),
            clock: Arc::new(SystemClock),
        };
        let probe_key = store.keys.clock();
        observe(
            EtcdOp::Get,
            &probe_key,
            retry::idempotent("connect", store.cfg.connect_timeout, || {
                let mut c = store.kv();
                let key = probe_key.clone();
                async move { c.get(key, Some(GetOptions::new().with_count_only())).await }
            }),
        )
        .await?;
        Ok(store)
    }

    /// The same connection, with domain time from `clock` (used for audit
    /// records that name no time).
    pub fn with_clock(&self, clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            ..self.clone()
        }
    }

    /// The key builder for this store's prefix.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The configuration it was connected with.
    pub fn config(&self) -> &StoreConfig {
        &self.cfg
    }

    /// The store's clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The raw etcd client, for what the store does not wrap (tests,
    /// diagnostics). Prefer the typed calls: they carry deadlines.
    pub fn etcd(&self) -> Client {
        Client::clone(&self.client)
    }

    /// The key-value client of the connection (a cheap handle).
    pub fn kv(&self) -> KvClient {
        self.client.kv_client()
    }

    /// The lease client of the connection (a cheap handle).
    pub fn lease(&self) -> LeaseClient {
        self.client.lease_client()
    }

    /// The watch client of the connection (a cheap handle).
    pub fn watcher(&self) -> WatchClient {
        self.client.watch_client()
    }

    pub(crate) fn op_timeout(&self) -> Duration {
        self.cfg.op_timeout
    }

    /// Reads and decodes one key; `None` when absent.
    pub async fn get<T: prost::Message + Default>(&self, key: &str) -> Result<Option<Versioned<T>>> {
        match self.get_raw(key).await? {
            Some(kv) => decode(&kv).map(Some),
            None => Ok(None),
        }
    }

    /// Like [`Store::get`], with [`Error::NotFound`] when absent.
    pub async fn get_required<T: prost::Message + Default>(&self, key: &str) -> Result<Versioned<T>> {
        self.get(key)
            .await?
            .ok_or_else(|| Error::NotFound { key: key.to_owned() })
    }

    pub(crate) async fn get_raw(&self, key: &str) -> Result<Option<KeyValue>> {
        let resp = observe(
            EtcdOp::Get,
            key,
            retry::idempotent("get", self.op_timeout(), || {
                let mut c = self.kv();
                let key = key.to_owned();
                async move { c.get(key, None).await }
            }),
        )
        .await?;
        Ok(resp.kvs().first().cloned())
    }

    /// Reads and decodes every key under `prefix`, in key order, at one
    /// revision (paged; restarted if compaction overtakes the pages).
    pub async fn list<T: prost::Message + Default>(&self, prefix: &str) -> Result<Listing<T>> {
        let (kvs, revision) = self.list_raw(prefix, None).await?;
        let items = kvs.iter().map(decode).collect::<Result<Vec<_>>>()?;
        Ok(Listing { items, revision })
    }

    /// Reads and decodes every key in `[start, end)`, in key order, at one
    /// revision (paged like [`Store::list`]).
    pub async fn list_range<T: prost::Message + Default>(
        &self,
        start: &str,
        end: &str,
    ) -> Result<Listing<T>> {
        let (kvs, revision) = self.list_raw(start, Some(end.as_bytes().to_vec())).await?;
        let items = kvs.iter().map(decode).collect::<Result<Vec<_>>>()?;
        Ok(Listing { items, revision })
    }

    /// The first `limit` keys in `[start, end)`, in key order, in one read
    /// (for work done a bounded batch at a time).
    pub async fn list_first<T: prost::Message + Default>(
        &self,
        start: &str,
        end: &str,
        limit: usize,
    ) -> Result<Listing<T>> {
        let limit = i64::try_from(limit.max(1)).unwrap_or(LIST_PAGE);
        let resp = observe(
            EtcdOp::List,
            start,
            retry::idempotent("list", self.op_timeout(), || {
                let mut c = self.kv();
                let opts = GetOptions::new()
                    .with_range(end.as_bytes().to_vec())
                    .with_limit(limit);
                let start = start.to_owned();
                async move { c.get(start, Some(opts)).await }
            }),
        )
        .await?;
        let revision = resp.header().map(|h| h.revision()).unwrap_or_default();
        let items = resp.kvs().iter().map(decode).collect::<Result<Vec<_>>>()?;
        Ok(Listing { items, revision })
    }

    /// Reads and decodes the keys named, in their order, skipping those
    /// absent: a transaction of reads per [`GET_MANY_CHUNK`] keys (etcd
    /// refuses more than 128 operations a transaction by default), up to
    /// [`GET_MANY_AT_ONCE`] of them in flight, each at its own revision.
    pub async fn get_many<T: prost::Message + Default>(&self, keys: &[String]) -> Result<Vec<Versioned<T>>> {
        use futures::{StreamExt as _, TryStreamExt as _};
        // Owned chunks: a future borrowing the caller's slice per chunk is
        // not `Send` for every lifetime, which a tonic handler needs.
        let chunks: Vec<Vec<Versioned<T>>> =
            futures::stream::iter(keys.chunks(GET_MANY_CHUNK).map(<[String]>::to_vec))
                .map(|chunk| self.get_chunk(chunk))
                .buffered(GET_MANY_AT_ONCE)
                .try_collect()
                .await?;
        Ok(chunks.into_iter().flatten().collect())
    }

    /// One transaction of [`Store::get_many`].
    async fn get_chunk<T: prost::Message + Default>(&self, chunk: Vec<String>) -> Result<Vec<Versioned<T>>> {
        let Some(first) = chunk.first() else {
            return Ok(Vec::new());
        };
        // Observed as a read (a transaction of reads only).
        let resp = observe(
            EtcdOp::Get,
            first,
            retry::idempotent("get", self.op_timeout(), || {
                let mut c = self.kv();
                let reads: Vec<TxnOp> = chunk.iter().map(|k| TxnOp::get(k.as_str(), None)).collect();
                async move { c.txn(Txn::new().and_then(reads)).await }
            }),
        )
        .await?;
        let mut out = Vec::with_capacity(chunk.len());
        for r in resp.op_responses() {
            if let TxnOpResponse::Get(g) = r
                && let Some(kv) = g.kvs().first()
            {
                out.push(decode(kv)?);
            }
        }
        Ok(out)
    }

    /// Every audit record, in key order: by domain time, oldest first
    /// (records of the same instant in no particular order).
    pub async fn audit_records(&self) -> Result<Vec<tilewave_proto::common::v1::AuditRecord>> {
        let listing = self.list(&self.keys().audit_prefix()).await?;
        Ok(listing.items.into_iter().map(|v| v.value).collect())
    }

    /// An object and the objects stored under it (keys starting with
    /// `children`, e.g. a roll-out and its steps), read together at one
    /// revision, so that a transaction touching both is seen whole or not at
    /// all. `children` must start with `key` followed by `/`. `None` when the
    /// object is absent.
    pub async fn get_with_children<P, C>(
        &self,
        key: &str,
        children: &str,
    ) -> Result<Option<(Versioned<P>, Listing<C>)>>
    where
        P: prost::Message + Default,
        C: prost::Message + Default,
    {
        let below = format!("{key}/");
        if !children.starts_with(&below) {
            return Err(Error::invalid(format!("{children:?} is not under {key:?}")));
        }
        // `[key, key/ + 1)` also holds siblings such as `key-2`: keep only
        // the object and its children.
        let (kvs, revision) = self
            .list_raw(key, Some(crate::keys::prefix_end(below.as_bytes())))
            .await?;
        let mut parent = None;
        let mut items = Vec::new();
        for kv in &kvs {
            let k = kv.key();
            if k == key.as_bytes() {
                parent = Some(decode::<P>(kv)?);
            } else if k.starts_with(children.as_bytes()) {
                items.push(decode::<C>(kv)?);
            }
        }
        Ok(parent.map(|p| (p, Listing { items, revision })))
    }

    /// Every key in `[start, end)` (`end` `None`: the prefix range of
    /// `start`), at one revision.
    pub(crate) async fn list_raw(&self, start: &str, end: Option<Vec<u8>>) -> Result<(Vec<KeyValue>, i64)> {
        observe(EtcdOp::List, start, self.list_pages(start, end)).await
    }

    /// The pages of [`Store::list_raw`].
    async fn list_pages(&self, start: &str, end: Option<Vec<u8>>) -> Result<(Vec<KeyValue>, i64)> {
        let end = end.unwrap_or_else(|| prefix_end(start.as_bytes()));
        'restart: for _ in 0..3 {
            let mut out = Vec::new();
            let mut from = start.as_bytes().to_vec();
            let mut revision = 0i64;
            loop {
                let opts = GetOptions::new().with_range(end.clone()).with_limit(LIST_PAGE);
                let opts = if revision > 0 {
                    opts.with_revision(revision)
                } else {
                    opts
                };
                let result = retry::idempotent("list", self.op_timeout(), || {
                    let mut c = self.kv();
                    let (from, opts) = (from.clone(), opts.clone());
                    async move { c.get(from, Some(opts)).await }
                })
                .await;
                let resp = match result {
                    Ok(r) => r,
                    Err(Error::Etcd {
                        source: etcd_client::Error::GRpcStatus(s),
                        ..
                    }) if s.code() == tonic::Code::OutOfRange && revision > 0 => {
                        tracing::debug!(prefix = start, "listing overtaken by compaction; restarting");
                        continue 'restart;
                    }
                    Err(e) => return Err(e),
                };
                if revision == 0 {
                    revision = resp.header().map(|h| h.revision()).unwrap_or_default();
                }
                let more = resp.more();
                out.extend_from_slice(resp.kvs());
                match out.last() {
                    Some(last) if more => {
                        from = last.key().to_vec();
                        from.push(0);
                    }
                    _ => return Ok((out, revision)),
                }
            }
        }
        Err(Error::Unavailable {
            op: "list",
            source: "compaction kept overtaking the listing".into(),
        })
    }

    /// The store's current revision (a linearizable read).
    pub async fn revision(&self) -> Result<i64> {
        let key = self.keys.clock();
        let resp = observe(
            EtcdOp::Get,
            &key,
            retry::idempotent("revision", self.op_timeout(), || {
                let mut c = self.kv();
                let key = key.clone();
                async move { c.get(key, Some(GetOptions::new().with_count_only())).await }
            }),
        )
        .await?;
        Ok(resp.header().map(|h| h.revision()).unwrap_or_default())
    }

    /// Compacts etcd's history up to `revision` (housekeeping; watches
    /// behind it are cancelled and caches resync).
    pub async fn compact(&self, revision: i64) -> Result<()> {
        let compacting = retry::idempotent("compact", self.op_timeout(), || {
            let mut c = self.kv();
            async move {
                match c
                    .compact(revision, Some(CompactionOptions::new().with_physical()))
                    .await
                {
                    Ok(_) => Ok(()),
                    // Already compacted that far: the goal is reached.
                    Err(etcd_client::Error::GRpcStatus(s)) if s.code() == tonic::Code::OutOfRange => Ok(()),
                    Err(e) => Err(e),
                }
            }
        });
        observe(EtcdOp::Compact, self.keys.prefix(), compacting).await
    }
}

/// Decodes a key-value into a [`Versioned`].
pub(crate) fn decode<T: prost::Message + Default>(kv: &KeyValue) -> Result<Versioned<T>> {
    let key = String::from_utf8_lossy(kv.key()).into_owned();
    match T::decode(kv.value()) {
        Ok(value) => Ok(Versioned {
            key,
            value,
            etag: kv.mod_revision(),
            create_revision: kv.create_revision(),
        }),
        Err(source) => Err(Error::Decode { key, source }),
    }
}
