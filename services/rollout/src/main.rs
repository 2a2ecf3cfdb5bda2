//! `tilewave-rollout`: reads its configuration, sets up telemetry, binds,
//! and serves until SIGTERM or Ctrl-C.

use anyhow::Context as _;
use clap::Parser as _;
use tilewave_rollout::RolloutConfig;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = RolloutConfig::parse();
    let _telemetry = tilewave_telemetry::init("tilewave-rollout").context("setting up telemetry")?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    if let Some(addr) = config.metrics_listen {
        let metrics = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        tokio::spawn(tilewave_telemetry::serve_metrics(metrics, shutdown_signal()));
    }
    tilewave_rollout::serve(listener, config, shutdown_signal())
        .await
        .context("tilewave-rollout")?;
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
