//! The credentials service's errors and their one mapping to gRPC status
//! codes. No error carries a secret: messages name fields and
//! fingerprints only.

use tilewave_service::in_words;

/// Why a credentials call (or a step of the driver) failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input, naming the field.
    #[error("{field}: {message}")]
    Invalid {
        /// The request field.
        field: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// No such tile, credential or rotation.
    #[error("{0}")]
    NotFound(String),
    /// The state does not allow the call; nothing was changed.
    #[error("{0}")]
    FailedPrecondition(String),
    /// The object moved since the caller read it (stale etag).
    #[error("{0}")]
    Conflict(String),
    /// An agent could not be reached or refused.
    #[error("{what}: {}", in_words(status))]
    Remote {
        /// Which call, to whom.
        what: String,
        /// What it answered.
        status: tonic::Status,
    },
    /// No agent is registered for a region.
    #[error("{0}")]
    Agent(#[from] tilewave_clients::AgentError),
    /// A secret could not be sealed or opened (never its content).
    #[error("{0}")]
    Secret(#[from] tilewave_secrets::Error),
    /// etcd failed or refused.
    #[error("{0}")]
    Store(#[from] tilewave_store::Error),
}

/// `Result` with the credentials service's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<tilewave_service::limits::Violation> for Error {
    fn from(v: tilewave_service::limits::Violation) -> Self {
        Self::invalid(v.field, v.message)
    }
}

impl From<tilewave_core::rotation::Refused> for Error {
    fn from(r: tilewave_core::rotation::Refused) -> Self {
        Self::FailedPrecondition(r.to_string())
    }
}

impl From<tilewave_core::rotation::VersionError> for Error {
    fn from(e: tilewave_core::rotation::VersionError) -> Self {
        Self::FailedPrecondition(e.to_string())
    }
}

impl Error {
    /// Bad input at one field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        let msg = e.to_string();
        match e {
            Error::Invalid { .. } => tonic::Status::invalid_argument(msg),
            Error::NotFound(_) => tonic::Status::not_found(msg),
            Error::FailedPrecondition(_) => tonic::Status::failed_precondition(msg),
            Error::Conflict(_) => tonic::Status::aborted(msg),
            Error::Remote { .. } | Error::Agent(_) => tonic::Status::unavailable(msg),
            Error::Secret(s) => match s {
                tilewave_secrets::Error::UnknownKek { .. } => tonic::Status::failed_precondition(msg),
                _ => tonic::Status::invalid_argument(msg),
            },
            Error::Store(s) => match s {
                tilewave_store::Error::NotFound { .. } => tonic::Status::not_found(msg),
                tilewave_store::Error::Conflict { .. } | tilewave_store::Error::AlreadyExists { .. } => {
                    tonic::Status::aborted(msg)
                }
                tilewave_store::Error::Fenced { .. } => tonic::Status::aborted(msg),
                tilewave_store::Error::InvalidArgument(_) => tonic::Status::invalid_argument(msg),
                _ => tonic::Status::unavailable(msg),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        let cases = [
            (
                Error::invalid("tile_id", "required"),
                tonic::Code::InvalidArgument,
            ),
            (Error::NotFound("x".into()), tonic::Code::NotFound),
            (
                Error::FailedPrecondition("x".into()),
                tonic::Code::FailedPrecondition,
            ),
            (Error::Conflict("x".into()), tonic::Code::Aborted),
            (
                Error::Agent(tilewave_clients::AgentError::NoAgent {
                    region: "aws:x".into(),
                }),
                tonic::Code::Unavailable,
            ),
            (
                Error::Secret(tilewave_secrets::Error::Empty),
                tonic::Code::InvalidArgument,
            ),
        ];
        for (e, code) in cases {
            assert_eq!(tonic::Status::from(e).code(), code);
        }
    }
}
