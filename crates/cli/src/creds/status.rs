//! `tilewave creds status TILE|ID [--watch]`: a rotation's progress with a
//! row per region; with `--watch`, followed through WatchRotation until it
//! is promoted or ends. On a terminal the block is redrawn in place (at
//! most ten times a second); into a pipe or a log, one line per change;
//! with `-o json|yaml`, one JSON document per event. Watching to the end
//! exits 0 when promoted or completed and 3 when failed or cancelled.

use std::io::IsTerminal as _;
use std::time::Duration;

use tilewave_proto::credentials::v1::{Rotation, RotationEventType, RotationState, WatchRotationRequest};
use tokio::time::Instant;

use super::render::{RotationView, next_step, one_line, rotation_block, state_name, watch_done};
use super::{KindArg, resolve};
use crate::client::{Ctx, note, out};
use crate::error::CliError;
use crate::output::{Format, json_line, structured};
use crate::rollout::status::{Mode, mode};
use crate::tile::watch::{Backoff, OnError, on_error};

/// How many times a dropped watch is resumed before giving up.
const MAX_RECONNECTS: u32 = 30;
/// The shortest time between two redraws on a terminal.
const REDRAW_EVERY: Duration = Duration::from_millis(100);

/// Arguments of `creds status`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// A tile id (its running or latest rotation) or a rotation id.
    #[arg(value_name = "TILE|ID")]
    pub target: String,
    /// Which of the tile's credentials.
    #[arg(long, value_enum, default_value_t = KindArg::PartnerBasicAuth)]
    pub kind: KindArg,
    /// Follow it until it is promoted or ends.
    #[arg(long)]
    pub watch: bool,
}

/// The WatchRotation request of a rotation (each reconnection starts with
/// a snapshot).
pub fn watch_request(id: &str) -> WatchRotationRequest {
    WatchRotationRequest {
        id: id.to_owned(),
        tile_id: String::new(),
        kind: 0,
    }
}

/// The outcome of watching to the end: `Ok` when promoted or completed, a
/// conflict (exit 3) naming what happened and what to do otherwise.
pub fn outcome(r: &Rotation) -> Result<(), CliError> {
    match RotationState::try_from(r.state) {
        Ok(RotationState::Failed | RotationState::Cancelled) => {
            let next = next_step(r).unwrap_or_else(|| {
                format!(
                    "CURRENT is unchanged everywhere; start again with `tilewave creds rotate {}`",
                    r.tile_id
                )
            });
            Err(CliError::Conflict(format!(
                "the rotation {} ended {}: {}",
                r.id,
                state_name(r.state),
                next
            )))
        }
        _ => Ok(()),
    }
}

/// Draws successive states of a rotation in one of the modes.
#[derive(Debug)]
pub struct Painter {
    mode: Mode,
    drawn: usize,
    last_draw: Option<Instant>,
    last_line: String,
}

impl Painter {
    /// A painter for `mode`.
    pub fn new(mode: Mode) -> Self {
        Self {
            mode,
            drawn: 0,
            last_draw: None,
            last_line: String::new(),
        }
    }

    /// What to print for `r` now (`None`: nothing, not due or unchanged).
    pub fn frame(&mut self, r: &Rotation, force: bool) -> anyhow::Result<Option<String>> {
        Ok(match self.mode {
            Mode::Json => Some(json_line(&RotationView::from(r))?),
            Mode::Redraw => {
                if !force && self.last_draw.is_some_and(|t| t.elapsed() < REDRAW_EVERY) {
                    return Ok(None);
                }
                let block = rotation_block(r);
                let mut text = "\x1b[1A\x1b[2K".repeat(self.drawn);
                text.push_str(&block);
                self.drawn = block.lines().count();
                self.last_draw = Some(Instant::now());
                Some(text)
            }
            Mode::Lines => {
                let line = one_line(r);
                if line == self.last_line {
                    return Ok(None);
                }
                self.last_line.clone_from(&line);
                Some(format!("{line}\n"))
            }
        })
    }

    /// Shows `r` if it is time to (always when `force`).
    pub fn draw(&mut self, r: &Rotation, force: bool) -> anyhow::Result<()> {
        match self.frame(r, force)? {
            Some(text) => out(&text),
            None => Ok(()),
        }
    }
}

/// Follows rotation `id` until it is promoted or ends, drawing each
/// change; returns the state it stopped at. A dropped stream is opened
/// again (it starts with a snapshot).
pub async fn follow(ctx: &Ctx, id: &str, kind: KindArg, mode: Mode) -> anyhow::Result<Rotation> {
    let mut client = ctx.credentials_streaming()?;
    let mut painter = Painter::new(mode);
    let mut last: Option<Rotation> = None;
    let mut backoff = Backoff::default();
    let mut reconnects = 0;
    loop {
        let failure = match client.watch_rotation(ctx.request(watch_request(id))?).await {
            Ok(resp) => {
                let mut stream = resp.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(ev)) => {
                            backoff.reset();
                            let finished = ev.r#type == RotationEventType::Finished as i32;
                            if let Some(r) = ev.rotation {
                                let end = finished || watch_done(&r);
                                painter.draw(&r, end)?;
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
        // The stream may have closed because the rotation ended.
        if let Ok(r) = resolve(ctx, id, kind).await
            && watch_done(&r)
        {
            painter.draw(&r, true)?;
            return Ok(r);
        }
        if on_error(failure.code()) == OnError::Fail {
            return Err(CliError::Rpc {
                rpc: "WatchRotation",
                status: failure,
            }
            .into());
        }
        reconnects += 1;
        if reconnects > MAX_RECONNECTS {
            let at = last.map(|r| one_line(&r)).unwrap_or_default();
            anyhow::bail!(
                "WatchRotation: gave up after {MAX_RECONNECTS} reconnections ({}: {}); last seen: {at}; \
                 `tilewave creds status {id}` shows where it stands",
                failure.code(),
                failure.message()
            );
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

/// Runs `creds status`.
pub async fn run(args: Args, ctx: &Ctx) -> anyhow::Result<()> {
    let r = resolve(ctx, &args.target, args.kind).await?;
    if args.watch {
        let r = if watch_done(&r) {
            Painter::new(mode(ctx.format, std::io::stdout().is_terminal())).draw(&r, true)?;
            r
        } else {
            let tty = std::io::stdout().is_terminal();
            follow(ctx, &r.id, args.kind, mode(ctx.format, tty)).await?
        };
        if ctx.format == Format::Table
            && let Some(next) = next_step(&r)
            && r.state == RotationState::Promoted as i32
        {
            note(&next);
        }
        return Ok(outcome(&r)?);
    }
    if let Some(text) = structured(ctx.format, &RotationView::from(&r))? {
        return out(&text);
    }
    let mut text = rotation_block(&r);
    if let Some(next) = next_step(&r) {
        text.push('\n');
        text.push_str(&next);
        text.push('\n');
    }
    out(&text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::creds::CredsCommand;
    use crate::creds::render::tests::rotation;
    use crate::creds::testing::parse;

    #[test]
    fn requests_from_argv() {
        let CredsCommand::Status(a) = parse(&["status", "riverflow", "--watch"]).unwrap() else {
            panic!()
        };
        assert!(a.watch);
        assert_eq!(
            (a.target.as_str(), a.kind),
            ("riverflow", KindArg::PartnerBasicAuth)
        );
        let w = watch_request("riverflow-cred-3");
        assert_eq!((w.id.as_str(), w.tile_id.as_str()), ("riverflow-cred-3", ""));
    }

    #[test]
    fn watching_to_the_end_exits_0_or_3() {
        // (state, exit code)
        let cases = [
            (RotationState::Promoted, 0),
            (RotationState::Completed, 0),
            (RotationState::Failed, 3),
            (RotationState::Cancelled, 3),
        ];
        for (state, code) in cases {
            let got = outcome(&rotation(state)).map_or_else(|e| e.exit_code(), |()| 0);
            assert_eq!(got, code, "{state:?}");
        }
        let err = outcome(&rotation(RotationState::Failed)).unwrap_err().to_string();
        assert!(
            err.contains("ended FAILED") && err.contains("unchanged everywhere"),
            "{err}"
        );
    }

    #[test]
    fn into_a_pipe_one_line_per_change() {
        let mut p = Painter::new(Mode::Lines);
        let mut r = rotation(RotationState::Distributing);
        let first = p.frame(&r, false).unwrap();
        assert_eq!(
            first.as_deref(),
            Some("riverflow-cred-3: DISTRIBUTING, wave 2/2, distributed 2/3, verified 1/3\n")
        );
        assert_eq!(p.frame(&r, false).unwrap(), None, "unchanged: nothing");
        r.progress = "distributed 3/3, verified 1/3".into();
        assert!(
            p.frame(&r, false)
                .unwrap()
                .is_some_and(|l| l.contains("distributed 3/3"))
        );
        let mut j = Painter::new(Mode::Json);
        let line = j.frame(&r, false).unwrap().unwrap();
        assert!(line.ends_with("}\n") && line.lines().count() == 1, "{line}");
        let mut t = Painter::new(Mode::Redraw);
        let a = t.frame(&r, true).unwrap().unwrap();
        assert!(!a.starts_with('\x1b') && a.contains("REGION"), "{a}");
        let b = t.frame(&r, true).unwrap().unwrap();
        assert!(
            b.starts_with("\x1b[1A\x1b[2K"),
            "the second frame redraws in place"
        );
    }
}
