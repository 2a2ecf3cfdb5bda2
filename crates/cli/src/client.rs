//! What every command runs with: the resolved settings, the output format,
//! and the gRPC clients. Channels are traced (W3C trace context on every
//! call, one client span per RPC) and every request carries the caller's
//! identity in `x-tilewave-actor`.

use std::io::Write as _;

use tilewave_proto::auth::v1::auth_service_client::AuthServiceClient;
use tilewave_proto::clock::v1::clock_service_client::ClockServiceClient;
use tilewave_proto::credentials::v1::credentials_service_client::CredentialsServiceClient;
use tilewave_proto::escalation::v1::escalation_service_client::EscalationServiceClient;
use tilewave_proto::registry::v1::registry_service_client::RegistryServiceClient;
use tilewave_proto::registry::v1::{GetTileRequest, Tile};
use tilewave_proto::rollout::v1::rollout_service_client::RolloutServiceClient;
use tilewave_telemetry::{TracedChannel, traced_channel};

use crate::endpoints::{CREDENTIALS, ESCALATION, REGISTRY, ROLLOUT};
use crate::error::{CliError, rpc};
use crate::output::Format;
use crate::settings::{Layer, Settings};

/// The metadata entry naming the caller, until mTLS gives identities.
pub const ACTOR_HEADER: &str = "x-tilewave-actor";

/// The registry client the commands use.
pub type Registry = RegistryServiceClient<TracedChannel>;

/// The rollout service client the commands use.
pub type Rollouts = RolloutServiceClient<TracedChannel>;

/// The clock client (served by the rollout service).
pub type Clock = ClockServiceClient<TracedChannel>;

/// The credentials service client the commands use.
pub type Credentials = CredentialsServiceClient<TracedChannel>;

/// The escalation service client the commands use.
pub type Escalation = EscalationServiceClient<TracedChannel>;

/// The `WhoAmI` client (served by every service).
pub type Auth = AuthServiceClient<TracedChannel>;

/// A command's context.
#[derive(Debug)]
pub struct Ctx {
    /// Where the services are and who is calling.
    pub settings: Settings,
    /// How results are printed.
    pub format: Format,
    /// The TLS files of `settings`, loaded and checked once (an error as
    /// its message).
    pub tls: std::sync::OnceLock<Result<Option<tilewave_tls::Tls>, String>>,
}

impl Ctx {
    /// A context with `settings` and `format`.
    pub fn new(settings: Settings, format: Format) -> Self {
        Self {
            settings,
            format,
            tls: std::sync::OnceLock::new(),
        }
    }
}

impl Ctx {
    /// A traced channel to `url`. Connecting is lazy, so an unreachable
    /// service shows up as UNAVAILABLE on the first call, with the hint.
    fn channel(&self, url: &str) -> Result<TracedChannel, CliError> {
        let endpoint = tilewave_service::transport::configure(self.endpoint(url)?, self.settings.timeout);
        Ok(traced_channel(endpoint.connect_lazy()))
    }

    /// The endpoint of `url`: mutual TLS with the settings' certificate
    /// when it has one (the scheme becomes `https`), else plaintext. A TLS
    /// file that is missing or wrong is a usage error naming it.
    fn endpoint(&self, url: &str) -> Result<tonic::transport::Endpoint, CliError> {
        let tls = self.tls()?;
        if tls.is_none() && url.starts_with("https://") {
            return Err(CliError::usage(format!(
                "{} is an https:// address, but {}",
                tilewave_core::quote::quoted(url),
                crate::error::tls_hint(Some(&self.settings))
            )));
        }
        tilewave_tls::endpoint(url, tls.as_ref()).map_err(|e| CliError::usage(e.to_string()))
    }

    /// The settings' TLS files, loaded and checked: each file is there, the
    /// key matches, neither the certificate nor the CA has expired (a
    /// warning within 14 days of it). An error says where the setting came
    /// from and what to do.
    fn tls(&self) -> Result<Option<tilewave_tls::Tls>, CliError> {
        self.tls
            .get_or_init(|| self.load_tls().map_err(|e| e.to_string()))
            .clone()
            .map_err(CliError::Usage)
    }

    /// [`Ctx::tls`], uncached.
    fn load_tls(&self) -> Result<Option<tilewave_tls::Tls>, CliError> {
        let Some(files) = &self.settings.tls else {
            return Ok(None);
        };
        let origin = self.settings.tls_origin().unwrap_or_default();
        let fix = match &self.settings.dev_stack {
            Some(stack) if self.settings.tls_from == Some(Layer::DevStack) => format!(
                "the dev stack in {d} saved it: delete {d}/certs and restart the stack (`tilewave dev down`, \
                 then `tilewave dev up` makes a new certificate set)",
                d = stack.dir.display()
            ),
            _ => format!(
                "fix {origin} (`tilewave certs list` shows the certificates and their expiry; \
                 `tilewave certs issue NAME` issues a new one)"
            ),
        };
        let tls = files
            .load()
            .map_err(|e| CliError::usage(format!("TLS settings from {origin}: {e}; {fix}")))?;
        let now = tilewave_tls::wall_clock_now();
        for (what, path, info) in [
            ("certificate", &files.cert, &tls.cert),
            ("CA certificate", &files.ca, &tls.ca),
        ] {
            if info.not_after <= now {
                return Err(CliError::usage(format!(
                    "the {what} {} (from {origin}) expired on {}; {fix}",
                    path.display(),
                    info.not_after.strftime("%Y-%m-%d %H:%M UTC")
                )));
            }
        }
        for warning in tls.expiry_warnings(now) {
            note(&format!("warning: {warning}"));
        }
        Ok(Some(tls))
    }

    /// A client of the registry.
    pub fn registry(&self) -> Result<Registry, CliError> {
        Ok(tilewave_service::sized!(RegistryServiceClient::new(
            self.channel(&self.settings.url(REGISTRY))?,
        )))
    }

    /// A client of the registry for a stream that may outlive the
    /// per-call timeout (the dashboard's live pages): connecting is still
    /// bounded.
    pub fn registry_streaming(&self) -> Result<Registry, CliError> {
        let url = &self.settings.url(REGISTRY);
        let endpoint =
            tilewave_service::transport::configure_streaming(self.endpoint(url)?, self.settings.timeout);
        Ok(tilewave_service::sized!(RegistryServiceClient::new(
            traced_channel(endpoint.connect_lazy())
        )))
    }

    /// A client of the rollout service.
    pub fn rollouts(&self) -> Result<Rollouts, CliError> {
        Ok(tilewave_service::sized!(RolloutServiceClient::new(
            self.channel(&self.settings.url(ROLLOUT))?,
        )))
    }

    /// A client of the rollout service for a stream that may outlive the
    /// per-call timeout (`--watch`): connecting is still bounded.
    pub fn rollouts_streaming(&self) -> Result<Rollouts, CliError> {
        let url = &self.settings.url(ROLLOUT);
        let endpoint =
            tilewave_service::transport::configure_streaming(self.endpoint(url)?, self.settings.timeout);
        Ok(tilewave_service::sized!(RolloutServiceClient::new(
            traced_channel(endpoint.connect_lazy())
        )))
    }

    /// A client of the credentials service.
    pub fn credentials(&self) -> Result<Credentials, CliError> {
        Ok(tilewave_service::sized!(CredentialsServiceClient::new(
            self.channel(&self.settings.url(CREDENTIALS))?,
        )))
    }

    /// A client of the credentials service for a stream that may outlive
    /// the per-call timeout (`creds status --watch`): connecting is still
    /// bounded.
    pub fn credentials_streaming(&self) -> Result<Credentials, CliError> {
        let url = &self.settings.url(CREDENTIALS);
        let endpoint =
            tilewave_service::transport::configure_streaming(self.endpoint(url)?, self.settings.timeout);
        Ok(tilewave_service::sized!(CredentialsServiceClient::new(
            traced_channel(endpoint.connect_lazy())
        )))
    }

    /// A client of the escalation service.
    pub fn escalation(&self) -> Result<Escalation, CliError> {
        Ok(tilewave_service::sized!(EscalationServiceClient::new(
            self.channel(&self.settings.url(ESCALATION))?,
        )))
    }

    /// A client of the escalation service for a stream that may outlive
    /// the per-call timeout (`incident watch`): connecting is still
    /// bounded.
    pub fn escalation_streaming(&self) -> Result<Escalation, CliError> {
        let url = &self.settings.url(ESCALATION);
        let endpoint =
            tilewave_service::transport::configure_streaming(self.endpoint(url)?, self.settings.timeout);
        Ok(tilewave_service::sized!(EscalationServiceClient::new(
            traced_channel(endpoint.connect_lazy())
        )))
    }

    /// A client of the virtual clock (the rollout service serves it).
    pub fn clock(&self) -> Result<Clock, CliError> {
        Ok(tilewave_service::sized!(ClockServiceClient::new(
            self.channel(&self.settings.url(ROLLOUT))?,
        )))
    }

    /// A client of the `AuthService` (`WhoAmI`) of the server at `url`.
    pub fn auth(&self, url: &str) -> Result<Auth, CliError> {
        Ok(tilewave_service::sized!(AuthServiceClient::new(
            self.channel(url)?
        )))
    }

    /// Wraps a request message with the actor metadata.
    pub fn request<T>(&self, message: T) -> Result<tonic::Request<T>, CliError> {
        let mut req = tonic::Request::new(message);
        let value = self.settings.actor.parse().map_err(|_| {
            CliError::usage(format!(
                "actor {:?} cannot be sent as metadata",
                self.settings.actor
            ))
        })?;
        req.metadata_mut().insert(ACTOR_HEADER, value);
        Ok(req)
    }

    /// Reads a tile at its latest revision (for the etag and revision that
    /// mutations name).
    pub async fn current_tile(&self, registry: &mut Registry, id: &str) -> anyhow::Result<Tile> {
        let resp = rpc(
            "GetTile",
            registry
                .get_tile(self.request(GetTileRequest {
                    id: id.to_owned(),
                    revision: 0,
                })?)
                .await,
        )?;
        resp.tile
            .ok_or_else(|| anyhow::anyhow!("GetTile {id}: the response holds no tile"))
    }
}

/// Writes text to stdout; a closed pipe (`tilewave tile list | head`) is
/// not an error worth a message.
pub fn out(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Writes a note to stderr (progress, warnings, hints).
pub fn note(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(actor: &str) -> Ctx {
        Ctx::new(
            Settings {
                urls: [
                    (REGISTRY.name, "http://127.0.0.1:1".to_owned()),
                    (ROLLOUT.name, "http://127.0.0.1:2".to_owned()),
                ]
                .into(),
                actor: actor.into(),
                timeout: std::time::Duration::from_secs(1),
                tls: None,
                tls_from: None,
                config_file: None,
                dev_stack: None,
            },
            Format::Table,
        )
    }

    #[test]
    fn requests_carry_the_actor() {
        let req = ctx("ada").request(()).unwrap();
        assert_eq!(
            req.metadata().get(ACTOR_HEADER).and_then(|v| v.to_str().ok()),
            Some("ada")
        );
    }

    #[test]
    fn an_expired_or_missing_certificate_says_where_it_came_from_and_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let ca = tilewave_tls::Ca::generate().unwrap();
        tilewave_tls::files::write_pair(dir.path(), "ca", &ca.issued(), false).unwrap();
        let now = tilewave_tls::wall_clock_now();
        let day = jiff::SignedDuration::from_hours(24);
        let old = tilewave_tls::Validity {
            not_before: now - day * 30,
            not_after: now - day,
        };
        let issued = ca.issue_client_with("ada", old).unwrap();
        tilewave_tls::files::write_pair(dir.path(), "ada", &issued, false).unwrap();
        let files = |name: &str| tilewave_tls::TlsFiles {
            cert: dir.path().join(format!("{name}.crt")),
            key: dir.path().join(format!("{name}.key")),
            ca: dir.path().join("ca.crt"),
        };
        let with = |name: &str, layer: Layer| {
            let mut c = ctx("ada");
            c.settings.tls = Some(files(name));
            c.settings.tls_from = Some(layer);
            c.settings.dev_stack = Some(crate::settings::DevStackRef {
                dir: "/stack".into(),
                tls: true,
            });
            c
        };
        // (certificate, its layer, what the error says)
        let cases = [
            (
                "ada",
                Layer::DevStack,
                &["expired on", "delete /stack/certs", "tilewave dev up"][..],
            ),
            (
                "ada",
                Layer::Env,
                &["expired on", "TILEWAVE_TLS_CERT", "certs issue"][..],
            ),
            (
                "nobody",
                Layer::Flag,
                &["nobody.crt", "--tls-cert", "certs list"][..],
            ),
        ];
        for (name, layer, wants) in cases {
            let err = with(name, layer).registry().unwrap_err();
            assert_eq!(err.exit_code(), 2, "{err}");
            let text = err.to_string();
            for want in wants {
                assert!(text.contains(want), "{name} {layer:?}: {want:?} in {text}");
            }
        }
    }

    #[test]
    fn an_actor_that_is_not_ascii_is_a_usage_error() {
        let err = ctx("ad\u{e9}\n").request(()).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }
}
