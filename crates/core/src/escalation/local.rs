//! Local time in an IANA zone, with the escalation service's daylight-saving
//! rules, and weekly windows of local time (working hours, a layer's
//! active hours).
//!
//! **The DST rules.** Every local time in a definition (a rotation's
//! handoff, the edges of working hours) becomes an instant through
//! [`resolve`]:
//!
//! - a local time that occurs twice (the clocks go back: 01:30 on
//!   2026-11-01 in America/Chicago happens at 01:30 CDT, then again an
//!   hour later at 01:30 CST) is its **first** occurrence, the one before
//!   the clocks go back;
//! - a local time that does not exist (the clocks jump forward: 02:30 on
//!   2026-03-08 in America/Chicago) moves to the **next valid minute**, the
//!   instant of the jump itself (03:00 CDT). This is not jiff's
//!   "compatible" choice, which adds the gap's length (03:30); so the gap
//!   case is computed from the zone's transition.

use std::fmt;

use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::quote::quoted;

/// The instant of local `dt` in `tz` under the module's DST rules (the
/// first occurrence of a repeated time; the end of the gap for a missing
/// one). `None` only when out of jiff's range.
pub fn resolve(tz: &TimeZone, dt: DateTime) -> Option<Timestamp> {
    let ambiguous = tz.to_ambiguous_timestamp(dt);
    match ambiguous.offset() {
        AmbiguousOffset::Unambiguous { .. } | AmbiguousOffset::Fold { .. } => ambiguous.earlier().ok(),
        AmbiguousOffset::Gap { before, .. } => {
            // `dt` read with the offset before the gap lands after the
            // jump; the jump is the latest transition before that.
            let after_jump = before
                .to_timestamp(dt)
                .ok()?
                .checked_add(SignedDuration::from_secs(1))
                .ok()?;
            tz.preceding(after_jump).next().map(|t| t.timestamp())
        }
    }
}

/// The zone named `name`, or a message saying it is unknown.
pub fn zone(name: &str) -> Result<TimeZone, String> {
    TimeZone::get(name).map_err(|_| {
        format!(
            "unknown time zone {}; use an IANA name such as \"Europe/Berlin\" or \"UTC\"",
            quoted(name)
        )
    })
}

/// A day of the week, as written in definitions (`mon` .. `sun`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Day {
    /// Monday.
    Mon,
    /// Tuesday.
    Tue,
    /// Wednesday.
    Wed,
    /// Thursday.
    Thu,
    /// Friday.
    Fri,
    /// Saturday.
    Sat,
    /// Sunday.
    Sun,
}

impl Day {
    /// Every day, Monday first.
    pub const ALL: [Day; 7] = [
        Day::Mon,
        Day::Tue,
        Day::Wed,
        Day::Thu,
        Day::Fri,
        Day::Sat,
        Day::Sun,
    ];

    /// Monday to Friday.
    pub const WEEKDAYS: [Day; 5] = [Day::Mon, Day::Tue, Day::Wed, Day::Thu, Day::Fri];

    /// jiff's weekday.
    pub fn weekday(self) -> Weekday {
        match self {
            Day::Mon => Weekday::Monday,
            Day::Tue => Weekday::Tuesday,
            Day::Wed => Weekday::Wednesday,
            Day::Thu => Weekday::Thursday,
            Day::Fri => Weekday::Friday,
            Day::Sat => Weekday::Saturday,
            Day::Sun => Weekday::Sunday,
        }
    }

    /// Days since Monday (0..7).
    pub fn index(self) -> i32 {
        i32::from(self.weekday().to_monday_zero_offset())
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Day::Mon => "mon",
            Day::Tue => "tue",
            Day::Wed => "wed",
            Day::Thu => "thu",
            Day::Fri => "fri",
            Day::Sat => "sat",
            Day::Sun => "sun",
        })
    }
}

/// Local hours on some days of the week, e.g. working hours Monday to
/// Friday 09:00 to 17:00. An `end` before `start` crosses midnight (a night
/// layer 20:00 to 08:00); the window belongs to the day it starts on. An
/// `end` equal to `start` is a whole day (24 hours of local time). The zone
/// is the owner's (the person's, the layer's rotation's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeeklyWindow {
    /// The days a window starts on; empty means every day.
    #[serde(default)]
    pub days: Vec<Day>,
    /// Its start, local time.
    pub start: Time,
    /// Its end (exclusive), local time.
    pub end: Time,
}

impl WeeklyWindow {
    /// Monday to Friday, 09:00 to 17:00.
    pub fn office_hours() -> Self {
        Self {
            days: Day::WEEKDAYS.to_vec(),
            start: Time::constant(9, 0, 0, 0),
            end: Time::constant(17, 0, 0, 0),
        }
    }

    fn starts_on(&self, date: Date) -> bool {
        self.days.is_empty() || self.days.iter().any(|d| d.weekday() == date.weekday())
    }

    /// The window starting on local `date`, as instants `[start, end)`, if
    /// one starts that day.
    pub fn on(&self, tz: &TimeZone, date: Date) -> Option<(Timestamp, Timestamp)> {
        if !self.starts_on(date) {
            return None;
        }
        let start = resolve(tz, date.to_datetime(self.start))?;
        let end_date = if self.end <= self.start {
            date.tomorrow().ok()?
        } else {
            date
        };
        let end = resolve(tz, end_date.to_datetime(self.end))?;
        Some((start, end))
    }

    /// The windows starting from the local day before `at` to `days_after`
    /// days after it, in order.
    fn around(&self, tz: &TimeZone, at: Timestamp, days_after: i32) -> Vec<(Timestamp, Timestamp)> {
        let today = tz.to_datetime(at).date();
        (-1..=days_after)
            .filter_map(|d| today.checked_add(jiff::Span::new().days(d)).ok())
            .filter_map(|date| self.on(tz, date))
            .collect()
    }

    /// Whether `at` is inside a window.
    pub fn contains(&self, tz: &TimeZone, at: Timestamp) -> bool {
        self.around(tz, at, 0).iter().any(|&(s, e)| s <= at && at < e)
    }

    /// `at` if it is inside a window, else the start of the next one
    /// (within two weeks; `None` if there is none, e.g. out of range).
    pub fn next_start(&self, tz: &TimeZone, at: Timestamp) -> Option<Timestamp> {
        if self.contains(tz, at) {
            return Some(at);
        }
        self.around(tz, at, 14)
            .into_iter()
            .map(|(s, _)| s)
            .find(|&s| s > at)
    }

    /// The first instant after `at` at which [`Self::contains`] may change
    /// (a window's start or end), within two weeks.
    pub fn next_edge(&self, tz: &TimeZone, at: Timestamp) -> Option<Timestamp> {
        self.around(tz, at, 14)
            .into_iter()
            .flat_map(|(s, e)| [s, e])
            .filter(|&t| t > at)
            .min()
    }

    /// The minutes of a week (Monday 00:00 is 0) the window covers, as
    /// half-open ranges, for comparing two windows in the same zone.
    pub fn week_minutes(&self) -> Vec<(i32, i32)> {
        const WEEK: i32 = 7 * 24 * 60;
        let minute = |t: Time| i32::from(t.hour()) * 60 + i32::from(t.minute());
        let (start, end) = (minute(self.start), minute(self.end));
        let len = if end <= start {
            end + 24 * 60 - start
        } else {
            end - start
        };
        let days: Vec<Day> = if self.days.is_empty() {
            Day::ALL.to_vec()
        } else {
            self.days.clone()
        };
        let mut out = Vec::new();
        for day in days {
            let s = day.index() * 24 * 60 + start;
            let e = s + len;
            if e <= WEEK {
                out.push((s, e));
            } else {
                out.push((s, WEEK));
                out.push((0, e - WEEK));
            }
        }
        out
    }

    /// Whether two windows (in the same zone) share a minute.
    pub fn overlaps(&self, other: &WeeklyWindow) -> bool {
        let theirs = other.week_minutes();
        self.week_minutes()
            .iter()
            .any(|&(s, e)| theirs.iter().any(|&(s2, e2)| s < e2 && s2 < e))
    }
}

impl fmt::Display for WeeklyWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = if self.days.is_empty() {
            "every day".to_string()
        } else {
            self.days.iter().map(Day::to_string).collect::<Vec<_>>().join(",")
        };
        write!(
            f,
            "{days} {}-{}",
            self.start.strftime("%H:%M"),
            self.end.strftime("%H:%M")
        )
    }
}
