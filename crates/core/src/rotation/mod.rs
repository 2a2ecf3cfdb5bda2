//! The rotation of a tile's partner credential (issue 15) as pure
//! functions, the way [`crate::rollout`] holds a roll-out's rules.
//!
//! Every region calls the partner with a Basic-auth credential. Rotating it
//! keeps at least one working credential at every instant:
//!
//! 1. the partner issues a new one: a PENDING [`Version`] ([`Versions::submit`]);
//! 2. it is distributed and verified **wave by wave**: within a wave every
//!    region is installed (the agent holds CURRENT and PENDING side by
//!    side), then every region is verified (the agent calls the partner's
//!    test-connection endpoint with the new one), then the policy's bake
//!    passes (none for an emergency) before the next wave starts; at most
//!    `concurrency` regions are in flight at once;
//! 3. once every region verified, it is promoted to CURRENT everywhere (the
//!    old one becomes PREVIOUS, still accepted);
//! 4. the partner is told they may remove the old one;
//! 5. PREVIOUS is retired after the grace period, on the partner's
//!    confirmation, or whichever comes first ([`Retirement`]).
//!
//! A region whose install or verification fails is retried until its
//! [`Policy::max_attempts`] are used; then the rotation fails, CURRENT stays
//! untouched everywhere and the pending version is withdrawn from the
//! regions it reached.
//!
//! The service that stores a rotation works **write-ahead**:
//!
//! - [`decide`] says what to do next. Before an install or a verification
//!   it records the intent ([`Outcome::IntentRecorded`], the region's step
//!   becomes INSTALLING or VERIFYING), then calls the agents, then feeds
//!   each answer back with [`apply`]. After a crash, `decide` on the stored
//!   rotation re-issues every recorded intent: a region is never skipped,
//!   and only a [`Outcome::Verified`] answering a recorded verification
//!   marks it verified.
//! - [`handle`] answers a person's [`Command`] (cancel, confirm that the
//!   partner removed the old credential).
//! - [`start_refusal`] says whether a new rotation may start.
//!
//! Deciding twice on the same rotation gives the same decision. Nothing
//! here reads a clock or does I/O.

mod command;
mod decide;
pub mod preflight;
pub mod schedule;
mod versions;

use std::collections::BTreeMap;
use std::fmt;

use jiff::{SignedDuration, Timestamp};

pub use command::{About, Command, Refusal, Refused, handle, start_refusal};
pub use decide::{Decision, Intent, Outcome, apply, decide};
pub use versions::{Stage, Version, VersionError, Versions};

/// The default retry budget of a region: three attempts.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// The default wait before a failed region's next attempt; it doubles
/// with each failure, up to [`MAX_RETRY_DELAY`]. A region whose agent is
/// briefly unreachable (a restart) would otherwise spend its whole budget
/// in milliseconds.
pub const DEFAULT_RETRY_DELAY: SignedDuration = SignedDuration::from_secs(10);

/// The longest wait before a failed region's next attempt.
pub const MAX_RETRY_DELAY: SignedDuration = SignedDuration::from_mins(5);

/// The default bake between waves (not for an emergency).
pub const DEFAULT_BAKE: SignedDuration = SignedDuration::from_mins(30);

/// The default grace period of the old credential after promotion.
pub const DEFAULT_GRACE: SignedDuration = SignedDuration::from_hours(7 * 24);

/// When PREVIOUS is retired after promotion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Retirement {
    /// When the grace period after promotion has passed.
    AfterGrace(SignedDuration),
    /// Only when the partner confirms they removed the old credential.
    OnConfirmation,
    /// On the partner's confirmation or after the grace period, whichever
    /// comes first (the default, with [`DEFAULT_GRACE`]).
    FirstOf(SignedDuration),
}

impl Default for Retirement {
    fn default() -> Self {
        Retirement::FirstOf(DEFAULT_GRACE)
    }
}

impl Retirement {
    /// The grace period, if the policy has one.
    pub fn grace(&self) -> Option<SignedDuration> {
        match *self {
            Retirement::AfterGrace(d) | Retirement::FirstOf(d) => Some(d),
            Retirement::OnConfirmation => None,
        }
    }

    /// Whether the partner's confirmation retires the old credential.
    pub fn on_confirmation(&self) -> bool {
        match self {
            Retirement::OnConfirmation | Retirement::FirstOf(_) => true,
            Retirement::AfterGrace(_) => false,
        }
    }
}

/// A rotation's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Attempts a region gets (installs and verifications together) before
    /// the rotation fails; at least 1 counts ([`DEFAULT_MAX_ATTEMPTS`]).
    pub max_attempts: u32,
    /// The wait after a wave verified, before the next starts (ignored for
    /// an emergency rotation).
    pub bake: SignedDuration,
    /// When the old credential is retired.
    pub retirement: Retirement,
    /// The wait before a region's second attempt, doubled for each later
    /// one up to [`MAX_RETRY_DELAY`] ([`DEFAULT_RETRY_DELAY`]; zero: at
    /// once).
    pub retry_delay: SignedDuration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            bake: DEFAULT_BAKE,
            retirement: Retirement::default(),
            retry_delay: DEFAULT_RETRY_DELAY,
        }
    }
}

impl Policy {
    /// The wait after a region's `failures`-th failed attempt (1-based):
    /// [`Policy::retry_delay`] doubled `failures - 1` times, at most
    /// [`MAX_RETRY_DELAY`] (or the delay itself when that is longer).
    pub fn retry_after(&self, failures: u32) -> SignedDuration {
        let mut delay = self.retry_delay.max(SignedDuration::ZERO);
        for _ in 1..failures.min(32) {
            if delay >= MAX_RETRY_DELAY {
                break;
            }
            delay = delay.saturating_mul(2).min(MAX_RETRY_DELAY);
        }
        delay
    }
}

/// Where one region of a rotation stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegionStep {
    /// Nothing issued yet (or an install failed under budget: again).
    Pending,
    /// The install's intent is recorded; the agent's answer is not.
    Installing,
    /// The agent holds the pending version (or a verification failed under
    /// budget: verify again).
    Installed,
    /// The verification's intent is recorded; the agent's answer is not.
    Verifying,
    /// The agent called the partner with the pending version successfully.
    Verified,
    /// Out of attempts: the rotation failed on this region.
    Failed {
        /// Attempts used.
        attempts: u32,
        /// The last error.
        last_error: String,
    },
}

impl RegionStep {
    /// The upper-snake name used on the wire and in messages.
    pub fn name(&self) -> &'static str {
        match self {
            RegionStep::Pending => "PENDING",
            RegionStep::Installing => "INSTALLING",
            RegionStep::Installed => "INSTALLED",
            RegionStep::Verifying => "VERIFYING",
            RegionStep::Verified => "VERIFIED",
            RegionStep::Failed { .. } => "FAILED",
        }
    }

    /// Whether an install may have reached the agent (what a withdrawal
    /// removes).
    pub fn touched(&self) -> bool {
        match self {
            RegionStep::Pending => false,
            RegionStep::Installing
            | RegionStep::Installed
            | RegionStep::Verifying
            | RegionStep::Verified
            | RegionStep::Failed { .. } => true,
        }
    }

    /// Whether the agent confirmed it holds the pending version.
    pub fn distributed(&self) -> bool {
        match self {
            RegionStep::Installed | RegionStep::Verifying | RegionStep::Verified => true,
            RegionStep::Pending | RegionStep::Installing | RegionStep::Failed { .. } => false,
        }
    }
}

impl fmt::Display for RegionStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One region of a rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionProgress {
    /// Where it stands.
    pub step: RegionStep,
    /// Failed attempts so far.
    pub failures: u32,
    /// The last failure's error (empty if none).
    pub last_error: String,
    /// When it verified.
    pub verified_at: Option<Timestamp>,
    /// After a failed attempt under budget: not issued again before this.
    pub retry_at: Option<Timestamp>,
}

impl RegionProgress {
    /// A region nothing was issued to.
    pub fn pending() -> Self {
        Self {
            step: RegionStep::Pending,
            failures: 0,
            last_error: String::new(),
            verified_at: None,
            retry_at: None,
        }
    }
}

/// Where a rotation stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Installing, then verifying, the regions of wave `wave` (from 0).
    Distributing {
        /// The wave, an index into [`Rotation::waves`].
        wave: usize,
    },
    /// Every region verified: promote the pending version everywhere.
    Promoting,
    /// The new version is current; the old one awaits retirement.
    Promoted {
        /// When the promotion was acknowledged.
        at: Timestamp,
        /// Whether the partner was told they may remove the old one.
        notified: bool,
        /// Whether the partner confirmed they removed it.
        confirmed: bool,
    },
    /// The old credential is retired (or there was none). Terminal.
    Completed,
    /// A region ran out of attempts; CURRENT is untouched. Terminal.
    Failed {
        /// The region.
        region: String,
        /// Why, naming the region, the attempts and the last error.
        reason: String,
    },
    /// Cancelled before promotion; CURRENT is untouched. Terminal.
    Cancelled {
        /// Why.
        reason: String,
    },
}

impl State {
    /// The upper-snake name used on the wire and in messages.
    pub fn name(&self) -> &'static str {
        match self {
            State::Distributing { .. } => "DISTRIBUTING",
            State::Promoting => "PROMOTING",
            State::Promoted { .. } => "PROMOTED",
            State::Completed => "COMPLETED",
            State::Failed { .. } => "FAILED",
            State::Cancelled { .. } => "CANCELLED",
        }
    }

    /// Whether the rotation is over.
    pub fn is_terminal(&self) -> bool {
        match self {
            State::Completed | State::Failed { .. } | State::Cancelled { .. } => true,
            State::Distributing { .. } | State::Promoting | State::Promoted { .. } => false,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a new rotation is asked to do ([`Rotation::new`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// Its id.
    pub id: String,
    /// The tile.
    pub tile: String,
    /// The current version it replaces (none for a first credential).
    pub from: Option<u64>,
    /// The pending version it rotates to.
    pub to: u64,
    /// The regions, wave by wave (computed by the caller with the planner).
    pub waves: Vec<Vec<String>>,
    /// Regions in flight at once; 0 counts as 1.
    pub concurrency: usize,
    /// Its policy.
    pub policy: Policy,
    /// An emergency rotation: no bake between waves beyond verification.
    pub emergency: bool,
}

/// A rotation of one tile's credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// Its id.
    pub id: String,
    /// The tile.
    pub tile: String,
    /// The current version it replaces (none for a first credential).
    pub from: Option<u64>,
    /// The pending version it rotates to.
    pub to: u64,
    /// The regions, wave by wave (computed by the caller with the planner).
    pub waves: Vec<Vec<String>>,
    /// Regions in flight (installing or verifying) at once; 0 counts as 1.
    pub concurrency: usize,
    /// Its policy.
    pub policy: Policy,
    /// An emergency rotation: no bake between waves beyond verification.
    pub emergency: bool,
    /// When it started.
    pub started_at: Timestamp,
    /// No install of the current wave before this (the bake after the
    /// wave before).
    pub wave_ready_at: Option<Timestamp>,
    /// Each region's progress.
    pub regions: BTreeMap<String, RegionProgress>,
    /// Where it stands.
    pub state: State,
    /// Failed or cancelled: whether the agents acknowledged the withdrawal
    /// of the pending version ([`Outcome::Withdrawn`]).
    pub withdrawn: bool,
    /// When it ended.
    pub finished_at: Option<Timestamp>,
}

impl Rotation {
    /// The rotation `spec` describes, started at `now`, distributing its
    /// first wave (or promoting at once when it has no region). Empty waves
    /// are dropped; a region named twice is kept in its first wave only.
    pub fn new(spec: Spec, now: Timestamp) -> Self {
        let mut regions = BTreeMap::new();
        let mut kept: Vec<Vec<String>> = Vec::new();
        for wave in spec.waves {
            let mut w = Vec::new();
            for r in wave {
                if !regions.contains_key(&r) {
                    regions.insert(r.clone(), RegionProgress::pending());
                    w.push(r);
                }
            }
            if !w.is_empty() {
                kept.push(w);
            }
        }
        let state = if kept.is_empty() {
            State::Promoting
        } else {
            State::Distributing { wave: 0 }
        };
        Self {
            id: spec.id,
            tile: spec.tile,
            from: spec.from,
            to: spec.to,
            waves: kept,
            concurrency: spec.concurrency,
            policy: spec.policy,
            emergency: spec.emergency,
            started_at: now,
            wave_ready_at: None,
            regions,
            state,
            withdrawn: false,
            finished_at: None,
        }
    }

    /// The bake between waves: the policy's, none for an emergency.
    pub fn bake(&self) -> SignedDuration {
        if self.emergency {
            SignedDuration::ZERO
        } else {
            self.policy.bake.max(SignedDuration::ZERO)
        }
    }

    /// The retry budget (at least 1).
    pub fn max_attempts(&self) -> u32 {
        self.policy.max_attempts.max(1)
    }

    /// How many regions the rotation covers.
    pub fn total(&self) -> usize {
        self.regions.len()
    }

    /// How many regions hold the pending version (confirmed).
    pub fn distributed(&self) -> usize {
        self.regions.values().filter(|p| p.step.distributed()).count()
    }

    /// How many regions verified.
    pub fn verified(&self) -> usize {
        self.regions
            .values()
            .filter(|p| p.step == RegionStep::Verified)
            .count()
    }

    /// Whether every region verified.
    pub fn all_verified(&self) -> bool {
        self.regions.values().all(|p| p.step == RegionStep::Verified)
    }

    /// "distributed 12/70, verified 9/70".
    pub fn progress(&self) -> String {
        let total = self.total();
        format!(
            "distributed {}/{total}, verified {}/{total}",
            self.distributed(),
            self.verified()
        )
    }

    /// The state with its detail: "DISTRIBUTING wave 2 of 3".
    pub fn describe(&self) -> String {
        match &self.state {
            State::Distributing { wave } => {
                format!("DISTRIBUTING wave {} of {}", wave + 1, self.waves.len())
            }
            State::Promoted {
                notified, confirmed, ..
            } => format!(
                "PROMOTED, {}",
                if *confirmed {
                    "the partner confirmed removing the old credential"
                } else if *notified {
                    "the partner was told to remove the old credential"
                } else {
                    "the partner is not yet told to remove the old credential"
                }
            ),
            State::Failed { reason, .. } => format!("FAILED: {reason}"),
            State::Cancelled { reason } => format!("CANCELLED: {reason}"),
            State::Promoting | State::Completed => self.state.name().to_owned(),
        }
    }

    /// Whether this rotation holds its tile: no new rotation or credential
    /// while it does. A failed, cancelled or completed rotation does not.
    pub fn holds(&self) -> bool {
        !self.state.is_terminal()
    }

    /// When the grace period of the old credential ends, once promoted
    /// (none under [`Retirement::OnConfirmation`]).
    pub fn grace_ends_at(&self) -> Option<Timestamp> {
        match self.state {
            State::Promoted { at, .. } => self.policy.retirement.grace().map(|g| later(at, g)),
            State::Distributing { .. }
            | State::Promoting
            | State::Completed
            | State::Failed { .. }
            | State::Cancelled { .. } => None,
        }
    }

    /// Every region an install may have reached, in wave order (what a
    /// withdrawal removes the pending version from).
    pub fn touched_regions(&self) -> Vec<String> {
        self.waves
            .iter()
            .flatten()
            .filter(|r| self.regions.get(*r).is_some_and(|p| p.step.touched()))
            .cloned()
            .collect()
    }
}

/// `t + d`, or the last representable instant.
pub(crate) fn later(t: Timestamp, d: SignedDuration) -> Timestamp {
    t.checked_add(d).unwrap_or(Timestamp::MAX)
}

/// What the caller carries out besides storing the new [`Rotation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Remove the pending version from these regions' agents (idempotent
    /// there). Also re-issued by [`decide`] until [`Outcome::Withdrawn`].
    Withdraw {
        /// The regions, in wave order.
        regions: Vec<String>,
    },
    /// Publish the `CREDENTIAL_FAILED` event.
    CredentialFailedEvent {
        /// The region that ran out of attempts.
        region: String,
        /// What happened, for people.
        message: String,
    },
    /// [`Versions::promote`] this version (in the same write as the
    /// rotation).
    PromoteVersion(u64),
    /// [`Versions::retire`] this version.
    RetireVersion(u64),
}

/// An accepted outcome or command: the rotation as it becomes, what else
/// to do, and the one-line audit summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The rotation after it.
    pub rotation: Rotation,
    /// What else to carry out.
    pub effects: Vec<Effect>,
    /// The audit record's summary.
    pub summary: String,
}

#[cfg(test)]
mod tests;
