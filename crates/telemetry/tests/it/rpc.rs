//! One trace across client and server, RPC attributes, error status, and
//! propagation without export.

use anyhow::Result;
use tilewave_telemetry::receiver::{Kind, ReceivedSpan};
use tilewave_telemetry::{Metrics, ServerLayer, trace_id_of_current};
use tonic::Code;
use tracing::Instrument as _;

use crate::{CHECK, KNOWN, SPAN_WAIT, TestServer, check, exporting_pipeline, quiet_pipeline};

fn by_kind(spans: &[ReceivedSpan], name: &str, kind: Kind) -> Vec<ReceivedSpan> {
    spans
        .iter()
        .filter(|s| s.name == name && s.kind == kind)
        .cloned()
        .collect()
}

#[tokio::test]
async fn client_span_is_the_parent_of_the_server_span_in_one_trace() -> Result<()> {
    let (receiver, pipeline) = exporting_pipeline("rpc-test").await?;
    let _default = tracing::subscriber::set_default(pipeline.subscriber());
    let server = TestServer::start(ServerLayer::with_metrics(Metrics::new())).await?;
    let mut client = server.client().await?;

    let root = tracing::info_span!("test.request");
    let (code, trace_id) = async { (check(&mut client, KNOWN).await, trace_id_of_current()) }
        .instrument(root)
        .await;
    assert_eq!(code, Code::Ok);
    assert_eq!(trace_id.len(), 32);

    pipeline.flush().await?;
    let spans = receiver
        .wait_for_spans(
            |s| {
                s.iter().filter(|s| s.name == CHECK).count() >= 2
                    && s.iter().any(|s| s.name == "test.request")
            },
            SPAN_WAIT,
        )
        .await
        .map_err(|got| anyhow::anyhow!("spans so far: {got:#?}"))?;

    let in_trace: Vec<_> = spans.iter().filter(|s| s.trace_id == trace_id).cloned().collect();
    let root = in_trace
        .iter()
        .find(|s| s.name == "test.request")
        .expect("root span");
    let clients = by_kind(&in_trace, CHECK, Kind::Client);
    let servers = by_kind(&in_trace, CHECK, Kind::Server);
    assert_eq!((clients.len(), servers.len()), (1, 1), "{in_trace:#?}");
    let (client_span, server_span) = (&clients[0], &servers[0]);
    assert!(root.is_root());
    assert!(client_span.is_child_of(root));
    assert!(
        server_span.is_child_of(client_span),
        "server span's parent is the client span"
    );
    let handler = in_trace
        .iter()
        .find(|s| s.name == "handler")
        .expect("handler span");
    assert!(
        handler.is_child_of(server_span),
        "handler spans hang under the server span"
    );

    for span in [client_span, server_span] {
        assert_eq!(span.attr_str("rpc.system"), Some("grpc"));
        assert_eq!(span.attr_str("rpc.service"), Some("grpc.health.v1.Health"));
        assert_eq!(span.attr_str("rpc.method"), Some("Check"));
        assert_eq!(span.attr_i64("rpc.grpc.status_code"), Some(0));
        assert!(!span.is_error());
        assert_eq!(span.service_name, "rpc-test");
    }
    assert_eq!(server_span.attr_str("server.address"), Some("127.0.0.1"));
    assert_eq!(
        server_span.attr_i64("server.port"),
        Some(i64::from(server.addr.port()))
    );
    Ok(())
}

#[tokio::test]
async fn a_failing_call_gives_an_error_status_on_both_sides() -> Result<()> {
    let (receiver, pipeline) = exporting_pipeline("rpc-test").await?;
    let _default = tracing::subscriber::set_default(pipeline.subscriber());
    let server = TestServer::start(ServerLayer::with_metrics(Metrics::new())).await?;
    let mut client = server.client().await?;

    let root = tracing::info_span!("test.failing");
    let (code, trace_id) = async { (check(&mut client, "no.such.Service").await, trace_id_of_current()) }
        .instrument(root)
        .await;
    assert_eq!(code, Code::NotFound);

    pipeline.flush().await?;
    let spans = receiver
        .wait_for_spans(
            |s| {
                s.iter()
                    .filter(|s| s.name == CHECK && s.trace_id == trace_id)
                    .count()
                    >= 2
            },
            SPAN_WAIT,
        )
        .await
        .map_err(|got| anyhow::anyhow!("spans so far: {got:#?}"))?;
    for kind in [Kind::Client, Kind::Server] {
        let found = by_kind(&spans, CHECK, kind);
        assert_eq!(found.len(), 1);
        let span = &found[0];
        assert!(span.is_error(), "{kind:?} span is an error: {span:#?}");
        assert_eq!(span.attr_i64("rpc.grpc.status_code"), Some(Code::NotFound as i64));
        assert!(!span.status_message.is_empty());
    }
    Ok(())
}

#[tokio::test]
async fn without_an_endpoint_nothing_is_exported_but_trace_ids_still_flow() -> Result<()> {
    let pipeline = quiet_pipeline("rpc-quiet")?;
    assert!(!pipeline.exports(), "no OTEL_EXPORTER_OTLP_ENDPOINT, no exporter");
    let _default = tracing::subscriber::set_default(pipeline.subscriber());
    let server = TestServer::start(ServerLayer::without_metrics()).await?;
    let mut client = server.client().await?;

    let (code, trace_id) = async { (check(&mut client, KNOWN).await, trace_id_of_current()) }
        .instrument(tracing::info_span!("test.quiet"))
        .await;
    assert_eq!(code, Code::Ok);
    assert_eq!(trace_id.len(), 32);
    let seen = server.traceparents.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert!(
        seen[0].starts_with(&format!("00-{trace_id}-")) && seen[0].ends_with("-01"),
        "the server saw the caller's trace, sampled: {}",
        seen[0]
    );
    Ok(())
}

#[tokio::test]
async fn the_layers_work_without_any_subscriber() -> Result<()> {
    let metrics = Metrics::new();
    let server = TestServer::start(ServerLayer::with_metrics(metrics.clone())).await?;
    let mut client = server.client().await?;
    assert_eq!(check(&mut client, KNOWN).await, Code::Ok);
    assert!(server.traceparents.lock().unwrap().is_empty());
    // An uninstrumented client works against the traced server too.
    let mut plain = server.plain_client().await?;
    let reply = plain
        .check(tonic_health::pb::HealthCheckRequest {
            service: KNOWN.to_owned(),
        })
        .await?;
    assert_eq!(reply.into_inner().status, 1);
    assert!(metrics.encode().contains(
        r#"tilewave_rpc_requests_total{service="grpc.health.v1.Health",method="Check",code="OK"} 2"#
    ));
    Ok(())
}
