//! The role check, pure: a peer's certificate identity, the policy and the
//! request path in, the caller or a refusal out.
//!
//! In order: no certificate, an unreadable one, a revoked serial, or an
//! identity the policy gives no role is UNAUTHENTICATED; a path the table
//! has no row for, or a role the row does not allow, is PERMISSION_DENIED,
//! naming the RPC and the role. Nothing here names other partners' tiles.

use tilewave_core::quote::quoted;

use crate::identity::{CertError, CertIdentity, Identity, Serial};
use crate::policy::Policy;
use crate::role::Role;
use crate::scope::Scope;
use crate::table::{Rule, rule_for};

/// Who is calling, once allowed: what the layer puts in the request's
/// extensions for the handlers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The certificate's identity.
    pub identity: Identity,
    /// Its role in the policy.
    pub role: Role,
}

impl Caller {
    /// Whether the caller may see objects of this partner: a partner only
    /// its own, every other role all ([`Scope::sees`]; a partner asking
    /// for another's tile is answered NOT_FOUND).
    pub fn sees_partner(&self, partner_id: &str) -> bool {
        Scope::of(Some(self)).sees(Some(partner_id))
    }

    /// The name an audit record gives this caller, from the name the call
    /// claims (the `x-tilewave-actor` entry): the certificate identity,
    /// except that a `service` acting on a user's behalf names both,
    /// `ola (via tilewave-escalation)`, and a `service` doing its own work
    /// (a claim `system:...`) is `system:<its certificate identity>`, never
    /// another system's name. Anyone else's claim is ignored.
    pub fn actor_name(&self, claimed: Option<&str>) -> String {
        match claimed.map(str::trim).filter(|c| !c.is_empty()) {
            Some(own) if self.role == Role::Service && own.starts_with("system:") => {
                format!("system:{}", self.identity)
            }
            Some(user) if self.role == Role::Service && user != self.identity.as_str() => {
                format!("{user} (via {})", self.identity)
            }
            _ => self.identity.as_str().to_owned(),
        }
    }
}

/// The peer as the transport saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// No client certificate (a plaintext connection, or TLS without one).
    NoCertificate,
    /// A certificate no identity could be read from.
    Unreadable(CertError),
    /// A certificate's identity.
    Certificate(CertIdentity),
}

/// The gRPC code of a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalCode {
    /// UNAUTHENTICATED: who is calling is not established.
    Unauthenticated,
    /// PERMISSION_DENIED: the caller is known and may not do this.
    PermissionDenied,
}

/// Why a call was refused; `Display` is the message the caller gets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No client certificate.
    #[error(
        "no client certificate: this service accepts only callers presenting a certificate of its CA \
         (the CLI: --tls-cert, --tls-key and --tls-ca; `tilewave certs issue NAME --role ROLE` makes one)"
    )]
    NoCertificate,
    /// A certificate no identity could be read from.
    #[error("{0}")]
    Unreadable(CertError),
    /// The certificate's serial is on the policy's deny-list.
    #[error("the certificate of {} (serial {serial}) is revoked", quoted(identity.as_str()))]
    Revoked {
        /// The certificate's identity.
        identity: Identity,
        /// Its serial.
        serial: Serial,
    },
    /// The policy gives the identity no role.
    #[error("identity {} has no role in the access policy", quoted(.0.as_str()))]
    UnknownIdentity(Identity),
    /// No row of the RPC table names the path.
    #[error("{} is not an RPC of the access table", quoted(.0))]
    UnknownRpc(String),
    /// The row does not allow the caller's role.
    #[error("{rpc} is not allowed for role {role} (allowed: {allowed})")]
    NotAllowed {
        /// The RPC (`RegistryService/CreateTile`).
        rpc: String,
        /// The caller's role.
        role: Role,
        /// The roles the row allows, comma-separated.
        allowed: String,
    },
}

impl Refusal {
    /// The gRPC code of the refusal.
    pub fn code(&self) -> RefusalCode {
        match self {
            Self::NoCertificate | Self::Unreadable(_) | Self::Revoked { .. } | Self::UnknownIdentity(_) => {
                RefusalCode::Unauthenticated
            }
            Self::UnknownRpc(_) | Self::NotAllowed { .. } => RefusalCode::PermissionDenied,
        }
    }
}

/// Whether `peer` may call `path` under `policy`.
pub fn decide(policy: &Policy, peer: Peer, path: &str) -> Result<Caller, Refusal> {
    let cert = match peer {
        Peer::NoCertificate => return Err(Refusal::NoCertificate),
        Peer::Unreadable(e) => return Err(Refusal::Unreadable(e)),
        Peer::Certificate(c) => c,
    };
    if policy.is_revoked(&cert.serial) {
        return Err(Refusal::Revoked {
            identity: cert.identity,
            serial: cert.serial,
        });
    }
    let Some(role) = policy.role_of(&cert.identity).cloned() else {
        return Err(Refusal::UnknownIdentity(cert.identity));
    };
    let rule = rule_for(path).ok_or_else(|| Refusal::UnknownRpc(path.to_owned()))?;
    if !rule.allows(role.kind()) {
        return Err(not_allowed(rule, role));
    }
    Ok(Caller {
        identity: cert.identity,
        role,
    })
}

fn not_allowed(rule: &Rule, role: Role) -> Refusal {
    Refusal::NotAllowed {
        rpc: rule.rpc(),
        role,
        allowed: rule
            .roles
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::role::RoleKind;
    use crate::table::TABLE;

    fn cert(name: &str, serial: &str) -> Peer {
        Peer::Certificate(CertIdentity {
            identity: Identity::parse(name).unwrap(),
            serial: serial.parse().unwrap(),
        })
    }

    fn policy() -> Policy {
        Policy::parse(
            "revoked_serials = [\"dead\"]\n[identities]\nada = \"release-engineer\"\nola = \"oncall\"\n\
             acme = \"partner:acme\"\nviv = \"viewer\"\ntilewave-rollout = \"service\"\n",
        )
        .unwrap()
    }

    const GET_TILE: &str = "/tilewave.registry.v1.RegistryService/GetTile";
    const CREATE_TILE: &str = "/tilewave.registry.v1.RegistryService/CreateTile";

    #[test]
    fn who_is_calling_is_established_first() {
        let p = policy();
        // (peer, path, expected message prefix)
        let cases: Vec<(Peer, &str, &str)> = vec![
            (Peer::NoCertificate, GET_TILE, "no client certificate"),
            (Peer::NoCertificate, "/no.Such/Rpc", "no client certificate"),
            (
                Peer::Unreadable(CertError::NoName),
                GET_TILE,
                "the client certificate names no subject CN",
            ),
            (
                cert("ada", "de:ad"),
                GET_TILE,
                "the certificate of \"ada\" (serial dead) is revoked",
            ),
            (
                cert("mallory", "1"),
                GET_TILE,
                "identity \"mallory\" has no role in the access policy",
            ),
            (cert("Ada", "1"), GET_TILE, "identity \"Ada\" has no role"),
            (
                cert("mallory", "1"),
                "/no.Such/Rpc",
                "identity \"mallory\" has no role",
            ),
        ];
        for (peer, path, want) in cases {
            let e = decide(&p, peer.clone(), path).unwrap_err();
            assert_eq!(e.code(), RefusalCode::Unauthenticated, "{peer:?}");
            assert!(e.to_string().starts_with(want), "{peer:?}: {e}");
        }
    }

    #[test]
    fn roles_are_checked_against_the_row() {
        let p = policy();
        let e = decide(&p, cert("viv", "1"), CREATE_TILE).unwrap_err();
        assert_eq!(e.code(), RefusalCode::PermissionDenied);
        assert_eq!(
            e.to_string(),
            "RegistryService/CreateTile is not allowed for role viewer (allowed: release-engineer)"
        );
        let e = decide(&p, cert("acme", "1"), CREATE_TILE).unwrap_err();
        assert!(e.to_string().contains("for role partner:acme"), "{e}");
        let e = decide(&p, cert("ada", "1"), "/tilewave.registry.v1.RegistryService/Nope").unwrap_err();
        assert_eq!(e.code(), RefusalCode::PermissionDenied);
        assert_eq!(
            e.to_string(),
            "\"/tilewave.registry.v1.RegistryService/Nope\" is not an RPC of the access table"
        );
        let long = format!("/{}", "x".repeat(100_000));
        assert!(decide(&p, cert("ada", "1"), &long).unwrap_err().to_string().len() < 200);

        let caller = decide(&p, cert("acme", "1"), GET_TILE).unwrap();
        assert_eq!(caller.identity.as_str(), "acme");
        assert_eq!(caller.role.to_string(), "partner:acme");
    }

    #[test]
    fn partners_see_only_their_own() {
        let p = policy();
        let acme = decide(&p, cert("acme", "1"), GET_TILE).unwrap();
        let viv = decide(&p, cert("viv", "1"), GET_TILE).unwrap();
        // (caller, partner id, sees)
        let cases = [
            (&acme, "acme", true),
            (&acme, "globex", false),
            (&acme, "", false),
            (&viv, "globex", true),
        ];
        for (caller, partner, sees) in cases {
            assert_eq!(caller.sees_partner(partner), sees, "{} {partner}", caller.role);
        }
    }

    #[test]
    fn audit_names_are_the_certificate_s_unless_a_service_acts_for_a_user() {
        let p = policy();
        let ada = decide(&p, cert("ada", "1"), GET_TILE).unwrap();
        let svc = decide(&p, cert("tilewave-rollout", "1"), GET_TILE).unwrap();
        // (caller, claimed, audit name)
        let cases = [
            (&ada, None, "ada"),
            (&ada, Some("grace"), "ada"),
            (&svc, None, "tilewave-rollout"),
            (&svc, Some(""), "tilewave-rollout"),
            (&svc, Some("  "), "tilewave-rollout"),
            (&svc, Some("tilewave-rollout"), "tilewave-rollout"),
            (&svc, Some("ola"), "ola (via tilewave-rollout)"),
            (&svc, Some("system:rollout"), "system:tilewave-rollout"),
            (&svc, Some("system:tilewave-registry"), "system:tilewave-rollout"),
            (&ada, Some("system:rollout"), "ada"),
        ];
        for (caller, claimed, want) in cases {
            assert_eq!(
                caller.actor_name(claimed),
                want,
                "{} {claimed:?}",
                caller.identity
            );
        }
    }

    /// Every (identity, row) pair: allowed exactly when the row names the
    /// identity's role, and then the caller is that identity and role.
    #[test]
    fn every_role_against_every_row() {
        let p = policy();
        let people: &[(&str, RoleKind)] = &[
            ("ada", RoleKind::ReleaseEngineer),
            ("ola", RoleKind::Oncall),
            ("acme", RoleKind::Partner),
            ("viv", RoleKind::Viewer),
            ("tilewave-rollout", RoleKind::Service),
        ];
        for rule in TABLE {
            for (name, kind) in people {
                let got = decide(&p, cert(name, "1"), &rule.path());
                match got {
                    Ok(c) => {
                        assert!(rule.allows(*kind), "{} allowed for {name}", rule.path());
                        assert_eq!((c.identity.as_str(), c.role.kind()), (*name, *kind));
                    }
                    Err(e) => {
                        assert!(!rule.allows(*kind), "{} refused for {name}: {e}", rule.path());
                        assert_eq!(e.code(), RefusalCode::PermissionDenied);
                        assert!(e.to_string().starts_with(&rule.rpc()), "{e}");
                    }
                }
            }
        }
    }
}
