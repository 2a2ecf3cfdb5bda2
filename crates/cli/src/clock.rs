//! `tilewave clock show|advance|set|rate`: the virtual clock the rollout
//! service serves. Domain time (plans, bakes, deadlines, GA) runs on it in
//! demos and tests; it never moves backwards, and with the system clock in
//! use it can only be read.

use clap::Subcommand;
use tilewave_proto::clock::v1::{AdvanceRequest, ClockReading, GetTimeRequest, SetRateRequest, SetRequest};

use crate::client::{Ctx, out};
use crate::error::{CliError, rpc};
use crate::names::{format_time, human_time, parse_duration, parse_time, to_proto_duration, to_proto_time};
use crate::output::{fields, structured};

/// Examples of the clock commands.
const EXAMPLES: &str = "\
DURATION is like 4h, 90m or 2h30m; TIME is RFC 3339 or \"YYYY-MM-DD HH:MM\" (UTC).

Examples:
  tilewave clock show
  tilewave clock advance 4h
  tilewave clock set \"2026-12-08 17:00\"
  tilewave clock rate 10000     # a week in about a minute
  tilewave clock rate 0         # stop it";

/// The clock commands.
#[derive(Debug, Subcommand)]
pub enum ClockCommand {
    /// Show domain now and how fast it runs.
    #[command(after_long_help = EXAMPLES)]
    Show,
    /// Move the virtual clock forward; timers that fall due fire in order.
    #[command(after_long_help = EXAMPLES)]
    Advance {
        /// How far, e.g. 4h or 1d12h.
        #[arg(value_parser = parse_duration)]
        duration: jiff::SignedDuration,
    },
    /// Move the virtual clock forward to a moment (never backwards).
    #[command(after_long_help = EXAMPLES)]
    Set {
        /// The moment (RFC 3339 or "YYYY-MM-DD HH:MM" UTC).
        #[arg(value_parser = parse_time)]
        time: jiff::Timestamp,
    },
    /// Set how many virtual seconds pass per real second (0 stops it).
    #[command(after_long_help = EXAMPLES)]
    Rate {
        /// Virtual seconds per real second.
        #[arg(value_parser = rate)]
        rate: f64,
    },
}

impl ClockCommand {
    /// The command's name, for the root span.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Show => "clock show",
            Self::Advance { .. } => "clock advance",
            Self::Set { .. } => "clock set",
            Self::Rate { .. } => "clock rate",
        }
    }
}

/// A rate: a finite number, zero or more.
fn rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r >= 0.0 => Ok(r),
        _ => Err(format!("{s:?} is not a rate: use a number >= 0, e.g. 10000")),
    }
}

/// What a clock command asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    /// GetTime.
    Get(GetTimeRequest),
    /// Advance.
    Advance(AdvanceRequest),
    /// Set.
    Set(SetRequest),
    /// SetRate.
    Rate(SetRateRequest),
}

/// The request.
pub fn request(cmd: &ClockCommand) -> Result<Call, CliError> {
    Ok(match cmd {
        ClockCommand::Show => Call::Get(GetTimeRequest {}),
        ClockCommand::Advance { duration } => {
            if !duration.is_positive() {
                return Err(CliError::usage("DURATION: advance by more than zero"));
            }
            Call::Advance(AdvanceRequest {
                by: Some(to_proto_duration(*duration)),
            })
        }
        ClockCommand::Set { time } => Call::Set(SetRequest {
            to: Some(to_proto_time(*time)),
        }),
        ClockCommand::Rate { rate } => Call::Rate(SetRateRequest { rate: *rate }),
    })
}

/// A clock reading, for JSON/YAML.
#[derive(Debug, serde::Serialize)]
struct ClockView {
    now: Option<String>,
    virtual_clock: bool,
    rate: f64,
}

/// A reading as `KEY value` lines.
pub fn render(c: &ClockReading) -> String {
    let now = crate::names::from_proto_time(c.now.as_ref());
    fields(&[
        (
            "NOW",
            now.map_or_else(
                || "-".into(),
                |t| format!("{} ({})", human_time(t), t.strftime("%Y-%m-%dT%H:%M:%SZ")),
            ),
        ),
        (
            "CLOCK",
            if c.virtual_clock { "virtual" } else { "system" }.to_owned(),
        ),
        ("RATE", format!("{}x", c.rate)),
    ])
}

/// Runs a clock command.
pub async fn run(cmd: ClockCommand, ctx: &Ctx) -> anyhow::Result<()> {
    let mut client = ctx.clock()?;
    let reading = match request(&cmd)? {
        Call::Get(r) => rpc("GetTime", client.get_time(ctx.request(r)?).await)?.clock,
        Call::Advance(r) => rpc("Advance", client.advance(ctx.request(r)?).await)?.clock,
        Call::Set(r) => rpc("Set", client.set(ctx.request(r)?).await)?.clock,
        Call::Rate(r) => rpc("SetRate", client.set_rate(ctx.request(r)?).await)?.clock,
    }
    .ok_or_else(|| anyhow::anyhow!("the clock service answered without a reading"))?;
    let view = ClockView {
        now: format_time(reading.now.as_ref()),
        virtual_clock: reading.virtual_clock,
        rate: reading.rate,
    };
    if let Some(text) = structured(ctx.format, &view)? {
        return out(&text);
    }
    out(&render(&reading))
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> Result<ClockCommand, clap::Error> {
        let argv = ["tilewave", "clock"].iter().chain(args.iter()).copied();
        match Cli::try_parse_from(argv)?.command {
            Command::Clock(c) => Ok(c),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn requests_from_argv() {
        assert_eq!(
            request(&parse(&["show"]).unwrap()).unwrap(),
            Call::Get(GetTimeRequest {})
        );
        let Call::Advance(a) = request(&parse(&["advance", "2h30m"]).unwrap()).unwrap() else {
            panic!()
        };
        assert_eq!(a.by.map(|d| d.seconds), Some(9000));
        let Call::Set(s) = request(&parse(&["set", "2026-12-08 17:00"]).unwrap()).unwrap() else {
            panic!()
        };
        assert_eq!(s.to.map(|t| t.seconds), Some(1_796_749_200));
        assert_eq!(
            request(&parse(&["rate", "10000"]).unwrap()).unwrap(),
            Call::Rate(SetRateRequest { rate: 10000.0 })
        );
        assert_eq!(
            request(&parse(&["advance", "0"]).unwrap())
                .unwrap_err()
                .exit_code(),
            2
        );
        for bad in [
            &["advance", "soon"][..],
            &["set", "tomorrow"],
            &["rate", "-1"],
            &["rate", "fast"],
        ] {
            assert_eq!(parse(bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn rendering() {
        let c = ClockReading {
            now: Some(to_proto_time(parse_time("2026-12-01 17:00").unwrap())),
            virtual_clock: true,
            rate: 10000.0,
            etag: 3,
        };
        assert_eq!(
            render(&c),
            "NOW    Tue 1 Dec 17:00 UTC (2026-12-01T17:00:00Z)\nCLOCK  virtual\nRATE   10000x\n"
        );
    }
}
