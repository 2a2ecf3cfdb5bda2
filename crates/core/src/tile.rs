//! The domain tile: its ids, current revision and config, lifecycle state,
//! sign-offs, GA date and test workspace, tied together so that every change
//! goes through the lifecycle machine ([`crate::lifecycle::step`]) and the
//! guards that need data (sign-offs complete, GA date a week away).
//!
//! Every operation is all-or-nothing: on error the tile is unchanged. Time
//! comes in as an argument (`now`); nothing here reads a clock.

use jiff::{SignedDuration, Timestamp};

use crate::lifecycle::{self, Effect, Event, LifecycleError, Maintenance, State, TileKind};
use crate::partner_config::{ConfigFormat, ParsedConfig};
use crate::signoff::{ReadinessKind, RevisionNo, Role, SignOff, SignOffError, SignOffs};
use crate::slug::{IdError, TileId};

/// How far ahead a GA date must be aligned (DOMAIN.md lifecycle step 6).
pub const GA_LEAD: SignedDuration = SignedDuration::from_hours(7 * 24);

/// A GA date that is not far enough ahead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "GA date {ga} is {short_by:#} short of the required week of notice: the earliest allowed is {earliest}"
)]
pub struct GaDateError {
    /// The date asked for.
    pub ga: Timestamp,
    /// The earliest acceptable date (`now` + [`GA_LEAD`]).
    pub earliest: Timestamp,
    /// How much later the date would have to be.
    pub short_by: SignedDuration,
}

/// Checks the GA date rule: `ga >= now + 7 days`.
pub fn check_ga_date(now: Timestamp, ga: Timestamp) -> Result<(), GaDateError> {
    let lead = now.duration_until(ga);
    if lead >= GA_LEAD {
        Ok(())
    } else {
        Err(GaDateError {
            ga,
            earliest: now.saturating_add(GA_LEAD).unwrap_or(Timestamp::MAX),
            short_by: GA_LEAD.saturating_sub(lead),
        })
    }
}

/// Why an operation on a tile is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileError {
    /// The lifecycle does not allow the move.
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    /// A sign-off rule is broken.
    #[error(transparent)]
    SignOff(#[from] SignOffError),
    /// The GA date is too soon.
    #[error(transparent)]
    GaDate(#[from] GaDateError),
    /// A new revision comes with its config: use [`Tile::new_revision`].
    #[error("a new revision needs its config: use Tile::new_revision")]
    RevisionNeedsConfig,
    /// A config of the other format than the tile's kind.
    #[error("a {kind} cannot take a {format:?} config")]
    FormatMismatch {
        /// The tile's kind.
        kind: TileKind,
        /// The config's format.
        format: ConfigFormat,
    },
}

/// One revision of a tile: its number and the config it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Revision {
    /// The revision number.
    pub number: RevisionNo,
    /// The validated config of this revision.
    pub config: ParsedConfig,
}

/// A tile, as the registry keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Tile {
    /// The tile's id (the slug of its name unless given).
    pub id: TileId,
    /// The partner's id (the tile's slug unless given).
    pub partner: TileId,
    /// Display name, from the current config.
    pub name: String,
    /// Partner tile or self-test tile: fixed by the config format at import.
    pub kind: TileKind,
    /// The current revision.
    pub revision: Revision,
    /// Lifecycle state.
    pub state: State,
    /// Sign-offs on the current revision.
    pub sign_offs: SignOffs,
    /// The GA moment, once aligned.
    pub ga: Option<Timestamp>,
    /// The one workspace the tile is shown in while validating (for a
    /// self-test tile, its only workspace).
    pub test_workspace: Option<String>,
}

fn kind_of(config: &ParsedConfig) -> TileKind {
    match config.format() {
        ConfigFormat::Full => TileKind::Partner,
        ConfigFormat::SelfTest => TileKind::SelfTest,
    }
}

impl Tile {
    /// A new tile in [`State::Draft`] at revision 1. The id defaults to the
    /// slug of the config's name, the partner id to the tile id.
    pub fn import(
        config: ParsedConfig,
        id: Option<TileId>,
        partner: Option<TileId>,
    ) -> Result<Self, IdError> {
        let id = match id {
            Some(id) => id,
            None => TileId::from_name(config.name())?,
        };
        let partner = partner.unwrap_or_else(|| id.clone());
        Ok(Self {
            name: config.name().to_string(),
            kind: kind_of(&config),
            partner,
            id,
            revision: Revision {
                number: RevisionNo::FIRST,
                config,
            },
            state: State::Draft,
            sign_offs: SignOffs::new(RevisionNo::FIRST),
            ga: None,
            test_workspace: None,
        })
    }

    /// The sign-offs the next roll-out needs: maintenance ones once GA.
    pub fn readiness_kind(&self) -> ReadinessKind {
        match self.state {
            State::Ga { .. } => ReadinessKind::Maintenance,
            State::Draft
            | State::Validating
            | State::SignedOff
            | State::Scheduled
            | State::RollingOut
            | State::RolledOut
            | State::Withdrawn => ReadinessKind::Launch,
        }
    }

    /// Applies a lifecycle event (any but [`Event::NewRevision`]) after the
    /// guards that need data, returning the effects to carry out.
    pub fn apply(&mut self, now: Timestamp, event: &Event) -> Result<Vec<Effect>, TileError> {
        if matches!(event, Event::NewRevision) {
            return Err(TileError::RevisionNeedsConfig);
        }
        let (next, effects) = lifecycle::step(self.kind, self.state, event)?;
        self.guard(now, event)?;
        self.state = next;
        self.fold(&effects);
        Ok(effects)
    }

    fn guard(&self, now: Timestamp, event: &Event) -> Result<(), TileError> {
        match event {
            Event::AllSignedOff | Event::RolloutStarted => {
                self.sign_offs
                    .require(self.readiness_kind(), self.revision.number)?;
            }
            Event::GaDateSet { ga } => check_ga_date(now, *ga)?,
            Event::StartValidation { .. }
            | Event::SignOffWithdrawn
            | Event::GaDateCleared
            | Event::RolloutCompleted
            | Event::RolloutRolledBack
            | Event::GaReached
            | Event::NewRevision
            | Event::Withdraw => {}
        }
        Ok(())
    }

    /// Applies the effects that change the tile's own data.
    fn fold(&mut self, effects: &[Effect]) {
        for e in effects {
            match e {
                Effect::ShowInTestWorkspace { workspace } => self.test_workspace = Some(workspace.clone()),
                Effect::ArmGaTimer { at } => self.ga = Some(*at),
                Effect::ClearGaDate => self.ga = None,
                // Handled by `new_revision`, which has the config.
                Effect::OpenRevision { .. } => {}
                Effect::RefreshTestWorkspace
                | Effect::HideFromTestWorkspace
                | Effect::CancelGaTimer
                | Effect::AnnounceGa
                | Effect::AbortRollout
                | Effect::StartRemovalRollout => {}
            }
        }
    }

    /// Opens the next revision with a new config: sign-offs are cleared
    /// (before GA the tile goes back to validating; after GA a maintenance
    /// revision opens).
    pub fn new_revision(&mut self, config: ParsedConfig) -> Result<Vec<Effect>, TileError> {
        if kind_of(&config) != self.kind {
            return Err(TileError::FormatMismatch {
                kind: self.kind,
                format: config.format(),
            });
        }
        let (next, effects) = lifecycle::step(self.kind, self.state, &Event::NewRevision)?;
        let number = self.revision.number.next();
        self.sign_offs.new_revision(number)?;
        self.state = next;
        self.name = config.name().to_string();
        self.revision = Revision { number, config };
        self.fold(&effects);
        Ok(effects)
    }

    /// Records a sign-off on `revision` (the current one). When it completes
    /// the set the state needs, the tile moves on ([`Event::AllSignedOff`])
    /// and the effects of that move are returned.
    pub fn record_sign_off(
        &mut self,
        revision: RevisionNo,
        role: Role,
        sign_off: SignOff,
    ) -> Result<Vec<Effect>, TileError> {
        let mut sign_offs = self.sign_offs.clone();
        sign_offs.record(revision, role, sign_off)?;
        let waiting = matches!(
            self.state,
            State::Validating
                | State::Ga {
                    maintenance: Maintenance::Open
                }
        );
        let ready = sign_offs.require(self.readiness_kind(), revision).is_ok();
        let mut effects = Vec::new();
        if waiting && ready && self.kind == TileKind::Partner {
            let (next, fx) = lifecycle::step(self.kind, self.state, &Event::AllSignedOff)?;
            self.state = next;
            self.fold(&fx);
            effects = fx;
        }
        self.sign_offs = sign_offs;
        Ok(effects)
    }

    /// Withdraws `role`'s sign-off from `revision` (the current one). When
    /// the tile had moved on because of it, it moves back
    /// ([`Event::SignOffWithdrawn`]); refused while the revision is live in
    /// regions.
    pub fn withdraw_sign_off(&mut self, revision: RevisionNo, role: Role) -> Result<Vec<Effect>, TileError> {
        let mut sign_offs = self.sign_offs.clone();
        sign_offs.withdraw(revision, role)?;
        let (next, effects) = lifecycle::step(self.kind, self.state, &Event::SignOffWithdrawn)?;
        self.sign_offs = sign_offs;
        self.state = next;
        self.fold(&effects);
        Ok(effects)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partner_config::parse_any;

    const RIVERFLOW: &str = include_str!("../tests/fixtures/partner-connect/riverflow-ingest.json");
    const LUMEN: &str = include_str!("../tests/fixtures/partner-connect/lumen-bi.json");
    const QUARRY: &str = include_str!("../tests/fixtures/partner-connect/self-test-quarry.json");

    fn at(days: i64) -> Timestamp {
        Timestamp::constant(1_750_000_000, 0)
            .checked_add(SignedDuration::from_hours(24 * days))
            .unwrap()
    }

    fn sign(by: &str) -> SignOff {
        SignOff {
            by: by.into(),
            at: at(0),
        }
    }

    fn tile(text: &str) -> Tile {
        Tile::import(parse_any(text).unwrap(), None, None).unwrap()
    }

    #[test]
    fn ga_date_rule() {
        let now = at(0);
        // (ga, ok)
        let cases = [
            (at(7), true),
            (at(30), true),
            (at(7).checked_sub(SignedDuration::from_secs(1)).unwrap(), false),
            (at(1), false),
            (at(-1), false),
        ];
        for (ga, ok) in cases {
            assert_eq!(check_ga_date(now, ga).is_ok(), ok, "{ga}");
        }
        let err = check_ga_date(now, at(5)).unwrap_err();
        assert_eq!(err.short_by, SignedDuration::from_hours(48));
        assert_eq!(err.earliest, at(7));
        assert!(err.to_string().contains("48h short"), "{err}");
        assert!(check_ga_date(Timestamp::MAX, Timestamp::MAX).is_err());
    }

    #[test]
    fn import_derives_ids_and_kind() {
        let t = tile(RIVERFLOW);
        assert_eq!((t.id.as_str(), t.partner.as_str()), ("riverflow", "riverflow"));
        assert_eq!(
            (t.kind, t.state, t.revision.number),
            (TileKind::Partner, State::Draft, RevisionNo(1))
        );
        let q = Tile::import(
            parse_any(QUARRY).unwrap(),
            Some(TileId::parse("quarry-self").unwrap()),
            Some(TileId::parse("quarry").unwrap()),
        )
        .unwrap();
        assert_eq!(
            (q.id.as_str(), q.partner.as_str(), q.kind),
            ("quarry-self", "quarry", TileKind::SelfTest)
        );
        assert_eq!(tile(LUMEN).id.as_str(), "lumen-dashboards");
    }

    #[test]
    fn launch_then_maintenance_end_to_end() {
        let mut t = tile(RIVERFLOW);
        let r1 = t.revision.number;
        t.apply(
            at(0),
            &Event::StartValidation {
                workspace: "ws-9".into(),
            },
        )
        .unwrap();
        assert_eq!(t.test_workspace.as_deref(), Some("ws-9"));

        // Four of five: still validating; AllSignedOff by hand is refused.
        for role in [
            Role::Engineering,
            Role::PartnerSolutionArchitect,
            Role::Product,
            Role::Partner,
        ] {
            assert_eq!(t.record_sign_off(r1, role, sign("x")).unwrap(), vec![]);
        }
        assert_eq!(t.state, State::Validating);
        assert!(matches!(
            t.apply(at(0), &Event::AllSignedOff),
            Err(TileError::SignOff(_))
        ));
        t.record_sign_off(r1, Role::Legal, sign("counsel")).unwrap();
        assert_eq!(t.state, State::SignedOff);

        // A GA date must be a week out.
        let err = t.apply(at(0), &Event::GaDateSet { ga: at(3) }).unwrap_err();
        assert!(matches!(err, TileError::GaDate(_)));
        assert_eq!((t.state, t.ga), (State::SignedOff, None));
        let fx = t.apply(at(0), &Event::GaDateSet { ga: at(10) }).unwrap();
        assert_eq!(fx, vec![Effect::ArmGaTimer { at: at(10) }]);
        assert_eq!((t.state, t.ga), (State::Scheduled, Some(at(10))));

        for e in [Event::RolloutStarted, Event::RolloutCompleted, Event::GaReached] {
            t.apply(at(3), &e).unwrap();
        }
        assert_eq!(
            t.state,
            State::Ga {
                maintenance: Maintenance::Idle
            }
        );

        // Maintenance: a new revision needs engineering and partner.
        let fx = t.new_revision(parse_any(RIVERFLOW).unwrap()).unwrap();
        assert_eq!(fx, vec![Effect::OpenRevision { maintenance: true }]);
        let r2 = t.revision.number;
        assert_eq!(r2, RevisionNo(2));
        assert!(matches!(
            t.record_sign_off(r1, Role::Engineering, sign("late")),
            Err(TileError::SignOff(SignOffError::WrongRevision { .. }))
        ));
        t.record_sign_off(r2, Role::Engineering, sign("e")).unwrap();
        assert_eq!(
            t.state,
            State::Ga {
                maintenance: Maintenance::Open
            }
        );
        t.record_sign_off(r2, Role::Partner, sign("p")).unwrap();
        assert_eq!(
            t.state,
            State::Ga {
                maintenance: Maintenance::SignedOff
            }
        );
        t.apply(at(20), &Event::RolloutStarted).unwrap();
        // Sign-offs cannot be withdrawn while the revision rolls out.
        assert!(matches!(
            t.withdraw_sign_off(r2, Role::Partner),
            Err(TileError::Lifecycle(_))
        ));
        assert!(t.sign_offs.get(Role::Partner).is_some());
        t.apply(at(20), &Event::RolloutCompleted).unwrap();
        assert_eq!(
            t.state,
            State::Ga {
                maintenance: Maintenance::Idle
            }
        );
    }

    #[test]
    fn a_new_revision_before_ga_unschedules_and_clears() {
        let mut t = tile(LUMEN);
        t.apply(
            at(0),
            &Event::StartValidation {
                workspace: "ws".into(),
            },
        )
        .unwrap();
        for role in Role::ALL {
            t.record_sign_off(RevisionNo(1), role, sign("x")).unwrap();
        }
        t.apply(at(0), &Event::GaDateSet { ga: at(8) }).unwrap();
        let fx = t.new_revision(parse_any(LUMEN).unwrap()).unwrap();
        assert!(fx.contains(&Effect::CancelGaTimer));
        assert_eq!(
            (t.state, t.ga, t.revision.number),
            (State::Validating, None, RevisionNo(2))
        );
        assert_eq!(t.sign_offs.iter().count(), 0);
        assert!(matches!(
            t.new_revision(parse_any(QUARRY).unwrap()),
            Err(TileError::FormatMismatch { .. })
        ));
        assert!(matches!(
            t.apply(at(0), &Event::NewRevision),
            Err(TileError::RevisionNeedsConfig)
        ));
    }

    #[test]
    fn withdrawing_a_sign_off_moves_back() {
        let mut t = tile(LUMEN);
        t.apply(
            at(0),
            &Event::StartValidation {
                workspace: "ws".into(),
            },
        )
        .unwrap();
        for role in Role::ALL {
            t.record_sign_off(RevisionNo(1), role, sign("x")).unwrap();
        }
        t.apply(at(0), &Event::GaDateSet { ga: at(9) }).unwrap();
        let fx = t.withdraw_sign_off(RevisionNo(1), Role::Legal).unwrap();
        assert_eq!(fx, vec![Effect::CancelGaTimer, Effect::ClearGaDate]);
        assert_eq!((t.state, t.ga), (State::Validating, None));
        assert!(!t.sign_offs.launch_ready(RevisionNo(1)));
    }

    #[test]
    fn a_self_test_tile_never_launches() {
        let mut t = tile(QUARRY);
        t.apply(
            at(0),
            &Event::StartValidation {
                workspace: "partner-ws".into(),
            },
        )
        .unwrap();
        for role in Role::ALL {
            t.record_sign_off(RevisionNo(1), role, sign("x")).unwrap();
        }
        assert_eq!(t.state, State::Validating);
        let err = t.apply(at(0), &Event::GaDateSet { ga: at(30) }).unwrap_err();
        assert!(err.to_string().contains("self-test"), "{err}");
        let fx = t.apply(at(0), &Event::Withdraw).unwrap();
        assert_eq!(fx, vec![Effect::HideFromTestWorkspace]);
        assert_eq!(t.state, State::Withdrawn);
    }
}
