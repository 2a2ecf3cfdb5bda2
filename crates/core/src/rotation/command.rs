//! A person's commands on a rotation ([`handle`]), whether a new rotation
//! may start ([`start_refusal`]), and the refusals of both and of
//! [`super::apply`].

use std::fmt;

use jiff::Timestamp;

use super::{Effect, Retirement, Rotation, State, Transition};
use crate::quote::quoted;

/// A command on a rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Stop the rotation before promotion: the pending version is withdrawn
    /// from the regions it reached; CURRENT is untouched.
    Cancel {
        /// Why.
        reason: String,
    },
    /// The partner removed the old credential: retire it now.
    ConfirmOldRetired,
}

impl Command {
    /// The audit action (the RPC's name).
    pub fn action(&self) -> &'static str {
        match self {
            Command::Cancel { .. } => "CancelRotation",
            Command::ConfirmOldRetired => "ConfirmOldRetired",
        }
    }

    /// What the command does, for "cannot `verb` rotation `id`".
    pub fn verb(&self) -> &'static str {
        match self {
            Command::Cancel { .. } => "cancel",
            Command::ConfirmOldRetired => "confirm the old credential retired for",
        }
    }
}

/// Why something is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The rotation is over.
    Finished,
    /// Cancel while the promotion is under way.
    CancelWhilePromoting,
    /// Cancel once the new credential is current.
    CancelAfterPromotion,
    /// ConfirmOldRetired before the new credential is current.
    ConfirmBeforePromotion,
    /// ConfirmOldRetired under a policy that retires only after the grace
    /// period.
    ConfirmationNotUsed {
        /// When the grace period ends.
        until: Option<Timestamp>,
    },
    /// A new rotation while this one holds the tile.
    Held,
    /// An outcome the rotation does not wait for (stale or repeated).
    Unexpected {
        /// The outcome, in words.
        outcome: String,
    },
    /// An outcome naming a region the rotation does not have.
    NoSuchRegion {
        /// The region.
        region: String,
    },
    /// An intent for a region outside the wave being distributed.
    NotInWave {
        /// The region.
        region: String,
        /// The wave being distributed (from 1).
        wave: usize,
    },
    /// An outcome that does not answer the region's step.
    WrongStep {
        /// The region.
        region: String,
        /// Its step.
        step: &'static str,
        /// The outcome, in words.
        outcome: String,
    },
    /// A fresh install intent in a wave whose bake has not ended.
    Baking {
        /// The wave (from 1).
        wave: usize,
        /// When the bake ends.
        until: Timestamp,
    },
    /// A retirement before the grace period ended or the partner confirmed.
    RetirementNotDue {
        /// When the grace period ends (none: only on confirmation).
        until: Option<Timestamp>,
    },
}

/// A refusal, with the rotation it is about. `Display` is the user-facing
/// message and says what to do next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Refused {
    /// The rotation it is about.
    pub rotation: Box<About>,
    /// What was asked, for "cannot `verb` rotation `id`".
    pub verb: &'static str,
    /// Why.
    pub reason: Refusal,
}

/// The rotation a [`Refused`] is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct About {
    /// The rotation's id.
    pub id: String,
    /// Its tile.
    pub tile: String,
    /// The version it rotates to.
    pub to: u64,
    /// Its state's name ([`State::name`]).
    pub name: &'static str,
    /// Its state in words ([`Rotation::describe`]).
    pub state: String,
    /// Whether that state is terminal.
    pub terminal: bool,
    /// Its progress ([`Rotation::progress`]).
    pub progress: String,
}

/// A refusal of `reason` about `r`.
pub(super) fn refused(r: &Rotation, verb: &'static str, reason: Refusal) -> Refused {
    Refused {
        rotation: Box::new(About {
            id: r.id.clone(),
            tile: r.tile.clone(),
            to: r.to,
            name: r.state.name(),
            state: r.describe(),
            terminal: r.state.is_terminal(),
            progress: r.progress(),
        }),
        verb,
        reason,
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let About {
            id,
            tile,
            to,
            name,
            state,
            progress,
            ..
        } = &*self.rotation;
        let verb = self.verb;
        let rotate = format!("`tilewave creds rotate {tile}`");
        let confirm = format!("`tilewave creds confirm-retired {tile}`");
        match &self.reason {
            Refusal::Finished => write!(
                f,
                "cannot {verb} rotation {id} of {tile}: it is {state} (finished); {}",
                if *name == "COMPLETED" {
                    format!("the old credential is already retired; rotate again with {rotate}")
                } else {
                    format!("the old credential is still current; start a new rotation with {rotate}")
                }
            ),
            Refusal::CancelWhilePromoting => write!(
                f,
                "cannot cancel rotation {id} of {tile}: every region verified v{to} and it is being \
                 promoted to current; wait for the promotion, then rotate again with {rotate} if needed"
            ),
            Refusal::CancelAfterPromotion => write!(
                f,
                "cannot cancel rotation {id} of {tile}: the new credential v{to} is already current \
                 everywhere; confirm the partner removed the old one with {confirm}, or rotate again \
                 with {rotate}"
            ),
            Refusal::ConfirmBeforePromotion => write!(
                f,
                "confirming retirement before promotion: rotation {id} of {tile} is {state} and v{to} \
                 is not current yet ({progress}); every region still calls the partner with the old \
                 credential, so the partner must keep it; confirm once the rotation is PROMOTED"
            ),
            Refusal::ConfirmationNotUsed { until } => write!(
                f,
                "rotation {id} of {tile} retires the old credential when its grace period ends{}, not \
                 on the partner's confirmation; nothing to confirm",
                until.map(|t| format!(" ({t})")).unwrap_or_default()
            ),
            Refusal::Held => {
                write!(
                    f,
                    "cannot start a rotation of {tile}: rotation {id} holds it ({state}; {progress}); "
                )?;
                if *name == "DISTRIBUTING" {
                    write!(
                        f,
                        "wait for it to finish or cancel it with `tilewave creds cancel {tile}`"
                    )
                } else if *name == "PROMOTING" {
                    write!(f, "it is being promoted; wait for it to finish")
                } else {
                    write!(
                        f,
                        "the old credential awaits retirement; confirm the partner removed it with {confirm}"
                    )
                }
            }
            Refusal::Unexpected { outcome } => write!(
                f,
                "rotation {id} of {tile} is {state}: {outcome} does not answer anything it waits for \
                 (a stale or repeated answer); nothing changed"
            ),
            Refusal::NoSuchRegion { region } => {
                write!(f, "rotation {id} of {tile} has no region {}", quoted(region))
            }
            Refusal::NotInWave { region, wave } => write!(
                f,
                "{} is not in wave {wave}, which rotation {id} of {tile} is distributing; nothing changed",
                quoted(region)
            ),
            Refusal::WrongStep {
                region,
                step,
                outcome,
            } => write!(
                f,
                "{} of rotation {id} is {step}: {outcome} does not answer it (a stale or repeated \
                 answer); nothing changed",
                quoted(region)
            ),
            Refusal::Baking { wave, until } => write!(
                f,
                "rotation {id} of {tile} starts wave {wave} when the bake ends at {until}; no install \
                 before then; nothing changed"
            ),
            Refusal::RetirementNotDue { until } => match until {
                Some(t) => write!(
                    f,
                    "the old credential of {tile} is not due for retirement before {t} (rotation {id}); \
                     the partner may confirm removing it with {confirm}"
                ),
                None => write!(
                    f,
                    "the old credential of {tile} is retired only on the partner's confirmation \
                     (rotation {id}); confirm with {confirm}"
                ),
            },
        }
    }
}

/// Whether a new rotation of the tile may start, given the latest one
/// (`existing`). A rotation that is distributing, promoting or awaiting
/// retirement holds the tile; a completed, failed or cancelled one does
/// not, so no rotation can be stuck.
pub fn start_refusal(existing: Option<&Rotation>) -> Result<(), Refused> {
    match existing {
        Some(r) if r.holds() => Err(refused(r, "start", Refusal::Held)),
        Some(_) | None => Ok(()),
    }
}

/// Answers `command` on `r` at `now`: the rotation as it becomes, what else
/// to do and the audit summary, or why not. Every (state, command) pair is
/// matched explicitly.
pub fn handle(r: &Rotation, command: &Command, now: Timestamp) -> Result<Transition, Refused> {
    use Command as C;
    let refuse = |reason: Refusal| Err(refused(r, command.verb(), reason));
    let mut n = r.clone();
    let mut effects = Vec::new();

    let summary = match (&r.state, command) {
        // ---- Cancel: only before promotion.
        (State::Distributing { .. }, C::Cancel { reason }) => {
            n.state = State::Cancelled {
                reason: reason.clone(),
            };
            n.finished_at = Some(now);
            let touched = r.touched_regions();
            let count = touched.len();
            if touched.is_empty() {
                n.withdrawn = true;
            } else {
                effects.push(Effect::Withdraw { regions: touched });
            }
            format!(
                "cancelled ({}): {}; v{} is withdrawn from {count} regions, the current credential is untouched",
                r.progress(),
                quoted(reason),
                r.to
            )
        }
        (State::Promoting, C::Cancel { .. }) => return refuse(Refusal::CancelWhilePromoting),
        (State::Promoted { .. }, C::Cancel { .. }) => return refuse(Refusal::CancelAfterPromotion),
        (State::Completed | State::Failed { .. } | State::Cancelled { .. }, C::Cancel { .. }) => {
            return refuse(Refusal::Finished);
        }

        // ---- ConfirmOldRetired: only once promoted.
        (State::Promoted { at, notified, .. }, C::ConfirmOldRetired) => {
            if let Retirement::AfterGrace(_) = r.policy.retirement {
                return refuse(Refusal::ConfirmationNotUsed {
                    until: r.grace_ends_at(),
                });
            }
            n.state = State::Promoted {
                at: *at,
                notified: *notified,
                confirmed: true,
            };
            format!(
                "the partner confirmed removing the old credential{} of {}: retiring it now",
                r.from.map(|v| format!(" v{v}")).unwrap_or_default(),
                r.tile
            )
        }
        (State::Distributing { .. } | State::Promoting, C::ConfirmOldRetired) => {
            return refuse(Refusal::ConfirmBeforePromotion);
        }
        (State::Completed | State::Failed { .. } | State::Cancelled { .. }, C::ConfirmOldRetired) => {
            return refuse(Refusal::Finished);
        }
    };
    Ok(Transition {
        rotation: n,
        effects,
        summary,
    })
}
