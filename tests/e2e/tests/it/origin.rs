//! Long-running work keeps its origin across processes: process A schedules
//! a durable timer inside a request span (the store stores the span's
//! context with it); process B, another replica, later fires it in the
//! store's timer loop, in a `timer.fire` span that links back to A's request
//! span, with its etcd operation as a child; both audit records carry A's
//! trace id.

use tokio::time::Instant;

use anyhow::{Context as _, Result, ensure};
use tilewave_telemetry::receiver::{Kind, Receiver};
use tilewave_testkit::EtcdCluster;
use tokio::net::TcpListener;

use crate::{PREFIX, SPAN_WAIT, line_after, otel_env, store, tls_env};

const TIMER: &str = "e2e-origin-timer";

async fn probe(receiver: &Receiver, etcd: &str, service: &str, mode: &str) -> Result<String> {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_e2e-origin-probe"))
        .args(["--etcd", etcd, "--prefix", PREFIX, "--timer", TIMER, mode])
        .envs(otel_env(receiver))
        .envs(tls_env("registry")?)
        .env("OTEL_SERVICE_NAME", service)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .output()
        .await
        .context("running e2e-origin-probe")?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    ensure!(
        output.status.success(),
        "{mode} failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(stdout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_resumed_by_another_process_links_back_to_the_request_that_started_it() -> Result<()> {
    let started = Instant::now();
    let receiver = Receiver::start(TcpListener::bind("127.0.0.1:0").await?)?;
    let etcd = EtcdCluster::start(1).await?;
    let endpoint = etcd.endpoints().join(",");

    let scheduled = probe(&receiver, &endpoint, "probe-a", "schedule").await?;
    let traceparent = line_after(&scheduled, "ORIGIN")?.to_owned();
    let parts: Vec<&str> = traceparent.split('-').collect();
    ensure!(parts.len() == 4, "traceparent {traceparent:?}");
    let (origin_trace, origin_span) = (parts[1].to_owned(), parts[2].to_owned());
    let fired = probe(&receiver, &endpoint, "probe-b", "fire").await?;
    assert_eq!(line_after(&fired, "FIRED")?, TIMER);

    let spans = receiver
        .wait_for_spans(
            |s| {
                s.iter().any(|s| s.name == "e2e.request")
                    && s.iter().any(|s| s.name == "timer.fire")
                    && s.iter().filter(|s| s.name == "etcd.txn").count() >= 2
            },
            SPAN_WAIT,
        )
        .await
        .map_err(|got| anyhow::anyhow!("spans so far: {got:#?}"))?;

    // A: the request span the origin names, with the scheduling commit
    // under it.
    let request = spans.iter().find(|s| s.name == "e2e.request").unwrap();
    assert_eq!(request.service_name, "probe-a");
    assert_eq!(
        (&request.trace_id, &request.span_id),
        (&origin_trace, &origin_span)
    );
    let schedule_txn = spans
        .iter()
        .find(|s| s.name == "etcd.txn" && s.is_child_of(request))
        .expect("the scheduling commit under the request");
    assert!(
        schedule_txn
            .attr_str("db.etcd.key")
            .unwrap_or_default()
            .starts_with(&tilewave_store::Keys::new(PREFIX)?.timers_of("e2e")?)
    );

    // B: the step is its own root, in B, linked (not parented) to A's
    // request; the firing commit is its child.
    let steps: Vec<_> = spans.iter().filter(|s| s.name == "timer.fire").collect();
    assert_eq!(steps.len(), 1, "{steps:#?}");
    let step = steps[0];
    assert_eq!(step.service_name, "probe-b");
    assert!(step.is_root());
    assert_eq!(step.kind, Kind::Internal);
    assert_ne!(step.trace_id, origin_trace);
    assert!(step.links_to(&origin_trace, &origin_span), "{step:#?}");
    let fire_txn = spans
        .iter()
        .find(|s| s.name == "etcd.txn" && s.is_child_of(step))
        .expect("the firing commit under the step");
    assert_eq!(fire_txn.service_name, "probe-b");

    // Both audit records name the origin's trace.
    let audit = store(&etcd).await?.audit_records().await?;
    for action in ["ScheduleE2eTimer", "FireTimer"] {
        let record = audit
            .iter()
            .find(|r| r.action == action)
            .with_context(|| format!("no {action} audit record"))?;
        assert_eq!(record.trace_id, origin_trace, "{action}");
    }
    eprintln!("origin test took {:?}", started.elapsed());
    Ok(())
}
