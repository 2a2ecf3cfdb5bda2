//! The `AgentService` RPCs over one region's catalog.
//!
//! Changes are staged and written in groups ([`crate::writes`]): a change
//! is made on the staged catalog, written durably (a record appended to
//! the catalog's log, or a new snapshot: [`crate::persist`]) and only then
//! installed in the catalog readers see and acknowledged: a change the
//! caller saw acknowledged survives a crash, and a change whose write
//! failed is not made. Requests are converted
//! and checked at this edge (`INVALID_ARGUMENT` naming the field).
//!
//! Credentials (InstallCredential, VerifyCredential; [`crate::credentials`]):
//! the request's secret is opened (an `encrypted` one with the agent's KEK
//! ring), checked against the request's fingerprint and sealed under the
//! ring's primary KEK before the catalog sees it. Without a KEK the agent
//! refuses to install ([`NO_KEK`]). Secrets never reach a log, a span, an
//! error or a response: only fingerprints do.

use std::sync::{Arc, Mutex};

use tilewave_clients::egress::EgressPolicy;
use tilewave_core::quote::quoted;
use tilewave_core::regions::Cloud;
use tilewave_core::slug::TileId;
use tilewave_proto::ShortName as _;
use tilewave_proto::agent::v1::agent_service_server::AgentService;
use tilewave_proto::agent::v1::install_credential_request::Secret as RequestSecret;
use tilewave_proto::agent::v1::*;
use tilewave_proto::common::v1::{HealthStatus, PartnerConfig, ProbeResult};
use tilewave_proto::credentials::v1::CredentialKind;
use tilewave_secrets::{BasicCredential, Keyring, Secret};
use tilewave_service::paging::Page;
use tilewave_store::Clock;
use tonic::{Request, Response, Status};
use tracing::{Span, instrument};

use crate::catalog::{Apply, Catalog, new_generation};
use crate::credentials::{self, Install, Installed, NewSecret};
use crate::error::{Error, Result};
use crate::faults::Faults;
use crate::health::{HealthBook, verdict};
use crate::persist::DataDir;
use crate::probe::{self, ClientSettings, PartnerClient, Target};
use crate::writes::Writes;

/// Why InstallCredential is refused by an agent without a KEK.
pub const NO_KEK: &str = "this agent has no key-encryption key to seal credentials with: start it \
     with --kek-file FILE (or TILEWAVE_KEK_FILE=FILE, or TILEWAVE_KEK=id:base64key)";

/// What the agent is configured with, beyond its state.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    /// `<cloud>:<region>`.
    pub region: String,
    /// The region's cloud.
    pub cloud: Cloud,
    /// Which hosts the probe may call.
    pub probe_policy: EgressPolicy,
    /// The error-rate window.
    pub error_window: std::time::Duration,
    /// Above this error rate a tile is UNHEALTHY.
    pub error_rate_threshold: f64,
    /// The partner client's timeouts and retry waits.
    pub client: ClientSettings,
    /// The key-encryption keys credentials are sealed with; `None` refuses
    /// InstallCredential.
    pub keyring: Option<Arc<Keyring>>,
}

/// The region agent: its catalog, faults and health.
#[derive(Clone)]
pub struct Agent {
    inner: Arc<Inner>,
}

struct Inner {
    settings: AgentSettings,
    /// The durable catalog: what readers see.
    catalog: tokio::sync::Mutex<Catalog>,
    /// Changes, written in groups ([`crate::writes`]).
    writes: Writes,
    data: DataDir,
    clock: Arc<dyn Clock>,
    faults: Faults,
    health: Mutex<HealthBook>,
    client: PartnerClient,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("region", &self.inner.settings.region)
            .field("data_dir", &self.inner.data.path())
            .finish_non_exhaustive()
    }
}

/// A tile's live revision and configuration, read under the catalog lock.
struct LiveTile {
    revision: i64,
    config: Option<PartnerConfig>,
    /// The CURRENT credential (fingerprint and sealed), if any.
    current: Option<(String, Installed)>,
}

impl Agent {
    /// Opens the catalog in `data` (a new one, written at once, when there
    /// is none). Stored credentials sealed under another KEK than the key
    /// ring's primary (a KEK rotation: the new key first in the ring, the
    /// old one after it) are re-wrapped under the primary and the catalog
    /// written before the agent serves; a credential sealed under a key the
    /// ring lacks refuses the start, naming the key.
    pub async fn open(settings: AgentSettings, data: DataDir, clock: Arc<dyn Clock>) -> Result<Self> {
        let region = settings.region.clone();
        let d = data.clone();
        let ring = settings.keyring.clone();
        let (catalog, log) = blocking(move || {
            let (mut catalog, mut log) = match d.open(&region)? {
                (Some(c), log) => (c, log),
                (None, mut log) => {
                    let c = Catalog::new(&region, new_generation());
                    log.compact(&c)?;
                    tracing::info!(generation = c.generation(), "created a new catalog");
                    (c, log)
                }
            };
            let stored = catalog.credential_count();
            match ring {
                Some(ring) => {
                    let moved = catalog.rewrap_credentials(&ring)?;
                    if moved > 0 {
                        log.compact(&catalog)?;
                        tracing::info!(
                            moved,
                            stored,
                            primary_kek = ring.primary().id(),
                            "re-wrapped stored credentials under the primary key-encryption key"
                        );
                    }
                }
                None if stored > 0 => tracing::warn!(
                    stored,
                    "the catalog holds sealed credentials but the agent has no key-encryption key: \
                     they cannot be presented until it is started with --kek-file"
                ),
                None => {}
            }
            Ok((catalog, log))
        })
        .await?;
        tracing::info!(
            tiles = catalog.len(),
            generation = catalog.generation(),
            "catalog loaded"
        );
        let health = Mutex::new(HealthBook::new(settings.error_window));
        let faults = Faults::new(data.clone());
        let client = PartnerClient::new(settings.probe_policy.clone(), settings.client.clone())
            .map_err(Error::Precondition)?;
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                writes: Writes::new(catalog.clone(), log),
                catalog: tokio::sync::Mutex::new(catalog),
                data,
                clock,
                faults,
                health,
                client,
            }),
        })
    }

    /// The faults in force.
    pub fn faults(&self) -> &Faults {
        &self.inner.faults
    }

    /// The region served.
    pub fn region(&self) -> &str {
        &self.inner.settings.region
    }

    /// The catalog's generation.
    pub async fn generation(&self) -> String {
        self.inner.catalog.lock().await.generation().to_owned()
    }

    fn health(&self) -> std::sync::MutexGuard<'_, HealthBook> {
        self.inner
            .health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes `change` to the catalog and returns once it is durable
    /// (written with whatever other changes came meanwhile: [`Writes`]).
    async fn commit<R>(&self, change: impl FnOnce(&mut Catalog) -> Result<R>) -> Result<R> {
        self.inner.writes.change(&self.inner.catalog, change).await
    }

    /// Applies a revision; see [`Catalog::apply`].
    pub async fn apply(&self, req: Apply) -> Result<crate::catalog::Applied> {
        let tile_id = req.tile_id.clone();
        let now = self.inner.clock.now();
        let (before, applied) = self
            .commit(|c| {
                let before = c.entry(&tile_id).map(|e| e.revision);
                Ok((before, c.apply(req, now)?))
            })
            .await?;
        if before != Some(applied.entry.revision) {
            self.health().new_revision(&tile_id);
        }
        Ok(applied)
    }

    /// Removes a tile; see [`Catalog::remove`].
    pub async fn remove(&self, tile_id: &str, fencing_token: i64) -> Result<bool> {
        let removed = self.commit(|c| c.remove(tile_id, fencing_token)).await?;
        if removed {
            self.health().forget(tile_id);
        }
        Ok(removed)
    }

    /// Installs, moves or retires a credential; see
    /// [`Catalog::install_credential`]. Written before it is acknowledged.
    pub async fn install_credential(&self, req: &Install) -> Result<bool> {
        let now = self.inner.clock.now();
        self.commit(|c| c.install_credential(req, now)).await
    }

    /// Calls the tile's test-connection endpoint with an installed
    /// credential (empty fingerprint: the CURRENT one); its fingerprint and
    /// the call's result.
    pub async fn verify_credential(
        &self,
        tile_id: &str,
        fingerprint: &str,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<(String, ProbeResult)> {
        let (fp, installed, config) = {
            let catalog = self.inner.catalog.lock().await;
            let (fp, installed) = catalog.credential(tile_id, fingerprint)?;
            let config = catalog.verification_partner(tile_id);
            (fp, installed, config)
        };
        let credential = self.open_credential(tile_id, &fp, &installed)?;
        let probe = self
            .call_partner(config.as_ref(), Some(&credential), deadline)
            .await;
        Ok((fp, probe))
    }

    /// Checks an InstallCredential request at the edge and, when it carries
    /// a secret, opens it, checks it against the fingerprint and seals it
    /// for the catalog. Errors name the field and never quote the secret.
    fn install_request(&self, r: InstallCredentialRequest) -> Result<Install> {
        use tilewave_service::limits;
        let tile = tile_id("tile_id", &r.tile_id)?;
        let fencing_token = token(r.fencing_token)?;
        let slot = CredentialSlot::try_from(r.slot)
            .ok()
            .filter(|s| *s != CredentialSlot::Unspecified)
            .ok_or_else(|| {
                Error::invalid(
                    "slot",
                    format!("must be PENDING, CURRENT, PREVIOUS or RETIRED, got {}", r.slot),
                )
            })?;
        let limit = |v: limits::Violation| Error::Invalid {
            field: match v.field.as_str() {
                "fingerprint" => "fingerprint",
                "username" => "username",
                _ => "credential_id",
            },
            problem: v.message,
        };
        limits::id("fingerprint", &r.fingerprint).map_err(limit)?;
        if r.fingerprint.is_empty() {
            return Err(Error::invalid("fingerprint", "required"));
        }
        limits::id("username", &r.username).map_err(limit)?;
        if r.username.contains(':') {
            return Err(Error::invalid(
                "username",
                "must not contain ':' (HTTP Basic auth)",
            ));
        }
        limits::id("credential_id", &r.credential_id).map_err(limit)?;
        let kind = CredentialKind::try_from(r.kind).unwrap_or(CredentialKind::Unspecified);
        let basic = kind == CredentialKind::PartnerBasicAuth;
        if !basic && (r.kind != 0 || r.secret.is_some()) {
            return Err(Error::invalid(
                "kind",
                format!(
                    "the agent holds PARTNER_BASIC_AUTH credentials only, got {}",
                    CredentialKind::short_name_of(r.kind)
                ),
            ));
        }
        let ring = self.keyring()?;
        let secret = match r.secret {
            None => None,
            Some(RequestSecret::Plaintext(text)) => {
                Some(Secret::from_text(&text).map_err(|e| Error::invalid("plaintext", e.to_string()))?)
            }
            Some(RequestSecret::Encrypted(envelope)) => {
                if r.credential_id.is_empty() {
                    return Err(Error::invalid(
                        "credential_id",
                        "required with `encrypted` (its associated data is <tile_id>/<credential_id>)",
                    ));
                }
                let sealed = credentials::from_envelope(envelope);
                let aad = credentials::request_aad(&tile, &r.credential_id);
                Some(ring.open(&sealed, &aad).map_err(|e| match e {
                    tilewave_secrets::Error::UnknownKek { .. } => Error::Precondition(format!(
                        "encrypted.kek_id: {e}; give the agent that key (--kek-file)"
                    )),
                    other => Error::invalid("encrypted", other.to_string()),
                })?)
            }
        };
        let secret = match secret {
            None => None,
            Some(secret) => {
                if r.username.is_empty() {
                    return Err(Error::invalid("username", "required with a secret"));
                }
                if tilewave_secrets::fingerprint(&tile, &secret) != r.fingerprint {
                    return Err(Error::invalid(
                        "fingerprint",
                        format!(
                            "{} is not the fingerprint of the secret given for tile {tile}",
                            quoted(&r.fingerprint)
                        ),
                    ));
                }
                let sealed = ring
                    .seal(&secret, &credentials::aad(&tile, &r.fingerprint))
                    .map_err(|e| Error::Precondition(format!("the secret could not be sealed: {e}")))?;
                Some(NewSecret {
                    username: r.username.clone(),
                    sealed,
                    credential_id: r.credential_id.clone(),
                })
            }
        };
        Ok(Install {
            tile_id: tile,
            fingerprint: r.fingerprint,
            slot,
            username: r.username,
            secret,
            fencing_token,
            partner: r.partner,
        })
    }

    /// Wipes the catalog, memory and file, as a disk loss would, and starts
    /// a new generation. The remembered fencing tokens and apply counts go
    /// with it, as they would with a real disk. Returns how many live
    /// entries were lost.
    pub async fn lose_catalog(&self) -> Result<usize> {
        let (lost, generation) = self.inner.writes.lose(&self.inner.catalog).await?;
        tracing::warn!(lost, generation, "catalog lost (injected fault)");
        self.health().clear();
        Ok(lost)
    }

    /// The live tiles (and their configurations) among `ids` (all when
    /// empty); `None` for a requested tile that is not live.
    async fn live_tiles(&self, ids: &[String]) -> Vec<(String, Option<LiveTile>)> {
        let catalog = self.inner.catalog.lock().await;
        let snapshot = |id: &str| {
            catalog
                .record(id)
                .and_then(|r| r.live.as_ref())
                .map(|l| LiveTile {
                    revision: l.revision,
                    config: l.config.clone(),
                    current: catalog.credential(id, "").ok(),
                })
        };
        if ids.is_empty() {
            catalog
                .live()
                .map(|(id, _, _)| (id.to_owned(), snapshot(id)))
                .collect()
        } else {
            ids.iter().map(|id| (id.clone(), snapshot(id))).collect()
        }
    }

    /// The key ring, or the refusal of an agent without one.
    fn keyring(&self) -> Result<&Keyring> {
        self.inner
            .settings
            .keyring
            .as_deref()
            .ok_or_else(|| Error::Precondition(NO_KEK.to_owned()))
    }

    /// Opens an installed credential for a call.
    fn open_credential(&self, tile_id: &str, fingerprint: &str, c: &Installed) -> Result<BasicCredential> {
        let password = self
            .keyring()?
            .open(&c.sealed, &credentials::aad(tile_id, fingerprint))
            .map_err(|e| {
                Error::Precondition(format!(
                    "credential {} of tile {tile_id} cannot be opened: {e}",
                    quoted(fingerprint)
                ))
            })?;
        Ok(BasicCredential {
            user: c.username.clone(),
            password,
        })
    }

    /// Calls the tile's test-connection endpoint with `credential`, done
    /// by `deadline` when a caller waits.
    async fn call_partner(
        &self,
        config: Option<&PartnerConfig>,
        credential: Option<&BasicCredential>,
        deadline: Option<tokio::time::Instant>,
    ) -> ProbeResult {
        let now = self.inner.clock.now();
        match probe::target(&self.inner.settings.probe_policy, config) {
            Target::Probe(url) => {
                self.inner
                    .client
                    .run_until(&url, &self.inner.settings.region, credential, now, deadline)
                    .await
            }
            Target::Skip(why) => probe::unknown(why, now),
        }
    }

    /// Runs a probe of one tile now, presenting its CURRENT credential when
    /// one is installed, and records it.
    async fn probe_tile(
        &self,
        tile_id: &str,
        config: Option<&PartnerConfig>,
        current: Option<&(String, Installed)>,
        deadline: Option<tokio::time::Instant>,
    ) -> ProbeResult {
        let credential = match current.map(|(fp, c)| self.open_credential(tile_id, fp, c)) {
            None => Ok(None),
            Some(Ok(c)) => Ok(Some(c)),
            Some(Err(e)) => Err(e),
        };
        let result = match credential {
            Ok(credential) => self.call_partner(config, credential.as_ref(), deadline).await,
            Err(e) => {
                tracing::warn!(tile_id, error = %e, "the CURRENT credential cannot be presented");
                ProbeResult {
                    status: tilewave_proto::common::v1::TestStatus::Fail as i32,
                    message: e.to_string(),
                    checked_at: Some(tilewave_store::clock::to_proto_timestamp(self.inner.clock.now())),
                    ..Default::default()
                }
            }
        };
        tracing::debug!(tile_id, status = ?result.status(), message = %result.message, "probed");
        self.health()
            .record_probe(tile_id, result.clone(), tokio::time::Instant::now());
        result
    }

    /// Probes every live tile once (the background prober's round).
    pub async fn probe_all(&self) {
        for (id, live) in self.live_tiles(&[]).await {
            if let Some(live) = live
                && matches!(
                    probe::target(&self.inner.settings.probe_policy, live.config.as_ref()),
                    Target::Probe(_)
                )
            {
                self.probe_tile(&id, live.config.as_ref(), live.current.as_ref(), None)
                    .await;
            }
        }
    }

    /// The health of the given tiles (all when empty).
    /// Probes run now are done by `deadline` when a caller waits.
    pub async fn tile_health(
        &self,
        ids: &[String],
        probe_now: bool,
        deadline: Option<tokio::time::Instant>,
    ) -> Vec<TileHealth> {
        let threshold = self.inner.settings.error_rate_threshold;
        let window = prost_types::Duration::try_from(self.inner.settings.error_window).ok();
        let mut out = Vec::new();
        for (id, live) in self.live_tiles(ids).await {
            let forced = self.inner.faults.forced(&id);
            let Some(live) = live else {
                out.push(TileHealth {
                    tile_id: id,
                    status: HealthStatus::Unknown as i32,
                    window,
                    reason: "not in this region's catalog".to_owned(),
                    ..Default::default()
                });
                continue;
            };
            let last = self.health().last_probe(&id).cloned();
            let probe = match last {
                Some(p) if !probe_now => p,
                _ => {
                    self.probe_tile(&id, live.config.as_ref(), live.current.as_ref(), deadline)
                        .await
                }
            };
            let rate = self.health().rate(&id, tokio::time::Instant::now());
            let (status, reason) = verdict(&probe, rate, threshold, forced.as_ref());
            let mut probe = probe;
            let mut error_rate = rate.error_rate();
            if let Some(f) = &forced {
                if f.error_rate > 0.0 {
                    error_rate = f.error_rate;
                }
                if !f.message.is_empty() {
                    probe.message = f.message.clone();
                }
            }
            out.push(TileHealth {
                tile_id: id,
                revision: live.revision,
                status: status as i32,
                probe: Some(probe),
                error_rate,
                request_count: i64::try_from(rate.calls).unwrap_or(i64::MAX),
                window,
                reason,
            });
        }
        out
    }
}

/// Runs blocking file I/O off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Error::Persist {
        path: "catalog".to_owned(),
        source: std::io::Error::other(format!("file task failed: {e}")),
    })?
}

/// When the caller stops waiting: nine tenths of its `grpc-timeout` from
/// now (the rest for the answer's way back); `None` without one or with
/// one that does not parse.
fn caller_deadline(metadata: &tonic::metadata::MetadataMap) -> Option<tokio::time::Instant> {
    let value = metadata.get("grpc-timeout")?.to_str().ok()?;
    let split = value.len().checked_sub(1)?;
    let (number, unit) = (value.get(..split)?, value.get(split..)?);
    let n: u64 = number.parse().ok()?;
    let timeout = match unit {
        "H" => std::time::Duration::from_secs(n.saturating_mul(3600)),
        "M" => std::time::Duration::from_secs(n.saturating_mul(60)),
        "S" => std::time::Duration::from_secs(n),
        "m" => std::time::Duration::from_millis(n),
        "u" => std::time::Duration::from_micros(n),
        "n" => std::time::Duration::from_nanos(n),
        _ => return None,
    };
    tokio::time::Instant::now().checked_add(timeout - timeout / 10)
}

/// Checks a tile id at the edge.
fn tile_id(field: &'static str, id: &str) -> Result<String> {
    TileId::parse(id)
        .map(TileId::into_string)
        .map_err(|e| Error::invalid(field, e.to_string()))
}

/// Checks a fencing token at the edge.
fn token(t: i64) -> Result<i64> {
    if t < 0 {
        Err(Error::invalid(
            "fencing_token",
            format!("must not be negative, got {t}"),
        ))
    } else {
        Ok(t)
    }
}

#[tonic::async_trait]
impl AgentService for Agent {
    #[instrument(skip(self, req), fields(
        tile_id = %req.get_ref().tile_id,
        revision = req.get_ref().revision,
        fencing_token = req.get_ref().fencing_token,
        rollout_id = %req.get_ref().rollout_id,
        changed,
    ))]
    async fn apply_tile(
        &self,
        req: Request<ApplyTileRequest>,
    ) -> Result<Response<ApplyTileResponse>, Status> {
        self.inner.faults.before_call("ApplyTile").await?;
        let deadline = caller_deadline(req.metadata());
        let r = req.into_inner();
        if r.revision < 0 {
            return Err(Error::invalid("revision", format!("must be positive, got {}", r.revision)).into());
        }
        let apply = Apply {
            tile_id: tile_id("tile_id", &r.tile_id)?,
            revision: r.revision,
            config: r.config,
            fencing_token: token(r.fencing_token)?,
            hidden: r.hidden,
        };
        let applied = self
            .apply(apply)
            .await
            .inspect_err(|e| tracing::info!(error = %e, "apply refused"))?;
        Span::current().record("changed", applied.changed);
        if applied.changed {
            tracing::info!(
                revision = applied.entry.revision,
                hidden = applied.entry.hidden,
                "tile applied"
            );
        }
        // The health gate's probe, in the same call when asked for.
        let health = if r.probe_after {
            self.tile_health(std::slice::from_ref(&applied.entry.tile_id), true, deadline)
                .await
                .into_iter()
                .next()
        } else {
            None
        };
        Ok(Response::new(ApplyTileResponse {
            entry: Some(applied.entry),
            changed: applied.changed,
            health,
        }))
    }

    #[instrument(skip(self, req), fields(
        tile_id = %req.get_ref().tile_id,
        fencing_token = req.get_ref().fencing_token,
        rollout_id = %req.get_ref().rollout_id,
        removed,
    ))]
    async fn remove_tile(
        &self,
        req: Request<RemoveTileRequest>,
    ) -> Result<Response<RemoveTileResponse>, Status> {
        self.inner.faults.before_call("RemoveTile").await?;
        let r = req.into_inner();
        let id = tile_id("tile_id", &r.tile_id)?;
        let removed = self
            .remove(&id, token(r.fencing_token)?)
            .await
            .inspect_err(|e| tracing::info!(error = %e, "remove refused"))?;
        Span::current().record("removed", removed);
        if removed {
            tracing::info!("tile removed");
        }
        Ok(Response::new(RemoveTileResponse { removed }))
    }

    #[instrument(skip(self, req))]
    async fn list_tiles(
        &self,
        req: Request<ListTilesRequest>,
    ) -> Result<Response<ListTilesResponse>, Status> {
        self.inner.faults.before_call("ListTiles").await?;
        let page =
            Page::parse(req.get_ref().page.as_ref()).map_err(|e| Error::invalid(e.field, e.message))?;
        let catalog = self.inner.catalog.lock().await;
        let (entries, next_page_token) = page.after_key(catalog.entries(), |e| e.tile_id.as_str());
        Ok(Response::new(ListTilesResponse {
            region: catalog.region().to_owned(),
            entries,
            next_page_token,
            catalog_generation: catalog.generation().to_owned(),
        }))
    }

    #[instrument(skip(self, req), fields(tiles = req.get_ref().tile_ids.len(), probe_now = req.get_ref().probe_now))]
    async fn health(&self, req: Request<HealthRequest>) -> Result<Response<HealthResponse>, Status> {
        self.inner.faults.before_call("Health").await?;
        let deadline = caller_deadline(req.metadata());
        let r = req.into_inner();
        // A probe per id: bounded like every list at the edge.
        tilewave_service::limits::count(
            "tile_ids",
            r.tile_ids.len(),
            tilewave_service::limits::MAX_LIST_ITEMS,
        )
        .map_err(|v| Error::invalid("tile_ids", v.message))?;
        for id in &r.tile_ids {
            tile_id("tile_ids", id)?;
        }
        let tiles = self.tile_health(&r.tile_ids, r.probe_now, deadline).await;
        Ok(Response::new(HealthResponse {
            region: self.inner.settings.region.clone(),
            tiles,
        }))
    }

    #[instrument(skip(self, req), fields(
        tile_id = %req.get_ref().tile_id,
        fingerprint = %req.get_ref().fingerprint,
        slot = req.get_ref().slot,
        fencing_token = req.get_ref().fencing_token,
        changed,
    ))]
    async fn install_credential(
        &self,
        req: Request<InstallCredentialRequest>,
    ) -> Result<Response<InstallCredentialResponse>, Status> {
        self.inner.faults.before_call("InstallCredential").await?;
        let install = self
            .install_request(req.into_inner())
            .inspect_err(|e| tracing::info!(error = %e, "credential refused"))?;
        let changed = self
            .install_credential(&install)
            .await
            .inspect_err(|e| tracing::info!(error = %e, "credential refused"))?;
        Span::current().record("changed", changed);
        if changed {
            tracing::info!(slot = install.slot.short_name(), "credential installed");
        }
        Ok(Response::new(InstallCredentialResponse {
            tile_id: install.tile_id,
            fingerprint: install.fingerprint,
            slot: install.slot as i32,
            changed,
        }))
    }

    #[instrument(skip(self, req), fields(
        tile_id = %req.get_ref().tile_id,
        fingerprint = %req.get_ref().fingerprint,
        ok,
    ))]
    async fn verify_credential(
        &self,
        req: Request<VerifyCredentialRequest>,
    ) -> Result<Response<VerifyCredentialResponse>, Status> {
        self.inner.faults.before_call("VerifyCredential").await?;
        let deadline = caller_deadline(req.metadata());
        let r = req.into_inner();
        let id = tile_id("tile_id", &r.tile_id)?;
        tilewave_service::limits::id("fingerprint", &r.fingerprint)
            .map_err(|v| Error::invalid("fingerprint", v.message))?;
        let (fingerprint, probe) = self
            .verify_credential(&id, &r.fingerprint, deadline)
            .await
            .inspect_err(|e| tracing::info!(error = %e, "verification refused"))?;
        let ok = probe.status() == tilewave_proto::common::v1::TestStatus::Pass;
        Span::current().record("ok", ok);
        tracing::info!(
            fingerprint,
            ok,
            http_status = probe.http_status,
            error_reason = %probe.error_reason,
            "credential verified"
        );
        Ok(Response::new(VerifyCredentialResponse {
            ok,
            fingerprint,
            probe: Some(probe),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_callers_deadline_is_read_from_grpc_timeout() {
        let with = |value: &str| {
            let mut m = tonic::metadata::MetadataMap::new();
            m.insert("grpc-timeout", value.parse().unwrap());
            caller_deadline(&m).map(|d| d.saturating_duration_since(tokio::time::Instant::now()))
        };
        let left = with("10S").unwrap();
        assert!(left <= std::time::Duration::from_secs(9) && left > std::time::Duration::from_secs(8));
        assert!(with("500m").unwrap() <= std::time::Duration::from_millis(450));
        assert!(with("2M").unwrap() > std::time::Duration::from_secs(100));
        for bad in ["", "S", "10", "10X", "-1S", "1.5S"] {
            assert!(with(bad).is_none(), "{bad:?}");
        }
        assert!(caller_deadline(&tonic::metadata::MetadataMap::new()).is_none());
    }
}
