//! The catalog: idempotent, fenced applies that survive a restart.

use tonic::Code;

use crate::*;

#[tokio::test]
async fn applying_twice_counts_one_apply() -> Result<()> {
    let stack = Stack::start().await?;
    let mut c = stack.client().await?;
    let first = c.apply_tile(apply("riverflow-ingest", 1, 10)).await?.into_inner();
    assert!(first.changed);
    let again = c.apply_tile(apply("riverflow-ingest", 1, 10)).await?.into_inner();
    assert!(!again.changed);
    let list = stack.list().await?;
    assert_eq!(list.region, REGION);
    assert_eq!(list.entries.len(), 1);
    let e = &list.entries[0];
    assert_eq!(
        (e.tile_id.as_str(), e.revision, e.apply_count, e.fencing_token),
        ("riverflow-ingest", 1, 1, 10)
    );
    assert_eq!(e.applies_by_revision.get(&1), Some(&1));
    Ok(())
}

#[tokio::test]
async fn a_stale_token_is_refused_and_nothing_changes() -> Result<()> {
    let stack = Stack::start().await?;
    let mut c = stack.client().await?;
    c.apply_tile(apply("riverflow-ingest", 1, 10)).await?;
    let before = stack.list().await?;
    let file = stack.data_dir().join("catalog.pb");
    let bytes_before = std::fs::read(&file)?;
    let log = stack.data_dir().join("catalog.log");
    let log_before = std::fs::read(&log)?;

    let status = c.apply_tile(apply("riverflow-ingest", 2, 9)).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().starts_with("stale fencing token 9 < 10"),
        "{}",
        status.message()
    );
    let status = c
        .remove_tile(RemoveTileRequest {
            tile_id: "riverflow-ingest".into(),
            fencing_token: 3,
            rollout_id: "old".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);

    assert_eq!(stack.list().await?, before);
    assert_eq!(
        std::fs::read(&file)?,
        bytes_before,
        "the catalog file was rewritten"
    );
    assert_eq!(std::fs::read(&log)?, log_before, "the catalog log was written");

    // A newer token goes through, and removal is idempotent.
    let r2 = c.apply_tile(apply("riverflow-ingest", 2, 11)).await?.into_inner();
    assert!(r2.changed);
    let rm = RemoveTileRequest {
        tile_id: "riverflow-ingest".into(),
        fencing_token: 11,
        rollout_id: "r-2".into(),
    };
    assert!(c.remove_tile(rm.clone()).await?.into_inner().removed);
    assert!(!c.remove_tile(rm).await?.into_inner().removed);
    assert!(stack.list().await?.entries.is_empty());
    Ok(())
}

#[tokio::test]
async fn the_catalog_survives_a_restart() -> Result<()> {
    let mut stack = Stack::start().await?;
    let mut c = stack.client().await?;
    c.apply_tile(apply("riverflow-ingest", 3, 5)).await?;
    c.apply_tile(ApplyTileRequest {
        hidden: Some(true),
        ..apply("lumen-bi", 1, 2)
    })
    .await?;
    let before = stack.list().await?;
    assert_eq!(before.entries.len(), 2);

    stack.agent.restart().await?;
    let after = stack.list().await?;
    assert_eq!(after, before, "entries, counts, tokens and generation survive");
    // The remembered token still fences after the restart.
    let mut c = stack.client().await?;
    let status = c.apply_tile(apply("riverflow-ingest", 4, 4)).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    // And re-applying the live revision is still a no-op.
    assert!(
        !c.apply_tile(apply("riverflow-ingest", 3, 5))
            .await?
            .into_inner()
            .changed
    );
    Ok(())
}

#[tokio::test]
async fn credentials_are_not_faked() -> Result<()> {
    // A tile without a credential is not verified as if it had one, and an
    // empty request installs nothing.
    let stack = Stack::start().await?;
    let mut c = stack.client().await?;
    c.apply_tile(apply("riverflow-ingest", 1, 1)).await?;
    let status = c
        .verify_credential(VerifyCredentialRequest {
            tile_id: "riverflow-ingest".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains("no CURRENT credential"),
        "{}",
        status.message()
    );
    let status = c
        .install_credential(InstallCredentialRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    Ok(())
}
