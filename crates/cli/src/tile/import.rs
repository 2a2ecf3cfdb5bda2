//! `tilewave tile import FILE`: creates a tile (or, with `--etag`, a new
//! revision) from a partner's JSON document, in either format. A broken
//! document fails with every error and its JSON path.

use tilewave_proto::registry::v1::ImportPartnerConfigRequest;

use crate::client::{Ctx, out};
use crate::error::{CliError, rpc};
use crate::output::structured;
use crate::tile::{issues_table, print_tile, read_document};
use crate::view::{IssueView, TileView};

/// Examples shown by `--help`.
const EXAMPLES: &str = "\
Examples:
  tilewave tile import riverflow.json
  tilewave tile import riverflow.json --id riverflow --partner riverflow-inc
  tilewave tile import - < riverflow.json
  tilewave tile import selftest.json --workspace 6051921418418893
  tilewave tile import riverflow.json --dry-run           # every error and warning, nothing written
  tilewave tile import riverflow-v2.json --etag 42 --note \"adds GCP\"   # a new revision";

/// Arguments of `tile import`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// The JSON document (PartnerConfig or self-test format), or `-` for stdin.
    #[arg(value_name = "FILE")]
    pub file: String,
    /// The tile's id; by default the slug of the document's name.
    #[arg(long)]
    pub id: Option<String>,
    /// The partner's id; by default the tile id.
    #[arg(long, value_name = "ID")]
    pub partner: Option<String>,
    /// The workspace a self-test tile is for (self-test format only).
    #[arg(long, value_name = "ID")]
    pub workspace: Option<String>,
    /// Validate only: list every error and warning, write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Make a new revision of the existing tile with this etag (from `tile get`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
    pub etag: Option<i64>,
    /// For a new revision: what changed and why.
    #[arg(long, value_name = "TEXT", requires = "etag")]
    pub note: Option<String>,
}

/// The request, from the arguments and the document's text.
pub fn request(args: &Args, config_json: String) -> Result<ImportPartnerConfigRequest, CliError> {
    if config_json.trim().is_empty() {
        return Err(CliError::usage(format!("{}: the document is empty", args.file)));
    }
    Ok(ImportPartnerConfigRequest {
        config_json,
        id: args.id.clone().unwrap_or_default(),
        partner_id: args.partner.clone().unwrap_or_default(),
        workspace_id: args.workspace.clone().unwrap_or_default(),
        dry_run: args.dry_run,
        etag: args.etag.unwrap_or(0),
        note: args.note.clone().unwrap_or_default(),
        maintenance: None,
    })
}

/// Runs `tile import`.
pub async fn run(args: Args, ctx: &Ctx) -> anyhow::Result<()> {
    let req = request(&args, read_document(&args.file)?)?;
    let mut registry = ctx.registry()?;
    let resp = rpc(
        "ImportPartnerConfig",
        registry.import_partner_config(ctx.request(req)?).await,
    )?;
    if !args.dry_run {
        return print_tile(ctx, resp.tile.as_ref(), &resp.warnings);
    }
    #[derive(serde::Serialize)]
    struct DryRun {
        tile: Option<TileView>,
        errors: Vec<IssueView>,
        warnings: Vec<IssueView>,
    }
    let view = DryRun {
        tile: resp.tile.as_ref().map(TileView::from),
        errors: resp.errors.iter().map(IssueView::from).collect(),
        warnings: resp.warnings.iter().map(IssueView::from).collect(),
    };
    if let Some(text) = structured(ctx.format, &view)? {
        out(&text)?;
    } else {
        let tile = resp
            .tile
            .as_ref()
            .map_or(String::new(), |t| format!("tile {}, ", t.id));
        let mut text = format!(
            "dry run: {tile}{} error(s), {} warning(s); nothing was written\n",
            resp.errors.len(),
            resp.warnings.len()
        );
        if !resp.errors.is_empty() {
            text.push_str("\nerrors:\n");
            text.push_str(&issues_table(&resp.errors));
        }
        if !resp.warnings.is_empty() {
            text.push_str("\nwarnings:\n");
            text.push_str(&issues_table(&resp.warnings));
        }
        out(&text)?;
    }
    if resp.errors.is_empty() {
        Ok(())
    } else {
        Err(CliError::usage(format!(
            "{}: the document has {} error(s)",
            args.file,
            resp.errors.len()
        ))
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tile::TileCommand;
    use crate::tile::testing::{parse, parse_exit_code};

    fn build(argv: &[&str], doc: &str) -> Result<ImportPartnerConfigRequest, CliError> {
        match parse(argv).unwrap() {
            TileCommand::Import(a) => request(&a, doc.to_owned()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn requests_from_argv() {
        let doc = r#"{"name": "Riverflow"}"#;
        let cases: Vec<(&[&str], ImportPartnerConfigRequest)> = vec![
            (
                &["import", "r.json"],
                ImportPartnerConfigRequest {
                    config_json: doc.into(),
                    ..Default::default()
                },
            ),
            (
                &[
                    "import",
                    "r.json",
                    "--id",
                    "riverflow",
                    "--partner",
                    "rf",
                    "--dry-run",
                ],
                ImportPartnerConfigRequest {
                    config_json: doc.into(),
                    id: "riverflow".into(),
                    partner_id: "rf".into(),
                    dry_run: true,
                    ..Default::default()
                },
            ),
            (
                &["import", "-", "--workspace", "6051921418418893"],
                ImportPartnerConfigRequest {
                    config_json: doc.into(),
                    workspace_id: "6051921418418893".into(),
                    ..Default::default()
                },
            ),
            (
                &["import", "r.json", "--etag", "42", "--note", "adds GCP"],
                ImportPartnerConfigRequest {
                    config_json: doc.into(),
                    etag: 42,
                    note: "adds GCP".into(),
                    ..Default::default()
                },
            ),
        ];
        for (argv, want) in cases {
            assert_eq!(build(argv, doc).unwrap(), want, "{argv:?}");
        }
    }

    #[test]
    fn bad_input_exits_2() {
        assert_eq!(parse_exit_code(&["import"]), 2, "FILE is required");
        assert_eq!(
            parse_exit_code(&["import", "r.json", "--note", "x"]),
            2,
            "--note needs --etag"
        );
        assert_eq!(parse_exit_code(&["import", "r.json", "--etag", "0"]), 2);
        assert_eq!(parse_exit_code(&["import", "r.json", "--etag", "abc"]), 2);
        assert_eq!(build(&["import", "r.json"], "  \n").unwrap_err().exit_code(), 2);
    }
}
