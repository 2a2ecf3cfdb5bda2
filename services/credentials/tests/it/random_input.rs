//! Property test: random and malformed messages to every RPC of the
//! credentials service (etcd and one service as processes, no tile, so
//! nothing is submitted or rotated and nothing writes behind the test's
//! back). No call may panic or hang the service (it answers a health check
//! afterwards), every refusal names its field or says why, and a refused
//! call leaves etcd as it was. `PROPTEST_CASES` changes the number of calls.

use std::time::Duration;

use proptest::prelude::*;
use prost::Message as _;
use tilewave_proto::common::v1::{LocalTime, PageRequest};
use tilewave_proto::credentials::v1::*;
use tilewave_testkit::rpc_fuzz::{self, Rpc, Seen, Unchanged, duration, int32, int64, protobuf, text, texts};

use crate::*;

/// Every RPC of the credentials service.
const RPCS: [Rpc; 10] = [
    Rpc::unary("/tilewave.credentials.v1.CredentialsService/SubmitCredential"),
    Rpc::unary("/tilewave.credentials.v1.CredentialsService/ListCredentials"),
    Rpc::unary("/tilewave.credentials.v1.CredentialsService/StartRotation"),
    Rpc::unary("/tilewave.credentials.v1.CredentialsService/GetRotation"),
    Rpc::unary("/tilewave.credentials.v1.CredentialsService/ListRotations"),
    Rpc::streaming("/tilewave.credentials.v1.CredentialsService/WatchRotation"),
    Rpc::unary("/tilewave.credentials.v1.CredentialsService/ConfirmOldRetired"),
    Rpc::unary("/tilewave.credentials.v1.CredentialsService/CancelRotation"),
    Rpc::unary("/tilewave.credentials.v1.CredentialsService/SetRotationSchedule"),
    Rpc::unary("/tilewave.credentials.v1.CredentialsService/Rewrap"),
];

const TILES: &[&str] = &["riverflow", "riverflow-ingest"];
const TEXTS: &[&str] = &["", "platform:s3cret", "hold on\nsee", "user:"];
const REGIONS: &[&str] = &["aws:us-east-1", "gcp:nowhere"];

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

fn local_time() -> BoxedStrategy<Option<LocalTime>> {
    proptest::option::of((int32(), int32()).prop_map(|(hour, minute)| LocalTime { hour, minute })).boxed()
}

fn typed(i: usize) -> BoxedStrategy<Vec<u8>> {
    let name = RPCS[i].name();
    match name {
        "SubmitCredential" => (text(TILES), int32(), text(TEXTS), text(TEXTS), any::<bool>())
            .prop_map(|(tile_id, kind, username, plaintext, generate)| {
                SubmitCredentialRequest {
                    tile_id,
                    kind,
                    username,
                    plaintext,
                    generate,
                    ..Default::default()
                }
                .encode_to_vec()
            })
            .boxed(),
        "ListCredentials" => (
            text(TILES),
            int32(),
            proptest::collection::vec(int32(), 0..3),
            page(),
        )
            .prop_map(|(tile_id, kind, stages, page)| {
                ListCredentialsRequest {
                    tile_id,
                    kind,
                    stages,
                    page,
                }
                .encode_to_vec()
            })
            .boxed(),
        "StartRotation" => (
            text(TILES),
            int32(),
            texts(REGIONS),
            any::<bool>(),
            int32(),
            duration(),
            int32(),
            duration(),
        )
            .prop_map(
                |(tile_id, kind, regions, emergency, concurrency, bake, retirement, grace)| {
                    StartRotationRequest {
                        tile_id,
                        kind,
                        regions,
                        emergency,
                        concurrency,
                        bake,
                        retirement,
                        grace,
                        ..Default::default()
                    }
                    .encode_to_vec()
                },
            )
            .boxed(),
        "GetRotation" | "WatchRotation" => (text(&["", "r-1"]), text(TILES), int32())
            .prop_map(|(id, tile_id, kind)| GetRotationRequest { id, tile_id, kind }.encode_to_vec())
            .boxed(),
        "ListRotations" => (text(TILES), proptest::collection::vec(int32(), 0..3), page())
            .prop_map(|(tile_id, states, page)| {
                ListRotationsRequest {
                    tile_id,
                    states,
                    page,
                }
                .encode_to_vec()
            })
            .boxed(),
        "ConfirmOldRetired" | "CancelRotation" => {
            (text(&["", "r-1"]), int64(), text(TEXTS), text(TILES), int32())
                .prop_map(|(rotation_id, etag, reason, tile_id, kind)| {
                    CancelRotationRequest {
                        rotation_id,
                        etag,
                        reason,
                        tile_id,
                        kind,
                    }
                    .encode_to_vec()
                })
                .boxed()
        }
        "SetRotationSchedule" => (
            text(TILES),
            int32(),
            local_time(),
            local_time(),
            text(&["", "UTC", "Mars/Base"]),
            int64(),
        )
            .prop_map(
                |(tile_id, every_days, window_start, window_end, time_zone, etag)| {
                    SetRotationScheduleRequest {
                        schedule: Some(RotationSchedule {
                            tile_id,
                            every_days,
                            window_start,
                            window_end,
                            time_zone,
                            ..Default::default()
                        }),
                        etag,
                    }
                    .encode_to_vec()
                },
            )
            .boxed(),
        // Rewrap with nothing stored changes nothing.
        _ => protobuf(),
    }
}

fn call() -> impl Strategy<Value = (usize, Vec<u8>)> {
    (0..RPCS.len()).prop_flat_map(|i| {
        let body = prop_oneof![3 => typed(i), 1 => protobuf()];
        (Just(i), body)
    })
}

#[test]
fn random_and_malformed_messages_to_every_rpc() -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    let (etcd, service, _dir) = rt.block_on(async {
        let dir = TestDir::new("credentials-random-input")?;
        let etcd = EtcdCluster::start(1).await?;
        let (text, _) = keyring_text(&["k1"])?;
        let kek = dir.path().join("kek");
        std::fs::write(&kek, text)?;
        let service = ServiceProcess::start(credentials_spec(&etcd, "credentials", &kek), dir.path()).await?;
        anyhow::Ok((etcd, service, dir))
    })?;
    let channel = rt.block_on(service.channel(RELEASE_ENGINEER))?;
    let owners = tilewave_store::Keys::new(PREFIX)?.owners();
    let mut runner = rpc_fuzz::runner();
    let seen = Seen::default();
    let result = runner.run(&call(), |(i, body)| {
        rt.block_on(rpc_fuzz::judge(
            Unchanged {
                etcd: &etcd,
                prefix: PREFIX,
                ignored: &[&owners],
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
    rt.block_on(tilewave_testkit::check_ready_with(
        service.addr(),
        Some(tilewave_credentials::server::HEALTH_SERVICE),
        service.tls(),
    ))?;
    eprintln!("{seen}");
    seen.every_rpc_answered(&RPCS)?;
    Ok(())
}
