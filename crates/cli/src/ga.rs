//! `tilewave ga schedule|move|list|hold|release|announce`: GA dates on the
//! launch calendar. `schedule` proposes the earliest slot a ready tile can
//! take (and why every earlier one was skipped); `--commit` takes it. The
//! rollout service's GA scheduler then starts the launch roll-out by itself
//! at GA - 7 days, unless the launch is held.

use clap::Subcommand;
use serde::Serialize;
use tilewave_proto::common::v1::TimeRange;
use tilewave_proto::registry::v1::GetTileRequest;
use tilewave_proto::rollout::v1::{
    HoldLaunchRequest, Launch, ListLaunchesRequest, ListLaunchesResponse, RolloutSpec, ScheduleGaRequest,
    ScheduleGaResponse,
};

use crate::client::{Ctx, out};
use crate::error::{CliError, rpc};
use crate::names::{
    cloud_name, format_time, from_proto_duration, human_duration, parse_time, short_time, state_name,
    to_proto_duration, to_proto_time,
};
use crate::output::{Table, structured};
use crate::rollout::duration_arg;

const SCHEDULE_EXAMPLES: &str = "\
TIME is RFC 3339 or \"YYYY-MM-DD HH:MM\" (UTC); DURATION like 4h or 90m.

Examples:
  tilewave ga schedule riverflow                  # propose: the slot, and every earlier slot skipped
  tilewave ga schedule riverflow --commit         # take it (the registry books the slot)
  tilewave ga schedule riverflow --not-before \"2027-01-05 00:00\" --commit
  tilewave ga schedule riverflow --commit --gtm-override \"blog ships on launch day\"
  tilewave ga schedule --all-ready --commit       # every ready tile, first ready first served";

const MOVE_EXAMPLES: &str = "\
Examples:
  tilewave ga move riverflow                      # propose another slot
  tilewave ga move riverflow --not-before \"2027-01-12 00:00\" --commit";

const LIST_EXAMPLES: &str = "\
Examples:
  tilewave ga list
  tilewave ga list --from \"2026-12-01 00:00\" --to \"2027-01-01 00:00\" -o json";

const HOLD_EXAMPLES: &str = "\
Examples:
  tilewave ga hold riverflow --reason \"partner asked for a week\"
  tilewave ga release riverflow";

const ANNOUNCE_EXAMPLES: &str = "\
Examples:
  tilewave ga announce 2026-12-15 > launch-post.md";

/// The GA commands.
#[derive(Debug, Subcommand)]
pub enum GaCommand {
    /// Propose (or with --commit take) the earliest launch slot for a ready tile.
    #[command(after_long_help = SCHEDULE_EXAMPLES)]
    Schedule(ScheduleArgs),
    /// Choose another slot for a scheduled tile (its place is freed on commit).
    #[command(after_long_help = MOVE_EXAMPLES)]
    Move(MoveArgs),
    /// Upcoming launch days, their tiles, each tile's slack and readiness.
    #[command(after_long_help = LIST_EXAMPLES)]
    List(ListArgs),
    /// Keep the GA scheduler from starting a tile's launch roll-out.
    #[command(after_long_help = HOLD_EXAMPLES)]
    Hold(HoldArgs),
    /// Release a held launch: the scheduler starts it when due.
    #[command(after_long_help = HOLD_EXAMPLES)]
    Release(ReleaseArgs),
    /// Print the group launch post's skeleton for a launch day (Markdown).
    #[command(after_long_help = ANNOUNCE_EXAMPLES)]
    Announce(AnnounceArgs),
}

impl GaCommand {
    /// The command's name, for the root span.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Schedule(_) => "ga schedule",
            Self::Move(_) => "ga move",
            Self::List(_) => "ga list",
            Self::Hold(_) => "ga hold",
            Self::Release(_) => "ga release",
            Self::Announce(_) => "ga announce",
        }
    }
}

/// How the roll-out is planned for the choice.
#[derive(Debug, Clone, clap::Args)]
pub struct PlanFlags {
    /// Bake time of every wave [default: 4h].
    #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
    pub bake: Option<jiff::SignedDuration>,
    /// At most this many regions apply at once.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
    pub concurrency: Option<i32>,
    /// Consider no slot before this.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub not_before: Option<jiff::Timestamp>,
    /// Take the slot: set the GA date (the registry books the slot).
    #[arg(long)]
    pub commit: bool,
    /// Commit although go-to-market items are pending, for this reason
    /// (recorded on the tile and in the audit log).
    #[arg(long, value_name = "REASON")]
    pub gtm_override: Option<String>,
}

/// Arguments of `ga schedule`.
#[derive(Debug, Clone, clap::Args)]
pub struct ScheduleArgs {
    /// The tile's id (or --all-ready).
    #[arg(required_unless_present = "all_ready", conflicts_with = "all_ready")]
    pub tile: Option<String>,
    /// Every ready tile, first ready first served.
    #[arg(long)]
    pub all_ready: bool,
    #[command(flatten)]
    pub plan: PlanFlags,
}

/// Arguments of `ga move`.
#[derive(Debug, Clone, clap::Args)]
pub struct MoveArgs {
    /// The tile's id.
    pub tile: String,
    #[command(flatten)]
    pub plan: PlanFlags,
}

/// Arguments of `ga list`.
#[derive(Debug, Clone, clap::Args)]
pub struct ListArgs {
    /// GA moments from this [default: now].
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub from: Option<jiff::Timestamp>,
    /// GA moments before this.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub to: Option<jiff::Timestamp>,
}

/// Arguments of `ga hold`.
#[derive(Debug, Clone, clap::Args)]
pub struct HoldArgs {
    /// The tile's id.
    pub tile: String,
    /// Why (required).
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
}

/// Arguments of `ga release`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReleaseArgs {
    /// The tile's id.
    pub tile: String,
}

/// Arguments of `ga announce`.
#[derive(Debug, Clone, clap::Args)]
pub struct AnnounceArgs {
    /// The launch day, YYYY-MM-DD (UTC).
    #[arg(value_name = "DATE", value_parser = parse_date)]
    pub date: jiff::civil::Date,
}

/// A date argument.
fn parse_date(s: &str) -> Result<jiff::civil::Date, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a date: use YYYY-MM-DD, e.g. 2026-12-15"))
}

/// The ScheduleGa request of `schedule` or `move`.
pub fn schedule_request(
    tile: Option<&str>,
    all_ready: bool,
    reschedule: bool,
    p: &PlanFlags,
) -> ScheduleGaRequest {
    let spec = (p.bake.is_some() || p.concurrency.is_some()).then(|| RolloutSpec {
        bake: p.bake.map(to_proto_duration),
        concurrency: p.concurrency.unwrap_or(0),
        ..Default::default()
    });
    ScheduleGaRequest {
        tile_id: tile.unwrap_or_default().to_owned(),
        commit: p.commit,
        not_before: p.not_before.map(to_proto_time),
        spec,
        tile_etag: 0,
        gtm_override: p.gtm_override.clone().unwrap_or_default(),
        reschedule,
        all_ready,
    }
}

/// One answer as text.
pub fn render_answer(a: &ScheduleGaResponse, commit: bool) -> String {
    let t = |ts: Option<&prost_types::Timestamp>| short_time(ts).unwrap_or_else(|| "-".into());
    let mut s = String::new();
    match &a.ga_time {
        Some(ga) => {
            let verb = if a.committed {
                "scheduled"
            } else if commit {
                "NOT scheduled"
            } else {
                "proposed"
            };
            s.push_str(&format!("{}: {verb} for GA {}\n", a.tile_id, t(Some(ga))));
        }
        None => s.push_str(&format!("{}: no slot\n", a.tile_id)),
    }
    s.push_str(&format!("  {}\n", a.explanation));
    if !a.skipped.is_empty() {
        let mut table = Table::new(&["SKIPPED SLOT", "WHY"]);
        for k in &a.skipped {
            table.row(vec![t(k.slot.as_ref()), k.reason.clone()]);
        }
        for line in table.render().lines() {
            s.push_str("  ");
            s.push_str(line);
            s.push('\n');
        }
    }
    if a.ga_time.is_some() && !a.committed && !commit {
        s.push_str(&format!(
            "  take it with `tilewave ga schedule {} --commit`\n",
            a.tile_id
        ));
    }
    if a.committed {
        s.push_str("  the GA scheduler starts the launch roll-out at GA - 7 days (`tilewave ga list`)\n");
    }
    s
}

/// A launch, for JSON/YAML and the table.
#[derive(Debug, Serialize)]
struct LaunchView {
    tile: String,
    name: String,
    partner: String,
    revision: i64,
    ga: Option<String>,
    state: String,
    rollout: String,
    rollout_state: String,
    start_at: Option<String>,
    eta: Option<String>,
    slack: Option<String>,
    held: bool,
    hold_reason: String,
    blocked: String,
    gtm_pending: Vec<String>,
    gtm_override: String,
    open_cases: Vec<String>,
    slot_booked: bool,
}

fn launch_view(l: &Launch) -> LaunchView {
    LaunchView {
        tile: l.tile_id.clone(),
        name: l.tile_name.clone(),
        partner: l.partner_id.clone(),
        revision: l.revision,
        ga: format_time(l.ga_time.as_ref()),
        state: state_name(l.tile_state),
        rollout: l.rollout_id.clone(),
        rollout_state: if l.rollout_id.is_empty() {
            String::new()
        } else {
            crate::names::kebab(
                tilewave_proto::rollout::v1::RolloutState::try_from(l.rollout_state)
                    .map(|s| s.as_str_name())
                    .unwrap_or("UNKNOWN"),
                "ROLLOUT_STATE_",
            )
        },
        start_at: format_time(l.start_at.as_ref()),
        eta: format_time(l.eta.as_ref()),
        slack: l.slack.as_ref().map(|d| human_duration(from_proto_duration(d))),
        held: l.held,
        hold_reason: l.hold_reason.clone(),
        blocked: l.blocked.clone(),
        gtm_pending: l.gtm_pending.clone(),
        gtm_override: l.gtm_override.clone(),
        open_cases: l.open_cases.clone(),
        slot_booked: l.slot_booked,
    }
}

/// What a launch still needs, in a few words.
pub fn readiness(l: &Launch) -> String {
    let mut parts = Vec::new();
    if l.held {
        parts.push(format!("HELD: {}", l.hold_reason));
    }
    if !l.blocked.is_empty() {
        parts.push(format!("BLOCKED: {}", l.blocked));
    }
    if !l.gtm_pending.is_empty() {
        parts.push(format!("gtm pending: {}", l.gtm_pending.join(",")));
    }
    if !l.gtm_override.is_empty() {
        parts.push(format!("gtm override: {}", l.gtm_override));
    }
    if !l.open_cases.is_empty() {
        parts.push(format!("{} case(s) open", l.open_cases.len()));
    }
    if parts.is_empty() {
        "ready".to_owned()
    } else {
        parts.join("; ")
    }
}

/// `ga list` as text: the launch days (slots) with their tiles.
pub fn render_list(resp: &ListLaunchesResponse) -> String {
    let t = |ts: Option<&prost_types::Timestamp>| short_time(ts).unwrap_or_else(|| "-".into());
    let mut out = String::new();
    let mut days = Table::new(&["LAUNCH SLOT", "BOOKED", "FROM"]);
    for s in &resp.slots {
        days.row(vec![
            t(s.at.as_ref()),
            format!("{}/{}", s.booked, s.capacity),
            s.source.clone(),
        ]);
    }
    out.push_str("LAUNCH DAYS\n");
    if days.rows.is_empty() {
        out.push_str("  none: add a launch rule with `tilewave calendar add-rule`\n");
    } else {
        out.push_str(&days.render());
    }
    let mut launches = Table::new(&[
        "GA",
        "TILE",
        "STATE",
        "ROLL-OUT",
        "STARTS",
        "ETA",
        "SLACK",
        "READINESS",
    ]);
    for l in &resp.launches {
        let v = launch_view(l);
        let slack = match l.slack.as_ref().map(from_proto_duration) {
            Some(d) if d < jiff::SignedDuration::ZERO => format!("AT RISK by {}", human_duration(-d)),
            Some(d) => human_duration(d),
            None => "-".into(),
        };
        launches.row(vec![
            t(l.ga_time.as_ref()),
            l.tile_id.clone(),
            v.state,
            if l.rollout_id.is_empty() {
                "-".into()
            } else {
                format!("{} {}", l.rollout_id, v.rollout_state)
            },
            t(l.start_at.as_ref()),
            t(l.eta.as_ref()),
            slack,
            readiness(l),
        ]);
    }
    out.push_str("LAUNCHES\n");
    if launches.rows.is_empty() {
        out.push_str("  none: schedule a ready tile with `tilewave ga schedule TILE --commit`\n");
    } else {
        out.push_str(&launches.render());
    }
    if !resp.next_page_token.is_empty() {
        out.push_str("(more: narrow with --from/--to)\n");
    }
    out
}

/// The ListLaunches request of `ga list` and the dashboard: GA moments in
/// `range` (from now on when absent), one page of up to 1000.
pub fn list_request(range: Option<TimeRange>) -> ListLaunchesRequest {
    ListLaunchesRequest {
        range,
        page: Some(tilewave_proto::common::v1::PageRequest {
            page_size: 1000,
            page_token: String::new(),
        }),
    }
}

/// Runs a GA command.
pub async fn run(cmd: GaCommand, ctx: &Ctx) -> anyhow::Result<()> {
    let mut client = ctx.rollouts()?;
    match cmd {
        GaCommand::Schedule(a) => {
            let req = schedule_request(a.tile.as_deref(), a.all_ready, false, &a.plan);
            schedule(ctx, req, a.plan.commit).await
        }
        GaCommand::Move(a) => {
            let req = schedule_request(Some(&a.tile), false, true, &a.plan);
            schedule(ctx, req, a.plan.commit).await
        }
        GaCommand::List(a) => {
            let range = (a.from.is_some() || a.to.is_some()).then(|| TimeRange {
                start: a.from.map(to_proto_time),
                end: a.to.map(to_proto_time),
            });
            let resp = rpc(
                "ListLaunches",
                client.list_launches(ctx.request(list_request(range))?).await,
            )?;
            let views: Vec<LaunchView> = resp.launches.iter().map(launch_view).collect();
            if let Some(text) = structured(ctx.format, &views)? {
                return out(&text);
            }
            out(&render_list(&resp))
        }
        GaCommand::Hold(a) => {
            if a.reason.trim().is_empty() {
                return Err(CliError::usage("--reason: say why the launch is held").into());
            }
            let resp = rpc(
                "HoldLaunch",
                client
                    .hold_launch(ctx.request(HoldLaunchRequest {
                        tile_id: a.tile.clone(),
                        hold: true,
                        reason: a.reason.clone(),
                        etag: 0,
                    })?)
                    .await,
            )?;
            out(&format!(
                "{}: launch held ({}); the GA scheduler will not start its roll-out until `tilewave ga release {}`",
                a.tile,
                resp.hold.map(|h| h.reason).unwrap_or_default(),
                a.tile
            ))
        }
        GaCommand::Release(a) => {
            rpc(
                "HoldLaunch",
                client
                    .hold_launch(ctx.request(HoldLaunchRequest {
                        tile_id: a.tile.clone(),
                        hold: false,
                        reason: String::new(),
                        etag: 0,
                    })?)
                    .await,
            )?;
            out(&format!(
                "{}: launch released; the GA scheduler starts it when due",
                a.tile
            ))
        }
        GaCommand::Announce(a) => announce(ctx, a.date).await,
    }
}

async fn schedule(ctx: &Ctx, req: ScheduleGaRequest, commit: bool) -> anyhow::Result<()> {
    let resp = rpc(
        "ScheduleGa",
        ctx.rollouts()?.schedule_ga(ctx.request(req.clone())?).await,
    )?;
    if let Some(text) = structured(ctx.format, &AnswerView::from(&resp))? {
        out(&text)?;
    } else if req.all_ready {
        let mut s = format!("{}\n", resp.explanation);
        for b in &resp.batch {
            s.push_str(&render_answer(b, commit));
        }
        out(&s)?;
    } else {
        out(&render_answer(&resp, commit))?;
    }
    let failed = if req.all_ready {
        commit && resp.batch.iter().any(|b| !b.committed)
    } else {
        resp.ga_time.is_none() || (commit && !resp.committed)
    };
    if failed {
        return Err(CliError::Conflict(if req.all_ready {
            "not every ready tile got a slot".into()
        } else {
            format!("{}: {}", req.tile_id, resp.explanation)
        })
        .into());
    }
    Ok(())
}

/// A ScheduleGa answer, for JSON/YAML.
#[derive(Debug, Serialize)]
struct AnswerView {
    tile: String,
    ga: Option<String>,
    committed: bool,
    slot_capacity: i32,
    slot_booked: i32,
    slot_source: String,
    slack: Option<String>,
    explanation: String,
    gtm_override: String,
    skipped: Vec<SkippedView>,
    searched_until: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    batch: Vec<AnswerView>,
}

#[derive(Debug, Serialize)]
struct SkippedView {
    slot: Option<String>,
    kind: String,
    reason: String,
}

impl From<&ScheduleGaResponse> for AnswerView {
    fn from(a: &ScheduleGaResponse) -> Self {
        Self {
            tile: a.tile_id.clone(),
            ga: format_time(a.ga_time.as_ref()),
            committed: a.committed,
            slot_capacity: a.slot_capacity,
            slot_booked: a.slot_booked,
            slot_source: a.slot_source.clone(),
            slack: a.slack.as_ref().map(|d| human_duration(from_proto_duration(d))),
            explanation: a.explanation.clone(),
            gtm_override: a.gtm_override.clone(),
            skipped: a
                .skipped
                .iter()
                .map(|k| SkippedView {
                    slot: format_time(k.slot.as_ref()),
                    kind: k.kind.clone(),
                    reason: k.reason.clone(),
                })
                .collect(),
            searched_until: format_time(a.searched_until.as_ref()),
            batch: a.batch.iter().map(AnswerView::from).collect(),
        }
    }
}

/// `ga announce DATE`: the group launch post's skeleton for the tiles going
/// GA that day (UTC), in Markdown.
async fn announce(ctx: &Ctx, date: jiff::civil::Date) -> anyhow::Result<()> {
    let start = date
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map_err(|e| CliError::usage(format!("DATE: {e}")))?
        .timestamp();
    let end = start
        .checked_add(jiff::SignedDuration::from_hours(24))
        .map_err(|e| CliError::usage(format!("DATE: {e}")))?;
    let resp = rpc(
        "ListLaunches",
        ctx.rollouts()?
            .list_launches(ctx.request(ListLaunchesRequest {
                range: Some(TimeRange {
                    start: Some(to_proto_time(start)),
                    end: Some(to_proto_time(end)),
                }),
                page: Some(tilewave_proto::common::v1::PageRequest {
                    page_size: 1000,
                    page_token: String::new(),
                }),
            })?)
            .await,
    )?;
    let mut registry = ctx.registry()?;
    let mut tiles = Vec::new();
    for l in &resp.launches {
        let tile = rpc(
            "GetTile",
            registry
                .get_tile(ctx.request(GetTileRequest {
                    id: l.tile_id.clone(),
                    revision: 0,
                })?)
                .await,
        )?
        .tile
        .ok_or_else(|| anyhow::anyhow!("GetTile: the response holds no tile"))?;
        tiles.push((l.clone(), tile));
    }
    out(&announcement(date, &tiles))
}

/// The Markdown of a launch day's post.
pub fn announcement(
    date: jiff::civil::Date,
    tiles: &[(Launch, tilewave_proto::registry::v1::Tile)],
) -> String {
    let mut s = format!("# Partner launches of {date}\n\n");
    if tiles.is_empty() {
        s.push_str("_No tile goes GA on this day (`tilewave ga list`)._\n");
        return s;
    }
    s.push_str(&format!(
        "{} new partner integration{} in the partner catalog today.\n\n",
        tiles.len(),
        if tiles.len() == 1 { " arrives" } else { "s arrive" }
    ));
    s.push_str("| Tile | Partner | Category | Clouds | GA (UTC) |\n|---|---|---|---|---|\n");
    for (l, t) in tiles {
        let c = t.config.clone().unwrap_or_default();
        let clouds: Vec<String> = c.supported_clouds.iter().map(|x| cloud_name(*x)).collect();
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            t.name,
            t.partner_id,
            crate::names::kebab(
                tilewave_proto::common::v1::PartnerCategory::try_from(c.category)
                    .map(|x| x.as_str_name())
                    .unwrap_or("UNKNOWN"),
                "PARTNER_CATEGORY_"
            ),
            clouds.join(", "),
            short_time(l.ga_time.as_ref()).unwrap_or_default()
        ));
    }
    for (_, t) in tiles {
        let c = t.config.clone().unwrap_or_default();
        s.push_str(&format!("\n## {}\n\n", t.name));
        if !c.description_blurb.is_empty() {
            s.push_str(&format!("{}\n\n", c.description_blurb));
        }
        let link = |item: &str| {
            t.gtm
                .iter()
                .find(|g| g.item == item && !g.link.is_empty())
                .map_or_else(|| format!("_TODO: {item} link_"), |g| g.link.clone())
        };
        s.push_str(&format!("- Launch blog: {}\n", link("blog")));
        s.push_str(&format!("- Documentation: {}\n", link("docs")));
        s.push_str(&format!("- Partner page: {}\n", link("mini-site")));
    }
    s
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> Result<GaCommand, clap::Error> {
        let argv = ["tilewave", "ga"].iter().chain(args.iter()).copied();
        match Cli::try_parse_from(argv)?.command {
            Command::Ga(c) => Ok(c),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn schedule_flags_make_the_request() {
        let GaCommand::Schedule(a) = parse(&[
            "schedule",
            "riverflow",
            "--commit",
            "--bake",
            "2h",
            "--not-before",
            "2027-01-05 00:00",
            "--gtm-override",
            "blog on the day",
        ])
        .unwrap() else {
            panic!()
        };
        let r = schedule_request(a.tile.as_deref(), a.all_ready, false, &a.plan);
        assert_eq!(r.tile_id, "riverflow");
        assert!(r.commit && !r.reschedule && !r.all_ready);
        assert_eq!(r.gtm_override, "blog on the day");
        assert_eq!(r.spec.and_then(|s| s.bake).map(|d| d.seconds), Some(7200));
        assert!(r.not_before.is_some());

        let GaCommand::Move(a) = parse(&["move", "riverflow"]).unwrap() else {
            panic!()
        };
        let r = schedule_request(Some(&a.tile), false, true, &a.plan);
        assert!(r.reschedule && !r.commit && r.spec.is_none());

        let GaCommand::Schedule(a) = parse(&["schedule", "--all-ready"]).unwrap() else {
            panic!()
        };
        assert!(a.all_ready && a.tile.is_none());
    }

    #[test]
    fn bad_argv_is_refused_naming_what() {
        assert!(parse(&["schedule"]).unwrap_err().to_string().contains("TILE"));
        assert!(parse(&["schedule", "x", "--all-ready"]).is_err());
        let e = parse(&["announce", "tuesday"]).unwrap_err().to_string();
        assert!(e.contains("YYYY-MM-DD"), "{e}");
        assert!(
            parse(&["hold", "x"])
                .unwrap_err()
                .to_string()
                .contains("--reason")
        );
    }

    #[test]
    fn an_answer_lists_the_skipped_slots_and_the_next_step() {
        let a = ScheduleGaResponse {
            tile_id: "riverflow".into(),
            ga_time: Some(to_proto_time("2026-12-15T17:00:00Z".parse().unwrap())),
            explanation: "GA 2026-12-15 17:00 UTC (Tuesday, place 1 of 5)".into(),
            skipped: vec![tilewave_proto::rollout::v1::SkippedSlot {
                slot: Some(to_proto_time("2026-12-08T17:00:00Z".parse().unwrap())),
                reason: "under 7 days away".into(),
                kind: "lead-time".into(),
            }],
            ..Default::default()
        };
        let text = render_answer(&a, false);
        assert!(
            text.starts_with("riverflow: proposed for GA 2026-12-15T17:00:00Z"),
            "{text}"
        );
        assert!(
            text.contains("2026-12-08T17:00:00Z") && text.contains("under 7 days away"),
            "{text}"
        );
        assert!(text.contains("tilewave ga schedule riverflow --commit"), "{text}");
    }

    #[test]
    fn the_announcement_names_every_tile_and_its_links() {
        let launch = Launch {
            tile_id: "riverflow".into(),
            ga_time: Some(to_proto_time("2026-12-15T17:00:00Z".parse().unwrap())),
            ..Default::default()
        };
        let tile = tilewave_proto::registry::v1::Tile {
            id: "riverflow".into(),
            name: "Riverflow".into(),
            partner_id: "riverflow-inc".into(),
            gtm: vec![tilewave_proto::registry::v1::GtmItemState {
                item: "blog".into(),
                link: "https://riverflow.example/blog/launch".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let md = announcement("2026-12-15".parse().unwrap(), &[(launch, tile)]);
        assert!(md.starts_with("# Partner launches of 2026-12-15"), "{md}");
        assert!(md.contains("| Riverflow | riverflow-inc |"), "{md}");
        assert!(md.contains("https://riverflow.example/blog/launch"), "{md}");
        assert!(md.contains("_TODO: docs link_"), "{md}");
        let none = announcement("2026-12-16".parse().unwrap(), &[]);
        assert!(none.contains("No tile goes GA"), "{none}");
    }
}
