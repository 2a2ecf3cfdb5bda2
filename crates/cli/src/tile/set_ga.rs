//! `tilewave tile set-ga TILE TIME`: sets (or, with `--clear`, clears) the
//! GA moment. The registry checks the rules (at least 7 days ahead).

use tilewave_proto::registry::v1::SetGaDateRequest;

use crate::client::Ctx;
use crate::error::{CliError, rpc};
use crate::names::{parse_time, to_proto_time};
use crate::tile::{Current, given_or_read, print_tile, read_if};

/// Examples shown by `--help`.
const EXAMPLES: &str = "\
TIME is RFC 3339 (2026-12-08T17:00:00Z, 2026-12-08T18:00:00+01:00) or a date and
time without an offset, taken as UTC (\"2026-12-08 17:00\").

Examples:
  tilewave tile set-ga riverflow \"2026-12-08 17:00\"
  tilewave tile set-ga riverflow 2026-12-08T17:00:00Z --reason \"launch calendar slot\"
  tilewave tile set-ga riverflow --clear --reason \"launch postponed\"
  tilewave tile set-ga riverflow \"2026-12-08 17:00\" --gtm-override \"blog lands on launch day\"

A GA date waits until every go-to-market item is done (`tilewave tile gtm TILE`);
--gtm-override commits it anyway, on the record.";

/// Arguments of `tile set-ga`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = EXAMPLES)]
#[command(group = clap::ArgGroup::new("what").required(true).args(["time", "clear"]))]
pub struct Args {
    /// The tile's id.
    pub tile: String,
    /// The GA moment (RFC 3339, or "YYYY-MM-DD HH:MM" in UTC).
    #[arg(value_parser = parse_time)]
    pub time: Option<jiff::Timestamp>,
    /// Clear the GA moment instead.
    #[arg(long)]
    pub clear: bool,
    /// Why it was set or moved; kept in the audit record.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    /// Commit the date although go-to-market items are pending, for this
    /// reason (recorded on the tile and in the audit log).
    #[arg(long, value_name = "REASON", conflicts_with = "clear")]
    pub gtm_override: Option<String>,
    /// The etag to name; by default the tile is read first.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
    pub etag: Option<i64>,
}

/// Whether the tile must be read first.
pub fn needs_read(args: &Args) -> bool {
    args.etag.is_none()
}

/// The request.
pub fn request(args: &Args, current: Option<Current>) -> Result<SetGaDateRequest, CliError> {
    Ok(SetGaDateRequest {
        id: args.tile.clone(),
        ga_time: if args.clear {
            None
        } else {
            args.time.map(to_proto_time)
        },
        etag: given_or_read(args.etag, current, |c| c.etag)?,
        reason: args.reason.clone().unwrap_or_default(),
        gtm_override: args.gtm_override.clone().unwrap_or_default(),
        ..Default::default()
    })
}

/// Runs `tile set-ga`.
pub async fn run(args: Args, ctx: &Ctx) -> anyhow::Result<()> {
    let mut registry = ctx.registry()?;
    let current = read_if(ctx, &mut registry, &args.tile, needs_read(&args)).await?;
    let req = request(&args, current)?;
    let resp = rpc("SetGaDate", registry.set_ga_date(ctx.request(req)?).await)?;
    print_tile(ctx, resp.tile.as_ref(), &[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tile::TileCommand;
    use crate::tile::testing::{current, parse, parse_exit_code};

    /// 2026-12-08T17:00:00Z.
    const GA: i64 = 1_796_749_200;

    #[test]
    fn requests_from_argv() {
        /// (argv, tile as read, GA seconds, etag, reason)
        type Case<'a> = (&'a [&'a str], Option<Current>, Option<i64>, i64, &'a str);
        let cases: &[Case<'_>] = &[
            (
                &["set-ga", "rf", "2026-12-08 17:00"],
                current(4, 1),
                Some(GA),
                4,
                "",
            ),
            (
                &["set-ga", "rf", "2026-12-08T17:00:00Z", "--etag", "9"],
                None,
                Some(GA),
                9,
                "",
            ),
            (
                &["set-ga", "rf", "2026-12-08T18:00:00+01:00", "--reason", "slot"],
                current(4, 1),
                Some(GA),
                4,
                "slot",
            ),
            (
                &["set-ga", "rf", "--clear", "--reason", "postponed"],
                current(4, 1),
                None,
                4,
                "postponed",
            ),
        ];
        for (argv, cur, seconds, etag, reason) in cases {
            let TileCommand::SetGa(a) = parse(argv).unwrap() else {
                panic!()
            };
            let r = request(&a, *cur).unwrap();
            assert_eq!(r.ga_time.map(|t| t.seconds), *seconds, "{argv:?}");
            assert_eq!(
                (r.id.as_str(), r.etag, r.reason.as_str()),
                ("rf", *etag, *reason),
                "{argv:?}"
            );
        }
    }

    #[test]
    fn a_gtm_override_goes_with_a_time() {
        let TileCommand::SetGa(a) =
            parse(&["set-ga", "rf", "2026-12-08 17:00", "--gtm-override", "blog late"]).unwrap()
        else {
            panic!()
        };
        assert_eq!(request(&a, current(4, 1)).unwrap().gtm_override, "blog late");
        assert_eq!(
            parse_exit_code(&["set-ga", "rf", "--clear", "--gtm-override", "x"]),
            2,
            "nothing to override when clearing"
        );
    }

    #[test]
    fn malformed_times_exit_2() {
        for bad in ["next tuesday", "2026-12-08", "2026-02-30 10:00", "17:00"] {
            assert_eq!(parse_exit_code(&["set-ga", "rf", bad]), 2, "{bad}");
        }
        assert_eq!(parse_exit_code(&["set-ga", "rf"]), 2, "TIME or --clear");
        assert_eq!(
            parse_exit_code(&["set-ga", "rf", "2026-12-08 17:00", "--clear"]),
            2
        );
    }
}
