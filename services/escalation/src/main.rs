//! `tilewave-escalation`: reads its configuration and runs the service
//! through the shared main (`tilewave-service`): telemetry, binding,
//! metrics, SIGTERM/Ctrl-C and a bounded graceful shutdown.

use clap::Parser as _;
use tilewave_escalation::EscalationConfig;
use tilewave_service::Listen;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = EscalationConfig::parse();
    let listen = Listen {
        grpc: config.listen,
        metrics: config.metrics_listen,
    };
    tilewave_service::run("tilewave-escalation", listen, |listener, shutdown| {
        tilewave_escalation::serve(listener, config, shutdown)
    })
    .await
}
