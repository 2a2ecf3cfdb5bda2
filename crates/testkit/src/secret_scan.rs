//! A scan for secret plaintext in everything a test captured: log files,
//! exported spans (flattened to text by the caller), command output, etcd
//! keys and values, files.
//!
//! Each secret is looked for in several forms ([`Secrets::basic`]): the
//! password alone, `user:password`, the HTTP Basic header's base64 of
//! `user:password`, the password as a JSON or Rust string escapes it (when
//! that differs), and its first [`PREFIX_LEN`] characters (a bounded quote
//! would show those). A [`Leak`] names the place, the secret's label and
//! the form, never the secret itself, so a failing test's message is safe
//! to print.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use tilewave_testkit::secret_scan::{Scan, Secrets};
//! let mut secrets = Secrets::new();
//! secrets.basic("the first credential", "tilewave", "old-password-5f2c9a01");
//! let mut scan = Scan::new(&secrets);
//! scan.text("creds submit: stdout", "version 1, fingerprint 5f2c9a01...e1b4");
//! scan.file(std::path::Path::new("/tmp/test/credentials.log"))?;
//! scan.finish()?; // Err lists every leak
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::TestDir;

/// How many leading characters of a password are looked for on their own
/// (passwords at least twice as long only, so that the prefix is still
/// specific).
pub const PREFIX_LEN: usize = 10;

/// The HTTP `Authorization` value a Basic credential travels as:
/// `Basic <base64 of user:password>`.
pub fn basic_header(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

/// One form of one secret to look for.
#[derive(Clone)]
struct Needle {
    /// The secret's label and the form, e.g. "the new credential (password)".
    label: String,
    bytes: Vec<u8>,
}

impl fmt::Debug for Needle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Needle")
            .field("label", &self.label)
            .field("len", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

/// The secrets a scan looks for, each in all its forms. `Debug` shows
/// labels and lengths only.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    needles: Vec<Needle>,
}

impl Secrets {
    /// No secrets yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A Basic-auth credential: the password, `user:password`, the
    /// base64 of `user:password` (the `Authorization: Basic` value), the
    /// escaped forms of the password and its first [`PREFIX_LEN`]
    /// characters (for passwords of at least twice that).
    pub fn basic(&mut self, label: &str, user: &str, password: &str) -> &mut Self {
        let pair = format!("{user}:{password}");
        self.push(label, "user:password", pair.as_bytes());
        self.push(
            label,
            "base64 of user:password",
            STANDARD.encode(&pair).as_bytes(),
        );
        self.plain_forms(label, "password", password);
        self
    }

    /// A secret without a user (a token, a key): the text, its escaped
    /// forms and its prefix, as for [`Secrets::basic`]'s password.
    pub fn plain(&mut self, label: &str, text: &str) -> &mut Self {
        self.plain_forms(label, "plaintext", text);
        self
    }

    fn plain_forms(&mut self, label: &str, form: &str, text: &str) {
        self.push(label, form, text.as_bytes());
        let json = serde_json::to_string(text).unwrap_or_default();
        let json = json.trim_matches('"');
        if json != text {
            self.push(label, &format!("{form}, JSON-escaped"), json.as_bytes());
        }
        let debug = format!("{text:?}");
        let debug = debug.trim_matches('"');
        if debug != text && debug != json {
            self.push(label, &format!("{form}, Debug-escaped"), debug.as_bytes());
        }
        if text.chars().count() >= 2 * PREFIX_LEN {
            let prefix: String = text.chars().take(PREFIX_LEN).collect();
            self.push(
                label,
                &format!("first {PREFIX_LEN} characters of the {form}"),
                prefix.as_bytes(),
            );
        }
    }

    fn push(&mut self, label: &str, form: &str, bytes: &[u8]) {
        if bytes.is_empty() || self.needles.iter().any(|n| n.bytes == bytes) {
            return;
        }
        self.needles.push(Needle {
            label: format!("{label} ({form})"),
            bytes: bytes.to_vec(),
        });
    }

    /// `text` with every form of every secret replaced by `<secret>`
    /// (the longest first), for naming a place that holds one (an etcd
    /// key, say).
    pub fn redact(&self, text: &str) -> String {
        let mut needles: Vec<&Needle> = self.needles.iter().collect();
        needles.sort_by_key(|n| std::cmp::Reverse(n.bytes.len()));
        let mut out = text.to_owned();
        for n in needles {
            if let Ok(form) = std::str::from_utf8(&n.bytes) {
                out = out.replace(form, "<secret>");
            }
        }
        out
    }

    /// How many forms are looked for.
    pub fn len(&self) -> usize {
        self.needles.len()
    }

    /// Whether there is nothing to look for.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }
}

/// A secret found somewhere. Shows where (with any secret in the place's
/// name redacted) and which secret, never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leak {
    /// Where: a file, "etcd key ...", a span, a command's output.
    pub place: String,
    /// The secret's label and form.
    pub secret: String,
    /// The byte offset of the first occurrence in that place.
    pub offset: usize,
}

impl fmt::Display for Leak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} holds {} at byte {}", self.place, self.secret, self.offset)
    }
}

/// The scan's result when nothing leaked: what was looked through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanned {
    /// How many places (texts, files, keys, values) were scanned.
    pub places: usize,
    /// How many bytes in all.
    pub bytes: usize,
}

/// Every leak found, as the error of [`Scan::finish`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaks(pub Vec<Leak>);

impl fmt::Display for Leaks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} secret leak(s):", self.0.len())?;
        for leak in &self.0 {
            writeln!(f, "  {leak}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Leaks {}

/// A scan in progress: feed it every captured place, then
/// [`Scan::finish`].
#[derive(Debug)]
pub struct Scan<'a> {
    secrets: &'a Secrets,
    leaks: Vec<Leak>,
    places: usize,
    bytes: usize,
}

impl<'a> Scan<'a> {
    /// A scan for `secrets`.
    pub fn new(secrets: &'a Secrets) -> Self {
        Self {
            secrets,
            leaks: Vec::new(),
            places: 0,
            bytes: 0,
        }
    }

    /// Scans bytes found at `place`.
    pub fn bytes(&mut self, place: impl fmt::Display, hay: &[u8]) -> &mut Self {
        self.places += 1;
        self.bytes += hay.len();
        let mut place_name = None;
        for n in &self.secrets.needles {
            if let Some(offset) = find(hay, &n.bytes) {
                let place = place_name.get_or_insert_with(|| self.secrets.redact(&place.to_string()));
                self.leaks.push(Leak {
                    place: place.clone(),
                    secret: n.label.clone(),
                    offset,
                });
            }
        }
        self
    }

    /// Scans text found at `place`.
    pub fn text(&mut self, place: impl fmt::Display, text: &str) -> &mut Self {
        self.bytes(place, text.as_bytes())
    }

    /// Scans a command's standard output and error, as `<name>: stdout`
    /// and `<name>: stderr`.
    pub fn output(&mut self, name: &str, output: &std::process::Output) -> &mut Self {
        self.bytes(format!("{name}: stdout"), &output.stdout);
        self.bytes(format!("{name}: stderr"), &output.stderr)
    }

    /// Scans a whole file.
    pub fn file(&mut self, path: &Path) -> anyhow::Result<&mut Self> {
        let bytes = std::fs::read(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        Ok(self.bytes(path.display(), &bytes))
    }

    /// Scans every `*.log` file of a test directory (the logs of every
    /// process the kit started there); the files scanned.
    pub fn log_files(&mut self, dir: &TestDir) -> anyhow::Result<Vec<PathBuf>> {
        let logs = dir.log_files();
        for log in &logs {
            self.file(log)?;
        }
        Ok(logs)
    }

    /// Scans every key and every value of an etcd dump
    /// ([`crate::EtcdCluster::dump`]).
    pub fn etcd(&mut self, dump: &BTreeMap<String, (Vec<u8>, i64)>) -> &mut Self {
        for (key, (value, _)) in dump {
            self.text(format_args!("etcd key {key:?}"), key);
            self.bytes(format_args!("etcd value of {key:?}"), value);
        }
        self
    }

    /// The leaks found so far.
    pub fn leaks(&self) -> &[Leak] {
        &self.leaks
    }

    /// What was scanned, or every leak.
    pub fn finish(self) -> Result<Scanned, Leaks> {
        if self.leaks.is_empty() {
            Ok(Scanned {
                places: self.places,
                bytes: self.bytes,
            })
        } else {
            Err(Leaks(self.leaks))
        }
    }
}

/// The offset of the first `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > hay.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: &str = "tilewave";
    const PASSWORD: &str = "planted-password-7Hq2xZ\"9";

    fn secrets() -> Secrets {
        let mut s = Secrets::new();
        s.basic("the planted credential", USER, PASSWORD);
        s
    }

    fn planted_header() -> String {
        basic_header(USER, PASSWORD)
    }

    /// One leaked form per place; each is found, named, and the secret is
    /// in no message.
    #[test]
    fn a_planted_secret_is_found_in_each_place() -> anyhow::Result<()> {
        let secrets = secrets();
        let dir = TestDir::new("secret-scan")?;
        std::fs::write(
            dir.path().join("agent.log"),
            format!(
                "{{\"msg\":\"calling\",\"password\":{}}}\n",
                serde_json::to_string(PASSWORD)?
            ),
        )?;
        std::fs::create_dir_all(dir.path().join("sub"))?;
        std::fs::write(dir.path().join("sub").join("clean.log"), "nothing here\n")?;
        let mut dump = BTreeMap::new();
        dump.insert("/p/credentials/riverflow".to_owned(), (b"ok".to_vec(), 1));
        dump.insert(
            "/p/leaky".to_owned(),
            (format!("\x0a\x12{USER}:{PASSWORD}").into_bytes(), 2),
        );
        dump.insert(format!("/p/keys/{PASSWORD}"), (Vec::new(), 3));
        let output = std::process::Output {
            status: std::process::ExitStatus::default(),
            stdout: b"fingerprint 5f2c9a01...e1b4\n".to_vec(),
            stderr: format!("error: the secret {:?} is refused", &PASSWORD[..12]).into_bytes(),
        };

        let mut scan = Scan::new(&secrets);
        let logs = scan.log_files(&dir)?;
        assert_eq!(logs.len(), 2);
        scan.text("span \"probe\": event \"call\" authorization", &planted_header());
        scan.output("creds submit", &output);
        scan.etcd(&dump);
        scan.text("a clean place", "fingerprint 5f2c9a01...e1b4");
        let leaks = scan.finish().expect_err("the planted secrets were not found").0;
        let found: Vec<(String, String)> = leaks
            .iter()
            .map(|l| (l.place.clone(), l.secret.clone()))
            .collect();
        let agent_log = dir.path().join("agent.log").display().to_string();
        let expected = [
            (
                agent_log.as_str(),
                "the planted credential (password, JSON-escaped)",
            ),
            (
                "span \"probe\": event \"call\" authorization",
                "the planted credential (base64 of user:password)",
            ),
            (
                "creds submit: stderr",
                "the planted credential (first 10 characters of the password)",
            ),
            (
                "etcd value of \"/p/leaky\"",
                "the planted credential (user:password)",
            ),
            (
                "etcd key \"/p/keys/<secret>\"",
                "the planted credential (password)",
            ),
        ];
        for (place, secret) in expected {
            assert!(
                found.iter().any(|(p, s)| p == place && s == secret),
                "{place}: {secret} not found in {found:#?}"
            );
        }
        assert!(
            !found.iter().any(|(p, _)| p.contains("clean")
                || p.contains("stdout")
                || p.contains("/p/credentials/riverflow")),
            "{found:#?}"
        );
        let message = Leaks(leaks).to_string();
        assert!(message.contains("secret leak(s)"), "{message}");
        for form in [PASSWORD, &PASSWORD[..PREFIX_LEN], &planted_header()[6..]] {
            assert!(!message.contains(form), "{message}");
        }
        Ok(())
    }

    #[test]
    fn a_clean_scan_counts_what_it_read() {
        let secrets = secrets();
        let mut scan = Scan::new(&secrets);
        scan.text("one", "abc").bytes("two", b"de");
        assert_eq!(scan.finish(), Ok(Scanned { places: 2, bytes: 5 }));
    }

    #[test]
    fn forms_of_a_basic_credential() {
        let mut s = Secrets::new();
        s.basic("short", "u", "pw");
        // password, user:password, base64; no prefix for a short one and
        // nothing to escape.
        assert_eq!(s.len(), 3);
        assert!(!format!("{s:?}").contains("pw"), "{s:?}");
        s.basic("short", "u", "pw");
        assert_eq!(s.len(), 3, "the same forms are not looked for twice");
        // user:password, base64, password, JSON-escaped (the same as
        // Debug-escaped here), prefix.
        assert_eq!(secrets().len(), 5, "{:?}", secrets());
    }
}
