//! From the wire to the planner and back: a `RolloutSpec` and the tile it
//! names become a [`PlanInput`] (defaults filled in, bad input rejected
//! naming the field); a planner [`Plan`] or its infeasibility becomes the
//! proto `Plan` with its `PlanProblem`s.

use jiff::civil::{Time, Weekday as CivilWeekday};
use jiff::{SignedDuration, Timestamp};
use tilewave_core::planner::{
    self, AtRisk, BakePolicy, Binding, BlackoutWindow as PlannerWindow, Blackouts, DEFAULT_APPLY_TIME,
    DEFAULT_BAKE, DEFAULT_CONCURRENCY, DEFAULT_GA_MARGIN, DEFAULT_LEAD_TIME, DEFAULT_WAVE_GROWTH, Days,
    Infeasible, Period, PlanError, PlanInput, Recurring, RegionBlackout, RegionSelection, Suggestions,
    WaveShape,
};
use tilewave_core::quote::quoted;
use tilewave_core::regions::{Cloud, RegionCatalog};
use tilewave_proto::ShortName;
use tilewave_proto::common::v1::{Cloud as ProtoCloud, TileState, Weekday};
use tilewave_proto::registry::v1::{MaintenanceState, Tile};
use tilewave_proto::rollout::v1::{
    BlackoutWindow, Constraint, DeadlineSource, OnFailure, Plan as ProtoPlan, PlanProblem, PlanProblemKind,
    PlanSuggestion, PlannedRegion, PlannedWave, RegionList, RolloutKind, RolloutSpec, blackout_window,
    plan_suggestion,
};
use tilewave_store::clock::{from_proto_timestamp, to_proto_timestamp};

use crate::error::{Error, Result};

/// How far ahead a roll-out without a deadline is planned against: the
/// planner needs one; the proto then reports none.
pub const NO_DEADLINE_HORIZON: SignedDuration = SignedDuration::from_hours(24 * 365);

/// A spec checked against its tile: what to plan and how to run it.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The spec with every default filled in (and the region list made
    /// explicit, so re-plans stay the same whatever the tile does later).
    pub spec: RolloutSpec,
    /// The planner's input, with `now`.
    pub input: PlanInput,
    /// Launch, maintenance or withdraw.
    pub kind: RolloutKind,
    /// Whether the deadline is real (not the planning horizon).
    pub has_deadline: bool,
}

/// The largest `nanos` of a `google.protobuf.Duration`.
const MAX_NANOS: i32 = 999_999_999;

/// The largest `seconds` of a `google.protobuf.Duration`: about 10,000
/// years.
const MAX_DURATION_SECS: i64 = 315_576_000_000;

/// A protobuf duration as a signed one; out of `google.protobuf.Duration`'s
/// range (or with mixed signs) is INVALID_ARGUMENT on `field`.
pub fn duration_of(field: &str, d: &prost_types::Duration) -> Result<SignedDuration> {
    if (d.seconds < 0 && d.nanos > 0) || (d.seconds > 0 && d.nanos < 0) {
        return Err(Error::invalid(field, "seconds and nanos have different signs"));
    }
    // google.protobuf.Duration's own range; beyond it jiff would panic
    // (nanos carrying into seconds past i64) or later arithmetic would.
    if !(-MAX_NANOS..=MAX_NANOS).contains(&d.nanos) {
        return Err(Error::invalid(
            field,
            format!(
                "nanos must be between -{MAX_NANOS} and {MAX_NANOS}, not {}",
                d.nanos
            ),
        ));
    }
    if !(-MAX_DURATION_SECS..=MAX_DURATION_SECS).contains(&d.seconds) {
        return Err(Error::invalid(
            field,
            format!(
                "seconds must be between -{MAX_DURATION_SECS} and {MAX_DURATION_SECS} (10,000 years), not {}",
                d.seconds
            ),
        ));
    }
    Ok(SignedDuration::new(d.seconds, d.nanos))
}

/// A signed duration as a protobuf one.
pub fn proto_duration(d: SignedDuration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: d.as_secs(),
        nanos: d.subsec_nanos(),
    }
}

pub(crate) fn timestamp_of(field: &str, t: &prost_types::Timestamp) -> Result<Timestamp> {
    from_proto_timestamp(t).map_err(|e| Error::invalid(field, e.to_string()))
}

/// The core cloud of a proto one.
pub fn cloud_of(c: i32) -> Option<Cloud> {
    match ProtoCloud::try_from(c).ok()? {
        ProtoCloud::Aws => Some(Cloud::Aws),
        ProtoCloud::Azure => Some(Cloud::Azure),
        ProtoCloud::Gcp => Some(Cloud::Gcp),
        ProtoCloud::Unspecified => None,
    }
}

/// The proto cloud of a core one.
pub fn proto_cloud(c: Cloud) -> ProtoCloud {
    match c {
        Cloud::Aws => ProtoCloud::Aws,
        Cloud::Azure => ProtoCloud::Azure,
        Cloud::Gcp => ProtoCloud::Gcp,
    }
}

/// The proto cloud of a region id, from the catalog.
pub fn region_cloud(catalog: &RegionCatalog, region: &str) -> i32 {
    catalog
        .get(region)
        .map_or(ProtoCloud::Unspecified, |r| proto_cloud(r.cloud)) as i32
}

/// The kind a spec asks for, inferred from the tile when unspecified.
pub fn kind_of(spec: &RolloutSpec, tile: &Tile) -> RolloutKind {
    match RolloutKind::try_from(spec.kind).unwrap_or(RolloutKind::Unspecified) {
        RolloutKind::Unspecified => {
            if tile.state() == TileState::Ga {
                RolloutKind::Maintenance
            } else {
                RolloutKind::Launch
            }
        }
        k => k,
    }
}

/// Checks that the tile may be rolled out as `kind`: the clear
/// FAILED_PRECONDITION a user sees before anything is written.
pub fn check_tile(kind: RolloutKind, tile: &Tile) -> Result<()> {
    let state = TileState::try_from(tile.state).unwrap_or(TileState::Unspecified);
    let missing = || {
        tile.missing_sign_offs
            .iter()
            .filter_map(|r| tilewave_proto::common::v1::SignOffRole::try_from(*r).ok())
            .map(|r| r.short_name().to_ascii_lowercase())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match kind {
        RolloutKind::Launch | RolloutKind::Unspecified => {
            if tile.ga_time.is_none() {
                return Err(Error::FailedPrecondition(format!(
                    "tile {} has no GA date: a launch needs one (`tilewave tile set-ga {} TIME`){}",
                    tile.id,
                    tile.id,
                    if tile.missing_sign_offs.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "; it also lacks sign-offs on revision {}: {}",
                            tile.revision,
                            missing()
                        )
                    }
                )));
            }
            if !tile.missing_sign_offs.is_empty() {
                return Err(Error::FailedPrecondition(format!(
                    "tile {} revision {} lacks sign-offs: {} (a launch needs all five)",
                    tile.id,
                    tile.revision,
                    missing()
                )));
            }
            if state != TileState::Scheduled {
                return Err(Error::FailedPrecondition(format!(
                    "tile {} is {}, not SCHEDULED: a launch starts from SCHEDULED (five sign-offs and a GA date)",
                    tile.id,
                    state.short_name()
                )));
            }
        }
        RolloutKind::Maintenance => {
            if state != TileState::Ga {
                return Err(Error::FailedPrecondition(format!(
                    "tile {} is {}: a maintenance roll-out needs a GA tile",
                    tile.id,
                    state.short_name()
                )));
            }
            if tile.maintenance_state() != MaintenanceState::SignedOff {
                return Err(Error::FailedPrecondition(format!(
                    "revision {} of tile {} is not signed off for maintenance (engineering and partner){}",
                    tile.revision,
                    tile.id,
                    if tile.missing_sign_offs.is_empty() {
                        String::new()
                    } else {
                        format!(": missing {}", missing())
                    }
                )));
            }
        }
        RolloutKind::Withdraw => {
            if tile.withdraw_requested_at.is_none() && state != TileState::Withdrawn {
                return Err(Error::FailedPrecondition(format!(
                    "tile {} has no withdrawal pending: withdraw it first (`tilewave tile withdraw {}`)",
                    tile.id, tile.id
                )));
            }
        }
    }
    Ok(())
}

pub(crate) fn civil_weekday(w: i32) -> Option<CivilWeekday> {
    Some(match Weekday::try_from(w).ok()? {
        Weekday::Monday => CivilWeekday::Monday,
        Weekday::Tuesday => CivilWeekday::Tuesday,
        Weekday::Wednesday => CivilWeekday::Wednesday,
        Weekday::Thursday => CivilWeekday::Thursday,
        Weekday::Friday => CivilWeekday::Friday,
        Weekday::Saturday => CivilWeekday::Saturday,
        Weekday::Sunday => CivilWeekday::Sunday,
        Weekday::Unspecified => return None,
    })
}

pub(crate) fn local_time(field: &str, t: Option<&tilewave_proto::common::v1::LocalTime>) -> Result<Time> {
    let t = t.ok_or_else(|| Error::invalid(field, "required"))?;
    let hour = i8::try_from(t.hour).map_err(|_| Error::invalid(field, "hour out of range"))?;
    let minute = i8::try_from(t.minute).map_err(|_| Error::invalid(field, "minute out of range"))?;
    Time::new(hour, minute, 0, 0).map_err(|e| Error::invalid(field, e.to_string()))
}

/// Proto blackout windows as the planner's, for the regions of `catalog`.
pub fn blackouts(windows: &[BlackoutWindow], catalog: &RegionCatalog) -> Result<Blackouts> {
    let mut out = Blackouts::default();
    for (i, w) in windows.iter().enumerate() {
        let field = format!("spec.blackouts[{i}]");
        for r in &w.regions {
            catalog.get(r).map_err(|_| {
                Error::invalid(
                    format!("{field}.regions"),
                    format!("unknown region {}", quoted(r)),
                )
            })?;
        }
        let window = match &w.when {
            None => return Err(Error::invalid(field, "needs `recurring` or `once`")),
            Some(blackout_window::When::Once(range)) => {
                let start = range
                    .start
                    .as_ref()
                    .ok_or_else(|| Error::invalid(format!("{field}.once.start"), "required"))
                    .and_then(|t| timestamp_of(&format!("{field}.once.start"), t))?;
                let end = range
                    .end
                    .as_ref()
                    .ok_or_else(|| Error::invalid(format!("{field}.once.end"), "required"))
                    .and_then(|t| timestamp_of(&format!("{field}.once.end"), t))?;
                if w.regions.is_empty() {
                    out.global.push(Period::new(start, end));
                    continue;
                }
                PlannerWindow::Once(Period::new(start, end))
            }
            Some(blackout_window::When::Recurring(rec)) => {
                let days = if rec.weekdays.is_empty() {
                    Days::EVERY_DAY
                } else {
                    let days: Vec<CivilWeekday> =
                        rec.weekdays.iter().filter_map(|d| civil_weekday(*d)).collect();
                    Days::of(&days)
                };
                PlannerWindow::Recurring(Recurring {
                    days,
                    from: local_time(&format!("{field}.recurring.start"), rec.start.as_ref())?,
                    to: local_time(&format!("{field}.recurring.end"), rec.end.as_ref())?,
                    tz: (!rec.time_zone.is_empty()).then(|| rec.time_zone.clone()),
                })
            }
        };
        let regions: Vec<String> = if w.regions.is_empty() {
            catalog.all().iter().map(|r| r.id.clone()).collect()
        } else {
            w.regions.clone()
        };
        for region in regions {
            out.regions.push(RegionBlackout {
                region,
                window: window.clone(),
            });
        }
    }
    Ok(out)
}

/// Bounds a spec's repeated fields and strings at the edge
/// ([`tilewave_service::limits`]), before anything is read: every region
/// list, the waves, the per-wave bakes and holds, the blackout windows.
pub fn check_bounds(spec: &RolloutSpec) -> Result<()> {
    use tilewave_service::limits::{self, MAX_LIST_ITEMS};
    limits::each_id("spec.regions", &spec.regions)?;
    limits::each_id("spec.exclude_regions", &spec.exclude_regions)?;
    limits::count("spec.bake_per_wave", spec.bake_per_wave.len(), MAX_LIST_ITEMS)?;
    limits::count(
        "spec.hold_after_waves",
        spec.hold_after_waves.len(),
        MAX_LIST_ITEMS,
    )?;
    limits::count("spec.waves", spec.waves.len(), MAX_LIST_ITEMS)?;
    for (i, w) in spec.waves.iter().enumerate() {
        limits::each_id(&format!("spec.waves[{i}].regions"), &w.regions)?;
    }
    limits::count("spec.blackouts", spec.blackouts.len(), MAX_LIST_ITEMS)?;
    for (i, b) in spec.blackouts.iter().enumerate() {
        limits::text(&format!("spec.blackouts[{i}].name"), &b.name)?;
        limits::each_id(&format!("spec.blackouts[{i}].regions"), &b.regions)?;
    }
    Ok(())
}

/// Checks a spec against its tile and fills in its defaults. `live` are the
/// regions where the tile is live (a withdraw's regions).
pub fn resolve(
    spec: &RolloutSpec,
    tile: &Tile,
    catalog: &RegionCatalog,
    now: Timestamp,
    live: &[String],
) -> Result<Resolved> {
    let kind = kind_of(spec, tile);
    let mut spec = spec.clone();
    spec.kind = kind as i32;
    spec.tile_id = tile.id.clone();
    if spec.revision == 0 {
        spec.revision = tile.revision;
    }
    for (i, r) in spec.regions.iter().chain(&spec.exclude_regions).enumerate() {
        if catalog.get(r).is_err() {
            let field = if i < spec.regions.len() {
                "spec.regions"
            } else {
                "spec.exclude_regions"
            };
            return Err(Error::invalid(
                field,
                format!("unknown region {}: not in regions.toml", quoted(r)),
            ));
        }
    }
    let mut clouds: Vec<Cloud> = tile
        .config
        .as_ref()
        .map(|c| c.supported_clouds.iter().filter_map(|c| cloud_of(*c)).collect())
        .unwrap_or_default();
    let mut regions = if spec.regions.is_empty() {
        RegionSelection::AllExcept(spec.exclude_regions.clone())
    } else {
        RegionSelection::Only(spec.regions.clone())
    };
    let ga = tile.ga_time.as_ref().map(from_proto_timestamp).transpose()?;
    let mut deadline = spec
        .deadline
        .as_ref()
        .map(|t| timestamp_of("spec.deadline", t))
        .transpose()?;
    let mut earliest = spec
        .earliest_start
        .as_ref()
        .map(|t| timestamp_of("spec.earliest_start", t))
        .transpose()?;
    let mut plan_ga = None;
    match kind {
        RolloutKind::Launch | RolloutKind::Unspecified => plan_ga = ga,
        RolloutKind::Maintenance => {
            if let Some(m) = &tile.maintenance {
                if !spec.regions.is_empty() {
                    // Only the regions the change affects: an explicit list
                    // is narrowed to them, in its order.
                    let affected_clouds: Vec<Cloud> =
                        m.affected_clouds.iter().filter_map(|c| cloud_of(*c)).collect();
                    let affected = |r: &String| {
                        if !m.affected_regions.is_empty() {
                            m.affected_regions.contains(r)
                        } else if !affected_clouds.is_empty() {
                            catalog
                                .get(r)
                                .is_ok_and(|reg| affected_clouds.contains(&reg.cloud))
                        } else {
                            true
                        }
                    };
                    let keep: Vec<String> = spec.regions.iter().filter(|r| affected(r)).cloned().collect();
                    if keep.is_empty() {
                        return Err(Error::invalid(
                            "spec.regions",
                            format!(
                                "revision {} of {} affects none of these regions (it changes {})",
                                spec.revision,
                                tile.id,
                                if m.affected_regions.is_empty() {
                                    affected_clouds
                                        .iter()
                                        .map(|c| proto_cloud(*c).short_name().to_ascii_lowercase())
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                } else {
                                    m.affected_regions.join(", ")
                                }
                            ),
                        ));
                    }
                    spec.regions = keep.clone();
                    regions = RegionSelection::Only(keep);
                } else if !m.affected_regions.is_empty() {
                    let keep: Vec<String> = m
                        .affected_regions
                        .iter()
                        .filter(|r| !spec.exclude_regions.contains(r))
                        .cloned()
                        .collect();
                    regions = RegionSelection::Only(keep);
                } else if !m.affected_clouds.is_empty() {
                    clouds = m.affected_clouds.iter().filter_map(|c| cloud_of(*c)).collect();
                }
                if deadline.is_none() {
                    deadline = m.target_time.as_ref().map(from_proto_timestamp).transpose()?;
                }
            }
            earliest = earliest.or(Some(now));
        }
        RolloutKind::Withdraw => {
            if spec.regions.is_empty() {
                regions = RegionSelection::Only(
                    live.iter()
                        .filter(|r| !spec.exclude_regions.contains(r))
                        .cloned()
                        .collect(),
                );
            }
            earliest = earliest.or(Some(now));
        }
    }
    let has_deadline = deadline.is_some() || plan_ga.is_some();
    if !has_deadline {
        deadline = Some(
            now.checked_add(NO_DEADLINE_HORIZON)
                .map_err(|e| Error::invalid("spec", e.to_string()))?,
        );
    }
    let apply_time = match &spec.apply_time {
        Some(d) => duration_of("spec.apply_time", d)?,
        None => DEFAULT_APPLY_TIME,
    };
    let bake = if spec.bake_per_wave.is_empty() {
        let b = match &spec.bake {
            Some(d) => duration_of("spec.bake", d)?,
            None => DEFAULT_BAKE,
        };
        spec.bake = Some(proto_duration(b));
        BakePolicy::Uniform(b)
    } else {
        BakePolicy::PerWave(
            spec.bake_per_wave
                .iter()
                .enumerate()
                .map(|(i, d)| duration_of(&format!("spec.bake_per_wave[{i}]"), d))
                .collect::<Result<_>>()?,
        )
    };
    if spec.concurrency < 0 {
        return Err(Error::invalid("spec.concurrency", "must not be negative"));
    }
    if spec.concurrency == 0 {
        spec.concurrency = i32::try_from(DEFAULT_CONCURRENCY).unwrap_or(4);
    }
    if spec.wave_growth < 0 {
        return Err(Error::invalid("spec.wave_growth", "must not be negative"));
    }
    if spec.wave_growth == 0 && spec.waves.is_empty() {
        spec.wave_growth = i32::try_from(DEFAULT_WAVE_GROWTH).unwrap_or(2);
    }
    let waves = if spec.waves.is_empty() {
        WaveShape::Canary {
            growth: u32::try_from(spec.wave_growth).unwrap_or(2),
        }
    } else {
        WaveShape::Explicit(spec.waves.iter().map(|w| w.regions.clone()).collect())
    };
    let mut holds_after = Vec::new();
    for h in &spec.hold_after_waves {
        holds_after
            .push(usize::try_from(*h).map_err(|_| Error::invalid("spec.hold_after_waves", "must be >= 1"))?);
    }
    if spec.on_failure() == OnFailure::Unspecified {
        spec.set_on_failure(OnFailure::Pause);
    }
    spec.apply_time = Some(proto_duration(apply_time));
    let input = PlanInput {
        blackouts: blackouts(&spec.blackouts, catalog)?,
        catalog: catalog.clone(),
        clouds,
        regions,
        apply_time,
        waves,
        bake,
        concurrency: usize::try_from(spec.concurrency).unwrap_or(DEFAULT_CONCURRENCY),
        holds_after,
        ga: plan_ga,
        earliest_start: earliest,
        deadline,
        now,
    };
    if has_deadline {
        let d = deadline.or_else(|| plan_ga.and_then(|g| g.checked_sub(DEFAULT_GA_MARGIN).ok()));
        spec.deadline = d.map(to_proto_timestamp);
    }
    let e = earliest.or_else(|| plan_ga.and_then(|g| g.checked_sub(DEFAULT_LEAD_TIME).ok()));
    spec.earliest_start = e.map(to_proto_timestamp);
    Ok(Resolved {
        spec,
        input,
        kind,
        has_deadline,
    })
}

/// A planner plan as the proto `Plan` (feasible, no problems).
pub fn plan_to_proto(p: &planner::Plan, r: &Resolved, now: Timestamp) -> ProtoPlan {
    let catalog = &r.input.catalog;
    ProtoPlan {
        spec: Some(r.spec.clone()),
        waves: p
            .waves
            .iter()
            .map(|w| PlannedWave {
                number: i32::try_from(w.index).unwrap_or(i32::MAX),
                regions: w.regions.clone(),
                start: Some(to_proto_timestamp(w.start)),
                end: Some(to_proto_timestamp(w.end)),
                bake: Some(proto_duration(w.bake)),
                hold_after: w.hold_after,
            })
            .collect(),
        regions: p
            .regions
            .iter()
            .map(|reg| PlannedRegion {
                region: reg.region.clone(),
                cloud: region_cloud(catalog, &reg.region),
                wave: i32::try_from(reg.wave).unwrap_or(i32::MAX),
                apply_start: Some(to_proto_timestamp(reg.apply_start)),
                apply_end: Some(to_proto_timestamp(reg.apply_end)),
                bake_end: Some(to_proto_timestamp(reg.bake_end)),
                delayed_by: Vec::new(),
                applying: reg.apply_start < now && reg.apply_end > now,
            })
            .collect(),
        planned_start: Some(to_proto_timestamp(p.start)),
        planned_end: Some(to_proto_timestamp(p.planned_end)),
        deadline: r.has_deadline.then(|| to_proto_timestamp(p.deadline)),
        slack: r.has_deadline.then(|| proto_duration(p.slack)),
        feasible: true,
        problems: Vec::new(),
        computed_at: Some(to_proto_timestamp(now)),
        ga_time: p.ga.map(to_proto_timestamp),
        deadline_source: if !r.has_deadline {
            DeadlineSource::Unspecified
        } else if matches!(p.deadline_source, planner::DeadlineSource::BeforeGa(_)) {
            DeadlineSource::GaMargin
        } else {
            DeadlineSource::Given
        } as i32,
        canary_wave: p.canary_wave,
    }
}

/// The problem of a late plan (or a late re-plan), with its suggestions.
pub fn late_problem(
    late_by: SignedDuration,
    binding: Binding,
    s: &Suggestions,
    remaining: bool,
) -> PlanProblem {
    let (constraint, amount, window) = match binding {
        Binding::Bake {
            critical_path,
            window,
        } => (Constraint::Bake, Some(critical_path), Some(window)),
        Binding::Concurrency => (Constraint::Concurrency, None, None),
        Binding::Blackouts { delay } => (Constraint::Blackout, Some(delay), None),
        Binding::EarliestStart => (Constraint::EarliestStart, None, None),
        Binding::LateStart { lost } => (Constraint::LateStart, Some(lost), None),
    };
    let which = if remaining { " for the remaining waves" } else { "" };
    let mut suggestions = Vec::new();
    if let Some(b) = s.longest_bake_that_fits {
        suggestions.push(PlanSuggestion {
            message: format!("bake {}{which} would fit", planner::format_duration(b)),
            change: Some(plan_suggestion::Change::Bake(proto_duration(b))),
        });
    }
    if let Some(c) = s.smallest_concurrency_that_fits {
        suggestions.push(PlanSuggestion {
            message: format!("concurrency {c}{which} would fit"),
            change: Some(plan_suggestion::Change::Concurrency(
                i32::try_from(c).unwrap_or(i32::MAX),
            )),
        });
    }
    if let Some(g) = s.earliest_ga_that_fits {
        suggestions.push(PlanSuggestion {
            message: format!("GA at {g} or later would fit"),
            change: Some(plan_suggestion::Change::GaTime(to_proto_timestamp(g))),
        });
    }
    let fixes: Vec<&str> = suggestions.iter().map(|s| s.message.as_str()).collect();
    PlanProblem {
        kind: PlanProblemKind::DeadlineMissed as i32,
        message: format!(
            "ends {} after the deadline: {binding}{}",
            planner::format_duration(late_by),
            if fixes.is_empty() {
                String::new()
            } else {
                format!("; {}", fixes.join("; "))
            }
        ),
        binding_constraint: constraint as i32,
        late_by: Some(proto_duration(late_by)),
        amount: amount.map(proto_duration),
        window: window.map(proto_duration),
        suggestions,
        missing_sign_offs: Vec::new(),
    }
}

/// The problem of a re-plan that is at risk.
pub fn at_risk_problem(a: &AtRisk) -> PlanProblem {
    late_problem(a.late_by, a.binding, &a.suggestions, true)
}

/// Plans `r` from scratch: the proto plan, feasible or with its problem.
pub fn plan(r: &Resolved) -> Result<ProtoPlan> {
    let now = r.input.now;
    match planner::plan(&r.input) {
        Ok(p) => Ok(plan_to_proto(&p, r, now)),
        Err(PlanError::Infeasible(inf)) => {
            let Infeasible {
                plan,
                late_by,
                binding,
                suggestions,
            } = *inf;
            let mut proto = plan_to_proto(&plan, r, now);
            proto.feasible = false;
            proto
                .problems
                .push(late_problem(late_by, binding, &suggestions, false));
            Ok(proto)
        }
        Err(e) => Err(e.into()),
    }
}

/// The pre-flight check: the regions of a plan (in plan order) that have
/// no registered agent (`agents/<region>`), so an apply there would fail.
pub fn without_agent<'a>(
    plan_regions: impl IntoIterator<Item = &'a str>,
    registered: &std::collections::HashSet<String>,
) -> Vec<String> {
    plan_regions
        .into_iter()
        .filter(|r| !registered.contains(*r))
        .map(str::to_owned)
        .collect()
}

/// The `--exclude` flag of `tilewave rollout plan|start` that leaves
/// `regions` out.
pub fn exclude_flag(regions: &[String]) -> String {
    format!("--exclude {}", regions.join(","))
}

/// "no agent is registered for X (is its tilewave-agent running?)", for
/// one region or several.
fn no_agent_sentence(missing: &[String]) -> String {
    match missing {
        [one] => format!("no agent is registered for {one} (is its tilewave-agent running?)"),
        many => format!(
            "no agent is registered for {} regions of the plan: {} (are their tilewave-agents running?)",
            many.len(),
            many.join(", ")
        ),
    }
}

/// The plan problem of the pre-flight check, with the exclusion that would
/// fit as its suggestion; `None` when every region has an agent.
pub fn no_agent_problem(missing: &[String]) -> Option<PlanProblem> {
    if missing.is_empty() {
        return None;
    }
    Some(PlanProblem {
        kind: PlanProblemKind::NoAgent as i32,
        message: format!("{}: applies there would fail", no_agent_sentence(missing)),
        suggestions: vec![PlanSuggestion {
            message: format!(
                "leave {} out",
                if missing.len() == 1 {
                    "that region"
                } else {
                    "those regions"
                }
            ),
            change: Some(plan_suggestion::Change::Exclude(RegionList {
                regions: missing.to_vec(),
            })),
        }],
        ..Default::default()
    })
}

/// StartRollout's refusal when the pre-flight check finds regions with no
/// agent: names them and the `--exclude` that would fit.
pub fn no_agent_refusal(missing: &[String]) -> Error {
    Error::FailedPrecondition(format!(
        "cannot start: {}; start the agent, or leave {} out with {}",
        no_agent_sentence(missing),
        if missing.len() == 1 { "it" } else { "them" },
        exclude_flag(missing)
    ))
}

/// The problem (kind and message) of a tile that cannot start, for a dry
/// run that always answers with a plan.
pub fn tile_problem(e: &Error, tile: &Tile) -> Option<PlanProblem> {
    let Error::FailedPrecondition(message) = e else {
        return None;
    };
    let kind = if tile.ga_time.is_none() && tile.state() != TileState::Ga {
        PlanProblemKind::NoGaDate
    } else if !tile.missing_sign_offs.is_empty() {
        PlanProblemKind::MissingSignOffs
    } else {
        PlanProblemKind::Unspecified
    };
    Some(PlanProblem {
        kind: kind as i32,
        message: message.clone(),
        missing_sign_offs: tile.missing_sign_offs.clone(),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn durations_out_of_protobufs_range_are_refused_not_a_panic() {
        let d = |seconds, nanos| prost_types::Duration { seconds, nanos };
        assert_eq!(
            duration_of("bake", &d(90, 5)).ok(),
            Some(SignedDuration::new(90, 5))
        );
        // Found by the property test: nanos carrying past i64 seconds
        // panicked in jiff.
        for (bad, says) in [
            (d(i64::MAX, 999_999_999), "seconds must be between"),
            (d(1, 1_000_000_000), "nanos must be between"),
            (d(-1, i32::MIN), "nanos must be between"),
            (d(-1, 5), "different signs"),
        ] {
            match duration_of("bake", &bad) {
                Err(Error::Invalid { field, message }) => {
                    assert_eq!(field, "bake");
                    assert!(message.contains(says), "{bad:?}: {message}");
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn pre_flight_lists_the_regions_without_an_agent_in_plan_order() {
        let registered: HashSet<String> = ids(&["aws:ap-northeast-1", "azure:westus"]).into_iter().collect();
        let plan = [
            "gcp:asia-northeast1",
            "aws:ap-northeast-1",
            "azure:westus",
            "azure:eastus",
        ];
        assert_eq!(
            without_agent(plan, &registered),
            ids(&["gcp:asia-northeast1", "azure:eastus"])
        );
        assert!(without_agent(["aws:ap-northeast-1"], &registered).is_empty());
        assert_eq!(no_agent_problem(&[]), None);
    }

    #[test]
    fn the_no_agent_problem_and_refusal_name_the_regions_and_the_exclude_that_fits() {
        // (missing, phrases in the problem, phrases in the refusal)
        let cases: &[(&[&str], &[&str], &[&str])] = &[
            (
                &["gcp:asia-northeast1"],
                &["no agent is registered for gcp:asia-northeast1 (is its tilewave-agent running?)"],
                &["cannot start", "leave it out with --exclude gcp:asia-northeast1"],
            ),
            (
                &["gcp:asia-northeast1", "azure:westus"],
                &["2 regions of the plan: gcp:asia-northeast1, azure:westus"],
                &["leave them out with --exclude gcp:asia-northeast1,azure:westus"],
            ),
        ];
        for (missing, in_problem, in_refusal) in cases {
            let missing = ids(missing);
            let p = no_agent_problem(&missing).unwrap();
            assert_eq!(p.kind, PlanProblemKind::NoAgent as i32);
            for want in *in_problem {
                assert!(p.message.contains(want), "{:?} lacks {want:?}", p.message);
            }
            assert_eq!(
                p.suggestions[0].change,
                Some(plan_suggestion::Change::Exclude(RegionList {
                    regions: missing.clone()
                }))
            );
            let Error::FailedPrecondition(refusal) = no_agent_refusal(&missing) else {
                panic!("a failed precondition")
            };
            for want in *in_refusal {
                assert!(refusal.contains(want), "{refusal:?} lacks {want:?}");
            }
        }
    }
}
