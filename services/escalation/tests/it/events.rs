//! Events in: repeats of one failure fold into one incident.

use std::collections::HashMap;

use serde_json::json;
use tilewave_proto::common::v1::{Event, EventKind, Severity};
use tilewave_proto::escalation::v1::*;
use tilewave_store::audit;
use tilewave_store::{Actor, Change};

use crate::*;

fn rollout_failed(id: &str, region: &str) -> Event {
    Event {
        id: id.into(),
        kind: EventKind::RolloutFailed as i32,
        severity: Severity::Sev2 as i32,
        at: Some(tilewave_store::clock::to_proto_timestamp(t0())),
        tile_id: "riverflow".into(),
        rollout_id: "riverflow-r2".into(),
        region: region.into(),
        message: format!("health gate failed in {region} (wave 3)"),
        origin: None,
        attributes: HashMap::from([("wave".to_owned(), "3".to_owned())]),
    }
}

#[tokio::test]
async fn three_failures_of_one_wave_make_one_incident_with_a_count_of_three() -> anyhow::Result<()> {
    let mut stack = Stack::start(1).await?;
    sev1_policy(&stack, "sev1").await?;
    // The SEV2 incident pages the primary once (level 1); nothing else.
    stack.receiver.expect(
        "/primary",
        json!({"incident": "INC-1", "level": 1, "source": "rollout-failure", "count": 1}),
    );
    let store = stack.etcd.store(PREFIX).await?;
    let k = keys()?;
    for (i, region) in ["aws:us-east-1", "gcp:us-central1", "aws:us-east-1"]
        .iter()
        .enumerate()
    {
        let e = rollout_failed(&format!("riverflow-r2-failed-{i}"), region);
        let change = Change::new().create(k.event(&e.id), &e).audit(audit::record(
            "RolloutFailed",
            "event",
            &e.id,
            "test event",
        ));
        store.commit(change, &Actor::new("test")).await?;
    }
    let i = tilewave_testkit::eventually("one incident counting three events", WAIT, || async {
        let list = stack
            .client()
            .await
            .map_err(|e| e.to_string())?
            .list_incidents(ListIncidentsRequest::default())
            .await
            .map_err(|e| e.to_string())?
            .into_inner()
            .incidents;
        match list.as_slice() {
            [one] if one.count == 3 => Ok(one.clone()),
            other => Err(format!(
                "{:?}",
                other.iter().map(|i| (&i.id, i.count)).collect::<Vec<_>>()
            )),
        }
    })
    .await?;
    assert_eq!(i.dedup_key, "rollout-failure/riverflow/riverflow-r2/wave-3");
    assert_eq!(i.source.as_ref().map(|s| s.wave), Some(3));
    assert_eq!(i.regions, ["aws:us-east-1", "gcp:us-central1"]);
    assert_eq!(i.severity, Severity::Sev2 as i32);
    assert!(!i.sop_id.is_empty(), "a roll-out failure follows its SOP");
    assert!(!i.steps.is_empty());
    // The cursor stands at the last event consumed.
    let cursor_of = |dump: &std::collections::BTreeMap<String, Vec<u8>>| {
        dump.get(&k.escalation_cursor())
            .and_then(|v| <EventCursor as prost::Message>::decode(v.as_slice()).ok())
            .map(|c| c.revision)
            .unwrap_or_default()
    };
    let cursor = cursor_of(&stack.dump().await?);
    assert!(cursor > 0);
    stack.receiver.wait_for_expected(WAIT).await?;

    // A restart consumes nothing twice: the count stays three.
    stack.replicas[0].restart().await?;
    // A ROLLOUT_SUCCEEDED after the restart: once the cursor passes it,
    // the consumer has looked at everything before it again.
    let ok = Event {
        id: "riverflow-r2-succeeded".into(),
        kind: EventKind::RolloutSucceeded as i32,
        message: "done".into(),
        ..rollout_failed("x", "aws:us-east-1")
    };
    let info = store
        .commit(
            Change::new().create(k.event(&ok.id), &ok).audit(audit::record(
                "RolloutSucceeded",
                "event",
                &ok.id,
                "test event",
            )),
            &Actor::new("test"),
        )
        .await?;
    tilewave_testkit::eventually("the cursor past the new event", WAIT, || async {
        let now = cursor_of(&stack.dump().await.map_err(|e| e.to_string())?);
        if now >= info.revision {
            Ok(())
        } else {
            Err(format!("cursor {now}"))
        }
    })
    .await?;
    let after = stack.incident(&i.id).await?;
    assert_eq!(after.count, 3, "nothing consumed twice");

    // Resolved (every SOP step skipped with a reason, as a SEV2 needs),
    // the same failure again opens a new incident linked to it.
    let mut oncall = stack.oncall().await?;
    for step in &after.steps {
        oncall
            .complete_step(CompleteStepRequest {
                id: i.id.clone(),
                step: step.number,
                skip_reason: "test: nothing to do".into(),
                ..Default::default()
            })
            .await?;
    }
    oncall
        .resolve(ResolveRequest {
            id: i.id.clone(),
            note: "the wave was retried".into(),
            etag: 0,
        })
        .await?;
    stack.receiver.expect(
        "/primary",
        json!({"incident": "INC-2", "level": 1, "source": "rollout-failure", "count": 1}),
    );
    let e = rollout_failed("riverflow-r2-failed-3", "aws:us-east-1");
    store
        .commit(
            Change::new().create(k.event(&e.id), &e).audit(audit::record(
                "RolloutFailed",
                "event",
                &e.id,
                "test event",
            )),
            &Actor::new("test"),
        )
        .await?;
    let second = tilewave_testkit::eventually("a new, linked incident", WAIT, || async {
        stack.incident("INC-2").await.map_err(|e| e.to_string())
    })
    .await?;
    assert_eq!(second.linked_to, i.id);
    assert_eq!(second.count, 1);
    assert_eq!(stack.incident(&i.id).await?.state, IncidentState::Resolved as i32);
    stack.receiver.wait_for_expected(WAIT).await?;
    stack.receiver.assert_all_expected_and_nothing_else();
    Ok(())
}

#[tokio::test]
async fn consumed_events_older_than_the_retention_are_removed() -> anyhow::Result<()> {
    let mut stack = Stack::start(0).await?;
    let kek = stack.dir.path().join("kek");
    stack.replicas.push(
        tilewave_testkit::ServiceProcess::start(
            spec(&stack.etcd, "escalation-0", &kek).with_args(["--event-retention-hours", "24"]),
            stack.dir.path(),
        )
        .await?,
    );
    let store = stack.etcd.store(PREFIX).await?;
    let k = keys()?;
    let event = |id: &str, at: jiff::Timestamp| Event {
        id: id.into(),
        kind: EventKind::RolloutSucceeded as i32,
        at: Some(tilewave_store::clock::to_proto_timestamp(at)),
        message: "done".into(),
        ..rollout_failed(id, "aws:us-east-1")
    };
    for e in [
        event("old", t0() - jiff::SignedDuration::from_hours(48)),
        event("recent", t0()),
    ] {
        store
            .commit(
                Change::new().create(k.event(&e.id), &e).audit(audit::record(
                    "RolloutSucceeded",
                    "event",
                    &e.id,
                    "test event",
                )),
                &Actor::new("test"),
            )
            .await?;
    }
    let present = |id: &'static str| {
        let stack = &stack;
        let k = k.clone();
        async move { Ok::<bool, anyhow::Error>(stack.dump().await?.contains_key(&k.event(id))) }
    };
    tilewave_testkit::eventually("the old event removed", WAIT, || async {
        match present("old").await {
            Ok(false) => Ok(()),
            Ok(true) => Err("still there".to_owned()),
            Err(e) => Err(e.to_string()),
        }
    })
    .await?;
    assert!(present("recent").await?, "a recent event stays");
    // A day later the other one goes too.
    stack.at(jiff::SignedDuration::from_hours(25)).await?;
    tilewave_testkit::eventually("the other event removed", WAIT, || async {
        match present("recent").await {
            Ok(false) => Ok(()),
            Ok(true) => Err("still there".to_owned()),
            Err(e) => Err(e.to_string()),
        }
    })
    .await?;
    Ok(())
}
