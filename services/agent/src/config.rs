//! The agent's configuration: a typed struct read from flags and the
//! environment, with defaults as named constants, checked as a whole
//! ([`AgentConfig::resolve`] reports every problem at once).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tilewave_core::quote::quoted;

use tilewave_core::regions::{Cloud, RegionCatalog};
use tilewave_secrets::{KEK_ENV, Keyring};

/// Where the agent listens unless told otherwise: loopback only, until the
/// security work brings mTLS.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7500";
/// The etcd endpoint of a local stack.
pub const DEFAULT_ETCD: &str = "http://127.0.0.1:2379";
/// The key prefix every tilewave key lives under.
pub const DEFAULT_PREFIX: &str = "/tilewave/";
/// TTL of the registration lease: how long `agents/<region>` outlives a
/// crashed agent.
pub const DEFAULT_LEASE_TTL_SECS: u64 = 10;
/// The shortest lease TTL accepted (etcd's own floor is a few seconds; below
/// it the keep-alive would compete with ordinary scheduling hiccups).
pub const MIN_LEASE_TTL_SECS: u64 = 2;
/// How often every tile with a probe-able endpoint is probed in the
/// background.
pub const DEFAULT_PROBE_INTERVAL: &str = "30s";
/// The sliding window the error rate is computed over.
pub const DEFAULT_ERROR_WINDOW: &str = "5m";
/// Above this error rate (0 to 1) a tile is UNHEALTHY.
pub const DEFAULT_ERROR_RATE_THRESHOLD: f64 = 0.5;
/// How long one etcd operation may take.
pub const DEFAULT_ETCD_TIMEOUT_MS: u64 = 5_000;

/// `tilewave-agent`: the region agent, one process per region.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "tilewave-agent", version, about, long_about = None,
          after_help = "Health check (containers): tilewave-agent health [--addr HOST:PORT] exits 0 when the server beside it is SERVING (tilewave-agent health --help).")]
pub struct AgentConfig {
    /// Address to serve gRPC on.
    #[arg(long, env = "TILEWAVE_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// The region this agent serves, `<cloud>:<region>` (e.g.
    /// `aws:eu-west-1`); must be in the region catalog.
    #[arg(long, env = "TILEWAVE_AGENT_REGION")]
    pub region: String,
    /// A `regions.toml` to use instead of the built-in region catalog.
    #[arg(long, env = "TILEWAVE_REGIONS_FILE")]
    pub regions_file: Option<PathBuf>,
    /// etcd client URLs, comma separated.
    #[arg(long, env = "TILEWAVE_ETCD", value_delimiter = ',', default_value = DEFAULT_ETCD)]
    pub etcd: Vec<String>,
    /// Key prefix in etcd.
    #[arg(long, env = "TILEWAVE_PREFIX", default_value = DEFAULT_PREFIX)]
    pub prefix: String,
    /// Directory of the agent's own state: the catalog (the snapshot
    /// `catalog.pb` and its change log `catalog.log`) and the
    /// refuse-to-start flag.
    #[arg(long, env = "TILEWAVE_AGENT_DATA_DIR")]
    pub data_dir: PathBuf,
    /// TTL of the registration lease, in seconds.
    #[arg(long, env = "TILEWAVE_AGENT_LEASE_TTL_SECS", default_value_t = DEFAULT_LEASE_TTL_SECS)]
    pub lease_ttl_secs: u64,
    /// How often tiles are probed in the background: seconds, or a span
    /// like `30s`, `500ms`, `2m`.
    #[arg(long, env = "TILEWAVE_AGENT_PROBE_INTERVAL", default_value = DEFAULT_PROBE_INTERVAL,
          value_parser = parse_duration)]
    pub probe_interval: Duration,
    /// A host name the synthetic probe may call besides the loopback
    /// addresses (repeatable or comma separated). Whatever the list, the
    /// probe connects only to loopback addresses: see `crate::probe`.
    #[arg(
        long = "allow-probe-host",
        env = "TILEWAVE_AGENT_ALLOW_PROBE_HOSTS",
        value_delimiter = ','
    )]
    pub allow_probe_hosts: Vec<String>,
    /// Networks (CIDR, comma separated) the allowed probe hosts may resolve
    /// into besides loopback: a deployment's own container network
    /// (`deploy/` uses 10.77.0.0/24). Nothing else is ever connected to.
    #[arg(
        long = "egress-network",
        env = "TILEWAVE_EGRESS_NETWORKS",
        value_delimiter = ','
    )]
    pub egress_networks: Vec<ipnet::IpNet>,
    /// The sliding window of the error rate: seconds, or a span like `5m`.
    #[arg(long, env = "TILEWAVE_AGENT_ERROR_WINDOW", default_value = DEFAULT_ERROR_WINDOW,
          value_parser = parse_duration)]
    pub error_window: Duration,
    /// Above this error rate (0 to 1) a tile is UNHEALTHY.
    #[arg(long, env = "TILEWAVE_AGENT_ERROR_RATE_THRESHOLD", default_value_t = DEFAULT_ERROR_RATE_THRESHOLD)]
    pub error_rate_threshold: f64,
    /// Serve the test-only FaultInjectionService (tests, chaos runs, the
    /// demo). Never in production.
    #[arg(long, env = "TILEWAVE_AGENT_ENABLE_FAULT_INJECTION")]
    pub enable_fault_injection: bool,
    /// The address registered in etcd for callers to dial; default the
    /// address actually bound.
    #[arg(long, env = "TILEWAVE_AGENT_ADVERTISE")]
    pub advertise: Option<String>,
    /// Deadline of one etcd operation, in milliseconds.
    #[arg(long, env = "TILEWAVE_ETCD_TIMEOUT_MS", default_value_t = DEFAULT_ETCD_TIMEOUT_MS)]
    pub etcd_timeout_ms: u64,
    /// A file of key-encryption keys (one `id:base64key` a line, `#`
    /// comments, the first primary) that installed credentials are sealed
    /// with. Alternatively `TILEWAVE_KEK` holds the keys inline
    /// (`id:base64key[,id:base64key...]`); not both. Without either the
    /// agent runs but refuses InstallCredential.
    #[arg(long, env = "TILEWAVE_KEK_FILE")]
    pub kek_file: Option<PathBuf>,
    /// A PEM file of CA certificates trusted for a partner's HTTPS besides
    /// the webpki roots (a test partner's CA). The egress allow-list is
    /// unchanged: only loopback is called.
    #[arg(long, env = "TILEWAVE_AGENT_PARTNER_CA")]
    pub partner_ca: Option<PathBuf>,
    /// The waits before retrying a partner's 5xx answer, one retry each
    /// (seconds or spans, comma separated). Tests shorten them.
    #[arg(long, env = "TILEWAVE_AGENT_PARTNER_RETRY_DELAYS", value_delimiter = ',',
          default_value = "1s,2s,4s", value_parser = parse_duration, hide = true)]
    pub partner_retry_delays: Vec<Duration>,
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

/// Parses seconds (`30`) or a friendly span (`30s`, `500ms`, `2m`).
fn parse_duration(s: &str) -> Result<Duration, String> {
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let span: jiff::SignedDuration = s.parse().map_err(|e| {
        format!(
            "{} is neither seconds nor a span like 30s or 500ms: {e}",
            quoted(s)
        )
    })?;
    Duration::try_from(span).map_err(|_| format!("{} must not be negative", quoted(s)))
}

/// The key ring from `--kek-file` or the text of `TILEWAVE_KEK` (an empty
/// text counts as unset); both is an error, neither `None`. Errors name
/// the source, never a key.
pub fn keyring_from(
    file: Option<&std::path::Path>,
    env_text: Option<String>,
) -> Result<Option<Keyring>, String> {
    let env_text = env_text.filter(|t| !t.trim().is_empty());
    match (file, env_text) {
        (Some(_), Some(_)) => Err(format!(
            "--kek-file (TILEWAVE_KEK_FILE) and {KEK_ENV} are both set; give the keys one way"
        )),
        (Some(path), None) => Keyring::from_file(path)
            .map(Some)
            .map_err(|e| format!("--kek-file {}: {e}", path.display())),
        (None, Some(text)) => Keyring::parse(&text)
            .map(Some)
            .map_err(|e| format!("{KEK_ENV}: {e}")),
        (None, None) => Ok(None),
    }
}

/// The configuration after checking: what the server runs with.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The flags as given.
    pub config: AgentConfig,
    /// The region's cloud.
    pub cloud: Cloud,
    /// The key-encryption keys (`--kek-file` or `TILEWAVE_KEK`), if any.
    pub keyring: Option<std::sync::Arc<Keyring>>,
    /// The contents of `--partner-ca`, if given.
    pub partner_ca_pem: Option<Vec<u8>>,
}

/// One or more problems with the configuration, all reported together.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct ConfigError(pub Vec<String>);

impl AgentConfig {
    /// The etcd operation deadline.
    pub fn etcd_timeout(&self) -> Duration {
        Duration::from_millis(self.etcd_timeout_ms)
    }

    /// The registration lease TTL.
    pub fn lease_ttl(&self) -> Duration {
        Duration::from_secs(self.lease_ttl_secs)
    }

    /// A configuration for tests and embedding: the given region, etcd,
    /// prefix and data directory, everything else default.
    pub fn for_region(region: &str, etcd: Vec<String>, prefix: &str, data_dir: PathBuf) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            region: region.to_owned(),
            regions_file: None,
            etcd,
            prefix: prefix.to_owned(),
            data_dir,
            lease_ttl_secs: DEFAULT_LEASE_TTL_SECS,
            probe_interval: Duration::from_secs(30),
            allow_probe_hosts: Vec::new(),
            egress_networks: Vec::new(),
            error_window: Duration::from_secs(300),
            error_rate_threshold: DEFAULT_ERROR_RATE_THRESHOLD,
            enable_fault_injection: false,
            advertise: None,
            etcd_timeout_ms: DEFAULT_ETCD_TIMEOUT_MS,
            kek_file: None,
            partner_ca: None,
            partner_retry_delays: crate::probe::RETRY_DELAYS.to_vec(),
            metrics_listen: None,
            tls: tilewave_tls::TlsArgs::default(),
            policy: tilewave_auth::PolicyArgs::default(),
        }
    }

    /// Checks everything and reports every problem at once.
    pub fn resolve(self) -> Result<Resolved, ConfigError> {
        let mut problems = Vec::new();
        let catalog = match &self.regions_file {
            None => Some(RegionCatalog::builtin()),
            Some(path) => match std::fs::read_to_string(path) {
                Ok(text) => match RegionCatalog::from_toml(&text) {
                    Ok(c) => Some(c),
                    Err(e) => {
                        problems.push(format!("--regions-file {}: {e}", path.display()));
                        None
                    }
                },
                Err(e) => {
                    problems.push(format!("--regions-file {}: {e}", path.display()));
                    None
                }
            },
        };
        let cloud = catalog.as_ref().and_then(|c| match c.get(&self.region) {
            Ok(r) => Some(r.cloud),
            Err(e) => {
                problems.push(format!("--region: {e}"));
                None
            }
        });
        if self.lease_ttl_secs < MIN_LEASE_TTL_SECS {
            problems.push(format!(
                "--lease-ttl-secs must be at least {MIN_LEASE_TTL_SECS}, got {}",
                self.lease_ttl_secs
            ));
        }
        if self.probe_interval.is_zero() {
            problems.push("--probe-interval must be positive".to_owned());
        }
        if self.error_window.is_zero() {
            problems.push("--error-window must be positive".to_owned());
        }
        if !(0.0..=1.0).contains(&self.error_rate_threshold) {
            problems.push(format!(
                "--error-rate-threshold must be between 0 and 1, got {}",
                self.error_rate_threshold
            ));
        }
        if self.etcd.is_empty() {
            problems.push("--etcd: no endpoints".to_owned());
        }
        if self.etcd_timeout_ms == 0 {
            problems.push("--etcd-timeout-ms must be positive".to_owned());
        }
        if self.data_dir.as_os_str().is_empty() {
            problems.push("--data-dir must not be empty".to_owned());
        }
        if self.partner_retry_delays.len() > 10 {
            problems.push("--partner-retry-delays: at most 10 retries".to_owned());
        }
        let keyring = match keyring_from(self.kek_file.as_deref(), std::env::var(KEK_ENV).ok()) {
            Ok(k) => k.map(std::sync::Arc::new),
            Err(e) => {
                problems.push(e);
                None
            }
        };
        let partner_ca_pem = match &self.partner_ca {
            None => None,
            Some(path) => match std::fs::read(path) {
                Ok(pem) => Some(pem),
                Err(e) => {
                    problems.push(format!("--partner-ca {}: {e}", path.display()));
                    None
                }
            },
        };
        match cloud {
            Some(cloud) if problems.is_empty() => Ok(Resolved {
                config: self,
                cloud,
                keyring,
                partner_ca_pem,
            }),
            _ => Err(ConfigError(problems)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[test]
    fn defaults_and_durations() {
        let c =
            AgentConfig::try_parse_from(["tilewave-agent", "--region", "aws:eu-west-1", "--data-dir", "/d"])
                .unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.lease_ttl(), Duration::from_secs(10));
        assert_eq!(c.probe_interval, Duration::from_secs(30));
        assert_eq!(c.error_window, Duration::from_secs(300));
        assert!(c.allow_probe_hosts.is_empty());
        let r = c.resolve().unwrap();
        assert_eq!(r.cloud, Cloud::Aws);
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut c = AgentConfig::for_region("aws:nowhere-9", vec![], "/t/", PathBuf::from("/d"));
        c.lease_ttl_secs = 1;
        c.error_rate_threshold = 2.0;
        let e = c.resolve().unwrap_err();
        assert_eq!(e.0.len(), 4, "{e}");
        let text = e.to_string();
        assert!(text.contains("unknown region"), "{text}");
        assert!(text.contains("--lease-ttl-secs"), "{text}");
        assert!(text.contains("--error-rate-threshold"), "{text}");
        assert!(text.contains("--etcd"), "{text}");
    }

    #[test]
    fn retry_delays_default_to_one_two_four_seconds() {
        let c =
            AgentConfig::try_parse_from(["tilewave-agent", "--region", "aws:eu-west-1", "--data-dir", "/d"])
                .unwrap();
        assert_eq!(c.partner_retry_delays, crate::probe::RETRY_DELAYS.to_vec());
        assert!(c.kek_file.is_none());
        let c = AgentConfig::try_parse_from([
            "tilewave-agent",
            "--region",
            "aws:eu-west-1",
            "--data-dir",
            "/d",
            "--partner-retry-delays",
            "10ms,20ms",
        ])
        .unwrap();
        assert_eq!(
            c.partner_retry_delays,
            [Duration::from_millis(10), Duration::from_millis(20)]
        );
    }

    #[test]
    fn the_keyring_comes_from_a_file_or_the_variable_not_both() {
        let dir = tempfile::tempdir().unwrap();
        let kek = tilewave_secrets::Kek::new("agent-kek", [3; 32]).unwrap();
        let file = dir.path().join("kek");
        std::fs::write(&file, kek.to_text().as_bytes()).unwrap();
        assert!(keyring_from(None, None).unwrap().is_none());
        assert!(keyring_from(None, Some("  ".into())).unwrap().is_none());
        let ring = keyring_from(Some(&file), None).unwrap().unwrap();
        assert_eq!(ring.primary().id(), "agent-kek");
        let ring = keyring_from(None, Some(kek.to_text().as_str().to_owned()))
            .unwrap()
            .unwrap();
        assert_eq!(ring.primary().id(), "agent-kek");
        let both = keyring_from(Some(&file), Some(kek.to_text().as_str().to_owned())).unwrap_err();
        assert!(
            both.contains("--kek-file") && both.contains("TILEWAVE_KEK"),
            "{both}"
        );
        let bad = keyring_from(None, Some("agent-kek:bm90IGEga2V5".into())).unwrap_err();
        assert!(bad.starts_with("TILEWAVE_KEK: "), "{bad}");
        assert!(!bad.contains("bm90IGEga2V5"), "{bad}");
        let missing = keyring_from(Some(&dir.path().join("none")), None).unwrap_err();
        assert!(missing.starts_with("--kek-file "), "{missing}");
    }
}
