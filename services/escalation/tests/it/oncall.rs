//! People, schedules and who is on call: a rotation in America/Chicago
//! across the 2026 change to daylight time, and a policy paging whoever
//! is on call through the schedule, on the person's own contact.

use jiff::Timestamp;
use serde_json::json;
use tilewave_proto::common::v1::{Date, LocalTime, Severity};
use tilewave_proto::escalation::v1::*;

use crate::*;

fn person(id: &str, url: &str) -> Person {
    Person {
        id: id.into(),
        name: id.into(),
        time_zone: "America/Chicago".into(),
        working_hours: None,
        contacts: vec![Contact {
            name: "pager".into(),
            url: url.into(),
        }],
        etag: 0,
    }
}

fn at(s: &str) -> anyhow::Result<prost_types::Timestamp> {
    Ok(tilewave_store::clock::to_proto_timestamp(s.parse::<Timestamp>()?))
}

#[tokio::test]
async fn the_on_call_follows_local_handoffs_across_dst_and_is_paged_through_the_schedule()
-> anyhow::Result<()> {
    let stack = Stack::start(1).await?;
    let mut c = stack.client().await?;
    for id in ["alice", "bob"] {
        let url = stack.receiver.url(&format!("/{id}"));
        stack
            .receiver
            .set_secret(&format!("/{id}"), secret_for(id).parse()?);
        c.set_person(SetPersonRequest {
            person: Some(person(id, &url)),
            etag: 0,
            signing_secrets: [("pager".to_owned(), secret_for(id))].into_iter().collect(),
        })
        .await?;
    }
    // Daily handoffs at 09:00 Chicago time from Saturday 7 March 2026:
    // alice, then bob from Sunday 8 March, the day clocks go forward.
    let schedule = Schedule {
        name: "primary".into(),
        layers: vec![Layer {
            name: "daily".into(),
            level: 0,
            rotation: Some(Rotation {
                people: vec!["alice".into(), "bob".into()],
                shift_hours: 24,
                handoff: Some(LocalTime { hour: 9, minute: 0 }),
                time_zone: "America/Chicago".into(),
                start: Some(Date {
                    year: 2026,
                    month: 3,
                    day: 7,
                }),
            }),
            active: None,
        }],
        overrides: vec![],
        etag: 0,
    };
    c.set_schedule(SetScheduleRequest {
        schedule: Some(schedule),
        etag: 0,
    })
    .await?;
    // 09:00 CDT on 8 March is 14:00 UTC (it was 15:00 UTC the day before).
    for (when, who) in [
        ("2026-03-07T15:00:00Z", "alice"),
        ("2026-03-08T13:59:00Z", "alice"),
        ("2026-03-08T14:00:00Z", "bob"),
        ("2026-03-09T13:59:00Z", "bob"),
        ("2026-03-09T14:00:00Z", "alice"),
    ] {
        let shifts = c
            .who_is_on_call(WhoIsOnCallRequest {
                schedule: "primary".into(),
                at: Some(at(when)?),
            })
            .await?
            .into_inner()
            .shifts;
        let people: Vec<&str> = shifts.iter().map(|s| s.person.as_str()).collect();
        assert_eq!(people, [who], "at {when}");
    }
    // A policy paging the schedule reaches whoever is on call: move the
    // clock into bob's shift (the rotation starts after T0).
    stack
        .clock
        .set(
            "2026-03-08T16:00:00Z".parse()?,
            &tilewave_store::Actor::new("test"),
        )
        .await?;
    c.set_policy(SetPolicyRequest {
        policy: Some(Policy {
            name: "oncall".into(),
            severities: vec![Severity::Sev1 as i32],
            levels: vec![Level {
                targets: vec![Target {
                    kind: "schedule".into(),
                    name: "primary".into(),
                    url: String::new(),
                }],
                delay: Some(mins(5)),
            }],
            ..Default::default()
        }),
        ..Default::default()
    })
    .await?;
    stack.receiver.expect(
        "/bob",
        json!({"incident": "INC-1", "level": 1, "severity": "SEV1"}),
    );
    let i = open_sev1(&stack, "riverflow").await?;
    stack.receiver.wait_for_expected(WAIT).await?;
    let d = stack.receiver.deliveries();
    assert!(d[0].signature.verified());
    assert_eq!(
        d[0].idempotency_key.as_deref(),
        Some(format!("{}/c0/r0/l0/person/bob/pager", i.id).as_str())
    );
    // The definitions read back as set (and never with a secret).
    let bob = c
        .get_person(GetPersonRequest { id: "bob".into() })
        .await?
        .into_inner()
        .person
        .context("person")?;
    assert_eq!(bob.contacts.len(), 1);
    assert_eq!(bob.time_zone, "America/Chicago");
    let people = c
        .list_people(ListPeopleRequest {
            page: Some(tilewave_proto::common::v1::PageRequest {
                page_size: 1,
                page_token: String::new(),
            }),
        })
        .await?
        .into_inner();
    assert_eq!(people.people.len(), 1);
    assert_eq!(people.next_page_token, "alice");
    let got = c
        .get_schedule(GetScheduleRequest {
            name: "primary".into(),
        })
        .await?
        .into_inner()
        .schedule
        .context("schedule")?;
    let rotation = got.layers[0].rotation.as_ref().context("rotation")?;
    assert_eq!((rotation.shift_hours, rotation.people.len()), (24, 2));
    let sop = c
        .get_sop(GetSopRequest {
            id: "integration-health".into(),
        })
        .await?
        .into_inner()
        .sop
        .context("the shipped SOP")?;
    assert!(!sop.steps.is_empty());
    // No signing secret is stored in the clear.
    let dump = stack.dump().await?;
    for id in ["alice", "bob"] {
        let secret = secret_for(id);
        assert!(
            !dump
                .values()
                .any(|v| v.windows(secret.len()).any(|w| w == secret.as_bytes())),
            "{id}'s secret is in etcd in the clear"
        );
    }
    stack.receiver.assert_all_expected_and_nothing_else();
    Ok(())
}

#[tokio::test]
async fn a_partner_side_incident_pages_the_partner_s_contacts_and_a_platform_one_does_not()
-> anyhow::Result<()> {
    let stack = Stack::start(1).await?;
    let r = &stack.receiver;
    let mut c = stack.client().await?;
    r.set_secret("/acme-ops", secret_for("acme-ops").parse()?);
    c.set_partner_contacts(SetPartnerContactsRequest {
        contacts: Some(PartnerContacts {
            partner: "acme".into(),
            contacts: vec![Contact {
                name: "ops".into(),
                url: r.url("/acme-ops"),
            }],
            etag: 0,
        }),
        etag: 0,
        signing_secrets: [("ops".to_owned(), secret_for("acme-ops"))].into_iter().collect(),
    })
    .await?;
    c.set_policy(SetPolicyRequest {
        policy: Some(Policy {
            name: "default".into(),
            levels: vec![Level {
                targets: vec![Target {
                    kind: "partner".into(),
                    name: String::new(),
                    url: String::new(),
                }],
                delay: Some(mins(30)),
            }],
            ..Default::default()
        }),
        ..Default::default()
    })
    .await?;
    r.expect(
        "/acme-ops",
        json!({"incident": "INC-1", "side": "partner", "level": 1}),
    );
    let mut oncall = stack.oncall().await?;
    for (side, title) in [
        (Side::Partner, "riverflow: the partner's API rejects our calls"),
        (Side::Platform, "riverflow: our health probe is flaky"),
    ] {
        oncall
            .open_incident(OpenIncidentRequest {
                title: title.into(),
                severity: Severity::Sev2 as i32,
                tile_id: "riverflow".into(),
                side: side as i32,
                partner: "acme".into(),
                ..Default::default()
            })
            .await?;
    }
    r.wait_for_expected(WAIT).await?;
    // The platform-side incident says why nobody was paged.
    let platform = stack.incident("INC-2").await?;
    assert!(
        platform
            .timeline
            .iter()
            .any(|e| e.message.contains("the partner is not paged")),
        "{:?}",
        platform.timeline
    );
    assert!(r.deliveries()[0].signature.verified());
    r.assert_all_expected_and_nothing_else();
    Ok(())
}

#[tokio::test]
async fn a_low_urgency_page_waits_for_the_person_s_working_hours() -> anyhow::Result<()> {
    let stack = Stack::start(1).await?;
    let r = &stack.receiver;
    let mut c = stack.client().await?;
    r.set_secret("/carol", secret_for("carol").parse()?);
    // Carol works 09:00 to 17:00 in Chicago: at T0 (10:00 UTC, 04:00
    // there) a SEV3 page for her waits until 15:00 UTC.
    c.set_person(SetPersonRequest {
        person: Some(person("carol", &r.url("/carol"))),
        etag: 0,
        signing_secrets: [("pager".to_owned(), secret_for("carol"))].into_iter().collect(),
    })
    .await?;
    c.set_policy(SetPolicyRequest {
        policy: Some(Policy {
            name: "default".into(),
            levels: vec![Level {
                targets: vec![Target {
                    kind: "person".into(),
                    name: "carol".into(),
                    url: String::new(),
                }],
                delay: Some(mins(24 * 60)),
            }],
            ..Default::default()
        }),
        ..Default::default()
    })
    .await?;
    r.expect("/carol", json!({"incident": "INC-1", "severity": "SEV3"}));
    let i = stack
        .oncall()
        .await?
        .open_incident(OpenIncidentRequest {
            title: "riverflow: a logo is blurry".into(),
            severity: Severity::Sev3 as i32,
            tile_id: "riverflow".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .incident
        .context("incident")?;
    assert!(
        i.timeline.iter().any(|e| e.message.contains("deferred to")),
        "{:?}",
        i.timeline
    );
    // The page is in the outbox, due at the start of her day.
    let k = keys()?;
    let entries: Vec<OutboxEntry> = stack
        .dump()
        .await?
        .into_iter()
        .filter(|(key, _)| key.starts_with(&k.escalation_outbox("INC-1")))
        .filter_map(|(_, v)| <OutboxEntry as prost::Message>::decode(v.as_slice()).ok())
        .collect();
    assert_eq!(entries.len(), 1);
    let due = entries[0]
        .deliver_at
        .as_ref()
        .and_then(|t| tilewave_store::clock::from_proto_timestamp(t).ok());
    assert_eq!(due, Some("2026-03-02T15:00:00Z".parse()?));
    assert!(r.deliveries().is_empty(), "nothing before her working hours");
    stack.at(jiff::SignedDuration::from_hours(5)).await?;
    r.wait_for_expected(WAIT).await?;
    r.assert_all_expected_and_nothing_else();
    Ok(())
}

#[tokio::test]
async fn a_partner_sees_its_own_incidents_only_and_cannot_act_on_them() -> anyhow::Result<()> {
    let stack = Stack::start(1).await?;
    let mut oncall = stack.oncall().await?;
    for partner in ["acme", "globex"] {
        oncall
            .open_incident(OpenIncidentRequest {
                title: format!("{partner}'s tile: failing"),
                severity: Severity::Sev3 as i32,
                tile_id: format!("{partner}-tile"),
                side: Side::Partner as i32,
                partner: partner.into(),
                ..Default::default()
            })
            .await?;
    }
    let mut acme = stack.client_of(0, tilewave_testkit::pki::PARTNER_ACME).await?;
    let listed = acme
        .list_incidents(ListIncidentsRequest::default())
        .await?
        .into_inner()
        .incidents;
    let ids: Vec<&str> = listed.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["INC-1"], "acme's only");
    assert_eq!(
        acme.get_incident(GetIncidentRequest { id: "INC-1".into() })
            .await?
            .into_inner()
            .incident
            .map(|i| i.partner),
        Some("acme".to_owned())
    );
    let other = acme
        .get_incident(GetIncidentRequest { id: "INC-2".into() })
        .await
        .err()
        .context("globex's incident is not shown to acme")?;
    assert_eq!(other.code(), tonic::Code::NotFound);
    let ack = acme
        .acknowledge(AcknowledgeRequest {
            id: "INC-1".into(),
            etag: 0,
        })
        .await
        .err()
        .context("a partner does not acknowledge")?;
    assert_eq!(ack.code(), tonic::Code::PermissionDenied);
    Ok(())
}

/// A daily rotation of anna and ben in Berlin, handing off at 02:30
/// local time from `start`.
fn berlin(name: &str, start: Date) -> Schedule {
    Schedule {
        name: name.into(),
        layers: vec![Layer {
            name: "daily".into(),
            level: 0,
            rotation: Some(Rotation {
                people: vec!["anna".into(), "ben".into()],
                shift_hours: 24,
                handoff: Some(LocalTime { hour: 2, minute: 30 }),
                time_zone: "Europe/Berlin".into(),
                start: Some(start),
            }),
            active: None,
        }],
        overrides: vec![],
        etag: 0,
    }
}

#[tokio::test]
async fn berlin_handoffs_at_a_time_that_is_skipped_or_repeated_follow_the_written_rules() -> anyhow::Result<()>
{
    let stack = Stack::start(1).await?;
    let mut c = stack.client().await?;
    for id in ["anna", "ben"] {
        let mut p = person(id, &stack.receiver.url(&format!("/{id}")));
        p.time_zone = "Europe/Berlin".into();
        c.set_person(SetPersonRequest {
            person: Some(p),
            ..Default::default()
        })
        .await?;
    }
    for (name, start) in [
        (
            "spring",
            Date {
                year: 2026,
                month: 3,
                day: 28,
            },
        ),
        (
            "autumn",
            Date {
                year: 2026,
                month: 10,
                day: 24,
            },
        ),
    ] {
        c.set_schedule(SetScheduleRequest {
            schedule: Some(berlin(name, start)),
            etag: 0,
        })
        .await?;
    }
    // 29 March: 02:30 does not exist (02:00 -> 03:00); the handoff moves
    // to the next valid minute, 03:00 CEST = 01:00 UTC.
    // 25 October: 02:30 happens twice; the first (CEST) counts, 00:30 UTC.
    for (schedule, when, who) in [
        ("spring", "2026-03-29T00:59:00Z", "anna"),
        ("spring", "2026-03-29T01:00:00Z", "ben"),
        ("autumn", "2026-10-25T00:29:00Z", "anna"),
        ("autumn", "2026-10-25T00:30:00Z", "ben"),
        ("autumn", "2026-10-25T01:30:00Z", "ben"),
    ] {
        let shifts = c
            .who_is_on_call(WhoIsOnCallRequest {
                schedule: schedule.into(),
                at: Some(at(when)?),
            })
            .await?
            .into_inner()
            .shifts;
        let people: Vec<&str> = shifts.iter().map(|s| s.person.as_str()).collect();
        assert_eq!(people, [who], "{schedule} at {when}");
    }
    Ok(())
}
