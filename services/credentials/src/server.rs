//! Serving the credentials service: `serve(listener, config, shutdown)`
//! loads the key-encryption keys (no start without them), connects to
//! etcd, follows the domain clock, starts the caches and the driver, and
//! serves CredentialsService with health checking, reflection, WhoAmI and
//! the role check.

use std::sync::Arc;

use tilewave_clients::Agents;
use tilewave_proto::credentials::v1::credentials_service_server::CredentialsServiceServer;
use tilewave_proto::credentials::v1::{CredentialVersions, Rotation};
use tilewave_proto::registry::v1::Tile;
use tilewave_store::{
    Actor, Clock, Shutdown, Store, StoreConfig, SystemClock, Tasks, VirtualClock, WatchCache,
};
use tokio::net::TcpListener;
use tonic::server::NamedService;

use crate::config::CredentialsConfig;
use crate::model::Ctx;
use crate::service::Credentials;

/// The gRPC health service name the credentials service reports SERVING
/// under (besides the overall "").
pub const HEALTH_SERVICE: &str = "tilewave.credentials.v1.CredentialsService";

/// How long each background task may take to stop.
const TASK_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// etcd could not be reached or refused.
    #[error("etcd: {0}")]
    Store(#[from] tilewave_store::Error),
    /// The key-encryption keys are missing or unreadable.
    #[error("{0}")]
    Keys(String),
    /// The regions file could not be read or parsed.
    #[error("regions: {0}")]
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

/// Serves the credentials service on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    config: CredentialsConfig,
    shutdown: Shutdown,
) -> Result<(), ServeError> {
    let keyring = config.keyring().map_err(ServeError::Keys)?;
    let tls = config.tls.load()?;
    let mut auth = tilewave_auth::ServerAuth::new(
        "tilewave-credentials",
        tls.is_some(),
        config.policy.policy.as_deref(),
    )?;
    let store_config = StoreConfig::new(config.etcd.clone())
        .with_prefix(config.prefix.clone())
        .with_op_timeout(config.etcd_timeout())
        .with_tls(tls.as_ref().map(tilewave_tls::Tls::client_config));
    let store = Store::connect(store_config).await?;
    let clock: Arc<dyn Clock> = match VirtualClock::attach(&store).await {
        Ok(c) => c,
        Err(tilewave_store::Error::ClockNotVirtual) => Arc::new(SystemClock),
        Err(e) => return Err(e.into()),
    };
    let store = store.with_clock(Arc::clone(&clock));
    let catalog = config.catalog().map_err(ServeError::Regions)?;
    let tiles = WatchCache::<Tile>::children(&store, &store.keys().tiles()).await?;
    let rotations = WatchCache::<Rotation>::children(&store, &store.keys().credential_rotations()).await?;
    let versions = WatchCache::<CredentialVersions>::prefix_filtered(
        &store,
        &store.keys().credentials(),
        Arc::new(|k: &str| k.ends_with("/versions")),
    )
    .await?;
    let holder = config
        .replica
        .clone()
        .unwrap_or_else(|| format!("credentials-{}-{:08x}", std::process::id(), rand::random::<u32>()));
    tracing::info!(primary_kek = %keyring.primary().id(), "key-encryption keys loaded");
    let ctx = Ctx {
        agents: Agents::new(store.clone(), config.rpc_timeout(), tls.clone()),
        store: store.clone(),
        clock,
        catalog: Arc::new(catalog),
        keyring: Arc::new(keyring),
        tiles: Arc::new(tiles),
        rotations: Arc::new(rotations),
        versions: Arc::new(versions),
        holder,
        ttl: config.lease_ttl(),
        actor: Actor::system("credentials"),
        crash_at: config.crash_at,
        retry_delay: config.rotation_retry_delay(),
    };
    if let Some(p) = config.crash_at {
        tracing::warn!(at = ?p, "crash injection is on: this replica exits at that step boundary (tests only)");
    }

    let mut tasks = Tasks::new();
    tilewave_service::watch_policy(&mut tasks, &mut auth);
    tasks.spawn("driver", {
        let ctx = ctx.clone();
        |shutdown| crate::driver::run(ctx, shutdown)
    });
    tasks.spawn("schedules", {
        let ctx = ctx.clone();
        |shutdown| crate::schedule::run(ctx, shutdown)
    });

    let (_reporter, health, reflection) = tilewave_service::standard::health_and_reflection(
        &[<CredentialsServiceServer<Credentials> as NamedService>::NAME],
        tonic_health::ServingStatus::Serving,
    )
    .await?;
    tracing::info!(addr = ?listener.local_addr().ok(), holder = %ctx.holder, "tilewave-credentials serving");
    let result = tilewave_tls::server("tilewave-credentials", tls.as_ref())?
        .layer(tilewave_telemetry::server_layer())
        .layer(tilewave_service::bounded::BoundedMessages)
        .layer(auth.layer())
        .add_service(tilewave_service::sized!(health))
        .add_service(tilewave_service::sized!(reflection))
        .add_service(tilewave_service::sized!(
            auth.whoami(&[tilewave_auth::table::CREDENTIALS])
        ))
        .add_service(tilewave_service::sized!(CredentialsServiceServer::new(
            Credentials::new(ctx.clone())
        )))
        .serve_with_incoming_shutdown(tilewave_service::incoming(listener), shutdown.requested())
        .await;
    tasks.stop(TASK_GRACE).await;
    result?;
    Ok(())
}
