//! One transaction per change: etags, create-if-absent, audit in the same
//! transaction, fencing in-process.

use std::time::Duration;

use tilewave_proto::common::v1::Event;
use tilewave_store::{Actor, Change, Error, FencingToken, Ownership};
use tilewave_testkit::EtcdCluster;

use crate::support::{audit, audits_for, connect, event};

#[tokio::test]
async fn stale_etag_is_aborted_and_nothing_changes() -> anyhow::Result<()> {
    let etcd = EtcdCluster::start(1).await?;
    let store = connect(etcd.endpoints()).await?;
    let alice = Actor::new("alice");
    let key = store.keys().tile("riverflow");

    let created = store
        .commit(
            Change::new()
                .create(key.clone(), &event("riverflow", "v1"))
                .audit(audit("CreateTile", "riverflow")),
            &alice,
        )
        .await?;
    let v1 = store.get_required::<Event>(&key).await?;
    assert_eq!(v1.etag, created.revision);
    assert_eq!(v1.value.message, "v1");

    store
        .commit(
            Change::new()
                .update(key.clone(), &event("riverflow", "v2"), v1.etag)
                .audit(audit("UpdateTile", "riverflow")),
            &alice,
        )
        .await?;
    let v2 = store.get_required::<Event>(&key).await?;

    // The stale etag is refused: ABORTED, naming the key; nothing changed.
    let err = store
        .commit(
            Change::new()
                .update(key.clone(), &event("riverflow", "v3"), v1.etag)
                .audit(audit("UpdateTile", "riverflow")),
            &alice,
        )
        .await
        .expect_err("a stale etag must be refused");
    assert!(matches!(&err, Error::Conflict { key: k } if *k == key), "{err:?}");
    assert_eq!(tonic::Status::from(err).code(), tonic::Code::Aborted);
    let after = store.get_required::<Event>(&key).await?;
    assert_eq!(after, v2, "the object must be unchanged");
    let records = audits_for(&store, "riverflow").await?;
    assert_eq!(
        records.len(),
        2,
        "no audit record for the refused change: {records:?}"
    );
    assert!(records.iter().all(|r| r.actor == "alice" && r.at.is_some()));

    // Create-if-absent, stale delete, and which key failed among several.
    let err = store
        .commit(
            Change::new()
                .create(key.clone(), &event("riverflow", "again"))
                .audit(audit("CreateTile", "riverflow")),
            &alice,
        )
        .await
        .expect_err("create of an existing key");
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err:?}");
    let err = store
        .commit(
            Change::new()
                .delete(key.clone(), v1.etag)
                .audit(audit("DeleteTile", "riverflow")),
            &alice,
        )
        .await
        .expect_err("delete with a stale etag");
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
    let other = store.keys().tile("glacier");
    let err = store
        .commit(
            Change::new()
                .create(other.clone(), &event("glacier", "new"))
                .update(key.clone(), &event("riverflow", "v3"), v1.etag)
                .audit(audit("Both", "both")),
            &alice,
        )
        .await
        .expect_err("one stale guard fails the whole change");
    assert!(matches!(&err, Error::Conflict { key: k } if *k == key), "{err:?}");
    assert!(store.get::<Event>(&other).await?.is_none(), "no partial effect");
    assert_eq!(audits_for(&store, "riverflow").await?.len(), 2);

    // Keys outside the prefix and duplicate writes are refused up front.
    let err = store
        .commit(
            Change::new().put_unchecked("/elsewhere/x", &event("x", "x")),
            &alice,
        )
        .await
        .expect_err("outside the prefix");
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    let err = store
        .commit(
            Change::new()
                .put_unchecked(other.clone(), &event("x", "1"))
                .put_unchecked(other.clone(), &event("x", "2")),
            &alice,
        )
        .await
        .expect_err("duplicate key");
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");

    // A current etag deletes, with its audit record.
    store
        .commit(
            Change::new()
                .delete(key.clone(), v2.etag)
                .audit(audit("DeleteTile", "riverflow")),
            &alice,
        )
        .await?;
    assert!(store.get::<Event>(&key).await?.is_none());
    assert_eq!(audits_for(&store, "riverflow").await?.len(), 3);
    Ok(())
}

#[tokio::test]
async fn a_stale_owner_is_fenced_in_process() -> anyhow::Result<()> {
    let etcd = EtcdCluster::start(1).await?;
    let store = connect(etcd.endpoints()).await?;
    let ttl = Duration::from_secs(3);
    let actor = Actor::system("test");
    let key = store.keys().rollout("r1");

    let first = Ownership::try_acquire(&store, "rollout-r1", "replica-a", ttl)
        .await?
        .expect("free work");
    assert!(
        Ownership::try_acquire(&store, "rollout-r1", "replica-b", ttl)
            .await?
            .is_none(),
        "owned work cannot be taken"
    );
    let old: FencingToken = first.token();
    store
        .commit(
            Change::new()
                .put_unchecked(key.clone(), &event("r1", "a"))
                .fence(&old)
                .audit(audit("Step", "r1")),
            &actor,
        )
        .await?;
    first.release().await?;

    let second = Ownership::try_acquire(&store, "rollout-r1", "replica-b", ttl)
        .await?
        .expect("released work is free");
    assert!(second.token().revision > old.revision);
    let err = store
        .commit(
            Change::new()
                .put_unchecked(key.clone(), &event("r1", "stale"))
                .fence(&old)
                .audit(audit("Step", "r1")),
            &actor,
        )
        .await
        .expect_err("the old token is fenced");
    assert!(matches!(err, Error::Fenced { .. }), "{err:?}");
    assert_eq!(tonic::Status::from(err).code(), tonic::Code::FailedPrecondition);
    assert_eq!(store.get_required::<Event>(&key).await?.value.message, "a");
    store
        .commit(
            Change::new()
                .put_unchecked(key.clone(), &event("r1", "b"))
                .fence(&second.token())
                .audit(audit("Step", "r1")),
            &actor,
        )
        .await?;
    assert_eq!(store.get_required::<Event>(&key).await?.value.message, "b");
    assert_eq!(audits_for(&store, "r1").await?.len(), 2);

    // Losing the lease (revoked behind the owner's back) is reported.
    store.etcd().lease_revoke(second.lease_id()).await?;
    tokio::time::timeout(Duration::from_secs(10), second.lost()).await?;
    assert!(second.is_lost());
    Ok(())
}

#[tokio::test]
async fn an_object_and_its_children_are_read_together_without_siblings() -> anyhow::Result<()> {
    let etcd = EtcdCluster::start(1).await?;
    let store = connect(etcd.endpoints()).await?;
    let alice = Actor::new("alice");
    let keys = store.keys().clone();
    let (r1, r1_2) = (keys.rollout("r1"), keys.rollout("r1-2"));

    assert!(
        store
            .get_with_children::<Event, Event>(&r1, &keys.rollout_steps("r1"))
            .await?
            .is_none(),
        "an absent object reads as None"
    );
    // One transaction writes the object and two children; a sibling whose
    // key sorts inside the object's range (`r1-2`) and its child too.
    let info = store
        .commit(
            Change::new()
                .create(r1.clone(), &event("r1", "parent"))
                .create(keys.rollout_step("r1", "aws:eu-west-1"), &event("r1", "a"))
                .create(keys.rollout_step("r1", "gcp:us-central1"), &event("r1", "b"))
                .create(r1_2.clone(), &event("r1-2", "sibling"))
                .create(keys.rollout_step("r1-2", "aws:eu-west-1"), &event("r1-2", "c")),
            &alice,
        )
        .await?;
    let (parent, children) = store
        .get_with_children::<Event, Event>(&r1, &keys.rollout_steps("r1"))
        .await?
        .expect("present");
    assert_eq!(parent.value.message, "parent");
    let got: Vec<&str> = children.items.iter().map(|c| c.value.message.as_str()).collect();
    assert_eq!(got, ["a", "b"]);
    assert!(children.revision >= info.revision);
    assert!(
        children.items.iter().all(|c| c.etag == parent.etag),
        "one transaction, one revision"
    );

    let err = store
        .get_with_children::<Event, Event>(&r1, &keys.rollout_steps("r1-2"))
        .await
        .expect_err("children must lie under the object");
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    Ok(())
}
