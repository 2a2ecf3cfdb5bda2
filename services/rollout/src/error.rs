//! The rollout service's errors and their one mapping to gRPC status codes.

use tilewave_core::planner::PlanError;

pub use tilewave_service::in_words;

/// Why a rollout call (or a step of the controller) failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input, naming the field.
    #[error("{field}: {message}")]
    Invalid {
        /// The request field, e.g. `spec.regions`.
        field: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// No such roll-out, tile or region.
    #[error("{0}")]
    NotFound(String),
    /// The tile or roll-out is not in a state that allows the call; nothing
    /// was changed.
    #[error("{0}")]
    FailedPrecondition(String),
    /// The object moved since the caller read it (stale etag).
    #[error("{0}")]
    Conflict(String),
    /// The call belongs to the GA scheduler, which is not here yet.
    #[error("{0}")]
    Unimplemented(String),
    /// The registry or an agent could not be reached or refused.
    #[error("{what}: {}", in_words(status))]
    Remote {
        /// Which call, to whom.
        what: String,
        /// What it answered.
        status: tonic::Status,
    },
    /// No agent is registered for the region (a region of the catalog, not
    /// raw input): its `tilewave-agent` is not running, or lost its lease.
    #[error("no agent is registered for {region} (is its tilewave-agent running?)")]
    NoAgent {
        /// The region.
        region: String,
    },
    /// The planner refused the input.
    #[error("plan: {0}")]
    Plan(#[from] PlanError),
    /// etcd refused or could not answer.
    #[error(transparent)]
    Store(#[from] tilewave_store::Error),
}

/// `Result` with the rollout service's error.
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

    /// A failed remote call.
    pub fn remote(what: impl Into<String>, status: tonic::Status) -> Self {
        Self::Remote {
            what: what.into(),
            status,
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
            Error::Unimplemented(_) => tonic::Status::unimplemented(msg),
            Error::NoAgent { .. } => tonic::Status::unavailable(msg),
            Error::Remote { status, .. } => match status.code() {
                tonic::Code::NotFound => tonic::Status::not_found(msg),
                tonic::Code::FailedPrecondition => tonic::Status::failed_precondition(msg),
                tonic::Code::InvalidArgument => tonic::Status::invalid_argument(msg),
                _ => tonic::Status::unavailable(msg),
            },
            Error::Plan(p) => match p {
                PlanError::Infeasible(_) => tonic::Status::failed_precondition(msg),
                PlanError::NoClouds
                | PlanError::NoRegions
                | PlanError::NoDeadline
                | PlanError::DeadlineBeforeStart { .. }
                | PlanError::AlwaysBlackedOut { .. } => tonic::Status::failed_precondition(msg),
                PlanError::UnknownRegion(_)
                | PlanError::UnsupportedCloud { .. }
                | PlanError::DuplicateRegion(_)
                | PlanError::NotSelected(_)
                | PlanError::MissingFromWaves(_)
                | PlanError::NoWaves
                | PlanError::EmptyWave(_)
                | PlanError::ZeroGrowth
                | PlanError::NonPositiveApply(_)
                | PlanError::NegativeBake(_)
                | PlanError::NoBakes
                | PlanError::ZeroConcurrency
                | PlanError::HoldOutOfRange { .. }
                | PlanError::EmptyBlackout(_)
                | PlanError::NoBlackoutDays(_)
                | PlanError::UnknownTimeZone(_)
                | PlanError::ProgressUnknownRegion(_) => tonic::Status::invalid_argument(msg),
                PlanError::Time(_) => tonic::Status::internal(msg),
            },
            Error::Store(e) => match &e {
                tilewave_store::Error::Conflict { .. } => tonic::Status::aborted(format!(
                    "{e}: the roll-out changed since it was read; read it again and retry"
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
    fn codes() {
        let cases = [
            (
                Error::invalid("spec.regions", "unknown"),
                tonic::Code::InvalidArgument,
            ),
            (Error::NotFound("x".into()), tonic::Code::NotFound),
            (
                Error::FailedPrecondition("x".into()),
                tonic::Code::FailedPrecondition,
            ),
            (Error::Conflict("x".into()), tonic::Code::Aborted),
            (Error::Unimplemented("x".into()), tonic::Code::Unimplemented),
            (
                Error::Plan(PlanError::UnknownRegion("aws:x".into())),
                tonic::Code::InvalidArgument,
            ),
            (Error::Plan(PlanError::NoRegions), tonic::Code::FailedPrecondition),
            (
                Error::NoAgent {
                    region: "gcp:asia-northeast1".into(),
                },
                tonic::Code::Unavailable,
            ),
        ];
        for (e, code) in cases {
            assert_eq!(tonic::Status::from(e).code(), code);
        }
    }

    #[test]
    fn remote_failures_read_as_words_not_a_dump() {
        // (status, what the message says)
        let cases = [
            (
                tonic::Status::unavailable("agent is draining"),
                "agent of aws:us-east-1: agent is draining",
            ),
            (
                tonic::Status::unavailable(""),
                "agent of aws:us-east-1: the service is currently unavailable",
            ),
            (
                tonic::Status::not_found("tile \"x\" is not in this region's catalog"),
                "agent of aws:us-east-1: tile \"x\" is not in this region's catalog",
            ),
        ];
        for (status, want) in cases {
            let e = Error::remote("agent of aws:us-east-1", status);
            assert_eq!(e.to_string(), want);
            assert!(!e.to_string().contains("code: '"), "{e}");
        }
        let none = Error::NoAgent {
            region: "gcp:asia-northeast1".into(),
        };
        assert_eq!(
            none.to_string(),
            "no agent is registered for gcp:asia-northeast1 (is its tilewave-agent running?)"
        );
    }
}
