//! Clients of the registry and the region agents, all through traced
//! channels so that a request's trace continues into them. The agents'
//! directory is the shared `tilewave_clients::Agents`.

use std::time::Duration;

use tilewave_core::quote::quoted;
use tilewave_proto::ShortName;
use tilewave_proto::common::v1::TileState;
use tilewave_proto::registry::v1::registry_service_client::RegistryServiceClient;
use tilewave_proto::registry::v1::{AdvanceLifecycleRequest, GetTileRequest, Tile};
use tilewave_telemetry::{TracedChannel, traced_channel};
use tilewave_tls::Tls;
use tonic::transport::Channel;

use crate::error::{Error, Result};

/// The actor the rollout service names itself as on its own calls.
pub const SYSTEM_ACTOR: &str = "system:rollout";

/// Attaches the service's actor and a deadline to a request.
pub fn request<T>(msg: T, timeout: Duration) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.set_timeout(timeout);
    if let Ok(v) = SYSTEM_ACTOR.parse() {
        r.metadata_mut().insert(tilewave_store::actor::ACTOR_HEADER, v);
    }
    r
}

/// A channel to `url` (`host:port` or a URL), with TLS when the service
/// has TLS files (`tilewave_tls::endpoint`: the scheme becomes `https`),
/// and the house's transport settings (a deadline on every call,
/// keep-alive: `tilewave_service::transport`).
fn lazy_channel(url: &str, timeout: Duration, tls: Option<&Tls>) -> Result<Channel> {
    Ok(tilewave_clients::lazy_channel(url, timeout, tls)?)
}

/// The registry: read tiles, move their lifecycle.
#[derive(Debug, Clone)]
pub struct Registry {
    client: RegistryServiceClient<TracedChannel>,
    timeout: Duration,
}

impl Registry {
    /// A client of the registry at `url` (connected on first use), over
    /// TLS when `tls` is given.
    pub fn new(url: &str, timeout: Duration, tls: Option<&Tls>) -> Result<Self> {
        let channel = lazy_channel(url, timeout, tls)?;
        Ok(Self {
            client: tilewave_service::sized!(RegistryServiceClient::new(traced_channel(channel))),
            timeout,
        })
    }

    /// A tile (at `revision`, 0: latest).
    pub async fn get_tile(&self, id: &str, revision: i64) -> Result<Tile> {
        let resp = self
            .client
            .clone()
            .get_tile(request(
                GetTileRequest {
                    id: id.to_owned(),
                    revision,
                },
                self.timeout,
            ))
            .await
            .map_err(|s| Error::remote(format!("registry GetTile {}", quoted(id)), s))?;
        resp.into_inner()
            .tile
            .ok_or_else(|| Error::NotFound(format!("the registry returned no tile for {}", quoted(id))))
    }

    /// Sets a tile's GA date on behalf of `actor` (the registry checks the
    /// rules and the go-to-market gate, and with `slot_capacity` > 0 books
    /// the slot in the same transaction). The registry's refusal comes back
    /// as its own status.
    pub async fn set_ga_date(
        &self,
        actor: &str,
        req: tilewave_proto::registry::v1::SetGaDateRequest,
    ) -> std::result::Result<Tile, tonic::Status> {
        let id = req.id.clone();
        let mut r = request(req, self.timeout);
        if let Ok(v) = actor.parse() {
            r.metadata_mut().insert(tilewave_store::actor::ACTOR_HEADER, v);
        }
        let resp = self.client.clone().set_ga_date(r).await?;
        resp.into_inner().tile.ok_or_else(|| {
            tonic::Status::internal(format!("the registry returned no tile for {}", quoted(&id)))
        })
    }

    /// Moves a tile's lifecycle (the registry checks the transition).
    pub async fn advance(
        &self,
        id: &str,
        target: TileState,
        expected_revision: i64,
        reason: &str,
        rollout_id: &str,
    ) -> Result<Tile> {
        let resp = self
            .client
            .clone()
            .advance_lifecycle(request(
                AdvanceLifecycleRequest {
                    id: id.to_owned(),
                    target_state: target as i32,
                    expected_revision,
                    reason: reason.to_owned(),
                    rollout_id: rollout_id.to_owned(),
                    etag: 0,
                },
                self.timeout,
            ))
            .await
            .map_err(|s| {
                Error::remote(
                    format!(
                        "registry AdvanceLifecycle {} to {}",
                        quoted(id),
                        target.short_name()
                    ),
                    s,
                )
            })?;
        resp.into_inner()
            .tile
            .ok_or_else(|| Error::NotFound(format!("the registry returned no tile for {}", quoted(id))))
    }
}

/// The region agents: the shared directory ([`tilewave_clients::Agents`]).
pub use tilewave_clients::{AgentClient, Agents};

impl From<tilewave_clients::AgentError> for Error {
    fn from(e: tilewave_clients::AgentError) -> Self {
        match e {
            tilewave_clients::AgentError::NoAgent { region } => Error::NoAgent { region },
            tilewave_clients::AgentError::BadAddress { address, message } => {
                Error::invalid("address", format!("{address}: {message}"))
            }
            tilewave_clients::AgentError::Store(e) => Error::from(e),
        }
    }
}
