//! The virtual clock: the same time in every process, forward only,
//! concurrent changes all applied.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tilewave_store::{Actor, Clock, Error, VirtualClock};
use tilewave_testkit::{EtcdCluster, TestDir, eventually};

use crate::support::{CONVERGE, Probe, connect};

async fn probe_now(probe: &mut Probe) -> anyhow::Result<Timestamp> {
    probe.send("now").await?;
    let line = probe.expect("NOW", CONVERGE).await?;
    Ok(Timestamp::from_nanosecond(
        line.trim_start_matches("NOW ").parse()?,
    )?)
}

#[tokio::test]
async fn advances_identically_in_every_process_and_never_backwards() -> anyhow::Result<()> {
    let etcd = EtcdCluster::start(1).await?;
    let dir = TestDir::new("store-clock")?;
    let s1 = connect(etcd.endpoints()).await?;
    let s2 = connect(etcd.endpoints()).await?;
    let actor = Actor::new("release-engineer");
    let t0: Timestamp = "2026-05-04T09:00:00Z".parse()?;
    let c1 = VirtualClock::start(&s1, t0, 0.0, &actor).await?;
    let c2 = VirtualClock::attach(&s2).await?;
    let endpoints = etcd.endpoints().join(",");
    let mut probe = Probe::spawn(
        dir.path(),
        "clock",
        &["--endpoints", &endpoints, "--mode", "clock"],
    )?;
    assert!(c1.is_virtual());
    assert_eq!(c1.now(), t0);
    assert_eq!(c2.now(), t0);
    assert_eq!(probe_now(&mut probe).await?, t0);

    // Advance in one process; every process sees the same time.
    let t1 = c1.advance(SignedDuration::from_mins(90), &actor).await?;
    assert_eq!(t1, t0 + SignedDuration::from_mins(90));
    assert_eq!(c1.now(), t1);
    eventually("the second connection to see the advance", CONVERGE, || async {
        (c2.now() == t1).then_some(())
    })
    .await?;
    let shared = tokio::sync::Mutex::new(probe);
    eventually("the other process to see the advance", CONVERGE, || async {
        let now = probe_now(&mut *shared.lock().await).await?;
        anyhow::ensure!(now == t1, "probe says {now}");
        anyhow::Ok(())
    })
    .await?;
    let mut probe = shared.into_inner();

    // ... and the other way round.
    probe.send("advance 60").await?;
    let ok = probe.expect("", CONVERGE).await?;
    let t2 = t1 + SignedDuration::from_secs(60);
    assert_eq!(ok, format!("OK {}", t2.as_nanosecond()));
    eventually(
        "both connections to see the probe's advance",
        CONVERGE,
        || async { (c1.now() == t2 && c2.now() == t2).then_some(()) },
    )
    .await?;

    // Never backwards.
    let err = c2.set(t0, &actor).await.expect_err("set to the past");
    assert!(matches!(err, Error::ClockBackwards { .. }), "{err:?}");
    assert_eq!(tonic::Status::from(err).code(), tonic::Code::FailedPrecondition);
    let err = c1
        .advance(SignedDuration::from_secs(-1), &actor)
        .await
        .expect_err("negative advance");
    assert!(matches!(err, Error::ClockBackwards { .. }), "{err:?}");
    probe.send("advance -5").await?;
    assert!(
        probe
            .expect("", CONVERGE)
            .await?
            .starts_with("ERR ClockBackwards")
    );
    assert_eq!(c1.now(), t2);

    // Concurrent advances from two connections are all applied (CAS).
    let steps = (0..8).map(|i| {
        let c = if i % 2 == 0 { c1.clone() } else { c2.clone() };
        let actor = actor.clone();
        async move { c.advance(SignedDuration::from_mins(1), &actor).await }
    });
    for r in futures::future::join_all(steps).await {
        r?;
    }
    let t3 = t2 + SignedDuration::from_mins(8);
    eventually("all eight advances", CONVERGE, || async {
        (c1.now() == t3 && c2.now() == t3).then_some(())
    })
    .await?;

    // A sleeper wakes when the clock is moved past its time, not before.
    let wake_at = t3 + SignedDuration::from_hours(1);
    let sleeper = tokio::spawn({
        let c2 = c2.clone();
        async move { c2.sleep_until(wake_at).await }
    });
    assert!(
        tokio::time::timeout(Duration::from_millis(300), async {
            while !sleeper.is_finished() {
                tokio::task::yield_now().await
            }
        })
        .await
        .is_err(),
        "a frozen clock does not wake the sleeper"
    );
    c1.advance(SignedDuration::from_hours(2), &actor).await?;
    tokio::time::timeout(CONVERGE, sleeper).await??;
    assert!(c2.now() >= wake_at);

    // Running: time moves forward in every process and never back.
    c1.set_rate(3600.0, &actor).await?;
    let mut last = c1.now();
    for _ in 0..200 {
        for now in [c1.now(), c2.now()] {
            assert!(now >= last || c1.now() >= last, "went backwards: {now} < {last}");
            last = last.max(now);
        }
        tokio::task::yield_now().await;
    }
    let (a, b) = (c1.now(), c2.now());
    assert!(
        b.duration_since(a).abs() < SignedDuration::from_secs(60),
        "{a} vs {b}"
    );
    // The probe runs too, once its watch has seen the rate (as above for
    // the advance: another process converges, it is not told).
    let shared = tokio::sync::Mutex::new(probe);
    eventually("the other process to see the clock run", CONVERGE, || async {
        let later = probe_now(&mut *shared.lock().await).await?;
        anyhow::ensure!(
            later > t3 + SignedDuration::from_hours(2),
            "the probe runs too: {later}"
        );
        anyhow::Ok(())
    })
    .await?;
    let mut probe = shared.into_inner();
    probe.send("quit").await?;
    Ok(())
}
