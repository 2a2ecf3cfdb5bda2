//! `<binary> health`: the container health check of every service binary.
//!
//! Images built `FROM scratch` have no shell and no `curl`, so each service
//! binary answers a `health` subcommand itself: it calls the standard gRPC
//! health service of the server running beside it (same container, same
//! environment: its `TILEWAVE_LISTEN` port and its `TILEWAVE_TLS_*`
//! certificate, whose `service` role may call the health check) and exits
//! 0 when the answer is SERVING, 1 otherwise, printing one line either way.
//!
//! ```text
//! tilewave-registry health
//! tilewave-rollout health --addr 127.0.0.1:7402 --service tilewave.rollout.v1.RolloutService
//! ```

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// The subcommand's name, the first argument of the binary.
pub const SUBCOMMAND: &str = "health";

/// How long the check may take unless `--timeout-ms` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// `health`: ask the server beside this process whether it is serving.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    about = "Ask the server running beside this process (same environment) whether it is SERVING: exit 0 if so, 1 if not",
    after_long_help = "Examples:\n  tilewave-registry health\n  tilewave-agent health --addr 127.0.0.1:7410 --timeout-ms 1000"
)]
pub struct HealthArgs {
    /// The server's address [default: 127.0.0.1 and the port of TILEWAVE_LISTEN, else the binary's default port].
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: Option<String>,
    /// The gRPC health service to ask about [default: the binary's main service].
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
    /// How long the check may take, in milliseconds.
    #[arg(long, default_value_t = 3000)]
    pub timeout_ms: u64,
    /// TLS: the certificate to present (the service's own, from its environment).
    #[command(flatten)]
    pub tls: tilewave_tls::TlsArgs,
}

/// What a binary tells [`run_if_asked`] about itself.
#[derive(Debug, Clone, Copy)]
pub struct Probe<'a> {
    /// The binary's name, for messages (`tilewave-registry`).
    pub binary: &'a str,
    /// The health service whose SERVING means ready (`""`: the server).
    pub service: &'a str,
    /// The binary's default listen address (`127.0.0.1:7401`).
    pub default_listen: &'a str,
}

/// When the binary was started as `<binary> health ...`, runs the check and
/// returns its exit code; otherwise `None` (start the service as usual).
pub async fn run_if_asked(probe: Probe<'_>) -> Option<ExitCode> {
    let mut args = std::env::args_os().skip(1);
    let sub = args.next()?;
    if sub != SUBCOMMAND {
        return None;
    }
    let parsed = <HealthArgs as clap::Parser>::try_parse_from(
        std::iter::once(std::ffi::OsString::from(format!("{} {SUBCOMMAND}", probe.binary))).chain(args),
    );
    Some(match parsed {
        Ok(args) => check(probe, &args).await,
        Err(e) => {
            // Help and version exit 0; a usage error exits 2.
            let _ = e.print();
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
        }
    })
}

/// The address to check: `--addr`, else loopback with the port of
/// `TILEWAVE_LISTEN` (a container's server listens on `0.0.0.0:PORT`),
/// else the binary's default.
pub fn target(addr: Option<&str>, listen_env: Option<&str>, default_listen: &str) -> Result<String, String> {
    if let Some(a) = addr {
        return Ok(a.to_owned());
    }
    let listen = listen_env.unwrap_or(default_listen);
    let parsed: SocketAddr = listen.parse().map_err(|_| {
        format!(
            "TILEWAVE_LISTEN {} is not HOST:PORT; give --addr",
            tilewave_core::quote::quoted(listen)
        )
    })?;
    let host = if parsed.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        parsed.ip().to_string()
    };
    Ok(format!("{host}:{}", parsed.port()))
}

async fn check(probe: Probe<'_>, args: &HealthArgs) -> ExitCode {
    let listen = std::env::var("TILEWAVE_LISTEN").ok();
    let service = args.service.as_deref().unwrap_or(probe.service);
    let timeout = Duration::from_millis(args.timeout_ms);
    let answer = async {
        let addr = target(args.addr.as_deref(), listen.as_deref(), probe.default_listen)?;
        let tls = args.tls.load().map_err(|e| e.to_string())?;
        let endpoint = tilewave_tls::endpoint(&addr, tls.as_ref())
            .map_err(|e| e.to_string())?
            .connect_timeout(timeout)
            .timeout(timeout);
        let channel = tokio::time::timeout(timeout, endpoint.connect())
            .await
            .map_err(|_| format!("{addr}: no connection within {timeout:?}"))?
            .map_err(|e| format!("{addr}: cannot connect: {e}"))?;
        let reply = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .map_err(|s| format!("{addr}: {}: {}", s.code(), s.message()))?;
        Ok::<_, String>((addr, reply.into_inner().status()))
    };
    let name = if service.is_empty() { "server" } else { service };
    match answer.await {
        Ok((addr, ServingStatus::Serving)) => {
            println!("{}: {name} at {addr} is SERVING", probe.binary);
            ExitCode::SUCCESS
        }
        Ok((addr, status)) => {
            println!("{}: {name} at {addr} is {}", probe.binary, status.as_str_name());
            ExitCode::FAILURE
        }
        Err(why) => {
            println!("{}: {name} is not healthy: {why}", probe.binary);
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::target;

    /// (--addr, TILEWAVE_LISTEN, the default, the target or a part of the error).
    type Case<'a> = (
        Option<&'a str>,
        Option<&'a str>,
        &'a str,
        Result<&'a str, &'a str>,
    );

    #[test]
    fn the_target_follows_the_listen_address() {
        let cases: &[Case] = &[
            (None, None, "127.0.0.1:7401", Ok("127.0.0.1:7401")),
            (None, Some("0.0.0.0:7402"), "127.0.0.1:7401", Ok("127.0.0.1:7402")),
            (None, Some("[::]:7403"), "127.0.0.1:7401", Ok("127.0.0.1:7403")),
            (None, Some("10.0.0.5:7404"), "127.0.0.1:7401", Ok("10.0.0.5:7404")),
            (
                Some("registry:7401"),
                Some("0.0.0.0:1"),
                "127.0.0.1:7401",
                Ok("registry:7401"),
            ),
            (None, Some("nonsense"), "127.0.0.1:7401", Err("TILEWAVE_LISTEN")),
        ];
        for (addr, env, default, want) in cases {
            let got = target(*addr, *env, default);
            match (got, want) {
                (Ok(g), Ok(w)) => assert_eq!(g, *w, "{addr:?} {env:?}"),
                (Err(g), Err(w)) => assert!(g.contains(w), "{g}"),
                (g, w) => panic!("{addr:?} {env:?}: got {g:?}, want {w:?}"),
            }
        }
    }
}
