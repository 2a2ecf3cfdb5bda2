//! Printing results: aligned tables and key/value blocks for people, JSON
//! and YAML for scripts.
//!
//! JSON and YAML are produced from the CLI's own serde view structs (see
//! `view`), never from prost types. YAML is emitted here from a
//! `serde_json::Value` rather than through a YAML crate: the views are plain
//! trees of maps, lists, strings, numbers and booleans, a block-style
//! emitter for them is short, and the maintained-crate situation for YAML
//! serialization in Rust is poor (`serde_yaml` is archived; `serde_yml` has
//! had soundness and quality problems), so a dependency would buy nothing.

use std::fmt::Write as _;

use clap::ValueEnum;
use serde::Serialize;

/// The output format, `-o`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    #[default]
    Table,
    /// JSON (one document; one line per event for `watch`).
    Json,
    /// YAML (one document; `---` between events for `watch`).
    Yaml,
}

/// Rows under a header, printed with aligned columns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    /// Column titles, upper case by convention.
    pub headers: Vec<String>,
    /// One entry per row, as many cells as headers.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these headers and no rows.
    pub fn new(headers: &[&str]) -> Self {
        Self {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text: columns separated by two spaces, each as wide as
    /// its widest cell, no trailing spaces.
    pub fn render(&self) -> String {
        let cols = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(cols) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for line in std::iter::once(&self.headers).chain(&self.rows) {
            let mut text = String::new();
            for (i, w) in widths.iter().enumerate() {
                let cell = line.get(i).map_or("", String::as_str);
                if i + 1 == cols {
                    text.push_str(cell);
                } else {
                    let _ = write!(text, "{cell:<w$}  ");
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `KEY  value` lines with the keys aligned, for one object.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in pairs {
        let _ = writeln!(out, "{k:<width$}  {v}");
    }
    out
}

/// Serializes a view in JSON or YAML (pretty), or `None` for `Table`.
pub fn structured<T: Serialize>(format: Format, value: &T) -> anyhow::Result<Option<String>> {
    Ok(match format {
        Format::Table => None,
        Format::Json => Some(format!("{}\n", serde_json::to_string_pretty(value)?)),
        Format::Yaml => Some(to_yaml(&serde_json::to_value(value)?)),
    })
}

/// One line of JSON, for streams.
pub fn json_line<T: Serialize>(value: &T) -> anyhow::Result<String> {
    Ok(format!("{}\n", serde_json::to_string(value)?))
}

/// A JSON value as a block-style YAML document.
pub fn to_yaml(value: &serde_json::Value) -> String {
    let mut out = String::new();
    match value {
        serde_json::Value::Object(m) if !m.is_empty() => yaml_block(value, 0, &mut out),
        serde_json::Value::Array(a) if !a.is_empty() => yaml_block(value, 0, &mut out),
        scalar => {
            out.push_str(&yaml_scalar(scalar));
            out.push('\n');
        }
    }
    out
}

/// Whether a value is printed on its key's line.
fn is_inline(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Object(m) => m.is_empty(),
        serde_json::Value::Array(a) => a.is_empty(),
        _ => true,
    }
}

/// A non-empty map or list, indented by `indent` spaces.
fn yaml_block(value: &serde_json::Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let key = yaml_string(k);
                if is_inline(v) {
                    let _ = writeln!(out, "{pad}{key}: {}", yaml_scalar(v));
                } else {
                    let _ = writeln!(out, "{pad}{key}:");
                    yaml_block(v, indent + 2, out);
                }
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                if is_inline(item) {
                    let _ = writeln!(out, "{pad}- {}", yaml_scalar(item));
                } else {
                    // Render the item two spaces in, then put the dash in
                    // place of the first line's indentation.
                    let mut inner = String::new();
                    yaml_block(item, indent + 2, &mut inner);
                    let rest = inner.get(indent + 2..).unwrap_or("");
                    let _ = write!(out, "{pad}- {rest}");
                }
            }
        }
        scalar => {
            let _ = writeln!(out, "{pad}{}", yaml_scalar(scalar));
        }
    }
}

/// A scalar (or an empty map or list) on one line.
fn yaml_scalar(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "null".into(),
        serde_json::Value::Bool(b) => b.to_string(),
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) => yaml_string(s),
        serde_json::Value::Array(_) => "[]".into(),
        serde_json::Value::Object(_) => "{}".into(),
    }
}

/// A string plain when YAML reads it back as the same string, otherwise
/// double-quoted with JSON escapes (which YAML's double-quoted style
/// accepts).
fn yaml_string(s: &str) -> String {
    if is_plain_safe(s) {
        s.to_owned()
    } else {
        serde_json::Value::String(s.to_owned()).to_string()
    }
}

/// Whether `s` can be written without quotes.
fn is_plain_safe(s: &str) -> bool {
    const RESERVED: &[&str] = &["true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"];
    let Some(first) = s.chars().next() else {
        return false;
    };
    if RESERVED.contains(&s.to_ascii_lowercase().as_str()) {
        return false;
    }
    // Anything that might read as a number, date or time.
    if first.is_ascii_digit() || ((first == '-' || first == '+' || first == '.') && s.len() > 1) {
        return false;
    }
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) || s.ends_with(':') || s.ends_with(' ') || s.starts_with(' ') {
        return false;
    }
    !(s.contains(": ") || s.contains(" #") || s.chars().any(|c| c.is_control()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tables_align_columns_without_trailing_spaces() {
        let mut t = Table::new(&["ID", "STATE", "NOTE"]);
        t.row(vec!["riverflow".into(), "DRAFT".into(), String::new()]);
        t.row(vec!["a".into(), "SIGNED_OFF".into(), "ok".into()]);
        assert_eq!(
            t.render(),
            "ID         STATE       NOTE\nriverflow  DRAFT\na          SIGNED_OFF  ok\n"
        );
    }

    #[test]
    fn fields_align_keys() {
        assert_eq!(
            fields(&[("ID", "x".into()), ("STATE", "DRAFT".into())]),
            "ID     x\nSTATE  DRAFT\n"
        );
    }

    #[test]
    fn yaml_of_nested_views() {
        let v = json!({
            "id": "riverflow",
            "revision": 2,
            "self_test": false,
            "ga_time": null,
            "note": "a: b",
            "empty": [],
            "states": ["DRAFT", "true"],
            "sign_offs": [
                {"role": "engineering", "revision": 2},
                {"role": "legal", "revision": 1}
            ],
            "config": {"name": "Riverflow", "port": "443", "endpoints": {"connect_path": "/connect"}}
        });
        let want = "\
id: riverflow
revision: 2
self_test: false
ga_time: null
note: \"a: b\"
empty: []
states:
  - DRAFT
  - \"true\"
sign_offs:
  - role: engineering
    revision: 2
  - role: legal
    revision: 1
config:
  name: Riverflow
  port: \"443\"
  endpoints:
    connect_path: /connect
";
        assert_eq!(to_yaml(&v), want);
    }

    #[test]
    fn yaml_quotes_what_would_read_back_differently() {
        for s in [
            "",
            "true",
            "No",
            "12",
            "-1",
            "2026-12-08T17:00:00Z",
            "a: b",
            "#x",
            " x",
            "x\ny",
            "null",
        ] {
            assert!(yaml_string(s).starts_with('"'), "{s:?} should be quoted");
        }
        for s in [
            "riverflow",
            "partner-sa",
            "/connect",
            "https://x.example/a",
            "SIGNED_OFF",
            "a b",
        ] {
            assert_eq!(yaml_string(s), s, "{s:?} should be plain");
        }
        assert_eq!(yaml_string("x\ny"), "\"x\\ny\"");
    }

    #[test]
    fn structured_formats() {
        let v = json!({"a": 1});
        assert_eq!(structured(Format::Table, &v).unwrap(), None);
        assert_eq!(
            structured(Format::Json, &v).unwrap().unwrap(),
            "{\n  \"a\": 1\n}\n"
        );
        assert_eq!(structured(Format::Yaml, &v).unwrap().unwrap(), "a: 1\n");
        assert_eq!(json_line(&v).unwrap(), "{\"a\":1}\n");
    }
}
