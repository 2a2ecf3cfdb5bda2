use std::time::Duration;

use tilewave_proto::common::v1::{Event, EventKind};
use tilewave_proto::credentials::v1::*;
use tilewave_testkit::ServiceProcess;
use tonic::Code;

use crate::rotation::until_rotation;
use crate::*;

const SECRET: &str = "platform:correct-horse-battery-staple-17";
const WAIT: Duration = Duration::from_secs(60);

fn submit(tile: &str, plaintext: &str) -> SubmitCredentialRequest {
    SubmitCredentialRequest {
        tile_id: tile.into(),
        kind: CredentialKind::PartnerBasicAuth as i32,
        plaintext: plaintext.into(),
        ..Default::default()
    }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn submitted_credentials_are_encrypted_at_rest_and_shown_only_by_fingerprint() -> anyhow::Result<()> {
    let (text, _) = keyring_text(&["k1"])?;
    let stack = Stack::start(&text).await?;
    stack.tile("riverflow").await?;
    let mut c = stack.client().await?;

    let v1 = c
        .submit_credential(submit("riverflow", SECRET))
        .await?
        .into_inner()
        .credential
        .context("credential")?;
    assert_eq!(v1.version, 1);
    assert_eq!(v1.username, "platform");
    assert_eq!(v1.stage, CredentialStage::Pending as i32);
    assert_eq!(v1.kek_id, "k1");
    assert!(v1.fingerprint.contains("..."), "{}", v1.fingerprint);

    // The same secret again: refused, naming the version that holds it.
    let before = stack.dump().await?;
    let e = c
        .submit_credential(submit("riverflow", SECRET))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(!e.message().contains("correct-horse"), "{}", e.message());
    // Bad input: a clear error naming the field, never the secret, nothing
    // changed.
    let cases: Vec<(SubmitCredentialRequest, Code, &str)> = vec![
        (submit("riverflow", ""), Code::InvalidArgument, "plaintext"),
        (
            submit("riverflow", "no-colon-here"),
            Code::InvalidArgument,
            "plaintext",
        ),
        (
            submit("riverflow", "platform:bad\nline"),
            Code::InvalidArgument,
            "plaintext",
        ),
        (
            submit("riverflow", &format!("platform:{}", "x".repeat(5000))),
            Code::InvalidArgument,
            "plaintext",
        ),
        (
            SubmitCredentialRequest {
                kind: CredentialKind::OauthM2mSecret as i32,
                ..submit("riverflow", SECRET)
            },
            Code::InvalidArgument,
            "kind",
        ),
        (submit("no-such-tile", SECRET), Code::NotFound, "no-such-tile"),
        (
            SubmitCredentialRequest {
                generate: true,
                ..submit("riverflow", SECRET)
            },
            Code::InvalidArgument,
            "plaintext",
        ),
    ];
    for (req, code, names) in cases {
        let e = c.submit_credential(req).await.unwrap_err();
        assert_eq!(e.code(), code, "{e:?}");
        assert!(e.message().contains(names), "{}", e.message());
        assert!(
            !e.message().contains("correct-horse") && !e.message().contains("bad\nline"),
            "{}",
            e.message()
        );
    }
    assert_eq!(stack.dump().await?, before, "refusals change nothing");

    // A generated one replaces the unrotated pending version.
    let v2 = c
        .submit_credential(SubmitCredentialRequest {
            tile_id: "riverflow".into(),
            username: "platform".into(),
            generate: true,
            ..Default::default()
        })
        .await?
        .into_inner()
        .credential
        .context("credential")?;
    assert_eq!((v2.version, v2.generated), (2, true));
    let listed = c
        .list_credentials(ListCredentialsRequest {
            tile_id: "riverflow".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .credentials;
    let stages: Vec<(i64, i32)> = listed.iter().map(|c| (c.version, c.stage)).collect();
    assert_eq!(
        stages,
        [
            (1, CredentialStage::Retired as i32),
            (2, CredentialStage::Pending as i32)
        ]
    );

    // Nowhere in etcd in plain text, nor in the service's log.
    let dump = stack.dump().await?;
    assert!(dump.keys().any(|k| k.contains("/secrets/")), "{:?}", dump.keys());
    for (k, v) in &dump {
        assert!(
            !contains(v, "correct-horse-battery-staple"),
            "{k} holds the secret"
        );
    }
    let log = std::fs::read(stack.credentials.log_path())?;
    assert!(
        !contains(&log, "correct-horse-battery-staple"),
        "the log holds the secret"
    );
    Ok(())
}

#[tokio::test]
async fn an_unreachable_region_is_retried_after_a_doubling_wait_then_the_rotation_fails() -> anyhow::Result<()>
{
    let (text, _) = keyring_text(&["k1"])?;
    let t0: jiff::Timestamp = "2026-12-01T09:00:00Z".parse()?;
    let stack = Stack::start_full(&text, &[], Some(t0)).await?;
    stack.tile("riverflow").await?;
    let mut c = stack.client().await?;
    c.submit_credential(submit("riverflow", SECRET)).await?;
    let negative = c
        .start_rotation(StartRotationRequest {
            tile_id: "riverflow".into(),
            regions: vec!["aws:us-east-1".into()],
            retry_delay: Some(prost_types::Duration {
                seconds: -1,
                nanos: 0,
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(negative.code(), Code::InvalidArgument, "{negative:?}");
    assert!(
        negative.message().contains("retry_delay"),
        "{}",
        negative.message()
    );
    // aws:us-east-1 has no agent: every attempt fails at once.
    let r = c
        .start_rotation(StartRotationRequest {
            tile_id: "riverflow".into(),
            regions: vec!["aws:us-east-1".into()],
            retry_delay: Some(prost_types::Duration {
                seconds: 10,
                nanos: 0,
            }),
            ..Default::default()
        })
        .await?
        .into_inner()
        .rotation
        .context("rotation")?;
    assert_eq!(r.retry_delay.as_ref().map(|d| d.seconds), Some(10));
    let region_after = async |failures: i32| {
        let what = format!("{failures} failed attempts");
        until_rotation(&c, &r.id, &what, WAIT, |got| {
            let region = got.regions.first()?.clone();
            (region.failures == failures).then(|| (got.clone(), region))
        })
        .await
    };
    let at = |secs: i64| Some(t0.as_second() + secs);
    let (got, region) = region_after(1).await?;
    assert_eq!(got.state, RotationState::Distributing as i32, "{got:?}");
    assert_eq!(region.state, RegionRotationState::Pending as i32, "{region:?}");
    assert_eq!(region.retry_at.as_ref().map(|t| t.seconds), at(10), "{region:?}");
    assert!(!region.last_error.is_empty(), "{region:?}");

    // The clock stands still, so the region waits (that it is not issued
    // before its time is the core's table test). At its time: the second
    // attempt, then a wait twice as long.
    let store = stack.etcd.store(PREFIX).await?;
    let clock = tilewave_store::VirtualClock::attach(&store).await?;
    let actor = tilewave_store::Actor::new("test");
    clock.advance(jiff::SignedDuration::from_secs(10), &actor).await?;
    let (_, region) = region_after(2).await?;
    assert_eq!(region.retry_at.as_ref().map(|t| t.seconds), at(30), "{region:?}");
    clock.advance(jiff::SignedDuration::from_secs(20), &actor).await?;
    let failed = until_rotation(
        &c,
        &r.id,
        "the rotation fails on its third attempt",
        WAIT,
        |got| (got.state == RotationState::Failed as i32).then(|| got.clone()),
    )
    .await?;
    assert_eq!(failed.failed_region, "aws:us-east-1");
    assert!(
        failed.reason.contains("after 3 of 3 attempts"),
        "{}",
        failed.reason
    );
    Ok(())
}

#[tokio::test]
async fn a_rotation_that_cannot_reach_a_region_fails_with_current_untouched() -> anyhow::Result<()> {
    let (text, _) = keyring_text(&["k1"])?;
    let stack = Stack::start(&text).await?;
    stack.tile("riverflow").await?;
    let mut c = stack.client().await?;

    // Nothing to rotate to yet.
    let e = c
        .start_rotation(StartRotationRequest {
            tile_id: "riverflow".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(
        e.message().contains("tilewave creds submit riverflow"),
        "{}",
        e.message()
    );

    c.submit_credential(submit("riverflow", SECRET)).await?;
    let bad = c
        .start_rotation(StartRotationRequest {
            tile_id: "riverflow".into(),
            regions: vec!["aws:nowhere-1".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument, "{bad:?}");
    assert!(bad.message().contains("regions[0]"), "{}", bad.message());

    // One region whose agent does not exist: every attempt fails.
    let r = c
        .start_rotation(StartRotationRequest {
            tile_id: "riverflow".into(),
            regions: vec!["aws:us-east-1".into()],
            ..Default::default()
        })
        .await?
        .into_inner()
        .rotation
        .context("rotation")?;
    assert_eq!(r.state, RotationState::Distributing as i32);
    assert_eq!((r.regions_total, r.wave_count), (1, 1));

    // A second start while it runs says what holds the tile.
    let e = c
        .start_rotation(StartRotationRequest {
            tile_id: "riverflow".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains(&r.id), "{}", e.message());

    let failed = until_rotation(&c, &r.id, "the rotation fails", WAIT, |got| {
        (got.state == RotationState::Failed as i32).then(|| got.clone())
    })
    .await?;
    assert_eq!(failed.failed_region, "aws:us-east-1");
    assert!(failed.reason.contains("aws:us-east-1"), "{}", failed.reason);
    // CURRENT untouched: there was none, and the version is still pending.
    let listed = c
        .list_credentials(ListCredentialsRequest {
            tile_id: "riverflow".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .credentials;
    assert!(
        listed.iter().all(|c| c.stage != CredentialStage::Current as i32),
        "{listed:?}"
    );
    // One CREDENTIAL_FAILED event.
    let events: Vec<Event> = stack
        .events()
        .await?
        .into_iter()
        .filter(|e| e.kind == EventKind::CredentialFailed as i32)
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].region, "aws:us-east-1");
    Ok(())
}

#[tokio::test]
async fn a_new_primary_kek_and_rewrap_keep_every_secret_readable() -> anyhow::Result<()> {
    let (text1, keys1) = keyring_text(&["k1"])?;
    let mut stack = Stack::start(&text1).await?;
    stack.tile("riverflow").await?;
    let mut c = stack.client().await?;
    c.submit_credential(submit("riverflow", SECRET)).await?;

    // A new primary beside the old key.
    let k2 = tilewave_secrets::Kek::generate("k2")?;
    let both = format!("{}\n{}", k2.to_text().as_str(), keys1[0].to_text().as_str());
    let kek = stack.dir.path().join("kek");
    std::fs::write(&kek, &both)?;
    stack.credentials.terminate(Duration::from_secs(5)).await?;
    stack.credentials = ServiceProcess::start(
        credentials_spec(&stack.etcd, "credentials-2", &kek),
        stack.dir.path(),
    )
    .await?;
    let mut c = stack.client().await?;
    let dry = c.rewrap(RewrapRequest { dry_run: true }).await?.into_inner();
    assert_eq!(
        (dry.primary_kek_id.as_str(), dry.rewrapped, dry.already_primary),
        ("k2", 1, 0)
    );
    let done = c.rewrap(RewrapRequest { dry_run: false }).await?.into_inner();
    assert_eq!((done.rewrapped, done.already_primary), (1, 0));
    let again = c.rewrap(RewrapRequest { dry_run: false }).await?.into_inner();
    assert_eq!((again.rewrapped, again.already_primary), (0, 1));
    let listed = c
        .list_credentials(ListCredentialsRequest {
            tile_id: "riverflow".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .credentials;
    assert_eq!(
        listed[0].kek_id, "k2",
        "the version shows the KEK it is wrapped under now"
    );

    // The stored secret now opens with k2 alone.
    let only_k2 = tilewave_secrets::Keyring::new(k2);
    let key = keys()?.credential_secret("riverflow", "partner-basic-auth", 1);
    let dump = stack.etcd.dump(PREFIX).await?;
    let (raw, _) = dump.get(&key).context("the stored secret")?;
    let stored = <StoredSecret as prost::Message>::decode(raw.as_slice())?;
    let sealed = tilewave_credentials::convert::sealed(&stored.encrypted.context("encrypted")?);
    assert_eq!(sealed.kek_id, "k2");
    let opened = only_k2.open(&sealed, b"riverflow/partner-basic-auth/1")?;
    assert_eq!(opened.expose(), "correct-horse-battery-staple-17");
    Ok(())
}

#[tokio::test]
async fn without_a_kek_the_service_does_not_start_and_says_what_to_give() -> anyhow::Result<()> {
    let dir = TestDir::new("credentials-no-kek")?;
    let etcd = EtcdCluster::start(1).await?;
    let spec = credentials_spec(&etcd, "credentials-no-kek", &dir.path().join("missing-kek"));
    let Err(err) = ServiceProcess::start(spec, dir.path()).await else {
        panic!("a credentials service without its KEK must not start");
    };
    let text = format!("{err:#}");
    assert!(text.contains("--kek-file"), "{text}");
    Ok(())
}
