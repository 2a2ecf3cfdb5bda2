//! Random and malformed gRPC messages for the services' property tests
//! (feature `rpc-fuzz`): send any bytes to any RPC of a running service and
//! judge its answer.
//!
//! Every message goes through [`call_raw`] as bytes, so a test can send a
//! typed message (`prost::Message::encode_to_vec`), a random wire-format
//! message ([`protobuf`]) or bytes that are no message at all. An answer is
//! fine when the call succeeded or [`refusal_problem`] finds nothing wrong
//! with the refusal: an expected code, a message, and for INVALID_ARGUMENT
//! the field it is about.

use std::time::Duration;

use bytes::{Buf as _, BufMut as _};
use proptest::prelude::*;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt as _;

/// One RPC of a service: its gRPC path and whether it answers with a
/// stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rpc {
    /// `/package.Service/Method`.
    pub path: &'static str,
    /// A server-streaming RPC (a watch).
    pub streaming: bool,
}

impl Rpc {
    /// A unary RPC.
    pub const fn unary(path: &'static str) -> Self {
        Self {
            path,
            streaming: false,
        }
    }

    /// A server-streaming RPC.
    pub const fn streaming(path: &'static str) -> Self {
        Self {
            path,
            streaming: true,
        }
    }

    /// The method's name (the last path segment).
    pub fn name(&self) -> &'static str {
        self.path.rsplit('/').next().unwrap_or(self.path)
    }
}

/// The answers seen per RPC and code: printed after a run, and to check
/// that every RPC was called and some calls got past the first check.
#[derive(Debug, Default)]
pub struct Seen(std::sync::Mutex<std::collections::BTreeMap<(&'static str, String), usize>>);

impl Seen {
    /// Counts one answer of `rpc`.
    pub fn count(&self, rpc: Rpc, answer: &Result<(), Status>) {
        let code = match answer {
            Ok(()) => "OK".to_owned(),
            Err(s) => format!("{:?}", s.code()),
        };
        let mut seen = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *seen.entry((rpc.name(), code)).or_default() += 1;
    }

    /// Fails unless every one of `rpcs` was called.
    ///
    /// # Errors
    ///
    /// Names the RPCs never called.
    pub fn every_rpc_answered(&self, rpcs: &[Rpc]) -> anyhow::Result<()> {
        let seen = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let missing: Vec<&str> = rpcs
            .iter()
            .map(Rpc::name)
            .filter(|name| !seen.keys().any(|(n, _)| n == name))
            .collect();
        anyhow::ensure!(missing.is_empty(), "never called: {}", missing.join(", "));
        Ok(())
    }
}

impl std::fmt::Display for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let seen = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut last = "";
        for ((rpc, code), n) in seen.iter() {
            if *rpc != last {
                if !last.is_empty() {
                    writeln!(f)?;
                }
                write!(f, "  {rpc}:")?;
                last = rpc;
            }
            write!(f, " {code} {n}")?;
        }
        Ok(())
    }
}

/// A codec that sends and receives messages as raw bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let n = src.remaining();
        Ok(Some(src.copy_to_bytes(n).to_vec()))
    }
}

/// Sends `body` to `rpc` as it is, with the metadata `headers`. A unary
/// call has `wait` as its deadline; a stream is read until its first
/// message or its end, at most `wait` (a watch with nothing to say yet is
/// an answer too), then dropped.
///
/// # Errors
///
/// The service's refusal, or the transport's failure (UNAVAILABLE,
/// DEADLINE_EXCEEDED: what [`refusal_problem`] flags).
pub async fn call_raw(
    channel: Channel,
    rpc: Rpc,
    body: Vec<u8>,
    headers: &[(&'static str, &str)],
    wait: Duration,
) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(format!("the channel is not ready: {e}")))?;
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(rpc.path);
    let mut req = tonic::Request::new(body);
    for (k, v) in headers {
        if let Ok(v) = v.parse() {
            req.metadata_mut().insert(*k, v);
        }
    }
    if rpc.streaming {
        let call = async {
            let mut stream = grpc.server_streaming(req, path, RawCodec).await?.into_inner();
            match tokio::time::timeout(wait, stream.message()).await {
                Ok(first) => first.map(|_| ()),
                Err(_) => Ok(()),
            }
        };
        match tokio::time::timeout(wait * 2, call).await {
            Ok(r) => r,
            Err(_) => Err(Status::deadline_exceeded("the stream did not open")),
        }
    } else {
        req.set_timeout(wait);
        grpc.unary::<_, Vec<u8>, _>(req, path, RawCodec).await.map(|_| ())
    }
}

/// What is wrong with a refusal, if anything. A refusal must carry a
/// message (its reason), and INVALID_ARGUMENT must name the field (a
/// `google.rpc.BadRequest` with a field per violation, a message of the
/// form `field: what is wrong`, or a configuration's JSON paths). UNKNOWN, UNAVAILABLE, DEADLINE_EXCEEDED,
/// CANCELLED, DATA_LOSS and INTERNAL (apart from the transport's own
/// "failed to decode Protobuf message" for bytes that are no message) are
/// wrong for any input: a panic, a hang or a bug shows up as one of them.
pub fn refusal_problem(status: &Status) -> Option<String> {
    let msg = status.message();
    let short: String = msg.chars().take(300).collect();
    if msg.trim().is_empty() {
        return Some(format!("{:?} without a message", status.code()));
    }
    match status.code() {
        Code::InvalidArgument => {
            (!names_a_field(status)).then(|| format!("INVALID_ARGUMENT naming no field: {short}"))
        }
        Code::NotFound
        | Code::AlreadyExists
        | Code::FailedPrecondition
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unimplemented
        | Code::PermissionDenied
        | Code::Unauthenticated
        | Code::ResourceExhausted => None,
        Code::Internal if msg.starts_with("failed to decode Protobuf message") => None,
        code => Some(format!("{code:?}: {short}")),
    }
}

fn names_a_field(status: &Status) -> bool {
    if let Some(bad) = status.get_details_bad_request()
        && !bad.field_violations.is_empty()
    {
        return bad.field_violations.iter().all(|v| !v.field.is_empty());
    }
    // A configuration's errors, too many for details, listed by JSON path.
    if status.message().contains("$.") || status.message().contains("$[") {
        return true;
    }
    status.message().split_once(": ").is_some_and(|(field, _)| {
        !field.is_empty()
            && field
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']' | '$'))
    })
}

/// Strings a client might send: one of `samples` (valid values, so that a
/// call gets past its first check), short ids, any text (control
/// characters included), and text longer than any limit.
pub fn text(samples: &'static [&'static str]) -> BoxedStrategy<String> {
    let sample = if samples.is_empty() {
        Just(String::new()).boxed()
    } else {
        proptest::sample::select(samples).prop_map(str::to_owned).boxed()
    };
    prop_oneof![
        4 => sample,
        2 => "[a-z0-9:-]{0,12}",
        2 => any::<String>(),
        1 => "[\\x00-\\x1f\\x7f]{1,4}",
        1 => (250usize..6000).prop_map(|n| "x".repeat(n)),
    ]
    .boxed()
}

/// A list of strings: a few from [`text`], or more entries than any limit.
pub fn texts(samples: &'static [&'static str]) -> BoxedStrategy<Vec<String>> {
    prop_oneof![
        6 => proptest::collection::vec(text(samples), 0..4),
        1 => (1025usize..1100).prop_map(|n| vec!["aws:us-east-1".to_owned(); n]),
    ]
    .boxed()
}

/// An int64: small, a boundary, or any.
pub fn int64() -> BoxedStrategy<i64> {
    prop_oneof![
        3 => -2i64..6,
        1 => Just(i64::MAX),
        1 => Just(i64::MIN),
        1 => any::<i64>(),
    ]
    .boxed()
}

/// An int32 (an enum value, a count): small, a boundary, or any.
pub fn int32() -> BoxedStrategy<i32> {
    prop_oneof![
        4 => -1i32..12,
        1 => Just(i32::MAX),
        1 => Just(i32::MIN),
        1 => any::<i32>(),
    ]
    .boxed()
}

/// Bytes in protobuf's wire format with random fields (numbers 1 to 20,
/// every wire type, strings that are text or not, nested messages), or
/// bytes that are no message at all.
pub fn protobuf() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        6 => proptest::collection::vec(field(true), 0..8).prop_map(|f| f.concat()),
        1 => proptest::collection::vec(any::<u8>(), 0..64),
    ]
    .boxed()
}

fn field(nest: bool) -> BoxedStrategy<Vec<u8>> {
    let nested = if nest {
        proptest::collection::vec(field(false), 0..4)
            .prop_map(|f| f.concat())
            .boxed()
    } else {
        Just(Vec::new()).boxed()
    };
    let payload = prop_oneof![
        any::<u64>().prop_map(|v| (0u8, varint(v))),
        any::<u64>().prop_map(|v| (1u8, v.to_le_bytes().to_vec())),
        prop_oneof![
            text(&[]).prop_map(String::into_bytes),
            proptest::collection::vec(any::<u8>(), 0..16),
            nested,
        ]
        .prop_map(|b| (2u8, [varint(b.len() as u64), b].concat())),
        any::<u32>().prop_map(|v| (5u8, v.to_le_bytes().to_vec())),
    ];
    (1u64..=20, payload)
        .prop_map(|(number, (wire, payload))| [varint(number << 3 | u64::from(wire)), payload].concat())
        .boxed()
}

fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(10);
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// A timestamp with any seconds and nanos (out of range ones too), or none.
pub fn timestamp() -> BoxedStrategy<Option<prost_types::Timestamp>> {
    proptest::option::of(
        (int64(), int32()).prop_map(|(seconds, nanos)| prost_types::Timestamp { seconds, nanos }),
    )
    .boxed()
}

/// A duration with any seconds and nanos (out of range ones too), or none.
pub fn duration() -> BoxedStrategy<Option<prost_types::Duration>> {
    proptest::option::of(
        (int64(), int32()).prop_map(|(seconds, nanos)| prost_types::Duration { seconds, nanos }),
    )
    .boxed()
}

/// The runner of a random-input test: `PROPTEST_CASES` cases (512 when
/// unset), no persisted failures, a bounded shrink.
pub fn runner() -> proptest::test_runner::TestRunner {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512);
    proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 64,
        ..proptest::test_runner::Config::default()
    })
}

/// What a refused call must leave as it was: etcd under `prefix`, but for
/// keys under one of `ignored` (a replica's own bookkeeping, which changes
/// whatever the calls do).
#[derive(Debug, Clone, Copy)]
pub struct Unchanged<'a> {
    /// The cluster to dump.
    pub etcd: &'a crate::EtcdCluster,
    /// The services' key prefix.
    pub prefix: &'a str,
    /// Key prefixes a refusal may still change.
    pub ignored: &'a [&'a str],
}

/// Sends `body` to `rpc` (as the actor `fuzz`, waiting at most `wait`) and
/// judges the answer: a success is fine; a refusal must pass
/// [`refusal_problem`] and leave `unchanged` as it was.
pub async fn judge(
    unchanged: Unchanged<'_>,
    channel: Channel,
    rpc: Rpc,
    body: Vec<u8>,
    seen: &Seen,
    wait: Duration,
) -> Result<(), proptest::test_runner::TestCaseError> {
    use proptest::test_runner::TestCaseError;
    let dump = || async {
        unchanged
            .etcd
            .dump(unchanged.prefix)
            .await
            .map_err(|e| TestCaseError::fail(format!("dump: {e:#}")))
    };
    let before = dump().await?;
    let answer = call_raw(channel, rpc, body, &[("x-tilewave-actor", "fuzz")], wait).await;
    seen.count(rpc, &answer);
    let Err(status) = answer else {
        return Ok(());
    };
    if let Some(problem) = refusal_problem(&status) {
        return Err(TestCaseError::fail(format!("{}: {problem}", rpc.name())));
    }
    let after = dump().await?;
    let changed: Vec<&String> = before
        .keys()
        .chain(after.keys())
        .filter(|k| !unchanged.ignored.iter().any(|i| k.starts_with(i)) && before.get(*k) != after.get(*k))
        .collect();
    if changed.is_empty() {
        Ok(())
    } else {
        Err(TestCaseError::fail(format!(
            "{} was refused ({:?}: {}) but etcd changed: {changed:?}",
            rpc.name(),
            status.code(),
            status.message().chars().take(200).collect::<String>()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints() {
        assert_eq!(varint(0), [0]);
        assert_eq!(varint(150), [0x96, 0x01]);
        assert_eq!(varint(u64::MAX).len(), 10);
    }

    #[test]
    fn refusals() {
        assert_eq!(
            refusal_problem(&Status::invalid_argument("reason: 5000 characters")),
            None
        );
        assert_eq!(refusal_problem(&Status::not_found("no tile \"x\"")), None);
        assert!(refusal_problem(&Status::invalid_argument("bad input")).is_some());
        assert_eq!(
            refusal_problem(&Status::invalid_argument(
                "the configuration has 2 errors: $.name, $.hostnames[0]"
            )),
            None
        );
        assert!(refusal_problem(&Status::invalid_argument("")).is_some());
        assert!(refusal_problem(&Status::unknown("panicked")).is_some());
        assert!(refusal_problem(&Status::unavailable("connection reset")).is_some());
        assert_eq!(
            refusal_problem(&Status::internal(
                "failed to decode Protobuf message: X.id: invalid string"
            )),
            None
        );
        assert!(refusal_problem(&Status::internal("oops")).is_some());
    }
}
