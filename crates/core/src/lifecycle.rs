//! The tile lifecycle (docs/domain.md "Lifecycle", docs/design.md
//! "Services and their RPCs") as a pure state machine.
//!
//! [`step`] takes the tile's kind, its state and an [`Event`], and returns
//! the next state and the [`Effect`]s the caller (the registry) must carry
//! out, or a [`LifecycleError`] naming the state, what was being done (in
//! the user's words, never the event's name) and why it is refused, with the
//! command that fixes it where there is one. Every (state, event) pair is matched explicitly, without a
//! catch-all arm, so adding a state or an event forces a decision for each
//! pair (docs/design.md, "Code layout").
//!
//! The launch path is
//! `Draft -> Validating -> SignedOff -> Scheduled -> RollingOut -> RolledOut -> Ga`;
//! a roll-back moves `RollingOut`/`RolledOut` back to `Scheduled`; the durable
//! GA timer turns `RolledOut` into `Ga`. After GA a configuration change opens
//! a maintenance revision, tracked by [`Maintenance`] while the tile stays
//! `Ga`. `Withdraw` from any state but `Withdrawn` is a removal.
//!
//! Guards that need data beyond the state (are the sign-offs complete, is the
//! GA date a week away) are checked by [`crate::tile::Tile`] around its calls
//! of [`step`]; this module only knows which moves exist.

use std::fmt;

use jiff::Timestamp;

/// Whether a tile is a regular partner tile or a self-test tile.
///
/// Fixed for a tile's whole life, so it is an argument of [`step`], not part
/// of the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TileKind {
    /// A partner tile: validated, signed off, scheduled and rolled out.
    Partner,
    /// A self-test tile: visible only in the partner's own workspace, it has
    /// no GA date and is never rolled out.
    SelfTest,
}

impl fmt::Display for TileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TileKind::Partner => "partner tile",
            TileKind::SelfTest => "self-test tile",
        })
    }
}

/// Where a maintenance revision of a GA tile stands. The tile itself stays
/// [`State::Ga`]: the revision that launched is live everywhere meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Maintenance {
    /// No maintenance revision is open: the live revision is the current one.
    Idle,
    /// A new revision is open and waits for its engineering and partner
    /// sign-offs.
    Open,
    /// The new revision has its maintenance sign-offs and may roll out.
    SignedOff,
    /// The new revision is rolling out to the regions the change affects.
    RollingOut,
}

/// The lifecycle state of a tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Registered or imported; not visible anywhere yet.
    Draft,
    /// Shown only in its one test workspace while the test cases run
    /// (the workspace is recorded on the tile).
    Validating,
    /// All five launch sign-offs are recorded on the current revision.
    SignedOff,
    /// A GA date is set (at least a week ahead); the GA timer is armed.
    Scheduled,
    /// The launch roll-out is applying region by region.
    RollingOut,
    /// Live in every region of its clouds; waiting for the GA moment.
    RolledOut,
    /// Generally available; maintenance may be under way.
    Ga {
        /// The state of the maintenance revision, if any.
        maintenance: Maintenance,
    },
    /// Removed. Terminal.
    Withdrawn,
}

impl State {
    /// The upper-snake name used on the wire and in messages.
    pub fn name(&self) -> &'static str {
        match self {
            State::Draft => "DRAFT",
            State::Validating => "VALIDATING",
            State::SignedOff => "SIGNED_OFF",
            State::Scheduled => "SCHEDULED",
            State::RollingOut => "ROLLING_OUT",
            State::RolledOut => "ROLLED_OUT",
            State::Ga { .. } => "GA",
            State::Withdrawn => "WITHDRAWN",
        }
    }

    /// True once nothing can move the tile any more.
    pub fn is_terminal(&self) -> bool {
        match self {
            State::Withdrawn => true,
            State::Draft
            | State::Validating
            | State::SignedOff
            | State::Scheduled
            | State::RollingOut
            | State::RolledOut
            | State::Ga { .. } => false,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            State::Ga {
                maintenance: Maintenance::Idle,
            } => f.write_str("GA"),
            State::Ga {
                maintenance: Maintenance::Open,
            } => f.write_str("GA (maintenance revision open)"),
            State::Ga {
                maintenance: Maintenance::SignedOff,
            } => f.write_str("GA (maintenance revision signed off)"),
            State::Ga {
                maintenance: Maintenance::RollingOut,
            } => f.write_str("GA (maintenance revision rolling out)"),
            State::Draft
            | State::Validating
            | State::SignedOff
            | State::Scheduled
            | State::RollingOut
            | State::RolledOut
            | State::Withdrawn => f.write_str(self.name()),
        }
    }
}

/// Something that happened to a tile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Show the tile in this test workspace (and only there).
    StartValidation {
        /// The test workspace's id.
        workspace: String,
    },
    /// The sign-offs needed in this state are complete on the current
    /// revision: all five before launch, engineering and partner for a
    /// maintenance revision.
    AllSignedOff,
    /// A sign-off on the current revision was withdrawn.
    SignOffWithdrawn,
    /// A GA date was set (or moved).
    GaDateSet {
        /// The GA moment.
        ga: Timestamp,
    },
    /// The GA date was cleared.
    GaDateCleared,
    /// The rollout service started a roll-out of the current revision.
    RolloutStarted,
    /// The roll-out reached every region it covers.
    RolloutCompleted,
    /// The roll-out was rolled back: the revision is gone from its regions.
    RolloutRolledBack,
    /// The durable GA timer fired.
    GaReached,
    /// The configuration changed: a new revision of the tile.
    NewRevision,
    /// Remove the tile.
    Withdraw,
}

impl Event {
    /// The event's name, for messages and audit records.
    pub fn name(&self) -> &'static str {
        match self {
            Event::StartValidation { .. } => "StartValidation",
            Event::AllSignedOff => "AllSignedOff",
            Event::SignOffWithdrawn => "SignOffWithdrawn",
            Event::GaDateSet { .. } => "GaDateSet",
            Event::GaDateCleared => "GaDateCleared",
            Event::RolloutStarted => "RolloutStarted",
            Event::RolloutCompleted => "RolloutCompleted",
            Event::RolloutRolledBack => "RolloutRolledBack",
            Event::GaReached => "GaReached",
            Event::NewRevision => "NewRevision",
            Event::Withdraw => "Withdraw",
        }
    }

    /// What the user was doing when the event came up, for messages that
    /// must not name the event itself ("cannot set the GA date ...").
    pub fn action(&self) -> &'static str {
        match self {
            Event::StartValidation { .. } => "set the test workspace",
            Event::AllSignedOff => "complete the sign-offs",
            Event::SignOffWithdrawn => "withdraw a sign-off",
            Event::GaDateSet { .. } => "set the GA date",
            Event::GaDateCleared => "clear the GA date",
            Event::RolloutStarted => "start a roll-out",
            Event::RolloutCompleted => "complete the roll-out",
            Event::RolloutRolledBack => "roll back the roll-out",
            Event::GaReached => "make the tile GA",
            Event::NewRevision => "open a new revision",
            Event::Withdraw => "withdraw the tile",
        }
    }

    /// Events that only make sense for a tile that launches (sign-off
    /// completion, GA dates, roll-outs): a self-test tile refuses them.
    fn is_launch_event(&self) -> bool {
        match self {
            Event::AllSignedOff
            | Event::GaDateSet { .. }
            | Event::GaDateCleared
            | Event::RolloutStarted
            | Event::RolloutCompleted
            | Event::RolloutRolledBack
            | Event::GaReached => true,
            Event::StartValidation { .. }
            | Event::SignOffWithdrawn
            | Event::NewRevision
            | Event::Withdraw => false,
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the caller must do after a transition, besides storing the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Record the workspace on the tile and show the tile there.
    ShowInTestWorkspace {
        /// The test workspace's id.
        workspace: String,
    },
    /// Show the new revision in the tile's recorded test workspace.
    RefreshTestWorkspace,
    /// Remove the tile from its recorded test workspace.
    HideFromTestWorkspace,
    /// Start the next revision; sign-offs of the old one no longer count.
    OpenRevision {
        /// A maintenance revision of a GA tile (needs only engineering and
        /// partner sign-offs) rather than a pre-launch revision.
        maintenance: bool,
    },
    /// Store the GA date and (re-)arm the durable GA timer at it.
    ArmGaTimer {
        /// The GA moment.
        at: Timestamp,
    },
    /// Disarm the durable GA timer.
    CancelGaTimer,
    /// Forget the stored GA date: it must be aligned again.
    ClearGaDate,
    /// Tell the world the tile is GA (notifications, launch post).
    AnnounceGa,
    /// Stop the roll-out that is applying.
    AbortRollout,
    /// Remove the tile from every region it is live in, region by region.
    StartRemovalRollout,
}

/// Why an event is refused in a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// The tile is withdrawn; nothing moves it.
    Withdrawn,
    /// Self-test tiles have no GA date and are never rolled out.
    SelfTest,
    /// The tile is not in its test workspace yet.
    NotValidating,
    /// The launch sign-offs are not complete.
    NotSignedOff,
    /// The sign-offs are already complete.
    AlreadySignedOff,
    /// No GA date is set yet.
    NotScheduled,
    /// No roll-out is applying.
    NoRolloutInProgress,
    /// A roll-out is already applying.
    RolloutInProgress,
    /// The roll-out already completed.
    AlreadyRolledOut,
    /// The roll-out has not completed: the GA moment came too early.
    NotRolledOut,
    /// The tile is live in production regions: roll back first.
    LiveInRegions,
    /// Validation is over; a new revision is needed to validate again.
    ValidationOver,
    /// The tile is GA already.
    AlreadyGa,
    /// No maintenance revision is open.
    NoMaintenanceRevision,
    /// The maintenance revision lacks its engineering and partner sign-offs.
    MaintenanceNotSignedOff,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::Withdrawn => "the tile is withdrawn",
            Refusal::SelfTest => "a self-test tile has no GA date and is never rolled out",
            Refusal::NotValidating => {
                "the tile is not in a test workspace yet: show it in one first with `tilewave tile \
                 set-test-workspace TILE WORKSPACE_ID`"
            }
            Refusal::NotSignedOff => {
                "the five launch sign-offs are not complete on the current revision (`tilewave tile get \
                 TILE` lists the missing ones)"
            }
            Refusal::AlreadySignedOff => "the sign-offs are already complete",
            Refusal::NotScheduled => "no GA date is set (`tilewave tile set-ga TILE TIME` sets one)",
            Refusal::NoRolloutInProgress => "no roll-out is in progress",
            Refusal::RolloutInProgress => "a roll-out is already in progress",
            Refusal::AlreadyRolledOut => "the roll-out has already completed",
            Refusal::NotRolledOut => "the roll-out has not completed",
            Refusal::LiveInRegions => {
                "the tile is live in production regions; roll it back first (`tilewave rollout rollback TILE`)"
            }
            Refusal::ValidationOver => {
                "validation is over; open a new revision to validate again (`tilewave tile update TILE FILE`)"
            }
            Refusal::AlreadyGa => "the tile is already GA",
            Refusal::NoMaintenanceRevision => {
                "no maintenance revision is open (`tilewave tile update TILE FILE` opens one)"
            }
            Refusal::MaintenanceNotSignedOff => {
                "the maintenance revision lacks its engineering and partner sign-offs (`tilewave tile signoff \
                 TILE --role engineering`, `--role partner`)"
            }
        })
    }
}

/// An event refused in a state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {action} while the {kind} is {state}: {reason}")]
pub struct LifecycleError {
    /// The state the tile was in.
    pub state: State,
    /// The name of the refused event (for logs; messages say
    /// [`Event::action`]).
    pub event: &'static str,
    /// What the refused event was doing, in words ([`Event::action`]).
    pub action: &'static str,
    /// The tile's kind.
    pub kind: TileKind,
    /// Why.
    pub reason: Refusal,
}

/// The result of a step: the next state and what to do about it.
pub type Transition = (State, Vec<Effect>);

/// Moves a tile of `kind` in `state` by `event`.
pub fn step(kind: TileKind, state: State, event: &Event) -> Result<Transition, LifecycleError> {
    use Effect as Fx;
    use Event as E;
    use Maintenance as M;
    use State as S;

    let refuse = |reason: Refusal| {
        Err(LifecycleError {
            state,
            event: event.name(),
            action: event.action(),
            kind,
            reason,
        })
    };
    let to = |next: State, effects: Vec<Effect>| Ok((next, effects));

    if state.is_terminal() {
        return refuse(Refusal::Withdrawn);
    }
    if kind == TileKind::SelfTest && event.is_launch_event() {
        return refuse(Refusal::SelfTest);
    }

    match (state, event) {
        // ---- Withdrawn: terminal (also caught above, listed for the table).
        (
            S::Withdrawn,
            E::StartValidation { .. }
            | E::AllSignedOff
            | E::SignOffWithdrawn
            | E::GaDateSet { .. }
            | E::GaDateCleared
            | E::RolloutStarted
            | E::RolloutCompleted
            | E::RolloutRolledBack
            | E::GaReached
            | E::NewRevision
            | E::Withdraw,
        ) => refuse(Refusal::Withdrawn),

        // ---- Draft: not visible anywhere.
        (S::Draft, E::StartValidation { workspace }) => to(
            S::Validating,
            vec![Fx::ShowInTestWorkspace {
                workspace: workspace.clone(),
            }],
        ),
        (S::Draft, E::AllSignedOff | E::GaDateSet { .. }) => refuse(Refusal::NotValidating),
        // An early sign-off taken back: nothing depended on it.
        (S::Draft, E::SignOffWithdrawn) => to(S::Draft, vec![]),
        (S::Draft, E::GaDateCleared | E::RolloutStarted | E::GaReached) => refuse(Refusal::NotScheduled),
        (S::Draft, E::RolloutCompleted | E::RolloutRolledBack) => refuse(Refusal::NoRolloutInProgress),
        (S::Draft, E::NewRevision) => to(S::Draft, vec![Fx::OpenRevision { maintenance: false }]),
        (S::Draft, E::Withdraw) => to(S::Withdrawn, vec![]),

        // ---- Validating: visible only in the test workspace.
        (S::Validating, E::StartValidation { workspace }) => to(
            S::Validating,
            vec![
                Fx::HideFromTestWorkspace,
                Fx::ShowInTestWorkspace {
                    workspace: workspace.clone(),
                },
            ],
        ),
        (S::Validating, E::AllSignedOff) => to(S::SignedOff, vec![]),
        // Nothing was complete, so losing a sign-off changes nothing.
        (S::Validating, E::SignOffWithdrawn) => to(S::Validating, vec![]),
        (S::Validating, E::GaDateSet { .. }) => refuse(Refusal::NotSignedOff),
        (S::Validating, E::GaDateCleared | E::RolloutStarted | E::GaReached) => refuse(Refusal::NotScheduled),
        (S::Validating, E::RolloutCompleted | E::RolloutRolledBack) => refuse(Refusal::NoRolloutInProgress),
        (S::Validating, E::NewRevision) => to(
            S::Validating,
            vec![Fx::OpenRevision { maintenance: false }, Fx::RefreshTestWorkspace],
        ),
        (S::Validating, E::Withdraw) => to(S::Withdrawn, vec![Fx::HideFromTestWorkspace]),

        // ---- SignedOff: all five sign-offs on the current revision.
        (S::SignedOff, E::StartValidation { .. }) => refuse(Refusal::ValidationOver),
        (S::SignedOff, E::AllSignedOff) => refuse(Refusal::AlreadySignedOff),
        (S::SignedOff, E::SignOffWithdrawn) => to(S::Validating, vec![]),
        (S::SignedOff, E::GaDateSet { ga }) => to(S::Scheduled, vec![Fx::ArmGaTimer { at: *ga }]),
        (S::SignedOff, E::GaDateCleared | E::RolloutStarted | E::GaReached) => refuse(Refusal::NotScheduled),
        (S::SignedOff, E::RolloutCompleted | E::RolloutRolledBack) => refuse(Refusal::NoRolloutInProgress),
        (S::SignedOff, E::NewRevision) => to(
            S::Validating,
            vec![Fx::OpenRevision { maintenance: false }, Fx::RefreshTestWorkspace],
        ),
        (S::SignedOff, E::Withdraw) => to(S::Withdrawn, vec![Fx::HideFromTestWorkspace]),

        // ---- Scheduled: GA date set, timer armed, roll-out may start.
        (S::Scheduled, E::StartValidation { .. }) => refuse(Refusal::ValidationOver),
        (S::Scheduled, E::AllSignedOff) => refuse(Refusal::AlreadySignedOff),
        // Losing a sign-off unschedules the launch: the date is aligned again
        // once the sign-offs are back.
        (S::Scheduled, E::SignOffWithdrawn) => to(S::Validating, vec![Fx::CancelGaTimer, Fx::ClearGaDate]),
        (S::Scheduled, E::GaDateSet { ga }) => to(S::Scheduled, vec![Fx::ArmGaTimer { at: *ga }]),
        (S::Scheduled, E::GaDateCleared) => to(S::SignedOff, vec![Fx::CancelGaTimer, Fx::ClearGaDate]),
        (S::Scheduled, E::RolloutStarted) => to(S::RollingOut, vec![]),
        (S::Scheduled, E::RolloutCompleted | E::RolloutRolledBack) => refuse(Refusal::NoRolloutInProgress),
        (S::Scheduled, E::GaReached) => refuse(Refusal::NotRolledOut),
        (S::Scheduled, E::NewRevision) => to(
            S::Validating,
            vec![
                Fx::OpenRevision { maintenance: false },
                Fx::CancelGaTimer,
                Fx::ClearGaDate,
                Fx::RefreshTestWorkspace,
            ],
        ),
        (S::Scheduled, E::Withdraw) => to(S::Withdrawn, vec![Fx::CancelGaTimer, Fx::HideFromTestWorkspace]),

        // ---- RollingOut: the launch roll-out is applying.
        (
            S::RollingOut,
            E::StartValidation { .. } | E::SignOffWithdrawn | E::GaDateCleared | E::NewRevision,
        ) => refuse(Refusal::LiveInRegions),
        (S::RollingOut, E::AllSignedOff) => refuse(Refusal::AlreadySignedOff),
        // GA slips happen: moving the date re-arms the timer; the rollout
        // service re-plans against the new deadline.
        (S::RollingOut, E::GaDateSet { ga }) => to(S::RollingOut, vec![Fx::ArmGaTimer { at: *ga }]),
        (S::RollingOut, E::RolloutStarted) => refuse(Refusal::RolloutInProgress),
        (S::RollingOut, E::RolloutCompleted) => to(S::RolledOut, vec![]),
        (S::RollingOut, E::RolloutRolledBack) => to(S::Scheduled, vec![]),
        (S::RollingOut, E::GaReached) => refuse(Refusal::NotRolledOut),
        (S::RollingOut, E::Withdraw) => to(
            S::Withdrawn,
            vec![
                Fx::AbortRollout,
                Fx::CancelGaTimer,
                Fx::HideFromTestWorkspace,
                Fx::StartRemovalRollout,
            ],
        ),

        // ---- RolledOut: live everywhere, waiting for the GA moment.
        (
            S::RolledOut,
            E::StartValidation { .. } | E::SignOffWithdrawn | E::GaDateCleared | E::NewRevision,
        ) => refuse(Refusal::LiveInRegions),
        (S::RolledOut, E::AllSignedOff) => refuse(Refusal::AlreadySignedOff),
        (S::RolledOut, E::GaDateSet { ga }) => to(S::RolledOut, vec![Fx::ArmGaTimer { at: *ga }]),
        (S::RolledOut, E::RolloutStarted | E::RolloutCompleted) => refuse(Refusal::AlreadyRolledOut),
        (S::RolledOut, E::RolloutRolledBack) => to(S::Scheduled, vec![]),
        (S::RolledOut, E::GaReached) => to(S::Ga { maintenance: M::Idle }, vec![Fx::AnnounceGa]),
        (S::RolledOut, E::Withdraw) => to(
            S::Withdrawn,
            vec![
                Fx::CancelGaTimer,
                Fx::HideFromTestWorkspace,
                Fx::StartRemovalRollout,
            ],
        ),

        // ---- Ga: launched; maintenance revisions come and go.
        (S::Ga { .. }, E::StartValidation { .. } | E::GaDateSet { .. } | E::GaDateCleared | E::GaReached) => {
            refuse(Refusal::AlreadyGa)
        }
        (S::Ga { maintenance }, E::AllSignedOff) => match maintenance {
            M::Open => to(
                S::Ga {
                    maintenance: M::SignedOff,
                },
                vec![],
            ),
            M::Idle => refuse(Refusal::NoMaintenanceRevision),
            M::SignedOff | M::RollingOut => refuse(Refusal::AlreadySignedOff),
        },
        (S::Ga { maintenance }, E::SignOffWithdrawn) => match maintenance {
            M::Open | M::SignedOff => to(S::Ga { maintenance: M::Open }, vec![]),
            M::Idle => refuse(Refusal::NoMaintenanceRevision),
            M::RollingOut => refuse(Refusal::RolloutInProgress),
        },
        (S::Ga { maintenance }, E::RolloutStarted) => match maintenance {
            M::SignedOff => to(
                S::Ga {
                    maintenance: M::RollingOut,
                },
                vec![],
            ),
            M::Idle => refuse(Refusal::NoMaintenanceRevision),
            M::Open => refuse(Refusal::MaintenanceNotSignedOff),
            M::RollingOut => refuse(Refusal::RolloutInProgress),
        },
        (S::Ga { maintenance }, E::RolloutCompleted) => match maintenance {
            M::RollingOut => to(S::Ga { maintenance: M::Idle }, vec![]),
            M::Idle | M::Open | M::SignedOff => refuse(Refusal::NoRolloutInProgress),
        },
        // The previous revision is live again; the new one keeps its
        // sign-offs and may be retried.
        (S::Ga { maintenance }, E::RolloutRolledBack) => match maintenance {
            M::RollingOut => to(
                S::Ga {
                    maintenance: M::SignedOff,
                },
                vec![],
            ),
            M::Idle | M::Open | M::SignedOff => refuse(Refusal::NoRolloutInProgress),
        },
        (S::Ga { maintenance }, E::NewRevision) => match maintenance {
            M::Idle | M::Open | M::SignedOff => to(
                S::Ga { maintenance: M::Open },
                vec![Fx::OpenRevision { maintenance: true }],
            ),
            M::RollingOut => refuse(Refusal::RolloutInProgress),
        },
        (S::Ga { maintenance }, E::Withdraw) => match maintenance {
            M::RollingOut => to(S::Withdrawn, vec![Fx::AbortRollout, Fx::StartRemovalRollout]),
            M::Idle | M::Open | M::SignedOff => to(S::Withdrawn, vec![Fx::StartRemovalRollout]),
        },
    }
}

#[cfg(test)]
mod tests;
