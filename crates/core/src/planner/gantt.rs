//! A text Gantt chart of a plan, for terminals 80 or 120 columns wide.
//!
//! One row per region (or per wave), a UTC time axis on top, `#` where a
//! region applies, `=` while it bakes, `|` at the deadline, and a legend
//! underneath. No line is wider than the width asked for.

use jiff::{SignedDuration, Timestamp};

use super::Plan;
use super::display::{format_duration, format_time};

/// What one row of the chart is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    /// One row per region, labelled with its wave and id.
    PerRegion,
    /// One row per wave: its applies, then its bake.
    PerWave,
}

const APPLY: char = '#';
const BAKE: char = '=';
const DEADLINE: char = '|';
/// Candidate tick spacings, in minutes.
const TICKS: [i64; 11] = [5, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080];
/// Fewest columns between two ticks, so their labels ("Wed 12") fit.
const MIN_TICK_COLS: i64 = 8;

struct Row {
    label: String,
    spans: Vec<(Timestamp, Timestamp, Timestamp)>, // apply start, apply end, bake end
}

/// Draws `plan`; every line is at most `width` characters.
pub fn render(plan: &Plan, granularity: Granularity, width: usize) -> String {
    let rows: Vec<Row> = match granularity {
        Granularity::PerRegion => plan
            .regions
            .iter()
            .map(|r| Row {
                label: format!("{:>2} {}", r.wave, r.region),
                spans: vec![(r.apply_start, r.apply_end, r.bake_end)],
            })
            .collect(),
        Granularity::PerWave => plan
            .waves
            .iter()
            .map(|w| {
                let applied = plan
                    .regions
                    .iter()
                    .filter(|r| r.wave == w.index)
                    .map(|r| r.apply_end)
                    .max()
                    .unwrap_or(w.start);
                Row {
                    label: format!(
                        "wave {} ({}){}",
                        w.index,
                        w.regions.len(),
                        if w.hold_after { " H" } else { "" }
                    ),
                    spans: vec![(w.start, applied, w.end)],
                }
            })
            .collect(),
    };

    let longest = rows.iter().map(|r| r.label.chars().count()).max().unwrap_or(0);
    let label_w = longest.min(width / 3);
    let cols = width.saturating_sub(label_w + 1).max(1);

    let t0 = plan.start.min(plan.deadline);
    let t1 = plan.planned_end.max(plan.deadline);
    let span = t1.duration_since(t0).as_secs().max(60);
    let col = |t: Timestamp| -> usize {
        let s = i128::from(t.duration_since(t0).as_secs().clamp(0, span));
        let c = s * (cols as i128 - 1) / i128::from(span);
        usize::try_from(c).unwrap_or(0)
    };
    let pad = " ".repeat(label_w + 1);
    let mut out: Vec<String> = Vec::new();

    out.push(format!(
        "{} regions, {} waves, {} to {}, slack {}",
        plan.regions.len(),
        plan.waves.len(),
        format_time(plan.start),
        format_time(plan.planned_end),
        format_duration(plan.slack)
    ));

    // Axis: labels, then a ruler with ticks and the deadline.
    let secs_per_col = span as f64 / cols.max(1) as f64;
    let tick_min = TICKS
        .iter()
        .copied()
        .find(|m| (*m * 60) as f64 / secs_per_col >= MIN_TICK_COLS as f64)
        .unwrap_or(TICKS[TICKS.len() - 1]);
    let tick = SignedDuration::from_mins(tick_min);
    let first = t0.as_second().div_euclid(tick.as_secs()) * tick.as_secs();
    let mut labels = vec![' '; cols];
    let mut ruler = vec!['.'; cols];
    let mut next_free = 0usize;
    let mut s = first;
    while s <= t1.as_second() {
        if let Ok(t) = Timestamp::from_second(s)
            && t >= t0
        {
            let c = col(t);
            ruler[c] = '+';
            let text = if s.rem_euclid(86_400) == 0 {
                t.strftime("%a %-d").to_string()
            } else {
                t.strftime("%H:%M").to_string()
            };
            if c >= next_free && c + text.len() <= cols {
                for (k, ch) in text.chars().enumerate() {
                    labels[c + k] = ch;
                }
                next_free = c + text.len() + 1;
            }
        }
        s += tick.as_secs();
    }
    let dl = col(plan.deadline);
    ruler[dl] = DEADLINE;
    out.push(format!("{pad}{}", labels.iter().collect::<String>()));
    out.push(format!("{pad}{}", ruler.iter().collect::<String>()));

    for row in &rows {
        let mut cells = vec![' '; cols];
        for &(a, b, e) in &row.spans {
            if e > b {
                for c in cells.iter_mut().take(col(e) + 1).skip(col(b)) {
                    *c = BAKE;
                }
            }
            for c in cells.iter_mut().take(col(b) + 1).skip(col(a)) {
                *c = APPLY;
            }
        }
        if cells[dl] == ' ' {
            cells[dl] = DEADLINE;
        }
        let label: String = row.label.chars().take(label_w).collect();
        out.push(format!("{label:<label_w$} {}", cells.iter().collect::<String>()));
    }

    let mut legend = format!(
        "{APPLY} apply  {BAKE} bake  {DEADLINE} deadline {}",
        format_time(plan.deadline)
    );
    if plan.has_holds() {
        legend.push_str("  H manual hold after the wave (not timed)");
    }
    out.push(legend);

    let mut text = String::new();
    for line in out {
        let line: String = line.chars().take(width).collect();
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}
