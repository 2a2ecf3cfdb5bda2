//! Scheduled rotations on the virtual clock: SetRotationSchedule computes
//! the next moment (every N days, inside the window in its time zone);
//! when the clock reaches it the schedule starts a rotation to the PENDING
//! version by itself and moves on to the next moment; a due schedule with
//! no new credential raises an event asking the partner for it (one per
//! due moment: its id is derived from the moment and created only if
//! absent).

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tilewave_proto::common::v1::{Event, LocalTime};
use tilewave_proto::credentials::v1::*;
use tilewave_store::{Actor, VirtualClock};
use tilewave_testkit::eventually;
use tonic::Code;

use crate::*;

const WAIT: Duration = Duration::from_secs(60);

fn t0() -> Timestamp {
    "2026-12-01T00:00:00Z".parse().unwrap_or(Timestamp::UNIX_EPOCH)
}

fn schedule(tile: &str) -> RotationSchedule {
    RotationSchedule {
        tile_id: tile.into(),
        kind: CredentialKind::PartnerBasicAuth as i32,
        every_days: 1,
        window_start: Some(LocalTime { hour: 2, minute: 0 }),
        window_end: Some(LocalTime { hour: 4, minute: 0 }),
        time_zone: "UTC".into(),
        ..Default::default()
    }
}

async fn due_events(stack: &Stack) -> Result<Vec<Event>> {
    Ok(stack
        .events()
        .await?
        .into_iter()
        .filter(|e| e.id.starts_with("rotation-due-"))
        .collect())
}

#[tokio::test]
async fn a_due_schedule_starts_a_rotation_or_asks_for_a_credential() -> anyhow::Result<()> {
    let (text, _) = keyring_text(&["k1"])?;
    let stack = Stack::start_full(&text, &[], Some(t0())).await?;
    stack.tile("riverflow").await?;
    stack.tile("lumen").await?;
    let mut c = stack.client().await?;
    c.submit_credential(SubmitCredentialRequest {
        tile_id: "riverflow".into(),
        plaintext: "platform:scheduled-secret-42".into(),
        ..Default::default()
    })
    .await?;

    // Bad input: a zone that does not exist, an empty window; nothing stored.
    let before = stack.dump().await?;
    for bad in [
        RotationSchedule {
            time_zone: "Mars/Base".into(),
            ..schedule("riverflow")
        },
        RotationSchedule {
            window_end: Some(LocalTime { hour: 2, minute: 0 }),
            ..schedule("riverflow")
        },
    ] {
        let e = c
            .set_rotation_schedule(SetRotationScheduleRequest {
                schedule: Some(bad),
                etag: 0,
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        assert!(e.message().starts_with("schedule"), "{}", e.message());
    }
    assert_eq!(stack.dump().await?, before);

    let set = c
        .set_rotation_schedule(SetRotationScheduleRequest {
            schedule: Some(schedule("riverflow")),
            etag: 0,
        })
        .await?
        .into_inner()
        .schedule
        .context("schedule")?;
    let due: Timestamp = "2026-12-02T02:00:00Z".parse()?;
    assert_eq!(
        set.next_due.as_ref().map(|t| t.seconds),
        Some(due.as_second()),
        "a day after now, inside the window"
    );
    c.set_rotation_schedule(SetRotationScheduleRequest {
        schedule: Some(schedule("lumen")),
        etag: 0,
    })
    .await?;

    // Not yet due: nothing starts.
    let store = stack.etcd.store(PREFIX).await?;
    let clock = VirtualClock::attach(&store).await?;
    clock
        .advance(SignedDuration::from_hours(25), &Actor::new("test"))
        .await?;
    assert!(
        c.get_rotation(GetRotationRequest {
            tile_id: "riverflow".into(),
            ..Default::default()
        })
        .await
        .is_err(),
        "no rotation before the window"
    );
    // Due: the rotation starts by itself; the schedule moves on a day.
    clock
        .advance(SignedDuration::from_hours(2), &Actor::new("test"))
        .await?;
    let r = eventually("the scheduled rotation starts", WAIT, || {
        let mut c = c.clone();
        async move {
            c.get_rotation(GetRotationRequest {
                tile_id: "riverflow".into(),
                ..Default::default()
            })
            .await
            .ok()?
            .into_inner()
            .rotation
        }
    })
    .await?;
    assert_eq!(r.started_by, "system:credentials-schedule");
    assert_eq!(r.to_version, 1);
    let next = eventually("the next moment is stored", WAIT, || {
        let stack = &stack;
        async move {
            let dump = stack.etcd.dump(PREFIX).await.ok()?;
            let key = keys()
                .ok()?
                .credential_schedule("riverflow", "partner-basic-auth");
            let (raw, _) = dump.get(&key)?;
            let s = <RotationSchedule as prost::Message>::decode(raw.as_slice()).ok()?;
            let next = s.next_due?.seconds;
            (next > due.as_second()).then_some(next)
        }
    })
    .await?;
    // A day after this rotation (03:00), still inside the window.
    assert_eq!(next, "2026-12-03T03:00:00Z".parse::<Timestamp>()?.as_second());
    // No new credential for lumen: one event asking for it, once.
    let events = eventually("the rotation-due event", WAIT, || {
        let stack = &stack;
        async move {
            let e = due_events(stack).await.ok()?;
            (!e.is_empty()).then_some(e)
        }
    })
    .await?;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].tile_id, "lumen");
    assert!(
        events[0].message.contains("tilewave creds submit lumen"),
        "{}",
        events[0].message
    );
    Ok(())
}
