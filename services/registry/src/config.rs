//! The registry's configuration: a typed struct read from flags and the
//! environment, with defaults as named constants.

use std::net::SocketAddr;
use std::time::Duration;

/// Where the registry listens unless told otherwise: loopback only, until
/// the security work brings mTLS.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7401";
/// The etcd endpoint of a local stack.
pub const DEFAULT_ETCD: &str = "http://127.0.0.1:2379";
/// The key prefix every tilewave key lives under.
pub const DEFAULT_PREFIX: &str = "/tilewave/";
/// How long one etcd operation may take before the call fails UNAVAILABLE.
pub const DEFAULT_ETCD_TIMEOUT_MS: u64 = 5_000;
/// Audit records older than this many days are folded into daily summaries.
pub const DEFAULT_AUDIT_RETENTION_DAYS: u32 = 90;
/// The wait between two audit-retention passes with nothing left to fold.
pub const DEFAULT_AUDIT_RETENTION_INTERVAL_MS: u64 = 600_000;
/// The lease TTL of owned work (audit retention): a replica that stops
/// renewing loses it after this long.
pub const DEFAULT_LEASE_TTL_MS: u64 = 5_000;

/// `tilewave-registry`: the tile registry service.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "tilewave-registry", version, about, long_about = None,
          after_help = "Health check (containers): tilewave-registry health [--addr HOST:PORT] exits 0 when the server beside it is SERVING (tilewave-registry health --help).")]
pub struct RegistryConfig {
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
    /// Address to serve Prometheus `/metrics` on; none when unset.
    #[arg(long, env = "TILEWAVE_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Audit records (of every service) older than this many days of domain
    /// time are folded into one summary per object and UTC day and removed
    /// (one replica does it); GetHistory returns the summaries for those
    /// days. 0 keeps every record.
    #[arg(long, env = "TILEWAVE_AUDIT_RETENTION_DAYS", default_value_t = DEFAULT_AUDIT_RETENTION_DAYS)]
    pub audit_retention_days: u32,
    /// Milliseconds (real time) between two audit-retention passes once
    /// nothing is left to fold.
    #[arg(long, env = "TILEWAVE_AUDIT_RETENTION_INTERVAL_MS", default_value_t = DEFAULT_AUDIT_RETENTION_INTERVAL_MS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub audit_retention_interval_ms: u64,
    /// The lease TTL of owned work (audit retention), in milliseconds.
    #[arg(long, env = "TILEWAVE_LEASE_TTL_MS", default_value_t = DEFAULT_LEASE_TTL_MS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub lease_ttl_ms: u64,
    /// This replica's name in owner records; default `registry-<pid>-<random>`.
    #[arg(long, env = "TILEWAVE_REPLICA")]
    pub replica: Option<String>,
    /// TLS: this process's certificate, key and the CA of its peers.
    #[command(flatten)]
    pub tls: tilewave_tls::TlsArgs,
    /// The access policy the role check uses when TLS is on.
    #[command(flatten)]
    pub policy: tilewave_auth::PolicyArgs,
}

impl RegistryConfig {
    /// The etcd operation deadline.
    pub fn etcd_timeout(&self) -> Duration {
        Duration::from_millis(self.etcd_timeout_ms)
    }

    /// Audit retention as configured; `None` when records are kept forever.
    pub fn audit_retention(&self) -> Option<tilewave_store::retention::AuditRetention> {
        (self.audit_retention_days > 0).then(|| tilewave_store::retention::AuditRetention {
            keep: jiff::SignedDuration::from_hours(i64::from(self.audit_retention_days) * 24),
            interval: Duration::from_millis(self.audit_retention_interval_ms),
        })
    }

    /// The lease TTL of owned work.
    pub fn lease_ttl(&self) -> Duration {
        Duration::from_millis(self.lease_ttl_ms)
    }

    /// A configuration for tests and embedding: the given etcd endpoints and
    /// prefix, everything else default.
    pub fn for_etcd(etcd: Vec<String>, prefix: &str) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            etcd,
            prefix: prefix.to_string(),
            etcd_timeout_ms: DEFAULT_ETCD_TIMEOUT_MS,
            metrics_listen: None,
            audit_retention_days: DEFAULT_AUDIT_RETENTION_DAYS,
            audit_retention_interval_ms: DEFAULT_AUDIT_RETENTION_INTERVAL_MS,
            lease_ttl_ms: DEFAULT_LEASE_TTL_MS,
            replica: None,
            tls: tilewave_tls::TlsArgs::default(),
            policy: tilewave_auth::PolicyArgs::default(),
        }
    }
}
