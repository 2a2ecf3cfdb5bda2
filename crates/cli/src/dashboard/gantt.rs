//! The roll-out's Gantt chart as SVG: per wave, the bar planned at the
//! start, the actual one (to now while it runs) and the re-plan's
//! projection of the work left; the deadline (GA - 24 h) and GA as
//! vertical lines, now as a dashed one, blackout windows shaded. Pure
//! functions of the roll-out (and now), so the geometry is unit-tested.

use jiff::{SignedDuration, Timestamp, ToSpan as _};
use maud::{Markup, html};
use tilewave_proto::rollout::v1::{BlackoutWindow, LaunchBlackout, Rollout, StepState, blackout_window};

use crate::names::{from_proto_duration, from_proto_time};

/// A span of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Its start.
    pub start: Timestamp,
    /// Its end (after the start).
    pub end: Timestamp,
}

/// One wave's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// 1-based.
    pub wave: i32,
    /// How many regions.
    pub regions: usize,
    /// As planned when the roll-out started.
    pub planned: Option<Span>,
    /// What happened (to now while under way).
    pub actual: Option<Span>,
    /// The re-plan of the work left.
    pub projected: Option<Span>,
}

/// What the chart shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chart {
    /// One per wave.
    pub rows: Vec<Row>,
    /// Every region verified by then.
    pub deadline: Option<Timestamp>,
    /// The tile's GA moment.
    pub ga: Option<Timestamp>,
    /// Domain now.
    pub now: Option<Timestamp>,
    /// Blackout windows in the chart's range, with their names.
    pub blackouts: Vec<(Span, String)>,
}

/// The default apply time and bake (as the rollout service fills them in).
const APPLY: SignedDuration = SignedDuration::from_mins(5);
const BAKE: SignedDuration = SignedDuration::from_hours(4);

/// The bake of wave `wave` (1-based) in the roll-out's spec.
fn bake_of(r: &Rollout, wave: i32) -> SignedDuration {
    let Some(spec) = &r.spec else { return BAKE };
    let i = usize::try_from(wave - 1).unwrap_or(0);
    spec.bake_per_wave
        .get(i)
        .or(spec.bake_per_wave.last())
        .or(spec.bake.as_ref())
        .map_or(BAKE, from_proto_duration)
}

/// The launch calendar's blackouts (every plan's global blackouts) as
/// windows with their reasons.
pub fn calendar_windows(blackouts: &[LaunchBlackout]) -> Vec<(Span, String)> {
    blackouts
        .iter()
        .filter_map(|b| {
            let start = from_proto_time(b.start.as_ref())?;
            let end = from_proto_time(b.end.as_ref())?;
            (end > start).then(|| (Span { start, end }, b.reason.clone()))
        })
        .collect()
}

/// The chart of a roll-out at `now`, with the calendar's blackout windows.
pub fn chart(r: &Rollout, now: Option<Timestamp>, calendar: &[(Span, String)]) -> Chart {
    let apply = r
        .spec
        .as_ref()
        .and_then(|s| s.apply_time.as_ref())
        .map_or(APPLY, from_proto_duration);
    let waves = r
        .steps
        .iter()
        .map(|s| s.wave)
        .chain([r.wave_count])
        .max()
        .unwrap_or(0);
    let mut rows = Vec::new();
    for wave in 1..=waves {
        let steps: Vec<_> = r.steps.iter().filter(|s| s.wave == wave).collect();
        let min = |f: &dyn Fn(&tilewave_proto::rollout::v1::RolloutStep) -> Option<Timestamp>| {
            steps.iter().filter_map(|s| f(s)).min()
        };
        let planned_start = min(&|s| from_proto_time(s.planned_apply_start.as_ref()));
        let planned_last = steps
            .iter()
            .filter_map(|s| from_proto_time(s.planned_apply_start.as_ref()))
            .max();
        let planned = match (planned_start, planned_last) {
            (Some(start), Some(last)) => last
                .checked_add(apply + bake_of(r, wave))
                .ok()
                .map(|end| Span { start, end }),
            _ => None,
        };
        let started = min(&|s| from_proto_time(s.apply_started_at.as_ref()));
        let done = !steps.is_empty()
            && steps.iter().all(|s| {
                s.state == StepState::Verified as i32
                    || s.state == StepState::Skipped as i32
                    || s.state == StepState::RolledBack as i32
            });
        let finished = steps
            .iter()
            .filter_map(|s| from_proto_time(s.verified_at.as_ref()))
            .max();
        let actual = started.and_then(|start| {
            let end = if done { finished.or(now)? } else { now? };
            (end > start).then_some(Span { start, end })
        });
        let projected = r
            .plan
            .as_ref()
            .and_then(|p| p.waves.iter().find(|w| w.number == wave))
            .and_then(|w| {
                Some(Span {
                    start: from_proto_time(w.start.as_ref())?,
                    end: from_proto_time(w.end.as_ref())?,
                })
            })
            .filter(|_| !done);
        rows.push(Row {
            wave,
            regions: steps.len(),
            planned,
            actual,
            projected,
        });
    }
    let deadline = from_proto_time(r.deadline.as_ref());
    let ga = r.plan.as_ref().and_then(|p| from_proto_time(p.ga_time.as_ref()));
    let mut c = Chart {
        rows,
        deadline,
        ga,
        now,
        blackouts: Vec::new(),
    };
    if let Some(range) = range(&c) {
        let windows = r
            .spec
            .as_ref()
            .map(|s| s.blackouts.as_slice())
            .unwrap_or_default();
        c.blackouts = windows
            .iter()
            .flat_map(|w| occurrences(w, range))
            .chain(
                calendar
                    .iter()
                    .filter(|(s, _)| s.end > range.start && s.start < range.end)
                    .cloned(),
            )
            .collect();
    }
    c
}

/// The occurrences of a blackout window within `range`: a one-off window
/// as it is, a weekly one on each of its days (in its time zone; a window
/// without one, which means each region's own, is read in UTC).
pub fn occurrences(w: &BlackoutWindow, range: Span) -> Vec<(Span, String)> {
    let mut out = Vec::new();
    match &w.when {
        Some(blackout_window::When::Once(t)) => {
            if let (Some(start), Some(end)) =
                (from_proto_time(t.start.as_ref()), from_proto_time(t.end.as_ref()))
                && end > range.start
                && start < range.end
            {
                out.push((Span { start, end }, w.name.clone()));
            }
        }
        Some(blackout_window::When::Recurring(rec)) => {
            let zone = if rec.time_zone.is_empty() {
                "UTC"
            } else {
                &rec.time_zone
            };
            let Ok(tz) = jiff::tz::TimeZone::get(zone) else {
                return out;
            };
            let (Some(from), Some(to)) = (rec.start.as_ref(), rec.end.as_ref()) else {
                return out;
            };
            let hm = |h: i32, m: i32| {
                jiff::civil::Time::new(i8::try_from(h).ok()?, i8::try_from(m).ok()?, 0, 0).ok()
            };
            let (Some(t0), Some(t1)) = (hm(from.hour, from.minute), hm(to.hour, to.minute)) else {
                return out;
            };
            let mut day = range
                .start
                .to_zoned(tz.clone())
                .date()
                .yesterday()
                .unwrap_or_default();
            let last = range.end.to_zoned(tz.clone()).date();
            while day <= last {
                let weekday = day.weekday().to_monday_one_offset();
                if rec.weekdays.is_empty() || rec.weekdays.contains(&i32::from(weekday)) {
                    let start = day.to_datetime(t0).to_zoned(tz.clone()).ok();
                    let end_day = if t1 <= t0 { day.tomorrow().ok() } else { Some(day) };
                    let end = end_day.and_then(|d| d.to_datetime(t1).to_zoned(tz.clone()).ok());
                    if let (Some(s), Some(e)) = (start, end) {
                        let span = Span {
                            start: s.timestamp(),
                            end: e.timestamp(),
                        };
                        if span.end > range.start && span.start < range.end {
                            out.push((span, w.name.clone()));
                        }
                    }
                }
                match day.checked_add(1.day()) {
                    Ok(d) => day = d,
                    Err(_) => break,
                }
            }
        }
        None => {}
    }
    out
}

/// The time range the chart spans: every bar, the deadline, GA and now,
/// with a little room on each side; `None` with nothing to show.
pub fn range(c: &Chart) -> Option<Span> {
    let times = c
        .rows
        .iter()
        .flat_map(|r| [r.planned, r.actual, r.projected])
        .flatten()
        .flat_map(|s| [s.start, s.end])
        .chain(c.deadline)
        .chain(c.ga)
        .chain(c.now);
    let (mut lo, mut hi) = (None::<Timestamp>, None::<Timestamp>);
    for t in times {
        lo = Some(lo.map_or(t, |l| l.min(t)));
        hi = Some(hi.map_or(t, |h| h.max(t)));
    }
    let (lo, hi) = (lo?, hi?);
    let room = hi.duration_since(lo).max(SignedDuration::from_mins(10)) / 40;
    Some(Span {
        start: lo.checked_sub(room).unwrap_or(lo),
        end: hi.checked_add(room).unwrap_or(hi),
    })
}

/// Width of the drawing and of the label column, in SVG units.
pub const WIDTH: f64 = 1000.0;
const LABEL: f64 = 90.0;
const ROW: f64 = 26.0;
const TOP: f64 = 22.0;

/// The x of `t` on a chart of `range`.
pub fn x(range: Span, t: Timestamp) -> f64 {
    let total = range.end.duration_since(range.start).as_secs_f64();
    let at = t.duration_since(range.start).as_secs_f64();
    let f = if total > 0.0 {
        (at / total).clamp(0.0, 1.0)
    } else {
        0.0
    };
    LABEL + f * (WIDTH - LABEL - 10.0)
}

/// Midnights (UTC) inside `range`, for the axis; every day up to 16 of
/// them, else every `n`th so that at most 16 are drawn.
pub fn ticks(range: Span) -> Vec<Timestamp> {
    let day = SignedDuration::from_hours(24);
    let days = range.end.duration_since(range.start).as_hours() / 24 + 1;
    let step = (days / 16 + 1).max(1);
    let Ok(first) = range.start.to_zoned(jiff::tz::TimeZone::UTC).date().tomorrow() else {
        return Vec::new();
    };
    let Ok(mut t) = first.to_zoned(jiff::tz::TimeZone::UTC).map(|z| z.timestamp()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    while t < range.end {
        out.push(t);
        match t.checked_add(day * i32::try_from(step).unwrap_or(1)) {
            Ok(next) => t = next,
            Err(_) => break,
        }
    }
    out
}

/// `x` rounded for the SVG text.
fn px(v: f64) -> String {
    format!("{v:.1}")
}

/// The chart as SVG (scales to the page's width).
pub fn svg(c: &Chart) -> Markup {
    let Some(range) = range(c) else {
        return html! { p.muted { "No timing yet: the chart appears once the roll-out is planned." } };
    };
    let axis = TOP + ROW * c.rows.len() as f64 + 4.0;
    let height = axis + 16.0;
    let bar = |s: Span, y: f64, h: f64, class: &str| {
        let x0 = x(range, s.start);
        let w = (x(range, s.end) - x0).max(1.5);
        html! { rect class=(class) x=(px(x0)) y=(px(y)) width=(px(w)) height=(px(h)) {} }
    };
    let line = |t: Timestamp, class: &str, label: &str| {
        let at = x(range, t);
        let utc = t.strftime("%a %-d %b %H:%M UTC").to_string();
        html! {
            g class=(class) {
                title { (label) " " (utc) }
                line x1=(px(at)) x2=(px(at)) y1="14" y2=(px(height)) {}
                text x=(px(at + 3.0)) y="11" { (label) }
            }
        }
    };
    html! {
        svg #gantt class="gantt" viewBox=(format!("0 0 {WIDTH} {}", px(height))) role="img"
            aria-label="Gantt chart: planned against actual per wave, deadline and GA" {
            @for (s, name) in &c.blackouts {
                g.blackout {
                    title { "blackout " (name) }
                    rect x=(px(x(range, s.start))) y=(px(TOP - 4.0)) width=(px((x(range, s.end) - x(range, s.start)).max(1.0))) height=(px(height - TOP)) {}
                }
            }
            @for t in ticks(range) {
                g.tick {
                    line x1=(px(x(range, t))) x2=(px(x(range, t))) y1=(px(TOP - 4.0)) y2=(px(axis)) {}
                    text x=(px(x(range, t) + 2.0)) y=(px(axis + 12.0)) { (t.strftime("%a %-d").to_string()) }
                }
            }
            @for (i, row) in c.rows.iter().enumerate() {
                @let y = TOP + ROW * i as f64;
                g.row data-wave=(row.wave) {
                    text.label x="4" y=(px(y + 15.0)) { "wave " (row.wave) " (" (row.regions) ")" }
                    @if let Some(s) = row.planned { (bar(s, y + 2.0, 8.0, "planned")) }
                    @if let Some(s) = row.projected { (bar(s, y + 11.0, 11.0, "projected")) }
                    @if let Some(s) = row.actual { (bar(s, y + 11.0, 11.0, "actual")) }
                }
            }
            @if let Some(t) = c.now { (line(t, "now", "now")) }
            @if let Some(t) = c.deadline { (line(t, "deadline", "deadline")) }
            @if let Some(t) = c.ga { (line(t, "ga", "GA")) }
        }
        p.legend {
            span.key.planned {} "planned " span.key.actual {} "actual " span.key.projected {} "projected "
            span.key.blackout {} "blackout " span.key.deadline {} "deadline (GA - 24 h) " span.key.ga {} "GA"
        }
    }
}

#[cfg(test)]
mod tests {
    use tilewave_proto::common::v1::{LocalTime, TimeRange};
    use tilewave_proto::rollout::v1::RecurringWindow;

    use super::*;
    use crate::names::to_proto_time;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn the_range_covers_every_bar_and_line_and_x_maps_it_onto_the_drawing() {
        let c = Chart {
            rows: vec![Row {
                wave: 1,
                regions: 3,
                planned: Some(Span {
                    start: t("2026-12-01T00:00:00Z"),
                    end: t("2026-12-01T10:00:00Z"),
                }),
                actual: None,
                projected: None,
            }],
            deadline: Some(t("2026-12-02T00:00:00Z")),
            ga: Some(t("2026-12-03T00:00:00Z")),
            now: None,
            blackouts: Vec::new(),
        };
        let r = range(&c).unwrap();
        assert!(r.start < t("2026-12-01T00:00:00Z") && r.end > t("2026-12-03T00:00:00Z"));
        let (x0, xd, xg) = (
            x(r, t("2026-12-01T00:00:00Z")),
            x(r, t("2026-12-02T00:00:00Z")),
            x(r, t("2026-12-03T00:00:00Z")),
        );
        assert!(LABEL < x0 && x0 < xd && xd < xg && xg < WIDTH, "{x0} {xd} {xg}");
        // The deadline is half-way between the start and GA.
        assert!(((xd - x0) - (xg - xd)).abs() < 0.01);
        // Out of range is clamped.
        assert_eq!(x(r, t("2020-01-01T00:00:00Z")), LABEL);
        let text = svg(&c).into_string();
        assert!(
            text.contains("class=\"deadline\"") && text.contains("class=\"ga\""),
            "{text}"
        );
        assert!(text.contains("wave 1 (3)"), "{text}");
        // Day ticks at the midnights between 1 Dec and 3 Dec.
        assert_eq!(
            ticks(r),
            [
                t("2026-12-01T00:00:00Z"),
                t("2026-12-02T00:00:00Z"),
                t("2026-12-03T00:00:00Z")
            ]
        );
        assert!(text.contains(">Wed 2<"), "{text}");
        let empty = Chart {
            rows: Vec::new(),
            deadline: None,
            ga: None,
            now: None,
            blackouts: Vec::new(),
        };
        assert!(range(&empty).is_none());
        assert!(svg(&empty).into_string().contains("No timing yet"));
    }

    #[test]
    fn blackouts_repeat_on_their_days_in_their_zone() {
        let range = Span {
            start: t("2026-12-07T00:00:00Z"), // a Monday
            end: t("2026-12-14T00:00:00Z"),
        };
        let weekend = BlackoutWindow {
            name: "weekend".into(),
            regions: Vec::new(),
            when: Some(blackout_window::When::Recurring(RecurringWindow {
                weekdays: vec![6], // Saturday
                start: Some(LocalTime { hour: 0, minute: 0 }),
                end: Some(LocalTime { hour: 0, minute: 0 }),
                time_zone: "Europe/Berlin".into(),
            })),
        };
        let got = occurrences(&weekend, range);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0.start, t("2026-12-11T23:00:00Z"));
        assert_eq!(got[0].0.end, t("2026-12-12T23:00:00Z"));
        let once = BlackoutWindow {
            name: "release party".into(),
            regions: Vec::new(),
            when: Some(blackout_window::When::Once(TimeRange {
                start: Some(to_proto_time(t("2026-12-08T10:00:00Z"))),
                end: Some(to_proto_time(t("2026-12-08T12:00:00Z"))),
            })),
        };
        assert_eq!(occurrences(&once, range).len(), 1);
        let outside = Span {
            start: t("2027-01-01T00:00:00Z"),
            end: t("2027-01-02T00:00:00Z"),
        };
        assert!(occurrences(&once, outside).is_empty());
    }

    #[test]
    fn a_rollout_gives_planned_actual_and_projected_bars_per_wave() {
        let mut r = crate::rollout::render::tests::sample_rollout();
        let planned: Vec<_> = r
            .plan
            .as_ref()
            .map(|p| p.regions.iter().map(|p| p.apply_start).collect())
            .unwrap_or_default();
        for (s, at) in r.steps.iter_mut().zip(planned) {
            s.planned_apply_start = at;
        }
        let now = r
            .plan
            .as_ref()
            .and_then(|p| from_proto_time(p.computed_at.as_ref()));
        let start = from_proto_time(r.plan.as_ref().and_then(|p| p.planned_start.as_ref())).unwrap();
        let calendar = calendar_windows(&[
            LaunchBlackout {
                start: Some(crate::names::to_proto_time(start + SignedDuration::from_hours(1))),
                end: Some(crate::names::to_proto_time(start + SignedDuration::from_hours(3))),
                reason: "year-end freeze".into(),
            },
            LaunchBlackout {
                start: Some(crate::names::to_proto_time(
                    start - SignedDuration::from_hours(900),
                )),
                end: Some(crate::names::to_proto_time(
                    start - SignedDuration::from_hours(800),
                )),
                reason: "long ago".into(),
            },
        ]);
        assert_eq!(calendar.len(), 2);
        let c = chart(&r, now, &calendar);
        assert_eq!(
            c.blackouts.iter().map(|(_, n)| n.as_str()).collect::<Vec<_>>(),
            ["year-end freeze"],
            "only the calendar's blackouts in the chart's range"
        );
        assert!(svg(&c).into_string().contains("blackout year-end freeze"));
        assert_eq!(c.rows.len(), usize::try_from(r.wave_count).unwrap());
        assert_eq!(
            c.rows.iter().map(|w| w.regions).sum::<usize>(),
            r.steps.len(),
            "every step in one wave row"
        );
        assert!(c.rows.iter().all(|w| w.planned.is_some()), "{c:?}");
        assert_eq!(c.deadline, from_proto_time(r.deadline.as_ref()));
    }
}
