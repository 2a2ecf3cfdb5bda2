//! A tile's page: lifecycle, revisions, sign-offs, the validation
//! checklist, go-to-market, history and where it is live. The sections are
//! the text the matching commands print (`tile get`, `tile checklist`,
//! `tile gtm`, `tile history`, `tile where`), from the same functions, with
//! the sign-offs and the lifecycle drawn as HTML.

use axum::extract::{Path, State};
use axum::response::Response;
use maud::html;
use tilewave_proto::common::v1::TileState;
use tilewave_proto::registry::v1::{GetHistoryRequest, GetTileRequest};
use tilewave_proto::rollout::v1::WhereIsTileRequest;

use super::Shared;
use super::layout::{Nav, page as shell, respond, time};
use crate::error::rpc;
use crate::names::{from_proto_time, role_name, state_name};
use crate::tile::{checklist, get, gtm, history, where_is};

/// The lifecycle in order, for the strip at the top.
const LIFECYCLE: [TileState; 7] = [
    TileState::Draft,
    TileState::Validating,
    TileState::SignedOff,
    TileState::Scheduled,
    TileState::RollingOut,
    TileState::RolledOut,
    TileState::Ga,
];

/// `GET /tiles/{id}`.
pub async fn page_fn(app: &Shared, id: &str) -> anyhow::Result<maud::Markup> {
    let ctx = &app.ctx;
    let mut registry = ctx.registry()?;
    let resp = rpc(
        "GetTile",
        registry
            .get_tile(ctx.request(GetTileRequest {
                id: id.to_owned(),
                revision: 0,
            })?)
            .await,
    )?;
    let tile = resp
        .tile
        .clone()
        .ok_or_else(|| anyhow::anyhow!("GetTile {id}: the response holds no tile"))?;
    let hist = rpc(
        "GetHistory",
        registry
            .get_history(ctx.request(GetHistoryRequest {
                id: id.to_owned(),
                ..GetHistoryRequest::default()
            })?)
            .await,
    )?;
    let placements = ctx
        .rollouts()?
        .where_is_tile(ctx.request(WhereIsTileRequest {
            tile_id: id.to_owned(),
            ..WhereIsTileRequest::default()
        })?)
        .await
        .map(|r| r.into_inner().placements)
        .unwrap_or_default();
    let live = placements.iter().filter(|p| p.live_revision > 0).count();
    let body = html! {
        h1 { (tile.id) " " span.muted { (tile.name) } }
        ol.lifecycle {
            @for s in LIFECYCLE {
                li class=[(tile.state == s as i32).then_some("here")] { (state_name(s as i32).to_ascii_lowercase()) }
            }
        }
        @if !tile.state_reason.is_empty() { p.muted { (tile.state_reason) } }
        dl.facts {
            dt { "Revision" } dd { (tile.revision) " (latest " (tile.latest_revision) ")" }
            dt { "GA" } dd { (time(from_proto_time(tile.ga_time.as_ref()))) }
            dt { "Live in" } dd { (live) " regions" }
            dt { "Roll-out" } dd { a href=(format!("/rollouts/{}", tile.id)) { "the latest roll-out" } }
        }
        section {
            h2 { "Sign-offs" }
            ul.signoffs {
                @for s in &tile.sign_offs {
                    li.ok { (role_name(s.role)) " · " (s.actor) " · revision " (s.revision) " · " (time(from_proto_time(s.at.as_ref()))) }
                }
                @for r in &tile.missing_sign_offs { li.tight { (role_name(*r)) " · missing" } }
            }
        }
        section { h2 { "Validation checklist" } pre { (checklist::render(&tile)) } }
        section { h2 { "Go-to-market" } pre { (gtm::render(&tile)) } }
        section { h2 { "Where it is live" } pre { (where_is::render(&placements, false)) } }
        section { h2 { "Details" } pre { (get::render(&resp)) } }
        section { h2 { "History" } pre { (history::render(&hist.summaries, &hist.records)) } }
    };
    let events = format!("/events/changes?feed=tiles&tile={}", tile.id);
    Ok(shell(&tile.id, Nav::Tile, app.token.csrf(), Some(&events), body))
}

/// `GET /tiles/{id}`.
pub async fn page(State(app): State<Shared>, Path(id): Path<String>) -> Response {
    respond(Box::pin(page_fn(&app, &id)).await, app.token.csrf())
}
