//! A new primary key-encryption key, then Rewrap: every stored signing
//! secret moves under it, opens with it alone, and the old key can go.

use std::time::Duration;

use tilewave_proto::credentials::v1::{RewrapRequest, StoredSecret};
use tilewave_testkit::ServiceProcess;
use tilewave_testkit::pki::ONCALL;
use tonic::Code;

use crate::*;

#[tokio::test]
async fn a_new_primary_kek_and_rewrap_move_every_signing_secret() -> anyhow::Result<()> {
    let mut stack = Stack::start(1).await?;
    sev1_policy(&stack, "sev1").await?;

    // k2 first, the stack's k1 kept after it.
    let kek = stack.dir.path().join("kek");
    let k1 = std::fs::read_to_string(&kek)?;
    let k2 = tilewave_secrets::Kek::generate("k2")?;
    std::fs::write(&kek, format!("{}\n{}", k2.to_text().as_str(), k1.trim()))?;
    let first = stack.replicas.first_mut().context("a replica")?;
    first.terminate(Duration::from_secs(5)).await?;
    *first = ServiceProcess::start(spec(&stack.etcd, "escalation-0", &kek), stack.dir.path()).await?;

    let denied = stack
        .client_of(0, ONCALL)
        .await?
        .rewrap(RewrapRequest { dry_run: true })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    let mut c = stack.client().await?;
    let dry = c.rewrap(RewrapRequest { dry_run: true }).await?.into_inner();
    assert_eq!(
        (dry.primary_kek_id.as_str(), dry.rewrapped, dry.already_primary),
        ("k2", 2, 0)
    );
    let done = c.rewrap(RewrapRequest { dry_run: false }).await?.into_inner();
    assert_eq!((done.rewrapped, done.already_primary), (2, 0));
    let again = c.rewrap(RewrapRequest { dry_run: false }).await?.into_inner();
    assert_eq!(
        (again.rewrapped, again.already_primary),
        (0, 2),
        "nothing moves twice"
    );

    // Each secret opens with k2 alone, and is the one the policy was given.
    let only_k2 = tilewave_secrets::Keyring::new(k2);
    let prefix = keys()?.escalation_secret("");
    let dump = stack.dump().await?;
    let mut targets = Vec::new();
    for (key, raw) in dump.iter().filter(|(k, _)| k.starts_with(&prefix)) {
        let target = key.strip_prefix(&prefix).context("under the prefix")?;
        let stored = <StoredSecret as prost::Message>::decode(raw.as_slice())?;
        let sealed = tilewave_escalation::model::sealed(&stored.encrypted.context("encrypted")?);
        assert_eq!(sealed.kek_id, "k2", "{target}");
        let opened = only_k2.open(&sealed, target.as_bytes())?;
        let name = target.strip_prefix("webhook/").context("a webhook target")?;
        assert_eq!(opened.expose(), secret_for(name), "{target}");
        targets.push(target.to_owned());
    }
    assert_eq!(targets, ["webhook/primary", "webhook/secondary"]);
    Ok(())
}
