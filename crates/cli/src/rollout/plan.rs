//! `tilewave rollout plan TILE`: the plan a start with the same flags would
//! follow (PlanRollout, a dry run): the summary line, the per-wave timeline
//! and a text Gantt chart. An infeasible plan prints why and what would fit,
//! and exits 3.

use tilewave_proto::rollout::v1::{Plan, PlanRolloutRequest};

use super::render::{plan_text, width};
use super::view::PlanView;
use super::{SpecArgs, spec};
use crate::client::{Ctx, out};
use crate::error::{CliError, rpc};
use crate::output::structured;
use crate::settings::process_env;

/// Examples shown by `--help`.
const EXAMPLES: &str = "\
DURATION is like 4h, 90m or 2h30m; TIME is RFC 3339 or \"YYYY-MM-DD HH:MM\" (UTC).

Examples:
  tilewave rollout plan riverflow
  tilewave rollout plan riverflow --bake 2h --concurrency 10
  tilewave rollout plan riverflow --exclude gcp:me-central2 --hold-after 1
  tilewave rollout plan riverflow --per-region --width 120
  tilewave rollout plan riverflow --ga \"2026-12-15 17:00\"   # a preview before any GA date is set";

/// Arguments of `rollout plan`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// What to plan.
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Plan as if GA were this (a preview before the GA date is set; RFC
    /// 3339 or "YYYY-MM-DD HH:MM" UTC).
    #[arg(long, value_name = "TIME", value_parser = crate::names::parse_time)]
    pub ga: Option<jiff::Timestamp>,
    /// Draw the Gantt chart with a row per region instead of per wave.
    #[arg(long)]
    pub per_region: bool,
    /// Columns to draw for [default: 120 when $COLUMNS >= 120, else 80].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(40..))]
    pub width: Option<u16>,
}

/// The request.
pub fn request(args: &Args) -> Result<PlanRolloutRequest, CliError> {
    let mut spec = spec(&args.spec)?;
    spec.ga_preview = args.ga.map(crate::names::to_proto_time);
    Ok(PlanRolloutRequest { spec: Some(spec) })
}

/// The error of an infeasible plan (exit 3), naming its first problem.
pub fn infeasible(p: &Plan) -> CliError {
    let first = p
        .problems
        .first()
        .map_or("the plan is not feasible", |x| x.message.as_str());
    CliError::Conflict(format!("the plan is not feasible: {first}"))
}

/// Prints a plan in the chosen format.
pub fn print(ctx: &Ctx, p: &Plan, w: Option<u16>, per_region: bool) -> anyhow::Result<()> {
    if let Some(text) = structured(ctx.format, &PlanView::from(p))? {
        return out(&text);
    }
    let cols = width(w.map(usize::from), process_env("COLUMNS").as_deref());
    out(&plan_text(p, cols, per_region))
}

/// Runs `rollout plan`.
pub async fn run(args: Args, ctx: &Ctx) -> anyhow::Result<()> {
    let req = request(&args)?;
    let resp = rpc(
        "PlanRollout",
        ctx.rollouts()?.plan_rollout(ctx.request(req)?).await,
    )?;
    let p = resp
        .plan
        .ok_or_else(|| anyhow::anyhow!("PlanRollout: the response holds no plan"))?;
    print(ctx, &p, args.width, args.per_region)?;
    if p.feasible {
        Ok(())
    } else {
        Err(infeasible(&p).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::RolloutCommand;
    use crate::rollout::testing::{parse, parse_error};

    #[test]
    fn requests_from_argv() {
        let RolloutCommand::Plan(a) =
            parse(&["plan", "riverflow", "--bake", "90m", "--width", "120"]).unwrap()
        else {
            panic!()
        };
        let r = request(&a).unwrap();
        let s = r.spec.unwrap();
        assert_eq!(
            (s.tile_id.as_str(), s.bake.map(|b| b.seconds)),
            ("riverflow", Some(5400))
        );
        assert_eq!(a.width, Some(120));
        assert_eq!(parse_error(&["plan", "rf", "--width", "10"]).0, 2);
    }
}
