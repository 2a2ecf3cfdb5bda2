//! The partner API double as a process (`tilewave_testkit::PartnerDouble`
//! with its admin API): what `tilewave dev up` starts so the demo's tile
//! has a real partner to be verified against, on loopback only.
//!
//! Flags: `--listen ADDR` (required, a loopback address unless
//! `--any-address`: a deployment's private container network, `deploy/`);
//! `--tls-cert FILE --tls-key FILE` (serve HTTPS, as a partner API off
//! loopback must be); `--test-connection-path PATH` and `--connect-path
//! PATH` (the fixtures' paths by default). `health [--addr ADDR]`
//! checks that a double accepts connections there (the container health check). It accepts no credential until one is issued through
//! `POST /_double/credentials?user=NAME`. On SIGTERM it stops.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use tilewave_testkit::partner::{PartnerDouble, PartnerPaths};
use tokio::signal::unix::{SignalKind, signal};

struct Args {
    listen: SocketAddr,
    paths: PartnerPaths,
    tls: Option<(PathBuf, PathBuf)>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut listen = None;
    let mut any_address = false;
    let (mut cert, mut key) = (None, None);
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
            "--any-address" => any_address = true,
            "--tls-cert" => cert = Some(PathBuf::from(value("a file")?)),
            "--tls-key" => key = Some(PathBuf::from(value("a file")?)),
            "--test-connection-path" => paths.test_connection = value("a path")?,
            "--connect-path" => paths.connect = value("a path")?,
            "-h" | "--help" => {
                println!(
                    "tilewave-partner-double --listen 127.0.0.1:PORT [--any-address] [--tls-cert F --tls-key F] \
                     [--test-connection-path P] [--connect-path P]\n\
                     tilewave-partner-double health [--addr 127.0.0.1:PORT]\n\
                     Example: tilewave-partner-double --listen 0.0.0.0:8443 --any-address --tls-cert /certs/partner-double.crt --tls-key /certs/partner-double.key"
                );
                std::process::exit(0);
            }
            other => anyhow::bail!("unknown argument {other:.64} (see --help)"),
        }
    }
    let listen = listen.context("--listen ADDR is required (a loopback address)")?;
    anyhow::ensure!(
        listen.ip().is_loopback() || any_address,
        "--listen {listen}: the double serves loopback only (add --any-address inside a deployment's private network)"
    );
    let tls = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => anyhow::bail!("--tls-cert and --tls-key go together"),
    };
    for (flag, p) in [
        ("--test-connection-path", &paths.test_connection),
        ("--connect-path", &paths.connect),
    ] {
        anyhow::ensure!(p.starts_with('/'), "{flag} {p:.64}: must start with /");
    }
    Ok(Args { listen, paths, tls })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<std::process::ExitCode> {
    if std::env::args().nth(1).as_deref() == Some("health") {
        return Ok(tilewave_testkit::partner::tcp_health("tilewave-partner-double", "127.0.0.1:8443").await);
    }
    let Args { listen, paths, tls } = parse_args()?;
    let mut term = signal(SignalKind::terminate())?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot bind {listen}"))?;
    let double = match tls {
        None => PartnerDouble::serve_admin(listener, paths).await?,
        Some((cert, key)) => PartnerDouble::serve_admin_https(listener, paths, &cert, &key).await?,
    };
    eprintln!("partner double: listening on {}", double.base_url());
    term.recv().await;
    eprintln!("partner double: SIGTERM, stopping");
    drop(double);
    Ok(std::process::ExitCode::SUCCESS)
}
