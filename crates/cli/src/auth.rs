//! `tilewave auth table`: which roles may call each RPC, from the one table
//! the services check every call against (`tilewave_auth::table`).

use clap::Subcommand;

use crate::client::out;
use crate::output::{Format, structured};

/// Examples of `auth table`.
const TABLE_EXAMPLES: &str = "\
Roles: release-engineer, oncall, partner:<partner-id>, viewer, service. In the table, x is
allowed, - refused, and own allowed for a partner's own tiles only.

Examples:
  tilewave auth table
  tilewave auth table -o json";

/// The auth commands.
#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Show which roles may call each RPC.
    #[command(after_long_help = TABLE_EXAMPLES)]
    Table,
}

impl AuthCommand {
    /// The command's name, for the root span.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Table => "auth table",
        }
    }
}

/// What `auth table` prints in a format.
pub fn table(format: Format) -> anyhow::Result<String> {
    Ok(match structured(format, &tilewave_auth::table::views())? {
        Some(text) => text,
        None => tilewave_auth::table::render(),
    })
}

/// Runs an auth command (no service is called).
pub fn run(cmd: &AuthCommand, format: Format) -> anyhow::Result<()> {
    match cmd {
        AuthCommand::Table => out(&table(format)?),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> Result<(AuthCommand, Format), clap::Error> {
        let argv = ["tilewave", "auth"].iter().chain(args.iter()).copied();
        let cli = Cli::try_parse_from(argv)?;
        match cli.command {
            Command::Auth(a) => Ok((a, cli.global.output)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn table_from_argv() {
        let cases: &[(&[&str], Format)] = &[
            (&["table"], Format::Table),
            (&["table", "-o", "json"], Format::Json),
            (&["table", "-o", "yaml"], Format::Yaml),
        ];
        for (args, want) in cases {
            let (cmd, format) = parse(args).unwrap();
            assert_eq!(cmd.name(), "auth table");
            assert_eq!(format, *want, "{args:?}");
        }
        for bad in [&["tables"][..], &[], &["table", "extra"]] {
            assert_eq!(parse(bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn table_in_each_format() {
        let text = table(Format::Table).unwrap();
        assert!(text.starts_with("RPC "), "{text}");
        let line = text
            .lines()
            .find(|l| l.starts_with("RegistryService/AdvanceLifecycle "))
            .unwrap();
        assert_eq!(
            line.split_whitespace().skip(1).collect::<Vec<_>>(),
            ["-", "-", "-", "-", "x"]
        );

        let json: serde_json::Value = serde_json::from_str(&table(Format::Json).unwrap()).unwrap();
        let rows = json.as_array().unwrap();
        assert_eq!(rows.len(), tilewave_auth::TABLE.len());
        let start = rows
            .iter()
            .find(|r| r["rpc"] == "RolloutService/StartRollout")
            .unwrap();
        assert_eq!(start["path"], "/tilewave.rollout.v1.RolloutService/StartRollout");
        assert_eq!(start["roles"], serde_json::json!(["release-engineer"]));
        assert_eq!(start["partner_own_tiles_only"], false);

        let yaml = table(Format::Yaml).unwrap();
        assert!(yaml.contains("- rpc: RegistryService/GetTile\n"), "{yaml}");
    }
}
