//! `tilewave tile history TILE`: the audit records of one tile, oldest
//! first, every page fetched.

use tilewave_proto::common::v1::{AuditRecord, PageRequest};
use tilewave_proto::registry::v1::GetHistoryRequest;

use crate::client::{Ctx, out};
use crate::error::{CliError, rpc};
use crate::names::short_time;
use crate::output::{Table, structured};
use crate::view::AuditView;

/// Examples shown by `--help`.
const EXAMPLES: &str = "\
Examples:
  tilewave tile history riverflow
  tilewave tile history riverflow --revision 2 -o yaml";

/// How many records one page asks for.
pub const PAGE_SIZE: i32 = 100;

/// Arguments of `tile history`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// The tile's id.
    pub tile: String,
    /// Only records about this revision.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
    pub revision: Option<i64>,
}

/// The request for the page after `page_token`.
pub fn request(args: &Args, page_token: &str) -> Result<GetHistoryRequest, CliError> {
    Ok(GetHistoryRequest {
        id: args.tile.clone(),
        revision: args.revision.unwrap_or(0),
        range: None,
        page: Some(PageRequest {
            page_size: PAGE_SIZE,
            page_token: page_token.to_owned(),
        }),
    })
}

/// The records as a table.
pub fn render(records: &[AuditRecord]) -> String {
    let mut t = Table::new(&["AT", "ACTOR", "ACTION", "REV", "SUMMARY"]);
    for r in records {
        t.row(vec![
            short_time(r.at.as_ref()).unwrap_or_default(),
            r.actor.clone(),
            r.action.clone(),
            r.object_revision.to_string(),
            r.summary.clone(),
        ]);
    }
    t.render()
}

/// Runs `tile history`.
pub async fn run(args: Args, ctx: &Ctx) -> anyhow::Result<()> {
    let mut registry = ctx.registry()?;
    let mut records = Vec::new();
    let mut token = String::new();
    loop {
        let resp = rpc(
            "GetHistory",
            registry.get_history(ctx.request(request(&args, &token)?)?).await,
        )?;
        records.extend(resp.records);
        if resp.next_page_token.is_empty() {
            break;
        }
        anyhow::ensure!(
            resp.next_page_token != token,
            "GetHistory returned the same page token twice"
        );
        token = resp.next_page_token;
    }
    let views: Vec<AuditView> = records.iter().map(AuditView::from).collect();
    match structured(ctx.format, &views)? {
        Some(text) => out(&text),
        None => out(&render(&records)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tile::TileCommand;
    use crate::tile::testing::{parse, parse_exit_code};

    #[test]
    fn requests_from_argv() {
        let TileCommand::History(a) = parse(&["history", "riverflow", "--revision", "2"]).unwrap() else {
            panic!()
        };
        let r = request(&a, "t1").unwrap();
        assert_eq!((r.id.as_str(), r.revision), ("riverflow", 2));
        assert_eq!(r.page.unwrap().page_token, "t1");
        assert_eq!(parse_exit_code(&["history"]), 2);
    }

    #[test]
    fn renders_records() {
        let text = render(&[AuditRecord {
            actor: "ada".into(),
            action: "RecordSignOff".into(),
            object_revision: 2,
            summary: "signed off as ENGINEERING on revision 2".into(),
            at: Some(prost_types::Timestamp { seconds: 0, nanos: 0 }),
            ..AuditRecord::default()
        }]);
        assert_eq!(
            text,
            "AT                    ACTOR  ACTION         REV  SUMMARY\n\
             1970-01-01T00:00:00Z  ada    RecordSignOff  2    signed off as ENGINEERING on revision 2\n"
        );
    }
}
