//! The slot choice of ScheduleGa: the earliest slot at least [`MIN_LEAD`]
//! ahead, with room, outside blackouts, with go-to-market done, and for
//! which the roll-out plan ends at least [`PLAN_MARGIN`] before it; every
//! earlier slot is listed with why it was skipped. And the batch version,
//! first ready first served.

use std::collections::BTreeMap;
use std::fmt;

use jiff::{SignedDuration, Timestamp};

use super::{
    CalendarError, CandidateSlot, DEFAULT_HORIZON, LaunchCalendar, MIN_LEAD, PLAN_MARGIN, Slot, add,
    format_instant,
};
use crate::planner::{PlanError, PlanInput, format_duration};

/// The go-to-market readiness of a tile, as the choice needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gtm {
    /// Every item done.
    Done,
    /// Items pending, but a person overrode the requirement (audited, and
    /// shown in the answer).
    Overridden,
    /// Items pending. With `ready_by` (the latest due date of the pending
    /// items), slots before it are skipped; without one, every slot is.
    Pending {
        /// When the pending items are due to be done.
        ready_by: Option<Timestamp>,
    },
}

/// Why a slot was passed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// Before the `not_before` asked for.
    NotBefore {
        /// The moment asked for.
        not_before: Timestamp,
    },
    /// Less than [`MIN_LEAD`] after `now`.
    UnderLeadTime {
        /// `now` + [`MIN_LEAD`].
        earliest: Timestamp,
    },
    /// Inside a blackout.
    Blackout {
        /// Index into the calendar's `blackouts`.
        index: usize,
        /// Its reason.
        reason: String,
    },
    /// Go-to-market work not done by then.
    GtmPending {
        /// When it is due, if known.
        ready_by: Option<Timestamp>,
    },
    /// Every place taken.
    Full {
        /// Tiles booked.
        booked: u32,
        /// The slot's capacity.
        capacity: u32,
    },
    /// The planner finds no roll-out ending [`PLAN_MARGIN`] before the slot.
    PlanDoesNotFit {
        /// The end of the plan found (late), or `None` when the planner
        /// found no plan at all.
        planned_end: Option<Timestamp>,
        /// The slot minus [`PLAN_MARGIN`].
        deadline: Timestamp,
    },
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::NotBefore { not_before } => {
                write!(f, "before the asked {}", format_instant(*not_before))
            }
            SkipReason::UnderLeadTime { earliest } => write!(
                f,
                "under {} away (the earliest GA is {})",
                rule_duration(MIN_LEAD),
                format_instant(*earliest)
            ),
            SkipReason::Blackout { index, reason } => {
                write!(f, "blackout {}", crate::quote::quoted(reason))?;
                write!(f, " (blackouts[{index}])")
            }
            SkipReason::GtmPending { ready_by: Some(t) } => {
                write!(f, "go-to-market pending (due {})", format_instant(*t))
            }
            SkipReason::GtmPending { ready_by: None } => write!(f, "go-to-market pending (no due date)"),
            SkipReason::Full { booked, capacity } => write!(f, "slot full ({booked} of {capacity} booked)"),
            SkipReason::PlanDoesNotFit {
                planned_end: Some(end),
                deadline,
            } => write!(
                f,
                "the plan cannot fit: it ends {}, {} after the deadline {} (GA - {})",
                format_instant(*end),
                format_duration(deadline.duration_until(*end)),
                format_instant(*deadline),
                rule_duration(PLAN_MARGIN)
            ),
            SkipReason::PlanDoesNotFit {
                planned_end: None, ..
            } => {
                write!(f, "the plan cannot fit: the planner finds no plan")
            }
        }
    }
}

/// A rule's duration as the domain says it: `7 days`, `24h`.
fn rule_duration(d: SignedDuration) -> String {
    let hours = d.as_hours();
    if SignedDuration::from_hours(hours) != d {
        format_duration(d)
    } else if hours % 24 == 0 && hours > 24 {
        format!("{} days", hours / 24)
    } else {
        format!("{hours}h")
    }
}

/// A slot passed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The slot's moment.
    pub at: Timestamp,
    /// Why.
    pub reason: SkipReason,
}

/// How many slots were skipped for each reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SkipCounts {
    /// Before `not_before`.
    pub not_before: usize,
    /// Under [`MIN_LEAD`] away.
    pub under_lead_time: usize,
    /// Blacked out.
    pub blackout: usize,
    /// Go-to-market pending.
    pub gtm_pending: usize,
    /// Full.
    pub full: usize,
    /// The plan cannot fit.
    pub plan_does_not_fit: usize,
}

impl SkipCounts {
    /// Counts `skipped` by reason.
    pub fn of(skipped: &[Skipped]) -> Self {
        let mut c = SkipCounts::default();
        for s in skipped {
            match s.reason {
                SkipReason::NotBefore { .. } => c.not_before += 1,
                SkipReason::UnderLeadTime { .. } => c.under_lead_time += 1,
                SkipReason::Blackout { .. } => c.blackout += 1,
                SkipReason::GtmPending { .. } => c.gtm_pending += 1,
                SkipReason::Full { .. } => c.full += 1,
                SkipReason::PlanDoesNotFit { .. } => c.plan_does_not_fit += 1,
            }
        }
        c
    }

    /// All slots counted.
    pub fn total(&self) -> usize {
        self.not_before
            + self.under_lead_time
            + self.blackout
            + self.gtm_pending
            + self.full
            + self.plan_does_not_fit
    }
}

impl fmt::Display for SkipCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let under = format!("under {} away", rule_duration(MIN_LEAD));
        let parts: Vec<String> = [
            (self.not_before, "before the asked moment"),
            (self.under_lead_time, under.as_str()),
            (self.blackout, "blacked out"),
            (self.gtm_pending, "go-to-market pending"),
            (self.full, "full"),
            (self.plan_does_not_fit, "the plan cannot fit"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        if parts.is_empty() {
            write!(f, "the calendar has no launch slot in that time")
        } else {
            write!(f, "{}", parts.join(", "))
        }
    }
}

/// The slot chosen, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    /// The slot.
    pub slot: Slot,
    /// Tiles booked in it before this one.
    pub booked: u32,
    /// When the roll-out planned for it ends.
    pub planned_end: Timestamp,
    /// `slot - PLAN_MARGIN - planned_end` (never negative).
    pub slack: SignedDuration,
    /// The go-to-market readiness the choice was made with. Committing the
    /// date needs [`Gtm::Done`] or [`Gtm::Overridden`]; with
    /// [`Gtm::Pending`] the slot is only a proposal.
    pub gtm: Gtm,
    /// Every earlier slot in the horizon, with why it was skipped, in order.
    pub skipped: Vec<Skipped>,
}

/// No slot in the horizon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoSlot {
    /// No slot before this moment (`now` + horizon).
    pub before: Timestamp,
    /// Every slot in the horizon, with why it was skipped, in order.
    pub skipped: Vec<Skipped>,
    /// The same, counted by reason.
    pub counts: SkipCounts,
}

/// The answer of [`choose`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// A slot fits.
    Chosen(Chosen),
    /// None fits before a moment.
    NoSlot(NoSlot),
}

impl Chosen {
    /// Whether the date may be committed: go-to-market done or overridden.
    pub fn committable(&self) -> bool {
        !matches!(self.gtm, Gtm::Pending { .. })
    }
}

impl Choice {
    /// The chosen slot's moment, if any.
    pub fn ga(&self) -> Option<Timestamp> {
        match self {
            Choice::Chosen(c) => Some(c.slot.at),
            Choice::NoSlot(_) => None,
        }
    }

    /// The skipped slots.
    pub fn skipped(&self) -> &[Skipped] {
        match self {
            Choice::Chosen(c) => &c.skipped,
            Choice::NoSlot(n) => &n.skipped,
        }
    }
}

impl fmt::Display for Choice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Choice::Chosen(c) => {
                write!(
                    f,
                    "GA {}: {} of {} booked before; the roll-out ends {}, slack {}",
                    format_instant(c.slot.at),
                    c.booked,
                    c.slot.capacity,
                    format_instant(c.planned_end),
                    format_duration(c.slack)
                )?;
                match c.gtm {
                    Gtm::Done => {}
                    Gtm::Overridden => write!(f, "; go-to-market pending, OVERRIDDEN")?,
                    Gtm::Pending { .. } => {
                        write!(f, "; go-to-market pending: a proposal, to commit once it is done")?
                    }
                }
            }
            Choice::NoSlot(n) => {
                write!(f, "no slot before {}: {}", format_instant(n.before), n.counts)?;
            }
        }
        for s in self.skipped() {
            write!(f, "\n  skipped {}: {}", format_instant(s.at), s.reason)?;
        }
        Ok(())
    }
}

/// Tiles booked per slot moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reservations(BTreeMap<Timestamp, u32>);

impl Reservations {
    /// No booking.
    pub fn new() -> Self {
        Self::default()
    }

    /// Tiles booked at `at`.
    pub fn booked(&self, at: Timestamp) -> u32 {
        self.0.get(&at).copied().unwrap_or(0)
    }

    /// Sets the count at `at` (as read from the store).
    pub fn set(&mut self, at: Timestamp, booked: u32) {
        if booked == 0 {
            self.0.remove(&at);
        } else {
            self.0.insert(at, booked);
        }
    }

    /// Books one tile into `slot`; false (nothing changed) when it is full.
    pub fn book(&mut self, slot: &Slot) -> bool {
        let n = self.booked(slot.at);
        if n >= slot.capacity {
            return false;
        }
        self.0.insert(slot.at, n + 1);
        true
    }

    /// Frees one place at `at` (a tile moved away).
    pub fn release(&mut self, at: Timestamp) {
        let n = self.booked(at).saturating_sub(1);
        self.set(at, n);
    }

    /// Every slot moment with its bookings, in order.
    pub fn iter(&self) -> impl Iterator<Item = (Timestamp, u32)> + '_ {
        self.0.iter().map(|(t, n)| (*t, *n))
    }
}

/// What [`choose`] may be told besides the calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChooseOptions {
    /// Look no further than `now` + this ([`DEFAULT_HORIZON`]).
    pub horizon: SignedDuration,
    /// Consider no slot before this.
    pub not_before: Option<Timestamp>,
}

impl Default for ChooseOptions {
    fn default() -> Self {
        Self {
            horizon: DEFAULT_HORIZON,
            not_before: None,
        }
    }
}

/// Picks the GA slot of one ready tile: the earliest slot in
/// `[now, now + horizon)` that is at least [`MIN_LEAD`] after `now`, not
/// before `not_before`, outside every blackout, when go-to-market is done
/// (or overridden), with room left after `reservations`, and for which
/// `plan_end(slot)` (when the roll-out planned for a GA at that slot would
/// end; `None` when there is no plan) is at least [`PLAN_MARGIN`] before the
/// slot. `plan_end` is called only for slots passing every other test, in
/// order, so an expensive planner runs as little as possible.
///
/// Nothing is booked: see [`schedule_batch`] or [`Reservations::book`].
pub fn choose<F>(
    calendar: &LaunchCalendar,
    now: Timestamp,
    reservations: &Reservations,
    gtm: Gtm,
    options: &ChooseOptions,
    plan_end: F,
) -> Result<Choice, CalendarError>
where
    F: FnMut(Timestamp) -> Option<Timestamp>,
{
    let until = add(now, options.horizon, "horizon")?;
    let candidates = calendar.candidate_slots(now, until)?;
    choose_among(
        calendar,
        &candidates,
        now,
        until,
        reservations,
        gtm,
        options,
        plan_end,
    )
}

#[allow(clippy::too_many_arguments)]
fn choose_among<F>(
    calendar: &LaunchCalendar,
    candidates: &[CandidateSlot],
    now: Timestamp,
    until: Timestamp,
    reservations: &Reservations,
    gtm: Gtm,
    options: &ChooseOptions,
    mut plan_end: F,
) -> Result<Choice, CalendarError>
where
    F: FnMut(Timestamp) -> Option<Timestamp>,
{
    let earliest = add(now, MIN_LEAD, "now")?;
    let mut skipped = Vec::new();
    for c in candidates {
        let at = c.slot.at;
        let reason = if let Some(nb) = options.not_before.filter(|nb| at < *nb) {
            Some(SkipReason::NotBefore { not_before: nb })
        } else if at < earliest {
            Some(SkipReason::UnderLeadTime { earliest })
        } else if let Some(i) = c.blackout {
            Some(SkipReason::Blackout {
                index: i,
                reason: calendar
                    .blackouts
                    .get(i)
                    .map(|b| b.reason.clone())
                    .unwrap_or_default(),
            })
        } else if let Gtm::Pending { ready_by } = gtm
            && ready_by.is_none_or(|r| at < r)
        {
            Some(SkipReason::GtmPending { ready_by })
        } else if reservations.booked(at) >= c.slot.capacity {
            Some(SkipReason::Full {
                booked: reservations.booked(at),
                capacity: c.slot.capacity,
            })
        } else {
            let deadline = at.checked_sub(PLAN_MARGIN).map_err(super::time_err("slot"))?;
            match plan_end(at) {
                Some(end) if end <= deadline => {
                    return Ok(Choice::Chosen(Chosen {
                        slot: c.slot.clone(),
                        booked: reservations.booked(at),
                        planned_end: end,
                        slack: end.duration_until(deadline),
                        gtm,
                        skipped,
                    }));
                }
                planned_end => Some(SkipReason::PlanDoesNotFit {
                    planned_end,
                    deadline,
                }),
            }
        };
        if let Some(reason) = reason {
            skipped.push(Skipped { at, reason });
        }
    }
    let counts = SkipCounts::of(&skipped);
    Ok(Choice::NoSlot(NoSlot {
        before: until,
        skipped,
        counts,
    }))
}

/// A boxed `plan_end` closure, for batches whose tiles plan differently.
pub type BoxedPlanEnd = Box<dyn FnMut(Timestamp) -> Option<Timestamp>>;

/// One tile of a batch.
#[derive(Debug, Clone)]
pub struct BatchTile<F> {
    /// The tile id (ties on `ready_at` go to the smaller id).
    pub id: String,
    /// When the tile became ready: the earlier, the sooner it is served.
    pub ready_at: Timestamp,
    /// Its go-to-market readiness.
    pub gtm: Gtm,
    /// When the roll-out planned for a GA at a slot would end (see [`choose`]).
    pub plan_end: F,
}

/// A tile's answer in a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchChoice {
    /// The tile id.
    pub id: String,
    /// Its choice (already booked into the reservations when chosen).
    pub choice: Choice,
}

/// Schedules many tiles fairly: first ready first served (by `ready_at`,
/// ties by id), each choosing as [`choose`] does against the reservations
/// left by those before it, and booking its slot into `reservations`, so no
/// slot is ever overfilled. Answers come back in that order. The calendar's
/// slots are enumerated once for the whole batch.
pub fn schedule_batch<F>(
    calendar: &LaunchCalendar,
    now: Timestamp,
    reservations: &mut Reservations,
    mut tiles: Vec<BatchTile<F>>,
    options: &ChooseOptions,
) -> Result<Vec<BatchChoice>, CalendarError>
where
    F: FnMut(Timestamp) -> Option<Timestamp>,
{
    let until = add(now, options.horizon, "horizon")?;
    let candidates = calendar.candidate_slots(now, until)?;
    tiles.sort_by(|a, b| a.ready_at.cmp(&b.ready_at).then_with(|| a.id.cmp(&b.id)));
    let mut out = Vec::with_capacity(tiles.len());
    for tile in tiles {
        let choice = choose_among(
            calendar,
            &candidates,
            now,
            until,
            reservations,
            tile.gtm,
            options,
            tile.plan_end,
        )?;
        if let Choice::Chosen(c) = &choice {
            // choose_among only picks a slot with room.
            reservations.book(&c.slot);
        }
        out.push(BatchChoice { id: tile.id, choice });
    }
    Ok(out)
}

/// The `plan_end` closure backed by the real planner: for each slot, plans
/// `input` as a launch with GA at the slot (earliest start GA - 7 days, or
/// `input.now` if later) and returns when it ends. The deadline is set far
/// away so that a late plan comes back as a plan (its end then fails the
/// [`PLAN_MARGIN`] test) without the planner's costly search for
/// suggestions; an input the planner refuses (no region, unknown region...)
/// gives `None`.
pub fn plan_end_with_planner(input: &PlanInput) -> impl FnMut(Timestamp) -> Option<Timestamp> + use<> {
    let mut input = input.clone();
    move |ga| {
        input.ga = Some(ga);
        input.earliest_start = None;
        input.deadline = Some(ga.checked_add(SignedDuration::from_hours(24 * 3650)).ok()?);
        match crate::planner::plan(&input) {
            Ok(p) => Some(p.planned_end),
            Err(PlanError::Infeasible(i)) => Some(i.plan.planned_end),
            Err(_) => None,
        }
    }
}
