//! Durable timers fire exactly once: between competing firers in-process,
//! and across a timer-loop owner's kill -9.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tilewave_proto::common::v1::{Event, Timer};
use tilewave_store::clock::to_proto_timestamp;
use tilewave_store::{Actor, Change, Clock, Error, FencingToken, Fired, Ownership, VirtualClock};
use tilewave_testkit::{EtcdCluster, Signal, TestDir, eventually};

use crate::support::{CONVERGE, Probe, audit, audits_for, connect, event};

fn t0() -> Timestamp {
    // 2026-03-01T00:00:00Z
    Timestamp::constant(1_772_323_200, 0)
}

fn timer(id: &str, due: Timestamp) -> Timer {
    Timer {
        id: id.into(),
        due: Some(to_proto_timestamp(due)),
        kind: "test".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_timer_fires_once_when_two_firers_compete() -> anyhow::Result<()> {
    let etcd = EtcdCluster::start(1).await?;
    let store = connect(etcd.endpoints()).await?;
    let actor = Actor::system("test");
    let clock = VirtualClock::start(&store, t0(), 0.0, &actor).await?;
    let store = store.with_clock(clock.clone());
    let owner = Ownership::try_acquire(&store, "timers", "a", Duration::from_secs(3))
        .await?
        .expect("free work");
    let token = owner.token();

    let due = t0() + SignedDuration::from_mins(1);
    store
        .commit(
            Change::new()
                .schedule(store.keys(), &timer("bake/r1", due))?
                .audit(audit("Schedule", "bake/r1")),
            &actor,
        )
        .await?;
    assert!(
        store.due_timers("test", clock.now()).await?.is_empty(),
        "not due yet"
    );
    clock.advance(SignedDuration::from_mins(2), &actor).await?;
    let due_now = store.due_timers("test", clock.now()).await?;
    assert_eq!(due_now.len(), 1);
    let t = &due_now[0];

    let effect =
        |who: &str| Change::new().put_unchecked(store.keys().event("fired-bake-r1"), &event("bake/r1", who));
    let (a, b) = tokio::join!(
        store.fire_timer(t, effect("a"), &token, &actor),
        store.fire_timer(t, effect("b"), &token, &actor),
    );
    let outcomes = [a?, b?];
    assert_eq!(
        outcomes.iter().filter(|o| matches!(o, Fired::Fired(_))).count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes.iter().filter(|o| **o == Fired::AlreadyFired).count(),
        1,
        "{outcomes:?}"
    );
    let fired = store
        .get_required::<Event>(&store.keys().event("fired-bake-r1"))
        .await?;
    assert_eq!(fired.create_revision, fired.etag, "the effect was written once");
    assert_eq!(
        audits_for(&store, "bake/r1")
            .await?
            .iter()
            .filter(|a| a.action == "FireTimer")
            .count(),
        1
    );
    assert!(store.due_timers("test", clock.now()).await?.is_empty());

    // A replica without the current token cannot fire at all.
    store
        .commit(
            Change::new()
                .schedule(store.keys(), &timer("bake/r2", due))?
                .audit(audit("Schedule", "bake/r2")),
            &actor,
        )
        .await?;
    let t2 = store.due_timers("test", clock.now()).await?.remove(0);
    let stale = FencingToken {
        revision: token.revision - 1,
        ..token.clone()
    };
    let err = store
        .fire_timer(&t2, Change::new(), &stale, &actor)
        .await
        .expect_err("a stale token is fenced");
    assert!(matches!(err, Error::Fenced { .. }), "{err:?}");
    assert_eq!(
        store.due_timers("test", clock.now()).await?.len(),
        1,
        "the timer is still there"
    );
    Ok(())
}

#[tokio::test]
async fn timers_fire_in_due_order_once_across_an_owner_kill9() -> anyhow::Result<()> {
    let etcd = EtcdCluster::start(1).await?;
    let dir = TestDir::new("store-timers")?;
    let store = connect(etcd.endpoints()).await?;
    let actor = Actor::system("test");
    let clock = VirtualClock::start(&store, t0(), 0.0, &actor).await?;

    // Twelve timers, scheduled out of order, due one virtual minute apart.
    let ids: Vec<String> = (1..=12).map(|i| format!("t{i:02}")).collect();
    for i in [7, 2, 11, 0, 5, 9, 1, 3, 10, 4, 8, 6] {
        let due = t0() + SignedDuration::from_mins(i64::from(i) + 1);
        let id = &ids[i as usize];
        store
            .commit(
                Change::new()
                    .schedule(store.keys(), &timer(id, due))?
                    .audit(audit("Schedule", id)),
                &actor,
            )
            .await?;
    }

    // Two replicas compete for the timer loop; A wins, B waits.
    let endpoints = etcd.endpoints().join(",");
    let args = |holder: &'static str| {
        vec![
            "--endpoints".to_owned(),
            endpoints.clone(),
            "--mode".into(),
            "timers".into(),
            "--work".into(),
            "timer-loop".into(),
            "--holder".into(),
            holder.into(),
            "--ttl-secs".into(),
            "3".into(),
            "--handler-delay-ms".into(),
            "150".into(),
        ]
    };
    let a_args = args("replica-a");
    let mut a = Probe::spawn(
        dir.path(),
        "replica-a",
        &a_args.iter().map(String::as_str).collect::<Vec<_>>(),
    )?;
    a.expect("OWNED", CONVERGE).await?;
    let b_args = args("replica-b");
    let mut b = Probe::spawn(
        dir.path(),
        "replica-b",
        &b_args.iter().map(String::as_str).collect::<Vec<_>>(),
    )?;

    // The clock jumps past every due time: A starts firing in due order.
    clock.advance(SignedDuration::from_mins(30), &actor).await?;
    let fired_key = |id: &str| store.keys().event(&format!("fired-{id}"));
    eventually("replica A to fire a few timers", CONVERGE, || async {
        let n = store.list::<Event>(&store.keys().events()).await?.items.len();
        anyhow::ensure!(n >= 3, "{n} fired");
        anyhow::Ok(())
    })
    .await?;
    a.signal(Signal::SIGKILL)?;
    a.kill().await?;

    // B takes over once A's lease expires and fires the rest.
    b.expect("OWNED", CONVERGE).await?;
    eventually("every timer to have fired", CONVERGE, || async {
        let n = store.list::<Event>(&store.keys().events()).await?.items.len();
        anyhow::ensure!(n == ids.len(), "{n} fired");
        anyhow::Ok(())
    })
    .await?;
    assert!(
        store
            .list::<Timer>(&store.keys().timers())
            .await?
            .items
            .is_empty()
    );

    // Exactly once each, in due order, by both replicas.
    let mut by = BTreeMap::new();
    let mut last_rev = 0;
    for id in &ids {
        let e = store.get_required::<Event>(&fired_key(id)).await?;
        assert_eq!(e.create_revision, e.etag, "{id} was written once");
        assert!(e.create_revision > last_rev, "{id} fired out of due order");
        last_rev = e.create_revision;
        *by.entry(e.value.message.clone()).or_insert(0) += 1;
        let fires = audits_for(&store, id)
            .await?
            .iter()
            .filter(|a| a.action == "FireTimer")
            .count();
        assert_eq!(fires, 1, "{id} fired {fires} times");
    }
    assert!(by.get("replica-a").copied().unwrap_or(0) >= 3, "{by:?}");
    assert!(by.get("replica-b").copied().unwrap_or(0) >= 1, "{by:?}");
    b.send("quit").await?;
    Ok(())
}
