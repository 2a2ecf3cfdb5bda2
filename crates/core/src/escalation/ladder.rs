//! Escalation policies and the ladder's progress ([`step`]).
//!
//! A [`Policy`] is ordered levels, each paging its targets (a person, an
//! on-call schedule, a webhook) and then waiting its `delay` before the
//! next level; after the last level the ladder starts over `repeat` more
//! times. An unacknowledged SEV1 on a roll-out pauses it once the policy's
//! `pause_rollout_after` has passed since the ladder started.
//!
//! **How the service drives it.** The ladder's progress lives in the
//! incident ([`Escalation`]). Whenever a durable timer fires (and after
//! every [`super::Effect::Escalate`]) the service calls [`step`] and writes,
//! in **one** fenced transaction, the incident it returns, its
//! notifications into the outbox (keyed by [`Notification::key`], so a
//! replayed step writes nothing new) and the next timer. `step` pages at
//! most one level a call: if the returned timer is not after `now` (the
//! service was down across several delays), call it again. Levels are due
//! at the previous level's due time plus its delay, not at the call's
//! time, so a restart keeps the schedule. Acknowledging (or mitigating, or
//! resolving) stops the ladder and cancels the undelivered notifications
//! ([`super::Effect::CancelPending`]).
//!
//! **Urgency.** SEV1 and SEV2 page at once. SEV3 and SEV4 (low urgency)
//! never page a person outside their working hours in their zone: the
//! notification's [`Notification::deliver_at`] is the start of their next
//! working period. Webhook targets have no hours and are sent at once.

use std::collections::BTreeSet;
use std::fmt;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Effect;
use super::directory::{Directory, check_url};
use super::incident::{EntryKind, Incident, SYSTEM_ACTOR, State};
use super::kinds::{Severity, Urgency};
use super::local::zone;
use super::problems::Problems;
use super::schedule::{Gap, coverage, who_is_on_call};
use crate::quote::quoted;

/// The most times a ladder may repeat.
pub const MAX_REPEAT: u32 = 20;

/// What kind of target a level pages.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TargetKind {
    /// A person, by id.
    Person,
    /// Whoever is on call on a schedule, by name.
    Schedule,
    /// A webhook, by name, at `url`.
    Webhook,
    /// The contacts of the incident's partner, for partner-side incidents
    /// (no name needed).
    Partner,
    /// Anything else, as written (a definition error).
    Unknown(String),
}

impl TargetKind {
    /// As written in definitions.
    pub fn as_str(&self) -> &str {
        match self {
            TargetKind::Person => "person",
            TargetKind::Schedule => "schedule",
            TargetKind::Webhook => "webhook",
            TargetKind::Partner => "partner",
            TargetKind::Unknown(s) => s,
        }
    }
}

impl From<&str> for TargetKind {
    fn from(s: &str) -> Self {
        match s.trim() {
            "person" => TargetKind::Person,
            "schedule" => TargetKind::Schedule,
            "webhook" => TargetKind::Webhook,
            "partner" => TargetKind::Partner,
            _ => TargetKind::Unknown(s.to_string()),
        }
    }
}

impl Serialize for TargetKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TargetKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Ok(TargetKind::from(s.as_str()))
    }
}

/// Whom a level pages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Person, schedule, webhook or partner.
    pub kind: TargetKind,
    /// The person's id, the schedule's name, or the webhook's name (which
    /// keys its signing secret); unused for the partner.
    #[serde(default)]
    pub name: String,
    /// The webhook's http(s) URL (webhooks only).
    #[serde(default)]
    pub url: Option<String>,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind.as_str(), quoted(&self.name))
    }
}

/// One rung of a ladder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Level {
    /// Whom it pages.
    pub targets: Vec<Target>,
    /// How long nobody acknowledging waits before the next level.
    pub delay: SignedDuration,
}

/// An escalation policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Its name ("default").
    pub name: String,
    /// Incidents of these severities use it ([`policy_for`]).
    #[serde(default)]
    pub severities: Vec<Severity>,
    /// The levels, first paged first.
    pub levels: Vec<Level>,
    /// After the last level, start over this many more times (0: once).
    #[serde(default)]
    pub repeat: u32,
    /// An unacknowledged SEV1 on a roll-out pauses it this long after the
    /// ladder started; none: never.
    #[serde(default)]
    pub pause_rollout_after: Option<SignedDuration>,
    /// Faster escalation near the incident's GA deadline ("nearer the
    /// deadline, faster"); the tightest matching rule applies.
    #[serde(default)]
    pub speedups: Vec<Speedup>,
}

/// Shorter delays near the GA deadline: when the deadline is at most
/// `within` away (and not past), every delay is `percent` of itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Speedup {
    /// How near the deadline it applies.
    pub within: SignedDuration,
    /// The delays' share, 1 to 100 (50: twice as fast).
    pub percent: u32,
}

impl Policy {
    /// The delay of `level` when paged at `now` for an incident with
    /// `deadline`: the level's own, or shortened by the tightest
    /// [`Speedup`] whose window holds the deadline.
    pub fn delay(&self, level: &Level, deadline: Option<Timestamp>, now: Timestamp) -> SignedDuration {
        let Some(remaining) = deadline
            .map(|d| d.duration_since(now))
            .filter(|r| *r > SignedDuration::ZERO)
        else {
            return level.delay;
        };
        self.speedups
            .iter()
            .filter(|s| remaining <= s.within)
            .min_by_key(|s| s.within)
            .and_then(|s| {
                let percent = i32::try_from(s.percent.clamp(1, 100)).ok()?;
                level.delay.checked_mul(percent)?.checked_div(100)
            })
            .unwrap_or(level.delay)
    }
}

/// The policy for an incident of `severity`: the first listing it, else
/// the one named "default".
pub fn policy_for(policies: &[Policy], severity: Severity) -> Option<&Policy> {
    policies
        .iter()
        .find(|p| p.severities.contains(&severity))
        .or_else(|| policies.iter().find(|p| p.name == "default"))
}

/// Where an incident's ladder stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ladder {
    /// Level `level` (from 0) of round `round` (from 0) is paged at `due`.
    /// A `level` past the policy's last means the ladder ran out then.
    Pending {
        /// The round.
        round: u32,
        /// The level.
        level: usize,
        /// When.
        due: Timestamp,
    },
    /// Every level of every round was paged and the last delay passed.
    Exhausted {
        /// When it ran out.
        at: Timestamp,
    },
    /// Stopped: acknowledged, mitigated or resolved.
    Stopped {
        /// When.
        at: Timestamp,
    },
}

/// An incident's escalation: which policy, where its ladder stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalation {
    /// The policy's name.
    pub policy: String,
    /// When this run of the ladder started (opening or reopening).
    pub started_at: Timestamp,
    /// Which run this is (0 when opened, +1 each reopen): part of every
    /// notification key, so a reopened incident's pages are new messages.
    pub cycle: u32,
    /// Where the ladder stands.
    pub ladder: Ladder,
    /// Whether the unacknowledged-SEV1 rule already paused the roll-out in
    /// this run.
    pub rollout_paused: bool,
}

impl Escalation {
    /// A ladder starting at `now` with the first level due at once.
    pub fn start(policy: &str, now: Timestamp, cycle: u32) -> Self {
        Self {
            policy: policy.to_string(),
            started_at: now,
            cycle,
            ladder: Ladder::Pending {
                round: 0,
                level: 0,
                due: now,
            },
            rollout_paused: false,
        }
    }

    /// The same escalation, stopped at `at` (kept if it already was).
    pub fn stopped(&self, at: Timestamp) -> Self {
        let ladder = match self.ladder {
            Ladder::Stopped { at } => Ladder::Stopped { at },
            Ladder::Pending { .. } | Ladder::Exhausted { .. } => Ladder::Stopped { at },
        };
        Self {
            ladder,
            ..self.clone()
        }
    }
}

/// Who a notification goes to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Recipient {
    /// One contact of a person.
    Person {
        /// The person's id.
        person: String,
        /// The contact's name.
        contact: String,
        /// The schedule they were paged through, if any.
        via: Option<String>,
    },
    /// A contact of the incident's partner.
    Partner {
        /// The partner's id.
        partner: String,
        /// The contact's name.
        contact: String,
    },
    /// A webhook target of the policy.
    Webhook {
        /// Its name.
        name: String,
    },
}

/// One message to write to the outbox: one HTTP POST to `url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The idempotency key, sent with the message so a receiver drops
    /// duplicates: `INC-42/c0/r0/l1/person/alice/phone` (incident, cycle,
    /// round, level, recipient).
    pub key: String,
    /// The incident.
    pub incident: String,
    /// The ladder's round (from 0).
    pub round: u32,
    /// The level (from 0).
    pub level: usize,
    /// Who.
    pub recipient: Recipient,
    /// Where to POST.
    pub url: String,
    /// The incident's severity then.
    pub severity: Severity,
    /// Its urgency.
    pub urgency: Urgency,
    /// When to send it: `now`, or for low urgency the start of the
    /// person's next working period.
    pub deliver_at: Timestamp,
    /// One line for people.
    pub summary: String,
}

/// What [`step`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The incident with its ladder advanced and timeline entries added
    /// (unchanged when nothing was due).
    pub incident: Incident,
    /// The notifications to write to the outbox, in the same transaction.
    pub notifications: Vec<Notification>,
    /// Only [`Effect::PauseRollout`] (an unacknowledged SEV1 past the
    /// policy's limit).
    pub effects: Vec<Effect>,
    /// When to call `step` again; `None`: never (stopped or exhausted).
    pub next_timer: Option<Timestamp>,
}

impl Step {
    /// Whether the step changed anything (so there is something to write).
    pub fn changed(&self, before: &Incident) -> bool {
        self.incident != *before
    }
}

/// When the unacknowledged-SEV1 rule pauses the incident's roll-out, if it
/// applies and has not yet.
fn pause_due(policy: &Policy, i: &Incident) -> Option<(Timestamp, String)> {
    if i.severity != Severity::Sev1 || i.escalation.rollout_paused {
        return None;
    }
    let rollout = i.rollout.clone()?;
    let at = i
        .escalation
        .started_at
        .checked_add(policy.pause_rollout_after?)
        .ok()?;
    Some((at, rollout))
}

/// Advances `incident`'s ladder under `policy` at `now`: pages the level
/// due (if any), pauses the roll-out when the SEV1 rule says so, and says
/// when to come back. Only a TRIGGERED incident escalates; for any other
/// state nothing changes and there is no timer.
pub fn step(policy: &Policy, incident: &Incident, directory: &Directory, now: Timestamp) -> Step {
    let mut i = incident.clone();
    let mut notifications = Vec::new();
    let mut effects = Vec::new();
    match incident.state {
        State::Acknowledged | State::Mitigated | State::Resolved => {
            return Step {
                incident: i,
                notifications,
                effects,
                next_timer: None,
            };
        }
        State::Triggered => {}
    }
    if let Some((at, rollout)) = pause_due(policy, &i).filter(|(at, _)| *at <= now) {
        i.escalation.rollout_paused = true;
        i.log(
            now,
            SYSTEM_ACTOR,
            EntryKind::RolloutPaused,
            format!(
                "SEV1 unacknowledged since {} (policy {} pauses after {:#}): pausing roll-out {}",
                i.escalation.started_at,
                quoted(&policy.name),
                at.duration_since(i.escalation.started_at),
                quoted(&rollout)
            ),
        );
        effects.push(Effect::PauseRollout { rollout });
    }
    match i.escalation.ladder {
        Ladder::Pending { round, level, due } if due <= now => {
            notifications = fire(policy, &mut i, directory, round, level, due, now);
        }
        Ladder::Pending { .. } | Ladder::Exhausted { .. } | Ladder::Stopped { .. } => {}
    }
    let ladder_timer = match i.escalation.ladder {
        Ladder::Pending { due, .. } => Some(due),
        Ladder::Exhausted { .. } | Ladder::Stopped { .. } => None,
    };
    let pause_timer = pause_due(policy, &i).map(|(at, _)| at);
    Step {
        incident: i,
        notifications,
        effects,
        next_timer: [ladder_timer, pause_timer].into_iter().flatten().min(),
    }
}

/// Pages level `level` of round `round` (due at `due`) and moves the
/// ladder on.
fn fire(
    policy: &Policy,
    i: &mut Incident,
    dir: &Directory,
    round: u32,
    level: usize,
    due: Timestamp,
    now: Timestamp,
) -> Vec<Notification> {
    let Some(lvl) = policy.levels.get(level) else {
        i.escalation.ladder = Ladder::Exhausted { at: now };
        i.log(
            now,
            SYSTEM_ACTOR,
            EntryKind::Exhausted,
            format!(
                "nobody acknowledged: policy {} paged all {} levels {} time(s); the ladder stops",
                quoted(&policy.name),
                policy.levels.len(),
                round + 1
            ),
        );
        return Vec::new();
    };
    let (notifications, mut notes) = page(i, lvl, dir, round, level, now);
    let delay = policy.delay(lvl, i.deadline, now);
    if delay != lvl.delay {
        notes.push(format!(
            "next level in {delay:#} instead of {:#}: the GA deadline is near",
            lvl.delay
        ));
    }
    let next_due = due.checked_add(delay).unwrap_or(due);
    i.escalation.ladder = if level + 1 < policy.levels.len() {
        Ladder::Pending {
            round,
            level: level + 1,
            due: next_due,
        }
    } else if round < policy.repeat {
        Ladder::Pending {
            round: round + 1,
            level: 0,
            due: next_due,
        }
    } else {
        // Past the last level: the ladder runs out when its delay passes.
        Ladder::Pending {
            round,
            level: level + 1,
            due: next_due,
        }
    };
    let kind = if round == 0 && level == 0 {
        EntryKind::Paged
    } else {
        EntryKind::Escalated
    };
    let mut message = format!(
        "level {} (round {} of {}, {}): ",
        level + 1,
        round + 1,
        policy.repeat + 1,
        i.severity.urgency()
    );
    message.push_str(&notes.join("; "));
    i.log(now, SYSTEM_ACTOR, kind, message);
    notifications
}

/// The notifications for a level's targets, and one note each for the
/// timeline.
fn page(
    i: &Incident,
    lvl: &Level,
    dir: &Directory,
    round: u32,
    level: usize,
    now: Timestamp,
) -> (Vec<Notification>, Vec<String>) {
    let mut out: Vec<Notification> = Vec::new();
    let mut notes = Vec::new();
    let base = Notification {
        key: String::new(),
        incident: i.id.clone(),
        round,
        level,
        recipient: Recipient::Webhook { name: String::new() },
        url: String::new(),
        severity: i.severity,
        urgency: i.severity.urgency(),
        deliver_at: now,
        summary: format!(
            "{} {}: {} (level {}){}",
            i.severity,
            i.tile,
            i.title,
            level + 1,
            i.sop.as_ref().map(|s| format!(", SOP: {s}")).unwrap_or_default()
        ),
    };
    let prefix = format!("{}/c{}/r{round}/l{level}", i.id, i.escalation.cycle);
    for t in &lvl.targets {
        match &t.kind {
            TargetKind::Webhook => {
                let key = format!("{prefix}/webhook/{}", t.name);
                if out.iter().any(|n| n.key == key) {
                    continue;
                }
                out.push(Notification {
                    key,
                    recipient: Recipient::Webhook { name: t.name.clone() },
                    url: t.url.clone().unwrap_or_default(),
                    ..base.clone()
                });
                notes.push(format!("webhook {}", quoted(&t.name)));
            }
            TargetKind::Person => {
                notes.push(page_person(&mut out, &base, &prefix, dir, &t.name, None, now));
            }
            TargetKind::Schedule => match dir.schedules.get(&t.name) {
                None => notes.push(format!("no schedule {}: nobody paged", quoted(&t.name))),
                Some(s) => match who_is_on_call(s, now) {
                    Err(_) => notes.push(format!("schedule {} is not valid: nobody paged", quoted(&t.name))),
                    Ok(on) if on.is_empty() => {
                        notes.push(format!("nobody is on call on schedule {}", quoted(&t.name)))
                    }
                    Ok(on) => {
                        for c in on {
                            let via = Some(t.name.clone());
                            notes.push(page_person(&mut out, &base, &prefix, dir, &c.person, via, now));
                        }
                    }
                },
            },
            TargetKind::Partner => notes.push(page_partner(&mut out, &base, &prefix, i, dir)),
            TargetKind::Unknown(k) => {
                notes.push(format!("unknown target kind {}: nobody paged", quoted(k)));
            }
        }
    }
    (out, notes)
}

/// Adds a notification per contact of the incident's partner (sent at
/// once: partners keep their own hours); returns the timeline note.
fn page_partner(
    out: &mut Vec<Notification>,
    base: &Notification,
    prefix: &str,
    i: &Incident,
    dir: &Directory,
) -> String {
    let partner = match (i.side, &i.partner) {
        (super::kinds::Side::Platform, _) => {
            return "a platform-side incident: the partner is not paged".to_string();
        }
        (super::kinds::Side::Partner, None) => {
            return "the incident names no partner: nobody paged".to_string();
        }
        (super::kinds::Side::Partner, Some(p)) => p,
    };
    let contacts = dir.partners.get(partner).map(Vec::as_slice).unwrap_or_default();
    if contacts.is_empty() {
        return format!("partner {}: no contacts, not paged", quoted(partner));
    }
    for c in contacts {
        let key = format!("{prefix}/partner/{partner}/{}", c.name);
        if out.iter().any(|n| n.key == key) {
            continue;
        }
        out.push(Notification {
            key,
            recipient: Recipient::Partner {
                partner: partner.clone(),
                contact: c.name.clone(),
            },
            url: c.url.clone(),
            ..base.clone()
        });
    }
    format!("paged partner {}", quoted(partner))
}

/// Adds a notification per contact of `person`; returns the timeline note.
fn page_person(
    out: &mut Vec<Notification>,
    base: &Notification,
    prefix: &str,
    dir: &Directory,
    person: &str,
    via: Option<String>,
    now: Timestamp,
) -> String {
    let who = match &via {
        Some(s) => format!("{} (on call on {})", quoted(person), quoted(s)),
        None => quoted(person).to_string(),
    };
    let Some(p) = dir.people.get(person) else {
        return format!("{who}: no such person, not paged");
    };
    if p.contacts.is_empty() {
        return format!("{who}: no contact method, not paged");
    }
    let deliver_at = match base.urgency {
        Urgency::High => now,
        Urgency::Low => zone(&p.time_zone)
            .ok()
            .and_then(|tz| p.working_hours.next_start(&tz, now))
            .unwrap_or(now),
    };
    for c in &p.contacts {
        let key = format!("{prefix}/person/{person}/{}", c.name);
        if out.iter().any(|n| n.key == key) {
            continue;
        }
        out.push(Notification {
            key,
            recipient: Recipient::Person {
                person: person.to_string(),
                contact: c.name.clone(),
                via: via.clone(),
            },
            url: c.url.clone(),
            deliver_at,
            ..base.clone()
        });
    }
    if deliver_at > now {
        format!(
            "{who}: deferred to {deliver_at}, the start of their working hours ({} {})",
            p.working_hours, p.time_zone
        )
    } else {
        format!("paged {who}")
    }
}

/// Checks a policy and returns every problem with its path: no name, no
/// levels, a level without targets or with a delay not more than zero, an
/// unknown target kind, a webhook without an http(s) URL, a URL on a
/// person or schedule, a repeat above [`MAX_REPEAT`], a zero pause limit,
/// and, given a directory, a target naming no known person or schedule.
pub fn validate_policy(policy: &Policy, directory: Option<&Directory>) -> Result<(), Problems> {
    let mut p = Problems::default();
    if policy.name.trim().is_empty() {
        p.push("name", "a policy needs a name");
    }
    if policy.levels.is_empty() {
        p.push("levels", "a policy needs at least one level");
    }
    for (i, level) in policy.levels.iter().enumerate() {
        let path = format!("levels[{i}]");
        if level.delay <= SignedDuration::ZERO {
            p.push(format!("{path}.delay"), "must be more than zero");
        }
        if level.targets.is_empty() {
            p.push(format!("{path}.targets"), "a level needs at least one target");
        }
        for (j, t) in level.targets.iter().enumerate() {
            check_target(&mut p, &format!("{path}.targets[{j}]"), t, directory);
        }
    }
    if policy.repeat > MAX_REPEAT {
        p.push("repeat", format!("at most {MAX_REPEAT}; got {}", policy.repeat));
    }
    if policy
        .pause_rollout_after
        .is_some_and(|d| d <= SignedDuration::ZERO)
    {
        p.push("pause_rollout_after", "must be more than zero");
    }
    for (i, s) in policy.speedups.iter().enumerate() {
        if s.within <= SignedDuration::ZERO {
            p.push(format!("speedups[{i}].within"), "must be more than zero");
        }
        if !(1..=100).contains(&s.percent) {
            p.push(
                format!("speedups[{i}].percent"),
                format!(
                    "must be 1 to 100 (the share of each delay kept); got {}",
                    s.percent
                ),
            );
        }
    }
    p.into_result(())
}

/// Where `policy` would reach nobody at all within `[from, to)`: the
/// spans when every schedule it pages has nobody on call and it has no
/// person with a contact and no webhook (for the scheduler's pre-flight of
/// a launch window). Any level counts: the first may be empty if a later
/// one reaches someone. An unknown or invalid schedule reaches nobody.
pub fn policy_coverage(policy: &Policy, dir: &Directory, from: Timestamp, to: Timestamp) -> Vec<Gap> {
    if from >= to {
        return Vec::new();
    }
    let targets = policy.levels.iter().flat_map(|l| l.targets.iter());
    let always = targets.clone().any(|t| match &t.kind {
        TargetKind::Webhook => true,
        TargetKind::Person => dir.people.get(&t.name).is_some_and(|p| !p.contacts.is_empty()),
        TargetKind::Schedule | TargetKind::Partner | TargetKind::Unknown(_) => false,
    });
    if always {
        return Vec::new();
    }
    let names: BTreeSet<&String> = targets
        .filter(|t| t.kind == TargetKind::Schedule)
        .map(|t| &t.name)
        .collect();
    let whole = || vec![Gap { start: from, end: to }];
    names.into_iter().fold(whole(), |gaps, name| {
        let theirs = dir
            .schedules
            .get(name)
            .and_then(|s| coverage(s, from, to).ok())
            .map_or_else(whole, |c| c.gaps);
        intersect(&gaps, &theirs)
    })
}

/// The spans in both sorted, disjoint lists.
fn intersect(a: &[Gap], b: &[Gap]) -> Vec<Gap> {
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let start = a[i].start.max(b[j].start);
        let end = a[i].end.min(b[j].end);
        if start < end {
            out.push(Gap { start, end });
        }
        if a[i].end < b[j].end {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

fn check_target(p: &mut Problems, path: &str, t: &Target, dir: Option<&Directory>) {
    if t.name.trim().is_empty() && t.kind != TargetKind::Partner {
        p.push(format!("{path}.name"), "must not be empty");
    }
    match (&t.kind, &t.url) {
        (TargetKind::Webhook, Some(url)) => check_url(p, format!("{path}.url"), url),
        (TargetKind::Webhook, None) => p.push(format!("{path}.url"), "a webhook target needs an http(s) URL"),
        (TargetKind::Person | TargetKind::Schedule | TargetKind::Partner, Some(_)) => p.push(
            format!("{path}.url"),
            format!("only a webhook target has a url; a {} has none", t.kind.as_str()),
        ),
        (TargetKind::Person | TargetKind::Schedule | TargetKind::Partner, None) => {}
        (TargetKind::Unknown(k), _) => p.push(
            format!("{path}.kind"),
            format!(
                "unknown target kind {}; use person, schedule, webhook or partner",
                quoted(k)
            ),
        ),
    }
    let Some(dir) = dir else { return };
    let known = |names: BTreeSet<&String>| {
        names
            .into_iter()
            .map(|n| quoted(n).to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match &t.kind {
        TargetKind::Person if !dir.people.contains_key(&t.name) && !t.name.trim().is_empty() => p.push(
            format!("{path}.name"),
            format!(
                "no person {}; known: {}",
                quoted(&t.name),
                known(dir.people.keys().collect())
            ),
        ),
        TargetKind::Schedule if !dir.schedules.contains_key(&t.name) && !t.name.trim().is_empty() => p.push(
            format!("{path}.name"),
            format!(
                "no schedule {}; known: {}",
                quoted(&t.name),
                known(dir.schedules.keys().collect())
            ),
        ),
        TargetKind::Person
        | TargetKind::Schedule
        | TargetKind::Webhook
        | TargetKind::Partner
        | TargetKind::Unknown(_) => {}
    }
}
