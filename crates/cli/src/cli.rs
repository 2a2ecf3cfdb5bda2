//! The command line: the command tree (clap derive), with the global flags
//! of [`crate::args`] flattened in. Each command's own arguments live with
//! the command.

use clap::{Parser, Subcommand};

use crate::admin::AdminCommand;
use crate::args::GlobalArgs;
use crate::auth::AuthCommand;
use crate::calendar::CalendarCommand;
use crate::certs::CertsCommand;
use crate::clock::ClockCommand;
use crate::creds::CredsCommand;
use crate::dashboard::DashboardArgs;
use crate::demo::DemoArgs;
use crate::dev::DevCommand;
use crate::freeze::FreezeCommand;
use crate::ga::GaCommand;
use crate::oncall::{IncidentCommand, OncallCommand, PolicyCommand, SopCommand};
use crate::rollout::RolloutCommand;
use crate::tile::TileCommand;

/// Shown by `tilewave --help`.
const ABOUT_LONG: &str = "\
tilewave rolls partner tiles out to a multi-cloud catalog, region by region.

This is its command line. It talks gRPC to the tilewave services; `tilewave dev up`
starts a local stack and saves its addresses, so later commands need no flags.

Settings come from flags, then the environment (TILEWAVE_<SERVICE> for each service's URL:
TILEWAVE_REGISTRY, TILEWAVE_ROLLOUT, TILEWAVE_CREDENTIALS, TILEWAVE_ESCALATION; TILEWAVE_ACTOR, TILEWAVE_TIMEOUT; TILEWAVE_TLS_CERT,
TILEWAVE_TLS_KEY, TILEWAVE_TLS_CA for mutual TLS, see `tilewave certs init`), then the config file (TILEWAVE_CONFIG, else
$XDG_CONFIG_HOME/tilewave/config.toml or ~/.config/tilewave/config.toml), then defaults.

Exit codes: 0 ok; 2 bad input; 3 not found or conflict (re-read and retry); 1 anything else.";

/// Shown after `tilewave --help`.
const EXAMPLES: &str = "\
Examples:
  tilewave dev up
  tilewave tile import riverflow.json
  tilewave tile set-test-workspace riverflow 6051921418418893
  tilewave tile signoff riverflow --role engineering
  tilewave tile set-ga riverflow \"2026-12-08 17:00\"
  tilewave tile list -o yaml
  tilewave calendar add-rule --days tue --time 17:00 --tz UTC --capacity 5
  tilewave rollout plan riverflow
  tilewave rollout start riverflow
  tilewave rollout status riverflow --watch
  tilewave tile where riverflow
  tilewave creds submit riverflow < new-credential.txt
  tilewave creds rotate riverflow
  tilewave incident list --state triggered
  tilewave incident ack INC-42
  tilewave oncall now
  tilewave policy set -f docs/examples/escalation/policy.yaml
  tilewave auth table
  tilewave auth whoami
  tilewave dashboard
  tilewave admin bump-epoch --etcd http://127.0.0.1:2379
  tilewave dev down";

/// The `tilewave` command line.
#[derive(Debug, Parser)]
#[command(name = "tilewave", version, about = "Roll partner tiles out, region by region", long_about = ABOUT_LONG)]
#[command(after_long_help = EXAMPLES, propagate_version = true)]
pub struct Cli {
    /// Flags every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Import, inspect, sign off and schedule tiles.
    #[command(subcommand)]
    Tile(TileCommand),
    /// Plan, start, watch and steer roll-outs.
    #[command(subcommand)]
    Rollout(RolloutCommand),
    /// Hold every roll-out's new applies back (global freeze).
    #[command(subcommand)]
    Freeze(FreezeCommand),
    /// The launch calendar: group launch days, blackouts, one-off slots.
    #[command(subcommand)]
    Calendar(CalendarCommand),
    /// GA dates on the launch calendar: schedule, move, list, hold, announce.
    #[command(subcommand)]
    Ga(GaCommand),
    /// Partner credentials: hand in, rotate region by region, retire.
    #[command(subcommand)]
    Creds(CredsCommand),
    /// Incidents: list, show, acknowledge, work the SOP, mitigate, resolve.
    #[command(subcommand)]
    Incident(IncidentCommand),
    /// Who is on call; on-call schedules, people and partner contacts.
    #[command(subcommand)]
    Oncall(OncallCommand),
    /// Escalation policies: whom to page, in which order, how fast.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Standard operating procedures: the checklists incidents follow.
    #[command(subcommand)]
    Sop(SopCommand),
    /// Read or move the virtual clock.
    #[command(subcommand)]
    Clock(ClockCommand),
    /// Run a local stack: etcd and the services, in the background.
    #[command(subcommand)]
    Dev(DevCommand),
    /// Create and list certificates for mutual TLS (a development CA).
    #[command(subcommand)]
    Certs(CertsCommand),
    /// Run a demo launch on the local stack: import, sign off, plan, roll out.
    Demo(DemoArgs),
    /// Serve a live web dashboard on loopback: launches, roll-outs, on-call.
    #[command(long_about = crate::dashboard::ABOUT)]
    Dashboard(DashboardArgs),
    /// Who may call what: the role table every service checks calls against.
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Operator commands on etcd itself (after a restore from a backup).
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
}

impl Command {
    /// The command's name, for the root span.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Tile(t) => t.name(),
            Self::Rollout(r) => r.name(),
            Self::Freeze(f) => f.name(),
            Self::Calendar(c) => c.name(),
            Self::Ga(g) => g.name(),
            Self::Creds(c) => c.name(),
            Self::Incident(c) => c.name(),
            Self::Oncall(c) => c.name(),
            Self::Policy(c) => c.name(),
            Self::Sop(c) => c.name(),
            Self::Clock(c) => c.name(),
            Self::Dev(d) => d.name(),
            Self::Certs(c) => c.name(),
            Self::Demo(_) => "demo",
            Self::Dashboard(_) => "dashboard",
            Self::Auth(a) => a.name(),
            Self::Admin(a) => a.name(),
            Self::Completions(_) => "completions",
        }
    }
}

/// Examples for `completions`.
const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  tilewave completions bash > ~/.local/share/bash-completion/completions/tilewave
  tilewave completions zsh > \"${fpath[1]}/_tilewave\"
  tilewave completions fish > ~/.config/fish/completions/tilewave.fish";

/// Arguments of `completions`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = COMPLETIONS_EXAMPLES)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// The completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> String {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "tilewave", &mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;
    use crate::output::Format;

    #[test]
    fn the_command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Every command and every flag says what it is for, and every leaf
    /// command shows examples in its long help.
    #[test]
    fn every_command_and_flag_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let here = format!("{path} {}", cmd.get_name());
            if cmd.get_about().is_none() {
                missing.push(format!("{here}: no about"));
            }
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id != "help" && id != "version" && arg.get_help().is_none() {
                    missing.push(format!("{here} {id}: no help"));
                }
            }
            let subs: Vec<&clap::Command> =
                cmd.get_subcommands().filter(|c| c.get_name() != "help").collect();
            if subs.is_empty() && cmd.get_after_long_help().is_none() {
                missing.push(format!("{here}: no examples"));
            }
            for sub in subs {
                walk(sub, &here, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "", &mut missing);
        assert!(missing.is_empty(), "{missing:#?}");
    }

    #[test]
    fn global_flags_anywhere_and_output_formats() {
        let cli = Cli::try_parse_from([
            "tilewave",
            "tile",
            "list",
            "-o",
            "yaml",
            "--registry",
            "http://x:1",
        ])
        .unwrap();
        assert_eq!(cli.global.output, Format::Yaml);
        assert_eq!(
            cli.global
                .flag_settings()
                .urls
                .get("registry")
                .map(String::as_str),
            Some("http://x:1")
        );
        assert_eq!(cli.command.name(), "tile list");
        let err = Cli::try_parse_from(["tilewave", "tile", "list", "-o", "xml"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let err = Cli::try_parse_from(["tilewave", "tile", "frobnicate"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn completions_are_generated() {
        let text = completions(clap_complete::Shell::Bash);
        assert!(
            text.contains("set-test-workspace"),
            "bash completions name the commands"
        );
    }
}
