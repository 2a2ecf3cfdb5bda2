//! Bad input: a clear error, and nothing changed in etcd.

use tilewave_proto::common::v1::Severity;
use tilewave_proto::escalation::v1::*;
use tonic::Code;

use crate::*;

#[tokio::test]
async fn bad_input_is_refused_with_a_clear_error_and_etcd_unchanged() -> anyhow::Result<()> {
    let stack = Stack::start(1).await?;
    let mut c = stack.client().await?;
    // A SEV4 incident (no policy pages it), resolved.
    let opened = c
        .open_incident(OpenIncidentRequest {
            title: "riverflow: a typo on the tile".into(),
            severity: Severity::Sev4 as i32,
            tile_id: "riverflow".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .incident
        .context("incident")?;
    c.resolve(ResolveRequest {
        id: opened.id.clone(),
        note: "fixed".into(),
        etag: 0,
    })
    .await?;

    // A SEV3 incident on a roll-out, open (no policy pages SEV3 here).
    let on_rollout = c
        .open_incident(OpenIncidentRequest {
            title: "riverflow: slow in one region".into(),
            severity: Severity::Sev3 as i32,
            tile_id: "riverflow".into(),
            rollout_id: "riverflow-r1".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .incident
        .context("incident")?;

    let good_level = |url: &str| Level {
        targets: vec![webhook("ops", url)],
        delay: Some(mins(5)),
    };
    let policy = |levels: Vec<Level>| SetPolicyRequest {
        policy: Some(Policy {
            name: "default".into(),
            levels,
            ..Default::default()
        }),
        ..Default::default()
    };
    let zero_delay = Level {
        delay: Some(mins(0)),
        ..good_level("http://127.0.0.1:9/ops")
    };
    let unknown_person = Level {
        targets: vec![Target {
            kind: "person".into(),
            name: "nobody".into(),
            url: String::new(),
        }],
        delay: Some(mins(5)),
    };
    let before = stack.dump().await?;
    let mut oncall = stack.oncall().await?;
    let ack = oncall
        .acknowledge(AcknowledgeRequest {
            id: opened.id.clone(),
            etag: 0,
        })
        .await
        .err()
        .context("acknowledging a resolved incident is refused")?;
    assert_eq!(ack.code(), Code::FailedPrecondition);
    assert!(
        ack.message().contains("RESOLVED") && ack.message().contains("reopen"),
        "{}",
        ack.message()
    );

    // Pausing needs the rollout service; this replica has none.
    let e = oncall
        .mitigate(MitigateRequest {
            id: on_rollout.id.clone(),
            action: MitigationAction::PauseRollout as i32,
            ..Default::default()
        })
        .await
        .err()
        .context("pausing without a rollout service is refused")?;
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("--rollout"), "{}", e.message());
    // Reopening an open incident.
    let e = oncall
        .reopen(ReopenRequest {
            id: on_rollout.id.clone(),
            reason: "again".into(),
            etag: 0,
        })
        .await
        .err()
        .context("reopening an open incident is refused")?;
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("not resolved"), "{}", e.message());
    // A stale etag.
    let e = oncall
        .add_note(AddNoteRequest {
            id: on_rollout.id.clone(),
            note: "looking".into(),
            etag: on_rollout.etag - 1,
        })
        .await
        .err()
        .context("a stale etag is refused")?;
    assert_eq!(e.code(), Code::Aborted);

    let cases: Vec<(&str, SetPolicyRequest, &[&str])> = vec![
        (
            "no levels",
            policy(vec![]),
            &["levels: a policy needs at least one level"],
        ),
        (
            "a zero delay",
            policy(vec![zero_delay]),
            &["levels[0].delay: must be more than zero"],
        ),
        (
            "an ftp URL",
            policy(vec![good_level("ftp://files.example.com/x")]),
            &["levels[0].targets[0].url", "not http or https"],
        ),
        (
            "an unknown person",
            policy(vec![unknown_person]),
            &["levels[0].targets[0].name", "no person"],
        ),
    ];
    for (what, req, needles) in cases {
        let e = c
            .set_policy(req)
            .await
            .err()
            .with_context(|| format!("{what} is refused"))?;
        assert_eq!(e.code(), Code::InvalidArgument, "{what}: {}", e.message());
        for n in needles {
            assert!(e.message().contains(n), "{what}: {:?} lacks {n:?}", e.message());
        }
    }
    // A signing secret for a target the policy does not have.
    let mut stray = policy(vec![good_level("http://127.0.0.1:9/ops")]);
    stray
        .signing_secrets
        .insert("nobody".into(), secret_for("nobody"));
    let e = c
        .set_policy(stray)
        .await
        .err()
        .context("a stray secret is refused")?;
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("names no target"), "{}", e.message());

    assert_eq!(stack.dump().await?, before, "nothing changed in etcd");
    Ok(())
}
