//! Process-level tests of the `tilewave` binary: `dev up` starts etcd and
//! the registry in the background with mutual TLS (etcd refuses a client
//! without a certificate, a plaintext call to a service fails), the tile
//! commands reach it through the stack's saved settings alone (addresses
//! and certificate, no flags), errors exit with their codes, a second `dev
//! up` reuses the certificates, and `dev down --purge` stops everything and
//! removes what `dev up` wrote. `dev up --insecure` runs plaintext and
//! warns, and a CLI presenting a certificate to it is told what to do.
//!
//! The roll-out journey runs a stack with the rollout service and four
//! agents on a fast virtual clock: plan, start, watch to SUCCEEDED, where
//! the tile is live, the freeze refusing a start, the launch calendar
//! edited item by item, the clock refusing to go back.
//!
//! Needs the service binaries (built by `cargo build --bins` or a workspace
//! test run); without them a test says so and does nothing, except under
//! CI (`CI=true`), where a missing binary fails it.

#![allow(
    clippy::expect_used,
    reason = "test code: a failure to run the binary should fail the test"
)]

mod dashboard;
mod deploy_certs;
mod roles;
mod tls;
mod whoami;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The shared partner-config fixtures of the core crate.
fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../core/tests/fixtures/partner-connect")
        .join(name)
}

/// Runs `tilewave` with a private dev directory and config file.
struct Cli {
    dir: tempfile::TempDir,
}

impl Cli {
    fn dev_dir(&self) -> PathBuf {
        self.dir.path().join("dev")
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[])
    }

    /// [`Cli::run`] with more environment variables.
    fn run_with(&self, args: &[&str], vars: &[(&str, &str)]) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_tilewave"))
            .args(args)
            .env("TILEWAVE_DEV_DIR", self.dev_dir())
            .env("TILEWAVE_CONFIG", self.config())
            .env("USER", "it-test")
            .env_remove("TILEWAVE_REGISTRY")
            .env_remove("TILEWAVE_ROLLOUT")
            .env_remove("TILEWAVE_CREDENTIALS")
            .env_remove("TILEWAVE_ACTOR")
            .env_remove("TILEWAVE_TIMEOUT")
            .env_remove("TILEWAVE_TLS_CERT")
            .env_remove("TILEWAVE_TLS_KEY")
            .env_remove("TILEWAVE_TLS_CA")
            .env_remove("TILEWAVE_INSECURE")
            .envs(vars.iter().copied())
            .output()
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
}

impl Drop for Cli {
    /// Never leave a stack behind, even when an assertion failed.
    fn drop(&mut self) {
        if self.dev_dir().join("stack.toml").exists() {
            let _ = self.run(&["dev", "down"]);
        }
    }
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Whether every binary is built; under CI a missing one fails the test.
fn binaries_built(names: &[&str]) -> bool {
    for name in names {
        if let Err(e) = tilewave_testkit::bin_path(name) {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true but {name} is not built: {e:#}");
            }
            eprintln!("SKIPPED: {e:#}");
            return false;
        }
    }
    true
}

#[test]
fn dev_stack_and_tile_journey() {
    if !binaries_built(&["tilewave-registry"]) {
        return;
    }
    let cli = Cli {
        dir: tempfile::tempdir().unwrap(),
    };

    let up = cli.run(&["dev", "up", "--regions", "1"]);
    assert_eq!(code(&up), 0);
    assert!(stdout(&up).contains("registry"), "dev up names what it started");
    assert!(stdout(&up).contains("TLS: on"), "{}", stdout(&up));
    assert!(!stderr(&up).contains("--insecure"), "no warning with TLS");
    let certs = cli.dev_dir().join("certs");
    let ca = std::fs::read(certs.join("ca.crt")).expect("dev up made the certificates");
    assert!(
        !cli.config().exists(),
        "dev up leaves the user's config file alone"
    );
    let saved = std::fs::read_to_string(cli.dev_dir().join("stack.toml")).unwrap();
    for want in [
        "registry = \"https://127.0.0.1:".to_owned(),
        format!("tls-cert = \"{}\"", certs.join("it-test.crt").display()),
        format!("tls-ca = \"{}\"", certs.join("ca.crt").display()),
    ] {
        assert!(saved.contains(&want), "{want} in {saved}");
    }

    let again = cli.run(&["dev", "up", "--regions", "1"]);
    assert_eq!(code(&again), 3, "a second dev up is refused");
    assert!(stderr(&again).contains("already running"));

    let status = cli.run(&["dev", "status", "-o", "json"]);
    assert_eq!(code(&status), 0);
    let rows: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    // The escalation service (issue 16) runs when it is built, healthy;
    // the counts below are of the rest.
    assert!(
        rows.iter()
            .filter(|r| r["name"] == "escalation")
            .all(|r| r["alive"] == true && r["healthy"] == true),
        "{rows:?}"
    );
    let rows: Vec<serde_json::Value> = rows
        .iter()
        .filter(|r| r["name"] != "escalation")
        .cloned()
        .collect();
    let names: Vec<&str> = rows.iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(
        names[..2],
        ["etcd", "registry"],
        "etcd, the registry, then the rest that is built"
    );
    assert!(
        rows.len() <= 6,
        "at most the rollout and credentials services, one agent and the partner double more: {names:?}"
    );
    assert!(
        rows.iter().all(|r| r["alive"] == true && r["healthy"] == true),
        "{rows:?}"
    );
    let url_of = |name: &str| {
        rows.iter()
            .find(|r| r["name"] == name)
            .and_then(|r| r["url"].as_str())
            .expect("a recorded URL")
            .to_owned()
    };
    let (etcd_url, registry_url) = (url_of("etcd"), url_of("registry"));
    assert!(etcd_url.starts_with("https://"), "{etcd_url}");
    assert!(registry_url.starts_with("https://"), "{registry_url}");
    let status = cli.run(&["dev", "status"]);
    assert!(
        stdout(&status).contains("TLS: on") && stdout(&status).contains(&certs.display().to_string()),
        "dev status says the stack runs TLS and where its certificates are: {}",
        stdout(&status)
    );
    refuses_clients_without_a_certificate(&etcd_url, &registry_url, &certs);
    // The CLI without the stack's saved settings (another dev directory)
    // calls plaintext and is told what to do.
    let elsewhere = cli.dir.path().join("elsewhere").display().to_string();
    let plain_url = registry_url.replace("https://", "http://");
    for (url, exit) in [(&registry_url, 2), (&plain_url, 1)] {
        let plain = cli.run_with(
            &["--registry", url, "tile", "list"],
            &[("TILEWAVE_DEV_DIR", &elsewhere)],
        );
        assert_eq!(code(&plain), exit, "{url}");
        assert!(
            stderr(&plain).contains("this call was plaintext") && stderr(&plain).contains("TILEWAVE_DEV_DIR"),
            "{}",
            stderr(&plain)
        );
    }

    // The journey, through the saved settings only.
    let riverflow = fixture("riverflow-ingest.json");
    let import = cli.run(&["tile", "import", riverflow.to_str().unwrap()]);
    assert_eq!(code(&import), 0);
    assert!(stdout(&import).contains("DRAFT"));

    let broken = cli.run(&[
        "tile",
        "import",
        fixture("invalid-several-errors.json").to_str().unwrap(),
    ]);
    assert_eq!(code(&broken), 2);
    let violations = stderr(&broken).lines().filter(|l| l.starts_with("  $.")).count();
    assert!(
        violations >= 2,
        "every error with its JSON path:\n{}",
        stderr(&broken)
    );

    assert_eq!(
        code(&cli.run(&["tile", "import", riverflow.to_str().unwrap()])),
        3,
        "exists"
    );
    assert_eq!(code(&cli.run(&["tile", "get", "no-such-tile"])), 3);
    assert_eq!(
        code(&cli.run(&["tile", "signoff", "riverflow", "--role", "ceo"])),
        2
    );
    assert_eq!(
        code(&cli.run(&["tile", "set-ga", "riverflow", "next tuesday"])),
        2
    );
    assert_eq!(
        code(&cli.run(&["tile", "set-test-workspace", "riverflow", "6051921418418893"])),
        0
    );
    // The engineering sign-off waits for the validation checklist.
    assert_eq!(
        code(&cli.run(&["tile", "signoff", "riverflow", "--role", "engineering"])),
        3,
        "refused while cases are open"
    );
    let validate = cli.run(&[
        "tile",
        "validate",
        "riverflow",
        "--all-open",
        "--pass",
        "--note",
        "certification run",
    ]);
    assert_eq!(code(&validate), 0);
    assert!(
        String::from_utf8_lossy(&validate.stdout).contains("no case open"),
        "{validate:?}"
    );
    assert_eq!(
        code(&cli.run(&["tile", "signoff", "riverflow", "--role", "engineering"])),
        0
    );
    let stale = cli.run(&[
        "tile",
        "signoff",
        "riverflow",
        "--role",
        "legal",
        "--revision",
        "1",
        "--etag",
        "1",
    ]);
    assert_eq!(code(&stale), 3, "a stale etag is a conflict");

    let get = cli.run(&["tile", "get", "riverflow", "-o", "json"]);
    assert_eq!(code(&get), 0);
    let tile: serde_json::Value = serde_json::from_slice(&get.stdout).unwrap();
    assert_eq!(tile["tile"]["state"], "VALIDATING");
    assert_eq!(tile["tile"]["sign_offs"][0]["role"], "engineering");
    assert_eq!(
        tile["tile"]["sign_offs"][0]["actor"], "it-test",
        "the certificate's identity (its name is $USER)"
    );

    // A certificate file that is not there: a usage error naming it.
    let missing = cli.run(&["--tls-cert", "/nonexistent/me.crt", "tile", "list"]);
    assert_eq!(code(&missing), 2, "{}", stderr(&missing));
    assert!(
        stderr(&missing).contains("/nonexistent/me.crt") && stderr(&missing).contains("--tls-cert"),
        "{}",
        stderr(&missing)
    );

    let list = cli.run(&["tile", "list", "-o", "yaml"]);
    assert_eq!(code(&list), 0);
    assert!(
        stdout(&list).starts_with("- id: riverflow\n"),
        "{}",
        stdout(&list)
    );

    // Stopped and started again: the same certificates, the same data.
    assert_eq!(code(&cli.run(&["dev", "down"])), 0);
    assert!(certs.join("ca.crt").exists(), "dev down keeps the certificates");
    let up = cli.run(&["dev", "up", "--regions", "1"]);
    assert_eq!(code(&up), 0);
    assert!(
        !stderr(&up).contains("made the development certificates"),
        "{}",
        stderr(&up)
    );
    assert_eq!(
        std::fs::read(certs.join("ca.crt")).unwrap(),
        ca,
        "reused, not remade"
    );
    assert_eq!(code(&cli.run(&["tile", "get", "riverflow"])), 0);
    let status = cli.run(&["dev", "status", "-o", "json"]);
    let rows: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let pids: Vec<i32> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["pid"].as_i64().unwrap() as i32)
        .collect();

    let down = cli.run(&["dev", "down", "--purge"]);
    assert_eq!(code(&down), 0);
    for pid in pids {
        let gone = matches!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
            Err(nix::errno::Errno::ESRCH)
        ) || std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.contains(") Z "));
        assert!(gone, "pid {pid} still runs after dev down");
    }
    assert!(
        !cli.dev_dir().exists(),
        "--purge deletes the dev directory, the certificates and the saved settings"
    );

    let unavailable = cli.run(&["tile", "list"]);
    assert_eq!(code(&unavailable), 1);
    assert!(
        stderr(&unavailable).contains("tilewave dev up"),
        "says what to do"
    );
}

/// The stack runs mutual TLS: etcd refuses a client that trusts its CA but
/// has no certificate, and a plaintext one; the registry refuses a
/// plaintext call; with the stack's own certificate etcd answers.
fn refuses_clients_without_a_certificate(etcd_url: &str, registry_url: &str, certs: &Path) {
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    rt.block_on(async {
        let ca = Certificate::from_pem(std::fs::read(certs.join("ca.crt")).expect("the CA"));
        let options = |tls: Option<ClientTlsConfig>| {
            let o = etcd_client::ConnectOptions::new()
                .with_connect_timeout(std::time::Duration::from_secs(5))
                .with_timeout(std::time::Duration::from_secs(5));
            match tls {
                Some(t) => o.with_tls(t),
                None => o,
            }
        };
        let get = |url: String, o: etcd_client::ConnectOptions| async move {
            let mut c = etcd_client::Client::connect([url], Some(o)).await?;
            c.get("/tilewave/", None).await.map(|_| ())
        };
        let no_cert = get(
            etcd_url.to_owned(),
            options(Some(ClientTlsConfig::new().ca_certificate(ca.clone()))),
        )
        .await;
        assert!(
            no_cert.is_err(),
            "etcd must refuse a client without a certificate"
        );
        let plain = get(etcd_url.replace("https://", "http://"), options(None)).await;
        assert!(plain.is_err(), "etcd must refuse a plaintext client");
        let identity = Identity::from_pem(
            std::fs::read(certs.join("it-test.crt")).expect("your certificate"),
            std::fs::read(certs.join("it-test.key")).expect("your key"),
        );
        let with_cert = get(
            etcd_url.to_owned(),
            options(Some(ClientTlsConfig::new().ca_certificate(ca).identity(identity))),
        )
        .await;
        assert!(with_cert.is_ok(), "the stack's certificate works: {with_cert:?}");

        let channel = tonic::transport::Endpoint::from_shared(registry_url.replace("https://", "http://"))
            .expect("a URL")
            .timeout(std::time::Duration::from_secs(5))
            .connect_lazy();
        let plaintext =
            tilewave_proto::registry::v1::registry_service_client::RegistryServiceClient::new(channel)
                .list_tiles(tilewave_proto::registry::v1::ListTilesRequest::default())
                .await;
        assert!(plaintext.is_err(), "a plaintext call to the registry must fail");
    });
}

/// `dev up --insecure`: plaintext everywhere, a warning, `dev status` says
/// so, the CLI works without a certificate, and a CLI that presents one
/// (TILEWAVE_TLS_* set) is told the stack runs without TLS.
#[test]
fn an_insecure_stack_runs_plaintext_and_warns() {
    if !binaries_built(&["tilewave-registry"]) {
        return;
    }
    let cli = Cli {
        dir: tempfile::tempdir().unwrap(),
    };
    let up = cli.run(&["dev", "up", "--insecure", "--regions", "0"]);
    assert_eq!(code(&up), 0);
    assert!(
        stderr(&up).contains("warning: --insecure: the dev stack runs without TLS"),
        "{}",
        stderr(&up)
    );
    assert!(stdout(&up).contains("TLS: off"), "{}", stdout(&up));
    assert!(!cli.dev_dir().join("certs").exists(), "no certificates made");
    let saved = std::fs::read_to_string(cli.dev_dir().join("stack.toml")).unwrap();
    assert!(saved.contains("registry = \"http://127.0.0.1:"), "{saved}");
    assert!(!saved.contains("tls-cert"), "{saved}");
    let log = std::fs::read_to_string(cli.dev_dir().join("registry.log")).unwrap();
    assert!(
        log.contains("without TLS"),
        "the service warns at start-up: {log}"
    );
    let status = cli.run(&["dev", "status"]);
    assert_eq!(code(&status), 0);
    assert!(
        stdout(&status).contains("TLS: off (started with --insecure)"),
        "{}",
        stdout(&status)
    );
    let list = cli.run(&["tile", "list"]);
    assert_eq!(code(&list), 0, "plaintext, no certificate: {}", stderr(&list));

    // A certificate from the environment: TLS to a plaintext stack.
    let certs = cli.dir.path().join("my-certs");
    let init = cli.run(&["certs", "init", "--dir", certs.to_str().unwrap()]);
    assert_eq!(code(&init), 0);
    let path = |f: &str| certs.join(f).display().to_string();
    let (cert, key, ca) = (path("it-test.crt"), path("it-test.key"), path("ca.crt"));
    let vars = [
        ("TILEWAVE_TLS_CERT", cert.as_str()),
        ("TILEWAVE_TLS_KEY", key.as_str()),
        ("TILEWAVE_TLS_CA", ca.as_str()),
    ];
    let tls = cli.run_with(&["tile", "list"], &vars);
    assert_eq!(code(&tls), 1);
    let err = stderr(&tls);
    assert!(
        err.contains("runs without TLS (--insecure)") && err.contains("unset TILEWAVE_TLS_CERT"),
        "says what to do: {err}"
    );
    assert_eq!(code(&cli.run(&["dev", "down", "--purge"])), 0);
    assert!(!cli.dev_dir().exists());
}

/// Runs `tilewave` with a time limit, killing it when it runs over.
fn run_bounded(cli: &Cli, args: &[&str], limit: std::time::Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tilewave"))
        .args(args)
        .env("TILEWAVE_DEV_DIR", cli.dev_dir())
        .env("TILEWAVE_CONFIG", cli.config())
        .env("USER", "it-test")
        .env_remove("TILEWAVE_TLS_CERT")
        .env_remove("TILEWAVE_TLS_KEY")
        .env_remove("TILEWAVE_TLS_CA")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running tilewave");
    let step = std::time::Duration::from_millis(100);
    let mut waited = std::time::Duration::ZERO;
    while child.try_wait().expect("waiting").is_none() {
        if waited > limit {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(step);
        waited += step;
    }
    let out = child.wait_with_output().expect("collecting output");
    eprintln!(
        "$ tilewave {}\n-> {:?}\n{}{}",
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Imports riverflow under `id`, sets its test workspace and records the
/// five sign-offs: SIGNED_OFF, ready for a GA date.
fn prepare_signed_off(cli: &Cli, id: &str) {
    let riverflow = fixture("riverflow-ingest.json");
    let import = cli.run(&[
        "tile",
        "import",
        riverflow.to_str().expect("a UTF-8 path"),
        "--id",
        id,
    ]);
    assert_eq!(code(&import), 0);
    assert_eq!(
        code(&cli.run(&["tile", "set-test-workspace", id, "6051921418418893"])),
        0
    );
    assert_eq!(
        code(&cli.run(&["tile", "validate", id, "--all-open", "--pass", "--note", "ran"])),
        0
    );
    for role in ["engineering", "partner-sa", "product", "partner", "legal"] {
        assert_eq!(
            code(&cli.run(&["tile", "signoff", id, "--role", role])),
            0,
            "{role}"
        );
    }
}

/// [`prepare_signed_off`], then GA set by hand a week and half a day after
/// virtual now.
fn prepare_launch(cli: &Cli, id: &str) {
    prepare_signed_off(cli, id);
    let clock = cli.run(&["clock", "show", "-o", "json"]);
    assert_eq!(code(&clock), 0);
    let reading: serde_json::Value = serde_json::from_slice(&clock.stdout).expect("JSON");
    assert_eq!(reading["virtual_clock"], true, "{reading}");
    let now: jiff::Timestamp = reading["now"]
        .as_str()
        .expect("a time")
        .parse()
        .expect("RFC 3339");
    // A week and half a day: the clock runs on while the commands run, and
    // the GA scheduler would start the launch by itself at GA - 7 days (the
    // journeys start it by hand before then).
    let ga = now + jiff::SignedDuration::from_hours(7 * 24 + 12);
    let ga = ga.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    assert_eq!(
        code(&cli.run(&["tile", "set-ga", id, &ga])),
        3,
        "refused while go-to-market items are pending"
    );
    for item in ["mini-site", "logo", "blog", "docs"] {
        let link = format!("https://riverflow.example/{item}");
        let args = [
            "tile",
            "gtm",
            id,
            "set",
            item,
            "--done",
            "--owner",
            "ana",
            "--due",
            "2026-12-01",
            "--link",
            &link,
        ];
        assert_eq!(code(&cli.run(&args)), 0, "{item}");
    }
    let gtm = cli.run(&["tile", "gtm", id]);
    assert!(
        String::from_utf8_lossy(&gtm.stdout).contains("all done"),
        "{gtm:?}"
    );
    assert_eq!(code(&cli.run(&["tile", "set-ga", id, &ga])), 0);
}

#[test]
fn rollout_journey_on_the_virtual_clock() {
    if !binaries_built(&["tilewave-registry", "tilewave-rollout", "tilewave-agent"]) {
        return;
    }
    let cli = Cli {
        dir: tempfile::tempdir().unwrap(),
    };
    let up = cli.run(&["dev", "up", "--regions", "4", "--virtual-clock", "--rate", "5000"]);
    assert_eq!(code(&up), 0);
    let saved = std::fs::read_to_string(cli.dev_dir().join("stack.toml")).unwrap();
    assert!(saved.contains("rollout = \"https://127.0.0.1:"), "{saved}");
    let status = cli.run(&["dev", "status", "-o", "json"]);
    assert_eq!(code(&status), 0, "every process healthy");
    let rows: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    // Not counting the escalation service (issue 16), started when built.
    let rows = serde_json::Value::Array(
        rows.as_array()
            .unwrap()
            .iter()
            .filter(|r| r["name"] != "escalation")
            .cloned()
            .collect(),
    );
    assert_eq!(
        rows.as_array().unwrap().len(),
        9,
        "etcd, registry, rollout, credentials, 4 agents, the partner double"
    );

    // The stack's four regions: `dev up --regions 4` picks them.
    let regions: Vec<String> = tilewave_core::regions::RegionCatalog::builtin().representative(4);
    let regions = regions.join(",");

    prepare_launch(&cli, "riverflow");
    let plan = cli.run(&["rollout", "plan", "riverflow", "--regions", &regions]);
    assert_eq!(code(&plan), 0);
    let text = stdout(&plan);
    assert!(text.contains("4 regions"), "{text}");
    assert!(text.contains("canaries") || text.contains("canary"), "{text}");
    assert!(text.contains("(GA - 24h)"), "{text}");

    let bad = cli.run(&["rollout", "plan", "riverflow", "--bake", "4 hours"]);
    assert_eq!(code(&bad), 2);
    assert!(stderr(&bad).contains("--bake"), "names the flag");

    let start = cli.run(&["rollout", "start", "riverflow", "--regions", &regions]);
    assert_eq!(code(&start), 0);
    assert!(stdout(&start).contains("riverflow-r1"), "{}", stdout(&start));

    let watch = run_bounded(
        &cli,
        &["rollout", "status", "riverflow", "--watch"],
        std::time::Duration::from_secs(180),
    );
    assert_eq!(code(&watch), 0);
    assert!(stdout(&watch).contains("succeeded"), "{}", stdout(&watch));
    let done = cli.run(&["rollout", "status", "riverflow", "-o", "json"]);
    let r: serde_json::Value = serde_json::from_slice(&done.stdout).unwrap();
    assert_eq!(r["state"], "SUCCEEDED", "{r}");
    assert_eq!(r["regions_live"], 4, "{r}");

    let list = cli.run(&["rollout", "list"]);
    assert_eq!(code(&list), 0);
    assert!(stdout(&list).contains("SUCCEEDED"));

    let where_ = cli.run(&["tile", "where", "riverflow", "-o", "json"]);
    assert_eq!(code(&where_), 0);
    let placements: serde_json::Value = serde_json::from_slice(&where_.stdout).unwrap();
    let live: Vec<&serde_json::Value> = placements
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["live_revision"] == 1)
        .collect();
    assert_eq!(live.len(), 4, "revision 1 in all four regions: {placements}");
    assert!(stdout(&cli.run(&["tile", "where", "riverflow"])).contains("live in 4 of"));

    // A freeze refuses a start.
    prepare_launch(&cli, "riverflow-b");
    assert_eq!(code(&cli.run(&["freeze", "on", "--reason", "it-test"])), 0);
    assert!(stdout(&cli.run(&["freeze", "show"])).contains("FROZEN  yes"));
    let frozen = cli.run(&["rollout", "start", "riverflow-b", "--regions", &regions]);
    assert_eq!(code(&frozen), 3, "a start during a freeze is refused");
    assert_eq!(code(&cli.run(&["freeze", "off"])), 0);

    // The launch calendar: a rule, a blackout, shown with indexes and the
    // next slots; a slot in the past is refused naming the field; an item
    // removed by index.
    let rule = cli.run(&[
        "calendar",
        "add-rule",
        "--days",
        "tue",
        "--time",
        "17:00",
        "--tz",
        "UTC",
        "--capacity",
        "5",
    ]);
    assert_eq!(code(&rule), 0, "{}", stderr(&rule));
    let blackout = cli.run(&[
        "calendar",
        "add-blackout",
        "--from",
        "2040-12-24 00:00",
        "--to",
        "2040-12-27 00:00",
        "--reason",
        "Christmas",
    ]);
    assert_eq!(code(&blackout), 0, "{}", stderr(&blackout));
    let show = cli.run(&["calendar", "show", "-o", "json"]);
    assert_eq!(code(&show), 0);
    let cal: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(cal["rules"][0]["days"][0], "tue", "{cal}");
    assert_eq!(cal["blackouts"][0]["reason"], "Christmas", "{cal}");
    assert_eq!(cal["upcoming"].as_array().map(Vec::len), Some(5), "{cal}");
    assert!(stdout(&cli.run(&["calendar", "show"])).contains("UPCOMING SLOTS"));
    let past = cli.run(&[
        "calendar",
        "add-slot",
        "--at",
        "2000-01-01 00:00",
        "--capacity",
        "1",
    ]);
    assert_eq!(code(&past), 2, "a slot in the past is bad input");
    assert!(stderr(&past).contains("extra_slots[0].at"), "{}", stderr(&past));
    assert_eq!(code(&cli.run(&["calendar", "remove", "blackout", "0"])), 0);
    let cal: serde_json::Value =
        serde_json::from_slice(&cli.run(&["calendar", "show", "-o", "json"]).stdout).unwrap();
    assert_eq!(cal["blackouts"].as_array().map(Vec::len), Some(0), "{cal}");
    assert_eq!(cal["rules"].as_array().map(Vec::len), Some(1), "{cal}");

    // GA on the launch calendar: a proposal (the slot and the slots
    // skipped), the commit, the launch listed, held and released, and the
    // launch day's announcement.
    prepare_signed_off(&cli, "riverflow-c");
    // Go-to-market pending with no due date: every slot is skipped for it.
    let pending = cli.run(&["ga", "schedule", "riverflow-c"]);
    assert_eq!(code(&pending), 3, "{}", stderr(&pending));
    assert!(
        stdout(&pending).contains("go-to-market pending"),
        "{}",
        stdout(&pending)
    );
    assert!(stdout(&pending).contains("no slot"), "{}", stdout(&pending));
    let over = "blog ships on launch day";
    let propose = cli.run(&["ga", "schedule", "riverflow-c", "--gtm-override", over]);
    assert_eq!(code(&propose), 0, "{}", stderr(&propose));
    assert!(
        stdout(&propose).contains("riverflow-c: proposed for GA"),
        "{}",
        stdout(&propose)
    );
    assert!(stdout(&propose).contains("--commit"), "{}", stdout(&propose));
    let commit = cli.run(&[
        "ga",
        "schedule",
        "riverflow-c",
        "--commit",
        "--gtm-override",
        over,
        "-o",
        "json",
    ]);
    assert_eq!(code(&commit), 0, "{}", stderr(&commit));
    let answer: serde_json::Value = serde_json::from_slice(&commit.stdout).unwrap();
    assert_eq!(answer["committed"], true, "{answer}");
    let ga = answer["ga"].as_str().expect("a GA time").to_owned();
    let again = cli.run(&["ga", "schedule", "riverflow-c", "--commit"]);
    assert_eq!(code(&again), 3, "already scheduled");
    assert!(stderr(&again).contains("tilewave ga move"), "{}", stderr(&again));
    let hold = cli.run(&["ga", "hold", "riverflow-c", "--reason", "partner asked"]);
    assert_eq!(code(&hold), 0, "{}", stderr(&hold));
    let list = cli.run(&["ga", "list"]);
    assert_eq!(code(&list), 0);
    let text = stdout(&list);
    assert!(
        text.contains("LAUNCH DAYS") && text.contains("riverflow-c"),
        "{text}"
    );
    assert!(text.contains("HELD: partner asked"), "{text}");
    assert!(text.contains("gtm override: blog ships on launch day"), "{text}");
    assert_eq!(code(&cli.run(&["ga", "release", "riverflow-c"])), 0);
    let day = &ga[..10];
    let post = cli.run(&["ga", "announce", day]);
    assert_eq!(code(&post), 0, "{}", stderr(&post));
    assert!(
        stdout(&post).starts_with(&format!("# Partner launches of {day}")),
        "{}",
        stdout(&post)
    );
    assert!(stdout(&post).contains("Riverflow"), "{}", stdout(&post));
    let unknown = cli.run(&["ga", "schedule", "no-such-tile"]);
    assert_eq!(code(&unknown), 3, "{}", stderr(&unknown));

    // A credential handed in through a file: shown by fingerprint only.
    let secret = "platform:it-test-secret-0123456789";
    let file = cli.dir.path().join("credential.txt");
    std::fs::write(&file, format!("{secret}\n")).unwrap();
    let submit = cli.run(&["creds", "submit", "riverflow", "--file", file.to_str().unwrap()]);
    assert_eq!(code(&submit), 0, "{}", stderr(&submit));
    assert!(!stdout(&submit).contains("it-test-secret"), "{}", stdout(&submit));
    let listed = cli.run(&["creds", "list", "riverflow", "-o", "json"]);
    assert_eq!(code(&listed), 0, "{}", stderr(&listed));
    assert!(!stdout(&listed).contains("it-test-secret"), "{}", stdout(&listed));
    assert!(
        stdout(&listed).to_ascii_lowercase().contains("pending"),
        "{}",
        stdout(&listed)
    );

    // The clock never goes back.
    let back = cli.run(&["clock", "set", "2000-01-01 00:00"]);
    assert!(matches!(code(&back), 2 | 3), "exit 2 or 3");
    assert!(stderr(&back).contains("Set:"), "{}", stderr(&back));

    let down = cli.run(&["dev", "down", "--purge"]);
    assert_eq!(code(&down), 0);
    assert!(!cli.dev_dir().exists());
}

/// Starts a stack with agents in `regions` regions on a fast virtual clock
/// and returns `dev status` as JSON rows (every process healthy).
fn up_with_regions(cli: &Cli, regions: &str) -> Vec<serde_json::Value> {
    let up = cli.run(&[
        "dev",
        "up",
        "--regions",
        regions,
        "--virtual-clock",
        "--rate",
        "5000",
    ]);
    assert_eq!(code(&up), 0);
    assert!(
        stdout(&up).contains(&format!("regions: {regions} of 70, the stack's region catalog")),
        "dev up names the stack's regions: {}",
        stdout(&up)
    );
    let status = cli.run(&["dev", "status", "-o", "json"]);
    assert_eq!(code(&status), 0, "every process healthy");
    let rows: serde_json::Value = serde_json::from_slice(&status.stdout).expect("JSON");
    rows.as_array().expect("an array").clone()
}

/// Follows the tile's roll-out to its end; returns its final status.
fn follow_to_the_end(cli: &Cli, tile: &str) -> serde_json::Value {
    let watch = run_bounded(
        cli,
        &["rollout", "status", tile, "--watch"],
        std::time::Duration::from_secs(120),
    );
    assert_eq!(code(&watch), 0);
    let done = cli.run(&["rollout", "status", tile, "-o", "json"]);
    serde_json::from_slice(&done.stdout).expect("JSON")
}

/// `dev up --regions 6` runs agents on all three clouds, makes those six
/// the stack's region catalog, and an all-cloud tile's roll-out (no
/// `--regions` flag) covers exactly them and succeeds.
#[test]
fn a_six_region_stack_rolls_an_all_cloud_tile_out_over_its_six_regions() {
    if !binaries_built(&["tilewave-registry", "tilewave-rollout", "tilewave-agent"]) {
        return;
    }
    let cli = Cli {
        dir: tempfile::tempdir().unwrap(),
    };
    let rows = up_with_regions(&cli, "6");
    let agents: Vec<&str> = rows
        .iter()
        .filter_map(|r| r["name"].as_str())
        .filter(|n| n.starts_with("agent-"))
        .collect();
    assert_eq!(agents.len(), 6, "{agents:?}");
    for cloud in ["aws", "azure", "gcp"] {
        assert!(
            agents.iter().any(|a| a.starts_with(&format!("agent-{cloud}-"))),
            "an agent on {cloud}: {agents:?}"
        );
    }
    let status = cli.run(&["dev", "status"]);
    assert!(
        stdout(&status).contains("regions: 6 of 70, the stack's region catalog"),
        "dev status shows the saved regions: {}",
        stdout(&status)
    );

    prepare_launch(&cli, "riverflow");
    let plan = cli.run(&["rollout", "plan", "riverflow"]);
    assert_eq!(code(&plan), 0, "every region of the plan has an agent");
    assert!(stdout(&plan).contains("6 regions"), "{}", stdout(&plan));

    let start = cli.run(&["rollout", "start", "riverflow"]);
    assert_eq!(code(&start), 0);
    let r = follow_to_the_end(&cli, "riverflow");
    assert_eq!(r["state"], "SUCCEEDED", "{r}");
    assert_eq!(r["regions_live"], 6, "{r}");
    assert_eq!(code(&cli.run(&["dev", "down", "--purge"])), 0);
}

/// With one agent stopped, `rollout plan` lists its region as a problem
/// and `rollout start` refuses (exit 3) naming it and the `--exclude`
/// that fits; the start with that `--exclude` completes.
#[test]
fn a_stopped_agent_fails_the_pre_flight_check_and_the_suggested_exclude_completes() {
    if !binaries_built(&["tilewave-registry", "tilewave-rollout", "tilewave-agent"]) {
        return;
    }
    let cli = Cli {
        dir: tempfile::tempdir().unwrap(),
    };
    let rows = up_with_regions(&cli, "6");
    let stopped = "gcp:asia-northeast1";
    let pid = rows
        .iter()
        .find(|r| r["name"] == "agent-gcp-asia-northeast1")
        .and_then(|r| r["pid"].as_i64())
        .and_then(|p| i32::try_from(p).ok())
        .expect("the gcp canary's agent runs");
    let pid = nix::unistd::Pid::from_raw(pid);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("stopping the agent");

    prepare_launch(&cli, "riverflow");
    // Its registration goes when it stops: poll the plan until it says so.
    let exclude = format!("--exclude {stopped}");
    // (At most 30 s, counted in steps as `run_bounded` does.)
    let step = std::time::Duration::from_millis(200);
    let mut waited = std::time::Duration::ZERO;
    let plan = loop {
        let plan = cli.run(&["rollout", "plan", "riverflow"]);
        if code(&plan) == 3 || waited > std::time::Duration::from_secs(30) {
            break plan;
        }
        std::thread::sleep(step);
        waited += step;
    };
    assert_eq!(
        code(&plan),
        3,
        "a plan with a region lacking an agent is not feasible"
    );
    let text = stdout(&plan);
    assert!(
        text.contains(&format!(
            "- no agent: no agent is registered for {stopped} (is its tilewave-agent running?)"
        )),
        "{text}"
    );
    assert!(text.contains(&format!("({exclude})")), "{text}");

    let refused = cli.run(&["rollout", "start", "riverflow"]);
    assert_eq!(code(&refused), 3, "FAILED_PRECONDITION");
    let err = stderr(&refused);
    assert!(err.contains(stopped), "names the region: {err}");
    assert!(err.contains(&exclude), "says the --exclude that fits: {err}");
    let none = cli.run(&["rollout", "list", "-o", "json"]);
    assert_eq!(stdout(&none).trim(), "[]", "nothing started");

    let start = cli.run(&["rollout", "start", "riverflow", "--exclude", stopped]);
    assert_eq!(code(&start), 0);
    let r = follow_to_the_end(&cli, "riverflow");
    assert_eq!(r["state"], "SUCCEEDED", "{r}");
    assert_eq!(r["regions_live"], 5, "{r}");
    assert_eq!(code(&cli.run(&["dev", "down", "--purge"])), 0);
}

/// `tilewave auth table` prints the role table without any service: a line
/// per RPC, and the same rows as JSON.
#[test]
fn auth_table_needs_no_stack() {
    let cli = Cli {
        dir: tempfile::tempdir().expect("temp dir"),
    };
    let o = cli.run(&["auth", "table"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.starts_with("RPC "), "{text}");
    assert!(
        text.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
            == ["AgentService/ApplyTile", "-", "-", "-", "-", "x"]),
        "{text}"
    );
    let o = cli.run(&["auth", "table", "-o", "json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let rows: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    let rows = rows.as_array().expect("a list of rows");
    assert_eq!(rows.len(), text.lines().count() - 1);
    assert!(
        rows.iter()
            .all(|r| r["path"].as_str().is_some_and(|p| p.starts_with('/')))
    );
    assert_eq!(code(&cli.run(&["auth", "tables"])), 2);
}
