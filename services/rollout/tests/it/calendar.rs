//! The launch calendar through the rollout service: set, read (with the
//! next open slots), edited item by item under its etag, every change
//! audited; a stale etag is ABORTED and bad input (an unknown zone, a zero
//! capacity, a blackout ending before it starts, a slot in the past, an
//! item that does not exist) INVALID_ARGUMENT naming the field, with etcd
//! unchanged.

use jiff::SignedDuration;
use tilewave_proto::common::v1::{LocalTime, Weekday};
use tilewave_proto::rollout::v1::edit_launch_calendar_request::Edit;
use tilewave_proto::rollout::v1::{
    CalendarItemKind, EditLaunchCalendarRequest, ExtraLaunchSlot, GetLaunchCalendarRequest, LaunchBlackout,
    LaunchCalendar, LaunchRule, RemoveCalendarItem, SetLaunchCalendarRequest,
};
use tonic::Code;

use crate::*;

fn rule(name: &str, day: Weekday, tz: &str, capacity: i32) -> LaunchRule {
    LaunchRule {
        name: name.into(),
        weekdays: vec![day.into()],
        time: Some(LocalTime { hour: 17, minute: 0 }),
        time_zone: tz.into(),
        capacity,
    }
}

fn days(n: i64) -> SignedDuration {
    SignedDuration::from_hours(24 * n)
}

/// The calendar audit records, (action, summary), sorted (the virtual
/// clock stands still, so their keys do not order them).
async fn calendar_audit(stack: &Stack) -> Result<Vec<(String, String)>> {
    Ok(stack
        .store
        .audit_records()
        .await?
        .into_iter()
        .filter(|a| a.object_kind == "calendar")
        .map(|a| (a.action, a.summary))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect())
}

#[tokio::test]
async fn the_launch_calendar_is_set_read_and_edited_under_its_etag() -> anyhow::Result<()> {
    let stack = Stack::start(1).await?;
    let mut c = stack.rollout(0).await?;
    let now = stack.now().await?;

    // None stored: an empty calendar, etag 0, no slots.
    let got = c
        .get_launch_calendar(GetLaunchCalendarRequest { upcoming: 3 })
        .await?
        .into_inner();
    assert_eq!(got.calendar, Some(LaunchCalendar::default()));
    assert!(got.upcoming.is_empty());

    // Set: Tuesdays 17:00 UTC for 5, a blackout over the second Tuesday, a
    // one-off slot.
    let blackout = LaunchBlackout {
        start: Some(ts(now + days(7))),
        end: Some(ts(now + days(9))),
        reason: "Christmas".into(),
    };
    let extra = ExtraLaunchSlot {
        at: Some(ts(now + days(10))),
        capacity: 2,
        name: "launch week".into(),
    };
    let set = c
        .set_launch_calendar(SetLaunchCalendarRequest {
            calendar: Some(LaunchCalendar {
                rules: vec![rule("Tuesday group launch", Weekday::Tuesday, "UTC", 5)],
                blackouts: vec![blackout.clone()],
                extra_slots: vec![extra.clone()],
                ..Default::default()
            }),
            etag: 0,
        })
        .await?
        .into_inner()
        .calendar
        .unwrap_or_default();
    assert!(set.etag > 0, "{set:?}");
    assert_eq!(set.updated_by, RELEASE_ENGINEER);
    assert_eq!(from_ts(&set.updated_at), now);

    // Read back as set, with the next slots in order, the blacked-out
    // Tuesday (8 Dec) left out.
    let got = c
        .get_launch_calendar(GetLaunchCalendarRequest { upcoming: 3 })
        .await?
        .into_inner();
    assert_eq!(got.calendar.as_ref(), Some(&set));
    let at: Vec<Timestamp> = got.upcoming.iter().map(|s| from_ts(&s.at)).collect();
    let dec_17 = |d: i8| -> anyhow::Result<Timestamp> {
        Ok(jiff::civil::date(2026, 12, d)
            .at(17, 0, 0, 0)
            .to_zoned(jiff::tz::TimeZone::UTC)?
            .timestamp())
    };
    assert_eq!(
        at,
        [dec_17(1)?, now + days(10), dec_17(15)?],
        "{:?}",
        got.upcoming
    );
    let caps: Vec<i32> = got.upcoming.iter().map(|s| s.capacity).collect();
    assert_eq!(caps, [5, 2, 5]);
    assert_eq!(got.upcoming[1].source, "launch week");
    assert_eq!(calendar_audit(&stack).await?.len(), 1);

    // Edit: a Thursday rule, under the etag read.
    let edited = c
        .edit_launch_calendar(EditLaunchCalendarRequest {
            etag: set.etag,
            edit: Some(Edit::AddRule(rule(
                "Thursday",
                Weekday::Thursday,
                "Europe/Berlin",
                3,
            ))),
        })
        .await?
        .into_inner()
        .calendar
        .unwrap_or_default();
    assert!(edited.etag > set.etag);
    assert_eq!(edited.rules.len(), 2);
    assert_eq!(edited.rules[1].time_zone, "Europe/Berlin");
    assert_eq!(edited.blackouts, set.blackouts);
    assert_eq!(edited.extra_slots, set.extra_slots);
    let audit = calendar_audit(&stack).await?;
    assert_eq!(audit.len(), 2);
    // Sorted by action: Edit before Set.
    assert_eq!(audit[0].0, "EditLaunchCalendar");
    assert_eq!(audit[1].0, "SetLaunchCalendar");
    assert!(audit[0].1.contains("Thursday"), "{audit:?}");

    // A stale etag, for an edit and a replacement: ABORTED, nothing written.
    let before = stack.dump().await?;
    let stale = c
        .edit_launch_calendar(EditLaunchCalendarRequest {
            etag: set.etag,
            edit: Some(Edit::Remove(RemoveCalendarItem {
                kind: CalendarItemKind::Rule.into(),
                index: 0,
            })),
        })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted, "{stale:?}");
    assert!(stale.message().contains("read it again"), "{stale:?}");
    let stale = c
        .set_launch_calendar(SetLaunchCalendarRequest {
            calendar: Some(LaunchCalendar::default()),
            etag: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted, "{stale:?}");
    assert_eq!(stack.dump().await?, before);

    // Bad input: INVALID_ARGUMENT naming the field, nothing written.
    let etag = edited.etag;
    let edit = |e: Edit| EditLaunchCalendarRequest { etag, edit: Some(e) };
    let refusals = [
        (
            c.set_launch_calendar(SetLaunchCalendarRequest {
                calendar: Some(LaunchCalendar {
                    rules: vec![rule("moon", Weekday::Tuesday, "Mars/Olympus_Mons", 5)],
                    ..Default::default()
                }),
                etag,
            })
            .await
            .map(drop),
            "calendar.rules[0].time_zone",
        ),
        (
            c.edit_launch_calendar(edit(Edit::AddRule(rule("none", Weekday::Friday, "UTC", 0))))
                .await
                .map(drop),
            "rules[2].capacity",
        ),
        (
            c.edit_launch_calendar(edit(Edit::AddBlackout(LaunchBlackout {
                start: Some(ts(now + days(20))),
                end: Some(ts(now + days(19))),
                reason: "backwards".into(),
            })))
            .await
            .map(drop),
            "blackouts[1].end",
        ),
        (
            c.edit_launch_calendar(edit(Edit::AddExtraSlot(ExtraLaunchSlot {
                at: Some(ts(now - days(1))),
                capacity: 1,
                name: "yesterday".into(),
            })))
            .await
            .map(drop),
            "extra_slots[1].at",
        ),
        (
            c.set_launch_calendar(SetLaunchCalendarRequest {
                calendar: Some(LaunchCalendar {
                    extra_slots: vec![ExtraLaunchSlot {
                        at: Some(ts(now - days(1))),
                        capacity: 1,
                        name: "yesterday".into(),
                    }],
                    ..Default::default()
                }),
                etag,
            })
            .await
            .map(drop),
            "calendar.extra_slots[0].at",
        ),
        (
            c.edit_launch_calendar(edit(Edit::Remove(RemoveCalendarItem {
                kind: CalendarItemKind::Blackout.into(),
                index: 9,
            })))
            .await
            .map(drop),
            "blackouts[9]",
        ),
        (
            c.edit_launch_calendar(EditLaunchCalendarRequest { etag, edit: None })
                .await
                .map(drop),
            "edit",
        ),
    ];
    for (answer, field) in refusals {
        let e = answer.expect_err(field);
        assert_eq!(e.code(), Code::InvalidArgument, "{field}: {e:?}");
        assert!(
            e.message().starts_with(&format!("{field}: ")),
            "{field}: {}",
            e.message()
        );
    }
    assert_eq!(stack.dump().await?, before, "the refusals wrote nothing");
    assert_eq!(calendar_audit(&stack).await?.len(), 2);

    // Remove the blackout: the second Tuesday is a slot again.
    let removed = c
        .edit_launch_calendar(edit(Edit::Remove(RemoveCalendarItem {
            kind: CalendarItemKind::Blackout.into(),
            index: 0,
        })))
        .await?
        .into_inner()
        .calendar
        .unwrap_or_default();
    assert!(removed.blackouts.is_empty());
    let got = c
        .get_launch_calendar(GetLaunchCalendarRequest { upcoming: 2 })
        .await?
        .into_inner();
    let at: Vec<Timestamp> = got.upcoming.iter().map(|s| from_ts(&s.at)).collect();
    // Tue 1 Dec 17:00 UTC, then Thu 3 Dec 17:00 Berlin (16:00 UTC).
    assert_eq!(at, [dec_17(1)?, dec_17(3)? - SignedDuration::from_hours(1)]);
    let audit = calendar_audit(&stack).await?;
    assert_eq!(audit.len(), 3);
    assert!(
        audit
            .iter()
            .any(|(action, summary)| action == "EditLaunchCalendar" && summary.contains("Christmas")),
        "{audit:?}"
    );

    // Asking for too many upcoming slots is refused.
    let e = c
        .get_launch_calendar(GetLaunchCalendarRequest { upcoming: 101 })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("upcoming: "), "{}", e.message());
    Ok(())
}
