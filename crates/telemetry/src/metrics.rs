//! Prometheus metrics: the RPC metrics the server layer records, the etcd
//! and lease metrics the store records, and a `/metrics` endpoint served
//! with a few lines of HTTP/1.1 over a tokio listener (no HTTP framework).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CertificateLabels {
    /// `cert` (this process's own) or `ca`.
    certificate: String,
    /// The subject's common name.
    subject: String,
}

/// Distinct RPC names whose metrics are kept apart. Only a client calling
/// paths no service has can make more; those calls are counted under
/// `service="other", method="other"`, so that such a client cannot grow the
/// metrics (and the memory they take) without bound.
const MAX_RPC_NAMES: usize = 512;

/// The canonical name of a status code, as the metrics' `code` label.
pub(crate) fn code_name(code: tonic::Code) -> &'static str {
    match code {
        tonic::Code::Ok => "OK",
        tonic::Code::Cancelled => "CANCELLED",
        tonic::Code::Unknown => "UNKNOWN",
        tonic::Code::InvalidArgument => "INVALID_ARGUMENT",
        tonic::Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        tonic::Code::NotFound => "NOT_FOUND",
        tonic::Code::AlreadyExists => "ALREADY_EXISTS",
        tonic::Code::PermissionDenied => "PERMISSION_DENIED",
        tonic::Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        tonic::Code::FailedPrecondition => "FAILED_PRECONDITION",
        tonic::Code::Aborted => "ABORTED",
        tonic::Code::OutOfRange => "OUT_OF_RANGE",
        tonic::Code::Unimplemented => "UNIMPLEMENTED",
        tonic::Code::Internal => "INTERNAL",
        tonic::Code::Unavailable => "UNAVAILABLE",
        tonic::Code::DataLoss => "DATA_LOSS",
        tonic::Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// The metrics of one RPC method, looked up once rather than on every call
/// (each lookup hashed and allocated its labels).
pub(crate) struct RpcMetrics {
    service: String,
    method: String,
    duration: Histogram,
    /// By `tonic::Code` number, made on first use.
    requests: [OnceLock<Counter>; 17],
    family: Family<RpcLabels, Counter>,
}

impl RpcMetrics {
    /// Records one served RPC with status `code`.
    pub(crate) fn record(&self, code: tonic::Code, duration: Duration) {
        let counter = usize::try_from(code as i32)
            .ok()
            .and_then(|i| self.requests.get(i))
            .map(|slot| {
                slot.get_or_init(|| {
                    self.family
                        .get_or_create(&RpcLabels {
                            service: self.service.clone(),
                            method: self.method.clone(),
                            code: code_name(code).to_owned(),
                        })
                        .clone()
                })
            });
        if let Some(counter) = counter {
            counter.inc();
        }
        self.duration.observe(duration.as_secs_f64());
    }
}

struct Inner {
    registry: Registry,
    /// [`RpcMetrics`] by RPC name (`pkg.Service/Method`).
    rpcs: RwLock<HashMap<String, Arc<RpcMetrics>>>,
    /// Where calls beyond [`MAX_RPC_NAMES`] are counted.
    other_rpcs: OnceLock<Arc<RpcMetrics>>,
    rpc_requests: Family<RpcLabels, Counter>,
    rpc_duration: Family<MethodLabels, Histogram, fn() -> Histogram>,
    etcd_duration: Family<OpLabels, Histogram, fn() -> Histogram>,
    etcd_errors: Family<OpLabels, Counter>,
    lease_losses: Family<WorkLabels, Counter>,
    certificate_expiry: Family<CertificateLabels, Gauge>,
    connections_open: Gauge,
    connections_closed: Family<ReasonLabels, Counter>,
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
        let certificate_expiry = Family::<CertificateLabels, Gauge>::default();
        let connections_open = Gauge::default();
        let connections_closed = Family::<ReasonLabels, Counter>::default();
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
        registry.register(
            "tilewave_tls_certificate_expiry_timestamp_seconds",
            "Not-after of the TLS certificates this process uses (its own and the CA), as a Unix time: \
             alert on it minus time() under 14 days",
            certificate_expiry.clone(),
        );
        registry.register(
            "tilewave_grpc_connections_open",
            "gRPC connections this server holds open",
            connections_open.clone(),
        );
        registry.register(
            "tilewave_grpc_connections_closed",
            "gRPC connections the server closed itself, by reason: limit (over the connection cap, \
             closed on accepting) or idle (nothing read for the idle bound)",
            connections_closed.clone(),
        );
        Metrics {
            inner: Arc::new(Inner {
                registry,
                rpcs: RwLock::default(),
                other_rpcs: OnceLock::new(),
                rpc_requests,
                rpc_duration,
                etcd_duration,
                etcd_errors,
                lease_losses,
                certificate_expiry,
                connections_open,
                connections_closed,
            }),
        }
    }

    /// The process-wide metrics that [`crate::server_layer`] records and
    /// [`serve_metrics`] serves.
    pub fn global() -> Metrics {
        static GLOBAL: OnceLock<Metrics> = OnceLock::new();
        GLOBAL.get_or_init(Metrics::new).clone()
    }

    /// The metrics of the RPC `name` (`service/method`), for recording its
    /// calls without looking labels up each time.
    pub(crate) fn rpc(&self, name: &str, service: &str, method: &str) -> Arc<RpcMetrics> {
        if let Some(found) = self
            .inner
            .rpcs
            .read()
            .ok()
            .and_then(|rpcs| rpcs.get(name).cloned())
        {
            return found;
        }
        let Ok(mut rpcs) = self.inner.rpcs.write() else {
            return self.other_rpcs();
        };
        if let Some(found) = rpcs.get(name) {
            return found.clone();
        }
        if rpcs.len() >= MAX_RPC_NAMES {
            return self.other_rpcs();
        }
        let made = Arc::new(self.rpc_metrics(service, method));
        rpcs.insert(name.to_owned(), made.clone());
        made
    }

    fn other_rpcs(&self) -> Arc<RpcMetrics> {
        self.inner
            .other_rpcs
            .get_or_init(|| Arc::new(self.rpc_metrics("other", "other")))
            .clone()
    }

    fn rpc_metrics(&self, service: &str, method: &str) -> RpcMetrics {
        let duration = self
            .inner
            .rpc_duration
            .get_or_create(&MethodLabels {
                service: service.to_owned(),
                method: method.to_owned(),
            })
            .clone();
        RpcMetrics {
            service: service.to_owned(),
            method: method.to_owned(),
            duration,
            requests: Default::default(),
            family: self.inner.rpc_requests.clone(),
        }
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

    /// Records the not-after (Unix seconds) of a TLS certificate this
    /// process uses: `certificate` is `cert` (its own) or `ca`, `subject`
    /// its common name.
    pub fn certificate_expiry(&self, certificate: &str, subject: &str, not_after_unix: i64) {
        self.inner
            .certificate_expiry
            .get_or_create(&CertificateLabels {
                certificate: certificate.to_owned(),
                subject: subject.to_owned(),
            })
            .set(not_after_unix);
    }

    /// Sets how many gRPC connections the server holds open.
    pub fn connections_open(&self, open: usize) {
        self.inner
            .connections_open
            .set(i64::try_from(open).unwrap_or(i64::MAX));
    }

    /// Counts a gRPC connection the server closed itself: `reason` is
    /// `limit` or `idle`.
    pub fn connection_closed(&self, reason: &str) {
        self.inner
            .connections_closed
            .get_or_create(&ReasonLabels {
                reason: reason.to_owned(),
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
        let check = m.rpc("grpc.health.v1.Health/Check", "grpc.health.v1.Health", "Check");
        check.record(tonic::Code::Ok, Duration::from_millis(2));
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
    fn calls_are_counted_by_code_through_one_lookup_per_name() {
        let m = Metrics::new();
        let a = m.rpc("pkg.Svc/Get", "pkg.Svc", "Get");
        let b = m.rpc("pkg.Svc/Get", "pkg.Svc", "Get");
        assert!(Arc::ptr_eq(&a, &b), "one entry per name");
        a.record(tonic::Code::Ok, Duration::from_millis(1));
        b.record(tonic::Code::Ok, Duration::from_millis(1));
        b.record(tonic::Code::NotFound, Duration::from_millis(1));
        let text = m.encode();
        for want in [
            r#"tilewave_rpc_requests_total{service="pkg.Svc",method="Get",code="OK"} 2"#,
            r#"tilewave_rpc_requests_total{service="pkg.Svc",method="Get",code="NOT_FOUND"} 1"#,
            r#"tilewave_rpc_duration_seconds_count{service="pkg.Svc",method="Get"} 3"#,
        ] {
            assert!(text.contains(want), "missing {want} in\n{text}");
        }
    }

    #[test]
    fn certificate_expiry_is_a_timestamp_gauge() {
        let m = Metrics::new();
        m.certificate_expiry("cert", "registry", 1_800_000_000);
        let text = m.encode();
        let want = r#"tilewave_tls_certificate_expiry_timestamp_seconds{certificate="cert",subject="registry"} 1800000000"#;
        assert!(text.contains(want), "missing {want} in\n{text}");
    }

    #[test]
    fn names_beyond_the_limit_are_counted_as_other() {
        let m = Metrics::new();
        for i in 0..MAX_RPC_NAMES + 10 {
            let method = format!("M{i}");
            m.rpc(&format!("probe.Svc/{method}"), "probe.Svc", &method)
                .record(tonic::Code::Unimplemented, Duration::from_millis(1));
        }
        let text = m.encode();
        let kept = text
            .lines()
            .filter(|l| l.starts_with("tilewave_rpc_requests_total{service=\"probe.Svc\""))
            .count();
        assert_eq!(kept, MAX_RPC_NAMES);
        assert!(
            text.contains(
                r#"tilewave_rpc_requests_total{service="other",method="other",code="UNIMPLEMENTED"} 10"#
            ),
            "{text}"
        );
        // Names seen before the limit keep their own series.
        m.rpc("probe.Svc/M0", "probe.Svc", "M0")
            .record(tonic::Code::Ok, Duration::from_millis(1));
        assert!(
            m.encode()
                .contains(r#"tilewave_rpc_requests_total{service="probe.Svc",method="M0",code="OK"} 1"#)
        );
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
