//! The agent's files in `--data-dir`: the catalog (`catalog.pb`, a
//! protobuf `CatalogFile`) and the refuse-to-start flag.
//!
//! The catalog is written whole and atomically: to `catalog.pb.tmp`, fsync,
//! rename over `catalog.pb`, fsync of the directory. A crash at any point
//! leaves either the old or the new file, never a torn one, and a change is
//! acknowledged only after the rename is durable.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use prost::Message as _;
use tilewave_proto::agent::v1::CatalogFile;

use crate::catalog::Catalog;
use crate::error::{Error, Result};

/// The catalog file's name in the data directory.
pub const CATALOG_FILE: &str = "catalog.pb";
/// The temporary file a new catalog is written to before the rename.
pub const CATALOG_TMP_FILE: &str = "catalog.pb.tmp";
/// The flag file FaultInjectionService.RefuseToStart leaves behind.
pub const REFUSE_FLAG_FILE: &str = "refuse-to-start";

/// The agent's data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    dir: PathBuf,
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

    /// `<dir>/refuse-to-start`.
    pub fn refuse_flag_path(&self) -> PathBuf {
        self.dir.join(REFUSE_FLAG_FILE)
    }

    fn persist_err(&self, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.display().to_string();
        move |source| Error::Persist { path, source }
    }

    /// Reads the catalog of `region`; `None` when there is no file yet.
    pub fn load(&self, region: &str) -> Result<Option<Catalog>> {
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
        Catalog::from_file(file).map(Some).map_err(corrupt)
    }

    /// Writes the catalog atomically and durably (blocking I/O: call it
    /// from a blocking thread).
    pub fn save(&self, catalog: &Catalog) -> Result<()> {
        let bytes = catalog.to_file().encode_to_vec();
        std::fs::create_dir_all(&self.dir).map_err(self.persist_err(&self.dir))?;
        let tmp = self.dir.join(CATALOG_TMP_FILE);
        let target = self.catalog_path();
        {
            let mut f = std::fs::File::create(&tmp).map_err(self.persist_err(&tmp))?;
            f.write_all(&bytes).map_err(self.persist_err(&tmp))?;
            f.sync_all().map_err(self.persist_err(&tmp))?;
        }
        std::fs::rename(&tmp, &target).map_err(self.persist_err(&target))?;
        // The rename is durable only once the directory entry is.
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(self.persist_err(&self.dir))?;
        Ok(())
    }

    /// Deletes the catalog file (as a disk loss would).
    pub fn remove_catalog(&self) -> Result<()> {
        let path = self.catalog_path();
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.persist_err(&path)(e)),
        }
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
            let mut f = std::fs::File::create(&path).map_err(self.persist_err(&path))?;
            f.write_all(text.as_bytes()).map_err(self.persist_err(&path))?;
            f.sync_all().map_err(self.persist_err(&path))?;
            Ok(())
        } else {
            match std::fs::remove_file(&path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(self.persist_err(&path)(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Apply;

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
