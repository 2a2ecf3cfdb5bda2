//! Bad input: each a clear error that changes nothing. Then an unhealthy
//! agent pauses a roll-out with exactly one failure event, and the pause
//! makes the deadline unreachable: one DEADLINE_AT_RISK event saying by how
//! much and what would fix it.

use anyhow::Context as _;
use jiff::SignedDuration;
use tilewave_proto::agent::v1::ReportUnhealthyRequest;
use tilewave_proto::clock::v1::{AdvanceRequest, SetRequest};
use tilewave_proto::common::v1::EventKind;
use tilewave_proto::registry::v1::ImportPartnerConfigRequest;
use tilewave_proto::rollout::v1::{
    AbortRolloutRequest, PauseCause, PauseRolloutRequest, PlanProblemKind, PlanRolloutRequest, RolloutState,
    SetFreezeRequest, StartRolloutRequest,
};
use tilewave_testkit::eventually;
use tonic::Code;

use crate::*;

#[tokio::test]
async fn bad_input_is_refused_and_a_failed_gate_pauses_with_one_event() -> anyhow::Result<()> {
    let stack = Stack::start(2).await?;
    let mut a = stack.rollout(0).await?;
    let mut b = stack.rollout(1).await?;
    let now = stack.now().await?;

    // Without sign-offs or a GA date.
    let mut reg = stack.registry().await?;
    reg.import_partner_config(ImportPartnerConfigRequest {
        config_json: RIVERFLOW.into(),
        id: "riverflow-unsigned".into(),
        ..Default::default()
    })
    .await?;
    let before = stack.dump().await?;
    let e = a
        .start_rollout(StartRolloutRequest {
            spec: Some(spec("riverflow-unsigned", now)),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(
        e.message().contains("GA date") && e.message().contains("sign-offs"),
        "{}",
        e.message()
    );
    assert_eq!(stack.dump().await?, before);
    drop(reg);

    let tile = stack.scheduled_tile(SignedDuration::from_hours(24 * 8)).await?;
    let before = stack.dump().await?;

    // An unknown region.
    let mut s = spec(&tile.id, now);
    s.regions.push("aws:mars-north-1".into());
    let e = a
        .start_rollout(StartRolloutRequest {
            spec: Some(s),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("aws:mars-north-1"), "{}", e.message());

    // A plan that cannot fit: three waves of three-day bakes.
    let mut s = spec(&tile.id, now);
    s.bake = Some(dur(SignedDuration::from_hours(72)));
    let e = a
        .start_rollout(StartRolloutRequest {
            spec: Some(s.clone()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(
        e.message().contains("cannot fit") && e.message().contains("bake"),
        "{}",
        e.message()
    );
    let plan = a
        .plan_rollout(PlanRolloutRequest { spec: Some(s) })
        .await?
        .into_inner()
        .plan
        .context("plan")?;
    assert!(!plan.feasible);
    let p = &plan.problems[0];
    assert_eq!(p.kind, PlanProblemKind::DeadlineMissed as i32);
    assert!(p.late_by.is_some() && !p.suggestions.is_empty(), "{p:?}");

    // The freeze.
    a.set_freeze(SetFreezeRequest {
        active: true,
        reason: "test".into(),
        ..Default::default()
    })
    .await?;
    let e = b
        .start_rollout(StartRolloutRequest {
            spec: Some(spec(&tile.id, now)),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("freeze"), "{}", e.message());
    let f = a
        .get_freeze(tilewave_proto::rollout::v1::GetFreezeRequest {})
        .await?
        .into_inner()
        .freeze
        .context("freeze")?;
    a.set_freeze(SetFreezeRequest {
        active: false,
        etag: f.etag,
        ..Default::default()
    })
    .await?;

    // The clock never moves backwards.
    let mut clock = stack.clock(0).await?;
    let e = clock
        .set(SetRequest {
            to: Some(ts(now - SignedDuration::from_hours(1))),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("forward"), "{}", e.message());
    let e = clock
        .advance(AdvanceRequest {
            by: Some(dur(SignedDuration::from_hours(-1))),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert_eq!(stack.now().await?, now);
    let after: BTreeMap<_, _> = stack
        .dump()
        .await?
        .into_iter()
        .filter(|(k, _)| !k.contains("/audit/") && !k.contains("/audit-index") && !k.ends_with("/freeze"))
        .collect();
    let before: BTreeMap<_, _> = before
        .into_iter()
        .filter(|(k, _)| !k.contains("/audit/") && !k.contains("/audit-index"))
        .collect();
    assert_eq!(after, before, "refused calls changed state");

    // A canary that is unhealthy; a deadline 3 h away (the plan needs about 2 h).
    stack
        .faults("gcp:asia-northeast1")
        .await?
        .report_unhealthy(ReportUnhealthyRequest {
            tile_id: tile.id.clone(),
            unhealthy: true,
            error_rate: 0.5,
            message: "partner /connect returns 500".into(),
        })
        .await?;
    let mut s = spec(&tile.id, now);
    s.deadline = Some(ts(now + SignedDuration::from_hours(3)));
    // Two StartRollout at once, on both replicas: exactly one wins.
    let (ra, rb) = tokio::join!(
        a.start_rollout(StartRolloutRequest {
            spec: Some(s.clone()),
            ..Default::default()
        }),
        b.start_rollout(StartRolloutRequest {
            spec: Some(s.clone()),
            ..Default::default()
        }),
    );
    let wins = [ra.is_ok(), rb.is_ok()].iter().filter(|w| **w).count();
    assert_eq!(wins, 1, "{ra:?} {rb:?}");
    let loser = ra.as_ref().err().or(rb.as_ref().err()).context("a loser")?;
    assert_eq!(loser.code(), Code::FailedPrecondition, "{loser:?}");
    let r = ra.or(rb)?.into_inner().rollout.context("rollout")?;
    let id = r.id.clone();

    stack.set_rate(600.0).await?;
    let paused = eventually("the failed gate pauses the roll-out", WAIT, || async {
        let r = stack.get(&id).await.ok()?;
        (r.state == RolloutState::Paused as i32).then_some(r)
    })
    .await?;
    assert_eq!(paused.pause_cause, PauseCause::Failure as i32);
    assert!(
        paused.paused_reason.contains("gcp:asia-northeast1"),
        "{}",
        paused.paused_reason
    );

    // The pause makes the deadline unreachable: one at-risk event.
    let risk = eventually("a DEADLINE_AT_RISK event", WAIT, || async {
        let events = stack.events().await.ok()?;
        events
            .into_iter()
            .find(|e| e.kind == EventKind::DeadlineAtRisk as i32 && e.rollout_id == id)
    })
    .await?;
    assert!(risk.attributes.contains_key("late_by"), "{risk:?}");
    assert!(risk.message.contains("past the deadline"), "{}", risk.message);
    let r = stack.get(&id).await?;
    assert!(r.at_risk_by.is_some());
    let events = stack.events().await?;
    let failures: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventKind::RolloutFailed as i32)
        .collect();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].region, "gcp:asia-northeast1");
    assert_eq!(
        events
            .iter()
            .filter(|e| e.kind == EventKind::DeadlineAtRisk as i32)
            .count(),
        1,
        "one event per crossing"
    );

    // Abort, then pausing the finished roll-out is refused and changes nothing.
    let aborted = a
        .abort_rollout(AbortRolloutRequest {
            id: id.clone(),
            reason: "test".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .rollout
        .context("rollout")?;
    assert_eq!(aborted.state, RolloutState::Aborted as i32);
    stack.set_rate(0.0).await?;
    // The lifecycle loop moves the tile back (not the handler).
    eventually("the aborted launch's tile back to SCHEDULED", WAIT, || async {
        let t = stack.tile(&tile.id).await.ok()?;
        (t.state == tilewave_proto::common::v1::TileState::Scheduled as i32).then_some(())
    })
    .await?;
    let before = stack.dump().await?;
    let e = b
        .pause_rollout(PauseRolloutRequest {
            id: id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("ABORTED"), "{}", e.message());
    assert_eq!(stack.dump().await?, before);
    Ok(())
}
