//! What a service serves the role check with, from its flags: with TLS on,
//! the [`AuthorizeLayer`] enabled on the policy file given by `--policy`
//! (watched, reloaded on change) or, without one, on
//! [`Policy::dev_default`] with a start-up warning; with TLS off the layer
//! stays disabled (no certificate, no identity), and a `--policy` given
//! anyway is named in a warning. [`ServerAuth::whoami`] is the server's
//! `AuthService/WhoAmI`, answering from the same settings.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::layer::AuthorizeLayer;
use crate::policy::{LoadError, Policy};
use crate::watch::{PolicyHandle, PolicyWatcher};
use crate::whoami::{self, WhoAmI};

/// The environment variable of `--policy`.
pub const ENV_POLICY: &str = "TILEWAVE_POLICY";
/// How often a served policy file is re-read.
pub const POLICY_POLL: Duration = Duration::from_secs(2);

/// The `--policy FILE` flag every service flattens into its configuration,
/// next to the TLS flags.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct PolicyArgs {
    /// The access policy (TOML: identity -> role, revoked serials), checked
    /// on every call when TLS is on and reloaded on change. Without it a TLS
    /// service uses the development defaults. Ignored without TLS.
    #[arg(long = "policy", env = ENV_POLICY, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

/// The role check of one server: the layer, and the watcher to run while
/// it serves (when a policy file is given).
#[derive(Debug)]
pub struct ServerAuth {
    layer: AuthorizeLayer,
    watcher: Option<PolicyWatcher>,
    /// The service's name, for `WhoAmI`.
    service: String,
    /// Whether the service serves TLS.
    tls: bool,
}

impl ServerAuth {
    /// The check for `service` (its name, for the warnings): disabled when
    /// `tls` is off; else on the file (which must load now) or the
    /// development defaults.
    pub fn new(service: &str, tls: bool, policy: Option<&Path>) -> Result<Self, LoadError> {
        let (layer, watcher) = Self::check(service, tls, policy)?;
        Ok(Self {
            layer,
            watcher,
            service: service.to_owned(),
            tls,
        })
    }

    /// The layer and the watcher of [`ServerAuth::new`].
    fn check(
        service: &str,
        tls: bool,
        policy: Option<&Path>,
    ) -> Result<(AuthorizeLayer, Option<PolicyWatcher>), LoadError> {
        match (tls, policy) {
            (false, None) => Ok((AuthorizeLayer::disabled(), None)),
            (false, Some(path)) => {
                tracing::warn!(
                    service,
                    policy = %path.display(),
                    "--policy has no effect without TLS: callers have no certificate identity, so every call is allowed"
                );
                Ok((AuthorizeLayer::disabled(), None))
            }
            (true, Some(path)) => {
                let watcher = PolicyWatcher::load(path)?;
                tracing::info!(
                    service,
                    policy = %path.display(),
                    identities = watcher.handle().current().identities().count(),
                    "role check on, access policy loaded"
                );
                Ok((AuthorizeLayer::enabled(watcher.handle()), Some(watcher)))
            }
            (true, None) => {
                tracing::warn!(
                    service,
                    "role check on with the development access policy (give --policy FILE for a real one)"
                );
                Ok((
                    AuthorizeLayer::enabled(PolicyHandle::fixed(Policy::dev_default())),
                    None,
                ))
            }
        }
    }

    /// The layer to add after the telemetry and message-size layers.
    pub fn layer(&self) -> AuthorizeLayer {
        self.layer.clone()
    }

    /// The server's `AuthService` (`WhoAmI`): `services` are the tilewave
    /// services it hosts (`tilewave_auth::table::REGISTRY`); health,
    /// reflection and `AuthService` itself are added. One line in a
    /// server: `.add_service(sized!(auth.whoami(&[table::REGISTRY])))`.
    pub fn whoami(
        &self,
        services: &[&'static str],
    ) -> tilewave_proto::auth::v1::auth_service_server::AuthServiceServer<WhoAmI> {
        WhoAmI::new(whoami::Server {
            name: self.service.clone(),
            tls: self.tls,
            role_checks: self.layer.is_enabled(),
            services: services.to_vec(),
        })
        .into_server()
    }

    /// Takes the watcher to run (`PolicyWatcher::run` with [`POLICY_POLL`])
    /// while the server serves; `None` without a policy file.
    pub fn take_watcher(&mut self) -> Option<PolicyWatcher> {
        self.watcher.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_without_tls_enabled_with_it() {
        assert!(!ServerAuth::new("t", false, None).unwrap().layer().is_enabled());
        let missing = Path::new("/nonexistent/policy.toml");
        // Without TLS the file is not even read.
        assert!(
            !ServerAuth::new("t", false, Some(missing))
                .unwrap()
                .layer()
                .is_enabled()
        );
        let dev = ServerAuth::new("t", true, None).unwrap();
        assert!(dev.layer().is_enabled());
        assert!(ServerAuth::new("t", true, Some(missing)).is_err());

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.toml");
        std::fs::write(&path, "[identities]\nann = \"viewer\"\n").unwrap();
        let mut on = ServerAuth::new("t", true, Some(&path)).unwrap();
        assert!(on.layer().is_enabled());
        assert!(on.take_watcher().is_some());
        assert!(on.take_watcher().is_none());
    }

    #[test]
    fn agents_answer_only_the_service_role() {
        let agent_rows: Vec<_> = crate::TABLE
            .iter()
            .filter(|r| r.service.starts_with("tilewave.agent.v1."))
            .collect();
        assert!(agent_rows.len() >= 13, "{agent_rows:?}");
        for rule in agent_rows {
            assert_eq!(rule.roles, &[crate::RoleKind::Service], "{}", rule.rpc());
        }
    }
}
