//! Who makes a change. Until mTLS gives identities, callers name themselves
//! in the `x-tilewave-actor` metadata entry; automatic changes are made by
//! `system:<service>`. Every audit record names its actor.

use std::fmt;

/// The metadata entry a caller names itself in.
pub const ACTOR_HEADER: &str = "x-tilewave-actor";
/// The actor of a request that names none.
pub const ANONYMOUS: &str = "anonymous";
/// Longest actor name kept; longer ones are cut.
const MAX_LEN: usize = 128;

/// The name of whoever makes a change.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Actor(String);

impl Actor {
    /// An actor by name; blank names are [`ANONYMOUS`], control characters
    /// are dropped and the name is cut to 128 bytes.
    pub fn new(name: impl AsRef<str>) -> Self {
        let mut clean: String = name.as_ref().trim().chars().filter(|c| !c.is_control()).collect();
        if clean.len() > MAX_LEN {
            let mut cut = MAX_LEN;
            while !clean.is_char_boundary(cut) {
                cut -= 1;
            }
            clean.truncate(cut);
        }
        if clean.is_empty() {
            return Self::anonymous();
        }
        Self(clean)
    }

    /// `anonymous`.
    pub fn anonymous() -> Self {
        Self(ANONYMOUS.to_owned())
    }

    /// `system:<service>`, for changes a service makes on its own.
    pub fn system(service: &str) -> Self {
        Self::new(format!("system:{service}"))
    }

    /// The actor named by the `x-tilewave-actor` entry, else anonymous.
    pub fn from_metadata(md: &tonic::metadata::MetadataMap) -> Self {
        md.get(ACTOR_HEADER)
            .and_then(|v| v.to_str().ok())
            .map_or_else(Self::anonymous, Self::new)
    }

    /// The actor of a request.
    pub fn from_request<T>(req: &tonic::Request<T>) -> Self {
        Self::from_metadata(req.metadata())
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_metadata() {
        let mut md = tonic::metadata::MetadataMap::new();
        assert_eq!(Actor::from_metadata(&md).as_str(), "anonymous");
        md.insert(ACTOR_HEADER, "alice".parse().unwrap());
        assert_eq!(Actor::from_metadata(&md).as_str(), "alice");
        md.insert(ACTOR_HEADER, "  ".parse().unwrap());
        assert_eq!(Actor::from_metadata(&md).as_str(), "anonymous");
        assert_eq!(Actor::system("rollout").as_str(), "system:rollout");
        assert_eq!(Actor::new("é".repeat(100)).as_str().len(), 128);
    }
}
