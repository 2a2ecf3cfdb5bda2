//! The record of a running dev stack, `<dir>/stack.toml`: what `dev up`
//! started (pids, ports, log paths), whether it runs TLS, and the settings
//! it saved for later commands (its addresses and the CLI's certificate:
//! the last layer of the settings chain, see `crate::settings`), so that
//! `dev status` and `dev down` act on exactly those processes and nothing
//! else, and every other command finds the stack without flags.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::error::CliError;
use crate::settings::FileSettings;

/// The stack file's name inside the dev directory.
pub const STACK_FILE: &str = "stack.toml";
/// Environment variable: the dev directory.
pub const ENV_DEV_DIR: &str = "TILEWAVE_DEV_DIR";

/// How a process's health is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthKind {
    /// etcd's own status and a read.
    Etcd,
    /// gRPC health checking.
    Grpc,
    /// It accepts a TCP connection (the partner API double).
    Tcp,
}

/// One process of the stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRecord {
    /// Instance name ("etcd", "registry", "agent-aws-eu-west-1").
    pub name: String,
    /// The pid `dev down` stops, and only that.
    pub pid: u32,
    /// The executable, to tell our process from another that got its pid.
    pub program: PathBuf,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    /// Its URL.
    pub url: String,
    /// Where it logs.
    pub log: PathBuf,
    /// How to check it.
    pub health: HealthKind,
    /// The gRPC health service name (for [`HealthKind::Grpc`]).
    #[serde(default)]
    pub health_service: String,
    /// etcd's peer port, kept so a restart with the same data dir can use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_port: Option<u16>,
}

/// The whole stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackFile {
    /// The dev directory (data, logs, this file).
    pub dir: PathBuf,
    /// Whether domain time runs on the virtual clock.
    pub virtual_clock: bool,
    /// How many regions have agents.
    pub regions: u32,
    /// The stack's region catalog when `--regions N` narrowed it: the
    /// regions with agents, which plans cover; empty: the whole catalog.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub region_ids: Vec<String>,
    /// The key prefix of every service.
    pub prefix: String,
    /// The certificates directory (the development CA, each service's
    /// certificate, the CLI's, `policy.toml`) when the stack runs TLS;
    /// `None`: it runs plaintext (`dev up --insecure`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certs: Option<PathBuf>,
    /// Services not started, and why.
    #[serde(default)]
    pub skipped: Vec<String>,
    /// The saved settings (config file keys: each service's address, and
    /// `tls-cert`, `tls-key`, `tls-ca` when the stack runs TLS), read by
    /// every later command after its flags, environment and config file.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// Processes in start order.
    #[serde(default, rename = "process")]
    pub processes: Vec<ProcessRecord>,
}

impl StackFile {
    /// Where the stack file of `dir` is.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(STACK_FILE)
    }

    /// Reads the stack file of `dir`; `None` when there is none.
    pub fn read(dir: &Path) -> anyhow::Result<Option<Self>> {
        let path = Self::path(dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let stack = toml::from_str(&text).map_err(|e| {
            CliError::usage(format!(
                "{} is damaged ({e}); stop its processes by hand, then delete it",
                path.display()
            ))
        })?;
        Ok(Some(stack))
    }

    /// Writes the stack file (atomically: a crash never leaves half a file).
    pub fn write(&self) -> anyhow::Result<()> {
        let path = Self::path(&self.dir);
        let tmp = self.dir.join(format!("{STACK_FILE}.tmp"));
        let text = toml::to_string_pretty(self).context("encoding the stack file")?;
        std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
    }

    /// Removes the stack file.
    pub fn remove(dir: &Path) -> anyhow::Result<()> {
        match std::fs::remove_file(Self::path(dir)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// The process named `name`.
    pub fn process(&self, name: &str) -> Option<&ProcessRecord> {
        self.processes.iter().find(|p| p.name == name)
    }

    /// Whether the stack runs TLS.
    pub fn runs_tls(&self) -> bool {
        self.certs.is_some()
    }

    /// The saved settings as the settings chain reads them (the config
    /// file's keys); a key it does not know is an error naming the file.
    pub fn saved_settings(&self) -> Result<FileSettings, CliError> {
        let table: toml::Table = self
            .settings
            .iter()
            .map(|(k, v)| (k.clone(), toml::Value::String(v.clone())))
            .collect();
        FileSettings::from_table(table).map_err(|e| {
            CliError::usage(format!(
                "the saved settings in {} are not valid ({e}); restart the stack with `tilewave dev down` and `tilewave dev up`",
                Self::path(&self.dir).display()
            ))
        })
    }
}

/// The dev stack recorded in the dev directory `env` names (no `--dir`:
/// `$TILEWAVE_DEV_DIR`, else the default), whose saved settings every
/// command reads last; `None` when there is no stack there (or no dev
/// directory can be named).
pub fn saved_stack(env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Option<StackFile>> {
    match dev_dir(None, env) {
        Ok(dir) => StackFile::read(&dir),
        Err(_) => Ok(None),
    }
}

/// The dev directory: `--dir`, else `$TILEWAVE_DEV_DIR`, else
/// `$XDG_DATA_HOME/tilewave/dev`, else `~/.local/share/tilewave/dev`.
pub fn dev_dir(flag: Option<&Path>, env: &dyn Fn(&str) -> Option<String>) -> Result<PathBuf, CliError> {
    if let Some(d) = flag {
        return Ok(d.to_path_buf());
    }
    if let Some(d) = env(ENV_DEV_DIR) {
        return Ok(PathBuf::from(d));
    }
    if let Some(d) = env("XDG_DATA_HOME") {
        return Ok(Path::new(&d).join("tilewave").join("dev"));
    }
    env("HOME")
        .map(|h| {
            Path::new(&h)
                .join(".local")
                .join("share")
                .join("tilewave")
                .join("dev")
        })
        .ok_or_else(|| CliError::usage(format!("no dev directory: pass --dir or set {ENV_DEV_DIR}")))
}

/// Whether a process with this pid exists and is not a zombie.
pub fn pid_alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else { return false };
    let exists = !matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None),
        Err(nix::errno::Errno::ESRCH)
    );
    // A zombie has exited: it only waits to be reaped.
    exists && proc_state(pid).is_none_or(|s| s != 'Z')
}

/// The state letter of `/proc/<pid>/stat` (R, S, Z, ...), where readable.
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces.
    stat.rsplit_once(") ")?.1.chars().next()
}

/// Whether `pid` still runs `program`, from `/proc/<pid>/cmdline`; `None`
/// when that cannot be read (another OS, or the process is gone).
pub fn pid_runs(pid: u32, program: &Path) -> Option<bool> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let argv0 = cmdline.split(|b| *b == 0).next()?;
    let argv0 = Path::new(std::str::from_utf8(argv0).ok()?);
    Some(argv0.file_name().is_some() && argv0.file_name() == program.file_name())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn sample(dir: &Path) -> StackFile {
        StackFile {
            dir: dir.to_path_buf(),
            virtual_clock: true,
            regions: 3,
            region_ids: vec!["aws:ap-northeast-1".into()],
            prefix: "/tilewave/".into(),
            certs: Some(dir.join("certs")),
            skipped: vec!["rollout: tilewave-rollout is not built".into()],
            settings: BTreeMap::from([("registry".to_owned(), "http://127.0.0.1:7401".to_owned())]),
            processes: vec![
                ProcessRecord {
                    name: "etcd".into(),
                    pid: 100,
                    program: "/usr/bin/etcd".into(),
                    port: 2379,
                    url: "http://127.0.0.1:2379".into(),
                    log: dir.join("etcd.log"),
                    health: HealthKind::Etcd,
                    health_service: String::new(),
                    peer_port: Some(2380),
                },
                ProcessRecord {
                    name: "registry".into(),
                    pid: 101,
                    program: "/x/tilewave-registry".into(),
                    port: 7401,
                    url: "http://127.0.0.1:7401".into(),
                    log: dir.join("registry.log"),
                    health: HealthKind::Grpc,
                    health_service: String::new(),
                    peer_port: None,
                },
            ],
        }
    }

    #[test]
    fn stack_file_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(StackFile::read(dir.path()).unwrap(), None);
        let s = sample(dir.path());
        s.write().unwrap();
        let text = std::fs::read_to_string(StackFile::path(dir.path())).unwrap();
        assert!(text.contains("[[process]]"), "{text}");
        assert!(text.contains("name = \"registry\""), "{text}");
        assert_eq!(StackFile::read(dir.path()).unwrap(), Some(s.clone()));
        assert_eq!(s.process("registry").map(|p| p.pid), Some(101));
        StackFile::remove(dir.path()).unwrap();
        StackFile::remove(dir.path()).unwrap();
        assert_eq!(StackFile::read(dir.path()).unwrap(), None);
    }

    #[test]
    fn a_damaged_stack_file_is_a_usage_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(StackFile::path(dir.path()), "pid = [").unwrap();
        let err = StackFile::read(dir.path()).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), 2);
    }

    #[test]
    fn dev_dir_order() {
        let env = |pairs: &[(&str, &str)]| {
            let m: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
            move |k: &str| m.get(k).cloned()
        };
        let all = env(&[(ENV_DEV_DIR, "/d"), ("XDG_DATA_HOME", "/x"), ("HOME", "/h")]);
        assert_eq!(dev_dir(Some(Path::new("/f")), &all).unwrap(), PathBuf::from("/f"));
        assert_eq!(dev_dir(None, &all).unwrap(), PathBuf::from("/d"));
        assert_eq!(
            dev_dir(None, &env(&[("XDG_DATA_HOME", "/x"), ("HOME", "/h")])).unwrap(),
            PathBuf::from("/x/tilewave/dev")
        );
        assert_eq!(
            dev_dir(None, &env(&[("HOME", "/h")])).unwrap(),
            PathBuf::from("/h/.local/share/tilewave/dev")
        );
        assert_eq!(dev_dir(None, &env(&[])).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn our_own_pid_is_alive_and_runs_our_program() {
        let me = std::process::id();
        assert!(pid_alive(me));
        let exe = std::env::current_exe().unwrap();
        assert_eq!(pid_runs(me, &exe), Some(true));
        assert_eq!(
            pid_runs(me, Path::new("/usr/bin/definitely-not-this")),
            Some(false)
        );
        assert!(!pid_alive(u32::MAX));
    }
}
