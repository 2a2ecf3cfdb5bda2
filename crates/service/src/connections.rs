//! A cap on the connections one server holds, and a bound on how long a
//! connection may send nothing, so that an idle flood (many connections
//! that never speak, or never finish a handshake) cannot exhaust a
//! service's sockets and memory.
//!
//! [`crate::incoming`] wraps every accepted connection in [`Limited`]:
//!
//! - at most [`ConnectionLimits::max`] connections are held at once
//!   (default [`DEFAULT_MAX_CONNECTIONS`], `TILEWAVE_MAX_CONNECTIONS`);
//!   one accepted over the cap is closed at once, counted in
//!   `tilewave_grpc_connections_closed{reason="limit"}` and logged (the
//!   first refusal, then at 2, 4, 8, ... and every 1024th: an idle flood
//!   does not flood the log);
//! - a connection from which nothing was read for
//!   [`ConnectionLimits::idle`] (default [`DEFAULT_IDLE`],
//!   `TILEWAVE_CONNECTION_IDLE_SECS`) is closed (`reason="idle"`). A live
//!   HTTP/2 peer always has something to read well within it: the server
//!   pings an idle connection every
//!   [`HTTP2_KEEPALIVE_INTERVAL`](crate::transport::HTTP2_KEEPALIVE_INTERVAL)
//!   and the peer answers; what is cut is a peer that connected and went
//!   silent (before its TLS handshake or HTTP/2 preface, say). The check
//!   runs on a timer re-armed from its own deadline, so the bound is
//!   between `idle` and twice it.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{Stream, StreamExt as _};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

/// The most connections a server holds at once unless configured: 1024.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// The environment variable that sets the cap (every service).
pub const ENV_MAX_CONNECTIONS: &str = "TILEWAVE_MAX_CONNECTIONS";
/// How long a connection may send nothing unless configured: 60 s (three
/// HTTP/2 keep-alive intervals).
pub const DEFAULT_IDLE: Duration = Duration::from_secs(60);
/// The environment variable that sets the idle bound, in whole seconds.
pub const ENV_IDLE_SECS: &str = "TILEWAVE_CONNECTION_IDLE_SECS";

/// The limits a server accepts connections under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// The most connections held at once (at least 1).
    pub max: usize,
    /// How long a connection may send nothing before it is closed.
    pub idle: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max: DEFAULT_MAX_CONNECTIONS,
            idle: DEFAULT_IDLE,
        }
    }
}

/// A limit in the environment that is not a whole number of at least 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{name}={}: not a whole number of at least 1; unset it for the default ({default})",
    tilewave_core::quote::quoted(value)
)]
pub struct LimitError {
    /// The variable.
    pub name: &'static str,
    /// Its value.
    pub value: String,
    /// The default, as people read it.
    pub default: String,
}

impl ConnectionLimits {
    /// The limits from the environment ([`ENV_MAX_CONNECTIONS`],
    /// [`ENV_IDLE_SECS`]), each defaulted when unset.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, LimitError> {
        let read = |name: &'static str, default: String| -> Result<Option<u64>, LimitError> {
            let Some(value) = env(name) else { return Ok(None) };
            match value.trim().parse::<u64>() {
                Ok(n) if n >= 1 => Ok(Some(n)),
                _ => Err(LimitError { name, value, default }),
            }
        };
        let mut limits = Self::default();
        if let Some(max) = read(ENV_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS.to_string())? {
            limits.max = usize::try_from(max).unwrap_or(usize::MAX);
        }
        if let Some(secs) = read(ENV_IDLE_SECS, format!("{}s", DEFAULT_IDLE.as_secs()))? {
            limits.idle = Duration::from_secs(secs);
        }
        Ok(limits)
    }

    /// The limits of this process's environment; the defaults, with an
    /// error logged, when a variable is invalid (the shared `main`,
    /// [`crate::run`], has already refused to start on that).
    pub fn from_process_env() -> Self {
        Self::from_env(&|name| std::env::var(name).ok()).unwrap_or_else(|e| {
            tracing::error!("{e}");
            Self::default()
        })
    }
}

/// What the connections of one server share: how many are open, how many
/// were refused.
#[derive(Debug)]
struct Shared {
    limits: ConnectionLimits,
    open: AtomicUsize,
    refused: AtomicU64,
}

impl Shared {
    /// Takes a slot, or `None` at the cap.
    fn admit(self: &Arc<Self>) -> Option<Slot> {
        let admitted = self.open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < self.limits.max).then_some(n + 1)
        });
        match admitted {
            Ok(before) => {
                tilewave_telemetry::Metrics::global().connections_open(before + 1);
                Some(Slot(Arc::clone(self)))
            }
            Err(_) => {
                let refused = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
                tilewave_telemetry::Metrics::global().connection_closed("limit");
                if should_log(refused) {
                    tracing::warn!(
                        limit = self.limits.max,
                        refused_so_far = refused,
                        "closed a new connection: the server holds as many as it may \
                         (raise {ENV_MAX_CONNECTIONS} if this is legitimate load)"
                    );
                }
                None
            }
        }
    }
}

/// Whether the `n`th refusal is logged: the first, the powers of two, and
/// every 1024th.
fn should_log(n: u64) -> bool {
    n.is_power_of_two() || n.is_multiple_of(1024)
}

/// One open connection's place under the cap, given back on drop.
#[derive(Debug)]
struct Slot(Arc<Shared>);

impl Drop for Slot {
    fn drop(&mut self) {
        let before = self.0.open.fetch_sub(1, Ordering::AcqRel);
        tilewave_telemetry::Metrics::global().connections_open(before.saturating_sub(1));
    }
}

/// The accepted connections of `incoming` under `limits`: over the cap a
/// connection is closed at once (dropped) and not yielded.
pub fn limit<S, IO, E>(incoming: S, limits: ConnectionLimits) -> impl Stream<Item = Result<Limited<IO>, E>>
where
    S: Stream<Item = Result<IO, E>>,
{
    let shared = Arc::new(Shared {
        limits,
        open: AtomicUsize::new(0),
        refused: AtomicU64::new(0),
    });
    incoming.filter_map(move |accepted| {
        let item = match accepted {
            Ok(io) => shared.admit().map(|slot| Ok(Limited::new(io, slot, limits.idle))),
            Err(e) => Some(Err(e)),
        };
        std::future::ready(item)
    })
}

/// An accepted connection under the cap and the idle bound.
#[derive(Debug)]
pub struct Limited<IO> {
    inner: IO,
    _slot: Slot,
    idle: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    /// Whether anything was read since the timer was last armed.
    read_since: bool,
}

impl<IO> Limited<IO> {
    fn new(inner: IO, slot: Slot, idle: Duration) -> Self {
        Self {
            inner,
            _slot: slot,
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
            read_since: false,
        }
    }

    /// The connection.
    pub fn get_ref(&self) -> &IO {
        &self.inner
    }

    /// Whether the connection has been silent for the idle bound: polls
    /// the timer, re-arming it from its own deadline while reads happen.
    fn idle_expired(&mut self, cx: &mut Context<'_>) -> bool {
        while self.timer.as_mut().poll(cx).is_ready() {
            if !self.read_since {
                return true;
            }
            self.read_since = false;
            let next = self.timer.deadline() + self.idle;
            self.timer.as_mut().reset(next);
        }
        false
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Limited<IO> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    this.read_since = true;
                }
                Poll::Ready(result)
            }
            Poll::Pending => {
                if this.idle_expired(cx) {
                    tilewave_telemetry::Metrics::global().connection_closed("idle");
                    tracing::debug!(idle = ?this.idle, "closed a connection that sent nothing");
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("nothing read for {:?}: connection closed", this.idle),
                    )));
                }
                Poll::Pending
            }
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Limited<IO> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl<IO: Connected> Connected for Limited<IO> {
    type ConnectInfo = IO::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    #[test]
    fn limits_from_the_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(
            ConnectionLimits::from_env(&env(&[])).unwrap(),
            ConnectionLimits::default()
        );
        assert_eq!(
            ConnectionLimits::from_env(&env(&[(ENV_MAX_CONNECTIONS, "8"), (ENV_IDLE_SECS, " 5 ")])).unwrap(),
            ConnectionLimits {
                max: 8,
                idle: Duration::from_secs(5)
            }
        );
        for (name, value) in [
            (ENV_MAX_CONNECTIONS, "0"),
            (ENV_MAX_CONNECTIONS, "lots"),
            (ENV_IDLE_SECS, "-1"),
            (ENV_IDLE_SECS, "1.5"),
        ] {
            let pairs: &'static [(&'static str, &'static str)] = Box::leak(Box::new([(name, value)]));
            let err = ConnectionLimits::from_env(&env(pairs)).unwrap_err();
            assert_eq!((err.name, err.value.as_str()), (name, value));
            assert!(err.to_string().starts_with(&format!("{name}=")), "{err}");
            assert!(err.to_string().contains("unset it for the default"), "{err}");
        }
    }

    #[test]
    fn refusals_are_logged_ever_more_rarely() {
        let logged: Vec<u64> = (1..=5000).filter(|n| should_log(*n)).collect();
        assert_eq!(
            logged,
            [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 3072, 4096]
        );
    }

    /// A listener under `limits`, its address and the stream of accepted
    /// connections.
    async fn serve(
        limits: ConnectionLimits,
    ) -> (
        std::net::SocketAddr,
        impl Stream<Item = io::Result<Limited<TcpStream>>> + Unpin,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        (addr, Box::pin(limit(incoming, limits)))
    }

    /// Whether the server closed `client` (a read sees the end or an error).
    async fn closed(client: &mut TcpStream) -> bool {
        let mut byte = [0_u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_secs(5), client.read(&mut byte)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    #[tokio::test]
    async fn over_the_cap_a_connection_is_closed_at_once_and_a_freed_slot_admits_the_next() {
        let limits = ConnectionLimits {
            max: 2,
            idle: Duration::from_secs(600),
        };
        let (addr, mut accepted) = serve(limits).await;
        let _c1 = TcpStream::connect(addr).await.unwrap();
        let s1 = accepted.next().await.unwrap().unwrap();
        let _c2 = TcpStream::connect(addr).await.unwrap();
        let _s2 = accepted.next().await.unwrap().unwrap();
        let mut c3 = TcpStream::connect(addr).await.unwrap();
        // c3 is accepted and closed without being yielded; the stream
        // waits on.
        let next = tokio::spawn(async move { accepted.next().await.map(|r| r.map(|_| ())) });
        assert!(closed(&mut c3).await, "the third connection is closed");
        assert!(!next.is_finished());
        // A freed slot admits the next connection.
        drop(s1);
        let mut c4 = TcpStream::connect(addr).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), next).await;
        assert!(matches!(got, Ok(Ok(Some(Ok(()))))), "{got:?}");
        c4.write_all(b"x").await.unwrap();
    }

    #[tokio::test]
    async fn a_silent_connection_is_closed_after_the_idle_bound_and_a_talking_one_is_not() {
        let limits = ConnectionLimits {
            max: 8,
            idle: Duration::from_millis(200),
        };
        let (addr, mut accepted) = serve(limits).await;
        let mut silent = TcpStream::connect(addr).await.unwrap();
        let mut s = accepted.next().await.unwrap().unwrap();
        let mut talking = TcpStream::connect(addr).await.unwrap();
        let mut t = accepted.next().await.unwrap().unwrap();
        // The server reads both, as hyper would; the talker sends a byte
        // every 50 ms for a second.
        let silent_read = tokio::spawn(async move {
            let mut buf = [0_u8; 8];
            s.read(&mut buf).await.map_err(|e| e.kind())
        });
        let talker = tokio::spawn(async move {
            for _ in 0..20 {
                talking.write_all(b"p").await.unwrap();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            talking
        });
        let mut got = 0;
        let mut buf = [0_u8; 8];
        while got < 20 {
            got += t.read(&mut buf).await.expect("the talking connection stays open");
        }
        assert_eq!(
            silent_read.await.unwrap(),
            Err(io::ErrorKind::TimedOut),
            "the silent one timed out"
        );
        let _talking = talker.await.unwrap();
        let mut byte = [0_u8; 1];
        drop(silent.read(&mut byte).await);
    }
}
