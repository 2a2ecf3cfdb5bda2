//! The pure tilewave domain: what a tile is, its lifecycle and sign-offs, the
//! Partner Connect config formats and their validation, launch readiness
//! (the validation checklist and go-to-market items), the region catalog,
//! the roll-out planner, the launch calendar with the GA slot choice, and
//! the rotation of a tile's partner credential.
//!
//! Nothing here does I/O or reads the clock: time comes in as arguments, so
//! everything is tested with plain unit and property tests.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod calendar;
pub mod escalation;
pub mod lifecycle;
pub mod partner_config;
pub mod planner;
pub mod quote;
pub mod readiness;
pub mod regions;
pub mod rollout;
pub mod rotation;
pub mod signoff;
pub mod slug;
pub mod tile;
