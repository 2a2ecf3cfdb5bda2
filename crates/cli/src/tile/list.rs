//! `tilewave tile list`: tiles at their latest revisions, filtered, every
//! page fetched.

use tilewave_proto::common::v1::PageRequest;
use tilewave_proto::registry::v1::{ListTilesRequest, Tile};

use crate::client::{Ctx, out};
use crate::error::{CliError, rpc};
use crate::names::{Category, CloudArg, State, cloud_name, role_name, short_time, state_name};
use crate::output::{Table, structured};
use crate::view::TileView;

/// Examples shown by `--help`.
const EXAMPLES: &str = "\
Examples:
  tilewave tile list
  tilewave tile list --state draft --state validating
  tilewave tile list --cloud gcp --category bi-and-viz -o json
  tilewave tile list --all          # self-test tiles too";

/// How many tiles one page asks for.
pub const PAGE_SIZE: i32 = 100;

/// Arguments of `tile list`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Only tiles in this state (repeat for several).
    #[arg(long = "state", value_name = "S", value_enum)]
    pub states: Vec<State>,
    /// Only this partner's tiles.
    #[arg(long, value_name = "P")]
    pub partner: Option<String>,
    /// Only tiles supporting this cloud.
    #[arg(long, value_name = "C", value_enum)]
    pub cloud: Option<CloudArg>,
    /// Only tiles of this category.
    #[arg(long, value_name = "C", value_enum)]
    pub category: Option<Category>,
    /// Include self-test tiles.
    #[arg(long)]
    pub all: bool,
}

/// The request for the page after `page_token` (empty: the first).
pub fn request(args: &Args, page_token: &str) -> Result<ListTilesRequest, CliError> {
    Ok(ListTilesRequest {
        states: args.states.iter().map(|s| s.proto() as i32).collect(),
        partner_id: args.partner.clone().unwrap_or_default(),
        cloud: args.cloud.map_or(0, |c| c.proto() as i32),
        category: args.category.map_or(0, |c| c.proto() as i32),
        include_self_test: args.all,
        include_raw_config: false,
        page: Some(PageRequest {
            page_size: PAGE_SIZE,
            page_token: page_token.to_owned(),
        }),
    })
}

/// The tiles as a table.
pub fn render(tiles: &[Tile]) -> String {
    if tiles.is_empty() {
        return "no tiles\n".into();
    }
    let mut t = Table::new(&[
        "ID",
        "NAME",
        "REV",
        "STATE",
        "PARTNER",
        "CLOUDS",
        "GA",
        "MISSING SIGN-OFFS",
    ]);
    for tile in tiles {
        let clouds: Vec<String> = tile
            .config
            .as_ref()
            .map(|c| c.supported_clouds.iter().map(|x| cloud_name(*x)).collect())
            .unwrap_or_default();
        let missing: Vec<String> = tile.missing_sign_offs.iter().map(|r| role_name(*r)).collect();
        t.row(vec![
            tile.id.clone(),
            tile.name.clone(),
            tile.latest_revision.max(tile.revision).to_string(),
            state_name(tile.state),
            tile.partner_id.clone(),
            if clouds.is_empty() {
                "-".into()
            } else {
                clouds.join(",")
            },
            short_time(tile.ga_time.as_ref()).unwrap_or_else(|| "-".into()),
            if missing.is_empty() {
                "-".into()
            } else {
                missing.join(",")
            },
        ]);
    }
    t.render()
}

/// Runs `tile list`, paging until the last page.
pub async fn run(args: Args, ctx: &Ctx) -> anyhow::Result<()> {
    let mut registry = ctx.registry()?;
    let mut tiles = Vec::new();
    let mut token = String::new();
    loop {
        let resp = rpc(
            "ListTiles",
            registry.list_tiles(ctx.request(request(&args, &token)?)?).await,
        )?;
        tiles.extend(resp.tiles);
        if resp.next_page_token.is_empty() {
            break;
        }
        anyhow::ensure!(
            resp.next_page_token != token,
            "ListTiles returned the same page token twice"
        );
        token = resp.next_page_token;
    }
    let views: Vec<TileView> = tiles.iter().map(TileView::from).collect();
    match structured(ctx.format, &views)? {
        Some(text) => out(&text),
        None => out(&render(&tiles)),
    }
}

#[cfg(test)]
mod tests {
    use tilewave_proto::common::v1::{Cloud, PartnerCategory, PartnerConfig, TileState};

    use super::*;
    use crate::tile::TileCommand;
    use crate::tile::testing::{parse, parse_exit_code};

    fn build(argv: &[&str], token: &str) -> ListTilesRequest {
        let TileCommand::List(a) = parse(argv).unwrap() else {
            panic!()
        };
        request(&a, token).unwrap()
    }

    #[test]
    fn requests_from_argv() {
        let first = build(&["list"], "");
        assert_eq!(
            first,
            ListTilesRequest {
                page: Some(PageRequest {
                    page_size: PAGE_SIZE,
                    page_token: String::new()
                }),
                ..Default::default()
            }
        );
        let r = build(
            &[
                "list",
                "--state",
                "draft",
                "--state",
                "signed-off",
                "--partner",
                "rf",
                "--cloud",
                "gcp",
                "--category",
                "bi-and-viz",
                "--all",
            ],
            "next",
        );
        assert_eq!(
            r.states,
            vec![TileState::Draft as i32, TileState::SignedOff as i32]
        );
        assert_eq!(r.partner_id, "rf");
        assert_eq!(r.cloud, Cloud::Gcp as i32);
        assert_eq!(r.category, PartnerCategory::BiAndViz as i32);
        assert!(r.include_self_test);
        assert_eq!(r.page.unwrap().page_token, "next");
    }

    #[test]
    fn unknown_filter_values_exit_2() {
        assert_eq!(parse_exit_code(&["list", "--state", "done"]), 2);
        assert_eq!(parse_exit_code(&["list", "--cloud", "oracle"]), 2);
        assert_eq!(parse_exit_code(&["list", "--category", "gardening"]), 2);
    }

    #[test]
    fn renders_a_table() {
        let tiles = vec![Tile {
            id: "riverflow".into(),
            name: "Riverflow".into(),
            revision: 1,
            latest_revision: 1,
            state: TileState::Draft as i32,
            partner_id: "riverflow".into(),
            config: Some(PartnerConfig {
                supported_clouds: vec![Cloud::Aws as i32, Cloud::Gcp as i32],
                ..PartnerConfig::default()
            }),
            ..Tile::default()
        }];
        assert_eq!(
            render(&tiles),
            "ID         NAME       REV  STATE  PARTNER    CLOUDS   GA  MISSING SIGN-OFFS\n\
             riverflow  Riverflow  1    DRAFT  riverflow  aws,gcp  -   -\n"
        );
        assert_eq!(render(&[]), "no tiles\n");
    }
}
