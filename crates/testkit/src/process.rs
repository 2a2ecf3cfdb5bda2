//! Spawning child processes with their output in a log file, and stopping
//! them with SIGTERM then SIGKILL.
//!
//! Two ways to run a [`Launch`]:
//!
//! - [`ChildProcess::spawn`]: an owned child of this process that is
//!   terminated (SIGTERM, then SIGKILL after a grace period) and reaped when
//!   dropped, so a test never leaks a process. It stays in our process group,
//!   so a test runner killing the test's group takes the children with it.
//! - [`spawn_detached`]: a child in its own process group that outlives the
//!   caller (for `tilewave dev up`), whose pid is written to `<dir>/<name>.pid`;
//!   [`stop_pid`] stops it later.
//!
//! Output always goes to `<dir>/<name>.log` (opened in append mode, so a
//! restarted process continues the same file after a marker line), never to
//! a pipe that nobody drains.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// How long [`Drop`] of a [`ChildProcess`] waits after SIGTERM before SIGKILL.
pub const DROP_GRACE: Duration = Duration::from_secs(3);

/// How often exits are polled while waiting for a process to end.
const EXIT_POLL: Duration = Duration::from_millis(10);

/// How much of a run's log beginning error messages quote.
const LOG_HEAD_BYTES: usize = 3000;

/// How much of a run's log end error messages quote.
const LOG_TAIL_BYTES: usize = 3000;

/// How much of a run's log is read at most, to quote or scan.
const SCAN_LIMIT: u64 = 4 << 20;

/// A command line to run: what [`ChildProcess::spawn`] and [`spawn_detached`]
/// start. Kept as data so the same launch can be repeated on restart and
/// shown in logs and errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// Short name: the log is `<dir>/<name>.log`, the pid file `<dir>/<name>.pid`.
    pub name: String,
    /// The executable.
    pub program: PathBuf,
    /// Arguments, in order.
    pub args: Vec<String>,
    /// Extra environment variables (the rest is inherited).
    pub env: Vec<(String, String)>,
    /// Inherited variables the child must not see (a test that proves what
    /// happens without them).
    pub env_remove: Vec<String>,
}

impl Launch {
    /// The command line as one shell-like string, for logs and errors.
    pub fn command_line(&self) -> String {
        let mut s = String::new();
        for (k, v) in &self.env {
            s.push_str(&format!("{k}={v} "));
        }
        s.push_str(&self.program.display().to_string());
        for a in &self.args {
            s.push(' ');
            s.push_str(a);
        }
        s
    }

    /// Where this launch logs, under `dir`.
    pub fn log_path(&self, dir: &Path) -> PathBuf {
        dir.join(format!("{}.log", self.name))
    }

    /// Where [`spawn_detached`] writes the pid, under `dir`.
    pub fn pid_path(&self, dir: &Path) -> PathBuf {
        dir.join(format!("{}.pid", self.name))
    }

    /// Opens the log (append), writes a marker line naming the command, and
    /// builds the [`Command`] with stdout and stderr going to the log.
    /// Returns the command and the log offset where this run's output starts.
    fn command(&self, dir: &Path) -> anyhow::Result<(Command, u64)> {
        let log_path = self.log_path(dir);
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening log {}", log_path.display()))?;
        writeln!(log, "=== tilewave-testkit: starting {}", self.command_line())?;
        log.flush()?;
        let offset = log.seek(SeekFrom::End(0))?;
        let stderr = log.try_clone()?;
        let mut cmd = Command::new(&self.program);
        for key in &self.env_remove {
            cmd.env_remove(key);
        }
        cmd.args(&self.args)
            .envs(
                self.env
                    .iter()
                    .map(|(k, v)| (OsString::from(k), OsString::from(v))),
            )
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr);
        Ok((cmd, offset))
    }
}

/// Sends `signal` to `pid`.
pub fn signal_pid(pid: u32, signal: Signal) -> anyhow::Result<()> {
    let raw = i32::try_from(pid).context("pid out of range")?;
    kill(Pid::from_raw(raw), signal).with_context(|| format!("sending {signal} to pid {pid}"))
}

/// Whether a process with this pid exists (a zombie counts as existing).
fn pid_exists(pid: Pid) -> bool {
    !matches!(kill(pid, None), Err(Errno::ESRCH))
}

/// Reaps `pid` if it is our child and has exited; true when it is gone.
fn reap_if_child(pid: Pid) -> bool {
    match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::StillAlive) => false,
        Ok(_) => true,
        // Not our child (or already reaped): whether it exists is all we can know.
        Err(_) => !pid_exists(pid),
    }
}

/// Stops a process by pid (typically a detached one): SIGTERM, then SIGKILL
/// when it has not exited after `grace`. Returns once it is gone. A pid that
/// does not exist is not an error.
pub async fn stop_pid(pid: u32, grace: Duration) -> anyhow::Result<()> {
    let raw = Pid::from_raw(i32::try_from(pid).context("pid out of range")?);
    match kill(raw, Signal::SIGTERM) {
        Err(Errno::ESRCH) => return Ok(()),
        r => r.with_context(|| format!("sending SIGTERM to pid {pid}"))?,
    }
    let deadline = tokio::time::Instant::now() + grace;
    while tokio::time::Instant::now() < deadline {
        if reap_if_child(raw) {
            return Ok(());
        }
        tokio::time::sleep(EXIT_POLL).await;
    }
    match kill(raw, Signal::SIGKILL) {
        Err(Errno::ESRCH) => return Ok(()),
        r => r.with_context(|| format!("sending SIGKILL to pid {pid}"))?,
    }
    // After SIGKILL the process is gone as soon as the kernel tears it down.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !reap_if_child(raw) {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "pid {pid} survived SIGKILL for 10 s"
        );
        tokio::time::sleep(EXIT_POLL).await;
    }
    Ok(())
}

/// Starts `launch` detached: in its own process group (a Ctrl-C in the
/// caller's terminal does not reach it), output to `<dir>/<name>.log`, its
/// pid written to `<dir>/<name>.pid`. It outlives the caller; stop it with
/// [`stop_pid`]. Returns the pid.
pub fn spawn_detached(launch: &Launch, dir: &Path) -> anyhow::Result<u32> {
    let (mut cmd, _) = launch.command(dir)?;
    cmd.process_group(0);
    let child = cmd
        .spawn()
        .with_context(|| format!("spawning {}", launch.command_line()))?;
    let pid = child.id();
    // Dropping a std Child neither kills nor waits: the process lives on.
    drop(child);
    let pid_path = launch.pid_path(dir);
    std::fs::write(&pid_path, format!("{pid}\n"))
        .with_context(|| format!("writing {}", pid_path.display()))?;
    Ok(pid)
}

/// Reads a pid file written by [`spawn_detached`].
pub fn read_pid_file(path: &Path) -> anyhow::Result<u32> {
    let s = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    s.trim()
        .parse()
        .with_context(|| format!("{} does not hold a pid", path.display()))
}

/// A run's output: the log from `offset` on, at most [`SCAN_LIMIT`] bytes.
fn run_output(path: &Path, offset: u64) -> Option<String> {
    let mut f = File::open(path).ok()?;
    f.seek(SeekFrom::Start(offset)).ok()?;
    let mut buf = Vec::new();
    f.take(SCAN_LIMIT).read_to_end(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf).into_owned())
}

/// A log from `offset` on, for error messages: all of it when short, else
/// its beginning (where a failing start-up usually says why, before any
/// backtrace) and its end.
pub fn log_tail(path: &Path, offset: u64) -> String {
    let Some(out) = run_output(path, offset) else {
        return format!("(cannot read {})", path.display());
    };
    if out.len() <= LOG_HEAD_BYTES + LOG_TAIL_BYTES {
        return out;
    }
    let head_end = (0..=LOG_HEAD_BYTES)
        .rev()
        .find(|&i| out.is_char_boundary(i))
        .unwrap_or(0);
    let tail_start = (out.len() - LOG_TAIL_BYTES..out.len())
        .find(|&i| out.is_char_boundary(i))
        .unwrap_or(out.len());
    format!(
        "{}\n[... {} bytes ...]\n{}",
        &out[..head_end],
        tail_start - head_end,
        &out[tail_start..]
    )
}

/// Whether a log (from `offset` on) says the process could not bind its
/// address because something else holds it: the signal to retry on other
/// ports. Scans the whole run's output, not just its end.
pub fn log_says_addr_in_use(path: &Path, offset: u64) -> bool {
    run_output(path, offset).is_some_and(|o| o.to_ascii_lowercase().contains("address already in use"))
}

/// A child process that we own: terminated and reaped on drop.
#[derive(Debug)]
pub struct ChildProcess {
    /// The command line, kept for restart and for messages.
    launch: Launch,
    /// Where the log lives.
    log_path: PathBuf,
    /// Offset in the log where this run's output starts.
    log_offset: u64,
    /// `None` once reaped.
    child: Option<Child>,
    /// The exit status, once reaped.
    status: Option<ExitStatus>,
}

impl ChildProcess {
    /// Starts `launch` with output appended to `<dir>/<name>.log`.
    pub fn spawn(launch: Launch, dir: &Path) -> anyhow::Result<Self> {
        let (mut cmd, log_offset) = launch.command(dir)?;
        let child = cmd
            .spawn()
            .with_context(|| format!("spawning {}", launch.command_line()))?;
        tracing::debug!(pid = child.id(), cmd = %launch.command_line(), "spawned");
        Ok(Self {
            log_path: launch.log_path(dir),
            launch,
            log_offset,
            child: Some(child),
            status: None,
        })
    }

    /// The launch this child was started from.
    pub fn launch(&self) -> &Launch {
        &self.launch
    }

    /// The pid, while the child has not been reaped.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The log file.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// This run's part of the log (its last few kilobytes).
    pub fn log_tail(&self) -> String {
        log_tail(&self.log_path, self.log_offset)
    }

    /// Whether this run's log says the address was already in use.
    pub fn failed_to_bind(&self) -> bool {
        log_says_addr_in_use(&self.log_path, self.log_offset)
    }

    /// Sends a signal to the child (an error once it has been reaped).
    pub fn signal(&self, signal: Signal) -> anyhow::Result<()> {
        let pid = self
            .pid()
            .with_context(|| format!("{} is not running", self.launch.name))?;
        signal_pid(pid, signal)
    }

    /// Returns the exit status if the child has exited (reaping it), `None`
    /// while it runs.
    pub fn try_exit_status(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        if let Some(child) = &mut self.child
            && let Some(status) = child.try_wait()?
        {
            self.child = None;
            self.status = Some(status);
        }
        Ok(self.status)
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            // SIGKILL also ends a stopped (SIGSTOP) process.
            let _ = signal_pid(child.id(), Signal::SIGKILL);
            self.status = Some(child.wait()?);
        }
        Ok(())
    }

    /// SIGTERM, wait up to `grace` for the exit, then SIGKILL; reaps.
    /// Returns the exit status.
    pub async fn terminate(&mut self, grace: Duration) -> anyhow::Result<ExitStatus> {
        if let Some(child) = &self.child {
            // A stopped process only acts on SIGTERM once continued.
            signal_pid(child.id(), Signal::SIGTERM)?;
            let _ = signal_pid(child.id(), Signal::SIGCONT);
            let deadline = tokio::time::Instant::now() + grace;
            while tokio::time::Instant::now() < deadline {
                if let Some(status) = self.try_exit_status()? {
                    return Ok(status);
                }
                tokio::time::sleep(EXIT_POLL).await;
            }
            tracing::warn!(name = %self.launch.name, ?grace, "no exit after SIGTERM: sending SIGKILL");
            self.kill()?;
        }
        self.status
            .with_context(|| format!("{} was never started", self.launch.name))
    }

    /// The synchronous form of [`ChildProcess::terminate`], for [`Drop`]:
    /// blocks the thread while it waits.
    pub fn terminate_blocking(&mut self, grace: Duration) {
        let Some(child) = &mut self.child else { return };
        let pid = child.id();
        if signal_pid(pid, Signal::SIGTERM).is_ok() {
            let _ = signal_pid(pid, Signal::SIGCONT);
            let mut waited = Duration::ZERO;
            while waited < grace {
                match child.try_wait() {
                    Ok(Some(status)) => {
                        self.status = Some(status);
                        self.child = None;
                        return;
                    }
                    Ok(None) => {}
                    Err(_) => break,
                }
                std::thread::sleep(EXIT_POLL);
                waited += EXIT_POLL;
            }
        }
        let _ = self.kill();
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if self.child.is_some() {
            blocking(|| self.terminate_blocking(DROP_GRACE));
        }
    }
}

/// Runs blocking clean-up from a `Drop`. On a multi-thread tokio runtime the
/// worker hands its tasks to others first (`block_in_place`), so connections
/// the test still has open can close while a child drains them; elsewhere
/// (a current-thread runtime, no runtime) it simply blocks.
pub(crate) fn blocking(f: impl FnOnce()) {
    let multi = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi {
        tokio::task::block_in_place(f);
    } else {
        f();
    }
}

/// Terminates several children together: SIGTERM (and SIGCONT, for stopped
/// ones) to all, wait up to `grace` for all of them, then SIGKILL the rest.
/// Blocking, for [`Drop`]; one grace period in all, not one per child.
pub fn terminate_all_blocking(children: &mut [&mut ChildProcess], grace: Duration) {
    for c in children.iter() {
        if let Some(pid) = c.pid() {
            let _ = signal_pid(pid, Signal::SIGTERM);
            let _ = signal_pid(pid, Signal::SIGCONT);
        }
    }
    let mut waited = Duration::ZERO;
    while waited < grace {
        let mut running = 0;
        for c in children.iter_mut() {
            if !matches!(c.try_exit_status(), Ok(Some(_)) | Err(_)) {
                running += 1;
            }
        }
        if running == 0 {
            return;
        }
        std::thread::sleep(EXIT_POLL);
        waited += EXIT_POLL;
    }
    for c in children.iter_mut() {
        let _ = c.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bind_failure_is_found_and_quoted_before_a_long_backtrace() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x.log");
        let earlier = "=== an earlier run\nAddress already in use\n";
        let run = format!(
            "Error: cannot bind 127.0.0.1:1\nCaused by: Address already in use (os error 98)\n{}",
            "  at some::frame\n".repeat(2000)
        );
        std::fs::write(&log, format!("{earlier}{run}")).unwrap();
        let offset = earlier.len() as u64;
        assert!(log_says_addr_in_use(&log, offset));
        let quoted = log_tail(&log, offset);
        assert!(quoted.starts_with("Error: cannot bind"), "{quoted}");
        assert!(quoted.contains("bytes ...]"));
        assert!(quoted.len() < 7000);

        // An earlier run's bind failure does not count for this run.
        std::fs::write(&log, format!("{earlier}Error: unknown argument\n")).unwrap();
        assert!(!log_says_addr_in_use(&log, offset));
        assert_eq!(log_tail(&log, offset), "Error: unknown argument\n");
    }
}
