//! The one error type. No variant carries secret material: a refusal names
//! what is wrong (and where: a byte offset, a keyring entry or line) but
//! never quotes a secret, a key or a decrypted plaintext.

use std::path::PathBuf;

/// Where a keyring entry came from, for errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// The n-th comma-separated entry (1-based) of `TILEWAVE_KEK`-style text.
    Entry(usize),
    /// The n-th line (1-based) of a keyring file.
    Line(usize),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Entry(n) => write!(f, "entry {n}"),
            Location::Line(n) => write!(f, "line {n}"),
        }
    }
}

/// What is wrong with one keyring entry (never the key material itself).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KekProblem {
    /// No `:` between the id and the key.
    #[error("expected `id:base64key`, found no ':'")]
    MissingSeparator,
    /// The id is not 1 to 32 characters of `a-z`, `0-9` and `-`.
    #[error("the key id must be 1 to 32 characters of a-z, 0-9 and '-'")]
    BadId,
    /// The key is not standard base64 (with padding).
    #[error("the key is not valid base64")]
    NotBase64,
    /// The key decodes to the wrong number of bytes.
    #[error("the key is {len} bytes after base64 decoding, expected 32")]
    WrongLength {
        /// The decoded length.
        len: usize,
    },
    /// An earlier entry has the same id.
    #[error("the key id {id:?} appears twice")]
    DuplicateId {
        /// The repeated id (valid ids only are quoted).
        id: String,
    },
}

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A secret must not be empty.
    #[error("the secret is empty")]
    Empty,
    /// A secret is longer than [`crate::MAX_SECRET_LEN`].
    #[error("the secret is {len} bytes, at most {max} are allowed")]
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A secret is not valid UTF-8.
    #[error("the secret is not valid UTF-8 (at byte {offset})")]
    NotUtf8 {
        /// The byte offset of the first invalid sequence.
        offset: usize,
    },
    /// A secret holds a control character (NUL, a newline, a tab, DEL, ...).
    #[error("the secret holds a control character at byte {offset} (newlines and NUL are refused)")]
    ControlCharacter {
        /// Its byte offset.
        offset: usize,
    },
    /// A basic credential has no `:` between the user and the password.
    #[error("a basic credential is `user:password`, found no ':'")]
    MissingColon,
    /// A basic credential's user is empty.
    #[error("the user of a basic credential is empty")]
    EmptyUser,
    /// A user given to [`crate::generate_basic`] holds a `:`.
    #[error("the user of a basic credential must not contain ':'")]
    ColonInUser,
    /// A basic credential's password is empty.
    #[error("the password of a basic credential is empty")]
    EmptyPassword,
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed")]
    Random,
    /// A keyring with no key.
    #[error("the keyring holds no key")]
    EmptyKeyring,
    /// One keyring entry is wrong.
    #[error("keyring {location}: {problem}")]
    Kek {
        /// Which entry.
        location: Location,
        /// What is wrong with it.
        problem: KekProblem,
    },
    /// The keyring environment variable is not set (or not Unicode).
    #[error(
        "the environment variable {var} is not set (or not valid Unicode); it holds `id:base64key[,id:base64key...]`"
    )]
    EnvNotSet {
        /// The variable.
        var: String,
    },
    /// A keyring file could not be read or written.
    #[error("keyring file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// A key file already exists ([`crate::write_new_kek_file`] never replaces a key).
    #[error("keyring file {} already exists; a key file is never replaced", path.display())]
    KekFileExists {
        /// The file.
        path: PathBuf,
    },
    /// The sealed secret names a key the keyring does not hold.
    #[error("the secret is sealed under key {id}, which the keyring does not hold")]
    UnknownKek {
        /// The id needed (quoted through `tilewave_core::quote`).
        id: String,
    },
    /// A sealed secret's field has the wrong size.
    #[error("the sealed secret's {field} is {len} bytes, expected {expected}")]
    Malformed {
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The expected length (a minimum for the ciphertext).
        expected: usize,
    },
    /// Authentication failed: the ciphertext, the wrapped data key or the
    /// associated data (AAD) does not match.
    #[error("the sealed secret does not open: its ciphertext or its AAD does not match")]
    Open,
    /// Encryption failed (not expected for secrets within the size limit).
    #[error("encryption failed")]
    Seal,
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
