//! A TLS client without a certificate completes the handshake with a
//! registry serving TLS, and every RPC the registry hosts (its own, health,
//! reflection and WhoAmI) answers it UNAUTHENTICATED saying what is
//! missing; a certificate of another CA, and an expired one, are refused
//! at the handshake (a transport error, no gRPC status from the server);
//! nothing changes etcd.

use std::time::Duration;

use tilewave_auth::table::{REGISTRY, TABLE};
use tilewave_auth::whoami::ON_EVERY_SERVER;
use tilewave_testkit::rpc_fuzz::{Rpc, call_raw};
use tilewave_testkit::{EtcdCluster, ServiceProcess, ServiceSpec, TestDir, bin_path, eventually};
use tilewave_tls::files::write_pair;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::PREFIX;

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_answers_a_client_without_a_certificate_unauthenticated() {
    let dir = TestDir::new("registry-no-cert-it").unwrap();
    let certs = dir.path().join("certs");
    let ca = tilewave_tls::Ca::generate().unwrap();
    write_pair(&certs, "ca", &ca.issued(), false).unwrap();
    write_pair(
        &certs,
        "registry",
        &ca.issue_service("registry", &[]).unwrap(),
        false,
    )
    .unwrap();
    write_pair(&certs, "ada", &ca.issue_client("ada").unwrap(), false).unwrap();
    let now = tilewave_tls::wall_clock_now();
    let day = jiff::SignedDuration::from_hours(24);
    let expired = tilewave_tls::Validity {
        not_before: now - day * 30,
        not_after: now - day,
    };
    write_pair(
        &certs,
        "old",
        &ca.issue_client_with("old", expired).unwrap(),
        false,
    )
    .unwrap();
    let other = tilewave_tls::Ca::generate().unwrap();
    write_pair(&certs, "stranger", &other.issue_client("ada").unwrap(), false).unwrap();
    std::fs::write(
        certs.join("policy.toml"),
        "[identities]\nada = \"release-engineer\"\nold = \"release-engineer\"\n",
    )
    .unwrap();
    let p = |name: &str| certs.join(name).display().to_string();

    // etcd plaintext: the registry's certificates are of this test's own CA.
    let etcd = EtcdCluster::start_insecure(1).await.unwrap();
    let registry = ServiceProcess::start(
        ServiceSpec::new("registry-no-cert", bin_path("tilewave-registry").unwrap())
            .with_args(["--etcd", &etcd.endpoints().join(","), "--prefix", PREFIX])
            .with_args([
                "--tls-cert",
                &p("registry.crt"),
                "--tls-key",
                &p("registry.key"),
                "--tls-ca",
                &p("ca.crt"),
                "--policy",
                &p("policy.toml"),
            ])
            .without_env("TILEWAVE_POLICY")
            // Its own CA, not the test kit's: ready is polled below.
            .with_health_service(None),
        dir.path(),
    )
    .await
    .unwrap();
    let addr = registry.addr();
    let channel = |who: Option<&str>| -> Channel {
        let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(
            std::fs::read(certs.join("ca.crt")).unwrap(),
        ));
        if let Some(who) = who {
            tls = tls.identity(Identity::from_pem(
                std::fs::read(certs.join(format!("{who}.crt"))).unwrap(),
                std::fs::read(certs.join(format!("{who}.key"))).unwrap(),
            ));
        }
        Endpoint::from_shared(format!("https://{addr}"))
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .timeout(WAIT)
            .connect_lazy()
    };
    let health = Rpc::unary("/grpc.health.v1.Health/Check");
    eventually("the registry answers ada", Duration::from_secs(30), || {
        call_raw(channel(Some("ada")), health, Vec::new(), &[], WAIT)
    })
    .await
    .unwrap();
    let before = etcd.dump(PREFIX).await.unwrap();

    let rpcs: Vec<Rpc> = TABLE
        .iter()
        .filter(|r| r.service == REGISTRY || ON_EVERY_SERVER.contains(&r.service))
        .map(|r| {
            let path: &'static str = Box::leak(r.path().into_boxed_str());
            if r.method.starts_with("Watch") || r.method == "ServerReflectionInfo" {
                Rpc::streaming(path)
            } else {
                Rpc::unary(path)
            }
        })
        .collect();
    assert!(rpcs.len() > 15, "{rpcs:?}");
    for rpc in &rpcs {
        let status = call_raw(channel(None), *rpc, Vec::new(), &[], WAIT)
            .await
            .expect_err("refused without a certificate");
        assert_eq!(
            status.code(),
            tonic::Code::Unauthenticated,
            "{}: {status:?}",
            rpc.path
        );
        assert!(
            status.message().starts_with(
                "no client certificate: this service accepts only callers presenting a certificate of its CA"
            ) && status.message().contains("--tls-cert"),
            "{}: {status:?}",
            rpc.path
        );
    }

    // Another CA's certificate and an expired one: refused at the handshake.
    for who in ["stranger", "old"] {
        let status = call_raw(channel(Some(who)), health, Vec::new(), &[], WAIT)
            .await
            .expect_err("refused at the handshake");
        // TLS 1.3: the client sends its certificate after its side of the
        // handshake is done, so it sees the server's alert as a closed
        // connection: a transport error either way, never the server's
        // own status.
        assert!(
            matches!(
                status.code(),
                tonic::Code::Unavailable | tonic::Code::Cancelled | tonic::Code::Unknown
            ) && std::error::Error::source(&status).is_some(),
            "{who}: {status:?}"
        );
    }

    assert_eq!(
        etcd.dump(PREFIX).await.unwrap(),
        before,
        "no refused call changed etcd"
    );
}
