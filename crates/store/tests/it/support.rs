//! Shared helpers: store connections, records, the probe process, and a TCP
//! proxy that can cut a client off from etcd.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use tilewave_proto::common::v1::{AuditRecord, Event};
use tilewave_store::{Store, StoreConfig};
use tilewave_testkit::Signal;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::Notify;

/// Generous bound for anything that converges.
pub const CONVERGE: Duration = Duration::from_secs(15);

/// Logs of the library under test, shown by nextest for failing tests
/// (`RUST_LOG` to choose; default: the store at debug).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("tilewave_store=debug"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// The identity of the test PKI the tests and the probe reach etcd as.
pub const IDENTITY: &str = "registry";

/// A store on `endpoints` with a short operation deadline; over mutual TLS
/// (the test kit's shared PKI) when they are `https://`.
pub async fn connect(endpoints: Vec<String>) -> anyhow::Result<Store> {
    init_tracing();
    let tls = tilewave_testkit::Pki::shared()?.tls(IDENTITY)?.client_config();
    Ok(Store::connect(
        StoreConfig::new(endpoints)
            .with_op_timeout(Duration::from_secs(3))
            .with_tls(Some(tls)),
    )
    .await?)
}

/// An audit record for a test change.
pub fn audit(action: &str, id: &str) -> AuditRecord {
    AuditRecord {
        action: action.into(),
        object_kind: "test".into(),
        object_id: id.into(),
        summary: format!("{action} {id}"),
        ..Default::default()
    }
}

/// A small message to store.
pub fn event(id: &str, message: &str) -> Event {
    Event {
        id: id.into(),
        message: message.into(),
        ..Default::default()
    }
}

/// Audit records about `object_id`.
pub async fn audits_for(store: &Store, object_id: &str) -> anyhow::Result<Vec<AuditRecord>> {
    Ok(store
        .audit_records()
        .await?
        .into_iter()
        .filter(|a| a.object_id == object_id)
        .collect())
}

/// The `tilewave-store-probe` binary as a child process, driven by lines.
pub struct Probe {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Probe {
    /// Starts the probe with `args` (and the test PKI's certificate, used
    /// for `https://` endpoints); its stderr goes to `<dir>/<name>.log`.
    pub fn spawn(dir: &Path, name: &str, args: &[&str]) -> anyhow::Result<Self> {
        let log = std::fs::File::create(dir.join(format!("{name}.log")))?;
        let files = tilewave_testkit::Pki::shared()?.files(IDENTITY);
        let mut child = Command::new(env!("CARGO_BIN_EXE_tilewave-store-probe"))
            .args(args)
            .arg("--tls-cert")
            .arg(&files.cert)
            .arg("--tls-key")
            .arg(&files.key)
            .arg("--tls-ca")
            .arg(&files.ca)
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .context("spawning tilewave-store-probe")?;
        let stdin = child.stdin.take().context("probe stdin")?;
        let stdout = child.stdout.take().context("probe stdout")?;
        Ok(Self {
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
        })
    }

    /// The next line starting with `prefix` (others are skipped), within `timeout`.
    pub async fn expect(&mut self, prefix: &str, timeout: Duration) -> anyhow::Result<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.next_line())
                .await
                .with_context(|| format!("no {prefix:?} line from the probe within {timeout:?}"))??
                .with_context(|| format!("the probe exited before saying {prefix:?}"))?;
            if line.starts_with(prefix) {
                return Ok(line);
            }
        }
    }

    /// The next line, within `timeout`.
    pub async fn next_line(&mut self, timeout: Duration) -> anyhow::Result<String> {
        self.expect("", timeout).await
    }

    /// Sends one command line.
    pub async fn send(&mut self, line: &str) -> anyhow::Result<()> {
        self.stdin.write_all(format!("{line}\n").as_bytes()).await?;
        self.stdin.flush().await?;
        Ok(())
    }

    /// Sends a signal to the probe.
    pub fn signal(&self, signal: Signal) -> anyhow::Result<()> {
        let pid = self.child.id().context("the probe has exited")?;
        tilewave_testkit::signal_pid(pid, signal)
    }

    /// SIGKILLs the probe and reaps it.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill().await?;
        Ok(())
    }
}

/// A loopback TCP proxy in front of one etcd member that the test can cut:
/// open connections are dropped and new ones refused until it heals.
pub struct Proxy {
    /// `http(s)://127.0.0.1:<port>`, the scheme of the upstream.
    pub endpoint: String,
    cut: Arc<AtomicBool>,
    cut_now: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// Proxies to `upstream` (`http(s)://host:port`); TLS passes through.
    pub async fn start(upstream: &str) -> anyhow::Result<Self> {
        let (scheme, upstream) = upstream.split_once("://").unwrap_or(("http", upstream));
        let upstream = upstream.to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("{scheme}://{}", listener.local_addr()?);
        let cut = Arc::new(AtomicBool::new(false));
        let cut_now = Arc::new(Notify::new());
        let (c, n) = (Arc::clone(&cut), Arc::clone(&cut_now));
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if c.load(Ordering::SeqCst) {
                    continue; // dropped: refused
                }
                let upstream = upstream.clone();
                let n = Arc::clone(&n);
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        () = n.notified() => {}
                    }
                });
            }
        });
        Ok(Self {
            endpoint,
            cut,
            cut_now,
            task,
        })
    }

    /// Drops every connection and refuses new ones.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.cut_now.notify_waiters();
    }

    /// Accepts connections again.
    pub fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}
