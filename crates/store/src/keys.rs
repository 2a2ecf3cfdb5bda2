//! The key space, built in one place.
//!
//! Everything lives under a configurable prefix (default `/tilewave/`):
//! `tiles/<id>`, `rollouts/<id>`, `rollouts/<id>/steps/<region>`,
//! `agents/<region>`, `events/<id>`, `credentials/<id>`, `incidents/<id>`,
//! `timers/<due>/<id>`, `audit/<at>-<random>`, `owners/<work>`, `freeze` and
//! `clock` (DESIGN.md, "Coordination through etcd"). Builders are infallible;
//! ids are checked at the service edges ([`check_segment`]).

use jiff::Timestamp;

use crate::error::{Error, Result};

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
    /// `incidents/`
    pub fn incidents(&self) -> String {
        self.join(&["incidents/"])
    }
    /// `incidents/<id>`
    pub fn incident(&self, id: &str) -> String {
        self.join(&["incidents/", id])
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
    /// `clock`
    pub fn clock(&self) -> String {
        self.join(&["clock"])
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

    /// `timers/`
    pub fn timers(&self) -> String {
        self.join(&["timers/"])
    }

    /// `timers/<due as zero-padded unix milliseconds>/<id>`: keys sort in due
    /// order. `id` may contain `/`.
    pub fn timer(&self, due: Timestamp, id: &str) -> Result<String> {
        Ok(self.join(&["timers/", &Self::timer_bucket(due)?, "/", id]))
    }

    /// The exclusive end of the timer keys due at or before `now`.
    pub fn timers_due_end(&self, now: Timestamp) -> Result<String> {
        let millis = now.as_millisecond().saturating_add(1).max(0);
        Ok(self.join(&["timers/", &format!("{millis:0NUM_WIDTH$}")]))
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
        let k = Keys::new("/x").unwrap();
        assert_eq!(k.agent("gcp:me-central2"), "/x/agents/gcp:me-central2");
        assert!(Keys::new("").is_err());
    }

    #[test]
    fn timer_keys_sort_in_due_order() {
        let k = Keys::default();
        let a = k.timer(Timestamp::from_second(9).unwrap(), "z").unwrap();
        let b = k.timer(Timestamp::from_second(10).unwrap(), "a").unwrap();
        assert!(a < b);
        let end = k.timers_due_end(Timestamp::from_second(9).unwrap()).unwrap();
        assert!(a < end && b > end);
        assert!(k.timer(Timestamp::from_second(-1).unwrap(), "x").is_err());
    }

    #[test]
    fn audit_keys_sort_in_time_order() {
        let k = Keys::default();
        let a = k.audit(Timestamp::from_second(9).unwrap(), u64::MAX).unwrap();
        let b = k.audit(Timestamp::from_second(10).unwrap(), 0).unwrap();
        assert!(a < b);
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
