//! `tilewave`: the command line of the tilewave roll-out orchestrator.
//!
//! `main` parses the command line (clap exits 2 on a usage error), sets
//! telemetry up (one root span per command; `--trace` prints its trace id,
//! and every error does), runs the command, prints an error as the status
//! message followed by each field violation, and exits with the code the
//! error maps to (see `error`).
#![forbid(unsafe_code)]

mod admin;
mod args;
mod auth;
mod calendar;
mod certs;
mod cli;
mod client;
mod clock;
mod creds;
mod dashboard;
mod demo;
mod demo_oncall;
mod demo_partner;
mod dev;
mod diff;
mod endpoints;
mod error;
mod freeze;
mod ga;
mod names;
mod oncall;
mod output;
mod rollout;
mod settings;
mod tile;
mod view;

use std::process::ExitCode;

use clap::Parser as _;
use tracing::Instrument as _;

use crate::cli::{Cli, Command};
use crate::client::{Ctx, note};
use crate::error::{EXIT_FAILURE, EXIT_OK, exit_code, report};
use crate::settings::{Settings, process_env};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            note(&format!("error: starting the async runtime: {e}"));
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    ExitCode::from(runtime.block_on(run(cli)))
}

/// Runs one command inside its root span and returns the exit code.
async fn run(cli: Cli) -> u8 {
    if let Command::Completions(args) = &cli.command {
        return match client::out(&cli::completions(args.shell)) {
            Ok(()) => EXIT_OK,
            Err(e) => {
                note(&format!("error: writing the completion script: {e}"));
                EXIT_FAILURE
            }
        };
    }
    let guard = match tilewave_telemetry::init_for_cli("tilewave", cli.global.verbose) {
        Ok(g) => Some(g),
        Err(e) => {
            note(&format!("warning: telemetry is off: {e}"));
            None
        }
    };
    let span = tracing::info_span!("tilewave", command = cli.command.name());
    let trace_id = span.in_scope(tilewave_telemetry::trace_id_of_current);
    if cli.global.trace && !trace_id.is_empty() {
        note(&format!("trace id: {trace_id}"));
    }
    let mut settings = None;
    let result = execute(cli, &mut settings).instrument(span).await;
    let code = match result {
        Ok(()) => EXIT_OK,
        Err(e) => {
            for line in report(&e, settings.as_ref()) {
                note(&line);
            }
            if !trace_id.is_empty() {
                note(&format!("trace id: {trace_id}"));
            }
            exit_code(&e)
        }
    };
    if let Some(g) = guard
        && let Err(e) = g.shutdown().await
    {
        note(&format!("warning: flushing traces: {e}"));
    }
    code
}

/// Dispatches a command; `resolved` keeps the connection settings of a
/// command that calls the services, so that an error's hint can say where
/// its TLS settings came from.
async fn execute(cli: Cli, resolved: &mut Option<Settings>) -> anyhow::Result<()> {
    let mut ctx = || -> anyhow::Result<Ctx> {
        let settings = Settings::load(&cli.global.flag_settings(), &process_env)?;
        *resolved = Some(settings.clone());
        let ctx = Ctx::new(settings, cli.global.output);
        tracing::debug!(urls = ?ctx.settings.urls, actor = %ctx.settings.actor, tls = ?ctx.settings.tls_from, "settings");
        Ok(ctx)
    };
    match cli.command {
        Command::Tile(cmd) => tile::run(cmd, &ctx()?).await,
        Command::Rollout(cmd) => rollout::run(cmd, &ctx()?).await,
        Command::Freeze(cmd) => freeze::run(cmd, &ctx()?).await,
        Command::Calendar(cmd) => calendar::run(cmd, &ctx()?).await,
        Command::Ga(cmd) => ga::run(cmd, &ctx()?).await,
        Command::Creds(cmd) => creds::run(cmd, &ctx()?).await,
        Command::Incident(cmd) => oncall::incident::run(cmd, &ctx()?).await,
        Command::Oncall(cmd) => oncall::run_oncall(cmd, &ctx()?).await,
        Command::Policy(cmd) => oncall::run_policy(cmd, &ctx()?).await,
        Command::Sop(cmd) => oncall::run_sop(cmd, &ctx()?).await,
        Command::Clock(cmd) => clock::run(cmd, &ctx()?).await,
        Command::Demo(args) => demo::run(args, &ctx()?).await,
        Command::Dashboard(args) => dashboard::run(args, ctx()?).await,
        Command::Dev(cmd) => dev::run(cmd, &cli.global).await,
        Command::Auth(cmd) => auth::run(&cmd, cli.global.output, ctx).await,
        Command::Admin(cmd) => admin::run(cmd, cli.global.output, ctx).await,
        Command::Certs(cmd) => certs::run(cmd, cli.global.output),
        Command::Completions(_) => Ok(()),
    }
}
