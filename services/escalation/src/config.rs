//! The escalation service's configuration: a typed struct read from flags
//! and the environment, with defaults as named constants.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Where the escalation service listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7404";
/// The etcd endpoint of a local stack.
pub const DEFAULT_ETCD: &str = "http://127.0.0.1:2379";
/// The key prefix every tilewave key lives under.
pub const DEFAULT_PREFIX: &str = "/tilewave/";
/// How long consumed events are kept by default: 30 days.
pub const DEFAULT_EVENT_RETENTION_HOURS: u32 = 30 * 24;
/// How long one etcd operation may take.
pub const DEFAULT_ETCD_TIMEOUT_MS: u64 = 5_000;
/// TTL of the leases behind owned work.
pub const DEFAULT_LEASE_TTL_MS: u64 = 5_000;
/// Deadline of one call to another service.
pub const DEFAULT_RPC_TIMEOUT_MS: u64 = 10_000;
/// The wait after a webhook's first failed attempt (doubling, capped).
pub const DEFAULT_RETRY_FIRST_MS: u64 = 1_000;
/// The longest wait between two attempts of a webhook.
pub const DEFAULT_RETRY_CAP_MS: u64 = 60_000;
/// How many attempts a webhook gets in all.
pub const DEFAULT_RETRY_ATTEMPTS: u32 = 10;

/// `tilewave-escalation`: incidents, escalation ladders, on-call schedules
/// and SOPs.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "tilewave-escalation", version, about, long_about = None,
          after_help = "Health check (containers): tilewave-escalation health [--addr HOST:PORT] exits 0 when the server beside it is SERVING (tilewave-escalation health --help).")]
pub struct EscalationConfig {
    /// Address to serve gRPC on.
    #[arg(long, env = "TILEWAVE_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// etcd client URLs, comma separated.
    #[arg(long, env = "TILEWAVE_ETCD", value_delimiter = ',', default_value = DEFAULT_ETCD)]
    pub etcd: Vec<String>,
    /// Key prefix in etcd.
    #[arg(long, env = "TILEWAVE_PREFIX", default_value = DEFAULT_PREFIX)]
    pub prefix: String,
    /// Deadline of one etcd operation, in milliseconds.
    #[arg(long, env = "TILEWAVE_ETCD_TIMEOUT_MS", default_value_t = DEFAULT_ETCD_TIMEOUT_MS)]
    pub etcd_timeout_ms: u64,
    /// The key-encryption keys sealing the webhook signing secrets: a file
    /// of `id:base64key` lines, the first primary (as the credentials
    /// service's). Without it, `TILEWAVE_KEK` holds the same entries comma
    /// separated; without either the service does not start.
    #[arg(long, env = "TILEWAVE_KEK_FILE", value_name = "PATH")]
    pub kek_file: Option<PathBuf>,
    /// The rollout service (`host:port` or a URL), for pausing and rolling
    /// back roll-outs; without it those mitigations are refused.
    #[arg(long, env = "TILEWAVE_ROLLOUT")]
    pub rollout: Option<String>,
    /// The credentials service (`host:port` or a URL), for starting an
    /// emergency credential rotation; without it that mitigation is
    /// refused.
    #[arg(long, env = "TILEWAVE_CREDENTIALS")]
    pub credentials: Option<String>,
    /// Lease TTL of owned work, in milliseconds (at least 2000).
    #[arg(long, env = "TILEWAVE_LEASE_TTL_MS", default_value_t = DEFAULT_LEASE_TTL_MS)]
    pub lease_ttl_ms: u64,
    /// Deadline of one call to another service, in milliseconds.
    #[arg(long, env = "TILEWAVE_RPC_TIMEOUT_MS", default_value_t = DEFAULT_RPC_TIMEOUT_MS)]
    pub rpc_timeout_ms: u64,
    /// Host names webhooks may be sent to besides loopback (the egress
    /// allow-list), comma separated.
    #[arg(long, env = "TILEWAVE_WEBHOOK_HOSTS", value_delimiter = ',')]
    pub webhook_hosts: Vec<String>,
    /// Networks (CIDR, comma separated) the webhook hosts may resolve into
    /// besides loopback: a deployment's own container network (`deploy/`
    /// uses 10.77.0.0/24). Nothing else is ever connected to.
    #[arg(
        long = "egress-network",
        env = "TILEWAVE_EGRESS_NETWORKS",
        value_delimiter = ','
    )]
    pub egress_networks: Vec<ipnet::IpNet>,
    /// The wait after a webhook's first failed attempt, in milliseconds
    /// (real time; it doubles up to `--webhook-retry-cap-ms`).
    #[arg(long, env = "TILEWAVE_WEBHOOK_RETRY_FIRST_MS", default_value_t = DEFAULT_RETRY_FIRST_MS)]
    pub webhook_retry_first_ms: u64,
    /// The longest wait between two attempts, in milliseconds.
    #[arg(long, env = "TILEWAVE_WEBHOOK_RETRY_CAP_MS", default_value_t = DEFAULT_RETRY_CAP_MS)]
    pub webhook_retry_cap_ms: u64,
    /// How many attempts a webhook gets in all.
    #[arg(long, env = "TILEWAVE_WEBHOOK_RETRY_ATTEMPTS", default_value_t = DEFAULT_RETRY_ATTEMPTS)]
    pub webhook_retry_attempts: u32,
    /// Consumed events older than this many hours (domain time) are
    /// deleted from `events/`; 0 keeps them. The default is 30 days: long
    /// past any launch week. The rollout service creates some events only
    /// if absent (DEADLINE_AT_RISK once per tile, revision and GA moment),
    /// so a launch still at risk more than 30 days after its first warning
    /// is warned about again (folded into the open incident, or a new one
    /// linked to a resolved one), which is what an on-call wants.
    #[arg(long, env = "TILEWAVE_EVENT_RETENTION_HOURS", default_value_t = DEFAULT_EVENT_RETENTION_HOURS)]
    pub event_retention_hours: u32,
    /// This replica's name in owner records; default `escalation-<pid>-<random>`.
    #[arg(long, env = "TILEWAVE_REPLICA")]
    pub replica: Option<String>,
    /// Address to serve Prometheus `/metrics` on; none when unset.
    #[arg(long, env = "TILEWAVE_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// TLS: this process's certificate, key and the CA of its peers.
    #[command(flatten)]
    pub tls: tilewave_tls::TlsArgs,
    /// The access policy the role check uses when TLS is on.
    #[command(flatten)]
    pub policy: tilewave_auth::PolicyArgs,
}

impl EscalationConfig {
    /// The key-encryption keys: `--kek-file`, else `TILEWAVE_KEK`. The
    /// error says which to set; it never shows key material.
    pub fn keyring(&self) -> Result<tilewave_secrets::Keyring, String> {
        match &self.kek_file {
            Some(path) => tilewave_secrets::Keyring::from_file(path).map_err(|e| format!("--kek-file: {e}")),
            None => tilewave_secrets::Keyring::from_env(tilewave_secrets::KEK_ENV).map_err(|e| {
                format!(
                    "no key-encryption key: give --kek-file PATH (TILEWAVE_KEK_FILE) or set {} \
                     (`tilewave dev up` makes a development key): {e}",
                    tilewave_secrets::KEK_ENV
                )
            }),
        }
    }

    /// The etcd operation deadline.
    pub fn etcd_timeout(&self) -> Duration {
        Duration::from_millis(self.etcd_timeout_ms)
    }

    /// The lease TTL of owned work.
    pub fn lease_ttl(&self) -> Duration {
        Duration::from_millis(self.lease_ttl_ms)
    }

    /// The deadline of one call to another service.
    pub fn rpc_timeout(&self) -> Duration {
        Duration::from_millis(self.rpc_timeout_ms)
    }

    /// How long consumed events are kept; `None`: forever.
    pub fn event_retention(&self) -> Option<jiff::SignedDuration> {
        (self.event_retention_hours > 0)
            .then(|| jiff::SignedDuration::from_hours(i64::from(self.event_retention_hours)))
    }

    /// The webhook retry policy.
    pub fn backoff(&self) -> tilewave_clients::webhook::Backoff {
        tilewave_clients::webhook::Backoff {
            first: Duration::from_millis(self.webhook_retry_first_ms),
            cap: Duration::from_millis(self.webhook_retry_cap_ms.max(self.webhook_retry_first_ms)),
            jitter_percent: 20,
            max_attempts: self.webhook_retry_attempts.max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[test]
    fn defaults_and_a_missing_kek_says_what_to_set() {
        let c = EscalationConfig::try_parse_from(["tilewave-escalation", "--insecure"]).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.backoff().max_attempts, DEFAULT_RETRY_ATTEMPTS);
        if std::env::var_os(tilewave_secrets::KEK_ENV).is_none() {
            let e = c.keyring().unwrap_err();
            assert!(e.contains("--kek-file"), "{e}");
        }
    }
}
