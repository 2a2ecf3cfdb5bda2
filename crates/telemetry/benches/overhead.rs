//! What the tracing layers cost a unary gRPC call over loopback when no
//! `OTEL_*` variable is set (a service's default: no exporter, but spans,
//! W3C propagation, RPC metrics and JSON logs at info), against the same
//! call with no layers at all.
//!
//! - `layers_in_memory/*`: the layers' own CPU per RPC (client layer around
//!   server layer around a service that answers at once), no network.
//! - `unary_health_check/*`: a tonic-health `Check` over loopback on one
//!   current-thread runtime (client and servers on one thread), `plain` vs
//!   `layers_no_otel_env`, plus the two halves (layers without subscriber,
//!   subscriber without layers) and `plain_again`, a second plain end.
//! - After criterion, the loopback variants interleaved in rounds; each
//!   round's time over the same round's `plain` is the figure to quote, as
//!   load from other processes hits every variant alike, and `plain_again`
//!   (two ends that differ in nothing) shows the noise.
//! - `OVERHEAD_CALLS=<variant>:<n>` skips all of that and makes only `n`
//!   calls of one loopback variant, for profilers and `/usr/bin/time`.

use std::net::SocketAddr;

use anyhow::Result;
use std::hint::black_box;

use criterion::Criterion;
use tilewave_telemetry::{
    ClientLayer, Config, Metrics, Pipeline, ServerLayer, TracedChannel, server_layer, traced_channel,
};
use tilewave_testkit::ratios::{Variant, interleaved};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tonic::transport::{Channel, Server};
use tonic_health::ServingStatus;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tower::{Service as _, ServiceExt as _};
use tracing::Instrument as _;

const SERVICE: &str = "tilewave.bench.v1.Bench";

struct Ends {
    plain: HealthClient<Channel>,
    /// Another plain server and connection: the A/A control, so that the
    /// noise between two identical ends is measured in the same run.
    plain_again: HealthClient<Channel>,
    traced: HealthClient<TracedChannel>,
}

async fn serve(traced: bool) -> Result<SocketAddr> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_service_status(SERVICE, ServingStatus::Serving).await;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    if traced {
        tokio::spawn(
            Server::builder()
                .layer(server_layer())
                .add_service(health)
                .serve_with_incoming(incoming),
        );
    } else {
        tokio::spawn(
            Server::builder()
                .add_service(health)
                .serve_with_incoming(incoming),
        );
    }
    Ok(addr)
}

async fn connect(addr: SocketAddr) -> Result<Channel> {
    Ok(Channel::from_shared(format!("http://{addr}"))?.connect().await?)
}

fn setup(rt: &Runtime) -> Result<Ends> {
    rt.block_on(async {
        let plain_addr = serve(false).await?;
        let again_addr = serve(false).await?;
        let traced_addr = serve(true).await?;
        let mut ends = Ends {
            plain: HealthClient::new(connect(plain_addr).await?),
            plain_again: HealthClient::new(connect(again_addr).await?),
            traced: HealthClient::new(traced_channel(connect(traced_addr).await?)),
        };
        // Every end answers before anything is timed.
        ends.plain.check(request()).await?;
        ends.plain_again.check(request()).await?;
        ends.traced.check(request()).await?;
        Ok(ends)
    })
}

fn request() -> HealthCheckRequest {
    HealthCheckRequest {
        service: SERVICE.to_owned(),
    }
}

/// Which end a variant calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Plain,
    PlainAgain,
    Traced,
}

/// One health check through an end; through the traced one inside a
/// request span, as a handler calling another service would be.
async fn call(ends: &Ends, end: End) -> bool {
    match end {
        End::Traced => {
            let mut client = ends.traced.clone();
            async move { client.check(request()).await.is_ok() }
                .instrument(tracing::info_span!("bench.request"))
                .await
        }
        End::Plain => ends.plain.clone().check(request()).await.is_ok(),
        End::PlainAgain => ends.plain_again.clone().check(request()).await.is_ok(),
    }
}

/// The subscriber a service runs with when no `OTEL_*` variable is set:
/// OpenTelemetry spans without an exporter, JSON logs at info.
fn service_default() -> impl tracing::Subscriber + Send + Sync + 'static {
    let config = Config::from_lookup("bench", |_| None);
    let pipeline = match Pipeline::new(&config) {
        Ok(p) => p,
        Err(error) => panic!("pipeline: {error}"),
    };
    assert!(!pipeline.exports(), "no OTEL variables, no exporter");
    match pipeline.full_subscriber(&config) {
        Ok(s) => s,
        Err(error) => panic!("subscriber: {error}"),
    }
}

/// The variants, in the order they are measured.
const VARIANTS: [(&str, End, bool); 5] = [
    // (name, the end called, with the service's default subscriber)
    ("plain", End::Plain, false),
    ("plain_again", End::PlainAgain, false),
    ("layers_no_subscriber", End::Traced, false),
    ("plain_with_subscriber", End::Plain, true),
    ("layers_no_otel_env", End::Traced, true),
];

fn loopback(c: &mut Criterion, rt: &Runtime, ends: &Ends) {
    let mut group = c.benchmark_group("unary_health_check");
    for (name, end, subscribed) in VARIANTS {
        let run = |group: &mut criterion::BenchmarkGroup<'_, _>| {
            group.bench_function(name, |b| b.iter(|| black_box(rt.block_on(call(ends, end)))));
        };
        if subscribed {
            tracing::subscriber::with_default(service_default(), || run(&mut group));
        } else {
            run(&mut group);
        }
    }
    group.finish();
}

/// The loopback variants as [`Variant`]s for [`interleaved`], each
/// making its calls under its subscriber.
fn interleaved_variants<'a>(
    rt: &'a Runtime,
    ends: &'a Ends,
    subscriber: &'a tracing::Dispatch,
) -> Vec<Variant<'a>> {
    VARIANTS
        .into_iter()
        .map(|(name, end, subscribed)| {
            Variant::new(name, move |n| {
                let block = || {
                    rt.block_on(async {
                        let start = tokio::time::Instant::now();
                        for _ in 0..n {
                            black_box(call(ends, end).await);
                        }
                        start.elapsed()
                    })
                };
                if subscribed {
                    tracing::dispatcher::with_default(subscriber, block)
                } else {
                    block()
                }
            })
        })
        .collect()
}

/// The layers' own cost per RPC, without a network: a client layer around a
/// server layer around a service that answers at once (trailers-only OK),
/// under no subscriber, the spans' context alone (no logs), and a service's
/// default subscriber (context without exporter + JSON logs at info).
fn in_memory(c: &mut Criterion) {
    let answer = tower::service_fn(|_request: http::Request<String>| async {
        let mut response = http::Response::new(String::new());
        response
            .headers_mut()
            .insert("grpc-status", http::HeaderValue::from_static("0"));
        Ok::<_, std::convert::Infallible>(response)
    });
    let stack = tower::ServiceBuilder::new()
        .layer(ClientLayer)
        .layer(ServerLayer::with_metrics(Metrics::new()))
        .service(answer);
    let one_call = move || {
        let mut stack = stack.clone();
        let mut request = http::Request::new(String::new());
        *request.uri_mut() = http::Uri::from_static("/grpc.health.v1.Health/Check");
        futures::executor::block_on(async move {
            let ready = stack.ready().await?;
            ready
                .call(request)
                .instrument(tracing::info_span!("bench.request"))
                .await
        })
        .is_ok()
    };
    let config = Config::from_lookup("bench", |_| None);
    let pipeline = match Pipeline::new(&config) {
        Ok(p) => p,
        Err(error) => panic!("pipeline: {error}"),
    };
    let full = match pipeline.full_subscriber(&config) {
        Ok(s) => s,
        Err(error) => panic!("subscriber: {error}"),
    };

    let mut group = c.benchmark_group("layers_in_memory");
    group.bench_function("no_subscriber", |b| b.iter(|| black_box(one_call())));
    tracing::subscriber::with_default(pipeline.subscriber(), || {
        group.bench_function("context_only", |b| b.iter(|| black_box(one_call())));
    });
    tracing::subscriber::with_default(full, || {
        group.bench_function("service_default", |b| b.iter(|| black_box(one_call())));
    });
    group.finish();
}

fn main() {
    // One thread for client and servers: a call's latency is the work on
    // its path, and a thread-local subscriber covers all of it.
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(error) => panic!("building the runtime: {error}"),
    };
    let ends = match setup(&rt) {
        Ok(ends) => ends,
        Err(error) => panic!("starting the servers: {error:#}"),
    };
    // `OVERHEAD_CALLS=<variant>:<n>`: only `n` calls of one loopback
    // variant, for counting (`perf stat -e instructions:u,cycles:u`).
    if let Some((name, n)) = std::env::var("OVERHEAD_CALLS").ok().and_then(|v| {
        v.split_once(':')
            .map(|(a, b)| (a.to_owned(), b.parse::<u32>().ok()))
    }) && let Some((_, end, subscribed)) = VARIANTS.into_iter().find(|(v, _, _)| *v == name)
    {
        let n = n.unwrap_or(10_000);
        let subscriber = tracing::Dispatch::new(service_default());
        let run = || {
            rt.block_on(async {
                for _ in 0..n {
                    black_box(call(&ends, end).await);
                }
            });
        };
        if subscribed {
            tracing::dispatcher::with_default(&subscriber, run);
        } else {
            run();
        }
        return;
    }
    let mut criterion = Criterion::default().configure_from_args();
    in_memory(&mut criterion);
    loopback(&mut criterion, &rt, &ends);
    criterion.final_summary();

    // Each round's time of a variant over the same round's `plain`: the
    // ratio to quote is the median; `plain_again` (an identical second
    // end) shows how far two ends that differ in nothing spread.
    let subscriber = tracing::Dispatch::new(service_default());
    // One traced call with the subscriber as the default first. tracing
    // caches each callsite's interest when the callsite is first hit; while
    // a single dispatcher is registered it asks the thread's *current*
    // default, so a span first created during `layers_no_subscriber` would
    // be cached as "never" and stay disabled in `layers_no_otel_env` until
    // some later `Dispatch::new` rebuilds the cache. That made a fresh run
    // measure the layers without their spans (the "1.1x fresh, 1.6x after
    // a few thousand calls" of earlier notes).
    tracing::dispatcher::with_default(&subscriber, || black_box(rt.block_on(call(&ends, End::Traced))));
    for summary in interleaved(&mut interleaved_variants(&rt, &ends, &subscriber), 101, 100) {
        println!("interleaved {summary}");
    }
}
