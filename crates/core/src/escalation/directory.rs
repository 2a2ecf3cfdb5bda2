//! The people, schedules and partner contacts that escalation targets
//! refer to, and their validation.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::local::{WeeklyWindow, zone};
use super::problems::Problems;
use super::schedule::{Schedule, validate_schedule};
use crate::quote::quoted;

/// A way to reach a person: a webhook (the only contact method here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    /// Its name, unique for the person (keys its signing secret).
    pub name: String,
    /// The http(s) URL receiving the page.
    pub url: String,
}

fn default_hours() -> WeeklyWindow {
    WeeklyWindow::office_hours()
}

/// A person who can be paged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Person {
    /// Their id, used in rotations and targets.
    pub id: String,
    /// Their name, for people.
    #[serde(default)]
    pub name: String,
    /// Their IANA zone.
    pub time_zone: String,
    /// When low-urgency pages may reach them, in their zone (default
    /// Monday to Friday 09:00 to 17:00).
    #[serde(default = "default_hours")]
    pub working_hours: WeeklyWindow,
    /// How to reach them; each gets its own notification.
    #[serde(default)]
    pub contacts: Vec<Contact>,
}

/// The people and schedules targets refer to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Directory {
    /// People by id.
    pub people: BTreeMap<String, Person>,
    /// Schedules by name.
    pub schedules: BTreeMap<String, Schedule>,
    /// Partner contacts by partner id: partner-side incidents page them
    /// through [`super::TargetKind::Partner`] targets.
    pub partners: BTreeMap<String, Vec<Contact>>,
}

/// Whether `url` is an http(s) URL with a host.
pub fn is_http_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    match rest {
        Some(rest) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
            !host.is_empty() && !host.contains(char::is_whitespace) && !url.contains(char::is_whitespace)
        }
        None => false,
    }
}

pub(super) fn check_url(p: &mut Problems, path: String, url: &str) {
    if is_http_url(url) {
        return;
    }
    // Webhook URLs often carry a token: name the scheme, never echo it all.
    let why = match url.split_once("://") {
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") => {
            "has no host".to_string()
        }
        Some((scheme, _)) => format!("uses the scheme {}, not http or https", quoted(scheme)),
        None => "has no http:// or https:// scheme".to_string(),
    };
    p.push(
        path,
        format!("the URL {why}; give one such as \"https://hooks.example.com/page\""),
    );
}

/// Checks a whole directory and returns every problem with its path:
/// each person ([`validate_person`], under `people["alice"].`, whose key
/// must be their id), each schedule ([`validate_schedule`], under
/// `schedules["primary"].`, whose key must be its name), and every person a
/// schedule names must be in `people`.
pub fn validate_directory(dir: &Directory) -> Result<(), Problems> {
    let mut p = Problems::default();
    for (key, person) in &dir.people {
        let prefix = format!("people[{}].", quoted(key));
        if *key != person.id {
            p.push(
                format!("{prefix}id"),
                format!("is {} under the key {}", quoted(&person.id), quoted(key)),
            );
        }
        if let Err(e) = validate_person(person) {
            p.extend_prefixed(&prefix, e);
        }
    }
    for (key, s) in &dir.schedules {
        let prefix = format!("schedules[{}].", quoted(key));
        if *key != s.name {
            p.push(
                format!("{prefix}name"),
                format!("is {} under the key {}", quoted(&s.name), quoted(key)),
            );
        }
        if let Err(e) = validate_schedule(s) {
            p.extend_prefixed(&prefix, e);
        }
        let mut unknown = |path: String, person: &str| {
            if !person.trim().is_empty() && !dir.people.contains_key(person) {
                p.push(format!("{prefix}{path}"), format!("no person {}", quoted(person)));
            }
        };
        for (i, l) in s.layers.iter().enumerate() {
            for (j, person) in l.rotation.people.iter().enumerate() {
                unknown(format!("layers[{i}].rotation.people[{j}]"), person);
            }
        }
        for (i, o) in s.overrides.iter().enumerate() {
            unknown(format!("overrides[{i}].person"), &o.person);
            if let Some(by) = &o.by {
                unknown(format!("overrides[{i}].by"), by);
            }
        }
    }
    p.into_result(())
}

/// Checks a person and returns every problem with its path: no id, an
/// unknown zone, a contact without a name or an http(s) URL, two contacts
/// of one name.
pub fn validate_person(person: &Person) -> Result<(), Problems> {
    let mut p = Problems::default();
    if person.id.trim().is_empty() {
        p.push("id", "a person needs an id");
    }
    if let Err(m) = zone(&person.time_zone) {
        p.push("time_zone", m);
    }
    let mut names = BTreeSet::new();
    for (i, c) in person.contacts.iter().enumerate() {
        if c.name.trim().is_empty() {
            p.push(format!("contacts[{i}].name"), "must not be empty");
        } else if !names.insert(c.name.as_str()) {
            p.push(
                format!("contacts[{i}].name"),
                format!("{} names two contacts; names must be unique", quoted(&c.name)),
            );
        }
        check_url(&mut p, format!("contacts[{i}].url"), &c.url);
    }
    p.into_result(())
}
