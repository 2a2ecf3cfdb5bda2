//! What the RPCs and the driver share: the context ([`Ctx`]) and reading
//! and writing the stored records.
//!
//! Layout (every key built by `tilewave_store::Keys`):
//! `credentials/<tile>/<kind>/versions` (`CredentialVersions`: metadata and
//! stages, never a secret), `credentials/<tile>/<kind>/secrets/<version>`
//! (`StoredSecret`: the envelope-encrypted secret),
//! `credential-rotations/<id>` (`Rotation`),
//! `credential-rotation-active/<tile>/<kind>` (the running rotation's id,
//! created and deleted with it), `credential-schedules/<tile>/<kind>`,
//! `owners/credential-rotation-<id>`.

use std::sync::Arc;
use std::time::Duration;

use tilewave_clients::Agents;
use tilewave_core::regions::RegionCatalog;
use tilewave_proto::credentials::v1::{CredentialKind, CredentialVersions, Rotation, StoredSecret};
use tilewave_proto::registry::v1::Tile;
use tilewave_secrets::{Keyring, Secret};
use tilewave_store::{Actor, Clock, Keys, Store, Versioned, WatchCache};

use crate::convert::{self, kind_name};
use crate::error::{Error, Result};

/// Everything the RPCs and the driver share.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// etcd, with the domain clock.
    pub store: Store,
    /// Domain time.
    pub clock: Arc<dyn Clock>,
    /// The region agents.
    pub agents: Agents,
    /// The regions that exist.
    pub catalog: Arc<RegionCatalog>,
    /// The key-encryption keys.
    pub keyring: Arc<Keyring>,
    /// Every tile (read-only; the registry writes them).
    pub tiles: Arc<WatchCache<Tile>>,
    /// Every rotation, watch-backed.
    pub rotations: Arc<WatchCache<Rotation>>,
    /// Every tile's credential versions (`credentials/*/*/versions`),
    /// watch-backed: metadata only.
    pub versions: Arc<WatchCache<CredentialVersions>>,
    /// This replica's name in owner records.
    pub holder: String,
    /// Lease TTL of owned work.
    pub ttl: Duration,
    /// The actor of the service's own changes.
    pub actor: Actor,
    /// Test only: the step boundary to crash at (`--crash-at`).
    pub crash_at: Option<crate::driver::CrashPoint>,
    /// The wait before a failed region's second attempt when a rotation's
    /// request names none (`--rotation-retry-delay-ms`).
    pub retry_delay: jiff::SignedDuration,
}

impl Ctx {
    /// The key builder.
    pub fn keys(&self) -> &Keys {
        self.store.keys()
    }

    /// A tile from the cache; NOT_FOUND naming it otherwise.
    pub fn tile(&self, id: &str) -> Result<Tile> {
        self.tiles
            .get(&self.keys().tile(id))
            .map(|t| t.value)
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "no tile {}: `tilewave tile list` shows the tiles",
                    tilewave_core::quote::quoted(id)
                ))
            })
    }

    /// The stored versions of a tile's credential of `kind`.
    pub async fn versions(
        &self,
        tile: &str,
        kind: CredentialKind,
    ) -> Result<Option<Versioned<CredentialVersions>>> {
        Ok(self
            .store
            .get::<CredentialVersions>(&self.keys().credential_versions(tile, &kind_name(kind)))
            .await?)
    }

    /// The secret of one version, opened with the keyring (plaintext only
    /// in memory, in a redacting type).
    pub async fn secret(&self, tile: &str, kind: CredentialKind, version: u64) -> Result<Secret> {
        let kind = kind_name(kind);
        let key = self.keys().credential_secret(tile, &kind, version);
        let stored = self
            .store
            .get::<StoredSecret>(&key)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no secret stored for {tile}/{kind}/{version}")))?;
        let enc = stored.value.encrypted.unwrap_or_default();
        Ok(self
            .keyring
            .open(&convert::sealed(&enc), &convert::aad(tile, &kind, version))?)
    }

    /// The rotation `id` (stored, with its etag).
    pub async fn rotation(&self, id: &str) -> Result<Versioned<Rotation>> {
        self.store
            .get::<Rotation>(&self.keys().credential_rotation(id))
            .await?
            .ok_or_else(|| Error::NotFound(format!("no rotation {}", tilewave_core::quote::quoted(id))))
    }

    /// The running rotation of a tile's credential, else its latest, from
    /// the cache.
    pub fn latest_rotation(&self, tile: &str, kind: CredentialKind) -> Option<Versioned<Rotation>> {
        let mut of: Vec<_> = self
            .rotations
            .list()
            .into_iter()
            .filter(|r| r.value.tile_id == tile && r.value.kind == kind as i32)
            .collect();
        of.sort_by_key(|r| (!terminal(r.value.state), r.create_revision));
        of.pop()
    }
}

/// Whether a wire rotation state is terminal.
pub fn terminal(state: i32) -> bool {
    use tilewave_proto::credentials::v1::RotationState as S;
    matches!(S::try_from(state), Ok(S::Completed | S::Failed | S::Cancelled))
}
