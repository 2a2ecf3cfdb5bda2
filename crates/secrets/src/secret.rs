//! [`Secret`]: a validated secret string kept in a zeroizing box, never
//! printed; [`BasicCredential`]; random passwords ([`generate`]).

use std::fmt;

use rand::TryRngCore;
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// The longest secret accepted, in bytes.
pub const MAX_SECRET_LEN: usize = 4096;

/// The length of a generated password when the caller has no reason to
/// choose: 32 characters of a 64-character alphabet, 192 bits.
pub const DEFAULT_GENERATED_LEN: usize = 32;

/// The URL-safe alphabet of generated passwords (64 characters, so one
/// random byte masked to 6 bits picks a character without bias).
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A secret (a password, a token, a `user:password` pair): 1 to
/// [`MAX_SECRET_LEN`] bytes of UTF-8 without control characters, zeroed
/// when dropped. `Debug` prints `Secret(<redacted>)` and `Display`
/// `<redacted>`; the text is reached only through [`Secret::expose`].
///
/// Control characters (NUL, CR, LF, tab, DEL, C1) are refused, not trimmed:
/// a secret read from `echo secret | tilewave ...` ends with a newline, and
/// the CLI strips one line ending ([`strip_line_ending`]) before calling
/// [`Secret::from_bytes`], so that a newline inside a secret (a pasting
/// mistake, or two secrets in one) is an error rather than a silent part of
/// the password. Spaces are kept as given.
pub struct Secret(SecretString);

impl Secret {
    /// Validates `bytes` as a secret. The buffer is zeroed whether or not it
    /// is accepted; a refusal names the problem and a byte offset, never
    /// the content.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Secret> {
        let bytes = Zeroizing::new(bytes);
        if bytes.is_empty() {
            return Err(Error::Empty);
        }
        if bytes.len() > MAX_SECRET_LEN {
            return Err(Error::TooLong {
                len: bytes.len(),
                max: MAX_SECRET_LEN,
            });
        }
        let text = std::str::from_utf8(&bytes).map_err(|e| Error::NotUtf8 {
            offset: e.valid_up_to(),
        })?;
        if let Some((offset, _)) = text.char_indices().find(|(_, c)| c.is_control()) {
            return Err(Error::ControlCharacter { offset });
        }
        // Copy into the secret box; `bytes` is zeroed when it drops here.
        Ok(Secret(SecretString::from(text)))
    }

    /// Validates `text` as a secret (see [`Secret::from_bytes`]); also
    /// `text.parse::<Secret>()`.
    pub fn from_text(text: &str) -> Result<Secret> {
        Secret::from_bytes(text.as_bytes().to_vec())
    }

    /// The secret's text. Every use is a place where the secret leaves its
    /// box: keep the borrow short and never log it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The secret's bytes (UTF-8).
    pub fn expose_bytes(&self) -> &[u8] {
        self.expose().as_bytes()
    }

    /// The length in bytes (not secret enough to hide).
    pub fn len(&self) -> usize {
        self.expose().len()
    }

    /// Always false: an empty secret is refused.
    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }
}

impl std::str::FromStr for Secret {
    type Err = Error;

    fn from_str(text: &str) -> Result<Secret> {
        Secret::from_text(text)
    }
}

impl Clone for Secret {
    fn clone(&self) -> Self {
        Secret(SecretString::from(self.expose()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Removes one trailing line ending (`\n` or `\r\n`) from a secret read
/// from standard input or a file, for the CLI to call before
/// [`Secret::from_bytes`]. Only one is removed: anything else is the
/// caller's input and is validated as given.
pub fn strip_line_ending(bytes: &mut Vec<u8>) {
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
}

/// HTTP Basic credentials: a user (not secret) and a password.
#[derive(Clone)]
pub struct BasicCredential {
    /// The user: non-empty, no `:`.
    pub user: String,
    /// The password: non-empty, may contain `:`.
    pub password: Secret,
}

impl BasicCredential {
    /// Splits `user:password` at the first `:` (a user holds no `:`; a
    /// password may). Errors never quote either part.
    pub fn parse(secret: &Secret) -> Result<BasicCredential> {
        let (user, password) = secret.expose().split_once(':').ok_or(Error::MissingColon)?;
        if user.is_empty() {
            return Err(Error::EmptyUser);
        }
        if password.is_empty() {
            return Err(Error::EmptyPassword);
        }
        Ok(BasicCredential {
            user: user.to_owned(),
            password: Secret::from_text(password)?,
        })
    }

    /// The credential as one secret, `user:password`.
    pub fn to_secret(&self) -> Result<Secret> {
        let mut text = Zeroizing::new(String::with_capacity(self.user.len() + 1 + self.password.len()));
        text.push_str(&self.user);
        text.push(':');
        text.push_str(self.password.expose());
        Secret::from_text(&text)
    }
}

impl fmt::Debug for BasicCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicCredential")
            .field("user", &self.user)
            .field("password", &self.password)
            .finish()
    }
}

impl fmt::Display for BasicCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:<redacted>", tilewave_core::quote::quote(&self.user))
    }
}

/// Fills `buf` from the operating system's generator.
pub(crate) fn random_bytes(buf: &mut [u8]) -> Result<()> {
    OsRng.try_fill_bytes(buf).map_err(|_| Error::Random)
}

/// A random password of `len` characters (1 to [`MAX_SECRET_LEN`]) from the
/// URL-safe alphabet `A-Z a-z 0-9 - _` (6 bits a character), drawn from
/// the operating system's generator. Use [`DEFAULT_GENERATED_LEN`] (32)
/// unless a partner demands otherwise.
pub fn generate(len: usize) -> Result<Secret> {
    if len == 0 {
        return Err(Error::Empty);
    }
    if len > MAX_SECRET_LEN {
        return Err(Error::TooLong {
            len,
            max: MAX_SECRET_LEN,
        });
    }
    let mut bytes = Zeroizing::new(vec![0u8; len]);
    random_bytes(&mut bytes)?;
    for b in bytes.iter_mut() {
        *b = ALPHABET[usize::from(*b & 63)];
    }
    Secret::from_bytes(std::mem::take(&mut *bytes))
}

/// Basic credentials for `user` with a fresh [`DEFAULT_GENERATED_LEN`]
/// password. The user must be non-empty, without `:` or control characters.
pub fn generate_basic(user: &str) -> Result<BasicCredential> {
    if user.is_empty() {
        return Err(Error::EmptyUser);
    }
    if user.contains(':') {
        return Err(Error::ColonInUser);
    }
    if let Some((offset, _)) = user.char_indices().find(|(_, c)| c.is_control()) {
        return Err(Error::ControlCharacter { offset });
    }
    let credential = BasicCredential {
        user: user.to_owned(),
        password: generate(DEFAULT_GENERATED_LEN)?,
    };
    // The whole pair must fit a secret too.
    credential.to_secret()?;
    Ok(credential)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: &str = "hunter2-very-secret";

    #[test]
    fn debug_and_display_redact() {
        let s = Secret::from_text(PLAIN).unwrap();
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(format!("{s}"), "<redacted>");
        assert_eq!(format!("{s:#?}"), "Secret(<redacted>)");
        assert_eq!(s.expose(), PLAIN);
        assert_eq!(s.clone().expose(), PLAIN);
        assert_eq!(PLAIN.parse::<Secret>().unwrap().expose(), PLAIN);
    }

    #[test]
    fn from_bytes_refusals_name_the_problem_not_the_content() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![], "empty"),
            (b"Zq9x".repeat(1100), "4400 bytes"),
            (b"Zq9xWv\xff\xfe".to_vec(), "not valid UTF-8 (at byte 6)"),
            (b"Zq9xWv\0x".to_vec(), "control character at byte 6"),
            (b"Zq9xWv\n".to_vec(), "control character at byte 6"),
            (b"Zq9\r\nxWv".to_vec(), "control character at byte 3"),
            (b"Zq9\txWv".to_vec(), "control character at byte 3"),
            (b"Zq9\x7fxWv".to_vec(), "control character at byte 3"),
            ("Zq9\u{85}xWv".as_bytes().to_vec(), "control character at byte 3"),
        ];
        for (bytes, expected) in cases {
            let err = Secret::from_bytes(bytes).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
            assert!(!err.contains("Zq9") && !err.contains("xWv"), "{err}");
        }
        assert!(Secret::from_bytes(vec![b'a'; MAX_SECRET_LEN]).is_ok());
        assert!(Secret::from_text(" spaces are kept ").is_ok());
        assert_eq!(Secret::from_text("pässwörd✓").unwrap().expose(), "pässwörd✓");
    }

    #[test]
    fn strip_line_ending_removes_one() {
        for (input, out) in [
            (&b"abc\n"[..], &b"abc"[..]),
            (b"abc\r\n", b"abc"),
            (b"abc", b"abc"),
            (b"abc\n\n", b"abc\n"),
            (b"", b""),
            (b"abc\r", b"abc\r"),
        ] {
            let mut v = input.to_vec();
            strip_line_ending(&mut v);
            assert_eq!(v, out);
        }
    }

    #[test]
    fn basic_parse() {
        let c = BasicCredential::parse(&Secret::from_text("alice:Zq:9x").unwrap()).unwrap();
        assert_eq!(c.user, "alice");
        assert_eq!(c.password.expose(), "Zq:9x");
        assert_eq!(c.to_secret().unwrap().expose(), "alice:Zq:9x");
        for (text, expected) in [
            ("aliceZq9x", "no ':'"),
            (":Zq9x", "user of a basic credential is empty"),
            ("alice:", "password of a basic credential is empty"),
        ] {
            let err = BasicCredential::parse(&Secret::from_text(text).unwrap())
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{err}");
            assert!(!err.contains("alice") && !err.contains("Zq9x"), "{err}");
        }
    }

    #[test]
    fn basic_debug_and_display_redact_the_password() {
        let c = BasicCredential::parse(&Secret::from_text("alice:s3cr3t-pw").unwrap()).unwrap();
        for shown in [format!("{c:?}"), format!("{c:#?}"), format!("{c}")] {
            assert!(!shown.contains("s3cr3t-pw"), "{shown}");
            assert!(shown.contains("alice"), "{shown}");
        }
    }

    #[test]
    fn generated_passwords() {
        let a = generate(DEFAULT_GENERATED_LEN).unwrap();
        let b = generate(DEFAULT_GENERATED_LEN).unwrap();
        assert_eq!(a.len(), 32);
        assert_ne!(a.expose(), b.expose());
        assert!(a.expose().bytes().all(|c| ALPHABET.contains(&c)));
        assert_eq!(generate(MAX_SECRET_LEN).unwrap().len(), MAX_SECRET_LEN);
        assert!(matches!(generate(0), Err(Error::Empty)));
        assert!(matches!(generate(MAX_SECRET_LEN + 1), Err(Error::TooLong { .. })));
        // Every character of the alphabet turns up in a long password.
        let long = generate(MAX_SECRET_LEN).unwrap();
        assert!(ALPHABET.iter().all(|c| long.expose_bytes().contains(c)));
    }

    #[test]
    fn generated_basic() {
        let c = generate_basic("partner-a").unwrap();
        assert_eq!(c.user, "partner-a");
        assert_eq!(c.password.len(), DEFAULT_GENERATED_LEN);
        let back = BasicCredential::parse(&c.to_secret().unwrap()).unwrap();
        assert_eq!(back.password.expose(), c.password.expose());
        assert!(matches!(generate_basic(""), Err(Error::EmptyUser)));
        assert!(matches!(generate_basic("a:b"), Err(Error::ColonInUser)));
        assert!(matches!(
            generate_basic("a\nb"),
            Err(Error::ControlCharacter { offset: 1 })
        ));
    }
}
