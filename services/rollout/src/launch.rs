//! The GA scheduler's answers: ScheduleGa (the slot choice, and its commit
//! through the registry), ListLaunches and HoldLaunch. The choice itself is
//! the core's ([`tilewave_core::calendar::choose`]); this module gathers
//! its inputs (the calendar, the places booked, the tile's go-to-market
//! state, the planner for the tile's default launch roll-out) and executes
//! the commit: the registry, the only writer of tiles, books the slot in
//! the transaction that sets the GA date, so a full slot refuses the
//! second tile whichever replica asked.
//!
//! Keys: `launch-holds/<tile>` (a [`LaunchHold`]), `launch-blocked/<tile>`
//! (a [`LaunchBlocked`], written by [`crate::scheduler`]).

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};
use tilewave_core::calendar::{
    self, Choice, ChooseOptions, Gtm, LaunchCalendar as CoreCalendar, PLAN_MARGIN, Reservations, SkipReason,
};
use tilewave_core::planner::{self, format_duration};
use tilewave_core::quote::quoted;
use tilewave_proto::ShortName;
use tilewave_proto::common::v1::TileState;
use tilewave_proto::registry::v1::{GtmStatus, SetGaDateRequest, Tile};
use tilewave_proto::rollout::v1::*;
use tilewave_service::limits;
use tilewave_store::audit;
use tilewave_store::clock::{from_proto_timestamp, to_proto_timestamp};
use tilewave_store::{Actor, Change, Versioned};

use crate::convert::{self, is_terminal};
use crate::error::{Error, Result};
use crate::model::Ctx;
use crate::spec::{self, Resolved};

/// The lead of a launch roll-out: it starts at GA minus this.
pub const LAUNCH_LEAD: SignedDuration = planner::DEFAULT_LEAD_TIME;

/// How far ahead ListLaunches lists calendar slots.
const LIST_SLOTS_WINDOW: SignedDuration = SignedDuration::from_hours(8 * 7 * 24);

/// How many times a commit re-chooses after the registry found its slot
/// taken by another scheduler meanwhile.
const COMMIT_ATTEMPTS: usize = 5;

/// A tile's GA moment, if set and readable.
pub fn ga_of(tile: &Tile) -> Option<Timestamp> {
    tile.ga_time.as_ref().and_then(|t| from_proto_timestamp(t).ok())
}

/// When a tile became ready: its newest sign-off on the latest revision
/// (the fifth, which made it SIGNED_OFF); its last change when it has none.
pub fn ready_at(tile: &Tile) -> Timestamp {
    tile.sign_offs
        .iter()
        .filter(|s| s.revision == tile.revision)
        .filter_map(|s| s.at.as_ref().and_then(|t| from_proto_timestamp(t).ok()))
        .max()
        .or_else(|| {
            tile.updated_at
                .as_ref()
                .and_then(|t| from_proto_timestamp(t).ok())
        })
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

/// The go-to-market items of a tile still pending, by name.
pub fn gtm_pending(tile: &Tile) -> Vec<String> {
    tile.gtm
        .iter()
        .filter(|g| g.status() != GtmStatus::Done)
        .map(|g| g.item.clone())
        .collect()
}

/// A tile's go-to-market state as the slot choice needs it: done, pending
/// until the latest due date of its pending items (the day after it, UTC),
/// or overridden.
pub fn gtm_of(tile: &Tile, overridden: bool) -> Gtm {
    let pending: Vec<_> = tile
        .gtm
        .iter()
        .filter(|g| g.status() != GtmStatus::Done)
        .collect();
    if pending.is_empty() {
        return Gtm::Done;
    }
    if overridden {
        return Gtm::Overridden;
    }
    let mut ready_by = Some(Timestamp::UNIX_EPOCH);
    for g in pending {
        let due = g
            .due
            .parse::<jiff::civil::Date>()
            .ok()
            .and_then(|d| d.tomorrow().ok())
            .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
            .map(|z| z.timestamp());
        ready_by = match (ready_by, due) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
    }
    Gtm::Pending { ready_by }
}

/// The places booked in each slot, from the tiles' bookings (the registry
/// keeps them), leaving out `except`.
pub fn reservations(ctx: &Ctx, except: &str) -> Reservations {
    let mut counts: HashMap<Timestamp, u32> = HashMap::new();
    // Only the booked moments are copied out of the cache.
    let booked = ctx.tiles.scan(|t| {
        if t.value.id == except {
            return None;
        }
        t.value
            .ga_slot
            .as_ref()
            .and_then(|s| s.at.as_ref())
            .and_then(|a| from_proto_timestamp(a).ok())
    });
    for at in booked {
        *counts.entry(at).or_default() += 1;
    }
    let mut r = Reservations::new();
    for (at, n) in counts {
        r.set(at, n);
    }
    r
}

/// The default launch roll-out of `tile` (or `spec_in`) resolved as if its
/// GA were `ga`, with the calendar's blackouts.
pub fn launch_resolved(
    ctx: &Ctx,
    tile: &Tile,
    spec_in: Option<&RolloutSpec>,
    ga: Option<Timestamp>,
    now: Timestamp,
) -> Result<Resolved> {
    let mut spec = spec_in.cloned().unwrap_or_default();
    spec.tile_id = tile.id.clone();
    spec.kind = RolloutKind::Launch as i32;
    spec.revision = 0;
    spec.ga_preview = None;
    let mut as_planned = tile.clone();
    if let Some(g) = ga {
        as_planned.ga_time = Some(to_proto_timestamp(g));
    }
    let mut resolved = spec::resolve(&spec, &as_planned, &ctx.catalog, now, &[])?;
    ctx.with_calendar_blackouts(&mut resolved.input);
    Ok(resolved)
}

/// Why a tile cannot be given a GA date now, and the command that clears
/// it; `Ok` when it can (SIGNED_OFF, or SCHEDULED with `reschedule`).
pub fn check_ready(tile: &Tile, reschedule: bool) -> Result<()> {
    let id = &tile.id;
    if tile.self_test {
        return Err(Error::FailedPrecondition(format!(
            "{id} is a self-test tile: it never gets a GA date"
        )));
    }
    match tile.state() {
        TileState::SignedOff => Ok(()),
        TileState::Scheduled if reschedule => Ok(()),
        TileState::Scheduled => Err(Error::FailedPrecondition(format!(
            "{id} is already scheduled for GA {}: `tilewave ga move {id}` chooses another slot",
            ga_of(tile).map_or_else(|| "?".into(), calendar::format_instant)
        ))),
        TileState::Draft => Err(Error::FailedPrecondition(format!(
            "{id} is not ready: it has no test workspace; set one with `tilewave tile set-test-workspace {id} WORKSPACE`, \
             then record the validation cases and the five sign-offs"
        ))),
        TileState::Validating => {
            let mut gates = Vec::new();
            let open = tile
                .validation
                .as_ref()
                .map(|v| v.open_cases.clone())
                .unwrap_or_default();
            if !open.is_empty() {
                gates.push(format!(
                    "{} validation case(s) open ({}): `tilewave tile validate {id} CASE --pass|--waive --note ...`",
                    open.len(),
                    open.join(", ")
                ));
            }
            if !tile.missing_sign_offs.is_empty() {
                let roles: Vec<String> = tile
                    .missing_sign_offs
                    .iter()
                    .map(|r| {
                        tilewave_proto::common::v1::SignOffRole::short_name_of(*r)
                            .to_ascii_lowercase()
                            .replace('_', "-")
                    })
                    .collect();
                gates.push(format!(
                    "sign-offs missing: {}: `tilewave tile signoff {id} --role ROLE`",
                    roles.join(", ")
                ));
            }
            if gates.is_empty() {
                gates.push(format!("see `tilewave tile get {id}`"));
            }
            Err(Error::FailedPrecondition(format!(
                "{id} is not ready for a GA date: {}",
                gates.join("; ")
            )))
        }
        other => Err(Error::FailedPrecondition(format!(
            "{id} is {}: a GA date can no longer be chosen",
            other.short_name()
        ))),
    }
}

/// A skip reason's kind, as the wire names it.
fn skip_kind(r: &SkipReason) -> &'static str {
    match r {
        SkipReason::NotBefore { .. } => "not-before",
        SkipReason::UnderLeadTime { .. } => "lead-time",
        SkipReason::Blackout { .. } => "blackout",
        SkipReason::GtmPending { .. } => "gtm",
        SkipReason::Full { .. } => "full",
        SkipReason::PlanDoesNotFit { .. } => "plan",
    }
}

/// What would help when no slot fits, from what the slots were skipped for.
fn remedies(tile: &str, counts: &calendar::SkipCounts) -> Vec<String> {
    let mut out = Vec::new();
    if counts.full > 0 {
        out.push(
            "add a launch slot (`tilewave calendar add-slot --at TIME --capacity N`) or raise a rule's capacity"
                .to_owned(),
        );
    }
    if counts.plan_does_not_fit > 0 {
        out.push(format!(
            "plan a faster roll-out (`tilewave ga schedule {tile} --bake 2h --concurrency 10`)"
        ));
    }
    if counts.gtm_pending > 0 {
        out.push(format!(
            "finish the go-to-market items (`tilewave tile gtm {tile}`) or commit with `--gtm-override REASON`"
        ));
    }
    if counts.blackout > 0 {
        out.push("remove or shorten a blackout (`tilewave calendar show`)".to_owned());
    }
    if out.is_empty() {
        out.push("add a launch rule (`tilewave calendar add-rule ...`)".to_owned());
    }
    out
}

/// One tile's answer, and with `commit` the GA date set through the
/// registry (re-choosing when another scheduler filled the slot meanwhile).
/// `reservations` are the places booked by others; a committed choice is
/// booked into them.
pub async fn schedule_tile(
    ctx: &Ctx,
    actor: &Actor,
    req: &ScheduleGaRequest,
    tile: Tile,
    reservations: &mut Reservations,
) -> Result<ScheduleGaResponse> {
    check_ready(&tile, req.reschedule)?;
    let cal = ctx.launch_calendar().unwrap_or_default();
    if cal.rules.is_empty() && cal.extra_slots.is_empty() {
        return Err(Error::FailedPrecondition(
            "the launch calendar has no launch day: add one with \
             `tilewave calendar add-rule --days tue --time 17:00 --tz UTC --capacity 5` \
             or `tilewave calendar add-slot --at TIME --capacity N`"
                .into(),
        ));
    }
    let now = ctx.clock.now();
    let overridden = !req.gtm_override.trim().is_empty();
    let gtm = gtm_of(&tile, overridden);
    let not_before = req
        .not_before
        .as_ref()
        .map(|t| spec::timestamp_of("not_before", t))
        .transpose()?;
    let options = ChooseOptions {
        not_before,
        ..ChooseOptions::default()
    };
    let resolved = launch_resolved(ctx, &tile, req.spec.as_ref(), None, now)?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let choice = calendar::choose(
            &cal,
            now,
            reservations,
            gtm,
            &options,
            calendar::plan_end_with_planner(&resolved.input),
        )
        .map_err(|e| convert::calendar_error(&e, "calendar."))?;
        let mut answer = answer_of(ctx, &cal, &tile, req, &choice, now)?;
        let Choice::Chosen(chosen) = &choice else {
            return Ok(answer);
        };
        if !req.commit {
            return Ok(answer);
        }
        let set = SetGaDateRequest {
            id: tile.id.clone(),
            ga_time: Some(to_proto_timestamp(chosen.slot.at)),
            etag: if req.tile_etag != 0 {
                req.tile_etag
            } else {
                tile.etag
            },
            reason: format!(
                "scheduled into the launch slot {} ({}) by ScheduleGa",
                calendar::format_instant(chosen.slot.at),
                cal.describe_sources(&chosen.slot)
            ),
            slot_capacity: i32::try_from(chosen.slot.capacity).unwrap_or(i32::MAX),
            gtm_override: req.gtm_override.clone(),
        };
        match ctx.registry.set_ga_date(actor.as_str(), set).await {
            Ok(_) => {
                reservations.book(&chosen.slot);
                answer.committed = true;
                return Ok(answer);
            }
            Err(s)
                if s.code() == tonic::Code::FailedPrecondition
                    && s.message().contains("full")
                    && attempt < COMMIT_ATTEMPTS =>
            {
                // Another scheduler took the last place meanwhile: count the
                // slot full and choose again.
                reservations.set(chosen.slot.at, chosen.slot.capacity);
            }
            Err(s) => {
                return Err(Error::remote(
                    format!("registry SetGaDate {}", quoted(&tile.id)),
                    s,
                ));
            }
        }
    }
}

/// The wire answer of a choice, with the plan for the chosen slot.
fn answer_of(
    ctx: &Ctx,
    cal: &CoreCalendar,
    tile: &Tile,
    req: &ScheduleGaRequest,
    choice: &Choice,
    now: Timestamp,
) -> Result<ScheduleGaResponse> {
    let skipped: Vec<SkippedSlot> = choice
        .skipped()
        .iter()
        .map(|s| SkippedSlot {
            slot: Some(to_proto_timestamp(s.at)),
            reason: s.reason.to_string(),
            kind: skip_kind(&s.reason).to_owned(),
        })
        .collect();
    let mut out = ScheduleGaResponse {
        tile_id: tile.id.clone(),
        skipped,
        ..Default::default()
    };
    match choice {
        Choice::Chosen(c) => {
            let resolved = launch_resolved(ctx, tile, req.spec.as_ref(), Some(c.slot.at), now)?;
            out.plan = Some(spec::plan(&resolved)?);
            out.ga_time = Some(to_proto_timestamp(c.slot.at));
            out.slot_capacity = i32::try_from(c.slot.capacity).unwrap_or(i32::MAX);
            out.slot_booked = i32::try_from(c.booked).unwrap_or(i32::MAX);
            out.slot_source = cal.describe_sources(&c.slot);
            out.slack = Some(spec::proto_duration(c.slack));
            if c.gtm == Gtm::Overridden {
                out.gtm_override = req.gtm_override.clone();
            }
            out.explanation = format!(
                "GA {} ({}, place {} of {}): the launch roll-out starts {} and its plan ends {}, {} before the deadline {} (GA - {}); {} earlier slot(s) skipped{}",
                calendar::format_instant(c.slot.at),
                out.slot_source,
                c.booked + 1,
                c.slot.capacity,
                c.slot
                    .at
                    .checked_sub(LAUNCH_LEAD)
                    .map_or_else(|_| "?".into(), |t| calendar::format_instant(t.max(now))),
                calendar::format_instant(c.planned_end),
                format_duration(c.slack),
                c.slot
                    .at
                    .checked_sub(PLAN_MARGIN)
                    .map_or_else(|_| "?".into(), calendar::format_instant),
                format_duration(PLAN_MARGIN),
                c.skipped.len(),
                if c.gtm == Gtm::Overridden {
                    format!(
                        "; go-to-market pending ({}), committed under the override {}",
                        gtm_pending(tile).join(", "),
                        quoted(&req.gtm_override)
                    )
                } else {
                    String::new()
                }
            );
        }
        Choice::NoSlot(n) => {
            out.searched_until = Some(to_proto_timestamp(n.before));
            let c = &n.counts;
            let mut why = Vec::new();
            for (count, what) in [
                (c.under_lead_time, "under 7 days away"),
                (c.not_before, "before the asked date"),
                (c.blackout, "in a blackout"),
                (c.gtm_pending, "go-to-market pending"),
                (c.full, "full"),
                (c.plan_does_not_fit, "the plan cannot fit"),
            ] {
                if count > 0 {
                    why.push(format!("{count} {what}"));
                }
            }
            out.explanation = format!(
                "no slot before {}: {} slot(s) looked at ({}); what would help: {}",
                calendar::format_instant(n.before),
                c.total(),
                if why.is_empty() {
                    "the calendar yields none".to_owned()
                } else {
                    why.join(", ")
                },
                remedies(&tile.id, c).join("; or ")
            );
        }
    }
    Ok(out)
}

/// ScheduleGa: one tile, or with `all_ready` every SIGNED_OFF tile first
/// ready first served.
pub async fn schedule(ctx: &Ctx, actor: &Actor, req: &ScheduleGaRequest) -> Result<ScheduleGaResponse> {
    limits::text("gtm_override", &req.gtm_override)?;
    if let Some(s) = &req.spec {
        spec::check_bounds(s)?;
    }
    if req.all_ready {
        if !req.tile_id.is_empty() {
            return Err(Error::invalid("tile_id", "give a tile_id or all_ready, not both"));
        }
        let mut ready: Vec<Tile> = ctx.tiles.scan(|t| {
            (!t.value.self_test && t.value.state() == TileState::SignedOff).then(|| t.value.clone())
        });
        ready.sort_by(|a, b| ready_at(a).cmp(&ready_at(b)).then_with(|| a.id.cmp(&b.id)));
        let mut reservations = reservations(ctx, "");
        let mut batch = Vec::with_capacity(ready.len());
        for tile in ready {
            // A fresh read: the etag the commit is guarded on.
            let tile = ctx.registry.get_tile(&tile.id, 0).await?;
            let one = ScheduleGaRequest {
                tile_id: tile.id.clone(),
                all_ready: false,
                tile_etag: 0,
                ..req.clone()
            };
            match schedule_tile(ctx, actor, &one, tile.clone(), &mut reservations).await {
                Ok(a) => batch.push(a),
                Err(e) => batch.push(ScheduleGaResponse {
                    tile_id: tile.id.clone(),
                    explanation: format!("not scheduled: {e}"),
                    ..Default::default()
                }),
            }
        }
        return Ok(ScheduleGaResponse {
            committed: batch.iter().any(|b| b.committed),
            explanation: format!(
                "{} ready tile(s), {} with a slot{}",
                batch.len(),
                batch.iter().filter(|b| b.ga_time.is_some()).count(),
                if req.commit { " (committed)" } else { " (proposed)" }
            ),
            batch,
            ..Default::default()
        });
    }
    if req.tile_id.is_empty() {
        return Err(Error::invalid("tile_id", "required (or all_ready)"));
    }
    limits::id("tile_id", &req.tile_id)?;
    tilewave_core::slug::TileId::parse(&req.tile_id).map_err(|e| Error::invalid("tile_id", e.to_string()))?;
    let tile = ctx.registry.get_tile(&req.tile_id, 0).await?;
    let mut reservations = reservations(ctx, &tile.id);
    schedule_tile(ctx, actor, req, tile, &mut reservations).await
}

/// The launch roll-out of a tile's current revision, if one was ever
/// created (in any state).
pub fn launch_rollout(ctx: &Ctx, tile: &Tile) -> Option<Rollout> {
    // Only the tile's roll-outs are copied.
    let mut of_tile = ctx.rollouts.scan(|r| {
        (r.value.tile_id == tile.id && r.value.revision == tile.revision && is_launch(&r.value))
            .then(|| r.clone())
    });
    of_tile.sort_by_key(|r| (!is_terminal(r.value.state), r.create_revision));
    of_tile.pop().map(|r| r.value)
}

/// Whether `r` is a launch roll-out (a kind this build does not know is
/// taken for one).
pub fn is_launch(r: &Rollout) -> bool {
    RolloutKind::try_from(r.kind).unwrap_or(RolloutKind::Launch) == RolloutKind::Launch
}

/// The plan of a scheduled tile's launch roll-out from now, as the
/// scheduler sees it: `Ok(plan)` when it fits, `Err` with the infeasible
/// plan when it does not.
pub fn scheduled_plan(
    ctx: &Ctx,
    tile: &Tile,
    now: Timestamp,
) -> Result<std::result::Result<planner::Plan, Box<planner::Infeasible>>> {
    let resolved = launch_resolved(ctx, tile, None, None, now)?;
    match planner::plan(&resolved.input) {
        Ok(p) => Ok(Ok(p)),
        Err(planner::PlanError::Infeasible(i)) => Ok(Err(i)),
        Err(e) => Err(e.into()),
    }
}

/// ListLaunches: tiles with a GA date in the range (from now by default),
/// earliest first, with their roll-out or plan, hold and readiness; and the
/// calendar's slots in the range with their places booked.
pub async fn list(ctx: &Ctx, req: &ListLaunchesRequest) -> Result<ListLaunchesResponse> {
    let page = tilewave_service::paging::Page::parse(req.page.as_ref())
        .map_err(|e| Error::invalid(e.field, e.message))?;
    let now = ctx.clock.now();
    let (from, to) = match &req.range {
        Some(r) => (
            r.start
                .as_ref()
                .map(|t| spec::timestamp_of("range.start", t))
                .transpose()?,
            r.end
                .as_ref()
                .map(|t| spec::timestamp_of("range.end", t))
                .transpose()?,
        ),
        None => (None, None),
    };
    let from = from.unwrap_or(now);
    if to.is_some_and(|t| t <= from) {
        return Err(Error::invalid("range.end", "must be after range.start"));
    }
    let Records { holds, blocked } = Records::read(ctx).await?;
    let mut tiles: Vec<(Timestamp, Tile)> = ctx.tiles.scan(|t| {
        let g = ga_of(&t.value)?;
        (g >= from
            && to.is_none_or(|to| g < to)
            && matches!(
                t.value.state(),
                TileState::Scheduled | TileState::RollingOut | TileState::RolledOut | TileState::Ga
            ))
        .then(|| (g, t.value.clone()))
    });
    tiles.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
    let mut launches = Vec::with_capacity(tiles.len());
    for (ga, tile) in tiles {
        launches.push(launch_of(
            ctx,
            &tile,
            ga,
            now,
            holds.get(&tile.id),
            blocked.get(&tile.id).map(|b| &b.value),
        ));
    }
    let (launches, next_page_token) = page
        .by_offset(launches)
        .map_err(|e| Error::invalid(e.field, e.message))?;
    let mut slots = Vec::new();
    if let Some(cal) = ctx.launch_calendar() {
        let until = to.unwrap_or(from.checked_add(LIST_SLOTS_WINDOW).unwrap_or(from));
        let booked = reservations(ctx, "");
        if let Ok(found) = cal.slots(from, until) {
            slots = found
                .iter()
                .filter(|s| cal.blackout_at(s.at).is_none())
                .take(100)
                .map(|s| LaunchSlot {
                    booked: i32::try_from(booked.booked(s.at)).unwrap_or(i32::MAX),
                    ..convert::slot_to_wire(&cal, s)
                })
                .collect();
        }
    }
    Ok(ListLaunchesResponse {
        launches,
        next_page_token,
        slots,
    })
}

/// One launch as ListLaunches shows it.
fn launch_of(
    ctx: &Ctx,
    tile: &Tile,
    ga: Timestamp,
    now: Timestamp,
    hold: Option<&LaunchHold>,
    blocked: Option<&LaunchBlocked>,
) -> Launch {
    let mut l = Launch {
        tile_id: tile.id.clone(),
        tile_name: tile.name.clone(),
        partner_id: tile.partner_id.clone(),
        revision: tile.revision,
        ga_time: Some(to_proto_timestamp(ga)),
        tile_state: tile.state,
        held: hold.is_some(),
        hold_reason: hold.map(|h| h.reason.clone()).unwrap_or_default(),
        gtm_override: tile
            .gtm_override
            .as_ref()
            .map(|o| format!("{} (by {})", o.reason, o.by))
            .unwrap_or_default(),
        gtm_pending: gtm_pending(tile),
        open_cases: tile
            .validation
            .as_ref()
            .map(|v| v.open_cases.clone())
            .unwrap_or_default(),
        start_at: ga.checked_sub(LAUNCH_LEAD).ok().map(to_proto_timestamp),
        slot_booked: tile.ga_slot.is_some(),
        blocked: blocked
            .filter(|b| b.revision == tile.revision)
            .map(|b| b.reason.clone())
            .unwrap_or_default(),
        ..Default::default()
    };
    let deadline = ga.checked_sub(PLAN_MARGIN).ok();
    if let Some(r) = launch_rollout(ctx, tile) {
        l.rollout_id = r.id.clone();
        l.rollout_state = r.state;
        l.eta = r.eta;
        let eta = r.eta.as_ref().and_then(|t| from_proto_timestamp(t).ok());
        if let (Some(eta), Some(d)) = (eta, deadline) {
            l.slack = Some(spec::proto_duration(eta.duration_until(d)));
        }
    } else if tile.state() == TileState::Scheduled {
        match scheduled_plan(ctx, tile, now) {
            Ok(Ok(p)) => {
                l.eta = Some(to_proto_timestamp(p.planned_end));
                l.slack = Some(spec::proto_duration(p.planned_end.duration_until(p.deadline)));
            }
            Ok(Err(i)) => {
                l.eta = Some(to_proto_timestamp(i.plan.planned_end));
                l.slack = Some(spec::proto_duration(-i.late_by));
            }
            Err(e) => tracing::debug!(tile = %tile.id, error = %e, "no plan for the launch list"),
        }
    }
    l
}

/// HoldLaunch: holds (or releases) a scheduled tile's launch, audited.
pub async fn hold(ctx: &Ctx, actor: &Actor, req: &HoldLaunchRequest) -> Result<HoldLaunchResponse> {
    if req.tile_id.is_empty() {
        return Err(Error::invalid("tile_id", "required"));
    }
    limits::id("tile_id", &req.tile_id)?;
    limits::text("reason", &req.reason)?;
    tilewave_core::slug::TileId::parse(&req.tile_id).map_err(|e| Error::invalid("tile_id", e.to_string()))?;
    if req.hold && req.reason.trim().is_empty() {
        return Err(Error::invalid("reason", "required to hold a launch: say why"));
    }
    let tile = ctx.registry.get_tile(&req.tile_id, 0).await?;
    let key = ctx.keys().launch_hold(&tile.id);
    let current = ctx.store.get::<LaunchHold>(&key).await?;
    let have = current.as_ref().map_or(0, |c| c.etag);
    if req.etag != 0 && req.etag != have {
        return Err(Error::Conflict(format!(
            "etag: the hold on {} changed since it was read (etag {}, now {have}): read it again (`tilewave ga list`)",
            tile.id, req.etag
        )));
    }
    let now = ctx.clock.now();
    if req.hold {
        let mut hold = LaunchHold {
            tile_id: tile.id.clone(),
            reason: req.reason.clone(),
            by: actor.as_str().to_owned(),
            at: Some(to_proto_timestamp(now)),
            etag: 0,
        };
        let change = match &current {
            Some(c) => Change::new().update(key, &hold, c.etag),
            None => Change::new().create(key, &hold),
        }
        .audit(audit::record(
            "HoldLaunch",
            "tile",
            &tile.id,
            format!("launch held: {}", quoted(&req.reason)),
        ));
        hold.etag = commit_hold(ctx, actor, change).await?;
        Ok(HoldLaunchResponse { hold: Some(hold) })
    } else {
        if let Some(c) = current {
            let change = Change::new().delete(key, c.etag).audit(audit::record(
                "ReleaseLaunch",
                "tile",
                &tile.id,
                format!(
                    "launch released (held by {} for {})",
                    c.value.by,
                    quoted(&c.value.reason)
                ),
            ));
            commit_hold(ctx, actor, change).await?;
        }
        Ok(HoldLaunchResponse { hold: None })
    }
}

/// Commits a hold change; the store revision it committed at.
async fn commit_hold(ctx: &Ctx, actor: &Actor, change: Change) -> Result<i64> {
    match ctx.store.commit(change, actor).await {
        Ok(info) => Ok(info.revision),
        Err(tilewave_store::Error::Conflict { .. } | tilewave_store::Error::AlreadyExists { .. }) => Err(
            Error::Conflict("the launch's hold changed meanwhile: try again".into()),
        ),
        Err(e) => Err(e.into()),
    }
}

/// The launch holds and the blocked pre-flights, by tile, as etcd has them
/// now (two range reads).
#[derive(Debug)]
pub struct Records {
    /// `launch-holds/`.
    pub holds: HashMap<String, LaunchHold>,
    /// `launch-blocked/`, with their etags (the scheduler updates them).
    pub blocked: HashMap<String, Versioned<LaunchBlocked>>,
}

impl Records {
    /// Reads both.
    pub async fn read(ctx: &Ctx) -> Result<Self> {
        let holds = ctx
            .store
            .list::<LaunchHold>(&ctx.keys().launch_holds())
            .await?
            .items
            .into_iter()
            .map(|h| (h.value.tile_id.clone(), h.value))
            .collect();
        let blocked = ctx
            .store
            .list::<LaunchBlocked>(&ctx.keys().launch_blocked_all())
            .await?
            .items
            .into_iter()
            .map(|h| (h.value.tile_id.clone(), h))
            .collect();
        Ok(Self { holds, blocked })
    }
}
