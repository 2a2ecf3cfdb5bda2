//! Clients of the registry and the region agents, all through traced
//! channels so that a request's trace continues into them.
//!
//! Agents register under `agents/<region>` with a lease; the value is the
//! agent's `AgentInfo`, whose `address` this module dials.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tilewave_core::quote::quoted;
use tilewave_proto::ShortName;
use tilewave_proto::agent::v1::AgentInfo;
use tilewave_proto::agent::v1::agent_service_client::AgentServiceClient;
use tilewave_proto::common::v1::TileState;
use tilewave_proto::registry::v1::registry_service_client::RegistryServiceClient;
use tilewave_proto::registry::v1::{AdvanceLifecycleRequest, GetTileRequest, Tile};
use tilewave_store::Store;
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
    let endpoint = tilewave_tls::endpoint(url, tls)
        .map_err(|e| Error::invalid("address", format!("{}: {e}", quoted(url))))?;
    Ok(tilewave_service::transport::configure(endpoint, timeout).connect_lazy())
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

/// The region agents, found through their registrations in etcd.
#[derive(Debug, Clone)]
pub struct Agents {
    store: Store,
    timeout: Duration,
    tls: Option<Tls>,
    channels: Arc<Mutex<HashMap<String, Channel>>>,
}

/// An agent client.
pub type AgentClient = AgentServiceClient<TracedChannel>;

impl Agents {
    /// Agents registered in `store`, called over TLS when `tls` is given.
    pub fn new(store: Store, timeout: Duration, tls: Option<Tls>) -> Self {
        Self {
            store,
            timeout,
            tls,
            channels: Arc::default(),
        }
    }

    /// The deadline of one agent call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn client_for(&self, address: &str) -> Result<AgentClient> {
        let mut channels = self
            .channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let channel = match channels.get(address) {
            Some(c) => c.clone(),
            None => {
                let c = lazy_channel(address, self.timeout, self.tls.as_ref())?;
                channels.insert(address.to_owned(), c.clone());
                c
            }
        };
        Ok(tilewave_service::sized!(AgentServiceClient::new(traced_channel(
            channel
        ))))
    }

    /// The agent of `region`; [`Error::NoAgent`] (UNAVAILABLE) when none is
    /// registered.
    pub async fn client(&self, region: &str) -> Result<AgentClient> {
        let key = self.store.keys().agent(region);
        let mut etcd = self.store.etcd();
        let resp = tokio::time::timeout(self.timeout, etcd.get(key.clone(), None))
            .await
            .map_err(|_| tilewave_store::Error::DeadlineExceeded { op: "get agent" })?
            .map_err(|e| tilewave_store::Error::Unavailable {
                op: "get agent",
                source: Box::new(e),
            })?;
        let address = resp
            .kvs()
            .first()
            .and_then(|kv| address_in(kv.value()))
            .ok_or_else(|| Error::NoAgent {
                region: region.to_owned(),
            })?;
        self.client_for(&address)
    }

    /// Every registered agent: (region, client).
    pub async fn all(&self) -> Result<Vec<(String, AgentClient)>> {
        let prefix = self.store.keys().agents();
        let mut etcd = self.store.etcd();
        let resp = tokio::time::timeout(self.timeout, etcd.get(prefix.clone(), Some(etcd_client_prefix())))
            .await
            .map_err(|_| tilewave_store::Error::DeadlineExceeded { op: "list agents" })?
            .map_err(|e| tilewave_store::Error::Unavailable {
                op: "list agents",
                source: Box::new(e),
            })?;
        let mut out = Vec::new();
        for kv in resp.kvs() {
            let key = String::from_utf8_lossy(kv.key());
            let Some(region) = key.strip_prefix(prefix.as_str()) else {
                continue;
            };
            if region.contains('/') {
                continue;
            }
            if let Some(address) = address_in(kv.value()) {
                out.push((region.to_owned(), self.client_for(&address)?));
            }
        }
        Ok(out)
    }
}

fn etcd_client_prefix() -> etcd_client::GetOptions {
    etcd_client::GetOptions::new().with_prefix()
}

/// The agent's gRPC address in its registration value, an
/// [`AgentInfo`]; `None` when the value is not one or names no address.
pub fn address_in(value: &[u8]) -> Option<String> {
    let info = <AgentInfo as prost::Message>::decode(value).ok()?;
    (!info.address.is_empty()).then_some(info.address)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    #[test]
    fn address_from_the_registration() {
        let info = AgentInfo {
            region: "aws:us-east-1".into(),
            cloud: "aws".into(),
            address: "127.0.0.1:9001".into(),
            ..Default::default()
        };
        assert_eq!(
            address_in(&info.encode_to_vec()).as_deref(),
            Some("127.0.0.1:9001")
        );
        assert_eq!(address_in(&AgentInfo::default().encode_to_vec()), None);
        assert_eq!(address_in(b"\x01\x02garbage"), None);
    }
}
