//! The edge between the wire and the roll-out's rules: protobuf roll-outs
//! and steps to [`tilewave_core::rollout`] types and back.
//!
//! A wire state the rules do not know (`UNSPECIFIED`, or a number from a
//! newer peer) is no roll-out state: [`state`] gives `None`, and the
//! callers treat such a roll-out as needing nothing. An unknown step state
//! counts as pending, as the planner always treated it.
//!
//! The launch calendar crosses here too: wire calendars, rules, blackouts,
//! one-off slots and edits to [`tilewave_core::calendar`] and back, bad
//! input refused naming the request's field.

use jiff::Timestamp;
use jiff::civil::Weekday as CivilWeekday;
use tilewave_core::calendar::{
    Blackout, CalendarEdit, CalendarError, Days, ExtraSlot, LaunchCalendar, LaunchRule, Slot, format_instant,
};
use tilewave_core::planner::{DEFAULT_APPLY_TIME, DEFAULT_BAKE, PlanInput};
use tilewave_core::quote::quoted;
use tilewave_core::rollout::{
    Effect, FailurePolicy, PauseCause, Refusal, Refused, State, Step, StepState, View,
};
use tilewave_proto::ShortName;
use tilewave_proto::common::v1::{LocalTime, Weekday as ProtoWeekday};
use tilewave_proto::rollout::v1 as wire;
use tilewave_service::limits;
use tilewave_store::clock::{from_proto_timestamp, to_proto_timestamp};

use crate::error::Error;
use crate::spec;

/// The roll-out state of a wire number; `None` when unknown.
pub fn state(n: i32) -> Option<State> {
    Some(match wire::RolloutState::try_from(n).ok()? {
        wire::RolloutState::Unspecified => return None,
        wire::RolloutState::Pending => State::Pending,
        wire::RolloutState::Running => State::Running,
        wire::RolloutState::Paused => State::Paused,
        wire::RolloutState::Succeeded => State::Succeeded,
        wire::RolloutState::Failed => State::Failed,
        wire::RolloutState::Aborted => State::Aborted,
        wire::RolloutState::RollingBack => State::RollingBack,
        wire::RolloutState::RolledBack => State::RolledBack,
    })
}

/// The wire number of a roll-out state.
pub fn state_to_wire(s: State) -> i32 {
    i32::from(match s {
        State::Pending => wire::RolloutState::Pending,
        State::Running => wire::RolloutState::Running,
        State::Paused => wire::RolloutState::Paused,
        State::Succeeded => wire::RolloutState::Succeeded,
        State::Failed => wire::RolloutState::Failed,
        State::Aborted => wire::RolloutState::Aborted,
        State::RollingBack => wire::RolloutState::RollingBack,
        State::RolledBack => wire::RolloutState::RolledBack,
    })
}

/// The step state of a wire number (unknown: pending).
pub fn step_state(n: i32) -> StepState {
    match wire::StepState::try_from(n).unwrap_or_default() {
        wire::StepState::Unspecified | wire::StepState::Pending => StepState::Pending,
        wire::StepState::Applying => StepState::Applying,
        wire::StepState::Baking => StepState::Baking,
        wire::StepState::Verified => StepState::Verified,
        wire::StepState::Failed => StepState::Failed,
        wire::StepState::Skipped => StepState::Skipped,
        wire::StepState::RollingBack => StepState::RollingBack,
        wire::StepState::RolledBack => StepState::RolledBack,
    }
}

/// The wire number of a step state.
pub fn step_state_to_wire(s: StepState) -> i32 {
    i32::from(match s {
        StepState::Pending => wire::StepState::Pending,
        StepState::Applying => wire::StepState::Applying,
        StepState::Baking => wire::StepState::Baking,
        StepState::Verified => wire::StepState::Verified,
        StepState::Failed => wire::StepState::Failed,
        StepState::Skipped => wire::StepState::Skipped,
        StepState::RollingBack => wire::StepState::RollingBack,
        StepState::RolledBack => wire::StepState::RolledBack,
    })
}

fn pause_cause(n: i32) -> Option<PauseCause> {
    match wire::PauseCause::try_from(n).unwrap_or_default() {
        wire::PauseCause::Unspecified => None,
        wire::PauseCause::Manual => Some(PauseCause::Manual),
        wire::PauseCause::Failure => Some(PauseCause::Failure),
        wire::PauseCause::Hold => Some(PauseCause::Hold),
    }
}

/// The wire number of a pause cause (none: unspecified).
pub fn pause_cause_to_wire(c: Option<PauseCause>) -> i32 {
    i32::from(match c {
        None => wire::PauseCause::Unspecified,
        Some(PauseCause::Manual) => wire::PauseCause::Manual,
        Some(PauseCause::Failure) => wire::PauseCause::Failure,
        Some(PauseCause::Hold) => wire::PauseCause::Hold,
    })
}

/// Whether a wire roll-out state is final.
pub fn is_terminal(n: i32) -> bool {
    state(n).is_some_and(|s| s.is_terminal())
}

fn ts(t: Option<&prost_types::Timestamp>) -> Option<Timestamp> {
    t.and_then(|t| from_proto_timestamp(t).ok())
}

fn dur(d: Option<&prost_types::Duration>, default: jiff::SignedDuration) -> jiff::SignedDuration {
    d.and_then(|d| spec::duration_of("", d).ok()).unwrap_or(default)
}

/// A wire step as the rules see it.
pub fn step(s: &wire::RolloutStep) -> Step {
    Step {
        region: s.region.clone(),
        wave: s.wave,
        state: step_state(s.state),
        apply_started_at: ts(s.apply_started_at.as_ref()),
        applied_at: ts(s.applied_at.as_ref()),
        bake_ends_at: ts(s.bake_ends_at.as_ref()),
        last_health_at: ts(s.last_health_at.as_ref()),
        skip_reason: s.skip_reason.clone(),
    }
}

/// Wire steps as the rules see them.
pub fn steps(steps: &[wire::RolloutStep]) -> Vec<Step> {
    steps.iter().map(step).collect()
}

/// A wire roll-out with its steps as the rules see it; `plan` is the
/// planner input of a re-plan from now (only needed while running).
/// FAILED_PRECONDITION when its state is unknown.
pub fn view(
    r: &wire::Rollout,
    wire_steps: &[wire::RolloutStep],
    plan: Result<PlanInput, String>,
) -> Result<View, Error> {
    let state = state(r.state).ok_or_else(|| {
        Error::FailedPrecondition(format!(
            "roll-out {} is in state {} ({}), which this service does not know",
            r.id,
            wire::RolloutState::short_name_of(r.state),
            r.state
        ))
    })?;
    let unset = wire::RolloutSpec::default();
    let spec = r.spec.as_ref().unwrap_or(&unset);
    let bakes = if spec.bake_per_wave.is_empty() {
        vec![dur(spec.bake.as_ref(), DEFAULT_BAKE)]
    } else {
        spec.bake_per_wave
            .iter()
            .map(|b| dur(Some(b), DEFAULT_BAKE))
            .collect()
    };
    Ok(View {
        id: r.id.clone(),
        state,
        pause_cause: pause_cause(r.pause_cause),
        paused_reason: r.paused_reason.clone(),
        held_after_wave: r.held_after_wave,
        approved_waves: r.approved_waves.clone(),
        hold_after_waves: spec.hold_after_waves.clone(),
        policy: if spec.on_failure() == wire::OnFailure::RollbackWave {
            FailurePolicy::RollbackWave
        } else {
            FailurePolicy::Pause
        },
        earliest_start: ts(spec.earliest_start.as_ref()),
        started_at: ts(r.started_at.as_ref()),
        finished_at: ts(r.finished_at.as_ref()),
        frozen: r.frozen,
        planned_at: ts(r.plan.as_ref().and_then(|p| p.computed_at.as_ref())),
        apply_time: dur(spec.apply_time.as_ref(), DEFAULT_APPLY_TIME),
        bakes,
        concurrency: usize::try_from(spec.concurrency.max(1)).unwrap_or(1),
        wave_count: r.wave_count,
        previous_revision: r.previous_revision,
        pause_after_rollback: r.pause_after_rollback,
        rollback_regions: r.rollback_regions.clone(),
        steps: steps(wire_steps),
        plan,
    })
}

/// Writes what a command changed from `before` to `after` onto the wire
/// roll-out and its steps.
pub fn write_back(before: &View, after: &View, r: &mut wire::Rollout, wire_steps: &mut [wire::RolloutStep]) {
    if after.state != before.state {
        r.state = state_to_wire(after.state);
    }
    if after.pause_cause != before.pause_cause {
        r.pause_cause = pause_cause_to_wire(after.pause_cause);
    }
    r.paused_reason.clone_from(&after.paused_reason);
    r.held_after_wave = after.held_after_wave;
    r.approved_waves.clone_from(&after.approved_waves);
    if after.finished_at != before.finished_at {
        r.finished_at = after.finished_at.map(to_proto_timestamp);
    }
    r.pause_after_rollback = after.pause_after_rollback;
    r.rollback_regions.clone_from(&after.rollback_regions);
    for ((old, new), s) in before.steps.iter().zip(&after.steps).zip(wire_steps.iter_mut()) {
        if new.state != old.state {
            s.state = step_state_to_wire(new.state);
        }
        s.skip_reason.clone_from(&new.skip_reason);
    }
}

/// Carries out a command's effects on the roll-out's spec.
pub fn apply_effects(effects: &[Effect], r: &mut wire::Rollout) {
    let waves = usize::try_from(r.wave_count.max(1)).unwrap_or(1);
    let spec = r.spec.get_or_insert_with(Default::default);
    for effect in effects {
        match *effect {
            Effect::SetBake { from_wave, bake } => {
                let old: Vec<prost_types::Duration> = (1..=waves)
                    .map(|w| {
                        if spec.bake_per_wave.is_empty() {
                            spec.bake.unwrap_or_default()
                        } else {
                            spec.bake_per_wave[(w - 1).min(spec.bake_per_wave.len() - 1)]
                        }
                    })
                    .collect();
                spec.bake_per_wave = old
                    .into_iter()
                    .zip(1..)
                    .map(|(d, w)| {
                        if w >= from_wave {
                            spec::proto_duration(bake)
                        } else {
                            d
                        }
                    })
                    .collect();
            }
            Effect::SetConcurrency(c) => spec.concurrency = c,
        }
    }
}

// ---------------------------------------------------------------------------
// The launch calendar: wire <-> tilewave_core::calendar.
// ---------------------------------------------------------------------------

/// At most this many launch rules (each is walked day by day over a year
/// against every blackout when the calendar is validated).
pub const MAX_CALENDAR_RULES: usize = 50;
/// At most this many blackout periods.
pub const MAX_CALENDAR_BLACKOUTS: usize = 500;
/// At most this many one-off slots.
pub const MAX_CALENDAR_EXTRA_SLOTS: usize = 1000;

/// The wire name of a core calendar field: `rules[0].tz` is
/// `rules[0].time_zone`, `rules[0].days` is `rules[0].weekdays`; the others
/// are the same. `prefix` (`calendar.` or empty) goes in front.
pub fn calendar_field(prefix: &str, core_field: &str) -> String {
    let wire_field = if let Some(rule) = core_field.strip_suffix(".tz") {
        format!("{rule}.time_zone")
    } else if let Some(rule) = core_field.strip_suffix(".days") {
        format!("{rule}.weekdays")
    } else {
        core_field.to_owned()
    };
    format!("{prefix}{wire_field}")
}

/// A calendar refusal as INVALID_ARGUMENT on its wire field under `prefix`.
pub fn calendar_error(e: &CalendarError, prefix: &str) -> Error {
    let text = e.to_string();
    let message = text
        .strip_prefix(&format!("{}: ", e.field()))
        .unwrap_or(&text)
        .to_owned();
    Error::invalid(calendar_field(prefix, e.field()), message)
}

fn capacity(field: &str, n: i32) -> Result<u32, Error> {
    // 0 passes: the calendar's own check names it.
    u32::try_from(n).map_err(|_| Error::invalid(field, format!("must be at least 1, not {n}")))
}

fn required_ts(field: &str, t: Option<&prost_types::Timestamp>) -> Result<Timestamp, Error> {
    let t = t.ok_or_else(|| Error::invalid(field, "required"))?;
    spec::timestamp_of(field, t)
}

/// A wire launch rule as the core's; `field` names it (`calendar.rules[0]`).
pub fn launch_rule(r: &wire::LaunchRule, field: &str) -> Result<LaunchRule, Error> {
    limits::text(&format!("{field}.name"), &r.name)?;
    limits::id(&format!("{field}.time_zone"), &r.time_zone)?;
    limits::count(&format!("{field}.weekdays"), r.weekdays.len(), 7 * 4)?;
    let mut days = Vec::with_capacity(r.weekdays.len());
    for (i, d) in r.weekdays.iter().enumerate() {
        days.push(spec::civil_weekday(*d).ok_or_else(|| {
            Error::invalid(
                format!("{field}.weekdays[{i}]"),
                format!("{d} is not a weekday (1 Monday to 7 Sunday)"),
            )
        })?);
    }
    if r.time_zone.is_empty() {
        return Err(Error::invalid(
            format!("{field}.time_zone"),
            "required: an IANA name such as \"UTC\" or \"Europe/Berlin\"",
        ));
    }
    Ok(LaunchRule {
        name: r.name.clone(),
        days: Days::of(&days),
        time: spec::local_time(&format!("{field}.time"), r.time.as_ref())?,
        tz: r.time_zone.clone(),
        capacity: capacity(&format!("{field}.capacity"), r.capacity)?,
    })
}

/// A wire blackout period as the core's.
pub fn blackout(b: &wire::LaunchBlackout, field: &str) -> Result<Blackout, Error> {
    limits::text(&format!("{field}.reason"), &b.reason)?;
    Ok(Blackout {
        start: required_ts(&format!("{field}.start"), b.start.as_ref())?,
        end: required_ts(&format!("{field}.end"), b.end.as_ref())?,
        reason: b.reason.clone(),
    })
}

/// A wire one-off slot as the core's.
pub fn extra_slot(s: &wire::ExtraLaunchSlot, field: &str) -> Result<ExtraSlot, Error> {
    limits::text(&format!("{field}.name"), &s.name)?;
    Ok(ExtraSlot {
        at: required_ts(&format!("{field}.at"), s.at.as_ref())?,
        capacity: capacity(&format!("{field}.capacity"), s.capacity)?,
        name: s.name.clone(),
    })
}

/// Refuses a calendar with more items than the bounds allow; `prefix`
/// (`calendar.` or empty) goes in front of the field.
pub fn check_calendar_counts(
    prefix: &str,
    rules: usize,
    blackouts: usize,
    extra_slots: usize,
) -> Result<(), Error> {
    limits::count(&format!("{prefix}rules"), rules, MAX_CALENDAR_RULES)?;
    limits::count(&format!("{prefix}blackouts"), blackouts, MAX_CALENDAR_BLACKOUTS)?;
    limits::count(
        &format!("{prefix}extra_slots"),
        extra_slots,
        MAX_CALENDAR_EXTRA_SLOTS,
    )?;
    Ok(())
}

/// A wire calendar as the core's (not yet validated); `prefix` (`calendar.`
/// or empty) names where it is in the request.
pub fn calendar(c: &wire::LaunchCalendar, prefix: &str) -> Result<LaunchCalendar, Error> {
    check_calendar_counts(prefix, c.rules.len(), c.blackouts.len(), c.extra_slots.len())?;
    Ok(LaunchCalendar {
        rules: c
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| launch_rule(r, &format!("{prefix}rules[{i}]")))
            .collect::<Result<_, _>>()?,
        blackouts: c
            .blackouts
            .iter()
            .enumerate()
            .map(|(i, b)| blackout(b, &format!("{prefix}blackouts[{i}]")))
            .collect::<Result<_, _>>()?,
        extra_slots: c
            .extra_slots
            .iter()
            .enumerate()
            .map(|(i, s)| extra_slot(s, &format!("{prefix}extra_slots[{i}]")))
            .collect::<Result<_, _>>()?,
    })
}

/// The wire weekday of a civil one.
pub fn weekday_to_wire(d: CivilWeekday) -> i32 {
    i32::from(match d {
        CivilWeekday::Monday => ProtoWeekday::Monday,
        CivilWeekday::Tuesday => ProtoWeekday::Tuesday,
        CivilWeekday::Wednesday => ProtoWeekday::Wednesday,
        CivilWeekday::Thursday => ProtoWeekday::Thursday,
        CivilWeekday::Friday => ProtoWeekday::Friday,
        CivilWeekday::Saturday => ProtoWeekday::Saturday,
        CivilWeekday::Sunday => ProtoWeekday::Sunday,
    })
}

/// The days of a set, Monday first.
pub fn weekdays(days: Days) -> Vec<CivilWeekday> {
    [
        CivilWeekday::Monday,
        CivilWeekday::Tuesday,
        CivilWeekday::Wednesday,
        CivilWeekday::Thursday,
        CivilWeekday::Friday,
        CivilWeekday::Saturday,
        CivilWeekday::Sunday,
    ]
    .into_iter()
    .filter(|d| days.contains(*d))
    .collect()
}

fn capacity_to_wire(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// A core launch rule on the wire.
pub fn launch_rule_to_wire(r: &LaunchRule) -> wire::LaunchRule {
    wire::LaunchRule {
        name: r.name.clone(),
        weekdays: weekdays(r.days).into_iter().map(weekday_to_wire).collect(),
        time: Some(LocalTime {
            hour: i32::from(r.time.hour()),
            minute: i32::from(r.time.minute()),
        }),
        time_zone: r.tz.clone(),
        capacity: capacity_to_wire(r.capacity),
    }
}

/// A core calendar on the wire (without who changed it, when, or etag).
pub fn calendar_to_wire(c: &LaunchCalendar) -> wire::LaunchCalendar {
    wire::LaunchCalendar {
        rules: c.rules.iter().map(launch_rule_to_wire).collect(),
        blackouts: c
            .blackouts
            .iter()
            .map(|b| wire::LaunchBlackout {
                start: Some(to_proto_timestamp(b.start)),
                end: Some(to_proto_timestamp(b.end)),
                reason: b.reason.clone(),
            })
            .collect(),
        extra_slots: c
            .extra_slots
            .iter()
            .map(|s| wire::ExtraLaunchSlot {
                at: Some(to_proto_timestamp(s.at)),
                capacity: capacity_to_wire(s.capacity),
                name: s.name.clone(),
            })
            .collect(),
        ..Default::default()
    }
}

/// A slot of `cal` on the wire, its sources named.
pub fn slot_to_wire(cal: &LaunchCalendar, s: &Slot) -> wire::LaunchSlot {
    wire::LaunchSlot {
        at: Some(to_proto_timestamp(s.at)),
        capacity: capacity_to_wire(s.capacity),
        source: cal.describe_sources(s),
        booked: 0,
    }
}

/// The one change an EditLaunchCalendar request asks for.
pub fn calendar_edit(r: &wire::EditLaunchCalendarRequest) -> Result<CalendarEdit, Error> {
    use wire::edit_launch_calendar_request::Edit;
    Ok(match &r.edit {
        None => {
            return Err(Error::invalid(
                "edit",
                "required: one of add_rule, add_blackout, add_extra_slot or remove",
            ));
        }
        Some(Edit::AddRule(rule)) => CalendarEdit::AddRule(launch_rule(rule, "add_rule")?),
        Some(Edit::AddBlackout(b)) => CalendarEdit::AddBlackout(blackout(b, "add_blackout")?),
        Some(Edit::AddExtraSlot(s)) => CalendarEdit::AddExtraSlot(extra_slot(s, "add_extra_slot")?),
        Some(Edit::Remove(rm)) => {
            let index = usize::try_from(rm.index).map_err(|_| {
                Error::invalid("remove.index", format!("must be 0 or more, not {}", rm.index))
            })?;
            match wire::CalendarItemKind::try_from(rm.kind).unwrap_or_default() {
                wire::CalendarItemKind::Rule => CalendarEdit::RemoveRule(index),
                wire::CalendarItemKind::Blackout => CalendarEdit::RemoveBlackout(index),
                wire::CalendarItemKind::ExtraSlot => CalendarEdit::RemoveExtraSlot(index),
                wire::CalendarItemKind::Unspecified => {
                    return Err(Error::invalid(
                        "remove.kind",
                        format!(
                            "{} is not an item kind: use RULE, BLACKOUT or EXTRA_SLOT",
                            rm.kind
                        ),
                    ));
                }
            }
        }
    })
}

/// A one-line summary of `edit` on `cal` (the calendar before it), for the
/// audit record.
pub fn describe_edit(cal: &LaunchCalendar, edit: &CalendarEdit) -> String {
    fn removed(kind: &str, i: usize, label: Option<String>) -> String {
        match label {
            Some(l) => format!("removed {kind}[{i}]: {l}"),
            None => format!("removed {kind}[{i}]"),
        }
    }
    match edit {
        CalendarEdit::AddRule(r) => format!("added launch rule {}", describe_rule(r)),
        CalendarEdit::AddBlackout(b) => format!("added blackout {}", describe_blackout(b)),
        CalendarEdit::AddExtraSlot(s) => format!("added one-off slot {}", describe_extra_slot(s)),
        CalendarEdit::RemoveRule(i) => removed("rules", *i, cal.rules.get(*i).map(describe_rule)),
        CalendarEdit::RemoveBlackout(i) => {
            removed("blackouts", *i, cal.blackouts.get(*i).map(describe_blackout))
        }
        CalendarEdit::RemoveExtraSlot(i) => removed(
            "extra_slots",
            *i,
            cal.extra_slots.get(*i).map(describe_extra_slot),
        ),
    }
}

fn describe_rule(r: &LaunchRule) -> String {
    let days: Vec<String> = weekdays(r.days).iter().map(|d| format!("{d:?}")).collect();
    format!(
        "{} ({} {} {}, room for {})",
        quoted(&r.name),
        days.join(","),
        r.time.strftime("%H:%M"),
        quoted(&r.tz),
        r.capacity
    )
}

fn describe_blackout(b: &Blackout) -> String {
    format!(
        "{} to {} ({})",
        format_instant(b.start),
        format_instant(b.end),
        quoted(&b.reason)
    )
}

fn describe_extra_slot(s: &ExtraSlot) -> String {
    format!(
        "{} {} (room for {})",
        quoted(&s.name),
        format_instant(s.at),
        s.capacity
    )
}

impl From<Refused> for Error {
    fn from(r: Refused) -> Self {
        let message = r.to_string();
        match r.reason {
            Refusal::NoSuchRegion { .. } => Error::NotFound(message),
            Refusal::NotARegion { .. } => Error::invalid("regions", message),
            Refusal::WrongState
            | Refusal::Held { .. }
            | Refusal::NotFailed { .. }
            | Refusal::NotSkippable { .. }
            | Refusal::NotHeld
            | Refusal::HeldAfterOtherWave { .. } => Error::FailedPrecondition(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_goes_to_the_wire_and_back() {
        for s in State::ALL {
            assert_eq!(state(state_to_wire(s)), Some(s));
            assert_eq!(wire::RolloutState::short_name_of(state_to_wire(s)), s.name());
        }
        assert_eq!(state(0), None);
        assert_eq!(state(99), None);
        for s in StepState::ALL {
            assert_eq!(step_state(step_state_to_wire(s)), s);
            assert_eq!(wire::StepState::short_name_of(step_state_to_wire(s)), s.name());
        }
        assert_eq!(step_state(0), StepState::Pending);
        for c in [
            None,
            Some(PauseCause::Manual),
            Some(PauseCause::Failure),
            Some(PauseCause::Hold),
        ] {
            assert_eq!(pause_cause(pause_cause_to_wire(c)), c);
        }
    }

    #[test]
    fn a_view_carries_the_spec_with_defaults() {
        let r = wire::Rollout {
            id: "r".into(),
            state: state_to_wire(State::Running),
            spec: Some(wire::RolloutSpec {
                on_failure: wire::OnFailure::RollbackWave.into(),
                bake_per_wave: vec![spec::proto_duration(jiff::SignedDuration::from_mins(10))],
                ..Default::default()
            }),
            ..Default::default()
        };
        let v = view(&r, &[], Err(String::new())).unwrap();
        assert_eq!(v.policy, FailurePolicy::RollbackWave);
        assert_eq!(v.bake_of(3), jiff::SignedDuration::from_mins(10));
        assert_eq!((v.apply_time, v.concurrency), (DEFAULT_APPLY_TIME, 1));
        let unknown = wire::Rollout { state: 0, ..r };
        assert!(view(&unknown, &[], Err(String::new())).is_err());
    }

    #[test]
    fn resume_with_a_bake_sets_it_from_a_wave_on() {
        let mins = |m| spec::proto_duration(jiff::SignedDuration::from_mins(m));
        let mut r = wire::Rollout {
            wave_count: 3,
            spec: Some(wire::RolloutSpec {
                bake: Some(mins(60)),
                ..Default::default()
            }),
            ..Default::default()
        };
        apply_effects(
            &[
                Effect::SetBake {
                    from_wave: 2,
                    bake: jiff::SignedDuration::from_mins(5),
                },
                Effect::SetConcurrency(4),
            ],
            &mut r,
        );
        let spec = r.spec.unwrap_or_default();
        assert_eq!(spec.bake_per_wave, [mins(60), mins(5), mins(5)]);
        assert_eq!(spec.concurrency, 4);
    }
}
