//! Tower layers that put W3C trace context on every gRPC hop.
//!
//! [`ServerLayer`] (for `tonic::transport::Server::builder().layer(..)`)
//! extracts `traceparent`/`tracestate` from the request headers, opens one
//! span per RPC named `<package.Service>/<Method>` with the OpenTelemetry RPC
//! semantic-convention attributes, makes it the parent of the handler's spans,
//! records the `grpc-status` (from the response headers for trailers-only
//! responses, else from the trailers) and the RPC metrics. [`ClientLayer`]
//! (around a `tonic::transport::Channel`) opens a client span per call and
//! injects its context into the request headers.
//!
//! The span ends, and the status is known, when the response body ends, so a
//! streaming RPC is timed to its last message.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use std::net::IpAddr;
use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue};
use http_body::{Body, Frame, SizeHint};
use opentelemetry::trace::SpanContext;
use tokio::time::Instant;
use tonic::Code;
use tracing::Span;
use tracing::field::Empty;

use crate::Metrics;
use crate::metrics::{RpcMetrics, code_name};

/// A tonic channel whose calls carry trace context: use it as the generic
/// of generated clients, e.g. `HealthClient<TracedChannel>`.
pub type TracedChannel = Traced<tonic::transport::Channel>;

/// The server layer recording into [`Metrics::global`].
pub fn server_layer() -> ServerLayer {
    ServerLayer::new()
}

/// The client layer, for `tower::ServiceBuilder`.
pub fn client_layer() -> ClientLayer {
    ClientLayer
}

/// Wraps a channel so that every call through it is traced.
pub fn traced_channel(channel: tonic::transport::Channel) -> TracedChannel {
    Traced::client(channel)
}

/// Which end of the call a [`Traced`] service is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Server,
    Client,
}

/// Traces every RPC a tonic server serves and records the RPC metrics.
#[derive(Debug, Clone)]
pub struct ServerLayer {
    metrics: Option<Metrics>,
}

impl Default for ServerLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerLayer {
    /// Records metrics into [`Metrics::global`].
    pub fn new() -> Self {
        Self::with_metrics(Metrics::global())
    }

    /// Records metrics into `metrics`.
    pub fn with_metrics(metrics: Metrics) -> Self {
        ServerLayer {
            metrics: Some(metrics),
        }
    }

    /// Records no metrics: spans and propagation only.
    pub fn without_metrics() -> Self {
        ServerLayer { metrics: None }
    }
}

impl<S> tower::Layer<S> for ServerLayer {
    type Service = Traced<S>;

    fn layer(&self, inner: S) -> Traced<S> {
        Traced {
            inner,
            side: Side::Server,
            metrics: self.metrics.clone(),
        }
    }
}

/// Traces every call a gRPC client makes and injects its context.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientLayer;

impl<S> tower::Layer<S> for ClientLayer {
    type Service = Traced<S>;

    fn layer(&self, inner: S) -> Traced<S> {
        Traced::client(inner)
    }
}

/// A gRPC service (server side) or channel (client side) with tracing.
#[derive(Debug, Clone)]
pub struct Traced<S> {
    inner: S,
    side: Side,
    metrics: Option<Metrics>,
}

impl<S> Traced<S> {
    fn client(inner: S) -> Self {
        Traced {
            inner,
            side: Side::Client,
            metrics: None,
        }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

/// `/pkg.Service/Method` split up, borrowed from the request's path.
#[derive(Debug)]
struct Rpc<'a> {
    /// `pkg.Service/Method`: the span name.
    name: &'a str,
    /// Where `pkg.Service` ends in `name` and, after the slash, `Method`
    /// starts; `None` when the path has no method.
    split: Option<usize>,
}

impl<'a> Rpc<'a> {
    fn from_path(path: &'a str) -> Rpc<'a> {
        let name = path.strip_prefix('/').unwrap_or(path);
        let split = match name.rsplit_once('/') {
            Some((service, method)) if !service.is_empty() && !method.is_empty() => Some(service.len()),
            _ => None,
        };
        Rpc { name, split }
    }

    /// `pkg.Service`.
    fn service(&self) -> &'a str {
        match self.split {
            Some(at) => &self.name[..at],
            None => self.name,
        }
    }

    /// `Method`.
    fn method(&self) -> &'a str {
        match self.split {
            Some(at) => &self.name[at + 1..],
            None => "",
        }
    }
}

const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");

fn server_span<B>(rpc: &Rpc, req: &http::Request<B>) -> Span {
    // Everything known up front goes in at creation: each later `record`
    // costs every layer an update.
    let info = req.extensions().get::<tonic::transport::server::TcpConnectInfo>();
    let local = info.and_then(|i| i.local_addr());
    let remote = info.and_then(|i| i.remote_addr());
    let (mut local_ip, mut remote_ip) = ([0u8; 39], [0u8; 39]);
    let span = tracing::info_span!(
        target: "tilewave::rpc",
        "grpc.server",
        otel.name = rpc.name,
        otel.kind = "server",
        rpc.system = "grpc",
        rpc.service = rpc.service(),
        rpc.method = rpc.method(),
        rpc.grpc.status_code = Empty,
        otel.status_code = Empty,
        otel.status_description = Empty,
        server.address = local.map(|a| ip_text(a.ip(), &mut local_ip)),
        server.port = local.map(|a| i64::from(a.port())),
        client.address = remote.map(|a| ip_text(a.ip(), &mut remote_ip)),
        client.port = remote.map(|a| i64::from(a.port())),
    );
    if span.is_disabled() {
        return span;
    }
    let headers = req.headers();
    let remote = headers
        .get(TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(|tp| {
            let state = headers.get(TRACESTATE).and_then(|v| v.to_str().ok());
            crate::context::parse_traceparent(tp, state)
        });
    if let Some(remote) = remote {
        crate::context::set_parent(&span, remote);
    }
    span
}

fn client_span<B>(rpc: &Rpc, req: &mut http::Request<B>) -> Span {
    let span = tracing::info_span!(
        target: "tilewave::rpc",
        "grpc.client",
        otel.name = rpc.name,
        otel.kind = "client",
        rpc.system = "grpc",
        rpc.service = rpc.service(),
        rpc.method = rpc.method(),
        rpc.grpc.status_code = Empty,
        otel.status_code = Empty,
        otel.status_description = Empty,
        server.address = req.uri().host(),
        server.port = req.uri().port_u16().map(i64::from),
    );
    if span.is_disabled() {
        return span;
    }
    if let Some(sc) = crate::context::span_context(&span) {
        inject(&sc, req.headers_mut());
    }
    span
}

/// Writes `sc` into the request headers as `traceparent`/`tracestate`.
fn inject(sc: &SpanContext, headers: &mut HeaderMap) {
    if let Ok(mut value) = HeaderValue::from_bytes(&crate::context::traceparent_bytes(sc)) {
        // Unique to each call: indexing it would only evict useful entries
        // from both ends' HPACK tables.
        value.set_sensitive(true);
        headers.insert(TRACEPARENT, value);
    }
    let state = sc.trace_state().header();
    if !state.is_empty()
        && let Ok(value) = HeaderValue::from_str(&state)
    {
        headers.insert(TRACESTATE, value);
    }
}

/// An IP address as text, IPv4 without the formatting machinery (a server
/// span records its peer's on every call).
fn ip_text(ip: IpAddr, buf: &mut [u8; 39]) -> &str {
    use std::io::Write as _;
    let mut at = 0;
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    buf[at] = b'.';
                    at += 1;
                }
                let mut text = itoa::Buffer::new();
                let digits = text.format(octet).as_bytes();
                buf[at..at + digits.len()].copy_from_slice(digits);
                at += digits.len();
            }
        }
        IpAddr::V6(v6) => {
            let mut cursor = std::io::Cursor::new(&mut buf[..]);
            let _ = write!(cursor, "{v6}");
            at = usize::try_from(cursor.position()).unwrap_or(0);
        }
    }
    std::str::from_utf8(&buf[..at]).unwrap_or_default()
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for Traced<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
{
    type Response = http::Response<TracedBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<ReqBody>) -> Self::Future {
        if self.side == Side::Client
            && let Some(sc) = crate::context::local_client_context()
        {
            inject(&sc, req.headers_mut());
            return ResponseFuture {
                inner: self.inner.call(req),
                span: Span::none(),
                enter: false,
                finish: None,
            };
        }
        // The path is borrowed while the client span writes headers.
        let uri = req.uri().clone();
        let rpc = Rpc::from_path(uri.path());
        let span = match self.side {
            Side::Server => server_span(&rpc, &req),
            Side::Client => client_span(&rpc, &mut req),
        };
        let metrics = self
            .metrics
            .as_ref()
            .map(|m| m.rpc(rpc.name, rpc.service(), rpc.method()));
        let finish = (!span.is_disabled() || metrics.is_some()).then(|| Finish {
            span: span.clone(),
            side: self.side,
            start: Instant::now(),
            metrics,
            done: false,
        });
        let enter = self.side == Side::Server;
        let inner = if enter {
            let _entered = span.enter();
            self.inner.call(req)
        } else {
            self.inner.call(req)
        };
        ResponseFuture {
            inner,
            span,
            enter,
            finish,
        }
    }
}

/// Records the outcome of one RPC on its span and in the metrics, once.
struct Finish {
    span: Span,
    side: Side,
    start: Instant,
    metrics: Option<Arc<RpcMetrics>>,
    done: bool,
}

impl Finish {
    fn finish(mut self, code: Code, message: Option<&str>) {
        self.record(code, message);
    }

    fn record(&mut self, code: Code, message: Option<&str>) {
        if self.done {
            return;
        }
        self.done = true;
        self.span.record("rpc.grpc.status_code", code as i64);
        if code != Code::Ok {
            self.span.record("otel.status_code", "ERROR");
            let description = match message {
                Some(m) if !m.is_empty() => m,
                _ => code_name(code),
            };
            self.span.record("otel.status_description", description);
        }
        if let Some(metrics) = &self.metrics {
            metrics.record(code, self.start.elapsed());
        }
    }
}

impl Drop for Finish {
    fn drop(&mut self) {
        // Dropped before a status was seen: the caller went away (server
        // side) or gave up (client side).
        if !self.done {
            self.record(Code::Cancelled, None);
        }
    }
}

impl std::fmt::Debug for Finish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Finish")
            .field("side", &self.side)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// The `grpc-status` in a header map, if any, and for an error the
/// `grpc-message` (percent-decoded, as the gRPC protocol encodes it).
fn status_in(headers: &HeaderMap) -> Option<(Code, Option<String>)> {
    let code = Code::from_bytes(headers.get(GRPC_STATUS)?.as_bytes());
    if code == Code::Ok {
        return Some((code, None));
    }
    let message = tonic::Status::from_header_map(headers).map(|s| s.message().to_owned());
    Some((code, message))
}

pin_project_lite::pin_project! {
    /// The response future of a [`Traced`] service.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        span: Span,
        enter: bool,
        finish: Option<Finish>,
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("finish", &self.finish)
            .finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<http::Response<B>, E>>,
{
    type Output = Result<http::Response<TracedBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        // Only server-side polling runs user code (the handler) that should
        // see the RPC span as its parent; entering a span costs every layer.
        let polled = if *this.enter {
            let _entered = this.span.enter();
            this.inner.poll(cx)
        } else {
            this.inner.poll(cx)
        };
        match ready!(polled) {
            Ok(response) => {
                let mut finish = this.finish.take();
                // Trailers-only response (how tonic sends unary errors).
                if let Some((code, message)) = status_in(response.headers())
                    && let Some(f) = finish.take()
                {
                    f.finish(code, message.as_deref());
                }
                Poll::Ready(Ok(response.map(|inner| TracedBody { inner, finish })))
            }
            Err(error) => {
                if let Some(f) = this.finish.take() {
                    let code = match f.side {
                        Side::Client => Code::Unavailable,
                        Side::Server => Code::Unknown,
                    };
                    f.finish(code, Some("transport error"));
                }
                Poll::Ready(Err(error))
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// A response body that records the RPC's status from its trailers and
    /// keeps the RPC's span open until it ends.
    pub struct TracedBody<B> {
        #[pin]
        inner: B,
        finish: Option<Finish>,
    }
}

impl<B> std::fmt::Debug for TracedBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracedBody")
            .field("finish", &self.finish)
            .finish_non_exhaustive()
    }
}

impl<B: Body> Body for TracedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        // A server's streaming handler runs while its body is polled.
        let polled = {
            let _entered = this
                .finish
                .as_ref()
                .filter(|f| f.side == Side::Server)
                .map(|f| f.span.enter());
            this.inner.poll_frame(cx)
        };
        let frame = ready!(polled);
        match &frame {
            Some(Ok(frame)) => {
                if let Some(trailers) = frame.trailers_ref()
                    && let Some(f) = this.finish.take()
                {
                    match status_in(trailers) {
                        Some((code, message)) => f.finish(code, message.as_deref()),
                        None => f.finish(Code::Unknown, Some("no grpc-status in trailers")),
                    }
                }
            }
            Some(Err(_)) => {
                if let Some(f) = this.finish.take() {
                    f.finish(Code::Unknown, Some("response body failed"));
                }
            }
            None => {
                if let Some(f) = this.finish.take() {
                    f.finish(Code::Unknown, Some("response ended without grpc-status"));
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_service_and_method() {
        let rpc = Rpc::from_path("/grpc.health.v1.Health/Check");
        assert_eq!(rpc.name, "grpc.health.v1.Health/Check");
        assert_eq!(rpc.service(), "grpc.health.v1.Health");
        assert_eq!(rpc.method(), "Check");
        let odd = Rpc::from_path("/");
        assert_eq!(odd.name, "");
        assert_eq!(odd.service(), "");
        assert_eq!(odd.method(), "");
        let no_method = Rpc::from_path("/svc/");
        assert_eq!(no_method.service(), "svc/");
        assert_eq!(no_method.method(), "");
    }

    #[test]
    fn ip_addresses_are_written_as_display_writes_them() {
        let cases: [IpAddr; 5] = [
            [127, 0, 0, 1].into(),
            [0, 0, 0, 0].into(),
            [255, 255, 255, 255].into(),
            [10, 200, 3, 45].into(),
            "2001:db8::ff00:42:8329".parse().unwrap(),
        ];
        for ip in cases {
            assert_eq!(ip_text(ip, &mut [0; 39]), ip.to_string());
        }
        let longest: IpAddr = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255".parse().unwrap();
        assert_eq!(ip_text(longest, &mut [0; 39]), longest.to_string());
    }

    #[test]
    fn status_comes_from_headers() {
        let mut headers = HeaderMap::new();
        assert!(status_in(&headers).is_none());
        headers.insert("grpc-status", HeaderValue::from_static("5"));
        headers.insert("grpc-message", HeaderValue::from_static("tile%20%22x%22%20gone"));
        assert_eq!(
            status_in(&headers),
            Some((Code::NotFound, Some("tile \"x\" gone".to_owned())))
        );
        headers.insert("grpc-status", HeaderValue::from_static("0"));
        assert_eq!(status_in(&headers), Some((Code::Ok, None)));
        assert_eq!(code_name(Code::NotFound), "NOT_FOUND");
    }
}
