//! TLS on by default: a service given neither TLS files nor `--insecure`
//! does not start and says why; `--insecure` serves plaintext with a
//! warning; a TLS service refuses a plaintext client.

use tilewave_proto::registry::v1::ListTilesRequest;
use tilewave_proto::registry::v1::registry_service_client::RegistryServiceClient;
use tilewave_testkit::{EtcdCluster, ServiceProcess, ServiceSpec, TestDir, bin_path};

use crate::*;

fn registry(name: &str, etcd: &EtcdCluster) -> ServiceSpec {
    ServiceSpec::new(name, bin_path("tilewave-registry").unwrap())
        .with_args(["--etcd", &etcd.endpoints().join(","), "--prefix", PREFIX])
        .with_health_service(Some(tilewave_registry::HEALTH_SERVICE))
        .without_env("TILEWAVE_INSECURE")
        .without_env("TILEWAVE_TLS_CERT")
        .without_env("TILEWAVE_TLS_KEY")
        .without_env("TILEWAVE_TLS_CA")
}

#[tokio::test]
async fn without_tls_files_or_insecure_the_service_does_not_start_and_says_how_to_get_certificates() {
    let dir = TestDir::new("registry-no-tls").unwrap();
    let etcd = EtcdCluster::start_insecure(1).await.unwrap();
    let spec = registry("registry-no-tls", &etcd).tls_as_given();
    let Err(err) = ServiceProcess::start(spec, dir.path()).await else {
        panic!("a registry without TLS files or --insecure must not start");
    };
    let text = format!("{err:#}");
    assert!(text.contains("exited during start-up"), "{text}");
    assert!(!text.contains("exit status: 0"), "exits non-zero: {text}");
    for needle in [
        "TLS certificates are needed",
        "--tls-cert, --tls-key and --tls-ca",
        "tilewave certs init",
        "--insecure",
    ] {
        assert!(text.contains(needle), "{needle} missing from {text}");
    }
    // One line that says it once, not a `Caused by:` list repeating it.
    assert_eq!(text.matches("TLS certificates are needed").count(), 1, "{text}");
    assert!(
        text.contains("tilewave-registry: TLS: TLS certificates are needed"),
        "{text}"
    );
}

#[tokio::test]
async fn insecure_serves_plaintext_and_warns_at_start_up() {
    let dir = TestDir::new("registry-insecure").unwrap();
    let etcd = EtcdCluster::start_insecure(1).await.unwrap();
    let spec = registry("registry-insecure", &etcd).insecure();
    let svc = ServiceProcess::start(spec, dir.path()).await.unwrap();
    assert!(svc.tls().is_none());
    assert!(svc.endpoint().starts_with("http://"), "{}", svc.endpoint());
    let mut c = RegistryServiceClient::connect(svc.endpoint()).await.unwrap();
    c.list_tiles(ListTilesRequest::default()).await.unwrap();
    let log = std::fs::read_to_string(svc.log_path()).unwrap();
    assert!(log.contains("running without TLS (--insecure)"), "{log}");
}

#[tokio::test]
async fn by_default_the_kit_serves_tls_and_a_plaintext_client_is_refused() {
    let stack = Stack::start(1).await.unwrap();
    let svc = &stack.replicas[0];
    assert!(svc.endpoint().starts_with("https://"), "{}", svc.endpoint());
    assert!(stack.etcd.endpoints()[0].starts_with("https://"));
    stack
        .client(0)
        .await
        .unwrap()
        .list_tiles(ListTilesRequest::default())
        .await
        .unwrap();
    let plain = format!("http://{}", svc.addr());
    let refused = match RegistryServiceClient::connect(plain).await {
        Ok(mut c) => c.list_tiles(ListTilesRequest::default()).await.map(|_| ()),
        Err(e) => Err(tonic::Status::unavailable(e.to_string())),
    };
    assert!(refused.is_err(), "a plaintext client was answered on a TLS port");
}
