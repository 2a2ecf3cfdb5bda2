//! tilewave's test kit: runs the real thing as child processes.
//!
//! - [`EtcdCluster`]: etcd with one or three members on free loopback
//!   ports, data and logs in a temporary directory, with SIGSTOP/SIGCONT,
//!   kill and restart of single members for failure tests.
//! - [`ServiceProcess`]: any service binary (found with [`bin_path`]) on a
//!   free port passed as `--listen`, ready once its gRPC health check says
//!   SERVING.
//! - [`Pki`]: a test CA with a certificate per service and per role, and
//!   the access policy, shared by the tests of a machine ([`Pki::shared`]).
//! - [`TestDir`]: a temporary directory kept (and its logs listed) when
//!   the test fails.
//! - [`eventually`]: polling against a deadline instead of sleeping,
//!   stopped early by an [`Outcome::Abort`] when waiting longer is
//!   pointless.
//! - [`PartnerDouble`]: a partner's HTTP API (`test-connection`, `connect`)
//!   on loopback, with Basic auth against credentials a test changes while
//!   it runs, a log of every request and injected 500s.
//! - [`WebhookReceiver`]: a webhook target on loopback that checks
//!   signatures per path, drops duplicates by idempotency key, injects
//!   failures and stalls, and fails a test on any delivery it did not
//!   expect (GoAlert's smoke-harness style).
//! - [`secret_scan`]: looks for secrets (in every form they could take)
//!   in logs, spans, command output, etcd and files; a leak names the
//!   place and the secret's label, never the secret.
//! - `journeys` (feature `journeys`): the client side the process tests
//!   and the benchmark harness share: fixtures, protobuf time, a
//!   connection as an identity, a tile made SCHEDULED, StartRollout
//!   retried.
//! - [`ratios`]: benchmark variants timed in interleaved rounds, as ratios
//!   to a baseline measured in the same minutes.
//!
//! TLS is on by default: [`EtcdCluster::start`] serves `https://` and
//! requires client certificates, and a tilewave service run by
//! [`ServiceSpec`] gets its certificate and the policy of [`Pki::shared`];
//! readiness checks, [`ServiceProcess::endpoint`] and
//! [`ServiceProcess::channel`] follow. [`EtcdCluster::start_insecure`] and
//! [`ServiceSpec::insecure`] run plaintext.
//!
//! Children get SIGTERM, then SIGKILL after a grace period, when their
//! owner is dropped. Readiness is always polled against a deadline, never
//! slept for. For `tilewave dev up`, [`spawn_detached`] and [`stop_pid`]
//! start and stop the same command lines ([`Launch`]) without the drop
//! clean-up.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod bins;
mod etcd;
mod eventually;
#[cfg(feature = "journeys")]
pub mod journeys;
mod kit_runtime;
pub mod partner;
pub mod pki;
mod ports;
mod process;
pub mod ratios;
#[cfg(feature = "rpc-fuzz")]
pub mod rpc_fuzz;
pub mod secret_scan;
mod service;
mod testdir;
pub mod webhook;

pub use bins::bin_path;
pub use etcd::{
    DEFAULT_START_TIMEOUT, ETCD_BIN_ENV, ETCDCTL_BIN_ENV, EtcdCluster, EtcdMember, EtcdOptions, MemberState,
    connect_options, etcd_binary, etcd_launch, etcdctl_binary, member_health, member_health_with,
};
pub use eventually::{Attempt, Outcome, POLL_INTERVAL, eventually, eventually_every};
pub use partner::{PartnerDouble, PartnerPaths, PartnerRequest, PartnerTest};
pub use pki::Pki;
pub use ports::{free_port, free_ports};
pub use process::{
    ChildProcess, DROP_GRACE, Launch, log_says_addr_in_use, log_tail, read_pid_file, signal_pid,
    spawn_detached, stop_pid, terminate_all_blocking,
};
pub use service::{
    DEFAULT_READY_TIMEOUT, ServiceProcess, ServiceSpec, SpecTls, check_ready, check_ready_with,
};
pub use testdir::{KEEP_ENV, TestDir};
pub use webhook::{Disposition, SignatureCheck, WebhookReceiver, WebhookRequest};

/// Re-exported so callers can name signals for [`signal_pid`].
pub use nix::sys::signal::Signal;
