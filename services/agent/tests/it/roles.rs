//! The agent with TLS and an access policy answers only the `service`
//! role: a release engineer's and a viewer's certificates are refused
//! PERMISSION_DENIED on AgentService and FaultInjectionService, an identity
//! without a role UNAUTHENTICATED, and the rollout service's certificate is
//! served.

use std::time::Duration;

use tilewave_proto::agent::v1::agent_service_client::AgentServiceClient;
use tilewave_proto::agent::v1::fault_injection_service_client::FaultInjectionServiceClient;
use tilewave_proto::agent::v1::{GetFaultsRequest, ListTilesRequest};
use tilewave_testkit::{EtcdCluster, ServiceProcess, TestDir, eventually};
use tilewave_tls::files::write_pair;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::spec;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_answers_only_the_service_role() {
    let dir = TestDir::new("agent-roles-it").unwrap();
    let certs = dir.path().join("certs");
    let ca = tilewave_tls::Ca::generate().unwrap();
    write_pair(&certs, "ca", &ca.issued(), false).unwrap();
    write_pair(&certs, "agent", &ca.issue_service("agent", &[]).unwrap(), false).unwrap();
    for who in ["rollout", "ada", "vic", "eve"] {
        write_pair(&certs, who, &ca.issue_client(who).unwrap(), false).unwrap();
    }
    let policy = certs.join("policy.toml");
    std::fs::write(
        &policy,
        "[identities]\nrollout = \"service\"\nada = \"release-engineer\"\nvic = \"viewer\"\n",
    )
    .unwrap();
    let p = |name: &str| certs.join(name).display().to_string();

    let etcd = EtcdCluster::start(1).await.unwrap();
    let spec = spec(&etcd, &dir)
        .unwrap()
        .with_args([
            "--tls-cert",
            &p("agent.crt"),
            "--tls-key",
            &p("agent.key"),
            "--tls-ca",
            &p("ca.crt"),
            "--policy",
            &p("policy.toml"),
        ])
        .without_env("TILEWAVE_POLICY")
        // The test kit's health check is plaintext: ready is polled below.
        .with_health_service(None);
    let agent = ServiceProcess::start(spec, dir.path()).await.unwrap();
    let addr = agent.addr();
    let channel = |who: &str| -> Channel {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(
                std::fs::read(certs.join("ca.crt")).unwrap(),
            ))
            .identity(Identity::from_pem(
                std::fs::read(certs.join(format!("{who}.crt"))).unwrap(),
                std::fs::read(certs.join(format!("{who}.key"))).unwrap(),
            ));
        Endpoint::from_shared(format!("https://{addr}"))
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .timeout(Duration::from_secs(5))
            .connect_lazy()
    };

    // The service role is served (and tells when the agent is ready).
    eventually(
        "the agent answers the service role",
        Duration::from_secs(30),
        || {
            let mut c = AgentServiceClient::new(channel("rollout"));
            async move {
                c.list_tiles(ListTilesRequest::default())
                    .await
                    .map(|_| ())
                    .map_err(|s| format!("{s:?}"))
            }
        },
    )
    .await
    .unwrap();
    FaultInjectionServiceClient::new(channel("rollout"))
        .get_faults(GetFaultsRequest::default())
        .await
        .unwrap();

    for (who, code) in [
        ("ada", tonic::Code::PermissionDenied),
        ("vic", tonic::Code::PermissionDenied),
        ("eve", tonic::Code::Unauthenticated),
    ] {
        let status = AgentServiceClient::new(channel(who))
            .list_tiles(ListTilesRequest::default())
            .await
            .expect_err("refused");
        assert_eq!(status.code(), code, "{who}: {status:?}");
        let status = FaultInjectionServiceClient::new(channel(who))
            .get_faults(GetFaultsRequest::default())
            .await
            .expect_err("refused");
        assert_eq!(status.code(), code, "{who}: {status:?}");
    }
}
