//! `tilewave tile set-test-workspace TILE WORKSPACE`: the one provisioned
//! workspace the tile is shown in while it is validated (a DRAFT tile
//! becomes VALIDATING).

use tilewave_proto::registry::v1::SetTestWorkspaceRequest;

use crate::client::Ctx;
use crate::error::{CliError, rpc};
use crate::tile::{Current, given_or_read, print_tile, read_if};

/// Examples shown by `--help`.
const EXAMPLES: &str = "\
Examples:
  tilewave tile set-test-workspace riverflow 6051921418418893
  tilewave tile set-test-workspace riverflow --clear";

/// Arguments of `tile set-test-workspace`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = EXAMPLES)]
#[command(group = clap::ArgGroup::new("what").required(true).args(["workspace", "clear"]))]
pub struct Args {
    /// The tile's id.
    pub tile: String,
    /// The workspace id, e.g. 6051921418418893.
    pub workspace: Option<String>,
    /// Clear the test workspace instead.
    #[arg(long)]
    pub clear: bool,
    /// The etag to name; by default the tile is read first.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
    pub etag: Option<i64>,
}

/// Whether the tile must be read first.
pub fn needs_read(args: &Args) -> bool {
    args.etag.is_none()
}

/// The request.
pub fn request(args: &Args, current: Option<Current>) -> Result<SetTestWorkspaceRequest, CliError> {
    let workspace_id = match (&args.workspace, args.clear) {
        (_, true) => String::new(),
        (Some(w), false) if !w.trim().is_empty() && !w.chars().any(char::is_whitespace) => w.clone(),
        (w, false) => {
            return Err(CliError::usage(format!(
                "{w:?} is not a workspace id; use --clear to clear it"
            )));
        }
    };
    Ok(SetTestWorkspaceRequest {
        id: args.tile.clone(),
        workspace_id,
        etag: given_or_read(args.etag, current, |c| c.etag)?,
    })
}

/// Runs `tile set-test-workspace`.
pub async fn run(args: Args, ctx: &Ctx) -> anyhow::Result<()> {
    let mut registry = ctx.registry()?;
    let current = read_if(ctx, &mut registry, &args.tile, needs_read(&args)).await?;
    let req = request(&args, current)?;
    let resp = rpc(
        "SetTestWorkspace",
        registry.set_test_workspace(ctx.request(req)?).await,
    )?;
    print_tile(ctx, resp.tile.as_ref(), &[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tile::TileCommand;
    use crate::tile::testing::{current, parse, parse_exit_code};

    fn build(argv: &[&str], cur: Option<Current>) -> Result<SetTestWorkspaceRequest, CliError> {
        let TileCommand::SetTestWorkspace(a) = parse(argv).unwrap() else {
            panic!()
        };
        request(&a, cur)
    }

    #[test]
    fn requests_from_argv() {
        let cases: &[(&[&str], Option<Current>, &str, i64)] = &[
            (
                &["set-test-workspace", "rf", "6051921418418893"],
                current(8, 1),
                "6051921418418893",
                8,
            ),
            (&["set-test-workspace", "rf", "--clear"], current(8, 1), "", 8),
            (&["set-test-workspace", "rf", "77", "--etag", "3"], None, "77", 3),
        ];
        for (argv, cur, ws, etag) in cases {
            let r = build(argv, *cur).unwrap();
            assert_eq!(
                (r.id.as_str(), r.workspace_id.as_str(), r.etag),
                ("rf", *ws, *etag),
                "{argv:?}"
            );
        }
    }

    #[test]
    fn bad_input_exits_2() {
        assert_eq!(
            parse_exit_code(&["set-test-workspace", "rf"]),
            2,
            "workspace or --clear"
        );
        assert_eq!(parse_exit_code(&["set-test-workspace", "rf", "77", "--clear"]), 2);
        assert_eq!(
            build(&["set-test-workspace", "rf", " "], current(1, 1))
                .unwrap_err()
                .exit_code(),
            2
        );
    }
}
