//! Benchmark ratios measured in the same minutes (BENCHMARKS.md): variants
//! timed in interleaved rounds, each round's figure divided by the same
//! round's baseline, so that load from other processes hits every variant
//! alike. An A/A variant (a second baseline that differs in nothing) shows
//! how far two identical things spread: the noise to judge the others by.

use std::fmt;
use std::time::Duration;

/// One variant: its name and a function that makes `n` calls and returns
/// the time they took.
pub struct Variant<'a> {
    /// Shown in the summary.
    pub name: &'static str,
    /// Makes `n` calls and says how long they took.
    pub run: Box<dyn FnMut(u32) -> Duration + 'a>,
}

impl fmt::Debug for Variant<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Variant")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<'a> Variant<'a> {
    /// A variant named `name` run by `run`.
    pub fn new(name: &'static str, run: impl FnMut(u32) -> Duration + 'a) -> Self {
        Self {
            name,
            run: Box::new(run),
        }
    }
}

/// What one variant measured against the baseline (the first variant).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// The variant's name.
    pub name: &'static str,
    /// Median time per call over the rounds.
    pub per_call: Duration,
    /// Median of the per-round ratios to the baseline.
    pub ratio: f64,
    /// First quartile of those ratios.
    pub ratio_q1: f64,
    /// Third quartile of those ratios.
    pub ratio_q3: f64,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: median {:.1} us a call; ratio to the baseline: median {:.3}, middle half {:.3} to {:.3}",
            self.name,
            self.per_call.as_secs_f64() * 1e6,
            self.ratio,
            self.ratio_q1,
            self.ratio_q3
        )
    }
}

/// The number of rounds a benchmark runs: `BENCH_ROUNDS` when set to a
/// number, else `default`.
pub fn rounds_from_env(default: usize) -> usize {
    std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Prints the summaries of one measure, `kind`, one line each.
pub fn report(kind: &str, summaries: &[Summary]) {
    println!("{kind}:");
    for s in summaries {
        println!("  {s}");
    }
}

/// Runs `rounds` rounds; each round times a block of `per_block` calls of
/// every variant in turn. Returns one [`Summary`] per variant, in order,
/// each against the first variant (the baseline).
pub fn interleaved(variants: &mut [Variant<'_>], rounds: usize, per_block: u32) -> Vec<Summary> {
    let per_block = per_block.max(1);
    let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); variants.len()];
    for _ in 0..rounds {
        for (i, v) in variants.iter_mut().enumerate() {
            times[i].push((v.run)(per_block).as_secs_f64() / f64::from(per_block));
        }
    }
    summarise(variants.iter().map(|v| v.name), &times)
}

/// The summaries of per-round times (`times[variant][round]`, seconds per
/// call), each against `times[0]`.
pub fn summarise(names: impl IntoIterator<Item = &'static str>, times: &[Vec<f64>]) -> Vec<Summary> {
    let baseline = times.first().cloned().unwrap_or_default();
    names
        .into_iter()
        .zip(times)
        .map(|(name, per_round)| {
            let mut per_call = per_round.clone();
            let mut ratios: Vec<f64> = per_round.iter().zip(&baseline).map(|(v, b)| v / b).collect();
            Summary {
                name,
                per_call: Duration::from_secs_f64(quantile(&mut per_call, 0.5).max(0.0)),
                ratio: quantile(&mut ratios, 0.5),
                ratio_q1: quantile(&mut ratios, 0.25),
                ratio_q3: quantile(&mut ratios, 0.75),
            }
        })
        .collect()
}

/// The value at quantile `q` (0 to 1) of `values`, sorted in place; NaN
/// when there are none.
pub fn quantile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let last = values.len().saturating_sub(1);
    // Rounded to the nearest rank; `q` outside 0..=1 is clamped.
    let at = ((last as f64) * q.clamp(0.0, 1.0)).round() as usize;
    values.get(at).copied().unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_by_nearest_rank() {
        let mut v = vec![5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(quantile(&mut v, 0.5), 3.0);
        assert_eq!(quantile(&mut v, 0.25), 2.0);
        assert_eq!(quantile(&mut v, 0.75), 4.0);
        assert_eq!(quantile(&mut v, 1.0), 5.0);
        assert!(quantile(&mut [], 0.5).is_nan());
    }

    #[test]
    fn ratios_are_per_round_against_the_first_variant() {
        // Round times: the baseline drifts (load), the other is always 1.5x.
        let base = vec![1.0, 2.0, 4.0];
        let other = vec![1.5, 3.0, 6.0];
        let s = summarise(["base", "other"], &[base, other]);
        assert_eq!(s[0].ratio, 1.0);
        assert_eq!(s[1].name, "other");
        assert!((s[1].ratio - 1.5).abs() < 1e-12, "{:?}", s[1]);
        assert!((s[1].ratio_q1 - 1.5).abs() < 1e-12 && (s[1].ratio_q3 - 1.5).abs() < 1e-12);
        assert_eq!(s[1].per_call, Duration::from_secs(3));
    }

    #[test]
    fn interleaving_runs_every_variant_once_a_round_in_order() {
        let log = std::cell::RefCell::new(Vec::new());
        let mut variants = [
            Variant::new("a", |n| {
                log.borrow_mut().push(('a', n));
                Duration::from_millis(u64::from(n))
            }),
            Variant::new("b", |n| {
                log.borrow_mut().push(('b', n));
                Duration::from_millis(2 * u64::from(n))
            }),
        ];
        let s = interleaved(&mut variants, 3, 10);
        drop(variants);
        assert_eq!(log.into_inner(), [('a', 10), ('b', 10)].repeat(3));
        assert_eq!(s[0].per_call, Duration::from_millis(1));
        assert!((s[1].ratio - 2.0).abs() < 1e-12, "{s:?}");
    }
}
