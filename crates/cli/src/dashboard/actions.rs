//! The buttons: pause, resume and approve a roll-out, acknowledge an
//! incident. Each roll-out button leads to a confirmation page (which works
//! without JavaScript) whose form POSTs the action; the POST needs the
//! token cookie, the same origin and the form's CSRF value (`token`). The
//! action is the gRPC call the matching command makes (built by the same
//! request functions, the roll-out read first for its etag), with the
//! user's certificate: the service's role check decides, and a refusal is
//! shown as a 403 page with the service's message.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use super::Shared;
use super::layout::{Nav, error_page, page, respond};
use super::rollout::{Action, callable};
use crate::error::rpc;
use crate::oncall::incident::{IdArgs, ack_request};
use crate::rollout::steer::{
    ApproveArgs, Current, PauseArgs, ResumeArgs, approve_request, pause_request, resume_request,
};

/// A POSTed form.
#[derive(Debug, Deserialize)]
pub struct ActionForm {
    /// The page's CSRF value.
    #[serde(default)]
    pub csrf: String,
    /// Why (pause) or a note (approve); optional.
    #[serde(default)]
    pub reason: String,
}

/// A plain refusal.
fn refused(status: StatusCode, text: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{text}\n"),
    )
        .into_response()
}

/// Back to `to` after a successful action.
fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response()
}

/// `GET /rollouts/{id}/confirm/{action}`: the confirmation page.
pub async fn confirm(State(app): State<Shared>, Path((id, action)): Path<(String, String)>) -> Response {
    let Some(action) = Action::parse(&action) else {
        return refused(
            StatusCode::NOT_FOUND,
            "unknown action: use pause, resume or approve",
        );
    };
    let result = async {
        let r = crate::rollout::resolve(&app.ctx, &id).await?;
        let may = callable(&app).await.contains(action.rpc());
        let what = match action {
            Action::Pause => "No new applies start; applies under way finish and bakes continue.".to_owned(),
            Action::Resume => "Applies start again where the roll-out stopped.".to_owned(),
            Action::Approve => format!(
                "Releases the hold after wave {}: the next wave starts.",
                r.held_after_wave
            ),
        };
        anyhow::Ok(page(
            &format!("{} {}?", action.label(), r.id),
            Nav::Rollout,
            app.token.csrf(),
            None,
            html! {
                section.confirm {
                    h1 { (action.label()) " " (r.id) "?" }
                    p { (what) }
                    @if !may { p.at-risk { "Your certificate's role may not do this: the service will refuse it." } }
                    form method="post" action=(format!("/rollouts/{}/{}", r.id, action.name())) {
                        input type="hidden" name="csrf" value=(app.token.csrf());
                        label { "Reason or note (kept in the audit record) " input type="text" name="reason" maxlength="500"; }
                        div.actions {
                            button type="submit" class=(format!("button {}", action.name())) { "Yes, " (action.label().to_lowercase()) }
                            a.button.cancel href=(format!("/rollouts/{}", r.id)) { "Cancel" }
                        }
                    }
                }
            },
        ))
    };
    respond(Box::pin(result).await, app.token.csrf())
}

/// `POST /rollouts/{id}/{action}`.
pub async fn rollout_action(
    State(app): State<Shared>,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Response {
    if !app.token.is_csrf(&form.csrf) {
        return refused(
            StatusCode::FORBIDDEN,
            "refused: the form's csrf value is missing or wrong (reload the page)",
        );
    }
    let Some(action) = Action::parse(&action) else {
        return refused(
            StatusCode::NOT_FOUND,
            "unknown action: use pause, resume or approve",
        );
    };
    let reason = (!form.reason.trim().is_empty()).then(|| form.reason.trim().to_owned());
    let result = async {
        let r = crate::rollout::resolve(&app.ctx, &id).await?;
        let c = Current::from(&r);
        let ctx = &app.ctx;
        let mut client = ctx.rollouts()?;
        match action {
            Action::Pause => {
                let a = PauseArgs {
                    target: id.clone(),
                    reason,
                };
                rpc(
                    "PauseRollout",
                    client.pause_rollout(ctx.request(pause_request(&a, &c))?).await,
                )?;
            }
            Action::Resume => {
                let a = ResumeArgs {
                    target: id.clone(),
                    bake: None,
                    concurrency: None,
                    retry_failed: false,
                    dry_run: false,
                };
                rpc(
                    "ResumeRollout",
                    client.resume_rollout(ctx.request(resume_request(&a, &c))?).await,
                )?;
            }
            Action::Approve => {
                let a = ApproveArgs {
                    target: id.clone(),
                    wave: r.held_after_wave,
                    note: reason,
                };
                rpc(
                    "Approve",
                    client.approve(ctx.request(approve_request(&a, &c))?).await,
                )?;
            }
        }
        anyhow::Ok(r.id)
    };
    match Box::pin(result).await {
        Ok(rid) => see_other(&format!("/rollouts/{rid}")),
        Err(e) => error_page(&e, app.token.csrf()),
    }
}

/// `POST /incidents/{id}/ack`.
pub async fn acknowledge(
    State(app): State<Shared>,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    if !app.token.is_csrf(&form.csrf) {
        return refused(
            StatusCode::FORBIDDEN,
            "refused: the form's csrf value is missing or wrong (reload the page)",
        );
    }
    let result = async {
        let req = ack_request(&IdArgs { id: id.clone() });
        rpc(
            "Acknowledge",
            app.ctx.escalation()?.acknowledge(app.ctx.request(req)?).await,
        )?;
        anyhow::Ok(())
    };
    match Box::pin(result).await {
        Ok(()) => see_other("/oncall"),
        Err(e) => error_page(&e, app.token.csrf()),
    }
}
