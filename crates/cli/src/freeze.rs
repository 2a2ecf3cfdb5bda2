//! `tilewave freeze on|off|show`: the global freeze. While it is on, no
//! roll-out starts a new apply (and starting one is refused); bakes run on.

use clap::Subcommand;
use tilewave_proto::rollout::v1::{Freeze, GetFreezeRequest, SetFreezeRequest};

use crate::client::{Ctx, out};
use crate::error::{CliError, rpc};
use crate::names::{format_time, parse_time, short_time, to_proto_time};
use crate::output::{fields, structured};

/// Examples of `freeze on`.
const ON_EXAMPLES: &str = "\
Examples:
  tilewave freeze on --reason \"incident INC-42\"
  tilewave freeze on --reason \"year-end\" --until \"2027-01-04 09:00\"";

/// Examples of `freeze off` and `freeze show`.
const OFF_EXAMPLES: &str = "\
Examples:
  tilewave freeze show
  tilewave freeze off --reason \"incident resolved\"";

/// The freeze commands.
#[derive(Debug, Subcommand)]
pub enum FreezeCommand {
    /// Freeze: no roll-out starts a new apply.
    On(OnArgs),
    /// Lift the freeze.
    Off(OffArgs),
    /// Show the freeze.
    #[command(after_long_help = OFF_EXAMPLES)]
    Show,
}

impl FreezeCommand {
    /// The command's name, for the root span.
    pub fn name(&self) -> &'static str {
        match self {
            Self::On(_) => "freeze on",
            Self::Off(_) => "freeze off",
            Self::Show => "freeze show",
        }
    }
}

/// Arguments of `freeze on`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = ON_EXAMPLES)]
pub struct OnArgs {
    /// Why; shown to everyone whose roll-out waits.
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    /// Lift it automatically then (RFC 3339 or "YYYY-MM-DD HH:MM" UTC).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub until: Option<jiff::Timestamp>,
}

/// Arguments of `freeze off`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = OFF_EXAMPLES)]
pub struct OffArgs {
    /// Why; kept in the audit record.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

/// The SetFreeze request of `on` or `off`, naming the etag read.
pub fn request(cmd: &FreezeCommand, etag: i64) -> Result<SetFreezeRequest, CliError> {
    match cmd {
        FreezeCommand::On(a) => {
            if a.reason.trim().is_empty() {
                return Err(CliError::usage("--reason: say why the freeze is on"));
            }
            Ok(SetFreezeRequest {
                active: true,
                reason: a.reason.clone(),
                until: a.until.map(to_proto_time),
                etag,
            })
        }
        FreezeCommand::Off(a) => Ok(SetFreezeRequest {
            active: false,
            reason: a.reason.clone().unwrap_or_default(),
            until: None,
            etag,
        }),
        FreezeCommand::Show => Err(CliError::usage("internal: `freeze show` sets nothing")),
    }
}

/// A freeze, for JSON/YAML.
#[derive(Debug, serde::Serialize)]
struct FreezeView {
    active: bool,
    reason: String,
    actor: String,
    since: Option<String>,
    until: Option<String>,
}

/// The freeze as `KEY value` lines.
pub fn render(f: &Freeze) -> String {
    let mut pairs = vec![("FROZEN", if f.active { "yes" } else { "no" }.to_owned())];
    if !f.reason.is_empty() {
        pairs.push(("REASON", f.reason.clone()));
    }
    if !f.actor.is_empty() {
        pairs.push(("BY", f.actor.clone()));
    }
    if let Some(s) = short_time(f.since.as_ref()) {
        pairs.push(("SINCE", s));
    }
    if let Some(u) = short_time(f.until.as_ref()) {
        pairs.push(("UNTIL", u));
    }
    fields(&pairs)
}

/// Runs a freeze command.
pub async fn run(cmd: FreezeCommand, ctx: &Ctx) -> anyhow::Result<()> {
    let mut client = ctx.rollouts()?;
    let current = rpc(
        "GetFreeze",
        client.get_freeze(ctx.request(GetFreezeRequest {})?).await,
    )?
    .freeze
    .unwrap_or_default();
    let f = if matches!(cmd, FreezeCommand::Show) {
        current
    } else {
        let req = request(&cmd, current.etag)?;
        rpc("SetFreeze", client.set_freeze(ctx.request(req)?).await)?
            .freeze
            .unwrap_or_default()
    };
    let view = FreezeView {
        active: f.active,
        reason: f.reason.clone(),
        actor: f.actor.clone(),
        since: format_time(f.since.as_ref()),
        until: format_time(f.until.as_ref()),
    };
    if let Some(text) = structured(ctx.format, &view)? {
        return out(&text);
    }
    out(&render(&f))
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> Result<FreezeCommand, clap::Error> {
        let argv = ["tilewave", "freeze"].iter().chain(args.iter()).copied();
        match Cli::try_parse_from(argv)?.command {
            Command::Freeze(f) => Ok(f),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn requests_from_argv() {
        let on = parse(&["on", "--reason", "INC-42", "--until", "2027-01-04 09:00"]).unwrap();
        let r = request(&on, 7).unwrap();
        assert!(r.active);
        assert_eq!((r.reason.as_str(), r.etag), ("INC-42", 7));
        assert!(r.until.is_some());
        let off = parse(&["off"]).unwrap();
        let r = request(&off, 8).unwrap();
        assert!(!r.active);
        assert_eq!(r.etag, 8);
        assert!(request(&parse(&["show"]).unwrap(), 0).is_err());
        assert_eq!(
            request(&parse(&["on", "--reason", " "]).unwrap(), 0)
                .unwrap_err()
                .exit_code(),
            2
        );
        let e = parse(&["on"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("--reason"));
        let e = parse(&["on", "--reason", "x", "--until", "soon"]).unwrap_err();
        assert!(e.to_string().contains("--until"));
    }

    #[test]
    fn rendering() {
        let f = Freeze {
            active: true,
            reason: "INC-42".into(),
            actor: "ada".into(),
            ..Default::default()
        };
        assert_eq!(render(&f), "FROZEN  yes\nREASON  INC-42\nBY      ada\n");
    }
}
