//! A followed object and its children (`Store::follow_with_children`): each
//! change arrives whole, siblings in the key range are not part of it, a
//! lost watch over a compacted history costs one read, and a deleted
//! object ends it.

use std::time::Duration;

use anyhow::Context as _;

use tilewave_proto::common::v1::Event;
use tilewave_store::{Actor, Change, Family, FamilyChange, Store};
use tilewave_testkit::EtcdCluster;

use crate::support::{connect, event};

const WAIT: Duration = Duration::from_secs(10);

async fn next(family: &mut Family<Event, Event>) -> anyhow::Result<FamilyChange> {
    Ok(tokio::time::timeout(WAIT, family.changed()).await??)
}

async fn follow_r1(store: &Store) -> anyhow::Result<Option<Family<Event, Event>>> {
    let keys = store.keys();
    Ok(store
        .follow_with_children::<Event, Event>(&keys.rollout("r1"), &keys.rollout_steps("r1"))
        .await?)
}

fn messages(family: &Family<Event, Event>) -> (String, Vec<String>) {
    (
        family.parent().value.message.clone(),
        family.children().map(|c| c.value.message.clone()).collect(),
    )
}

#[tokio::test]
async fn a_followed_family_changes_whole_without_siblings_and_ends_when_deleted() -> anyhow::Result<()> {
    let etcd = EtcdCluster::start(1).await?;
    let store = connect(etcd.endpoints()).await?;
    let alice = Actor::new("alice");
    let keys = store.keys().clone();
    let (r1, r1_2) = (keys.rollout("r1"), keys.rollout("r1-2"));
    let (a, b) = (
        keys.rollout_step("r1", "aws:eu-west-1"),
        keys.rollout_step("r1", "gcp:us-central1"),
    );

    assert!(
        follow_r1(&store).await?.is_none(),
        "an absent object cannot be followed"
    );
    store
        .commit(
            Change::new()
                .create(r1.clone(), &event("r1", "p1"))
                .create(a.clone(), &event("r1", "a1"))
                .create(r1_2.clone(), &event("r1-2", "sibling")),
            &alice,
        )
        .await?;
    let mut family = follow_r1(&store).await?.context("r1 is there")?;
    assert_eq!(messages(&family), ("p1".into(), vec!["a1".into()]));

    // One transaction changes the object and adds a child: seen together.
    let t1 = store
        .commit(
            Change::new()
                .put_unchecked(r1.clone(), &event("r1", "p2"))
                .create(b.clone(), &event("r1", "b1")),
            &alice,
        )
        .await?;
    assert_eq!(next(&mut family).await?, FamilyChange::Changed);
    assert_eq!(messages(&family), ("p2".into(), vec!["a1".into(), "b1".into()]));
    assert!(family.children().all(|c| c.etag <= t1.revision) && family.parent().etag == t1.revision);

    // A sibling's writes (its key sorts inside the range) change nothing:
    // the next change seen is the object's own child.
    store
        .commit(
            Change::new()
                .put_unchecked(r1_2.clone(), &event("r1-2", "sibling 2"))
                .create(keys.rollout_step("r1-2", "aws:eu-west-1"), &event("r1-2", "c")),
            &alice,
        )
        .await?;
    store
        .commit(Change::new().put_unchecked(a.clone(), &event("r1", "a2")), &alice)
        .await?;
    assert_eq!(next(&mut family).await?, FamilyChange::Changed);
    assert_eq!(messages(&family), ("p2".into(), vec!["a2".into(), "b1".into()]));

    // A child deleted leaves the family.
    store
        .commit(Change::new().delete_unchecked(b.clone()), &alice)
        .await?;
    assert_eq!(next(&mut family).await?, FamilyChange::Changed);
    assert_eq!(messages(&family), ("p2".into(), vec!["a2".into()]));

    // The object deleted ends it.
    store
        .commit(Change::new().delete_unchecked(r1.clone()), &alice)
        .await?;
    assert_eq!(next(&mut family).await?, FamilyChange::Gone);
    Ok(())
}

#[tokio::test]
async fn a_family_whose_watch_was_lost_and_history_compacted_is_read_again() -> anyhow::Result<()> {
    let mut etcd = EtcdCluster::start(1).await?;
    let store = connect(etcd.endpoints()).await?;
    let alice = Actor::new("alice");
    let keys = store.keys().clone();
    let (r1, a) = (keys.rollout("r1"), keys.rollout_step("r1", "aws:eu-west-1"));
    store
        .commit(
            Change::new()
                .create(r1.clone(), &event("r1", "p1"))
                .create(a.clone(), &event("r1", "a1")),
            &alice,
        )
        .await?;
    // Read at R, its watch open; then etcd restarts (the watch is lost),
    // two changes land and the history up to the last is compacted away:
    // the family is read again, whole, instead of watched from R + 1.
    let mut family = follow_r1(&store).await?.context("r1 is there")?;
    let read_at = family.revision();
    etcd.restart(0).await?;
    store
        .commit(Change::new().put_unchecked(a.clone(), &event("r1", "a2")), &alice)
        .await?;
    let last = store
        .commit(
            Change::new().put_unchecked(r1.clone(), &event("r1", "p3")),
            &alice,
        )
        .await?;
    store.compact(last.revision).await?;
    assert_eq!(next(&mut family).await?, FamilyChange::Changed);
    assert_eq!(messages(&family), ("p3".into(), vec!["a2".into()]));
    assert!(family.revision() >= last.revision && family.revision() > read_at);

    // And it is followed from there.
    store
        .commit(Change::new().put_unchecked(a.clone(), &event("r1", "a3")), &alice)
        .await?;
    assert_eq!(next(&mut family).await?, FamilyChange::Changed);
    assert_eq!(messages(&family), ("p3".into(), vec!["a3".into()]));
    Ok(())
}
