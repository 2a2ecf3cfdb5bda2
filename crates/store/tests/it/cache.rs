//! Watch caches converge after an etcd restart and after compaction, and
//! never show a torn state.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use tilewave_proto::common::v1::Event;
use tilewave_store::{Actor, CacheEvent, Change, ResyncReason, Store, WatchCache};
use tilewave_testkit::{EtcdCluster, eventually};

use crate::support::{CONVERGE, Proxy, audit, connect, event};

/// Keys and etags, to compare a cache with etcd.
fn summary(items: &[tilewave_store::Versioned<Event>]) -> BTreeMap<String, (i64, String)> {
    items
        .iter()
        .map(|v| (v.key.clone(), (v.etag, v.value.message.clone())))
        .collect()
}

async fn converged(store: &Store, cache: &WatchCache<Event>, prefix: &str) -> anyhow::Result<()> {
    let truth = store.list::<Event>(prefix).await?;
    let (rev, items) = cache.snapshot();
    anyhow::ensure!(
        summary(&items) == summary(&truth.items),
        "cache at {rev} differs from etcd at {}",
        truth.revision
    );
    Ok(())
}

async fn put(store: &Store, id: &str, msg: &str) -> anyhow::Result<i64> {
    let key = store.keys().event(id);
    Ok(store
        .commit(
            Change::new()
                .put_unchecked(key, &event(id, msg))
                .audit(audit("Put", id)),
            &Actor::new("t"),
        )
        .await?
        .revision)
}

async fn delete(store: &Store, id: &str) -> anyhow::Result<()> {
    let key = store.keys().event(id);
    let current = store.get_required::<Event>(&key).await?;
    store
        .commit(
            Change::new().delete(key, current.etag).audit(audit("Delete", id)),
            &Actor::new("t"),
        )
        .await?;
    Ok(())
}

#[tokio::test]
async fn converges_after_etcd_restart_without_torn_reads() -> anyhow::Result<()> {
    let mut etcd = EtcdCluster::start(1).await?;
    let store = connect(etcd.endpoints()).await?;
    let prefix = store.keys().events();
    for i in 0..5 {
        put(&store, &format!("e{i}"), "before").await?;
    }
    let cache = WatchCache::<Event>::prefix(&store, &prefix).await?;
    assert_eq!(cache.list().len(), 5);

    // Pairs written in one transaction are never seen half-applied.
    let torn = AtomicBool::new(false);
    let stop = AtomicBool::new(false);
    let (a, b) = (store.keys().event("pair-a"), store.keys().event("pair-b"));
    let reader = async {
        while !stop.load(Ordering::SeqCst) {
            let (_, items) = cache.snapshot();
            let find = |k: &str| items.iter().find(|v| v.key == k).map(|v| v.value.message.clone());
            if find(&a) != find(&b) {
                torn.store(true, Ordering::SeqCst);
            }
            tokio::task::yield_now().await;
        }
    };
    let writer = async {
        let result = async {
            let mut last = 0;
            for i in 0..40 {
                let n = i.to_string();
                last = store
                    .commit(
                        Change::new()
                            .put_unchecked(a.clone(), &event("pair-a", &n))
                            .put_unchecked(b.clone(), &event("pair-b", &n))
                            .audit(audit("Pair", &n)),
                        &Actor::new("t"),
                    )
                    .await?
                    .revision;
            }
            anyhow::Ok(last)
        }
        .await;
        stop.store(true, Ordering::SeqCst);
        result
    };
    let (last, ()) = tokio::join!(writer, reader);
    cache.wait_for_revision(last?, CONVERGE).await?;
    assert!(
        !torn.load(Ordering::SeqCst),
        "the cache served half a transaction"
    );

    etcd.kill(0)?;
    // While etcd is down the cache keeps serving its last consistent state.
    assert_eq!(cache.list().len(), 7);
    etcd.restart(0).await?;

    let rev = put(&store, "e5", "after").await?;
    put(&store, "e0", "updated").await?;
    delete(&store, "e1").await?;
    cache.wait_for_revision(rev, CONVERGE).await?;
    eventually("the cache to converge after the restart", CONVERGE, || {
        converged(&store, &cache, &prefix)
    })
    .await?;
    assert_eq!(
        cache.get(&store.keys().event("e0")).map(|v| v.value.message),
        Some("updated".into())
    );
    assert!(cache.get(&store.keys().event("e1")).is_none());

    // A revision outside the range is reached too (by catching up).
    let outside = store
        .commit(
            Change::new()
                .put_unchecked(store.keys().tile("x"), &event("x", "x"))
                .audit(audit("Put", "x")),
            &Actor::new("t"),
        )
        .await?;
    cache.wait_for_revision(outside.revision, CONVERGE).await?;
    assert!(cache.revision() >= outside.revision);
    Ok(())
}

#[tokio::test]
async fn resyncs_after_compaction() -> anyhow::Result<()> {
    let etcd = EtcdCluster::start(1).await?;
    let writer = connect(etcd.endpoints()).await?;
    let proxy = Proxy::start(&etcd.member_endpoint(0)).await?;
    let reader = connect(vec![proxy.endpoint.clone()]).await?;
    let prefix = writer.keys().events();
    for i in 0..4 {
        put(&writer, &format!("c{i}"), "v1").await?;
    }
    let cache = WatchCache::<Event>::prefix(&reader, &prefix).await?;
    let mut events = cache.subscribe();
    assert_eq!(cache.list().len(), 4);

    // Cut the cache off, change things, compact the history it would need.
    proxy.cut();
    put(&writer, "c4", "v1").await?;
    put(&writer, "c0", "v2").await?;
    delete(&writer, "c1").await?;
    let rev = put(&writer, "c2", "v2").await?;
    writer.compact(rev).await?;
    assert_eq!(cache.list().len(), 4, "still the old consistent state");
    proxy.heal();

    eventually("the cache to resync after compaction", CONVERGE, || {
        converged(&writer, &cache, &prefix)
    })
    .await?;
    assert!(cache.resyncs() >= 1);
    let mut saw_delete = false;
    let mut saw_resync = false;
    while let Ok(ev) = events.try_recv() {
        match ev {
            CacheEvent::Delete { key, .. } if key == writer.keys().event("c1") => saw_delete = true,
            CacheEvent::Resynced {
                reason: ResyncReason::Compacted,
                ..
            } => saw_resync = true,
            _ => {}
        }
    }
    assert!(saw_delete, "the deletion missed during the cut is announced");
    assert!(saw_resync, "a resync after compaction is announced");

    // And it keeps following the watch afterwards.
    let rev = put(&writer, "c5", "v1").await?;
    cache.wait_for_revision(rev, CONVERGE).await?;
    assert!(cache.get(&writer.keys().event("c5")).is_some());
    Ok(())
}

/// etcd restored from a backup is behind the cache: the cache must not
/// resume from its own revision (events up to it never come from the
/// restored cluster, and it would keep what the backup lacks) but relist,
/// its revision going back with etcd's.
#[tokio::test]
async fn relists_after_etcd_is_restored_from_a_backup() -> anyhow::Result<()> {
    let mut etcd = EtcdCluster::start(1).await?;
    let store = connect(etcd.endpoints()).await?;
    let prefix = store.keys().events();
    for i in 0..3 {
        put(&store, &format!("b{i}"), "in the backup").await?;
    }
    let cache = WatchCache::<Event>::prefix(&store, &prefix).await?;
    let mut events = cache.subscribe();
    let backup = etcd.dir().join("backup.db");
    etcd.snapshot_save(&backup).await?;
    let backup_revision = store.revision().await?;

    // After the backup: changes the restore loses.
    for i in 0..5 {
        put(&store, &format!("lost{i}"), "after the backup").await?;
    }
    let rev = put(&store, "b0", "changed after the backup").await?;
    cache.wait_for_revision(rev, CONVERGE).await?;
    let before_restore = cache.revision();
    assert!(before_restore > backup_revision);

    etcd.restore_snapshot(&backup).await?;
    let restored = store.revision().await?;
    assert!(
        restored < before_restore,
        "etcd 3.4's restore keeps the backup's revision: {restored} vs the cache's {before_restore}"
    );
    // New writes on the restored cluster, at revisions the cache has seen
    // before (a resuming watch would never show them).
    put(&store, "new", "after the restore").await?;
    put(&store, "b1", "changed after the restore").await?;

    eventually("the cache to match the restored cluster", CONVERGE, || {
        converged(&store, &cache, &prefix)
    })
    .await?;
    assert!(cache.get(&store.keys().event("lost0")).is_none());
    assert_eq!(
        cache.get(&store.keys().event("b0")).map(|v| v.value.message),
        Some("in the backup".into())
    );
    assert!(
        cache.revision() < before_restore,
        "the cache's revision went back with etcd's: {} vs {before_restore}",
        cache.revision()
    );
    let mut saw_restored = false;
    while let Ok(ev) = events.try_recv() {
        if let CacheEvent::Resynced {
            reason: ResyncReason::Restored,
            ..
        } = ev
        {
            saw_restored = true;
        }
    }
    assert!(saw_restored, "the relist after the restore is announced");

    // And it follows the restored cluster's watch from then on.
    let rev = put(&store, "later", "v1").await?;
    cache.wait_for_revision(rev, CONVERGE).await?;
    assert!(cache.get(&store.keys().event("later")).is_some());
    Ok(())
}

/// `with_prefix` answers a range of the cache: the keys under the prefix,
/// in key order, also those written after the cache started, and nothing
/// of a neighbour whose key merely starts the same way.
#[tokio::test]
async fn with_prefix_is_the_range_of_keys_under_a_prefix() -> anyhow::Result<()> {
    let etcd = EtcdCluster::start(1).await?;
    let store = connect(etcd.endpoints()).await?;
    let prefix = store.keys().events();
    for id in ["a/2", "a/1", "ab/1", "b/1"] {
        put(&store, id, "before").await?;
    }
    let cache = WatchCache::<Event>::prefix(&store, &prefix).await?;
    let rev = put(&store, "a/3", "after").await?;
    cache
        .wait_for_revision(rev, std::time::Duration::from_secs(10))
        .await?;
    let keys = |p: &str| -> Vec<String> {
        cache
            .with_prefix(&store.keys().event(p))
            .into_iter()
            .map(|v| v.key)
            .collect()
    };
    let want: Vec<String> = ["a/1", "a/2", "a/3"]
        .iter()
        .map(|id| store.keys().event(id))
        .collect();
    assert_eq!(keys("a/"), want);
    assert_eq!(keys("b/"), vec![store.keys().event("b/1")]);
    assert!(keys("c/").is_empty());
    assert_eq!(cache.with_prefix(&prefix).len(), 5);
    Ok(())
}

/// `inspect` looks at the value under a key as `get` would return it
/// (its etag moves with every write), and finds nothing under a key
/// that is not cached.
#[tokio::test]
async fn inspect_sees_what_get_returns_without_a_copy() -> anyhow::Result<()> {
    let etcd = EtcdCluster::start(1).await?;
    let store = connect(etcd.endpoints()).await?;
    let prefix = store.keys().events();
    put(&store, "x", "first").await?;
    let cache = WatchCache::<Event>::prefix(&store, &prefix).await?;
    let key = store.keys().event("x");
    let look = |v: &tilewave_store::Versioned<Event>| (v.etag, v.value.clone());
    let first = cache.inspect(&key, look).context("cached")?;
    let got = cache.get(&key).context("cached")?;
    assert_eq!(first, (got.etag, got.value));
    let rev = put(&store, "x", "second").await?;
    cache
        .wait_for_revision(rev, std::time::Duration::from_secs(10))
        .await?;
    let second = cache.inspect(&key, look).context("cached")?;
    assert_eq!(second.0, rev);
    assert_ne!(second.1, first.1);
    assert_eq!(cache.inspect(&store.keys().event("y"), look), None);
    Ok(())
}
