//! When a tile's credential is rotated next ([`next_rotation`]): every
//! `every_days` days, inside a daily window of local time in an IANA zone,
//! outside blackouts.
//!
//! A window whose end is before its start crosses midnight (22:00 to
//! 02:00 is four hours, starting each evening); a window whose end equals
//! its start is empty and refused. Local times are daylight-saving
//! correct: a window edge that falls in a gap (the clocks jump forward)
//! moves forward by the gap, one in a fold (the clocks go back) is its
//! earlier instant (jiff's "compatible" choice). The interval is counted
//! in local calendar days, so "every 30 days" keeps its local time across
//! a change.

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use crate::quote::quoted;

/// How often a tile's credential is rotated, and when in the day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationSchedule {
    /// Days between rotations (at least 1).
    pub every_days: u32,
    /// The daily window's start, local time.
    pub window_start: Time,
    /// Its end (exclusive), local time; before the start: the next day.
    pub window_end: Time,
    /// The IANA zone of the window ("Europe/Berlin").
    pub tz: String,
}

/// Why a schedule or a search is refused. The `Display` is the user-facing
/// message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// `every_days` is 0.
    #[error("every_days: a rotation schedule needs at least 1 day between rotations; got 0")]
    ZeroInterval,
    /// An unknown zone.
    #[error("tz: unknown time zone {name}; use an IANA name such as \"UTC\" or \"Europe/Berlin\"")]
    UnknownTimeZone {
        /// The name given, quoted and bounded.
        name: String,
    },
    /// A window whose end equals its start.
    #[error(
        "window: the rotation window starts and ends at {at}, so it is empty; give an end after the \
         start (or before it, for a window crossing midnight)"
    )]
    EmptyWindow {
        /// Its start (and end).
        at: Time,
    },
    /// A blackout that ends at or before it starts.
    #[error(
        "blackouts[{index}]: the blackout ends ({end}) at or before it starts ({start}); give an end after the start"
    )]
    BlackoutEndsBeforeStart {
        /// Its index.
        index: usize,
        /// Its start.
        start: Timestamp,
        /// Its end.
        end: Timestamp,
    },
    /// Time arithmetic out of range.
    #[error("time out of range: {message}")]
    Time {
        /// jiff's message.
        message: String,
    },
}

fn time_err(e: jiff::Error) -> ScheduleError {
    ScheduleError::Time {
        message: e.to_string(),
    }
}

impl RotationSchedule {
    /// Checks the schedule: at least one day between rotations, a known
    /// zone, a non-empty window. Returns the zone.
    pub fn validate(&self) -> Result<TimeZone, ScheduleError> {
        if self.every_days == 0 {
            return Err(ScheduleError::ZeroInterval);
        }
        let tz = TimeZone::get(&self.tz).map_err(|_| ScheduleError::UnknownTimeZone {
            name: quoted(&self.tz).to_string(),
        })?;
        if self.window_start == self.window_end {
            return Err(ScheduleError::EmptyWindow {
                at: self.window_start,
            });
        }
        Ok(tz)
    }

    /// Whether the window crosses midnight.
    pub fn crosses_midnight(&self) -> bool {
        self.window_end < self.window_start
    }

    /// The window that starts on local date `day`, as instants `[start, end)`.
    fn window(&self, tz: &TimeZone, day: Date) -> Result<(Timestamp, Timestamp), ScheduleError> {
        let start = tz
            .to_ambiguous_timestamp(day.to_datetime(self.window_start))
            .compatible()
            .map_err(time_err)?;
        let end_day = if self.crosses_midnight() {
            day.tomorrow().map_err(time_err)?
        } else {
            day
        };
        let end = tz
            .to_ambiguous_timestamp(end_day.to_datetime(self.window_end))
            .compatible()
            .map_err(time_err)?;
        Ok((start, end))
    }
}

/// The earliest instant at or after `max(now, last + every_days)` (local
/// calendar days) inside the schedule's window and outside every blackout
/// `[start, end)`; `None` if there is none within a year of that. The
/// schedule and the blackouts are validated first.
pub fn next_rotation(
    schedule: &RotationSchedule,
    last: Timestamp,
    blackouts: &[(Timestamp, Timestamp)],
    now: Timestamp,
) -> Result<Option<Timestamp>, ScheduleError> {
    let tz = schedule.validate()?;
    for (index, &(start, end)) in blackouts.iter().enumerate() {
        if end <= start {
            return Err(ScheduleError::BlackoutEndsBeforeStart { index, start, end });
        }
    }
    let due = last
        .to_zoned(tz.clone())
        .checked_add(i64::from(schedule.every_days).days())
        .map_err(time_err)?
        .timestamp();
    let from = now.max(due);
    let horizon = from
        .to_zoned(tz.clone())
        .checked_add(1.year())
        .map_err(time_err)?
        .timestamp();
    // A window crossing midnight may have started the local day before.
    let mut day = tz.to_datetime(from).date().yesterday().map_err(time_err)?;
    loop {
        let (start, end) = schedule.window(&tz, day)?;
        if start >= horizon {
            return Ok(None);
        }
        let mut t = start.max(from);
        // Step past every blackout covering `t` (they may chain).
        while let Some(e) = blackouts
            .iter()
            .filter(|(s, e)| *s <= t && t < *e)
            .map(|(_, e)| *e)
            .max()
        {
            t = e;
        }
        if t < end && t < horizon {
            return Ok(Some(t));
        }
        day = day.tomorrow().map_err(time_err)?;
    }
}
