//! The regional rollout service: plans roll-outs with the core planner and
//! runs them region by region, wave by wave, from any replica.
//!
//! - [`service`]: the RolloutService RPCs (validation at the edge, one
//!   audited etcd transaction per change).
//! - [`controller`]: in every replica, takes ownership of running roll-outs
//!   and drives them (fenced writes, crash-resume from the recorded steps).
//! - [`reconcile`]: desired state per region against what agents report.
//! - [`ga`]: the durable GA timers.
//! - [`lifecycle`]: removal roll-outs of withdrawn tiles, and tiles moved
//!   back when their roll-out ended aborted or rolled back.
//! - [`clock_service`]: the virtual clock's RPCs.
//! - [`spec`]: RolloutSpec and tiles to planner input, plans to protos.
//! - [`convert`]: wire roll-outs and steps to the rules of
//!   [`tilewave_core::rollout`] and back.
//! - [`model`]: roll-out state in etcd and the helpers shared above.
//! - [`clients`]: registry and agent clients (traced channels).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod clients;
pub mod clock_service;
pub mod config;
pub mod controller;
pub mod convert;
pub mod error;
pub mod ga;
pub mod launch;
pub mod lifecycle;
pub mod model;
pub mod reconcile;
pub mod scheduler;
pub mod server;
pub mod service;
pub mod spec;

pub use config::RolloutConfig;
pub use server::{HEALTH_SERVICE, serve};
