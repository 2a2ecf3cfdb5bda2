//! Results: each measure's ratio as the median of its runs with the
//! spread, its target and whether it was met, printed and written as JSON
//! (one file per measure under `--out`).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Serialize;

/// The median and spread of several runs of one figure.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The median (the upper middle one for an even count).
    pub median: f64,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
    /// How many runs.
    pub runs: usize,
    /// Every run, in order.
    pub values: Vec<f64>,
}

impl Summary {
    /// The summary of `values` (runs in the order they were made); `None`
    /// when there are none or one is not a number.
    pub fn of(values: &[f64]) -> Option<Self> {
        if values.is_empty() || values.iter().any(|v| v.is_nan()) {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        Some(Self {
            median: sorted[sorted.len() / 2],
            min: sorted[0],
            max: sorted[sorted.len() - 1],
            runs: values.len(),
            values: values.to_vec(),
        })
    }

    /// A percentile (0-100) of the values, nearest rank.
    pub fn percentile(&self, p: f64) -> f64 {
        let mut sorted = self.values.clone();
        sorted.sort_by(f64::total_cmp);
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.3} (min {:.3}, max {:.3}, {} runs)",
            self.median, self.min, self.max, self.runs
        )
    }
}

/// A target a figure is held to.
#[derive(Debug, Clone, Copy, Serialize)]
pub enum Target {
    /// The figure must be at most this.
    AtMost(f64),
    /// The figure must be at least this.
    AtLeast(f64),
}

impl Target {
    /// Whether `value` meets the target.
    pub fn met_by(self, value: f64) -> bool {
        match self {
            Target::AtMost(t) => value <= t,
            Target::AtLeast(t) => value >= t,
        }
    }
}

/// One figure of a measure.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// What it is, e.g. "wall / floor".
    pub name: String,
    /// Its unit, e.g. "x", "ms", "MiB".
    pub unit: String,
    /// Its runs.
    pub summary: Summary,
    /// The target on its median, if any.
    pub target: Option<Target>,
    /// Whether the median meets the target (`None` without one).
    pub met: Option<bool>,
}

/// One measure's results.
#[derive(Debug, Clone, Serialize)]
pub struct Measure {
    /// The measure's name (the subcommand), also the JSON file's name.
    pub name: String,
    /// Its figures.
    pub figures: Vec<Figure>,
    /// Anything else worth keeping (sizes, per-run details).
    pub details: serde_json::Value,
}

impl Measure {
    /// An empty measure named `name`.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            figures: Vec::new(),
            details: serde_json::Value::Null,
        }
    }

    /// Adds a figure from its runs; an empty or NaN run list is an error
    /// naming the figure.
    pub fn figure(
        &mut self,
        name: &str,
        unit: &str,
        values: &[f64],
        target: Option<Target>,
    ) -> anyhow::Result<&Figure> {
        let summary =
            Summary::of(values).with_context(|| format!("{}: no runs (or a NaN) for {name:?}", self.name))?;
        let met = target.map(|t| t.met_by(summary.median));
        self.figures.push(Figure {
            name: name.to_owned(),
            unit: unit.to_owned(),
            summary,
            target,
            met,
        });
        let last = self.figures.len() - 1;
        Ok(&self.figures[last])
    }

    /// Sets the details.
    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// The results of one invocation.
#[derive(Debug)]
pub struct Report {
    out: PathBuf,
    measures: Vec<Measure>,
}

impl Report {
    /// Results to be written under `out`.
    pub fn new(out: &Path) -> Self {
        Self {
            out: out.to_owned(),
            measures: Vec::new(),
        }
    }

    /// Records (and prints) one measure.
    pub fn add(&mut self, measure: Measure) {
        println!("== {}", measure.name);
        for f in &measure.figures {
            let target = match (f.target, f.met) {
                (Some(Target::AtMost(t)), Some(m)) => {
                    format!(" target <= {t} {}", if m { "met" } else { "MISSED" })
                }
                (Some(Target::AtLeast(t)), Some(m)) => {
                    format!(" target >= {t} {}", if m { "met" } else { "MISSED" })
                }
                _ => String::new(),
            };
            println!("  {}: {} {}{target}", f.name, f.summary, f.unit);
        }
        self.measures.push(measure);
    }

    /// Writes every measure as `<out>/<name>.json`.
    pub fn finish(&self) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.out).with_context(|| format!("creating {}", self.out.display()))?;
        for m in &self.measures {
            let path = self.out.join(format!("{}.json", m.name));
            let json = serde_json::to_vec_pretty(m)?;
            std::fs::write(&path, json).with_context(|| format!("writing {}", path.display()))?;
            println!("wrote {}", path.display());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_take_the_median_and_spread() {
        let s = Summary::of(&[3.0, 1.0, 2.0, 10.0]).unwrap_or_else(|| panic!("a summary"));
        assert_eq!((s.median, s.min, s.max, s.runs), (3.0, 1.0, 10.0, 4));
        assert_eq!(s.percentile(50.0), 2.0);
        assert_eq!(s.percentile(99.0), 10.0);
        assert!(Summary::of(&[]).is_none());
        assert!(Summary::of(&[1.0, f64::NAN]).is_none());
        assert!(Target::AtMost(1.3).met_by(1.3));
        assert!(!Target::AtLeast(0.5).met_by(0.49));
    }
}
