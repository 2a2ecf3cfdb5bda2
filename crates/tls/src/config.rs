//! TLS settings and their tonic configurations: the flags every service
//! takes, the loaded files, the server and client configurations (rustls
//! with the ring provider), the one place that builds an
//! [`Endpoint`](tonic::transport::Endpoint) and the one server builder.
//!
//! A server given TLS files requires a client certificate signed by the
//! CA; a client given TLS files presents its certificate and trusts only
//! the CA. A service needs either the files or an explicit `--insecure`
//! (plaintext, with a start-up warning); with neither it refuses to start
//! and says how to get certificates.

use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, Server, ServerTlsConfig};

use tilewave_core::quote::quoted;

use crate::inspect::{self, CertInfo};
use crate::{Error, Result};

/// Environment variable of `--tls-cert`.
pub const ENV_TLS_CERT: &str = "TILEWAVE_TLS_CERT";
/// Environment variable of `--tls-key`.
pub const ENV_TLS_KEY: &str = "TILEWAVE_TLS_KEY";
/// Environment variable of `--tls-ca`.
pub const ENV_TLS_CA: &str = "TILEWAVE_TLS_CA";
/// Environment variable of `--insecure`.
pub const ENV_INSECURE: &str = "TILEWAVE_INSECURE";

/// The TLS flags of every service (flattened into its clap config).
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct TlsArgs {
    /// This process's certificate (PEM), presented to callers and to the
    /// services it calls. With --tls-key and --tls-ca: serve TLS only and
    /// require client certificates signed by the CA. Required unless
    /// --insecure.
    #[arg(long = "tls-cert", env = ENV_TLS_CERT, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long = "tls-key", env = ENV_TLS_KEY, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// The CA certificate (PEM) that signs trusted peers.
    #[arg(long = "tls-ca", env = ENV_TLS_CA, value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Serve and call plaintext, without certificates: any process that can
    /// reach the port may call. For local experiments only; logs a warning
    /// at start-up. Not together with the TLS files.
    #[arg(long = "insecure", env = ENV_INSECURE)]
    pub insecure: bool,
}

/// Why a service given neither TLS files nor `--insecure` does not start.
pub const NO_TLS: &str = "TLS certificates are needed: give --tls-cert, --tls-key and --tls-ca \
     (or TILEWAVE_TLS_CERT, TILEWAVE_TLS_KEY, TILEWAVE_TLS_CA); `tilewave certs init` makes a \
     development set (a CA, a certificate per service, one for you and policy.toml). \
     To serve plaintext instead, which any process that can reach the port may call, \
     give --insecure (TILEWAVE_INSECURE=true)";

/// The three TLS files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// This process's certificate.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
    /// The CA that signs trusted peers.
    pub ca: PathBuf,
}

impl TlsArgs {
    /// The files, when all three are given; `None` when none is; an error
    /// naming the missing flags when only some are.
    pub fn files(&self) -> Result<Option<TlsFiles>> {
        match (&self.tls_cert, &self.tls_key, &self.tls_ca) {
            (None, None, None) => Ok(None),
            (Some(cert), Some(key), Some(ca)) => Ok(Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                ca: ca.clone(),
            })),
            (cert, key, ca) => {
                let missing: Vec<&str> = [
                    (cert.is_none(), "--tls-cert"),
                    (key.is_none(), "--tls-key"),
                    (ca.is_none(), "--tls-ca"),
                ]
                .into_iter()
                .filter_map(|(m, flag)| m.then_some(flag))
                .collect();
                Err(Error::Settings(format!(
                    "TLS needs --tls-cert, --tls-key and --tls-ca together; missing {}",
                    missing.join(", ")
                )))
            }
        }
    }

    /// The loaded files (see [`TlsFiles::load`]), or `None` for plaintext
    /// with `--insecure`. An error when neither the files nor `--insecure`
    /// is given (saying how to get certificates), or both are.
    pub fn load(&self) -> Result<Option<Tls>> {
        match (self.files()?, self.insecure) {
            (Some(files), false) => files.load().map(Some),
            (None, true) => Ok(None),
            (Some(_), true) => Err(Error::Settings(format!(
                "--insecure ({ENV_INSECURE}) and the TLS files (--tls-cert, --tls-key, --tls-ca) \
                 contradict each other: drop --insecure to serve TLS, or the TLS files to serve plaintext"
            ))),
            (None, false) => Err(Error::Settings(NO_TLS.to_owned())),
        }
    }
}

/// Loaded and checked TLS material.
#[derive(Clone)]
pub struct Tls {
    cert_pem: String,
    key_pem: String,
    ca_pem: String,
    /// What this process's certificate says.
    pub cert: CertInfo,
    /// What the CA certificate says.
    pub ca: CertInfo,
    /// Where the files are.
    pub files: TlsFiles,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("files", &self.files)
            .field("cert", &self.cert)
            .field("key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl TlsFiles {
    /// Reads the files and checks them: each exists and is PEM, the key
    /// belongs to the certificate, the CA file holds a CA certificate. The
    /// error names the file and what is wrong.
    pub fn load(&self) -> Result<Tls> {
        let (cert_pem, key_pem, cert) = inspect::read_matching_pair(&self.cert, &self.key)?;
        let ca_pem = inspect::read_text(&self.ca)?;
        let ca = inspect::parse_cert_pem(&self.ca, ca_pem.as_bytes())?;
        if !ca.is_ca {
            return Err(Error::file(&self.ca, "is not a CA certificate (--tls-ca)"));
        }
        Ok(Tls {
            cert_pem,
            key_pem,
            ca_pem,
            cert,
            ca,
            files: self.clone(),
        })
    }
}

impl Tls {
    /// Reads and checks `cert`, `key` and `ca` (see [`TlsFiles::load`]).
    pub fn from_files(cert: &Path, key: &Path, ca: &Path) -> Result<Self> {
        TlsFiles {
            cert: cert.to_owned(),
            key: key.to_owned(),
            ca: ca.to_owned(),
        }
        .load()
    }

    fn identity(&self) -> Identity {
        Identity::from_pem(&self.cert_pem, &self.key_pem)
    }

    /// The server side: present the certificate, require a client
    /// certificate signed by the CA.
    pub fn server_config(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(self.identity())
            .client_ca_root(Certificate::from_pem(&self.ca_pem))
            .client_auth_optional(false)
    }

    /// The client side: trust only the CA, present the certificate.
    pub fn client_config(&self) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .identity(self.identity())
    }

    /// Warnings for the certificate and the CA when either is within
    /// [`inspect::EXPIRY_WARNING_DAYS`] of expiry at `now`.
    pub fn expiry_warnings(&self, now: jiff::Timestamp) -> Vec<String> {
        [
            self.cert
                .expiry_warning(&format!("certificate {}", self.files.cert.display()), now),
            self.ca
                .expiry_warning(&format!("CA certificate {}", self.files.ca.display()), now),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// A tonic endpoint for `url` (with or without a scheme). With `tls` the
/// scheme becomes `https` and the endpoint presents the client certificate
/// and trusts only the CA; without, a bare `host:port` becomes `http://`.
/// The one place a tilewave client builds an endpoint.
pub fn endpoint(url: &str, tls: Option<&Tls>) -> Result<Endpoint> {
    let url = match (url.split_once("://"), tls) {
        (Some(("http", rest)), Some(_)) => format!("https://{rest}"),
        (Some(_), _) => url.to_owned(),
        (None, Some(_)) => format!("https://{url}"),
        (None, None) => format!("http://{url}"),
    };
    let bad =
        |e: tonic::transport::Error| Error::Settings(format!("{} is not a valid URL: {e}", quoted(&url)));
    let endpoint = Endpoint::from_shared(url.clone()).map_err(bad)?;
    match tls {
        None => Ok(endpoint),
        Some(tls) => endpoint
            .tls_config(tls.client_config())
            .map_err(|e| Error::Settings(format!("TLS for {}: {e}", quoted(&url)))),
    }
}

/// The gRPC server builder of a service named `name`: with `tls`, TLS only
/// and client certificates required (each certificate's not-after as the
/// `tilewave_tls_certificate_expiry_timestamp_seconds` metric, and a warning
/// for one within 14 days of expiry); without (`--insecure`),
/// plaintext with a start-up warning. The one place a service builds its
/// server.
pub fn server(name: &str, tls: Option<&Tls>) -> Result<Server> {
    match tls {
        None => {
            tracing::warn!(
                service = name,
                "running without TLS (--insecure): any process that can reach the port may call it \
                 (give --tls-cert, --tls-key and --tls-ca instead to require client certificates)"
            );
            Ok(tilewave_service::transport::server())
        }
        Some(tls) => {
            let metrics = tilewave_telemetry::Metrics::global();
            for (which, info) in [("cert", &tls.cert), ("ca", &tls.ca)] {
                let subject = info.common_name.as_deref().unwrap_or("");
                metrics.certificate_expiry(which, subject, info.not_after.as_second());
            }
            for warning in tls.expiry_warnings(crate::wall_clock_now()) {
                tracing::warn!(service = name, "{warning}");
            }
            tracing::info!(
                service = name,
                cert = %tls.files.cert.display(),
                ca = %tls.files.ca.display(),
                "serving TLS; client certificates required"
            );
            tilewave_service::transport::server()
                .tls_config(tls.server_config())
                .map_err(|e| Error::Settings(format!("TLS server configuration: {e}")))
        }
    }
}
