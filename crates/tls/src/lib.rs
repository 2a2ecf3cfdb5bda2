//! Certificates and mutual TLS for tilewave (issue 13).
//!
//! - [`certs`]: a development CA ([`certs::Ca`]) that issues service
//!   certificates (subject CN the service, SANs for loopback and the given
//!   host names) and user certificates (subject CN the identity), with
//!   [`certs::Validity`] and a random serial.
//! - [`devset`]: the development set in one directory (a CA, a
//!   certificate per service, user certificates and `policy.toml`), written
//!   by `tilewave certs init`, the test kit and `tilewave dev up` alike.
//! - [`files`]: key and certificate files written atomically with 0600
//!   permissions.
//! - [`inspect`]: a certificate's serial, subject, SANs and validity
//!   ([`inspect::CertInfo`]), the "expires within 14 days" check, and the
//!   check that a key belongs to a certificate.
//! - [`config`]: the `--tls-cert/--tls-key/--tls-ca` flags every service
//!   flattens into its configuration ([`config::TlsArgs`]; neither files
//!   nor `--insecure` is an error that says how to get certificates), the loaded files
//!   ([`config::Tls`]) as tonic server and client configurations (rustls with
//!   the ring provider; servers accept only client certificates of the CA,
//!   and leave a client without one to the role check), the one
//!   place that builds a tonic [`tonic::transport::Endpoint`] with or without
//!   TLS ([`config::endpoint`]), and the one server builder
//!   ([`config::server`]) that warns when a service runs without TLS, and
//!   with TLS records the certificates' expiry (metric and 14-day warning).
//!
//! Every error names the file and what is wrong with it.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod certs;
pub mod config;
pub mod devset;
pub mod files;
pub mod inspect;

use std::path::{Path, PathBuf};

pub use certs::{Ca, Issued, Validity};
pub use config::{Tls, TlsArgs, TlsFiles, endpoint, server};
pub use devset::{DevSet, write_dev_set, write_dev_set_with_hosts};
pub use inspect::{CertInfo, EXPIRY_WARNING_DAYS};

/// What went wrong with certificates or TLS settings.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file is missing, unreadable, not what it should be, or could not
    /// be written.
    #[error("{}: {what}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        what: String,
    },
    /// Generating or signing a certificate failed.
    #[error("generating a certificate for {name}: {why}")]
    Generate {
        /// The certificate's name.
        name: String,
        /// rcgen's reason.
        why: String,
    },
    /// The TLS settings are incomplete or not usable.
    #[error("{0}")]
    Settings(String),
}

impl Error {
    /// An error about `path`.
    pub fn file(path: &Path, what: impl Into<String>) -> Self {
        Self::File {
            path: path.to_owned(),
            what: what.into(),
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests;

/// The wall clock, the one time certificates are about: peers check
/// validity against their system clocks (rustls), never against the domain
/// (possibly virtual) clock.
#[allow(clippy::disallowed_methods)] // certificate validity is wall-clock time (clippy.toml)
pub fn wall_clock_now() -> jiff::Timestamp {
    jiff::Timestamp::now()
}
