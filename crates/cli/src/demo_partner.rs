//! The demo's partner: the local stack's partner API double
//! (`tilewave-partner-double`, started by `tilewave dev up`) playing the
//! partner's side of a credential rotation (docs/domain.md, "Secrets that
//! exist"): it issues a new credential (its admin API answers the password
//! once; the demo pipes it into SubmitCredential and shows only its
//! fingerprint), the platform rotates it in over every region, and after
//! the promotion the partner removes the old one. Its summary counts every
//! call the regions made and how many were refused (none, when a rotation
//! keeps a working credential at every instant).

use std::time::Duration;

use serde::Deserialize;
use tilewave_clients::egress::{ClientOptions, EgressPolicy, LoopbackResolver, http_client};
use tilewave_proto::credentials::v1::{
    ConfirmOldRetiredRequest, CredentialKind, Rotation, StartRotationRequest, SubmitCredentialRequest,
};
use tilewave_secrets::Secret;

use crate::client::Ctx;
use crate::creds::KindArg;
use crate::error::{CliError, rpc};
use crate::rollout::status::Mode;

/// The user name the partner issues credentials for.
pub const DEMO_USER: &str = "tilewave";

/// A partner config document with its `base_url` replaced by `url` (the
/// demo's tile calls the local partner double, not the fixture's host).
pub fn with_base_url(doc: &str, url: &str) -> Result<String, CliError> {
    let mut value: serde_json::Value = serde_json::from_str(doc)
        .map_err(|e| CliError::usage(format!("the demo tile's partner config is not JSON: {e}")))?;
    let obj = value
        .as_object_mut()
        .ok_or_else(|| CliError::usage("the demo tile's partner config is not a JSON object"))?;
    obj.insert("base_url".into(), serde_json::Value::String(url.to_owned()));
    serde_json::to_string_pretty(&value).map_err(|e| CliError::usage(format!("the demo tile: {e}")))
}

/// What the partner double counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Summary {
    /// Partner API calls (health probes and verifications).
    pub requests: u64,
    /// Calls refused with 401.
    pub auth_failures: u64,
}

#[derive(Deserialize)]
struct Issued {
    id: u64,
    user: String,
    password: String,
}

/// The partner double's admin API.
pub struct Partner {
    base: String,
    client: reqwest::Client,
}

impl Partner {
    /// The double at `base` (`http://localhost:<port>`); loopback only.
    pub fn new(base: &str) -> anyhow::Result<Self> {
        let client = http_client(
            &LoopbackResolver::new(EgressPolicy::default()),
            &ClientOptions {
                connect_timeout: Duration::from_secs(2),
                timeout: Duration::from_secs(10),
                ca_pem: None,
                user_agent: "tilewave-demo".into(),
            },
        )?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            client,
        })
    }

    async fn call(&self, method: reqwest::Method, path: &str) -> anyhow::Result<reqwest::Response> {
        let url = format!("{}/_double/{path}", self.base);
        let resp = self.client.request(method, &url).send().await.map_err(|e| {
            anyhow::anyhow!(
                "the partner double at {}: {}",
                self.base,
                tilewave_clients::egress::describe(e)
            )
        })?;
        anyhow::ensure!(
            resp.status().is_success(),
            "the partner double at {} answered {} to {path}",
            self.base,
            resp.status()
        );
        Ok(resp)
    }

    /// The partner issues a new credential: its id at the partner and the
    /// `user:password` secret.
    pub async fn issue(&self) -> anyhow::Result<(u64, Secret)> {
        let body = self
            .call(reqwest::Method::POST, &format!("credentials?user={DEMO_USER}"))
            .await?
            .bytes()
            .await?;
        let issued: Issued = serde_json::from_slice(&body)
            .map_err(|e| anyhow::anyhow!("the partner double's answer to an issue: {e}"))?;
        let secret = Secret::from_text(&format!("{}:{}", issued.user, issued.password))
            .map_err(|e| anyhow::anyhow!("the partner double issued an unusable credential: {e}"))?;
        Ok((issued.id, secret))
    }

    /// The partner stops accepting credential `id`.
    pub async fn remove(&self, id: u64) -> anyhow::Result<()> {
        self.call(reqwest::Method::DELETE, &format!("credentials/{id}"))
            .await
            .map(|_| ())
    }

    /// What it counted so far.
    pub async fn summary(&self) -> anyhow::Result<Summary> {
        let body = self.call(reqwest::Method::GET, "summary").await?.bytes().await?;
        serde_json::from_slice(&body).map_err(|e| anyhow::anyhow!("the partner double's summary: {e}"))
    }
}

/// Hands `secret` in for `tile` (SubmitCredential; only its fingerprint
/// comes back) and starts a rotation to it over every region of the tile;
/// the fingerprint and the rotation id.
pub async fn submit_and_start(ctx: &Ctx, tile: &str, secret: &Secret) -> anyhow::Result<(String, String)> {
    let mut creds = ctx.credentials()?;
    let submitted = rpc(
        "SubmitCredential",
        creds
            .submit_credential(ctx.request(SubmitCredentialRequest {
                tile_id: tile.to_owned(),
                kind: CredentialKind::PartnerBasicAuth as i32,
                username: String::new(),
                plaintext: secret.expose().to_owned(),
                request_id: String::new(),
                generate: false,
            })?)
            .await,
    )?;
    let fingerprint = submitted.credential.map(|c| c.fingerprint).unwrap_or_default();
    let started = rpc(
        "StartRotation",
        creds
            .start_rotation(ctx.request(StartRotationRequest {
                tile_id: tile.to_owned(),
                kind: CredentialKind::PartnerBasicAuth as i32,
                ..Default::default()
            })?)
            .await,
    )?
    .rotation
    .ok_or_else(|| anyhow::anyhow!("StartRotation: no rotation"))?;
    Ok((fingerprint, started.id))
}

/// [`submit_and_start`], then follows the rotation until it is promoted
/// (or ends otherwise, which is an error saying where it stopped).
pub async fn submit_and_rotate(
    ctx: &Ctx,
    tile: &str,
    secret: &Secret,
    mode: Mode,
) -> anyhow::Result<(String, Rotation)> {
    let (fingerprint, id) = submit_and_start(ctx, tile, secret).await?;
    let end = crate::creds::status::follow(ctx, &id, KindArg::PartnerBasicAuth, mode).await?;
    crate::creds::status::outcome(&end)?;
    Ok((fingerprint, end))
}

/// The partner confirms it removed the old credential of a promoted
/// rotation (ConfirmOldRetired): PREVIOUS is retired everywhere. The
/// rotation is read afresh for its etag, and read again when the driver
/// changed it meanwhile (it records telling the partner after promoting).
pub async fn confirm_retired(ctx: &Ctx, r: &Rotation) -> anyhow::Result<()> {
    const ATTEMPTS: u32 = 5;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let fresh = crate::creds::resolve(ctx, &r.id, KindArg::PartnerBasicAuth).await?;
        let answer = ctx
            .credentials()?
            .confirm_old_retired(ctx.request(ConfirmOldRetiredRequest {
                rotation_id: fresh.id.clone(),
                etag: fresh.etag,
                note: "the partner removed the old credential (demo)".into(),
                ..Default::default()
            })?)
            .await;
        match answer {
            Err(status) if status.code() == tonic::Code::Aborted && attempt < ATTEMPTS => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => {
                rpc("ConfirmOldRetired", other)?;
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_url_is_replaced_and_nothing_else() {
        let doc = r#"{"name":"x","base_url":"https://api.example","endpoints":{"a":1}}"#;
        let out = with_base_url(doc, "http://localhost:7500").unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["base_url"], "http://localhost:7500");
        assert_eq!(v["name"], "x");
        assert_eq!(v["endpoints"]["a"], 1);
        for bad in ["not json", "[1,2]"] {
            let e = with_base_url(bad, "http://localhost:1").unwrap_err().to_string();
            assert!(e.contains("demo tile"), "{e}");
        }
    }
}
