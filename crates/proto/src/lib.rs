//! The tilewave gRPC API, generated from `proto/tilewave/<package>/v1/`.
//!
//! Each package is a module named after it; `FILE_DESCRIPTOR_SET` feeds
//! server reflection. Conversions to domain types live at the services'
//! edges, not here.
//!
//! Two request messages carry secret plain text
//! (`credentials::v1::SubmitCredentialRequest` and
//! `agent::v1::InstallCredentialRequest`); their `Debug` is written by hand
//! below and redacts it, so that a request logged with `{:?}` leaks nothing.
#![allow(missing_docs, clippy::all, clippy::pedantic)]

use std::fmt;

/// The encoded `FileDescriptorSet` of every tilewave proto, for
/// `tonic-reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/tilewave_descriptor.bin"));

/// Messages shared by every service, and the store's own records.
pub mod common {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("tilewave.common.v1");
    }
}

/// The tile registry: tiles, revisions, sign-offs, GA dates, lifecycle.
pub mod registry {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("tilewave.registry.v1");
    }
}

/// Regional roll-outs, plans, freeze, GA scheduling and the launch calendar.
pub mod rollout {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("tilewave.rollout.v1");
    }
}

/// The virtual clock (served by the rollout service).
pub mod clock {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("tilewave.clock.v1");
    }
}

/// Credential submission and rotation; fingerprints only on the way out.
pub mod credentials {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("tilewave.credentials.v1");
    }
}

/// Incidents, escalation policies, on-call schedules and SOPs.
pub mod escalation {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("tilewave.escalation.v1");
    }
}

/// The region agent, and its test-only fault injection service.
pub mod agent {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("tilewave.agent.v1");
    }
}

/// What a redacted secret prints as.
const REDACTED: &str = "<redacted>";

/// Shows whether a secret was given, never what it is.
fn redacted(secret: &str) -> &'static str {
    if secret.is_empty() { "<empty>" } else { REDACTED }
}

impl fmt::Debug for credentials::v1::SubmitCredentialRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubmitCredentialRequest")
            .field("tile_id", &self.tile_id)
            .field("kind", &self.kind())
            .field("username", &self.username)
            .field("plaintext", &format_args!("{}", redacted(&self.plaintext)))
            .field("request_id", &self.request_id)
            .finish()
    }
}

impl fmt::Debug for agent::v1::InstallCredentialRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstallCredentialRequest")
            .field("tile_id", &self.tile_id)
            .field("kind", &self.kind())
            .field("fingerprint", &self.fingerprint)
            .field("username", &self.username)
            .field("slot", &self.slot())
            .field("secret", &self.secret)
            .field("fencing_token", &self.fencing_token)
            .finish()
    }
}

impl fmt::Debug for agent::v1::install_credential_request::Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use agent::v1::install_credential_request::Secret;
        match self {
            // Ciphertext is safe to show in part, but its length is all a
            // reader of a log needs.
            Secret::Encrypted(e) => f
                .debug_struct("Encrypted")
                .field("key_id", &e.key_id)
                .field("ciphertext_len", &e.ciphertext.len())
                .finish(),
            Secret::Plaintext(p) => f
                .debug_tuple("Plaintext")
                .field(&format_args!("{}", redacted(p)))
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "hunter2-very-secret";

    #[test]
    fn submit_credential_debug_redacts_the_plaintext() {
        let req = credentials::v1::SubmitCredentialRequest {
            tile_id: "riverflow".into(),
            username: "platform".into(),
            plaintext: SECRET.into(),
            ..Default::default()
        };
        let shown = format!("{req:?} {req:#?}");
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(shown.contains("riverflow") && shown.contains(REDACTED), "{shown}");
    }

    #[test]
    fn install_credential_debug_redacts_the_plaintext_and_ciphertext() {
        use agent::v1::install_credential_request::Secret;
        let plain = agent::v1::InstallCredentialRequest {
            tile_id: "riverflow".into(),
            secret: Some(Secret::Plaintext(SECRET.into())),
            ..Default::default()
        };
        let shown = format!("{plain:?}");
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(shown.contains(REDACTED), "{shown}");

        let encrypted = agent::v1::InstallCredentialRequest {
            secret: Some(Secret::Encrypted(credentials::v1::EncryptedSecret {
                key_id: "kek-1".into(),
                nonce: vec![7; 12],
                ciphertext: SECRET.as_bytes().to_vec(),
            })),
            ..Default::default()
        };
        let shown = format!("{encrypted:?}");
        assert!(shown.contains("kek-1") && !shown.contains("104, 117"), "{shown}");
    }
}
