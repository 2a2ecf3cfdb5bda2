//! Wire <-> core: the only place proto enums become core enums. Reading a
//! stored record is lenient (a missing time reads as the epoch); reading a
//! request is strict where the core cannot say what is wrong itself (a
//! duration or a local time out of range names its field).

use jiff::civil::{Date, Time};
use jiff::{SignedDuration, Timestamp};
use tilewave_core::escalation::{
    self as core, Action, Contact, Day, Delivery, Entry, EntryKind, Escalation, Incident, Ladder, Layer,
    Level, Mitigation, Override, OverrideKind, Person, Policy, Rotation, Schedule, Severity, Side, Sop,
    SopStep, Source, SourceKind, Speedup, Stamp, State, StepProgress, StepStatus, Target, WeeklyWindow,
};
use tilewave_proto::common::v1 as common;
use tilewave_proto::escalation::v1 as wire;
use tilewave_store::clock::{from_proto_timestamp, to_proto_timestamp};

use crate::error::{Error, Result};

/// A stored or optional time: `None` when absent or out of range.
pub fn ts(t: Option<&prost_types::Timestamp>) -> Option<Timestamp> {
    t.and_then(|t| from_proto_timestamp(t).ok())
}

/// A time to the wire.
pub fn pts(t: Timestamp) -> Option<prost_types::Timestamp> {
    Some(to_proto_timestamp(t))
}

fn pts_opt(t: Option<Timestamp>) -> Option<prost_types::Timestamp> {
    t.map(to_proto_timestamp)
}

/// A severity from the wire; `None` for UNSPECIFIED.
pub fn severity(s: i32) -> Option<Severity> {
    match common::Severity::try_from(s).ok()? {
        common::Severity::Unspecified => None,
        common::Severity::Sev1 => Some(Severity::Sev1),
        common::Severity::Sev2 => Some(Severity::Sev2),
        common::Severity::Sev3 => Some(Severity::Sev3),
        common::Severity::Sev4 => Some(Severity::Sev4),
    }
}

/// A severity to the wire.
pub fn severity_to_wire(s: Severity) -> i32 {
    (match s {
        Severity::Sev1 => common::Severity::Sev1,
        Severity::Sev2 => common::Severity::Sev2,
        Severity::Sev3 => common::Severity::Sev3,
        Severity::Sev4 => common::Severity::Sev4,
    }) as i32
}

/// A side from the wire (UNSPECIFIED: the platform).
pub fn side(s: i32) -> Side {
    match wire::Side::try_from(s) {
        Ok(wire::Side::Partner) => Side::Partner,
        Ok(wire::Side::Platform | wire::Side::Unspecified) | Err(_) => Side::Platform,
    }
}

fn side_to_wire(s: Side) -> i32 {
    (match s {
        Side::Partner => wire::Side::Partner,
        Side::Platform => wire::Side::Platform,
    }) as i32
}

/// A source kind from the wire.
pub fn source_kind(k: i32) -> Option<SourceKind> {
    Some(match wire::SourceKind::try_from(k).ok()? {
        wire::SourceKind::Unspecified => return None,
        wire::SourceKind::Manual => SourceKind::Manual,
        wire::SourceKind::RolloutFailure => SourceKind::RolloutFailure,
        wire::SourceKind::DeadlineAtRisk => SourceKind::DeadlineAtRisk,
        wire::SourceKind::CredentialFailure => SourceKind::CredentialFailure,
        wire::SourceKind::Drift => SourceKind::Drift,
        wire::SourceKind::Health => SourceKind::Health,
    })
}

fn source_kind_to_wire(k: SourceKind) -> i32 {
    (match k {
        SourceKind::Manual => wire::SourceKind::Manual,
        SourceKind::RolloutFailure => wire::SourceKind::RolloutFailure,
        SourceKind::DeadlineAtRisk => wire::SourceKind::DeadlineAtRisk,
        SourceKind::CredentialFailure => wire::SourceKind::CredentialFailure,
        SourceKind::Drift => wire::SourceKind::Drift,
        SourceKind::Health => wire::SourceKind::Health,
    }) as i32
}

fn source(s: Option<&wire::Source>) -> Source {
    let Some(s) = s else { return Source::Manual };
    match source_kind(s.kind) {
        None | Some(SourceKind::Manual) => Source::Manual,
        Some(SourceKind::RolloutFailure) => Source::RolloutFailure {
            rollout: s.rollout_id.clone(),
            wave: s.wave,
        },
        Some(SourceKind::DeadlineAtRisk) => Source::DeadlineAtRisk {
            rollout: s.rollout_id.clone(),
        },
        Some(SourceKind::CredentialFailure) => Source::CredentialFailure {
            rotation: s.rotation_id.clone(),
        },
        Some(SourceKind::Drift) => Source::Drift,
        Some(SourceKind::Health) => Source::Health,
    }
}

fn source_to_wire(s: &Source) -> wire::Source {
    let mut w = wire::Source {
        kind: source_kind_to_wire(s.kind()),
        ..Default::default()
    };
    match s {
        Source::Manual | Source::Drift | Source::Health => {}
        Source::RolloutFailure { rollout, wave } => {
            w.rollout_id = rollout.clone();
            w.wave = *wave;
        }
        Source::DeadlineAtRisk { rollout } => w.rollout_id = rollout.clone(),
        Source::CredentialFailure { rotation } => w.rotation_id = rotation.clone(),
    }
    w
}

/// An incident state to the wire.
pub fn state_to_wire(s: State) -> i32 {
    (match s {
        State::Triggered => wire::IncidentState::Triggered,
        State::Acknowledged => wire::IncidentState::Acknowledged,
        State::Mitigated => wire::IncidentState::Mitigated,
        State::Resolved => wire::IncidentState::Resolved,
    }) as i32
}

fn state(s: i32) -> State {
    match wire::IncidentState::try_from(s) {
        Ok(wire::IncidentState::Acknowledged) => State::Acknowledged,
        Ok(wire::IncidentState::Mitigated) => State::Mitigated,
        Ok(wire::IncidentState::Resolved) => State::Resolved,
        Ok(wire::IncidentState::Triggered | wire::IncidentState::Unspecified) | Err(_) => State::Triggered,
    }
}

fn entry_kind_to_wire(k: EntryKind) -> i32 {
    use wire::TimelineKind as T;
    (match k {
        EntryKind::Opened => T::Opened,
        EntryKind::Paged => T::Paged,
        EntryKind::Escalated => T::Escalated,
        EntryKind::Exhausted => T::Exhausted,
        EntryKind::Acknowledged => T::Acknowledged,
        EntryKind::Note => T::Note,
        EntryKind::StepCompleted => T::StepCompleted,
        EntryKind::StepSkipped => T::StepSkipped,
        EntryKind::Mitigated => T::Mitigated,
        EntryKind::Resolved => T::Resolved,
        EntryKind::Reopened => T::Reopened,
        EntryKind::Event => T::Event,
        EntryKind::Rerated => T::Rerated,
        EntryKind::RolloutPaused => T::RolloutPaused,
        EntryKind::Delivered => T::Delivered,
        EntryKind::DeliveryFailed => T::DeliveryFailed,
    }) as i32
}

fn entry_kind(k: i32) -> EntryKind {
    use wire::TimelineKind as T;
    match T::try_from(k).unwrap_or(T::Note) {
        T::Opened => EntryKind::Opened,
        T::Paged => EntryKind::Paged,
        T::Escalated => EntryKind::Escalated,
        T::Exhausted => EntryKind::Exhausted,
        T::Acknowledged => EntryKind::Acknowledged,
        T::Note | T::Unspecified => EntryKind::Note,
        T::StepCompleted => EntryKind::StepCompleted,
        T::StepSkipped => EntryKind::StepSkipped,
        T::Mitigated => EntryKind::Mitigated,
        T::Resolved => EntryKind::Resolved,
        T::Reopened => EntryKind::Reopened,
        T::Event => EntryKind::Event,
        T::Rerated => EntryKind::Rerated,
        T::RolloutPaused => EntryKind::RolloutPaused,
        T::Delivered => EntryKind::Delivered,
        T::DeliveryFailed => EntryKind::DeliveryFailed,
    }
}

fn stamp(s: Option<&wire::Stamp>) -> Option<Stamp> {
    s.map(|s| Stamp {
        by: s.by.clone(),
        at: ts(s.at.as_ref()).unwrap_or(Timestamp::UNIX_EPOCH),
    })
}

fn stamp_to_wire(s: &Stamp) -> wire::Stamp {
    wire::Stamp {
        by: s.by.clone(),
        at: pts(s.at),
    }
}

/// A mitigation action from the wire.
pub fn action(a: i32) -> Option<Action> {
    Some(match wire::MitigationAction::try_from(a).ok()? {
        wire::MitigationAction::Unspecified => return None,
        wire::MitigationAction::PauseRollout => Action::PauseRollout,
        wire::MitigationAction::RemoveTile => Action::RemoveTile,
        wire::MitigationAction::RotateCredential => Action::RotateCredential,
        wire::MitigationAction::Manual => Action::Manual,
    })
}

fn action_to_wire(a: Action) -> i32 {
    (match a {
        Action::PauseRollout => wire::MitigationAction::PauseRollout,
        Action::RemoveTile => wire::MitigationAction::RemoveTile,
        Action::RotateCredential => wire::MitigationAction::RotateCredential,
        Action::Manual => wire::MitigationAction::Manual,
    }) as i32
}

fn escalation(e: Option<&wire::Escalation>) -> Escalation {
    let e = e.cloned().unwrap_or_default();
    let due = ts(e.due.as_ref()).unwrap_or(Timestamp::UNIX_EPOCH);
    let ladder = match wire::LadderState::try_from(e.state) {
        Ok(wire::LadderState::Exhausted) => Ladder::Exhausted { at: due },
        Ok(wire::LadderState::Stopped) => Ladder::Stopped { at: due },
        Ok(wire::LadderState::Pending | wire::LadderState::Unspecified) | Err(_) => Ladder::Pending {
            round: e.round,
            level: usize::try_from(e.level).unwrap_or(usize::MAX),
            due,
        },
    };
    Escalation {
        policy: e.policy,
        started_at: ts(e.started_at.as_ref()).unwrap_or(Timestamp::UNIX_EPOCH),
        cycle: e.cycle,
        ladder,
        rollout_paused: e.rollout_paused,
    }
}

fn escalation_to_wire(e: &Escalation) -> wire::Escalation {
    let (state, round, level, due) = match e.ladder {
        Ladder::Pending { round, level, due } => (
            wire::LadderState::Pending,
            round,
            u32::try_from(level).unwrap_or(u32::MAX),
            due,
        ),
        Ladder::Exhausted { at } => (wire::LadderState::Exhausted, 0, 0, at),
        Ladder::Stopped { at } => (wire::LadderState::Stopped, 0, 0, at),
    };
    wire::Escalation {
        policy: e.policy.clone(),
        started_at: pts(e.started_at),
        cycle: e.cycle,
        state: state as i32,
        round,
        level,
        due: pts(due),
        rollout_paused: e.rollout_paused,
    }
}

/// A stored incident as the core's.
pub fn incident(w: &wire::Incident) -> Incident {
    Incident {
        id: w.id.clone(),
        title: w.title.clone(),
        tile: w.tile_id.clone(),
        regions: w.regions.clone(),
        severity: severity(w.severity).unwrap_or(Severity::Sev4),
        source: source(w.source.as_ref()),
        side: side(w.side),
        partner: non_empty(&w.partner),
        state: state(w.state),
        dedup_key: non_empty(&w.dedup_key),
        count: w.count,
        linked_to: non_empty(&w.linked_to),
        rollout: non_empty(&w.rollout_id),
        deadline: ts(w.deadline.as_ref()),
        sop: non_empty(&w.sop_id),
        steps: w
            .steps
            .iter()
            .map(|s| {
                let closed = stamp(s.closed.as_ref());
                let status = match (wire::StepStatus::try_from(s.status), closed) {
                    (Ok(wire::StepStatus::Done), Some(stamp)) => StepStatus::Done {
                        stamp,
                        note: non_empty(&s.note),
                    },
                    (Ok(wire::StepStatus::Skipped), Some(stamp)) => StepStatus::Skipped {
                        stamp,
                        reason: s.note.clone(),
                    },
                    _ => StepStatus::Open,
                };
                StepProgress {
                    number: s.number,
                    title: s.title.clone(),
                    side: side(s.side),
                    requires_note: s.requires_note,
                    status,
                }
            })
            .collect(),
        mitigations: w
            .mitigations
            .iter()
            .map(|m| Mitigation {
                action: action(m.action).unwrap_or(Action::Manual),
                regions: m.regions.clone(),
                note: m.note.clone(),
                stamp: stamp(m.stamp.as_ref()).unwrap_or(Stamp {
                    by: String::new(),
                    at: Timestamp::UNIX_EPOCH,
                }),
            })
            .collect(),
        timeline: w
            .timeline
            .iter()
            .map(|e| Entry {
                at: ts(e.at.as_ref()).unwrap_or(Timestamp::UNIX_EPOCH),
                actor: e.actor.clone(),
                kind: entry_kind(e.kind),
                message: e.message.clone(),
            })
            .collect(),
        deliveries: w
            .deliveries
            .iter()
            .map(|d| Delivery {
                key: d.key.clone(),
                recipient: d.recipient.clone(),
                attempts: d.attempts,
                delivered_at: ts(d.delivered_at.as_ref()),
                last_error: non_empty(&d.last_error),
                gave_up: d.gave_up,
            })
            .collect(),
        opened_at: ts(w.opened_at.as_ref()).unwrap_or(Timestamp::UNIX_EPOCH),
        acknowledged: stamp(w.acknowledged.as_ref()),
        mitigated: stamp(w.mitigated.as_ref()),
        resolved: stamp(w.resolved.as_ref()),
        escalation: escalation(w.escalation.as_ref()),
    }
}

/// The core's incident to the wire; `origin`, `timer_due` and `etag` are
/// the caller's.
pub fn incident_to_wire(i: &Incident) -> wire::Incident {
    wire::Incident {
        id: i.id.clone(),
        title: i.title.clone(),
        tile_id: i.tile.clone(),
        regions: i.regions.clone(),
        severity: severity_to_wire(i.severity),
        source: Some(source_to_wire(&i.source)),
        side: side_to_wire(i.side),
        partner: i.partner.clone().unwrap_or_default(),
        state: state_to_wire(i.state),
        dedup_key: i.dedup_key.clone().unwrap_or_default(),
        count: i.count,
        linked_to: i.linked_to.clone().unwrap_or_default(),
        rollout_id: i.rollout.clone().unwrap_or_default(),
        deadline: pts_opt(i.deadline),
        sop_id: i.sop.clone().unwrap_or_default(),
        steps: i
            .steps
            .iter()
            .map(|s| {
                let (status, closed, note) = match &s.status {
                    StepStatus::Open => (wire::StepStatus::Open, None, String::new()),
                    StepStatus::Done { stamp, note } => (
                        wire::StepStatus::Done,
                        Some(stamp_to_wire(stamp)),
                        note.clone().unwrap_or_default(),
                    ),
                    StepStatus::Skipped { stamp, reason } => (
                        wire::StepStatus::Skipped,
                        Some(stamp_to_wire(stamp)),
                        reason.clone(),
                    ),
                };
                wire::StepProgress {
                    number: s.number,
                    title: s.title.clone(),
                    side: side_to_wire(s.side),
                    requires_note: s.requires_note,
                    status: status as i32,
                    closed,
                    note,
                }
            })
            .collect(),
        mitigations: i
            .mitigations
            .iter()
            .map(|m| wire::Mitigation {
                action: action_to_wire(m.action),
                regions: m.regions.clone(),
                note: m.note.clone(),
                stamp: Some(stamp_to_wire(&m.stamp)),
            })
            .collect(),
        timeline: i
            .timeline
            .iter()
            .map(|e| wire::TimelineEntry {
                at: pts(e.at),
                actor: e.actor.clone(),
                kind: entry_kind_to_wire(e.kind),
                message: e.message.clone(),
            })
            .collect(),
        deliveries: i
            .deliveries
            .iter()
            .map(|d| wire::DeliveryAttempts {
                key: d.key.clone(),
                recipient: d.recipient.clone(),
                attempts: d.attempts,
                delivered_at: pts_opt(d.delivered_at),
                last_error: d.last_error.clone().unwrap_or_default(),
                gave_up: d.gave_up,
            })
            .collect(),
        opened_at: pts(i.opened_at),
        acknowledged: i.acknowledged.as_ref().map(stamp_to_wire),
        mitigated: i.mitigated.as_ref().map(stamp_to_wire),
        resolved: i.resolved.as_ref().map(stamp_to_wire),
        escalation: Some(escalation_to_wire(&i.escalation)),
        origin: None,
        timer_due: None,
        etag: 0,
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// A wire duration as a signed one; `field` names it in the error.
pub fn duration(d: Option<&prost_types::Duration>, field: &str) -> Result<SignedDuration> {
    let d = d.ok_or_else(|| Error::invalid(field, "required (e.g. 300s)"))?;
    if !(0..1_000_000_000).contains(&d.nanos) && !(-999_999_999..0).contains(&d.nanos) {
        return Err(Error::invalid(field, "nanos out of range"));
    }
    Ok(SignedDuration::new(d.seconds, d.nanos))
}

/// A signed duration to the wire.
pub fn duration_to_wire(d: SignedDuration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: d.as_secs(),
        nanos: d.subsec_nanos(),
    }
}

/// A policy from a request (validation is the core's).
pub fn policy(w: &wire::Policy) -> Result<Policy> {
    let mut levels = Vec::with_capacity(w.levels.len());
    for (i, l) in w.levels.iter().enumerate() {
        let delay = match &l.delay {
            None => SignedDuration::ZERO,
            Some(_) => duration(l.delay.as_ref(), &format!("policy.levels[{i}].delay"))?,
        };
        levels.push(Level {
            targets: l
                .targets
                .iter()
                .map(|t| Target {
                    kind: core::TargetKind::from(t.kind.as_str()),
                    name: t.name.clone(),
                    url: non_empty(&t.url),
                })
                .collect(),
            delay,
        });
    }
    let mut speedups = Vec::new();
    for (i, s) in w.speedups.iter().enumerate() {
        speedups.push(Speedup {
            within: duration(s.within.as_ref(), &format!("policy.speedups[{i}].within"))?,
            percent: s.percent,
        });
    }
    Ok(Policy {
        name: w.name.clone(),
        severities: w.severities.iter().filter_map(|s| severity(*s)).collect(),
        levels,
        repeat: w.repeat,
        pause_rollout_after: match &w.pause_rollout_after {
            None => None,
            Some(_) => Some(duration(
                w.pause_rollout_after.as_ref(),
                "policy.pause_rollout_after",
            )?),
        },
        speedups,
    })
}

/// A policy to the wire.
pub fn policy_to_wire(p: &Policy, etag: i64) -> wire::Policy {
    wire::Policy {
        name: p.name.clone(),
        severities: p.severities.iter().map(|s| severity_to_wire(*s)).collect(),
        levels: p
            .levels
            .iter()
            .map(|l| wire::Level {
                targets: l
                    .targets
                    .iter()
                    .map(|t| wire::Target {
                        kind: t.kind.as_str().to_owned(),
                        name: t.name.clone(),
                        url: t.url.clone().unwrap_or_default(),
                    })
                    .collect(),
                delay: Some(duration_to_wire(l.delay)),
            })
            .collect(),
        repeat: p.repeat,
        pause_rollout_after: p.pause_rollout_after.map(duration_to_wire),
        speedups: p
            .speedups
            .iter()
            .map(|s| wire::Speedup {
                within: Some(duration_to_wire(s.within)),
                percent: s.percent,
            })
            .collect(),
        etag,
    }
}

fn day(d: i32) -> Option<Day> {
    Some(match common::Weekday::try_from(d).ok()? {
        common::Weekday::Unspecified => return None,
        common::Weekday::Monday => Day::Mon,
        common::Weekday::Tuesday => Day::Tue,
        common::Weekday::Wednesday => Day::Wed,
        common::Weekday::Thursday => Day::Thu,
        common::Weekday::Friday => Day::Fri,
        common::Weekday::Saturday => Day::Sat,
        common::Weekday::Sunday => Day::Sun,
    })
}

fn day_to_wire(d: Day) -> i32 {
    (match d {
        Day::Mon => common::Weekday::Monday,
        Day::Tue => common::Weekday::Tuesday,
        Day::Wed => common::Weekday::Wednesday,
        Day::Thu => common::Weekday::Thursday,
        Day::Fri => common::Weekday::Friday,
        Day::Sat => common::Weekday::Saturday,
        Day::Sun => common::Weekday::Sunday,
    }) as i32
}

fn local_time(t: Option<&common::LocalTime>, field: &str) -> Result<Time> {
    let t = t.ok_or_else(|| Error::invalid(field, "required (hour and minute)"))?;
    let hour = i8::try_from(t.hour).ok().filter(|h| (0..24).contains(h));
    let minute = i8::try_from(t.minute).ok().filter(|m| (0..60).contains(m));
    match (hour, minute) {
        (Some(h), Some(m)) => Time::new(h, m, 0, 0).map_err(|e| Error::invalid(field, e.to_string())),
        _ => Err(Error::invalid(
            field,
            format!("{}:{} is not a time of day (00:00 to 23:59)", t.hour, t.minute),
        )),
    }
}

fn local_time_to_wire(t: Time) -> common::LocalTime {
    common::LocalTime {
        hour: i32::from(t.hour()),
        minute: i32::from(t.minute()),
    }
}

fn date(d: Option<&common::Date>, field: &str) -> Result<Date> {
    let d = d.ok_or_else(|| Error::invalid(field, "required (year, month, day)"))?;
    let (y, m, dd) = (
        i16::try_from(d.year).ok(),
        i8::try_from(d.month).ok(),
        i8::try_from(d.day).ok(),
    );
    match (y, m, dd) {
        (Some(y), Some(m), Some(dd)) => {
            Date::new(y, m, dd).map_err(|e| Error::invalid(field, format!("not a date: {e}")))
        }
        _ => Err(Error::invalid(field, "not a date")),
    }
}

fn date_to_wire(d: Date) -> common::Date {
    common::Date {
        year: i32::from(d.year()),
        month: i32::from(d.month()),
        day: i32::from(d.day()),
    }
}

/// A weekly window from the wire.
pub fn window(w: &wire::WeeklyWindow, field: &str) -> Result<WeeklyWindow> {
    Ok(WeeklyWindow {
        days: w.days.iter().filter_map(|d| day(*d)).collect(),
        start: local_time(w.start.as_ref(), &format!("{field}.start"))?,
        end: local_time(w.end.as_ref(), &format!("{field}.end"))?,
    })
}

fn window_to_wire(w: &WeeklyWindow) -> wire::WeeklyWindow {
    wire::WeeklyWindow {
        days: w.days.iter().map(|d| day_to_wire(*d)).collect(),
        start: Some(local_time_to_wire(w.start)),
        end: Some(local_time_to_wire(w.end)),
    }
}

/// A schedule from a request (validation is the core's).
pub fn schedule(w: &wire::Schedule) -> Result<Schedule> {
    let mut layers = Vec::new();
    for (i, l) in w.layers.iter().enumerate() {
        let path = format!("schedule.layers[{i}]");
        let r = l
            .rotation
            .as_ref()
            .ok_or_else(|| Error::invalid(format!("{path}.rotation"), "required"))?;
        let shift_length = if r.shift_hours % 24 == 0 && r.shift_hours > 0 {
            core::ShiftLength::Days(r.shift_hours / 24)
        } else {
            core::ShiftLength::Hours(r.shift_hours)
        };
        layers.push(Layer {
            name: l.name.clone(),
            level: l.level,
            rotation: Rotation {
                people: r.people.clone(),
                shift_length,
                handoff: local_time(r.handoff.as_ref(), &format!("{path}.rotation.handoff"))?,
                time_zone: r.time_zone.clone(),
                start: date(r.start.as_ref(), &format!("{path}.rotation.start"))?,
            },
            active: match &l.active {
                None => None,
                Some(a) => Some(window(a, &format!("{path}.active"))?),
            },
        });
    }
    let mut overrides = Vec::new();
    for (i, o) in w.overrides.iter().enumerate() {
        let path = format!("schedule.overrides[{i}]");
        let kind = match wire::OverrideKind::try_from(o.kind) {
            Ok(wire::OverrideKind::Add) => OverrideKind::Add,
            Ok(wire::OverrideKind::Replace) => OverrideKind::Replace,
            Ok(wire::OverrideKind::Remove) => OverrideKind::Remove,
            Ok(wire::OverrideKind::Unspecified) | Err(_) => {
                return Err(Error::invalid(format!("{path}.kind"), "ADD, REPLACE or REMOVE"));
            }
        };
        let span = o.span.unwrap_or_default();
        let start = ts(span.start.as_ref())
            .ok_or_else(|| Error::invalid(format!("{path}.span.start"), "required"))?;
        let end =
            ts(span.end.as_ref()).ok_or_else(|| Error::invalid(format!("{path}.span.end"), "required"))?;
        overrides.push(Override {
            kind,
            person: o.person.clone(),
            by: non_empty(&o.by),
            start,
            end,
        });
    }
    Ok(Schedule {
        name: w.name.clone(),
        layers,
        overrides,
    })
}

/// A schedule to the wire.
pub fn schedule_to_wire(s: &Schedule, etag: i64) -> wire::Schedule {
    wire::Schedule {
        name: s.name.clone(),
        layers: s
            .layers
            .iter()
            .map(|l| wire::Layer {
                name: l.name.clone(),
                level: l.level,
                rotation: Some(wire::Rotation {
                    people: l.rotation.people.clone(),
                    shift_hours: u32::try_from(l.rotation.shift_length.hours()).unwrap_or(u32::MAX),
                    handoff: Some(local_time_to_wire(l.rotation.handoff)),
                    time_zone: l.rotation.time_zone.clone(),
                    start: Some(date_to_wire(l.rotation.start)),
                }),
                active: l.active.as_ref().map(window_to_wire),
            })
            .collect(),
        overrides: s
            .overrides
            .iter()
            .map(|o| wire::Override {
                kind: (match o.kind {
                    OverrideKind::Add => wire::OverrideKind::Add,
                    OverrideKind::Replace => wire::OverrideKind::Replace,
                    OverrideKind::Remove => wire::OverrideKind::Remove,
                }) as i32,
                person: o.person.clone(),
                by: o.by.clone().unwrap_or_default(),
                span: Some(common::TimeRange {
                    start: pts(o.start),
                    end: pts(o.end),
                }),
            })
            .collect(),
        etag,
    }
}

/// An SOP from the wire.
pub fn sop(w: &wire::Sop) -> Sop {
    Sop {
        id: w.id.clone(),
        title: w.title.clone(),
        applies_to: w.applies_to.iter().filter_map(|k| source_kind(*k)).collect(),
        steps: w
            .steps
            .iter()
            .map(|s| SopStep {
                number: s.number,
                title: s.title.clone(),
                instructions: s.instructions.clone(),
                side: side(s.side),
                requires_note: s.requires_note,
            })
            .collect(),
    }
}

/// An SOP to the wire.
pub fn sop_to_wire(s: &Sop, etag: i64) -> wire::Sop {
    wire::Sop {
        id: s.id.clone(),
        title: s.title.clone(),
        applies_to: s.applies_to.iter().map(|k| source_kind_to_wire(*k)).collect(),
        steps: s
            .steps
            .iter()
            .map(|st| wire::SopStep {
                number: st.number,
                title: st.title.clone(),
                instructions: st.instructions.clone(),
                side: side_to_wire(st.side),
                requires_note: st.requires_note,
            })
            .collect(),
        etag,
    }
}

fn contacts(c: &[wire::Contact]) -> Vec<Contact> {
    c.iter()
        .map(|c| Contact {
            name: c.name.clone(),
            url: c.url.clone(),
        })
        .collect()
}

/// Contacts to the wire.
pub fn contacts_to_wire(c: &[Contact]) -> Vec<wire::Contact> {
    c.iter()
        .map(|c| wire::Contact {
            name: c.name.clone(),
            url: c.url.clone(),
        })
        .collect()
}

/// Partner contacts from the wire.
pub fn partner_contacts(w: &wire::PartnerContacts) -> Vec<Contact> {
    contacts(&w.contacts)
}

/// A person from the wire.
pub fn person(w: &wire::Person) -> Result<Person> {
    Ok(Person {
        id: w.id.clone(),
        name: w.name.clone(),
        time_zone: w.time_zone.clone(),
        working_hours: match &w.working_hours {
            None => WeeklyWindow::office_hours(),
            Some(h) => window(h, "person.working_hours")?,
        },
        contacts: contacts(&w.contacts),
    })
}

/// A person to the wire.
pub fn person_to_wire(p: &Person, etag: i64) -> wire::Person {
    wire::Person {
        id: p.id.clone(),
        name: p.name.clone(),
        time_zone: p.time_zone.clone(),
        working_hours: Some(window_to_wire(&p.working_hours)),
        contacts: contacts_to_wire(&p.contacts),
        etag,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_incident_round_trips_through_the_wire() {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let t = core::open(
            core::NewIncident {
                id: "INC-1".into(),
                title: "riverflow: wave 2 failed".into(),
                tile: "riverflow".into(),
                regions: vec!["aws:us-east-1".into()],
                severity: Severity::Sev1,
                source: Source::RolloutFailure {
                    rollout: "riverflow-r1".into(),
                    wave: 2,
                },
                side: Side::Partner,
                partner: Some("acme".into()),
                rollout: None,
                deadline: Some(now + SignedDuration::from_hours(100)),
                policy: "default".into(),
                linked_to: Some("INC-0".into()),
            },
            core::default_sops().first(),
            now,
            "ada",
        )
        .unwrap();
        let i = t.incident;
        assert_eq!(incident(&incident_to_wire(&i)), i);
    }

    #[test]
    fn a_policy_round_trips_and_a_missing_delay_reads_as_zero_for_the_core_to_refuse() {
        let p = Policy {
            name: "default".into(),
            severities: vec![Severity::Sev1],
            levels: vec![Level {
                targets: vec![Target {
                    kind: core::TargetKind::Webhook,
                    name: "ops".into(),
                    url: Some("http://127.0.0.1:1/ops".into()),
                }],
                delay: SignedDuration::from_mins(5),
            }],
            repeat: 2,
            pause_rollout_after: Some(SignedDuration::from_mins(30)),
            speedups: vec![],
        };
        assert_eq!(policy(&policy_to_wire(&p, 3)).unwrap(), p);
        let mut w = policy_to_wire(&p, 0);
        w.levels[0].delay = None;
        assert_eq!(policy(&w).unwrap().levels[0].delay, SignedDuration::ZERO);
    }
}
