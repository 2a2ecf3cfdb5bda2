//! `tilewave tile diff TILE REV1 REV2`: what changed between two revisions,
//! as a line diff of the documents as submitted (pretty-printed JSON), or of
//! the typed configurations when a revision has no raw document.

use serde::Serialize;
use tilewave_proto::registry::v1::{GetTileRequest, Tile};

use crate::client::{Ctx, out};
use crate::diff::{Line, diff_lines, unified};
use crate::error::{CliError, rpc};
use crate::output::structured;
use crate::view::ConfigView;

/// Examples shown by `--help`.
const EXAMPLES: &str = "\
Examples:
  tilewave tile diff riverflow 1 2
  tilewave tile diff riverflow 1 2 --context 10
  tilewave tile diff riverflow 1 2 -o json";

/// Arguments of `tile diff`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// The tile's id.
    pub tile: String,
    /// The older revision.
    #[arg(value_parser = clap::value_parser!(i64).range(1..))]
    pub rev1: i64,
    /// The newer revision.
    #[arg(value_parser = clap::value_parser!(i64).range(1..))]
    pub rev2: i64,
    /// Unchanged lines shown around each change.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub context: usize,
}

/// The two reads.
pub fn requests(args: &Args) -> Result<[GetTileRequest; 2], CliError> {
    Ok([args.rev1, args.rev2].map(|revision| GetTileRequest {
        id: args.tile.clone(),
        revision,
    }))
}

/// What is compared: the raw documents when both revisions have one, else
/// the typed configurations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// `raw_config`, pretty-printed.
    RawConfig,
    /// `config` rendered as pretty JSON.
    TypedConfig,
}

/// The texts to compare for two revisions.
pub fn documents(a: &Tile, b: &Tile) -> anyhow::Result<(Source, String, String)> {
    if !a.raw_config.is_empty() && !b.raw_config.is_empty() {
        return Ok((
            Source::RawConfig,
            pretty_raw(&a.raw_config),
            pretty_raw(&b.raw_config),
        ));
    }
    let typed = |t: &Tile| -> anyhow::Result<String> {
        let view = t.config.as_ref().map(ConfigView::from).unwrap_or_default();
        Ok(serde_json::to_string_pretty(&view)?)
    };
    Ok((Source::TypedConfig, typed(a)?, typed(b)?))
}

/// A raw document pretty-printed (keys in document order), or as stored
/// when it is not JSON.
fn pretty_raw(raw: &str) -> String {
    serde_json::from_str::<serde_json::Value>(raw)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| raw.to_owned())
}

/// Runs `tile diff`.
pub async fn run(args: Args, ctx: &Ctx) -> anyhow::Result<()> {
    let mut registry = ctx.registry()?;
    let mut tiles = Vec::with_capacity(2);
    for req in requests(&args)? {
        let resp = rpc("GetTile", registry.get_tile(ctx.request(req)?).await)?;
        tiles.push(
            resp.tile
                .ok_or_else(|| anyhow::anyhow!("GetTile {}: the response holds no tile", args.tile))?,
        );
    }
    let (source, old, new) = documents(&tiles[0], &tiles[1])?;
    let lines = diff_lines(&old, &new);
    #[derive(Serialize)]
    struct DiffView<'a> {
        tile: &'a str,
        from: i64,
        to: i64,
        source: Source,
        changed: bool,
        lines: &'a [Line<'a>],
    }
    let changed = lines.iter().any(|l| !matches!(l, Line::Same(_)));
    let view = DiffView {
        tile: &args.tile,
        from: args.rev1,
        to: args.rev2,
        source,
        changed,
        lines: &lines,
    };
    if let Some(text) = structured(ctx.format, &view)? {
        return out(&text);
    }
    let what = match source {
        Source::RawConfig => "raw_config",
        Source::TypedConfig => "config",
    };
    let label = |r: i64| format!("{} revision {r} ({what})", args.tile);
    let text = unified(&label(args.rev1), &label(args.rev2), &lines, args.context);
    if text.is_empty() {
        out(&format!(
            "no differences between revisions {} and {} ({what})\n",
            args.rev1, args.rev2
        ))
    } else {
        out(&text)
    }
}

#[cfg(test)]
mod tests {
    use tilewave_proto::common::v1::PartnerConfig;

    use super::*;
    use crate::tile::TileCommand;
    use crate::tile::testing::{parse, parse_exit_code};

    #[test]
    fn requests_from_argv() {
        let TileCommand::Diff(a) = parse(&["diff", "riverflow", "1", "2"]).unwrap() else {
            panic!()
        };
        let [r1, r2] = requests(&a).unwrap();
        assert_eq!((r1.id.as_str(), r1.revision, r2.revision), ("riverflow", 1, 2));
        assert_eq!(a.context, 3);
        assert_eq!(parse_exit_code(&["diff", "riverflow", "1"]), 2);
        assert_eq!(parse_exit_code(&["diff", "riverflow", "0", "2"]), 2);
        assert_eq!(parse_exit_code(&["diff", "riverflow", "one", "2"]), 2);
    }

    #[test]
    fn raw_documents_are_pretty_printed_in_document_order() {
        let a = Tile {
            raw_config: r#"{"name":"R","supported_clouds":["AWS"]}"#.into(),
            ..Tile::default()
        };
        let b = Tile {
            raw_config: r#"{"name":"R","supported_clouds":["AWS","GCP"]}"#.into(),
            ..Tile::default()
        };
        let (source, old, new) = documents(&a, &b).unwrap();
        assert_eq!(source, Source::RawConfig);
        let text = unified("1", "2", &diff_lines(&old, &new), 1);
        assert_eq!(
            text,
            "--- 1\n+++ 2\n@@ -3,3 +3,4 @@\n   \"supported_clouds\": [\n-    \"AWS\"\n+    \"AWS\",\n+    \"GCP\"\n   ]\n"
        );
    }

    #[test]
    fn typed_configs_when_a_raw_document_is_missing() {
        let a = Tile {
            raw_config: r#"{"name":"R"}"#.into(),
            config: Some(PartnerConfig {
                name: "R".into(),
                ..PartnerConfig::default()
            }),
            ..Tile::default()
        };
        let b = Tile {
            config: Some(PartnerConfig {
                name: "R2".into(),
                ..PartnerConfig::default()
            }),
            ..Tile::default()
        };
        let (source, old, new) = documents(&a, &b).unwrap();
        assert_eq!(source, Source::TypedConfig);
        let lines = diff_lines(&old, &new);
        assert!(lines.contains(&Line::Removed("  \"name\": \"R\",")), "{lines:?}");
        assert!(lines.contains(&Line::Added("  \"name\": \"R2\",")), "{lines:?}");
    }
}
