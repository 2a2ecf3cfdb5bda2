//! A roll-out's page: the summary (phase, ETA, slack, the at-risk banner
//! with its fixes, the trace id, the buttons the user's role may use), the
//! region grid and the Gantt chart. The summary, the grid's cells and the
//! chart are also what the live updates carry (`sse`).

use std::collections::BTreeSet;

use axum::extract::{Path, State};
use axum::response::Response;
use jiff::Timestamp;
use maud::{Markup, html};
use tilewave_core::regions::RegionCatalog;
use tilewave_proto::auth::v1::WhoAmIRequest;
use tilewave_proto::rollout::v1::{GetLaunchCalendarRequest, PauseCause, Rollout, RolloutState};

use super::layout::{Nav, page as shell, respond, slack, time};
use super::{Shared, gantt, grid};
use crate::endpoints::ROLLOUT;
use crate::error::rpc;
use crate::names::{from_proto_duration, from_proto_time};
use crate::rollout::render::{is_terminal, live_count, phase, problems, state_name, timing};
use crate::rollout::status::DomainNow;

/// The RPCs of the rollout service the user's certificate may call
/// (`RolloutService/PauseRollout`, ...), from WhoAmI; empty when it does
/// not answer, so that no button shows for calls that would be refused.
pub async fn callable(app: &Shared) -> BTreeSet<String> {
    let url = app.ctx.settings.url(ROLLOUT);
    let answer = async {
        let mut client = app.ctx.auth(&url)?;
        let req = app.ctx.request(WhoAmIRequest {})?;
        anyhow::Ok(rpc("WhoAmI", client.who_am_i(req).await)?)
    }
    .await;
    match answer {
        Ok(a) => a.rpcs.into_iter().map(|c| c.rpc).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "WhoAmI failed: no buttons");
            BTreeSet::new()
        }
    }
}

/// A step a person may take on a roll-out from the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// PauseRollout.
    Pause,
    /// ResumeRollout.
    Resume,
    /// Approve (the hold after a wave).
    Approve,
}

impl Action {
    /// Its name in URLs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Approve => "approve",
        }
    }

    /// The action a URL names.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pause, Self::Resume, Self::Approve]
            .into_iter()
            .find(|a| a.name() == s)
    }

    /// The RPC it calls, as WhoAmI names it.
    pub fn rpc(self) -> &'static str {
        match self {
            Self::Pause => "RolloutService/PauseRollout",
            Self::Resume => "RolloutService/ResumeRollout",
            Self::Approve => "RolloutService/Approve",
        }
    }

    /// The button's label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Pause => "Pause",
            Self::Resume => "Resume",
            Self::Approve => "Approve",
        }
    }
}

/// The actions the roll-out's state allows and the user may call.
pub fn actions(r: &Rollout, may: &BTreeSet<String>) -> Vec<Action> {
    let state = RolloutState::try_from(r.state).unwrap_or(RolloutState::Unspecified);
    let by_state: &[Action] = match state {
        RolloutState::Running | RolloutState::Pending => &[Action::Pause],
        RolloutState::Paused if r.pause_cause == PauseCause::Hold as i32 && r.held_after_wave > 0 => {
            &[Action::Approve, Action::Resume]
        }
        RolloutState::Paused => &[Action::Resume],
        _ => &[],
    };
    by_state
        .iter()
        .copied()
        .filter(|a| may.contains(a.rpc()))
        .collect()
}

/// The trace backend's link for a trace id.
pub fn trace_link(template: Option<&str>, trace_id: &str) -> Option<String> {
    let t = template?;
    (!trace_id.is_empty()).then(|| t.replace("{trace_id}", trace_id))
}

/// The summary block: what the live updates replace.
pub fn head(r: &Rollout, now: Option<Timestamp>, may: &BTreeSet<String>, trace_url: Option<&str>) -> Markup {
    let state = state_name(r.state).to_ascii_lowercase();
    let at_risk = r
        .at_risk_by
        .as_ref()
        .map(from_proto_duration)
        .filter(|d| d.is_positive());
    let eta = from_proto_time(r.eta.as_ref());
    let deadline = from_proto_time(r.deadline.as_ref());
    let slack_left = match (deadline, eta) {
        (Some(d), Some(e)) => Some(d.duration_since(e)),
        _ => None,
    };
    let fixes = r.plan.as_ref().map(problems).unwrap_or_default();
    html! {
        div #head {
            h1 { (r.tile_id) " " span.muted { "revision " (r.revision) " · " (r.id) } }
            p.phase { span class=(format!("badge rs-{state}")) { (state) } " " span #phase { (phase(r)) } }
            dl.facts {
                dt { "Live" } dd #live { (live_count(r)) " of " (r.steps.len()) " regions" }
                dt { "ETA" } dd { (time(eta)) }
                dt { "Deadline" } dd { (time(deadline)) }
                dt { "Slack" } dd #slack { (slack(slack_left)) }
                dt { "Timing" } dd { (timing(r, now)) }
                @if !r.trace_id.is_empty() {
                    dt { "Trace" }
                    dd {
                        @match trace_link(trace_url, &r.trace_id) {
                            Some(href) => { a href=(href) rel="noreferrer" { code { (r.trace_id) } } }
                            None => { code { (r.trace_id) } }
                        }
                    }
                }
            }
            @if let Some(by) = at_risk {
                div #at-risk .at-risk {
                    strong { "At risk: the ETA is " (crate::names::human_duration(by)) " past the deadline." }
                    @if fixes.is_empty() {
                        p { "No single change fits; see `tilewave rollout status " (r.id) "`." }
                    } @else {
                        pre { (fixes.join("\n")) }
                    }
                }
            }
            @if r.frozen { p.at-risk { "The global freeze holds new applies back." } }
            div.actions {
                @for a in actions(r, may) {
                    a class=(format!("button {}", a.name())) href=(format!("/rollouts/{}/confirm/{}", r.id, a.name())) { (a.label()) "…" }
                }
                @if is_terminal(r) { span.muted { "This roll-out has ended." } }
            }
        }
    }
}

/// The launch calendar's blackouts (every plan's global blackouts, so the
/// chart shades them); none when the calendar cannot be read.
pub async fn calendar_blackouts(app: &Shared) -> Vec<(gantt::Span, String)> {
    let read = async {
        let mut client = app.ctx.rollouts()?;
        let req = app.ctx.request(GetLaunchCalendarRequest { upcoming: 0 })?;
        anyhow::Ok(rpc("GetLaunchCalendar", client.get_launch_calendar(req).await)?)
    };
    match read.await {
        Ok(resp) => gantt::calendar_windows(&resp.calendar.map(|c| c.blackouts).unwrap_or_default()),
        Err(e) => {
            tracing::warn!(error = %e, "GetLaunchCalendar failed: no calendar blackouts in the chart");
            Vec::new()
        }
    }
}

/// What every rendering of a roll-out page needs besides the roll-out.
#[derive(Debug)]
pub struct Context<'a> {
    /// The RPCs the user may call.
    pub may: &'a BTreeSet<String>,
    /// The trace backend's URL template.
    pub trace_url: Option<&'a str>,
    /// Region time zones.
    pub catalog: &'a RegionCatalog,
    /// The calendar's blackout windows.
    pub calendar: &'a [(gantt::Span, String)],
}

/// The parts of the page the live updates replace, with the cells.
pub fn body(r: &Rollout, now: Option<Timestamp>, cx: &Context<'_>) -> Markup {
    let cells = grid::cells(r, cx.catalog);
    html! {
        (head(r, now, cx.may, cx.trace_url))
        section {
            h2 { "Regions " span.muted { "by cloud, in wave order" } }
            (grid::render(&cells))
        }
        section {
            h2 { "Planned against actual" }
            div #gantt-box { (gantt::svg(&gantt::chart(r, now, cx.calendar))) }
        }
    }
}

/// `GET /rollouts/{id}`: a roll-out by id, or a tile's running (or latest).
pub async fn page(State(app): State<Shared>, Path(id): Path<String>) -> Response {
    let result = async {
        let r = crate::rollout::resolve(&app.ctx, &id).await?;
        let now = DomainNow::read(&app.ctx).await.map(|c| c.now());
        let may = callable(&app).await;
        let events = format!("/rollouts/{}/events", r.id);
        let calendar = calendar_blackouts(&app).await;
        let catalog = RegionCatalog::builtin();
        let cx = Context {
            may: &may,
            trace_url: app.trace_url.as_deref(),
            catalog: &catalog,
            calendar: &calendar,
        };
        let content = body(&r, now, &cx);
        anyhow::Ok(shell(
            &format!("{} roll-out", r.tile_id),
            Nav::Rollout,
            app.token.csrf(),
            Some(&events),
            content,
        ))
    };
    respond(Box::pin(result).await, app.token.csrf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::render::tests::sample_rollout;

    fn may(rpcs: &[&str]) -> BTreeSet<String> {
        rpcs.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn buttons_follow_the_state_and_the_role() {
        let all = may(&[
            "RolloutService/PauseRollout",
            "RolloutService/ResumeRollout",
            "RolloutService/Approve",
        ]);
        let mut r = sample_rollout();
        assert_eq!(actions(&r, &all), [Action::Pause]);
        assert!(
            actions(&r, &may(&["RolloutService/GetRollout"])).is_empty(),
            "a viewer"
        );
        r.state = RolloutState::Paused as i32;
        assert_eq!(actions(&r, &all), [Action::Resume]);
        r.pause_cause = PauseCause::Hold as i32;
        r.held_after_wave = 1;
        assert_eq!(actions(&r, &all), [Action::Approve, Action::Resume]);
        r.state = RolloutState::Succeeded as i32;
        assert!(actions(&r, &all).is_empty());
        let html = head(&sample_rollout(), None, &BTreeSet::new(), None).into_string();
        assert!(!html.contains("confirm/pause"), "{html}");
        let html = head(&sample_rollout(), None, &all, None).into_string();
        assert!(html.contains("/rollouts/riverflow-r1/confirm/pause"), "{html}");
    }

    #[test]
    fn an_at_risk_rollout_shows_the_banner_with_its_fixes() {
        use tilewave_proto::rollout::v1::{PlanProblem, PlanProblemKind, PlanSuggestion, plan_suggestion};

        use crate::names::to_proto_duration;
        let mut r = sample_rollout();
        let html = head(&r, None, &BTreeSet::new(), None).into_string();
        assert!(!html.contains("At risk"), "{html}");
        r.at_risk_by = Some(to_proto_duration(jiff::SignedDuration::from_hours(2)));
        if let Some(p) = r.plan.as_mut() {
            p.problems = vec![PlanProblem {
                kind: PlanProblemKind::DeadlineMissed as i32,
                message: "the plan ends 2h after the deadline".into(),
                suggestions: vec![PlanSuggestion {
                    message: "bake 2h for the remaining waves would fit".into(),
                    change: Some(plan_suggestion::Change::Bake(to_proto_duration(
                        jiff::SignedDuration::from_hours(2),
                    ))),
                }],
                ..Default::default()
            }];
        }
        let html = head(&r, None, &BTreeSet::new(), Some("http://j/trace/{trace_id}")).into_string();
        assert!(html.contains("At risk: the ETA is 2h"), "{html}");
        assert!(
            html.contains("bake 2h for the remaining waves would fit (--bake 2h)"),
            "{html}"
        );
        assert!(
            html.contains("href=\"http://j/trace/4bf92f3577b34da6a3ce929d0e0e4736\""),
            "{html}"
        );
        assert!(html.contains("id=\"slack\""), "{html}");
    }

    #[test]
    fn an_update_carries_every_cell_the_summary_and_the_chart() {
        let r = sample_rollout();
        let catalog = RegionCatalog::builtin();
        let none = BTreeSet::new();
        let cx = Context {
            may: &none,
            trace_url: None,
            catalog: &catalog,
            calendar: &[],
        };
        let u = crate::dashboard::sse::update(&r, None, &cx);
        assert_eq!(u.cells.len(), r.steps.len());
        assert!(u.head.starts_with("<div id=\"head\">"), "{}", u.head);
        assert!(u.gantt.contains("<svg id=\"gantt\""), "{}", u.gantt);
        assert!(!u.finished);
        let json = serde_json::to_value(&u).unwrap();
        assert_eq!(json["cells"][0]["state"], u.cells[0].state.as_str());
    }

    #[test]
    fn the_trace_id_links_only_with_a_backend() {
        assert_eq!(trace_link(None, "abc"), None);
        assert_eq!(
            trace_link(Some("http://j:16686/trace/{trace_id}"), "abc").as_deref(),
            Some("http://j:16686/trace/abc")
        );
        assert_eq!(trace_link(Some("http://j/{trace_id}"), ""), None);
        for a in [Action::Pause, Action::Resume, Action::Approve] {
            assert_eq!(Action::parse(a.name()), Some(a));
        }
        assert_eq!(Action::parse("abort"), None);
    }
}
