//! With no `OTEL_*` variable set, nothing is exported, yet trace context
//! still flows: a receiver listens where an OTLP exporter built with its
//! defaults would send (127.0.0.1:4317), the CLI and the registry run with
//! every `OTEL_*` variable removed, and after both have exited (each
//! flushes its spans on the way out) the receiver has seen no span at all;
//! the audit records still carry the trace ids the CLI printed.

use anyhow::{Context as _, Result};
use tilewave_telemetry::receiver::Receiver;
use tilewave_testkit::{EtcdCluster, ServiceProcess, ServiceSpec, TestDir, bin_path};
use tokio::net::TcpListener;

use crate::{Cli, PREFIX, audited};

/// Where OTLP/gRPC goes when no endpoint is configured (the specification's
/// default, `http://localhost:4317`).
const OTLP_DEFAULT: &str = "127.0.0.1:4317";

/// The variables telemetry reads, removed even when the test's own
/// environment does not have them.
const OTEL_VARIABLES: [&str; 5] = [
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_SERVICE_NAME",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_otel_variables_nothing_is_exported_and_trace_ids_still_flow() -> Result<()> {
    let listener = TcpListener::bind(OTLP_DEFAULT).await.with_context(|| {
        format!(
            "binding {OTLP_DEFAULT}, where a default OTLP exporter would send: is a collector running here?"
        )
    })?;
    let receiver = Receiver::start(listener)?;
    let dir = TestDir::new("e2e-no-export")?;
    let etcd = EtcdCluster::start(1).await?;
    let mut spec = ServiceSpec::new("registry", bin_path("tilewave-registry")?).with_args([
        "--etcd",
        &etcd.endpoints().join(","),
        "--prefix",
        PREFIX,
    ]);
    let inherited = std::env::vars()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("OTEL_"));
    for key in OTEL_VARIABLES.into_iter().map(str::to_owned).chain(inherited) {
        spec = spec.without_env(key);
    }
    let mut registry = ServiceProcess::start(spec, dir.path()).await?;
    let cli = Cli {
        binary: bin_path("tilewave")?,
        registry: registry.endpoint(),
        env: Vec::new(),
        config: dir.path().join("no-such-config.toml"),
    };

    let (import, workspace) = cli.import_riverflow().await?;
    let refused = cli.run(&["tile", "get", "no-such-tile"]).await?;
    assert!(!refused.success, "an unknown tile is refused: {refused:?}");
    assert_ne!(import.trace_id, workspace.trace_id, "one trace per command");

    // Both sides have exited, flushing whatever they had: the registry on
    // SIGTERM (within its shutdown grace), the CLI at the end of each run.
    let status = registry
        .terminate(std::time::Duration::from_secs(10))
        .await?
        .context("the registry was running")?;
    assert!(status.success(), "the registry stopped cleanly: {status:?}");
    let exported = receiver.spans();
    assert!(exported.is_empty(), "nothing was exported, yet: {exported:#?}");

    // The context still flowed from the CLI into the registry and etcd.
    for (action, trace) in [
        ("ImportPartnerConfig", &import.trace_id),
        ("SetTestWorkspace", &workspace.trace_id),
    ] {
        let traces: Vec<String> = audited(&etcd, action)
            .await?
            .into_iter()
            .map(|r| r.trace_id)
            .collect();
        assert_eq!(traces, std::slice::from_ref(trace), "{action}");
    }
    Ok(())
}
