//! Tile and partner ids: the slug rule of docs/domain.md, "Tiles" ("Glacier Data Quality"
//! is `glacier-data-quality`) and the [`TileId`] newtype that every id given
//! with `--id` or `--partner`, or derived from a name, is checked into.
//!
//! An id is a DNS-label-like string so that it is safe in etcd keys, URLs and
//! log lines without quoting.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::quote::quoted;

/// The longest id accepted, in bytes (the length of a DNS label).
pub const MAX_ID_LEN: usize = 63;

/// Turns a display name into its slug: lower case, every run of characters
/// other than `[a-z0-9]` (after lower-casing) becomes one `-`, and leading and
/// trailing `-` are trimmed. Non-ASCII letters count as "other".
///
/// The result may be empty (a name of punctuation only) or longer than
/// [`MAX_ID_LEN`]; [`TileId::from_name`] checks both.
pub fn slugify(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending_dash = false;
    for c in name.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            if pending_dash && !out.is_empty() {
                out.push('-');
            }
            pending_dash = false;
            out.push(c);
        } else {
            pending_dash = true;
        }
    }
    out
}

/// Why a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The id is the empty string.
    #[error("an id must not be empty")]
    Empty,
    /// The id is longer than [`MAX_ID_LEN`] bytes.
    #[error("id {} is {len} characters long; at most {max} are allowed", quoted(id), max = MAX_ID_LEN)]
    TooLong {
        /// The offending id.
        id: String,
        /// Its length in bytes.
        len: usize,
    },
    /// The id holds a character other than `[a-z0-9-]`.
    #[error(
        "id {} holds {found:?} at byte {at}; only a-z, 0-9 and '-' are allowed",
        quoted(id)
    )]
    BadChar {
        /// The offending id.
        id: String,
        /// The first character that is not allowed.
        found: char,
        /// Its byte offset in the id.
        at: usize,
    },
    /// The id starts or ends with `-`.
    #[error("id {} must not start or end with '-'", quoted(.0))]
    EdgeDash(String),
    /// The id holds `--`.
    #[error("id {} must not contain \"--\"", quoted(.0))]
    DoubleDash(String),
    /// A name whose slug is empty, so no id can be derived from it.
    #[error("name {} has no letters or digits to derive an id from; give one with --id", quoted(.0))]
    NoSlug(String),
    /// A name whose slug is too long to be an id.
    #[error("the slug of name {} is {len} characters long (at most {max}); give an id with --id", quoted(name), max = MAX_ID_LEN)]
    SlugTooLong {
        /// The name as given.
        name: String,
        /// The slug's length in bytes.
        len: usize,
    },
}

/// A validated tile or partner id: non-empty, at most [`MAX_ID_LEN`] bytes,
/// only `[a-z0-9-]`, no leading, trailing or double `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileId(String);

impl TileId {
    /// Checks an id given explicitly (e.g. with `--id` or `--partner`).
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if s.is_empty() {
            return Err(IdError::Empty);
        }
        if let Some((at, found)) = s
            .char_indices()
            .find(|&(_, c)| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
        {
            return Err(IdError::BadChar {
                id: s.to_string(),
                found,
                at,
            });
        }
        if s.len() > MAX_ID_LEN {
            return Err(IdError::TooLong {
                id: s.to_string(),
                len: s.len(),
            });
        }
        if s.starts_with('-') || s.ends_with('-') {
            return Err(IdError::EdgeDash(s.to_string()));
        }
        if s.contains("--") {
            return Err(IdError::DoubleDash(s.to_string()));
        }
        Ok(Self(s.to_string()))
    }

    /// The default id of a tile (or partner) with this display name: its
    /// [`slugify`]d form, refused when empty or too long rather than
    /// truncated, so two long names can never collide silently.
    pub fn from_name(name: &str) -> Result<Self, IdError> {
        let slug = slugify(name);
        if slug.is_empty() {
            return Err(IdError::NoSlug(name.to_string()));
        }
        if slug.len() > MAX_ID_LEN {
            return Err(IdError::SlugTooLong {
                name: name.to_string(),
                len: slug.len(),
            });
        }
        Self::parse(&slug)
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for TileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for TileId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl AsRef<str> for TileId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for TileId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TileId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn slugify_follows_the_design_rule() {
        let cases = [
            ("Glacier Data Quality", "glacier-data-quality"),
            ("  Lumen  Dashboards!! ", "lumen-dashboards"),
            ("Riverflow", "riverflow"),
            ("A/B -- Test_2", "a-b-test-2"),
            ("Café Société", "caf-soci-t"),
            ("---", ""),
            ("", ""),
            ("ABC123", "abc123"),
        ];
        for (name, want) in cases {
            assert_eq!(slugify(name), want, "slug of {name:?}");
        }
    }

    #[test]
    fn parse_accepts_good_ids() {
        for id in ["a", "glacier-data-quality", "x1-2-3", &"a".repeat(63)] {
            assert_eq!(TileId::parse(id).map(|t| t.to_string()), Ok(id.to_string()));
        }
    }

    #[test]
    fn parse_refuses_bad_ids_with_typed_errors() {
        let long = "a".repeat(64);
        let cases: Vec<(&str, IdError)> = vec![
            ("", IdError::Empty),
            (
                &long,
                IdError::TooLong {
                    id: long.clone(),
                    len: 64,
                },
            ),
            (
                "Abc",
                IdError::BadChar {
                    id: "Abc".into(),
                    found: 'A',
                    at: 0,
                },
            ),
            (
                "a_b",
                IdError::BadChar {
                    id: "a_b".into(),
                    found: '_',
                    at: 1,
                },
            ),
            ("-ab", IdError::EdgeDash("-ab".into())),
            ("ab-", IdError::EdgeDash("ab-".into())),
            ("a--b", IdError::DoubleDash("a--b".into())),
        ];
        for (input, want) in cases {
            assert_eq!(TileId::parse(input), Err(want), "parse {input:?}");
        }
    }

    #[test]
    fn from_name_derives_or_refuses() {
        assert_eq!(
            TileId::from_name("Glacier Data Quality").map(TileId::into_string),
            Ok("glacier-data-quality".to_string())
        );
        assert_eq!(TileId::from_name("!!"), Err(IdError::NoSlug("!!".into())));
        let long = "word ".repeat(20);
        assert!(matches!(
            TileId::from_name(&long),
            Err(IdError::SlugTooLong { len: 99, .. })
        ));
    }

    #[test]
    fn serde_round_trip_validates() {
        let id: TileId = serde_json::from_str("\"lumen-bi\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"lumen-bi\"");
        assert!(serde_json::from_str::<TileId>("\"Lumen\"").is_err());
    }

    proptest! {
        #[test]
        fn slug_of_anything_is_a_valid_id_or_empty_or_long(name in ".{0,80}") {
            let slug = slugify(&name);
            if !slug.is_empty() && slug.len() <= MAX_ID_LEN {
                prop_assert!(TileId::parse(&slug).is_ok(), "{slug:?}");
            }
            prop_assert_eq!(slugify(&slug), slug.clone());
        }
    }
}
