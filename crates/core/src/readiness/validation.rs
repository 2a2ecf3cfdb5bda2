//! The validation checklist (docs/domain.md "Validation test cases"): the
//! Partner Connect test cases P100 to P900, run against a tile while it is
//! shown in its test workspace, and the result of each on one revision.
//!
//! The cases are data, [`VALIDATION_CASES`], not code: adding one is one
//! line. A [`Checklist`] belongs to one revision, like the sign-offs: a
//! result must name the current revision, and a new revision starts a fresh
//! checklist through [`Checklist::next_revision`], which returns what it
//! dropped so the caller can say so; nothing is carried over silently.
//!
//! The engineering sign-off is the functional sign-off, so it waits for the
//! checklist: [`sign_off_gate`] refuses it while any case is open (neither
//! passed nor waived), listing the open cases and the command that records
//! a result ([`VALIDATE_COMMAND`]).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::quote::quoted;
use crate::signoff::{RevisionNo, Role};
use crate::slug::TileId;

/// One Partner Connect validation case: its id and what it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidationCase {
    /// The id the certification suite and the CLI use, `P100`.
    pub id: &'static str,
    /// What the case covers, as /work/shared DOMAIN.md names it (which
    /// names the groups, not each case of a group).
    pub title: &'static str,
}

/// Every validation case, in order (DOMAIN.md, "The lifecycle of a tile",
/// item 4). A case that does not apply to a partner (the connector list for
/// a partner without connectors) is waived with that reason.
pub const VALIDATION_CASES: [ValidationCase; 21] = [
    case("P100", "new user, new workspace"),
    case("P101", "new user, new workspace"),
    case(
        "P200",
        "core integration, with Unity Catalog and with the Hive metastore",
    ),
    case("P201", "destination"),
    case("P300", "connection reuse"),
    case("P301", "connection reuse"),
    case("P302", "connection reuse"),
    case("P400", "deletion"),
    case("P401", "deletion"),
    case("P402", "deletion"),
    case("P403", "deletion"),
    case("P404", "deletion"),
    case("P405", "deletion"),
    case("P500", "expired trials"),
    case("P501", "expired trials"),
    case("P502", "expired trials"),
    case("P600", "second workspace"),
    case("P700", "demo"),
    case("P800", "test-connection"),
    case("P801", "test-connection"),
    case("P900", "connector list"),
];

const fn case(id: &'static str, title: &'static str) -> ValidationCase {
    ValidationCase { id, title }
}

/// The command that records a validation result, as refusals name it.
pub const VALIDATE_COMMAND: &str = "tilewave tile validate TILE CASE --pass|--fail|--waive --note ...";

/// A validation case known to [`VALIDATION_CASES`]: only [`FromStr`] and
/// [`CaseId::all`] make one, so it always names a real case. Orders as the
/// table does; serialized as its id (`"P100"`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CaseId(u8);

impl CaseId {
    /// Every case, in table order.
    pub fn all() -> impl Iterator<Item = CaseId> {
        (0..VALIDATION_CASES.len()).map(|i| CaseId(i as u8))
    }

    /// The case's row of [`VALIDATION_CASES`].
    pub fn case(self) -> &'static ValidationCase {
        // The field is private and only ever an index of the table.
        &VALIDATION_CASES[usize::from(self.0)]
    }

    /// The id, `P100`.
    pub fn as_str(self) -> &'static str {
        self.case().id
    }

    /// What the case covers.
    pub fn title(self) -> &'static str {
        self.case().title
    }
}

impl fmt::Debug for CaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for CaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A case id that is not in [`VALIDATION_CASES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown validation case {}; the cases are {}", quoted(.0), all_ids())]
pub struct UnknownCase(pub String);

fn all_ids() -> String {
    CaseId::all().map(CaseId::as_str).collect::<Vec<_>>().join(", ")
}

impl FromStr for CaseId {
    type Err = UnknownCase;

    /// Accepts the ids of [`VALIDATION_CASES`], case-insensitively and
    /// trimmed (`p100` is `P100`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let want = s.trim();
        CaseId::all()
            .find(|c| c.as_str().eq_ignore_ascii_case(want))
            .ok_or_else(|| UnknownCase(s.to_string()))
    }
}

impl Serialize for CaseId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CaseId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The result recorded for a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Outcome {
    /// The case passed.
    Pass,
    /// The case failed: it stays open until it passes or is waived.
    Fail,
    /// The case is not required for this tile, for the reason in the note.
    Waived,
}

impl Outcome {
    /// `PASS`, `FAIL` or `WAIVED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Waived => "WAIVED",
        }
    }

    /// True when the case no longer holds up the engineering sign-off.
    pub fn closes(self) -> bool {
        match self {
            Outcome::Pass | Outcome::Waived => true,
            Outcome::Fail => false,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a result's evidence is: the self-test tile the partner ran the case
/// with, and its revision (whose test-connection results back the claim).
/// The registry checks that the tile exists and is a self-test tile; this
/// module only records the reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// The self-test tile.
    pub self_test_tile: TileId,
    /// Its revision the results came from.
    pub revision: RevisionNo,
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "self-test tile {} {}", self.self_test_tile, self.revision)
    }
}

/// One recorded result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseResult {
    /// PASS, FAIL or WAIVED.
    pub outcome: Outcome,
    /// What was seen; for a waiver, why the case is not required (then it
    /// must not be blank).
    pub note: String,
    /// Who recorded it, for the audit (the caller's identity).
    pub by: String,
    /// When, in domain time (passed in: this crate reads no clock).
    pub at: Timestamp,
    /// The self-test results the outcome rests on, if attached.
    pub evidence: Option<Evidence>,
}

/// Why a checklist operation is refused. Nothing changes on a refusal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChecklistError {
    /// The case is not one of [`VALIDATION_CASES`].
    #[error(transparent)]
    UnknownCase(#[from] UnknownCase),
    /// The result names a revision other than the checklist's.
    #[error(
        "validation result for revision {given} refused: the tile's current revision is {current}, and results belong to the revision they were run against"
    )]
    WrongRevision {
        /// The revision the caller named.
        given: RevisionNo,
        /// The checklist's (the tile's current) revision.
        current: RevisionNo,
    },
    /// A waiver with a blank note.
    #[error(
        "waiving {case} ({title}) needs a reason: say why the case is not required with --note REASON",
        title = .case.title()
    )]
    WaiverWithoutReason {
        /// The case.
        case: CaseId,
    },
    /// A result that names nobody as its recorder.
    #[error("the result for {case} names nobody as its recorder; every result records who recorded it")]
    NoRecorder {
        /// The case.
        case: CaseId,
    },
    /// A fresh checklist must be for a later revision.
    #[error(
        "a fresh validation checklist for revision {given} refused: it does not follow revision {current}"
    )]
    RevisionNotNewer {
        /// The revision the caller named.
        given: RevisionNo,
        /// The checklist's revision.
        current: RevisionNo,
    },
}

/// A case that holds up the engineering sign-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenCase {
    /// The case.
    pub case: CaseId,
    /// Its failed result, or `None` when nothing is recorded.
    pub outcome: Option<Outcome>,
}

impl fmt::Display for OpenCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.outcome.map_or("no result", Outcome::as_str);
        write!(f, "{} {} ({status})", self.case, self.case.title())
    }
}

/// The engineering sign-off refused: the checklist has open cases.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "engineering sign-off of revision {revision} refused: {} of {} validation cases {} still open: {}; record each result with `{VALIDATE_COMMAND}` (a case that does not apply is waived with the reason)",
    open.len(),
    VALIDATION_CASES.len(),
    if open.len() == 1 { "is" } else { "are" },
    open.iter().map(OpenCase::to_string).collect::<Vec<_>>().join(", ")
)]
pub struct ValidationGateError {
    /// The revision the sign-off is for.
    pub revision: RevisionNo,
    /// The open cases, in table order.
    pub open: Vec<OpenCase>,
}

/// What a result replaced, for the audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The case, parsed from the caller's id.
    pub case: CaseId,
    /// The result recorded before, which the new one replaces.
    pub replaced: Option<CaseResult>,
}

/// What a new revision's fresh checklist did not carry over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dropped {
    /// The revision the results were recorded on.
    pub from: RevisionNo,
    /// The new revision, whose checklist starts empty.
    pub to: RevisionNo,
    /// Every result recorded on `from`, by case.
    pub results: BTreeMap<CaseId, CaseResult>,
}

impl Dropped {
    /// True when nothing was recorded on the old revision.
    pub fn is_empty(&self) -> bool {
        self.results.is_empty()
    }
}

impl fmt::Display for Dropped {
    /// `revision r2 starts a fresh validation checklist: the 3 results
    /// recorded on r1 (2 PASS, 1 WAIVED) are not carried over; run the cases
    /// again on r2`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "revision {} starts a fresh validation checklist", self.to)?;
        if self.results.is_empty() {
            return write!(f, " (nothing was recorded on {})", self.from);
        }
        let counts: Vec<String> = [Outcome::Pass, Outcome::Fail, Outcome::Waived]
            .into_iter()
            .filter_map(|o| {
                let n = self.results.values().filter(|r| r.outcome == o).count();
                (n > 0).then(|| format!("{n} {o}"))
            })
            .collect();
        let n = self.results.len();
        write!(
            f,
            ": the {n} result{} recorded on {} ({}) {} not carried over; run the cases again on {}",
            if n == 1 { "" } else { "s" },
            self.from,
            counts.join(", "),
            if n == 1 { "is" } else { "are" },
            self.to
        )
    }
}

/// The validation results of one revision of a tile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checklist {
    revision: RevisionNo,
    results: BTreeMap<CaseId, CaseResult>,
}

impl Checklist {
    /// An empty checklist for `revision`: every case open.
    pub fn new(revision: RevisionNo) -> Self {
        Self {
            revision,
            results: BTreeMap::new(),
        }
    }

    /// The revision the results belong to.
    pub fn revision(&self) -> RevisionNo {
        self.revision
    }

    /// The result recorded for `case`, if any.
    pub fn get(&self, case: CaseId) -> Option<&CaseResult> {
        self.results.get(&case)
    }

    /// Every case in table order with its result, if recorded (what
    /// `tilewave tile checklist` shows).
    pub fn entries(&self) -> impl Iterator<Item = (CaseId, Option<&CaseResult>)> {
        CaseId::all().map(|c| (c, self.results.get(&c)))
    }

    /// Records `result` for `case` (an id such as `P100`) on `revision`,
    /// which must be the checklist's. A waiver needs a reason in its note;
    /// every result names who recorded it. Recording again replaces the
    /// earlier result (latest wins), which is returned for the audit.
    pub fn record(
        &mut self,
        revision: RevisionNo,
        case: &str,
        result: CaseResult,
    ) -> Result<Recorded, ChecklistError> {
        let case: CaseId = case.parse()?;
        if revision != self.revision {
            return Err(ChecklistError::WrongRevision {
                given: revision,
                current: self.revision,
            });
        }
        if result.outcome == Outcome::Waived && result.note.trim().is_empty() {
            return Err(ChecklistError::WaiverWithoutReason { case });
        }
        if result.by.trim().is_empty() {
            return Err(ChecklistError::NoRecorder { case });
        }
        let replaced = self.results.insert(case, result);
        Ok(Recorded { case, replaced })
    }

    /// The cases neither passed nor waived, in table order.
    pub fn open_cases(&self) -> Vec<OpenCase> {
        self.entries()
            .filter_map(|(case, r)| match r {
                Some(r) if r.outcome.closes() => None,
                r => Some(OpenCase {
                    case,
                    outcome: r.map(|r| r.outcome),
                }),
            })
            .collect()
    }

    /// True when every case passed or was waived.
    pub fn is_complete(&self) -> bool {
        self.open_cases().is_empty()
    }

    /// `Ok` when every case passed or was waived on `revision`; else the
    /// refusal listing the open cases (all of them when `revision` is not the
    /// checklist's: nothing is recorded for it).
    pub fn require_complete(&self, revision: RevisionNo) -> Result<(), ValidationGateError> {
        let open = if revision == self.revision {
            self.open_cases()
        } else {
            Checklist::new(revision).open_cases()
        };
        if open.is_empty() {
            Ok(())
        } else {
            Err(ValidationGateError { revision, open })
        }
    }

    /// The fresh, empty checklist of a new `revision` (after this one), and
    /// the results it did not carry over, for the caller to report.
    pub fn next_revision(&self, revision: RevisionNo) -> Result<(Checklist, Dropped), ChecklistError> {
        if revision <= self.revision {
            return Err(ChecklistError::RevisionNotNewer {
                given: revision,
                current: self.revision,
            });
        }
        let dropped = Dropped {
            from: self.revision,
            to: revision,
            results: self.results.clone(),
        };
        Ok((Checklist::new(revision), dropped))
    }
}

/// The gate a sign-off passes before the registry accepts it: the
/// engineering (functional) sign-off of `revision` is refused while any
/// validation case of `checklist` is open; every other role passes.
pub fn sign_off_gate(
    checklist: &Checklist,
    revision: RevisionNo,
    role: Role,
) -> Result<(), ValidationGateError> {
    match role {
        Role::Engineering => checklist.require_complete(revision),
        Role::PartnerSolutionArchitect | Role::Product | Role::Partner | Role::Legal => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R1: RevisionNo = RevisionNo(1);
    const R2: RevisionNo = RevisionNo(2);

    fn at() -> Timestamp {
        Timestamp::constant(1_760_000_000, 0)
    }

    fn result(outcome: Outcome, note: &str) -> CaseResult {
        CaseResult {
            outcome,
            note: note.into(),
            by: "ana".into(),
            at: at(),
            evidence: None,
        }
    }

    fn id(s: &str) -> CaseId {
        s.parse().unwrap()
    }

    /// A checklist on r1 with every case passed except those given.
    fn all_passed_except(except: &[(&str, Option<Outcome>)]) -> Checklist {
        let mut c = Checklist::new(R1);
        for case in CaseId::all() {
            match except.iter().find(|(e, _)| *e == case.as_str()) {
                Some((_, None)) => {}
                Some((_, Some(o))) => {
                    c.record(R1, case.as_str(), result(*o, "seen")).unwrap();
                }
                None => {
                    c.record(R1, case.as_str(), result(Outcome::Pass, "")).unwrap();
                }
            }
        }
        c
    }

    #[test]
    fn the_table_is_domain_md_s_list() {
        let ids: Vec<&str> = VALIDATION_CASES.iter().map(|c| c.id).collect();
        assert_eq!(
            ids,
            [
                "P100", "P101", "P200", "P201", "P300", "P301", "P302", "P400", "P401", "P402", "P403",
                "P404", "P405", "P500", "P501", "P502", "P600", "P700", "P800", "P801", "P900"
            ]
        );
        // (id, title)
        let titles = [
            ("P100", "new user, new workspace"),
            (
                "P200",
                "core integration, with Unity Catalog and with the Hive metastore",
            ),
            ("P201", "destination"),
            ("P302", "connection reuse"),
            ("P405", "deletion"),
            ("P501", "expired trials"),
            ("P600", "second workspace"),
            ("P700", "demo"),
            ("P801", "test-connection"),
            ("P900", "connector list"),
        ];
        for (case, title) in titles {
            assert_eq!(id(case).title(), title, "{case}");
        }
        // Ordered as the table, each id once.
        let all: Vec<CaseId> = CaseId::all().collect();
        assert_eq!(all.len(), VALIDATION_CASES.len());
        assert!(
            all.windows(2)
                .all(|w| w[0] < w[1] && w[0].as_str() < w[1].as_str())
        );
    }

    #[test]
    fn case_ids_parse_case_insensitively() {
        // (input, id)
        let cases = [("P100", "P100"), ("p900", "P900"), (" P405 ", "P405")];
        for (input, want) in cases {
            assert_eq!(input.parse::<CaseId>().map(CaseId::as_str), Ok(want), "{input:?}");
        }
        for bad in ["P999", "P10", "", "100", "P1000", "P 100"] {
            assert_eq!(bad.parse::<CaseId>(), Err(UnknownCase(bad.into())), "{bad:?}");
        }
    }

    #[test]
    fn an_unknown_case_is_named_and_the_valid_ones_listed() {
        let mut c = Checklist::new(R1);
        let err = c.record(R1, "P999", result(Outcome::Pass, "")).unwrap_err();
        assert_eq!(err, ChecklistError::UnknownCase(UnknownCase("P999".into())));
        assert_eq!(
            err.to_string(),
            "unknown validation case \"P999\"; the cases are P100, P101, P200, P201, P300, P301, P302, \
             P400, P401, P402, P403, P404, P405, P500, P501, P502, P600, P700, P800, P801, P900"
        );
        // Outside input is quoted, bounded.
        let long = "P".repeat(10_000);
        let err = c
            .record(R1, &long, result(Outcome::Pass, ""))
            .unwrap_err()
            .to_string();
        assert!(err.len() < 400, "{err}");
        assert!(err.contains("(10000 bytes)"), "{err}");
        assert_eq!(c, Checklist::new(R1), "nothing recorded");
    }

    #[test]
    fn recording_rules() {
        let ok = |o, note: &str| result(o, note);
        let nobody = CaseResult {
            by: "  ".into(),
            ..result(Outcome::Pass, "")
        };
        // (revision, case, result, expected error)
        let cases: Vec<(RevisionNo, &str, CaseResult, Option<ChecklistError>)> = vec![
            (R1, "P100", ok(Outcome::Pass, ""), None),
            (R1, "P100", ok(Outcome::Fail, "500 from /connect"), None),
            (R1, "P100", ok(Outcome::Fail, ""), None),
            (
                R1,
                "P900",
                ok(Outcome::Waived, "no connectors: not an ingestion partner"),
                None,
            ),
            (
                R1,
                "P900",
                ok(Outcome::Waived, ""),
                Some(ChecklistError::WaiverWithoutReason { case: id("P900") }),
            ),
            (
                R1,
                "P900",
                ok(Outcome::Waived, " \n\t"),
                Some(ChecklistError::WaiverWithoutReason { case: id("P900") }),
            ),
            (
                R2,
                "P100",
                ok(Outcome::Pass, ""),
                Some(ChecklistError::WrongRevision {
                    given: R2,
                    current: R1,
                }),
            ),
            (
                R1,
                "P100",
                nobody,
                Some(ChecklistError::NoRecorder { case: id("P100") }),
            ),
            (
                R1,
                "P42",
                ok(Outcome::Pass, ""),
                Some(ChecklistError::UnknownCase(UnknownCase("P42".into()))),
            ),
        ];
        for (rev, case, r, want) in cases {
            let mut c = Checklist::new(R1);
            let got = c.record(rev, case, r.clone());
            match want {
                None => {
                    let rec = got.unwrap();
                    assert_eq!((rec.case, rec.replaced), (id(case), None));
                    assert_eq!(c.get(id(case)), Some(&r));
                }
                Some(e) => {
                    assert_eq!(got.unwrap_err(), e, "{case} {r:?}");
                    assert_eq!(c, Checklist::new(R1), "a refusal records nothing");
                }
            }
        }
    }

    #[test]
    fn refusal_messages_read_well() {
        // (error, message)
        let cases = [
            (
                ChecklistError::WaiverWithoutReason { case: id("P900") },
                "waiving P900 (connector list) needs a reason: say why the case is not required with --note REASON",
            ),
            (
                ChecklistError::WrongRevision {
                    given: R1,
                    current: R2,
                },
                "validation result for revision r1 refused: the tile's current revision is r2, and results \
                 belong to the revision they were run against",
            ),
            (
                ChecklistError::NoRecorder { case: id("P101") },
                "the result for P101 names nobody as its recorder; every result records who recorded it",
            ),
            (
                ChecklistError::RevisionNotNewer {
                    given: R1,
                    current: R1,
                },
                "a fresh validation checklist for revision r1 refused: it does not follow revision r1",
            ),
        ];
        for (err, msg) in cases {
            assert_eq!(err.to_string(), msg);
        }
    }

    #[test]
    fn recording_again_replaces_and_returns_the_old_result() {
        let mut c = Checklist::new(R1);
        c.record(R1, "P201", result(Outcome::Fail, "timeout")).unwrap();
        let rec = c.record(R1, "p201", result(Outcome::Pass, "fixed")).unwrap();
        assert_eq!(rec.case, id("P201"));
        assert_eq!(rec.replaced.map(|r| r.outcome), Some(Outcome::Fail));
        assert_eq!(c.get(id("P201")).map(|r| r.note.as_str()), Some("fixed"));
    }

    #[test]
    fn evidence_is_kept_with_the_result() {
        let mut c = Checklist::new(R1);
        let evidence = Evidence {
            self_test_tile: "riverflow-selftest".parse().unwrap(),
            revision: RevisionNo(3),
        };
        let r = CaseResult {
            evidence: Some(evidence.clone()),
            ..result(Outcome::Pass, "test-connection all PASS")
        };
        c.record(R1, "P800", r).unwrap();
        assert_eq!(
            c.get(id("P800")).and_then(|r| r.evidence.as_ref()),
            Some(&evidence)
        );
        assert_eq!(evidence.to_string(), "self-test tile riverflow-selftest r3");
    }

    #[test]
    fn open_cases_table() {
        use Outcome::*;
        // (results differing from PASS, open cases with their outcome)
        type Case = (
            Vec<(&'static str, Option<Outcome>)>,
            Vec<(&'static str, Option<Outcome>)>,
        );
        let cases: Vec<Case> = vec![
            (vec![], vec![]),
            (vec![("P100", None)], vec![("P100", None)]),
            (vec![("P201", Some(Fail))], vec![("P201", Some(Fail))]),
            (vec![("P900", Some(Waived))], vec![]),
            (
                vec![("P900", None), ("P100", Some(Fail)), ("P500", Some(Waived))],
                vec![("P100", Some(Fail)), ("P900", None)],
            ),
        ];
        for (except, want) in cases {
            let c = all_passed_except(&except);
            let want: Vec<OpenCase> = want
                .into_iter()
                .map(|(case, outcome)| OpenCase {
                    case: id(case),
                    outcome,
                })
                .collect();
            assert_eq!(c.open_cases(), want, "{except:?}");
            assert_eq!(c.is_complete(), want.is_empty());
            assert_eq!(c.require_complete(R1).is_ok(), want.is_empty());
        }
        let empty = Checklist::new(R1);
        assert_eq!(empty.open_cases().len(), VALIDATION_CASES.len());
        assert!(empty.open_cases().iter().all(|o| o.outcome.is_none()));
    }

    #[test]
    fn the_engineering_sign_off_waits_for_the_checklist() {
        let done = all_passed_except(&[("P900", Some(Outcome::Waived))]);
        let open = all_passed_except(&[("P201", Some(Outcome::Fail)), ("P900", None)]);
        // (checklist, revision signed, role, refused)
        let cases = [
            (&done, R1, Role::Engineering, false),
            (&open, R1, Role::Engineering, true),
            (&done, R2, Role::Engineering, true),
            (&open, R1, Role::Legal, false),
            (&open, R1, Role::Partner, false),
            (&open, R1, Role::Product, false),
            (&open, R1, Role::PartnerSolutionArchitect, false),
        ];
        for (c, rev, role, refused) in cases {
            assert_eq!(sign_off_gate(c, rev, role).is_err(), refused, "{rev} {role}");
        }
        let err = sign_off_gate(&open, R1, Role::Engineering).unwrap_err();
        assert_eq!(
            err.open.iter().map(|o| o.case.as_str()).collect::<Vec<_>>(),
            ["P201", "P900"]
        );
        assert_eq!(
            err.to_string(),
            "engineering sign-off of revision r1 refused: 2 of 21 validation cases are still open: \
             P201 destination (FAIL), P900 connector list (no result); record each result with \
             `tilewave tile validate TILE CASE --pass|--fail|--waive --note ...` (a case that does not \
             apply is waived with the reason)"
        );
        let one = all_passed_except(&[("P700", None)]);
        let err = sign_off_gate(&one, R1, Role::Engineering)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("1 of 21 validation cases is still open: P700 demo (no result);"),
            "{err}"
        );
        // A checklist of another revision counts for nothing.
        let err = sign_off_gate(&done, R2, Role::Engineering).unwrap_err();
        assert_eq!((err.revision, err.open.len()), (R2, 21));
    }

    #[test]
    fn a_new_revision_starts_fresh_and_says_what_it_dropped() {
        let mut c = Checklist::new(R1);
        c.record(R1, "P100", result(Outcome::Pass, "")).unwrap();
        c.record(R1, "P101", result(Outcome::Pass, "")).unwrap();
        c.record(R1, "P900", result(Outcome::Waived, "no connectors"))
            .unwrap();
        let (fresh, dropped) = c.next_revision(R2).unwrap();
        assert_eq!(fresh, Checklist::new(R2));
        assert_eq!(fresh.open_cases().len(), 21);
        assert_eq!((dropped.from, dropped.to), (R1, R2));
        assert_eq!(
            dropped.results.keys().map(|c| c.as_str()).collect::<Vec<_>>(),
            ["P100", "P101", "P900"]
        );
        assert_eq!(
            dropped.to_string(),
            "revision r2 starts a fresh validation checklist: the 3 results recorded on r1 \
             (2 PASS, 1 WAIVED) are not carried over; run the cases again on r2"
        );
        // (checklist, new revision, message)
        let mut one = Checklist::new(R1);
        one.record(R1, "P201", result(Outcome::Fail, "")).unwrap();
        let cases = [
            (
                Checklist::new(R1),
                R2,
                "revision r2 starts a fresh validation checklist (nothing was recorded on r1)",
            ),
            (
                one,
                RevisionNo(5),
                "revision r5 starts a fresh validation checklist: the 1 result recorded on r1 (1 FAIL) \
                 is not carried over; run the cases again on r5",
            ),
        ];
        for (c, rev, msg) in cases {
            let (_, d) = c.next_revision(rev).unwrap();
            assert_eq!(d.to_string(), msg);
            assert_eq!(d.is_empty(), c.entries().all(|(_, r)| r.is_none()));
        }
        // Not a later revision: refused.
        for rev in [R1, RevisionNo(0)] {
            assert_eq!(
                c.next_revision(rev).unwrap_err(),
                ChecklistError::RevisionNotNewer {
                    given: rev,
                    current: R1
                }
            );
        }
    }

    #[test]
    fn a_checklist_round_trips_through_json() {
        let mut c = all_passed_except(&[("P201", Some(Outcome::Fail)), ("P900", None)]);
        c.record(
            R1,
            "P800",
            CaseResult {
                evidence: Some(Evidence {
                    self_test_tile: "riverflow-selftest".parse().unwrap(),
                    revision: R2,
                }),
                ..result(Outcome::Pass, "")
            },
        )
        .unwrap();
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.contains("\"P201\":{\"outcome\":\"FAIL\""), "{json}");
        let back: Checklist = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
        // An unknown case id in stored data is refused, not dropped.
        let bad = json.replace("\"P201\"", "\"P299\"");
        let err = serde_json::from_str::<Checklist>(&bad).unwrap_err().to_string();
        assert!(err.contains("unknown validation case \"P299\""), "{err}");
    }
}
