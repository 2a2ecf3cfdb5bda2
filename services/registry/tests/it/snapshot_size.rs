//! WatchTiles with more tiles than the stream's buffer (256): the whole
//! snapshot arrives, then SNAPSHOT_END. (The snapshot used to be sent into
//! the buffer before the stream was returned, so past 256 tiles the call
//! never answered; found by `tilewave-bench scale`.)

use std::time::Duration;

use futures::StreamExt as _;

use crate::*;

#[tokio::test]
async fn a_snapshot_larger_than_the_buffer_arrives_whole() -> Result<()> {
    let stack = Stack::start(1).await?;
    let c = stack.client(0).await?;
    let tiles = 300;
    let imports = futures::stream::iter(0..tiles)
        .map(|i| {
            let mut c = c.clone();
            async move {
                c.import_partner_config(ImportPartnerConfigRequest {
                    config_json: RIVERFLOW.replacen("\"Riverflow\"", &format!("\"Many {i:03}\""), 1),
                    id: format!("many-{i:03}"),
                    ..Default::default()
                })
                .await
            }
        })
        .buffer_unordered(8);
    futures::pin_mut!(imports);
    while let Some(done) = imports.next().await {
        done?;
    }
    let mut c = c.clone();
    let watch = async {
        let mut stream = c.watch_tiles(WatchTilesRequest::default()).await?.into_inner();
        let mut seen = 0;
        while let Some(event) = stream.next().await {
            match TileEventType::try_from(event?.r#type) {
                Ok(TileEventType::Snapshot) => seen += 1,
                Ok(TileEventType::SnapshotEnd) => return Ok::<_, anyhow::Error>(seen),
                _ => {}
            }
        }
        anyhow::bail!("the stream ended before SNAPSHOT_END")
    };
    let seen = tokio::time::timeout(Duration::from_secs(60), watch)
        .await
        .context("WatchTiles did not deliver its snapshot within 60 s")??;
    assert_eq!(seen, tiles);
    Ok(())
}
