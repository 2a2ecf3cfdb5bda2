//! Webhook signatures: HMAC-SHA256 over a request body with a per-target
//! secret, carried in one header with the time of signing so that a
//! receiver can refuse replays (issue 16).
//!
//! The header ([`SIGNATURE_HEADER`], `Tilewave-Signature`) reads
//!
//! ```text
//! t=<unix seconds>,v1=<64 lowercase hex digits>[,v1=<...>]
//! ```
//!
//! where each `v1` is the hex HMAC-SHA256, keyed with the target's secret
//! (its UTF-8 bytes), of the signed payload `"<t>.<body>"`: the decimal
//! timestamp exactly as it appears in the header, a `.`, then the body's
//! bytes as sent. Several `v1` values let a sender sign with a new and an
//! old secret while a target's secret is rotated ([`sign_with_all`]); a
//! receiver accepts the header when any of them matches its secret.
//! Elements of other schemes (`v0=`, `v2=`, ...) are skipped, so that a
//! later scheme can be added beside `v1` without breaking receivers.
//!
//! Verifying ([`verify`]) parses the header ([`Signature::parse`]), compares
//! every `v1` with the expected MAC in constant time (hmac's `verify_slice`)
//! and then checks that the timestamp lies within a tolerance of the
//! receiver's `now` (either side, for clock skew). The signature is checked
//! first, so [`SignatureError::TooOld`] means an authentic but stale (or
//! replayed) request. Time comes in as an argument: the caller reads its
//! clock.
//!
//! Errors name what is wrong and where (which element of the header) but
//! never quote a secret; the header's own text is not secret and is quoted
//! at most through `tilewave_core::quote`.

use std::time::Duration;

use hmac::{KeyInit as _, Mac as _};
use tilewave_core::quote::quoted;

use crate::secret::{DEFAULT_GENERATED_LEN, Secret, generate};

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "Tilewave-Signature";

/// The signature scheme this module writes and checks.
pub const SCHEME: &str = "v1";

/// How far a signed timestamp may lie from the receiver's clock when the
/// receiver has no reason to choose: five minutes.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// The longest header accepted, in bytes (a timestamp and a dozen
/// signatures fit well within it).
pub const MAX_HEADER_LEN: usize = 1024;

/// The length of a `v1` signature in hex digits (32 bytes).
const V1_HEX_LEN: usize = 64;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Why a signature header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The header is empty (or only spaces).
    #[error("the {SIGNATURE_HEADER} header is empty")]
    Empty,
    /// The header is longer than [`MAX_HEADER_LEN`].
    #[error("the {SIGNATURE_HEADER} header is {len} bytes, at most {max} are accepted")]
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An element is not `key=value`.
    #[error("element {index} of the {SIGNATURE_HEADER} header is not `key=value`: {text}")]
    NotKeyValue {
        /// The element's position, 1-based.
        index: usize,
        /// The element, quoted and bounded.
        text: String,
    },
    /// No `t=` element.
    #[error("the {SIGNATURE_HEADER} header has no timestamp (`t=<unix seconds>`)")]
    MissingTimestamp,
    /// More than one `t=` element.
    #[error("element {index} of the {SIGNATURE_HEADER} header is a second timestamp")]
    DuplicateTimestamp {
        /// The second one's position, 1-based.
        index: usize,
    },
    /// The `t=` value is not a decimal number of seconds.
    #[error(
        "element {index} of the {SIGNATURE_HEADER} header: the timestamp {text} is not unix seconds (1 to 18 digits)"
    )]
    BadTimestamp {
        /// Its position, 1-based.
        index: usize,
        /// The value, quoted and bounded.
        text: String,
    },
    /// No `v1=` element.
    #[error("the {SIGNATURE_HEADER} header has no {SCHEME} signature (`v1=<hex>`)")]
    MissingSignature,
    /// A `v1=` value is not 64 lowercase hex digits.
    #[error(
        "element {index} of the {SIGNATURE_HEADER} header: a {SCHEME} signature is 64 lowercase hex digits"
    )]
    BadSignature {
        /// Its position, 1-based.
        index: usize,
    },
    /// No `v1` signature matches the body under the secret: a wrong secret,
    /// a body changed on the way, or a forged header.
    #[error("no {SCHEME} signature of the {SIGNATURE_HEADER} header matches the body and the secret")]
    Mismatch,
    /// The signature matches, but it was made longer ago than the tolerance.
    #[error(
        "the signature was made {age_secs} s ago, more than the {tolerance_secs} s tolerated (a replay?)"
    )]
    TooOld {
        /// Seconds between the signed time and now.
        age_secs: u64,
        /// The tolerance, in seconds.
        tolerance_secs: u64,
    },
    /// The signature matches, but its time is ahead of now by more than the
    /// tolerance.
    #[error(
        "the signature's time is {ahead_secs} s ahead of this clock, more than the {tolerance_secs} s tolerated"
    )]
    InFuture {
        /// Seconds the signed time is ahead.
        ahead_secs: u64,
        /// The tolerance, in seconds.
        tolerance_secs: u64,
    },
}

/// A parsed signature header: the signed time and the `v1` MACs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The signed time, unix seconds.
    pub timestamp: u64,
    /// The timestamp's digits as they appear in the header (the signed
    /// payload starts with them).
    timestamp_text: String,
    /// Every `v1` MAC, in header order.
    signatures: Vec<[u8; 32]>,
}

impl Signature {
    /// Parses a header value (see the module docs). Elements are separated
    /// by `,`, with spaces around them ignored; unknown schemes are skipped.
    pub fn parse(header: &str) -> Result<Signature, SignatureError> {
        if header.len() > MAX_HEADER_LEN {
            return Err(SignatureError::TooLong {
                len: header.len(),
                max: MAX_HEADER_LEN,
            });
        }
        if header.trim().is_empty() {
            return Err(SignatureError::Empty);
        }
        let mut timestamp: Option<(u64, String)> = None;
        let mut signatures = Vec::new();
        for (i, element) in header.split(',').enumerate() {
            let index = i + 1;
            let element = element.trim();
            let (key, value) = element
                .split_once('=')
                .ok_or_else(|| SignatureError::NotKeyValue {
                    index,
                    text: quoted(element).to_string(),
                })?;
            match key.trim() {
                "t" => {
                    if timestamp.is_some() {
                        return Err(SignatureError::DuplicateTimestamp { index });
                    }
                    let value = value.trim();
                    let bad = || SignatureError::BadTimestamp {
                        index,
                        text: quoted(value).to_string(),
                    };
                    // Digits only (no sign, no `+`), and few enough to fit.
                    if value.is_empty() || value.len() > 18 || !value.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(bad());
                    }
                    let seconds = value.parse::<u64>().map_err(|_| bad())?;
                    timestamp = Some((seconds, value.to_owned()));
                }
                SCHEME => {
                    signatures.push(decode_hex(value.trim()).ok_or(SignatureError::BadSignature { index })?)
                }
                _ => {}
            }
        }
        let (timestamp, timestamp_text) = timestamp.ok_or(SignatureError::MissingTimestamp)?;
        if signatures.is_empty() {
            return Err(SignatureError::MissingSignature);
        }
        Ok(Signature {
            timestamp,
            timestamp_text,
            signatures,
        })
    }

    /// Whether any `v1` MAC is the one of `body` under `secret` (constant
    /// time for each comparison). The timestamp's age is not checked: see
    /// [`Signature::check_age`] and [`verify`].
    pub fn verify_mac(&self, secret: &Secret, body: &[u8]) -> Result<(), SignatureError> {
        let mac = payload_mac(secret, &self.timestamp_text, body);
        // Every candidate is compared, so the time taken does not say which
        // (or whether an earlier one) matched.
        let matched = self.signatures.iter().fold(false, |found, candidate| {
            mac.clone().verify_slice(candidate).is_ok() | found
        });
        if matched {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }

    /// Whether the signed time lies within `tolerance` of `now` (unix
    /// seconds), either side.
    pub fn check_age(&self, now: u64, tolerance: Duration) -> Result<(), SignatureError> {
        let tolerance_secs = tolerance.as_secs();
        if now >= self.timestamp {
            let age_secs = now - self.timestamp;
            if age_secs > tolerance_secs {
                return Err(SignatureError::TooOld {
                    age_secs,
                    tolerance_secs,
                });
            }
        } else {
            let ahead_secs = self.timestamp - now;
            if ahead_secs > tolerance_secs {
                return Err(SignatureError::InFuture {
                    ahead_secs,
                    tolerance_secs,
                });
            }
        }
        Ok(())
    }

    /// How many `v1` signatures the header carries.
    pub fn signature_count(&self) -> usize {
        self.signatures.len()
    }
}

/// The MAC state after absorbing `"<t>.<body>"`.
fn payload_mac(secret: &Secret, timestamp: &str, body: &[u8]) -> HmacSha256 {
    let mut mac = keyed(secret);
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// HMAC-SHA256 keyed with the secret's bytes (any key length is valid).
fn keyed(secret: &Secret) -> HmacSha256 {
    match HmacSha256::new_from_slice(secret.expose_bytes()) {
        Ok(mac) => mac,
        // HMAC takes keys of any length; a secret is never empty anyway.
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    }
}

/// `64` lowercase hex digits as 32 bytes; `None` for anything else.
fn decode_hex(text: &str) -> Option<[u8; 32]> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let b = text.as_bytes();
    if b.len() != V1_HEX_LEN {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

fn encode_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut hex = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

/// The `v1` value (64 hex digits) of `body` signed at `timestamp`.
fn v1(secret: &Secret, timestamp: u64, body: &[u8]) -> String {
    encode_hex(
        &payload_mac(secret, &timestamp.to_string(), body)
            .finalize()
            .into_bytes(),
    )
}

/// The [`SIGNATURE_HEADER`] value for `body` signed with `secret` at
/// `timestamp` (unix seconds, from the caller's clock):
/// `t=<timestamp>,v1=<hex>`.
pub fn sign(secret: &Secret, timestamp: u64, body: &[u8]) -> String {
    format!("t={timestamp},{SCHEME}={}", v1(secret, timestamp, body))
}

/// As [`sign`], with one `v1` per secret (for a rotation: the new secret
/// and the old one, so receivers holding either accept the request).
/// Without a secret the header has no signature and verifies nowhere.
pub fn sign_with_all(secrets: &[&Secret], timestamp: u64, body: &[u8]) -> String {
    let mut header = format!("t={timestamp}");
    for secret in secrets {
        header.push_str(&format!(",{SCHEME}={}", v1(secret, timestamp, body)));
    }
    header
}

/// Verifies a [`SIGNATURE_HEADER`] value for `body` under `secret`: it
/// parses, one `v1` matches (in constant time), and the signed time lies
/// within `tolerance` of `now` (unix seconds). Returns the parsed header.
pub fn verify(
    secret: &Secret,
    header: &str,
    body: &[u8],
    now: u64,
    tolerance: Duration,
) -> Result<Signature, SignatureError> {
    let signature = Signature::parse(header)?;
    signature.verify_mac(secret, body)?;
    signature.check_age(now, tolerance)?;
    Ok(signature)
}

/// A fresh per-target secret: [`DEFAULT_GENERATED_LEN`] (32) URL-safe
/// characters from the OS generator (192 bits), as [`generate`] makes.
pub fn generate_secret() -> crate::Result<Secret> {
    generate(DEFAULT_GENERATED_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(text: &str) -> Secret {
        Secret::from_text(text).unwrap()
    }

    /// HMAC-SHA256 of the raw payload, for the published vectors.
    fn raw(secret: &Secret, data: &[u8]) -> String {
        let mut mac = keyed(secret);
        mac.update(data);
        encode_hex(&mac.finalize().into_bytes())
    }

    #[test]
    fn the_mac_is_hmac_sha256() {
        // RFC 4231, test case 2.
        assert_eq!(
            raw(&secret("Jefe"), b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    /// A known answer of the header format: computed apart from this code
    /// (Python's `hmac.new(b"whsec-test-0001", b'1767225600.{"tile":"riverflow","severity":"SEV1"}', sha256)`).
    const VECTOR_SECRET: &str = "whsec-test-0001";
    const VECTOR_TIME: u64 = 1_767_225_600;
    const VECTOR_BODY: &[u8] = br#"{"tile":"riverflow","severity":"SEV1"}"#;
    const VECTOR_HEADER: &str =
        "t=1767225600,v1=1bf34d49eca5d97adeeaa49a4076354319dfc828de0e490e8a46476f75ae480f";

    #[test]
    fn known_answer() {
        let s = secret(VECTOR_SECRET);
        assert_eq!(sign(&s, VECTOR_TIME, VECTOR_BODY), VECTOR_HEADER);
        let parsed = verify(
            &s,
            VECTOR_HEADER,
            VECTOR_BODY,
            VECTOR_TIME + 10,
            DEFAULT_TOLERANCE,
        )
        .unwrap();
        assert_eq!(parsed.timestamp, VECTOR_TIME);
        assert_eq!(parsed.signature_count(), 1);
    }

    #[test]
    fn tampered_body_wrong_secret_and_forged_headers_fail() {
        let s = secret(VECTOR_SECRET);
        let header = sign(&s, VECTOR_TIME, VECTOR_BODY);
        let tampered = br#"{"tile":"riverflow","severity":"SEV4"}"#;
        let now = VECTOR_TIME;
        let t = DEFAULT_TOLERANCE;
        assert_eq!(
            verify(&s, &header, tampered, now, t),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&secret("whsec-test-0002"), &header, VECTOR_BODY, now, t),
            Err(SignatureError::Mismatch)
        );
        // The timestamp is signed: moving it breaks the MAC.
        let moved = header.replace("t=1767225600", "t=1767225601");
        assert_eq!(
            verify(&s, &moved, VECTOR_BODY, now, t),
            Err(SignatureError::Mismatch)
        );
        // Leading zeros are another payload, not the same time.
        let padded = header.replace("t=1767225600", "t=01767225600");
        assert_eq!(
            verify(&s, &padded, VECTOR_BODY, now, t),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn the_age_is_checked_after_the_mac() {
        let s = secret(VECTOR_SECRET);
        let header = sign(&s, VECTOR_TIME, VECTOR_BODY);
        let t = Duration::from_secs(300);
        let cases: [(u64, Result<(), SignatureError>); 6] = [
            (VECTOR_TIME, Ok(())),
            (VECTOR_TIME + 300, Ok(())),
            (
                VECTOR_TIME + 301,
                Err(SignatureError::TooOld {
                    age_secs: 301,
                    tolerance_secs: 300,
                }),
            ),
            (
                VECTOR_TIME + 86_400,
                Err(SignatureError::TooOld {
                    age_secs: 86_400,
                    tolerance_secs: 300,
                }),
            ),
            (VECTOR_TIME - 300, Ok(())),
            (
                VECTOR_TIME - 301,
                Err(SignatureError::InFuture {
                    ahead_secs: 301,
                    tolerance_secs: 300,
                }),
            ),
        ];
        for (now, expected) in cases {
            assert_eq!(
                verify(&s, &header, VECTOR_BODY, now, t).map(|_| ()),
                expected,
                "now {now}"
            );
        }
        // A stale forgery is a mismatch, not "too old".
        let other = sign(&secret("someone-else"), VECTOR_TIME, VECTOR_BODY);
        assert_eq!(
            verify(&s, &other, VECTOR_BODY, VECTOR_TIME + 86_400, t),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn rotation_signs_with_every_secret() {
        let old = secret("old-secret");
        let new = secret("new-secret");
        let header = sign_with_all(&[&new, &old], VECTOR_TIME, VECTOR_BODY);
        for s in [&old, &new] {
            let parsed = verify(s, &header, VECTOR_BODY, VECTOR_TIME, DEFAULT_TOLERANCE).unwrap();
            assert_eq!(parsed.signature_count(), 2);
        }
        assert_eq!(
            verify(
                &secret("third"),
                &header,
                VECTOR_BODY,
                VECTOR_TIME,
                DEFAULT_TOLERANCE
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(
                &old,
                &sign_with_all(&[], VECTOR_TIME, VECTOR_BODY),
                VECTOR_BODY,
                VECTOR_TIME,
                DEFAULT_TOLERANCE
            ),
            Err(SignatureError::MissingSignature)
        );
    }

    #[test]
    fn headers_parse_or_say_what_is_wrong() {
        let hex = "ab".repeat(32);
        let ok = |h: &str| Signature::parse(h).unwrap();
        assert_eq!(ok(&format!("t=5,v1={hex}")).timestamp, 5);
        assert_eq!(ok(&format!(" v1={hex} , t=7 ,v0=zz,v2=x")).timestamp, 7);
        assert_eq!(ok(&format!("t=1,v1={hex},v1={hex}")).signature_count(), 2);
        let cases: Vec<(String, SignatureError)> = vec![
            ("".into(), SignatureError::Empty),
            ("  ".into(), SignatureError::Empty),
            (
                "x".repeat(MAX_HEADER_LEN + 1),
                SignatureError::TooLong {
                    len: MAX_HEADER_LEN + 1,
                    max: MAX_HEADER_LEN,
                },
            ),
            (
                format!("t=1,{hex}"),
                SignatureError::NotKeyValue {
                    index: 2,
                    text: quoted(&hex).to_string(),
                },
            ),
            (format!("v1={hex}"), SignatureError::MissingTimestamp),
            (
                format!("t=1,t=2,v1={hex}"),
                SignatureError::DuplicateTimestamp { index: 2 },
            ),
            (
                format!("t=-1,v1={hex}"),
                SignatureError::BadTimestamp {
                    index: 1,
                    text: quoted("-1").to_string(),
                },
            ),
            (
                format!("t=1.5,v1={hex}"),
                SignatureError::BadTimestamp {
                    index: 1,
                    text: quoted("1.5").to_string(),
                },
            ),
            (
                format!("t=,v1={hex}"),
                SignatureError::BadTimestamp {
                    index: 1,
                    text: quoted("").to_string(),
                },
            ),
            (
                format!("t={},v1={hex}", "9".repeat(19)),
                SignatureError::BadTimestamp {
                    index: 1,
                    text: quoted(&"9".repeat(19)).to_string(),
                },
            ),
            ("t=1".into(), SignatureError::MissingSignature),
            ("t=1,v0=abc".into(), SignatureError::MissingSignature),
            ("t=1,v1=abc".into(), SignatureError::BadSignature { index: 2 }),
            (
                format!("t=1,v1={}", hex.to_ascii_uppercase()),
                SignatureError::BadSignature { index: 2 },
            ),
            (
                format!("t=1,v1={hex}0"),
                SignatureError::BadSignature { index: 2 },
            ),
        ];
        for (header, expected) in cases {
            assert_eq!(Signature::parse(&header), Err(expected.clone()), "{header:?}");
            let message = expected.to_string();
            assert!(
                message.contains(SIGNATURE_HEADER) || message.contains("signature"),
                "{message}"
            );
        }
    }

    #[test]
    fn errors_and_headers_never_show_the_secret() {
        let s = secret("hunter2-webhook-secret");
        let header = sign(&s, VECTOR_TIME, VECTOR_BODY);
        assert!(!header.contains("hunter2"));
        for e in [
            verify(&s, &header, b"x", VECTOR_TIME, DEFAULT_TOLERANCE).unwrap_err(),
            verify(&s, &header, VECTOR_BODY, VECTOR_TIME + 10_000, DEFAULT_TOLERANCE).unwrap_err(),
        ] {
            for shown in [e.to_string(), format!("{e:?}")] {
                assert!(!shown.contains("hunter2"), "{shown}");
            }
        }
        let parsed = Signature::parse(&header).unwrap();
        assert!(!format!("{parsed:?}").contains("hunter2"));
    }

    #[test]
    fn generated_secrets_are_fresh() {
        let a = generate_secret().unwrap();
        let b = generate_secret().unwrap();
        assert_eq!(a.len(), DEFAULT_GENERATED_LEN);
        assert_ne!(a.expose(), b.expose());
        let header = sign(&a, 1, b"{}");
        assert!(verify(&a, &header, b"{}", 1, DEFAULT_TOLERANCE).is_ok());
        assert_eq!(
            verify(&b, &header, b"{}", 1, DEFAULT_TOLERANCE),
            Err(SignatureError::Mismatch)
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

        #[test]
        fn any_body_round_trips_and_any_changed_byte_fails(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256),
            at in proptest::prelude::any::<usize>(),
            flip in 1u8..=255,
            t in 0u64..=999_999_999_999,
        ) {
            let s = secret("property-secret");
            let header = sign(&s, t, &body);
            proptest::prop_assert!(verify(&s, &header, &body, t, DEFAULT_TOLERANCE).is_ok());
            if !body.is_empty() {
                let mut changed = body.clone();
                changed[at % body.len()] ^= flip;
                proptest::prop_assert_eq!(
                    verify(&s, &header, &changed, t, DEFAULT_TOLERANCE),
                    Err(SignatureError::Mismatch)
                );
            }
        }

        #[test]
        fn parsing_any_header_never_panics(header in ".{0,200}") {
            let _ = Signature::parse(&header);
        }
    }
}
