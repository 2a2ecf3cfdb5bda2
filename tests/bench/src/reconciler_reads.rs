//! The reconciler's passes, through the service's own etcd metrics, which
//! only the bench's stack scrapes: a pass reads only the roll-outs that
//! changed since the last (the rollout service's `reconcile::StepsSeen`),
//! not every roll-out's steps, and asks the agents for their tiles at
//! once, not one after another.

use std::time::Duration;

use jiff::SignedDuration;
use tilewave_proto::agent::v1::InjectLatencyRequest;
use tilewave_proto::rollout::v1::RolloutSpec;
use tilewave_testkit::eventually;
use tokio::time::Instant;

use crate::stack::{self, Metrics, Stack, dur, ts};

const OP: &str = "tilewave_etcd_op_duration_seconds_count";

/// etcd transactions of the service: every reconciliation pass makes one
/// (it claims `owners/reconciler` afresh, after reading that key);
/// nothing else does while idle.
fn txns(m: &Metrics) -> f64 {
    m.sum(OP, &["op=\"txn\""])
}

/// etcd reads of the service (single keys and ranges).
fn reads(m: &Metrics) -> f64 {
    m.sum(OP, &["op=\"get\""]) + m.sum(OP, &["op=\"list\""])
}

/// Waits until the service made `n` more transactions than in `from`.
async fn passes(stack: &Stack, from: &Metrics, n: f64) -> anyhow::Result<Metrics> {
    eventually("reconciliation passes", Duration::from_secs(60), || async {
        let now = stack.rollout_metrics().await.map_err(|e| format!("{e:#}"))?;
        if txns(&now) - txns(from) >= n {
            Ok(now)
        } else {
            Err(format!("{} transactions so far", txns(&now) - txns(from)))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn reconciliation_passes_read_no_roll_out_that_did_not_change() -> anyhow::Result<()> {
    let regions = stack::regions(3);
    let mut stack = Box::pin(Stack::start(&regions, false)).await?;
    stack
        .start_rollout_service_with(&["--reconcile-interval-ms", "150"])
        .await?;
    for n in 0..3 {
        let tile = Box::pin(stack.scheduled_tile(&format!("reconciled-{n}"), stack.now())).await?;
        let spec = RolloutSpec {
            tile_id: tile.id.clone(),
            regions: regions.clone(),
            apply_time: Some(dur(SignedDuration::from_secs(1))),
            bake: Some(dur(SignedDuration::ZERO)),
            concurrency: 3,
            earliest_start: Some(ts(stack.now())),
            ..Default::default()
        };
        let r = stack.start_rollout(spec).await?;
        stack.watch_succeeded(&r.id, Duration::from_secs(60)).await?;
    }
    // A few passes read the finished roll-outs once more (they changed
    // since the passes that ran while they did).
    let settled = passes(&stack, &stack.rollout_metrics().await?, 4.0).await?;
    // Then six passes over three unchanged roll-outs. A pass reads one
    // key of its own (the owner key, before its claim); it used to read
    // every roll-out's steps as well (four reads a pass here).
    let after = passes(&stack, &settled, 6.0).await?;
    let (read, passed) = (reads(&after) - reads(&settled), txns(&after) - txns(&settled));
    assert!(
        read <= passed,
        "{read} etcd reads in {passed} passes over unchanged roll-outs: more than the owner key's one a pass"
    );
    Ok(())
}

/// Every agent's ListTiles answers after this long in
/// [`a_pass_asks_the_agents_at_once`].
const SLOW_LISTING: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread")]
async fn a_pass_asks_the_agents_at_once() -> anyhow::Result<()> {
    let regions = stack::regions(3);
    let mut stack = Box::pin(Stack::start_with_faults(&regions)).await?;
    for region in &regions {
        stack
            .faults(region)
            .await?
            .inject_latency(InjectLatencyRequest {
                latency: Some(dur(SignedDuration::try_from(SLOW_LISTING)?)),
                methods: vec!["ListTiles".into()],
            })
            .await?;
    }
    stack
        .start_rollout_service_with(&["--reconcile-interval-ms", "100"])
        .await?;
    // Four claims: three whole passes at least in between. Asking one
    // agent after another, a pass lasts three slow listings at least, so
    // three passes 9 s at least (the bound below is 7 s); asking them at
    // once, one listing a pass: about 3.5 s.
    let from = stack.rollout_metrics().await?;
    let started = Instant::now();
    passes(&stack, &from, 4.0).await?;
    let took = started.elapsed();
    println!("three passes over {} slow agents took {took:?}", regions.len());
    assert!(
        took < Duration::from_secs(7),
        "three passes over {} agents whose listings take {SLOW_LISTING:?} each took {took:?}: the agents were asked one after another",
        regions.len()
    );
    Ok(())
}
