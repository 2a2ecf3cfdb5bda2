//! A global freeze put on mid-roll-out: the apply under way finishes, then
//! no agent's apply count moves while frozen, even across a jump of the
//! clock far past the plan's end (bakes still end); lifting it resumes the
//! roll-out, which then applies every region once.

use jiff::SignedDuration;
use tilewave_proto::rollout::v1::{GetFreezeRequest, RolloutState, SetFreezeRequest, StepState};

use crate::*;

#[tokio::test]
async fn a_freeze_holds_new_applies_until_lifted() -> anyhow::Result<()> {
    let stack = Stack::start(2).await?;
    let tile = stack.scheduled_tile(SignedDuration::from_hours(24 * 8)).await?;
    let now = stack.now().await?;
    let r = stack
        .start_rollout(quick_spec(
            &tile.id,
            now,
            &REGIONS,
            SignedDuration::from_mins(10),
            2,
        ))
        .await?;
    let id = r.id.clone();
    stack.set_rate(600.0).await?;
    stack
        .wait_for(&id, "a region applied", |r| {
            r.steps.iter().any(|s| s.applied_at.is_some())
        })
        .await?;

    let mut c = stack.rollout(stack.live()).await?;
    c.set_freeze(SetFreezeRequest {
        active: true,
        reason: "incident in progress".into(),
        ..Default::default()
    })
    .await?;
    // The owner notices, and what it had under way finishes applying.
    let frozen = stack
        .wait_for(&id, "the owner notices the freeze", |r| {
            r.frozen
                && !r
                    .steps
                    .iter()
                    .any(|s| s.state == StepState::Applying as i32 && s.applied_at.is_none())
        })
        .await?;
    let before = stack.apply_counts(&tile.id).await?;
    let started_before = frozen
        .steps
        .iter()
        .filter(|s| s.apply_started_at.is_some())
        .count();
    assert!(started_before < 8, "{:?}", frozen.steps);

    // A day later (virtual), every bake under way has ended, and still
    // nothing new applied.
    stack.advance(SignedDuration::from_hours(24)).await?;
    let later = stack
        .wait_for(&id, "the bakes under way end", |r| {
            r.frozen
                && r.state == RolloutState::Running as i32
                && r.steps
                    .iter()
                    .all(|s| s.apply_started_at.is_none() || s.state == StepState::Verified as i32)
        })
        .await?;
    assert_eq!(
        stack.apply_counts(&tile.id).await?,
        before,
        "applies while frozen"
    );
    assert_eq!(
        later
            .steps
            .iter()
            .filter(|s| s.apply_started_at.is_some())
            .count(),
        started_before,
        "{:?}",
        later.steps
    );

    // Lifted: the roll-out goes on and finishes, each region applied once.
    let f = c.get_freeze(GetFreezeRequest {}).await?.into_inner().freeze;
    c.set_freeze(SetFreezeRequest {
        active: false,
        reason: "incident resolved".into(),
        etag: f.map_or(0, |f| f.etag),
        ..Default::default()
    })
    .await?;
    stack.set_rate(600.0).await?;
    let done = stack.wait_state(&id, RolloutState::Succeeded).await?;
    assert!(!done.frozen);
    let after = stack.apply_counts(&tile.id).await?;
    assert!(after.values().all(|n| *n == 1), "{after:?}");
    Ok(())
}
