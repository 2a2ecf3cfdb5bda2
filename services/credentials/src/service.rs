//! The CredentialsService RPCs: convert, ask `tilewave_core::rotation`,
//! write one audited transaction. Secrets are opened only to be sealed or
//! handed to an agent; no answer or error carries one.

use std::pin::Pin;

use futures::Stream;
use jiff::SignedDuration;
use tilewave_auth::Scope;
use tilewave_core::quote::quoted;
use tilewave_core::rotation::{self, Command, Policy, Spec};
use tilewave_proto::credentials::v1::credentials_service_server::CredentialsService;
use tilewave_proto::credentials::v1::*;
use tilewave_service::limits;
use tilewave_store::audit;
use tilewave_store::clock::to_proto_timestamp;
use tilewave_store::{Actor, Change, Versioned};
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::convert::{self, check_kind, kind_name};
use crate::error::{Error, Result};
use crate::model::{Ctx, terminal};

/// Regions in flight at once unless asked: a normal and an emergency
/// rotation.
pub const DEFAULT_CONCURRENCY: usize = 8;
/// An emergency rotation's concurrency: every region of a wave at once.
pub const EMERGENCY_CONCURRENCY: usize = 70;

/// The CredentialsService implementation.
#[derive(Debug, Clone)]
pub struct Credentials {
    ctx: Ctx,
}

impl Credentials {
    /// Serves from `ctx`.
    pub fn new(ctx: Ctx) -> Self {
        Self { ctx }
    }

    /// The tile `id` if the caller may see it (a partner only its own; the
    /// same NOT_FOUND as a missing tile otherwise) and it is a partner tile.
    fn tile_for(&self, scope: &Scope, id: &str, field: &str) -> Result<tilewave_proto::registry::v1::Tile> {
        if id.is_empty() {
            return Err(Error::invalid(field, "required"));
        }
        limits::id(field, id)?;
        let tile = self.ctx.tile(id)?;
        if !scope.sees(Some(&tile.partner_id)) {
            return Err(Error::NotFound(format!(
                "no tile {}: `tilewave tile list` shows the tiles",
                quoted(id)
            )));
        }
        if tile.self_test {
            return Err(Error::FailedPrecondition(format!(
                "{id} is a self-test tile: the platform never calls a partner with its credentials"
            )));
        }
        Ok(tile)
    }

    /// The rotation a request names (by id, or the tile's latest).
    async fn named_rotation(
        &self,
        scope: &Scope,
        id: &str,
        tile: &str,
        kind: i32,
    ) -> Result<Versioned<Rotation>> {
        if !id.is_empty() {
            limits::id("rotation_id", id)?;
            let r = self.ctx.rotation(id).await?;
            let visible = self
                .ctx
                .tile(&r.value.tile_id)
                .map(|t| scope.sees(Some(&t.partner_id)))
                .unwrap_or(scope.is_all());
            if !visible {
                return Err(Error::NotFound(format!("no rotation {}", quoted(id))));
            }
            return Ok(r);
        }
        let kind = check_kind(kind, "kind")?;
        let tile = self.tile_for(scope, tile, "tile_id")?;
        let latest = self.ctx.latest_rotation(&tile.id, kind).ok_or_else(|| {
            Error::NotFound(format!(
                "{} has no rotation: `tilewave creds rotate {}` starts one",
                tile.id, tile.id
            ))
        })?;
        self.ctx.rotation(&latest.value.id).await
    }

    /// Carries out a person's command on a rotation in one audited
    /// transaction (the driver does the agents' part).
    async fn command(
        &self,
        actor: &Actor,
        r: Versioned<Rotation>,
        etag: i64,
        command: Command,
    ) -> Result<Rotation> {
        if etag != 0 && etag != r.etag {
            return Err(Error::Conflict(format!(
                "rotation {} changed since it was read (etag {etag}, now {}): read it again and retry",
                r.value.id, r.etag
            )));
        }
        let core = convert::rotation(&r.value)?;
        let now = self.ctx.clock.now();
        let t = rotation::handle(&core, &command, now)?;
        let next = convert::rotation_to_wire(&t.rotation, &r.value);
        let action = match command {
            Command::Cancel { .. } => "CancelRotation",
            Command::ConfirmOldRetired => "ConfirmOldRetired",
        };
        let change = crate::driver::with_effects(
            &self.ctx,
            Change::new().update(r.key.clone(), &next, r.etag),
            &next,
            &t.effects,
            now,
        )
        .await?
        .audit(audit::record(action, "rotation", &next.id, t.summary));
        match self.ctx.store.commit(change, actor).await {
            Ok(_) => {}
            Err(tilewave_store::Error::Conflict { .. }) => {
                return Err(Error::Conflict(format!(
                    "rotation {} moved meanwhile: read it again and retry",
                    next.id
                )));
            }
            Err(e) => return Err(e.into()),
        }
        self.ctx.rotation(&next.id).await.map(with_etag)
    }
}

/// A stored rotation with its etag filled in.
pub fn with_etag(r: Versioned<Rotation>) -> Rotation {
    Rotation {
        etag: r.etag,
        ..r.value
    }
}

/// The waves of a rotation over `regions` (empty: every region of the
/// tile's clouds in the catalog): the planner's default shape, one canary
/// per cloud first, then growing waves.
pub fn waves(
    ctx: &Ctx,
    tile: &tilewave_proto::registry::v1::Tile,
    regions: &[String],
    now: jiff::Timestamp,
) -> Result<Vec<Vec<String>>> {
    use tilewave_core::planner::{self, PlanInput, RegionSelection};
    use tilewave_proto::common::v1::Cloud as ProtoCloud;
    for (i, r) in regions.iter().enumerate() {
        if ctx.catalog.get(r).is_err() {
            return Err(Error::invalid(
                format!("regions[{i}]"),
                format!("unknown region {}: not in the catalog", quoted(r)),
            ));
        }
    }
    let clouds: Vec<tilewave_core::regions::Cloud> = tile
        .config
        .as_ref()
        .map(|c| {
            c.supported_clouds
                .iter()
                .filter_map(|c| match ProtoCloud::try_from(*c).ok()? {
                    ProtoCloud::Aws => Some(tilewave_core::regions::Cloud::Aws),
                    ProtoCloud::Azure => Some(tilewave_core::regions::Cloud::Azure),
                    ProtoCloud::Gcp => Some(tilewave_core::regions::Cloud::Gcp),
                    ProtoCloud::Unspecified => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let far = now
        .checked_add(SignedDuration::from_hours(24 * 60))
        .unwrap_or(now);
    let mut input = PlanInput::launch((*ctx.catalog).clone(), &clouds, far, now);
    input.earliest_start = Some(now);
    if !regions.is_empty() {
        input.regions = RegionSelection::Only(regions.to_vec());
    }
    let plan = match planner::plan(&input) {
        Ok(p) => p,
        Err(planner::PlanError::Infeasible(i)) => i.plan,
        Err(e) => return Err(Error::invalid("regions", e.to_string())),
    };
    Ok(plan.waves.iter().map(|w| w.regions.clone()).collect())
}

/// Starts a rotation of `tile`'s credential as `r` asks (StartRotation, and
/// the schedule when a rotation falls due): a PENDING version to rotate
/// to, no rotation holding the tile, waves from the planner; one audited
/// transaction with the tile's active marker. Nothing else: the driver
/// carries it out.
pub async fn start_rotation(
    ctx: &Ctx,
    actor: &Actor,
    origin: tilewave_proto::common::v1::SpanOrigin,
    tile: &tilewave_proto::registry::v1::Tile,
    r: &StartRotationRequest,
) -> Result<Rotation> {
    let kind = check_kind(r.kind, "kind")?;
    limits::each_id("regions", &r.regions).map_err(Error::from)?;
    limits::id("request_id", &r.request_id).map_err(Error::from)?;
    let kind_s = kind_name(kind);
    let stored = ctx.versions(&tile.id, kind).await?.ok_or_else(|| {
        Error::FailedPrecondition(format!(
            "{} has no {kind_s} credential: submit one first (`tilewave creds submit {} < credential.txt`)",
            tile.id, tile.id
        ))
    })?;
    let core_versions = convert::versions(&stored.value);
    let to = core_versions.pending().ok_or_else(|| {
            Error::FailedPrecondition(format!(
                "{} has no PENDING credential to rotate to: submit the new one first (`tilewave creds submit {} < credential.txt`)",
                tile.id, tile.id
            ))
        })?;
    let from = core_versions.current();
    let latest = ctx
        .latest_rotation(&tile.id, kind)
        .map(|l| convert::rotation(&l.value))
        .transpose()?;
    rotation::start_refusal(latest.as_ref()).map_err(Error::from)?;
    let now = ctx.clock.now();
    if let Some(l) = ctx.latest_rotation(&tile.id, kind)
        && !crate::driver::finished(&l.value, now)
    {
        return Err(Error::FailedPrecondition(format!(
            "rotation {} is {} and still removing the pending credential from the regions it reached: \
                 wait for it (`tilewave creds status {}`)",
            l.value.id,
            RotationState::try_from(l.value.state).map_or("?", |s| s.as_str_name()),
            tile.id
        )));
    }
    let waves = waves(ctx, tile, &r.regions, now)?;
    if waves.iter().all(Vec::is_empty) {
        return Err(Error::invalid(
            "regions",
            "no region to rotate in: the tile's clouds have none in the catalog",
        ));
    }
    if r.concurrency < 0 {
        return Err(Error::invalid("concurrency", "must not be negative"));
    }
    let concurrency = match usize::try_from(r.concurrency).unwrap_or(0) {
        0 if r.emergency => EMERGENCY_CONCURRENCY,
        0 => DEFAULT_CONCURRENCY,
        n => n,
    };
    let bake = match &r.bake {
        Some(d) => {
            let d = SignedDuration::new(d.seconds, d.nanos);
            if d < SignedDuration::ZERO {
                return Err(Error::invalid("bake", "must not be negative"));
            }
            d
        }
        None => rotation::DEFAULT_BAKE,
    };
    let retry_delay = match &r.retry_delay {
        Some(d) => {
            let d = SignedDuration::new(d.seconds, d.nanos);
            if d < SignedDuration::ZERO {
                return Err(Error::invalid("retry_delay", "must not be negative"));
            }
            d
        }
        None => ctx.retry_delay,
    };
    let policy = Policy {
        max_attempts: rotation::DEFAULT_MAX_ATTEMPTS,
        bake,
        retirement: convert::retirement(r.retirement, r.grace.as_ref())?,
        retry_delay,
    };
    let base_id = format!("{}-{kind_s}-v{}", tile.id, to.id);
    let taken = ctx
        .rotations
        .list()
        .into_iter()
        .filter(|x| x.value.id == base_id || x.value.id.starts_with(&format!("{base_id}-")))
        .count();
    let id = if taken == 0 {
        base_id
    } else {
        format!("{base_id}-{}", taken + 1)
    };
    let core = rotation::Rotation::new(
        Spec {
            id: id.clone(),
            tile: tile.id.clone(),
            from: from.map(|v| v.id),
            to: to.id,
            waves,
            concurrency,
            policy,
            emergency: r.emergency,
        },
        now,
    );
    let trace_id = tilewave_store::trace::trace_id(&origin)
        .unwrap_or_default()
        .to_owned();
    let wire = convert::rotation_to_wire(
        &core,
        &Rotation {
            kind: kind as i32,
            old_fingerprint: from.map(|v| v.fingerprint.clone()).unwrap_or_default(),
            new_fingerprint: to.fingerprint.clone(),
            started_by: actor.as_str().to_owned(),
            origin: Some(origin),
            trace_id,
            ..Default::default()
        },
    );
    let keys = ctx.keys();
    let active = keys.credential_rotation_active(&tile.id, &kind_s);
    let change = Change::new()
            .create(keys.credential_rotation(&id), &wire)
            .create(
                active.clone(),
                &Rotation {
                    id: id.clone(),
                    ..Default::default()
                },
            )
            .audit(audit::record(
                "StartRotation",
                "rotation",
                &id,
                format!(
                    "{}rotation of {}'s {kind_s} credential to version {} (fingerprint {}) over {} regions in {} waves",
                    if r.emergency { "emergency " } else { "" },
                    tile.id,
                    to.id,
                    to.fingerprint,
                    wire.regions_total,
                    wire.wave_count
                ),
            ));
    match ctx.store.commit(change, actor).await {
        Ok(_) => {}
        Err(tilewave_store::Error::AlreadyExists { key }) if key == active => {
            return Err(Error::FailedPrecondition(format!(
                "another rotation of {}'s {kind_s} credential started meanwhile: `tilewave creds status {}`",
                tile.id, tile.id
            )));
        }
        Err(e) => return Err(Error::from(e)),
    }
    Ok(with_etag(ctx.rotation(&id).await?))
}

type Stream_<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// How many times a write that lost a race is tried again.
const ATTEMPTS: usize = 3;

#[tonic::async_trait]
impl CredentialsService for Credentials {
    #[instrument(skip_all, fields(tile = %req.get_ref().tile_id))]
    async fn submit_credential(
        &self,
        req: Request<SubmitCredentialRequest>,
    ) -> Result<Response<SubmitCredentialResponse>, Status> {
        let actor = Actor::from_request(&req);
        let scope = Scope::of_request(&req);
        let r = req.into_inner();
        let kind = check_kind(r.kind, "kind")?;
        let tile = self.tile_for(&scope, &r.tile_id, "tile_id")?;
        limits::text("username", &r.username).map_err(Error::from)?;
        limits::id("request_id", &r.request_id).map_err(Error::from)?;
        let secret = match (r.generate, r.plaintext.is_empty()) {
            (true, false) => {
                return Err(Error::invalid("plaintext", "give a secret or generate one, not both").into());
            }
            (true, true) => {
                tilewave_secrets::generate(tilewave_secrets::DEFAULT_GENERATED_LEN).map_err(Error::from)?
            }
            (false, true) => {
                return Err(Error::invalid(
                    "plaintext",
                    "required: pipe the secret into `tilewave creds submit TILE` (or --generate)",
                )
                .into());
            }
            (false, false) => tilewave_secrets::Secret::from_text(&r.plaintext)
                .map_err(|e| Error::invalid("plaintext", e.to_string()))?,
        };
        let (username, password) = if r.username.is_empty() && !r.generate {
            let basic = tilewave_secrets::BasicCredential::parse(&secret).map_err(|e| {
                Error::invalid(
                    "plaintext",
                    format!("{e}; or give the user name apart (`--user NAME`)"),
                )
            })?;
            (basic.user, basic.password)
        } else {
            (r.username.clone(), secret)
        };
        if username.is_empty() {
            return Err(
                Error::invalid("username", "required with --generate: the Basic-auth user name").into(),
            );
        }
        let fingerprint = tilewave_secrets::fingerprint(&tile.id, &password);
        let kind_s = kind_name(kind);
        for attempt in 1..=ATTEMPTS {
            let now = self.ctx.clock.now();
            let stored = self.ctx.versions(&tile.id, kind).await?;
            let mut doc = stored
                .as_ref()
                .map(|v| v.value.clone())
                .unwrap_or(CredentialVersions {
                    tile_id: tile.id.clone(),
                    kind: kind as i32,
                    ..Default::default()
                });
            let core = convert::versions(&doc);
            let latest = self
                .ctx
                .latest_rotation(&tile.id, kind)
                .map(|r| convert::rotation(&r.value))
                .transpose()?;
            let (next, version) = core
                .submit(&fingerprint, now, latest.as_ref())
                .map_err(Error::from)?;
            let sealed = self
                .ctx
                .keyring
                .seal(&password, &convert::aad(&tile.id, &kind_s, version))
                .map_err(Error::from)?;
            let cred = Credential {
                id: format!("{}/{kind_s}/{version}", tile.id),
                tile_id: tile.id.clone(),
                kind: kind as i32,
                version: i64::try_from(version).unwrap_or(i64::MAX),
                fingerprint: fingerprint.clone(),
                username: username.clone(),
                stage: CredentialStage::Pending as i32,
                generated: r.generate,
                kek_id: sealed.kek_id.clone(),
                submitted_at: Some(to_proto_timestamp(now)),
                submitted_by: actor.as_str().to_owned(),
                ..Default::default()
            };
            convert::merge_versions(&mut doc, &next, now, Some(cred.clone()));
            let keys = self.ctx.keys();
            let vkey = keys.credential_versions(&tile.id, &kind_s);
            let change = match &stored {
                Some(s) => Change::new().update(vkey, &doc, s.etag),
                None => Change::new().create(vkey, &doc),
            }
            .create(
                keys.credential_secret(&tile.id, &kind_s, version),
                &StoredSecret {
                    encrypted: Some(convert::sealed_to_wire(&sealed)),
                },
            )
            .audit(audit::record(
                "SubmitCredential",
                "credential",
                &cred.id,
                format!(
                    "version {version} of {}'s {kind_s} credential submitted{} (fingerprint {fingerprint})",
                    tile.id,
                    if r.generate { ", generated" } else { "" }
                ),
            ));
            match self.ctx.store.commit(change, &actor).await {
                Ok(_) => {
                    return Ok(Response::new(SubmitCredentialResponse {
                        credential: Some(cred),
                    }));
                }
                Err(tilewave_store::Error::Conflict { .. } | tilewave_store::Error::AlreadyExists { .. })
                    if attempt < ATTEMPTS => {}
                Err(e) => return Err(Error::from(e).into()),
            }
        }
        Err(Error::Conflict(format!("{}'s credentials kept changing: try again", tile.id)).into())
    }

    #[instrument(skip_all)]
    async fn list_credentials(
        &self,
        req: Request<ListCredentialsRequest>,
    ) -> Result<Response<ListCredentialsResponse>, Status> {
        let scope = Scope::of_request(&req);
        let r = req.into_inner();
        limits::id("tile_id", &r.tile_id).map_err(Error::from)?;
        limits::count("stages", r.stages.len(), limits::MAX_LIST_ITEMS).map_err(Error::from)?;
        let mut all: Vec<Credential> = self
            .ctx
            .versions
            .list()
            .into_iter()
            .filter(|v| r.tile_id.is_empty() || v.value.tile_id == r.tile_id)
            .filter(|v| r.kind == 0 || v.value.kind == r.kind)
            .filter(|v| {
                self.ctx
                    .tile(&v.value.tile_id)
                    .map(|t| scope.sees(Some(&t.partner_id)))
                    .unwrap_or(scope.is_all())
            })
            .flat_map(|v| v.value.versions)
            .filter(|c| r.stages.is_empty() || r.stages.contains(&c.stage))
            .collect();
        all.sort_by(|a, b| (&a.tile_id, a.kind, a.version).cmp(&(&b.tile_id, b.kind, b.version)));
        let (credentials, next_page_token) = tilewave_service::paging::Page::parse(r.page.as_ref())
            .and_then(|p| p.by_offset(all))
            .map_err(|e| Error::invalid(e.field, e.message))?;
        Ok(Response::new(ListCredentialsResponse {
            credentials,
            next_page_token,
        }))
    }

    #[instrument(skip_all, fields(tile = %req.get_ref().tile_id))]
    async fn start_rotation(
        &self,
        req: Request<StartRotationRequest>,
    ) -> Result<Response<StartRotationResponse>, Status> {
        let actor = Actor::from_request(&req);
        let scope = Scope::of_request(&req);
        let origin = tilewave_telemetry::current_origin();
        let r = req.into_inner();
        let tile = self.tile_for(&scope, &r.tile_id, "tile_id")?;
        let rotation = start_rotation(&self.ctx, &actor, origin, &tile, &r).await?;
        Ok(Response::new(StartRotationResponse {
            rotation: Some(rotation),
        }))
    }

    #[instrument(skip_all)]
    async fn get_rotation(
        &self,
        req: Request<GetRotationRequest>,
    ) -> Result<Response<GetRotationResponse>, Status> {
        let scope = Scope::of_request(&req);
        let r = req.into_inner();
        let rot = self.named_rotation(&scope, &r.id, &r.tile_id, r.kind).await?;
        Ok(Response::new(GetRotationResponse {
            rotation: Some(with_etag(rot)),
        }))
    }

    #[instrument(skip_all)]
    async fn list_rotations(
        &self,
        req: Request<ListRotationsRequest>,
    ) -> Result<Response<ListRotationsResponse>, Status> {
        let scope = Scope::of_request(&req);
        let r = req.into_inner();
        limits::id("tile_id", &r.tile_id).map_err(Error::from)?;
        limits::count("states", r.states.len(), limits::MAX_LIST_ITEMS).map_err(Error::from)?;
        let mut all = self.ctx.rotations.list();
        all.sort_by_key(|x| std::cmp::Reverse(x.create_revision));
        let items: Vec<Rotation> = all
            .into_iter()
            .filter(|x| r.tile_id.is_empty() || x.value.tile_id == r.tile_id)
            .filter(|x| r.states.is_empty() || r.states.contains(&x.value.state))
            .filter(|x| {
                self.ctx
                    .tile(&x.value.tile_id)
                    .map(|t| scope.sees(Some(&t.partner_id)))
                    .unwrap_or(scope.is_all())
            })
            .map(with_etag)
            .collect();
        let (rotations, next_page_token) = tilewave_service::paging::Page::parse(r.page.as_ref())
            .and_then(|p| p.by_offset(items))
            .map_err(|e| Error::invalid(e.field, e.message))?;
        Ok(Response::new(ListRotationsResponse {
            rotations,
            next_page_token,
        }))
    }

    type WatchRotationStream = Stream_<RotationEvent>;

    #[instrument(skip_all)]
    async fn watch_rotation(
        &self,
        req: Request<WatchRotationRequest>,
    ) -> Result<Response<Self::WatchRotationStream>, Status> {
        let scope = Scope::of_request(&req);
        let r = req.into_inner();
        let first = self.named_rotation(&scope, &r.id, &r.tile_id, r.kind).await?;
        let id = first.value.id.clone();
        let ctx = self.ctx.clone();
        let stream = async_stream(ctx, id, first);
        Ok(Response::new(Box::pin(stream)))
    }

    #[instrument(skip_all)]
    async fn confirm_old_retired(
        &self,
        req: Request<ConfirmOldRetiredRequest>,
    ) -> Result<Response<ConfirmOldRetiredResponse>, Status> {
        let actor = Actor::from_request(&req);
        let scope = Scope::of_request(&req);
        let r = req.into_inner();
        limits::text("note", &r.note).map_err(Error::from)?;
        let rot = self
            .named_rotation(&scope, &r.rotation_id, &r.tile_id, r.kind)
            .await?;
        let rotation = self
            .command(&actor, rot, r.etag, Command::ConfirmOldRetired)
            .await?;
        Ok(Response::new(ConfirmOldRetiredResponse {
            rotation: Some(rotation),
        }))
    }

    #[instrument(skip_all)]
    async fn cancel_rotation(
        &self,
        req: Request<CancelRotationRequest>,
    ) -> Result<Response<CancelRotationResponse>, Status> {
        let actor = Actor::from_request(&req);
        let scope = Scope::of_request(&req);
        let r = req.into_inner();
        limits::text("reason", &r.reason).map_err(Error::from)?;
        if r.reason.trim().is_empty() {
            return Err(Error::invalid("reason", "required: say why the rotation is cancelled").into());
        }
        let rot = self
            .named_rotation(&scope, &r.rotation_id, &r.tile_id, r.kind)
            .await?;
        let rotation = self
            .command(
                &actor,
                rot,
                r.etag,
                Command::Cancel {
                    reason: r.reason.clone(),
                },
            )
            .await?;
        Ok(Response::new(CancelRotationResponse {
            rotation: Some(rotation),
        }))
    }

    #[instrument(skip_all)]
    async fn set_rotation_schedule(
        &self,
        req: Request<SetRotationScheduleRequest>,
    ) -> Result<Response<SetRotationScheduleResponse>, Status> {
        let actor = Actor::from_request(&req);
        let scope = Scope::of_request(&req);
        let r = req.into_inner();
        let s = r.schedule.ok_or_else(|| Error::invalid("schedule", "required"))?;
        let kind = check_kind(s.kind, "schedule.kind")?;
        let tile = self.tile_for(&scope, &s.tile_id, "schedule.tile_id")?;
        let kind_s = kind_name(kind);
        let key = self.ctx.keys().credential_schedule(&tile.id, &kind_s);
        let current = self.ctx.store.get::<RotationSchedule>(&key).await?;
        let have = current.as_ref().map_or(0, |c| c.etag);
        if r.etag != have {
            return Err(Error::Conflict(format!(
                "etag: the schedule changed since it was read (etag {}, now {have})",
                r.etag
            ))
            .into());
        }
        let mut stored = RotationSchedule {
            tile_id: tile.id.clone(),
            kind: kind as i32,
            every_days: s.every_days,
            window_start: s.window_start,
            window_end: s.window_end,
            time_zone: s.time_zone.clone(),
            ..Default::default()
        };
        let every = u32::try_from(s.every_days).unwrap_or(0);
        if core_schedule(&stored)?.is_some() {
            let now = self.ctx.clock.now();
            let last = self
                .ctx
                .versions(&tile.id, kind)
                .await?
                .and_then(|v| {
                    v.value
                        .versions
                        .iter()
                        .filter_map(|c| c.current_since.as_ref())
                        .filter_map(|t| tilewave_store::clock::from_proto_timestamp(t).ok())
                        .max()
                })
                .unwrap_or(now);
            stored.next_due = next_due(&self.ctx, &stored, last).await?.map(to_proto_timestamp);
        }
        let summary = if every == 0 {
            format!(
                "rotation schedule of {}'s {kind_s} credential turned off",
                tile.id
            )
        } else {
            format!(
                "{}'s {kind_s} credential rotates every {every} days, {}-{} {}",
                tile.id,
                fmt_time(stored.window_start.as_ref()),
                fmt_time(stored.window_end.as_ref()),
                s.time_zone
            )
        };
        let change = match &current {
            Some(c) => Change::new().update(key.clone(), &stored, c.etag),
            None => Change::new().create(key.clone(), &stored),
        }
        .audit(audit::record(
            "SetRotationSchedule",
            "credential",
            &tile.id,
            summary,
        ));
        let info = match self.ctx.store.commit(change, &actor).await {
            Ok(i) => i,
            Err(tilewave_store::Error::Conflict { .. } | tilewave_store::Error::AlreadyExists { .. }) => {
                return Err(
                    Error::Conflict("etag: the schedule changed meanwhile: read it again".into()).into(),
                );
            }
            Err(e) => return Err(Error::from(e).into()),
        };
        stored.etag = info.revision;
        Ok(Response::new(SetRotationScheduleResponse {
            schedule: Some(stored),
        }))
    }

    #[instrument(skip_all)]
    async fn rewrap(&self, req: Request<RewrapRequest>) -> Result<Response<RewrapResponse>, Status> {
        let actor = Actor::from_request(&req);
        let r = req.into_inner();
        let keys = self.ctx.keys();
        let mut rewrapped = 0;
        let mut already = 0;
        for v in self.ctx.versions.list() {
            let kind = CredentialKind::try_from(v.value.kind).unwrap_or(CredentialKind::PartnerBasicAuth);
            let kind_s = kind_name(kind);
            // One transaction per tile and kind: the moved secrets and the
            // versions' `kek_id`, guarded by their etags.
            let mut doc = v.value.clone();
            let mut change = Change::new();
            let mut moved_here = Vec::new();
            for c in &mut doc.versions {
                let version = u64::try_from(c.version).unwrap_or(0);
                let key = keys.credential_secret(&v.value.tile_id, &kind_s, version);
                let Some(stored) = self.ctx.store.get::<StoredSecret>(&key).await? else {
                    continue;
                };
                let sealed = convert::sealed(&stored.value.encrypted.clone().unwrap_or_default());
                if !sealed.needs_rewrap(&self.ctx.keyring) {
                    already += 1;
                    continue;
                }
                rewrapped += 1;
                if r.dry_run {
                    continue;
                }
                let moved = self
                    .ctx
                    .keyring
                    .rewrap(&sealed, &convert::aad(&v.value.tile_id, &kind_s, version))
                    .map_err(Error::from)?;
                change = change.update(
                    key,
                    &StoredSecret {
                        encrypted: Some(convert::sealed_to_wire(&moved)),
                    },
                    stored.etag,
                );
                moved_here.push(format!("{} ({} -> {})", c.version, sealed.kek_id, moved.kek_id));
                c.kek_id = moved.kek_id;
            }
            if moved_here.is_empty() {
                continue;
            }
            let change = change.update(v.key.clone(), &doc, v.etag).audit(audit::record(
                "Rewrap",
                "credential",
                &format!("{}/{kind_s}", v.value.tile_id),
                format!("data keys re-wrapped: version {}", moved_here.join(", ")),
            ));
            match self.ctx.store.commit(change, &actor).await {
                Ok(_) => {}
                Err(tilewave_store::Error::Conflict { .. }) => {
                    return Err(Error::Conflict(format!(
                        "{}'s credentials changed during the rewrap: run it again (what moved stays moved)",
                        v.value.tile_id
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
}

/// The launch calendar's blackouts (stored by the rollout service at
/// `calendar`): a scheduled rotation never falls inside one.
pub async fn calendar_blackouts(ctx: &Ctx) -> Result<Vec<(jiff::Timestamp, jiff::Timestamp)>> {
    let key = ctx.keys().calendar();
    let cal = ctx
        .store
        .get::<tilewave_proto::rollout::v1::LaunchCalendar>(&key)
        .await?;
    Ok(cal
        .map(|c| {
            c.value
                .blackouts
                .iter()
                .filter_map(|b| {
                    let s = tilewave_store::clock::from_proto_timestamp(b.start.as_ref()?).ok()?;
                    let e = tilewave_store::clock::from_proto_timestamp(b.end.as_ref()?).ok()?;
                    Some((s, e))
                })
                .collect()
        })
        .unwrap_or_default())
}

/// A stored schedule in the core's terms, validated (the error names the
/// field under `schedule.`); `None` when it is off (`every_days` 0).
pub fn core_schedule(s: &RotationSchedule) -> Result<Option<rotation::schedule::RotationSchedule>> {
    let time =
        |t: Option<&tilewave_proto::common::v1::LocalTime>, field: &str| -> Result<jiff::civil::Time> {
            let t = t.ok_or_else(|| Error::invalid(field, "required"))?;
            jiff::civil::Time::new(
                i8::try_from(t.hour).unwrap_or(-1),
                i8::try_from(t.minute).unwrap_or(-1),
                0,
                0,
            )
            .map_err(|e| Error::invalid(field, e.to_string()))
        };
    let every = u32::try_from(s.every_days)
        .map_err(|_| Error::invalid("schedule.every_days", "must not be negative"))?;
    if every == 0 {
        return Ok(None);
    }
    let schedule = rotation::schedule::RotationSchedule {
        every_days: every,
        window_start: time(s.window_start.as_ref(), "schedule.window_start")?,
        window_end: time(s.window_end.as_ref(), "schedule.window_end")?,
        tz: s.time_zone.clone(),
    };
    schedule
        .validate()
        .map_err(|e| Error::invalid("schedule", e.to_string()))?;
    Ok(Some(schedule))
}

/// The next rotation of a schedule after one at `last`, outside the
/// launch calendar's blackouts.
pub async fn next_due(
    ctx: &Ctx,
    s: &RotationSchedule,
    last: jiff::Timestamp,
) -> Result<Option<jiff::Timestamp>> {
    let Some(schedule) = core_schedule(s)? else {
        return Ok(None);
    };
    let blackouts = calendar_blackouts(ctx).await?;
    rotation::schedule::next_rotation(&schedule, last, &blackouts, ctx.clock.now())
        .map_err(|e| Error::invalid("schedule", e.to_string()))
}

fn fmt_time(t: Option<&tilewave_proto::common::v1::LocalTime>) -> String {
    t.map_or_else(String::new, |t| format!("{:02}:{:02}", t.hour, t.minute))
}

/// WatchRotation's stream: the rotation now, then every change the cache
/// sees, until it ends.
fn async_stream(
    ctx: Ctx,
    id: String,
    first: Versioned<Rotation>,
) -> impl Stream<Item = Result<RotationEvent, Status>> + Send {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        let mut changes = ctx.rotations.revision_watch();
        let mut last = first.etag;
        let done = terminal(first.value.state);
        let snapshot = RotationEvent {
            r#type: if done {
                RotationEventType::Finished
            } else {
                RotationEventType::Snapshot
            } as i32,
            revision: first.etag,
            rotation: Some(with_etag(first)),
        };
        if tx.send(Ok(snapshot)).await.is_err() || done {
            return;
        }
        loop {
            if changes.changed().await.is_err() {
                return;
            }
            let key = ctx.keys().credential_rotation(&id);
            let Some(now) = ctx.rotations.get(&key) else {
                continue;
            };
            if now.etag == last {
                continue;
            }
            last = now.etag;
            let done = terminal(now.value.state);
            let ev = RotationEvent {
                r#type: if done {
                    RotationEventType::Finished
                } else {
                    RotationEventType::Update
                } as i32,
                revision: now.etag,
                rotation: Some(with_etag(now)),
            };
            if tx.send(Ok(ev)).await.is_err() || done {
                return;
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// The RPCs whose handlers scope what they answer to the caller's partner.
pub const PARTNER_SCOPED: &[&str] = &[
    "SubmitCredential",
    "GetRotation",
    "WatchRotation",
    "ListCredentials",
    "ConfirmOldRetired",
    "ListRotations",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rpc_a_partner_may_call_is_scoped() {
        let mut table = tilewave_auth::table::partner_scoped("tilewave.credentials.v1.CredentialsService");
        let mut ours = PARTNER_SCOPED.to_vec();
        table.sort_unstable();
        ours.sort_unstable();
        assert_eq!(table, ours);
    }
}
