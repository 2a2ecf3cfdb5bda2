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

    /// A configuration for tests and embedding: the given etcd endpoints and
    /// prefix, everything else default.
    pub fn for_etcd(etcd: Vec<String>, prefix: &str) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            etcd,
            prefix: prefix.to_string(),
            etcd_timeout_ms: DEFAULT_ETCD_TIMEOUT_MS,
            metrics_listen: None,
            tls: tilewave_tls::TlsArgs::default(),
            policy: tilewave_auth::PolicyArgs::default(),
        }
    }
}
