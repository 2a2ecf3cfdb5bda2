//! `tilewave-escalation` (issue 16): incidents opened by hand or from
//! events, escalation ladders paging through a durable outbox of signed
//! webhooks, on-call schedules, SOP checklists and mitigations, as
//! `tilewave_core::escalation` decides them.
//!
//! - [`config`]: flags and environment.
//! - [`server`]: `serve`: the store, the background work, the gRPC server.
//! - [`service`]: the RPCs.
//! - [`ladder`]: the ladder's timers (`timers/escalation/...`): each step
//!   and its notifications in one fenced transaction.
//! - [`sender`]: drains the outbox (`escalation-outbox/`) with signed
//!   webhook POSTs, retries and back-off.
//! - [`events`]: turns `events/` into incidents through a stored cursor.
//! - [`model`]: the context, stored records and the shared writes.
//! - [`convert`]: wire <-> core.
//! - [`error`]: one error type and its status codes.

pub mod config;
pub mod convert;
pub mod error;
pub mod events;
pub mod ladder;
pub mod model;
pub mod sender;
pub mod server;
pub mod service;

pub use config::EscalationConfig;
pub use server::serve;
