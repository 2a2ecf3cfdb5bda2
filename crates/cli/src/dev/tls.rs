//! The dev stack's certificates: the development set of `tilewave certs
//! init` (one library function, [`tilewave_tls::write_dev_set`]) in
//! `<dev dir>/certs`, made by the first `dev up` and reused by every later
//! one (never overwritten). etcd serves its certificate and requires client
//! certificates of the CA; every service and agent gets its own with
//! `--tls-cert/--tls-key/--tls-ca` and the set's `policy.toml`; you get a
//! certificate named after `$USER` with the role release-engineer, which
//! `dev up` saves with the stack's settings for later commands.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use tilewave_tls::devset::{CA_NAME, POLICY_FILE, SERVICES};
use tilewave_tls::files::pair_paths;
use tilewave_tls::{Tls, TlsFiles};

use crate::error::CliError;
use crate::settings::TLS_KEYS;

/// The certificates directory's name inside the dev directory.
pub const CERTS_DIR: &str = "certs";
/// Your certificate's name when `$USER` cannot be one (the development
/// policy's release engineer).
pub const FALLBACK_USER: &str = "dev";

/// A stack's certificate set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackCerts {
    /// `<dev dir>/certs`.
    pub dir: PathBuf,
    /// The name of your certificate (`<dir>/<user>.crt`).
    pub user: String,
}

/// The name your certificate gets: `$USER` when it can be a certificate
/// name and is not a service's, else [`FALLBACK_USER`].
pub fn user_name(env: &dyn Fn(&str) -> Option<String>) -> String {
    env("USER")
        .filter(|u| crate::certs::check_name(u).is_ok() && !SERVICES.contains(&u.as_str()))
        .unwrap_or_else(|| FALLBACK_USER.to_owned())
}

impl StackCerts {
    /// The set in `<dev_dir>/certs`: made when there is none (`true`),
    /// reused otherwise, with a certificate for you issued from its CA
    /// when it has none yet. An incomplete or expired set is an error
    /// saying how to get a new one.
    pub fn ensure(dev_dir: &Path, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<(Self, bool)> {
        let certs = Self {
            dir: dev_dir.join(CERTS_DIR),
            user: user_name(env),
        };
        let renew = format!(
            "delete {} and run `tilewave dev up` again for a new set (or `tilewave dev down --purge` first, which also deletes the stack's data)",
            certs.dir.display()
        );
        if !pair_paths(&certs.dir, CA_NAME).0.exists() {
            let role = tilewave_auth::Role::ReleaseEngineer;
            tilewave_tls::write_dev_set(&certs.dir, &[(certs.user.as_str(), Some(role))], false)
                .map_err(|e| CliError::usage(format!("making the dev stack's certificates: {e}; {renew}")))?;
            return Ok((certs, true));
        }
        // A set made before a service joined the development set (the
        // credentials service) gets that service's certificate from its CA.
        for service in SERVICES {
            let (cert, key) = pair_paths(&certs.dir, service);
            if !cert.exists() && !key.exists() && pair_paths(&certs.dir, CA_NAME).1.exists() {
                certs
                    .issue_service(service)
                    .map_err(|e| CliError::usage(format!("{e:#}; {renew}")))?;
            }
        }
        let mut missing: Vec<String> = SERVICES
            .iter()
            .chain(&[CA_NAME])
            .flat_map(|name| {
                let (c, k) = pair_paths(&certs.dir, name);
                [c, k]
            })
            .chain([certs.dir.join(POLICY_FILE)])
            .filter(|p| !p.exists())
            .map(|p| p.display().to_string())
            .collect();
        missing.sort();
        if !missing.is_empty() {
            return Err(CliError::usage(format!(
                "the dev stack's certificate set is incomplete: {} missing; {renew}",
                missing.join(", ")
            ))
            .into());
        }
        let now = tilewave_tls::wall_clock_now();
        for name in SERVICES.iter().chain(&[CA_NAME]) {
            let path = pair_paths(&certs.dir, name).0;
            let info = tilewave_tls::inspect::read_cert(&path)
                .map_err(|e| CliError::usage(format!("{e}; {renew}")))?;
            if info.not_after <= now {
                return Err(CliError::usage(format!(
                    "the dev stack's certificate {} expired on {}; {renew}",
                    path.display(),
                    info.not_after.strftime("%Y-%m-%d %H:%M UTC")
                ))
                .into());
            }
        }
        if !pair_paths(&certs.dir, &certs.user).0.exists() {
            certs.issue_user()?;
        }
        Ok((certs, false))
    }

    /// Issues your certificate from the set's CA and gives you the role
    /// release-engineer in its policy (a set made for another `$USER`).
    fn issue_user(&self) -> anyhow::Result<()> {
        let (ca_cert, ca_key) = pair_paths(&self.dir, CA_NAME);
        let ca = tilewave_tls::Ca::load(&ca_cert, &ca_key)?;
        let issued = ca.issue_client(&self.user)?;
        tilewave_tls::files::write_pair(&self.dir, &self.user, &issued, false)?;
        let path = self.dir.join(POLICY_FILE);
        let mut policy = tilewave_auth::policy::load(&path).map_err(|e| {
            CliError::usage(format!(
                "{e}; fix it or delete {} for a new set",
                self.dir.display()
            ))
        })?;
        let identity =
            tilewave_auth::Identity::parse(&self.user).map_err(|e| CliError::usage(e.to_string()))?;
        policy.set_role(identity, tilewave_auth::Role::ReleaseEngineer);
        tilewave_tls::devset::write_policy(&self.dir, &policy)
            .with_context(|| format!("giving {} a role in {}", self.user, path.display()))?;
        Ok(())
    }

    /// Issues service `service`'s certificate from the set's CA and gives
    /// it the `service` role in the set's policy when it has none.
    fn issue_service(&self, service: &str) -> anyhow::Result<()> {
        let (ca_cert, ca_key) = pair_paths(&self.dir, CA_NAME);
        let ca = tilewave_tls::Ca::load(&ca_cert, &ca_key)?;
        let issued = ca.issue_service(service, &[service.to_owned()])?;
        tilewave_tls::files::write_pair(&self.dir, service, &issued, false)?;
        let path = self.dir.join(POLICY_FILE);
        let mut policy = tilewave_auth::policy::load(&path)
            .map_err(|e| anyhow::anyhow!("{e}; fix it or delete {} for a new set", self.dir.display()))?;
        let identity = tilewave_auth::Identity::parse(service).map_err(|e| anyhow::anyhow!("{e}"))?;
        if policy.role_of(&identity).is_none() {
            policy.set_role(identity, tilewave_auth::Role::Service);
            tilewave_tls::devset::write_policy(&self.dir, &policy)
                .with_context(|| format!("giving {service} the service role in {}", path.display()))?;
        }
        Ok(())
    }

    /// The files of certificate `name` (a service's or yours) with the CA.
    pub fn files(&self, name: &str) -> TlsFiles {
        let (cert, key) = pair_paths(&self.dir, name);
        TlsFiles {
            cert,
            key,
            ca: pair_paths(&self.dir, CA_NAME).0,
        }
    }

    /// Your certificate's files (what later commands present).
    pub fn client_files(&self) -> TlsFiles {
        self.files(&self.user)
    }

    /// Your certificate, loaded: what `dev up` and `dev status` check the
    /// processes' health with.
    pub fn client_tls(&self) -> anyhow::Result<Tls> {
        self.client_files()
            .load()
            .with_context(|| format!("loading the dev stack's certificate in {}", self.dir.display()))
    }

    /// A service's TLS flags and its access policy.
    pub fn service_args(&self, service: &str) -> Vec<String> {
        let files = self.files(service);
        [
            ("--tls-cert", files.cert),
            ("--tls-key", files.key),
            ("--tls-ca", files.ca),
            ("--policy", self.dir.join(POLICY_FILE)),
        ]
        .into_iter()
        .flat_map(|(flag, path)| [flag.to_owned(), path.display().to_string()])
        .collect()
    }

    /// The saved settings of your certificate: `tls-cert`, `tls-key`,
    /// `tls-ca` (the config file's keys).
    pub fn saved_settings(&self) -> Vec<(String, String)> {
        let files = self.client_files();
        TLS_KEYS
            .iter()
            .zip([files.cert, files.key, files.ca])
            .map(|((key, _), path)| ((*key).to_owned(), path.display().to_string()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(user: Option<&'static str>) -> impl Fn(&str) -> Option<String> {
        move |k| (k == "USER").then(|| user.map(str::to_owned)).flatten()
    }

    #[test]
    fn your_certificate_is_named_after_user_when_it_can_be() {
        assert_eq!(user_name(&env(Some("ada"))), "ada");
        assert_eq!(user_name(&env(Some("a b"))), FALLBACK_USER);
        assert_eq!(user_name(&env(Some("registry"))), FALLBACK_USER);
        assert_eq!(user_name(&env(None)), FALLBACK_USER);
    }

    #[test]
    fn the_set_is_made_once_reused_and_extended_for_another_user() {
        let dev = tempfile::tempdir().unwrap();
        let (a, made) = StackCerts::ensure(dev.path(), &env(Some("ada"))).unwrap();
        assert!(made);
        let ca = std::fs::read(a.files("registry").ca).unwrap();
        let (again, made) = StackCerts::ensure(dev.path(), &env(Some("ada"))).unwrap();
        assert!(!made, "reused");
        assert_eq!(again, a);
        assert_eq!(
            std::fs::read(again.files("registry").ca).unwrap(),
            ca,
            "never overwritten"
        );

        let (bob, made) = StackCerts::ensure(dev.path(), &env(Some("bob"))).unwrap();
        assert!(!made);
        assert!(
            bob.client_files().cert.exists(),
            "bob's certificate issued from the same CA"
        );
        let policy = tilewave_auth::policy::load(&bob.dir.join(POLICY_FILE)).unwrap();
        let role = policy.role_of(&tilewave_auth::Identity::parse("bob").unwrap());
        assert_eq!(role, Some(&tilewave_auth::Role::ReleaseEngineer));
        bob.client_tls().unwrap();

        let args = bob.service_args("agent");
        assert_eq!(args[0], "--tls-cert");
        assert!(args[1].ends_with("certs/agent.crt"), "{args:?}");
        assert_eq!(args[6], "--policy");
        let saved = bob.saved_settings();
        assert_eq!(saved[0].0, "tls-cert");
        assert!(saved[0].1.ends_with("certs/bob.crt"), "{saved:?}");

        // A set made before the credentials service joined it gets its
        // certificate and role from the same CA.
        std::fs::remove_file(bob.files("credentials").cert).unwrap();
        std::fs::remove_file(bob.files("credentials").key).unwrap();
        let (again, made) = StackCerts::ensure(dev.path(), &env(Some("bob"))).unwrap();
        assert!(!made);
        assert!(again.files("credentials").cert.exists());
        assert_eq!(std::fs::read(again.files("credentials").ca).unwrap(), ca);
        let args = again.service_args("credentials");
        assert!(args[1].ends_with("certs/credentials.crt"), "{args:?}");

        std::fs::remove_file(bob.files("rollout").key).unwrap();
        let err = StackCerts::ensure(dev.path(), &env(Some("bob"))).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("rollout.key") && text.contains("delete"), "{text}");
        assert_eq!(crate::error::exit_code(&err), 2);
    }
}
