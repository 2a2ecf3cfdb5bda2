//! Identity, roles and the role check (issue 13).
//!
//! - [`role`]: `release-engineer`, `oncall`, `partner:<partner-id>`,
//!   `viewer`, `service`.
//! - [`identity`]: a client certificate's identity (subject CN, else the
//!   first DNS SAN) and serial.
//! - [`policy`]: the access policy file (identity -> role, revoked
//!   serials), parsed purely; [`watch`] reloads it on change and keeps the
//!   last good one.
//! - [`table`]: the RPC -> roles table, as data, one row per RPC.
//! - [`decide`]: the check itself, pure.
//! - [`scope`]: object scoping, pure: a partner sees only its own tiles.
//! - [`layer`]: [`AuthorizeLayer`], the check before any handler of a tonic
//!   server; disabled by default.
//! - [`serve`]: [`ServerAuth`], the layer a service serves with from its
//!   `--policy` flag and whether TLS is on.
//! - [`whoami`]: `AuthService/WhoAmI`, which every server answers: who the
//!   caller is and which of the server's RPCs it may call.
//!
//! Bottom-up: `role` and `identity`, then `policy` and `table`, then
//! `decide`, `scope` and `watch`, then `layer`.
#![forbid(unsafe_code)]

pub mod decide;
pub mod identity;
pub mod layer;
pub mod policy;
pub mod role;
pub mod scope;
pub mod serve;
pub mod table;
pub mod watch;
pub mod whoami;

pub use decide::{Caller, Peer, Refusal, RefusalCode, decide};
pub use identity::{CertError, CertIdentity, Identity, IdentityMemo, Serial, identity_from_der, identity_of};
pub use layer::{Authorize, AuthorizeLayer, PeerCertificate, caller, peer_of};
pub use policy::{LoadError, Policy, PolicyError};
pub use role::{Role, RoleError, RoleKind};
pub use scope::Scope;
pub use serve::{PolicyArgs, ServerAuth};
pub use table::{Rule, TABLE, rule_for};
pub use watch::{PolicyHandle, PolicyWatcher, Reload};
pub use whoami::WhoAmI;
