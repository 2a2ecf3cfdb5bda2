//! Free loopback ports.
//!
//! A port is found by binding `127.0.0.1:0` and reading what the kernel
//! chose; the listener is then closed so the child can bind it. Another
//! process may take the port in between: callers retry start-up on a bind
//! failure. Within this process, ports handed out recently are never handed
//! out again, so two children of one test never race each other.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::Mutex;

use anyhow::Context as _;

/// How many recently handed-out ports are remembered.
const REMEMBERED: usize = 1024;

/// Ports handed out by this process, most recent last.
static HANDED_OUT: Mutex<VecDeque<u16>> = Mutex::new(VecDeque::new());

/// `n` distinct free ports on 127.0.0.1. All are held open until all are
/// chosen, so they differ from each other.
pub fn free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    let mut held = Vec::with_capacity(n);
    let mut ports = Vec::with_capacity(n);
    let mut handed = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let mut tries = 0;
    while ports.len() < n {
        tries += 1;
        anyhow::ensure!(tries < 100 * n + 100, "could not find {n} free loopback ports");
        let l = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .context("binding 127.0.0.1:0 to find a free port")?;
        let port = l.local_addr()?.port();
        held.push(l);
        if handed.contains(&port) {
            continue;
        }
        ports.push(port);
        handed.push_back(port);
        if handed.len() > REMEMBERED {
            handed.pop_front();
        }
    }
    Ok(ports)
}

/// One free port on 127.0.0.1.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(free_ports(1)?[0])
}
