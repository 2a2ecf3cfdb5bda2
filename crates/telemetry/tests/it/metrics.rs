//! The RPC counters move by exactly the calls made, as scraped over HTTP.

use anyhow::{Context as _, Result, bail};
use tilewave_telemetry::{Metrics, ServerLayer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tonic::Code;

use crate::{KNOWN, TestServer, check};

async fn get(addr: std::net::SocketAddr, path: &str) -> Result<(String, String)> {
    let mut stream = TcpStream::connect(addr).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let (head, body) = response.split_once("\r\n\r\n").context("no header end")?;
    let status = head.lines().next().unwrap_or_default().to_owned();
    Ok((status, body.to_owned()))
}

/// The value of the sample whose name and labels are exactly `series`; 0
/// when absent.
fn sample(text: &str, series: &str) -> Result<f64> {
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(series)
            && let Some(value) = rest.strip_prefix(' ')
        {
            return Ok(value.trim().parse()?);
        }
    }
    Ok(0.0)
}

const OK_SERIES: &str =
    r#"tilewave_rpc_requests_total{service="grpc.health.v1.Health",method="Check",code="OK"}"#;
const NOT_FOUND_SERIES: &str =
    r#"tilewave_rpc_requests_total{service="grpc.health.v1.Health",method="Check",code="NOT_FOUND"}"#;
const DURATION_COUNT: &str =
    r#"tilewave_rpc_duration_seconds_count{service="grpc.health.v1.Health",method="Check"}"#;

#[tokio::test]
async fn rpc_counters_move_by_exactly_the_calls_made() -> Result<()> {
    let metrics = Metrics::new();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let metrics_addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = metrics.clone();
    let endpoint = tokio::spawn(async move {
        serving
            .serve(listener, async {
                let _ = stopped.await;
            })
            .await
    });

    let server = TestServer::start(ServerLayer::with_metrics(metrics.clone())).await?;
    let mut client = server.client().await?;
    // Warm the series up so "before" is a real scrape, not an absence.
    assert_eq!(check(&mut client, KNOWN).await, Code::Ok);

    let (status, before) = get(metrics_addr, "/metrics").await?;
    assert_eq!(status, "HTTP/1.1 200 OK");
    let (ok_calls, failed_calls) = (5, 3);
    for _ in 0..ok_calls {
        assert_eq!(check(&mut client, KNOWN).await, Code::Ok);
    }
    for _ in 0..failed_calls {
        assert_eq!(check(&mut client, "no.such.Service").await, Code::NotFound);
    }
    let (_, after) = get(metrics_addr, "/metrics").await?;

    let moved = |series: &str| -> Result<f64> { Ok(sample(&after, series)? - sample(&before, series)?) };
    assert_eq!(moved(OK_SERIES)?, f64::from(ok_calls), "{after}");
    assert_eq!(moved(NOT_FOUND_SERIES)?, f64::from(failed_calls), "{after}");
    assert_eq!(
        moved(DURATION_COUNT)?,
        f64::from(ok_calls + failed_calls),
        "{after}"
    );
    if !after.trim_end().ends_with("# EOF") {
        bail!("not OpenMetrics text: {after}");
    }

    let (status, _) = get(metrics_addr, "/other").await?;
    assert_eq!(status, "HTTP/1.1 404 Not Found");

    let _ = stop.send(());
    endpoint.await??;
    Ok(())
}
