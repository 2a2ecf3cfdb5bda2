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
use tilewave_proto::credentials::v1::Rotation;

async fn page_fn(app: &Shared) -> anyhow::Result<maud::Markup> {
    let ctx = &app.ctx;
    let resp = rpc(
        "ListRotations",
        ctx.credentials()?
            .list_rotations(ctx.request(rotations_request(&RotationsArgs { tile: None }, ""))?)
            .await,
    )?;
    Ok(shell(
        "Credentials",
        Nav::Credentials,
        app.token.csrf(),
        None,
        body(&resp.rotations),
    ))
}

/// The page's content: rotations in progress with a cell per region (its
/// distribution and verification state), then the recently ended ones.
pub fn body(rotations: &[Rotation]) -> maud::Markup {
    let (open, ended): (Vec<_>, Vec<_>) = rotations.iter().partition(|r| !is_terminal(r));
    html! {
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
                            div class=(format!("cell cr-{}", region_state_name(g.state).to_ascii_lowercase())) title=(format!("{} · wave {} · {}{}", g.region, g.wave, region_state_name(g.state), if g.last_error.is_empty() { String::new() } else { format!(" · {}", g.last_error) })) {
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
    }
}

/// `GET /credentials`.
pub async fn page(State(app): State<Shared>) -> Response {
    respond(Box::pin(page_fn(&app)).await, app.token.csrf())
}

#[cfg(test)]
mod tests {
    use tilewave_proto::credentials::v1::{RegionRotation, RegionRotationState, RotationState};

    use super::*;

    #[test]
    fn a_rotation_in_progress_shows_a_cell_per_region_by_state() {
        let region = |name: &str, state: RegionRotationState| RegionRotation {
            region: name.into(),
            wave: 1,
            state: state as i32,
            ..Default::default()
        };
        let r = Rotation {
            id: "rot-1".into(),
            tile_id: "riverflow".into(),
            state: RotationState::Distributing as i32,
            regions_total: 3,
            regions_distributed: 2,
            regions_verified: 1,
            regions: vec![
                region("aws:us-east-1", RegionRotationState::Verified),
                region("gcp:us-central1", RegionRotationState::Installing),
                region("azure:eastus", RegionRotationState::Pending),
            ],
            ..Default::default()
        };
        let html = body(&[r]).into_string();
        for want in [
            "cell cr-verified",
            "cell cr-installing",
            "cell cr-pending",
            "2/3 distributed",
            "1/3 verified",
        ] {
            assert!(html.contains(want), "{want} in {html}");
        }
        assert!(body(&[]).into_string().contains("No rotation is in progress."));
    }
}
