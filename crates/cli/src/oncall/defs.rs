//! The definition files of `tilewave policy|sop|oncall schedule|oncall
//! person|oncall partner set -f FILE`: YAML read into
//! `tilewave_core::escalation`'s types, checked by the core's validators
//! (every problem at once, each with its path), then converted to the API's
//! messages. `get` goes the other way (API message to core type), so that
//! `get -o yaml > f.yaml` and `set -f f.yaml` round-trip.
//!
//! **The YAML reader** is `serde-saphyr`: pure Rust (`unsafe` forbidden),
//! built to be panic-free on malformed input, with budgets against alias
//! bombs and huge documents, and errors that carry a line and column. It
//! deserializes straight into the core's serde types, so their
//! `deny_unknown_fields` catches misspelt keys. (`serde_yaml` is archived;
//! `serde_norway`, its fork, keeps the C-derived `unsafe-libyaml` parser.)
//! Errors are rendered without its source snippet, and cut to a bounded
//! length, so a bad file is never echoed back whole.

use std::collections::BTreeSet;
use std::path::Path;

use jiff::civil::{Date, Time};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tilewave_core::escalation::directory::is_http_url;
use tilewave_core::escalation::schedule::ShiftLength;
use tilewave_core::escalation::{
    Contact, Day, Layer, Level, OverrideKind, Person, Policy, Problems, Rotation, Schedule, Severity, Side,
    Sop, SopStep, SourceKind, Speedup, Target, TargetKind, WeeklyWindow,
};
use tilewave_core::quote::quoted;
use tilewave_proto::common::v1 as common;
use tilewave_proto::escalation::v1 as pb;

use crate::error::CliError;
use crate::names::{from_proto_duration, from_proto_time, to_proto_duration, to_proto_time};

/// The largest definition file read (a policy or schedule is a few KB).
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The most characters of a YAML reader's message shown.
const MAX_MESSAGE_CHARS: usize = 240;

/// A partner's contacts, as written in a file (the core keeps them as a
/// map in its `Directory`; this names the partner).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerContacts {
    /// The partner's id (as tiles name it).
    pub partner: String,
    /// How to reach them: webhooks.
    #[serde(default)]
    pub contacts: Vec<Contact>,
}

/// Reads a definition file (at most [`MAX_FILE_BYTES`]).
pub fn read_file(path: &Path) -> Result<String, CliError> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(|e| {
        CliError::usage(format!(
            "-f {}: cannot open it ({e}); check the path",
            path.display()
        ))
    })?;
    let mut text = String::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| {
            CliError::usage(format!(
                "-f {}: cannot read it as UTF-8 text ({e})",
                path.display()
            ))
        })?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(CliError::usage(format!(
            "-f {}: larger than {MAX_FILE_BYTES} bytes; a definition file is a few KB",
            path.display()
        )));
    }
    Ok(text)
}

/// Parses YAML `text` from the file `name` into `T`. A syntax error or a
/// field of the wrong shape names the line and column and at most
/// [`MAX_MESSAGE_CHARS`] of the reader's message.
pub fn parse_yaml<T: DeserializeOwned>(name: &str, text: &str) -> Result<T, CliError> {
    let options = serde_saphyr::options! {
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
        strict_booleans: true,
        with_snippet: false,
    };
    serde_saphyr::from_str_with_options(text, options).map_err(|e| {
        let at = e
            .location()
            .filter(|l| l.line() > 0)
            .map(|l| format!("line {}, column {}: ", l.line(), l.column()))
            .unwrap_or_default();
        let message = e.without_snippet().to_string();
        let message = strip_location(message.lines().next().unwrap_or_default());
        CliError::usage(format!("{name}: {at}{}; nothing was sent", explain(message)))
    })
}

/// The reader's message, bounded, in the file writer's terms: the reader's
/// advice to its own caller left out, a hint for the forms people get
/// wrong.
fn explain(message: &str) -> String {
    let message = message
        .split(", set DuplicateKeyPolicy")
        .next()
        .unwrap_or(message);
    let mut text = bounded(message);
    if message.starts_with("duplicate mapping key") {
        text.push_str("; give each key once");
    } else if message.contains("duration") {
        text.push_str("; write a duration such as 5m, 1h30m or 2d");
    }
    text
}

/// The reader's message without its own trailing " at line L column C".
fn strip_location(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(i) => &message[..i],
        None => message,
    }
}

/// `s` cut to [`MAX_MESSAGE_CHARS`] characters.
fn bounded(s: &str) -> String {
    match s.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((i, _)) => format!("{}… ({} bytes)", &s[..i], s.len()),
        None => s.to_owned(),
    }
}

/// Every problem of a definition as one error: a first line saying how many
/// and that nothing was sent, then `<file>: <path>: <message>` a line.
pub fn problems_error(name: &str, problems: &Problems) -> CliError {
    let n = problems.0.len();
    let mut text = format!(
        "{name}: {n} problem{}; nothing was sent",
        if n == 1 { "" } else { "s" }
    );
    for p in &problems.0 {
        text.push_str(&format!("\n  {name}: {p}"));
    }
    CliError::usage(text)
}

/// Reads a policy file and checks it (without the directory: the service
/// checks that targets exist).
pub fn load_policy(name: &str, text: &str) -> Result<Policy, CliError> {
    let policy: Policy = parse_yaml(name, text)?;
    tilewave_core::escalation::validate_policy(&policy, None).map_err(|p| problems_error(name, &p))?;
    Ok(policy)
}

/// Reads a schedule file and checks it.
pub fn load_schedule(name: &str, text: &str) -> Result<Schedule, CliError> {
    let schedule: Schedule = parse_yaml(name, text)?;
    let mut problems = tilewave_core::escalation::validate_schedule(&schedule)
        .err()
        .unwrap_or_default();
    for (i, l) in schedule.layers.iter().enumerate() {
        let path = format!("layers[{i}]");
        if shift_hours(l.rotation.shift_length).is_none() {
            problems.push(format!("{path}.rotation.shift_length"), "too long");
        }
        seconds_problem(
            &mut problems,
            &format!("{path}.rotation.handoff"),
            l.rotation.handoff,
        );
        if let Some(w) = &l.active {
            seconds_problem(&mut problems, &format!("{path}.active.start"), w.start);
            seconds_problem(&mut problems, &format!("{path}.active.end"), w.end);
        }
    }
    problems
        .into_result(schedule)
        .map_err(|p| problems_error(name, &p))
}

/// Reads an SOP file and checks it.
pub fn load_sop(name: &str, text: &str) -> Result<Sop, CliError> {
    let sop: Sop = parse_yaml(name, text)?;
    tilewave_core::escalation::validate_sop(&sop).map_err(|p| problems_error(name, &p))?;
    Ok(sop)
}

/// Reads a person file and checks it.
pub fn load_person(name: &str, text: &str) -> Result<Person, CliError> {
    let person: Person = parse_yaml(name, text)?;
    let mut problems = tilewave_core::escalation::validate_person(&person)
        .err()
        .unwrap_or_default();
    seconds_problem(&mut problems, "working_hours.start", person.working_hours.start);
    seconds_problem(&mut problems, "working_hours.end", person.working_hours.end);
    problems.into_result(person).map_err(|p| problems_error(name, &p))
}

/// Reads a partner contacts file and checks it: a partner, and contacts
/// with unique names and http(s) URLs.
pub fn load_partner(name: &str, text: &str) -> Result<PartnerContacts, CliError> {
    let pc: PartnerContacts = parse_yaml(name, text)?;
    let mut p = Problems::default();
    if pc.partner.trim().is_empty() {
        p.push("partner", "must not be empty: the partner's id");
    }
    let mut names = BTreeSet::new();
    for (i, c) in pc.contacts.iter().enumerate() {
        if c.name.trim().is_empty() {
            p.push(format!("contacts[{i}].name"), "must not be empty");
        } else if !names.insert(c.name.as_str()) {
            p.push(
                format!("contacts[{i}].name"),
                format!("{} names two contacts; names must be unique", quoted(&c.name)),
            );
        }
        if !is_http_url(&c.url) {
            p.push(
                format!("contacts[{i}].url"),
                "must be an http(s) URL with a host, such as \"https://hooks.example.com/page\"",
            );
        }
    }
    p.into_result(pc).map_err(|p| problems_error(name, &p))
}

/// The API keeps local times to the minute: a time with seconds is a
/// problem, not silently cut.
fn seconds_problem(p: &mut Problems, path: &str, t: Time) {
    if t.second() != 0 || t.subsec_nanosecond() != 0 {
        p.push(
            path,
            format!("{} has seconds; give HH:MM", t.strftime("%H:%M:%S")),
        );
    }
}

fn shift_hours(s: ShiftLength) -> Option<u32> {
    match s {
        ShiftLength::Hours(h) => Some(h),
        ShiftLength::Days(d) => d.checked_mul(24),
    }
}

// ---------------------------------------------------------------------
// Core to API.
// ---------------------------------------------------------------------

fn severity_pb(s: Severity) -> common::Severity {
    match s {
        Severity::Sev1 => common::Severity::Sev1,
        Severity::Sev2 => common::Severity::Sev2,
        Severity::Sev3 => common::Severity::Sev3,
        Severity::Sev4 => common::Severity::Sev4,
    }
}

fn side_pb(s: Side) -> pb::Side {
    match s {
        Side::Partner => pb::Side::Partner,
        Side::Platform => pb::Side::Platform,
    }
}

fn source_kind_pb(k: SourceKind) -> pb::SourceKind {
    match k {
        SourceKind::Manual => pb::SourceKind::Manual,
        SourceKind::RolloutFailure => pb::SourceKind::RolloutFailure,
        SourceKind::DeadlineAtRisk => pb::SourceKind::DeadlineAtRisk,
        SourceKind::CredentialFailure => pb::SourceKind::CredentialFailure,
        SourceKind::Drift => pb::SourceKind::Drift,
        SourceKind::Health => pb::SourceKind::Health,
    }
}

fn day_pb(d: Day) -> common::Weekday {
    match d {
        Day::Mon => common::Weekday::Monday,
        Day::Tue => common::Weekday::Tuesday,
        Day::Wed => common::Weekday::Wednesday,
        Day::Thu => common::Weekday::Thursday,
        Day::Fri => common::Weekday::Friday,
        Day::Sat => common::Weekday::Saturday,
        Day::Sun => common::Weekday::Sunday,
    }
}

fn time_pb(t: Time) -> common::LocalTime {
    common::LocalTime {
        hour: i32::from(t.hour()),
        minute: i32::from(t.minute()),
    }
}

fn date_pb(d: Date) -> common::Date {
    common::Date {
        year: i32::from(d.year()),
        month: i32::from(d.month()),
        day: i32::from(d.day()),
    }
}

fn window_pb(w: &WeeklyWindow) -> pb::WeeklyWindow {
    pb::WeeklyWindow {
        days: w.days.iter().map(|d| day_pb(*d) as i32).collect(),
        start: Some(time_pb(w.start)),
        end: Some(time_pb(w.end)),
    }
}

fn contact_pb(c: &Contact) -> pb::Contact {
    pb::Contact {
        name: c.name.clone(),
        url: c.url.clone(),
    }
}

/// A checked policy as the API carries it.
pub fn policy_to_pb(p: &Policy, etag: i64) -> pb::Policy {
    pb::Policy {
        name: p.name.clone(),
        severities: p.severities.iter().map(|s| severity_pb(*s) as i32).collect(),
        levels: p
            .levels
            .iter()
            .map(|l| pb::Level {
                targets: l
                    .targets
                    .iter()
                    .map(|t| pb::Target {
                        kind: t.kind.as_str().to_owned(),
                        name: t.name.clone(),
                        url: t.url.clone().unwrap_or_default(),
                    })
                    .collect(),
                delay: Some(to_proto_duration(l.delay)),
            })
            .collect(),
        repeat: p.repeat,
        pause_rollout_after: p.pause_rollout_after.map(to_proto_duration),
        speedups: p
            .speedups
            .iter()
            .map(|s| pb::Speedup {
                within: Some(to_proto_duration(s.within)),
                percent: s.percent,
            })
            .collect(),
        etag,
    }
}

/// A checked schedule as the API carries it.
pub fn schedule_to_pb(s: &Schedule, etag: i64) -> pb::Schedule {
    pb::Schedule {
        name: s.name.clone(),
        layers: s
            .layers
            .iter()
            .map(|l| pb::Layer {
                name: l.name.clone(),
                level: l.level,
                rotation: Some(pb::Rotation {
                    people: l.rotation.people.clone(),
                    shift_hours: shift_hours(l.rotation.shift_length).unwrap_or(u32::MAX),
                    handoff: Some(time_pb(l.rotation.handoff)),
                    time_zone: l.rotation.time_zone.clone(),
                    start: Some(date_pb(l.rotation.start)),
                }),
                active: l.active.as_ref().map(window_pb),
            })
            .collect(),
        overrides: s
            .overrides
            .iter()
            .map(|o| pb::Override {
                kind: match o.kind {
                    OverrideKind::Add => pb::OverrideKind::Add,
                    OverrideKind::Replace => pb::OverrideKind::Replace,
                    OverrideKind::Remove => pb::OverrideKind::Remove,
                } as i32,
                person: o.person.clone(),
                by: o.by.clone().unwrap_or_default(),
                span: Some(common::TimeRange {
                    start: Some(to_proto_time(o.start)),
                    end: Some(to_proto_time(o.end)),
                }),
            })
            .collect(),
        etag,
    }
}

/// A checked SOP as the API carries it.
pub fn sop_to_pb(s: &Sop, etag: i64) -> pb::Sop {
    pb::Sop {
        id: s.id.clone(),
        title: s.title.clone(),
        applies_to: s.applies_to.iter().map(|k| source_kind_pb(*k) as i32).collect(),
        steps: s
            .steps
            .iter()
            .map(|st| pb::SopStep {
                number: st.number,
                title: st.title.clone(),
                instructions: st.instructions.clone(),
                side: side_pb(st.side) as i32,
                requires_note: st.requires_note,
            })
            .collect(),
        etag,
    }
}

/// A checked person as the API carries them.
pub fn person_to_pb(p: &Person, etag: i64) -> pb::Person {
    pb::Person {
        id: p.id.clone(),
        name: p.name.clone(),
        time_zone: p.time_zone.clone(),
        working_hours: Some(window_pb(&p.working_hours)),
        contacts: p.contacts.iter().map(contact_pb).collect(),
        etag,
    }
}

/// Checked partner contacts as the API carries them.
pub fn partner_to_pb(p: &PartnerContacts, etag: i64) -> pb::PartnerContacts {
    pb::PartnerContacts {
        partner: p.partner.clone(),
        contacts: p.contacts.iter().map(contact_pb).collect(),
        etag,
    }
}

// ---------------------------------------------------------------------
// API to core (for `get`: printed as the file `set -f` reads back).
// ---------------------------------------------------------------------

/// What the service sent does not fit the definition types.
fn bad(what: &str) -> anyhow::Error {
    anyhow::anyhow!("the service sent {what}, which this CLI cannot show; is it a newer version?")
}

/// A severity from the API.
pub fn severity_core(s: i32) -> Option<Severity> {
    match common::Severity::try_from(s).ok()? {
        common::Severity::Sev1 => Some(Severity::Sev1),
        common::Severity::Sev2 => Some(Severity::Sev2),
        common::Severity::Sev3 => Some(Severity::Sev3),
        common::Severity::Sev4 => Some(Severity::Sev4),
        common::Severity::Unspecified => None,
    }
}

fn side_core(s: i32) -> anyhow::Result<Side> {
    match pb::Side::try_from(s) {
        Ok(pb::Side::Partner) => Ok(Side::Partner),
        Ok(pb::Side::Platform) => Ok(Side::Platform),
        _ => Err(bad(&format!("the side {s}"))),
    }
}

fn source_kind_core(k: i32) -> anyhow::Result<SourceKind> {
    Ok(match pb::SourceKind::try_from(k) {
        Ok(pb::SourceKind::Manual) => SourceKind::Manual,
        Ok(pb::SourceKind::RolloutFailure) => SourceKind::RolloutFailure,
        Ok(pb::SourceKind::DeadlineAtRisk) => SourceKind::DeadlineAtRisk,
        Ok(pb::SourceKind::CredentialFailure) => SourceKind::CredentialFailure,
        Ok(pb::SourceKind::Drift) => SourceKind::Drift,
        Ok(pb::SourceKind::Health) => SourceKind::Health,
        _ => return Err(bad(&format!("the source kind {k}"))),
    })
}

fn day_core(d: i32) -> anyhow::Result<Day> {
    let w = common::Weekday::try_from(d).map_err(|_| bad(&format!("the weekday {d}")))?;
    Ok(match w {
        common::Weekday::Monday => Day::Mon,
        common::Weekday::Tuesday => Day::Tue,
        common::Weekday::Wednesday => Day::Wed,
        common::Weekday::Thursday => Day::Thu,
        common::Weekday::Friday => Day::Fri,
        common::Weekday::Saturday => Day::Sat,
        common::Weekday::Sunday => Day::Sun,
        common::Weekday::Unspecified => return Err(bad("an unspecified weekday")),
    })
}

fn time_core(t: Option<&common::LocalTime>) -> anyhow::Result<Time> {
    let t = t.copied().unwrap_or_default();
    let h = i8::try_from(t.hour).ok();
    let m = i8::try_from(t.minute).ok();
    h.zip(m)
        .and_then(|(h, m)| Time::new(h, m, 0, 0).ok())
        .ok_or_else(|| bad(&format!("the time {}:{}", t.hour, t.minute)))
}

fn date_core(d: Option<&common::Date>) -> anyhow::Result<Date> {
    let d = d.copied().unwrap_or_default();
    let parts = (
        i16::try_from(d.year).ok(),
        i8::try_from(d.month).ok(),
        i8::try_from(d.day).ok(),
    );
    match parts {
        (Some(y), Some(m), Some(day)) => {
            Date::new(y, m, day).map_err(|_| bad(&format!("the date {}-{}-{}", d.year, d.month, d.day)))
        }
        _ => Err(bad(&format!("the date {}-{}-{}", d.year, d.month, d.day))),
    }
}

fn window_core(w: &pb::WeeklyWindow) -> anyhow::Result<WeeklyWindow> {
    Ok(WeeklyWindow {
        days: w
            .days
            .iter()
            .map(|d| day_core(*d))
            .collect::<anyhow::Result<_>>()?,
        start: time_core(w.start.as_ref())?,
        end: time_core(w.end.as_ref())?,
    })
}

fn contact_core(c: &pb::Contact) -> Contact {
    Contact {
        name: c.name.clone(),
        url: c.url.clone(),
    }
}

/// A policy from the API, as the file that would set it.
pub fn policy_from_pb(p: &pb::Policy) -> Policy {
    Policy {
        name: p.name.clone(),
        severities: p.severities.iter().filter_map(|s| severity_core(*s)).collect(),
        levels: p
            .levels
            .iter()
            .map(|l| Level {
                targets: l
                    .targets
                    .iter()
                    .map(|t| Target {
                        kind: TargetKind::from(t.kind.as_str()),
                        name: t.name.clone(),
                        url: (!t.url.is_empty()).then(|| t.url.clone()),
                    })
                    .collect(),
                delay: l.delay.as_ref().map(from_proto_duration).unwrap_or_default(),
            })
            .collect(),
        repeat: p.repeat,
        pause_rollout_after: p.pause_rollout_after.as_ref().map(from_proto_duration),
        speedups: p
            .speedups
            .iter()
            .map(|s| Speedup {
                within: s.within.as_ref().map(from_proto_duration).unwrap_or_default(),
                percent: s.percent,
            })
            .collect(),
    }
}

/// A schedule from the API, as the file that would set it.
pub fn schedule_from_pb(s: &pb::Schedule) -> anyhow::Result<Schedule> {
    let mut layers = Vec::new();
    for l in &s.layers {
        let r = l.rotation.clone().unwrap_or_default();
        let shift_length = if r.shift_hours % 24 == 0 && r.shift_hours > 0 {
            ShiftLength::Days(r.shift_hours / 24)
        } else {
            ShiftLength::Hours(r.shift_hours)
        };
        layers.push(Layer {
            name: l.name.clone(),
            level: l.level,
            rotation: Rotation {
                people: r.people.clone(),
                shift_length,
                handoff: time_core(r.handoff.as_ref())?,
                time_zone: r.time_zone.clone(),
                start: date_core(r.start.as_ref())?,
            },
            active: l.active.as_ref().map(window_core).transpose()?,
        });
    }
    let mut overrides = Vec::new();
    for o in &s.overrides {
        let span = o.span.unwrap_or_default();
        let (Some(start), Some(end)) = (
            from_proto_time(span.start.as_ref()),
            from_proto_time(span.end.as_ref()),
        ) else {
            return Err(bad("an override without its span"));
        };
        let kind = match pb::OverrideKind::try_from(o.kind) {
            Ok(pb::OverrideKind::Add) => OverrideKind::Add,
            Ok(pb::OverrideKind::Replace) => OverrideKind::Replace,
            Ok(pb::OverrideKind::Remove) => OverrideKind::Remove,
            _ => return Err(bad(&format!("the override kind {}", o.kind))),
        };
        overrides.push(tilewave_core::escalation::Override {
            kind,
            person: o.person.clone(),
            by: (!o.by.is_empty()).then(|| o.by.clone()),
            start,
            end,
        });
    }
    Ok(Schedule {
        name: s.name.clone(),
        layers,
        overrides,
    })
}

/// An SOP from the API, as the file that would set it.
pub fn sop_from_pb(s: &pb::Sop) -> anyhow::Result<Sop> {
    Ok(Sop {
        id: s.id.clone(),
        title: s.title.clone(),
        applies_to: s
            .applies_to
            .iter()
            .map(|k| source_kind_core(*k))
            .collect::<anyhow::Result<_>>()?,
        steps: s
            .steps
            .iter()
            .map(|st| {
                Ok(SopStep {
                    number: st.number,
                    title: st.title.clone(),
                    instructions: st.instructions.clone(),
                    side: side_core(st.side)?,
                    requires_note: st.requires_note,
                })
            })
            .collect::<anyhow::Result<_>>()?,
    })
}

/// A person from the API, as the file that would set them.
pub fn person_from_pb(p: &pb::Person) -> anyhow::Result<Person> {
    Ok(Person {
        id: p.id.clone(),
        name: p.name.clone(),
        time_zone: p.time_zone.clone(),
        working_hours: match &p.working_hours {
            Some(w) => window_core(w)?,
            None => WeeklyWindow::office_hours(),
        },
        contacts: p.contacts.iter().map(contact_core).collect(),
    })
}
