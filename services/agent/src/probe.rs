//! The agent's HTTP client to partners: the synthetic probe and credential
//! verification, `POST {base_url}{test_connection_path}` from the region,
//! and what the partner's answer means (docs/domain.md, "The partner's
//! API").
//!
//! **Only loopback is ever contacted**, by the egress allow-list every
//! tilewave HTTP client shares (`tilewave_clients::egress`): a loopback
//! literal, `localhost`, or a name given with `--allow-probe-host` that
//! resolves to loopback (only allowed names are ever resolved, so a
//! fixture host such as `https://api.riverflow.example` does not even cause
//! a DNS query; the client's resolver, `LoopbackResolver`, answers nothing
//! else; proxies from the environment are ignored and redirects not
//! followed). Otherwise the probe reports UNKNOWN with "probe skipped:
//! ...", and the tile's health rests on the error rate and injected faults.
//!
//! The client is `tilewave_clients::egress::http_client`: reqwest over
//! hyper with rustls (ring; no native TLS, no aws-lc), HTTP/1.1, plain or
//! TLS (the webpki roots, plus [`ClientSettings::ca_pem`], `--partner-ca`),
//! with a connect timeout and a timeout on each attempt
//! ([`ClientSettings`]). A 5xx answer is tried again after each of
//! [`ClientSettings::retry_delays`] (1 s, 2 s, 4 s by default, as
//! docs/domain.md asks; tests inject shorter ones). With a credential the
//! call carries HTTP Basic auth; the header is marked sensitive and the
//! password never reaches a log, a span or a message.

use std::time::Duration;

use tilewave_clients::egress::{self, ClientOptions, EgressPolicy, HttpUrl, LoopbackResolver};

use jiff::Timestamp;
use tilewave_proto::common::v1::{PartnerConfig, ProbeResult, TestResult, TestStatus};
use tilewave_secrets::BasicCredential;
use tilewave_store::clock::to_proto_timestamp;

/// How long one attempt may take, connection included.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long connecting may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The waits before the retries of a 5xx answer (docs/domain.md).
pub const RETRY_DELAYS: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];
/// The least time worth starting an attempt (a retry) with.
pub const MIN_ATTEMPT: Duration = Duration::from_millis(100);
/// The largest response read; a partner's test-connection answer is small.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// The prefix of every skipped probe's message.
pub const SKIPPED: &str = "probe skipped";

/// What the probe will call, or why it will not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Call this URL.
    Probe(HttpUrl),
    /// Do not call; the reason, starting with [`SKIPPED`].
    Skip(String),
}

/// The probe target of a tile's configuration under the egress `policy`.
pub fn target(policy: &EgressPolicy, config: Option<&PartnerConfig>) -> Target {
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
    let parsed = match HttpUrl::parse(&url) {
        Ok(u) => u,
        Err(e) => return Target::Skip(format!("{SKIPPED}: bad URL: {e}")),
    };
    if let Err(refused) = policy.check_host(&parsed.host) {
        return Target::Skip(format!("{SKIPPED}: {refused}"));
    }
    Target::Probe(parsed)
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

/// The client's timeouts and retry waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    /// How long connecting may take.
    pub connect_timeout: Duration,
    /// How long one attempt (connect, send, read) may take.
    pub call_timeout: Duration,
    /// The waits before each retry of a 5xx answer; as many retries as
    /// entries.
    pub retry_delays: Vec<Duration>,
    /// PEM certificates trusted for HTTPS besides the webpki roots
    /// (`--partner-ca`; the test kit's CA in tests).
    pub ca_pem: Option<Vec<u8>>,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            connect_timeout: CONNECT_TIMEOUT,
            call_timeout: PROBE_TIMEOUT,
            retry_delays: RETRY_DELAYS.to_vec(),
            ca_pem: None,
        }
    }
}

/// The agent's HTTP client to partners (one per agent; connections are
/// pooled).
#[derive(Debug, Clone)]
pub struct PartnerClient {
    http: reqwest::Client,
    resolver: LoopbackResolver,
    settings: ClientSettings,
}

impl PartnerClient {
    /// A client calling only what `policy` allows.
    pub fn new(policy: EgressPolicy, settings: ClientSettings) -> Result<Self, String> {
        let resolver = LoopbackResolver::new(policy);
        let http = egress::http_client(
            &resolver,
            &ClientOptions {
                connect_timeout: settings.connect_timeout,
                timeout: settings.call_timeout,
                ca_pem: settings.ca_pem.clone(),
                user_agent: concat!("tilewave-agent/", env!("CARGO_PKG_VERSION")).to_owned(),
            },
        )
        .map_err(|e| match e {
            egress::EgressError::Ca { reason } => format!("the partner CA is not usable: {reason}"),
            other => other.to_string(),
        })?;
        Ok(Self {
            http,
            resolver,
            settings,
        })
    }

    /// Its settings.
    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    /// Calls the target (with `credential` as HTTP Basic auth when given),
    /// retrying a 5xx answer, and judges the answer. `region` goes into the
    /// request body; `checked_at` is the domain time of the probe.
    pub async fn run(
        &self,
        url: &HttpUrl,
        region: &str,
        credential: Option<&BasicCredential>,
        checked_at: Timestamp,
    ) -> ProbeResult {
        self.run_until(url, region, credential, checked_at, None).await
    }

    /// As [`PartnerClient::run`], done by `deadline` (the gRPC caller's):
    /// an attempt gets at most the time left, and a retry is not waited for
    /// when it could not finish in time (the last answer stands).
    pub async fn run_until(
        &self,
        url: &HttpUrl,
        region: &str,
        credential: Option<&BasicCredential>,
        checked_at: Timestamp,
        deadline: Option<tokio::time::Instant>,
    ) -> ProbeResult {
        let started = tokio::time::Instant::now();
        if let Err(why) = self.resolver.resolve(&url.host, url.port).await {
            return unknown(format!("{SKIPPED}: {why}"), checked_at);
        }
        let body = serde_json::json!({
            "connection_id": "tilewave-synthetic-probe",
            "synthetic_probe": true,
            "region": region,
        })
        .to_string();
        let mut attempt = 0usize;
        let mut result = loop {
            let left = deadline.map(|d| d.saturating_duration_since(tokio::time::Instant::now()));
            let timeout = left.map_or(self.settings.call_timeout, |l| l.min(self.settings.call_timeout));
            let outcome = self.attempt(url, &body, credential, timeout).await;
            let retry = match &outcome {
                Ok((status, _)) if (500..600).contains(status) => self
                    .settings
                    .retry_delays
                    .get(attempt)
                    .filter(|delay| match deadline {
                        None => true,
                        Some(d) => tokio::time::Instant::now() + **delay + MIN_ATTEMPT < d,
                    }),
                _ => None,
            };
            match (outcome, retry) {
                (Ok(_), Some(delay)) => {
                    attempt += 1;
                    tokio::time::sleep(*delay).await;
                }
                (Ok((status, bytes)), None) => break judge(status, &bytes),
                (Err(e), _) => {
                    break ProbeResult {
                        status: TestStatus::Fail as i32,
                        message: format!("test-connection call failed: {e}"),
                        ..Default::default()
                    };
                }
            }
        };
        if attempt > 0 {
            result.message = format!("{} (after {attempt} retries)", result.message);
        }
        result.latency = prost_types::Duration::try_from(started.elapsed()).ok();
        result.checked_at = Some(to_proto_timestamp(checked_at));
        result
    }

    /// One POST: the status and the body, or why none arrived.
    async fn attempt(
        &self,
        url: &HttpUrl,
        body: &str,
        credential: Option<&BasicCredential>,
        timeout: Duration,
    ) -> Result<(u16, Vec<u8>), String> {
        let mut request = self
            .http
            .post(url.to_string())
            .timeout(timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body.to_owned());
        if let Some(c) = credential {
            request = request.basic_auth(&c.user, Some(c.password.expose()));
        }
        let mut response = request.send().await.map_err(egress::describe)?;
        let status = response.status().as_u16();
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(egress::describe)? {
            if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(format!("response larger than {MAX_RESPONSE_BYTES} bytes"));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok((status, bytes))
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
    fn only_loopback_is_a_target() {
        let p = EgressPolicy::default();
        assert!(matches!(
            target(&p, Some(&config("http://127.0.0.1:9000", "/test-connection"))),
            Target::Probe(_)
        ));
        assert!(matches!(
            target(&p, Some(&config("http://localhost:9000/", "/t"))),
            Target::Probe(_)
        ));
        let skip = |t: Target| match t {
            Target::Skip(why) => why,
            Target::Probe(u) => panic!("would probe {u:?}"),
        };
        let why = skip(target(
            &p,
            Some(&config("https://api.riverflow.example", "/test-connection")),
        ));
        assert!(why.starts_with("probe skipped: host not allowed"), "{why}");
        assert!(skip(target(&p, Some(&config("http://10.0.0.1", "/t")))).contains("host not allowed"));
        assert!(matches!(
            target(&p, Some(&config("https://127.0.0.1:8443", "/t"))),
            Target::Probe(_)
        ));
        assert!(
            skip(target(&p, Some(&config("http://127.0.0.1", "")))).contains("no test-connection endpoint")
        );
        assert!(skip(target(&p, None)).contains("no configuration"));
        let extra = EgressPolicy::new(&["Partner.Test".into()]);
        assert!(matches!(
            target(&extra, Some(&config("http://partner.test:1", "/t"))),
            Target::Probe(_)
        ));
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

    /// A client with short retry waits, for the partner double.
    fn client(delays: &[u64]) -> PartnerClient {
        PartnerClient::new(
            EgressPolicy::default(),
            ClientSettings {
                retry_delays: delays.iter().map(|ms| Duration::from_millis(*ms)).collect(),
                ..ClientSettings::default()
            },
        )
        .unwrap()
    }

    fn basic(user: &str, password: &str) -> BasicCredential {
        BasicCredential {
            user: user.into(),
            password: tilewave_secrets::Secret::from_text(password).unwrap(),
        }
    }

    async fn double() -> (tilewave_testkit::PartnerDouble, HttpUrl) {
        let partner = tilewave_testkit::PartnerDouble::start().await.unwrap();
        let url = HttpUrl::parse(&format!(
            "{}{}",
            partner.base_url(),
            tilewave_testkit::partner::TEST_CONNECTION_PATH
        ))
        .unwrap();
        (partner, url)
    }

    #[tokio::test]
    async fn a_500_is_retried_after_each_delay_then_stands() {
        let (partner, url) = double().await;
        partner.accept("u", "p");
        let c = client(&[1, 2, 4]);
        partner.fail_next(3);
        let r = c
            .run(
                &url,
                "aws:eu-west-1",
                Some(&basic("u", "p")),
                Timestamp::UNIX_EPOCH,
            )
            .await;
        assert_eq!(r.status(), TestStatus::Pass, "{r:?}");
        assert!(r.message.ends_with("(after 3 retries)"), "{}", r.message);
        assert_eq!(partner.requests().len(), 4);
        partner.clear_requests();
        partner.fail_next(4);
        let r = c
            .run(
                &url,
                "aws:eu-west-1",
                Some(&basic("u", "p")),
                Timestamp::UNIX_EPOCH,
            )
            .await;
        assert_eq!((r.status(), r.http_status), (TestStatus::Fail, 500), "{r:?}");
        assert_eq!(partner.requests().len(), 4, "three retries, no more");
        let none = client(&[]);
        partner.clear_requests();
        partner.fail_next(1);
        let r = none
            .run(
                &url,
                "aws:eu-west-1",
                Some(&basic("u", "p")),
                Timestamp::UNIX_EPOCH,
            )
            .await;
        assert_eq!(r.http_status, 500);
        assert_eq!(partner.requests().len(), 1);
    }

    #[tokio::test]
    async fn a_401_is_a_rejection_and_the_password_is_never_shown() {
        let (partner, url) = double().await;
        partner.accept("u", "right-password");
        let c = client(&[1]);
        let r = c
            .run(
                &url,
                "r",
                Some(&basic("u", "wrong-password")),
                Timestamp::UNIX_EPOCH,
            )
            .await;
        assert_eq!((r.status(), r.http_status), (TestStatus::Fail, 401));
        assert_eq!(r.error_reason, "unauthorized");
        assert!(!format!("{r:?}").contains("wrong-password"));
        let r = c.run(&url, "r", None, Timestamp::UNIX_EPOCH).await;
        assert_eq!(r.http_status, 401, "no credential, no auth header");
        assert_eq!(partner.requests()[1].user, None);
        let r = c
            .run(
                &url,
                "r",
                Some(&basic("u", "right-password")),
                Timestamp::UNIX_EPOCH,
            )
            .await;
        assert_eq!(r.status(), TestStatus::Pass, "{r:?}");
        assert_eq!(partner.auth_failures(), 2);
    }

    #[tokio::test]
    async fn hosts_the_egress_policy_refuses_are_skipped_never_called() {
        let c = client(&[]);
        let url = HttpUrl::parse("http://10.0.0.1:9/t").unwrap();
        let r = c.run(&url, "r", None, Timestamp::UNIX_EPOCH).await;
        assert_eq!(r.status(), TestStatus::Unknown);
        assert!(
            r.message
                .starts_with("probe skipped: host not allowed (10.0.0.1;"),
            "{}",
            r.message
        );
        // An allowed name that does not resolve (or not to loopback) is
        // skipped too.
        let named = PartnerClient::new(
            EgressPolicy::new(&["partner.test".into()]),
            ClientSettings::default(),
        )
        .unwrap();
        let url = HttpUrl::parse("http://partner.test:9/t").unwrap();
        let r = named.run(&url, "r", None, Timestamp::UNIX_EPOCH).await;
        assert_eq!(r.status(), TestStatus::Unknown);
        assert!(r.message.starts_with(SKIPPED), "{}", r.message);
    }

    #[tokio::test]
    async fn retries_stop_short_of_the_callers_deadline() {
        let (partner, url) = double().await;
        partner.accept("u", "p");
        partner.fail_next(10);
        let c = client(&[1, 60_000, 60_000]);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        let r = c
            .run_until(
                &url,
                "r",
                Some(&basic("u", "p")),
                Timestamp::UNIX_EPOCH,
                Some(deadline),
            )
            .await;
        assert!(tokio::time::Instant::now() < deadline);
        assert_eq!(r.http_status, 500, "{r:?}");
        assert_eq!(
            partner.requests().len(),
            2,
            "one retry fits, a minute-long wait does not"
        );
        assert!(r.message.ends_with("(after 1 retries)"), "{}", r.message);
    }

    #[tokio::test]
    async fn https_partners_are_called_with_the_trusted_ca_only() {
        let pki = tilewave_testkit::Pki::shared().unwrap();
        let partner = tilewave_testkit::PartnerDouble::start_https(Default::default(), pki)
            .await
            .unwrap();
        partner.accept("u", "p");
        let url = HttpUrl::parse(&format!(
            "{}{}",
            partner.base_url(),
            tilewave_testkit::partner::TEST_CONNECTION_PATH
        ))
        .unwrap();
        assert_eq!(url.scheme, "https");
        let untrusting = client(&[]);
        let r = untrusting
            .run(&url, "r", Some(&basic("u", "p")), Timestamp::UNIX_EPOCH)
            .await;
        assert_eq!((r.status(), r.http_status), (TestStatus::Fail, 0), "{r:?}");
        assert!(
            partner.requests().is_empty(),
            "no request without a trusted certificate"
        );
        let trusting = PartnerClient::new(
            EgressPolicy::default(),
            ClientSettings {
                ca_pem: Some(std::fs::read(pki.ca_cert()).unwrap()),
                ..ClientSettings::default()
            },
        )
        .unwrap();
        let r = trusting
            .run(&url, "r", Some(&basic("u", "p")), Timestamp::UNIX_EPOCH)
            .await;
        assert_eq!(r.status(), TestStatus::Pass, "{r:?}");
        assert_eq!(partner.requests()[0].matched, Some(0));
        assert!(
            PartnerClient::new(
                EgressPolicy::default(),
                ClientSettings {
                    ca_pem: Some(b"not a certificate".to_vec()),
                    ..ClientSettings::default()
                },
            )
            .is_err()
        );
    }
}
