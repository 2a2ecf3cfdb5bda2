//! What each fuzz target checks on one input, apart from the AFL harness so
//! that the seeds can be run as a plain test (`cargo test` here).
//!
//! The parsers take any text a partner hands in (`tilewave tile import`).
//! For every input, whichever bytes: no panic; a refusal lists at least one
//! error, each with a JSON path starting at `$`; and no message, error or
//! warning, grows with the input: a message quotes at most a bounded piece
//! of it (`tilewave_core::quote`), so [`MAX_MESSAGE_BYTES`] holds for any
//! input.

use tilewave_core::partner_config::{self as pc, ConfigErrors, ConfigWarning};

/// The longest message the parsers may produce for any input: what the
/// servers' last-resort cut allows (`tilewave_service::bounded`, 1 KiB).
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// The full PartnerConfig parser on `data`.
pub fn full(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        match pc::parse_partner_config(text) {
            Ok(v) => warnings(&v.warnings),
            Err(e) => refusal(&e),
        }
    }
}

/// The self-test config parser on `data`.
pub fn self_test(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        match pc::parse_self_test(text) {
            Ok(v) => warnings(&v.warnings),
            Err(e) => refusal(&e),
        }
    }
}

fn refusal(e: &ConfigErrors) {
    assert!(!e.errors.is_empty(), "a refusal without an error");
    for err in &e.errors {
        assert!(err.path.as_str().starts_with('$'), "path {:?}", err.path.as_str());
        bounded(&err.message);
    }
    warnings(&e.warnings);
}

fn warnings(ws: &[ConfigWarning]) {
    for w in ws {
        bounded(&w.message);
    }
}

fn bounded(message: &str) {
    assert!(
        message.len() <= MAX_MESSAGE_BYTES,
        "a message of {} bytes: {}…",
        message.len(),
        message.chars().take(200).collect::<String>()
    );
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn the_seeds_pass() -> std::io::Result<()> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/core/tests/fixtures/partner-connect");
        let mut n = 0;
        for entry in std::fs::read_dir(dir)? {
            let data = std::fs::read(entry?.path())?;
            super::full(&data);
            super::self_test(&data);
            n += 1;
        }
        assert!(n >= 4, "{n} seeds");
        Ok(())
    }

    #[test]
    fn odd_inputs() {
        for data in [&b""[..], b"{", b"null", b"[]", b"\xff\xfe", &[b'['; 10_000], b"{\"partner\":{}}"] {
            super::full(data);
            super::self_test(data);
        }
    }
}
