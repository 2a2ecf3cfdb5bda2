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

/// Who is calling: `AuthService/WhoAmI`, answered by every server.
pub mod auth {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("tilewave.auth.v1");
    }
}

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

/// The short name of a wire enum value, for messages and output: the proto
/// name without the enum's prefix (`RolloutState::Running` is `RUNNING`,
/// `TileState::Ga` is `GA`). The one place that knows the prefixes; an
/// unknown number is `UNSPECIFIED`.
pub trait ShortName: Sized {
    /// The prefix every value of the enum carries in its proto name.
    const PREFIX: &'static str;

    /// The proto name of the value (`as_str_name`).
    fn proto_name(&self) -> &'static str;

    /// The name without [`ShortName::PREFIX`].
    fn short_name(&self) -> &'static str {
        let full = self.proto_name();
        full.strip_prefix(Self::PREFIX).unwrap_or(full)
    }

    /// The short name of a wire number (`UNSPECIFIED` when unknown).
    fn short_name_of(value: i32) -> &'static str
    where
        Self: TryFrom<i32> + Default,
    {
        Self::try_from(value).unwrap_or_default().short_name()
    }
}

macro_rules! short_names {
    ($($ty:path => $prefix:literal),* $(,)?) => {
        $(impl ShortName for $ty {
            const PREFIX: &'static str = $prefix;
            fn proto_name(&self) -> &'static str {
                self.as_str_name()
            }
        })*
    };
}

short_names! {
    common::v1::Cloud => "CLOUD_",
    common::v1::TileState => "TILE_STATE_",
    common::v1::SignOffRole => "SIGN_OFF_ROLE_",
    common::v1::Severity => "SEVERITY_",
    common::v1::EventKind => "EVENT_KIND_",
    common::v1::HealthStatus => "HEALTH_STATUS_",
    common::v1::ConfigFormat => "CONFIG_FORMAT_",
    registry::v1::MaintenanceState => "MAINTENANCE_STATE_",
    registry::v1::TileEventType => "TILE_EVENT_TYPE_",
    rollout::v1::RolloutKind => "ROLLOUT_KIND_",
    rollout::v1::OnFailure => "ON_FAILURE_",
    rollout::v1::Constraint => "CONSTRAINT_",
    rollout::v1::DeadlineSource => "DEADLINE_SOURCE_",
    rollout::v1::PlanProblemKind => "PLAN_PROBLEM_KIND_",
    rollout::v1::RolloutState => "ROLLOUT_STATE_",
    rollout::v1::PauseCause => "PAUSE_CAUSE_",
    rollout::v1::StepState => "STEP_STATE_",
    rollout::v1::RolloutEventType => "ROLLOUT_EVENT_TYPE_",
    credentials::v1::CredentialKind => "CREDENTIAL_KIND_",
    credentials::v1::CredentialStage => "CREDENTIAL_STAGE_",
    credentials::v1::Retirement => "RETIREMENT_",
    credentials::v1::RotationState => "ROTATION_STATE_",
    credentials::v1::RegionRotationState => "REGION_ROTATION_STATE_",
    escalation::v1::IncidentState => "INCIDENT_STATE_",
    escalation::v1::TimelineKind => "TIMELINE_KIND_",
    escalation::v1::MitigationAction => "MITIGATION_ACTION_",
    escalation::v1::SourceKind => "SOURCE_KIND_",
    escalation::v1::Side => "SIDE_",
    escalation::v1::StepStatus => "STEP_STATUS_",
    escalation::v1::LadderState => "LADDER_STATE_",
    escalation::v1::OverrideKind => "OVERRIDE_KIND_",
    agent::v1::CredentialSlot => "CREDENTIAL_SLOT_",
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
            .field("credential_id", &self.credential_id)
            .field("partner", &self.partner.as_ref().map(|p| p.base_url.as_str()))
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
                .field("kek_id", &e.kek_id)
                .field("ciphertext_len", &e.ciphertext.len())
                .finish(),
            Secret::Plaintext(p) => f
                .debug_tuple("Plaintext")
                .field(&format_args!("{}", redacted(p)))
                .finish(),
        }
    }
}

/// The names of the targets a `signing_secrets` map gives secrets for,
/// sorted, never the secrets.
fn secret_names(m: &std::collections::HashMap<String, String>) -> Vec<&str> {
    let mut names: Vec<&str> = m.keys().map(String::as_str).collect();
    names.sort_unstable();
    names
}

impl fmt::Debug for escalation::v1::SetPolicyRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SetPolicyRequest")
            .field("policy", &self.policy)
            .field("etag", &self.etag)
            .field("signing_secrets_for", &secret_names(&self.signing_secrets))
            .finish()
    }
}

impl fmt::Debug for escalation::v1::SetPersonRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SetPersonRequest")
            .field("person", &self.person)
            .field("etag", &self.etag)
            .field("signing_secrets_for", &secret_names(&self.signing_secrets))
            .finish()
    }
}

impl fmt::Debug for escalation::v1::SetPartnerContactsRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SetPartnerContactsRequest")
            .field("contacts", &self.contacts)
            .field("etag", &self.etag)
            .field("signing_secrets_for", &secret_names(&self.signing_secrets))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "hunter2-very-secret";

    #[test]
    fn escalation_set_requests_show_which_targets_have_secrets_never_the_secrets() {
        let secrets: std::collections::HashMap<String, String> =
            [("ops".to_owned(), SECRET.to_owned())].into();
        let shown = format!(
            "{:?} {:#?} {:?}",
            escalation::v1::SetPolicyRequest {
                signing_secrets: secrets.clone(),
                ..Default::default()
            },
            escalation::v1::SetPersonRequest {
                signing_secrets: secrets.clone(),
                ..Default::default()
            },
            escalation::v1::SetPartnerContactsRequest {
                signing_secrets: secrets,
                ..Default::default()
            },
        );
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(shown.contains("\"ops\""), "{shown}");
    }

    #[test]
    fn short_names_drop_the_enum_prefix() {
        use rollout::v1::{RolloutState, StepState};
        assert_eq!(RolloutState::Running.short_name(), "RUNNING");
        assert_eq!(RolloutState::RolledBack.short_name(), "ROLLED_BACK");
        assert_eq!(StepState::Verified.short_name(), "VERIFIED");
        assert_eq!(common::v1::TileState::Ga.short_name(), "GA");
        assert_eq!(RolloutState::short_name_of(9999), "UNSPECIFIED");
        assert_eq!(
            common::v1::EventKind::short_name_of(common::v1::EventKind::DeadlineAtRisk as i32),
            "DEADLINE_AT_RISK"
        );
    }

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
                kek_id: "kek-1".into(),
                nonce: vec![7; 12],
                ciphertext: SECRET.as_bytes().to_vec(),
                ..Default::default()
            })),
            ..Default::default()
        };
        let shown = format!("{encrypted:?}");
        assert!(shown.contains("kek-1") && !shown.contains("104, 117"), "{shown}");

        let with_id = agent::v1::InstallCredentialRequest {
            credential_id: "riverflow/basic/3".into(),
            secret: Some(Secret::Plaintext(SECRET.into())),
            ..Default::default()
        };
        let shown = format!("{with_id:?}");
        assert!(
            shown.contains("riverflow/basic/3") && !shown.contains(SECRET),
            "{shown}"
        );
    }
}
