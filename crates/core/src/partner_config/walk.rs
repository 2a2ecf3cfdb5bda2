//! Reading typed values out of a `serde_json::Value` tree while recording
//! every problem at its path, so one pass finds all errors.
//!
//! Each reader returns `None` when it recorded an error; callers keep going
//! and assemble the typed config only when every field came back `Some`.

use crate::quote::quoted;
use serde_json::{Map, Value};

use super::report::{ConfigErrorKind, JsonPath, Report};

/// A closed set of string values in a config (category, permissions, ...).
pub trait WireEnum: Sized + Copy + 'static {
    /// What the value is called in messages ("category", "cloud").
    const WHAT: &'static str;
    /// Every value, in its wire spelling.
    fn all() -> &'static [Self];
    /// The wire spelling.
    fn wire(self) -> &'static str;
    /// The value spelled exactly `s`.
    fn from_wire(s: &str) -> Option<Self> {
        Self::all().iter().copied().find(|v| v.wire() == s)
    }
}

/// The JSON type of a value, for messages.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong_type(r: &mut Report, path: &JsonPath, want: &str, got: &Value) {
    r.error(
        path,
        ConfigErrorKind::WrongType,
        format!("expected {want}, found {}", type_name(got)),
    );
}

/// An object member that must be present (and not null).
pub(crate) fn required<'a>(
    obj: &'a Map<String, Value>,
    path: &JsonPath,
    key: &str,
    r: &mut Report,
) -> Option<&'a Value> {
    match obj.get(key) {
        None | Some(Value::Null) => {
            r.error(
                &path.key(key),
                ConfigErrorKind::Missing,
                format!("{key} is required"),
            );
            None
        }
        Some(v) => Some(v),
    }
}

/// An optional object member; `null` counts as absent.
pub(crate) fn optional<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    match obj.get(key) {
        None | Some(Value::Null) => None,
        Some(v) => Some(v),
    }
}

/// The value as a string.
pub(crate) fn string<'a>(v: &'a Value, path: &JsonPath, r: &mut Report) -> Option<&'a str> {
    match v {
        Value::String(s) => Some(s),
        other => {
            wrong_type(r, path, "a string", other);
            None
        }
    }
}

/// The value as a boolean.
pub(crate) fn boolean(v: &Value, path: &JsonPath, r: &mut Report) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        other => {
            wrong_type(r, path, "a boolean", other);
            None
        }
    }
}

/// The value as an array.
pub(crate) fn array<'a>(v: &'a Value, path: &JsonPath, r: &mut Report) -> Option<&'a [Value]> {
    match v {
        Value::Array(a) => Some(a),
        other => {
            wrong_type(r, path, "an array", other);
            None
        }
    }
}

/// The value as an object.
pub(crate) fn object<'a>(v: &'a Value, path: &JsonPath, r: &mut Report) -> Option<&'a Map<String, Value>> {
    match v {
        Value::Object(o) => Some(o),
        other => {
            wrong_type(r, path, "an object", other);
            None
        }
    }
}

/// The value as one of the strings of `E`.
pub(crate) fn wire_enum<E: WireEnum>(v: &Value, path: &JsonPath, r: &mut Report) -> Option<E> {
    let s = string(v, path, r)?;
    match E::from_wire(s) {
        Some(e) => Some(e),
        None => {
            let allowed: Vec<&str> = E::all().iter().map(|e| e.wire()).collect();
            r.error(
                path,
                ConfigErrorKind::UnknownValue,
                format!(
                    "unknown {} {}; expected one of {}",
                    E::WHAT,
                    quoted(s),
                    allowed.join(", ")
                ),
            );
            None
        }
    }
}

/// Every element of an array through `each`; `None` if any failed (all are
/// still checked).
pub(crate) fn each<T>(
    items: &[Value],
    path: &JsonPath,
    r: &mut Report,
    mut each: impl FnMut(&Value, &JsonPath, &mut Report) -> Option<T>,
) -> Option<Vec<T>> {
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, v) in items.iter().enumerate() {
        match each(v, &path.index(i), r) {
            Some(t) => out.push(t),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// Warns about members that the format does not define: they are ignored.
pub(crate) fn warn_unknown_keys(obj: &Map<String, Value>, path: &JsonPath, known: &[&str], r: &mut Report) {
    for key in obj.keys() {
        if !known.contains(&key.as_str()) {
            r.warn(&path.key(key), format!("unknown field {key:?} is ignored"));
        }
    }
}

/// Defines a [`WireEnum`] with documented variants and their wire spellings,
/// plus `Display` and `Serialize` in the wire spelling.
macro_rules! define_wire_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $what:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $wire:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $crate::partner_config::walk::WireEnum for $name {
            const WHAT: &'static str = $what;
            fn all() -> &'static [Self] {
                &[$($name::$variant),+]
            }
            fn wire(self) -> &'static str {
                match self {
                    $($name::$variant => $wire,)+
                }
            }
        }

        impl $name {
            /// The spelling used in config files.
            pub fn as_str(self) -> &'static str {
                $crate::partner_config::walk::WireEnum::wire(self)
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

pub(crate) use define_wire_enum;
