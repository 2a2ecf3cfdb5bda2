//! One state change = one etcd transaction, with its audit record inside.
//!
//! A [`Change`] collects guarded mutations (`create`: the key must be absent;
//! `update`/`delete`: the key's mod revision must still be the etag the
//! caller read), unguarded ones, extra guards (`expect`, `fence`) and the
//! audit record; [`Store::commit`] turns it into a single transaction, so the
//! audit log can neither miss nor invent a change.
//!
//! **Audit keys** are `audit/<domain time in zero-padded unix nanoseconds>-
//! <64 random bits in hex>`, written create-if-absent: ordered by domain time
//! (which never goes backwards), unique without a shared counter (no hot
//! key, no extra round trip), and known before the commit.
//!
//! **Retries**: a transaction whose answer was lost (member died, timeout)
//! may or may not have been applied. Because the audit key is unique and
//! guarded create-if-absent, it doubles as an idempotency marker: a change
//! with an audit record is retried on transient errors, and if a retry fails
//! its compares *because the audit key already exists*, the earlier attempt
//! committed and the commit reports success. A change without an audit
//! record has no marker: it is retried only when the request provably was
//! not applied (connection refused, no leader), else tried once.
//!
//! **Failures** are identified from the transaction's else branch, which
//! reads every guarded key: fenced first, then an existing key (create), then
//! a moved etag (update, delete, expect). Nothing is changed on failure.

use std::collections::{BTreeMap, BTreeSet};

use etcd_client::{Compare, CompareOp, KeyValue, Txn, TxnOp, TxnOpResponse};
use tilewave_proto::common::v1::{AuditRecord, Timer};

use crate::actor::Actor;
use crate::error::{Error, Result};
use crate::keys::Keys;
use crate::observe::{EtcdOp, observe};
use crate::retry::{self, Attempt};
use crate::store::Store;
use crate::time::to_proto_timestamp;

/// Proof of ownership: the owner key and its create revision. Every write
/// the owner makes compares it, so a replica that lost the work cannot write.
/// Agents get [`FencingToken::agent_token`], which puts the fencing epoch
/// above the revision.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FencingToken {
    /// The owner key (`owners/<work>`).
    pub owner_key: String,
    /// The owner key's create revision.
    pub revision: i64,
    /// The fencing epoch (the `epoch` key) read in the transaction that
    /// created the owner key. A restore from a backup takes etcd's
    /// revisions back; bumping the epoch afterwards keeps the tokens agents
    /// see growing.
    pub epoch: i64,
}

/// How far [`FencingToken::agent_token`] shifts the epoch: revisions up to
/// 2^40 - 1 (a trillion writes) fit below it.
pub const EPOCH_SHIFT: u32 = 40;
/// The largest revision an agent token can carry; larger ones are clamped
/// to it (tokens then stop growing within the epoch, they never shrink).
pub const MAX_TOKEN_REVISION: i64 = (1 << EPOCH_SHIFT) - 1;
/// The largest epoch: the one that still leaves an agent token positive.
/// [`Store::bump_epoch`] refuses to go beyond it.
pub const MAX_EPOCH: i64 = (1 << (63 - EPOCH_SHIFT)) - 1;

impl FencingToken {
    /// The token sent to agents (`fencing_token` of ApplyTile, RemoveTile,
    /// InstallCredential): `epoch << 40 | revision`. Within an epoch it
    /// orders owners as the revision does; a later epoch beats every token of
    /// an earlier one, so after a restore (revisions back to the backup's)
    /// and an epoch bump the new owners' tokens are newer than any an agent
    /// saw before. Epoch 0 gives the revision itself. Out-of-range parts are
    /// clamped (never a panic, never a negative token).
    pub fn agent_token(&self) -> i64 {
        let epoch = self.epoch.clamp(0, MAX_EPOCH);
        let revision = self.revision.clamp(0, MAX_TOKEN_REVISION);
        (epoch << EPOCH_SHIFT) | revision
    }
}

/// What a successful commit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    /// The etcd revision of the transaction: the new etag of every key it wrote.
    pub revision: i64,
    /// The audit record's key, when the change had one.
    pub audit_key: Option<String>,
}

#[derive(Debug, Clone)]
enum Op {
    Create { key: String, value: Vec<u8> },
    Update { key: String, value: Vec<u8>, etag: i64 },
    Delete { key: String, etag: i64 },
    Put { key: String, value: Vec<u8> },
    DeleteUnchecked { key: String },
    Expect { key: String, etag: i64 },
    ExpectAbsent { key: String },
}

impl Op {
    fn key(&self) -> &str {
        match self {
            Op::Create { key, .. }
            | Op::Update { key, .. }
            | Op::Delete { key, .. }
            | Op::Put { key, .. }
            | Op::DeleteUnchecked { key }
            | Op::Expect { key, .. }
            | Op::ExpectAbsent { key } => key,
        }
    }

    fn writes(&self) -> bool {
        match self {
            Op::Create { .. }
            | Op::Update { .. }
            | Op::Delete { .. }
            | Op::Put { .. }
            | Op::DeleteUnchecked { .. } => true,
            Op::Expect { .. } | Op::ExpectAbsent { .. } => false,
        }
    }
}

/// A state change, committed atomically by [`Store::commit`].
#[derive(Debug, Clone, Default)]
pub struct Change {
    ops: Vec<Op>,
    audit: Option<AuditRecord>,
    fence: Option<FencingToken>,
}

impl Change {
    /// An empty change.
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates `key`; fails with [`Error::AlreadyExists`] if it exists.
    pub fn create(mut self, key: impl Into<String>, msg: &impl prost::Message) -> Self {
        self.ops.push(Op::Create {
            key: key.into(),
            value: msg.encode_to_vec(),
        });
        self
    }

    /// Replaces `key` if its mod revision is still `etag`; else
    /// [`Error::Conflict`].
    pub fn update(mut self, key: impl Into<String>, msg: &impl prost::Message, etag: i64) -> Self {
        self.ops.push(Op::Update {
            key: key.into(),
            value: msg.encode_to_vec(),
            etag,
        });
        self
    }

    /// Deletes `key` if its mod revision is still `etag`; else
    /// [`Error::Conflict`].
    pub fn delete(mut self, key: impl Into<String>, etag: i64) -> Self {
        self.ops.push(Op::Delete {
            key: key.into(),
            etag,
        });
        self
    }

    /// Releases the ownership of `token` in this transaction: deletes its
    /// owner key if it is still that ownership's (compared on the token's
    /// revision; else [`Error::Conflict`]). For work whose last write ends
    /// it; tell the owner loop with [`crate::owner_loop::Owned::released`]
    /// once committed.
    pub fn release(self, token: &FencingToken) -> Self {
        self.delete(token.owner_key.clone(), token.revision)
    }

    /// [`Change::create`] of a raw value (the `epoch` key's decimal text).
    pub(crate) fn create_bytes(mut self, key: impl Into<String>, value: Vec<u8>) -> Self {
        self.ops.push(Op::Create {
            key: key.into(),
            value,
        });
        self
    }

    /// [`Change::update`] of a raw value (the `epoch` key's decimal text).
    pub(crate) fn update_bytes(mut self, key: impl Into<String>, value: Vec<u8>, etag: i64) -> Self {
        self.ops.push(Op::Update {
            key: key.into(),
            value,
            etag,
        });
        self
    }

    /// Writes `key` whatever it holds (records whose key is unique by
    /// construction, or that only their fenced owner writes).
    pub fn put_unchecked(mut self, key: impl Into<String>, msg: &impl prost::Message) -> Self {
        self.ops.push(Op::Put {
            key: key.into(),
            value: msg.encode_to_vec(),
        });
        self
    }

    /// Deletes `key` if present, whatever it holds.
    pub fn delete_unchecked(mut self, key: impl Into<String>) -> Self {
        self.ops.push(Op::DeleteUnchecked { key: key.into() });
        self
    }

    /// Guards on a key the change does not write: its mod revision must still
    /// be `etag` (e.g. the freeze flag as read); else [`Error::Conflict`].
    pub fn expect(mut self, key: impl Into<String>, etag: i64) -> Self {
        self.ops.push(Op::Expect {
            key: key.into(),
            etag,
        });
        self
    }

    /// Cancels a scheduled timer, if it is still the version read.
    pub fn cancel_timer(self, timer: &crate::store::Versioned<Timer>) -> Self {
        let (key, etag) = (timer.key.clone(), timer.etag);
        self.delete(key, etag)
    }

    /// Guards on a key being absent; else [`Error::AlreadyExists`].
    pub fn expect_absent(mut self, key: impl Into<String>) -> Self {
        self.ops.push(Op::ExpectAbsent { key: key.into() });
        self
    }

    /// Schedules a durable timer (create-if-absent at
    /// `timers/<kind>/<due>/<id>`). The timer needs a kind
    /// ([`crate::keys::check_timer_kind`]), an id and a due time; without an
    /// origin it gets the current trace context's ([`crate::trace::current`]).
    pub fn schedule(self, keys: &Keys, timer: &Timer) -> Result<Self> {
        let key = keys.timer_of(timer)?;
        if timer.origin.is_none() {
            // The request scheduling the timer is its origin: whoever fires
            // it later links back to that request.
            let mut timer = timer.clone();
            timer.origin = crate::trace::current();
            return Ok(self.create(key, &timer));
        }
        Ok(self.create(key, timer))
    }

    /// The audit record of this change. Its `actor` is set from the
    /// committing [`Actor`]; a missing `at` is the store clock's now.
    pub fn audit(mut self, record: AuditRecord) -> Self {
        self.audit = Some(record);
        self
    }

    /// Whether an audit record is attached.
    pub fn has_audit(&self) -> bool {
        self.audit.is_some()
    }

    /// Commits only while `token` still owns its work; else [`Error::Fenced`].
    pub fn fence(mut self, token: &FencingToken) -> Self {
        self.fence = Some(token.clone());
        self
    }

    /// Adds every operation of `other` (its audit record and fence too, when
    /// this change has none).
    pub fn merge(mut self, other: Change) -> Self {
        self.ops.extend(other.ops);
        if self.audit.is_none() {
            self.audit = other.audit;
        }
        if self.fence.is_none() {
            self.fence = other.fence;
        }
        self
    }

    /// Whether the change has no operations and no audit record.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.audit.is_none()
    }
}

/// A change turned into a transaction.
struct Plan {
    txn_compares: Vec<Compare>,
    success: Vec<TxnOp>,
    /// Keys read in the else branch, in order.
    probes: Vec<String>,
    ops: Vec<Op>,
    fence: Option<FencingToken>,
    audit_key: Option<String>,
}

impl Store {
    /// Commits `change` as one transaction on behalf of `actor`.
    ///
    /// Errors: [`Error::AlreadyExists`], [`Error::Conflict`] or
    /// [`Error::Fenced`] when a guard failed (nothing changed);
    /// [`Error::Unavailable`]/[`Error::DeadlineExceeded`] when etcd could not
    /// answer within the deadline. For a change *with* an audit record the
    /// latter means the change was not applied, or its outcome is unknown
    /// only if etcd lost quorum mid-commit: the audit key, created in the
    /// same transaction, then tells (both exist or neither).
    pub async fn commit(&self, change: Change, actor: &Actor) -> Result<CommitInfo> {
        let plan = self.plan(change, actor)?;
        let retryable = plan.audit_key.is_some();
        let txn = Txn::new()
            .when(plan.txn_compares.clone())
            .and_then(plan.success.clone())
            .or_else(
                plan.probes
                    .iter()
                    .map(|k| TxnOp::get(k.clone(), None))
                    .collect::<Vec<_>>(),
            );
        let deadline = self.op_timeout();
        // The span names the first key the change touches (else its audit
        // key): enough to find the object, never a value.
        let key = plan
            .ops
            .first()
            .map(Op::key)
            .or(plan.audit_key.as_deref())
            .unwrap_or_default();
        if !retryable {
            return observe(EtcdOp::Txn, key, self.commit_once(&plan, txn)).await;
        }
        let committing = retry::with_retries("commit", deadline, |attempt| {
            let mut c = self.kv();
            let txn = txn.clone();
            let plan = &plan;
            async move {
                match c.txn(txn).await {
                    Ok(resp) => Attempt::Done(outcome(plan, &resp, attempt > 1)),
                    Err(e) => retry::classify("commit", e),
                }
            }
        });
        observe(EtcdOp::Txn, key, committing).await
    }

    /// Commits a change without an idempotency marker: retried only when the
    /// request provably never reached a member able to apply it (connection
    /// refused, no leader); any other failure is final.
    async fn commit_once(&self, plan: &Plan, txn: Txn) -> Result<CommitInfo> {
        let end = tokio::time::Instant::now() + self.op_timeout();
        let mut backoff = retry::Backoff::default();
        loop {
            let remaining = end.saturating_duration_since(tokio::time::Instant::now());
            let mut c = self.kv();
            match tokio::time::timeout(remaining, c.txn(txn.clone())).await {
                Err(_) => return Err(Error::DeadlineExceeded { op: "commit" }),
                Ok(Ok(resp)) => return outcome(plan, &resp, false),
                Ok(Err(e)) if never_sent(&e) => {
                    let remaining = end.saturating_duration_since(tokio::time::Instant::now());
                    if remaining.is_zero() {
                        return Err(Error::Unavailable {
                            op: "commit",
                            source: Box::new(e),
                        });
                    }
                    tracing::debug!(error = %e, "commit not sent; retrying");
                    tokio::time::sleep(backoff.next_delay().min(remaining)).await;
                }
                Ok(Err(e)) if crate::error::is_transient(&e) => {
                    return Err(Error::Unavailable {
                        op: "commit",
                        source: Box::new(e),
                    });
                }
                Ok(Err(e)) => {
                    return Err(Error::Etcd {
                        op: "commit",
                        source: e,
                    });
                }
            }
        }
    }

    fn plan(&self, change: Change, actor: &Actor) -> Result<Plan> {
        let Change { ops, audit, fence } = change;
        if ops.is_empty() && audit.is_none() {
            return Err(Error::invalid("empty change"));
        }
        let keys = self.keys();
        let mut written = BTreeSet::new();
        for op in &ops {
            if !keys.contains(op.key()) {
                return Err(Error::invalid(format!(
                    "key {:?} is outside {:?}",
                    op.key(),
                    keys.prefix()
                )));
            }
            if op.writes() && !written.insert(op.key().to_owned()) {
                return Err(Error::invalid(format!(
                    "key {:?} is written twice in one change",
                    op.key()
                )));
            }
        }
        let mut compares = Vec::new();
        let mut success = Vec::new();
        let mut probes = BTreeSet::new();
        if let Some(token) = &fence {
            compares.push(Compare::create_revision(
                token.owner_key.clone(),
                CompareOp::Equal,
                token.revision,
            ));
            probes.insert(token.owner_key.clone());
        }
        for op in &ops {
            match op {
                Op::Create { key, value } => {
                    compares.push(Compare::create_revision(key.clone(), CompareOp::Equal, 0));
                    success.push(TxnOp::put(key.clone(), value.clone(), None));
                    probes.insert(key.clone());
                }
                Op::Update { key, value, etag } => {
                    compares.push(Compare::mod_revision(key.clone(), CompareOp::Equal, *etag));
                    success.push(TxnOp::put(key.clone(), value.clone(), None));
                    probes.insert(key.clone());
                }
                Op::Delete { key, etag } => {
                    compares.push(Compare::mod_revision(key.clone(), CompareOp::Equal, *etag));
                    success.push(TxnOp::delete(key.clone(), None));
                    probes.insert(key.clone());
                }
                Op::Put { key, value } => success.push(TxnOp::put(key.clone(), value.clone(), None)),
                Op::DeleteUnchecked { key } => success.push(TxnOp::delete(key.clone(), None)),
                Op::Expect { key, etag } => {
                    compares.push(Compare::mod_revision(key.clone(), CompareOp::Equal, *etag));
                    probes.insert(key.clone());
                }
                Op::ExpectAbsent { key } => {
                    compares.push(Compare::create_revision(key.clone(), CompareOp::Equal, 0));
                    probes.insert(key.clone());
                }
            }
        }
        let mut audit_key = None;
        if let Some(mut record) = audit {
            record.actor = actor.as_str().to_owned();
            let at = match &record.at {
                Some(at) => crate::time::from_proto_timestamp(at)?,
                None => {
                    let now = self.clock().now();
                    record.at = Some(to_proto_timestamp(now));
                    now
                }
            };
            if record.trace_id.is_empty()
                && let Some(origin) = crate::trace::current()
                && let Some(id) = crate::trace::trace_id(&origin)
            {
                record.trace_id = id.to_owned();
            }
            let key = keys.audit(at, rand::random())?;
            if written.contains(&key) {
                return Err(Error::invalid("the change writes its own audit key"));
            }
            compares.push(Compare::create_revision(key.clone(), CompareOp::Equal, 0));
            // The record's entry in its object's index, in the same
            // transaction ([`Keys::audit_index_of`]): empty, the key is the
            // pointer.
            if let Some(entry) = keys.audit_index_entry(&record.object_kind, &record.object_id, &key) {
                success.push(TxnOp::put(entry, Vec::new(), None));
            }
            success.push(TxnOp::put(
                key.clone(),
                prost::Message::encode_to_vec(&record),
                None,
            ));
            probes.insert(key.clone());
            audit_key = Some(key);
        }
        Ok(Plan {
            txn_compares: compares,
            success,
            probes: probes.into_iter().collect(),
            ops,
            fence,
            audit_key,
        })
    }
}

/// Whether a failed request provably was not applied: it never reached a
/// member (connection refused) or was refused before being proposed (no
/// leader).
fn never_sent(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::GRpcStatus(s) if s.code() == tonic::Code::Unavailable => {
            let m = s.message().to_ascii_lowercase();
            m.contains("connect error") || m.contains("connection refused") || m.contains("no leader")
        }
        _ => false,
    }
}

/// Reads a transaction's answer: success, or which guard failed.
fn outcome(plan: &Plan, resp: &etcd_client::TxnResponse, retried: bool) -> Result<CommitInfo> {
    let revision = resp.header().map(|h| h.revision()).unwrap_or_default();
    if resp.succeeded() {
        return Ok(CommitInfo {
            revision,
            audit_key: plan.audit_key.clone(),
        });
    }
    let mut seen: BTreeMap<&str, Option<KeyValue>> = BTreeMap::new();
    for (key, r) in plan.probes.iter().zip(resp.op_responses()) {
        let kv = match r {
            TxnOpResponse::Get(g) => g.kvs().first().cloned(),
            TxnOpResponse::Put(_) | TxnOpResponse::Delete(_) | TxnOpResponse::Txn(_) => None,
        };
        seen.insert(key.as_str(), kv);
    }
    let current = |key: &str| seen.get(key).and_then(|kv| kv.as_ref());
    if let Some(audit_key) = &plan.audit_key
        && let Some(kv) = current(audit_key)
    {
        if retried {
            // An earlier attempt whose answer was lost did commit.
            tracing::debug!(audit_key, "commit retry found its audit record: already applied");
            return Ok(CommitInfo {
                revision: kv.mod_revision(),
                audit_key: Some(audit_key.clone()),
            });
        }
        return Err(Error::Conflict {
            key: audit_key.clone(),
        });
    }
    if let Some(token) = &plan.fence
        && current(&token.owner_key).map(KeyValue::create_revision) != Some(token.revision)
    {
        return Err(Error::Fenced {
            owner_key: token.owner_key.clone(),
            token: token.revision,
        });
    }
    for op in &plan.ops {
        match op {
            Op::Create { key, .. } | Op::ExpectAbsent { key } => {
                if current(key).is_some() {
                    return Err(Error::AlreadyExists { key: key.clone() });
                }
            }
            Op::Update { key, etag, .. } | Op::Delete { key, etag } | Op::Expect { key, etag } => {
                if current(key).map(KeyValue::mod_revision) != Some(*etag) {
                    return Err(Error::Conflict { key: key.clone() });
                }
            }
            Op::Put { .. } | Op::DeleteUnchecked { .. } => {}
        }
    }
    // A guard failed but the else branch shows none failing: the state moved
    // in between (impossible within one transaction); report a conflict.
    Err(Error::Conflict {
        key: plan.probes.first().cloned().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(epoch: i64, revision: i64) -> FencingToken {
        FencingToken {
            owner_key: "/tilewave/owners/w".to_owned(),
            revision,
            epoch,
        }
    }

    #[test]
    fn agent_tokens_order_by_epoch_then_revision() {
        assert_eq!(token(0, 42).agent_token(), 42, "epoch 0 is the revision itself");
        assert_eq!(token(1, 0).agent_token(), 1 << 40);
        assert!(token(1, 5).agent_token() > token(0, 1_000_000).agent_token());
        assert!(token(2, 7).agent_token() > token(2, 6).agent_token());
        assert!(token(3, 1).agent_token() > token(2, MAX_TOKEN_REVISION).agent_token());
    }

    #[test]
    fn agent_tokens_clamp_and_stay_positive() {
        assert_eq!(token(MAX_EPOCH, MAX_TOKEN_REVISION).agent_token(), i64::MAX);
        assert_eq!(token(i64::MAX, i64::MAX).agent_token(), i64::MAX);
        assert_eq!(token(-3, -5).agent_token(), 0);
        assert_eq!(
            token(1, MAX_TOKEN_REVISION + 10).agent_token(),
            token(1, MAX_TOKEN_REVISION).agent_token()
        );
    }
}
