//! `tilewave rollout start TILE`: starts a roll-out (StartRollout) with the
//! same flags as `plan`, and prints where it stands.

use tilewave_proto::rollout::v1::{Rollout, StartRolloutRequest};

use super::render::progress;
use super::view::RolloutView;
use super::{SpecArgs, spec};
use crate::client::{Ctx, out};
use crate::error::{CliError, rpc};
use crate::output::structured;

/// Examples shown by `--help`.
const EXAMPLES: &str = "\
DURATION is like 4h, 90m or 2h30m; TIME is RFC 3339 or \"YYYY-MM-DD HH:MM\" (UTC).

Examples:
  tilewave rollout start riverflow
  tilewave rollout start riverflow --bake 2h --concurrency 10 --hold-after 1
  tilewave rollout start lumen-dashboards --maintenance --deadline \"2026-12-20 12:00\"
  tilewave rollout start riverflow --accept-late     # start although the plan misses the deadline";

/// Arguments of `rollout start`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// What to roll out and how.
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Start even though the plan misses the deadline.
    #[arg(long)]
    pub accept_late: bool,
    /// A key that makes a retried start return the first one's roll-out.
    #[arg(long, value_name = "KEY")]
    pub request_id: Option<String>,
}

/// The request.
pub fn request(args: &Args) -> Result<StartRolloutRequest, CliError> {
    Ok(StartRolloutRequest {
        spec: Some(spec(&args.spec)?),
        accept_late: args.accept_late,
        request_id: args.request_id.clone().unwrap_or_default(),
    })
}

/// Prints a roll-out: its progress block, or its view.
pub fn print_rollout(ctx: &Ctx, r: &Rollout) -> anyhow::Result<()> {
    if let Some(text) = structured(ctx.format, &RolloutView::from(r))? {
        return out(&text);
    }
    let mut text = progress(r, None, 80).join("\n");
    text.push('\n');
    out(&text)
}

/// Runs `rollout start`.
pub async fn run(args: Args, ctx: &Ctx) -> anyhow::Result<()> {
    let req = request(&args)?;
    let resp = rpc(
        "StartRollout",
        ctx.rollouts()?.start_rollout(ctx.request(req)?).await,
    )?;
    let r = resp
        .rollout
        .ok_or_else(|| anyhow::anyhow!("StartRollout: the response holds no roll-out"))?;
    print_rollout(ctx, &r)?;
    if ctx.format == crate::output::Format::Table {
        out(&format!(
            "\nfollow it:  tilewave rollout status {} --watch\n",
            r.tile_id
        ))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::RolloutCommand;
    use crate::rollout::testing::parse;

    #[test]
    fn requests_from_argv() {
        let cases: &[(&[&str], bool, &str)] = &[
            (&["start", "riverflow"], false, ""),
            (&["start", "riverflow", "--accept-late"], true, ""),
            (&["start", "riverflow", "--request-id", "k1"], false, "k1"),
        ];
        for (argv, late, key) in cases {
            let RolloutCommand::Start(a) = parse(argv).unwrap() else {
                panic!()
            };
            let r = request(&a).unwrap();
            assert_eq!((r.accept_late, r.request_id.as_str()), (*late, *key), "{argv:?}");
            assert_eq!(r.spec.unwrap().tile_id, "riverflow");
        }
    }
}
