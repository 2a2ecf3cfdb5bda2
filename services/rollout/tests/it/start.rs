//! The start and the end of a roll-out as one replica makes them (issue
//! 18's overhead): the owner key is claimed while the roll-out is created
//! (and let go when the creation is refused), and a roll-out whose last
//! applies verify everywhere (a zero bake) succeeds in the same write as
//! those applies, with the tile ROLLED_OUT first.

use jiff::SignedDuration;
use tilewave_proto::common::v1::TileState;
use tilewave_proto::rollout::v1::{ListRolloutsRequest, RolloutState};
use tonic::Code;

use crate::*;

#[tokio::test]
async fn two_starts_at_once_make_one_roll_out_driven_to_the_end_in_one_last_write() -> anyhow::Result<()> {
    let stack = Stack::start(1).await?;
    let tile = stack.scheduled_tile(SignedDuration::from_hours(24 * 8)).await?;
    let now = stack.now().await?;
    let spec = quick_spec(&tile.id, now, &REGIONS[..3], SignedDuration::ZERO, 3);

    // Both may pass the checks before either is written: both claim the
    // same id while creating it, one creation wins, and whichever claim
    // holds the key, the winner is driven.
    let (a, b) = futures::join!(stack.start_rollout(spec.clone()), stack.start_rollout(spec));
    let (won, lost) = match (a, b) {
        (Ok(r), Err(e)) | (Err(e), Ok(r)) => (r, e),
        (a, b) => anyhow::bail!("exactly one start should win: {a:?} / {b:?}"),
    };
    let status = lost.downcast_ref::<tonic::Status>().map(|s| s.code());
    assert_eq!(status, Some(Code::FailedPrecondition), "{lost:#}");

    let done = stack.wait_state(&won.id, RolloutState::Succeeded).await?;
    assert_eq!(stack.tile(&tile.id).await?.state, TileState::RolledOut as i32);
    let all = stack
        .rollout(0)
        .await?
        .list_rollouts(ListRolloutsRequest {
            tile_id: tile.id.clone(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .rollouts;
    assert_eq!(all.len(), 1, "{all:#?}");
    eventually("no owner key left", WAIT, || async {
        stack.owner_of(&won.id).await.ok()?.is_none().then_some(())
    })
    .await?;

    // The last wave's acknowledgements and the success: one audited write.
    let records: Vec<_> = stack
        .store
        .audit_records()
        .await?
        .into_iter()
        .filter(|a| a.object_kind == "rollout" && a.object_id == won.id)
        .collect();
    let succeeded: Vec<_> = records.iter().filter(|a| a.action == "Succeeded").collect();
    assert_eq!(succeeded.len(), 1, "{records:#?}");
    let last_wave = wave(&done, done.wave_count);
    let summary = &succeeded[0].summary;
    assert!(
        summary.contains(" applied in ") && last_wave.iter().all(|r| summary.contains(r.as_str())),
        "the success is not the write of the last applies ({last_wave:?}): {summary}"
    );
    assert_eq!(
        records.iter().filter(|a| a.action == "Started").count(),
        1,
        "{records:#?}"
    );
    Ok(())
}
