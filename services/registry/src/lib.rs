//! The tile registry: the only writer of tiles.
//!
//! It imports and validates Partner Connect configurations (rules from
//! `tilewave-core`), keeps every revision immutable, records sign-offs, test
//! workspaces and GA dates, and moves tiles through their lifecycle for the
//! rollout service. State is in etcd (`tiles/<id>` for the latest tile,
//! `tiles/<id>/rev/<n>` for each revision); reads come from watch-backed
//! caches (the tiles, and the revision summaries), so any replica answers
//! without a round trip to etcd (but for an older revision's document).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod config;
mod config_edge;
pub mod domain;
pub mod encoded;
pub mod error;
mod readiness_edge;
pub mod server;
pub mod service;
pub mod summaries;
pub mod watch;

pub use config::RegistryConfig;
pub use server::{HEALTH_SERVICE, serve};
pub use service::Registry;
