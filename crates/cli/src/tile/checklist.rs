//! `tilewave tile checklist TILE`: the validation checklist of a tile's
//! latest revision, every case with its result or "open", then how many are
//! open and the command that records a result.

use tilewave_proto::registry::v1::{GetTileRequest, Tile, ValidationChecklist, ValidationOutcome};

use crate::client::{Ctx, out};
use crate::error::{CliError, rpc};
use crate::names::short_time;
use crate::output::{Table, structured};
use crate::view::TileView;

/// Examples shown by `--help`.
const EXAMPLES: &str = "\
Examples:
  tilewave tile checklist riverflow
  tilewave tile checklist riverflow -o json";

/// The command that records results, as the checklist names it.
pub const VALIDATE: &str = "tilewave tile validate TILE CASE... --pass|--fail|--waive --note TEXT";

/// Arguments of `tile checklist`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// The tile's id.
    pub tile: String,
}

/// The request.
pub fn request(args: &Args) -> Result<GetTileRequest, CliError> {
    Ok(GetTileRequest {
        id: args.tile.clone(),
        revision: 0,
    })
}

/// A result's name: PASS, FAIL, WAIVED, or `open`.
pub fn outcome_name(raw: i32) -> &'static str {
    match ValidationOutcome::try_from(raw) {
        Ok(ValidationOutcome::Pass) => "PASS",
        Ok(ValidationOutcome::Fail) => "FAIL",
        Ok(ValidationOutcome::Waived) => "WAIVED",
        Ok(ValidationOutcome::Unspecified) | Err(_) => "open",
    }
}

/// `19 of 21 open`, or `all 21 passed or waived`.
pub fn open_summary(v: &ValidationChecklist) -> String {
    if v.open_cases.is_empty() {
        format!("all {} passed or waived (r{})", v.cases.len(), v.revision)
    } else {
        format!(
            "{} of {} open (r{})",
            v.open_cases.len(),
            v.cases.len(),
            v.revision
        )
    }
}

/// The checklist as a table, then the open count and the command.
pub fn render(tile: &Tile) -> String {
    let Some(v) = &tile.validation else {
        return format!(
            "tile {} has no validation checklist (a self-test tile is never launched)\n",
            tile.id
        );
    };
    let mut t = Table::new(&["CASE", "TITLE", "RESULT", "NOTE", "BY", "WHEN"]);
    for e in &v.cases {
        let note = if e.evidence_tile.is_empty() {
            e.note.clone()
        } else {
            format!(
                "{} (evidence {}@{})",
                e.note, e.evidence_tile, e.evidence_revision
            )
        };
        t.row(vec![
            e.case_id.clone(),
            e.title.clone(),
            outcome_name(e.outcome).into(),
            note.trim().to_owned(),
            if e.recorded_by.is_empty() {
                "-".into()
            } else {
                e.recorded_by.clone()
            },
            short_time(e.recorded_at.as_ref()).unwrap_or_else(|| "-".into()),
        ]);
    }
    let mut text = format!("Validation checklist of {} revision {}:\n", tile.id, v.revision);
    text.push_str(&t.render());
    if v.open_cases.is_empty() {
        text.push_str(&format!(
            "\nno case open: every case passed or was waived, so the engineering sign-off of revision {} is not held \
             up\n",
            v.revision
        ));
    } else {
        text.push_str(&format!(
            "\n{} open: {}\nrecord results with `{}`\n",
            v.open_cases.len(),
            v.open_cases.join(", "),
            VALIDATE.replace("TILE", &tile.id)
        ));
    }
    text
}

/// Prints a tile's checklist (its JSON/YAML view with `-o`).
pub(crate) fn print_checklist(ctx: &Ctx, tile: Option<&Tile>) -> anyhow::Result<()> {
    let tile = tile.ok_or_else(|| anyhow::anyhow!("the response holds no tile"))?;
    match structured(ctx.format, &TileView::from(tile))? {
        Some(text) => out(&text),
        None => out(&render(tile)),
    }
}

/// Runs `tile checklist`.
pub async fn run(args: Args, ctx: &Ctx) -> anyhow::Result<()> {
    let mut registry = ctx.registry()?;
    let resp = rpc("GetTile", registry.get_tile(ctx.request(request(&args)?)?).await)?;
    print_checklist(ctx, resp.tile.as_ref())
}

#[cfg(test)]
mod tests {
    use tilewave_proto::registry::v1::ValidationEntry;

    use super::*;
    use crate::tile::TileCommand;
    use crate::tile::testing::parse;

    fn tile(outcomes: &[(&str, ValidationOutcome)]) -> Tile {
        let cases: Vec<ValidationEntry> = outcomes
            .iter()
            .map(|(id, o)| ValidationEntry {
                case_id: (*id).into(),
                title: "deletion".into(),
                outcome: *o as i32,
                note: if *o == ValidationOutcome::Unspecified {
                    String::new()
                } else {
                    "seen".into()
                },
                recorded_by: if *o == ValidationOutcome::Unspecified {
                    String::new()
                } else {
                    "ana".into()
                },
                ..Default::default()
            })
            .collect();
        let open_cases = outcomes
            .iter()
            .filter(|(_, o)| matches!(o, ValidationOutcome::Unspecified | ValidationOutcome::Fail))
            .map(|(id, _)| (*id).to_string())
            .collect();
        Tile {
            id: "rf".into(),
            validation: Some(ValidationChecklist {
                revision: 2,
                cases,
                open_cases,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn renders_every_case_then_the_open_ones_and_the_command() {
        let t = tile(&[
            ("P400", ValidationOutcome::Pass),
            ("P401", ValidationOutcome::Fail),
            ("P402", ValidationOutcome::Waived),
            ("P403", ValidationOutcome::Unspecified),
        ]);
        let text = render(&t);
        assert!(
            text.starts_with("Validation checklist of rf revision 2:\n"),
            "{text}"
        );
        for want in ["P400", "PASS", "FAIL", "WAIVED", "open", "ana"] {
            assert!(text.contains(want), "{want}: {text}");
        }
        assert!(text.contains("\n2 open: P401, P403\n"), "{text}");
        assert!(text.contains("`tilewave tile validate rf CASE..."), "{text}");
        assert_eq!(open_summary(t.validation.as_ref().unwrap()), "2 of 4 open (r2)");
        let done = tile(&[("P400", ValidationOutcome::Pass)]);
        assert!(render(&done).contains("no case open"), "{}", render(&done));
        assert_eq!(
            open_summary(done.validation.as_ref().unwrap()),
            "all 1 passed or waived (r2)"
        );
        assert!(render(&Tile::default()).contains("no validation checklist"));
    }

    #[test]
    fn the_request_reads_the_latest_revision() {
        let TileCommand::Checklist(a) = parse(&["checklist", "rf"]).unwrap() else {
            panic!()
        };
        assert_eq!(
            request(&a).unwrap(),
            GetTileRequest {
                id: "rf".into(),
                revision: 0
            }
        );
    }
}
