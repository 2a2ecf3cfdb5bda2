//! Reading certificates: serial, subject, SANs, validity; the "expires
//! within 14 days" check; whether a key belongs to a certificate.

use std::path::Path;

use rcgen::{KeyPair, PublicKeyData as _};
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;

use crate::{Error, Result};

/// Certificates this close to expiry are warned about (`certs list`, and
/// services at start-up).
pub const EXPIRY_WARNING_DAYS: i64 = 14;

/// The largest certificate or key file read (a PEM certificate is a few
/// kilobytes).
pub const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// What a certificate says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// The serial, lower-case hex without separators.
    pub serial: String,
    /// The subject as a distinguished name (`CN=registry, O=tilewave`).
    pub subject: String,
    /// The subject's common name, if any.
    pub common_name: Option<String>,
    /// The subject alternative names: DNS names and IP addresses.
    pub sans: Vec<String>,
    /// Not valid before.
    pub not_before: jiff::Timestamp,
    /// Not valid after.
    pub not_after: jiff::Timestamp,
    /// A CA certificate (basic constraints CA:true).
    pub is_ca: bool,
}

impl CertInfo {
    /// Whole days from `now` until expiry (negative once expired).
    pub fn days_left(&self, now: jiff::Timestamp) -> i64 {
        self.not_after
            .as_second()
            .saturating_sub(now.as_second())
            .div_euclid(86_400)
    }

    /// Whether the certificate expires within `days` of `now` (or has).
    pub fn expires_within(&self, now: jiff::Timestamp, days: i64) -> bool {
        self.not_after.as_second() <= now.as_second().saturating_add(days.saturating_mul(86_400))
    }

    /// The warning for a certificate within [`EXPIRY_WARNING_DAYS`] of
    /// expiry (or expired), naming `what`; `None` otherwise.
    pub fn expiry_warning(&self, what: &str, now: jiff::Timestamp) -> Option<String> {
        if !self.expires_within(now, EXPIRY_WARNING_DAYS) {
            return None;
        }
        let when = self.not_after.strftime("%Y-%m-%d %H:%M UTC");
        Some(if self.not_after <= now {
            format!("{what} expired on {when}")
        } else {
            format!("{what} expires in {} days ({when})", self.days_left(now))
        })
    }
}

/// Reads a PEM file as text; the error says whether it is missing,
/// unreadable or too large.
pub fn read_text(path: &Path) -> Result<String> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::file(path, "does not exist"),
        _ => Error::file(path, format!("cannot be read: {e}")),
    })?;
    if !meta.is_file() {
        return Err(Error::file(path, "is not a file"));
    }
    if meta.len() > MAX_PEM_BYTES {
        return Err(Error::file(
            path,
            format!("is {} bytes, more than a PEM file of {MAX_PEM_BYTES}", meta.len()),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::file(path, format!("cannot be read: {e}")))?;
    String::from_utf8(bytes).map_err(|_| Error::file(path, "is not PEM (not text)"))
}

/// The first certificate in PEM text; `path` names it in errors.
pub fn parse_cert_pem(path: &Path, pem: &[u8]) -> Result<CertInfo> {
    let block = first_cert_block(path, pem)?;
    let (_, cert) = x509_parser::parse_x509_certificate(&block.contents)
        .map_err(|e| Error::file(path, format!("holds a CERTIFICATE block that is not X.509: {e}")))?;
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned);
    let mut sans = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(d) => sans.push((*d).to_owned()),
                GeneralName::IPAddress(ip) => {
                    if let Ok(v4) = <[u8; 4]>::try_from(*ip) {
                        sans.push(std::net::IpAddr::from(v4).to_string());
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*ip) {
                        sans.push(std::net::IpAddr::from(v6).to_string());
                    }
                }
                _ => {}
            }
        }
    }
    let time = |t: &x509_parser::time::ASN1Time, which: &str| {
        jiff::Timestamp::from_second(t.timestamp())
            .map_err(|e| Error::file(path, format!("{which} is out of range: {e}")))
    };
    Ok(CertInfo {
        serial: cert.raw_serial().iter().map(|b| format!("{b:02x}")).collect(),
        subject: cert.subject().to_string(),
        common_name,
        sans,
        not_before: time(&cert.validity().not_before, "not-before")?,
        not_after: time(&cert.validity().not_after, "not-after")?,
        is_ca: cert.is_ca(),
    })
}

/// Reads and parses the certificate file at `path`.
pub fn read_cert(path: &Path) -> Result<CertInfo> {
    parse_cert_pem(path, read_text(path)?.as_bytes())
}

fn first_cert_block(path: &Path, pem: &[u8]) -> Result<Pem> {
    let mut saw = Vec::new();
    for block in Pem::iter_from_buffer(pem) {
        let block = block.map_err(|e| Error::file(path, format!("is not valid PEM: {e}")))?;
        if block.label == "CERTIFICATE" {
            return Ok(block);
        }
        saw.push(block.label);
    }
    Err(Error::file(
        path,
        if saw.is_empty() {
            "is not PEM (no -----BEGIN CERTIFICATE----- block)".to_owned()
        } else {
            format!("holds no CERTIFICATE block (found {})", saw.join(", "))
        },
    ))
}

/// Checks that `key` is the private key of the certificate in `cert_pem`;
/// the error names both files.
pub fn key_matches_cert(cert_path: &Path, cert_pem: &[u8], key_path: &Path, key: &KeyPair) -> Result<()> {
    let block = first_cert_block(cert_path, cert_pem)?;
    let (_, cert) = x509_parser::parse_x509_certificate(&block.contents).map_err(|e| {
        Error::file(
            cert_path,
            format!("holds a CERTIFICATE block that is not X.509: {e}"),
        )
    })?;
    if cert.public_key().raw != key.subject_public_key_info().as_slice() {
        return Err(Error::file(
            key_path,
            format!("does not match the certificate {}", cert_path.display()),
        ));
    }
    Ok(())
}

/// Reads the key at `key_path` and checks it belongs to the certificate at
/// `cert_path`; returns both PEM texts.
pub fn read_matching_pair(cert_path: &Path, key_path: &Path) -> Result<(String, String, CertInfo)> {
    let cert_pem = read_text(cert_path)?;
    let info = parse_cert_pem(cert_path, cert_pem.as_bytes())?;
    let key_pem = read_text(key_path)?;
    let key = KeyPair::from_pem(&key_pem)
        .map_err(|e| Error::file(key_path, format!("is not a PEM private key: {e}")))?;
    key_matches_cert(cert_path, cert_pem.as_bytes(), key_path, &key)?;
    Ok((cert_pem, key_pem, info))
}
