//! The escalation SOP service's rules (issue 16) as pure functions, the way
//! [`crate::rollout`] and [`crate::rotation`] hold theirs.
//!
//! - **Incidents** ([`Incident`]): opened by [`open`] (from an event or by
//!   hand), changed only by [`handle`] (acknowledge, note, SOP steps,
//!   mitigate, resolve, reopen, a repeat event, re-rating near the GA
//!   deadline), which returns the new incident and the [`Effect`]s to carry
//!   out, or a [`Refused`] whose `Display` is the user-facing message.
//!   [`route`] says whether an event folds into an open incident or opens
//!   a new one (linked to a resolved one).
//! - **Ladders** ([`ladder`]): policies of levels with delays and repeats;
//!   [`step`] advances an incident's ladder and returns the notifications
//!   to write to the outbox in the same transaction, and the next timer.
//! - **Schedules** ([`schedule`]): rotations in IANA zones, layers,
//!   overrides; who is on call, the next handoff, coverage gaps. The
//!   daylight-saving rules are in [`local`].
//! - **SOPs** ([`sop`]): per incident kind, ordered steps with an owning
//!   side; [`default_sops`].
//! - **People and partners** ([`directory`]): who targets name, their
//!   zones, working hours and contacts.
//! - **Pages**: [`page_payload`] is a notification's JSON body;
//!   [`Command::RecordDelivery`] puts each delivery attempt on the
//!   incident.
//! - **Validation** of every definition returns all [`Problems`] at once,
//!   each with its path (`levels[1].delay: must be more than zero`).
//!
//! Nothing here reads a clock or does I/O: time comes in as arguments.

mod command;
mod delivery;
pub mod directory;
mod incident;
mod kinds;
pub mod ladder;
pub mod local;
pub mod preflight;
mod problems;
pub mod schedule;
pub mod sop;

pub use command::{Command, Effect, Event, Refusal, Refused, StepOutcome, Transition, handle};
pub use delivery::{Attempt, Delivery, PagePayload, page_payload};
pub use directory::{Contact, Directory, Person, validate_directory, validate_person};
pub use incident::{
    Action, Entry, EntryKind, Incident, Mitigation, NewIncident, Route, SYSTEM_ACTOR, Stamp, State,
    StepProgress, StepStatus, next_rerate, open, route,
};
pub use kinds::{SEV1_WITHIN, SEV2_WITHIN, Severity, Side, Source, SourceKind, Urgency, deadline_severity};
pub use ladder::{
    Escalation, Ladder, Level, Notification, Policy, Recipient, Speedup, Step, Target, TargetKind,
    policy_coverage, policy_for, step, validate_policy,
};
pub use local::{Day, WeeklyWindow};
pub use problems::{Problem, Problems};
pub use schedule::{
    Coverage, Gap, Layer, OnCall, Override, OverrideKind, Rotation, Schedule, ShiftLength, coverage,
    next_handoff, validate_schedule, who_is_on_call,
};
pub use sop::{Sop, SopStep, default_sops, sop_for, validate_sop, validate_sops};

#[cfg(test)]
mod tests;
