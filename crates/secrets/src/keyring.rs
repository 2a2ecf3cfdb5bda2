//! Key-encryption keys ([`Kek`]) and the ring that holds them ([`Keyring`]):
//! the primary key wraps new data keys; older keys stay to unwrap what they
//! wrapped until it is re-wrapped ([`Keyring::rewrap`](crate::Keyring::rewrap)).
//!
//! The text form, in `TILEWAVE_KEK` (comma-separated) or a file (one entry
//! a line, `#` comments and blank lines allowed), is `id:base64key`, the
//! first entry being the primary:
//!
//! ```text
//! # the newest key first
//! k2026-12:q6Vt...=
//! k2026-06:Zm9v...=
//! ```

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::error::{Error, KekProblem, Location, Result};
use crate::secret::random_bytes;

/// The environment variable the services read their keyring from.
pub const KEK_ENV: &str = "TILEWAVE_KEK";

/// The longest key id.
pub const MAX_KEK_ID_LEN: usize = 32;

/// A key-encryption key: an id (stored beside every data key it wraps) and
/// 32 bytes of AES-256 key, zeroed when dropped. `Debug` and `Display` show
/// the id only.
#[derive(Clone)]
pub struct Kek {
    id: String,
    key: Zeroizing<[u8; 32]>,
}

/// Whether `id` is 1 to 32 characters of `a-z`, `0-9` and `-`.
pub fn valid_kek_id(id: &str) -> bool {
    (1..=MAX_KEK_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl Kek {
    /// A key from its id and bytes.
    pub fn new(id: &str, key: [u8; 32]) -> Result<Kek, KekProblem> {
        let key = Zeroizing::new(key);
        if !valid_kek_id(id) {
            return Err(KekProblem::BadId);
        }
        Ok(Kek {
            id: id.to_owned(),
            key,
        })
    }

    /// A fresh random key from the operating system's generator.
    pub fn generate(id: &str) -> Result<Kek> {
        if !valid_kek_id(id) {
            return Err(Error::Kek {
                location: Location::Entry(1),
                problem: KekProblem::BadId,
            });
        }
        let mut key = Zeroizing::new([0u8; 32]);
        random_bytes(key.as_mut())?;
        Ok(Kek {
            id: id.to_owned(),
            key,
        })
    }

    /// Parses one `id:base64key` entry.
    fn parse(entry: &str) -> Result<Kek, KekProblem> {
        let (id, b64) = entry.split_once(':').ok_or(KekProblem::MissingSeparator)?;
        let (id, b64) = (id.trim(), b64.trim());
        if !valid_kek_id(id) {
            return Err(KekProblem::BadId);
        }
        let decoded = Zeroizing::new(STANDARD.decode(b64).map_err(|_| KekProblem::NotBase64)?);
        let mut key = Zeroizing::new([0u8; 32]);
        if decoded.len() != key.len() {
            return Err(KekProblem::WrongLength { len: decoded.len() });
        }
        key.copy_from_slice(&decoded);
        Ok(Kek {
            id: id.to_owned(),
            key,
        })
    }

    /// The key's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key bytes, for the cipher.
    pub(crate) fn key(&self) -> &[u8; 32] {
        &self.key
    }

    /// The key as `id:base64key`, the form [`Keyring::parse`] reads; key
    /// material, so zeroed when dropped.
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut text = Zeroizing::new(String::with_capacity(self.id.len() + 1 + 44));
        text.push_str(&self.id);
        text.push(':');
        STANDARD.encode_string(self.key.as_ref(), &mut text);
        text
    }
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kek")
            .field("id", &self.id)
            .field("key", &format_args!("<redacted>"))
            .finish()
    }
}

impl fmt::Display for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key {}", self.id)
    }
}

/// Key-encryption keys, the primary first. Never empty; ids are unique.
#[derive(Clone)]
pub struct Keyring {
    keys: Vec<Kek>,
}

impl Keyring {
    /// A ring of one key.
    pub fn new(primary: Kek) -> Keyring {
        Keyring { keys: vec![primary] }
    }

    /// A ring of one fresh random key.
    pub fn generate(id: &str) -> Result<Keyring> {
        Ok(Keyring::new(Kek::generate(id)?))
    }

    /// Builds a ring from keys, the first being primary.
    pub fn from_keys(keys: Vec<Kek>) -> Result<Keyring> {
        let mut ring = Keyring {
            keys: Vec::with_capacity(keys.len()),
        };
        for (i, kek) in keys.into_iter().enumerate() {
            ring.push(kek, Location::Entry(i + 1))?;
        }
        if ring.keys.is_empty() {
            return Err(Error::EmptyKeyring);
        }
        Ok(ring)
    }

    fn push(&mut self, kek: Kek, location: Location) -> Result<()> {
        if self.get(&kek.id).is_some() {
            return Err(Error::Kek {
                location,
                problem: KekProblem::DuplicateId { id: kek.id.clone() },
            });
        }
        self.keys.push(kek);
        Ok(())
    }

    /// Parses `TILEWAVE_KEK`-style text: `id:base64key` entries separated by
    /// commas, the first primary. Errors name the entry (1-based) and the
    /// problem, never the key.
    pub fn parse(text: &str) -> Result<Keyring> {
        let mut ring = Keyring { keys: Vec::new() };
        for (i, entry) in text.split(',').enumerate() {
            let location = Location::Entry(i + 1);
            let kek = Kek::parse(entry.trim()).map_err(|problem| Error::Kek { location, problem })?;
            ring.push(kek, location)?;
        }
        Ok(ring)
    }

    /// Parses a keyring file's text: one `id:base64key` a line, the first
    /// primary; blank lines and lines starting with `#` are skipped. Errors
    /// name the line (1-based).
    pub fn parse_file_text(text: &str) -> Result<Keyring> {
        let mut ring = Keyring { keys: Vec::new() };
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let location = Location::Line(i + 1);
            let kek = Kek::parse(line).map_err(|problem| Error::Kek { location, problem })?;
            ring.push(kek, location)?;
        }
        if ring.keys.is_empty() {
            return Err(Error::EmptyKeyring);
        }
        Ok(ring)
    }

    /// Reads a keyring file (see [`Keyring::parse_file_text`]).
    pub fn from_file(path: &Path) -> Result<Keyring> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?);
        Keyring::parse_file_text(&text)
    }

    /// Reads the keyring from the environment variable `var` (normally
    /// [`KEK_ENV`]; see [`Keyring::parse`]).
    pub fn from_env(var: &str) -> Result<Keyring> {
        let text = Zeroizing::new(std::env::var(var).map_err(|_| Error::EnvNotSet { var: var.to_owned() })?);
        Keyring::parse(&text)
    }

    /// Makes `kek` the primary key (rotation); the former keys stay, to open
    /// and re-wrap what they sealed. A duplicate id is refused.
    pub fn rotate(&mut self, kek: Kek) -> Result<()> {
        if self.get(&kek.id).is_some() {
            return Err(Error::Kek {
                location: Location::Entry(1),
                problem: KekProblem::DuplicateId { id: kek.id.clone() },
            });
        }
        self.keys.insert(0, kek);
        Ok(())
    }

    /// Drops the key `id` once nothing is sealed under it any more; the
    /// primary cannot be removed. Returns whether a key was removed.
    pub fn retire(&mut self, id: &str) -> bool {
        let before = self.keys.len();
        let primary = self.primary().id.clone();
        if id != primary {
            self.keys.retain(|k| k.id != id);
        }
        self.keys.len() != before
    }

    /// The primary key, which wraps new data keys.
    pub fn primary(&self) -> &Kek {
        // Never empty: every constructor refuses an empty ring.
        &self.keys[0]
    }

    /// The key `id`, if held.
    pub fn get(&self, id: &str) -> Option<&Kek> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// The ids, the primary first.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.id.as_str())
    }

    /// The ring in the file form (one entry a line, the primary first): key
    /// material, so zeroed when dropped.
    pub fn to_file_text(&self) -> Zeroizing<String> {
        let mut text = Zeroizing::new(String::new());
        for kek in &self.keys {
            text.push_str(&kek.to_text());
            text.push('\n');
        }
        text
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("primary", &self.primary().id)
            .field("keys", &self.keys)
            .finish()
    }
}

impl fmt::Display for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "keyring ")?;
        for (i, kek) in self.keys.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{}", kek.id)?;
            if i == 0 {
                write!(f, " (primary)")?;
            }
        }
        Ok(())
    }
}

/// Writes a keyring file holding one fresh key `id` to `path` with mode
/// 0600 and returns the key: written to a temporary file in the same
/// directory, synced, then linked into place, so the file appears whole or
/// not at all. An existing file is never replaced (losing a key loses every
/// secret sealed under it): [`Error::KekFileExists`].
pub fn write_new_kek_file(path: &Path, id: &str) -> Result<Kek> {
    let kek = Kek::generate(id)?;
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    if path.exists() {
        return Err(Error::KekFileExists {
            path: path.to_owned(),
        });
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let mut suffix = [0u8; 8];
    random_bytes(&mut suffix)?;
    let tmp = dir.join(format!(".kek-{}.tmp", u64::from_le_bytes(suffix)));
    let written = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
            options.mode(0o600);
            let file = options.open(&tmp)?;
            // The mode given at creation is filtered by the umask.
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            write_key(file, &kek)
        }
        #[cfg(not(unix))]
        {
            write_key(options.open(&tmp)?, &kek)
        }
    })();
    let linked = written.and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(kek),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(Error::KekFileExists {
            path: path.to_owned(),
        }),
        Err(e) => Err(io(e)),
    }
}

fn write_key(mut file: std::fs::File, kek: &Kek) -> std::io::Result<()> {
    let mut text = Zeroizing::new(String::from(
        "# tilewave key-encryption keys: `id:base64key`, one a line, the primary first\n",
    ));
    text.push_str(&kek.to_text());
    text.push('\n');
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(bytes: &[u8]) -> String {
        STANDARD.encode(bytes)
    }

    #[test]
    fn parses_entries_primary_first() {
        let text = format!("k2:{}, k1:{}", b64(&[2; 32]), b64(&[1; 32]));
        let ring = Keyring::parse(&text).unwrap();
        assert_eq!(ring.primary().id(), "k2");
        assert_eq!(ring.ids().collect::<Vec<_>>(), ["k2", "k1"]);
        assert_eq!(ring.get("k1").unwrap().key(), &[1; 32]);
        assert!(ring.get("k3").is_none());
    }

    #[test]
    fn text_round_trip() {
        let kek = Kek::generate("dev-1").unwrap();
        let ring = Keyring::parse(&kek.to_text()).unwrap();
        assert_eq!(ring.primary().key(), kek.key());
        let two = Keyring::from_keys(vec![Kek::generate("b").unwrap(), kek.clone()]).unwrap();
        let back = Keyring::parse_file_text(&two.to_file_text()).unwrap();
        assert_eq!(back.ids().collect::<Vec<_>>(), ["b", "dev-1"]);
        assert_eq!(back.get("dev-1").unwrap().key(), kek.key());
    }

    #[test]
    fn errors_name_the_entry_and_never_the_key() {
        let good = b64(&[7; 32]);
        let short = b64(&[9; 16]);
        let cases = [
            (
                format!("k1:{good},{short}"),
                "keyring entry 2: expected `id:base64key`, found no ':'",
            ),
            (
                format!("k1:{good},k2:{short}"),
                "keyring entry 2: the key is 16 bytes after base64 decoding, expected 32",
            ),
            (format!("K1:{good}"), "keyring entry 1: the key id must be"),
            (format!(":{good}"), "keyring entry 1: the key id must be"),
            (
                format!("{}:{good}", "a".repeat(33)),
                "keyring entry 1: the key id must be",
            ),
            (
                format!("k1:{good},k2:{good},k1:{good}"),
                "keyring entry 3: the key id \"k1\" appears twice",
            ),
            (
                format!("k1:{good}!"),
                "keyring entry 1: the key is not valid base64",
            ),
            (String::new(), "keyring entry 1: expected"),
            (format!("k1:{good},"), "keyring entry 2: expected"),
        ];
        for (text, expected) in cases {
            let err = Keyring::parse(&text).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
            assert!(!err.contains(&good) && !err.contains(&short), "{err}");
            assert!(!err.contains(&good[..16]) && !err.contains(&short[..16]), "{err}");
        }
    }

    #[test]
    fn file_text_comments_and_lines() {
        let text = format!("# keys\n\nk2:{}\n  # old\nk1:{}\n", b64(&[2; 32]), b64(&[1; 32]));
        let ring = Keyring::parse_file_text(&text).unwrap();
        assert_eq!(ring.ids().collect::<Vec<_>>(), ["k2", "k1"]);
        let bad = format!("# keys\nk2:{}\n\nk1:{}\n", b64(&[2; 32]), b64(&[1; 31]));
        let err = Keyring::parse_file_text(&bad).unwrap_err().to_string();
        assert!(err.starts_with("keyring line 4: the key is 31 bytes"), "{err}");
        assert!(matches!(
            Keyring::parse_file_text("# nothing\n"),
            Err(Error::EmptyKeyring)
        ));
    }

    #[test]
    fn debug_and_display_show_ids_only() {
        let kek = Kek::new("k1", [0xab; 32]).unwrap();
        let text = kek.to_text();
        let key_b64 = text.split_once(':').unwrap().1.to_owned();
        let mut ring = Keyring::new(kek.clone());
        ring.rotate(Kek::generate("k2").unwrap()).unwrap();
        let k2_b64 = ring.primary().to_text().split_once(':').unwrap().1.to_owned();
        for shown in [
            format!("{kek:?}"),
            format!("{kek:#?}"),
            format!("{kek}"),
            format!("{ring:?}"),
            format!("{ring:#?}"),
            format!("{ring}"),
        ] {
            assert!(!shown.contains(&key_b64) && !shown.contains(&k2_b64), "{shown}");
            assert!(
                !shown.contains("171") && !shown.contains("ab, ") && !shown.contains("0xab"),
                "{shown}"
            );
            assert!(shown.contains("k1"), "{shown}");
        }
        assert_eq!(format!("{ring}"), "keyring k2 (primary), k1");
    }

    #[test]
    fn rotate_and_retire() {
        let mut ring = Keyring::generate("k1").unwrap();
        ring.rotate(Kek::generate("k2").unwrap()).unwrap();
        assert_eq!(ring.primary().id(), "k2");
        assert!(matches!(
            ring.rotate(Kek::generate("k1").unwrap()),
            Err(Error::Kek {
                problem: KekProblem::DuplicateId { .. },
                ..
            })
        ));
        assert!(!ring.retire("k2"), "the primary stays");
        assert!(ring.retire("k1"));
        assert!(!ring.retire("k1"));
        assert_eq!(ring.ids().collect::<Vec<_>>(), ["k2"]);
        assert!(Kek::generate("Bad").is_err());
        assert!(matches!(Keyring::from_keys(vec![]), Err(Error::EmptyKeyring)));
    }

    #[test]
    fn new_kek_file_is_0600_and_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek");
        let kek = write_new_kek_file(&path, "dev").unwrap();
        let ring = Keyring::from_file(&path).unwrap();
        assert_eq!(ring.primary().key(), kek.key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert!(matches!(
            write_new_kek_file(&path, "dev"),
            Err(Error::KekFileExists { .. })
        ));
        assert_eq!(Keyring::from_file(&path).unwrap().primary().key(), kek.key());
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let missing = Keyring::from_file(&dir.path().join("none"))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("none"), "{missing}");
    }

    #[test]
    fn from_env() {
        // A variable name of this test only (tests run in parallel).
        let var = "TILEWAVE_SECRETS_TEST_KEK_UNSET_4c1d";
        let err = Keyring::from_env(var).unwrap_err().to_string();
        assert!(err.contains(var), "{err}");
    }
}
