//! The ladder on the virtual clock: levels at exactly their delays, the
//! repeat, acknowledgement stopping it, retries with one delivery per key.

use jiff::SignedDuration;
use serde_json::json;
use tilewave_proto::escalation::v1::*;

use crate::*;

#[tokio::test]
async fn an_unacknowledged_sev1_climbs_the_ladder_at_exactly_its_delays_and_repeats_once()
-> anyhow::Result<()> {
    let stack = Stack::start(1).await?;
    sev1_policy(&stack, "sev1").await?;
    let r = &stack.receiver;
    // Round 1: primary at once, secondary 5 minutes later; round 2: the
    // same at 15 and 20 minutes; then the ladder stops. Nothing else.
    for (path, level, round) in [
        ("/primary", 1, 1),
        ("/secondary", 2, 1),
        ("/primary", 1, 2),
        ("/secondary", 2, 2),
    ] {
        r.expect(
            path,
            json!({"incident": "INC-1", "level": level, "round": round, "severity": "SEV1", "tile": "riverflow"}),
        );
    }
    let mut watch = stack
        .client()
        .await?
        .watch_incidents(WatchIncidentsRequest::default())
        .await?
        .into_inner();
    let first = watch.message().await?.context("the snapshot's end")?;
    assert_eq!(first.r#type, IncidentEventType::SnapshotEnd as i32);
    let opened = open_sev1(&stack, "riverflow").await?;
    assert_eq!(opened.id, "INC-1");
    let put = watch.message().await?.context("the new incident")?;
    assert_eq!(put.r#type, IncidentEventType::Put as i32);
    assert_eq!(put.incident.map(|i| i.id).as_deref(), Some("INC-1"));
    r.wait_for_deliveries(1, WAIT).await?;
    for (at, n) in [(5, 2), (15, 3), (20, 4)] {
        // Just before: nothing new is due, so the count stays.
        assert_eq!(r.deliveries().len(), n - 1, "before minute {at}");
        stack.at(SignedDuration::from_mins(at)).await?;
        r.wait_for_deliveries(n, WAIT).await?;
    }
    // The last delay passes: the ladder is exhausted, no more pages.
    stack.at(SignedDuration::from_mins(30)).await?;
    let i = tilewave_testkit::eventually("the ladder exhausted", WAIT, || async {
        let i = stack.incident("INC-1").await.map_err(|e| e.to_string())?;
        let state = i.escalation.as_ref().map(|e| e.state).unwrap_or_default();
        if state == LadderState::Exhausted as i32 {
            Ok(i)
        } else {
            Err(format!("ladder state {state}"))
        }
    })
    .await?;
    let t = t0();
    assert_eq!(
        page_times(&i),
        [0, 5, 15, 20].map(|m| t + SignedDuration::from_mins(m)).to_vec(),
        "each level paged at exactly its delay"
    );
    // Every page delivered once, signed, with its key and the trace.
    let deliveries = r.deliveries();
    assert_eq!(deliveries.len(), 4);
    for d in &deliveries {
        assert!(d.signature.verified(), "{:?}", d.signature);
        let key = d.idempotency_key.clone().unwrap_or_default();
        assert!(key.starts_with("INC-1/c0/"), "{key}");
        assert_eq!(d.body["key"], json!(key));
        assert!(d.traceparent.as_deref().is_some_and(|t| t.starts_with("00-")));
    }
    assert_eq!(i.deliveries.len(), 4);
    assert!(
        i.deliveries
            .iter()
            .all(|d| d.delivered_at.is_some() && d.attempts == 1)
    );
    // Nothing left to send, no timer left.
    let dump = stack.dump().await?;
    let k = keys()?;
    assert!(
        !dump
            .keys()
            .any(|key| key.starts_with(&k.escalation_outbox("INC-1")))
    );
    let timers = k.timers_of("escalation")?;
    assert!(!dump.keys().any(|key| key.starts_with(&timers)));
    r.assert_all_expected_and_nothing_else();
    Ok(())
}

#[tokio::test]
async fn acknowledging_stops_the_ladder_and_a_failing_receiver_gets_each_page_once() -> anyhow::Result<()> {
    let stack = Stack::start(1).await?;
    sev1_policy(&stack, "sev1").await?;
    let r = &stack.receiver;
    // The receiver fails twice, then accepts: the first page arrives once,
    // after two retries.
    r.fail_next(2);
    r.expect("/primary", json!({"incident": "INC-1", "level": 1, "round": 1}));
    open_sev1(&stack, "riverflow").await?;
    r.wait_for_expected(WAIT).await?;
    let i = tilewave_testkit::eventually("three attempts recorded", WAIT, || async {
        let i = stack.incident("INC-1").await.map_err(|e| e.to_string())?;
        match i.deliveries.first() {
            Some(d) if d.delivered_at.is_some() => Ok(i),
            other => Err(format!("{other:?}")),
        }
    })
    .await?;
    let d = &i.deliveries[0];
    assert_eq!(d.attempts, 3, "{d:?}");
    assert!(!d.last_error.is_empty(), "the failures are on the incident");
    let failed = i
        .timeline
        .iter()
        .filter(|e| e.kind == TimelineKind::DeliveryFailed as i32)
        .count();
    assert_eq!(failed, 2);
    let requests = r.requests();
    assert_eq!(requests.len(), 3, "two failures, then the delivery");
    let keys_sent: std::collections::BTreeSet<_> =
        requests.iter().map(|q| q.idempotency_key.clone()).collect();
    assert_eq!(keys_sent.len(), 1, "every attempt carries the same key");
    assert!(r.deliveries().iter().all(|d| d.signature.verified()));

    // Acknowledged before level 2: nothing more is paged, ever.
    let acked = stack
        .oncall()
        .await?
        .acknowledge(AcknowledgeRequest {
            id: "INC-1".into(),
            etag: 0,
        })
        .await?
        .into_inner();
    let inc = acked.incident.unwrap_or_default();
    assert_eq!(inc.state, IncidentState::Acknowledged as i32);
    assert!(inc.timer_due.is_none());
    stack.at(SignedDuration::from_hours(2)).await?;
    // The clock passed every level; the incident and etcd say stopped.
    let i = stack.incident("INC-1").await?;
    assert_eq!(page_times(&i).len(), 1);
    let dump = stack.dump().await?;
    let k = keys()?;
    assert!(
        !dump
            .keys()
            .any(|key| key.starts_with(&k.escalation_outbox("INC-1")))
    );
    let timers = k.timers_of("escalation")?;
    assert!(!dump.keys().any(|key| key.starts_with(&timers)));
    assert_eq!(r.deliveries().len(), 1);
    r.assert_all_expected_and_nothing_else();
    Ok(())
}

#[tokio::test]
async fn an_incident_re_rates_itself_as_the_ga_deadline_nears_and_says_so() -> anyhow::Result<()> {
    let stack = Stack::start(1).await?;
    let r = &stack.receiver;
    r.set_secret("/ops", secret_for("ops").parse()?);
    let mut c = stack.client().await?;
    // One level waiting a day, for every severity (the default policy).
    c.set_policy(SetPolicyRequest {
        policy: Some(Policy {
            name: "default".into(),
            levels: vec![Level {
                targets: vec![webhook("ops", &r.url("/ops"))],
                delay: Some(mins(24 * 60)),
            }],
            ..Default::default()
        }),
        etag: 0,
        signing_secrets: [("ops".to_owned(), secret_for("ops"))].into_iter().collect(),
    })
    .await?;
    r.expect(
        "/ops",
        json!({"incident": "INC-1", "severity": "SEV3", "level": 1}),
    );
    let deadline = t0() + SignedDuration::from_hours(60);
    let opened = stack
        .oncall()
        .await?
        .open_incident(OpenIncidentRequest {
            title: "riverflow: docs link broken".into(),
            severity: tilewave_proto::common::v1::Severity::Sev3 as i32,
            tile_id: "riverflow".into(),
            deadline: Some(tilewave_store::clock::to_proto_timestamp(deadline)),
            ..Default::default()
        })
        .await?
        .into_inner()
        .incident
        .context("incident")?;
    assert_eq!(opened.severity, tilewave_proto::common::v1::Severity::Sev3 as i32);
    r.wait_for_expected(WAIT).await?;
    // 48 hours before the deadline it becomes SEV2, 12 hours before SEV1,
    // each at that moment, with a timeline entry saying so.
    for (hours, severity) in [
        (12, tilewave_proto::common::v1::Severity::Sev2),
        (48, tilewave_proto::common::v1::Severity::Sev1),
    ] {
        stack.at(SignedDuration::from_hours(hours)).await?;
        let i = tilewave_testkit::eventually("the re-rate", WAIT, || async {
            let i = stack.incident("INC-1").await.map_err(|e| e.to_string())?;
            if i.severity == severity as i32 {
                Ok(i)
            } else {
                Err(format!("severity {}", i.severity))
            }
        })
        .await?;
        let rerated: Vec<_> = i
            .timeline
            .iter()
            .filter(|e| e.kind == TimelineKind::Rerated as i32)
            .filter_map(|e| e.at.as_ref())
            .filter_map(|t| tilewave_store::clock::from_proto_timestamp(t).ok())
            .collect();
        assert_eq!(
            rerated.last(),
            Some(&(t0() + SignedDuration::from_hours(hours))),
            "{:?}",
            i.timeline
        );
    }
    // The ladder's one level was paged once; nothing else.
    assert_eq!(r.deliveries().len(), 1);
    r.assert_all_expected_and_nothing_else();
    Ok(())
}
