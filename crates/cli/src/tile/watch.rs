//! `tilewave tile watch [TILE]`: streams WatchTiles and prints a line per
//! event. A dropped stream is resumed from the last revision seen + 1 with
//! back-off; a resume point etcd has compacted away restarts from a fresh
//! snapshot.

use std::time::Duration;

use tilewave_proto::registry::v1::{TileEvent, TileEventType, WatchTilesRequest};
use tonic::Code;

use crate::client::{Ctx, note, out};
use crate::error::CliError;
use crate::names::state_name;
use crate::output::{Format, json_line, to_yaml};
use crate::view::EventView;

/// Examples shown by `--help`.
const EXAMPLES: &str = "\
Examples:
  tilewave tile watch                 # every tile: the current ones, then each change
  tilewave tile watch riverflow
  tilewave tile watch --from-revision 1234 -o json   # changes from an etcd revision on";

/// The first wait before reconnecting.
pub const BACKOFF_START: Duration = Duration::from_millis(200);
/// The longest wait between reconnections.
pub const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Arguments of `tile watch`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// Only this tile; all tiles when absent.
    pub tile: Option<String>,
    /// Start from this etcd revision instead of a snapshot of the current tiles.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
    pub from_revision: Option<i64>,
    /// Print bookmark events too (they only move the resume point).
    #[arg(long)]
    pub bookmarks: bool,
}

/// The request starting at `start_revision` (0: snapshot first).
pub fn request(args: &Args, start_revision: i64) -> Result<WatchTilesRequest, CliError> {
    Ok(WatchTilesRequest {
        start_revision,
        tile_id: args.tile.clone().unwrap_or_default(),
        include_raw_config: false,
    })
}

/// Where to resume after the stream drops. Snapshot events carry the
/// revision of their read, so the resume point only moves at SNAPSHOT_END:
/// resuming in the middle of a snapshot would skip the rest of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    /// Where the first stream started (0: snapshot).
    initial: i64,
    /// The last revision wholly seen.
    last: Option<i64>,
}

impl Resume {
    /// Starting at `initial` (0 for a snapshot first).
    pub fn new(initial: i64) -> Self {
        Self { initial, last: None }
    }

    /// The `start_revision` of the next stream.
    pub fn start_revision(&self) -> i64 {
        self.last.map_or(self.initial, |r| r + 1)
    }

    /// Records an event.
    pub fn seen(&mut self, event: &TileEvent) {
        match TileEventType::try_from(event.r#type) {
            Ok(TileEventType::Snapshot) => {}
            Ok(
                TileEventType::SnapshotEnd
                | TileEventType::Put
                | TileEventType::Delete
                | TileEventType::Bookmark,
            ) => self.last = Some(event.revision),
            Ok(TileEventType::Unspecified) | Err(_) => {}
        }
    }

    /// etcd compacted past the resume point: start over with a snapshot.
    pub fn resync(&mut self) {
        self.initial = 0;
        self.last = None;
    }
}

/// Exponential back-off between reconnections, reset by any event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { next: BACKOFF_START }
    }
}

impl Backoff {
    /// The wait before the next try; doubles up to [`BACKOFF_MAX`].
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        d
    }

    /// Back to the shortest wait, after a stream delivered something.
    pub fn reset(&mut self) {
        self.next = BACKOFF_START;
    }
}

/// What to do when a stream fails with `code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Wait, then resume from the resume point.
    Retry,
    /// The resume point is compacted away: snapshot again.
    Resync,
    /// Give up: the request itself is wrong.
    Fail,
}

/// The decision for a failed stream.
pub fn on_error(code: Code) -> OnError {
    match code {
        Code::OutOfRange => OnError::Resync,
        Code::Unavailable
        | Code::Unknown
        | Code::Internal
        | Code::Cancelled
        | Code::DeadlineExceeded
        | Code::ResourceExhausted
        | Code::Aborted => OnError::Retry,
        Code::Ok
        | Code::InvalidArgument
        | Code::NotFound
        | Code::AlreadyExists
        | Code::PermissionDenied
        | Code::FailedPrecondition
        | Code::Unimplemented
        | Code::DataLoss
        | Code::Unauthenticated => OnError::Fail,
    }
}

/// One line for an event; `None` for events not shown.
pub fn line(event: &TileEvent, bookmarks: bool) -> Option<String> {
    let kind = TileEventType::try_from(event.r#type).unwrap_or(TileEventType::Unspecified);
    let tile = event.tile.as_ref();
    let describe = || {
        tile.map_or_else(
            || "-".to_owned(),
            |t| {
                format!(
                    "{} rev {} {}",
                    t.id,
                    t.latest_revision.max(t.revision),
                    state_name(t.state)
                )
            },
        )
    };
    Some(match kind {
        TileEventType::Snapshot => format!("{:>8}  SNAPSHOT      {}", event.revision, describe()),
        TileEventType::SnapshotEnd => format!("{:>8}  SNAPSHOT_END  (now watching changes)", event.revision),
        TileEventType::Put => format!("{:>8}  PUT           {}", event.revision, describe()),
        TileEventType::Delete => format!("{:>8}  DELETE        {}", event.revision, describe()),
        TileEventType::Bookmark if bookmarks => format!("{:>8}  BOOKMARK", event.revision),
        TileEventType::Bookmark | TileEventType::Unspecified => return None,
    })
}

/// Prints one event in the chosen format.
fn print_event(format: Format, event: &TileEvent, bookmarks: bool) -> anyhow::Result<()> {
    match format {
        Format::Table => match line(event, bookmarks) {
            Some(l) => out(&format!("{l}\n")),
            None => Ok(()),
        },
        Format::Json => out(&json_line(&EventView::from(event))?),
        Format::Yaml => out(&format!(
            "---\n{}",
            to_yaml(&serde_json::to_value(EventView::from(event))?)
        )),
    }
}

/// Runs `tile watch` until interrupted or the request is refused.
pub async fn run(args: Args, ctx: &Ctx) -> anyhow::Result<()> {
    let mut registry = ctx.registry()?;
    let mut resume = Resume::new(args.from_revision.unwrap_or(0));
    let mut backoff = Backoff::default();
    loop {
        let started = registry
            .watch_tiles(ctx.request(request(&args, resume.start_revision())?)?)
            .await;
        let failure = match started {
            Ok(resp) => {
                let mut stream = resp.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(event)) => {
                            backoff.reset();
                            resume.seen(&event);
                            print_event(ctx.format, &event, args.bookmarks)?;
                        }
                        Ok(None) => break tonic::Status::unavailable("the server closed the stream"),
                        Err(status) => break status,
                    }
                }
            }
            Err(status) => status,
        };
        match on_error(failure.code()) {
            OnError::Fail => {
                return Err(CliError::Rpc {
                    rpc: "WatchTiles",
                    status: failure,
                }
                .into());
            }
            OnError::Resync => {
                note("watch: the resume point was compacted away; starting again from a snapshot");
                resume.resync();
            }
            OnError::Retry => {
                let delay = backoff.next_delay();
                let from = match resume.start_revision() {
                    0 => "a fresh snapshot".to_owned(),
                    r => format!("revision {r}"),
                };
                note(&format!(
                    "watch: stream ended ({}: {}); resuming from {from} in {delay:?}",
                    failure.code(),
                    failure.message(),
                ));
                tokio::time::sleep(delay).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tilewave_proto::registry::v1::Tile;

    use super::*;
    use crate::tile::TileCommand;
    use crate::tile::testing::{parse, parse_exit_code};

    fn ev(kind: TileEventType, revision: i64) -> TileEvent {
        TileEvent {
            r#type: kind as i32,
            tile: None,
            revision,
        }
    }

    #[test]
    fn requests_from_argv() {
        let TileCommand::Watch(a) = parse(&["watch"]).unwrap() else {
            panic!()
        };
        assert_eq!(request(&a, 0).unwrap(), WatchTilesRequest::default());
        let TileCommand::Watch(a) = parse(&["watch", "riverflow", "--from-revision", "9"]).unwrap() else {
            panic!()
        };
        assert_eq!(Resume::new(a.from_revision.unwrap_or(0)).start_revision(), 9);
        let r = request(&a, 9).unwrap();
        assert_eq!((r.tile_id.as_str(), r.start_revision), ("riverflow", 9));
        assert_eq!(parse_exit_code(&["watch", "--from-revision", "0"]), 2);
    }

    #[test]
    fn resume_point_moves_only_past_whole_snapshots() {
        let mut r = Resume::new(0);
        r.seen(&ev(TileEventType::Snapshot, 100));
        assert_eq!(r.start_revision(), 0, "a half-seen snapshot is taken again");
        r.seen(&ev(TileEventType::SnapshotEnd, 100));
        assert_eq!(r.start_revision(), 101);
        r.seen(&ev(TileEventType::Put, 105));
        assert_eq!(r.start_revision(), 106);
        r.seen(&ev(TileEventType::Bookmark, 130));
        assert_eq!(r.start_revision(), 131);
        r.resync();
        assert_eq!(r.start_revision(), 0);

        let mut r = Resume::new(50);
        assert_eq!(r.start_revision(), 50);
        r.seen(&ev(TileEventType::Delete, 60));
        assert_eq!(r.start_revision(), 61);
    }

    #[test]
    fn backoff_doubles_to_a_cap_and_resets() {
        let mut b = Backoff::default();
        let waits: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        assert_eq!(waits[0], BACKOFF_START);
        assert_eq!(waits[1], BACKOFF_START * 2);
        assert_eq!(*waits.last().unwrap(), BACKOFF_MAX);
        b.reset();
        assert_eq!(b.next_delay(), BACKOFF_START);
    }

    #[test]
    fn errors_retry_resync_or_fail() {
        assert_eq!(on_error(Code::Unavailable), OnError::Retry);
        assert_eq!(on_error(Code::Internal), OnError::Retry);
        assert_eq!(on_error(Code::OutOfRange), OnError::Resync);
        assert_eq!(on_error(Code::InvalidArgument), OnError::Fail);
        assert_eq!(on_error(Code::NotFound), OnError::Fail);
    }

    #[test]
    fn event_lines() {
        let put = TileEvent {
            r#type: TileEventType::Put as i32,
            revision: 105,
            tile: Some(Tile {
                id: "riverflow".into(),
                revision: 2,
                latest_revision: 2,
                state: tilewave_proto::common::v1::TileState::SignedOff as i32,
                ..Tile::default()
            }),
        };
        assert_eq!(
            line(&put, false).unwrap(),
            "     105  PUT           riverflow rev 2 SIGNED_OFF"
        );
        assert_eq!(line(&ev(TileEventType::Bookmark, 7), false), None);
        assert_eq!(
            line(&ev(TileEventType::Bookmark, 7), true).unwrap(),
            "       7  BOOKMARK"
        );
    }
}
