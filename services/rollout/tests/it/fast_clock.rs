//! A fast virtual clock (10000x, as `tilewave demo` runs it): one decision
//! of the owner (an etcd transaction, agent calls) then costs more domain
//! time than a bake check's period, so some bake check is due again as soon
//! as one is done. New applies must not wait behind those checks (they
//! did: a wave's regions applied one bake after another, and the demo's 70
//! regions finished days late), and the regions that may start together
//! start in one transaction.

use std::collections::BTreeSet;

use anyhow::Context as _;
use jiff::SignedDuration;
use tilewave_proto::rollout::v1::{RolloutState, StepState};

use crate::*;

#[tokio::test]
async fn at_10000x_bake_checks_do_not_hold_a_waves_applies_back() -> anyhow::Result<()> {
    let stack = Stack::start(1).await?;
    let tile = stack.scheduled_tile(SignedDuration::from_hours(24 * 8)).await?;
    let now = stack.now().await?;
    let concurrency = 2;
    let bake = SignedDuration::from_hours(8);
    let started = stack
        .start_rollout(quick_spec(&tile.id, now, &REGIONS, bake, concurrency))
        .await?;
    assert!(
        (1..=started.wave_count).any(|w| wave(&started, w).len() > 2),
        "a wave larger than the concurrency limit: {started:?}"
    );

    stack.set_rate(10_000.0).await?;
    let done = stack.wait_state(&started.id, RolloutState::Succeeded).await?;
    stack.set_rate(0.0).await?;

    for w in 1..=done.wave_count {
        let steps: Vec<_> = done.steps.iter().filter(|s| s.wave == w).collect();
        for s in &steps {
            assert_eq!(s.state, StepState::Verified as i32, "{s:?}");
            assert_eq!(s.attempts, 1, "{s:?}");
        }
        // Every region of the wave started before the first of its bakes
        // ended: none waited out another region's bake (8 virtual hours:
        // over a second of wall time even at 10000x).
        let last_start = steps
            .iter()
            .map(|s| from_ts(&s.apply_started_at))
            .max()
            .context("wave started")?;
        let first_bake_end = steps
            .iter()
            .map(|s| from_ts(&s.bake_ends_at))
            .min()
            .context("wave baked")?;
        assert!(
            last_start < first_bake_end,
            "wave {w}: a region started at {last_start}, after a bake ended at {first_bake_end}: {steps:?}"
        );
        // The first regions, as many as may apply at once, started in one
        // transaction, so at one instant.
        let mut starts: Vec<_> = steps.iter().map(|s| from_ts(&s.apply_started_at)).collect();
        starts.sort();
        let first = starts.first().copied().context("a start")?;
        let together = starts.iter().filter(|t| **t == first).count();
        assert_eq!(
            together,
            steps.len().min(usize::try_from(concurrency)?),
            "wave {w}: {starts:?}"
        );
        // Bakes that end together are verified in one health round.
        let ends: BTreeSet<_> = steps.iter().map(|s| from_ts(&s.bake_ends_at)).collect();
        let verified: BTreeSet<_> = steps.iter().map(|s| from_ts(&s.verified_at)).collect();
        assert!(
            verified.len() <= ends.len(),
            "wave {w}: bakes ending at {ends:?} verified at {verified:?}"
        );
    }
    Ok(())
}
