//! Steering a roll-out: `pause`, `resume`, `abort`, `rollback`,
//! `retry-region`, `skip-region`, `approve`. Each takes a tile id (its
//! running or latest roll-out) or a roll-out id; the roll-out is read
//! first and its etag named, so a change in between is refused (exit 3)
//! instead of acting on a state nobody saw.

use tilewave_proto::rollout::v1::{
    AbortRolloutRequest, ApproveRequest, PauseRolloutRequest, ResumeRolloutRequest, RetryRegionRequest,
    RollbackRolloutRequest, Rollout, SkipRegionRequest,
};

use super::start::print_rollout;
use super::{duration_arg, resolve};
use crate::client::{Ctx, out};
use crate::error::{CliError, rpc};
use crate::names::to_proto_duration;

/// The roll-out as read: what the requests name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    /// The roll-out id.
    pub id: String,
    /// Its etag as read.
    pub etag: i64,
}

impl From<&Rollout> for Current {
    fn from(r: &Rollout) -> Self {
        Self {
            id: r.id.clone(),
            etag: r.etag,
        }
    }
}

/// Examples of `pause`.
const PAUSE_EXAMPLES: &str = "\
Examples:
  tilewave rollout pause riverflow --reason \"partner asked to wait\"
  tilewave rollout pause riverflow-r1";

/// Arguments of `pause`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = PAUSE_EXAMPLES)]
pub struct PauseArgs {
    /// A tile id (its running roll-out) or a roll-out id.
    #[arg(value_name = "TILE|ID")]
    pub target: String,
    /// Why; kept in the audit record.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

/// The pause request.
pub fn pause_request(a: &PauseArgs, c: &Current) -> PauseRolloutRequest {
    PauseRolloutRequest {
        id: c.id.clone(),
        etag: c.etag,
        reason: a.reason.clone().unwrap_or_default(),
    }
}

/// Examples of `resume`.
const RESUME_EXAMPLES: &str = "\
Examples:
  tilewave rollout resume riverflow
  tilewave rollout resume riverflow --bake 2h --concurrency 12
  tilewave rollout resume riverflow --retry-failed
  tilewave rollout resume riverflow --bake 2h --dry-run   # the plan with the change, still paused";

/// Arguments of `resume`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = RESUME_EXAMPLES)]
pub struct ResumeArgs {
    /// A tile id (its paused roll-out) or a roll-out id.
    #[arg(value_name = "TILE|ID")]
    pub target: String,
    /// A new bake for every remaining wave, e.g. 2h.
    #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
    pub bake: Option<jiff::SignedDuration>,
    /// A new concurrency for the remaining waves.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
    pub concurrency: Option<i32>,
    /// Retry the failed regions of the current wave too.
    #[arg(long)]
    pub retry_failed: bool,
    /// Only show the plan with the changes; stay paused.
    #[arg(long)]
    pub dry_run: bool,
}

/// The resume request.
pub fn resume_request(a: &ResumeArgs, c: &Current) -> ResumeRolloutRequest {
    ResumeRolloutRequest {
        id: c.id.clone(),
        etag: c.etag,
        bake: a.bake.map(to_proto_duration),
        concurrency: a.concurrency.unwrap_or(0),
        retry_failed: a.retry_failed,
        dry_run: a.dry_run,
    }
}

/// Examples of `abort`.
const ABORT_EXAMPLES: &str = "\
Examples:
  tilewave rollout abort riverflow --reason \"superseded by revision 3\"";

/// Arguments of `abort`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = ABORT_EXAMPLES)]
pub struct AbortArgs {
    /// A tile id (its running roll-out) or a roll-out id.
    #[arg(value_name = "TILE|ID")]
    pub target: String,
    /// Why; kept in the audit record.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

/// The abort request.
pub fn abort_request(a: &AbortArgs, c: &Current) -> AbortRolloutRequest {
    AbortRolloutRequest {
        id: c.id.clone(),
        etag: c.etag,
        reason: a.reason.clone().unwrap_or_default(),
    }
}

/// Examples of `rollback`.
const ROLLBACK_EXAMPLES: &str = "\
Examples:
  tilewave rollout rollback lumen-dashboards --reason \"dashboards fail to load\"
  tilewave rollout rollback lumen-dashboards-r4 --regions gcp:asia-northeast1";

/// Arguments of `rollback`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = ROLLBACK_EXAMPLES)]
pub struct RollbackArgs {
    /// A tile id (its latest roll-out) or a roll-out id.
    #[arg(value_name = "TILE|ID")]
    pub target: String,
    /// Only these regions (comma separated); every applied region by default.
    #[arg(long, value_name = "REGION,...", value_delimiter = ',')]
    pub regions: Vec<String>,
    /// Why; kept in the audit record.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

/// The rollback request.
pub fn rollback_request(a: &RollbackArgs, c: &Current) -> RollbackRolloutRequest {
    RollbackRolloutRequest {
        id: c.id.clone(),
        etag: c.etag,
        reason: a.reason.clone().unwrap_or_default(),
        regions: a.regions.clone(),
    }
}

/// Examples of `retry-region`.
const RETRY_EXAMPLES: &str = "\
Examples:
  tilewave rollout retry-region riverflow gcp:me-central2";

/// Arguments of `retry-region`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = RETRY_EXAMPLES)]
pub struct RegionArgs {
    /// A tile id (its running roll-out) or a roll-out id.
    #[arg(value_name = "TILE|ID")]
    pub target: String,
    /// The failed region, "<cloud>:<region>".
    pub region: String,
}

/// The retry request.
pub fn retry_request(a: &RegionArgs, c: &Current) -> Result<RetryRegionRequest, CliError> {
    Ok(RetryRegionRequest {
        id: c.id.clone(),
        region: region(&a.region)?,
        etag: c.etag,
    })
}

/// Examples of `skip-region`.
const SKIP_EXAMPLES: &str = "\
Examples:
  tilewave rollout skip-region riverflow gcp:me-central2 --reason \"region under maintenance\"";

/// Arguments of `skip-region`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = SKIP_EXAMPLES)]
pub struct SkipArgs {
    /// A tile id (its running roll-out) or a roll-out id.
    #[arg(value_name = "TILE|ID")]
    pub target: String,
    /// The region to leave out, "<cloud>:<region>".
    pub region: String,
    /// Why; shown on the step and in the audit record.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

/// The skip request.
pub fn skip_request(a: &SkipArgs, c: &Current) -> Result<SkipRegionRequest, CliError> {
    Ok(SkipRegionRequest {
        id: c.id.clone(),
        region: region(&a.region)?,
        etag: c.etag,
        reason: a.reason.clone().unwrap_or_default(),
    })
}

/// Examples of `approve`.
const APPROVE_EXAMPLES: &str = "\
Examples:
  tilewave rollout approve riverflow --wave 1 --note \"canaries look good\"";

/// Arguments of `approve`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = APPROVE_EXAMPLES)]
pub struct ApproveArgs {
    /// A tile id (its held roll-out) or a roll-out id.
    #[arg(value_name = "TILE|ID")]
    pub target: String,
    /// The wave whose hold is released (a stale approval cannot release a later hold).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
    pub wave: i32,
    /// A note for the audit record.
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
}

/// The approve request.
pub fn approve_request(a: &ApproveArgs, c: &Current) -> ApproveRequest {
    ApproveRequest {
        id: c.id.clone(),
        wave: a.wave,
        etag: c.etag,
        note: a.note.clone().unwrap_or_default(),
    }
}

/// A region argument: `<cloud>:<region>`.
fn region(s: &str) -> Result<String, CliError> {
    match s.split_once(':') {
        Some((c, r)) if !c.is_empty() && !r.is_empty() => Ok(s.to_owned()),
        _ => Err(CliError::usage(format!(
            "REGION {s:?} is not \"<cloud>:<region>\" (e.g. gcp:me-central2)"
        ))),
    }
}

/// Reads the roll-out a command names.
async fn current(ctx: &Ctx, target: &str) -> anyhow::Result<Current> {
    Ok(Current::from(&resolve(ctx, target).await?))
}

/// The roll-out of a response, printed.
fn done(ctx: &Ctx, rpc_name: &str, r: Option<Rollout>) -> anyhow::Result<()> {
    let r = r.ok_or_else(|| anyhow::anyhow!("{rpc_name}: the response holds no roll-out"))?;
    print_rollout(ctx, &r)
}

/// Runs `rollout pause`.
pub async fn pause(a: PauseArgs, ctx: &Ctx) -> anyhow::Result<()> {
    let c = current(ctx, &a.target).await?;
    let resp = rpc(
        "PauseRollout",
        ctx.rollouts()?
            .pause_rollout(ctx.request(pause_request(&a, &c))?)
            .await,
    )?;
    done(ctx, "PauseRollout", resp.rollout)
}

/// Runs `rollout resume`.
pub async fn resume(a: ResumeArgs, ctx: &Ctx) -> anyhow::Result<()> {
    let c = current(ctx, &a.target).await?;
    let resp = rpc(
        "ResumeRollout",
        ctx.rollouts()?
            .resume_rollout(ctx.request(resume_request(&a, &c))?)
            .await,
    )?;
    if a.dry_run
        && let Some(p) = &resp.plan
    {
        super::plan::print(ctx, p, None, false)?;
        return out("(dry run: still paused)\n");
    }
    done(ctx, "ResumeRollout", resp.rollout)
}

/// Runs `rollout abort`.
pub async fn abort(a: AbortArgs, ctx: &Ctx) -> anyhow::Result<()> {
    let c = current(ctx, &a.target).await?;
    let resp = rpc(
        "AbortRollout",
        ctx.rollouts()?
            .abort_rollout(ctx.request(abort_request(&a, &c))?)
            .await,
    )?;
    done(ctx, "AbortRollout", resp.rollout)
}

/// Runs `rollout rollback`.
pub async fn rollback(a: RollbackArgs, ctx: &Ctx) -> anyhow::Result<()> {
    let c = current(ctx, &a.target).await?;
    let resp = rpc(
        "RollbackRollout",
        ctx.rollouts()?
            .rollback_rollout(ctx.request(rollback_request(&a, &c))?)
            .await,
    )?;
    done(ctx, "RollbackRollout", resp.rollout)
}

/// Runs `rollout retry-region`.
pub async fn retry_region(a: RegionArgs, ctx: &Ctx) -> anyhow::Result<()> {
    region(&a.region)?;
    let c = current(ctx, &a.target).await?;
    let resp = rpc(
        "RetryRegion",
        ctx.rollouts()?
            .retry_region(ctx.request(retry_request(&a, &c)?)?)
            .await,
    )?;
    done(ctx, "RetryRegion", resp.rollout)
}

/// Runs `rollout skip-region`.
pub async fn skip_region(a: SkipArgs, ctx: &Ctx) -> anyhow::Result<()> {
    region(&a.region)?;
    let c = current(ctx, &a.target).await?;
    let resp = rpc(
        "SkipRegion",
        ctx.rollouts()?
            .skip_region(ctx.request(skip_request(&a, &c)?)?)
            .await,
    )?;
    done(ctx, "SkipRegion", resp.rollout)
}

/// Runs `rollout approve`.
pub async fn approve(a: ApproveArgs, ctx: &Ctx) -> anyhow::Result<()> {
    let c = current(ctx, &a.target).await?;
    let resp = rpc(
        "Approve",
        ctx.rollouts()?
            .approve(ctx.request(approve_request(&a, &c))?)
            .await,
    )?;
    done(ctx, "Approve", resp.rollout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::RolloutCommand;
    use crate::rollout::testing::{parse, parse_error};

    fn cur() -> Current {
        Current {
            id: "riverflow-r1".into(),
            etag: 42,
        }
    }

    #[test]
    fn requests_from_argv() {
        let c = cur();
        match parse(&["pause", "riverflow", "--reason", "wait"]).unwrap() {
            RolloutCommand::Pause(a) => assert_eq!(
                pause_request(&a, &c),
                PauseRolloutRequest {
                    id: "riverflow-r1".into(),
                    etag: 42,
                    reason: "wait".into()
                }
            ),
            other => panic!("{other:?}"),
        }
        /// (argv, bake seconds, concurrency, retry failed, dry run)
        type Case<'a> = (&'a [&'a str], Option<i64>, i32, bool, bool);
        let resumes: &[Case<'_>] = &[
            (&["resume", "rf"], None, 0, false, false),
            (&["resume", "rf", "--bake", "2h"], Some(7200), 0, false, false),
            (
                &["resume", "rf", "--concurrency", "12", "--retry-failed"],
                None,
                12,
                true,
                false,
            ),
            (
                &["resume", "rf", "--bake", "90m", "--dry-run"],
                Some(5400),
                0,
                false,
                true,
            ),
        ];
        for (argv, bake, conc, retry, dry) in resumes {
            let RolloutCommand::Resume(a) = parse(argv).unwrap() else {
                panic!()
            };
            let r = resume_request(&a, &c);
            assert_eq!(
                (
                    r.bake.map(|b| b.seconds),
                    r.concurrency,
                    r.retry_failed,
                    r.dry_run,
                    r.etag
                ),
                (*bake, *conc, *retry, *dry, 42),
                "{argv:?}"
            );
        }
        let RolloutCommand::Abort(a) = parse(&["abort", "rf"]).unwrap() else {
            panic!()
        };
        assert_eq!(abort_request(&a, &c).id, "riverflow-r1");
        let RolloutCommand::Rollback(a) = parse(&["rollback", "rf", "--regions", "gcp:a,aws:b"]).unwrap()
        else {
            panic!()
        };
        assert_eq!(rollback_request(&a, &c).regions, vec!["gcp:a", "aws:b"]);
        let RolloutCommand::RetryRegion(a) = parse(&["retry-region", "rf", "gcp:me-central2"]).unwrap()
        else {
            panic!()
        };
        assert_eq!(retry_request(&a, &c).unwrap().region, "gcp:me-central2");
        let RolloutCommand::SkipRegion(a) =
            parse(&["skip-region", "rf", "me-central2", "--reason", "x"]).unwrap()
        else {
            panic!()
        };
        assert_eq!(skip_request(&a, &c).unwrap_err().exit_code(), 2);
        let RolloutCommand::Approve(a) = parse(&["approve", "rf", "--wave", "2", "--note", "ok"]).unwrap()
        else {
            panic!()
        };
        let r = approve_request(&a, &c);
        assert_eq!((r.wave, r.note.as_str(), r.etag), (2, "ok", 42));
    }

    #[test]
    fn bad_input_exits_2_naming_the_flag() {
        for (argv, flag) in [
            (&["approve", "rf"][..], "--wave"),
            (&["approve", "rf", "--wave", "0"][..], "--wave"),
            (&["resume", "rf", "--bake", "soon"][..], "--bake"),
            (&["resume", "rf", "--concurrency=-1"][..], "--concurrency"),
            (&["retry-region", "rf"][..], "REGION"),
        ] {
            let (code, msg) = parse_error(argv);
            assert_eq!(code, 2, "{argv:?}");
            assert!(msg.contains(flag), "{argv:?}: {msg}");
        }
    }
}
