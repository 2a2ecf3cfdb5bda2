//! A temporary directory for a test's data and logs that is kept when the
//! test fails.
//!
//! On drop, if the thread is panicking (a failed assertion, an `unwrap`),
//! the directory is kept and its path and every `*.log` in it are printed
//! to stderr, so the failure can be read from the child processes' logs.
//! Otherwise it is deleted. A test that returns `Err` is not panicking when
//! its locals drop: prefer `.unwrap()`/`expect` in process-level tests, or
//! call [`TestDir::keep`]. Setting `TILEWAVE_KEEP_TEST_DIRS=1` keeps every
//! directory.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// Environment variable that, when set (to anything but `0`), keeps every
/// test directory.
pub const KEEP_ENV: &str = "TILEWAVE_KEEP_TEST_DIRS";

/// A temporary directory, deleted on drop unless the test failed.
#[derive(Debug)]
pub struct TestDir {
    /// `None` once kept (the directory then outlives this value).
    dir: Option<tempfile::TempDir>,
    /// The path, valid whether kept or not.
    path: PathBuf,
}

impl TestDir {
    /// A new directory `tilewave-<prefix>-XXXXXX` under the system temp dir.
    pub fn new(prefix: &str) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("tilewave-{prefix}-"))
            .tempdir()
            .context("creating a temporary directory")?;
        Ok(Self {
            path: dir.path().to_path_buf(),
            dir: Some(dir),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keeps the directory whatever happens, and returns its path.
    pub fn keep(&mut self) -> PathBuf {
        if let Some(dir) = self.dir.take() {
            let _ = dir.keep();
        }
        self.path.clone()
    }

    /// Every `*.log` file in the directory and its subdirectories, sorted.
    pub fn log_files(&self) -> Vec<PathBuf> {
        let mut logs = Vec::new();
        collect_logs(&self.path, &mut logs, 0);
        logs.sort();
        logs
    }
}

/// Depth-limited walk collecting `*.log` files.
fn collect_logs(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let p = entry.path();
        if p.is_dir() {
            if depth < 3 {
                collect_logs(&p, out, depth + 1);
            }
        } else if p.extension().is_some_and(|e| e == "log") {
            out.push(p);
        }
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let keep_env = std::env::var(KEEP_ENV).is_ok_and(|v| v != "0");
        if std::thread::panicking() || keep_env {
            let path = self.keep();
            let why = if keep_env { KEEP_ENV } else { "the test failed" };
            eprintln!("tilewave-testkit: kept {} ({why})", path.display());
            for log in self.log_files() {
                eprintln!("tilewave-testkit:   log {}", log.display());
            }
        }
    }
}
