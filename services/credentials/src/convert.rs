//! Wire <-> core: the only place proto enums and messages become
//! `tilewave_core::rotation` types and back, and `tilewave_secrets::Sealed`
//! becomes the stored `EncryptedSecret`.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use tilewave_core::rotation::{
    Policy, RegionProgress, RegionStep, Retirement, Rotation as CoreRotation, Stage, State, Version, Versions,
};
use tilewave_proto::ShortName;
use tilewave_proto::credentials::v1 as wire;
use tilewave_store::clock::{from_proto_timestamp, to_proto_timestamp};

use crate::error::{Error, Result};

/// A kind's name in keys, ids and messages: `partner-basic-auth`.
pub fn kind_name(kind: wire::CredentialKind) -> String {
    kind.short_name().to_ascii_lowercase().replace('_', "-")
}

/// The kinds a rotation is built for so far.
pub fn check_kind(kind: i32, field: &str) -> Result<wire::CredentialKind> {
    match wire::CredentialKind::try_from(kind) {
        Ok(wire::CredentialKind::PartnerBasicAuth) => Ok(wire::CredentialKind::PartnerBasicAuth),
        Ok(wire::CredentialKind::Unspecified) => Ok(wire::CredentialKind::PartnerBasicAuth),
        Ok(other) => Err(Error::invalid(
            field,
            format!(
                "{} credentials are not rotated by this service yet: only partner-basic-auth",
                kind_name(other)
            ),
        )),
        Err(_) => Err(Error::invalid(field, format!("{kind} is not a credential kind"))),
    }
}

fn ts(t: Option<&prost_types::Timestamp>) -> Option<Timestamp> {
    t.and_then(|t| from_proto_timestamp(t).ok())
}

fn pts(t: Option<Timestamp>) -> Option<prost_types::Timestamp> {
    t.map(to_proto_timestamp)
}

fn dur(d: SignedDuration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: d.as_secs(),
        nanos: d.subsec_nanos(),
    }
}

fn from_dur(d: Option<&prost_types::Duration>) -> Option<SignedDuration> {
    d.map(|d| SignedDuration::new(d.seconds, d.nanos))
}

/// A stage on the wire.
pub fn stage_to_wire(s: Stage) -> wire::CredentialStage {
    match s {
        Stage::Pending => wire::CredentialStage::Pending,
        Stage::Current => wire::CredentialStage::Current,
        Stage::Previous => wire::CredentialStage::Previous,
        Stage::Retired => wire::CredentialStage::Retired,
    }
}

fn stage(s: i32) -> Stage {
    match wire::CredentialStage::try_from(s) {
        Ok(wire::CredentialStage::Current) => Stage::Current,
        Ok(wire::CredentialStage::Previous) => Stage::Previous,
        Ok(wire::CredentialStage::Retired) => Stage::Retired,
        Ok(wire::CredentialStage::Pending | wire::CredentialStage::Unspecified) | Err(_) => Stage::Pending,
    }
}

/// The stored versions as the core's.
pub fn versions(v: &wire::CredentialVersions) -> Versions {
    let mut out = Versions::new(&v.tile_id);
    out.versions = v
        .versions
        .iter()
        .map(|c| Version {
            id: u64::try_from(c.version).unwrap_or(0),
            stage: stage(c.stage),
            fingerprint: c.fingerprint.clone(),
            created_at: ts(c.submitted_at.as_ref()).unwrap_or(Timestamp::UNIX_EPOCH),
        })
        .collect();
    out
}

/// Writes the core's stages back onto the stored versions (stamping when a
/// version became current or retired); versions the core added are
/// appended from `added`.
pub fn merge_versions(
    stored: &mut wire::CredentialVersions,
    core: &Versions,
    now: Timestamp,
    added: Option<wire::Credential>,
) {
    if let Some(a) = added {
        stored.versions.push(a);
    }
    for c in &mut stored.versions {
        let id = u64::try_from(c.version).unwrap_or(0);
        if let Some(v) = core.get(id) {
            let new = stage_to_wire(v.stage) as i32;
            if new != c.stage {
                match v.stage {
                    Stage::Current => c.current_since = Some(to_proto_timestamp(now)),
                    Stage::Retired => c.retired_at = Some(to_proto_timestamp(now)),
                    Stage::Pending | Stage::Previous => {}
                }
                c.stage = new;
            }
        }
    }
}

/// A sealed secret as stored.
pub fn sealed_to_wire(s: &tilewave_secrets::Sealed) -> wire::EncryptedSecret {
    wire::EncryptedSecret {
        kek_id: s.kek_id.clone(),
        dek_nonce: s.dek_nonce.clone(),
        wrapped_dek: s.wrapped_dek.clone(),
        nonce: s.nonce.clone(),
        ciphertext: s.ciphertext.clone(),
    }
}

/// A stored secret as the sealed one.
pub fn sealed(e: &wire::EncryptedSecret) -> tilewave_secrets::Sealed {
    tilewave_secrets::Sealed {
        kek_id: e.kek_id.clone(),
        wrapped_dek: e.wrapped_dek.clone(),
        dek_nonce: e.dek_nonce.clone(),
        nonce: e.nonce.clone(),
        ciphertext: e.ciphertext.clone(),
    }
}

/// The associated data binding a sealed secret to its credential version.
pub fn aad(tile: &str, kind: &str, version: u64) -> Vec<u8> {
    format!("{tile}/{kind}/{version}").into_bytes()
}

fn region_state(step: &RegionStep) -> wire::RegionRotationState {
    match step {
        RegionStep::Pending => wire::RegionRotationState::Pending,
        RegionStep::Installing => wire::RegionRotationState::Installing,
        RegionStep::Installed => wire::RegionRotationState::Installed,
        RegionStep::Verifying => wire::RegionRotationState::Verifying,
        RegionStep::Verified => wire::RegionRotationState::Verified,
        RegionStep::Failed { .. } => wire::RegionRotationState::Failed,
    }
}

/// The retirement policy on the wire, with its grace.
pub fn retirement_to_wire(r: Retirement) -> (wire::Retirement, Option<prost_types::Duration>) {
    match r {
        Retirement::AfterGrace(d) => (wire::Retirement::AfterGrace, Some(dur(d))),
        Retirement::OnConfirmation => (wire::Retirement::OnConfirmation, None),
        Retirement::FirstOf(d) => (wire::Retirement::FirstOf, Some(dur(d))),
    }
}

/// The retirement policy a request asks for.
pub fn retirement(r: i32, grace: Option<&prost_types::Duration>) -> Result<Retirement> {
    let grace = match from_dur(grace) {
        Some(g) if g <= SignedDuration::ZERO => {
            return Err(Error::invalid("grace", "must be positive"));
        }
        Some(g) => g,
        None => tilewave_core::rotation::DEFAULT_GRACE,
    };
    match wire::Retirement::try_from(r) {
        Ok(wire::Retirement::AfterGrace) => Ok(Retirement::AfterGrace(grace)),
        Ok(wire::Retirement::OnConfirmation) => Ok(Retirement::OnConfirmation),
        Ok(wire::Retirement::FirstOf | wire::Retirement::Unspecified) => Ok(Retirement::FirstOf(grace)),
        Err(_) => Err(Error::invalid(
            "retirement",
            format!("{r} is not a retirement policy"),
        )),
    }
}

/// The core rotation on the wire, keeping what only the wire holds (kind,
/// fingerprints, who started it, its trace, the regions' last probes)
/// from `base`.
pub fn rotation_to_wire(r: &CoreRotation, base: &wire::Rotation) -> wire::Rotation {
    let probes: BTreeMap<&str, &tilewave_proto::common::v1::ProbeResult> = base
        .regions
        .iter()
        .filter_map(|g| g.last_probe.as_ref().map(|p| (g.region.as_str(), p)))
        .collect();
    let mut regions = Vec::with_capacity(r.total());
    for (i, wave) in r.waves.iter().enumerate() {
        for region in wave {
            let Some(p) = r.regions.get(region) else { continue };
            regions.push(wire::RegionRotation {
                region: region.clone(),
                wave: i32::try_from(i + 1).unwrap_or(i32::MAX),
                state: region_state(&p.step) as i32,
                failures: i32::try_from(p.failures).unwrap_or(i32::MAX),
                last_error: p.last_error.clone(),
                verified_at: pts(p.verified_at),
                last_probe: probes.get(region.as_str()).map(|p| (*p).clone()),
                retry_at: pts(p.retry_at),
            });
        }
    }
    let (state, current_wave, promoted_at, notified, confirmed, failed_region, reason) = match &r.state {
        State::Distributing { wave } => (
            wire::RotationState::Distributing,
            i32::try_from(wave + 1).unwrap_or(i32::MAX),
            None,
            false,
            false,
            String::new(),
            String::new(),
        ),
        State::Promoting => (
            wire::RotationState::Promoting,
            0,
            None,
            false,
            false,
            String::new(),
            String::new(),
        ),
        State::Promoted {
            at,
            notified,
            confirmed,
        } => (
            wire::RotationState::Promoted,
            0,
            Some(*at),
            *notified,
            *confirmed,
            String::new(),
            String::new(),
        ),
        State::Completed => (
            wire::RotationState::Completed,
            0,
            ts(base.promoted_at.as_ref()),
            base.partner_notified,
            base.partner_confirmed,
            String::new(),
            String::new(),
        ),
        State::Failed { region, reason } => (
            wire::RotationState::Failed,
            0,
            None,
            false,
            false,
            region.clone(),
            reason.clone(),
        ),
        State::Cancelled { reason } => (
            wire::RotationState::Cancelled,
            0,
            None,
            false,
            false,
            String::new(),
            reason.clone(),
        ),
    };
    let (retirement, grace) = retirement_to_wire(r.policy.retirement);
    wire::Rotation {
        id: r.id.clone(),
        tile_id: r.tile.clone(),
        state: state as i32,
        from_version: r.from.map_or(0, |v| i64::try_from(v).unwrap_or(0)),
        to_version: i64::try_from(r.to).unwrap_or(0),
        progress: r.progress(),
        regions_total: i32::try_from(r.total()).unwrap_or(i32::MAX),
        regions_distributed: i32::try_from(r.distributed()).unwrap_or(i32::MAX),
        regions_verified: i32::try_from(r.verified()).unwrap_or(i32::MAX),
        regions,
        current_wave,
        wave_count: i32::try_from(r.waves.len()).unwrap_or(i32::MAX),
        concurrency: i32::try_from(r.concurrency).unwrap_or(i32::MAX),
        max_attempts: i32::try_from(r.policy.max_attempts).unwrap_or(i32::MAX),
        bake: Some(dur(r.policy.bake)),
        retry_delay: Some(dur(r.policy.retry_delay)),
        retirement: retirement as i32,
        grace,
        emergency: r.emergency,
        wave_ready_at: pts(r.wave_ready_at),
        promoted_at: pts(promoted_at),
        partner_notified: notified,
        partner_confirmed: confirmed,
        grace_ends_at: pts(r.grace_ends_at()),
        failed_region,
        reason,
        withdrawn: r.withdrawn,
        started_at: pts(Some(r.started_at)),
        finished_at: pts(r.finished_at),
        ..base.clone()
    }
}

/// A stored rotation as the core's.
pub fn rotation(w: &wire::Rotation) -> Result<CoreRotation> {
    let bad = |m: &str| Error::FailedPrecondition(format!("stored rotation {} is unreadable: {m}", w.id));
    let mut waves: Vec<Vec<String>> = Vec::new();
    let mut regions = BTreeMap::new();
    for g in &w.regions {
        let wave = usize::try_from(g.wave)
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| bad("a region without a wave"))?;
        while waves.len() < wave {
            waves.push(Vec::new());
        }
        if let Some(list) = waves.get_mut(wave - 1) {
            list.push(g.region.clone());
        }
        let failures = u32::try_from(g.failures).unwrap_or(0);
        let step = match wire::RegionRotationState::try_from(g.state) {
            Ok(wire::RegionRotationState::Installing) => RegionStep::Installing,
            Ok(wire::RegionRotationState::Installed) => RegionStep::Installed,
            Ok(wire::RegionRotationState::Verifying) => RegionStep::Verifying,
            Ok(wire::RegionRotationState::Verified) => RegionStep::Verified,
            Ok(wire::RegionRotationState::Failed) => RegionStep::Failed {
                attempts: failures,
                last_error: g.last_error.clone(),
            },
            Ok(wire::RegionRotationState::Pending | wire::RegionRotationState::Unspecified) | Err(_) => {
                RegionStep::Pending
            }
        };
        regions.insert(
            g.region.clone(),
            RegionProgress {
                step,
                failures,
                last_error: g.last_error.clone(),
                verified_at: ts(g.verified_at.as_ref()),
                retry_at: ts(g.retry_at.as_ref()),
            },
        );
    }
    let state = match wire::RotationState::try_from(w.state) {
        Ok(wire::RotationState::Distributing) => State::Distributing {
            wave: usize::try_from(w.current_wave.max(1) - 1).unwrap_or(0),
        },
        Ok(wire::RotationState::Promoting) => State::Promoting,
        Ok(wire::RotationState::Promoted) => State::Promoted {
            at: ts(w.promoted_at.as_ref()).ok_or_else(|| bad("promoted without promoted_at"))?,
            notified: w.partner_notified,
            confirmed: w.partner_confirmed,
        },
        Ok(wire::RotationState::Completed) => State::Completed,
        Ok(wire::RotationState::Failed) => State::Failed {
            region: w.failed_region.clone(),
            reason: w.reason.clone(),
        },
        Ok(wire::RotationState::Cancelled) => State::Cancelled {
            reason: w.reason.clone(),
        },
        Ok(wire::RotationState::Unspecified) | Err(_) => return Err(bad("no state")),
    };
    Ok(CoreRotation {
        id: w.id.clone(),
        tile: w.tile_id.clone(),
        from: u64::try_from(w.from_version).ok().filter(|v| *v > 0),
        to: u64::try_from(w.to_version).map_err(|_| bad("a negative version"))?,
        waves,
        concurrency: usize::try_from(w.concurrency).unwrap_or(1),
        policy: Policy {
            max_attempts: u32::try_from(w.max_attempts).unwrap_or(1),
            bake: from_dur(w.bake.as_ref()).unwrap_or(SignedDuration::ZERO),
            retirement: retirement(w.retirement, w.grace.as_ref())?,
            // A rotation stored before retries waited has none: at once.
            retry_delay: from_dur(w.retry_delay.as_ref()).unwrap_or(SignedDuration::ZERO),
        },
        emergency: w.emergency,
        started_at: ts(w.started_at.as_ref()).unwrap_or(Timestamp::UNIX_EPOCH),
        wave_ready_at: ts(w.wave_ready_at.as_ref()),
        regions,
        state,
        withdrawn: w.withdrawn,
        finished_at: ts(w.finished_at.as_ref()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tilewave_core::rotation::Spec;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_rotation_round_trips_through_the_wire() {
        let core = CoreRotation::new(
            Spec {
                id: "riverflow-partner-basic-auth-2".into(),
                tile: "riverflow".into(),
                from: Some(1),
                to: 2,
                waves: vec![
                    vec!["aws:us-east-1".into(), "gcp:us-central1".into()],
                    vec!["azure:westeurope".into()],
                ],
                concurrency: 2,
                policy: Policy::default(),
                emergency: false,
            },
            at("2026-12-01T00:00:00Z"),
        );
        let wire = rotation_to_wire(&core, &wire::Rotation::default());
        assert_eq!(wire.state, wire::RotationState::Distributing as i32);
        assert_eq!(
            (wire.regions_total, wire.wave_count, wire.current_wave),
            (3, 2, 1)
        );
        assert_eq!(wire.regions[2].wave, 2);
        assert_eq!(rotation(&wire).unwrap(), core);
    }

    #[test]
    fn kinds_other_than_basic_auth_are_refused_naming_the_field() {
        assert!(check_kind(wire::CredentialKind::PartnerBasicAuth as i32, "kind").is_ok());
        let e = check_kind(wire::CredentialKind::OauthM2mSecret as i32, "kind").unwrap_err();
        assert!(e.to_string().starts_with("kind: oauth-m2m-secret"), "{e}");
        assert!(check_kind(99, "kind").is_err());
        assert_eq!(
            kind_name(wire::CredentialKind::PartnerBasicAuth),
            "partner-basic-auth"
        );
    }
}
