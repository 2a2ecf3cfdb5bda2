//! The end-to-end trace of a roll-out (issue 7): every service exports to
//! an in-process OTLP receiver, and the roll-out is started with the real
//! `tilewave` CLI (`--trace rollout start`), which prints its trace id. The
//! CLI's root span is the root of the StartRollout trace (its client span
//! under it, the rollout's StartRollout server span under that); the apply
//! and bake-check spans of every region link back to the StartRollout
//! request's span; and each agent's ApplyTile server span is a child of the
//! rollout's ApplyTile client span under that apply span: from the command
//! every region can be reached.

use anyhow::Context as _;
use jiff::SignedDuration;
use tilewave_proto::rollout::v1::RolloutState;
use tilewave_telemetry::receiver::{Kind, ReceivedSpan, Receiver};
use tokio::net::TcpListener;

use crate::*;

const START: &str = "tilewave.rollout.v1.RolloutService/StartRollout";
const APPLY: &str = "tilewave.agent.v1.AgentService/ApplyTile";

// Two workers: the stack's processes are stopped in a blocking Drop at the
// end, and each flushes its last spans to the in-process receiver as it
// stops; on a single-threaded runtime the receiver could not answer while
// Drop blocked, so every process sat out its export timeout (~30 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_start_apply_and_every_agent_in_one_trace() -> anyhow::Result<()> {
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

    // The caller: the tilewave binary, exporting to the same receiver.
    let cli = bin_path("tilewave")?;
    let args: Vec<String> = [
        "--rollout",
        &stack.rollouts[0].endpoint(),
        "--registry",
        &stack.registry.endpoint(),
        "--actor",
        "rollout-it",
        "--trace",
        "rollout",
        "start",
        &tile.id,
        "--regions",
        &REGIONS.join(","),
        "--bake",
        "10m",
        "--concurrency",
        "3",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // The CLI presents a release engineer's certificate of the test PKI.
    let me = tilewave_testkit::Pki::shared()?.files(tilewave_testkit::pki::RELEASE_ENGINEER);
    let mut cli_env = env.clone();
    for (k, v) in [
        ("TILEWAVE_TLS_CERT", &me.cert),
        ("TILEWAVE_TLS_KEY", &me.key),
        ("TILEWAVE_TLS_CA", &me.ca),
    ] {
        cli_env.push((k.to_owned(), v.display().to_string()));
    }
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(cli)
            .args(args)
            .envs(cli_env)
            .env_remove("TILEWAVE_ROLLOUT")
            .env_remove("TILEWAVE_REGISTRY")
            .output()
    })
    .await??;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "tilewave failed: {stdout}\n{stderr}");
    let trace_id = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("trace id: "))
        .with_context(|| format!("no trace id printed: {stderr}"))?
        .trim()
        .to_owned();
    assert_eq!(trace_id.len(), 32, "{trace_id:?}");
    let started = stack
        .rollout(stack.live())
        .await?
        .get_rollout(tilewave_proto::rollout::v1::GetRolloutRequest {
            id: String::new(),
            tile_id: tile.id.clone(),
        })
        .await?
        .into_inner()
        .rollout
        .context("rollout")?;
    assert_eq!(
        started.trace_id, trace_id,
        "the roll-out keeps the CLI's trace id"
    );
    // It waits for its earliest start, GA - 7 days: a day from now.
    stack.advance(SignedDuration::from_hours(24)).await?;

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

    // The CLI's root span is the root of the StartRollout trace: its
    // client span under it, the rollout's server span under that.
    let root = spans
        .iter()
        .find(|s| s.trace_id == trace_id && s.is_root() && s.service_name == "tilewave")
        .with_context(|| {
            let mine: Vec<_> = spans
                .iter()
                .filter(|s| s.trace_id == trace_id)
                .map(|s| (&s.service_name, &s.name, &s.parent_span_id))
                .collect();
            format!("no root span of the CLI in its trace: {mine:#?}")
        })?;
    let client = spans
        .iter()
        .find(|s| s.name == START && s.kind == Kind::Client && s.service_name == "tilewave")
        .context("the CLI's StartRollout client span")?;
    assert_eq!(client.trace_id, trace_id);
    let server = spans
        .iter()
        .find(|s| s.name == START && s.kind == Kind::Server)
        .context("the StartRollout server span")?;
    assert_eq!(server.service_name, "tilewave-rollout");
    assert!(server.is_child_of(client), "{server:#?}");
    // Up from the client span, parent by parent, to the CLI's root.
    let mut at = client;
    let mut hops = 0;
    while !at.is_root() {
        at = spans
            .iter()
            .find(|p| at.is_child_of(p))
            .with_context(|| format!("a parent of {at:#?}"))?;
        hops += 1;
        anyhow::ensure!(hops < 32, "no root above the client span");
    }
    assert_eq!(
        at.span_id, root.span_id,
        "the CLI's root span is the trace's root"
    );
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
