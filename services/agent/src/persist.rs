//! The agent's files in `--data-dir`: the catalog (the snapshot
//! `catalog.pb` and the change log `catalog.log` beside it) and the
//! refuse-to-start flag.
//!
//! **Snapshot.** `catalog.pb` is a protobuf `CatalogFile`: the whole
//! catalog and the sequence number of the last group of changes it
//! includes. It is written whole and atomically: to `catalog.pb.tmp`,
//! fsync, rename over `catalog.pb`, fsync of the directory; a crash at any
//! point leaves either the old or the new file, never a torn one.
//!
//! **Log.** `catalog.log` is append-only: one record per group commit
//! ([`crate::writes`]), framed as a 4-byte little-endian length, a 4-byte
//! little-endian CRC32 of the payload, and the payload, a protobuf
//! `CatalogLogRecord`: its sequence number (one more than the last one
//! given out, by a record or a snapshot), the region, the generation if it
//! changed, and the full records of the tiles the group changed. A group
//! commit appends one record and `fdatasync`s the log (the directory is
//! fsynced once, when the log is created); its changes are acknowledged
//! only after that. So a change costs its records, not the catalog.
//!
//! **Load** reads the snapshot, then replays the log's records whose
//! sequence is greater than the snapshot's, in order. A short or
//! CRC-failing record with no whole record after it is a torn tail (a write
//! that was never acknowledged): it is dropped, and the next write is a
//! compaction, which truncates it away. A bad record followed by a good
//! one, a record that does not decode, a record of another region, or
//! sequence numbers that do not increase are corruption: the agent refuses
//! to start ([`Error::Corrupt`], naming the file and the record's offset).
//!
//! **Compaction** ([`CatalogLog::compact`]) writes a new snapshot the
//! atomic way, with the next sequence number, then truncates the log (and
//! syncs the truncation, so that no later append can land behind old
//! bytes). A crash between the snapshot's rename and the truncation leaves
//! a log whose records are all at most the snapshot's sequence: load skips
//! them. See [`CatalogLog::wants_compaction`] for when it happens.
//!
//! A log without a snapshot belongs to a catalog that was lost (the
//! snapshot is removed first, see [`CatalogLog::replace`]): it is ignored,
//! and removed when the agent opens the directory.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use prost::Message as _;
use tilewave_proto::agent::v1::{CatalogFile, CatalogLogRecord, CatalogRecord};

use crate::catalog::Catalog;
use crate::error::{Error, Result};

/// The catalog snapshot's name in the data directory.
pub const CATALOG_FILE: &str = "catalog.pb";
/// The temporary file a new snapshot is written to before the rename.
pub const CATALOG_TMP_FILE: &str = "catalog.pb.tmp";
/// The catalog's change log in the data directory.
pub const CATALOG_LOG_FILE: &str = "catalog.log";
/// The flag file FaultInjectionService.RefuseToStart leaves behind.
pub const REFUSE_FLAG_FILE: &str = "refuse-to-start";

/// A log record's frame: length and CRC32, 4 bytes each.
const FRAME_HEADER: usize = 8;
/// The largest log record read: bigger lengths are damage.
const MAX_RECORD: usize = 256 << 20;
/// The log is compacted once it is larger than the snapshot and at least
/// this large (see [`CatalogLog::wants_compaction`]).
pub const COMPACTION_MIN_LOG_BYTES: u64 = 1 << 20;

/// The agent's data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    dir: PathBuf,
}

/// What [`DataDir::read`] found.
struct Read {
    catalog: Catalog,
    snapshot_len: u64,
    /// The last sequence number in the snapshot or the log.
    sequence: u64,
    /// Bytes of whole records in the log.
    log_len: u64,
    /// Bytes after them (a torn tail, dropped).
    torn: u64,
}

impl DataDir {
    /// The directory (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// `<dir>/catalog.pb`.
    pub fn catalog_path(&self) -> PathBuf {
        self.dir.join(CATALOG_FILE)
    }

    /// `<dir>/catalog.log`.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join(CATALOG_LOG_FILE)
    }

    /// `<dir>/refuse-to-start`.
    pub fn refuse_flag_path(&self) -> PathBuf {
        self.dir.join(REFUSE_FLAG_FILE)
    }

    fn persist_err(&self, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.display().to_string();
        move |source| Error::Persist { path, source }
    }

    /// Reads the catalog of `region` (the snapshot and the log's newer
    /// records); `None` when there is no snapshot yet. Changes nothing on
    /// disk.
    pub fn load(&self, region: &str) -> Result<Option<Catalog>> {
        Ok(self.read(region)?.map(|r| r.catalog))
    }

    /// Opens the catalog of `region` for writing: the catalog as
    /// [`DataDir::load`] reads it (`None` when there is no snapshot: the
    /// caller writes a new one with [`CatalogLog::compact`] first) and the
    /// log to append its changes to. A log left without a snapshot (a lost
    /// catalog) is removed.
    pub fn open(&self, region: &str) -> Result<(Option<Catalog>, CatalogLog)> {
        let mut log = CatalogLog {
            data: self.clone(),
            region: region.to_owned(),
            file: None,
            sequence: 0,
            log_len: 0,
            snapshot_len: 0,
            compact_next: true,
            min_compaction_bytes: COMPACTION_MIN_LOG_BYTES,
            #[cfg(test)]
            fail_next_sync: false,
        };
        match self.read(region)? {
            Some(read) => {
                if read.torn > 0 {
                    tracing::warn!(
                        file = %self.log_path().display(),
                        offset = read.log_len,
                        bytes = read.torn,
                        "dropped a torn record at the end of the catalog log (a write that was never \
                         acknowledged); the next write compacts the log"
                    );
                }
                log.sequence = read.sequence;
                log.log_len = read.log_len;
                log.snapshot_len = read.snapshot_len;
                log.compact_next = read.torn > 0;
                Ok((Some(read.catalog), log))
            }
            None => {
                let path = self.log_path();
                if path.exists() {
                    tracing::warn!(
                        file = %path.display(),
                        "removing a catalog log without a snapshot (left by a lost catalog)"
                    );
                    remove_if_present(&path).map_err(self.persist_err(&path))?;
                    self.sync_dir()?;
                }
                Ok((None, log))
            }
        }
    }

    fn read(&self, region: &str) -> Result<Option<Read>> {
        let path = self.catalog_path();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.persist_err(&path)(e)),
        };
        let corrupt = |problem: String| Error::Corrupt {
            path: path.display().to_string(),
            problem,
        };
        let file =
            CatalogFile::decode(bytes.as_slice()).map_err(|e| corrupt(format!("does not decode: {e}")))?;
        if file.region != region {
            return Err(corrupt(format!(
                "belongs to region {}, not {region:?}; point --data-dir elsewhere",
                tilewave_core::quote::quoted(&file.region)
            )));
        }
        let snapshot_sequence = file.sequence;
        let mut catalog = Catalog::from_file(file).map_err(corrupt)?;
        let (sequence, log_len, torn) = self.replay(region, snapshot_sequence, &mut catalog)?;
        Ok(Some(Read {
            catalog,
            snapshot_len: bytes.len() as u64,
            sequence,
            log_len,
            torn,
        }))
    }

    /// Replays the log's records newer than `snapshot_sequence` on
    /// `catalog`: the last sequence number seen, the bytes of whole
    /// records, and the bytes of a torn tail after them.
    fn replay(&self, region: &str, snapshot_sequence: u64, catalog: &mut Catalog) -> Result<(u64, u64, u64)> {
        let path = self.log_path();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(self.persist_err(&path)(e)),
        };
        let corrupt = |offset: usize, problem: String| Error::Corrupt {
            path: path.display().to_string(),
            problem: format!("record at offset {offset}: {problem}"),
        };
        let mut offset = 0;
        let mut last_in_log = 0;
        while offset < bytes.len() {
            let Some((payload, next)) = frame_at(&bytes, offset) else {
                // A torn tail only if no whole record follows it.
                if let Some(good) = (offset + 1..bytes.len()).find(|&o| frame_at(&bytes, o).is_some()) {
                    return Err(corrupt(
                        offset,
                        format!(
                            "damaged (short, bad length or CRC mismatch) with a whole record after it at \
                             offset {good}: the log is corrupt, not torn"
                        ),
                    ));
                }
                let torn = bytes.len() - offset;
                return Ok((snapshot_sequence.max(last_in_log), offset as u64, torn as u64));
            };
            let record = CatalogLogRecord::decode(payload)
                .map_err(|e| corrupt(offset, format!("does not decode: {e}")))?;
            if record.region != region {
                return Err(corrupt(
                    offset,
                    format!(
                        "belongs to region {}, not {region:?}",
                        tilewave_core::quote::quoted(&record.region)
                    ),
                ));
            }
            if record.sequence <= last_in_log {
                return Err(corrupt(
                    offset,
                    format!(
                        "sequence {} after {last_in_log}: sequence numbers must increase",
                        record.sequence
                    ),
                ));
            }
            last_in_log = record.sequence;
            if record.sequence > snapshot_sequence {
                let sequence = record.sequence;
                catalog
                    .replay(&record.generation, record.tiles)
                    .map_err(|p| corrupt(offset, format!("sequence {sequence}: {p}")))?;
            }
            offset = next;
        }
        Ok((snapshot_sequence.max(last_in_log), offset as u64, 0))
    }

    /// Writes `catalog` as the snapshot after everything in the directory
    /// (opening it: reads the current catalog first), so that the log's
    /// records no longer apply. For tests and tools: the agent writes
    /// through its [`CatalogLog`].
    pub fn save(&self, catalog: &Catalog) -> Result<()> {
        let (_, mut log) = self.open(catalog.region())?;
        log.compact(catalog)
    }

    fn sync_dir(&self) -> Result<()> {
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(self.persist_err(&self.dir))
    }

    /// Writes the snapshot atomically and durably.
    fn write_snapshot(&self, bytes: &[u8]) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(self.persist_err(&self.dir))?;
        let tmp = self.dir.join(CATALOG_TMP_FILE);
        let target = self.catalog_path();
        {
            let mut f = File::create(&tmp).map_err(self.persist_err(&tmp))?;
            f.write_all(bytes).map_err(self.persist_err(&tmp))?;
            f.sync_all().map_err(self.persist_err(&tmp))?;
        }
        std::fs::rename(&tmp, &target).map_err(self.persist_err(&target))?;
        // The rename is durable only once the directory entry is.
        self.sync_dir()
    }

    /// Deletes the catalog, snapshot first, then its log (as a disk loss
    /// would): a crash in between leaves a log without a snapshot, which
    /// [`DataDir::open`] removes.
    pub fn remove_catalog(&self) -> Result<()> {
        for path in [self.catalog_path(), self.log_path()] {
            remove_if_present(&path).map_err(self.persist_err(&path))?;
        }
        if self.dir.exists() {
            self.sync_dir()?;
        }
        Ok(())
    }

    /// Whether the refuse-to-start flag is set.
    pub fn refuse_flag(&self) -> bool {
        self.refuse_flag_path().exists()
    }

    /// Sets or clears the refuse-to-start flag.
    pub fn set_refuse_flag(&self, refuse: bool) -> Result<()> {
        let path = self.refuse_flag_path();
        if refuse {
            std::fs::create_dir_all(&self.dir).map_err(self.persist_err(&self.dir))?;
            let text = "set by FaultInjectionService.RefuseToStart; the agent exits at start-up while \
                        this file exists. Remove it, or call ClearFaults, to let it start.\n";
            let mut f = File::create(&path).map_err(self.persist_err(&path))?;
            f.write_all(text.as_bytes()).map_err(self.persist_err(&path))?;
            f.sync_all().map_err(self.persist_err(&path))?;
            Ok(())
        } else {
            remove_if_present(&path).map_err(self.persist_err(&path))
        }
    }
}

fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// The payload of the whole, CRC-checked record framed at `offset`, and
/// the offset after it; `None` if there is none there.
fn frame_at(bytes: &[u8], offset: usize) -> Option<(&[u8], usize)> {
    let header = bytes.get(offset..offset.checked_add(FRAME_HEADER)?)?;
    let len = u32::from_le_bytes(header.get(0..4)?.try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(header.get(4..8)?.try_into().ok()?);
    // A record is never empty (its sequence is at least 1): zeros are no record.
    if len == 0 || len > MAX_RECORD {
        return None;
    }
    let start = offset + FRAME_HEADER;
    let end = start.checked_add(len)?;
    let payload = bytes.get(start..end)?;
    (crc32fast::hash(payload) == crc).then_some((payload, end))
}

/// `payload` framed for the log.
fn frame(payload: &[u8]) -> Result<Vec<u8>> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|&l| l as usize <= MAX_RECORD)
        .ok_or_else(|| Error::Persist {
            path: CATALOG_LOG_FILE.to_owned(),
            source: std::io::Error::other(format!(
                "a log record of {} bytes is larger than the {MAX_RECORD} a record may be",
                payload.len()
            )),
        })?;
    let mut out = Vec::with_capacity(FRAME_HEADER + payload.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

/// The catalog's files as their one writer ([`crate::writes`]) keeps
/// them: where the log ends, the last sequence number given out, and
/// whether the next write must be a compaction. Blocking I/O: call it from
/// a blocking thread.
#[derive(Debug)]
pub struct CatalogLog {
    data: DataDir,
    region: String,
    /// The log, open for appending (opened on the first append).
    file: Option<File>,
    /// The last sequence number given out (to a record or a snapshot),
    /// written or not: numbers are never reused.
    sequence: u64,
    /// Bytes of whole records in the log.
    log_len: u64,
    /// The snapshot's size.
    snapshot_len: u64,
    /// The next write must be a compaction: set while a write is under way
    /// (so a write that failed, or never finished, leaves it set), and at
    /// open after a torn tail.
    compact_next: bool,
    min_compaction_bytes: u64,
    /// Tests: the next append writes its record and then fails, as a
    /// failed fdatasync would.
    #[cfg(test)]
    pub(crate) fail_next_sync: bool,
}

impl CatalogLog {
    /// The last sequence number given out.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// The log's size in bytes (whole records).
    pub fn log_len(&self) -> u64 {
        self.log_len
    }

    /// Sets the size the log must reach before it is compacted (tests).
    pub fn set_min_compaction_bytes(&mut self, bytes: u64) {
        self.min_compaction_bytes = bytes;
    }

    /// Whether the next write should be a compaction rather than an append:
    /// after a failed or unfinished write (it must be, see
    /// [`crate::writes`]), after a torn tail, and once the log is larger
    /// than the snapshot and at least [`COMPACTION_MIN_LOG_BYTES`].
    ///
    /// Why that bound: compacting only once the log outgrows the snapshot
    /// writes at most one snapshot byte per log byte appended, so a change
    /// still costs in proportion to itself, amortised, and a start-up
    /// replays at most about the snapshot's size again; the 1 MiB floor
    /// keeps a small catalog from being rewritten every few changes, and
    /// replaying 1 MiB at start-up takes milliseconds. A count of records
    /// would not do: a record's size depends on the tiles it carries.
    pub fn wants_compaction(&self) -> bool {
        self.compact_next || (self.log_len >= self.min_compaction_bytes && self.log_len > self.snapshot_len)
    }

    /// Appends one group's changes (`generation`: the new generation if it
    /// changed; `tiles`: the changed tiles' full records) and syncs the
    /// log. Refused when the next write must be a compaction.
    pub fn append(&mut self, generation: Option<&str>, tiles: Vec<CatalogRecord>) -> Result<()> {
        let path = self.data.log_path();
        if self.compact_next {
            return Err(Error::Persist {
                path: path.display().to_string(),
                source: std::io::Error::other(
                    "an earlier write failed or did not finish: the next write must be a compaction",
                ),
            });
        }
        self.compact_next = true;
        self.sequence += 1;
        let record = CatalogLogRecord {
            sequence: self.sequence,
            region: self.region.clone(),
            generation: generation.unwrap_or_default().to_owned(),
            tiles,
        };
        let framed = frame(&record.encode_to_vec())?;
        let mut file = match self.file.take() {
            Some(f) => f,
            None => {
                // (Should the directory's fsync below fail, the next write
                // is a compaction, whose snapshot's directory fsync makes
                // the log's entry durable too.)
                let created = !path.exists();
                let f = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(self.data.persist_err(&path))?;
                if created {
                    // The log's directory entry must be durable too.
                    self.data.sync_dir()?;
                }
                f
            }
        };
        file.write_all(&framed)
            .and_then(|()| file.sync_data())
            .map_err(self.data.persist_err(&path))?;
        #[cfg(test)]
        if std::mem::take(&mut self.fail_next_sync) {
            return Err(self.data.persist_err(&path)(std::io::Error::other(
                "injected fdatasync failure",
            )));
        }
        self.file = Some(file);
        self.log_len += framed.len() as u64;
        self.compact_next = false;
        Ok(())
    }

    /// Writes `catalog` as the new snapshot (the next sequence number: it
    /// covers every number given out before, written or not) and truncates
    /// the log.
    pub fn compact(&mut self, catalog: &Catalog) -> Result<()> {
        self.compact_next = true;
        self.file = None;
        self.sequence += 1;
        let mut file = catalog.to_file();
        file.sequence = self.sequence;
        let bytes = file.encode_to_vec();
        self.data.write_snapshot(&bytes)?;
        self.snapshot_len = bytes.len() as u64;
        let path = self.data.log_path();
        match OpenOptions::new().write(true).open(&path) {
            Ok(f) => {
                // Synced: no later append may land after old bytes.
                f.set_len(0)
                    .and_then(|()| f.sync_all())
                    .map_err(self.data.persist_err(&path))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(self.data.persist_err(&path)(e)),
        }
        self.log_len = 0;
        self.compact_next = false;
        Ok(())
    }

    /// Replaces the catalog with `fresh` (a disk loss, injected): removes
    /// the snapshot and the log, then writes `fresh` as the snapshot.
    pub fn replace(&mut self, fresh: &Catalog) -> Result<()> {
        self.compact_next = true;
        self.file = None;
        self.data.remove_catalog()?;
        self.log_len = 0;
        self.compact(fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Apply, record_to_file};

    const REGION: &str = "aws:eu-west-1";

    fn at() -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_800_000_000).unwrap()
    }

    fn apply(tile: &str, revision: i64, token: i64) -> Apply {
        Apply {
            tile_id: tile.into(),
            revision,
            config: None,
            fencing_token: token,
            hidden: None,
        }
    }

    /// A new catalog in a new directory, and its log.
    fn create(dir: &Path) -> (DataDir, Catalog, CatalogLog) {
        let d = DataDir::new(dir.join("agent"));
        let c = Catalog::new(REGION, "gen-1".into());
        let (none, mut log) = d.open(REGION).unwrap();
        assert!(none.is_none());
        log.compact(&c).unwrap();
        (d, c, log)
    }

    /// Makes `change` on `catalog` and appends its changed records, as a
    /// group commit does; the record's offset in the log.
    fn commit<R>(
        log: &mut CatalogLog,
        catalog: &mut Catalog,
        change: impl FnOnce(&mut Catalog) -> Result<R>,
    ) -> u64 {
        let (_, changed) = catalog.change(change).unwrap();
        assert!(!changed.is_empty());
        let tiles = changed
            .iter()
            .map(|id| record_to_file(id, catalog.record(id).unwrap()))
            .collect();
        let offset = log.log_len();
        log.append(None, tiles).unwrap();
        offset
    }

    #[test]
    fn changes_survive_a_restart_through_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let (d, mut c, mut log) = create(dir.path());
        commit(&mut log, &mut c, |c| c.apply(apply("riverflow", 1, 1), at()));
        commit(&mut log, &mut c, |c| c.apply(apply("lumen-bi", 1, 1), at()));
        commit(&mut log, &mut c, |c| c.apply(apply("riverflow", 2, 3), at()));
        commit(&mut log, &mut c, |c| c.remove("lumen-bi", 4));
        assert!(log.log_len() > 0);
        let snapshot = std::fs::read(d.catalog_path()).unwrap();
        assert_eq!(d.load(REGION).unwrap(), Some(c.clone()));
        assert_eq!(
            std::fs::read(d.catalog_path()).unwrap(),
            snapshot,
            "appends leave the snapshot alone"
        );
        // A restart: the same catalog, the sequence numbers go on.
        let sequence = log.sequence();
        drop(log);
        let (back, mut log) = d.open(REGION).unwrap();
        assert_eq!(back.as_ref(), Some(&c));
        assert_eq!(log.sequence(), sequence);
        assert!(!log.wants_compaction());
        commit(&mut log, &mut c, |c| c.apply(apply("lumen-bi", 2, 5), at()));
        assert_eq!(log.sequence(), sequence + 1);
        assert_eq!(d.load(REGION).unwrap(), Some(c.clone()));
        assert_eq!(
            d.load(REGION)
                .unwrap()
                .unwrap()
                .record("lumen-bi")
                .unwrap()
                .newest_token,
            5
        );
    }

    #[test]
    fn a_torn_tail_loses_only_its_record() {
        let dir = tempfile::tempdir().unwrap();
        let (d, mut c, mut log) = create(dir.path());
        commit(&mut log, &mut c, |c| c.apply(apply("riverflow", 1, 1), at()));
        commit(&mut log, &mut c, |c| c.apply(apply("lumen-bi", 1, 1), at()));
        let before_last = c.clone();
        let last = commit(&mut log, &mut c, |c| c.apply(apply("riverflow", 2, 2), at()));
        drop(log);
        // Cut in the middle of the last record, then within its header.
        let len = std::fs::metadata(d.log_path()).unwrap().len();
        for cut in [last + (len - last) / 2, last + 3] {
            let f = OpenOptions::new().write(true).open(d.log_path()).unwrap();
            f.set_len(cut).unwrap();
            assert_eq!(d.load(REGION).unwrap(), Some(before_last.clone()), "cut at {cut}");
        }
        // Opened, the next write is a compaction, which removes the tail.
        let (back, mut log) = d.open(REGION).unwrap();
        assert_eq!(back, Some(before_last.clone()));
        assert!(log.wants_compaction());
        assert!(
            log.append(None, Vec::new()).is_err(),
            "an append after a torn tail"
        );
        log.compact(&before_last).unwrap();
        assert_eq!(std::fs::metadata(d.log_path()).unwrap().len(), 0);
        let mut c = before_last;
        commit(&mut log, &mut c, |c| c.apply(apply("riverflow", 3, 3), at()));
        assert_eq!(d.load(REGION).unwrap(), Some(c));
    }

    #[test]
    fn damage_before_good_records_or_another_regions_record_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let (d, mut c, mut log) = create(dir.path());
        commit(&mut log, &mut c, |c| c.apply(apply("riverflow", 1, 1), at()));
        let second = commit(&mut log, &mut c, |c| c.apply(apply("lumen-bi", 1, 1), at()));
        commit(&mut log, &mut c, |c| c.apply(apply("riverflow", 2, 2), at()));
        drop(log);
        let good = std::fs::read(d.log_path()).unwrap();
        let expect_corrupt = |bytes: &[u8], offset: u64, what: &str| {
            std::fs::write(d.log_path(), bytes).unwrap();
            let e = d.load(REGION).unwrap_err();
            assert!(matches!(e, Error::Corrupt { .. }), "{what}: {e}");
            let text = e.to_string();
            assert!(text.contains(CATALOG_LOG_FILE), "{what}: {text}");
            assert!(
                text.contains(&format!("record at offset {offset}:")),
                "{what}: {text}"
            );
            assert!(d.open(REGION).is_err(), "{what}: opened");
        };
        // A flipped byte in the second record's payload: its CRC fails and
        // a whole record follows.
        let mut bytes = good.clone();
        bytes[second as usize + FRAME_HEADER + 2] ^= 0x40;
        expect_corrupt(&bytes, second, "a flipped byte");
        // Garbage in place of the second record's header.
        let mut bytes = good.clone();
        bytes[second as usize..second as usize + FRAME_HEADER].copy_from_slice(b"garbage!");
        expect_corrupt(&bytes, second, "garbage");
        // A whole record of another region after the good ones.
        let other = CatalogLogRecord {
            sequence: 99,
            region: "gcp:europe-west1".into(),
            generation: String::new(),
            tiles: Vec::new(),
        };
        let mut bytes = good.clone();
        bytes.extend(frame(&other.encode_to_vec()).unwrap());
        expect_corrupt(&bytes, good.len() as u64, "another region's record");
        // A sequence number that does not increase.
        let replayed = CatalogLogRecord {
            sequence: 2,
            region: REGION.into(),
            generation: String::new(),
            tiles: Vec::new(),
        };
        let mut bytes = good.clone();
        bytes.extend(frame(&replayed.encode_to_vec()).unwrap());
        expect_corrupt(&bytes, good.len() as u64, "an old sequence number");
        // Put back whole, the log loads again.
        std::fs::write(d.log_path(), &good).unwrap();
        assert_eq!(d.load(REGION).unwrap(), Some(c));
    }

    #[test]
    fn compaction_past_the_bound_and_a_stale_log_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let (d, mut c, mut log) = create(dir.path());
        log.set_min_compaction_bytes(300);
        let mut appended = 0;
        while !log.wants_compaction() {
            commit(&mut log, &mut c, |c| {
                c.apply(apply(&format!("tile-{appended}"), 1, 1), at())
            });
            appended += 1;
            assert!(appended < 100, "the log never reached its bound");
        }
        assert!(log.log_len() >= 300);
        assert!(log.log_len() > std::fs::metadata(d.catalog_path()).unwrap().len());
        // A crash between the snapshot's rename and the log's truncation:
        // the old log is back beside the new snapshot.
        let stale = std::fs::read(d.log_path()).unwrap();
        let before = log.sequence();
        log.compact(&c).unwrap();
        assert_eq!(
            log.sequence(),
            before + 1,
            "the snapshot's sequence covers the log"
        );
        assert_eq!(log.log_len(), 0);
        assert!(!log.wants_compaction(), "the log is empty again");
        assert_eq!(std::fs::metadata(d.log_path()).unwrap().len(), 0);
        drop(log);
        std::fs::write(d.log_path(), &stale).unwrap();
        let snapshot = CatalogFile::decode(std::fs::read(d.catalog_path()).unwrap().as_slice()).unwrap();
        assert_eq!(snapshot.sequence, before + 1);
        assert_eq!(snapshot.format_version, crate::catalog::FORMAT_VERSION);
        // Every stale record is skipped (a stale removal would otherwise show).
        assert_eq!(d.load(REGION).unwrap(), Some(c.clone()));
        let (back, mut log) = d.open(REGION).unwrap();
        assert_eq!(back.as_ref(), Some(&c));
        assert_eq!(log.sequence(), before + 1);
        // Appends go on after the stale records and are replayed.
        commit(&mut log, &mut c, |c| c.remove("tile-0", 2));
        assert_eq!(d.load(REGION).unwrap(), Some(c));
    }

    #[test]
    fn a_log_without_a_snapshot_is_a_lost_catalogs_and_removed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let (d, mut c, mut log) = create(dir.path());
        commit(&mut log, &mut c, |c| c.apply(apply("riverflow", 1, 1), at()));
        drop(log);
        std::fs::remove_file(d.catalog_path()).unwrap();
        assert_eq!(d.load(REGION).unwrap(), None);
        assert!(d.log_path().exists(), "load changes nothing");
        let (none, mut log) = d.open(REGION).unwrap();
        assert!(none.is_none());
        assert!(!d.log_path().exists());
        let fresh = Catalog::new(REGION, "gen-2".into());
        log.compact(&fresh).unwrap();
        assert_eq!(d.load(REGION).unwrap(), Some(fresh));
    }

    #[test]
    fn a_version_1_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let d = DataDir::new(dir.path());
        let mut file = sample().to_file();
        file.format_version = 1;
        std::fs::write(d.catalog_path(), file.encode_to_vec()).unwrap();
        assert_eq!(d.load("aws:eu-west-1").unwrap(), Some(sample()));
    }

    fn sample() -> Catalog {
        let mut c = Catalog::new("aws:eu-west-1", "gen-1".into());
        let at = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        c.apply(
            Apply {
                tile_id: "riverflow".into(),
                revision: 2,
                config: None,
                fencing_token: 4,
                hidden: None,
            },
            at,
        )
        .unwrap();
        c.apply(
            Apply {
                tile_id: "lumen-bi".into(),
                revision: 1,
                config: None,
                fencing_token: 1,
                hidden: Some(true),
            },
            at,
        )
        .unwrap();
        c.remove("lumen-bi", 3).unwrap();
        c
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let d = DataDir::new(dir.path().join("agent"));
        assert_eq!(d.load("aws:eu-west-1").unwrap(), None);
        let c = sample();
        d.save(&c).unwrap();
        assert_eq!(d.load("aws:eu-west-1").unwrap(), Some(c));
        assert!(
            !dir.path().join("agent").join(CATALOG_TMP_FILE).exists(),
            "the temp file was renamed"
        );
    }

    #[test]
    fn a_save_replaces_the_whole_file_and_a_leftover_temp_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let d = DataDir::new(dir.path());
        d.save(&sample()).unwrap();
        // A crash between writing the temp file and the rename leaves the
        // old catalog in force.
        std::fs::write(dir.path().join(CATALOG_TMP_FILE), b"half a catalog").unwrap();
        assert_eq!(d.load("aws:eu-west-1").unwrap(), Some(sample()));
        let empty = Catalog::new("aws:eu-west-1", "gen-2".into());
        d.save(&empty).unwrap();
        assert_eq!(d.load("aws:eu-west-1").unwrap(), Some(empty));
    }

    #[test]
    fn a_corrupt_file_or_another_regions_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = DataDir::new(dir.path());
        d.save(&sample()).unwrap();
        let e = d.load("gcp:europe-west1").unwrap_err();
        assert!(
            e.to_string().contains("belongs to region \"aws:eu-west-1\""),
            "{e}"
        );
        std::fs::write(d.catalog_path(), b"\xff\xff\xff").unwrap();
        assert!(matches!(d.load("aws:eu-west-1"), Err(Error::Corrupt { .. })));
    }

    #[test]
    fn refuse_flag_and_removal() {
        let dir = tempfile::tempdir().unwrap();
        let d = DataDir::new(dir.path());
        assert!(!d.refuse_flag());
        d.set_refuse_flag(true).unwrap();
        assert!(d.refuse_flag());
        d.set_refuse_flag(false).unwrap();
        d.set_refuse_flag(false).unwrap();
        assert!(!d.refuse_flag());
        d.save(&sample()).unwrap();
        d.remove_catalog().unwrap();
        d.remove_catalog().unwrap();
        assert_eq!(d.load("aws:eu-west-1").unwrap(), None);
    }
}
