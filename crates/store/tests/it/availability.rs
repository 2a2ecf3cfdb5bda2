//! Three members: one killed, writes go on; two killed, a write fails with
//! UNAVAILABLE within the deadline and nothing is half-written.

use std::time::Duration;

use tilewave_proto::common::v1::Event;
use tilewave_store::{Actor, Change, Error};
use tilewave_testkit::{EtcdCluster, eventually};

use crate::support::{CONVERGE, audit, audits_for, connect, event};

#[tokio::test]
async fn writes_survive_one_dead_member_and_fail_cleanly_without_quorum() -> anyhow::Result<()> {
    let mut etcd = EtcdCluster::start(3).await?;
    let store = connect(etcd.endpoints()).await?;
    let op_timeout = store.config().op_timeout;
    let actor = Actor::new("t");
    let write = |id: String| {
        let store = store.clone();
        let actor = actor.clone();
        async move {
            let change = Change::new()
                .create(store.keys().tile(&id), &event(&id, "x"))
                .audit(audit("CreateTile", &id));
            store.commit(change, &actor).await
        }
    };
    for i in 0..5 {
        write(format!("before-{i}")).await?;
    }

    // One member killed: every write still succeeds, each within the deadline
    // once the cluster has a leader (the killed member may have led: the
    // first writes after the kill may wait out an election, which on a busy
    // 2-core machine can take longer than one write's deadline; they are
    // not timed).
    etcd.kill(2)?;
    let elected = tokio::time::Instant::now() + CONVERGE;
    let mut n = 0;
    while let Err(e) = write(format!("after-kill-{n}")).await {
        n += 1;
        anyhow::ensure!(
            tokio::time::Instant::now() < elected,
            "no write succeeded within {CONVERGE:?} of the kill: {e}"
        );
    }
    for i in 0..30 {
        let started = tokio::time::Instant::now();
        write(format!("one-down-{i}")).await?;
        assert!(
            started.elapsed() <= op_timeout,
            "write {i} took {:?}",
            started.elapsed()
        );
        store
            .get_required::<Event>(&store.keys().tile(&format!("one-down-{i}")))
            .await?;
    }

    // Changes without an audit record (no idempotency marker) are retried
    // only when provably not sent: the dead member's refusals qualify.
    for i in 0..30 {
        let key = store.keys().tile(&format!("plain-{i}"));
        store
            .commit(Change::new().put_unchecked(key, &event("plain", "x")), &actor)
            .await?;
    }

    // Two killed: no quorum. The write fails with UNAVAILABLE within the deadline.
    etcd.kill(1)?;
    let started = tokio::time::Instant::now();
    let err = write("no-quorum".to_owned())
        .await
        .expect_err("no quorum, no write");
    let took = started.elapsed();
    assert!(took <= op_timeout + Duration::from_secs(1), "took {took:?}");
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    assert_eq!(tonic::Status::from(err).code(), tonic::Code::Unavailable);
    let read = tokio::time::timeout(
        op_timeout + Duration::from_secs(1),
        store.get::<Event>(&store.keys().tile("x")),
    )
    .await?;
    assert!(
        read.is_err_and(|e| e.is_unavailable()),
        "a read fails cleanly too"
    );

    // Quorum back: the object and its audit record both exist or neither.
    etcd.restart(1).await?;
    etcd.restart(2).await?;
    let exists = eventually("reads to work again", CONVERGE, || async {
        store.get::<Event>(&store.keys().tile("no-quorum")).await
    })
    .await?
    .is_some();
    let audited = !audits_for(&store, "no-quorum").await?.is_empty();
    assert_eq!(
        exists, audited,
        "object {exists}, audit record {audited}: half-written"
    );
    write("after".to_owned()).await?;
    assert_eq!(audits_for(&store, "after").await?.len(), 1);
    Ok(())
}
