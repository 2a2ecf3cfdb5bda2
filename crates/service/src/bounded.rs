//! A last-resort bound on the message of every error a server returns.
//!
//! Every error message quotes input only through `tilewave_core::quote`;
//! this layer is the net below that rule: a `grpc-message` longer than
//! [`MAX_MESSAGE_BYTES`] (percent-encoded, as it travels) is cut there, at
//! a character boundary, and says so; details beyond [`MAX_DETAILS_BYTES`]
//! are dropped. Without it one unbounded quote (a
//! 1 MB id echoed back) makes a header too large for any client, which then
//! reports RESOURCE_EXHAUSTED instead of the error.
//!
//! It sees the errors a handler returns (tonic sends them as headers, in a
//! trailers-only response); errors in the trailers of a stream that already
//! sent messages are left as they are.

use std::task::{Context, Poll};

use http::HeaderValue;

/// The most bytes of a `grpc-message` header (percent-encoded).
pub const MAX_MESSAGE_BYTES: usize = 1024;
/// The most bytes of the error's details (`grpc-status-details-bin`, e.g.
/// the field violations of a `BadRequest`): larger details are dropped, as
/// a binary message cannot be cut; the message still says what is wrong.
pub const MAX_DETAILS_BYTES: usize = 8 * 1024;

const GRPC_MESSAGE: &str = "grpc-message";
const GRPC_DETAILS: &str = "grpc-status-details-bin";

/// The layer for `tonic::transport::Server::builder().layer(..)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct BoundedMessages;

impl<S> tower::Layer<S> for BoundedMessages {
    type Service = BoundedMessagesService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BoundedMessagesService { inner }
    }
}

/// The service [`BoundedMessages`] wraps around a server.
#[derive(Debug, Clone)]
pub struct BoundedMessagesService<S> {
    inner: S,
}

type Bound<B> = fn(http::Response<B>) -> http::Response<B>;

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for BoundedMessagesService<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = futures::future::MapOk<S::Future, Bound<ResBody>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        use futures::TryFutureExt as _;
        self.inner.call(req).map_ok(bound_response as Bound<ResBody>)
    }
}

fn bound_response<B>(mut resp: http::Response<B>) -> http::Response<B> {
    let cut = resp.headers().get(GRPC_MESSAGE).and_then(|v| bound(v.as_bytes()));
    if let Some(v) = cut {
        resp.headers_mut().insert(GRPC_MESSAGE, v);
    }
    if resp
        .headers()
        .get(GRPC_DETAILS)
        .is_some_and(|v| v.len() > MAX_DETAILS_BYTES)
    {
        resp.headers_mut().remove(GRPC_DETAILS);
    }
    resp
}

/// The header cut to [`MAX_MESSAGE_BYTES`], or `None` when it fits.
fn bound(encoded: &[u8]) -> Option<HeaderValue> {
    if encoded.len() <= MAX_MESSAGE_BYTES {
        return None;
    }
    const NOTE: usize = 64;
    let mut end = MAX_MESSAGE_BYTES - NOTE;
    // Not inside a `%XX` escape.
    if let Some(p) = encoded[..end].iter().rposition(|b| *b == b'%')
        && end - p < 3
    {
        end = p;
    }
    // Not inside a UTF-8 character: drop a trailing partial one (escaped
    // continuation bytes %80-%BF, then its escaped lead byte).
    let escaped = |at: usize| -> Option<u8> {
        let h = encoded.get(at..at + 3)?;
        if h[0] != b'%' {
            return None;
        }
        u8::from_str_radix(std::str::from_utf8(&h[1..]).ok()?, 16).ok()
    };
    while end >= 3 && escaped(end - 3).is_some_and(|b| (0x80..0xC0).contains(&b)) {
        end -= 3;
    }
    if end >= 3 && escaped(end - 3).is_some_and(|b| b >= 0xC0) {
        end -= 3;
    }
    let mut out = encoded[..end].to_vec();
    out.extend_from_slice(
        format!(
            "%E2%80%A6%20(message%20cut%20at%20{end}%20of%20{}%20bytes)",
            encoded.len()
        )
        .as_bytes(),
    );
    HeaderValue::from_bytes(&out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(v: &HeaderValue) -> String {
        // Percent-decoding, as a client does.
        let b = v.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' && i + 2 < b.len() {
                out.push(u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap(), 16).unwrap());
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8(out).expect("valid UTF-8 after the cut")
    }

    #[test]
    fn short_messages_pass_unchanged() {
        assert_eq!(bound(b"no%20tile%20%22x%22"), None);
        assert_eq!(bound(&[b'a'; MAX_MESSAGE_BYTES]), None);
    }

    #[test]
    fn long_messages_are_cut_on_a_character_and_say_so() {
        // ASCII, escapes, and multi-byte characters (é is %C3%A9) at every
        // offset of the cut.
        for pad in 0..6 {
            let mut msg = "x".repeat(pad).into_bytes();
            for _ in 0..2000 {
                msg.extend_from_slice(b"%C3%A9a%20");
            }
            let v = bound(&msg).expect("cut");
            assert!(v.len() <= MAX_MESSAGE_BYTES, "{}", v.len());
            let text = decoded(&v);
            assert!(text.contains("… (message cut at"), "{text}");
            assert!(text.starts_with(&"x".repeat(pad)), "{text}");
        }
    }

    #[test]
    fn the_layer_cuts_the_header_of_a_response() {
        let long = "a".repeat(1 << 20);
        let resp = http::Response::builder()
            .header(GRPC_MESSAGE, long.as_str())
            .header(GRPC_DETAILS, long.as_str())
            .body(())
            .unwrap();
        let resp = bound_response(resp);
        let v = resp.headers().get(GRPC_MESSAGE).unwrap();
        assert!(v.len() <= MAX_MESSAGE_BYTES);
        assert!(decoded(v).ends_with(&format!("of {} bytes)", 1 << 20)));
        assert!(resp.headers().get(GRPC_DETAILS).is_none());
        let small = http::Response::builder()
            .header(GRPC_MESSAGE, "no%20tile")
            .header(GRPC_DETAILS, "CAM")
            .body(())
            .unwrap();
        let small = bound_response(small);
        assert_eq!(small.headers().get(GRPC_MESSAGE).unwrap(), "no%20tile");
        assert_eq!(small.headers().get(GRPC_DETAILS).unwrap(), "CAM");
    }
}
