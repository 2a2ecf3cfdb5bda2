//! `tilewave tile withdraw TILE`: withdraws a tile, directly if it never
//! reached a region, otherwise through a removal roll-out.

use tilewave_proto::registry::v1::WithdrawRequest;

use crate::client::{Ctx, note};
use crate::error::{CliError, rpc};
use crate::output::Format;
use crate::tile::{Current, given_or_read, print_tile, read_if};

/// Examples shown by `--help`.
const EXAMPLES: &str = "\
Examples:
  tilewave tile withdraw riverflow --reason \"partner discontinued the product\"";

/// Arguments of `tile withdraw`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// The tile's id.
    pub tile: String,
    /// Why; kept in the audit record and shown on the tile.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// The etag to name; by default the tile is read first.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
    pub etag: Option<i64>,
}

/// Whether the tile must be read first.
pub fn needs_read(args: &Args) -> bool {
    args.etag.is_none()
}

/// The request.
pub fn request(args: &Args, current: Option<Current>) -> Result<WithdrawRequest, CliError> {
    Ok(WithdrawRequest {
        id: args.tile.clone(),
        etag: given_or_read(args.etag, current, |c| c.etag)?,
        reason: args.reason.clone().unwrap_or_default(),
    })
}

/// Runs `tile withdraw`.
pub async fn run(args: Args, ctx: &Ctx) -> anyhow::Result<()> {
    let mut registry = ctx.registry()?;
    let current = read_if(ctx, &mut registry, &args.tile, needs_read(&args)).await?;
    let req = request(&args, current)?;
    let resp = rpc("Withdraw", registry.withdraw(ctx.request(req)?).await)?;
    if resp.removal_pending && ctx.format == Format::Table {
        note(
            "the tile is live in some regions: a removal roll-out takes it out region by region, then it becomes WITHDRAWN",
        );
    }
    print_tile(ctx, resp.tile.as_ref(), &[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tile::TileCommand;
    use crate::tile::testing::{current, parse, parse_exit_code};

    #[test]
    fn requests_from_argv() {
        let cases: &[(&[&str], Option<Current>, i64, &str)] = &[
            (&["withdraw", "rf"], current(12, 2), 12, ""),
            (
                &["withdraw", "rf", "--reason", "gone", "--etag", "3"],
                None,
                3,
                "gone",
            ),
        ];
        for (argv, cur, etag, reason) in cases {
            let TileCommand::Withdraw(a) = parse(argv).unwrap() else {
                panic!()
            };
            assert_eq!(needs_read(&a), cur.is_some());
            assert_eq!(
                request(&a, *cur).unwrap(),
                WithdrawRequest {
                    id: "rf".into(),
                    etag: *etag,
                    reason: (*reason).into()
                }
            );
        }
        assert_eq!(parse_exit_code(&["withdraw"]), 2);
    }
}
