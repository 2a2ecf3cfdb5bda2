//! An in-process stand-in for the credentials service, for the tests of
//! the calls the commands make (the service itself is not built yet): it
//! knows one rotation, `riverflow-cred-3` of tile `riverflow`, streams it
//! from DISTRIBUTING to PROMOTED, and records what SubmitCredential got.

use std::pin::Pin;
use std::sync::{Arc, Mutex};

use futures::Stream;
use tilewave_proto::credentials::v1::credentials_service_server::{
    CredentialsService, CredentialsServiceServer,
};
use tilewave_proto::credentials::v1::{
    CancelRotationRequest, CancelRotationResponse, ConfirmOldRetiredRequest, ConfirmOldRetiredResponse,
    Credential, CredentialStage, GetRotationRequest, GetRotationResponse, ListCredentialsRequest,
    ListCredentialsResponse, ListRotationsRequest, ListRotationsResponse, RewrapRequest, RewrapResponse,
    RotationEvent, RotationEventType, RotationState, SetRotationScheduleRequest, SetRotationScheduleResponse,
    StartRotationRequest, StartRotationResponse, SubmitCredentialRequest, SubmitCredentialResponse,
    WatchRotationRequest,
};
use tonic::{Request, Response, Status};

use crate::client::Ctx;
use crate::creds::render::tests::rotation;
use crate::output::Format;
use crate::settings::Settings;

/// What the fake saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// The plaintext of every SubmitCredential, in order.
    pub plaintexts: Vec<String>,
    /// The (rotation id, etag) of every CancelRotation.
    pub cancels: Vec<(String, i64)>,
}

/// The fake service.
#[derive(Debug, Clone, Default)]
pub struct Fake {
    /// What it saw.
    pub seen: Arc<Mutex<Seen>>,
}

type Events = Pin<Box<dyn Stream<Item = Result<RotationEvent, Status>> + Send>>;

#[tonic::async_trait]
impl CredentialsService for Fake {
    async fn submit_credential(
        &self,
        request: Request<SubmitCredentialRequest>,
    ) -> Result<Response<SubmitCredentialResponse>, Status> {
        let req = request.into_inner();
        let secret = tilewave_secrets::Secret::from_text(&req.plaintext)
            .map_err(|e| Status::invalid_argument(format!("plaintext: {e}")))?;
        if let Ok(mut seen) = self.seen.lock() {
            seen.plaintexts.push(req.plaintext.clone());
        }
        Ok(Response::new(SubmitCredentialResponse {
            credential: Some(Credential {
                id: format!("{}/partner-basic-auth/4", req.tile_id),
                tile_id: req.tile_id.clone(),
                kind: req.kind,
                version: 4,
                fingerprint: tilewave_secrets::fingerprint(&req.tile_id, &secret),
                username: req.username,
                stage: CredentialStage::Pending as i32,
                ..Credential::default()
            }),
        }))
    }

    async fn list_credentials(
        &self,
        _: Request<ListCredentialsRequest>,
    ) -> Result<Response<ListCredentialsResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn start_rotation(
        &self,
        _: Request<StartRotationRequest>,
    ) -> Result<Response<StartRotationResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn get_rotation(
        &self,
        request: Request<GetRotationRequest>,
    ) -> Result<Response<GetRotationResponse>, Status> {
        let req = request.into_inner();
        let known = rotation(RotationState::Distributing);
        if req.id == known.id || (req.id.is_empty() && req.tile_id == known.tile_id) {
            return Ok(Response::new(GetRotationResponse {
                rotation: Some(known),
            }));
        }
        if req.id.is_empty() {
            return Err(Status::not_found(format!("tile {} has no rotation", req.tile_id)));
        }
        Err(Status::not_found(format!("rotation {} not found", req.id)))
    }

    async fn list_rotations(
        &self,
        _: Request<ListRotationsRequest>,
    ) -> Result<Response<ListRotationsResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    type WatchRotationStream = Events;

    async fn watch_rotation(
        &self,
        request: Request<WatchRotationRequest>,
    ) -> Result<Response<Self::WatchRotationStream>, Status> {
        if request.get_ref().id != "riverflow-cred-3" {
            return Err(Status::not_found("rotation not found"));
        }
        let events = [
            (RotationEventType::Snapshot, RotationState::Distributing),
            (RotationEventType::Update, RotationState::Promoting),
            (RotationEventType::Update, RotationState::Promoted),
            (RotationEventType::Update, RotationState::Completed),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, (t, s))| {
            Ok(RotationEvent {
                r#type: t as i32,
                rotation: Some(rotation(s)),
                revision: i as i64 + 1,
            })
        })
        .collect::<Vec<_>>();
        Ok(Response::new(Box::pin(futures::stream::iter(events))))
    }

    async fn confirm_old_retired(
        &self,
        _: Request<ConfirmOldRetiredRequest>,
    ) -> Result<Response<ConfirmOldRetiredResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn cancel_rotation(
        &self,
        request: Request<CancelRotationRequest>,
    ) -> Result<Response<CancelRotationResponse>, Status> {
        let req = request.into_inner();
        if let Ok(mut seen) = self.seen.lock() {
            seen.cancels.push((req.rotation_id.clone(), req.etag));
        }
        Ok(Response::new(CancelRotationResponse {
            rotation: Some(rotation(RotationState::Cancelled)),
        }))
    }

    async fn set_rotation_schedule(
        &self,
        _: Request<SetRotationScheduleRequest>,
    ) -> Result<Response<SetRotationScheduleResponse>, Status> {
        Err(Status::aborted("the schedule's etag is 9, not 0"))
    }

    async fn rewrap(&self, _: Request<RewrapRequest>) -> Result<Response<RewrapResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }
}

/// Serves a fake on a free loopback port and returns a context whose
/// credentials URL points at it.
pub async fn serve() -> (Fake, Ctx) {
    let fake = Fake::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let svc = CredentialsServiceServer::new(fake.clone());
    tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(incoming)
            .await;
    });
    let ctx = Ctx::new(
        Settings {
            urls: [(crate::endpoints::CREDENTIALS.name, format!("http://{addr}"))].into(),
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
