//! The one way tilewave services talk to etcd.
//!
//! - [`keys`]: the key space under one prefix.
//! - [`store`]: the connection, its deadlines, typed reads ([`Versioned`]).
//! - [`change`]: one audited transaction per state change, with optimistic
//!   concurrency (etags) and fencing.
//! - [`ownership`]: ownership of long-running work through a lease, with a
//!   fencing token.
//! - [`owner_loop`]: the one owner loop: campaign, run with the fencing
//!   token, stop at once on loss or shutdown, release.
//! - [`shutdown`]: the one shutdown signal handed to every background task,
//!   and the named tasks a service stops in order.
//! - [`cache`]: watch-backed caches that resync after compaction and
//!   reconnect after a lost connection.
//! - [`family`]: one object and its children (a roll-out and its steps)
//!   followed by one watch, never torn ([`Store::follow_with_children`]).
//! - [`timers`]: durable timers that fire exactly once.
//! - [`time`]: the [`Clock`] trait, the system clock (the only reader of
//!   the wall clock) and timestamp conversions, at the bottom.
//! - [`clock`]: the virtual clock, stored in etcd.
//! - `epoch`: the fencing epoch a restore from a backup bumps
//!   ([`Store::bump_epoch`], [`FencingToken::agent_token`]).
//! - [`audit`]: the one constructor of audit records.
//! - [`audit_summary`], [`retention`]: audit records older than a
//!   retention period folded into daily summaries per object (pure logic,
//!   and the owned loop that commits it).
//! - [`actor`], [`trace`]: who made a change and which request started it.
//! - [`error`]: the errors and their gRPC status codes.
//! - [`retry`]: deadlines and back-off for etcd calls.
//!
//! Every etcd operation runs inside an `etcd.<op>` span, a child of the
//! caller's span, and is timed in the telemetry crate's metrics; losing an
//! [`Ownership`] counts a lease loss. Audit records and timers capture the
//! current trace context without the caller asking ([`trace::current`]).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod actor;
pub mod audit;
pub mod audit_summary;
pub mod cache;
pub mod change;
pub mod clock;
mod epoch;
pub mod error;
pub mod family;
pub mod keys;
mod observe;
pub mod owner_loop;
pub mod ownership;
pub mod retention;
pub mod retry;
pub mod shutdown;
pub mod store;
pub mod time;
pub mod timers;
pub mod trace;

pub use actor::Actor;
pub use cache::{CacheEvent, ResyncReason, WatchCache};
pub use change::{Change, CommitInfo, EPOCH_SHIFT, FencingToken, MAX_EPOCH, MAX_TOKEN_REVISION};
pub use clock::{Clock, ClockState, SystemClock, VirtualClock};
pub use error::{Error, Result};
pub use family::{Family, FamilyChange};
pub use keys::Keys;
pub use owner_loop::{Ended, Owned, OwnerLoop};
pub use ownership::{Ownership, ReplicaLease};
pub use shutdown::{Shutdown, Tasks, Trigger};
pub use store::{GET_MANY_CHUNK, Listing, Store, StoreConfig, Versioned};
pub use timers::{Fired, TimerKinds, run_timer_loop};
