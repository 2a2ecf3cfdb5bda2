//! `tilewave tile gtm TILE`: a tile's go-to-market items (status, owner,
//! due date, link) and how many are pending; `tilewave tile gtm TILE set
//! ITEM ...` sets one. A GA date waits until every item is done (or
//! `tilewave tile set-ga --gtm-override REASON`).

use clap::Subcommand;
use tilewave_proto::registry::v1::{GetTileRequest, GtmItemState, GtmStatus, SetGtmItemRequest, Tile};

use crate::client::{Ctx, out};
use crate::error::{CliError, rpc};
use crate::output::{Table, structured};
use crate::view::TileView;

/// Examples shown by `--help`.
const EXAMPLES: &str = "\
ITEM is mini-site, logo, blog or docs; the partnership agreement is done when legal
signs off (`tilewave tile signoff TILE --role legal`).

Examples:
  tilewave tile gtm riverflow
  tilewave tile gtm riverflow set blog --pending --owner \"partner marketing\" --due 2026-12-01
  tilewave tile gtm riverflow set blog --done --link https://riverflow.example/blog/launch
  tilewave tile gtm riverflow set logo --done --owner design --due 2026-11-20";

/// Arguments of `tile gtm`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// The tile's id.
    pub tile: String,
    /// What to do; without it, show the items.
    #[command(subcommand)]
    pub action: Option<GtmAction>,
}

/// `tile gtm TILE <action>`.
#[derive(Debug, Clone, Subcommand)]
pub enum GtmAction {
    /// Set one item: its status, owner, due date or link.
    Set(SetArgs),
}

/// Arguments of `tile gtm TILE set`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = EXAMPLES)]
#[command(group = clap::ArgGroup::new("status").args(["done", "pending"]))]
pub struct SetArgs {
    /// mini-site, logo, blog or docs.
    pub item: String,
    /// The item is done (a page item needs its --link).
    #[arg(long)]
    pub done: bool,
    /// The item is still to do.
    #[arg(long)]
    pub pending: bool,
    /// Who delivers it (required the first time).
    #[arg(long, value_name = "NAME")]
    pub owner: Option<String>,
    /// When it is due, YYYY-MM-DD (required the first time).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = parse_due)]
    pub due: Option<String>,
    /// The item's page, an https URL.
    #[arg(long, value_name = "URL")]
    pub link: Option<String>,
    /// The etag to name; by default none is checked.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
    pub etag: Option<i64>,
}

/// A due date: exactly YYYY-MM-DD.
fn parse_due(s: &str) -> Result<String, String> {
    let shaped = s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    match shaped.then(|| s.parse::<jiff::civil::Date>()) {
        Some(Ok(_)) => Ok(s.to_owned()),
        _ => Err(format!("{s:?} is not a date YYYY-MM-DD")),
    }
}

/// The request of `tile gtm TILE set`.
pub fn set_request(tile: &str, a: &SetArgs) -> Result<SetGtmItemRequest, CliError> {
    let status = if a.done {
        GtmStatus::Done
    } else if a.pending {
        GtmStatus::Pending
    } else {
        GtmStatus::Unspecified
    };
    if status == GtmStatus::Unspecified && a.owner.is_none() && a.due.is_none() && a.link.is_none() {
        return Err(CliError::usage(
            "nothing to set: give --done, --pending, --owner, --due or --link",
        ));
    }
    Ok(SetGtmItemRequest {
        id: tile.to_owned(),
        item: a.item.clone(),
        status: status as i32,
        owner: a.owner.clone().unwrap_or_default(),
        due: a.due.clone().unwrap_or_default(),
        link: a.link.clone().unwrap_or_default(),
        etag: a.etag.unwrap_or(0),
    })
}

fn status_name(raw: i32) -> &'static str {
    match GtmStatus::try_from(raw) {
        Ok(GtmStatus::Done) => "done",
        Ok(GtmStatus::Pending | GtmStatus::Unspecified) | Err(_) => "pending",
    }
}

fn pending(items: &[GtmItemState]) -> Vec<&str> {
    items
        .iter()
        .filter(|i| i.status != GtmStatus::Done as i32)
        .map(|i| i.item.as_str())
        .collect()
}

/// `2 of 5 pending (blog, docs)`, or `all 5 done`.
pub fn pending_summary(items: &[GtmItemState]) -> String {
    let p = pending(items);
    if p.is_empty() {
        format!("all {} done", items.len())
    } else {
        format!("{} of {} pending ({})", p.len(), items.len(), p.join(", "))
    }
}

/// The items as a table, then the pending count and what to do.
pub fn render(tile: &Tile) -> String {
    if tile.gtm.is_empty() {
        return format!(
            "tile {} has no go-to-market items (a self-test tile is never launched)\n",
            tile.id
        );
    }
    let mut t = Table::new(&["ITEM", "STATUS", "OWNER", "DUE", "LINK"]);
    for i in &tile.gtm {
        let owner = match (i.owner.is_empty(), i.derived) {
            (true, _) => "-".to_owned(),
            (false, true) => format!("{} (sign-off)", i.owner),
            (false, false) => i.owner.clone(),
        };
        t.row(vec![
            i.item.clone(),
            status_name(i.status).into(),
            owner,
            if i.due.is_empty() {
                "-".into()
            } else {
                i.due.clone()
            },
            if i.link.is_empty() {
                "-".into()
            } else {
                i.link.clone()
            },
        ]);
    }
    let mut text = format!("Go-to-market items of {}:\n", tile.id);
    text.push_str(&t.render());
    let p = pending(&tile.gtm);
    if p.is_empty() {
        text.push_str("\nall done: a GA date can be committed\n");
    } else {
        text.push_str(&format!(
            "\n{} pending: {}\nset one with `tilewave tile gtm {} set ITEM --done ...`, or commit a GA date anyway \
             with `tilewave tile set-ga {} TIME --gtm-override REASON`\n",
            p.len(),
            p.join(", "),
            tile.id,
            tile.id
        ));
    }
    if let Some(o) = &tile.gtm_override {
        text.push_str(&format!(
            "GA committed with items pending ({}) by {}: {}\n",
            o.pending.join(", "),
            o.by,
            o.reason
        ));
    }
    text
}

/// Runs `tile gtm`.
pub async fn run(args: Args, ctx: &Ctx) -> anyhow::Result<()> {
    let mut registry = ctx.registry()?;
    let tile = match &args.action {
        None => {
            let req = GetTileRequest {
                id: args.tile.clone(),
                revision: 0,
            };
            rpc("GetTile", registry.get_tile(ctx.request(req)?).await)?.tile
        }
        Some(GtmAction::Set(a)) => {
            let req = set_request(&args.tile, a)?;
            rpc("SetGtmItem", registry.set_gtm_item(ctx.request(req)?).await)?.tile
        }
    };
    let tile = tile.ok_or_else(|| anyhow::anyhow!("the response holds no tile"))?;
    match structured(ctx.format, &TileView::from(&tile))? {
        Some(text) => out(&text),
        None => out(&render(&tile)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tile::TileCommand;
    use crate::tile::testing::{parse, parse_exit_code};

    fn set(argv: &[&str]) -> Result<SetGtmItemRequest, CliError> {
        let TileCommand::Gtm(Args {
            tile,
            action: Some(GtmAction::Set(a)),
        }) = parse(argv).unwrap()
        else {
            panic!("{argv:?}")
        };
        set_request(&tile, &a)
    }

    #[test]
    fn requests_from_argv() {
        let TileCommand::Gtm(a) = parse(&["gtm", "rf"]).unwrap() else {
            panic!()
        };
        assert!(a.action.is_none(), "shows the items");
        let want = SetGtmItemRequest {
            id: "rf".into(),
            item: "blog".into(),
            status: GtmStatus::Done as i32,
            owner: "ana".into(),
            due: "2026-12-01".into(),
            link: "https://rf.example/blog".into(),
            etag: 4,
        };
        let argv = [
            "gtm",
            "rf",
            "set",
            "blog",
            "--done",
            "--owner",
            "ana",
            "--due",
            "2026-12-01",
            "--link",
            "https://rf.example/blog",
            "--etag",
            "4",
        ];
        assert_eq!(set(&argv).unwrap(), want);
        assert_eq!(
            set(&["gtm", "rf", "set", "logo", "--pending"]).unwrap(),
            SetGtmItemRequest {
                id: "rf".into(),
                item: "logo".into(),
                status: GtmStatus::Pending as i32,
                ..Default::default()
            }
        );
        assert!(set(&["gtm", "rf", "set", "logo"]).is_err(), "nothing to set");
    }

    #[test]
    fn bad_input_exits_2() {
        for argv in [
            &["gtm", "rf", "set", "logo", "--done", "--pending"][..],
            &["gtm", "rf", "set", "logo", "--due", "1 Dec"],
            &["gtm", "rf", "set", "logo", "--due", "2026-02-30"],
            &["gtm", "rf", "set"],
        ] {
            assert_eq!(parse_exit_code(argv), 2, "{argv:?}");
        }
    }

    #[test]
    fn renders_items_pending_count_and_the_override() {
        let item = |item: &str, done: bool, owner: &str, derived: bool| GtmItemState {
            item: item.into(),
            status: if done { GtmStatus::Done } else { GtmStatus::Pending } as i32,
            owner: owner.into(),
            derived,
            ..Default::default()
        };
        let mut t = Tile {
            id: "rf".into(),
            gtm: vec![
                item("agreement", true, "legal", true),
                item("mini-site", false, "ana", false),
                item("blog", false, "", false),
            ],
            ..Default::default()
        };
        let text = render(&t);
        assert!(text.contains("legal (sign-off)"), "{text}");
        assert!(text.contains("\n2 pending: mini-site, blog\n"), "{text}");
        assert!(text.contains("--gtm-override REASON"), "{text}");
        assert_eq!(pending_summary(&t.gtm), "2 of 3 pending (mini-site, blog)");
        t.gtm_override = Some(tilewave_proto::registry::v1::GtmOverride {
            reason: "late blog".into(),
            by: "bob".into(),
            pending: vec!["blog".into()],
            ..Default::default()
        });
        assert!(render(&t).contains("GA committed with items pending (blog) by bob: late blog"));
        t.gtm.truncate(1);
        assert!(render(&t).contains("all done"));
        assert!(render(&Tile::default()).contains("no go-to-market items"));
    }
}
