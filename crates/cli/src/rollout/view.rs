//! JSON/YAML views of plans and roll-outs (`-o json|yaml`): plain serde
//! structs built from the proto messages, times in RFC 3339, durations in
//! seconds.

use serde::Serialize;
use tilewave_proto::rollout::v1::{Plan, Rollout};

use super::render::{live_count, phase, state_name, step_name, summary};
use crate::names::format_time;

/// A wave of a plan.
#[derive(Debug, Serialize)]
pub struct WaveView {
    pub number: i32,
    pub regions: Vec<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub bake_seconds: Option<i64>,
    pub hold_after: bool,
}

/// A problem of a plan.
#[derive(Debug, Serialize)]
pub struct ProblemView {
    pub message: String,
    pub suggestions: Vec<String>,
}

/// A plan.
#[derive(Debug, Serialize)]
pub struct PlanView {
    pub feasible: bool,
    pub summary: Option<String>,
    pub planned_start: Option<String>,
    pub planned_end: Option<String>,
    pub deadline: Option<String>,
    pub slack_seconds: Option<i64>,
    pub canary_wave: bool,
    pub waves: Vec<WaveView>,
    pub problems: Vec<ProblemView>,
}

impl From<&Plan> for PlanView {
    fn from(p: &Plan) -> Self {
        Self {
            feasible: p.feasible,
            summary: summary(p),
            planned_start: format_time(p.planned_start.as_ref()),
            planned_end: format_time(p.planned_end.as_ref()),
            deadline: format_time(p.deadline.as_ref()),
            slack_seconds: p.slack.as_ref().map(|d| d.seconds),
            canary_wave: p.canary_wave,
            waves: p
                .waves
                .iter()
                .map(|w| WaveView {
                    number: w.number,
                    regions: w.regions.clone(),
                    start: format_time(w.start.as_ref()),
                    end: format_time(w.end.as_ref()),
                    bake_seconds: w.bake.as_ref().map(|d| d.seconds),
                    hold_after: w.hold_after,
                })
                .collect(),
            problems: p
                .problems
                .iter()
                .map(|x| ProblemView {
                    message: x.message.clone(),
                    suggestions: x.suggestions.iter().map(|s| s.message.clone()).collect(),
                })
                .collect(),
        }
    }
}

/// One region of a roll-out.
#[derive(Debug, Serialize)]
pub struct StepView {
    pub region: String,
    pub wave: i32,
    pub state: String,
    pub attempts: i32,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub last_error: String,
}

/// A roll-out.
#[derive(Debug, Serialize)]
pub struct RolloutView {
    pub id: String,
    pub tile_id: String,
    pub revision: i64,
    pub state: String,
    pub phase: String,
    pub current_wave: i32,
    pub wave_count: i32,
    pub regions_total: i32,
    pub regions_verified: i32,
    pub regions_live: usize,
    pub eta: Option<String>,
    pub deadline: Option<String>,
    pub at_risk_by_seconds: Option<i64>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub paused_reason: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub created_by: String,
    pub trace_id: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepView>,
}

impl From<&Rollout> for RolloutView {
    fn from(r: &Rollout) -> Self {
        Self {
            id: r.id.clone(),
            tile_id: r.tile_id.clone(),
            revision: r.revision,
            state: state_name(r.state),
            phase: phase(r),
            current_wave: r.current_wave,
            wave_count: r.wave_count,
            regions_total: r.regions_total,
            regions_verified: r.regions_verified,
            regions_live: live_count(r),
            eta: format_time(r.eta.as_ref()),
            deadline: format_time(r.deadline.as_ref()),
            at_risk_by_seconds: r.at_risk_by.as_ref().map(|d| d.seconds),
            paused_reason: r.paused_reason.clone(),
            started_at: format_time(r.started_at.as_ref()),
            finished_at: format_time(r.finished_at.as_ref()),
            created_by: r.created_by.clone(),
            trace_id: r.trace_id.clone(),
            steps: r
                .steps
                .iter()
                .map(|s| StepView {
                    region: s.region.clone(),
                    wave: s.wave,
                    state: step_name(s.state),
                    attempts: s.attempts,
                    last_error: s.last_error.clone(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::render::tests::{sample_plan, sample_rollout};

    #[test]
    fn views_carry_the_essentials() {
        let v = serde_json::to_value(RolloutView::from(&sample_rollout())).unwrap();
        assert_eq!(v["state"], "RUNNING");
        assert_eq!(v["phase"], "wave 3 of 5 baking");
        assert_eq!(v["regions_live"], 21);
        assert_eq!(v["steps"][0]["state"], "verified");
        let v = serde_json::to_value(PlanView::from(&sample_plan())).unwrap();
        assert_eq!(v["waves"].as_array().unwrap().len(), 5);
        assert_eq!(v["feasible"], true);
    }
}
