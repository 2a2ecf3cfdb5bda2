//! `tilewave rollout status TILE|ID [--watch]`: a roll-out's progress; with
//! `--watch`, redrawn from WatchRollout until the roll-out ends. On a
//! terminal the block is redrawn in place (at most ten times a second);
//! into a pipe or a log, a plain line is printed whenever the phase changes
//! (and at most once a second while regions go live).

use std::io::IsTerminal as _;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tilewave_proto::clock::v1::GetTimeRequest;
use tilewave_proto::rollout::v1::{Rollout, RolloutEventType, WatchRolloutRequest};
use tokio::time::Instant;

use super::render::{is_terminal, live_count, one_line, phase, progress, width};
use super::resolve;
use super::view::RolloutView;
use crate::client::{Ctx, out};
use crate::error::CliError;
use crate::names::from_proto_time;
use crate::output::{Format, json_line, structured};
use crate::settings::process_env;
use crate::tile::watch::{Backoff, OnError, on_error};

/// Examples shown by `--help`.
const EXAMPLES: &str = "\
Examples:
  tilewave rollout status riverflow            # the tile's running (or latest) roll-out
  tilewave rollout status riverflow-r1 -o json
  tilewave rollout status riverflow --watch    # live until it ends";

/// How many times a dropped watch is resumed before giving up.
const MAX_RECONNECTS: u32 = 30;
/// The shortest time between two redraws on a terminal.
const REDRAW_EVERY: Duration = Duration::from_millis(100);
/// The shortest time between two plain lines that only differ in counts.
const LINE_EVERY: Duration = Duration::from_secs(1);

/// Arguments of `rollout status`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    /// A tile id (its running or latest roll-out) or a roll-out id.
    #[arg(value_name = "TILE|ID")]
    pub target: String,
    /// Keep redrawing until the roll-out ends.
    #[arg(long)]
    pub watch: bool,
}

/// The WatchRollout request for a roll-out, from `start_revision` on.
pub fn watch_request(id: &str, start_revision: i64) -> WatchRolloutRequest {
    WatchRolloutRequest {
        id: id.to_owned(),
        tile_id: String::new(),
        start_revision,
    }
}

/// Domain time as read once from the clock service, extrapolated with its
/// rate (so a redraw does not need a call).
#[derive(Debug, Clone, Copy)]
pub struct DomainNow {
    at: Timestamp,
    rate: f64,
    read: Instant,
}

impl DomainNow {
    /// Reads the clock; `None` when the clock service does not answer.
    pub async fn read(ctx: &Ctx) -> Option<Self> {
        let mut clock = ctx.clock().ok()?;
        let resp = clock.get_time(ctx.request(GetTimeRequest {}).ok()?).await.ok()?;
        let reading = resp.into_inner().clock?;
        Some(Self {
            at: from_proto_time(reading.now.as_ref())?,
            rate: reading.rate,
            read: Instant::now(),
        })
    }

    /// Domain now, estimated.
    pub fn now(&self) -> Timestamp {
        let secs = self.read.elapsed().as_secs_f64() * self.rate;
        SignedDuration::try_from_secs_f64(secs)
            .ok()
            .and_then(|d| self.at.checked_add(d).ok())
            .unwrap_or(self.at)
    }
}

/// How `--watch` shows progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Redraw the block in place.
    Redraw,
    /// A plain line per change of phase.
    Lines,
    /// One JSON document per event.
    Json,
}

/// The mode for the output format and whether stdout is a terminal.
pub fn mode(format: Format, tty: bool) -> Mode {
    match (format, tty) {
        (Format::Json | Format::Yaml, _) => Mode::Json,
        (Format::Table, true) => Mode::Redraw,
        (Format::Table, false) => Mode::Lines,
    }
}

/// Draws successive states of a roll-out in one of the modes.
#[derive(Debug)]
pub struct Painter {
    mode: Mode,
    width: usize,
    drawn: usize,
    last_draw: Option<Instant>,
    last_phase: String,
    last_live: usize,
}

impl Painter {
    /// A painter for `mode`.
    pub fn new(mode: Mode) -> Self {
        Self {
            mode,
            width: width(None, process_env("COLUMNS").as_deref()),
            drawn: 0,
            last_draw: None,
            last_phase: String::new(),
            last_live: usize::MAX,
        }
    }

    /// Shows `r` if it is time to (always when `force`).
    pub fn draw(&mut self, r: &Rollout, now: Option<Timestamp>, force: bool) -> anyhow::Result<()> {
        let due = |every: Duration, last: Option<Instant>| last.is_none_or(|t| t.elapsed() >= every);
        match self.mode {
            Mode::Json => out(&json_line(&RolloutView::from(r))?),
            Mode::Redraw => {
                if !force && !due(REDRAW_EVERY, self.last_draw) {
                    return Ok(());
                }
                let lines = progress(r, now, self.width);
                let mut text = "\x1b[1A\x1b[2K".repeat(self.drawn);
                for l in &lines {
                    text.push_str(l);
                    text.push('\n');
                }
                self.drawn = lines.len();
                self.last_draw = Some(Instant::now());
                out(&text)
            }
            Mode::Lines => {
                let p = phase(r);
                let live = live_count(r);
                let changed = p != self.last_phase;
                let counted = live != self.last_live && due(LINE_EVERY, self.last_draw);
                if !(force || changed || counted) {
                    return Ok(());
                }
                self.last_phase = p;
                self.last_live = live;
                self.last_draw = Some(Instant::now());
                out(&format!("{}\n", one_line(r, now)))
            }
        }
    }
}

/// Follows roll-out `id` until `done` says so (at the latest when it
/// ends), drawing each change; returns the state it stopped at. A dropped
/// stream is resumed from the last revision seen.
pub async fn follow(ctx: &Ctx, id: &str, mode: Mode, done: fn(&Rollout) -> bool) -> anyhow::Result<Rollout> {
    let mut client = ctx.rollouts_streaming()?;
    let clock = DomainNow::read(ctx).await;
    let now = || clock.map(|c| c.now());
    let mut painter = Painter::new(mode);
    let mut start_revision = 0;
    let mut last: Option<Rollout> = None;
    let mut backoff = Backoff::default();
    let mut reconnects = 0;
    loop {
        let failure = match client
            .watch_rollout(ctx.request(watch_request(id, start_revision))?)
            .await
        {
            Ok(resp) => {
                let mut stream = resp.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(ev)) => {
                            backoff.reset();
                            start_revision = ev.revision + 1;
                            let finished = ev.r#type == RolloutEventType::Finished as i32;
                            if let Some(r) = ev.rollout {
                                let end = finished || is_terminal(&r) || done(&r);
                                painter.draw(&r, now(), end)?;
                                if end {
                                    return Ok(r);
                                }
                                last = Some(r);
                            }
                        }
                        Ok(None) => break tonic::Status::unavailable("the server closed the stream"),
                        Err(status) => break status,
                    }
                }
            }
            Err(status) => status,
        };
        // The stream may have closed because the roll-out ended.
        if let Ok(r) = resolve(ctx, id).await
            && (is_terminal(&r) || done(&r))
        {
            painter.draw(&r, now(), true)?;
            return Ok(r);
        }
        match on_error(failure.code()) {
            OnError::Fail => {
                return Err(CliError::Rpc {
                    rpc: "WatchRollout",
                    status: failure,
                }
                .into());
            }
            OnError::Resync => start_revision = 0,
            OnError::Retry => {}
        }
        reconnects += 1;
        if reconnects > MAX_RECONNECTS {
            let at = last.map(|r| one_line(&r, now())).unwrap_or_default();
            anyhow::bail!(
                "WatchRollout: gave up after {MAX_RECONNECTS} reconnections ({}: {}); last seen: {at}",
                failure.code(),
                failure.message()
            );
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

/// Runs `rollout status`.
pub async fn run(args: Args, ctx: &Ctx) -> anyhow::Result<()> {
    let r = resolve(ctx, &args.target).await?;
    if args.watch && !is_terminal(&r) {
        let tty = std::io::stdout().is_terminal();
        follow(ctx, &r.id, mode(ctx.format, tty), is_terminal).await?;
        return Ok(());
    }
    if let Some(text) = structured(ctx.format, &RolloutView::from(&r))? {
        return out(&text);
    }
    let now = DomainNow::read(ctx).await.map(|c| c.now());
    let cols = width(None, process_env("COLUMNS").as_deref());
    let mut text = progress(&r, now, cols).join("\n");
    text.push('\n');
    out(&text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::RolloutCommand;
    use crate::rollout::testing::parse;

    #[test]
    fn requests_from_argv() {
        let RolloutCommand::Status(a) = parse(&["status", "riverflow", "--watch"]).unwrap() else {
            panic!()
        };
        assert!(a.watch);
        assert_eq!(a.target, "riverflow");
        let w = watch_request("riverflow-r1", 0);
        assert_eq!(
            (w.id.as_str(), w.tile_id.as_str(), w.start_revision),
            ("riverflow-r1", "", 0)
        );
        assert_eq!(mode(Format::Table, true), Mode::Redraw);
        assert_eq!(mode(Format::Table, false), Mode::Lines);
        assert_eq!(mode(Format::Json, true), Mode::Json);
    }
}
