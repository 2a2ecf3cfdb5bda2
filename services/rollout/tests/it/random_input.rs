//! Property test: random and malformed messages to every RPC of the
//! rollout service and of the virtual clock it serves (etcd, the registry and one rollout replica as
//! processes; no agents, so no roll-out starts and nothing writes behind
//! the test's back). No call may panic or hang the service (it answers a
//! health check afterwards, and no answer is UNKNOWN, UNAVAILABLE or
//! DEADLINE_EXCEEDED), every refusal names its field or says why
//! (`tilewave_testkit::rpc_fuzz::refusal_problem`), and a refused call
//! leaves etcd as it was (a full dump before and after, apart from the
//! replica's work claims under `owners/`, which its reconciler takes afresh
//! on every pass).
//!
//! `PROPTEST_CASES` changes the number of calls (default 512).

use std::time::Duration;

use proptest::prelude::*;
use prost::Message as _;
use tilewave_proto::common::v1::{PageRequest, TimeRange};
use tilewave_proto::rollout::v1::*;
use tilewave_testkit::rpc_fuzz::{
    self, Rpc, Seen, Unchanged, duration, int32, int64, protobuf, text, texts, timestamp,
};

use crate::*;

/// Every RPC of the rollout service and the clock.
const RPCS: [Rpc; 25] = [
    Rpc::unary("/tilewave.rollout.v1.RolloutService/PlanRollout"),
    Rpc::unary("/tilewave.rollout.v1.RolloutService/StartRollout"),
    Rpc::unary("/tilewave.rollout.v1.RolloutService/GetRollout"),
    Rpc::unary("/tilewave.rollout.v1.RolloutService/ListRollouts"),
    Rpc::streaming("/tilewave.rollout.v1.RolloutService/WatchRollout"),
    Rpc::unary("/tilewave.rollout.v1.RolloutService/PauseRollout"),
    Rpc::unary("/tilewave.rollout.v1.RolloutService/ResumeRollout"),
    Rpc::unary("/tilewave.rollout.v1.RolloutService/AbortRollout"),
    Rpc::unary("/tilewave.rollout.v1.RolloutService/RollbackRollout"),
    Rpc::unary("/tilewave.rollout.v1.RolloutService/RetryRegion"),
    Rpc::unary("/tilewave.rollout.v1.RolloutService/SkipRegion"),
    Rpc::unary("/tilewave.rollout.v1.RolloutService/Approve"),
    Rpc::unary("/tilewave.rollout.v1.RolloutService/WhereIsTile"),
    Rpc::unary("/tilewave.rollout.v1.RolloutService/SetFreeze"),
    Rpc::unary("/tilewave.rollout.v1.RolloutService/GetFreeze"),
    Rpc::unary("/tilewave.rollout.v1.RolloutService/ScheduleGa"),
    Rpc::unary("/tilewave.rollout.v1.RolloutService/ListLaunches"),
    Rpc::unary("/tilewave.rollout.v1.RolloutService/SetLaunchCalendar"),
    Rpc::unary("/tilewave.rollout.v1.RolloutService/GetLaunchCalendar"),
    Rpc::unary("/tilewave.rollout.v1.RolloutService/EditLaunchCalendar"),
    Rpc::unary("/tilewave.rollout.v1.RolloutService/HoldLaunch"),
    Rpc::unary("/tilewave.clock.v1.ClockService/GetTime"),
    Rpc::unary("/tilewave.clock.v1.ClockService/Advance"),
    Rpc::unary("/tilewave.clock.v1.ClockService/Set"),
    Rpc::unary("/tilewave.clock.v1.ClockService/SetRate"),
];

/// Values that get a call past its first check.
const TILES: &[&str] = &["riverflow-ingest", "lumen-bi"];
const ROLLOUT_IDS: &[&str] = &["riverflow-ingest-1", "r-1"];
const REGION_IDS: &[&str] = &["aws:us-east-1", "gcp:europe-west1", "azure:westeurope"];
const TEXTS: &[&str] = &["", "p99 up", "hold on\nsee the dashboard"];

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

fn blackout() -> BoxedStrategy<BlackoutWindow> {
    (
        text(TEXTS),
        texts(REGION_IDS),
        proptest::option::of((timestamp(), timestamp())),
    )
        .prop_map(|(name, regions, once)| BlackoutWindow {
            name,
            regions,
            when: once.map(|(start, end)| blackout_window::When::Once(TimeRange { start, end })),
        })
        .boxed()
}

fn spec() -> BoxedStrategy<Option<RolloutSpec>> {
    let lists = (
        texts(REGION_IDS),
        texts(REGION_IDS),
        proptest::collection::vec(duration(), 0..3),
        proptest::collection::vec(texts(REGION_IDS), 0..3),
        proptest::collection::vec(int32(), 0..3),
        proptest::collection::vec(blackout(), 0..2),
    );
    let scalars = (
        text(TILES),
        int64(),
        int32(),
        duration(),
        duration(),
        int32(),
        int32(),
        timestamp(),
        timestamp(),
        int32(),
    );
    proptest::option::of((lists, scalars).prop_map(
        |(
            (regions, exclude_regions, bakes, waves, hold_after_waves, blackouts),
            (
                tile_id,
                revision,
                kind,
                apply_time,
                bake,
                concurrency,
                wave_growth,
                earliest_start,
                deadline,
                on_failure,
            ),
        )| RolloutSpec {
            tile_id,
            revision,
            kind,
            regions,
            exclude_regions,
            apply_time,
            bake,
            bake_per_wave: bakes.into_iter().flatten().collect(),
            concurrency,
            waves: waves.into_iter().map(|regions| Wave { regions }).collect(),
            wave_growth,
            hold_after_waves,
            blackouts,
            earliest_start,
            deadline,
            on_failure,
            ga_preview: None,
        },
    ))
    .boxed()
}

const ZONES: &[&str] = &[
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Mars/Olympus_Mons",
    "",
];

fn launch_rule() -> BoxedStrategy<LaunchRule> {
    (
        text(TEXTS),
        proptest::collection::vec(int32(), 0..4),
        proptest::option::of((int32(), int32())),
        text(ZONES),
        int32(),
    )
        .prop_map(|(name, weekdays, time, time_zone, capacity)| LaunchRule {
            name,
            weekdays,
            time: time.map(|(hour, minute)| tilewave_proto::common::v1::LocalTime { hour, minute }),
            time_zone,
            capacity,
        })
        .boxed()
}

fn launch_blackout() -> BoxedStrategy<LaunchBlackout> {
    (timestamp(), timestamp(), text(TEXTS))
        .prop_map(|(start, end, reason)| LaunchBlackout { start, end, reason })
        .boxed()
}

fn extra_slot() -> BoxedStrategy<ExtraLaunchSlot> {
    (timestamp(), int32(), text(TEXTS))
        .prop_map(|(at, capacity, name)| ExtraLaunchSlot { at, capacity, name })
        .boxed()
}

fn launch_calendar() -> BoxedStrategy<Option<LaunchCalendar>> {
    proptest::option::of(
        (
            proptest::collection::vec(launch_rule(), 0..3),
            proptest::collection::vec(launch_blackout(), 0..3),
            proptest::collection::vec(extra_slot(), 0..3),
        )
            .prop_map(|(rules, blackouts, extra_slots)| LaunchCalendar {
                rules,
                blackouts,
                extra_slots,
                ..Default::default()
            }),
    )
    .boxed()
}

fn calendar_edit() -> BoxedStrategy<Option<edit_launch_calendar_request::Edit>> {
    use edit_launch_calendar_request::Edit;
    proptest::option::of(prop_oneof![
        launch_rule().prop_map(Edit::AddRule),
        launch_blackout().prop_map(Edit::AddBlackout),
        extra_slot().prop_map(Edit::AddExtraSlot),
        (int32(), int32()).prop_map(|(kind, index)| Edit::Remove(RemoveCalendarItem { kind, index })),
    ])
    .boxed()
}

/// A typed request for RPC `i`, with random fields, encoded.
fn typed(i: usize) -> BoxedStrategy<Vec<u8>> {
    let id = || text(ROLLOUT_IDS);
    let reason = || text(TEXTS);
    match RPCS[i].name() {
        "PlanRollout" => spec()
            .prop_map(|spec| PlanRolloutRequest { spec }.encode_to_vec())
            .boxed(),
        "StartRollout" => (spec(), any::<bool>(), text(&["", "req-1"]))
            .prop_map(|(spec, accept_late, request_id)| {
                StartRolloutRequest {
                    spec,
                    accept_late,
                    request_id,
                }
                .encode_to_vec()
            })
            .boxed(),
        "GetRollout" => (id(), text(TILES))
            .prop_map(|(id, tile_id)| GetRolloutRequest { id, tile_id }.encode_to_vec())
            .boxed(),
        "ListRollouts" => (
            text(TILES),
            proptest::collection::vec(int32(), 0..4),
            int32(),
            proptest::option::of((timestamp(), timestamp())),
            page(),
        )
            .prop_map(|(tile_id, states, kind, created, page)| {
                ListRolloutsRequest {
                    tile_id,
                    states,
                    kind,
                    created: created.map(|(start, end)| TimeRange { start, end }),
                    page,
                }
                .encode_to_vec()
            })
            .boxed(),
        "WatchRollout" => (id(), text(TILES), int64())
            .prop_map(|(id, tile_id, start_revision)| {
                WatchRolloutRequest {
                    id,
                    tile_id,
                    start_revision,
                }
                .encode_to_vec()
            })
            .boxed(),
        "PauseRollout" => (id(), int64(), reason())
            .prop_map(|(id, etag, reason)| PauseRolloutRequest { id, etag, reason }.encode_to_vec())
            .boxed(),
        "ResumeRollout" => (id(), int64(), duration(), int32(), any::<bool>(), any::<bool>())
            .prop_map(|(id, etag, bake, concurrency, retry_failed, dry_run)| {
                ResumeRolloutRequest {
                    id,
                    etag,
                    bake,
                    concurrency,
                    retry_failed,
                    dry_run,
                }
                .encode_to_vec()
            })
            .boxed(),
        "AbortRollout" => (id(), int64(), reason())
            .prop_map(|(id, etag, reason)| AbortRolloutRequest { id, etag, reason }.encode_to_vec())
            .boxed(),
        "RollbackRollout" => (id(), int64(), reason(), texts(REGION_IDS))
            .prop_map(|(id, etag, reason, regions)| {
                RollbackRolloutRequest {
                    id,
                    etag,
                    reason,
                    regions,
                }
                .encode_to_vec()
            })
            .boxed(),
        "RetryRegion" => (id(), text(REGION_IDS), int64())
            .prop_map(|(id, region, etag)| RetryRegionRequest { id, region, etag }.encode_to_vec())
            .boxed(),
        "SkipRegion" => (id(), text(REGION_IDS), int64(), reason())
            .prop_map(|(id, region, etag, reason)| {
                SkipRegionRequest {
                    id,
                    region,
                    etag,
                    reason,
                }
                .encode_to_vec()
            })
            .boxed(),
        "Approve" => (id(), int32(), int64(), reason())
            .prop_map(|(id, wave, etag, note)| ApproveRequest { id, wave, etag, note }.encode_to_vec())
            .boxed(),
        "WhereIsTile" => (text(TILES), texts(REGION_IDS), page())
            .prop_map(|(tile_id, regions, page)| {
                WhereIsTileRequest {
                    tile_id,
                    regions,
                    page,
                }
                .encode_to_vec()
            })
            .boxed(),
        "SetFreeze" => (any::<bool>(), reason(), timestamp(), int64())
            .prop_map(|(active, reason, until, etag)| {
                SetFreezeRequest {
                    active,
                    reason,
                    until,
                    etag,
                }
                .encode_to_vec()
            })
            .boxed(),
        "ScheduleGa" => (
            (text(TILES), any::<bool>(), timestamp(), spec()),
            (int64(), reason(), any::<bool>(), any::<bool>()),
        )
            .prop_map(
                |((tile_id, commit, not_before, spec), (tile_etag, gtm_override, reschedule, all_ready))| {
                    ScheduleGaRequest {
                        tile_id,
                        commit,
                        not_before,
                        spec,
                        tile_etag,
                        gtm_override,
                        reschedule,
                        all_ready,
                    }
                    .encode_to_vec()
                },
            )
            .boxed(),
        "ListLaunches" => (proptest::option::of((timestamp(), timestamp())), page())
            .prop_map(|(range, page)| {
                ListLaunchesRequest {
                    range: range.map(|(start, end)| TimeRange { start, end }),
                    page,
                }
                .encode_to_vec()
            })
            .boxed(),
        "HoldLaunch" => (text(TILES), any::<bool>(), reason(), int64())
            .prop_map(|(tile_id, hold, reason, etag)| {
                HoldLaunchRequest {
                    tile_id,
                    hold,
                    reason,
                    etag,
                }
                .encode_to_vec()
            })
            .boxed(),
        "SetLaunchCalendar" => (launch_calendar(), int64())
            .prop_map(|(calendar, etag)| SetLaunchCalendarRequest { calendar, etag }.encode_to_vec())
            .boxed(),
        "GetLaunchCalendar" => int32()
            .prop_map(|upcoming| GetLaunchCalendarRequest { upcoming }.encode_to_vec())
            .boxed(),
        "EditLaunchCalendar" => (calendar_edit(), int64())
            .prop_map(|(edit, etag)| EditLaunchCalendarRequest { etag, edit }.encode_to_vec())
            .boxed(),
        "Advance" => duration()
            .prop_map(|by| tilewave_proto::clock::v1::AdvanceRequest { by }.encode_to_vec())
            .boxed(),
        "Set" => timestamp()
            .prop_map(|to| tilewave_proto::clock::v1::SetRequest { to }.encode_to_vec())
            .boxed(),
        "SetRate" => prop_oneof![
            any::<f64>(),
            Just(0.0),
            Just(1.0),
            Just(10_000.0),
            Just(-1.0),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::MAX),
        ]
        .prop_map(|rate| tilewave_proto::clock::v1::SetRateRequest { rate }.encode_to_vec())
        .boxed(),
        // GetFreeze and GetTime take nothing: random fields for them.
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
    let dir = TestDir::new("rollout-random-input")?;
    let (etcd, registry, rollout) = rt.block_on(async {
        let etcd = EtcdCluster::start(1).await?;
        let endpoints = etcd.endpoints().join(",");
        let store = etcd.store(PREFIX).await?;
        VirtualClock::start(&store, t0(), 0.0, &Actor::new("test")).await?;
        let registry = ServiceProcess::start(
            ServiceSpec::new("registry", bin_path("tilewave-registry")?)
                .with_args(["--etcd", &endpoints, "--prefix", PREFIX])
                .with_health_service(Some("tilewave.registry.v1.RegistryService")),
            dir.path(),
        )
        .await?;
        let rollout = start_rollout_replica_with(&dir, &endpoints, &registry.endpoint(), 0, &[]).await?;
        let mut c = RegistryServiceClient::new(registry.channel(RELEASE_ENGINEER).await?);
        c.import_partner_config(ImportPartnerConfigRequest {
            config_json: RIVERFLOW.into(),
            ..Default::default()
        })
        .await?;
        anyhow::Ok((etcd, registry, rollout))
    })?;
    let channel = rt.block_on(rollout.channel(RELEASE_ENGINEER))?;

    let owners = tilewave_store::Keys::new(PREFIX)?.owners();
    let mut runner = rpc_fuzz::runner();
    let cases = runner.config().cases;
    let started = tokio::time::Instant::now();
    let seen = Seen::default();
    let result = runner.run(&call(), |(i, body)| {
        rt.block_on(rpc_fuzz::judge(
            Unchanged {
                etcd: &etcd,
                prefix: PREFIX,
                // The reconciler takes its work claim (`owners/reconciler`)
                // afresh on every pass, whatever the calls do.
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
    // Still serving: a panic in a handler must not have taken it down.
    rt.block_on(tilewave_testkit::check_ready_with(
        rollout.addr(),
        Some(tilewave_rollout::HEALTH_SERVICE),
        rollout.tls(),
    ))?;
    eprintln!("{cases} cases in {:?}:\n{seen}", started.elapsed());
    seen.every_rpc_answered(&RPCS)?;
    drop(registry);
    Ok(())
}
