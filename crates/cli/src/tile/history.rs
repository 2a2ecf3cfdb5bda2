//! `tilewave tile history TILE`: the audit records of one tile, oldest
//! first, every page fetched. Days older than the registry's audit
//! retention come as summaries, one line each (`N records: action xN, ...`).

use serde::Serialize;
use tilewave_proto::common::v1::{AuditRecord, AuditSummary, PageRequest};
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

/// The summaries, then the records, as a table: a summary is one line, at
/// its day, with its actors, its revisions and its counts per action.
pub fn render(summaries: &[AuditSummary], records: &[AuditRecord]) -> String {
    let mut t = Table::new(&["AT", "ACTOR", "ACTION", "REV", "SUMMARY"]);
    for s in summaries {
        t.row(vec![
            day(s),
            actors(s),
            "(summary)".to_owned(),
            revisions(s),
            counts(s),
        ]);
    }
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

/// A summary's UTC day (`2026-01-05`).
fn day(s: &AuditSummary) -> String {
    short_time(s.period_start.as_ref())
        .and_then(|t| t.get(..10).map(str::to_owned))
        .unwrap_or_default()
}

fn actors(s: &AuditSummary) -> String {
    let mut a = s.actors.join(",");
    if s.actors_truncated {
        a.push_str(",...");
    }
    a
}

fn revisions(s: &AuditSummary) -> String {
    match (s.min_revision, s.max_revision) {
        (0, 0) => String::new(),
        (a, b) if a == b => a.to_string(),
        (a, b) => format!("{a}-{b}"),
    }
}

/// `12 records: Edit x10, Import x2` (actions by name).
fn counts(s: &AuditSummary) -> String {
    let mut actions: Vec<(&String, &i64)> = s.actions.iter().collect();
    actions.sort();
    let list: Vec<String> = actions.iter().map(|(a, n)| format!("{a} x{n}")).collect();
    format!(
        "{} record{}: {}",
        s.record_count,
        if s.record_count == 1 { "" } else { "s" },
        list.join(", ")
    )
}

/// One summarised day as printed (`-o json|yaml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SummaryView {
    /// The UTC day (`2026-01-05`).
    pub day: String,
    pub record_count: i64,
    pub first_at: Option<String>,
    pub last_at: Option<String>,
    pub actions: std::collections::BTreeMap<String, i64>,
    pub actors: Vec<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub actors_truncated: bool,
    pub min_revision: i64,
    pub max_revision: i64,
}

impl From<&AuditSummary> for SummaryView {
    fn from(s: &AuditSummary) -> Self {
        Self {
            day: day(s),
            record_count: s.record_count,
            first_at: short_time(s.first_at.as_ref()),
            last_at: short_time(s.last_at.as_ref()),
            actions: s.actions.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            actors: s.actors.clone(),
            actors_truncated: s.actors_truncated,
            min_revision: s.min_revision,
            max_revision: s.max_revision,
        }
    }
}

/// One entry of the structured output: a summarised day (under `summary`)
/// or a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum EntryView {
    Summary { summary: SummaryView },
    Record(AuditView),
}

/// Runs `tile history`.
pub async fn run(args: Args, ctx: &Ctx) -> anyhow::Result<()> {
    let mut registry = ctx.registry()?;
    let mut records = Vec::new();
    let mut summaries = Vec::new();
    let mut token = String::new();
    loop {
        let resp = rpc(
            "GetHistory",
            registry.get_history(ctx.request(request(&args, &token)?)?).await,
        )?;
        records.extend(resp.records);
        summaries.extend(resp.summaries);
        if resp.next_page_token.is_empty() {
            break;
        }
        anyhow::ensure!(
            resp.next_page_token != token,
            "GetHistory returned the same page token twice"
        );
        token = resp.next_page_token;
    }
    let views: Vec<EntryView> = summaries
        .iter()
        .map(|s| EntryView::Summary {
            summary: SummaryView::from(s),
        })
        .chain(records.iter().map(|r| EntryView::Record(AuditView::from(r))))
        .collect();
    match structured(ctx.format, &views)? {
        Some(text) => out(&text),
        None => out(&render(&summaries, &records)),
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
        let text = render(
            &[],
            &[AuditRecord {
                actor: "ada".into(),
                action: "RecordSignOff".into(),
                object_revision: 2,
                summary: "signed off as ENGINEERING on revision 2".into(),
                at: Some(prost_types::Timestamp { seconds: 0, nanos: 0 }),
                ..AuditRecord::default()
            }],
        );
        assert_eq!(
            text,
            "AT                    ACTOR  ACTION         REV  SUMMARY\n\
             1970-01-01T00:00:00Z  ada    RecordSignOff  2    signed off as ENGINEERING on revision 2\n"
        );
    }

    #[test]
    fn renders_a_summary_on_one_line() {
        let day = prost_types::Timestamp {
            seconds: 1_767_225_600,
            nanos: 0,
        };
        let summary = AuditSummary {
            period_start: Some(day),
            record_count: 3,
            actions: [
                ("RecordSignOff".to_owned(), 2),
                ("ImportPartnerConfig".to_owned(), 1),
            ]
            .into_iter()
            .collect(),
            actors: vec!["ada".into(), "bob".into()],
            min_revision: 1,
            max_revision: 2,
            ..AuditSummary::default()
        };
        let text = render(std::slice::from_ref(&summary), &[]);
        assert_eq!(
            text,
            "AT          ACTOR    ACTION     REV  SUMMARY\n\
             2026-01-01  ada,bob  (summary)  1-2  3 records: ImportPartnerConfig x1, RecordSignOff x2\n"
        );
        let view = serde_json::to_value(EntryView::Summary {
            summary: SummaryView::from(&summary),
        })
        .unwrap();
        assert_eq!(view["summary"]["day"], "2026-01-01");
        assert_eq!(view["summary"]["actions"]["RecordSignOff"], 2);
    }
}
