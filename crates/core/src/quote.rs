//! Quoting outside input in messages, bounded.
//!
//! An error names what was wrong, and may quote it: but only a bounded part
//! of it. A 1 MB id echoed back in a `grpc-message` is too large for any
//! client, which then reports RESOURCE_EXHAUSTED instead of the error. Every
//! message that quotes input goes through [`quoted`]: at most
//! [`MAX_QUOTED_CHARS`] characters, escaped as Rust's `{:?}` escapes them,
//! then an ellipsis and the full length.

use std::fmt;

/// The most characters of one input a message quotes.
pub const MAX_QUOTED_CHARS: usize = 64;

/// `s` quoted for a message: `"riverflow"`, or for long input
/// `"aaaa…" (1048576 bytes)`. Control characters are escaped.
pub fn quoted(s: &str) -> Quoted<'_> {
    Quoted(s)
}

/// What [`quoted`] returns; its `Display` writes the bounded quote.
#[derive(Debug, Clone, Copy)]
pub struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cut = self
            .0
            .char_indices()
            .nth(MAX_QUOTED_CHARS)
            .map_or(self.0.len(), |(i, _)| i);
        let (head, rest) = self.0.split_at(cut);
        if rest.is_empty() {
            write!(f, "{head:?}")
        } else {
            // `{:?}` of the head, with the ellipsis inside the quotes.
            let shown = format!("{head:?}");
            let inner = shown.strip_suffix('"').unwrap_or(&shown);
            write!(f, "{inner}…\" ({} bytes)", self.0.len())
        }
    }
}

/// The bounded quote as a `String` (for `format!` arguments kept short).
pub fn quote(s: &str) -> String {
    quoted(s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_input_is_quoted_whole_and_escaped() {
        // (input, shown)
        let cases = [
            ("riverflow", "\"riverflow\""),
            ("", "\"\""),
            ("a\nb", "\"a\\nb\""),
            ("quote\"d", "\"quote\\\"d\""),
        ];
        for (input, shown) in cases {
            assert_eq!(quoted(input).to_string(), shown, "{input:?}");
        }
        let exactly = "x".repeat(MAX_QUOTED_CHARS);
        assert_eq!(quote(&exactly), format!("\"{exactly}\""));
    }

    #[test]
    fn long_input_is_cut_with_its_length() {
        let long = "a".repeat(1 << 20);
        let shown = quote(&long);
        assert_eq!(
            shown,
            format!("\"{}…\" ({} bytes)", "a".repeat(MAX_QUOTED_CHARS), 1 << 20)
        );
        assert!(shown.len() < 100);
        // Cut on a character boundary.
        let wide = "é".repeat(100);
        let shown = quote(&wide);
        assert!(
            shown.starts_with(&format!("\"{}…", "é".repeat(MAX_QUOTED_CHARS))),
            "{shown}"
        );
        assert!(shown.ends_with("(200 bytes)"), "{shown}");
    }
}
