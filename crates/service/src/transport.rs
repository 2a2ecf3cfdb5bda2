//! The one transport setup of every gRPC server and client: message sizes,
//! keep-alive, connection limits and call deadlines, so that an idle flood
//! or a huge message cannot exhaust a service, and no call waits forever.
//!
//! - Servers are built with [`server`] and accept through
//!   [`crate::incoming`] (`TCP_NODELAY`, TCP keepalive [`TCP_KEEPALIVE`]).
//! - Every generated service and client is wrapped in [`sized!`](crate::sized):
//!   at most [`MAX_MESSAGE_BYTES`] decoded or encoded.
//! - Clients dial through [`endpoint`]: a connect timeout, a deadline on
//!   every call and the same keep-alive.

use std::time::Duration;

use tonic::transport::{Endpoint, Server};

pub use crate::limits::MAX_MESSAGE_BYTES;

/// How often an HTTP/2 PING checks a quiet connection: every 20 s, on
/// servers and clients. A peer that vanished (a killed process, a dropped
/// NAT entry) is found without waiting for TCP's hours-long timeout.
pub const HTTP2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(20);

/// How long a PING may go unanswered before the connection is closed: 10 s.
pub const HTTP2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// TCP keepalive on accepted and dialled sockets: the first probe after
/// 60 s of silence, so that a half-open socket (no HTTP/2 traffic at all,
/// e.g. a client that never finished its handshake) is reaped by the
/// kernel.
pub const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// The most calls one connection may have in flight on a server: 64.
/// A single client (the CLI, a peer service) never needs more; one greedy
/// connection cannot take every worker.
pub const CONCURRENCY_PER_CONNECTION: usize = 64;

/// The most HTTP/2 streams one connection may open at once on a server:
/// 128 (watch streams included, which the per-connection concurrency limit
/// does not hold once their headers are sent). hyper's default is 200.
pub const MAX_CONCURRENT_STREAMS: u32 = 128;

/// The largest request header block a server accepts: 64 KiB (hyper's
/// default is 16 MiB). tilewave's metadata is a trace context and an
/// actor, well under 1 KiB.
pub const MAX_HEADER_LIST_BYTES: u32 = 64 * 1024;

/// A server builder with every limit of this module set: HTTP/2 keep-alive
/// ([`HTTP2_KEEPALIVE_INTERVAL`], [`HTTP2_KEEPALIVE_TIMEOUT`]), at most
/// [`CONCURRENCY_PER_CONNECTION`] calls in flight and
/// [`MAX_CONCURRENT_STREAMS`] streams per connection, and request headers
/// of at most [`MAX_HEADER_LIST_BYTES`]. Accept through
/// [`crate::incoming`] (TCP keepalive) and wrap each service in
/// [`sized!`](crate::sized).
pub fn server() -> Server {
    Server::builder()
        .http2_keepalive_interval(Some(HTTP2_KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(HTTP2_KEEPALIVE_TIMEOUT))
        .concurrency_limit_per_connection(CONCURRENCY_PER_CONNECTION)
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .http2_max_header_list_size(MAX_HEADER_LIST_BYTES)
}

/// An endpoint for `url` with a connect timeout and a deadline on every
/// call, both `timeout`, HTTP/2 keep-alive ([`HTTP2_KEEPALIVE_INTERVAL`],
/// [`HTTP2_KEEPALIVE_TIMEOUT`]) and TCP keepalive ([`TCP_KEEPALIVE`]).
///
/// A client that must hold a stream longer than `timeout` (`--watch`)
/// uses [`streaming_endpoint`] instead.
///
/// # Errors
///
/// When `url` is not a valid URI.
pub fn endpoint(url: impl Into<String>, timeout: Duration) -> Result<Endpoint, tonic::transport::Error> {
    Ok(configure(Endpoint::from_shared(url.into())?, timeout))
}

/// [`endpoint`]'s settings on an endpoint made elsewhere (with TLS, by
/// `tilewave_tls::endpoint`).
pub fn configure(endpoint: Endpoint, timeout: Duration) -> Endpoint {
    configure_streaming(endpoint, timeout).timeout(timeout)
}

/// As [`endpoint`], without the deadline on each call (a stream may last
/// longer); connecting is still bounded by `connect_timeout`. Every unary
/// call on such a channel must set its own deadline.
///
/// # Errors
///
/// When `url` is not a valid URI.
pub fn streaming_endpoint(
    url: impl Into<String>,
    connect_timeout: Duration,
) -> Result<Endpoint, tonic::transport::Error> {
    Ok(configure_streaming(
        Endpoint::from_shared(url.into())?,
        connect_timeout,
    ))
}

/// [`streaming_endpoint`]'s settings on an endpoint made elsewhere.
pub fn configure_streaming(endpoint: Endpoint, connect_timeout: Duration) -> Endpoint {
    endpoint
        .connect_timeout(connect_timeout)
        .http2_keep_alive_interval(HTTP2_KEEPALIVE_INTERVAL)
        .keep_alive_timeout(HTTP2_KEEPALIVE_TIMEOUT)
        .tcp_keepalive(Some(TCP_KEEPALIVE))
}

/// Sets the message size limits ([`MAX_MESSAGE_BYTES`], decoding and
/// encoding) on a generated gRPC server or client, e.g.
/// `sized!(RegistryServiceServer::new(registry))`.
#[macro_export]
macro_rules! sized {
    ($service:expr) => {
        $service
            .max_decoding_message_size($crate::limits::MAX_MESSAGE_BYTES)
            .max_encoding_message_size($crate::limits::MAX_MESSAGE_BYTES)
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_has_a_deadline_and_a_bad_url_is_an_error() {
        let e = endpoint("http://127.0.0.1:1", Duration::from_secs(3)).unwrap();
        assert_eq!(e.uri().port_u16(), Some(1));
        assert!(endpoint("http://bad host", Duration::from_secs(3)).is_err());
    }

    #[test]
    fn keepalive_times_out_before_the_next_ping() {
        const { assert!(HTTP2_KEEPALIVE_TIMEOUT.as_secs() < HTTP2_KEEPALIVE_INTERVAL.as_secs()) };
    }
}
