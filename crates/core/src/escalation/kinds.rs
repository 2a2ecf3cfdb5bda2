//! The small vocabularies shared by incidents, SOPs and ladders.

use std::fmt;

use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

/// How bad an incident is. `Sev1` is the worst; the order is worst first,
/// so `a < b` means `a` is more severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    /// Critical: a launch or a live integration is broken.
    Sev1,
    /// Major.
    Sev2,
    /// Minor.
    Sev3,
    /// Cosmetic or informational.
    Sev4,
}

impl Severity {
    /// Every severity, worst first.
    pub const ALL: [Severity; 4] = [Severity::Sev1, Severity::Sev2, Severity::Sev3, Severity::Sev4];

    /// "SEV1" .. "SEV4".
    pub fn name(self) -> &'static str {
        match self {
            Severity::Sev1 => "SEV1",
            Severity::Sev2 => "SEV2",
            Severity::Sev3 => "SEV3",
            Severity::Sev4 => "SEV4",
        }
    }

    /// How urgently people are paged: SEV1 and SEV2 are high urgency,
    /// SEV3 and SEV4 low.
    pub fn urgency(self) -> Urgency {
        match self {
            Severity::Sev1 | Severity::Sev2 => Urgency::High,
            Severity::Sev3 | Severity::Sev4 => Urgency::Low,
        }
    }

    /// Whether resolving needs every SOP step done or skipped with a
    /// reason (SEV1 and SEV2).
    pub fn needs_every_step(self) -> bool {
        match self {
            Severity::Sev1 | Severity::Sev2 => true,
            Severity::Sev3 | Severity::Sev4 => false,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a page reaches a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Urgency {
    /// At any hour.
    High,
    /// Only in the person's working hours, in their zone; outside them the
    /// page waits for the start of their next working period.
    Low,
}

impl fmt::Display for Urgency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Urgency::High => "high urgency",
            Urgency::Low => "low urgency",
        })
    }
}

/// Who owns an incident or an SOP step: the partner (their service is
/// broken) or the platform (tilewave or the workspace side).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The partner.
    Partner,
    /// The platform.
    Platform,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Partner => "partner",
            Side::Platform => "platform",
        })
    }
}

/// What raised an incident, without its details: selects the SOP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// A person opened it.
    Manual,
    /// A roll-out failed (ROLLOUT_FAILED).
    RolloutFailure,
    /// A roll-out will not finish before its deadline (DEADLINE_AT_RISK).
    DeadlineAtRisk,
    /// A credential rotation failed (CREDENTIAL_FAILED).
    CredentialFailure,
    /// A region drifted from its desired state (DRIFT_REPAIRED).
    Drift,
    /// A health gate or probe failed.
    Health,
}

impl SourceKind {
    /// The kebab-case name ("rollout-failure"), used in dedup keys.
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Manual => "manual",
            SourceKind::RolloutFailure => "rollout-failure",
            SourceKind::DeadlineAtRisk => "deadline-at-risk",
            SourceKind::CredentialFailure => "credential-failure",
            SourceKind::Drift => "drift",
            SourceKind::Health => "health",
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What raised an incident, with what identifies the failure: the dedup
/// key is derived from it ([`Source::dedup_key`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Source {
    /// A person opened it; never folded with another.
    Manual,
    /// A wave of a roll-out failed.
    RolloutFailure {
        /// The roll-out's id.
        rollout: String,
        /// The wave (from 1).
        wave: u32,
    },
    /// A roll-out will not finish before its deadline.
    DeadlineAtRisk {
        /// The roll-out's id.
        rollout: String,
    },
    /// A credential rotation failed.
    CredentialFailure {
        /// The rotation's id.
        rotation: String,
    },
    /// A region of the tile drifted and was repaired.
    Drift,
    /// A health gate or probe of the tile failed.
    Health,
}

impl Source {
    /// Its kind.
    pub fn kind(&self) -> SourceKind {
        match self {
            Source::Manual => SourceKind::Manual,
            Source::RolloutFailure { .. } => SourceKind::RolloutFailure,
            Source::DeadlineAtRisk { .. } => SourceKind::DeadlineAtRisk,
            Source::CredentialFailure { .. } => SourceKind::CredentialFailure,
            Source::Drift => SourceKind::Drift,
            Source::Health => SourceKind::Health,
        }
    }

    /// The key that folds repeats of the same failure of `tile` into one
    /// open incident: `rollout-failure/riverflow/ro-7/wave-4`,
    /// `deadline-at-risk/riverflow/ro-7`,
    /// `credential-failure/riverflow/rot-3`, `drift/riverflow`,
    /// `health/riverflow`. `None` for a manual incident.
    pub fn dedup_key(&self, tile: &str) -> Option<String> {
        let kind = self.kind();
        match self {
            Source::Manual => None,
            Source::RolloutFailure { rollout, wave } => Some(format!("{kind}/{tile}/{rollout}/wave-{wave}")),
            Source::DeadlineAtRisk { rollout } => Some(format!("{kind}/{tile}/{rollout}")),
            Source::CredentialFailure { rotation } => Some(format!("{kind}/{tile}/{rotation}")),
            Source::Drift | Source::Health => Some(format!("{kind}/{tile}")),
        }
    }

    /// The roll-out it concerns, if any.
    pub fn rollout(&self) -> Option<&str> {
        match self {
            Source::RolloutFailure { rollout, .. } | Source::DeadlineAtRisk { rollout } => Some(rollout),
            Source::Manual | Source::CredentialFailure { .. } | Source::Drift | Source::Health => None,
        }
    }
}

/// Within this of the tile's GA deadline an incident is at least SEV2.
pub const SEV2_WITHIN: SignedDuration = SignedDuration::from_hours(48);

/// Within this of the tile's GA deadline an incident is SEV1.
pub const SEV1_WITHIN: SignedDuration = SignedDuration::from_hours(12);

/// The severity the GA deadline's proximity asks for: SEV1 within
/// [`SEV1_WITHIN`] of it, SEV2 within [`SEV2_WITHIN`], else none (also
/// none once the deadline has passed: the launch is over).
pub fn deadline_severity(remaining: SignedDuration) -> Option<Severity> {
    if remaining <= SignedDuration::ZERO {
        None
    } else if remaining <= SEV1_WITHIN {
        Some(Severity::Sev1)
    } else if remaining <= SEV2_WITHIN {
        Some(Severity::Sev2)
    } else {
        None
    }
}
