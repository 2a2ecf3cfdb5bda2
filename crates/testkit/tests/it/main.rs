//! Process-level tests of the test kit: real etcd, the echo server binary,
//! detached processes, and the kit's own helpers. One binary (docs/design.md, "Code layout").
#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] fns: a failure should panic the test"
)]

mod detached;
mod etcd;
mod eventually;
mod service;
mod testdir;

use std::path::Path;

/// Whether a process with this pid exists (zombies count).
pub fn pid_exists(pid: u32) -> bool {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap());
    !matches!(nix::sys::signal::kill(pid, None), Err(nix::errno::Errno::ESRCH))
}

/// A log file's contents ("" when missing).
pub fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
