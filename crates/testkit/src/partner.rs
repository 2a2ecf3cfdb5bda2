//! A partner API double: a real HTTP/1.1 server on `127.0.0.1` (axum over
//! hyper) answering Partner Connect's `test-connection` and `connect`
//! endpoints (docs/domain.md, "The partner's API") at configurable paths.
//!
//! - **HTTP Basic auth** against a set of accepted `user:password`
//!   credentials that a test changes while it runs ([`PartnerDouble::accept`],
//!   [`PartnerDouble::reject`], [`PartnerDouble::set_accepted`]). Each
//!   accepted credential gets an id (its index in the order first accepted,
//!   stable while the set changes). A call without a matching credential is
//!   answered 401 `{"error_reason":"unauthorized",...}`.
//! - **A log of every request** ([`PartnerDouble::requests`]): method, path,
//!   the id of the credential that matched (or none), the user presented and
//!   the status answered, so that a test can assert "zero authentication
//!   failures" ([`PartnerDouble::auth_failures`]). Passwords are never
//!   logged or shown by `Debug`.
//! - **Faults**: [`PartnerDouble::fail_next`] answers 500 to the next N
//!   calls (before authentication); [`PartnerDouble::set_tests`] sets the
//!   test results `test-connection` reports.
//!
//! `test-connection` answers `{"test_results":[{"test_name","status",
//! "message"}]}` (PASS, FAIL or UNKNOWN); `connect` answers a connection
//! (`connection_id`, `user_status`, `account_status`, `redirect_uri`).
//! Another path is 404 and another method 405, both with an `error_reason`.
//! Plain HTTP by default; [`PartnerDouble::start_https`] serves HTTPS
//! (rustls, ring) with a certificate for the loopback names issued by the
//! test kit's CA ([`crate::Pki`]). The server stops when the double is
//! dropped.
//!
//! **The admin API** ([`PartnerDouble::serve_admin`], what the
//! `tilewave-partner-double` binary serves for `tilewave dev up` and the
//! demo) lets another process play the partner's side: under `/_double/`,
//! `GET health`; `POST credentials?user=NAME` issues a new generated
//! password for NAME, accepts it and answers `{"id","user","password"}`
//! (the partner handing out a credential: the caller pipes it into
//! `SubmitCredential` and shows it nowhere); `DELETE credentials/<id>`
//! stops accepting one (the partner removing the old credential); `GET
//! summary` answers `{"requests","auth_failures","accepted"}`. Admin calls
//! are not in the request log. Loopback only, like the double itself.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use base64::Engine as _;

/// The default `test_connection_path` (as in the fixtures).
pub const TEST_CONNECTION_PATH: &str = "/databricks/test-connection";
/// The default `connect_path` (as in the fixtures).
pub const CONNECT_PATH: &str = "/databricks/connect";

/// One request the double answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerRequest {
    /// `POST`, ...
    pub method: String,
    /// The path (without the query).
    pub path: String,
    /// The user presented with Basic auth, if any (not secret).
    pub user: Option<String>,
    /// The id of the accepted credential that matched; `None` when none
    /// did (or the call failed before authentication).
    pub matched: Option<usize>,
    /// The HTTP status answered.
    pub status: u16,
}

/// One test `test-connection` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerTest {
    /// Its name.
    pub name: String,
    /// `PASS`, `FAIL` or `UNKNOWN`.
    pub status: String,
    /// Its message.
    pub message: String,
}

impl PartnerTest {
    /// A test with a status and message.
    pub fn new(name: &str, status: &str, message: &str) -> Self {
        Self {
            name: name.to_owned(),
            status: status.to_owned(),
            message: message.to_owned(),
        }
    }
}

/// Where the double serves its endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerPaths {
    /// `test_connection_path`.
    pub test_connection: String,
    /// `connect_path`.
    pub connect: String,
}

impl Default for PartnerPaths {
    fn default() -> Self {
        Self {
            test_connection: TEST_CONNECTION_PATH.to_owned(),
            connect: CONNECT_PATH.to_owned(),
        }
    }
}

struct Accepted {
    id: usize,
    user: String,
    password: String,
}

struct State {
    paths: PartnerPaths,
    /// Serves the `/_double/` admin API.
    admin: bool,
    accepted: Vec<Accepted>,
    /// Every credential ever accepted, for stable ids.
    ids: Vec<(String, String)>,
    log: Vec<PartnerRequest>,
    fail_next: u32,
    tests: Vec<PartnerTest>,
}

impl State {
    fn id_of(&mut self, user: &str, password: &str) -> usize {
        if let Some(i) = self.ids.iter().position(|(u, p)| u == user && p == password) {
            return i;
        }
        self.ids.push((user.to_owned(), password.to_owned()));
        self.ids.len() - 1
    }
}

type Shared = Arc<Mutex<State>>;

/// The partner API double (see the module docs).
pub struct PartnerDouble {
    addr: SocketAddr,
    scheme: &'static str,
    state: Shared,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl std::fmt::Debug for PartnerDouble {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("PartnerDouble")
            .field("addr", &self.addr)
            .field("paths", &state.paths)
            .field(
                "accepted",
                &state.accepted.iter().map(|a| a.id).collect::<Vec<_>>(),
            )
            .field("requests", &state.log.len())
            .finish_non_exhaustive()
    }
}

impl PartnerDouble {
    /// Starts a double at the default paths with no accepted credential.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(PartnerPaths::default()).await
    }

    /// Starts a double serving `paths` on a free loopback port.
    pub async fn start_with(paths: PartnerPaths) -> anyhow::Result<Self> {
        Self::start_inner(paths, None).await
    }

    /// Starts a double serving `paths` over HTTPS with a certificate for
    /// `127.0.0.1`, `::1` and `localhost` issued by `pki`'s CA (its
    /// [`crate::Pki::ca_cert`] is what a client trusts).
    pub async fn start_https(paths: PartnerPaths, pki: &crate::Pki) -> anyhow::Result<Self> {
        Self::start_inner(paths, Some(loopback_tls(pki, "partner-double")?)).await
    }

    /// Serves `paths` and the admin API (see the module docs) on
    /// `listener`, plain HTTP.
    pub async fn serve_admin(listener: tokio::net::TcpListener, paths: PartnerPaths) -> anyhow::Result<Self> {
        Self::serve(listener, paths, None, true)
    }

    /// Serves `paths` and the admin API on `listener` over HTTPS with the
    /// certificate and key in these PEM files (a deployment's double, whose
    /// tiles' Partner Connect URLs must be `https` off loopback).
    pub async fn serve_admin_https(
        listener: tokio::net::TcpListener,
        paths: PartnerPaths,
        cert: &std::path::Path,
        key: &std::path::Path,
    ) -> anyhow::Result<Self> {
        Self::serve(listener, paths, Some(tls_from_files(cert, key)?), true)
    }

    async fn start_inner(
        paths: PartnerPaths,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        Self::serve(listener, paths, tls, false)
    }

    fn serve(
        listener: tokio::net::TcpListener,
        paths: PartnerPaths,
        tls: Option<tokio_rustls::TlsAcceptor>,
        admin: bool,
    ) -> anyhow::Result<Self> {
        let addr = listener.local_addr()?;
        let state: Shared = Arc::new(Mutex::new(State {
            paths,
            admin,
            accepted: Vec::new(),
            ids: Vec::new(),
            log: Vec::new(),
            fail_next: 0,
            tests: vec![
                PartnerTest::new("authentication", "PASS", "credentials accepted"),
                PartnerTest::new("connectivity", "PASS", "workspace reachable"),
            ],
        }));
        let app = axum::Router::new().fallback({
            let state = Arc::clone(&state);
            move |method: Method, uri: Uri, headers: HeaderMap| {
                let state = Arc::clone(&state);
                async move { answer(&state, &method, &uri, &headers) }
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
                        tracing::warn!(error = %e, "the partner double stopped");
                    }
                });
            }
            Some(acceptor) => {
                tokio::spawn(serve_https(listener, acceptor, app, stopped));
            }
        }
        Ok(Self {
            addr,
            scheme,
            state,
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
    /// [`PartnerDouble::start_https`]): a tile configuration's `base_url`.
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// The paths it serves.
    pub fn paths(&self) -> PartnerPaths {
        self.lock().paths.clone()
    }

    /// Accepts `user:password` from now on; its id.
    pub fn accept(&self, user: &str, password: &str) -> usize {
        let mut s = self.lock();
        let id = s.id_of(user, password);
        if !s.accepted.iter().any(|a| a.id == id) {
            s.accepted.push(Accepted {
                id,
                user: user.to_owned(),
                password: password.to_owned(),
            });
        }
        id
    }

    /// Stops accepting `user:password`; whether it was accepted.
    pub fn reject(&self, user: &str, password: &str) -> bool {
        let mut s = self.lock();
        let before = s.accepted.len();
        s.accepted.retain(|a| !(a.user == user && a.password == password));
        s.accepted.len() != before
    }

    /// Accepts exactly these credentials; their ids.
    pub fn set_accepted(&self, credentials: &[(&str, &str)]) -> Vec<usize> {
        self.lock().accepted.clear();
        credentials.iter().map(|(u, p)| self.accept(u, p)).collect()
    }

    /// Answers 500 to the next `n` calls.
    pub fn fail_next(&self, n: u32) {
        self.lock().fail_next = n;
    }

    /// The tests `test-connection` reports from now on.
    pub fn set_tests(&self, tests: Vec<PartnerTest>) {
        self.lock().tests = tests;
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<PartnerRequest> {
        self.lock().log.clone()
    }

    /// The requests answered 401.
    pub fn auth_failures(&self) -> usize {
        self.lock().log.iter().filter(|r| r.status == 401).count()
    }

    /// Forgets the requests so far.
    pub fn clear_requests(&self) {
        self.lock().log.clear();
    }
}

impl Drop for PartnerDouble {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A TLS acceptor with a certificate named `name` for `127.0.0.1`, `::1`
/// and `localhost`, issued by `pki`'s CA (the doubles' HTTPS).
pub(crate) fn loopback_tls(pki: &crate::Pki, name: &str) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject as _;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let hosts: Vec<String> = tilewave_tls::certs::LOOPBACK_SANS
        .iter()
        .map(|h| (*h).to_owned())
        .collect();
    let issued = pki.ca()?.issue_service(name, &hosts)?;
    let chain = CertificateDer::pem_slice_iter(issued.cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes())?;
    // The process's provider: ring, the only one in the tree.
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// `<binary> health [--addr HOST:PORT]`: the container health check of the
/// doubles' processes (a scratch image has no shell or curl): exit 0 when
/// the address (default `default_addr`) accepts a TCP connection within 3
/// s, 1 when not, 2 on bad arguments; one line printed either way.
pub async fn tcp_health(binary: &str, default_addr: &str) -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(2).collect();
    let addr = match args.as_slice() {
        [] => default_addr.to_owned(),
        [flag, a] if flag == "--addr" => a.clone(),
        _ => {
            println!("usage: {binary} health [--addr HOST:PORT]");
            return std::process::ExitCode::from(2);
        }
    };
    let connect = tokio::net::TcpStream::connect(addr.as_str());
    match tokio::time::timeout(std::time::Duration::from_secs(3), connect).await {
        Ok(Ok(_)) => {
            println!("{binary}: {addr} accepts connections");
            std::process::ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            println!("{binary}: {addr} is not healthy: {e}");
            std::process::ExitCode::FAILURE
        }
        Err(_) => {
            println!("{binary}: {addr} is not healthy: no connection within 3 s");
            std::process::ExitCode::FAILURE
        }
    }
}

/// A TLS acceptor with the certificate chain and key of these PEM files.
pub(crate) fn tls_from_files(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use anyhow::Context as _;
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject as _;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading the certificate {}", cert.display()))?;
    let key =
        PrivateKeyDer::from_pem_file(key).with_context(|| format!("reading the key {}", key.display()))?;
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Accepts TLS connections until `stopped`, serving `app` over HTTP/1.1 on
/// each; a failed handshake drops only its connection.
pub(crate) async fn serve_https(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    app: axum::Router,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    loop {
        let accepted = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((tcp, _)) = accepted else { continue };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
        });
    }
}

fn lock(state: &Shared) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The `user` and `password` of a Basic `Authorization` header.
fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

fn json(status: StatusCode, body: serde_json::Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

fn error(status: StatusCode, reason: &str, display: &str) -> Response {
    json(
        status,
        serde_json::json!({
            "error_reason": reason,
            "display_message": display,
            "debugging_message": format!("partner double: {reason}"),
        }),
    )
}

/// The prefix of the admin API's paths.
const ADMIN: &str = "/_double/";
/// The length of an issued password.
const ISSUED_LEN: usize = 32;

/// Answers an admin call (see the module docs).
fn admin(s: &mut State, method: &Method, uri: &Uri) -> Response {
    let rest = uri.path().strip_prefix(ADMIN).unwrap_or_default();
    let query_user = uri.query().and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("user="))
            .map(str::to_owned)
    });
    match (method, rest) {
        (&Method::GET, "health") => json(StatusCode::OK, serde_json::json!({"ok": true})),
        (&Method::GET, "summary") => {
            let failures = s.log.iter().filter(|r| r.status == 401).count();
            json(
                StatusCode::OK,
                serde_json::json!({
                    "requests": s.log.len(),
                    "auth_failures": failures,
                    "accepted": s.accepted.iter().map(|a| a.id).collect::<Vec<_>>(),
                }),
            )
        }
        (&Method::POST, "credentials") => {
            let user = query_user.unwrap_or_else(|| "tilewave".to_owned());
            if user.is_empty()
                || user.len() > 64
                || !user
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return error(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "user: 1 to 64 of [A-Za-z0-9._-]",
                );
            }
            let password = match tilewave_secrets::generate(ISSUED_LEN) {
                Ok(p) => p.expose().to_owned(),
                Err(_) => {
                    return error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "general_error",
                        "cannot generate",
                    );
                }
            };
            let id = s.id_of(&user, &password);
            s.accepted.push(Accepted {
                id,
                user: user.clone(),
                password: password.clone(),
            });
            json(
                StatusCode::OK,
                serde_json::json!({"id": id, "user": user, "password": password}),
            )
        }
        (&Method::DELETE, other) => match other
            .strip_prefix("credentials/")
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(id) => {
                let before = s.accepted.len();
                s.accepted.retain(|a| a.id != id);
                json(
                    StatusCode::OK,
                    serde_json::json!({"removed": s.accepted.len() != before}),
                )
            }
            None => error(
                StatusCode::NOT_FOUND,
                "bad_request",
                "DELETE /_double/credentials/<id>",
            ),
        },
        _ => error(StatusCode::NOT_FOUND, "bad_request", "no such admin endpoint"),
    }
}

fn answer(state: &Shared, method: &Method, uri: &Uri, headers: &HeaderMap) -> Response {
    let mut s = lock(state);
    if s.admin && uri.path().starts_with(ADMIN) {
        return admin(&mut s, method, uri);
    }
    let presented = basic_auth(headers);
    let path = uri.path().to_owned();
    let mut matched = None;
    let response = if s.fail_next > 0 {
        s.fail_next -= 1;
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "general_error",
            "injected server error",
        )
    } else {
        matched = presented.as_ref().and_then(|(u, p)| {
            s.accepted
                .iter()
                .find(|a| &a.user == u && &a.password == p)
                .map(|a| a.id)
        });
        if matched.is_none() {
            error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "the credentials were not accepted",
            )
        } else if path != s.paths.test_connection && path != s.paths.connect {
            error(StatusCode::NOT_FOUND, "bad_request", "no such endpoint")
        } else if method != Method::POST {
            error(StatusCode::METHOD_NOT_ALLOWED, "bad_request", "use POST")
        } else if path == s.paths.test_connection {
            let tests: Vec<serde_json::Value> = s
                .tests
                .iter()
                .map(|t| serde_json::json!({"test_name": t.name, "status": t.status, "message": t.message}))
                .collect();
            json(StatusCode::OK, serde_json::json!({ "test_results": tests }))
        } else {
            let n = s.log.len();
            json(
                StatusCode::OK,
                serde_json::json!({
                    "connection_id": format!("conn-{n}"),
                    "user_status": "new",
                    "account_status": "new",
                    "redirect_uri": "http://127.0.0.1/partner-double/welcome",
                }),
            )
        }
    };
    s.log.push(PartnerRequest {
        method: method.to_string(),
        path,
        user: presented.map(|(u, _)| u),
        matched,
        status: response.status().as_u16(),
    });
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal HTTP/1.1 POST over a socket, for the double's own tests.
    async fn post(addr: SocketAddr, path: &str, auth: Option<(&str, &str)>) -> anyhow::Result<(u16, String)> {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut sock = tokio::net::TcpStream::connect(addr).await?;
        let auth = auth
            .map(|(u, p)| {
                format!(
                    "Authorization: Basic {}\r\n",
                    base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
                )
            })
            .unwrap_or_default();
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 2\r\nConnection: close\r\n\r\n{{}}"
        );
        sock.write_all(req.as_bytes()).await?;
        let mut raw = String::new();
        sock.read_to_string(&mut raw).await?;
        let status = raw
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("no status in {raw:?}"))?;
        let body = raw.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
        Ok((status, body))
    }

    #[tokio::test]
    async fn basic_auth_is_checked_and_every_request_logged() -> anyhow::Result<()> {
        let p = PartnerDouble::start().await?;
        let old = p.accept("tilewave", "old-password");
        let (status, body) = post(p.addr(), TEST_CONNECTION_PATH, Some(("tilewave", "old-password"))).await?;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains(r#""status":"PASS""#), "{body}");
        let (status, body) = post(p.addr(), TEST_CONNECTION_PATH, Some(("tilewave", "new-password"))).await?;
        assert_eq!(status, 401);
        assert!(body.contains(r#""error_reason":"unauthorized""#), "{body}");
        assert_eq!(post(p.addr(), TEST_CONNECTION_PATH, None).await?.0, 401);
        let new = p.accept("tilewave", "new-password");
        assert_ne!(old, new);
        assert!(p.reject("tilewave", "old-password"));
        assert_eq!(p.accept("tilewave", "old-password"), old, "ids are stable");
        assert_eq!(p.set_accepted(&[("tilewave", "new-password")]), [new]);
        let (status, body) = post(p.addr(), CONNECT_PATH, Some(("tilewave", "new-password"))).await?;
        assert_eq!(status, 200);
        assert!(body.contains("connection_id"), "{body}");
        assert_eq!(
            post(p.addr(), "/elsewhere", Some(("tilewave", "new-password")))
                .await?
                .0,
            404
        );
        let log = p.requests();
        let seen: Vec<_> = log.iter().map(|r| (r.matched, r.status)).collect();
        assert_eq!(
            seen,
            [
                (Some(old), 200),
                (None, 401),
                (None, 401),
                (Some(new), 200),
                (Some(new), 404)
            ]
        );
        assert_eq!(log[1].user.as_deref(), Some("tilewave"));
        assert_eq!(log[2].user, None);
        assert_eq!(p.auth_failures(), 2);
        assert!(!format!("{p:?}").contains("password"), "{p:?}");
        Ok(())
    }

    /// A minimal HTTP/1.1 request without a body.
    async fn call(addr: SocketAddr, method: &str, path: &str) -> anyhow::Result<(u16, serde_json::Value)> {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut sock = tokio::net::TcpStream::connect(addr).await?;
        let req =
            format!("{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        sock.write_all(req.as_bytes()).await?;
        let mut raw = String::new();
        sock.read_to_string(&mut raw).await?;
        let status = raw
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("no status in {raw:?}"))?;
        let body = raw.split("\r\n\r\n").nth(1).unwrap_or_default();
        Ok((status, serde_json::from_str(body)?))
    }

    #[tokio::test]
    async fn the_admin_api_issues_and_removes_credentials() -> anyhow::Result<()> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let p = PartnerDouble::serve_admin(listener, PartnerPaths::default()).await?;
        assert_eq!(call(p.addr(), "GET", "/_double/health").await?.0, 200);
        let (status, issued) = call(p.addr(), "POST", "/_double/credentials?user=svc").await?;
        assert_eq!(status, 200, "{issued}");
        let password = issued["password"].as_str().unwrap_or_default().to_owned();
        assert_eq!(password.len(), ISSUED_LEN);
        assert_eq!(issued["user"], "svc");
        assert_eq!(
            post(p.addr(), TEST_CONNECTION_PATH, Some(("svc", &password)))
                .await?
                .0,
            200
        );
        assert_eq!(
            post(p.addr(), TEST_CONNECTION_PATH, Some(("svc", "guess")))
                .await?
                .0,
            401
        );
        let (_, summary) = call(p.addr(), "GET", "/_double/summary").await?;
        assert_eq!(summary["requests"], 2, "admin calls are not logged: {summary}");
        assert_eq!(summary["auth_failures"], 1);
        let id = issued["id"].as_u64().unwrap_or(99);
        let (_, removed) = call(p.addr(), "DELETE", &format!("/_double/credentials/{id}")).await?;
        assert_eq!(removed["removed"], true);
        assert_eq!(
            post(p.addr(), TEST_CONNECTION_PATH, Some(("svc", &password)))
                .await?
                .0,
            401
        );
        assert_eq!(
            call(p.addr(), "POST", "/_double/credentials?user=a:b").await?.0,
            400
        );
        assert_eq!(call(p.addr(), "GET", "/_double/nothing").await?.0, 404);
        // Without the admin API, its paths are partner paths (401 first).
        let plain = PartnerDouble::start().await?;
        assert_eq!(call(plain.addr(), "GET", "/_double/health").await?.0, 401);
        Ok(())
    }

    #[tokio::test]
    async fn injected_server_errors_and_test_results() -> anyhow::Result<()> {
        let p = PartnerDouble::start_with(PartnerPaths {
            test_connection: "/t".into(),
            connect: "/c".into(),
        })
        .await?;
        p.accept("u", "p");
        p.fail_next(2);
        assert_eq!(post(p.addr(), "/t", Some(("u", "p"))).await?.0, 500);
        assert_eq!(post(p.addr(), "/t", Some(("u", "p"))).await?.0, 500);
        p.set_tests(vec![PartnerTest::new("write", "FAIL", "no permission")]);
        let (status, body) = post(p.addr(), "/t", Some(("u", "p"))).await?;
        assert_eq!(status, 200);
        assert!(body.contains(r#""status":"FAIL""#), "{body}");
        assert_eq!(p.auth_failures(), 0);
        p.clear_requests();
        assert!(p.requests().is_empty());
        Ok(())
    }
}
