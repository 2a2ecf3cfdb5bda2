//! Registration in etcd: `agents/<region>` holds the agent's `AgentInfo`,
//! attached to a lease that a background task keeps alive (every third of
//! the TTL, on real time).
//!
//! When the lease is lost (etcd says it expired, or no renewal succeeded
//! for a whole TTL, e.g. across an etcd outage) the task grants a new lease
//! and writes the key again, retrying with back-off until it succeeds. The
//! put is unconditional: one agent runs per region, and the newest process
//! is the live one (a put moves the key to the new lease, so the old
//! lease's expiry no longer deletes it). On clean shutdown the lease is
//! revoked, which deletes the key at once; after a crash the key expires a
//! TTL later.

use std::time::Duration;

use etcd_client::PutOptions;
use prost::Message as _;
use tilewave_proto::agent::v1::AgentInfo;
use tilewave_store::retry::Backoff;
use tilewave_store::{Shutdown, Store, Tasks};
use tokio::sync::watch;
use tokio::time::Instant;

/// A running registration: the background task `registration` of the
/// agent's [`Tasks`], which deregisters (revokes the lease, deleting the
/// key) when it is stopped.
#[derive(Debug)]
pub struct Registration {
    /// The current lease while registered, `None` while not.
    lease: watch::Receiver<Option<i64>>,
}

impl Registration {
    /// Starts registering `info` under `key` with leases of `ttl`, as the
    /// task `registration` of `tasks`.
    pub fn start(tasks: &mut Tasks, store: Store, key: String, info: AgentInfo, ttl: Duration) -> Self {
        let (tx, lease) = watch::channel(None);
        tasks.spawn("registration", move |shutdown| {
            run(store, key, info, ttl, tx, shutdown)
        });
        Self { lease }
    }

    /// Completes once the key is written (the first time), or the task ended.
    pub async fn registered(&self) {
        let mut rx = self.lease.clone();
        // An error means the task ended (it was stopped).
        let _ = rx.wait_for(Option::is_some).await;
    }

    /// Whether the key is currently held.
    pub fn is_registered(&self) -> bool {
        self.lease.borrow().is_some()
    }
}

/// Keeps the registration until `shutdown`, then revokes the lease.
async fn run(
    store: Store,
    key: String,
    info: AgentInfo,
    ttl: Duration,
    tx: watch::Sender<Option<i64>>,
    shutdown: Shutdown,
) {
    tokio::select! {
        () = keep_registered(&store, &key, &info, ttl, &tx) => {}
        () = shutdown.requested() => {}
    }
    let lease = *tx.borrow();
    if let Some(id) = lease {
        revoke(&store, id).await;
        tracing::info!(lease_id = id, "deregistered");
    }
}

/// Registers, keeps the lease alive, and registers again when it is lost.
async fn keep_registered(
    store: &Store,
    key: &str,
    info: &AgentInfo,
    ttl: Duration,
    tx: &watch::Sender<Option<i64>>,
) {
    let mut backoff = Backoff::new(Duration::from_millis(100), ttl / 3);
    loop {
        let lease_id = match register(store, key, info, ttl).await {
            Ok(id) => id,
            Err(e) => {
                tracing::warn!(key, error = %e, "cannot register yet; retrying");
                tokio::time::sleep(backoff.next_delay()).await;
                continue;
            }
        };
        backoff.reset();
        let _ = tx.send(Some(lease_id));
        tracing::info!(key, lease_id, ttl_secs = ttl.as_secs(), "registered");
        let why = keep_alive(store, lease_id, ttl).await;
        let _ = tx.send(None);
        tracing::warn!(key, lease_id, %why, "registration lost; registering again");
        // The old lease may still exist (no renewal got through, but etcd
        // kept it): let it go.
        revoke(store, lease_id).await;
    }
}

/// Grants a lease and writes the key on it.
async fn register(store: &Store, key: &str, info: &AgentInfo, ttl: Duration) -> Result<i64, String> {
    let op_timeout = store.config().op_timeout;
    let ttl_secs = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
    let mut client = store.lease();
    let lease = tokio::time::timeout(op_timeout, client.grant(ttl_secs, None))
        .await
        .map_err(|_| "lease grant timed out".to_owned())?
        .map_err(|e| format!("lease grant: {e}"))?
        .id();
    let put = tokio::time::timeout(
        op_timeout,
        store.kv().put(
            key,
            info.encode_to_vec(),
            Some(PutOptions::new().with_lease(lease)),
        ),
    )
    .await;
    match put {
        Ok(Ok(_)) => Ok(lease),
        Ok(Err(e)) => {
            revoke(store, lease).await;
            Err(format!("put {key}: {e}"))
        }
        Err(_) => {
            revoke(store, lease).await;
            Err(format!("put {key} timed out"))
        }
    }
}

/// Renews the lease until it is lost; returns why.
async fn keep_alive(store: &Store, lease_id: i64, ttl: Duration) -> String {
    let interval = ttl / 3;
    let mut last_ok = Instant::now();
    let mut backoff = Backoff::new(Duration::from_millis(100), interval);
    loop {
        if last_ok.elapsed() >= ttl {
            return "no renewal for a whole TTL".to_owned();
        }
        let opened = tokio::time::timeout(interval, async {
            let mut c = store.lease();
            c.keep_alive(lease_id).await
        })
        .await;
        let (mut keeper, mut stream) = match opened {
            Ok(Ok(pair)) => pair,
            Ok(Err(etcd_client::Error::LeaseKeepAliveError(e))) => return format!("lease gone: {e}"),
            Ok(Err(e)) => {
                tracing::debug!(lease_id, error = %e, "keep-alive stream failed; retrying");
                tokio::time::sleep(backoff.next_delay()).await;
                continue;
            }
            Err(_) => continue,
        };
        loop {
            let sent_at = Instant::now();
            if sent_at.duration_since(last_ok) >= ttl {
                return "no renewal for a whole TTL".to_owned();
            }
            let round = tokio::time::timeout(interval, async {
                keeper.keep_alive().await?;
                stream.message().await
            })
            .await;
            match round {
                Ok(Ok(Some(resp))) if resp.ttl() > 0 => {
                    last_ok = sent_at;
                    backoff.reset();
                    tokio::time::sleep_until(sent_at + interval).await;
                }
                Ok(Ok(Some(_))) => return "etcd reports the lease expired".to_owned(),
                Ok(Ok(None)) | Ok(Err(_)) | Err(_) => {
                    tracing::debug!(lease_id, "keep-alive round failed; reopening the stream");
                    tokio::time::sleep(backoff.next_delay()).await;
                    break;
                }
            }
        }
    }
}

/// Best-effort revoke; the lease expires by itself otherwise.
async fn revoke(store: &Store, lease_id: i64) {
    let mut c = store.lease();
    match tokio::time::timeout(store.config().op_timeout, c.revoke(lease_id)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::debug!(lease_id, error = %e, "lease revoke failed; it will expire"),
        Err(_) => tracing::debug!(lease_id, "lease revoke timed out; it will expire"),
    }
}
