//! GetTile of the latest revision is answered from an encoding kept per
//! tile version (issue 18: the read target against a health check). What
//! a caller gets must not differ from the answer built afresh: the same
//! message as GetTile of the latest revision by number (which is built
//! every time), the new version at once after every kind of change, on the
//! replica written to and on another, and nothing for a caller who may
//! not see the tile, whatever is kept.

use std::time::Duration;

use tilewave_testkit::eventually;
use tilewave_testkit::pki::PARTNER_GLOBEX;

use crate::*;

async fn get_at(c: &mut RegistryServiceClient<Channel>, id: &str, revision: i64) -> Result<GetTileResponse> {
    Ok(c.get_tile(GetTileRequest {
        id: id.into(),
        revision,
    })
    .await?
    .into_inner())
}

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
