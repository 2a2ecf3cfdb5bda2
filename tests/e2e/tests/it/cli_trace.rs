//! A release engineer's commands, traced end to end: each `tilewave`
//! command is one trace (the id the CLI prints) running from the CLI's root
//! span through its client span, the registry's server span and handler,
//! down to the etcd operations, with an error status on a refused call; the
//! audit records carry the trace ids; `/metrics` moved by exactly the calls
//! made.

use std::net::SocketAddr;
use tokio::time::Instant;

use anyhow::Result;
use tilewave_telemetry::receiver::{Kind, ReceivedSpan, Receiver};
use tilewave_testkit::{EtcdCluster, ServiceProcess, ServiceSpec, TestDir, bin_path, free_port};
use tokio::net::TcpListener;

use crate::{Cli, PREFIX, SPAN_WAIT, ancestors, audited, otel_env, sample, scrape};

const REGISTRY: &str = "tilewave.registry.v1.RegistryService";

/// The spans of one trace, with lookups that fail loudly.
struct Trace<'a> {
    what: &'a str,
    spans: Vec<ReceivedSpan>,
}

impl<'a> Trace<'a> {
    fn new(what: &'a str, all: &[ReceivedSpan], trace_id: &str) -> Self {
        Trace {
            what,
            spans: all.iter().filter(|s| s.trace_id == trace_id).cloned().collect(),
        }
    }

    fn one(&self, name: &str, kind: Kind) -> &ReceivedSpan {
        let found: Vec<&ReceivedSpan> = self
            .spans
            .iter()
            .filter(|s| s.name == name && s.kind == kind)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "{}: want one {kind:?} span {name}, got {found:#?}",
            self.what
        );
        found[0]
    }

    fn children(&self, parent: &ReceivedSpan, name: &str) -> Vec<&ReceivedSpan> {
        self.spans
            .iter()
            .filter(|s| s.name == name && s.is_child_of(parent))
            .collect()
    }

    /// One tree: a single root, the CLI's, and every other span's parent is
    /// in the trace.
    fn assert_one_tree(&self) -> &ReceivedSpan {
        let roots: Vec<&ReceivedSpan> = self.spans.iter().filter(|s| s.is_root()).collect();
        assert_eq!(
            roots.len(),
            1,
            "{}: one root wanted: {:#?}",
            self.what,
            self.spans
        );
        let root = roots[0];
        assert_eq!(
            (root.name.as_str(), root.service_name.as_str()),
            ("tilewave", "tilewave")
        );
        for span in &self.spans {
            if !span.is_root() {
                assert!(
                    self.spans.iter().any(|p| p.span_id == span.parent_span_id),
                    "{}: {} has a parent outside the trace",
                    self.what,
                    span.name
                );
            }
        }
        root
    }

    /// The client span of `method` under the CLI root, the registry's server
    /// span as its child, and the handler span as the server span's child.
    fn rpc(&self, method: &str, handler: &str) -> (&ReceivedSpan, &ReceivedSpan, &ReceivedSpan) {
        let name = format!("{REGISTRY}/{method}");
        let client = self.one(&name, Kind::Client);
        let server = self.one(&name, Kind::Server);
        assert_eq!(client.service_name, "tilewave", "{}", self.what);
        assert_eq!(server.service_name, "tilewave-registry", "{}", self.what);
        assert!(
            ancestors(&self.spans, client).iter().any(|a| a.is_root()),
            "{}: the client span descends from the CLI root",
            self.what
        );
        assert!(
            server.is_child_of(client),
            "{}: server {server:#?} under client {client:#?}",
            self.what
        );
        for span in [client, server] {
            assert_eq!(span.attr_str("rpc.system"), Some("grpc"));
            assert_eq!(span.attr_str("rpc.method"), Some(method));
        }
        let handlers = self.children(server, handler);
        assert_eq!(
            handlers.len(),
            1,
            "{}: handler {handler} under the server span",
            self.what
        );
        (client, server, handlers[0])
    }

    /// The etcd spans named `name` directly under `parent`, checked for the
    /// database attributes.
    fn etcd(&self, parent: &ReceivedSpan, name: &str) -> Vec<&ReceivedSpan> {
        let spans = self.children(parent, name);
        for span in &spans {
            assert_eq!(span.kind, Kind::Client);
            assert_eq!(span.service_name, "tilewave-registry");
            assert_eq!(span.attr_str("db.system"), Some("etcd"));
            assert_eq!(span.attr_str("db.operation"), name.strip_prefix("etcd."));
            let key = span.attr_str("db.etcd.key").unwrap_or_default();
            assert!(key.starts_with(PREFIX), "{}: {name} key {key:?}", self.what);
            assert!(!span.is_error(), "{}: {span:#?}", self.what);
        }
        spans
    }
}

fn rpc_count(metrics: &str, method: &str, code: &str) -> f64 {
    sample(
        metrics,
        &format!(r#"tilewave_rpc_requests_total{{service="{REGISTRY}",method="{method}",code="{code}"}}"#),
    )
}

fn etcd_count(metrics: &str, op: &str) -> f64 {
    sample(
        metrics,
        &format!(r#"tilewave_etcd_op_duration_seconds_count{{op="{op}"}}"#),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_cli_command_is_one_trace_through_the_registry_into_etcd() -> Result<()> {
    let started = Instant::now();
    let receiver = Receiver::start(TcpListener::bind("127.0.0.1:0").await?)?;
    let dir = TestDir::new("e2e-trace")?;
    let etcd = EtcdCluster::start(1).await?;
    let metrics_addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let mut spec = ServiceSpec::new("registry", bin_path("tilewave-registry")?).with_args([
        "--etcd",
        &etcd.endpoints().join(","),
        "--prefix",
        PREFIX,
        "--metrics-listen",
        &metrics_addr.to_string(),
    ]);
    for (key, value) in otel_env(&receiver) {
        spec = spec.with_env(key, value);
    }
    let registry = ServiceProcess::start(spec, dir.path()).await?;
    let cli = Cli {
        binary: bin_path("tilewave")?,
        registry: registry.endpoint(),
        env: otel_env(&receiver),
        config: dir.path().join("no-such-config.toml"),
    };

    let before = scrape(metrics_addr).await?;
    let (import, workspace) = cli.import_riverflow().await?;
    let signoff = cli
        .run(&["tile", "signoff", "riverflow", "--role", "product"])
        .await?
        .ok()?;
    // A stale etag: the registry refuses with ABORTED, nothing is written.
    let refused = cli
        .run(&[
            "tile",
            "signoff",
            "riverflow",
            "--role",
            "engineering",
            "--revision",
            "1",
            "--etag",
            "1",
        ])
        .await?;
    assert!(!refused.success, "a stale etag is refused: {refused:?}");
    let after = scrape(metrics_addr).await?;

    // /metrics moved by exactly the calls made (set-test-workspace and the
    // first sign-off start from the replica's tile cache; the refused one
    // names an etag the cache does not hold, so it reads etcd).
    for (method, code, calls) in [
        ("ImportPartnerConfig", "OK", 1.0),
        ("GetTile", "OK", 2.0),
        ("SetTestWorkspace", "OK", 1.0),
        ("RecordSignOff", "OK", 1.0),
        ("RecordSignOff", "ABORTED", 1.0),
    ] {
        assert_eq!(
            rpc_count(&after, method, code) - rpc_count(&before, method, code),
            calls,
            "{method} {code}"
        );
    }
    let duration_count = |m: &str| {
        sample(
            m,
            &format!(r#"tilewave_rpc_duration_seconds_count{{service="{REGISTRY}",method="RecordSignOff"}}"#),
        )
    };
    assert_eq!(duration_count(&after) - duration_count(&before), 2.0);
    // Three commits (import, workspace, sign-off); the refused call read and
    // stopped before writing.
    assert_eq!(etcd_count(&after, "txn") - etcd_count(&before, "txn"), 3.0);
    assert!(etcd_count(&after, "get") - etcd_count(&before, "get") >= 1.0);

    // Every span of the four traces arrived.
    let wanted: [(&str, &[&str]); 4] = [
        (&import.trace_id, &["import_partner_config", "etcd.txn"]),
        (&workspace.trace_id, &["set_test_workspace", "etcd.txn"]),
        (&signoff.trace_id, &["record_sign_off", "etcd.txn"]),
        (&refused.trace_id, &["record_sign_off", "etcd.get"]),
    ];
    let spans = receiver
        .wait_for_spans(
            |spans| {
                wanted.iter().all(|(trace, names)| {
                    names
                        .iter()
                        .chain(&["tilewave"])
                        .all(|n| spans.iter().any(|s| s.trace_id == *trace && s.name == *n))
                })
            },
            SPAN_WAIT,
        )
        .await
        .map_err(|got| anyhow::anyhow!("spans so far: {got:#?}"))?;
    let ids: std::collections::BTreeSet<&str> = wanted.iter().map(|(t, _)| *t).collect();
    assert_eq!(ids.len(), 4, "each command is its own trace");

    // import: CLI -> client -> server -> handler -> etcd.txn.
    let t = Trace::new("import", &spans, &import.trace_id);
    t.assert_one_tree();
    let (client, server, handler) = t.rpc("ImportPartnerConfig", "import_partner_config");
    assert_eq!(server.attr_i64("rpc.grpc.status_code"), Some(0));
    assert!(!client.is_error() && !server.is_error());
    let txns = t.etcd(handler, "etcd.txn");
    assert_eq!(txns.len(), 1, "one commit: {:#?}", t.spans);
    assert!(
        txns[0]
            .attr_str("db.etcd.key")
            .unwrap_or_default()
            .contains(&tilewave_store::Keys::new(PREFIX)?.tile("riverflow"))
    );
    assert!(
        txns[0].start_unix_nanos >= server.start_unix_nanos
            && txns[0].end_unix_nanos <= server.end_unix_nanos
    );

    // set-test-workspace: a read, then the write, each its own RPC; the
    // write starts from the replica's tile cache (no read of etcd).
    let t = Trace::new("set-test-workspace", &spans, &workspace.trace_id);
    t.assert_one_tree();
    t.rpc("GetTile", "get_tile");
    let (_, _, handler) = t.rpc("SetTestWorkspace", "set_test_workspace");
    assert!(t.etcd(handler, "etcd.get").is_empty());
    assert_eq!(t.etcd(handler, "etcd.txn").len(), 1);

    // signoff.
    let t = Trace::new("signoff", &spans, &signoff.trace_id);
    t.assert_one_tree();
    t.rpc("GetTile", "get_tile");
    let (_, _, handler) = t.rpc("RecordSignOff", "record_sign_off");
    assert!(t.etcd(handler, "etcd.get").is_empty());
    assert_eq!(t.etcd(handler, "etcd.txn").len(), 1);

    // The refused call: error status and ABORTED (10) on both ends, no write.
    let t = Trace::new("refused signoff", &spans, &refused.trace_id);
    t.assert_one_tree();
    let (client, server, handler) = t.rpc("RecordSignOff", "record_sign_off");
    for span in [client, server] {
        assert!(span.is_error(), "{span:#?}");
        assert_eq!(span.attr_i64("rpc.grpc.status_code"), Some(10), "{span:#?}");
        assert!(
            span.status_message.contains("changed since it was read"),
            "{span:#?}"
        );
    }
    assert_eq!(t.etcd(handler, "etcd.get").len(), 1);
    assert!(t.etcd(handler, "etcd.txn").is_empty());

    // The audit records carry the trace ids of the commands that made them.
    for (action, trace) in [
        ("ImportPartnerConfig", &import.trace_id),
        ("SetTestWorkspace", &workspace.trace_id),
        ("RecordSignOff", &signoff.trace_id),
    ] {
        let records = audited(&etcd, action).await?;
        assert_eq!(records.len(), 1, "{action}: {records:#?}");
        assert_eq!(&records[0].trace_id, trace, "{action}");
        // The certificate identity, not the name the CLI claims.
        assert_eq!(records[0].actor, tilewave_testkit::pki::RELEASE_ENGINEER);
    }
    eprintln!("trace test took {:?}", started.elapsed());
    Ok(())
}
