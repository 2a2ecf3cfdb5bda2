//! Audit retention: with a virtual clock moved past the retention, old
//! audit records become daily summaries (in the same transaction as their
//! removal, a day split over several transactions merged), recent ones
//! stay, GetHistory returns both (paged together), and later passes change
//! nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tilewave_proto::common::v1::{AuditRecord, AuditSummary, PageRequest};
use tilewave_store::audit::{self, AuditRecordExt};
use tilewave_store::{Actor, Change, VirtualClock};

use crate::*;

const DAY: SignedDuration = SignedDuration::from_hours(24);

fn t0() -> Timestamp {
    // 2026-01-01T01:00:00Z
    Timestamp::from_second(1_767_229_200).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// The audit keys and summaries under the prefix, for "nothing changed".
async fn audit_space(stack: &Stack) -> Result<BTreeMap<String, (Vec<u8>, i64)>> {
    let mut all = stack.dump().await?;
    all.retain(|k, _| k.starts_with(&format!("{PREFIX}audit")));
    Ok(all)
}

async fn history(
    c: &mut RegistryServiceClient<Channel>,
    page_size: i32,
) -> Result<(Vec<AuditSummary>, Vec<AuditRecord>, usize)> {
    let (mut summaries, mut records, mut pages) = (Vec::new(), Vec::new(), 0);
    let mut token = String::new();
    loop {
        let resp = c
            .get_history(GetHistoryRequest {
                id: "riverflow".into(),
                page: Some(PageRequest {
                    page_size,
                    page_token: token.clone(),
                }),
                ..Default::default()
            })
            .await?
            .into_inner();
        pages += 1;
        summaries.extend(resp.summaries);
        records.extend(resp.records);
        if resp.next_page_token.is_empty() {
            return Ok((summaries, records, pages));
        }
        token = resp.next_page_token;
    }
}

/// How many entries one object has in the audit index.
async fn index_entries(store: &tilewave_store::Store, kind: &str, id: &str) -> Result<usize> {
    let k = store.keys();
    Ok(store
        .list_range::<()>(&k.audit_index_of(kind, id), &k.audit_index_end(kind, id))
        .await?
        .items
        .len())
}

#[tokio::test]
async fn old_audit_records_become_daily_summaries_and_recent_ones_stay() -> Result<()> {
    let dir = TestDir::new("registry-retention")?;
    let etcd = EtcdCluster::start(1).await?;
    let store = etcd.store(PREFIX).await?;
    let test = Actor::new("test");
    let clock = VirtualClock::start(&store, t0(), 0.0, &test).await?;
    let spec = ServiceSpec::new("registry-0", bin_path("tilewave-registry")?)
        .with_args([
            "--etcd",
            &etcd.endpoints().join(","),
            "--prefix",
            PREFIX,
            "--audit-retention-days",
            "30",
            "--audit-retention-interval-ms",
            "200",
        ])
        .with_health_service(Some(tilewave_registry::HEALTH_SERVICE));
    let replica = ServiceProcess::start(spec, dir.path()).await?;
    let stack = Stack {
        etcd,
        replicas: vec![replica],
        dir,
    };
    let mut c = stack.client(0).await?;

    // Day 0: the import (the registry's clock); day 2: two edits; day 40:
    // one more (written as another service's records would be, at their
    // own times, so that no write races the registry's view of the clock).
    import(&mut c, RIVERFLOW, "").await?;
    let edit = |item: &str, at: Timestamp| {
        Change::new().audit(
            audit::record("SetGtmItem", "tile", "riverflow", format!("{item} in progress"))
                .revision(1)
                .detail("state", "DRAFT")
                .at(at),
        )
    };
    store.commit(edit("logo", t0() + DAY * 2), &test).await?;
    store
        .commit(edit("blog", t0() + DAY * 2 + SignedDuration::from_mins(1)), &test)
        .await?;
    store.commit(edit("docs", t0() + DAY * 40), &test).await?;
    // 150 records of another object on day 2: more than one transaction
    // (at most 100 operations) holds, so its summary is merged.
    let bulk_at = t0() + DAY * 2 + SignedDuration::from_mins(5);
    let writes = (0..150).map(|i| {
        let store = store.clone();
        let test = test.clone();
        async move {
            let change = Change::new().audit(
                audit::record("Poke", "probe", "bulk", format!("poke {i}"))
                    .at(bulk_at + SignedDuration::from_secs(i)),
            );
            store.commit(change, &test).await
        }
    });
    for r in futures::future::join_all(writes).await {
        r?;
    }
    let (summaries, records, _) = history(&mut c, 100).await?;
    assert!(summaries.is_empty(), "nothing is older than 30 days yet");
    assert_eq!(records.len(), 4, "{records:?}");

    // Day 45: everything before day 15 is folded.
    clock.advance(DAY * 45, &test).await?;
    let before = t0() + DAY * 15;
    let k = store.keys().clone();
    tilewave_testkit::eventually("no audit record older than the retention", WAIT, || async {
        let old = store
            .list_range::<AuditRecord>(&k.audit_prefix(), &k.audit_before(before))
            .await
            .map_err(|e| e.to_string())?;
        if old.items.is_empty() {
            Ok(())
        } else {
            Err(format!("{} old record(s) left", old.items.len()))
        }
    })
    .await?;

    // The tile's two days, counted per action.
    let tile_days = store
        .list::<AuditSummary>(&k.audit_summaries_of("tile", "riverflow"))
        .await?;
    let days: Vec<(i64, Vec<(String, i64)>)> = tile_days
        .items
        .iter()
        .map(|s| {
            let mut actions: Vec<(String, i64)> =
                s.value.actions.iter().map(|(a, n)| (a.clone(), *n)).collect();
            actions.sort();
            (s.value.record_count, actions)
        })
        .collect();
    assert_eq!(
        days,
        vec![
            (1, vec![("ImportPartnerConfig".to_owned(), 1)]),
            (2, vec![("SetGtmItem".to_owned(), 2)]),
        ]
    );
    assert!(
        tile_days.items[0].key.ends_with("/2026-01-01"),
        "{}",
        tile_days.items[0].key
    );
    assert!(
        tile_days.items[1].key.ends_with("/2026-01-03"),
        "{}",
        tile_days.items[1].key
    );
    // The bulk day: 150 records over two transactions, one summary.
    let bulk = store
        .get_required::<AuditSummary>(&k.audit_summary("probe", "bulk", bulk_at))
        .await?
        .value;
    assert_eq!(bulk.record_count, 150);
    assert_eq!(bulk.actors, vec!["test".to_owned()]);
    assert_eq!(bulk.first_at, Some(ts(bulk_at)));
    assert_eq!(bulk.last_at, Some(ts(bulk_at + SignedDuration::from_secs(149))));
    // The folds are audited.
    let folds = store
        .list_range::<AuditRecord>(&k.audit_before(before), &k.audit_end())
        .await?
        .items
        .into_iter()
        .filter(|r| r.value.action == "SummariseAudit")
        .count();
    assert!(folds >= 2, "at least two fold transactions, got {folds}");

    // The folded records' index entries went with them: every entry left
    // points to a record, and every record has its entry.
    assert_eq!(index_entries(&store, "probe", "bulk").await?, 0);
    assert_eq!(index_entries(&store, "tile", "riverflow").await?, 1);
    let entries = store
        .list_range::<()>(&format!("{PREFIX}audit-index/"), &format!("{PREFIX}audit-index0"))
        .await?
        .items
        .len();
    assert_eq!(entries, store.audit_records().await?.len());

    // GetHistory: the two summarised days, then the recent record.
    let (summaries, records, _) = history(&mut c, 100).await?;
    assert_eq!(
        summaries.iter().map(|s| s.record_count).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(
        records.iter().map(|r| r.action.as_str()).collect::<Vec<_>>(),
        vec!["SetGtmItem"]
    );
    assert_eq!(records[0].details.get("state").map(String::as_str), Some("DRAFT"));
    // Paged one entry at a time: the same three entries over three pages.
    let (paged_summaries, paged_records, pages) = history(&mut c, 1).await?;
    assert_eq!((paged_summaries, paged_records, pages), (summaries, records, 3));

    // Later passes change nothing: the audit space is the same a few
    // intervals later (absence cannot be polled for; five passes at least).
    let settled = audit_space(&stack).await?;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        audit_space(&stack).await?,
        settled,
        "a second pass changed nothing"
    );
    Ok(())
}

#[tokio::test]
async fn a_history_written_before_the_audit_index_is_whole_once_a_replica_starts() -> Result<()> {
    let mut stack = Stack::start(1).await?;
    let store = stack.etcd.store(PREFIX).await?;
    let test = Actor::new("test");
    let k = store.keys().clone();
    let mut c0 = stack.client(0).await?;
    import(&mut c0, RIVERFLOW, "").await?;
    for item in ["logo", "blog", "docs"] {
        let record =
            audit::record("SetGtmItem", "tile", "riverflow", format!("{item} in progress")).revision(1);
        store.commit(Change::new().audit(record), &test).await?;
    }
    let (summaries, expected, _) = history(&mut c0, 100).await?;
    assert!(summaries.is_empty());
    assert_eq!(
        expected.iter().map(|r| r.action.as_str()).collect::<Vec<_>>(),
        ["ImportPartnerConfig", "SetGtmItem", "SetGtmItem", "SetGtmItem"]
    );
    assert_eq!(index_entries(&store, "tile", "riverflow").await?, 4);
    assert!(
        store.get::<()>(&k.audit_index_ready()).await?.is_some(),
        "a replica serves once the index is complete"
    );

    // As an earlier version left it: records without index entries, no mark.
    let mut kv = store.kv();
    kv.delete(
        k.audit_index_of("tile", "riverflow"),
        Some(etcd_client::DeleteOptions::new().with_prefix()),
    )
    .await?;
    kv.delete(k.audit_index_ready(), None).await?;
    let (_, without, _) = history(&mut c0, 100).await?;
    assert!(without.is_empty(), "GetHistory reads the index: {without:?}");

    // A replica started now gives them their entries before it serves: the
    // same history again, whole and paged, from either replica.
    let spec = ServiceSpec::new("registry-1", bin_path("tilewave-registry")?)
        .with_args(["--etcd", &stack.etcd.endpoints().join(","), "--prefix", PREFIX])
        .with_health_service(Some(tilewave_registry::HEALTH_SERVICE));
    stack
        .replicas
        .push(ServiceProcess::start(spec, stack.dir.path()).await?);
    assert!(store.get::<()>(&k.audit_index_ready()).await?.is_some());
    assert_eq!(index_entries(&store, "tile", "riverflow").await?, 4);
    let mut c1 = stack.client(1).await?;
    assert_eq!(history(&mut c1, 100).await?, (Vec::new(), expected.clone(), 1));
    assert_eq!(history(&mut c1, 1).await?, (Vec::new(), expected.clone(), 4));
    assert_eq!(history(&mut c0, 100).await?, (Vec::new(), expected.clone(), 1));

    // Filtered by revision: only that revision's records.
    let record = audit::record("SetGtmItem", "tile", "riverflow", "revision two").revision(2);
    store.commit(Change::new().audit(record), &test).await?;
    let of_revision = |revision| GetHistoryRequest {
        id: "riverflow".into(),
        revision,
        ..Default::default()
    };
    let two = c1.get_history(of_revision(2)).await?.into_inner().records;
    assert_eq!(
        two.iter().map(|r| r.summary.as_str()).collect::<Vec<_>>(),
        ["revision two"]
    );
    let one = c1.get_history(of_revision(1)).await?.into_inner().records;
    assert_eq!(one, expected);
    Ok(())
}
