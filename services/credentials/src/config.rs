//! The credentials service's configuration: a typed struct read from flags
//! and the environment, with defaults as named constants.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tilewave_core::regions::RegionCatalog;

/// Where the credentials service listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7403";
/// The etcd endpoint of a local stack.
pub const DEFAULT_ETCD: &str = "http://127.0.0.1:2379";
/// The key prefix every tilewave key lives under.
pub const DEFAULT_PREFIX: &str = "/tilewave/";
/// How long one etcd operation may take.
pub const DEFAULT_ETCD_TIMEOUT_MS: u64 = 5_000;
/// TTL of the leases behind rotation ownership.
pub const DEFAULT_LEASE_TTL_MS: u64 = 5_000;
/// Deadline of one call to an agent.
pub const DEFAULT_RPC_TIMEOUT_MS: u64 = 10_000;
/// The wait before a failed region's second attempt, when a rotation's
/// request names none.
pub const DEFAULT_ROTATION_RETRY_DELAY_MS: u64 = 10_000;

/// `tilewave-credentials`: partners' credentials and their rotation.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "tilewave-credentials", version, about, long_about = None,
          after_help = "Health check (containers): tilewave-credentials health [--addr HOST:PORT] exits 0 when the server beside it is SERVING (tilewave-credentials health --help).")]
pub struct CredentialsConfig {
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
    /// The key-encryption keys: a file of `id:base64key` lines, the first
    /// primary (`tilewave dev up` makes one). Without it, `TILEWAVE_KEK`
    /// holds the same entries comma separated; without either the service
    /// does not start.
    #[arg(long, env = "TILEWAVE_KEK_FILE", value_name = "PATH")]
    pub kek_file: Option<PathBuf>,
    /// A regions.toml to use instead of the built-in catalog.
    #[arg(long, env = "TILEWAVE_REGIONS_FILE")]
    pub regions_file: Option<PathBuf>,
    /// Only these regions of the catalog (ids, comma separated), as the
    /// rollout service's `--regions`.
    #[arg(
        long,
        env = "TILEWAVE_REGIONS",
        value_delimiter = ',',
        value_name = "REGION,..."
    )]
    pub regions: Vec<String>,
    /// Lease TTL of owned work, in milliseconds (at least 2000).
    #[arg(long, env = "TILEWAVE_LEASE_TTL_MS", default_value_t = DEFAULT_LEASE_TTL_MS)]
    pub lease_ttl_ms: u64,
    /// Deadline of one call to an agent, in milliseconds.
    #[arg(long, env = "TILEWAVE_RPC_TIMEOUT_MS", default_value_t = DEFAULT_RPC_TIMEOUT_MS)]
    pub rpc_timeout_ms: u64,
    /// The wait before a failed region's second attempt in a rotation that
    /// names none, in milliseconds; doubled for each later attempt, up to
    /// 5 minutes (0: at once).
    #[arg(long, env = "TILEWAVE_ROTATION_RETRY_DELAY_MS", default_value_t = DEFAULT_ROTATION_RETRY_DELAY_MS)]
    pub rotation_retry_delay_ms: u64,
    /// Test only: exit at once (no clean-up, the owner's lease left to
    /// expire, as after kill -9) when the driver reaches this step
    /// boundary: `after-install-intent`, `mid-distribution`,
    /// `after-verify-intent` or `before-promotion`.
    #[arg(long, env = "TILEWAVE_CREDENTIALS_CRASH_AT", hide = true, value_parser = crate::driver::CrashPoint::parse)]
    pub crash_at: Option<crate::driver::CrashPoint>,
    /// This replica's name in owner records; default `credentials-<pid>-<random>`.
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

impl CredentialsConfig {
    /// The region catalog, narrowed to `--regions` when given.
    pub fn catalog(&self) -> Result<RegionCatalog, String> {
        tilewave_service::regions::catalog(self.regions_file.as_deref(), &self.regions)
    }

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

    /// The deadline of one agent call.
    pub fn rpc_timeout(&self) -> Duration {
        Duration::from_millis(self.rpc_timeout_ms)
    }

    /// The default wait before a failed region's second attempt.
    pub fn rotation_retry_delay(&self) -> jiff::SignedDuration {
        jiff::SignedDuration::from_millis(i64::try_from(self.rotation_retry_delay_ms).unwrap_or(i64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[test]
    fn defaults_and_a_missing_kek_says_what_to_set() {
        let c = CredentialsConfig::try_parse_from(["tilewave-credentials", "--insecure"]).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.catalog().unwrap().all().len(), 70);
        if std::env::var_os(tilewave_secrets::KEK_ENV).is_none() {
            let e = c.keyring().unwrap_err();
            assert!(e.contains("--kek-file") && e.contains("tilewave dev up"), "{e}");
        }
        let c = CredentialsConfig::try_parse_from([
            "tilewave-credentials",
            "--insecure",
            "--kek-file",
            "/nonexistent/kek",
        ])
        .unwrap();
        assert!(c.keyring().unwrap_err().starts_with("--kek-file"));
    }
}
