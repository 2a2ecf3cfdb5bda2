//! `tilewave tile validate TILE CASE... --pass|--fail|--waive`: records a
//! validation result on cases of the latest revision's checklist (or, with
//! `--all-open`, on every case still open). The engineering sign-off waits
//! until every case passed or was waived.

use tilewave_proto::registry::v1::{RecordValidationRequest, ValidationOutcome};

use crate::client::Ctx;
use crate::error::{CliError, rpc};
use crate::tile::checklist::print_checklist;

/// Examples shown by `--help`.
const EXAMPLES: &str = "\
CASE is a validation case id, P100 to P900 (`tilewave tile checklist TILE` lists them).

Examples:
  tilewave tile validate riverflow P100 P101 --pass --note \"new user flow ok\"
  tilewave tile validate riverflow P900 --waive --note \"no connectors\"
  tilewave tile validate riverflow P800 --fail --note \"timeout\" --evidence riverflow-self-test@2
  tilewave tile validate riverflow --all-open --pass --note \"certification run 81\"";

/// Arguments of `tile validate`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = EXAMPLES)]
#[command(group = clap::ArgGroup::new("outcome").required(true).args(["pass", "fail", "waive"]))]
#[command(group = clap::ArgGroup::new("which").required(true).args(["cases", "all_open"]))]
pub struct Args {
    /// The tile's id.
    pub tile: String,
    /// The cases, e.g. P100 P101.
    #[arg(value_name = "CASE")]
    pub cases: Vec<String>,
    /// Every case still open (neither passed nor waived) instead of CASEs.
    #[arg(long)]
    pub all_open: bool,
    /// The cases passed.
    #[arg(long)]
    pub pass: bool,
    /// The cases failed (they stay open).
    #[arg(long)]
    pub fail: bool,
    /// The cases do not apply to this tile (the note says why).
    #[arg(long)]
    pub waive: bool,
    /// What was seen; required with --waive.
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
    /// The self-test tile the results come from, and its revision (default:
    /// its latest).
    #[arg(long, value_name = "SELFTEST_TILE[@REV]", value_parser = parse_evidence)]
    pub evidence: Option<(String, i64)>,
    /// The revision the results are for (refused unless it is the latest);
    /// by default the latest.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
    pub revision: Option<i64>,
    /// The etag to name; by default none is checked.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
    pub etag: Option<i64>,
}

/// `TILE` or `TILE@REV`.
fn parse_evidence(s: &str) -> Result<(String, i64), String> {
    match s.split_once('@') {
        None if !s.is_empty() => Ok((s.to_owned(), 0)),
        Some((tile, rev)) if !tile.is_empty() => match rev.parse::<i64>() {
            Ok(n) if n >= 1 => Ok((tile.to_owned(), n)),
            _ => Err(format!(
                "{rev:?} is not a revision: give SELFTEST_TILE or SELFTEST_TILE@N (N from 1)"
            )),
        },
        _ => Err("give SELFTEST_TILE or SELFTEST_TILE@N".into()),
    }
}

/// The outcome the flags give.
fn outcome(args: &Args) -> ValidationOutcome {
    if args.pass {
        ValidationOutcome::Pass
    } else if args.fail {
        ValidationOutcome::Fail
    } else {
        ValidationOutcome::Waived
    }
}

/// The request.
pub fn request(args: &Args) -> Result<RecordValidationRequest, CliError> {
    let note = args.note.clone().unwrap_or_default();
    if args.waive && note.trim().is_empty() {
        return Err(CliError::usage(
            "--waive needs --note REASON: say why the case does not apply to this tile",
        ));
    }
    let (evidence_tile, evidence_revision) = args.evidence.clone().unwrap_or_default();
    Ok(RecordValidationRequest {
        id: args.tile.clone(),
        revision: args.revision.unwrap_or(0),
        case_ids: args.cases.clone(),
        all_open: args.all_open,
        outcome: outcome(args) as i32,
        note,
        evidence_tile,
        evidence_revision,
        etag: args.etag.unwrap_or(0),
    })
}

/// Runs `tile validate`.
pub async fn run(args: Args, ctx: &Ctx) -> anyhow::Result<()> {
    let mut registry = ctx.registry()?;
    let req = request(&args)?;
    let resp = rpc(
        "RecordValidation",
        registry.record_validation(ctx.request(req)?).await,
    )?;
    print_checklist(ctx, resp.tile.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tile::TileCommand;
    use crate::tile::testing::{parse, parse_exit_code};

    fn req(argv: &[&str]) -> Result<RecordValidationRequest, CliError> {
        let TileCommand::Validate(a) = parse(argv).unwrap() else {
            panic!("{argv:?}")
        };
        request(&a)
    }

    #[test]
    fn requests_from_argv() {
        let base = RecordValidationRequest {
            id: "rf".into(),
            outcome: ValidationOutcome::Pass as i32,
            ..Default::default()
        };
        // (argv, request)
        let cases: Vec<(&[&str], RecordValidationRequest)> = vec![
            (
                &["validate", "rf", "P100", "P101", "--pass", "--note", "ok"],
                RecordValidationRequest {
                    case_ids: vec!["P100".into(), "P101".into()],
                    note: "ok".into(),
                    ..base.clone()
                },
            ),
            (
                &["validate", "rf", "P900", "--waive", "--note", "no connectors"],
                RecordValidationRequest {
                    case_ids: vec!["P900".into()],
                    outcome: ValidationOutcome::Waived as i32,
                    note: "no connectors".into(),
                    ..base.clone()
                },
            ),
            (
                &[
                    "validate",
                    "rf",
                    "P800",
                    "--fail",
                    "--evidence",
                    "rf-st@2",
                    "--etag",
                    "9",
                ],
                RecordValidationRequest {
                    case_ids: vec!["P800".into()],
                    outcome: ValidationOutcome::Fail as i32,
                    evidence_tile: "rf-st".into(),
                    evidence_revision: 2,
                    etag: 9,
                    ..base.clone()
                },
            ),
            (
                &[
                    "validate",
                    "rf",
                    "--all-open",
                    "--pass",
                    "--revision",
                    "3",
                    "--evidence",
                    "rf-st",
                ],
                RecordValidationRequest {
                    all_open: true,
                    revision: 3,
                    evidence_tile: "rf-st".into(),
                    ..base.clone()
                },
            ),
        ];
        for (argv, want) in cases {
            assert_eq!(req(argv).unwrap(), want, "{argv:?}");
        }
        assert!(
            req(&["validate", "rf", "P900", "--waive"]).is_err(),
            "a waiver needs a note"
        );
    }

    #[test]
    fn bad_input_exits_2() {
        for argv in [
            &["validate", "rf", "P100"][..],
            &["validate", "rf", "--pass"],
            &["validate", "rf", "P100", "--pass", "--fail"],
            &["validate", "rf", "P100", "--all-open", "--pass"],
            &["validate", "rf", "P100", "--pass", "--evidence", "st@0"],
            &["validate", "rf", "P100", "--pass", "--evidence", "@2"],
            &["validate", "rf", "P100", "--pass", "--revision", "0"],
        ] {
            assert_eq!(parse_exit_code(argv), 2, "{argv:?}");
        }
    }
}
