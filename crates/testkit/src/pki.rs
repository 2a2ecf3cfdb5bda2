//! A test PKI: the development set of `tilewave certs init`
//! ([`tilewave_tls::write_dev_set`]) with a user certificate per role, for
//! running services, etcd and clients with mutual TLS.
//!
//! [`Pki::shared`] is one set per user on this machine, created once (in the
//! system temporary directory, moved into place whole so concurrent test
//! processes agree on one) and reused by every test that does not need its
//! own: TLS by default costs callers nothing. A test that changes the
//! policy file must make its own with [`Pki::create`].

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::Context as _;
use tilewave_auth::Role;
use tilewave_tls::devset::{CA_NAME, SERVICES, write_dev_set};
use tilewave_tls::files::pair_paths;
use tilewave_tls::{Ca, Tls, TlsFiles};
use tonic::transport::Channel;

/// A release engineer (role `release-engineer`).
pub const RELEASE_ENGINEER: &str = "ada";
/// An on-call engineer (role `oncall`).
pub const ONCALL: &str = "olive";
/// A viewer (role `viewer`).
pub const VIEWER: &str = "vic";
/// Partner `acme`'s identity (role `partner:acme`).
pub const PARTNER_ACME: &str = "acme-bot";
/// Partner `globex`'s identity (role `partner:globex`).
pub const PARTNER_GLOBEX: &str = "globex-bot";
/// A certificate of the CA whose identity has no role in the policy.
pub const NO_ROLE: &str = "nobody";

/// The user certificates of the set and their roles in its policy.
pub const USERS: [(&str, Option<&str>); 6] = [
    (RELEASE_ENGINEER, Some("release-engineer")),
    (ONCALL, Some("oncall")),
    (VIEWER, Some("viewer")),
    (PARTNER_ACME, Some("partner:acme")),
    (PARTNER_GLOBEX, Some("partner:globex")),
    (NO_ROLE, None),
];

/// Bumped when the set's contents change, so an older shared set is not reused.
const SHARED_VERSION: u32 = 4;

/// A shared set is replaced when a certificate expires within this many days.
pub const MIN_DAYS_LEFT: i64 = 30;

/// A directory of certificates (a CA, one per service, one per user) and
/// the access policy `policy.toml`.
#[derive(Debug, Clone)]
pub struct Pki {
    dir: PathBuf,
}

impl Pki {
    /// Writes a new set into `dir` (replacing one there).
    pub fn create(dir: &Path) -> anyhow::Result<Self> {
        let users: Vec<(&str, Option<Role>)> = USERS
            .iter()
            .map(|(name, role)| {
                let role = role
                    .map(|r| r.parse::<Role>().with_context(|| format!("role {r}")))
                    .transpose()?;
                anyhow::Ok((*name, role))
            })
            .collect::<anyhow::Result<_>>()?;
        write_dev_set(dir, &users, true)
            .with_context(|| format!("writing a test PKI in {}", dir.display()))?;
        Ok(Self { dir: dir.to_owned() })
    }

    /// The set already in `dir`, when it is complete and no certificate
    /// expires within [`MIN_DAYS_LEFT`] days.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        let pki = Self { dir: dir.to_owned() };
        anyhow::ensure!(pki.policy().is_file(), "{} has no policy", dir.display());
        let now = tilewave_tls::wall_clock_now();
        for name in [CA_NAME, "registry", NO_ROLE] {
            let (cert, key) = pair_paths(dir, name);
            anyhow::ensure!(key.is_file(), "{} is missing", key.display());
            let info = tilewave_tls::inspect::read_cert(&cert)?;
            anyhow::ensure!(
                info.days_left(now) > MIN_DAYS_LEFT,
                "{} expires within {MIN_DAYS_LEFT} days",
                cert.display()
            );
        }
        Ok(pki)
    }

    /// The process-wide set: one per user and machine, in the system
    /// temporary directory, created by the first test process that needs it.
    pub fn shared() -> anyhow::Result<&'static Pki> {
        static SHARED: OnceLock<Result<Pki, String>> = OnceLock::new();
        SHARED
            .get_or_init(|| Self::open_or_create_shared().map_err(|e| format!("{e:#}")))
            .as_ref()
            .map_err(|e| anyhow::anyhow!("the shared test PKI: {e}"))
    }

    fn open_or_create_shared() -> anyhow::Result<Self> {
        let user = std::env::var("USER").unwrap_or_else(|_| "user".to_owned());
        let shared = std::env::temp_dir().join(format!("tilewave-test-pki-v{SHARED_VERSION}-{user}"));
        if let Ok(pki) = Self::open(&shared) {
            return Ok(pki);
        }
        // Made aside and moved into place whole: a set is complete or absent.
        let fresh = tempfile::Builder::new()
            .prefix("tilewave-test-pki-new-")
            .tempdir()
            .context("creating a directory for the test PKI")?
            .keep();
        Self::create(&fresh)?;
        if std::fs::rename(&fresh, &shared).is_ok() {
            return Self::open(&shared);
        }
        // Another process won the race, or an unusable old set is in the way.
        if let Ok(pki) = Self::open(&shared) {
            let _ = std::fs::remove_dir_all(&fresh);
            return Ok(pki);
        }
        let stale = shared.with_extension(format!("stale-{}", std::process::id()));
        if std::fs::rename(&shared, &stale).is_ok() {
            let _ = std::fs::remove_dir_all(&stale);
        }
        if std::fs::rename(&fresh, &shared).is_ok() {
            return Self::open(&shared);
        }
        // Still in the way (another user's directory?): use ours where it is.
        Self::open(&fresh)
    }

    /// The set in `dir`, unchecked (a directory `tilewave certs init` wrote,
    /// say).
    pub fn at(dir: &Path) -> Self {
        Self { dir: dir.to_owned() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The CA certificate.
    pub fn ca_cert(&self) -> PathBuf {
        pair_paths(&self.dir, CA_NAME).0
    }

    /// The CA, to issue more certificates (another validity, another name).
    pub fn ca(&self) -> anyhow::Result<Ca> {
        let (cert, key) = pair_paths(&self.dir, CA_NAME);
        Ca::load(&cert, &key).context("loading the test CA")
    }

    /// The access policy: the development defaults (the services have the
    /// `service` role) and the [`USERS`]' roles.
    pub fn policy(&self) -> PathBuf {
        self.dir.join(tilewave_tls::devset::POLICY_FILE)
    }

    /// The certificate, key and CA files of `name` (a service of
    /// [`SERVICES`] or a user of [`USERS`]).
    pub fn files(&self, name: &str) -> TlsFiles {
        let (cert, key) = pair_paths(&self.dir, name);
        TlsFiles {
            cert,
            key,
            ca: self.ca_cert(),
        }
    }

    /// The certificate name of the service run by the binary or named
    /// `name` (`tilewave-registry` or `registry` -> `registry`), if the
    /// set has one.
    pub fn service_name(name: &str) -> Option<&'static str> {
        let short = name.strip_prefix("tilewave-").unwrap_or(name);
        SERVICES.into_iter().find(|s| *s == short)
    }

    /// The arguments that run service `service` with its certificate and
    /// the set's policy: `--tls-cert`, `--tls-key`, `--tls-ca`, `--policy`.
    pub fn service_args(&self, service: &str) -> Vec<String> {
        let f = self.files(service);
        vec![
            "--tls-cert".to_owned(),
            f.cert.display().to_string(),
            "--tls-key".to_owned(),
            f.key.display().to_string(),
            "--tls-ca".to_owned(),
            f.ca.display().to_string(),
            "--policy".to_owned(),
            self.policy().display().to_string(),
        ]
    }

    /// `name`'s TLS material, loaded and checked.
    pub fn tls(&self, name: &str) -> anyhow::Result<Tls> {
        self.files(name)
            .load()
            .with_context(|| format!("loading the test certificate of {name}"))
    }

    /// A connected channel to `url` (`host:port` or a URL; made `https`)
    /// presenting `name`'s certificate.
    pub async fn channel(&self, url: &str, name: &str) -> anyhow::Result<Channel> {
        let tls = self.tls(name)?;
        tilewave_tls::endpoint(url, Some(&tls))?
            .connect()
            .await
            .with_context(|| format!("connecting to {url} over TLS as {name}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_has_every_service_and_user_and_their_roles() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::create(dir.path()).unwrap();
        for name in SERVICES.iter().copied().chain(USERS.iter().map(|u| u.0)) {
            let tls = pki.tls(name).unwrap();
            assert_eq!(tls.cert.common_name.as_deref(), Some(name));
        }
        let policy = tilewave_auth::policy::load(&pki.policy()).unwrap();
        let role = |n: &str| {
            policy
                .role_of(&tilewave_auth::Identity::parse(n).unwrap())
                .map(ToString::to_string)
        };
        for (name, want) in USERS {
            assert_eq!(role(name).as_deref(), want, "{name}");
        }
        for service in ["registry", "rollout", "agent"] {
            assert_eq!(role(service).as_deref(), Some("service"));
        }
        assert!(Pki::open(dir.path()).is_ok());
        assert_eq!(Pki::service_name("tilewave-rollout"), Some("rollout"));
        assert_eq!(Pki::service_name("echo"), None);
        let args = pki.service_args("registry");
        assert_eq!(args.len(), 8);
        assert!(args[1].ends_with("registry.crt"), "{args:?}");
    }

    #[test]
    fn the_shared_set_is_made_once() {
        let a = Pki::shared().unwrap();
        let b = Pki::shared().unwrap();
        assert!(std::ptr::eq(a, b));
        assert!(Pki::open(a.dir()).is_ok());
    }
}
