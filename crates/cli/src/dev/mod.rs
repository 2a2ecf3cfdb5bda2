//! `tilewave dev up | status | down`: a local stack in the background, for
//! trying tilewave out and for demos. etcd (one member, data in the dev
//! directory) and then each service of [`services::SERVICES`] whose binary
//! is built, started detached with the test kit, each waited for until
//! healthy. By default every hop is mutual TLS with the development
//! certificate set in `<dir>/certs` (made on the first `up`, reused after);
//! `--insecure` runs plaintext, with a warning. `stack.toml` records what
//! runs and the settings later commands read last (the addresses and the
//! CLI's certificate), so that they reach the stack without flags.

pub mod services;
pub mod stack;
pub mod tls;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::Subcommand;
use tilewave_testkit::{EtcdMember, EtcdOptions, ServiceSpec, etcd_launch, spawn_detached};

use crate::args::GlobalArgs;
use crate::client::{note, out};
use crate::error::CliError;
use crate::output::{Format, Table, structured};
use crate::settings::{FileSettings, TLS_KEYS, config_path, env_var_of, process_env, read_file_settings};
use services::{Replicas, SERVICES, StackEnv, instance_name, regions, stack_catalog};
use stack::{HealthKind, ProcessRecord, StackFile, dev_dir, pid_alive, pid_runs};
use tilewave_tls::Tls;
use tls::StackCerts;

/// The key prefix of the dev stack.
pub const DEV_PREFIX: &str = "/tilewave/";
/// The development key-encryption key's file name in the dev directory.
pub const KEK_FILE: &str = "kek";
/// The development key-encryption key's id.
pub const DEV_KEK_ID: &str = "dev-1";
/// The etcd cluster token of the dev stack.
const DEV_ETCD_TOKEN: &str = "tilewave-dev";
/// etcd keeps this many revisions before compacting.
const DEV_ETCD_COMPACTION_REVISIONS: u64 = 10_000;
/// How long each process may take to become healthy.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How often health is polled while starting.
const POLL: Duration = Duration::from_millis(100);
/// How long `dev down` waits after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Examples of `dev up`.
const UP_EXAMPLES: &str = "\
Every hop runs mutual TLS: the first `dev up` makes a development CA, a certificate per
service and one for you (as release-engineer) in <dir>/certs, and later ones reuse them.
Later commands find the addresses and your certificate in the stack's saved settings
(after flags, TILEWAVE_* and the config file), so they need no flags.

Examples:
  tilewave dev up
  tilewave dev up --dir /tmp/tw --virtual-clock
  TILEWAVE_DEV_DIR=/tmp/tw tilewave dev up
  tilewave dev up --insecure     # plaintext: any local process may call the services";

/// Examples of `dev status`.
const STATUS_EXAMPLES: &str = "\
Examples:
  tilewave dev status
  tilewave dev status -o json";

/// Examples of `dev down`.
const DOWN_EXAMPLES: &str = "\
Examples:
  tilewave dev down             # stop; data, logs and certificates stay for the next `dev up`
  tilewave dev down --purge     # stop, delete the dev directory: data, logs, certificates, the key-encryption key, saved settings";

/// The dev commands.
#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Start etcd and the services in the background and save their addresses.
    Up(UpArgs),
    /// Show each process of the local stack: alive, healthy, port, log.
    Status(DirArgs),
    /// Stop the local stack (SIGTERM, then SIGKILL, by recorded pid only).
    Down(DownArgs),
}

impl DevCommand {
    /// The command's name, for the root span.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Up(_) => "dev up",
            Self::Status(_) => "dev status",
            Self::Down(_) => "dev down",
        }
    }
}

/// Where the stack lives.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = STATUS_EXAMPLES)]
pub struct DirArgs {
    /// The dev directory [env: TILEWAVE_DEV_DIR] [default: ~/.local/share/tilewave/dev].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Arguments of `dev up`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = UP_EXAMPLES)]
pub struct UpArgs {
    /// The dev directory: etcd data, logs, stack.toml [env: TILEWAVE_DEV_DIR] [default: ~/.local/share/tilewave/dev].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// How many regions get an agent [default: all 70]. Fewer picks a
    /// representative set (every cloud's canary first, then the others
    /// spread round-robin over aws, azure and gcp), and those N become the
    /// stack's region catalog: plans cover only them.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..))]
    pub regions: Option<u32>,
    /// Run domain time on the virtual clock, starting now (the rollout service serves it).
    #[arg(long)]
    pub virtual_clock: bool,
    /// With --virtual-clock: virtual seconds per real second (10000 runs a week in a minute).
    #[arg(long, value_name = "R", requires = "virtual_clock", value_parser = rate_arg)]
    pub rate: Option<f64>,
    /// Run without TLS: etcd and every service plaintext (services get
    /// --insecure), so any process that can reach the ports may call them.
    /// Without it the stack runs mutual TLS.
    #[arg(long)]
    pub insecure: bool,
}

/// A clock rate: a finite number, zero or more.
fn rate_arg(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r >= 0.0 => Ok(r),
        _ => Err(format!("{s:?} is not a rate: use a number >= 0, e.g. 10000")),
    }
}

/// How many agents run at most while starting, so that 70 of them do not
/// all compete for two cores at once.
const AGENT_START_CONCURRENCY: usize = 8;

/// The wall-clock now, as the start of a fresh virtual clock.
///
/// The only place the CLI reads the wall clock (docs/design.md, "Code layout"): a virtual clock
/// has to start somewhere, and "now" is what a person trying tilewave out
/// expects; every later time comes from the clock service.
#[allow(
    clippy::disallowed_methods,
    reason = "bootstrap of the dev stack's virtual clock: the one wall-clock read of the CLI"
)]
fn wall_clock_start() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Arguments of `dev down`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = DOWN_EXAMPLES)]
pub struct DownArgs {
    /// The dev directory [env: TILEWAVE_DEV_DIR] [default: ~/.local/share/tilewave/dev].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Also delete the dev directory: data, logs, the certificates, the key-encryption key and the saved settings.
    #[arg(long)]
    pub purge: bool,
}

/// Runs a dev command.
pub async fn run(cmd: DevCommand, global: &GlobalArgs) -> anyhow::Result<()> {
    match cmd {
        DevCommand::Up(a) => up(&a, global.output).await,
        DevCommand::Status(a) => status(&a, global.output).await,
        DevCommand::Down(a) => down(&a).await,
    }
}

/// The binary `name`: next to the running `tilewave` first, then wherever
/// the test kit finds workspace binaries. `None` when it is not built.
pub fn find_binary(name: &str) -> Option<PathBuf> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join(name)))
        .filter(|p| p.is_file());
    beside.or_else(|| tilewave_testkit::bin_path(name).ok())
}

/// Whether `port` on 127.0.0.1 can be bound now.
fn port_free(port: u16) -> bool {
    TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).is_ok()
}

/// `previous` if it is still free, else a fresh free port.
fn reuse_or_free(previous: Option<u16>) -> anyhow::Result<u16> {
    match previous {
        Some(p) if port_free(p) => Ok(p),
        _ => tilewave_testkit::free_port(),
    }
}

/// Checks a recorded process once, presenting `tls` (your certificate)
/// when the stack runs TLS.
async fn check(p: &ProcessRecord, tls: Option<&Tls>) -> anyhow::Result<()> {
    match p.health {
        HealthKind::Etcd => tilewave_testkit::member_health_with(&p.url, tls).await,
        HealthKind::Grpc => {
            tilewave_testkit::check_ready_with(
                SocketAddr::from((Ipv4Addr::LOCALHOST, p.port)),
                Some(&p.health_service),
                tls,
            )
            .await
        }
        HealthKind::Tcp => {
            tilewave_testkit::check_ready(SocketAddr::from((Ipv4Addr::LOCALHOST, p.port)), None).await
        }
    }
}

/// Polls until `p` is healthy; fails early when it exits, quoting its log.
async fn wait_healthy(p: &ProcessRecord, tls: Option<&Tls>) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    loop {
        let last = match check(p, tls).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if !pid_alive(p.pid) {
            anyhow::bail!(
                "{} (pid {}) exited while starting; the end of {}:\n{}",
                p.name,
                p.pid,
                p.log.display(),
                tilewave_testkit::log_tail(&p.log, 0)
            );
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!(
                "{} (pid {}) was not healthy after {START_TIMEOUT:?} ({last:#}); see {}",
                p.name,
                p.pid,
                p.log.display()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Stops the recorded processes, newest first, by pid only, and only when
/// the pid still runs the recorded program. Per-region instances (agents)
/// are stopped together, 16 at a time, and summed up in one note unless
/// one of them needs its own.
async fn stop_all(stack: &StackFile) -> Vec<String> {
    use futures::StreamExt as _;
    let is_replica = |p: &ProcessRecord| p.name.starts_with("agent-");
    let replicas: Vec<&ProcessRecord> = stack.processes.iter().filter(|p| is_replica(p)).collect();
    let results: Vec<(bool, String)> = futures::stream::iter(replicas)
        .map(|p| stop_one(stack, p))
        .buffer_unordered(16)
        .collect()
        .await;
    let mut notes: Vec<String> = results
        .iter()
        .filter(|(ok, _)| !ok)
        .map(|(_, n)| n.clone())
        .collect();
    let stopped = results.iter().filter(|(ok, _)| *ok).count();
    if stopped > 0 {
        notes.push(format!("agents: {stopped} stopped"));
    }
    for p in stack.processes.iter().rev().filter(|p| !is_replica(p)) {
        notes.push(stop_one(stack, p).await.1);
    }
    notes
}

/// Stops one recorded process: (stopped, note).
async fn stop_one(stack: &StackFile, p: &ProcessRecord) -> (bool, String) {
    if !pid_alive(p.pid) {
        return (false, format!("{}: not running (pid {})", p.name, p.pid));
    }
    if pid_runs(p.pid, &p.program) == Some(false) {
        return (
            false,
            format!("{}: pid {} now runs another program; left alone", p.name, p.pid),
        );
    }
    let r = match tilewave_testkit::stop_pid(p.pid, STOP_GRACE).await {
        Ok(()) => (true, format!("{}: stopped (pid {})", p.name, p.pid)),
        Err(e) => (false, format!("{}: could not stop pid {}: {e:#}", p.name, p.pid)),
    };
    let _ = std::fs::remove_file(stack.dir.join(format!("{}.pid", p.name)));
    r
}

/// `dev up`.
async fn up(args: &UpArgs, format: Format) -> anyhow::Result<()> {
    let dir = dev_dir(args.dir.as_deref(), &process_env)?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir.canonicalize().unwrap_or(dir);
    let previous = StackFile::read(&dir)?;
    if let Some(prev) = &previous {
        let running: Vec<String> = prev
            .processes
            .iter()
            .filter(|p| pid_alive(p.pid) && pid_runs(p.pid, &p.program) != Some(false))
            .map(|p| format!("{} (pid {})", p.name, p.pid))
            .collect();
        if !running.is_empty() {
            return Err(CliError::Conflict(format!(
                "a dev stack is already running in {}: {}. See `tilewave dev status`; stop it with `tilewave dev down`",
                dir.display(),
                running.join(", ")
            ))
            .into());
        }
    }
    let prev_port = |name: &str| previous.as_ref().and_then(|s| s.process(name)).map(|p| p.port);

    let certs = if args.insecure {
        note(INSECURE_WARNING);
        None
    } else {
        let (certs, made) = StackCerts::ensure(&dir, &process_env)?;
        if made {
            note(&format!(
                "made the development certificates in {} (kept for the next `dev up`)",
                certs.dir.display()
            ));
        }
        Some(certs)
    };
    let (kek_file, made) = ensure_kek(&dir)?;
    if made {
        note(&format!(
            "made the development key-encryption key {} (kept for the next `dev up`; `dev down --purge` deletes it)",
            kek_file.display()
        ));
    }
    let mut stack = StackFile {
        dir: dir.clone(),
        virtual_clock: args.virtual_clock,
        regions: args
            .regions
            .unwrap_or(u32::try_from(regions(usize::MAX).len()).unwrap_or(u32::MAX)),
        region_ids: Vec::new(),
        prefix: DEV_PREFIX.to_owned(),
        certs: certs.as_ref().map(|c| c.dir.clone()),
        skipped: Vec::new(),
        settings: BTreeMap::new(),
        processes: Vec::new(),
    };
    stack.region_ids = stack_catalog(stack.regions as usize);
    match start_stack(
        &mut stack,
        args,
        &prev_port,
        previous.as_ref(),
        certs.as_ref(),
        &kek_file,
    )
    .await
    {
        Ok(()) => {}
        Err(e) => {
            for n in stop_all(&stack).await {
                note(&format!("cleaning up: {n}"));
            }
            let _ = StackFile::remove(&dir);
            return Err(e.context("starting the dev stack"));
        }
    }

    // The saved settings: the last layer of every later command's
    // settings, so that it reaches the stack (and presents its
    // certificate) without flags.
    stack.settings = SERVICES
        .iter()
        .filter_map(|s| {
            let key = s.setting?;
            stack
                .process(s.name)
                .map(|p| (key.key().to_owned(), p.url.clone()))
        })
        .chain(certs.iter().flat_map(StackCerts::saved_settings))
        .collect();
    stack.write()?;
    print_up(&stack, format)
}

/// What `dev up --insecure` says first.
const INSECURE_WARNING: &str = "warning: --insecure: the dev stack runs without TLS; any process \
that can reach its ports may call etcd and every service as anyone. Leave --insecure out to run mutual TLS.";

/// Starts etcd and the services, recording each in `stack` (and the stack
/// file) as soon as it is spawned, so a failure can stop what runs.
async fn start_stack(
    stack: &mut StackFile,
    args: &UpArgs,
    prev_port: &dyn Fn(&str) -> Option<u16>,
    previous: Option<&StackFile>,
    certs: Option<&StackCerts>,
    kek_file: &Path,
) -> anyhow::Result<()> {
    let dir = stack.dir.clone();
    let tls = certs.map(StackCerts::client_tls).transpose()?;
    // etcd, reusing its ports when its data is kept, so its recorded peer
    // URL stays right.
    let prev_etcd = previous.and_then(|s| s.process("etcd"));
    let client_port = reuse_or_free(prev_etcd.map(|p| p.port))?;
    let mut peer_port = reuse_or_free(prev_etcd.and_then(|p| p.peer_port))?;
    if peer_port == client_port {
        peer_port = tilewave_testkit::free_port()?;
    }
    let member = EtcdMember {
        name: "etcd".into(),
        client_port,
        peer_port,
        data_dir: dir.join("etcd-data"),
    };
    let existing = member.data_dir.join("member").is_dir();
    let options = EtcdOptions {
        auto_compaction_revisions: Some(DEV_ETCD_COMPACTION_REVISIONS),
        dir: Some(dir.clone()),
        tls: certs.map(|c| c.files("etcd")),
        ..EtcdOptions::default()
    };
    let launch = etcd_launch(
        &member,
        std::slice::from_ref(&member),
        DEV_ETCD_TOKEN,
        existing,
        &options,
    );
    let pid = spawn_detached(&launch, &dir)?;
    let etcd = ProcessRecord {
        name: "etcd".into(),
        pid,
        program: launch.program.clone(),
        port: client_port,
        url: member.client_url_for(&options),
        log: launch.log_path(&dir),
        health: HealthKind::Etcd,
        health_service: String::new(),
        peer_port: Some(peer_port),
    };
    stack.processes.push(etcd.clone());
    stack.write()?;
    wait_healthy(&etcd, tls.as_ref()).await?;

    let mut env = StackEnv {
        etcd_url: etcd.url.clone(),
        prefix: stack.prefix.clone(),
        virtual_clock: args.virtual_clock,
        virtual_clock_start: args.virtual_clock.then(wall_clock_start),
        rate: args.rate.unwrap_or(1.0),
        data_dir: dir.clone(),
        registry_url: None,
        rollout_url: None,
        credentials_url: None,
        region: None,
        catalog: stack.region_ids.clone(),
        certs: certs.cloned(),
        kek_file: Some(kek_file.to_path_buf()),
    };
    for def in SERVICES {
        let Some(binary) = find_binary(def.binary) else {
            stack.skipped.push(format!(
                "{}: `{}` is not built (cargo build --bins)",
                def.name, def.binary
            ));
            continue;
        };
        if def.replicas == Replicas::PerRegion {
            start_per_region(stack, def, &binary, &env, prev_port, tls.as_ref()).await?;
            continue;
        }
        let name = instance_name(def.name, None);
        let port = reuse_or_free(prev_port(&name))?;
        let record = spawn_service(&dir, def, &binary, &env, name, port)?;
        stack.processes.push(record.clone());
        stack.write()?;
        wait_healthy(&record, tls.as_ref()).await?;
        match def.name {
            "registry" => env.registry_url = Some(record.url.clone()),
            "rollout" => env.rollout_url = Some(record.url.clone()),
            "credentials" => env.credentials_url = Some(record.url.clone()),
            _ => {}
        }
    }
    start_partner_double(stack, prev_port).await
}

/// The partner API double's binary and instance name.
pub const PARTNER_DOUBLE: &str = "partner-double";

/// Starts the partner API double (`tilewave-partner-double`, plain HTTP on
/// loopback), the partner the demo's tile is verified against; its URL,
/// `http://localhost:<port>`, is what a tile's `base_url` names. Skipped
/// with a note when its binary is not built.
async fn start_partner_double(
    stack: &mut StackFile,
    prev_port: &dyn Fn(&str) -> Option<u16>,
) -> anyhow::Result<()> {
    let Some(binary) = find_binary("tilewave-partner-double") else {
        stack.skipped.push(format!(
            "{PARTNER_DOUBLE}: `tilewave-partner-double` is not built (cargo build --bins)"
        ));
        return Ok(());
    };
    let dir = stack.dir.clone();
    let port = reuse_or_free(prev_port(PARTNER_DOUBLE))?;
    let launch =
        ServiceSpec::new(PARTNER_DOUBLE, &binary).launch(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    let pid = spawn_detached(&launch, &dir)?;
    let record = ProcessRecord {
        name: PARTNER_DOUBLE.into(),
        pid,
        program: binary,
        port,
        url: format!("http://localhost:{port}"),
        log: launch.log_path(&dir),
        health: HealthKind::Tcp,
        health_service: String::new(),
        peer_port: None,
    };
    stack.processes.push(record.clone());
    stack.write()?;
    wait_healthy(&record, None).await
}

/// The environment variables of a service's TLS, policy and `--insecure`,
/// removed from what it inherits.
const SERVICE_SECURITY_ENV: [&str; 5] = [
    tilewave_tls::config::ENV_TLS_CERT,
    tilewave_tls::config::ENV_TLS_KEY,
    tilewave_tls::config::ENV_TLS_CA,
    tilewave_auth::serve::ENV_POLICY,
    tilewave_tls::config::ENV_INSECURE,
];

/// The key-encryption key variables, removed from what a service inherits:
/// the stack's key is the one `dev up` gives it.
const SERVICE_KEK_ENV: [&str; 2] = [tilewave_secrets::KEK_ENV, services::KEK_FILE_ENV];

/// The stack's development key-encryption key, `<dir>/kek`: made (mode
/// 0600, one key `dev-1`) when there is none (`true`), reused otherwise,
/// never replaced: losing it loses every secret sealed under it. One that
/// does not read as a key file is an error saying what to do.
pub fn ensure_kek(dir: &Path) -> anyhow::Result<(PathBuf, bool)> {
    let path = dir.join(KEK_FILE);
    if path.exists() {
        tilewave_secrets::Keyring::from_file(&path).map_err(|e| {
            CliError::usage(format!(
                "the dev stack's key-encryption key: {e}; restore the file, or start afresh with                  `tilewave dev down --purge` (which deletes the stack's data and secrets with it) and `tilewave dev up`"
            ))
        })?;
        return Ok((path, false));
    }
    tilewave_secrets::write_new_kek_file(&path, DEV_KEK_ID)
        .map_err(|e| anyhow::anyhow!("making the dev stack's key-encryption key: {e}"))?;
    Ok((path, true))
}

/// Spawns one instance of a service on `port`, detached.
fn spawn_service(
    dir: &Path,
    def: &services::ServiceDef,
    binary: &Path,
    env: &StackEnv,
    name: String,
    port: u16,
) -> anyhow::Result<ProcessRecord> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut spec = ServiceSpec::new(name.clone(), binary)
        .with_args((def.args)(env))
        .with_args(services::security_args(env, def.name))
        .tls_as_given();
    // The stack's TLS is exactly what the flags say, whatever the caller's
    // environment holds.
    for var in SERVICE_SECURITY_ENV.iter().chain(&SERVICE_KEK_ENV) {
        spec = spec.without_env(*var);
    }
    for (key, value) in (def.env)(env) {
        spec = spec.with_env(key, value);
    }
    let launch = spec.launch(addr);
    let pid = spawn_detached(&launch, dir)?;
    Ok(ProcessRecord {
        name,
        pid,
        program: binary.to_path_buf(),
        port,
        url: format!("{}://{addr}", if env.certs.is_some() { "https" } else { "http" }),
        log: launch.log_path(dir),
        health: HealthKind::Grpc,
        health_service: def.health_service.to_owned(),
        peer_port: None,
    })
}

/// Starts one instance per region, [`AGENT_START_CONCURRENCY`] at a time,
/// showing "agents 40/70 healthy". Every spawned process is recorded in
/// `stack` (also on failure, so that it is stopped).
async fn start_per_region(
    stack: &mut StackFile,
    def: &services::ServiceDef,
    binary: &Path,
    env: &StackEnv,
    prev_port: &dyn Fn(&str) -> Option<u16>,
    tls: Option<&Tls>,
) -> anyhow::Result<()> {
    use futures::StreamExt as _;
    use std::io::IsTerminal as _;

    let dir = stack.dir.clone();
    let ids = regions(stack.regions as usize);
    let total = ids.len();
    // Ports first, all distinct, so that parallel starts cannot collide.
    let mut taken: std::collections::HashSet<u16> = stack.processes.iter().map(|p| p.port).collect();
    let mut planned = Vec::with_capacity(total);
    for region in ids {
        let name = instance_name(def.name, Some(&region));
        let mut port = reuse_or_free(prev_port(&name))?;
        while !taken.insert(port) {
            port = tilewave_testkit::free_port()?;
        }
        planned.push((region, name, port));
    }
    let spawned = std::sync::Mutex::new(Vec::<ProcessRecord>::new());
    let healthy = std::sync::atomic::AtomicUsize::new(0);
    let tty = std::io::stderr().is_terminal();
    let plural = format!("{}s", def.name);
    let show = |n: usize| {
        if tty {
            eprint!("\r{plural} {n}/{total} healthy");
            if n == total {
                eprintln!();
            }
        } else if n == total || n.is_multiple_of(10) {
            note(&format!("{plural} {n}/{total} healthy"));
        }
    };
    let result = futures::stream::iter(planned)
        .map(|(region, name, port)| {
            let (dir, spawned, healthy, show) = (&dir, &spawned, &healthy, &show);
            async move {
                let mut env = env.clone();
                env.region = Some(region);
                let record = spawn_service(dir, def, binary, &env, name, port)?;
                if let Ok(mut list) = spawned.lock() {
                    list.push(record.clone());
                }
                wait_healthy(&record, tls).await?;
                let n = healthy.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                show(n);
                anyhow::Ok(())
            }
        })
        .buffer_unordered(AGENT_START_CONCURRENCY)
        .collect::<Vec<anyhow::Result<()>>>()
        .await;
    if let Ok(mut list) = spawned.lock() {
        stack.processes.append(&mut list);
    }
    stack.write()?;
    if tty && healthy.load(std::sync::atomic::Ordering::SeqCst) < total {
        eprintln!();
    }
    result.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    Ok(())
}

/// What `dev up` prints.
fn print_up(stack: &StackFile, format: Format) -> anyhow::Result<()> {
    if let Some(text) = structured(format, stack)? {
        return out(&text);
    }
    let mut t = Table::new(&["NAME", "PID", "URL", "LOG"]);
    let agents = stack
        .processes
        .iter()
        .filter(|p| p.name.starts_with("agent-"))
        .count();
    for p in stack.processes.iter().filter(|p| !p.name.starts_with("agent-")) {
        t.row(vec![
            p.name.clone(),
            p.pid.to_string(),
            p.url.clone(),
            p.log.display().to_string(),
        ]);
    }
    if agents > 0 {
        t.row(vec![
            format!("agents ({agents})"),
            "-".into(),
            "-".into(),
            stack.dir.join("agent-*.log").display().to_string(),
        ]);
    }
    let mut text = format!(
        "started the tilewave dev stack in {}{}\n\n{}",
        stack.dir.display(),
        if stack.virtual_clock {
            " (virtual clock)"
        } else {
            ""
        },
        t.render()
    );
    text.push_str(&regions_line(stack));
    for s in &stack.skipped {
        text.push_str(&format!("skipped {s}\n"));
    }
    if stack.virtual_clock && stack.process("rollout").is_none() {
        text.push_str("note: --virtual-clock takes effect once the rollout service (which serves the clock) is part of the stack\n");
    }
    text.push_str(&tls_line(stack));
    text.push_str(&kek_line(&stack.dir));
    if !stack.settings.is_empty() {
        text.push_str(&format!(
            "\nsaved for later commands in {} (read after their flags, TILEWAVE_* and the config file):\n",
            StackFile::path(&stack.dir).display(),
        ));
        for (k, v) in &stack.settings {
            text.push_str(&format!("  {k} = {v}\n"));
        }
    }
    let config = config_path(&process_env);
    let file = match &config {
        Some(p) => read_file_settings(p).ok().flatten(),
        None => None,
    };
    for w in overrides(stack, &process_env, config.as_deref().zip(file.as_ref())) {
        text.push_str(&format!("warning: {w}\n"));
    }
    if !is_default_dir(&stack.dir, &process_env) {
        text.push_str(&format!(
            "note: {} is not the default dev directory: later commands read the stack's saved settings with TILEWAVE_DEV_DIR={}\n",
            stack.dir.display(),
            stack.dir.display()
        ));
    }
    text.push_str(&next_steps(&stack.dir, &process_env));
    out(&text)
}

/// Which regions the stack covers: "regions: 6 of 70 (aws:..., ...), the
/// stack's region catalog", or all of them.
fn regions_line(stack: &StackFile) -> String {
    let total = regions(usize::MAX).len();
    if stack.region_ids.is_empty() {
        format!(
            "regions: {} of {total} have an agent; plans cover all {total}\n",
            stack.regions
        )
    } else {
        format!(
            "regions: {} of {total}, the stack's region catalog (plans cover only these): {}\n",
            stack.region_ids.len(),
            stack.region_ids.join(", ")
        )
    }
}

/// Whether `dir` is the dev directory a command without `--dir` uses
/// (`$TILEWAVE_DEV_DIR` or the default).
fn is_default_dir(dir: &Path, env: &dyn Fn(&str) -> Option<String>) -> bool {
    dev_dir(None, env)
        .is_ok_and(|default| default == dir || default.canonicalize().ok().as_deref() == Some(dir))
}

/// Where the stack's development key-encryption key is.
fn kek_line(dir: &Path) -> String {
    let path = dir.join(KEK_FILE);
    if path.exists() {
        format!(
            "key-encryption key: {} (development only; the credentials service and the agents get it)\n",
            path.display()
        )
    } else {
        String::new()
    }
}

/// Whether the stack runs TLS, and where its certificates are.
fn tls_line(stack: &StackFile) -> String {
    match &stack.certs {
        Some(certs) => format!(
            "TLS: on: etcd and every service require a client certificate of the stack's CA; certificates and policy.toml in {}\n",
            certs.display()
        ),
        None => "TLS: off (started with --insecure): any process that can reach the ports may call etcd and the services\n".to_owned(),
    }
}

/// What overrides the stack's saved settings in later commands: an
/// environment variable or a config file value that differs (and, for a
/// plaintext stack, any TLS setting: later commands would call it over
/// TLS). One sentence each, saying what to do.
fn overrides(
    stack: &StackFile,
    env: &dyn Fn(&str) -> Option<String>,
    file: Option<(&Path, &FileSettings)>,
) -> Vec<String> {
    let mut keys: Vec<(&str, Option<&str>)> = stack
        .settings
        .iter()
        .map(|(k, v)| (k.as_str(), Some(v.as_str())))
        .collect();
    if !stack.runs_tls() {
        keys.extend(TLS_KEYS.iter().map(|(k, _)| (*k, None)));
    }
    let mut out = Vec::new();
    for (key, saved) in keys {
        let Some(var) = env_var_of(key) else { continue };
        let what = match saved {
            Some(_) => format!("overrides the stack's saved {key}"),
            None => "makes later commands call this plaintext stack over TLS, which fails".to_owned(),
        };
        if let Some(v) = env(&var).filter(|v| Some(v.as_str()) != saved) {
            out.push(format!(
                "{var}={v} is set and {what}; unset it to use the stack's settings"
            ));
        } else if let Some((path, f)) = file
            && let Some(v) = f.get(key).filter(|v| Some(v.as_str()) != saved)
        {
            out.push(format!(
                "the config file {} sets {key} = {v:?}, which {what}; remove it there to use the stack's settings",
                path.display()
            ));
        }
    }
    out
}

/// How to check and stop the stack in `dir`: with `--dir` when a plain
/// `tilewave dev status` would look somewhere else.
fn next_steps(dir: &Path, env: &dyn Fn(&str) -> Option<String>) -> String {
    let flag = if is_default_dir(dir, env) {
        String::new()
    } else {
        format!(" --dir {}", dir.display())
    };
    format!(
        "\ncheck it:  tilewave dev status{flag}\nstop it:   tilewave dev down{flag}   (--purge also deletes its data, logs and certificates)\n"
    )
}

/// One process as `dev status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProcessStatus {
    pub name: String,
    pub pid: u32,
    pub alive: bool,
    pub healthy: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub problem: String,
    pub port: u16,
    pub url: String,
    pub log: PathBuf,
}

/// `dev status`.
async fn status(args: &DirArgs, format: Format) -> anyhow::Result<()> {
    let dir = dev_dir(args.dir.as_deref(), &process_env)?;
    let Some(stack) = StackFile::read(&dir)? else {
        return Err(CliError::Conflict(format!(
            "no dev stack in {}: start one with `tilewave dev up`",
            dir.display()
        ))
        .into());
    };
    // Health over TLS with the certificate the stack saved for you.
    let tls = match (stack.runs_tls(), stack.saved_settings()?.tls) {
        (true, [Some(cert), Some(key), Some(ca)]) => Some(
            tilewave_tls::TlsFiles {
                cert: cert.into(),
                key: key.into(),
                ca: ca.into(),
            }
            .load()
            .map_err(|e| {
                CliError::usage(format!(
                    "the dev stack's certificate: {e}; `tilewave dev down` then `tilewave dev up` checks the certificate set"
                ))
            })?,
        ),
        _ => None,
    };
    let rows: Vec<ProcessStatus> = {
        use futures::StreamExt as _;
        let tls = tls.as_ref();
        futures::stream::iter(&stack.processes)
            .map(|p| async move {
                let alive = pid_alive(p.pid) && pid_runs(p.pid, &p.program) != Some(false);
                let health = if alive {
                    check(p, tls).await
                } else {
                    Err(anyhow::anyhow!("not running"))
                };
                ProcessStatus {
                    name: p.name.clone(),
                    pid: p.pid,
                    alive,
                    healthy: health.is_ok(),
                    problem: health.err().map(|e| format!("{e:#}")).unwrap_or_default(),
                    port: p.port,
                    url: p.url.clone(),
                    log: p.log.clone(),
                }
            })
            .buffered(8)
            .collect()
            .await
    };
    if let Some(text) = structured(format, &rows)? {
        out(&text)?;
    } else {
        let mut t = Table::new(&["NAME", "PID", "ALIVE", "HEALTHY", "PORT", "LOG"]);
        let yes = |b: bool| if b { "yes" } else { "no" }.to_owned();
        let agents: Vec<&ProcessStatus> = rows.iter().filter(|r| r.name.starts_with("agent-")).collect();
        for r in rows
            .iter()
            .filter(|r| !r.name.starts_with("agent-") || !r.healthy)
        {
            t.row(vec![
                r.name.clone(),
                r.pid.to_string(),
                yes(r.alive),
                yes(r.healthy),
                r.port.to_string(),
                r.log.display().to_string(),
            ]);
        }
        if !agents.is_empty() {
            let alive = agents.iter().filter(|r| r.alive).count();
            let healthy = agents.iter().filter(|r| r.healthy).count();
            t.row(vec![
                format!("agents ({})", agents.len()),
                "-".into(),
                format!("{alive}/{}", agents.len()),
                format!("{healthy}/{}", agents.len()),
                "-".into(),
                stack.dir.join("agent-*.log").display().to_string(),
            ]);
        }
        let mut text = format!("dev stack in {}\n\n{}", stack.dir.display(), t.render());
        text.push_str(&regions_line(&stack));
        text.push_str(&tls_line(&stack));
        text.push_str(&kek_line(&stack.dir));
        for s in &stack.skipped {
            text.push_str(&format!("not started: {s}\n"));
        }
        out(&text)?;
    }
    if rows.iter().all(|r| r.healthy) {
        Ok(())
    } else {
        let bad: Vec<String> = rows
            .iter()
            .filter(|r| !r.healthy)
            .map(|r| r.name.clone())
            .collect();
        anyhow::bail!(
            "not healthy: {} (see the logs; `tilewave dev down` then `tilewave dev up` restarts the stack)",
            bad.join(", ")
        )
    }
}

/// `dev down`.
async fn down(args: &DownArgs) -> anyhow::Result<()> {
    let dir = dev_dir(args.dir.as_deref(), &process_env)?;
    let stack = StackFile::read(&dir)?;
    match &stack {
        None => note(&format!("no dev stack recorded in {}", dir.display())),
        Some(stack) => {
            for n in stop_all(stack).await {
                note(&n);
            }
            StackFile::remove(&dir)?;
        }
    }
    if args.purge {
        purge_dir(&dir)?;
        note(&format!(
            "deleted {} (data, logs, certificates, the key-encryption key and the saved settings)",
            dir.display()
        ));
    }
    Ok(())
}

/// Deletes the dev directory, refusing paths that cannot be one (`/`, the
/// home directory).
fn purge_dir(dir: &Path) -> anyhow::Result<()> {
    let home = process_env("HOME").map(PathBuf::from);
    if dir.parent().is_none() || home.as_deref() == Some(dir) {
        return Err(CliError::usage(format!("refusing to delete {}", dir.display())).into());
    }
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("deleting {}", dir.display()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_development_key_is_made_once_private_and_reused() {
        let dev = tempfile::tempdir().unwrap();
        let (path, made) = ensure_kek(dev.path()).unwrap();
        assert!(made);
        assert_eq!(path, dev.path().join(KEK_FILE));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        }
        let ring = tilewave_secrets::Keyring::from_file(&path).unwrap();
        assert_eq!(ring.primary().id(), DEV_KEK_ID);
        let before = std::fs::read(&path).unwrap();
        let (again, made) = ensure_kek(dev.path()).unwrap();
        assert!(!made, "reused");
        assert_eq!(
            (again, std::fs::read(&path).unwrap()),
            (path.clone(), before),
            "never replaced"
        );
        assert!(kek_line(dev.path()).contains("kek"), "{}", kek_line(dev.path()));

        std::fs::write(&path, "not a key\n").unwrap();
        let err = ensure_kek(dev.path()).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("dev down --purge"), "{text}");
        assert_eq!(crate::error::exit_code(&err), 2);
        assert!(kek_line(Path::new("/nonexistent")).is_empty());
    }

    #[test]
    fn next_steps_name_the_directory_only_when_it_is_not_the_default() {
        let env = |k: &str| (k == "HOME").then(|| "/home/u".to_owned());
        let default = Path::new("/home/u/.local/share/tilewave/dev");
        let text = next_steps(default, &env);
        assert!(text.contains("tilewave dev status\n"), "{text}");
        assert!(text.contains("tilewave dev down   (--purge"), "{text}");
        let text = next_steps(Path::new("/tmp/stack"), &env);
        assert!(text.contains("tilewave dev status --dir /tmp/stack\n"), "{text}");
        assert!(
            text.contains("tilewave dev down --dir /tmp/stack   (--purge"),
            "{text}"
        );
    }

    fn stack(tls: bool) -> StackFile {
        let mut settings = BTreeMap::from([("registry".to_owned(), "https://127.0.0.1:1".to_owned())]);
        if tls {
            settings.insert("tls-cert".into(), "/d/certs/ada.crt".into());
        }
        StackFile {
            dir: "/d".into(),
            virtual_clock: false,
            regions: 0,
            region_ids: Vec::new(),
            prefix: DEV_PREFIX.into(),
            certs: tls.then(|| "/d/certs".into()),
            skipped: Vec::new(),
            settings,
            processes: Vec::new(),
        }
    }

    #[test]
    fn what_overrides_the_saved_settings_is_named() {
        let env = |k: &str| match k {
            "TILEWAVE_REGISTRY" => Some("http://elsewhere:1".to_owned()),
            "TILEWAVE_TLS_KEY" => Some("/mine.key".to_owned()),
            _ => None,
        };
        let mut table = toml::Table::new();
        table.insert("tls-cert".into(), "/mine.crt".into());
        table.insert("registry".into(), "https://127.0.0.1:1".into());
        let file = FileSettings::from_table(table).unwrap();
        let config = Path::new("/c/config.toml");
        let w = overrides(&stack(true), &env, Some((config, &file)));
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].starts_with(
            "TILEWAVE_REGISTRY=http://elsewhere:1 is set and overrides the stack's saved registry"
        ));
        assert!(
            w[1].contains("the config file /c/config.toml sets tls-cert = \"/mine.crt\""),
            "{w:?}"
        );

        // A plaintext stack: any TLS setting makes later calls fail.
        let w = overrides(&stack(false), &env, None);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[1].starts_with("TILEWAVE_TLS_KEY=/mine.key is set and makes later commands call this plaintext stack over TLS"), "{w:?}");
        assert!(overrides(&stack(true), &|_| None, None).is_empty());
    }

    #[test]
    fn the_tls_line_says_whether_and_where() {
        assert!(tls_line(&stack(true)).contains("TLS: on") && tls_line(&stack(true)).contains("/d/certs"));
        assert!(tls_line(&stack(false)).starts_with("TLS: off (started with --insecure)"));
    }

    #[test]
    fn purge_refuses_the_root() {
        let err = purge_dir(Path::new("/")).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), 2);
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("dev");
        std::fs::create_dir_all(sub.join("etcd-data")).unwrap();
        purge_dir(&sub).unwrap();
        assert!(!sub.exists());
        purge_dir(&sub).unwrap();
    }

    #[test]
    fn ports_are_reused_only_when_free() {
        let held = TcpListener::bind("127.0.0.1:0").unwrap();
        let taken = held.local_addr().unwrap().port();
        assert_ne!(reuse_or_free(Some(taken)).unwrap(), taken);
        drop(held);
        assert!(reuse_or_free(None).unwrap() > 0);
    }
}
