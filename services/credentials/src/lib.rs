//! `tilewave-credentials` (issue 15): partners' credentials, encrypted at
//! rest (envelope encryption, `tilewave_secrets`), and their rotation
//! region by region through the agents, as `tilewave_core::rotation`
//! decides it.
//!
//! - [`config`]: flags and environment.
//! - [`server`]: `serve`: the store, the caches, the driver, the gRPC server.
//! - [`service`]: the RPCs.
//! - [`driver`]: one owner per running rotation carries out its decisions,
//!   recording each intent before the agents are called (write-ahead).
//! - [`schedule`]: scheduled rotations start when due.
//! - [`convert`]: wire <-> core.
//! - [`model`]: the context and the stored records.
//! - [`error`]: one error type and its status codes.

pub mod config;
pub mod convert;
pub mod driver;
pub mod error;
pub mod model;
pub mod schedule;
pub mod server;
pub mod service;

pub use config::CredentialsConfig;
pub use server::serve;
