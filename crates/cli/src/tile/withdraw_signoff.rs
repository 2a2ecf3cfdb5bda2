//! `tilewave tile withdraw-signoff TILE --role ROLE`: withdraws a sign-off
//! recorded earlier (the audit log keeps both).

use tilewave_proto::registry::v1::WithdrawSignOffRequest;

use crate::client::Ctx;
use crate::error::{CliError, rpc};
use crate::names::Role;
use crate::tile::{Current, given_or_read, print_tile, read_if};

/// Examples shown by `--help`.
const EXAMPLES: &str = "\
Examples:
  tilewave tile withdraw-signoff riverflow --role legal --reason \"agreement not countersigned\"
  tilewave tile withdraw-signoff riverflow --role engineering --revision 2";

/// Arguments of `tile withdraw-signoff`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// The tile's id.
    pub tile: String,
    /// Whose sign-off is withdrawn.
    #[arg(long, value_enum)]
    pub role: Role,
    /// The revision the sign-off is on; by default the latest.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
    pub revision: Option<i64>,
    /// Why; kept in the audit record.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// The etag to name; by default the tile is read first.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
    pub etag: Option<i64>,
}

/// Whether the tile must be read first.
pub fn needs_read(args: &Args) -> bool {
    args.revision.is_none() || args.etag.is_none()
}

/// The request.
pub fn request(args: &Args, current: Option<Current>) -> Result<WithdrawSignOffRequest, CliError> {
    Ok(WithdrawSignOffRequest {
        id: args.tile.clone(),
        role: args.role.proto() as i32,
        revision: given_or_read(args.revision, current, |c| c.latest_revision)?,
        reason: args.reason.clone().unwrap_or_default(),
        etag: given_or_read(args.etag, current, |c| c.etag)?,
    })
}

/// Runs `tile withdraw-signoff`.
pub async fn run(args: Args, ctx: &Ctx) -> anyhow::Result<()> {
    let mut registry = ctx.registry()?;
    let current = read_if(ctx, &mut registry, &args.tile, needs_read(&args)).await?;
    let req = request(&args, current)?;
    let resp = rpc(
        "WithdrawSignOff",
        registry.withdraw_sign_off(ctx.request(req)?).await,
    )?;
    print_tile(ctx, resp.tile.as_ref(), &[])
}

#[cfg(test)]
mod tests {
    use tilewave_proto::common::v1::SignOffRole;

    use super::*;
    use crate::tile::TileCommand;
    use crate::tile::testing::{current, parse, parse_exit_code};

    #[test]
    fn requests_from_argv() {
        let TileCommand::WithdrawSignoff(a) = parse(&[
            "withdraw-signoff",
            "rf",
            "--role",
            "legal",
            "--reason",
            "not signed",
        ])
        .unwrap() else {
            panic!()
        };
        assert!(needs_read(&a));
        assert_eq!(
            request(&a, current(11, 4)).unwrap(),
            WithdrawSignOffRequest {
                id: "rf".into(),
                role: SignOffRole::Legal as i32,
                revision: 4,
                reason: "not signed".into(),
                etag: 11,
            }
        );
        let TileCommand::WithdrawSignoff(a) = parse(&[
            "withdraw-signoff",
            "rf",
            "--role",
            "engineering",
            "--revision",
            "2",
            "--etag",
            "3",
        ])
        .unwrap() else {
            panic!()
        };
        assert!(!needs_read(&a));
        let r = request(&a, None).unwrap();
        assert_eq!(
            (r.revision, r.etag, r.role),
            (2, 3, SignOffRole::Engineering as i32)
        );
        assert_eq!(
            parse_exit_code(&["withdraw-signoff", "rf", "--role", "intern"]),
            2
        );
    }
}
