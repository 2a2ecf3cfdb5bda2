//! `tilewave admin ...`: operator commands that talk to etcd directly, not
//! to a service. `bump-epoch` raises the fencing epoch after etcd was
//! restored from a backup (deploy/RESTORE.md): etcd 3.4's restore takes the
//! revisions back to the backup's, and agents refuse fencing tokens older
//! than the newest they saw; owners that take their work after the bump
//! send tokens above every earlier one.

use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;
use tilewave_store::{Actor, Store, StoreConfig};

use crate::client::{Ctx, out};
use crate::error::CliError;
use crate::output::{Format, fields, structured};

/// Examples of `admin bump-epoch`.
const BUMP_EPOCH_EXAMPLES: &str = "\
After restoring etcd from a backup (etcdctl snapshot restore), with the
tilewave services stopped, run once against the restored cluster, then start
the services (deploy/RESTORE.md):

Examples:
  tilewave admin bump-epoch --etcd https://etcd-0:2379,https://etcd-1:2379 \\
      --etcd-cacert ca.pem --etcd-cert admin.pem --etcd-key admin-key.pem
  tilewave admin bump-epoch --etcd http://127.0.0.1:2379 --prefix /tilewave/";

/// The admin commands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Raise the fencing epoch by one (after a restore of etcd from a backup).
    #[command(after_long_help = BUMP_EPOCH_EXAMPLES)]
    BumpEpoch(EtcdArgs),
}

impl AdminCommand {
    /// The command's name, for the root span.
    pub fn name(&self) -> &'static str {
        match self {
            Self::BumpEpoch(_) => "admin bump-epoch",
        }
    }
}

/// How to reach etcd (the flags follow etcdctl's names).
#[derive(Debug, Clone, clap::Args)]
pub struct EtcdArgs {
    /// etcd client URLs, comma separated.
    #[arg(
        long,
        env = "TILEWAVE_ETCD",
        value_delimiter = ',',
        required = true,
        value_name = "URL"
    )]
    pub etcd: Vec<String>,
    /// The key prefix the services use.
    #[arg(long, env = "TILEWAVE_PREFIX", default_value = tilewave_store::keys::DEFAULT_PREFIX, value_name = "PREFIX")]
    pub prefix: String,
    /// The CA certificate etcd's certificate is checked against (PEM); with
    /// --etcd-cert and --etcd-key the connection is mutual TLS.
    #[arg(long, env = "TILEWAVE_ETCD_CACERT", value_name = "FILE")]
    pub etcd_cacert: Option<PathBuf>,
    /// The client certificate presented to etcd (PEM).
    #[arg(long, env = "TILEWAVE_ETCD_CERT", value_name = "FILE")]
    pub etcd_cert: Option<PathBuf>,
    /// The private key of --etcd-cert (PEM).
    #[arg(long, env = "TILEWAVE_ETCD_KEY", value_name = "FILE")]
    pub etcd_key: Option<PathBuf>,
}

/// How long one etcd operation of an admin command may take.
const ETCD_TIMEOUT: Duration = Duration::from_secs(10);

impl EtcdArgs {
    /// The store configuration these flags give: all three TLS files or
    /// none, `https://` URLs only with them.
    pub fn store_config(&self) -> Result<StoreConfig, CliError> {
        let tls = match (&self.etcd_cacert, &self.etcd_cert, &self.etcd_key) {
            (None, None, None) => None,
            (Some(ca), Some(cert), Some(key)) => Some(
                tilewave_tls::Tls::from_files(cert, key, ca)
                    .map_err(|e| CliError::usage(format!("--etcd-cacert/--etcd-cert/--etcd-key: {e}")))?,
            ),
            _ => {
                return Err(CliError::usage(
                    "--etcd-cacert, --etcd-cert and --etcd-key go together: give all three or none",
                ));
            }
        };
        for url in &self.etcd {
            let https = url.starts_with("https://");
            if !https && !url.starts_with("http://") {
                return Err(CliError::usage(format!(
                    "--etcd: {url:?} must start with http:// or https://"
                )));
            }
            if https != tls.is_some() {
                return Err(CliError::usage(format!(
                    "--etcd: {url:?} needs {}",
                    if https {
                        "--etcd-cacert, --etcd-cert and --etcd-key"
                    } else {
                        "an https:// URL when TLS files are given"
                    }
                )));
            }
        }
        tilewave_store::Keys::new(self.prefix.clone())
            .map_err(|e| CliError::usage(format!("--prefix: {e}")))?;
        Ok(StoreConfig::new(self.etcd.clone())
            .with_prefix(self.prefix.clone())
            .with_op_timeout(ETCD_TIMEOUT)
            .with_tls(tls.as_ref().map(tilewave_tls::Tls::client_config)))
    }
}

/// What `bump-epoch` prints.
fn bumped(format: Format, old: i64, new: i64) -> anyhow::Result<String> {
    if let Some(s) = structured(format, &serde_json::json!({ "old_epoch": old, "new_epoch": new }))? {
        return Ok(s);
    }
    Ok(fields(&[
        ("old epoch", old.to_string()),
        ("new epoch", new.to_string()),
    ]))
}

/// Runs an admin command; the actor (for the audit record) is the one the
/// other commands send.
pub async fn run(
    cmd: AdminCommand,
    format: Format,
    ctx: impl FnOnce() -> anyhow::Result<Ctx>,
) -> anyhow::Result<()> {
    match cmd {
        AdminCommand::BumpEpoch(args) => {
            let config = args.store_config()?;
            let actor = Actor::new(&ctx()?.settings.actor);
            let store = Store::connect(config).await?;
            let (old, new) = store.bump_epoch(&actor).await?;
            out(&bumped(format, old, new)?)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::cli::{Cli, Command};

    fn args(line: &[&str]) -> EtcdArgs {
        let cli = Cli::try_parse_from([&["tilewave", "admin", "bump-epoch"], line].concat());
        match cli.map(|c| c.command) {
            Ok(Command::Admin(AdminCommand::BumpEpoch(a))) => a,
            other => panic!("not bump-epoch: {other:?}"),
        }
    }

    #[test]
    fn tls_files_go_together_and_match_the_scheme() {
        let plain = args(&["--etcd", "http://127.0.0.1:2379"]);
        assert!(plain.store_config().is_ok());
        assert_eq!(plain.prefix, "/tilewave/");
        let tls = args(&[
            "--etcd",
            "https://a:2379,https://b:2379",
            "--etcd-cacert",
            "/nonexistent/ca.pem",
            "--etcd-cert",
            "/nonexistent/c.pem",
            "--etcd-key",
            "/nonexistent/k.pem",
        ]);
        assert_eq!(tls.etcd.len(), 2);
        // The files are read: missing ones are a usage error naming the flags.
        let e = tls
            .store_config()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("--etcd-cacert"), "{e}");
        let half = args(&["--etcd", "https://a:2379", "--etcd-cert", "c.pem"]);
        let e = half
            .store_config()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("all three or none"), "{e}");
        let e = args(&["--etcd", "https://a:2379"])
            .store_config()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("needs --etcd-cacert"), "{e}");
        let e = args(&["--etcd", "a:2379"])
            .store_config()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("http://"), "{e}");
    }

    #[test]
    fn prints_old_and_new() -> anyhow::Result<()> {
        let table = bumped(Format::Table, 1, 2)?;
        assert!(
            table.contains("old epoch") && table.contains('1') && table.contains('2'),
            "{table}"
        );
        let json = bumped(Format::Json, 1, 2)?;
        let v: serde_json::Value = serde_json::from_str(&json)?;
        assert_eq!(v["old_epoch"], 1);
        assert_eq!(v["new_epoch"], 2);
        Ok(())
    }
}
