//! Detached processes (for `tilewave dev up`): a pid file, survival without
//! an owner, and `stop_pid`.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tilewave_testkit::{
    ServiceSpec, TestDir, bin_path, check_ready, eventually, free_port, read_pid_file, spawn_detached,
    stop_pid,
};

#[tokio::test]
async fn spawn_detached_writes_a_pid_file_and_stop_pid_ends_it() {
    let dir = TestDir::new("detached").unwrap();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port().unwrap()));
    let launch = ServiceSpec::new("bg", bin_path("tilewave-testkit-echo").unwrap()).launch(addr);
    let pid = spawn_detached(&launch, dir.path()).unwrap();
    assert_eq!(read_pid_file(&dir.path().join("bg.pid")).unwrap(), pid);
    eventually("the detached echo to serve", Duration::from_secs(10), || {
        check_ready(addr, Some(""))
    })
    .await
    .unwrap();
    assert!(crate::pid_exists(pid));

    stop_pid(pid, Duration::from_secs(5)).await.unwrap();
    assert!(!crate::pid_exists(pid), "pid {pid} survived stop_pid");
    assert!(crate::read_log(&dir.path().join("bg.log")).contains("echo: SIGTERM, shutting down"));
    // Stopping a pid that is gone is fine.
    stop_pid(pid, Duration::from_millis(100)).await.unwrap();
}
