//! `tilewave tile create`: creates a tile from a typed configuration (the
//! shape `tile get -o json` prints under `config`), rather than from the
//! partner's own document (`tile import`).

use tilewave_proto::registry::v1::CreateTileRequest;

use crate::client::Ctx;
use crate::error::{CliError, rpc};
use crate::tile::{print_tile, read_document};
use crate::view::ConfigView;

/// Examples shown by `--help`.
const EXAMPLES: &str = "\
The configuration file is JSON in the typed shape that `tilewave tile get TILE -o json`
prints under \"config\" (enum values as words: \"bi-and-viz\", \"sql-endpoint\", \"gcp\").

Examples:
  tilewave tile create --name \"Glacier Data Quality\" --config glacier.json
  tilewave tile get riverflow -o json | jq .tile.config > copy.json
  tilewave tile create --name \"Riverflow Copy\" --config copy.json --id riverflow-copy --dry-run";

/// Arguments of `tile create`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// The display name; overrides the configuration's `name`.
    #[arg(long)]
    pub name: Option<String>,
    /// The typed configuration as JSON, or `-` for stdin.
    #[arg(long, value_name = "FILE")]
    pub config: String,
    /// The tile's id; by default the slug of the name.
    #[arg(long)]
    pub id: Option<String>,
    /// The partner's id; by default the tile id.
    #[arg(long, value_name = "ID")]
    pub partner: Option<String>,
    /// Create a self-test tile for this workspace.
    #[arg(long, value_name = "ID")]
    pub self_test_workspace: Option<String>,
    /// Validate only; nothing is written.
    #[arg(long)]
    pub dry_run: bool,
}

/// The request, from the arguments and the configuration file's text.
pub fn request(args: &Args, config_json: &str) -> Result<CreateTileRequest, CliError> {
    let mut view: ConfigView = serde_json::from_str(config_json)
        .map_err(|e| CliError::usage(format!("{}: not a typed configuration: {e}", args.config)))?;
    if let Some(name) = &args.name {
        view.name.clone_from(name);
    }
    if view.name.trim().is_empty() {
        return Err(CliError::usage(
            "the tile needs a name: give --name or set \"name\" in the configuration",
        ));
    }
    let config = view
        .to_proto()
        .map_err(|errs| CliError::usage(format!("{}:\n  {}", args.config, errs.join("\n  "))))?;
    Ok(CreateTileRequest {
        id: args.id.clone().unwrap_or_default(),
        partner_id: args.partner.clone().unwrap_or_default(),
        config: Some(config),
        self_test: args.self_test_workspace.is_some(),
        workspace_id: args.self_test_workspace.clone().unwrap_or_default(),
        dry_run: args.dry_run,
    })
}

/// Runs `tile create`.
pub async fn run(args: Args, ctx: &Ctx) -> anyhow::Result<()> {
    let req = request(&args, &read_document(&args.config)?)?;
    let mut registry = ctx.registry()?;
    let resp = rpc("CreateTile", registry.create_tile(ctx.request(req)?).await)?;
    print_tile(ctx, resp.tile.as_ref(), &resp.warnings)
}

#[cfg(test)]
mod tests {
    use tilewave_proto::common::v1::{Cloud, PartnerCategory};

    use super::*;
    use crate::tile::TileCommand;
    use crate::tile::testing::{parse, parse_exit_code};

    fn build(argv: &[&str], doc: &str) -> Result<CreateTileRequest, CliError> {
        match parse(argv).unwrap() {
            TileCommand::Create(a) => request(&a, doc),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn requests_from_argv() {
        let doc = r#"{"name": "Old", "category": "data-quality", "supported_clouds": ["aws", "gcp"]}"#;
        let req = build(
            &["create", "--name", "Glacier Data Quality", "--config", "g.json"],
            doc,
        )
        .unwrap();
        let config = req.config.unwrap();
        assert_eq!(config.name, "Glacier Data Quality");
        assert_eq!(config.category, PartnerCategory::DataQuality as i32);
        assert_eq!(
            config.supported_clouds,
            vec![Cloud::Aws as i32, Cloud::Gcp as i32]
        );
        assert!(!req.self_test && !req.dry_run && req.id.is_empty());

        let req = build(
            &[
                "create",
                "--config",
                "g.json",
                "--id",
                "g",
                "--partner",
                "p",
                "--self-test-workspace",
                "77",
                "--dry-run",
            ],
            doc,
        )
        .unwrap();
        assert_eq!((req.id.as_str(), req.partner_id.as_str()), ("g", "p"));
        assert!(req.self_test && req.dry_run);
        assert_eq!(req.workspace_id, "77");
        assert_eq!(req.config.unwrap().name, "Old");
    }

    #[test]
    fn bad_input_exits_2() {
        assert_eq!(
            parse_exit_code(&["create", "--name", "x"]),
            2,
            "--config is required"
        );
        let cases = [
            ("not json", "not a typed configuration"),
            (r#"{"category": "ingest"}"#, "needs a name"),
            (r#"{"name": "x", "colour": "blue"}"#, "colour"),
            (
                r#"{"name": "x", "supported_clouds": ["oracle"]}"#,
                "$.supported_clouds[0]",
            ),
        ];
        for (doc, says) in cases {
            let err = build(&["create", "--config", "g.json"], doc).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{doc}");
            assert!(err.to_string().contains(says), "{doc}: {err}");
        }
    }
}
