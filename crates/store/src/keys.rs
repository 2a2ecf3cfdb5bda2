//! The key space, built in one place.
//!
//! Everything lives under a configurable prefix (default `/tilewave/`):
//! `tiles/<id>`, `tiles/<id>/rev/<n>`, `self-test-workspaces/<workspace>`,
//! `rollouts/<id>`, `rollouts/<id>/steps/<region>`, `rollout-active/<tile>`,
//! `agents/<region>`, `events/<id>`, `credentials/<id>`, `incidents/<id>`,
//! `timers/<kind>/<due>/<id>`, `audit/<at>-<random>`,
//! `audit-summaries/<kind>/<id>/<day>`, `owners/<work>`,
//! `launch-slots/<at>`, `freeze`, `calendar`, `clock` and `epoch`
//! (docs/design.md, "etcd: the coordination store"). Every service and test
//! builds its keys here, and the names of owner work in [`work`]. Builders are infallible where the parts cannot be wrong; ids
//! are checked at the service edges ([`check_segment`]).

use jiff::Timestamp;
use tilewave_proto::common::v1::Timer;

use crate::error::{Error, Result};
use crate::time::from_proto_timestamp;

/// The names of owner work (`owners/<work>`).
pub mod work {
    /// The rollout service's timer loop (`owners/timers`).
    pub const TIMERS: &str = "timers";
    /// The rollout service's lifecycle loop (`owners/lifecycle`).
    pub const LIFECYCLE: &str = "lifecycle";
    /// Reconciliation, taken afresh each pass (`owners/reconciler`).
    pub const RECONCILER: &str = "reconciler";
    /// The credentials service's schedule loop (`owners/credential-schedules`).
    pub const CREDENTIAL_SCHEDULES: &str = "credential-schedules";
    /// The rollout service's GA scheduler (`owners/scheduler`).
    pub const SCHEDULER: &str = "scheduler";
    /// The escalation service's ladder timers (`owners/escalation-timers`).
    pub const ESCALATION_TIMERS: &str = "escalation-timers";
    /// The escalation service's outbox sender (`owners/escalation-sender`).
    pub const ESCALATION_SENDER: &str = "escalation-sender";
    /// The escalation service's events consumer (`owners/escalation-events`).
    pub const ESCALATION_EVENTS: &str = "escalation-events";
    /// The registry's audit retention: old audit records folded into
    /// summaries (`owners/audit-retention`).
    pub const AUDIT_RETENTION: &str = "audit-retention";

    /// One roll-out (`owners/rollout-<id>`).
    pub fn rollout(id: &str) -> String {
        format!("rollout-{id}")
    }

    /// One credential rotation (`owners/credential-rotation-<id>`).
    pub fn credential_rotation(id: &str) -> String {
        format!("credential-rotation-{id}")
    }
}

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "/tilewave/";

/// Width of the zero-padded numbers in timer and audit keys, so that the
/// keys sort in time order (19 digits hold any non-negative `i64`).
const NUM_WIDTH: usize = 19;

/// Builds every key the services use, under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    /// Ends with `/`.
    prefix: String,
}

impl Default for Keys {
    fn default() -> Self {
        Self {
            prefix: DEFAULT_PREFIX.to_owned(),
        }
    }
}

impl Keys {
    /// Keys under `prefix`; a trailing `/` is added when missing.
    pub fn new(prefix: impl Into<String>) -> Result<Self> {
        let mut prefix = prefix.into();
        if prefix.is_empty() || prefix == "/" {
            return Err(Error::invalid("the key prefix must not be empty"));
        }
        if !prefix.ends_with('/') {
            prefix.push('/');
        }
        Ok(Self { prefix })
    }

    /// The prefix, ending with `/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether `key` lies under this prefix.
    pub fn contains(&self, key: &str) -> bool {
        key.starts_with(&self.prefix) && key.len() > self.prefix.len()
    }

    /// `key` relative to the prefix (`tiles/riverflow`), if it is under it.
    pub fn relative<'a>(&self, key: &'a str) -> Option<&'a str> {
        key.strip_prefix(self.prefix.as_str())
    }

    fn join(&self, parts: &[&str]) -> String {
        let mut k = self.prefix.clone();
        k.push_str(&parts.concat());
        k
    }

    /// `tiles/`
    pub fn tiles(&self) -> String {
        self.join(&["tiles/"])
    }
    /// `tiles/<id>`
    pub fn tile(&self, id: &str) -> String {
        self.join(&["tiles/", id])
    }
    /// `tiles/<id>/rev/`: the revision snapshots of a tile.
    pub fn tile_revisions(&self, id: &str) -> String {
        self.join(&["tiles/", id, "/rev/"])
    }
    /// `tiles/<id>/rev/<n, 10 digits>`: one revision's immutable part.
    pub fn tile_revision(&self, id: &str, revision: i64) -> String {
        self.join(&["tiles/", id, "/rev/", &format!("{revision:010}")])
    }
    /// `self-test-workspaces/<workspace>`: the workspace holding a
    /// self-test tile.
    pub fn self_test_workspace(&self, workspace: &str) -> String {
        self.join(&["self-test-workspaces/", workspace])
    }
    /// `rollout-active/<tile>`: the one active roll-out of a tile.
    pub fn rollout_active(&self, tile: &str) -> String {
        self.join(&["rollout-active/", tile])
    }
    /// `rollouts/` (holds roll-outs and their steps: see [`Keys::is_direct_child`]).
    pub fn rollouts(&self) -> String {
        self.join(&["rollouts/"])
    }
    /// `rollouts/<id>`
    pub fn rollout(&self, id: &str) -> String {
        self.join(&["rollouts/", id])
    }
    /// `rollouts/<id>/steps/`
    pub fn rollout_steps(&self, id: &str) -> String {
        self.join(&["rollouts/", id, "/steps/"])
    }
    /// `rollouts/<id>/steps/<region>`
    pub fn rollout_step(&self, id: &str, region: &str) -> String {
        self.join(&["rollouts/", id, "/steps/", region])
    }
    /// `agents/`
    pub fn agents(&self) -> String {
        self.join(&["agents/"])
    }
    /// `agents/<region>`
    pub fn agent(&self, region: &str) -> String {
        self.join(&["agents/", region])
    }
    /// `events/`
    pub fn events(&self) -> String {
        self.join(&["events/"])
    }
    /// `events/<id>`
    pub fn event(&self, id: &str) -> String {
        self.join(&["events/", id])
    }
    /// `credentials/`
    pub fn credentials(&self) -> String {
        self.join(&["credentials/"])
    }
    /// `credentials/<id>`
    pub fn credential(&self, id: &str) -> String {
        self.join(&["credentials/", id])
    }
    /// `credentials/<tile>/<kind>/versions`: a tile's credential versions
    /// of one kind (`CredentialVersions`).
    pub fn credential_versions(&self, tile: &str, kind: &str) -> String {
        self.join(&["credentials/", tile, "/", kind, "/versions"])
    }
    /// `credentials/<tile>/<kind>/secrets/<version, 19 digits>`: one
    /// version's encrypted secret (`StoredSecret`).
    pub fn credential_secret(&self, tile: &str, kind: &str, version: u64) -> String {
        self.join(&[
            "credentials/",
            tile,
            "/",
            kind,
            "/secrets/",
            &format!("{version:0NUM_WIDTH$}"),
        ])
    }
    /// `credential-rotations/`
    pub fn credential_rotations(&self) -> String {
        self.join(&["credential-rotations/"])
    }
    /// `credential-rotations/<id>`
    pub fn credential_rotation(&self, id: &str) -> String {
        self.join(&["credential-rotations/", id])
    }
    /// `credential-rotation-active/<tile>/<kind>`: created with a rotation
    /// and removed when it ends, so two never run for one credential.
    pub fn credential_rotation_active(&self, tile: &str, kind: &str) -> String {
        self.join(&["credential-rotation-active/", tile, "/", kind])
    }
    /// `credential-schedules/`
    pub fn credential_schedules(&self) -> String {
        self.join(&["credential-schedules/"])
    }
    /// `credential-schedules/<tile>/<kind>`
    pub fn credential_schedule(&self, tile: &str, kind: &str) -> String {
        self.join(&["credential-schedules/", tile, "/", kind])
    }
    /// `incidents/`
    pub fn incidents(&self) -> String {
        self.join(&["incidents/"])
    }
    /// `incidents/<id>`
    pub fn incident(&self, id: &str) -> String {
        self.join(&["incidents/", id])
    }
    /// `escalation-counter`: the next incident number.
    pub fn escalation_counter(&self) -> String {
        self.join(&["escalation-counter"])
    }
    /// `escalation-cursor`: the events the escalation service consumed.
    pub fn escalation_cursor(&self) -> String {
        self.join(&["escalation-cursor"])
    }
    /// `escalation-policies/`
    pub fn escalation_policies(&self) -> String {
        self.join(&["escalation-policies/"])
    }
    /// `escalation-policies/<name>`
    pub fn escalation_policy(&self, name: &str) -> String {
        self.join(&["escalation-policies/", name])
    }
    /// `escalation-schedules/`
    pub fn escalation_schedules(&self) -> String {
        self.join(&["escalation-schedules/"])
    }
    /// `escalation-schedules/<name>`
    pub fn escalation_schedule(&self, name: &str) -> String {
        self.join(&["escalation-schedules/", name])
    }
    /// `escalation-sops/`
    pub fn escalation_sops(&self) -> String {
        self.join(&["escalation-sops/"])
    }
    /// `escalation-sops/<id>`
    pub fn escalation_sop(&self, id: &str) -> String {
        self.join(&["escalation-sops/", id])
    }
    /// `escalation-people/`
    pub fn escalation_people(&self) -> String {
        self.join(&["escalation-people/"])
    }
    /// `escalation-people/<id>`
    pub fn escalation_person(&self, id: &str) -> String {
        self.join(&["escalation-people/", id])
    }
    /// `escalation-partners/`
    pub fn escalation_partners(&self) -> String {
        self.join(&["escalation-partners/"])
    }
    /// `escalation-partners/<partner>`: a partner's contacts.
    pub fn escalation_partner(&self, partner: &str) -> String {
        self.join(&["escalation-partners/", partner])
    }
    /// `escalation-outbox/`
    pub fn escalation_outbox_all(&self) -> String {
        self.join(&["escalation-outbox/"])
    }
    /// `escalation-outbox/<incident>/`: an incident's undelivered pages.
    pub fn escalation_outbox(&self, incident: &str) -> String {
        self.join(&["escalation-outbox/", incident, "/"])
    }
    /// `escalation-outbox/<incident>/<key>`: one page to deliver (the key
    /// is the notification's idempotency key, slashes and all).
    pub fn escalation_outbox_entry(&self, incident: &str, key: &str) -> String {
        self.join(&["escalation-outbox/", incident, "/", key])
    }
    /// `escalation-secrets/<target>`: a target's sealed signing secret
    /// (`webhook/<name>`, `person/<id>/<contact>`, `partner/<p>/<contact>`).
    pub fn escalation_secret(&self, target: &str) -> String {
        self.join(&["escalation-secrets/", target])
    }
    /// `owners/`
    pub fn owners(&self) -> String {
        self.join(&["owners/"])
    }
    /// `owners/<work>`
    pub fn owner(&self, work: &str) -> String {
        self.join(&["owners/", work])
    }
    /// `freeze`
    pub fn freeze(&self) -> String {
        self.join(&["freeze"])
    }
    /// `calendar`: the launch calendar (rollout service).
    pub fn calendar(&self) -> String {
        self.join(&["calendar"])
    }
    /// `launch-holds/`: launches the GA scheduler must not start.
    pub fn launch_holds(&self) -> String {
        self.join(&["launch-holds/"])
    }
    /// `launch-holds/<tile>`
    pub fn launch_hold(&self, tile: &str) -> String {
        self.join(&["launch-holds/", tile])
    }
    /// `launch-blocked/`: why the GA scheduler has not started a due launch.
    pub fn launch_blocked_all(&self) -> String {
        self.join(&["launch-blocked/"])
    }
    /// `launch-blocked/<tile>`
    pub fn launch_blocked(&self, tile: &str) -> String {
        self.join(&["launch-blocked/", tile])
    }
    /// `launch-slots/`: the bookings of launch-calendar slots.
    pub fn launch_slots(&self) -> String {
        self.join(&["launch-slots/"])
    }
    /// `launch-slots/<at as zero-padded unix nanoseconds, 19 digits>`: the
    /// tiles holding a place in the launch-calendar slot at `at` (the
    /// registry writes it with the tile, in one transaction). A moment
    /// before 1970 is refused.
    pub fn launch_slot(&self, at: Timestamp) -> Result<String> {
        let nanos = i64::try_from(at.as_nanosecond())
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| Error::invalid(format!("launch slot {at} is out of range")))?;
        Ok(self.join(&["launch-slots/", &format!("{nanos:0NUM_WIDTH$}")]))
    }
    /// `clock`
    pub fn clock(&self) -> String {
        self.join(&["clock"])
    }
    /// `epoch`: the fencing epoch, a decimal number (absent: 0), bumped
    /// after a restore from a backup ([`crate::Store::bump_epoch`]).
    pub fn epoch(&self) -> String {
        self.join(&["epoch"])
    }
    /// `audit/`
    pub fn audit_prefix(&self) -> String {
        self.join(&["audit/"])
    }

    /// `audit/<at as zero-padded unix nanoseconds>-<16 hex digits>`: ordered
    /// by domain time (which never moves backwards), unique by the random
    /// suffix; the store writes it create-if-absent.
    pub fn audit(&self, at: Timestamp, random: u64) -> Result<String> {
        let nanos = i64::try_from(at.as_nanosecond())
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| Error::invalid(format!("audit time {at} is out of range")))?;
        Ok(self.join(&["audit/", &format!("{nanos:0NUM_WIDTH$}-{random:016x}")]))
    }

    /// The exclusive end of the audit keys of records before `at`: with
    /// [`Keys::audit_prefix`] (or the bound of an earlier moment) the range of
    /// the records in a span of domain time. A moment before 1970 gives the
    /// start of the audit keys (an empty range).
    pub fn audit_before(&self, at: Timestamp) -> String {
        let nanos = i64::try_from(at.as_nanosecond()).unwrap_or(i64::MAX).max(0);
        self.join(&["audit/", &format!("{nanos:0NUM_WIDTH$}")])
    }

    /// The exclusive end of every audit key (`audit0`, after `audit/`).
    pub fn audit_end(&self) -> String {
        self.join(&["audit0"])
    }

    /// `audit-index/<kind>/<id>/`: one object's entries of the audit index
    /// (kind and id escaped as in [`Keys::audit_summaries_of`]). Each entry
    /// is `audit-index/<kind>/<id>/<nanos>-<random>`, empty, beside the
    /// record `audit/<nanos>-<random>` it points to: the store writes it in
    /// the record's own transaction and retention deletes it with the
    /// record, so one object's history is one range read however long the
    /// whole log is.
    pub fn audit_index_of(&self, kind: &str, id: &str) -> String {
        self.join(&[
            "audit-index/",
            &escape_segment(kind),
            "/",
            &escape_segment(id),
            "/",
        ])
    }

    /// The audit index entry of the record stored under `audit_key`
    /// (about the `kind` object `id`); `None` when `audit_key` is not an
    /// audit key.
    pub fn audit_index_entry(&self, kind: &str, id: &str, audit_key: &str) -> Option<String> {
        let suffix = audit_key.strip_prefix(&self.audit_prefix())?;
        let mut k = self.audit_index_of(kind, id);
        k.push_str(suffix);
        Some(k)
    }

    /// The bound of one object's index entries of records before `at`
    /// (like [`Keys::audit_before`]).
    pub fn audit_index_before(&self, kind: &str, id: &str, at: Timestamp) -> String {
        let nanos = i64::try_from(at.as_nanosecond()).unwrap_or(i64::MAX).max(0);
        let mut k = self.audit_index_of(kind, id);
        k.push_str(&format!("{nanos:0NUM_WIDTH$}"));
        k
    }

    /// The exclusive end of one object's index entries.
    pub fn audit_index_end(&self, kind: &str, id: &str) -> String {
        let mut k = self.audit_index_of(kind, id);
        k.pop();
        k.push('0');
        k
    }

    /// The audit record an index entry of `kind`/`id` points to.
    pub fn audit_of_index_entry(&self, kind: &str, id: &str, entry: &str) -> Option<String> {
        let suffix = entry.strip_prefix(&self.audit_index_of(kind, id))?;
        Some(self.join(&["audit/", suffix]))
    }

    /// `audit-index-ready`: present once every audit record written before
    /// the index existed has its entry ([`crate::retention::backfill_index`],
    /// which finds it and does nothing more).
    pub fn audit_index_ready(&self) -> String {
        self.join(&["audit-index-ready"])
    }

    /// `audit-summaries/`: what audit retention kept of old records.
    pub fn audit_summaries(&self) -> String {
        self.join(&["audit-summaries/"])
    }

    /// `audit-summaries/<kind>/<id>/`: the summaries of one object. The
    /// kind and id are escaped (`%` as `%25`, `/` as `%2F`, empty as `%`) so
    /// that one object's prefix never holds another's.
    pub fn audit_summaries_of(&self, kind: &str, id: &str) -> String {
        self.join(&[
            "audit-summaries/",
            &escape_segment(kind),
            "/",
            &escape_segment(id),
            "/",
        ])
    }

    /// `audit-summaries/<kind>/<id>/<YYYY-MM-DD>`: the summary of one
    /// object's records of one UTC day (`day` is any moment in it).
    pub fn audit_summary(&self, kind: &str, id: &str, day: Timestamp) -> String {
        let date = day.to_zoned(jiff::tz::TimeZone::UTC).date();
        let mut k = self.audit_summaries_of(kind, id);
        k.push_str(&date.to_string());
        k
    }

    /// `timers/`: every kind's timers.
    pub fn timers(&self) -> String {
        self.join(&["timers/"])
    }

    /// `timers/<kind>/`: the timers of one kind.
    pub fn timers_of(&self, kind: &str) -> Result<String> {
        check_timer_kind(kind)?;
        Ok(self.join(&["timers/", kind, "/"]))
    }

    /// `timers/<kind>/<due as zero-padded unix milliseconds>/<id>`: a kind's
    /// keys sort in due order. `id` may contain `/`.
    pub fn timer(&self, kind: &str, due: Timestamp, id: &str) -> Result<String> {
        check_timer_kind(kind)?;
        Ok(self.join(&["timers/", kind, "/", &Self::timer_bucket(due)?, "/", id]))
    }

    /// The key of `timer` (from its kind, due time and id).
    pub fn timer_of(&self, timer: &Timer) -> Result<String> {
        let due = timer
            .due
            .as_ref()
            .ok_or_else(|| Error::invalid("timer.due is required"))
            .and_then(from_proto_timestamp)?;
        if timer.id.is_empty() {
            return Err(Error::invalid("timer.id is required"));
        }
        self.timer(&timer.kind, due, &timer.id)
    }

    /// The exclusive end of the `kind` timer keys due at or before `now`.
    pub fn timers_due_end(&self, kind: &str, now: Timestamp) -> Result<String> {
        check_timer_kind(kind)?;
        let millis = now.as_millisecond().saturating_add(1).max(0);
        Ok(self.join(&["timers/", kind, "/", &format!("{millis:0NUM_WIDTH$}")]))
    }

    /// The range `[start, end)` of the keys of the layout before timers had
    /// kinds, `timers/<due>/<id>`: a due time starts with a digit, a kind
    /// with a letter ([`check_timer_kind`]), so the two never mix.
    pub fn legacy_timers(&self) -> (String, String) {
        (self.join(&["timers/0"]), self.join(&["timers/:"]))
    }

    /// `timers/<due>/<id>`: a timer's key in the layout before kinds (what
    /// [`crate::Store::migrate_legacy_timers`] moves; for its tests).
    pub fn legacy_timer(&self, due: Timestamp, id: &str) -> Result<String> {
        Ok(self.join(&["timers/", &Self::timer_bucket(due)?, "/", id]))
    }

    fn timer_bucket(due: Timestamp) -> Result<String> {
        let millis = due.as_millisecond();
        if millis < 0 {
            return Err(Error::invalid(format!("timer due {due} is before 1970")));
        }
        Ok(format!("{millis:0NUM_WIDTH$}"))
    }

    /// Whether `key` is directly under `prefix` (no further `/`): tells a
    /// roll-out (`rollouts/<id>`) from its steps (`rollouts/<id>/steps/..`).
    pub fn is_direct_child(prefix: &str, key: &str) -> bool {
        key.strip_prefix(prefix)
            .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))
    }
}

/// One key segment from any text: `%` as `%25`, `/` as `%2F`, the empty
/// text as `%` (which no escaped text is).
fn escape_segment(text: &str) -> String {
    if text.is_empty() {
        return "%".to_owned();
    }
    text.replace('%', "%25").replace('/', "%2F")
}

/// Checks one id used as a key segment: not empty, no `/`, no control
/// characters, at most 253 bytes.
pub fn check_segment(what: &str, id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 253 || id.contains('/') || id.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "{what} must be 1 to 253 characters without '/' or control characters, got {id:?}"
        )));
    }
    Ok(())
}

/// Checks a timer kind: a key segment ([`check_segment`]) of ASCII letters,
/// digits, `-` and `_`, starting with a letter, at most 63 bytes.
pub fn check_timer_kind(kind: &str) -> Result<()> {
    let ok = kind.len() <= 63
        && kind.starts_with(|c: char| c.is_ascii_alphabetic())
        && kind
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        return Err(Error::invalid(format!(
            "a timer kind must be 1 to 63 letters, digits, '-' or '_' starting with a letter, got {}",
            tilewave_core::quote::quoted(kind)
        )));
    }
    Ok(())
}

/// The exclusive end of a prefix range, as etcd computes it.
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let k = Keys::default();
        assert_eq!(k.tile("riverflow"), "/tilewave/tiles/riverflow");
        assert_eq!(
            k.rollout_step("r1", "aws:us-east-1"),
            "/tilewave/rollouts/r1/steps/aws:us-east-1"
        );
        assert_eq!(k.owner("timers"), "/tilewave/owners/timers");
        assert_eq!(k.clock(), "/tilewave/clock");
        assert_eq!(k.freeze(), "/tilewave/freeze");
        assert_eq!(k.epoch(), "/tilewave/epoch");
        assert_eq!(k.calendar(), "/tilewave/calendar");
        assert_eq!(
            k.launch_slot(Timestamp::from_second(1).unwrap()).unwrap(),
            "/tilewave/launch-slots/0000000001000000000"
        );
        assert!(k.launch_slot(Timestamp::from_second(-1).unwrap()).is_err());
        assert!(
            k.launch_slot(Timestamp::from_second(1).unwrap())
                .unwrap()
                .starts_with(&k.launch_slots())
        );
        let k = Keys::new("/x").unwrap();
        assert_eq!(k.agent("gcp:me-central2"), "/x/agents/gcp:me-central2");
        assert!(Keys::new("").is_err());
    }

    #[test]
    fn timer_keys_sort_in_due_order() {
        let k = Keys::default();
        let a = k.timer("ga", Timestamp::from_second(9).unwrap(), "z").unwrap();
        let b = k.timer("ga", Timestamp::from_second(10).unwrap(), "a").unwrap();
        assert!(a < b);
        let end = k
            .timers_due_end("ga", Timestamp::from_second(9).unwrap())
            .unwrap();
        assert!(a < end && b > end);
        assert!(k.timer("ga", Timestamp::from_second(-1).unwrap(), "x").is_err());
    }

    #[test]
    fn timer_keys_by_kind() {
        let k = Keys::default();
        let due = Timestamp::from_second(9).unwrap();
        assert_eq!(
            k.timer("ga", due, "ga/riverflow").unwrap(),
            "/tilewave/timers/ga/0000000000000009000/ga/riverflow"
        );
        assert_eq!(k.timers_of("ga").unwrap(), "/tilewave/timers/ga/");
        for bad in ["", "0ga", "g/a", "g a", &"x".repeat(64)] {
            assert!(k.timer(bad, due, "x").is_err(), "{bad:?}");
            assert!(k.timers_of(bad).is_err(), "{bad:?}");
        }
        // The layout before kinds: a due bucket right after `timers/`.
        let (start, end) = k.legacy_timers();
        let old = k.legacy_timer(due, "ga/riverflow").unwrap();
        assert_eq!(old, "/tilewave/timers/0000000000000009000/ga/riverflow");
        assert!(start <= old && old < end);
        let new = k.timer("ga", due, "ga/riverflow").unwrap();
        assert!(!(start <= new && new < end));
    }

    #[test]
    fn service_keys() {
        let k = Keys::default();
        assert_eq!(
            k.tile_revision("riverflow", 3),
            "/tilewave/tiles/riverflow/rev/0000000003"
        );
        assert!(
            k.tile_revision("riverflow", 3)
                .starts_with(&k.tile_revisions("riverflow"))
        );
        assert_eq!(
            k.self_test_workspace("1234"),
            "/tilewave/self-test-workspaces/1234"
        );
        assert_eq!(
            k.rollout_active("riverflow"),
            "/tilewave/rollout-active/riverflow"
        );
        assert_eq!(k.owner(&work::rollout("r1")), "/tilewave/owners/rollout-r1");
        assert_eq!(
            k.credential_secret("riverflow", "partner-basic-auth", 3),
            "/tilewave/credentials/riverflow/partner-basic-auth/secrets/0000000000000000003"
        );
        assert_eq!(
            k.credential_versions("riverflow", "partner-basic-auth"),
            "/tilewave/credentials/riverflow/partner-basic-auth/versions"
        );
        assert_eq!(
            k.credential_rotation_active("riverflow", "partner-basic-auth"),
            "/tilewave/credential-rotation-active/riverflow/partner-basic-auth"
        );
        assert_eq!(
            k.owner(&work::credential_rotation("c1")),
            "/tilewave/owners/credential-rotation-c1"
        );
        assert_eq!(
            k.escalation_outbox_entry("INC-1", "INC-1/c0/r0/l0/webhook/ops"),
            "/tilewave/escalation-outbox/INC-1/INC-1/c0/r0/l0/webhook/ops"
        );
        assert!(
            k.escalation_outbox_entry("INC-1", "x")
                .starts_with(&k.escalation_outbox("INC-1"))
        );
        assert!(
            !k.escalation_outbox_entry("INC-10", "x")
                .starts_with(&k.escalation_outbox("INC-1"))
        );
        assert_eq!(
            k.escalation_secret("person/alice/phone"),
            "/tilewave/escalation-secrets/person/alice/phone"
        );
        assert_eq!(
            k.escalation_policy("default"),
            "/tilewave/escalation-policies/default"
        );
        assert_eq!(
            k.owner(work::ESCALATION_SENDER),
            "/tilewave/owners/escalation-sender"
        );
        assert_eq!(k.owner(work::AUDIT_RETENTION), "/tilewave/owners/audit-retention");
        let day = Timestamp::from_second(1_767_225_600 + 3600).unwrap();
        assert_eq!(
            k.audit_summary("tile", "riverflow", day),
            "/tilewave/audit-summaries/tile/riverflow/2026-01-01"
        );
        assert!(
            k.audit_summary("tile", "riverflow", day)
                .starts_with(&k.audit_summaries_of("tile", "riverflow"))
        );
        assert!(
            k.audit_summaries_of("tile", "x")
                .starts_with(&k.audit_summaries())
        );
        assert_eq!(
            k.audit_summaries_of("timer", "ga/riverflow"),
            "/tilewave/audit-summaries/timer/ga%2Friverflow/"
        );
        assert_eq!(
            k.audit_summaries_of("", "a%b"),
            "/tilewave/audit-summaries/%/a%25b/"
        );
        assert!(
            !k.audit_summaries_of("timer", "ga/x")
                .starts_with(&k.audit_summaries_of("timer", "ga"))
        );
    }

    #[test]
    fn audit_keys_sort_in_time_order() {
        let k = Keys::default();
        let a = k.audit(Timestamp::from_second(9).unwrap(), u64::MAX).unwrap();
        let b = k.audit(Timestamp::from_second(10).unwrap(), 0).unwrap();
        assert!(a < b);
        // The range of records before a moment.
        let end = k.audit_before(Timestamp::from_second(10).unwrap());
        assert!(a < end && end < b);
        assert!(k.audit_prefix() < end && b < k.audit_end());
        let summaries = k.audit_summaries();
        assert!(
            !(k.audit_prefix() <= summaries && summaries < k.audit_end()),
            "summaries are not audit records"
        );
        assert_eq!(
            k.audit_before(Timestamp::from_second(-5).unwrap()),
            "/tilewave/audit/0000000000000000000"
        );
    }

    #[test]
    fn an_objects_audit_index_sorts_in_time_order_and_points_to_its_records() {
        let k = Keys::default();
        let at = Timestamp::from_second(10).unwrap();
        let record = k.audit(at, 0xab).unwrap();
        let entry = k.audit_index_entry("tile", "riverflow", &record).unwrap();
        assert_eq!(
            entry,
            "/tilewave/audit-index/tile/riverflow/0000000010000000000-00000000000000ab"
        );
        assert_eq!(
            k.audit_of_index_entry("tile", "riverflow", &entry).as_deref(),
            Some(record.as_str())
        );
        // Another object's entry does not map, nor does a non-audit key.
        assert_eq!(k.audit_of_index_entry("tile", "river", &entry), None);
        assert_eq!(k.audit_index_entry("tile", "x", &k.clock()), None);
        // The span bounds of one object.
        let (from, to) = (
            k.audit_index_before("tile", "riverflow", at),
            k.audit_index_before("tile", "riverflow", Timestamp::from_second(11).unwrap()),
        );
        assert!(k.audit_index_of("tile", "riverflow") < from && from <= entry && entry < to);
        assert!(to < k.audit_index_end("tile", "riverflow"));
        // One object's range never holds another's (escaped like summaries).
        let slash = k.audit_index_entry("timer", "ga/x", &record).unwrap();
        assert!(!slash.starts_with(&k.audit_index_of("timer", "ga")));
        assert!(!(k.audit_index_of("timer", "ga") <= slash && slash < k.audit_index_end("timer", "ga")));
        // Neither the index nor its marker is in the records' range.
        for other in [entry, k.audit_index_ready()] {
            assert!(!(k.audit_prefix() <= other && other < k.audit_end()), "{other}");
        }
    }

    #[test]
    fn direct_children() {
        let k = Keys::default();
        assert!(Keys::is_direct_child(&k.rollouts(), &k.rollout("r1")));
        assert!(!Keys::is_direct_child(&k.rollouts(), &k.rollout_step("r1", "x")));
    }

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end(b"a/"), b"a0".to_vec());
        assert_eq!(prefix_end(&[b'a', 0xff]), b"b".to_vec());
    }

    #[test]
    fn segments() {
        assert!(check_segment("id", "riverflow").is_ok());
        assert!(check_segment("id", "a/b").is_err());
        assert!(check_segment("id", "").is_err());
    }
}
