//! A minimal gRPC server for the test kit's own tests: it serves only
//! `grpc.health.v1.Health` on `--listen ADDR`, so the kit's start-up,
//! health wait, stop, kill, restart and terminate can be tested against a
//! real child process.
//!
//! Flags: `--listen ADDR` (required); `--serving NAME` (repeatable: also
//! report NAME as SERVING); `--not-serving` (the overall status "" is
//! NOT_SERVING); `--ignore-sigterm` (keep running on SIGTERM, to test the
//! escalation to SIGKILL). On SIGTERM it shuts down gracefully and says so
//! on stderr.
#![forbid(unsafe_code)]

use std::net::SocketAddr;

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};
use tonic_health::ServingStatus;

/// Parsed command line.
#[derive(Debug, Default)]
struct Args {
    /// Where to listen.
    listen: Option<SocketAddr>,
    /// Extra service names reported SERVING.
    serving: Vec<String>,
    /// Report the overall status as NOT_SERVING.
    not_serving: bool,
    /// Ignore SIGTERM.
    ignore_sigterm: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args::default();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--listen" => {
                let v = it.next().context("--listen needs an address")?;
                args.listen = Some(v.parse().with_context(|| format!("bad --listen {v}"))?);
            }
            "--serving" => args.serving.push(it.next().context("--serving needs a name")?),
            "--not-serving" => args.not_serving = true,
            "--ignore-sigterm" => args.ignore_sigterm = true,
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    Ok(args)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let addr = args.listen.context("--listen ADDR is required")?;
    let mut term = signal(SignalKind::terminate())?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot bind {addr}"))?;
    eprintln!("echo: listening on {addr}");

    let (reporter, health) = tonic_health::server::health_reporter();
    if args.not_serving {
        reporter.set_service_status("", ServingStatus::NotServing).await;
    }
    for name in &args.serving {
        reporter.set_service_status(name, ServingStatus::Serving).await;
    }

    let ignore = args.ignore_sigterm;
    let shutdown = async move {
        loop {
            term.recv().await;
            if ignore {
                eprintln!("echo: SIGTERM ignored");
            } else {
                eprintln!("echo: SIGTERM, shutting down");
                return;
            }
        }
    };
    tonic::transport::Server::builder()
        .add_service(health)
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await?;
    eprintln!("echo: stopped");
    Ok(())
}
