//! Unary methods answered with bytes encoded already.
//!
//! A server that answers many calls with the same message (GetTile of an
//! unchanged tile) can keep that message's encoding and send it as it is,
//! instead of copying the message out of its cache, encoding it and
//! dropping the copy on every call. [`WithEncoded`] puts such a method in
//! front of a generated server: calls to its path go to the method, whose
//! answer is the encoded message ([`Bytes`]); every other call goes to the
//! generated server. The request is decoded as the generated server would
//! (prost, the same size limits), so callers see no difference.

use std::convert::Infallible;
use std::marker::PhantomData;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use prost::bytes::{BufMut as _, Bytes};
use tonic::Status;
use tonic::body::Body;
use tonic::codec::{Codec, EncodeBuf, Encoder};
use tonic::server::{NamedService, UnaryService};

use crate::limits::MAX_MESSAGE_BYTES;

/// Decodes requests of type `Req` with prost and sends answers that are
/// encoded already.
#[derive(Debug)]
pub struct EncodedCodec<Req>(PhantomData<fn() -> Req>);

impl<Req> Default for EncodedCodec<Req> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<Req: prost::Message + Default + Send + 'static> Codec for EncodedCodec<Req> {
    type Encode = Bytes;
    type Decode = Req;
    type Encoder = BytesEncoder;
    type Decoder = tonic_prost::ProstDecoder<Req>;

    fn encoder(&mut self) -> Self::Encoder {
        BytesEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        tonic_prost::ProstCodec::<Req, Req>::default().decoder()
    }
}

/// Writes an encoded message as it is.
#[derive(Debug, Clone, Copy)]
pub struct BytesEncoder;

impl Encoder for BytesEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

/// The gRPC service `inner` (a generated server, named as it is), with the
/// unary method at `path` answered by `method` instead.
pub struct WithEncoded<S, M, Req> {
    inner: S,
    path: &'static str,
    method: M,
    _req: PhantomData<fn() -> Req>,
}

impl<S: Clone, M: Clone, Req> Clone for WithEncoded<S, M, Req> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            path: self.path,
            method: self.method.clone(),
            _req: PhantomData,
        }
    }
}

impl<S, M, Req> std::fmt::Debug for WithEncoded<S, M, Req> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WithEncoded")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl<S, M, Req> WithEncoded<S, M, Req> {
    /// `inner` with calls to `path` (`/package.Service/Method`) answered
    /// by `method`.
    pub fn new(inner: S, path: &'static str, method: M) -> Self {
        Self {
            inner,
            path,
            method,
            _req: PhantomData,
        }
    }
}

impl<S, M, Req> tower::Service<http::Request<Body>> for WithEncoded<S, M, Req>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
    M: UnaryService<Req, Response = Bytes> + Clone + Send + 'static,
    M::Future: Send + 'static,
    Req: prost::Message + Default + Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        if req.uri().path() != self.path {
            return Box::pin(self.inner.call(req));
        }
        let method = self.method.clone();
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(EncodedCodec::<Req>::default())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES);
            Ok(grpc.unary(method, req).await)
        })
    }
}

impl<S: NamedService, M, Req> NamedService for WithEncoded<S, M, Req> {
    const NAME: &'static str = S::NAME;
}
