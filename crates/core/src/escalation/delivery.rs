//! What a page says ([`page_payload`], the JSON body a webhook receives)
//! and how its deliveries are recorded on the incident
//! ([`super::Command::RecordDelivery`]), so attempts and failures are
//! visible there.

use jiff::Timestamp;
use serde::Serialize;

use super::incident::{EntryKind, Incident};
use super::kinds::{Severity, Side, SourceKind};
use super::ladder::Notification;
use crate::quote::quoted;

/// The JSON body of a page. The sender serializes it once and signs those
/// bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PagePayload {
    /// The idempotency key (also sent as a header): receivers drop
    /// repeats.
    pub key: String,
    /// The incident's id.
    pub incident: String,
    /// Its title.
    pub title: String,
    /// Its tile.
    pub tile: String,
    /// Its regions.
    pub regions: Vec<String>,
    /// Its severity ("SEV2").
    pub severity: Severity,
    /// Its state when paged ("TRIGGERED").
    pub state: &'static str,
    /// What raised it.
    pub source: SourceKind,
    /// Who owns it.
    pub side: Side,
    /// How many events it stands for.
    pub count: u32,
    /// The ladder level paged (from 1).
    pub level: usize,
    /// The ladder's round (from 1).
    pub round: u32,
    /// The SOP to follow.
    pub sop: Option<String>,
    /// The tile's GA deadline.
    pub deadline: Option<Timestamp>,
    /// The trace of the work that raised it.
    pub trace_id: Option<String>,
    /// One line for people.
    pub summary: String,
    /// The command showing it: `tilewave incident show INC-42`.
    pub show: String,
    /// The command acknowledging it: `tilewave incident ack INC-42`.
    pub ack: String,
}

/// The body of notification `n` of incident `i`.
pub fn page_payload(i: &Incident, n: &Notification, trace_id: Option<&str>) -> PagePayload {
    PagePayload {
        key: n.key.clone(),
        incident: i.id.clone(),
        title: i.title.clone(),
        tile: i.tile.clone(),
        regions: i.regions.clone(),
        severity: n.severity,
        state: i.state.name(),
        source: i.source.kind(),
        side: i.side,
        count: i.count,
        level: n.level + 1,
        round: n.round + 1,
        sop: i.sop.clone(),
        deadline: i.deadline,
        trace_id: trace_id.map(str::to_string),
        summary: n.summary.clone(),
        show: format!("tilewave incident show {}", i.id),
        ack: format!("tilewave incident ack {}", i.id),
    }
}

/// What one delivery attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The receiver accepted it.
    Delivered,
    /// It failed; retried at `retry_at`, or given up when `None`.
    Failed {
        /// The error (quoted, bounded, on the timeline).
        error: String,
        /// When the sender tries again; `None`: it gave up.
        retry_at: Option<Timestamp>,
    },
}

/// Where the delivery of one notification stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The notification's key.
    pub key: String,
    /// Who, for people ("alice/phone").
    pub recipient: String,
    /// Attempts so far.
    pub attempts: u32,
    /// When it was delivered.
    pub delivered_at: Option<Timestamp>,
    /// The last error.
    pub last_error: Option<String>,
    /// Whether the sender gave up.
    pub gave_up: bool,
}

/// Records an attempt on `i` at `now`; `false` (nothing changed) when the
/// delivery was already over (delivered or given up: a replayed record).
pub(crate) fn record(
    i: &mut Incident,
    key: &str,
    recipient: &str,
    attempt: &Attempt,
    now: Timestamp,
    actor: &str,
) -> bool {
    let idx = match i.deliveries.iter().position(|d| d.key == key) {
        Some(idx) => idx,
        None => {
            i.deliveries.push(Delivery {
                key: key.to_string(),
                recipient: recipient.to_string(),
                attempts: 0,
                delivered_at: None,
                last_error: None,
                gave_up: false,
            });
            i.deliveries.len() - 1
        }
    };
    let d = &mut i.deliveries[idx];
    if d.delivered_at.is_some() || d.gave_up {
        return false;
    }
    d.attempts += 1;
    let n = d.attempts;
    let who = quoted(&d.recipient).to_string();
    let (kind, message) = match attempt {
        Attempt::Delivered => {
            d.delivered_at = Some(now);
            (EntryKind::Delivered, format!("delivered to {who} (attempt {n})"))
        }
        Attempt::Failed { error, retry_at } => {
            d.last_error = Some(error.clone());
            let error = quoted(error);
            match retry_at {
                Some(t) => (
                    EntryKind::DeliveryFailed,
                    format!("delivery to {who} failed (attempt {n}): {error}; retrying at {t}"),
                ),
                None => {
                    d.gave_up = true;
                    (
                        EntryKind::DeliveryFailed,
                        format!("gave up delivering to {who} after {n} attempts: {error}"),
                    )
                }
            }
        }
    };
    i.log(now, actor, kind, message);
    true
}
