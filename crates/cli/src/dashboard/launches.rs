//! The launches page: roll-outs under way, then the calendar of upcoming
//! launch days with their tiles, each tile's readiness (validation
//! checklist, sign-offs, go-to-market) and slack to its deadline; tiles at
//! risk first. Reads ListLaunches (as `tilewave ga list`), ListRollouts and
//! each launching tile.

use axum::extract::State;
use axum::response::Response;
use maud::{Markup, html};
use tilewave_proto::registry::v1::{GetTileRequest, Tile};
use tilewave_proto::rollout::v1::{Launch, LaunchSlot, ListRolloutsRequest, Rollout, RolloutState};

use super::Shared;
use super::layout::{Nav, page as shell, respond, slack, time};
use crate::error::rpc;
use crate::ga::{list_request, readiness};
use crate::names::{from_proto_duration, from_proto_time, role_name, state_name};
use crate::rollout::render::{phase, state_name as rollout_state};

/// How much a launch needs attention: lower is worse (sorted first).
pub fn risk_rank(l: &Launch) -> u8 {
    let late = l
        .slack
        .as_ref()
        .map(from_proto_duration)
        .is_some_and(|d| d.is_negative());
    if late || !l.blocked.is_empty() {
        0
    } else if l.held || !l.gtm_pending.is_empty() || !l.open_cases.is_empty() {
        1
    } else {
        2
    }
}

/// Launches at risk first, then by GA moment.
pub fn ordered(launches: &[Launch]) -> Vec<&Launch> {
    let mut v: Vec<&Launch> = launches.iter().collect();
    v.sort_by_key(|l| (risk_rank(l), l.ga_time.as_ref().map_or(i64::MAX, |t| t.seconds)));
    v
}

/// A launch day: a calendar slot, or a GA moment outside the slots, with
/// the tiles going GA then (at risk first).
#[derive(Debug)]
pub struct Day<'a> {
    /// The moment.
    pub at: prost_types::Timestamp,
    /// The calendar slot, when it is one.
    pub slot: Option<&'a LaunchSlot>,
    /// Its tiles.
    pub launches: Vec<&'a Launch>,
}

/// The launch days in time order: every slot, and every GA moment that
/// is not a slot, each with its tiles.
pub fn days<'a>(slots: &'a [LaunchSlot], launches: &'a [Launch]) -> Vec<Day<'a>> {
    let mut out: Vec<Day<'a>> = slots
        .iter()
        .filter_map(|s| {
            Some(Day {
                at: s.at?,
                slot: Some(s),
                launches: Vec::new(),
            })
        })
        .collect();
    for l in ordered(launches) {
        let Some(at) = l.ga_time else { continue };
        match out.iter_mut().find(|d| d.at.seconds == at.seconds) {
            Some(d) => d.launches.push(l),
            None => out.push(Day {
                at,
                slot: None,
                launches: vec![l],
            }),
        }
    }
    out.sort_by_key(|d| (d.at.seconds, d.at.nanos));
    out
}

/// The sign-off part of readiness: "3/5 (missing legal, partner)".
pub fn sign_offs(tile: Option<&Tile>) -> Markup {
    match tile {
        None => html! { span.muted { "-" } },
        Some(t) if t.missing_sign_offs.is_empty() => html! { span.ok { "all signed" } },
        Some(t) => {
            let missing: Vec<String> = t.missing_sign_offs.iter().map(|r| role_name(*r)).collect();
            html! { span.tight { "missing " (missing.join(", ")) } }
        }
    }
}

/// One launch's row.
fn row(l: &Launch, tile: Option<&Tile>) -> Markup {
    let rank = risk_rank(l);
    let class = ["risk", "attention", "ready"][usize::from(rank.min(2))];
    html! {
        tr class=(class) {
            td data-label="Tile" { a href=(format!("/tiles/{}", l.tile_id)) { (l.tile_id) } br; span.muted { (l.tile_name) } }
            td data-label="GA" { (time(from_proto_time(l.ga_time.as_ref()))) }
            td data-label="State" { (state_name(l.tile_state).to_ascii_lowercase()) }
            td data-label="Roll-out" {
                @if l.rollout_id.is_empty() { span.muted { "starts " (time(from_proto_time(l.start_at.as_ref()))) } }
                @else { a href=(format!("/rollouts/{}", l.rollout_id)) { (l.rollout_id) } " " (rollout_state(l.rollout_state).to_ascii_lowercase()) }
            }
            td data-label="Checklist" { @if l.open_cases.is_empty() { span.ok { "done" } } @else { span.tight { (l.open_cases.len()) " open" } } }
            td data-label="Sign-offs" { (sign_offs(tile)) }
            td data-label="GTM" { @if l.gtm_pending.is_empty() { span.ok { "done" } } @else { span.tight { (l.gtm_pending.join(", ")) } } }
            td data-label="Slack" { (slack(l.slack.as_ref().map(from_proto_duration))) }
            td.note data-label="Needs" { (readiness(l)) }
        }
    }
}

/// The table head of launches.
fn table(rows: Markup) -> Markup {
    html! {
        table.launches {
            thead { tr { th { "Tile" } th { "GA" } th { "State" } th { "Roll-out" } th { "Checklist" } th { "Sign-offs" } th { "GTM" } th { "Slack" } th { "Needs" } } }
            tbody { (rows) }
        }
    }
}

/// The roll-outs under way.
fn running(list: &[Rollout]) -> Markup {
    html! {
        @if list.is_empty() {
            p.muted { "No roll-out is under way." }
        } @else {
            ul.rollouts {
                @for r in list {
                    li {
                        a href=(format!("/rollouts/{}", r.id)) { (r.tile_id) " · " (r.id) }
                        " " span class=(format!("badge rs-{}", rollout_state(r.state).to_ascii_lowercase())) { (rollout_state(r.state).to_ascii_lowercase()) }
                        " " span.muted { (phase(r)) " · " (r.regions_verified) "/" (r.regions_total) " verified" }
                    }
                }
            }
        }
    }
}

/// `GET /`.
pub async fn page_handler(app: &Shared) -> anyhow::Result<Markup> {
    let ctx = &app.ctx;
    let mut rollouts = ctx.rollouts()?;
    let active = rpc(
        "ListRollouts",
        rollouts
            .list_rollouts(
                ctx.request(ListRolloutsRequest {
                    states: [
                        RolloutState::Running,
                        RolloutState::Paused,
                        RolloutState::Pending,
                        RolloutState::RollingBack,
                    ]
                    .iter()
                    .map(|s| *s as i32)
                    .collect(),
                    ..ListRolloutsRequest::default()
                })?,
            )
            .await,
    )?;
    let resp = rpc(
        "ListLaunches",
        rollouts.list_launches(ctx.request(list_request(None))?).await,
    )?;
    let mut registry = ctx.registry()?;
    let mut tiles = Vec::new();
    for l in &resp.launches {
        let t = registry
            .get_tile(ctx.request(GetTileRequest {
                id: l.tile_id.clone(),
                revision: 0,
            })?)
            .await
            .ok()
            .and_then(|r| r.into_inner().tile);
        tiles.push(t);
    }
    let tile_of = |id: &str| {
        resp.launches
            .iter()
            .position(|l| l.tile_id == id)
            .and_then(|i| tiles.get(i))
            .and_then(Option::as_ref)
    };
    let at_risk: Vec<&Launch> = ordered(&resp.launches)
        .into_iter()
        .filter(|l| risk_rank(l) < 2)
        .collect();
    let body = html! {
        h1 { "Launches" }
        section {
            h2 { "Roll-outs under way" }
            (running(&active.rollouts))
        }
        section {
            h2 { "Needs attention " span.muted { "(at risk first)" } }
            @if at_risk.is_empty() { p.ok { "Every upcoming launch is ready and on plan." } }
            @else { (table(html! { @for l in &at_risk { (row(l, tile_of(&l.tile_id))) } })) }
        }
        section {
            h2 { "Launch days" }
            @if resp.slots.is_empty() && resp.launches.is_empty() {
                p.muted { "No launch day ahead: add a launch rule with `tilewave calendar add-rule`." }
            }
            @for d in days(&resp.slots, &resp.launches) {
                @if d.launches.is_empty() {
                    p.day-empty {
                        (time(from_proto_time(Some(&d.at)))) " " span.muted {
                            @if let Some(s) = d.slot { (s.booked) "/" (s.capacity) " booked · " (s.source) " · open" }
                        }
                    }
                } @else {
                    div.day {
                        h3 {
                            (time(from_proto_time(Some(&d.at)))) " "
                            span.muted {
                                @match d.slot {
                                    Some(s) => { (s.booked) "/" (s.capacity) " booked · " (s.source) }
                                    None => { "a GA date outside the launch days" }
                                }
                            }
                        }
                        (table(html! { @for l in &d.launches { (row(l, tile_of(&l.tile_id))) } }))
                    }
                }
            }
        }
    };
    Ok(shell(
        "Launches",
        Nav::Launches,
        app.token.csrf(),
        Some("/events/changes?feed=tiles"),
        body,
    ))
}

/// `GET /`.
pub async fn page(State(app): State<Shared>) -> Response {
    respond(Box::pin(page_handler(&app)).await, app.token.csrf())
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;

    use super::*;
    use crate::names::to_proto_duration;

    fn launch(id: &str, ga: i64, slack_h: i64) -> Launch {
        Launch {
            tile_id: id.into(),
            ga_time: Some(prost_types::Timestamp {
                seconds: ga,
                nanos: 0,
            }),
            slack: Some(to_proto_duration(SignedDuration::from_hours(slack_h))),
            ..Default::default()
        }
    }

    #[test]
    fn at_risk_tiles_come_first_then_by_ga() {
        let mut pending = launch("c", 300, 10);
        pending.gtm_pending = vec!["blog".into()];
        let list = [
            launch("a", 100, 5),
            launch("late", 400, -2),
            pending,
            launch("b", 50, 5),
        ];
        let order: Vec<&str> = ordered(&list).iter().map(|l| l.tile_id.as_str()).collect();
        assert_eq!(order, ["late", "c", "b", "a"]);
        let slots = [
            LaunchSlot {
                at: Some(prost_types::Timestamp {
                    seconds: 100,
                    nanos: 0,
                }),
                capacity: 5,
                booked: 1,
                source: "tue".into(),
            },
            LaunchSlot {
                at: Some(prost_types::Timestamp {
                    seconds: 250,
                    nanos: 0,
                }),
                capacity: 5,
                booked: 0,
                source: "tue".into(),
            },
        ];
        let d = days(&slots, &list);
        let shape: Vec<(i64, bool, Vec<&str>)> = d
            .iter()
            .map(|d| {
                (
                    d.at.seconds,
                    d.slot.is_some(),
                    d.launches.iter().map(|l| l.tile_id.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            [
                (50, false, vec!["b"]),
                (100, true, vec!["a"]),
                (250, true, vec![]),
                (300, false, vec!["c"]),
                (400, false, vec!["late"]),
            ]
        );
        let html = row(&list[1], None).into_string();
        assert!(
            html.contains("class=\"risk\"") && html.contains("late by 2h"),
            "{html}"
        );
    }
}
