//! Journey 2, a maintenance change: Lumen (azure only) is GA; a new
//! revision adds GCP and gets its engineering and partner sign-offs; the
//! maintenance roll-out covers only the affected (gcp) regions, canary
//! gcp:asia-northeast1 first, with no deadline; rolled back mid-way, it
//! restores what was live before in each region it touched (nothing: the
//! tile was never in gcp), newest region first, leaves azure alone, and the
//! tile's maintenance revision is SIGNED_OFF again (it may be retried).

use anyhow::Context as _;
use jiff::SignedDuration;
use tilewave_proto::common::v1::{AuditRecord, Cloud, SignOffRole, TileState};
use tilewave_proto::registry::v1::{MaintenanceState, UpdateTileRequest, update_tile_request};
use tilewave_proto::rollout::v1::{RollbackRolloutRequest, RolloutKind, RolloutState, StepState};

use crate::*;

const AZURE: [&str; 2] = ["azure:eastus2euap", "azure:westeurope"];
const GCP_CANARY: &str = "gcp:asia-northeast1";

#[tokio::test]
async fn maintenance_rolls_out_to_the_affected_regions_only_and_rolls_back_newest_first() -> anyhow::Result<()>
{
    let stack = Stack::start(2).await?;
    let tile = stack
        .scheduled(LUMEN, "", SignedDuration::from_hours(24 * 8))
        .await?;
    let ga = from_ts(&tile.ga_time);

    // The launch, in azure, then GA.
    let now = stack.now().await?;
    let launch = stack
        .start_rollout(quick_spec(
            &tile.id,
            now,
            &AZURE,
            SignedDuration::from_mins(10),
            2,
        ))
        .await?;
    stack.set_rate(600.0).await?;
    stack.wait_state(&launch.id, RolloutState::Succeeded).await?;
    let left = ga.duration_since(stack.now().await?);
    stack.advance(left + SignedDuration::from_mins(1)).await?;
    let tile = eventually("the tile turns GA", WAIT, || async {
        let t = stack.tile(&tile.id).await.ok()?;
        (t.state == TileState::Ga as i32).then_some(t)
    })
    .await?;
    assert_eq!(tile.ga_revision, 1);

    // Revision 2 adds GCP, named by the etag read.
    let mut doc: serde_json::Value = serde_json::from_str(LUMEN)?;
    doc["supported_clouds"] = serde_json::json!(["azure", "gcp"]);
    let tile = stack
        .registry()
        .await?
        .update_tile(UpdateTileRequest {
            id: tile.id.clone(),
            etag: tile.etag,
            source: Some(update_tile_request::Source::ConfigJson(doc.to_string())),
            note: "adds GCP support".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .tile
        .context("tile")?;
    assert_eq!(tile.revision, 2);
    assert_eq!(tile.maintenance_state, MaintenanceState::Open as i32);
    let affected = tile.maintenance.as_ref().map(|m| m.affected_clouds.clone());
    assert_eq!(affected, Some(vec![Cloud::Gcp as i32]), "{tile:?}");
    let tile = stack
        .sign_off(&tile, &[SignOffRole::Engineering, SignOffRole::Partner])
        .await?;
    assert_eq!(tile.maintenance_state, MaintenanceState::SignedOff as i32);

    // Asked for all eight regions, it takes only the gcp ones, canary first,
    // and has no deadline (none given).
    stack.set_rate(0.0).await?;
    let now = stack.now().await?;
    let mut s = quick_spec(&tile.id, now, &REGIONS, SignedDuration::from_mins(20), 2);
    s.kind = RolloutKind::Maintenance as i32;
    s.earliest_start = None;
    let m = stack.start_rollout(s).await?;
    assert_eq!(m.kind, RolloutKind::Maintenance as i32);
    assert_eq!((m.revision, m.previous_revision), (2, 1));
    assert_eq!(m.regions_total, 3, "{:?}", m.steps);
    assert!(
        m.steps
            .iter()
            .all(|s| s.cloud == Cloud::Gcp as i32 && s.region.starts_with("gcp:")),
        "{:?}",
        m.steps
    );
    assert_eq!(wave(&m, 1), vec![GCP_CANARY.to_string()]);
    assert!(m.deadline.is_none(), "{:?}", m.deadline);
    assert!(m.spec.as_ref().is_some_and(|s| s.deadline.is_none()));

    // Roll back once the canary is verified and wave 2 has applied.
    stack.set_rate(600.0).await?;
    let mid = stack
        .wait_for(&m.id, "wave 2 applied in a region", |r| {
            r.steps.iter().any(|s| s.wave == 2 && s.applied_at.is_some())
        })
        .await?;
    stack.set_rate(0.0).await?;
    let canary = mid
        .steps
        .iter()
        .find(|s| s.region == GCP_CANARY)
        .context("canary")?;
    assert_eq!(canary.state, StepState::Verified as i32);
    let canary_applied = from_ts(&canary.apply_started_at);
    for s in mid
        .steps
        .iter()
        .filter(|s| s.wave == 2 && s.apply_started_at.is_some())
    {
        assert!(from_ts(&s.apply_started_at) >= canary_applied, "{s:?}");
    }
    let t = stack.tile(&tile.id).await?;
    assert_eq!(t.maintenance_state, MaintenanceState::RollingOut as i32);
    for region in AZURE {
        let e = stack.entry(region, &tile.id).await?.context("azure entry")?;
        assert_eq!((e.revision, e.apply_count), (1, 1), "{region} untouched: {e:?}");
    }
    let rb = stack
        .rollout(stack.live())
        .await?
        .rollback_rollout(RollbackRolloutRequest {
            id: m.id.clone(),
            reason: "revision 2 misbehaves".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .rollout
        .context("rollout")?;
    assert_eq!(rb.state, RolloutState::RollingBack as i32);
    let back = stack.wait_state(&m.id, RolloutState::RolledBack).await?;

    // Every region it touched is back to what was live before: nothing.
    let touched: Vec<_> = back
        .steps
        .iter()
        .filter(|s| s.apply_started_at.is_some())
        .collect();
    assert!(touched.len() >= 2, "{:?}", back.steps);
    for s in &back.steps {
        let want = if s.apply_started_at.is_some() {
            StepState::RolledBack
        } else {
            StepState::Pending
        };
        assert_eq!(s.state, want as i32, "{s:?}");
        assert!(
            stack.entry(&s.region, &tile.id).await?.is_none(),
            "{} still holds the tile",
            s.region
        );
    }
    for region in AZURE {
        let e = stack.entry(region, &tile.id).await?.context("azure entry")?;
        assert_eq!((e.revision, e.apply_count), (1, 1), "{region} untouched: {e:?}");
    }

    // Newest first: the order of the RolledBack records.
    let mut audit = stack
        .store
        .list::<AuditRecord>(&stack.store.keys().audit_prefix())
        .await?
        .items;
    audit.sort_by_key(|a| a.etag);
    let order: Vec<String> = audit
        .iter()
        .filter(|a| a.value.object_id == m.id && a.value.action == "RolledBack")
        .filter_map(|a| {
            a.value
                .summary
                .split_once(" restored in ")
                .map(|(_, r)| r.to_owned())
        })
        .collect();
    let mut newest_first = touched.clone();
    newest_first.sort_by_key(|s| std::cmp::Reverse(from_ts(&s.apply_started_at)));
    let expected: Vec<String> = newest_first.iter().map(|s| s.region.clone()).collect();
    assert_eq!(order.len(), expected.len(), "{order:?}");
    // Regions that started applying at the same moment may go in either order.
    for (i, region) in order.iter().enumerate() {
        let at = |r: &str| {
            touched
                .iter()
                .find(|s| s.region == r)
                .map(|s| from_ts(&s.apply_started_at))
        };
        assert_eq!(
            at(region),
            at(&expected[i]),
            "rolled back {order:?}, newest first is {expected:?}"
        );
    }

    // The tile stays GA at revision 1; revision 2 is signed off again.
    let t = stack.tile(&tile.id).await?;
    assert_eq!(t.state, TileState::Ga as i32);
    assert_eq!(t.ga_revision, 1);
    assert_eq!(t.maintenance_state, MaintenanceState::SignedOff as i32, "{t:?}");
    Ok(())
}
