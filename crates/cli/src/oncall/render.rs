//! How incidents and on-call answers are shown: serde views for
//! `-o json|yaml`, and tables and blocks for people. `incident show` puts
//! what the on-call needs first: state and owner, the ladder's position and
//! its next escalation, the SOP checklist with progress, then mitigations,
//! page deliveries, the timeline, and the commands that lead on.

use serde::Serialize;
use tilewave_proto::ShortName as _;
use tilewave_proto::common::v1::Severity;
use tilewave_proto::escalation::v1::{
    DeliveryAttempts, Incident, IncidentState, LadderState, MitigationAction, OnCallShift, Side, SourceKind,
    Stamp, StepProgress, StepStatus, TimelineKind,
};

use crate::names::{format_time, kebab, short_time};
use crate::output::{Table, fields};

/// `SEV1`.
pub fn severity_name(s: i32) -> &'static str {
    Severity::short_name_of(s)
}

/// `TRIGGERED`.
pub fn state_name(s: i32) -> &'static str {
    IncidentState::short_name_of(s)
}

/// `rollout-failure`.
pub fn source_name(k: i32) -> String {
    kebab(SourceKind::short_name_of(k), "")
}

/// `partner`.
pub fn side_name(s: i32) -> String {
    kebab(Side::short_name_of(s), "")
}

/// `pause-rollout`.
pub fn action_name(a: i32) -> String {
    kebab(MitigationAction::short_name_of(a), "")
}

/// `step-completed`.
pub fn timeline_name(k: i32) -> String {
    kebab(TimelineKind::short_name_of(k), "")
}

/// `DONE`.
pub fn step_status_name(s: i32) -> &'static str {
    StepStatus::short_name_of(s)
}

/// "ada at 2026-12-06T13:00:00Z", or `None` when nobody did it.
fn stamp_text(s: Option<&Stamp>) -> Option<String> {
    let s = s?;
    if s.by.is_empty() && s.at.is_none() {
        return None;
    }
    Some(match short_time(s.at.as_ref()) {
        Some(at) => format!("{} at {at}", s.by),
        None => s.by.clone(),
    })
}

/// Who did something, when, for JSON and YAML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StampView {
    pub by: String,
    pub at: Option<String>,
}

fn stamp_view(s: Option<&Stamp>) -> Option<StampView> {
    let s = s?;
    if s.by.is_empty() && s.at.is_none() {
        return None;
    }
    Some(StampView {
        by: s.by.clone(),
        at: format_time(s.at.as_ref()),
    })
}

/// An SOP step's progress for JSON and YAML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepView {
    pub number: u32,
    pub title: String,
    pub side: String,
    pub requires_note: bool,
    pub status: String,
    pub closed: Option<StampView>,
    pub note: String,
}

impl From<&StepProgress> for StepView {
    fn from(s: &StepProgress) -> Self {
        Self {
            number: s.number,
            title: s.title.clone(),
            side: side_name(s.side),
            requires_note: s.requires_note,
            status: step_status_name(s.status).to_owned(),
            closed: stamp_view(s.closed.as_ref()),
            note: s.note.clone(),
        }
    }
}

/// A mitigation for JSON and YAML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MitigationView {
    pub action: String,
    pub regions: Vec<String>,
    pub note: String,
    pub by: Option<StampView>,
}

/// A page's delivery for JSON and YAML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryView {
    pub key: String,
    pub recipient: String,
    pub attempts: u32,
    pub delivered_at: Option<String>,
    pub last_error: String,
    pub gave_up: bool,
}

impl From<&DeliveryAttempts> for DeliveryView {
    fn from(d: &DeliveryAttempts) -> Self {
        Self {
            key: d.key.clone(),
            recipient: d.recipient.clone(),
            attempts: d.attempts,
            delivered_at: format_time(d.delivered_at.as_ref()),
            last_error: d.last_error.clone(),
            gave_up: d.gave_up,
        }
    }
}

/// A timeline entry for JSON and YAML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntryView {
    pub at: Option<String>,
    pub actor: String,
    pub kind: String,
    pub message: String,
}

/// An incident's ladder for JSON and YAML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EscalationView {
    pub policy: String,
    pub state: String,
    pub cycle: u32,
    /// From 1, as people count (the API counts from 0).
    pub round: u32,
    /// From 1.
    pub level: u32,
    pub due: Option<String>,
    pub started_at: Option<String>,
    pub rollout_paused: bool,
}

/// An incident for JSON and YAML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IncidentView {
    pub id: String,
    pub title: String,
    pub tile_id: String,
    pub regions: Vec<String>,
    pub severity: String,
    pub state: String,
    pub source: String,
    pub side: String,
    pub partner: String,
    pub dedup_key: String,
    pub count: u32,
    pub linked_to: String,
    pub rollout_id: String,
    pub deadline: Option<String>,
    pub opened_at: Option<String>,
    pub acknowledged: Option<StampView>,
    pub mitigated: Option<StampView>,
    pub resolved: Option<StampView>,
    pub escalation: Option<EscalationView>,
    pub sop_id: String,
    pub steps: Vec<StepView>,
    pub mitigations: Vec<MitigationView>,
    pub deliveries: Vec<DeliveryView>,
    pub timeline: Vec<EntryView>,
    pub etag: i64,
}

impl From<&Incident> for IncidentView {
    fn from(i: &Incident) -> Self {
        Self {
            id: i.id.clone(),
            title: i.title.clone(),
            tile_id: i.tile_id.clone(),
            regions: i.regions.clone(),
            severity: severity_name(i.severity).to_owned(),
            state: state_name(i.state).to_owned(),
            source: i
                .source
                .as_ref()
                .map_or_else(|| "unspecified".to_owned(), |s| source_name(s.kind)),
            side: side_name(i.side),
            partner: i.partner.clone(),
            dedup_key: i.dedup_key.clone(),
            count: i.count,
            linked_to: i.linked_to.clone(),
            rollout_id: i.rollout_id.clone(),
            deadline: format_time(i.deadline.as_ref()),
            opened_at: format_time(i.opened_at.as_ref()),
            acknowledged: stamp_view(i.acknowledged.as_ref()),
            mitigated: stamp_view(i.mitigated.as_ref()),
            resolved: stamp_view(i.resolved.as_ref()),
            escalation: i.escalation.as_ref().map(|e| EscalationView {
                policy: e.policy.clone(),
                state: LadderState::short_name_of(e.state).to_owned(),
                cycle: e.cycle,
                round: e.round + 1,
                level: e.level + 1,
                due: format_time(e.due.as_ref()),
                started_at: format_time(e.started_at.as_ref()),
                rollout_paused: e.rollout_paused,
            }),
            sop_id: i.sop_id.clone(),
            steps: i.steps.iter().map(StepView::from).collect(),
            mitigations: i
                .mitigations
                .iter()
                .map(|m| MitigationView {
                    action: action_name(m.action),
                    regions: m.regions.clone(),
                    note: m.note.clone(),
                    by: stamp_view(m.stamp.as_ref()),
                })
                .collect(),
            deliveries: i.deliveries.iter().map(DeliveryView::from).collect(),
            timeline: i
                .timeline
                .iter()
                .map(|e| EntryView {
                    at: format_time(e.at.as_ref()),
                    actor: e.actor.clone(),
                    kind: timeline_name(e.kind),
                    message: e.message.clone(),
                })
                .collect(),
            etag: i.etag,
        }
    }
}

/// Incidents, one a row, newest first as the service lists them.
pub fn incidents_table(list: &[Incident]) -> String {
    let mut t = Table::new(&["ID", "SEV", "STATE", "TILE", "OPENED", "COUNT", "OWNER", "TITLE"]);
    for i in list {
        let owner = i
            .acknowledged
            .as_ref()
            .map(|s| s.by.clone())
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| "-".to_owned());
        t.row(vec![
            i.id.clone(),
            severity_name(i.severity).to_owned(),
            state_name(i.state).to_owned(),
            i.tile_id.clone(),
            short_time(i.opened_at.as_ref()).unwrap_or_default(),
            i.count.to_string(),
            owner,
            i.title.clone(),
        ]);
    }
    t.render()
}

/// Where the ladder stands, in a line: "policy \"default\": level 2 of
/// round 1 pages at 2026-…Z".
pub fn ladder_text(i: &Incident) -> String {
    let Some(e) = &i.escalation else {
        return "no escalation".to_owned();
    };
    let due = short_time(e.due.as_ref()).unwrap_or_else(|| "?".to_owned());
    let state = match LadderState::try_from(e.state) {
        Ok(LadderState::Pending) => format!(
            "level {} of round {} pages at {due} unless acknowledged",
            e.level + 1,
            e.round + 1
        ),
        Ok(LadderState::Exhausted) => {
            format!("every level of every round was paged; ran out at {due}")
        }
        Ok(LadderState::Stopped) => format!("stopped at {due}"),
        _ => "not started".to_owned(),
    };
    let mut text = format!("policy {:?}: {state}", e.policy);
    if e.cycle > 0 {
        text.push_str(&format!(" (run {} after reopening)", e.cycle + 1));
    }
    if e.rollout_paused {
        text.push_str("; the roll-out was paused (unacknowledged SEV1)");
    }
    text
}

/// "3/5 steps closed (2 done, 1 skipped)".
pub fn steps_summary(steps: &[StepProgress]) -> String {
    let done = steps
        .iter()
        .filter(|s| s.status == StepStatus::Done as i32)
        .count();
    let skipped = steps
        .iter()
        .filter(|s| s.status == StepStatus::Skipped as i32)
        .count();
    format!(
        "{}/{} steps closed ({done} done, {skipped} skipped)",
        done + skipped,
        steps.len()
    )
}

/// An incident for people.
pub fn incident_block(i: &Incident) -> String {
    let mut pairs = vec![
        ("INCIDENT", format!("{}  {}", i.id, i.title)),
        (
            "STATE",
            format!("{} {}", severity_name(i.severity), state_name(i.state)),
        ),
        (
            "TILE",
            if i.regions.is_empty() {
                i.tile_id.clone()
            } else {
                format!("{} in {}", i.tile_id, i.regions.join(", "))
            },
        ),
    ];
    let source = i.source.as_ref().map_or_else(
        || "unspecified".to_owned(),
        |s| {
            let mut t = source_name(s.kind);
            if s.wave > 0 {
                t.push_str(&format!(" (wave {})", s.wave));
            }
            t
        },
    );
    let side = if i.partner.is_empty() {
        format!("{} side", side_name(i.side))
    } else {
        format!("{} side ({})", side_name(i.side), i.partner)
    };
    pairs.push(("SOURCE", format!("{source}, owned by the {side}")));
    if i.count > 1 {
        pairs.push(("COUNT", format!("{} events folded in ({})", i.count, i.dedup_key)));
    }
    if let Some(at) = short_time(i.opened_at.as_ref()) {
        pairs.push(("OPENED", at));
    }
    if let Some(d) = short_time(i.deadline.as_ref()) {
        pairs.push(("GA DEADLINE", d));
    }
    for (key, stamp) in [
        ("ACKNOWLEDGED", &i.acknowledged),
        ("MITIGATED", &i.mitigated),
        ("RESOLVED", &i.resolved),
    ] {
        if let Some(s) = stamp_text(stamp.as_ref()) {
            pairs.push((key, s));
        }
    }
    pairs.push(("ESCALATION", ladder_text(i)));
    if !i.sop_id.is_empty() {
        pairs.push(("SOP", format!("{}: {}", i.sop_id, steps_summary(&i.steps))));
    }
    let mut text = fields(&pairs);
    if !i.steps.is_empty() {
        let mut t = Table::new(&["STEP", "STATUS", "SIDE", "TITLE", "CLOSED", "NOTE"]);
        for s in &i.steps {
            let title = if s.requires_note && s.status == StepStatus::Open as i32 {
                format!("{} (needs a note)", s.title)
            } else {
                s.title.clone()
            };
            t.row(vec![
                s.number.to_string(),
                step_status_name(s.status).to_owned(),
                side_name(s.side),
                title,
                stamp_text(s.closed.as_ref()).unwrap_or_default(),
                s.note.clone(),
            ]);
        }
        text.push('\n');
        text.push_str(&t.render());
    }
    if !i.mitigations.is_empty() {
        let mut t = Table::new(&["MITIGATION", "REGIONS", "BY", "NOTE"]);
        for m in &i.mitigations {
            t.row(vec![
                action_name(m.action),
                if m.regions.is_empty() {
                    "all".to_owned()
                } else {
                    m.regions.join(",")
                },
                stamp_text(m.stamp.as_ref()).unwrap_or_default(),
                m.note.clone(),
            ]);
        }
        text.push('\n');
        text.push_str(&t.render());
    }
    if !i.deliveries.is_empty() {
        let mut t = Table::new(&["PAGE", "ATTEMPTS", "DELIVERED", "LAST ERROR"]);
        for d in &i.deliveries {
            let delivered = match (short_time(d.delivered_at.as_ref()), d.gave_up) {
                (Some(at), _) => at,
                (None, true) => "gave up".to_owned(),
                (None, false) => "pending".to_owned(),
            };
            t.row(vec![
                d.recipient.clone(),
                d.attempts.to_string(),
                delivered,
                d.last_error.clone(),
            ]);
        }
        text.push('\n');
        text.push_str(&t.render());
    }
    if !i.timeline.is_empty() {
        let mut t = Table::new(&["AT", "WHO", "WHAT", "MESSAGE"]);
        for e in &i.timeline {
            t.row(vec![
                short_time(e.at.as_ref()).unwrap_or_default(),
                e.actor.clone(),
                timeline_name(e.kind),
                e.message.clone(),
            ]);
        }
        text.push('\n');
        text.push_str(&t.render());
    }
    let links = links(i);
    if !links.is_empty() {
        text.push('\n');
        for l in links {
            text.push_str(&l);
            text.push('\n');
        }
    }
    text
}

/// The commands that lead on from an incident: what to do next, and
/// where to look.
pub fn links(i: &Incident) -> Vec<String> {
    let mut out = Vec::new();
    let state = IncidentState::try_from(i.state).unwrap_or_default();
    if state == IncidentState::Triggered {
        out.push(format!("acknowledge:  tilewave incident ack {}", i.id));
    }
    if let Some(s) = i.steps.iter().find(|s| s.status == StepStatus::Open as i32)
        && state != IncidentState::Resolved
    {
        let note = if s.requires_note { " --note \"...\"" } else { "" };
        out.push(format!(
            "next SOP step:  tilewave incident step {} {} --done{note}",
            i.id, s.number
        ));
    }
    if !i.rollout_id.is_empty() {
        out.push(format!("roll-out:  tilewave rollout status {}", i.tile_id));
    }
    if !i.tile_id.is_empty() {
        out.push(format!("tile:  tilewave tile get {}", i.tile_id));
    }
    if !i.linked_to.is_empty() {
        out.push(format!(
            "follows:  tilewave incident show {} (resolved, the same failure)",
            i.linked_to
        ));
    }
    out
}

/// One incident event of `incident watch`, in a line.
pub fn incident_line(i: &Incident) -> String {
    format!(
        "{} {} {} {}: {} ({})",
        i.id,
        severity_name(i.severity),
        state_name(i.state),
        i.tile_id,
        i.title,
        ladder_text(i)
    )
}

/// Who is on call, for JSON and YAML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShiftView {
    pub schedule: String,
    pub person: String,
    pub layer: String,
    pub is_override: bool,
    pub from: Option<String>,
    pub until: Option<String>,
}

impl From<&OnCallShift> for ShiftView {
    fn from(s: &OnCallShift) -> Self {
        Self {
            schedule: s.schedule.clone(),
            person: s.person.clone(),
            layer: s.layer.clone(),
            is_override: s.is_override,
            from: format_time(s.span.as_ref().and_then(|r| r.start.as_ref())),
            until: format_time(s.span.as_ref().and_then(|r| r.end.as_ref())),
        }
    }
}

/// Who is on call, one a row.
pub fn shifts_table(shifts: &[OnCallShift]) -> String {
    let mut t = Table::new(&["SCHEDULE", "ON CALL", "LAYER", "FROM", "UNTIL"]);
    for s in shifts {
        let layer = match (s.is_override, s.layer.is_empty()) {
            (true, true) => "override".to_owned(),
            (true, false) => format!("{} (override)", s.layer),
            (false, _) => s.layer.clone(),
        };
        t.row(vec![
            s.schedule.clone(),
            s.person.clone(),
            layer,
            short_time(s.span.as_ref().and_then(|r| r.start.as_ref())).unwrap_or_default(),
            short_time(s.span.as_ref().and_then(|r| r.end.as_ref())).unwrap_or_default(),
        ]);
    }
    t.render()
}

#[cfg(test)]
pub(crate) mod tests {
    use tilewave_proto::escalation::v1::{Escalation, Mitigation, Source, TimelineEntry};

    use super::*;

    fn at(secs: i64) -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp {
            seconds: secs,
            nanos: 0,
        })
    }

    /// 2026-12-06T13:00:00Z.
    pub const T0: i64 = 1_796_562_000;

    /// A SEV1 roll-out failure of riverflow, acknowledged by ada, step 1
    /// done, step 2 skipped, step 3 open (needs a note), one page delivered
    /// after two attempts, one that gave up.
    pub fn incident() -> Incident {
        Incident {
            id: "INC-42".into(),
            title: "riverflow: health gate failed in gcp:me-central2 (wave 4)".into(),
            tile_id: "riverflow".into(),
            regions: vec!["gcp:me-central2".into()],
            severity: Severity::Sev1 as i32,
            source: Some(Source {
                kind: SourceKind::RolloutFailure as i32,
                rollout_id: "ro-7".into(),
                wave: 4,
                rotation_id: String::new(),
            }),
            side: Side::Partner as i32,
            partner: "riverflow-inc".into(),
            state: IncidentState::Acknowledged as i32,
            dedup_key: "rollout-failure/riverflow/ro-7/wave-4".into(),
            count: 3,
            rollout_id: "ro-7".into(),
            sop_id: "integration-health".into(),
            steps: vec![
                StepProgress {
                    number: 1,
                    title: "Confirm the failure and its scope".into(),
                    side: Side::Platform as i32,
                    requires_note: true,
                    status: StepStatus::Done as i32,
                    closed: Some(Stamp {
                        by: "ada".into(),
                        at: at(T0 + 600),
                    }),
                    note: "me-central2 only since 12:50".into(),
                },
                StepProgress {
                    number: 2,
                    title: "Contain it".into(),
                    side: Side::Platform as i32,
                    requires_note: false,
                    status: StepStatus::Skipped as i32,
                    closed: Some(Stamp {
                        by: "ada".into(),
                        at: at(T0 + 660),
                    }),
                    note: "the roll-out is paused already".into(),
                },
                StepProgress {
                    number: 3,
                    title: "The partner diagnoses their endpoint".into(),
                    side: Side::Partner as i32,
                    requires_note: true,
                    status: StepStatus::Open as i32,
                    closed: None,
                    note: String::new(),
                },
            ],
            mitigations: vec![Mitigation {
                action: MitigationAction::PauseRollout as i32,
                regions: vec![],
                note: "stop the bleeding".into(),
                stamp: Some(Stamp {
                    by: "ada".into(),
                    at: at(T0 + 300),
                }),
            }],
            timeline: vec![
                TimelineEntry {
                    at: at(T0),
                    actor: "system:escalation".into(),
                    kind: TimelineKind::Opened as i32,
                    message: "opened from ROLLOUT_FAILED".into(),
                },
                TimelineEntry {
                    at: at(T0 + 120),
                    actor: "ada".into(),
                    kind: TimelineKind::Acknowledged as i32,
                    message: "acknowledged; 1 page cancelled".into(),
                },
            ],
            deliveries: vec![
                DeliveryAttempts {
                    key: "INC-42/c0/r0/l0/person/ada/phone".into(),
                    recipient: "ada/phone".into(),
                    attempts: 2,
                    delivered_at: at(T0 + 5),
                    last_error: "HTTP 503".into(),
                    gave_up: false,
                },
                DeliveryAttempts {
                    key: "INC-42/c0/r0/l0/webhook/ops".into(),
                    recipient: "ops".into(),
                    attempts: 8,
                    delivered_at: None,
                    last_error: "connection refused".into(),
                    gave_up: true,
                },
            ],
            opened_at: at(T0),
            acknowledged: Some(Stamp {
                by: "ada".into(),
                at: at(T0 + 120),
            }),
            escalation: Some(Escalation {
                policy: "default".into(),
                started_at: at(T0),
                cycle: 0,
                state: LadderState::Stopped as i32,
                round: 0,
                level: 1,
                due: at(T0 + 120),
                rollout_paused: false,
            }),
            etag: 17,
            ..Incident::default()
        }
    }

    #[test]
    fn an_incident_shows_its_state_ladder_steps_deliveries_and_links() {
        let text = incident_block(&incident());
        for want in [
            "INCIDENT      INC-42  riverflow: health gate failed in gcp:me-central2 (wave 4)",
            "STATE         SEV1 ACKNOWLEDGED",
            "TILE          riverflow in gcp:me-central2",
            "SOURCE        rollout-failure (wave 4), owned by the partner side (riverflow-inc)",
            "COUNT         3 events folded in (rollout-failure/riverflow/ro-7/wave-4)",
            "ACKNOWLEDGED  ada at 2026-12-06T13:02:00Z",
            "ESCALATION    policy \"default\": stopped at 2026-12-06T13:02:00Z",
            "SOP           integration-health: 2/3 steps closed (1 done, 1 skipped)",
            "1     DONE     platform  Confirm the failure and its scope",
            "2     SKIPPED  platform  Contain it",
            "3     OPEN     partner   The partner diagnoses their endpoint (needs a note)",
            "pause-rollout  all",
            "ada/phone  2         2026-12-06T13:00:05Z  HTTP 503",
            "ops        8         gave up               connection refused",
            "2026-12-06T13:00:00Z  system:escalation  opened",
            "next SOP step:  tilewave incident step INC-42 3 --done --note \"...\"",
            "roll-out:  tilewave rollout status riverflow",
        ] {
            assert!(text.contains(want), "{want:?} in\n{text}");
        }
        assert!(!text.contains("incident ack"), "acknowledged already:\n{text}");
    }

    #[test]
    fn the_ladder_line_says_what_comes_next() {
        let mut i = incident();
        let e = i.escalation.as_mut().unwrap();
        e.state = LadderState::Pending as i32;
        e.due = at(T0 + 900);
        i.state = IncidentState::Triggered as i32;
        assert_eq!(
            ladder_text(&i),
            "policy \"default\": level 2 of round 1 pages at 2026-12-06T13:15:00Z unless acknowledged"
        );
        assert!(links(&i)[0].contains("tilewave incident ack INC-42"));
        let e = i.escalation.as_mut().unwrap();
        e.state = LadderState::Exhausted as i32;
        e.cycle = 1;
        e.rollout_paused = true;
        assert_eq!(
            ladder_text(&i),
            "policy \"default\": every level of every round was paged; ran out at 2026-12-06T13:15:00Z \
             (run 2 after reopening); the roll-out was paused (unacknowledged SEV1)"
        );
        i.escalation = None;
        assert_eq!(ladder_text(&i), "no escalation");
    }

    #[test]
    fn the_incident_view_counts_levels_from_one_and_names_enums() {
        let v = IncidentView::from(&incident());
        assert_eq!(
            (
                v.severity.as_str(),
                v.state.as_str(),
                v.source.as_str(),
                v.side.as_str()
            ),
            ("SEV1", "ACKNOWLEDGED", "rollout-failure", "partner")
        );
        let e = v.escalation.unwrap();
        assert_eq!((e.state.as_str(), e.round, e.level), ("STOPPED", 1, 2));
        assert_eq!(v.steps[1].status, "SKIPPED");
        assert_eq!(v.mitigations[0].action, "pause-rollout");
        assert_eq!(v.timeline[1].kind, "acknowledged");
        assert_eq!(v.deliveries[1].delivered_at, None);
        let yaml = crate::output::to_yaml(&serde_json::to_value(IncidentView::from(&incident())).unwrap());
        assert!(
            yaml.contains("id: INC-42\n") && yaml.contains("etag: 17\n"),
            "{yaml}"
        );
    }

    #[test]
    fn the_list_has_one_row_an_incident() {
        let mut other = incident();
        other.id = "INC-43".into();
        other.acknowledged = None;
        other.state = IncidentState::Triggered as i32;
        other.severity = Severity::Sev3 as i32;
        let text = incidents_table(&[incident(), other]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("ID      SEV   STATE"), "{text}");
        assert!(
            lines[1].starts_with("INC-42  SEV1  ACKNOWLEDGED  riverflow"),
            "{text}"
        );
        assert!(
            lines[2].contains("SEV3  TRIGGERED") && lines[2].contains("  -  "),
            "{text}"
        );
    }

    #[test]
    fn shifts_say_who_and_why() {
        let shifts = [
            OnCallShift {
                schedule: "primary".into(),
                person: "ada".into(),
                layer: "chicago".into(),
                is_override: false,
                span: Some(tilewave_proto::common::v1::TimeRange {
                    start: at(T0),
                    end: at(T0 + 86_400),
                }),
            },
            OnCallShift {
                schedule: "primary".into(),
                person: "bo".into(),
                layer: String::new(),
                is_override: true,
                span: None,
            },
        ];
        let text = shifts_table(&shifts);
        assert!(
            text.contains("primary   ada      chicago   2026-12-06T13:00:00Z  2026-12-07T13:00:00Z"),
            "{text}"
        );
        assert!(text.contains("primary   bo       override"), "{text}");
        assert_eq!(ShiftView::from(&shifts[1]).from, None);
    }
}
