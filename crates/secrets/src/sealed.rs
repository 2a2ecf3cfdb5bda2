//! Envelope encryption: [`Sealed`], and [`Keyring::seal`], [`Keyring::open`]
//! and [`Keyring::rewrap`].
//!
//! Each secret is encrypted with AES-256-GCM under its own random data key
//! (DEK) and a random 96-bit nonce; the DEK is encrypted ("wrapped") with
//! AES-256-GCM under the keyring's primary key-encryption key (KEK) with a
//! second random nonce, and the KEK's id is stored beside the ciphertext.
//! The caller's associated data (AAD, e.g. `<tile>/<version>`) is
//! authenticated by both encryptions, each under its own domain-separation
//! prefix, and the wrapped DEK also binds the KEK id: a sealed secret copied
//! to another tile, or a DEK moved to another secret, does not open.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::keyring::Keyring;
use crate::secret::{MAX_SECRET_LEN, Secret, random_bytes};

/// AES-GCM nonce length.
pub const NONCE_LEN: usize = 12;
/// AES-GCM tag length.
pub const TAG_LEN: usize = 16;
/// The length of a wrapped data key: 32 key bytes and the tag.
pub const WRAPPED_DEK_LEN: usize = 32 + TAG_LEN;

const DATA_DOMAIN: &[u8] = b"tilewave-secrets/data/v1\0";
const DEK_DOMAIN: &[u8] = b"tilewave-secrets/dek/v1\0";

/// A secret sealed at rest. Every field is public data: nothing here opens
/// without the KEK. Maps one to one onto a protobuf message (a string and
/// four `bytes`); with serde, byte fields are standard base64 strings, so
/// an agent's catalog file (JSON or TOML) stays readable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    /// The id of the KEK that wrapped the data key.
    pub kek_id: String,
    /// The data key encrypted under the KEK (32 bytes and the 16-byte tag).
    #[serde(with = "b64")]
    pub wrapped_dek: Vec<u8>,
    /// The nonce of the data key's encryption (12 bytes).
    #[serde(with = "b64")]
    pub dek_nonce: Vec<u8>,
    /// The nonce of the secret's encryption (12 bytes).
    #[serde(with = "b64")]
    pub nonce: Vec<u8>,
    /// The secret encrypted under the data key, the 16-byte tag included.
    #[serde(with = "b64")]
    pub ciphertext: Vec<u8>,
}

impl Sealed {
    /// Whether the data key is wrapped by another KEK than `keyring`'s
    /// primary, so that [`Keyring::rewrap`] would move it.
    pub fn needs_rewrap(&self, keyring: &Keyring) -> bool {
        self.kek_id != keyring.primary().id()
    }

    fn check_lengths(&self) -> Result<()> {
        let checks = [
            ("wrapped data key", self.wrapped_dek.len(), WRAPPED_DEK_LEN, false),
            ("data key nonce", self.dek_nonce.len(), NONCE_LEN, false),
            ("nonce", self.nonce.len(), NONCE_LEN, false),
            // At least the tag and one byte; at most a maximal secret.
            ("ciphertext", self.ciphertext.len(), TAG_LEN + 1, true),
        ];
        for (field, len, expected, minimum) in checks {
            if (minimum && len < expected) || (!minimum && len != expected) {
                return Err(Error::Malformed { field, len, expected });
            }
        }
        if self.ciphertext.len() > MAX_SECRET_LEN + TAG_LEN {
            return Err(Error::Malformed {
                field: "ciphertext",
                len: self.ciphertext.len(),
                expected: MAX_SECRET_LEN + TAG_LEN,
            });
        }
        Ok(())
    }
}

/// `prefix || u64 length of kek_id || kek_id || aad` (the KEK id only for
/// the wrapped DEK): unambiguous, and distinct for the two encryptions.
fn bound_aad(domain: &[u8], kek_id: Option<&str>, aad: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(domain.len() + 8 + 32 + aad.len());
    out.extend_from_slice(domain);
    if let Some(id) = kek_id {
        out.extend_from_slice(&(id.len() as u64).to_be_bytes());
        out.extend_from_slice(id.as_bytes());
    }
    out.extend_from_slice(aad);
    out
}

fn cipher(key: &[u8; 32]) -> Aes256Gcm {
    Aes256Gcm::new(&(*key).into())
}

fn random_nonce() -> Result<[u8; NONCE_LEN]> {
    let mut nonce = [0u8; NONCE_LEN];
    random_bytes(&mut nonce)?;
    Ok(nonce)
}

fn nonce(bytes: &[u8]) -> Result<Nonce<aes_gcm::aead::consts::U12>> {
    Nonce::try_from(bytes).map_err(|_| Error::Malformed {
        field: "nonce",
        len: bytes.len(),
        expected: NONCE_LEN,
    })
}

impl Keyring {
    /// Seals `plaintext` under a fresh data key wrapped by the primary KEK,
    /// binding `aad` (the caller's context, e.g. `<tile>/<version>`; not
    /// secret, not stored: the same `aad` must be given to
    /// [`Keyring::open`]).
    pub fn seal(&self, plaintext: &Secret, aad: &[u8]) -> Result<Sealed> {
        let mut dek = Zeroizing::new([0u8; 32]);
        random_bytes(dek.as_mut())?;
        let data_nonce = random_nonce()?;
        let ciphertext = cipher(&dek)
            .encrypt(
                &data_nonce.into(),
                Payload {
                    msg: plaintext.expose_bytes(),
                    aad: &bound_aad(DATA_DOMAIN, None, aad),
                },
            )
            .map_err(|_| Error::Seal)?;
        let (kek_id, dek_nonce, wrapped_dek) = self.wrap(&dek, aad)?;
        Ok(Sealed {
            kek_id,
            wrapped_dek,
            dek_nonce,
            nonce: data_nonce.to_vec(),
            ciphertext,
        })
    }

    /// Wraps `dek` under the primary KEK: (kek id, nonce, wrapped DEK).
    fn wrap(&self, dek: &[u8; 32], aad: &[u8]) -> Result<(String, Vec<u8>, Vec<u8>)> {
        let kek = self.primary();
        let dek_nonce = random_nonce()?;
        let wrapped = cipher(kek.key())
            .encrypt(
                &dek_nonce.into(),
                Payload {
                    msg: dek,
                    aad: &bound_aad(DEK_DOMAIN, Some(kek.id()), aad),
                },
            )
            .map_err(|_| Error::Seal)?;
        Ok((kek.id().to_owned(), dek_nonce.to_vec(), wrapped))
    }

    /// Unwraps the data key of `sealed` with the KEK it names.
    fn unwrap_dek(&self, sealed: &Sealed, aad: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
        sealed.check_lengths()?;
        let kek = self.get(&sealed.kek_id).ok_or_else(|| Error::UnknownKek {
            id: tilewave_core::quote::quote(&sealed.kek_id),
        })?;
        let plain = Zeroizing::new(
            cipher(kek.key())
                .decrypt(
                    &nonce(&sealed.dek_nonce)?,
                    Payload {
                        msg: &sealed.wrapped_dek,
                        aad: &bound_aad(DEK_DOMAIN, Some(kek.id()), aad),
                    },
                )
                .map_err(|_| Error::Open)?,
        );
        let mut dek = Zeroizing::new([0u8; 32]);
        if plain.len() != dek.len() {
            return Err(Error::Open);
        }
        dek.copy_from_slice(&plain);
        Ok(dek)
    }

    /// Opens `sealed` with the KEK it names and the same `aad` it was sealed
    /// with. A KEK not in the ring is [`Error::UnknownKek`] (naming the id
    /// needed); any authentication failure (a changed field, another
    /// AAD, another key under the same id) is [`Error::Open`], without
    /// detail.
    pub fn open(&self, sealed: &Sealed, aad: &[u8]) -> Result<Secret> {
        let dek = self.unwrap_dek(sealed, aad)?;
        let plain = cipher(&dek)
            .decrypt(
                &nonce(&sealed.nonce)?,
                Payload {
                    msg: &sealed.ciphertext,
                    aad: &bound_aad(DATA_DOMAIN, None, aad),
                },
            )
            .map_err(|_| Error::Open)?;
        Secret::from_bytes(plain)
    }

    /// Re-wraps the data key of `sealed` under the primary KEK (after a
    /// rotation), leaving the nonce and the ciphertext as they are: the
    /// secret is never decrypted. The wrapped key is authenticated with
    /// `aad` on the way (a wrong `aad` is [`Error::Open`]); the ciphertext
    /// is not read, so damage to it shows at [`Keyring::open`]. Already under
    /// the primary, the data key gets a fresh wrapping nonce, which is
    /// harmless.
    pub fn rewrap(&self, sealed: &Sealed, aad: &[u8]) -> Result<Sealed> {
        let dek = self.unwrap_dek(sealed, aad)?;
        let (kek_id, dek_nonce, wrapped_dek) = self.wrap(&dek, aad)?;
        Ok(Sealed {
            kek_id,
            wrapped_dek,
            dek_nonce,
            nonce: sealed.nonce.clone(),
            ciphertext: sealed.ciphertext.clone(),
        })
    }
}

/// Serde for byte fields as standard base64 strings.
mod b64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text.as_bytes()).map_err(serde::de::Error::custom)
    }
}
