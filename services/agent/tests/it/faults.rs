//! Fault injection: lost catalog, forced unhealthy, failing calls, refusal
//! to start.

use tilewave_proto::common::v1::HealthStatus;
use tonic::Code;

use crate::*;

async fn health_of(stack: &Stack, tile: &str) -> Result<TileHealth> {
    let resp = stack
        .client()
        .await?
        .health(HealthRequest {
            tile_ids: vec![tile.into()],
            probe_now: false,
        })
        .await?
        .into_inner();
    resp.tiles
        .into_iter()
        .next()
        .context("no tile in the health response")
}

#[tokio::test]
async fn lose_catalog_empties_it_with_a_new_generation() -> Result<()> {
    let mut stack = Stack::start().await?;
    let mut c = stack.client().await?;
    c.apply_tile(apply("riverflow-ingest", 1, 1)).await?;
    c.apply_tile(apply("lumen-bi", 1, 1)).await?;
    let before = stack.list().await?;

    let lost = stack
        .faults()
        .await?
        .lose_catalog(LoseCatalogRequest {})
        .await?
        .into_inner();
    assert_eq!(lost.entries_lost, 2);
    let after = stack.list().await?;
    assert!(after.entries.is_empty());
    assert_ne!(after.catalog_generation, before.catalog_generation);

    stack.agent.restart().await?;
    assert_eq!(stack.list().await?, after, "the loss is on disk too");
    Ok(())
}

#[tokio::test]
async fn report_unhealthy_makes_health_unhealthy_until_cleared() -> Result<()> {
    let stack = Stack::start().await?;
    stack
        .client()
        .await?
        .apply_tile(apply("riverflow-ingest", 1, 1))
        .await?;
    // The partner host may not be contacted: health rests on faults and the
    // error rate, so the tile is healthy.
    let h = health_of(&stack, "riverflow-ingest").await?;
    assert_eq!(h.status(), HealthStatus::Healthy, "{}", h.reason);

    let mut f = stack.faults().await?;
    f.report_unhealthy(ReportUnhealthyRequest {
        tile_id: "riverflow-ingest".into(),
        unhealthy: true,
        error_rate: 0.75,
        message: "partner returns 500".into(),
    })
    .await?;
    let h = health_of(&stack, "riverflow-ingest").await?;
    assert_eq!(h.status(), HealthStatus::Unhealthy);
    assert_eq!(h.error_rate, 0.75);
    assert!(h.reason.contains("partner returns 500"), "{}", h.reason);
    assert_eq!(
        f.get_faults(GetFaultsRequest {})
            .await?
            .into_inner()
            .faults
            .unwrap_or_default()
            .unhealthy_tiles,
        ["riverflow-ingest"]
    );

    f.clear_faults(ClearFaultsRequest {}).await?;
    assert_eq!(
        health_of(&stack, "riverflow-ingest").await?.status(),
        HealthStatus::Healthy
    );
    Ok(())
}

#[tokio::test]
async fn fail_next_calls_fails_exactly_that_many() -> Result<()> {
    let stack = Stack::start().await?;
    stack
        .faults()
        .await?
        .fail_next_calls(FailNextCallsRequest {
            count: 2,
            ..Default::default()
        })
        .await?;
    let mut c = stack.client().await?;
    let mut codes = Vec::new();
    for _ in 0..4 {
        codes.push(match c.list_tiles(ListTilesRequest::default()).await {
            Ok(_) => Code::Ok,
            Err(s) => s.code(),
        });
    }
    assert_eq!(codes, [Code::Unavailable, Code::Unavailable, Code::Ok, Code::Ok]);
    Ok(())
}

#[tokio::test]
async fn refuse_to_start_makes_the_next_start_fail_until_the_flag_is_gone() -> Result<()> {
    let mut stack = Stack::start().await?;
    let mut f = stack.faults().await?;
    let faults = f
        .refuse_to_start(RefuseToStartRequest { refuse: true })
        .await?
        .into_inner()
        .faults
        .unwrap_or_default();
    assert!(faults.refuse_to_start);
    // The running process keeps serving.
    stack.list().await?;
    stack.agent.terminate(std::time::Duration::from_secs(10)).await?;

    let err = ServiceProcess::start(spec(&stack.etcd, &stack.dir)?, stack.dir.path())
        .await
        .expect_err("the agent started despite the refuse flag");
    let text = format!("{err:#}");
    assert!(text.contains("refusing to start"), "{text}");
    assert!(text.contains("refuse-to-start"), "{text}");

    std::fs::remove_file(stack.data_dir().join("refuse-to-start"))?;
    stack.agent = ServiceProcess::start(spec(&stack.etcd, &stack.dir)?, stack.dir.path()).await?;

    // ClearFaults clears the flag too.
    let mut f = stack.faults().await?;
    f.refuse_to_start(RefuseToStartRequest { refuse: true }).await?;
    let faults = f
        .clear_faults(ClearFaultsRequest {})
        .await?
        .into_inner()
        .faults
        .unwrap_or_default();
    assert!(!faults.refuse_to_start);
    stack.agent.restart().await?;
    Ok(())
}
