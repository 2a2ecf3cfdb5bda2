//! Serving the agent: `serve(listener, config, shutdown)` checks the
//! configuration and the refuse-to-start flag, opens the catalog, connects
//! to etcd, serves AgentService (and, when enabled, FaultInjectionService)
//! with gRPC health checking and reflection, every RPC traced by the
//! telemetry layer; registers under `agents/<region>` and only then reports
//! SERVING; probes tiles in the background; deregisters on shutdown. Both
//! are named background tasks ([`Tasks`]), stopped once the server has
//! stopped on `shutdown`: the prober first, the registration last.
//!
//! Once SERVING, the agent stays SERVING while it re-registers after a lost
//! lease (e.g. during an etcd outage): its catalog does not depend on etcd,
//! and callers that already know its address can keep applying.

use std::sync::Arc;

use tilewave_clients::egress::EgressPolicy;
use tilewave_proto::agent::v1::AgentInfo;
use tilewave_proto::agent::v1::agent_service_server::AgentServiceServer;
use tilewave_proto::agent::v1::fault_injection_service_server::FaultInjectionServiceServer;
use tilewave_store::clock::to_proto_timestamp;
use tilewave_store::{Shutdown, Store, StoreConfig, Tasks};
use tokio::net::TcpListener;

use crate::config::AgentConfig;
use crate::fault_injection::FaultInjector;
use crate::persist::DataDir;
use crate::probe::ClientSettings;
use crate::registration::Registration;
use crate::service::{Agent, AgentSettings};

/// The gRPC health service name the agent reports SERVING under (and the
/// overall `""`), once it is registered in etcd.
pub const HEALTH_SERVICE: &str = "tilewave.agent.v1.AgentService";

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration is wrong; every problem is listed.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The refuse-to-start flag is set.
    #[error(
        "refusing to start: the refuse-to-start flag {flag} is set (FaultInjectionService.RefuseToStart); \
         remove the file, or call ClearFaults on a running agent, to let the agent start"
    )]
    RefusedToStart {
        /// The flag file.
        flag: String,
    },
    /// The catalog could not be opened.
    #[error("catalog: {0}")]
    Catalog(#[from] crate::error::Error),
    /// etcd could not be reached or refused.
    #[error("etcd: {0}")]
    Store(#[from] tilewave_store::Error),
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
    /// The listener has no local address.
    #[error("listener: {0}")]
    Listener(#[from] std::io::Error),
}

/// How long a background task may take to stop before it is aborted.
const TASK_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Serves the agent on `listener` until `shutdown` is requested, then stops
/// its background tasks (the prober, then the registration).
pub async fn serve(listener: TcpListener, config: AgentConfig, shutdown: Shutdown) -> Result<(), ServeError> {
    let resolved = config.resolve()?;
    let config = resolved.config;
    let data = DataDir::new(&config.data_dir);
    if data.refuse_flag() {
        return Err(ServeError::RefusedToStart {
            flag: data.refuse_flag_path().display().to_string(),
        });
    }
    let local = listener.local_addr()?;
    let tls = config.tls.load()?;
    let mut auth =
        tilewave_auth::ServerAuth::new("tilewave-agent", tls.is_some(), config.policy.policy.as_deref())?;

    let store_config = StoreConfig::new(config.etcd.clone())
        .with_prefix(config.prefix.clone())
        .with_op_timeout(config.etcd_timeout())
        .with_tls(tls.as_ref().map(tilewave_tls::Tls::client_config));
    let store = Store::connect(store_config).await?;
    let clock = tilewave_store::clock::domain_clock(&store).await?;
    let store = store.with_clock(Arc::clone(&clock));

    let settings = AgentSettings {
        region: config.region.clone(),
        cloud: resolved.cloud,
        probe_policy: EgressPolicy::new(&config.allow_probe_hosts).with_networks(&config.egress_networks),
        error_window: config.error_window,
        error_rate_threshold: config.error_rate_threshold,
        client: ClientSettings {
            retry_delays: config.partner_retry_delays.clone(),
            ca_pem: resolved.partner_ca_pem.clone(),
            ..ClientSettings::default()
        },
        keyring: resolved.keyring.clone(),
    };
    match &settings.keyring {
        Some(ring) => tracing::info!(keks = %ring, "credentials are sealed with the key ring"),
        None => {
            tracing::warn!("no key-encryption key (--kek-file or TILEWAVE_KEK): InstallCredential is refused")
        }
    }
    let agent = Agent::open(settings, data, Arc::clone(&clock)).await?;

    // NOT_SERVING until the agent has registered (below).
    let (reporter, health, reflection) = tilewave_service::standard::health_and_reflection(
        &[HEALTH_SERVICE],
        tonic_health::ServingStatus::NotServing,
    )
    .await?;

    let fault_injection = config.enable_fault_injection.then(|| {
        tilewave_service::sized!(FaultInjectionServiceServer::new(FaultInjector::new(
            agent.clone()
        )))
    });
    if fault_injection.is_some() {
        tracing::warn!("fault injection is enabled: tests and chaos runs only");
    }
    let hosted: &[&'static str] = match fault_injection {
        Some(_) => &[tilewave_auth::table::AGENT, tilewave_auth::table::FAULTS],
        None => &[tilewave_auth::table::AGENT],
    };
    let server = tilewave_tls::server("tilewave-agent", tls.as_ref())?
        .layer(tilewave_telemetry::server_layer())
        .layer(tilewave_service::bounded::BoundedMessages)
        .layer(auth.layer())
        .add_service(tilewave_service::sized!(health))
        .add_service(tilewave_service::sized!(reflection))
        .add_service(tilewave_service::sized!(auth.whoami(hosted)))
        .add_service(tilewave_service::sized!(AgentServiceServer::new(agent.clone())))
        .add_optional_service(fault_injection)
        .serve_with_incoming_shutdown(tilewave_service::incoming(listener), shutdown.requested());
    tokio::pin!(server);
    tracing::info!(addr = %local, region = %config.region, "tilewave-agent serving");

    let info = AgentInfo {
        region: config.region.clone(),
        cloud: resolved.cloud.as_str().to_owned(),
        address: config.advertise.clone().unwrap_or_else(|| local.to_string()),
        started_at: Some(to_proto_timestamp(clock.now())),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    // The background tasks, each under its name with its shutdown signal,
    // stopped last-started-first: the prober, then the registration
    // (deregistered last: the agent answers until it stops).
    let mut tasks = Tasks::new();
    tilewave_service::watch_policy(&mut tasks, &mut auth);
    let registration = Registration::start(
        &mut tasks,
        store.clone(),
        store.keys().agent(&config.region),
        info,
        config.lease_ttl(),
    );
    let registered = tokio::select! {
        r = &mut server => Err(r),
        () = registration.registered() => Ok(()),
    };
    if let Err(result) = registered {
        tasks.stop(TASK_GRACE).await;
        return Ok(result?);
    }
    tilewave_service::standard::report(&reporter, &[HEALTH_SERVICE], tonic_health::ServingStatus::Serving)
        .await;

    tasks.spawn("prober", {
        let agent = agent.clone();
        let every = config.probe_interval;
        move |shutdown| async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = shutdown.requested() => return,
                }
                tokio::select! {
                    () = agent.probe_all() => {}
                    () = shutdown.requested() => return,
                }
            }
        }
    });

    let result = server.await;
    tasks.stop(TASK_GRACE).await;
    tracing::info!("tilewave-agent stopped");
    Ok(result?)
}
