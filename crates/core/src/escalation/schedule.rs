//! On-call schedules: who is on call at any moment ([`who_is_on_call`]),
//! when that changes next ([`next_handoff`]), where nobody is
//! ([`coverage`]).
//!
//! A [`Schedule`] has **layers**, each a [`Rotation`] of people taking
//! turns, optionally active only some hours of the week. At any moment the
//! active layer with the highest `level` that has someone wins (layers of
//! the same level must not be active at the same time: a definition
//! error). **Overrides** then add, replace or remove a person for a span.
//!
//! A rotation hands off every shift length at its local handoff time, in
//! its IANA zone: shift `k` starts at local `start` + `handoff` plus `k`
//! shift lengths counted in **local clock time** (a 1-day shift hands off
//! at 09:00 local every day, including across daylight-saving changes, so
//! that day's shift is 23 or 25 hours long). The local handoff time becomes
//! an instant by the DST rules of [`super::local`]: a handoff at a local
//! time that occurs twice uses the first occurrence; one at a local time
//! that does not exist moves to the next valid minute (the end of the gap).

use std::collections::BTreeSet;

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Span, Timestamp};
use serde::{Deserialize, Serialize};

use super::local::{WeeklyWindow, resolve, zone};
use super::problems::Problems;
use crate::quote::quoted;

/// How far [`next_handoff`] looks ahead.
pub const HANDOFF_HORIZON: SignedDuration = SignedDuration::from_hours(366 * 24);

/// The most boundaries [`coverage`] walks before giving up (a bound on
/// work for huge windows of tiny shifts).
pub const MAX_SEGMENTS: usize = 100_000;

/// How long one shift lasts, in local clock time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShiftLength {
    /// Hours of local clock time (e.g. 12 for day and night shifts).
    Hours(u32),
    /// Days (e.g. 7 for a weekly rotation).
    Days(u32),
}

impl ShiftLength {
    /// The length in local clock hours.
    pub fn hours(self) -> i64 {
        match self {
            ShiftLength::Hours(h) => i64::from(h),
            ShiftLength::Days(d) => i64::from(d) * 24,
        }
    }
}

/// People taking turns: `people[0]` from the first handoff (`start` at
/// `handoff`, local), then `people[1]` one shift later, and round again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    /// Person ids, in turn order.
    pub people: Vec<String>,
    /// The length of one shift.
    pub shift_length: ShiftLength,
    /// The local time of day shifts hand off at.
    pub handoff: Time,
    /// The IANA zone of `handoff` and `start` ("America/Chicago").
    pub time_zone: String,
    /// The local date of the first handoff; nobody is on call before it.
    pub start: Date,
}

impl Rotation {
    /// The local date-time of handoff `k` (0: the first).
    fn handoff_local(&self, k: i64) -> Option<DateTime> {
        let hours = k.checked_mul(self.shift_length.hours())?;
        self.start
            .to_datetime(self.handoff)
            .checked_add(Span::new().try_hours(hours).ok()?)
            .ok()
    }

    /// The instant of handoff `k` in `tz`.
    fn handoff(&self, tz: &TimeZone, k: i64) -> Option<Timestamp> {
        resolve(tz, self.handoff_local(k)?)
    }

    /// The shift containing `at`: its number and `[start, end)`; `None`
    /// before the first handoff.
    fn shift_at(&self, tz: &TimeZone, at: Timestamp) -> Option<(i64, Timestamp, Timestamp)> {
        let first = self.handoff(tz, 0)?;
        if at < first || self.shift_length.hours() == 0 {
            return None;
        }
        let nominal = self.shift_length.hours() * 3600;
        let mut k = at.duration_since(first).as_secs() / nominal;
        // DST moves handoffs by at most a few hours: a step or two fixes
        // the estimate.
        while k > 0 && self.handoff(tz, k)? > at {
            k -= 1;
        }
        while self.handoff(tz, k + 1)? <= at {
            k += 1;
        }
        Some((k, self.handoff(tz, k)?, self.handoff(tz, k + 1)?))
    }

    /// The first handoff after `at`.
    fn next_handoff(&self, tz: &TimeZone, at: Timestamp) -> Option<Timestamp> {
        match self.shift_at(tz, at) {
            Some((_, _, end)) => Some(end),
            None => self.handoff(tz, 0).filter(|&t| t > at),
        }
    }
}

/// One layer of a schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    /// Its name, unique in the schedule ("weekly", "weekend").
    pub name: String,
    /// Where it has someone, the highest level wins.
    pub level: u32,
    /// Who takes turns.
    pub rotation: Rotation,
    /// When the layer applies, in the rotation's zone; none: always.
    #[serde(default)]
    pub active: Option<WeeklyWindow>,
}

/// What an override does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverrideKind {
    /// `person` is on call too.
    Add,
    /// `person` is replaced by `by` (nothing if `person` is not on call).
    Replace,
    /// `person` is not on call.
    Remove,
}

/// A change to who is on call for the span `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    /// What it does.
    pub kind: OverrideKind,
    /// The person added, replaced or removed.
    pub person: String,
    /// The replacement (only for [`OverrideKind::Replace`]).
    #[serde(default)]
    pub by: Option<String>,
    /// Its start.
    pub start: Timestamp,
    /// Its end (exclusive).
    pub end: Timestamp,
}

/// An on-call schedule ("primary").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// Its name, referenced by escalation policies.
    pub name: String,
    /// Its layers.
    pub layers: Vec<Layer>,
    /// Its overrides, applied in order.
    #[serde(default)]
    pub overrides: Vec<Override>,
}

/// One person on call at a moment, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnCall {
    /// The person's id.
    pub person: String,
    /// The layer that put them there (`None`: an override added them).
    pub layer: Option<String>,
    /// Whether an override put them there.
    pub by_override: bool,
    /// The shift (or override span) they are in, `[start, end)`.
    pub span: (Timestamp, Timestamp),
}

/// A span with nobody on call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// Its start.
    pub start: Timestamp,
    /// Its end (exclusive).
    pub end: Timestamp,
}

/// A schedule's coverage of a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    /// The schedule.
    pub schedule: String,
    /// The spans of the window with nobody on call, in order (merged).
    pub gaps: Vec<Gap>,
}

impl Coverage {
    /// Whether someone is on call throughout the window.
    pub fn is_complete(&self) -> bool {
        self.gaps.is_empty()
    }

    /// One warning a gap, for people: "schedule "primary": nobody is on
    /// call from … to … (2h)".
    pub fn warnings(&self) -> Vec<String> {
        self.gaps
            .iter()
            .map(|g| {
                format!(
                    "schedule {}: nobody is on call from {} to {} ({:#})",
                    quoted(&self.schedule),
                    g.start,
                    g.end,
                    g.end.duration_since(g.start)
                )
            })
            .collect()
    }
}

/// A validated schedule with its zones looked up.
struct Compiled<'a> {
    schedule: &'a Schedule,
    zones: Vec<TimeZone>,
}

impl<'a> Compiled<'a> {
    fn new(schedule: &'a Schedule) -> Result<Self, Problems> {
        validate_schedule(schedule)?;
        let zones = schedule
            .layers
            .iter()
            .map(|l| zone(&l.rotation.time_zone))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|m| {
                let mut p = Problems::default();
                p.push("layers", m);
                p
            })?;
        Ok(Self { schedule, zones })
    }

    fn layers(&self) -> impl Iterator<Item = (&'a Layer, &TimeZone)> {
        self.schedule.layers.iter().zip(self.zones.iter())
    }

    /// The layers' winner at `at`.
    fn layer_winner(&self, at: Timestamp) -> Option<OnCall> {
        self.layers()
            .filter(|(l, tz)| l.active.as_ref().is_none_or(|w| w.contains(tz, at)))
            .filter_map(|(l, tz)| {
                let (k, start, end) = l.rotation.shift_at(tz, at)?;
                let n = i64::try_from(l.rotation.people.len()).ok()?;
                let i = usize::try_from(k.rem_euclid(n)).ok()?;
                Some((l.level, l, i, start, end))
            })
            // The highest level; the first listed among equals.
            .fold(
                None,
                |best: Option<(u32, &Layer, usize, Timestamp, Timestamp)>, c| match best {
                    Some(b) if b.0 >= c.0 => Some(b),
                    _ => Some(c),
                },
            )
            .map(|(_, l, i, start, end)| OnCall {
                person: l.rotation.people[i].clone(),
                layer: Some(l.name.clone()),
                by_override: false,
                span: (start, end),
            })
    }

    fn at(&self, at: Timestamp) -> Vec<OnCall> {
        let mut on: Vec<OnCall> = self.layer_winner(at).into_iter().collect();
        for o in &self.schedule.overrides {
            if !(o.start <= at && at < o.end) {
                continue;
            }
            let by_override = |person: &str| OnCall {
                person: person.to_string(),
                layer: None,
                by_override: true,
                span: (o.start, o.end),
            };
            match o.kind {
                OverrideKind::Add => {
                    if !on.iter().any(|c| c.person == o.person) {
                        on.push(by_override(&o.person));
                    }
                }
                OverrideKind::Remove => on.retain(|c| c.person != o.person),
                OverrideKind::Replace => {
                    let by = o.by.as_deref().unwrap_or_default();
                    if on.iter().any(|c| c.person == o.person) {
                        on.retain(|c| c.person != o.person && c.person != by);
                        on.push(by_override(by));
                    }
                }
            }
        }
        on
    }

    /// The first instant after `at` at which who is on call may change.
    fn next_boundary(&self, at: Timestamp) -> Option<Timestamp> {
        let layers = self.layers().flat_map(|(l, tz)| {
            [
                l.rotation.next_handoff(tz, at),
                l.active.as_ref().and_then(|w| w.next_edge(tz, at)),
            ]
        });
        let overrides = self
            .schedule
            .overrides
            .iter()
            .flat_map(|o| [Some(o.start), Some(o.end)]);
        layers.chain(overrides).flatten().filter(|&t| t > at).min()
    }
}

fn people(on: &[OnCall]) -> BTreeSet<&str> {
    on.iter().map(|c| c.person.as_str()).collect()
}

fn out_of_range(what: &str) -> Problems {
    let mut p = Problems::default();
    p.push(what, "time out of range");
    p
}

/// Who is on call on `schedule` at `at`, overrides included: the winning
/// layer's person first, then people added by overrides. Empty: nobody.
/// The schedule is validated first.
pub fn who_is_on_call(schedule: &Schedule, at: Timestamp) -> Result<Vec<OnCall>, Problems> {
    Ok(Compiled::new(schedule)?.at(at))
}

/// The first instant after `at` (within [`HANDOFF_HORIZON`]) at which the
/// set of people on call changes, and who is on call from then. `None`:
/// no change within the horizon.
pub fn next_handoff(
    schedule: &Schedule,
    at: Timestamp,
) -> Result<Option<(Timestamp, Vec<OnCall>)>, Problems> {
    let c = Compiled::new(schedule)?;
    let horizon = at.checked_add(HANDOFF_HORIZON).map_err(|_| out_of_range("at"))?;
    let now = c.at(at);
    let mut t = at;
    while let Some(b) = c.next_boundary(t).filter(|&b| b <= horizon) {
        let then = c.at(b);
        if people(&then) != people(&now) {
            return Ok(Some((b, then)));
        }
        t = b;
    }
    Ok(None)
}

/// Where `schedule` has nobody on call within `[from, to)` (a warning, not
/// an error: the caller shows [`Coverage::warnings`]). The schedule is
/// validated first.
pub fn coverage(schedule: &Schedule, from: Timestamp, to: Timestamp) -> Result<Coverage, Problems> {
    let c = Compiled::new(schedule)?;
    let mut gaps: Vec<Gap> = Vec::new();
    let mut t = from;
    let mut walked = 0;
    while t < to {
        walked += 1;
        if walked > MAX_SEGMENTS {
            return Err(out_of_range("window: too many handoffs to check"));
        }
        let end = c.next_boundary(t).map_or(to, |b| b.min(to));
        if c.at(t).is_empty() {
            match gaps.last_mut() {
                Some(g) if g.end == t => g.end = end,
                _ => gaps.push(Gap { start: t, end }),
            }
        }
        t = end;
    }
    Ok(Coverage {
        schedule: schedule.name.clone(),
        gaps,
    })
}

/// Checks a schedule's definition and returns every problem with its path:
/// no layers, an unnamed or repeated layer, a rotation with nobody in it,
/// a zero shift, an unknown zone, two layers of the same level active at
/// the same time (overlapping), an override that ends before it starts or
/// a replacement without `by`.
pub fn validate_schedule(s: &Schedule) -> Result<(), Problems> {
    let mut p = Problems::default();
    if s.name.trim().is_empty() {
        p.push("name", "a schedule needs a name");
    }
    if s.layers.is_empty() {
        p.push("layers", "a schedule needs at least one layer");
    }
    let mut names = BTreeSet::new();
    for (i, l) in s.layers.iter().enumerate() {
        validate_layer(&mut p, &format!("layers[{i}]"), l);
        if !l.name.trim().is_empty() && !names.insert(l.name.as_str()) {
            p.push(
                format!("layers[{i}].name"),
                format!("{} names two layers; give each a unique name", quoted(&l.name)),
            );
        }
    }
    overlapping_layers(&mut p, &s.layers);
    for (i, o) in s.overrides.iter().enumerate() {
        validate_override(&mut p, &format!("overrides[{i}]"), o);
    }
    p.into_result(())
}

fn validate_layer(p: &mut Problems, path: &str, l: &Layer) {
    if l.name.trim().is_empty() {
        p.push(format!("{path}.name"), "a layer needs a name");
    }
    let r = &l.rotation;
    if r.people.is_empty() {
        p.push(
            format!("{path}.rotation.people"),
            "a rotation needs at least one person",
        );
    }
    for (j, person) in r.people.iter().enumerate() {
        if person.trim().is_empty() {
            p.push(format!("{path}.rotation.people[{j}]"), "must not be empty");
        }
    }
    if r.shift_length.hours() == 0 {
        p.push(format!("{path}.rotation.shift_length"), "must be more than zero");
    }
    if let Err(m) = zone(&r.time_zone) {
        p.push(format!("{path}.rotation.time_zone"), m);
    }
}

fn overlapping_layers(p: &mut Problems, layers: &[Layer]) {
    for (j, b) in layers.iter().enumerate() {
        for (i, a) in layers.iter().enumerate().take(j) {
            if a.level != b.level {
                continue;
            }
            let path = format!("layers[{j}]");
            let level = a.level;
            let clash = match (&a.active, &b.active) {
                (None, _) | (_, None) => true,
                (Some(wa), Some(wb)) => {
                    if a.rotation.time_zone != b.rotation.time_zone {
                        p.push(
                            format!("{path}.rotation.time_zone"),
                            format!(
                                "layers[{i}] has the same level {level} in another time zone; layers of \
                                 one level must share a zone so their hours can be checked for overlap"
                            ),
                        );
                        continue;
                    }
                    wa.overlaps(wb)
                }
            };
            if clash {
                p.push(
                    path,
                    format!(
                        "overlaps layers[{i}]: both are level {level} and active at the same time; give \
                         one a different level or make their active hours disjoint"
                    ),
                );
            }
        }
    }
}

fn validate_override(p: &mut Problems, path: &str, o: &Override) {
    if o.end <= o.start {
        p.push(
            format!("{path}.end"),
            format!(
                "the override ends ({}) at or before it starts ({}); give an end after the start",
                o.end, o.start
            ),
        );
    }
    if o.person.trim().is_empty() {
        p.push(format!("{path}.person"), "must not be empty");
    }
    match (o.kind, o.by.as_deref()) {
        (OverrideKind::Replace, None) => p.push(
            format!("{path}.by"),
            "a replace override needs `by`: who replaces the person",
        ),
        (OverrideKind::Replace, Some(by)) if by.trim().is_empty() => {
            p.push(format!("{path}.by"), "must not be empty")
        }
        (OverrideKind::Add | OverrideKind::Remove, Some(_)) => p.push(
            format!("{path}.by"),
            "only a replace override has `by`; remove it or use kind: replace",
        ),
        (OverrideKind::Replace, Some(_)) | (OverrideKind::Add | OverrideKind::Remove, None) => {}
    }
}
