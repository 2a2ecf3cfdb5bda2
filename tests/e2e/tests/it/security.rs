//! Security end to end, TLS on (issue 13, "Show"): etcd with client
//! certificate auth, the registry, the rollout service (with its clock
//! service) and an agent with its fault-injection service (started with the
//! test flag) as processes, each with its certificate from the test PKI
//! (`tilewave_testkit::Pki`) and the PKI's access policy.
//!
//! - `a_partner_sees_and_signs_off_only_its_own_tiles`: partner `acme`
//!   reads, lists, watches, sees the history of, signs off and withdraws a
//!   sign-off on its own tile, and gets for partner `globex`'s tile exactly
//!   what a tile that does not exist gets (NOT_FOUND, the same message;
//!   left out of lists, page tokens and watches); the same for globex's
//!   roll-out.
//! - `every_caller_against_every_rpc_family_gets_the_expected_code`: no
//!   certificate, a certificate of another CA, an expired one, an identity
//!   with no role, and each role, against at least one RPC of every family
//!   of every service: the expected code, from a table written out here
//!   (it checks the access table in `crates/auth`, it does not copy it);
//!   etcd is byte for byte the same after all of them; etcd itself refuses
//!   a client without a certificate; every audit record written names a
//!   certificate identity.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context as _, Result};
use tilewave_proto::agent::v1::agent_service_client::AgentServiceClient;
use tilewave_proto::agent::v1::fault_injection_service_client::FaultInjectionServiceClient;
use tilewave_proto::agent::v1::{GetFaultsRequest, ListTilesRequest as AgentListTiles};
use tilewave_proto::clock::v1::clock_service_client::ClockServiceClient;
use tilewave_proto::clock::v1::{AdvanceRequest, GetTimeRequest, SetRateRequest};
use tilewave_proto::common::v1::{PageRequest, SignOffRole};
use tilewave_proto::registry::v1::registry_service_client::RegistryServiceClient;
use tilewave_proto::registry::v1::*;
use tilewave_proto::rollout::v1::rollout_service_client::RolloutServiceClient;
use tilewave_proto::rollout::v1::*;
use tilewave_testkit::pki::{self, Pki};
use tilewave_testkit::{
    EtcdCluster, EtcdOptions, ServiceProcess, ServiceSpec, TestDir, bin_path, eventually,
};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Status};

use super::{PREFIX, fixture};

/// Partner acme's tile, and partner globex's.
const ACME_TILE: &str = "acme-tile";
const GLOBEX_TILE: &str = "globex-tile";
/// A tile id nobody has.
const MISSING_TILE: &str = "nosuch-tile";
/// The one region of the stack.
const REGION: &str = "aws:us-east-1";
const WORKSPACE: &str = "6051921418418893";
/// Virtual time at start of the table's stack (the clock stands still).
const T0: &str = "2026-12-01T00:00:00Z";
/// The service role's identity the table calls with.
const SERVICE: &str = "rollout";
const WAIT: Duration = Duration::from_secs(60);

/// etcd, the registry, the rollout service and one agent, all TLS.
#[allow(missing_debug_implementations)]
struct Stack {
    pki: &'static Pki,
    etcd: EtcdCluster,
    registry: ServiceProcess,
    rollout: ServiceProcess,
    agent: ServiceProcess,
    _dir: TestDir,
}

impl Stack {
    /// With `virtual_clock`, the rollout service creates a virtual clock at
    /// [`T0`] that stands still; without, every service reads the system
    /// clock.
    async fn start(name: &str, virtual_clock: bool) -> Result<Self> {
        let pki = Pki::shared()?;
        let dir = TestDir::new(name)?;
        let etcd = EtcdCluster::start_with(EtcdOptions {
            tls: Some(pki.files("etcd")),
            ..EtcdOptions::default()
        })
        .await?;
        let endpoints = etcd.endpoints().join(",");
        let registry = ServiceProcess::start(
            ServiceSpec::new("registry", bin_path("tilewave-registry")?)
                .with_args(["--etcd", &endpoints, "--prefix", PREFIX])
                .with_health_service(Some("tilewave.registry.v1.RegistryService"))
                .tls(),
            dir.path(),
        )
        .await?;
        let data = dir.path().join("agent-data");
        let agent = ServiceProcess::start(
            ServiceSpec::new("agent", bin_path("tilewave-agent")?)
                .with_args([
                    "--region",
                    REGION,
                    "--data-dir",
                    &data.to_string_lossy(),
                    "--etcd",
                    &endpoints,
                    "--prefix",
                    PREFIX,
                    "--enable-fault-injection",
                ])
                .with_health_service(Some("tilewave.agent.v1.AgentService"))
                .tls(),
            dir.path(),
        )
        .await?;
        let mut spec = ServiceSpec::new("rollout", bin_path("tilewave-rollout")?).with_args([
            "--etcd",
            &endpoints,
            "--prefix",
            PREFIX,
            "--registry",
            &registry.endpoint(),
            "--regions",
            REGION,
        ]);
        if virtual_clock {
            spec = spec.with_args(["--virtual-clock-start", T0, "--virtual-clock-rate", "0"]);
        }
        let rollout = ServiceProcess::start(
            spec.with_health_service(Some("tilewave.rollout.v1.RolloutService"))
                .tls(),
            dir.path(),
        )
        .await?;
        Ok(Self {
            pki,
            etcd,
            registry,
            rollout,
            agent,
            _dir: dir,
        })
    }

    /// A channel to `process` presenting `who`'s certificate.
    async fn channel(&self, process: &ServiceProcess, who: &str) -> Result<Channel> {
        process.channel(who).await
    }

    async fn registry_as(&self, who: &str) -> Result<RegistryServiceClient<Channel>> {
        Ok(RegistryServiceClient::new(
            self.channel(&self.registry, who).await?,
        ))
    }

    async fn rollout_as(&self, who: &str) -> Result<RolloutServiceClient<Channel>> {
        Ok(RolloutServiceClient::new(self.channel(&self.rollout, who).await?))
    }

    /// Imports riverflow as `id` of `partner`, as the release engineer,
    /// with a test workspace.
    async fn tile_of(&self, id: &str, partner: &str) -> Result<Tile> {
        let mut re = self.registry_as(pki::RELEASE_ENGINEER).await?;
        let tile = re
            .import_partner_config(ImportPartnerConfigRequest {
                config_json: std::fs::read_to_string(fixture("riverflow-ingest.json"))?,
                id: id.into(),
                partner_id: partner.into(),
                ..Default::default()
            })
            .await?
            .into_inner()
            .tile
            .context("tile")?;
        anyhow::ensure!(tile.partner_id == partner, "{tile:?}");
        re.set_test_workspace(SetTestWorkspaceRequest {
            id: id.into(),
            workspace_id: WORKSPACE.into(),
            etag: tile.etag,
        })
        .await?
        .into_inner()
        .tile
        .context("tile")
    }

    /// Every audit record under the prefix.
    async fn audit_records(&self) -> Result<Vec<tilewave_proto::common::v1::AuditRecord>> {
        Ok(super::store(&self.etcd).await?.audit_records().await?)
    }
}

/// The code and message of a refusal.
fn refusal<T: std::fmt::Debug>(r: Result<T, Status>) -> (Code, String) {
    match r {
        Ok(v) => panic!("expected a refusal, got {v:?}"),
        Err(s) => (s.code(), s.message().to_owned()),
    }
}

/// What a tile that does not exist gets, with its id replaced by `id`: so
/// that a hidden tile's answer can be compared with it, word for word.
fn as_missing(missing: &(Code, String), id: &str) -> (Code, String) {
    (missing.0, missing.1.replace(MISSING_TILE, id))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_sees_and_signs_off_only_its_own_tiles() {
    let stack = Stack::start("e2e-security-scoping", false).await.unwrap();
    let acme_tile = stack.tile_of(ACME_TILE, "acme").await.unwrap();
    let globex_tile = stack.tile_of(GLOBEX_TILE, "globex").await.unwrap();
    let mut re = stack.registry_as(pki::RELEASE_ENGINEER).await.unwrap();
    let mut acme = stack.registry_as(pki::PARTNER_ACME).await.unwrap();
    // Until the release engineer signs off below, acme only reads or is
    // refused: etcd must not change.
    let untouched = stack.etcd.dump("").await.unwrap();

    // Read: its own tile, and for globex's the answer of a missing one.
    let own = acme
        .get_tile(GetTileRequest {
            id: ACME_TILE.into(),
            revision: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(own.tile.as_ref().map(|t| t.id.as_str()), Some(ACME_TILE));
    let get = |id: &str| GetTileRequest {
        id: id.into(),
        revision: 0,
    };
    let missing = refusal(acme.get_tile(get(MISSING_TILE)).await);
    assert_eq!(missing.0, Code::NotFound, "{missing:?}");
    assert_eq!(
        refusal(acme.get_tile(get(GLOBEX_TILE)).await),
        as_missing(&missing, GLOBEX_TILE),
        "another partner's tile reads as one that does not exist"
    );
    // ... and a revision of it too, before its revisions are counted.
    let r2 = GetTileRequest {
        id: GLOBEX_TILE.into(),
        revision: 7,
    };
    assert_eq!(
        refusal(acme.get_tile(r2).await),
        as_missing(&missing, GLOBEX_TILE)
    );
    // Others see both.
    for who in [pki::RELEASE_ENGINEER, pki::VIEWER, pki::ONCALL] {
        let mut c = stack.registry_as(who).await.unwrap();
        c.get_tile(get(GLOBEX_TILE)).await.unwrap();
    }

    // List: only its own, and no page token or count tells of globex's.
    let list = |partner: &str, page_size: i32| ListTilesRequest {
        partner_id: partner.into(),
        page: Some(PageRequest {
            page_size,
            page_token: String::new(),
        }),
        ..Default::default()
    };
    let ids = |tiles: &[Tile]| tiles.iter().map(|t| t.id.clone()).collect::<Vec<_>>();
    let all = re.list_tiles(list("", 0)).await.unwrap().into_inner();
    assert_eq!(ids(&all.tiles), [ACME_TILE, GLOBEX_TILE]);
    let mine = acme.list_tiles(list("", 0)).await.unwrap().into_inner();
    assert_eq!(ids(&mine.tiles), [ACME_TILE]);
    for size in [1, 2] {
        let page = acme.list_tiles(list("", size)).await.unwrap().into_inner();
        assert_eq!(ids(&page.tiles), [ACME_TILE], "page size {size}");
        assert_eq!(page.next_page_token, "", "page size {size}: no next page");
    }
    let theirs = acme.list_tiles(list("globex", 0)).await.unwrap().into_inner();
    assert!(theirs.tiles.is_empty(), "{theirs:?}");

    // History: its own; globex's is a missing tile's.
    let history = |id: &str| GetHistoryRequest {
        id: id.into(),
        ..Default::default()
    };
    let own_history = acme.get_history(history(ACME_TILE)).await.unwrap().into_inner();
    assert!(!own_history.records.is_empty());
    let missing_history = refusal(acme.get_history(history(MISSING_TILE)).await);
    assert_eq!(missing_history.0, Code::NotFound);
    assert_eq!(
        refusal(acme.get_history(history(GLOBEX_TILE)).await),
        as_missing(&missing_history, GLOBEX_TILE)
    );

    // Watch: a snapshot of its own tile only, then only its own changes.
    let mut watch = acme
        .watch_tiles(WatchTilesRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut snapshot = Vec::new();
    loop {
        let ev = tokio::time::timeout(WAIT, watch.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if ev.r#type == TileEventType::SnapshotEnd as i32 {
            break;
        }
        assert_eq!(ev.r#type, TileEventType::Snapshot as i32, "{ev:?}");
        snapshot.extend(ev.tile.map(|t| t.id));
    }
    assert_eq!(snapshot, [ACME_TILE]);

    // Sign-off and its withdrawal: globex's is a missing tile's, with the
    // right etag and revision; its own works, under its identity.
    let sign = |id: &str, t: &Tile| RecordSignOffRequest {
        id: id.into(),
        role: SignOffRole::Partner as i32,
        revision: t.revision,
        note: "reviewed".into(),
        etag: t.etag,
    };
    let missing_sign = refusal(acme.record_sign_off(sign(MISSING_TILE, &globex_tile)).await);
    assert_eq!(missing_sign.0, Code::NotFound);
    assert_eq!(
        refusal(acme.record_sign_off(sign(GLOBEX_TILE, &globex_tile)).await),
        as_missing(&missing_sign, GLOBEX_TILE)
    );
    // A wrong etag on globex's tile is still NOT_FOUND, not ABORTED.
    let mut stale = sign(GLOBEX_TILE, &globex_tile);
    stale.etag = 1;
    assert_eq!(
        refusal(acme.record_sign_off(stale).await),
        as_missing(&missing_sign, GLOBEX_TILE)
    );
    assert_eq!(
        stack.etcd.dump("").await.unwrap(),
        untouched,
        "acme's refused calls changed etcd"
    );
    // A change to globex's tile (the release engineer's) while acme watches.
    re.record_sign_off(sign(GLOBEX_TILE, &globex_tile)).await.unwrap();
    let signed = acme
        .record_sign_off(sign(ACME_TILE, &acme_tile))
        .await
        .unwrap()
        .into_inner()
        .tile
        .unwrap();
    let by: Vec<&str> = signed.sign_offs.iter().map(|s| s.actor.as_str()).collect();
    assert_eq!(by, [pki::PARTNER_ACME], "{signed:?}");
    // The watch's next event is acme's sign-off: globex's was left out.
    let ev = tokio::time::timeout(WAIT, async {
        loop {
            let ev = watch.message().await.unwrap().unwrap();
            if ev.r#type != TileEventType::Bookmark as i32 {
                return ev;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(ev.r#type, TileEventType::Put as i32, "{ev:?}");
    assert_eq!(ev.tile.as_ref().map(|t| t.id.as_str()), Some(ACME_TILE), "{ev:?}");

    let withdraw = |id: &str, t: &Tile| WithdrawSignOffRequest {
        id: id.into(),
        role: SignOffRole::Partner as i32,
        revision: t.revision,
        reason: "second thoughts".into(),
        etag: 0,
    };
    let untouched = stack.etcd.dump("").await.unwrap();
    let missing_withdraw = refusal(acme.withdraw_sign_off(withdraw(MISSING_TILE, &globex_tile)).await);
    assert_eq!(missing_withdraw.0, Code::NotFound);
    assert_eq!(
        refusal(acme.withdraw_sign_off(withdraw(GLOBEX_TILE, &globex_tile)).await),
        as_missing(&missing_withdraw, GLOBEX_TILE)
    );
    assert_eq!(
        stack.etcd.dump("").await.unwrap(),
        untouched,
        "refused withdrawals changed etcd"
    );
    let unsigned = acme
        .withdraw_sign_off(withdraw(ACME_TILE, &signed))
        .await
        .unwrap()
        .into_inner()
        .tile
        .unwrap();
    assert!(unsigned.sign_offs.is_empty(), "{unsigned:?}");
    // Its history names who did what by certificate identity.
    let acts: Vec<(String, String)> = acme
        .get_history(history(ACME_TILE))
        .await
        .unwrap()
        .into_inner()
        .records
        .into_iter()
        .map(|r| (r.action, r.actor))
        .collect();
    let by = |who: &str| who.to_owned();
    assert_eq!(
        acts,
        [
            ("ImportPartnerConfig".to_owned(), by(pki::RELEASE_ENGINEER)),
            ("SetTestWorkspace".to_owned(), by(pki::RELEASE_ENGINEER)),
            ("RecordSignOff".to_owned(), by(pki::PARTNER_ACME)),
            ("WithdrawSignOff".to_owned(), by(pki::PARTNER_ACME)),
        ]
    );
    // globex's tile still has the release engineer's sign-off.
    let g = re
        .get_tile(get(GLOBEX_TILE))
        .await
        .unwrap()
        .into_inner()
        .tile
        .unwrap();
    assert_eq!(g.sign_offs.len(), 1, "{g:?}");

    // Roll-outs: globex's tile, scheduled and started by the release engineer.
    let rollout = start_rollout_of(&stack, GLOBEX_TILE).await.unwrap();
    let mut ro_acme = stack.rollout_as(pki::PARTNER_ACME).await.unwrap();
    let mut ro_re = stack.rollout_as(pki::RELEASE_ENGINEER).await.unwrap();
    let by_id = |id: &str| GetRolloutRequest {
        id: id.into(),
        tile_id: String::new(),
    };
    let by_tile = |tile: &str| GetRolloutRequest {
        id: String::new(),
        tile_id: tile.into(),
    };
    ro_re.get_rollout(by_id(&rollout.id)).await.unwrap();
    let missing_ro = refusal(ro_acme.get_rollout(by_id("nosuch-r1")).await);
    assert_eq!(missing_ro.0, Code::NotFound);
    assert_eq!(
        refusal(ro_acme.get_rollout(by_id(&rollout.id)).await),
        (missing_ro.0, missing_ro.1.replace("nosuch-r1", &rollout.id))
    );
    let missing_of_tile = refusal(ro_acme.get_rollout(by_tile(MISSING_TILE)).await);
    assert_eq!(missing_of_tile.0, Code::NotFound);
    assert_eq!(
        refusal(ro_acme.get_rollout(by_tile(GLOBEX_TILE)).await),
        as_missing(&missing_of_tile, GLOBEX_TILE)
    );
    let watch_ro = |id: &str| WatchRolloutRequest {
        id: id.into(),
        ..Default::default()
    };
    let missing_watch = refusal(ro_acme.watch_rollout(watch_ro("nosuch-r1")).await.map(|_| ()));
    assert_eq!(
        refusal(ro_acme.watch_rollout(watch_ro(&rollout.id)).await.map(|_| ())),
        (missing_watch.0, missing_watch.1.replace("nosuch-r1", &rollout.id))
    );
    let listed = |r: ListRolloutsResponse| r.rollouts.into_iter().map(|x| x.id).collect::<Vec<_>>();
    let list_ro = || ListRolloutsRequest {
        page: Some(PageRequest {
            page_size: 1,
            page_token: String::new(),
        }),
        ..Default::default()
    };
    assert_eq!(
        listed(ro_re.list_rollouts(list_ro()).await.unwrap().into_inner()),
        std::slice::from_ref(&rollout.id)
    );
    let acme_list = ro_acme.list_rollouts(list_ro()).await.unwrap().into_inner();
    assert!(
        acme_list.rollouts.is_empty() && acme_list.next_page_token.is_empty(),
        "{acme_list:?}"
    );
    let of_globex = ListRolloutsRequest {
        tile_id: GLOBEX_TILE.into(),
        ..Default::default()
    };
    assert!(
        ro_acme
            .list_rollouts(of_globex)
            .await
            .unwrap()
            .into_inner()
            .rollouts
            .is_empty()
    );
    // Where is it: the release engineer sees the region it is planned for;
    // acme gets what a tile that is nowhere gets.
    let where_is = |tile: &str| WhereIsTileRequest {
        tile_id: tile.into(),
        ..Default::default()
    };
    let missing_where = ro_acme
        .where_is_tile(where_is(MISSING_TILE))
        .await
        .unwrap()
        .into_inner();
    assert!(missing_where.placements.is_empty(), "{missing_where:?}");
    let hidden_where = ro_acme
        .where_is_tile(where_is(GLOBEX_TILE))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(hidden_where, missing_where);
    eventually("the roll-out's region is placed", WAIT, || {
        let mut c = ro_re.clone();
        async move {
            let w = c
                .where_is_tile(where_is(GLOBEX_TILE))
                .await
                .map_err(|e| e.to_string())?
                .into_inner();
            if w.placements.iter().any(|p| p.region == REGION) {
                Ok(())
            } else {
                Err(format!("{w:?}"))
            }
        }
    })
    .await
    .unwrap();

    // Every audit record of the journey names a certificate identity.
    assert_audit_names_certificates(&stack).await;
}

/// Gives `tile` every sign-off and a GA date eight days ahead (as the
/// release engineer) and starts its launch, from now.
async fn start_rollout_of(stack: &Stack, id: &str) -> Result<Rollout> {
    let mut re = stack.registry_as(pki::RELEASE_ENGINEER).await?;
    let mut tile = re
        .get_tile(GetTileRequest {
            id: id.into(),
            revision: 0,
        })
        .await?
        .into_inner()
        .tile
        .context("tile")?;
    // The engineering sign-off waits for the validation checklist.
    if tile.validation.as_ref().is_some_and(|v| !v.open_cases.is_empty()) {
        tile = re
            .record_validation(RecordValidationRequest {
                id: id.into(),
                all_open: true,
                outcome: ValidationOutcome::Pass as i32,
                note: "security test".into(),
                etag: tile.etag,
                ..Default::default()
            })
            .await?
            .into_inner()
            .tile
            .context("tile")?;
    }
    for role in [
        SignOffRole::Engineering,
        SignOffRole::PartnerSolutionArchitect,
        SignOffRole::Product,
        SignOffRole::Partner,
        SignOffRole::Legal,
    ] {
        if tile.sign_offs.iter().any(|s| s.role == role as i32) {
            continue;
        }
        tile = re
            .record_sign_off(RecordSignOffRequest {
                id: id.into(),
                role: role as i32,
                revision: tile.revision,
                note: String::new(),
                etag: tile.etag,
            })
            .await?
            .into_inner()
            .tile
            .context("tile")?;
    }
    let mut clock = ClockServiceClient::new(stack.channel(&stack.rollout, pki::RELEASE_ENGINEER).await?);
    let now = clock
        .get_time(GetTimeRequest {})
        .await?
        .into_inner()
        .clock
        .and_then(|c| c.now)
        .context("now")?;
    // The registry wants a week of notice; the launch starts now.
    let mut ga = now;
    ga.seconds += 8 * 24 * 3600;
    // A GA date waits for the go-to-market items.
    for item in ["mini-site", "logo", "blog", "docs"] {
        tile = re
            .set_gtm_item(SetGtmItemRequest {
                id: id.into(),
                item: item.into(),
                status: GtmStatus::Done as i32,
                owner: "partner-marketing".into(),
                due: "2026-12-01".into(),
                link: format!("https://partner.example/{item}"),
                etag: tile.etag,
            })
            .await?
            .into_inner()
            .tile
            .context("tile")?;
    }
    tile = re
        .set_ga_date(SetGaDateRequest {
            id: id.into(),
            ga_time: Some(ga),
            etag: tile.etag,
            reason: "security test".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .tile
        .context("tile")?;
    let ro = stack.rollout_as(pki::RELEASE_ENGINEER).await?;
    let spec = RolloutSpec {
        tile_id: id.into(),
        revision: tile.revision,
        earliest_start: Some(now),
        ..Default::default()
    };
    // The agent registers itself in etcd shortly after it serves.
    let started = eventually("the launch starts", WAIT, || {
        let mut ro = ro.clone();
        let spec = spec.clone();
        async move {
            ro.start_rollout(StartRolloutRequest {
                spec: Some(spec),
                accept_late: true,
                ..Default::default()
            })
            .await
            .map(|r| r.into_inner().rollout)
            .map_err(|e| e.to_string())
        }
    })
    .await?;
    started.context("rollout")
}

/// Every audit record in etcd names a certificate identity of the test
/// PKI: a user's or a service's; `<claimed> (via <service>)` when a service
/// acts for someone; or `system:<service>` for what a service does on its
/// own (the rollout's lifecycle loop calling the registry, the rollout
/// service creating the virtual clock).
async fn assert_audit_names_certificates(stack: &Stack) {
    let identities: BTreeSet<String> = pki::USERS
        .iter()
        .map(|(name, _)| (*name).to_owned())
        .chain(tilewave_tls::devset::SERVICES.iter().map(|s| (*s).to_owned()))
        .collect();
    let services = tilewave_tls::devset::SERVICES;
    let names_a_certificate = |actor: &str| match actor.strip_suffix(')').and_then(|a| a.split_once(" (via "))
    {
        Some((claimed, via)) => !claimed.is_empty() && services.contains(&via),
        None => {
            identities.contains(actor)
                || actor
                    .strip_prefix("system:")
                    .is_some_and(|s| services.contains(&s))
        }
    };
    let records = stack.audit_records().await.unwrap();
    assert!(!records.is_empty(), "the tests wrote audit records");
    for r in &records {
        assert!(
            names_a_certificate(&r.actor),
            "audit record {} of {} {} names {:?}, no certificate identity",
            r.action,
            r.object_kind,
            r.object_id,
            r.actor
        );
    }
}

/// A caller of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    /// TLS, trusting the CA, without a certificate of its own.
    NoCertificate,
    /// A certificate (named like the release engineer) of another CA.
    OtherCa,
    /// The release engineer's name on a certificate of the right CA that
    /// expired yesterday.
    Expired,
    /// An identity of the right CA without a role.
    NoRole,
    ReleaseEngineer,
    Oncall,
    Viewer,
    /// Partner acme, about its own tile.
    PartnerAcme,
    /// Partner globex, about acme's tile.
    PartnerGlobex,
    Service,
}

impl Caller {
    /// The callers with a certificate of the right CA, in the order of the
    /// table's columns.
    const ROLES: [Caller; 7] = [
        Caller::NoRole,
        Caller::ReleaseEngineer,
        Caller::Oncall,
        Caller::Viewer,
        Caller::PartnerAcme,
        Caller::PartnerGlobex,
        Caller::Service,
    ];
    /// Refused at the TLS handshake (a certificate the CA did not sign,
    /// or one that expired).
    const HANDSHAKE: [Caller; 2] = [Caller::OtherCa, Caller::Expired];

    fn identity(self) -> Option<&'static str> {
        match self {
            Caller::NoRole => Some(pki::NO_ROLE),
            Caller::ReleaseEngineer => Some(pki::RELEASE_ENGINEER),
            Caller::Oncall => Some(pki::ONCALL),
            Caller::Viewer => Some(pki::VIEWER),
            Caller::PartnerAcme => Some(pki::PARTNER_ACME),
            Caller::PartnerGlobex => Some(pki::PARTNER_GLOBEX),
            Caller::Service => Some(SERVICE),
            Caller::NoCertificate | Caller::OtherCa | Caller::Expired => None,
        }
    }
}

/// What a call should get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// An answer.
    Ok,
    /// A refusal with this code.
    Code(Code),
    /// Refused at the TLS handshake (another CA, expired).
    Handshake,
}

/// Whether `got` is what `want` says.
fn is(want: Want, got: &Result<(), Status>) -> bool {
    match (want, got) {
        (Want::Ok, Ok(())) => true,
        (Want::Code(code), Err(s)) => s.code() == code,
        // Refused at the handshake: the client sees the transport fail
        // (UNAVAILABLE, or UNKNOWN or CANCELLED when the server cuts the
        // connection after the request was sent), never an answer.
        (Want::Handshake, Err(s)) => {
            matches!(s.code(), Code::Unavailable | Code::Unknown | Code::Cancelled)
        }
        _ => false,
    }
}

const OK: Want = Want::Ok;
const UA: Want = Want::Code(Code::Unauthenticated);
const PD: Want = Want::Code(Code::PermissionDenied);
const NF: Want = Want::Code(Code::NotFound);
/// Allowed, and then refused by the handler for its input: INVALID_ARGUMENT.
const IA: Want = Want::Code(Code::InvalidArgument);
/// Allowed, and then refused for a stale etag: ABORTED.
const AB: Want = Want::Code(Code::Aborted);

/// One representative RPC of a family, called so that an allowed call
/// changes nothing (a stale etag, a missing required field, or a read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rpc {
    GetTile,
    ListTiles,
    UpdateTile,
    RecordSignOff,
    WithdrawSignOff,
    AdvanceLifecycle,
    SetGaDate,
    Withdraw,
    PlanRollout,
    ListRollouts,
    WhereIsTile,
    StartRollout,
    PauseRollout,
    ResumeRollout,
    AbortRollout,
    RollbackRollout,
    GetLaunchCalendar,
    SetLaunchCalendar,
    EditLaunchCalendar,
    GetTime,
    Advance,
    SetRate,
    AgentListTiles,
    GetFaults,
}

/// The expected table: each RPC family of every service against each
/// caller with a certificate of the right CA, in the order of
/// [`Caller::ROLES`]: no role, release-engineer, oncall, viewer, partner
/// acme (its own tile), partner globex (acme's tile), service. A TLS
/// client without a certificate is tried on every row too and expects
/// UNAUTHENTICATED (the handshake lets it through; the role check refuses
/// it), and so are the callers refused at the TLS handshake (another CA,
/// expired), which expect [`Want::Handshake`].
#[rustfmt::skip]
const TABLE: &[(&str, Rpc, [Want; 7])] = &[
    //                                           no  re  oc  vw  ac  gl  sv
    ("registry read",   Rpc::GetTile,           [UA, OK, OK, OK, OK, NF, OK]),
    ("registry read",   Rpc::ListTiles,         [UA, OK, OK, OK, OK, OK, OK]),
    ("registry write",  Rpc::UpdateTile,        [UA, IA, PD, PD, PD, PD, PD]),
    ("sign-off",        Rpc::RecordSignOff,     [UA, AB, PD, PD, AB, NF, PD]),
    ("sign-off",        Rpc::WithdrawSignOff,   [UA, AB, PD, PD, AB, NF, PD]),
    ("lifecycle",       Rpc::AdvanceLifecycle,  [UA, PD, PD, PD, PD, PD, IA]),
    ("lifecycle",       Rpc::SetGaDate,         [UA, AB, PD, PD, PD, PD, AB]),
    ("lifecycle",       Rpc::Withdraw,          [UA, AB, PD, PD, PD, PD, PD]),
    ("rollout read",    Rpc::PlanRollout,       [UA, IA, IA, IA, PD, PD, IA]),
    ("rollout read",    Rpc::ListRollouts,      [UA, OK, OK, OK, OK, OK, OK]),
    ("rollout read",    Rpc::WhereIsTile,       [UA, OK, OK, OK, OK, OK, OK]),
    ("rollout start",   Rpc::StartRollout,      [UA, IA, PD, PD, PD, PD, PD]),
    ("pause-resume",    Rpc::PauseRollout,      [UA, IA, IA, PD, PD, PD, IA]),
    ("pause-resume",    Rpc::ResumeRollout,     [UA, IA, IA, PD, PD, PD, IA]),
    ("abort-rollback",  Rpc::AbortRollout,      [UA, IA, PD, PD, PD, PD, PD]),
    ("abort-rollback",  Rpc::RollbackRollout,   [UA, IA, PD, PD, PD, PD, IA]),
    ("calendar",        Rpc::GetLaunchCalendar, [UA, OK, OK, OK, PD, PD, OK]),
    ("calendar",        Rpc::SetLaunchCalendar, [UA, AB, PD, PD, PD, PD, PD]),
    ("calendar",        Rpc::EditLaunchCalendar, [UA, AB, PD, PD, PD, PD, PD]),
    ("clock read",      Rpc::GetTime,           [UA, OK, OK, OK, OK, OK, OK]),
    ("clock set",       Rpc::Advance,           [UA, IA, PD, PD, PD, PD, PD]),
    ("clock set",       Rpc::SetRate,           [UA, IA, PD, PD, PD, PD, PD]),
    ("agent",           Rpc::AgentListTiles,    [UA, PD, PD, PD, PD, PD, OK]),
    ("fault injection", Rpc::GetFaults,         [UA, PD, PD, PD, PD, PD, OK]),
];

/// Which process serves `rpc`.
enum Process {
    Registry,
    Rollout,
    Agent,
}

impl Rpc {
    fn process(self) -> Process {
        use Rpc::*;
        match self {
            GetTile | ListTiles | UpdateTile | RecordSignOff | WithdrawSignOff | AdvanceLifecycle
            | SetGaDate | Withdraw => Process::Registry,
            PlanRollout | ListRollouts | WhereIsTile | StartRollout | PauseRollout | ResumeRollout
            | AbortRollout | RollbackRollout | GetLaunchCalendar | SetLaunchCalendar | EditLaunchCalendar
            | GetTime | Advance | SetRate => Process::Rollout,
            AgentListTiles | GetFaults => Process::Agent,
        }
    }

    /// Calls it on `channel`, about acme's tile; the answer dropped.
    async fn call(self, channel: Channel) -> Result<(), Status> {
        let id = || ACME_TILE.to_owned();
        // A stale etag: nothing is written when the call is allowed.
        const STALE: i64 = 1;
        let mut reg = RegistryServiceClient::new(channel.clone());
        let mut ro = RolloutServiceClient::new(channel.clone());
        let mut clock = ClockServiceClient::new(channel.clone());
        let mut agent = AgentServiceClient::new(channel.clone());
        let mut faults = FaultInjectionServiceClient::new(channel);
        match self {
            Rpc::GetTile => reg
                .get_tile(GetTileRequest {
                    id: id(),
                    revision: 0,
                })
                .await
                .map(drop),
            Rpc::ListTiles => reg.list_tiles(ListTilesRequest::default()).await.map(drop),
            Rpc::UpdateTile => reg
                .update_tile(UpdateTileRequest {
                    id: id(),
                    etag: 0,
                    ..Default::default()
                })
                .await
                .map(drop),
            Rpc::RecordSignOff => reg
                .record_sign_off(RecordSignOffRequest {
                    id: id(),
                    role: SignOffRole::Partner as i32,
                    revision: 1,
                    note: String::new(),
                    etag: STALE,
                })
                .await
                .map(drop),
            Rpc::WithdrawSignOff => reg
                .withdraw_sign_off(WithdrawSignOffRequest {
                    id: id(),
                    role: SignOffRole::Partner as i32,
                    revision: 1,
                    reason: String::new(),
                    etag: STALE,
                })
                .await
                .map(drop),
            Rpc::AdvanceLifecycle => reg
                .advance_lifecycle(AdvanceLifecycleRequest {
                    id: id(),
                    target_state: 0,
                    ..Default::default()
                })
                .await
                .map(drop),
            Rpc::SetGaDate => reg
                .set_ga_date(SetGaDateRequest {
                    id: id(),
                    ga_time: None,
                    etag: STALE,
                    reason: String::new(),
                    ..Default::default()
                })
                .await
                .map(drop),
            Rpc::Withdraw => reg
                .withdraw(WithdrawRequest {
                    id: id(),
                    etag: STALE,
                    ..Default::default()
                })
                .await
                .map(drop),
            Rpc::PlanRollout => ro.plan_rollout(PlanRolloutRequest::default()).await.map(drop),
            Rpc::ListRollouts => ro.list_rollouts(ListRolloutsRequest::default()).await.map(drop),
            Rpc::WhereIsTile => ro
                .where_is_tile(WhereIsTileRequest {
                    tile_id: id(),
                    ..Default::default()
                })
                .await
                .map(drop),
            Rpc::StartRollout => ro.start_rollout(StartRolloutRequest::default()).await.map(drop),
            Rpc::PauseRollout => ro.pause_rollout(PauseRolloutRequest::default()).await.map(drop),
            Rpc::ResumeRollout => ro.resume_rollout(ResumeRolloutRequest::default()).await.map(drop),
            Rpc::AbortRollout => ro.abort_rollout(AbortRolloutRequest::default()).await.map(drop),
            Rpc::RollbackRollout => ro
                .rollback_rollout(RollbackRolloutRequest::default())
                .await
                .map(drop),
            Rpc::GetLaunchCalendar => ro
                .get_launch_calendar(GetLaunchCalendarRequest::default())
                .await
                .map(drop),
            Rpc::SetLaunchCalendar => ro
                .set_launch_calendar(SetLaunchCalendarRequest {
                    calendar: Some(LaunchCalendar::default()),
                    etag: STALE,
                })
                .await
                .map(drop),
            Rpc::EditLaunchCalendar => ro
                .edit_launch_calendar(EditLaunchCalendarRequest {
                    etag: STALE,
                    edit: Some(edit_launch_calendar_request::Edit::Remove(RemoveCalendarItem {
                        kind: CalendarItemKind::Rule.into(),
                        index: 0,
                    })),
                })
                .await
                .map(drop),
            Rpc::GetTime => clock.get_time(GetTimeRequest {}).await.map(drop),
            Rpc::Advance => clock.advance(AdvanceRequest { by: None }).await.map(drop),
            Rpc::SetRate => clock.set_rate(SetRateRequest { rate: -1.0 }).await.map(drop),
            Rpc::AgentListTiles => agent.list_tiles(AgentListTiles { page: None }).await.map(drop),
            Rpc::GetFaults => faults.get_faults(GetFaultsRequest {}).await.map(drop),
        }
    }
}

/// Certificates the CA did not issue the way the services accept: one of
/// another CA and an expired one, both named like the release engineer.
struct BadCertificates {
    other_ca: tilewave_tls::Tls,
    expired: tilewave_tls::Tls,
    _dir: TestDir,
}

impl BadCertificates {
    fn new(pki: &Pki) -> Result<Self> {
        let dir = TestDir::new("e2e-security-bad-certs")?;
        let other = tilewave_tls::Ca::generate()?.issue_client(pki::RELEASE_ENGINEER)?;
        let (cert, key) = tilewave_tls::files::write_pair(dir.path(), "other-ca", &other, false)?;
        let other_ca = tilewave_tls::Tls::from_files(&cert, &key, &pki.ca_cert())?;
        let now = tilewave_tls::wall_clock_now();
        let day = jiff::SignedDuration::from_hours(24);
        let old = pki.ca()?.issue_client_with(
            pki::RELEASE_ENGINEER,
            tilewave_tls::Validity {
                not_before: now - day * 30,
                not_after: now - day,
            },
        )?;
        let (cert, key) = tilewave_tls::files::write_pair(dir.path(), "expired", &old, false)?;
        let expired = tilewave_tls::Tls::from_files(&cert, &key, &pki.ca_cert())?;
        Ok(Self {
            other_ca,
            expired,
            _dir: dir,
        })
    }
}

/// A lazily connecting channel to `process` as `caller`: a failing
/// handshake fails the call, not the channel's creation.
fn channel_as(
    stack: &Stack,
    bad: &BadCertificates,
    process: &ServiceProcess,
    caller: Caller,
) -> Result<Channel> {
    let url = format!("https://{}", process.addr());
    let endpoint = match caller {
        Caller::NoCertificate => {
            let ca = std::fs::read_to_string(stack.pki.ca_cert())?;
            Endpoint::from_shared(url)?
                .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)))?
        }
        Caller::OtherCa => tilewave_tls::endpoint(&url, Some(&bad.other_ca))?,
        Caller::Expired => tilewave_tls::endpoint(&url, Some(&bad.expired))?,
        _ => {
            let who = caller.identity().context("a caller with an identity")?;
            tilewave_tls::endpoint(&url, Some(&stack.pki.tls(who)?))?
        }
    };
    Ok(endpoint
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .connect_lazy())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_caller_against_every_rpc_family_gets_the_expected_code() {
    let stack = Stack::start("e2e-security-table", true).await.unwrap();
    stack.tile_of(ACME_TILE, "acme").await.unwrap();
    let bad = BadCertificates::new(stack.pki).unwrap();
    // The agent is registered (the service role's ListTiles answers).
    eventually("the agent answers the service role", WAIT, || {
        let ch = channel_as(&stack, &bad, &stack.agent, Caller::Service);
        async move {
            Rpc::AgentListTiles
                .call(ch.map_err(|e| e.to_string())?)
                .await
                .map_err(|e| e.to_string())
        }
    })
    .await
    .unwrap();

    let before = stack.etcd.dump("").await.unwrap();
    assert!(
        before.keys().any(|k| k.ends_with(&format!("tiles/{ACME_TILE}"))),
        "the dump holds the tile: {:?}",
        before.keys().collect::<Vec<_>>()
    );
    let audit_before = stack.audit_records().await.unwrap().len();

    let mut wrong = Vec::new();
    for (family, rpc, row) in TABLE {
        let process = match rpc.process() {
            Process::Registry => &stack.registry,
            Process::Rollout => &stack.rollout,
            Process::Agent => &stack.agent,
        };
        let cases = Caller::ROLES
            .iter()
            .zip(row.iter())
            .map(|(c, w)| (*c, *w))
            .chain([(Caller::NoCertificate, UA)])
            .chain(Caller::HANDSHAKE.iter().map(|c| (*c, Want::Handshake)));
        for (caller, want) in cases {
            let got = rpc.call(channel_as(&stack, &bad, process, caller).unwrap()).await;
            if !is(want, &got) {
                wrong.push(format!(
                    "{family} {rpc:?} as {caller:?}: want {want:?}, got {:?}",
                    got.map_err(|s| (s.code(), s.message().chars().take(160).collect::<String>()))
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} unexpected answers:\n{}",
        wrong.len(),
        wrong.join("\n")
    );

    // Nothing any of those calls did changed etcd: every key, value and
    // revision as before.
    let after = stack.etcd.dump("").await.unwrap();
    let changed: Vec<&String> = before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .collect();
    assert!(changed.is_empty(), "the calls changed etcd: {changed:?}");
    assert_eq!(stack.audit_records().await.unwrap().len(), audit_before);

    // etcd itself refuses a client without a certificate, one of another
    // CA, and a plaintext one; the kit's client (a service certificate) reads.
    let endpoint = stack.etcd.endpoints()[0].clone();
    let ca = std::fs::read_to_string(stack.pki.ca_cert()).unwrap();
    let refused: Vec<(&str, String, Option<etcd_client::TlsOptions>)> = vec![
        (
            "no certificate",
            endpoint.clone(),
            Some(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&ca))),
        ),
        ("another CA", endpoint.clone(), Some(bad.other_ca.client_config())),
        ("plaintext", endpoint.replace("https://", "http://"), None),
    ];
    for (case, url, tls) in refused {
        let mut options = etcd_client::ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_timeout(Duration::from_secs(5));
        if let Some(tls) = tls {
            options = options.with_tls(tls);
        }
        let read = async {
            let mut c = etcd_client::Client::connect([url.as_str()], Some(options)).await?;
            c.get(PREFIX, None).await
        };
        let got = read.await;
        assert!(got.is_err(), "{case}: etcd answered {got:?}");
    }
    let mut kit = stack.etcd.client().await.unwrap();
    kit.get(PREFIX, None).await.unwrap();

    assert_audit_names_certificates(&stack).await;
}
