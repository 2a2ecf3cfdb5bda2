//! `tilewave tile where TILE`: where a tile is live (WhereIsTile): per
//! region, the live revision and since when, and whether the region's agent
//! reports the same (drift is repaired by reconciliation).

use tilewave_proto::rollout::v1::{RegionPlacement, WhereIsTileRequest};

use crate::client::{Ctx, out};
use crate::error::{CliError, rpc};
use crate::names::{format_time, short_time};
use crate::output::{Table, structured};

/// Examples shown by `--help`.
const EXAMPLES: &str = "\
Examples:
  tilewave tile where riverflow
  tilewave tile where riverflow --regions gcp:me-central2,aws:eu-west-1
  tilewave tile where riverflow --all -o json    # regions without the tile too";

/// Arguments of `tile where`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// The tile's id.
    pub tile: String,
    /// Only these regions (comma separated).
    #[arg(long, value_name = "REGION,...", value_delimiter = ',')]
    pub regions: Vec<String>,
    /// Show regions where the tile is not live too.
    #[arg(long)]
    pub all: bool,
}

/// The request.
pub fn request(args: &Args) -> Result<WhereIsTileRequest, CliError> {
    Ok(WhereIsTileRequest {
        tile_id: args.tile.clone(),
        regions: args.regions.clone(),
        page: None,
    })
}

/// One region, for JSON/YAML.
#[derive(Debug, serde::Serialize)]
struct PlacementView {
    region: String,
    live_revision: i64,
    since: Option<String>,
    desired_revision: i64,
    reported_revision: i64,
    in_sync: bool,
    hidden: bool,
    rollout_id: String,
}

impl From<&RegionPlacement> for PlacementView {
    fn from(p: &RegionPlacement) -> Self {
        Self {
            region: p.region.clone(),
            live_revision: p.live_revision,
            since: format_time(p.since.as_ref()),
            desired_revision: p.desired_revision,
            reported_revision: p.reported_revision,
            in_sync: p.in_sync,
            hidden: p.hidden,
            rollout_id: p.rollout_id.clone(),
        }
    }
}

/// The table, and a count line: `live in 70 of 70 regions (revision 1)`.
pub fn render(placements: &[RegionPlacement], all: bool) -> String {
    let mut t = Table::new(&["REGION", "LIVE REV", "SINCE", "AGENT", "ROLL-OUT"]);
    let shown = placements
        .iter()
        .filter(|p| all || p.live_revision > 0 || p.desired_revision > 0);
    for p in shown {
        let agent = if p.in_sync {
            "in sync".to_owned()
        } else {
            format!("reports rev {} (repairing)", p.reported_revision)
        };
        t.row(vec![
            p.region.clone(),
            if p.live_revision > 0 {
                p.live_revision.to_string()
            } else {
                "-".into()
            },
            short_time(p.since.as_ref()).unwrap_or_else(|| "-".into()),
            format!("{agent}{}", if p.hidden { ", hidden" } else { "" }),
            if p.rollout_id.is_empty() {
                "-".into()
            } else {
                p.rollout_id.clone()
            },
        ]);
    }
    let live = placements.iter().filter(|p| p.live_revision > 0).count();
    let mut revs: Vec<i64> = placements
        .iter()
        .map(|p| p.live_revision)
        .filter(|r| *r > 0)
        .collect();
    revs.sort_unstable();
    revs.dedup();
    let revs: Vec<String> = revs.iter().map(i64::to_string).collect();
    let mut text = t.render();
    text.push_str(&format!(
        "live in {live} of {} regions{}\n",
        placements.len(),
        if revs.is_empty() {
            String::new()
        } else {
            format!(" (revision {})", revs.join(", "))
        }
    ));
    text
}

/// Runs `tile where`.
pub async fn run(args: Args, ctx: &Ctx) -> anyhow::Result<()> {
    let req = request(&args)?;
    let resp = rpc(
        "WhereIsTile",
        ctx.rollouts()?.where_is_tile(ctx.request(req)?).await,
    )?;
    let views: Vec<PlacementView> = resp.placements.iter().map(PlacementView::from).collect();
    if let Some(text) = structured(ctx.format, &views)? {
        return out(&text);
    }
    out(&render(&resp.placements, args.all))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::{parse_time, to_proto_time};
    use crate::tile::TileCommand;
    use crate::tile::testing::parse;

    #[test]
    fn requests_from_argv() {
        let TileCommand::Where(a) = parse(&["where", "riverflow", "--regions", "gcp:a,aws:b"]).unwrap()
        else {
            panic!()
        };
        let r = request(&a).unwrap();
        assert_eq!((r.tile_id.as_str(), r.regions.len()), ("riverflow", 2));
    }

    #[test]
    fn rendering() {
        let p = |region: &str, rev: i64| RegionPlacement {
            region: region.into(),
            live_revision: rev,
            desired_revision: rev,
            reported_revision: rev,
            in_sync: true,
            since: (rev > 0).then(|| to_proto_time(parse_time("2026-12-01 17:05").unwrap())),
            rollout_id: if rev > 0 {
                "riverflow-r1".into()
            } else {
                String::new()
            },
            ..Default::default()
        };
        let all = [p("aws:a", 1), p("gcp:b", 1), p("azure:c", 0)];
        let text = render(&all, false);
        assert!(
            text.contains("aws:a   1         2026-12-01T17:05:00Z  in sync  riverflow-r1"),
            "{text}"
        );
        assert!(!text.contains("azure:c"), "{text}");
        assert!(text.ends_with("live in 2 of 3 regions (revision 1)\n"), "{text}");
        assert!(render(&all, true).contains("azure:c"));
    }
}
