//! Process-level tests of the `tilewave` binary: `dev up` starts etcd and
//! the registry in the background, the tile commands reach it through the
//! saved settings alone, errors exit with their codes, and `dev down
//! --purge` stops everything and removes what `dev up` wrote.
//!
//! The roll-out journey runs a stack with the rollout service and four
//! agents on a fast virtual clock: plan, start, watch to SUCCEEDED, where
//! the tile is live, the freeze refusing a start, the clock refusing to go
//! back.
//!
//! Needs the service binaries (built by `cargo build --bins` or a workspace
//! test run); without them a test says so and does nothing, except under
//! CI (`CI=true`), where a missing binary fails it.

#![allow(
    clippy::expect_used,
    reason = "test code: a failure to run the binary should fail the test"
)]

mod roles;
mod tls;
mod whoami;

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

/// Whether every binary is built; under CI a missing one fails the test.
fn binaries_built(names: &[&str]) -> bool {
    for name in names {
        if let Err(e) = tilewave_testkit::bin_path(name) {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true but {name} is not built: {e:#}");
            }
            eprintln!("SKIPPED: {e:#}");
            return false;
        }
    }
    true
}

#[test]
fn dev_stack_and_tile_journey() {
    if !binaries_built(&["tilewave-registry"]) {
        return;
    }
    let cli = Cli {
        dir: tempfile::tempdir().unwrap(),
    };

    let up = cli.run(&["dev", "up", "--regions", "1"]);
    assert_eq!(code(&up), 0);
    assert!(stdout(&up).contains("registry"), "dev up names what it started");
    let config = std::fs::read_to_string(cli.config()).unwrap();
    assert!(config.contains("registry = \"http://127.0.0.1:"), "{config}");

    let again = cli.run(&["dev", "up", "--regions", "1"]);
    assert_eq!(code(&again), 3, "a second dev up is refused");
    assert!(stderr(&again).contains("already running"));

    let status = cli.run(&["dev", "status", "-o", "json"]);
    assert_eq!(code(&status), 0);
    let rows: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    let names: Vec<&str> = rows.iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(
        names[..2],
        ["etcd", "registry"],
        "etcd, the registry, then the rest that is built"
    );
    assert!(
        rows.len() <= 4,
        "at most the rollout service and one agent more: {names:?}"
    );
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

/// Runs `tilewave` with a time limit, killing it when it runs over.
fn run_bounded(cli: &Cli, args: &[&str], limit: std::time::Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tilewave"))
        .args(args)
        .env("TILEWAVE_DEV_DIR", cli.dev_dir())
        .env("TILEWAVE_CONFIG", cli.config())
        .env("USER", "it-test")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running tilewave");
    let step = std::time::Duration::from_millis(100);
    let mut waited = std::time::Duration::ZERO;
    while child.try_wait().expect("waiting").is_none() {
        if waited > limit {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(step);
        waited += step;
    }
    let out = child.wait_with_output().expect("collecting output");
    eprintln!(
        "$ tilewave {}\n-> {:?}\n{}{}",
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Imports riverflow under `id`, sets its test workspace, records the five
/// sign-offs and sets GA a week and an hour after virtual now.
fn prepare_launch(cli: &Cli, id: &str) {
    let riverflow = fixture("riverflow-ingest.json");
    let import = cli.run(&[
        "tile",
        "import",
        riverflow.to_str().expect("a UTF-8 path"),
        "--id",
        id,
    ]);
    assert_eq!(code(&import), 0);
    assert_eq!(
        code(&cli.run(&["tile", "set-test-workspace", id, "6051921418418893"])),
        0
    );
    for role in ["engineering", "partner-sa", "product", "partner", "legal"] {
        assert_eq!(
            code(&cli.run(&["tile", "signoff", id, "--role", role])),
            0,
            "{role}"
        );
    }
    let clock = cli.run(&["clock", "show", "-o", "json"]);
    assert_eq!(code(&clock), 0);
    let reading: serde_json::Value = serde_json::from_slice(&clock.stdout).expect("JSON");
    assert_eq!(reading["virtual_clock"], true, "{reading}");
    let now: jiff::Timestamp = reading["now"]
        .as_str()
        .expect("a time")
        .parse()
        .expect("RFC 3339");
    // A week and a few hours: the clock runs on while the commands run.
    let ga = now + jiff::SignedDuration::from_hours(7 * 24 + 6);
    let ga = ga.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    assert_eq!(code(&cli.run(&["tile", "set-ga", id, &ga])), 0);
}

#[test]
fn rollout_journey_on_the_virtual_clock() {
    if !binaries_built(&["tilewave-registry", "tilewave-rollout", "tilewave-agent"]) {
        return;
    }
    let cli = Cli {
        dir: tempfile::tempdir().unwrap(),
    };
    let up = cli.run(&["dev", "up", "--regions", "4", "--virtual-clock", "--rate", "5000"]);
    assert_eq!(code(&up), 0);
    let config = std::fs::read_to_string(cli.config()).unwrap();
    assert!(config.contains("rollout = \"http://127.0.0.1:"), "{config}");
    let status = cli.run(&["dev", "status", "-o", "json"]);
    assert_eq!(code(&status), 0, "every process healthy");
    let rows: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(
        rows.as_array().unwrap().len(),
        7,
        "etcd, registry, rollout, 4 agents"
    );

    // The stack's four regions: `dev up --regions 4` picks them.
    let regions: Vec<String> = tilewave_core::regions::RegionCatalog::builtin().representative(4);
    let regions = regions.join(",");

    prepare_launch(&cli, "riverflow");
    let plan = cli.run(&["rollout", "plan", "riverflow", "--regions", &regions]);
    assert_eq!(code(&plan), 0);
    let text = stdout(&plan);
    assert!(text.contains("4 regions"), "{text}");
    assert!(text.contains("canaries") || text.contains("canary"), "{text}");
    assert!(text.contains("(GA - 24h)"), "{text}");

    let bad = cli.run(&["rollout", "plan", "riverflow", "--bake", "4 hours"]);
    assert_eq!(code(&bad), 2);
    assert!(stderr(&bad).contains("--bake"), "names the flag");

    let start = cli.run(&["rollout", "start", "riverflow", "--regions", &regions]);
    assert_eq!(code(&start), 0);
    assert!(stdout(&start).contains("riverflow-r1"), "{}", stdout(&start));

    let watch = run_bounded(
        &cli,
        &["rollout", "status", "riverflow", "--watch"],
        std::time::Duration::from_secs(180),
    );
    assert_eq!(code(&watch), 0);
    assert!(stdout(&watch).contains("succeeded"), "{}", stdout(&watch));
    let done = cli.run(&["rollout", "status", "riverflow", "-o", "json"]);
    let r: serde_json::Value = serde_json::from_slice(&done.stdout).unwrap();
    assert_eq!(r["state"], "SUCCEEDED", "{r}");
    assert_eq!(r["regions_live"], 4, "{r}");

    let list = cli.run(&["rollout", "list"]);
    assert_eq!(code(&list), 0);
    assert!(stdout(&list).contains("SUCCEEDED"));

    let where_ = cli.run(&["tile", "where", "riverflow", "-o", "json"]);
    assert_eq!(code(&where_), 0);
    let placements: serde_json::Value = serde_json::from_slice(&where_.stdout).unwrap();
    let live: Vec<&serde_json::Value> = placements
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["live_revision"] == 1)
        .collect();
    assert_eq!(live.len(), 4, "revision 1 in all four regions: {placements}");
    assert!(stdout(&cli.run(&["tile", "where", "riverflow"])).contains("live in 4 of"));

    // A freeze refuses a start.
    prepare_launch(&cli, "riverflow-b");
    assert_eq!(code(&cli.run(&["freeze", "on", "--reason", "it-test"])), 0);
    assert!(stdout(&cli.run(&["freeze", "show"])).contains("FROZEN  yes"));
    let frozen = cli.run(&["rollout", "start", "riverflow-b", "--regions", &regions]);
    assert_eq!(code(&frozen), 3, "a start during a freeze is refused");
    assert_eq!(code(&cli.run(&["freeze", "off"])), 0);

    // The clock never goes back.
    let back = cli.run(&["clock", "set", "2000-01-01 00:00"]);
    assert!(matches!(code(&back), 2 | 3), "exit 2 or 3");
    assert!(stderr(&back).contains("Set:"), "{}", stderr(&back));

    let down = cli.run(&["dev", "down", "--purge"]);
    assert_eq!(code(&down), 0);
    assert!(!cli.dev_dir().exists());
}

/// Starts a stack with agents in `regions` regions on a fast virtual clock
/// and returns `dev status` as JSON rows (every process healthy).
fn up_with_regions(cli: &Cli, regions: &str) -> Vec<serde_json::Value> {
    let up = cli.run(&[
        "dev",
        "up",
        "--regions",
        regions,
        "--virtual-clock",
        "--rate",
        "5000",
    ]);
    assert_eq!(code(&up), 0);
    assert!(
        stdout(&up).contains(&format!("regions: {regions} of 70, the stack's region catalog")),
        "dev up names the stack's regions: {}",
        stdout(&up)
    );
    let status = cli.run(&["dev", "status", "-o", "json"]);
    assert_eq!(code(&status), 0, "every process healthy");
    let rows: serde_json::Value = serde_json::from_slice(&status.stdout).expect("JSON");
    rows.as_array().expect("an array").clone()
}

/// Follows the tile's roll-out to its end; returns its final status.
fn follow_to_the_end(cli: &Cli, tile: &str) -> serde_json::Value {
    let watch = run_bounded(
        cli,
        &["rollout", "status", tile, "--watch"],
        std::time::Duration::from_secs(120),
    );
    assert_eq!(code(&watch), 0);
    let done = cli.run(&["rollout", "status", tile, "-o", "json"]);
    serde_json::from_slice(&done.stdout).expect("JSON")
}

/// `dev up --regions 6` runs agents on all three clouds, makes those six
/// the stack's region catalog, and an all-cloud tile's roll-out (no
/// `--regions` flag) covers exactly them and succeeds.
#[test]
fn a_six_region_stack_rolls_an_all_cloud_tile_out_over_its_six_regions() {
    if !binaries_built(&["tilewave-registry", "tilewave-rollout", "tilewave-agent"]) {
        return;
    }
    let cli = Cli {
        dir: tempfile::tempdir().unwrap(),
    };
    let rows = up_with_regions(&cli, "6");
    let agents: Vec<&str> = rows
        .iter()
        .filter_map(|r| r["name"].as_str())
        .filter(|n| n.starts_with("agent-"))
        .collect();
    assert_eq!(agents.len(), 6, "{agents:?}");
    for cloud in ["aws", "azure", "gcp"] {
        assert!(
            agents.iter().any(|a| a.starts_with(&format!("agent-{cloud}-"))),
            "an agent on {cloud}: {agents:?}"
        );
    }
    let status = cli.run(&["dev", "status"]);
    assert!(
        stdout(&status).contains("regions: 6 of 70, the stack's region catalog"),
        "dev status shows the saved regions: {}",
        stdout(&status)
    );

    prepare_launch(&cli, "riverflow");
    let plan = cli.run(&["rollout", "plan", "riverflow"]);
    assert_eq!(code(&plan), 0, "every region of the plan has an agent");
    assert!(stdout(&plan).contains("6 regions"), "{}", stdout(&plan));

    let start = cli.run(&["rollout", "start", "riverflow"]);
    assert_eq!(code(&start), 0);
    let r = follow_to_the_end(&cli, "riverflow");
    assert_eq!(r["state"], "SUCCEEDED", "{r}");
    assert_eq!(r["regions_live"], 6, "{r}");
    assert_eq!(code(&cli.run(&["dev", "down", "--purge"])), 0);
}

/// With one agent stopped, `rollout plan` lists its region as a problem
/// and `rollout start` refuses (exit 3) naming it and the `--exclude`
/// that fits; the start with that `--exclude` completes.
#[test]
fn a_stopped_agent_fails_the_pre_flight_check_and_the_suggested_exclude_completes() {
    if !binaries_built(&["tilewave-registry", "tilewave-rollout", "tilewave-agent"]) {
        return;
    }
    let cli = Cli {
        dir: tempfile::tempdir().unwrap(),
    };
    let rows = up_with_regions(&cli, "6");
    let stopped = "gcp:asia-northeast1";
    let pid = rows
        .iter()
        .find(|r| r["name"] == "agent-gcp-asia-northeast1")
        .and_then(|r| r["pid"].as_i64())
        .and_then(|p| i32::try_from(p).ok())
        .expect("the gcp canary's agent runs");
    let pid = nix::unistd::Pid::from_raw(pid);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("stopping the agent");

    prepare_launch(&cli, "riverflow");
    // Its registration goes when it stops: poll the plan until it says so.
    let exclude = format!("--exclude {stopped}");
    // (At most 30 s, counted in steps as `run_bounded` does.)
    let step = std::time::Duration::from_millis(200);
    let mut waited = std::time::Duration::ZERO;
    let plan = loop {
        let plan = cli.run(&["rollout", "plan", "riverflow"]);
        if code(&plan) == 3 || waited > std::time::Duration::from_secs(30) {
            break plan;
        }
        std::thread::sleep(step);
        waited += step;
    };
    assert_eq!(
        code(&plan),
        3,
        "a plan with a region lacking an agent is not feasible"
    );
    let text = stdout(&plan);
    assert!(
        text.contains(&format!(
            "- no agent: no agent is registered for {stopped} (is its tilewave-agent running?)"
        )),
        "{text}"
    );
    assert!(text.contains(&format!("({exclude})")), "{text}");

    let refused = cli.run(&["rollout", "start", "riverflow"]);
    assert_eq!(code(&refused), 3, "FAILED_PRECONDITION");
    let err = stderr(&refused);
    assert!(err.contains(stopped), "names the region: {err}");
    assert!(err.contains(&exclude), "says the --exclude that fits: {err}");
    let none = cli.run(&["rollout", "list", "-o", "json"]);
    assert_eq!(stdout(&none).trim(), "[]", "nothing started");

    let start = cli.run(&["rollout", "start", "riverflow", "--exclude", stopped]);
    assert_eq!(code(&start), 0);
    let r = follow_to_the_end(&cli, "riverflow");
    assert_eq!(r["state"], "SUCCEEDED", "{r}");
    assert_eq!(r["regions_live"], 5, "{r}");
    assert_eq!(code(&cli.run(&["dev", "down", "--purge"])), 0);
}

/// `tilewave auth table` prints the role table without any service: a line
/// per RPC, and the same rows as JSON.
#[test]
fn auth_table_needs_no_stack() {
    let cli = Cli {
        dir: tempfile::tempdir().expect("temp dir"),
    };
    let o = cli.run(&["auth", "table"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.starts_with("RPC "), "{text}");
    assert!(
        text.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
            == ["AgentService/ApplyTile", "-", "-", "-", "-", "x"]),
        "{text}"
    );
    let o = cli.run(&["auth", "table", "-o", "json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let rows: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    let rows = rows.as_array().expect("a list of rows");
    assert_eq!(rows.len(), text.lines().count() - 1);
    assert!(
        rows.iter()
            .all(|r| r["path"].as_str().is_some_and(|p| p.starts_with('/')))
    );
    assert_eq!(code(&cli.run(&["auth", "tables"])), 2);
}
