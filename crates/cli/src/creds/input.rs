//! Where `creds submit` reads the secret from: standard input (piped, never
//! a terminal) or `--file`, never the command line. One trailing line
//! ending is removed and the rest validated as a
//! [`tilewave_secrets::Secret`]; the bytes live only in a zeroizing
//! buffer allocated once (no reallocation leaves a copy behind) until the
//! `Secret` holds them. No error here contains the secret: each names the
//! problem, the source and what to do.

use std::io::Read;
use std::path::Path;

use tilewave_secrets::{MAX_SECRET_LEN, Secret, strip_line_ending};
use zeroize::Zeroizing;

use crate::error::CliError;

/// How to hand a secret in, for the errors.
pub const HOW: &str = "pipe it in (`tilewave creds submit riverflow < new-credential.txt`), \
give --file PATH, or let the platform make one with --generate";

/// Where the secret comes from, for the messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source<'a> {
    /// Standard input.
    Stdin,
    /// `--file PATH`.
    File(&'a Path),
}

impl Source<'_> {
    /// "standard input" or "--file /path".
    fn describe(self) -> String {
        match self {
            Self::Stdin => "standard input".to_owned(),
            Self::File(p) => format!("--file {}", p.display()),
        }
    }
}

/// Reads the secret from standard input, refusing a terminal: there is no
/// way to read it without echo here, and a secret typed on a terminal ends
/// up in the scrollback.
pub fn from_stdin(reader: impl Read, is_terminal: bool) -> Result<Secret, CliError> {
    if is_terminal {
        return Err(CliError::usage(format!(
            "standard input is a terminal: the secret is never typed or given on the command line; {HOW}"
        )));
    }
    read(reader, Source::Stdin)
}

/// Reads the secret from the file at `path`.
pub fn from_file(path: &Path) -> Result<Secret, CliError> {
    let file = std::fs::File::open(path).map_err(|e| {
        CliError::usage(format!(
            "--file {}: cannot open it ({e}); check the path, or pipe the secret in instead",
            path.display()
        ))
    })?;
    read(file, Source::File(path))
}

/// Reads at most [`MAX_SECRET_LEN`] bytes plus a line ending from `reader`
/// and validates them.
pub fn read(reader: impl Read, source: Source<'_>) -> Result<Secret, CliError> {
    // Room for the limit, a CR LF and one more byte to tell "too long",
    // allocated once so that reading never moves (and so copies) it.
    let limit = MAX_SECRET_LEN + 3;
    let mut buf = Zeroizing::new(Vec::with_capacity(limit + 64));
    let mut limited = reader.take(limit as u64);
    // Read in place: `read_to_end` could grow the buffer and leave a copy.
    loop {
        let len = buf.len();
        if len == limit {
            break;
        }
        buf.resize(limit, 0);
        match limited.read(&mut buf[len..]) {
            Ok(0) => {
                buf.truncate(len);
                break;
            }
            Ok(n) => buf.truncate(len + n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => buf.truncate(len),
            Err(e) => {
                buf.truncate(len);
                return Err(CliError::usage(format!(
                    "reading the secret from {}: {e}",
                    source.describe()
                )));
            }
        }
    }
    let mut bytes = std::mem::take(&mut *buf);
    strip_line_ending(&mut bytes);
    if bytes.len() > MAX_SECRET_LEN {
        // Zeroed on drop.
        drop(Zeroizing::new(bytes));
        return Err(CliError::usage(format!(
            "the secret from {} is longer than {MAX_SECRET_LEN} bytes; hand in the credential alone",
            source.describe()
        )));
    }
    // `from_bytes` zeroes the buffer whether or not it accepts it.
    Secret::from_bytes(bytes).map_err(|e| {
        CliError::usage(format!(
            "the secret from {}: {e}; give exactly one line holding the password (or user:password)",
            source.describe()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: &str = "hunter2-correct-horse";

    #[test]
    fn one_line_ending_is_removed_and_the_rest_kept() {
        let cases: &[(&[u8], &str)] = &[
            (b"hunter2\n", "hunter2"),
            (b"hunter2\r\n", "hunter2"),
            (b"hunter2", "hunter2"),
            (b"ada:pa:ss word\n", "ada:pa:ss word"),
        ];
        for (input, want) in cases {
            let s = read(*input, Source::Stdin).unwrap();
            assert_eq!(s.expose(), *want, "{input:?}");
        }
        let max = "x".repeat(MAX_SECRET_LEN);
        assert_eq!(
            read(format!("{max}\r\n").as_bytes(), Source::Stdin)
                .unwrap()
                .len(),
            MAX_SECRET_LEN
        );
    }

    #[test]
    fn a_terminal_is_refused_before_anything_is_read() {
        let err = from_stdin(KNOWN.as_bytes(), true).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let text = err.to_string();
        assert!(
            text.contains("terminal") && text.contains("< new-credential.txt"),
            "{text}"
        );
        assert!(text.contains("--file") && text.contains("--generate"), "{text}");
        assert_eq!(from_stdin(KNOWN.as_bytes(), false).unwrap().expose(), KNOWN);
    }

    #[test]
    fn bad_secrets_exit_2_and_never_quote_the_secret() {
        let long = format!("{KNOWN}{}", "y".repeat(MAX_SECRET_LEN * 3));
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"".to_vec(), "empty"),
            (b"\n".to_vec(), "empty"),
            (long.into_bytes(), "longer than 4096"),
            ([KNOWN.as_bytes(), b"\xff"].concat(), "UTF-8"),
            (format!("{KNOWN}\n{KNOWN}\n").into_bytes(), "control character"),
            (format!("{KNOWN}\0").into_bytes(), "control character"),
            (format!("{KNOWN}\n\n").into_bytes(), "control character"),
        ];
        for (input, want) in cases {
            for source in [Source::Stdin, Source::File(Path::new("/tmp/cred.txt"))] {
                let err = read(input.as_slice(), source).unwrap_err();
                assert_eq!(err.exit_code(), 2);
                for text in [err.to_string(), format!("{err:?}")] {
                    assert!(text.contains(want), "{want:?} in {text}");
                    assert!(!text.contains(KNOWN) && !text.contains("hunter2"), "{text}");
                }
            }
        }
    }

    #[test]
    fn a_file_is_read_and_a_missing_one_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cred.txt");
        std::fs::write(&path, format!("{KNOWN}\n")).unwrap();
        assert_eq!(from_file(&path).unwrap().expose(), KNOWN);
        let err = from_file(&dir.path().join("nope.txt")).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("--file") && err.to_string().contains("nope.txt"));
    }
}
