//! Incidents: what they hold, how one opens ([`open`]), whether an event
//! folds into an existing one or opens a new one ([`route`]), and the GA
//! deadline's pull on their severity ([`next_rerate`]). What people and
//! events do to an open incident is [`super::handle`].

use std::fmt;

use jiff::Timestamp;

use super::kinds::{Severity, Side, Source};
use super::ladder::Escalation;
use super::problems::Problems;
use super::sop::Sop;
use super::{Effect, Transition};
use crate::quote::quoted;

/// The actor of what the service does by itself (pages, re-rating,
/// folded events).
pub const SYSTEM_ACTOR: &str = "system:escalation";

/// Where an incident stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Open and not acknowledged: the ladder escalates.
    Triggered,
    /// Someone owns it; the ladder stopped.
    Acknowledged,
    /// The impact is contained; the cause is not fixed yet.
    Mitigated,
    /// Over. A new event of the same failure opens a new, linked incident.
    Resolved,
}

impl State {
    /// The upper-snake name ("TRIGGERED").
    pub fn name(self) -> &'static str {
        match self {
            State::Triggered => "TRIGGERED",
            State::Acknowledged => "ACKNOWLEDGED",
            State::Mitigated => "MITIGATED",
            State::Resolved => "RESOLVED",
        }
    }

    /// Whether the incident is open (not resolved).
    pub fn is_open(self) -> bool {
        match self {
            State::Triggered | State::Acknowledged | State::Mitigated => true,
            State::Resolved => false,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a timeline entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// The incident opened.
    Opened,
    /// The first level of the ladder was paged.
    Paged,
    /// Nobody acknowledged in time: a further level (or round) was paged.
    Escalated,
    /// The ladder ran out with nobody acknowledging.
    Exhausted,
    /// Someone acknowledged.
    Acknowledged,
    /// A note.
    Note,
    /// An SOP step was done.
    StepCompleted,
    /// An SOP step was skipped, with a reason.
    StepSkipped,
    /// A mitigating action was taken.
    Mitigated,
    /// Resolved.
    Resolved,
    /// Reopened.
    Reopened,
    /// The same failure again, folded into this incident.
    Event,
    /// The severity rose (the GA deadline nears, or a worse event).
    Rerated,
    /// An unacknowledged SEV1 paused its roll-out.
    RolloutPaused,
    /// A page reached its receiver.
    Delivered,
    /// A page's delivery failed (retried, or given up).
    DeliveryFailed,
}

impl EntryKind {
    /// The upper-snake name ("STEP_COMPLETED").
    pub fn name(self) -> &'static str {
        match self {
            EntryKind::Opened => "OPENED",
            EntryKind::Paged => "PAGED",
            EntryKind::Escalated => "ESCALATED",
            EntryKind::Exhausted => "EXHAUSTED",
            EntryKind::Acknowledged => "ACKNOWLEDGED",
            EntryKind::Note => "NOTE",
            EntryKind::StepCompleted => "STEP_COMPLETED",
            EntryKind::StepSkipped => "STEP_SKIPPED",
            EntryKind::Mitigated => "MITIGATED",
            EntryKind::Resolved => "RESOLVED",
            EntryKind::Reopened => "REOPENED",
            EntryKind::Event => "EVENT",
            EntryKind::Rerated => "RERATED",
            EntryKind::RolloutPaused => "ROLLOUT_PAUSED",
            EntryKind::Delivered => "DELIVERED",
            EntryKind::DeliveryFailed => "DELIVERY_FAILED",
        }
    }
}

/// One entry of an incident's timeline: every change has one (the audit
/// log records the same).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// When (domain time).
    pub at: Timestamp,
    /// Who: a person, or [`SYSTEM_ACTOR`].
    pub actor: String,
    /// What kind of change.
    pub kind: EntryKind,
    /// What happened, for people.
    pub message: String,
}

/// Who did something, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    /// Who.
    pub by: String,
    /// When.
    pub at: Timestamp,
}

/// Where one SOP step stands in an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepStatus {
    /// Not done yet.
    Open,
    /// Done.
    Done {
        /// Who and when.
        stamp: Stamp,
        /// What was found (required by steps with `requires_note`).
        note: Option<String>,
    },
    /// Deliberately not done.
    Skipped {
        /// Who and when.
        stamp: Stamp,
        /// Why.
        reason: String,
    },
}

impl StepStatus {
    /// "open", "done" or "skipped".
    pub fn name(&self) -> &'static str {
        match self {
            StepStatus::Open => "open",
            StepStatus::Done { .. } => "done",
            StepStatus::Skipped { .. } => "skipped",
        }
    }
}

/// One SOP step of an incident, copied from the SOP when it opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepProgress {
    /// The step's number.
    pub number: u32,
    /// Its title.
    pub title: String,
    /// Who does it.
    pub side: Side,
    /// Completing it needs a note.
    pub requires_note: bool,
    /// Where it stands.
    pub status: StepStatus,
}

/// A mitigating action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Pause the incident's roll-out ([`Effect::PauseRollout`]).
    PauseRollout,
    /// Remove the tile from regions: a roll-back there through the rollout
    /// service ([`Effect::RemoveTile`]).
    RemoveTile,
    /// Start an emergency rotation of the tile's credential
    /// ([`Effect::RotateCredential`]).
    RotateCredential,
    /// Something done by hand, described in the note (required).
    Manual,
}

impl Action {
    /// The kebab-case name ("pause-rollout").
    pub fn name(self) -> &'static str {
        match self {
            Action::PauseRollout => "pause-rollout",
            Action::RemoveTile => "remove-tile",
            Action::RotateCredential => "rotate-credential",
            Action::Manual => "manual",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A mitigation taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mitigation {
    /// What.
    pub action: Action,
    /// Where (for [`Action::RemoveTile`]: the regions; else as given).
    pub regions: Vec<String>,
    /// Why or how.
    pub note: String,
    /// Who and when.
    pub stamp: Stamp,
}

/// An incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    /// "INC-42".
    pub id: String,
    /// One line: "riverflow: health gate failed in gcp:me-central2 (wave 4)".
    pub title: String,
    /// The tile it concerns.
    pub tile: String,
    /// The regions affected (events add theirs).
    pub regions: Vec<String>,
    /// How bad; rises with the GA deadline and worse events, never lowers
    /// by itself.
    pub severity: Severity,
    /// What raised it.
    pub source: Source,
    /// Who owns it: the partner's side is paged through partner contacts.
    pub side: Side,
    /// The tile's partner (whose contacts [`super::TargetKind::Partner`]
    /// pages, and who may see the incident).
    pub partner: Option<String>,
    /// Where it stands.
    pub state: State,
    /// Events with this key fold into it while it is open
    /// ([`Source::dedup_key`]); `None` for manual incidents.
    pub dedup_key: Option<String>,
    /// How many events it stands for (1 when opened; repeats add one).
    pub count: u32,
    /// The resolved incident of the same failure it follows, if any.
    pub linked_to: Option<String>,
    /// The roll-out it concerns (what pausing acts on), if any.
    pub rollout: Option<String>,
    /// The tile's GA deadline: nearer it, the severity rises
    /// ([`super::Command::Rerate`]).
    pub deadline: Option<Timestamp>,
    /// The SOP it follows, if any.
    pub sop: Option<String>,
    /// That SOP's steps and their progress.
    pub steps: Vec<StepProgress>,
    /// Mitigations taken.
    pub mitigations: Vec<Mitigation>,
    /// Every change, in order.
    pub timeline: Vec<Entry>,
    /// Every page's delivery: attempts, failures.
    pub deliveries: Vec<super::delivery::Delivery>,
    /// When it opened.
    pub opened_at: Timestamp,
    /// Who acknowledged it, when (cleared on reopen).
    pub acknowledged: Option<Stamp>,
    /// Who mitigated it, when (cleared on reopen).
    pub mitigated: Option<Stamp>,
    /// Who resolved it, when (cleared on reopen).
    pub resolved: Option<Stamp>,
    /// The ladder's progress.
    pub escalation: Escalation,
}

impl Incident {
    /// Appends a timeline entry.
    pub(crate) fn log(&mut self, at: Timestamp, actor: &str, kind: EntryKind, message: String) {
        self.timeline.push(Entry {
            at,
            actor: actor.to_string(),
            kind,
            message,
        });
    }

    /// The SOP steps not done and not skipped, as (number, title).
    pub fn open_steps(&self) -> Vec<(u32, String)> {
        self.steps
            .iter()
            .filter(|s| matches!(s.status, StepStatus::Open))
            .map(|s| (s.number, s.title.clone()))
            .collect()
    }
}

/// What opening an incident needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewIncident {
    /// Its id ("INC-42", from the service's counter).
    pub id: String,
    /// Its title.
    pub title: String,
    /// The tile.
    pub tile: String,
    /// The regions affected.
    pub regions: Vec<String>,
    /// The severity asked for (the deadline may raise it at once).
    pub severity: Severity,
    /// What raised it.
    pub source: Source,
    /// Who owns it.
    pub side: Side,
    /// The tile's partner.
    pub partner: Option<String>,
    /// The roll-out it concerns; defaults to the source's.
    pub rollout: Option<String>,
    /// The tile's GA deadline, if it has one ahead.
    pub deadline: Option<Timestamp>,
    /// The escalation policy paging for it.
    pub policy: String,
    /// The resolved incident of the same failure ([`Route::OpenLinked`]).
    pub linked_to: Option<String>,
}

/// Opens an incident at `now` (TRIGGERED, count 1, the SOP's steps open,
/// the ladder starting at its first level, the severity raised at once if
/// the deadline asks for it). Effects: [`Effect::Escalate`]. Refused when
/// the id, title or tile is empty.
pub fn open(
    new: NewIncident,
    sop: Option<&Sop>,
    now: Timestamp,
    actor: &str,
) -> Result<Transition, Problems> {
    let mut p = Problems::default();
    for (field, value) in [("id", &new.id), ("title", &new.title), ("tile", &new.tile)] {
        if value.trim().is_empty() {
            p.push(field, "must not be empty");
        }
    }
    p.into_result(())?;
    let steps = sop
        .map(|s| {
            s.steps
                .iter()
                .map(|st| StepProgress {
                    number: st.number,
                    title: st.title.clone(),
                    side: st.side,
                    requires_note: st.requires_note,
                    status: StepStatus::Open,
                })
                .collect()
        })
        .unwrap_or_default();
    let mut i = Incident {
        dedup_key: new.source.dedup_key(&new.tile),
        rollout: new.rollout.or_else(|| new.source.rollout().map(str::to_string)),
        id: new.id,
        title: new.title,
        tile: new.tile,
        regions: dedup(new.regions),
        severity: new.severity,
        source: new.source,
        side: new.side,
        partner: new.partner,
        state: State::Triggered,
        count: 1,
        linked_to: new.linked_to,
        deadline: new.deadline,
        sop: sop.map(|s| s.id.clone()),
        steps,
        mitigations: Vec::new(),
        timeline: Vec::new(),
        deliveries: Vec::new(),
        opened_at: now,
        acknowledged: None,
        mitigated: None,
        resolved: None,
        escalation: Escalation::start(&new.policy, now, 0),
    };
    let mut message = format!(
        "opened {} {} ({} side, from {})",
        i.severity,
        quoted(&i.title),
        i.side,
        i.source.kind()
    );
    if let Some(prev) = &i.linked_to {
        message.push_str(&format!("; the same failure as resolved {}", quoted(prev)));
    }
    if let Some(sop) = &i.sop {
        message.push_str(&format!("; SOP {}", quoted(sop)));
    }
    i.log(now, actor, EntryKind::Opened, message);
    let summary = format!("opened {} ({})", i.id, i.severity);
    super::command::rerate_in_place(&mut i, now);
    Ok(Transition {
        incident: i,
        effects: vec![Effect::Escalate],
        summary,
    })
}

/// Regions without repeats, in first-seen order.
pub(crate) fn dedup(regions: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in regions {
        if !out.contains(&r) {
            out.push(r);
        }
    }
    out
}

/// What to do with an event whose dedup key is `key`, given the latest
/// incident with that key (`latest`, if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Open a new incident.
    Open,
    /// Fold it into this open incident ([`super::Command::EventArrived`]).
    Fold {
        /// The open incident's id.
        incident: String,
    },
    /// The same failure was resolved before: open a new incident with
    /// [`NewIncident::linked_to`] set to this one. A resolved incident is
    /// never silently reopened.
    OpenLinked {
        /// The resolved incident's id.
        previous: String,
    },
}

/// Where an event with dedup key `key` goes: [`Route::Open`] without a
/// key or an earlier incident, [`Route::Fold`] into an open one,
/// [`Route::OpenLinked`] after a resolved one.
pub fn route(key: Option<&str>, latest: Option<&Incident>) -> Route {
    match (key, latest) {
        (None, _) | (Some(_), None) => Route::Open,
        (Some(k), Some(i)) if i.dedup_key.as_deref() != Some(k) => Route::Open,
        (Some(_), Some(i)) => match i.state {
            State::Triggered | State::Acknowledged | State::Mitigated => Route::Fold {
                incident: i.id.clone(),
            },
            State::Resolved => Route::OpenLinked {
                previous: i.id.clone(),
            },
        },
    }
}

/// When [`super::Command::Rerate`] next raises the incident's severity (48
/// and 12 hours before its deadline, where that raises it), at or after
/// `now`; `None` when it never will (no deadline ahead, resolved, already
/// SEV1). The service keeps a timer at this instant.
pub fn next_rerate(i: &Incident, now: Timestamp) -> Option<Timestamp> {
    let deadline = i.deadline.filter(|d| *d > now)?;
    match i.state {
        State::Resolved => None,
        State::Triggered | State::Acknowledged | State::Mitigated => [
            (Severity::Sev2, super::kinds::SEV2_WITHIN),
            (Severity::Sev1, super::kinds::SEV1_WITHIN),
        ]
        .into_iter()
        .filter(|(sev, _)| *sev < i.severity)
        .filter_map(|(_, within)| deadline.checked_sub(within).ok())
        .map(|t| t.max(now))
        .min(),
    }
}
