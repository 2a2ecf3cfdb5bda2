//! What the RPCs and the background work share: the context ([`Ctx`]),
//! reading the stored definitions, running the ladder ([`advance`]) and
//! building an incident's one transaction ([`IncidentWrite`]).
//!
//! Layout (every key built by `tilewave_store::Keys`): `incidents/<id>`
//! (`Incident`, with its ladder position and timer), `escalation-counter`,
//! `escalation-policies/<name>`, `escalation-schedules/<name>`,
//! `escalation-sops/<id>` (the shipped defaults apply where none is
//! stored), `escalation-people/<id>`, `escalation-partners/<partner>`,
//! `escalation-outbox/<incident>/<key>` (`OutboxEntry`),
//! `escalation-secrets/<target>` (a `StoredSecret`, sealed),
//! `escalation-cursor` (`EventCursor`), `timers/escalation/<due>/<incident>`.

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tilewave_clients::webhook::{Backoff, WebhookSender};
use tilewave_core::escalation::{
    self as core, Directory, Effect, Incident, Notification, Policy, Recipient, Sop,
};
use tilewave_core::quote::quoted;
use tilewave_proto::common::v1::{SpanOrigin, Timer};
use tilewave_proto::credentials::v1::StoredSecret;
use tilewave_proto::escalation::v1 as wire;
use tilewave_secrets::{Keyring, Secret};
use tilewave_store::audit::{self, AuditRecordExt as _};
use tilewave_store::{Actor, Change, Clock, Keys, Store, Versioned, WatchCache};
use tonic::transport::Channel;

use crate::convert;
use crate::error::{Error, Result};

/// The timer kind of the ladder's steps.
pub const TIMER_KIND: &str = "escalation";

/// The most steps one advance takes (a replica down across many delays
/// catches up level by level; this bounds a corrupt record's loop).
const MAX_STEPS: usize = 1000;

/// Everything the RPCs and the background work share.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// etcd, with the domain clock.
    pub store: Store,
    /// Domain time.
    pub clock: Arc<dyn Clock>,
    /// The key-encryption keys sealing signing secrets.
    pub keyring: Arc<Keyring>,
    /// Every incident, watch-backed.
    pub incidents: Arc<WatchCache<wire::Incident>>,
    /// Delivers webhooks (loopback and `--webhook-hosts` only).
    pub sender: WebhookSender,
    /// When to try a failed delivery again.
    pub backoff: Backoff,
    /// The rollout service, if configured.
    pub rollout: Option<Channel>,
    /// The credentials service, if configured.
    pub credentials: Option<Channel>,
    /// This replica's name in owner records.
    pub holder: String,
    /// Lease TTL of owned work.
    pub ttl: Duration,
    /// The actor of the service's own changes.
    pub actor: Actor,
    /// How long consumed events are kept (`None`: forever).
    pub event_retention: Option<SignedDuration>,
}

impl Ctx {
    /// The key builder.
    pub fn keys(&self) -> &Keys {
        self.store.keys()
    }

    /// The incident `id`, NOT_FOUND naming it otherwise.
    pub async fn incident(&self, id: &str) -> Result<Versioned<wire::Incident>> {
        self.store
            .get::<wire::Incident>(&self.keys().incident(id))
            .await?
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "no incident {}: `tilewave incident list` shows them",
                    quoted(id)
                ))
            })
    }

    /// Every stored policy.
    pub async fn policies(&self) -> Result<Vec<Policy>> {
        let mut out = Vec::new();
        for p in self
            .store
            .list::<wire::Policy>(&self.keys().escalation_policies())
            .await?
            .items
        {
            out.push(convert::policy(&p.value)?);
        }
        Ok(out)
    }

    /// The people, schedules and partner contacts targets refer to.
    pub async fn directory(&self) -> Result<Directory> {
        let mut dir = Directory::default();
        for p in self
            .store
            .list::<wire::Person>(&self.keys().escalation_people())
            .await?
            .items
        {
            let person = convert::person(&p.value)?;
            dir.people.insert(person.id.clone(), person);
        }
        for s in self
            .store
            .list::<wire::Schedule>(&self.keys().escalation_schedules())
            .await?
            .items
        {
            let schedule = convert::schedule(&s.value)?;
            dir.schedules.insert(schedule.name.clone(), schedule);
        }
        for c in self
            .store
            .list::<wire::PartnerContacts>(&self.keys().escalation_partners())
            .await?
            .items
        {
            dir.partners
                .insert(c.value.partner.clone(), convert::partner_contacts(&c.value));
        }
        Ok(dir)
    }

    /// The SOPs: the stored ones, and the shipped defaults whose id none
    /// stored replaces.
    pub async fn sops(&self) -> Result<Vec<Sop>> {
        let stored: Vec<Sop> = self
            .store
            .list::<wire::Sop>(&self.keys().escalation_sops())
            .await?
            .items
            .iter()
            .map(|s| convert::sop(&s.value))
            .collect();
        let mut out = stored.clone();
        out.extend(
            core::default_sops()
                .into_iter()
                .filter(|d| !stored.iter().any(|s| s.id == d.id)),
        );
        Ok(out)
    }

    /// The signing secret of `target` (`webhook/ops`), opened.
    pub async fn secret(&self, target: &str) -> Result<Secret> {
        let stored = self
            .store
            .get::<StoredSecret>(&self.keys().escalation_secret(target))
            .await?
            .ok_or_else(|| Error::NotFound(format!("no signing secret stored for {}", quoted(target))))?;
        let enc = stored.value.encrypted.unwrap_or_default();
        Ok(self.keyring.open(&sealed(&enc), target.as_bytes())?)
    }

    /// The next incident id and the counter's write.
    pub async fn next_id(&self) -> Result<(String, Change)> {
        let key = self.keys().escalation_counter();
        let stored = self.store.get::<wire::IncidentCounter>(&key).await?;
        let (n, change) = match stored {
            None => (1, Change::new().create(key, &wire::IncidentCounter { next: 2 })),
            Some(c) => {
                let n = c.value.next.max(1);
                (
                    n,
                    Change::new().update(key, &wire::IncidentCounter { next: n + 1 }, c.etag),
                )
            }
        };
        Ok((format!("INC-{n}"), change))
    }
}

/// A sealed secret from its stored form.
pub fn sealed(e: &tilewave_proto::credentials::v1::EncryptedSecret) -> tilewave_secrets::Sealed {
    tilewave_secrets::Sealed {
        kek_id: e.kek_id.clone(),
        wrapped_dek: e.wrapped_dek.clone(),
        dek_nonce: e.dek_nonce.clone(),
        nonce: e.nonce.clone(),
        ciphertext: e.ciphertext.clone(),
    }
}

/// A sealed secret in its stored form.
pub fn stored(s: &tilewave_secrets::Sealed) -> StoredSecret {
    StoredSecret {
        encrypted: Some(tilewave_proto::credentials::v1::EncryptedSecret {
            kek_id: s.kek_id.clone(),
            dek_nonce: s.dek_nonce.clone(),
            wrapped_dek: s.wrapped_dek.clone(),
            nonce: s.nonce.clone(),
            ciphertext: s.ciphertext.clone(),
        }),
    }
}

/// The signing-secret id of a notification's recipient: `webhook/<name>`,
/// `person/<id>/<contact>`, `partner/<partner>/<contact>`.
/// Sealing (SetPolicy, SetPerson, SetPartnerContacts) and signing use
/// these same functions, so the two can never disagree.
pub fn target_of(r: &Recipient) -> String {
    match r {
        Recipient::Webhook { name } => webhook_target(name),
        Recipient::Person { person, contact, .. } => person_target(person, contact),
        Recipient::Partner { partner, contact } => partner_target(partner, contact),
    }
}

/// The signing-secret id of a webhook target: `webhook/<name>`.
pub fn webhook_target(name: &str) -> String {
    format!("webhook/{name}")
}

/// The signing-secret id of a person's contact: `person/<id>/<contact>`.
pub fn person_target(person: &str, contact: &str) -> String {
    format!("person/{person}/{contact}")
}

/// The signing-secret id of a partner's contact:
/// `partner/<partner>/<contact>`.
pub fn partner_target(partner: &str, contact: &str) -> String {
    format!("partner/{partner}/{contact}")
}

/// Who, for people: "alice/phone", "webhook ops", "partner acme/ops".
pub fn recipient_name(r: &Recipient) -> String {
    match r {
        Recipient::Webhook { name } => format!("webhook {name}"),
        Recipient::Person { person, contact, .. } => format!("{person}/{contact}"),
        Recipient::Partner { partner, contact } => format!("partner {partner}/{contact}"),
    }
}

/// The ladder advanced as far as `now` allows.
#[derive(Debug, Clone)]
pub struct Advance {
    /// The incident after it.
    pub incident: Incident,
    /// Pages to write to the outbox.
    pub notifications: Vec<Notification>,
    /// Roll-outs to pause (the unacknowledged-SEV1 rule).
    pub effects: Vec<Effect>,
    /// When to step again.
    pub timer: Option<Timestamp>,
}

/// Steps `incident`'s ladder under its policy until nothing more is due at
/// `now` (catching up after downtime level by level, each due at the
/// previous one's due time plus its delay). Without the policy nothing is
/// paged and no timer is kept.
pub fn advance(policies: &[Policy], dir: &Directory, incident: Incident, now: Timestamp) -> Advance {
    let Some(policy) = policies.iter().find(|p| p.name == incident.escalation.policy) else {
        return Advance {
            incident,
            notifications: Vec::new(),
            effects: Vec::new(),
            timer: None,
        };
    };
    let mut i = incident;
    let mut notifications = Vec::new();
    let mut effects = Vec::new();
    let mut timer = None;
    for _ in 0..MAX_STEPS {
        let s = core::step(policy, &i, dir, now);
        let changed = s.changed(&i);
        notifications.extend(s.notifications);
        effects.extend(s.effects);
        i = s.incident;
        timer = s.next_timer;
        match timer {
            Some(t) if t <= now && changed => continue,
            _ => break,
        }
    }
    Advance {
        incident: i,
        notifications,
        effects,
        timer,
    }
}

/// The incident's next timer: the ladder's next step or the next
/// re-rate near its GA deadline ([`core::next_rerate`]), whichever is
/// first.
pub fn next_timer(ladder: Option<Timestamp>, incident: &Incident, now: Timestamp) -> Option<Timestamp> {
    [ladder, core::next_rerate(incident, now)]
        .into_iter()
        .flatten()
        .min()
}

/// One incident's transaction: the incident, its new pages, its timer
/// moved, its undelivered pages cancelled, with one audit record.
#[derive(Debug, Clone)]
pub struct IncidentWrite {
    /// The stored incident (`None`: create it).
    pub prev: Option<Versioned<wire::Incident>>,
    /// The incident as it becomes.
    pub incident: Incident,
    /// The trace that raised it.
    pub origin: Option<SpanOrigin>,
    /// Pages to add to the outbox.
    pub notifications: Vec<Notification>,
    /// When the ladder steps next (`None`: no timer).
    pub timer: Option<Timestamp>,
    /// Outbox entries to delete (acknowledged, resolved: cancelled).
    pub cancel: Vec<String>,
    /// Outbox entries to send at once (expedited).
    pub expedite: Vec<Versioned<wire::OutboxEntry>>,
    /// The due time of the timer being fired in this transaction (the
    /// timer loop deletes that key itself).
    pub fired: Option<Timestamp>,
    /// Domain time of the change.
    pub now: Timestamp,
}

impl IncidentWrite {
    /// A write of `incident` over `prev`, with nothing else yet.
    pub fn new(prev: Option<Versioned<wire::Incident>>, incident: Incident, now: Timestamp) -> Self {
        let origin = prev.as_ref().and_then(|p| p.value.origin.clone());
        let timer = prev
            .as_ref()
            .and_then(|p| convert::ts(p.value.timer_due.as_ref()));
        Self {
            prev,
            incident,
            origin,
            notifications: Vec::new(),
            timer,
            cancel: Vec::new(),
            expedite: Vec::new(),
            fired: None,
            now,
        }
    }

    /// The incident as stored after this write.
    pub fn wire(&self) -> wire::Incident {
        let mut w = convert::incident_to_wire(&self.incident);
        w.origin = self.origin.clone();
        w.timer_due = self.timer.map(tilewave_store::clock::to_proto_timestamp);
        w
    }

    /// The change: everything in one transaction with an audit record of
    /// `action` and `summary`.
    pub fn change(&self, keys: &Keys, action: &str, summary: impl Into<String>) -> Result<Change> {
        let id = &self.incident.id;
        let key = keys.incident(id);
        let w = self.wire();
        let mut change = match &self.prev {
            None => Change::new().create(key, &w),
            Some(p) => Change::new().update(key, &w, p.etag),
        };
        let trace_id = self
            .origin
            .as_ref()
            .and_then(tilewave_store::trace::trace_id)
            .unwrap_or_default()
            .to_owned();
        // The timer: keep it if unchanged, else delete the old (unless it
        // is the one firing now) and schedule the new.
        let old = self
            .prev
            .as_ref()
            .and_then(|p| convert::ts(p.value.timer_due.as_ref()))
            .filter(|t| Some(*t) != self.fired);
        if old != self.timer {
            if let Some(old) = old {
                change = change.delete_unchecked(keys.timer(TIMER_KIND, old, id)?);
            }
            if let Some(mut due) = self.timer {
                // Never the key being fired and deleted in this transaction.
                if Some(due) == self.fired {
                    due = due.checked_add(SignedDuration::from_millis(1)).unwrap_or(due);
                }
                let timer = Timer {
                    id: id.clone(),
                    due: Some(tilewave_store::clock::to_proto_timestamp(due)),
                    kind: TIMER_KIND.to_owned(),
                    payload: Vec::new(),
                    origin: self.origin.clone(),
                };
                change = change.schedule(keys, &timer)?;
            }
        }
        for n in &self.notifications {
            let payload = core::page_payload(
                &self.incident,
                n,
                (!trace_id.is_empty()).then_some(trace_id.as_str()),
            );
            let body = serde_json::to_vec(&payload)
                .map_err(|e| Error::FailedPrecondition(format!("cannot write the page of {}: {e}", n.key)))?;
            let entry = wire::OutboxEntry {
                key: n.key.clone(),
                incident_id: id.clone(),
                recipient: recipient_name(&n.recipient),
                target: target_of(&n.recipient),
                url: n.url.clone(),
                round: n.round,
                level: u32::try_from(n.level).unwrap_or(u32::MAX),
                severity: convert::severity_to_wire(n.severity),
                summary: n.summary.clone(),
                deliver_at: convert::pts(n.deliver_at),
                attempts: 0,
                body,
            };
            change = change.create(keys.escalation_outbox_entry(id, &n.key), &entry);
        }
        for k in &self.cancel {
            change = change.delete_unchecked(k.clone());
        }
        for e in &self.expedite {
            let mut v = e.value.clone();
            v.deliver_at = convert::pts(self.now);
            change = change.put_unchecked(e.key.clone(), &v);
        }
        Ok(change.audit(audit::record(action, "incident", id, summary).trace(trace_id)))
    }
}

/// The outbox entries of incident `id`.
pub async fn outbox(ctx: &Ctx, id: &str) -> Result<Vec<Versioned<wire::OutboxEntry>>> {
    Ok(ctx
        .store
        .list::<wire::OutboxEntry>(&ctx.keys().escalation_outbox(id))
        .await?
        .items)
}

/// A new W3C `traceparent` (a fresh trace, sampled) for an incident that
/// came without one (an event written without its origin), so all its
/// pages share one trace.
pub fn fresh_traceparent() -> String {
    let trace: u128 = rand::random::<u128>().max(1);
    let span: u64 = rand::random::<u64>().max(1);
    format!("00-{trace:032x}-{span:016x}-01")
}
