//! JSON for log lines: span and event fields written straight into a
//! buffer, escaped only where needed. The lines themselves are written by
//! the [`LocalLayer`](crate::layer::LocalLayer): one JSON object per event
//! carrying the current `trace_id` and `span_id`, so a log line leads to its
//! trace. Stderr, because a child process whose stdout pipe nobody drains
//! blocks (docs/design.md, "The stack").

use std::fmt::{self, Write as _};

use tracing::Subscriber;
use tracing::field::{Field, Visit};
use tracing_subscriber::registry::LookupSpan;

/// Writes `"name":value` pairs, comma-separated, into a `String`: the
/// inside of a JSON object without its braces, so that recording more of a
/// span's fields later only appends.
pub(crate) struct FragmentVisitor<'a> {
    buf: &'a mut String,
}

impl<'a> FragmentVisitor<'a> {
    /// Appends to `buf`, which may already hold fields.
    pub(crate) fn new(buf: &'a mut String) -> Self {
        FragmentVisitor { buf }
    }

    /// Writes `"name":` with the comma before it when needed.
    fn key(&mut self, field: &Field) {
        if !self.buf.is_empty() {
            self.buf.push(',');
        }
        // Writing into a `String` cannot fail.
        let _ = write_json_str(self.buf, field.name());
        self.buf.push(':');
    }

    fn display(&mut self, field: &Field, value: impl fmt::Display) {
        self.key(field);
        let _ = write!(self.buf, "{value}");
    }
}

// Written straight into the span's buffer, escaped on the fly: building a
// `serde_json::Value` per field (and a `String` per `Debug`/`Display` field)
// was most of what the JSON layer cost a span.
impl Visit for FragmentVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            self.display(field, value);
        } else {
            self.display(field, "null");
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        self.buf.push_str(itoa::Buffer::new().format(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        self.buf.push_str(itoa::Buffer::new().format(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.buf.push_str(if value { "true" } else { "false" });
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        let _ = write_json_str(self.buf, value);
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_debug(field, &format_args!("{value}"));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.key(field);
        self.buf.push('"');
        let _ = write!(Escaping(&mut *self.buf), "{value:?}");
        self.buf.push('"');
    }
}

/// A span's fields as recorded, turned into JSON only when a log line
/// shows them: most spans never see an event, and escaping and formatting
/// every RPC span's attributes up front was most of what logs cost a call.
#[derive(Debug, Default)]
pub(crate) struct SpanFields {
    entries: Vec<(&'static str, Captured)>,
    /// The text of string and `Debug` values, back to back.
    text: String,
}

/// One recorded value; text is a range of [`SpanFields::text`].
#[derive(Debug, Clone, Copy)]
enum Captured {
    Str(usize, usize),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
}

impl SpanFields {
    /// Room for `fields` values (a span's declared fields) without growing;
    /// nothing is allocated for a span without fields.
    pub(crate) fn with_capacity(fields: usize) -> Self {
        SpanFields {
            entries: Vec::with_capacity(fields),
            text: String::with_capacity(fields * 16),
        }
    }

    fn text(&mut self, field: &Field, write: impl FnOnce(&mut String)) {
        let start = self.text.len();
        write(&mut self.text);
        self.entries
            .push((field.name(), Captured::Str(start, self.text.len())));
    }

    /// Writes the fields as the inside of a JSON object (no braces), a
    /// comma first unless there are none.
    pub(crate) fn write_json(&self, out: &mut String) {
        for (name, value) in &self.entries {
            out.push(',');
            let _ = write_json_str(out, name);
            out.push(':');
            match *value {
                Captured::Str(start, end) => {
                    let _ = write_json_str(out, self.text.get(start..end).unwrap_or_default());
                }
                Captured::I64(v) => out.push_str(itoa::Buffer::new().format(v)),
                Captured::U64(v) => out.push_str(itoa::Buffer::new().format(v)),
                Captured::F64(v) if v.is_finite() => {
                    let _ = write!(out, "{v}");
                }
                Captured::F64(_) => out.push_str("null"),
                Captured::Bool(v) => out.push_str(if v { "true" } else { "false" }),
            }
        }
    }
}

impl Visit for SpanFields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.entries.push((field.name(), Captured::F64(value)));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.entries.push((field.name(), Captured::I64(value)));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.entries.push((field.name(), Captured::U64(value)));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.entries.push((field.name(), Captured::Bool(value)));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.text(field, |text| text.push_str(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.text(field, |text| {
            let _ = write!(text, "{value}");
        });
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.text(field, |text| {
            let _ = write!(text, "{value:?}");
        });
    }
}

/// Writes `s` as a JSON string, quotes included.
pub(crate) fn write_json_str(w: &mut String, s: &str) -> fmt::Result {
    w.push('"');
    Escaping(&mut *w).write_str(s)?;
    w.push('"');
    Ok(())
}

/// Whether `b` must be escaped inside a JSON string.
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Whether any byte of `s` must be escaped, eight bytes at a time (bit
/// tricks from "Bit Twiddling Hacks": a byte is zero, or less than n).
fn any_needs_escape(s: &str) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS != 0;
    let mut chunks = s.as_bytes().chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        // Bytes below 0x20 (control characters; bytes of 0x80 and above are
        // excluded by `!x`), quotes and backslashes.
        if x.wrapping_sub(ONES * 0x20) & !x & HIGHS != 0
            || has_zero(x ^ (ONES * u64::from(b'"')))
            || has_zero(x ^ (ONES * u64::from(b'\\')))
        {
            return true;
        }
    }
    chunks.remainder().iter().any(|&b| needs_escape(b))
}

/// Escapes what is written through it for the inside of a JSON string.
struct Escaping<'a>(&'a mut String);

impl fmt::Write for Escaping<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Names, ids and most values need no escaping: one copy.
        if !any_needs_escape(s) {
            self.0.push_str(s);
            return Ok(());
        }
        let mut start = 0;
        for (i, b) in s.bytes().enumerate() {
            if !needs_escape(b) {
                continue;
            }
            self.0.push_str(&s[start..i]);
            match b {
                b'"' => self.0.push_str("\\\""),
                b'\\' => self.0.push_str("\\\\"),
                b'\n' => self.0.push_str("\\n"),
                b'\r' => self.0.push_str("\\r"),
                b'\t' => self.0.push_str("\\t"),
                _ => write!(self.0, "\\u{b:04x}")?,
            }
            start = i + 1;
        }
        self.0.push_str(&s[start..]);
        Ok(())
    }
}

/// The human-readable layer the CLI logs with when asked to.
pub(crate) fn compact_layer<S>() -> impl tracing_subscriber::Layer<S> + Send + Sync + 'static
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .compact()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_only_where_json_needs_it() {
        let mut out = String::new();
        write_json_str(&mut out, "plain.name/Method").unwrap();
        assert_eq!(out, r#""plain.name/Method""#);
        out.clear();
        write_json_str(&mut out, "a \"q\"\n\u{1}\\ é").unwrap();
        assert_eq!(out, r#""a \"q\"\n\u0001\\ é""#);
        let parsed: String = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed, "a \"q\"\n\u{1}\\ é");
    }

    #[test]
    fn the_word_at_a_time_check_agrees_with_the_byte_check() {
        // Every byte value at every position of strings longer than a word,
        // among bytes on both sides of each boundary.
        let fillers = [b'a', b' ', b'!', b'#', b'[', b']', 0x7f];
        for len in [1usize, 7, 8, 9, 16, 23] {
            for at in 0..len {
                for filler in fillers {
                    for b in 0u8..=0x7f {
                        let mut bytes = vec![filler; len];
                        bytes[at] = b;
                        let s = std::str::from_utf8(&bytes).unwrap();
                        assert_eq!(any_needs_escape(s), s.bytes().any(needs_escape), "{s:?}");
                    }
                }
            }
        }
        assert!(!any_needs_escape("é, ü and ✓ need no escaping in JSON"));
        assert!(any_needs_escape("é, ü and ✓ and a \u{1f}"));
    }
}
