//! Serving the rollout service: `serve(listener, config, shutdown)`
//! connects to etcd, follows (or creates) the domain clock, starts the
//! watch caches, the background tasks (the controller, the timer loop,
//! reconciliation and the lifecycle loop, each under its name with its own
//! shutdown signal, stopped last-started-first once the server has stopped
//! on `shutdown`), and serves RolloutService and ClockService with gRPC
//! health checking and server reflection, every RPC traced by the
//! telemetry layer.

use std::sync::Arc;

use tilewave_proto::clock::v1::clock_service_server::ClockServiceServer;
use tilewave_proto::registry::v1::Tile;
use tilewave_proto::rollout::v1::rollout_service_server::RolloutServiceServer;
use tilewave_proto::rollout::v1::{Freeze, LaunchCalendar, Rollout};
use tilewave_store::{
    Actor, Clock, Shutdown, Store, StoreConfig, SystemClock, Tasks, VirtualClock, WatchCache,
};
use tokio::net::TcpListener;
use tonic::server::NamedService;

use crate::clients::{Agents, Registry};
use crate::clock_service::Clocks;
use crate::config::RolloutConfig;
use crate::model::Ctx;
use crate::service::Rollouts;

/// The gRPC health service name the rollout service reports SERVING under
/// (besides the overall "").
pub const HEALTH_SERVICE: &str = "tilewave.rollout.v1.RolloutService";

/// How long each background task may take to stop (it releases its owner
/// keys) before it is aborted.
const TASK_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// etcd could not be reached or refused.
    #[error("etcd: {0}")]
    Store(#[from] tilewave_store::Error),
    /// The service's own set-up failed.
    #[error("{0}")]
    Rollout(#[from] crate::error::Error),
    /// The regions file could not be read or parsed.
    #[error("regions file: {0}")]
    Regions(String),
    /// Reflection descriptors could not be loaded.
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The TLS files are incomplete, missing or do not fit together.
    #[error("TLS: {0}")]
    Tls(#[from] tilewave_tls::Error),
    /// The access policy file could not be loaded.
    #[error("access policy: {0}")]
    Policy(#[from] tilewave_auth::LoadError),
    /// The transport failed.
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Serves the rollout service on `listener` until `shutdown` is requested,
/// then stops its background tasks, the last started first.
pub async fn serve(
    listener: TcpListener,
    config: RolloutConfig,
    shutdown: Shutdown,
) -> Result<(), ServeError> {
    let tls = config.tls.load()?;
    let mut auth =
        tilewave_auth::ServerAuth::new("tilewave-rollout", tls.is_some(), config.policy.policy.as_deref())?;
    let store_config = StoreConfig::new(config.etcd.clone())
        .with_prefix(config.prefix.clone())
        .with_op_timeout(config.etcd_timeout())
        .with_tls(tls.as_ref().map(tilewave_tls::Tls::client_config));
    let store = Store::connect(store_config).await?;
    let actor = Actor::system("rollout");
    let virtual_clock = match config.virtual_clock_start {
        Some(start) => Some(VirtualClock::start(&store, start, config.virtual_clock_rate, &actor).await?),
        None => match VirtualClock::attach(&store).await {
            Ok(c) => Some(c),
            Err(tilewave_store::Error::ClockNotVirtual) => None,
            Err(e) => return Err(e.into()),
        },
    };
    let clock: Arc<dyn Clock> = match &virtual_clock {
        Some(v) => Arc::clone(v) as Arc<dyn Clock>,
        None => Arc::new(SystemClock),
    };
    let store = store.with_clock(Arc::clone(&clock));
    let catalog = config.catalog().map_err(ServeError::Regions)?;
    let rollouts = WatchCache::<Rollout>::children(&store, &store.keys().rollouts()).await?;
    let freeze = WatchCache::<Freeze>::key(&store, &store.keys().freeze()).await?;
    let tiles = WatchCache::<Tile>::children(&store, &store.keys().tiles()).await?;
    let calendar = WatchCache::<LaunchCalendar>::key(&store, &store.keys().calendar()).await?;
    let holder = config
        .replica
        .clone()
        .unwrap_or_else(|| format!("rollout-{}-{:08x}", std::process::id(), rand::random::<u32>()));
    let lease = tilewave_store::ReplicaLease::new(&store, holder.clone(), config.lease_ttl())?;
    let (starts, announced) = crate::model::Starts::channel();
    let ctx = Ctx {
        registry: Registry::new(&config.registry, config.rpc_timeout(), tls.as_ref())?,
        agents: Agents::watching(store.clone(), config.rpc_timeout(), tls.clone()).await?,
        store: store.clone(),
        clock: Arc::clone(&clock),
        catalog: Arc::new(catalog),
        rollouts: Arc::new(rollouts),
        freeze: Arc::new(freeze),
        tiles: Arc::new(tiles),
        calendar: Arc::new(calendar),
        holder,
        ttl: config.lease_ttl(),
        lease,
        actor,
        unreachable: config.unreachable(),
        written: Arc::default(),
        configs: Arc::default(),
        starts,
        steps_seen: Arc::default(),
    };

    // The background tasks, each with its own shutdown signal; stopped in
    // the reverse order of their start once the server has stopped.
    let mut tasks = Tasks::new();
    tilewave_service::watch_policy(&mut tasks, &mut auth);
    tasks.spawn("controller", {
        let ctx = ctx.clone();
        |shutdown| crate::controller::run(ctx, announced, shutdown)
    });
    tasks.spawn("timers", {
        let ctx = ctx.clone();
        |shutdown| crate::ga::run(ctx, shutdown)
    });
    tasks.spawn("reconciler", {
        let (ctx, interval) = (ctx.clone(), config.reconcile_interval());
        move |shutdown| crate::reconcile::run(ctx, interval, shutdown)
    });
    tasks.spawn("scheduler", {
        let (ctx, settings) = (ctx.clone(), config.scheduler());
        move |shutdown| crate::scheduler::run(ctx, settings, shutdown)
    });
    tasks.spawn("lifecycle", {
        let (ctx, bake) = (ctx.clone(), config.removal_bake());
        move |shutdown| crate::lifecycle::run(ctx, bake, shutdown)
    });

    let (_reporter, health, reflection) = tilewave_service::standard::health_and_reflection(
        &[
            <RolloutServiceServer<Rollouts> as NamedService>::NAME,
            <ClockServiceServer<Clocks> as NamedService>::NAME,
        ],
        tonic_health::ServingStatus::Serving,
    )
    .await?;

    tracing::info!(addr = ?listener.local_addr().ok(), holder = %ctx.holder, "tilewave-rollout serving");
    let result = tilewave_tls::server("tilewave-rollout", tls.as_ref())?
        .layer(tilewave_telemetry::server_layer())
        .layer(tilewave_service::bounded::BoundedMessages)
        .layer(auth.layer())
        .add_service(tilewave_service::sized!(health))
        .add_service(tilewave_service::sized!(reflection))
        .add_service(tilewave_service::sized!(
            auth.whoami(&[tilewave_auth::table::ROLLOUT, tilewave_auth::table::CLOCK])
        ))
        .add_service(tilewave_service::sized!(RolloutServiceServer::new(
            Rollouts::new(ctx.clone())
        )))
        .add_service(tilewave_service::sized!(ClockServiceServer::new(Clocks::new(
            store,
            clock,
            virtual_clock
        ))))
        .serve_with_incoming_shutdown(tilewave_service::incoming(listener), shutdown.requested())
        .await;
    tasks.stop(TASK_GRACE).await;
    result?;
    Ok(())
}
