//! Property test: random and malformed messages to every RPC of the
//! registry. No call may panic or hang the service (it answers a health
//! check afterwards, and no answer is UNKNOWN, UNAVAILABLE or
//! DEADLINE_EXCEEDED), every refusal names its field or says why
//! (`tilewave_testkit::rpc_fuzz::refusal_problem`), and a refused call
//! leaves etcd exactly as it was (a full dump before and after).
//!
//! `PROPTEST_CASES` changes the number of calls (default 512).

use std::time::Duration;

use proptest::prelude::*;
use prost::Message as _;
use tilewave_proto::common::v1::{PageRequest, PartnerConfig, TimeRange};
use tilewave_testkit::rpc_fuzz::{
    self, Rpc, Seen, Unchanged, int32, int64, protobuf, text, texts, timestamp,
};

use crate::*;

const SERVICE: &str = "/tilewave.registry.v1.RegistryService/";

/// Every RPC of the registry.
const RPCS: [Rpc; 15] = [
    Rpc::unary("/tilewave.registry.v1.RegistryService/CreateTile"),
    Rpc::unary("/tilewave.registry.v1.RegistryService/ImportPartnerConfig"),
    Rpc::unary("/tilewave.registry.v1.RegistryService/UpdateTile"),
    Rpc::unary("/tilewave.registry.v1.RegistryService/GetTile"),
    Rpc::unary("/tilewave.registry.v1.RegistryService/ListTiles"),
    Rpc::streaming("/tilewave.registry.v1.RegistryService/WatchTiles"),
    Rpc::unary("/tilewave.registry.v1.RegistryService/GetHistory"),
    Rpc::unary("/tilewave.registry.v1.RegistryService/RecordSignOff"),
    Rpc::unary("/tilewave.registry.v1.RegistryService/WithdrawSignOff"),
    Rpc::unary("/tilewave.registry.v1.RegistryService/SetTestWorkspace"),
    Rpc::unary("/tilewave.registry.v1.RegistryService/SetGaDate"),
    Rpc::unary("/tilewave.registry.v1.RegistryService/AdvanceLifecycle"),
    Rpc::unary("/tilewave.registry.v1.RegistryService/Withdraw"),
    Rpc::unary("/tilewave.registry.v1.RegistryService/RecordValidation"),
    Rpc::unary("/tilewave.registry.v1.RegistryService/SetGtmItem"),
];

/// Values that get a call past its first check.
const IDS: &[&str] = &["riverflow-ingest", "lumen-bi", "quarry-self-test"];
const WORKSPACES: &[&str] = &["6051921418418893", "1"];
const REGIONS: &[&str] = &["aws:us-east-1", "gcp:europe-west1"];
const TEXTS: &[&str] = &["", "looks good", "rolled back: p99 up\nsee the dashboard"];
const CASES: &[&str] = &["P100", "p900", "P999", "", "P405 "];
const GTM_ITEMS: &[&str] = &["mini-site", "logo", "blog", "docs", "agreement", "press"];
const OWNERS: &[&str] = &["", "partner-marketing"];
const DUES: &[&str] = &["", "2026-12-01", "2026-13-01", "12/01/2026"];
const LINKS: &[&str] = &[
    "",
    "https://partner.example/blog",
    "http://partner.example",
    "not a url",
];
const DOCS: &[&str] = &[RIVERFLOW, LUMEN, QUARRY, BROKEN, "{}", "null", "{\"name\": 1}"];

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

fn maintenance() -> BoxedStrategy<Option<MaintenanceInfo>> {
    proptest::option::of(
        (
            proptest::collection::vec(int32(), 0..3),
            texts(REGIONS),
            timestamp(),
            text(TEXTS),
        )
            .prop_map(
                |(affected_clouds, affected_regions, target_time, summary)| MaintenanceInfo {
                    affected_clouds,
                    affected_regions,
                    target_time,
                    summary,
                },
            ),
    )
    .boxed()
}

fn config(sample: PartnerConfig) -> BoxedStrategy<Option<PartnerConfig>> {
    prop_oneof![
        Just(None),
        Just(Some(sample.clone())),
        (
            text(IDS),
            text(&["https://example.com"]),
            texts(&["example.com"]),
            int32()
        )
            .prop_map(move |(name, base_url, hostnames, category)| Some(PartnerConfig {
                name,
                base_url,
                hostnames,
                category,
                ..sample.clone()
            })),
    ]
    .boxed()
}

/// A typed request for RPC `i`, with random fields, encoded.
fn typed(i: usize, sample: PartnerConfig) -> BoxedStrategy<Vec<u8>> {
    let id = || text(IDS);
    match RPCS[i].name() {
        "CreateTile" => (
            id(),
            id(),
            config(sample),
            any::<bool>(),
            text(WORKSPACES),
            any::<bool>(),
        )
            .prop_map(|(id, partner_id, config, self_test, workspace_id, dry_run)| {
                CreateTileRequest {
                    id,
                    partner_id,
                    config,
                    self_test,
                    workspace_id,
                    dry_run,
                }
                .encode_to_vec()
            })
            .boxed(),
        "ImportPartnerConfig" => (
            text(DOCS),
            id(),
            id(),
            text(WORKSPACES),
            any::<bool>(),
            int64(),
            text(TEXTS),
            maintenance(),
        )
            .prop_map(
                |(config_json, id, partner_id, workspace_id, dry_run, etag, note, maintenance)| {
                    ImportPartnerConfigRequest {
                        config_json,
                        id,
                        partner_id,
                        workspace_id,
                        dry_run,
                        etag,
                        note,
                        maintenance,
                    }
                    .encode_to_vec()
                },
            )
            .boxed(),
        "UpdateTile" => (
            id(),
            int64(),
            text(DOCS),
            config(sample),
            any::<bool>(),
            text(TEXTS),
            maintenance(),
            any::<bool>(),
            id(),
        )
            .prop_map(
                |(id, etag, json, config, typed, note, maintenance, dry_run, partner_id)| {
                    let source = if typed {
                        config.map(update_tile_request::Source::Config)
                    } else {
                        Some(update_tile_request::Source::ConfigJson(json))
                    };
                    UpdateTileRequest {
                        id,
                        etag,
                        source,
                        note,
                        maintenance,
                        dry_run,
                        partner_id,
                    }
                    .encode_to_vec()
                },
            )
            .boxed(),
        "GetTile" => (id(), int64())
            .prop_map(|(id, revision)| GetTileRequest { id, revision }.encode_to_vec())
            .boxed(),
        "ListTiles" => (
            proptest::collection::vec(int32(), 0..4),
            id(),
            int32(),
            int32(),
            any::<bool>(),
            any::<bool>(),
            page(),
        )
            .prop_map(
                |(states, partner_id, cloud, category, include_self_test, include_raw_config, page)| {
                    ListTilesRequest {
                        states,
                        partner_id,
                        cloud,
                        category,
                        include_self_test,
                        include_raw_config,
                        page,
                    }
                    .encode_to_vec()
                },
            )
            .boxed(),
        "WatchTiles" => (int64(), id(), any::<bool>())
            .prop_map(|(start_revision, tile_id, include_raw_config)| {
                WatchTilesRequest {
                    start_revision,
                    tile_id,
                    include_raw_config,
                }
                .encode_to_vec()
            })
            .boxed(),
        "GetHistory" => (
            id(),
            int64(),
            proptest::option::of((timestamp(), timestamp())),
            page(),
        )
            .prop_map(|(id, revision, range, page)| {
                GetHistoryRequest {
                    id,
                    revision,
                    range: range.map(|(start, end)| TimeRange { start, end }),
                    page,
                }
                .encode_to_vec()
            })
            .boxed(),
        "RecordSignOff" => (id(), int32(), int64(), text(TEXTS), int64())
            .prop_map(|(id, role, revision, note, etag)| {
                RecordSignOffRequest {
                    id,
                    role,
                    revision,
                    note,
                    etag,
                }
                .encode_to_vec()
            })
            .boxed(),
        "WithdrawSignOff" => (id(), int32(), int64(), text(TEXTS), int64())
            .prop_map(|(id, role, revision, reason, etag)| {
                WithdrawSignOffRequest {
                    id,
                    role,
                    revision,
                    reason,
                    etag,
                }
                .encode_to_vec()
            })
            .boxed(),
        "SetTestWorkspace" => (id(), text(WORKSPACES), int64())
            .prop_map(|(id, workspace_id, etag)| {
                SetTestWorkspaceRequest {
                    id,
                    workspace_id,
                    etag,
                }
                .encode_to_vec()
            })
            .boxed(),
        "SetGaDate" => (
            id(),
            timestamp(),
            int64(),
            text(TEXTS),
            int32(),
            text(&["", "partner asked"]),
        )
            .prop_map(|(id, ga_time, etag, reason, slot_capacity, gtm_override)| {
                SetGaDateRequest {
                    id,
                    ga_time,
                    etag,
                    reason,
                    slot_capacity,
                    gtm_override,
                }
                .encode_to_vec()
            })
            .boxed(),
        "AdvanceLifecycle" => (id(), int32(), int64(), text(TEXTS), text(&["", "r-1"]), int64())
            .prop_map(
                |(id, target_state, expected_revision, reason, rollout_id, etag)| {
                    AdvanceLifecycleRequest {
                        id,
                        target_state,
                        expected_revision,
                        reason,
                        rollout_id,
                        etag,
                    }
                    .encode_to_vec()
                },
            )
            .boxed(),
        "RecordValidation" => (
            id(),
            int64(),
            texts(CASES),
            any::<bool>(),
            int32(),
            text(TEXTS),
            text(&["", "quarry-self-test", "riverflow-ingest", "nope"]),
            int64(),
            int64(),
        )
            .prop_map(
                |(
                    id,
                    revision,
                    case_ids,
                    all_open,
                    outcome,
                    note,
                    evidence_tile,
                    evidence_revision,
                    etag,
                )| {
                    RecordValidationRequest {
                        id,
                        revision,
                        case_ids,
                        all_open,
                        outcome,
                        note,
                        evidence_tile,
                        evidence_revision,
                        etag,
                    }
                    .encode_to_vec()
                },
            )
            .boxed(),
        "SetGtmItem" => (
            id(),
            text(GTM_ITEMS),
            int32(),
            text(OWNERS),
            text(DUES),
            text(LINKS),
            int64(),
        )
            .prop_map(|(id, item, status, owner, due, link, etag)| {
                SetGtmItemRequest {
                    id,
                    item,
                    status,
                    owner,
                    due,
                    link,
                    etag,
                }
                .encode_to_vec()
            })
            .boxed(),
        _ => (id(), int64(), text(TEXTS))
            .prop_map(|(id, etag, reason)| WithdrawRequest { id, etag, reason }.encode_to_vec())
            .boxed(),
    }
}

/// One call: an RPC and its body, typed with random fields or random
/// wire-format bytes.
fn call(sample: PartnerConfig) -> impl Strategy<Value = (usize, Vec<u8>)> {
    (0..RPCS.len()).prop_flat_map(move |i| {
        let body = prop_oneof![3 => typed(i, sample.clone()), 1 => protobuf()];
        (Just(i), body)
    })
}

#[test]
fn random_and_malformed_messages_to_every_rpc() -> Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    let stack = rt.block_on(Stack::start(1))?;
    let sample = rt.block_on(async {
        let mut c = stack.client(0).await?;
        import(&mut c, RIVERFLOW, "").await?;
        import(&mut c, QUARRY, "6051921418418893").await?;
        let lumen = c
            .import_partner_config(ImportPartnerConfigRequest {
                config_json: LUMEN.into(),
                dry_run: true,
                ..Default::default()
            })
            .await?
            .into_inner();
        anyhow::Ok(lumen.tile.and_then(|t| t.config).unwrap_or_default())
    })?;
    let channel = rt.block_on(stack.replicas[0].channel(RELEASE_ENGINEER))?;
    assert!(RPCS.iter().all(|r| r.path.starts_with(SERVICE)));

    let mut runner = rpc_fuzz::runner();
    let cases = runner.config().cases;
    let started = tokio::time::Instant::now();
    let seen = Seen::default();
    let result = runner.run(&call(sample), |(i, body)| {
        rt.block_on(rpc_fuzz::judge(
            Unchanged {
                etcd: &stack.etcd,
                prefix: PREFIX,
                ignored: &[],
            },
            channel.clone(),
            RPCS[i],
            body,
            &seen,
            ANSWER,
        ))
    });
    if let Err(e) = result {
        anyhow::bail!("{e}");
    }
    // Still serving: a panic in a handler must not have taken it down.
    rt.block_on(tilewave_testkit::check_ready_with(
        stack.replicas[0].addr(),
        Some(tilewave_registry::HEALTH_SERVICE),
        stack.replicas[0].tls(),
    ))?;
    eprintln!("{cases} cases in {:?}:\n{seen}", started.elapsed());
    seen.every_rpc_answered(&RPCS)?;
    Ok(())
}
