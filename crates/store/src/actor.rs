//! Who makes a change. With the role check on (TLS), the caller is its
//! certificate identity ([`tilewave_auth::Caller`] in the request's
//! extensions), and the `x-tilewave-actor` entry counts only from the
//! `service` role acting on a user's behalf; without it (plaintext) callers
//! name themselves in that entry. Automatic changes are made by
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
        Self::claimed(md).map_or_else(Self::anonymous, Self::new)
    }

    /// The actor of a request: the certificate identity of the checked
    /// caller when the role check let it through (see
    /// [`tilewave_auth::Caller::actor_name`]), else the name it claims.
    pub fn from_request<T>(req: &tonic::Request<T>) -> Self {
        match req.extensions().get::<tilewave_auth::Caller>() {
            Some(caller) => Self::new(caller.actor_name(Self::claimed(req.metadata()))),
            None => Self::from_metadata(req.metadata()),
        }
    }

    fn claimed(md: &tonic::metadata::MetadataMap) -> Option<&str> {
        md.get(ACTOR_HEADER).and_then(|v| v.to_str().ok())
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

    fn request(claimed: Option<&str>, caller: Option<(&str, &str)>) -> tonic::Request<()> {
        let mut req = tonic::Request::new(());
        if let Some(name) = claimed {
            req.metadata_mut().insert(ACTOR_HEADER, name.parse().unwrap());
        }
        if let Some((identity, role)) = caller {
            req.extensions_mut().insert(tilewave_auth::Caller {
                identity: tilewave_auth::Identity::parse(identity).unwrap(),
                role: role.parse().unwrap(),
            });
        }
        req
    }

    #[test]
    fn from_request_names_the_certificate_identity_when_checked() {
        let cases = [
            // (claimed, caller, actor)
            (Some("alice"), None, "alice"),
            (None, None, "anonymous"),
            (Some("alice"), Some(("ann", "release-engineer")), "ann"),
            (Some("alice"), Some(("ann", "viewer")), "ann"),
            (None, Some(("ann", "release-engineer")), "ann"),
            (
                Some("ola"),
                Some(("tilewave-escalation", "service")),
                "ola (via tilewave-escalation)",
            ),
            (None, Some(("tilewave-rollout", "service")), "tilewave-rollout"),
        ];
        for (claimed, caller, want) in cases {
            let got = Actor::from_request(&request(claimed, caller));
            assert_eq!(got.as_str(), want, "{claimed:?} {caller:?}");
        }
    }
}
