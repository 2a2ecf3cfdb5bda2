//! Serving the registry: `serve(listener, config, shutdown)` connects to
//! etcd, follows the domain clock, starts the tile cache and serves the
//! registry with gRPC health checking and server reflection, every RPC
//! traced by the telemetry layer, until `shutdown` is requested. Its
//! background tasks: re-reading the access policy file when one is given,
//! and audit retention (owned by one replica, `owners/audit-retention`:
//! old audit records folded into daily summaries, docs/design.md
//! "Housekeeping"). Its watch streams end with their clients.

use std::sync::Arc;

use tilewave_proto::registry::v1::registry_service_server::RegistryServiceServer;
use tilewave_service::encoded::WithEncoded;
use tilewave_store::{Shutdown, Store, StoreConfig, Tasks};
use tokio::net::TcpListener;
use tonic::server::NamedService;

use crate::config::RegistryConfig;
use crate::service::Registry;

/// The gRPC health service name the registry reports SERVING under (besides
/// the overall "").
pub const HEALTH_SERVICE: &str = "tilewave.registry.v1.RegistryService";

/// How long the policy watcher may take to stop.
const TASK_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// etcd could not be reached or refused.
    #[error("etcd: {0}")]
    Store(#[from] tilewave_store::Error),
    /// The registry's own start-up failed.
    #[error("{0}")]
    Registry(#[from] crate::error::Error),
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

/// Serves the registry on `listener` until `shutdown` is requested.
pub async fn serve(
    listener: TcpListener,
    config: RegistryConfig,
    shutdown: Shutdown,
) -> Result<(), ServeError> {
    let tls = config.tls.load()?;
    let mut auth = tilewave_auth::ServerAuth::new(
        "tilewave-registry",
        tls.is_some(),
        config.policy.policy.as_deref(),
    )?;
    let store_config = StoreConfig::new(config.etcd.clone())
        .with_prefix(config.prefix.clone())
        .with_op_timeout(config.etcd_timeout())
        .with_tls(tls.as_ref().map(tilewave_tls::Tls::client_config));
    let store = Store::connect(store_config).await?;
    tracing::info!("connected to etcd");
    let clock = tilewave_store::clock::domain_clock(&store).await?;
    tracing::info!(virtual_clock = clock.is_virtual(), "domain clock ready");
    let store = store.with_clock(Arc::clone(&clock));
    let registry = Registry::new(store.clone(), clock).await?;
    tracing::info!("tile cache ready");
    // GetHistory reads the audit index: records from before it get their
    // entries before this replica serves (once per store; later starts
    // find the mark).
    let indexed =
        tilewave_store::retention::backfill_index(&store, &tilewave_store::Actor::system("registry")).await?;
    if indexed > 0 {
        tracing::info!(
            indexed,
            "audit records written before the audit index now have their entries"
        );
    }

    let (_reporter, health, reflection) = tilewave_service::standard::health_and_reflection(
        &[<RegistryServiceServer<Registry> as NamedService>::NAME],
        tonic_health::ServingStatus::Serving,
    )
    .await?;

    // Background tasks: re-reading the access policy file; audit retention.
    let mut tasks = Tasks::new();
    tilewave_service::watch_policy(&mut tasks, &mut auth);
    if let Some(retention) = config.audit_retention() {
        let holder = config
            .replica
            .clone()
            .unwrap_or_else(|| format!("registry-{}-{:08x}", std::process::id(), rand::random::<u32>()));
        let ttl = config.lease_ttl();
        tracing::info!(keep = %retention.keep, %holder, "audit retention on");
        tasks.spawn("audit-retention", move |shutdown| {
            tilewave_store::retention::run(
                store,
                holder,
                ttl,
                tilewave_store::Actor::system("registry"),
                retention,
                shutdown,
            )
        });
    }

    tracing::info!(addr = ?listener.local_addr().ok(), "tilewave-registry serving");
    let (tiles, lists) = (registry.clone(), registry.clone());
    let result = tilewave_tls::server("tilewave-registry", tls.as_ref())?
        .layer(tilewave_telemetry::server_layer())
        .layer(tilewave_service::bounded::BoundedMessages)
        .layer(auth.layer())
        .add_service(tilewave_service::sized!(health))
        .add_service(tilewave_service::sized!(reflection))
        .add_service(tilewave_service::sized!(
            auth.whoami(&[tilewave_auth::table::REGISTRY])
        ))
        // GetTile and ListTiles answer with kept encodings when they can
        // (`encoded.rs`); every other call goes to the generated server.
        .add_service(WithEncoded::new(
            WithEncoded::new(
                tilewave_service::sized!(RegistryServiceServer::new(registry.clone())),
                crate::encoded::GET_TILE_PATH,
                tower::service_fn(move |req| {
                    let registry = tiles.clone();
                    async move { registry.get_tile_encoded(req).await }
                }),
            ),
            crate::encoded::LIST_TILES_PATH,
            tower::service_fn(move |req| {
                let registry = lists.clone();
                async move { registry.list_tiles_encoded(req).await }
            }),
        ))
        .serve_with_incoming_shutdown(tilewave_service::incoming(listener), shutdown.requested())
        .await;
    tasks.stop(TASK_GRACE).await;
    result?;
    Ok(())
}
