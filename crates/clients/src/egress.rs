//! Where tilewave's HTTP clients may send traffic: one allow-list for every
//! outbound call (the agent's partner probe, webhook deliveries).
//!
//! **Only loopback is ever contacted.** Until an egress policy for real
//! partners and receivers lands, no tilewave process sends traffic off the
//! machine: the fixtures' partner URLs (`https://api.riverflow.example`,
//! ...) name hosts that are not ours to call, and test and demo machines
//! must not leak requests to the internet. So a call is made only when
//! - its host is a loopback IP literal, `localhost`, or a name the operator
//!   allowed ([`EgressPolicy::new`]; the agent's `--allow-probe-host`).
//!   Only allowed names are ever resolved, so a refused host does not even
//!   cause a DNS query; and
//! - the addresses it resolves to are loopback, or lie in a network the
//!   operator named ([`EgressPolicy::with_networks`]; `--egress-network`,
//!   for a deployment's own container network, as `deploy/` runs the
//!   partner double and the webhook receiver); only those are connected to
//!   ([`LoopbackResolver`] is the HTTP client's own resolver and answers
//!   nothing else). An IP literal counts as allowed only when it is
//!   loopback or in such a network.
//!
//! [`http_client`] builds the reqwest client both callers use: rustls with
//! ring (no native TLS, no aws-lc), HTTP/1.1, the webpki roots plus an
//! optional PEM CA, proxies from the environment ignored, redirects not
//! followed, connect and total timeouts, and [`LoopbackResolver`] as its
//! resolver. An IP-literal URL never reaches a resolver, so a caller checks
//! the host with [`LoopbackResolver::resolve`] before each call, as both
//! callers do.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tilewave_core::quote::quoted;

/// A parsed `http(s)://host[:port]/path` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// `http` or `https`.
    pub scheme: String,
    /// The host, lowercase, without brackets for IPv6.
    pub host: String,
    /// The port (the scheme's default when absent).
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl HttpUrl {
    /// Parses an absolute http(s) URL; the error says what is wrong,
    /// quoting at most a bounded piece of the input. Credentials in the
    /// URL (`user:pw@`) are refused.
    pub fn parse(url: &str) -> Result<Self, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("{} is not an absolute URL", quoted(url)))?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            other => return Err(format!("scheme {} is not http or https", quoted(other))),
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.contains('@') {
            return Err("credentials in the URL are not accepted".to_owned());
        }
        let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
            let (host, after) = inner.split_once(']').ok_or("unclosed [ in the host")?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(format!("unexpected {} after the host", quoted(after))),
            };
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err("no host".to_owned());
        }
        let port = match port {
            Some(p) => p.parse::<u16>().map_err(|_| format!("bad port {}", quoted(p)))?,
            None => default_port,
        };
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        Ok(Self {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
            path,
        })
    }

    /// The `host:port` part (IPv6 in brackets).
    pub fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// `scheme://host:port`, without the path: how a message names the
    /// destination (a webhook's path may hold a token).
    pub fn origin(&self) -> String {
        format!("{}://{}", self.scheme, self.host_port())
    }
}

impl std::fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.host_port(), self.path)
    }
}

/// Why a destination may not be called.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    /// The host is neither loopback nor an allowed name (it was not
    /// resolved).
    #[error("host not allowed ({host}; only loopback may be called)")]
    HostNotAllowed {
        /// The host, quoted and bounded.
        host: String,
    },
    /// An allowed name did not resolve.
    #[error("{host} does not resolve: {reason}")]
    DoesNotResolve {
        /// The host, quoted and bounded.
        host: String,
        /// The resolver's answer.
        reason: String,
    },
    /// An allowed name resolved, but to no loopback address (nor one in
    /// an allowed network).
    #[error("{host} does not resolve to a loopback address or one in an allowed --egress-network")]
    NotLoopback {
        /// The host, quoted and bounded.
        host: String,
    },
    /// The extra CA is not usable.
    #[error("the CA file is not usable: {reason}")]
    Ca {
        /// What is wrong with it.
        reason: String,
    },
    /// The HTTP client does not build.
    #[error("the HTTP client does not build: {reason}")]
    Client {
        /// reqwest's reason.
        reason: String,
    },
}

/// Which hosts may be called (see the module docs): loopback literals,
/// `localhost`, and the names given to [`EgressPolicy::new`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EgressPolicy {
    /// Names allowed besides loopback literals and `localhost`.
    extra_hosts: Vec<String>,
    /// Networks (besides loopback) allowed names may resolve into.
    networks: Vec<ipnet::IpNet>,
}

impl EgressPolicy {
    /// Loopback plus the given names (trimmed, compared without case;
    /// empty ones ignored).
    pub fn new(extra_hosts: &[String]) -> Self {
        Self {
            extra_hosts: extra_hosts
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
            networks: Vec::new(),
        }
    }

    /// The same policy, letting addresses in `networks` be connected to as
    /// well as loopback (a deployment's own container network, such as
    /// `deploy/`'s `10.77.0.0/24`).
    pub fn with_networks(mut self, networks: &[ipnet::IpNet]) -> Self {
        self.networks = networks.to_vec();
        self
    }

    /// Whether an address may be connected to: loopback, or in an allowed
    /// network.
    pub fn address_allowed(&self, ip: IpAddr) -> bool {
        ip.is_loopback() || self.networks.iter().any(|n| n.contains(&ip))
    }

    /// Whether a host (name or literal, lowercase) may be called at all.
    pub fn host_allowed(&self, host: &str) -> bool {
        match host.parse::<IpAddr>() {
            Ok(ip) => self.address_allowed(ip),
            Err(_) => host == "localhost" || self.extra_hosts.iter().any(|h| h == host),
        }
    }

    /// `Ok` when [`EgressPolicy::host_allowed`], else the refusal.
    pub fn check_host(&self, host: &str) -> Result<(), EgressError> {
        if self.host_allowed(host) {
            Ok(())
        } else {
            Err(EgressError::HostNotAllowed {
                host: host_text(host),
            })
        }
    }
}

/// A host as messages show it: plain when it is an ordinary host name or
/// literal, else quoted (bounded).
fn host_text(host: &str) -> String {
    let plain = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'_'));
    if plain {
        host.to_owned()
    } else {
        quoted(host).to_string()
    }
}

/// Resolves only what the policy allows, and only to loopback addresses:
/// the last word on where a client connects.
#[derive(Debug, Clone)]
pub struct LoopbackResolver {
    policy: EgressPolicy,
}

impl LoopbackResolver {
    /// A resolver for `policy`.
    pub fn new(policy: EgressPolicy) -> Self {
        Self { policy }
    }

    /// Its policy.
    pub fn policy(&self) -> &EgressPolicy {
        &self.policy
    }

    /// Resolves `host` if the policy allows it (a refused host is never
    /// looked up); its loopback addresses only, with `port`.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, EgressError> {
        self.policy.check_host(host)?;
        let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| EgressError::DoesNotResolve {
                    host: host_text(host),
                    reason: e.to_string(),
                })?
                .collect(),
        };
        let loopback: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(|a| self.policy.address_allowed(a.ip()))
            .collect();
        if loopback.is_empty() {
            return Err(EgressError::NotLoopback {
                host: host_text(host),
            });
        }
        Ok(loopback)
    }
}

impl reqwest::dns::Resolve for LoopbackResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let this = self.clone();
        let host = name.as_str().to_ascii_lowercase();
        Box::pin(async move {
            // reqwest puts the URL's port on the addresses it gets.
            let addrs = LoopbackResolver::resolve(&this, &host, 0)
                .await
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { e.to_string().into() })?;
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// How [`http_client`] builds a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// How long connecting may take.
    pub connect_timeout: Duration,
    /// How long a whole call (connect, send, read) may take; a request may
    /// set a shorter one.
    pub timeout: Duration,
    /// PEM certificates trusted for HTTPS besides the webpki roots.
    pub ca_pem: Option<Vec<u8>>,
    /// The `User-Agent` sent.
    pub user_agent: String,
}

/// A reqwest client that connects only where `resolver` allows (see the
/// module docs), with `options`.
pub fn http_client(
    resolver: &LoopbackResolver,
    options: &ClientOptions,
) -> Result<reqwest::Client, EgressError> {
    let mut builder = reqwest::Client::builder();
    if let Some(pem) = &options.ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| EgressError::Ca {
            reason: format!("not PEM certificates: {e}"),
        })?;
        if certs.is_empty() {
            return Err(EgressError::Ca {
                reason: "it holds no certificate".to_owned(),
            });
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .http1_only()
        .connect_timeout(options.connect_timeout)
        .timeout(options.timeout)
        .user_agent(options.user_agent.as_str())
        .dns_resolver(Arc::new(resolver.clone()))
        .build()
        .map_err(|e| EgressError::Client {
            reason: e.to_string(),
        })
}

/// A transport error in words, with its causes. reqwest's own text names
/// the URL, never a header; callers whose URL may hold a token strip it
/// first (`reqwest::Error::without_url`).
pub fn describe(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    let mut text = format!("{kind}: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        let u = HttpUrl::parse("http://127.0.0.1:8080/api/test?x=1").unwrap();
        assert_eq!(
            (u.scheme.as_str(), u.host.as_str(), u.port, u.path.as_str()),
            ("http", "127.0.0.1", 8080, "/api/test?x=1")
        );
        assert_eq!(u.origin(), "http://127.0.0.1:8080");
        let u = HttpUrl::parse("https://API.Riverflow.example").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("api.riverflow.example", 443, "/")
        );
        let u = HttpUrl::parse("http://[::1]:9/t").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 9));
        assert_eq!(u.host_port(), "[::1]:9");
        assert_eq!(u.to_string(), "http://[::1]:9/t");
        for (bad, says) in [
            ("ftp://x/", "not http or https"),
            ("http://user:pw@127.0.0.1/", "credentials"),
            ("127.0.0.1/x", "not an absolute URL"),
            ("http:///x", "no host"),
            ("http://h:99999/", "bad port"),
            ("http://[::1/", "unclosed"),
        ] {
            let e = HttpUrl::parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn only_loopback_and_named_hosts_are_allowed() {
        let p = EgressPolicy::default();
        for (host, allowed) in [
            ("127.0.0.1", true),
            ("127.8.9.10", true),
            ("::1", true),
            ("localhost", true),
            ("10.0.0.1", false),
            ("0.0.0.0", false),
            ("api.riverflow.example", false),
            ("partner.test", false),
        ] {
            assert_eq!(p.host_allowed(host), allowed, "{host}");
        }
        let named = EgressPolicy::new(&[" Partner.Test ".into(), "".into()]);
        assert!(named.host_allowed("partner.test"));
        assert_eq!(
            p.check_host("api.riverflow.example").unwrap_err().to_string(),
            "host not allowed (api.riverflow.example; only loopback may be called)"
        );
        assert!(
            p.check_host("evil host\n")
                .unwrap_err()
                .to_string()
                .contains(r#""evil host\n""#),
            "odd hosts are quoted"
        );
    }

    #[test]
    fn an_allowed_network_adds_its_addresses_and_nothing_else() {
        let net: ipnet::IpNet = "10.77.0.0/24".parse().unwrap();
        let p = EgressPolicy::new(&["partner-double".into()]).with_networks(&[net]);
        for (ip, allowed) in [
            ("10.77.0.9", true),
            ("10.77.1.9", false),
            ("127.0.0.1", true),
            ("192.168.0.1", false),
            ("8.8.8.8", false),
        ] {
            assert_eq!(p.address_allowed(ip.parse().unwrap()), allowed, "{ip}");
            assert_eq!(p.host_allowed(ip), allowed, "{ip} as a literal");
        }
        assert!(p.host_allowed("partner-double"));
        assert!(!p.host_allowed("api.riverflow.example"), "names stay a list");
    }

    #[tokio::test]
    async fn only_allowed_hosts_resolving_to_loopback_are_answered() {
        let resolver = LoopbackResolver::new(EgressPolicy::new(&["partner.test".into()]));
        assert!(matches!(
            resolver.resolve("api.riverflow.example", 443).await,
            Err(EgressError::HostNotAllowed { .. })
        ));
        assert!(matches!(
            resolver.resolve("10.0.0.1", 80).await,
            Err(EgressError::HostNotAllowed { .. })
        ));
        assert_eq!(
            resolver.resolve("127.0.0.1", 80).await.unwrap(),
            [SocketAddr::from(([127, 0, 0, 1], 80))]
        );
        let local = resolver.resolve("localhost", 80).await.unwrap();
        assert!(!local.is_empty() && local.iter().all(|a| a.ip().is_loopback()));
        // An allowed name that does not resolve (or not to loopback) is
        // refused, never called.
        assert!(matches!(
            resolver.resolve("partner.test", 80).await,
            Err(EgressError::DoesNotResolve { .. } | EgressError::NotLoopback { .. })
        ));
    }

    #[test]
    fn a_bad_ca_is_refused() {
        let resolver = LoopbackResolver::new(EgressPolicy::default());
        let options = |ca: &[u8]| ClientOptions {
            connect_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            ca_pem: Some(ca.to_vec()),
            user_agent: "t".into(),
        };
        assert!(matches!(
            http_client(&resolver, &options(b"not a certificate")),
            Err(EgressError::Ca { .. })
        ));
        assert!(
            http_client(
                &resolver,
                &ClientOptions {
                    ca_pem: None,
                    ..options(b"")
                }
            )
            .is_ok()
        );
    }
}
