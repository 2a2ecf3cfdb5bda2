//! The store's errors, and how they reach gRPC callers.
//!
//! Every failure a caller can act on has its own variant: a stale etag
//! ([`Error::Conflict`], `ABORTED`: re-read and retry), a lost ownership
//! ([`Error::Fenced`], `FAILED_PRECONDITION`: stop working on it), an etcd
//! that cannot answer ([`Error::Unavailable`] / [`Error::DeadlineExceeded`],
//! `UNAVAILABLE`: try again later). `From<Error> for tonic::Status` is the one
//! mapping services use; it matches every variant by name.

use jiff::Timestamp;
use tilewave_core::quote::quoted;

/// A boxed error, the source of [`Error::Unavailable`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The store's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong when talking to etcd through the store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The key does not exist.
    #[error("not found: {}", quoted(key))]
    NotFound {
        /// The full etcd key.
        key: String,
    },
    /// A create-if-absent found the key already there.
    #[error("already exists: {}", quoted(key))]
    AlreadyExists {
        /// The full etcd key.
        key: String,
    },
    /// The object moved since it was read: the etag (mod revision) named by
    /// the change is stale, or the object is gone. Nothing was changed.
    #[error("conflict: {} changed since it was read", quoted(key))]
    Conflict {
        /// The full etcd key whose compare failed.
        key: String,
    },
    /// The writer no longer owns the work: the owner key's create revision is
    /// not the fencing token the write carried. Nothing was changed.
    #[error("fenced: {} is no longer owned under token {token}", quoted(owner_key))]
    Fenced {
        /// The owner key (`owners/<work>`).
        owner_key: String,
        /// The stale fencing token.
        token: i64,
    },
    /// etcd could not be reached or has no quorum, and retrying within the
    /// operation's deadline did not help. For a write this can mean the
    /// outcome is unknown (see [`crate::Store::commit`]).
    #[error("etcd unavailable during {op}: {source}")]
    Unavailable {
        /// What the store was doing.
        op: &'static str,
        /// The last error seen.
        #[source]
        source: BoxError,
    },
    /// The operation's deadline passed without an answer from etcd.
    #[error("deadline exceeded during {op}")]
    DeadlineExceeded {
        /// What the store was doing.
        op: &'static str,
    },
    /// A value in etcd is not the protobuf message expected at its key.
    #[error("cannot decode the value at {}: {source}", quoted(key))]
    Decode {
        /// The full etcd key.
        key: String,
        /// The decoder's complaint.
        #[source]
        source: prost::DecodeError,
    },
    /// The virtual clock only moves forward.
    #[error("the clock only moves forward: now {current}, requested {requested}")]
    ClockBackwards {
        /// The clock's time when the change was refused.
        current: Timestamp,
        /// The time the change would have set.
        requested: Timestamp,
    },
    /// The operation needs the virtual clock, but the system clock is in use.
    #[error("the system clock is in use; the clock cannot be changed")]
    ClockNotVirtual,
    /// The caller passed something the store refuses.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// etcd refused a request for a reason retrying will not fix.
    #[error("etcd error during {op}: {source}")]
    Etcd {
        /// What the store was doing.
        op: &'static str,
        /// etcd-client's error.
        #[source]
        source: etcd_client::Error,
    },
}

impl Error {
    /// Builds an [`Error::InvalidArgument`].
    pub fn invalid(what: impl Into<String>) -> Self {
        Self::InvalidArgument(what.into())
    }

    /// Whether the operation may succeed if retried later unchanged.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::DeadlineExceeded { .. })
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        let msg = e.to_string();
        match e {
            Error::NotFound { .. } => tonic::Status::not_found(msg),
            Error::AlreadyExists { .. } => tonic::Status::already_exists(msg),
            Error::Conflict { .. } => tonic::Status::aborted(msg),
            Error::Fenced { .. } => tonic::Status::failed_precondition(msg),
            Error::Unavailable { .. } => tonic::Status::unavailable(msg),
            Error::DeadlineExceeded { .. } => tonic::Status::unavailable(msg),
            Error::Decode { .. } => tonic::Status::data_loss(msg),
            Error::ClockBackwards { .. } => tonic::Status::failed_precondition(msg),
            Error::ClockNotVirtual => tonic::Status::failed_precondition(msg),
            Error::InvalidArgument(_) => tonic::Status::invalid_argument(msg),
            Error::Etcd { .. } => tonic::Status::internal(msg),
        }
    }
}

/// Whether an etcd-client error is worth retrying: the request did not reach a
/// member that could serve it (connection refused or reset, a member without a
/// leader, a leader change, a server-side timeout).
pub(crate) fn is_transient(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::GRpcStatus(s) => {
            matches!(
                s.code(),
                tonic::Code::Unavailable
                    | tonic::Code::DeadlineExceeded
                    | tonic::Code::Cancelled
                    | tonic::Code::ResourceExhausted
            ) || (s.code() == tonic::Code::Unknown && s.message().contains("transport"))
        }
        etcd_client::Error::TransportError(_)
        | etcd_client::Error::IoError(_)
        | etcd_client::Error::LeaseKeepAliveError(_)
        | etcd_client::Error::WatchError(_) => true,
        etcd_client::Error::InvalidArgs(_)
        | etcd_client::Error::InvalidUri(_)
        | etcd_client::Error::Utf8Error(_)
        | etcd_client::Error::ElectError(_)
        | etcd_client::Error::InvalidMetadataValue(_)
        | etcd_client::Error::EndpointError(_)
        | etcd_client::Error::EndpointsNotManaged
        | etcd_client::Error::Internal(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes() {
        let cases: Vec<(Error, tonic::Code)> = vec![
            (Error::NotFound { key: "k".into() }, tonic::Code::NotFound),
            (
                Error::AlreadyExists { key: "k".into() },
                tonic::Code::AlreadyExists,
            ),
            (Error::Conflict { key: "k".into() }, tonic::Code::Aborted),
            (
                Error::Fenced {
                    owner_key: "o".into(),
                    token: 3,
                },
                tonic::Code::FailedPrecondition,
            ),
            (
                Error::Unavailable {
                    op: "get",
                    source: "no leader".into(),
                },
                tonic::Code::Unavailable,
            ),
            (Error::DeadlineExceeded { op: "get" }, tonic::Code::Unavailable),
            (Error::ClockNotVirtual, tonic::Code::FailedPrecondition),
            (Error::invalid("x"), tonic::Code::InvalidArgument),
        ];
        for (e, code) in cases {
            assert_eq!(tonic::Status::from(e).code(), code);
        }
    }

    #[test]
    fn transient_classification() {
        let unavailable = etcd_client::Error::GRpcStatus(tonic::Status::unavailable("etcdserver: no leader"));
        assert!(is_transient(&unavailable));
        let invalid = etcd_client::Error::GRpcStatus(tonic::Status::invalid_argument("bad"));
        assert!(!is_transient(&invalid));
    }
}
