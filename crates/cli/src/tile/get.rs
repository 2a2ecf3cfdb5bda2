//! `tilewave tile get TILE`: one tile, at its latest revision or a given
//! one, with its sign-offs and revision list.

use tilewave_proto::registry::v1::{GetTileRequest, GetTileResponse};

use crate::client::{Ctx, out};
use crate::error::{CliError, rpc};
use crate::names::{role_name, short_time};
use crate::output::{Table, structured};
use crate::tile::{issues_table, none_if_empty, summary};
use crate::view::{RevisionView, TileDetailView, TileView};

/// Examples shown by `--help`.
const EXAMPLES: &str = "\
Examples:
  tilewave tile get riverflow
  tilewave tile get riverflow --revision 1 -o json";

/// Arguments of `tile get`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// The tile's id.
    pub tile: String,
    /// Show this revision instead of the latest.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
    pub revision: Option<i64>,
}

/// The request.
pub fn request(args: &Args) -> Result<GetTileRequest, CliError> {
    Ok(GetTileRequest {
        id: args.tile.clone(),
        revision: args.revision.unwrap_or(0),
    })
}

/// The human rendering of a GetTile response.
pub fn render(resp: &GetTileResponse) -> String {
    let Some(tile) = &resp.tile else {
        return "(no tile in the response)\n".into();
    };
    let mut text = summary(tile);
    if !tile.sign_offs.is_empty() {
        let mut t = Table::new(&["ROLE", "REVISION", "ACTOR", "AT", "NOTE"]);
        for s in &tile.sign_offs {
            t.row(vec![
                role_name(s.role),
                s.revision.to_string(),
                s.actor.clone(),
                short_time(s.at.as_ref()).unwrap_or_default(),
                s.note.clone(),
            ]);
        }
        text.push_str("\nSign-offs:\n");
        text.push_str(&t.render());
    }
    if !resp.revisions.is_empty() {
        let mut t = Table::new(&["REVISION", "CREATED", "BY", "SIGNED OFF", "NOTE"]);
        for r in &resp.revisions {
            let roles: Vec<String> = r.signed_off.iter().map(|x| role_name(*x)).collect();
            t.row(vec![
                r.revision.to_string(),
                short_time(r.created_at.as_ref()).unwrap_or_default(),
                none_if_empty(&r.created_by),
                if roles.is_empty() {
                    "-".into()
                } else {
                    roles.join(",")
                },
                r.note.clone(),
            ]);
        }
        text.push_str("\nRevisions:\n");
        text.push_str(&t.render());
    }
    if !tile.warnings.is_empty() {
        text.push_str("\nWarnings:\n");
        text.push_str(&issues_table(&tile.warnings));
    }
    text
}

/// Runs `tile get`.
pub async fn run(args: Args, ctx: &Ctx) -> anyhow::Result<()> {
    let mut registry = ctx.registry()?;
    let resp = rpc("GetTile", registry.get_tile(ctx.request(request(&args)?)?).await)?;
    let view = TileDetailView {
        tile: resp.tile.as_ref().map(TileView::from),
        revisions: resp.revisions.iter().map(RevisionView::from).collect(),
    };
    match structured(ctx.format, &view)? {
        Some(text) => out(&text),
        None => out(&render(&resp)),
    }
}

#[cfg(test)]
mod tests {
    use tilewave_proto::common::v1::{SignOffRole, TileState};
    use tilewave_proto::registry::v1::{RevisionSummary, SignOff, Tile};

    use super::*;
    use crate::tile::TileCommand;
    use crate::tile::testing::{parse, parse_exit_code};

    #[test]
    fn requests_from_argv() {
        let cases: [(&[&str], GetTileRequest); 2] = [
            (
                &["get", "riverflow"],
                GetTileRequest {
                    id: "riverflow".into(),
                    revision: 0,
                },
            ),
            (
                &["get", "riverflow", "--revision", "2"],
                GetTileRequest {
                    id: "riverflow".into(),
                    revision: 2,
                },
            ),
        ];
        for (argv, want) in cases {
            let TileCommand::Get(a) = parse(argv).unwrap() else {
                panic!()
            };
            assert_eq!(request(&a).unwrap(), want);
        }
        assert_eq!(parse_exit_code(&["get"]), 2);
        assert_eq!(parse_exit_code(&["get", "x", "--revision", "0"]), 2);
    }

    #[test]
    fn renders_summary_sign_offs_and_revisions() {
        let resp = GetTileResponse {
            tile: Some(Tile {
                id: "riverflow".into(),
                name: "Riverflow".into(),
                partner_id: "riverflow".into(),
                revision: 2,
                latest_revision: 2,
                state: TileState::Validating as i32,
                sign_offs: vec![SignOff {
                    role: SignOffRole::Engineering as i32,
                    revision: 2,
                    actor: "ada".into(),
                    at: None,
                    note: "report #7".into(),
                }],
                missing_sign_offs: vec![SignOffRole::Legal as i32],
                etag: 42,
                ..Tile::default()
            }),
            revisions: vec![RevisionSummary {
                revision: 1,
                created_by: "ada".into(),
                note: "imported".into(),
                ..RevisionSummary::default()
            }],
        };
        let text = render(&resp);
        for want in [
            "ID                 riverflow",
            "STATE              VALIDATING",
            "MISSING SIGN-OFFS  legal",
            "ETAG               42",
            "engineering  2         ada",
            "report #7",
            "1         ",
            "imported",
        ] {
            assert!(text.contains(want), "{want:?} missing from:\n{text}");
        }
    }
}
