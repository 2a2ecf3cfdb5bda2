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

use jiff::civil::Time;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tilewave_core::escalation::directory::is_http_url;
use tilewave_core::escalation::schedule::ShiftLength;
use tilewave_core::escalation::{Contact, Person, Policy, Problems, Schedule, Sop};
use tilewave_core::quote::quoted;
use tilewave_proto::escalation::v1 as pb;

use crate::error::CliError;

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

/// A shift's length in hours; `None` when it overflows what the API holds.
fn shift_hours(s: ShiftLength) -> Option<u32> {
    match s {
        ShiftLength::Hours(h) => Some(h),
        ShiftLength::Days(d) => d.checked_mul(24),
    }
}

// ---------------------------------------------------------------------
// Core to API and back: `tilewave_service::escalation`, the conversion the
// escalation service uses too (one piece of code for both ends).
// ---------------------------------------------------------------------

use tilewave_service::escalation as wire;

/// A checked policy as the API carries it.
pub fn policy_to_pb(p: &Policy, etag: i64) -> pb::Policy {
    wire::policy_to_wire(p, etag)
}

/// A checked schedule as the API carries it.
pub fn schedule_to_pb(s: &Schedule, etag: i64) -> pb::Schedule {
    wire::schedule_to_wire(s, etag)
}

/// A checked SOP as the API carries it.
pub fn sop_to_pb(s: &Sop, etag: i64) -> pb::Sop {
    wire::sop_to_wire(s, etag)
}

/// A checked person as the API carries them.
pub fn person_to_pb(p: &Person, etag: i64) -> pb::Person {
    wire::person_to_wire(p, etag)
}

/// Checked partner contacts as the API carries them.
pub fn partner_to_pb(p: &PartnerContacts, etag: i64) -> pb::PartnerContacts {
    pb::PartnerContacts {
        partner: p.partner.clone(),
        contacts: wire::contacts_to_wire(&p.contacts),
        etag,
    }
}

/// What the service sent does not fit the definition types.
fn bad(e: wire::Invalid) -> anyhow::Error {
    anyhow::anyhow!("the service sent a definition this CLI cannot show ({e}); is it a newer version?")
}

/// A policy from the API, as the file that would set it.
pub fn policy_from_pb(p: &pb::Policy) -> anyhow::Result<Policy> {
    wire::policy(p).map_err(bad)
}

/// A schedule from the API, as the file that would set it.
pub fn schedule_from_pb(s: &pb::Schedule) -> anyhow::Result<Schedule> {
    wire::schedule(s).map_err(bad)
}

/// An SOP from the API, as the file that would set it.
pub fn sop_from_pb(s: &pb::Sop) -> anyhow::Result<Sop> {
    Ok(wire::sop(s))
}

/// A person from the API, as the file that would set them.
pub fn person_from_pb(p: &pb::Person) -> anyhow::Result<Person> {
    wire::person(p).map_err(bad)
}
