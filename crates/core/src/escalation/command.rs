//! What people and events do to an incident ([`handle`]), and why a
//! command is refused ([`Refused`]).

use std::fmt;

use jiff::Timestamp;

use super::delivery::{Attempt, record};
use super::incident::{Action, EntryKind, Incident, Mitigation, Stamp, State, StepStatus, dedup};
use super::kinds::{Severity, Source, deadline_severity};
use super::ladder::Escalation;
use crate::quote::quoted;

/// How a step is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// Done, with what was found (required by steps with `requires_note`).
    Done {
        /// The note.
        note: Option<String>,
    },
    /// Deliberately not done.
    Skipped {
        /// Why (required).
        reason: String,
    },
}

/// An event of the same failure (a repeat of what opened the incident).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// What raised it: its dedup key must be the incident's.
    pub source: Source,
    /// The tile.
    pub tile: String,
    /// The regions it names (added to the incident's).
    pub regions: Vec<String>,
    /// Its severity (raises the incident's if worse).
    pub severity: Severity,
    /// What happened, for the timeline.
    pub message: String,
}

/// A command on an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// The actor owns it: the ladder stops.
    Acknowledge,
    /// A note on the timeline (also on a resolved incident).
    AddNote {
        /// The note (not empty).
        note: String,
    },
    /// Closes an SOP step.
    CompleteStep {
        /// The step's number.
        number: u32,
        /// Done with a note, or skipped with a reason.
        outcome: StepOutcome,
    },
    /// Takes a mitigating action. From TRIGGERED it also acknowledges.
    Mitigate {
        /// What.
        action: Action,
        /// Where; empty means every region of the incident.
        regions: Vec<String>,
        /// Why or how (required for [`Action::Manual`]).
        note: String,
    },
    /// Resolves it. A SEV1 or SEV2 needs every SOP step done or skipped.
    Resolve {
        /// What fixed it (may be empty).
        note: String,
    },
    /// Reopens a resolved incident: the ladder starts again.
    Reopen {
        /// Why (not empty).
        reason: String,
    },
    /// The same failure again: folds into an open incident (count + 1,
    /// its regions added, a worse severity raising the incident's). It
    /// does not page again by itself. A resolved incident refuses it: open
    /// a new, linked one ([`super::route`]).
    EventArrived(Event),
    /// Raises the severity if the GA deadline asks for it (SEV2 within
    /// 48 h, SEV1 within 12 h); never lowers it. Unchanged otherwise.
    Rerate,
    /// The sender's report of one delivery attempt (in every state: a
    /// page in flight may land after the acknowledgement). A report on a
    /// delivery already over changes nothing.
    RecordDelivery {
        /// The notification's key.
        key: String,
        /// Who, for people ("alice/phone").
        recipient: String,
        /// What happened.
        attempt: Attempt,
    },
}

impl Command {
    /// The audit action (the RPC's name).
    pub fn action(&self) -> &'static str {
        match self {
            Command::Acknowledge => "Acknowledge",
            Command::AddNote { .. } => "AddNote",
            Command::CompleteStep { .. } => "CompleteStep",
            Command::Mitigate { .. } => "Mitigate",
            Command::Resolve { .. } => "Resolve",
            Command::Reopen { .. } => "Reopen",
            Command::EventArrived(_) => "EventArrived",
            Command::Rerate => "Rerate",
            Command::RecordDelivery { .. } => "RecordDelivery",
        }
    }

    /// What it does, for "cannot `verb` INC-42".
    pub fn verb(&self) -> &'static str {
        match self {
            Command::Acknowledge => "acknowledge",
            Command::AddNote { .. } => "add a note to",
            Command::CompleteStep { .. } => "complete a step of",
            Command::Mitigate { .. } => "mitigate",
            Command::Resolve { .. } => "resolve",
            Command::Reopen { .. } => "reopen",
            Command::EventArrived(_) => "fold an event into",
            Command::Rerate => "re-rate",
            Command::RecordDelivery { .. } => "record a delivery of",
        }
    }
}

/// What the service carries out besides storing the new incident, in the
/// same transaction where it writes to etcd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Run [`super::step`] on the new incident now and keep its timer
    /// (after opening, reopening, or a severity rise).
    Escalate,
    /// Cancel every undelivered outbox notification of the incident and
    /// its ladder timer (acknowledged, mitigated from TRIGGERED, resolved).
    CancelPending,
    /// The severity rose from low to high urgency: deliver the incident's
    /// notifications deferred to working hours now.
    Expedite,
    /// Pause this roll-out through the rollout service.
    PauseRollout {
        /// The roll-out.
        rollout: String,
    },
    /// Remove the tile from these regions (a roll-back there) through the
    /// rollout service.
    RemoveTile {
        /// The tile.
        tile: String,
        /// The regions.
        regions: Vec<String>,
    },
    /// Start an emergency rotation of the tile's credential through the
    /// credentials service.
    RotateCredential {
        /// The tile.
        tile: String,
    },
}

/// An accepted command: the incident as it becomes, what else to do, and
/// the one-line audit summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The incident after it.
    pub incident: Incident,
    /// What else to carry out.
    pub effects: Vec<Effect>,
    /// The audit record's summary.
    pub summary: String,
}

impl Transition {
    /// Whether it changed the incident (a re-rate with nothing to raise, or
    /// a replayed delivery record, does not: nothing to write).
    pub fn changed(&self, before: &Incident) -> bool {
        self.incident != *before
    }
}

/// Why a command is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The incident is resolved.
    Resolved {
        /// Who resolved it, when.
        resolved: Option<Stamp>,
    },
    /// Acknowledge on an acknowledged or mitigated incident.
    AlreadyAcknowledged {
        /// Who acknowledged it, when.
        acknowledged: Option<Stamp>,
    },
    /// Reopen on an open incident.
    NotResolved,
    /// A required text is empty.
    Empty {
        /// Which ("note", "reason").
        field: &'static str,
    },
    /// A step number the incident's SOP does not have.
    NoSuchStep {
        /// The number asked.
        number: u32,
        /// The numbers it has.
        numbers: Vec<u32>,
    },
    /// The step is already done or skipped.
    StepClosed {
        /// The step.
        number: u32,
        /// "done" or "skipped".
        status: &'static str,
        /// Who, when.
        stamp: Stamp,
    },
    /// The step needs a note.
    NoteRequired {
        /// The step.
        number: u32,
        /// Its title.
        title: String,
    },
    /// Resolving a SEV1 or SEV2 with steps neither done nor skipped.
    OpenSteps {
        /// The incident's severity.
        severity: Severity,
        /// The open steps (number, title).
        steps: Vec<(u32, String)>,
    },
    /// Pausing the roll-out of an incident that concerns none.
    NoRollout,
    /// Regions the incident does not affect.
    UnknownRegions {
        /// The regions given that it does not affect.
        regions: Vec<String>,
        /// Its regions.
        known: Vec<String>,
    },
    /// Removing the tile with no regions given and none on the incident.
    NoRegions,
    /// An event of another failure.
    KeyMismatch {
        /// The event's key.
        key: Option<String>,
    },
}

/// A refusal, with the incident it is about; nothing changed. `Display` is
/// the user-facing message and says what to do next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Refused {
    /// The incident's id.
    pub incident: String,
    /// Its state.
    pub state: State,
    /// Its dedup key.
    pub dedup_key: Option<String>,
    /// What was asked, for "cannot `verb` INC-42".
    pub verb: &'static str,
    /// Why (boxed: refusals carry stamps and lists).
    pub reason: Box<Refusal>,
}

fn stamp(s: &Option<Stamp>) -> String {
    s.as_ref()
        .map(|s| format!(" by {} at {}", quoted(&s.by), s.at))
        .unwrap_or_default()
}

fn list(items: impl IntoIterator<Item = String>) -> String {
    items.into_iter().collect::<Vec<_>>().join(", ")
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (id, verb, state) = (&self.incident, self.verb, self.state);
        match &*self.reason {
            Refusal::Resolved { resolved } => write!(
                f,
                "cannot {verb} {id}: it is RESOLVED (resolved{}); reopen it with \
                 `tilewave incident reopen {id} --reason TEXT` first",
                stamp(resolved)
            ),
            Refusal::AlreadyAcknowledged { acknowledged } => write!(
                f,
                "{id} is already acknowledged{} and is {state}; nothing changed",
                stamp(acknowledged)
            ),
            Refusal::NotResolved => write!(
                f,
                "cannot reopen {id}: it is {state}, not resolved; it is still open"
            ),
            Refusal::Empty { field } => {
                write!(f, "cannot {verb} {id}: the {field} is empty; say what happened")
            }
            Refusal::NoSuchStep { number, numbers } if numbers.is_empty() => write!(
                f,
                "{id} follows no SOP, so it has no step {number}; add a note instead with \
                 `tilewave incident note {id} TEXT`"
            ),
            Refusal::NoSuchStep { number, numbers } => write!(
                f,
                "{id} has no SOP step {number}; its steps are {}",
                list(numbers.iter().map(u32::to_string))
            ),
            Refusal::StepClosed {
                number,
                status,
                stamp: s,
            } => write!(
                f,
                "step {number} of {id} is already {status} by {} at {}; nothing changed",
                quoted(&s.by),
                s.at
            ),
            Refusal::NoteRequired { number, title } => write!(
                f,
                "step {number} of {id} ({}) needs a note saying what you found: \
                 `tilewave incident step {id} {number} --note TEXT`",
                quoted(title)
            ),
            Refusal::OpenSteps { severity, steps } => write!(
                f,
                "cannot resolve {id}: a {severity} needs every SOP step done or skipped with a \
                 reason; still open: {}; complete each with `tilewave incident step {id} N --note \
                 TEXT` or skip it with `--skip --reason TEXT`",
                list(steps.iter().map(|(n, t)| format!("{n} ({})", quoted(t))))
            ),
            Refusal::NoRollout => write!(
                f,
                "cannot pause a roll-out for {id}: it concerns no roll-out; pause one with \
                 `tilewave rollout pause`, or remove the tile from regions instead"
            ),
            Refusal::UnknownRegions { regions, known } => write!(
                f,
                "cannot {verb} {id}: it does not affect {}; its regions are {}",
                list(regions.iter().map(|r| quoted(r).to_string())),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    list(known.iter().map(|r| quoted(r).to_string()))
                }
            ),
            Refusal::NoRegions => write!(
                f,
                "cannot remove the tile for {id}: it names no regions; give the regions with \
                 --regions"
            ),
            Refusal::KeyMismatch { key } => write!(
                f,
                "cannot fold the event into {id}: its dedup key {} is not {}'s {}; route it \
                 with `route` to its own incident",
                key.as_deref()
                    .map_or("(none)".to_string(), |k| quoted(k).to_string()),
                id,
                self.dedup_key
                    .as_deref()
                    .map_or("(none)".to_string(), |k| quoted(k).to_string()),
            ),
        }
    }
}

/// Raises `i`'s severity to what its deadline asks at `now`, with a
/// timeline entry saying so; returns (from, to) if it rose.
pub(crate) fn rerate_in_place(i: &mut Incident, now: Timestamp) -> Option<(Severity, Severity)> {
    let deadline = i.deadline?;
    let remaining = deadline.duration_since(now);
    let want = deadline_severity(remaining)?;
    if want >= i.severity {
        return None;
    }
    let from = i.severity;
    i.severity = want;
    i.log(
        now,
        super::incident::SYSTEM_ACTOR,
        EntryKind::Rerated,
        format!(
            "re-rated {from} -> {want}: the GA deadline {deadline} is {:#} away (SEV2 within 48h, \
             SEV1 within 12h); severity never lowers by itself",
            remaining
        ),
    );
    Some((from, want))
}

/// Answers `command` on `incident` at `now` by `actor`: the incident as it
/// becomes, the effects to carry out and the audit summary, or why not
/// (nothing changed). Every (state, command) pair is matched explicitly.
pub fn handle(
    incident: &Incident,
    command: &Command,
    now: Timestamp,
    actor: &str,
) -> Result<Transition, Refused> {
    use Command as C;
    use State as S;
    let refuse = |reason: Refusal| {
        Err(Refused {
            incident: incident.id.clone(),
            state: incident.state,
            dedup_key: incident.dedup_key.clone(),
            verb: command.verb(),
            reason: Box::new(reason),
        })
    };
    let resolved = || Refusal::Resolved {
        resolved: incident.resolved.clone(),
    };
    let mut i = incident.clone();
    let mut effects = Vec::new();
    let me = Stamp {
        by: actor.to_string(),
        at: now,
    };

    let summary = match (incident.state, command) {
        // ---- Acknowledge: only while TRIGGERED.
        (S::Triggered, C::Acknowledge) => {
            acknowledge(&mut i, &me, &mut effects);
            i.log(
                now,
                actor,
                EntryKind::Acknowledged,
                format!("acknowledged by {actor}"),
            );
            format!("acknowledged {}", i.id)
        }
        (S::Acknowledged | S::Mitigated, C::Acknowledge) => {
            return refuse(Refusal::AlreadyAcknowledged {
                acknowledged: incident.acknowledged.clone(),
            });
        }
        (S::Resolved, C::Acknowledge) => return refuse(resolved()),

        // ---- AddNote: in every state (notes after resolution too).
        (S::Triggered | S::Acknowledged | S::Mitigated | S::Resolved, C::AddNote { note }) => {
            if note.trim().is_empty() {
                return refuse(Refusal::Empty { field: "note" });
            }
            i.log(now, actor, EntryKind::Note, note.clone());
            format!("noted on {}", i.id)
        }

        // ---- CompleteStep: while open.
        (S::Triggered | S::Acknowledged | S::Mitigated, C::CompleteStep { number, outcome }) => {
            if let Err(reason) = complete_step(&mut i, *number, outcome, &me) {
                return refuse(reason);
            }
            format!("closed step {number} of {}", i.id)
        }
        (S::Resolved, C::CompleteStep { .. }) => return refuse(resolved()),

        // ---- Mitigate: while open; from TRIGGERED it acknowledges too.
        (
            S::Triggered | S::Acknowledged | S::Mitigated,
            C::Mitigate {
                action,
                regions,
                note,
            },
        ) => {
            let regions = match mitigation_regions(&i, *action, regions, note) {
                Ok(r) => r,
                Err(reason) => return refuse(reason),
            };
            if incident.state == S::Triggered {
                acknowledge(&mut i, &me, &mut effects);
            }
            mitigate(&mut i, *action, regions, note, &me, &mut effects);
            format!("mitigated {} ({action})", i.id)
        }
        (S::Resolved, C::Mitigate { .. }) => return refuse(resolved()),

        // ---- Resolve: while open; SEV1/SEV2 need every step closed.
        (S::Triggered | S::Acknowledged | S::Mitigated, C::Resolve { note }) => {
            let open = i.open_steps();
            if i.severity.needs_every_step() && !open.is_empty() {
                return refuse(Refusal::OpenSteps {
                    severity: i.severity,
                    steps: open,
                });
            }
            i.state = S::Resolved;
            i.resolved = Some(me.clone());
            i.escalation = i.escalation.stopped(now);
            effects.push(super::Effect::CancelPending);
            let mut message = format!("resolved by {actor}");
            if !note.trim().is_empty() {
                message.push_str(&format!(": {note}"));
            }
            i.log(now, actor, EntryKind::Resolved, message);
            format!("resolved {}", i.id)
        }
        (S::Resolved, C::Resolve { .. }) => return refuse(resolved()),

        // ---- Reopen: only when resolved; the ladder starts again.
        (S::Resolved, C::Reopen { reason }) => {
            if reason.trim().is_empty() {
                return refuse(Refusal::Empty { field: "reason" });
            }
            i.state = S::Triggered;
            i.acknowledged = None;
            i.mitigated = None;
            i.resolved = None;
            i.escalation = Escalation::start(&incident.escalation.policy, now, incident.escalation.cycle + 1);
            effects.push(super::Effect::Escalate);
            i.log(
                now,
                actor,
                EntryKind::Reopened,
                format!("reopened by {actor}: {reason}"),
            );
            rerate_in_place(&mut i, now);
            format!("reopened {}", i.id)
        }
        (S::Triggered | S::Acknowledged | S::Mitigated, C::Reopen { .. }) => {
            return refuse(Refusal::NotResolved);
        }

        // ---- EventArrived: folds into an open incident only.
        (S::Triggered | S::Acknowledged | S::Mitigated, C::EventArrived(e)) => {
            let key = e.source.dedup_key(&e.tile);
            if key.is_none() || key != i.dedup_key {
                return refuse(Refusal::KeyMismatch { key });
            }
            fold(&mut i, e, now, actor, &mut effects);
            format!("folded an event into {} (count {})", i.id, i.count)
        }
        (S::Resolved, C::EventArrived(_)) => return refuse(resolved()),

        // ---- Rerate: open incidents may rise; resolved ones stay.
        (S::Triggered | S::Acknowledged | S::Mitigated, C::Rerate) => match rerate_in_place(&mut i, now) {
            Some((from, to)) => {
                effects.extend(rise_effects(from, to));
                format!("re-rated {} {from} -> {to}", i.id)
            }
            None => format!("{} stays {}", i.id, i.severity),
        },
        (S::Resolved, C::Rerate) => format!("{} is resolved; stays {}", i.id, i.severity),

        // ---- RecordDelivery: in every state.
        (
            S::Triggered | S::Acknowledged | S::Mitigated | S::Resolved,
            C::RecordDelivery {
                key,
                recipient,
                attempt,
            },
        ) => {
            if key.trim().is_empty() {
                return refuse(Refusal::Empty { field: "key" });
            }
            if record(&mut i, key, recipient, attempt, now, actor) {
                format!("recorded a delivery attempt of {}", quoted(key))
            } else {
                format!("the delivery of {} was already over", quoted(key))
            }
        }
    };
    Ok(Transition {
        incident: i,
        effects,
        summary,
    })
}

/// What a severity rise asks of the service: run the ladder again, and
/// send deferred pages now if the urgency became high.
fn rise_effects(from: Severity, to: Severity) -> Vec<super::Effect> {
    use super::kinds::Urgency;
    match (from.urgency(), to.urgency()) {
        (Urgency::Low, Urgency::High) => vec![super::Effect::Escalate, super::Effect::Expedite],
        (Urgency::Low, Urgency::Low) | (Urgency::High, _) => vec![super::Effect::Escalate],
    }
}

fn acknowledge(i: &mut Incident, me: &Stamp, effects: &mut Vec<super::Effect>) {
    i.state = State::Acknowledged;
    i.acknowledged = Some(me.clone());
    i.escalation = i.escalation.stopped(me.at);
    effects.push(super::Effect::CancelPending);
}

fn complete_step(i: &mut Incident, number: u32, outcome: &StepOutcome, me: &Stamp) -> Result<(), Refusal> {
    let numbers: Vec<u32> = i.steps.iter().map(|s| s.number).collect();
    let step = i
        .steps
        .iter_mut()
        .find(|s| s.number == number)
        .ok_or(Refusal::NoSuchStep { number, numbers })?;
    match &step.status {
        StepStatus::Open => {}
        StepStatus::Done { stamp, .. } | StepStatus::Skipped { stamp, .. } => {
            return Err(Refusal::StepClosed {
                number,
                status: step.status.name(),
                stamp: stamp.clone(),
            });
        }
    }
    let (kind, message) = match outcome {
        StepOutcome::Done { note } => {
            let note = note.as_ref().filter(|n| !n.trim().is_empty());
            if step.requires_note && note.is_none() {
                return Err(Refusal::NoteRequired {
                    number,
                    title: step.title.clone(),
                });
            }
            step.status = StepStatus::Done {
                stamp: me.clone(),
                note: note.cloned(),
            };
            let mut m = format!("step {number} done ({})", quoted(&step.title));
            if let Some(n) = note {
                m.push_str(&format!(": {n}"));
            }
            (EntryKind::StepCompleted, m)
        }
        StepOutcome::Skipped { reason } => {
            if reason.trim().is_empty() {
                return Err(Refusal::Empty { field: "reason" });
            }
            step.status = StepStatus::Skipped {
                stamp: me.clone(),
                reason: reason.clone(),
            };
            (
                EntryKind::StepSkipped,
                format!("step {number} skipped ({}): {reason}", quoted(&step.title)),
            )
        }
    };
    i.log(me.at, &me.by, kind, message);
    Ok(())
}

/// The regions a mitigation acts on, or why it cannot.
fn mitigation_regions(
    i: &Incident,
    action: Action,
    regions: &[String],
    note: &str,
) -> Result<Vec<String>, Refusal> {
    let unknown: Vec<String> = regions
        .iter()
        .filter(|r| !i.regions.contains(r))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(Refusal::UnknownRegions {
            regions: unknown,
            known: i.regions.clone(),
        });
    }
    let regions = if regions.is_empty() {
        i.regions.clone()
    } else {
        dedup(regions.to_vec())
    };
    match action {
        Action::PauseRollout if i.rollout.is_none() => Err(Refusal::NoRollout),
        Action::RemoveTile if regions.is_empty() => Err(Refusal::NoRegions),
        Action::Manual if note.trim().is_empty() => Err(Refusal::Empty { field: "note" }),
        Action::PauseRollout | Action::RemoveTile | Action::RotateCredential | Action::Manual => Ok(regions),
    }
}

fn mitigate(
    i: &mut Incident,
    action: Action,
    regions: Vec<String>,
    note: &str,
    me: &Stamp,
    effects: &mut Vec<super::Effect>,
) {
    use super::Effect as E;
    let what = match action {
        Action::PauseRollout => {
            let rollout = i.rollout.clone().unwrap_or_default();
            let what = format!("paused roll-out {}", quoted(&rollout));
            effects.push(E::PauseRollout { rollout });
            what
        }
        Action::RemoveTile => {
            effects.push(E::RemoveTile {
                tile: i.tile.clone(),
                regions: regions.clone(),
            });
            format!("removed {} from {}", i.tile, regions.join(", "))
        }
        Action::RotateCredential => {
            effects.push(E::RotateCredential { tile: i.tile.clone() });
            format!("started an emergency credential rotation of {}", i.tile)
        }
        Action::Manual => "mitigated by hand".to_string(),
    };
    i.state = State::Mitigated;
    i.mitigated = Some(me.clone());
    i.mitigations.push(Mitigation {
        action,
        regions,
        note: note.to_string(),
        stamp: me.clone(),
    });
    let mut message = format!("{what} ({})", me.by);
    if !note.trim().is_empty() {
        message.push_str(&format!(": {note}"));
    }
    i.log(me.at, &me.by, EntryKind::Mitigated, message);
}

fn fold(i: &mut Incident, e: &Event, now: Timestamp, actor: &str, effects: &mut Vec<super::Effect>) {
    i.count += 1;
    let mut regions = i.regions.clone();
    regions.extend(e.regions.iter().cloned());
    i.regions = dedup(regions);
    i.log(
        now,
        actor,
        EntryKind::Event,
        format!("the same failure again (count {}): {}", i.count, e.message),
    );
    if e.severity < i.severity {
        let from = i.severity;
        i.severity = e.severity;
        i.log(
            now,
            actor,
            EntryKind::Rerated,
            format!(
                "re-rated {from} -> {}: a repeat arrived as {}",
                e.severity, e.severity
            ),
        );
        effects.extend(rise_effects(from, e.severity));
    }
}
