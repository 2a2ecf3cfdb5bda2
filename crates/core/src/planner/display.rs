//! Human-readable summaries: the one-line plan summary of docs/journeys.md
//! (journey 1), the "at risk" line of a re-plan, and compact durations.

use std::fmt;

use jiff::{SignedDuration, Timestamp};

use super::{Binding, DeadlineSource, Plan, Replan, Suggestions};

/// A duration as people read it in a status line: `20h`, `5d 02h`,
/// `4h 30m`, `45m`; negative durations get a leading `-`. Seconds are
/// dropped.
pub fn format_duration(d: SignedDuration) -> String {
    let sign = if d.is_negative() { "-" } else { "" };
    let mins = d.as_mins().unsigned_abs();
    let (days, hours, m) = (mins / 1440, mins / 60 % 24, mins % 60);
    let body = if days > 0 {
        let mut s = format!("{days}d {hours:02}h");
        if m > 0 {
            s.push_str(&format!(" {m:02}m"));
        }
        s
    } else if hours > 0 {
        if m > 0 {
            format!("{hours}h {m:02}m")
        } else {
            format!("{hours}h")
        }
    } else {
        format!("{m}m")
    };
    format!("{sign}{body}")
}

/// `Sun 6 Dec 21:00 UTC`.
pub(crate) fn format_time(t: Timestamp) -> String {
    t.strftime("%a %-d %b %H:%M UTC").to_string()
}

fn list(ids: &[String], max: usize) -> String {
    if ids.len() <= max {
        ids.join(", ")
    } else {
        format!("{} and {} more", ids[..max].join(", "), ids.len() - max)
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.regions.len();
        let w = self.waves.len();
        write!(
            f,
            "{n} region{}, {w} wave{}",
            if n == 1 { "" } else { "s" },
            if w == 1 { "" } else { "s" }
        )?;
        if let Some(first) = self.waves.first() {
            let what = if self.canary_wave && first.index == 1 {
                "canaries"
            } else {
                "first wave"
            };
            write!(f, ", {what} {}", list(&first.regions, 5))?;
        }
        let bakes: Vec<SignedDuration> = self.waves.iter().map(|w| w.bake).collect();
        if bakes.windows(2).all(|p| p[0] == p[1]) {
            if let Some(b) = bakes.first() {
                write!(f, "; bake {}", format_duration(*b))?;
            }
        } else {
            let b: Vec<String> = bakes.iter().map(|b| format_duration(*b)).collect();
            write!(f, "; bakes {}", b.join(", "))?;
        }
        let holds: Vec<String> = self
            .waves
            .iter()
            .filter(|w| w.hold_after)
            .map(|w| w.index.to_string())
            .collect();
        if !holds.is_empty() {
            write!(f, "; manual hold after wave {} (not timed)", holds.join(", "))?;
        }
        write!(
            f,
            "; ends {}; deadline {}",
            format_time(self.planned_end),
            format_time(self.deadline)
        )?;
        match self.deadline_source {
            DeadlineSource::BeforeGa(m) if m.as_secs() % 3600 == 0 => write!(f, " (GA - {}h)", m.as_hours())?,
            DeadlineSource::BeforeGa(m) => write!(f, " (GA - {})", format_duration(m))?,
            DeadlineSource::Given => write!(f, " (given)")?,
        }
        if self.slack.is_negative() {
            write!(f, "; late by {}", format_duration(-self.slack))
        } else {
            write!(f, "; slack {}", format_duration(self.slack))
        }
    }
}

impl fmt::Display for Binding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Binding::LateStart { lost } => write!(
                f,
                "it starts {} after its earliest start; on time it would fit",
                format_duration(*lost)
            ),
            Binding::Blackouts { delay } => {
                write!(f, "blackouts delay applies by {}", format_duration(*delay))
            }
            Binding::Concurrency => f.write_str("too few regions apply at once"),
            Binding::EarliestStart => f.write_str("the earliest start holds it back; starting now would fit"),
            Binding::Bake {
                critical_path,
                window,
            } => write!(
                f,
                "the waves' bakes and applies in sequence need {}, but the deadline is {} after the start",
                format_duration(*critical_path),
                format_duration(*window)
            ),
        }
    }
}

impl fmt::Display for Suggestions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut fixes = Vec::new();
        if let Some(b) = self.longest_bake_that_fits {
            fixes.push(format!("bake at most {}", format_duration(b)));
        }
        if let Some(c) = self.smallest_concurrency_that_fits {
            fixes.push(format!("{c} regions applying at once"));
        }
        if let Some(g) = self.earliest_ga_that_fits {
            fixes.push(format!("GA {} or later", format_time(g)));
        }
        if fixes.is_empty() {
            f.write_str("no single change of bake, concurrency or GA fits")
        } else {
            write!(f, "would fit with {}", fixes.join(", or "))
        }
    }
}

impl fmt::Display for Replan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} regions done", self.done, self.total)?;
        if let Some(p) = self.paused_for {
            write!(f, ", paused for {}", format_duration(p))?;
        }
        let left = self.plan.deadline.duration_since(self.now);
        write!(
            f,
            ", ETA {}, deadline {} ({})",
            format_time(self.eta),
            format_time(self.plan.deadline),
            if left.is_negative() {
                format!("{} ago", format_duration(-left))
            } else {
                format!("in {}", format_duration(left))
            }
        )?;
        match &self.at_risk {
            None => write!(f, ", on plan, slack {}", format_duration(self.slack)),
            Some(r) => write!(
                f,
                ", at risk by {}: {}; {}",
                format_duration(r.late_by),
                r.binding,
                r.suggestions
            ),
        }
    }
}
