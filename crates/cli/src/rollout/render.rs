//! Text for people: a plan (the journey-1 summary line, the per-wave
//! timeline and a Gantt chart that fits 80 or 120 columns) and a roll-out's
//! progress (a bar per wave, "wave 3 of 5 baking", "21/70 regions live",
//! ETA, time to deadline, on plan or at risk, trace id). Pure functions of
//! the proto messages, so they are tested on constructed messages.

use jiff::{SignedDuration, Timestamp};
use tilewave_core::planner::gantt::Granularity;
use tilewave_core::planner::{self, DeadlineSource as CoreSource, RegionPlan, WavePlan};
use tilewave_proto::ShortName;
use tilewave_proto::rollout::v1::{
    DeadlineSource, Plan, PlanProblemKind, Rollout, RolloutState, RolloutStep, StepState, plan_suggestion,
};

use crate::names::{from_proto_duration, from_proto_time, human_duration, human_time, kebab_name};

/// The margin of a launch's deadline before GA when the plan does not let
/// it be derived.
const GA_MARGIN: SignedDuration = SignedDuration::from_hours(24);

/// The width to draw for: `--width`, else 120 when `$COLUMNS` says the
/// terminal is at least that wide, else 80.
pub fn width(flag: Option<usize>, columns: Option<&str>) -> usize {
    if let Some(w) = flag {
        return w.max(40);
    }
    match columns.and_then(|c| c.trim().parse::<usize>().ok()) {
        Some(c) if c >= 120 => 120,
        _ => 80,
    }
}

/// The proto plan as the planner's own type, for its summary line and its
/// Gantt chart; `None` when the plan has no timing (an infeasible plan that
/// could not be timed). A plan without a deadline gets its planned end as
/// deadline (the caller words the summary accordingly).
pub fn core_plan(p: &Plan) -> Option<planner::Plan> {
    let start = from_proto_time(p.planned_start.as_ref())?;
    let planned_end = from_proto_time(p.planned_end.as_ref())?;
    let deadline = from_proto_time(p.deadline.as_ref()).unwrap_or(planned_end);
    let ga = from_proto_time(p.ga_time.as_ref());
    let regions = p
        .regions
        .iter()
        .filter_map(|r| {
            Some(RegionPlan {
                region: r.region.clone(),
                wave: usize::try_from(r.wave).ok()?,
                apply_start: from_proto_time(r.apply_start.as_ref())?,
                apply_end: from_proto_time(r.apply_end.as_ref())?,
                bake_end: from_proto_time(r.bake_end.as_ref())?,
            })
        })
        .collect();
    let waves = p
        .waves
        .iter()
        .filter_map(|w| {
            Some(WavePlan {
                index: usize::try_from(w.number).ok()?,
                regions: w.regions.clone(),
                start: from_proto_time(w.start.as_ref())?,
                end: from_proto_time(w.end.as_ref())?,
                bake: w.bake.as_ref().map_or(SignedDuration::ZERO, from_proto_duration),
                hold_after: w.hold_after,
            })
        })
        .collect();
    let deadline_source = match DeadlineSource::try_from(p.deadline_source) {
        Ok(DeadlineSource::GaMargin) => {
            CoreSource::BeforeGa(ga.map_or(GA_MARGIN, |g| g.duration_since(deadline)))
        }
        _ => CoreSource::Given,
    };
    Some(planner::Plan {
        regions,
        waves,
        start,
        planned_end,
        deadline,
        deadline_source,
        ga,
        slack: p.slack.as_ref().map_or(SignedDuration::ZERO, from_proto_duration),
        canary_wave: p.canary_wave,
    })
}

/// The one-line summary of journey 1: regions, waves, canaries, bake,
/// planned end, deadline, slack.
pub fn summary(p: &Plan) -> Option<String> {
    let core = core_plan(p)?;
    let text = core.to_string();
    if p.deadline.is_some() {
        return Some(text);
    }
    let head = text.split("; deadline ").next().unwrap_or(&text);
    Some(format!("{head}; no deadline"))
}

/// `text` cut to `max` characters, with `…` when cut.
fn fit(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
    s.push('…');
    s
}

/// `Tue 1 Dec 17:05`.
fn short(t: Option<Timestamp>) -> String {
    t.map_or_else(|| "-".into(), |t| t.strftime("%a %-d %b %H:%M").to_string())
}

/// The per-wave timeline: one line per wave, no wider than `width`.
pub fn timeline(p: &Plan, width: usize) -> Vec<String> {
    let mut lines = vec![format!(
        "{:<6} {:>3}  {:<16} {:<16} {:<7} REGIONS",
        "WAVE", "N", "START", "VERIFIED BY", "BAKE"
    )];
    for w in &p.waves {
        let head = format!(
            "{:<6} {:>3}  {:<16} {:<16} {:<7} ",
            format!("{}{}", w.number, if w.hold_after { " H" } else { "" }),
            w.regions.len(),
            short(from_proto_time(w.start.as_ref())),
            short(from_proto_time(w.end.as_ref())),
            w.bake
                .as_ref()
                .map_or_else(|| "-".into(), |b| human_duration(from_proto_duration(b))),
        );
        let room = width.saturating_sub(head.chars().count());
        lines.push(format!("{head}{}", fit(&w.regions.join(", "), room)));
    }
    if p.waves.iter().any(|w| w.hold_after) {
        lines.push("H: waits for `tilewave rollout approve` after this wave (not timed)".into());
    }
    lines
}

/// Why a plan cannot be followed, and what would fit.
pub fn problems(p: &Plan) -> Vec<String> {
    let mut lines = Vec::new();
    for prob in &p.problems {
        let kind = PlanProblemKind::try_from(prob.kind).map_or_else(
            |_| format!("problem {}", prob.kind),
            |k| k.short_name().to_ascii_lowercase().replace('_', " "),
        );
        lines.push(format!("- {kind}: {}", prob.message));
        for s in &prob.suggestions {
            let flag = match &s.change {
                Some(plan_suggestion::Change::Bake(b)) => {
                    format!(" (--bake {})", compact(from_proto_duration(b)))
                }
                Some(plan_suggestion::Change::Concurrency(c)) => format!(" (--concurrency {c})"),
                Some(plan_suggestion::Change::GaTime(t)) => {
                    from_proto_time(Some(t)).map_or_else(String::new, |t| {
                        format!(
                            " (tilewave tile set-ga {} \"{}\")",
                            p.spec.as_ref().map_or("TILE", |s| s.tile_id.as_str()),
                            t.strftime("%Y-%m-%d %H:%M")
                        )
                    })
                }
                Some(plan_suggestion::Change::Exclude(list)) => {
                    format!(" (--exclude {})", list.regions.join(","))
                }
                None => String::new(),
            };
            lines.push(format!("    try: {}{flag}", s.message));
        }
    }
    lines
}

/// A duration as the command line takes it: `2h30m`.
pub fn compact(d: SignedDuration) -> String {
    let mins = d.as_mins().max(0);
    match (mins / 60, mins % 60) {
        (0, m) => format!("{m}m"),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h{m}m"),
    }
}

/// Everything `rollout plan` prints: summary, timeline, Gantt chart (per
/// wave, or per region with `per_region`), problems.
pub fn plan_text(p: &Plan, width: usize, per_region: bool) -> String {
    let mut out = String::new();
    match summary(p) {
        Some(s) => {
            out.push_str(&s);
            out.push_str("\n\n");
        }
        None => out.push_str("no timed plan\n\n"),
    }
    if !p.waves.is_empty() {
        for l in timeline(p, width) {
            out.push_str(&l);
            out.push('\n');
        }
        out.push('\n');
    }
    if let Some(core) = core_plan(p).filter(|c| !c.waves.is_empty()) {
        let g = if per_region {
            Granularity::PerRegion
        } else {
            Granularity::PerWave
        };
        out.push_str(&planner::gantt::render(&core, g, width));
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    if !p.feasible {
        out.push_str("\nnot feasible:\n");
        for l in problems(p) {
            out.push_str(&l);
            out.push('\n');
        }
    }
    out
}

/// How a roll-out state is printed: `RUNNING`.
pub fn state_name(state: i32) -> String {
    RolloutState::try_from(state).map_or_else(|_| format!("STATE_{state}"), |s| s.short_name().to_owned())
}

/// How a step state is printed: `baking`.
pub fn step_name(state: i32) -> String {
    StepState::try_from(state).map_or_else(|_| format!("state-{state}"), |s| kebab_name(&s))
}

/// Whether the roll-out has ended.
pub fn is_terminal(r: &Rollout) -> bool {
    matches!(
        RolloutState::try_from(r.state),
        Ok(RolloutState::Succeeded | RolloutState::Failed | RolloutState::Aborted | RolloutState::RolledBack)
    )
}

fn is(s: &RolloutStep, st: StepState) -> bool {
    s.state == st as i32
}

/// Regions where the revision is live: applied (baking) or verified.
pub fn live_count(r: &Rollout) -> usize {
    r.steps
        .iter()
        .filter(|s| is(s, StepState::Baking) || is(s, StepState::Verified))
        .count()
}

/// The phase: "wave 3 of 5 baking", "paused: ...", "succeeded".
pub fn phase(r: &Rollout) -> String {
    let state = RolloutState::try_from(r.state).unwrap_or(RolloutState::Unspecified);
    let wave = r.current_wave;
    let of = r.wave_count;
    let in_wave: Vec<&RolloutStep> = r.steps.iter().filter(|s| s.wave == wave).collect();
    let doing = if in_wave
        .iter()
        .any(|s| is(s, StepState::Applying) || is(s, StepState::Pending))
    {
        "applying"
    } else if in_wave.iter().any(|s| is(s, StepState::Baking)) {
        "baking"
    } else if in_wave.iter().any(|s| is(s, StepState::Failed)) {
        "failed"
    } else {
        "verified"
    };
    match state {
        RolloutState::Pending => {
            let at = r
                .spec
                .as_ref()
                .and_then(|s| from_proto_time(s.earliest_start.as_ref()))
                .or_else(|| {
                    r.plan
                        .as_ref()
                        .and_then(|p| from_proto_time(p.planned_start.as_ref()))
                });
            at.map_or_else(
                || "waiting for its earliest start".into(),
                |t| format!("waiting to start at {}", human_time(t)),
            )
        }
        RolloutState::Running if wave == 0 => "starting".into(),
        RolloutState::Running => format!("wave {wave} of {of} {doing}"),
        RolloutState::Paused if r.held_after_wave > 0 => format!(
            "held after wave {} of {of}: `tilewave rollout approve {} --wave {}` continues",
            r.held_after_wave, r.id, r.held_after_wave
        ),
        RolloutState::Paused => format!(
            "wave {wave} of {of} paused{}",
            if r.paused_reason.is_empty() {
                String::new()
            } else {
                format!(": {}", r.paused_reason)
            }
        ),
        RolloutState::Succeeded => "succeeded".into(),
        RolloutState::RollingBack => "rolling back".into(),
        other => state_name(other as i32).to_ascii_lowercase().replace('_', " "),
    }
}

/// The timing part: ETA, time to deadline, on plan or at risk.
pub fn timing(r: &Rollout, now: Option<Timestamp>) -> String {
    let now = now.or_else(|| {
        r.plan
            .as_ref()
            .and_then(|p| from_proto_time(p.computed_at.as_ref()))
    });
    let deadline = from_proto_time(r.deadline.as_ref());
    let mut parts = Vec::new();
    if is_terminal(r) {
        if let Some(f) = from_proto_time(r.finished_at.as_ref()) {
            parts.push(format!("finished {}", human_time(f)));
            if let Some(d) = deadline {
                let ahead = d.duration_since(f);
                parts.push(if ahead.is_negative() {
                    format!("{} after the deadline", human_duration(-ahead))
                } else {
                    format!("{} before the deadline", human_duration(ahead))
                });
            }
        }
        return parts.join(", ");
    }
    let eta = from_proto_time(r.eta.as_ref());
    if let Some(e) = eta {
        parts.push(format!("ETA {}", human_time(e)));
    }
    match (deadline, now) {
        (Some(d), Some(n)) => {
            let left = d.duration_since(n);
            parts.push(if left.is_negative() {
                format!("deadline passed {} ago", human_duration(-left))
            } else {
                format!("deadline in {}", human_duration(left))
            });
        }
        (Some(d), None) => parts.push(format!("deadline {}", human_time(d))),
        (None, _) => parts.push("no deadline".into()),
    }
    let risk = r
        .at_risk_by
        .as_ref()
        .map(from_proto_duration)
        .filter(|d| d.is_positive());
    match (risk, deadline, eta) {
        (Some(by), _, _) => parts.push(format!("AT RISK by {}", human_duration(by))),
        (None, Some(d), Some(e)) => {
            parts.push(format!("on plan, slack {}", human_duration(d.duration_since(e))))
        }
        _ => parts.push("on plan".into()),
    }
    parts.join(", ")
}

/// One line for logs and pipes: phase, live count, timing.
pub fn one_line(r: &Rollout, now: Option<Timestamp>) -> String {
    format!(
        "{}: {}, {}/{} regions live, {}",
        r.id,
        phase(r),
        live_count(r),
        r.regions_total
            .max(i32::try_from(r.steps.len()).unwrap_or(i32::MAX)),
        timing(r, now)
    )
}

/// A bar of `width` cells for the steps of one wave: `#` verified, `=`
/// baking, `>` applying, `x` failed, `~` rolled back or skipped, `.` to do.
pub fn bar(steps: &[&RolloutStep], width: usize) -> String {
    let n = steps.len();
    if n == 0 || width == 0 {
        return String::new();
    }
    let mut order: Vec<char> = steps
        .iter()
        .map(|s| match StepState::try_from(s.state) {
            Ok(StepState::Verified) => '#',
            Ok(StepState::Baking) => '=',
            Ok(StepState::Applying) => '>',
            Ok(StepState::Failed) => 'x',
            Ok(StepState::Skipped | StepState::RolledBack | StepState::RollingBack) => '~',
            _ => '.',
        })
        .collect();
    let rank = |c: char| "#=>x~.".find(c).unwrap_or(5);
    order.sort_by_key(|c| rank(*c));
    (0..width).map(|i| order[i * n / width]).collect()
}

/// The progress block `rollout status` prints (and `--watch` redraws):
/// a header, a bar per wave, the live count and timing, failures, trace id.
pub fn progress(r: &Rollout, now: Option<Timestamp>, width: usize) -> Vec<String> {
    let mut lines = vec![format!(
        "{}  {} rev {}  {}  {}",
        r.id,
        r.tile_id,
        r.revision,
        state_name(r.state),
        phase(r)
    )];
    let waves = r
        .wave_count
        .max(r.steps.iter().map(|s| s.wave).max().unwrap_or(0));
    let bar_w = width.saturating_sub(50).clamp(10, 70);
    for w in 1..=waves {
        let steps: Vec<&RolloutStep> = r.steps.iter().filter(|s| s.wave == w).collect();
        if steps.is_empty() {
            continue;
        }
        let count = |st: StepState| steps.iter().filter(|s| is(s, st)).count();
        let mut notes = Vec::new();
        for (st, word) in [
            (StepState::Applying, "applying"),
            (StepState::Baking, "baking"),
            (StepState::Failed, "failed"),
            (StepState::Skipped, "skipped"),
            (StepState::RolledBack, "rolled back"),
        ] {
            let c = count(st);
            if c > 0 {
                notes.push(format!("{c} {word}"));
            }
        }
        let marker = if w == r.current_wave && !is_terminal(r) {
            '>'
        } else {
            ' '
        };
        lines.push(fit(
            &format!(
                "{marker}wave {w:<2} [{}] {:>3}/{:<3} verified{}",
                bar(&steps, bar_w),
                count(StepState::Verified),
                steps.len(),
                if notes.is_empty() {
                    String::new()
                } else {
                    format!(", {}", notes.join(", "))
                }
            ),
            width,
        ));
    }
    // Never cut: the timing is what people look for.
    lines.push(format!(
        "{}/{} regions live, {}",
        live_count(r),
        r.regions_total
            .max(i32::try_from(r.steps.len()).unwrap_or(i32::MAX)),
        timing(r, now)
    ));
    let failed: Vec<&RolloutStep> = r.steps.iter().filter(|s| is(s, StepState::Failed)).collect();
    for s in failed.iter().take(3) {
        lines.push(fit(
            &format!("failed: {} (wave {}): {}", s.region, s.wave, s.last_error),
            width,
        ));
    }
    if failed.len() > 3 {
        lines.push(format!("failed: {} more", failed.len() - 3));
    }
    if !r.trace_id.is_empty() {
        lines.push(format!("trace id {}", r.trace_id));
    }
    lines
}

#[cfg(test)]
pub(crate) mod tests {
    use tilewave_proto::rollout::v1::{
        PlanProblem, PlanSuggestion, PlannedRegion, PlannedWave, RegionList, RolloutSpec,
    };

    use super::*;
    use crate::names::{parse_time, to_proto_duration, to_proto_time};

    fn t(s: &str) -> prost_types::Timestamp {
        to_proto_time(parse_time(s).unwrap())
    }

    fn hours(h: i64) -> prost_types::Duration {
        to_proto_duration(SignedDuration::from_hours(h))
    }

    /// 70 regions in 5 waves (3, 6, 12, 24, 25), bake 4h, from Tue 1 Dec.
    pub fn sample_plan() -> Plan {
        let sizes = [3usize, 6, 12, 24, 25];
        let mut regions = Vec::new();
        let mut waves = Vec::new();
        let mut at = parse_time("2026-12-01 17:00").unwrap();
        let mut k = 0;
        for (i, n) in sizes.iter().enumerate() {
            let start = at;
            let mut ids = Vec::new();
            for _ in 0..*n {
                let id = format!("aws:region-{k:02}");
                k += 1;
                let end = at + SignedDuration::from_mins(5);
                regions.push(PlannedRegion {
                    region: id.clone(),
                    wave: i32::try_from(i + 1).unwrap(),
                    apply_start: Some(to_proto_time(at)),
                    apply_end: Some(to_proto_time(end)),
                    bake_end: None,
                    ..Default::default()
                });
                ids.push(id);
                at = end;
            }
            let wave_end = at + SignedDuration::from_hours(4);
            for r in regions.iter_mut().filter(|r| r.bake_end.is_none()) {
                r.bake_end = Some(to_proto_time(wave_end));
            }
            waves.push(PlannedWave {
                number: i32::try_from(i + 1).unwrap(),
                regions: ids,
                start: Some(to_proto_time(start)),
                end: Some(to_proto_time(wave_end)),
                bake: Some(hours(4)),
                hold_after: i == 0,
            });
            at = wave_end;
        }
        let deadline = parse_time("2026-12-07 17:00").unwrap();
        Plan {
            spec: Some(RolloutSpec {
                tile_id: "riverflow".into(),
                ..Default::default()
            }),
            waves,
            regions,
            planned_start: Some(t("2026-12-01 17:00")),
            planned_end: Some(to_proto_time(at)),
            deadline: Some(to_proto_time(deadline)),
            slack: Some(to_proto_duration(deadline.duration_since(at))),
            feasible: true,
            problems: Vec::new(),
            computed_at: Some(t("2026-12-01 16:00")),
            ga_time: Some(t("2026-12-08 17:00")),
            deadline_source: DeadlineSource::GaMargin as i32,
            canary_wave: true,
        }
    }

    #[test]
    fn plan_summary_is_journey_one() {
        let s = summary(&sample_plan()).unwrap();
        assert!(
            s.starts_with(
                "70 regions, 5 waves, canaries aws:region-00, aws:region-01, aws:region-02; bake 4h"
            ),
            "{s}"
        );
        assert!(s.contains("deadline Mon 7 Dec 17:00 UTC (GA - 24h)"), "{s}");
        assert!(s.contains("; slack "), "{s}");
        let mut no_deadline = sample_plan();
        no_deadline.deadline = None;
        no_deadline.slack = None;
        no_deadline.deadline_source = DeadlineSource::Unspecified as i32;
        let s = summary(&no_deadline).unwrap();
        assert!(s.ends_with("; no deadline"), "{s}");
        assert!(!s.contains("slack"), "{s}");
    }

    #[test]
    fn plan_text_fits_80_and_120_columns() {
        for per_region in [false, true] {
            for w in [80, 120] {
                let text = plan_text(&sample_plan(), w, per_region);
                // The summary is one line by design (journey 1); the rest fits.
                for line in text.lines().skip(1) {
                    assert!(line.chars().count() <= w, "{w} cols: {line:?}");
                }
                assert!(text.contains("wave 5") || text.contains("70 regions"), "{text}");
            }
        }
        let text = plan_text(&sample_plan(), 80, false);
        assert!(text.contains("1 H"), "hold marker: {text}");
        assert!(text.lines().any(|l| l.starts_with("WAVE")), "{text}");
        assert!(!text.contains("not feasible"));
    }

    #[test]
    fn infeasible_plans_say_why_and_what_fits() {
        let mut p = sample_plan();
        p.feasible = false;
        p.problems = vec![PlanProblem {
            kind: PlanProblemKind::DeadlineMissed as i32,
            message: "ends 3h after the deadline: too few regions apply at once".into(),
            suggestions: vec![
                PlanSuggestion {
                    message: "bake 2h30m would fit".into(),
                    change: Some(plan_suggestion::Change::Bake(to_proto_duration(
                        SignedDuration::from_mins(150),
                    ))),
                },
                PlanSuggestion {
                    message: "concurrency 12 would fit".into(),
                    change: Some(plan_suggestion::Change::Concurrency(12)),
                },
            ],
            ..Default::default()
        }];
        let text = plan_text(&p, 80, false);
        assert!(
            text.contains("not feasible:\n- deadline missed: ends 3h after"),
            "{text}"
        );
        assert!(
            text.contains("try: bake 2h30m would fit (--bake 2h30m)"),
            "{text}"
        );
        assert!(text.contains("(--concurrency 12)"), "{text}");
        let bare = Plan {
            feasible: false,
            problems: vec![PlanProblem {
                kind: PlanProblemKind::MissingSignOffs as i32,
                message: "missing sign-offs: legal".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let text = plan_text(&bare, 80, false);
        assert!(
            text.contains("- missing sign offs: missing sign-offs: legal"),
            "{text}"
        );
    }

    #[test]
    fn the_pre_flight_problem_names_the_regions_and_the_exclude_that_fits() {
        let p = Plan {
            feasible: false,
            problems: vec![PlanProblem {
                kind: PlanProblemKind::NoAgent as i32,
                message: "no agent is registered for 2 regions of the plan: gcp:asia-northeast1, azure:westus (are their tilewave-agents running?): applies there would fail".into(),
                suggestions: vec![PlanSuggestion {
                    message: "leave those regions out".into(),
                    change: Some(plan_suggestion::Change::Exclude(RegionList {
                        regions: vec!["gcp:asia-northeast1".into(), "azure:westus".into()],
                    })),
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let text = plan_text(&p, 80, false);
        assert!(
            text.contains("- no agent: no agent is registered for 2 regions of the plan: gcp:asia-northeast1, azure:westus"),
            "{text}"
        );
        assert!(
            text.contains("    try: leave those regions out (--exclude gcp:asia-northeast1,azure:westus)"),
            "{text}"
        );
    }

    /// A launch of 70 regions in wave 3 of 5, baking: 21 live.
    pub fn sample_rollout() -> Rollout {
        let plan = sample_plan();
        let steps = plan
            .regions
            .iter()
            .map(|r| RolloutStep {
                region: r.region.clone(),
                wave: r.wave,
                state: match r.wave {
                    1 | 2 => StepState::Verified,
                    3 => StepState::Baking,
                    _ => StepState::Pending,
                } as i32,
                ..Default::default()
            })
            .collect();
        Rollout {
            id: "riverflow-r1".into(),
            tile_id: "riverflow".into(),
            revision: 1,
            state: RolloutState::Running as i32,
            steps,
            current_wave: 3,
            wave_count: 5,
            regions_total: 70,
            regions_verified: 9,
            eta: Some(t("2026-12-06 21:00")),
            deadline: Some(t("2026-12-07 17:00")),
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            plan: Some(plan),
            ..Default::default()
        }
    }

    #[test]
    fn progress_lines() {
        let r = sample_rollout();
        let now = parse_time("2026-12-02 14:58").unwrap();
        let lines = progress(&r, Some(now), 80);
        assert_eq!(
            lines[0],
            "riverflow-r1  riverflow rev 1  RUNNING  wave 3 of 5 baking"
        );
        assert!(
            lines[1].starts_with(" wave 1  [##############################]   3/3   verified"),
            "{lines:#?}"
        );
        assert!(
            lines[3].starts_with(">wave 3  [==============================]   0/12  verified, 12 baking"),
            "{lines:#?}"
        );
        assert!(
            lines[4].contains("[..............................]   0/24  verified"),
            "{lines:#?}"
        );
        assert_eq!(
            lines[6],
            "21/70 regions live, ETA Sun 6 Dec 21:00 UTC, deadline in 5d 02h 02m, on plan, slack 20h"
        );
        assert_eq!(lines[7], "trace id 4bf92f3577b34da6a3ce929d0e0e4736");
        for l in lines.iter().filter(|l| !l.contains("regions live")) {
            assert!(l.chars().count() <= 80, "{l}");
        }
        assert_eq!(
            one_line(&r, Some(now)),
            "riverflow-r1: wave 3 of 5 baking, 21/70 regions live, ETA Sun 6 Dec 21:00 UTC, deadline in 5d 02h 02m, on plan, slack 20h"
        );
    }

    #[test]
    fn progress_of_paused_failed_and_finished_roll_outs() {
        let mut r = sample_rollout();
        r.state = RolloutState::Paused as i32;
        r.paused_reason = "gcp:me-central2 failed its health gate".into();
        r.steps[20].state = StepState::Failed as i32;
        r.steps[20].last_error = "health gate: test-connection 500".into();
        r.at_risk_by = Some(hours(3));
        let lines = progress(&r, None, 80);
        assert_eq!(
            lines[0],
            "riverflow-r1  riverflow rev 1  PAUSED  wave 3 of 5 paused: gcp:me-central2 failed its health gate"
        );
        assert!(lines[3].contains("11 baking, 1 failed"), "{lines:#?}");
        assert!(lines[6].ends_with("AT RISK by 3h"), "{lines:#?}");
        assert!(
            lines[6].contains("deadline in 6d 01h"),
            "computed_at stands in for now: {lines:#?}"
        );
        assert_eq!(
            lines[7],
            "failed: aws:region-20 (wave 3): health gate: test-connection 500"
        );

        let mut r = sample_rollout();
        r.state = RolloutState::Succeeded as i32;
        for s in &mut r.steps {
            s.state = StepState::Verified as i32;
        }
        r.finished_at = Some(t("2026-12-06 15:00"));
        let lines = progress(&r, None, 80);
        assert_eq!(lines[0], "riverflow-r1  riverflow rev 1  SUCCEEDED  succeeded");
        assert_eq!(
            lines[6],
            "70/70 regions live, finished Sun 6 Dec 15:00 UTC, 1d 02h before the deadline"
        );
        assert!(is_terminal(&r));
    }

    #[test]
    fn bars_scale_and_widths_are_chosen() {
        let v = RolloutStep {
            state: StepState::Verified as i32,
            ..Default::default()
        };
        let p = RolloutStep::default();
        assert_eq!(bar(&[&v, &p], 4), "##..");
        assert_eq!(bar(&[&p, &v, &p], 3), "#..");
        assert_eq!(width(None, Some("200")), 120);
        assert_eq!(width(None, Some("100")), 80);
        assert_eq!(width(None, None), 80);
        assert_eq!(width(Some(100), Some("200")), 100);
        assert_eq!(compact(SignedDuration::from_mins(150)), "2h30m");
    }
}
