//! Wire <-> core for incidents: the only place proto enums become core
//! enums here. The definitions (policies, schedules, SOPs, people) and the
//! shared enums convert in `tilewave_service::escalation`, which the CLI
//! and the rollout service use too; they are re-exported from here.
//! Reading a stored record is lenient (a missing time reads as absent).

use jiff::Timestamp;
use tilewave_core::escalation::{
    Action, Delivery, Entry, EntryKind, Escalation, Incident, Ladder, Mitigation, Severity, Source,
    SourceKind, Stamp, State, StepProgress, StepStatus,
};
use tilewave_proto::escalation::v1 as wire;
pub use tilewave_service::escalation::{
    contacts_to_wire, duration, duration_to_wire, non_empty, partner_contacts, person, person_to_wire,
    policy, policy_to_wire, pts, pts_opt, schedule, schedule_to_wire, severity, severity_to_wire, side,
    side_to_wire, sop, sop_to_wire, source_kind, source_kind_to_wire, ts, window,
};

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

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::SignedDuration;
    use tilewave_core::escalation::{self as core, Side};

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
}
