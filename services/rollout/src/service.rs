//! The RolloutService RPCs. Reads come from etcd (the roll-out and its
//! steps); every change is one audited transaction guarded by the etag the
//! caller named (or read), so a call that is refused changes nothing.
//!
//! Pause, resume, retry, skip, approve, abort and rollback are answered by
//! the pure rules ([`tilewave_core::rollout::handle`]) on the roll-out
//! converted at the edge ([`crate::convert`]); `Rollouts::command`
//! commits what they return.

use std::collections::BTreeMap;
use std::pin::Pin;

use futures::Stream;
use tilewave_auth::Scope;
use tilewave_core::rollout::Command;
use tilewave_proto::ShortName;
use tilewave_proto::agent::v1::ListTilesRequest as AgentListTiles;
use tilewave_proto::common::v1::HealthStatus;
use tilewave_proto::rollout::v1::rollout_service_server::RolloutService;
use tilewave_proto::rollout::v1::*;
use tilewave_service::limits;
use tilewave_store::audit;
use tilewave_store::clock::to_proto_timestamp;
use tilewave_store::{Actor, Change, FamilyChange, Versioned};
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::clients::request;
use crate::controller::stored;
use crate::convert::{self, is_terminal};
use crate::error::{Error, Result};
use crate::model::{self, Ctx, Loaded};
use crate::reconcile;
use crate::spec;

/// The RolloutService implementation.
#[derive(Debug, Clone)]
pub struct Rollouts {
    ctx: Ctx,
}

impl Rollouts {
    /// Serves from `ctx`.
    pub fn new(ctx: Ctx) -> Self {
        Self { ctx }
    }

    /// Resolves a spec against its tile and the live regions.
    async fn resolve(
        &self,
        spec: &RolloutSpec,
    ) -> Result<(tilewave_proto::registry::v1::Tile, spec::Resolved)> {
        if spec.tile_id.is_empty() {
            return Err(Error::invalid("spec.tile_id", "required"));
        }
        tilewave_store::keys::check_segment("tile id", &spec.tile_id)
            .map_err(|e| Error::invalid("spec.tile_id", e.to_string()))?;
        // The registry's own rule, so that its refusal is not passed on
        // as a refusal of its `id`.
        tilewave_core::slug::TileId::parse(&spec.tile_id)
            .map_err(|e| Error::invalid("spec.tile_id", e.to_string()))?;
        spec::check_bounds(spec)?;
        let tile = self.ctx.registry.get_tile(&spec.tile_id, spec.revision).await?;
        let now = self.ctx.clock.now();
        let live: Vec<String> = reconcile::desired(&self.ctx, Some(&spec.tile_id))
            .await?
            .into_iter()
            .filter(|(_, d)| d.revision > 0)
            .map(|((_, region), _)| region)
            .collect();
        let mut as_planned = tile.clone();
        if let Some(ga) = &spec.ga_preview {
            spec::timestamp_of("spec.ga_preview", ga)?;
            as_planned.ga_time = Some(*ga);
        }
        let mut resolved = spec::resolve(spec, &as_planned, &self.ctx.catalog, now, &live)?;
        self.ctx.with_calendar_blackouts(&mut resolved.input);
        Ok((tile, resolved))
    }

    /// Whether the caller may see roll-outs of tile `tile_id`: by the
    /// tile's partner ([`Scope::sees`]), from the tile cache; a tile not in
    /// it only an unscoped caller may see.
    fn sees_tile(&self, scope: &Scope, tile_id: &str) -> bool {
        scope.is_all() || {
            let tile = self.ctx.tiles.get(&self.ctx.keys().tile(tile_id));
            scope.sees(tile.as_ref().map(|t| t.value.partner_id.as_str()))
        }
    }

    /// The roll-out `id`, or the latest of `tile_id`, if the caller may see
    /// it: one of another partner's tile is answered exactly as a missing
    /// one.
    async fn load_for(&self, id: &str, tile_id: &str, scope: &Scope) -> Result<Loaded> {
        let id = self.id_for(id, tile_id, scope)?;
        let loaded = model::load(&self.ctx.store, &id).await?;
        if !self.sees_tile(scope, &loaded.rollout.value.tile_id) {
            return Err(model::no_rollout(&id));
        }
        Ok(loaded)
    }

    /// The roll-out a request names: its `id`, or the latest of `tile_id`
    /// (an active one before finished ones) that the caller may see.
    fn id_for(&self, id: &str, tile_id: &str, scope: &Scope) -> Result<String> {
        if !id.is_empty() {
            return Ok(id.to_owned());
        }
        if tile_id.is_empty() {
            return Err(Error::invalid("id", "give a roll-out id or a tile_id"));
        }
        let visible = self.sees_tile(scope, tile_id);
        let mut of_tile = self.ctx.rollouts.scan(|r| {
            (visible && r.value.tile_id == tile_id)
                .then(|| (r.create_revision, r.value.state, r.value.id.clone()))
        });
        of_tile.sort_by_key(|(created, state, _)| (!is_terminal(*state), *created));
        of_tile
            .pop()
            .map(|(_, _, id)| id)
            .ok_or_else(|| Error::NotFound(format!("tile {tile_id} has no roll-out")))
    }

    /// Answers `command` on a roll-out as `loaded` holds it, at `now`: the
    /// roll-out and its steps as they become, and the audit summary.
    fn answer(
        loaded: &Loaded,
        command: &Command,
        now: jiff::Timestamp,
    ) -> Result<(Rollout, Vec<RolloutStep>, String)> {
        let mut r = loaded.rollout.value.clone();
        let mut steps: Vec<RolloutStep> = loaded.steps.iter().map(|s| s.value.clone()).collect();
        let before = convert::view(&r, &steps, Err(String::new()))?;
        let t = tilewave_core::rollout::handle(&before, command, now)?;
        convert::write_back(&before, &t.view, &mut r, &mut steps);
        convert::apply_effects(&t.effects, &mut r);
        Ok((r, steps, t.summary))
    }

    /// Carries out `command` on a roll-out read now (checking `etag` when
    /// given) in one audited transaction with the steps it changed.
    async fn command(&self, actor: &Actor, id: &str, etag: i64, command: Command) -> Result<Rollout> {
        if id.is_empty() {
            return Err(Error::invalid("id", "required"));
        }
        limits::id("id", id)?;
        check_command(&command)?;
        let loaded = model::load(&self.ctx.store, id).await?;
        if etag != 0 && etag != loaded.rollout.etag {
            return Err(Error::Conflict(format!(
                "roll-out {id} changed since it was read (etag {etag}, now {}): read it again and retry",
                loaded.rollout.etag
            )));
        }
        let now = self.ctx.clock.now();
        let action = command.action();
        let (mut r, steps, summary) = Self::answer(&loaded, &command, now)?;
        let re = model::replan_into(&self.ctx, &mut r, &steps, now);
        let keys = self.ctx.keys();
        let mut change = Change::new().update(keys.rollout(id), &stored(&r), loaded.rollout.etag);
        change = model::with_active_marker(keys, change, loaded.rollout.value.state, &r);
        change = model::with_steps(
            change,
            loaded
                .steps
                .iter()
                .zip(&steps)
                .filter(|(old, new)| &old.value != *new),
        );
        if let Some(e) = &re.crossed {
            change = model::with_event(keys, change, e);
        }
        let change = change.audit(audit::record(action, "rollout", id, summary));
        let active = keys.rollout_active(&r.tile_id);
        match self.ctx.store.commit(change, actor).await {
            Ok(_) => {}
            Err(tilewave_store::Error::AlreadyExists { key }) if key == active => {
                return Err(Error::FailedPrecondition(format!(
                    "another roll-out of tile {} is active: {action} would make two",
                    r.tile_id
                )));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(model::load(&self.ctx.store, id).await?.assemble())
    }

    /// The pre-flight check: the regions of `plan_regions` with no agent
    /// registered under `agents/<region>`, in plan order. No etcd read
    /// when the registrations cache shows every one (the usual start).
    async fn regions_without_agent<'a>(
        &self,
        plan_regions: impl IntoIterator<Item = &'a str> + Clone,
    ) -> Result<Vec<String>> {
        if self.ctx.agents.cached_in_all(plan_regions.clone()) {
            return Ok(Vec::new());
        }
        let registered: std::collections::HashSet<String> = self
            .ctx
            .agents
            .all()
            .await?
            .into_iter()
            .map(|(region, _)| region)
            .collect();
        Ok(spec::without_agent(plan_regions, &registered))
    }

    /// Starts a roll-out of `spec_in` without the pre-flight check (the
    /// removal roll-outs the lifecycle loop starts: a missing agent is left
    /// to the roll-out's failure policy); see [`Self::start_checked`].
    pub async fn start(
        &self,
        actor: &Actor,
        origin: tilewave_proto::common::v1::SpanOrigin,
        spec_in: RolloutSpec,
        accept_late: bool,
    ) -> Result<Rollout> {
        // Boxed: the start's future is large, and a caller's task should
        // not carry it (nor its frames) inline.
        Box::pin(self.start_checked(actor, origin, spec_in, accept_late, Preflight::Skip, None)).await
    }

    /// Starts a launch roll-out for the GA scheduler: with the pre-flight,
    /// never late, and fenced by the scheduler's owner token (a deposed
    /// scheduler's start is refused by etcd).
    pub async fn start_fenced(
        &self,
        actor: &Actor,
        origin: tilewave_proto::common::v1::SpanOrigin,
        spec_in: RolloutSpec,
        preflight: Preflight,
        token: &tilewave_store::FencingToken,
    ) -> Result<Rollout> {
        Box::pin(self.start_checked(actor, origin, spec_in, false, preflight, Some(token))).await
    }

    /// Starts a roll-out of `spec_in` (StartRollout, and the removal
    /// roll-outs the lifecycle loop starts): at most one active roll-out
    /// per tile (the `rollout-active/<tile>` marker is created in the same
    /// transaction), and one roll-out per id (create-if-absent). With
    /// [`Preflight::Agents`], refuses when a planned region has no agent.
    pub async fn start_checked(
        &self,
        actor: &Actor,
        origin: tilewave_proto::common::v1::SpanOrigin,
        spec_in: RolloutSpec,
        accept_late: bool,
        preflight: Preflight,
        fence: Option<&tilewave_store::FencingToken>,
    ) -> Result<Rollout> {
        if spec_in.ga_preview.is_some() {
            return Err(Error::invalid(
                "spec.ga_preview",
                "only for PlanRollout: a launch starts against the tile's own GA date (set it with `tilewave ga schedule TILE --commit`)",
            ));
        }
        let (tile, mut resolved) = self.resolve(&spec_in).await?;
        spec::check_tile(resolved.kind, &tile)?;
        if self.ctx.frozen() {
            return Err(Error::FailedPrecondition(
                "the global freeze is active: lift it (SetFreeze active=false) before starting a roll-out"
                    .into(),
            ));
        }
        if let Some(active) = self
            .ctx
            .rollouts
            .scan(|x| (x.value.tile_id == tile.id && !is_terminal(x.value.state)).then(|| x.clone()))
            .into_iter()
            .next()
        {
            return Err(Error::FailedPrecondition(format!(
                "roll-out {} of tile {} (revision {}) is already {}: exactly one roll-out of a tile runs at a time",
                active.value.id,
                tile.id,
                active.value.revision,
                RolloutState::short_name_of(active.value.state)
            )));
        }
        let now = self.ctx.clock.now();
        let plan = match tilewave_core::planner::plan(&resolved.input) {
            Ok(p) => p,
            Err(tilewave_core::planner::PlanError::Infeasible(inf)) if accept_late => inf.plan,
            Err(e @ tilewave_core::planner::PlanError::Infeasible(_)) => {
                let problem = spec::plan(&resolved)?
                    .problems
                    .into_iter()
                    .next()
                    .map(|p| p.message);
                return Err(Error::FailedPrecondition(format!(
                    "the plan cannot fit: {}",
                    problem.unwrap_or_else(|| e.to_string())
                )));
            }
            Err(e) => return Err(Error::from(e)),
        };
        if preflight == Preflight::Agents {
            let missing = self
                .regions_without_agent(plan.regions.iter().map(|p| p.region.as_str()))
                .await?;
            if !missing.is_empty() {
                return Err(spec::no_agent_refusal(&missing));
            }
        }
        // The region list becomes explicit, in plan order.
        resolved.spec.regions = plan.regions.iter().map(|p| p.region.clone()).collect();
        resolved.spec.exclude_regions.clear();
        let kind = resolved.kind;
        let previous_revision = match kind {
            RolloutKind::Maintenance => {
                if tile.ga_revision > 0 && tile.ga_revision != resolved.spec.revision {
                    tile.ga_revision
                } else {
                    resolved.spec.revision - 1
                }
            }
            RolloutKind::Withdraw => resolved.spec.revision,
            RolloutKind::Launch | RolloutKind::Unspecified => 0,
        };
        let base = format!(
            "{}-r{}{}",
            tile.id,
            resolved.spec.revision,
            if kind == RolloutKind::Withdraw {
                "-withdraw"
            } else {
                ""
            }
        );
        let numbered = format!("{base}-");
        let taken = self
            .ctx
            .rollouts
            .scan(|x| (x.value.id == base || x.value.id.starts_with(&numbered)).then_some(()))
            .len();
        let id = if taken == 0 {
            base
        } else {
            format!("{base}-{}", taken + 1)
        };
        let earliest = resolved.input.earliest_start.or(plan
            .ga
            .and_then(|g| g.checked_sub(tilewave_core::planner::DEFAULT_LEAD_TIME).ok()));
        let state = if earliest.is_some_and(|e| e > now) {
            tilewave_core::rollout::State::Pending
        } else {
            tilewave_core::rollout::State::Running
        };
        let trace_id = tilewave_store::trace::trace_id(&origin)
            .unwrap_or_default()
            .to_owned();
        let mut rollout = Rollout {
            id: id.clone(),
            tile_id: tile.id.clone(),
            revision: resolved.spec.revision,
            previous_revision,
            kind: kind as i32,
            state: convert::state_to_wire(state),
            spec: Some(resolved.spec.clone()),
            wave_count: i32::try_from(plan.waves.len()).unwrap_or(i32::MAX),
            regions_total: i32::try_from(plan.regions.len()).unwrap_or(i32::MAX),
            plan: Some(spec::plan_to_proto(&plan, &resolved, now)),
            eta: Some(to_proto_timestamp(plan.planned_end)),
            deadline: resolved.has_deadline.then(|| to_proto_timestamp(plan.deadline)),
            created_at: Some(to_proto_timestamp(now)),
            created_by: actor.as_str().to_owned(),
            origin: Some(origin),
            trace_id,
            ..Default::default()
        };
        let steps: Vec<RolloutStep> = plan
            .regions
            .iter()
            .map(|p| RolloutStep {
                region: p.region.clone(),
                cloud: spec::region_cloud(&self.ctx.catalog, &p.region),
                wave: i32::try_from(p.wave).unwrap_or(i32::MAX),
                state: convert::step_state_to_wire(tilewave_core::rollout::StepState::Pending),
                planned_apply_start: Some(to_proto_timestamp(p.apply_start)),
                ..Default::default()
            })
            .collect();
        let re = model::replan_into(&self.ctx, &mut rollout, &steps, now);
        let keys = self.ctx.keys();
        // Encoded once: the creating write, then the owner's first decision.
        let record = stored(&rollout);
        let mut change = Change::new().create(keys.rollout(&id), &record);
        change = match self.ctx.freeze.get(&keys.freeze()) {
            Some(freeze) => change.expect(keys.freeze(), freeze.etag),
            None => change.expect_absent(keys.freeze()),
        };
        change = change.create(keys.rollout_active(&tile.id), &model::active_marker(&rollout));
        for s in &steps {
            change = change.create(keys.rollout_step(&id, &s.region), s);
        }
        if let Some(e) = &re.crossed {
            change = model::with_event(keys, change, e);
        }
        if let Some(t) = fence {
            change = change.fence(t);
        }
        let change = change.audit(audit::record(
            "StartRollout",
            "rollout",
            &id,
            format!(
                "started {} of {} r{} to {} regions in {} waves",
                kind.short_name().to_ascii_lowercase(),
                tile.id,
                rollout.revision,
                steps.len(),
                rollout.wave_count
            ),
        ));
        // The controller claims the roll-out while it is written.
        let announced = self
            .ctx
            .starts
            .announce(&id, rollout.origin.clone().unwrap_or_default());
        let created = match self.ctx.store.commit(change, actor).await {
            Ok(info) => info.revision,
            Err(tilewave_store::Error::AlreadyExists { key }) if key == keys.rollout(&id) => {
                return Err(Error::FailedPrecondition(format!(
                    "roll-out {id} of tile {} revision {} already exists: another StartRollout won",
                    tile.id, rollout.revision
                )));
            }
            Err(tilewave_store::Error::AlreadyExists { key }) if key == keys.rollout_active(&tile.id) => {
                let active = self
                    .ctx
                    .store
                    .get::<Rollout>(&key)
                    .await
                    .ok()
                    .flatten()
                    .map_or_else(
                        || "another roll-out".to_owned(),
                        |a| format!("roll-out {}", a.value.id),
                    );
                return Err(Error::FailedPrecondition(format!(
                    "{active} of tile {} is still active: exactly one roll-out of a tile runs at a time",
                    tile.id
                )));
            }
            Err(tilewave_store::Error::Conflict { key } | tilewave_store::Error::AlreadyExists { key })
                if key == keys.freeze() =>
            {
                return Err(Error::FailedPrecondition(
                    "the global freeze changed while starting; try again".into(),
                ));
            }
            Err(e) => return Err(Error::from(e)),
        };
        // What was just written, as a read would return it: the answer, and
        // the owner's first decision when this replica owns the roll-out
        // (no read of etcd for either).
        let written = |key: String, value| tilewave_store::Versioned {
            key,
            value,
            etag: created,
            create_revision: created,
        };
        let mut steps: Vec<_> = steps
            .into_iter()
            .map(|s| written(keys.rollout_step(&id, &s.region), s))
            .collect();
        model::sort_steps(&mut steps);
        let loaded = model::Loaded {
            rollout: tilewave_store::Versioned {
                key: keys.rollout(&id),
                value: record,
                etag: created,
                create_revision: created,
            },
            steps,
        };
        let answer = loaded.assemble();
        self.ctx.written.put_created(loaded);
        // The revision's configuration, as the registry answered it: the
        // first applies need not ask again (a revision's document never
        // changes).
        if let Some(config) = tile.config {
            self.ctx.configs.put(&tile.id, tile.revision, config);
        }
        if let Some(a) = announced {
            a.created();
        }
        Ok(answer)
    }

    /// Aborts a pending, running or paused roll-out (AbortRollout, and the
    /// lifecycle loop before a removal): one audited transaction.
    pub async fn abort(&self, actor: &Actor, id: &str, etag: i64, reason: &str) -> Result<Rollout> {
        let reason = reason.to_owned();
        self.command(actor, id, etag, Command::Abort { reason }).await
    }
}

/// Whether a start first checks that every planned region has an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preflight {
    /// StartRollout: refuse (FAILED_PRECONDITION) naming the regions with
    /// no registered agent.
    Agents,
    /// No check.
    Skip,
}

/// Bounds the strings and lists a command carries ([`limits`]), named by
/// their request fields.
fn check_command(command: &Command) -> Result<()> {
    match command {
        Command::Pause { reason } | Command::Abort { reason } => limits::text("reason", reason)?,
        Command::Rollback { regions, reason } => {
            limits::each_id("regions", regions)?;
            limits::text("reason", reason)?;
        }
        Command::RetryRegion { region } => limits::id("region", region)?,
        Command::SkipRegion { region, reason } => {
            limits::id("region", region)?;
            limits::text("reason", reason)?;
        }
        Command::Approve { note, .. } => limits::text("note", note)?,
        _ => {}
    }
    Ok(())
}

type Stream_<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl RolloutService for Rollouts {
    #[instrument(skip_all, fields(tile = %req.get_ref().spec.as_ref().map(|s| s.tile_id.as_str()).unwrap_or("")))]
    async fn plan_rollout(
        &self,
        req: Request<PlanRolloutRequest>,
    ) -> Result<Response<PlanRolloutResponse>, Status> {
        let spec_in = req.into_inner().spec.unwrap_or_default();
        let (tile, resolved) = self.resolve(&spec_in).await?;
        let mut plan = spec::plan(&resolved)?;
        // A preview (`--ga`) of a tile not yet scheduled is what it is for.
        let preview = spec_in.ga_preview.is_some()
            && matches!(
                tile.state(),
                tilewave_proto::common::v1::TileState::Draft
                    | tilewave_proto::common::v1::TileState::Validating
                    | tilewave_proto::common::v1::TileState::SignedOff
                    | tilewave_proto::common::v1::TileState::Scheduled
            );
        if !preview
            && let Err(e) = spec::check_tile(resolved.kind, &tile)
            && let Some(p) = spec::tile_problem(&e, &tile)
        {
            plan.feasible = false;
            plan.problems.insert(0, p);
        }
        if self.ctx.frozen() {
            plan.feasible = false;
            plan.problems.push(PlanProblem {
                kind: PlanProblemKind::Frozen as i32,
                message: "the global freeze is active: no roll-out starts applies until it is lifted".into(),
                ..Default::default()
            });
        }
        let missing = self
            .regions_without_agent(plan.regions.iter().map(|r| r.region.as_str()))
            .await?;
        if let Some(p) = spec::no_agent_problem(&missing) {
            plan.feasible = false;
            plan.problems.push(p);
        }
        Ok(Response::new(PlanRolloutResponse { plan: Some(plan) }))
    }

    #[instrument(skip_all, fields(tile = %req.get_ref().spec.as_ref().map(|s| s.tile_id.as_str()).unwrap_or("")))]
    async fn start_rollout(
        &self,
        req: Request<StartRolloutRequest>,
    ) -> Result<Response<StartRolloutResponse>, Status> {
        let actor = Actor::from_request(&req);
        let origin = tilewave_telemetry::current_origin();
        let r = req.into_inner();
        let rollout = self
            .start_checked(
                &actor,
                origin,
                r.spec.unwrap_or_default(),
                r.accept_late,
                Preflight::Agents,
                None,
            )
            .await?;
        Ok(Response::new(StartRolloutResponse {
            rollout: Some(rollout),
        }))
    }

    #[instrument(skip_all)]
    async fn get_rollout(
        &self,
        req: Request<GetRolloutRequest>,
    ) -> Result<Response<GetRolloutResponse>, Status> {
        let scope = Scope::of_request(&req);
        let r = req.into_inner();
        let loaded = self.load_for(&r.id, &r.tile_id, &scope).await?;
        Ok(Response::new(GetRolloutResponse {
            rollout: Some(loaded.assemble()),
        }))
    }

    #[instrument(skip_all)]
    async fn list_rollouts(
        &self,
        req: Request<ListRolloutsRequest>,
    ) -> Result<Response<ListRolloutsResponse>, Status> {
        let scope = Scope::of_request(&req);
        let r = req.into_inner();
        limits::id("tile_id", &r.tile_id).map_err(Error::from)?;
        limits::count("states", r.states.len(), limits::MAX_LIST_ITEMS).map_err(Error::from)?;
        let start = r.created.as_ref().and_then(|c| c.start);
        let end = r.created.as_ref().and_then(|c| c.end);
        let key = |t: &prost_types::Timestamp| (t.seconds, t.nanos);
        // Only the matching roll-outs are copied out of the cache.
        let mut all = self.ctx.rollouts.scan(|x| {
            let c = x.value.created_at.as_ref().map(key).unwrap_or_default();
            ((r.tile_id.is_empty() || x.value.tile_id == r.tile_id)
                // Before paging: neither a page token nor a count tells of
                // another partner's roll-outs.
                && self.sees_tile(&scope, &x.value.tile_id)
                && (r.states.is_empty() || r.states.contains(&x.value.state))
                && (r.kind == 0 || x.value.kind == r.kind)
                && start.as_ref().is_none_or(|s| c >= key(s))
                && end.as_ref().is_none_or(|e| c < key(e)))
            .then(|| x.clone())
        });
        all.sort_by_key(|x| std::cmp::Reverse(x.create_revision));
        let items: Vec<Rollout> = all
            .into_iter()
            .map(|x| {
                let mut v = x.value;
                v.etag = x.etag;
                v
            })
            .collect();
        let (rollouts, next_page_token) = tilewave_service::paging::Page::parse(r.page.as_ref())
            .and_then(|page| page.by_offset(items))
            .map_err(|e| Error::invalid(e.field, e.message))?;
        Ok(Response::new(ListRolloutsResponse {
            rollouts,
            next_page_token,
        }))
    }

    type WatchRolloutStream = Stream_<RolloutEvent>;

    #[instrument(skip_all)]
    async fn watch_rollout(
        &self,
        req: Request<WatchRolloutRequest>,
    ) -> Result<Response<Self::WatchRolloutStream>, Status> {
        let scope = Scope::of_request(&req);
        let r = req.into_inner();
        let id = self.id_for(&r.id, &r.tile_id, &scope)?;
        // One read, then one watch over the roll-out and its steps: each
        // change arrives whole (a transaction of the owner's), with no read
        // of etcd per change.
        let mut family = model::follow(&self.ctx.store, &id).await?;
        if !self.sees_tile(&scope, &family.parent().value.tile_id) {
            return Err(model::no_rollout(&id).into());
        }
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            let first = Loaded::of(&family);
            let first_revision = first.revision();
            let mut last = first.assemble();
            let ty = if is_terminal(last.state) {
                RolloutEventType::Finished
            } else {
                RolloutEventType::Snapshot
            };
            let ev = RolloutEvent {
                r#type: ty as i32,
                rollout: Some(last.clone()),
                changed_regions: Vec::new(),
                message: format!("{} is {}", id, RolloutState::short_name_of(last.state)),
                revision: first_revision,
            };
            if tx.send(Ok(ev)).await.is_err() || ty == RolloutEventType::Finished {
                return;
            }
            loop {
                let change = tokio::select! {
                    () = tx.closed() => return,
                    c = family.changed() => c,
                };
                let (now, revision) = match change {
                    Ok(FamilyChange::Changed) => {
                        let l = Loaded::of(&family);
                        (l.assemble(), l.revision())
                    }
                    Ok(FamilyChange::Gone) => {
                        let _ = tx.send(Err(Status::from(model::no_rollout(&id)))).await;
                        return;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(Status::from(Error::from(e)))).await;
                        return;
                    }
                };
                let changed: Vec<String> = now
                    .steps
                    .iter()
                    .filter(|s| !last.steps.contains(s))
                    .map(|s| s.region.clone())
                    .collect();
                if changed.is_empty() && stored(&now) == stored(&last) {
                    continue;
                }
                let done = is_terminal(now.state);
                let message = if done {
                    format!("{} {}", id, RolloutState::short_name_of(now.state))
                } else if changed.is_empty() {
                    format!("{} is {}", id, RolloutState::short_name_of(now.state))
                } else {
                    changed
                        .iter()
                        .filter_map(|c| now.steps.iter().find(|s| &s.region == c))
                        .map(|s| format!("{} {}", s.region, StepState::short_name_of(s.state)))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let ev = RolloutEvent {
                    r#type: if done {
                        RolloutEventType::Finished
                    } else {
                        RolloutEventType::Update
                    } as i32,
                    rollout: Some(now.clone()),
                    changed_regions: changed,
                    message,
                    revision,
                };
                if tx.send(Ok(ev)).await.is_err() || done {
                    return;
                }
                last = now;
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    #[instrument(skip_all, fields(rollout = %req.get_ref().id))]
    async fn pause_rollout(
        &self,
        req: Request<PauseRolloutRequest>,
    ) -> Result<Response<PauseRolloutResponse>, Status> {
        let actor = Actor::from_request(&req);
        let r = req.into_inner();
        let rollout = self
            .command(&actor, &r.id, r.etag, Command::Pause { reason: r.reason })
            .await?;
        Ok(Response::new(PauseRolloutResponse {
            rollout: Some(rollout),
        }))
    }

    #[instrument(skip_all, fields(rollout = %req.get_ref().id))]
    async fn resume_rollout(
        &self,
        req: Request<ResumeRolloutRequest>,
    ) -> Result<Response<ResumeRolloutResponse>, Status> {
        let actor = Actor::from_request(&req);
        let r = req.into_inner();
        if r.concurrency < 0 {
            return Err(Error::invalid("concurrency", "must not be negative").into());
        }
        let bake = r
            .bake
            .as_ref()
            .map(|b| spec::duration_of("bake", b))
            .transpose()?;
        if bake.is_some_and(|b| b.is_negative()) {
            return Err(Error::invalid("bake", "must not be negative").into());
        }
        let command = Command::Resume {
            bake,
            concurrency: Some(r.concurrency),
        };
        if r.dry_run {
            let loaded = model::load(&self.ctx.store, &r.id).await?;
            let now = self.ctx.clock.now();
            let (mut ro, steps, _) = Self::answer(&loaded, &command, now)?;
            model::replan_into(&self.ctx, &mut ro, &steps, now);
            let plan = ro.plan.clone();
            return Ok(Response::new(ResumeRolloutResponse {
                rollout: Some(loaded.assemble()),
                plan,
            }));
        }
        let rollout = self.command(&actor, &r.id, r.etag, command).await?;
        let plan = rollout.plan.clone();
        Ok(Response::new(ResumeRolloutResponse {
            rollout: Some(rollout),
            plan,
        }))
    }

    #[instrument(skip_all, fields(rollout = %req.get_ref().id))]
    async fn abort_rollout(
        &self,
        req: Request<AbortRolloutRequest>,
    ) -> Result<Response<AbortRolloutResponse>, Status> {
        let actor = Actor::from_request(&req);
        let r = req.into_inner();
        let rollout = self.abort(&actor, &r.id, r.etag, &r.reason).await?;
        // The tile's lifecycle (back to SCHEDULED) is the lifecycle loop's
        // job ([`crate::lifecycle`]): it sees the roll-out ABORTED while the
        // tile is still ROLLING_OUT for its revision, whichever replica
        // committed the abort and whether or not it lived on after it.
        Ok(Response::new(AbortRolloutResponse {
            rollout: Some(rollout),
        }))
    }

    #[instrument(skip_all, fields(rollout = %req.get_ref().id))]
    async fn rollback_rollout(
        &self,
        req: Request<RollbackRolloutRequest>,
    ) -> Result<Response<RollbackRolloutResponse>, Status> {
        let actor = Actor::from_request(&req);
        let r = req.into_inner();
        let command = Command::Rollback {
            regions: r.regions,
            reason: r.reason,
        };
        let rollout = self.command(&actor, &r.id, r.etag, command).await?;
        Ok(Response::new(RollbackRolloutResponse {
            rollout: Some(rollout),
        }))
    }

    #[instrument(skip_all, fields(rollout = %req.get_ref().id))]
    async fn retry_region(
        &self,
        req: Request<RetryRegionRequest>,
    ) -> Result<Response<RetryRegionResponse>, Status> {
        let actor = Actor::from_request(&req);
        let r = req.into_inner();
        let command = Command::RetryRegion { region: r.region };
        let rollout = self.command(&actor, &r.id, r.etag, command).await?;
        Ok(Response::new(RetryRegionResponse {
            rollout: Some(rollout),
        }))
    }

    #[instrument(skip_all, fields(rollout = %req.get_ref().id))]
    async fn skip_region(
        &self,
        req: Request<SkipRegionRequest>,
    ) -> Result<Response<SkipRegionResponse>, Status> {
        let actor = Actor::from_request(&req);
        let r = req.into_inner();
        let command = Command::SkipRegion {
            region: r.region,
            reason: r.reason,
        };
        let rollout = self.command(&actor, &r.id, r.etag, command).await?;
        Ok(Response::new(SkipRegionResponse {
            rollout: Some(rollout),
        }))
    }

    #[instrument(skip_all, fields(rollout = %req.get_ref().id))]
    async fn approve(&self, req: Request<ApproveRequest>) -> Result<Response<ApproveResponse>, Status> {
        let actor = Actor::from_request(&req);
        let r = req.into_inner();
        let command = Command::Approve {
            wave: r.wave,
            note: r.note,
        };
        let rollout = self.command(&actor, &r.id, r.etag, command).await?;
        Ok(Response::new(ApproveResponse {
            rollout: Some(rollout),
        }))
    }

    #[instrument(skip_all, fields(tile = %req.get_ref().tile_id))]
    async fn where_is_tile(
        &self,
        req: Request<WhereIsTileRequest>,
    ) -> Result<Response<WhereIsTileResponse>, Status> {
        let scope = Scope::of_request(&req);
        let r = req.into_inner();
        if r.tile_id.is_empty() {
            return Err(Error::invalid("tile_id", "required").into());
        }
        limits::id("tile_id", &r.tile_id).map_err(Error::from)?;
        // Another partner's tile is answered as one that is nowhere (what
        // a tile that does not exist gets), after the same work.
        let visible = self.sees_tile(&scope, &r.tile_id);
        limits::each_id("regions", &r.regions).map_err(Error::from)?;
        for region in &r.regions {
            if self.ctx.catalog.get(region).is_err() {
                return Err(Error::invalid("regions", format!("unknown region {region:?}")).into());
            }
        }
        let desired = reconcile::desired(&self.ctx, Some(&r.tile_id)).await?;
        let agents = self.ctx.agents.all().await.map_err(Error::from)?;
        let now = self.ctx.clock.now();
        let mut reported: BTreeMap<String, (i64, bool)> = BTreeMap::new();
        let timeout = self.ctx.agents.timeout();
        let answers = futures::future::join_all(agents.into_iter().map(|(region, mut c)| async move {
            let resp = c
                .list_tiles(request(AgentListTiles { page: None }, timeout))
                .await;
            (region, resp)
        }))
        .await;
        let mut answered = std::collections::BTreeSet::new();
        for (region, resp) in answers {
            if let Ok(resp) = resp {
                answered.insert(region.clone());
                if let Some(e) = resp
                    .into_inner()
                    .entries
                    .into_iter()
                    .find(|e| e.tile_id == r.tile_id)
                {
                    reported.insert(region, (e.revision, e.hidden));
                }
            }
        }
        let placements = self
            .ctx
            .catalog
            .all()
            .iter()
            .filter(|reg| visible && (r.regions.is_empty() || r.regions.contains(&reg.id)))
            .filter(|reg| {
                desired.contains_key(&(r.tile_id.clone(), reg.id.clone())) || reported.contains_key(&reg.id)
            })
            .map(|reg| {
                let d = desired
                    .get(&(r.tile_id.clone(), reg.id.clone()))
                    .cloned()
                    .unwrap_or_default();
                let (rep, hidden) = reported.get(&reg.id).copied().unwrap_or((0, false));
                RegionPlacement {
                    region: reg.id.clone(),
                    cloud: spec::proto_cloud(reg.cloud) as i32,
                    live_revision: d.live_revision,
                    since: d.since,
                    desired_revision: d.revision,
                    reported_revision: rep,
                    reported_at: answered.contains(&reg.id).then(|| to_proto_timestamp(now)),
                    in_sync: d.revision == rep,
                    hidden,
                    rollout_id: d.rollout_id,
                    health: HealthStatus::Unspecified as i32,
                }
            })
            .collect();
        Ok(Response::new(WhereIsTileResponse {
            placements,
            next_page_token: String::new(),
        }))
    }

    #[instrument(skip_all)]
    async fn set_freeze(
        &self,
        req: Request<SetFreezeRequest>,
    ) -> Result<Response<SetFreezeResponse>, Status> {
        let actor = Actor::from_request(&req);
        let r = req.into_inner();
        limits::text("reason", &r.reason).map_err(Error::from)?;
        let key = self.ctx.keys().freeze();
        let current = self.ctx.store.get::<Freeze>(&key).await.map_err(Error::from)?;
        let now = self.ctx.clock.now();
        let freeze = Freeze {
            active: r.active,
            reason: r.reason.clone(),
            actor: actor.as_str().to_owned(),
            since: Some(to_proto_timestamp(now)),
            until: r.until,
            etag: 0,
        };
        let change = match &current {
            Some(c) => {
                if r.etag != 0 && r.etag != c.etag {
                    return Err(Error::Conflict(format!(
                        "the freeze changed since it was read (etag {}, now {})",
                        r.etag, c.etag
                    ))
                    .into());
                }
                Change::new().update(key.clone(), &freeze, c.etag)
            }
            None => Change::new().create(key.clone(), &freeze),
        };
        let summary = if r.active {
            format!("freeze on: {}", r.reason)
        } else {
            format!("freeze lifted: {}", r.reason)
        };
        let change = change.audit(audit::record("SetFreeze", "freeze", "freeze", summary));
        let info = self.ctx.store.commit(change, &actor).await.map_err(Error::from)?;
        let _ = self
            .ctx
            .freeze
            .wait_for_revision(info.revision, self.ctx.store.config().op_timeout)
            .await;
        Ok(Response::new(SetFreezeResponse {
            freeze: Some(Freeze {
                etag: info.revision,
                ..freeze
            }),
        }))
    }

    #[instrument(skip_all)]
    async fn get_freeze(
        &self,
        _req: Request<GetFreezeRequest>,
    ) -> Result<Response<GetFreezeResponse>, Status> {
        let key = self.ctx.keys().freeze();
        let freeze = self.ctx.store.get::<Freeze>(&key).await.map_err(Error::from)?;
        Ok(Response::new(GetFreezeResponse {
            freeze: Some(freeze.map_or_else(Freeze::default, |f| Freeze {
                etag: f.etag,
                ..f.value
            })),
        }))
    }

    #[instrument(skip_all, fields(tile = %req.get_ref().tile_id))]
    async fn schedule_ga(
        &self,
        req: Request<ScheduleGaRequest>,
    ) -> Result<Response<ScheduleGaResponse>, Status> {
        let actor = Actor::from_request(&req);
        let r = req.into_inner();
        Ok(Response::new(
            crate::launch::schedule(&self.ctx, &actor, &r).await?,
        ))
    }

    #[instrument(skip_all)]
    async fn list_launches(
        &self,
        req: Request<ListLaunchesRequest>,
    ) -> Result<Response<ListLaunchesResponse>, Status> {
        let r = req.into_inner();
        Ok(Response::new(crate::launch::list(&self.ctx, &r).await?))
    }

    #[instrument(skip_all, fields(tile = %req.get_ref().tile_id))]
    async fn hold_launch(
        &self,
        req: Request<HoldLaunchRequest>,
    ) -> Result<Response<HoldLaunchResponse>, Status> {
        let actor = Actor::from_request(&req);
        let r = req.into_inner();
        Ok(Response::new(crate::launch::hold(&self.ctx, &actor, &r).await?))
    }

    #[instrument(skip_all)]
    async fn set_launch_calendar(
        &self,
        req: Request<SetLaunchCalendarRequest>,
    ) -> Result<Response<SetLaunchCalendarResponse>, Status> {
        let actor = Actor::from_request(&req);
        let r = req.into_inner();
        let wire_cal = r
            .calendar
            .as_ref()
            .ok_or_else(|| Error::invalid("calendar", "required (send an empty calendar to clear it)"))?;
        let cal = convert::calendar(wire_cal, "calendar.")?;
        let now = self.ctx.clock.now();
        cal.validate(now)
            .map_err(|e| convert::calendar_error(&e, "calendar."))?;
        let current = self.stored_calendar().await?;
        check_calendar_etag(current.as_ref(), r.etag)?;
        let summary = format!(
            "launch calendar replaced: {} rule(s), {} blackout(s), {} one-off slot(s)",
            cal.rules.len(),
            cal.blackouts.len(),
            cal.extra_slots.len()
        );
        let calendar = self
            .write_calendar(&actor, current.as_ref(), &cal, "SetLaunchCalendar", summary)
            .await?;
        Ok(Response::new(SetLaunchCalendarResponse {
            calendar: Some(calendar),
        }))
    }

    #[instrument(skip_all)]
    async fn get_launch_calendar(
        &self,
        req: Request<GetLaunchCalendarRequest>,
    ) -> Result<Response<GetLaunchCalendarResponse>, Status> {
        let r = req.into_inner();
        let n = usize::try_from(r.upcoming)
            .ok()
            .filter(|n| *n <= MAX_UPCOMING)
            .ok_or_else(|| {
                Error::invalid(
                    "upcoming",
                    format!("must be between 0 and {MAX_UPCOMING}, not {}", r.upcoming),
                )
            })?;
        let calendar = self
            .stored_calendar()
            .await?
            .map_or_else(LaunchCalendar::default, |c| LaunchCalendar {
                etag: c.etag,
                ..c.value
            });
        let mut upcoming = Vec::new();
        if n > 0 {
            let cal = convert::calendar(&calendar, "calendar.")?;
            let now = self.ctx.clock.now();
            let until = now
                .checked_add(UPCOMING_WINDOW)
                .map_err(|e| Error::invalid("upcoming", e.to_string()))?;
            let slots = cal
                .slots(now, until)
                .map_err(|e| convert::calendar_error(&e, "calendar."))?;
            upcoming = slots
                .iter()
                .take(n)
                .map(|s| convert::slot_to_wire(&cal, s))
                .collect();
        }
        Ok(Response::new(GetLaunchCalendarResponse {
            calendar: Some(calendar),
            upcoming,
        }))
    }

    #[instrument(skip_all)]
    async fn edit_launch_calendar(
        &self,
        req: Request<EditLaunchCalendarRequest>,
    ) -> Result<Response<EditLaunchCalendarResponse>, Status> {
        let actor = Actor::from_request(&req);
        let r = req.into_inner();
        let edit = convert::calendar_edit(&r)?;
        let current = self.stored_calendar().await?;
        check_calendar_etag(current.as_ref(), r.etag)?;
        let cal = match &current {
            Some(c) => convert::calendar(&c.value, "calendar.")?,
            None => tilewave_core::calendar::LaunchCalendar::default(),
        };
        let summary = convert::describe_edit(&cal, &edit);
        let now = self.ctx.clock.now();
        let next = cal
            .edited(edit, now)
            .map_err(|e| convert::calendar_error(&e, ""))?;
        convert::check_calendar_counts("", next.rules.len(), next.blackouts.len(), next.extra_slots.len())?;
        let calendar = self
            .write_calendar(&actor, current.as_ref(), &next, "EditLaunchCalendar", summary)
            .await?;
        Ok(Response::new(EditLaunchCalendarResponse {
            calendar: Some(calendar),
        }))
    }
}

/// At most this many upcoming slots in a GetLaunchCalendar answer.
const MAX_UPCOMING: usize = 100;
/// How far ahead GetLaunchCalendar looks for upcoming slots.
const UPCOMING_WINDOW: jiff::SignedDuration = jiff::SignedDuration::from_hours(8 * 7 * 24);

/// ABORTED unless `etag` is the stored calendar's (0 when none is stored):
/// edits name items by index, so a calendar that moved must be read again.
fn check_calendar_etag(current: Option<&Versioned<LaunchCalendar>>, etag: i64) -> Result<()> {
    let have = current.map_or(0, |c| c.etag);
    if etag != have {
        return Err(Error::Conflict(format!(
            "etag: the launch calendar changed since it was read (etag {etag}, now {have}); \
             read it again (GetLaunchCalendar) and retry"
        )));
    }
    Ok(())
}

impl Rollouts {
    /// The stored launch calendar, if any.
    async fn stored_calendar(&self) -> Result<Option<Versioned<LaunchCalendar>>> {
        let key = self.ctx.keys().calendar();
        Ok(self.ctx.store.get::<LaunchCalendar>(&key).await?)
    }

    /// Writes `cal` (validated) over `current` in one audited transaction,
    /// guarded by `current`'s etag; ABORTED when it moved meanwhile.
    async fn write_calendar(
        &self,
        actor: &Actor,
        current: Option<&Versioned<LaunchCalendar>>,
        cal: &tilewave_core::calendar::LaunchCalendar,
        action: &str,
        summary: String,
    ) -> Result<LaunchCalendar> {
        let key = self.ctx.keys().calendar();
        let value = LaunchCalendar {
            updated_by: actor.as_str().to_owned(),
            updated_at: Some(to_proto_timestamp(self.ctx.clock.now())),
            ..convert::calendar_to_wire(cal)
        };
        let change = match current {
            Some(c) => Change::new().update(key.clone(), &value, c.etag),
            None => Change::new().create(key.clone(), &value),
        }
        .audit(audit::record(action, "calendar", "calendar", summary));
        let info = match self.ctx.store.commit(change, actor).await {
            Ok(info) => info,
            Err(tilewave_store::Error::Conflict { .. } | tilewave_store::Error::AlreadyExists { .. }) => {
                return Err(Error::Conflict(
                    "etag: the launch calendar changed while this change was made; \
                     read it again (GetLaunchCalendar) and retry"
                        .into(),
                ));
            }
            Err(e) => return Err(e.into()),
        };
        Ok(LaunchCalendar {
            etag: info.revision,
            ..value
        })
    }
}

/// The RPCs whose handlers scope what they answer to the caller's partner
/// ([`Scope`]): every row of the access table a partner may call.
pub const PARTNER_SCOPED: &[&str] = &["GetRollout", "ListRollouts", "WatchRollout", "WhereIsTile"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rpc_a_partner_may_call_is_scoped() {
        assert_eq!(
            tilewave_auth::table::partner_scoped("tilewave.rollout.v1.RolloutService"),
            PARTNER_SCOPED,
            "a row that lets partners call a rollout RPC needs its handler scoped (Scope::sees)"
        );
        assert_eq!(
            tilewave_auth::table::partner_scoped("tilewave.clock.v1.ClockService"),
            Vec::<&str>::new()
        );
    }
}
