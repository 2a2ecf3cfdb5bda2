//! The webhook receiver double as a process (`tilewave_testkit::WebhookReceiver`):
//! the optional test service of a deployment (`deploy/`), so pages sent by
//! `tilewave-escalation` land somewhere real and a chaos test can count
//! them.
//!
//! `--listen ADDR` (required) serves the receiver (plain HTTP, every path a
//! target, duplicates by `Idempotency-Key` answered 200 and counted);
//! `--admin ADDR` serves `GET /summary`: JSON with the number of requests,
//! deliveries, duplicates and rejected requests, and per idempotency key
//! how many requests carried it and how many were delivered. A loopback
//! address is required unless `--any-address` (a deployment's private
//! container network). `health [--addr ADDR]` checks that the receiver
//! accepts connections (the container health check). On SIGTERM it stops.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tilewave_testkit::webhook::{Disposition, WebhookReceiver};
use tokio::signal::unix::{SignalKind, signal};

const USAGE: &str = "tilewave-webhook-receiver --listen 127.0.0.1:PORT --admin 127.0.0.1:PORT [--any-address]\n\
tilewave-webhook-receiver health [--addr 127.0.0.1:PORT]\n\
Example: tilewave-webhook-receiver --listen 0.0.0.0:8080 --admin 0.0.0.0:8081 --any-address";

struct Args {
    listen: SocketAddr,
    admin: SocketAddr,
}

fn parse_args() -> anyhow::Result<Args> {
    let (mut listen, mut admin, mut any) = (None, None, false);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut addr = |flag: &str| -> anyhow::Result<SocketAddr> {
            let v = it.next().with_context(|| format!("{flag} needs an address"))?;
            v.parse()
                .with_context(|| format!("{flag} {v:.64}: not an address like 127.0.0.1:8080"))
        };
        match a.as_str() {
            "--listen" => listen = Some(addr("--listen")?),
            "--admin" => admin = Some(addr("--admin")?),
            "--any-address" => any = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => anyhow::bail!("unknown argument {other:.64} (see --help)"),
        }
    }
    let listen = listen.context("--listen ADDR is required")?;
    let admin = admin.context("--admin ADDR is required")?;
    for (flag, a) in [("--listen", listen), ("--admin", admin)] {
        anyhow::ensure!(
            a.ip().is_loopback() || any,
            "{flag} {a}: loopback only (add --any-address inside a deployment's private network)"
        );
    }
    Ok(Args { listen, admin })
}

/// The counts `GET /summary` answers.
fn summary(receiver: &WebhookReceiver) -> serde_json::Value {
    let requests = receiver.requests();
    let mut keys: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let (mut delivered, mut duplicates, mut rejected) = (0, 0, 0);
    for r in &requests {
        let entry = r.idempotency_key.clone().map(|k| keys.entry(k).or_default());
        match &r.disposition {
            Disposition::Delivered => {
                delivered += 1;
                if let Some(e) = entry {
                    e.0 += 1;
                    e.1 += 1;
                }
            }
            Disposition::Duplicate { .. } => {
                duplicates += 1;
                if let Some(e) = entry {
                    e.0 += 1;
                }
            }
            Disposition::Rejected(_) => rejected += 1,
            Disposition::InjectedFailure | Disposition::Stalled => {
                if let Some(e) = entry {
                    e.0 += 1;
                }
            }
        }
    }
    let keys: serde_json::Map<String, serde_json::Value> = keys
        .into_iter()
        .map(|(k, (seen, delivered))| (k, serde_json::json!({"requests": seen, "delivered": delivered})))
        .collect();
    serde_json::json!({
        "requests": requests.len(),
        "deliveries": delivered,
        "duplicates": duplicates,
        "rejected": rejected,
        "keys": keys,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<std::process::ExitCode> {
    if std::env::args().nth(1).as_deref() == Some("health") {
        return Ok(
            tilewave_testkit::partner::tcp_health("tilewave-webhook-receiver", "127.0.0.1:8080").await,
        );
    }
    let args = parse_args()?;
    let mut term = signal(SignalKind::terminate())?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot bind {}", args.listen))?;
    let receiver = Arc::new(WebhookReceiver::serve_on(listener)?);
    let admin = tokio::net::TcpListener::bind(args.admin)
        .await
        .with_context(|| format!("cannot bind {}", args.admin))?;
    let app = axum::Router::new().route(
        "/summary",
        axum::routing::get({
            let receiver = Arc::clone(&receiver);
            move || {
                let receiver = Arc::clone(&receiver);
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        summary(&receiver).to_string(),
                    )
                }
            }
        }),
    );
    eprintln!(
        "webhook receiver: listening on {}, summary on http://{}/summary",
        receiver.base_url(),
        args.admin
    );
    tokio::select! {
        served = axum::serve(admin, app) => served.context("the admin server stopped")?,
        _ = term.recv() => eprintln!("webhook receiver: SIGTERM, stopping"),
    }
    Ok(std::process::ExitCode::SUCCESS)
}
