//! The credentials page: rotations in progress, each with its per-region
//! distribution and verification (the grid's cells by region state), and
//! the block `tilewave creds status` prints.

use axum::extract::State;
use axum::response::Response;
use maud::html;

use super::Shared;
use super::layout::{Nav, page as shell, respond, time};
use crate::creds::render::{is_terminal, kind_name, phase, region_state_name, rotation_block};
use crate::creds::{RotationsArgs, rotations_request};
use crate::error::rpc;
use crate::names::from_proto_time;

async fn page_fn(app: &Shared) -> anyhow::Result<maud::Markup> {
    let ctx = &app.ctx;
    let resp = rpc(
        "ListRotations",
        ctx.credentials()?
            .list_rotations(ctx.request(rotations_request(&RotationsArgs { tile: None }, ""))?)
            .await,
    )?;
    let (open, ended): (Vec<_>, Vec<_>) = resp.rotations.iter().partition(|r| !is_terminal(r));
    let body = html! {
        h1 { "Credentials" }
        section {
            h2 { "Rotations in progress" }
            @if open.is_empty() { p.ok { "No rotation is in progress." } }
            @for r in &open {
                div.rotation {
                    h3 { (r.tile_id) " " span.muted { (kind_name(r.kind)) " · " (r.id) } }
                    p { (phase(r)) " · " (r.regions_distributed) "/" (r.regions_total) " distributed · " (r.regions_verified) "/" (r.regions_total) " verified" }
                    div.cells {
                        @for g in &r.regions {
                            div class=(format!("cell cr-{}", region_state_name(g.state))) title=(format!("{} · wave {} · {}{}", g.region, g.wave, region_state_name(g.state), if g.last_error.is_empty() { String::new() } else { format!(" · {}", g.last_error) })) {
                                span.name { (g.region) }
                            }
                        }
                    }
                    details { summary { "Details" } pre { (rotation_block(r)) } }
                }
            }
        }
        section {
            h2 { "Recently ended" }
            @if ended.is_empty() { p.muted { "None." } }
            ul {
                @for r in ended.iter().take(20) {
                    li { (r.tile_id) " · " (kind_name(r.kind)) " · " (phase(r)) " · " (time(from_proto_time(r.finished_at.as_ref()))) }
                }
            }
        }
    };
    Ok(shell(
        "Credentials",
        Nav::Credentials,
        app.token.csrf(),
        None,
        body,
    ))
}

/// `GET /credentials`.
pub async fn page(State(app): State<Shared>) -> Response {
    respond(Box::pin(page_fn(&app)).await, app.token.csrf())
}
