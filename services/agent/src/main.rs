//! `tilewave-agent`: reads its configuration, sets up telemetry, binds, and
//! serves one region until SIGTERM or Ctrl-C.

use anyhow::Context as _;
use clap::Parser as _;
use tilewave_agent::AgentConfig;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = AgentConfig::parse();
    let _telemetry = tilewave_telemetry::init("tilewave-agent").context("setting up telemetry")?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    if let Some(addr) = config.metrics_listen {
        let metrics = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        tokio::spawn(tilewave_telemetry::serve_metrics(metrics, shutdown_signal()));
    }
    let region = config.region.clone();
    tilewave_agent::serve(listener, config, shutdown_signal())
        .await
        .with_context(|| format!("tilewave-agent for {region}"))?;
    Ok(())
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
