//! The rollout service's configuration: a typed struct read from flags and
//! the environment, with defaults as named constants.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tilewave_core::regions::RegionCatalog;

/// Where the rollout service listens unless told otherwise: loopback only,
/// until the security work brings mTLS.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7402";
/// The etcd endpoint of a local stack.
pub const DEFAULT_ETCD: &str = "http://127.0.0.1:2379";
/// The registry of a local stack.
pub const DEFAULT_REGISTRY: &str = "http://127.0.0.1:7401";
/// The key prefix every tilewave key lives under.
pub const DEFAULT_PREFIX: &str = "/tilewave/";
/// How long one etcd operation may take before the call fails UNAVAILABLE.
pub const DEFAULT_ETCD_TIMEOUT_MS: u64 = 5_000;
/// TTL of the leases behind roll-out, timer and reconciler ownership: a
/// replica that stops renewing loses its work after this long.
pub const DEFAULT_LEASE_TTL_MS: u64 = 5_000;
/// How often the reconciler compares desired state with what agents report.
pub const DEFAULT_RECONCILE_INTERVAL_MS: u64 = 10_000;
/// Deadline of one call to an agent or the registry.
pub const DEFAULT_RPC_TIMEOUT_MS: u64 = 5_000;
/// Bake of each wave of a removal roll-out (domain minutes).
pub const DEFAULT_REMOVAL_BAKE_MINS: u64 = 60;

/// `tilewave-rollout`: the regional rollout service and the virtual clock.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "tilewave-rollout", version, about, long_about = None,
          after_help = "Health check (containers): tilewave-rollout health [--addr HOST:PORT] exits 0 when the server beside it is SERVING (tilewave-rollout health --help).")]
pub struct RolloutConfig {
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
    /// The registry's gRPC URL: the only writer of tiles.
    #[arg(long, env = "TILEWAVE_REGISTRY", default_value = DEFAULT_REGISTRY)]
    pub registry: String,
    /// A regions.toml to use instead of the built-in catalog.
    #[arg(long, env = "TILEWAVE_REGIONS_FILE")]
    pub regions_file: Option<PathBuf>,
    /// Only these regions of the catalog (ids, comma separated): the
    /// region catalog of a stack that runs agents for some regions only
    /// (`tilewave dev up --regions N`). Plans cover only these. Default:
    /// every region of the catalog.
    #[arg(
        long,
        env = "TILEWAVE_REGIONS",
        value_delimiter = ',',
        value_name = "REGION,..."
    )]
    pub regions: Vec<String>,
    /// Create the virtual clock at this RFC 3339 time if none exists (demo
    /// and tests); without it the clock in etcd, if any, else the system
    /// clock, is used.
    #[arg(long, env = "TILEWAVE_VIRTUAL_CLOCK_START")]
    pub virtual_clock_start: Option<jiff::Timestamp>,
    /// The rate of a virtual clock created by `--virtual-clock-start`.
    #[arg(long, env = "TILEWAVE_VIRTUAL_CLOCK_RATE", default_value_t = 1.0)]
    pub virtual_clock_rate: f64,
    /// Lease TTL of owned work, in milliseconds (at least 2000).
    #[arg(long, env = "TILEWAVE_LEASE_TTL_MS", default_value_t = DEFAULT_LEASE_TTL_MS)]
    pub lease_ttl_ms: u64,
    /// How often reconciliation runs, in milliseconds.
    #[arg(long, env = "TILEWAVE_RECONCILE_INTERVAL_MS", default_value_t = DEFAULT_RECONCILE_INTERVAL_MS)]
    pub reconcile_interval_ms: u64,
    /// Deadline of one call to an agent or the registry, in milliseconds.
    #[arg(long, env = "TILEWAVE_RPC_TIMEOUT_MS", default_value_t = DEFAULT_RPC_TIMEOUT_MS)]
    pub rpc_timeout_ms: u64,
    /// Calls in a row that may find a region's agent unreachable
    /// (UNAVAILABLE, DEADLINE_EXCEEDED, not registered) before its step
    /// fails; each is retried after a back-off (real time) from
    /// --agent-retry-first-ms doubling to --agent-retry-cap-ms. The
    /// defaults ride out about 30 s: an agent's restart, a short partition.
    #[arg(long, env = "TILEWAVE_AGENT_UNREACHABLE_ATTEMPTS", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub agent_unreachable_attempts: u32,
    /// The first wait before calling an unreachable agent again, in milliseconds.
    #[arg(long, env = "TILEWAVE_AGENT_RETRY_FIRST_MS", default_value_t = 500,
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub agent_retry_first_ms: u64,
    /// The longest wait before calling an unreachable agent again, in milliseconds.
    #[arg(long, env = "TILEWAVE_AGENT_RETRY_CAP_MS", default_value_t = 5_000,
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub agent_retry_cap_ms: u64,
    /// Bake of each wave of the removal roll-out started for a withdrawn
    /// tile, in domain minutes.
    #[arg(long, env = "TILEWAVE_REMOVAL_BAKE_MINS", default_value_t = DEFAULT_REMOVAL_BAKE_MINS)]
    pub removal_bake_mins: u64,
    /// The GA scheduler raises DEADLINE_AT_RISK for a scheduled launch when
    /// its planned slack (GA - 24 h minus the plan's end) falls below this
    /// many domain hours.
    #[arg(long, env = "TILEWAVE_AT_RISK_MARGIN_HOURS", default_value_t = 12)]
    pub at_risk_margin_hours: u32,
    /// The GA scheduler's pre-flight checks that the tile's CURRENT partner
    /// credential was verified in every planned region (the credentials
    /// service's rotations). Off only for a deployment without the
    /// credentials service, or tests of other things.
    #[arg(
        long,
        env = "TILEWAVE_PREFLIGHT_CREDENTIALS",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub preflight_credentials: bool,
    /// The GA scheduler's pre-flight checks that an incident during the
    /// launch window (start to GA) would page someone: the escalation
    /// policy a SEV1 uses reaches a person, a webhook or a schedule with
    /// somebody on call throughout. Off only for a deployment without the
    /// escalation service, or tests of other things.
    #[arg(
        long,
        env = "TILEWAVE_PREFLIGHT_ONCALL",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub preflight_oncall: bool,
    /// Run the GA scheduler (creating and starting scheduled launches by
    /// itself); `false` leaves every launch to `tilewave rollout start`.
    #[arg(long, env = "TILEWAVE_GA_SCHEDULER", default_value_t = true, action = clap::ArgAction::Set)]
    pub ga_scheduler: bool,
    /// This replica's name in owner records; default `rollout-<pid>-<random>`.
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

impl RolloutConfig {
    /// The region catalog: `--regions-file` (else the built-in one),
    /// narrowed to `--regions` when given. The error names the flag.
    pub fn catalog(&self) -> Result<RegionCatalog, String> {
        tilewave_service::regions::catalog(self.regions_file.as_deref(), &self.regions)
    }

    /// The etcd operation deadline.
    pub fn etcd_timeout(&self) -> Duration {
        Duration::from_millis(self.etcd_timeout_ms)
    }

    /// The lease TTL of owned work.
    pub fn lease_ttl(&self) -> Duration {
        Duration::from_millis(self.lease_ttl_ms)
    }

    /// The reconciliation period.
    pub fn reconcile_interval(&self) -> Duration {
        Duration::from_millis(self.reconcile_interval_ms)
    }

    /// The bake of each wave of a removal roll-out (domain time).
    pub fn removal_bake(&self) -> jiff::SignedDuration {
        jiff::SignedDuration::from_mins(i64::try_from(self.removal_bake_mins).unwrap_or(i64::MAX / 60))
    }

    /// The GA scheduler's settings.
    pub fn scheduler(&self) -> crate::scheduler::Settings {
        crate::scheduler::Settings {
            enabled: self.ga_scheduler,
            at_risk_margin: jiff::SignedDuration::from_hours(i64::from(self.at_risk_margin_hours)),
            preflight_credentials: self.preflight_credentials,
            preflight_oncall: self.preflight_oncall,
        }
    }

    /// How an unreachable agent is retried before its step fails.
    pub fn unreachable(&self) -> crate::model::Unreachable {
        crate::model::Unreachable {
            attempts: self.agent_unreachable_attempts,
            first: Duration::from_millis(self.agent_retry_first_ms),
            cap: Duration::from_millis(self.agent_retry_cap_ms.max(self.agent_retry_first_ms)),
        }
    }

    /// The deadline of one outgoing RPC.
    pub fn rpc_timeout(&self) -> Duration {
        Duration::from_millis(self.rpc_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[test]
    fn regions_narrow_the_catalog_and_unknown_ones_are_named() {
        let all = RolloutConfig::parse_from(["tilewave-rollout"]).catalog().unwrap();
        assert_eq!(all.all().len(), RegionCatalog::builtin().all().len());
        let some = RolloutConfig::parse_from([
            "tilewave-rollout",
            "--regions",
            "gcp:asia-northeast1,aws:ap-northeast-1",
        ])
        .catalog()
        .unwrap();
        let ids: Vec<&str> = some.all().iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["aws:ap-northeast-1", "gcp:asia-northeast1"]);
        let err = RolloutConfig::parse_from(["tilewave-rollout", "--regions", "aws:mars-1"])
            .catalog()
            .unwrap_err();
        assert!(err.contains("--regions") && err.contains("aws:mars-1"), "{err}");
    }
}
