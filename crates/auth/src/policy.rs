//! The access policy: which role each certificate identity has, and which
//! certificate serials are revoked. A TOML file:
//!
//! ```toml
//! revoked_serials = ["3f:a0:07"]
//!
//! [identities]
//! tilewave-registry = "service"
//! ada = "release-engineer"
//! acme-bot = "partner:acme"
//! ```
//!
//! The role lives here, not in the certificate, so it can be changed or
//! revoked without issuing a new one. Parsing is pure ([`Policy::parse`]);
//! reading the file is [`load`]'s, reloading on change
//! [`crate::watch::PolicyWatcher`]'s. A file with an unknown role, a bad
//! identity name or serial is refused whole, naming the line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tilewave_core::quote::quoted;
use toml::Spanned;

use crate::identity::{Identity, IdentityNameError, Serial, SerialError};
use crate::role::{Role, RoleError};

/// The largest policy file read, in bytes.
pub const MAX_POLICY_BYTES: u64 = 1024 * 1024;

/// The identities the development defaults give a role: tilewave's own
/// services, and `dev`, the developer running a local stack.
pub const DEV_IDENTITIES: &[(&str, &str)] = &[
    ("tilewave-registry", "service"),
    ("tilewave-rollout", "service"),
    ("tilewave-agent", "service"),
    ("tilewave-credentials", "service"),
    ("tilewave-escalation", "service"),
    // The subject names of the service certificates `tilewave certs init`
    // issues (registry.crt, ...).
    ("registry", "service"),
    ("rollout", "service"),
    ("credentials", "service"),
    ("escalation", "service"),
    ("agent", "service"),
    ("dev", "release-engineer"),
];

/// Who has which role, and which certificates are revoked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    roles: BTreeMap<Identity, Role>,
    revoked: BTreeSet<Serial>,
}

/// Why a policy text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Not TOML, or not the policy's shape (an unknown key, a role that is
    /// not a string, ...).
    #[error("line {line}, column {column}: {message} (in {})", quoted(text))]
    Parse {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's reason.
        message: String,
        /// The line, as written.
        text: String,
    },
    /// A role that is not one.
    #[error("line {line}: identity {}: {source}", quoted(identity))]
    Role {
        /// 1-based line of the role.
        line: usize,
        /// The identity it was given to.
        identity: String,
        /// What is wrong with it.
        source: RoleError,
    },
    /// An identity name that is not one.
    #[error("line {line}: {source}")]
    Identity {
        /// 1-based line of the entry.
        line: usize,
        /// What is wrong with it.
        source: IdentityNameError,
    },
    /// A revoked serial that is not one.
    #[error("line {line}: revoked_serials: {source}")]
    Serial {
        /// 1-based line of the serial.
        line: usize,
        /// What is wrong with it.
        source: SerialError,
    },
}

/// The file's shape, as deserialized.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    revoked_serials: Vec<Spanned<String>>,
    #[serde(default)]
    identities: BTreeMap<String, Spanned<String>>,
}

/// The file's shape, as written by [`Policy::to_toml`].
#[derive(Debug, Serialize)]
struct PolicyOut<'a> {
    revoked_serials: Vec<&'a str>,
    identities: BTreeMap<&'a str, String>,
}

/// The 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

impl Policy {
    /// Reads a policy text. Refused whole on the first wrong entry.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let raw: RawPolicy = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            let (line, column) = line_col(text, offset);
            PolicyError::Parse {
                line,
                column,
                message: e.message().trim().to_owned(),
                text: text.lines().nth(line - 1).unwrap_or("").to_owned(),
            }
        })?;
        let line = |s: &Spanned<String>| line_col(text, s.span().start).0;
        let mut policy = Policy::default();
        for (name, role) in &raw.identities {
            let identity = Identity::parse(name).map_err(|source| PolicyError::Identity {
                line: line(role),
                source,
            })?;
            let parsed = role
                .get_ref()
                .parse::<Role>()
                .map_err(|source| PolicyError::Role {
                    line: line(role),
                    identity: name.clone(),
                    source,
                })?;
            policy.roles.insert(identity, parsed);
        }
        for serial in &raw.revoked_serials {
            let parsed = serial
                .get_ref()
                .parse::<Serial>()
                .map_err(|source| PolicyError::Serial {
                    line: line(serial),
                    source,
                })?;
            policy.revoked.insert(parsed);
        }
        Ok(policy)
    }

    /// The development defaults ([`DEV_IDENTITIES`], nothing revoked).
    pub fn dev_default() -> Self {
        let mut policy = Policy::default();
        for (name, role) in DEV_IDENTITIES {
            if let (Ok(identity), Ok(role)) = (Identity::parse(name), role.parse()) {
                policy.roles.insert(identity, role);
            }
        }
        policy
    }

    /// The role of an identity, if it has one.
    pub fn role_of(&self, identity: &Identity) -> Option<&Role> {
        self.roles.get(identity)
    }

    /// Whether a certificate serial is revoked.
    pub fn is_revoked(&self, serial: &Serial) -> bool {
        self.revoked.contains(serial)
    }

    /// Gives an identity a role (replacing the one it had).
    pub fn set_role(&mut self, identity: Identity, role: Role) {
        self.roles.insert(identity, role);
    }

    /// Takes an identity's role away; it then has none.
    pub fn remove(&mut self, identity: &Identity) -> Option<Role> {
        self.roles.remove(identity)
    }

    /// Revokes a certificate serial.
    pub fn revoke(&mut self, serial: Serial) {
        self.revoked.insert(serial);
    }

    /// Every identity with its role, by name.
    pub fn identities(&self) -> impl Iterator<Item = (&Identity, &Role)> {
        self.roles.iter()
    }

    /// The revoked serials, in order.
    pub fn revoked(&self) -> impl Iterator<Item = &Serial> {
        self.revoked.iter()
    }

    /// The policy as a file [`Policy::parse`] reads back the same.
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        let out = PolicyOut {
            revoked_serials: self.revoked.iter().map(Serial::as_str).collect(),
            identities: self
                .roles
                .iter()
                .map(|(i, r)| (i.as_str(), r.to_string()))
                .collect(),
        };
        let body = toml::to_string(&out)?;
        Ok(format!(
            "# tilewave access policy: each certificate identity's role (release-engineer, oncall,\n\
             # partner:<partner-id>, viewer, service) and the revoked certificate serials (hex).\n\
             # Services reload it when it changes; a file that does not load is refused whole.\n\n{body}"
        ))
    }
}

/// Why a policy file was not loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("policy file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_POLICY_BYTES`].
    #[error("policy file {}: {len} bytes; at most {MAX_POLICY_BYTES} are read", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        len: u64,
    },
    /// The file is not UTF-8.
    #[error("policy file {}: not UTF-8 text", path.display())]
    NotText {
        /// The file.
        path: PathBuf,
    },
    /// The text was refused.
    #[error("policy file {}: {source}", path.display())]
    Policy {
        /// The file.
        path: PathBuf,
        /// Why.
        source: PolicyError,
    },
}

/// Reads a policy file's text (bounded by [`MAX_POLICY_BYTES`]).
pub fn read_text(path: &Path) -> Result<String, LoadError> {
    let io = |source| LoadError::Io {
        path: path.to_owned(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_POLICY_BYTES {
        return Err(LoadError::TooLarge {
            path: path.to_owned(),
            len,
        });
    }
    let bytes = std::fs::read(path).map_err(io)?;
    String::from_utf8(bytes).map_err(|_| LoadError::NotText {
        path: path.to_owned(),
    })
}

/// Reads and parses a policy file.
pub fn load(path: &Path) -> Result<Policy, LoadError> {
    let text = read_text(path)?;
    Policy::parse(&text).map_err(|source| LoadError::Policy {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> Identity {
        Identity::parse(s).unwrap()
    }

    #[test]
    fn a_policy_parses() {
        let p = Policy::parse(
            "revoked_serials = [\"3F:A0:07\", \"0x01\"]\n\n[identities]\nada = \"release-engineer\"\n\
             \"Grace Hopper\" = \"oncall\"\nacme-bot = \"partner:acme\"\nviv = \"viewer\"\n\
             tilewave-registry = \"service\"\n",
        )
        .unwrap();
        let cases: &[(&str, Option<&str>)] = &[
            ("ada", Some("release-engineer")),
            ("Grace Hopper", Some("oncall")),
            ("acme-bot", Some("partner:acme")),
            ("viv", Some("viewer")),
            ("tilewave-registry", Some("service")),
            ("mallory", None),
        ];
        for (name, role) in cases {
            assert_eq!(
                p.role_of(&id(name)).map(Role::to_string).as_deref(),
                *role,
                "{name}"
            );
        }
        assert!(p.is_revoked(&"3fa007".parse().unwrap()));
        assert!(p.is_revoked(&"1".parse().unwrap()));
        assert!(!p.is_revoked(&"2".parse().unwrap()));
        assert_eq!(Policy::parse("").unwrap(), Policy::default());
    }

    #[test]
    fn refusals_name_the_line() {
        let cases: &[(&str, &str)] = &[
            (
                "[identities]\nada = \"viewer\"\nbob = \"admin\"\n",
                "line 3: identity \"bob\": unknown role \"admin\"",
            ),
            (
                "[identities]\n\nacme = \"partner:Acme\"\n",
                "line 3: identity \"acme\": role \"partner:Acme\": the partner id is not valid",
            ),
            (
                "[identities]\n\"\" = \"viewer\"\n",
                "line 2: an identity name must not be empty",
            ),
            (
                "revoked_serials = [\n  \"0a\",\n  \"zz\",\n]\n",
                "line 3: revoked_serials: serial \"zz\" is not a hexadecimal number",
            ),
            (
                "[identities]\nada = \"viewer\"\nada = \"oncall\"\n",
                "line 3, column 1: duplicate key",
            ),
            ("[identities]\nada = viewer\n", "line 2, column 7: "),
            ("[identities]\nada = 7\n", "line 2, column 7: invalid type"),
            ("roles = {}\n", "line 1, column 1: unknown field `roles`"),
            ("[identities\n", "line 1, column 12: "),
        ];
        for (text, want) in cases {
            let e = Policy::parse(text).unwrap_err().to_string();
            assert!(e.starts_with(want), "{text:?}:\n got  {e}\n want {want}…");
        }
    }

    #[test]
    fn a_parse_error_quotes_a_bounded_piece_of_its_line() {
        let text = format!("[identities]\nada = \"viewer\" {}\n", "x".repeat(100_000));
        let e = Policy::parse(&text).unwrap_err().to_string();
        assert!(e.starts_with("line 2, column"), "{e}");
        assert!(e.len() < 600, "{} bytes: {e}", e.len());
    }

    #[test]
    fn dev_defaults_give_the_services_the_service_role() {
        let p = Policy::dev_default();
        for name in [
            "tilewave-registry",
            "tilewave-rollout",
            "tilewave-agent",
            "credentials",
        ] {
            assert_eq!(p.role_of(&id(name)), Some(&Role::Service), "{name}");
        }
        assert_eq!(p.role_of(&id("dev")), Some(&Role::ReleaseEngineer));
        assert_eq!(p.identities().count(), DEV_IDENTITIES.len());
        assert_eq!(p.revoked().count(), 0);
    }

    #[test]
    fn to_toml_reads_back_the_same() {
        let mut p = Policy::dev_default();
        p.set_role(id("Grace Hopper"), Role::Oncall);
        p.set_role(id("acme-bot"), "partner:acme".parse().unwrap());
        p.revoke("0a:1b".parse().unwrap());
        let text = p.to_toml().unwrap();
        assert_eq!(Policy::parse(&text).unwrap(), p, "{text}");
        assert!(text.contains("\"Grace Hopper\" = \"oncall\""), "{text}");
        assert_eq!(
            p.remove(&id("acme-bot")).map(|r| r.to_string()).as_deref(),
            Some("partner:acme")
        );
    }

    #[test]
    fn files_load_or_say_why_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.toml");
        assert!(matches!(load(&path), Err(LoadError::Io { .. })));
        std::fs::write(&path, "[identities]\nada = \"root\"\n").unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(
            e.contains("policy.toml: line 2: identity \"ada\": unknown role \"root\""),
            "{e}"
        );
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        assert!(matches!(load(&path), Err(LoadError::NotText { .. })));
        std::fs::write(&path, Policy::dev_default().to_toml().unwrap()).unwrap();
        assert_eq!(load(&path).unwrap(), Policy::dev_default());
    }
}
