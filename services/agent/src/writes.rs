//! Group commit of the catalog's changes.
//!
//! Every change (an apply, a removal, a credential) must be durable before
//! it is acknowledged. One write per change made a region with many
//! roll-outs in flight pay a write and an fsync per call, one after the
//! other. Here a change is made at once, in place, on the *staged* catalog
//! (every change accepted so far, written or not; [`Catalog::change`]
//! undoes a refused one and names the tiles a change changed) and
//! numbered; its caller then waits until a write that includes its number
//! is durable. One caller at a time writes, taking everything staged by
//! then, so the changes that arrived during a write share the next one.
//!
//! A write is one record appended to the catalog's log, carrying the full
//! records of the tiles changed since the last write, then an fdatasync
//! ([`crate::persist`]); once the log outgrows its bound it is a
//! compaction instead (the whole staged catalog as the new snapshot, the
//! log truncated). Nothing per change or per write costs the whole catalog:
//! the staged catalog keeps the set of tiles changed since the last write,
//! and the durable copy takes just their records after an append (a
//! compaction installs a copy of the staged map: one per compaction).
//!
//! Readers see only the durable catalog (the `durable` mutex the caller
//! passes), as before. A failed write fails every change it carried (and
//! any staged after them that has not been written): the staged catalog
//! goes back to the durable one, so nothing acknowledged as failed can
//! become durable later. A failed append (or compaction) may still have
//! left its bytes on disk, and a failed fsync says nothing about what is
//! there. So after any failed write the next write is a compaction: its
//! snapshot holds the staged catalog (without the failed changes) and the
//! next sequence number, greater than the failed record's (numbers are
//! never reused), and replaces a snapshot the failed write may have
//! renamed into place; a failed record left in the log is then at most the
//! snapshot's sequence and never replayed, and the log is truncated. That
//! is simpler than truncating the log back and reading it again to verify,
//! and covers a failed compaction the same way. The same holds when the
//! caller writing stops waiting (its future dropped) in the middle of a
//! write: the write's outcome is unknown, so the next one is a compaction,
//! which writes what it carried again. (A process that dies right after a
//! failed write, before any other, may find the failed record whole in the
//! log at start-up and replay it: that window was there before too, when a
//! failed directory fsync could leave the new file renamed in place.)

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::catalog::{Catalog, TileRecord, new_generation, record_to_file};
use crate::error::{Error, Result};
use crate::persist::CatalogLog;
use crate::service::blocking;

/// The staged catalog and the numbers of its changes.
#[derive(Debug)]
pub struct Writes {
    staged: Mutex<Staged>,
    /// Held by the one caller writing.
    writing: tokio::sync::Mutex<()>,
    /// The catalog's files (locked by the write in its blocking thread).
    log: Arc<Mutex<CatalogLog>>,
    /// The next write is a compaction (the log's own flag, mirrored here
    /// so that the writer need not wait for the log's lock to decide).
    compact_next: AtomicBool,
    /// How many group writes there were (log appends and compactions).
    written: AtomicU64,
}

#[derive(Debug)]
struct Staged {
    catalog: Catalog,
    /// The tiles whose records changed since the last write took them.
    dirty: BTreeSet<String>,
    /// The generation last written (a log record carries the generation
    /// only when it changed).
    written_generation: String,
    /// The number of the newest staged change.
    seq: u64,
    /// Every change up to this number is durable.
    durable: u64,
    /// Changes up to this number were lost with a failed write (and why).
    lost: Option<(u64, String)>,
}

/// What one group write takes from the staged catalog.
enum Group {
    /// The changed tiles' records (shared with the staged catalog), and
    /// the generation if it changed.
    Append(Option<String>, Vec<(String, Arc<TileRecord>)>),
    /// The whole staged catalog.
    Compact(Catalog),
}

/// Marks the next write a compaction if a write is dropped half-way.
struct Unfinished<'a>(Option<&'a AtomicBool>);

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        if let Some(flag) = self.0 {
            flag.store(true, Ordering::Relaxed);
        }
    }
}

impl Writes {
    /// Starts from `catalog`, durable as it is in `log`'s files.
    pub fn new(catalog: Catalog, log: CatalogLog) -> Self {
        Self {
            compact_next: AtomicBool::new(log.wants_compaction()),
            staged: Mutex::new(Staged {
                written_generation: catalog.generation().to_owned(),
                catalog,
                dirty: BTreeSet::new(),
                seq: 0,
                durable: 0,
                lost: None,
            }),
            writing: tokio::sync::Mutex::new(()),
            log: Arc::new(Mutex::new(log)),
            written: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Staged> {
        self.staged.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes `change` on the staged catalog (in place; a refused change
    /// leaves it as it was) and returns its result once the catalog with
    /// it is durable and installed in `durable`. A change that changes
    /// nothing still waits for the changes before it (it reports on them).
    pub async fn change<R>(
        &self,
        durable: &tokio::sync::Mutex<Catalog>,
        change: impl FnOnce(&mut Catalog) -> Result<R>,
    ) -> Result<R> {
        let (result, seq) = {
            let mut st = self.lock();
            let (result, changed) = st.catalog.change(change)?;
            if !changed.is_empty() {
                st.dirty.extend(changed);
                st.seq += 1;
            }
            (result, st.seq)
        };
        loop {
            if let Some(done) = self.settled(seq) {
                return done.map(|()| result);
            }
            let _writer = self.writing.lock().await;
            if let Some(done) = self.settled(seq) {
                return done.map(|()| result);
            }
            self.write_group(durable).await?;
        }
    }

    /// Writes everything staged as one group (the caller holds `writing`).
    async fn write_group(&self, durable: &tokio::sync::Mutex<Catalog>) -> Result<()> {
        let compact = self.compact_next.load(Ordering::Relaxed);
        let (group, upto) = {
            let mut st = self.lock();
            let dirty = std::mem::take(&mut st.dirty);
            let group = if compact {
                Group::Compact(st.catalog.clone())
            } else {
                let generation = (st.catalog.generation() != st.written_generation)
                    .then(|| st.catalog.generation().to_owned());
                let records = dirty
                    .into_iter()
                    .filter_map(|id| st.catalog.shared_record(&id).map(|r| (id, r)))
                    .collect();
                Group::Append(generation, records)
            };
            (group, st.seq)
        };
        let mut unfinished = Unfinished(Some(&self.compact_next));
        let (log, group) = (Arc::clone(&self.log), Arc::new(group));
        let to_write = Arc::clone(&group);
        let saved = blocking(move || {
            let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
            match &*to_write {
                Group::Compact(catalog) => log.compact(catalog)?,
                Group::Append(generation, records) => {
                    let tiles = records.iter().map(|(id, r)| record_to_file(id, r)).collect();
                    log.append(generation.as_deref(), tiles)?;
                }
            }
            Ok(log.wants_compaction())
        })
        .await;
        self.written.fetch_add(1, Ordering::Relaxed);
        match saved {
            Ok(compact_next) => {
                let mut current = durable.lock().await;
                match &*group {
                    Group::Compact(catalog) => *current = catalog.clone(),
                    Group::Append(generation, records) => {
                        current.install_records(generation.as_deref(), records);
                    }
                }
                let generation = current.generation().to_owned();
                drop(current);
                self.compact_next.store(compact_next, Ordering::Relaxed);
                unfinished.0 = None;
                let mut st = self.lock();
                st.durable = upto;
                st.written_generation = generation;
                Ok(())
            }
            Err(e) => {
                // Back to what is on disk: the lost changes are failed,
                // and the next write is a compaction (see the module docs).
                let on_disk = durable.lock().await.clone();
                let mut st = self.lock();
                st.catalog = on_disk;
                st.dirty.clear();
                st.lost = Some((st.seq, e.to_string()));
                Err(e)
            }
        }
    }

    /// How many group writes there were: log appends and compactions (for
    /// tests and metrics).
    pub fn files_written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// `Some(Ok)` once change `seq` is durable, `Some(Err)` if its write
    /// failed, `None` while it waits for a write.
    fn settled(&self, seq: u64) -> Option<Result<()>> {
        let st = self.lock();
        if seq <= st.durable {
            return Some(Ok(()));
        }
        match &st.lost {
            Some((upto, why)) if seq <= *upto => Some(Err(Error::Persist {
                path: "catalog".to_owned(),
                source: std::io::Error::other(format!("the catalog write with this change failed: {why}")),
            })),
            _ => None,
        }
    }

    /// Loses the catalog as a disk loss would (fault injection): after
    /// any write in flight, the snapshot and the log are removed and a new
    /// generation written. Returns how many live entries were lost and the
    /// new generation.
    pub async fn lose(&self, durable: &tokio::sync::Mutex<Catalog>) -> Result<(usize, String)> {
        let _writer = self.writing.lock().await;
        let mut current = durable.lock().await;
        let lost = current.len();
        let fresh = Catalog::new(current.region(), new_generation());
        let (log, to_write) = (Arc::clone(&self.log), fresh.clone());
        let mut unfinished = Unfinished(Some(&self.compact_next));
        blocking(move || {
            let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
            log.replace(&to_write)
        })
        .await?;
        unfinished.0 = None;
        self.compact_next.store(false, Ordering::Relaxed);
        let generation = fresh.generation().to_owned();
        *current = fresh.clone();
        let mut st = self.lock();
        st.catalog = fresh;
        st.dirty.clear();
        st.written_generation.clone_from(&generation);
        st.seq += 1;
        st.durable = st.seq;
        Ok((lost, generation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Apply;
    use crate::persist::DataDir;

    const REGION: &str = "aws:us-east-1";

    fn apply(tile: &str, revision: i64) -> Apply {
        Apply {
            tile_id: tile.to_owned(),
            revision,
            config: None,
            fencing_token: 1,
            hidden: None,
        }
    }

    fn now() -> jiff::Timestamp {
        jiff::Timestamp::UNIX_EPOCH
    }

    /// A new catalog written in `data`, and its log.
    fn create(data: &DataDir) -> anyhow::Result<(Catalog, CatalogLog)> {
        let start = Catalog::new(REGION, new_generation());
        let (_, mut log) = data.open(REGION)?;
        log.compact(&start)?;
        Ok((start, log))
    }

    fn load(data: &DataDir) -> anyhow::Result<Catalog> {
        data.load(REGION)?
            .ok_or_else(|| anyhow::anyhow!("no catalog file"))
    }

    impl Writes {
        fn log(&self) -> MutexGuard<'_, CatalogLog> {
            self.log.lock().unwrap_or_else(PoisonError::into_inner)
        }
    }

    /// Fifty applies at once: every one durable (in the files and the
    /// durable catalog) when it returns, in far fewer writes than fifty.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_changes_share_writes_and_are_durable_when_they_return() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let data = DataDir::new(dir.path());
        let (start, log) = create(&data)?;
        let durable = std::sync::Arc::new(tokio::sync::Mutex::new(start.clone()));
        let writes = std::sync::Arc::new(Writes::new(start, log));
        let calls: Vec<_> = (0..50)
            .map(|i| {
                let (writes, durable, data) = (writes.clone(), durable.clone(), data.clone());
                tokio::spawn(async move {
                    let tile = format!("tile-{i}");
                    let applied = writes
                        .change(&durable, |c| c.apply(apply(&tile, 1), now()))
                        .await?;
                    // Durable once acknowledged: on disk and for readers.
                    let on_disk = load(&data)?;
                    anyhow::ensure!(
                        on_disk.entry(&tile).is_some(),
                        "{tile} not on disk when acknowledged"
                    );
                    anyhow::ensure!(durable.lock().await.entry(&tile).is_some(), "{tile} not readable");
                    anyhow::Ok(applied.changed)
                })
            })
            .collect();
        for call in calls {
            assert!(call.await??, "a first apply changes the catalog");
        }
        let written = writes.files_written();
        assert!((1..50).contains(&written), "{written} writes for 50 changes");
        assert_eq!(durable.lock().await.len(), 50);
        assert_eq!(load(&data)?, *durable.lock().await);
        assert!(writes.log().log_len() > 0, "the changes went to the log");
        // A change that changes nothing writes nothing.
        let again = writes
            .change(&durable, |c| c.apply(apply("tile-3", 1), now()))
            .await?;
        assert!(!again.changed);
        assert_eq!(writes.files_written(), written);
        Ok(())
    }

    /// A write that fails fails its change, which never becomes durable
    /// later with another's write, nor after a reload from disk; a refused
    /// change stages nothing.
    #[tokio::test]
    async fn a_failed_write_fails_its_change_and_loses_it() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("data");
        let data = DataDir::new(&path);
        let (start, log) = create(&data)?;
        let durable = tokio::sync::Mutex::new(start.clone());
        let writes = Writes::new(start, log);
        // A file where the data directory should be: the write fails (the
        // log is not open yet: it opens with the first append).
        let aside = dir.path().join("aside");
        std::fs::rename(&path, &aside)?;
        std::fs::write(&path, b"not a directory")?;
        let failed = writes
            .change(&durable, |c| c.apply(apply("lost", 1), now()))
            .await;
        let Err(e) = failed else {
            anyhow::bail!("the write into a file succeeded");
        };
        assert!(matches!(e, Error::Persist { .. }), "{e}");
        // The disk comes back; the next change is written without the lost one.
        std::fs::remove_file(&path)?;
        std::fs::rename(&aside, &path)?;
        writes
            .change(&durable, |c| c.apply(apply("kept", 1), now()))
            .await?;
        let on_disk = load(&data)?;
        assert!(on_disk.entry("kept").is_some());
        assert!(on_disk.entry("lost").is_none(), "a failed change became durable");
        assert!(durable.lock().await.entry("lost").is_none());
        assert_eq!(on_disk, *durable.lock().await);
        // A refused change (an older fencing token) stages nothing.
        let refused = writes
            .change(&durable, |c| {
                c.apply(
                    Apply {
                        fencing_token: 0,
                        ..apply("kept", 2)
                    },
                    now(),
                )
            })
            .await;
        assert!(refused.is_err());
        assert_eq!(durable.lock().await.entry("kept").map(|e| e.revision), Some(1));
        Ok(())
    }

    /// A failed fdatasync whose record did reach the log: the change
    /// fails, the next write is a compaction past the failed record's
    /// sequence, and neither later writes nor a reload bring it back.
    #[tokio::test]
    async fn a_failed_record_left_in_the_log_never_becomes_durable() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let data = DataDir::new(dir.path());
        let (start, log) = create(&data)?;
        let durable = tokio::sync::Mutex::new(start.clone());
        let writes = Writes::new(start, log);
        writes
            .change(&durable, |c| c.apply(apply("before", 1), now()))
            .await?;
        writes.log().fail_next_sync = true;
        let log_before = std::fs::metadata(data.log_path())?.len();
        let failed = writes
            .change(&durable, |c| c.apply(apply("lost", 1), now()))
            .await;
        assert!(matches!(failed, Err(Error::Persist { .. })), "{failed:?}");
        assert!(
            std::fs::metadata(data.log_path())?.len() > log_before,
            "the failed record is in the log"
        );
        let failed_sequence = writes.log().sequence();
        // Read before the next write, the log would replay it: this is the
        // window the module docs describe.
        assert!(load(&data)?.entry("lost").is_some());
        let written = writes.files_written();
        writes
            .change(&durable, |c| c.apply(apply("kept", 1), now()))
            .await?;
        assert_eq!(writes.files_written(), written + 1);
        assert_eq!(writes.log().log_len(), 0, "the next write was a compaction");
        assert!(writes.log().sequence() > failed_sequence);
        writes
            .change(&durable, |c| c.apply(apply("after", 1), now()))
            .await?;
        assert!(writes.log().log_len() > 0, "and then appends again");
        let on_disk = load(&data)?;
        for tile in ["before", "kept", "after"] {
            assert!(on_disk.entry(tile).is_some(), "{tile}");
        }
        assert!(on_disk.entry("lost").is_none(), "a failed change became durable");
        assert_eq!(on_disk, *durable.lock().await);
        // Reopened (a restart): still without it, and writable.
        let (reopened, log) = data.open(REGION)?;
        let reopened = reopened.ok_or_else(|| anyhow::anyhow!("no catalog"))?;
        assert_eq!(reopened, on_disk);
        let durable = tokio::sync::Mutex::new(reopened.clone());
        let writes = Writes::new(reopened, log);
        writes
            .change(&durable, |c| c.apply(apply("restarted", 1), now()))
            .await?;
        let on_disk = load(&data)?;
        assert!(on_disk.entry("lost").is_none());
        assert!(on_disk.entry("restarted").is_some());
        Ok(())
    }

    /// Past the log's bound a write is a compaction; the catalog read
    /// back is the same either way; a lost catalog takes its log along.
    #[tokio::test]
    async fn the_log_is_compacted_past_its_bound_and_lost_with_the_catalog() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let data = DataDir::new(dir.path());
        let (start, mut log) = create(&data)?;
        log.set_min_compaction_bytes(0);
        let durable = tokio::sync::Mutex::new(start.clone());
        let writes = Writes::new(start, log);
        let mut compactions = 0;
        for i in 0..20 {
            writes
                .change(&durable, |c| c.apply(apply(&format!("tile-{i}"), 1), now()))
                .await?;
            if writes.log().log_len() == 0 {
                compactions += 1;
            }
            assert_eq!(load(&data)?, *durable.lock().await);
        }
        assert!(compactions > 0, "never compacted");
        assert!(compactions < 20, "compacted every time: {compactions}");
        assert_eq!(writes.files_written(), 20);
        // Lost: a new generation, no log, nothing from before.
        writes
            .change(&durable, |c| c.apply(apply("tile-0", 2), now()))
            .await?;
        let old_generation = durable.lock().await.generation().to_owned();
        let (lost, generation) = writes.lose(&durable).await?;
        assert_eq!(lost, 20);
        assert_ne!(generation, old_generation);
        assert!(!data.log_path().exists(), "the log was removed");
        let on_disk = load(&data)?;
        assert!(on_disk.is_empty());
        assert_eq!(on_disk.generation(), generation);
        writes
            .change(&durable, |c| c.apply(apply("new", 1), now()))
            .await?;
        let on_disk = load(&data)?;
        assert_eq!(on_disk.len(), 1);
        assert_eq!(on_disk, *durable.lock().await);
        Ok(())
    }
}
