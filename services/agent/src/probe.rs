//! The synthetic probe: `POST {base_url}{test_connection_path}` from the
//! region, and what the partner's answer means (docs/domain.md, "The partner's
//! API").
//!
//! **Only loopback is ever contacted.** Until the security work (egress
//! policy, TLS to partners, credentials the agent may present) lands, the
//! agent must not send traffic to a real partner: the fixtures' partner URLs
//! (`https://api.riverflow.example`, ...) name hosts that are not ours to
//! call, and test and demo machines must not leak requests to the internet.
//! So a probe runs only when
//! - the URL is plain `http` (no TLS client here: nothing to talk TLS to on
//!   loopback),
//! - its host is a loopback IP literal, `localhost`, or a name given with
//!   `--allow-probe-host` (only allowed names are ever resolved, so a
//!   fixture host does not even cause a DNS query), and
//! - the addresses it resolves to are loopback; only those are connected to.
//!
//! Otherwise the probe reports UNKNOWN with "probe skipped: ...", and the
//! tile's health rests on the error rate and injected faults.
//!
//! The HTTP client is a minimal HTTP/1.1 one over a tokio `TcpStream`
//! (`Connection: close`, `Content-Length` or chunked bodies): enough for a
//! loopback JSON endpoint without another dependency.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tilewave_core::quote::quoted;

use jiff::Timestamp;
use tilewave_proto::common::v1::{PartnerConfig, ProbeResult, TestResult, TestStatus};
use tilewave_store::clock::to_proto_timestamp;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// How long one probe may take, connection included.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest response read; a partner's test-connection answer is small.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// The prefix of every skipped probe's message.
pub const SKIPPED: &str = "probe skipped";

/// A parsed `http(s)://host[:port]/path` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeUrl {
    /// `http` or `https`.
    pub scheme: String,
    /// The host, without brackets for IPv6.
    pub host: String,
    /// The port (the scheme's default when absent).
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl ProbeUrl {
    /// Parses an absolute http(s) URL; the error says what is wrong.
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

    /// The `Host` header value.
    fn host_header(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Which hosts the probe may call (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct ProbePolicy {
    /// Names allowed besides loopback literals and `localhost`.
    extra_hosts: Vec<String>,
}

/// What the probe will call, or why it will not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Call this URL.
    Probe(ProbeUrl),
    /// Do not call; the reason, starting with [`SKIPPED`].
    Skip(String),
}

impl ProbePolicy {
    /// Loopback plus the given names.
    pub fn new(extra_hosts: &[String]) -> Self {
        Self {
            extra_hosts: extra_hosts
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
        }
    }

    /// Whether a host (name or literal) may be probed at all.
    pub fn host_allowed(&self, host: &str) -> bool {
        match host.parse::<IpAddr>() {
            Ok(ip) => ip.is_loopback(),
            Err(_) => host == "localhost" || self.extra_hosts.iter().any(|h| h == host),
        }
    }

    /// The probe target of a tile's configuration.
    pub fn target(&self, config: Option<&PartnerConfig>) -> Target {
        let Some(config) = config else {
            return Target::Skip(format!("{SKIPPED}: the tile has no configuration"));
        };
        let path = config
            .endpoints
            .as_ref()
            .map(|e| e.test_connection_path.as_str())
            .unwrap_or_default();
        if path.is_empty() {
            return Target::Skip(format!("{SKIPPED}: the tile has no test-connection endpoint"));
        }
        let url = format!("{}{}", config.base_url.trim_end_matches('/'), path);
        let parsed = match ProbeUrl::parse(&url) {
            Ok(u) => u,
            Err(e) => return Target::Skip(format!("{SKIPPED}: bad URL: {e}")),
        };
        if !self.host_allowed(&parsed.host) {
            return Target::Skip(format!(
                "{SKIPPED}: host not allowed ({}; only loopback may be probed)",
                parsed.host
            ));
        }
        if parsed.scheme != "http" {
            return Target::Skip(format!(
                "{SKIPPED}: only plain http to loopback is probed, not {}",
                parsed.scheme
            ));
        }
        Target::Probe(parsed)
    }
}

/// An UNKNOWN probe result with a reason (skipped, or not run yet).
pub fn unknown(message: String, checked_at: Timestamp) -> ProbeResult {
    ProbeResult {
        status: TestStatus::Unknown as i32,
        message,
        checked_at: Some(to_proto_timestamp(checked_at)),
        ..Default::default()
    }
}

/// Calls the target and judges the answer. `region` goes into the request
/// body; `checked_at` is the domain time of the probe.
pub async fn run(url: &ProbeUrl, region: &str, checked_at: Timestamp) -> ProbeResult {
    let started = tokio::time::Instant::now();
    let outcome = tokio::time::timeout(PROBE_TIMEOUT, call(url, region)).await;
    let latency = started.elapsed();
    let mut result = match outcome {
        Ok(Ok(Judged::Answered(r))) => r,
        Ok(Ok(Judged::Skipped(why))) => unknown(why, checked_at),
        Ok(Err(e)) => ProbeResult {
            status: TestStatus::Fail as i32,
            message: format!("test-connection call failed: {e}"),
            ..Default::default()
        },
        Err(_) => ProbeResult {
            status: TestStatus::Fail as i32,
            message: format!("test-connection call timed out after {PROBE_TIMEOUT:?}"),
            ..Default::default()
        },
    };
    result.latency = prost_types::Duration::try_from(latency).ok();
    result.checked_at = Some(to_proto_timestamp(checked_at));
    result
}

/// A call's outcome short of transport errors.
enum Judged {
    Answered(ProbeResult),
    Skipped(String),
}

/// Resolves (loopback only), connects, sends, reads and judges.
async fn call(url: &ProbeUrl, region: &str) -> std::io::Result<Judged> {
    let addrs: Vec<SocketAddr> = match url.host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, url.port)],
        Err(_) => tokio::net::lookup_host((url.host.as_str(), url.port))
            .await?
            .collect(),
    };
    let loopback: Vec<SocketAddr> = addrs.into_iter().filter(|a| a.ip().is_loopback()).collect();
    if loopback.is_empty() {
        return Ok(Judged::Skipped(format!(
            "{SKIPPED}: {} does not resolve to a loopback address",
            url.host
        )));
    }
    let mut stream = tokio::net::TcpStream::connect(loopback.as_slice()).await?;
    let body = serde_json::json!({
        "connection_id": "tilewave-synthetic-probe",
        "synthetic_probe": true,
        "region": region,
    })
    .to_string();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: tilewave-agent/{version}\r\n\
         Content-Type: application/json\r\nAccept: application/json\r\nContent-Length: {len}\r\n\
         Connection: close\r\n\r\n{body}",
        path = url.path,
        host = url.host_header(),
        version = env!("CARGO_PKG_VERSION"),
        len = body.len(),
    );
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    (&mut stream)
        .take(MAX_RESPONSE_BYTES as u64 + 1)
        .read_to_end(&mut raw)
        .await?;
    if raw.len() > MAX_RESPONSE_BYTES {
        return Err(std::io::Error::other(format!(
            "response larger than {MAX_RESPONSE_BYTES} bytes"
        )));
    }
    let (status, body) = split_response(&raw).map_err(std::io::Error::other)?;
    Ok(Judged::Answered(judge(status, &body)))
}

/// Splits a raw HTTP/1.1 response into its status code and (de-chunked)
/// body.
pub fn split_response(raw: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers in the response")?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| "response headers are not UTF-8")?;
    let rest = &raw[end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1 response: {}", quoted(status_line)));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            let (name, value) = (name.trim(), value.trim());
            if name.eq_ignore_ascii_case("transfer-encoding")
                && value.to_ascii_lowercase().contains("chunked")
            {
                chunked = true;
            } else if name.eq_ignore_ascii_case("content-length") {
                length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| format!("bad Content-Length {value:?}"))?,
                );
            }
        }
    }
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(n) = length {
        rest.get(..n)
            .ok_or("the body is shorter than its Content-Length")?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok((status, body))
}

/// Decodes a chunked body.
fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk size")?;
        let size_text = std::str::from_utf8(&rest[..line_end]).map_err(|_| "bad chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size =
            usize::from_str_radix(size_text, 16).map_err(|_| format!("bad chunk size {size_text:?}"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = rest.get(..size).ok_or("truncated chunk")?;
        out.extend_from_slice(chunk);
        rest = rest.get(size + 2..).ok_or("truncated chunk")?;
    }
}

/// Judges a test-connection answer: PASS when the call succeeded and every
/// test passed; FAIL on an error status, an unreadable answer, or any
/// failed test; UNKNOWN when the partner itself reports a test UNKNOWN and
/// none failed.
pub fn judge(http_status: u16, body: &[u8]) -> ProbeResult {
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| {
        json.as_ref()
            .and_then(|j| j.get(name))
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let mut result = ProbeResult {
        http_status: i32::from(http_status),
        ..Default::default()
    };
    if !(200..300).contains(&http_status) {
        result.status = TestStatus::Fail as i32;
        result.error_reason = field("error_reason");
        let display = field("display_message");
        result.message = if display.is_empty() {
            format!("test-connection returned HTTP {http_status}")
        } else {
            format!("test-connection returned HTTP {http_status}: {display}")
        };
        return result;
    }
    let Some(tests) = json
        .as_ref()
        .and_then(|j| j.get("test_results"))
        .and_then(|v| v.as_array())
    else {
        result.status = TestStatus::Fail as i32;
        result.message = "the answer is not a test-connection result (no test_results array)".to_owned();
        return result;
    };
    for t in tests {
        let text = |name: &str| {
            t.get(name)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        let status = match text("status").to_ascii_uppercase().as_str() {
            "PASS" => TestStatus::Pass,
            "FAIL" => TestStatus::Fail,
            _ => TestStatus::Unknown,
        };
        result.tests.push(TestResult {
            test_name: text("test_name"),
            status: status as i32,
            message: text("message"),
        });
    }
    let failed: Vec<&str> = result
        .tests
        .iter()
        .filter(|t| t.status() == TestStatus::Fail)
        .map(|t| t.test_name.as_str())
        .collect();
    let unknown = result.tests.iter().any(|t| t.status() == TestStatus::Unknown);
    (result.status, result.message) = if !failed.is_empty() {
        (TestStatus::Fail as i32, format!("failed: {}", failed.join(", ")))
    } else if unknown {
        (
            TestStatus::Unknown as i32,
            "the partner reports a test UNKNOWN".to_owned(),
        )
    } else {
        (
            TestStatus::Pass as i32,
            format!("{} test(s) passed", result.tests.len()),
        )
    };
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use tilewave_proto::common::v1::PartnerEndpoints;

    fn config(base: &str, path: &str) -> PartnerConfig {
        PartnerConfig {
            base_url: base.into(),
            endpoints: Some(PartnerEndpoints {
                test_connection_path: path.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn urls_parse() {
        let u = ProbeUrl::parse("http://127.0.0.1:8080/api/test?x=1").unwrap();
        assert_eq!(
            (u.scheme.as_str(), u.host.as_str(), u.port, u.path.as_str()),
            ("http", "127.0.0.1", 8080, "/api/test?x=1")
        );
        let u = ProbeUrl::parse("https://API.Riverflow.example").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("api.riverflow.example", 443, "/")
        );
        let u = ProbeUrl::parse("http://[::1]:9/t").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 9));
        assert_eq!(u.host_header(), "[::1]:9");
        assert!(ProbeUrl::parse("ftp://x/").is_err());
        assert!(ProbeUrl::parse("http://user:pw@127.0.0.1/").is_err());
        assert!(ProbeUrl::parse("127.0.0.1/x").is_err());
    }

    #[test]
    fn only_loopback_is_a_target() {
        let p = ProbePolicy::default();
        assert!(matches!(
            p.target(Some(&config("http://127.0.0.1:9000", "/test-connection"))),
            Target::Probe(_)
        ));
        assert!(matches!(
            p.target(Some(&config("http://localhost:9000/", "/t"))),
            Target::Probe(_)
        ));
        let skip = |t: Target| match t {
            Target::Skip(why) => why,
            Target::Probe(u) => panic!("would probe {u:?}"),
        };
        let why = skip(p.target(Some(&config("https://api.riverflow.example", "/test-connection"))));
        assert!(why.starts_with("probe skipped: host not allowed"), "{why}");
        assert!(skip(p.target(Some(&config("http://10.0.0.1", "/t")))).contains("host not allowed"));
        assert!(skip(p.target(Some(&config("https://127.0.0.1", "/t")))).contains("only plain http"));
        assert!(
            skip(p.target(Some(&config("http://127.0.0.1", "")))).contains("no test-connection endpoint")
        );
        assert!(skip(p.target(None)).contains("no configuration"));
        let extra = ProbePolicy::new(&["Partner.Test".into()]);
        assert!(matches!(
            extra.target(Some(&config("http://partner.test:1", "/t"))),
            Target::Probe(_)
        ));
    }

    #[test]
    fn responses_split_with_length_or_chunks() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4\r\n\r\nabcdEXTRA";
        assert_eq!(split_response(raw).unwrap(), (200, b"abcd".to_vec()));
        let raw =
            b"HTTP/1.1 500 Oops\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        assert_eq!(split_response(raw).unwrap(), (500, b"abcde".to_vec()));
        let raw = b"HTTP/1.0 204 No Content\r\n\r\n";
        assert_eq!(split_response(raw).unwrap(), (204, Vec::new()));
        assert!(split_response(b"SSH-2.0\r\n\r\n").is_err());
        assert!(split_response(b"HTTP/1.1 200 OK\r\n").is_err());
    }

    #[test]
    fn answers_are_judged() {
        let pass = judge(
            200,
            br#"{"test_results":[{"test_name":"connect","status":"PASS","message":"ok"},{"test_name":"read","status":"PASS"}]}"#,
        );
        assert_eq!(pass.status(), TestStatus::Pass);
        assert_eq!(pass.tests.len(), 2);
        assert_eq!(pass.tests[0].message, "ok");
        let fail = judge(
            200,
            br#"{"test_results":[{"test_name":"connect","status":"PASS"},{"test_name":"write","status":"FAIL","message":"denied"}]}"#,
        );
        assert_eq!(fail.status(), TestStatus::Fail);
        assert_eq!(fail.message, "failed: write");
        let unknown = judge(200, br#"{"test_results":[{"test_name":"x","status":"UNKNOWN"}]}"#);
        assert_eq!(unknown.status(), TestStatus::Unknown);
        let unauthorized = judge(
            401,
            br#"{"error_reason":"unauthorized","display_message":"bad credentials","debugging_message":"x"}"#,
        );
        assert_eq!(unauthorized.status(), TestStatus::Fail);
        assert_eq!(unauthorized.http_status, 401);
        assert_eq!(unauthorized.error_reason, "unauthorized");
        assert!(unauthorized.message.contains("bad credentials"));
        let html = judge(200, b"<html>hello</html>");
        assert_eq!(html.status(), TestStatus::Fail);
        assert_eq!(judge(503, b"").message, "test-connection returned HTTP 503");
    }
}
