//! Escalation definitions and enums between the wire
//! (`tilewave.escalation.v1`) and `core::escalation`: one conversion for
//! the escalation service, the CLI (`tilewave policy|oncall|sop set -f`)
//! and the rollout service (the GA scheduler's on-call coverage
//! pre-flight). Reading a stored record is lenient (a missing time reads
//! as absent); reading a request is strict where the core cannot say what
//! is wrong itself: a duration or a local time out of range is an
//! [`Invalid`] naming its field.

use jiff::civil::{Date, Time};
use jiff::{SignedDuration, Timestamp};
use tilewave_core::escalation::{
    self as core, Contact, Day, Layer, Level, Override, OverrideKind, Person, Policy, Rotation, Schedule,
    Severity, Side, Sop, SopStep, SourceKind, Speedup, Target, WeeklyWindow,
};
use tilewave_proto::common::v1 as common;
use tilewave_proto::escalation::v1 as wire;
use tilewave_store::clock::{from_proto_timestamp, to_proto_timestamp};

/// A field of a definition that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// Its path, e.g. `policy.levels[0].delay`.
    pub field: String,
    /// What is wrong.
    pub problem: String,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

impl std::error::Error for Invalid {}

/// The result of reading a definition.
pub type Result<T> = std::result::Result<T, Invalid>;

/// An [`Invalid`] for `field`.
fn invalid(field: impl Into<String>, problem: impl Into<String>) -> Invalid {
    Invalid {
        field: field.into(),
        problem: problem.into(),
    }
}

/// A stored or optional time: `None` when absent or out of range.
pub fn ts(t: Option<&prost_types::Timestamp>) -> Option<Timestamp> {
    t.and_then(|t| from_proto_timestamp(t).ok())
}

/// A time to the wire.
pub fn pts(t: Timestamp) -> Option<prost_types::Timestamp> {
    Some(to_proto_timestamp(t))
}

/// An optional time to the wire.
pub fn pts_opt(t: Option<Timestamp>) -> Option<prost_types::Timestamp> {
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

/// A side to the wire.
pub fn side_to_wire(s: Side) -> i32 {
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

/// A source kind to the wire.
pub fn source_kind_to_wire(k: SourceKind) -> i32 {
    (match k {
        SourceKind::Manual => wire::SourceKind::Manual,
        SourceKind::RolloutFailure => wire::SourceKind::RolloutFailure,
        SourceKind::DeadlineAtRisk => wire::SourceKind::DeadlineAtRisk,
        SourceKind::CredentialFailure => wire::SourceKind::CredentialFailure,
        SourceKind::Drift => wire::SourceKind::Drift,
        SourceKind::Health => wire::SourceKind::Health,
    }) as i32
}

/// `None` for an empty string.
pub fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// A wire duration as a signed one; `field` names it in the error.
pub fn duration(d: Option<&prost_types::Duration>, field: &str) -> Result<SignedDuration> {
    let d = d.ok_or_else(|| invalid(field, "required (e.g. 300s)"))?;
    if !(0..1_000_000_000).contains(&d.nanos) && !(-999_999_999..0).contains(&d.nanos) {
        return Err(invalid(field, "nanos out of range"));
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

/// A weekday from the wire; `None` for UNSPECIFIED.
pub fn day(d: i32) -> Option<Day> {
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

/// A weekday to the wire.
pub fn day_to_wire(d: Day) -> i32 {
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

/// A local time of day (minutes) from the wire; `field` names it in the error.
pub fn local_time(t: Option<&common::LocalTime>, field: &str) -> Result<Time> {
    let t = t.ok_or_else(|| invalid(field, "required (hour and minute)"))?;
    let hour = i8::try_from(t.hour).ok().filter(|h| (0..24).contains(h));
    let minute = i8::try_from(t.minute).ok().filter(|m| (0..60).contains(m));
    match (hour, minute) {
        (Some(h), Some(m)) => Time::new(h, m, 0, 0).map_err(|e| invalid(field, e.to_string())),
        _ => Err(invalid(
            field,
            format!("{}:{} is not a time of day (00:00 to 23:59)", t.hour, t.minute),
        )),
    }
}

/// A local time of day to the wire.
pub fn local_time_to_wire(t: Time) -> common::LocalTime {
    common::LocalTime {
        hour: i32::from(t.hour()),
        minute: i32::from(t.minute()),
    }
}

/// A civil date from the wire; `field` names it in the error.
pub fn date(d: Option<&common::Date>, field: &str) -> Result<Date> {
    let d = d.ok_or_else(|| invalid(field, "required (year, month, day)"))?;
    let (y, m, dd) = (
        i16::try_from(d.year).ok(),
        i8::try_from(d.month).ok(),
        i8::try_from(d.day).ok(),
    );
    match (y, m, dd) {
        (Some(y), Some(m), Some(dd)) => {
            Date::new(y, m, dd).map_err(|e| invalid(field, format!("not a date: {e}")))
        }
        _ => Err(invalid(field, "not a date")),
    }
}

/// A civil date to the wire.
pub fn date_to_wire(d: Date) -> common::Date {
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

/// A weekly window to the wire.
pub fn window_to_wire(w: &WeeklyWindow) -> wire::WeeklyWindow {
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
            .ok_or_else(|| invalid(format!("{path}.rotation"), "required"))?;
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
                return Err(invalid(format!("{path}.kind"), "ADD, REPLACE or REMOVE"));
            }
        };
        let span = o.span.unwrap_or_default();
        let start =
            ts(span.start.as_ref()).ok_or_else(|| invalid(format!("{path}.span.start"), "required"))?;
        let end = ts(span.end.as_ref()).ok_or_else(|| invalid(format!("{path}.span.end"), "required"))?;
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

/// Contacts from the wire.
pub fn contacts(c: &[wire::Contact]) -> Vec<Contact> {
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
