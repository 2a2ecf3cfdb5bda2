//! The launch calendar: when tiles may go GA, and how many at once
//! (docs/domain.md, "The launch calendar"; issue 14).
//!
//! - [`LaunchCalendar`] holds recurring group launch days ([`LaunchRule`]:
//!   chosen weekdays at a wall-clock time in an IANA zone, with a maximum
//!   number of tiles per launch), blackout periods ([`Blackout`]: no GA
//!   inside them) and one-off extra slots ([`ExtraSlot`]).
//! - [`LaunchCalendar::validate`] refuses a calendar that contradicts itself,
//!   naming the field ([`CalendarError::field`]).
//! - [`LaunchCalendar::slots`] enumerates the launch slots between two
//!   instants, blackouts left out, in order, one step per local day.
//! - [`choose`] picks a ready tile's GA slot: the earliest at least
//!   [`MIN_LEAD`] ahead with room and a roll-out plan ending at least
//!   [`PLAN_MARGIN`] before it, explaining every earlier slot it skipped;
//!   [`schedule_batch`] does that for many tiles, first ready first served,
//!   never overfilling a slot.
//!
//! Nothing here reads the clock or a store: `now`, the reservations and the
//! planner (as a closure) are inputs.

mod choose;

use std::fmt;

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

pub use crate::planner::Days;
pub use choose::{
    BatchChoice, BatchTile, BoxedPlanEnd, Choice, ChooseOptions, Chosen, Gtm, NoSlot, Reservations,
    SkipCounts, SkipReason, Skipped, choose, plan_end_with_planner, schedule_batch,
};

/// A GA slot must be at least this far ahead of `now` (the week of notice
/// of docs/domain.md, "GA date"; the same rule as [`crate::tile::GA_LEAD`]).
pub const MIN_LEAD: SignedDuration = crate::tile::GA_LEAD;
/// The roll-out planned for a slot must end at least this long before it
/// (the planner's deadline, [`crate::planner::DEFAULT_GA_MARGIN`]).
pub const PLAN_MARGIN: SignedDuration = crate::planner::DEFAULT_GA_MARGIN;
/// How far ahead [`choose`] looks for a slot unless told otherwise.
pub const DEFAULT_HORIZON: SignedDuration = SignedDuration::from_hours(365 * 24);
/// A launch rule must yield at least one slot (outside blackouts) within
/// this long after `now`, or [`LaunchCalendar::validate`] refuses it.
pub const RULE_HORIZON: SignedDuration = SignedDuration::from_hours(365 * 24);

/// A recurring group launch day: every chosen weekday at `time` in `tz`.
/// The wall-clock time is kept across daylight-saving changes (Tuesday 17:00
/// Europe/Berlin is 15:00 UTC in summer and 16:00 UTC in winter). A time
/// that falls in a DST gap is taken as the instant the gap ends; one in a
/// fold at its first occurrence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchRule {
    /// A label shown in explanations, e.g. "Tuesday group launch".
    pub name: String,
    /// The weekdays on which a launch happens.
    pub days: Days,
    /// The local time of the launch on those days.
    pub time: Time,
    /// The IANA zone of `time`, e.g. "UTC" or "America/New_York".
    pub tz: String,
    /// At most this many tiles go GA in one launch (at least 1).
    pub capacity: u32,
}

/// A period `[start, end)` in which no tile goes GA (a holiday, a freeze).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blackout {
    /// First instant inside the blackout.
    pub start: Timestamp,
    /// First instant after it (after `start`).
    pub end: Timestamp,
    /// Why: "Christmas", "year-end freeze". Shown when a slot is skipped.
    pub reason: String,
}

impl Blackout {
    /// Whether `t` is inside the blackout.
    pub fn contains(&self, t: Timestamp) -> bool {
        self.start <= t && t < self.end
    }
}

/// A one-off launch slot in addition to the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraSlot {
    /// The GA moment.
    pub at: Timestamp,
    /// At most this many tiles (at least 1).
    pub capacity: u32,
    /// A label shown in explanations.
    pub name: String,
}

/// When launches may happen. Slots of several sources at the same instant
/// are one slot whose capacity is the sum.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LaunchCalendar {
    /// Recurring launch days.
    pub rules: Vec<LaunchRule>,
    /// Periods with no launch.
    pub blackouts: Vec<Blackout>,
    /// One-off slots.
    pub extra_slots: Vec<ExtraSlot>,
}

/// One change to a calendar (the CLI's `calendar add-slot|add-blackout|remove`).
/// Indices are those of the calendar read; the caller guards against
/// concurrent edits (an etag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CalendarEdit {
    /// Adds a launch rule.
    AddRule(LaunchRule),
    /// Adds a blackout.
    AddBlackout(Blackout),
    /// Adds a one-off slot.
    AddExtraSlot(ExtraSlot),
    /// Removes `rules[i]`.
    RemoveRule(usize),
    /// Removes `blackouts[i]`.
    RemoveBlackout(usize),
    /// Removes `extra_slots[i]`.
    RemoveExtraSlot(usize),
}

/// Where a slot comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SlotSource {
    /// `rules[i]`.
    Rule(usize),
    /// `extra_slots[i]`.
    Extra(usize),
}

/// One launch moment with its capacity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// The GA moment.
    pub at: Timestamp,
    /// How many tiles may go GA then (the sum over `sources`).
    pub capacity: u32,
    /// The rules and extra slots that yield it, rules first.
    pub sources: Vec<SlotSource>,
}

/// A slot, and the blackout (an index into `blackouts`) it falls in, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CandidateSlot {
    /// The slot.
    pub slot: Slot,
    /// `Some(i)` when `blackouts[i]` covers it (the first such).
    pub blackout: Option<usize>,
}

/// Why a calendar is refused. Each names the offending field, e.g.
/// `rules[0].capacity`, so a service can report it as a field violation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// An IANA zone name jiff does not know.
    #[error("{field}: unknown time zone {name}; use an IANA name such as \"UTC\" or \"Europe/Berlin\"")]
    UnknownTimeZone {
        /// e.g. `rules[0].tz`.
        field: String,
        /// The name given, quoted and bounded.
        name: String,
    },
    /// A launch rule on no weekday.
    #[error("{field}: the launch rule names no weekday; give at least one (e.g. Tuesday)")]
    NoDays {
        /// e.g. `rules[0].days`.
        field: String,
    },
    /// A capacity of 0.
    #[error("{field}: a launch needs room for at least 1 tile; got 0")]
    ZeroCapacity {
        /// e.g. `extra_slots[1].capacity`.
        field: String,
    },
    /// A blackout whose end is not after its start.
    #[error(
        "{field}: the blackout ends ({end}) at or before it starts ({start}); give an end after the start"
    )]
    BlackoutEndsBeforeStart {
        /// e.g. `blackouts[0].end`.
        field: String,
        /// Its start.
        start: Timestamp,
        /// Its end.
        end: Timestamp,
    },
    /// A blackout without a reason.
    #[error("{field}: a blackout needs a reason (\"Christmas\", \"year-end freeze\")")]
    NoReason {
        /// e.g. `blackouts[0].reason`.
        field: String,
    },
    /// A one-off slot before `now`.
    #[error("{field}: the slot {at} is in the past (now is {now}); give a future moment")]
    SlotInPast {
        /// e.g. `extra_slots[0].at`.
        field: String,
        /// The slot.
        at: Timestamp,
        /// The `now` it was checked against.
        now: Timestamp,
    },
    /// A one-off slot inside a blackout.
    #[error("{field}: the slot {at} is inside blackout {blackout} ({reason}); move the slot or the blackout")]
    SlotInBlackout {
        /// e.g. `extra_slots[0].at`.
        field: String,
        /// The slot.
        at: Timestamp,
        /// The blackout's field, e.g. `blackouts[2]`.
        blackout: String,
        /// The blackout's reason, quoted and bounded.
        reason: String,
    },
    /// A rule whose every slot in the next [`RULE_HORIZON`] is blacked out.
    #[error(
        "{field}: the launch rule yields no slot outside blackouts between {from} and {until}; \
         change its days or time, or shorten the blackouts"
    )]
    RuleYieldsNoSlot {
        /// e.g. `rules[1]`.
        field: String,
        /// `now`.
        from: Timestamp,
        /// `now` + [`RULE_HORIZON`].
        until: Timestamp,
    },
    /// An edit names an item that does not exist.
    #[error("{field}: no such item (the calendar has {len}); read the calendar again and retry")]
    NoSuchItem {
        /// e.g. `blackouts[7]`.
        field: String,
        /// How many items of that kind exist.
        len: usize,
    },
    /// Time arithmetic out of range.
    #[error("{field}: time out of range: {message}")]
    Time {
        /// The field being computed.
        field: String,
        /// jiff's message.
        message: String,
    },
}

impl CalendarError {
    /// The field path the error is about, e.g. `rules[0].capacity`.
    pub fn field(&self) -> &str {
        match self {
            CalendarError::UnknownTimeZone { field, .. }
            | CalendarError::NoDays { field }
            | CalendarError::ZeroCapacity { field }
            | CalendarError::BlackoutEndsBeforeStart { field, .. }
            | CalendarError::NoReason { field }
            | CalendarError::SlotInPast { field, .. }
            | CalendarError::SlotInBlackout { field, .. }
            | CalendarError::RuleYieldsNoSlot { field, .. }
            | CalendarError::NoSuchItem { field, .. }
            | CalendarError::Time { field, .. } => field,
        }
    }
}

fn time_err(field: impl Into<String>) -> impl FnOnce(jiff::Error) -> CalendarError {
    let field = field.into();
    move |e| CalendarError::Time {
        field,
        message: e.to_string(),
    }
}

/// `t + d`, naming `field` on overflow.
fn add(t: Timestamp, d: SignedDuration, field: &str) -> Result<Timestamp, CalendarError> {
    t.checked_add(d).map_err(time_err(field))
}

/// `Tue 8 Dec 2026 17:00 UTC`: how explanations print an instant.
pub fn format_instant(t: Timestamp) -> String {
    t.strftime("%a %-d %b %Y %H:%M UTC").to_string()
}

impl LaunchRule {
    /// Every Tuesday at 17:00 UTC with room for `capacity` tiles: the
    /// group launch day of docs/domain.md.
    pub fn tuesdays_17_utc(capacity: u32) -> Self {
        Self {
            name: "Tuesday group launch".into(),
            days: Days::of(&[jiff::civil::Weekday::Tuesday]),
            time: Time::constant(17, 0, 0, 0),
            tz: "UTC".into(),
            capacity,
        }
    }

    /// The rule's slots in `[from, to)`, in order: one step per local day.
    fn instants(
        &self,
        index: usize,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Timestamp>, CalendarError> {
        let field = format!("rules[{index}]");
        let tz = self.zone(index)?;
        let mut out = Vec::new();
        if from >= to || self.days.is_empty() {
            return Ok(out);
        }
        // A local date's launch instant is within a day of the date's UTC
        // midnight, so starting a day early and stopping a day late covers
        // every instant in range.
        let mut day: Date = tz
            .to_datetime(from)
            .date()
            .yesterday()
            .map_err(time_err(&*field))?;
        let last = tz.to_datetime(to).date().tomorrow().map_err(time_err(&*field))?;
        while day <= last {
            if self.days.contains(day.weekday()) {
                let at = tz
                    .to_ambiguous_timestamp(day.to_datetime(self.time))
                    .compatible()
                    .map_err(time_err(&*field))?;
                if from <= at && at < to {
                    out.push(at);
                }
            }
            day = day.tomorrow().map_err(time_err(&*field))?;
        }
        Ok(out)
    }

    fn zone(&self, index: usize) -> Result<TimeZone, CalendarError> {
        TimeZone::get(&self.tz).map_err(|_| CalendarError::UnknownTimeZone {
            field: format!("rules[{index}].tz"),
            name: crate::quote::quoted(&self.tz).to_string(),
        })
    }
}

impl LaunchCalendar {
    /// Checks the calendar against itself and `now`: every zone known, every
    /// rule on some weekday, every capacity at least 1, every blackout ending
    /// after it starts and giving a reason, every one-off slot in the future
    /// and outside blackouts, and every rule yielding a slot outside the
    /// blackouts within [`RULE_HORIZON`]. The first problem found is returned.
    ///
    /// Call [`LaunchCalendar::prune`] first on a stored calendar so that
    /// one-off slots that have passed do not refuse an edit.
    pub fn validate(&self, now: Timestamp) -> Result<(), CalendarError> {
        for (i, r) in self.rules.iter().enumerate() {
            r.zone(i)?;
            if r.days.is_empty() {
                return Err(CalendarError::NoDays {
                    field: format!("rules[{i}].days"),
                });
            }
            if r.capacity == 0 {
                return Err(CalendarError::ZeroCapacity {
                    field: format!("rules[{i}].capacity"),
                });
            }
        }
        for (i, b) in self.blackouts.iter().enumerate() {
            if b.end <= b.start {
                return Err(CalendarError::BlackoutEndsBeforeStart {
                    field: format!("blackouts[{i}].end"),
                    start: b.start,
                    end: b.end,
                });
            }
            if b.reason.trim().is_empty() {
                return Err(CalendarError::NoReason {
                    field: format!("blackouts[{i}].reason"),
                });
            }
        }
        for (i, s) in self.extra_slots.iter().enumerate() {
            if s.capacity == 0 {
                return Err(CalendarError::ZeroCapacity {
                    field: format!("extra_slots[{i}].capacity"),
                });
            }
            if s.at < now {
                return Err(CalendarError::SlotInPast {
                    field: format!("extra_slots[{i}].at"),
                    at: s.at,
                    now,
                });
            }
            if let Some(b) = self.blackout_at(s.at) {
                return Err(CalendarError::SlotInBlackout {
                    field: format!("extra_slots[{i}].at"),
                    at: s.at,
                    blackout: format!("blackouts[{b}]"),
                    reason: crate::quote::quoted(&self.blackouts[b].reason).to_string(),
                });
            }
        }
        let until = add(now, RULE_HORIZON, "rules")?;
        for (i, r) in self.rules.iter().enumerate() {
            let open = r
                .instants(i, now, until)?
                .into_iter()
                .any(|t| self.blackout_at(t).is_none());
            if !open {
                return Err(CalendarError::RuleYieldsNoSlot {
                    field: format!("rules[{i}]"),
                    from: now,
                    until,
                });
            }
        }
        Ok(())
    }

    /// The calendar after `edit` (indices as in `self`), then pruned of the
    /// past ([`LaunchCalendar::prune`]) and validated against `now` (errors
    /// name fields of the pruned calendar). On error `self` is unchanged and
    /// nothing is returned. A one-off slot added in the past is refused.
    pub fn edited(&self, edit: CalendarEdit, now: Timestamp) -> Result<LaunchCalendar, CalendarError> {
        fn remove<T>(items: &mut Vec<T>, i: usize, kind: &str) -> Result<(), CalendarError> {
            if i >= items.len() {
                return Err(CalendarError::NoSuchItem {
                    field: format!("{kind}[{i}]"),
                    len: items.len(),
                });
            }
            items.remove(i);
            Ok(())
        }
        let mut next = self.clone();
        match edit {
            CalendarEdit::AddRule(r) => next.rules.push(r),
            CalendarEdit::AddBlackout(b) => next.blackouts.push(b),
            CalendarEdit::AddExtraSlot(e) => {
                // Refused, not pruned away silently.
                if e.at < now {
                    return Err(CalendarError::SlotInPast {
                        field: format!("extra_slots[{}].at", next.extra_slots.len()),
                        at: e.at,
                        now,
                    });
                }
                next.extra_slots.push(e)
            }
            CalendarEdit::RemoveRule(i) => remove(&mut next.rules, i, "rules")?,
            CalendarEdit::RemoveBlackout(i) => remove(&mut next.blackouts, i, "blackouts")?,
            CalendarEdit::RemoveExtraSlot(i) => remove(&mut next.extra_slots, i, "extra_slots")?,
        }
        next.prune(now);
        next.validate(now)?;
        Ok(next)
    }

    /// Drops one-off slots before `now` and blackouts that ended by `now`:
    /// they can no longer matter.
    pub fn prune(&mut self, now: Timestamp) {
        self.extra_slots.retain(|s| s.at >= now);
        self.blackouts.retain(|b| b.end > now);
    }

    /// The first blackout (index) that covers `t`.
    pub fn blackout_at(&self, t: Timestamp) -> Option<usize> {
        self.blackouts.iter().position(|b| b.contains(t))
    }

    /// Every slot in `[from, to)`, in order, each with the blackout covering
    /// it, if any. Same-instant slots are merged (capacities added). The
    /// work is one step per local day per rule plus a sort, never a walk
    /// over minutes.
    pub fn candidate_slots(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<CandidateSlot>, CalendarError> {
        let mut raw: Vec<(Timestamp, SlotSource, u32)> = Vec::new();
        for (i, r) in self.rules.iter().enumerate() {
            raw.extend(
                r.instants(i, from, to)?
                    .into_iter()
                    .map(|t| (t, SlotSource::Rule(i), r.capacity)),
            );
        }
        for (i, s) in self.extra_slots.iter().enumerate() {
            if from <= s.at && s.at < to {
                raw.push((s.at, SlotSource::Extra(i), s.capacity));
            }
        }
        raw.sort_unstable();
        let mut out: Vec<CandidateSlot> = Vec::with_capacity(raw.len());
        for (at, source, capacity) in raw {
            match out.last_mut() {
                Some(last) if last.slot.at == at => {
                    last.slot.capacity = last.slot.capacity.saturating_add(capacity);
                    last.slot.sources.push(source);
                }
                _ => out.push(CandidateSlot {
                    slot: Slot {
                        at,
                        capacity,
                        sources: vec![source],
                    },
                    blackout: self.blackout_at(at),
                }),
            }
        }
        Ok(out)
    }

    /// The open slots in `[from, to)`: [`LaunchCalendar::candidate_slots`]
    /// without those inside a blackout.
    pub fn slots(&self, from: Timestamp, to: Timestamp) -> Result<Vec<Slot>, CalendarError> {
        Ok(self
            .candidate_slots(from, to)?
            .into_iter()
            .filter(|c| c.blackout.is_none())
            .map(|c| c.slot)
            .collect())
    }

    /// A label for a slot's sources: the rule and extra-slot names.
    pub fn describe_sources(&self, slot: &Slot) -> String {
        let names: Vec<&str> = slot
            .sources
            .iter()
            .map(|s| match *s {
                SlotSource::Rule(i) => self.rules.get(i).map_or("?", |r| r.name.as_str()),
                SlotSource::Extra(i) => self.extra_slots.get(i).map_or("?", |e| e.name.as_str()),
            })
            .collect();
        names.join(" + ")
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (room for {})", format_instant(self.at), self.capacity)
    }
}

#[cfg(test)]
mod tests;
