//! Process-level tests of the `tilewave` binary: `dev up` starts etcd and
//! the registry in the background, the tile commands reach it through the
//! saved settings alone, errors exit with their codes, and `dev down
//! --purge` stops everything and removes what `dev up` wrote.
//!
//! Needs the `tilewave-registry` binary (built by `cargo build --bins` or a
//! workspace test run); without it the test says so and does nothing.

#![allow(
    clippy::expect_used,
    reason = "test code: a failure to run the binary should fail the test"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The shared partner-config fixtures of the core crate.
fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../core/tests/fixtures/partner-connect")
        .join(name)
}

/// Runs `tilewave` with a private dev directory and config file.
struct Cli {
    dir: tempfile::TempDir,
}

impl Cli {
    fn dev_dir(&self) -> PathBuf {
        self.dir.path().join("dev")
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_tilewave"))
            .args(args)
            .env("TILEWAVE_DEV_DIR", self.dev_dir())
            .env("TILEWAVE_CONFIG", self.config())
            .env("USER", "it-test")
            .env_remove("TILEWAVE_REGISTRY")
            .env_remove("TILEWAVE_ROLLOUT")
            .env_remove("TILEWAVE_ACTOR")
            .env_remove("TILEWAVE_TIMEOUT")
            .output()
            .expect("running tilewave");
        eprintln!(
            "$ tilewave {}\n-> {:?}\n{}{}",
            args.join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

impl Drop for Cli {
    /// Never leave a stack behind, even when an assertion failed.
    fn drop(&mut self) {
        if self.dev_dir().join("stack.toml").exists() {
            let _ = self.run(&["dev", "down"]);
        }
    }
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn dev_stack_and_tile_journey() {
    if let Err(e) = tilewave_testkit::bin_path("tilewave-registry") {
        eprintln!("SKIPPED: {e:#}");
        return;
    }
    let cli = Cli {
        dir: tempfile::tempdir().unwrap(),
    };

    let up = cli.run(&["dev", "up"]);
    assert_eq!(code(&up), 0);
    assert!(stdout(&up).contains("registry"), "dev up names what it started");
    let config = std::fs::read_to_string(cli.config()).unwrap();
    assert!(config.contains("registry = \"http://127.0.0.1:"), "{config}");

    let again = cli.run(&["dev", "up"]);
    assert_eq!(code(&again), 3, "a second dev up is refused");
    assert!(stderr(&again).contains("already running"));

    let status = cli.run(&["dev", "status", "-o", "json"]);
    assert_eq!(code(&status), 0);
    let rows: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2, "etcd and the registry");
    assert!(
        rows.iter().all(|r| r["alive"] == true && r["healthy"] == true),
        "{rows:?}"
    );
    let pids: Vec<i32> = rows.iter().map(|r| r["pid"].as_i64().unwrap() as i32).collect();

    // The journey, through the saved settings only.
    let riverflow = fixture("riverflow-ingest.json");
    let import = cli.run(&["tile", "import", riverflow.to_str().unwrap()]);
    assert_eq!(code(&import), 0);
    assert!(stdout(&import).contains("DRAFT"));

    let broken = cli.run(&[
        "tile",
        "import",
        fixture("invalid-several-errors.json").to_str().unwrap(),
    ]);
    assert_eq!(code(&broken), 2);
    let violations = stderr(&broken).lines().filter(|l| l.starts_with("  $.")).count();
    assert!(
        violations >= 2,
        "every error with its JSON path:\n{}",
        stderr(&broken)
    );

    assert_eq!(
        code(&cli.run(&["tile", "import", riverflow.to_str().unwrap()])),
        3,
        "exists"
    );
    assert_eq!(code(&cli.run(&["tile", "get", "no-such-tile"])), 3);
    assert_eq!(
        code(&cli.run(&["tile", "signoff", "riverflow", "--role", "ceo"])),
        2
    );
    assert_eq!(
        code(&cli.run(&["tile", "set-ga", "riverflow", "next tuesday"])),
        2
    );
    assert_eq!(
        code(&cli.run(&["tile", "set-test-workspace", "riverflow", "6051921418418893"])),
        0
    );
    assert_eq!(
        code(&cli.run(&["tile", "signoff", "riverflow", "--role", "engineering"])),
        0
    );
    let stale = cli.run(&[
        "tile",
        "signoff",
        "riverflow",
        "--role",
        "legal",
        "--revision",
        "1",
        "--etag",
        "1",
    ]);
    assert_eq!(code(&stale), 3, "a stale etag is a conflict");

    let get = cli.run(&["tile", "get", "riverflow", "-o", "json"]);
    assert_eq!(code(&get), 0);
    let tile: serde_json::Value = serde_json::from_slice(&get.stdout).unwrap();
    assert_eq!(tile["tile"]["state"], "VALIDATING");
    assert_eq!(tile["tile"]["sign_offs"][0]["role"], "engineering");
    assert_eq!(tile["tile"]["sign_offs"][0]["actor"], "it-test");

    let list = cli.run(&["tile", "list", "-o", "yaml"]);
    assert_eq!(code(&list), 0);
    assert!(
        stdout(&list).starts_with("- id: riverflow\n"),
        "{}",
        stdout(&list)
    );

    let down = cli.run(&["dev", "down", "--purge"]);
    assert_eq!(code(&down), 0);
    for pid in pids {
        let gone = matches!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
            Err(nix::errno::Errno::ESRCH)
        ) || std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.contains(") Z "));
        assert!(gone, "pid {pid} still runs after dev down");
    }
    assert!(!cli.dev_dir().exists(), "--purge deletes the dev directory");
    assert!(!cli.config().exists(), "--purge removes the saved settings");

    let unavailable = cli.run(&["tile", "list"]);
    assert_eq!(code(&unavailable), 1);
    assert!(
        stderr(&unavailable).contains("tilewave dev up"),
        "says what to do"
    );
}
