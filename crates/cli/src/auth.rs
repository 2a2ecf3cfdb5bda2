//! `tilewave auth table`: which roles may call each RPC, from the one table
//! the services check every call against (`tilewave_auth::table`).
//! `tilewave auth whoami`: asks a running service (`AuthService/WhoAmI`)
//! who the caller is and which of its RPCs the caller may call.

use clap::Subcommand;
use tilewave_proto::auth::v1::{WhoAmIRequest, WhoAmIResponse};

use crate::client::{Ctx, out};
use crate::endpoints::{ENDPOINTS, Endpoint, REGISTRY};
use crate::error::rpc;
use crate::output::{Format, fields, structured};

/// Examples of `auth table`.
const TABLE_EXAMPLES: &str = "\
Roles: release-engineer, oncall, partner:<partner-id>, viewer, service. In the table, x is
allowed, - refused, and own allowed for a partner's own tiles only.

Examples:
  tilewave auth table
  tilewave auth table -o json";

/// Examples of `auth whoami`.
const WHOAMI_EXAMPLES: &str = "\
The service answers with the identity of the certificate the CLI presents (--tls-cert, or
the settings), its role in that service's access policy, and the RPCs of that service the
role may call (own: a partner's own tiles only). Without TLS it says so: no identity, no
role check, every RPC callable.

Examples:
  tilewave auth whoami
  tilewave auth whoami --service rollout -o json
  tilewave auth whoami --url https://127.0.0.1:7411     # an agent";

/// The auth commands.
#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Show which roles may call each RPC.
    #[command(after_long_help = TABLE_EXAMPLES)]
    Table,
    /// Ask a service who you are and which of its RPCs you may call.
    #[command(after_long_help = WHOAMI_EXAMPLES)]
    Whoami(WhoamiArgs),
}

/// The arguments of `auth whoami`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct WhoamiArgs {
    /// The service to ask, at its address from the settings (registry, rollout or credentials).
    #[arg(long, value_name = "NAME", value_parser = service, default_value = REGISTRY.name, conflicts_with = "url")]
    pub service: Endpoint,
    /// Ask the service at this URL instead (an agent, say); TLS as for the others.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
}

/// A service name of the settings.
fn service(s: &str) -> Result<Endpoint, String> {
    Endpoint::by_key(s.trim()).ok_or_else(|| {
        let names: Vec<&str> = ENDPOINTS.iter().map(|e| e.name).collect();
        format!(
            "{} is not a service: use one of {} (or --url for another)",
            tilewave_core::quote::quoted(s),
            names.join(", ")
        )
    })
}

impl AuthCommand {
    /// The command's name, for the root span.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Table => "auth table",
            Self::Whoami(_) => "auth whoami",
        }
    }
}

/// One callable RPC, for JSON/YAML.
#[derive(Debug, serde::Serialize)]
struct RpcView {
    rpc: String,
    path: String,
    own_tiles_only: bool,
}

/// A `WhoAmI` answer, for JSON/YAML: empty strings are `null`.
#[derive(Debug, serde::Serialize)]
struct WhoamiView {
    identity: Option<String>,
    role: Option<String>,
    certificate_serial: Option<String>,
    service: String,
    tls: bool,
    role_checks: bool,
    rpcs: Vec<RpcView>,
}

/// `Some` unless empty.
fn given(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// What `auth whoami` prints in a format.
pub fn whoami_text(r: &WhoAmIResponse, format: Format) -> anyhow::Result<String> {
    let view = WhoamiView {
        identity: given(&r.identity),
        role: given(&r.role),
        certificate_serial: given(&r.certificate_serial),
        service: r.service.clone(),
        tls: r.tls,
        role_checks: r.role_checks,
        rpcs: r
            .rpcs
            .iter()
            .map(|c| RpcView {
                rpc: c.rpc.clone(),
                path: c.path.clone(),
                own_tiles_only: c.own_tiles_only,
            })
            .collect(),
    };
    if let Some(text) = structured(format, &view)? {
        return Ok(text);
    }
    let on = |b: bool| if b { "on" } else { "off" }.to_owned();
    let none = |v: Option<String>, why: &str| v.unwrap_or_else(|| format!("- ({why})"));
    let why = if r.tls { "not established" } else { "no TLS" };
    let role_why = if r.tls && !r.identity.is_empty() {
        "none: the access policy gives this identity no role"
    } else {
        why
    };
    let mut text = fields(&[
        ("IDENTITY", none(view.identity, why)),
        ("ROLE", none(view.role, role_why)),
        ("SERIAL", none(view.certificate_serial, why)),
        ("SERVICE", view.service),
        ("TLS", on(r.tls)),
        ("ROLE CHECKS", on(r.role_checks)),
        ("MAY CALL", format!("{} RPCs of this service", r.rpcs.len())),
    ]);
    for c in &r.rpcs {
        text.push_str("  ");
        text.push_str(&c.rpc);
        if c.own_tiles_only {
            text.push_str("  (own tiles only)");
        }
        text.push('\n');
    }
    Ok(text)
}

/// Asks the service of `args` who the caller is.
async fn whoami(args: &WhoamiArgs, ctx: &Ctx) -> anyhow::Result<String> {
    let url = match &args.url {
        Some(u) => u.clone(),
        None => ctx.settings.url(args.service),
    };
    let mut client = ctx.auth(&url)?;
    let answer = rpc("WhoAmI", client.who_am_i(ctx.request(WhoAmIRequest {})?).await)?;
    whoami_text(&answer, ctx.format)
}

/// What `auth table` prints in a format.
pub fn table(format: Format) -> anyhow::Result<String> {
    Ok(match structured(format, &tilewave_auth::table::views())? {
        Some(text) => text,
        None => tilewave_auth::table::render(),
    })
}

/// Runs an auth command: `table` calls no service (and reads no
/// settings), `whoami` calls one with the context `ctx` makes.
pub async fn run(
    cmd: &AuthCommand,
    format: Format,
    ctx: impl FnOnce() -> anyhow::Result<Ctx>,
) -> anyhow::Result<()> {
    match cmd {
        AuthCommand::Table => out(&table(format)?),
        AuthCommand::Whoami(args) => out(&whoami(args, &ctx()?).await?),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> Result<(AuthCommand, Format), clap::Error> {
        let argv = ["tilewave", "auth"].iter().chain(args.iter()).copied();
        let cli = Cli::try_parse_from(argv)?;
        match cli.command {
            Command::Auth(a) => Ok((a, cli.global.output)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn table_from_argv() {
        let cases: &[(&[&str], Format)] = &[
            (&["table"], Format::Table),
            (&["table", "-o", "json"], Format::Json),
            (&["table", "-o", "yaml"], Format::Yaml),
        ];
        for (args, want) in cases {
            let (cmd, format) = parse(args).unwrap();
            assert_eq!(cmd.name(), "auth table");
            assert_eq!(format, *want, "{args:?}");
        }
        for bad in [&["tables"][..], &[], &["table", "extra"]] {
            assert_eq!(parse(bad).unwrap_err().exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn whoami_from_argv() {
        let (cmd, _) = parse(&["whoami"]).unwrap();
        assert_eq!(cmd.name(), "auth whoami");
        let args = |cmd: AuthCommand| match cmd {
            AuthCommand::Whoami(a) => a,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            args(cmd),
            WhoamiArgs {
                service: REGISTRY,
                url: None
            }
        );
        let (cmd, format) = parse(&["whoami", "--service", "rollout", "-o", "json"]).unwrap();
        assert_eq!(args(cmd).service, crate::endpoints::ROLLOUT);
        assert_eq!(format, Format::Json);
        let (cmd, _) = parse(&["whoami", "--url", "https://127.0.0.1:7411"]).unwrap();
        assert_eq!(args(cmd).url.as_deref(), Some("https://127.0.0.1:7411"));
        for bad in [
            &["whoami", "--service", "agent"][..],
            &["whoami", "--service", "rollout", "--url", "http://x"],
            &["whoami", "extra"],
        ] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
        let err = parse(&["whoami", "--service", "agent"]).unwrap_err().to_string();
        assert!(
            err.contains("use one of registry, rollout, credentials, escalation (or --url for another)"),
            "{err}"
        );
    }

    fn answer() -> WhoAmIResponse {
        use tilewave_proto::auth::v1::CallableRpc;
        WhoAmIResponse {
            identity: "acme-bot".into(),
            role: "partner:acme".into(),
            certificate_serial: "0a1b".into(),
            service: "tilewave-registry".into(),
            tls: true,
            role_checks: true,
            rpcs: vec![
                CallableRpc {
                    rpc: "RegistryService/GetTile".into(),
                    path: "/tilewave.registry.v1.RegistryService/GetTile".into(),
                    own_tiles_only: true,
                },
                CallableRpc {
                    rpc: "AuthService/WhoAmI".into(),
                    path: "/tilewave.auth.v1.AuthService/WhoAmI".into(),
                    own_tiles_only: false,
                },
            ],
        }
    }

    #[test]
    fn whoami_in_each_format() {
        assert_eq!(
            whoami_text(&answer(), Format::Table).unwrap(),
            "\
IDENTITY     acme-bot
ROLE         partner:acme
SERIAL       0a1b
SERVICE      tilewave-registry
TLS          on
ROLE CHECKS  on
MAY CALL     2 RPCs of this service
  RegistryService/GetTile  (own tiles only)
  AuthService/WhoAmI
"
        );
        let json: serde_json::Value =
            serde_json::from_str(&whoami_text(&answer(), Format::Json).unwrap()).unwrap();
        assert_eq!(json["identity"], "acme-bot");
        assert_eq!(json["role"], "partner:acme");
        assert_eq!(json["rpcs"][0]["own_tiles_only"], true);
        assert_eq!(json["rpcs"][1]["path"], "/tilewave.auth.v1.AuthService/WhoAmI");

        let plain = WhoAmIResponse {
            identity: String::new(),
            role: String::new(),
            certificate_serial: String::new(),
            tls: false,
            role_checks: false,
            ..answer()
        };
        let text = whoami_text(&plain, Format::Table).unwrap();
        assert!(text.starts_with("IDENTITY     - (no TLS)\n"), "{text}");
        assert!(text.contains("ROLE CHECKS  off\n"), "{text}");
        let roleless = WhoAmIResponse {
            role: String::new(),
            rpcs: Vec::new(),
            ..answer()
        };
        let text = whoami_text(&roleless, Format::Table).unwrap();
        assert!(
            text.contains("ROLE         - (none: the access policy gives this identity no role)\n"),
            "{text}"
        );
        assert!(text.ends_with("MAY CALL     0 RPCs of this service\n"), "{text}");
        let json: serde_json::Value =
            serde_json::from_str(&whoami_text(&plain, Format::Json).unwrap()).unwrap();
        assert_eq!(json["identity"], serde_json::Value::Null);
        assert_eq!(json["tls"], false);
    }

    #[test]
    fn table_in_each_format() {
        let text = table(Format::Table).unwrap();
        assert!(text.starts_with("RPC "), "{text}");
        let line = text
            .lines()
            .find(|l| l.starts_with("RegistryService/AdvanceLifecycle "))
            .unwrap();
        assert_eq!(
            line.split_whitespace().skip(1).collect::<Vec<_>>(),
            ["-", "-", "-", "-", "x"]
        );

        let json: serde_json::Value = serde_json::from_str(&table(Format::Json).unwrap()).unwrap();
        let rows = json.as_array().unwrap();
        assert_eq!(rows.len(), tilewave_auth::TABLE.len());
        let start = rows
            .iter()
            .find(|r| r["rpc"] == "RolloutService/StartRollout")
            .unwrap();
        assert_eq!(start["path"], "/tilewave.rollout.v1.RolloutService/StartRollout");
        assert_eq!(start["roles"], serde_json::json!(["release-engineer"]));
        assert_eq!(start["partner_own_tiles_only"], false);

        let yaml = table(Format::Yaml).unwrap();
        assert!(yaml.contains("- rpc: RegistryService/GetTile\n"), "{yaml}");
    }
}
