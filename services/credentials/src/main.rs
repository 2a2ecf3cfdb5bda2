//! `tilewave-credentials`: reads its configuration and runs the service
//! through the shared main (`tilewave-service`): telemetry, binding,
//! metrics, SIGTERM/Ctrl-C and a bounded graceful shutdown.

use clap::Parser as _;
use tilewave_credentials::CredentialsConfig;
use tilewave_service::Listen;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = CredentialsConfig::parse();
    let listen = Listen {
        grpc: config.listen,
        metrics: config.metrics_listen,
    };
    tilewave_service::run("tilewave-credentials", listen, |listener, shutdown| {
        tilewave_credentials::serve(listener, config, shutdown)
    })
    .await
}
