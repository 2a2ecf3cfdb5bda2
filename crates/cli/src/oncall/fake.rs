//! An in-process stand-in for the escalation service, for the tests of the
//! calls the commands make (the service is built on another branch): it
//! knows one incident, `INC-42` ([`super::render::tests::incident`]),
//! keeps policies, schedules, SOPs and people by name with etags (a stale
//! etag is ABORTED, as the service's), and records the requests it got.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use futures::Stream;
use tilewave_proto::escalation::v1::escalation_service_server::{EscalationService, EscalationServiceServer};
use tilewave_proto::escalation::v1::*;
use tonic::{Request, Response, Status};

use super::render::tests::incident;
use crate::client::Ctx;
use crate::output::Format;
use crate::settings::Settings;

/// What the fake saw.
#[derive(Debug, Default)]
pub struct Seen {
    pub acks: Vec<AcknowledgeRequest>,
    pub notes: Vec<AddNoteRequest>,
    pub steps: Vec<CompleteStepRequest>,
    pub mitigations: Vec<MitigateRequest>,
    pub resolves: Vec<ResolveRequest>,
    pub opens: Vec<OpenIncidentRequest>,
    pub lists: Vec<ListIncidentsRequest>,
    pub whos: Vec<WhoIsOnCallRequest>,
    pub set_policies: Vec<SetPolicyRequest>,
    pub set_schedules: Vec<SetScheduleRequest>,
    pub set_sops: Vec<SetSopRequest>,
    /// WatchIncidents calls.
    pub watches: usize,
}

/// What the fake stores.
#[derive(Debug, Default)]
pub struct Stored {
    pub policies: BTreeMap<String, Policy>,
    pub schedules: BTreeMap<String, Schedule>,
    pub sops: BTreeMap<String, Sop>,
    pub people: BTreeMap<String, Person>,
}

/// The fake service.
#[derive(Debug, Clone, Default)]
pub struct Fake {
    pub seen: Arc<Mutex<Seen>>,
    pub stored: Arc<Mutex<Stored>>,
}

impl Fake {
    fn record(&self, f: impl FnOnce(&mut Seen)) {
        if let Ok(mut s) = self.seen.lock() {
            f(&mut s);
        }
    }

    fn known(&self, id: &str) -> Result<Incident, Status> {
        if id == "INC-42" {
            Ok(incident())
        } else {
            Err(Status::not_found(format!("incident {id} not found")))
        }
    }

    /// Stores `value` under `key` in the map `pick` selects if `etag` is
    /// the stored one's (0 when new); returns it with its new etag.
    fn put<T: Clone>(
        &self,
        pick: impl FnOnce(&mut Stored) -> &mut BTreeMap<String, T>,
        key: &str,
        mut value: T,
        etag: i64,
        etag_of: impl Fn(&T) -> i64,
        set_etag: impl FnOnce(&mut T, i64),
    ) -> Result<T, Status> {
        let mut stored = self.stored.lock().map_err(|_| Status::internal("poisoned"))?;
        let map = pick(&mut stored);
        let current = map.get(key).map_or(0, &etag_of);
        if current != etag {
            return Err(Status::aborted(format!(
                "{key}: the etag is {current}, not {etag}"
            )));
        }
        set_etag(&mut value, current + 1);
        map.insert(key.to_owned(), value.clone());
        Ok(value)
    }

    fn get<T: Clone>(&self, pick: impl FnOnce(&Stored) -> Option<T>, what: &str) -> Result<T, Status> {
        let stored = self.stored.lock().map_err(|_| Status::internal("poisoned"))?;
        pick(&stored).ok_or_else(|| Status::not_found(format!("{what} not found")))
    }
}

type Events = Pin<Box<dyn Stream<Item = Result<IncidentEvent, Status>> + Send>>;

#[tonic::async_trait]
impl EscalationService for Fake {
    async fn open_incident(
        &self,
        request: Request<OpenIncidentRequest>,
    ) -> Result<Response<OpenIncidentResponse>, Status> {
        let req = request.into_inner();
        self.record(|s| s.opens.push(req.clone()));
        let mut i = incident();
        i.id = "INC-43".into();
        i.title = req.title;
        Ok(Response::new(OpenIncidentResponse { incident: Some(i) }))
    }

    async fn get_incident(
        &self,
        request: Request<GetIncidentRequest>,
    ) -> Result<Response<GetIncidentResponse>, Status> {
        let i = self.known(&request.get_ref().id)?;
        Ok(Response::new(GetIncidentResponse { incident: Some(i) }))
    }

    async fn list_incidents(
        &self,
        request: Request<ListIncidentsRequest>,
    ) -> Result<Response<ListIncidentsResponse>, Status> {
        let req = request.into_inner();
        self.record(|s| s.lists.push(req.clone()));
        Ok(Response::new(ListIncidentsResponse {
            incidents: vec![incident()],
            next_page_token: String::new(),
        }))
    }

    type WatchIncidentsStream = Events;

    async fn watch_incidents(
        &self,
        _: Request<WatchIncidentsRequest>,
    ) -> Result<Response<Self::WatchIncidentsStream>, Status> {
        let mut n = 0;
        self.record(|s| {
            s.watches += 1;
            n = s.watches;
        });
        // The first stream drops (a reconnect follows); the second ends
        // with a refusal (the watch ends with it).
        let end = if n == 1 {
            Status::unavailable("fake: the stream dropped")
        } else {
            Status::permission_denied("fake: the end")
        };
        let events = [
            (IncidentEventType::Snapshot, Some(incident())),
            (IncidentEventType::SnapshotEnd, None),
            (IncidentEventType::Put, Some(incident())),
        ]
        .into_iter()
        .enumerate()
        .map(|(n, (t, i))| {
            Ok(IncidentEvent {
                r#type: t as i32,
                incident: i,
                revision: n as i64 + 1,
            })
        })
        .chain(std::iter::once(Err(end)))
        .collect::<Vec<_>>();
        Ok(Response::new(Box::pin(futures::stream::iter(events))))
    }

    async fn acknowledge(
        &self,
        request: Request<AcknowledgeRequest>,
    ) -> Result<Response<AcknowledgeResponse>, Status> {
        let req = request.into_inner();
        self.record(|s| s.acks.push(req.clone()));
        let i = self.known(&req.id)?;
        Ok(Response::new(AcknowledgeResponse {
            incident: Some(i),
            cancelled: 2,
        }))
    }

    async fn add_note(&self, request: Request<AddNoteRequest>) -> Result<Response<AddNoteResponse>, Status> {
        let req = request.into_inner();
        self.record(|s| s.notes.push(req.clone()));
        let i = self.known(&req.id)?;
        Ok(Response::new(AddNoteResponse { incident: Some(i) }))
    }

    async fn complete_step(
        &self,
        request: Request<CompleteStepRequest>,
    ) -> Result<Response<CompleteStepResponse>, Status> {
        let req = request.into_inner();
        self.record(|s| s.steps.push(req.clone()));
        let i = self.known(&req.id)?;
        Ok(Response::new(CompleteStepResponse { incident: Some(i) }))
    }

    async fn mitigate(
        &self,
        request: Request<MitigateRequest>,
    ) -> Result<Response<MitigateResponse>, Status> {
        let req = request.into_inner();
        self.record(|s| s.mitigations.push(req.clone()));
        let i = self.known(&req.id)?;
        Ok(Response::new(MitigateResponse { incident: Some(i) }))
    }

    async fn resolve(&self, request: Request<ResolveRequest>) -> Result<Response<ResolveResponse>, Status> {
        let req = request.into_inner();
        self.record(|s| s.resolves.push(req.clone()));
        Err(Status::failed_precondition(
            "INC-42 is SEV1: step 3 is open; complete it or skip it with a reason",
        ))
    }

    async fn reopen(&self, _: Request<ReopenRequest>) -> Result<Response<ReopenResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn set_policy(
        &self,
        request: Request<SetPolicyRequest>,
    ) -> Result<Response<SetPolicyResponse>, Status> {
        let req = request.into_inner();
        self.record(|s| s.set_policies.push(req.clone()));
        let p = req.policy.unwrap_or_default();
        let name = p.name.clone();
        let p = self.put(
            |s| &mut s.policies,
            &name,
            p,
            req.etag,
            |p| p.etag,
            |p, e| p.etag = e,
        )?;
        Ok(Response::new(SetPolicyResponse { policy: Some(p) }))
    }

    async fn get_policy(
        &self,
        request: Request<GetPolicyRequest>,
    ) -> Result<Response<GetPolicyResponse>, Status> {
        let name = request.into_inner().name;
        let name = if name.is_empty() {
            "default".to_owned()
        } else {
            name
        };
        let p = self.get(|s| s.policies.get(&name).cloned(), &format!("policy {name}"))?;
        Ok(Response::new(GetPolicyResponse { policy: Some(p) }))
    }

    async fn set_schedule(
        &self,
        request: Request<SetScheduleRequest>,
    ) -> Result<Response<SetScheduleResponse>, Status> {
        let req = request.into_inner();
        self.record(|s| s.set_schedules.push(req.clone()));
        let sc = req.schedule.unwrap_or_default();
        let name = sc.name.clone();
        let sc = self.put(
            |s| &mut s.schedules,
            &name,
            sc,
            req.etag,
            |s| s.etag,
            |s, e| s.etag = e,
        )?;
        Ok(Response::new(SetScheduleResponse {
            schedule: Some(sc),
            warnings: vec!["schedule \"primary\": nobody is on call from … to … (1h)".into()],
        }))
    }

    async fn get_schedule(
        &self,
        request: Request<GetScheduleRequest>,
    ) -> Result<Response<GetScheduleResponse>, Status> {
        let name = request.into_inner().name;
        let s = self.get(|s| s.schedules.get(&name).cloned(), &format!("schedule {name}"))?;
        Ok(Response::new(GetScheduleResponse { schedule: Some(s) }))
    }

    async fn who_is_on_call(
        &self,
        request: Request<WhoIsOnCallRequest>,
    ) -> Result<Response<WhoIsOnCallResponse>, Status> {
        let req = request.into_inner();
        self.record(|s| s.whos.push(req.clone()));
        Ok(Response::new(WhoIsOnCallResponse {
            shifts: vec![OnCallShift {
                schedule: "primary".into(),
                person: "ada".into(),
                layer: "chicago".into(),
                is_override: false,
                span: None,
            }],
        }))
    }

    async fn set_sop(&self, request: Request<SetSopRequest>) -> Result<Response<SetSopResponse>, Status> {
        let req = request.into_inner();
        self.record(|s| s.set_sops.push(req.clone()));
        let sop = req.sop.unwrap_or_default();
        let id = sop.id.clone();
        let sop = self.put(|s| &mut s.sops, &id, sop, req.etag, |s| s.etag, |s, e| s.etag = e)?;
        Ok(Response::new(SetSopResponse { sop: Some(sop) }))
    }

    async fn get_sop(&self, request: Request<GetSopRequest>) -> Result<Response<GetSopResponse>, Status> {
        let id = request.into_inner().id;
        let s = self.get(|s| s.sops.get(&id).cloned(), &format!("SOP {id}"))?;
        Ok(Response::new(GetSopResponse { sop: Some(s) }))
    }

    async fn set_person(
        &self,
        request: Request<SetPersonRequest>,
    ) -> Result<Response<SetPersonResponse>, Status> {
        let req = request.into_inner();
        let p = req.person.unwrap_or_default();
        let id = p.id.clone();
        let p = self.put(|s| &mut s.people, &id, p, req.etag, |p| p.etag, |p, e| p.etag = e)?;
        Ok(Response::new(SetPersonResponse { person: Some(p) }))
    }

    async fn get_person(
        &self,
        request: Request<GetPersonRequest>,
    ) -> Result<Response<GetPersonResponse>, Status> {
        let id = request.into_inner().id;
        let p = self.get(|s| s.people.get(&id).cloned(), &format!("person {id}"))?;
        Ok(Response::new(GetPersonResponse { person: Some(p) }))
    }

    async fn list_people(
        &self,
        _: Request<ListPeopleRequest>,
    ) -> Result<Response<ListPeopleResponse>, Status> {
        let people = self.get(|s| Some(s.people.values().cloned().collect()), "people")?;
        Ok(Response::new(ListPeopleResponse {
            people,
            next_page_token: String::new(),
        }))
    }

    async fn set_partner_contacts(
        &self,
        request: Request<SetPartnerContactsRequest>,
    ) -> Result<Response<SetPartnerContactsResponse>, Status> {
        let mut c = request.into_inner().contacts.unwrap_or_default();
        c.etag = 1;
        Ok(Response::new(SetPartnerContactsResponse { contacts: Some(c) }))
    }

    async fn rewrap(
        &self,
        _: Request<tilewave_proto::credentials::v1::RewrapRequest>,
    ) -> Result<Response<tilewave_proto::credentials::v1::RewrapResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }
}

/// Serves a fake on a free loopback port and returns a context whose
/// escalation URL points at it.
pub async fn serve() -> (Fake, Ctx) {
    let fake = Fake::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let svc = EscalationServiceServer::new(fake.clone());
    tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(incoming)
            .await;
    });
    let ctx = Ctx::new(
        Settings {
            urls: [(crate::endpoints::ESCALATION.name, format!("http://{addr}"))].into(),
            actor: "ada".into(),
            timeout: std::time::Duration::from_secs(5),
            tls: None,
            tls_from: None,
            config_file: None,
            dev_stack: None,
        },
        Format::Table,
    );
    (fake, ctx)
}
