//! Turns a [`PlanInput`] into a checked, index-based form the scheduler runs
//! on many times (the suggestion searches re-plan dozens of times), reporting
//! contradictory input as typed [`PlanError`]s.

use std::collections::{HashMap, HashSet};

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use super::blackout::{BlackoutWindow, Period, Rule};
use super::input::{BakePolicy, DEFAULT_GA_MARGIN, DEFAULT_LEAD_TIME, PlanInput, RegionSelection, WaveShape};
use super::{DeadlineSource, PlanError, sub};
use crate::regions::{Cloud, Region};

/// A checked plan input. Regions are referred to by index into `regions`.
#[derive(Debug)]
pub(crate) struct Resolved<'a> {
    pub regions: Vec<&'a Region>,
    pub rules: Vec<Vec<Rule>>,
    pub global: Vec<Period>,
    pub waves: Vec<Vec<usize>>,
    pub bakes: Vec<SignedDuration>,
    pub holds: Vec<bool>,
    pub apply: SignedDuration,
    pub concurrency: usize,
    pub earliest_start: Option<Timestamp>,
    pub deadline: Option<Timestamp>,
    pub canary_wave: bool,
}

/// The time frame of a plan, derived from GA and the explicit overrides.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Frame {
    pub start: Timestamp,
    pub deadline: Timestamp,
    pub source: DeadlineSource,
}

impl Resolved<'_> {
    /// The frame for a given GA (the suggestion search moves GA) and `now`.
    pub fn frame(&self, ga: Option<Timestamp>, now: Timestamp) -> Result<Frame, PlanError> {
        let earliest = match (self.earliest_start, ga) {
            (Some(e), _) => Some(e),
            (None, Some(ga)) => Some(sub(ga, DEFAULT_LEAD_TIME)?),
            (None, None) => None,
        };
        let (deadline, source) = match (self.deadline, ga) {
            (Some(d), _) => (d, DeadlineSource::Given),
            (None, Some(ga)) => (
                sub(ga, DEFAULT_GA_MARGIN)?,
                DeadlineSource::BeforeGa(DEFAULT_GA_MARGIN),
            ),
            (None, None) => return Err(PlanError::NoDeadline),
        };
        let start = earliest.map_or(now, |e| e.max(now));
        Ok(Frame {
            start,
            deadline,
            source,
        })
    }
}

pub(crate) fn resolve(input: &PlanInput) -> Result<Resolved<'_>, PlanError> {
    let catalog = &input.catalog;
    if input.clouds.is_empty() {
        return Err(PlanError::NoClouds);
    }
    let supported: HashSet<Cloud> = input.clouds.iter().copied().collect();
    let known = |id: &str| {
        catalog
            .get(id)
            .map_err(|_| PlanError::UnknownRegion(id.to_string()))
    };

    // The selected regions, in catalog order.
    let mut regions: Vec<&Region> = match &input.regions {
        RegionSelection::AllExcept(exclude) => {
            for id in exclude {
                known(id)?;
            }
            let ex: HashSet<&str> = exclude.iter().map(String::as_str).collect();
            catalog
                .all()
                .iter()
                .filter(|r| supported.contains(&r.cloud) && !ex.contains(r.id.as_str()))
                .collect()
        }
        RegionSelection::Only(ids) => {
            let mut seen = HashSet::new();
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                let r = known(id)?;
                if !supported.contains(&r.cloud) {
                    return Err(PlanError::UnsupportedCloud {
                        region: id.clone(),
                        cloud: r.cloud,
                    });
                }
                if !seen.insert(id.as_str()) {
                    return Err(PlanError::DuplicateRegion(id.clone()));
                }
                out.push(r);
            }
            let pos: HashMap<&str, usize> = catalog
                .all()
                .iter()
                .enumerate()
                .map(|(i, r)| (r.id.as_str(), i))
                .collect();
            out.sort_by_key(|r| pos.get(r.id.as_str()).copied().unwrap_or(usize::MAX));
            out
        }
    };
    regions.dedup_by(|a, b| a.id == b.id);
    if regions.is_empty() {
        return Err(PlanError::NoRegions);
    }
    let index: HashMap<&str, usize> = regions
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.as_str(), i))
        .collect();

    // Waves.
    let (waves, canary_wave) = match &input.waves {
        WaveShape::Canary { growth } => {
            if *growth == 0 {
                return Err(PlanError::ZeroGrowth);
            }
            (canary_waves(input, &regions, *growth as usize), true)
        }
        WaveShape::Explicit(given) => {
            if given.is_empty() {
                return Err(PlanError::NoWaves);
            }
            let mut placed = vec![false; regions.len()];
            let mut waves = Vec::with_capacity(given.len());
            for (w, ids) in given.iter().enumerate() {
                if ids.is_empty() {
                    return Err(PlanError::EmptyWave(w + 1));
                }
                let mut members = Vec::with_capacity(ids.len());
                for id in ids {
                    let r = known(id)?;
                    let Some(&i) = index.get(id.as_str()) else {
                        if !supported.contains(&r.cloud) {
                            return Err(PlanError::UnsupportedCloud {
                                region: id.clone(),
                                cloud: r.cloud,
                            });
                        }
                        return Err(PlanError::NotSelected(id.clone()));
                    };
                    if std::mem::replace(&mut placed[i], true) {
                        return Err(PlanError::DuplicateRegion(id.clone()));
                    }
                    members.push(i);
                }
                waves.push(members);
            }
            let missing: Vec<String> = placed
                .iter()
                .zip(&regions)
                .filter(|(p, _)| !**p)
                .map(|(_, r)| r.id.clone())
                .collect();
            if !missing.is_empty() {
                return Err(PlanError::MissingFromWaves(missing));
            }
            (waves, false)
        }
    };

    // Durations and limits.
    if !input.apply_time.is_positive() {
        return Err(PlanError::NonPositiveApply(input.apply_time));
    }
    if input.concurrency == 0 {
        return Err(PlanError::ZeroConcurrency);
    }
    let bakes = match &input.bake {
        BakePolicy::Uniform(b) => vec![*b; waves.len()],
        BakePolicy::PerWave(list) => {
            let Some(&last) = list.last() else {
                return Err(PlanError::NoBakes);
            };
            (0..waves.len())
                .map(|w| list.get(w).copied().unwrap_or(last))
                .collect()
        }
    };
    if let Some(b) = bakes.iter().find(|b| b.is_negative()) {
        return Err(PlanError::NegativeBake(*b));
    }
    let mut holds = vec![false; waves.len()];
    for &h in &input.holds_after {
        if h == 0 || h > waves.len() {
            return Err(PlanError::HoldOutOfRange {
                after: h,
                waves: waves.len(),
            });
        }
        holds[h - 1] = true;
    }

    // Blackouts.
    let check = |p: &Period| {
        if p.end <= p.start {
            Err(PlanError::EmptyBlackout(*p))
        } else {
            Ok(*p)
        }
    };
    let global = input
        .blackouts
        .global
        .iter()
        .map(check)
        .collect::<Result<Vec<_>, _>>()?;
    let mut rules: Vec<Vec<Rule>> = vec![Vec::new(); regions.len()];
    for b in &input.blackouts.regions {
        let region = known(&b.region)?;
        let rule = match &b.window {
            BlackoutWindow::Once(p) => Rule::Once(check(p)?),
            BlackoutWindow::Recurring(r) => {
                if r.days.is_empty() {
                    return Err(PlanError::NoBlackoutDays(b.region.clone()));
                }
                let tz = match &r.tz {
                    None => region.tz.clone(),
                    Some(name) => {
                        TimeZone::get(name).map_err(|_| PlanError::UnknownTimeZone(name.clone()))?
                    }
                };
                Rule::Recurring {
                    days: r.days,
                    from: r.from,
                    to: r.to,
                    tz,
                }
            }
        };
        if let Some(&i) = index.get(b.region.as_str()) {
            rules[i].push(rule);
        }
    }

    Ok(Resolved {
        regions,
        rules,
        global,
        waves,
        bakes,
        holds,
        apply: input.apply_time,
        concurrency: input.concurrency,
        earliest_start: input.earliest_start,
        deadline: input.deadline,
        canary_wave,
    })
}

/// Wave 1: one canary per cloud; then waves growing by `growth`, filled with
/// the other regions interleaved so each cloud is spread evenly over them.
fn canary_waves(input: &PlanInput, regions: &[&Region], growth: usize) -> Vec<Vec<usize>> {
    // Clouds in order of first appearance, with their selected regions.
    let mut clouds: Vec<(Cloud, Vec<usize>)> = Vec::new();
    for (i, r) in regions.iter().enumerate() {
        match clouds.iter_mut().find(|(c, _)| *c == r.cloud) {
            Some((_, list)) => list.push(i),
            None => clouds.push((r.cloud, vec![i])),
        }
    }
    let mut first = Vec::with_capacity(clouds.len());
    for (cloud, list) in &mut clouds {
        let flagged = input.catalog.canary_of(*cloud).map(|r| r.id.as_str());
        let pos = list
            .iter()
            .position(|&i| Some(regions[i].id.as_str()) == flagged)
            .unwrap_or(0);
        first.push(list.remove(pos));
    }
    first.sort_unstable();

    // Proportional interleave: the k-th of a cloud's n remaining regions sits
    // at (2k+1)/(2n) of the sequence; ties go to the cloud seen first.
    let mut rest: Vec<(usize, u64, u64, usize)> = Vec::new(); // (cloud rank, k, n, region)
    for (rank, (_, list)) in clouds.iter().enumerate() {
        let n = list.len() as u64;
        for (k, &i) in list.iter().enumerate() {
            rest.push((rank, k as u64, n, i));
        }
    }
    rest.sort_by(|a, b| {
        let l = (2 * a.1 + 1) * b.2;
        let r = (2 * b.1 + 1) * a.2;
        l.cmp(&r).then(a.0.cmp(&b.0))
    });

    let mut waves = vec![first];
    let mut size = waves[0].len().max(1);
    let mut it = rest.into_iter().map(|e| e.3).peekable();
    while it.peek().is_some() {
        size = size.saturating_mul(growth);
        waves.push(it.by_ref().take(size).collect());
    }
    waves
}
