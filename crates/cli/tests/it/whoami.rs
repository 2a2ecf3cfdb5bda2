//! `tilewave auth whoami` against running services, TLS on: the registry
//! and an agent (started with the certificates and policy `certs init` and
//! `certs issue --role` wrote) each say who the caller is, its role and
//! certificate serial, and exactly the RPCs of that server its role may
//! call (a partner's tile rows marked own-tiles-only); a plaintext registry
//! says TLS and the role check are off and every RPC is callable.

use std::path::Path;
use std::time::Duration;

use tilewave_auth::table::{AGENT, REGISTRY, TABLE};
use tilewave_auth::whoami::ON_EVERY_SERVER;
use tilewave_auth::{Role, RoleKind};
use tilewave_testkit::{EtcdCluster, ServiceProcess, ServiceSpec, TestDir, bin_path, eventually};

use super::tls::{s, tw};
use super::{binaries_built, code, stderr, stdout};

const PREFIX: &str = "/tilewave-whoami-it/";

/// The RPCs (`RegistryService/GetTile`) of a server hosting `services`
/// that `role` may call, in table order, each with its own-tiles mark.
fn expected(services: &[&str], role: Option<&str>) -> Vec<(String, bool)> {
    let kind = role.map(|r| r.parse::<Role>().expect("a role").kind());
    TABLE
        .iter()
        .filter(|r| services.contains(&r.service) || ON_EVERY_SERVER.contains(&r.service))
        .filter(|r| kind.is_none_or(|k| r.allows(k)))
        .map(|r| (r.rpc(), kind == Some(RoleKind::Partner) && r.partner_own_tiles))
        .collect()
}

/// The (rpc, own_tiles_only) pairs of a `whoami -o json` answer.
fn listed(json: &serde_json::Value) -> Vec<(String, bool)> {
    json["rpcs"]
        .as_array()
        .expect("an rpcs list")
        .iter()
        .map(|r| {
            (
                r["rpc"].as_str().expect("rpc").to_owned(),
                r["own_tiles_only"].as_bool().expect("own_tiles_only"),
            )
        })
        .collect()
}

/// The TLS flags of `who`'s certificate.
fn tls_args(certs: &Path, who: &str) -> Vec<String> {
    vec![
        "--tls-cert".into(),
        s(&certs.join(format!("{who}.crt"))),
        "--tls-key".into(),
        s(&certs.join(format!("{who}.key"))),
        "--tls-ca".into(),
        s(&certs.join("ca.crt")),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whoami_names_the_caller_its_role_and_what_it_may_call() {
    if !binaries_built(&["tilewave-registry", "tilewave-agent"]) {
        return;
    }
    let dir = TestDir::new("cli-whoami-it").unwrap();
    let certs = dir.path().join("certs");
    let d = s(&certs);
    let init = tw(dir.path(), &["certs", "init", "--dir", &d]).await;
    assert_eq!(code(&init), 0, "{}", stderr(&init));
    for (name, role) in [
        ("ann", Some("viewer")),
        ("acme-bot", Some("partner:acme")),
        ("eve", None),
    ] {
        let mut args = vec!["certs", "issue", name, "--dir", &d];
        if let Some(role) = role {
            args.extend(["--role", role]);
        }
        let o = tw(dir.path(), &args).await;
        assert_eq!(code(&o), 0, "{name}: {}", stderr(&o));
    }
    let policy = s(&certs.join("policy.toml"));

    // etcd plaintext: the services' certificates are of this test's own CA.
    let etcd = EtcdCluster::start_insecure(1).await.unwrap();
    let etcd_arg = etcd.endpoints().join(",");
    let server_tls = |name: &str| -> Vec<String> {
        let mut v = tls_args(&certs, name);
        v.extend(["--policy".to_owned(), policy.clone()]);
        v
    };
    let registry = ServiceProcess::start(
        ServiceSpec::new("registry-whoami", bin_path("tilewave-registry").unwrap())
            .with_args(["--etcd", &etcd_arg, "--prefix", PREFIX])
            .with_args(server_tls("registry"))
            .without_env("TILEWAVE_POLICY")
            // Its own CA, not the test kit's: ready is polled below.
            .with_health_service(None),
        dir.path(),
    )
    .await
    .unwrap();
    let data = dir.path().join("agent-data");
    let agent = ServiceProcess::start(
        ServiceSpec::new("agent-whoami", bin_path("tilewave-agent").unwrap())
            .with_args([
                "--region",
                "aws:eu-west-1",
                "--etcd",
                &etcd_arg,
                "--prefix",
                PREFIX,
                "--data-dir",
                &s(&data),
            ])
            .with_args(server_tls("agent"))
            .without_env("TILEWAVE_POLICY")
            .with_health_service(None),
        dir.path(),
    )
    .await
    .unwrap();
    let plain = ServiceProcess::start(
        ServiceSpec::new("registry-whoami-plain", bin_path("tilewave-registry").unwrap())
            .with_args(["--etcd", &etcd_arg, "--prefix", "/tilewave-whoami-plain-it/"])
            .without_env("TILEWAVE_POLICY")
            .insecure(),
        dir.path(),
    )
    .await
    .unwrap();
    let registry_url = format!("http://{}", registry.addr());
    let agent_url = format!("http://{}", agent.addr());

    // `auth whoami` as `who` (None: no TLS files) with more arguments.
    let whoami = |who: Option<&str>, more: &[&str]| {
        let mut args = vec!["--registry".to_owned(), registry_url.clone()];
        if let Some(who) = who {
            args.extend(tls_args(&certs, who));
        }
        args.extend(["auth", "whoami"].map(str::to_owned));
        args.extend(more.iter().map(|m| (*m).to_owned()));
        let dir = dir.path().to_owned();
        async move {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            tw(&dir, &refs).await
        }
    };
    let json = |o: &std::process::Output| -> serde_json::Value {
        assert_eq!(code(o), 0, "{}", stderr(o));
        serde_json::from_slice(&o.stdout).expect("JSON")
    };

    // Ready: both servers answer (the agent once it is registered).
    for url in [&registry_url, &agent_url] {
        eventually("the server answers whoami", Duration::from_secs(30), || {
            let o = whoami(Some("ann"), &["--url", url]);
            async move {
                let o = o.await;
                if code(&o) == 0 { Ok(()) } else { Err(stderr(&o)) }
            }
        })
        .await
        .unwrap();
    }

    // A viewer at the registry: its identity, role, serial and the reads.
    let ann = json(&whoami(Some("ann"), &["-o", "json"]).await);
    assert_eq!(ann["identity"], "ann", "{ann}");
    assert_eq!(ann["role"], "viewer", "{ann}");
    assert_eq!(ann["service"], "tilewave-registry", "{ann}");
    assert_eq!(
        (ann["tls"].as_bool(), ann["role_checks"].as_bool()),
        (Some(true), Some(true))
    );
    let serial = ann["certificate_serial"].as_str().expect("a serial");
    assert!(
        !serial.is_empty() && serial.chars().all(|c| c.is_ascii_hexdigit()),
        "{ann}"
    );
    let list = tw(dir.path(), &["certs", "list", "--dir", &d]).await;
    assert!(
        stdout(&list).contains(serial),
        "the serial certs list shows: {}",
        stdout(&list)
    );
    assert_eq!(listed(&ann), expected(&[REGISTRY], Some("viewer")));
    assert!(listed(&ann).iter().any(|(r, _)| r == "RegistryService/GetTile"));
    assert!(
        !listed(&ann)
            .iter()
            .any(|(r, _)| r == "RegistryService/CreateTile")
    );

    // The same, for people.
    let text = whoami(Some("ann"), &[]).await;
    assert_eq!(code(&text), 0, "{}", stderr(&text));
    let text = stdout(&text);
    for needle in [
        "IDENTITY     ann\n",
        "ROLE         viewer\n",
        "SERVICE      tilewave-registry\n",
        "ROLE CHECKS  on\n",
        "  RegistryService/ListTiles\n",
        "  AuthService/WhoAmI\n",
    ] {
        assert!(text.contains(needle), "{needle:?} in:\n{text}");
    }

    // A partner: its tile rows are for its own tiles only.
    let acme = json(&whoami(Some("acme-bot"), &["-o", "json"]).await);
    assert_eq!(
        (acme["identity"].as_str(), acme["role"].as_str()),
        (Some("acme-bot"), Some("partner:acme"))
    );
    assert_eq!(listed(&acme), expected(&[REGISTRY], Some("partner:acme")));
    assert!(listed(&acme).contains(&("RegistryService/RecordSignOff".to_owned(), true)));
    assert!(listed(&acme).contains(&("AuthService/WhoAmI".to_owned(), false)));

    // A certificate of the CA whose identity has no role: it learns who it
    // is and that it may call nothing (any other RPC is UNAUTHENTICATED).
    let eve = json(&whoami(Some("eve"), &["-o", "json"]).await);
    assert_eq!(eve["identity"], "eve", "{eve}");
    assert_eq!(eve["role"], serde_json::Value::Null, "{eve}");
    assert_eq!(listed(&eve), Vec::<(String, bool)>::new());
    let text = whoami(Some("eve"), &[]).await;
    assert!(
        stdout(&text).contains("ROLE         - (none: the access policy gives this identity no role)\n"),
        "{}",
        stdout(&text)
    );
    let o = tw(
        dir.path(),
        &[
            &["--registry", registry_url.as_str()][..],
            &tls_args(&certs, "eve")
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            &["tile", "list"],
        ]
        .concat(),
    )
    .await;
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("(Unauthenticated)"), "{}", stderr(&o));

    // The agent: the rollout service's certificate may call its RPCs; a
    // viewer only the open rows.
    let svc = json(&whoami(Some("rollout"), &["--url", &agent_url, "-o", "json"]).await);
    assert_eq!(
        (svc["identity"].as_str(), svc["role"].as_str()),
        (Some("rollout"), Some("service"))
    );
    assert_eq!(svc["service"], "tilewave-agent");
    assert_eq!(listed(&svc), expected(&[AGENT], Some("service")));
    assert!(listed(&svc).iter().any(|(r, _)| r == "AgentService/ApplyTile"));
    assert!(
        !listed(&svc)
            .iter()
            .any(|(r, _)| r.starts_with("FaultInjectionService/")),
        "fault injection is off on this agent: {svc}"
    );
    let ann_agent = json(&whoami(Some("ann"), &["--url", &agent_url, "-o", "json"]).await);
    assert_eq!(ann_agent["role"], "viewer");
    assert_eq!(
        listed(&ann_agent)
            .iter()
            .map(|(r, _)| r.as_str())
            .collect::<Vec<_>>(),
        [
            "AuthService/WhoAmI",
            "grpc.health.v1.Health/Check",
            "grpc.health.v1.Health/Watch",
            "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        ]
    );

    // Without TLS: no identity, checks off, every RPC of the server.
    let plain_url = format!("http://{}", plain.addr());
    let open = json(&whoami(None, &["--url", &plain_url, "-o", "json"]).await);
    assert_eq!(open["identity"], serde_json::Value::Null, "{open}");
    assert_eq!(open["role"], serde_json::Value::Null, "{open}");
    assert_eq!(
        (open["tls"].as_bool(), open["role_checks"].as_bool()),
        (Some(false), Some(false))
    );
    assert_eq!(listed(&open), expected(&[REGISTRY], None));

    // A service name the CLI does not know is a usage error naming the choices.
    let bad = whoami(Some("ann"), &["--service", "agent"]).await;
    assert_eq!(code(&bad), 2);
    assert!(stderr(&bad).contains("registry, rollout"), "{}", stderr(&bad));
}
