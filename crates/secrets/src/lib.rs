//! Secrets at rest and in memory (issue 15).
//!
//! - [`Secret`]: a validated secret string (1 to 4096 bytes of UTF-8, no
//!   control characters) in a zeroizing box whose `Debug` and `Display`
//!   redact; [`BasicCredential`] splits `user:password`; [`generate`] and
//!   [`generate_basic`] make random URL-safe passwords.
//! - [`fingerprint()`]: how a secret is shown, `5f2c9a01...e1b4`.
//! - [`Kek`] and [`Keyring`]: key-encryption keys from `TILEWAVE_KEK`
//!   (`id:base64key,...`, the first primary) or a file, rotation, and
//!   [`write_new_kek_file`] (0600, never replacing a key).
//! - [`Sealed`] with [`Keyring::seal`], [`Keyring::open`] and
//!   [`Keyring::rewrap`]: envelope encryption, AES-256-GCM under a data key
//!   of its own per secret, the data key wrapped by the primary KEK.
//!
//! - [`webhook`]: webhook signatures, HMAC-SHA256 over `"<t>.<body>"`
//!   with a per-target secret in a `Tilewave-Signature: t=...,v1=...`
//!   header, verified in constant time within a time tolerance.
//!
//! No error carries secret material: errors name the problem and where
//! (a byte offset, a keyring entry or line, a key id), never a secret, a key
//! or a plaintext.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod error;
pub mod fingerprint;
pub mod keyring;
pub mod sealed;
pub mod secret;
pub mod webhook;

pub use error::{Error, KekProblem, Location, Result};
pub use fingerprint::fingerprint;
pub use keyring::{KEK_ENV, Kek, Keyring, valid_kek_id, write_new_kek_file};
pub use sealed::Sealed;
pub use secret::{
    BasicCredential, DEFAULT_GENERATED_LEN, MAX_SECRET_LEN, Secret, generate, generate_basic,
    strip_line_ending,
};

#[cfg(test)]
mod tests;
