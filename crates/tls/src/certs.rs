//! Generating certificates with rcgen (ring): a development CA, service
//! certificates and user (client) certificates.
//!
//! Every certificate gets a random 128-bit serial (the policy's deny-list
//! names serials) and ECDSA P-256 keys. Service certificates carry SANs for
//! loopback (`127.0.0.1`, `::1`, `localhost`) and the given host names, and
//! may serve and call (server and client auth); user certificates are
//! client-only and name the identity as their subject CN.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, SerialNumber,
};

use crate::inspect::{self, key_matches_cert};
use crate::{Error, Result};

/// The subject CN of the development CA.
pub const CA_COMMON_NAME: &str = "tilewave development CA";
/// The organisation on every certificate issued here.
pub const ORGANIZATION: &str = "tilewave";
/// How long the development CA is valid.
pub const CA_VALIDITY_DAYS: i64 = 3650;
/// How long a service or user certificate is valid.
pub const LEAF_VALIDITY_DAYS: i64 = 365;
/// The SANs every service certificate carries.
pub const LOOPBACK_SANS: [&str; 3] = ["127.0.0.1", "::1", "localhost"];

/// A certificate and its private key, both PEM.
#[derive(Clone)]
pub struct Issued {
    /// The certificate.
    pub cert_pem: String,
    /// The PKCS#8 private key.
    pub key_pem: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("cert_pem", &self.cert_pem.len())
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// When a certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// Not valid before.
    pub not_before: jiff::Timestamp,
    /// Not valid after.
    pub not_after: jiff::Timestamp,
}

impl Validity {
    /// From a minute ago (clock skew between hosts) to `days` from now.
    pub fn days_from_now(days: i64) -> Self {
        let now = crate::wall_clock_now();
        Self {
            not_before: now
                .checked_sub(jiff::SignedDuration::from_secs(60))
                .unwrap_or(now),
            not_after: now
                .checked_add(jiff::SignedDuration::from_hours(24 * days))
                .unwrap_or(jiff::Timestamp::MAX),
        }
    }
}

fn odt(name: &str, t: jiff::Timestamp) -> Result<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp(t.as_second()).map_err(|e| Error::Generate {
        name: name.to_owned(),
        why: format!("time {t} out of range: {e}"),
    })
}

fn generate_err(name: &str) -> impl Fn(rcgen::Error) -> Error + '_ {
    move |e| Error::Generate {
        name: name.to_owned(),
        why: e.to_string(),
    }
}

/// A random positive 128-bit serial.
fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    // Positive (top bit clear) and exactly 16 bytes long (non-zero first byte).
    bytes[0] = (bytes[0] & 0x7f) | 0x10;
    SerialNumber::from_slice(&bytes)
}

fn params(name: &str, common_name: &str, validity: Validity) -> Result<CertificateParams> {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, ORGANIZATION);
    p.distinguished_name = dn;
    p.not_before = odt(name, validity.not_before)?;
    p.not_after = odt(name, validity.not_after)?;
    p.serial_number = Some(random_serial());
    Ok(p)
}

/// A certificate authority: its certificate and signing key.
#[derive(Debug)]
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

impl Ca {
    /// A new self-signed development CA valid for [`CA_VALIDITY_DAYS`].
    pub fn generate() -> Result<Self> {
        Self::generate_with(Validity::days_from_now(CA_VALIDITY_DAYS))
    }

    /// A new self-signed CA valid for `validity`.
    pub fn generate_with(validity: Validity) -> Result<Self> {
        let err = generate_err("the CA");
        let key = KeyPair::generate().map_err(&err)?;
        let mut p = params("the CA", CA_COMMON_NAME, validity)?;
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = p.self_signed(&key).map_err(&err)?;
        Ok(Self {
            cert_pem: cert.pem(),
            issuer: Issuer::new(p, key),
        })
    }

    /// The CA whose certificate and key are in these files; the error names
    /// the file and what is wrong (missing, not PEM, not a CA, key does not
    /// match).
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self> {
        let cert_pem = inspect::read_text(cert_path)?;
        let info = inspect::parse_cert_pem(cert_path, cert_pem.as_bytes())?;
        if !info.is_ca {
            return Err(Error::file(cert_path, "is not a CA certificate"));
        }
        let key_pem = inspect::read_text(key_path)?;
        let key = KeyPair::from_pem(&key_pem)
            .map_err(|e| Error::file(key_path, format!("is not a PEM private key: {e}")))?;
        key_matches_cert(cert_path, cert_pem.as_bytes(), key_path, &key)?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)
            .map_err(|e| Error::file(cert_path, format!("cannot sign with this CA: {e}")))?;
        Ok(Self { issuer, cert_pem })
    }

    /// The CA certificate (PEM).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate and key, for writing.
    pub fn issued(&self) -> Issued {
        Issued {
            cert_pem: self.cert_pem.clone(),
            key_pem: self.issuer.key().serialize_pem(),
        }
    }

    /// A service certificate: subject CN `name`, SANs for loopback and
    /// `hosts`, server and client auth, valid for [`LEAF_VALIDITY_DAYS`].
    pub fn issue_service(&self, name: &str, hosts: &[String]) -> Result<Issued> {
        self.issue_service_with(name, hosts, Validity::days_from_now(LEAF_VALIDITY_DAYS))
    }

    /// [`Ca::issue_service`] with a given validity.
    pub fn issue_service_with(&self, name: &str, hosts: &[String], validity: Validity) -> Result<Issued> {
        let mut sans: Vec<String> = LOOPBACK_SANS.iter().map(|s| (*s).to_owned()).collect();
        for h in hosts {
            if !sans.contains(h) {
                sans.push(h.clone());
            }
        }
        let with_sans = CertificateParams::new(sans).map_err(generate_err(name))?;
        let mut p = params(name, name, validity)?;
        p.subject_alt_names = with_sans.subject_alt_names;
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        self.sign(name, p)
    }

    /// A user (client) certificate whose subject CN is `identity`, client
    /// auth only, valid for [`LEAF_VALIDITY_DAYS`].
    pub fn issue_client(&self, identity: &str) -> Result<Issued> {
        self.issue_client_with(identity, Validity::days_from_now(LEAF_VALIDITY_DAYS))
    }

    /// [`Ca::issue_client`] with a given validity (tests: an expired one).
    pub fn issue_client_with(&self, identity: &str, validity: Validity) -> Result<Issued> {
        if identity.trim().is_empty() || identity.chars().any(char::is_control) {
            return Err(Error::Generate {
                name: format!("{identity:?}"),
                why: "an identity must be a non-empty name without control characters".to_owned(),
            });
        }
        let mut p = params(identity, identity, validity)?;
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(identity, p)
    }

    fn sign(&self, name: &str, mut p: CertificateParams) -> Result<Issued> {
        let err = generate_err(name);
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().map_err(&err)?;
        let cert = p.signed_by(&key, &self.issuer).map_err(&err)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}
