//! Audit summaries: what audit retention keeps of old records (pure logic).
//!
//! Records older than the retention period are folded per object (kind and
//! id) and UTC day into one [`AuditSummary`]: how many records, how many per
//! action, the first and last moment, the actors, the revisions named.
//! [`batches`] cuts a time-ordered run of records into transactions of at
//! most a given number of operations (one deletion per record, one write
//! per summary), so that a summary is always written with the deletion of
//! the records it folds; [`merge`] adds a batch's summary to one stored by
//! an earlier batch or pass. [`crate::retention`] does the reading and the
//! committing.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use tilewave_proto::common::v1::{AuditRecord, AuditSummary};

use crate::time::{from_proto_timestamp, to_proto_timestamp};

/// The most actors a summary names; beyond it `actors_truncated` is set.
pub const MAX_ACTORS: usize = 32;

/// Seconds in a UTC day.
const DAY: i64 = 86_400;

/// The UTC day holding `at`: its start and (exclusive) end.
pub fn day_of(at: Timestamp) -> (Timestamp, Timestamp) {
    let start = at.as_second().div_euclid(DAY) * DAY;
    let start = Timestamp::from_second(start).unwrap_or(Timestamp::UNIX_EPOCH);
    let end = start
        .checked_add(SignedDuration::from_secs(DAY))
        .unwrap_or(Timestamp::MAX);
    (start, end)
}

/// What a record folds into: its object and the start of its UTC day.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bucket {
    /// The object's kind (`tile`).
    pub kind: String,
    /// The object's id.
    pub id: String,
    /// The start of the UTC day.
    pub day: Timestamp,
}

/// The bucket of `record`, made at `at` (its own time, or its key's).
pub fn bucket_of(record: &AuditRecord, at: Timestamp) -> Bucket {
    Bucket {
        kind: record.object_kind.clone(),
        id: record.object_id.clone(),
        day: day_of(at).0,
    }
}

/// The domain time of a record: its `at`, else `fallback` (the time in its
/// key).
pub fn time_of(record: &AuditRecord, fallback: Timestamp) -> Timestamp {
    record
        .at
        .as_ref()
        .and_then(|t| from_proto_timestamp(t).ok())
        .unwrap_or(fallback)
}

/// The summary of one record made at `at`.
pub fn summarise(record: &AuditRecord, at: Timestamp) -> AuditSummary {
    let (start, end) = day_of(at);
    let mut actions = BTreeMap::new();
    actions.insert(record.action.clone(), 1);
    AuditSummary {
        object_kind: record.object_kind.clone(),
        object_id: record.object_id.clone(),
        period_start: Some(to_proto_timestamp(start)),
        period_end: Some(to_proto_timestamp(end)),
        first_at: Some(to_proto_timestamp(at)),
        last_at: Some(to_proto_timestamp(at)),
        record_count: 1,
        actions: actions.into_iter().collect(),
        actors: if record.actor.is_empty() {
            Vec::new()
        } else {
            vec![record.actor.clone()]
        },
        actors_truncated: false,
        min_revision: record.object_revision.max(0),
        max_revision: record.object_revision.max(0),
    }
}

fn time(t: Option<&prost_types::Timestamp>) -> Option<Timestamp> {
    t.and_then(|t| from_proto_timestamp(t).ok())
}

/// `a` and `b` together (two summaries of the same object and day: from two
/// batches, or a stored one and a new one). Counts add up, the first and
/// last moments widen, the actors are united (sorted, at most
/// [`MAX_ACTORS`]), the revision bounds widen (0 is "none").
pub fn merge(mut a: AuditSummary, b: &AuditSummary) -> AuditSummary {
    a.record_count = a.record_count.saturating_add(b.record_count);
    for (action, n) in &b.actions {
        let slot = a.actions.entry(action.clone()).or_insert(0);
        *slot = slot.saturating_add(*n);
    }
    let earliest = match (time(a.first_at.as_ref()), time(b.first_at.as_ref())) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    };
    let latest = match (time(a.last_at.as_ref()), time(b.last_at.as_ref())) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    };
    a.first_at = earliest.map(to_proto_timestamp);
    a.last_at = latest.map(to_proto_timestamp);
    if a.period_start.is_none() {
        a.period_start = b.period_start;
        a.period_end = b.period_end;
    }
    let mut actors: Vec<String> = a.actors.drain(..).chain(b.actors.iter().cloned()).collect();
    actors.sort();
    actors.dedup();
    a.actors_truncated |= b.actors_truncated || actors.len() > MAX_ACTORS;
    actors.truncate(MAX_ACTORS);
    a.actors = actors;
    a.min_revision = match (a.min_revision, b.min_revision) {
        (0, y) => y,
        (x, 0) => x,
        (x, y) => x.min(y),
    };
    a.max_revision = a.max_revision.max(b.max_revision);
    a
}

/// One transaction's worth of records: which of them (indices into the
/// run given to [`batches`]) and their summaries by bucket.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Batch {
    /// Indices of the records folded, in order.
    pub records: Vec<usize>,
    /// The summary of those records, per object and day.
    pub summaries: BTreeMap<Bucket, AuditSummary>,
}

impl Batch {
    /// Operations the batch costs: two deletions per record (the record
    /// and its index entry), a write per summary.
    pub fn ops(&self) -> usize {
        2 * self.records.len() + self.summaries.len()
    }
}

/// Cuts `records` (each with its domain time) into batches of at most
/// `max_ops` operations (at least 3: one record, its index entry and its
/// summary), keeping their order. A bucket split over two batches gets a
/// summary in each: the second batch merges into what the first stored.
pub fn batches(records: &[(Timestamp, &AuditRecord)], max_ops: usize) -> Vec<Batch> {
    let max_ops = max_ops.max(3);
    let mut out = Vec::new();
    let mut current = Batch::default();
    for (i, (at, record)) in records.iter().enumerate() {
        let bucket = bucket_of(record, *at);
        let cost = if current.summaries.contains_key(&bucket) {
            2
        } else {
            3
        };
        if current.ops() + cost > max_ops && !current.records.is_empty() {
            out.push(std::mem::take(&mut current));
        }
        let one = summarise(record, *at);
        let merged = match current.summaries.remove(&bucket) {
            Some(s) => merge(s, &one),
            None => one,
        };
        current.summaries.insert(bucket, merged);
        current.records.push(i);
    }
    if !current.records.is_empty() {
        out.push(current);
    }
    out
}

/// Whether `summary`'s day overlaps `[from, to)` (an open end: unbounded).
pub fn overlaps(summary: &AuditSummary, from: Option<Timestamp>, to: Option<Timestamp>) -> bool {
    let start = time(summary.period_start.as_ref());
    let end = time(summary.period_end.as_ref());
    let after_from = from.is_none_or(|f| end.is_none_or(|e| e > f));
    let before_to = to.is_none_or(|t| start.is_none_or(|s| s < t));
    after_from && before_to
}

/// Whether `summary` may hold records about `revision` (0: any).
pub fn may_name_revision(summary: &AuditSummary, revision: i64) -> bool {
    revision == 0 || (summary.min_revision <= revision && revision <= summary.max_revision)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    fn rec(kind: &str, id: &str, action: &str, actor: &str, revision: i64) -> AuditRecord {
        AuditRecord {
            object_kind: kind.into(),
            object_id: id.into(),
            action: action.into(),
            actor: actor.into(),
            object_revision: revision,
            ..Default::default()
        }
    }

    const D: i64 = 86_400;

    #[test]
    fn days_are_utc_days() {
        let cases = [
            (0, 0, D),
            (D - 1, 0, D),
            (D, D, 2 * D),
            (1_767_225_600 + 5, 1_767_225_600, 1_767_225_600 + D),
        ];
        for (t, start, end) in cases {
            assert_eq!(day_of(at(t)), (at(start), at(end)), "{t}");
        }
    }

    #[test]
    fn one_record_summarised() {
        let s = summarise(&rec("tile", "riverflow", "RecordSignOff", "ada", 2), at(D + 10));
        assert_eq!(s.record_count, 1);
        assert_eq!(s.actions.get("RecordSignOff"), Some(&1));
        assert_eq!(s.actors, vec!["ada".to_owned()]);
        assert_eq!((s.min_revision, s.max_revision), (2, 2));
        assert_eq!(s.period_start, Some(to_proto_timestamp(at(D))));
        assert_eq!(s.period_end, Some(to_proto_timestamp(at(2 * D))));
        assert_eq!(s.first_at, s.last_at);
        let anonymous = summarise(&rec("freeze", "freeze", "SetFreeze", "", 0), at(5));
        assert!(anonymous.actors.is_empty());
        assert_eq!((anonymous.min_revision, anonymous.max_revision), (0, 0));
    }

    #[test]
    fn merging_adds_counts_and_widens_bounds() {
        struct Case {
            name: &'static str,
            a: AuditSummary,
            b: AuditSummary,
            count: i64,
            first: i64,
            last: i64,
            actors: Vec<&'static str>,
            revisions: (i64, i64),
        }
        let one = |t: i64, actor: &str, rev: i64| summarise(&rec("tile", "x", "Edit", actor, rev), at(t));
        let cases = [
            Case {
                name: "two records, in order",
                a: one(10, "ada", 1),
                b: one(20, "bob", 2),
                count: 2,
                first: 10,
                last: 20,
                actors: vec!["ada", "bob"],
                revisions: (1, 2),
            },
            Case {
                name: "out of order, same actor",
                a: one(20, "bob", 3),
                b: one(10, "bob", 2),
                count: 2,
                first: 10,
                last: 20,
                actors: vec!["bob"],
                revisions: (2, 3),
            },
            Case {
                name: "no revision on one side",
                a: one(5, "ada", 0),
                b: one(6, "", 4),
                count: 2,
                first: 5,
                last: 6,
                actors: vec!["ada"],
                revisions: (4, 4),
            },
        ];
        for c in cases {
            let m = merge(c.a, &c.b);
            assert_eq!(m.record_count, c.count, "{}", c.name);
            assert_eq!(m.actions.get("Edit"), Some(&c.count), "{}", c.name);
            assert_eq!(m.first_at, Some(to_proto_timestamp(at(c.first))), "{}", c.name);
            assert_eq!(m.last_at, Some(to_proto_timestamp(at(c.last))), "{}", c.name);
            assert_eq!(m.actors, c.actors, "{}", c.name);
            assert_eq!((m.min_revision, m.max_revision), c.revisions, "{}", c.name);
        }
    }

    #[test]
    fn actors_are_bounded() {
        let mut s = summarise(&rec("tile", "x", "Edit", "actor-000", 0), at(1));
        for i in 1..40 {
            s = merge(
                s,
                &summarise(&rec("tile", "x", "Edit", &format!("actor-{i:03}"), 0), at(1)),
            );
        }
        assert_eq!(s.actors.len(), MAX_ACTORS);
        assert!(s.actors_truncated);
        assert_eq!(s.record_count, 40);
    }

    #[test]
    fn batches_respect_the_operation_bound() {
        // (records as (day, object), max ops) -> records per batch, summaries per batch
        type Case = (
            &'static str,
            Vec<(i64, &'static str)>,
            usize,
            Vec<usize>,
            Vec<usize>,
        );
        let cases: Vec<Case> = vec![
            ("nothing", vec![], 10, vec![], vec![]),
            ("one object, one day", vec![(0, "a"); 5], 11, vec![5], vec![1]),
            (
                "split: the bucket goes on in the next batch",
                vec![(0, "a"); 12],
                10,
                vec![4, 4, 4],
                vec![1, 1, 1],
            ),
            (
                "every record its own bucket",
                vec![(0, "a"), (0, "b"), (0, "c"), (0, "d"), (0, "e")],
                6,
                vec![2, 2, 1],
                vec![2, 2, 1],
            ),
            (
                "two days",
                vec![(0, "a"), (0, "a"), (D, "a")],
                10,
                vec![3],
                vec![2],
            ),
            (
                "a bound below 3 is 3",
                vec![(0, "a"), (0, "a")],
                0,
                vec![1, 1],
                vec![1, 1],
            ),
        ];
        for (name, input, max, sizes, summaries) in cases {
            let records: Vec<AuditRecord> = input
                .iter()
                .map(|(_, id)| rec("tile", id, "Edit", "ada", 1))
                .collect();
            let run: Vec<(Timestamp, &AuditRecord)> = input
                .iter()
                .zip(&records)
                .map(|((t, _), r)| (at(*t + 1), r))
                .collect();
            let got = batches(&run, max);
            assert_eq!(
                got.iter().map(|b| b.records.len()).collect::<Vec<_>>(),
                sizes,
                "{name}"
            );
            assert_eq!(
                got.iter().map(|b| b.summaries.len()).collect::<Vec<_>>(),
                summaries,
                "{name}"
            );
            assert!(got.iter().all(|b| b.ops() <= max.max(3)), "{name}");
            // Every record exactly once, in order; the counts add up.
            let all: Vec<usize> = got.iter().flat_map(|b| b.records.clone()).collect();
            assert_eq!(all, (0..input.len()).collect::<Vec<_>>(), "{name}");
            let counted: i64 = got
                .iter()
                .flat_map(|b| b.summaries.values())
                .map(|s| s.record_count)
                .sum();
            assert_eq!(counted, input.len() as i64, "{name}");
        }
    }

    #[test]
    fn folding_in_pieces_equals_folding_at_once() {
        let records: Vec<AuditRecord> = (0..30)
            .map(|i| {
                rec(
                    "tile",
                    "x",
                    if i % 3 == 0 { "Import" } else { "Edit" },
                    &format!("u{}", i % 4),
                    i,
                )
            })
            .collect();
        let run: Vec<(Timestamp, &AuditRecord)> = records
            .iter()
            .enumerate()
            .map(|(i, r)| (at(i as i64), r))
            .collect();
        let whole = batches(&run, 1000);
        let pieces = batches(&run, 7);
        let fold = |bs: &[Batch]| {
            bs.iter()
                .flat_map(|b| b.summaries.values().cloned())
                .reduce(|a, b| merge(a, &b))
                .unwrap()
        };
        assert_eq!(fold(&whole), fold(&pieces));
        let s = fold(&pieces);
        assert_eq!((s.record_count, s.actions.get("Import").copied()), (30, Some(10)));
        assert_eq!((s.min_revision, s.max_revision), (1, 29));
    }

    #[test]
    fn range_and_revision_filters() {
        let s = merge(
            summarise(&rec("tile", "x", "Edit", "a", 2), at(D + 1)),
            &summarise(&rec("tile", "x", "Edit", "a", 4), at(D + 2)),
        );
        let cases = [
            (None, None, true),
            (Some(0), Some(D), false),
            (Some(0), Some(D + 1), true),
            (Some(2 * D), None, false),
            (Some(2 * D - 1), None, true),
            (None, Some(D), false),
        ];
        for (from, to, want) in cases {
            assert_eq!(overlaps(&s, from.map(at), to.map(at)), want, "{from:?}..{to:?}");
        }
        for (rev, want) in [(0, true), (1, false), (2, true), (3, true), (4, true), (5, false)] {
            assert_eq!(may_name_revision(&s, rev), want, "{rev}");
        }
    }
}
