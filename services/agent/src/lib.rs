//! The region agent: the seam to one region's systems (docs/design.md, "Region
//! agent").
//!
//! One process per region. It keeps the region's catalog of tiles in a file
//! of its own ([`catalog`], [`persist`]), applies and removes tiles for the
//! rollout service idempotently and fenced by the caller's token
//! ([`service`]), reports per-tile health from a synthetic probe of the
//! partner's `test-connection` endpoint and the error rate the region saw
//! ([`probe`], [`window`], [`health`]), and registers itself in etcd under
//! `agents/<region>` with a lease ([`registration`]). A test-only
//! FaultInjectionService ([`fault_injection`], over [`faults`]) makes it slow, failing, unhealthy,
//! forgetful or unwilling to start.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod catalog;
pub mod config;
pub mod credentials;
pub mod error;
pub mod fault_injection;
pub mod faults;
pub mod health;
pub mod persist;
pub mod probe;
pub mod registration;
pub mod server;
pub mod service;
pub mod window;
pub mod writes;

pub use config::AgentConfig;
pub use server::{HEALTH_SERVICE, serve};
pub use service::Agent;
