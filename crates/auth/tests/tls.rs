//! The role check behind tonic's own TLS server, in process: the layer
//! reads the client certificate tonic puts in the request's extensions
//! (`TlsConnectInfo<TcpConnectInfo>`), refuses with the right code, and
//! hands the handler the caller. Certificates come from a throw-away CA.

#![allow(clippy::expect_used, clippy::unwrap_used, reason = "test code")]

use std::sync::{Arc, Mutex};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tilewave_auth::{AuthorizeLayer, Caller, Policy, PolicyHandle};
use tilewave_proto::clock::v1::clock_service_client::ClockServiceClient;
use tilewave_proto::clock::v1::clock_service_server::{ClockService, ClockServiceServer};
use tilewave_proto::clock::v1::{
    AdvanceRequest, AdvanceResponse, GetTimeRequest, GetTimeResponse, SetRateRequest, SetRateResponse,
    SetRequest, SetResponse,
};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity, Server, ServerTlsConfig};
use tonic::{Code, Request, Response, Status};

/// A clock that records who called it.
#[derive(Debug, Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

impl Recorder {
    fn saw<T>(&self, req: &Request<T>) {
        let who = req
            .extensions()
            .get::<Caller>()
            .map_or("no caller".to_owned(), |c| format!("{} {}", c.identity, c.role));
        self.0.lock().unwrap().push(who);
    }
}

#[tonic::async_trait]
impl ClockService for Recorder {
    async fn get_time(&self, req: Request<GetTimeRequest>) -> Result<Response<GetTimeResponse>, Status> {
        self.saw(&req);
        Ok(Response::new(GetTimeResponse::default()))
    }
    async fn advance(&self, req: Request<AdvanceRequest>) -> Result<Response<AdvanceResponse>, Status> {
        self.saw(&req);
        Ok(Response::new(AdvanceResponse::default()))
    }
    async fn set(&self, req: Request<SetRequest>) -> Result<Response<SetResponse>, Status> {
        self.saw(&req);
        Ok(Response::new(SetResponse::default()))
    }
    async fn set_rate(&self, req: Request<SetRateRequest>) -> Result<Response<SetRateResponse>, Status> {
        self.saw(&req);
        Ok(Response::new(SetRateResponse::default()))
    }
}

struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "tilewave test CA");
        Self {
            ca: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    /// A certificate and key (PEM) for `cn` with the SAN `localhost`.
    fn issue(&self, cn: &str, serial: u8) -> Identity {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.serial_number = Some(vec![serial].into());
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        Identity::from_pem(cert.pem(), key.serialize_pem())
    }

    fn ca(&self) -> Certificate {
        Certificate::from_pem(self.ca.pem())
    }
}

async fn client(
    pki: &Pki,
    addr: std::net::SocketAddr,
    who: Option<(&str, u8)>,
) -> ClockServiceClient<Channel> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(pki.ca())
        .domain_name("localhost");
    if let Some((cn, serial)) = who {
        tls = tls.identity(pki.issue(cn, serial));
    }
    let channel = Channel::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    ClockServiceClient::new(channel)
}

#[tokio::test]
async fn the_layer_reads_tonic_s_client_certificate() {
    let pki = Pki::new();
    let policy = Policy::parse(
        "revoked_serials = [\"09\"]\n[identities]\nada = \"release-engineer\"\nviv = \"viewer\"\n",
    )
    .unwrap();
    let recorder = Recorder::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tls = ServerTlsConfig::new()
        .identity(pki.issue("tilewave-rollout", 1))
        .client_ca_root(pki.ca())
        // A client without a certificate gets through the handshake, so
        // the layer's own answer is what it sees.
        .client_auth_optional(true);
    let server = Server::builder()
        .tls_config(tls)
        .unwrap()
        .layer(AuthorizeLayer::enabled(PolicyHandle::fixed(policy)))
        .add_service(ClockServiceServer::new(recorder.clone()))
        .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener));
    let server = tokio::spawn(server);

    // (who, call Advance?, expected code)
    type Case<'a> = (Option<(&'a str, u8)>, bool, Code);
    let cases: &[Case] = &[
        (None, false, Code::Unauthenticated),
        (Some(("mallory", 2)), false, Code::Unauthenticated),
        (Some(("ada", 9)), false, Code::Unauthenticated),
        (Some(("viv", 3)), true, Code::PermissionDenied),
        (Some(("viv", 3)), false, Code::Ok),
        (Some(("ada", 4)), true, Code::Ok),
    ];
    for (who, advance, want) in cases {
        let mut c = client(&pki, addr, *who).await;
        let got = if *advance {
            c.advance(AdvanceRequest::default()).await.map(|_| ())
        } else {
            c.get_time(GetTimeRequest {}).await.map(|_| ())
        };
        let code = got.as_ref().err().map_or(Code::Ok, Status::code);
        assert_eq!(code, *want, "{who:?} advance={advance}: {got:?}");
        if let Err(status) = got
            && *want == Code::PermissionDenied
        {
            assert_eq!(
                status.message(),
                "ClockService/Advance is not allowed for role viewer (allowed: release-engineer)"
            );
        }
    }
    assert_eq!(
        *recorder.0.lock().unwrap(),
        ["viv viewer", "ada release-engineer"],
        "only allowed calls reach the handler, with their caller"
    );
    server.abort();
}
