//! The agent's errors and their one mapping to gRPC status codes.

use tonic::Code;

/// Why an agent call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed at `field`.
    #[error("{field}: {problem}")]
    Invalid {
        /// The request field.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The call's fencing token is older than the newest the agent has seen
    /// for the tile: the caller lost ownership of the work. Nothing changed.
    #[error("stale fencing token {token} < {newest} for tile {tile}")]
    StaleToken {
        /// The tile.
        tile: String,
        /// The token the call carried.
        token: i64,
        /// The newest token seen for the tile.
        newest: i64,
    },
    /// The tile is not in the region's catalog.
    #[error("tile {0} is not in this region's catalog")]
    NotFound(String),
    /// A catalog file (the snapshot or the log) could not be read or
    /// written: the change was not made (and not acknowledged).
    #[error("catalog file {path}: {source}")]
    Persist {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A catalog file exists but does not decode, belongs elsewhere, or
    /// (the log) is damaged before its last record; `problem` names the
    /// record's offset.
    #[error("catalog file {path}: {problem}")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong.
        problem: String,
    },
    /// The state forbids the call (a tile not installed here, no KEK, the
    /// CURRENT credential retired, ...): FAILED_PRECONDITION.
    #[error("{0}")]
    Precondition(String),
    /// Deliberately not implemented in this version.
    #[error("{0}")]
    Unimplemented(&'static str),
    /// A fault injected by FaultInjectionService.FailNextCalls.
    #[error("{message}")]
    Injected {
        /// The status code the fault asked for.
        code: Code,
        /// Its message.
        message: String,
    },
    /// etcd refused or could not answer.
    #[error(transparent)]
    Store(#[from] tilewave_store::Error),
}

/// `Result` with the agent's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Bad input at one field.
    pub fn invalid(field: &'static str, problem: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            problem: problem.into(),
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        let msg = e.to_string();
        match e {
            Error::Invalid { .. } => tonic::Status::invalid_argument(msg),
            Error::StaleToken { .. } => tonic::Status::failed_precondition(msg),
            Error::NotFound(_) => tonic::Status::not_found(msg),
            // The change was not made; the caller may retry it.
            Error::Persist { .. } => tonic::Status::unavailable(msg),
            Error::Corrupt { .. } => tonic::Status::data_loss(msg),
            Error::Precondition(_) => tonic::Status::failed_precondition(msg),
            Error::Unimplemented(_) => tonic::Status::unimplemented(msg),
            Error::Injected { code, message } => tonic::Status::new(code, message),
            Error::Store(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_per_kind() {
        let cases = [
            (Error::invalid("tile_id", "empty"), Code::InvalidArgument),
            (
                Error::StaleToken {
                    tile: "t".into(),
                    token: 3,
                    newest: 5,
                },
                Code::FailedPrecondition,
            ),
            (Error::NotFound("t".into()), Code::NotFound),
            (
                Error::Persist {
                    path: "p".into(),
                    source: std::io::Error::other("disk"),
                },
                Code::Unavailable,
            ),
            (
                Error::Corrupt {
                    path: "p".into(),
                    problem: "x".into(),
                },
                Code::DataLoss,
            ),
            (Error::Precondition("no KEK".into()), Code::FailedPrecondition),
            (Error::Unimplemented("later"), Code::Unimplemented),
            (
                Error::Injected {
                    code: Code::Unavailable,
                    message: "x".into(),
                },
                Code::Unavailable,
            ),
            (
                Error::Store(tilewave_store::Error::ClockNotVirtual),
                Code::FailedPrecondition,
            ),
        ];
        for (e, code) in cases {
            assert_eq!(tonic::Status::from(e).code(), code);
        }
    }

    #[test]
    fn stale_token_message_names_both_tokens() {
        let e = Error::StaleToken {
            tile: "t".into(),
            token: 3,
            newest: 5,
        };
        assert!(
            tonic::Status::from(e)
                .message()
                .starts_with("stale fencing token 3 < 5")
        );
    }
}
