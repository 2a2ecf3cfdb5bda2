//! `tilewave-registry`: reads its configuration and runs the service through
//! the shared main (`tilewave-service`): telemetry, binding, metrics,
//! SIGTERM/Ctrl-C and a bounded graceful shutdown.

use clap::Parser as _;
use tilewave_registry::RegistryConfig;
use tilewave_service::Listen;

#[tokio::main]
async fn main() -> anyhow::Result<std::process::ExitCode> {
    let probe = tilewave_clients::health::Probe {
        binary: "tilewave-registry",
        service: "",
        default_listen: tilewave_registry::config::DEFAULT_LISTEN,
    };
    if let Some(code) = tilewave_clients::health::run_if_asked(probe).await {
        return Ok(code);
    }
    let config = RegistryConfig::parse();
    let listen = Listen {
        grpc: config.listen,
        metrics: config.metrics_listen,
    };
    tilewave_service::run("tilewave-registry", listen, |listener, shutdown| {
        tilewave_registry::serve(listener, config, shutdown)
    })
    .await?;
    Ok(std::process::ExitCode::SUCCESS)
}
