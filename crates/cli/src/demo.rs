//! `tilewave demo`: a launch on the local stack, start to finish, on the
//! virtual clock. It imports a fixture tile (riverflow by default; a fresh
//! id when that exists), sets a test workspace, passes its validation
//! checklist and sets its go-to-market items, records the five sign-offs,
//! schedules GA on the launch calendar (adding a daily launch day when the
//! calendar has none), shows the plan, waits for the GA scheduler to start
//! the roll-out at GA - 7 days and shows its progress until it succeeds,
//! then says how far ahead of GA it finished and how to explore.
//!
//! The tile's partner is the stack's partner API double
//! ([`crate::demo_partner`]): before GA is scheduled the partner issues a
//! credential, which is rotated into every region and verified against the
//! partner from each (the GA scheduler's pre-flight wants that), and after
//! the launch the partner issues a new one, rotated over every region
//! while they keep calling the partner; the partner then removes the old
//! one, and the demo shows the partner refused none of their calls.
//! Last, an injected failure pages a local webhook and is acknowledged
//! ([`crate::demo_oncall`]).

use std::io::IsTerminal as _;

use jiff::{SignedDuration, Timestamp};
use tilewave_proto::clock::v1::{GetTimeRequest, SetRateRequest};
use tilewave_proto::common::v1::LocalTime;
use tilewave_proto::common::v1::SignOffRole;
use tilewave_proto::registry::v1::{
    GtmStatus, ImportPartnerConfigRequest, RecordSignOffRequest, RecordValidationRequest, SetGtmItemRequest,
    SetTestWorkspaceRequest, Tile, ValidationOutcome,
};
use tilewave_proto::rollout::v1::edit_launch_calendar_request::Edit;
use tilewave_proto::rollout::v1::{
    EditLaunchCalendarRequest, GetLaunchCalendarRequest, GetRolloutRequest, LaunchRule, ListLaunchesRequest,
    PlanRolloutRequest, Rollout, RolloutSpec, RolloutState, ScheduleGaRequest,
};

use crate::client::{Ctx, out};
use crate::error::{CliError, rpc};
use crate::names::{from_proto_time, human_duration, human_time};
use crate::rollout::plan::infeasible;
use crate::rollout::render::{is_terminal, plan_text, progress, width};
use crate::rollout::status::{follow, mode};
use crate::settings::process_env;
use crate::tile::read_document;

/// The default demo tile: the riverflow partner config of the fixtures.
const RIVERFLOW: &str = include_str!("../../core/tests/fixtures/partner-connect/riverflow-ingest.json");
/// The test workspace the demo sets.
const DEMO_WORKSPACE: &str = "6051921418418893";
/// How long the demo waits (real time) for the GA scheduler to start the
/// roll-out at GA - 7 days: at most a day of domain time after scheduling.
const START_WAIT: std::time::Duration = std::time::Duration::from_secs(300);
/// A launch roll-out starts this long before GA.
const LAUNCH_LEAD: SignedDuration = SignedDuration::from_hours(7 * 24);
/// A launch must finish this long before GA.
const GA_MARGIN: SignedDuration = SignedDuration::from_hours(24);
/// How many `<id>-N` ids are tried when the tile exists.
const MAX_FRESH_IDS: u32 = 50;

/// Examples shown by `--help`.
const EXAMPLES: &str = "\
Needs a running stack on the virtual clock: `tilewave dev up --virtual-clock --rate 10000`.

Examples:
  tilewave demo
  tilewave demo --rate 10000
  tilewave demo --tile my-partner.json";

/// Arguments of `demo`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct DemoArgs {
    /// A partner config to launch instead of the built-in riverflow fixture.
    #[arg(long, value_name = "FILE")]
    pub tile: Option<String>,
    /// Set the virtual clock's rate first (virtual seconds per real second).
    #[arg(long, value_name = "R", value_parser = positive_rate)]
    pub rate: Option<f64>,
    /// The partner API double's URL (default: the one `tilewave dev up`
    /// started, from the stack's saved state).
    #[arg(long, value_name = "URL")]
    pub partner: Option<String>,
}

/// The partner double of the saved dev stack.
fn partner_double_url() -> anyhow::Result<String> {
    let stack = crate::dev::stack::saved_stack(&process_env)?;
    stack
        .as_ref()
        .and_then(|s| s.process(crate::dev::PARTNER_DOUBLE))
        .map(|p| p.url.clone())
        .ok_or_else(|| {
            CliError::usage(
                "the dev stack runs no partner API double (the demo tile's partner): build it with `cargo build --bins`, \
                 then `tilewave dev down && tilewave dev up --virtual-clock --rate 10000`; or give --partner URL",
            )
            .into()
        })
}

/// Polls rotation `id` until it is COMPLETED (the old credential retired
/// everywhere), for at most a minute.
async fn wait_completed(ctx: &Ctx, id: &str) -> anyhow::Result<tilewave_proto::credentials::v1::Rotation> {
    use tilewave_proto::credentials::v1::{GetRotationRequest, RotationState};
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let r = rpc(
            "GetRotation",
            ctx.credentials()?
                .get_rotation(ctx.request(GetRotationRequest {
                    id: id.to_owned(),
                    ..Default::default()
                })?)
                .await,
        )?
        .rotation
        .ok_or_else(|| anyhow::anyhow!("GetRotation: no rotation"))?;
        if r.state != RotationState::Promoted as i32 {
            return Ok(r);
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!(
                "rotation {id} is still PROMOTED after a minute: `tilewave creds status {id}` shows which regions have not retired the old credential"
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// A rate above zero.
fn positive_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!("{s:?} is not a rate: use a number > 0, e.g. 10000")),
    }
}

/// The id to try for the `attempt`-th import: the document's own (empty:
/// its slug) first, then `<base>-2`, `<base>-3`, ...
pub fn candidate_id(base: &str, attempt: u32) -> String {
    if attempt <= 1 {
        String::new()
    } else {
        format!("{base}-{attempt}")
    }
}

/// The slug a document's name gives (what the registry derives the id from).
pub fn base_id(config_json: &str) -> String {
    let name = serde_json::from_str::<serde_json::Value>(config_json)
        .ok()
        .and_then(|v| v.get("name").and_then(|n| n.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "demo".into());
    let slug = tilewave_core::slug::slugify(&name);
    if slug.is_empty() { "demo".into() } else { slug }
}

/// The five sign-off roles a launch needs.
pub const ROLES: [SignOffRole; 5] = [
    SignOffRole::Engineering,
    SignOffRole::PartnerSolutionArchitect,
    SignOffRole::Product,
    SignOffRole::Partner,
    SignOffRole::Legal,
];

/// The sign-off request for `role` on the tile as read.
pub fn signoff_request(tile: &Tile, role: SignOffRole) -> RecordSignOffRequest {
    RecordSignOffRequest {
        id: tile.id.clone(),
        role: role as i32,
        revision: tile.latest_revision.max(tile.revision),
        note: "tilewave demo".into(),
        etag: tile.etag,
    }
}

/// The launch rule the demo adds when the calendar has no launch day.
pub fn demo_rule() -> LaunchRule {
    LaunchRule {
        name: "tilewave demo: daily launch".into(),
        weekdays: (1..=7).collect(),
        time: Some(LocalTime { hour: 17, minute: 0 }),
        time_zone: "UTC".into(),
        capacity: 20,
    }
}

/// Adds [`demo_rule`] when the launch calendar has no launch day yet.
async fn ensure_launch_day(ctx: &Ctx) -> anyhow::Result<()> {
    let mut rollouts = ctx.rollouts()?;
    let current = rpc(
        "GetLaunchCalendar",
        rollouts
            .get_launch_calendar(ctx.request(GetLaunchCalendarRequest { upcoming: 0 })?)
            .await,
    )?
    .calendar
    .unwrap_or_default();
    if !current.rules.is_empty() || !current.extra_slots.is_empty() {
        return Ok(());
    }
    rpc(
        "EditLaunchCalendar",
        rollouts
            .edit_launch_calendar(ctx.request(EditLaunchCalendarRequest {
                etag: current.etag,
                edit: Some(Edit::AddRule(demo_rule())),
            })?)
            .await,
    )?;
    out("==> launch calendar: added a daily 17:00 UTC launch for 20 tiles (tilewave calendar show)\n")
}

/// Polls until the GA scheduler has created the tile's roll-out; fails
/// early with the scheduler's reason when it records the launch as blocked.
async fn wait_for_start(ctx: &Ctx, id: &str) -> anyhow::Result<Rollout> {
    let mut rollouts = ctx.rollouts()?;
    let deadline = tokio::time::Instant::now() + START_WAIT;
    loop {
        match rollouts
            .get_rollout(ctx.request(GetRolloutRequest {
                id: String::new(),
                tile_id: id.to_owned(),
            })?)
            .await
        {
            Ok(r) => {
                if let Some(r) = r.into_inner().rollout {
                    return Ok(r);
                }
            }
            Err(s) if s.code() == tonic::Code::NotFound => {}
            Err(s) => {
                return Err(rpc::<()>("GetRollout", Err(s))
                    .err()
                    .map_or_else(|| anyhow::anyhow!("GetRollout"), Into::into));
            }
        }
        let launches = rpc(
            "ListLaunches",
            rollouts
                .list_launches(ctx.request(ListLaunchesRequest::default())?)
                .await,
        )?;
        if let Some(l) = launches
            .launches
            .iter()
            .find(|l| l.tile_id == id && !l.blocked.is_empty())
        {
            return Err(CliError::Conflict(format!(
                "the GA scheduler did not start {id}: {} (tilewave ga list)",
                l.blocked
            ))
            .into());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(CliError::Conflict(format!(
                "the GA scheduler has not started {id} within {}s: is the virtual clock running fast? \
                 (tilewave clock show; tilewave ga list)",
                START_WAIT.as_secs()
            ))
            .into());
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// The demo's launch readiness (issue 14) for the tile as read: every
/// validation case passed (the engineering sign-off's gate), and the four
/// go-to-market items a release engineer sets done (the GA date's gate),
/// owned by the partner, due on the tile's last-update day, with links on
/// the partner's site (the origin of its sign-up page). The agreement
/// follows legal's sign-off.
pub fn readiness_requests(tile: &Tile) -> (RecordValidationRequest, Vec<SetGtmItemRequest>) {
    let validation = RecordValidationRequest {
        id: tile.id.clone(),
        all_open: true,
        outcome: ValidationOutcome::Pass as i32,
        note: "tilewave demo: certification suite passed".into(),
        ..Default::default()
    };
    let config = tile.config.clone().unwrap_or_default();
    let site = [config.sign_up_page.as_str(), config.base_url.as_str()]
        .into_iter()
        .find_map(|u| {
            let rest = u.strip_prefix("https://")?;
            let host = rest.split('/').next().filter(|h| !h.is_empty())?;
            Some(format!("https://{host}"))
        })
        .unwrap_or_else(|| format!("https://{}.example", tile.partner_id));
    let due = from_proto_time(tile.updated_at.as_ref())
        .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).date().to_string())
        .unwrap_or_else(|| "2026-12-01".into());
    let items = [
        ("mini-site", "partners"),
        ("logo", "press/logo.svg"),
        ("blog", "blog/launch"),
        ("docs", "docs"),
    ]
    .into_iter()
    .map(|(item, path)| SetGtmItemRequest {
        id: tile.id.clone(),
        item: item.into(),
        status: GtmStatus::Done as i32,
        owner: format!("{} marketing", tile.partner_id),
        due: due.clone(),
        link: format!("{site}/{path}"),
        etag: 0,
    })
    .collect();
    (validation, items)
}

/// Runs [`readiness_requests`]; returns the tile as it then is.
async fn launch_readiness(
    ctx: &Ctx,
    registry: &mut crate::client::Registry,
    tile: &Tile,
) -> anyhow::Result<Tile> {
    let (validation, items) = readiness_requests(tile);
    let mut last = rpc(
        "RecordValidation",
        registry.record_validation(ctx.request(validation)?).await,
    )?
    .tile;
    for item in items {
        last = rpc("SetGtmItem", registry.set_gtm_item(ctx.request(item)?).await)?.tile;
    }
    tile_of("SetGtmItem", last)
}

/// The closing verdict: how far ahead of GA the roll-out finished.
pub fn verdict(finished: Timestamp, ga: Timestamp) -> String {
    let ahead = ga.duration_since(finished);
    let ok = if ahead >= GA_MARGIN { "OK" } else { "MISSED" };
    if ahead.is_negative() {
        format!(
            "finished {} after GA; the rule needs >= 24h before: {ok}",
            human_duration(-ahead)
        )
    } else {
        format!(
            "finished {} before GA; the rule needs >= 24h: {ok}",
            human_duration(ahead)
        )
    }
}

/// Domain now from the clock service; refuses the system clock (a week
/// would take a week).
async fn virtual_now(ctx: &Ctx) -> anyhow::Result<Timestamp> {
    let reading = rpc(
        "GetTime",
        ctx.clock()?.get_time(ctx.request(GetTimeRequest {})?).await,
    )?
    .clock
    .ok_or_else(|| anyhow::anyhow!("GetTime: no reading"))?;
    if !reading.virtual_clock {
        return Err(CliError::Conflict(
            "the stack runs on the system clock, so a launch would take a week: restart it with `tilewave dev down && tilewave dev up --virtual-clock --rate 10000`".into(),
        )
        .into());
    }
    from_proto_time(reading.now.as_ref()).ok_or_else(|| anyhow::anyhow!("GetTime: no time"))
}

/// Imports the document under its own id, or a fresh one when it exists.
async fn import(ctx: &Ctx, doc: &str) -> anyhow::Result<Tile> {
    let base = base_id(doc);
    let mut registry = ctx.registry()?;
    for attempt in 1..=MAX_FRESH_IDS {
        let req = ImportPartnerConfigRequest {
            config_json: doc.to_owned(),
            id: candidate_id(&base, attempt),
            ..ImportPartnerConfigRequest::default()
        };
        match registry.import_partner_config(ctx.request(req)?).await {
            Ok(resp) => {
                return resp
                    .into_inner()
                    .tile
                    .ok_or_else(|| anyhow::anyhow!("ImportPartnerConfig: no tile"));
            }
            Err(status) if status.code() == tonic::Code::AlreadyExists => {}
            Err(status) => {
                return Err(CliError::Rpc {
                    rpc: "ImportPartnerConfig",
                    status,
                }
                .into());
            }
        }
    }
    anyhow::bail!("{base} .. {base}-{MAX_FRESH_IDS} all exist: `tilewave dev down --purge` starts afresh")
}

/// A response's tile.
fn tile_of(name: &str, t: Option<Tile>) -> anyhow::Result<Tile> {
    t.ok_or_else(|| anyhow::anyhow!("{name}: the response holds no tile"))
}

/// Runs `demo`.
pub async fn run(args: DemoArgs, ctx: &Ctx) -> anyhow::Result<()> {
    let doc = match &args.tile {
        Some(path) => read_document(path)?,
        None => RIVERFLOW.to_owned(),
    };
    let partner_url = match &args.partner {
        Some(u) => u.clone(),
        None => partner_double_url()?,
    };
    let doc = crate::demo_partner::with_base_url(&doc, &partner_url)?;
    let partner = crate::demo_partner::Partner::new(&partner_url)?;
    let tty = std::io::stdout().is_terminal();
    let mut clock = ctx.clock()?;
    virtual_now(ctx).await?;
    if let Some(rate) = args.rate {
        rpc(
            "SetRate",
            clock.set_rate(ctx.request(SetRateRequest { rate })?).await,
        )?;
    }
    let step = |s: &str| out(&format!("==> {s}\n"));

    let tile = import(ctx, &doc).await?;
    let id = tile.id.clone();
    step(&format!(
        "imported tile {id} (revision {}, {})",
        tile.revision,
        crate::names::state_name(tile.state)
    ))?;

    let mut registry = ctx.registry()?;
    let mut tile = tile_of(
        "SetTestWorkspace",
        rpc(
            "SetTestWorkspace",
            registry
                .set_test_workspace(ctx.request(SetTestWorkspaceRequest {
                    id: id.clone(),
                    workspace_id: DEMO_WORKSPACE.into(),
                    etag: tile.etag,
                })?)
                .await,
        )?
        .tile,
    )?;
    step(&format!("test workspace {DEMO_WORKSPACE}"))?;
    tile = launch_readiness(ctx, &mut registry, &tile).await?;
    step("validation: every case PASS; go-to-market: mini-site, logo, blog, docs done")?;
    for role in ROLES {
        tile = tile_of(
            "RecordSignOff",
            rpc(
                "RecordSignOff",
                registry
                    .record_sign_off(ctx.request(signoff_request(&tile, role))?)
                    .await,
            )?
            .tile,
        )?;
    }
    step(&format!(
        "signed off: engineering, partner-sa, product, partner, legal ({})",
        crate::names::state_name(tile.state)
    ))?;

    step(&format!(
        "the partner issues a credential; handing it in and rotating it into every region, verified against the partner ({partner_url}) from each (tilewave creds submit/rotate {id})"
    ))?;
    let (first_id, first) = partner.issue().await?;
    let (fp, r) = crate::demo_partner::submit_and_rotate(ctx, &id, &first, mode(ctx.format, tty)).await?;
    drop(first);
    step(&format!(
        "partner credential {fp} is CURRENT, verified from {} regions",
        r.regions_verified
    ))?;

    let oncall = crate::demo_oncall::setup(ctx).await?;
    ensure_launch_day(ctx).await?;
    let mut rollouts = ctx.rollouts()?;
    let answer = rpc(
        "ScheduleGa",
        rollouts
            .schedule_ga(ctx.request(ScheduleGaRequest {
                tile_id: id.clone(),
                commit: true,
                ..Default::default()
            })?)
            .await,
    )?;
    let ga = match (answer.committed, from_proto_time(answer.ga_time.as_ref())) {
        (true, Some(ga)) => ga,
        _ => {
            return Err(CliError::Conflict(format!(
                "the GA scheduler found no slot for {id}: {}",
                answer.explanation
            ))
            .into());
        }
    };
    step(&format!(
        "GA scheduled on the launch calendar (tilewave ga schedule {id} --commit): {}",
        answer.explanation
    ))?;

    let spec = RolloutSpec {
        tile_id: id.clone(),
        ..RolloutSpec::default()
    };
    let plan = rpc(
        "PlanRollout",
        rollouts
            .plan_rollout(ctx.request(PlanRolloutRequest {
                spec: Some(spec.clone()),
            })?)
            .await,
    )?
    .plan
    .ok_or_else(|| anyhow::anyhow!("PlanRollout: no plan"))?;
    let cols = width(None, process_env("COLUMNS").as_deref());
    step(&format!("the plan (tilewave rollout plan {id})"))?;
    out(&plan_text(&plan, cols, false))?;
    if !plan.feasible {
        return Err(infeasible(&plan).into());
    }

    let start_at = ga.checked_sub(LAUNCH_LEAD).unwrap_or(ga);
    step(&format!(
        "waiting for the GA scheduler to start the roll-out at {} (GA - 7 days; tilewave ga list)",
        human_time(start_at)
    ))?;
    let started = wait_for_start(ctx, &id).await?;
    step(&format!(
        "the GA scheduler started roll-out {} (trace id {}); following it (tilewave rollout status {id} --watch)",
        started.id, started.trace_id
    ))?;
    let end = follow(ctx, &started.id, mode(ctx.format, tty), stopped).await?;
    if end.state == RolloutState::Succeeded as i32 {
        closing_rotation(ctx, &id, &partner, first_id, tty).await?;
        crate::demo_oncall::page_and_ack(ctx, &id, &partner, &oncall, mode(ctx.format, tty)).await?;
    }
    out(&explain_end(&end, ga, cols))
}

/// The partner's new credential rotated over every region while they keep
/// calling the partner (their probes), the old one removed by the partner
/// and retired; fails when the partner refused any call meanwhile.
async fn closing_rotation(
    ctx: &Ctx,
    id: &str,
    partner: &crate::demo_partner::Partner,
    old_id: u64,
    tty: bool,
) -> anyhow::Result<()> {
    let step = |s: &str| out(&format!("==> {s}\n"));
    step(&format!(
        "after the launch the partner issues a new credential: rotating it over every region while they keep calling the partner (tilewave creds rotate {id})"
    ))?;
    let before = partner.summary().await?;
    let (_, second) = partner.issue().await?;
    let (fp, promoted) =
        crate::demo_partner::submit_and_rotate(ctx, id, &second, mode(ctx.format, tty)).await?;
    drop(second);
    step(&format!(
        "{fp} promoted to CURRENT in {} regions; the partner removes the old credential and confirms (tilewave creds confirm-retired {id})",
        promoted.regions_verified
    ))?;
    partner.remove(old_id).await?;
    crate::demo_partner::confirm_retired(ctx, &promoted).await?;
    let done = wait_completed(ctx, &promoted.id).await?;
    let after = partner.summary().await?;
    let calls = after.requests.saturating_sub(before.requests);
    let refused = after.auth_failures.saturating_sub(before.auth_failures);
    step(&format!(
        "rotation {} {}: the partner answered {calls} calls from the regions meanwhile and refused {refused}",
        done.id,
        crate::creds::render::state_name(done.state)
    ))?;
    if refused > 0 {
        return Err(CliError::Conflict(format!(
            "the partner refused {refused} calls during the rotation: `tilewave creds status {id}` and the agents' logs say which"
        ))
        .into());
    }
    Ok(())
}

/// Whether the demo stops following: the roll-out ended or paused.
fn stopped(r: &Rollout) -> bool {
    is_terminal(r) || r.state == RolloutState::Paused as i32
}

/// What the demo prints when it stops following.
pub fn explain_end(r: &Rollout, ga: Timestamp, cols: usize) -> String {
    let id = &r.tile_id;
    let mut text = String::from("\n");
    if r.state == RolloutState::Succeeded as i32 {
        let finished = from_proto_time(r.finished_at.as_ref());
        text.push_str(&format!(
            "==> {} SUCCEEDED: {id} is live in {} regions\n",
            r.id,
            r.steps.len().max(usize::try_from(r.regions_total).unwrap_or(0))
        ));
        if let Some(f) = finished {
            text.push_str(&format!("==> {}\n", verdict(f, ga)));
        }
        text.push_str(&format!(
            "    GA is {}: the tile turns GA by itself then.\n",
            human_time(ga)
        ));
    } else {
        text.push_str(&format!(
            "==> {} stopped: {}\n",
            r.id,
            crate::rollout::render::state_name(r.state)
        ));
        for l in progress(r, None, cols) {
            text.push_str(&format!("    {l}\n"));
        }
        text.push_str(&format!(
            "    what to do: see why with `tilewave rollout status {id}`; after fixing it, `tilewave rollout resume {id} --retry-failed`, or `tilewave rollout skip-region {id} REGION`; service logs are listed by `tilewave dev status`\n"
        ));
    }
    text.push_str(&format!(
        "\nexplore:\n  tilewave tile list\n  tilewave rollout status {id}\n  tilewave tile where {id}\n  tilewave clock show\nstop the stack:\n  tilewave dev down\n"
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::{parse_time, to_proto_time};

    fn at(s: &str) -> Timestamp {
        parse_time(s).unwrap()
    }

    #[test]
    fn ids_roles_and_ga() {
        assert_eq!(base_id(RIVERFLOW), "riverflow");
        assert_eq!(candidate_id("riverflow", 1), "");
        assert_eq!(candidate_id("riverflow", 2), "riverflow-2");
        assert_eq!(base_id("not json"), "demo");
        assert_eq!(demo_rule().weekdays.len(), 7);
        let tile = Tile {
            id: "riverflow".into(),
            revision: 1,
            latest_revision: 1,
            etag: 9,
            ..Tile::default()
        };
        let r = signoff_request(&tile, SignOffRole::Legal);
        assert_eq!(
            (r.id.as_str(), r.revision, r.etag, r.role),
            ("riverflow", 1, 9, SignOffRole::Legal as i32)
        );
        assert_eq!(ROLES.len(), 5);
        assert!(positive_rate("0").is_err());
        assert_eq!(positive_rate("10000"), Ok(10000.0));
    }

    #[test]
    fn readiness_passes_every_case_and_sets_the_items_from_the_partner_site() {
        let tile = Tile {
            id: "riverflow".into(),
            partner_id: "riverflow".into(),
            config: Some(tilewave_proto::common::v1::PartnerConfig {
                sign_up_page: "https://riverflow.example/signup".into(),
                ..Default::default()
            }),
            updated_at: Some(to_proto_time(at("2026-12-01 17:00"))),
            ..Tile::default()
        };
        let (v, items) = readiness_requests(&tile);
        assert!(v.all_open && v.outcome == ValidationOutcome::Pass as i32 && !v.note.is_empty());
        let got: Vec<(&str, &str, &str)> = items
            .iter()
            .map(|i| (i.item.as_str(), i.due.as_str(), i.link.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("mini-site", "2026-12-01", "https://riverflow.example/partners"),
                ("logo", "2026-12-01", "https://riverflow.example/press/logo.svg"),
                ("blog", "2026-12-01", "https://riverflow.example/blog/launch"),
                ("docs", "2026-12-01", "https://riverflow.example/docs"),
            ]
        );
        assert!(
            items
                .iter()
                .all(|i| i.status == GtmStatus::Done as i32 && i.owner == "riverflow marketing")
        );
    }

    #[test]
    fn verdicts() {
        let ga = at("2026-12-08 18:00");
        assert_eq!(
            verdict(at("2026-12-07 16:00"), ga),
            "finished 1d 02h before GA; the rule needs >= 24h: OK"
        );
        assert_eq!(
            verdict(at("2026-12-08 10:00"), ga),
            "finished 8h before GA; the rule needs >= 24h: MISSED"
        );
        assert!(verdict(at("2026-12-09 10:00"), ga).starts_with("finished 16h after GA"));
    }

    #[test]
    fn the_end_says_what_next() {
        let mut r = crate::rollout::render::tests::sample_rollout();
        r.state = RolloutState::Succeeded as i32;
        r.finished_at = Some(to_proto_time(at("2026-12-02 09:00")));
        let text = explain_end(&r, at("2026-12-08 18:00"), 80);
        assert!(
            text.contains("SUCCEEDED: riverflow is live in 70 regions"),
            "{text}"
        );
        assert!(
            text.contains("finished 6d 09h before GA; the rule needs >= 24h: OK"),
            "{text}"
        );
        assert!(text.contains("tilewave rollout status riverflow"), "{text}");
        assert!(text.contains("tilewave dev down"), "{text}");
        r.state = RolloutState::Paused as i32;
        let text = explain_end(&r, at("2026-12-08 18:00"), 80);
        assert!(text.contains("stopped: PAUSED"), "{text}");
        assert!(text.contains("what to do"), "{text}");
    }
}
