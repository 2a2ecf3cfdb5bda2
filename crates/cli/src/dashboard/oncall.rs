//! The on-call page: open incidents with their ladder position and next
//! escalation, who is on call now and next, and (for a role that may call
//! Acknowledge) an acknowledge button on each triggered incident.

use axum::extract::State;
use axum::response::Response;
use maud::html;
use tilewave_proto::auth::v1::WhoAmIRequest;
use tilewave_proto::escalation::v1::{Incident, IncidentState, OnCallShift};

use super::Shared;
use super::layout::{Nav, page as shell, respond, time};
use crate::endpoints::ESCALATION;
use crate::error::rpc;
use crate::names::from_proto_time;
use crate::oncall::incident::{ListArgs, StateArg, list_all};
use crate::oncall::render::{ladder_text, severity_name, shifts_table, state_name};
use crate::oncall::{NowArgs, now_request};

/// Whether the user may call Acknowledge (WhoAmI of the escalation service).
async fn may_acknowledge(app: &Shared) -> bool {
    let url = app.ctx.settings.url(ESCALATION);
    let answer = async {
        let mut client = app.ctx.auth(&url)?;
        anyhow::Ok(rpc(
            "WhoAmI",
            client.who_am_i(app.ctx.request(WhoAmIRequest {})?).await,
        )?)
    }
    .await;
    answer.is_ok_and(|a| a.rpcs.iter().any(|c| c.rpc == "EscalationService/Acknowledge"))
}

async fn page_fn(app: &Shared) -> anyhow::Result<maud::Markup> {
    let ctx = &app.ctx;
    let incidents = list_all(
        ctx,
        &ListArgs {
            state: vec![StateArg::Triggered, StateArg::Acknowledged, StateArg::Mitigated],
            tile: None,
            severity: None,
        },
    )
    .await?;
    let mut esc = ctx.escalation()?;
    let now = rpc(
        "WhoIsOnCall",
        esc.who_is_on_call(ctx.request(now_request(&NowArgs {
            at: None,
            schedule: None,
        }))?)
        .await,
    )?;
    let next_at = now
        .shifts
        .iter()
        .filter_map(|s| from_proto_time(s.span.as_ref().and_then(|r| r.end.as_ref())))
        .min();
    let next = match next_at {
        Some(at) => Some(rpc(
            "WhoIsOnCall",
            esc.who_is_on_call(ctx.request(now_request(&NowArgs {
                at: Some(at),
                schedule: None,
            }))?)
            .await,
        )?),
        None => None,
    };
    let may_ack = may_acknowledge(app).await;
    let next_shifts = next.map(|n| n.shifts).unwrap_or_default();
    let body = body(
        &incidents,
        &now.shifts,
        next_at,
        &next_shifts,
        may_ack,
        app.token.csrf(),
    );
    Ok(shell(
        "On-call",
        Nav::Oncall,
        app.token.csrf(),
        Some("/events/changes?feed=incidents"),
        body,
    ))
}

/// The page's content: open incidents (with an acknowledge button on the
/// triggered ones when `may_ack`), who is on call now, and from `next_at`.
pub fn body(
    incidents: &[Incident],
    now: &[OnCallShift],
    next_at: Option<jiff::Timestamp>,
    next: &[OnCallShift],
    may_ack: bool,
    csrf: &str,
) -> maud::Markup {
    html! {
        h1 { "On-call" }
        section {
            h2 { "Open incidents" }
            @if incidents.is_empty() { p.ok { "No open incident." } }
            @for i in incidents {
                div class=(format!("incident sev-{}", severity_name(i.severity).to_ascii_lowercase())) {
                    h3 { (i.id) " " span.badge { (severity_name(i.severity)) } " " span.muted { (state_name(i.state)) } }
                    p { (i.title) }
                    dl.facts {
                        @if !i.tile_id.is_empty() { dt { "Tile" } dd { a href=(format!("/tiles/{}", i.tile_id)) { (i.tile_id) } } }
                        @if !i.rollout_id.is_empty() { dt { "Roll-out" } dd { a href=(format!("/rollouts/{}", i.rollout_id)) { (i.rollout_id) } } }
                        dt { "Opened" } dd { (time(from_proto_time(i.opened_at.as_ref()))) }
                        dt { "Ladder" } dd { (ladder_text(i)) }
                        dt { "Next escalation" } dd { (time(i.escalation.as_ref().and_then(|e| from_proto_time(e.due.as_ref())))) }
                    }
                    @if may_ack && i.state == IncidentState::Triggered as i32 {
                        form method="post" action=(format!("/incidents/{}/ack", i.id)) onsubmit=(format!("return confirm('Acknowledge {}? You own it from now.')", i.id)) {
                            input type="hidden" name="csrf" value=(csrf);
                            button.button.ack type="submit" { "Acknowledge" }
                        }
                    }
                }
            }
        }
        section {
            h2 { "On call now" }
            @if now.is_empty() { p.muted { "Nobody is on call." } } @else { pre { (shifts_table(now)) } }
            h2 { "Next " @if let Some(at) = next_at { span.muted { "from " (time(Some(at))) } } }
            @if next.is_empty() { p.muted { "No later shift is known." } } @else { pre { (shifts_table(next)) } }
        }
    }
}

/// `GET /oncall`.
pub async fn page(State(app): State<Shared>) -> Response {
    respond(Box::pin(page_fn(&app)).await, app.token.csrf())
}

#[cfg(test)]
mod tests {
    use tilewave_proto::common::v1::Severity;

    use super::*;

    #[test]
    fn a_triggered_incident_offers_acknowledge_only_to_a_role_that_may() {
        let incident = |id: &str, state: IncidentState| Incident {
            id: id.into(),
            title: "partner /connect returns 500".into(),
            severity: Severity::Sev1 as i32,
            state: state as i32,
            ..Default::default()
        };
        let list = [
            incident("INC-1", IncidentState::Triggered),
            incident("INC-2", IncidentState::Acknowledged),
        ];
        let html = body(&list, &[], None, &[], true, "c5rf").into_string();
        assert!(html.contains("action=\"/incidents/INC-1/ack\""), "{html}");
        assert!(
            !html.contains("/incidents/INC-2/ack"),
            "only triggered ones: {html}"
        );
        assert!(html.contains("value=\"c5rf\""), "{html}");
        let viewer = body(&list, &[], None, &[], false, "c5rf").into_string();
        assert!(!viewer.contains("/ack\""), "{viewer}");
        assert!(viewer.contains("Nobody is on call."));
    }
}
