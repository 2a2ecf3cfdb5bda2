//! A real etcd cluster (one member or three) as child processes on loopback
//! ports, for process-level tests and for local mode.
//!
//! Each member `m<i>` keeps its data in `<dir>/m<i>.etcd` and logs to
//! `<dir>/m<i>.log`. Readiness is polled, never slept for: a member is
//! healthy when, through its own client URL, `status()` names a leader and a
//! linearizable `get` (which needs a quorum) succeeds, each try under a short
//! timeout. Start-up is retried on fresh ports when a member could not bind
//! its address (another process took a port we picked).
//!
//! With [`EtcdOptions::tls`] the members serve `https://` client URLs and
//! require a client certificate signed by the CA (`--client-cert-auth`);
//! the kit's own clients present the members' certificate. Peer URLs stay
//! plaintext on loopback.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context as _;
use etcd_client::{Client, ConnectOptions};
use nix::sys::signal::Signal;
use tilewave_tls::{Tls, TlsFiles};

use crate::ports::free_ports;
use crate::process::{ChildProcess, DROP_GRACE, Launch, terminate_all_blocking};
use crate::testdir::TestDir;

/// Environment variable naming the etcd binary; otherwise `etcd` on `PATH`,
/// then `/usr/bin/etcd`.
pub const ETCD_BIN_ENV: &str = "TILEWAVE_ETCD_BIN";

/// How long start-up and restarts wait for health by default.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(30);

/// Per-try timeout of a health check: a stopped or dead member must not
/// hold up the polling loop.
const HEALTH_TRY_TIMEOUT: Duration = Duration::from_millis(1000);

/// How often health is polled.
const HEALTH_POLL: Duration = Duration::from_millis(50);

/// How many times start-up is tried on fresh ports after a bind failure.
const BIND_ATTEMPTS: usize = 5;

/// The key a health check reads (it need not exist).
const HEALTH_KEY: &str = "tilewave-testkit-health";

/// How to run a cluster. `EtcdOptions::default()` is one member, no
/// auto-compaction, plaintext, in a fresh [`TestDir`]
/// ([`EtcdOptions::with_shared_tls`] for TLS, as [`EtcdCluster::start`]).
#[derive(Debug, Clone)]
pub struct EtcdOptions {
    /// Number of members (1 or 3 in practice).
    pub members: usize,
    /// `Some(n)` runs etcd with `--auto-compaction-mode=revision
    /// --auto-compaction-retention=n`. Off by default: tests compact
    /// explicitly so what they see does not depend on timing.
    pub auto_compaction_revisions: Option<u64>,
    /// More flags for every member.
    pub extra_args: Vec<String>,
    /// Where data and logs go; `None` makes a [`TestDir`] owned by the
    /// cluster (kept if the test panics).
    pub dir: Option<PathBuf>,
    /// How long start-up waits for the cluster to be healthy.
    pub start_timeout: Duration,
    /// `Some`: client URLs are `https://`, served with this certificate and
    /// key, and clients must present a certificate signed by this CA
    /// (`--client-cert-auth`). The kit's own clients present this same
    /// certificate (a service certificate, good for client auth too).
    pub tls: Option<TlsFiles>,
}

impl Default for EtcdOptions {
    fn default() -> Self {
        Self {
            members: 1,
            auto_compaction_revisions: None,
            extra_args: Vec::new(),
            dir: None,
            start_timeout: DEFAULT_START_TIMEOUT,
            tls: None,
        }
    }
}

impl EtcdOptions {
    /// These options serving TLS with the shared test PKI's `etcd`
    /// certificate ([`crate::Pki::shared`]).
    pub fn with_shared_tls(mut self) -> anyhow::Result<Self> {
        self.tls = Some(crate::Pki::shared()?.files("etcd"));
        Ok(self)
    }

    /// The client TLS material of [`EtcdOptions::tls`], loaded and checked.
    pub fn client_tls(&self) -> anyhow::Result<Option<Tls>> {
        self.tls
            .as_ref()
            .map(|f| f.load().context("loading etcd's TLS files"))
            .transpose()
    }
}

/// One member's identity: its name, ports and data directory. Everything
/// needed to build its command line with [`etcd_launch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdMember {
    /// `--name`, also the log file's stem.
    pub name: String,
    /// Port of the client URL `http(s)://127.0.0.1:<port>`.
    pub client_port: u16,
    /// Port of the peer URL.
    pub peer_port: u16,
    /// `--data-dir`.
    pub data_dir: PathBuf,
}

impl EtcdMember {
    /// The plaintext client URL (`http://`), of a member started without
    /// [`EtcdOptions::tls`].
    pub fn client_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// The client URL of this member run with `options`: `https://` with
    /// [`EtcdOptions::tls`], else `http://`.
    pub fn client_url_for(&self, options: &EtcdOptions) -> String {
        let scheme = if options.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    /// The peer URL.
    pub fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer_port)
    }
}

/// Where the etcd binary is: `$TILEWAVE_ETCD_BIN`, `etcd` on `PATH`, or
/// `/usr/bin/etcd`.
pub fn etcd_binary() -> PathBuf {
    if let Some(p) = std::env::var_os(ETCD_BIN_ENV) {
        return PathBuf::from(p);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join("etcd");
            if p.is_file() {
                return p;
            }
        }
    }
    PathBuf::from("/usr/bin/etcd")
}

/// The command line of `member` in a cluster of `cluster` (which includes
/// it). `existing` selects `--initial-cluster-state existing` (rejoining
/// with its data) over `new`. Usable without [`EtcdCluster`], for example
/// with [`crate::spawn_detached`].
pub fn etcd_launch(
    member: &EtcdMember,
    cluster: &[EtcdMember],
    token: &str,
    existing: bool,
    options: &EtcdOptions,
) -> Launch {
    let initial_cluster: Vec<String> = cluster
        .iter()
        .map(|m| format!("{}={}", m.name, m.peer_url()))
        .collect();
    let client_url = member.client_url_for(options);
    let mut args = vec![
        format!("--name={}", member.name),
        format!("--data-dir={}", member.data_dir.display()),
        format!("--listen-client-urls={client_url}"),
        format!("--advertise-client-urls={client_url}"),
        format!("--listen-peer-urls={}", member.peer_url()),
        format!("--initial-advertise-peer-urls={}", member.peer_url()),
        format!("--initial-cluster={}", initial_cluster.join(",")),
        format!(
            "--initial-cluster-state={}",
            if existing { "existing" } else { "new" }
        ),
        format!("--initial-cluster-token={token}"),
        "--logger=zap".to_owned(),
        "--log-outputs=stderr".to_owned(),
    ];
    if let Some(tls) = &options.tls {
        args.extend([
            "--client-cert-auth".to_owned(),
            format!("--trusted-ca-file={}", tls.ca.display()),
            format!("--cert-file={}", tls.cert.display()),
            format!("--key-file={}", tls.key.display()),
        ]);
    }
    if let Some(n) = options.auto_compaction_revisions {
        args.push("--auto-compaction-mode=revision".to_owned());
        args.push(format!("--auto-compaction-retention={n}"));
    }
    args.extend(options.extra_args.iter().cloned());
    Launch {
        name: member.name.clone(),
        program: etcd_binary(),
        args,
        env: Vec::new(),
        env_remove: Vec::new(),
    }
}

/// Environment variable naming the etcdctl binary; otherwise `etcdctl` next
/// to the etcd binary, then on `PATH`.
pub const ETCDCTL_BIN_ENV: &str = "TILEWAVE_ETCDCTL_BIN";

/// Where the etcdctl binary is: `$TILEWAVE_ETCDCTL_BIN`, beside
/// [`etcd_binary`], or `etcdctl` on `PATH`.
pub fn etcdctl_binary() -> PathBuf {
    if let Some(p) = std::env::var_os(ETCDCTL_BIN_ENV) {
        return PathBuf::from(p);
    }
    let beside = etcd_binary().with_file_name("etcdctl");
    if beside.is_file() {
        return beside;
    }
    PathBuf::from("etcdctl")
}

/// Runs etcdctl (API v3) with `args`; its output is part of the error when
/// it fails.
async fn etcdctl(args: &[String]) -> anyhow::Result<()> {
    let bin = etcdctl_binary();
    let out = tokio::process::Command::new(&bin)
        .args(args)
        .env("ETCDCTL_API", "3")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .with_context(|| format!("running {}", bin.display()))?;
    anyhow::ensure!(
        out.status.success(),
        "{} {} failed ({}):\n{}{}",
        bin.display(),
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Checks one plaintext member's health through its own client URL:
/// `status()` names a leader and a linearizable `get` succeeds, within
/// [`HEALTH_TRY_TIMEOUT`].
pub async fn member_health(endpoint: &str) -> anyhow::Result<()> {
    member_health_with(endpoint, None).await
}

/// Client options presenting `tls` (when given), with `timeout` for
/// connecting and for each request (`None`: etcd-client's defaults).
pub fn connect_options(tls: Option<&Tls>, timeout: Option<Duration>) -> ConnectOptions {
    let mut opts = ConnectOptions::new();
    if let Some(t) = timeout {
        opts = opts.with_connect_timeout(t).with_timeout(t);
    }
    match tls {
        Some(tls) => opts.with_tls(tls.client_config()),
        None => opts,
    }
}

/// [`member_health`] of a member that serves TLS when `tls` is given (the
/// client certificate presented).
pub async fn member_health_with(endpoint: &str, tls: Option<&Tls>) -> anyhow::Result<()> {
    let check = async {
        let opts = connect_options(tls, Some(HEALTH_TRY_TIMEOUT));
        let mut client = Client::connect([endpoint], Some(opts)).await?;
        let status = client.status().await?;
        anyhow::ensure!(status.leader() != 0, "{endpoint} knows no leader");
        client.get(HEALTH_KEY, None).await?;
        anyhow::Ok(())
    };
    // The outer bound is a little longer so the client's own timeouts,
    // which say more, usually fire first.
    tokio::time::timeout(HEALTH_TRY_TIMEOUT + Duration::from_millis(250), check)
        .await
        .with_context(|| format!("{endpoint}: no answer within {HEALTH_TRY_TIMEOUT:?}"))?
        .with_context(|| format!("{endpoint} is not healthy"))
}

/// What the kit last did to a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    /// Started or continued.
    Running,
    /// SIGSTOP: alive but frozen.
    Stopped,
    /// SIGKILL and reaped (or exited by itself).
    Killed,
}

/// A member with its process.
#[derive(Debug)]
struct Member {
    /// Name, ports, data dir.
    id: EtcdMember,
    /// What the kit last did to it (behind a lock so `stop`/`cont` take `&self`).
    state: Mutex<MemberState>,
    /// `None` once killed.
    process: Option<ChildProcess>,
}

impl Member {
    /// What the kit last did to this member.
    fn state(&self) -> MemberState {
        *self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records what the kit did.
    fn set_state(&self, state: MemberState) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = state;
    }
}

/// Why one start-up attempt failed.
enum StartError {
    /// A member could not bind: try again on other ports.
    PortTaken(anyhow::Error),
    /// Anything else.
    Other(anyhow::Error),
}

/// A client kept for reuse.
#[derive(Clone)]
struct ReusedClient(Client);

impl std::fmt::Debug for ReusedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReusedClient")
    }
}

/// A running etcd cluster of child processes; terminated on drop.
#[derive(Debug)]
pub struct EtcdCluster {
    /// The members, index = member number. Declared before `owned_dir` so
    /// the processes end before the directory is removed.
    members: Vec<Member>,
    /// `--initial-cluster-token` of this cluster (unique per cluster).
    token: String,
    /// How it was started, reused on restart.
    options: EtcdOptions,
    /// Data and logs.
    dir: PathBuf,
    /// The kit's client TLS, with [`EtcdOptions::tls`].
    tls: Option<Tls>,
    /// The client [`EtcdCluster::dump`] reuses (one TLS handshake, not one
    /// per dump).
    reused: tokio::sync::Mutex<Option<ReusedClient>>,
    /// The directory, when the cluster made it.
    owned_dir: Option<TestDir>,
}

impl EtcdCluster {
    /// Starts `members` members in a fresh [`TestDir`], serving TLS with
    /// the shared test PKI's `etcd` certificate (clients need a certificate
    /// of its CA), and waits until the cluster is healthy.
    pub async fn start(members: usize) -> anyhow::Result<Self> {
        Self::start_with(
            EtcdOptions {
                members,
                ..EtcdOptions::default()
            }
            .with_shared_tls()?,
        )
        .await
    }

    /// [`EtcdCluster::start`] serving plaintext (`http://`, no client
    /// certificates).
    pub async fn start_insecure(members: usize) -> anyhow::Result<Self> {
        Self::start_with(EtcdOptions {
            members,
            ..EtcdOptions::default()
        })
        .await
    }

    /// Starts a cluster as `options` say and waits until it is healthy.
    pub async fn start_with(options: EtcdOptions) -> anyhow::Result<Self> {
        anyhow::ensure!(options.members >= 1, "an etcd cluster needs at least one member");
        let (dir, owned_dir) = match &options.dir {
            Some(d) => {
                std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
                (d.clone(), None)
            }
            None => {
                let td = TestDir::new("etcd")?;
                (td.path().to_path_buf(), Some(td))
            }
        };
        let base_token = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "tilewave".to_owned());
        let tls = options.client_tls()?;
        let mut cluster = Self {
            members: Vec::new(),
            token: String::new(),
            options,
            dir,
            tls,
            reused: tokio::sync::Mutex::new(None),
            owned_dir,
        };
        let mut last = None;
        for attempt in 1..=BIND_ATTEMPTS {
            cluster.token = format!("{base_token}-{}-{attempt}", std::process::id());
            match cluster.try_start().await {
                Ok(()) => return Ok(cluster),
                Err(StartError::Other(e)) => return Err(e),
                Err(StartError::PortTaken(e)) => {
                    tracing::warn!(attempt, "etcd could not bind, retrying on other ports: {e:#}");
                    cluster.kill_all();
                    last = Some(e);
                }
            }
        }
        Err(last
            .unwrap_or_else(|| anyhow::anyhow!("no attempt made"))
            .context(format!(
                "etcd could not bind its ports in {BIND_ATTEMPTS} attempts"
            )))
    }

    /// One start-up attempt on fresh ports and empty data dirs.
    async fn try_start(&mut self) -> Result<(), StartError> {
        let n = self.options.members;
        let ports = free_ports(2 * n).map_err(StartError::Other)?;
        let ids: Vec<EtcdMember> = (0..n)
            .map(|i| EtcdMember {
                name: format!("m{i}"),
                client_port: ports[2 * i],
                peer_port: ports[2 * i + 1],
                data_dir: self.dir.join(format!("m{i}.etcd")),
            })
            .collect();
        self.members.clear();
        for id in &ids {
            if id.data_dir.exists() {
                std::fs::remove_dir_all(&id.data_dir)
                    .with_context(|| format!("clearing {}", id.data_dir.display()))
                    .map_err(StartError::Other)?;
            }
            let launch = etcd_launch(id, &ids, &self.token, false, &self.options);
            let process = ChildProcess::spawn(launch, &self.dir).map_err(StartError::Other)?;
            self.members.push(Member {
                id: id.clone(),
                state: Mutex::new(MemberState::Running),
                process: Some(process),
            });
        }
        let all: Vec<usize> = (0..n).collect();
        self.wait_members(&all, self.options.start_timeout).await
    }

    /// Polls until the members `which` are healthy, failing fast when one
    /// of them exits (as [`StartError::PortTaken`] when it could not bind).
    async fn wait_members(&mut self, which: &[usize], timeout: Duration) -> Result<(), StartError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            for &i in which {
                let m = &mut self.members[i];
                let Some(p) = m.process.as_mut() else { continue };
                if let Some(status) = p.try_exit_status().map_err(StartError::Other)? {
                    let e = anyhow::anyhow!(
                        "etcd member {} exited during start-up ({status}); log {}:\n{}",
                        m.id.name,
                        p.log_path().display(),
                        p.log_tail()
                    );
                    let taken = p.failed_to_bind();
                    m.process = None;
                    m.set_state(MemberState::Killed);
                    return Err(if taken {
                        StartError::PortTaken(e)
                    } else {
                        StartError::Other(e)
                    });
                }
            }
            let last = match self.check(which).await {
                Ok(()) => return Ok(()),
                Err(e) => format!("{e:#}"),
            };
            if tokio::time::Instant::now() + HEALTH_POLL >= deadline {
                return Err(StartError::Other(anyhow::anyhow!(
                    "etcd not healthy after {timeout:?} (logs in {}): {last}",
                    self.dir.display()
                )));
            }
            tokio::time::sleep(HEALTH_POLL).await;
        }
    }

    /// One health check of the members `which`, all at once.
    async fn check(&self, which: &[usize]) -> anyhow::Result<()> {
        let checks = which.iter().map(|&i| {
            let ep = self.member_endpoint(i);
            async move { member_health_with(&ep, self.tls.as_ref()).await }
        });
        for r in futures::future::join_all(checks).await {
            r?;
        }
        Ok(())
    }

    /// Client URLs (`http(s)://127.0.0.1:PORT`) of all members, whatever their state.
    pub fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| m.id.client_url_for(&self.options))
            .collect()
    }

    /// The TLS files the members serve with (`None`: plaintext).
    pub fn tls_files(&self) -> Option<&TlsFiles> {
        self.options.tls.as_ref()
    }

    /// The client TLS the kit's own clients present (`None`: plaintext).
    pub fn client_tls(&self) -> Option<&Tls> {
        self.tls.as_ref()
    }

    /// A tilewave store client's configuration for this cluster: its
    /// members, keys under `prefix`, the kit's client TLS.
    #[cfg(feature = "store")]
    pub fn store_config(&self, prefix: &str) -> tilewave_store::StoreConfig {
        tilewave_store::StoreConfig::new(self.endpoints())
            .with_prefix(prefix)
            .with_tls(self.tls.as_ref().map(Tls::client_config))
    }

    /// A tilewave store client of this cluster under `prefix`, connected
    /// ([`EtcdCluster::store_config`]).
    #[cfg(feature = "store")]
    pub async fn store(&self, prefix: &str) -> anyhow::Result<tilewave_store::Store> {
        tilewave_store::Store::connect(self.store_config(prefix))
            .await
            .context("connecting a store client to the test cluster")
    }

    /// Connect options for a client of this cluster: its TLS, if any.
    pub fn connect_options(&self) -> ConnectOptions {
        connect_options(self.tls.as_ref(), None)
    }

    /// Client URLs of the members that are running (not stopped or killed).
    pub fn running_endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .filter(|m| m.state() == MemberState::Running)
            .map(|m| m.id.client_url_for(&self.options))
            .collect()
    }

    /// Client URL of member `i`.
    ///
    /// # Panics
    /// When there is no member `i`.
    pub fn member_endpoint(&self, i: usize) -> String {
        self.members[i].id.client_url_for(&self.options)
    }

    /// Member `i`'s name, ports and data dir.
    pub fn member(&self, i: usize) -> Option<&EtcdMember> {
        self.members.get(i).map(|m| &m.id)
    }

    /// What the kit last did to member `i`.
    pub fn member_state(&self, i: usize) -> Option<MemberState> {
        self.members.get(i).map(Member::state)
    }

    /// Member `i`'s pid, while it has one.
    pub fn member_pid(&self, i: usize) -> Option<u32> {
        self.members.get(i)?.process.as_ref()?.pid()
    }

    /// Member `i`'s log file.
    pub fn member_log(&self, i: usize) -> Option<PathBuf> {
        self.members
            .get(i)
            .map(|m| self.dir.join(format!("{}.log", m.id.name)))
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the cluster has no members (never, once started).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The directory holding data and logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Keeps the data and logs after the cluster is dropped (when the
    /// cluster made its own directory), and returns where they are.
    pub fn keep_dir(&mut self) -> PathBuf {
        if let Some(d) = &mut self.owned_dir {
            d.keep();
        }
        self.dir.clone()
    }

    /// A client connected to all members' endpoints.
    pub async fn client(&self) -> anyhow::Result<Client> {
        Client::connect(self.endpoints(), Some(self.connect_options()))
            .await
            .context("connecting to etcd")
    }

    /// Every key under `prefix` with its value and mod revision, read at
    /// one revision: compare a dump before and after a refused request to
    /// prove it changed nothing.
    /// The client is connected once and reused (with TLS a handshake per
    /// dump would dominate a property test); after a failure it is
    /// connected afresh once.
    pub async fn dump(&self, prefix: &str) -> anyhow::Result<BTreeMap<String, (Vec<u8>, i64)>> {
        let get = |mut c: Client| {
            let prefix = prefix.to_owned();
            crate::kit_runtime::run(async move {
                let options = Some(etcd_client::GetOptions::new().with_prefix());
                c.get(prefix, options).await
            })
        };
        let mut slot = self.reused.lock().await;
        let first = match slot.clone() {
            Some(ReusedClient(c)) => get(c).await?.ok(),
            None => None,
        };
        let resp = match first {
            Some(resp) => resp,
            None => {
                *slot = None;
                // Connected on the kit's runtime, which drives it from then on.
                let (endpoints, options) = (self.endpoints(), self.connect_options());
                let c = crate::kit_runtime::run(Client::connect(endpoints, Some(options)))
                    .await?
                    .context("connecting to etcd")?;
                let resp = get(c.clone())
                    .await?
                    .with_context(|| format!("reading every key under {prefix}"))?;
                *slot = Some(ReusedClient(c));
                resp
            }
        };
        Ok(resp
            .kvs()
            .iter()
            .map(|kv| {
                (
                    String::from_utf8_lossy(kv.key()).into_owned(),
                    (kv.value().to_vec(), kv.mod_revision()),
                )
            })
            .collect())
    }

    /// A client connected to member `i` only.
    pub async fn member_client(&self, i: usize) -> anyhow::Result<Client> {
        Client::connect([self.member_endpoint(i)], Some(self.connect_options()))
            .await
            .with_context(|| format!("connecting to etcd member {i}"))
    }

    /// Member `i`'s running process.
    fn process(&self, i: usize) -> anyhow::Result<&ChildProcess> {
        let m = self
            .members
            .get(i)
            .with_context(|| format!("no etcd member {i}"))?;
        m.process
            .as_ref()
            .with_context(|| format!("etcd member {} is not running", m.id.name))
    }

    /// Freezes member `i` (SIGSTOP): it keeps its sockets but answers nothing.
    pub fn stop(&self, i: usize) -> anyhow::Result<()> {
        self.process(i)?.signal(Signal::SIGSTOP)?;
        self.members[i].set_state(MemberState::Stopped);
        Ok(())
    }

    /// Resumes member `i` after [`EtcdCluster::stop`] (SIGCONT).
    pub fn cont(&self, i: usize) -> anyhow::Result<()> {
        self.process(i)?.signal(Signal::SIGCONT)?;
        self.members[i].set_state(MemberState::Running);
        Ok(())
    }

    /// Kills member `i` (SIGKILL) and reaps it. Its data dir stays, for
    /// [`EtcdCluster::restart`].
    pub fn kill(&mut self, i: usize) -> anyhow::Result<()> {
        let m = self
            .members
            .get_mut(i)
            .with_context(|| format!("no etcd member {i}"))?;
        if let Some(mut p) = m.process.take() {
            p.kill()?;
        }
        m.set_state(MemberState::Killed);
        Ok(())
    }

    /// Starts member `i` again with the same data dir, ports and flags (in a
    /// cluster of several, with `--initial-cluster-state existing`), after
    /// terminating it if it still runs, and waits until it is healthy (it
    /// then serves linearizable reads, so it has caught up).
    pub async fn restart(&mut self, i: usize) -> anyhow::Result<()> {
        anyhow::ensure!(i < self.members.len(), "no etcd member {i}");
        if let Some(mut p) = self.members[i].process.take() {
            p.terminate(DROP_GRACE).await?;
        }
        self.members[i].set_state(MemberState::Killed);
        let ids: Vec<EtcdMember> = self.members.iter().map(|m| m.id.clone()).collect();
        let existing = ids.len() > 1;
        let mut last = None;
        for attempt in 1..=BIND_ATTEMPTS {
            let launch = etcd_launch(&ids[i], &ids, &self.token, existing, &self.options);
            self.members[i].process = Some(ChildProcess::spawn(launch, &self.dir)?);
            self.members[i].set_state(MemberState::Running);
            match self.wait_members(&[i], self.options.start_timeout).await {
                Ok(()) => return Ok(()),
                Err(StartError::Other(e)) => return Err(e),
                Err(StartError::PortTaken(e)) => {
                    // Our own port, so most likely a socket of the old
                    // process not yet released: try again shortly.
                    tracing::warn!(attempt, "etcd member {i} could not bind on restart: {e:#}");
                    last = Some(e);
                    tokio::time::sleep(Duration::from_millis(200 * attempt as u64)).await;
                }
            }
        }
        Err(last
            .unwrap_or_else(|| anyhow::anyhow!("no attempt made"))
            .context(format!("restarting etcd member {i}")))
    }

    /// Saves a backup of the cluster to `file` with `etcdctl snapshot save`
    /// (through member 0, presenting the kit's client certificate when the
    /// cluster serves TLS), as an operator would.
    pub async fn snapshot_save(&self, file: &Path) -> anyhow::Result<()> {
        let mut args = vec![format!("--endpoints={}", self.member_endpoint(0))];
        if let Some(tls) = &self.options.tls {
            args.extend([
                format!("--cacert={}", tls.ca.display()),
                format!("--cert={}", tls.cert.display()),
                format!("--key={}", tls.key.display()),
            ]);
        }
        args.extend([
            "snapshot".to_owned(),
            "save".to_owned(),
            file.display().to_string(),
        ]);
        etcdctl(&args).await
    }

    /// Replaces the cluster with one restored from the backup `file`, as an
    /// operator restores a cluster: every member is killed, its data dir
    /// replaced by `etcdctl snapshot restore` (with its own `--name`,
    /// `--initial-cluster` and `--initial-advertise-peer-urls`, and a new
    /// cluster token: a new cluster), and started again on the same ports,
    /// so clients reconnect to the same endpoints. etcd 3.4's restore keeps
    /// the backup's revision: the restored cluster's revision is the
    /// backup's, behind what clients saw after the backup was taken.
    pub async fn restore_snapshot(&mut self, file: &Path) -> anyhow::Result<()> {
        self.kill_all();
        *self.reused.get_mut() = None;
        let ids: Vec<EtcdMember> = self.members.iter().map(|m| m.id.clone()).collect();
        let initial_cluster: Vec<String> = ids
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url()))
            .collect();
        self.token = format!("{}-restored", self.token);
        for id in &ids {
            if id.data_dir.exists() {
                std::fs::remove_dir_all(&id.data_dir)
                    .with_context(|| format!("clearing {}", id.data_dir.display()))?;
            }
            etcdctl(&[
                "snapshot".to_owned(),
                "restore".to_owned(),
                file.display().to_string(),
                format!("--name={}", id.name),
                format!("--data-dir={}", id.data_dir.display()),
                format!("--initial-cluster={}", initial_cluster.join(",")),
                format!("--initial-cluster-token={}", self.token),
                format!("--initial-advertise-peer-urls={}", id.peer_url()),
            ])
            .await?;
        }
        for (i, id) in ids.iter().enumerate() {
            let launch = etcd_launch(id, &ids, &self.token, false, &self.options);
            self.members[i].process = Some(ChildProcess::spawn(launch, &self.dir)?);
            self.members[i].set_state(MemberState::Running);
        }
        let all: Vec<usize> = (0..ids.len()).collect();
        match self.wait_members(&all, self.options.start_timeout).await {
            Ok(()) => Ok(()),
            Err(StartError::Other(e) | StartError::PortTaken(e)) => {
                Err(e.context("starting the cluster restored from a snapshot"))
            }
        }
    }

    /// Waits until every running member (not stopped, not killed) is
    /// healthy, polling against `timeout`.
    pub async fn wait_healthy(&self, timeout: Duration) -> anyhow::Result<()> {
        let running: Vec<usize> = (0..self.members.len())
            .filter(|&i| self.members[i].state() == MemberState::Running)
            .collect();
        anyhow::ensure!(!running.is_empty(), "no etcd member is running");
        crate::eventually("a healthy etcd cluster", timeout, || self.check(&running)).await
    }

    /// Terminates and reaps every member (blocking).
    fn kill_all(&mut self) {
        let mut procs: Vec<&mut ChildProcess> = self
            .members
            .iter_mut()
            .filter_map(|m| m.process.as_mut())
            .collect();
        terminate_all_blocking(&mut procs, Duration::ZERO);
        for m in &mut self.members {
            m.process = None;
            m.set_state(MemberState::Killed);
        }
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        // Closed (by the kit's runtime) before the members are asked to stop.
        drop(self.reused.get_mut().take());
        let mut procs: Vec<&mut ChildProcess> = self
            .members
            .iter_mut()
            .filter_map(|m| m.process.as_mut())
            .collect();
        if !procs.is_empty() {
            crate::process::blocking(|| terminate_all_blocking(&mut procs, DROP_GRACE));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members() -> Vec<EtcdMember> {
        (0..3)
            .map(|i| EtcdMember {
                name: format!("m{i}"),
                client_port: 2000 + i,
                peer_port: 3000 + i,
                data_dir: PathBuf::from(format!("/d/m{i}.etcd")),
            })
            .collect()
    }

    #[test]
    fn command_line_names_the_cluster_and_leaves_compaction_off() {
        let ms = members();
        let l = etcd_launch(&ms[1], &ms, "tok", false, &EtcdOptions::default());
        assert_eq!(l.name, "m1");
        for want in [
            "--name=m1",
            "--data-dir=/d/m1.etcd",
            "--listen-client-urls=http://127.0.0.1:2001",
            "--advertise-client-urls=http://127.0.0.1:2001",
            "--listen-peer-urls=http://127.0.0.1:3001",
            "--initial-advertise-peer-urls=http://127.0.0.1:3001",
            "--initial-cluster=m0=http://127.0.0.1:3000,m1=http://127.0.0.1:3001,m2=http://127.0.0.1:3002",
            "--initial-cluster-state=new",
            "--initial-cluster-token=tok",
        ] {
            assert!(
                l.args.iter().any(|a| a == want),
                "{want} missing from {:?}",
                l.args
            );
        }
        assert!(!l.args.iter().any(|a| a.starts_with("--auto-compaction")));
    }

    #[test]
    fn with_tls_client_urls_are_https_and_need_a_client_certificate() {
        let ms = members();
        let opts = EtcdOptions {
            tls: Some(TlsFiles {
                cert: "/c/etcd.crt".into(),
                key: "/c/etcd.key".into(),
                ca: "/c/ca.crt".into(),
            }),
            ..EtcdOptions::default()
        };
        assert_eq!(ms[0].client_url_for(&opts), "https://127.0.0.1:2000");
        let l = etcd_launch(&ms[0], &ms, "tok", false, &opts);
        for want in [
            "--listen-client-urls=https://127.0.0.1:2000",
            "--advertise-client-urls=https://127.0.0.1:2000",
            "--client-cert-auth",
            "--trusted-ca-file=/c/ca.crt",
            "--cert-file=/c/etcd.crt",
            "--key-file=/c/etcd.key",
        ] {
            assert!(
                l.args.iter().any(|a| a == want),
                "{want} missing from {:?}",
                l.args
            );
        }
    }

    #[test]
    fn rejoin_and_auto_compaction_are_options() {
        let ms = members();
        let opts = EtcdOptions {
            auto_compaction_revisions: Some(1000),
            extra_args: vec!["--snapshot-count=500".into()],
            ..EtcdOptions::default()
        };
        let l = etcd_launch(&ms[0], &ms, "tok", true, &opts);
        for want in [
            "--initial-cluster-state=existing",
            "--auto-compaction-mode=revision",
            "--auto-compaction-retention=1000",
            "--snapshot-count=500",
        ] {
            assert!(
                l.args.iter().any(|a| a == want),
                "{want} missing from {:?}",
                l.args
            );
        }
    }
}
