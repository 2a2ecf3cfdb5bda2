//! The failover measure's stacks: per owner, real etcd, the services it
//! needs and two replicas of the owning service as processes (the test
//! kit's shared PKI, mutual TLS), on a virtual clock standing still; and,
//! per owner, what "the next step" is, how it is made due at the kill and
//! how its commit is recognised in etcd.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use jiff::{SignedDuration, Timestamp};
use rand::Rng as _;
use tilewave_proto::agent::v1::ApplyTileRequest;
use tilewave_proto::agent::v1::agent_service_client::AgentServiceClient;
use tilewave_proto::common::v1::{Event, EventKind, LocalTime, PartnerConfig, PartnerEndpoints, Severity};
use tilewave_proto::credentials::v1::credentials_service_client::CredentialsServiceClient;
use tilewave_proto::credentials::v1::{
    CredentialKind, GetRotationRequest, Retirement, Rotation, RotationSchedule, RotationState,
    SetRotationScheduleRequest, StartRotationRequest, SubmitCredentialRequest,
};
use tilewave_proto::escalation::v1::escalation_service_client::EscalationServiceClient;
use tilewave_proto::escalation::v1::{
    Incident, Level, OpenIncidentRequest, Policy, SetPolicyRequest, Target as PolicyTarget, TimelineKind,
};
use tilewave_proto::registry::v1::registry_service_client::RegistryServiceClient;
use tilewave_proto::registry::v1::{ImportPartnerConfigRequest, Tile};
use tilewave_proto::rollout::v1::rollout_service_client::RolloutServiceClient;
use tilewave_proto::rollout::v1::{GetRolloutRequest, Rollout, RolloutSpec, StartRolloutRequest, StepState};
use tilewave_store::{Actor, Change, Clock as _, Store, VirtualClock, audit};
use tilewave_testkit::journeys::{self, RIVERFLOW, Release, dur, t0, ts};
use tilewave_testkit::partner::{CONNECT_PATH, TEST_CONNECTION_PATH};
use tilewave_testkit::pki::{ONCALL, RELEASE_ENGINEER};
use tilewave_testkit::{
    EtcdCluster, PartnerDouble, ServiceProcess, ServiceSpec, TestDir, WebhookReceiver, bin_path, eventually,
};
use tonic::transport::Channel;

/// The key prefix of every stack.
const PREFIX: &str = "/tilewave-bench-failover/";
/// The one region of the roll-out stack (one agent).
const REGION: &str = "aws:eu-west-1";
/// How long set-up steps may take on a busy 2-core machine.
const WAIT: Duration = Duration::from_secs(120);
/// The credentials service's health service.
const CREDENTIALS_HEALTH: &str = "tilewave.credentials.v1.CredentialsService";
/// The escalation service's health service.
const ESCALATION_HEALTH: &str = "tilewave.escalation.v1.EscalationService";
/// The rollout service's health service.
const ROLLOUT_HEALTH: &str = "tilewave.rollout.v1.RolloutService";
/// The tile whose credential the credential-rotation stack rotates, one
/// rotation a run (each run's ends before the next starts).
const ROTATION_TILE: &str = "riverflow";
/// The user name of its credentials.
const ROTATION_USER: &str = "tilewave";
/// How long a promoted rotation keeps the old credential (`AFTER_GRACE`);
/// the clock moves past it at the kill.
const ROTATION_GRACE: SignedDuration = SignedDuration::from_hours(1);
/// The escalation policy's first level: its delay is the wait before the
/// timers owner pages level 2, the clock moves past it at the kill.
const LEVEL_1_DELAY: SignedDuration = SignedDuration::from_mins(5);
/// The second level's delay: long enough that no earlier run's incident
/// steps its ladder again while the clock moves a few minutes a run.
const LEVEL_2_DELAY: SignedDuration = SignedDuration::from_hours(30 * 24);

/// An owner the measure kills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OwnerKind {
    /// The owner of one roll-out (`owners/rollout-<id>`, rollout service).
    Rollout,
    /// The GA scheduler (`owners/scheduler`, rollout service).
    Scheduler,
    /// The escalation service's events consumer (`owners/escalation-events`).
    EscalationEvents,
    /// The credentials service's rotation schedules
    /// (`owners/credential-schedules`).
    CredentialSchedules,
    /// The credentials service's driver of one rotation
    /// (`owners/credential-rotation-<id>`).
    CredentialRotation,
    /// The escalation ladder's timers (`owners/escalation-timers`).
    EscalationTimers,
}

impl std::fmt::Display for OwnerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl OwnerKind {
    /// Its name in figures (and on the command line).
    pub fn name(self) -> &'static str {
        match self {
            OwnerKind::Rollout => "rollout",
            OwnerKind::Scheduler => "scheduler",
            OwnerKind::EscalationEvents => "escalation-events",
            OwnerKind::CredentialSchedules => "credential-schedules",
            OwnerKind::CredentialRotation => "credential-rotation",
            OwnerKind::EscalationTimers => "escalation-timers",
        }
    }

    /// The owned work, in words (the JSON details).
    pub fn work_description(self) -> &'static str {
        match self {
            OwnerKind::Rollout => {
                "owners/rollout-<id>: a one-region launch roll-out baking (health checks every 5 min of domain time)"
            }
            OwnerKind::Scheduler => "owners/scheduler: the GA scheduler (rollout service)",
            OwnerKind::EscalationEvents => {
                "owners/escalation-events: the escalation service's events consumer"
            }
            OwnerKind::CredentialSchedules => {
                "owners/credential-schedules: the credentials service's rotation schedules"
            }
            OwnerKind::CredentialRotation => {
                "owners/credential-rotation-<id>: one credential rotation (one region, one agent), PROMOTED and waiting for the old credential's 1 h grace period to end"
            }
            OwnerKind::EscalationTimers => {
                "owners/escalation-timers: the escalation ladder's timers (escalation service)"
            }
        }
    }

    /// What "the next step" is, in words (the JSON details).
    pub fn next_step_description(self) -> &'static str {
        match self {
            OwnerKind::Rollout => {
                "at the kill the virtual clock moves 6 min, so a bake health check is due: the next step is the new owner's fenced commit of the roll-out (its health round)"
            }
            OwnerKind::Scheduler => {
                "at the kill the virtual clock moves past a scheduled tile's launch start: the next step is the new owner's fenced commit for that launch (the roll-out started, or launch-blocked/<tile> recorded)"
            }
            OwnerKind::EscalationEvents => {
                "at the kill an event is written: the next step is the new owner's fenced commit of the event cursor past it"
            }
            OwnerKind::CredentialSchedules => {
                "at the kill the virtual clock moves past a new tile's first scheduled rotation, for which no credential was handed in: the next step is the new owner's fenced rotation-due event for it"
            }
            OwnerKind::CredentialRotation => {
                "at the kill the virtual clock moves past the grace period: the next step is the new owner's fenced commit of the rotation as COMPLETED (the old credential retired on the agent)"
            }
            OwnerKind::EscalationTimers => {
                "at the kill the virtual clock moves past a new SEV1 incident's level-1 delay (5 min): the next step is the new owner's fenced commit of the incident with its level-2 page (a second PAGED/ESCALATED timeline entry)"
            }
        }
    }

    /// Whether the run's `prepare` makes the owned work (a new rotation
    /// each run), so that nothing owns it before.
    pub fn work_made_by_prepare(self) -> bool {
        self == OwnerKind::CredentialRotation
    }
}

/// What marks a run's next step.
#[derive(Debug, Clone)]
pub enum Probe {
    /// A put of this key (the roll-out, the event cursor).
    Key(String),
    /// A put of a key starting with this (the rotation-due event).
    KeyPrefix(String),
    /// The scheduler's outcome for `tile`: its `launch-blocked` record or a
    /// roll-out of it.
    Launch {
        blocked: String,
        rollouts: String,
        tile: String,
    },
    /// A put of the rotation at `key` in `state`.
    RotationState { key: String, state: RotationState },
    /// A put of the incident at `key` whose timeline has at least `pages`
    /// PAGED or ESCALATED entries.
    IncidentPages { key: String, pages: usize },
}

/// One owner's stack. Fields drop in order: the processes before etcd,
/// the directory last.
#[allow(missing_debug_implementations)]
pub struct Scenario {
    kind: OwnerKind,
    replicas: Vec<ServiceProcess>,
    holder_prefix: String,
    down: Option<usize>,
    work: String,
    agents: Vec<ServiceProcess>,
    registry: Option<ServiceProcess>,
    /// The partner's API the credential-rotation stack's agent verifies
    /// credentials against.
    partner: Option<PartnerDouble>,
    /// The escalation-timers stack's webhook targets (accepts every page).
    _receiver: Option<WebhookReceiver>,
    store: Store,
    clock: Arc<VirtualClock>,
    _etcd: EtcdCluster,
    _dir: TestDir,
}

/// The actor of the bench's own writes.
fn actor() -> Actor {
    Actor::new("bench")
}

impl Scenario {
    /// Starts `kind`'s stack with leases of `ttl` and waits until its work
    /// is owned (the roll-out stack: until the roll-out bakes; the
    /// credential-rotation stack: until the tile's first credential is
    /// rotated in, each run's rotation being made by `prepare`).
    pub async fn start(kind: OwnerKind, ttl: Duration) -> anyhow::Result<Self> {
        let dir = TestDir::new("bench-failover")?;
        let etcd = EtcdCluster::start(1).await?;
        let store = etcd.store(PREFIX).await?;
        let clock = VirtualClock::start(&store, t0(), 0.0, &actor()).await?;
        let endpoints = etcd.endpoints().join(",");
        let ttl_ms = ttl.as_millis().to_string();
        let mut scenario = Self {
            kind,
            replicas: Vec::new(),
            holder_prefix: "replica-".to_owned(),
            down: None,
            work: String::new(),
            agents: Vec::new(),
            registry: None,
            partner: None,
            _receiver: None,
            store,
            clock,
            _etcd: etcd,
            _dir: dir,
        };
        let dir = scenario._dir.path().to_path_buf();
        match kind {
            OwnerKind::Rollout | OwnerKind::Scheduler => {
                let registry = Box::pin(registry(&endpoints, &dir)).await?;
                let registry_url = registry.endpoint();
                scenario.registry = Some(registry);
                if kind == OwnerKind::Rollout {
                    let data = dir.join("agent");
                    let spec = journeys::agent_spec("agent", REGION, &data, &endpoints, PREFIX)?;
                    let agent = ServiceProcess::start(spec, &dir).await?;
                    scenario.agents.push(agent);
                }
                let scheduler = if kind == OwnerKind::Scheduler {
                    "true"
                } else {
                    "false"
                };
                for i in 0..2 {
                    let spec = ServiceSpec::new(format!("rollout-{i}"), bin_path("tilewave-rollout")?)
                        .with_args([
                            "--etcd",
                            &endpoints,
                            "--prefix",
                            PREFIX,
                            "--registry",
                            &registry_url,
                            "--lease-ttl-ms",
                            &ttl_ms,
                            "--rpc-timeout-ms",
                            "10000",
                            "--ga-scheduler",
                            scheduler,
                            "--preflight-credentials",
                            "false",
                            "--preflight-oncall",
                            "false",
                            "--replica",
                            &format!("replica-{i}"),
                        ])
                        .with_health_service(Some(ROLLOUT_HEALTH));
                    scenario.replicas.push(ServiceProcess::start(spec, &dir).await?);
                }
                if kind == OwnerKind::Rollout {
                    let id = Box::pin(scenario.baking_rollout()).await?;
                    scenario.work = tilewave_store::keys::work::rollout(&id);
                } else {
                    scenario.work = tilewave_store::keys::work::SCHEDULER.to_owned();
                }
            }
            OwnerKind::EscalationEvents => {
                kek_replicas(
                    &mut scenario,
                    &dir,
                    &endpoints,
                    &ttl_ms,
                    "escalation",
                    ESCALATION_HEALTH,
                )
                .await?;
                scenario.work = tilewave_store::keys::work::ESCALATION_EVENTS.to_owned();
            }
            OwnerKind::CredentialSchedules => {
                scenario.registry = Some(Box::pin(registry(&endpoints, &dir)).await?);
                kek_replicas(
                    &mut scenario,
                    &dir,
                    &endpoints,
                    &ttl_ms,
                    "credentials",
                    CREDENTIALS_HEALTH,
                )
                .await?;
                scenario.work = tilewave_store::keys::work::CREDENTIAL_SCHEDULES.to_owned();
            }
            OwnerKind::CredentialRotation => {
                scenario.registry = Some(Box::pin(registry(&endpoints, &dir)).await?);
                let agent_kek = dir.join("agent-kek");
                write_kek(&agent_kek)?;
                let data = dir.join("agent");
                let spec = journeys::agent_spec("agent", REGION, &data, &endpoints, PREFIX)?.with_args([
                    "--kek-file".to_owned(),
                    agent_kek.display().to_string(),
                    // The tile is live on the agent: no probes of it
                    // during the measure.
                    "--probe-interval".to_owned(),
                    "1h".to_owned(),
                ]);
                scenario.agents.push(ServiceProcess::start(spec, &dir).await?);
                scenario.partner = Some(PartnerDouble::start().await?);
                kek_replicas(
                    &mut scenario,
                    &dir,
                    &endpoints,
                    &ttl_ms,
                    "credentials",
                    CREDENTIALS_HEALTH,
                )
                .await?;
                Box::pin(scenario.rotation_tile()).await?;
                // `work` is each run's rotation, set by `prepare`.
            }
            OwnerKind::EscalationTimers => {
                kek_replicas(
                    &mut scenario,
                    &dir,
                    &endpoints,
                    &ttl_ms,
                    "escalation",
                    ESCALATION_HEALTH,
                )
                .await?;
                let receiver = WebhookReceiver::start().await?;
                Box::pin(scenario.ladder_policy(&receiver)).await?;
                scenario._receiver = Some(receiver);
                scenario.work = tilewave_store::keys::work::ESCALATION_TIMERS.to_owned();
            }
        }
        Ok(scenario)
    }

    pub fn kind(&self) -> OwnerKind {
        self.kind
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The owned work (`owners/<work>`).
    pub fn work(&self) -> &str {
        &self.work
    }

    /// Waits until a live replica owns the work: its index and holder name.
    pub async fn wait_for_owner(&self) -> anyhow::Result<(usize, String)> {
        let what = format!("an owner of {} among the live replicas", self.work);
        eventually(&what, WAIT, || async {
            let owner = tilewave_store::ownership::current_owner(&self.store, &self.work)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| "no owner".to_owned())?;
            let holder = owner.value.holder;
            let i: usize = holder
                .strip_prefix(self.holder_prefix.as_str())
                .and_then(|n| n.parse().ok())
                .filter(|i| *i < self.replicas.len() && Some(*i) != self.down)
                .ok_or_else(|| format!("held by {holder:?}, not a live replica"))?;
            Ok::<_, String>((i, holder))
        })
        .await
    }

    /// SIGKILL of replica `i`.
    pub fn kill(&mut self, i: usize) -> anyhow::Result<()> {
        let replica = self.replicas.get_mut(i).context("no such replica")?;
        replica.kill()?;
        self.down = Some(i);
        Ok(())
    }

    /// Starts the killed replica again (same port and arguments).
    pub async fn restart_down(&mut self) -> anyhow::Result<()> {
        if let Some(i) = self.down {
            let replica = self.replicas.get_mut(i).context("no such replica")?;
            replica.restart().await?;
            self.down = None;
        }
        Ok(())
    }

    /// What run `run`'s next step will be (before the kill).
    pub async fn prepare(&mut self, run: usize) -> anyhow::Result<Probe> {
        let keys = self.store.keys().clone();
        Ok(match self.kind {
            OwnerKind::Rollout => {
                let id = self.work.strip_prefix("rollout-").unwrap_or_default();
                Probe::Key(keys.rollout(id))
            }
            OwnerKind::Scheduler => {
                // Its launch starts (GA - 7 days) 2 min from now: not yet.
                // The clock moves only minutes a run, so no earlier tile
                // reaches its GA and makes the scheduler busy with it.
                let id = format!("tile-{run}");
                let ga = self.clock.now() + SignedDuration::from_hours(7 * 24) + SignedDuration::from_mins(2);
                Box::pin(self.scheduled_tile(&id, ga)).await?;
                Probe::Launch {
                    blocked: keys.launch_blocked(&id),
                    rollouts: keys.rollouts(),
                    tile: id,
                }
            }
            OwnerKind::EscalationEvents => Probe::Key(keys.escalation_cursor()),
            OwnerKind::CredentialRotation => {
                // Credential 0 was rotated in at the start; run `run`
                // rotates to credential `run + 1`, which waits PROMOTED for
                // the grace period to end, owned by the replica driving it.
                let r = Box::pin(self.promoted_rotation(run + 1)).await?;
                self.work = tilewave_store::keys::work::credential_rotation(&r.id);
                Probe::RotationState {
                    key: keys.credential_rotation(&r.id),
                    state: RotationState::Completed,
                }
            }
            OwnerKind::EscalationTimers => {
                // Level 1 is paged at the opening; the timers owner pages
                // level 2 when its delay has passed.
                let incident = Box::pin(self.open_sev1(run)).await?;
                Probe::IncidentPages {
                    key: keys.incident(&incident.id),
                    pages: 2,
                }
            }
            OwnerKind::CredentialSchedules => {
                // Its first rotation falls due a day from now.
                let id = format!("tile-{run}");
                Box::pin(self.scheduled_rotation(&id)).await?;
                Probe::KeyPrefix(keys.event(&format!("rotation-due-{id}-")))
            }
        })
    }

    /// Makes the next step due (just after the kill).
    pub async fn arm(&self, _probe: &Probe) -> anyhow::Result<()> {
        match self.kind {
            // A bake health check is due every 5 min of domain time.
            OwnerKind::Rollout => {
                self.clock.advance(SignedDuration::from_mins(6), &actor()).await?;
            }
            // Past the scheduled tile's start.
            OwnerKind::Scheduler => {
                self.clock.advance(SignedDuration::from_mins(3), &actor()).await?;
            }
            // Past the promoted rotation's grace period.
            OwnerKind::CredentialRotation => {
                self.clock
                    .advance(ROTATION_GRACE + SignedDuration::from_mins(1), &actor())
                    .await?;
            }
            // Past the incident's level-1 delay.
            OwnerKind::EscalationTimers => {
                self.clock
                    .advance(LEVEL_1_DELAY + SignedDuration::from_secs(10), &actor())
                    .await?;
            }
            // Past the tile's first scheduled rotation.
            OwnerKind::CredentialSchedules => {
                self.clock
                    .advance(
                        SignedDuration::from_hours(24) + SignedDuration::from_mins(1),
                        &actor(),
                    )
                    .await?;
            }
            // An event the consumer moves its cursor past.
            OwnerKind::EscalationEvents => {
                let id = format!("bench-failover-{}", rand::rng().random::<u64>());
                let event = Event {
                    id: id.clone(),
                    kind: EventKind::RolloutSucceeded as i32,
                    severity: Severity::Sev3 as i32,
                    at: Some(ts(self.clock.now())),
                    tile_id: "riverflow".into(),
                    message: "failover bench: an event while the consumer has no owner".into(),
                    ..Default::default()
                };
                let change = Change::new()
                    .create(self.store.keys().event(&id), &event)
                    .audit(audit::record(
                        "RolloutSucceeded",
                        "event",
                        &id,
                        "failover bench event",
                    ));
                self.store.commit(change, &actor()).await?;
            }
        }
        Ok(())
    }

    /// Whether a put of `key` with `value` is `probe`'s next step.
    pub fn is_next_step(&self, probe: &Probe, key: &str, value: &[u8]) -> bool {
        match probe {
            Probe::Key(k) => key == k,
            Probe::KeyPrefix(p) => key.starts_with(p.as_str()),
            Probe::Launch {
                blocked,
                rollouts,
                tile,
            } => {
                if key == blocked {
                    return true;
                }
                let is_rollout = key
                    .strip_prefix(rollouts.as_str())
                    .is_some_and(|rest| !rest.is_empty() && !rest.trim_start_matches('/').contains('/'));
                is_rollout && <Rollout as prost::Message>::decode(value).is_ok_and(|r| r.tile_id == *tile)
            }
            Probe::RotationState { key: k, state } => {
                key == k
                    && <Rotation as prost::Message>::decode(value).is_ok_and(|r| r.state == *state as i32)
            }
            Probe::IncidentPages { key: k, pages } => {
                key == k
                    && <Incident as prost::Message>::decode(value).is_ok_and(|i| page_count(&i) >= *pages)
            }
        }
    }

    async fn registry(&self) -> anyhow::Result<RegistryServiceClient<Channel>> {
        let registry = self.registry.as_ref().context("this stack has no registry")?;
        let channel = journeys::connect("the registry", registry, RELEASE_ENGINEER, WAIT).await?;
        Ok(RegistryServiceClient::new(channel))
    }

    async fn rollout_client(&self, i: usize) -> anyhow::Result<RolloutServiceClient<Channel>> {
        let replica = self.replicas.get(i).context("no such replica")?;
        let what = format!("rollout replica {i}");
        let channel = journeys::connect(&what, replica, RELEASE_ENGINEER, WAIT).await?;
        Ok(RolloutServiceClient::new(channel))
    }

    /// Imports riverflow as `id`, makes it ready for a launch (test
    /// workspace, validation, the five sign-offs, go-to-market) and sets
    /// its GA to `ga`: a SCHEDULED tile.
    async fn scheduled_tile(&self, id: &str, ga: Timestamp) -> anyhow::Result<Tile> {
        let release = Release {
            id,
            note: "failover bench",
            reason: "failover bench",
            ..Release::default()
        };
        journeys::scheduled_tile(&mut self.registry().await?, &release, ga).await
    }

    /// Imports riverflow as `id` and gives it a rotation schedule (daily,
    /// any time of day, UTC): its first rotation falls due a day from now.
    async fn scheduled_rotation(&self, id: &str) -> anyhow::Result<()> {
        self.import_riverflow(id).await?;
        let c = CredentialsServiceClient::new(self.live_replica(RELEASE_ENGINEER).await?);
        // The replica learns of the tile through its watch: retried.
        eventually(&format!("a rotation schedule for {id}"), WAIT, || {
            let mut c = c.clone();
            async move {
                c.set_rotation_schedule(SetRotationScheduleRequest {
                    schedule: Some(RotationSchedule {
                        tile_id: id.into(),
                        kind: CredentialKind::PartnerBasicAuth as i32,
                        every_days: 1,
                        window_start: Some(LocalTime { hour: 0, minute: 0 }),
                        window_end: Some(LocalTime { hour: 23, minute: 59 }),
                        time_zone: "UTC".into(),
                        ..Default::default()
                    }),
                    etag: 0,
                })
                .await
                .map_err(|e| e.to_string())
            }
        })
        .await?;
        Ok(())
    }

    /// Imports riverflow's Partner Connect file as tile `id`.
    async fn import_riverflow(&self, id: &str) -> anyhow::Result<()> {
        self.registry()
            .await?
            .import_partner_config(ImportPartnerConfigRequest {
                config_json: RIVERFLOW.into(),
                id: id.into(),
                ..Default::default()
            })
            .await?;
        Ok(())
    }

    /// A channel as `identity` to a live replica of the owning service.
    async fn live_replica(&self, identity: &str) -> anyhow::Result<Channel> {
        let (i, replica) = self
            .replicas
            .iter()
            .enumerate()
            .find(|(i, r)| Some(*i) != self.down && r.pid().is_some())
            .context("no live replica")?;
        journeys::connect(&format!("replica {i}"), replica, identity, WAIT).await
    }

    /// Imports riverflow as [`ROTATION_TILE`], makes it live on the agent
    /// with the partner double as its API (what the agent verifies a new
    /// credential against), and rotates its first credential in (with no
    /// old credential, that rotation completes when it is promoted).
    async fn rotation_tile(&self) -> anyhow::Result<()> {
        self.import_riverflow(ROTATION_TILE).await?;
        let partner = self
            .partner
            .as_ref()
            .context("this stack has no partner double")?;
        let agent = self.agents.first().context("this stack has no agent")?;
        let channel = journeys::connect("the agent", agent, journeys::AGENT_CALLER, WAIT).await?;
        AgentServiceClient::new(channel)
            .apply_tile(ApplyTileRequest {
                tile_id: ROTATION_TILE.into(),
                revision: 1,
                config: Some(PartnerConfig {
                    name: "Riverflow".into(),
                    base_url: partner.base_url(),
                    endpoints: Some(PartnerEndpoints {
                        connect_path: CONNECT_PATH.into(),
                        test_connection_path: TEST_CONNECTION_PATH.into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                fencing_token: 1,
                rollout_id: "bench-failover".into(),
                hidden: None,
                probe_after: false,
            })
            .await?;
        let first = self.rotation_to(0).await?;
        self.rotation_until(&first.id, "COMPLETED", |r| {
            r.state == RotationState::Completed as i32
        })
        .await?;
        Ok(())
    }

    /// Hands in credential `n` of [`ROTATION_TILE`] (the partner double
    /// accepts it from now on) and starts a rotation to it in the one
    /// region: no bake, the old credential retired after
    /// [`ROTATION_GRACE`].
    async fn rotation_to(&self, n: usize) -> anyhow::Result<Rotation> {
        let partner = self
            .partner
            .as_ref()
            .context("this stack has no partner double")?;
        let password = format!("bench-failover-credential-{n}");
        partner.accept(ROTATION_USER, &password);
        let c = CredentialsServiceClient::new(self.live_replica(RELEASE_ENGINEER).await?);
        // The replica learns of the tile, and of the previous rotation's
        // end, through its watches: both calls are retried, made
        // idempotent by their request ids.
        eventually(
            &format!("credential {n} of {ROTATION_TILE} handed in"),
            WAIT,
            || {
                let (mut c, password) = (c.clone(), password.clone());
                async move {
                    c.submit_credential(SubmitCredentialRequest {
                        tile_id: ROTATION_TILE.into(),
                        username: ROTATION_USER.into(),
                        plaintext: password,
                        request_id: format!("bench-failover-submit-{n}"),
                        ..Default::default()
                    })
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string())
                }
            },
        )
        .await?;
        eventually(
            &format!("a rotation of {ROTATION_TILE} to credential {n}"),
            WAIT,
            || {
                let mut c = c.clone();
                async move {
                    c.start_rotation(StartRotationRequest {
                        tile_id: ROTATION_TILE.into(),
                        regions: vec![REGION.into()],
                        bake: Some(dur(SignedDuration::ZERO)),
                        retirement: Retirement::AfterGrace as i32,
                        grace: Some(dur(ROTATION_GRACE)),
                        request_id: format!("bench-failover-rotation-{n}"),
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| e.to_string())?
                    .into_inner()
                    .rotation
                    .ok_or_else(|| "no rotation in StartRotation's answer".to_owned())
                }
            },
        )
        .await
    }

    /// Rotation `id` once `done` holds for it (`what`, in words).
    async fn rotation_until(
        &self,
        id: &str,
        what: &str,
        done: impl Fn(&Rotation) -> bool,
    ) -> anyhow::Result<Rotation> {
        let c = CredentialsServiceClient::new(self.live_replica(RELEASE_ENGINEER).await?);
        let done = &done;
        eventually(&format!("rotation {id} {what}"), WAIT, || {
            let mut c = c.clone();
            async move {
                let r = c
                    .get_rotation(GetRotationRequest {
                        id: id.into(),
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| e.to_string())?
                    .into_inner()
                    .rotation
                    .ok_or_else(|| "no rotation in GetRotation's answer".to_owned())?;
                if done(&r) {
                    Ok(r)
                } else {
                    let state = RotationState::try_from(r.state).map_or("?", |s| s.as_str_name());
                    Err(format!("{state}, {}", r.progress))
                }
            }
        })
        .await
    }

    /// A rotation to credential `n`, PROMOTED with the partner told, so
    /// that it waits for the grace period to end (owned by the replica
    /// driving it: `Decision::WaitUntil` keeps the owner).
    async fn promoted_rotation(&self, n: usize) -> anyhow::Result<Rotation> {
        let r = self.rotation_to(n).await?;
        self.rotation_until(&r.id, "PROMOTED with the partner told", |r| {
            r.state == RotationState::Promoted as i32 && r.partner_notified
        })
        .await
    }

    /// Sets the SEV1 policy of the escalation-timers stack: level 1 pages
    /// `receiver`'s `/primary` and waits [`LEVEL_1_DELAY`], level 2 pages
    /// `/secondary` and waits [`LEVEL_2_DELAY`]; no repeat.
    async fn ladder_policy(&self, receiver: &WebhookReceiver) -> anyhow::Result<()> {
        let webhook = |name: &str| PolicyTarget {
            kind: "webhook".into(),
            name: name.into(),
            url: receiver.url(&format!("/{name}")),
        };
        let policy = Policy {
            name: "bench-sev1".into(),
            severities: vec![Severity::Sev1 as i32],
            levels: vec![
                Level {
                    targets: vec![webhook("primary")],
                    delay: Some(dur(LEVEL_1_DELAY)),
                },
                Level {
                    targets: vec![webhook("secondary")],
                    delay: Some(dur(LEVEL_2_DELAY)),
                },
            ],
            repeat: 0,
            ..Default::default()
        };
        EscalationServiceClient::new(self.live_replica(RELEASE_ENGINEER).await?)
            .set_policy(SetPolicyRequest {
                policy: Some(policy),
                etag: 0,
                ..Default::default()
            })
            .await
            .context("setting the SEV1 policy")?;
        Ok(())
    }

    /// Opens run `run`'s SEV1 incident by hand (level 1 is paged at once).
    async fn open_sev1(&self, run: usize) -> anyhow::Result<Incident> {
        EscalationServiceClient::new(self.live_replica(ONCALL).await?)
            .open_incident(OpenIncidentRequest {
                title: format!("failover bench, run {}: health gate failed", run + 1),
                severity: Severity::Sev1 as i32,
                tile_id: "riverflow".into(),
                regions: vec![REGION.into()],
                ..Default::default()
            })
            .await
            .context("opening a SEV1 incident")?
            .into_inner()
            .incident
            .context("no incident in OpenIncident's answer")
    }

    /// A one-region launch roll-out of a scheduled tile, with a 20-day
    /// bake, waited for until it bakes; its id.
    async fn baking_rollout(&self) -> anyhow::Result<String> {
        let now = self.clock.now();
        let tile = self
            .scheduled_tile("riverflow", now + SignedDuration::from_hours(60 * 24))
            .await?;
        let spec = RolloutSpec {
            tile_id: tile.id.clone(),
            regions: vec![REGION.into()],
            apply_time: Some(dur(SignedDuration::from_mins(5))),
            bake: Some(dur(SignedDuration::from_hours(20 * 24))),
            concurrency: 1,
            wave_growth: 1,
            earliest_start: Some(ts(now)),
            ..Default::default()
        };
        let mut c = self.rollout_client(0).await?;
        let r = c
            .start_rollout(StartRolloutRequest {
                spec: Some(spec),
                ..Default::default()
            })
            .await?
            .into_inner()
            .rollout
            .context("no roll-out in StartRollout's answer")?;
        let id = r.id;
        eventually(&format!("roll-out {id} baking"), WAIT, || async {
            let r = c
                .clone()
                .get_rollout(GetRolloutRequest {
                    id: id.clone(),
                    tile_id: String::new(),
                })
                .await
                .map_err(|e| e.to_string())?
                .into_inner()
                .rollout
                .ok_or_else(|| "no roll-out".to_owned())?;
            let states: Vec<i32> = r.steps.iter().map(|s| s.state).collect();
            if !states.is_empty() && states.iter().all(|s| *s == StepState::Baking as i32) {
                Ok(())
            } else {
                Err(format!("steps {states:?}, state {}", r.state))
            }
        })
        .await?;
        Ok(id)
    }
}

/// How many times the incident's ladder paged: its PAGED and ESCALATED
/// timeline entries (level 1 at the opening, level 2 by the timers).
fn page_count(i: &Incident) -> usize {
    i.timeline
        .iter()
        .filter(|e| e.kind == TimelineKind::Paged as i32 || e.kind == TimelineKind::Escalated as i32)
        .count()
}

/// Two replicas of `tilewave-<service>` (the escalation or credentials
/// service), each with the key-encryption key written to `dir/kek`, the
/// lease TTL under test and a replica name `<service>-<i>`, which
/// becomes the scenario's holder prefix.
async fn kek_replicas(
    scenario: &mut Scenario,
    dir: &std::path::Path,
    endpoints: &str,
    ttl_ms: &str,
    service: &'static str,
    health: &'static str,
) -> anyhow::Result<()> {
    let kek = dir.join("kek");
    write_kek(&kek)?;
    scenario.holder_prefix = format!("{service}-");
    for i in 0..2 {
        let name = format!("{service}-{i}");
        let spec = ServiceSpec::new(name.clone(), bin_path(&format!("tilewave-{service}"))?)
            .with_args([
                "--etcd",
                endpoints,
                "--prefix",
                PREFIX,
                "--kek-file",
                &kek.display().to_string(),
                "--lease-ttl-ms",
                ttl_ms,
                "--replica",
                &name,
            ])
            .with_health_service(Some(health));
        scenario.replicas.push(ServiceProcess::start(spec, dir).await?);
    }
    Ok(())
}

/// The registry of a stack.
async fn registry(endpoints: &str, dir: &std::path::Path) -> anyhow::Result<ServiceProcess> {
    ServiceProcess::start(journeys::registry_spec(endpoints, PREFIX)?, dir).await
}

/// Writes a fresh key-encryption key file (`k1:<base64 of 32 random
/// bytes>`, the keyring's format, made by the keyring itself) to `path`.
fn write_kek(path: &std::path::Path) -> anyhow::Result<()> {
    let kek = tilewave_secrets::Kek::generate("k1").context("generating a key-encryption key")?;
    std::fs::write(path, kek.to_text().as_str()).with_context(|| format!("writing {}", path.display()))
}
