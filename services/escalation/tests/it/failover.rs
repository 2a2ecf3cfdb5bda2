//! The ladder's owner killed between two levels: the next level fires
//! once, on time, from the other replica.

use jiff::SignedDuration;
use serde_json::json;
use tilewave_proto::common::v1::Owner;

use crate::*;

#[tokio::test]
async fn the_ladder_owner_killed_between_levels_the_next_level_still_fires_once_on_time() -> anyhow::Result<()>
{
    let mut stack = Stack::start(2).await?;
    sev1_policy(&stack, "sev1").await?;
    let r = &stack.receiver;
    r.expect("/primary", json!({"incident": "INC-1", "level": 1, "round": 1}));
    r.expect("/secondary", json!({"incident": "INC-1", "level": 2, "round": 1}));
    open_sev1(&stack, "riverflow").await?;
    r.wait_for_deliveries(1, WAIT).await?;

    // Kill (SIGKILL) whichever replica owns the ladder's timers.
    let store = stack.etcd.store(PREFIX).await?;
    let owner_key = keys()?.owner(tilewave_store::keys::work::ESCALATION_TIMERS);
    let owner = tilewave_testkit::eventually("an owner of the ladder's timers", WAIT, || async {
        store
            .get::<Owner>(&owner_key)
            .await
            .map_err(|e| e.to_string())?
            .map(|o| o.value.holder)
            .ok_or_else(|| "none yet".to_owned())
    })
    .await?;
    let victim: usize = owner
        .strip_prefix("escalation-")
        .and_then(|n| n.parse().ok())
        .context("owner name")?;
    stack.replicas[victim].kill()?;
    let survivor = 1 - victim;

    // Level 2 is due at minute 5: the survivor takes over and pages it.
    stack.at(SignedDuration::from_mins(5)).await?;
    r.wait_for_expected(WAIT).await?;
    let i = stack
        .client_of(survivor, tilewave_testkit::pki::RELEASE_ENGINEER)
        .await?
        .get_incident(tilewave_proto::escalation::v1::GetIncidentRequest { id: "INC-1".into() })
        .await?
        .into_inner()
        .incident
        .context("incident")?;
    assert_eq!(
        page_times(&i),
        [t0(), t0() + SignedDuration::from_mins(5)],
        "level 2 at exactly its delay, once"
    );
    assert_eq!(r.deliveries().len(), 2);
    r.assert_all_expected_and_nothing_else();
    Ok(())
}
