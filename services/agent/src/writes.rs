//! Group commit of the catalog file.
//!
//! Every change (an apply, a removal, a credential) must be durable before
//! it is acknowledged, and the catalog is written whole (temp file, fsync,
//! rename, directory fsync). One write per change made a region with many
//! roll-outs in flight pay a whole-file write and two fsyncs per call, one
//! after the other. Here a change is made at once on the *staged*
//! catalog (every change accepted so far, written or not) and numbered;
//! its caller then waits until a write that includes its number is
//! durable. One caller at a time writes, taking everything staged by then,
//! so the changes that arrived during a write share the next one.
//!
//! Readers see only the durable catalog (the `durable` mutex the caller
//! passes), as before. A failed write fails every change it carried (and
//! any staged after them that has not been written): the staged catalog
//! goes back to the durable one, so nothing acknowledged as failed can
//! become durable later.

use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::catalog::{Catalog, new_generation};
use crate::error::{Error, Result};
use crate::persist::DataDir;
use crate::service::blocking;

/// The staged catalog and the numbers of its changes.
#[derive(Debug)]
pub struct Writes {
    staged: Mutex<Staged>,
    /// Held by the one caller writing the file.
    writing: tokio::sync::Mutex<()>,
    /// How many times the file was written.
    written: std::sync::atomic::AtomicU64,
}

#[derive(Debug)]
struct Staged {
    catalog: Catalog,
    /// The number of the newest staged change.
    seq: u64,
    /// Every change up to this number is durable.
    durable: u64,
    /// Changes up to this number were lost with a failed write (and why).
    lost: Option<(u64, String)>,
}

impl Writes {
    /// Starts from `catalog`, durable as it is.
    pub fn new(catalog: Catalog) -> Self {
        Self {
            staged: Mutex::new(Staged {
                catalog,
                seq: 0,
                durable: 0,
                lost: None,
            }),
            writing: tokio::sync::Mutex::new(()),
            written: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Staged> {
        self.staged.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes `change` on the staged catalog (on a copy: a refused change
    /// leaves it as it was) and returns its result once the catalog with
    /// it is durable in `data` and installed in `durable`. A change that
    /// changes nothing still waits for the changes before it (it reports
    /// on them).
    pub async fn change<R>(
        &self,
        durable: &tokio::sync::Mutex<Catalog>,
        data: &DataDir,
        change: impl FnOnce(&mut Catalog) -> Result<R>,
    ) -> Result<R> {
        let mine = {
            let mut st = self.lock();
            let mut next = st.catalog.clone();
            let result = change(&mut next)?;
            if next != st.catalog {
                st.catalog = next;
                st.seq += 1;
            }
            (result, st.seq)
        };
        let (result, seq) = mine;
        loop {
            if let Some(done) = self.settled(seq) {
                return done.map(|()| result);
            }
            let _writer = self.writing.lock().await;
            if let Some(done) = self.settled(seq) {
                return done.map(|()| result);
            }
            let (snapshot, upto) = {
                let st = self.lock();
                (st.catalog.clone(), st.seq)
            };
            let d = data.clone();
            let to_write = snapshot.clone();
            let saved = blocking(move || d.save(&to_write)).await;
            self.written.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            match saved {
                Ok(()) => {
                    *durable.lock().await = snapshot;
                    self.lock().durable = upto;
                }
                Err(e) => {
                    // Back to what is on disk: the lost changes are failed.
                    let on_disk = durable.lock().await.clone();
                    let mut st = self.lock();
                    st.catalog = on_disk;
                    st.lost = Some((st.seq, e.to_string()));
                    return Err(e);
                }
            }
        }
    }

    /// How many times the catalog file was written (for tests and metrics).
    pub fn files_written(&self) -> u64 {
        self.written.load(std::sync::atomic::Ordering::Relaxed)
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
    /// any write in flight, the file is removed and a new generation
    /// written. Returns how many live entries were lost and the new
    /// generation.
    pub async fn lose(
        &self,
        durable: &tokio::sync::Mutex<Catalog>,
        data: &DataDir,
    ) -> Result<(usize, String)> {
        let _writer = self.writing.lock().await;
        let mut current = durable.lock().await;
        let lost = current.len();
        let fresh = Catalog::new(current.region(), new_generation());
        let (d, to_write) = (data.clone(), fresh.clone());
        blocking(move || {
            d.remove_catalog()?;
            d.save(&to_write)
        })
        .await?;
        let generation = fresh.generation().to_owned();
        *current = fresh.clone();
        let mut st = self.lock();
        st.catalog = fresh;
        st.seq += 1;
        st.durable = st.seq;
        Ok((lost, generation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Apply;

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

    /// Fifty applies at once: every one durable (in the file and the
    /// durable catalog) when it returns, in far fewer writes than fifty.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_changes_share_writes_and_are_durable_when_they_return() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let data = DataDir::new(dir.path());
        let start = Catalog::new("aws:us-east-1", new_generation());
        data.save(&start)?;
        let durable = std::sync::Arc::new(tokio::sync::Mutex::new(start.clone()));
        let writes = std::sync::Arc::new(Writes::new(start));
        let calls: Vec<_> = (0..50)
            .map(|i| {
                let (writes, durable, data) = (writes.clone(), durable.clone(), data.clone());
                tokio::spawn(async move {
                    let tile = format!("tile-{i}");
                    let applied = writes
                        .change(&durable, &data, |c| c.apply(apply(&tile, 1), now()))
                        .await?;
                    // Durable once acknowledged: on disk and for readers.
                    let on_disk = data
                        .load("aws:us-east-1")?
                        .ok_or_else(|| anyhow::anyhow!("no catalog file"))?;
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
        // A change that changes nothing writes nothing.
        let again = writes
            .change(&durable, &data, |c| c.apply(apply("tile-3", 1), now()))
            .await?;
        assert!(!again.changed);
        assert_eq!(writes.files_written(), written);
        Ok(())
    }

    /// A write that fails fails its change, which never becomes durable
    /// later with another's write; a refused change stages nothing.
    #[tokio::test]
    async fn a_failed_write_fails_its_change_and_loses_it() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let start = Catalog::new("aws:us-east-1", new_generation());
        let durable = tokio::sync::Mutex::new(start.clone());
        let writes = Writes::new(start);
        // A file where the data directory should be: the write fails.
        let blocked = dir.path().join("data");
        std::fs::write(&blocked, b"not a directory")?;
        let data = DataDir::new(&blocked);
        let failed = writes
            .change(&durable, &data, |c| c.apply(apply("lost", 1), now()))
            .await;
        let Err(e) = failed else {
            anyhow::bail!("the write into a file succeeded");
        };
        assert!(matches!(e, Error::Persist { .. }), "{e}");
        // The disk comes back; the next change is written without the lost one.
        std::fs::remove_file(&blocked)?;
        writes
            .change(&durable, &data, |c| c.apply(apply("kept", 1), now()))
            .await?;
        let on_disk = data
            .load("aws:us-east-1")?
            .ok_or_else(|| anyhow::anyhow!("no catalog file"))?;
        assert!(on_disk.entry("kept").is_some());
        assert!(on_disk.entry("lost").is_none(), "a failed change became durable");
        assert!(durable.lock().await.entry("lost").is_none());
        // A refused change (an older fencing token) stages nothing.
        let refused = writes
            .change(&durable, &data, |c| {
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
}
