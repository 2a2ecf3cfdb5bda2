//! Import, sign-off, GA date and lifecycle rules across two replicas.

use std::collections::BTreeSet;

use tilewave_proto::common::v1::{Cloud, PageRequest, PartnerCategory, SignOffRole, TileState};
use tilewave_proto::registry::v1::*;
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::*;

#[tokio::test]
async fn imports_every_fixture_and_reports_all_eleven_errors_of_the_broken_one() -> anyhow::Result<()> {
    let stack = Stack::start(2).await?;
    let mut a = stack.client(0).await?;

    let riverflow = import(&mut a, RIVERFLOW, "").await?;
    assert_eq!((riverflow.id.as_str(), riverflow.revision), ("riverflow", 1));
    assert_eq!(riverflow.state, TileState::Draft as i32);
    assert_eq!(riverflow.partner_id, "riverflow");
    let lumen = import(&mut a, LUMEN, "").await?;
    assert_eq!(lumen.id, "lumen-dashboards");
    let quarry = import(&mut a, QUARRY, "6051921418418893").await?;
    assert!(quarry.self_test);
    assert_eq!(quarry.test_workspace_id, "6051921418418893");

    // A self-test document without its workspace is refused, naming the field.
    let err = a
        .import_partner_config(ImportPartnerConfigRequest {
            config_json: QUARRY.into(),
            id: "quarry-2".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("workspace"), "{}", err.message());
    // One self-test tile per workspace, until it is withdrawn.
    let err = a
        .import_partner_config(ImportPartnerConfigRequest {
            config_json: QUARRY.into(),
            id: "quarry-2".into(),
            workspace_id: "6051921418418893".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
    assert!(err.message().contains("one per workspace"), "{}", err.message());
    a.withdraw(WithdrawRequest {
        id: "quarry-notebooks".into(),
        ..Default::default()
    })
    .await?;
    let again = a
        .import_partner_config(ImportPartnerConfigRequest {
            config_json: QUARRY.into(),
            id: "quarry-2".into(),
            workspace_id: "6051921418418893".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    assert_eq!(again.tile.map(|t| t.id).as_deref(), Some("quarry-2"));

    let before = stack.dump().await?;
    let err = a
        .import_partner_config(ImportPartnerConfigRequest {
            config_json: BROKEN.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let paths: Vec<String> = err
        .get_details_bad_request()
        .expect("BadRequest details")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    let expected: BTreeSet<String> = BROKEN_EXPECTED
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    assert_eq!(paths.len(), 11, "{paths:?}");
    assert_eq!(paths.iter().cloned().collect::<BTreeSet<_>>(), expected);
    assert_eq!(stack.dump().await?, before, "a refused import changed etcd");

    // The other replica serves the imported tiles from its cache.
    let mut b = stack.client(1).await?;
    let listed = tilewave_testkit::eventually("replica 1 lists both launch tiles", WAIT, || {
        let mut b = b.clone();
        async move {
            let r = b.list_tiles(ListTilesRequest::default()).await.ok()?.into_inner();
            let ids: Vec<String> = r.tiles.into_iter().map(|t| t.id).collect();
            (ids == ["lumen-dashboards", "riverflow"]).then_some(ids)
        }
    })
    .await?;
    assert_eq!(listed.len(), 2, "self-test tiles are left out by default");
    let all = b
        .list_tiles(ListTilesRequest {
            include_self_test: true,
            ..Default::default()
        })
        .await?
        .into_inner();
    assert_eq!(
        all.tiles.len(),
        4,
        "two launch tiles, a withdrawn and a live self-test tile"
    );

    // Filters and pages.
    let ids = |r: ListTilesResponse| r.tiles.into_iter().map(|t| t.id).collect::<Vec<_>>();
    let gcp = b
        .list_tiles(ListTilesRequest {
            cloud: Cloud::Gcp as i32,
            ..Default::default()
        })
        .await?
        .into_inner();
    assert_eq!(ids(gcp), ["riverflow"]);
    let bi = b
        .list_tiles(ListTilesRequest {
            category: PartnerCategory::BiAndViz as i32,
            ..Default::default()
        })
        .await?
        .into_inner();
    assert_eq!(ids(bi), ["lumen-dashboards"]);
    let withdrawn = b
        .list_tiles(ListTilesRequest {
            states: vec![TileState::Withdrawn as i32],
            include_self_test: true,
            ..Default::default()
        })
        .await?
        .into_inner();
    assert_eq!(ids(withdrawn), ["quarry-notebooks"]);
    let mut token = String::new();
    let mut paged = Vec::new();
    loop {
        let page = b
            .list_tiles(ListTilesRequest {
                include_self_test: true,
                page: Some(PageRequest {
                    page_size: 3,
                    page_token: token.clone(),
                }),
                ..Default::default()
            })
            .await?
            .into_inner();
        assert!(page.tiles.len() <= 3);
        token = page.next_page_token.clone();
        paged.extend(ids(page));
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(
        paged,
        ["lumen-dashboards", "quarry-2", "quarry-notebooks", "riverflow"]
    );
    let bad = b
        .list_tiles(ListTilesRequest {
            page: Some(PageRequest {
                page_size: 1,
                page_token: "nonsense".into(),
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    Ok(())
}

async fn sign_all(
    c: &mut RegistryServiceClient<tonic::transport::Channel>,
    id: &str,
    revision: i64,
) -> anyhow::Result<Tile> {
    pass_checklist(c, id).await?;
    let mut tile = get(c, id).await?;
    for role in ROLES {
        tile = c
            .record_sign_off(as_actor(
                "bob",
                RecordSignOffRequest {
                    id: id.into(),
                    role: role as i32,
                    revision,
                    note: String::new(),
                    etag: tile.etag,
                },
            ))
            .await?
            .into_inner()
            .tile
            .expect("tile");
    }
    Ok(tile)
}

#[tokio::test]
async fn walks_a_tile_to_scheduled_and_refuses_each_bad_move_with_its_own_code() -> anyhow::Result<()> {
    let stack = Stack::start(2).await?;
    let mut a = stack.client(0).await?;
    let mut b = stack.client(1).await?;
    let tile = import(&mut a, RIVERFLOW, "").await?;

    let tile = a
        .set_test_workspace(SetTestWorkspaceRequest {
            id: tile.id.clone(),
            workspace_id: "6051921418418893".into(),
            etag: tile.etag,
        })
        .await?
        .into_inner()
        .tile
        .expect("tile");
    assert_eq!(tile.state, TileState::Validating as i32);

    let before = stack.dump().await?;
    // Unknown tile.
    let e = a
        .get_tile(GetTileRequest {
            id: "nope".into(),
            revision: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    // Unknown sign-off role.
    let e = a
        .record_sign_off(RecordSignOffRequest {
            id: "riverflow".into(),
            role: 42,
            revision: 1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    // A stale etag.
    let e = a
        .record_sign_off(RecordSignOffRequest {
            id: "riverflow".into(),
            role: SignOffRole::Engineering as i32,
            revision: 1,
            etag: tile.etag - 1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Aborted, "{e:?}");
    // A GA date before all sign-offs.
    let now = jiff::Timestamp::from_second(get_time_hint(&tile))?;
    let e = a
        .set_ga_date(SetGaDateRequest {
            id: "riverflow".into(),
            ga_time: Some(ts(now + jiff::SignedDuration::from_hours(24 * 30))),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    // An illegal lifecycle move (lifecycle moves are the rollout service's).
    let e = stack
        .client_as(0, "rollout")
        .await?
        .advance_lifecycle(AdvanceLifecycleRequest {
            id: "riverflow".into(),
            target_state: TileState::Ga as i32,
            expected_revision: 1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert_eq!(stack.dump().await?, before, "refused requests changed etcd");

    // Sign-offs through the other replica.
    let tile = sign_all(&mut b, "riverflow", 1).await?;
    assert_eq!(tile.state, TileState::SignedOff as i32);
    assert!(tile.missing_sign_offs.is_empty());

    // GA under 7 days ahead: refused, nothing stored.
    let before = stack.dump().await?;
    let e = a
        .set_ga_date(SetGaDateRequest {
            id: "riverflow".into(),
            ga_time: Some(ts(now + jiff::SignedDuration::from_hours(24 * 6))),
            etag: 0,
            reason: String::new(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("week of notice"), "{}", e.message());
    assert_eq!(stack.dump().await?, before);

    gtm_done(&mut a, "riverflow").await?;
    let tile = a
        .set_ga_date(SetGaDateRequest {
            id: "riverflow".into(),
            ga_time: Some(ts(now + jiff::SignedDuration::from_hours(24 * 9))),
            etag: 0,
            reason: "launch post".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .tile
        .expect("tile");
    assert_eq!(tile.state, TileState::Scheduled as i32);

    // The history names who did what, oldest first.
    let history = b
        .get_history(GetHistoryRequest {
            id: "riverflow".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let actions: Vec<&str> = history.records.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "ImportPartnerConfig",
            "SetTestWorkspace",
            "RecordValidation",
            "RecordSignOff",
            "RecordSignOff",
            "RecordSignOff",
            "RecordSignOff",
            "RecordSignOff",
            "SetGtmItem",
            "SetGtmItem",
            "SetGtmItem",
            "SetGtmItem",
            "SetGaDate"
        ]
    );
    // The certificate identity, not the name claimed in x-tilewave-actor.
    assert_eq!(history.records[0].actor, RELEASE_ENGINEER);
    assert_eq!(history.records[2].actor, RELEASE_ENGINEER);
    assert_eq!(history.records[3].actor, RELEASE_ENGINEER);
    Ok(())
}

/// The tile's creation time, which the registry stamped from its clock: the
/// tests base GA dates on it rather than on this process's wall clock.
fn get_time_hint(tile: &Tile) -> i64 {
    tile.created_at.as_ref().map(|t| t.seconds).unwrap_or_default()
}

#[tokio::test]
async fn a_new_revision_clears_sign_offs_and_concurrent_updates_have_one_winner() -> anyhow::Result<()> {
    let stack = Stack::start(2).await?;
    let mut a = stack.client(0).await?;
    let mut b = stack.client(1).await?;
    import(&mut a, LUMEN, "").await?;
    a.set_test_workspace(SetTestWorkspaceRequest {
        id: "lumen-dashboards".into(),
        workspace_id: "42".into(),
        etag: 0,
    })
    .await?;
    let signed = sign_all(&mut a, "lumen-dashboards", 1).await?;
    assert_eq!(signed.state, TileState::SignedOff as i32);

    // Two updates naming the same etag, one on each replica, at once.
    let v2 = LUMEN.replace("Self-service dashboards", "Dashboards v2");
    let v2b = LUMEN.replace("Self-service dashboards", "Dashboards v2b");
    let req = |json: String| UpdateTileRequest {
        id: "lumen-dashboards".into(),
        etag: signed.etag,
        source: Some(update_tile_request::Source::ConfigJson(json)),
        note: "blurb".into(),
        ..Default::default()
    };
    let (ra, rb) = tokio::join!(a.update_tile(req(v2)), b.update_tile(req(v2b)));
    let outcomes = [ra.map(|r| r.into_inner()), rb.map(|r| r.into_inner())];
    let winners: Vec<&UpdateTileResponse> = outcomes.iter().filter_map(|r| r.as_ref().ok()).collect();
    let losers: Vec<&tonic::Status> = outcomes.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(winners.len(), 1, "exactly one update wins");
    assert_eq!(losers[0].code(), Code::Aborted, "{:?}", losers[0]);

    let tile = get(&mut a, "lumen-dashboards").await?;
    assert_eq!(tile.revision, 2);
    assert_eq!(
        tile.missing_sign_offs.len(),
        5,
        "a new revision clears the sign-offs"
    );
    assert_ne!(tile.state, TileState::SignedOff as i32);
    // Revision 1 is still there, unchanged.
    let r1 = a
        .get_tile(GetTileRequest {
            id: "lumen-dashboards".into(),
            revision: 1,
        })
        .await?
        .into_inner();
    let r1 = r1.tile.expect("tile");
    assert!(
        r1.config
            .expect("config")
            .description_blurb
            .starts_with("Self-service")
    );
    // A sign-off on the superseded revision is refused.
    let e = a
        .record_sign_off(RecordSignOffRequest {
            id: "lumen-dashboards".into(),
            role: SignOffRole::Engineering as i32,
            revision: 1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    Ok(())
}

#[tokio::test]
async fn the_fifth_sign_off_without_a_test_workspace_says_which_command_fixes_it() -> anyhow::Result<()> {
    let stack = Stack::start(1).await?;
    let mut c = stack.client(0).await?;
    c.import_partner_config(ImportPartnerConfigRequest {
        config_json: RIVERFLOW.into(),
        ..Default::default()
    })
    .await?;
    pass_checklist(&mut c, "riverflow").await?;
    for role in &ROLES[..4] {
        c.record_sign_off(RecordSignOffRequest {
            id: "riverflow".into(),
            role: *role as i32,
            revision: 1,
            ..Default::default()
        })
        .await?;
    }
    let before = stack.dump().await?;
    let e = c
        .record_sign_off(RecordSignOffRequest {
            id: "riverflow".into(),
            role: ROLES[4] as i32,
            revision: 1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(
        e.message()
            .contains("`tilewave tile set-test-workspace TILE WORKSPACE_ID`"),
        "{}",
        e.message()
    );
    assert!(
        !e.message().contains("AllSignedOff") && !e.message().contains("refused for"),
        "names no internal event: {}",
        e.message()
    );
    assert_eq!(stack.dump().await?, before, "the refused sign-off changed etcd");
    Ok(())
}

/// A change is made on the replica's cached copy of the tile first (no read
/// of etcd); a copy behind etcd is refused by the transaction's etag compare
/// and the change is made again on what etcd holds, and a copy whose etag is
/// not the caller's is not used. The replica's watch is put behind on
/// purpose: a thousand tiles written straight to etcd, then a change of the
/// tile itself, then at once a change through the replica.
#[tokio::test]
async fn a_change_made_while_the_replicas_cache_is_behind_builds_on_etcd() -> anyhow::Result<()> {
    let stack = Stack::start(1).await?;
    let mut a = stack.client(0).await?;
    let tile = import(&mut a, LUMEN, "").await?;
    let store = stack.etcd.store(PREFIX).await?;
    let test = tilewave_store::Actor::new("test");
    let key = store.keys().tile(&tile.id);
    let filler = |round: usize| {
        (0..100).fold(tilewave_store::Change::new(), |c, n| {
            let id = format!("filler-{round}-{n}");
            c.put_unchecked(
                store.keys().tile(&id),
                &Tile {
                    id,
                    raw_config: "x".repeat(2000),
                    ..tile.clone()
                },
            )
        })
    };
    for round in 0..3 {
        for part in 0..10 {
            store.commit(filler(round * 10 + part), &test).await?;
        }
        // The tile changed behind the replica's back, after the burst its
        // watch is still working through.
        let current = store.get_required::<Tile>(&key).await?;
        let reason = format!("changed in etcd {round}");
        let direct = store
            .commit(
                tilewave_store::Change::new().update(
                    key.clone(),
                    &Tile {
                        state_reason: reason.clone(),
                        ..current.value.clone()
                    },
                    current.etag,
                ),
                &test,
            )
            .await?;
        // With etag 0: made on etcd's tile, whatever the cache held.
        let changed = a
            .set_test_workspace(SetTestWorkspaceRequest {
                id: tile.id.clone(),
                workspace_id: format!("{round}1"),
                etag: 0,
            })
            .await
            .map_err(|s| anyhow::anyhow!("round {round}: {s:?}"))?
            .into_inner()
            .tile
            .unwrap_or_default();
        assert!(changed.etag > direct.revision, "round {round}");
        assert_eq!(
            changed.state_reason, reason,
            "round {round}: built on etcd's tile"
        );
        assert_eq!(changed.test_workspace_id, format!("{round}1"));
        // With the etag just returned: accepted (a cache still behind it is
        // not compared against the caller's etag).
        let again = a
            .set_test_workspace(SetTestWorkspaceRequest {
                id: tile.id.clone(),
                workspace_id: format!("{round}2"),
                etag: changed.etag,
            })
            .await
            .map_err(|s| anyhow::anyhow!("round {round}: {s:?}"))?
            .into_inner()
            .tile
            .unwrap_or_default();
        assert_eq!(again.state_reason, reason, "round {round}");
        assert!(again.etag > changed.etag, "round {round}");
    }
    Ok(())
}
