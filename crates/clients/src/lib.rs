//! Clients every service shares, all through traced channels so that a
//! request's trace continues into them.
//!
//! [`Agents`]: the region agents. Agents register under `agents/<region>`
//! with a lease; the value is the agent's `AgentInfo`, whose `address` this
//! module dials (over mutual TLS when the service has TLS files). One
//! channel per address is kept and reused.
//!
//! [`egress`]: where any tilewave HTTP client may send traffic (loopback,
//! or allowed names resolving to loopback; refused hosts are never
//! resolved), and the reqwest client built on that allow-list. The agent's
//! partner probe and [`webhook`] both use it.
//!
//! [`webhook`]: signed webhook delivery (one attempt, a typed outcome) and
//! the back-off between attempts.

pub mod egress;
pub mod health;
pub mod webhook;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tilewave_core::quote::quoted;
use tilewave_proto::agent::v1::AgentInfo;
use tilewave_proto::agent::v1::agent_service_client::AgentServiceClient;
use tilewave_store::{Store, WatchCache};
use tilewave_telemetry::{TracedChannel, traced_channel};
use tilewave_tls::Tls;
use tonic::transport::Channel;

/// Why an agent cannot be called.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// No agent is registered for the region.
    #[error("no agent is registered for region {region}: is its tilewave-agent running?")]
    NoAgent {
        /// The region.
        region: String,
    },
    /// The registered address cannot be dialled.
    #[error("agent address {address}: {message}")]
    BadAddress {
        /// The address, quoted.
        address: String,
        /// What is wrong with it.
        message: String,
    },
    /// etcd could not be read.
    #[error("{0}")]
    Store(#[from] tilewave_store::Error),
}

/// A channel to `url` (`host:port` or a URL), with TLS when `tls` is given
/// (`tilewave_tls::endpoint`: the scheme becomes `https`), and the house's
/// transport settings (a deadline on every call, keep-alive:
/// `tilewave_service::transport`), connected on first use.
pub fn lazy_channel(url: &str, timeout: Duration, tls: Option<&Tls>) -> Result<Channel, AgentError> {
    let endpoint = tilewave_tls::endpoint(url, tls).map_err(|e| AgentError::BadAddress {
        address: quoted(url).to_string(),
        message: e.to_string(),
    })?;
    Ok(tilewave_service::transport::configure(endpoint, timeout).connect_lazy())
}

/// The region agents, found through their registrations in etcd.
#[derive(Debug, Clone)]
pub struct Agents {
    store: Store,
    timeout: Duration,
    tls: Option<Tls>,
    channels: Arc<Mutex<HashMap<String, Channel>>>,
    /// The registrations, kept by a watch ([`Agents::watching`]): a call
    /// to an agent then needs no etcd read first.
    registrations: Option<Arc<WatchCache<AgentInfo>>>,
}

/// An agent client.
pub type AgentClient = AgentServiceClient<TracedChannel>;

impl Agents {
    /// Agents registered in `store`, called over TLS when `tls` is given.
    /// Each call reads the region's registration from etcd first.
    pub fn new(store: Store, timeout: Duration, tls: Option<Tls>) -> Self {
        Self {
            store,
            timeout,
            tls,
            channels: Arc::default(),
            registrations: None,
        }
    }

    /// [`Agents::new`] with the registrations kept in a watch cache, for a
    /// service that calls agents all the time (the rollout service: one
    /// call per region and wave, which read etcd first, an extra round trip
    /// per apply in issue 18's overhead run). A region the cache does not
    /// hold yet (an agent that registered a moment ago) is still read from
    /// etcd; a cached address that went stale (an agent restarted on
    /// another port, for the milliseconds the watch lags) fails its call
    /// as an unreachable agent does, and the caller's retry finds the new
    /// one.
    pub async fn watching(store: Store, timeout: Duration, tls: Option<Tls>) -> tilewave_store::Result<Self> {
        let cache = WatchCache::<AgentInfo>::children(&store, &store.keys().agents()).await?;
        Ok(Self {
            registrations: Some(Arc::new(cache)),
            ..Self::new(store, timeout, tls)
        })
    }

    /// The deadline of one agent call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn client_for(&self, address: &str) -> Result<AgentClient, AgentError> {
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

    /// The agent of `region`; [`AgentError::NoAgent`] when none is
    /// registered.
    pub async fn client(&self, region: &str) -> Result<AgentClient, AgentError> {
        let key = self.store.keys().agent(region);
        let cached = self
            .registrations
            .as_ref()
            .and_then(|c| c.get(&key))
            .map(|v| v.value.address)
            .filter(|a| !a.is_empty());
        if let Some(address) = cached {
            return self.client_for(&address);
        }
        let mut etcd = self.store.kv();
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
            .ok_or_else(|| AgentError::NoAgent {
                region: region.to_owned(),
            })?;
        self.client_for(&address)
    }

    /// Whether the registrations cache shows an agent in every one of
    /// `regions` (false without a cache): a pre-flight that needs no etcd
    /// read when it holds. A region it does not show (an agent that
    /// registered a moment ago, or none) is for [`Agents::all`] to answer.
    pub fn cached_in_all<'a>(&self, regions: impl IntoIterator<Item = &'a str>) -> bool {
        let Some(cache) = &self.registrations else {
            return false;
        };
        let keys = self.store.keys();
        regions.into_iter().all(|region| {
            cache
                .get(&keys.agent(region))
                .is_some_and(|v| !v.value.address.is_empty())
        })
    }

    /// Every registered agent: (region, client).
    pub async fn all(&self) -> Result<Vec<(String, AgentClient)>, AgentError> {
        let prefix = self.store.keys().agents();
        let mut etcd = self.store.kv();
        let resp = tokio::time::timeout(
            self.timeout,
            etcd.get(prefix.clone(), Some(etcd_client::GetOptions::new().with_prefix())),
        )
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

    #[test]
    fn errors_say_what_to_do() {
        let e = AgentError::NoAgent {
            region: "gcp:me-central2".into(),
        };
        assert!(e.to_string().contains("tilewave-agent running"), "{e}");
    }
}
