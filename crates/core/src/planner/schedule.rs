//! The scheduler itself: lays out applies and bakes wave by wave.
//!
//! Within a wave, `concurrency` slots run applies. Repeatedly, the slot that
//! frees first is given to the pending region that can start earliest there
//! (its next instant outside every blackout), ties going to the region listed
//! first in the wave: deterministic, and a region waiting out a local
//! blackout does not hold back the others. A wave ends when its last region
//! is verified (apply end + bake); the next wave starts then. Holds take no
//! time here and are only flagged.

use jiff::{SignedDuration, Timestamp};

use super::blackout::next_free;
use super::resolve::{Frame, Resolved};
use super::{Plan, PlanError, RegionPlan, WavePlan, add, sub};

/// Where one region of a running roll-out stands, in the scheduler's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Nothing left to do (verified or skipped).
    Done,
    /// Applying since this instant.
    Applying(Timestamp),
    /// Baking until this instant.
    Baking(Timestamp),
    /// Still to apply (pending, or failed and to be retried).
    Todo,
}

/// What the searches vary between runs of the scheduler.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Knobs {
    /// One bake for every wave, replacing the input's.
    pub bake: Option<SignedDuration>,
    pub concurrency: usize,
    pub frame: Frame,
    pub ga: Option<Timestamp>,
    pub blackouts: bool,
}

pub(crate) fn schedule(
    r: &Resolved<'_>,
    k: &Knobs,
    progress: Option<(&[Stage], Timestamp)>,
) -> Result<Plan, PlanError> {
    let mut regions = Vec::with_capacity(r.regions.len());
    let mut waves = Vec::with_capacity(r.waves.len());
    let mut t = k.frame.start;
    let conc = k.concurrency.max(1);
    let mut pending: Vec<(usize, Option<Timestamp>)> = Vec::new();
    for (w, members) in r.waves.iter().enumerate() {
        let bake = k.bake.unwrap_or(r.bakes[w]);
        let mut slots = vec![t; conc];
        let mut first_start: Option<Timestamp> = None;
        let mut end = t;
        let mut worked = false;
        let first_region = regions.len();
        pending.clear();
        for &i in members {
            let stage = progress.map_or(Stage::Todo, |(p, _)| p[i]);
            let now = progress.map_or(k.frame.start, |(_, now)| now);
            match stage {
                Stage::Done => {}
                Stage::Todo => pending.push((i, None)),
                Stage::Applying(since) => {
                    let apply_end = add(since, r.apply)?.max(now);
                    if let Some(s) = slots.iter_mut().min() {
                        *s = (*s).max(apply_end);
                    }
                    let bake_end = add(apply_end, bake)?;
                    regions.push(region_plan(r, i, w, since, apply_end, bake_end));
                    first_start = Some(first_start.map_or(since, |f| f.min(since)));
                    end = end.max(bake_end);
                    worked = true;
                }
                Stage::Baking(until) => {
                    let bake_end = until.max(now);
                    let apply_end = sub(until, r.bakes[w])?;
                    let apply_start = sub(apply_end, r.apply)?;
                    regions.push(region_plan(r, i, w, apply_start, apply_end, bake_end));
                    first_start = Some(first_start.map_or(apply_start, |f| f.min(apply_start)));
                    end = end.max(bake_end);
                    worked = true;
                }
            }
        }
        while !pending.is_empty() {
            let (slot, t0) = slots
                .iter()
                .copied()
                .enumerate()
                .min_by_key(|&(j, s)| (s, j))
                .unwrap_or((0, t));
            let mut best: Option<(Timestamp, usize)> = None;
            for (pos, (i, cached)) in pending.iter_mut().enumerate() {
                let free = match *cached {
                    Some(c) if c >= t0 => c,
                    _ => {
                        let c = if k.blackouts {
                            next_free(&r.regions[*i].id, t0, &r.rules[*i], &r.global)?
                        } else {
                            t0
                        };
                        *cached = Some(c);
                        c
                    }
                };
                if best.is_none_or(|(b, _)| free < b) {
                    best = Some((free, pos));
                }
            }
            let Some((start, pos)) = best else { break };
            let (i, _) = pending.remove(pos);
            let apply_end = add(start, r.apply)?;
            slots[slot] = apply_end;
            let bake_end = add(apply_end, bake)?;
            regions.push(region_plan(r, i, w, start, apply_end, bake_end));
            first_start = Some(first_start.map_or(start, |f| f.min(start)));
            end = end.max(bake_end);
            worked = true;
        }
        if !worked {
            continue;
        }
        waves.push(WavePlan {
            index: w + 1,
            regions: regions[first_region..]
                .iter()
                .map(|p: &RegionPlan| p.region.clone())
                .collect(),
            start: first_start.unwrap_or(t),
            end,
            bake,
            hold_after: r.holds[w],
        });
        t = end;
    }
    let planned_end = t;
    Ok(Plan {
        regions,
        waves,
        start: k.frame.start,
        planned_end,
        deadline: k.frame.deadline,
        deadline_source: k.frame.source,
        ga: k.ga,
        slack: k.frame.deadline.duration_since(planned_end),
        canary_wave: r.canary_wave,
    })
}

fn region_plan(
    r: &Resolved<'_>,
    i: usize,
    w: usize,
    apply_start: Timestamp,
    apply_end: Timestamp,
    bake_end: Timestamp,
) -> RegionPlan {
    RegionPlan {
        region: r.regions[i].id.clone(),
        wave: w + 1,
        apply_start,
        apply_end,
        bake_end,
    }
}
