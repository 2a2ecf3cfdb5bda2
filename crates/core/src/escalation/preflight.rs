//! The GA scheduler's on-call pre-flight: a launch roll-out starts only
//! when an incident of the worst severity raised during its window (from
//! its start to GA) would page someone: the escalation policy a SEV1 uses
//! ([`policy_for`]) reaches a person, a webhook or an on-call schedule
//! with somebody on call at every moment of the window
//! ([`policy_coverage`]).

use std::fmt;

use jiff::Timestamp;

use super::{Directory, Policy, Severity, policy_coverage, policy_for};

/// How many uncovered spans a refusal names.
const NAMED: usize = 3;

/// Why the launch window is not covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoverageGap {
    /// No policy a SEV1 would use.
    NoPolicy,
    /// The policy reaches nobody during these spans (start, end).
    Uncovered {
        /// The policy's name.
        policy: String,
        /// The uncovered spans, in order.
        spans: Vec<(Timestamp, Timestamp)>,
    },
}

impl fmt::Display for CoverageGap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoverageGap::NoPolicy => f.write_str(
                "no escalation policy would page anyone for an incident of this launch: set one (`tilewave policy set -f policy.yaml`, a \"default\" one or one for SEV1)",
            ),
            CoverageGap::Uncovered { policy, spans } => {
                let named: Vec<String> = spans
                    .iter()
                    .take(NAMED)
                    .map(|(s, e)| format!("{s} to {e}"))
                    .collect();
                let more = spans.len().saturating_sub(NAMED);
                write!(
                    f,
                    "escalation policy {policy:?} reaches nobody during {} span(s) of the launch window ({}{}): fill the on-call schedule (`tilewave oncall schedule set -f ...`) or add a person or webhook to the policy",
                    spans.len(),
                    named.join(", "),
                    if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    }
                )
            }
        }
    }
}

/// Whether an incident during `[from, to)` would page someone.
pub fn launch_coverage(
    policies: &[Policy],
    dir: &Directory,
    from: Timestamp,
    to: Timestamp,
) -> Result<(), CoverageGap> {
    let policy = policy_for(policies, Severity::Sev1).ok_or(CoverageGap::NoPolicy)?;
    let gaps = policy_coverage(policy, dir, from, to);
    if gaps.is_empty() {
        Ok(())
    } else {
        Err(CoverageGap::Uncovered {
            policy: policy.name.clone(),
            spans: gaps.iter().map(|g| (g.start, g.end)).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;
    use jiff::civil::date;

    use super::*;
    use crate::escalation::schedule::ShiftLength;
    use crate::escalation::{Layer, Level, Rotation, Schedule, Target, TargetKind};

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn policy(name: &str, target: Target) -> Policy {
        Policy {
            name: name.into(),
            severities: vec![],
            levels: vec![Level {
                targets: vec![target],
                delay: SignedDuration::from_mins(5),
            }],
            repeat: 0,
            pause_rollout_after: None,
            speedups: vec![],
        }
    }

    fn target(kind: TargetKind, name: &str, url: Option<&str>) -> Target {
        Target {
            kind,
            name: name.into(),
            url: url.map(str::to_owned),
        }
    }

    /// A schedule whose only layer is active on weekdays 09:00-17:00 UTC.
    fn office_schedule() -> Schedule {
        Schedule {
            name: "office".into(),
            layers: vec![Layer {
                name: "primary".into(),
                level: 1,
                rotation: Rotation {
                    people: vec!["ada".into()],
                    shift_length: ShiftLength::Days(7),
                    handoff: jiff::civil::time(9, 0, 0, 0),
                    time_zone: "UTC".into(),
                    start: date(2026, 11, 30),
                },
                active: Some(crate::escalation::WeeklyWindow::office_hours()),
            }],
            overrides: vec![],
        }
    }

    #[test]
    fn the_launch_window_table() {
        let (from, to) = (at("2026-12-07T17:00:00Z"), at("2026-12-14T17:00:00Z"));
        let mut dir = Directory::default();
        dir.schedules.insert("office".into(), office_schedule());
        let webhook = policy(
            "default",
            target(TargetKind::Webhook, "ops", Some("http://127.0.0.1:1/ops")),
        );
        let schedule = policy("default", target(TargetKind::Schedule, "office", None));
        let unknown = policy("default", target(TargetKind::Schedule, "nobody", None));
        let other = Policy {
            severities: vec![Severity::Sev4],
            ..policy(
                "low",
                target(TargetKind::Webhook, "ops", Some("http://127.0.0.1:1/ops")),
            )
        };
        let cases: Vec<(&str, Vec<Policy>, Option<&str>)> = vec![
            ("no policy", vec![], Some("no escalation policy")),
            (
                "only a SEV4 policy",
                vec![other.clone()],
                Some("no escalation policy"),
            ),
            ("a webhook always reaches someone", vec![webhook], None),
            (
                "office hours leave nights and the weekend",
                vec![schedule],
                Some("\"default\" reaches nobody during"),
            ),
            (
                "an unknown schedule reaches nobody",
                vec![unknown],
                Some("1 span(s)"),
            ),
        ];
        for (name, policies, want) in cases {
            match (launch_coverage(&policies, &dir, from, to), want) {
                (Ok(()), None) => {}
                (Err(e), Some(w)) => assert!(e.to_string().contains(w), "{name}: {e}"),
                (got, w) => panic!("{name}: wanted {w:?}, got {got:?}"),
            }
        }
        let e = launch_coverage(
            &[policy("default", target(TargetKind::Schedule, "office", None))],
            &dir,
            from,
            to,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("2026-12-07T17:00:00Z to 2026-12-08T09:00:00Z"), "{e}");
        assert!(e.contains("more"), "{e}");
    }
}
