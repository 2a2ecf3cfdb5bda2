//! A service binary as a child process on a free loopback port, ready when
//! its gRPC health check says SERVING.
//!
//! The kit appends `--listen 127.0.0.1:PORT` to the service's arguments,
//! logs its stdout and stderr to `<dir>/<name>.log`, and polls
//! `grpc.health.v1.Health/Check` on that address against a deadline. When
//! the child exits early because the port was taken meanwhile, start-up is
//! retried on another port.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use nix::sys::signal::Signal;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::ports::free_port;
use crate::process::{ChildProcess, DROP_GRACE, Launch};

/// How long start-up waits for SERVING by default.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Per-try timeout of a readiness check.
const READY_TRY_TIMEOUT: Duration = Duration::from_millis(1000);

/// How often readiness is polled.
const READY_POLL: Duration = Duration::from_millis(50);

/// How many ports start-up tries when the child could not bind.
const BIND_ATTEMPTS: usize = 5;

/// What to run. Build it with [`ServiceSpec::new`] and the `with_*`
/// methods, or as a struct literal ending in `..ServiceSpec::default()`.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    /// The executable (see [`crate::bin_path`]).
    pub binary: PathBuf,
    /// Arguments; `--listen 127.0.0.1:PORT` is appended.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Inherited environment variables removed for the child.
    pub env_remove: Vec<String>,
    /// Log file stem (`<dir>/<name>.log`) and the name in messages.
    pub name: String,
    /// The gRPC health service name whose SERVING means ready (`""` is the
    /// server as a whole). `None`: the service has no health service, and
    /// an accepted TCP connection means ready.
    pub health_service: Option<String>,
    /// How long start-up (and restart) waits until ready.
    pub ready_timeout: Duration,
}

impl Default for ServiceSpec {
    fn default() -> Self {
        Self {
            binary: PathBuf::new(),
            args: Vec::new(),
            env: Vec::new(),
            env_remove: Vec::new(),
            name: String::from("service"),
            health_service: Some(String::new()),
            ready_timeout: DEFAULT_READY_TIMEOUT,
        }
    }
}

impl ServiceSpec {
    /// Runs `binary`, named `name`, checked through the overall health
    /// service (`""`).
    pub fn new(name: impl Into<String>, binary: impl Into<PathBuf>) -> Self {
        Self {
            name: name.into(),
            binary: binary.into(),
            ..Self::default()
        }
    }

    /// Adds arguments.
    pub fn with_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Adds an environment variable.
    pub fn with_env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Removes `key` from the environment the child inherits.
    pub fn without_env(mut self, key: impl Into<String>) -> Self {
        self.env_remove.push(key.into());
        self
    }

    /// Sets the health service name to wait for (`None`: TCP accept only).
    pub fn with_health_service(mut self, name: Option<&str>) -> Self {
        self.health_service = name.map(str::to_owned);
        self
    }

    /// Sets how long to wait until ready.
    pub fn with_ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    /// The command line listening on `addr`: usable with
    /// [`crate::spawn_detached`] too.
    pub fn launch(&self, addr: SocketAddr) -> Launch {
        let mut args = self.args.clone();
        args.push("--listen".to_owned());
        args.push(addr.to_string());
        Launch {
            name: self.name.clone(),
            program: self.binary.clone(),
            args,
            env: self.env.clone(),
            env_remove: self.env_remove.clone(),
        }
    }
}

/// Checks once that a server at `addr` is ready: its health service
/// `service` answers SERVING (or, with `None`, it accepts a TCP connection).
///
/// The check runs on a private runtime on a blocking thread, which is shut
/// down before this returns: the connection is closed by then, so it never
/// holds up the server's graceful shutdown (a `Drop` that blocks the
/// caller's runtime could otherwise never close it).
pub async fn check_ready(addr: SocketAddr, service: Option<&str>) -> anyhow::Result<()> {
    let service = service.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("building a runtime for a health check")?;
        rt.block_on(check_ready_here(addr, service.as_deref()))
    })
    .await
    .context("health check task failed")?
}

/// [`check_ready`] on the current runtime.
async fn check_ready_here(addr: SocketAddr, service: Option<&str>) -> anyhow::Result<()> {
    let check = async {
        match service {
            None => {
                tokio::net::TcpStream::connect(addr).await?;
            }
            Some(name) => {
                let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
                    .connect_timeout(READY_TRY_TIMEOUT)
                    .timeout(READY_TRY_TIMEOUT)
                    .connect()
                    .await?;
                let resp = HealthClient::new(channel)
                    .check(HealthCheckRequest {
                        service: name.to_owned(),
                    })
                    .await?
                    .into_inner();
                let status = resp.status();
                anyhow::ensure!(
                    status == ServingStatus::Serving,
                    "health of {name:?} is {}",
                    status.as_str_name()
                );
            }
        }
        anyhow::Ok(())
    };
    // The outer bound is a little longer so the client's own timeouts,
    // which say more, usually fire first.
    tokio::time::timeout(READY_TRY_TIMEOUT + Duration::from_millis(250), check)
        .await
        .with_context(|| format!("{addr}: no answer within {READY_TRY_TIMEOUT:?}"))?
}

/// Why one start-up attempt failed.
#[derive(Debug)]
enum StartError {
    /// The child could not bind: try another port.
    PortTaken(anyhow::Error),
    /// Anything else.
    Other(anyhow::Error),
}

/// A running service binary; SIGTERM then SIGKILL on drop.
#[derive(Debug)]
pub struct ServiceProcess {
    /// What runs.
    spec: ServiceSpec,
    /// Where the log goes.
    dir: PathBuf,
    /// Where it listens; kept across restarts.
    addr: SocketAddr,
    /// `None` once killed or terminated.
    process: Option<ChildProcess>,
    /// `<dir>/<name>.log`.
    log_path: PathBuf,
}

impl ServiceProcess {
    /// Starts the service on a free loopback port (retrying on another port
    /// when it could not bind) and waits until it is ready.
    pub async fn start(spec: ServiceSpec, dir: &Path) -> anyhow::Result<Self> {
        let mut last = None;
        for attempt in 1..=BIND_ATTEMPTS {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
            match Self::try_start(spec.clone(), dir, addr).await {
                Ok(s) => return Ok(s),
                Err(StartError::Other(e)) => return Err(e),
                Err(StartError::PortTaken(e)) => {
                    tracing::warn!(attempt, name = %spec.name, "could not bind, retrying on another port: {e:#}");
                    last = Some(e);
                }
            }
        }
        Err(last
            .unwrap_or_else(|| anyhow::anyhow!("no attempt made"))
            .context(format!(
                "{} could not bind a port in {BIND_ATTEMPTS} attempts",
                spec.name
            )))
    }

    /// Starts the service listening on `addr` (no retry) and waits until it
    /// is ready. The error says whether the address was in use.
    pub async fn start_at(spec: ServiceSpec, dir: &Path, addr: SocketAddr) -> anyhow::Result<Self> {
        match Self::try_start(spec, dir, addr).await {
            Ok(s) => Ok(s),
            Err(StartError::PortTaken(e)) => Err(e.context(format!("address {addr} already in use"))),
            Err(StartError::Other(e)) => Err(e),
        }
    }

    /// One attempt on `addr`.
    async fn try_start(spec: ServiceSpec, dir: &Path, addr: SocketAddr) -> Result<Self, StartError> {
        let launch = spec.launch(addr);
        let log_path = launch.log_path(dir);
        let process = ChildProcess::spawn(launch, dir).map_err(StartError::Other)?;
        let mut s = Self {
            spec,
            dir: dir.to_path_buf(),
            addr,
            process: Some(process),
            log_path,
        };
        s.wait_started().await?;
        Ok(s)
    }

    /// Polls readiness until the deadline, failing fast if the child exits.
    async fn wait_started(&mut self) -> Result<(), StartError> {
        let timeout = self.spec.ready_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(p) = self.process.as_mut()
                && let Some(status) = p.try_exit_status().map_err(StartError::Other)?
            {
                let e = anyhow::anyhow!(
                    "{} exited during start-up ({status}); log {}:\n{}",
                    self.spec.name,
                    self.log_path.display(),
                    p.log_tail()
                );
                let taken = p.failed_to_bind();
                self.process = None;
                return Err(if taken {
                    StartError::PortTaken(e)
                } else {
                    StartError::Other(e)
                });
            }
            let last = match check_ready(self.addr, self.spec.health_service.as_deref()).await {
                Ok(()) => return Ok(()),
                Err(e) => format!("{e:#}"),
            };
            if tokio::time::Instant::now() + READY_POLL >= deadline {
                let tail = self
                    .process
                    .as_ref()
                    .map(ChildProcess::log_tail)
                    .unwrap_or_default();
                // Do not leave a half-started child behind.
                if let Some(mut p) = self.process.take() {
                    let _ = p.kill();
                }
                return Err(StartError::Other(anyhow::anyhow!(
                    "{} at {} not ready after {timeout:?}: {last}; log {}:\n{tail}",
                    self.spec.name,
                    self.addr,
                    self.log_path.display()
                )));
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, for gRPC clients.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The pid, while running (or stopped).
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().and_then(ChildProcess::pid)
    }

    /// The log file (kept across restarts, appended to).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The spec it runs.
    pub fn spec(&self) -> &ServiceSpec {
        &self.spec
    }

    /// The running child.
    fn running(&self) -> anyhow::Result<&ChildProcess> {
        self.process
            .as_ref()
            .with_context(|| format!("{} is not running", self.spec.name))
    }

    /// Freezes it (SIGSTOP).
    pub fn stop(&self) -> anyhow::Result<()> {
        self.running()?.signal(Signal::SIGSTOP)
    }

    /// Resumes it (SIGCONT).
    pub fn cont(&self) -> anyhow::Result<()> {
        self.running()?.signal(Signal::SIGCONT)
    }

    /// Kills it (SIGKILL) and reaps it.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut p) = self.process.take() {
            p.kill()?;
        }
        Ok(())
    }

    /// SIGTERM, then SIGKILL if it has not exited after `grace`. Returns its
    /// exit status (`None` if it was not running).
    pub async fn terminate(&mut self, grace: Duration) -> anyhow::Result<Option<std::process::ExitStatus>> {
        match self.process.take() {
            Some(mut p) => Ok(Some(p.terminate(grace).await?)),
            None => Ok(None),
        }
    }

    /// Whether the child has exited by itself (reaping it), with its status.
    pub fn try_exit_status(&mut self) -> anyhow::Result<Option<std::process::ExitStatus>> {
        match &mut self.process {
            Some(p) => p.try_exit_status(),
            None => Ok(None),
        }
    }

    /// Starts it again on the same port with the same arguments (after
    /// terminating it if it still runs) and waits until it is ready. A
    /// bind failure (the old socket not yet released) is retried a few
    /// times on the same port.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        if let Some(mut p) = self.process.take() {
            p.terminate(DROP_GRACE).await?;
        }
        let mut last = None;
        for attempt in 1..=BIND_ATTEMPTS {
            let launch = self.spec.launch(self.addr);
            self.process = Some(ChildProcess::spawn(launch, &self.dir)?);
            match self.wait_started().await {
                Ok(()) => return Ok(()),
                Err(StartError::Other(e)) => return Err(e),
                Err(StartError::PortTaken(e)) => {
                    tracing::warn!(attempt, name = %self.spec.name, "could not bind on restart: {e:#}");
                    last = Some(e);
                    tokio::time::sleep(Duration::from_millis(200 * attempt as u64)).await;
                }
            }
        }
        Err(last
            .unwrap_or_else(|| anyhow::anyhow!("no attempt made"))
            .context(format!("restarting {} on {}", self.spec.name, self.addr)))
    }
}
