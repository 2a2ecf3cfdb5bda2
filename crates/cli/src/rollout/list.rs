//! `tilewave rollout list [--tile TILE] [--state S]`: roll-outs, newest
//! first, one line each.

use clap::ValueEnum;
use tilewave_proto::rollout::v1::{ListRolloutsRequest, RolloutState};

use super::render::{live_count, phase, state_name};
use super::view::RolloutView;
use crate::client::{Ctx, out};
use crate::error::{CliError, rpc};
use crate::names::short_time;
use crate::output::{Table, structured};

/// Examples shown by `--help`.
const EXAMPLES: &str = "\
Examples:
  tilewave rollout list
  tilewave rollout list --tile riverflow
  tilewave rollout list --state running --state paused -o json";

/// A roll-out state as typed on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StateArg {
    /// Waiting for its earliest start.
    Pending,
    /// Applying and baking.
    Running,
    /// Paused (by request, a failure or a hold).
    Paused,
    /// Done everywhere.
    Succeeded,
    /// Failed for good.
    Failed,
    /// Aborted.
    Aborted,
    /// Rolling back.
    RollingBack,
    /// Rolled back.
    RolledBack,
}

impl StateArg {
    /// The API's value.
    pub fn proto(self) -> RolloutState {
        match self {
            Self::Pending => RolloutState::Pending,
            Self::Running => RolloutState::Running,
            Self::Paused => RolloutState::Paused,
            Self::Succeeded => RolloutState::Succeeded,
            Self::Failed => RolloutState::Failed,
            Self::Aborted => RolloutState::Aborted,
            Self::RollingBack => RolloutState::RollingBack,
            Self::RolledBack => RolloutState::RolledBack,
        }
    }
}

/// Arguments of `rollout list`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Only this tile's roll-outs.
    #[arg(long)]
    pub tile: Option<String>,
    /// Only roll-outs in these states (repeatable).
    #[arg(long, value_enum)]
    pub state: Vec<StateArg>,
}

/// The request.
pub fn request(args: &Args) -> Result<ListRolloutsRequest, CliError> {
    Ok(ListRolloutsRequest {
        tile_id: args.tile.clone().unwrap_or_default(),
        states: args.state.iter().map(|s| s.proto() as i32).collect(),
        ..ListRolloutsRequest::default()
    })
}

/// Runs `rollout list`.
pub async fn run(args: Args, ctx: &Ctx) -> anyhow::Result<()> {
    let req = request(&args)?;
    let resp = rpc(
        "ListRollouts",
        ctx.rollouts()?.list_rollouts(ctx.request(req)?).await,
    )?;
    let views: Vec<RolloutView> = resp.rollouts.iter().map(RolloutView::from).collect();
    if let Some(text) = structured(ctx.format, &views)? {
        return out(&text);
    }
    let mut t = Table::new(&["ID", "TILE", "REV", "STATE", "PROGRESS", "ETA", "CREATED BY"]);
    for r in &resp.rollouts {
        let live = if r.steps.is_empty() {
            r.regions_verified.to_string()
        } else {
            live_count(r).to_string()
        };
        t.row(vec![
            r.id.clone(),
            r.tile_id.clone(),
            r.revision.to_string(),
            state_name(r.state),
            format!("{live}/{} {}", r.regions_total, phase(r)),
            short_time(r.eta.as_ref()).unwrap_or_else(|| "-".into()),
            r.created_by.clone(),
        ]);
    }
    out(&t.render())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::RolloutCommand;
    use crate::rollout::testing::{parse, parse_error};

    #[test]
    fn requests_from_argv() {
        let cases: &[(&[&str], &str, &[RolloutState])] = &[
            (&["list"], "", &[]),
            (&["list", "--tile", "rf"], "rf", &[]),
            (
                &["list", "--state", "running", "--state", "rolling-back"],
                "",
                &[RolloutState::Running, RolloutState::RollingBack],
            ),
        ];
        for (argv, tile, states) in cases {
            let RolloutCommand::List(a) = parse(argv).unwrap() else {
                panic!()
            };
            let r = request(&a).unwrap();
            assert_eq!(r.tile_id, *tile, "{argv:?}");
            let want: Vec<i32> = states.iter().map(|s| *s as i32).collect();
            assert_eq!(r.states, want, "{argv:?}");
        }
        assert_eq!(parse_error(&["list", "--state", "happy"]).0, 2);
    }
}
