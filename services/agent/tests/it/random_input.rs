//! Property test: random and malformed messages to every RPC of the agent
//! (etcd and one agent as processes, fault injection on). No call may
//! panic or hang the agent (it answers a health check afterwards, and no
//! answer is UNKNOWN, UNAVAILABLE or DEADLINE_EXCEEDED), every refusal
//! names its field or says why (`tilewave_testkit::rpc_fuzz::refusal_problem`),
//! and a refused call leaves etcd as it was (a full dump before and after,
//! apart from the agent's own registration under `agents/`).
//!
//! The faults a fault-injection call sets (latency, failing calls) would
//! make the next calls fail on purpose, so they are cleared after every
//! call to that service.
//!
//! `PROPTEST_CASES` changes the number of calls (default 512).

use std::time::Duration;

use proptest::prelude::*;
use prost::Message as _;
use tilewave_proto::agent::v1::install_credential_request::Secret;
use tilewave_proto::common::v1::PageRequest;
use tilewave_testkit::rpc_fuzz::{self, Rpc, Seen, Unchanged, duration, int32, int64, protobuf, text, texts};

use crate::*;

/// Every RPC of the agent.
const RPCS: [Rpc; 13] = [
    Rpc::unary("/tilewave.agent.v1.AgentService/ApplyTile"),
    Rpc::unary("/tilewave.agent.v1.AgentService/RemoveTile"),
    Rpc::unary("/tilewave.agent.v1.AgentService/ListTiles"),
    Rpc::unary("/tilewave.agent.v1.AgentService/Health"),
    Rpc::unary("/tilewave.agent.v1.AgentService/InstallCredential"),
    Rpc::unary("/tilewave.agent.v1.AgentService/VerifyCredential"),
    Rpc::unary("/tilewave.agent.v1.FaultInjectionService/InjectLatency"),
    Rpc::unary("/tilewave.agent.v1.FaultInjectionService/FailNextCalls"),
    Rpc::unary("/tilewave.agent.v1.FaultInjectionService/ReportUnhealthy"),
    Rpc::unary("/tilewave.agent.v1.FaultInjectionService/LoseCatalog"),
    Rpc::unary("/tilewave.agent.v1.FaultInjectionService/RefuseToStart"),
    Rpc::unary("/tilewave.agent.v1.FaultInjectionService/ClearFaults"),
    Rpc::unary("/tilewave.agent.v1.FaultInjectionService/GetFaults"),
];

/// Values that get a call past its first check.
const TILES: &[&str] = &["riverflow-ingest", "lumen-bi"];
const ROLLOUT_IDS: &[&str] = &["riverflow-ingest-1", "r-1"];
const METHODS: &[&str] = &["ApplyTile", "Health", "ListTiles"];
const TEXTS: &[&str] = &["", "p99 up", "platform"];
const FINGERPRINTS: &[&str] = &["sha256:00", ""];
const CREDENTIAL_IDS: &[&str] = &["riverflow-ingest/basic/1", ""];
const KEK_IDS: &[&str] = &["test-kek", "other-kek", ""];

/// A request's secret: none, plain text, or an envelope with random fields
/// (a known or unknown KEK id).
fn credential_secret() -> BoxedStrategy<Option<Secret>> {
    prop_oneof![
        Just(None),
        text(TEXTS).prop_map(|p| Some(Secret::Plaintext(p))),
        (
            text(KEK_IDS),
            proptest::collection::vec(any::<u8>(), 0..64),
            proptest::collection::vec(any::<u8>(), 0..16),
            proptest::collection::vec(any::<u8>(), 0..64),
        )
            .prop_map(|(kek_id, wrapped_dek, nonce, ciphertext)| {
                Some(Secret::Encrypted(
                    tilewave_proto::credentials::v1::EncryptedSecret {
                        kek_id,
                        dek_nonce: nonce.clone(),
                        wrapped_dek,
                        nonce,
                        ciphertext,
                    },
                ))
            }),
    ]
    .boxed()
}

/// How long one answer may take on a busy machine.
const ANSWER: Duration = Duration::from_secs(15);

fn page() -> BoxedStrategy<Option<PageRequest>> {
    proptest::option::of(
        (int32(), text(&["", "0", "100", "x"])).prop_map(|(page_size, page_token)| PageRequest {
            page_size,
            page_token,
        }),
    )
    .boxed()
}

/// A partner configuration: riverflow's (whose host is never contacted),
/// one with random names, or none.
fn partner_config() -> BoxedStrategy<Option<tilewave_proto::common::v1::PartnerConfig>> {
    prop_oneof![
        Just(None),
        Just(Some(config("https://api.riverflow.example", "/test-connection"))),
        (
            text(TEXTS),
            text(&["https://api.riverflow.example"]),
            text(&["/test-connection"])
        )
            .prop_map(|(name, base, path)| {
                let mut c = config(&base, &path);
                c.name = name;
                Some(c)
            }),
    ]
    .boxed()
}

/// A typed request for RPC `i`, with random fields, encoded.
fn typed(i: usize) -> BoxedStrategy<Vec<u8>> {
    match RPCS[i].name() {
        "ApplyTile" => (
            text(TILES),
            int64(),
            partner_config(),
            int64(),
            text(ROLLOUT_IDS),
            proptest::option::of(any::<bool>()),
            any::<bool>(),
        )
            .prop_map(
                |(tile_id, revision, config, fencing_token, rollout_id, hidden, probe_after)| {
                    ApplyTileRequest {
                        tile_id,
                        revision,
                        config,
                        fencing_token,
                        rollout_id,
                        hidden,
                        probe_after,
                    }
                    .encode_to_vec()
                },
            )
            .boxed(),
        "RemoveTile" => (text(TILES), int64(), text(ROLLOUT_IDS))
            .prop_map(|(tile_id, fencing_token, rollout_id)| {
                RemoveTileRequest {
                    tile_id,
                    fencing_token,
                    rollout_id,
                }
                .encode_to_vec()
            })
            .boxed(),
        "ListTiles" => page()
            .prop_map(|page| ListTilesRequest { page }.encode_to_vec())
            .boxed(),
        // probe_now stays off: a probe would reach out to the partner.
        "Health" => texts(TILES)
            .prop_map(|tile_ids| {
                HealthRequest {
                    tile_ids,
                    probe_now: false,
                }
                .encode_to_vec()
            })
            .boxed(),
        "InstallCredential" => (
            text(TILES),
            int32(),
            text(FINGERPRINTS),
            text(TEXTS),
            int32(),
            credential_secret(),
            int64(),
            text(CREDENTIAL_IDS),
            proptest::option::of(text(TEXTS)),
        )
            .prop_map(
                |(
                    tile_id,
                    kind,
                    fingerprint,
                    username,
                    slot,
                    secret,
                    fencing_token,
                    credential_id,
                    base_url,
                )| {
                    InstallCredentialRequest {
                        tile_id,
                        kind,
                        fingerprint,
                        username,
                        slot,
                        secret,
                        fencing_token,
                        credential_id,
                        partner: base_url.map(|base_url| tilewave_proto::common::v1::PartnerConfig {
                            base_url,
                            ..Default::default()
                        }),
                    }
                    .encode_to_vec()
                },
            )
            .boxed(),
        "VerifyCredential" => (text(TILES), text(FINGERPRINTS))
            .prop_map(|(tile_id, fingerprint)| {
                VerifyCredentialRequest { tile_id, fingerprint }.encode_to_vec()
            })
            .boxed(),
        "InjectLatency" => (duration(), texts(METHODS))
            .prop_map(|(latency, methods)| InjectLatencyRequest { latency, methods }.encode_to_vec())
            .boxed(),
        "FailNextCalls" => (int32(), texts(METHODS), int32(), text(TEXTS))
            .prop_map(|(count, methods, code, message)| {
                FailNextCallsRequest {
                    count,
                    methods,
                    code,
                    message,
                }
                .encode_to_vec()
            })
            .boxed(),
        "ReportUnhealthy" => (text(TILES), any::<bool>(), any::<f64>(), text(TEXTS))
            .prop_map(|(tile_id, unhealthy, error_rate, message)| {
                ReportUnhealthyRequest {
                    tile_id,
                    unhealthy,
                    error_rate,
                    message,
                }
                .encode_to_vec()
            })
            .boxed(),
        // LoseCatalog, RefuseToStart, ClearFaults and GetFaults take
        // nothing: random fields.
        _ => protobuf(),
    }
}

/// One call: an RPC and its body, typed with random fields or random
/// wire-format bytes.
fn call() -> impl Strategy<Value = (usize, Vec<u8>)> {
    (0..RPCS.len()).prop_flat_map(|i| {
        let body = prop_oneof![3 => typed(i), 1 => protobuf()];
        (Just(i), body)
    })
}

#[test]
fn random_and_malformed_messages_to_every_rpc() -> Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    // With a KEK, so that InstallCredential gets past its first check.
    let stack = rt.block_on(Stack::start_with_kek())?;
    let channel = rt.block_on(stack.channel(CALLER))?;
    let mut faults = FaultInjectionServiceClient::new(channel.clone());

    let registration = tilewave_store::Keys::new(PREFIX)?.agents();
    let mut runner = rpc_fuzz::runner();
    let cases = runner.config().cases;
    let started = tokio::time::Instant::now();
    let seen = Seen::default();
    let result = runner.run(&call(), |(i, body)| {
        rt.block_on(async {
            let judged = rpc_fuzz::judge(
                Unchanged {
                    etcd: &stack.etcd,
                    prefix: PREFIX,
                    // The agent's registration, kept alive on its own.
                    ignored: &[&registration],
                },
                channel.clone(),
                RPCS[i],
                body,
                &seen,
                ANSWER,
            )
            .await;
            if RPCS[i].path.contains("FaultInjectionService") {
                faults
                    .clone()
                    .clear_faults(ClearFaultsRequest {})
                    .await
                    .map_err(|e| proptest::test_runner::TestCaseError::fail(format!("ClearFaults: {e:?}")))?;
            }
            judged
        })
    });
    if let Err(e) = result {
        anyhow::bail!("{e}");
    }
    // Still serving: a panic in a handler must not have taken it down.
    rt.block_on(async {
        faults.clear_faults(ClearFaultsRequest {}).await?;
        tilewave_testkit::check_ready_with(
            stack.agent.addr(),
            Some(tilewave_agent::HEALTH_SERVICE),
            stack.agent.tls(),
        )
        .await
    })?;
    eprintln!("{cases} cases in {:?}:\n{seen}", started.elapsed());
    seen.every_rpc_answered(&RPCS)?;
    Ok(())
}
