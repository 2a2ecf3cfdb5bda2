//! The GA scheduler, process-level on the virtual clock (t0 is Tuesday
//! 2026-12-01 00:00 UTC): ScheduleGa's choice and its refusals, many tiles
//! from two replicas racing without overfilling a slot (first ready first
//! served), the scheduler starting roll-outs by itself (once, across a
//! kill -9 of its owner), holds, a blackout added after scheduling raising
//! DEADLINE_AT_RISK before the miss, and the pre-flight refusing a start
//! when a planned region's agent is down, the tile's CURRENT partner
//! credential was not verified in every planned region, or an incident
//! during the launch window would page nobody.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use tilewave_proto::common::v1::{EventKind, LocalTime, Weekday};
use tilewave_proto::rollout::v1::edit_launch_calendar_request::Edit;
use tilewave_proto::rollout::v1::{
    EditLaunchCalendarRequest, GetLaunchCalendarRequest, HoldLaunchRequest, LaunchBlackout, LaunchRule,
    ListLaunchesRequest, ListRolloutsRequest, Rollout, ScheduleGaRequest, ScheduleGaResponse,
};
use tilewave_testkit::eventually;
use tonic::Code;

use crate::*;

const EVERY_DAY: [Weekday; 7] = [
    Weekday::Monday,
    Weekday::Tuesday,
    Weekday::Wednesday,
    Weekday::Thursday,
    Weekday::Friday,
    Weekday::Saturday,
    Weekday::Sunday,
];

fn days(n: i64) -> SignedDuration {
    SignedDuration::from_hours(24 * n)
}

/// A stack whose region catalog is the eight regions with agents (as
/// `dev up --regions` makes it), so that default launch plans cover them.
/// The credentials and on-call pre-flights are off: these tests have no
/// credentials or escalation service (two tests turn one on with
/// [`stack_checking`]).
async fn stack(replicas: usize) -> Result<Stack> {
    stack_checking(replicas, false, false).await
}

/// [`stack`] with the credentials and on-call pre-flights as given (both
/// on by default in the service).
async fn stack_checking(replicas: usize, credentials: bool, oncall: bool) -> Result<Stack> {
    Stack::start_with_env(
        replicas,
        &[
            ("TILEWAVE_REGIONS".to_owned(), REGIONS.join(",")),
            (
                "TILEWAVE_PREFLIGHT_CREDENTIALS".to_owned(),
                credentials.to_string(),
            ),
            ("TILEWAVE_PREFLIGHT_ONCALL".to_owned(), oncall.to_string()),
        ],
    )
    .await
}

/// Adds a daily 17:00 UTC launch of `capacity` tiles.
async fn daily_launches(stack: &Stack, capacity: i32) -> Result<()> {
    edit(
        stack,
        Edit::AddRule(LaunchRule {
            name: "daily".into(),
            weekdays: EVERY_DAY.iter().map(|d| *d as i32).collect(),
            time: Some(LocalTime { hour: 17, minute: 0 }),
            time_zone: "UTC".into(),
            capacity,
        }),
    )
    .await
}

async fn edit(stack: &Stack, e: Edit) -> Result<()> {
    let mut c = stack.rollout(stack.live()).await?;
    let etag = c
        .get_launch_calendar(GetLaunchCalendarRequest { upcoming: 0 })
        .await?
        .into_inner()
        .calendar
        .map_or(0, |c| c.etag);
    c.edit_launch_calendar(EditLaunchCalendarRequest { etag, edit: Some(e) })
        .await?;
    Ok(())
}

fn schedule(tile: &str, commit: bool) -> ScheduleGaRequest {
    ScheduleGaRequest {
        tile_id: tile.into(),
        commit,
        gtm_override: "go-to-market tracked outside this test".into(),
        ..Default::default()
    }
}

/// Every roll-out of a tile.
async fn rollouts_of(stack: &Stack, tile: &str) -> Result<Vec<Rollout>> {
    Ok(stack
        .rollout(stack.live())
        .await?
        .list_rollouts(ListRolloutsRequest {
            tile_id: tile.into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .rollouts)
}

#[tokio::test]
async fn schedule_ga_explains_its_choice_and_refuses_bad_input() -> anyhow::Result<()> {
    let stack = stack(1).await?;
    let mut c = stack.rollout(0).await?;
    let tile = stack.signed_off(RIVERFLOW, "riverflow").await?;

    // No launch day yet: refused with the command that adds one.
    let before = stack.dump().await?;
    let e = c.schedule_ga(schedule(&tile.id, true)).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(
        e.message().contains("tilewave calendar add-rule"),
        "{}",
        e.message()
    );
    assert_eq!(stack.dump().await?, before);

    daily_launches(&stack, 2).await?;
    // Unknown tile, a malformed id, not ready: clear refusals, nothing changed.
    let before = stack.dump().await?;
    let e = c.schedule_ga(schedule("no-such-tile", true)).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let e = c.schedule_ga(schedule("Not A Slug!", true)).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("tile_id"), "{}", e.message());
    let mut reg = stack.registry().await?;
    let draft = reg
        .import_partner_config(ImportPartnerConfigRequest {
            config_json: RIVERFLOW.into(),
            id: "draft-tile".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .tile
        .context("tile")?;
    let before = {
        let _ = before;
        stack.dump().await?
    };
    let e = c.schedule_ga(schedule(&draft.id, true)).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(
        e.message().contains("not ready") && e.message().contains("set-test-workspace"),
        "{}",
        e.message()
    );
    let e = c
        .hold_launch(HoldLaunchRequest {
            tile_id: tile.id.clone(),
            hold: true,
            reason: String::new(),
            etag: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("reason"), "{}", e.message());
    assert_eq!(stack.dump().await?, before);

    // A proposal: the first slot at least 7 days ahead; every earlier one
    // listed as under 7 days away; nothing written.
    let p = c.schedule_ga(schedule(&tile.id, false)).await?.into_inner();
    let ga = from_ts(&p.ga_time);
    assert_eq!(ga, "2026-12-08T17:00:00Z".parse::<Timestamp>()?);
    assert!(!p.committed);
    assert_eq!(p.skipped.len(), 7, "{:?}", p.skipped);
    assert!(p.skipped.iter().all(|s| s.kind == "lead-time"), "{:?}", p.skipped);
    assert!(p.explanation.contains("before the deadline"), "{}", p.explanation);
    let plan = p.plan.context("plan")?;
    assert!(plan.feasible);
    assert!(from_ts(&plan.planned_end) <= ga - SignedDuration::from_hours(24));
    assert_eq!(stack.dump().await?, before);

    // A blackout over the first two slots: skipped with its reason.
    edit(
        &stack,
        Edit::AddBlackout(LaunchBlackout {
            start: Some(ts("2026-12-08T00:00:00Z".parse()?)),
            end: Some(ts("2026-12-10T00:00:00Z".parse()?)),
            reason: "release freeze".into(),
        }),
    )
    .await?;
    let p = c.schedule_ga(schedule(&tile.id, true)).await?.into_inner();
    assert!(p.committed);
    assert_eq!(from_ts(&p.ga_time), "2026-12-10T17:00:00Z".parse::<Timestamp>()?);
    let blackouts: Vec<&str> = p
        .skipped
        .iter()
        .filter(|s| s.kind == "blackout")
        .map(|s| s.reason.as_str())
        .collect();
    assert_eq!(blackouts.len(), 2, "{:?}", p.skipped);
    assert!(blackouts[0].contains("release freeze"), "{blackouts:?}");
    let t = stack.tile(&tile.id).await?;
    assert_eq!(t.state(), tilewave_proto::common::v1::TileState::Scheduled);
    assert_eq!(from_ts(&t.ga_time), from_ts(&p.ga_time));

    // Scheduling it again is refused (it is scheduled: `ga move`).
    let e = c.schedule_ga(schedule(&tile.id, true)).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("tilewave ga move"), "{}", e.message());

    // A blackout over every slot of the search: an explicit "no slot".
    let other = stack.signed_off(RIVERFLOW, "other-tile").await?;
    edit(
        &stack,
        Edit::AddBlackout(LaunchBlackout {
            start: Some(ts("2026-12-10T00:00:00Z".parse()?)),
            end: Some(ts("2028-01-01T00:00:00Z".parse()?)),
            reason: "everything frozen".into(),
        }),
    )
    .await?;
    let before = stack.dump().await?;
    let p = c.schedule_ga(schedule(&other.id, true)).await?.into_inner();
    assert!(!p.committed && p.ga_time.is_none());
    assert!(p.explanation.starts_with("no slot before"), "{}", p.explanation);
    assert!(p.searched_until.is_some());
    assert_eq!(stack.dump().await?, before);
    Ok(())
}

#[tokio::test]
async fn fifty_ready_tiles_from_two_racing_replicas_fill_slots_first_ready_first_served() -> anyhow::Result<()>
{
    let stack = stack(2).await?;
    daily_launches(&stack, 8).await?;
    // 50 tiles become ready one virtual minute apart, in reverse id order,
    // so that "first ready" is not "first by id".
    let mut ready_order = Vec::new();
    for i in (0..50).rev() {
        let id = format!("tile-{i:02}");
        stack.signed_off(RIVERFLOW, &id).await?;
        stack.advance(SignedDuration::from_mins(1)).await?;
        ready_order.push(id);
    }
    let now = stack.now().await?;
    let all = |c: &mut RolloutServiceClient<Channel>| {
        let mut c = c.clone();
        async move {
            c.schedule_ga(ScheduleGaRequest {
                all_ready: true,
                commit: true,
                gtm_override: "tracked elsewhere".into(),
                ..Default::default()
            })
            .await
            .map(|r| r.into_inner())
        }
    };
    let mut a = stack.rollout(0).await?;
    let mut b = stack.rollout(1).await?;
    let (ra, rb) = tokio::join!(all(&mut a), all(&mut b));
    let (ra, rb): (ScheduleGaResponse, ScheduleGaResponse) = (ra?, rb?);
    let committed = ra.batch.iter().chain(&rb.batch).filter(|x| x.committed).count();
    assert_eq!(
        committed, 50,
        "every tile scheduled exactly once between the two replicas"
    );

    let mut per_slot: BTreeMap<Timestamp, Vec<String>> = BTreeMap::new();
    let mut ga_of = BTreeMap::new();
    for id in &ready_order {
        let t = stack.tile(id).await?;
        let ga = from_ts(&t.ga_time);
        assert!(ga >= now + days(7), "{id}: GA {ga} under 7 days ahead of {now}");
        per_slot.entry(ga).or_default().push(id.clone());
        ga_of.insert(id.clone(), ga);
    }
    for (slot, tiles) in &per_slot {
        assert!(tiles.len() <= 8, "slot {slot} overfilled: {tiles:?}");
    }
    assert_eq!(
        per_slot.len(),
        7,
        "50 tiles over 7 daily slots of 8: {per_slot:?}"
    );
    // First ready, first served: GA never earlier for a tile ready later.
    for w in ready_order.windows(2) {
        assert!(
            ga_of[&w[0]] <= ga_of[&w[1]],
            "{} (ready first) got {} but {} got {}",
            w[0],
            ga_of[&w[0]],
            w[1],
            ga_of[&w[1]]
        );
    }
    // Every launch's plan ends at least 24 h before its GA.
    let list = stack
        .rollout(0)
        .await?
        .list_launches(ListLaunchesRequest {
            page: Some(tilewave_proto::common::v1::PageRequest {
                page_size: 100,
                page_token: String::new(),
            }),
            ..Default::default()
        })
        .await?
        .into_inner();
    assert_eq!(list.launches.len(), 50);
    for l in &list.launches {
        let slack = l.slack.as_ref().map_or(-1, |d| d.seconds);
        assert!(slack >= 0, "{}: slack {slack}s", l.tile_id);
    }
    let first_slot = *per_slot.keys().next().context("a slot")?;
    let first = list
        .slots
        .iter()
        .find(|s| from_ts(&s.at) == first_slot)
        .context("first slot listed")?;
    assert_eq!((first.booked, first.capacity), (8, 8));

    // The scheduler starts the first slot's roll-outs at GA - 7 days, and
    // no other.
    stack
        .advance(stack.now().await?.duration_until(first_slot - days(7)) + SignedDuration::from_mins(1))
        .await?;
    let first_tiles = per_slot[&first_slot].clone();
    eventually("the first slot's launches started", WAIT, || async {
        for id in &first_tiles {
            if rollouts_of(&stack, id).await.ok()?.len() != 1 {
                return None;
            }
        }
        Some(())
    })
    .await?;
    let started: usize = {
        let mut n = 0;
        for id in &ready_order {
            n += rollouts_of(&stack, id).await?.len();
        }
        n
    };
    assert_eq!(started, 8, "only the first slot's eight launches are due");
    Ok(())
}

#[tokio::test]
async fn the_scheduler_starts_launches_once_across_a_kill_and_honours_holds() -> anyhow::Result<()> {
    let mut stack = stack(2).await?;
    daily_launches(&stack, 4).await?;
    let mut c = stack.rollout(0).await?;
    for id in ["alpha", "beta"] {
        stack.signed_off(RIVERFLOW, id).await?;
        assert!(c.schedule_ga(schedule(id, true)).await?.into_inner().committed);
    }
    c.hold_launch(HoldLaunchRequest {
        tile_id: "beta".into(),
        hold: true,
        reason: "partner asked to wait".into(),
        etag: 0,
    })
    .await?;
    // ScheduleGa created nothing in the rollout service.
    assert!(rollouts_of(&stack, "alpha").await?.is_empty());

    let owner = eventually("a scheduler owner", SHORT, || async {
        stack
            .owner_of_work(tilewave_store::keys::work::SCHEDULER)
            .await
            .ok()
            .flatten()
    })
    .await?;
    stack.mark_down(owner);
    stack.rollouts[owner].kill()?;
    let survivor = 1 - owner;
    let ga = from_ts(&stack.tile("alpha").await?.ga_time);
    let now = stack.now().await?;
    stack
        .advance(now.duration_until(ga - days(7)) + SignedDuration::from_mins(1))
        .await?;

    let r = eventually("the survivor starts alpha's launch", WAIT, || async {
        let rs = rollouts_of(&stack, "alpha").await.ok()?;
        rs.into_iter().next()
    })
    .await?;
    assert_eq!(r.created_by, "system:scheduler");
    assert_eq!(
        stack.owner_of_work(tilewave_store::keys::work::SCHEDULER).await?,
        Some(survivor)
    );
    // Held: beta is listed as held and not started, while alpha runs.
    let list = stack
        .rollout(survivor)
        .await?
        .list_launches(ListLaunchesRequest::default())
        .await?
        .into_inner();
    let beta = list
        .launches
        .iter()
        .find(|l| l.tile_id == "beta")
        .context("beta")?;
    assert!(
        beta.held && beta.hold_reason == "partner asked to wait",
        "{beta:?}"
    );
    assert!(rollouts_of(&stack, "beta").await?.is_empty());
    // Released: started.
    stack
        .rollout(survivor)
        .await?
        .hold_launch(HoldLaunchRequest {
            tile_id: "beta".into(),
            hold: false,
            reason: String::new(),
            etag: 0,
        })
        .await?;
    eventually("beta starts once released", WAIT, || async {
        (rollouts_of(&stack, "beta").await.ok()?.len() == 1).then_some(())
    })
    .await?;
    // Never two launch roll-outs of one tile.
    stack.advance(SignedDuration::from_hours(2)).await?;
    assert_eq!(rollouts_of(&stack, "alpha").await?.len(), 1);
    assert_eq!(rollouts_of(&stack, "beta").await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_blackout_added_after_scheduling_raises_at_risk_before_the_miss() -> anyhow::Result<()> {
    let stack = stack(1).await?;
    daily_launches(&stack, 1).await?;
    let mut c = stack.rollout(0).await?;
    stack.signed_off(RIVERFLOW, "early").await?;
    stack.signed_off(RIVERFLOW, "late").await?;
    assert!(
        c.schedule_ga(schedule("early", true))
            .await?
            .into_inner()
            .committed
    );
    let mut later = schedule("late", true);
    later.not_before = Some(ts("2026-12-14T00:00:00Z".parse()?));
    assert!(c.schedule_ga(later).await?.into_inner().committed);
    let early_ga = from_ts(&stack.tile("early").await?.ga_time);
    let late_ga = from_ts(&stack.tile("late").await?.ga_time);
    assert_eq!(early_ga, "2026-12-08T17:00:00Z".parse::<Timestamp>()?);
    assert_eq!(late_ga, "2026-12-14T17:00:00Z".parse::<Timestamp>()?);
    // Nothing at risk yet.
    let at_risk = |events: Vec<tilewave_proto::common::v1::Event>| {
        events
            .into_iter()
            .filter(|e| e.kind == EventKind::DeadlineAtRisk as i32)
            .collect::<Vec<_>>()
    };
    assert!(at_risk(stack.events().await?).is_empty());

    // A freeze over early's whole roll-out week, past its deadline (but
    // not over late's week).
    edit(
        &stack,
        Edit::AddBlackout(LaunchBlackout {
            start: Some(ts("2026-12-01T12:00:00Z".parse()?)),
            end: Some(ts("2026-12-07T18:00:00Z".parse()?)),
            reason: "incident freeze".into(),
        }),
    )
    .await?;
    let events = eventually("DEADLINE_AT_RISK for early, and as certain", WAIT, || async {
        let e = at_risk(stack.events().await.ok()?);
        (e.len() >= 2).then_some(e)
    })
    .await?;
    assert!(events.iter().all(|e| e.tile_id == "early"), "{events:?}");
    let certain: Vec<_> = events
        .iter()
        .filter(|e| e.attributes.get("certain").map(String::as_str) == Some("true"))
        .collect();
    assert_eq!(certain.len(), 1, "{events:?}");
    // Before the miss: raised while the clock is still before early's start.
    let start = early_ga - days(7);
    for e in &events {
        assert!(
            from_ts(&e.at) < start,
            "raised at {:?}, after the start {start}",
            e.at
        );
        assert!(e.message.contains("early"), "{}", e.message);
    }
    // Once each: later passes add none.
    stack.advance(SignedDuration::from_mins(30)).await?;
    eventually("a few scheduler passes", SHORT, || async { Some(()) }).await?;
    assert_eq!(at_risk(stack.events().await?).len(), 2);
    Ok(())
}

#[tokio::test]
async fn the_preflight_refuses_a_start_when_a_planned_regions_agent_is_down() -> anyhow::Result<()> {
    let mut stack = stack(1).await?;
    daily_launches(&stack, 2).await?;
    let mut c = stack.rollout(0).await?;
    stack.signed_off(RIVERFLOW, "riverflow").await?;
    assert!(
        c.schedule_ga(schedule("riverflow", true))
            .await?
            .into_inner()
            .committed
    );
    let down = "aws:eu-west-1";
    stack.agents.get_mut(down).context("agent")?.kill()?;
    let agent_key = stack.store.keys().agent(down);
    eventually("the agent's registration lapses", WAIT, || async {
        stack
            .store
            .get::<tilewave_proto::agent::v1::AgentInfo>(&agent_key)
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await?;
    let ga = from_ts(&stack.tile("riverflow").await?.ga_time);
    let now = stack.now().await?;
    stack
        .advance(now.duration_until(ga - days(7)) + SignedDuration::from_mins(1))
        .await?;
    let event = eventually("PREFLIGHT_FAILED naming the region", WAIT, || async {
        stack
            .events()
            .await
            .ok()?
            .into_iter()
            .find(|e| e.kind == EventKind::PreflightFailed as i32)
    })
    .await?;
    assert!(event.message.contains(down), "{}", event.message);
    assert_eq!(event.tile_id, "riverflow");
    assert!(rollouts_of(&stack, "riverflow").await?.is_empty());
    let list = c
        .list_launches(ListLaunchesRequest::default())
        .await?
        .into_inner();
    let l = list.launches.first().context("the launch")?;
    assert!(l.blocked.contains(down), "{l:?}");
    Ok(())
}

/// A stack with the given pre-flights (credentials, on-call), riverflow
/// signed off and given the first daily slot, and the clock a minute past
/// its start (GA - 7 days): the scheduler's pre-flight runs now.
async fn due_riverflow(credentials: bool, oncall: bool) -> Result<(Stack, RolloutServiceClient<Channel>)> {
    let stack = stack_checking(1, credentials, oncall).await?;
    daily_launches(&stack, 2).await?;
    let mut c = stack.rollout(0).await?;
    stack.signed_off(RIVERFLOW, "riverflow").await?;
    anyhow::ensure!(
        c.schedule_ga(schedule("riverflow", true))
            .await?
            .into_inner()
            .committed,
        "riverflow got no slot"
    );
    let ga = from_ts(&stack.tile("riverflow").await?.ga_time);
    let now = stack.now().await?;
    stack
        .advance(now.duration_until(ga - days(7)) + SignedDuration::from_mins(1))
        .await?;
    Ok((stack, c))
}

/// Waits until riverflow's launch is listed as blocked with a reason
/// containing `says`; the reason.
async fn blocked_saying(c: &RolloutServiceClient<Channel>, says: &str) -> Result<String> {
    eventually(says, WAIT, || {
        let mut c = c.clone();
        async move {
            let list = c
                .list_launches(ListLaunchesRequest::default())
                .await
                .ok()?
                .into_inner();
            let l = list.launches.into_iter().find(|l| l.tile_id == "riverflow")?;
            l.blocked.contains(says).then_some(l.blocked)
        }
    })
    .await
}

/// Stores what the credentials service would after a rotation to version 1
/// of `tile`'s partner credential that verified `verified` (promoted), or
/// only the PENDING version when `verified` is `None`.
async fn credential_state(stack: &Stack, tile: &str, verified: Option<&[&str]>) -> Result<()> {
    use tilewave_proto::credentials::v1::{
        Credential, CredentialKind, CredentialStage, CredentialVersions, RegionRotation, RegionRotationState,
        Rotation, RotationState,
    };
    let kind = "partner-basic-auth";
    let keys = stack.store.keys();
    let stage = if verified.is_some() {
        CredentialStage::Current
    } else {
        CredentialStage::Pending
    };
    let versions = CredentialVersions {
        tile_id: tile.into(),
        kind: CredentialKind::PartnerBasicAuth as i32,
        versions: vec![Credential {
            id: format!("{tile}/{kind}/1"),
            tile_id: tile.into(),
            kind: CredentialKind::PartnerBasicAuth as i32,
            version: 1,
            fingerprint: "0123abcd...ef01".into(),
            username: "tilewave".into(),
            stage: stage as i32,
            ..Default::default()
        }],
        etag: 0,
    };
    let vkey = keys.credential_versions(tile, kind);
    let mut change = match stack.store.get::<CredentialVersions>(&vkey).await? {
        Some(v) => tilewave_store::Change::new().update(vkey, &versions, v.etag),
        None => tilewave_store::Change::new().create(vkey, &versions),
    };
    if let Some(verified) = verified {
        let rotation = Rotation {
            id: format!("{tile}-rotation-1"),
            tile_id: tile.into(),
            kind: CredentialKind::PartnerBasicAuth as i32,
            state: RotationState::Promoted as i32,
            to_version: 1,
            regions: REGIONS
                .iter()
                .map(|r| RegionRotation {
                    region: (*r).into(),
                    wave: 1,
                    state: if verified.contains(r) {
                        RegionRotationState::Verified
                    } else {
                        RegionRotationState::Pending
                    } as i32,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let rkey = keys.credential_rotation(&rotation.id);
        change = match stack.store.get::<Rotation>(&rkey).await? {
            Some(v) => change.update(rkey, &rotation, v.etag),
            None => change.create(rkey, &rotation),
        };
    }
    stack
        .store
        .commit(change, &tilewave_store::Actor::system("credentials-test"))
        .await?;
    Ok(())
}

#[tokio::test]
async fn the_preflight_waits_for_the_current_credential_verified_in_every_planned_region()
-> anyhow::Result<()> {
    let (stack, c) = due_riverflow(true, false).await?;
    let blocked = |says: &'static str| blocked_saying(&c, says);
    // No credential at all: blocked, saying how to hand one in.
    blocked("has no partner credential").await?;
    let events = stack.events().await?;
    let failed: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventKind::PreflightFailed as i32)
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        failed[0].message.contains("tilewave creds submit riverflow"),
        "{}",
        failed[0].message
    );
    // A PENDING version: rotate it.
    credential_state(&stack, "riverflow", None).await?;
    blocked("version 1 is PENDING").await?;
    // CURRENT, verified everywhere but one planned region.
    let missing = REGIONS[3];
    let some: Vec<&str> = REGIONS.iter().copied().filter(|r| *r != missing).collect();
    credential_state(&stack, "riverflow", Some(&some)).await?;
    let reason = blocked("was not verified in 1 of").await?;
    assert!(reason.contains(missing), "{reason}");
    assert!(rollouts_of(&stack, "riverflow").await?.is_empty());
    // Verified everywhere: the scheduler starts the launch by itself.
    credential_state(&stack, "riverflow", Some(&REGIONS)).await?;
    let started = eventually("the launch roll-out starts", WAIT, || async {
        rollouts_of(&stack, "riverflow").await.ok()?.into_iter().next()
    })
    .await?;
    assert_eq!(started.created_by, "system:scheduler");
    let reasons: Vec<String> = stack
        .events()
        .await?
        .into_iter()
        .filter(|e| e.kind == EventKind::PreflightFailed as i32)
        .map(|e| e.message)
        .collect();
    assert_eq!(
        reasons.len(),
        3,
        "one PREFLIGHT_FAILED per distinct reason: {reasons:#?}"
    );
    Ok(())
}

/// Stores an escalation policy (and the schedule it pages) as the
/// escalation service would.
async fn put_policy(stack: &Stack, target: tilewave_proto::escalation::v1::Target) -> Result<()> {
    use tilewave_proto::escalation::v1::{Level, Policy};
    let keys = stack.store.keys();
    let policy = Policy {
        name: "default".into(),
        levels: vec![Level {
            targets: vec![target],
            delay: Some(prost_types::Duration {
                seconds: 300,
                nanos: 0,
            }),
        }],
        ..Default::default()
    };
    let key = keys.escalation_policy("default");
    let change = match stack.store.get::<Policy>(&key).await? {
        Some(v) => tilewave_store::Change::new().update(key, &policy, v.etag),
        None => tilewave_store::Change::new().create(key, &policy),
    };
    stack
        .store
        .commit(change, &tilewave_store::Actor::system("escalation-test"))
        .await?;
    Ok(())
}

#[tokio::test]
async fn the_preflight_waits_until_an_incident_of_the_launch_would_page_someone() -> anyhow::Result<()> {
    use tilewave_proto::escalation::v1::{Layer, Rotation, Schedule, Target};
    let (stack, c) = due_riverflow(false, true).await?;
    let blocked = |says: &'static str| blocked_saying(&c, says);
    // No policy at all.
    blocked("no escalation policy would page anyone").await?;
    // A policy paging an office-hours schedule: nights and weekends uncovered.
    let office = Schedule {
        name: "office".into(),
        layers: vec![Layer {
            name: "primary".into(),
            level: 1,
            rotation: Some(Rotation {
                people: vec!["ada".into()],
                shift_hours: 168,
                handoff: Some(LocalTime { hour: 9, minute: 0 }),
                time_zone: "UTC".into(),
                start: Some(tilewave_proto::common::v1::Date {
                    year: 2026,
                    month: 11,
                    day: 30,
                }),
            }),
            active: Some(tilewave_proto::escalation::v1::WeeklyWindow {
                days: EVERY_DAY[..5].iter().map(|d| *d as i32).collect(),
                start: Some(LocalTime { hour: 9, minute: 0 }),
                end: Some(LocalTime { hour: 17, minute: 0 }),
            }),
        }],
        ..Default::default()
    };
    stack
        .store
        .commit(
            tilewave_store::Change::new().create(stack.store.keys().escalation_schedule("office"), &office),
            &tilewave_store::Actor::system("escalation-test"),
        )
        .await?;
    put_policy(
        &stack,
        Target {
            kind: "schedule".into(),
            name: "office".into(),
            url: String::new(),
        },
    )
    .await?;
    blocked("reaches nobody during").await?;
    assert!(rollouts_of(&stack, "riverflow").await?.is_empty());
    // A webhook always reaches someone: the launch starts.
    put_policy(
        &stack,
        Target {
            kind: "webhook".into(),
            name: "ops".into(),
            url: "http://127.0.0.1:9/ops".into(),
        },
    )
    .await?;
    let started = eventually("the launch roll-out starts", WAIT, || async {
        rollouts_of(&stack, "riverflow").await.ok()?.into_iter().next()
    })
    .await?;
    assert_eq!(started.created_by, "system:scheduler");
    Ok(())
}
