//! The edge between the wire and the domain: converts the stored `Tile` to
//! core's tile model ([`tilewave_core::tile::Tile`]), calls the one method
//! that decides (sign-offs and their completeness, readiness, the test
//! workspace, the GA date, roll-out moves, a new revision and what a
//! maintenance revision affects), and writes the outcome back. No rule is
//! decided here; this module only translates.

use jiff::Timestamp;
use tilewave_core::lifecycle::{Maintenance, State, TileKind};
use tilewave_core::quote::quote;
use tilewave_core::signoff::{RevisionNo, Role, SignOff as CoreSignOff, SignOffs};
use tilewave_core::slug::TileId;
use tilewave_core::tile::{Tile as CoreTile, TileError, affected_clouds, opens_maintenance};
use tilewave_proto::ShortName;
use tilewave_proto::common::v1::{ConfigFormat, PartnerConfig, SignOffRole, TileState};
use tilewave_proto::registry::v1::{
    ConfigIssue, MaintenanceInfo, MaintenanceState, SignOff, SlotBooking, Tile,
};
use tilewave_store::clock::{from_proto_timestamp, to_proto_timestamp};

use crate::error::{Error, Result, Violation};

pub use crate::config_edge::{from_document, from_typed};
use crate::readiness_edge;
pub(crate) use crate::readiness_edge::refresh as refresh_readiness;
pub use crate::readiness_edge::{Cases, GtmSet, Validation, outcome, record_validation, set_gtm_item};

/// A new revision of a tile, validated, before it is stored.
#[derive(Debug, Clone)]
pub struct NewRevision {
    /// The tile id (given, or the slug of the name).
    pub id: String,
    /// The partner id (given, or the tile id).
    pub partner_id: String,
    /// The typed configuration.
    pub config: PartnerConfig,
    /// The document as submitted, if it came as one.
    pub raw: String,
    /// Its format.
    pub format: ConfigFormat,
    /// A self-test tile, and its workspace.
    pub self_test: bool,
    /// The self-test tile's workspace.
    pub workspace: String,
    /// Non-fatal problems.
    pub warnings: Vec<ConfigIssue>,
    /// What changed (for a later revision).
    pub note: String,
    /// What a maintenance revision affects, if the caller said.
    pub maintenance: Option<MaintenanceInfo>,
}

impl NewRevision {
    /// Revision 1 of a new tile, in DRAFT.
    pub fn into_first_tile(self, now: Timestamp, actor: &str) -> Tile {
        let at = Some(to_proto_timestamp(now));
        let missing = roles_to_proto(&CoreTile::new(kind(self.self_test), None).missing_sign_offs());
        let (validation, gtm) = readiness_edge::first(self.self_test);
        Tile {
            id: self.id,
            partner_id: self.partner_id,
            name: self.config.name.clone(),
            revision: 1,
            latest_revision: 1,
            state: TileState::Draft as i32,
            config: Some(self.config),
            raw_config: self.raw,
            config_format: self.format as i32,
            self_test: self.self_test,
            test_workspace_id: self.workspace,
            missing_sign_offs: missing,
            created_at: at,
            created_by: actor.to_string(),
            updated_at: at,
            updated_by: actor.to_string(),
            warnings: self.warnings,
            maintenance_state: MaintenanceState::Unspecified as i32,
            validation,
            gtm,
            ..Default::default()
        }
    }
}

/// The roles a launch needs, in the wire enum.
pub const LAUNCH_ROLES: [SignOffRole; 5] = [
    SignOffRole::Engineering,
    SignOffRole::PartnerSolutionArchitect,
    SignOffRole::Product,
    SignOffRole::Partner,
    SignOffRole::Legal,
];

/// Checks a tile id from a request.
pub fn check_id(field: &str, id: &str) -> Result<()> {
    TileId::parse(id)
        .map(|_| ())
        .map_err(|e| Error::invalid(field, e.to_string()))
}

/// The longest workspace id accepted.
const MAX_WORKSPACE_LEN: usize = 32;

/// Checks a workspace id: digits only (as Databricks workspace ids are).
pub fn check_workspace(field: &str, ws: &str, allow_empty: bool) -> Result<()> {
    if ws.is_empty() {
        return if allow_empty {
            Ok(())
        } else {
            Err(Error::invalid(field, "required"))
        };
    }
    if ws.len() > MAX_WORKSPACE_LEN || !ws.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::invalid(
            field,
            format!(
                "{} is not a workspace id (digits only, e.g. 6051921418418893)",
                quote(ws)
            ),
        ));
    }
    Ok(())
}

/// A wire role, checked.
pub fn role(field: &str, raw: i32) -> Result<Role> {
    match SignOffRole::try_from(raw) {
        Ok(SignOffRole::Engineering) => Ok(Role::Engineering),
        Ok(SignOffRole::PartnerSolutionArchitect) => Ok(Role::PartnerSolutionArchitect),
        Ok(SignOffRole::Product) => Ok(Role::Product),
        Ok(SignOffRole::Partner) => Ok(Role::Partner),
        Ok(SignOffRole::Legal) => Ok(Role::Legal),
        Ok(SignOffRole::Unspecified) | Err(_) => Err(Error::invalid(
            field,
            format!("{raw} is not a sign-off role; valid: engineering, partner-sa, product, partner, legal"),
        )),
    }
}

fn role_to_proto(r: Role) -> SignOffRole {
    match r {
        Role::Engineering => SignOffRole::Engineering,
        Role::PartnerSolutionArchitect => SignOffRole::PartnerSolutionArchitect,
        Role::Product => SignOffRole::Product,
        Role::Partner => SignOffRole::Partner,
        Role::Legal => SignOffRole::Legal,
    }
}

fn roles_to_proto(roles: &[Role]) -> Vec<i32> {
    roles.iter().map(|r| role_to_proto(*r) as i32).collect()
}

pub(crate) fn revision_no(field: &str, revision: i64) -> Result<RevisionNo> {
    u32::try_from(revision)
        .map(RevisionNo)
        .map_err(|_| Error::invalid(field, format!("{revision} is not a revision")))
}

fn kind(self_test: bool) -> TileKind {
    if self_test {
        TileKind::SelfTest
    } else {
        TileKind::Partner
    }
}

/// The core state of a stored tile.
fn state_of(tile: &Tile) -> Result<State> {
    let state = TileState::try_from(tile.state).unwrap_or(TileState::Unspecified);
    Ok(match state {
        TileState::Draft => State::Draft,
        TileState::Validating => State::Validating,
        TileState::SignedOff => State::SignedOff,
        TileState::Scheduled => State::Scheduled,
        TileState::RollingOut => State::RollingOut,
        TileState::RolledOut => State::RolledOut,
        TileState::Ga => State::Ga {
            maintenance: match MaintenanceState::try_from(tile.maintenance_state) {
                Ok(MaintenanceState::Open) => Maintenance::Open,
                Ok(MaintenanceState::SignedOff) => Maintenance::SignedOff,
                Ok(MaintenanceState::RollingOut) => Maintenance::RollingOut,
                Ok(MaintenanceState::Idle | MaintenanceState::Unspecified) | Err(_) => Maintenance::Idle,
            },
        },
        TileState::Withdrawn => State::Withdrawn,
        TileState::Unspecified => {
            return Err(Error::FailedPrecondition(format!(
                "tile {} has no state stored",
                quote(&tile.id)
            )));
        }
    })
}

fn store_state(tile: &mut Tile, state: State) {
    let (wire, maintenance) = match state {
        State::Draft => (TileState::Draft, MaintenanceState::Unspecified),
        State::Validating => (TileState::Validating, MaintenanceState::Unspecified),
        State::SignedOff => (TileState::SignedOff, MaintenanceState::Unspecified),
        State::Scheduled => (TileState::Scheduled, MaintenanceState::Unspecified),
        State::RollingOut => (TileState::RollingOut, MaintenanceState::Unspecified),
        State::RolledOut => (TileState::RolledOut, MaintenanceState::Unspecified),
        State::Ga { maintenance } => (
            TileState::Ga,
            match maintenance {
                Maintenance::Idle => MaintenanceState::Idle,
                Maintenance::Open => MaintenanceState::Open,
                Maintenance::SignedOff => MaintenanceState::SignedOff,
                Maintenance::RollingOut => MaintenanceState::RollingOut,
            },
        ),
        State::Withdrawn => (TileState::Withdrawn, MaintenanceState::Unspecified),
    };
    tile.state = wire as i32;
    tile.maintenance_state = maintenance as i32;
}

fn timestamp(tile: &Tile, field: &str, t: Option<&prost_types::Timestamp>) -> Result<Option<Timestamp>> {
    t.map(|t| {
        from_proto_timestamp(t).map_err(|e| {
            Error::FailedPrecondition(format!("tile {} has an unreadable {field}: {e}", quote(&tile.id)))
        })
    })
    .transpose()
}

/// The stored tile as core's tile model, whose methods decide every rule.
pub(crate) fn core_tile(tile: &Tile) -> Result<CoreTile> {
    Ok(CoreTile {
        kind: kind(tile.self_test),
        state: state_of(tile)?,
        sign_offs: sign_offs(tile)?,
        ga: timestamp(tile, "ga_time", tile.ga_time.as_ref())?,
        test_workspace: (!tile.test_workspace_id.is_empty()).then(|| tile.test_workspace_id.clone()),
        ga_revision: if tile.ga_revision > 0 {
            Some(revision_no("ga_revision", tile.ga_revision)?)
        } else {
            None
        },
        removal_requested: timestamp(tile, "withdraw_requested_at", tile.withdraw_requested_at.as_ref())?,
    })
}

/// Writes core's verdict back onto the stored tile (the sign-off records,
/// which keep notes and older revisions, are edited by the caller).
fn store_core(tile: &mut Tile, core: &CoreTile) {
    store_state(tile, core.state);
    tile.revision = i64::from(core.revision().0);
    tile.test_workspace_id = core.test_workspace.clone().unwrap_or_default();
    tile.ga_time = core.ga.map(to_proto_timestamp);
    tile.ga_revision = core.ga_revision.map_or(0, |r| i64::from(r.0));
    tile.withdraw_requested_at = core.removal_requested.map(to_proto_timestamp);
    tile.missing_sign_offs = roles_to_proto(&core.missing_sign_offs());
}

/// Converts the tile, lets core decide, and stores the outcome: on a
/// refusal the stored tile is unchanged.
fn decide<T>(tile: &mut Tile, f: impl FnOnce(&mut CoreTile) -> Result<T, TileError>) -> Result<T> {
    let mut core = core_tile(tile)?;
    let out = f(&mut core).map_err(refusal)?;
    store_core(tile, &core);
    Ok(out)
}

/// Core's refusal as the registry's error.
fn refusal(e: TileError) -> Error {
    match e {
        TileError::GaDate(e) => Error::invalid("ga_time", e.to_string()),
        TileError::KindChange => Error::invalid("config_json", e.to_string()),
        TileError::Lifecycle(_)
        | TileError::SignOff(_)
        | TileError::SelfTestSignOff
        | TileError::SelfTestWorkspace => Error::FailedPrecondition(e.to_string()),
    }
}

/// The core view of the sign-offs standing on the tile's current revision.
fn sign_offs(tile: &Tile) -> Result<SignOffs> {
    let current = revision_no("revision", tile.revision)?;
    let mut set = SignOffs::new(current);
    for s in tile.sign_offs.iter().filter(|s| s.revision == tile.revision) {
        let r = role("sign_offs.role", s.role)?;
        let at =
            s.at.as_ref()
                .and_then(|t| from_proto_timestamp(t).ok())
                .unwrap_or_default();
        set.record(
            current,
            r,
            CoreSignOff {
                by: s.actor.clone(),
                at,
            },
        )
        .map_err(|e| Error::FailedPrecondition(e.to_string()))?;
    }
    Ok(set)
}

/// The revision a request names (0: the current one).
pub(crate) fn given_revision(tile: &Tile, revision: i64) -> Result<RevisionNo> {
    revision_no("revision", if revision == 0 { tile.revision } else { revision })
}

/// Records a sign-off on the current revision; completes the set when it is
/// the last one needed.
pub fn record_sign_off(
    tile: &mut Tile,
    r: Role,
    revision: i64,
    actor: &str,
    note: &str,
    now: Timestamp,
) -> Result<String> {
    let given = given_revision(tile, revision)?;
    readiness_edge::sign_off_gate(tile, r, given)?;
    let sign_off = CoreSignOff {
        by: actor.to_string(),
        at: now,
    };
    decide(tile, |t| t.record_sign_off(now, given, r, sign_off))?;
    tile.sign_offs
        .retain(|s| !(s.revision == tile.revision && s.role == role_to_proto(r) as i32));
    tile.sign_offs.push(SignOff {
        role: role_to_proto(r) as i32,
        revision: tile.revision,
        actor: actor.to_string(),
        at: Some(to_proto_timestamp(now)),
        note: note.to_string(),
    });
    Ok(format!("signed off as {r} on revision {}", tile.revision))
}

/// Withdraws a sign-off from the current revision.
pub fn withdraw_sign_off(
    tile: &mut Tile,
    r: Role,
    revision: i64,
    reason: &str,
    now: Timestamp,
) -> Result<String> {
    let given = given_revision(tile, revision)?;
    decide(tile, |t| t.withdraw_sign_off(now, given, r))?;
    tile.sign_offs
        .retain(|s| !(s.revision == tile.revision && s.role == role_to_proto(r) as i32));
    Ok(format!(
        "withdrew the {r} sign-off on revision {}: {reason}",
        tile.revision
    ))
}

/// Sets the test workspace, starting validation.
pub fn set_test_workspace(tile: &mut Tile, workspace: &str, now: Timestamp) -> Result<String> {
    if workspace.is_empty() {
        return Err(Error::invalid("workspace_id", "required"));
    }
    decide(tile, |t| t.set_test_workspace(now, workspace))?;
    Ok(format!("shown in test workspace {workspace}"))
}

/// A GA date to set, as the request gives it.
#[derive(Debug, Clone, Default)]
pub struct GaDate {
    /// The GA moment; `None` clears it.
    pub ga: Option<Timestamp>,
    /// Why it was set or moved.
    pub reason: String,
    /// Above 0: `ga` is a launch-calendar slot of this capacity, in which
    /// the tile takes a place (the service books it with the tile).
    pub slot_capacity: i32,
    /// Commit the date although go-to-market items are pending, for this
    /// reason.
    pub gtm_override: String,
}

/// Sets, moves or clears the GA date. Setting one on a partner tile passes
/// core's go-to-market gate (or records the override used); with a slot
/// capacity the tile records the slot it holds a place in (`ga_slot`), which
/// the service books in the same transaction.
pub fn set_ga(tile: &mut Tile, g: &GaDate, actor: &str, now: Timestamp) -> Result<String> {
    decide(tile, |t| t.set_ga(now, g.ga))?;
    let Some(ga) = g.ga else {
        tile.ga_slot = None;
        tile.gtm_override = None;
        return Ok(format!("GA date cleared{}", suffix(&g.reason)));
    };
    let overridden = if tile.self_test {
        None
    } else {
        readiness_edge::ga_gate(tile, &g.gtm_override, actor, now)?
    };
    tile.ga_slot = (g.slot_capacity > 0).then(|| SlotBooking {
        at: Some(to_proto_timestamp(ga)),
        capacity: g.slot_capacity,
    });
    let slot = if g.slot_capacity > 0 {
        format!(" (a place in the launch slot of capacity {})", g.slot_capacity)
    } else {
        String::new()
    };
    let over = overridden.map(|o| format!("; {o}")).unwrap_or_default();
    Ok(format!("GA set to {ga}{slot}{}{over}", suffix(&g.reason)))
}

fn suffix(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(": {reason}")
    }
}

/// Moves the lifecycle for the rollout service. Targets name where the tile
/// goes: ROLLING_OUT (a roll-out started), ROLLED_OUT (it completed), GA (the
/// GA moment; for a GA tile: its maintenance roll-out completed), SCHEDULED
/// (the roll-out was rolled back), WITHDRAWN (removed; repeating it is a
/// no-op so that a removal roll-out can confirm it).
pub fn advance(
    tile: &mut Tile,
    target: TileState,
    expected_revision: i64,
    reason: &str,
    rollout: &str,
    now: Timestamp,
) -> Result<String> {
    if expected_revision != 0 && expected_revision != tile.revision {
        return Err(Error::FailedPrecondition(format!(
            "roll-out {} acted on revision {expected_revision}, but the tile is at revision {}",
            quote(rollout),
            tile.revision
        )));
    }
    let from = state_of(tile)?;
    let is_ga = matches!(from, State::Ga { .. });
    let to = match (target, is_ga) {
        (TileState::Withdrawn, _) if from == State::Withdrawn => {
            decide(tile, |t| Ok(t.confirm_removal()))?;
            return Ok(format!("withdrawal confirmed by {rollout}{}", suffix(reason)));
        }
        (TileState::Withdrawn, _) => decide(tile, |t| t.withdraw(now).map(|_| t.state))?,
        (TileState::RollingOut, _) => decide(tile, |t| t.start_rollout(now).map(|_| t.state))?,
        (TileState::RolledOut, false) | (TileState::Ga, true) => {
            decide(tile, |t| t.complete_rollout(now).map(|_| t.state))?
        }
        (TileState::Ga, false) => decide(tile, |t| t.reach_ga(now).map(|_| t.state))?,
        (TileState::Scheduled, _) => decide(tile, |t| t.roll_back(now).map(|_| t.state))?,
        (TileState::Unspecified | TileState::Draft | TileState::Validating | TileState::SignedOff, _)
        | (TileState::RolledOut, true) => {
            return Err(Error::FailedPrecondition(format!(
                "the rollout service cannot move a tile to {}",
                target.short_name()
            )));
        }
    };
    tile.state_reason = reason.to_string();
    Ok(format!("{} -> {to}{}", from, suffix(reason)))
}

/// Withdraws the tile: at once if it was never live, else marked for the
/// removal roll-out.
pub fn withdraw(tile: &mut Tile, reason: &str, now: Timestamp) -> Result<String> {
    let from = state_of(tile)?;
    let to = decide(tile, |t| t.withdraw(now).map(|_| t.state))?;
    tile.state_reason = reason.to_string();
    Ok(format!("withdrawn ({from} -> {to}){}", suffix(reason)))
}

/// Makes `new` the next revision of `tile` (which the caller read).
pub fn apply_new_revision(tile: &mut Tile, new: NewRevision, now: Timestamp, actor: &str) -> Result<String> {
    if new.id != tile.id {
        return Err(Error::invalid(
            "id",
            format!("the document is for {}, not {}", quote(&new.id), quote(&tile.id)),
        ));
    }
    let old_config = tile.config.clone().unwrap_or_default();
    let old_checklist = readiness_edge::checklist_of(tile)?;
    let effects = decide(tile, |t| t.new_revision(now, kind(new.self_test)))?;
    let dropped = readiness_edge::fresh_checklist(tile, &old_checklist)?;
    tile.latest_revision = tile.revision;
    tile.name = new.config.name.clone();
    tile.partner_id = new.partner_id;
    tile.raw_config = new.raw;
    tile.config_format = new.format as i32;
    tile.warnings = new.warnings;
    tile.maintenance = if opens_maintenance(&effects) {
        let mut info = new
            .maintenance
            .unwrap_or_else(|| derive_maintenance(&old_config, &new.config));
        if info.summary.is_empty() {
            info.summary = new.note.clone();
        }
        Some(info)
    } else {
        new.maintenance
            .map(|mut m| {
                if m.summary.is_empty() {
                    m.summary = new.note.clone();
                }
                m
            })
            .or_else(|| {
                (!new.note.is_empty()).then(|| MaintenanceInfo {
                    summary: new.note.clone(),
                    ..Default::default()
                })
            })
    };
    tile.config = Some(new.config);
    tile.updated_at = Some(to_proto_timestamp(now));
    tile.updated_by = actor.to_string();
    Ok(format!(
        "created revision {}{}{}",
        tile.revision,
        suffix(&new_note(tile)),
        dropped.map(|d| format!("; {d}")).unwrap_or_default()
    ))
}

fn new_note(tile: &Tile) -> String {
    tile.maintenance
        .as_ref()
        .map(|m| m.summary.clone())
        .unwrap_or_default()
}

/// What a configuration change affects: a change of `supported_clouds`
/// affects the clouds added and removed; any other change every cloud the
/// new configuration supports.
pub fn derive_maintenance(old: &PartnerConfig, new: &PartnerConfig) -> MaintenanceInfo {
    let mut only_clouds_changed = old.clone();
    only_clouds_changed.supported_clouds = new.supported_clouds.clone();
    MaintenanceInfo {
        affected_clouds: affected_clouds(
            &old.supported_clouds,
            &new.supported_clouds,
            &only_clouds_changed == new,
        ),
        ..Default::default()
    }
}

/// Turns configuration problems into violations, one per JSON path.
pub fn violations(issues: &[ConfigIssue]) -> Vec<Violation> {
    issues
        .iter()
        .map(|i| Violation::new(i.path.clone(), i.message.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tilewave_proto::common::v1::Cloud;

    fn tile() -> Tile {
        NewRevision {
            id: "riverflow".into(),
            partner_id: "riverflow".into(),
            config: PartnerConfig {
                name: "Riverflow".into(),
                ..Default::default()
            },
            raw: String::new(),
            format: ConfigFormat::PartnerConfig,
            self_test: false,
            workspace: String::new(),
            warnings: vec![],
            note: String::new(),
            maintenance: None,
        }
        .into_first_tile(Timestamp::UNIX_EPOCH, "alice")
    }

    /// Every open validation case passed (the engineering sign-off's gate).
    fn pass_all(t: &mut Tile) {
        let v = Validation {
            revision: 0,
            cases: Cases::AllOpen,
            outcome: tilewave_core::readiness::validation::Outcome::Pass,
            note: "ran".into(),
            evidence: None,
        };
        record_validation(t, &v, "carol", Timestamp::UNIX_EPOCH).unwrap();
    }

    #[test]
    fn five_sign_offs_complete_the_launch_set_and_a_new_revision_clears_them() {
        let mut t = tile();
        let now = Timestamp::UNIX_EPOCH;
        set_test_workspace(&mut t, "1", now).unwrap();
        assert!(
            matches!(
                record_sign_off(&mut t, Role::Engineering, 1, "bob", "", now),
                Err(Error::FailedPrecondition(m)) if m.contains("P100") && m.contains("tilewave tile validate")
            ),
            "the engineering sign-off waits for the checklist"
        );
        pass_all(&mut t);
        for (i, r) in Role::ALL.into_iter().enumerate() {
            record_sign_off(&mut t, r, 1, "bob", "", now).unwrap();
            assert_eq!(t.missing_sign_offs.len(), 4 - i);
        }
        assert_eq!(t.state, TileState::SignedOff as i32);
        let new = NewRevision {
            id: "riverflow".into(),
            partner_id: "riverflow".into(),
            config: PartnerConfig {
                name: "Riverflow".into(),
                description_blurb: "v2".into(),
                ..Default::default()
            },
            raw: String::new(),
            format: ConfigFormat::PartnerConfig,
            self_test: false,
            workspace: String::new(),
            warnings: vec![],
            note: "blurb".into(),
            maintenance: None,
        };
        let summary = apply_new_revision(&mut t, new, now, "alice").unwrap();
        assert!(
            summary.contains("21 results recorded on r1 (21 PASS) are not carried over"),
            "{summary}"
        );
        assert_eq!(t.validation.as_ref().unwrap().open_cases.len(), 21);
        assert_eq!(t.revision, 2);
        assert_eq!(t.missing_sign_offs.len(), 5);
        assert_eq!(t.state, TileState::Validating as i32);
        // A sign-off on the old revision is refused.
        assert!(matches!(
            record_sign_off(&mut t, Role::Legal, 1, "bob", "", now),
            Err(Error::FailedPrecondition(_))
        ));
    }

    #[test]
    fn unknown_roles_and_bad_workspaces_name_their_field() {
        assert!(matches!(role("role", 42), Err(Error::Invalid { .. })));
        assert!(matches!(role("role", 0), Err(Error::Invalid { .. })));
        assert!(check_workspace("workspace_id", "12ab", false).is_err());
        assert!(check_workspace("workspace_id", "", false).is_err());
        assert!(check_workspace("workspace_id", "6051921418418893", false).is_ok());
    }

    #[test]
    fn maintenance_of_a_cloud_addition_affects_only_that_cloud() {
        let old = PartnerConfig {
            name: "L".into(),
            supported_clouds: vec![Cloud::Azure as i32],
            ..Default::default()
        };
        let mut new = old.clone();
        new.supported_clouds.push(Cloud::Gcp as i32);
        assert_eq!(
            derive_maintenance(&old, &new).affected_clouds,
            vec![Cloud::Gcp as i32]
        );
        new.hostnames.push("x.example".into());
        assert_eq!(
            derive_maintenance(&old, &new).affected_clouds,
            vec![Cloud::Azure as i32, Cloud::Gcp as i32]
        );
    }

    #[test]
    fn rollout_moves_map_to_lifecycle_events() {
        let mut t = tile();
        let now = Timestamp::UNIX_EPOCH;
        // Not scheduled: the rollout service cannot start it.
        assert!(advance(&mut t, TileState::RollingOut, 1, "", "r1", now).is_err());
        assert!(advance(&mut t, TileState::Draft, 1, "", "r1", now).is_err());
        set_test_workspace(&mut t, "1", now).unwrap();
        pass_all(&mut t);
        for r in Role::ALL {
            record_sign_off(&mut t, r, 1, "bob", "", now).unwrap();
        }
        let mut ga = GaDate {
            ga: Some(Timestamp::from_second(1_000_000_000).unwrap()),
            ..Default::default()
        };
        assert!(
            matches!(set_ga(&mut t.clone(), &ga, "bob", now), Err(Error::FailedPrecondition(m)) if m.contains("mini-site")),
            "go-to-market items are pending"
        );
        ga.gtm_override = "partner asked".into();
        let summary = set_ga(&mut t, &ga, "bob", now).unwrap();
        assert!(summary.contains("go-to-market override"), "{summary}");
        assert_eq!(
            t.gtm_override.as_ref().unwrap().pending,
            ["mini-site", "logo", "blog", "docs"]
        );
        assert!(
            advance(&mut t, TileState::RollingOut, 2, "", "r1", now).is_err(),
            "wrong revision"
        );
        advance(&mut t, TileState::RollingOut, 1, "", "r1", now).unwrap();
        advance(&mut t, TileState::RolledOut, 1, "", "r1", now).unwrap();
        advance(&mut t, TileState::Ga, 1, "", "timer", now).unwrap();
        assert_eq!(t.state, TileState::Ga as i32);
        assert_eq!(t.ga_revision, 1);
        advance(&mut t, TileState::Withdrawn, 1, "", "r2", now).unwrap();
        assert!(
            t.withdraw_requested_at.is_some(),
            "a GA tile needs a removal roll-out"
        );
        advance(&mut t, TileState::Withdrawn, 1, "", "r2", now).unwrap();
        assert_eq!(t.state, TileState::Withdrawn as i32);
        assert!(t.withdraw_requested_at.is_none(), "the removal is confirmed");
    }
}
