//! The end-to-end trace of a roll-out (issue 7): every service exports to
//! an in-process OTLP receiver; the test makes StartRollout inside a client
//! span of its own. The rollout's StartRollout server span is in the
//! caller's trace; the apply and bake-check spans of every region link back
//! to the StartRollout request's span; and each agent's ApplyTile server
//! span is a child of the rollout's ApplyTile client span under that apply
//! span: from the start request every region can be reached.

use anyhow::Context as _;
use jiff::SignedDuration;
use tilewave_proto::rollout::v1::rollout_service_client::RolloutServiceClient;
use tilewave_proto::rollout::v1::{RolloutState, StartRolloutRequest};
use tilewave_telemetry::receiver::{Kind, ReceivedSpan, Receiver};
use tilewave_telemetry::{Config, Pipeline, traced_channel};
use tokio::net::TcpListener;
use tracing::Instrument as _;

use crate::*;

const START: &str = "tilewave.rollout.v1.RolloutService/StartRollout";
const APPLY: &str = "tilewave.agent.v1.AgentService/ApplyTile";

#[tokio::test]
async fn start_rollout_apply_and_every_agent_in_one_trace() -> anyhow::Result<()> {
    let receiver = Receiver::start(TcpListener::bind("127.0.0.1:0").await?)?;
    let env: Vec<(String, String)> = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("OTEL_TRACES_SAMPLER", "parentbased_always_on"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let stack = Stack::start_with_env(2, &env).await?;
    let tile = stack.scheduled_tile(SignedDuration::from_hours(24 * 8)).await?;
    let now = stack.now().await?;

    // The caller: a span of its own around a traced StartRollout.
    let endpoint = receiver.endpoint().to_owned();
    let pipeline = Pipeline::new(&Config::from_lookup("rollout-it", |k| {
        (k == "OTEL_EXPORTER_OTLP_ENDPOINT").then(|| endpoint.clone())
    }))?;
    let e = stack.rollouts[0].endpoint();
    let channel = connect("rollout replica 0", &e, |e| async move {
        tonic::transport::Endpoint::from_shared(e)
            .map_err(|_| unreachable!())?
            .connect()
            .await
    })
    .await?;
    let (trace_id, started) = {
        let _default = tracing::subscriber::set_default(pipeline.subscriber());
        let span = tracing::info_span!("it.start_rollout");
        let trace_id = span.in_scope(tilewave_telemetry::trace_id_of_current);
        let mut client = RolloutServiceClient::new(traced_channel(channel));
        let spec = quick_spec(&tile.id, now, &REGIONS, SignedDuration::from_mins(10), 3);
        let started = async {
            client
                .start_rollout(StartRolloutRequest {
                    spec: Some(spec),
                    ..Default::default()
                })
                .await
        }
        .instrument(span)
        .await?
        .into_inner()
        .rollout
        .context("rollout")?;
        (trace_id, started)
    };
    pipeline.flush().await?;
    assert_eq!(trace_id.len(), 32);
    assert_eq!(
        started.trace_id, trace_id,
        "the roll-out keeps the caller's trace id"
    );

    stack.set_rate(600.0).await?;
    stack.wait_state(&started.id, RolloutState::Succeeded).await?;
    stack.set_rate(0.0).await?;

    let with_region = |s: &[ReceivedSpan], name: &str, region: &str| {
        s.iter()
            .any(|x| x.name == name && x.attr_str("region") == Some(region) && !x.links.is_empty())
    };
    let spans = receiver
        .wait_for_spans(
            |s| {
                s.iter().any(|x| x.name == START && x.kind == Kind::Server)
                    && REGIONS.iter().all(|r| {
                        with_region(s, "rollout.apply", r) && with_region(s, "rollout.bake_check", r)
                    })
                    && s.iter()
                        .filter(|x| x.name == APPLY && x.kind == Kind::Server)
                        .count()
                        >= REGIONS.len()
            },
            WAIT,
        )
        .await
        .map_err(|got| {
            let names: Vec<_> = got
                .iter()
                .map(|s| (&s.service_name, &s.name, s.attr_str("region")))
                .collect();
            anyhow::anyhow!("spans so far: {names:#?}")
        })?;

    // The StartRollout server span is in the caller's trace, under its
    // client span, under the caller's own span.
    let mine = spans
        .iter()
        .find(|s| s.name == "it.start_rollout")
        .context("the caller's span")?;
    assert_eq!(mine.trace_id, trace_id);
    let client = spans
        .iter()
        .find(|s| s.name == START && s.kind == Kind::Client)
        .context("the caller's client span")?;
    assert!(client.is_child_of(mine), "{client:#?}");
    let server = spans
        .iter()
        .find(|s| s.name == START && s.kind == Kind::Server)
        .context("the StartRollout server span")?;
    assert_eq!(server.service_name, "tilewave-rollout");
    assert!(server.is_child_of(client), "{server:#?}");
    // The request's span: the server span or the handler under it.
    let request: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| s.span_id == server.span_id || s.is_child_of(server))
        .collect();
    let links_to_request = |s: &ReceivedSpan| request.iter().any(|r| s.links_to(&r.trace_id, &r.span_id));

    for region in REGIONS {
        for name in ["rollout.apply", "rollout.bake_check"] {
            let steps: Vec<_> = spans
                .iter()
                .filter(|s| s.name == name && s.attr_str("region") == Some(region))
                .collect();
            assert!(!steps.is_empty(), "no {name} span for {region}");
            for s in &steps {
                assert_eq!(s.service_name, "tilewave-rollout");
                assert!(s.is_root(), "{s:#?}");
                assert!(
                    links_to_request(s),
                    "{name} in {region} does not link to StartRollout: {s:#?}"
                );
            }
        }
        // apply -> ApplyTile client -> the agent's ApplyTile server span.
        let reached = spans
            .iter()
            .filter(|a| a.name == "rollout.apply" && a.attr_str("region") == Some(region))
            .any(|apply| {
                spans
                    .iter()
                    .filter(|c| c.name == APPLY && c.kind == Kind::Client && c.is_child_of(apply))
                    .any(|c| {
                        spans.iter().any(|s| {
                            s.name == APPLY
                                && s.kind == Kind::Server
                                && s.is_child_of(c)
                                && s.service_name == "tilewave-agent"
                        })
                    })
            });
        assert!(
            reached,
            "the agent of {region} is not reached from its apply span"
        );
    }
    Ok(())
}
