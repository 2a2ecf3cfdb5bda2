//! `tilewave dashboard`: a local web server that shows the launch week at a
//! glance. It reads the services over gRPC with the user's own certificate
//! (the same [`Ctx`] every other command uses), so it shows exactly what
//! that user may see, and every button is the same gRPC call the matching
//! command makes, refused by the services' own role checks.
//!
//! Pages are rendered on the server (maud) and work without JavaScript; a
//! little hand-written script (`assets/dashboard.js`) turns times into the
//! viewer's time zone and applies live updates that arrive as server-sent
//! events fed by the Watch RPCs (`sse`). Access needs the random token the
//! command prints (`token`).

use std::future::IntoFuture as _;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use crate::client::{Ctx, note, out};

pub mod actions;
pub mod creds;
pub mod gantt;
pub mod grid;
pub mod launches;
pub mod layout;
pub mod oncall;
pub mod rollout;
pub mod sse;
pub mod tile;
pub mod token;

/// Examples of `dashboard`.
const EXAMPLES: &str = "\
Examples:
  tilewave dashboard
  tilewave dashboard --listen 127.0.0.1:3200
  tilewave dashboard --trace-url 'http://127.0.0.1:16686/trace/{trace_id}'
  TILEWAVE_TLS_CERT=~/.tilewave/viewer.crt TILEWAVE_TLS_KEY=~/.tilewave/viewer.key tilewave dashboard";

/// What `dashboard --help` says first.
pub const ABOUT: &str = "\
Serve a live web dashboard: the launch calendar with each tile's readiness and slack (at-risk
first), a roll-out's regions as a grid by cloud and wave and its Gantt chart (planned against
actual, deadline and GA), a tile, on-call, credentials. Pages update live; they also work
without JavaScript and on a phone.

It reads the services with your own settings and certificate, so it shows what you may see;
its pause, resume, approve and acknowledge buttons appear only when your role may use them,
each behind a confirmation. The URL it prints carries a token that is new at every start:
without it every request is refused.";

/// Arguments of `dashboard`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct DashboardArgs {
    /// Where to serve: loopback by default (another address serves the
    /// pages to the network; the token still guards them).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:3100")]
    pub listen: SocketAddr,
    /// The trace backend's page of a trace, `{trace_id}` replaced by a
    /// roll-out's trace id (e.g. Jaeger's `http://HOST:16686/trace/{trace_id}`).
    #[arg(long, value_name = "URL", env = "TILEWAVE_TRACE_URL")]
    pub trace_url: Option<String>,
}

/// What every handler shares.
#[derive(Debug)]
pub struct App {
    /// The user's settings and certificate: every call is made with them.
    pub ctx: Ctx,
    /// The access token of this start and the forms' CSRF value.
    pub token: token::Token,
    /// The trace backend's URL template, if any.
    pub trace_url: Option<String>,
}

/// The shared state of the handlers.
pub type Shared = Arc<App>;

/// The routes: pages, their event streams, the actions, the assets. Every
/// route goes through the token check.
pub fn router(app: Shared) -> Router {
    Router::new()
        .route("/", get(launches::page))
        .route("/rollouts/{id}", get(rollout::page))
        .route("/rollouts/{id}/events", get(sse::rollout_events))
        .route("/events/changes", get(sse::changes))
        .route("/rollouts/{id}/confirm/{action}", get(actions::confirm))
        .route("/rollouts/{id}/{action}", post(actions::rollout_action))
        .route("/tiles/{id}", get(tile::page))
        .route("/oncall", get(oncall::page))
        .route("/incidents/{id}/ack", post(actions::acknowledge))
        .route("/credentials", get(creds::page))
        .route("/assets/dashboard.css", get(layout::css))
        .route("/assets/dashboard.js", get(layout::js))
        .layer(axum::middleware::from_fn_with_state(app.clone(), token::guard))
        .with_state(app)
}

/// The URL to open, with this start's token.
pub fn start_url(addr: SocketAddr, token: &token::Token) -> String {
    format!("http://{addr}/?token={}", token.secret())
}

/// Runs `dashboard`: serves until interrupted.
pub async fn run(args: DashboardArgs, ctx: Ctx) -> anyhow::Result<()> {
    if !args.listen.ip().is_loopback() {
        note(&format!(
            "warning: serving on {}, not loopback: anyone who can reach it and has the URL sees what your certificate may see",
            args.listen
        ));
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| anyhow::anyhow!("--listen {}: cannot listen there: {e}", args.listen))?;
    let addr = listener.local_addr()?;
    let app = Arc::new(App {
        ctx,
        token: token::Token::generate(addr.port())?,
        trace_url: args.trace_url,
    });
    out(&format!(
        "tilewave dashboard: open {}\n(the token in the URL is new at every start; Ctrl-C stops)\n",
        start_url(addr, &app.token)
    ))?;
    let server = axum::serve(listener, router(app));
    let serving = server
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .into_future();
    Box::pin(serving)
        .await
        .map_err(|e| anyhow::anyhow!("serving the dashboard: {e}"))
}
