//! Process-level tests of the rollout service: real etcd, the real
//! `tilewave-registry`, eight `tilewave-agent`s (aws, azure, gcp) and two
//! `tilewave-rollout` replicas as child processes, on the virtual clock;
//! mutual TLS on every hop (the test kit's shared PKI): the tests call the
//! registry, the roll-outs and the clock as a release engineer, the agents
//! as the rollout service.

mod apply_time;
mod bad_input;
mod bounded;
mod calendar;
mod clock;
mod fast_clock;
mod fencing;
mod freeze;
mod launch;
mod lifecycle;
mod maintenance;
mod policy;
mod random_input;
mod restore;
mod scheduler;
mod start;
mod steering;
mod timer_kinds;
mod trace;
mod unreachable;
mod whoami;
mod withdraw;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, Result};
use jiff::{SignedDuration, Timestamp};
use tilewave_proto::agent::v1::agent_service_client::AgentServiceClient;
use tilewave_proto::agent::v1::fault_injection_service_client::FaultInjectionServiceClient;
use tilewave_proto::agent::v1::{CatalogEntry, ListTilesRequest};
use tilewave_proto::clock::v1::clock_service_client::ClockServiceClient;
use tilewave_proto::clock::v1::{AdvanceRequest, GetTimeRequest, SetRateRequest};
use tilewave_proto::common::v1::{Event, SignOffRole};
use tilewave_proto::registry::v1::registry_service_client::RegistryServiceClient;
use tilewave_proto::registry::v1::*;
use tilewave_proto::rollout::v1::rollout_service_client::RolloutServiceClient;
use tilewave_proto::rollout::v1::{
    GetRolloutRequest, Rollout, RolloutSpec, RolloutState, StartRolloutRequest,
};
use tilewave_store::{Actor, Store, VirtualClock};
use tilewave_testkit::journeys::{self, Release};
pub use tilewave_testkit::journeys::{
    AGENT_CALLER, LUMEN, RIVERFLOW, SIGN_OFF_ROLES as ROLES, dur, from_ts, t0, ts,
};
use tilewave_testkit::pki::RELEASE_ENGINEER;
use tilewave_testkit::{EtcdCluster, ServiceProcess, ServiceSpec, TestDir, bin_path, eventually};
use tonic::transport::Channel;

/// Eight regions across the three clouds; the canaries first.
pub const REGIONS: [&str; 8] = [
    "aws:ap-northeast-1",
    "gcp:asia-northeast1",
    "azure:eastus2euap",
    "aws:eu-west-1",
    "aws:us-east-1",
    "azure:westeurope",
    "gcp:europe-west1",
    "gcp:us-central1",
];

pub const PREFIX: &str = "/tilewave-rollout-it/";
/// Generous: the whole binary shares two cores with other builds.
pub const WAIT: Duration = Duration::from_secs(90);
/// For what converges within a few passes of a loop (reconciliation every
/// 500 ms): still generous, because a busy machine stretches every pass.
pub const SHORT: Duration = Duration::from_secs(30);

/// etcd, the registry, the agents and the rollout replicas.
#[allow(missing_debug_implementations)]
pub struct Stack {
    pub etcd: EtcdCluster,
    pub registry: ServiceProcess,
    pub agents: BTreeMap<String, ServiceProcess>,
    pub rollouts: Vec<ServiceProcess>,
    pub store: Store,
    pub dir: TestDir,
    /// Replicas killed or stopped by the test: helpers avoid them.
    pub down: std::sync::Mutex<std::collections::HashSet<usize>>,
}

impl Stack {
    pub async fn start(replicas: usize) -> Result<Self> {
        Self::start_with_env(replicas, &[]).await
    }

    /// [`Stack::start`] with extra environment for every service.
    pub async fn start_with_env(replicas: usize, env: &[(String, String)]) -> Result<Self> {
        let dir = TestDir::new("rollout-it")?;
        let etcd = EtcdCluster::start(1).await?;
        let endpoints = etcd.endpoints().join(",");
        let store = etcd.store(PREFIX).await?;
        // The virtual clock exists before any service starts, frozen.
        VirtualClock::start(&store, t0(), 0.0, &Actor::new("test")).await?;
        let registry = ServiceProcess::start(
            journeys::registry_spec(&endpoints, PREFIX)?.with_envs(env),
            dir.path(),
        )
        .await?;
        let starts = REGIONS.iter().map(|region| {
            let name = format!("agent-{}", region.replace(':', "-"));
            let data = dir.path().join(&name);
            let spec = journeys::agent_spec(name, region, &data, &endpoints, PREFIX).map(|s| {
                s.with_args(["--lease-ttl-secs", "3", "--enable-fault-injection"])
                    .with_envs(env)
            });
            let path = dir.path().to_path_buf();
            async move {
                ServiceProcess::start(spec?, &path)
                    .await
                    .map(|p| (region.to_string(), p))
            }
        });
        let agents = futures::future::try_join_all(starts).await?.into_iter().collect();
        let mut rollouts = Vec::new();
        for i in 0..replicas {
            rollouts.push(start_rollout_replica_with(&dir, &endpoints, &registry.endpoint(), i, env).await?);
        }
        Ok(Self {
            etcd,
            registry,
            agents,
            rollouts,
            store,
            dir,
            down: Default::default(),
        })
    }

    pub async fn rollout(&self, i: usize) -> Result<RolloutServiceClient<Channel>> {
        let c = connect(
            &format!("rollout replica {i}"),
            &self.rollouts[i],
            RELEASE_ENGINEER,
        )
        .await?;
        Ok(RolloutServiceClient::new(c))
    }

    /// A replica the test has not killed or stopped.
    pub fn live(&self) -> usize {
        let down = self.down.lock().map(|d| d.clone()).unwrap_or_default();
        (0..self.rollouts.len()).find(|i| !down.contains(i)).unwrap_or(0)
    }

    /// Marks a replica killed or stopped.
    pub fn mark_down(&self, i: usize) {
        if let Ok(mut d) = self.down.lock() {
            d.insert(i);
        }
    }

    pub async fn clock(&self, i: usize) -> Result<ClockServiceClient<Channel>> {
        let what = format!("the clock of rollout replica {i}");
        let c = connect(&what, &self.rollouts[i], RELEASE_ENGINEER).await?;
        Ok(ClockServiceClient::new(c))
    }

    pub async fn registry(&self) -> Result<RegistryServiceClient<Channel>> {
        let c = connect("the registry", &self.registry, RELEASE_ENGINEER).await?;
        Ok(RegistryServiceClient::new(c))
    }

    pub async fn agent(&self, region: &str) -> Result<AgentServiceClient<Channel>> {
        let what = format!("the agent of {region}");
        let c = connect(&what, &self.agents[region], AGENT_CALLER).await?;
        Ok(AgentServiceClient::new(c))
    }

    pub async fn faults(&self, region: &str) -> Result<FaultInjectionServiceClient<Channel>> {
        let what = format!("the fault injection of the agent of {region}");
        let c = connect(&what, &self.agents[region], AGENT_CALLER).await?;
        Ok(FaultInjectionServiceClient::new(c))
    }

    pub async fn now(&self) -> Result<Timestamp> {
        let r = self
            .clock(self.live())
            .await?
            .get_time(GetTimeRequest {})
            .await?
            .into_inner();
        Ok(from_ts(&r.clock.and_then(|c| c.now)))
    }

    pub async fn set_rate(&self, rate: f64) -> Result<()> {
        self.clock(self.live())
            .await?
            .set_rate(SetRateRequest { rate })
            .await?;
        Ok(())
    }

    /// Imports riverflow, signs it off (five roles) and sets GA `ga_in`
    /// ahead of virtual now.
    pub async fn scheduled_tile(&self, ga_in: SignedDuration) -> Result<Tile> {
        self.scheduled(RIVERFLOW, "", ga_in).await
    }

    /// Imports `config_json` (as `id`, or its slug when empty), gives it a
    /// test workspace, signs it off (five roles) and sets GA `ga_in` ahead
    /// of virtual now.
    pub async fn scheduled(&self, config_json: &str, id: &str, ga_in: SignedDuration) -> Result<Tile> {
        let tile = self.signed_off(config_json, id).await?;
        let tile = self.gtm_done(&tile).await?;
        let now = self.now().await?;
        let reason = Release::default().reason;
        journeys::set_ga(&mut self.registry().await?, &tile, now + ga_in, reason).await
    }

    /// Imports `config_json` as `id`, gives it a test workspace and signs
    /// it off (five roles): SIGNED_OFF, ready for a GA date.
    pub async fn signed_off(&self, config_json: &str, id: &str) -> Result<Tile> {
        let tile = journeys::imported(&mut self.registry().await?, config_json, id).await?;
        self.sign_off(&tile, &ROLES).await
    }

    /// Records `roles` on the tile's latest revision; before the
    /// engineering sign-off, passes every validation case still open (its
    /// gate).
    pub async fn sign_off(&self, tile: &Tile, roles: &[SignOffRole]) -> Result<Tile> {
        let note = Release::default().note;
        journeys::sign_off(&mut self.registry().await?, tile, roles, note).await
    }

    /// Every go-to-market item a release engineer sets (all but the
    /// agreement, legal's sign-off) done: the gate of a GA date.
    pub async fn gtm_done(&self, tile: &Tile) -> Result<Tile> {
        let due = Release::default().gtm_due;
        journeys::gtm_done(&mut self.registry().await?, tile, due).await
    }

    /// The tile as the registry has it now.
    pub async fn tile(&self, id: &str) -> Result<Tile> {
        self.registry()
            .await?
            .get_tile(GetTileRequest {
                id: id.into(),
                revision: 0,
            })
            .await?
            .into_inner()
            .tile
            .context("tile")
    }

    /// StartRollout on a live replica.
    pub async fn start_rollout(&self, spec: RolloutSpec) -> Result<Rollout> {
        self.rollout(self.live())
            .await?
            .start_rollout(StartRolloutRequest {
                spec: Some(spec),
                ..Default::default()
            })
            .await?
            .into_inner()
            .rollout
            .context("rollout")
    }

    /// Waits until the roll-out satisfies `done`.
    pub async fn wait_for(&self, id: &str, what: &str, done: impl Fn(&Rollout) -> bool) -> Result<Rollout> {
        eventually(what, WAIT, || async {
            let r = self.get(id).await.ok()?;
            done(&r).then_some(r)
        })
        .await
    }

    /// Waits until the roll-out is in `state`.
    pub async fn wait_state(&self, id: &str, state: RolloutState) -> Result<Rollout> {
        self.wait_for(id, &format!("roll-out {id} {}", state.as_str_name()), |r| {
            r.state == state as i32
        })
        .await
    }

    /// What the agent of `region` holds of `tile`.
    pub async fn entry(&self, region: &str, tile: &str) -> Result<Option<CatalogEntry>> {
        Ok(self
            .agent(region)
            .await?
            .list_tiles(ListTilesRequest { page: None })
            .await?
            .into_inner()
            .entries
            .into_iter()
            .find(|e| e.tile_id == tile))
    }

    /// Every agent's apply count of `tile` (0 where it never was applied).
    pub async fn apply_counts(&self, tile: &str) -> Result<BTreeMap<String, i64>> {
        let mut out = BTreeMap::new();
        for region in REGIONS {
            let n = self.entry(region, tile).await?.map_or(0, |e| e.apply_count);
            out.insert(region.to_string(), n);
        }
        Ok(out)
    }

    /// Sets the clock's rate to 0 and moves it forward by `by`.
    pub async fn advance(&self, by: SignedDuration) -> Result<()> {
        self.set_rate(0.0).await?;
        self.clock(self.live())
            .await?
            .advance(AdvanceRequest { by: Some(dur(by)) })
            .await?;
        Ok(())
    }

    pub async fn get(&self, id: &str) -> Result<Rollout> {
        let mut c = self.rollout(self.live()).await?;
        c.get_rollout(GetRolloutRequest {
            id: id.into(),
            tile_id: String::new(),
        })
        .await?
        .into_inner()
        .rollout
        .context("rollout")
    }

    /// Every event under `events/`.
    pub async fn events(&self) -> Result<Vec<Event>> {
        Ok(self
            .store
            .list::<Event>(&self.store.keys().events())
            .await?
            .items
            .into_iter()
            .map(|v| v.value)
            .collect())
    }

    /// The replica index owning a roll-out.
    pub async fn owner_of(&self, id: &str) -> Result<Option<usize>> {
        self.owner_of_work(&tilewave_store::keys::work::rollout(id)).await
    }

    /// The replica index owning a work (`owners/<work>`).
    pub async fn owner_of_work(&self, work: &str) -> Result<Option<usize>> {
        let owner = tilewave_store::ownership::current_owner(&self.store, work).await?;
        Ok(owner.and_then(|o| {
            o.value
                .holder
                .strip_prefix("replica-")
                .and_then(|n| n.parse().ok())
        }))
    }

    /// Every key and value under the prefix, to prove nothing changed.
    pub async fn dump(&self) -> Result<BTreeMap<String, Vec<u8>>> {
        Ok(self
            .etcd
            .dump(PREFIX)
            .await?
            .into_iter()
            .filter(|(k, _)| {
                let keys = self.store.keys();
                !k.starts_with(&keys.agents()) && *k != keys.clock() && !k.starts_with(&keys.owners())
            })
            .map(|(k, (v, _))| (k, v))
            .collect())
    }
}

/// How long a client keeps trying to connect: on two busy cores a freshly
/// accepted connection can take seconds.
pub const CONNECT: Duration = Duration::from_secs(10);

/// A channel to `process` as `identity` (reused), retrying for up to
/// [`CONNECT`].
pub async fn connect(what: &str, process: &ServiceProcess, identity: &str) -> Result<Channel> {
    journeys::connect(what, process, identity, CONNECT).await
}

pub async fn start_rollout_replica_with(
    dir: &TestDir,
    etcd: &str,
    registry: &str,
    i: usize,
    env: &[(String, String)],
) -> Result<ServiceProcess> {
    ServiceProcess::start(
        ServiceSpec::new(format!("rollout-{i}"), bin_path("tilewave-rollout")?)
            .with_args([
                "--etcd",
                etcd,
                "--prefix",
                PREFIX,
                "--registry",
                registry,
                "--lease-ttl-ms",
                "3000",
                "--reconcile-interval-ms",
                "500",
                "--removal-bake-mins",
                "10",
                // Generous: an agent's apply fsyncs its catalog, which on a
                // busy CI disk can take seconds, and a timed-out apply
                // fails the step (and pauses the roll-out).
                "--rpc-timeout-ms",
                "10000",
                "--replica",
                &format!("replica-{i}"),
            ])
            .with_health_service(Some(tilewave_rollout::HEALTH_SERVICE))
            .with_envs(env),
        dir.path(),
    )
    .await
}

/// Adds a list of environment variables to a spec.
pub trait WithEnvs {
    fn with_envs(self, env: &[(String, String)]) -> Self;
}

impl WithEnvs for ServiceSpec {
    fn with_envs(self, env: &[(String, String)]) -> Self {
        env.iter()
            .fold(self, |s, (k, v)| s.with_env(k.clone(), v.clone()))
    }
}

/// The spec the tests roll out: the eight regions, waves of three, two at
/// once, 5 min applies, 30 min bakes, starting now.
pub fn spec(tile: &str, now: Timestamp) -> RolloutSpec {
    RolloutSpec {
        tile_id: tile.into(),
        regions: REGIONS.iter().map(|r| r.to_string()).collect(),
        apply_time: Some(dur(SignedDuration::from_mins(5))),
        bake: Some(dur(SignedDuration::from_mins(30))),
        concurrency: 2,
        wave_growth: 1,
        earliest_start: Some(ts(now)),
        ..Default::default()
    }
}

/// A quick spec: `regions`, 5 min applies, `bake` bakes, `concurrency` at
/// once, canary waves growing by one, starting now.
pub fn quick_spec(
    tile: &str,
    now: Timestamp,
    regions: &[&str],
    bake: SignedDuration,
    concurrency: i32,
) -> RolloutSpec {
    RolloutSpec {
        tile_id: tile.into(),
        regions: regions.iter().map(|r| r.to_string()).collect(),
        apply_time: Some(dur(SignedDuration::from_mins(5))),
        bake: Some(dur(bake)),
        concurrency,
        wave_growth: 1,
        earliest_start: Some(ts(now)),
        ..Default::default()
    }
}

/// The regions of a roll-out's wave `w`.
pub fn wave(r: &Rollout, w: i32) -> Vec<String> {
    r.steps
        .iter()
        .filter(|s| s.wave == w)
        .map(|s| s.region.clone())
        .collect()
}
