//! `tilewave tile signoff TILE --role ROLE`: records the caller's sign-off
//! on a revision (the latest unless `--revision` says otherwise).

use tilewave_proto::registry::v1::RecordSignOffRequest;

use crate::client::Ctx;
use crate::error::{CliError, rpc};
use crate::names::Role;
use crate::tile::{Current, given_or_read, print_tile, read_if};

/// Examples shown by `--help`.
const EXAMPLES: &str = "\
Examples:
  tilewave tile signoff riverflow --role engineering --note \"test report: https://ci/runs/81\"
  tilewave tile signoff riverflow --role partner-sa --revision 2
  tilewave tile signoff riverflow --role legal --revision 2 --etag 57   # no read first";

/// Arguments of `tile signoff`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// The tile's id.
    pub tile: String,
    /// Who signs off.
    #[arg(long, value_enum)]
    pub role: Role,
    /// The revision reviewed; by default the latest (read first).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
    pub revision: Option<i64>,
    /// Free text kept with the sign-off, e.g. a link to the test report.
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
    /// The etag to name; by default the tile is read first.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
    pub etag: Option<i64>,
}

/// Whether the tile must be read before the request can be built.
pub fn needs_read(args: &Args) -> bool {
    args.revision.is_none() || args.etag.is_none()
}

/// The request, from the arguments and (when [`needs_read`]) the tile.
pub fn request(args: &Args, current: Option<Current>) -> Result<RecordSignOffRequest, CliError> {
    Ok(RecordSignOffRequest {
        id: args.tile.clone(),
        role: args.role.proto() as i32,
        revision: given_or_read(args.revision, current, |c| c.latest_revision)?,
        note: args.note.clone().unwrap_or_default(),
        etag: given_or_read(args.etag, current, |c| c.etag)?,
    })
}

/// Runs `tile signoff`.
pub async fn run(args: Args, ctx: &Ctx) -> anyhow::Result<()> {
    let mut registry = ctx.registry()?;
    let current = read_if(ctx, &mut registry, &args.tile, needs_read(&args)).await?;
    let req = request(&args, current)?;
    let resp = rpc("RecordSignOff", registry.record_sign_off(ctx.request(req)?).await)?;
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
        // (argv, tile as read, wanted role, revision, etag, note, read needed)
        type Case<'a> = (
            &'a [&'a str],
            Option<Current>,
            SignOffRole,
            i64,
            i64,
            &'a str,
            bool,
        );
        let cases: &[Case<'_>] = &[
            (
                &["signoff", "rf", "--role", "engineering"],
                current(42, 3),
                SignOffRole::Engineering,
                3,
                42,
                "",
                true,
            ),
            (
                &["signoff", "rf", "--role", "partner-sa", "--note", "ok"],
                current(7, 1),
                SignOffRole::PartnerSolutionArchitect,
                1,
                7,
                "ok",
                true,
            ),
            (
                &["signoff", "rf", "--role", "partner-solution-architect"],
                current(7, 1),
                SignOffRole::PartnerSolutionArchitect,
                1,
                7,
                "",
                true,
            ),
            (
                &["signoff", "rf", "--role", "product", "--revision", "2"],
                current(9, 3),
                SignOffRole::Product,
                2,
                9,
                "",
                true,
            ),
            (
                &["signoff", "rf", "--role", "partner", "--etag", "5"],
                current(9, 3),
                SignOffRole::Partner,
                3,
                5,
                "",
                true,
            ),
            (
                &[
                    "signoff",
                    "rf",
                    "--role",
                    "legal",
                    "--revision",
                    "2",
                    "--etag",
                    "5",
                ],
                None,
                SignOffRole::Legal,
                2,
                5,
                "",
                false,
            ),
        ];
        for (argv, cur, role, revision, etag, note, read) in cases {
            let TileCommand::Signoff(a) = parse(argv).unwrap() else {
                panic!()
            };
            assert_eq!(needs_read(&a), *read, "{argv:?}");
            let want = RecordSignOffRequest {
                id: "rf".into(),
                role: *role as i32,
                revision: *revision,
                note: (*note).into(),
                etag: *etag,
            };
            assert_eq!(request(&a, *cur).unwrap(), want, "{argv:?}");
        }
    }

    #[test]
    fn bad_input_exits_2() {
        assert_eq!(
            parse_exit_code(&["signoff", "rf", "--role", "ceo"]),
            2,
            "unknown role"
        );
        assert_eq!(parse_exit_code(&["signoff", "rf"]), 2, "role is required");
        assert_eq!(
            parse_exit_code(&["signoff", "rf", "--role", "legal", "--revision", "0"]),
            2
        );
        assert_eq!(
            parse_exit_code(&["signoff", "rf", "--role", "legal", "--etag", "x"]),
            2
        );
    }
}
