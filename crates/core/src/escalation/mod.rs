//! The escalation SOP service's rules (issue 16) as pure functions, the way
//! [`crate::rollout`] and [`crate::rotation`] hold theirs.
//!
//! - [`schedule`]: on-call schedules (rotations in IANA zones, layers,
//!   overrides), who is on call at a moment, the next handoff, coverage
//!   gaps; the daylight-saving rules are in [`local`].
//!
//! Nothing here reads a clock or does I/O: time comes in as arguments.

pub mod local;
mod problems;
pub mod schedule;

pub use local::{Day, WeeklyWindow};
pub use problems::{Problem, Problems};
pub use schedule::{
    Coverage, Gap, Layer, OnCall, Override, OverrideKind, Rotation, Schedule, ShiftLength, coverage,
    next_handoff, validate_schedule, who_is_on_call,
};

#[cfg(test)]
mod tests;
