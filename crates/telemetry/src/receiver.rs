//! An in-process OTLP/gRPC trace collector for tests (feature `receiver`).
//!
//! Bind a listener on `127.0.0.1:0`, [`Receiver::start`] on it, point a
//! pipeline (or a child process's `OTEL_EXPORTER_OTLP_ENDPOINT`) at
//! [`Receiver::endpoint`], then query what arrived: by trace, by name, by
//! parent, with attributes, status and links.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};

/// How often `wait_for_spans` looks again even without news, as a guard.
const RECHECK: Duration = Duration::from_millis(50);

/// The kind of a received span (OTLP's `SpanKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Unspecified.
    Unspecified,
    /// Internal.
    Internal,
    /// Server.
    Server,
    /// Client.
    Client,
    /// Producer.
    Producer,
    /// Consumer.
    Consumer,
}

impl Kind {
    fn from_otlp(kind: i32) -> Kind {
        match kind {
            1 => Kind::Internal,
            2 => Kind::Server,
            3 => Kind::Client,
            4 => Kind::Producer,
            5 => Kind::Consumer,
            _ => Kind::Unspecified,
        }
    }
}

/// A span's status (OTLP's `Status.code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusCode {
    /// Not set.
    Unset,
    /// Explicitly OK.
    Ok,
    /// An error.
    Error,
}

/// An attribute value, flattened.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A float.
    Double(f64),
    /// A boolean.
    Bool(bool),
    /// Anything else, debug-printed.
    Other(String),
}

impl Value {
    fn from_otlp(value: Option<&AnyValue>) -> Value {
        match value.and_then(|v| v.value.as_ref()) {
            Some(any_value::Value::StringValue(s)) => Value::Str(s.clone()),
            Some(any_value::Value::IntValue(i)) => Value::Int(*i),
            Some(any_value::Value::DoubleValue(d)) => Value::Double(*d),
            Some(any_value::Value::BoolValue(b)) => Value::Bool(*b),
            other => Value::Other(format!("{other:?}")),
        }
    }

    /// The string, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if it is one.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
}

fn attributes(kvs: &[KeyValue]) -> HashMap<String, Value> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), Value::from_otlp(kv.value.as_ref())))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A link from a received span to another span.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    /// The linked span's trace id (32 hex digits).
    pub trace_id: String,
    /// The linked span's id (16 hex digits).
    pub span_id: String,
}

/// An event recorded in a received span (a log line inside it).
#[derive(Debug, Clone, PartialEq)]
pub struct SpanEvent {
    /// The event's name (for a `tracing` event, its message).
    pub name: String,
    /// Its attributes (the event's fields).
    pub attributes: HashMap<String, Value>,
}

/// One span as the collector received it, ids in lowercase hex.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedSpan {
    /// `service.name` of the resource that sent it.
    pub service_name: String,
    /// Trace id (32 hex digits).
    pub trace_id: String,
    /// Span id (16 hex digits).
    pub span_id: String,
    /// Parent span id; empty for a root.
    pub parent_span_id: String,
    /// The span's name.
    pub name: String,
    /// Its kind.
    pub kind: Kind,
    /// Its attributes.
    pub attributes: HashMap<String, Value>,
    /// Its status code.
    pub status: StatusCode,
    /// Its status message.
    pub status_message: String,
    /// Its links.
    pub links: Vec<Link>,
    /// Its events, in order.
    pub events: Vec<SpanEvent>,
    /// Start, nanoseconds since the Unix epoch.
    pub start_unix_nanos: u64,
    /// End, nanoseconds since the Unix epoch.
    pub end_unix_nanos: u64,
}

impl ReceivedSpan {
    /// An attribute.
    pub fn attr(&self, key: &str) -> Option<&Value> {
        self.attributes.get(key)
    }

    /// A string attribute.
    pub fn attr_str(&self, key: &str) -> Option<&str> {
        self.attr(key).and_then(Value::as_str)
    }

    /// An integer attribute.
    pub fn attr_i64(&self, key: &str) -> Option<i64> {
        self.attr(key).and_then(Value::as_i64)
    }

    /// Whether `parent` is this span's parent (same trace, parent id).
    pub fn is_child_of(&self, parent: &ReceivedSpan) -> bool {
        self.trace_id == parent.trace_id && self.parent_span_id == parent.span_id
    }

    /// Whether the span has no parent.
    pub fn is_root(&self) -> bool {
        self.parent_span_id.is_empty()
    }

    /// Whether the status is an error.
    pub fn is_error(&self) -> bool {
        self.status == StatusCode::Error
    }

    /// Whether the span links to the given span.
    pub fn links_to(&self, trace_id: &str, span_id: &str) -> bool {
        self.links
            .iter()
            .any(|l| l.trace_id == trace_id && l.span_id == span_id)
    }
}

#[derive(Debug, Default)]
struct Store {
    spans: Mutex<Vec<ReceivedSpan>>,
    news: Notify,
}

impl Store {
    fn snapshot(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

#[derive(Debug, Clone)]
struct Collector {
    store: Arc<Store>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut received = Vec::new();
        for resource_spans in request.into_inner().resource_spans {
            let service_name = resource_spans
                .resource
                .as_ref()
                .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
                .and_then(|kv| Value::from_otlp(kv.value.as_ref()).as_str().map(str::to_owned))
                .unwrap_or_default();
            for scope_spans in resource_spans.scope_spans {
                for span in scope_spans.spans {
                    let (status, status_message) = match &span.status {
                        Some(s) if s.code == 2 => (StatusCode::Error, s.message.clone()),
                        Some(s) if s.code == 1 => (StatusCode::Ok, s.message.clone()),
                        Some(s) => (StatusCode::Unset, s.message.clone()),
                        None => (StatusCode::Unset, String::new()),
                    };
                    received.push(ReceivedSpan {
                        service_name: service_name.clone(),
                        trace_id: hex(&span.trace_id),
                        span_id: hex(&span.span_id),
                        parent_span_id: hex(&span.parent_span_id),
                        name: span.name.clone(),
                        kind: Kind::from_otlp(span.kind),
                        attributes: attributes(&span.attributes),
                        status,
                        status_message,
                        links: span
                            .links
                            .iter()
                            .map(|l| Link {
                                trace_id: hex(&l.trace_id),
                                span_id: hex(&l.span_id),
                            })
                            .collect(),
                        events: span
                            .events
                            .iter()
                            .map(|e| SpanEvent {
                                name: e.name.clone(),
                                attributes: attributes(&e.attributes),
                            })
                            .collect(),
                        start_unix_nanos: span.start_time_unix_nano,
                        end_unix_nanos: span.end_time_unix_nano,
                    });
                }
            }
        }
        self.store
            .spans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(received);
        self.store.news.notify_waiters();
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// A running in-process collector; stops when dropped.
#[derive(Debug)]
pub struct Receiver {
    store: Arc<Store>,
    endpoint: String,
    stop: Option<oneshot::Sender<()>>,
}

impl Receiver {
    /// Serves OTLP/gRPC trace export on `listener` (bind `127.0.0.1:0`).
    pub fn start(listener: TcpListener) -> std::io::Result<Receiver> {
        let addr = listener.local_addr()?;
        let store = Arc::new(Store::default());
        let service = TraceServiceServer::new(Collector { store: store.clone() });
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let result = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(
                    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                    async {
                        let _ = stopped.await;
                    },
                )
                .await;
            if let Err(error) = result {
                tracing::warn!(%error, "test OTLP receiver stopped");
            }
        });
        Ok(Receiver {
            store,
            endpoint: format!("http://{addr}"),
            stop: Some(stop),
        })
    }

    /// The URL to export to, e.g. for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.store.snapshot()
    }

    /// The spans of one trace.
    pub fn spans_in_trace(&self, trace_id: &str) -> Vec<ReceivedSpan> {
        self.store
            .snapshot()
            .into_iter()
            .filter(|s| s.trace_id == trace_id)
            .collect()
    }

    /// The first span named `name`.
    pub fn find(&self, name: &str) -> Option<ReceivedSpan> {
        self.store.snapshot().into_iter().find(|s| s.name == name)
    }

    /// All spans named `name`.
    pub fn find_all(&self, name: &str) -> Vec<ReceivedSpan> {
        self.store
            .snapshot()
            .into_iter()
            .filter(|s| s.name == name)
            .collect()
    }

    /// The children of `parent`.
    pub fn children_of(&self, parent: &ReceivedSpan) -> Vec<ReceivedSpan> {
        self.store
            .snapshot()
            .into_iter()
            .filter(|s| s.is_child_of(parent))
            .collect()
    }

    /// Waits until `done` holds for the spans received, up to `timeout`.
    /// Returns the spans on success, or the spans so far as the error.
    pub async fn wait_for_spans(
        &self,
        done: impl Fn(&[ReceivedSpan]) -> bool,
        timeout: Duration,
    ) -> Result<Vec<ReceivedSpan>, Vec<ReceivedSpan>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let news = self.store.news.notified();
            let spans = self.store.snapshot();
            if done(&spans) {
                return Ok(spans);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(spans);
            }
            let wait = (deadline - now).min(RECHECK);
            let _ = tokio::time::timeout(wait, news).await;
        }
    }

    /// Forgets every span received so far.
    pub fn clear(&self) {
        self.store
            .spans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
