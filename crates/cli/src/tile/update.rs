//! `tilewave tile update TILE FILE`: a new revision of a tile from a
//! changed partner document. After GA it is a maintenance revision and needs
//! the engineering and partner sign-offs again.

use tilewave_proto::registry::v1::UpdateTileRequest;
use tilewave_proto::registry::v1::update_tile_request::Source;

use crate::client::Ctx;
use crate::error::{CliError, rpc};
use crate::tile::{Current, given_or_read, print_tile, read_document, read_if};

/// Examples shown by `--help`.
const EXAMPLES: &str = "\
Examples:
  tilewave tile update lumen-dashboards lumen-v2.json --note \"adds GCP support\"
  tilewave tile update riverflow riverflow.json --dry-run
  cat riverflow.json | tilewave tile update riverflow - --etag 57";

/// Arguments of `tile update`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// The tile's id.
    pub tile: String,
    /// The changed JSON document, or `-` for stdin.
    #[arg(value_name = "FILE")]
    pub file: String,
    /// What changed and why; shown in the revision list.
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
    /// A new partner id.
    #[arg(long, value_name = "ID")]
    pub partner: Option<String>,
    /// Validate only; nothing is written.
    #[arg(long)]
    pub dry_run: bool,
    /// The etag to name; by default the tile is read first.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
    pub etag: Option<i64>,
}

/// Whether the tile must be read first.
pub fn needs_read(args: &Args) -> bool {
    args.etag.is_none()
}

/// The request, from the arguments, the document and the tile.
pub fn request(
    args: &Args,
    config_json: String,
    current: Option<Current>,
) -> Result<UpdateTileRequest, CliError> {
    if config_json.trim().is_empty() {
        return Err(CliError::usage(format!("{}: the document is empty", args.file)));
    }
    Ok(UpdateTileRequest {
        id: args.tile.clone(),
        etag: given_or_read(args.etag, current, |c| c.etag)?,
        note: args.note.clone().unwrap_or_default(),
        maintenance: None,
        partner_id: args.partner.clone().unwrap_or_default(),
        dry_run: args.dry_run,
        source: Some(Source::ConfigJson(config_json)),
    })
}

/// Runs `tile update`.
pub async fn run(args: Args, ctx: &Ctx) -> anyhow::Result<()> {
    let document = read_document(&args.file)?;
    let mut registry = ctx.registry()?;
    let current = read_if(ctx, &mut registry, &args.tile, needs_read(&args)).await?;
    let req = request(&args, document, current)?;
    let resp = rpc("UpdateTile", registry.update_tile(ctx.request(req)?).await)?;
    print_tile(ctx, resp.tile.as_ref(), &resp.warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tile::TileCommand;
    use crate::tile::testing::{current, parse, parse_exit_code};

    #[test]
    fn requests_from_argv() {
        let doc = r#"{"name": "Lumen"}"#;
        let TileCommand::Update(a) = parse(&["update", "lumen", "l.json", "--note", "adds GCP"]).unwrap()
        else {
            panic!()
        };
        assert!(needs_read(&a));
        assert_eq!(
            request(&a, doc.into(), current(21, 3)).unwrap(),
            UpdateTileRequest {
                id: "lumen".into(),
                etag: 21,
                note: "adds GCP".into(),
                source: Some(Source::ConfigJson(doc.into())),
                ..Default::default()
            }
        );
        let TileCommand::Update(a) = parse(&[
            "update",
            "lumen",
            "-",
            "--etag",
            "5",
            "--dry-run",
            "--partner",
            "lumen-inc",
        ])
        .unwrap() else {
            panic!()
        };
        assert!(!needs_read(&a));
        let r = request(&a, doc.into(), None).unwrap();
        assert_eq!((r.etag, r.dry_run, r.partner_id.as_str()), (5, true, "lumen-inc"));
    }

    #[test]
    fn bad_input_exits_2() {
        assert_eq!(parse_exit_code(&["update", "lumen"]), 2, "FILE is required");
        let TileCommand::Update(a) = parse(&["update", "lumen", "l.json"]).unwrap() else {
            panic!()
        };
        assert_eq!(
            request(&a, "\n".into(), current(1, 1)).unwrap_err().exit_code(),
            2
        );
    }
}
