//! `tilewave-escalation`: reads its configuration and runs the service
//! through the shared main (`tilewave-service`): telemetry, binding,
//! metrics, SIGTERM/Ctrl-C and a bounded graceful shutdown.

use clap::Parser as _;
use tilewave_escalation::EscalationConfig;
use tilewave_service::Listen;

#[tokio::main]
async fn main() -> anyhow::Result<std::process::ExitCode> {
    let probe = tilewave_clients::health::Probe {
        binary: "tilewave-escalation",
        service: "tilewave.escalation.v1.EscalationService",
        default_listen: tilewave_escalation::config::DEFAULT_LISTEN,
    };
    if let Some(code) = tilewave_clients::health::run_if_asked(probe).await {
        return Ok(code);
    }
    let config = EscalationConfig::parse();
    let listen = Listen {
        grpc: config.listen,
        metrics: config.metrics_listen,
    };
    tilewave_service::run("tilewave-escalation", listen, |listener, shutdown| {
        tilewave_escalation::serve(listener, config, shutdown)
    })
    .await?;
    Ok(std::process::ExitCode::SUCCESS)
}
