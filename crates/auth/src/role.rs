//! Roles: what an identity may do, named in the access policy and in the
//! RPC table.
//!
//! A role is written `release-engineer`, `oncall`, `partner:<partner-id>`,
//! `viewer` or `service`; anything else is refused. A partner role carries
//! the partner's id (the slug rule of `tilewave_core::slug`), which object
//! scoping compares with a tile's partner.

use std::fmt;
use std::str::FromStr;

use tilewave_core::quote::quoted;
use tilewave_core::slug::{IdError, TileId};

/// A caller's role.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Launches and steers roll-outs, edits tiles: the broadest human role.
    ReleaseEngineer,
    /// May pause and resume roll-outs, and handle incidents.
    Oncall,
    /// A partner, for its own tiles only.
    Partner(TileId),
    /// Reads.
    Viewer,
    /// One of tilewave's own services.
    Service,
}

/// A role without its partner id: what the RPC table names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RoleKind {
    /// `release-engineer`.
    ReleaseEngineer,
    /// `oncall`.
    Oncall,
    /// `partner:<partner-id>`, any partner id.
    Partner,
    /// `viewer`.
    Viewer,
    /// `service`.
    Service,
}

impl RoleKind {
    /// Every kind, in the order the table prints them.
    pub const ALL: [RoleKind; 5] = [
        RoleKind::ReleaseEngineer,
        RoleKind::Oncall,
        RoleKind::Partner,
        RoleKind::Viewer,
        RoleKind::Service,
    ];

    /// The kind's name as written (`partner` for every partner).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReleaseEngineer => "release-engineer",
            Self::Oncall => "oncall",
            Self::Partner => "partner",
            Self::Viewer => "viewer",
            Self::Service => "service",
        }
    }
}

impl fmt::Display for RoleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Role {
    /// The role's kind.
    pub fn kind(&self) -> RoleKind {
        match self {
            Self::ReleaseEngineer => RoleKind::ReleaseEngineer,
            Self::Oncall => RoleKind::Oncall,
            Self::Partner(_) => RoleKind::Partner,
            Self::Viewer => RoleKind::Viewer,
            Self::Service => RoleKind::Service,
        }
    }

    /// The partner id of a partner role.
    pub fn partner(&self) -> Option<&TileId> {
        match self {
            Self::Partner(id) => Some(id),
            _ => None,
        }
    }
}

/// Why a string is not a role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleError {
    /// Not one of the role names.
    #[error(
        "unknown role {}: use release-engineer, oncall, partner:<partner-id>, viewer or service",
        quoted(.0)
    )]
    Unknown(String),
    /// `partner:` with an id that is not one.
    #[error("role {}: the partner id is not valid: {source}", quoted(role))]
    PartnerId {
        /// The role as written.
        role: String,
        /// What is wrong with the id.
        source: IdError,
    },
}

impl FromStr for Role {
    type Err = RoleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "release-engineer" => Ok(Self::ReleaseEngineer),
            "oncall" => Ok(Self::Oncall),
            "viewer" => Ok(Self::Viewer),
            "service" => Ok(Self::Service),
            _ => match s.strip_prefix("partner:") {
                Some(id) => TileId::parse(id)
                    .map(Self::Partner)
                    .map_err(|source| RoleError::PartnerId {
                        role: s.to_owned(),
                        source,
                    }),
                None => Err(RoleError::Unknown(s.to_owned())),
            },
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Partner(id) => write!(f, "partner:{}", id.as_str()),
            other => f.write_str(other.kind().as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_and_display_round_trip() {
        let cases: &[(&str, RoleKind)] = &[
            ("release-engineer", RoleKind::ReleaseEngineer),
            ("oncall", RoleKind::Oncall),
            ("partner:acme", RoleKind::Partner),
            ("partner:glacier-data-2", RoleKind::Partner),
            ("viewer", RoleKind::Viewer),
            ("service", RoleKind::Service),
        ];
        for (text, kind) in cases {
            let role: Role = text.parse().unwrap();
            assert_eq!(role.kind(), *kind, "{text}");
            assert_eq!(role.to_string(), *text);
        }
        let acme: Role = "partner:acme".parse().unwrap();
        assert_eq!(acme.partner().map(TileId::as_str), Some("acme"));
        assert_eq!(Role::Viewer.partner(), None);
    }

    #[test]
    fn unknown_roles_and_bad_partner_ids_are_refused() {
        for text in [
            "",
            "admin",
            "Viewer",
            "viewer ",
            "release_engineer",
            "partner",
            "on-call",
        ] {
            let e = text.parse::<Role>().unwrap_err();
            assert!(matches!(e, RoleError::Unknown(_)), "{text:?}: {e}");
            assert!(e.to_string().contains("unknown role"), "{e}");
        }
        for text in [
            "partner:",
            "partner:Acme",
            "partner:-x",
            "partner:a--b",
            "partner:a b",
        ] {
            let e = text.parse::<Role>().unwrap_err();
            assert!(matches!(e, RoleError::PartnerId { .. }), "{text:?}: {e}");
            assert!(e.to_string().contains("partner id"), "{e}");
        }
        let long = format!("partner:{}", "a".repeat(10_000));
        let e = long.parse::<Role>().unwrap_err().to_string();
        assert!(e.len() < 400, "the message quotes a bounded piece: {e}");
    }

    #[test]
    fn kinds_are_named_as_written() {
        let names: Vec<&str> = RoleKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            ["release-engineer", "oncall", "partner", "viewer", "service"]
        );
    }
}
