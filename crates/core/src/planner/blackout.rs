//! Blackout windows: periods in which an apply may not *start*.
//!
//! The rule (docs/domain.md, "The planner"): a blackout window keeps an
//! apply from beginning, and a bake may run through one. The planner follows
//! exactly that: only the start instant of an apply is checked, so an apply that
//! starts one minute before a window opens runs into it, and bakes ignore
//! windows altogether.
//!
//! Windows are half-open, `[start, end)`: an apply may start at the very
//! instant a window ends. Recurring windows are civil (wall-clock) times in
//! an IANA time zone and are turned into instants with jiff for each day, so
//! daylight-saving changes are honoured without hand-written offsets:
//! a window's start that falls in a DST gap begins when the gap ends, and an
//! end that falls in a DST fold is taken at its *later* occurrence, so the
//! window always covers the whole wall-clock range it names.

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use super::PlanError;

/// A one-off period `[start, end)` in absolute time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    /// First instant inside the period.
    pub start: Timestamp,
    /// First instant after the period.
    pub end: Timestamp,
}

impl Period {
    /// A period from `start` (inclusive) to `end` (exclusive).
    pub fn new(start: Timestamp, end: Timestamp) -> Self {
        Self { start, end }
    }

    fn contains(&self, t: Timestamp) -> bool {
        self.start <= t && t < self.end
    }
}

/// A set of days of the week, on which a recurring window *opens* (a window
/// crossing midnight opens on the day named and closes on the next).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Days(u8);

impl Days {
    /// No day at all (rejected as a blackout rule: it would never apply).
    pub const NONE: Days = Days(0);
    /// Monday to Friday.
    pub const WEEKDAYS: Days = Days(0b0011111);
    /// Saturday and Sunday.
    pub const WEEKEND: Days = Days(0b1100000);
    /// Every day of the week.
    pub const EVERY_DAY: Days = Days(0b1111111);

    /// The set of the given days.
    pub fn of(days: &[Weekday]) -> Self {
        days.iter().fold(Days::NONE, |acc, d| acc.with(*d))
    }

    /// This set plus `day`.
    pub fn with(self, day: Weekday) -> Self {
        Days(self.0 | Self::bit(day))
    }

    /// Whether `day` is in the set.
    pub fn contains(self, day: Weekday) -> bool {
        self.0 & Self::bit(day) != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    fn bit(day: Weekday) -> u8 {
        1 << (day.to_monday_zero_offset() as u8)
    }
}

/// A window that opens every chosen day at the same wall-clock time.
///
/// `to <= from` means the window ends the next day (e.g. 22:00-06:00);
/// `to == from` is a whole day (24 wall-clock hours, 23 or 25 across a DST
/// change).
#[derive(Debug, Clone, PartialEq)]
pub struct Recurring {
    /// The days on which the window opens.
    pub days: Days,
    /// Local time at which the window opens.
    pub from: Time,
    /// Local time at which the window closes (the next day if `<= from`).
    pub to: Time,
    /// IANA zone the times are in; `None` means the region's own zone from
    /// `regions.toml`.
    pub tz: Option<String>,
}

impl Recurring {
    /// Monday to Friday, `from`-`to` in the region's own time zone: the
    /// usual "business hours" freeze.
    pub fn weekdays(from: Time, to: Time) -> Self {
        Self {
            days: Days::WEEKDAYS,
            from,
            to,
            tz: None,
        }
    }

    /// The same rule with the times in the named IANA zone instead.
    pub fn in_tz(mut self, tz: impl Into<String>) -> Self {
        self.tz = Some(tz.into());
        self
    }
}

/// The shape of one region's blackout.
#[derive(Debug, Clone, PartialEq)]
pub enum BlackoutWindow {
    /// A single period in absolute time.
    Once(Period),
    /// A wall-clock window repeating on chosen days.
    Recurring(Recurring),
}

/// A blackout that applies to one region only.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionBlackout {
    /// Region id, e.g. `aws:eu-central-1`. Must exist in the catalog; a
    /// blackout for a catalog region that is not being rolled out is ignored.
    pub region: String,
    /// When the region is blacked out.
    pub window: BlackoutWindow,
}

/// Every blackout a plan must respect.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Blackouts {
    /// Periods in which no region may start an apply (e.g. a company-wide
    /// freeze).
    pub global: Vec<Period>,
    /// Windows of single regions (e.g. local business hours).
    pub regions: Vec<RegionBlackout>,
}

/// A region rule with its time zone resolved.
#[derive(Debug, Clone)]
pub(crate) enum Rule {
    Once(Period),
    Recurring {
        days: Days,
        from: Time,
        to: Time,
        tz: TimeZone,
    },
}

/// How far past the requested time the planner looks for a free start before
/// it gives up: a rule set that blacks a region out for longer is an error.
pub const BLACKOUT_HORIZON: SignedDuration = SignedDuration::from_hours(24 * 400);

impl Rule {
    /// The latest end among this rule's windows that contain `t`, if any.
    fn containing_end(&self, t: Timestamp) -> Result<Option<Timestamp>, jiff::Error> {
        match self {
            Rule::Once(p) => Ok(p.contains(t).then_some(p.end)),
            Rule::Recurring { days, from, to, tz } => {
                // A window lasts at most one calendar day plus a DST shift,
                // so one that contains `t` opened on t's local date or on one
                // of the two before it.
                let today = tz.to_datetime(t).date();
                let mut best: Option<Timestamp> = None;
                let mut day = today.yesterday()?.yesterday()?;
                for _ in 0..3 {
                    if days.contains(day.weekday()) {
                        let (start, end) = window_on(day, *from, *to, tz)?;
                        if start <= t && t < end {
                            best = Some(best.map_or(end, |b| b.max(end)));
                        }
                    }
                    day = day.tomorrow()?;
                }
                Ok(best)
            }
        }
    }
}

/// The instants a recurring window opening on `day` covers.
pub(crate) fn window_on(
    day: Date,
    from: Time,
    to: Time,
    tz: &TimeZone,
) -> Result<(Timestamp, Timestamp), jiff::Error> {
    let start = tz.to_ambiguous_timestamp(day.to_datetime(from)).compatible()?;
    let end_day = if to <= from { day.tomorrow()? } else { day };
    let end = tz.to_ambiguous_timestamp(end_day.to_datetime(to)).later()?;
    Ok((start, end))
}

/// The earliest instant `>= t` at which an apply may start in a region with
/// these `rules`, given the `global` periods. Errors when there is none
/// within [`BLACKOUT_HORIZON`].
pub(crate) fn next_free(
    region: &str,
    t: Timestamp,
    rules: &[Rule],
    global: &[Period],
) -> Result<Timestamp, PlanError> {
    let limit = super::add(t, BLACKOUT_HORIZON)?;
    let mut at = t;
    loop {
        let mut moved = false;
        for p in global {
            if p.contains(at) {
                at = p.end;
                moved = true;
            }
        }
        for r in rules {
            let end = r.containing_end(at).map_err(|e| PlanError::Time(e.to_string()))?;
            if let Some(end) = end {
                at = end;
                moved = true;
            }
        }
        if !moved {
            return Ok(at);
        }
        if at > limit {
            return Err(PlanError::AlwaysBlackedOut {
                region: region.to_string(),
                from: t,
            });
        }
    }
}
