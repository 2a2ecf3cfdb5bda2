//! Connection settings: where the services are, who the caller is, how long
//! a call may take, which certificate it presents. Each is read from the
//! flags, then the environment, then the config file, then the dev stack's
//! saved settings (what `tilewave dev up` saved in its `stack.toml`: the
//! stack's addresses and, unless it runs `--insecure`, its certificate), then
//! the default (docs/design.md, "The CLI"). So every later command reaches
//! the local stack, over TLS, without flags, and anything the user sets
//! wins over what the stack saved.

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

/// Where a setting came from (for messages that say what to change).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// A command-line flag.
    Flag,
    /// A `TILEWAVE_*` environment variable.
    Env,
    /// The config file.
    ConfigFile,
    /// The dev stack's saved settings.
    DevStack,
}

/// The dev stack whose saved settings were read: where it is and whether
/// it runs TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevStackRef {
    /// Its dev directory.
    pub dir: PathBuf,
    /// Whether it runs TLS (`false`: started with `--insecure`).
    pub tls: bool,
}

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
    /// Where [`Settings::tls`] came from (the certificate's layer).
    pub tls_from: Option<Layer>,
    /// The config file that was read, if there is one.
    pub config_file: Option<PathBuf>,
    /// The dev stack whose saved settings were read, if there is one.
    pub dev_stack: Option<DevStackRef>,
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
/// `timeout`, `tls-cert`, `tls-key`, `tls-ca`. Unknown keys are refused on
/// reading. The dev stack's saved settings are the same keys.
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

/// The environment variable of a config key that names a service or a TLS
/// file (`registry` -> `TILEWAVE_REGISTRY`, `tls-cert` ->
/// `TILEWAVE_TLS_CERT`).
pub fn env_var_of(key: &str) -> Option<String> {
    Endpoint::by_key(key).map(Endpoint::env).or_else(|| {
        TLS_KEYS
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| (*v).to_owned())
    })
}

impl FileSettings {
    /// The value of a service's or a TLS file's key, if set.
    pub fn get(&self, key: &str) -> Option<&String> {
        match Endpoint::by_key(key) {
            Some(e) => self.urls.get(e.name),
            None => TLS_KEYS
                .iter()
                .position(|(k, _)| *k == key)
                .and_then(|i| self.tls[i].as_ref()),
        }
    }

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
    /// Resolves each setting: flag, else environment, else the config
    /// file, else the dev stack's saved settings, else the default. Every
    /// bad value is reported, all at once.
    pub fn resolve(
        flags: &FlagSettings,
        env: &dyn Fn(&str) -> Option<String>,
        file: Option<&FileSettings>,
        saved: Option<&FileSettings>,
    ) -> Result<Self, CliError> {
        // The value of one setting and its layer; `of` reads it from a
        // file's (or the saved) settings.
        let pick = |flag: Option<&String>, var: &str, of: &dyn Fn(&FileSettings) -> Option<String>| {
            flag.map(|v| (v.clone(), Layer::Flag))
                .or_else(|| env(var).map(|v| (v, Layer::Env)))
                .or_else(|| file.and_then(of).map(|v| (v, Layer::ConfigFile)))
                .or_else(|| saved.and_then(of).map(|v| (v, Layer::DevStack)))
        };
        let urls: BTreeMap<&'static str, String> = ENDPOINTS
            .iter()
            .map(|e| {
                let url = pick(flags.urls.get(e.name), &e.env(), &|f| f.urls.get(e.name).cloned())
                    .map_or_else(|| e.default_url(), |(v, _)| v);
                (e.name, url)
            })
            .collect();
        let actor = pick(flags.actor.as_ref(), ENV_ACTOR, &|f| f.actor.clone())
            .map(|(v, _)| v)
            .or_else(|| env("USER"))
            .unwrap_or_else(|| FALLBACK_ACTOR.to_owned());
        let mut problems = Vec::new();
        let timeout = match pick(flags.timeout.as_ref(), ENV_TIMEOUT, &|f| f.timeout.clone()) {
            None => DEFAULT_TIMEOUT,
            Some((t, _)) => parse_timeout(&t).unwrap_or_else(|e| {
                problems.push(format!("timeout: {e}"));
                DEFAULT_TIMEOUT
            }),
        };
        let tls_given: Vec<Option<(String, Layer)>> = TLS_KEYS
            .iter()
            .enumerate()
            .map(|(i, (_, var))| pick(flags.tls[i].as_ref(), var, &|f| f.tls[i].clone()))
            .collect();
        let tls_from = tls_given.first().and_then(|v| v.as_ref().map(|(_, l)| *l));
        let tls_given: Vec<Option<String>> = tls_given.into_iter().map(|v| v.map(|(v, _)| v)).collect();
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
                    "tls: --tls-cert, --tls-key and --tls-ca go together (from flags, {}, the config file or the dev stack); missing {}",
                    TLS_KEYS.iter().map(|(_, v)| *v).collect::<Vec<_>>().join(", "),
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
            tls_from: tls.as_ref().and(tls_from),
            tls,
            config_file: None,
            dev_stack: None,
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

    /// Reads the config file and the dev stack's saved settings (from
    /// `env`'s idea of where they are) and resolves.
    pub fn load(flags: &FlagSettings, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let path = config_path(env);
        let file = match &path {
            Some(p) => read_file_settings(p)?,
            None => None,
        };
        let stack = crate::dev::stack::saved_stack(env)?;
        let saved = match &stack {
            Some(s) => Some(s.saved_settings()?),
            None => None,
        };
        let mut settings = Self::resolve(flags, env, file.as_ref(), saved.as_ref())?;
        settings.config_file = path.filter(|_| file.is_some());
        settings.dev_stack = stack.map(|s| DevStackRef {
            tls: s.runs_tls(),
            dir: s.dir,
        });
        Ok(settings)
    }

    /// Where the certificate in use came from, as a person names it:
    /// "--tls-cert", "TILEWAVE_TLS_CERT", "the config file ...", "the dev
    /// stack in ... (its saved settings)".
    pub fn tls_origin(&self) -> Option<String> {
        self.tls_from.map(|layer| self.describe(layer))
    }

    /// A layer as a person names it (for the TLS settings).
    pub fn describe(&self, layer: Layer) -> String {
        match layer {
            Layer::Flag => "--tls-cert, --tls-key and --tls-ca".to_owned(),
            Layer::Env => TLS_KEYS.iter().map(|(_, v)| *v).collect::<Vec<_>>().join(", "),
            Layer::ConfigFile => match &self.config_file {
                Some(p) => format!("tls-cert, tls-key and tls-ca in the config file {}", p.display()),
                None => "tls-cert, tls-key and tls-ca in the config file".to_owned(),
            },
            Layer::DevStack => match &self.dev_stack {
                Some(s) => format!("the saved settings of the dev stack in {}", s.dir.display()),
                None => "the dev stack's saved settings".to_owned(),
            },
        }
    }
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
        let s = Settings::resolve(&flags, &env, Some(&f), None).unwrap();
        assert_eq!(s.url(REGISTRY), "http://flag:1", "flag beats env and file");
        assert_eq!(s.actor, "env-actor", "env beats file");
        assert_eq!(s.timeout, Duration::from_secs(3), "file beats default");
        assert_eq!(s.url(ROLLOUT), ROLLOUT.default_url(), "default when nobody says");

        let saved = FileSettings {
            urls: urls(&[("registry", "http://saved:4"), ("rollout", "http://saved:5")]),
            timeout: Some("4s".into()),
            ..FileSettings::default()
        };
        let s = Settings::resolve(&flags, &env, Some(&f), Some(&saved)).unwrap();
        assert_eq!(s.url(REGISTRY), "http://flag:1", "flag beats the saved settings");
        assert_eq!(s.timeout, Duration::from_secs(3), "file beats the saved settings");
        assert_eq!(s.url(ROLLOUT), "http://saved:5", "saved beats the default");
    }

    #[test]
    fn table_of_sources() {
        // (flag, env, file, the dev stack's saved settings, expected registry)
        let cases = [
            (None, None, None, None, "http://127.0.0.1:7401"),
            (None, None, None, Some("https://s"), "https://s"),
            (None, None, Some("http://f"), None, "http://f"),
            (None, None, Some("http://f"), Some("https://s"), "http://f"),
            (
                None,
                Some("http://e"),
                Some("http://f"),
                Some("https://s"),
                "http://e",
            ),
            (
                Some("http://x"),
                Some("http://e"),
                Some("http://f"),
                Some("https://s"),
                "http://x",
            ),
            (Some("http://x"), None, None, None, "http://x"),
        ];
        for (flag, env, from_file, from_stack, want) in cases {
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
            let saved = from_stack.map(|r| FileSettings {
                urls: urls(&[("registry", r)]),
                ..FileSettings::default()
            });
            let s = Settings::resolve(&flags, &env_of(&pairs), fs.as_ref(), saved.as_ref()).unwrap();
            assert_eq!(
                s.url(REGISTRY),
                want,
                "flag={flag:?} env={env:?} file={from_file:?} stack={from_stack:?}"
            );
        }
    }

    #[test]
    fn actor_falls_back_to_user_then_unknown() {
        let none = FlagSettings::default();
        let s = Settings::resolve(&none, &env_of(&[("USER", "ada")]), None, None).unwrap();
        assert_eq!(s.actor, "ada");
        let s = Settings::resolve(&none, &env_of(&[]), None, None).unwrap();
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
        let err = Settings::resolve(&flags, &env_of(&[]), None, None).unwrap_err();
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
    fn load_reads_the_dev_stacks_saved_settings_after_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let dev = dir.path().join("dev");
        std::fs::create_dir_all(&dev).unwrap();
        let stack = crate::dev::stack::StackFile {
            dir: dev.clone(),
            virtual_clock: false,
            regions: 0,
            region_ids: Vec::new(),
            prefix: "/tilewave/".into(),
            certs: Some(dev.join("certs")),
            skipped: Vec::new(),
            settings: [
                ("registry", "https://127.0.0.1:9"),
                ("rollout", "https://127.0.0.1:10"),
                ("tls-cert", "/dev/certs/ada.crt"),
                ("tls-key", "/dev/certs/ada.key"),
                ("tls-ca", "/dev/certs/ca.crt"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
            processes: Vec::new(),
        };
        stack.write().unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(&config, "rollout = \"https://127.0.0.1:11\"\n").unwrap();
        let (c, d) = (config.display().to_string(), dev.display().to_string());
        let env = env_of(&[(ENV_CONFIG, &c), ("TILEWAVE_DEV_DIR", &d)]);
        let s = Settings::load(&FlagSettings::default(), &env).unwrap();
        assert_eq!(s.url(REGISTRY), "https://127.0.0.1:9", "from the stack");
        assert_eq!(s.url(ROLLOUT), "https://127.0.0.1:11", "the config file wins");
        assert_eq!(
            s.tls.as_ref().map(|t| t.cert.clone()),
            Some("/dev/certs/ada.crt".into())
        );
        assert_eq!(
            s.dev_stack,
            Some(DevStackRef {
                dir: dev.clone(),
                tls: true
            })
        );
        assert_eq!(s.config_file, Some(config.clone()));
        let origin = s.tls_origin().unwrap();
        assert!(origin.contains("dev stack") && origin.contains(&d), "{origin}");

        // No stack in the dev directory: no saved layer.
        let none = dir.path().join("none").display().to_string();
        let env = env_of(&[(ENV_CONFIG, &c), ("TILEWAVE_DEV_DIR", &none)]);
        let s = Settings::load(&FlagSettings::default(), &env).unwrap();
        assert_eq!(s.url(REGISTRY), REGISTRY.default_url());
        assert_eq!((s.tls, s.dev_stack), (None, None));
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
        let none = Settings::resolve(&FlagSettings::default(), &env_of(&[]), None, None).unwrap();
        assert_eq!((none.tls, none.tls_from), (None, None), "plaintext unless told");
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
        let s = Settings::resolve(&flags, &env, Some(&f), None).unwrap();
        assert_eq!(s.tls_from, Some(Layer::Flag), "the certificate's layer");
        let tls = s.tls.unwrap();
        assert_eq!(
            (tls.cert, tls.key, tls.ca),
            ("/flag/cert".into(), "/env/key".into(), "/file/tls-ca".into())
        );

        // The dev stack's saved certificate comes last: used when nothing
        // else names one, and the config file's wins over it.
        let mut table = toml::Table::new();
        for (k, _) in TLS_KEYS {
            table.insert(k.to_owned(), toml::Value::String(format!("/stack/{k}")));
        }
        let saved = FileSettings::from_table(table).unwrap();
        let none = FlagSettings::default();
        let s = Settings::resolve(&none, &env_of(&[]), None, Some(&saved)).unwrap();
        assert_eq!(s.tls_from, Some(Layer::DevStack));
        assert_eq!(s.tls.map(|t| t.cert), Some("/stack/tls-cert".into()));
        let s = Settings::resolve(&none, &env_of(&[]), Some(&f), Some(&saved)).unwrap();
        assert_eq!(s.tls_from, Some(Layer::ConfigFile));
        assert_eq!(s.tls.map(|t| t.ca), Some("/file/tls-ca".into()));
        let err = Settings::resolve(&flags, &env_of(&[]), None, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing tls-key, tls-ca"), "{err}");
    }
}
