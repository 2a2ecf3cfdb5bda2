//! What the service does next for a rotation ([`decide`]) and what an
//! outcome of it does to the rotation ([`apply`]).

use std::fmt;

use jiff::{SignedDuration, Timestamp};

use super::command::{Refusal, refused};
use super::{Effect, RegionStep, Rotation, State, Transition};
use crate::quote::quoted;

/// The next thing to do for a rotation. Carrying it out ends in one or more
/// [`Outcome`]s fed to [`apply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Install the pending version in these regions (of the current wave):
    /// first record [`Outcome::IntentRecorded`] with [`Intent::Install`]
    /// for them, then call their agents. Regions already INSTALLING (an
    /// intent recorded, the answer lost) come first: they are re-issued.
    Install {
        /// The regions, in wave order.
        regions: Vec<String>,
    },
    /// Verify the pending version in these regions: record
    /// [`Intent::Verify`] for them, then have their agents call the
    /// partner's test-connection endpoint with it. VERIFYING regions are
    /// re-issued first.
    Verify {
        /// The regions, in wave order.
        regions: Vec<String>,
    },
    /// Nothing to do before this domain time (the bake after a wave, or the
    /// grace period of the old credential).
    WaitUntil(Timestamp),
    /// Nothing to do until the partner confirms they removed the old
    /// credential ([`super::Command::ConfirmOldRetired`]; the policy has no
    /// grace period).
    AwaitConfirmation,
    /// Every region verified: make the pending version CURRENT everywhere
    /// (the current one PREVIOUS), then [`Outcome::Promoted`]. Repeating it
    /// is harmless on the agents.
    Promote,
    /// Tell the partner they may remove the old credential, then
    /// [`Outcome::PartnerNotified`].
    NotifyPartner,
    /// Drop PREVIOUS everywhere, then [`Outcome::Retired`].
    Retire,
    /// Failed or cancelled: remove the pending version from these regions,
    /// then [`Outcome::Withdrawn`].
    Withdraw {
        /// The regions, in wave order.
        regions: Vec<String>,
    },
    /// The rotation is over: nothing to do.
    Done,
    /// The stored rotation breaks an invariant (e.g. promoting while a
    /// region is not verified): nothing is done; a person must look.
    Inconsistent(String),
}

/// What a recorded intent is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Intent {
    /// An install: PENDING (or INSTALLING) becomes INSTALLING.
    Install,
    /// A verification: INSTALLED (or VERIFYING) becomes VERIFYING.
    Verify,
}

/// What happened when the service carried out a [`Decision`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Recorded before calling the agents (write-ahead).
    IntentRecorded {
        /// The regions.
        regions: Vec<String>,
        /// Install or verify.
        intent: Intent,
    },
    /// The agent holds the pending version.
    Installed {
        /// The region.
        region: String,
    },
    /// The agent could not install it.
    InstallFailed {
        /// The region.
        region: String,
        /// The agent's error.
        error: String,
    },
    /// The agent called the partner with the pending version successfully.
    Verified {
        /// The region.
        region: String,
    },
    /// The partner refused the pending version from this region, or the
    /// call failed.
    VerifyFailed {
        /// The region.
        region: String,
        /// The error.
        error: String,
    },
    /// The pending version is CURRENT everywhere.
    Promoted,
    /// The partner was told they may remove the old credential.
    PartnerNotified,
    /// PREVIOUS is dropped everywhere.
    Retired,
    /// The pending version is removed from every region it reached.
    Withdrawn,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::IntentRecorded { regions, intent } => write!(
                f,
                "the {} intent for {} regions",
                match intent {
                    Intent::Install => "install",
                    Intent::Verify => "verify",
                },
                regions.len()
            ),
            Outcome::Installed { region } => write!(f, "installed in {}", quoted(region)),
            Outcome::InstallFailed { region, .. } => write!(f, "install failed in {}", quoted(region)),
            Outcome::Verified { region } => write!(f, "verified in {}", quoted(region)),
            Outcome::VerifyFailed { region, .. } => write!(f, "verification failed in {}", quoted(region)),
            Outcome::Promoted => f.write_str("promoted"),
            Outcome::PartnerNotified => f.write_str("partner notified"),
            Outcome::Retired => f.write_str("retired"),
            Outcome::Withdrawn => f.write_str("withdrawn"),
        }
    }
}

/// The regions of `wave` in `step`, in wave order.
fn in_step<'a>(r: &'a Rotation, wave: &'a [String], step: &RegionStep) -> Vec<String> {
    wave.iter()
        .filter(|name| r.regions.get(*name).is_some_and(|p| &p.step == step))
        .cloned()
        .collect()
}

/// The regions of `wave` in `a` or `b`, in wave order (so that the decision
/// is the same before and after its intent is recorded).
fn in_wave_order(wave: &[String], a: &[String], b: &[String]) -> Vec<String> {
    wave.iter()
        .filter(|n| a.contains(n) || b.contains(n))
        .cloned()
        .collect()
}

/// What the service does next for `r` at `now`. The same rotation and
/// `now` always give the same decision.
///
/// There is no "fail" decision: the outcome that uses a region's last
/// attempt fails the rotation in the same [`apply`] (so no stored rotation
/// is out of attempts yet still distributing; one that is, is
/// [`Decision::Inconsistent`]).
///
/// While distributing wave `w`: recorded installs are re-issued together
/// with fresh ones up to the concurrency (in wave order) (regions INSTALLING or VERIFYING
/// count against it); fresh installs wait for the bake after the wave
/// before; once no install is left to issue, recorded verifications are
/// re-issued together with fresh ones up to the concurrency. Promotion is
/// decided only when every region verified.
pub fn decide(r: &Rotation, now: Timestamp) -> Decision {
    match &r.state {
        State::Distributing { wave } => distributing(r, *wave, now),
        State::Promoting => {
            if r.all_verified() {
                Decision::Promote
            } else {
                Decision::Inconsistent(format!(
                    "rotation {} is PROMOTING but not every region verified ({})",
                    r.id,
                    r.progress()
                ))
            }
        }
        State::Promoted {
            notified, confirmed, ..
        } => {
            if *confirmed && r.policy.retirement.on_confirmation() {
                return Decision::Retire;
            }
            if !notified {
                return Decision::NotifyPartner;
            }
            match r.grace_ends_at() {
                Some(t) if t <= now => Decision::Retire,
                Some(t) => Decision::WaitUntil(t),
                None => Decision::AwaitConfirmation,
            }
        }
        State::Completed => Decision::Done,
        State::Failed { .. } | State::Cancelled { .. } => {
            let regions = r.touched_regions();
            if r.withdrawn || regions.is_empty() {
                Decision::Done
            } else {
                Decision::Withdraw { regions }
            }
        }
    }
}

fn distributing(r: &Rotation, w: usize, now: Timestamp) -> Decision {
    let Some(wave) = r.waves.get(w) else {
        return Decision::Inconsistent(format!(
            "rotation {} is distributing wave {} of {}",
            r.id,
            w + 1,
            r.waves.len()
        ));
    };
    if let Some(missing) = wave.iter().find(|name| !r.regions.contains_key(*name)) {
        return Decision::Inconsistent(format!(
            "rotation {} has no progress for region {}",
            r.id,
            quoted(missing)
        ));
    }
    if let Some((name, _)) = wave
        .iter()
        .filter_map(|n| r.regions.get(n).map(|p| (n, p)))
        .find(|(_, p)| matches!(p.step, RegionStep::Failed { .. }))
    {
        return Decision::Inconsistent(format!(
            "region {} of rotation {} is out of attempts but the rotation is not FAILED",
            quoted(name),
            r.id
        ));
    }
    let cap = r.concurrency.max(1);
    let installing = in_step(r, wave, &RegionStep::Installing);
    let verifying = in_step(r, wave, &RegionStep::Verifying);
    let pending = in_step(r, wave, &RegionStep::Pending);
    let installed = in_step(r, wave, &RegionStep::Installed);
    let room = cap.saturating_sub(installing.len() + verifying.len());
    let ready = r.wave_ready_at.is_none_or(|t| t <= now);
    // A region that failed under budget waits for its retry time.
    let retry_at = |name: &String| r.regions.get(name).and_then(|p| p.retry_at).filter(|t| *t > now);
    let due = |names: &[String]| -> Vec<String> {
        names.iter().filter(|n| retry_at(n).is_none()).cloned().collect()
    };

    let fresh: Vec<String> = if ready {
        due(&pending).into_iter().take(room).collect()
    } else {
        Vec::new()
    };
    if !installing.is_empty() || !fresh.is_empty() {
        return Decision::Install {
            regions: in_wave_order(wave, &installing, &fresh),
        };
    }
    if let (false, false, Some(t)) = (pending.is_empty(), ready, r.wave_ready_at) {
        return Decision::WaitUntil(t);
    }
    let fresh: Vec<String> = due(&installed).into_iter().take(room).collect();
    if !verifying.is_empty() || (pending.is_empty() && !fresh.is_empty()) {
        let fresh = if pending.is_empty() { fresh } else { Vec::new() };
        return Decision::Verify {
            regions: in_wave_order(wave, &verifying, &fresh),
        };
    }
    if let Some(t) = pending.iter().chain(&installed).filter_map(retry_at).min() {
        return Decision::WaitUntil(t);
    }
    if pending.is_empty() && installed.is_empty() {
        return Decision::Inconsistent(format!(
            "wave {} of rotation {} is verified but the rotation did not move on",
            w + 1,
            r.id
        ));
    }
    // Pending regions and no room: only possible with in-flight regions,
    // which are re-issued above.
    Decision::Inconsistent(format!(
        "rotation {} has nothing to issue in wave {} ({})",
        r.id,
        w + 1,
        r.progress()
    ))
}

/// Applies `outcome` to `r` at `now`: the rotation as it becomes, the
/// effects to carry out, the audit summary; or why the outcome does not
/// answer anything the rotation waits for (a stale or repeated answer: the
/// service logs it and changes nothing).
///
/// A failed install or verification uses one of the region's attempts:
/// under budget the region goes back (to PENDING after a failed install, to
/// INSTALLED after a failed verification); out of budget the rotation
/// fails ([`Effect::Withdraw`] of every region an install may have reached,
/// [`Effect::CredentialFailedEvent`]; never a promotion; the version stays
/// PENDING so that a new rotation may use it again).
pub fn apply(r: &Rotation, outcome: Outcome, now: Timestamp) -> Result<Transition, super::Refused> {
    use Outcome as O;
    let refuse = |reason: Refusal| Err(refused(r, "apply an outcome to", reason));
    let unexpected = || {
        Err(refused(
            r,
            "apply an outcome to",
            Refusal::Unexpected {
                outcome: outcome.to_string(),
            },
        ))
    };
    let mut n = r.clone();
    let mut effects = Vec::new();

    let summary = match (&r.state, &outcome) {
        // ---- Distributing: intents and the agents' answers.
        (State::Distributing { wave }, O::IntentRecorded { regions, intent }) => {
            let names = r.waves.get(*wave).cloned().unwrap_or_default();
            for region in regions {
                if !names.contains(region) {
                    return refuse(if r.regions.contains_key(region) {
                        Refusal::NotInWave {
                            region: region.clone(),
                            wave: wave + 1,
                        }
                    } else {
                        Refusal::NoSuchRegion {
                            region: region.clone(),
                        }
                    });
                }
                let Some(p) = n.regions.get_mut(region) else {
                    return refuse(Refusal::NoSuchRegion {
                        region: region.clone(),
                    });
                };
                if let (super::Intent::Install, RegionStep::Pending, Some(until)) =
                    (intent, &p.step, r.wave_ready_at.filter(|t| *t > now))
                {
                    return refuse(Refusal::Baking {
                        wave: wave + 1,
                        until,
                    });
                }
                p.retry_at = None;
                p.step = match (intent, &p.step) {
                    (super::Intent::Install, RegionStep::Pending | RegionStep::Installing) => {
                        RegionStep::Installing
                    }
                    (super::Intent::Verify, RegionStep::Installed | RegionStep::Verifying) => {
                        RegionStep::Verifying
                    }
                    (super::Intent::Install | super::Intent::Verify, step) => {
                        return refuse(Refusal::WrongStep {
                            region: region.clone(),
                            step: step.name(),
                            outcome: outcome.to_string(),
                        });
                    }
                };
            }
            format!("{} recorded: {}", outcome, regions.join(", "))
        }
        (State::Distributing { .. }, O::Installed { region }) => {
            step(&mut n, region, &RegionStep::Installing, &outcome)?;
            set(&mut n, region, RegionStep::Installed);
            format!("v{} installed in {region}", r.to)
        }
        (State::Distributing { .. }, O::Verified { region }) => {
            step(&mut n, region, &RegionStep::Verifying, &outcome)?;
            if let Some(p) = n.regions.get_mut(region) {
                p.step = RegionStep::Verified;
                p.verified_at = Some(now);
            }
            let mut summary = format!("v{} verified in {region}", r.to);
            advance(&mut n, now, &mut summary);
            summary
        }
        (State::Distributing { .. }, O::InstallFailed { region, error }) => {
            step(&mut n, region, &RegionStep::Installing, &outcome)?;
            failure(
                &mut n,
                region,
                "install",
                error,
                RegionStep::Pending,
                now,
                &mut effects,
            )
        }
        (State::Distributing { .. }, O::VerifyFailed { region, error }) => {
            step(&mut n, region, &RegionStep::Verifying, &outcome)?;
            failure(
                &mut n,
                region,
                "verification",
                error,
                RegionStep::Installed,
                now,
                &mut effects,
            )
        }
        (State::Distributing { .. }, O::Promoted | O::PartnerNotified | O::Retired | O::Withdrawn) => {
            return unexpected();
        }

        // ---- Promoting: only the promotion answers it.
        (State::Promoting, O::Promoted) => {
            if !r.all_verified() {
                return unexpected();
            }
            effects.push(Effect::PromoteVersion(r.to));
            match r.from {
                Some(old) => {
                    n.state = State::Promoted {
                        at: now,
                        notified: false,
                        confirmed: false,
                    };
                    format!("v{} promoted to CURRENT everywhere; v{old} is PREVIOUS", r.to)
                }
                None => {
                    n.state = State::Completed;
                    n.finished_at = Some(now);
                    format!(
                        "v{} promoted to CURRENT everywhere; there was no old credential: completed",
                        r.to
                    )
                }
            }
        }
        (
            State::Promoting,
            O::IntentRecorded { .. }
            | O::Installed { .. }
            | O::InstallFailed { .. }
            | O::Verified { .. }
            | O::VerifyFailed { .. }
            | O::PartnerNotified
            | O::Retired
            | O::Withdrawn,
        ) => return unexpected(),

        // ---- Promoted: the notification, then the retirement when due.
        (
            State::Promoted {
                at,
                notified: false,
                confirmed,
            },
            O::PartnerNotified,
        ) => {
            n.state = State::Promoted {
                at: *at,
                notified: true,
                confirmed: *confirmed,
            };
            format!(
                "the partner was told they may remove the old credential of {}",
                r.tile
            )
        }
        (State::Promoted { confirmed, .. }, O::Retired) => {
            let by_confirmation = *confirmed && r.policy.retirement.on_confirmation();
            let by_grace = r.grace_ends_at().is_some_and(|t| t <= now);
            if !by_confirmation && !by_grace {
                return refuse(Refusal::RetirementNotDue {
                    until: r.grace_ends_at(),
                });
            }
            if let Some(old) = r.from {
                effects.push(Effect::RetireVersion(old));
            }
            n.state = State::Completed;
            n.finished_at = Some(now);
            format!(
                "the old credential{} is retired ({}): completed",
                r.from.map(|v| format!(" v{v}")).unwrap_or_default(),
                if by_confirmation {
                    "the partner confirmed removing it"
                } else {
                    "its grace period ended"
                }
            )
        }
        (State::Promoted { notified: true, .. }, O::PartnerNotified)
        | (
            State::Promoted { .. },
            O::IntentRecorded { .. }
            | O::Installed { .. }
            | O::InstallFailed { .. }
            | O::Verified { .. }
            | O::VerifyFailed { .. }
            | O::Promoted
            | O::Withdrawn,
        ) => return unexpected(),

        // ---- Failed or cancelled: only the withdrawal.
        (State::Failed { .. } | State::Cancelled { .. }, O::Withdrawn) => {
            if r.withdrawn {
                return unexpected();
            }
            n.withdrawn = true;
            format!("v{} withdrawn from every region it reached", r.to)
        }
        (
            State::Failed { .. } | State::Cancelled { .. },
            O::IntentRecorded { .. }
            | O::Installed { .. }
            | O::InstallFailed { .. }
            | O::Verified { .. }
            | O::VerifyFailed { .. }
            | O::Promoted
            | O::PartnerNotified
            | O::Retired,
        ) => return unexpected(),

        // ---- Completed: nothing.
        (
            State::Completed,
            O::IntentRecorded { .. }
            | O::Installed { .. }
            | O::InstallFailed { .. }
            | O::Verified { .. }
            | O::VerifyFailed { .. }
            | O::Promoted
            | O::PartnerNotified
            | O::Retired
            | O::Withdrawn,
        ) => return unexpected(),
    };
    Ok(Transition {
        rotation: n,
        effects,
        summary,
    })
}

/// Checks that `region` is in the step `outcome` answers.
fn step(r: &mut Rotation, region: &str, want: &RegionStep, outcome: &Outcome) -> Result<(), super::Refused> {
    match r.regions.get(region) {
        None => Err(refused(
            r,
            "apply an outcome to",
            Refusal::NoSuchRegion {
                region: region.to_owned(),
            },
        )),
        Some(p) if &p.step != want => Err(refused(
            r,
            "apply an outcome to",
            Refusal::WrongStep {
                region: region.to_owned(),
                step: p.step.name(),
                outcome: outcome.to_string(),
            },
        )),
        Some(_) => Ok(()),
    }
}

fn set(r: &mut Rotation, region: &str, step: RegionStep) {
    if let Some(p) = r.regions.get_mut(region) {
        p.step = step;
    }
}

/// After a verification: when the current wave is verified, the next wave
/// starts after the bake, or the rotation promotes after the last.
fn advance(r: &mut Rotation, now: Timestamp, summary: &mut String) {
    let State::Distributing { wave } = r.state else {
        return;
    };
    let done = r.waves.get(wave).is_some_and(|names| {
        names
            .iter()
            .all(|n| r.regions.get(n).is_some_and(|p| p.step == RegionStep::Verified))
    });
    if !done {
        return;
    }
    if wave + 1 < r.waves.len() {
        r.state = State::Distributing { wave: wave + 1 };
        let ready = super::later(now, r.bake());
        r.wave_ready_at = Some(ready);
        summary.push_str(&format!(
            "; wave {} verified, wave {} starts at {ready}",
            wave + 1,
            wave + 2
        ));
    } else if r.all_verified() {
        r.state = State::Promoting;
        summary.push_str("; every region verified: promoting");
    }
}

/// A failed install or verification of `region`: back to `retry` under
/// budget, else the rotation fails.
fn failure(
    r: &mut Rotation,
    region: &str,
    what: &str,
    error: &str,
    retry: RegionStep,
    now: Timestamp,
    effects: &mut Vec<Effect>,
) -> String {
    let max = r.max_attempts();
    let policy = r.policy;
    let Some(p) = r.regions.get_mut(region) else {
        return String::new();
    };
    p.failures = p.failures.saturating_add(1);
    p.last_error = error.to_owned();
    let attempts = p.failures;
    if attempts < max {
        p.step = retry;
        let delay = policy.retry_after(attempts);
        p.retry_at = (delay > SignedDuration::ZERO).then(|| now.saturating_add(delay).unwrap_or(now));
        return format!(
            "{what} of v{} failed in {region} (attempt {attempts} of {max}, retrying): {}",
            r.to,
            quoted(error)
        );
    }
    p.step = RegionStep::Failed {
        attempts,
        last_error: error.to_owned(),
    };
    let reason = format!(
        "{what} failed in {region} after {attempts} of {max} attempts; last error: {}",
        quoted(error)
    );
    r.state = State::Failed {
        region: region.to_owned(),
        reason: reason.clone(),
    };
    r.finished_at = Some(now);
    let touched = r.touched_regions();
    let current = r.from.map_or_else(
        || "no credential was current".to_owned(),
        |v| format!("v{v} stays CURRENT everywhere"),
    );
    effects.push(Effect::CredentialFailedEvent {
        region: region.to_owned(),
        message: format!(
            "credential rotation {} of {} failed: {reason}; {current} and v{} is withdrawn from {} regions; \
             v{} stays PENDING: fix the cause and rotate again with `tilewave creds rotate {}` \
             (or submit a new credential first if the partner's was wrong)",
            r.id,
            r.tile,
            r.to,
            touched.len(),
            r.to,
            r.tile
        ),
    });
    if touched.is_empty() {
        r.withdrawn = true;
    } else {
        effects.push(Effect::Withdraw { regions: touched });
    }
    format!("rotation failed: {reason}")
}
