//! The region's catalog as a pure value: which revision of which tile is
//! live, the newest fencing token seen per tile, and how many applies took
//! effect. No I/O here; [`crate::persist`] writes it to disk and
//! [`crate::service`] serialises changes and persists before it answers.
//!
//! Rules:
//! - **Fencing**: a call whose token is older than the newest seen for the
//!   tile is refused ([`Error::StaleToken`]) and changes nothing; an equal or
//!   newer token is accepted and remembered, even by a call that is
//!   otherwise a no-op, and even after the tile was removed (a removed tile
//!   keeps its record without a live entry).
//! - **Idempotence by (tile, revision)**: applying the live revision again
//!   changes nothing and counts nothing. Any other revision (newer, or older
//!   for a rollback) becomes live and counts one apply.
//! - **Hidden** toggles visibility without changing the revision and counts
//!   no apply; revision 0 with `hidden` set addresses the live revision.
//! - **Credentials** ([`crate::credentials`]) are kept per tile, fenced like
//!   applies, installed only while the tile is live, and kept (sealed) when
//!   it is removed.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use tilewave_core::quote::quoted;
use tilewave_proto::agent::v1::{CatalogEntry, CatalogFile, CatalogRecord};
use tilewave_proto::common::v1::PartnerConfig;
use tilewave_store::clock::{from_proto_timestamp, to_proto_timestamp};

use crate::credentials::{self, Credentials, Install, Installed};
use crate::error::{Error, Result};

/// The catalog file format this agent writes: 2, a snapshot with the
/// sequence of its last change and a change log beside it
/// ([`crate::persist`]).
pub const FORMAT_VERSION: u32 = 2;
/// The formats it reads: 1 (the whole catalog in the file, no log) too.
pub const READ_FORMAT_VERSIONS: [u32; 2] = [1, 2];

/// A fresh, random catalog generation: it changes every time a catalog is
/// created anew, so that reconciliation notices a reset catalog.
pub fn new_generation() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The revision of a tile that is live in the region.
#[derive(Debug, Clone, PartialEq)]
pub struct Live {
    /// The revision.
    pub revision: i64,
    /// Domain time it became live.
    pub applied_at: Timestamp,
    /// Hidden by a mitigation: in the catalog but not shown.
    pub hidden: bool,
    /// Its configuration, for the synthetic probe.
    pub config: Option<PartnerConfig>,
}

/// Everything the agent remembers about one tile.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TileRecord {
    /// The live revision; `None` once removed.
    pub live: Option<Live>,
    /// The newest fencing token seen for the tile (applies and removals).
    pub newest_token: i64,
    /// The newest fencing token of a credential call for the tile: the
    /// credentials service's owners are another work than the roll-outs',
    /// so their tokens are compared apart.
    pub newest_credential_token: i64,
    /// Applies that made a revision live.
    pub apply_count: i64,
    /// `apply_count` per revision.
    pub applies_by_revision: BTreeMap<i64, i64>,
    /// The installed credentials by fingerprint.
    pub credentials: Credentials,
    /// The partner's API given with the newest credential install, for
    /// verifying a credential of a tile that is not live (yet).
    pub credential_partner: Option<PartnerConfig>,
}

/// An ApplyTile request after edge validation.
#[derive(Debug, Clone, PartialEq)]
pub struct Apply {
    /// The tile.
    pub tile_id: String,
    /// The revision to make live; 0 only with `hidden` (the live one).
    pub revision: i64,
    /// The revision's configuration.
    pub config: Option<PartnerConfig>,
    /// The caller's fencing token.
    pub fencing_token: i64,
    /// Hide or show; `None` leaves visibility as it is.
    pub hidden: Option<bool>,
}

/// What an apply did.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The tile's entry afterwards.
    pub entry: CatalogEntry,
    /// False when the revision was already live and visibility unchanged.
    pub changed: bool,
}

/// One region's catalog.
///
/// Its records are shared (`Arc`) and copied on write
/// ([`Arc::make_mut`]): the durable copy readers see
/// ([`crate::writes`]) shares every record with the staged one but those
/// changed since the last write. A change is made in place through
/// [`Catalog::change`], which remembers the records it touches as they
/// were, so that a refused change is undone and the group commit learns
/// which tiles changed without comparing or copying the whole catalog
/// (issue 18's throughput run: a thousand tiles, each with its
/// configuration).
#[derive(Debug, Clone)]
pub struct Catalog {
    region: String,
    generation: String,
    tiles: BTreeMap<String, Arc<TileRecord>>,
    /// While [`Catalog::change`] runs: every tile it touched, with its
    /// record as it was before (`None`: there was none).
    journal: Option<Vec<(String, Option<Arc<TileRecord>>)>>,
}

impl PartialEq for Catalog {
    fn eq(&self, other: &Self) -> bool {
        self.region == other.region
            && self.generation == other.generation
            && self.tiles.len() == other.tiles.len()
            && self
                .tiles
                .iter()
                .zip(&other.tiles)
                .all(|((ka, a), (kb, b))| ka == kb && (Arc::ptr_eq(a, b) || a == b))
    }
}

impl Catalog {
    /// An empty catalog for `region` with a new generation.
    pub fn new(region: &str, generation: String) -> Self {
        Self {
            region: region.to_owned(),
            generation,
            tiles: BTreeMap::new(),
            journal: None,
        }
    }

    /// Makes `change` in place: on an error, every record it touched is
    /// put back as it was; otherwise returns its result and the tiles
    /// whose records it changed, sorted (a record it touched but left
    /// equal is put back shared, so the durable copy keeps sharing it).
    /// Costs the records touched, not the catalog. `change` must not call
    /// `change` again.
    pub fn change<R>(&mut self, change: impl FnOnce(&mut Catalog) -> Result<R>) -> Result<(R, Vec<String>)> {
        self.journal = Some(Vec::new());
        let result = change(self);
        let touched = self.journal.take().unwrap_or_default();
        match result {
            Err(e) => {
                for (id, before) in touched {
                    self.put_back(id, before);
                }
                Err(e)
            }
            Ok(r) => {
                let mut changed = Vec::new();
                for (id, before) in touched {
                    let same = match (&before, self.tiles.get(&id)) {
                        (Some(b), Some(now)) => Arc::ptr_eq(b, now) || b == now,
                        (None, None) => true,
                        _ => false,
                    };
                    if same {
                        self.put_back(id, before);
                    } else {
                        changed.push(id);
                    }
                }
                changed.sort();
                changed.dedup();
                Ok((r, changed))
            }
        }
    }

    fn put_back(&mut self, id: String, before: Option<Arc<TileRecord>>) {
        match before {
            Some(record) => {
                self.tiles.insert(id, record);
            }
            None => {
                self.tiles.remove(&id);
            }
        }
    }

    /// The record of `tile_id` to change (a new one if there is none),
    /// remembered in the journal first (see [`Catalog::change`]).
    fn record_mut(&mut self, tile_id: &str) -> &mut TileRecord {
        if let Some(journal) = &mut self.journal
            && !journal.iter().any(|(id, _)| id == tile_id)
        {
            journal.push((tile_id.to_owned(), self.tiles.get(tile_id).cloned()));
        }
        Arc::make_mut(self.tiles.entry(tile_id.to_owned()).or_default())
    }

    /// The shared record of a tile, for the group commit to write and
    /// install in the durable copy.
    pub fn shared_record(&self, tile_id: &str) -> Option<Arc<TileRecord>> {
        self.tiles.get(tile_id).cloned()
    }

    /// Puts records taken with [`Catalog::shared_record`] (from a catalog of
    /// the same region) in this one, and its generation if given: the
    /// durable copy after a write.
    pub fn install_records(&mut self, generation: Option<&str>, records: &[(String, Arc<TileRecord>)]) {
        if let Some(g) = generation {
            g.clone_into(&mut self.generation);
        }
        for (id, record) in records {
            self.tiles.insert(id.clone(), Arc::clone(record));
        }
    }

    /// Applies a log record's changes (see [`crate::persist`]): the new
    /// generation when not empty, and each tile's full record in place of
    /// the one it had. The error says what is wrong.
    pub fn replay(&mut self, generation: &str, tiles: Vec<CatalogRecord>) -> std::result::Result<(), String> {
        if !generation.is_empty() {
            generation.clone_into(&mut self.generation);
        }
        for rec in tiles {
            let (id, record) = record_from_file(rec)?;
            self.tiles.insert(id, Arc::new(record));
        }
        Ok(())
    }

    /// The region it belongs to.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Its generation.
    pub fn generation(&self) -> &str {
        &self.generation
    }

    /// The record of a tile, live or removed.
    pub fn record(&self, tile_id: &str) -> Option<&TileRecord> {
        self.tiles.get(tile_id).map(|r| &**r)
    }

    /// The live tiles, sorted by id.
    pub fn live(&self) -> impl Iterator<Item = (&str, &TileRecord, &Live)> {
        self.tiles
            .iter()
            .filter_map(|(id, r)| r.live.as_ref().map(|l| (id.as_str(), &**r, l)))
    }

    /// How many tiles are live.
    pub fn len(&self) -> usize {
        self.live().count()
    }

    /// Whether no tile is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Refuses a token older than the newest seen for the tile.
    fn check_token(&self, tile_id: &str, token: i64) -> Result<()> {
        let newest = self.tiles.get(tile_id).map_or(0, |r| r.newest_token);
        if token < newest {
            return Err(Error::StaleToken {
                tile: tile_id.to_owned(),
                token,
                newest,
            });
        }
        Ok(())
    }

    /// Applies a revision (or a visibility change); see the module docs.
    pub fn apply(&mut self, req: Apply, now: Timestamp) -> Result<Applied> {
        self.check_token(&req.tile_id, req.fencing_token)?;
        let current = self.tiles.get(&req.tile_id).and_then(|r| r.live.as_ref());
        if req.revision == 0 {
            if req.hidden.is_none() {
                return Err(Error::invalid(
                    "revision",
                    "must be positive (0 only with `hidden`, to hide or show the live revision)",
                ));
            }
            if current.is_none() {
                return Err(Error::NotFound(req.tile_id));
            }
        }
        let record = self.record_mut(&req.tile_id);
        record.newest_token = record.newest_token.max(req.fencing_token);
        let changed = match &mut record.live {
            Some(live) if req.revision == 0 || live.revision == req.revision => match req.hidden {
                Some(h) if h != live.hidden => {
                    live.hidden = h;
                    true
                }
                _ => false,
            },
            previous => {
                let old = previous.take();
                *previous = Some(Live {
                    revision: req.revision,
                    applied_at: now,
                    hidden: req.hidden.or(old.as_ref().map(|l| l.hidden)).unwrap_or(false),
                    config: req.config,
                });
                record.apply_count += 1;
                *record.applies_by_revision.entry(req.revision).or_default() += 1;
                true
            }
        };
        // Live by now: the revision was kept or made live above.
        let entry = entry_of(&req.tile_id, record).ok_or(Error::NotFound(req.tile_id))?;
        Ok(Applied { entry, changed })
    }

    /// Removes a tile; `Ok(false)` when it was not live. Fenced like
    /// [`Catalog::apply`].
    pub fn remove(&mut self, tile_id: &str, fencing_token: i64) -> Result<bool> {
        self.check_token(tile_id, fencing_token)?;
        let record = self.record_mut(tile_id);
        record.newest_token = record.newest_token.max(fencing_token);
        Ok(record.live.take().is_some())
    }

    /// Installs, moves or retires a credential (see [`crate::credentials`]);
    /// whether anything changed. Fenced like [`Catalog::apply`]. The tile
    /// need not be live, but then its partner's API must be known (given
    /// now or with an earlier install) so the credential can be verified.
    /// On an error nothing changes.
    pub fn install_credential(&mut self, req: &Install, now: Timestamp) -> Result<bool> {
        let newest = self
            .tiles
            .get(&req.tile_id)
            .map_or(0, |r| r.newest_credential_token);
        if req.fencing_token < newest {
            return Err(Error::StaleToken {
                tile: req.tile_id.clone(),
                token: req.fencing_token,
                newest,
            });
        }
        let known = self
            .tiles
            .get(&req.tile_id)
            .is_some_and(|r| r.live.is_some() || r.credential_partner.is_some());
        if !known && req.partner.is_none() {
            return Err(not_installed(&req.tile_id));
        }
        // Checked on a copy of the tile's credentials first: a refused
        // install leaves no record behind.
        let mut creds = self
            .tiles
            .get(&req.tile_id)
            .map(|r| r.credentials.clone())
            .unwrap_or_default();
        let changed = credentials::set_slot(&mut creds, req, now)?;
        let record = self.record_mut(&req.tile_id);
        record.credentials = creds;
        record.newest_credential_token = record.newest_credential_token.max(req.fencing_token);
        if let Some(p) = &req.partner {
            record.credential_partner = Some(p.clone());
        }
        Ok(changed)
    }

    /// A tile's installed credential by fingerprint (empty: the CURRENT
    /// one), with its fingerprint.
    pub fn credential(&self, tile_id: &str, fingerprint: &str) -> Result<(String, Installed)> {
        let record = self
            .tiles
            .get(tile_id)
            .filter(|r| r.live.is_some() || !r.credentials.is_empty())
            .ok_or_else(|| not_installed(tile_id))?;
        let found = if fingerprint.is_empty() {
            credentials::current(&record.credentials)
        } else {
            record
                .credentials
                .get_key_value(fingerprint)
                .map(|(fp, c)| (fp.as_str(), c))
        };
        match found {
            Some((fp, c)) => Ok((fp.to_owned(), c.clone())),
            None if fingerprint.is_empty() => Err(Error::Precondition(format!(
                "tile {tile_id} has no CURRENT credential"
            ))),
            None => Err(Error::Precondition(format!(
                "credential {} is not installed for tile {tile_id}",
                quoted(fingerprint)
            ))),
        }
    }

    /// Re-wraps every stored credential (of live and removed tiles) whose
    /// data key another KEK than `ring`'s primary wraps; how many moved.
    /// On an error nothing changes (see [`credentials::rewrap`]).
    pub fn rewrap_credentials(&mut self, ring: &tilewave_secrets::Keyring) -> Result<usize> {
        let mut tiles = self.tiles.clone();
        let mut moved = 0;
        for (tile_id, record) in &mut tiles {
            moved += credentials::rewrap(tile_id, &mut Arc::make_mut(record).credentials, ring)?;
        }
        if moved > 0 {
            if let Some(journal) = &mut self.journal {
                for (id, record) in &self.tiles {
                    let same = tiles.get(id).is_some_and(|r| Arc::ptr_eq(r, record));
                    if !same && !journal.iter().any(|(j, _)| j == id) {
                        journal.push((id.clone(), Some(Arc::clone(record))));
                    }
                }
            }
            self.tiles = tiles;
        }
        Ok(moved)
    }

    /// How many credentials are stored, over all tiles.
    pub fn credential_count(&self) -> usize {
        self.tiles.values().map(|r| r.credentials.len()).sum()
    }

    /// The live entries, sorted by tile id.
    pub fn entries(&self) -> Vec<CatalogEntry> {
        self.tiles.iter().filter_map(|(id, r)| entry_of(id, r)).collect()
    }

    /// The entry of one live tile.
    pub fn entry(&self, tile_id: &str) -> Option<CatalogEntry> {
        self.tiles.get(tile_id).and_then(|r| entry_of(tile_id, r))
    }

    /// The file form (sequence 0: [`crate::persist`] sets it).
    pub fn to_file(&self) -> CatalogFile {
        CatalogFile {
            format_version: FORMAT_VERSION,
            region: self.region.clone(),
            generation: self.generation.clone(),
            tiles: self.tiles.iter().map(|(id, r)| record_to_file(id, r)).collect(),
            sequence: 0,
        }
    }

    /// From the file form; the error says what is wrong.
    pub fn from_file(file: CatalogFile) -> std::result::Result<Self, String> {
        if !READ_FORMAT_VERSIONS.contains(&file.format_version) {
            return Err(format!(
                "format version {} (this agent reads {READ_FORMAT_VERSIONS:?})",
                file.format_version
            ));
        }
        let mut tiles = BTreeMap::new();
        for rec in file.tiles {
            let (id, record) = record_from_file(rec)?;
            if tiles.contains_key(&id) {
                return Err(format!("tile {id} appears twice"));
            }
            tiles.insert(id, Arc::new(record));
        }
        Ok(Self {
            region: file.region,
            generation: file.generation,
            tiles,
            journal: None,
        })
    }
}

/// A tile's record in the file form (the snapshot's and the log's).
pub fn record_to_file(id: &str, r: &TileRecord) -> CatalogRecord {
    CatalogRecord {
        tile_id: id.to_owned(),
        entry: entry_of(id, r),
        config: r.live.as_ref().and_then(|l| l.config.clone()),
        newest_fencing_token: r.newest_token,
        newest_credential_token: r.newest_credential_token,
        apply_count: r.apply_count,
        applies_by_revision: r.applies_by_revision.iter().map(|(k, v)| (*k, *v)).collect(),
        credentials: credentials::to_file(&r.credentials),
        credential_partner: r.credential_partner.clone(),
    }
}

/// A tile's record from the file form; the error says what is wrong.
fn record_from_file(rec: CatalogRecord) -> std::result::Result<(String, TileRecord), String> {
    let live = match rec.entry {
        None => None,
        Some(e) => {
            let applied_at = match &e.applied_at {
                Some(t) => from_proto_timestamp(t).map_err(|err| format!("tile {}: {err}", rec.tile_id))?,
                None => return Err(format!("tile {}: entry without applied_at", rec.tile_id)),
            };
            Some(Live {
                revision: e.revision,
                applied_at,
                hidden: e.hidden,
                config: rec.config,
            })
        }
    };
    let record = TileRecord {
        live,
        newest_token: rec.newest_fencing_token,
        newest_credential_token: rec.newest_credential_token,
        apply_count: rec.apply_count,
        applies_by_revision: rec.applies_by_revision.into_iter().collect(),
        credentials: credentials::from_file(&rec.tile_id, rec.credentials)?,
        credential_partner: rec.credential_partner,
    };
    Ok((rec.tile_id, record))
}

/// The wire entry of a live tile.
fn entry_of(tile_id: &str, r: &TileRecord) -> Option<CatalogEntry> {
    r.live.as_ref().map(|l| CatalogEntry {
        tile_id: tile_id.to_owned(),
        revision: l.revision,
        applied_at: Some(to_proto_timestamp(l.applied_at)),
        fencing_token: r.newest_token,
        hidden: l.hidden,
        credential_fingerprint: credentials::current(&r.credentials)
            .map(|(fp, _)| fp.to_owned())
            .unwrap_or_default(),
        apply_count: r.apply_count,
        applies_by_revision: r.applies_by_revision.iter().map(|(k, v)| (*k, *v)).collect(),
        credentials: r
            .credentials
            .iter()
            .map(|(fp, c)| credentials::info(fp, c))
            .collect(),
    })
}

/// A credential call on a tile that is not live here and whose partner's
/// API the agent does not know.
fn not_installed(tile_id: &str) -> Error {
    Error::Precondition(format!(
        "tile {} is not installed in this region and no partner API was given with its credential: apply it, or install the credential with `partner`",
        quoted(tile_id)
    ))
}

impl Catalog {
    /// The partner's API to verify a tile's credential against: the live
    /// revision's configuration, else the one given with its credential.
    pub fn verification_partner(&self, tile_id: &str) -> Option<PartnerConfig> {
        let record = self.tiles.get(tile_id)?;
        record
            .live
            .as_ref()
            .and_then(|l| l.config.clone())
            .or_else(|| record.credential_partner.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tilewave_proto::agent::v1::CredentialSlot;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    fn apply(tile: &str, revision: i64, token: i64) -> Apply {
        Apply {
            tile_id: tile.into(),
            revision,
            config: Some(PartnerConfig {
                name: format!("{tile} r{revision}"),
                ..Default::default()
            }),
            fencing_token: token,
            hidden: None,
        }
    }

    fn catalog() -> Catalog {
        Catalog::new("aws:eu-west-1", "g1".into())
    }

    #[test]
    fn a_copy_shares_its_records_until_one_changes() {
        let mut c = catalog();
        c.apply(apply("riverflow", 1, 7), t(100)).unwrap();
        c.apply(apply("lumen", 1, 7), t(100)).unwrap();
        let mut copy = c.clone();
        assert!(Arc::ptr_eq(&c.tiles["lumen"], &copy.tiles["lumen"]));
        assert_eq!(copy, c);
        // Applying what is live copies that record and changes nothing.
        copy.apply(apply("riverflow", 1, 7), t(200)).unwrap();
        assert!(!Arc::ptr_eq(&c.tiles["riverflow"], &copy.tiles["riverflow"]));
        assert_eq!(copy, c, "an equal record that is not shared compares by value");
        // A new revision changes the copy only.
        copy.apply(apply("riverflow", 2, 8), t(300)).unwrap();
        assert_ne!(copy, c);
        assert_eq!(
            c.record("riverflow")
                .and_then(|r| r.live.as_ref())
                .map(|l| l.revision),
            Some(1)
        );
        assert!(Arc::ptr_eq(&c.tiles["lumen"], &copy.tiles["lumen"]));
    }

    #[test]
    fn a_change_in_place_names_what_it_changed_and_a_refused_one_is_undone() {
        let mut c = catalog();
        let (applied, changed) = c
            .change(|c| {
                c.apply(apply("riverflow", 1, 7), t(100))?;
                c.apply(apply("lumen", 1, 7), t(100))
            })
            .unwrap();
        assert!(applied.changed);
        assert_eq!(changed, ["lumen", "riverflow"]);
        let durable = c.clone();
        // A no-op changes nothing and keeps the record shared.
        let (_, changed) = c.change(|c| c.apply(apply("riverflow", 1, 7), t(200))).unwrap();
        assert!(changed.is_empty());
        assert!(Arc::ptr_eq(&c.tiles["riverflow"], &durable.tiles["riverflow"]));
        // A change refused half-way is undone: the first tile it touched
        // and the new record it made are put back as they were.
        let e = c.change(|c| {
            c.apply(apply("riverflow", 2, 8), t(300))?;
            c.remove("new-tile", 1)?;
            c.apply(apply("lumen", 2, 1), t(300))
        });
        assert!(matches!(e, Err(Error::StaleToken { .. })), "{e:?}");
        assert_eq!(c, durable);
        assert!(c.record("new-tile").is_none());
        assert!(Arc::ptr_eq(&c.tiles["riverflow"], &durable.tiles["riverflow"]));
        // A refused credential install leaves no record behind either.
        let mut req = install("ghost", "fp", CredentialSlot::Unspecified, 1);
        req.partner = Some(partner("http://localhost:9"));
        assert!(c.change(|c| c.install_credential(&req, t(1))).is_err());
        assert!(c.install_credential(&req, t(1)).is_err());
        assert!(c.record("ghost").is_none());
        assert_eq!(c, durable);
    }

    #[test]
    fn applying_the_same_revision_twice_counts_once() {
        let mut c = catalog();
        let first = c.apply(apply("riverflow", 1, 7), t(100)).unwrap();
        assert!(first.changed);
        assert_eq!(first.entry.apply_count, 1);
        let again = c.apply(apply("riverflow", 1, 7), t(200)).unwrap();
        assert!(!again.changed);
        assert_eq!(again.entry.apply_count, 1);
        assert_eq!(
            again.entry.applied_at,
            Some(to_proto_timestamp(t(100))),
            "a no-op keeps the time"
        );
        assert_eq!(again.entry.applies_by_revision.get(&1), Some(&1));
    }

    #[test]
    fn a_new_revision_and_a_rollback_each_count() {
        let mut c = catalog();
        c.apply(apply("riverflow", 1, 7), t(100)).unwrap();
        let r2 = c.apply(apply("riverflow", 2, 7), t(200)).unwrap();
        assert!(r2.changed);
        assert_eq!(r2.entry.revision, 2);
        let back = c.apply(apply("riverflow", 1, 8), t(300)).unwrap();
        assert!(back.changed);
        assert_eq!(back.entry.revision, 1);
        assert_eq!(back.entry.apply_count, 3);
        assert_eq!(back.entry.applies_by_revision.get(&1), Some(&2));
        assert_eq!(back.entry.applies_by_revision.get(&2), Some(&1));
        assert_eq!(back.entry.fencing_token, 8);
        let rec = c.record("riverflow").unwrap();
        assert_eq!(
            rec.live.as_ref().unwrap().config.as_ref().unwrap().name,
            "riverflow r1"
        );
    }

    #[test]
    fn a_stale_token_is_refused_and_changes_nothing() {
        let mut c = catalog();
        c.apply(apply("riverflow", 1, 9), t(100)).unwrap();
        let before = c.clone();
        let e = c.apply(apply("riverflow", 2, 8), t(200)).unwrap_err();
        assert!(
            matches!(
                e,
                Error::StaleToken {
                    token: 8,
                    newest: 9,
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(e.to_string(), "stale fencing token 8 < 9 for tile riverflow");
        assert_eq!(c, before);
        let e = c.remove("riverflow", 3).unwrap_err();
        assert!(matches!(
            e,
            Error::StaleToken {
                token: 3,
                newest: 9,
                ..
            }
        ));
        assert_eq!(c, before);
    }

    #[test]
    fn a_newer_token_is_remembered_even_by_a_no_op() {
        let mut c = catalog();
        c.apply(apply("riverflow", 1, 5), t(100)).unwrap();
        let same = c.apply(apply("riverflow", 1, 11), t(200)).unwrap();
        assert!(!same.changed);
        assert_eq!(same.entry.fencing_token, 11);
        assert!(c.apply(apply("riverflow", 1, 10), t(300)).is_err());
        // Equal is accepted.
        assert!(c.apply(apply("riverflow", 1, 11), t(300)).is_ok());
    }

    #[test]
    fn tokens_are_per_tile() {
        let mut c = catalog();
        c.apply(apply("riverflow", 1, 50), t(100)).unwrap();
        assert!(c.apply(apply("lumen-bi", 1, 2), t(100)).unwrap().changed);
    }

    #[test]
    fn hidden_toggles_visibility_without_a_new_revision_or_count() {
        let mut c = catalog();
        c.apply(apply("riverflow", 3, 1), t(100)).unwrap();
        let hide = c
            .apply(
                Apply {
                    hidden: Some(true),
                    ..apply("riverflow", 3, 1)
                },
                t(200),
            )
            .unwrap();
        assert!(hide.changed);
        assert!(hide.entry.hidden);
        assert_eq!(hide.entry.revision, 3);
        assert_eq!(hide.entry.apply_count, 1);
        let again = c
            .apply(
                Apply {
                    hidden: Some(true),
                    ..apply("riverflow", 3, 1)
                },
                t(200),
            )
            .unwrap();
        assert!(!again.changed);
        // Revision 0 addresses the live revision.
        let show = c
            .apply(
                Apply {
                    revision: 0,
                    hidden: Some(false),
                    config: None,
                    ..apply("riverflow", 0, 1)
                },
                t(300),
            )
            .unwrap();
        assert!(show.changed);
        assert!(!show.entry.hidden);
        assert_eq!(show.entry.revision, 3);
        assert_eq!(
            c.record("riverflow")
                .unwrap()
                .live
                .as_ref()
                .unwrap()
                .config
                .as_ref()
                .unwrap()
                .name,
            "riverflow r3"
        );
        // A new revision keeps a mitigation's hiding unless told otherwise.
        c.apply(
            Apply {
                hidden: Some(true),
                ..apply("riverflow", 3, 1)
            },
            t(400),
        )
        .unwrap();
        assert!(c.apply(apply("riverflow", 4, 1), t(500)).unwrap().entry.hidden);
    }

    #[test]
    fn revision_zero_needs_hidden_and_a_live_tile() {
        let mut c = catalog();
        assert!(matches!(
            c.apply(apply("riverflow", 0, 1), t(1)),
            Err(Error::Invalid {
                field: "revision",
                ..
            })
        ));
        let hide = Apply {
            hidden: Some(true),
            ..apply("riverflow", 0, 1)
        };
        assert!(matches!(c.apply(hide, t(1)), Err(Error::NotFound(_))));
        assert_eq!(c, catalog());
    }

    #[test]
    fn remove_is_idempotent_and_keeps_the_token() {
        let mut c = catalog();
        c.apply(apply("riverflow", 1, 4), t(100)).unwrap();
        assert!(c.remove("riverflow", 5).unwrap());
        assert!(!c.remove("riverflow", 5).unwrap());
        assert!(c.entries().is_empty());
        assert!(
            c.apply(apply("riverflow", 1, 4), t(200)).is_err(),
            "the removal's token is remembered"
        );
        let back = c.apply(apply("riverflow", 1, 5), t(200)).unwrap();
        assert!(back.changed);
        assert_eq!(back.entry.apply_count, 2);
    }

    #[test]
    fn entries_are_sorted_and_round_trip_through_the_file_form() {
        let mut c = catalog();
        c.apply(apply("zeta", 1, 1), t(100)).unwrap();
        c.apply(apply("alpha", 2, 3), t(200)).unwrap();
        c.apply(apply("mid", 1, 1), t(300)).unwrap();
        c.remove("mid", 2).unwrap();
        let ids: Vec<_> = c.entries().into_iter().map(|e| e.tile_id).collect();
        assert_eq!(ids, ["alpha", "zeta"]);
        let back = Catalog::from_file(c.to_file()).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.record("mid").unwrap().newest_token, 2);
    }

    #[test]
    fn a_file_of_another_format_is_refused() {
        let mut f = catalog().to_file();
        f.format_version = 9;
        assert!(Catalog::from_file(f).unwrap_err().contains("format version 9"));
    }

    fn install(tile: &str, fp: &str, slot: CredentialSlot, token: i64) -> Install {
        Install {
            tile_id: tile.into(),
            fingerprint: fp.into(),
            slot,
            username: "tilewave".into(),
            secret: Some(credentials::NewSecret {
                username: "tilewave".into(),
                sealed: tilewave_secrets::Sealed {
                    kek_id: "k".into(),
                    wrapped_dek: vec![1; 48],
                    dek_nonce: vec![2; 12],
                    nonce: vec![3; 12],
                    ciphertext: vec![4; 20],
                },
                credential_id: String::new(),
            }),
            fencing_token: token,
            partner: None,
        }
    }

    fn partner(base_url: &str) -> PartnerConfig {
        PartnerConfig {
            base_url: base_url.into(),
            ..PartnerConfig::default()
        }
    }

    #[test]
    fn a_credential_for_a_tile_not_live_here_needs_its_partner_api() {
        use CredentialSlot::*;
        let mut c = catalog();
        let mut req = install("riverflow", "fp-a", Current, 1);
        req.partner = Some(partner("http://localhost:9"));
        assert!(c.install_credential(&req, t(1)).unwrap());
        assert_eq!(
            c.entry("riverflow"),
            None,
            "not live: not in the catalog's entries"
        );
        assert_eq!(c.credential("riverflow", "").unwrap().0, "fp-a");
        assert_eq!(
            c.verification_partner("riverflow").unwrap().base_url,
            "http://localhost:9"
        );
        // A later install without it keeps the one known.
        assert!(
            c.install_credential(&install("riverflow", "fp-b", Pending, 2), t(2))
                .unwrap()
        );
        assert_eq!(
            c.verification_partner("riverflow").unwrap().base_url,
            "http://localhost:9"
        );
        assert_eq!(Catalog::from_file(c.to_file()).unwrap(), c, "kept in the file");
        // Once live, the live revision's configuration wins.
        let mut a = apply("riverflow", 1, 3);
        a.config = Some(partner("http://127.0.0.1:8"));
        c.apply(a, t(100)).unwrap();
        assert_eq!(
            c.verification_partner("riverflow").unwrap().base_url,
            "http://127.0.0.1:8"
        );
        assert_eq!(c.entry("riverflow").unwrap().credential_fingerprint, "fp-a");
    }

    #[test]
    fn credentials_need_a_live_tile_or_a_partner_api_are_fenced_and_round_trip() {
        use CredentialSlot::*;
        let mut c = catalog();
        let e = c.install_credential(&install("riverflow", "fp-a", Current, 1), t(1));
        assert!(matches!(e, Err(Error::Precondition(_))), "{e:?}");
        assert_eq!(c, catalog(), "a refusal leaves no record behind");
        c.apply(apply("riverflow", 1, 3), t(100)).unwrap();
        assert!(
            c.install_credential(&install("riverflow", "fp-a", Current, 3), t(2))
                .unwrap()
        );
        assert!(
            c.install_credential(&install("riverflow", "fp-b", Pending, 4), t(3))
                .unwrap()
        );
        let before = c.clone();
        assert!(matches!(
            c.install_credential(&install("riverflow", "fp-b", Current, 3), t(4)),
            Err(Error::StaleToken { .. })
        ));
        assert_eq!(c, before);
        let entry = c.entry("riverflow").unwrap();
        assert_eq!(entry.credential_fingerprint, "fp-a");
        assert_eq!(
            entry.fencing_token, 3,
            "a credential call's token is kept apart from the applies'"
        );
        assert_eq!(c.record("riverflow").unwrap().newest_credential_token, 4);
        // An apply with an older token than the credential calls' still
        // goes through: the two works are fenced apart.
        c.apply(apply("riverflow", 1, 3), t(101)).unwrap();
        assert_eq!(entry.credentials.len(), 2);
        assert_eq!(c.credential("riverflow", "").unwrap().0, "fp-a");
        assert_eq!(c.credential("riverflow", "fp-b").unwrap().1.slot, Pending);
        assert!(matches!(
            c.credential("riverflow", "fp-z"),
            Err(Error::Precondition(_))
        ));
        assert_eq!(Catalog::from_file(c.to_file()).unwrap(), c);
        // A removed tile keeps its credentials (they can still be
        // verified against the partner), but is no longer in the catalog.
        c.remove("riverflow", 5).unwrap();
        assert_eq!(c.entry("riverflow"), None);
        assert_eq!(c.credential("riverflow", "").unwrap().0, "fp-a");
        assert_eq!(c.record("riverflow").unwrap().credentials.len(), 2);
        c.apply(apply("riverflow", 2, 5), t(200)).unwrap();
        assert_eq!(c.entry("riverflow").unwrap().credential_fingerprint, "fp-a");
    }
}
