//! The shared `main` of every tilewave service.
//!
//! A service's binary reads its typed configuration and hands this crate a
//! `serve(listener, shutdown)` function (docs/design.md, "Code layout": servers take a bound
//! listener and a shutdown signal). [`run`] does the rest the same way for
//! every service: telemetry set up inside the runtime, the gRPC listener
//! and the optional Prometheus listener bound (a bind failure names the
//! address), SIGTERM or Ctrl-C turned into one [`Shutdown`] request, in-flight
//! calls given [`SHUTDOWN_GRACE`] to finish (a client holding a stream open
//! must not keep a stopping replica alive), and the last spans flushed.
//!
//! The signal is the store's [`Shutdown`], the one shutdown type of the
//! house: `serve` stops its gRPC server on [`Shutdown::requested`] and runs
//! its background tasks through [`tilewave_store::Tasks`] (named, each with
//! a signal of its own, stopped last-started-first once the server has
//! stopped); the metrics server stops on the same signal.
//! Every `serve` accepts its connections through [`incoming`], and bounds
//! the message of every error it returns with [`bounded::BoundedMessages`].
//! Servers are built with [`transport::server`] and every service and
//! client is wrapped in [`sized!`] (message sizes, keep-alive, connection
//! limits, deadlines: [`transport`]); handlers check the strings and
//! repeated fields they take from a request with [`limits`].
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod bounded;
pub mod connections;
pub mod encoded;
pub mod escalation;
pub mod limits;
pub mod paging;
pub mod regions;
pub mod standard;
pub mod transport;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use tilewave_store::Shutdown;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

/// How long shutdown waits for open calls to finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Where a service listens.
#[derive(Debug, Clone, Copy)]
pub struct Listen {
    /// The gRPC address.
    pub grpc: SocketAddr,
    /// The Prometheus `/metrics` address, if any.
    pub metrics: Option<SocketAddr>,
}

/// Runs a service until SIGTERM or Ctrl-C: `name` is its binary name (for
/// telemetry and messages), `serve` its server.
///
/// `serve` gets the listener and the service's [`Shutdown`], requested on
/// SIGTERM or Ctrl-C (and when `serve` returns on its own); it then has
/// [`SHUTDOWN_GRACE`] to return. The metrics server stops on the same signal.
pub async fn run<F, Fut, E>(name: &str, listen: Listen, serve: F) -> anyhow::Result<()>
where
    F: FnOnce(TcpListener, Shutdown) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: std::error::Error + Send + Sync + 'static,
{
    let telemetry = tilewave_telemetry::init(name).context("setting up telemetry")?;
    // A bad connection limit stops the start (`incoming` reads it again).
    let limits = connections::ConnectionLimits::from_env(&|v| std::env::var(v).ok())
        .with_context(|| format!("{name}: connection limits"))?;
    tracing::debug!(max = limits.max, idle = ?limits.idle, "connection limits");
    let listener = TcpListener::bind(listen.grpc)
        .await
        .with_context(|| format!("{name}: binding {}", listen.grpc))?;
    let (trigger, shutdown) = Shutdown::new();
    if let Some(addr) = listen.metrics {
        let metrics = TcpListener::bind(addr)
            .await
            .with_context(|| format!("{name}: binding {addr}"))?;
        let stop = shutdown.clone();
        tokio::spawn(tilewave_telemetry::serve_metrics(metrics, async move {
            stop.requested().await;
        }));
    }
    let server = serve(listener, shutdown);
    tokio::pin!(server);
    let result = tokio::select! {
        result = &mut server => result.map_err(|e| stopped(name, &e)),
        () = shutdown_signal() => {
            trigger.request();
            match tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await {
                Ok(result) => result.map_err(|e| stopped(name, &e)),
                Err(_) => {
                    tracing::warn!(grace = ?SHUTDOWN_GRACE, "open calls outlived the shutdown grace; exiting");
                    Ok(())
                }
            }
        }
    };
    // A server that stopped on its own stops the metrics server too.
    trigger.request();
    if let Err(e) = telemetry.shutdown().await {
        eprintln!("{name}: flushing spans: {e}");
    }
    result
}

/// The error a service stopped with, as one line: `name: ` and the error's
/// chain joined by `: `, each cause left out where the text before already
/// says it. The services' errors wrap their causes both in their text and as
/// their source (`#[error("TLS: {0}")]`), so anyhow's `Caused by:` list would
/// repeat each message.
fn stopped(name: &str, error: &(dyn std::error::Error + 'static)) -> anyhow::Error {
    anyhow::Error::msg(format!("{name}: {}", one_line(error)))
}

fn one_line(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let more = e.to_string();
        if !more.is_empty() && !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = e.source();
    }
    text
}

/// The connections a gRPC server accepts on `listener`, with `TCP_NODELAY`
/// and TCP keepalive ([`transport::TCP_KEEPALIVE`]) set on each, under the
/// [`connections`] limits of the environment: at most
/// `TILEWAVE_MAX_CONNECTIONS` (1024) held at once, one over the cap closed
/// at once, and one that sends nothing for `TILEWAVE_CONNECTION_IDLE_SECS`
/// (60) closed.
///
/// tonic applies its `tcp_nodelay` setting only to listeners it binds
/// itself; a server handed a listener (`serve_with_incoming`) gets sockets
/// with Nagle's algorithm on. A response then written in two pieces (the
/// message, then the trailers) waits for the client's delayed ACK: about
/// 40 ms on every call (the registry's `GetTile` took 43 ms instead of
/// under a millisecond; BENCHMARKS.md).
pub fn incoming(
    listener: TcpListener,
) -> impl futures::Stream<Item = std::io::Result<connections::Limited<tokio::net::TcpStream>>> {
    incoming_with(listener, connections::ConnectionLimits::from_process_env())
}

/// [`incoming`] under the given limits.
pub fn incoming_with(
    listener: TcpListener,
    limits: connections::ConnectionLimits,
) -> impl futures::Stream<Item = std::io::Result<connections::Limited<tokio::net::TcpStream>>> {
    let accepted = TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(transport::TCP_KEEPALIVE));
    connections::limit(accepted, limits)
}

/// Starts the background task `policy` that re-reads the access policy
/// file every [`tilewave_auth::serve::POLICY_POLL`] (keeping the last good
/// policy), when `auth` has a file to watch; stopped with the other tasks.
pub fn watch_policy(tasks: &mut tilewave_store::Tasks, auth: &mut tilewave_auth::ServerAuth) {
    if let Some(watcher) = auth.take_watcher() {
        tasks.spawn("policy", move |stop| async move {
            watcher
                .run(tilewave_auth::serve::POLICY_POLL, stop.requested())
                .await;
        });
    }
}

/// Completes on SIGTERM or Ctrl-C: what requests the [`Shutdown`] that
/// [`run`] hands to `serve`.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

/// A status from another service in words: its message (and the transport
/// error beneath it, if any), or what its code means when it has none. Not
/// tonic's `Display`, which reads like a debug dump
/// (`code: 'The service is currently unavailable', message: "..."`).
pub fn in_words(status: &tonic::Status) -> String {
    let message = status.message().trim();
    let mut out = if message.is_empty() {
        let code = status.code().description();
        let mut chars = code.chars();
        chars
            .next()
            .map(|c| c.to_lowercase().chain(chars).collect())
            .unwrap_or_default()
    } else {
        message.to_owned()
    };
    if let Some(source) = std::error::Error::source(status) {
        let source = source.to_string();
        if !out.contains(&source) {
            out = format!("{out}: {source}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use futures::StreamExt as _;

    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("TLS: {0}")]
        Repeats(#[source] Inner),
        #[error("etcd")]
        Adds(#[source] Inner),
    }

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Inner(String, #[source] Option<std::io::Error>);

    #[test]
    fn a_stopped_service_says_each_cause_once() {
        let io = || Some(std::io::Error::other("connection refused"));
        let cases = [
            (
                Outer::Repeats(Inner("no certificates".into(), None)),
                "registry: TLS: no certificates",
            ),
            (
                Outer::Adds(Inner("unreachable".into(), io())),
                "registry: etcd: unreachable: connection refused",
            ),
            (
                Outer::Repeats(Inner("unreachable: connection refused".into(), io())),
                "registry: TLS: unreachable: connection refused",
            ),
            (Outer::Adds(Inner(String::new(), None)), "registry: etcd"),
        ];
        for (error, want) in cases {
            assert_eq!(stopped("registry", &error).to_string(), want);
        }
    }

    #[tokio::test]
    async fn accepted_connections_have_nodelay_set() -> anyhow::Result<()> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mut accepted = std::pin::pin!(incoming(listener));
        let _client = tokio::net::TcpStream::connect(addr).await?;
        let stream = accepted.next().await.context("a connection")??;
        assert!(stream.get_ref().nodelay()?, "TCP_NODELAY on the accepted socket");
        Ok(())
    }

    #[tokio::test]
    async fn a_plain_listener_would_not_set_it() -> anyhow::Result<()> {
        // What the helper is for: without it the socket keeps Nagle on.
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mut accepted = TcpIncoming::from(listener);
        let _client = tokio::net::TcpStream::connect(addr).await?;
        let stream = accepted.next().await.context("a connection")??;
        assert!(!stream.nodelay()?);
        Ok(())
    }
}
