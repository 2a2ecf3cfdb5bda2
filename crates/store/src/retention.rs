//! Audit retention: audit records older than a retention period are folded
//! into daily summaries per object ([`crate::audit_summary`]) and removed.
//!
//! One replica does it (`owners/audit-retention`, [`crate::OwnerLoop`]);
//! the registry runs it (docs/design.md, "Housekeeping"). A pass reads at
//! most [`PASS_RECORDS`] of the oldest records older than `now - keep`
//! (domain time), cuts them into transactions of at most [`MAX_TXN_OPS`]
//! operations (etcd refuses more than 128 by default) and commits each one
//! fenced: the summaries (created, or merged into the stored ones under
//! their etag), the deletion of the records they fold (each under its
//! etag) and an audit record of the fold. A pass that dies midway left
//! whole transactions behind; the next pass goes on from the records still
//! there. A pass that read a full batch is followed at once by the next;
//! otherwise the loop waits for its interval.
//!
//! [`backfill_index`] gives the records written before the store wrote
//! index entries theirs, once (the registry runs it as it starts).

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tilewave_proto::common::v1::{AuditRecord, AuditSummary};

use crate::actor::Actor;
use crate::audit_summary::{Batch, batches, merge, time_of};
use crate::change::{Change, FencingToken};
use crate::error::{Error, Result};
use crate::keys::work;
use crate::owner_loop::{Owned, OwnerLoop};
use crate::shutdown::Shutdown;
use crate::store::{Store, Versioned};

/// The most operations one transaction of a pass holds: record and index
/// entry deletions plus summary writes. The pass's own audit record and its
/// index entry add two; etcd's default `--max-txn-ops` is 128.
pub const MAX_TXN_OPS: usize = 100;

/// The most records one pass reads (and folds).
pub const PASS_RECORDS: usize = 1000;

/// How audit retention runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditRetention {
    /// Records older than this (domain time) are folded.
    pub keep: SignedDuration,
    /// The wait between passes that found nothing more to do (real time).
    pub interval: Duration,
}

/// What one pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PassOutcome {
    /// Records folded and removed.
    pub folded: usize,
    /// Summary writes (created or merged).
    pub summaries: usize,
    /// Transactions committed.
    pub transactions: usize,
    /// Whether the pass read a full batch (more may be waiting).
    pub full: bool,
}

/// Runs audit retention whenever this replica owns it, until `shutdown`.
pub async fn run(
    store: Store,
    holder: String,
    ttl: Duration,
    actor: Actor,
    retention: AuditRetention,
    shutdown: Shutdown,
) {
    let owner = OwnerLoop::new(&store, work::AUDIT_RETENTION, holder, ttl);
    owner
        .run(&shutdown, |owned| {
            let (store, actor) = (store.clone(), actor.clone());
            async move { Box::pin(work_loop(store, actor, retention, owned)).await }
        })
        .await;
}

async fn work_loop(store: Store, actor: Actor, retention: AuditRetention, owned: Owned) -> Result<()> {
    loop {
        let more = match pass(&store, &actor, retention.keep, &owned.token()).await {
            Ok(done) => {
                if done.folded > 0 {
                    tracing::info!(
                        folded = done.folded,
                        summaries = done.summaries,
                        transactions = done.transactions,
                        "audit records older than the retention folded into summaries"
                    );
                }
                done.full
            }
            Err(e @ Error::Fenced { .. }) => return Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "audit retention pass failed; trying again");
                false
            }
        };
        if more {
            continue;
        }
        tokio::select! {
            () = owned.stopping() => return Ok(()),
            () = tokio::time::sleep(retention.interval) => {}
        }
    }
}

/// The domain time in an audit key (`audit/<nanos>-<random>`).
fn key_time(store: &Store, key: &str) -> Option<Timestamp> {
    let rest = key.strip_prefix(&store.keys().audit_prefix())?;
    let nanos: i128 = rest.split('-').next()?.parse().ok()?;
    Timestamp::from_nanosecond(nanos).ok()
}

/// One pass: folds up to [`PASS_RECORDS`] of the records older than
/// `keep` before the store clock's now, a fenced transaction at a time.
/// A transaction that a concurrent change beat (a record or summary moved)
/// ends the pass early without error: the next pass reads afresh.
pub async fn pass(
    store: &Store,
    actor: &Actor,
    keep: SignedDuration,
    token: &FencingToken,
) -> Result<PassOutcome> {
    let Ok(before) = store.clock().now().checked_sub(keep) else {
        return Ok(PassOutcome::default());
    };
    let keys = store.keys();
    let listing = store
        .list_first::<AuditRecord>(&keys.audit_prefix(), &keys.audit_before(before), PASS_RECORDS)
        .await?;
    let records = listing.items;
    let run: Vec<(Timestamp, &AuditRecord)> = records
        .iter()
        .map(|r| {
            (
                time_of(&r.value, key_time(store, &r.key).unwrap_or(before)),
                &r.value,
            )
        })
        .collect();
    let mut done = PassOutcome {
        full: records.len() >= PASS_RECORDS,
        ..PassOutcome::default()
    };
    for batch in batches(&run, MAX_TXN_OPS) {
        let change = batch_change(store, &records, &batch, before).await?.fence(token);
        match store.commit(change, actor).await {
            Ok(_) => {
                done.folded += batch.records.len();
                done.summaries += batch.summaries.len();
                done.transactions += 1;
            }
            Err(Error::Conflict { .. } | Error::AlreadyExists { .. } | Error::NotFound { .. }) => {
                tracing::debug!("audit retention raced another change; the next pass goes on");
                done.full = false;
                return Ok(done);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// One batch's transaction (without the fence): its summaries merged into
/// the stored ones, its records deleted, and its audit record.
async fn batch_change(
    store: &Store,
    records: &[Versioned<AuditRecord>],
    batch: &Batch,
    before: Timestamp,
) -> Result<Change> {
    let keys = store.keys();
    let mut change = Change::new();
    let mut first_day = None;
    for (bucket, partial) in &batch.summaries {
        first_day = first_day.min(Some(bucket.day)).or(Some(bucket.day));
        let key = keys.audit_summary(&bucket.kind, &bucket.id, bucket.day);
        change = match store.get::<AuditSummary>(&key).await? {
            Some(stored) => {
                let etag = stored.etag;
                change.update(key, &merge(stored.value, partial), etag)
            }
            None => change.create(key, partial),
        };
    }
    for &i in &batch.records {
        if let Some(r) = records.get(i) {
            change = change.delete(r.key.clone(), r.etag);
            if let Some(entry) = keys.audit_index_entry(&r.value.object_kind, &r.value.object_id, &r.key) {
                change = change.delete_unchecked(entry);
            }
        }
    }
    let day = first_day.map_or_else(String::new, |d| {
        d.to_zoned(jiff::tz::TimeZone::UTC).date().to_string()
    });
    Ok(change.audit(crate::audit::record(
        "SummariseAudit",
        "audit",
        "retention",
        format!(
            "folded {} audit record(s) older than {before} into {} daily summaries (from {day})",
            batch.records.len(),
            batch.summaries.len()
        ),
    )))
}

/// Gives every audit record written before the store wrote index entries
/// its entry ([`crate::keys::Keys::audit_index_of`]), then marks the index
/// complete (`audit-index-ready`, with an audit record). Nothing to do once
/// the mark exists. Records are read a page of [`PASS_RECORDS`] at a time;
/// each transaction writes the entries of [`MAX_TXN_OPS`]` / 2` records,
/// each under the record's etag, so that a record that retention folds
/// meanwhile gets no entry (the page is read again). Needs no ownership:
/// the writes are idempotent, so replicas starting together, or a backfill
/// cut short and started again, only repeat them. Returns how many entries
/// it wrote.
pub async fn backfill_index(store: &Store, actor: &Actor) -> Result<usize> {
    let keys = store.keys();
    let ready = keys.audit_index_ready();
    if store.get::<()>(&ready).await?.is_some() {
        return Ok(0);
    }
    let end = keys.audit_end();
    let mut start = keys.audit_prefix();
    let mut indexed = 0;
    'pages: loop {
        let page = store
            .list_first::<AuditRecord>(&start, &end, PASS_RECORDS)
            .await?
            .items;
        for chunk in page.chunks(MAX_TXN_OPS / 2) {
            let change = chunk.iter().fold(Change::new(), |change, r| {
                match keys.audit_index_entry(&r.value.object_kind, &r.value.object_id, &r.key) {
                    Some(entry) => change.expect(r.key.clone(), r.etag).put_unchecked(entry, &()),
                    None => change,
                }
            });
            if change.is_empty() {
                continue;
            }
            match store.commit(change, actor).await {
                Ok(_) => indexed += chunk.len(),
                Err(Error::Conflict { .. }) => {
                    // A record folded since the page was read: read the
                    // rest of the page again, without it.
                    if let Some(first) = chunk.first() {
                        start.clone_from(&first.key);
                    }
                    continue 'pages;
                }
                Err(e) => return Err(e),
            }
        }
        match page.last() {
            Some(last) if page.len() >= PASS_RECORDS => start = format!("{}\0", last.key),
            _ => break,
        }
    }
    let mark = Change::new().create(ready, &()).audit(crate::audit::record(
        "IndexAudit",
        "audit",
        "index",
        format!("audit index complete: {indexed} record(s) written before it indexed"),
    ));
    match store.commit(mark, actor).await {
        Ok(_) | Err(Error::AlreadyExists { .. }) => Ok(indexed),
        Err(e) => Err(e),
    }
}
