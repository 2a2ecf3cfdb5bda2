//! Standard operating procedures: per incident kind, an ordered checklist
//! of steps, each owned by the partner or the platform. Incidents copy
//! their SOP's steps when they open and track them
//! ([`super::StepProgress`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::kinds::{Side, SourceKind};
use super::problems::Problems;
use crate::quote::quoted;

/// One step of an SOP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SopStep {
    /// Its number (from 1, increasing within the SOP).
    pub number: u32,
    /// What to do, in one line.
    pub title: String,
    /// How, in Markdown.
    #[serde(default)]
    pub instructions: String,
    /// Who does it.
    pub side: Side,
    /// Completing it needs a note (what was found).
    #[serde(default)]
    pub requires_note: bool,
}

/// A standard operating procedure ("integration-health").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sop {
    /// Its id, referenced by incidents and shown on pages.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Incidents of these kinds follow it.
    #[serde(default)]
    pub applies_to: Vec<SourceKind>,
    /// The steps, in order.
    pub steps: Vec<SopStep>,
}

impl Sop {
    /// The step numbered `number`.
    pub fn step(&self, number: u32) -> Option<&SopStep> {
        self.steps.iter().find(|s| s.number == number)
    }
}

/// The SOP incidents of `kind` follow: the first in `sops` that applies to
/// it.
pub fn sop_for(sops: &[Sop], kind: SourceKind) -> Option<&Sop> {
    sops.iter().find(|s| s.applies_to.contains(&kind))
}

fn step(number: u32, side: Side, requires_note: bool, title: &str, instructions: &str) -> SopStep {
    SopStep {
        number,
        title: title.to_string(),
        instructions: instructions.to_string(),
        side,
        requires_note,
    }
}

/// The SOPs tilewave ships: `integration-health` (roll-out failures,
/// health, drift), `credential-failure` and `deadline-at-risk`. They are
/// tilewave's own (the real SOP is not public).
pub fn default_sops() -> Vec<Sop> {
    use Side::{Partner, Platform};
    vec![
        Sop {
            id: "integration-health".into(),
            title: "A partner integration is unhealthy".into(),
            applies_to: vec![SourceKind::RolloutFailure, SourceKind::Health, SourceKind::Drift],
            steps: vec![
                step(
                    1,
                    Platform,
                    true,
                    "Confirm the failure and its scope",
                    "Run `tilewave incident show` and `tilewave rollout status`; note which regions fail and since when.",
                ),
                step(
                    2,
                    Platform,
                    false,
                    "Contain it",
                    "Pause the roll-out or remove the tile from the failing regions with `tilewave incident mitigate`.",
                ),
                step(
                    3,
                    Partner,
                    true,
                    "The partner diagnoses their endpoint",
                    "Ask the partner's on-call to check their /connect and test-connection endpoints; note their finding.",
                ),
                step(
                    4,
                    Partner,
                    false,
                    "The partner deploys a fix",
                    "Record the partner's fix and its time.",
                ),
                step(
                    5,
                    Platform,
                    true,
                    "Verify and restore",
                    "Re-run the health gate in the affected regions, resume the roll-out or restore the tile; note the result.",
                ),
            ],
        },
        Sop {
            id: "credential-failure".into(),
            title: "A partner credential does not work".into(),
            applies_to: vec![SourceKind::CredentialFailure],
            steps: vec![
                step(
                    1,
                    Platform,
                    true,
                    "Find the failing regions and version",
                    "Run `tilewave creds status`; note which version fails where.",
                ),
                step(
                    2,
                    Partner,
                    true,
                    "The partner checks the credential",
                    "Ask the partner whether the credential was revoked or mistyped; note the answer.",
                ),
                step(
                    3,
                    Platform,
                    false,
                    "Rotate or roll back",
                    "Start an emergency rotation (`tilewave incident mitigate --rotate-credential`) or keep the current credential.",
                ),
                step(
                    4,
                    Platform,
                    true,
                    "Verify test-connection everywhere",
                    "Confirm every region passes test-connection; note the result.",
                ),
            ],
        },
        Sop {
            id: "deadline-at-risk".into(),
            title: "A roll-out may miss its GA deadline".into(),
            applies_to: vec![SourceKind::DeadlineAtRisk],
            steps: vec![
                step(
                    1,
                    Platform,
                    true,
                    "Find what blocks the roll-out",
                    "Run `tilewave rollout status`; note the blocking wave, gate or sign-off.",
                ),
                step(
                    2,
                    Platform,
                    false,
                    "Unblock or re-plan",
                    "Fix the blocker, or re-plan the waves so the roll-out completes a day before GA.",
                ),
                step(
                    3,
                    Partner,
                    false,
                    "Tell the partner",
                    "Tell the partner the risk and what they must do, if anything.",
                ),
                step(
                    4,
                    Platform,
                    true,
                    "Decide on the GA date",
                    "Keep the date or move the launch with product; note the decision.",
                ),
            ],
        },
    ]
}

/// Checks an SOP and returns every problem with its path: no id or title,
/// no steps, a step numbered 0, duplicate or decreasing numbers, a step
/// without a title.
pub fn validate_sop(sop: &Sop) -> Result<(), Problems> {
    let mut p = Problems::default();
    check_sop(&mut p, "", sop);
    p.into_result(())
}

/// Checks a set of SOPs: each as [`validate_sop`], with paths
/// `sops[i]...`, and no kind claimed by two of them, and no id used
/// twice.
pub fn validate_sops(sops: &[Sop]) -> Result<(), Problems> {
    let mut p = Problems::default();
    let mut ids = BTreeMap::new();
    let mut kinds = BTreeMap::new();
    for (i, sop) in sops.iter().enumerate() {
        let path = format!("sops[{i}].");
        check_sop(&mut p, &path, sop);
        if let Some(first) = ids.insert(sop.id.as_str(), i) {
            p.push(
                format!("{path}id"),
                format!(
                    "{} is also the id of sops[{first}]; ids must be unique",
                    quoted(&sop.id)
                ),
            );
        }
        for (j, kind) in sop.applies_to.iter().enumerate() {
            if let Some(first) = kinds.insert(*kind, i) {
                p.push(
                    format!("{path}applies_to[{j}]"),
                    format!("{kind} incidents already follow sops[{first}]; a kind follows one SOP"),
                );
            }
        }
    }
    p.into_result(())
}

fn check_sop(p: &mut Problems, prefix: &str, sop: &Sop) {
    if sop.id.trim().is_empty() {
        p.push(format!("{prefix}id"), "an SOP needs an id");
    }
    if sop.title.trim().is_empty() {
        p.push(format!("{prefix}title"), "an SOP needs a title");
    }
    if sop.steps.is_empty() {
        p.push(format!("{prefix}steps"), "an SOP needs at least one step");
    }
    let mut last = 0;
    let mut seen = BTreeMap::new();
    for (i, s) in sop.steps.iter().enumerate() {
        let path = format!("{prefix}steps[{i}]");
        if s.number == 0 {
            p.push(format!("{path}.number"), "steps are numbered from 1");
        } else if let Some(first) = seen.insert(s.number, i) {
            p.push(
                format!("{path}.number"),
                format!("step {} is also steps[{first}]; numbers must be unique", s.number),
            );
        } else if s.number < last {
            p.push(
                format!("{path}.number"),
                format!(
                    "step {} comes after step {last}; list steps in increasing order",
                    s.number
                ),
            );
        }
        last = last.max(s.number);
        if s.title.trim().is_empty() {
            p.push(format!("{path}.title"), "a step needs a title");
        }
    }
}
