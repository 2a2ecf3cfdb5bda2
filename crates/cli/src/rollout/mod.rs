//! `tilewave rollout ...`: plan, start, watch and steer roll-outs through
//! the rollout service. Each subcommand has its clap definition, a pure
//! function from the parsed arguments to the gRPC request (unit-tested
//! without a network), and its execution (docs/design.md, "Code layout"). Rendering of plans
//! and progress lives in `render`, JSON/YAML views in `view`.

use clap::Subcommand;
use tilewave_proto::rollout::v1::{GetRolloutRequest, Rollout, RolloutKind, RolloutSpec};

use crate::client::Ctx;
use crate::error::{CliError, rpc};
use crate::names::{parse_duration, parse_time, to_proto_duration, to_proto_time};

pub mod list;
pub mod plan;
pub mod render;
pub mod start;
pub mod status;
pub mod steer;
pub mod view;

/// The roll-out commands.
#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Show the plan a start would follow: summary, waves, Gantt chart.
    Plan(plan::Args),
    /// Start rolling a tile revision out, region by region.
    Start(start::Args),
    /// Show a roll-out's progress (live with --watch).
    Status(status::Args),
    /// List roll-outs, newest first.
    List(list::Args),
    /// Stop starting new applies (bakes continue).
    Pause(steer::PauseArgs),
    /// Continue a paused roll-out, optionally with a new bake or concurrency.
    Resume(steer::ResumeArgs),
    /// Stop a roll-out for good; regions keep what they have.
    Abort(steer::AbortArgs),
    /// Restore the previous revision in the regions already done.
    Rollback(steer::RollbackArgs),
    /// Apply a failed region again.
    RetryRegion(steer::RegionArgs),
    /// Leave a region out so that its wave can complete.
    SkipRegion(steer::SkipArgs),
    /// Release the manual hold after a wave.
    Approve(steer::ApproveArgs),
}

impl RolloutCommand {
    /// The command's name, for the root span.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Plan(_) => "rollout plan",
            Self::Start(_) => "rollout start",
            Self::Status(_) => "rollout status",
            Self::List(_) => "rollout list",
            Self::Pause(_) => "rollout pause",
            Self::Resume(_) => "rollout resume",
            Self::Abort(_) => "rollout abort",
            Self::Rollback(_) => "rollout rollback",
            Self::RetryRegion(_) => "rollout retry-region",
            Self::SkipRegion(_) => "rollout skip-region",
            Self::Approve(_) => "rollout approve",
        }
    }
}

/// Runs a roll-out command.
pub async fn run(cmd: RolloutCommand, ctx: &Ctx) -> anyhow::Result<()> {
    match cmd {
        RolloutCommand::Plan(a) => plan::run(a, ctx).await,
        RolloutCommand::Start(a) => start::run(a, ctx).await,
        RolloutCommand::Status(a) => status::run(a, ctx).await,
        RolloutCommand::List(a) => list::run(a, ctx).await,
        RolloutCommand::Pause(a) => steer::pause(a, ctx).await,
        RolloutCommand::Resume(a) => steer::resume(a, ctx).await,
        RolloutCommand::Abort(a) => steer::abort(a, ctx).await,
        RolloutCommand::Rollback(a) => steer::rollback(a, ctx).await,
        RolloutCommand::RetryRegion(a) => steer::retry_region(a, ctx).await,
        RolloutCommand::SkipRegion(a) => steer::skip_region(a, ctx).await,
        RolloutCommand::Approve(a) => steer::approve(a, ctx).await,
    }
}

/// A duration flag ("4h", "90m", "2h30m").
pub fn duration_arg(s: &str) -> Result<jiff::SignedDuration, String> {
    parse_duration(s)
}

/// What to roll out and how: the flags `plan` and `start` share.
#[derive(Debug, Clone, clap::Args)]
pub struct SpecArgs {
    /// The tile's id.
    pub tile: String,
    /// The tile revision; the latest by default.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
    pub revision: Option<i64>,
    /// Only these regions ("<cloud>:<region>", comma separated).
    #[arg(long, value_name = "REGION,...", value_delimiter = ',')]
    pub regions: Vec<String>,
    /// Leave these regions out (comma separated).
    #[arg(long, value_name = "REGION,...", value_delimiter = ',')]
    pub exclude: Vec<String>,
    /// Bake time of every wave, e.g. 4h, 90m, 2h30m [default: 4h].
    #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
    pub bake: Option<jiff::SignedDuration>,
    /// At most this many regions apply at once.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
    pub concurrency: Option<i32>,
    /// Wait for `rollout approve` after these waves (1-based, comma separated).
    #[arg(long, value_name = "WAVE,...", value_delimiter = ',', value_parser = clap::value_parser!(i32).range(1..))]
    pub hold_after: Vec<i32>,
    /// Time one region takes to apply [default: 5m].
    #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
    pub apply_time: Option<jiff::SignedDuration>,
    /// A maintenance roll-out of a GA tile: only the affected regions.
    #[arg(long)]
    pub maintenance: bool,
    /// Every region verified by then (RFC 3339 or "YYYY-MM-DD HH:MM" UTC); a launch defaults to GA - 24h.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub deadline: Option<jiff::Timestamp>,
}

/// The spec the flags describe; everything not given is left to the
/// service's defaults.
pub fn spec(a: &SpecArgs) -> Result<RolloutSpec, CliError> {
    let both: Vec<&String> = a.regions.iter().filter(|r| a.exclude.contains(r)).collect();
    if let Some(r) = both.first() {
        return Err(CliError::usage(format!("--regions and --exclude both name {r}")));
    }
    if let Some(r) = a.regions.iter().chain(&a.exclude).find(|r| r.trim().is_empty()) {
        return Err(CliError::usage(format!(
            "--regions/--exclude: {r:?} is not a region (use <cloud>:<region>)"
        )));
    }
    Ok(RolloutSpec {
        tile_id: a.tile.clone(),
        revision: a.revision.unwrap_or(0),
        kind: if a.maintenance {
            RolloutKind::Maintenance as i32
        } else {
            RolloutKind::Unspecified as i32
        },
        regions: a.regions.clone(),
        exclude_regions: a.exclude.clone(),
        apply_time: a.apply_time.map(to_proto_duration),
        bake: a.bake.map(to_proto_duration),
        concurrency: a.concurrency.unwrap_or(0),
        hold_after_waves: a.hold_after.clone(),
        deadline: a.deadline.map(to_proto_time),
        ..RolloutSpec::default()
    })
}

/// Whether `s` looks like a roll-out id (`<tile>-r<revision>`, maybe with
/// `-withdraw` and a `-<n>` suffix) rather than a tile id.
pub fn looks_like_id(s: &str) -> bool {
    s.split('-')
        .skip(1)
        .any(|p| p.len() > 1 && p.starts_with('r') && p[1..].chars().all(|c| c.is_ascii_digit()))
}

/// The GetRollout request for `TILE|ID`: by id when it looks like one,
/// else the tile's running (or latest) roll-out.
pub fn get_request(target: &str) -> GetRolloutRequest {
    if looks_like_id(target) {
        GetRolloutRequest {
            id: target.to_owned(),
            tile_id: String::new(),
        }
    } else {
        GetRolloutRequest {
            id: String::new(),
            tile_id: target.to_owned(),
        }
    }
}

/// Reads the roll-out `TILE|ID` names; an id that is not found is tried as
/// a tile id too (a tile may be called `x-r2`).
pub async fn resolve(ctx: &Ctx, target: &str) -> anyhow::Result<Rollout> {
    let mut client = ctx.rollouts()?;
    let req = get_request(target);
    let by_id = !req.id.is_empty();
    let first = client.get_rollout(ctx.request(req)?).await;
    let resp = match first {
        Err(status) if by_id && status.code() == tonic::Code::NotFound => rpc(
            "GetRollout",
            client
                .get_rollout(ctx.request(GetRolloutRequest {
                    id: String::new(),
                    tile_id: target.to_owned(),
                })?)
                .await,
        )?,
        other => rpc("GetRollout", other)?,
    };
    resp.rollout
        .ok_or_else(|| anyhow::anyhow!("GetRollout {target}: the response holds no roll-out"))
}

#[cfg(test)]
pub(crate) mod testing {
    //! Parsing argv the way the binary does, for the table-driven tests.

    use clap::Parser as _;

    use super::RolloutCommand;
    use crate::cli::{Cli, Command};

    /// Parses `tilewave rollout <args>`.
    pub fn parse(args: &[&str]) -> Result<RolloutCommand, clap::Error> {
        let argv = ["tilewave", "rollout"].iter().chain(args.iter()).copied();
        match Cli::try_parse_from(argv)?.command {
            Command::Rollout(r) => Ok(r),
            other => panic!("not a rollout command: {other:?}"),
        }
    }

    /// The exit code of a failed parse, and its message.
    pub fn parse_error(args: &[&str]) -> (i32, String) {
        match parse(args) {
            Ok(cmd) => panic!("{args:?} parsed as {cmd:?}"),
            Err(e) => (e.exit_code(), e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{parse, parse_error};
    use super::*;

    fn spec_of(argv: &[&str]) -> Result<RolloutSpec, CliError> {
        match parse(argv).unwrap() {
            RolloutCommand::Plan(a) => spec(&a.spec),
            RolloutCommand::Start(a) => spec(&a.spec),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn specs_from_argv() {
        let s = spec_of(&["plan", "riverflow"]).unwrap();
        assert_eq!(
            s,
            RolloutSpec {
                tile_id: "riverflow".into(),
                ..RolloutSpec::default()
            }
        );
        let s = spec_of(&[
            "start",
            "riverflow",
            "--regions",
            "aws:us-east-1,gcp:us-central1",
            "--bake",
            "2h30m",
            "--concurrency",
            "8",
            "--hold-after",
            "1,3",
            "--apply-time",
            "90s",
            "--revision",
            "2",
        ])
        .unwrap();
        assert_eq!(s.regions, vec!["aws:us-east-1", "gcp:us-central1"]);
        assert_eq!(s.bake.map(|d| d.seconds), Some(9000));
        assert_eq!(s.apply_time.map(|d| d.seconds), Some(90));
        assert_eq!((s.concurrency, s.revision), (8, 2));
        assert_eq!(s.hold_after_waves, vec![1, 3]);
        assert_eq!(s.kind, RolloutKind::Unspecified as i32);
        let s = spec_of(&[
            "start",
            "lumen",
            "--maintenance",
            "--exclude",
            "gcp:me-central2",
            "--deadline",
            "2026-12-08 17:00",
        ])
        .unwrap();
        assert_eq!(s.kind, RolloutKind::Maintenance as i32);
        assert_eq!(s.exclude_regions, vec!["gcp:me-central2"]);
        assert_eq!(s.deadline.map(|t| t.seconds), Some(1_796_749_200));
        let err = spec_of(&["plan", "x", "--regions", "a:b", "--exclude", "a:b"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn bad_flags_exit_2_naming_the_flag() {
        let cases: &[(&[&str], &str)] = &[
            (&["plan", "rf", "--bake", "4 hours"], "--bake"),
            (&["plan", "rf", "--bake=-4h"], "--bake"),
            (&["start", "rf", "--concurrency", "0"], "--concurrency"),
            (&["start", "rf", "--hold-after", "0"], "--hold-after"),
            (&["start", "rf", "--deadline", "tuesday"], "--deadline"),
            (&["plan", "rf", "--apply-time", "5"], "--apply-time"),
            (&["plan"], "TILE"),
        ];
        for (argv, flag) in cases {
            let (code, msg) = parse_error(argv);
            assert_eq!(code, 2, "{argv:?}");
            assert!(msg.contains(flag), "{argv:?}: {msg}");
        }
    }

    #[test]
    fn ids_and_tiles() {
        for id in [
            "riverflow-r1",
            "riverflow-r12-2",
            "lumen-dashboards-r3-withdraw",
            "a-r1-withdraw-2",
        ] {
            assert!(looks_like_id(id), "{id}");
            assert_eq!(get_request(id).id, id);
        }
        for tile in ["riverflow", "lumen-dashboards", "riverflow-2", "r1"] {
            assert!(!looks_like_id(tile), "{tile}");
            assert_eq!(get_request(tile).tile_id, tile);
        }
    }
}
