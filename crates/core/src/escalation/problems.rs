//! Every problem of a definition at once, each with its path.

use std::fmt;

/// One problem of a definition: where (`levels[1].delay`) and what
/// (`must be more than zero`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The path of the offending field, as written in the YAML file.
    pub path: String,
    /// What is wrong and, where it helps, what to write instead.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem of a definition (never empty when returned as an error).
/// `Display` writes one problem a line.
#[derive(Debug, Clone, PartialEq, Eq, Default, thiserror::Error)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    /// Records a problem at `path`.
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    /// Adds `other`'s problems with `prefix` before each path
    /// (`schedules["primary"].` + `layers[0]`).
    pub fn extend_prefixed(&mut self, prefix: &str, other: Problems) {
        for p in other.0 {
            self.push(format!("{prefix}{}", p.path), p.message);
        }
    }

    /// `Ok(value)` if there are none, else `Err(self)`.
    pub fn into_result<T>(self, value: T) -> Result<T, Problems> {
        if self.0.is_empty() { Ok(value) } else { Err(self) }
    }

    /// The paths, in order (for tests and summaries).
    pub fn paths(&self) -> Vec<&str> {
        self.0.iter().map(|p| p.path.as_str()).collect()
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}
