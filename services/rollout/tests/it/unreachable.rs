//! An agent that cannot be reached is retried as transient, for a bounded
//! number of calls in a row (`--agent-unreachable-attempts`), before its
//! step fails: a short outage is ridden out with nothing failed, a long one
//! fails the step once, with one ROLLOUT_FAILED event.

use jiff::SignedDuration;
use tilewave_proto::agent::v1::FailNextCallsRequest;
use tilewave_proto::common::v1::EventKind;
use tilewave_proto::rollout::v1::{PauseCause, RolloutState, StepState};

use crate::*;

/// Waits before retrying an unreachable agent: 20 ms doubling to 80 ms, at
/// most 5 calls in a row.
fn quick_retries() -> Vec<(String, String)> {
    [
        ("TILEWAVE_AGENT_UNREACHABLE_ATTEMPTS", "5"),
        ("TILEWAVE_AGENT_RETRY_FIRST_MS", "20"),
        ("TILEWAVE_AGENT_RETRY_CAP_MS", "80"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

async fn unavailable_next(stack: &Stack, region: &str, count: i32) -> anyhow::Result<()> {
    stack
        .faults(region)
        .await?
        .fail_next_calls(FailNextCallsRequest {
            count,
            methods: vec!["ApplyTile".into()],
            code: tonic::Code::Unavailable as i32,
            message: "injected: connection refused".into(),
        })
        .await?;
    Ok(())
}

/// A stack with quick retries, a launch over three regions started with
/// the first region's agent answering its next `unreachable` ApplyTile
/// calls UNAVAILABLE, the clock running.
async fn launch_with_unreachable(
    unreachable: i32,
) -> anyhow::Result<(Stack, Tile, Rollout, &'static [&'static str])> {
    let stack = Stack::start_with_env(1, &quick_retries()).await?;
    let tile = stack.scheduled_tile(SignedDuration::from_hours(24 * 8)).await?;
    let now = stack.now().await?;
    let regions = &REGIONS[..3];
    unavailable_next(&stack, regions[0], unreachable).await?;
    let spec = quick_spec(&tile.id, now, regions, SignedDuration::from_mins(5), 3);
    let r = stack.start_rollout(spec).await?;
    stack.set_rate(600.0).await?;
    Ok((stack, tile, r, regions))
}

/// The ROLLOUT_FAILED events written so far.
async fn rollout_failed_events(stack: &Stack) -> anyhow::Result<Vec<tilewave_proto::common::v1::Event>> {
    let events = stack.events().await?;
    Ok(events
        .into_iter()
        .filter(|e| e.kind == EventKind::RolloutFailed as i32)
        .collect())
}

#[tokio::test]
async fn an_unreachable_agent_is_retried_within_the_bound_and_the_step_succeeds() -> anyhow::Result<()> {
    // Four unreachable calls in a row: one under the bound of five.
    let (stack, tile, r, regions) = launch_with_unreachable(4).await?;
    let done = stack.wait_state(&r.id, RolloutState::Succeeded).await?;
    for s in &done.steps {
        assert_eq!(s.state, StepState::Verified as i32, "{s:?}");
        assert_eq!(s.unreachable_attempts, 0, "an answer resets the count: {s:?}");
        assert_eq!(
            s.attempts, 1,
            "retrying an unreachable agent is not a new attempt: {s:?}"
        );
    }
    let failed = rollout_failed_events(&stack).await?;
    assert!(failed.is_empty(), "{failed:?}");
    let counts = stack.apply_counts(&tile.id).await?;
    assert_eq!(
        counts.get(regions[0]).copied(),
        Some(1),
        "applied once there: {counts:?}"
    );
    Ok(())
}

#[tokio::test]
async fn an_agent_unreachable_past_the_bound_fails_its_step_once() -> anyhow::Result<()> {
    let (stack, _tile, r, regions) = launch_with_unreachable(1000).await?;
    let paused = stack
        .wait_for(&r.id, "the failure after the bound", |r| {
            r.state == RolloutState::Paused as i32 && r.pause_cause == PauseCause::Failure as i32
        })
        .await?;
    let step = paused
        .steps
        .iter()
        .find(|s| s.region == regions[0])
        .ok_or_else(|| anyhow::anyhow!("no step for {}", regions[0]))?;
    assert_eq!(step.state, StepState::Failed as i32, "{step:?}");
    assert!(
        step.last_error.contains("agent unreachable 5 times in a row"),
        "{}",
        step.last_error
    );
    assert_eq!(
        step.unreachable_attempts, 4,
        "four retried before the fifth failed it: {step:?}"
    );
    let failed = rollout_failed_events(&stack).await?;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].region, regions[0]);
    Ok(())
}
