//! The role check end to end, TLS on: `tilewave certs init` writes the
//! access policy next to the certificates, `certs issue NAME --role ROLE`
//! sets NAME's role there, and `tilewave-registry --policy` answers by role:
//! a viewer lists but cannot import (PERMISSION_DENIED, nothing changes), a
//! certificate of the right CA whose name has no role is UNAUTHENTICATED,
//! and a release-engineer's import is audited under its certificate
//! identity, not the name the call claims in `x-tilewave-actor`; a role
//! changed in the file is taken by the running registry.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::Duration;

use tilewave_proto::registry::v1::registry_service_client::RegistryServiceClient;
use tilewave_proto::registry::v1::{GetHistoryRequest, ImportPartnerConfigRequest, ListTilesRequest};
use tilewave_testkit::{EtcdCluster, ServiceProcess, ServiceSpec, TestDir, bin_path, eventually};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use super::tls::{s, tw};
use super::{binaries_built, code, fixture, stderr, stdout};

const PREFIX: &str = "/tilewave-roles-it/";

/// A gRPC channel to `addr` presenting `<certs>/<name>.crt`.
fn channel(certs: &Path, name: &str, addr: &str) -> Channel {
    let read = |f: String| std::fs::read(certs.join(f)).expect("reading a certificate file");
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read("ca.crt".into())))
        .identity(Identity::from_pem(
            read(format!("{name}.crt")),
            read(format!("{name}.key")),
        ));
    Endpoint::from_shared(format!("https://{addr}"))
        .expect("an https URL")
        .tls_config(tls)
        .expect("a client TLS configuration")
        .timeout(Duration::from_secs(5))
        .connect_lazy()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_answers_by_role_and_audits_the_certificate_identity() {
    if !binaries_built(&["tilewave-registry"]) {
        return;
    }
    let dir = TestDir::new("cli-roles-it").unwrap();
    let certs = dir.path().join("certs");
    let d = s(&certs);

    // certs init writes the policy: the dev defaults and the user as release-engineer, 0600.
    let init = tw(dir.path(), &["certs", "init", "--dir", &d]).await;
    assert_eq!(code(&init), 0, "{}", stderr(&init));
    let policy_path = certs.join("policy.toml");
    let mode = std::fs::metadata(&policy_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", policy_path.display());
    let policy = tilewave_auth::policy::load(&policy_path).unwrap();
    let role = |p: &tilewave_auth::Policy, name: &str| {
        p.role_of(&tilewave_auth::Identity::parse(name).unwrap())
            .map(ToString::to_string)
    };
    assert_eq!(role(&policy, "it-test").as_deref(), Some("release-engineer"));
    assert_eq!(role(&policy, "registry").as_deref(), Some("service"));

    // certs issue --role: the role lands in the policy; an unknown role is refused, naming the valid ones.
    for (name, role_arg) in [
        ("ann", Some("viewer")),
        ("rel", Some("release-engineer")),
        ("eve", None),
    ] {
        let mut a = vec!["certs", "issue", name, "--dir", &d];
        if let Some(r) = role_arg {
            a.extend(["--role", r]);
        }
        let o = tw(dir.path(), &a).await;
        assert_eq!(code(&o), 0, "{name}: {}", stderr(&o));
    }
    let bad = tw(
        dir.path(),
        &["certs", "issue", "zed", "--role", "admin", "--dir", &d],
    )
    .await;
    assert_eq!(code(&bad), 2, "{}", stderr(&bad));
    assert!(
        stderr(&bad).contains("release-engineer, oncall, partner:<partner-id>, viewer or service"),
        "{}",
        stderr(&bad)
    );
    assert!(
        !certs.join("zed.crt").exists(),
        "nothing written for a refused role"
    );
    // Changing a role: ann is issued again as oncall, then back to viewer.
    for r in ["oncall", "viewer"] {
        let o = tw(
            dir.path(),
            &["certs", "issue", "ann", "--force", "--role", r, "--dir", &d],
        )
        .await;
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let p = tilewave_auth::policy::load(&policy_path).unwrap();
        assert_eq!(role(&p, "ann").as_deref(), Some(r));
    }
    let policy = tilewave_auth::policy::load(&policy_path).unwrap();
    assert_eq!(role(&policy, "rel").as_deref(), Some("release-engineer"));
    assert_eq!(role(&policy, "eve"), None);
    assert_eq!(role(&policy, "it-test").as_deref(), Some("release-engineer"));
    let mode = std::fs::metadata(&policy_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "still 0600 after a rewrite");

    let etcd = EtcdCluster::start_insecure(1).await.unwrap();
    let spec = ServiceSpec::new("registry-roles", bin_path("tilewave-registry").unwrap())
        .with_args(["--etcd", &etcd.endpoints().join(","), "--prefix", PREFIX])
        .with_args([
            "--tls-cert",
            &s(&certs.join("registry.crt")),
            "--tls-key",
            &s(&certs.join("registry.key")),
            "--tls-ca",
            &s(&certs.join("ca.crt")),
            "--policy",
            &s(&policy_path),
        ])
        .without_env("TILEWAVE_POLICY")
        // The test kit's health check is plaintext: ready is polled below.
        .with_health_service(None);
    let registry = ServiceProcess::start(spec, dir.path()).await.unwrap();
    let url = format!("http://{}", registry.addr());
    let as_who = |name: &str, more: &[&str]| -> Vec<String> {
        let mut v = vec![
            "--registry".to_owned(),
            url.clone(),
            "--tls-cert".to_owned(),
            s(&certs.join(format!("{name}.crt"))),
            "--tls-key".to_owned(),
            s(&certs.join(format!("{name}.key"))),
            "--tls-ca".to_owned(),
            s(&certs.join("ca.crt")),
        ];
        v.extend(more.iter().map(|m| (*m).to_owned()));
        v
    };
    let run = |args: Vec<String>| {
        let dir = dir.path().to_owned();
        async move {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            tw(&dir, &refs).await
        }
    };

    // Ready: the viewer lists tiles.
    eventually("the registry answers a viewer", Duration::from_secs(30), || {
        let o = run(as_who("ann", &["tile", "list"]));
        async move {
            let o = o.await;
            if code(&o) == 0 { Ok(()) } else { Err(stderr(&o)) }
        }
    })
    .await
    .unwrap();

    let before = etcd.dump(PREFIX).await.unwrap();
    let quarry = s(&fixture("self-test-quarry.json"));

    // The viewer may not import: PERMISSION_DENIED's exit code, the RPC and role named.
    let o = run(as_who("ann", &["tile", "import", &quarry])).await;
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("ImportPartnerConfig is not allowed for role viewer")
            && stderr(&o).contains("(PermissionDenied)"),
        "{}",
        stderr(&o)
    );
    let status = RegistryServiceClient::new(channel(&certs, "ann", &registry.addr().to_string()))
        .import_partner_config(ImportPartnerConfigRequest::default())
        .await
        .expect_err("a viewer's import is refused");
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");

    // A certificate of the right CA whose identity has no role: UNAUTHENTICATED.
    for cmd in [vec!["tile", "list"], vec!["tile", "import", quarry.as_str()]] {
        let o = run(as_who("eve", &cmd)).await;
        assert_eq!(code(&o), 1, "{cmd:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("identity \"eve\" has no role in the access policy")
                && stderr(&o).contains("(Unauthenticated)"),
            "{}",
            stderr(&o)
        );
    }
    let status = RegistryServiceClient::new(channel(&certs, "eve", &registry.addr().to_string()))
        .list_tiles(ListTilesRequest::default())
        .await
        .expect_err("an identity without a role is refused");
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");

    assert_eq!(
        etcd.dump(PREFIX).await.unwrap(),
        before,
        "no refused call changed etcd"
    );

    // The release engineer imports, claiming another name: the audit names the certificate.
    let riverflow = s(&fixture("riverflow-ingest.json"));
    let o = run(as_who(
        "rel",
        &["--actor", "claimed-name", "tile", "import", &riverflow],
    ))
    .await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = run(as_who("ann", &["tile", "list"])).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let mut client = RegistryServiceClient::new(channel(&certs, "rel", &registry.addr().to_string()));
    let tiles = client
        .list_tiles(ListTilesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .tiles;
    assert_eq!(tiles.len(), 1, "{tiles:?}");
    let tile = &tiles[0];
    assert!(stdout(&o).contains(&tile.id), "{}", stdout(&o));
    assert_eq!(tile.created_by, "rel");
    let records = client
        .get_history(GetHistoryRequest {
            id: tile.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .records;
    assert!(!records.is_empty(), "the import is audited");
    for r in &records {
        assert_eq!(r.actor, "rel", "{r:?}");
    }

    // The running registry re-reads the policy: ann made release-engineer
    // (`certs role`: the same certificate, no new one) may import.
    let ann_cert = std::fs::read(certs.join("ann.crt")).unwrap();
    let o = tw(
        dir.path(),
        &["certs", "role", "ann", "release-engineer", "--dir", &d],
    )
    .await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("ann: role viewer -> release-engineer"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        std::fs::read(certs.join("ann.crt")).unwrap(),
        ann_cert,
        "a role change issues no certificate"
    );
    let bad = tw(dir.path(), &["certs", "role", "ann", "admin", "--dir", &d]).await;
    assert_eq!(code(&bad), 2, "{}", stderr(&bad));
    let lumen = s(&fixture("lumen-bi.json"));
    eventually(
        "the registry takes the changed role from the policy file",
        Duration::from_secs(30),
        || {
            let o = run(as_who("ann", &["tile", "import", &lumen]));
            async move {
                let o = o.await;
                if code(&o) == 0 { Ok(()) } else { Err(stderr(&o)) }
            }
        },
    )
    .await
    .unwrap();

    // `certs revoke ann`: her serial on the deny-list, her calls refused.
    let o = tw(dir.path(), &["certs", "revoke", "ann", "--dir", &d]).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).starts_with("Revoked ann"), "{}", stdout(&o));
    let p = tilewave_auth::policy::load(&policy_path).unwrap();
    assert_eq!(p.revoked().count(), 1);
    eventually(
        "the registry refuses a revoked certificate",
        Duration::from_secs(30),
        || {
            let o = run(as_who("ann", &["tile", "list"]));
            async move {
                let o = o.await;
                if code(&o) == 1 && stderr(&o).contains("(Unauthenticated)") {
                    Ok(())
                } else {
                    Err(format!("{}: {}", code(&o), stderr(&o)))
                }
            }
        },
    )
    .await
    .unwrap();
    let again = tw(dir.path(), &["certs", "revoke", "ann", "--dir", &d]).await;
    assert!(
        stdout(&again).starts_with("Already revoked"),
        "{}",
        stdout(&again)
    );
    // --remove takes a role away.
    let o = tw(dir.path(), &["certs", "role", "rel", "--remove", "--dir", &d]).await;
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let p = tilewave_auth::policy::load(&policy_path).unwrap();
    assert_eq!(role(&p, "rel"), None);
}
