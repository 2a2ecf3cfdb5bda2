//! A helper process for the end-to-end origin test: long-running work is
//! started by a request in one process and resumed by another.
//!
//! ```text
//! e2e-origin-probe --etcd URL --prefix P --timer ID schedule
//! e2e-origin-probe --etcd URL --prefix P --timer ID fire
//! ```
//!
//! - `schedule`: inside an `e2e.request` span, commits a durable timer due
//!   now (the store stores the span's context with it as its origin) and
//!   prints `ORIGIN <traceparent>`.
//! - `fire`: takes ownership of the timer work and runs the store's timer
//!   loop until the timer has fired, then prints `FIRED <id>`.
//!
//! Both set telemetry up like a service (`tilewave_telemetry::init`), so the
//! `OTEL_*` variables the test sets send their spans to its receiver; both
//! flush before exiting. With `TILEWAVE_TLS_CERT`, `TILEWAVE_TLS_KEY` and
//! `TILEWAVE_TLS_CA` set, etcd is reached over mutual TLS.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tilewave_proto::common::v1::{AuditRecord, Timer};
use tilewave_store::clock::to_proto_timestamp;
use tilewave_store::{
    Actor, Change, Clock, Ownership, Store, StoreConfig, SystemClock, TimerKinds, run_timer_loop,
};
use tracing::Instrument as _;

/// The work name the timer loop is owned under.
const TIMER_WORK: &str = "e2e-timers";
/// The lease TTL of that ownership.
const TTL: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
struct Args {
    etcd: String,
    prefix: String,
    timer: String,
    mode: String,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args::default();
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--etcd" => args.etcd = it.next().context("--etcd needs a value")?,
            "--prefix" => args.prefix = it.next().context("--prefix needs a value")?,
            "--timer" => args.timer = it.next().context("--timer needs a value")?,
            "schedule" | "fire" => args.mode = arg,
            other => bail!("unknown argument {other:?}"),
        }
    }
    if args.etcd.is_empty() || args.prefix.is_empty() || args.timer.is_empty() || args.mode.is_empty() {
        bail!("usage: e2e-origin-probe --etcd URL --prefix P --timer ID schedule|fire");
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let telemetry = tilewave_telemetry::init("e2e-origin-probe")?;
    let tls = tilewave_tls::TlsArgs {
        tls_cert: std::env::var_os(tilewave_tls::config::ENV_TLS_CERT).map(Into::into),
        tls_key: std::env::var_os(tilewave_tls::config::ENV_TLS_KEY).map(Into::into),
        tls_ca: std::env::var_os(tilewave_tls::config::ENV_TLS_CA).map(Into::into),
        insecure: false,
    }
    .files()?
    .map(|f| f.load())
    .transpose()?;
    let store = Store::connect(
        StoreConfig::new([args.etcd.clone()])
            .with_prefix(args.prefix.clone())
            .with_tls(tls.as_ref().map(tilewave_tls::Tls::client_config)),
    )
    .await?;
    let result = match args.mode.as_str() {
        "schedule" => schedule(&store, &args.timer).await,
        _ => fire(&store, &args.timer).await,
    };
    telemetry.shutdown().await?;
    result
}

/// Process A: a request that starts long-running work.
async fn schedule(store: &Store, id: &str) -> anyhow::Result<()> {
    let request = tracing::info_span!("e2e.request", otel.kind = "server");
    let origin = async {
        let timer = Timer {
            id: id.to_owned(),
            due: Some(to_proto_timestamp(store.clock().now())),
            kind: "e2e".to_owned(),
            ..Default::default()
        };
        let change = Change::new().schedule(store.keys(), &timer)?.audit(AuditRecord {
            action: "ScheduleE2eTimer".to_owned(),
            object_kind: "timer".to_owned(),
            object_id: id.to_owned(),
            ..Default::default()
        });
        store.commit(change, &Actor::new("e2e-probe-a")).await?;
        anyhow::Ok(tilewave_telemetry::current_origin())
    }
    .instrument(request)
    .await?;
    println!("ORIGIN {}", origin.traceparent);
    Ok(())
}

/// Process B: another replica, later, resumes the work.
async fn fire(store: &Store, id: &str) -> anyhow::Result<()> {
    let owner = Ownership::acquire(store, TIMER_WORK, "e2e-probe-b", TTL).await?;
    let (fired, mut done) = tokio::sync::mpsc::unbounded_channel::<String>();
    let handler = move |timer: tilewave_store::Versioned<Timer>| {
        let fired = fired.clone();
        async move {
            tracing::info!(timer = %timer.value.id, "firing");
            let _ = fired.send(timer.value.id);
            Ok(Change::new())
        }
    };
    let want = id.to_owned();
    let shutdown = async move {
        while let Some(got) = done.recv().await {
            if got == want {
                return;
            }
        }
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    run_timer_loop(
        store,
        clock,
        owner.token(),
        Actor::new("e2e-probe-b"),
        TimerKinds::new().on("e2e", handler),
        shutdown,
    )
    .await?;
    owner.release().await?;
    println!("FIRED {id}");
    Ok(())
}
