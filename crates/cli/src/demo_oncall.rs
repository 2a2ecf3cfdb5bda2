//! The demo's on-call part (issue 16): an injected failure pages a local
//! webhook and is acknowledged from the CLI.
//!
//! Before GA is scheduled ([`setup`]: the GA scheduler's pre-flight wants
//! an incident of the launch to page someone) the demo starts a webhook
//! receiver of its own on loopback (`tilewave_testkit::WebhookReceiver`,
//! which checks each page's signature with the secret the demo gave the
//! policy) and sets the `default` escalation policy to page it (level 1
//! `demo-primary`, then after a day `demo-secondary`). After the launch
//! ([`page_and_ack`]) it injects a failure: the partner revokes a
//! credential it has just issued, so the rotation to it fails verification
//! in the first wave. The rotation's CREDENTIAL_FAILED event becomes an
//! incident (the credential-failure SOP), level 1 pages the receiver, and
//! the demo acknowledges it as `tilewave incident ack` does: the ladder
//! stops and the second level is never paged. CURRENT stays untouched.
//!
//! The receiver lives as long as the demo: afterwards the policy still
//! names it, and later pages fail delivery until `tilewave policy set`
//! points it elsewhere.

use std::collections::HashMap;
use std::time::Duration;

use tilewave_proto::common::v1::Severity;
use tilewave_proto::escalation::v1::{
    AcknowledgeRequest, GetPolicyRequest, Level, Policy, SetPolicyRequest, Target,
};
use tilewave_testkit::WebhookReceiver;

use crate::client::{Ctx, out};
use crate::creds::KindArg;
use crate::demo_partner::{Partner, submit_and_start};
use crate::error::{CliError, rpc};
use crate::rollout::status::Mode;

/// The policy the demo sets.
pub const POLICY: &str = "default";
/// How long each level waits for an acknowledgement (domain time).
const LEVEL_DELAY_SECS: i64 = 24 * 3600;
/// How long the demo waits for the page (real time).
const PAGE_WAIT: Duration = Duration::from_secs(90);

/// The policy: every severity, the receiver's `/primary` then, a day
/// later, `/secondary`; no repeat.
pub fn demo_policy(receiver_base: &str) -> Policy {
    let level = |name: &str, path: &str| Level {
        targets: vec![Target {
            kind: "webhook".into(),
            name: name.into(),
            url: format!("{receiver_base}{path}"),
        }],
        delay: Some(prost_types::Duration {
            seconds: LEVEL_DELAY_SECS,
            nanos: 0,
        }),
    };
    Policy {
        name: POLICY.into(),
        severities: [Severity::Sev1, Severity::Sev2, Severity::Sev3, Severity::Sev4]
            .iter()
            .map(|s| *s as i32)
            .collect(),
        levels: vec![
            level("demo-primary", "/primary"),
            level("demo-secondary", "/secondary"),
        ],
        repeat: 0,
        ..Policy::default()
    }
}

/// A string field of a page's JSON body.
fn field<'a>(body: &'a serde_json::Value, name: &str) -> &'a str {
    body.get(name).and_then(serde_json::Value::as_str).unwrap_or("?")
}

/// The demo's on-call set-up: its webhook receiver, paged by the
/// `default` policy. Set before GA is scheduled: the GA scheduler's
/// pre-flight wants an incident of the launch to page someone.
pub struct OnCall {
    receiver: WebhookReceiver,
}

/// Starts the receiver and sets the `default` policy to page it.
pub async fn setup(ctx: &Ctx) -> anyhow::Result<OnCall> {
    let step = |s: &str| out(&format!("==> {s}\n"));
    let receiver = WebhookReceiver::start().await?;
    let (primary, secondary) = (
        tilewave_secrets::webhook::generate_secret()?,
        tilewave_secrets::webhook::generate_secret()?,
    );
    receiver.set_secret("/primary", primary.clone());
    receiver.set_secret("/secondary", secondary.clone());
    let mut esc = ctx.escalation()?;
    let etag = match esc
        .get_policy(ctx.request(GetPolicyRequest { name: POLICY.into() })?)
        .await
    {
        Ok(r) => r.into_inner().policy.map_or(0, |p| p.etag),
        Err(s) if s.code() == tonic::Code::NotFound => 0,
        Err(status) => {
            return Err(CliError::Rpc {
                rpc: "GetPolicy",
                status,
            }
            .into());
        }
    };
    let secrets = HashMap::from([
        ("demo-primary".to_owned(), primary.expose().to_owned()),
        ("demo-secondary".to_owned(), secondary.expose().to_owned()),
    ]);
    rpc(
        "SetPolicy",
        esc.set_policy(ctx.request(SetPolicyRequest {
            policy: Some(demo_policy(&receiver.base_url())),
            etag,
            signing_secrets: secrets,
        })?)
        .await,
    )?;
    step(&format!(
        "on-call: the `{POLICY}` escalation policy pages a local webhook ({}/primary; a day later /secondary), each page signed (tilewave policy get {POLICY})",
        receiver.base_url()
    ))?;
    Ok(OnCall { receiver })
}

/// Injects the failure, waits for its page and acknowledges it (see the
/// module docs).
pub async fn page_and_ack(
    ctx: &Ctx,
    tile: &str,
    partner: &Partner,
    oncall: &OnCall,
    mode: Mode,
) -> anyhow::Result<()> {
    let step = |s: &str| out(&format!("==> {s}\n"));
    let receiver = &oncall.receiver;

    // The injected failure: a credential the partner revoked at once.
    let (issued, bad) = partner.issue().await?;
    partner.remove(issued).await?;
    let (fp, id) = submit_and_start(ctx, tile, &bad).await?;
    drop(bad);
    step(&format!(
        "injected failure: the partner revokes credential {fp} right after issuing it; rotating to it anyway (rotation {id})"
    ))?;
    let end = crate::creds::status::follow(ctx, &id, KindArg::PartnerBasicAuth, mode).await?;
    step(&format!(
        "rotation {id} {} in {}: CURRENT untouched everywhere, CREDENTIAL_FAILED raised",
        crate::creds::render::state_name(end.state),
        if end.failed_region.is_empty() {
            "?"
        } else {
            end.failed_region.as_str()
        }
    ))?;

    let pages = receiver.wait_for_deliveries(1, PAGE_WAIT).await.map_err(|e| {
        anyhow::anyhow!("no page reached the demo's webhook: {e:#}; `tilewave incident list` shows whether an incident opened")
    })?;
    let page = pages
        .first()
        .ok_or_else(|| anyhow::anyhow!("the webhook receiver lost the page"))?;
    let incident = field(&page.body, "incident").to_owned();
    step(&format!(
        "paged {} ({}, signature {}): {} {} on {}: {}",
        page.path,
        page.idempotency_key.as_deref().unwrap_or("no key"),
        if page.signature.verified() {
            "verified"
        } else {
            "NOT verified"
        },
        field(&page.body, "severity"),
        incident,
        field(&page.body, "tile"),
        field(&page.body, "title"),
    ))?;
    let acked = rpc(
        "Acknowledge",
        ctx.escalation()?
            .acknowledge(ctx.request(AcknowledgeRequest {
                id: incident.clone(),
                etag: 0,
            })?)
            .await,
    )?;
    step(&format!(
        "acknowledged from the CLI (tilewave incident ack {incident}): the ladder stopped, {} undelivered page(s) cancelled; `tilewave incident show {incident}` has the SOP's steps",
        acked.cancelled
    ))?;
    let unexpected: Vec<String> = receiver
        .deliveries()
        .iter()
        .filter(|d| d.path != "/primary")
        .map(|d| d.path.clone())
        .collect();
    if !unexpected.is_empty() || !page.signature.verified() {
        return Err(CliError::Conflict(format!(
            "the on-call demo saw a page it should not have ({unexpected:?}) or an unverified signature"
        ))
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_policy_validates_as_the_service_would() {
        let p = demo_policy("http://127.0.0.1:9");
        assert_eq!(p.levels.len(), 2);
        assert_eq!(p.levels[0].targets[0].url, "http://127.0.0.1:9/primary");
        assert_eq!(p.levels[1].targets[0].name, "demo-secondary");
        assert!(
            p.levels
                .iter()
                .all(|l| l.delay.as_ref().is_some_and(|d| d.seconds > 0))
        );
        assert_eq!(p.severities.len(), 4);
    }
}
