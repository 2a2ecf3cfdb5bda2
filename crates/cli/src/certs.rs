//! `tilewave certs init | issue | list`: a development CA and the
//! certificates of the services and users, as PEM files (0600) in one
//! directory. Give the services `--tls-cert/--tls-key/--tls-ca` (or
//! `TILEWAVE_TLS_*`) and the CLI the same settings (flags, environment or
//! the config file keys `tls-cert`, `tls-key`, `tls-ca`) to run with
//! mutual TLS. `init` also writes the access policy `policy.toml` (the
//! development defaults and you as release-engineer, 0600) for the
//! services' `--policy`; `issue NAME --role ROLE` sets NAME's role there,
//! `role NAME ROLE` changes it (or `--remove` takes it away) and `revoke
//! NAME` deny-lists the serial of NAME's certificate, without issuing a
//! certificate: the services reload the policy file on change.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Subcommand;
use serde::Serialize;
pub use tilewave_tls::devset::{CA_NAME, POLICY_FILE, SERVICES};
use tilewave_tls::files::{pair_paths, write_pair};
use tilewave_tls::{Ca, CertInfo, EXPIRY_WARNING_DAYS};

use crate::client::{note, out};
use crate::error::CliError;
use crate::output::{Format, Table, structured};
use crate::settings::{config_path, process_env};

/// Environment variable: the certificates directory.
pub const ENV_CERTS_DIR: &str = "TILEWAVE_CERTS_DIR";
/// The key-encryption key file `certs init --kek` writes in the directory.
pub const KEK_FILE: &str = "kek";
/// The longest certificate name accepted.
pub const MAX_NAME: usize = 64;

/// Examples of `certs init`.
const INIT_EXAMPLES: &str = "\
Examples:
  tilewave certs init
  tilewave certs init --dir /tmp/tw-certs
  tilewave certs init --force      # a new CA: every certificate is issued again
  tilewave certs init --dir /certs --if-missing --user ops \
      --host etcd=etcd1,etcd2,etcd3 --host partner-double=partner-double   # a compose deployment";

/// Examples of `certs issue`.
const ISSUE_EXAMPLES: &str = "\
Examples:
  tilewave certs issue ada --role release-engineer
  tilewave certs issue acme-bot --role partner:acme
  tilewave certs issue ci-bot --dir /tmp/tw-certs
  tilewave certs issue registry --force --host registry,registry-1,registry-2   # a service's new certificate";

/// Examples of `certs role`.
const ROLE_EXAMPLES: &str = "\
Examples:
  tilewave certs role ada oncall          # the same certificate, another role
  tilewave certs role acme-bot partner:acme
  tilewave certs role ada --remove        # ada's calls are refused from now on
The services re-read policy.toml within seconds; no certificate is issued.";

/// Examples of `certs revoke`.
const REVOKE_EXAMPLES: &str = "\
Examples:
  tilewave certs revoke ada               # the serial of <dir>/ada.crt
  tilewave certs revoke --serial 3f:a0:07 # a certificate you no longer have
The serial goes on policy.toml's deny-list; the services re-read it within seconds.";

/// Examples of `certs list`.
const LIST_EXAMPLES: &str = "\
Examples:
  tilewave certs list
  tilewave certs list --dir /tmp/tw-certs -o json";

/// The certificate commands.
#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Create a development CA, a certificate per service and one for you.
    Init(InitArgs),
    /// Issue a client certificate for NAME, signed by the directory's CA.
    Issue(IssueArgs),
    /// List the certificates in the directory with their expiry.
    List(ListArgs),
    /// Change or remove NAME's role in the policy, keeping its certificate.
    Role(RoleArgs),
    /// Deny-list a certificate's serial in the policy.
    Revoke(RevokeArgs),
}

impl CertsCommand {
    /// The command's name, for the root span.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Init(_) => "certs init",
            Self::Issue(_) => "certs issue",
            Self::List(_) => "certs list",
            Self::Role(_) => "certs role",
            Self::Revoke(_) => "certs revoke",
        }
    }
}

/// Arguments of `certs init`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = INIT_EXAMPLES)]
pub struct InitArgs {
    /// The certificates directory [env: TILEWAVE_CERTS_DIR] [default: certs/ beside the config file].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Replace an existing CA and certificates.
    #[arg(long)]
    pub force: bool,
    /// The identity of your user certificate [default: $USER].
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// More host names for a certificate, as NAME=HOST,HOST: a service's
    /// (registry, rollout, credentials, escalation, agent, etcd) gets them
    /// as extra SANs; another NAME gets a server certificate of its own
    /// with those SANs and no role. Repeatable.
    #[arg(long = "host", value_name = "NAME=HOSTS", value_parser = parse_hosts)]
    pub hosts: Vec<(String, Vec<String>)>,
    /// When the directory already holds a CA, leave everything as it is
    /// and succeed (a deployment's first-start job, run on every start).
    #[arg(long, conflicts_with = "force")]
    pub if_missing: bool,
    /// Also write a new key-encryption key with this id to `<dir>/kek`
    /// (mode 0600) when the file is missing: the `--kek-file` of the
    /// credentials and escalation services and of the agents.
    #[arg(long, value_name = "ID")]
    pub kek: Option<String>,
}

/// `NAME=HOST,HOST` of `certs init --host`.
pub fn parse_hosts(text: &str) -> Result<(String, Vec<String>), String> {
    let (name, hosts) = text
        .split_once('=')
        .ok_or_else(|| format!("{}: give NAME=HOST,HOST", tilewave_core::quote::quoted(text)))?;
    check_name(name).map_err(|e| e.to_string())?;
    let hosts: Vec<String> = hosts
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(str::to_owned)
        .collect();
    if hosts.is_empty() {
        return Err(format!("{name}=: name at least one host"));
    }
    for h in &hosts {
        let ok = h.len() <= 253
            && h.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'));
        if !ok {
            return Err(format!(
                "host {}: use letters, digits, '-' and '.'",
                tilewave_core::quote::quoted(h)
            ));
        }
    }
    Ok((name.to_owned(), hosts))
}

/// Arguments of `certs issue`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = ISSUE_EXAMPLES)]
pub struct IssueArgs {
    /// The identity: the certificate's subject CN and file name (NAME.crt, NAME.key).
    pub name: String,
    /// The certificates directory [env: TILEWAVE_CERTS_DIR] [default: certs/ beside the config file].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Replace an existing certificate of that name.
    #[arg(long)]
    pub force: bool,
    /// Issue a server certificate (server and client auth) with these host
    /// names (and loopback) as SANs instead of a client certificate: a
    /// service's certificate, renewed or with more hosts. Repeatable or
    /// comma separated.
    #[arg(long = "host", value_name = "HOST", value_delimiter = ',')]
    pub hosts: Vec<String>,
    /// Give NAME this role in the directory's policy.toml (release-engineer,
    /// oncall, partner:<partner-id>, viewer or service); without it the
    /// policy is left as it is.
    #[arg(long, value_name = "ROLE")]
    pub role: Option<String>,
}

/// Arguments of `certs role`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = ROLE_EXAMPLES)]
pub struct RoleArgs {
    /// The identity (a certificate's subject CN).
    pub name: String,
    /// The new role: release-engineer, oncall, partner:<partner-id>, viewer or service.
    #[arg(required_unless_present = "remove", conflicts_with = "remove")]
    pub role: Option<String>,
    /// Take NAME's role away: its calls are refused UNAUTHENTICATED.
    #[arg(long)]
    pub remove: bool,
    /// The certificates directory [env: TILEWAVE_CERTS_DIR] [default: certs/ beside the config file].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Arguments of `certs revoke`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = REVOKE_EXAMPLES)]
pub struct RevokeArgs {
    /// The certificate to revoke: <dir>/NAME.crt.
    #[arg(required_unless_present = "serial", conflicts_with = "serial")]
    pub name: Option<String>,
    /// The serial to revoke (hex, with or without colons) instead of a file's.
    #[arg(long, value_name = "HEX")]
    pub serial: Option<String>,
    /// The certificates directory [env: TILEWAVE_CERTS_DIR] [default: certs/ beside the config file].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Arguments of `certs list`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = LIST_EXAMPLES)]
pub struct ListArgs {
    /// The certificates directory [env: TILEWAVE_CERTS_DIR] [default: certs/ beside the config file].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// The directory: `--dir`, else `$TILEWAVE_CERTS_DIR`, else `certs/` in
/// the config file's directory.
pub fn certs_dir(flag: Option<&Path>, env: &dyn Fn(&str) -> Option<String>) -> Result<PathBuf, CliError> {
    if let Some(d) = flag {
        return Ok(d.to_owned());
    }
    if let Some(d) = env(ENV_CERTS_DIR) {
        return Ok(PathBuf::from(d));
    }
    config_path(env)
        .and_then(|p| p.parent().map(|d| d.join("certs")))
        .ok_or_else(|| {
            CliError::usage(format!(
                "no certificates directory: give --dir or set {ENV_CERTS_DIR}"
            ))
        })
}

/// Checks a certificate name: it is a file name and a subject CN, so
/// letters, digits and `-_.@` only, not starting with `.`, at most
/// [`MAX_NAME`] long, and not the CA's.
pub fn check_name(name: &str) -> Result<(), CliError> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if name.is_empty() || name.len() > MAX_NAME || !ok_chars || name.starts_with('.') {
        return Err(CliError::usage(format!(
            "certificate name {}: use 1 to {MAX_NAME} letters, digits, '-', '_', '.' or '@', not starting with '.'",
            tilewave_core::quote::quoted(name)
        )));
    }
    if name == CA_NAME {
        return Err(CliError::usage(format!(
            "{CA_NAME:?} is the CA's name; pick another"
        )));
    }
    Ok(())
}

/// Runs a certs command.
pub fn run(cmd: CertsCommand, format: Format) -> anyhow::Result<()> {
    match cmd {
        CertsCommand::Init(a) => init(&a),
        CertsCommand::Issue(a) => issue(&a),
        CertsCommand::List(a) => list(&a, format),
        CertsCommand::Role(a) => role(&a),
        CertsCommand::Revoke(a) => revoke(&a),
    }
}

fn tls_err(e: tilewave_tls::Error) -> anyhow::Error {
    match e {
        tilewave_tls::Error::Generate { .. } => anyhow::Error::new(e),
        other => CliError::usage(other.to_string()).into(),
    }
}

fn init(args: &InitArgs) -> anyhow::Result<()> {
    let dir = certs_dir(args.dir.as_deref(), &process_env)?;
    let user = args
        .user
        .clone()
        .or_else(|| process_env("USER"))
        .unwrap_or_else(|| "user".to_owned());
    check_name(&user)?;
    if SERVICES.contains(&user.as_str()) {
        return Err(CliError::usage(format!("--user {user:?} is a service's name; pick another")).into());
    }
    let (ca_cert, _) = pair_paths(&dir, CA_NAME);
    let kek_note = match &args.kek {
        Some(id) if !dir.join(KEK_FILE).exists() => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            tilewave_secrets::write_new_kek_file(&dir.join(KEK_FILE), id)
                .map_err(|e| CliError::usage(format!("--kek: {e}")))?;
            format!(
                "Key-encryption key {id:?}: {} (0600)\n",
                dir.join(KEK_FILE).display()
            )
        }
        Some(_) => format!("Key-encryption key: {} kept\n", dir.join(KEK_FILE).display()),
        None => String::new(),
    };
    if ca_cert.exists() && args.if_missing {
        out(&kek_note)?;
        return out(&format!(
            "{} already exists: the certificates there are kept (--if-missing)\n",
            ca_cert.display()
        ));
    }
    if ca_cert.exists() && !args.force {
        return Err(CliError::Conflict(format!(
            "{} already exists: a CA is set up there (use --force for a new CA and new certificates)",
            ca_cert.display()
        ))
        .into());
    }
    let set = tilewave_tls::write_dev_set_with_hosts(
        &dir,
        &[(user.as_str(), Some(tilewave_auth::Role::ReleaseEngineer))],
        &args.hosts,
        args.force,
    )
    .map_err(tls_err)?;
    let (written, policy_path) = (set.written, set.policy);
    let mut text = kek_note;
    text.push_str(&format!("Certificates in {} (files 0600):\n", dir.display()));
    for (cert, key) in &written {
        text.push_str(&format!("  {}  {}\n", cert.display(), key.display()));
    }
    text.push_str(&format!(
        "Access policy (you as release-engineer): {}\n",
        policy_path.display()
    ));
    let (user_cert, user_key) = pair_paths(&dir, &user);
    text.push_str(&format!(
        "\nServices: --tls-cert {d}/<service>.crt --tls-key {d}/<service>.key --tls-ca {ca} --policy {policy}\n\
         You:\n  export TILEWAVE_TLS_CERT={uc} TILEWAVE_TLS_KEY={uk} TILEWAVE_TLS_CA={ca}\n",
        d = dir.display(),
        ca = ca_cert.display(),
        uc = user_cert.display(),
        uk = user_key.display(),
        policy = policy_path.display(),
    ));
    out(&text)
}

/// A certificate name as a policy identity.
fn identity(name: &str) -> anyhow::Result<tilewave_auth::Identity> {
    tilewave_auth::Identity::parse(name).map_err(|e| CliError::usage(e.to_string()).into())
}

/// Writes the policy to `<dir>/policy.toml` (atomically, 0600).
fn write_policy(dir: &Path, policy: &tilewave_auth::Policy) -> anyhow::Result<PathBuf> {
    tilewave_tls::devset::write_policy(dir, policy).map_err(tls_err)
}

/// The directory's policy, or the development defaults when it has none
/// yet (a directory from before `init` wrote one).
fn read_policy(dir: &Path) -> anyhow::Result<tilewave_auth::Policy> {
    let path = dir.join(POLICY_FILE);
    if !path.exists() {
        return Ok(tilewave_auth::Policy::dev_default());
    }
    tilewave_auth::policy::load(&path).map_err(|e| CliError::usage(e.to_string()).into())
}

fn issue(args: &IssueArgs) -> anyhow::Result<()> {
    check_name(&args.name)?;
    // The role and the policy are checked before anything is written.
    let role = args
        .role
        .as_deref()
        .map(|r| {
            r.parse::<tilewave_auth::Role>()
                .map_err(|e| CliError::usage(format!("--role: {e}")))
        })
        .transpose()?;
    let dir = certs_dir(args.dir.as_deref(), &process_env)?;
    let policy = match &role {
        Some(_) => Some((read_policy(&dir)?, identity(&args.name)?)),
        None => None,
    };
    let (ca_cert, ca_key) = pair_paths(&dir, CA_NAME);
    if !ca_cert.exists() {
        return Err(CliError::usage(format!(
            "{} does not exist: run `tilewave certs init --dir {}` first",
            ca_cert.display(),
            dir.display()
        ))
        .into());
    }
    let ca = Ca::load(&ca_cert, &ca_key).map_err(tls_err)?;
    let issued = if args.hosts.is_empty() {
        ca.issue_client(&args.name).map_err(tls_err)?
    } else {
        let (_, hosts) = parse_hosts(&format!("{}={}", args.name, args.hosts.join(",")))
            .map_err(|e| CliError::usage(format!("--host: {e}")))?;
        ca.issue_service(&args.name, &hosts).map_err(tls_err)?
    };
    let (cert, key) = write_pair(&dir, &args.name, &issued, args.force).map_err(tls_err)?;
    let info = tilewave_tls::inspect::read_cert(&cert).map_err(tls_err)?;
    let mut text = format!(
        "Issued {} (serial {}, until {}):\n  {}\n  {}\n",
        args.name,
        info.serial,
        short_date(&info),
        cert.display(),
        key.display()
    );
    if let (Some(role), Some((mut policy, name))) = (role, policy) {
        text.push_str(&format!("Role {role} in "));
        policy.set_role(name, role);
        let path = write_policy(&dir, &policy)?;
        text.push_str(&format!("{}\n", path.display()));
    }
    out(&text)
}

/// The directory's policy file, which must exist (`certs init` writes it).
fn existing_policy(dir: &Path) -> anyhow::Result<tilewave_auth::Policy> {
    let path = dir.join(POLICY_FILE);
    if !path.exists() {
        return Err(CliError::usage(format!(
            "{} does not exist: run `tilewave certs init --dir {}` first (or give --dir)",
            path.display(),
            dir.display()
        ))
        .into());
    }
    read_policy(dir)
}

fn role(args: &RoleArgs) -> anyhow::Result<()> {
    let name = identity(&args.name)?;
    let role = args
        .role
        .as_deref()
        .map(|r| {
            r.parse::<tilewave_auth::Role>()
                .map_err(|e| CliError::usage(format!("ROLE: {e}")))
        })
        .transpose()?;
    let dir = certs_dir(args.dir.as_deref(), &process_env)?;
    let mut policy = existing_policy(&dir)?;
    let before = policy.role_of(&name).map(ToString::to_string);
    let after = match role {
        Some(role) => {
            let text = role.to_string();
            policy.set_role(name, role);
            Some(text)
        }
        None => {
            policy.remove(&name);
            None
        }
    };
    let path = write_policy(&dir, &policy)?;
    let show = |r: &Option<String>| r.clone().unwrap_or_else(|| "(none)".to_owned());
    out(&format!(
        "{}: role {} -> {} in {} (no certificate issued; the services re-read it within seconds)\n",
        args.name,
        show(&before),
        show(&after),
        path.display()
    ))
}

fn revoke(args: &RevokeArgs) -> anyhow::Result<()> {
    let dir = certs_dir(args.dir.as_deref(), &process_env)?;
    let (serial, what) = match (&args.name, &args.serial) {
        (_, Some(hex)) => (
            hex.parse::<tilewave_auth::Serial>()
                .map_err(|e| CliError::usage(format!("--serial: {e}")))?,
            format!("serial {hex}"),
        ),
        (Some(name), None) => {
            check_name(name)?;
            let (cert, _) = pair_paths(&dir, name);
            let info = tilewave_tls::inspect::read_cert(&cert).map_err(tls_err)?;
            let serial = info
                .serial
                .parse::<tilewave_auth::Serial>()
                .map_err(|e| CliError::usage(format!("{}: {e}", cert.display())))?;
            (serial, format!("{} ({})", name, cert.display()))
        }
        (None, None) => return Err(CliError::usage("give NAME or --serial HEX").into()),
    };
    let mut policy = existing_policy(&dir)?;
    let already = policy.is_revoked(&serial);
    policy.revoke(serial.clone());
    let path = write_policy(&dir, &policy)?;
    out(&format!(
        "{} {what}: serial {serial} on the deny-list of {} (the services re-read it within seconds)\n",
        if already { "Already revoked" } else { "Revoked" },
        path.display()
    ))
}

/// One certificate of `certs list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertRow {
    /// The file stem.
    pub name: String,
    /// The serial (hex).
    pub serial: String,
    /// The subject DN.
    pub subject: String,
    /// The SANs.
    pub sans: Vec<String>,
    /// Not valid after (RFC 3339).
    pub not_after: String,
    /// Whole days left (negative: expired).
    pub days_left: i64,
    /// The expiry warning, if within the warning window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

fn short_date(info: &CertInfo) -> String {
    info.not_after.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

/// The rows of `certs list` for the certificates in `dir` at `now`, by
/// name; a file that is not a certificate is reported, not skipped.
pub fn rows(dir: &Path, now: jiff::Timestamp) -> anyhow::Result<(Vec<CertRow>, Vec<String>)> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            anyhow::Error::new(CliError::usage(format!(
                "{} does not exist: run `tilewave certs init --dir {}`",
                dir.display(),
                dir.display()
            )))
        } else {
            anyhow::Error::new(e).context(format!("reading {}", dir.display()))
        }
    })?;
    let mut paths: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        if path.extension().is_some_and(|e| e == "crt") {
            paths.push(path);
        }
    }
    paths.sort();
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for path in paths {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        match tilewave_tls::inspect::read_cert(&path) {
            Ok(info) => rows.push(CertRow {
                warning: info.expiry_warning("", now).map(|w| w.trim().to_owned()),
                serial: info.serial.clone(),
                subject: info.subject.clone(),
                sans: info.sans.clone(),
                not_after: info.not_after.to_string(),
                days_left: info.days_left(now),
                name,
            }),
            Err(e) => problems.push(e.to_string()),
        }
    }
    Ok((rows, problems))
}

/// The table of `certs list`.
pub fn table(rows: &[CertRow]) -> Table {
    let mut t = Table::new(&["NAME", "SERIAL", "SUBJECT", "NOT AFTER", "EXPIRY"]);
    for r in rows {
        t.row(vec![
            r.name.clone(),
            r.serial.clone(),
            r.subject.clone(),
            r.not_after.clone(),
            match &r.warning {
                Some(w) => format!("WARNING: {w}"),
                None => format!("in {} days", r.days_left),
            },
        ]);
    }
    t
}

fn list(args: &ListArgs, format: Format) -> anyhow::Result<()> {
    let dir = certs_dir(args.dir.as_deref(), &process_env)?;
    let (rows, problems) = rows(&dir, tilewave_tls::wall_clock_now())?;
    for p in &problems {
        note(&format!("warning: {p}"));
    }
    let warned = rows.iter().filter(|r| r.warning.is_some()).count();
    if let Some(text) = structured(format, &rows)? {
        return out(&text);
    }
    if rows.is_empty() {
        return out(&format!("no certificates in {}\n", dir.display()));
    }
    out(&table(&rows).render())?;
    if warned > 0 {
        note(&format!(
            "warning: {warned} certificate(s) expire within {EXPIRY_WARNING_DAYS} days; issue new ones"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn the_directory_comes_from_the_flag_the_env_or_beside_the_config() {
        let env = env_of(&[(ENV_CERTS_DIR, "/env"), ("HOME", "/h")]);
        assert_eq!(
            certs_dir(Some(Path::new("/flag")), &env).unwrap(),
            PathBuf::from("/flag")
        );
        assert_eq!(certs_dir(None, &env).unwrap(), PathBuf::from("/env"));
        let env = env_of(&[("HOME", "/h")]);
        assert_eq!(
            certs_dir(None, &env).unwrap(),
            PathBuf::from("/h/.config/tilewave/certs")
        );
        assert!(certs_dir(None, &env_of(&[])).is_err());
    }

    #[test]
    fn names_are_file_names_and_not_the_ca() {
        for ok in ["ada", "ci-bot", "grace.hopper", "lin@example.com", "svc_1"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        let long = "x".repeat(MAX_NAME + 1);
        for bad in ["", "../etc", "a/b", ".hidden", "ca", "a b", "é", long.as_str()] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rows_warn_within_fourteen_days() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::generate().unwrap();
        write_pair(dir.path(), "ca", &ca.issued(), false).unwrap();
        write_pair(dir.path(), "ada", &ca.issue_client("ada").unwrap(), false).unwrap();
        std::fs::write(dir.path().join("junk.crt"), "nope").unwrap();
        let now = tilewave_tls::wall_clock_now();
        let (rows, problems) = rows(dir.path(), now).unwrap();
        assert_eq!(
            rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            ["ada", "ca"]
        );
        assert!(rows.iter().all(|r| r.warning.is_none()));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("junk.crt") && problems[0].contains("not PEM"),
            "{problems:?}"
        );
        let later = now + jiff::SignedDuration::from_hours(24 * 360);
        let (rows, _) = super::rows(dir.path(), later).unwrap();
        let ada = rows.iter().find(|r| r.name == "ada").unwrap();
        assert!(
            ada.warning.as_deref().is_some_and(|w| w.contains("expires in")),
            "{ada:?}"
        );
        let text = table(&rows).render();
        assert!(text.contains("WARNING: expires in"), "{text}");
    }
}
