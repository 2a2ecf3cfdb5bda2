//! The EscalationService RPCs: convert, ask `tilewave_core::escalation`,
//! carry out its effects, write one audited transaction. Signing secrets
//! come in through the Set requests, are sealed at once and never answered.

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;

use jiff::SignedDuration;
use tilewave_auth::Scope;
use tilewave_core::escalation::{
    self as core, Command, Directory, Effect, NewIncident, Source, StepOutcome, TargetKind,
};
use tilewave_core::quote::quoted;
use tilewave_proto::common::v1::SpanOrigin;
use tilewave_proto::escalation::v1::escalation_service_server::EscalationService;
use tilewave_proto::escalation::v1::*;
use tilewave_proto::rollout::v1::PauseRolloutRequest;
use tilewave_proto::rollout::v1::RollbackRolloutRequest;
use tilewave_proto::rollout::v1::rollout_service_client::RolloutServiceClient;
use tilewave_secrets::Secret;
use tilewave_service::limits;
use tilewave_service::paging::Page;
use tilewave_store::audit;
use tilewave_store::{Actor, CacheEvent, Change, FencingToken, Versioned};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::convert;
use crate::error::{Error, Result};
use crate::model::{Ctx, IncidentWrite, advance, outbox, stored};

/// The RPCs whose handlers scope what they answer to the caller's partner
/// (a partner sees the incidents of its own tiles only).
pub const PARTNER_SCOPED: &[&str] = &["GetIncident", "ListIncidents", "WatchIncidents"];

/// How often a write that lost a race is tried again with a fresh read.
const RETRIES: usize = 5;

/// The most entries of the lists of a definition (levels, targets per
/// level, speedups, contacts, layers, SOP steps, signing secrets).
const MAX_ENTRIES: usize = 50;
/// The most overrides of a schedule.
const MAX_OVERRIDES: usize = 500;

/// How far ahead SetSchedule looks for spans with nobody on call.
const COVERAGE_AHEAD: SignedDuration = SignedDuration::from_hours(24 * 28);

/// The EscalationService implementation.
#[derive(Debug, Clone)]
pub struct Escalation {
    ctx: Ctx,
}

impl Escalation {
    /// Serves from `ctx`.
    pub fn new(ctx: Ctx) -> Self {
        Self { ctx }
    }
}

fn with_etag(v: Versioned<Incident>) -> Incident {
    Incident {
        etag: v.etag,
        ..v.value
    }
}

/// What opening an incident needs besides its id.
#[derive(Debug, Clone)]
pub struct Opening {
    /// The core's input (its `id` is filled in).
    pub new: NewIncident,
    /// The SOP id asked for (`None`: the one for the source's kind).
    pub sop: Option<String>,
    /// The trace that raised it.
    pub origin: Option<SpanOrigin>,
}

/// Opens an incident: the next id, the core's `open`, the ladder's first
/// step, the pages and the timer, with `extra` (the events cursor), in one
/// transaction (fenced by `token` when given). Retried on a lost race for
/// the counter.
pub async fn open_incident(
    ctx: &Ctx,
    actor: &Actor,
    opening: Opening,
    extra: Change,
    token: Option<&FencingToken>,
) -> Result<Incident> {
    let sops = ctx.sops().await?;
    let sop = match &opening.sop {
        Some(id) => Some(
            sops.iter()
                .find(|s| &s.id == id)
                .ok_or_else(|| Error::NotFound(format!("no SOP {}", quoted(id))))?
                .clone(),
        ),
        None => core::sop_for(&sops, opening.new.source.kind()).cloned(),
    };
    let policies = ctx.policies().await?;
    let dir = ctx.directory().await?;
    let mut last = None;
    for _ in 0..RETRIES {
        let now = ctx.clock.now();
        let (id, counter) = ctx.next_id().await?;
        let new = NewIncident {
            id: id.clone(),
            ..opening.new.clone()
        };
        let t = core::open(new, sop.as_ref(), now, actor.as_str())
            .map_err(|p| Error::problems("the incident", p))?;
        let adv = advance(&policies, &dir, t.incident, now);
        let timer = crate::model::next_timer(adv.timer, &adv.incident, now);
        let mut w = IncidentWrite::new(None, adv.incident, now);
        w.origin = match opening.origin.clone() {
            Some(o) if tilewave_clients::webhook::validate_traceparent(&o.traceparent).is_ok() => Some(o),
            _ => Some(SpanOrigin {
                traceparent: crate::model::fresh_traceparent(),
                tracestate: String::new(),
            }),
        };
        w.notifications = adv.notifications;
        w.timer = timer;
        let mut change = w
            .change(ctx.keys(), "OpenIncident", t.summary.clone())?
            .merge(counter)
            .merge(extra.clone());
        if let Some(token) = token {
            change = change.fence(token);
        }
        match ctx.store.commit(change, actor).await {
            Ok(info) => {
                let mut out = w.wire();
                out.etag = info.revision;
                pause_rollouts(ctx, &out.id, &adv.effects).await;
                return Ok(out);
            }
            Err(e) => {
                let e = Error::from(e);
                if !e.is_conflict() {
                    return Err(e);
                }
                last = Some(e);
            }
        }
    }
    Err(last.unwrap_or_else(|| Error::Conflict("the incident counter kept moving; try again".into())))
}

/// The unacknowledged-SEV1 rule's pauses, after the step that decided them
/// was committed: at least once (a pause of a paused roll-out is refused
/// and logged, nothing more).
pub async fn pause_rollouts(ctx: &Ctx, incident: &str, effects: &[Effect]) {
    for e in effects {
        if let Effect::PauseRollout { rollout } = e
            && let Err(err) = pause_rollout(
                ctx,
                rollout,
                &format!("SEV1 incident {incident} is unacknowledged past its policy's limit"),
            )
            .await
        {
            tracing::warn!(%rollout, error = %err, "cannot pause the roll-out of an unacknowledged SEV1");
        }
    }
}

fn rollout_client(ctx: &Ctx) -> Result<RolloutServiceClient<tonic::transport::Channel>> {
    ctx.rollout.clone().map(RolloutServiceClient::new).ok_or_else(|| {
        Error::FailedPrecondition(
            "this escalation service has no rollout service to act through (--rollout)".into(),
        )
    })
}

/// Starts an emergency rotation of `tile`'s partner credential to its
/// PENDING version through the credentials service (before the mitigation
/// is written: a refusal, e.g. no PENDING version, changes nothing).
async fn rotate_credential(ctx: &Ctx, tile: &str, incident: &str) -> Result<()> {
    use tilewave_proto::credentials::v1::credentials_service_client::CredentialsServiceClient;
    use tilewave_proto::credentials::v1::{CredentialKind, StartRotationRequest};
    let channel = ctx.credentials.clone().ok_or_else(|| {
        Error::FailedPrecondition(format!(
            "this escalation service has no credentials service to act through (--credentials); \
             run `tilewave creds rotate {tile} --emergency` and record it with MANUAL"
        ))
    })?;
    CredentialsServiceClient::new(channel)
        .start_rotation(StartRotationRequest {
            tile_id: tile.to_owned(),
            kind: CredentialKind::PartnerBasicAuth as i32,
            emergency: true,
            request_id: format!("{incident}-rotate-credential"),
            ..Default::default()
        })
        .await
        .map_err(|status| Error::Remote {
            what: format!("starting an emergency credential rotation of {}", quoted(tile)),
            status,
        })?;
    Ok(())
}

async fn pause_rollout(ctx: &Ctx, rollout: &str, why: &str) -> Result<()> {
    rollout_client(ctx)?
        .pause_rollout(PauseRolloutRequest {
            id: rollout.to_owned(),
            etag: 0,
            reason: why.to_owned(),
        })
        .await
        .map_err(|status| Error::Remote {
            what: format!("pausing roll-out {}", quoted(rollout)),
            status,
        })?;
    Ok(())
}

/// Carries out a command on incident `id` in one audited transaction: the
/// core's `handle`, then its effects (the ladder stepped, undelivered
/// pages and the timer cancelled, deferred pages sent now, the rollout
/// service called before anything is written). With `etag` 0 a lost race
/// is retried with a fresh read.
pub async fn command(ctx: &Ctx, actor: &Actor, id: &str, etag: i64, cmd: Command) -> Result<(Incident, u32)> {
    let mut last = None;
    // Calls to other services already made in an earlier try (a lost race
    // retries the write, not the call).
    let mut called: Vec<Effect> = Vec::new();
    for _ in 0..RETRIES {
        let prev = ctx.incident(id).await?;
        if etag != 0 && etag != prev.etag {
            return Err(Error::Conflict(format!(
                "incident {id} changed since it was read (etag {etag}, now {}): read it again and retry",
                prev.etag
            )));
        }
        let before = convert::incident(&prev.value);
        let now = ctx.clock.now();
        let t = core::handle(&before, &cmd, now, actor.as_str())?;
        if !t.changed(&before) {
            return Ok((with_etag(prev), 0));
        }
        let mut w = IncidentWrite::new(Some(prev), t.incident, now);
        let mut cancelled = 0;
        let mut pauses = Vec::new();
        for effect in &t.effects {
            match effect {
                Effect::Escalate => {
                    let adv = advance(
                        &ctx.policies().await?,
                        &ctx.directory().await?,
                        w.incident.clone(),
                        now,
                    );
                    w.incident = adv.incident;
                    w.notifications = adv.notifications;
                    w.timer = crate::model::next_timer(adv.timer, &w.incident, now);
                    pauses = adv.effects;
                }
                Effect::CancelPending => {
                    let pending = outbox(ctx, id).await?;
                    cancelled = u32::try_from(pending.len()).unwrap_or(u32::MAX);
                    w.cancel = pending.into_iter().map(|e| e.key).collect();
                    // The ladder stops; re-rating near the deadline goes on.
                    w.timer = crate::model::next_timer(None, &w.incident, now);
                }
                Effect::Expedite => {
                    w.expedite = outbox(ctx, id)
                        .await?
                        .into_iter()
                        .filter(|e| convert::ts(e.value.deliver_at.as_ref()).is_some_and(|t| t > now))
                        .collect();
                }
                Effect::PauseRollout { .. } | Effect::RemoveTile { .. } if called.contains(effect) => {}
                Effect::PauseRollout { rollout } => {
                    pause_rollout(ctx, rollout, &format!("mitigating incident {id}")).await?;
                    called.push(effect.clone());
                }
                Effect::RemoveTile { tile, regions } => {
                    let rollout = w.incident.rollout.clone().ok_or_else(|| {
                        Error::FailedPrecondition(format!(
                            "{id} names no roll-out of {tile} to roll back in {}",
                            regions.join(", ")
                        ))
                    })?;
                    rollout_client(ctx)?
                        .rollback_rollout(RollbackRolloutRequest {
                            id: rollout.clone(),
                            etag: 0,
                            reason: format!("mitigating incident {id}"),
                            regions: regions.clone(),
                        })
                        .await
                        .map_err(|status| Error::Remote {
                            what: format!("rolling back {} in {}", quoted(&rollout), regions.join(", ")),
                            status,
                        })?;
                    called.push(effect.clone());
                }
                Effect::RotateCredential { .. } if called.contains(effect) => {}
                Effect::RotateCredential { tile } => {
                    rotate_credential(ctx, tile, id).await?;
                    called.push(effect.clone());
                }
            }
        }
        let change = w.change(ctx.keys(), cmd.action(), t.summary.clone())?;
        match ctx.store.commit(change, actor).await {
            Ok(info) => {
                let mut out = w.wire();
                out.etag = info.revision;
                pause_rollouts(ctx, id, &pauses).await;
                return Ok((out, cancelled));
            }
            Err(e) => {
                let e = Error::from(e);
                if etag != 0 || !e.is_conflict() {
                    return Err(e);
                }
                last = Some(e);
            }
        }
    }
    Err(last.unwrap_or_else(|| Error::Conflict(format!("incident {id} kept changing; try again"))))
}

fn required<'a>(field: &str, value: &'a str) -> Result<&'a str> {
    if value.trim().is_empty() {
        return Err(Error::invalid(field, "required"));
    }
    limits::id(field, value)?;
    Ok(value)
}

/// Reads one signing secret from a request map entry.
fn secret_of(field: &str, value: &str) -> Result<Secret> {
    Secret::from_bytes(value.as_bytes().to_vec()).map_err(|e| Error::invalid(field, e.to_string()))
}

/// The writes sealing the signing secrets of `targets` (target id, name in
/// the request map): the given one, else the stored one is kept, else a
/// generated one. A name in `given` that is no target is an error.
async fn seal_secrets(
    ctx: &Ctx,
    field: &str,
    targets: &[(String, String)],
    given: &HashMap<String, String>,
) -> Result<Change> {
    for name in given.keys() {
        if !targets.iter().any(|(_, n)| n == name) {
            return Err(Error::invalid(
                format!("{field}[{}]", quoted(name)),
                "names no target of this definition",
            ));
        }
    }
    let mut change = Change::new();
    for (target, name) in targets {
        let key = ctx.keys().escalation_secret(target);
        let secret = match given.get(name) {
            Some(s) => secret_of(&format!("{field}[{}]", quoted(name)), s)?,
            None => {
                if ctx
                    .store
                    .get::<tilewave_proto::credentials::v1::StoredSecret>(&key)
                    .await?
                    .is_some()
                {
                    continue;
                }
                tilewave_secrets::webhook::generate_secret()?
            }
        };
        let sealed = ctx.keyring.seal(&secret, target.as_bytes())?;
        change = change.put_unchecked(key, &stored(&sealed));
    }
    Ok(change)
}

/// A definition's write guarded by its etag (0: must not exist).
fn guarded<M: prost::Message>(key: String, msg: &M, etag: i64, existing: Option<i64>) -> Result<Change> {
    match (etag, existing) {
        (0, None) => Ok(Change::new().create(key, msg)),
        (0, Some(now)) => Err(Error::Conflict(format!(
            "it exists already (etag {now}): read it and give its etag to replace it"
        ))),
        (e, Some(now)) if e == now => Ok(Change::new().update(key, msg, e)),
        (e, Some(now)) => Err(Error::Conflict(format!(
            "it changed since it was read (etag {e}, now {now}): read it again and retry"
        ))),
        (_, None) => Err(Error::NotFound(
            "it does not exist: give etag 0 to create it".into(),
        )),
    }
}

type Stream2<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl EscalationService for Escalation {
    type WatchIncidentsStream = Stream2<IncidentEvent>;

    async fn open_incident(
        &self,
        req: Request<OpenIncidentRequest>,
    ) -> Result<Response<OpenIncidentResponse>, Status> {
        let actor = Actor::from_request(&req);
        let r = req.into_inner();
        if r.title.trim().is_empty() {
            return Err(Error::invalid("title", "required: one line saying what is broken").into());
        }
        limits::text("title", &r.title).map_err(Error::from)?;
        required("tile_id", &r.tile_id)?;
        limits::each_id("regions", &r.regions).map_err(Error::from)?;
        let severity = convert::severity(r.severity)
            .ok_or_else(|| Error::invalid("severity", "required: SEV1 to SEV4"))?;
        let policies = self.ctx.policies().await?;
        let policy = if r.policy.is_empty() {
            core::policy_for(&policies, severity)
                .map(|p| p.name.clone())
                .unwrap_or_else(|| "default".to_owned())
        } else {
            if !policies.iter().any(|p| p.name == r.policy) {
                return Err(Error::NotFound(format!("no escalation policy {}", quoted(&r.policy))).into());
            }
            r.policy.clone()
        };
        let opening = Opening {
            new: NewIncident {
                id: String::new(),
                title: r.title.clone(),
                tile: r.tile_id.clone(),
                regions: r.regions.clone(),
                severity,
                source: Source::Manual,
                side: convert::side(r.side),
                partner: (!r.partner.is_empty()).then(|| r.partner.clone()),
                rollout: (!r.rollout_id.is_empty()).then(|| r.rollout_id.clone()),
                deadline: convert::ts(r.deadline.as_ref()),
                policy,
                linked_to: None,
            },
            sop: (!r.sop_id.is_empty()).then(|| r.sop_id.clone()),
            origin: Some(tilewave_telemetry::current_origin()),
        };
        let incident = open_incident(&self.ctx, &actor, opening, Change::new(), None).await?;
        Ok(Response::new(OpenIncidentResponse {
            incident: Some(incident),
        }))
    }

    async fn get_incident(
        &self,
        req: Request<GetIncidentRequest>,
    ) -> Result<Response<GetIncidentResponse>, Status> {
        let scope = Scope::of_request(&req);
        let id = required("id", &req.get_ref().id)?.to_owned();
        let i = self.ctx.incident(&id).await?;
        if !scope.sees((!i.value.partner.is_empty()).then_some(i.value.partner.as_str())) {
            return Err(Error::NotFound(format!("no incident {}", quoted(&id))).into());
        }
        Ok(Response::new(GetIncidentResponse {
            incident: Some(with_etag(i)),
        }))
    }

    async fn list_incidents(
        &self,
        req: Request<ListIncidentsRequest>,
    ) -> Result<Response<ListIncidentsResponse>, Status> {
        let scope = Scope::of_request(&req);
        let r = req.into_inner();
        let page = Page::parse(r.page.as_ref()).map_err(|e| Error::invalid(e.field, e.message))?;
        let mut items: Vec<Incident> = self
            .ctx
            .store
            .list::<Incident>(&self.ctx.keys().incidents())
            .await
            .map_err(Error::from)?
            .items
            .into_iter()
            .map(with_etag)
            .filter(|i| r.states.is_empty() || r.states.contains(&i.state))
            .filter(|i| r.severity == 0 || r.severity == i.severity)
            .filter(|i| r.tile_id.is_empty() || r.tile_id == i.tile_id)
            .filter(|i| scope.sees((!i.partner.is_empty()).then_some(i.partner.as_str())))
            .map(|mut i| {
                i.timeline.clear();
                i
            })
            .collect();
        // Newest first: by number, descending.
        items.sort_by_key(|i| std::cmp::Reverse(i.id.trim_start_matches("INC-").parse::<u64>().unwrap_or(0)));
        let (incidents, next_page_token) = page
            .by_offset(items)
            .map_err(|e| Error::invalid(e.field, e.message))?;
        Ok(Response::new(ListIncidentsResponse {
            incidents,
            next_page_token,
        }))
    }

    async fn watch_incidents(
        &self,
        req: Request<WatchIncidentsRequest>,
    ) -> Result<Response<Self::WatchIncidentsStream>, Status> {
        let scope = Scope::of_request(&req);
        let tile = req.into_inner().tile_id;
        let cache = self.ctx.incidents.clone();
        let mut events = cache.subscribe();
        let (revision, snapshot) = cache.snapshot();
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let wanted = move |i: &Incident| {
            (tile.is_empty() || i.tile_id == tile)
                && scope.sees((!i.partner.is_empty()).then_some(i.partner.as_str()))
        };
        tokio::spawn(async move {
            for v in snapshot {
                let i = with_etag(v);
                if !wanted(&i) {
                    continue;
                }
                let ev = IncidentEvent {
                    r#type: IncidentEventType::Snapshot as i32,
                    revision: i.etag,
                    incident: Some(i),
                };
                if tx.send(Ok(ev)).await.is_err() {
                    return;
                }
            }
            let end = IncidentEvent {
                r#type: IncidentEventType::SnapshotEnd as i32,
                revision,
                incident: None,
            };
            if tx.send(Ok(end)).await.is_err() {
                return;
            }
            loop {
                let ev = match events.recv().await {
                    Ok(CacheEvent::Put(v)) if v.etag > revision => {
                        let i = with_etag(v);
                        if !wanted(&i) {
                            continue;
                        }
                        IncidentEvent {
                            r#type: IncidentEventType::Put as i32,
                            revision: i.etag,
                            incident: Some(i),
                        }
                    }
                    Ok(CacheEvent::Put(_) | CacheEvent::Resynced { .. }) => continue,
                    Ok(CacheEvent::Delete { revision, .. }) => IncidentEvent {
                        r#type: IncidentEventType::Delete as i32,
                        revision,
                        incident: None,
                    },
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        let _ = tx
                            .send(Err(Status::data_loss("the watch fell behind: watch again")))
                            .await;
                        return;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                };
                if tx.send(Ok(ev)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn acknowledge(
        &self,
        req: Request<AcknowledgeRequest>,
    ) -> Result<Response<AcknowledgeResponse>, Status> {
        let actor = Actor::from_request(&req);
        let r = req.into_inner();
        required("id", &r.id)?;
        let (incident, cancelled) = command(&self.ctx, &actor, &r.id, r.etag, Command::Acknowledge).await?;
        Ok(Response::new(AcknowledgeResponse {
            incident: Some(incident),
            cancelled,
        }))
    }

    async fn add_note(&self, req: Request<AddNoteRequest>) -> Result<Response<AddNoteResponse>, Status> {
        let actor = Actor::from_request(&req);
        let r = req.into_inner();
        required("id", &r.id)?;
        limits::text("note", &r.note).map_err(Error::from)?;
        let (incident, _) = command(
            &self.ctx,
            &actor,
            &r.id,
            r.etag,
            Command::AddNote { note: r.note },
        )
        .await?;
        Ok(Response::new(AddNoteResponse {
            incident: Some(incident),
        }))
    }

    async fn complete_step(
        &self,
        req: Request<CompleteStepRequest>,
    ) -> Result<Response<CompleteStepResponse>, Status> {
        let actor = Actor::from_request(&req);
        let r = req.into_inner();
        required("id", &r.id)?;
        limits::text("note", &r.note).map_err(Error::from)?;
        limits::text("skip_reason", &r.skip_reason).map_err(Error::from)?;
        let outcome = if r.skip_reason.is_empty() {
            StepOutcome::Done {
                note: (!r.note.is_empty()).then_some(r.note),
            }
        } else {
            StepOutcome::Skipped {
                reason: r.skip_reason,
            }
        };
        let cmd = Command::CompleteStep {
            number: r.step,
            outcome,
        };
        let (incident, _) = command(&self.ctx, &actor, &r.id, r.etag, cmd).await?;
        Ok(Response::new(CompleteStepResponse {
            incident: Some(incident),
        }))
    }

    async fn mitigate(&self, req: Request<MitigateRequest>) -> Result<Response<MitigateResponse>, Status> {
        let actor = Actor::from_request(&req);
        let r = req.into_inner();
        required("id", &r.id)?;
        limits::text("note", &r.note).map_err(Error::from)?;
        limits::each_id("regions", &r.regions).map_err(Error::from)?;
        let action = convert::action(r.action).ok_or_else(|| {
            Error::invalid(
                "action",
                "required: PAUSE_ROLLOUT, REMOVE_TILE, ROTATE_CREDENTIAL or MANUAL",
            )
        })?;
        let cmd = Command::Mitigate {
            action,
            regions: r.regions,
            note: r.note,
        };
        let (incident, _) = command(&self.ctx, &actor, &r.id, r.etag, cmd).await?;
        Ok(Response::new(MitigateResponse {
            incident: Some(incident),
        }))
    }

    async fn resolve(&self, req: Request<ResolveRequest>) -> Result<Response<ResolveResponse>, Status> {
        let actor = Actor::from_request(&req);
        let r = req.into_inner();
        required("id", &r.id)?;
        limits::text("note", &r.note).map_err(Error::from)?;
        let (incident, _) = command(
            &self.ctx,
            &actor,
            &r.id,
            r.etag,
            Command::Resolve { note: r.note },
        )
        .await?;
        Ok(Response::new(ResolveResponse {
            incident: Some(incident),
        }))
    }

    async fn reopen(&self, req: Request<ReopenRequest>) -> Result<Response<ReopenResponse>, Status> {
        let actor = Actor::from_request(&req);
        let r = req.into_inner();
        required("id", &r.id)?;
        limits::text("reason", &r.reason).map_err(Error::from)?;
        let (incident, _) = command(
            &self.ctx,
            &actor,
            &r.id,
            r.etag,
            Command::Reopen { reason: r.reason },
        )
        .await?;
        Ok(Response::new(ReopenResponse {
            incident: Some(incident),
        }))
    }

    async fn set_policy(
        &self,
        req: Request<SetPolicyRequest>,
    ) -> Result<Response<SetPolicyResponse>, Status> {
        let actor = Actor::from_request(&req);
        let r = req.into_inner();
        let w = r.policy.ok_or_else(|| Error::invalid("policy", "required"))?;
        required("policy.name", &w.name)?;
        limits::count("policy.levels", w.levels.len(), MAX_ENTRIES).map_err(Error::from)?;
        limits::count("policy.speedups", w.speedups.len(), MAX_ENTRIES).map_err(Error::from)?;
        limits::count("signing_secrets", r.signing_secrets.len(), MAX_ENTRIES).map_err(Error::from)?;
        for (i, l) in w.levels.iter().enumerate() {
            limits::count(
                &format!("policy.levels[{i}].targets"),
                l.targets.len(),
                MAX_ENTRIES,
            )
            .map_err(Error::from)?;
        }
        let policy = convert::policy(&w).map_err(Error::from)?;
        let dir = self.ctx.directory().await?;
        core::validate_policy(&policy, Some(&dir))
            .map_err(|p| Error::problems(format!("policy {}", quoted(&policy.name)), p))?;
        let mut targets: Vec<(String, String)> = Vec::new();
        for t in policy.levels.iter().flat_map(|l| &l.targets) {
            if t.kind == TargetKind::Webhook && !targets.iter().any(|(_, n)| *n == t.name) {
                targets.push((crate::model::webhook_target(&t.name), t.name.clone()));
            }
        }
        let secrets = seal_secrets(&self.ctx, "signing_secrets", &targets, &r.signing_secrets).await?;
        let key = self.ctx.keys().escalation_policy(&policy.name);
        let existing = self.ctx.store.get::<Policy>(&key).await.map_err(Error::from)?;
        let stored = convert::policy_to_wire(&policy, 0);
        let change = guarded(key, &stored, r.etag, existing.map(|e| e.etag))?
            .merge(secrets)
            .audit(audit::record(
                "SetPolicy",
                "escalation-policy",
                &policy.name,
                format!(
                    "set policy {} ({} levels, repeat {})",
                    policy.name,
                    policy.levels.len(),
                    policy.repeat
                ),
            ));
        let info = self.ctx.store.commit(change, &actor).await.map_err(Error::from)?;
        Ok(Response::new(SetPolicyResponse {
            policy: Some(convert::policy_to_wire(&policy, info.revision)),
        }))
    }

    async fn get_policy(
        &self,
        req: Request<GetPolicyRequest>,
    ) -> Result<Response<GetPolicyResponse>, Status> {
        let name = match req.get_ref().name.as_str() {
            "" => "default".to_owned(),
            n => required("name", n)?.to_owned(),
        };
        let p = self
            .ctx
            .store
            .get::<Policy>(&self.ctx.keys().escalation_policy(&name))
            .await
            .map_err(Error::from)?
            .ok_or_else(|| Error::NotFound(format!("no escalation policy {}", quoted(&name))))?;
        Ok(Response::new(GetPolicyResponse {
            policy: Some(Policy {
                etag: p.etag,
                ..p.value
            }),
        }))
    }

    async fn set_schedule(
        &self,
        req: Request<SetScheduleRequest>,
    ) -> Result<Response<SetScheduleResponse>, Status> {
        let actor = Actor::from_request(&req);
        let r = req.into_inner();
        let w = r.schedule.ok_or_else(|| Error::invalid("schedule", "required"))?;
        required("schedule.name", &w.name)?;
        limits::count("schedule.layers", w.layers.len(), MAX_ENTRIES).map_err(Error::from)?;
        limits::count("schedule.overrides", w.overrides.len(), MAX_OVERRIDES).map_err(Error::from)?;
        let schedule = convert::schedule(&w).map_err(Error::from)?;
        let people = self.ctx.directory().await?.people;
        let check = Directory {
            people,
            schedules: BTreeMap::from([(schedule.name.clone(), schedule.clone())]),
            partners: BTreeMap::new(),
        };
        core::validate_directory(&check)
            .map_err(|p| Error::problems(format!("schedule {}", quoted(&schedule.name)), p))?;
        let now = self.ctx.clock.now();
        let warnings = core::coverage(&schedule, now, now.checked_add(COVERAGE_AHEAD).unwrap_or(now))
            .map(|c| c.warnings())
            .unwrap_or_default();
        let key = self.ctx.keys().escalation_schedule(&schedule.name);
        let existing = self.ctx.store.get::<Schedule>(&key).await.map_err(Error::from)?;
        let stored = convert::schedule_to_wire(&schedule, 0);
        let change = guarded(key, &stored, r.etag, existing.map(|e| e.etag))?.audit(audit::record(
            "SetSchedule",
            "escalation-schedule",
            &schedule.name,
            format!(
                "set schedule {} ({} layers, {} overrides)",
                schedule.name,
                schedule.layers.len(),
                schedule.overrides.len()
            ),
        ));
        let info = self.ctx.store.commit(change, &actor).await.map_err(Error::from)?;
        Ok(Response::new(SetScheduleResponse {
            schedule: Some(convert::schedule_to_wire(&schedule, info.revision)),
            warnings,
        }))
    }

    async fn get_schedule(
        &self,
        req: Request<GetScheduleRequest>,
    ) -> Result<Response<GetScheduleResponse>, Status> {
        let name = required("name", &req.get_ref().name)?.to_owned();
        let s = self
            .ctx
            .store
            .get::<Schedule>(&self.ctx.keys().escalation_schedule(&name))
            .await
            .map_err(Error::from)?
            .ok_or_else(|| Error::NotFound(format!("no schedule {}", quoted(&name))))?;
        Ok(Response::new(GetScheduleResponse {
            schedule: Some(Schedule {
                etag: s.etag,
                ..s.value
            }),
        }))
    }

    async fn who_is_on_call(
        &self,
        req: Request<WhoIsOnCallRequest>,
    ) -> Result<Response<WhoIsOnCallResponse>, Status> {
        let r = req.into_inner();
        let at = match &r.at {
            None => self.ctx.clock.now(),
            Some(t) => convert::ts(Some(t)).ok_or_else(|| Error::invalid("at", "not a valid time"))?,
        };
        let dir = self.ctx.directory().await?;
        if !r.schedule.is_empty() && !dir.schedules.contains_key(&r.schedule) {
            return Err(Error::NotFound(format!("no schedule {}", quoted(&r.schedule))).into());
        }
        let mut shifts = Vec::new();
        for (name, s) in &dir.schedules {
            if !r.schedule.is_empty() && *name != r.schedule {
                continue;
            }
            let on = core::who_is_on_call(s, at)
                .map_err(|p| Error::problems(format!("stored schedule {}", quoted(name)), p))?;
            for c in on {
                shifts.push(OnCallShift {
                    schedule: name.clone(),
                    person: c.person,
                    layer: c.layer.unwrap_or_default(),
                    is_override: c.by_override,
                    span: Some(tilewave_proto::common::v1::TimeRange {
                        start: convert::pts(c.span.0),
                        end: convert::pts(c.span.1),
                    }),
                });
            }
        }
        Ok(Response::new(WhoIsOnCallResponse { shifts }))
    }

    async fn set_sop(&self, req: Request<SetSopRequest>) -> Result<Response<SetSopResponse>, Status> {
        let actor = Actor::from_request(&req);
        let r = req.into_inner();
        let w = r.sop.ok_or_else(|| Error::invalid("sop", "required"))?;
        required("sop.id", &w.id)?;
        limits::count("sop.steps", w.steps.len(), MAX_ENTRIES * 2).map_err(Error::from)?;
        let sop = convert::sop(&w);
        core::validate_sop(&sop).map_err(|p| Error::problems(format!("SOP {}", quoted(&sop.id)), p))?;
        let key = self.ctx.keys().escalation_sop(&sop.id);
        let existing = self.ctx.store.get::<Sop>(&key).await.map_err(Error::from)?;
        let change = guarded(
            key,
            &convert::sop_to_wire(&sop, 0),
            r.etag,
            existing.map(|e| e.etag),
        )?
        .audit(audit::record(
            "SetSop",
            "escalation-sop",
            &sop.id,
            format!("set SOP {} ({} steps)", sop.id, sop.steps.len()),
        ));
        let info = self.ctx.store.commit(change, &actor).await.map_err(Error::from)?;
        Ok(Response::new(SetSopResponse {
            sop: Some(convert::sop_to_wire(&sop, info.revision)),
        }))
    }

    async fn get_sop(&self, req: Request<GetSopRequest>) -> Result<Response<GetSopResponse>, Status> {
        let id = required("id", &req.get_ref().id)?.to_owned();
        if let Some(s) = self
            .ctx
            .store
            .get::<Sop>(&self.ctx.keys().escalation_sop(&id))
            .await
            .map_err(Error::from)?
        {
            return Ok(Response::new(GetSopResponse {
                sop: Some(Sop {
                    etag: s.etag,
                    ..s.value
                }),
            }));
        }
        let sop = core::default_sops()
            .into_iter()
            .find(|s| s.id == id)
            .ok_or_else(|| Error::NotFound(format!("no SOP {}", quoted(&id))))?;
        Ok(Response::new(GetSopResponse {
            sop: Some(convert::sop_to_wire(&sop, 0)),
        }))
    }

    async fn set_person(
        &self,
        req: Request<SetPersonRequest>,
    ) -> Result<Response<SetPersonResponse>, Status> {
        let actor = Actor::from_request(&req);
        let r = req.into_inner();
        let w = r.person.ok_or_else(|| Error::invalid("person", "required"))?;
        required("person.id", &w.id)?;
        limits::count("person.contacts", w.contacts.len(), MAX_ENTRIES).map_err(Error::from)?;
        limits::count("signing_secrets", r.signing_secrets.len(), MAX_ENTRIES).map_err(Error::from)?;
        let person = convert::person(&w).map_err(Error::from)?;
        core::validate_person(&person)
            .map_err(|p| Error::problems(format!("person {}", quoted(&person.id)), p))?;
        let targets: Vec<(String, String)> = person
            .contacts
            .iter()
            .map(|c| (crate::model::person_target(&person.id, &c.name), c.name.clone()))
            .collect();
        let secrets = seal_secrets(&self.ctx, "signing_secrets", &targets, &r.signing_secrets).await?;
        let key = self.ctx.keys().escalation_person(&person.id);
        let existing = self.ctx.store.get::<Person>(&key).await.map_err(Error::from)?;
        let change = guarded(
            key,
            &convert::person_to_wire(&person, 0),
            r.etag,
            existing.map(|e| e.etag),
        )?
        .merge(secrets)
        .audit(audit::record(
            "SetPerson",
            "escalation-person",
            &person.id,
            format!("set person {} ({} contacts)", person.id, person.contacts.len()),
        ));
        let info = self.ctx.store.commit(change, &actor).await.map_err(Error::from)?;
        Ok(Response::new(SetPersonResponse {
            person: Some(convert::person_to_wire(&person, info.revision)),
        }))
    }

    async fn get_person(
        &self,
        req: Request<GetPersonRequest>,
    ) -> Result<Response<GetPersonResponse>, Status> {
        let id = required("id", &req.get_ref().id)?.to_owned();
        let p = self
            .ctx
            .store
            .get::<Person>(&self.ctx.keys().escalation_person(&id))
            .await
            .map_err(Error::from)?
            .ok_or_else(|| Error::NotFound(format!("no person {}", quoted(&id))))?;
        Ok(Response::new(GetPersonResponse {
            person: Some(Person {
                etag: p.etag,
                ..p.value
            }),
        }))
    }

    async fn list_people(
        &self,
        req: Request<ListPeopleRequest>,
    ) -> Result<Response<ListPeopleResponse>, Status> {
        let page =
            Page::parse(req.get_ref().page.as_ref()).map_err(|e| Error::invalid(e.field, e.message))?;
        let people: Vec<Person> = self
            .ctx
            .store
            .list::<Person>(&self.ctx.keys().escalation_people())
            .await
            .map_err(Error::from)?
            .items
            .into_iter()
            .map(|p| Person {
                etag: p.etag,
                ..p.value
            })
            .collect();
        let (people, next_page_token) = page.after_key(people, |p| p.id.as_str());
        Ok(Response::new(ListPeopleResponse {
            people,
            next_page_token,
        }))
    }

    async fn rewrap(
        &self,
        req: Request<tilewave_proto::credentials::v1::RewrapRequest>,
    ) -> Result<Response<tilewave_proto::credentials::v1::RewrapResponse>, Status> {
        use tilewave_proto::credentials::v1::{RewrapResponse, StoredSecret};
        let actor = Actor::from_request(&req);
        let r = req.into_inner();
        let prefix = self.ctx.keys().escalation_secret("");
        let listing = self
            .ctx
            .store
            .list::<StoredSecret>(&prefix)
            .await
            .map_err(Error::from)?;
        let (mut rewrapped, mut already) = (0i32, 0i32);
        for v in listing.items {
            // The target (`webhook/ops`) is the key below the prefix and the
            // secret's associated data.
            let target = v.key.strip_prefix(prefix.as_str()).unwrap_or_default().to_owned();
            let sealed = crate::model::sealed(&v.value.encrypted.clone().unwrap_or_default());
            if !sealed.needs_rewrap(&self.ctx.keyring) {
                already = already.saturating_add(1);
                continue;
            }
            rewrapped = rewrapped.saturating_add(1);
            if r.dry_run {
                continue;
            }
            let moved = self
                .ctx
                .keyring
                .rewrap(&sealed, target.as_bytes())
                .map_err(Error::from)?;
            // One transaction a secret, guarded by its etag: a secret set
            // again meanwhile is sealed under the primary already.
            let change = Change::new()
                .update(v.key.clone(), &stored(&moved), v.etag)
                .audit(audit::record(
                    "Rewrap",
                    "escalation-secret",
                    &target,
                    format!("data key re-wrapped ({} -> {})", sealed.kek_id, moved.kek_id),
                ));
            match self.ctx.store.commit(change, &actor).await {
                Ok(_) => {}
                Err(tilewave_store::Error::Conflict { .. }) => {
                    return Err(Error::Conflict(format!(
                        "the signing secret of {} changed during the rewrap: run it again (what moved stays moved)",
                        quoted(&target)
                    ))
                    .into());
                }
                Err(e) => return Err(Error::from(e).into()),
            }
        }
        Ok(Response::new(RewrapResponse {
            primary_kek_id: self.ctx.keyring.primary().id().to_owned(),
            rewrapped,
            already_primary: already,
        }))
    }

    async fn set_partner_contacts(
        &self,
        req: Request<SetPartnerContactsRequest>,
    ) -> Result<Response<SetPartnerContactsResponse>, Status> {
        let actor = Actor::from_request(&req);
        let r = req.into_inner();
        let w = r.contacts.ok_or_else(|| Error::invalid("contacts", "required"))?;
        required("contacts.partner", &w.partner)?;
        limits::count("contacts.contacts", w.contacts.len(), MAX_ENTRIES).map_err(Error::from)?;
        limits::count("signing_secrets", r.signing_secrets.len(), MAX_ENTRIES).map_err(Error::from)?;
        let contacts = convert::partner_contacts(&w);
        // A partner's contacts are checked as a person's are.
        let as_person = core::Person {
            id: w.partner.clone(),
            name: String::new(),
            time_zone: "UTC".into(),
            working_hours: core::WeeklyWindow::office_hours(),
            contacts: contacts.clone(),
        };
        core::validate_person(&as_person)
            .map_err(|p| Error::problems(format!("partner {} contacts", quoted(&w.partner)), p))?;
        let targets: Vec<(String, String)> = contacts
            .iter()
            .map(|c| (crate::model::partner_target(&w.partner, &c.name), c.name.clone()))
            .collect();
        let secrets = seal_secrets(&self.ctx, "signing_secrets", &targets, &r.signing_secrets).await?;
        let key = self.ctx.keys().escalation_partner(&w.partner);
        let existing = self
            .ctx
            .store
            .get::<PartnerContacts>(&key)
            .await
            .map_err(Error::from)?;
        let stored = PartnerContacts {
            partner: w.partner.clone(),
            contacts: convert::contacts_to_wire(&contacts),
            etag: 0,
        };
        let change = guarded(key, &stored, r.etag, existing.map(|e| e.etag))?
            .merge(secrets)
            .audit(audit::record(
                "SetPartnerContacts",
                "escalation-partner",
                &w.partner,
                format!("set {} contact(s) of partner {}", contacts.len(), w.partner),
            ));
        let info = self.ctx.store.commit(change, &actor).await.map_err(Error::from)?;
        Ok(Response::new(SetPartnerContactsResponse {
            contacts: Some(PartnerContacts {
                etag: info.revision,
                ..stored
            }),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rpc_a_partner_may_call_is_scoped() {
        let mut table = tilewave_auth::table::partner_scoped(tilewave_auth::table::ESCALATION);
        let mut ours = PARTNER_SCOPED.to_vec();
        table.sort_unstable();
        ours.sort_unstable();
        assert_eq!(table, ours);
    }
}
