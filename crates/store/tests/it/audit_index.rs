//! The audit index: every audited commit writes its record's entry under
//! the record's object in the same transaction; retention removes entries
//! with their records; the backfill gives records written before the index
//! their entries, once.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tilewave_proto::common::v1::AuditRecord;
use tilewave_store::audit::{self, AuditRecordExt as _};
use tilewave_store::{Actor, Change, Ownership, Store, retention};
use tilewave_testkit::EtcdCluster;

use crate::support::{connect, event};

/// The records one object's index points to, read through the index.
async fn indexed(store: &Store, kind: &str, id: &str) -> anyhow::Result<Vec<AuditRecord>> {
    let k = store.keys();
    let entries = store
        .list_range::<()>(&k.audit_index_of(kind, id), &k.audit_index_end(kind, id))
        .await?;
    let keys: Vec<String> = entries
        .items
        .iter()
        .map(|e| {
            k.audit_of_index_entry(kind, id, &e.key)
                .ok_or_else(|| anyhow::anyhow!("{} is not an entry of {kind}/{id}", e.key))
        })
        .collect::<anyhow::Result<_>>()?;
    let records = store.get_many::<AuditRecord>(&keys).await?;
    anyhow::ensure!(
        records.len() == keys.len(),
        "{} entries point to {} records",
        keys.len(),
        records.len()
    );
    Ok(records.into_iter().map(|r| r.value).collect())
}

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(1_767_229_200 + second).unwrap_or(Timestamp::UNIX_EPOCH)
}

#[tokio::test]
async fn an_audited_commit_indexes_its_record_under_its_object() -> anyhow::Result<()> {
    let etcd = EtcdCluster::start(1).await?;
    let store = connect(etcd.endpoints()).await?;
    let alice = Actor::new("alice");
    // 130 records of one tile (more than one read of get_many), in a
    // different order of time than of writing, and records of other
    // objects between them, one of them an id that extends the tile's.
    for i in (0..130).rev() {
        let record = audit::record("Edit", "tile", "riverflow", format!("edit {i}")).at(at(i));
        store.commit(Change::new().audit(record), &alice).await?;
        if i % 40 == 0 {
            for other in ["riverflow2", "river"] {
                let record = audit::record("Edit", "tile", other, "other").at(at(i));
                store.commit(Change::new().audit(record), &alice).await?;
            }
        }
    }
    store
        .commit(
            Change::new()
                .create(store.keys().tile("x"), &event("x", "v1"))
                .audit(audit::record("Edit", "timer", "ga/riverflow", "a slash").at(at(5))),
            &alice,
        )
        .await?;
    let records = indexed(&store, "tile", "riverflow").await?;
    let summaries: Vec<String> = records.iter().map(|r| r.summary.clone()).collect();
    let expected: Vec<String> = (0..130).map(|i| format!("edit {i}")).collect();
    assert_eq!(summaries, expected, "the tile's records, in time order");
    assert!(records.iter().all(|r| r.actor == "alice"));
    assert_eq!(indexed(&store, "tile", "river").await?.len(), 4);
    assert_eq!(indexed(&store, "timer", "ga/riverflow").await?.len(), 1);
    assert!(indexed(&store, "timer", "ga").await?.is_empty());
    // A span of time: the entries of records before at(10).
    let k = store.keys();
    let span = store
        .list_range::<()>(
            &k.audit_index_of("tile", "riverflow"),
            &k.audit_index_before("tile", "riverflow", at(10)),
        )
        .await?;
    assert_eq!(span.items.len(), 10);
    // A refused change writes no entry.
    let refused = store
        .commit(
            Change::new()
                .create(store.keys().tile("x"), &event("x", "again"))
                .audit(audit::record("Edit", "tile", "refused", "no")),
            &alice,
        )
        .await;
    assert!(refused.is_err());
    assert!(indexed(&store, "tile", "refused").await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn the_backfill_indexes_older_records_once_and_retention_removes_entries_with_their_records()
-> anyhow::Result<()> {
    let etcd = EtcdCluster::start(1).await?;
    let store = connect(etcd.endpoints()).await?;
    let test = Actor::new("test");
    let owner = Ownership::acquire(&store, "audit-retention", "test", Duration::from_secs(10)).await?;
    let token = owner.token();
    // 250 records of one object (more than one transaction of entries),
    // then their entries removed: records written before the index.
    for i in 0..250 {
        let record = audit::record("Edit", "tile", "old", format!("edit {i}")).at(at(i));
        store.commit(Change::new().audit(record), &test).await?;
    }
    let k = store.keys().clone();
    let mut kv = store.kv();
    kv.delete(
        k.audit_index_of("tile", "old"),
        Some(etcd_client::DeleteOptions::new().with_prefix()),
    )
    .await?;
    assert!(indexed(&store, "tile", "old").await?.is_empty());
    assert!(store.get::<()>(&k.audit_index_ready()).await?.is_none());

    // The backfill, by two replicas at once: every record gets its entry
    // (whoever writes it), and the index is marked once.
    let (a, b) = tokio::join!(
        retention::backfill_index(&store, &test),
        retention::backfill_index(&store, &test)
    );
    let (a, b) = (a?, b?);
    assert!(
        a + b >= 250 && a <= 250 && b <= 250,
        "{a} and {b} entries written"
    );
    assert_eq!(indexed(&store, "tile", "old").await?.len(), 250);
    assert!(store.get::<()>(&k.audit_index_ready()).await?.is_some());
    let marked: Vec<AuditRecord> = indexed(&store, "audit", "index").await?;
    assert_eq!(marked.len(), 1, "the mark is audited once (and indexed itself)");
    assert_eq!(marked[0].action, "IndexAudit");
    // Once marked, nothing more.
    assert_eq!(retention::backfill_index(&store, &test).await?, 0);

    // Retention 100 s after the 250th record: the records before at(150)
    // go, their entries with them; the rest keep theirs.
    let clock = tilewave_store::VirtualClock::start(&store, at(250), 0.0, &test).await?;
    let clock_store = store.with_clock(clock);
    let done = retention::pass(&clock_store, &test, SignedDuration::from_secs(100), &token).await?;
    assert_eq!(done.folded, 150);
    let left = indexed(&store, "tile", "old").await?;
    assert_eq!(left.len(), 100);
    assert_eq!(left.first().map(|r| r.summary.as_str()), Some("edit 150"));
    // No entry points to a record gone: every entry of the index resolves.
    let all = store
        .list_range::<()>(
            &format!("{}audit-index/", k.prefix()),
            &format!("{}audit-index0", k.prefix()),
        )
        .await?;
    let records = store.audit_records().await?;
    assert_eq!(all.items.len(), records.len(), "one entry per record");
    Ok(())
}
