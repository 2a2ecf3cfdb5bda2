//! Ownership across processes: an owner paused past its lease cannot write.

use std::time::Duration;

use tilewave_proto::common::v1::Event;
use tilewave_store::{Actor, Change, OwnerLoop, Ownership, ReplicaLease, Shutdown};
use tilewave_testkit::{EtcdCluster, Signal, TestDir, eventually};

use crate::support::{CONVERGE, Probe, audit, audits_for, connect, event};

#[tokio::test]
async fn an_owner_paused_past_its_lease_is_fenced_and_a_new_owner_writes() -> anyhow::Result<()> {
    let etcd = EtcdCluster::start(1).await?;
    let dir = TestDir::new("store-owner")?;
    let store = connect(etcd.endpoints()).await?;
    let endpoints = etcd.endpoints().join(",");
    let mut probe = Probe::spawn(
        dir.path(),
        "owner",
        &[
            "--endpoints",
            &endpoints,
            "--mode",
            "owner",
            "--work",
            "rollout-r9",
            "--holder",
            "probe",
            "--ttl-secs",
            "3",
        ],
    )?;
    let owned = probe.expect("OWNED", CONVERGE).await?;
    let old_token: i64 = owned.trim_start_matches("OWNED ").parse()?;

    probe.send("write rollouts/r9 probe-1").await?;
    let ok = probe.expect("", CONVERGE).await?;
    assert!(ok.starts_with("OK"), "{ok}");

    // Pause the owner past its TTL; another replica takes over.
    probe.signal(Signal::SIGSTOP)?;
    let ttl = Duration::from_secs(3);
    let new_owner = eventually("the work to be free for a new owner", CONVERGE, || async {
        Ownership::try_acquire(&store, "rollout-r9", "replica-b", ttl)
            .await
            .map_err(anyhow::Error::from)
            .and_then(|o| o.ok_or_else(|| anyhow::anyhow!("still owned")))
    })
    .await?;
    assert!(new_owner.token().revision > old_token);
    let key = store.keys().rollout("r9");
    store
        .commit(
            Change::new()
                .put_unchecked(key.clone(), &event("new-owner", "replica-b"))
                .fence(&new_owner.token())
                .audit(audit("Step", "new-owner")),
            &Actor::new("replica-b"),
        )
        .await?;

    // Resume the old owner: its write is refused by etcd, and it learns it lost.
    probe.signal(Signal::SIGCONT)?;
    probe.send("write rollouts/r9 probe-2").await?;
    let mut got_err = None;
    let mut got_lost = false;
    while got_err.is_none() || !got_lost {
        let line = probe.next_line(CONVERGE).await?;
        if line == "LOST" {
            got_lost = true;
        } else {
            got_err = Some(line);
        }
    }
    let err = got_err.unwrap_or_default();
    assert!(
        err.starts_with("ERR Fenced"),
        "the paused owner's write must be fenced: {err}"
    );
    let stored = store.get_required::<Event>(&key).await?;
    assert_eq!(stored.value.id, "new-owner", "etcd kept the new owner's write");
    assert!(
        audits_for(&store, "probe-2").await?.is_empty(),
        "no audit for the refused write"
    );
    assert_eq!(audits_for(&store, "probe-1").await?.len(), 1);
    probe.send("quit").await?;
    new_owner.release().await?;
    Ok(())
}

/// What the work of an owner loop reports.
#[derive(Debug, PartialEq)]
enum Seen {
    Started(i64),
    Dropped(i64),
}

/// The next report of the work, waiting at most [`CONVERGE`].
async fn next(seen: &mut tokio::sync::mpsc::UnboundedReceiver<Seen>) -> Option<Seen> {
    tokio::time::timeout(CONVERGE, seen.recv()).await.ok().flatten()
}

/// Sends `Dropped` when the work's future is dropped (stopped from outside).
struct OnDrop(tokio::sync::mpsc::UnboundedSender<Seen>, i64);

impl Drop for OnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(Seen::Dropped(self.1));
    }
}

#[tokio::test]
async fn the_owner_loop_stops_the_work_at_once_on_loss_takes_it_again_and_releases_on_shutdown()
-> anyhow::Result<()> {
    let etcd = EtcdCluster::start(1).await?;
    let store = connect(etcd.endpoints()).await?;
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let (stop, shutdown) = Shutdown::new();
    let owner = OwnerLoop::new(&store, "loop-work", "replica-a", Duration::from_secs(2));
    let task = tokio::spawn(async move {
        owner
            .run(&shutdown, |owned| {
                let seen = seen_tx.clone();
                async move {
                    let token = owned.token().revision;
                    let _ = seen.send(Seen::Started(token));
                    let _guard = OnDrop(seen, token);
                    std::future::pending::<()>().await;
                    Ok::<(), std::convert::Infallible>(())
                }
            })
            .await;
    });
    let Some(Seen::Started(first)) = next(&mut seen).await else {
        panic!("the work did not start");
    };

    // The lease behind the owner key goes (as when it expires): the work is
    // stopped at once, and the loop takes the work again with a new token.
    let owner_key = store.keys().owner("loop-work");
    let lease = store
        .etcd()
        .get(owner_key.as_str(), None)
        .await?
        .kvs()
        .first()
        .map(|kv| kv.lease())
        .expect("the owner key");
    store.etcd().lease_revoke(lease).await?;
    assert_eq!(next(&mut seen).await, Some(Seen::Dropped(first)));
    let Some(Seen::Started(second)) = next(&mut seen).await else {
        panic!("the work was not taken again");
    };
    assert!(second > first, "a new token: {second} after {first}");

    // Shutdown stops the work and releases the key at once.
    stop.request();
    tokio::time::timeout(CONVERGE, task).await??;
    assert_eq!(next(&mut seen).await, Some(Seen::Dropped(second)));
    assert!(
        tilewave_store::ownership::current_owner(&store, "loop-work")
            .await?
            .is_none(),
        "released"
    );
    Ok(())
}

/// `wait_free` returns at once for work nobody owns, waits while another
/// replica owns it, and returns as soon as the owner key goes: well before
/// its one-TTL bound (30 s here, longer than the test waits).
#[tokio::test]
async fn wait_free_returns_as_soon_as_the_owner_key_goes() -> anyhow::Result<()> {
    let etcd = EtcdCluster::start(1).await?;
    let store = connect(etcd.endpoints()).await?;
    let (_stop, shutdown) = Shutdown::new();
    let ttl = Duration::from_secs(30);
    let waiter = OwnerLoop::new(&store, "free-work", "replica-b", ttl);
    tokio::time::timeout(CONVERGE, waiter.wait_free(&shutdown)).await?;

    let held = Ownership::try_acquire(&store, "free-work", "replica-a", ttl)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the work was not free"))?;
    let mut waiting = Box::pin(waiter.wait_free(&shutdown));
    assert!(
        tokio::time::timeout(Duration::from_millis(500), &mut waiting)
            .await
            .is_err(),
        "wait_free returned while another replica owned the work"
    );
    held.release().await?;
    tokio::time::timeout(CONVERGE, waiting).await?;
    let taken = waiter.run_once(&shutdown, |_| async {}).await?;
    assert!(taken.is_some(), "the freed work was not taken");
    Ok(())
}

/// The fencing epoch is read with the owner key: 0 until bumped, then the
/// bumped value, above the revision in the agent token. Bumps are audited,
/// and a value that is not a decimal epoch refuses ownership rather than
/// guessing.
#[tokio::test]
async fn owners_carry_the_fencing_epoch_and_bumps_raise_it() -> anyhow::Result<()> {
    let etcd = EtcdCluster::start(1).await?;
    let store = connect(etcd.endpoints()).await?;
    let ttl = Duration::from_secs(3);
    let actor = Actor::new("ops");

    let first = Ownership::try_acquire(&store, "epoch-work", "a", ttl)
        .await?
        .ok_or_else(|| anyhow::anyhow!("free work not taken"))?;
    let t0 = first.token();
    assert_eq!(t0.epoch, 0, "no epoch stored: 0");
    assert_eq!(t0.agent_token(), t0.revision);
    assert_eq!(store.epoch().await?, 0);
    first.release().await?;

    assert_eq!(store.bump_epoch(&actor).await?, (0, 1));
    assert_eq!(store.bump_epoch(&actor).await?, (1, 2));
    assert_eq!(store.epoch().await?, 2);
    let audits = audits_for(&store, "epoch").await?;
    assert_eq!(audits.len(), 2, "{audits:?}");
    assert!(audits.iter().all(|a| a.action == "BumpEpoch" && a.actor == "ops"));
    assert_eq!(audits[1].summary, "fencing epoch 1 -> 2");

    let second = Ownership::try_acquire(&store, "epoch-work", "b", ttl)
        .await?
        .ok_or_else(|| anyhow::anyhow!("free work not taken"))?;
    let t1 = second.token();
    assert_eq!(t1.epoch, 2);
    assert_eq!(t1.agent_token(), (2 << 40) | t1.revision);
    assert!(t1.agent_token() > t0.agent_token());
    second.release().await?;

    // Garbage at the epoch key: refused, naming the key.
    let mut etcd_client = store.etcd();
    etcd_client.put(store.keys().epoch(), "two", None).await?;
    let e = Ownership::try_acquire(&store, "epoch-work", "c", ttl)
        .await
        .err()
        .ok_or_else(|| anyhow::anyhow!("ownership taken under an unreadable epoch"))?;
    assert!(e.to_string().contains("epoch"), "{e}");
    assert!(store.bump_epoch(&actor).await.is_err());
    // The refused acquisition left no owner behind.
    assert!(
        tilewave_store::ownership::current_owner(&store, "epoch-work")
            .await?
            .is_none()
    );
    Ok(())
}

/// Work claimed on a replica's shared lease: one lease for all of it, a
/// claim of work owned elsewhere is refused and leaves the owner's key
/// alone, a release deletes only its own owner key, and losing the lease
/// loses every ownership on it at once; the next claim gets a new lease.
#[tokio::test]
async fn work_on_a_replica_lease_shares_it_and_is_lost_with_it() -> anyhow::Result<()> {
    let etcd = EtcdCluster::start(1).await?;
    let store = connect(etcd.endpoints()).await?;
    let ttl = Duration::from_secs(3);
    let lease_a = ReplicaLease::new(&store, "replica-a", ttl)?;
    let lease_b = ReplicaLease::new(&store, "replica-b", ttl)?;
    assert!(
        ReplicaLease::new(&store, "short", Duration::from_secs(1)).is_err(),
        "a TTL under the minimum was accepted"
    );
    let claim = |work: &'static str, holder: &'static str, lease: &ReplicaLease| {
        let (store, lease) = (store.clone(), lease.clone());
        async move { Ownership::try_acquire_on(&store, work, holder, &lease).await }
    };
    let one = claim("work-1", "replica-a", &lease_a)
        .await?
        .ok_or_else(|| anyhow::anyhow!("work-1 was not free"))?;
    let two = claim("work-2", "replica-a", &lease_a)
        .await?
        .ok_or_else(|| anyhow::anyhow!("work-2 was not free"))?;
    assert_eq!(one.lease_id(), two.lease_id(), "two claims, two leases");
    assert_eq!(lease_a.id().await, Some(one.lease_id()));
    assert_ne!(one.token().revision, two.token().revision);

    // Owned by a: b's claim is refused, and the owner record stays a's.
    assert!(claim("work-1", "replica-b", &lease_b).await?.is_none());
    let owner = tilewave_store::ownership::current_owner(&store, "work-1")
        .await?
        .ok_or_else(|| anyhow::anyhow!("work-1 has no owner"))?;
    assert_eq!(owner.value.holder, "replica-a");
    assert_eq!(owner.create_revision, one.token().revision);

    // Releasing one deletes its key only; the lease lives on for the other.
    one.release().await?;
    assert!(
        tilewave_store::ownership::current_owner(&store, "work-1")
            .await?
            .is_none()
    );
    assert!(
        tilewave_store::ownership::current_owner(&store, "work-2")
            .await?
            .is_some()
    );
    assert!(!two.is_lost());
    let taken = claim("work-1", "replica-b", &lease_b)
        .await?
        .ok_or_else(|| anyhow::anyhow!("released work-1 was not free"))?;
    assert_ne!(taken.lease_id(), two.lease_id());

    // The shared lease goes (as when its replica stops renewing): every
    // ownership on it is lost, and a new claim holds a new lease.
    let old = two.lease_id();
    store.etcd().lease_revoke(old).await?;
    tokio::time::timeout(CONVERGE, two.lost()).await?;
    assert!(
        tilewave_store::ownership::current_owner(&store, "work-2")
            .await?
            .is_none()
    );
    let again = claim("work-2", "replica-a", &lease_a)
        .await?
        .ok_or_else(|| anyhow::anyhow!("work-2 was not free after the lease went"))?;
    assert_ne!(again.lease_id(), old, "the lost lease was used again");
    assert!(!taken.is_lost(), "b's ownership went with a's lease");
    Ok(())
}
