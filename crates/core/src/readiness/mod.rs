//! Launch readiness (docs/domain.md "Validation test cases" and "Go-to-market readiness"): the gates a tile
//! passes besides its sign-offs before it may launch.
//!
//! - [`validation`]: the Partner Connect validation cases P100 to P900 as a
//!   checklist per revision, and the gate the engineering sign-off passes.
//! - [`gtm`]: the go-to-market items per tile, and the gate committing a GA
//!   date passes (or overrides, on the record).
//!
//! Both are pure: who and when come in as arguments, and a refusal says what
//! is open and the command that clears it. The registry stores them and calls
//! the gates; that wiring (service, proto, CLI) is not built yet.

pub mod gtm;
pub mod validation;
