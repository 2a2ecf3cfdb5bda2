//! Mutual TLS end to end: `tilewave certs init` writes a CA and
//! certificates; `tilewave-registry` started with the registry's files
//! (etcd plaintext) answers the CLI presenting a certificate of that CA,
//! and refuses a client with no certificate (UNAUTHENTICATED, from the role
//! check), one from another CA, an expired one (both at the handshake, with
//! a TLS alert) and a plaintext client, none of which changes etcd.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use tilewave_proto::registry::v1::ListTilesRequest;
use tilewave_proto::registry::v1::registry_service_client::RegistryServiceClient;
use tilewave_testkit::{EtcdCluster, ServiceProcess, ServiceSpec, TestDir, bin_path, eventually};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

use super::{binaries_built, code, fixture, stderr, stdout};

const PREFIX: &str = "/tilewave-tls-it/";

/// Runs `tilewave` with no settings but the arguments (no config file, no
/// dev stack's saved settings, no TILEWAVE_* from the caller's environment).
pub(super) async fn tw(dir: &Path, args: &[&str]) -> Output {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tilewave"))
        .args(args)
        .env("TILEWAVE_CONFIG", dir.join("no-config.toml"))
        .env("TILEWAVE_DEV_DIR", dir.join("no-dev-stack"))
        .env("USER", "it-test")
        .env("TILEWAVE_TIMEOUT", "5s")
        .env_remove("TILEWAVE_REGISTRY")
        .env_remove("TILEWAVE_ROLLOUT")
        .env_remove("TILEWAVE_CREDENTIALS")
        .env_remove("TILEWAVE_ACTOR")
        .env_remove("TILEWAVE_TLS_CERT")
        .env_remove("TILEWAVE_TLS_KEY")
        .env_remove("TILEWAVE_TLS_CA")
        .env_remove("TILEWAVE_CERTS_DIR")
        .output()
        .await
        .expect("running tilewave");
    eprintln!(
        "$ tilewave {}\n-> {:?}\n{}{}",
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub(super) fn s(p: &Path) -> String {
    p.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_with_mutual_tls_answers_only_certificates_of_its_ca() {
    if !binaries_built(&["tilewave-registry"]) {
        return;
    }
    let dir = TestDir::new("cli-tls-it").unwrap();
    let certs = dir.path().join("certs");
    let other = dir.path().join("other-ca");

    // certs init: a CA, one certificate per service, one for the user, 0600.
    let init = tw(dir.path(), &["certs", "init", "--dir", &s(&certs)]).await;
    assert_eq!(code(&init), 0, "{}", stderr(&init));
    for name in ["ca", "registry", "rollout", "agent", "etcd", "it-test"] {
        for ext in ["crt", "key"] {
            let p = certs.join(format!("{name}.{ext}"));
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", p.display());
        }
    }
    let again = tw(dir.path(), &["certs", "init", "--dir", &s(&certs)]).await;
    assert_eq!(code(&again), 3, "a second init without --force is refused");
    assert!(stderr(&again).contains("already exists"), "{}", stderr(&again));
    let issue = tw(
        dir.path(),
        &["certs", "issue", "bob", "--role", "viewer", "--dir", &s(&certs)],
    )
    .await;
    assert_eq!(code(&issue), 0);
    let list = tw(dir.path(), &["certs", "list", "--dir", &s(&certs)]).await;
    assert_eq!(code(&list), 0);
    for needle in ["bob", "CN=registry", "CN=tilewave development CA", "in 36"] {
        assert!(stdout(&list).contains(needle), "{needle}: {}", stdout(&list));
    }
    let init = tw(dir.path(), &["certs", "init", "--dir", &s(&other)]).await;
    assert_eq!(code(&init), 0);

    // The registry with TLS; etcd stays plaintext.
    let etcd = EtcdCluster::start_insecure(1).await.unwrap();
    let spec = ServiceSpec::new("registry-tls", bin_path("tilewave-registry").unwrap())
        .with_args([
            "--etcd",
            &etcd.endpoints().join(","),
            "--prefix",
            PREFIX,
            "--tls-cert",
            &s(&certs.join("registry.crt")),
            "--tls-key",
            &s(&certs.join("registry.key")),
            "--tls-ca",
            &s(&certs.join("ca.crt")),
            // The roles `certs init` and `certs issue --role` wrote.
            "--policy",
            &s(&certs.join("policy.toml")),
        ])
        // The test kit's health check is plaintext: ready is polled below.
        .with_health_service(None);
    let registry = ServiceProcess::start(spec, dir.path()).await.unwrap();
    let url = format!("http://{}", registry.addr());
    let with = |cert: &Path, key: &Path, ca: &Path| -> Vec<String> {
        vec![
            "--registry".into(),
            url.clone(),
            "--tls-cert".into(),
            s(cert),
            "--tls-key".into(),
            s(key),
            "--tls-ca".into(),
            s(ca),
        ]
    };
    let ca = certs.join("ca.crt");
    let good = with(&certs.join("it-test.crt"), &certs.join("it-test.key"), &ca);
    let args = |base: &[String], more: &[&str]| -> Vec<String> {
        base.iter()
            .cloned()
            .chain(more.iter().map(|m| (*m).to_owned()))
            .collect()
    };

    // Ready: the CLI with the user's certificate lists tiles.
    let list_args = args(&good, &["tile", "list"]);
    eventually(
        "the registry answers over mutual TLS",
        Duration::from_secs(30),
        || {
            let list_args = list_args.clone();
            let dir = dir.path().to_owned();
            async move {
                let refs: Vec<&str> = list_args.iter().map(String::as_str).collect();
                let o = tw(&dir, &refs).await;
                if code(&o) == 0 { Ok(()) } else { Err(stderr(&o)) }
            }
        },
    )
    .await
    .unwrap();
    let riverflow = s(&fixture("riverflow-ingest.json"));
    let import = tw(
        dir.path(),
        &args(&good, &["tile", "import", &riverflow])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(code(&import), 0, "{}", stderr(&import));
    let bob = with(&certs.join("bob.crt"), &certs.join("bob.key"), &ca);
    let listed = tw(
        dir.path(),
        &args(&bob, &["tile", "list"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(code(&listed), 0, "a certificate from `certs issue` works");
    assert!(stdout(&listed).contains("riverflow"), "{}", stdout(&listed));

    let before = etcd.dump(PREFIX).await.unwrap();

    // An expired certificate of the right CA.
    let expired_dir = dir.path().join("expired");
    {
        let ca = tilewave_tls::Ca::load(&certs.join("ca.crt"), &certs.join("ca.key")).unwrap();
        let now = tilewave_tls::wall_clock_now();
        let day = jiff::SignedDuration::from_hours(24);
        let issued = ca
            .issue_client_with(
                "old",
                tilewave_tls::Validity {
                    not_before: now - day * 30,
                    not_after: now - day,
                },
            )
            .unwrap();
        tilewave_tls::files::write_pair(&expired_dir, "old", &issued, false).unwrap();
    }

    // Refused: (case, CLI arguments before the command, what stderr says).
    // The CLI itself refuses to present an expired certificate (exit 2).
    let refused: Vec<(&str, Vec<String>, &str)> = vec![
        (
            "plaintext client",
            vec!["--registry".into(), url.clone()],
            "hint: this call was plaintext",
        ),
        (
            "certificate of another CA",
            with(&other.join("it-test.crt"), &other.join("it-test.key"), &ca),
            "hint: this call used TLS with the certificate",
        ),
        (
            "expired certificate",
            with(&expired_dir.join("old.crt"), &expired_dir.join("old.key"), &ca),
            "old.crt (from --tls-cert, --tls-key and --tls-ca) expired on",
        ),
    ];
    for (case, base, says) in &refused {
        let quarry = s(&fixture("self-test-quarry.json"));
        for cmd in [vec!["tile", "list"], vec!["tile", "import", quarry.as_str()]] {
            let all = args(base, &cmd);
            let o = tw(dir.path(), &all.iter().map(String::as_str).collect::<Vec<_>>()).await;
            assert_ne!(code(&o), 0, "{case}: {cmd:?} must fail");
            assert!(stderr(&o).contains(says), "{case}: {}", stderr(&o));
            assert!(!stdout(&o).contains("riverflow"), "{case}: {}", stdout(&o));
        }
    }
    // The registry refuses an expired certificate too (a client that
    // presents it anyway).
    let expired =
        tilewave_tls::Tls::from_files(&expired_dir.join("old.crt"), &expired_dir.join("old.key"), &ca)
            .unwrap();
    assert_refused(
        "an expired certificate",
        tilewave_tls::endpoint(&url, Some(&expired)).unwrap(),
    )
    .await;
    // The wrong CA on the client side: the registry's certificate is not trusted.
    let distrust = with(
        &certs.join("it-test.crt"),
        &certs.join("it-test.key"),
        &other.join("ca.crt"),
    );
    let o = tw(
        dir.path(),
        &args(&distrust, &["tile", "list"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    )
    .await;
    assert_ne!(
        code(&o),
        0,
        "a client that does not trust the registry's CA fails"
    );

    // A TLS client with no certificate of its own (trusting the right CA).
    let ca_pem = std::fs::read_to_string(&ca).unwrap();
    let channel = Endpoint::from_shared(format!("https://{}", registry.addr()))
        .unwrap()
        .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca_pem)))
        .unwrap()
        .timeout(Duration::from_secs(5))
        .connect_lazy();
    let err = RegistryServiceClient::new(channel)
        .list_tiles(ListTilesRequest::default())
        .await
        .expect_err("no client certificate must be refused");
    // The handshake completes; the role check answers with a gRPC status.
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err:?}");
    assert!(
        err.message().starts_with("no client certificate:") && err.message().contains("--tls-cert"),
        "{err:?}"
    );

    // A bad TLS setting is a usage error naming the file.
    let o = tw(
        dir.path(),
        &args(
            &with(&certs.join("it-test.crt"), &certs.join("bob.key"), &ca),
            &["tile", "list"],
        )
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("bob.key") && stderr(&o).contains("does not match the certificate"),
        "{}",
        stderr(&o)
    );

    assert_eq!(
        etcd.dump(PREFIX).await.unwrap(),
        before,
        "no refused call changed etcd"
    );
}

/// Asserts that a ListTiles call through `endpoint` is refused (`what`
/// names the client in the message).
async fn assert_refused(what: &str, endpoint: Endpoint) {
    let channel = endpoint.timeout(Duration::from_secs(5)).connect_lazy();
    let err = RegistryServiceClient::new(channel)
        .list_tiles(ListTilesRequest::default())
        .await
        .expect_err(what);
    eprintln!("{what}: {err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_without_tls_warns_and_one_with_a_mismatched_key_does_not_start() {
    if !binaries_built(&["tilewave-registry"]) {
        return;
    }
    let dir = TestDir::new("cli-tls-warn-it").unwrap();
    let certs = dir.path().join("certs");
    assert_eq!(
        code(&tw(dir.path(), &["certs", "init", "--dir", &s(&certs)]).await),
        0
    );
    let etcd = EtcdCluster::start_insecure(1).await.unwrap();
    let binary = bin_path("tilewave-registry").unwrap();
    let base = ServiceSpec::new("registry-plain", binary.clone())
        .with_args(["--etcd", &etcd.endpoints().join(","), "--prefix", PREFIX])
        .without_env("TILEWAVE_TLS_CERT")
        .without_env("TILEWAVE_TLS_KEY")
        .without_env("TILEWAVE_TLS_CA")
        .with_health_service(Some(tilewave_registry_health()));
    // Neither TLS files nor --insecure: it does not start, and says why.
    let Err(err) = ServiceProcess::start(base.clone().tls_as_given(), dir.path()).await else {
        panic!("a service without TLS files must need --insecure");
    };
    let text = format!("{err:#}");
    assert!(
        text.contains("TLS certificates are needed") && text.contains("--insecure"),
        "{text}"
    );
    let base = base.insecure();
    let plain = ServiceProcess::start(base.clone(), dir.path()).await.unwrap();
    let log = std::fs::read_to_string(plain.log_path()).unwrap();
    assert!(log.contains("running without TLS"), "{log}");

    let mismatched = ServiceSpec {
        name: "registry-bad-key".into(),
        ..base
    }
    .with_args([
        "--tls-cert",
        &s(&certs.join("registry.crt")),
        "--tls-key",
        &s(&certs.join("rollout.key")),
        "--tls-ca",
        &s(&certs.join("ca.crt")),
    ]);
    let Err(err) = ServiceProcess::start(mismatched, dir.path()).await else {
        panic!("a key that does not match must stop the start");
    };
    let text = format!("{err:#}");
    assert!(
        text.contains("rollout.key") && text.contains("does not match the certificate"),
        "{text}"
    );
}

/// The registry's health service name (the CLI crate does not depend on
/// the registry crate).
fn tilewave_registry_health() -> &'static str {
    "tilewave.registry.v1.RegistryService"
}

/// etcd with `--client-cert-auth` and the `certs init` certificate: the
/// registry given `--etcd https://...` and its TLS files reaches it with
/// its certificate; a client with no certificate is refused by etcd.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_reaches_etcd_over_mutual_tls_and_etcd_refuses_a_client_without_a_certificate() {
    if !binaries_built(&["tilewave-registry"]) {
        return;
    }
    let dir = TestDir::new("cli-tls-etcd-it").unwrap();
    let certs = dir.path().join("certs");
    assert_eq!(
        code(&tw(dir.path(), &["certs", "init", "--dir", &s(&certs)]).await),
        0
    );
    let ports = tilewave_testkit::free_ports(2).unwrap();
    let (client_url, peer_url) = (
        format!("https://127.0.0.1:{}", ports[0]),
        format!("http://127.0.0.1:{}", ports[1]),
    );
    let log = std::fs::File::create(dir.path().join("etcd-tls.log")).unwrap();
    let _etcd = tokio::process::Command::new(tilewave_testkit::etcd_binary())
        .args([
            "--name=tls",
            &format!("--data-dir={}", s(&dir.path().join("etcd-data"))),
            &format!("--listen-client-urls={client_url}"),
            &format!("--advertise-client-urls={client_url}"),
            &format!("--listen-peer-urls={peer_url}"),
            &format!("--initial-advertise-peer-urls={peer_url}"),
            &format!("--initial-cluster=tls={peer_url}"),
            &format!("--cert-file={}", s(&certs.join("etcd.crt"))),
            &format!("--key-file={}", s(&certs.join("etcd.key"))),
            &format!("--trusted-ca-file={}", s(&certs.join("ca.crt"))),
            "--client-cert-auth",
        ])
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let tls_args = |name: &str| {
        vec![
            "--tls-cert".to_owned(),
            s(&certs.join(format!("{name}.crt"))),
            "--tls-key".to_owned(),
            s(&certs.join(format!("{name}.key"))),
            "--tls-ca".to_owned(),
            s(&certs.join("ca.crt")),
        ]
    };
    let spec = ServiceSpec::new("registry-etcd-tls", bin_path("tilewave-registry").unwrap())
        .with_args(["--etcd", &client_url, "--prefix", PREFIX])
        .with_args(tls_args("registry"))
        .with_args(["--policy", &s(&certs.join("policy.toml"))])
        .with_health_service(None);
    let registry = ServiceProcess::start(spec, dir.path()).await.unwrap();
    let mut import = vec!["--registry".to_owned(), format!("http://{}", registry.addr())];
    import.extend(tls_args("it-test"));
    import.extend([
        "tile".to_owned(),
        "import".to_owned(),
        s(&fixture("lumen-bi.json")),
    ]);
    eventually(
        "an import through the registry into etcd over TLS",
        Duration::from_secs(30),
        || {
            let (import, dir) = (import.clone(), dir.path().to_owned());
            async move {
                let refs: Vec<&str> = import.iter().map(String::as_str).collect();
                let o = tw(&dir, &refs).await;
                if code(&o) == 0 { Ok(()) } else { Err(stderr(&o)) }
            }
        },
    )
    .await
    .unwrap();

    let ca = Certificate::from_pem(std::fs::read(certs.join("ca.crt")).unwrap());
    let options = |tls: etcd_client::TlsOptions| {
        etcd_client::ConnectOptions::new()
            .with_tls(tls)
            .with_connect_timeout(Duration::from_secs(5))
            .with_timeout(Duration::from_secs(5))
    };
    let identity = tonic::transport::Identity::from_pem(
        std::fs::read(certs.join("it-test.crt")).unwrap(),
        std::fs::read(certs.join("it-test.key")).unwrap(),
    );
    let mut with_cert = etcd_client::Client::connect(
        [client_url.as_str()],
        Some(options(
            ClientTlsConfig::new()
                .ca_certificate(ca.clone())
                .identity(identity),
        )),
    )
    .await
    .unwrap();
    let tiles = with_cert
        .get(
            format!("{PREFIX}tiles/"),
            Some(etcd_client::GetOptions::new().with_prefix().with_keys_only()),
        )
        .await
        .unwrap();
    assert!(
        tiles
            .kvs()
            .iter()
            .any(|kv| kv.key_str().is_ok_and(|k| k.contains("lumen"))),
        "the registry wrote the tile through TLS"
    );
    let refused = match etcd_client::Client::connect(
        [client_url.as_str()],
        Some(options(ClientTlsConfig::new().ca_certificate(ca))),
    )
    .await
    {
        Err(e) => Err(e),
        Ok(mut c) => c.get(format!("{PREFIX}tiles/"), None).await.map(|_| ()),
    };
    eprintln!("etcd, no client certificate: {refused:?}");
    assert!(
        refused.is_err(),
        "etcd must refuse a client without a certificate"
    );
}
