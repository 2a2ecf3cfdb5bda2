//! `ServiceProcess` against the kit's echo server: start and health wait,
//! SIGSTOP/SIGCONT, kill -9, restart on the same port, terminate (graceful
//! and escalated), named health services, bind failures, drop.

use std::os::unix::process::ExitStatusExt as _;
use std::time::Duration;

use tilewave_testkit::{ServiceProcess, ServiceSpec, TestDir, bin_path, check_ready};

const ECHO: &str = "tilewave-testkit-echo";

fn echo(name: &str) -> ServiceSpec {
    ServiceSpec::new(name, bin_path(ECHO).unwrap())
}

#[tokio::test]
async fn starts_stops_continues_kills_and_restarts_on_the_same_port() {
    let dir = TestDir::new("svc").unwrap();
    let mut svc = ServiceProcess::start(echo("echo"), dir.path()).await.unwrap();
    let addr = svc.addr();
    assert_eq!(svc.endpoint(), format!("http://{addr}"));
    assert!(addr.ip().is_loopback());
    assert_eq!(svc.log_path(), dir.path().join("echo.log"));
    check_ready(addr, Some("")).await.unwrap();

    svc.stop().unwrap();
    // Frozen: the kernel accepts the connection, nobody answers.
    assert!(check_ready(addr, Some("")).await.is_err());
    svc.cont().unwrap();
    check_ready(addr, Some("")).await.unwrap();

    let pid = svc.pid().unwrap();
    svc.kill().unwrap();
    assert_eq!(svc.pid(), None);
    assert!(!crate::pid_exists(pid));
    assert!(check_ready(addr, Some("")).await.is_err());

    svc.restart().await.unwrap();
    assert_eq!(svc.addr(), addr);
    assert_ne!(svc.pid(), Some(pid));
    check_ready(addr, Some("")).await.unwrap();
    let log = crate::read_log(svc.log_path());
    assert_eq!(log.matches("=== tilewave-testkit: starting").count(), 2, "{log}");
    assert!(log.contains(&format!("--listen {addr}")), "{log}");
}

#[tokio::test]
async fn terminate_is_graceful_when_the_service_honours_sigterm() {
    let dir = TestDir::new("svc").unwrap();
    let mut svc = ServiceProcess::start(echo("echo"), dir.path()).await.unwrap();
    let start = tokio::time::Instant::now();
    let status = svc.terminate(Duration::from_secs(10)).await.unwrap().unwrap();
    assert!(status.success(), "{status}");
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(crate::read_log(svc.log_path()).contains("echo: SIGTERM, shutting down"));
    assert_eq!(svc.pid(), None);
}

#[tokio::test]
async fn terminate_escalates_to_sigkill_after_the_grace_period() {
    let dir = TestDir::new("svc").unwrap();
    let spec = echo("stubborn").with_args(["--ignore-sigterm"]);
    let mut svc = ServiceProcess::start(spec, dir.path()).await.unwrap();
    let start = tokio::time::Instant::now();
    let status = svc.terminate(Duration::from_millis(300)).await.unwrap().unwrap();
    assert_eq!(status.signal(), Some(9), "{status}");
    assert!(start.elapsed() >= Duration::from_millis(300));
    assert!(crate::read_log(svc.log_path()).contains("echo: SIGTERM ignored"));
}

#[tokio::test]
async fn waits_for_a_named_health_service_and_reports_not_serving() {
    let dir = TestDir::new("svc").unwrap();
    let spec = echo("named")
        .with_args(["--serving", "tilewave.test.v1.Echo"])
        .with_health_service(Some("tilewave.test.v1.Echo"));
    let svc = ServiceProcess::start(spec, dir.path()).await.unwrap();
    check_ready(svc.addr(), Some("tilewave.test.v1.Echo"))
        .await
        .unwrap();

    let spec = echo("sick")
        .with_args(["--not-serving"])
        .with_ready_timeout(Duration::from_millis(800));
    let err = ServiceProcess::start(spec, dir.path()).await.unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("not ready after 800ms"), "{msg}");
    assert!(msg.contains("NOT_SERVING"), "{msg}");
}

#[tokio::test]
async fn a_taken_port_is_reported_as_in_use() {
    let dir = TestDir::new("svc").unwrap();
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = squatter.local_addr().unwrap();
    let err = ServiceProcess::start_at(echo("late"), dir.path(), addr)
        .await
        .unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains(&format!("address {addr} already in use")), "{msg}");
}

#[tokio::test]
async fn a_service_that_exits_at_once_fails_fast_with_its_log() {
    let dir = TestDir::new("svc").unwrap();
    let start = tokio::time::Instant::now();
    let err = ServiceProcess::start(echo("bad").with_args(["--bogus"]), dir.path())
        .await
        .unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("exited during start-up"), "{msg}");
    assert!(msg.contains("unknown argument --bogus"), "{msg}");
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn drop_sends_sigterm_first() {
    let dir = TestDir::new("svc").unwrap();
    let svc = ServiceProcess::start(echo("dropped"), dir.path()).await.unwrap();
    let pid = svc.pid().unwrap();
    let log = svc.log_path().to_path_buf();
    drop(svc);
    assert!(!crate::pid_exists(pid));
    assert!(crate::read_log(&log).contains("echo: SIGTERM, shutting down"));
}

#[test]
fn bin_path_finds_built_binaries_and_explains_missing_ones() {
    assert!(bin_path(ECHO).unwrap().is_file());
    let err = bin_path("tilewave-no-such-binary").unwrap_err().to_string();
    assert!(err.contains("cargo build --bins"), "{err}");
}
