//! Object scoping, pure: which partners' objects a caller may see.
//!
//! A partner (`partner:<id>`) sees, signs off and hands credentials in only
//! for tiles whose partner id is its own; every other role sees every
//! partner's. Without a [`Caller`] (TLS off, the role check disabled)
//! nothing is hidden. Handlers ask [`Scope::sees`] about the partner of
//! every object they would answer with, and treat a hidden one exactly as
//! a missing one: the same NOT_FOUND for a single object, left out of a
//! list or a watch before paging (so neither a page token nor a count
//! tells that it exists).

use tilewave_core::slug::TileId;

use crate::decide::Caller;

/// Which partners' objects a caller may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every partner's: every role but `partner`, and no caller at all
    /// (the role check is off).
    All,
    /// Only this partner's own.
    Partner(TileId),
}

impl Scope {
    /// The scope of a caller; [`Scope::All`] without one.
    pub fn of(caller: Option<&Caller>) -> Self {
        match caller.and_then(|c| c.role.partner()) {
            Some(own) => Self::Partner(own.clone()),
            None => Self::All,
        }
    }

    /// The scope of a request: of the [`Caller`] the role check put in its
    /// extensions, [`Scope::All`] when it put none.
    pub fn of_request<T>(req: &tonic::Request<T>) -> Self {
        Self::of(req.extensions().get::<Caller>())
    }

    /// Whether the caller may see an object of partner `partner_id`
    /// (`None`: the object's partner is not known, which only an unscoped
    /// caller may see).
    pub fn sees(&self, partner_id: Option<&str>) -> bool {
        match self {
            Self::All => true,
            Self::Partner(own) => partner_id == Some(own.as_str()),
        }
    }

    /// Whether nothing is hidden from the caller.
    pub fn is_all(&self) -> bool {
        matches!(self, Self::All)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use crate::role::Role;

    fn caller(role: &str) -> Caller {
        Caller {
            identity: Identity::parse("someone").unwrap(),
            role: role.parse::<Role>().unwrap(),
        }
    }

    #[test]
    fn a_partner_sees_only_its_own_and_everyone_else_everything() {
        let acme = Scope::of(Some(&caller("partner:acme")));
        assert_eq!(acme, Scope::Partner(TileId::parse("acme").unwrap()));
        // (scope, object's partner, sees)
        let cases = [
            (acme.clone(), Some("acme"), true),
            (acme.clone(), Some("globex"), false),
            (acme.clone(), Some("acme2"), false),
            (acme.clone(), Some("ACME"), false),
            (acme.clone(), Some(""), false),
            (acme.clone(), None, false),
            (Scope::All, Some("globex"), true),
            (Scope::All, Some(""), true),
            (Scope::All, None, true),
        ];
        for (scope, partner, sees) in cases {
            assert_eq!(scope.sees(partner), sees, "{scope:?} {partner:?}");
        }
        assert!(!acme.is_all());
    }

    #[test]
    fn every_other_role_and_no_caller_are_unscoped() {
        for role in ["release-engineer", "oncall", "viewer", "service"] {
            let scope = Scope::of(Some(&caller(role)));
            assert_eq!(scope, Scope::All, "{role}");
            assert!(scope.sees(Some("globex")) && scope.is_all(), "{role}");
        }
        assert_eq!(Scope::of(None), Scope::All);
    }

    #[test]
    fn a_request_s_scope_is_its_caller_s() {
        let mut req = tonic::Request::new(());
        assert_eq!(Scope::of_request(&req), Scope::All, "no caller: TLS off");
        req.extensions_mut().insert(caller("partner:acme"));
        assert_eq!(
            Scope::of_request(&req),
            Scope::Partner(TileId::parse("acme").unwrap())
        );
        req.extensions_mut().insert(caller("viewer"));
        assert_eq!(Scope::of_request(&req), Scope::All);
    }
}
