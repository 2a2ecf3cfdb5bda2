//! Launch readiness (issue 14) against real etcd and the registry binary:
//! the validation checklist gates the engineering sign-off, go-to-market
//! items gate the GA date (or an override is recorded), and a GA date in a
//! launch-calendar slot books a place in it in the tile's own transaction.

use prost::Message as _;
use tilewave_proto::common::v1::{SignOffRole, TileState};
use tilewave_proto::registry::v1::registry_service_client::RegistryServiceClient;
use tilewave_proto::registry::v1::*;
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt as _;

use crate::*;

type Client = RegistryServiceClient<Channel>;

/// The field a refusal's BadRequest names first.
fn field(e: &tonic::Status) -> String {
    e.get_details_bad_request()
        .and_then(|b| b.field_violations.first().map(|v| v.field.clone()))
        .unwrap_or_default()
}

fn validation(id: &str, cases: &[&str], outcome: ValidationOutcome, note: &str) -> RecordValidationRequest {
    RecordValidationRequest {
        id: id.into(),
        case_ids: cases.iter().map(|c| c.to_string()).collect(),
        outcome: outcome as i32,
        note: note.into(),
        ..Default::default()
    }
}

async fn sign(c: &mut Client, id: &str, role: SignOffRole) -> Result<Tile, tonic::Status> {
    c.record_sign_off(RecordSignOffRequest {
        id: id.into(),
        role: role as i32,
        ..Default::default()
    })
    .await
    .map(|r| r.into_inner().tile.unwrap_or_default())
}

/// A copy of the riverflow fixture as tile `id`, in its test workspace.
async fn validating(c: &mut Client, id: &str) -> anyhow::Result<Tile> {
    c.import_partner_config(ImportPartnerConfigRequest {
        config_json: RIVERFLOW.into(),
        id: id.into(),
        ..Default::default()
    })
    .await?;
    let resp = c
        .set_test_workspace(SetTestWorkspaceRequest {
            id: id.into(),
            workspace_id: "42".into(),
            etag: 0,
        })
        .await?;
    Ok(resp.into_inner().tile.unwrap_or_default())
}

/// Tile `id` signed off, its checklist passed and its go-to-market items
/// done: ready for a GA date.
async fn ready(c: &mut Client, id: &str) -> anyhow::Result<Tile> {
    validating(c, id).await?;
    pass_checklist(c, id).await?;
    for role in ROLES {
        sign(c, id, role).await?;
    }
    gtm_done(c, id).await
}

/// A GA moment ten days after the tile was created (the registry's clock).
fn ga_of(tile: &Tile) -> prost_types::Timestamp {
    let created = tile.created_at.as_ref().map(|t| t.seconds).unwrap_or_default();
    prost_types::Timestamp {
        seconds: created + 10 * 24 * 3600,
        nanos: 0,
    }
}

fn slot_request(id: &str, at: prost_types::Timestamp, capacity: i32) -> SetGaDateRequest {
    SetGaDateRequest {
        id: id.into(),
        ga_time: Some(at),
        slot_capacity: capacity,
        ..Default::default()
    }
}

/// The tiles booked in the slot at `at`, as stored (empty when the key is
/// absent).
async fn booked(stack: &Stack, at: &prost_types::Timestamp) -> anyhow::Result<Vec<String>> {
    let at = jiff::Timestamp::new(at.seconds, at.nanos)?;
    let key = tilewave_store::Keys::new(PREFIX)?.launch_slot(at)?;
    let dump = stack.dump().await?;
    Ok(match dump.get(&key) {
        Some((value, _)) => SlotBookings::decode(value.as_slice())?.tile_ids,
        None => vec![],
    })
}

#[tokio::test]
async fn the_checklist_gates_the_engineering_sign_off_and_a_new_revision_starts_afresh() -> anyhow::Result<()>
{
    let stack = Stack::start(1).await?;
    let mut c = stack.client(0).await?;
    let tile = validating(&mut c, "riverflow").await?;
    let checklist = tile.validation.clone().expect("a partner tile has a checklist");
    assert_eq!(checklist.revision, 1);
    assert_eq!(checklist.cases.len(), 21);
    assert_eq!(checklist.open_cases.len(), 21);

    // Open cases: the engineering sign-off is refused and lists them.
    c.record_validation(validation(
        "riverflow",
        &["P100", "P101"],
        ValidationOutcome::Pass,
        "ok",
    ))
    .await?;
    let before = stack.dump().await?;
    let e = sign(&mut c, "riverflow", SignOffRole::Engineering)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(
        e.message().contains("19 of 21 validation cases are still open"),
        "{}",
        e.message()
    );
    assert!(
        e.message().contains("P200") && !e.message().contains("P100 "),
        "{}",
        e.message()
    );
    assert!(e.message().contains("tilewave tile validate"), "{}", e.message());
    assert_eq!(stack.dump().await?, before, "the refused sign-off changed etcd");
    // Other roles are not gated.
    sign(&mut c, "riverflow", SignOffRole::Legal).await?;

    // A waiver needs a note; an unknown case is named; nothing changes.
    let before = stack.dump().await?;
    let e = c
        .record_validation(validation("riverflow", &["P900"], ValidationOutcome::Waived, " "))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), field(&e).as_str()),
        (Code::InvalidArgument, "note"),
        "{e:?}"
    );
    let e = c
        .record_validation(validation(
            "riverflow",
            &["P200", "P999"],
            ValidationOutcome::Pass,
            "",
        ))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), field(&e).as_str()),
        (Code::InvalidArgument, "case_ids[1]"),
        "{e:?}"
    );
    assert!(
        e.message().contains("\"P999\"") && e.message().contains("P100, P101"),
        "{}",
        e.message()
    );
    let e = c
        .record_validation(validation(
            "riverflow",
            &["P200"],
            ValidationOutcome::Unspecified,
            "",
        ))
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), field(&e).as_str()),
        (Code::InvalidArgument, "outcome"),
        "{e:?}"
    );
    let e = c
        .record_validation(RecordValidationRequest {
            revision: 2,
            ..validation("riverflow", &["P200"], ValidationOutcome::Pass, "")
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert_eq!(stack.dump().await?, before, "refused results changed etcd");

    // The rest: one waived, every other open case passed.
    c.record_validation(validation(
        "riverflow",
        &["P900"],
        ValidationOutcome::Waived,
        "no connectors",
    ))
    .await?;
    let tile = pass_checklist(&mut c, "riverflow").await?;
    let v = tile.validation.expect("checklist");
    assert!(v.open_cases.is_empty());
    let p900 = v.cases.iter().find(|e| e.case_id == "P900").expect("P900");
    assert_eq!(p900.outcome, ValidationOutcome::Waived as i32);
    assert_eq!(p900.recorded_by, tilewave_testkit::pki::RELEASE_ENGINEER);
    sign(&mut c, "riverflow", SignOffRole::Engineering).await?;

    // The audit names the cases and the revision.
    let history = c
        .get_history(GetHistoryRequest {
            id: "riverflow".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let summaries: Vec<&str> = history
        .records
        .iter()
        .filter(|r| r.action == "RecordValidation")
        .map(|r| r.summary.as_str())
        .collect();
    assert!(summaries[0].starts_with("P100, P101 PASS on r1"), "{summaries:?}");

    // A new revision: a fresh checklist, and the audit says what was dropped.
    let etag = get(&mut c, "riverflow").await?.etag;
    let tile = c
        .update_tile(UpdateTileRequest {
            id: "riverflow".into(),
            etag,
            source: Some(update_tile_request::Source::ConfigJson(RIVERFLOW.into())),
            note: "v2".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .tile
        .expect("tile");
    let v = tile.validation.expect("checklist");
    assert_eq!((v.revision, v.open_cases.len()), (2, 21));
    assert!(
        v.cases
            .iter()
            .all(|e| e.outcome == ValidationOutcome::Unspecified as i32)
    );
    let history = c
        .get_history(GetHistoryRequest {
            id: "riverflow".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let update = history
        .records
        .iter()
        .rfind(|r| r.action == "UpdateTile")
        .expect("update");
    assert!(
        update
            .summary
            .contains("the 21 results recorded on r1 (20 PASS, 1 WAIVED) are not carried over"),
        "{}",
        update.summary
    );
    let e = sign(&mut c, "riverflow", SignOffRole::Engineering)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("21 of 21"), "{}", e.message());
    Ok(())
}

#[tokio::test]
async fn evidence_must_be_an_existing_self_test_tile() -> anyhow::Result<()> {
    let stack = Stack::start(1).await?;
    let mut c = stack.client(0).await?;
    validating(&mut c, "riverflow").await?;
    let quarry = import(&mut c, QUARRY, "6051921418418893").await?;
    assert!(
        quarry.validation.is_none() && quarry.gtm.is_empty(),
        "a self-test tile has no checklist"
    );
    let with = |tile: &str, revision: i64| RecordValidationRequest {
        evidence_tile: tile.into(),
        evidence_revision: revision,
        ..validation(
            "riverflow",
            &["P800"],
            ValidationOutcome::Pass,
            "test-connection green",
        )
    };
    let before = stack.dump().await?;
    for (tile, revision, want) in [
        ("nope", 0, "evidence_tile"),
        ("riverflow", 0, "evidence_tile"),
        (quarry.id.as_str(), 7, "evidence_revision"),
    ] {
        let e = c.record_validation(with(tile, revision)).await.unwrap_err();
        assert_eq!(
            (e.code(), field(&e).as_str()),
            (Code::InvalidArgument, want),
            "{tile}: {e:?}"
        );
    }
    // A self-test tile has no checklist of its own.
    let e = c
        .record_validation(validation(&quarry.id, &["P100"], ValidationOutcome::Pass, ""))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert_eq!(stack.dump().await?, before, "refused results changed etcd");

    let tile = c
        .record_validation(with(&quarry.id, 0))
        .await?
        .into_inner()
        .tile
        .expect("tile");
    let p800 = tile
        .validation
        .expect("checklist")
        .cases
        .into_iter()
        .find(|e| e.case_id == "P800")
        .expect("P800");
    assert_eq!(
        (p800.evidence_tile.as_str(), p800.evidence_revision),
        (quarry.id.as_str(), 1)
    );
    Ok(())
}

#[tokio::test]
async fn pending_go_to_market_items_refuse_the_ga_date_unless_overridden() -> anyhow::Result<()> {
    let stack = Stack::start(1).await?;
    let mut c = stack.client(0).await?;
    validating(&mut c, "riverflow").await?;
    pass_checklist(&mut c, "riverflow").await?;
    let mut tile = Tile::default();
    for role in ROLES {
        tile = sign(&mut c, "riverflow", role).await?;
    }
    assert_eq!(tile.state, TileState::SignedOff as i32);
    let items: Vec<(&str, i32)> = tile.gtm.iter().map(|i| (i.item.as_str(), i.status)).collect();
    assert_eq!(
        items,
        [
            ("agreement", GtmStatus::Done as i32),
            ("mini-site", GtmStatus::Pending as i32),
            ("logo", GtmStatus::Pending as i32),
            ("blog", GtmStatus::Pending as i32),
            ("docs", GtmStatus::Pending as i32),
        ],
        "the agreement follows legal's sign-off"
    );

    // Bad items are refused naming the field.
    let set = |item: &str, owner: &str, due: &str, link: &str| SetGtmItemRequest {
        id: "riverflow".into(),
        item: item.into(),
        status: GtmStatus::Done as i32,
        owner: owner.into(),
        due: due.into(),
        link: link.into(),
        etag: 0,
    };
    let before = stack.dump().await?;
    for (req, want) in [
        (set("agreement", "ana", "2026-12-01", ""), "item"),
        (set("press", "ana", "2026-12-01", ""), "item"),
        (set("logo", "", "2026-12-01", ""), "owner"),
        (set("logo", "ana", "1 Dec", ""), "due"),
        (
            set("blog", "ana", "2026-12-01", "http://partner.example/blog"),
            "link",
        ),
        (set("blog", "ana", "2026-12-01", ""), "link"),
    ] {
        let e = c.set_gtm_item(req.clone()).await.unwrap_err();
        assert_eq!(
            (e.code(), field(&e).as_str()),
            (Code::InvalidArgument, want),
            "{req:?}: {e:?}"
        );
    }
    assert_eq!(stack.dump().await?, before, "refused items changed etcd");

    // Pending items refuse the date, listing them.
    c.set_gtm_item(set("logo", "ana", "2026-12-01", "")).await?;
    let ga = ga_of(&tile);
    let before = stack.dump().await?;
    let e = c.set_ga_date(slot_request("riverflow", ga, 0)).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(
        e.message().contains("3 go-to-market items are pending")
            && e.message().contains("mini-site")
            && !e.message().contains("logo (")
            && e.message().contains("--gtm-override"),
        "{}",
        e.message()
    );
    assert_eq!(stack.dump().await?, before, "the refused GA date changed etcd");

    // With an override: set, and recorded on the tile and in the audit.
    let tile = c
        .set_ga_date(SetGaDateRequest {
            gtm_override: "the partner's blog is late; launch on the slot".into(),
            ..slot_request("riverflow", ga, 0)
        })
        .await?
        .into_inner()
        .tile
        .expect("tile");
    assert_eq!(tile.state, TileState::Scheduled as i32);
    let over = tile.gtm_override.expect("override recorded");
    assert_eq!(over.pending, ["mini-site", "blog", "docs"]);
    assert_eq!(over.by, tilewave_testkit::pki::RELEASE_ENGINEER);
    let history = c
        .get_history(GetHistoryRequest {
            id: "riverflow".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let set_ga = history
        .records
        .iter()
        .rfind(|r| r.action == "SetGaDate")
        .expect("audit");
    assert!(
        set_ga.summary.contains("go-to-market override") && set_ga.summary.contains("blog is late"),
        "{}",
        set_ga.summary
    );
    Ok(())
}

#[tokio::test]
async fn a_slot_holds_its_capacity_and_whatever_moves_or_clears_the_date_frees_a_place() -> anyhow::Result<()>
{
    let stack = Stack::start(2).await?;
    let mut c = stack.client(0).await?;
    let mut d = stack.client(1).await?;
    let first = ready(&mut c, "tile-a").await?;
    ready(&mut c, "tile-b").await?;
    ready(&mut c, "tile-c").await?;
    let slot = ga_of(&first);

    let a = c
        .set_ga_date(slot_request("tile-a", slot, 2))
        .await?
        .into_inner()
        .tile
        .expect("tile");
    assert_eq!(a.ga_slot.as_ref().map(|s| s.capacity), Some(2));
    // Re-booking its own slot does not count twice.
    c.set_ga_date(slot_request("tile-a", slot, 2)).await?;
    d.set_ga_date(slot_request("tile-b", slot, 2)).await?;
    assert_eq!(booked(&stack, &slot).await?, ["tile-a", "tile-b"]);

    let before = stack.dump().await?;
    let e = c.set_ga_date(slot_request("tile-c", slot, 2)).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(
        e.message().contains("is full (2 of 2 booked: tile-a, tile-b)")
            && e.message().contains("`tilewave ga schedule tile-c`"),
        "{}",
        e.message()
    );
    assert_eq!(stack.dump().await?, before, "the refused booking changed etcd");

    // Moving tile-a to another moment frees its place.
    let later = prost_types::Timestamp {
        seconds: slot.seconds + 3600,
        nanos: 0,
    };
    let a = c
        .set_ga_date(slot_request("tile-a", later, 0))
        .await?
        .into_inner()
        .tile
        .expect("tile");
    assert!(a.ga_slot.is_none(), "a date set by hand holds no slot");
    assert_eq!(booked(&stack, &slot).await?, ["tile-b"]);
    c.set_ga_date(slot_request("tile-c", slot, 2)).await?;
    assert_eq!(booked(&stack, &slot).await?, ["tile-b", "tile-c"]);

    // A new revision of the scheduled tile-b sends it back to VALIDATING and
    // frees its place.
    let b = get(&mut c, "tile-b").await?;
    assert_eq!(b.state, TileState::Scheduled as i32);
    let b = c
        .update_tile(UpdateTileRequest {
            id: "tile-b".into(),
            etag: b.etag,
            source: Some(update_tile_request::Source::ConfigJson(RIVERFLOW.into())),
            note: "v2".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .tile
        .expect("tile");
    assert_eq!(b.state, TileState::Validating as i32);
    assert!(b.ga_time.is_none() && b.ga_slot.is_none());
    assert_eq!(booked(&stack, &slot).await?, ["tile-c"]);

    // A withdrawn sign-off sends tile-c back to VALIDATING: its place is
    // freed.
    c.set_ga_date(slot_request("tile-a", slot, 2)).await?;
    assert_eq!(booked(&stack, &slot).await?, ["tile-c", "tile-a"]);
    let c_tile = c
        .withdraw_sign_off(WithdrawSignOffRequest {
            id: "tile-c".into(),
            role: SignOffRole::Legal as i32,
            reason: "agreement not countersigned".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .tile
        .expect("tile");
    assert_eq!(c_tile.state, TileState::Validating as i32);
    assert!(c_tile.ga_slot.is_none());
    assert_eq!(booked(&stack, &slot).await?, ["tile-a"]);

    // Withdrawing the last one frees its place and deletes the key.
    c.withdraw(WithdrawRequest {
        id: "tile-a".into(),
        reason: "partner pulled out".into(),
        ..Default::default()
    })
    .await?;
    let key = tilewave_store::Keys::new(PREFIX)?.launch_slot(jiff::Timestamp::new(slot.seconds, 0)?)?;
    assert!(
        !stack.dump().await?.contains_key(&key),
        "an empty slot has no key"
    );
    Ok(())
}

#[tokio::test]
async fn concurrent_bookings_of_a_slot_fill_exactly_its_capacity() -> anyhow::Result<()> {
    const TILES: usize = 5;
    const CAPACITY: usize = 2;
    let stack = Stack::start(2).await?;
    let mut c = stack.client(0).await?;
    let mut slot = None;
    for i in 0..TILES {
        let t = ready(&mut c, &format!("tile-{i}")).await?;
        slot.get_or_insert(ga_of(&t));
    }
    let slot = slot.expect("a slot");
    let mut tasks = Vec::new();
    for i in 0..TILES {
        let mut client = stack.client(i % 2).await?;
        tasks.push(tokio::spawn(async move {
            client
                .set_ga_date(slot_request(&format!("tile-{i}"), slot, CAPACITY as i32))
                .await
        }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await? {
            Ok(_) => won += 1,
            Err(e) => {
                assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
                assert!(e.message().contains("is full (2 of 2 booked"), "{}", e.message());
            }
        }
    }
    assert_eq!(won, CAPACITY, "exactly the capacity wins");
    assert_eq!(booked(&stack, &slot).await?.len(), CAPACITY);
    Ok(())
}
