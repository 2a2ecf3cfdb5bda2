//! Sign-offs (docs/domain.md "Sign-offs"):
//! who must approve a revision of a tile before it may roll out.
//!
//! A launch needs all five [`Role`]s on the *same* revision; a maintenance
//! roll-out (a later revision of a GA tile) needs engineering and partner.
//! Sign-offs belong to one revision: opening a new revision clears them, and
//! a sign-off naming any other revision is refused, so an approval can never
//! carry over to a configuration nobody looked at.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// A revision number of a tile: 1 for the first, one more for each
/// configuration change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RevisionNo(pub u32);

impl RevisionNo {
    /// The first revision of every tile.
    pub const FIRST: RevisionNo = RevisionNo(1);

    /// The revision after this one (saturating: a tile will not see 4 billion
    /// configuration changes).
    pub fn next(self) -> RevisionNo {
        RevisionNo(self.0.saturating_add(1))
    }
}

impl fmt::Display for RevisionNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}", self.0)
    }
}

/// Who signs off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Databricks engineering: functional sign-off.
    Engineering,
    /// Partner solution architects: the core integration.
    PartnerSolutionArchitect,
    /// Product: usability.
    Product,
    /// The partner itself.
    Partner,
    /// Legal: the partnership agreement is signed.
    Legal,
}

impl Role {
    /// Every role, in the order docs/domain.md lists them.
    pub const ALL: [Role; 5] = [
        Role::Engineering,
        Role::PartnerSolutionArchitect,
        Role::Product,
        Role::Partner,
        Role::Legal,
    ];

    /// The canonical name, as accepted by [`Role::from_str`] and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Engineering => "engineering",
            Role::PartnerSolutionArchitect => "partner-sa",
            Role::Product => "product",
            Role::Partner => "partner",
            Role::Legal => "legal",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of the five.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown sign-off role {}; valid roles: engineering, partner-sa (or partner-solution-architect), product, partner, legal",
    crate::quote::quoted(.0)
)]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    /// Accepts the canonical names, case-insensitively, with `-` and `_`
    /// interchangeable; `partner-solution-architect` for `partner-sa`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase().replace('_', "-");
        match norm.as_str() {
            "engineering" => Ok(Role::Engineering),
            "partner-sa" | "partner-solution-architect" => Ok(Role::PartnerSolutionArchitect),
            "product" => Ok(Role::Product),
            "partner" => Ok(Role::Partner),
            "legal" => Ok(Role::Legal),
            _ => Err(UnknownRole(s.to_string())),
        }
    }
}

/// Which set of sign-offs a roll-out needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadinessKind {
    /// The first roll-out of a tile: all five roles.
    Launch,
    /// A later revision of a GA tile: engineering and partner.
    Maintenance,
}

impl ReadinessKind {
    /// The roles this kind of roll-out needs.
    pub fn required(self) -> &'static [Role] {
        match self {
            ReadinessKind::Launch => &Role::ALL,
            ReadinessKind::Maintenance => &[Role::Engineering, Role::Partner],
        }
    }
}

impl fmt::Display for ReadinessKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReadinessKind::Launch => "launch",
            ReadinessKind::Maintenance => "maintenance",
        })
    }
}

/// One recorded sign-off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignOff {
    /// Who signed (a person or team as the caller names it), for the audit.
    pub by: String,
    /// When, in domain time (passed in: this crate reads no clock).
    pub at: Timestamp,
}

/// Why a sign-off operation is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignOffError {
    /// The sign-off names a revision other than the current one.
    #[error("sign-off for revision {given} refused: the current revision is {current}")]
    WrongRevision {
        /// The revision the caller named.
        given: RevisionNo,
        /// The tile's current revision.
        current: RevisionNo,
    },
    /// Withdrawing a role that has not signed.
    #[error("{role} has not signed off revision {revision}")]
    NotSigned {
        /// The role.
        role: Role,
        /// The current revision.
        revision: RevisionNo,
    },
    /// A new revision must come after the current one.
    #[error("revision {given} does not follow the current revision {current}")]
    RevisionNotNewer {
        /// The revision the caller named.
        given: RevisionNo,
        /// The tile's current revision.
        current: RevisionNo,
    },
    /// Sign-offs are missing for a roll-out.
    #[error(
        "{kind} sign-offs incomplete on revision {revision}: missing {}",
        list(missing)
    )]
    Missing {
        /// The kind of roll-out.
        kind: ReadinessKind,
        /// The revision asked about.
        revision: RevisionNo,
        /// The roles still to sign.
        missing: Vec<Role>,
    },
}

fn list(roles: &[Role]) -> String {
    roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
}

/// The sign-offs recorded on a tile's current revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignOffs {
    revision: RevisionNo,
    signed: BTreeMap<Role, SignOff>,
}

impl SignOffs {
    /// No sign-offs yet, on `revision`.
    pub fn new(revision: RevisionNo) -> Self {
        Self {
            revision,
            signed: BTreeMap::new(),
        }
    }

    /// The revision the sign-offs belong to.
    pub fn revision(&self) -> RevisionNo {
        self.revision
    }

    /// The sign-off of `role`, if recorded.
    pub fn get(&self, role: Role) -> Option<&SignOff> {
        self.signed.get(&role)
    }

    /// Every recorded sign-off, in [`Role::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Role, &SignOff)> {
        self.signed.iter().map(|(r, s)| (*r, s))
    }

    /// Records `role`'s sign-off on `revision`, which must be the current
    /// one. Signing again replaces the earlier record (latest wins).
    pub fn record(&mut self, revision: RevisionNo, role: Role, signoff: SignOff) -> Result<(), SignOffError> {
        self.check_current(revision)?;
        self.signed.insert(role, signoff);
        Ok(())
    }

    /// Withdraws `role`'s sign-off from `revision` (the current one),
    /// returning what was recorded.
    pub fn withdraw(&mut self, revision: RevisionNo, role: Role) -> Result<SignOff, SignOffError> {
        self.check_current(revision)?;
        self.signed.remove(&role).ok_or(SignOffError::NotSigned {
            role,
            revision: self.revision,
        })
    }

    /// Moves to a new revision, which clears every sign-off.
    pub fn new_revision(&mut self, revision: RevisionNo) -> Result<(), SignOffError> {
        if revision <= self.revision {
            return Err(SignOffError::RevisionNotNewer {
                given: revision,
                current: self.revision,
            });
        }
        self.revision = revision;
        self.signed.clear();
        Ok(())
    }

    /// The roles a `kind` roll-out of `revision` still lacks: all of them
    /// when `revision` is not the current one.
    pub fn missing(&self, kind: ReadinessKind, revision: RevisionNo) -> Vec<Role> {
        kind.required()
            .iter()
            .copied()
            .filter(|r| revision != self.revision || !self.signed.contains_key(r))
            .collect()
    }

    /// True when all five roles signed `revision` and it is the current one.
    pub fn launch_ready(&self, revision: RevisionNo) -> bool {
        self.missing(ReadinessKind::Launch, revision).is_empty()
    }

    /// True when engineering and partner signed `revision` and it is the
    /// current one.
    pub fn maintenance_ready(&self, revision: RevisionNo) -> bool {
        self.missing(ReadinessKind::Maintenance, revision).is_empty()
    }

    /// `Ok` when ready for a `kind` roll-out of `revision`, else an error
    /// listing the missing roles.
    pub fn require(&self, kind: ReadinessKind, revision: RevisionNo) -> Result<(), SignOffError> {
        let missing = self.missing(kind, revision);
        if missing.is_empty() {
            Ok(())
        } else {
            Err(SignOffError::Missing {
                kind,
                revision,
                missing,
            })
        }
    }

    fn check_current(&self, revision: RevisionNo) -> Result<(), SignOffError> {
        if revision == self.revision {
            Ok(())
        } else {
            Err(SignOffError::WrongRevision {
                given: revision,
                current: self.revision,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R1: RevisionNo = RevisionNo(1);
    const R2: RevisionNo = RevisionNo(2);

    fn so(by: &str) -> SignOff {
        SignOff {
            by: by.into(),
            at: Timestamp::constant(1_700_000_000, 0),
        }
    }

    fn signed(roles: &[Role]) -> SignOffs {
        let mut s = SignOffs::new(R1);
        for r in roles {
            s.record(R1, *r, so("someone")).unwrap();
        }
        s
    }

    #[test]
    fn role_parsing_accepts_the_documented_spellings() {
        let cases = [
            ("engineering", Role::Engineering),
            ("Engineering", Role::Engineering),
            ("partner-sa", Role::PartnerSolutionArchitect),
            ("partner_sa", Role::PartnerSolutionArchitect),
            ("partner_solution_architect", Role::PartnerSolutionArchitect),
            ("partner-solution-architect", Role::PartnerSolutionArchitect),
            ("product", Role::Product),
            ("partner", Role::Partner),
            (" legal ", Role::Legal),
        ];
        for (s, want) in cases {
            assert_eq!(s.parse::<Role>(), Ok(want), "{s:?}");
        }
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
    }

    #[test]
    fn unknown_role_lists_the_valid_ones() {
        let err = "lawyer".parse::<Role>().unwrap_err().to_string();
        for valid in [
            "engineering",
            "partner-sa",
            "product",
            "partner",
            "legal",
            "\"lawyer\"",
        ] {
            assert!(err.contains(valid), "{err} should mention {valid}");
        }
    }

    #[test]
    fn readiness_table() {
        use Role::*;
        // (signed roles, launch ready, maintenance ready, missing for launch)
        let cases: Vec<(Vec<Role>, bool, bool, Vec<Role>)> = vec![
            (vec![], false, false, Role::ALL.to_vec()),
            (
                vec![Engineering, Partner],
                false,
                true,
                vec![PartnerSolutionArchitect, Product, Legal],
            ),
            (
                vec![Engineering],
                false,
                false,
                vec![PartnerSolutionArchitect, Product, Partner, Legal],
            ),
            (
                vec![Engineering, PartnerSolutionArchitect, Product, Partner],
                false,
                true,
                vec![Legal],
            ),
            (Role::ALL.to_vec(), true, true, vec![]),
        ];
        for (roles, launch, maint, missing) in cases {
            let s = signed(&roles);
            assert_eq!(s.launch_ready(R1), launch, "launch {roles:?}");
            assert_eq!(s.maintenance_ready(R1), maint, "maintenance {roles:?}");
            assert_eq!(s.missing(ReadinessKind::Launch, R1), missing, "missing {roles:?}");
        }
    }

    #[test]
    fn readiness_is_per_revision() {
        let s = signed(&Role::ALL);
        assert!(!s.launch_ready(R2));
        assert!(!s.maintenance_ready(R2));
        assert_eq!(
            s.missing(ReadinessKind::Maintenance, R2),
            vec![Role::Engineering, Role::Partner]
        );
    }

    #[test]
    fn recording_for_another_revision_is_refused() {
        let mut s = SignOffs::new(R2);
        for rev in [R1, RevisionNo(3)] {
            assert_eq!(
                s.record(rev, Role::Legal, so("l")),
                Err(SignOffError::WrongRevision {
                    given: rev,
                    current: R2
                })
            );
        }
        assert!(s.record(R2, Role::Legal, so("l")).is_ok());
    }

    #[test]
    fn a_new_revision_clears_sign_offs() {
        let mut s = signed(&Role::ALL);
        assert_eq!(
            s.new_revision(R1),
            Err(SignOffError::RevisionNotNewer {
                given: R1,
                current: R1
            })
        );
        s.new_revision(R2).unwrap();
        assert_eq!(s.revision(), R2);
        assert_eq!(s.iter().count(), 0);
        assert!(!s.launch_ready(R2));
    }

    #[test]
    fn withdrawing_one_sign_off() {
        let mut s = signed(&Role::ALL);
        assert_eq!(
            s.withdraw(R1, Role::Product).map(|x| x.by),
            Ok("someone".to_string())
        );
        assert!(!s.launch_ready(R1));
        assert_eq!(s.missing(ReadinessKind::Launch, R1), vec![Role::Product]);
        assert_eq!(
            s.withdraw(R1, Role::Product),
            Err(SignOffError::NotSigned {
                role: Role::Product,
                revision: R1
            })
        );
        assert!(matches!(
            s.withdraw(R2, Role::Legal),
            Err(SignOffError::WrongRevision { .. })
        ));
    }

    #[test]
    fn signing_again_replaces() {
        let mut s = signed(&[Role::Legal]);
        s.record(R1, Role::Legal, so("counsel")).unwrap();
        assert_eq!(s.get(Role::Legal).map(|x| x.by.as_str()), Some("counsel"));
    }

    #[test]
    fn require_names_what_is_missing() {
        let s = signed(&[Role::Engineering]);
        let err = s.require(ReadinessKind::Maintenance, R1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "maintenance sign-offs incomplete on revision r1: missing partner"
        );
        assert!(signed(&Role::ALL).require(ReadinessKind::Launch, R1).is_ok());
    }
}
