//! Timers by kind, across processes: the rollout service's timer loop fires
//! its GA timers and leaves timers of kinds it does not handle where they
//! are (another service's escalation or credential timers), including one
//! written under the layout before kinds, which it only moves; a second
//! loop that registered those kinds fires each once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use jiff::SignedDuration;
use tilewave_proto::common::v1::Timer;
use tilewave_proto::rollout::v1::Rollout;
use tilewave_store::{
    Actor, Change, Clock, OwnerLoop, Shutdown, TimerKinds, Versioned, VirtualClock, audit, run_timer_loop,
};

use crate::*;

fn foreign(kind: &str, id: &str, due: Timestamp) -> Timer {
    Timer {
        id: id.into(),
        due: Some(ts(due)),
        kind: kind.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_foreign_timer_stays_while_the_rollout_service_runs_and_fires_once_in_its_own_loop()
-> anyhow::Result<()> {
    let mut stack = Stack::start(1).await?;
    let keys = stack.store.keys().clone();
    let actor = Actor::system("timer-kinds-it");
    // A tile that is SCHEDULED: its GA timer fires with "nothing to do".
    let tile = stack.scheduled_tile(SignedDuration::from_hours(24 * 8)).await?;
    let now = stack.now().await?;
    let due = now - SignedDuration::from_mins(1);

    // Due at once: a GA timer, a foreign timer, and a foreign timer in the
    // layout before kinds (as a stack started before the change wrote it).
    let ga = tilewave_rollout::controller::ga_timer(
        &Rollout {
            id: format!("{}-r{}", tile.id, tile.revision),
            tile_id: tile.id.clone(),
            revision: tile.revision,
            ..Default::default()
        },
        ts(due),
    );
    let escalation = foreign("escalation", "escalation/sev2-page", due);
    let credential = foreign("credentials", "credentials/rotate-key", due);
    let change = Change::new()
        .schedule(&keys, &escalation)?
        .create(keys.legacy_timer(due, &credential.id)?, &credential)
        .schedule(&keys, &ga)?
        .audit(audit::record(
            "ScheduleTestTimers",
            "test",
            "timer-kinds",
            "three due timers",
        ));
    stack.store.commit(change, &actor).await?;
    // The service restarts (as after an upgrade): its timer loop moves the
    // old-layout timer at start-up.
    stack.rollouts[0].restart().await?;

    // The rollout service's loop fires the GA timer...
    eventually("the rollout service to fire the GA timer", WAIT, || async {
        let fired = stack
            .store
            .audit_records()
            .await?
            .iter()
            .any(|a| a.action == "GaReached" && a.object_id == tile.id);
        anyhow::ensure!(fired, "not yet");
        anyhow::ensure!(stack.store.get::<Timer>(&keys.timer_of(&ga)?).await?.is_none());
        anyhow::Ok(())
    })
    .await?;
    // ...and a few more rounds (a clock jump wakes it).
    stack.advance(SignedDuration::from_mins(5)).await?;
    // The old-layout one was moved to its kind, the foreign ones stayed.
    eventually("the old-layout timer moved to its kind", SHORT, || async {
        anyhow::ensure!(
            stack
                .store
                .get::<Timer>(&keys.timer_of(&credential)?)
                .await?
                .is_some()
        );
        anyhow::ensure!(
            stack
                .store
                .get::<Timer>(&keys.legacy_timer(due, &credential.id)?)
                .await?
                .is_none()
        );
        anyhow::Ok(())
    })
    .await?;
    for t in [&escalation, &credential] {
        let kept = stack.store.get::<Timer>(&keys.timer_of(t)?).await?;
        assert!(kept.is_some(), "{} was deleted by the rollout service", t.id);
        let fired = stack.store.audit_records().await?;
        assert!(
            !fired
                .iter()
                .any(|a| a.object_id == t.id && a.action == "FireTimer"),
            "{} fired by the rollout service",
            t.id
        );
    }

    // A second loop, registering the foreign kinds, fires each once.
    let clock: Arc<dyn Clock> = VirtualClock::attach(&stack.store).await?;
    let store = stack.store.with_clock(Arc::clone(&clock));
    let counts = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let (stop, shutdown) = Shutdown::new();
    let task = tokio::spawn({
        let (store, counts) = (store.clone(), Arc::clone(&counts));
        async move {
            let owner = OwnerLoop::new(&store, "other-service-timers", "other-1", Duration::from_secs(3));
            owner
                .run(&shutdown, |owned| {
                    let (store, clock) = (store.clone(), Arc::clone(&clock));
                    let count = |i: usize| {
                        let counts = Arc::clone(&counts);
                        move |_t: Versioned<Timer>| {
                            counts[i].fetch_add(1, Ordering::SeqCst);
                            async { Ok(Change::new()) }
                        }
                    };
                    let kinds = TimerKinds::new()
                        .on("escalation", count(0))
                        .on("credentials", count(1));
                    async move {
                        run_timer_loop(
                            &store,
                            clock,
                            owned.token(),
                            Actor::system("other-service"),
                            kinds,
                            owned.stopping(),
                        )
                        .await
                    }
                })
                .await;
        }
    });
    eventually("the foreign timers to fire in their own loop", SHORT, || async {
        for t in [&escalation, &credential] {
            anyhow::ensure!(stack.store.get::<Timer>(&keys.timer_of(t)?).await?.is_none());
        }
        anyhow::Ok(())
    })
    .await?;
    stop.request();
    task.await?;
    let records = stack.store.audit_records().await?;
    for (i, t) in [&escalation, &credential].into_iter().enumerate() {
        assert_eq!(counts[i].load(Ordering::SeqCst), 1, "{} handled once", t.id);
        let fires = records
            .iter()
            .filter(|a| a.object_id == t.id && a.action == "FireTimer")
            .count();
        assert_eq!(fires, 1, "{} fired {fires} times", t.id);
    }
    Ok(())
}
