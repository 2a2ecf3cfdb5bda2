//! The fencing epoch: what keeps agent fencing tokens growing across a
//! restore from a backup.
//!
//! Fencing tokens are etcd revisions (the owner key's create revision). etcd
//! 3.4's `snapshot restore` cannot raise the revision, so a cluster restored
//! from a backup hands out revisions agents have already seen, and they
//! would refuse every new owner. The `epoch` key (a decimal number; absent
//! is 0) is read in the transaction that takes ownership and goes above the
//! revision in the token agents get ([`crate::FencingToken::agent_token`]).
//! The restore procedure bumps it once ([`Store::bump_epoch`], `tilewave
//! admin bump-epoch`) before the services start again (deploy/RESTORE.md).

use etcd_client::KeyValue;

use crate::actor::Actor;
use crate::change::{Change, MAX_EPOCH};
use crate::error::{Error, Result};
use crate::store::Store;

/// How many times [`Store::bump_epoch`] re-reads after losing a race with
/// another bump.
const BUMP_ATTEMPTS: usize = 5;

/// The epoch stored in `kv` (the `epoch` key as read; `None`: absent, 0).
/// Anything but a decimal number from 0 to [`MAX_EPOCH`] is refused, naming
/// the key: a token built on a guess could go backwards.
pub(crate) fn parse(key: &str, kv: Option<&KeyValue>) -> Result<i64> {
    let Some(kv) = kv else { return Ok(0) };
    std::str::from_utf8(kv.value())
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .filter(|e| (0..=MAX_EPOCH).contains(e))
        .ok_or_else(|| {
            Error::invalid(format!(
                "the fencing epoch at {key:?} must be a decimal number from 0 to {MAX_EPOCH} \
                 (`tilewave admin bump-epoch` writes it)"
            ))
        })
}

impl Store {
    /// The current fencing epoch (0 when none is stored).
    pub async fn epoch(&self) -> Result<i64> {
        let key = self.keys().epoch();
        parse(&key, self.get_raw(&key).await?.as_ref())
    }

    /// Raises the fencing epoch by one, in one audited transaction guarded
    /// on the value read (a concurrent bump makes it read again), and
    /// returns the old and new epoch. Run it after restoring etcd from a
    /// backup and before starting the services: owners that take their work
    /// afterwards send agents tokens newer than any sent before the restore.
    /// Owners holding their work while it runs keep their old epoch (agents
    /// refuse them once a newer owner has called).
    pub async fn bump_epoch(&self, actor: &Actor) -> Result<(i64, i64)> {
        let key = self.keys().epoch();
        let mut last = None;
        for _ in 0..BUMP_ATTEMPTS {
            let kv = self.get_raw(&key).await?;
            let old = parse(&key, kv.as_ref())?;
            if old >= MAX_EPOCH {
                return Err(Error::invalid(format!(
                    "the fencing epoch is already at its largest value, {MAX_EPOCH}"
                )));
            }
            let new = old + 1;
            let value = new.to_string().into_bytes();
            let change = match &kv {
                Some(kv) => Change::new().update_bytes(key.clone(), value, kv.mod_revision()),
                None => Change::new().create_bytes(key.clone(), value),
            }
            .audit(crate::audit::record(
                "BumpEpoch",
                "epoch",
                "epoch",
                format!("fencing epoch {old} -> {new}"),
            ));
            match self.commit(change, actor).await {
                Ok(_) => {
                    tracing::warn!(old, new, "fencing epoch bumped");
                    return Ok((old, new));
                }
                Err(e @ (Error::Conflict { .. } | Error::AlreadyExists { .. })) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Conflict { key }))
    }
}
