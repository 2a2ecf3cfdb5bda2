//! In-process tests of tilewave-telemetry: a tonic health server on port 0
//! wrapped in the server layer, a client through the client layer, spans
//! exported to the in-process OTLP receiver, metrics scraped over HTTP.
//!
//! Each test builds its own pipeline and installs it with `set_default` on a
//! current-thread runtime, so tests never share a global subscriber.

mod metrics;
mod origin;
mod rpc;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result};
use tilewave_telemetry::receiver::Receiver;
use tilewave_telemetry::{Config, Pipeline, ServerLayer, TracedChannel, traced_channel};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::{Channel, Server};
use tonic_health::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tracing::Instrument as _;

/// The service name the health server reports SERVING for.
pub const KNOWN: &str = "tilewave.test.v1.Known";

/// How long to wait for spans to arrive.
pub const SPAN_WAIT: Duration = Duration::from_secs(10);

/// The span name of a health check.
pub const CHECK: &str = "grpc.health.v1.Health/Check";

/// A receiver and a pipeline exporting to it.
pub async fn exporting_pipeline(service: &str) -> Result<(Receiver, Pipeline)> {
    let receiver = Receiver::start(TcpListener::bind("127.0.0.1:0").await?)?;
    let pipeline = pipeline_to(&receiver, service)?;
    Ok((receiver, pipeline))
}

/// A pipeline for `service` configured, as a process would be, with
/// `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at `receiver`.
pub fn pipeline_to(receiver: &Receiver, service: &str) -> Result<Pipeline> {
    let endpoint = receiver.endpoint().to_owned();
    let config = Config::from_lookup(service, |key| {
        (key == "OTEL_EXPORTER_OTLP_ENDPOINT").then(|| endpoint.clone())
    });
    let pipeline = Pipeline::new(&config)?;
    assert!(pipeline.exports());
    Ok(pipeline)
}

/// A pipeline configured from an empty environment: no exporter.
pub fn quiet_pipeline(service: &str) -> Result<Pipeline> {
    Ok(Pipeline::new(&Config::from_lookup(service, |_| None))?)
}

/// A health server behind the server layer. Its handler opens a `handler`
/// span, and the `traceparent` header of every request it gets is kept.
#[derive(Debug)]
pub struct TestServer {
    pub addr: SocketAddr,
    pub traceparents: Arc<Mutex<Vec<String>>>,
    stop: Option<oneshot::Sender<()>>,
}

impl TestServer {
    pub async fn start(layer: ServerLayer) -> Result<TestServer> {
        let (reporter, health) = tonic_health::server::health_reporter();
        reporter.set_service_status(KNOWN, ServingStatus::Serving).await;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let traceparents = Arc::new(Mutex::new(Vec::new()));
        let seen = traceparents.clone();
        let stack = tower::ServiceBuilder::new()
            .layer(layer)
            .map_request(move |req: http::Request<tonic::body::Body>| {
                if let Some(tp) = req.headers().get("traceparent") {
                    let value = tp.to_str().unwrap_or_default().to_owned();
                    seen.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(value);
                }
                req
            })
            .map_future(|fut| async move {
                let span = tracing::info_span!("handler");
                async {
                    tracing::info!("handling");
                    fut.await
                }
                .instrument(span)
                .await
            });
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(
            Server::builder()
                .layer(stack)
                .add_service(health)
                .serve_with_incoming_shutdown(
                    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                    async {
                        let _ = stopped.await;
                    },
                ),
        );
        Ok(TestServer {
            addr,
            traceparents,
            stop: Some(stop),
        })
    }

    pub async fn client(&self) -> Result<HealthClient<TracedChannel>> {
        let channel = Channel::from_shared(format!("http://{}", self.addr))?
            .connect()
            .await
            .context("connecting to the test server")?;
        Ok(HealthClient::new(traced_channel(channel)))
    }

    pub async fn plain_client(&self) -> Result<HealthClient<Channel>> {
        let channel = Channel::from_shared(format!("http://{}", self.addr))?
            .connect()
            .await?;
        Ok(HealthClient::new(channel))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A health check of `service`; the status code it ends with.
pub async fn check(client: &mut HealthClient<TracedChannel>, service: &str) -> tonic::Code {
    let request = tonic_health::pb::HealthCheckRequest {
        service: service.to_owned(),
    };
    match client.check(request).await {
        Ok(_) => tonic::Code::Ok,
        Err(status) => status.code(),
    }
}
