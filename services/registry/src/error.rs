//! The registry's errors and their one mapping to gRPC status codes.
//!
//! Bad input is `INVALID_ARGUMENT` carrying a `google.rpc.BadRequest` with one
//! field violation per problem (the JSON path for configuration errors), so
//! that a client can show every problem at once.

use tonic::Code;
use tonic_types::{ErrorDetails, StatusExt};

/// One problem with a request: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The request field or JSON path, e.g. `ga_time` or
    /// `$.endpoints.connect_path`.
    pub field: String,
    /// What is wrong there and what to do.
    pub description: String,
}

impl Violation {
    /// A violation at `field`.
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

/// Why a registry call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed; every problem is listed.
    #[error("{message}")]
    Invalid {
        /// A one-line summary.
        message: String,
        /// Every problem found, each with its field or JSON path.
        violations: Vec<Violation>,
    },
    /// No tile with this id (or no such revision of it).
    #[error("{0}")]
    NotFound(String),
    /// The tile already exists.
    #[error("{0}")]
    AlreadyExists(String),
    /// The tile moved since the caller read it.
    #[error("{0}")]
    Conflict(String),
    /// The tile's state does not allow the change.
    #[error("{0}")]
    FailedPrecondition(String),
    /// etcd refused or could not answer.
    #[error(transparent)]
    Store(#[from] tilewave_store::Error),
}

/// `Result` with the registry's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Bad input at one field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        let v = Violation::new(field, description);
        Self::Invalid {
            message: format!("{}: {}", v.field, v.description),
            violations: vec![v],
        }
    }
}

impl From<tilewave_service::limits::Violation> for Error {
    fn from(v: tilewave_service::limits::Violation) -> Self {
        Self::invalid(v.field, v.message)
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        match e {
            Error::Invalid { message, violations } => {
                let mut details = ErrorDetails::new();
                for v in &violations {
                    details.add_bad_request_violation(v.field.clone(), v.description.clone());
                }
                tonic::Status::with_error_details(Code::InvalidArgument, message, details)
            }
            Error::NotFound(m) => tonic::Status::not_found(m),
            Error::AlreadyExists(m) => tonic::Status::already_exists(m),
            Error::Conflict(m) => tonic::Status::aborted(m),
            Error::FailedPrecondition(m) => tonic::Status::failed_precondition(m),
            Error::Store(e) => match &e {
                tilewave_store::Error::NotFound { .. } => tonic::Status::not_found(e.to_string()),
                tilewave_store::Error::Conflict { .. } => tonic::Status::aborted(format!(
                    "{e}: the tile changed since it was read; read it again and retry"
                )),
                _ => e.into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_carries_every_violation_as_bad_request_details() {
        let e = Error::Invalid {
            message: "2 problems".into(),
            violations: vec![
                Violation::new("$.name", "empty"),
                Violation::new("$.hostnames", "empty"),
            ],
        };
        let status = tonic::Status::from(e);
        assert_eq!(status.code(), Code::InvalidArgument);
        let br = status.get_details_bad_request().expect("bad request details");
        let fields: Vec<_> = br.field_violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["$.name", "$.hostnames"]);
    }

    #[test]
    fn codes_are_distinct_per_kind() {
        let cases = [
            (Error::NotFound("x".into()), Code::NotFound),
            (Error::AlreadyExists("x".into()), Code::AlreadyExists),
            (Error::Conflict("x".into()), Code::Aborted),
            (Error::FailedPrecondition("x".into()), Code::FailedPrecondition),
            (Error::invalid("ga_time", "too soon"), Code::InvalidArgument),
        ];
        for (e, code) in cases {
            assert_eq!(tonic::Status::from(e).code(), code);
        }
    }
}
