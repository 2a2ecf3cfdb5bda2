//! `tilewave-registry`: reads its configuration, sets up telemetry, binds,
//! and serves until SIGTERM or Ctrl-C.

use anyhow::Context as _;
use clap::Parser as _;
use tilewave_registry::RegistryConfig;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = RegistryConfig::parse();
    let _telemetry = tilewave_telemetry::init("tilewave-registry").context("setting up telemetry")?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    if let Some(addr) = config.metrics_listen {
        let metrics = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        tokio::spawn(tilewave_telemetry::serve_metrics(metrics, shutdown_signal()));
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tilewave_registry::serve(listener, config, async {
        let _ = stopped.await;
    });
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => return result.context("tilewave-registry"),
        () = shutdown_signal() => {}
    }
    // Drain in-flight calls, but do not wait forever for clients that hold
    // streams (WatchTiles) open.
    let _ = stop.send(());
    match tokio::time::timeout(SHUTDOWN_GRACE, server).await {
        Ok(result) => result.context("tilewave-registry"),
        Err(_) => {
            tracing::warn!(grace = ?SHUTDOWN_GRACE, "open streams outlived the shutdown grace; exiting");
            Ok(())
        }
    }
}

/// How long shutdown waits for open calls to finish.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

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
