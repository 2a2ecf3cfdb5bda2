//! Prometheus metrics: the RPC metrics the server layer records, the etcd
//! and lease metrics the store records, and a `/metrics` endpoint served
//! with a few lines of HTTP/1.1 over a tokio listener (no HTTP framework).

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// The longest request head the endpoint reads.
const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// How long a scraper may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Latency buckets: 0.1 ms to about 13 s, doubling.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    service: String,
    method: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    service: String,
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    op: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkLabels {
    work: String,
}

struct Inner {
    registry: Registry,
    rpc_requests: Family<RpcLabels, Counter>,
    rpc_duration: Family<MethodLabels, Histogram, fn() -> Histogram>,
    etcd_duration: Family<OpLabels, Histogram, fn() -> Histogram>,
    etcd_errors: Family<OpLabels, Counter>,
    lease_losses: Family<WorkLabels, Counter>,
}

/// A cheaply clonable handle on a set of metrics. Services use
/// [`Metrics::global`]; tests make their own with [`Metrics::new`].
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh, empty set of metrics with its own registry.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let rpc_requests = Family::<RpcLabels, Counter>::default();
        let rpc_duration: Family<MethodLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        let etcd_duration: Family<OpLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        let etcd_errors = Family::<OpLabels, Counter>::default();
        let lease_losses = Family::<WorkLabels, Counter>::default();
        // Counters get their `_total` suffix from the encoder.
        registry.register(
            "tilewave_rpc_requests",
            "gRPC requests served, by service, method and status code",
            rpc_requests.clone(),
        );
        registry.register(
            "tilewave_rpc_duration_seconds",
            "Time to serve a gRPC request, to the end of the response",
            rpc_duration.clone(),
        );
        registry.register(
            "tilewave_etcd_op_duration_seconds",
            "Time of an etcd operation, by operation",
            etcd_duration.clone(),
        );
        registry.register(
            "tilewave_etcd_errors",
            "etcd operations that failed, by operation",
            etcd_errors.clone(),
        );
        registry.register(
            "tilewave_lease_losses",
            "Ownership of long-running work lost with its lease, by work",
            lease_losses.clone(),
        );
        Metrics {
            inner: Arc::new(Inner {
                registry,
                rpc_requests,
                rpc_duration,
                etcd_duration,
                etcd_errors,
                lease_losses,
            }),
        }
    }

    /// The process-wide metrics that [`crate::server_layer`] records and
    /// [`serve_metrics`] serves.
    pub fn global() -> Metrics {
        static GLOBAL: OnceLock<Metrics> = OnceLock::new();
        GLOBAL.get_or_init(Metrics::new).clone()
    }

    /// Records one served RPC. `code` is the canonical status name
    /// (`"OK"`, `"NOT_FOUND"`).
    pub fn record_rpc(&self, service: &str, method: &str, code: &str, duration: Duration) {
        self.inner
            .rpc_requests
            .get_or_create(&RpcLabels {
                service: service.to_owned(),
                method: method.to_owned(),
                code: code.to_owned(),
            })
            .inc();
        self.inner
            .rpc_duration
            .get_or_create(&MethodLabels {
                service: service.to_owned(),
                method: method.to_owned(),
            })
            .observe(duration.as_secs_f64());
    }

    /// Records one etcd operation (`"get"`, `"txn"`, `"lease_grant"`, ...).
    pub fn record_etcd_op(&self, op: &str, duration: Duration, ok: bool) {
        let labels = OpLabels { op: op.to_owned() };
        self.inner
            .etcd_duration
            .get_or_create(&labels)
            .observe(duration.as_secs_f64());
        if !ok {
            self.inner.etcd_errors.get_or_create(&labels).inc();
        }
    }

    /// Records that this replica lost ownership of `work` with its lease.
    pub fn lease_lost(&self, work: &str) {
        self.inner
            .lease_losses
            .get_or_create(&WorkLabels {
                work: work.to_owned(),
            })
            .inc();
    }

    /// The metrics in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.inner.registry);
        out
    }

    /// Serves these metrics at `GET /metrics` on `listener` until
    /// `shutdown` completes.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                accepted = listener.accept() => {
                    match accepted {
                        Ok((stream, _peer)) => {
                            let metrics = self.clone();
                            tokio::spawn(async move {
                                if let Err(error) = metrics.answer(stream).await {
                                    tracing::debug!(%error, "metrics request failed");
                                }
                            });
                        }
                        // Out of file descriptors and the like: keep serving.
                        Err(error) => tracing::warn!(%error, "accepting a metrics connection"),
                    }
                }
            }
        }
    }

    /// Answers one request on `stream` and closes it.
    async fn answer(&self, mut stream: TcpStream) -> std::io::Result<()> {
        let mut head = Vec::with_capacity(512);
        let mut buf = [0u8; 1024];
        let read_head = async {
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                head.extend_from_slice(&buf[..n]);
                if head.len() > MAX_REQUEST_HEAD {
                    break;
                }
            }
            Ok::<_, std::io::Error>(())
        };
        if tokio::time::timeout(READ_TIMEOUT, read_head).await.is_err() {
            return Ok(());
        }
        let request_line = head
            .split(|b| *b == b'\n')
            .next()
            .map(|l| String::from_utf8_lossy(l).trim().to_owned())
            .unwrap_or_default();
        let mut parts = request_line.split_whitespace();
        let (method, target) = (parts.next(), parts.next());
        let path = target.map(|t| t.split('?').next().unwrap_or(t));
        let (status, content_type, body) = match (method, path) {
            (Some("GET"), Some("/metrics")) => (
                "200 OK",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                self.encode(),
            ),
            (Some("GET"), _) => ("404 Not Found", "text/plain", "not found\n".to_owned()),
            _ => ("405 Method Not Allowed", "text/plain", "only GET\n".to_owned()),
        };
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await
    }
}

/// Serves [`Metrics::global`] at `GET /metrics` on `listener` until
/// `shutdown` completes.
pub async fn serve_metrics(listener: TcpListener, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
    Metrics::global().serve(listener, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_labels_are_the_documented_ones() {
        let m = Metrics::new();
        m.record_rpc("grpc.health.v1.Health", "Check", "OK", Duration::from_millis(2));
        m.record_etcd_op("txn", Duration::from_millis(1), false);
        m.record_etcd_op("get", Duration::from_millis(1), true);
        m.lease_lost("rollout/r1");
        let text = m.encode();
        for want in [
            r#"tilewave_rpc_requests_total{service="grpc.health.v1.Health",method="Check",code="OK"} 1"#,
            r#"tilewave_rpc_duration_seconds_count{service="grpc.health.v1.Health",method="Check"} 1"#,
            r#"tilewave_etcd_op_duration_seconds_count{op="txn"} 1"#,
            r#"tilewave_etcd_errors_total{op="txn"} 1"#,
            r#"tilewave_lease_losses_total{work="rollout/r1"} 1"#,
        ] {
            assert!(text.contains(want), "missing {want} in\n{text}");
        }
        assert!(!text.contains(r#"tilewave_etcd_errors_total{op="get"}"#));
    }

    #[test]
    fn the_global_handle_is_shared() {
        Metrics::global().lease_lost("shared-test-work");
        assert!(
            Metrics::global()
                .encode()
                .contains(r#"tilewave_lease_losses_total{work="shared-test-work"} 1"#)
        );
    }
}
