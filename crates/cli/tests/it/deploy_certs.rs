//! The certificates of a compose deployment: `certs init --if-missing
//! --kek ID --host NAME=HOSTS` (the `certs` job of docker-compose.yml, run
//! on every start) writes every container's host name into the SANs once,
//! a server certificate for a name that is not a service's, and a
//! key-encryption key, and leaves all of it alone when run again;
//! `certs issue NAME --host ...` renews one service's certificate.

use tilewave_testkit::TestDir;

use super::code;
use super::tls::{s, tw};

fn sans(path: &std::path::Path) -> Vec<String> {
    tilewave_tls::inspect::read_cert(path)
        .expect("a certificate")
        .sans
}

#[tokio::test]
async fn a_deployment_s_certificates_are_made_once_with_every_host_name() {
    let dir = TestDir::new("cli-deploy-certs").unwrap();
    let certs = dir.path().join("certs");
    let d = s(&certs);
    let args = [
        "certs",
        "init",
        "--dir",
        &d,
        "--if-missing",
        "--user",
        "ops",
        "--kek",
        "deploy-1",
        "--host",
        "etcd=etcd1,etcd2,etcd3",
        "--host",
        "agent=agent-aws-ap-northeast-1,agent-gcp-asia-south1",
        "--host",
        "partner-double=partner-double",
    ];
    let first = tw(dir.path(), &args).await;
    assert_eq!(code(&first), 0, "{first:?}");
    let etcd = sans(&certs.join("etcd.crt"));
    for h in ["etcd", "etcd1", "etcd2", "etcd3", "127.0.0.1", "localhost"] {
        assert!(etcd.iter().any(|s| s == h), "{h} in {etcd:?}");
    }
    let agent = sans(&certs.join("agent.crt"));
    assert!(agent.iter().any(|s| s == "agent-gcp-asia-south1"), "{agent:?}");
    let double = sans(&certs.join("partner-double.crt"));
    assert!(double.iter().any(|s| s == "partner-double"), "{double:?}");
    assert!(certs.join("ops.crt").exists() && certs.join("kek").exists());
    let policy = std::fs::read_to_string(certs.join("policy.toml")).unwrap();
    assert!(
        !policy.contains("partner-double"),
        "a test double gets no role: {policy}"
    );

    // Run again (every `docker-compose up`): nothing changes.
    let ca = std::fs::read(certs.join("ca.crt")).unwrap();
    let kek = std::fs::read(certs.join("kek")).unwrap();
    let again = tw(dir.path(), &args).await;
    assert_eq!(code(&again), 0, "{again:?}");
    assert_eq!(std::fs::read(certs.join("ca.crt")).unwrap(), ca, "the CA is kept");
    assert_eq!(std::fs::read(certs.join("kek")).unwrap(), kek, "the KEK is kept");

    // One service's certificate renewed with another host name, same CA.
    let serial = tilewave_tls::inspect::read_cert(&certs.join("registry.crt"))
        .unwrap()
        .serial;
    let renew = tw(
        dir.path(),
        &[
            "certs",
            "issue",
            "registry",
            "--force",
            "--host",
            "registry,registry-3",
            "--dir",
            &d,
        ],
    )
    .await;
    assert_eq!(code(&renew), 0, "{renew:?}");
    let info = tilewave_tls::inspect::read_cert(&certs.join("registry.crt")).unwrap();
    assert_ne!(info.serial, serial, "a new certificate");
    assert!(info.sans.iter().any(|s| s == "registry-3"), "{:?}", info.sans);
    assert_eq!(std::fs::read(certs.join("ca.crt")).unwrap(), ca, "the same CA");

    // Bad input names the flag and writes nothing.
    let bad = tw(
        dir.path(),
        &["certs", "issue", "x", "--host", "bad host!", "--dir", &d],
    )
    .await;
    assert_eq!(code(&bad), 2, "{bad:?}");
    assert!(!certs.join("x.crt").exists());
}
