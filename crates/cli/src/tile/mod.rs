//! `tilewave tile ...`: the registry commands. Each subcommand lives in its
//! own module with three parts (docs/design.md, "Code layout"): its clap definition, a pure
//! function from the parsed arguments (and values read from files or from
//! the tile) to the gRPC request, unit-tested without a network, and its
//! execution.

use std::io::Read as _;

use anyhow::Context as _;
use clap::Subcommand;
use tilewave_proto::registry::v1::{ConfigIssue, Tile};

use crate::client::{Ctx, out};
use crate::error::CliError;
use crate::names::{role_name, short_time, state_name};
use crate::output::{Format, Table, fields, structured};
use crate::view::{IssueView, TileView};

pub mod checklist;
pub mod create;
pub mod diff;
pub mod get;
pub mod gtm;
pub mod history;
pub mod import;
pub mod list;
pub mod set_ga;
pub mod set_test_workspace;
pub mod signoff;
pub mod update;
pub mod validate;
pub mod watch;
pub mod where_is;
pub mod withdraw;
pub mod withdraw_signoff;

/// The tile commands.
#[derive(Debug, Subcommand)]
pub enum TileCommand {
    /// Create a tile (or a new revision) from a partner's JSON document.
    Import(import::Args),
    /// Create a tile from a typed configuration.
    Create(create::Args),
    /// Show a tile, its sign-offs and its revisions.
    Get(get::Args),
    /// List tiles at their latest revisions.
    List(list::Args),
    /// Show a tile's audit records, oldest first.
    History(history::Args),
    /// Show what changed between two revisions of a tile.
    Diff(diff::Args),
    /// Record your sign-off on a revision.
    Signoff(signoff::Args),
    /// Withdraw a sign-off recorded earlier.
    WithdrawSignoff(withdraw_signoff::Args),
    /// Show the validation checklist of a tile's latest revision.
    Checklist(checklist::Args),
    /// Record validation results (PASS, FAIL, WAIVED) on cases.
    Validate(validate::Args),
    /// Show or set a tile's go-to-market items.
    Gtm(gtm::Args),
    /// Set the test workspace a tile is validated in.
    SetTestWorkspace(set_test_workspace::Args),
    /// Set or clear a tile's GA moment.
    SetGa(set_ga::Args),
    /// Make a new revision from a changed partner document.
    Update(update::Args),
    /// Withdraw a tile from every region.
    Withdraw(withdraw::Args),
    /// Stream tile changes as they happen.
    Watch(watch::Args),
    /// Show where a tile is live: per region, revision and since when.
    Where(where_is::Args),
}

impl TileCommand {
    /// The command's name, for the root span.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Import(_) => "tile import",
            Self::Create(_) => "tile create",
            Self::Get(_) => "tile get",
            Self::List(_) => "tile list",
            Self::History(_) => "tile history",
            Self::Diff(_) => "tile diff",
            Self::Signoff(_) => "tile signoff",
            Self::WithdrawSignoff(_) => "tile withdraw-signoff",
            Self::Checklist(_) => "tile checklist",
            Self::Validate(_) => "tile validate",
            Self::Gtm(_) => "tile gtm",
            Self::SetTestWorkspace(_) => "tile set-test-workspace",
            Self::SetGa(_) => "tile set-ga",
            Self::Update(_) => "tile update",
            Self::Withdraw(_) => "tile withdraw",
            Self::Watch(_) => "tile watch",
            Self::Where(_) => "tile where",
        }
    }
}

/// Runs a tile command.
pub async fn run(cmd: TileCommand, ctx: &Ctx) -> anyhow::Result<()> {
    match cmd {
        TileCommand::Import(a) => import::run(a, ctx).await,
        TileCommand::Create(a) => create::run(a, ctx).await,
        TileCommand::Get(a) => get::run(a, ctx).await,
        TileCommand::List(a) => list::run(a, ctx).await,
        TileCommand::History(a) => history::run(a, ctx).await,
        TileCommand::Diff(a) => diff::run(a, ctx).await,
        TileCommand::Signoff(a) => signoff::run(a, ctx).await,
        TileCommand::WithdrawSignoff(a) => withdraw_signoff::run(a, ctx).await,
        TileCommand::Checklist(a) => checklist::run(a, ctx).await,
        TileCommand::Validate(a) => validate::run(a, ctx).await,
        TileCommand::Gtm(a) => gtm::run(a, ctx).await,
        TileCommand::SetTestWorkspace(a) => set_test_workspace::run(a, ctx).await,
        TileCommand::SetGa(a) => set_ga::run(a, ctx).await,
        TileCommand::Update(a) => update::run(a, ctx).await,
        TileCommand::Withdraw(a) => withdraw::run(a, ctx).await,
        TileCommand::Watch(a) => watch::run(a, ctx).await,
        TileCommand::Where(a) => where_is::run(a, ctx).await,
    }
}

/// What a mutation needs from the tile when the command line does not say:
/// the etag to name, and the latest revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Current {
    /// The tile's etag as read.
    pub etag: i64,
    /// The newest revision as read.
    pub latest_revision: i64,
}

/// Reads the tile's etag and latest revision when a command needs them
/// (a flag did not give them).
pub async fn read_if(
    ctx: &crate::client::Ctx,
    registry: &mut crate::client::Registry,
    tile: &str,
    needed: bool,
) -> anyhow::Result<Option<Current>> {
    if !needed {
        return Ok(None);
    }
    Ok(Some(Current::from(&ctx.current_tile(registry, tile).await?)))
}

impl From<&Tile> for Current {
    fn from(t: &Tile) -> Self {
        Self {
            etag: t.etag,
            latest_revision: t.latest_revision.max(t.revision),
        }
    }
}

/// `given`, else the value read from the tile; an internal error when the
/// caller did not read the tile although it was needed.
pub(crate) fn given_or_read(
    given: Option<i64>,
    current: Option<Current>,
    pick: fn(Current) -> i64,
) -> Result<i64, CliError> {
    given
        .or_else(|| current.map(pick))
        .ok_or_else(|| CliError::usage("internal: the tile was not read although a value from it is needed"))
}

/// Reads a document from a file, or from stdin for `-`.
pub(crate) fn read_document(path: &str) -> anyhow::Result<String> {
    let text = if path == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading the document from stdin")?;
        s
    } else {
        std::fs::read_to_string(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                anyhow::Error::from(CliError::usage(format!("{path}: no such file")))
            }
            _ => anyhow::Error::from(e).context(format!("reading {path}")),
        })?
    };
    if text.trim().is_empty() {
        return Err(CliError::usage(format!("{path}: the document is empty")).into());
    }
    Ok(text)
}

/// A tile's key facts, one per line.
pub(crate) fn summary(t: &Tile) -> String {
    let revision = if t.revision == t.latest_revision || t.latest_revision == 0 {
        t.revision.to_string()
    } else {
        format!("{} (latest {})", t.revision, t.latest_revision)
    };
    let missing: Vec<String> = t.missing_sign_offs.iter().map(|r| role_name(*r)).collect();
    let mut pairs = vec![
        ("ID", t.id.clone()),
        ("NAME", t.name.clone()),
        ("PARTNER", t.partner_id.clone()),
        ("REVISION", revision),
        ("STATE", state_name(t.state)),
    ];
    if !t.state_reason.is_empty() {
        pairs.push(("REASON", t.state_reason.clone()));
    }
    if t.self_test {
        pairs.push(("SELF-TEST", "yes".into()));
    }
    pairs.push(("TEST WORKSPACE", none_if_empty(&t.test_workspace_id)));
    pairs.push(("GA", short_time(t.ga_time.as_ref()).unwrap_or_else(|| "-".into())));
    if let Some(v) = &t.validation {
        pairs.push(("VALIDATION", checklist::open_summary(v)));
    }
    if !t.gtm.is_empty() {
        pairs.push(("GO-TO-MARKET", gtm::pending_summary(&t.gtm)));
    }
    if let Some(o) = &t.gtm_override {
        pairs.push((
            "GTM OVERRIDE",
            format!(
                "{} by {} (pending then: {})",
                o.reason,
                o.by,
                o.pending.join(", ")
            ),
        ));
    }
    if let Some(s) = &t.ga_slot {
        pairs.push(("GA SLOT", format!("a place in a slot of capacity {}", s.capacity)));
    }
    pairs.push((
        "MISSING SIGN-OFFS",
        if missing.is_empty() {
            "none".into()
        } else {
            missing.join(", ")
        },
    ));
    if let Some(at) = short_time(t.withdraw_requested_at.as_ref()) {
        pairs.push(("WITHDRAW REQUESTED", at));
    }
    pairs.push((
        "UPDATED",
        format!(
            "{} by {}",
            short_time(t.updated_at.as_ref()).unwrap_or_else(|| "-".into()),
            none_if_empty(&t.updated_by)
        ),
    ));
    pairs.push(("ETAG", t.etag.to_string()));
    fields(&pairs)
}

/// `-` for an empty string.
pub(crate) fn none_if_empty(s: &str) -> String {
    if s.is_empty() { "-".into() } else { s.to_owned() }
}

/// Configuration issues as a table (without the CODE column when no issue
/// has a code).
pub(crate) fn issues_table(issues: &[ConfigIssue]) -> String {
    let codes = issues.iter().any(|i| !i.code.is_empty());
    let mut t = if codes {
        Table::new(&["PATH", "CODE", "MESSAGE"])
    } else {
        Table::new(&["PATH", "MESSAGE"])
    };
    for i in issues {
        let mut row = vec![i.path.clone()];
        if codes {
            row.push(i.code.clone());
        }
        row.push(i.message.clone());
        t.row(row);
    }
    t.render()
}

/// What a mutation prints: the tile (and warnings) as a summary, or the
/// tile view in JSON/YAML.
pub(crate) fn print_tile(ctx: &Ctx, tile: Option<&Tile>, warnings: &[ConfigIssue]) -> anyhow::Result<()> {
    let tile = tile.ok_or_else(|| anyhow::anyhow!("the response holds no tile"))?;
    #[derive(serde::Serialize)]
    struct WithWarnings {
        tile: TileView,
        warnings: Vec<IssueView>,
    }
    let view = WithWarnings {
        tile: TileView::from(tile),
        warnings: warnings.iter().map(IssueView::from).collect(),
    };
    if let Some(text) = structured(ctx.format, &view)? {
        return out(&text);
    }
    debug_assert_eq!(ctx.format, Format::Table);
    let mut text = summary(tile);
    if !warnings.is_empty() {
        text.push_str(&format!("\n{} warning(s):\n", warnings.len()));
        text.push_str(&issues_table(warnings));
    }
    out(&text)
}

#[cfg(test)]
pub(crate) mod testing {
    //! Parsing argv the way the binary does, for the table-driven tests.

    use clap::Parser as _;

    use super::TileCommand;
    use crate::cli::{Cli, Command};

    /// Parses `tilewave tile <args>`; a clap error carries its exit code.
    pub fn parse(args: &[&str]) -> Result<TileCommand, clap::Error> {
        let argv = ["tilewave", "tile"].iter().chain(args.iter()).copied();
        match Cli::try_parse_from(argv)?.command {
            Command::Tile(t) => Ok(t),
            other => panic!("not a tile command: {other:?}"),
        }
    }

    /// The exit code of a failed parse (clap: 2 for usage errors).
    pub fn parse_exit_code(args: &[&str]) -> i32 {
        match parse(args) {
            Ok(cmd) => panic!("{args:?} parsed as {cmd:?}"),
            Err(e) => e.exit_code(),
        }
    }

    /// A tile as read, with an etag and a latest revision.
    pub fn current(etag: i64, latest_revision: i64) -> Option<super::Current> {
        Some(super::Current {
            etag,
            latest_revision,
        })
    }
}
