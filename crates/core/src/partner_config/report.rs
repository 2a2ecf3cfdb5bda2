//! What validation reports: errors and warnings, each at a JSON path
//! (`$.endpoints.connect_path`, `$.supported_clouds[1]`), collected all at
//! once rather than stopping at the first.

use std::fmt;

/// A JSON path into a config document, in the `$.a.b[0].c` notation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JsonPath(String);

impl JsonPath {
    /// The document itself: `$`.
    pub fn root() -> Self {
        Self("$".to_string())
    }

    /// The member `key` of the object at this path. Keys that are not plain
    /// identifiers are written in bracket form: `$["odd key"]`.
    pub fn key(&self, key: &str) -> Self {
        let plain = !key.is_empty()
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !key.starts_with(|c: char| c.is_ascii_digit());
        if plain {
            Self(format!("{}.{key}", self.0))
        } else {
            Self(format!("{}[{key:?}]", self.0))
        }
    }

    /// Element `index` of the array at this path.
    pub fn index(&self, index: usize) -> Self {
        Self(format!("{}[{index}]", self.0))
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What kind of problem an error is, for callers that react differently
/// (e.g. a CLI hinting at the allowed values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConfigErrorKind {
    /// The text is not JSON at all.
    Syntax,
    /// A required field is absent.
    Missing,
    /// A value has the wrong JSON type.
    WrongType,
    /// A string is not one of the allowed values of its enum.
    UnknownValue,
    /// A value of the right type breaks a validation rule.
    Invalid,
}

/// A line and column (both from 1) in the config text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TextPosition {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

/// One problem that makes a config unacceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where: `$` for the whole document.
    pub path: JsonPath,
    /// What kind of problem.
    pub kind: ConfigErrorKind,
    /// A sentence for humans.
    pub message: String,
    /// For syntax errors, where in the text.
    pub position: Option<TextPosition>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Something accepted but worth telling the partner about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// Where.
    pub path: JsonPath,
    /// A sentence for humans.
    pub message: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every error found in a config, in document order (never empty when
/// returned as an `Err`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors {
    /// The errors.
    pub errors: Vec<ConfigError>,
    /// Warnings found along the way, so a fixed config shows no surprises.
    pub warnings: Vec<ConfigWarning>,
}

impl ConfigErrors {
    /// The paths of the errors, in order.
    pub fn paths(&self) -> Vec<&str> {
        self.errors.iter().map(|e| e.path.as_str()).collect()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        write!(
            f,
            "{n} error{} in the partner config",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.errors {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

/// A config that passed validation, with the warnings it raised.
#[derive(Debug, Clone, PartialEq)]
pub struct Validated<T> {
    /// The typed, normalised config.
    pub config: T,
    /// Accepted oddities (e.g. a missing delete_connection_path).
    pub warnings: Vec<ConfigWarning>,
}

/// Collects errors and warnings during one validation.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) errors: Vec<ConfigError>,
    pub(crate) warnings: Vec<ConfigWarning>,
}

impl Report {
    pub(crate) fn error(&mut self, path: &JsonPath, kind: ConfigErrorKind, message: impl Into<String>) {
        self.errors.push(ConfigError {
            path: path.clone(),
            kind,
            message: message.into(),
            position: None,
        });
    }

    pub(crate) fn invalid(&mut self, path: &JsonPath, message: impl Into<String>) {
        self.error(path, ConfigErrorKind::Invalid, message);
    }

    pub(crate) fn warn(&mut self, path: &JsonPath, message: impl Into<String>) {
        self.warnings.push(ConfigWarning {
            path: path.clone(),
            message: message.into(),
        });
    }

    /// `Ok(config)` with the warnings when no error was recorded.
    pub(crate) fn finish<T>(mut self, config: Option<T>) -> Result<Validated<T>, ConfigErrors> {
        if config.is_none() && self.errors.is_empty() {
            // Every reader that yields `None` records why; this keeps the
            // promise of a non-empty error list should one ever forget.
            self.invalid(&JsonPath::root(), "the config is incomplete");
        }
        match config {
            Some(config) if self.errors.is_empty() => Ok(Validated {
                config,
                warnings: self.warnings,
            }),
            Some(_) | None => Err(ConfigErrors {
                errors: self.errors,
                warnings: self.warnings,
            }),
        }
    }
}
