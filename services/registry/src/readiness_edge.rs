//! Launch readiness at the edge (issue 14): the validation checklist of the
//! latest revision and the go-to-market items, stored on the `Tile`
//! (`validation`, `gtm`, `gtm_override`, `ga_slot`), converted to core's
//! [`Checklist`] and [`GtmReadiness`] and back. Core decides every rule (the
//! engineering sign-off gate, the fresh checklist of a new revision, the
//! GA commit gate); this module only translates and names the request
//! field a refusal is about.

use jiff::Timestamp;
use jiff::civil::Date;
use tilewave_core::quote::quote;
use tilewave_core::readiness::gtm::{
    self, GaCommit, GtmError, GtmGateError, GtmItem, GtmItemState as CoreGtmItemState,
    GtmOverride as CoreGtmOverride, GtmReadiness, GtmUpdate,
};
use tilewave_core::readiness::validation::{
    CaseId, CaseResult, Checklist, ChecklistError, Evidence, Outcome, VALIDATE_COMMAND, VALIDATION_CASES,
    ValidationGateError,
};
use tilewave_core::signoff::{RevisionNo, Role, SignOffs};
use tilewave_core::slug::TileId;
use tilewave_proto::registry::v1::{
    GtmItemState, GtmOverride, GtmStatus, Tile, ValidationChecklist, ValidationEntry, ValidationOutcome,
};
use tilewave_store::clock::{from_proto_timestamp, to_proto_timestamp};

use crate::domain::{core_tile, given_revision, revision_no};
use crate::error::{Error, Result};

/// A stored readiness record that cannot be read back (never written by
/// this code; reported rather than guessed).
fn unreadable(tile: &Tile, what: &str, e: impl std::fmt::Display) -> Error {
    Error::FailedPrecondition(format!("tile {} has an unreadable {what}: {e}", quote(&tile.id)))
}

fn stored_time(tile: &Tile, what: &str, t: Option<&prost_types::Timestamp>) -> Result<Timestamp> {
    t.map(from_proto_timestamp)
        .transpose()
        .map_err(|e| unreadable(tile, what, e))
        .map(Option::unwrap_or_default)
}

/// A wire outcome, checked: PASS, FAIL or WAIVED.
pub fn outcome(field: &str, raw: i32) -> Result<Outcome> {
    match ValidationOutcome::try_from(raw) {
        Ok(ValidationOutcome::Pass) => Ok(Outcome::Pass),
        Ok(ValidationOutcome::Fail) => Ok(Outcome::Fail),
        Ok(ValidationOutcome::Waived) => Ok(Outcome::Waived),
        Ok(ValidationOutcome::Unspecified) | Err(_) => Err(Error::invalid(
            field,
            format!("{raw} is not a validation outcome; give PASS, FAIL or WAIVED"),
        )),
    }
}

fn outcome_to_proto(o: Outcome) -> ValidationOutcome {
    match o {
        Outcome::Pass => ValidationOutcome::Pass,
        Outcome::Fail => ValidationOutcome::Fail,
        Outcome::Waived => ValidationOutcome::Waived,
    }
}

/// The stored checklist of the tile's latest revision (a fresh one when
/// none is stored, or when the stored one is another revision's).
pub(crate) fn checklist_of(tile: &Tile) -> Result<Checklist> {
    let current = revision_no("revision", tile.revision)?;
    let Some(v) = tile.validation.as_ref().filter(|v| v.revision == tile.revision) else {
        return Ok(Checklist::new(current));
    };
    let mut checklist = Checklist::new(current);
    for e in &v.cases {
        let outcome = match ValidationOutcome::try_from(e.outcome) {
            Ok(ValidationOutcome::Pass) => Outcome::Pass,
            Ok(ValidationOutcome::Fail) => Outcome::Fail,
            Ok(ValidationOutcome::Waived) => Outcome::Waived,
            Ok(ValidationOutcome::Unspecified) | Err(_) => continue,
        };
        let evidence = if e.evidence_tile.is_empty() {
            None
        } else {
            Some(Evidence {
                self_test_tile: TileId::parse(&e.evidence_tile)
                    .map_err(|err| unreadable(tile, "validation evidence", err))?,
                revision: revision_no("validation.evidence_revision", e.evidence_revision)?,
            })
        };
        let result = CaseResult {
            outcome,
            note: e.note.clone(),
            by: e.recorded_by.clone(),
            at: stored_time(tile, "validation time", e.recorded_at.as_ref())?,
            evidence,
        };
        checklist
            .record(current, &e.case_id, result)
            .map_err(|err| unreadable(tile, "validation result", err))?;
    }
    Ok(checklist)
}

/// A checklist as stored: every case in table order, and the open ones.
pub(crate) fn checklist_to_proto(c: &Checklist) -> ValidationChecklist {
    ValidationChecklist {
        revision: i64::from(c.revision().0),
        cases: c
            .entries()
            .map(|(case, r)| ValidationEntry {
                case_id: case.as_str().to_owned(),
                title: case.title().to_owned(),
                outcome: r.map_or(ValidationOutcome::Unspecified, |r| outcome_to_proto(r.outcome)) as i32,
                note: r.map(|r| r.note.clone()).unwrap_or_default(),
                recorded_by: r.map(|r| r.by.clone()).unwrap_or_default(),
                recorded_at: r.map(|r| to_proto_timestamp(r.at)),
                evidence_tile: r
                    .and_then(|r| r.evidence.as_ref())
                    .map(|e| e.self_test_tile.to_string())
                    .unwrap_or_default(),
                evidence_revision: r
                    .and_then(|r| r.evidence.as_ref())
                    .map_or(0, |e| i64::from(e.revision.0)),
            })
            .collect(),
        open_cases: c
            .open_cases()
            .iter()
            .map(|o| o.case.as_str().to_owned())
            .collect(),
    }
}

/// The go-to-market items set on the tile (the derived agreement and items
/// never set are not among them).
pub(crate) fn gtm_of(tile: &Tile) -> Result<GtmReadiness> {
    let mut g = GtmReadiness::new();
    for s in tile.gtm.iter().filter(|s| !s.derived && !s.updated_by.is_empty()) {
        let item: GtmItem = s
            .item
            .parse()
            .map_err(|e| unreadable(tile, "go-to-market item", e))?;
        if item.derived() {
            continue;
        }
        let status = match GtmStatus::try_from(s.status) {
            Ok(GtmStatus::Done) => gtm::GtmStatus::Done,
            Ok(GtmStatus::Pending | GtmStatus::Unspecified) | Err(_) => gtm::GtmStatus::Pending,
        };
        let due: Date = s
            .due
            .parse()
            .map_err(|e| unreadable(tile, "go-to-market due date", e))?;
        g.set(
            item,
            GtmUpdate {
                status: Some(status),
                owner: Some(s.owner.clone()),
                due: Some(due),
                link: (!s.link.is_empty()).then(|| s.link.clone()),
                by: s.updated_by.clone(),
                at: stored_time(tile, "go-to-market time", s.updated_at.as_ref())?,
            },
        )
        .map_err(|e| unreadable(tile, "go-to-market item", e))?;
    }
    Ok(g)
}

fn gtm_item_to_proto(s: &CoreGtmItemState) -> GtmItemState {
    GtmItemState {
        item: s.item.as_str().to_owned(),
        title: s.item.title().to_owned(),
        status: match s.status {
            gtm::GtmStatus::Done => GtmStatus::Done,
            gtm::GtmStatus::Pending => GtmStatus::Pending,
        } as i32,
        owner: s.owner.clone().unwrap_or_default(),
        due: s.due.map(|d| d.to_string()).unwrap_or_default(),
        link: s.link.clone().unwrap_or_default(),
        derived: s.item.derived(),
        updated_by: s.by.clone().unwrap_or_default(),
        updated_at: s.at.map(to_proto_timestamp),
    }
}

/// The readiness fields of a new partner tile at revision 1: every case
/// open, every item pending. A self-test tile has none.
pub(crate) fn first(self_test: bool) -> (Option<ValidationChecklist>, Vec<GtmItemState>) {
    if self_test {
        return (None, vec![]);
    }
    let items = GtmReadiness::new().items(&SignOffs::new(RevisionNo::FIRST));
    (
        Some(checklist_to_proto(&Checklist::new(RevisionNo::FIRST))),
        items.iter().map(gtm_item_to_proto).collect(),
    )
}

/// Brings the derived readiness fields up to date after any change: the
/// open cases, every go-to-market item (the agreement read from the legal
/// sign-off of the latest revision), and no slot or override without a GA
/// date to hold them (nor a slot once withdrawn). A self-test tile has no
/// checklist and no items.
pub(crate) fn refresh(tile: &mut Tile) -> Result<()> {
    let withdrawn = tile.state == tilewave_proto::common::v1::TileState::Withdrawn as i32;
    if tile.ga_time.is_none() || withdrawn {
        tile.ga_slot = None;
    }
    if tile.ga_slot.as_ref().is_some_and(|s| s.at != tile.ga_time) {
        tile.ga_slot = None;
    }
    if tile.ga_time.is_none() {
        tile.gtm_override = None;
    }
    if tile.self_test {
        tile.validation = None;
        tile.gtm.clear();
        return Ok(());
    }
    let checklist = checklist_of(tile)?;
    tile.validation = Some(checklist_to_proto(&checklist));
    let items = core_tile(tile)?.gtm_items(&gtm_of(tile)?);
    tile.gtm = items.iter().map(gtm_item_to_proto).collect();
    Ok(())
}

/// The engineering sign-off gate (core's `validation_gate`): refused while
/// a case of the revision's checklist is open.
pub(crate) fn sign_off_gate(tile: &Tile, role: Role, revision: RevisionNo) -> Result<()> {
    let checklist = checklist_of(tile)?;
    core_tile(tile)?
        .validation_gate(revision, role, &checklist)
        .map_err(|e| Error::FailedPrecondition(gate_message(&e)))
}

/// The longest refusal sent whole: `tilewave_service::bounded` cuts a
/// status message at 1024 bytes once percent-encoded (spaces and
/// backticks stay as they are, but leave room for what is escaped).
const GATE_MESSAGE_BYTES: usize = 640;

/// Core's refusal; when its titles make it too long for a status message,
/// the same refusal with the open cases by id only.
fn gate_message(e: &ValidationGateError) -> String {
    let full = e.to_string();
    if full.len() <= GATE_MESSAGE_BYTES {
        return full;
    }
    let open: Vec<String> = e
        .open
        .iter()
        .map(|o| match o.outcome {
            Some(outcome) => format!("{} ({outcome})", o.case),
            None => o.case.to_string(),
        })
        .collect();
    format!(
        "engineering sign-off of revision {} refused: {} of {} validation cases {} still open: {}; record each \
         result with `{VALIDATE_COMMAND}` (a case that does not apply is waived with the reason; `tilewave tile \
         checklist TILE` shows every case)",
        e.revision,
        e.open.len(),
        VALIDATION_CASES.len(),
        if e.open.len() == 1 { "is" } else { "are" },
        open.join(", ")
    )
}

/// After a new revision (the tile already at it): starts its fresh
/// checklist from `old` and says what was dropped, for the audit.
pub(crate) fn fresh_checklist(tile: &mut Tile, old: &Checklist) -> Result<Option<String>> {
    if tile.self_test {
        return Ok(None);
    }
    let revision = revision_no("revision", tile.revision)?;
    let (fresh, dropped) = old.next_revision(revision).map_err(checklist_refusal)?;
    tile.validation = Some(checklist_to_proto(&fresh));
    Ok(Some(dropped.to_string()))
}

fn checklist_refusal(e: ChecklistError) -> Error {
    match e {
        ChecklistError::UnknownCase(_) => Error::invalid("case_ids", e.to_string()),
        ChecklistError::WaiverWithoutReason { .. } => Error::invalid("note", e.to_string()),
        ChecklistError::WrongRevision { .. }
        | ChecklistError::NoRecorder { .. }
        | ChecklistError::RevisionNotNewer { .. } => Error::FailedPrecondition(e.to_string()),
    }
}

/// Which cases a RecordValidation names.
#[derive(Debug, Clone)]
pub enum Cases {
    /// These ids, as given (checked against the table here).
    Named(Vec<String>),
    /// Every case still open.
    AllOpen,
}

/// A validation result to record, as checked at the handler.
#[derive(Debug, Clone)]
pub struct Validation {
    /// The revision (0: the latest).
    pub revision: i64,
    /// The cases.
    pub cases: Cases,
    /// PASS, FAIL or WAIVED.
    pub outcome: Outcome,
    /// What was seen (required for a waiver).
    pub note: String,
    /// The self-test tile the results rest on, checked to be one.
    pub evidence: Option<Evidence>,
}

/// Records a validation result on the named cases (or every open one) of
/// the latest revision; all or nothing.
pub fn record_validation(tile: &mut Tile, v: &Validation, actor: &str, now: Timestamp) -> Result<String> {
    if tile.self_test {
        return Err(Error::FailedPrecondition(format!(
            "tile {} is a self-test tile: it has no validation checklist (it is never launched)",
            quote(&tile.id)
        )));
    }
    let mut checklist = checklist_of(tile)?;
    let cases: Vec<CaseId> = match &v.cases {
        Cases::Named(ids) => ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                id.parse::<CaseId>()
                    .map_err(|e| Error::invalid(format!("case_ids[{i}]"), e.to_string()))
            })
            .collect::<Result<_>>()?,
        Cases::AllOpen => checklist.open_cases().iter().map(|o| o.case).collect(),
    };
    let given = given_revision(tile, v.revision)?;
    for case in &cases {
        let result = CaseResult {
            outcome: v.outcome,
            note: v.note.clone(),
            by: actor.to_owned(),
            at: now,
            evidence: v.evidence.clone(),
        };
        checklist
            .record(given, case.as_str(), result)
            .map_err(checklist_refusal)?;
    }
    if cases.is_empty() {
        return Err(Error::FailedPrecondition(format!(
            "every validation case of {} already passed or was waived: nothing is open",
            checklist.revision()
        )));
    }
    tile.validation = Some(checklist_to_proto(&checklist));
    let ids: Vec<&str> = cases.iter().map(|c| c.as_str()).collect();
    let evidence = v
        .evidence
        .as_ref()
        .map(|e| format!(" (evidence: {e})"))
        .unwrap_or_default();
    let note = if v.note.is_empty() {
        String::new()
    } else {
        format!(": {}", quote(&v.note))
    };
    Ok(format!(
        "{} {} on {}{evidence}{note}",
        ids.join(", "),
        v.outcome,
        checklist.revision()
    ))
}

/// A go-to-market change as the request gives it (empty: leave it).
#[derive(Debug, Clone)]
pub struct GtmSet {
    /// The item's name.
    pub item: String,
    /// The wire status (UNSPECIFIED: leave it).
    pub status: i32,
    /// Who delivers it.
    pub owner: String,
    /// `YYYY-MM-DD`.
    pub due: String,
    /// An https URL.
    pub link: String,
}

/// A due date: exactly `YYYY-MM-DD`, a real date.
fn due_date(raw: &str) -> Result<Date> {
    let shaped = raw.len() == 10
        && raw.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    shaped
        .then(|| raw.parse::<Date>().ok())
        .flatten()
        .ok_or_else(|| Error::invalid("due", format!("{} is not a date YYYY-MM-DD", quote(raw))))
}

fn gtm_refusal(e: GtmError) -> Error {
    let field = match &e {
        GtmError::UnknownItem(_) | GtmError::Derived => "item",
        GtmError::NoOwner { .. } => "owner",
        GtmError::NoDueDate { .. } => "due",
        GtmError::NoLink { .. } | GtmError::BadLink { .. } => "link",
        GtmError::NothingToSet { .. } => "status",
        GtmError::NoRecorder { .. } => return Error::FailedPrecondition(e.to_string()),
    };
    Error::invalid(field, e.to_string())
}

/// Sets one go-to-market item (core's `GtmReadiness::set`).
pub fn set_gtm_item(tile: &mut Tile, s: &GtmSet, actor: &str, now: Timestamp) -> Result<String> {
    let item: GtmItem = s
        .item
        .parse()
        .map_err(|e| gtm_refusal(GtmError::UnknownItem(e)))?;
    let status = match GtmStatus::try_from(s.status) {
        Ok(GtmStatus::Unspecified) => None,
        Ok(GtmStatus::Pending) => Some(gtm::GtmStatus::Pending),
        Ok(GtmStatus::Done) => Some(gtm::GtmStatus::Done),
        Err(_) => {
            return Err(Error::invalid(
                "status",
                format!("{} is not a go-to-market status; give DONE or PENDING", s.status),
            ));
        }
    };
    let due = if s.due.is_empty() {
        None
    } else {
        Some(due_date(&s.due)?)
    };
    if tile.self_test {
        return Err(Error::FailedPrecondition(format!(
            "tile {} is a self-test tile: it is never launched, so it has no go-to-market items",
            quote(&tile.id)
        )));
    }
    let mut g = gtm_of(tile)?;
    let change = g
        .set(
            item,
            GtmUpdate {
                status,
                owner: (!s.owner.is_empty()).then(|| s.owner.clone()),
                due,
                link: (!s.link.is_empty()).then(|| s.link.clone()),
                by: actor.to_owned(),
                at: now,
            },
        )
        .map_err(gtm_refusal)?;
    let items = core_tile(tile)?.gtm_items(&g);
    tile.gtm = items.iter().map(gtm_item_to_proto).collect();
    let shown = items
        .iter()
        .find(|i| i.item == change.item)
        .map(ToString::to_string)
        .unwrap_or_else(|| change.item.to_string());
    let link = change
        .after
        .link
        .as_deref()
        .map(|l| format!(", link {}", quote(l)))
        .unwrap_or_default();
    Ok(format!("go-to-market {shown}{link}"))
}

/// The GA commit gate (core's `ga_commit_gate`) for a date being set on a
/// partner tile: the override, when used, is recorded on the tile and
/// returned for the audit summary.
pub(crate) fn ga_gate(tile: &mut Tile, over: &str, actor: &str, now: Timestamp) -> Result<Option<String>> {
    let over = (!over.is_empty()).then(|| CoreGtmOverride {
        reason: over.to_owned(),
        by: actor.to_owned(),
        at: now,
    });
    let commit = core_tile(tile)?
        .ga_commit_gate(&gtm_of(tile)?, over)
        .map_err(|e| match e {
            GtmGateError::Pending { .. } => Error::FailedPrecondition(e.to_string()),
            GtmGateError::OverrideWithoutReason | GtmGateError::OverrideWithoutName => {
                Error::invalid("gtm_override", e.to_string())
            }
        })?;
    match commit {
        GaCommit::Ready => {
            tile.gtm_override = None;
            Ok(None)
        }
        GaCommit::Overridden(o) => {
            tile.gtm_override = Some(GtmOverride {
                reason: o.over.reason.clone(),
                by: o.over.by.clone(),
                at: Some(to_proto_timestamp(o.over.at)),
                pending: o.pending.iter().map(|i| i.as_str().to_owned()).collect(),
            });
            Ok(Some(o.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_dates_are_exactly_yyyy_mm_dd() {
        assert!(due_date("2026-12-01").is_ok());
        for bad in [
            "2026-13-01",
            "2026-1-01",
            "01.12.2026",
            "2026-12-01T00:00",
            "",
            "tomorrow",
        ] {
            assert!(due_date(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_checklist_survives_the_round_trip() {
        let mut c = Checklist::new(RevisionNo(2));
        let r = CaseResult {
            outcome: Outcome::Waived,
            note: "no connectors".into(),
            by: "ana".into(),
            at: Timestamp::UNIX_EPOCH,
            evidence: Some(Evidence {
                self_test_tile: TileId::parse("rf-self-test").unwrap(),
                revision: RevisionNo(3),
            }),
        };
        c.record(RevisionNo(2), "P900", r).unwrap();
        let tile = Tile {
            id: "rf".into(),
            revision: 2,
            validation: Some(checklist_to_proto(&c)),
            ..Default::default()
        };
        assert_eq!(checklist_of(&tile).unwrap(), c);
        assert_eq!(tile.validation.as_ref().unwrap().open_cases.len(), 20);
    }
}
#[cfg(test)]
mod gate_tests {
    use super::*;

    #[test]
    fn a_long_refusal_lists_open_cases_by_id() {
        let c = Checklist::new(RevisionNo(1));
        let e = c.require_complete(RevisionNo(1)).unwrap_err();
        let m = gate_message(&e);
        assert!(m.len() <= GATE_MESSAGE_BYTES, "{} {m}", m.len());
        assert!(
            m.contains("P100, P101") && m.contains("tilewave tile validate"),
            "{m}"
        );
    }
}
