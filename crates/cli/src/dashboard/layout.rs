//! The page shell (navigation, the "reconnecting" banner, the CSRF value
//! for the forms), helpers every page uses (times, durations, error pages)
//! and the two assets, compiled into the binary: no build step.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::{SignedDuration, Timestamp};
use maud::{DOCTYPE, Markup, html};
use tonic::Code;

use crate::error::CliError;
use crate::names::human_duration;

/// The style sheet.
const CSS: &str = include_str!("assets/dashboard.css");
/// The script: times in the viewer's zone, live updates, the banner.
const JS: &str = include_str!("assets/dashboard.js");

/// Serves the style sheet.
pub async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS).into_response()
}

/// Serves the script.
pub async fn js() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], JS).into_response()
}

/// Which page is shown, for the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    /// The launch calendar.
    Launches,
    /// A roll-out.
    Rollout,
    /// A tile.
    Tile,
    /// On-call.
    Oncall,
    /// Credentials.
    Credentials,
}

/// A whole page: `body` inside the shell. `events` is the URL of the
/// page's event stream, when it has one.
pub fn page(title: &str, nav: Nav, csrf: &str, events: Option<&str>, body: Markup) -> Markup {
    let link = |href: &str, label: &str, here: bool| {
        html! { a href=(href) class=[here.then_some("here")] { (label) } }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="csrf" content=(csrf);
                title { (title) " · tilewave" }
                link rel="stylesheet" href="/assets/dashboard.css";
                script src="/assets/dashboard.js" defer {}
            }
            body data-events=[events] {
                header.top {
                    span.brand { "tilewave" }
                    nav {
                        (link("/", "Launches", nav == Nav::Launches))
                        @if nav == Nav::Rollout { a.here { "Roll-out" } }
                        @if nav == Nav::Tile { a.here { "Tile" } }
                        (link("/oncall", "On-call", nav == Nav::Oncall))
                        (link("/credentials", "Credentials", nav == Nav::Credentials))
                    }
                }
                div #banner .banner hidden { "reconnecting… the figures below may be out of date" }
                main { (body) }
                footer { "Times in your time zone (UTC on hover); without JavaScript, in UTC. Refresh to update." }
            }
        }
    }
}

/// A moment: UTC text (the script rewrites it in the viewer's zone) with
/// UTC on hover.
pub fn time(t: Option<Timestamp>) -> Markup {
    match t {
        Some(t) => {
            let utc = t.strftime("%a %-d %b %H:%M UTC").to_string();
            html! { time datetime=(t.to_string()) title=(utc) { (utc) } }
        }
        None => html! { "-" },
    }
}

/// A slack: "4h 30m" or "late by 2h", with a class for its colour.
pub fn slack(d: Option<SignedDuration>) -> Markup {
    match d {
        Some(d) if d.is_negative() => html! { span.late { "late by " (human_duration(-d)) } },
        Some(d) if d < SignedDuration::from_hours(12) => html! { span.tight { (human_duration(d)) } },
        Some(d) => html! { span.ok { (human_duration(d)) } },
        None => html! { "-" },
    }
}

/// The HTTP status for a failed call: the service's refusal as 403, and so on.
pub fn status_of(e: &anyhow::Error) -> StatusCode {
    match e.downcast_ref::<CliError>() {
        Some(CliError::Rpc { status, .. }) => match status.code() {
            Code::PermissionDenied | Code::Unauthenticated => StatusCode::FORBIDDEN,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
            Code::FailedPrecondition | Code::Aborted | Code::AlreadyExists => StatusCode::CONFLICT,
            Code::Unavailable | Code::DeadlineExceeded => StatusCode::BAD_GATEWAY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        },
        Some(CliError::Usage(_)) => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An error page with the service's message.
pub fn error_page(e: &anyhow::Error, csrf: &str) -> Response {
    let status = status_of(e);
    let title = match status {
        StatusCode::FORBIDDEN => "Refused",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::CONFLICT => "Not possible now",
        StatusCode::BAD_GATEWAY => "A service does not answer",
        _ => "Error",
    };
    let body = html! {
        section.error {
            h1 { (title) }
            p.message { (format!("{e:#}")) }
            @if status == StatusCode::FORBIDDEN {
                p { "The service refused the call for your certificate's role (`tilewave auth whoami` shows what it may call)." }
            }
            p { a href="/" { "Back to the launches" } }
        }
    };
    (status, page(title, Nav::Launches, csrf, None, body)).into_response()
}

/// A page, or the error page.
pub fn respond(result: anyhow::Result<Markup>, csrf: &str) -> Response {
    match result {
        Ok(m) => m.into_response(),
        Err(e) => error_page(&e, csrf),
    }
}
