//! Timers by kind: a loop fires only the kinds it registered and never
//! touches another kind's timers; timers of the layout before kinds
//! (`timers/<due>/<id>`) are moved once at the start of a loop and fire once.

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tilewave_proto::common::v1::{Event, Timer};
use tilewave_store::clock::to_proto_timestamp;
use tilewave_store::keys::work;
use tilewave_store::{
    Actor, Change, Clock, OwnerLoop, Shutdown, Store, TimerKinds, Versioned, VirtualClock, run_timer_loop,
};
use tilewave_testkit::{EtcdCluster, eventually};

use crate::support::{CONVERGE, audit, audits_for, connect, event};

fn t0() -> Timestamp {
    // 2026-03-01T00:00:00Z
    Timestamp::constant(1_772_323_200, 0)
}

fn timer(kind: &str, id: &str, due: Timestamp) -> Timer {
    Timer {
        id: id.into(),
        due: Some(to_proto_timestamp(due)),
        kind: kind.into(),
        ..Default::default()
    }
}

/// A timer loop of `kinds` under the owner loop of `owners/timers`, as a
/// service runs it, until the returned trigger is requested. Each firing
/// writes `events/fired-<id>`.
fn start_loop(
    store: &Store,
    clock: &Arc<VirtualClock>,
    holder: &str,
    kinds: &[&str],
) -> (tilewave_store::Trigger, tokio::task::JoinHandle<()>) {
    let (trigger, shutdown) = Shutdown::new();
    let owner = OwnerLoop::new(store, work::TIMERS, holder, Duration::from_secs(3));
    let store = store.clone();
    let clock: Arc<dyn Clock> = Arc::clone(clock) as Arc<dyn Clock>;
    let kinds: Vec<String> = kinds.iter().map(|k| (*k).to_owned()).collect();
    let task = tokio::spawn(async move {
        owner
            .run(&shutdown, |owned| {
                let mut handlers = TimerKinds::new();
                for kind in &kinds {
                    let keys = store.keys().clone();
                    handlers = handlers.on(kind, move |t: Versioned<Timer>| {
                        let key = keys.event(&format!("fired-{}", t.value.id));
                        async move { Ok(Change::new().put_unchecked(key, &event(&t.value.id, "fired"))) }
                    });
                }
                let store = store.clone();
                let clock = Arc::clone(&clock);
                async move {
                    run_timer_loop(
                        &store,
                        clock,
                        owned.token(),
                        Actor::system("timers"),
                        handlers,
                        owned.stopping(),
                    )
                    .await
                }
            })
            .await;
    });
    (trigger, task)
}

async fn fired_once(store: &Store, id: &str) -> anyhow::Result<()> {
    let e = store
        .get_required::<Event>(&store.keys().event(&format!("fired-{id}")))
        .await?;
    anyhow::ensure!(e.create_revision == e.etag, "{id} was written more than once");
    let fires = audits_for(store, id)
        .await?
        .iter()
        .filter(|a| a.action == "FireTimer")
        .count();
    anyhow::ensure!(fires == 1, "{id} fired {fires} times");
    Ok(())
}

#[tokio::test]
async fn a_timer_of_a_foreign_kind_stays_and_fires_once_in_its_own_loop() -> anyhow::Result<()> {
    let etcd = EtcdCluster::start(1).await?;
    let store = connect(etcd.endpoints()).await?;
    let actor = Actor::system("test");
    let clock = VirtualClock::start(&store, t0(), 0.0, &actor).await?;
    let store = store.with_clock(clock.clone());
    let due = t0() + SignedDuration::from_mins(1);
    for (kind, id) in [("mine", "mine/1"), ("foreign", "foreign/1"), ("mine", "mine/2")] {
        store
            .commit(
                Change::new()
                    .schedule(store.keys(), &timer(kind, id, due))?
                    .audit(audit("Schedule", id)),
                &actor,
            )
            .await?;
    }
    clock.advance(SignedDuration::from_mins(2), &actor).await?;

    // A loop of "mine" fires its own and leaves the foreign one.
    let (stop, task) = start_loop(&store, &clock, "replica-a", &["mine"]);
    eventually("the loop to fire its own kind", CONVERGE, || async {
        fired_once(&store, "mine/1").await?;
        fired_once(&store, "mine/2").await
    })
    .await?;
    // More rounds: the clock moves on, a new timer of its kind fires too.
    store
        .commit(
            Change::new()
                .schedule(store.keys(), &timer("mine", "mine/3", due))?
                .audit(audit("Schedule", "mine/3")),
            &actor,
        )
        .await?;
    clock.advance(SignedDuration::from_mins(2), &actor).await?;
    eventually("a later timer of its kind to fire", CONVERGE, || async {
        fired_once(&store, "mine/3").await
    })
    .await?;
    let foreign = store.due_timers("foreign", clock.now()).await?;
    assert_eq!(foreign.len(), 1, "the foreign timer is still there");
    assert!(
        audits_for(&store, "foreign/1")
            .await?
            .iter()
            .all(|a| a.action != "FireTimer")
    );
    stop.request();
    task.await?;

    // A loop that registered the foreign kind fires it, once.
    let (stop, task) = start_loop(&store, &clock, "replica-b", &["foreign"]);
    eventually("the foreign kind's own loop to fire it", CONVERGE, || async {
        fired_once(&store, "foreign/1").await
    })
    .await?;
    assert!(store.due_timers("foreign", clock.now()).await?.is_empty());
    stop.request();
    task.await?;
    assert!(
        tilewave_store::ownership::current_owner(&store, work::TIMERS)
            .await?
            .is_none(),
        "the owner loop released the work on shutdown"
    );
    Ok(())
}

#[tokio::test]
async fn timers_of_the_old_layout_are_moved_at_start_and_fire_once() -> anyhow::Result<()> {
    let etcd = EtcdCluster::start(1).await?;
    let store = connect(etcd.endpoints()).await?;
    let actor = Actor::system("test");
    let clock = VirtualClock::start(&store, t0(), 0.0, &actor).await?;
    let store = store.with_clock(clock.clone());
    let keys = store.keys().clone();

    // Written as a stack before the change wrote them: `timers/<due>/<id>`.
    let due = t0() + SignedDuration::from_mins(1);
    let later = t0() + SignedDuration::from_hours(72);
    let old = [
        timer("mine", "mine/due", due),
        timer("mine", "mine/later", later),
        timer("foreign", "foreign/due", due),
    ];
    let mut change = Change::new().audit(audit("Schedule", "old-layout"));
    for t in &old {
        change = change.create(
            keys.legacy_timer(
                tilewave_store::clock::from_proto_timestamp(t.due.as_ref().unwrap())?,
                &t.id,
            )?,
            t,
        );
    }
    store.commit(change, &actor).await?;
    clock.advance(SignedDuration::from_mins(2), &actor).await?;

    let (stop, task) = start_loop(&store, &clock, "replica-a", &["mine"]);
    eventually("the due timer of the old layout to fire", CONVERGE, || async {
        fired_once(&store, "mine/due").await
    })
    .await?;
    // Every old key moved to its kind's folder, the foreign one too (and
    // left unfired); none is left under the old layout.
    let (start, end) = keys.legacy_timers();
    let left: Vec<_> = store
        .list::<Timer>(&keys.timers())
        .await?
        .items
        .into_iter()
        .filter(|t| t.key >= start && t.key < end)
        .collect();
    assert!(left.is_empty(), "{left:?}");
    for t in &old[1..] {
        let moved = store.get_required::<Timer>(&keys.timer_of(t)?).await?;
        assert_eq!(moved.value.id, t.id);
    }
    stop.request();
    task.await?;

    // Idempotent: a second start moves nothing and fires nothing twice.
    let owner =
        tilewave_store::Ownership::try_acquire(&store, work::TIMERS, "replica-b", Duration::from_secs(3))
            .await?
            .expect("free work");
    assert_eq!(store.migrate_legacy_timers(&owner.token(), &actor).await?, 0);
    owner.release().await?;
    for t in &old {
        let moves = audits_for(&store, &t.id)
            .await?
            .iter()
            .filter(|a| a.action == "MigrateTimer")
            .count();
        assert_eq!(moves, 1, "{} moved {moves} times", t.id);
    }
    let (stop, task) = start_loop(&store, &clock, "replica-b", &["mine"]);
    clock.advance(SignedDuration::from_hours(96), &actor).await?;
    eventually("the later timer to fire", CONVERGE, || async {
        fired_once(&store, "mine/later").await
    })
    .await?;
    fired_once(&store, "mine/due").await?;
    stop.request();
    task.await?;
    assert_eq!(store.due_timers("foreign", clock.now()).await?.len(), 1);
    Ok(())
}
