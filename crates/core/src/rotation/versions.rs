//! A tile's credential versions and their stages ([`Versions`]): submit a
//! new one, promote it, retire the old one, discard one that never became
//! current.

use std::fmt;

use jiff::Timestamp;

/// Where one credential version stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Issued by the partner and (being) distributed; not used for calls.
    Pending,
    /// What every region calls the partner with.
    Current,
    /// The one before; still accepted by the partner until retired.
    Previous,
    /// No longer used or held anywhere (also a pending one discarded by a
    /// failed or cancelled rotation, or replaced before rotating).
    Retired,
}

impl Stage {
    /// Every stage, for tables.
    pub const ALL: [Stage; 4] = [Stage::Pending, Stage::Current, Stage::Previous, Stage::Retired];

    /// The upper-snake name used on the wire and in messages.
    pub fn name(&self) -> &'static str {
        match self {
            Stage::Pending => "PENDING",
            Stage::Current => "CURRENT",
            Stage::Previous => "PREVIOUS",
            Stage::Retired => "RETIRED",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One credential version of a tile. The secret itself is never here: only
/// its fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// Its number, from 1, in submission order.
    pub id: u64,
    /// Where it stands.
    pub stage: Stage,
    /// The fingerprint of the secret (e.g. `sha256:ab12…`).
    pub fingerprint: String,
    /// When it was submitted.
    pub created_at: Timestamp,
}

/// Why a change of a tile's versions is refused. The `Display` is the
/// user-facing message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// A new credential while a rotation holds the tile.
    #[error(
        "cannot submit a new credential for {tile}: rotation {rotation} is running; \
         wait for it to finish or cancel it with `tilewave creds cancel {tile}` first"
    )]
    Rotating {
        /// The tile.
        tile: String,
        /// The rotation holding it.
        rotation: String,
    },
    /// The fingerprint of a version still in use.
    #[error(
        "cannot submit a new credential for {tile}: its fingerprint is that of v{id} ({stage}); \
         ask the partner to issue a new secret"
    )]
    SameSecret {
        /// The tile.
        tile: String,
        /// The version with that fingerprint.
        id: u64,
        /// Its stage.
        stage: Stage,
    },
    /// An empty fingerprint.
    #[error("cannot submit a credential for {tile} without a fingerprint")]
    NoFingerprint {
        /// The tile.
        tile: String,
    },
    /// The version named is not in the stage the change needs.
    #[error("cannot {verb} v{id} of {tile}: it is {found}, not {wanted}")]
    WrongStage {
        /// The tile.
        tile: String,
        /// What was asked ("promote", "retire", "discard").
        verb: &'static str,
        /// The version.
        id: u64,
        /// Its stage.
        found: Stage,
        /// The stage the change needs.
        wanted: Stage,
    },
    /// No such version.
    #[error("{tile} has no credential v{id}")]
    NoSuchVersion {
        /// The tile.
        tile: String,
        /// The version asked for.
        id: u64,
    },
    /// Stored versions break the invariant.
    #[error("{tile} has {count} {stage} credential versions; at most one is allowed")]
    TooMany {
        /// The tile.
        tile: String,
        /// The stage.
        stage: Stage,
        /// How many.
        count: usize,
    },
}

/// A tile's credential versions. Invariant ([`Versions::check`]): at most
/// one each of PENDING, CURRENT and PREVIOUS; any number RETIRED.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versions {
    /// The tile.
    pub tile: String,
    /// Its versions, oldest first.
    pub versions: Vec<Version>,
}

impl Versions {
    /// A tile with no credential yet.
    pub fn new(tile: &str) -> Self {
        Self {
            tile: tile.to_owned(),
            versions: Vec::new(),
        }
    }

    /// The version in `stage` (the first, should the invariant be broken).
    pub fn in_stage(&self, stage: Stage) -> Option<&Version> {
        self.versions.iter().find(|v| v.stage == stage)
    }

    /// The pending version.
    pub fn pending(&self) -> Option<&Version> {
        self.in_stage(Stage::Pending)
    }

    /// The current version.
    pub fn current(&self) -> Option<&Version> {
        self.in_stage(Stage::Current)
    }

    /// The previous version.
    pub fn previous(&self) -> Option<&Version> {
        self.in_stage(Stage::Previous)
    }

    /// Version `id`.
    pub fn get(&self, id: u64) -> Option<&Version> {
        self.versions.iter().find(|v| v.id == id)
    }

    /// Checks the invariant: at most one PENDING, one CURRENT, one PREVIOUS.
    pub fn check(&self) -> Result<(), VersionError> {
        for stage in [Stage::Pending, Stage::Current, Stage::Previous] {
            let count = self.versions.iter().filter(|v| v.stage == stage).count();
            if count > 1 {
                return Err(VersionError::TooMany {
                    tile: self.tile.clone(),
                    stage,
                    count,
                });
            }
        }
        Ok(())
    }

    /// Adds a new PENDING version with `fingerprint` at `now`, numbered
    /// after the newest. `latest` is the tile's latest rotation: while it
    /// holds the tile ([`super::Rotation::holds`]) the submission is
    /// refused, since the pending version is the one being distributed.
    ///
    /// With no rotation running, a pending version that was never rotated
    /// is *replaced*: it is retired and the new one becomes pending (the
    /// partner issued a newer secret before we rotated to the older one;
    /// rotating to a secret the partner may already have revoked would
    /// fail). A fingerprint equal to a version not retired is refused.
    pub fn submit(
        &self,
        fingerprint: &str,
        now: Timestamp,
        latest: Option<&super::Rotation>,
    ) -> Result<(Self, u64), VersionError> {
        if let Some(r) = latest.filter(|r| r.holds()) {
            return Err(VersionError::Rotating {
                tile: self.tile.clone(),
                rotation: r.id.clone(),
            });
        }
        if fingerprint.trim().is_empty() {
            return Err(VersionError::NoFingerprint {
                tile: self.tile.clone(),
            });
        }
        if let Some(v) = self
            .versions
            .iter()
            .find(|v| v.stage != Stage::Retired && v.fingerprint == fingerprint)
        {
            return Err(VersionError::SameSecret {
                tile: self.tile.clone(),
                id: v.id,
                stage: v.stage,
            });
        }
        let mut next = self.clone();
        for v in &mut next.versions {
            if v.stage == Stage::Pending {
                v.stage = Stage::Retired;
            }
        }
        let id = self.versions.iter().map(|v| v.id).max().unwrap_or(0) + 1;
        next.versions.push(Version {
            id,
            stage: Stage::Pending,
            fingerprint: fingerprint.to_owned(),
            created_at: now,
        });
        Ok((next, id))
    }

    /// Promotes pending version `id`: it becomes CURRENT, the current one
    /// PREVIOUS, and an older PREVIOUS RETIRED. Promoting the version that
    /// is already current changes nothing (a replayed step).
    pub fn promote(&self, id: u64) -> Result<Self, VersionError> {
        let v = self.version(id)?;
        match v.stage {
            Stage::Current => return Ok(self.clone()),
            Stage::Pending => {}
            Stage::Previous | Stage::Retired => return Err(self.wrong("promote", v, Stage::Pending)),
        }
        let mut next = self.clone();
        for v in &mut next.versions {
            v.stage = match v.stage {
                Stage::Pending if v.id == id => Stage::Current,
                Stage::Current => Stage::Previous,
                Stage::Previous => Stage::Retired,
                other => other,
            };
        }
        Ok(next)
    }

    /// Retires previous version `id`. Retiring a retired version changes
    /// nothing (a replayed step).
    pub fn retire(&self, id: u64) -> Result<Self, VersionError> {
        self.to_retired(id, "retire", Stage::Previous)
    }

    /// Discards pending version `id` (its rotation failed or was
    /// cancelled): it is retired without ever being current. Discarding a
    /// retired version changes nothing.
    pub fn discard(&self, id: u64) -> Result<Self, VersionError> {
        self.to_retired(id, "discard", Stage::Pending)
    }

    fn to_retired(&self, id: u64, verb: &'static str, from: Stage) -> Result<Self, VersionError> {
        let v = self.version(id)?;
        if v.stage == Stage::Retired {
            return Ok(self.clone());
        }
        if v.stage != from {
            return Err(self.wrong(verb, v, from));
        }
        let mut next = self.clone();
        for v in &mut next.versions {
            if v.id == id {
                v.stage = Stage::Retired;
            }
        }
        Ok(next)
    }

    fn version(&self, id: u64) -> Result<&Version, VersionError> {
        self.get(id).ok_or_else(|| VersionError::NoSuchVersion {
            tile: self.tile.clone(),
            id,
        })
    }

    fn wrong(&self, verb: &'static str, v: &Version, wanted: Stage) -> VersionError {
        VersionError::WrongStage {
            tile: self.tile.clone(),
            verb,
            id: v.id,
            found: v.stage,
            wanted,
        }
    }
}
