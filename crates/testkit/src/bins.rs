//! Finding the workspace's binaries (the services, the CLI, the test echo
//! server) from a test or from another binary.

use std::path::{Path, PathBuf};

/// The path of the workspace binary `name`, built by cargo.
///
/// Looks, in order, at: `NEXTEST_BIN_EXE_<name>` / `CARGO_BIN_EXE_<name>`
/// at run time (set for the binaries of the test's own package); the
/// directory of the current executable (`target/<profile>/deps/x` ->
/// `target/<profile>`, or the executable's own directory, which is how the
/// CLI finds the services); `$CARGO_TARGET_DIR/<profile>`; and this
/// workspace's `target/<profile>`. Fails with a hint to build the binaries
/// when none exists.
pub fn bin_path(name: &str) -> anyhow::Result<PathBuf> {
    let mut candidates = Vec::new();
    for var in [format!("NEXTEST_BIN_EXE_{name}"), format!("CARGO_BIN_EXE_{name}")] {
        if let Some(p) = std::env::var_os(&var) {
            candidates.push(PathBuf::from(p));
        }
    }
    let mut profile = String::from("debug");
    if let Ok(exe) = std::env::current_exe()
        && let Some(mut dir) = exe.parent().map(Path::to_path_buf)
    {
        if dir.file_name().is_some_and(|n| n == "deps" || n == "examples") {
            dir.pop();
        }
        if let Some(p) = dir.file_name().and_then(|n| n.to_str()) {
            profile = p.to_owned();
        }
        candidates.push(dir.join(name));
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(target).join(&profile).join(name));
    }
    let workspace_target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target");
    candidates.push(workspace_target.join(&profile).join(name));

    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    let looked: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    anyhow::bail!(
        "binary `{name}` not found; build it first with `cargo build --bins` (or `cargo build -p <package> --bin {name}`). Looked at: {}",
        looked.join(", ")
    )
}
