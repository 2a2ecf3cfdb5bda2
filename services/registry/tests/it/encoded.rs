//! GetTile of the latest revision is answered from an encoding kept per
//! tile version (issue 18: the read target against a health check). What
//! a caller gets must not differ from the answer built afresh: the same
//! message as GetTile of the latest revision by number (which is built
//! every time), the new version at once after every kind of change, on the
//! replica written to and on another, and nothing for a caller who may
//! not see the tile, whatever is kept. ListTiles keeps a few recent
//! answers under the tile cache's revision, the request and the caller:
//! the same listing asked again is the same answer, filters and pages are
//! their own, a change of any tile shows in the next listing at once, and
//! a partner lists only its own.

use std::time::Duration;

use tilewave_testkit::eventually;
use tilewave_testkit::pki::PARTNER_GLOBEX;

use crate::*;

/// GetTile of the latest revision (the kept encoding), twice, against
/// GetTile of that revision by number (built afresh); returns the answer.
async fn same_as_built(c: &mut RegistryServiceClient<Channel>, id: &str) -> Result<GetTileResponse> {
    let kept = get_at(c, id, 0).await?;
    let again = get_at(c, id, 0).await?;
    let revision = kept.tile.as_ref().context("a tile")?.revision;
    let built = get_at(c, id, revision).await?;
    assert_eq!(kept, again, "two reads of one version");
    assert_eq!(kept, built, "the kept answer against the one built afresh");
    Ok(kept)
}

#[tokio::test]
async fn a_kept_answer_is_the_built_one_and_every_change_replaces_it() -> Result<()> {
    let stack = Stack::start(2).await?;
    let mut a = stack.client(0).await?;
    let mut b = stack.client(1).await?;
    let tile = import(&mut a, RIVERFLOW, "").await?;
    let id = tile.id.clone();
    let first = same_as_built(&mut a, &id).await?;
    assert_eq!(first.tile.as_ref().map(|t| t.etag), Some(tile.etag));

    // A change that keeps the revision: the test workspace.
    let moved = a
        .set_test_workspace(SetTestWorkspaceRequest {
            id: id.clone(),
            etag: tile.etag,
            workspace_id: "6051921418418893".into(),
        })
        .await?
        .into_inner()
        .tile
        .context("tile")?;
    let second = same_as_built(&mut a, &id).await?;
    let shown = second.tile.as_ref().context("tile")?;
    assert_eq!(
        (shown.etag, shown.test_workspace_id.as_str()),
        (moved.etag, "6051921418418893")
    );
    assert_ne!(second, first);

    // A new revision: the tile and its summaries.
    let updated = a
        .update_tile(UpdateTileRequest {
            id: id.clone(),
            etag: moved.etag,
            source: Some(update_tile_request::Source::ConfigJson(RIVERFLOW.into())),
            note: "v2".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .tile
        .context("tile")?;
    let third = same_as_built(&mut a, &id).await?;
    assert_eq!(
        third.tile.as_ref().map(|t| (t.etag, t.revision)),
        Some((updated.etag, 2))
    );
    let revisions: Vec<i64> = third.revisions.iter().map(|s| s.revision).collect();
    assert_eq!(revisions, [1, 2]);

    // The other replica keeps its own, and shows the same once its watch
    // has the change.
    let on_b = eventually(
        "the second replica shows revision 2",
        Duration::from_secs(30),
        || {
            let mut b = b.clone();
            let id = id.clone();
            async move {
                let r = get_at(&mut b, &id, 0).await.ok()?;
                (r.tile.as_ref().map(|t| t.etag) == Some(updated.etag)).then_some(r)
            }
        },
    )
    .await?;
    assert_eq!(on_b, third);
    assert_eq!(same_as_built(&mut b, &id).await?, third);

    // A partner who may not see the tile gets what a missing tile gets,
    // although the answer is kept.
    assert_ne!(tile.partner_id, "globex");
    let mut globex = stack.client_as(0, PARTNER_GLOBEX).await?;
    let hidden = get_at(&mut globex, &id, 0)
        .await
        .err()
        .context("hidden from another partner")?;
    let missing = get_at(&mut globex, "no-such-tile", 0)
        .await
        .err()
        .context("a missing tile")?;
    let hidden = hidden.downcast_ref::<tonic::Status>().context("a status")?;
    let missing = missing.downcast_ref::<tonic::Status>().context("a status")?;
    assert_eq!(hidden.code(), tonic::Code::NotFound);
    assert_eq!(
        hidden.message().replace(&id, "X"),
        missing.message().replace("no-such-tile", "X")
    );
    Ok(())
}

async fn list(c: &mut RegistryServiceClient<Channel>, r: ListTilesRequest) -> Result<ListTilesResponse> {
    Ok(c.list_tiles(r).await?.into_inner())
}

/// The listing as GetTile shows each tile (without the raw document, as
/// ListTiles leaves it out by default).
async fn as_got(c: &mut RegistryServiceClient<Channel>, listed: &ListTilesResponse) -> Result<Vec<Tile>> {
    let mut out = Vec::new();
    for t in &listed.tiles {
        let mut got = get_at(c, &t.id, 0).await?.tile.context("a tile")?;
        got.raw_config.clear();
        out.push(got);
    }
    Ok(out)
}

#[tokio::test]
async fn a_kept_listing_holds_until_a_tile_changes_and_is_the_askers_own() -> Result<()> {
    let stack = Stack::start(1).await?;
    let mut a = stack.client(0).await?;
    let river = import(&mut a, RIVERFLOW, "").await?;
    let lumen = import(&mut a, LUMEN, "").await?;
    let all = ListTilesRequest::default();
    let first = list(&mut a, all.clone()).await?;
    assert_eq!(list(&mut a, all.clone()).await?, first, "asked again, unchanged");
    let ids: Vec<&str> = first.tiles.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, [lumen.id.as_str(), river.id.as_str()]);
    assert_eq!(first.tiles, as_got(&mut a, &first).await?);

    // Filters and pages are answers of their own.
    let only = ListTilesRequest {
        partner_id: lumen.partner_id.clone(),
        ..Default::default()
    };
    let filtered = list(&mut a, only).await?;
    assert_eq!(filtered.tiles.len(), 1);
    assert_eq!(filtered.tiles[0].id, lumen.id);
    let page = |token: &str| ListTilesRequest {
        page: Some(tilewave_proto::common::v1::PageRequest {
            page_size: 1,
            page_token: token.into(),
        }),
        ..Default::default()
    };
    let one = list(&mut a, page("")).await?;
    let two = list(&mut a, page(&one.next_page_token)).await?;
    assert_eq!((one.tiles.len(), two.tiles.len()), (1, 1));
    assert_eq!(
        [one.tiles[0].id.as_str(), two.tiles[0].id.as_str()],
        ids.as_slice()
    );
    assert!(two.next_page_token.is_empty());

    // A change of one tile: the next listing shows it at once.
    let moved = a
        .set_test_workspace(SetTestWorkspaceRequest {
            id: river.id.clone(),
            etag: river.etag,
            workspace_id: "6051921418418893".into(),
        })
        .await?
        .into_inner()
        .tile
        .context("tile")?;
    let after = list(&mut a, all.clone()).await?;
    assert!(
        after.read_revision >= moved.etag,
        "{} < {}",
        after.read_revision,
        moved.etag
    );
    let shown = after.tiles.iter().find(|t| t.id == river.id).context("listed")?;
    assert_eq!(
        (shown.etag, shown.test_workspace_id.as_str()),
        (moved.etag, "6051921418418893")
    );
    assert_eq!(after.tiles, as_got(&mut a, &after).await?);

    // A partner lists only its own, although everyone's listing is kept.
    assert!(![river.partner_id.as_str(), lumen.partner_id.as_str()].contains(&"globex"));
    let mut globex = stack.client_as(0, PARTNER_GLOBEX).await?;
    assert!(list(&mut globex, all.clone()).await?.tiles.is_empty());
    assert_eq!(list(&mut a, all).await?, after);
    Ok(())
}
