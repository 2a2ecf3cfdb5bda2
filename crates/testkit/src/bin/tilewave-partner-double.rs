//! The partner API double as a process (`tilewave_testkit::PartnerDouble`
//! with its admin API): what `tilewave dev up` starts so the demo's tile
//! has a real partner to be verified against, on loopback only.
//!
//! Flags: `--listen ADDR` (required, a loopback address);
//! `--test-connection-path PATH` and `--connect-path PATH` (the fixtures'
//! paths by default). It accepts no credential until one is issued through
//! `POST /_double/credentials?user=NAME`. On SIGTERM it stops.
#![forbid(unsafe_code)]

use std::net::SocketAddr;

use anyhow::Context as _;
use tilewave_testkit::partner::{PartnerDouble, PartnerPaths};
use tokio::signal::unix::{SignalKind, signal};

fn parse_args() -> anyhow::Result<(SocketAddr, PartnerPaths)> {
    let mut listen = None;
    let mut paths = PartnerPaths::default();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |what: &str| it.next().with_context(|| format!("{a} needs {what}"));
        match a.as_str() {
            "--listen" => {
                let v = value("an address")?;
                listen = Some(
                    v.parse::<SocketAddr>()
                        .with_context(|| format!("--listen {v:.64}: not an address like 127.0.0.1:7500"))?,
                );
            }
            "--test-connection-path" => paths.test_connection = value("a path")?,
            "--connect-path" => paths.connect = value("a path")?,
            "-h" | "--help" => {
                println!(
                    "tilewave-partner-double --listen 127.0.0.1:PORT [--test-connection-path P] [--connect-path P]"
                );
                std::process::exit(0);
            }
            other => anyhow::bail!("unknown argument {other:.64} (see --help)"),
        }
    }
    let listen = listen.context("--listen ADDR is required (a loopback address)")?;
    anyhow::ensure!(
        listen.ip().is_loopback(),
        "--listen {listen}: the double serves loopback only"
    );
    for (flag, p) in [
        ("--test-connection-path", &paths.test_connection),
        ("--connect-path", &paths.connect),
    ] {
        anyhow::ensure!(p.starts_with('/'), "{flag} {p:.64}: must start with /");
    }
    Ok((listen, paths))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let (addr, paths) = parse_args()?;
    let mut term = signal(SignalKind::terminate())?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot bind {addr}"))?;
    let double = PartnerDouble::serve_admin(listener, paths).await?;
    eprintln!("partner double: listening on http://{}", double.addr());
    term.recv().await;
    eprintln!("partner double: SIGTERM, stopping");
    drop(double);
    Ok(())
}
