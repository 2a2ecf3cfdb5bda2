//! Crash-resume: a replica told to crash (`--crash-at`, which exits at once
//! as kill -9 would, leaving its owner lease to expire) at each step
//! boundary of a rotation: after the install intent is recorded, mid
//! distribution, after the verify intent is recorded, and after the agents
//! promoted but before it is recorded. Another replica, started after the
//! crash, takes the rotation over and completes it; every region is
//! verified by a real call to the partner with the new credential (the
//! partner double counts them), none skipped.

use std::time::Duration;

use tilewave_proto::credentials::v1::*;
use tilewave_testkit::partner::PartnerRequest;
use tilewave_testkit::{PartnerDouble, ServiceProcess, eventually};

use crate::rotation::{REGIONS, USER, agents_probing, submit, until_state};
use crate::*;

const WAIT: Duration = Duration::from_secs(90);

/// The i-th credential of the test.
fn password(i: usize) -> String {
    format!("password-{i}-of-the-failover-test")
}

#[tokio::test]
async fn a_rotation_resumes_after_a_crash_at_every_step_boundary() -> anyhow::Result<()> {
    let (text, _) = keyring_text(&["k1"])?;
    let mut stack = Stack::start_with_regions(&text, &REGIONS).await?;
    stack.tile("riverflow").await?;
    let partner = PartnerDouble::start().await?;
    let accepted: Vec<String> = (0..6).map(password).collect();
    let pairs: Vec<(&str, &str)> = accepted.iter().map(|p| (USER, p.as_str())).collect();
    let ids = partner.set_accepted(&pairs);
    // Probes only at start-up: the partner's calls are the verifications.
    let _agents = agents_probing(&stack, &partner, None, "1h").await?;
    let kek = stack.dir.path().join("kek");
    let regions: Vec<String> = REGIONS.iter().map(|r| (*r).to_owned()).collect();

    // The first credential, rotated in by the stack's own replica.
    let mut c = stack.client().await?;
    submit(&mut c, &password(0)).await?;
    let first = c
        .start_rotation(StartRotationRequest {
            tile_id: "riverflow".into(),
            regions: regions.clone(),
            bake: Some(prost_types::Duration::default()),
            ..Default::default()
        })
        .await?
        .into_inner()
        .rotation
        .context("rotation")?;
    until_state(&c, &first.id, RotationState::Completed).await?;
    stack.credentials.terminate(Duration::from_secs(5)).await?;

    for (i, point) in [
        "after-install-intent",
        "mid-distribution",
        "after-verify-intent",
        "before-promotion",
    ]
    .into_iter()
    .enumerate()
    {
        let version = i + 1;
        let crashy = ServiceProcess::start(
            credentials_spec(&stack.etcd, &format!("crashy-{point}"), &kek)
                .with_args(["--regions".to_owned(), REGIONS.join(",")])
                .with_args(["--crash-at", point]),
            stack.dir.path(),
        )
        .await?;
        let mut c = CredentialsServiceClient::new(crashy.channel(RELEASE_ENGINEER).await?);
        submit(&mut c, &password(version)).await?;
        partner.clear_requests();
        let r = c
            .start_rotation(StartRotationRequest {
                tile_id: "riverflow".into(),
                regions: regions.clone(),
                bake: Some(prost_types::Duration::default()),
                retirement: Retirement::AfterGrace as i32,
                grace: Some(prost_types::Duration {
                    seconds: 0,
                    nanos: 1_000_000,
                }),
                ..Default::default()
            })
            .await?
            .into_inner()
            .rotation
            .context("rotation")?;
        // It crashes at the boundary by itself.
        let mut crashy = crashy;
        let status = eventually(&format!("the replica crashes {point}"), WAIT, || {
            let s = crashy.try_exit_status().ok().flatten();
            async move { s }
        })
        .await?;
        assert_eq!(status.code(), Some(86), "{point}: exited by crash injection");
        // A fresh replica completes it.
        let survivor = ServiceProcess::start(
            credentials_spec(&stack.etcd, &format!("survivor-{point}"), &kek)
                .with_args(["--regions".to_owned(), REGIONS.join(",")]),
            stack.dir.path(),
        )
        .await?;
        let c = CredentialsServiceClient::new(survivor.channel(RELEASE_ENGINEER).await?);
        let done = until_state(&c, &r.id, RotationState::Completed).await?;
        assert_eq!(done.regions_verified, 8, "{point}: {done:?}");
        assert!(
            done.regions.iter().all(|g| g.verified_at.is_some()),
            "{point}: every region verified"
        );
        // Verified for real: the partner saw the new credential from the
        // verifications (at least one call per region).
        let new_id = ids[version];
        let with_new: Vec<PartnerRequest> = partner
            .requests()
            .into_iter()
            .filter(|q| q.matched == Some(new_id))
            .collect();
        assert!(
            with_new.len() >= 8,
            "{point}: {} calls with the new credential: {with_new:?}",
            with_new.len()
        );
        assert_eq!(partner.auth_failures(), 0, "{point}");
        let mut survivor = survivor;
        survivor.terminate(Duration::from_secs(5)).await?;
    }
    Ok(())
}
