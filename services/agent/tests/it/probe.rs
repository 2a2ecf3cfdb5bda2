//! The synthetic probe against a loopback test-connection server, and a
//! partner host that is never contacted.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tilewave_proto::common::v1::{HealthStatus, TestStatus};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use crate::*;

/// A tiny partner: `POST /pass` answers every test PASS, `POST /fail` one
/// test FAIL, anything else 404. Counts the requests it saw.
struct Partner {
    base_url: String,
    requests: Arc<AtomicUsize>,
}

impl Partner {
    async fn start() -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let requests = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&requests);
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let seen = Arc::clone(&seen);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    // Read the head and the body (Content-Length).
                    loop {
                        let Ok(n) = sock.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                            let len = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            if buf.len() >= end + 4 + len {
                                break;
                            }
                        }
                    }
                    seen.fetch_add(1, Ordering::SeqCst);
                    let head = String::from_utf8_lossy(&buf);
                    let (status, body) = if head.starts_with("POST /pass ") {
                        (
                            "200 OK",
                            r#"{"test_results":[{"test_name":"connect","status":"PASS","message":"ok"}]}"#,
                        )
                    } else if head.starts_with("POST /fail ") {
                        (
                            "200 OK",
                            r#"{"test_results":[{"test_name":"connect","status":"PASS"},{"test_name":"write","status":"FAIL","message":"no permission"}]}"#,
                        )
                    } else {
                        (
                            "404 Not Found",
                            r#"{"error_reason":"general_error","display_message":"no such endpoint"}"#,
                        )
                    };
                    let response = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(response.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        Ok(Self { base_url, requests })
    }
}

async fn probe_now(stack: &Stack, tile: &str) -> Result<TileHealth> {
    let resp = stack
        .client()
        .await?
        .health(HealthRequest {
            tile_ids: vec![tile.into()],
            probe_now: true,
        })
        .await?
        .into_inner();
    resp.tiles
        .into_iter()
        .next()
        .context("no tile in the health response")
}

#[tokio::test]
async fn a_loopback_probe_reports_pass_and_fail() -> Result<()> {
    let partner = Partner::start().await?;
    let stack = Stack::start().await?;
    let mut c = stack.client().await?;
    let with = |tile: &str, path: &str| ApplyTileRequest {
        config: Some(config(&partner.base_url, path)),
        ..apply(tile, 1, 1)
    };
    c.apply_tile(with("passing", "/pass")).await?;
    c.apply_tile(with("failing", "/fail")).await?;

    let h = probe_now(&stack, "passing").await?;
    let probe = h.probe.clone().context("no probe")?;
    assert_eq!(probe.status(), TestStatus::Pass, "{probe:?}");
    assert_eq!(probe.http_status, 200);
    assert_eq!(probe.tests.len(), 1);
    assert_eq!(h.status(), HealthStatus::Healthy, "{}", h.reason);
    assert_eq!((h.request_count, h.error_rate), (1, 0.0));

    let h = probe_now(&stack, "failing").await?;
    let probe = h.probe.clone().context("no probe")?;
    assert_eq!(probe.status(), TestStatus::Fail, "{probe:?}");
    assert!(probe.message.contains("write"), "{}", probe.message);
    assert_eq!(h.status(), HealthStatus::Unhealthy);
    assert_eq!((h.request_count, h.error_rate), (1, 1.0));
    assert!(partner.requests.load(Ordering::SeqCst) >= 2);
    Ok(())
}

/// An apply asked to probe after it answers with the health Health would
/// give (the roll-out's gate without a second call); without the ask,
/// with none.
#[tokio::test]
async fn an_apply_can_answer_with_the_probe_after_it() -> Result<()> {
    let partner = Partner::start().await?;
    let stack = Stack::start().await?;
    let mut c = stack.client().await?;
    let with = |tile: &str, path: &str, probe_after: bool| ApplyTileRequest {
        config: Some(config(&partner.base_url, path)),
        probe_after,
        ..apply(tile, 1, 1)
    };
    let plain = c.apply_tile(with("quiet", "/pass", false)).await?.into_inner();
    assert!(plain.health.is_none(), "{plain:?}");
    assert_eq!(partner.requests.load(Ordering::SeqCst), 0);

    let good = c.apply_tile(with("passing", "/pass", true)).await?.into_inner();
    let h = good.health.context("no health in the answer")?;
    assert_eq!((h.tile_id.as_str(), h.revision), ("passing", 1));
    assert_eq!(h.status(), HealthStatus::Healthy, "{}", h.reason);
    assert_eq!(h.probe.context("no probe")?.status(), TestStatus::Pass);

    let bad = c.apply_tile(with("failing", "/fail", true)).await?.into_inner();
    let h = bad.health.context("no health in the answer")?;
    assert_eq!(h.status(), HealthStatus::Unhealthy);
    assert_eq!((h.request_count, h.error_rate), (1, 1.0));
    // The same verdict as a Health call with a fresh probe.
    assert_eq!(
        probe_now(&stack, "failing").await?.status(),
        HealthStatus::Unhealthy
    );
    assert_eq!(partner.requests.load(Ordering::SeqCst), 3);
    Ok(())
}

#[tokio::test]
async fn a_non_loopback_partner_is_never_contacted() -> Result<()> {
    let partner = Partner::start().await?;
    let stack = Stack::start().await?;
    let mut c = stack.client().await?;
    c.apply_tile(apply("riverflow-ingest", 1, 1)).await?;
    let h = probe_now(&stack, "riverflow-ingest").await?;
    let probe = h.probe.clone().context("no probe")?;
    assert_eq!(probe.status(), TestStatus::Unknown);
    assert!(
        probe.message.starts_with("probe skipped: host not allowed"),
        "{}",
        probe.message
    );
    assert_eq!(probe.http_status, 0);
    assert!(
        probe.latency.is_none(),
        "no call was made, so no round trip was timed"
    );
    assert_eq!(h.request_count, 0);
    assert_eq!(h.status(), HealthStatus::Healthy, "{}", h.reason);
    assert_eq!(partner.requests.load(Ordering::SeqCst), 0);
    Ok(())
}
