//! Process-level end-to-end tests: real etcd, the real services and the
//! real `tilewave` CLI as child processes, with `OTEL_EXPORTER_OTLP_ENDPOINT`
//! pointed at an in-process OTLP receiver, so every assertion is on spans
//! that were really exported (and on `/metrics` as really served).
//!
//! Mutual TLS on every hop (the test kit's shared PKI): the CLI presents a
//! release engineer's certificate.
//!
//! Needs the workspace binaries: `cargo build --bins` first.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli_trace;
mod no_export;
mod origin;
mod security;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use tilewave_proto::common::v1::AuditRecord;
use tilewave_store::Store;
use tilewave_telemetry::receiver::{ReceivedSpan, Receiver};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The key prefix the tests' services use.
pub const PREFIX: &str = "/tilewave-e2e/";

/// The test workspace the journeys set.
pub const WORKSPACE: &str = "6051921418418893";

/// How long to wait for spans to arrive.
pub const SPAN_WAIT: Duration = Duration::from_secs(15);

/// How often the services export a batch (ms): short, so waits are short.
pub const EXPORT_DELAY_MS: &str = "100";

/// A fixture shared with the core crate's tests.
pub fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../crates/core/tests/fixtures/partner-connect")
        .join(name)
        .display()
        .to_string()
}

/// The environment that sends a child's spans to `receiver`.
pub fn otel_env(receiver: &Receiver) -> Vec<(&'static str, String)> {
    vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint().to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY", EXPORT_DELAY_MS.to_owned()),
        ("OTEL_TRACES_SAMPLER", "parentbased_always_on".to_owned()),
    ]
}

/// The span's ancestors in `spans`, nearest first.
pub fn ancestors<'a>(spans: &'a [ReceivedSpan], span: &ReceivedSpan) -> Vec<&'a ReceivedSpan> {
    let by_id: HashMap<&str, &ReceivedSpan> = spans
        .iter()
        .filter(|s| s.trace_id == span.trace_id)
        .map(|s| (s.span_id.as_str(), s))
        .collect();
    let mut out = Vec::new();
    let mut parent = span.parent_span_id.as_str();
    while let Some(p) = by_id.get(parent) {
        out.push(*p);
        parent = p.parent_span_id.as_str();
        if out.len() > spans.len() {
            break;
        }
    }
    out
}

/// `GET /metrics` from `addr`, the body.
pub async fn scrape(addr: std::net::SocketAddr) -> Result<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: e2e\r\nConnection: close\r\n\r\n")
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let Some((head, body)) = response.split_once("\r\n\r\n") else {
        bail!("no HTTP head in {response:?}");
    };
    if !head.starts_with("HTTP/1.1 200") {
        bail!("metrics answered {head:?}");
    }
    Ok(body.to_owned())
}

/// The value of the sample whose name and labels are exactly `series`
/// (`name{a="x",b="y"}` as the encoder writes it); 0 when absent.
pub fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok())?
        })
        .unwrap_or(0.0)
}

/// Reads a line of a child's stdout that starts with `word `, the rest.
pub fn line_after<'a>(text: &'a str, word: &str) -> Result<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(word)?.strip_prefix(' '))
        .with_context(|| format!("no {word:?} line in {text:?}"))
}

/// How the test runs the real `tilewave` binary.
#[derive(Debug)]
pub struct Cli {
    pub binary: PathBuf,
    pub registry: String,
    /// Extra environment (the rest is inherited, less `RUST_LOG` and
    /// every `OTEL_*` variable not named here).
    pub env: Vec<(&'static str, String)>,
    /// A settings file of its own (usually one that does not exist).
    pub config: PathBuf,
}

/// One finished CLI command.
#[derive(Debug)]
pub struct Run {
    pub args: String,
    pub success: bool,
    pub stderr: String,
    /// The trace id the CLI printed.
    pub trace_id: String,
}

impl Cli {
    /// The start of every journey here: `tile import` of the riverflow
    /// fixture (id `riverflow`), then `tile set-test-workspace`; both must
    /// succeed.
    pub async fn import_riverflow(&self) -> Result<(Run, Run)> {
        let import = self
            .run(&[
                "tile",
                "import",
                &fixture("riverflow-ingest.json"),
                "--id",
                "riverflow",
            ])
            .await?
            .ok()?;
        let workspace = self
            .run(&["tile", "set-test-workspace", "riverflow", WORKSPACE])
            .await?
            .ok()?;
        Ok((import, workspace))
    }

    pub async fn run(&self, args: &[&str]) -> Result<Run> {
        let mut command = tokio::process::Command::new(&self.binary);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("OTEL_") {
                command.env_remove(key);
            }
        }
        let output = command
            .args(["--registry", &self.registry, "--trace"])
            .args(args)
            .envs(tls_env(tilewave_testkit::pki::RELEASE_ENGINEER)?)
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("TILEWAVE_CONFIG", &self.config)
            .env("TILEWAVE_ACTOR", "e2e-engineer")
            .env_remove("RUST_LOG")
            .kill_on_drop(true)
            .output()
            .await
            .context("running tilewave")?;
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let trace_id = stderr
            .lines()
            .find_map(|l| l.strip_prefix("trace id: "))
            .map(str::to_owned)
            .with_context(|| format!("`tilewave {}` printed no trace id: {stderr}", args.join(" ")))?;
        ensure!(trace_id.len() == 32, "trace id {trace_id:?}");
        Ok(Run {
            args: args.join(" "),
            success: output.status.success(),
            stderr,
            trace_id,
        })
    }
}

impl Run {
    pub fn ok(self) -> Result<Self> {
        ensure!(self.success, "`tilewave {}` failed: {}", self.args, self.stderr);
        Ok(self)
    }
}

/// `TILEWAVE_TLS_CERT`, `TILEWAVE_TLS_KEY` and `TILEWAVE_TLS_CA` for a child
/// that presents `identity`'s certificate of the test PKI.
pub fn tls_env(identity: &str) -> Result<Vec<(&'static str, PathBuf)>> {
    let f = tilewave_testkit::Pki::shared()?.files(identity);
    Ok(vec![
        ("TILEWAVE_TLS_CERT", f.cert),
        ("TILEWAVE_TLS_KEY", f.key),
        ("TILEWAVE_TLS_CA", f.ca),
    ])
}

/// A store on `etcd` under [`PREFIX`], with the cluster's TLS.
pub async fn store(etcd: &tilewave_testkit::EtcdCluster) -> Result<Store> {
    etcd.store(PREFIX).await
}

/// The audit records of `action` under [`PREFIX`] in `etcd`, oldest first.
pub async fn audited(etcd: &tilewave_testkit::EtcdCluster, action: &str) -> Result<Vec<AuditRecord>> {
    Ok(store(etcd)
        .await?
        .audit_records()
        .await?
        .into_iter()
        .filter(|r| r.action == action)
        .collect())
}
