//! The flags every command takes (`--registry`, `--actor`, `-o`, ...),
//! apart from the command tree so that a command (e.g. `dev`) can read them
//! without depending on the tree that names it.

use crate::endpoints::EndpointFlags;
use crate::output::Format;
use crate::settings::FlagSettings;

/// Flags every command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct GlobalArgs {
    /// `--registry URL`, `--rollout URL`, ...: one per service of
    /// [`crate::endpoints::ENDPOINTS`].
    #[command(flatten)]
    pub endpoints: EndpointFlags,
    /// Who you are, for the audit log [env: TILEWAVE_ACTOR] [default: $USER].
    #[arg(long, global = true, value_name = "NAME")]
    pub actor: Option<String>,
    /// How long one call may take, e.g. 10s [env: TILEWAVE_TIMEOUT] [default: 10s].
    #[arg(long, global = true, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = Format::Table)]
    pub output: Format,
    /// Print the trace id of this command on stderr.
    #[arg(long, global = true)]
    pub trace: bool,
    /// Your client certificate (PEM): with --tls-key and --tls-ca every call
    /// is mutual TLS [env: TILEWAVE_TLS_CERT] [config: tls-cert] [default:
    /// the one `tilewave dev up` saved for its stack].
    #[arg(long, global = true, value_name = "FILE")]
    pub tls_cert: Option<String>,
    /// The private key of --tls-cert [env: TILEWAVE_TLS_KEY] [config: tls-key] [default: the dev stack's].
    #[arg(long, global = true, value_name = "FILE")]
    pub tls_key: Option<String>,
    /// The CA certificate the services' certificates are checked against
    /// [env: TILEWAVE_TLS_CA] [config: tls-ca] [default: the dev stack's].
    #[arg(long, global = true, value_name = "FILE")]
    pub tls_ca: Option<String>,
    /// Log more on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl GlobalArgs {
    /// The connection settings the flags give.
    pub fn flag_settings(&self) -> FlagSettings {
        FlagSettings {
            urls: self.endpoints.0.clone(),
            actor: self.actor.clone(),
            timeout: self.timeout.clone(),
            tls: [self.tls_cert.clone(), self.tls_key.clone(), self.tls_ca.clone()],
        }
    }
}
