//! Who a caller is: the name and serial of its client certificate.
//!
//! The name is the certificate's subject common name, or when it has none
//! its first DNS subject alternative name. The certificate is parsed here,
//! never verified: the TLS handshake has verified it (chain, expiry, key)
//! before any request reaches the role check.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{LazyLock, Mutex, PoisonError};

use tilewave_core::quote::quoted;
use x509_parser::prelude::{FromDer as _, GeneralName, X509Certificate};

/// The most bytes of an identity name.
pub const MAX_IDENTITY_LEN: usize = 253;

/// A certificate identity's name (`tilewave-registry`, `ada`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identity(String);

/// Why a string is not an identity name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityNameError {
    /// The empty string.
    #[error("an identity name must not be empty")]
    Empty,
    /// Longer than [`MAX_IDENTITY_LEN`] bytes.
    #[error(
        "identity name {} is {len} bytes long; at most {MAX_IDENTITY_LEN} are allowed",
        quoted(name)
    )]
    TooLong {
        /// The name.
        name: String,
        /// Its length in bytes.
        len: usize,
    },
    /// Holds a control character or white space at either end.
    #[error("identity name {} holds control characters or surrounding spaces", quoted(.0))]
    BadChar(String),
}

impl Identity {
    /// Checks a name: non-empty, at most [`MAX_IDENTITY_LEN`] bytes, no
    /// control characters, no surrounding white space.
    pub fn parse(name: &str) -> Result<Self, IdentityNameError> {
        if name.is_empty() {
            return Err(IdentityNameError::Empty);
        }
        if name.len() > MAX_IDENTITY_LEN {
            return Err(IdentityNameError::TooLong {
                name: name.to_owned(),
                len: name.len(),
            });
        }
        if name.chars().any(char::is_control) || name.trim() != name {
            return Err(IdentityNameError::BadChar(name.to_owned()));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Identity {
    type Err = IdentityNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A certificate serial number, as lowercase hex without separators or
/// leading zeros (`0a:1B` and `0x0A1b` are both `a1b`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Serial(String);

/// Why a string is not a serial number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("serial {} is not a hexadecimal number (like 3f:a0:07 or 3fa007)", quoted(.0))]
pub struct SerialError(String);

/// The most hex digits of a serial (RFC 5280 allows 20 octets; some CAs
/// write 21 with a leading zero).
const MAX_SERIAL_DIGITS: usize = 42;

impl Serial {
    /// The serial of a certificate's raw (big-endian) serial bytes.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Self::normalized(&hex)
    }

    fn normalized(hex: &str) -> Self {
        let trimmed = hex.trim_start_matches('0');
        Self(if trimmed.is_empty() {
            "0".to_owned()
        } else {
            trimmed.to_owned()
        })
    }

    /// The serial as lowercase hex.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Serial {
    type Err = SerialError;

    /// Hex digits, optionally with `0x` in front and `:` between octets, in
    /// either case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || SerialError(s.to_owned());
        let body = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).unwrap_or(s);
        let digits: String = body.chars().filter(|c| *c != ':').collect();
        if digits.is_empty()
            || digits.len() > MAX_SERIAL_DIGITS
            || body.starts_with(':')
            || body.ends_with(':')
            || body.contains("::")
            || !digits.chars().all(|c| c.is_ascii_hexdigit())
        {
            return Err(bad());
        }
        Ok(Self::normalized(&digits.to_ascii_lowercase()))
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a client certificate says about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertIdentity {
    /// The subject CN, else the first DNS SAN.
    pub identity: Identity,
    /// The certificate's serial number.
    pub serial: Serial,
}

/// Why no identity could be read from a certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    /// Not a DER X.509 certificate.
    #[error("the client certificate is not a DER X.509 certificate: {0}")]
    Malformed(String),
    /// Neither a subject CN nor a DNS SAN.
    #[error("the client certificate names no subject CN and no DNS subject alternative name")]
    NoName,
    /// A name that is not a valid identity.
    #[error("the client certificate's name is not a valid identity: {0}")]
    BadName(#[from] IdentityNameError),
}

/// Reads the identity of a DER client certificate (the first certificate
/// of the chain a TLS client presented).
pub fn identity_from_der(der: &[u8]) -> Result<CertIdentity, CertError> {
    let (rest, cert) =
        X509Certificate::from_der(der).map_err(|e| CertError::Malformed(bounded(&e.to_string())))?;
    if !rest.is_empty() {
        return Err(CertError::Malformed(format!(
            "{} bytes after the certificate",
            rest.len()
        )));
    }
    let name = match cert.subject().iter_common_name().next() {
        Some(cn) => Some(
            cn.as_str()
                .map_err(|e| CertError::Malformed(format!("subject CN: {}", bounded(&e.to_string()))))?,
        ),
        None => first_dns_san(&cert)?,
    };
    let name = name.ok_or(CertError::NoName)?;
    Ok(CertIdentity {
        identity: Identity::parse(name)?,
        serial: Serial::from_bytes(cert.raw_serial()),
    })
}

/// How many certificates [`identity_of`] remembers. Past that it forgets
/// them all and starts again: a deployment has tens of client certificates
/// (one per person and service), each about a kilobyte.
pub const REMEMBERED_CERTIFICATES: usize = 256;

/// Identities already read, by the certificate's DER bytes: reading one
/// parses the X.509 structure (about a tenth of a small RPC's CPU in the
/// registry's read benchmark), and a connection presents the same
/// certificate on every call. What is remembered is a pure function of the
/// bytes (name and serial; revocation is decided per call on the policy in
/// force), so a remembered answer is always the one a new reading would give.
#[derive(Debug)]
pub struct IdentityMemo {
    capacity: usize,
    read: Mutex<Readings>,
}

/// Each certificate's DER bytes and what reading it gave.
type Readings = HashMap<Box<[u8]>, Result<CertIdentity, CertError>>;

impl IdentityMemo {
    /// A memo of at most `capacity` certificates (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            read: Mutex::new(HashMap::new()),
        }
    }

    /// [`identity_from_der`] of `der`, read once.
    pub fn identity(&self, der: &[u8]) -> Result<CertIdentity, CertError> {
        if let Some(known) = self.lock().get(der) {
            return known.clone();
        }
        let read = identity_from_der(der);
        let mut memo = self.lock();
        if memo.len() >= self.capacity {
            memo.clear();
        }
        memo.insert(der.into(), read.clone());
        read
    }

    /// How many certificates it holds.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Readings> {
        // Nothing panics while the lock is held; a poisoned map is still whole.
        self.read.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The process's memo, of [`REMEMBERED_CERTIFICATES`].
static MEMO: LazyLock<IdentityMemo> = LazyLock::new(|| IdentityMemo::new(REMEMBERED_CERTIFICATES));

/// [`identity_from_der`], remembered for the process ([`IdentityMemo`]):
/// what the role check reads each call's certificate with.
pub fn identity_of(der: &[u8]) -> Result<CertIdentity, CertError> {
    MEMO.identity(der)
}

/// The first DNS name among the certificate's subject alternative names.
fn first_dns_san<'a>(cert: &'a X509Certificate<'a>) -> Result<Option<&'a str>, CertError> {
    let san = cert.subject_alternative_name().map_err(|e| {
        CertError::Malformed(format!("subject alternative names: {}", bounded(&e.to_string())))
    })?;
    Ok(san.and_then(|ext| {
        ext.value.general_names.iter().find_map(|n| match n {
            GeneralName::DNSName(d) => Some(*d),
            _ => None,
        })
    }))
}

/// A parser's message, bounded like any quoted input.
fn bounded(message: &str) -> String {
    quoted(message).to_string()
}

#[cfg(test)]
pub(crate) mod tests {
    use rcgen::{CertificateParams, DnType, KeyPair, SerialNumber};

    use super::*;

    /// A self-signed certificate's DER with this CN (if any), these DNS
    /// SANs and this serial.
    pub(crate) fn cert(cn: Option<&str>, sans: &[&str], serial: &[u8]) -> Vec<u8> {
        let mut params = CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
            .expect("valid SANs");
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = cn {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        params.serial_number = Some(SerialNumber::from_slice(serial));
        let key = KeyPair::generate().expect("key");
        params.self_signed(&key).expect("certificate").der().to_vec()
    }

    #[test]
    fn the_memo_answers_as_a_new_reading_and_stays_bounded() {
        let memo = IdentityMemo::new(3);
        let ada = cert(Some("ada"), &["ada.example"], &[0x01, 0x02]);
        let nameless = cert(None, &[], &[1]);
        for der in [&ada, &nameless, &b"not a certificate".to_vec()] {
            assert_eq!(memo.identity(der), identity_from_der(der));
            assert_eq!(memo.identity(der), identity_from_der(der), "remembered");
        }
        assert_eq!(memo.len(), 3, "each certificate read once");
        let viv = cert(Some("viv"), &[], &[0x07]);
        assert_eq!(
            memo.identity(&viv).map(|c| c.identity.to_string()),
            Ok("viv".to_owned())
        );
        assert_eq!(memo.len(), 1, "full: forgotten, then the new one remembered");
        assert_eq!(
            identity_of(&ada).map(|c| (c.identity.to_string(), c.serial.to_string())),
            Ok(("ada".to_owned(), "102".to_owned()))
        );
    }

    #[test]
    fn identity_is_the_cn_else_the_first_dns_san() {
        let c = identity_from_der(&cert(Some("ada"), &["ada.example"], &[0x01, 0x02])).unwrap();
        assert_eq!(c.identity.as_str(), "ada");
        assert_eq!(c.serial.as_str(), "102");
        let c = identity_from_der(&cert(None, &["tilewave-registry", "localhost"], &[0x7f])).unwrap();
        assert_eq!(c.identity.as_str(), "tilewave-registry");
        assert_eq!(c.serial.as_str(), "7f");
    }

    #[test]
    fn certificates_without_a_usable_name_are_refused() {
        assert_eq!(identity_from_der(&cert(None, &[], &[1])), Err(CertError::NoName));
        let e = identity_from_der(&cert(Some(" ada"), &[], &[1])).unwrap_err();
        assert!(matches!(e, CertError::BadName(_)), "{e}");
        for der in [&b""[..], b"not a certificate", &[0x30, 0x82, 0xff, 0xff, 0x00]] {
            let e = identity_from_der(der).unwrap_err();
            assert!(matches!(e, CertError::Malformed(_)), "{e}");
        }
        let mut trailing = cert(Some("ada"), &[], &[1]);
        trailing.push(0);
        assert!(matches!(
            identity_from_der(&trailing),
            Err(CertError::Malformed(_))
        ));
    }

    #[test]
    fn serials_normalise() {
        let cases: &[(&str, &str)] = &[
            ("0a:1B", "a1b"),
            ("0x0A1b", "a1b"),
            ("00:00", "0"),
            ("3f:a0:07", "3fa007"),
            ("DEADBEEF", "deadbeef"),
        ];
        for (text, want) in cases {
            assert_eq!(text.parse::<Serial>().unwrap().as_str(), *want, "{text}");
        }
        for bad in ["", "0x", "xyz", ":0a", "0a:", "0a::1b", "1 2", &"f".repeat(43)] {
            assert!(bad.parse::<Serial>().is_err(), "{bad:?}");
        }
        assert_eq!(Serial::from_bytes(&[0x00, 0x8f, 0x01]).as_str(), "8f01");
        assert_eq!(Serial::from_bytes(&[]).as_str(), "0");
    }

    #[test]
    fn identity_names_are_checked() {
        assert!(Identity::parse("tilewave-registry").is_ok());
        assert!(Identity::parse("Ada Lovelace").is_ok());
        assert_eq!(Identity::parse(""), Err(IdentityNameError::Empty));
        assert!(matches!(
            Identity::parse("a\nb"),
            Err(IdentityNameError::BadChar(_))
        ));
        assert!(matches!(
            Identity::parse("ada "),
            Err(IdentityNameError::BadChar(_))
        ));
        assert!(matches!(
            Identity::parse(&"a".repeat(254)),
            Err(IdentityNameError::TooLong { len: 254, .. })
        ));
    }
}
