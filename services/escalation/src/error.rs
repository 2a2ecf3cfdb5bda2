//! The escalation service's errors and their one mapping to gRPC status
//! codes. No error carries a signing secret.

use tilewave_core::escalation::{Problems, Refused};
use tilewave_service::in_words;

/// Why an escalation call (or a step of the background work) failed.
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
    /// A definition with problems: every one, with its path.
    #[error("{what} is not valid:\n{problems}")]
    Problems {
        /// What was given ("policy \"default\"").
        what: String,
        /// Every problem.
        problems: Problems,
    },
    /// No such incident, policy, schedule, SOP or person.
    #[error("{0}")]
    NotFound(String),
    /// The incident's state does not allow the call; nothing changed.
    #[error("{0}")]
    Refused(#[from] Refused),
    /// The state does not allow the call; nothing changed.
    #[error("{0}")]
    FailedPrecondition(String),
    /// The object moved since the caller read it (stale etag).
    #[error("{0}")]
    Conflict(String),
    /// Another service could not be reached or refused.
    #[error("{what}: {}", in_words(status))]
    Remote {
        /// Which call, to whom.
        what: String,
        /// What it answered.
        status: tonic::Status,
    },
    /// A secret could not be sealed or opened (never its content).
    #[error("{0}")]
    Secret(#[from] tilewave_secrets::Error),
    /// etcd failed or refused.
    #[error("{0}")]
    Store(#[from] tilewave_store::Error),
}

/// `Result` with the escalation service's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<tilewave_service::limits::Violation> for Error {
    fn from(v: tilewave_service::limits::Violation) -> Self {
        Self::invalid(v.field, v.message)
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

    /// Problems of a definition.
    pub fn problems(what: impl Into<String>, problems: Problems) -> Self {
        Self::Problems {
            what: what.into(),
            problems,
        }
    }

    /// Whether it is an etag conflict worth a retry with a fresh read.
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            Error::Store(
                tilewave_store::Error::Conflict { .. } | tilewave_store::Error::AlreadyExists { .. }
            )
        )
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        let msg = e.to_string();
        match e {
            Error::Invalid { .. } | Error::Problems { .. } => tonic::Status::invalid_argument(msg),
            Error::NotFound(_) => tonic::Status::not_found(msg),
            Error::Refused(_) | Error::FailedPrecondition(_) => tonic::Status::failed_precondition(msg),
            Error::Conflict(_) => tonic::Status::aborted(msg),
            // The other service refused (its state forbids it): a
            // precondition here too; it could not be reached: unavailable.
            Error::Remote { status, .. } => match status.code() {
                tonic::Code::FailedPrecondition
                | tonic::Code::InvalidArgument
                | tonic::Code::NotFound
                | tonic::Code::AlreadyExists
                | tonic::Code::PermissionDenied
                | tonic::Code::Aborted => tonic::Status::failed_precondition(msg),
                _ => tonic::Status::unavailable(msg),
            },
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

impl From<tilewave_service::escalation::Invalid> for Error {
    fn from(e: tilewave_service::escalation::Invalid) -> Self {
        Error::Invalid {
            field: e.field,
            message: e.problem,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        let mut p = Problems::default();
        p.push("levels", "a policy needs at least one level");
        let cases = [
            (Error::invalid("id", "required"), tonic::Code::InvalidArgument),
            (Error::problems("policy", p), tonic::Code::InvalidArgument),
            (Error::NotFound("x".into()), tonic::Code::NotFound),
            (
                Error::FailedPrecondition("x".into()),
                tonic::Code::FailedPrecondition,
            ),
            (Error::Conflict("x".into()), tonic::Code::Aborted),
        ];
        for (e, code) in cases {
            assert_eq!(tonic::Status::from(e).code(), code);
        }
    }
}
