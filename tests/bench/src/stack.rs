//! The stack the measures run against: real etcd (one member, mutual TLS,
//! its Prometheus metrics on a plaintext port), the registry, one rollout
//! replica and one agent process per region (the agent serves one region),
//! all as child processes of this one (`tilewave_testkit`), the binaries
//! of this harness's own profile (`target/debug` or `target/release`).
//!
//! Also: tiles made SCHEDULED through the registry's RPCs (the test kit's
//! `journeys`: import, a test workspace, validation, five sign-offs,
//! go-to-market, a GA date), many at once; scraping Prometheus text; a process's resident memory.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use futures::{StreamExt as _, TryStreamExt as _};
use jiff::{SignedDuration, Timestamp};
use tilewave_proto::agent::v1::agent_service_client::AgentServiceClient;
use tilewave_proto::common::v1::PageRequest;
use tilewave_proto::registry::v1::Tile;
use tilewave_proto::registry::v1::registry_service_client::RegistryServiceClient;
use tilewave_proto::rollout::v1::rollout_service_client::RolloutServiceClient;
use tilewave_proto::rollout::v1::{
    GetRolloutRequest, ListRolloutsRequest, Rollout, RolloutSpec, RolloutState, StartRolloutRequest,
    StepState, WatchRolloutRequest,
};
use tilewave_store::{Actor, Store, VirtualClock};
use tilewave_testkit::journeys::{self, Release};
pub use tilewave_testkit::journeys::{AGENT_CALLER, RIVERFLOW, dur, from_ts, t0, ts};
use tilewave_testkit::pki::RELEASE_ENGINEER;
use tilewave_testkit::{
    EtcdCluster, EtcdOptions, Outcome, ServiceProcess, ServiceSpec, TestDir, bin_path, eventually_every,
    free_port,
};
use tonic::transport::Channel;

/// The key prefix of everything the harness writes.
pub const PREFIX: &str = "/tilewave-bench/";

/// How far ahead of virtual now a tile's GA date is set: past the 7 days
/// a GA date needs, and never reached during a run (the clock runs at
/// rate 1), so the GA scheduler never starts a launch by itself.
pub const GA_AHEAD: SignedDuration = SignedDuration::from_hours(24 * 10);

/// How long a client keeps trying to connect on a busy machine.
pub const CONNECT: Duration = Duration::from_secs(20);

/// `n` regions of the built-in catalog (70): every cloud's canary first,
/// then the others round-robin over the clouds.
pub fn regions(n: usize) -> Vec<String> {
    tilewave_core::regions::RegionCatalog::builtin().representative(n)
}

/// etcd, the registry, the rollout service (once started) and the agents.
#[allow(missing_debug_implementations)]
pub struct Stack {
    /// Dropped last (the children log into it).
    pub dir: TestDir,
    /// One member.
    pub etcd: EtcdCluster,
    /// Where etcd serves `/metrics` (plaintext).
    pub etcd_metrics: SocketAddr,
    /// The registry.
    pub registry: ServiceProcess,
    /// The rollout replica, once [`Stack::start_rollout_service`] ran.
    pub rollout: Option<ServiceProcess>,
    /// Where the rollout replica serves `/metrics`.
    pub rollout_metrics: SocketAddr,
    /// Where the registry serves `/metrics`.
    pub registry_metrics: SocketAddr,
    /// One agent per region.
    pub agents: BTreeMap<String, ServiceProcess>,
    /// The regions, in the order given.
    pub regions: Vec<String>,
    /// A store on the same etcd and prefix.
    pub store: Store,
    /// The virtual clock (rate 1).
    pub clock: std::sync::Arc<VirtualClock>,
}

impl Stack {
    /// etcd (the virtual clock at rate 1 from [`t0`]), the registry, and
    /// an agent per region (started eight at a time); the rollout service
    /// when `rollout` (else [`Stack::start_rollout_service`] later).
    pub async fn start(regions: &[String], rollout: bool) -> anyhow::Result<Self> {
        Self::start_agents_with(regions, rollout, &[]).await
    }

    /// [`Stack::start`] without the rollout service and with the agents'
    /// fault injection enabled ([`Stack::faults`]): for tests, not for
    /// measures.
    #[cfg(test)]
    pub async fn start_with_faults(regions: &[String]) -> anyhow::Result<Self> {
        Self::start_agents_with(regions, false, &["--enable-fault-injection"]).await
    }

    /// [`Stack::start`] with more flags for every agent.
    async fn start_agents_with(
        regions: &[String],
        rollout: bool,
        agent_flags: &[&str],
    ) -> anyhow::Result<Self> {
        let dir = TestDir::new("bench")?;
        let etcd_metrics = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let options = EtcdOptions {
            extra_args: vec![format!("--listen-metrics-urls=http://{etcd_metrics}")],
            ..EtcdOptions::default()
        }
        .with_shared_tls()?;
        let etcd = EtcdCluster::start_with(options).await.context("starting etcd")?;
        let store = etcd.store(PREFIX).await?;
        let clock = VirtualClock::start(&store, t0(), 1.0, &Actor::new("bench")).await?;
        let endpoints = etcd.endpoints().join(",");
        let registry_metrics = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let registry = ServiceProcess::start(
            journeys::registry_spec(&endpoints, PREFIX)?
                .with_args(["--metrics-listen".to_owned(), registry_metrics.to_string()]),
            dir.path(),
        )
        .await?;
        let starts = regions.iter().map(|region| {
            let name = format!("agent-{}", region.replace(':', "-"));
            let data = dir.path().join(&name);
            let spec = journeys::agent_spec(name, region, &data, &endpoints, PREFIX).map(|s| {
                s.with_args(agent_flags.iter().copied())
                    .with_ready_timeout(Duration::from_secs(120))
            });
            let path = dir.path().to_path_buf();
            async move {
                ServiceProcess::start(spec?, &path)
                    .await
                    .map(|p| (region.clone(), p))
            }
        });
        let agents = futures::stream::iter(starts)
            .buffer_unordered(8)
            .try_collect()
            .await?;
        let rollout_metrics = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let mut stack = Self {
            dir,
            etcd,
            etcd_metrics,
            registry,
            rollout: None,
            rollout_metrics,
            registry_metrics,
            agents,
            regions: regions.to_vec(),
            store,
            clock,
        };
        if rollout {
            stack.start_rollout_service().await?;
        }
        Ok(stack)
    }

    /// Starts the rollout replica: the defaults of a deployment (a 5 s
    /// ownership lease, not the process tests' 3 s, which under load
    /// expire and hand roll-outs back and forth) but for a 10 s deadline
    /// per agent call
    /// (an agent's apply fsyncs its catalog, which a busy disk stretches);
    /// its catalog narrowed to the stack's regions (`tilewave dev up
    /// --regions`), metrics on a port of its own.
    pub async fn start_rollout_service(&mut self) -> anyhow::Result<()> {
        self.start_rollout_service_with(&[]).await
    }

    /// [`Stack::start_rollout_service`] with more flags.
    pub async fn start_rollout_service_with(&mut self, extra: &[&str]) -> anyhow::Result<()> {
        let endpoints = self.etcd.endpoints().join(",");
        let metrics = self.rollout_metrics.to_string();
        let regions = self.regions.join(",");
        let p = ServiceProcess::start(
            ServiceSpec::new("rollout", bin_path("tilewave-rollout")?)
                .with_args([
                    "--etcd",
                    &endpoints,
                    "--prefix",
                    PREFIX,
                    "--registry",
                    &self.registry.endpoint(),
                    "--regions",
                    &regions,
                    "--rpc-timeout-ms",
                    "10000",
                    "--replica",
                    "replica-0",
                    "--metrics-listen",
                    &metrics,
                ])
                .with_args(extra.iter().copied())
                .with_health_service(Some("tilewave.rollout.v1.RolloutService"))
                .with_ready_timeout(Duration::from_secs(120)),
            self.dir.path(),
        )
        .await?;
        self.rollout = Some(p);
        Ok(())
    }

    /// A client of the registry as a release engineer.
    pub async fn registry(&self) -> anyhow::Result<RegistryServiceClient<Channel>> {
        Ok(RegistryServiceClient::new(
            journeys::connect("the registry", &self.registry, RELEASE_ENGINEER, CONNECT).await?,
        ))
    }

    /// A client of the rollout service as a release engineer.
    pub async fn rollouts(&self) -> anyhow::Result<RolloutServiceClient<Channel>> {
        let p = self
            .rollout
            .as_ref()
            .context("the rollout service is not started")?;
        Ok(RolloutServiceClient::new(
            journeys::connect("the rollout service", p, RELEASE_ENGINEER, CONNECT).await?,
        ))
    }

    /// A client of the agent of `region` as the rollout service.
    pub async fn agent(&self, region: &str) -> anyhow::Result<AgentServiceClient<Channel>> {
        Ok(AgentServiceClient::new(self.agent_channel(region).await?))
    }

    /// A connection to the agent of `region` as the rollout service.
    async fn agent_channel(&self, region: &str) -> anyhow::Result<Channel> {
        let p = self
            .agents
            .get(region)
            .with_context(|| format!("no agent for {region}"))?;
        journeys::connect(&format!("the agent of {region}"), p, AGENT_CALLER, CONNECT).await
    }

    /// The fault injection of the agent of `region` (started by
    /// [`Stack::start_with_faults`]).
    #[cfg(test)]
    pub async fn faults(
        &self,
        region: &str,
    ) -> anyhow::Result<
        tilewave_proto::agent::v1::fault_injection_service_client::FaultInjectionServiceClient<Channel>,
    > {
        Ok(
            tilewave_proto::agent::v1::fault_injection_service_client::FaultInjectionServiceClient::new(
                self.agent_channel(region).await?,
            ),
        )
    }

    /// Virtual now, from the store's clock record.
    pub fn now(&self) -> Timestamp {
        tilewave_store::clock::Clock::now(&*self.clock)
    }

    /// Makes the tile `id` (riverflow) SCHEDULED through the registry's
    /// RPCs: import, test workspace, every validation case passed, five
    /// sign-offs, the four go-to-market items done, GA [`GA_AHEAD`] ahead.
    pub async fn scheduled_tile(&self, id: &str, now: Timestamp) -> anyhow::Result<Tile> {
        let release = Release {
            id,
            note: "bench",
            reason: "bench",
            ..Release::default()
        };
        journeys::scheduled_tile(&mut self.registry().await?, &release, now + GA_AHEAD).await
    }

    /// [`Stack::scheduled_tile`] for every id, `concurrency` tiles at once.
    pub async fn scheduled_tiles(&self, ids: &[String], concurrency: usize) -> anyhow::Result<Vec<Tile>> {
        let now = self.now();
        futures::stream::iter(ids.iter().map(|id| async move {
            Box::pin(self.scheduled_tile(id, now))
                .await
                .with_context(|| format!("making tile {id} SCHEDULED"))
        }))
        .buffered(concurrency.max(1))
        .try_collect()
        .await
    }

    /// StartRollout.
    pub async fn start_rollout(&self, spec: RolloutSpec) -> anyhow::Result<Rollout> {
        let tile = spec.tile_id.clone();
        self.rollouts()
            .await?
            .start_rollout(StartRolloutRequest {
                spec: Some(spec),
                ..Default::default()
            })
            .await
            .with_context(|| format!("starting a roll-out of {tile}"))?
            .into_inner()
            .rollout
            .context("StartRollout answered without a roll-out")
    }

    /// [`Stack::start_rollout`] retried while the service answers
    /// UNAVAILABLE ([`journeys::start_rollout_retrying`]): the roll-out and
    /// how many tries were retried.
    pub async fn start_rollout_retrying(&self, spec: RolloutSpec) -> anyhow::Result<(Rollout, usize)> {
        journeys::start_rollout_retrying(&mut self.rollouts().await?, spec).await
    }

    /// GetRollout.
    pub async fn get(&self, id: &str) -> anyhow::Result<Rollout> {
        self.rollouts()
            .await?
            .get_rollout(GetRolloutRequest {
                id: id.into(),
                tile_id: String::new(),
            })
            .await
            .with_context(|| format!("getting roll-out {id}"))?
            .into_inner()
            .rollout
            .context("GetRollout answered without a roll-out")
    }

    /// Watches the roll-out (WatchRollout: its state, then every change,
    /// pushed by the service) until it SUCCEEDED; an error when it ends
    /// otherwise, pauses (a failed step), or is still going after
    /// `deadline`.
    pub async fn watch_succeeded(&self, id: &str, deadline: Duration) -> anyhow::Result<Rollout> {
        let end = tokio::time::Instant::now() + deadline;
        let mut stream = self
            .rollouts()
            .await?
            .watch_rollout(WatchRolloutRequest {
                id: id.into(),
                ..Default::default()
            })
            .await
            .with_context(|| format!("watching roll-out {id}"))?
            .into_inner();
        loop {
            let event = tokio::time::timeout_at(end, stream.message())
                .await
                .map_err(|_| {
                    anyhow::anyhow!(
                        "roll-out {id} not SUCCEEDED after {deadline:?}; {}",
                        logs_of(self.dir.path())
                    )
                })?
                .with_context(|| format!("the watch of roll-out {id}"))?
                .with_context(|| format!("the watch of roll-out {id} ended before it SUCCEEDED"))?;
            let Some(r) = event.rollout else { continue };
            match self.until_succeeded(r) {
                Outcome::Done(r) => return Ok(r),
                Outcome::Retry(_) => {}
                Outcome::Abort(e) => anyhow::bail!(e),
            }
        }
    }

    /// A roll-out awaited until SUCCEEDED: done; not yet (PENDING,
    /// RUNNING); or never (any other state: it ended otherwise or paused
    /// on a failed step).
    fn until_succeeded(&self, r: Rollout) -> Outcome<Rollout> {
        match RolloutState::try_from(r.state).unwrap_or(RolloutState::Unspecified) {
            RolloutState::Succeeded => Outcome::Done(r),
            RolloutState::Pending | RolloutState::Running => {
                Outcome::Retry(format!("steps: {}", step_summary(&r)))
            }
            other => Outcome::Abort(format!(
                "roll-out {} is {} instead of SUCCEEDED (steps: {}); {}",
                r.id,
                other.as_str_name(),
                step_summary(&r),
                logs_of(self.dir.path())
            )),
        }
    }

    /// Polls GetRollout every `poll` until the roll-out SUCCEEDED; an
    /// error when it ends otherwise, pauses (a failed step), or is still
    /// going after `deadline`.
    pub async fn wait_succeeded(
        &self,
        id: &str,
        poll: Duration,
        deadline: Duration,
    ) -> anyhow::Result<Rollout> {
        let what = format!("roll-out {id} SUCCEEDED ({})", logs_of(self.dir.path()));
        eventually_every(&what, deadline, poll, || async {
            match self.get(id).await {
                Ok(r) => self.until_succeeded(r),
                // A GetRollout that fails ends the wait.
                Err(e) => Outcome::Abort(format!("{e:#}")),
            }
        })
        .await
    }

    /// The ids of the roll-outs that paused, failed or were aborted (a
    /// step failed: they will not finish by themselves).
    pub async fn stuck_rollouts(&self) -> anyhow::Result<Vec<String>> {
        let mut ids = Vec::new();
        let mut token = String::new();
        loop {
            let page = self
                .rollouts()
                .await?
                .list_rollouts(ListRolloutsRequest {
                    states: vec![
                        RolloutState::Paused as i32,
                        RolloutState::Failed as i32,
                        RolloutState::Aborted as i32,
                    ],
                    page: Some(PageRequest {
                        page_size: 1000,
                        page_token: token,
                    }),
                    ..Default::default()
                })
                .await
                .context("listing stuck roll-outs")?
                .into_inner();
            ids.extend(page.rollouts.into_iter().map(|r| r.id));
            if page.next_page_token.is_empty() {
                return Ok(ids);
            }
            token = page.next_page_token;
        }
    }

    /// How many roll-outs are active (`rollout-active/` keys).
    pub async fn active_rollouts(&self) -> anyhow::Result<i64> {
        self.count(&self.store.keys().rollout_active(""))
            .await
            .context("counting the active roll-outs in etcd")
    }

    /// How many roll-outs have an owner (`owners/rollout-` in etcd).
    pub async fn owned_rollouts(&self) -> anyhow::Result<i64> {
        let prefix = self.store.keys().owner(&tilewave_store::keys::work::rollout(""));
        self.count(&prefix)
            .await
            .context("counting the roll-outs' owner keys in etcd")
    }

    /// How many keys etcd holds under `prefix`.
    async fn count(&self, prefix: &str) -> anyhow::Result<i64> {
        let mut c = self.etcd.client().await?;
        let r = c
            .get(
                prefix,
                Some(etcd_client::GetOptions::new().with_prefix().with_count_only()),
            )
            .await?;
        Ok(r.count())
    }

    /// etcd's metrics now.
    pub async fn etcd_metrics(&self) -> anyhow::Result<Metrics> {
        Metrics::scrape(self.etcd_metrics)
            .await
            .context("scraping etcd's metrics")
    }

    /// The registry's metrics now.
    pub async fn registry_metrics(&self) -> anyhow::Result<Metrics> {
        Metrics::scrape(self.registry_metrics)
            .await
            .context("scraping the registry's metrics")
    }

    /// The rollout service's metrics now.
    pub async fn rollout_metrics(&self) -> anyhow::Result<Metrics> {
        Metrics::scrape(self.rollout_metrics)
            .await
            .context("scraping the rollout service's metrics")
    }
}

/// The resident memory of a process in MiB (`VmRSS` of
/// `/proc/<pid>/status`).
pub fn rss_mib(pid: u32) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let kib: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("{path} has no VmRSS line in kB"))?;
    Ok(kib / 1024.0)
}

/// The CPU time a process has used so far (user and system), in seconds:
/// fields 14 and 15 of `/proc/<pid>/stat`, in clock ticks of 1/100 s
/// (Linux's `USER_HZ` on every architecture it exports to user space).
pub fn cpu_secs(pid: u32) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // The command name (field 2) may hold spaces: count from after it.
    let rest = text
        .rsplit_once(')')
        .map(|(_, r)| r)
        .with_context(|| format!("{path}: no command name"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (the state): utime is field 14, stime 15.
    let ticks = |i: usize| -> anyhow::Result<f64> {
        fields
            .get(i - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .with_context(|| format!("{path}: no field {i}"))
    };
    Ok((ticks(14)? + ticks(15)?) / 100.0)
}

/// The CPU time the threads of a process now running have used (user and
/// system), in milliseconds, from the scheduler's nanosecond counters: the
/// first field of each `/proc/<pid>/task/<tid>/schedstat`. Finer than
/// [`cpu_secs`] (clock ticks of 10 ms), for one roll-out's worth of work;
/// a thread that ended between two readings takes its time with it.
pub fn cpu_ms(pid: u32) -> anyhow::Result<f64> {
    let dir = format!("/proc/{pid}/task");
    let mut ns = 0u64;
    for task in std::fs::read_dir(&dir).with_context(|| format!("reading {dir}"))? {
        let path = task?.path().join("schedstat");
        // A thread may end between the listing and the read.
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        ns += text
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .with_context(|| format!("{}: no run time", path.display()))?;
    }
    Ok(ns as f64 / 1e6)
}

impl Stack {
    /// CPU milliseconds used so far by the rollout service and the
    /// registry ([`cpu_ms`]).
    pub fn service_cpu_ms(&self) -> anyhow::Result<(f64, f64)> {
        let of = |pid: Option<u32>| pid.map_or(Ok(0.0), cpu_ms);
        Ok((
            of(self.rollout.as_ref().and_then(ServiceProcess::pid))?,
            of(self.registry.pid())?,
        ))
    }

    /// CPU seconds used so far by each kind of process of the stack
    /// (`agents`: all of them together).
    pub fn cpu(&self) -> anyhow::Result<BTreeMap<&'static str, f64>> {
        let mut out = BTreeMap::new();
        let mut add = |name: &'static str, pid: Option<u32>| -> anyhow::Result<()> {
            if let Some(pid) = pid {
                *out.entry(name).or_insert(0.0) += cpu_secs(pid)?;
            }
            Ok(())
        };
        add("etcd", self.etcd.member_pid(0))?;
        add("registry", self.registry.pid())?;
        add("rollout", self.rollout.as_ref().and_then(ServiceProcess::pid))?;
        for a in self.agents.values() {
            add("agents", a.pid())?;
        }
        Ok(out)
    }
}

/// One scrape of a Prometheus text endpoint: every sample by its name
/// with labels (`name{a="b"}`) as written.
#[derive(Debug, Clone, Default)]
pub struct Metrics(pub BTreeMap<String, f64>);

impl Metrics {
    /// GET `http://<addr>/metrics` (HTTP/1.0, read to the end).
    pub async fn scrape(addr: SocketAddr) -> anyhow::Result<Self> {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let fetch = async {
            let mut s = tokio::net::TcpStream::connect(addr).await?;
            s.write_all(format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
                .await?;
            let mut body = Vec::new();
            s.read_to_end(&mut body).await?;
            anyhow::Ok(body)
        };
        let body = tokio::time::timeout(Duration::from_secs(10), fetch)
            .await
            .with_context(|| format!("no answer from http://{addr}/metrics in 10 s"))?
            .with_context(|| format!("GET http://{addr}/metrics"))?;
        let text = String::from_utf8_lossy(&body);
        let (head, text) = text
            .split_once("\r\n\r\n")
            .with_context(|| format!("http://{addr}/metrics: no HTTP header"))?;
        anyhow::ensure!(
            head.lines().next().is_some_and(|l| l.contains(" 200")),
            "http://{addr}/metrics answered {:?}",
            head.lines().next().unwrap_or_default()
        );
        Ok(Self::parse(text))
    }

    /// Parses Prometheus text (comments and unparsable lines skipped).
    pub fn parse(text: &str) -> Self {
        let mut out = BTreeMap::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            if let Some((name, value)) = line.rsplit_once(' ')
                && let Ok(v) = value.trim().parse::<f64>()
            {
                out.insert(name.trim().to_owned(), v);
            }
        }
        Self(out)
    }

    /// The sum of every sample of `name` (any labels) whose labels contain
    /// every one of `labels` (`key="value"`).
    pub fn sum(&self, name: &str, labels: &[&str]) -> f64 {
        self.0
            .iter()
            .filter(|(k, _)| {
                let (n, rest) = k.split_once('{').unwrap_or((k.as_str(), ""));
                n == name && labels.iter().all(|l| rest.contains(l))
            })
            .map(|(_, v)| v)
            .sum()
    }

    /// Every sample's growth from `before` to `self` (samples that grew).
    pub fn since(&self, before: &Metrics) -> Metrics {
        Metrics(
            self.0
                .iter()
                .filter_map(|(k, v)| {
                    let d = v - before.0.get(k).copied().unwrap_or(0.0);
                    (d > 0.0).then(|| (k.clone(), d))
                })
                .collect(),
        )
    }
}

/// How many steps are in each state, and the first step error, for
/// messages.
pub fn step_summary(r: &Rollout) -> String {
    let mut by: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &r.steps {
        *by.entry(StepState::try_from(s.state).map_or("?", |s| s.as_str_name()))
            .or_default() += 1;
    }
    let mut out: Vec<String> = by.iter().map(|(k, v)| format!("{v} {k}")).collect();
    if let Some(e) = r.steps.iter().find(|s| !s.last_error.is_empty()) {
        out.push(format!("{}: {}", e.region, e.last_error));
    }
    out.join(", ")
}

/// Where the stack's logs are, for messages.
pub fn logs_of(dir: &Path) -> String {
    format!("logs under {}", dir.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_sums_by_name_and_labels() {
        let m = Metrics::parse(
            "# HELP x\nx_total{op=\"txn\",code=\"OK\"} 3\nx_total{op=\"get\"} 2\nx_total 1\ny 5e2\nbad line\n",
        );
        assert_eq!(m.sum("x_total", &[]), 6.0);
        assert_eq!(m.sum("x_total", &["op=\"txn\""]), 3.0);
        assert_eq!(m.sum("y", &[]), 500.0);
        let later = Metrics::parse("x_total{op=\"get\"} 7\ny 500\n");
        let d = later.since(&m);
        assert_eq!(d.sum("x_total", &[]), 5.0);
        assert_eq!(d.sum("y", &[]), 0.0);
    }

    #[test]
    fn this_process_has_used_some_cpu() {
        let pid = std::process::id();
        let a = cpu_secs(pid).unwrap_or(-1.0);
        assert!(a >= 0.0, "{a}");
    }

    #[test]
    fn regions_come_from_the_catalog_canaries_first() {
        let all = regions(70);
        assert_eq!(all.len(), 70);
        let three = regions(3);
        assert_eq!(three.len(), 3);
        assert!(three.iter().all(|r| all.contains(r)));
    }
}
