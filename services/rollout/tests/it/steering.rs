//! Steering a roll-out by hand: a manual hold after wave 1 (no wave-2 apply
//! until Approve names wave 1; Resume and an Approve naming another wave are
//! refused), watched from start to end; then RetryRegion, SkipRegion and
//! Resume with a shorter bake after injected apply failures.

use anyhow::Context as _;
use futures::StreamExt as _;
use jiff::SignedDuration;
use tilewave_proto::agent::v1::FailNextCallsRequest;
use tilewave_proto::common::v1::EventKind;
use tilewave_proto::rollout::v1::{
    ApproveRequest, PauseCause, ResumeRolloutRequest, RetryRegionRequest, RolloutEventType, RolloutState,
    SkipRegionRequest, StepState, WatchRolloutRequest,
};
use tonic::Code;

use crate::*;

#[tokio::test]
async fn a_hold_waits_for_approve_of_its_wave_and_the_watch_sees_it_all() -> anyhow::Result<()> {
    let stack = Stack::start(2).await?;
    let tile = stack.scheduled_tile(SignedDuration::from_hours(24 * 8)).await?;
    let now = stack.now().await?;
    let mut s = quick_spec(&tile.id, now, &REGIONS, SignedDuration::from_mins(10), 3);
    s.hold_after_waves = vec![1];
    let r = stack.start_rollout(s).await?;
    let id = r.id.clone();
    let wave2 = wave(&r, 2);
    assert!(!wave2.is_empty());

    let mut c = stack.rollout(stack.live()).await?;
    let mut watch = c
        .watch_rollout(WatchRolloutRequest {
            id: id.clone(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let collector = tokio::spawn(async move {
        let mut events = Vec::new();
        while let Some(e) = watch.next().await {
            events.push(e);
        }
        events.into_iter().collect::<Result<Vec<_>, _>>()
    });

    stack.set_rate(600.0).await?;
    let held = stack
        .wait_for(&id, "the hold after wave 1", |r| {
            r.state == RolloutState::Paused as i32
        })
        .await?;
    assert_eq!(held.pause_cause, PauseCause::Hold as i32, "{held:?}");
    assert_eq!(held.held_after_wave, 1);
    assert!(
        held.steps
            .iter()
            .all(|s| (s.wave == 1) == (s.state == StepState::Verified as i32)),
        "{:?}",
        held.steps
    );

    // Held across a day of virtual time: no wave-2 apply.
    stack.advance(SignedDuration::from_hours(24)).await?;
    stack
        .wait_for(&id, "a re-plan after the jump", |r| {
            r.plan
                .as_ref()
                .is_some_and(|p| from_ts(&p.computed_at) >= now + SignedDuration::from_hours(24))
        })
        .await?;
    for region in &wave2 {
        assert!(
            stack.entry(region, &tile.id).await?.is_none(),
            "{region} applied while held"
        );
    }
    let still = stack.get(&id).await?;
    assert_eq!(still.state, RolloutState::Paused as i32);

    let e = c
        .approve(ApproveRequest {
            id: id.clone(),
            wave: 2,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("wave 1"), "{}", e.message());
    let e = c
        .resume_rollout(ResumeRolloutRequest {
            id: id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("Approve"), "{}", e.message());
    assert_eq!(stack.get(&id).await?.etag, still.etag, "refused calls changed it");

    let approved = c
        .approve(ApproveRequest {
            id: id.clone(),
            wave: 1,
            note: "canaries look good".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .rollout
        .context("rollout")?;
    assert_eq!(approved.state, RolloutState::Running as i32);
    assert_eq!(approved.approved_waves, vec![1]);
    stack.set_rate(600.0).await?;
    let done = stack.wait_state(&id, RolloutState::Succeeded).await?;
    for s in done.steps.iter().filter(|s| s.wave == 2) {
        assert!(
            from_ts(&s.apply_started_at) >= now + SignedDuration::from_hours(24),
            "{s:?}"
        );
    }

    // The watch: a snapshot, then updates in order, then FINISHED, then the end.
    let events = tokio::time::timeout(SHORT, collector).await???;
    assert!(events.len() >= 3, "{events:?}");
    assert_eq!(events[0].r#type, RolloutEventType::Snapshot as i32);
    let last = events.last().context("events")?;
    assert_eq!(last.r#type, RolloutEventType::Finished as i32);
    assert_eq!(
        last.rollout.as_ref().map(|r| r.state),
        Some(RolloutState::Succeeded as i32)
    );
    for pair in events.windows(2) {
        assert!(pair[0].revision < pair[1].revision, "out of order: {pair:?}");
    }
    assert!(
        events[1..events.len() - 1]
            .iter()
            .all(|e| e.r#type == RolloutEventType::Update as i32)
    );
    let states: Vec<i32> = events
        .iter()
        .filter_map(|e| e.rollout.as_ref().map(|r| r.state))
        .collect();
    let paused = states.iter().position(|s| *s == RolloutState::Paused as i32);
    let resumed = states.iter().rposition(|s| *s == RolloutState::Running as i32);
    assert!(
        paused.is_some() && resumed > paused,
        "the watch saw the hold and the release: {states:?}"
    );
    Ok(())
}

#[tokio::test]
async fn retry_skip_and_resume_with_a_shorter_bake_after_apply_failures() -> anyhow::Result<()> {
    let stack = Stack::start(2).await?;
    let tile = stack.scheduled_tile(SignedDuration::from_hours(24 * 8)).await?;
    let now = stack.now().await?;
    // One at a time, so the failures come one by one.
    let spec = quick_spec(&tile.id, now, &REGIONS, SignedDuration::from_mins(20), 1);
    let r = stack.start_rollout(spec).await?;
    let id = r.id.clone();
    let wave2 = wave(&r, 2);
    assert_eq!(wave2.len(), 3, "{:?}", r.steps);
    for region in &wave2 {
        stack
            .faults(region)
            .await?
            .fail_next_calls(FailNextCallsRequest {
                count: 1,
                methods: vec!["ApplyTile".into()],
                code: tonic::Code::Internal as i32,
                message: "injected".into(),
            })
            .await?;
    }
    let mut c = stack.rollout(stack.live()).await?;
    let failed_pause = |what: &'static str| {
        let stack = &stack;
        let id = id.clone();
        async move {
            stack
                .wait_for(&id, what, |r| {
                    r.state == RolloutState::Paused as i32 && r.pause_cause == PauseCause::Failure as i32
                })
                .await
        }
    };
    let failed = |r: &Rollout| -> Vec<String> {
        r.steps
            .iter()
            .filter(|s| s.state == StepState::Failed as i32)
            .map(|s| s.region.clone())
            .collect()
    };

    // The first wave-2 region fails: paused. RetryRegion applies it again.
    stack.set_rate(600.0).await?;
    let p = failed_pause("the first failure").await?;
    stack.set_rate(0.0).await?;
    let first = failed(&p);
    assert_eq!(first.len(), 1, "{:?}", p.steps);
    let first = first[0].clone();
    let verified = p
        .steps
        .iter()
        .find(|s| s.state == StepState::Verified as i32)
        .context("a verified region")?;
    let e = c
        .retry_region(RetryRegionRequest {
            id: id.clone(),
            region: verified.region.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let retried = c
        .retry_region(RetryRegionRequest {
            id: id.clone(),
            region: first.clone(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .rollout
        .context("rollout")?;
    assert_eq!(retried.state, RolloutState::Running as i32);

    // The second fails: SkipRegion leaves it out.
    stack.set_rate(600.0).await?;
    let p = stack
        .wait_for(&id, "the second failure", |r| {
            r.state == RolloutState::Paused as i32 && failed(r).iter().any(|f| *f != first)
        })
        .await?;
    stack.set_rate(0.0).await?;
    let second = failed(&p)[0].clone();
    let skipped = c
        .skip_region(SkipRegionRequest {
            id: id.clone(),
            region: second.clone(),
            reason: "partner fixes it next week".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .rollout
        .context("rollout")?;
    assert_eq!(skipped.state, RolloutState::Running as i32);

    // The third fails: Resume with a 5 min bake brings the ETA forward.
    stack.set_rate(600.0).await?;
    let p = stack
        .wait_for(&id, "the third failure", |r| {
            r.state == RolloutState::Paused as i32 && failed(r).iter().any(|f| *f != first && *f != second)
        })
        .await?;
    stack.set_rate(0.0).await?;
    let third = failed(&p)[0].clone();
    // Bakes already under way (or over) at the third failure keep 20 min.
    let settled: Vec<String> = p
        .steps
        .iter()
        .filter(|s| [StepState::Baking as i32, StepState::Verified as i32].contains(&s.state))
        .map(|s| s.region.clone())
        .collect();
    let resumed_at = stack.now().await?;
    let resume = |bake: Option<SignedDuration>, dry_run: bool| ResumeRolloutRequest {
        id: id.clone(),
        bake: bake.map(dur),
        dry_run,
        ..Default::default()
    };
    let as_planned = c
        .resume_rollout(resume(None, true))
        .await?
        .into_inner()
        .plan
        .context("plan")?;
    let resumed = c
        .resume_rollout(resume(Some(SignedDuration::from_mins(5)), false))
        .await?
        .into_inner();
    let shorter = resumed.plan.context("plan")?;
    let (old_eta, new_eta) = (from_ts(&as_planned.planned_end), from_ts(&shorter.planned_end));
    assert!(new_eta < old_eta, "ETA {old_eta} -> {new_eta}");
    let ro = resumed.rollout.context("rollout")?;
    assert_eq!(ro.state, RolloutState::Running as i32);
    assert!(from_ts(&ro.eta) < old_eta);

    stack.set_rate(600.0).await?;
    let done = stack.wait_state(&id, RolloutState::Succeeded).await?;
    stack.set_rate(0.0).await?;
    let step = |region: &str| done.steps.iter().find(|s| s.region == region).cloned();
    assert_eq!(step(&second).map(|s| s.state), Some(StepState::Skipped as i32));
    for region in [&first, &third] {
        let s = step(region).context("step")?;
        assert_eq!(s.state, StepState::Verified as i32, "{s:?}");
        assert_eq!(s.attempts, 2, "{s:?}");
    }
    // A bake is fixed when its gate runs, after the agent acknowledged the
    // apply, with the bake the roll-out has then. Bakes under way at the
    // third failure keep 20 min; an apply started after the Resume bakes 5.
    // An apply started before it but not yet gated (acknowledged while the
    // third failure paused the roll-out, or in flight at the Resume: the
    // owner's commit races it, and the owner reads the shared virtual clock
    // a little behind the replica that served the Resume) may bake either:
    // seen in CI both ways.
    for s in done
        .steps
        .iter()
        .filter(|s| s.state == StepState::Verified as i32)
    {
        let started = from_ts(&s.apply_started_at);
        let applied = from_ts(&s.applied_at);
        let bake = from_ts(&s.bake_ends_at).duration_since(applied);
        let allowed: &[i64] = if settled.contains(&s.region) {
            &[20]
        } else if started >= resumed_at {
            &[5]
        } else {
            &[20, 5]
        };
        assert!(
            allowed.iter().any(|m| bake == SignedDuration::from_mins(*m)),
            "baked {bake}, want one of {allowed:?} min: {s:?}"
        );
    }
    assert!(
        done.steps
            .iter()
            .any(|s| s.wave == 3 && from_ts(&s.apply_started_at) >= resumed_at)
    );
    assert!(
        settled.len() >= 2 && !settled.contains(&third),
        "settled at the third failure: {settled:?}"
    );
    assert!(
        stack.entry(&second, &tile.id).await?.is_none(),
        "the skipped region got it"
    );
    for region in [&first, &third] {
        let e = stack.entry(region, &tile.id).await?.context("entry")?;
        assert_eq!(e.apply_count, 1, "{region}: {e:?}");
    }
    let failures = stack
        .events()
        .await?
        .into_iter()
        .filter(|e| e.kind == EventKind::RolloutFailed as i32 && e.rollout_id == id)
        .count();
    assert_eq!(failures, 3);
    Ok(())
}
