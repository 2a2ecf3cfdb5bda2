//! A service binary as a child process on a free loopback port, ready when
//! its gRPC health check says SERVING.
//!
//! The kit appends `--listen 127.0.0.1:PORT` to the service's arguments,
//! logs its stdout and stderr to `<dir>/<name>.log`, and polls
//! `grpc.health.v1.Health/Check` on that address against a deadline. When
//! the child exits early because the port was taken meanwhile, start-up is
//! retried on another port.
//!
//! TLS is on by default ([`SpecTls::Auto`]): a tilewave service binary
//! (`tilewave-registry`, `tilewave-rollout`, `tilewave-agent`) gets its
//! certificate from the shared test PKI ([`Pki::shared`]) and the PKI's
//! access policy, unless its arguments already name TLS files or
//! `--insecure`. Readiness, [`ServiceProcess::endpoint`] and
//! [`ServiceProcess::channel`] speak TLS whenever the service's arguments
//! give it TLS files. [`ServiceSpec::insecure`] runs it plaintext instead.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context as _;
use nix::sys::signal::Signal;
use tilewave_tls::{Tls, TlsFiles};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::pki::Pki;
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

/// How a service is run with respect to TLS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SpecTls {
    /// A tilewave service binary gets its certificate and the policy of the
    /// shared test PKI (`--tls-cert --tls-key --tls-ca --policy`), unless
    /// its arguments already give `--tls-cert` or `--insecure`; any other
    /// binary runs as its arguments say.
    #[default]
    Auto,
    /// Plaintext: a tilewave service binary gets `--insecure` (unless its
    /// arguments already give it or TLS files); any other binary runs as
    /// its arguments say.
    Insecure,
    /// Nothing is added: the arguments alone decide.
    AsGiven,
}

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
    /// TLS or plaintext (TLS by default, see [`SpecTls`]).
    pub tls: SpecTls,
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
            tls: SpecTls::default(),
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

    /// Runs it with the shared test PKI's certificate ([`SpecTls::Auto`]).
    pub fn tls(mut self) -> Self {
        self.tls = SpecTls::Auto;
        self
    }

    /// Runs it plaintext, with `--insecure` ([`SpecTls::Insecure`]).
    pub fn insecure(mut self) -> Self {
        self.tls = SpecTls::Insecure;
        self
    }

    /// Adds no TLS flags: the arguments alone decide ([`SpecTls::AsGiven`]).
    pub fn tls_as_given(mut self) -> Self {
        self.tls = SpecTls::AsGiven;
        self
    }

    /// The certificate name of the tilewave service the binary is.
    fn service(&self) -> Option<&'static str> {
        self.binary
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(Pki::service_name)
    }

    /// Whether the arguments name `flag` (as `flag` or `flag=...`).
    fn has_arg(&self, flag: &str) -> bool {
        self.args
            .iter()
            .any(|a| a == flag || a.strip_prefix(flag).is_some_and(|r| r.starts_with('=')))
    }

    /// The value of `flag` in the arguments (`flag V` or `flag=V`), else of
    /// the environment variable `env` given to the child.
    fn arg_value(&self, flag: &str, env: &str) -> Option<String> {
        let mut it = self.args.iter();
        while let Some(a) = it.next() {
            if a == flag {
                return it.next().cloned();
            }
            if let Some(v) = a.strip_prefix(flag).and_then(|r| r.strip_prefix('=')) {
                return Some(v.to_owned());
            }
        }
        self.env.iter().find(|(k, _)| k == env).map(|(_, v)| v.clone())
    }

    /// The TLS files the arguments (or the child's environment) give it,
    /// when they give all three.
    pub fn tls_files(&self) -> Option<TlsFiles> {
        Some(TlsFiles {
            cert: self
                .arg_value("--tls-cert", tilewave_tls::config::ENV_TLS_CERT)?
                .into(),
            key: self
                .arg_value("--tls-key", tilewave_tls::config::ENV_TLS_KEY)?
                .into(),
            ca: self
                .arg_value("--tls-ca", tilewave_tls::config::ENV_TLS_CA)?
                .into(),
        })
    }

    /// The spec with its TLS flags made explicit ([`SpecTls::AsGiven`]):
    /// with [`SpecTls::Auto`] a tilewave service gets the shared PKI's
    /// flags, with [`SpecTls::Insecure`] `--insecure`.
    pub fn resolved(&self) -> anyhow::Result<Self> {
        let mut spec = self.clone();
        spec.tls = SpecTls::AsGiven;
        match self.tls {
            SpecTls::AsGiven => {}
            SpecTls::Insecure => {
                let given = self.has_arg("--insecure") || self.tls_files().is_some();
                if self.service().is_some() && !given {
                    spec.args.push("--insecure".to_owned());
                }
            }
            SpecTls::Auto => {
                let service = self.service();
                let given = self.has_arg("--tls-cert") || self.has_arg("--insecure");
                if let (Some(service), false) = (service, given) {
                    let mut args = Pki::shared()?.service_args(service);
                    if self.has_arg("--policy") {
                        args.truncate(6);
                    }
                    spec.args.extend(args);
                }
            }
        }
        Ok(spec)
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

/// Checks once that a plaintext server at `addr` is ready: its health
/// service `service` answers SERVING (or, with `None`, it accepts a TCP
/// connection).
pub async fn check_ready(addr: SocketAddr, service: Option<&str>) -> anyhow::Result<()> {
    check_ready_with(addr, service, None).await
}

/// [`check_ready`] of a server that serves TLS when `tls` is given (the
/// check presents that certificate and trusts that CA).
///
/// The check runs on a private runtime on a blocking thread, which is shut
/// down before this returns: the connection is closed by then, so it never
/// holds up the server's graceful shutdown (a `Drop` that blocks the
/// caller's runtime could otherwise never close it).
pub async fn check_ready_with(
    addr: SocketAddr,
    service: Option<&str>,
    tls: Option<&Tls>,
) -> anyhow::Result<()> {
    let service = service.map(str::to_owned);
    let tls = tls.cloned();
    tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("building a runtime for a health check")?;
        rt.block_on(check_ready_here(addr, service.as_deref(), tls.as_ref()))
    })
    .await
    .context("health check task failed")?
}

/// [`check_ready`] on the current runtime.
async fn check_ready_here(addr: SocketAddr, service: Option<&str>, tls: Option<&Tls>) -> anyhow::Result<()> {
    let check = async {
        match service {
            None => {
                tokio::net::TcpStream::connect(addr).await?;
            }
            Some(name) => {
                let channel = tilewave_tls::endpoint(&addr.to_string(), tls)?
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
    /// What runs ([`ServiceSpec::resolved`]).
    spec: ServiceSpec,
    /// Its TLS material, when it serves TLS (the kit's checks present it).
    tls: Option<Tls>,
    /// Channels by identity, reused.
    channels: Mutex<HashMap<String, Channel>>,
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
        let spec = spec.resolved()?;
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
        match Self::try_start(spec.resolved()?, dir, addr).await {
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
        // Files that do not load: readiness stays plaintext, and the
        // service's own start-up error says what is wrong with them.
        let tls = spec.tls_files().and_then(|f| f.load().ok());
        let mut s = Self {
            tls,
            channels: Mutex::new(HashMap::new()),
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
            let last =
                match check_ready_with(self.addr, self.spec.health_service.as_deref(), self.tls.as_ref())
                    .await
                {
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

    /// `https://127.0.0.1:PORT` when it serves TLS, else `http://...`, for
    /// gRPC clients.
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Its TLS material, when it serves TLS.
    pub fn tls(&self) -> Option<&Tls> {
        self.tls.as_ref()
    }

    /// The PKI its certificate comes from (the CA's directory), when it
    /// serves TLS.
    pub fn pki(&self) -> Option<Pki> {
        let ca = &self.tls.as_ref()?.files.ca;
        Some(Pki::at(ca.parent().unwrap_or(Path::new("."))))
    }

    /// A channel to it as `identity` (a user or service of its PKI, see
    /// [`crate::pki`]): TLS presenting that certificate when it serves TLS,
    /// plaintext otherwise (`identity` unused). Reused across calls.
    pub async fn channel(&self, identity: &str) -> anyhow::Result<Channel> {
        if let Some(c) = self.cached(identity) {
            return Ok(c);
        }
        let channel = match self.pki() {
            Some(pki) => pki.channel(&self.addr.to_string(), identity).await?,
            None => tilewave_tls::endpoint(&self.addr.to_string(), None)?
                .connect()
                .await
                .with_context(|| format!("connecting to {}", self.addr))?,
        };
        self.channels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(identity.to_owned(), channel.clone());
        Ok(channel)
    }

    fn cached(&self, identity: &str) -> Option<Channel> {
        self.channels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(identity)
            .cloned()
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
