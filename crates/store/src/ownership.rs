//! Ownership of long-running work, with fencing.
//!
//! One replica owns a piece of work (a roll-out, a rotation, the timer loop)
//! by creating `owners/<work>` (an `Owner` message) attached to an etcd
//! lease, create-if-absent. The key's create revision is the
//! [`FencingToken`] (with the fencing epoch, read in the same transaction,
//! for the tokens agents get): every write the owner makes compares it
//! ([`crate::Change::fence`]), so a replica that lost its lease (paused,
//! partitioned, too slow) cannot write, whatever it believes; etcd refuses
//! it with [`Error::Fenced`].
//!
//! A background task keeps the lease alive (every third of the TTL, on real
//! time). It reports the ownership lost ([`Ownership::lost`]) when etcd says
//! the lease is gone, or when no renewal succeeded for a whole TTL: from then
//! on another replica may own the work. Release (explicit, or best effort on
//! drop) revokes the lease, which deletes the owner key at once.

use std::time::Duration;

use etcd_client::{Compare, CompareOp, KeyValue, PutOptions, Txn, TxnOp, TxnOpResponse};
use tilewave_proto::common::v1::Owner;
use tilewave_telemetry::Metrics;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::change::FencingToken;
use crate::error::{Error, Result};
use crate::keys::check_segment;
use crate::observe::{EtcdOp, LEASE_RENEW, Observed, observe};
use crate::retry::{self, Attempt, Backoff};
use crate::store::{Store, decode};
use crate::time::{Clock, SystemClock, to_proto_timestamp};

/// The shortest lease TTL accepted.
pub const MIN_TTL: Duration = Duration::from_secs(2);

/// Ownership of one piece of work. Dropping it releases the work (best
/// effort); prefer [`Ownership::release`].
#[derive(Debug)]
pub struct Ownership {
    store: Store,
    token: FencingToken,
    lease_id: i64,
    lost: watch::Receiver<bool>,
    /// The keeper of this ownership's own lease; `None` on a
    /// [`ReplicaLease`] (which keeps it).
    keeper: Option<tokio::task::JoinHandle<()>>,
    released: bool,
}

/// Where a claim's lease comes from.
#[derive(Clone, Copy)]
enum LeaseFrom<'a> {
    /// A lease of its own, granted for the claim (released by revoking it).
    Own(Duration),
    /// The replica's shared lease (released by deleting the owner key).
    Replica(&'a ReplicaLease),
}

impl Ownership {
    /// Takes `work` for `holder` if nobody owns it; `None` if someone does.
    pub async fn try_acquire(store: &Store, work: &str, holder: &str, ttl: Duration) -> Result<Option<Self>> {
        Self::try_acquire_with(
            store,
            work,
            Owner {
                holder: holder.to_owned(),
                ..Default::default()
            },
            ttl,
        )
        .await
    }

    /// Like [`Ownership::try_acquire`], with the whole `Owner` record (its
    /// `since` is set to now).
    pub async fn try_acquire_with(
        store: &Store,
        work: &str,
        owner: Owner,
        ttl: Duration,
    ) -> Result<Option<Self>> {
        Self::claim(store, work, owner, LeaseFrom::Own(ttl)).await
    }

    /// Like [`Ownership::try_acquire`], on the replica's shared lease: one
    /// transaction, no lease granted (unless the shared one must be first)
    /// and none to revoke when the work is owned elsewhere.
    pub async fn try_acquire_on(
        store: &Store,
        work: &str,
        holder: &str,
        lease: &ReplicaLease,
    ) -> Result<Option<Self>> {
        let owner = Owner {
            holder: holder.to_owned(),
            ..Default::default()
        };
        Self::claim(store, work, owner, LeaseFrom::Replica(lease)).await
    }

    async fn claim(store: &Store, work: &str, mut owner: Owner, from: LeaseFrom<'_>) -> Result<Option<Self>> {
        check_segment("work name", work)?;
        let key = store.keys().owner(work);
        // The lease, and who keeps it alive: this ownership (its TTL) or
        // the replica (its loss signal).
        enum Kept {
            Here(Duration),
            ByReplica(watch::Receiver<bool>),
        }
        let (lease_id, kept) = match from {
            LeaseFrom::Own(ttl) => (grant(store, &key, ttl).await?, Kept::Here(ttl)),
            LeaseFrom::Replica(lease) => {
                let (id, lost) = lease.current().await?;
                (id, Kept::ByReplica(lost))
            }
        };
        // Infrastructure time: when the lease began, for diagnostics.
        owner.since = Some(to_proto_timestamp(SystemClock.now()));
        let value = prost::Message::encode_to_vec(&owner);
        // The fencing epoch is read in the same transaction: the token's
        // revision and epoch belong together (crate::epoch).
        let epoch_key = store.keys().epoch();
        let txn = Txn::new()
            .when(vec![Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
            .and_then(vec![
                TxnOp::put(key.clone(), value, Some(PutOptions::new().with_lease(lease_id))),
                TxnOp::get(epoch_key.clone(), None),
            ])
            .or_else(vec![
                TxnOp::get(key.clone(), None),
                TxnOp::get(epoch_key.clone(), None),
            ]);
        // Retrying is safe: if a lost answer hid our success, the key now
        // carries our lease, which the else branch shows. (On a shared
        // lease, another claim of this replica's for the same work would
        // look like ours too; a replica runs one owner loop per work.)
        let claiming = retry::with_retries("acquire", store.op_timeout(), |_| {
            let mut c = store.kv();
            let txn = txn.clone();
            async move {
                match c.txn(txn).await {
                    Ok(resp) => {
                        let gets: Vec<Option<KeyValue>> = resp
                            .op_responses()
                            .into_iter()
                            .filter_map(|r| match r {
                                TxnOpResponse::Get(g) => Some(g.kvs().first().cloned()),
                                TxnOpResponse::Put(_) | TxnOpResponse::Delete(_) | TxnOpResponse::Txn(_) => {
                                    None
                                }
                            })
                            .collect();
                        let epoch = gets.last().cloned().flatten();
                        if resp.succeeded() {
                            let rev = resp.header().map(|h| h.revision()).unwrap_or_default();
                            return Attempt::Done(Ok(Some((rev, epoch))));
                        }
                        let ours = gets
                            .first()
                            .and_then(Option::as_ref)
                            .filter(|kv| kv.lease() == lease_id)
                            .map(KeyValue::create_revision);
                        Attempt::Done(Ok(ours.map(|rev| (rev, epoch))))
                    }
                    Err(e) => retry::classify("acquire", e),
                }
            }
        });
        let result = observe(EtcdOp::Txn, &key, claiming).await.and_then(|won| {
            won.map(|(rev, epoch)| Ok((rev, crate::epoch::parse(&epoch_key, epoch.as_ref())?)))
                .transpose()
        });
        let won = match result {
            Ok(won) => won,
            Err(e) => {
                if matches!(kept, Kept::Here(_)) {
                    revoke(store, &key, lease_id).await;
                }
                return Err(e);
            }
        };
        let Some((revision, epoch)) = won else {
            if matches!(kept, Kept::Here(_)) {
                revoke(store, &key, lease_id).await;
            }
            return Ok(None);
        };
        let (keeper, lost) = match kept {
            Kept::ByReplica(lost) => (None, lost),
            Kept::Here(ttl) => {
                let (tx, lost) = watch::channel(false);
                let keeper = tokio::spawn(keep_alive(
                    store.clone(),
                    key.clone(),
                    work.to_owned(),
                    lease_id,
                    ttl,
                    tx,
                ));
                (Some(keeper), lost)
            }
        };
        tracing::info!(owner_key = %key, token = revision, epoch, lease_id, shared = keeper.is_none(), "ownership acquired");
        Ok(Some(Self {
            store: store.clone(),
            token: FencingToken {
                owner_key: key,
                revision,
                epoch,
            },
            lease_id,
            lost,
            keeper,
            released: false,
        }))
    }

    /// Takes `work` for `holder`, waiting for the current owner (if any) to
    /// release it or lose its lease. Cancel by dropping the future.
    pub async fn acquire(store: &Store, work: &str, holder: &str, ttl: Duration) -> Result<Self> {
        let key = store.keys().owner(work);
        let mut backoff = Backoff::new(Duration::from_millis(100), ttl / 3);
        loop {
            match Self::try_acquire(store, work, holder, ttl).await {
                Ok(Some(o)) => return Ok(o),
                Ok(None) => {
                    backoff.reset();
                    wait_for_delete(store, &key, ttl).await;
                }
                Err(e) if e.is_unavailable() => {
                    tracing::warn!(work, error = %e, "cannot acquire yet; retrying");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The fencing token: pass it to [`crate::Change::fence`] on every write.
    pub fn token(&self) -> FencingToken {
        self.token.clone()
    }

    /// The lease holding the owner key.
    pub fn lease_id(&self) -> i64 {
        self.lease_id
    }

    /// Whether the ownership is known lost (writes would be fenced).
    pub fn is_lost(&self) -> bool {
        *self.lost.borrow()
    }

    /// Completes when the ownership is lost: the lease expired or could not
    /// be renewed for a whole TTL. Stop the work then.
    pub async fn lost(&self) {
        let mut rx = self.lost.clone();
        // An error means the keeper is gone, which only happens once lost.
        let _ = rx.wait_for(|lost| *lost).await;
    }

    /// A channel that turns `true` when the ownership is lost.
    pub fn lost_signal(&self) -> watch::Receiver<bool> {
        self.lost.clone()
    }

    /// Drops the ownership without releasing it: its owner key is already
    /// gone (deleted by the work's own last write). On a lease of its own
    /// the lease is still revoked (on drop), which deletes nothing more.
    pub(crate) fn forget(mut self) {
        if self.keeper.is_none() {
            self.released = true;
        }
    }

    /// Gives the work up: revokes the lease, deleting the owner key (on a
    /// [`ReplicaLease`]: deletes the owner key if it is still this
    /// ownership's, and the shared lease lives on).
    pub async fn release(mut self) -> Result<()> {
        self.released = true;
        let Some(keeper) = self.keeper.take() else {
            return delete_owner_key(&self.store, &self.token).await;
        };
        keeper.abort();
        let id = self.lease_id;
        let revoking = retry::idempotent("lease revoke", self.store.op_timeout(), || {
            let mut c = self.store.lease();
            async move {
                match c.revoke(id).await {
                    Ok(_) => Ok(()),
                    // Already expired: released all the same.
                    Err(etcd_client::Error::GRpcStatus(s)) if s.code() == tonic::Code::NotFound => Ok(()),
                    Err(e) => Err(e),
                }
            }
        });
        observe(EtcdOp::LeaseRevoke, &self.token.owner_key, revoking).await
    }
}

impl Drop for Ownership {
    fn drop(&mut self) {
        let keeper = self.keeper.take();
        if let Some(k) = &keeper {
            k.abort();
        }
        if self.released {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let store = self.store.clone();
            if keeper.is_some() {
                let id = self.lease_id;
                let key = self.token.owner_key.clone();
                rt.spawn(async move { revoke(&store, &key, id).await });
            } else {
                let token = self.token.clone();
                rt.spawn(async move {
                    if let Err(e) = delete_owner_key(&store, &token).await {
                        tracing::debug!(owner_key = %token.owner_key, error = %e, "owner key not deleted; it goes with the replica's lease");
                    }
                });
            }
        }
    }
}

/// Deletes the owner key of `token` if it is still that ownership's (its
/// create revision is the token's): releasing work held on a shared lease.
async fn delete_owner_key(store: &Store, token: &FencingToken) -> Result<()> {
    let key = token.owner_key.clone();
    let txn = Txn::new()
        .when(vec![Compare::create_revision(
            key.clone(),
            CompareOp::Equal,
            token.revision,
        )])
        .and_then(vec![TxnOp::delete(key.clone(), None)]);
    let deleting = retry::idempotent("release", store.op_timeout(), || {
        let mut c = store.kv();
        let txn = txn.clone();
        async move { c.txn(txn).await.map(|_| ()) }
    });
    observe(EtcdOp::Txn, &key, deleting).await
}

/// Grants a lease of `ttl` (for the owner key `key`, named in its span).
async fn grant(store: &Store, key: &str, ttl: Duration) -> Result<i64> {
    if ttl < MIN_TTL {
        return Err(Error::invalid(format!("lease TTL must be at least {MIN_TTL:?}")));
    }
    let ttl_secs = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
    let granting = retry::idempotent("lease grant", store.op_timeout(), || {
        let mut c = store.lease();
        async move { c.grant(ttl_secs, None).await }
    });
    Ok(observe(EtcdOp::LeaseGrant, key, granting).await?.id())
}

/// One lease for all the work a replica owns (roll-outs: a thousand at
/// once), kept alive by one task: a claim is one transaction, and the
/// renewals do not grow with the work owned (one lease per roll-out renewed
/// 1,500 times a second at a thousand roll-outs and the 2 s TTL).
///
/// Losing it loses every ownership on it at once, as a dead replica would
/// (each [`Ownership::lost`] fires); the next claim grants a new one.
/// Dropping the last handle revokes it, deleting every owner key still on
/// it.
#[derive(Debug, Clone)]
pub struct ReplicaLease {
    inner: std::sync::Arc<LeaseInner>,
}

#[derive(Debug)]
struct LeaseInner {
    store: Store,
    /// The replica's name (in spans, logs and the lease-loss metric).
    name: String,
    ttl: Duration,
    held: tokio::sync::Mutex<Option<Held>>,
}

#[derive(Debug)]
struct Held {
    id: i64,
    lost: watch::Receiver<bool>,
    keeper: tokio::task::JoinHandle<()>,
}

impl ReplicaLease {
    /// The lease of replica `name`, with `ttl` (granted at the first claim).
    pub fn new(store: &Store, name: impl Into<String>, ttl: Duration) -> Result<Self> {
        if ttl < MIN_TTL {
            return Err(Error::invalid(format!("lease TTL must be at least {MIN_TTL:?}")));
        }
        Ok(Self {
            inner: std::sync::Arc::new(LeaseInner {
                store: store.clone(),
                name: name.into(),
                ttl,
                held: tokio::sync::Mutex::new(None),
            }),
        })
    }

    /// The lease's TTL.
    pub fn ttl(&self) -> Duration {
        self.inner.ttl
    }

    /// The lease's id now, if one is held and not lost (for tests and
    /// diagnostics).
    pub async fn id(&self) -> Option<i64> {
        let held = self.inner.held.lock().await;
        held.as_ref().filter(|h| !*h.lost.borrow()).map(|h| h.id)
    }

    /// The live lease and its loss signal: the held one, or a new grant
    /// when there is none or it was lost.
    async fn current(&self) -> Result<(i64, watch::Receiver<bool>)> {
        let mut held = self.inner.held.lock().await;
        if let Some(h) = held.as_ref()
            && !*h.lost.borrow()
        {
            return Ok((h.id, h.lost.clone()));
        }
        if let Some(old) = held.take() {
            old.keeper.abort();
        }
        let inner = &self.inner;
        let label = format!("lease of {}", inner.name);
        let id = grant(&inner.store, &label, inner.ttl).await?;
        let (tx, lost) = watch::channel(false);
        let keeper = tokio::spawn(keep_alive(
            inner.store.clone(),
            label,
            format!("replica-{}", inner.name),
            id,
            inner.ttl,
            tx,
        ));
        tracing::info!(replica = %inner.name, lease_id = id, ttl = ?inner.ttl, "replica lease granted");
        *held = Some(Held {
            id,
            lost: lost.clone(),
            keeper,
        });
        Ok((id, lost))
    }
}

impl Drop for LeaseInner {
    fn drop(&mut self) {
        if let Some(h) = self.held.get_mut().take() {
            h.keeper.abort();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let store = self.store.clone();
                let label = format!("lease of {}", self.name);
                rt.spawn(async move { revoke(&store, &label, h.id).await });
            }
        }
    }
}

/// Best-effort revoke; the lease expires by itself otherwise.
async fn revoke(store: &Store, key: &str, lease_id: i64) {
    let observed = Observed::start(EtcdOp::LeaseRevoke, key);
    let mut c = store.lease();
    match tokio::time::timeout(store.op_timeout(), c.revoke(lease_id)).await {
        Ok(Ok(_)) => observed.ok(),
        Ok(Err(e)) => {
            tracing::debug!(lease_id, error = %e, "lease revoke failed; it will expire");
            observed.failed(true, "etcd", &e);
        }
        Err(_) => {
            tracing::debug!(lease_id, "lease revoke timed out; it will expire");
            observed.failed(true, "deadline_exceeded", &"lease revoke timed out");
        }
    }
}

/// Waits (at most `limit`) for the owner key to be deleted; returns at once
/// when it is absent (or cannot be read).
pub(crate) async fn wait_for_delete(store: &Store, key: &str, limit: Duration) {
    let wait = async {
        let current = match store.get_raw(key).await {
            Ok(Some(kv)) => kv,
            Ok(None) | Err(_) => return,
        };
        let opts = etcd_client::WatchOptions::new().with_start_revision(current.mod_revision() + 1);
        let mut c = store.watcher();
        let observed = Observed::start(EtcdOp::Watch, key);
        let mut stream = match c.watch(key, Some(opts)).await {
            Ok(stream) => {
                observed.ok();
                stream
            }
            Err(e) => {
                observed.failed(true, "etcd", &e);
                return;
            }
        };
        while let Ok(Some(resp)) = stream.message().await {
            if resp.canceled()
                || resp
                    .events()
                    .iter()
                    .any(|e| e.event_type() == etcd_client::EventType::Delete)
            {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(limit, wait).await;
}

/// Renews the lease every third of the TTL until it is lost.
async fn keep_alive(
    store: Store,
    key: String,
    work: String,
    lease_id: i64,
    ttl: Duration,
    lost: watch::Sender<bool>,
) {
    let interval = ttl / 3;
    let mut last_ok = Instant::now();
    let mut backoff = Backoff::new(Duration::from_millis(100), interval);
    let why = 'outer: loop {
        // Open a keep-alive stream (a new one after any failure).
        let observed = Observed::start(EtcdOp::LeaseKeepAlive, &key);
        let opened = tokio::time::timeout(interval, async {
            let mut c = store.lease();
            c.keep_alive(lease_id).await
        })
        .await;
        match &opened {
            Ok(Ok(_)) => observed.ok(),
            Ok(Err(e)) => observed.failed(true, "etcd", e),
            Err(_) => observed.failed(true, "deadline_exceeded", &"no answer to the keep-alive request"),
        }
        let (mut keeper, mut stream) = match opened {
            Ok(Ok(pair)) => pair,
            Ok(Err(etcd_client::Error::LeaseKeepAliveError(e))) => break format!("lease gone: {e}"),
            Ok(Err(e)) => {
                if last_ok.elapsed() >= ttl {
                    break format!("no renewal for a whole TTL; last error: {e}");
                }
                tracing::debug!(lease_id, error = %e, "keep-alive stream failed; retrying");
                tokio::time::sleep(backoff.next_delay()).await;
                continue;
            }
            Err(_) => {
                if last_ok.elapsed() >= ttl {
                    break "no renewal for a whole TTL".to_owned();
                }
                continue;
            }
        };
        loop {
            let sent_at = Instant::now();
            if sent_at.duration_since(last_ok) >= ttl {
                break 'outer "no renewal for a whole TTL".to_owned();
            }
            let round = tokio::time::timeout(interval, async {
                keeper.keep_alive().await?;
                stream.message().await
            })
            .await;
            let renewed = matches!(&round, Ok(Ok(Some(_))));
            Metrics::global().record_etcd_op(LEASE_RENEW, sent_at.elapsed(), renewed);
            match round {
                Ok(Ok(Some(resp))) if resp.ttl() > 0 => {
                    // The lease runs at least a TTL from when the renewal was sent.
                    last_ok = sent_at;
                    backoff.reset();
                    tokio::time::sleep_until(sent_at + interval).await;
                }
                Ok(Ok(Some(_))) => break 'outer "etcd reports the lease expired".to_owned(),
                Ok(Ok(None)) => {
                    tracing::debug!(lease_id, "keep-alive stream ended; reopening");
                    continue 'outer;
                }
                Ok(Err(e)) => {
                    tracing::debug!(lease_id, error = %e, "keep-alive failed; reopening");
                    tokio::time::sleep(backoff.next_delay()).await;
                    continue 'outer;
                }
                Err(_) => {
                    tracing::debug!(lease_id, "keep-alive got no answer; reopening");
                    continue 'outer;
                }
            }
        }
    };
    tracing::warn!(owner_key = %key, lease_id, %why, "ownership lost");
    Metrics::global().lease_lost(&work);
    let _ = lost.send(true);
    // Keep the sender alive so `lost()` observes `true` rather than closure.
    std::future::pending::<()>().await;
}

/// Decodes the current owner of `work`, if any (for diagnostics).
pub async fn current_owner(store: &Store, work: &str) -> Result<Option<crate::store::Versioned<Owner>>> {
    match store.get_raw(&store.keys().owner(work)).await? {
        Some(kv) => decode(&kv).map(Some),
        None => Ok(None),
    }
}
