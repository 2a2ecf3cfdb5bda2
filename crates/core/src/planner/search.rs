//! Explaining a late plan: which constraint binds, and what would fit.
//!
//! Every suggestion is found by re-planning. With blackouts (and the greedy
//! slot assignment) the end of a plan is not strictly monotone in bake,
//! concurrency or GA, so the searches are bisections that keep the invariant
//! "`fits(lo) != fits(hi)`" and verify both ends by planning: each answer
//! fits and the next step tighter (bake + 1 min, concurrency - 1, GA - 1 min)
//! does not. Where the end is not monotone, a looser value may exist beyond
//! the boundary found; the boundary returned is still a verified one.

use jiff::{SignedDuration, Timestamp};

use super::resolve::{Frame, Resolved};
use super::schedule::{Knobs, Stage, schedule};
use super::{Binding, DEFAULT_LEAD_TIME, Plan, PlanError, Suggestions, add, sub};

/// Granularity of the earliest-GA search.
pub const GA_SEARCH_STEP: SignedDuration = SignedDuration::from_mins(1);
/// How far past the given GA the earliest-GA search looks.
pub const GA_SEARCH_LIMIT: SignedDuration = SignedDuration::from_hours(24 * 366);

pub(crate) struct Ctx<'a, 'r> {
    pub r: &'a Resolved<'r>,
    pub progress: Option<&'a [Stage]>,
    pub now: Timestamp,
}

impl Ctx<'_, '_> {
    fn run(&self, k: &Knobs) -> Result<Plan, PlanError> {
        schedule(self.r, k, self.progress.map(|p| (p, self.now)))
    }

    /// Whether the plan with these knobs ends by its deadline (a plan that
    /// cannot be made does not fit).
    fn fits(&self, k: &Knobs) -> bool {
        self.run(k).is_ok_and(|p| !p.slack.is_negative())
    }

    fn frame_for(&self, ga: Timestamp) -> Result<Frame, PlanError> {
        let mut f = self.r.frame(Some(ga), self.now)?;
        if self.progress.is_some() {
            f.start = self.now;
        }
        Ok(f)
    }

    /// The largest wave still to schedule: concurrency beyond it changes nothing.
    fn max_useful_concurrency(&self) -> usize {
        self.r.waves.iter().map(Vec::len).max().unwrap_or(1).max(1)
    }

    pub fn explain(&self, k: &Knobs, late: &Plan) -> Result<(Binding, Suggestions), PlanError> {
        Ok((self.binding(k, late)?, self.suggestions(k)))
    }

    fn binding(&self, k: &Knobs, late: &Plan) -> Result<Binding, PlanError> {
        // Started on time, would it fit?
        if self.progress.is_none() {
            let earliest = self
                .r
                .earliest_start
                .or_else(|| k.ga.and_then(|g| sub(g, DEFAULT_LEAD_TIME).ok()));
            if let Some(e) = earliest
                && e < k.frame.start
            {
                let on_time = Knobs {
                    frame: Frame { start: e, ..k.frame },
                    ..*k
                };
                if self.fits(&on_time) {
                    return Ok(Binding::LateStart {
                        lost: k.frame.start.duration_since(e),
                    });
                }
            }
        }
        let clear = Knobs {
            blackouts: false,
            ..*k
        };
        let clear_plan = self.run(&clear)?;
        if !clear_plan.slack.is_negative() {
            return Ok(Binding::Blackouts {
                delay: late.planned_end.duration_since(clear_plan.planned_end),
            });
        }
        let wide = Knobs {
            concurrency: self.max_useful_concurrency(),
            ..clear
        };
        let wide_plan = self.run(&wide)?;
        if !wide_plan.slack.is_negative() {
            return Ok(Binding::Concurrency);
        }
        if self.progress.is_none() && k.frame.start > self.now {
            let now_start = Knobs {
                frame: Frame {
                    start: self.now,
                    ..k.frame
                },
                ..*k
            };
            if self.fits(&now_start) {
                return Ok(Binding::EarliestStart);
            }
        }
        Ok(Binding::Bake {
            critical_path: wide_plan.planned_end.duration_since(wide_plan.start),
            window: k.frame.deadline.duration_since(k.frame.start),
        })
    }

    fn suggestions(&self, k: &Knobs) -> Suggestions {
        Suggestions {
            longest_bake_that_fits: self.longest_bake(k),
            smallest_concurrency_that_fits: self.smallest_concurrency(k),
            earliest_ga_that_fits: self.earliest_ga(k),
        }
    }

    fn longest_bake(&self, k: &Knobs) -> Option<SignedDuration> {
        let with = |mins: i64| Knobs {
            bake: Some(SignedDuration::from_mins(mins)),
            ..*k
        };
        if !self.fits(&with(0)) {
            return None;
        }
        // Any bake longer than the whole window cannot fit.
        let window = k.frame.deadline.duration_since(k.frame.start).as_mins().max(0);
        let hi = window.checked_add(1)?;
        if self.fits(&with(hi)) {
            return None;
        }
        let lo = bisect(0, hi, |m| self.fits(&with(m)));
        Some(SignedDuration::from_mins(lo))
    }

    fn smallest_concurrency(&self, k: &Knobs) -> Option<usize> {
        let with = |c: usize| Knobs { concurrency: c, ..*k };
        let max = self.max_useful_concurrency();
        if !self.fits(&with(max)) {
            return None;
        }
        // Concurrency 0 is no plan at all: "does not fit".
        let hi = bisect(0, max as i64, |c| c == 0 || !self.fits(&with(c as usize))) + 1;
        usize::try_from(hi).ok()
    }

    fn earliest_ga(&self, k: &Knobs) -> Option<Timestamp> {
        let ga = k.ga?;
        let at = |step: i64| -> Option<Knobs> {
            let g = add(ga, GA_SEARCH_STEP.checked_mul(i32::try_from(step).ok()?)?).ok()?;
            Some(Knobs {
                frame: self.frame_for(g).ok()?,
                ga: Some(g),
                ..*k
            })
        };
        let fits_at = |step: i64| at(step).is_some_and(|k| self.fits(&k));
        let limit = GA_SEARCH_LIMIT.as_secs() / GA_SEARCH_STEP.as_secs();
        // Gallop out for a GA that fits, then bisect back.
        let mut lo = 0;
        let mut hi = 60;
        loop {
            if fits_at(hi) {
                break;
            }
            if hi >= limit {
                return None;
            }
            lo = hi;
            hi = (hi * 2).min(limit);
        }
        let last_late = bisect(lo, hi, |s| !fits_at(s));
        at(last_late + 1).and_then(|k| k.ga)
    }
}

/// With `ok(lo)` assumed true and `ok(hi)` false, returns `x` in `[lo, hi)`
/// with `ok(x)` and `!ok(x + 1)`.
fn bisect(mut lo: i64, mut hi: i64, ok: impl Fn(i64) -> bool) -> i64 {
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if ok(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}
