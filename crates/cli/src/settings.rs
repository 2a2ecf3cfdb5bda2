//! Connection settings: where the services are, who the caller is, how long
//! a call may take. Read from flags, then the environment, then the config
//! file, then defaults (docs/design.md, "Code layout"), and written back by `tilewave dev up`
//! so that every later command reaches the local stack without flags.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use crate::endpoints::{ENDPOINTS, Endpoint};
use crate::error::CliError;

/// How long one call may take when nothing else is configured.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The actor named when neither `--actor`, `TILEWAVE_ACTOR`, the config file
/// nor `$USER` says who the caller is.
pub const FALLBACK_ACTOR: &str = "unknown";

/// Environment variable: who the caller is.
pub const ENV_ACTOR: &str = "TILEWAVE_ACTOR";
/// Environment variable: the per-call timeout ("10s", "1m 30s").
pub const ENV_TIMEOUT: &str = "TILEWAVE_TIMEOUT";
/// Environment variable: the config file's path.
pub const ENV_CONFIG: &str = "TILEWAVE_CONFIG";

/// The TLS settings: (config file key and flag name, environment variable).
/// All three or none: with them every call is mutual TLS (the URLs' scheme
/// becomes `https`), without them plaintext.
pub const TLS_KEYS: [(&str, &str); 3] = [
    ("tls-cert", tilewave_tls::config::ENV_TLS_CERT),
    ("tls-key", tilewave_tls::config::ENV_TLS_KEY),
    ("tls-ca", tilewave_tls::config::ENV_TLS_CA),
];

/// The resolved settings every command runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Each service's gRPC URL, by endpoint name (every one of
    /// [`ENDPOINTS`] is present); read with [`Settings::url`].
    pub urls: BTreeMap<&'static str, String>,
    /// Sent as `x-tilewave-actor` on every call, so the audit log names who.
    pub actor: String,
    /// Deadline of each unary call (and of connecting).
    pub timeout: Duration,
    /// The client certificate, its key and the CA, when calls use TLS.
    pub tls: Option<tilewave_tls::TlsFiles>,
}

/// What the flags said; `None` where a flag was not given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlagSettings {
    /// `--<endpoint>`: the URLs given, by endpoint name.
    pub urls: BTreeMap<&'static str, String>,
    /// `--actor`.
    pub actor: Option<String>,
    /// `--timeout`.
    pub timeout: Option<String>,
    /// `--tls-cert`, `--tls-key`, `--tls-ca`, in the order of [`TLS_KEYS`].
    pub tls: [Option<String>; 3],
}

/// The config file's contents (TOML): a URL per endpoint key, `actor`,
/// `timeout`. Unknown keys are refused on reading; `dev up` edits the file
/// as a TOML table, so it keeps whatever else is in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileSettings {
    /// The URLs in the file, by endpoint name.
    pub urls: BTreeMap<&'static str, String>,
    /// Who the caller is.
    pub actor: Option<String>,
    /// Per-call timeout, e.g. "10s".
    pub timeout: Option<String>,
    /// `tls-cert`, `tls-key`, `tls-ca`, in the order of [`TLS_KEYS`].
    pub tls: [Option<String>; 3],
}

/// Where the config file is: `$TILEWAVE_CONFIG`, else
/// `$XDG_CONFIG_HOME/tilewave/config.toml`, else
/// `$HOME/.config/tilewave/config.toml`. `None` when none of these variables
/// is set.
pub fn config_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(p) = env(ENV_CONFIG) {
        return Some(PathBuf::from(p));
    }
    if let Some(x) = env("XDG_CONFIG_HOME") {
        return Some(Path::new(&x).join("tilewave").join("config.toml"));
    }
    env("HOME").map(|h| Path::new(&h).join(".config").join("tilewave").join("config.toml"))
}

/// The process environment as a lookup function; empty values count as
/// unset.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Reads the config file; a missing file is no file, an unreadable or
/// malformed one is an error naming it.
pub fn read_file_settings(path: &Path) -> anyhow::Result<Option<FileSettings>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading config file {}", path.display())),
    };
    let invalid = |e: String| CliError::Usage(format!("config file {} is not valid: {e}", path.display()));
    let table: toml::Table = toml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    Ok(Some(FileSettings::from_table(table).map_err(invalid)?))
}

impl FileSettings {
    /// The settings of a config file's table: every key must be an
    /// endpoint's, `actor` or `timeout`, and every value a string.
    pub fn from_table(table: toml::Table) -> Result<Self, String> {
        let mut out = Self::default();
        let mut unknown = Vec::new();
        for (key, value) in table {
            let toml::Value::String(v) = value else {
                return Err(format!("{key}: expected a string, found {}", value.type_str()));
            };
            match (key.as_str(), Endpoint::by_key(&key)) {
                (_, Some(e)) => {
                    out.urls.insert(e.name, v);
                }
                ("actor", None) => out.actor = Some(v),
                ("timeout", None) => out.timeout = Some(v),
                (k, None) if TLS_KEYS.iter().any(|(key, _)| *key == k) => {
                    if let Some(i) = TLS_KEYS.iter().position(|(key, _)| *key == k) {
                        out.tls[i] = Some(v);
                    }
                }
                _ => unknown.push(tilewave_core::quote::quote(&key)),
            }
        }
        if !unknown.is_empty() {
            let mut known: Vec<&str> = ENDPOINTS.iter().map(|e| e.key()).collect();
            known.extend(["actor", "timeout"]);
            known.extend(TLS_KEYS.iter().map(|(k, _)| *k));
            return Err(format!(
                "unknown key {}: expected one of {}",
                unknown.join(", "),
                known.join(", ")
            ));
        }
        Ok(out)
    }
}

/// Parses a timeout like "10s", "1m 30s", "500ms" or "PT10S".
pub fn parse_timeout(s: &str) -> Result<Duration, String> {
    let d: jiff::SignedDuration = s
        .trim()
        .parse()
        .map_err(|e| format!("{s:?} is not a duration like \"10s\" or \"1m 30s\": {e}"))?;
    let d = Duration::try_from(d).map_err(|_| format!("{s:?} is negative"))?;
    if d.is_zero() {
        return Err(format!("{s:?} must be longer than zero"));
    }
    Ok(d)
}

impl Settings {
    /// Resolves each setting: flag, else environment, else file, else the
    /// default. Every bad value is reported, all at once.
    pub fn resolve(
        flags: &FlagSettings,
        env: &dyn Fn(&str) -> Option<String>,
        file: Option<&FileSettings>,
    ) -> Result<Self, CliError> {
        let pick = |flag: &Option<String>, var: &str, from_file: Option<&Option<String>>| {
            flag.clone()
                .or_else(|| env(var))
                .or_else(|| from_file.and_then(Clone::clone))
        };
        let urls: BTreeMap<&'static str, String> = ENDPOINTS
            .iter()
            .map(|e| {
                let url = pick(
                    &flags.urls.get(e.name).cloned(),
                    &e.env(),
                    file.map(|f| f.urls.get(e.name).cloned()).as_ref(),
                )
                .unwrap_or_else(|| e.default_url());
                (e.name, url)
            })
            .collect();
        let actor = pick(&flags.actor, ENV_ACTOR, file.map(|f| &f.actor))
            .or_else(|| env("USER"))
            .unwrap_or_else(|| FALLBACK_ACTOR.to_owned());
        let mut problems = Vec::new();
        let timeout = match pick(&flags.timeout, ENV_TIMEOUT, file.map(|f| &f.timeout)) {
            None => DEFAULT_TIMEOUT,
            Some(t) => parse_timeout(&t).unwrap_or_else(|e| {
                problems.push(format!("timeout: {e}"));
                DEFAULT_TIMEOUT
            }),
        };
        let tls_given: Vec<Option<String>> = TLS_KEYS
            .iter()
            .enumerate()
            .map(|(i, (_, var))| pick(&flags.tls[i], var, file.map(|f| &f.tls[i])))
            .collect();
        let tls = match tls_given.as_slice() {
            [Some(cert), Some(key), Some(ca)] => Some(tilewave_tls::TlsFiles {
                cert: PathBuf::from(cert),
                key: PathBuf::from(key),
                ca: PathBuf::from(ca),
            }),
            given if given.iter().all(Option::is_none) => None,
            given => {
                let missing: Vec<&str> = TLS_KEYS
                    .iter()
                    .zip(given)
                    .filter(|(_, v)| v.is_none())
                    .map(|((k, _), _)| *k)
                    .collect();
                problems.push(format!(
                    "tls: --tls-cert, --tls-key and --tls-ca go together; missing {}",
                    missing.join(", ")
                ));
                None
            }
        };
        for (what, url) in &urls {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                problems.push(format!("{what}: {url:?} is not an http:// or https:// URL"));
            }
        }
        if actor.trim().is_empty() || !actor.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
            problems.push(format!(
                "actor: {actor:?} must be printable ASCII (it travels in a gRPC header)"
            ));
        }
        if !problems.is_empty() {
            return Err(CliError::Usage(format!(
                "bad settings:\n  {}",
                problems.join("\n  ")
            )));
        }
        Ok(Self {
            urls,
            actor,
            timeout,
            tls,
        })
    }

    /// The URL of `endpoint` (its default when, in a hand-built value, it
    /// is missing).
    pub fn url(&self, endpoint: Endpoint) -> String {
        self.urls
            .get(endpoint.name)
            .cloned()
            .unwrap_or_else(|| endpoint.default_url())
    }

    /// Reads the config file (from `env`'s idea of where it is) and resolves.
    pub fn load(flags: &FlagSettings, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let file = match config_path(env) {
            Some(p) => read_file_settings(&p)?,
            None => None,
        };
        Ok(Self::resolve(flags, env, file.as_ref())?)
    }
}

/// Sets `key = value` for each pair in the config file at `path`, keeping
/// everything else in it; creates the file (and its directory) if needed.
pub fn write_config_values(path: &Path, values: &[(&str, &str)]) -> anyhow::Result<()> {
    let mut table = read_table(path)?;
    for (k, v) in values {
        table.insert((*k).to_owned(), toml::Value::String((*v).to_owned()));
    }
    write_table(path, &table)
}

/// Removes each key whose value is still the one given (so that a value
/// the user changed since is left alone); deletes the file when nothing is
/// left in it. Returns the keys removed.
pub fn remove_config_values(path: &Path, values: &[(&str, &str)]) -> anyhow::Result<Vec<String>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let mut table = read_table(path)?;
    let mut removed = Vec::new();
    for (k, v) in values {
        if table.get(*k).and_then(toml::Value::as_str) == Some(*v) {
            table.remove(*k);
            removed.push((*k).to_owned());
        }
    }
    if table.is_empty() {
        std::fs::remove_file(path).with_context(|| format!("removing {}", path.display()))?;
    } else {
        write_table(path, &table)?;
    }
    Ok(removed)
}

/// The config file as a TOML table (empty when there is none).
fn read_table(path: &Path) -> anyhow::Result<toml::Table> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|e| {
            CliError::Usage(format!("config file {} is not valid TOML: {e}", path.display())).into()
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(toml::Table::new()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Writes a TOML table, creating the directory.
fn write_table(path: &Path, table: &toml::Table) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = toml::to_string(table).context("encoding the config file")?;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::endpoints::{REGISTRY, ROLLOUT};

    fn urls(pairs: &[(&'static str, &str)]) -> BTreeMap<&'static str, String> {
        pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
    }

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn file(registry: &str, actor: &str, timeout: &str) -> FileSettings {
        FileSettings {
            urls: urls(&[("registry", registry)]),
            actor: Some(actor.to_owned()),
            timeout: Some(timeout.to_owned()),
            tls: Default::default(),
        }
    }

    #[test]
    fn precedence_is_flags_then_env_then_file_then_defaults() {
        let flags = FlagSettings {
            urls: urls(&[("registry", "http://flag:1")]),
            ..FlagSettings::default()
        };
        let env = env_of(&[
            (&REGISTRY.env(), "http://env:2"),
            (ENV_ACTOR, "env-actor"),
            ("USER", "unix-user"),
        ]);
        let f = file("http://file:3", "file-actor", "3s");
        let s = Settings::resolve(&flags, &env, Some(&f)).unwrap();
        assert_eq!(s.url(REGISTRY), "http://flag:1", "flag beats env and file");
        assert_eq!(s.actor, "env-actor", "env beats file");
        assert_eq!(s.timeout, Duration::from_secs(3), "file beats default");
        assert_eq!(s.url(ROLLOUT), ROLLOUT.default_url(), "default when nobody says");
    }

    #[test]
    fn table_of_sources() {
        // (flag, env, file, expected registry)
        let cases = [
            (None, None, None, "http://127.0.0.1:7401"),
            (None, None, Some("http://f"), "http://f"),
            (None, Some("http://e"), Some("http://f"), "http://e"),
            (Some("http://x"), Some("http://e"), Some("http://f"), "http://x"),
            (Some("http://x"), None, None, "http://x"),
        ];
        for (flag, env, from_file, want) in cases {
            let flags = FlagSettings {
                urls: flag.map(|f| urls(&[("registry", f)])).unwrap_or_default(),
                ..FlagSettings::default()
            };
            let var = REGISTRY.env();
            let pairs: Vec<(&str, &str)> = env.map(|e| (var.as_str(), e)).into_iter().collect();
            let fs = from_file.map(|r| FileSettings {
                urls: urls(&[("registry", r)]),
                ..FileSettings::default()
            });
            let s = Settings::resolve(&flags, &env_of(&pairs), fs.as_ref()).unwrap();
            assert_eq!(
                s.url(REGISTRY),
                want,
                "flag={flag:?} env={env:?} file={from_file:?}"
            );
        }
    }

    #[test]
    fn actor_falls_back_to_user_then_unknown() {
        let none = FlagSettings::default();
        let s = Settings::resolve(&none, &env_of(&[("USER", "ada")]), None).unwrap();
        assert_eq!(s.actor, "ada");
        let s = Settings::resolve(&none, &env_of(&[]), None).unwrap();
        assert_eq!(s.actor, FALLBACK_ACTOR);
        assert_eq!(s.timeout, DEFAULT_TIMEOUT);
    }

    #[test]
    fn every_bad_value_is_reported_together() {
        let flags = FlagSettings {
            urls: urls(&[("registry", "127.0.0.1:7401")]),
            timeout: Some("soon".into()),
            actor: Some("\u{1F600}".into()),
            tls: Default::default(),
        };
        let err = Settings::resolve(&flags, &env_of(&[]), None).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("registry"), "{text}");
        assert!(text.contains("timeout"), "{text}");
        assert!(text.contains("actor"), "{text}");
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn config_path_order() {
        let p = config_path(&env_of(&[
            (ENV_CONFIG, "/c.toml"),
            ("XDG_CONFIG_HOME", "/x"),
            ("HOME", "/h"),
        ]));
        assert_eq!(p, Some(PathBuf::from("/c.toml")));
        let p = config_path(&env_of(&[("XDG_CONFIG_HOME", "/x"), ("HOME", "/h")]));
        assert_eq!(p, Some(PathBuf::from("/x/tilewave/config.toml")));
        let p = config_path(&env_of(&[("HOME", "/h")]));
        assert_eq!(p, Some(PathBuf::from("/h/.config/tilewave/config.toml")));
        assert_eq!(config_path(&env_of(&[])), None);
    }

    #[test]
    fn load_reads_the_file_and_rejects_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "registry = \"http://127.0.0.1:9\"\ntimeout = \"2s\"\n").unwrap();
        let p = path.display().to_string();
        let env = env_of(&[(ENV_CONFIG, &p)]);
        let s = Settings::load(&FlagSettings::default(), &env).unwrap();
        assert_eq!(s.url(REGISTRY), "http://127.0.0.1:9");
        assert_eq!(s.timeout, Duration::from_secs(2));

        std::fs::write(&path, "registri = \"http://x\"\n").unwrap();
        let err = Settings::load(&FlagSettings::default(), &env).unwrap_err();
        assert!(format!("{err:#}").contains("registri"), "{err:#}");
    }

    #[test]
    fn every_endpoint_is_a_config_key_and_other_keys_are_refused() {
        let mut table = toml::Table::new();
        for e in crate::endpoints::ENDPOINTS {
            table.insert(
                e.key().to_owned(),
                toml::Value::String(format!("http://{}:1", e.name)),
            );
        }
        table.insert("actor".into(), toml::Value::String("ada".into()));
        let f = FileSettings::from_table(table.clone()).unwrap();
        for e in crate::endpoints::ENDPOINTS {
            assert_eq!(f.urls.get(e.name), Some(&format!("http://{}:1", e.name)));
        }
        assert_eq!(f.actor.as_deref(), Some("ada"));
        table.insert("credentialz".into(), toml::Value::String("x".into()));
        let err = FileSettings::from_table(table).unwrap_err();
        assert!(
            err.contains("credentialz")
                && err.contains("expected one of registry, rollout")
                && err.contains("tls-cert, tls-key, tls-ca"),
            "{err}"
        );
        let mut bad = toml::Table::new();
        bad.insert("timeout".into(), toml::Value::Integer(10));
        let err = FileSettings::from_table(bad).unwrap_err();
        assert!(err.contains("timeout: expected a string"), "{err}");
    }

    #[test]
    fn writing_keeps_other_keys_and_removing_only_unchanged_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("config.toml");
        write_config_values(&path, &[("actor", "ada")]).unwrap();
        write_config_values(
            &path,
            &[
                ("registry", "http://127.0.0.1:5"),
                ("rollout", "http://127.0.0.1:6"),
            ],
        )
        .unwrap();
        let f = read_file_settings(&path).unwrap().unwrap();
        assert_eq!(f.actor.as_deref(), Some("ada"));
        assert_eq!(
            f.urls.get("registry").map(String::as_str),
            Some("http://127.0.0.1:5")
        );

        // The user changed rollout since: it stays.
        write_config_values(&path, &[("rollout", "http://elsewhere:1")]).unwrap();
        let removed = remove_config_values(
            &path,
            &[
                ("registry", "http://127.0.0.1:5"),
                ("rollout", "http://127.0.0.1:6"),
            ],
        )
        .unwrap();
        assert_eq!(removed, vec!["registry".to_owned()]);
        let f = read_file_settings(&path).unwrap().unwrap();
        assert_eq!(f.urls.get("registry"), None);
        assert_eq!(
            f.urls.get("rollout").map(String::as_str),
            Some("http://elsewhere:1")
        );

        // Nothing left: the file goes.
        remove_config_values(&path, &[("rollout", "http://elsewhere:1"), ("actor", "ada")]).unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn timeouts_parse_in_friendly_and_iso_forms() {
        assert_eq!(parse_timeout("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_timeout("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_timeout("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_timeout("PT2S"), Ok(Duration::from_secs(2)));
        assert!(parse_timeout("0s").is_err());
        assert!(parse_timeout("-1s").is_err());
        assert!(parse_timeout("ten").is_err());
    }

    #[test]
    fn tls_files_come_through_the_same_chain_and_go_together() {
        let none = Settings::resolve(&FlagSettings::default(), &env_of(&[]), None).unwrap();
        assert_eq!(none.tls, None, "plaintext unless told");
        let mut table = toml::Table::new();
        for (k, _) in TLS_KEYS {
            table.insert(k.to_owned(), toml::Value::String(format!("/file/{k}")));
        }
        let f = FileSettings::from_table(table).unwrap();
        let flags = FlagSettings {
            tls: [Some("/flag/cert".into()), None, None],
            ..FlagSettings::default()
        };
        let env = env_of(&[(tilewave_tls::config::ENV_TLS_KEY, "/env/key")]);
        let s = Settings::resolve(&flags, &env, Some(&f)).unwrap();
        let tls = s.tls.unwrap();
        assert_eq!(
            (tls.cert, tls.key, tls.ca),
            ("/flag/cert".into(), "/env/key".into(), "/file/tls-ca".into())
        );
        let err = Settings::resolve(&flags, &env_of(&[]), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing tls-key, tls-ca"), "{err}");
    }
}
