//! [`AuthorizeLayer`]: the role check as a tower layer for tonic servers,
//! before any handler runs.
//!
//! Enabled, it reads the peer's certificate from the request's extensions
//! (tonic's TLS server puts a `TlsConnectInfo<TcpConnectInfo>` there; a
//! [`PeerCertificate`] is read first, for other transports and tests),
//! decides with [`crate::decide::decide`] on the policy in force, and
//! either answers the refusal itself or inserts the [`Caller`] into the
//! request's extensions and calls the server. One exception: `WhoAmI` is
//! passed through, without a caller, for a certificate whose identity has
//! no role, so that it can say so. Disabled (the default until
//! TLS is on), it passes every request through unchanged.
//!
//! ```ignore
//! Server::builder()
//!     .layer(tilewave_telemetry::server_layer())
//!     .layer(tilewave_service::bounded::BoundedMessages)
//!     .layer(AuthorizeLayer::enabled(policy_handle))
//! ```

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::Either;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use crate::decide::{Caller, Peer, Refusal, RefusalCode, decide};
use crate::identity::identity_of;
use crate::watch::PolicyHandle;

/// A DER client certificate put in a request's extensions by a transport
/// other than tonic's TLS (and by tests). Read before tonic's.
#[derive(Debug, Clone)]
pub struct PeerCertificate(pub Arc<[u8]>);

/// The layer. [`Default`] is disabled.
#[derive(Debug, Clone, Default)]
pub struct AuthorizeLayer {
    policy: Option<PolicyHandle>,
}

impl AuthorizeLayer {
    /// Every request passes through unchanged (no `Caller` is inserted).
    pub fn disabled() -> Self {
        Self { policy: None }
    }

    /// Every request is checked against the policy in force.
    pub fn enabled(policy: PolicyHandle) -> Self {
        Self { policy: Some(policy) }
    }

    /// Enabled with a policy, disabled without one: what a service's
    /// optional constructor takes.
    pub fn new(policy: Option<PolicyHandle>) -> Self {
        Self { policy }
    }

    /// Whether requests are checked.
    pub fn is_enabled(&self) -> bool {
        self.policy.is_some()
    }
}

impl<S> tower::Layer<S> for AuthorizeLayer {
    type Service = Authorize<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authorize {
            inner,
            policy: self.policy.clone(),
        }
    }
}

/// The service [`AuthorizeLayer`] wraps around a server.
#[derive(Debug, Clone)]
pub struct Authorize<S> {
    inner: S,
    policy: Option<PolicyHandle>,
}

/// The peer of a request, from its extensions.
pub fn peer_of(extensions: &http::Extensions) -> Peer {
    let read = |der: &[u8]| match identity_of(der) {
        Ok(c) => Peer::Certificate(c),
        Err(e) => Peer::Unreadable(e),
    };
    if let Some(PeerCertificate(der)) = extensions.get::<PeerCertificate>() {
        return read(der);
    }
    let certs = extensions
        .get::<TlsConnectInfo<TcpConnectInfo>>()
        .and_then(TlsConnectInfo::peer_certs);
    match certs.as_deref().and_then(|c| c.first()) {
        Some(leaf) => read(leaf.as_ref()),
        None => Peer::NoCertificate,
    }
}

/// The HTTP response of a refusal: a trailers-only gRPC error.
fn refusal_response<B: Default>(refusal: &Refusal) -> http::Response<B> {
    let code = match refusal.code() {
        RefusalCode::Unauthenticated => tonic::Code::Unauthenticated,
        RefusalCode::PermissionDenied => tonic::Code::PermissionDenied,
    };
    tonic::Status::new(code, refusal.to_string()).into_http()
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for Authorize<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    ResBody: Default,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = Either<S::Future, std::future::Ready<Result<Self::Response, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<ReqBody>) -> Self::Future {
        let Some(policy) = &self.policy else {
            return Either::Left(self.inner.call(req));
        };
        let peer = peer_of(req.extensions());
        match decide(&policy.current(), peer, req.uri().path()) {
            Ok(caller) => {
                req.extensions_mut().insert(caller);
                Either::Left(self.inner.call(req))
            }
            // WhoAmI answers a certificate of the CA whose identity has no
            // role, too (with no caller: "you are eve, and may call
            // nothing"); what it tells is what the refusal would.
            Err(Refusal::UnknownIdentity(_)) if req.uri().path() == crate::whoami::PATH => {
                Either::Left(self.inner.call(req))
            }
            Err(refusal) => {
                tracing::info!(path = %tilewave_core::quote::quoted(req.uri().path()), refusal = %refusal, "call refused");
                Either::Right(std::future::ready(Ok(refusal_response(&refusal))))
            }
        }
    }
}

/// The caller the layer established, in a handler:
/// `caller(request.extensions())`. `None` when the layer is disabled.
pub fn caller(extensions: &http::Extensions) -> Option<&Caller> {
    extensions.get::<Caller>()
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use tower::{Layer as _, ServiceExt as _};

    use super::*;
    use crate::identity::tests::cert;
    use crate::policy::Policy;

    /// A server that answers 200 with the caller it saw in `x-caller`.
    fn echo() -> impl tower::Service<
        http::Request<()>,
        Response = http::Response<String>,
        Error = Infallible,
        Future = impl Send,
    > + Clone {
        tower::service_fn(|req: http::Request<()>| async move {
            let seen =
                caller(req.extensions()).map_or("none".to_owned(), |c| format!("{} {}", c.identity, c.role));
            Ok::<_, Infallible>(http::Response::new(seen))
        })
    }

    fn request(path: &str, der: Option<Vec<u8>>) -> http::Request<()> {
        let mut req = http::Request::builder().uri(path).body(()).unwrap();
        if let Some(der) = der {
            req.extensions_mut().insert(PeerCertificate(der.into()));
        }
        req
    }

    fn policy() -> PolicyHandle {
        PolicyHandle::fixed(
            Policy::parse(
                "revoked_serials = [\"0666\"]\n[identities]\nada = \"release-engineer\"\nviv = \"viewer\"\n",
            )
            .unwrap(),
        )
    }

    /// (grpc-status, grpc-message, body) of a response.
    async fn call(
        layer: &AuthorizeLayer,
        req: http::Request<()>,
    ) -> (Option<String>, Option<String>, String) {
        let resp = layer.layer(echo()).oneshot(req).await.unwrap();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        (header("grpc-status"), header("grpc-message"), resp.body().clone())
    }

    const CREATE: &str = "/tilewave.registry.v1.RegistryService/CreateTile";
    const GET: &str = "/tilewave.registry.v1.RegistryService/GetTile";
    const WHOAMI: &str = crate::whoami::PATH;

    #[tokio::test]
    async fn enabled_it_refuses_or_names_the_caller() {
        let layer = AuthorizeLayer::enabled(policy());
        assert!(layer.is_enabled());
        let ada = cert(Some("ada"), &[], &[1]);
        let viv = cert(Some("viv"), &[], &[2]);
        // (path, certificate, grpc-status, message start, body)
        type Case<'a> = (&'a str, Option<Vec<u8>>, Option<&'a str>, &'a str, &'a str);
        let cases: Vec<Case> = vec![
            (GET, None, Some("16"), "no%20client%20certificate", ""),
            (
                GET,
                Some(b"junk".to_vec()),
                Some("16"),
                "the%20client%20certificate%20is%20not",
                "",
            ),
            (
                GET,
                Some(cert(Some("mallory"), &[], &[3])),
                Some("16"),
                "identity%20%22mallory%22",
                "",
            ),
            (
                GET,
                Some(cert(Some("ada"), &[], &[6, 0x66])),
                Some("16"),
                "the%20certificate%20of%20%22ada%22",
                "",
            ),
            (
                CREATE,
                Some(viv.clone()),
                Some("7"),
                "RegistryService/CreateTile%20is%20not%20allowed%20for%20role%20viewer",
                "",
            ),
            (
                "/x.Y/Z",
                Some(ada.clone()),
                Some("7"),
                "%22/x.Y/Z%22%20is%20not%20an%20RPC",
                "",
            ),
            (CREATE, Some(ada.clone()), None, "", "ada release-engineer"),
            // WhoAmI: an identity without a role gets through, without a
            // caller; no certificate or a revoked one does not.
            (WHOAMI, Some(cert(Some("mallory"), &[], &[3])), None, "", "none"),
            (WHOAMI, None, Some("16"), "no%20client%20certificate", ""),
            (
                WHOAMI,
                Some(cert(Some("ada"), &[], &[6, 0x66])),
                Some("16"),
                "the%20certificate%20of%20%22ada%22",
                "",
            ),
            (WHOAMI, Some(ada.clone()), None, "", "ada release-engineer"),
            (GET, Some(viv), None, "", "viv viewer"),
        ];
        for (path, der, status, message, body) in cases {
            let (got_status, got_message, got_body) = call(&layer, request(path, der)).await;
            assert_eq!(got_status.as_deref(), status, "{path} {got_message:?}");
            assert!(got_message.unwrap_or_default().starts_with(message), "{path}");
            assert_eq!(got_body, body, "{path}");
        }
    }

    #[tokio::test]
    async fn disabled_it_passes_everything_through_unchanged() {
        for layer in [
            AuthorizeLayer::disabled(),
            AuthorizeLayer::default(),
            AuthorizeLayer::new(None),
        ] {
            assert!(!layer.is_enabled());
            for (path, der) in [
                (CREATE, None),
                (GET, Some(b"junk".to_vec())),
                ("/x.Y/Z", Some(cert(Some("viv"), &[], &[2]))),
            ] {
                let (status, _, body) = call(&layer, request(path, der)).await;
                assert_eq!((status, body.as_str()), (None, "none"), "{path}");
            }
        }
    }

    #[tokio::test]
    async fn the_policy_in_force_is_read_on_every_call() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.toml");
        std::fs::write(&path, "[identities]\nviv = \"viewer\"\n").unwrap();
        let mut watcher = crate::watch::PolicyWatcher::load(&path).unwrap();
        let layer = AuthorizeLayer::new(Some(watcher.handle()));
        let viv = || request(CREATE, Some(cert(Some("viv"), &[], &[2])));
        assert_eq!(call(&layer, viv()).await.0.as_deref(), Some("7"));
        std::fs::write(&path, "[identities]\nviv = \"release-engineer\"\n").unwrap();
        assert_eq!(watcher.check(), crate::watch::Reload::Reloaded);
        assert_eq!(call(&layer, viv()).await.2, "viv release-engineer");
        std::fs::write(
            &path,
            "revoked_serials = [\"02\"]\n[identities]\nviv = \"release-engineer\"\n",
        )
        .unwrap();
        assert_eq!(watcher.check(), crate::watch::Reload::Reloaded);
        assert_eq!(call(&layer, viv()).await.0.as_deref(), Some("16"));
    }

    #[test]
    fn without_extensions_there_is_no_certificate() {
        assert_eq!(peer_of(&http::Extensions::new()), Peer::NoCertificate);
    }
}
