//! Issue 15's "no secret plaintext anywhere": a whole credential journey
//! driven through the real `tilewave` CLI against etcd, the registry, the
//! credentials service and three agents (one per cloud) calling the
//! partner API double, every process (the CLI too) exporting every span to
//! an in-process OTLP receiver; then everything captured is scanned
//! (`tilewave_testkit::secret_scan`) for every secret handed in or
//! generated, in every form (the password, `user:password`, the Basic
//! header's base64, escaped forms, a prefix) and for the key-encryption
//! keys: every log line of every process the test kit started, every
//! exported span's name, attributes, status and events, every CLI output,
//! every etcd key and value (the whole keyspace) and the agents' catalog
//! files.
//!
//! The journey: submit from stdin (`--user` and `user:password`), rotate,
//! watch, status, list, rotations, confirm-retired; a generated secret
//! rotated in (the partner told it, as the test reads it back from etcd
//! with the service's KEK); a rotation the partner rejects (failed, its
//! status printed); refused calls whose errors are printed (the same
//! secret twice, no `user:`, a control character, an oversized secret, an
//! unknown tile, confirming with nothing promoted); a KEK rotation of the
//! service (`creds rewrap --dry-run`, `creds rewrap`) and of the agents
//! (re-wrapped at restart), each still verifying against the partner.

use std::collections::BTreeSet;
use std::process::{Output, Stdio};
use std::time::Duration;

use tilewave_proto::agent::v1::VerifyCredentialRequest;
use tilewave_proto::credentials::v1::*;
use tilewave_secrets::{Kek, Keyring};
use tilewave_telemetry::receiver::{ReceivedSpan, Receiver, Value};
use tilewave_testkit::PartnerDouble;
use tilewave_testkit::secret_scan::{Scan, Secrets};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpListener;

use crate::rotation::{USER, agents_in, until_state};
use crate::*;

/// One region per cloud.
const REGIONS: [&str; 3] = ["aws:us-east-1", "azure:westeurope", "gcp:us-central1"];
/// The region whose partner endpoint rejects [`REJECTED`].
const ODD_REGION: &str = "gcp:us-central1";
const TILE: &str = "riverflow";
const FIRST: &str = "first-secret-Qm7vK2pX9rT4wZ8c";
const SECOND: &str = "second-secret-Hb3nL6yD1sF5gJ0e";
const REJECTED: &str = "rejected-secret-Wc8uA4iO2pE7rN3m";
const NO_USER: &str = "nouser-secret-Zt5xB9kV1qM6hY2d";
const CONTROL: &str = "control-secret-Pf4jS8lC3wG7tR1a";
const UNKNOWN_TILE: &str = "unknowntile-secret-Ke2dU6oI9bN4vX7s";
const OVERSIZED_PREFIX: &str = "oversized-secret-Lr6gT1yH5mQ0cW8z";
const WAIT: Duration = Duration::from_secs(90);
const GRACE: Duration = Duration::from_secs(10);
/// How long one CLI run may take (`status --watch` included).
const CLI_TIMEOUT: Duration = Duration::from_secs(60);

/// The `tilewave` binary as a release engineer against the stack, every
/// run's output kept for the scan.
struct Cli {
    env: Vec<(String, String)>,
    endpoint: String,
    runs: Vec<(String, Output)>,
    /// What was piped into each run that read standard input.
    inputs: Vec<Vec<u8>>,
}

impl Cli {
    /// Runs `tilewave --credentials URL ARGS`, `stdin` piped in (else
    /// empty); the output, also kept.
    async fn run(&mut self, args: &[&str], stdin: Option<&[u8]>) -> Result<Output> {
        let bin = bin_path("tilewave")?;
        let mut all: Vec<String> = vec!["--credentials".into(), self.endpoint.clone()];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        eprintln!("secret scan: tilewave {}", args.join(" "));
        let mut child = tokio::process::Command::new(bin)
            .args(&all)
            .envs(self.env.clone())
            .env_remove("TILEWAVE_CREDENTIALS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        if let Some(mut pipe) = child.stdin.take() {
            // The CLI may refuse before reading it all.
            let _ = pipe.write_all(stdin.unwrap_or_default()).await;
        }
        if let Some(input) = stdin {
            self.inputs.push(input.to_vec());
        }
        let out = tokio::time::timeout(CLI_TIMEOUT, child.wait_with_output())
            .await
            .with_context(|| format!("tilewave {args:?} did not end within {CLI_TIMEOUT:?}"))??;
        self.runs
            .push((format!("tilewave {}", args.join(" ")), out.clone()));
        Ok(out)
    }

    /// As [`Cli::run`], which must succeed; its stdout.
    async fn ok(&mut self, args: &[&str], stdin: Option<&[u8]>) -> Result<String> {
        let out = self.run(args, stdin).await?;
        anyhow::ensure!(
            out.status.success(),
            "tilewave {args:?} failed ({}): {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// As [`Cli::run`], which must fail with an error printed; stderr.
    async fn refused(&mut self, args: &[&str], stdin: Option<&[u8]>) -> Result<String> {
        let out = self.run(args, stdin).await?;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        anyhow::ensure!(
            !out.status.success() && !stderr.trim().is_empty(),
            "tilewave {args:?} was not refused ({}): {}\n{stderr}",
            out.status,
            String::from_utf8_lossy(&out.stdout)
        );
        Ok(stderr)
    }
}

/// Everything a span shows, as text: name, status, attributes, events.
pub fn span_text(s: &ReceivedSpan) -> String {
    let value = |v: &Value| match v {
        Value::Str(s) | Value::Other(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Double(d) => d.to_string(),
        Value::Bool(b) => b.to_string(),
    };
    let mut text = format!("{}\nstatus: {}\n", s.name, s.status_message);
    let mut attrs: Vec<_> = s.attributes.iter().collect();
    attrs.sort_by(|a, b| a.0.cmp(b.0));
    for (k, v) in attrs {
        text.push_str(&format!("{k}={}\n", value(v)));
    }
    for e in &s.events {
        text.push_str(&format!("event: {}\n", e.name));
        let mut attrs: Vec<_> = e.attributes.iter().collect();
        attrs.sort_by(|a, b| a.0.cmp(b.0));
        for (k, v) in attrs {
            text.push_str(&format!("  {k}={}\n", value(v)));
        }
    }
    text
}

/// The base64 key of a KEK (`id:base64key`).
fn key_text(k: &Kek) -> String {
    let text = k.to_text();
    text.split_once(':')
        .map(|(_, key)| key.to_owned())
        .unwrap_or_default()
}

/// The stored secret of `version`, opened with the service's `ring`.
async fn stored_password(stack: &Stack, ring: &Keyring, version: i64) -> Result<String> {
    let key = keys()?.credential_secret(TILE, "partner-basic-auth", u64::try_from(version)?);
    let dump = stack.etcd.dump(PREFIX).await?;
    let (raw, _) = dump.get(&key).context("the stored secret")?;
    let stored = <StoredSecret as prost::Message>::decode(raw.as_slice())?;
    let sealed = tilewave_credentials::convert::sealed(&stored.encrypted.context("encrypted")?);
    let aad = format!("{TILE}/partner-basic-auth/{version}");
    Ok(ring.open(&sealed, aad.as_bytes())?.expose().to_owned())
}

/// The tile's running (or latest) rotation.
async fn newest_rotation(c: &mut CredentialsServiceClient<Channel>) -> Result<Rotation> {
    let r = c
        .get_rotation(GetRotationRequest {
            tile_id: TILE.into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .rotation
        .context("rotation")?;
    Ok(r)
}

// Two workers: the processes flush their last spans to the in-process
// receiver as they stop (see services/rollout/tests/it/trace.rs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_any_log_span_cli_output_or_etcd_value() -> anyhow::Result<()> {
    let receiver = Receiver::start(TcpListener::bind("127.0.0.1:0").await?)?;
    let env: Vec<(String, String)> = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        // Every span, whatever its parent says.
        ("OTEL_TRACES_SAMPLER", "always_on"),
        // Our crates log at debug (the CLI's too); span events stay INFO and
        // above whatever this says, so DEBUG lines are scanned in the logs.
        (
            "RUST_LOG",
            "info,tilewave_credentials=debug,tilewave_agent=debug,tilewave_registry=debug,\
             tilewave_store=debug,tilewave_service=debug,tilewave_clients=debug,tilewave_secrets=debug,\
             tilewave_telemetry=debug,reqwest=debug",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let (kek_text, service_keys) = keyring_text(&["k1"])?;
    let mut stack = Stack::start_with_env(&kek_text, &REGIONS, None, &env).await?;
    stack.tile(TILE).await?;
    // The partner, and the same partner's endpoint as one region sees it
    // (`odd`): it accepts what the partner accepts, except the rejected
    // credential.
    let partner = PartnerDouble::start().await?;
    let odd = PartnerDouble::start().await?;
    let accept = |pairs: &[(&str, &str)]| {
        partner.set_accepted(pairs);
        let without: Vec<(&str, &str)> = pairs.iter().copied().filter(|(_, p)| *p != REJECTED).collect();
        odd.set_accepted(&without);
    };
    accept(&[(USER, FIRST)]);
    let mut agents = agents_in(
        &stack,
        &REGIONS,
        &partner,
        Some((ODD_REGION, &odd)),
        "200ms",
        &env,
    )
    .await?;
    let agent_kek_file = stack.dir.path().join("agent-kek");
    let agent_ring = Keyring::from_file(&agent_kek_file)?;
    let mut c = stack.client().await?;

    let me = tilewave_testkit::Pki::shared()?.files(tilewave_testkit::pki::RELEASE_ENGINEER);
    let mut cli_env = env.clone();
    for (k, v) in [
        ("TILEWAVE_TLS_CERT", &me.cert),
        ("TILEWAVE_TLS_KEY", &me.key),
        ("TILEWAVE_TLS_CA", &me.ca),
    ] {
        cli_env.push((k.to_owned(), v.display().to_string()));
    }
    cli_env.push(("TILEWAVE_ACTOR".into(), "secret-scan".into()));
    // No config file of the machine's user.
    cli_env.push((
        "XDG_CONFIG_HOME".into(),
        stack.dir.path().join("config").display().to_string(),
    ));
    let mut cli = Cli {
        env: cli_env,
        endpoint: stack.credentials.endpoint(),
        runs: Vec::new(),
        inputs: Vec::new(),
    };
    let regions = REGIONS.join(",");
    let rotate = [
        "creds",
        "rotate",
        TILE,
        "--regions",
        &regions,
        "--bake",
        "0s",
        "--retire",
        "on-confirmation",
    ];

    // The first credential, from stdin with --user (debug output on).
    let out = cli
        .ok(
            &["-vv", "creds", "submit", TILE, "--user", USER],
            Some(format!("{FIRST}\n").as_bytes()),
        )
        .await?;
    assert!(out.contains("fingerprint"), "{out}");
    cli.ok(&rotate, None).await?;
    cli.ok(&["creds", "status", TILE, "--watch"], None).await?;
    let first = newest_rotation(&mut c).await?;
    until_state(&c, &first.id, RotationState::Completed).await?;

    // The second, as user:password; both accepted during the switch.
    accept(&[(USER, FIRST), (USER, SECOND)]);
    cli.ok(
        &["creds", "submit", TILE],
        Some(format!("{USER}:{SECOND}\n").as_bytes()),
    )
    .await?;
    cli.ok(&rotate, None).await?;
    cli.ok(&["creds", "status", TILE, "--watch"], None).await?;
    cli.ok(&["creds", "status", TILE], None).await?;
    cli.ok(&["creds", "list", TILE], None).await?;
    cli.ok(&["creds", "list", "-o", "json"], None).await?;
    cli.ok(&["creds", "rotations", TILE], None).await?;
    cli.ok(
        &[
            "creds",
            "confirm-retired",
            TILE,
            "--note",
            "partner removed the old one",
        ],
        None,
    )
    .await?;
    let second = newest_rotation(&mut c).await?;
    until_state(&c, &second.id, RotationState::Completed).await?;
    accept(&[(USER, SECOND)]);

    // A generated one: the test reads it back with the service's key to
    // tell the partner, as the partner would be told.
    let out = cli
        .ok(&["creds", "submit", TILE, "--user", USER, "--generate"], None)
        .await?;
    assert!(out.contains("generated"), "{out}");
    let listed = c
        .list_credentials(ListCredentialsRequest {
            tile_id: TILE.into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .credentials;
    let pending = listed
        .iter()
        .find(|v| v.stage == CredentialStage::Pending as i32)
        .context("the generated version")?;
    let service_ring = Keyring::from_keys(service_keys.clone())?;
    let generated = stored_password(&stack, &service_ring, pending.version).await?;
    assert!(generated.len() >= 32, "a generated password");
    accept(&[(USER, SECOND), (USER, generated.as_str())]);
    cli.ok(&rotate, None).await?;
    cli.ok(&["-v", "creds", "status", TILE, "--watch"], None).await?;
    cli.ok(&["creds", "confirm-retired", TILE], None).await?;
    let third = newest_rotation(&mut c).await?;
    until_state(&c, &third.id, RotationState::Completed).await?;
    accept(&[(USER, generated.as_str()), (USER, REJECTED)]);

    // One the partner rejects in one region: the rotation fails, its
    // status printed.
    cli.ok(
        &["creds", "submit", TILE, "--user", USER],
        Some(REJECTED.as_bytes()),
    )
    .await?;
    cli.ok(&rotate, None).await?;
    let watched = cli.run(&["creds", "status", TILE, "--watch"], None).await?;
    assert_eq!(watched.status.code(), Some(3), "{watched:?}");
    let failed = newest_rotation(&mut c).await?;
    assert_eq!(failed.state, RotationState::Failed as i32, "{failed:?}");
    cli.ok(&["creds", "status", TILE, "-o", "json"], None).await?;

    // Refused calls, their errors printed.
    let e = cli
        .refused(
            &["creds", "submit", TILE, "--user", USER],
            Some(format!("{REJECTED}\n").as_bytes()),
        )
        .await?;
    assert!(
        e.contains("fingerprint is that of v4"),
        "the same secret twice: {e}"
    );
    cli.refused(&["creds", "submit", TILE], Some(NO_USER.as_bytes()))
        .await?;
    cli.refused(
        &["creds", "submit", TILE, "--user", USER],
        Some(format!("{CONTROL}\u{7}tail\n").as_bytes()),
    )
    .await?;
    let oversized = format!("{OVERSIZED_PREFIX}{}", "x".repeat(5000));
    cli.refused(
        &["creds", "submit", TILE, "--user", USER],
        Some(oversized.as_bytes()),
    )
    .await?;
    cli.refused(
        &["-vv", "creds", "submit", "no-such-tile", "--user", USER],
        Some(UNKNOWN_TILE.as_bytes()),
    )
    .await?;
    cli.refused(&["creds", "confirm-retired", TILE], None).await?;
    cli.refused(&["creds", "submit", TILE, "--user", USER], Some(b""))
        .await?;

    // The service's KEK rotation: a new primary beside the old key.
    let k2 = Kek::generate("k2")?;
    let both = format!(
        "{}\n{}",
        k2.to_text().as_str(),
        service_keys[0].to_text().as_str()
    );
    std::fs::write(stack.dir.path().join("kek"), both)?;
    stack.credentials.terminate(GRACE).await?;
    stack.credentials.restart().await?;
    let dry = cli.ok(&["creds", "rewrap", "--dry-run"], None).await?;
    assert!(dry.contains("k2"), "{dry}");
    cli.ok(&["creds", "rewrap"], None).await?;
    cli.ok(&["creds", "list", TILE, "-o", "yaml"], None).await?;

    // The agents' KEK rotation: re-wrapped at restart, still verifying.
    let a2 = Kek::generate("agent-2")?;
    let old_agent_key = agent_ring.get("agent-1").context("agent-1")?.clone();
    std::fs::write(
        &agent_kek_file,
        format!("{}\n{}", a2.to_text().as_str(), old_agent_key.to_text().as_str()),
    )?;
    for region in REGIONS {
        let p = agents.procs.get_mut(region).context("agent")?;
        p.terminate(GRACE).await?;
        p.restart().await?;
        let r = agents
            .client(region)
            .await?
            .verify_credential(VerifyCredentialRequest {
                tile_id: TILE.into(),
                fingerprint: String::new(),
            })
            .await?
            .into_inner();
        assert!(r.ok, "{region}: {:?}", r.probe);
    }

    // Stop every process so that it flushes its last spans, then wait for
    // the spans of every service and of the CLI.
    for p in agents.procs.values_mut() {
        p.terminate(GRACE).await?;
    }
    stack.credentials.terminate(GRACE).await?;
    stack.registry.terminate(GRACE).await?;
    let services = [
        "tilewave",
        "tilewave-credentials",
        "tilewave-agent",
        "tilewave-registry",
    ];
    let spans = receiver
        .wait_for_spans(
            |s| {
                let seen: BTreeSet<&str> = s.iter().map(|x| x.service_name.as_str()).collect();
                services.iter().all(|n| seen.contains(n))
                    && s.iter().any(|x| x.name.ends_with("/SubmitCredential"))
                    && s.iter().any(|x| x.name.ends_with("/InstallCredential"))
                    && s.iter().any(|x| x.name.ends_with("/VerifyCredential"))
                    && s.iter().any(|x| x.name.ends_with("/Rewrap"))
            },
            WAIT,
        )
        .await
        .map_err(|got| {
            let names: BTreeSet<_> = got.iter().map(|s| (&s.service_name, &s.name)).collect();
            anyhow::anyhow!("spans so far: {names:#?}")
        })?;

    // The scan.
    let mut secrets = Secrets::new();
    for (label, password) in [
        ("the first credential", FIRST),
        ("the second credential", SECOND),
        ("the generated credential", generated.as_str()),
        ("the rejected credential", REJECTED),
        ("the refused control-character secret", CONTROL),
        ("the secret for an unknown tile", UNKNOWN_TILE),
    ] {
        secrets.basic(label, USER, password);
    }
    secrets.plain("the secret without a user", NO_USER);
    secrets.plain("the oversized secret", &oversized);
    for k in service_keys.iter().chain([&k2, &old_agent_key, &a2]) {
        secrets.plain(&format!("key-encryption key {}", k.id()), &key_text(k));
    }
    // The forms match the secrets as they were handed in: a scan of what
    // was piped into the CLI finds every one of them.
    let mut control = Scan::new(&secrets);
    for (i, input) in cli.inputs.iter().enumerate() {
        control.bytes(format_args!("CLI input {i}"), input);
    }
    let found: BTreeSet<String> = control.leaks().iter().map(|l| l.secret.clone()).collect();
    for label in [
        "the first credential (password)",
        "the second credential (user:password)",
        "the rejected credential (password)",
        "the refused control-character secret (password)",
        "the secret for an unknown tile (password)",
        "the secret without a user (plaintext)",
        "the oversized secret (first 10 characters of the plaintext)",
    ] {
        assert!(
            found.contains(label),
            "{label} not found in the inputs: {found:#?}"
        );
    }

    let mut scan = Scan::new(&secrets);
    let logs = scan.log_files(&stack.dir)?;
    let names: BTreeSet<String> = logs
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    for expected in ["registry.log", "credentials.log", "agent-aws-us-east-1.log"] {
        assert!(names.contains(expected), "{expected} not among {names:?}");
    }
    for i in 0..stack.etcd.len() {
        if let Some(log) = stack.etcd.member_log(i) {
            scan.file(&log)?;
        }
    }
    for s in &spans {
        scan.text(
            format_args!("span {:?} of {} ({})", s.name, s.service_name, s.span_id),
            &span_text(s),
        );
    }
    for (name, out) in &cli.runs {
        scan.output(name, out);
    }
    let dump = stack.etcd.dump("").await?;
    assert!(
        dump.keys().any(|k| k.contains("/secrets/")),
        "the whole keyspace: {:?}",
        dump.keys()
    );
    scan.etcd(&dump);
    // The agents' catalogs: the snapshot and the change log beside it (the
    // credentials installed since the last compaction are only there).
    let mut logs_scanned = 0;
    for region in REGIONS {
        let dir = stack
            .dir
            .path()
            .join(format!("agent-{}", region.replace(':', "-")));
        scan.file(&dir.join("catalog.pb"))?;
        let log = dir.join("catalog.log");
        if log.exists() {
            scan.file(&log)?;
            logs_scanned += 1;
        }
    }
    assert!(logs_scanned > 0, "no agent's catalog.log was scanned");
    let with_events = spans.iter().filter(|s| !s.events.is_empty()).count();
    match scan.finish() {
        Ok(scanned) => {
            assert!(with_events > 0, "no span carried an event");
            eprintln!(
                "secret scan: {} forms of the secrets in {} places ({} bytes): {} log files, {} spans ({} with events), {} CLI runs, {} etcd keys",
                secrets.len(),
                scanned.places,
                scanned.bytes,
                logs.len(),
                spans.len(),
                with_events,
                cli.runs.len(),
                dump.len()
            );
        }
        Err(leaks) => panic!("{leaks}"),
    }
    Ok(())
}

#[test]
fn a_spans_name_attributes_status_and_events_are_scanned() {
    use std::collections::HashMap;
    use tilewave_telemetry::receiver::{Kind, SpanEvent, StatusCode};
    let span = |name: &str, attr: &str, status: &str, event_attr: &str| ReceivedSpan {
        service_name: "tilewave-agent".into(),
        trace_id: "0".repeat(32),
        span_id: "1".repeat(16),
        parent_span_id: String::new(),
        name: name.into(),
        kind: Kind::Server,
        attributes: HashMap::from([("tile_id".to_owned(), Value::Str(attr.into()))]),
        status: StatusCode::Error,
        status_message: status.into(),
        links: Vec::new(),
        events: vec![SpanEvent {
            name: "calling the partner".into(),
            attributes: HashMap::from([("detail".to_owned(), Value::Str(event_attr.into()))]),
        }],
        start_unix_nanos: 0,
        end_unix_nanos: 0,
    };
    let mut secrets = Secrets::new();
    secrets.basic("planted", USER, FIRST);
    let header = tilewave_testkit::secret_scan::basic_header(USER, FIRST);
    let cases = [
        (span(FIRST, "riverflow", "", ""), "planted (password)"),
        (
            span("probe", &format!("{USER}:{FIRST}"), "", ""),
            "planted (user:password)",
        ),
        (
            span("probe", "riverflow", &header, ""),
            "planted (base64 of user:password)",
        ),
        (span("probe", "riverflow", "", FIRST), "planted (password)"),
    ];
    for (s, expected) in cases {
        let mut scan = Scan::new(&secrets);
        scan.text("span", &span_text(&s));
        let leaks = scan.finish().expect_err("the planted secret was not found").0;
        assert!(
            leaks.iter().any(|l| l.secret == expected),
            "{expected}: {leaks:?}"
        );
    }
    let mut clean = Scan::new(&secrets);
    clean.text("span", &span_text(&span("probe", "riverflow", "ok", "200")));
    assert!(clean.finish().is_ok());
}
