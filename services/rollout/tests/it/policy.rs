//! The ON_FAILURE_ROLLBACK_WAVE policy: a failed health gate in wave 2
//! rolls wave 2's regions back (their agents no longer hold the revision;
//! wave 1 keeps it), then pauses the roll-out with one failure event.

use anyhow::Context as _;
use jiff::SignedDuration;
use tilewave_proto::agent::v1::ReportUnhealthyRequest;
use tilewave_proto::common::v1::EventKind;
use tilewave_proto::rollout::v1::{OnFailure, PauseCause, RolloutState, StepState};

use crate::*;

#[tokio::test]
async fn a_failed_gate_in_wave_2_rolls_wave_2_back_and_pauses() -> anyhow::Result<()> {
    let stack = Stack::start(1).await?;
    let tile = stack.scheduled_tile(SignedDuration::from_hours(24 * 8)).await?;
    let now = stack.now().await?;
    let mut s = quick_spec(&tile.id, now, &REGIONS, SignedDuration::from_mins(10), 4);
    s.on_failure = OnFailure::RollbackWave as i32;
    let started = stack.start_rollout(s).await?;
    let first = wave(&started, 1);
    let second = wave(&started, 2);
    assert!(!first.is_empty() && second.len() >= 2, "{started:?}");
    // The last region of wave 2 turns out unhealthy once applied.
    let bad = second.last().context("a wave-2 region")?.clone();
    stack
        .faults(&bad)
        .await?
        .report_unhealthy(ReportUnhealthyRequest {
            tile_id: tile.id.clone(),
            unhealthy: true,
            error_rate: 0.4,
            message: "partner /connect returns 503".into(),
        })
        .await?;

    stack.set_rate(600.0).await?;
    let paused = stack
        .wait_for(&started.id, "the wave rolled back, then paused", |r| {
            r.state == RolloutState::Paused as i32
        })
        .await?;
    stack.set_rate(0.0).await?;
    assert_eq!(paused.pause_cause, PauseCause::Failure as i32, "{paused:?}");
    assert!(paused.paused_reason.contains(&bad), "{}", paused.paused_reason);
    for step in &paused.steps {
        if step.wave == 1 {
            assert_eq!(step.state, StepState::Verified as i32, "{step:?}");
        } else if step.wave == 2 {
            assert!(
                step.state == StepState::RolledBack as i32 || step.state == StepState::Pending as i32,
                "wave 2 rolled back: {step:?}"
            );
        }
    }
    assert!(
        paused
            .steps
            .iter()
            .any(|s| s.region == bad && s.state == StepState::RolledBack as i32),
        "{:?}",
        paused.steps
    );
    // At the agents: wave 1 keeps the revision, wave 2 holds nothing.
    for region in &first {
        let e = stack.entry(region, &tile.id).await?;
        assert_eq!(e.map(|e| e.revision), Some(started.revision), "{region}");
    }
    for region in &second {
        let e = stack.entry(region, &tile.id).await?;
        assert!(e.is_none(), "{region} still holds {e:?}");
    }
    let failures: Vec<_> = stack
        .events()
        .await?
        .into_iter()
        .filter(|e| e.kind == EventKind::RolloutFailed as i32 && e.rollout_id == started.id)
        .collect();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].region, bad);
    Ok(())
}
