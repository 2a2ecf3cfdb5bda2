//! Long-running work keeps its origin: a step span made later, by another
//! replica, links (not parents) to the request that started the work.

use anyhow::Result;
use tilewave_proto::common::v1::SpanOrigin;
use tilewave_telemetry::receiver::Receiver;
use tilewave_telemetry::{current_origin, link_to_origin, span_context_of, span_linked_to};
use tokio::net::TcpListener;

use crate::{SPAN_WAIT, pipeline_to};

#[tokio::test]
async fn a_later_step_on_another_replica_links_back_to_the_origin() -> Result<()> {
    let receiver = Receiver::start(TcpListener::bind("127.0.0.1:0").await?)?;

    // Replica A serves the request that starts the work and stores its origin.
    let replica_a = pipeline_to(&receiver, "rollout-a")?;
    let origin: SpanOrigin = {
        let _default = tracing::subscriber::set_default(replica_a.subscriber());
        let request = tracing::info_span!("StartRollout");
        let _entered = request.enter();
        current_origin()
    };
    replica_a.flush().await?;
    let origin_cx = span_context_of(&origin).expect("a valid origin");
    let (origin_trace, origin_span) = (origin_cx.trace_id().to_string(), origin_cx.span_id().to_string());

    // Replica B, later, runs two steps of that work.
    let replica_b = pipeline_to(&receiver, "rollout-b")?;
    {
        let _default = tracing::subscriber::set_default(replica_b.subscriber());
        let outer = tracing::info_span!("owner.loop");
        let _in_outer = outer.enter();
        let step = span_linked_to(&origin, "rollout.wave");
        step.in_scope(|| tracing::info!("applying wave"));
        drop(step);
        let other = tracing::info_span!("rollout.bake");
        assert!(link_to_origin(&other, &origin));
        drop(other);
    }
    replica_b.flush().await?;

    let spans = receiver
        .wait_for_spans(
            |s| {
                ["StartRollout", "rollout.wave", "rollout.bake"]
                    .iter()
                    .all(|n| s.iter().any(|s| s.name == *n))
            },
            SPAN_WAIT,
        )
        .await
        .map_err(|got| anyhow::anyhow!("spans so far: {got:#?}"))?;
    let request = spans
        .iter()
        .find(|s| s.name == "StartRollout")
        .expect("origin span");
    assert_eq!(
        (request.trace_id.as_str(), request.span_id.as_str()),
        (origin_trace.as_str(), origin_span.as_str())
    );
    assert_eq!(request.service_name, "rollout-a");

    let wave = spans
        .iter()
        .find(|s| s.name == "rollout.wave")
        .expect("step span");
    assert_eq!(wave.service_name, "rollout-b");
    assert!(wave.links_to(&origin_trace, &origin_span), "{wave:#?}");
    assert!(wave.is_root(), "a step is its own root, linked not parented");
    assert_ne!(wave.trace_id, origin_trace);

    let bake = spans
        .iter()
        .find(|s| s.name == "rollout.bake")
        .expect("linked span");
    assert!(bake.links_to(&origin_trace, &origin_span));
    Ok(())
}
