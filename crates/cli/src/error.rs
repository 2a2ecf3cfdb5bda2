//! What can go wrong in a command, the exit code each outcome maps to, and
//! how an error is shown: the status message, then every field violation of
//! a `google.rpc.BadRequest` as `  <path>: <description>`, then what to do.
//!
//! Exit codes: 0 ok; 2 bad input (INVALID_ARGUMENT, OUT_OF_RANGE, usage);
//! 3 not found or conflict (NOT_FOUND, ALREADY_EXISTS, ABORTED,
//! FAILED_PRECONDITION); 1 anything else.

use tonic::Code;
use tonic_types::StatusExt as _;

use crate::settings::{Layer, Settings};

/// Success.
pub const EXIT_OK: u8 = 0;
/// Anything not covered below (unavailable, internal, I/O, ...).
pub const EXIT_FAILURE: u8 = 1;
/// Bad input: the caller should change the command or the file.
pub const EXIT_BAD_INPUT: u8 = 2;
/// Not found, or a conflict with the current state: re-read and retry, or
/// pick another object.
pub const EXIT_CONFLICT: u8 = 3;

/// What to do when the services cannot be reached: start the stack, or
/// check each service's address setting (from [`crate::endpoints::ENDPOINTS`]).
pub fn unavailable_hint() -> String {
    let flags: Vec<String> = crate::endpoints::ENDPOINTS
        .iter()
        .map(|e| format!("--{} / {}", e.flag(), e.env()))
        .collect();
    format!(
        "is the stack running? try `tilewave dev up` (or check {})",
        flags.join(", ")
    )
}

/// What to do when the TLS handshake failed or the service closed the
/// connection (a TLS service refuses a plaintext client or a certificate
/// it does not trust before any gRPC status can be sent).
pub const TLS_HINT: &str = "if the service requires TLS, give --tls-cert, --tls-key and --tls-ca \
(or TILEWAVE_TLS_*) with a certificate signed by its CA and that CA (`tilewave certs init`, `tilewave certs list`)";

/// Whether a connection failed in the TLS handshake (an untrusted or
/// expired certificate, or a TLS client meeting a plaintext server), from
/// the status message and every error it was caused by.
fn tls_failure(status: &tonic::Status) -> bool {
    let mut text = status.message().to_owned();
    let mut source = std::error::Error::source(status);
    while let Some(e) = source {
        text.push_str(&format!(": {e}"));
        source = e.source();
    }
    [
        "certificate",
        "corrupt message",
        "InvalidContentType",
        "tls handshake",
        "HandshakeFailure",
    ]
    .iter()
    .any(|m| text.contains(m))
}

/// Whether a call failed in the transport (the connection was broken or
/// refused by the peer) rather than with a status the service sent.
fn transport_failure(status: &tonic::Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(e) = source {
        if e.is::<tonic::transport::Error>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// What to do when the TLS handshake failed or the connection was closed,
/// told from where the call's TLS settings came from (`settings`: the
/// command's, when it resolved them).
pub fn tls_hint(settings: Option<&Settings>) -> String {
    let Some(settings) = settings else {
        return TLS_HINT.to_owned();
    };
    let plaintext_stack = settings.dev_stack.as_ref().filter(|s| !s.tls);
    match (&settings.tls, settings.tls_from) {
        (Some(files), Some(layer)) => {
            let drop = match layer {
                Layer::Flag => "leave out --tls-cert, --tls-key and --tls-ca".to_owned(),
                Layer::Env => "unset TILEWAVE_TLS_CERT, TILEWAVE_TLS_KEY and TILEWAVE_TLS_CA".to_owned(),
                Layer::ConfigFile => format!("remove {}", settings.describe(layer)),
                Layer::DevStack => {
                    return format!(
                        "this call used TLS with the certificate {} from {}, which runs TLS: check that the addresses \
                         you gave (--registry, --rollout, TILEWAVE_REGISTRY, ...) are that stack's (`tilewave dev status`), \
                         or give the certificate of the service's CA with --tls-cert, --tls-key and --tls-ca",
                        files.cert.display(),
                        settings.describe(layer)
                    );
                }
            };
            match plaintext_stack {
                Some(stack) => format!(
                    "this call used TLS with the certificate {} (from {}), but the dev stack in {} runs without TLS \
                     (--insecure): {drop}, or restart the stack without --insecure",
                    files.cert.display(),
                    settings.describe(layer),
                    stack.dir.display()
                ),
                None => format!(
                    "this call used TLS with the certificate {} (from {}): if the service runs without TLS \
                     (--insecure), {drop}; if it runs TLS, the certificate must be signed by its CA and --tls-ca \
                     must be that CA (`tilewave certs list`)",
                    files.cert.display(),
                    settings.describe(layer)
                ),
            }
        }
        _ => format!(
            "this call was plaintext: no certificate came from --tls-cert, TILEWAVE_TLS_CERT, the config file{} \
             or a dev stack's saved settings; {TLS_HINT}. A stack started by `tilewave dev up` saves its certificate \
             for later commands: set TILEWAVE_DEV_DIR to its directory if it is not the default",
            settings
                .config_file
                .as_ref()
                .map(|p| format!(" {}", p.display()))
                .unwrap_or_default()
        ),
    }
}

/// An error with a known exit code. Anything else (I/O, ...) exits 1.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command line, a file or a setting is wrong.
    #[error("{0}")]
    Usage(String),
    /// The command conflicts with what exists (e.g. a second `dev up`).
    #[error("{0}")]
    Conflict(String),
    /// A call failed with a gRPC status.
    #[error("{rpc}: {} ({:?})", status.message(), status.code())]
    Rpc {
        /// The RPC, for the message ("GetTile").
        rpc: &'static str,
        /// What the server (or the transport) said.
        status: tonic::Status,
    },
}

impl CliError {
    /// A usage error from anything printable.
    pub fn usage(msg: impl Into<String>) -> Self {
        Self::Usage(msg.into())
    }

    /// The exit code this error maps to.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => EXIT_BAD_INPUT,
            Self::Conflict(_) => EXIT_CONFLICT,
            Self::Rpc { status, .. } => exit_code_of(status.code()),
        }
    }
}

/// The exit code of a gRPC status code.
pub fn exit_code_of(code: Code) -> u8 {
    match code {
        Code::Ok => EXIT_OK,
        Code::InvalidArgument | Code::OutOfRange => EXIT_BAD_INPUT,
        Code::NotFound | Code::AlreadyExists | Code::Aborted | Code::FailedPrecondition => EXIT_CONFLICT,
        Code::Cancelled
        | Code::Unknown
        | Code::DeadlineExceeded
        | Code::PermissionDenied
        | Code::ResourceExhausted
        | Code::Unimplemented
        | Code::Internal
        | Code::Unavailable
        | Code::DataLoss
        | Code::Unauthenticated => EXIT_FAILURE,
    }
}

/// The exit code of any error: the first [`CliError`] in its chain decides.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    err.chain()
        .find_map(|e| e.downcast_ref::<CliError>())
        .map_or(EXIT_FAILURE, CliError::exit_code)
}

/// The lines to print on stderr for an error: `error: <chain>`, then each
/// field violation, then a hint where there is one (a TLS hint told from
/// `settings`, the command's connection settings when it resolved them).
pub fn report(err: &anyhow::Error, settings: Option<&Settings>) -> Vec<String> {
    let mut lines = vec![format!("error: {err:#}")];
    let failed = err.chain().find_map(|e| match e.downcast_ref::<CliError>() {
        Some(CliError::Rpc { rpc, status }) => Some((*rpc, status)),
        _ => None,
    });
    if let Some((rpc, status)) = failed {
        if let Some(bad) = status.get_details_bad_request() {
            for v in bad.field_violations {
                lines.push(format!("  {}: {}", v.field, v.description));
            }
        }
        match status.code() {
            Code::Unavailable if tls_failure(status) => {
                lines.push(format!("hint: {}", tls_hint(settings)));
            }
            Code::Unavailable => lines.push(format!("hint: {}", unavailable_hint())),
            Code::Unknown | Code::Cancelled | Code::Internal if transport_failure(status) => {
                lines.push(format!("hint: {}", tls_hint(settings)));
            }
            Code::Aborted => lines.push(format!(
                "hint: the {} changed since it was read; run the command again",
                changed_object(rpc)
            )),
            Code::DeadlineExceeded => {
                lines.push("hint: the call timed out; retry, or raise --timeout".into())
            }
            _ => {}
        }
    }
    lines
}

/// What an RPC's etag guards, for the ABORTED hint: the rotation or the
/// schedule of a credentials call, else the tile.
fn changed_object(rpc: &str) -> &'static str {
    match rpc {
        "ConfirmOldRetired" | "CancelRotation" => "rotation",
        "SetRotationSchedule" => "rotation schedule",
        _ => "tile",
    }
}

/// Maps a failed call to a [`CliError::Rpc`] naming the RPC.
pub fn rpc<T>(name: &'static str, r: Result<tonic::Response<T>, tonic::Status>) -> Result<T, CliError> {
    r.map(tonic::Response::into_inner)
        .map_err(|status| CliError::Rpc { rpc: name, status })
}

#[cfg(test)]
mod tests {
    use tonic_types::{ErrorDetails, FieldViolation};

    use super::*;

    #[test]
    fn every_status_code_has_its_exit_code() {
        let cases = [
            (Code::Ok, 0),
            (Code::InvalidArgument, 2),
            (Code::OutOfRange, 2),
            (Code::NotFound, 3),
            (Code::AlreadyExists, 3),
            (Code::Aborted, 3),
            (Code::FailedPrecondition, 3),
            (Code::Unavailable, 1),
            (Code::Internal, 1),
            (Code::DeadlineExceeded, 1),
            (Code::Unknown, 1),
            (Code::PermissionDenied, 1),
        ];
        for (code, want) in cases {
            assert_eq!(exit_code_of(code), want, "{code:?}");
        }
    }

    #[test]
    fn the_unavailable_hint_names_every_service_address_setting() {
        assert_eq!(
            unavailable_hint(),
            "is the stack running? try `tilewave dev up` (or check --registry / TILEWAVE_REGISTRY, --rollout / TILEWAVE_ROLLOUT, --credentials / TILEWAVE_CREDENTIALS, --escalation / TILEWAVE_ESCALATION)"
        );
    }

    #[test]
    fn exit_code_looks_through_context() {
        let e = anyhow::Error::from(CliError::usage("bad")).context("while doing things");
        assert_eq!(exit_code(&e), 2);
        let e = anyhow::anyhow!("disk on fire");
        assert_eq!(exit_code(&e), 1);
        let e = anyhow::Error::from(CliError::Conflict("running".into()));
        assert_eq!(exit_code(&e), 3);
        let e = anyhow::Error::from(CliError::Rpc {
            rpc: "GetTile",
            status: tonic::Status::not_found("tile nope not found"),
        });
        assert_eq!(exit_code(&e), 3);
    }

    #[test]
    fn report_lists_every_field_violation_with_its_path() {
        let details = ErrorDetails::with_bad_request(vec![
            FieldViolation::new(
                "$.endpoints.connect_path",
                "required: the path of the connect endpoint",
            ),
            FieldViolation::new("$.base_url", "must be https"),
        ]);
        let status = tonic::Status::with_error_details(
            Code::InvalidArgument,
            "the configuration has 2 errors",
            details,
        );
        let e = anyhow::Error::from(CliError::Rpc {
            rpc: "ImportPartnerConfig",
            status,
        });
        let lines = report(&e, None);
        assert_eq!(
            lines,
            vec![
                "error: ImportPartnerConfig: the configuration has 2 errors (InvalidArgument)".to_owned(),
                "  $.endpoints.connect_path: required: the path of the connect endpoint".to_owned(),
                "  $.base_url: must be https".to_owned(),
            ]
        );
        assert_eq!(exit_code(&e), 2);
    }

    #[test]
    fn an_untrusted_certificate_hints_at_the_tls_settings() {
        let e = anyhow::Error::from(CliError::Rpc {
            rpc: "ListTiles",
            status: tonic::Status::unavailable("invalid peer certificate: BadSignature"),
        });
        let lines = report(&e, None);
        assert!(lines.iter().any(|l| l.contains("--tls-ca")), "{lines:?}");
        let plain = tonic::Status::unknown("transport error");
        assert!(
            !transport_failure(&plain),
            "a status the service sent is not a transport failure"
        );
    }

    fn settings(tls_from: Option<Layer>, stack_tls: Option<bool>) -> Settings {
        Settings {
            urls: Default::default(),
            actor: "ada".into(),
            timeout: std::time::Duration::from_secs(1),
            tls: tls_from.map(|_| tilewave_tls::TlsFiles {
                cert: "/c/ada.crt".into(),
                key: "/c/ada.key".into(),
                ca: "/c/ca.crt".into(),
            }),
            tls_from,
            config_file: Some("/home/ada/.config/tilewave/config.toml".into()),
            dev_stack: stack_tls.map(|tls| crate::settings::DevStackRef {
                dir: "/dev-stack".into(),
                tls,
            }),
        }
    }

    #[test]
    fn the_tls_hint_says_where_the_certificate_came_from_and_what_to_do() {
        // (the certificate's layer, the dev stack: runs TLS?, what the hint says)
        let cases = [
            (
                Some(Layer::Env),
                Some(false),
                &[
                    "the dev stack in /dev-stack runs without TLS",
                    "unset TILEWAVE_TLS_CERT",
                ][..],
            ),
            (
                Some(Layer::Flag),
                None,
                &[
                    "/c/ada.crt",
                    "leave out --tls-cert",
                    "if the service runs without TLS",
                ][..],
            ),
            (
                Some(Layer::ConfigFile),
                Some(false),
                &[
                    "remove tls-cert, tls-key and tls-ca in the config file /home/ada/.config/tilewave/config.toml",
                ][..],
            ),
            (
                Some(Layer::DevStack),
                Some(true),
                &[
                    "the saved settings of the dev stack in /dev-stack",
                    "tilewave dev status",
                ][..],
            ),
            (
                None,
                None,
                &["this call was plaintext", "TILEWAVE_DEV_DIR", "--tls-ca"][..],
            ),
        ];
        for (layer, stack, wants) in cases {
            let hint = tls_hint(Some(&settings(layer, stack)));
            for want in wants {
                assert!(hint.contains(want), "{layer:?} {stack:?}: {want:?} in {hint}");
            }
        }
        let e = anyhow::Error::from(CliError::Rpc {
            rpc: "ListTiles",
            status: tonic::Status::unavailable("invalid peer certificate: UnknownIssuer"),
        });
        let lines = report(&e, Some(&settings(Some(Layer::Env), Some(false))));
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("hint: ") && l.contains("unset TILEWAVE_TLS_CERT")),
            "{lines:?}"
        );
    }

    #[test]
    fn a_stale_etag_names_what_changed() {
        for (rpc, want) in [
            ("UpdateTile", "the tile changed"),
            ("CancelRotation", "the rotation changed"),
            ("ConfirmOldRetired", "the rotation changed"),
        ] {
            let e = anyhow::Error::from(CliError::Rpc {
                rpc,
                status: tonic::Status::aborted("stale etag"),
            });
            let lines = report(&e, None);
            assert!(lines.iter().any(|l| l.contains(want)), "{rpc}: {lines:?}");
        }
    }

    #[test]
    fn unavailable_says_what_to_do() {
        let e = anyhow::Error::from(CliError::Rpc {
            rpc: "ListTiles",
            status: tonic::Status::unavailable("connection refused"),
        });
        let lines = report(&e, None);
        assert!(lines.iter().any(|l| l.contains("tilewave dev up")), "{lines:?}");
        assert_eq!(exit_code(&e), 1);
    }
}
