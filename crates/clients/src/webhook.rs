//! Webhook delivery (issue 16): one signed HTTP POST of a JSON body to a
//! target's URL ([`WebhookSender::deliver`]), and the back-off between
//! attempts ([`Backoff`], [`Backoff::next`]). The outbox that calls them (which message, which
//! attempt, when) belongs to the escalation service.
//!
//! A delivery carries
//! - `Content-Type: application/json` and the body exactly as given (it
//!   must parse as JSON);
//! - `traceparent`: the caller's W3C trace context (validated: version 00,
//!   lowercase hex, non-zero ids), so the receiver can join the incident's
//!   trace;
//! - `Idempotency-Key`: the message's key, the same on every attempt, so a
//!   receiver can drop duplicates (1 to [`MAX_IDEMPOTENCY_KEY_LEN`] visible
//!   ASCII characters, no spaces);
//! - `Tilewave-Signature: t=<unix seconds>,v1=<hex>`
//!   (`tilewave_secrets::webhook`), HMAC-SHA256 over `"<t>.<body>"` with the
//!   target's secret; `t` is the caller's time of this attempt, so each
//!   attempt is signed afresh and a retry after a long back-off is not
//!   refused as stale;
//! - `User-Agent: tilewave-webhook/<version>`.
//!
//! Traffic goes only where the shared egress policy allows
//! ([`crate::egress`]: loopback, or allowed names resolving to loopback);
//! a refused host is never resolved. The client is
//! [`crate::egress::http_client`]: no proxies, no redirects followed,
//! HTTP/1.1, a connect timeout and a total timeout.
//!
//! The [`Outcome`] is typed: `Delivered(status)` for a 2xx;
//! `Retryable(reason)` for a connection failure, a timeout, a 408, a 429 or
//! a 5xx; `Permanent(reason)` for any other answer (a 3xx, another 4xx)
//! and for a delivery that cannot be made (a bad URL, traceparent, key or
//! body, a host the policy refuses). A reason names the target only by its
//! origin (`scheme://host:port`: a webhook's path often holds a token) and
//! never holds the secret or the signature.

use std::time::Duration;

use tilewave_core::quote::quoted;
use tilewave_secrets::Secret;

use crate::egress::{self, ClientOptions, EgressError, EgressPolicy, HttpUrl, LoopbackResolver};

/// The `User-Agent` of deliveries.
pub const USER_AGENT: &str = concat!("tilewave-webhook/", env!("CARGO_PKG_VERSION"));
/// The header holding the message's idempotency key.
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";
/// The W3C trace-context header.
pub const TRACEPARENT_HEADER: &str = "traceparent";
/// The signature header (`tilewave_secrets::webhook::SIGNATURE_HEADER`).
pub const SIGNATURE_HEADER: &str = tilewave_secrets::webhook::SIGNATURE_HEADER;
/// The longest idempotency key sent.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 200;
/// The largest body sent (a notification is small).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// How long connecting may take by default.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one delivery attempt may take by default, connection included.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// What one delivery attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The receiver answered 2xx (the status).
    Delivered(u16),
    /// Worth another attempt later: a connection failure, a timeout, 408,
    /// 429 or 5xx (why).
    Retryable(String),
    /// Another attempt would fail the same way: a 3xx or another 4xx, or a
    /// delivery that cannot be made (why).
    Permanent(String),
}

impl Outcome {
    /// Whether it was delivered.
    pub fn is_delivered(&self) -> bool {
        matches!(self, Outcome::Delivered(_))
    }

    /// Whether another attempt is worth making.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Outcome::Retryable(_))
    }
}

/// One delivery to make.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// The target's URL (`http` or `https`).
    pub url: &'a str,
    /// The JSON body, sent (and signed) byte for byte.
    pub body: &'a [u8],
    /// The W3C `traceparent` to send.
    pub traceparent: &'a str,
    /// The message's idempotency key (the same on every attempt).
    pub idempotency_key: &'a str,
    /// The target's secret (its `Debug` is redacted).
    pub secret: &'a Secret,
    /// The time of this attempt, unix seconds (the signature's `t`).
    pub signed_at: u64,
}

/// The sender's timeouts and trust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderSettings {
    /// How long connecting may take.
    pub connect_timeout: Duration,
    /// How long one attempt may take, connection included.
    pub timeout: Duration,
    /// PEM certificates trusted for HTTPS besides the webpki roots.
    pub ca_pem: Option<Vec<u8>>,
}

impl Default for SenderSettings {
    fn default() -> Self {
        Self {
            connect_timeout: CONNECT_TIMEOUT,
            timeout: DELIVERY_TIMEOUT,
            ca_pem: None,
        }
    }
}

/// Delivers webhooks (one per process; connections are pooled).
#[derive(Debug, Clone)]
pub struct WebhookSender {
    http: reqwest::Client,
    resolver: LoopbackResolver,
}

impl WebhookSender {
    /// A sender calling only what `policy` allows.
    pub fn new(policy: EgressPolicy, settings: &SenderSettings) -> Result<Self, EgressError> {
        let resolver = LoopbackResolver::new(policy);
        let http = egress::http_client(
            &resolver,
            &ClientOptions {
                connect_timeout: settings.connect_timeout,
                timeout: settings.timeout,
                ca_pem: settings.ca_pem.clone(),
                user_agent: USER_AGENT.to_owned(),
            },
        )?;
        Ok(Self { http, resolver })
    }

    /// Makes one attempt of `delivery` (see the module docs).
    pub async fn deliver(&self, delivery: &Delivery<'_>) -> Outcome {
        let url = match check(delivery) {
            Ok(url) => url,
            Err(why) => return Outcome::Permanent(why),
        };
        let target = url.origin();
        match self.resolver.resolve(&url.host, url.port).await {
            Ok(_) => {}
            // A name that does not resolve now may resolve later.
            Err(e @ EgressError::DoesNotResolve { .. }) => {
                return Outcome::Retryable(format!("webhook to {target}: {e}"));
            }
            Err(e) => return Outcome::Permanent(format!("webhook to {target}: {e}")),
        }
        let signature = tilewave_secrets::webhook::sign(delivery.secret, delivery.signed_at, delivery.body);
        let mut signature = match reqwest::header::HeaderValue::from_str(&signature) {
            Ok(v) => v,
            Err(_) => return Outcome::Permanent("the signature is not a header value".to_owned()),
        };
        signature.set_sensitive(true);
        let request = self
            .http
            .post(url.to_string())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(TRACEPARENT_HEADER, delivery.traceparent)
            .header(IDEMPOTENCY_KEY_HEADER, delivery.idempotency_key)
            .header(SIGNATURE_HEADER, signature)
            .body(delivery.body.to_vec());
        match request.send().await {
            Ok(response) => judge(response.status().as_u16(), &target),
            Err(e) => {
                let why = egress::describe(e.without_url());
                Outcome::Retryable(format!("webhook to {target}: {why}"))
            }
        }
    }
}

/// What an answer's status means.
pub fn judge(status: u16, target: &str) -> Outcome {
    match status {
        200..=299 => Outcome::Delivered(status),
        408 | 429 | 500..=599 => Outcome::Retryable(format!("webhook to {target}: HTTP {status}")),
        300..=399 => Outcome::Permanent(format!(
            "webhook to {target}: HTTP {status} (redirects are not followed)"
        )),
        _ => Outcome::Permanent(format!("webhook to {target}: HTTP {status}")),
    }
}

/// Checks a delivery before anything is sent; its parsed URL.
fn check(delivery: &Delivery<'_>) -> Result<HttpUrl, String> {
    let url = HttpUrl::parse(delivery.url).map_err(|e| format!("the webhook URL is not usable: {e}"))?;
    validate_traceparent(delivery.traceparent)?;
    validate_idempotency_key(delivery.idempotency_key)?;
    if delivery.body.len() > MAX_BODY_BYTES {
        return Err(format!(
            "the webhook body is {} bytes, at most {MAX_BODY_BYTES} are sent",
            delivery.body.len()
        ));
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(delivery.body)
        .map_err(|e| format!("the webhook body is not JSON: {e}"))?;
    Ok(url)
}

/// Checks a `traceparent` value as W3C Trace Context writes it (version
/// 00): `00-<32 hex>-<16 hex>-<2 hex>`, lowercase, ids not all zeros.
pub fn validate_traceparent(value: &str) -> Result<(), String> {
    let bad = |what: &str| format!("traceparent {}: {what}", quoted(value));
    let parts: Vec<&str> = value.split('-').collect();
    let [version, trace_id, parent_id, flags] = parts.as_slice() else {
        return Err(bad("expected 00-<32 hex>-<16 hex>-<2 hex>"));
    };
    let hex =
        |s: &str, len: usize| s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if *version != "00" {
        return Err(bad("the version must be 00"));
    }
    if !hex(trace_id, 32) {
        return Err(bad("the trace id must be 32 lowercase hex digits"));
    }
    if !hex(parent_id, 16) {
        return Err(bad("the parent id must be 16 lowercase hex digits"));
    }
    if !hex(flags, 2) {
        return Err(bad("the flags must be 2 lowercase hex digits"));
    }
    if trace_id.bytes().all(|b| b == b'0') {
        return Err(bad("the trace id must not be all zeros"));
    }
    if parent_id.bytes().all(|b| b == b'0') {
        return Err(bad("the parent id must not be all zeros"));
    }
    Ok(())
}

/// Checks an idempotency key: 1 to [`MAX_IDEMPOTENCY_KEY_LEN`] visible
/// ASCII characters (no spaces or control characters).
pub fn validate_idempotency_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("the idempotency key is empty".to_owned());
    }
    if key.len() > MAX_IDEMPOTENCY_KEY_LEN {
        return Err(format!(
            "the idempotency key is {} bytes, at most {MAX_IDEMPOTENCY_KEY_LEN} are sent",
            key.len()
        ));
    }
    if let Some(at) = key.bytes().position(|b| !b.is_ascii_graphic()) {
        return Err(format!(
            "the idempotency key {} holds a space, a control or a non-ASCII character at byte {at}",
            quoted(key)
        ));
    }
    Ok(())
}

/// What a sender does after an attempt ([`Backoff::next`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Delivered (the status): nothing more to do.
    Done(u16),
    /// Try again after this wait.
    RetryIn(Duration),
    /// Stop trying (why: the permanent failure, or the last retryable one).
    GiveUp(String),
}

/// When to try a delivery again: exponential back-off with a cap, bounded
/// jitter and a limit on attempts. Pure: the random value comes in as an
/// argument.
///
/// After failed attempt `n` (1-based) the wait is `first * 2^(n-1)`, at
/// most `cap`, less up to `jitter_percent` % of it: with `random` in
/// `[0, 1]`, `base * (1 - jitter_percent/100 * random)`. So every wait lies
/// in `[base * (1 - jitter), base]`, never above the cap, and retries of
/// many messages spread out instead of arriving together. After attempt
/// `max_attempts` there is no next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failed attempt.
    pub first: Duration,
    /// The longest wait.
    pub cap: Duration,
    /// How much of a wait jitter may take away, 0 to 100 (more counts as
    /// 100).
    pub jitter_percent: u8,
    /// How many attempts in all (the first included).
    pub max_attempts: u32,
}

impl Default for Backoff {
    /// 1 s, doubling, at most 60 s, 20 % jitter, 10 attempts (about four
    /// minutes of retrying in all).
    fn default() -> Self {
        Self {
            first: Duration::from_secs(1),
            cap: Duration::from_secs(60),
            jitter_percent: 20,
            max_attempts: 10,
        }
    }
}

impl Backoff {
    /// The wait before the attempt after failed attempt `failed_attempt`
    /// (1-based; 0 counts as 1), or `None` when it was the last allowed.
    /// `random` is a uniform draw from `[0, 1]` (clamped; NaN counts as 0).
    pub fn delay(&self, failed_attempt: u32, random: f64) -> Option<Duration> {
        let failed_attempt = failed_attempt.max(1);
        if failed_attempt >= self.max_attempts {
            return None;
        }
        let base = self.base(failed_attempt);
        let random = if random.is_nan() {
            0.0
        } else {
            random.clamp(0.0, 1.0)
        };
        let jitter = f64::from(self.jitter_percent.min(100)) / 100.0;
        Some(base.mul_f64(1.0 - jitter * random).min(base))
    }

    /// What to do after attempt `attempt` (1-based) came to `outcome`:
    /// done, try again after [`Backoff::delay`], or give up (a permanent
    /// failure, or a retryable one on the last allowed attempt).
    pub fn next(&self, outcome: &Outcome, attempt: u32, random: f64) -> Next {
        match outcome {
            Outcome::Delivered(status) => Next::Done(*status),
            Outcome::Permanent(why) => Next::GiveUp(why.clone()),
            Outcome::Retryable(why) => match self.delay(attempt, random) {
                Some(wait) => Next::RetryIn(wait),
                None => Next::GiveUp(format!("gave up after {} attempt(s): {why}", attempt.max(1))),
            },
        }
    }

    /// The wait before jitter after failed attempt `n` (1-based).
    fn base(&self, n: u32) -> Duration {
        let doublings = n.saturating_sub(1);
        let factor = 1u32.checked_shl(doublings).filter(|_| doublings < 32);
        factor
            .and_then(|f| self.first.checked_mul(f))
            .map_or(self.cap, |d| d.min(self.cap))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_table() {
        let b = Backoff {
            first: Duration::from_secs(1),
            cap: Duration::from_secs(10),
            jitter_percent: 20,
            max_attempts: 6,
        };
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        let cases: [(u32, f64, Option<Duration>); 14] = [
            (0, 0.0, Some(s(1))),
            (1, 0.0, Some(s(1))),
            (1, 1.0, Some(ms(800))),
            (1, 0.5, Some(ms(900))),
            (2, 0.0, Some(s(2))),
            (3, 0.0, Some(s(4))),
            (4, 0.0, Some(s(8))),
            (4, 1.0, Some(ms(6400))),
            (5, 0.0, Some(s(10))),
            (5, 1.0, Some(s(8))),
            (5, 7.0, Some(s(8))),
            (5, -3.0, Some(s(10))),
            (5, f64::NAN, Some(s(10))),
            (6, 0.0, None),
        ];
        for (attempt, random, expected) in cases {
            assert_eq!(
                b.delay(attempt, random),
                expected,
                "attempt {attempt}, random {random}"
            );
        }
        assert_eq!(b.delay(u32::MAX, 0.0), None);
    }

    #[test]
    fn backoff_never_overflows_and_stays_within_its_bounds() {
        let b = Backoff {
            first: Duration::from_secs(3600),
            cap: Duration::from_secs(7200),
            jitter_percent: 250,
            max_attempts: u32::MAX,
        };
        for attempt in [1, 2, 31, 32, 33, 64, 1000, u32::MAX - 1] {
            for random in [0.0, 0.25, 1.0] {
                let d = b.delay(attempt, random).unwrap();
                assert!(d <= b.cap, "attempt {attempt}: {d:?}");
            }
        }
        assert_eq!(
            b.delay(40, 1.0),
            Some(Duration::ZERO),
            "jitter over 100 % counts as 100 %"
        );
        let none = Backoff {
            jitter_percent: 0,
            ..b
        };
        assert_eq!(none.delay(1, 1.0), Some(Duration::from_secs(3600)));
        let once = Backoff {
            max_attempts: 1,
            ..Backoff::default()
        };
        assert_eq!(once.delay(1, 0.0), None, "one attempt: no retry");
        let default = Backoff::default();
        let total: Duration = (1..default.max_attempts)
            .filter_map(|n| default.delay(n, 0.0))
            .sum();
        assert_eq!(total, Duration::from_secs(1 + 2 + 4 + 8 + 16 + 32 + 60 + 60 + 60));
    }

    #[test]
    fn the_next_step_follows_the_outcome_and_the_attempt() {
        let b = Backoff {
            first: Duration::from_secs(2),
            cap: Duration::from_secs(60),
            jitter_percent: 0,
            max_attempts: 3,
        };
        let retry = Outcome::Retryable("HTTP 503".into());
        let cases = [
            (Outcome::Delivered(204), 1, Next::Done(204)),
            (Outcome::Delivered(200), 3, Next::Done(200)),
            (
                Outcome::Permanent("HTTP 400".into()),
                1,
                Next::GiveUp("HTTP 400".into()),
            ),
            (retry.clone(), 1, Next::RetryIn(Duration::from_secs(2))),
            (retry.clone(), 2, Next::RetryIn(Duration::from_secs(4))),
            (
                retry.clone(),
                3,
                Next::GiveUp("gave up after 3 attempt(s): HTTP 503".into()),
            ),
        ];
        for (outcome, attempt, expected) in cases {
            assert_eq!(
                b.next(&outcome, attempt, 0.5),
                expected,
                "{outcome:?} at {attempt}"
            );
        }
    }

    #[test]
    fn statuses_are_judged() {
        let t = "http://127.0.0.1:1";
        for (status, kind) in [
            (200, "delivered"),
            (202, "delivered"),
            (204, "delivered"),
            (301, "permanent"),
            (400, "permanent"),
            (401, "permanent"),
            (404, "permanent"),
            (408, "retryable"),
            (410, "permanent"),
            (422, "permanent"),
            (429, "retryable"),
            (500, "retryable"),
            (502, "retryable"),
            (503, "retryable"),
            (599, "retryable"),
        ] {
            let got = match judge(status, t) {
                Outcome::Delivered(s) => {
                    assert_eq!(s, status);
                    "delivered"
                }
                Outcome::Retryable(why) | Outcome::Permanent(why)
                    if !why.contains(&format!("HTTP {status}")) =>
                {
                    panic!("{status}: {why}")
                }
                Outcome::Retryable(_) => "retryable",
                Outcome::Permanent(_) => "permanent",
            };
            assert_eq!(got, kind, "{status}");
        }
    }

    #[test]
    fn traceparents_are_checked() {
        let ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(validate_traceparent(ok), Ok(()));
        assert_eq!(
            validate_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"),
            Ok(())
        );
        for (bad, says) in [
            ("", "expected 00-"),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
                "expected 00-",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
                "expected 00-",
            ),
            (
                "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "version",
            ),
            (
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "version",
            ),
            (
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                "trace id",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
                "trace id",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
                "parent id",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01",
                "parent id",
            ),
            ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1", "flags"),
            (
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                "all zeros",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                "all zeros",
            ),
            (
                " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "version",
            ),
        ] {
            let e = validate_traceparent(bad).unwrap_err();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
        let long = format!("{}-x", "a".repeat(10_000));
        assert!(
            validate_traceparent(&long).unwrap_err().len() < 300,
            "the quote is bounded"
        );
    }

    #[test]
    fn idempotency_keys_are_checked() {
        for ok in [
            "incident-7/level-1/target-2/repeat-0",
            "a",
            &"k".repeat(MAX_IDEMPOTENCY_KEY_LEN),
        ] {
            assert_eq!(validate_idempotency_key(ok), Ok(()), "{ok}");
        }
        for (bad, says) in [
            ("", "empty"),
            ("a b", "at byte 1"),
            ("a\nb", "at byte 1"),
            ("ключ", "at byte 0"),
            (&"k".repeat(MAX_IDEMPOTENCY_KEY_LEN + 1), "at most"),
        ] {
            let e = validate_idempotency_key(bad).unwrap_err();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }
}

/// The sender against the test kit's receiver double, over loopback HTTP.
#[cfg(test)]
mod delivery_tests {
    use super::*;
    use tilewave_secrets::webhook::{DEFAULT_TOLERANCE, verify};
    use tilewave_testkit::{Disposition, SignatureCheck, WebhookReceiver};

    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const SECRET: &str = "oncall-target-secret-0001";
    const NOW: u64 = 1_767_225_600;
    const BODY: &[u8] = br#"{"tile":"riverflow","regions":["aws:eu-west-1"],"severity":"SEV1","level":1,"sop":"http://127.0.0.1/sop/integration-health","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","links":{"show":"tilewave incident show inc-7"}}"#;

    fn sender(timeout: Duration) -> WebhookSender {
        WebhookSender::new(
            EgressPolicy::default(),
            &SenderSettings {
                connect_timeout: Duration::from_secs(2),
                timeout,
                ca_pem: None,
            },
        )
        .unwrap()
    }

    fn secret() -> Secret {
        Secret::from_text(SECRET).unwrap()
    }

    fn delivery<'a>(url: &'a str, key: &'a str, secret: &'a Secret) -> Delivery<'a> {
        Delivery {
            url,
            body: BODY,
            traceparent: TRACEPARENT,
            idempotency_key: key,
            secret,
            signed_at: NOW,
        }
    }

    /// A reason never shows the secret, the signature or the URL's path.
    fn assert_clean(outcome: &Outcome) {
        let shown = format!("{outcome:?}");
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(!shown.contains("v1="), "{shown}");
        assert!(!shown.contains("/hooks/token-"), "{shown}");
    }

    #[tokio::test]
    async fn a_delivery_is_signed_traced_and_keyed() {
        let receiver = WebhookReceiver::start().await.unwrap();
        let path = "/hooks/token-alice";
        let secret = secret();
        receiver.set_secret(path, secret.clone());
        receiver.expect(
            path,
            serde_json::json!({"tile": "riverflow", "severity": "SEV1", "level": 1}),
        );
        let url = receiver.url(path);
        let outcome = sender(DELIVERY_TIMEOUT)
            .deliver(&delivery(&url, "inc-7/level-1/alice/0", &secret))
            .await;
        assert_eq!(outcome, Outcome::Delivered(200));
        receiver.assert_all_expected_and_nothing_else();
        let [got] = receiver.deliveries().try_into().unwrap();
        assert_eq!(got.signature, SignatureCheck::Verified { timestamp: NOW });
        assert_eq!(got.traceparent.as_deref(), Some(TRACEPARENT));
        assert_eq!(got.idempotency_key.as_deref(), Some("inc-7/level-1/alice/0"));
        assert_eq!(got.content_type.as_deref(), Some("application/json"));
        assert_eq!(got.user_agent.as_deref(), Some(USER_AGENT));
        assert_eq!(got.raw_body.as_bytes(), BODY, "the body arrives byte for byte");
        // The header verifies with the public function too, within the
        // tolerance of the signing time.
        let header = got.signature_header.unwrap();
        assert!(verify(&secret, &header, BODY, NOW + 60, DEFAULT_TOLERANCE).is_ok());
        assert!(verify(&secret, &header, BODY, NOW + 3600, DEFAULT_TOLERANCE).is_err());
    }

    #[tokio::test]
    async fn a_failing_receiver_gets_the_message_once_per_key() {
        let receiver = WebhookReceiver::start().await.unwrap();
        let path = "/hooks/token-bob";
        let secret = secret();
        receiver.set_secret(path, secret.clone());
        receiver.expect(path, serde_json::json!({"severity": "SEV1"}));
        receiver.fail_next(2);
        let url = receiver.url(path);
        let sender = sender(DELIVERY_TIMEOUT);
        let mut outcomes = Vec::new();
        for attempt in 0..3u64 {
            let mut d = delivery(&url, "inc-7/level-1/bob/0", &secret);
            d.signed_at = NOW + attempt;
            outcomes.push(sender.deliver(&d).await);
        }
        let kinds: Vec<&str> = outcomes
            .iter()
            .map(|o| match o {
                Outcome::Delivered(200) => "delivered",
                Outcome::Retryable(why) if why.contains("HTTP 500") => "retryable",
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(kinds, ["retryable", "retryable", "delivered"]);
        outcomes.iter().for_each(assert_clean);
        // The sender's outbox crashes and sends again: the receiver drops it.
        let again = sender
            .deliver(&delivery(&url, "inc-7/level-1/bob/0", &secret))
            .await;
        assert_eq!(again, Outcome::Delivered(200));
        assert_eq!(receiver.deliveries().len(), 1);
        assert_eq!(receiver.duplicates(), 1);
        assert_eq!(receiver.requests().len(), 4);
        let [delivered] = receiver.deliveries().try_into().unwrap();
        assert_eq!(
            delivered.signature,
            SignatureCheck::Verified { timestamp: NOW + 2 },
            "each attempt is signed afresh"
        );
        receiver.assert_all_expected_and_nothing_else();
    }

    #[tokio::test]
    async fn a_retry_loop_on_the_back_off_delivers_once_or_gives_up() {
        let receiver = WebhookReceiver::start().await.unwrap();
        let secret = secret();
        receiver.set_secret("/h", secret.clone());
        receiver.expect("/h", serde_json::json!({"level": 1}));
        let url = receiver.url("/h");
        let sender = sender(DELIVERY_TIMEOUT);
        let backoff = Backoff {
            first: Duration::from_millis(1),
            cap: Duration::from_millis(4),
            jitter_percent: 50,
            max_attempts: 4,
        };
        // What an outbox does with one message: attempt, then follow `next`.
        let drain = |key: &'static str| {
            let (sender, url, secret) = (&sender, url.clone(), &secret);
            async move {
                let mut waits = Vec::new();
                for attempt in 1.. {
                    let outcome = sender.deliver(&delivery(&url, key, secret)).await;
                    match backoff.next(&outcome, attempt, 0.5) {
                        Next::RetryIn(wait) => {
                            waits.push(wait);
                            tokio::time::sleep(wait).await;
                        }
                        done => return (done, waits),
                    }
                }
                unreachable!()
            }
        };
        receiver.fail_next(2);
        let (done, waits) = drain("m1").await;
        assert_eq!(done, Next::Done(200));
        assert_eq!(waits, [Duration::from_micros(750), Duration::from_micros(1500)]);
        receiver.fail_next(10);
        let (done, waits) = drain("m2").await;
        assert!(
            matches!(&done, Next::GiveUp(why) if why.starts_with("gave up after 4 attempt(s)")),
            "{done:?}"
        );
        assert_eq!(waits.len(), 3);
        assert_eq!(receiver.deliveries().len(), 1);
        assert_eq!(receiver.requests().len(), 3 + 4);
        receiver.assert_all_expected_and_nothing_else();
    }

    #[tokio::test]
    async fn client_errors_are_permanent_and_throttling_is_retryable() {
        let receiver = WebhookReceiver::start().await.unwrap();
        let secret = secret();
        let url = receiver.url("/hooks/token-carol");
        let sender = sender(DELIVERY_TIMEOUT);
        for (status, retryable) in [(400, false), (404, false), (429, true), (503, true)] {
            receiver.fail_next_with(1, status);
            let outcome = sender.deliver(&delivery(&url, "k", &secret)).await;
            assert_eq!(outcome.is_retryable(), retryable, "{status}: {outcome:?}");
            assert!(!outcome.is_delivered());
            assert_clean(&outcome);
            let (Outcome::Retryable(why) | Outcome::Permanent(why)) = &outcome else {
                unreachable!()
            };
            assert!(why.contains(&format!("HTTP {status}")), "{why}");
            assert!(why.contains(&receiver.base_url()), "names the origin: {why}");
        }
        // A signature the receiver does not accept (another secret) is a 401.
        receiver.set_secret(
            "/hooks/token-carol",
            Secret::from_text("rotated-elsewhere").unwrap(),
        );
        let outcome = sender.deliver(&delivery(&url, "k2", &secret)).await;
        assert!(
            matches!(&outcome, Outcome::Permanent(why) if why.contains("HTTP 401")),
            "{outcome:?}"
        );
        assert_eq!(receiver.deliveries().len(), 0);
        assert_eq!(receiver.unexpected().len(), 1, "the forged delivery");
    }

    #[tokio::test]
    async fn refused_hosts_are_never_resolved_or_called() {
        let secret = secret();
        let sender = sender(DELIVERY_TIMEOUT);
        for url in [
            "https://hooks.example.com/services/token-dave",
            "http://10.0.0.1:9/hooks/token-dave",
            "http://[2001:db8::1]/hooks/token-dave",
        ] {
            let outcome = sender.deliver(&delivery(url, "k", &secret)).await;
            assert!(
                matches!(&outcome, Outcome::Permanent(why) if why.contains("host not allowed")),
                "{url}: {outcome:?}"
            );
            assert_clean(&outcome);
        }
        // The same kind of name, once allowed, is looked up (and fails to
        // resolve, or resolves off loopback): the refusal above was made
        // before any lookup.
        let allowing = WebhookSender::new(
            EgressPolicy::new(&["hooks.example.invalid".into()]),
            &SenderSettings::default(),
        )
        .unwrap();
        let outcome = allowing
            .deliver(&delivery("http://hooks.example.invalid/x", "k", &secret))
            .await;
        assert!(
            matches!(&outcome, Outcome::Retryable(why) if why.contains("does not resolve"))
                || matches!(&outcome, Outcome::Permanent(why) if why.contains("loopback")),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn a_stalled_receiver_times_out_and_a_closed_port_is_retryable() {
        let receiver = WebhookReceiver::start().await.unwrap();
        receiver.stall_next(1, Duration::from_secs(30));
        let secret = secret();
        let url = receiver.url("/hooks/token-erin");
        let started = tokio::time::Instant::now();
        let outcome = sender(Duration::from_millis(300))
            .deliver(&delivery(&url, "k", &secret))
            .await;
        assert!(
            matches!(&outcome, Outcome::Retryable(why) if why.contains("timed out")),
            "{outcome:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_clean(&outcome);
        assert_eq!(receiver.requests()[0].disposition, Disposition::Stalled);
        // Nothing listens on a port just released.
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        let url = format!("http://{closed}/hooks/token-erin");
        let outcome = sender(DELIVERY_TIMEOUT)
            .deliver(&delivery(&url, "k", &secret))
            .await;
        assert!(
            matches!(&outcome, Outcome::Retryable(why) if why.contains("could not connect")),
            "{outcome:?}"
        );
        assert_clean(&outcome);
    }

    #[tokio::test]
    async fn bad_deliveries_are_permanent_and_send_nothing() {
        let receiver = WebhookReceiver::start().await.unwrap();
        let secret = secret();
        let url = receiver.url("/hooks/token-frank");
        let sender = sender(DELIVERY_TIMEOUT);
        let good = delivery(&url, "k", &secret);
        let big = format!("[{}1]", "1,".repeat(MAX_BODY_BYTES / 2));
        let cases: Vec<(Delivery<'_>, &str)> = vec![
            (
                Delivery {
                    url: "ftp://127.0.0.1/x",
                    ..good
                },
                "not http or https",
            ),
            (
                Delivery {
                    url: "127.0.0.1/x",
                    ..good
                },
                "not an absolute URL",
            ),
            (
                Delivery {
                    traceparent: "00-abc",
                    ..good
                },
                "traceparent",
            ),
            (
                Delivery {
                    traceparent: "",
                    ..good
                },
                "traceparent",
            ),
            (
                Delivery {
                    idempotency_key: "",
                    ..good
                },
                "idempotency key is empty",
            ),
            (
                Delivery {
                    idempotency_key: "a b",
                    ..good
                },
                "idempotency key",
            ),
            (
                Delivery {
                    body: b"{not json",
                    ..good
                },
                "not JSON",
            ),
            (
                Delivery {
                    body: big.as_bytes(),
                    ..good
                },
                "at most",
            ),
        ];
        for (d, says) in cases {
            let outcome = sender.deliver(&d).await;
            assert!(
                matches!(&outcome, Outcome::Permanent(why) if why.contains(says)),
                "{says}: {outcome:?}"
            );
            assert_clean(&outcome);
        }
        assert!(receiver.requests().is_empty());
    }

    #[tokio::test]
    async fn https_targets_are_called_with_the_trusted_ca_only() {
        let pki = tilewave_testkit::Pki::shared().unwrap();
        let receiver = WebhookReceiver::start_https(pki).await.unwrap();
        let secret = secret();
        receiver.set_secret("/h", secret.clone());
        receiver.expect("/h", serde_json::json!({"tile": "riverflow"}));
        let url = receiver.url("/h");
        assert!(url.starts_with("https://"));
        let outcome = sender(DELIVERY_TIMEOUT)
            .deliver(&delivery(&url, "k", &secret))
            .await;
        assert!(outcome.is_retryable(), "an untrusted certificate: {outcome:?}");
        assert!(receiver.requests().is_empty());
        let trusting = WebhookSender::new(
            EgressPolicy::default(),
            &SenderSettings {
                ca_pem: Some(std::fs::read(pki.ca_cert()).unwrap()),
                ..SenderSettings::default()
            },
        )
        .unwrap();
        assert_eq!(
            trusting.deliver(&delivery(&url, "k", &secret)).await,
            Outcome::Delivered(200)
        );
        receiver.assert_all_expected_and_nothing_else();
    }
}
