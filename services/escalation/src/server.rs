//! Serving the escalation service: `serve(listener, config, shutdown)`
//! loads the key-encryption keys (no start without them), connects to
//! etcd, follows the domain clock, starts the ladder's timers, the outbox
//! sender and the events consumer (each on its own owner work), and serves
//! EscalationService with health checking, reflection, WhoAmI and the role
//! check.

use std::sync::Arc;

use tilewave_clients::egress::EgressPolicy;
use tilewave_clients::webhook::{SenderSettings, WebhookSender};
use tilewave_proto::escalation::v1::Incident;
use tilewave_proto::escalation::v1::escalation_service_server::EscalationServiceServer;
use tilewave_store::{
    Actor, Clock, Shutdown, Store, StoreConfig, SystemClock, Tasks, VirtualClock, WatchCache,
};
use tokio::net::TcpListener;
use tonic::server::NamedService;

use crate::config::EscalationConfig;
use crate::model::Ctx;
use crate::service::Escalation;

/// The gRPC health service name the escalation service reports SERVING
/// under (besides the overall "").
pub const HEALTH_SERVICE: &str = "tilewave.escalation.v1.EscalationService";

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
    /// The webhook sender could not be built.
    #[error("webhook sender: {0}")]
    Sender(String),
    /// The rollout service's address is not usable.
    #[error("--rollout: {0}")]
    Rollout(String),
    /// The credentials service's address is not usable.
    #[error("--credentials: {0}")]
    CredentialsAddr(String),
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

/// Serves the escalation service on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    config: EscalationConfig,
    shutdown: Shutdown,
) -> Result<(), ServeError> {
    let keyring = config.keyring().map_err(ServeError::Keys)?;
    let tls = config.tls.load()?;
    let mut auth = tilewave_auth::ServerAuth::new(
        "tilewave-escalation",
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
    let incidents = WatchCache::<Incident>::children(&store, &store.keys().incidents()).await?;
    let sender = WebhookSender::new(
        EgressPolicy::new(&config.webhook_hosts).with_networks(&config.egress_networks),
        &SenderSettings::default(),
    )
    .map_err(|e| ServeError::Sender(e.to_string()))?;
    let rollout = match &config.rollout {
        None => None,
        Some(url) => Some(
            tilewave_clients::lazy_channel(url, config.rpc_timeout(), tls.as_ref())
                .map_err(|e| ServeError::Rollout(e.to_string()))?,
        ),
    };
    let credentials = match &config.credentials {
        None => None,
        Some(url) => Some(
            tilewave_clients::lazy_channel(url, config.rpc_timeout(), tls.as_ref())
                .map_err(|e| ServeError::CredentialsAddr(e.to_string()))?,
        ),
    };
    let holder = config
        .replica
        .clone()
        .unwrap_or_else(|| format!("escalation-{}-{:08x}", std::process::id(), rand::random::<u32>()));
    tracing::info!(primary_kek = %keyring.primary().id(), "key-encryption keys loaded");
    let ctx = Ctx {
        store: store.clone(),
        clock,
        keyring: Arc::new(keyring),
        incidents: Arc::new(incidents),
        sender,
        backoff: config.backoff(),
        rollout,
        credentials,
        holder,
        ttl: config.lease_ttl(),
        actor: Actor::system("escalation"),
        event_retention: config.event_retention(),
    };

    let mut tasks = Tasks::new();
    tilewave_service::watch_policy(&mut tasks, &mut auth);
    tasks.spawn("ladder", {
        let ctx = ctx.clone();
        |shutdown| crate::ladder::run(ctx, shutdown)
    });
    tasks.spawn("sender", {
        let ctx = ctx.clone();
        |shutdown| crate::sender::run(ctx, shutdown)
    });
    tasks.spawn("events", {
        let ctx = ctx.clone();
        |shutdown| crate::events::run(ctx, shutdown)
    });

    let (_reporter, health, reflection) = tilewave_service::standard::health_and_reflection(
        &[<EscalationServiceServer<Escalation> as NamedService>::NAME],
        tonic_health::ServingStatus::Serving,
    )
    .await?;
    tracing::info!(addr = ?listener.local_addr().ok(), holder = %ctx.holder, "tilewave-escalation serving");
    let result = tilewave_tls::server("tilewave-escalation", tls.as_ref())?
        .layer(tilewave_telemetry::server_layer())
        .layer(tilewave_service::bounded::BoundedMessages)
        .layer(auth.layer())
        .add_service(tilewave_service::sized!(health))
        .add_service(tilewave_service::sized!(reflection))
        .add_service(tilewave_service::sized!(
            auth.whoami(&[tilewave_auth::table::ESCALATION])
        ))
        .add_service(tilewave_service::sized!(EscalationServiceServer::new(
            Escalation::new(ctx.clone())
        )))
        .serve_with_incoming_shutdown(tilewave_service::incoming(listener), shutdown.requested())
        .await;
    tasks.stop(TASK_GRACE).await;
    result?;
    Ok(())
}
