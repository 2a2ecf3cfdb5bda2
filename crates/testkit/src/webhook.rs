//! A webhook receiver double: a real HTTP/1.1 server on `127.0.0.1` (axum
//! over hyper, as [`crate::PartnerDouble`]) that records every request and
//! lets a test fail on any notification it did not expect, as GoAlert's
//! smoke harness does.
//!
//! - **Targets are paths.** `receiver.url("/alice")` is one target's URL;
//!   [`WebhookReceiver::set_secret`] gives a path its secret. A request to a
//!   path with a secret whose `Tilewave-Signature` does not verify (the MAC
//!   only: the signed time is recorded, for the test to judge) is answered
//!   401 and recorded as rejected.
//! - **Every request is recorded** ([`WebhookReceiver::requests`]): path,
//!   the headers of interest (`traceparent`, `Idempotency-Key`, the
//!   signature, `Content-Type`, `User-Agent`), the body parsed as JSON, the
//!   signature check, the status answered and what became of it
//!   ([`Disposition`]).
//! - **Duplicates are dropped by idempotency key**, as a receiver should:
//!   the first accepted request with a key is a delivery; later ones are
//!   answered 200 and recorded as [`Disposition::Duplicate`]
//!   ([`WebhookReceiver::duplicates`]). A request without a key, with a body
//!   that is not JSON, or not a POST is rejected (400, 405).
//! - **Faults**: [`WebhookReceiver::fail_next`] answers the next N requests
//!   with 500 (or [`WebhookReceiver::fail_next_with`] a given status)
//!   before anything else is checked; [`WebhookReceiver::stall_next`] holds
//!   the next N requests for a while before answering 503 (for timeouts).
//!   A failed request registers no key, so its retry is a delivery.
//! - **Expectations**: [`WebhookReceiver::expect`] (JSON fields the body
//!   must contain) and [`WebhookReceiver::expect_matching`] (a predicate)
//!   register one expected delivery each for a path. Each delivery is
//!   matched to the oldest unmet expectation it satisfies; one that
//!   matches none is *unexpected* ([`WebhookReceiver::unexpected`], rejected
//!   requests included). [`WebhookReceiver::assert_all_expected_and_nothing_else`]
//!   panics naming the unmet expectations and the unexpected requests;
//!   [`WebhookReceiver::fail_on_drop`] makes dropping the receiver do the
//!   same check (unless the test is already panicking).
//! - **Waiting** polls against a deadline ([`WebhookReceiver::wait_for_deliveries`],
//!   [`WebhookReceiver::wait_for_expected`]), never sleeps a fixed time.
//!
//! Plain HTTP by default; [`WebhookReceiver::start_https`] serves HTTPS with
//! a certificate from the test kit's CA. The server stops when the receiver
//! is dropped.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use tilewave_secrets::Secret;
use tilewave_secrets::webhook::{SIGNATURE_HEADER, Signature};

/// The idempotency-key header the receiver reads.
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";

/// What became of the signature header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureCheck {
    /// The path has a secret and a `v1` MAC matched; the signed time.
    Verified {
        /// The header's `t`, unix seconds.
        timestamp: u64,
    },
    /// The path has no secret, so nothing was checked.
    NoSecret,
    /// The path has a secret but the request carried no signature.
    Missing,
    /// The path has a secret and the signature did not verify (why).
    Invalid(String),
}

impl SignatureCheck {
    /// Whether it verified.
    pub fn verified(&self) -> bool {
        matches!(self, SignatureCheck::Verified { .. })
    }
}

/// What the receiver made of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// The first accepted request with its idempotency key.
    Delivered,
    /// Accepted before with the same key (the `seq` of the delivery); 200.
    Duplicate {
        /// The `seq` of the first delivery with the key.
        first: usize,
    },
    /// Answered with an injected failure status.
    InjectedFailure,
    /// Held, then answered 503 (an injected stall).
    Stalled,
    /// Refused: no key, not JSON, a signature that did not verify, not a
    /// POST (why).
    Rejected(String),
}

/// One request the receiver answered.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookRequest {
    /// Its position among all requests, from 0.
    pub seq: usize,
    /// `POST`, ...
    pub method: String,
    /// The path (the target), without the query.
    pub path: String,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `User-Agent`.
    pub user_agent: Option<String>,
    /// `traceparent`.
    pub traceparent: Option<String>,
    /// `Idempotency-Key`.
    pub idempotency_key: Option<String>,
    /// The `Tilewave-Signature` header as received.
    pub signature_header: Option<String>,
    /// The signature check against the path's secret.
    pub signature: SignatureCheck,
    /// The body as JSON (`Null` when it is not JSON).
    pub body: serde_json::Value,
    /// The body as text (lossy UTF-8).
    pub raw_body: String,
    /// The status answered.
    pub status: u16,
    /// What became of it.
    pub disposition: Disposition,
    /// The expectation it met (its id), if any.
    pub expectation: Option<usize>,
}

/// A predicate over a delivery.
type Predicate = Box<dyn Fn(&WebhookRequest) -> bool + Send + Sync>;

struct Expectation {
    path: String,
    description: String,
    predicate: Predicate,
    met_by: Option<usize>,
}

#[derive(Default)]
struct State {
    secrets: HashMap<String, Secret>,
    fail_next: u32,
    fail_status: u16,
    stall_next: u32,
    stall_for: Duration,
    log: Vec<WebhookRequest>,
    keys: HashMap<String, usize>,
    expectations: Vec<Expectation>,
}

impl State {
    /// The delivered and rejected requests no expectation accounts for.
    fn unexpected(&self) -> Vec<WebhookRequest> {
        self.log
            .iter()
            .filter(|r| match &r.disposition {
                Disposition::Delivered => r.expectation.is_none(),
                Disposition::Rejected(_) => true,
                _ => false,
            })
            .cloned()
            .collect()
    }

    fn unmet(&self) -> Vec<String> {
        self.expectations
            .iter()
            .enumerate()
            .filter(|(_, e)| e.met_by.is_none())
            .map(|(id, e)| format!("#{id} {} {}", e.path, e.description))
            .collect()
    }
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Shared) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The webhook receiver double (see the module docs).
pub struct WebhookReceiver {
    addr: SocketAddr,
    scheme: &'static str,
    state: Shared,
    check_on_drop: bool,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl fmt::Debug for WebhookReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        f.debug_struct("WebhookReceiver")
            .field("addr", &self.addr)
            .field("targets_with_secrets", &s.secrets.keys().collect::<Vec<_>>())
            .field("requests", &s.log.len())
            .field("expectations", &s.expectations.len())
            .finish_non_exhaustive()
    }
}

impl WebhookReceiver {
    /// Starts a receiver on a free loopback port (plain HTTP).
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_inner(None).await
    }

    /// Starts a receiver serving HTTPS with a certificate for the loopback
    /// names issued by `pki`'s CA.
    pub async fn start_https(pki: &crate::Pki) -> anyhow::Result<Self> {
        Self::start_inner(Some(crate::partner::loopback_tls(pki, "webhook-receiver")?)).await
    }

    /// Serves plain HTTP on `listener` (the `tilewave-webhook-receiver`
    /// process of a deployment).
    pub fn serve_on(listener: tokio::net::TcpListener) -> anyhow::Result<Self> {
        Self::serve(listener, None)
    }

    async fn start_inner(tls: Option<tokio_rustls::TlsAcceptor>) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        Self::serve(listener, tls)
    }

    fn serve(
        listener: tokio::net::TcpListener,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> anyhow::Result<Self> {
        let addr = listener.local_addr()?;
        let state: Shared = Arc::new(Mutex::new(State {
            fail_status: 500,
            ..State::default()
        }));
        let app = axum::Router::new().fallback({
            let state = Arc::clone(&state);
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let state = Arc::clone(&state);
                async move { answer(&state, method, &uri, &headers, &body).await }
            }
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let scheme = if tls.is_some() { "https" } else { "http" };
        match tls {
            None => {
                tokio::spawn(async move {
                    let served = axum::serve(listener, app).with_graceful_shutdown(async {
                        let _ = stopped.await;
                    });
                    if let Err(e) = served.await {
                        tracing::warn!(error = %e, "the webhook receiver stopped");
                    }
                });
            }
            Some(acceptor) => {
                tokio::spawn(crate::partner::serve_https(listener, acceptor, app, stopped));
            }
        }
        Ok(Self {
            addr,
            scheme,
            state,
            check_on_drop: false,
            stop: Some(stop),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>` (`https://` from
    /// [`WebhookReceiver::start_https`]).
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// The URL of the target at `path` (`/alice` -> `http://127.0.0.1:<port>/alice`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url())
    }

    /// Checks signatures of requests to `path` with `secret` from now on.
    pub fn set_secret(&self, path: &str, secret: Secret) {
        self.lock().secrets.insert(path.to_owned(), secret);
    }

    /// Answers the next `n` requests with 500, before any other check.
    pub fn fail_next(&self, n: u32) {
        self.fail_next_with(n, 500);
    }

    /// Answers the next `n` requests with `status`, before any other check.
    pub fn fail_next_with(&self, n: u32, status: u16) {
        let mut s = self.lock();
        s.fail_next = n;
        s.fail_status = status;
    }

    /// Holds the next `n` requests for `hold` each, then answers 503.
    pub fn stall_next(&self, n: u32, hold: Duration) {
        let mut s = self.lock();
        s.stall_next = n;
        s.stall_for = hold;
    }

    /// Expects one delivery to `path` whose JSON body contains `fields`
    /// (an object's keys recursively; arrays and scalars equal); its id.
    pub fn expect(&self, path: &str, fields: serde_json::Value) -> usize {
        let description = format!("with fields {fields}");
        self.expect_matching(path, &description, move |r| contains(&r.body, &fields))
    }

    /// Expects one delivery to `path` for which `predicate` holds,
    /// described as `description` in failures; its id.
    pub fn expect_matching(
        &self,
        path: &str,
        description: &str,
        predicate: impl Fn(&WebhookRequest) -> bool + Send + Sync + 'static,
    ) -> usize {
        let mut s = self.lock();
        s.expectations.push(Expectation {
            path: path.to_owned(),
            description: description.to_owned(),
            predicate: Box::new(predicate),
            met_by: None,
        });
        s.expectations.len() - 1
    }

    /// Checks, when the receiver is dropped, that every expectation was met
    /// and nothing else arrived (see [`WebhookReceiver::verdict`]); a
    /// failure panics, unless the thread is panicking already.
    pub fn fail_on_drop(mut self) -> Self {
        self.check_on_drop = true;
        self
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<WebhookRequest> {
        self.lock().log.clone()
    }

    /// The deliveries (first accepted request per idempotency key), oldest
    /// first.
    pub fn deliveries(&self) -> Vec<WebhookRequest> {
        self.lock()
            .log
            .iter()
            .filter(|r| r.disposition == Disposition::Delivered)
            .cloned()
            .collect()
    }

    /// How many requests repeated an accepted idempotency key.
    pub fn duplicates(&self) -> usize {
        self.lock()
            .log
            .iter()
            .filter(|r| matches!(r.disposition, Disposition::Duplicate { .. }))
            .count()
    }

    /// Deliveries that met no expectation, and rejected requests.
    pub fn unexpected(&self) -> Vec<WebhookRequest> {
        self.lock().unexpected()
    }

    /// The expectations not met yet, described.
    pub fn unmet_expectations(&self) -> Vec<String> {
        self.lock().unmet()
    }

    /// `Ok` when every expectation is met and nothing unexpected arrived;
    /// else a description of what is missing and what arrived unasked.
    pub fn verdict(&self) -> Result<(), String> {
        let s = self.lock();
        let unmet = s.unmet();
        let unexpected = s.unexpected();
        if unmet.is_empty() && unexpected.is_empty() {
            return Ok(());
        }
        let mut text = String::new();
        if !unmet.is_empty() {
            text.push_str(&format!("{} expected webhook(s) never arrived:", unmet.len()));
            for u in &unmet {
                text.push_str(&format!("\n  {u}"));
            }
        }
        if !unexpected.is_empty() {
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(&format!("{} unexpected webhook request(s):", unexpected.len()));
            for r in &unexpected {
                text.push_str(&format!(
                    "\n  #{} {} {} key={:?} {:?} body={}",
                    r.seq,
                    r.method,
                    r.path,
                    r.idempotency_key,
                    r.disposition,
                    bounded(&r.raw_body)
                ));
            }
        }
        Err(text)
    }

    /// Panics unless every expectation is met and nothing unexpected
    /// arrived (the message lists both).
    #[track_caller]
    pub fn assert_all_expected_and_nothing_else(&self) {
        if let Err(text) = self.verdict() {
            panic!("{text}");
        }
    }

    /// Waits until at least `n` deliveries arrived (polling until
    /// `timeout`); the deliveries.
    pub async fn wait_for_deliveries(
        &self,
        n: usize,
        timeout: Duration,
    ) -> anyhow::Result<Vec<WebhookRequest>> {
        crate::eventually(&format!("{n} webhook deliveries"), timeout, || async {
            let d = self.deliveries();
            if d.len() >= n {
                Ok(d)
            } else {
                Err(format!("{} so far", d.len()))
            }
        })
        .await
    }

    /// Waits until every expectation is met (polling until `timeout`).
    pub async fn wait_for_expected(&self, timeout: Duration) -> anyhow::Result<()> {
        crate::eventually("the expected webhooks", timeout, || async {
            let unmet = self.unmet_expectations();
            if unmet.is_empty() {
                Ok(())
            } else {
                Err(format!("not yet: {}", unmet.join("; ")))
            }
        })
        .await
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if self.check_on_drop
            && !std::thread::panicking()
            && let Err(text) = self.verdict()
        {
            panic!("webhook receiver: {text}");
        }
    }
}

/// A body quoted for a failure message, bounded.
fn bounded(text: &str) -> String {
    const MAX: usize = 200;
    if text.chars().count() <= MAX {
        format!("{text:?}")
    } else {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut:?}... ({} bytes)", text.len())
    }
}

/// Whether `value` contains `fields`: every key of an object (recursively),
/// anything else equal.
pub fn contains(value: &serde_json::Value, fields: &serde_json::Value) -> bool {
    match (value, fields) {
        (serde_json::Value::Object(have), serde_json::Value::Object(want)) => want
            .iter()
            .all(|(k, w)| have.get(k).is_some_and(|h| contains(h, w))),
        _ => value == fields,
    }
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

fn respond(status: u16, text: &str) -> Response {
    let mut response = Response::new(Body::from(serde_json::json!({ "message": text }).to_string()));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

async fn answer(state: &Shared, method: Method, uri: &Uri, headers: &HeaderMap, body: &Bytes) -> Response {
    let path = uri.path().to_owned();
    let idempotency_key = header_text(headers, IDEMPOTENCY_KEY_HEADER);
    let signature_header = header_text(headers, SIGNATURE_HEADER);
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let (status, hold) = {
        let mut s = lock(state);
        let signature = match (s.secrets.get(&path), &signature_header) {
            (None, _) => SignatureCheck::NoSecret,
            (Some(_), None) => SignatureCheck::Missing,
            (Some(secret), Some(h)) => match Signature::parse(h).and_then(|sig| {
                sig.verify_mac(secret, body)?;
                Ok(sig.timestamp)
            }) {
                Ok(timestamp) => SignatureCheck::Verified { timestamp },
                Err(e) => SignatureCheck::Invalid(e.to_string()),
            },
        };
        let seq = s.log.len();
        let mut request = WebhookRequest {
            seq,
            method: method.to_string(),
            path: path.clone(),
            content_type: header_text(headers, header::CONTENT_TYPE.as_str()),
            user_agent: header_text(headers, header::USER_AGENT.as_str()),
            traceparent: header_text(headers, "traceparent"),
            idempotency_key: idempotency_key.clone(),
            signature_header,
            signature: signature.clone(),
            body: parsed.clone().unwrap_or(serde_json::Value::Null),
            raw_body: String::from_utf8_lossy(body).into_owned(),
            status: 200,
            disposition: Disposition::Delivered,
            expectation: None,
        };
        let mut hold = None;
        let rejected = |why: &str, status: u16| (status, Disposition::Rejected(why.to_owned()));
        let (status, disposition) = if s.stall_next > 0 {
            s.stall_next -= 1;
            hold = Some(s.stall_for);
            (503, Disposition::Stalled)
        } else if s.fail_next > 0 {
            s.fail_next -= 1;
            (s.fail_status, Disposition::InjectedFailure)
        } else if method != Method::POST {
            rejected("not a POST", 405)
        } else if idempotency_key.as_deref().is_none_or(str::is_empty) {
            rejected("no Idempotency-Key", 400)
        } else if parsed.is_none() {
            rejected("the body is not JSON", 400)
        } else if !matches!(
            signature,
            SignatureCheck::NoSecret | SignatureCheck::Verified { .. }
        ) {
            rejected(&format!("signature: {signature:?}"), 401)
        } else if let Some(first) = idempotency_key.as_ref().and_then(|k| s.keys.get(k)) {
            (200, Disposition::Duplicate { first: *first })
        } else {
            (200, Disposition::Delivered)
        };
        request.status = status;
        request.disposition = disposition;
        if request.disposition == Disposition::Delivered {
            if let Some(key) = &idempotency_key {
                s.keys.insert(key.clone(), seq);
            }
            let met = s
                .expectations
                .iter()
                .position(|e| e.met_by.is_none() && e.path == request.path && (e.predicate)(&request));
            if let Some(id) = met {
                s.expectations[id].met_by = Some(seq);
                request.expectation = Some(id);
            }
        }
        s.log.push(request);
        (status, hold)
    };
    if let Some(hold) = hold {
        tokio::time::sleep(hold).await;
        return respond(status, "stalled");
    }
    respond(status, if status < 300 { "ok" } else { "refused" })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal HTTP/1.1 POST over a socket, for the receiver's own tests.
    async fn post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &str) -> anyhow::Result<u16> {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut sock = tokio::net::TcpStream::connect(addr).await?;
        let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        sock.write_all(req.as_bytes()).await?;
        let mut raw = String::new();
        sock.read_to_string(&mut raw).await?;
        raw.split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("no status in {raw:?}"))
    }

    fn signed(secret: &Secret, body: &str) -> String {
        tilewave_secrets::webhook::sign(secret, 1_767_225_600, body.as_bytes())
    }

    #[tokio::test]
    async fn deliveries_are_checked_deduplicated_and_matched() -> anyhow::Result<()> {
        let r = WebhookReceiver::start().await?;
        let secret = Secret::from_text("alice-secret")?;
        r.set_secret("/alice", secret.clone());
        let sev1 = r#"{"tile":"riverflow","severity":"SEV1","level":1}"#;
        r.expect("/alice", serde_json::json!({"severity": "SEV1", "level": 1}));
        let sig = signed(&secret, sev1);
        let headers = [(IDEMPOTENCY_KEY_HEADER, "k1"), (SIGNATURE_HEADER, sig.as_str())];
        assert_eq!(post(r.addr(), "/alice", &headers, sev1).await?, 200);
        assert_eq!(
            post(r.addr(), "/alice", &headers, sev1).await?,
            200,
            "a duplicate is acknowledged"
        );
        assert_eq!(r.duplicates(), 1);
        let d = r.wait_for_deliveries(1, Duration::from_secs(5)).await?;
        assert_eq!(d.len(), 1);
        assert_eq!(
            d[0].signature,
            SignatureCheck::Verified {
                timestamp: 1_767_225_600
            }
        );
        assert_eq!(d[0].idempotency_key.as_deref(), Some("k1"));
        assert_eq!(d[0].body["tile"], "riverflow");
        assert_eq!(d[0].expectation, Some(0));
        r.assert_all_expected_and_nothing_else();

        // A wrong signature is refused and unexpected.
        let forged = signed(&Secret::from_text("not-alice")?, sev1);
        let headers = [
            (IDEMPOTENCY_KEY_HEADER, "k2"),
            (SIGNATURE_HEADER, forged.as_str()),
        ];
        assert_eq!(post(r.addr(), "/alice", &headers, sev1).await?, 401);
        // Without a secret for the path nothing is checked, but an
        // unexpected delivery is still unexpected.
        assert_eq!(
            post(r.addr(), "/bob", &[(IDEMPOTENCY_KEY_HEADER, "k3")], "{}").await?,
            200
        );
        assert_eq!(post(r.addr(), "/bob", &[], "{}").await?, 400, "no key");
        assert_eq!(
            post(r.addr(), "/bob", &[(IDEMPOTENCY_KEY_HEADER, "k4")], "nope").await?,
            400
        );
        let unexpected: Vec<(String, u16)> = r.unexpected().into_iter().map(|q| (q.path, q.status)).collect();
        assert_eq!(
            unexpected,
            [
                ("/alice".to_owned(), 401),
                ("/bob".to_owned(), 200),
                ("/bob".to_owned(), 400),
                ("/bob".to_owned(), 400)
            ]
        );
        let verdict = r.verdict().unwrap_err();
        assert!(verdict.contains("4 unexpected webhook request(s)"), "{verdict}");
        assert!(!format!("{r:?}").contains("alice-secret"));
        Ok(())
    }

    #[tokio::test]
    async fn injected_failures_do_not_register_the_key_and_unmet_expectations_are_named() -> anyhow::Result<()>
    {
        let r = WebhookReceiver::start().await?;
        r.expect_matching("/ops", "a SEV2 page", |q| q.body["severity"] == "SEV2");
        r.expect("/ops", serde_json::json!({"severity": "SEV3"}));
        r.fail_next(2);
        let h = [(IDEMPOTENCY_KEY_HEADER, "m1")];
        let body = r#"{"severity":"SEV2"}"#;
        assert_eq!(post(r.addr(), "/ops", &h, body).await?, 500);
        assert_eq!(post(r.addr(), "/ops", &h, body).await?, 500);
        assert_eq!(post(r.addr(), "/ops", &h, body).await?, 200);
        r.fail_next_with(1, 429);
        assert_eq!(
            post(r.addr(), "/ops", &[(IDEMPOTENCY_KEY_HEADER, "m2")], body).await?,
            429
        );
        let dispositions: Vec<Disposition> = r.requests().into_iter().map(|q| q.disposition).collect();
        assert_eq!(
            dispositions,
            [
                Disposition::InjectedFailure,
                Disposition::InjectedFailure,
                Disposition::Delivered,
                Disposition::InjectedFailure
            ]
        );
        assert_eq!(
            r.unmet_expectations(),
            [r#"#1 /ops with fields {"severity":"SEV3"}"#]
        );
        let e = r.wait_for_expected(Duration::from_millis(200)).await.unwrap_err();
        assert!(e.to_string().contains("SEV3"), "{e}");
        let verdict = r.verdict().unwrap_err();
        assert!(
            verdict.contains("1 expected webhook(s) never arrived"),
            "{verdict}"
        );
        assert!(r.unexpected().is_empty());
        Ok(())
    }

    #[test]
    fn json_containment() {
        use serde_json::json;
        let body =
            json!({"tile": "t", "regions": ["a", "b"], "links": {"show": "x", "sop": "y"}, "level": 2});
        for (fields, expected) in [
            (json!({}), true),
            (json!({"tile": "t"}), true),
            (json!({"links": {"sop": "y"}}), true),
            (json!({"regions": ["a", "b"]}), true),
            (json!({"regions": ["a"]}), false),
            (json!({"level": "2"}), false),
            (json!({"missing": null}), false),
            (json!({"links": {"sop": "z"}}), false),
        ] {
            assert_eq!(contains(&body, &fields), expected, "{fields}");
        }
    }

    #[test]
    fn a_receiver_checked_on_drop_panics_on_unmet_expectations() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rt.block_on(async {
                let r = WebhookReceiver::start().await.unwrap().fail_on_drop();
                r.expect("/x", serde_json::json!({}));
            })
        }));
        let message = outcome.unwrap_err();
        let text = message.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(text.contains("never arrived"), "{text}");
    }
}
