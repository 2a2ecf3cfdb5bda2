//! The tile's rules that need data beyond its lifecycle state: which
//! sign-offs it still needs (launch or maintenance), when a sign-off
//! completes the set or its withdrawal undoes it, who may have a test
//! workspace set, the GA date's week of notice, what a maintenance
//! revision affects, and the data the lifecycle's effects change (GA date,
//! test workspace, GA revision, removal requested).
//!
//! [`Tile`] is the one place these rules are decided: the registry converts
//! its stored tile to it, calls one method, and writes the result back. Every
//! method is all-or-nothing: on error the tile is unchanged. Time comes in as
//! an argument (`now`); nothing here reads a clock.

use jiff::{SignedDuration, Timestamp};

use crate::lifecycle::{self, Effect, Event, LifecycleError, State, TileKind};
use crate::readiness::gtm::{self, GaCommit, GtmGateError, GtmItemState, GtmOverride, GtmReadiness};
use crate::readiness::validation::{self, Checklist, ValidationGateError};
use crate::signoff::{ReadinessKind, RevisionNo, Role, SignOff, SignOffError, SignOffs};

/// How far ahead a GA date must be aligned (the lifecycle's GA rule).
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
    /// Sign-offs on a self-test tile.
    #[error("a self-test tile has no sign-offs: it is never launched")]
    SelfTestSignOff,
    /// A test workspace set on a self-test tile.
    #[error("a self-test tile's workspace is fixed at import; import it again for another workspace")]
    SelfTestWorkspace,
    /// A new revision of the other kind than the tile's.
    #[error("a tile cannot change between the self-test and the full format")]
    KindChange,
}

/// The part of a tile its rules read and change.
#[derive(Debug, Clone, PartialEq)]
pub struct Tile {
    /// Partner tile or self-test tile: fixed by the config format at import.
    pub kind: TileKind,
    /// Lifecycle state.
    pub state: State,
    /// Sign-offs on the current revision (whose number they carry).
    pub sign_offs: SignOffs,
    /// The GA moment, once aligned.
    pub ga: Option<Timestamp>,
    /// The one workspace the tile is shown in while validating (for a
    /// self-test tile, its only workspace).
    pub test_workspace: Option<String>,
    /// The revision that became GA: from then on a new revision is a
    /// maintenance revision.
    pub ga_revision: Option<RevisionNo>,
    /// When a removal from the regions was asked for (withdrawing a tile
    /// that is live).
    pub removal_requested: Option<Timestamp>,
}

impl Tile {
    /// A new tile of `kind` in [`State::Draft`] at revision 1; a self-test
    /// tile comes with its workspace.
    pub fn new(kind: TileKind, test_workspace: Option<String>) -> Self {
        Self {
            kind,
            state: State::Draft,
            sign_offs: SignOffs::new(RevisionNo::FIRST),
            ga: None,
            test_workspace,
            ga_revision: None,
            removal_requested: None,
        }
    }

    /// The current revision.
    pub fn revision(&self) -> RevisionNo {
        self.sign_offs.revision()
    }

    /// The sign-offs the next roll-out needs: maintenance ones once the
    /// tile has been GA.
    pub fn readiness_kind(&self) -> ReadinessKind {
        if self.ga_revision.is_some() {
            ReadinessKind::Maintenance
        } else {
            ReadinessKind::Launch
        }
    }

    /// True when the current revision has the sign-offs the next roll-out
    /// needs.
    pub fn signed_off(&self) -> bool {
        self.sign_offs
            .missing(self.readiness_kind(), self.revision())
            .is_empty()
    }

    /// The roles still to sign the current revision (none for a self-test
    /// tile, which is never launched).
    pub fn missing_sign_offs(&self) -> Vec<Role> {
        match self.kind {
            TileKind::SelfTest => vec![],
            TileKind::Partner => self.sign_offs.missing(self.readiness_kind(), self.revision()),
        }
    }

    /// Runs one lifecycle event and carries out the effects on the tile's
    /// own data; returns the effects.
    fn step(&mut self, now: Timestamp, event: &Event) -> Result<Vec<Effect>, TileError> {
        let (next, effects) = lifecycle::step(self.kind, self.state, event)?;
        self.state = next;
        for e in &effects {
            match e {
                Effect::ShowInTestWorkspace { workspace } => self.test_workspace = Some(workspace.clone()),
                Effect::ArmGaTimer { at } => self.ga = Some(*at),
                Effect::CancelGaTimer | Effect::ClearGaDate => self.ga = None,
                Effect::AnnounceGa => self.ga_revision = Some(self.revision()),
                Effect::AbortRollout | Effect::StartRemovalRollout => self.removal_requested = Some(now),
                // Showing a revision in the test workspace and hiding it are
                // the region agents' concern; the recorded workspace is enough.
                Effect::RefreshTestWorkspace
                | Effect::HideFromTestWorkspace
                | Effect::OpenRevision { .. } => {}
            }
        }
        Ok(effects)
    }

    /// Runs `f` on a copy and keeps it only when it succeeds.
    fn all_or_nothing<T>(
        &mut self,
        f: impl FnOnce(&mut Tile) -> Result<T, TileError>,
    ) -> Result<T, TileError> {
        let mut next = self.clone();
        let out = f(&mut next)?;
        *self = next;
        Ok(out)
    }

    /// Records `role`'s sign-off on `revision` (the current one). When it
    /// completes the set the tile needs, the tile moves on
    /// ([`Event::AllSignedOff`]), which the lifecycle may refuse: a tile
    /// not yet in a test workspace cannot complete its sign-offs.
    pub fn record_sign_off(
        &mut self,
        now: Timestamp,
        revision: RevisionNo,
        role: Role,
        sign_off: SignOff,
    ) -> Result<Vec<Effect>, TileError> {
        if self.kind == TileKind::SelfTest {
            return Err(TileError::SelfTestSignOff);
        }
        self.all_or_nothing(|t| {
            let was_complete = t.signed_off();
            t.sign_offs.record(revision, role, sign_off)?;
            if t.signed_off() && !was_complete {
                t.step(now, &Event::AllSignedOff)
            } else {
                Ok(vec![])
            }
        })
    }

    /// Withdraws `role`'s sign-off from `revision` (the current one). When
    /// the set was complete, the tile moves back
    /// ([`Event::SignOffWithdrawn`]); refused while the revision is live in
    /// regions.
    pub fn withdraw_sign_off(
        &mut self,
        now: Timestamp,
        revision: RevisionNo,
        role: Role,
    ) -> Result<Vec<Effect>, TileError> {
        self.all_or_nothing(|t| {
            let was_complete = t.signed_off();
            t.sign_offs.withdraw(revision, role)?;
            if was_complete {
                t.step(now, &Event::SignOffWithdrawn)
            } else {
                Ok(vec![])
            }
        })
    }

    /// Shows the tile in `workspace`, starting (or moving) its validation.
    /// A self-test tile's workspace is fixed at import.
    pub fn set_test_workspace(&mut self, now: Timestamp, workspace: &str) -> Result<Vec<Effect>, TileError> {
        if self.kind == TileKind::SelfTest {
            return Err(TileError::SelfTestWorkspace);
        }
        self.all_or_nothing(|t| {
            t.step(
                now,
                &Event::StartValidation {
                    workspace: workspace.to_owned(),
                },
            )
        })
    }

    /// Sets (or moves) the GA date, a week ahead at least, or clears it.
    pub fn set_ga(&mut self, now: Timestamp, ga: Option<Timestamp>) -> Result<Vec<Effect>, TileError> {
        match ga {
            Some(ga) => {
                check_ga_date(now, ga)?;
                self.all_or_nothing(|t| t.step(now, &Event::GaDateSet { ga }))
            }
            None => self.all_or_nothing(|t| t.step(now, &Event::GaDateCleared)),
        }
    }

    /// A roll-out of the current revision starts: a launch needs its five
    /// sign-offs (a maintenance revision's are in its state).
    pub fn start_rollout(&mut self, now: Timestamp) -> Result<Vec<Effect>, TileError> {
        if self.readiness_kind() == ReadinessKind::Launch {
            self.sign_offs.require(ReadinessKind::Launch, self.revision())?;
        }
        self.all_or_nothing(|t| t.step(now, &Event::RolloutStarted))
    }

    /// The roll-out reached every region it covers.
    pub fn complete_rollout(&mut self, now: Timestamp) -> Result<Vec<Effect>, TileError> {
        self.all_or_nothing(|t| t.step(now, &Event::RolloutCompleted))
    }

    /// The roll-out was rolled back.
    pub fn roll_back(&mut self, now: Timestamp) -> Result<Vec<Effect>, TileError> {
        self.all_or_nothing(|t| t.step(now, &Event::RolloutRolledBack))
    }

    /// The GA moment came (the durable GA timer fired).
    pub fn reach_ga(&mut self, now: Timestamp) -> Result<Vec<Effect>, TileError> {
        self.all_or_nothing(|t| t.step(now, &Event::GaReached))
    }

    /// Withdraws the tile: at once if it was never live, else with a removal
    /// from its regions requested.
    pub fn withdraw(&mut self, now: Timestamp) -> Result<Vec<Effect>, TileError> {
        self.all_or_nothing(|t| t.step(now, &Event::Withdraw))
    }

    /// The removal roll-out of a withdrawn tile finished: nothing is
    /// pending any more. False (and nothing changes) unless the tile is
    /// withdrawn.
    pub fn confirm_removal(&mut self) -> bool {
        if self.state == State::Withdrawn {
            self.removal_requested = None;
            true
        } else {
            false
        }
    }

    /// Opens the next revision, of `kind` (a tile keeps its kind): its
    /// sign-offs start empty; before GA the tile goes back to validating,
    /// after GA a maintenance revision opens (see
    /// [`Effect::OpenRevision`]).
    pub fn new_revision(&mut self, now: Timestamp, kind: TileKind) -> Result<Vec<Effect>, TileError> {
        if kind != self.kind {
            return Err(TileError::KindChange);
        }
        self.all_or_nothing(|t| {
            let effects = t.step(now, &Event::NewRevision)?;
            t.sign_offs.new_revision(t.revision().next())?;
            Ok(effects)
        })
    }
}

/// Launch readiness (`crate::readiness`) read against the tile: its kind,
/// its current revision and its sign-offs. The checklist and the
/// go-to-market items are kept beside the tile by the caller; these methods
/// change nothing.
impl Tile {
    /// The validation gate the registry runs before
    /// [`Tile::record_sign_off`] when the tile has a checklist: the
    /// engineering sign-off of the current revision is refused while a case
    /// of `checklist` is open (all of them when `checklist` is another
    /// revision's). A self-test tile, or a sign-off naming another revision,
    /// passes here, so that `record_sign_off` refuses it with its own
    /// message.
    pub fn validation_gate(
        &self,
        revision: RevisionNo,
        role: Role,
        checklist: &Checklist,
    ) -> Result<(), ValidationGateError> {
        if self.kind == TileKind::SelfTest || revision != self.revision() {
            return Ok(());
        }
        validation::sign_off_gate(checklist, revision, role)
    }

    /// Every go-to-market item of `gtm`, the partnership agreement read
    /// from the tile's legal sign-off on the current revision.
    pub fn gtm_items(&self, gtm: &GtmReadiness) -> Vec<GtmItemState> {
        gtm.items(&self.sign_offs)
    }

    /// The go-to-market gate before a GA date is committed (see
    /// [`gtm::ga_commit_gate`]); the GA date rules themselves stay in
    /// [`Tile::set_ga`].
    pub fn ga_commit_gate(
        &self,
        gtm: &GtmReadiness,
        over: Option<GtmOverride>,
    ) -> Result<GaCommit, GtmGateError> {
        gtm::ga_commit_gate(gtm, &self.sign_offs, over)
    }
}

/// Whether a set of effects opened a maintenance revision.
pub fn opens_maintenance(effects: &[Effect]) -> bool {
    effects
        .iter()
        .any(|e| matches!(e, Effect::OpenRevision { maintenance: true }))
}

/// The clouds a maintenance revision affects: when only the supported
/// clouds changed, the clouds added and removed (sorted, once each); after
/// any other change, every cloud the new configuration supports.
pub fn affected_clouds<C: Ord + Copy>(old: &[C], new: &[C], only_clouds_changed: bool) -> Vec<C> {
    if only_clouds_changed && old != new {
        let mut changed: Vec<C> = new
            .iter()
            .filter(|c| !old.contains(c))
            .chain(old.iter().filter(|c| !new.contains(c)))
            .copied()
            .collect();
        changed.sort_unstable();
        changed.dedup();
        changed
    } else {
        new.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::{Maintenance, Refusal};

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

    fn partner() -> Tile {
        Tile::new(TileKind::Partner, None)
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
    fn launch_then_maintenance_end_to_end() {
        let mut t = partner();
        let r1 = t.revision();
        assert_eq!(r1, RevisionNo::FIRST);
        assert_eq!(t.missing_sign_offs(), Role::ALL.to_vec());
        t.set_test_workspace(at(0), "ws-9").unwrap();
        assert_eq!(t.test_workspace.as_deref(), Some("ws-9"));

        // Four of five: still validating; a roll-out is refused.
        for role in [
            Role::Engineering,
            Role::PartnerSolutionArchitect,
            Role::Product,
            Role::Partner,
        ] {
            assert_eq!(t.record_sign_off(at(0), r1, role, sign("x")).unwrap(), vec![]);
        }
        assert_eq!(t.state, State::Validating);
        assert_eq!(t.missing_sign_offs(), vec![Role::Legal]);
        assert!(matches!(t.start_rollout(at(0)), Err(TileError::SignOff(_))));
        t.record_sign_off(at(0), r1, Role::Legal, sign("counsel"))
            .unwrap();
        assert_eq!(t.state, State::SignedOff);
        assert!(t.missing_sign_offs().is_empty());

        // A GA date must be a week out; the date is checked first.
        let err = t.set_ga(at(0), Some(at(3))).unwrap_err();
        assert!(matches!(err, TileError::GaDate(_)));
        assert_eq!((t.state, t.ga), (State::SignedOff, None));
        let fx = t.set_ga(at(0), Some(at(10))).unwrap();
        assert_eq!(fx, vec![Effect::ArmGaTimer { at: at(10) }]);
        assert_eq!((t.state, t.ga), (State::Scheduled, Some(at(10))));

        t.start_rollout(at(3)).unwrap();
        t.complete_rollout(at(3)).unwrap();
        assert_eq!(t.ga_revision, None);
        assert_eq!(t.reach_ga(at(10)).unwrap(), vec![Effect::AnnounceGa]);
        assert_eq!(
            (t.state, t.ga_revision),
            (
                State::Ga {
                    maintenance: Maintenance::Idle
                },
                Some(r1)
            )
        );
        assert_eq!(t.readiness_kind(), ReadinessKind::Maintenance);

        // Maintenance: a new revision needs engineering and partner.
        let fx = t.new_revision(at(11), TileKind::Partner).unwrap();
        assert!(opens_maintenance(&fx));
        let r2 = t.revision();
        assert_eq!(r2, RevisionNo(2));
        assert_eq!(t.missing_sign_offs(), vec![Role::Engineering, Role::Partner]);
        assert!(matches!(
            t.record_sign_off(at(11), r1, Role::Engineering, sign("late")),
            Err(TileError::SignOff(SignOffError::WrongRevision { .. }))
        ));
        t.record_sign_off(at(11), r2, Role::Engineering, sign("e"))
            .unwrap();
        assert_eq!(
            t.state,
            State::Ga {
                maintenance: Maintenance::Open
            }
        );
        t.record_sign_off(at(11), r2, Role::Partner, sign("p")).unwrap();
        assert_eq!(
            t.state,
            State::Ga {
                maintenance: Maintenance::SignedOff
            }
        );
        t.start_rollout(at(20)).unwrap();
        // Sign-offs cannot be withdrawn while the revision rolls out.
        let before = t.clone();
        assert!(matches!(
            t.withdraw_sign_off(at(20), r2, Role::Partner),
            Err(TileError::Lifecycle(_))
        ));
        assert_eq!(t, before, "a refused call changes nothing");
        t.complete_rollout(at(20)).unwrap();
        assert_eq!(
            t.state,
            State::Ga {
                maintenance: Maintenance::Idle
            }
        );
        // Withdrawing a live tile asks for its removal; confirming clears it.
        t.withdraw(at(30)).unwrap();
        assert_eq!((t.state, t.removal_requested), (State::Withdrawn, Some(at(30))));
        assert!(t.confirm_removal());
        assert_eq!(t.removal_requested, None);
    }

    #[test]
    fn the_fifth_sign_off_needs_a_test_workspace_and_says_how() {
        let mut t = partner();
        for role in &Role::ALL[..4] {
            t.record_sign_off(at(0), RevisionNo(1), *role, sign("x")).unwrap();
        }
        let before = t.clone();
        let err = t
            .record_sign_off(at(0), RevisionNo(1), Role::Legal, sign("x"))
            .unwrap_err();
        assert!(
            matches!(&err, TileError::Lifecycle(e) if e.reason == Refusal::NotValidating),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("tilewave tile set-test-workspace TILE WORKSPACE_ID"),
            "{text}"
        );
        assert!(!text.contains("AllSignedOff"), "names no internal event: {text}");
        assert_eq!(t, before, "nothing recorded");
    }

    #[test]
    fn a_new_revision_before_ga_unschedules_and_clears() {
        let mut t = partner();
        t.set_test_workspace(at(0), "ws").unwrap();
        for role in Role::ALL {
            t.record_sign_off(at(0), RevisionNo(1), role, sign("x")).unwrap();
        }
        t.set_ga(at(0), Some(at(8))).unwrap();
        let fx = t.new_revision(at(0), TileKind::Partner).unwrap();
        assert!(fx.contains(&Effect::CancelGaTimer));
        assert!(!opens_maintenance(&fx));
        assert_eq!(
            (t.state, t.ga, t.revision()),
            (State::Validating, None, RevisionNo(2))
        );
        assert_eq!(t.sign_offs.iter().count(), 0);
        assert!(matches!(
            t.new_revision(at(0), TileKind::SelfTest),
            Err(TileError::KindChange)
        ));
    }

    #[test]
    fn withdrawing_a_sign_off_moves_back() {
        let mut t = partner();
        t.set_test_workspace(at(0), "ws").unwrap();
        for role in Role::ALL {
            t.record_sign_off(at(0), RevisionNo(1), role, sign("x")).unwrap();
        }
        t.set_ga(at(0), Some(at(9))).unwrap();
        let fx = t.withdraw_sign_off(at(0), RevisionNo(1), Role::Legal).unwrap();
        assert_eq!(fx, vec![Effect::CancelGaTimer, Effect::ClearGaDate]);
        assert_eq!((t.state, t.ga), (State::Validating, None));
        assert!(!t.sign_offs.launch_ready(RevisionNo(1)));
        // A second withdrawal while incomplete moves nothing.
        assert_eq!(
            t.withdraw_sign_off(at(0), RevisionNo(1), Role::Partner).unwrap(),
            vec![]
        );
        assert!(matches!(
            t.withdraw_sign_off(at(0), RevisionNo(1), Role::Partner),
            Err(TileError::SignOff(SignOffError::NotSigned { .. }))
        ));
    }

    #[test]
    fn a_self_test_tile_never_launches() {
        let mut t = Tile::new(TileKind::SelfTest, Some("partner-ws".into()));
        assert!(t.missing_sign_offs().is_empty());
        assert_eq!(
            t.record_sign_off(at(0), RevisionNo(1), Role::Legal, sign("x")),
            Err(TileError::SelfTestSignOff)
        );
        assert_eq!(
            t.set_test_workspace(at(0), "other"),
            Err(TileError::SelfTestWorkspace)
        );
        let err = t.set_ga(at(0), Some(at(30))).unwrap_err();
        assert!(err.to_string().contains("self-test"), "{err}");
        assert!(matches!(
            t.new_revision(at(0), TileKind::Partner),
            Err(TileError::KindChange)
        ));
        let fx = t.withdraw(at(0)).unwrap();
        assert_eq!(fx, vec![]);
        assert_eq!(t.state, State::Withdrawn);
        assert_eq!(t.test_workspace.as_deref(), Some("partner-ws"));
    }

    #[test]
    fn the_checklist_gates_the_engineering_sign_off() {
        use crate::readiness::validation::{CaseId, CaseResult, Checklist, Outcome};
        let result = |outcome| CaseResult {
            outcome,
            note: "seen".into(),
            by: "ana".into(),
            at: at(0),
            evidence: None,
        };
        let mut t = partner();
        t.set_test_workspace(at(0), "ws").unwrap();
        let r1 = t.revision();
        let mut done = Checklist::new(r1);
        for case in CaseId::all() {
            done.record(r1, case.as_str(), result(Outcome::Pass)).unwrap();
        }
        let mut open = done.clone();
        open.record(r1, "P201", result(Outcome::Fail)).unwrap();
        let self_test = Tile::new(TileKind::SelfTest, Some("ws".into()));
        // (tile, revision signed, role, checklist, refused by the gate)
        let cases = [
            (&t, r1, Role::Engineering, &open, true),
            (&t, r1, Role::Engineering, &done, false),
            (&t, r1, Role::Legal, &open, false),
            (&t, r1, Role::Partner, &open, false),
            // Left to record_sign_off, which names the real problem.
            (&t, RevisionNo(2), Role::Engineering, &open, false),
            (&self_test, r1, Role::Engineering, &open, false),
        ];
        for (tile, rev, role, checklist, refused) in cases {
            assert_eq!(
                tile.validation_gate(rev, role, checklist).is_err(),
                refused,
                "{:?} {rev} {role}",
                tile.kind
            );
        }
        let err = t.validation_gate(r1, Role::Engineering, &open).unwrap_err();
        assert_eq!(err.open.len(), 1);
        assert!(err.to_string().contains("P201 destination (FAIL)"), "{err}");
        assert!(matches!(
            t.record_sign_off(at(0), RevisionNo(2), Role::Engineering, sign("e")),
            Err(TileError::SignOff(SignOffError::WrongRevision { .. }))
        ));
        // The gate passed: the sign-off records as before.
        t.validation_gate(r1, Role::Engineering, &done).unwrap();
        t.record_sign_off(at(0), r1, Role::Engineering, sign("e"))
            .unwrap();
        assert_eq!(
            t.missing_sign_offs().first(),
            Some(&Role::PartnerSolutionArchitect)
        );
        // A new revision: r1's checklist counts for nothing on r2.
        t.new_revision(at(1), TileKind::Partner).unwrap();
        let err = t
            .validation_gate(t.revision(), Role::Engineering, &done)
            .unwrap_err();
        assert_eq!((err.revision, err.open.len()), (RevisionNo(2), 21));
        let (fresh, dropped) = done.next_revision(t.revision()).unwrap();
        assert_eq!((fresh.revision(), dropped.results.len()), (RevisionNo(2), 21));
    }

    #[test]
    fn the_agreement_follows_the_tile_s_legal_sign_off() {
        use crate::readiness::gtm::{GaCommit, GtmGateError, GtmItem, GtmReadiness, GtmStatus, GtmUpdate};
        let mut gtm = GtmReadiness::new();
        for item in [
            GtmItem::MiniSite,
            GtmItem::DirectoryLogo,
            GtmItem::LaunchBlog,
            GtmItem::Documentation,
        ] {
            gtm.set(
                item,
                GtmUpdate {
                    status: Some(GtmStatus::Done),
                    owner: Some("partner marketing".into()),
                    due: Some(jiff::civil::date(2026, 12, 1)),
                    link: Some("https://partner.example/x".into()),
                    by: "ana".into(),
                    at: at(0),
                },
            )
            .unwrap();
        }
        let pending = |t: &Tile| -> Vec<GtmItem> {
            t.gtm_items(&gtm)
                .into_iter()
                .filter(|s| s.status == GtmStatus::Pending)
                .map(|s| s.item)
                .collect()
        };
        let mut t = partner();
        t.set_test_workspace(at(0), "ws").unwrap();
        assert_eq!(pending(&t), [GtmItem::PartnershipAgreement]);
        assert!(matches!(
            t.ga_commit_gate(&gtm, None),
            Err(GtmGateError::Pending { pending }) if pending.len() == 1
        ));
        t.record_sign_off(at(0), RevisionNo(1), Role::Legal, sign("counsel"))
            .unwrap();
        assert_eq!(pending(&t), []);
        assert_eq!(t.ga_commit_gate(&gtm, None), Ok(GaCommit::Ready));
        // A new revision clears legal's sign-off, and so the agreement.
        t.new_revision(at(1), TileKind::Partner).unwrap();
        assert_eq!(pending(&t), [GtmItem::PartnershipAgreement]);
    }

    #[test]
    fn a_maintenance_revision_affects_the_changed_clouds_or_all() {
        // (old, new, only the clouds changed, affected)
        type Case = (&'static [u8], &'static [u8], bool, &'static [u8]);
        let cases: [Case; 5] = [
            (&[1], &[1, 3], true, &[3]),
            (&[1, 3], &[1], true, &[3]),
            (&[1, 2], &[3, 2], true, &[1, 3]),
            (&[1], &[1, 3], false, &[1, 3]),
            (&[1, 2], &[1, 2], true, &[1, 2]),
        ];
        for (old, new, only, want) in cases {
            assert_eq!(affected_clouds(old, new, only), want, "{old:?} -> {new:?}");
        }
    }
}
