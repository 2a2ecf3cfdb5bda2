//! The credentials the agent presents to a tile's partner, as pure values:
//! per tile, by fingerprint, each with its slot and its secret sealed under
//! the agent's key-encryption key. No I/O and no key here; the service
//! opens the request's secret, checks its fingerprint and seals it before
//! [`set_slot`] sees it.
//!
//! Slots (the credentials service's rotation, issue 15):
//! - **PENDING**: installed beside the CURRENT one, for verification; not
//!   presented.
//! - **CURRENT**: presented on every call (the health probe). Making a
//!   credential CURRENT makes the former CURRENT one PREVIOUS.
//! - **PREVIOUS**: replaced, still installed, not presented.
//! - **RETIRED**: removed from the catalog.
//!
//! The CURRENT credential cannot be made PENDING, PREVIOUS or RETIRED
//! directly (the tile would be left without one): another is made CURRENT
//! first. Asking for the slot a credential already has changes nothing
//! (`changed = false`); retiring one that is not installed likewise.

use std::collections::BTreeMap;

use jiff::Timestamp;
use tilewave_core::quote::quoted;
use tilewave_proto::ShortName as _;
use tilewave_proto::agent::v1::{CredentialInfo, CredentialSlot, InstalledCredential};
use tilewave_proto::credentials::v1::{CredentialKind, EncryptedSecret};
use tilewave_secrets::{Keyring, Sealed};
use tilewave_store::clock::{from_proto_timestamp, to_proto_timestamp};

use crate::error::{Error, Result};

/// The associated data a secret is sealed with in the agent's catalog:
/// `tilewave-agent/<tile>/<fingerprint>`, so that a sealed secret copied to
/// another tile or credential does not open.
pub fn aad(tile_id: &str, fingerprint: &str) -> Vec<u8> {
    format!("tilewave-agent/{tile_id}/{fingerprint}").into_bytes()
}

/// The associated data of a request's `encrypted` secret, as the
/// credentials service seals it: `<tile>/<credential_id>`.
pub fn request_aad(tile_id: &str, credential_id: &str) -> Vec<u8> {
    format!("{tile_id}/{credential_id}").into_bytes()
}

/// One installed credential.
#[derive(Debug, Clone, PartialEq)]
pub struct Installed {
    /// The Basic-auth user; not secret.
    pub username: String,
    /// PENDING, CURRENT or PREVIOUS.
    pub slot: CredentialSlot,
    /// The password, sealed with [`aad`].
    pub sealed: Sealed,
    /// Domain time it was first installed.
    pub installed_at: Timestamp,
    /// The credentials service's id; may be empty.
    pub credential_id: String,
}

/// A tile's credentials by fingerprint.
pub type Credentials = BTreeMap<String, Installed>;

/// A secret given with the request, already opened, checked against the
/// fingerprint and sealed for the catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSecret {
    /// The Basic-auth user.
    pub username: String,
    /// The password sealed with [`aad`].
    pub sealed: Sealed,
    /// The credentials service's id; may be empty.
    pub credential_id: String,
}

/// An InstallCredential request after edge checks (and sealing).
#[derive(Debug, Clone, PartialEq)]
pub struct Install {
    /// The tile.
    pub tile_id: String,
    /// The credential.
    pub fingerprint: String,
    /// PENDING, CURRENT, PREVIOUS or RETIRED.
    pub slot: CredentialSlot,
    /// The user named by the request (empty: not named).
    pub username: String,
    /// The secret, when the request carried one.
    pub secret: Option<NewSecret>,
    /// The caller's fencing token.
    pub fencing_token: i64,
    /// The partner's API the credential is for, when the request gave it.
    pub partner: Option<tilewave_proto::common::v1::PartnerConfig>,
}

/// The fingerprint of the CURRENT credential, if any.
pub fn current(creds: &Credentials) -> Option<(&str, &Installed)> {
    creds
        .iter()
        .find(|(_, c)| c.slot == CredentialSlot::Current)
        .map(|(fp, c)| (fp.as_str(), c))
}

/// Puts `req`'s credential in its slot; whether anything changed. On an
/// error `creds` is unchanged.
pub fn set_slot(creds: &mut Credentials, req: &Install, now: Timestamp) -> Result<bool> {
    let fp = req.fingerprint.as_str();
    let slot = req.slot;
    if let Some(installed) = creds.get(fp)
        && !req.username.is_empty()
        && req.username != installed.username
    {
        return Err(Error::invalid(
            "username",
            format!(
                "differs from the user of the installed credential {} ({})",
                quoted(fp),
                quoted(&installed.username)
            ),
        ));
    }
    match slot {
        CredentialSlot::Unspecified => Err(Error::invalid(
            "slot",
            "must be PENDING, CURRENT, PREVIOUS or RETIRED",
        )),
        CredentialSlot::Retired => match creds.get(fp) {
            None => Ok(false),
            Some(c) if c.slot == CredentialSlot::Current => Err(current_stays(fp, slot)),
            Some(_) => {
                creds.remove(fp);
                Ok(true)
            }
        },
        CredentialSlot::Pending | CredentialSlot::Current | CredentialSlot::Previous => {
            match creds.get(fp).map(|c| c.slot) {
                Some(s) if s == slot => return Ok(false),
                Some(CredentialSlot::Current) => return Err(current_stays(fp, slot)),
                Some(_) => {}
                None => {
                    let Some(secret) = &req.secret else {
                        return Err(Error::invalid(
                            "secret",
                            format!(
                                "required: credential {} is not installed for tile {}",
                                quoted(fp),
                                req.tile_id
                            ),
                        ));
                    };
                    creds.insert(
                        fp.to_owned(),
                        Installed {
                            username: secret.username.clone(),
                            slot: CredentialSlot::Pending,
                            sealed: secret.sealed.clone(),
                            installed_at: now,
                            credential_id: secret.credential_id.clone(),
                        },
                    );
                }
            }
            if slot == CredentialSlot::Current {
                for c in creds.values_mut() {
                    if c.slot == CredentialSlot::Current {
                        c.slot = CredentialSlot::Previous;
                    }
                }
            }
            if let Some(c) = creds.get_mut(fp) {
                c.slot = slot;
            }
            Ok(true)
        }
    }
}

fn current_stays(fp: &str, slot: CredentialSlot) -> Error {
    Error::Precondition(format!(
        "credential {} is CURRENT and cannot become {}: make another credential CURRENT first",
        quoted(fp),
        slot.short_name()
    ))
}

/// Re-wraps the data key of every credential of `tile_id` that another
/// KEK than `ring`'s primary wraps (after a KEK rotation), leaving nonce
/// and ciphertext as they are: the secret is never decrypted. Returns how
/// many moved. On an error `creds` is unchanged and the error names the
/// credential, its tile and the key it needs, never a secret.
pub fn rewrap(tile_id: &str, creds: &mut Credentials, ring: &Keyring) -> Result<usize> {
    let mut next = creds.clone();
    let mut moved = 0;
    for (fp, c) in &mut next {
        if !c.sealed.needs_rewrap(ring) {
            continue;
        }
        c.sealed = ring.rewrap(&c.sealed, &aad(tile_id, fp)).map_err(|e| {
            let why = match e {
                tilewave_secrets::Error::UnknownKek { .. } => format!(
                    "{e}: give the agent a key ring holding key {} (after the new primary) so that it \
                     can re-wrap it",
                    c.sealed.kek_id
                ),
                other => format!(
                    "{other}: is key {} in the key ring the key it was sealed with?",
                    c.sealed.kek_id
                ),
            };
            Error::Precondition(format!(
                "credential {} of tile {tile_id} cannot be re-wrapped under key {}: {why}",
                quoted(fp),
                ring.primary().id()
            ))
        })?;
        moved += 1;
    }
    *creds = next;
    Ok(moved)
}

/// The metadata shown for one credential.
pub fn info(fingerprint: &str, c: &Installed) -> CredentialInfo {
    CredentialInfo {
        fingerprint: fingerprint.to_owned(),
        kind: CredentialKind::PartnerBasicAuth as i32,
        username: c.username.clone(),
        slot: c.slot as i32,
        credential_id: c.credential_id.clone(),
    }
}

/// The sealed secret as its protobuf envelope.
pub fn to_envelope(s: &Sealed) -> EncryptedSecret {
    EncryptedSecret {
        kek_id: s.kek_id.clone(),
        dek_nonce: s.dek_nonce.clone(),
        wrapped_dek: s.wrapped_dek.clone(),
        nonce: s.nonce.clone(),
        ciphertext: s.ciphertext.clone(),
    }
}

/// The protobuf envelope as a sealed secret.
pub fn from_envelope(e: EncryptedSecret) -> Sealed {
    Sealed {
        kek_id: e.kek_id,
        wrapped_dek: e.wrapped_dek,
        dek_nonce: e.dek_nonce,
        nonce: e.nonce,
        ciphertext: e.ciphertext,
    }
}

/// The file form of a tile's credentials.
pub fn to_file(creds: &Credentials) -> Vec<InstalledCredential> {
    creds
        .iter()
        .map(|(fp, c)| InstalledCredential {
            info: Some(info(fp, c)),
            sealed: Some(to_envelope(&c.sealed)),
            installed_at: Some(to_proto_timestamp(c.installed_at)),
        })
        .collect()
}

/// From the file form; the error says what is wrong (never a secret).
pub fn from_file(tile_id: &str, list: Vec<InstalledCredential>) -> std::result::Result<Credentials, String> {
    let mut out = Credentials::new();
    for (i, c) in list.into_iter().enumerate() {
        let where_ = || format!("tile {tile_id}: credential {i}");
        let info = c.info.ok_or_else(|| format!("{}: no info", where_()))?;
        let sealed = c
            .sealed
            .ok_or_else(|| format!("{}: no sealed secret", where_()))?;
        let installed_at = match &c.installed_at {
            Some(t) => from_proto_timestamp(t).map_err(|e| format!("{}: {e}", where_()))?,
            None => return Err(format!("{}: no installed_at", where_())),
        };
        let slot = info.slot();
        if !matches!(
            slot,
            CredentialSlot::Pending | CredentialSlot::Current | CredentialSlot::Previous
        ) {
            return Err(format!("{}: slot {}", where_(), slot.short_name()));
        }
        let installed = Installed {
            username: info.username,
            slot,
            sealed: from_envelope(sealed),
            installed_at,
            credential_id: info.credential_id,
        };
        if out.insert(info.fingerprint, installed).is_some() {
            return Err(format!("{}: fingerprint appears twice", where_()));
        }
    }
    if out.values().filter(|c| c.slot == CredentialSlot::Current).count() > 1 {
        return Err(format!("tile {tile_id}: more than one CURRENT credential"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed(n: u8) -> Sealed {
        Sealed {
            kek_id: "k1".into(),
            wrapped_dek: vec![n; 48],
            dek_nonce: vec![n; 12],
            nonce: vec![n; 12],
            ciphertext: vec![n; 20],
        }
    }

    fn req(fp: &str, slot: CredentialSlot, secret: Option<u8>) -> Install {
        Install {
            tile_id: "riverflow".into(),
            fingerprint: fp.into(),
            slot,
            username: "tilewave".into(),
            secret: secret.map(|n| NewSecret {
                username: "tilewave".into(),
                sealed: sealed(n),
                credential_id: format!("riverflow/basic/{n}"),
            }),
            fencing_token: 1,
            partner: None,
        }
    }

    fn slots(c: &Credentials) -> Vec<(&str, CredentialSlot)> {
        c.iter().map(|(fp, i)| (fp.as_str(), i.slot)).collect()
    }

    #[test]
    fn a_rotation_pending_current_previous_retired() {
        use CredentialSlot::*;
        let now = Timestamp::UNIX_EPOCH;
        let mut c = Credentials::new();
        assert!(set_slot(&mut c, &req("a", Current, Some(1)), now).unwrap());
        assert!(
            !set_slot(&mut c, &req("a", Current, None), now).unwrap(),
            "idempotent"
        );
        assert!(set_slot(&mut c, &req("b", Pending, Some(2)), now).unwrap());
        assert!(!set_slot(&mut c, &req("b", Pending, Some(2)), now).unwrap());
        assert_eq!(slots(&c), [("a", Current), ("b", Pending)]);
        assert!(set_slot(&mut c, &req("b", Current, None), now).unwrap());
        assert_eq!(slots(&c), [("a", Previous), ("b", Current)]);
        assert_eq!(current(&c).map(|(fp, _)| fp), Some("b"));
        assert!(set_slot(&mut c, &req("a", Retired, None), now).unwrap());
        assert!(!set_slot(&mut c, &req("a", Retired, None), now).unwrap());
        assert_eq!(slots(&c), [("b", Current)]);
    }

    #[test]
    fn refusals_leave_the_credentials_unchanged() {
        use CredentialSlot::*;
        let now = Timestamp::UNIX_EPOCH;
        let mut c = Credentials::new();
        set_slot(&mut c, &req("a", Current, Some(1)), now).unwrap();
        let before = c.clone();
        for (r, what) in [
            (req("a", Retired, None), "CURRENT"),
            (req("a", Pending, None), "CURRENT"),
            (req("z", Pending, None), "secret"),
            (req("a", Unspecified, None), "slot"),
            (
                Install {
                    username: "other".into(),
                    ..req("a", Current, None)
                },
                "username",
            ),
        ] {
            let e = set_slot(&mut c, &r, now).unwrap_err();
            assert!(e.to_string().contains(what), "{e}");
            assert_eq!(c, before);
        }
    }

    #[test]
    fn rewrap_moves_what_another_kek_wraps_and_refuses_a_missing_key() {
        use tilewave_secrets::{Kek, Secret};
        let old = Keyring::new(Kek::new("kek-old", [1; 32]).unwrap());
        let both = Keyring::from_keys(vec![
            Kek::new("kek-new", [2; 32]).unwrap(),
            Kek::new("kek-old", [1; 32]).unwrap(),
        ])
        .unwrap();
        let now = Timestamp::UNIX_EPOCH;
        let mut c = Credentials::new();
        for (fp, password, slot) in [
            ("a", "password-a", CredentialSlot::Current),
            ("b", "password-b", CredentialSlot::Pending),
        ] {
            let sealed = old
                .seal(&Secret::from_text(password).unwrap(), &aad("riverflow", fp))
                .unwrap();
            c.insert(
                fp.into(),
                Installed {
                    username: "tilewave".into(),
                    slot,
                    sealed,
                    installed_at: now,
                    credential_id: String::new(),
                },
            );
        }
        let before = c.clone();

        // A ring without the old key: refused, naming it, nothing changed.
        let other = Keyring::new(Kek::new("kek-other", [3; 32]).unwrap());
        let e = rewrap("riverflow", &mut c, &other).unwrap_err().to_string();
        assert!(e.contains("kek-old") && e.contains("kek-other"), "{e}");
        assert!(!e.contains("password-"), "{e}");
        assert_eq!(c, before);

        // The new primary first, the old key second: both move, still open.
        assert_eq!(rewrap("riverflow", &mut c, &both).unwrap(), 2);
        for (fp, password) in [("a", "password-a"), ("b", "password-b")] {
            let moved = &c[fp].sealed;
            assert_eq!(moved.kek_id, "kek-new");
            assert_eq!(moved.ciphertext, before[fp].sealed.ciphertext);
            let only_new = Keyring::new(Kek::new("kek-new", [2; 32]).unwrap());
            let opened = only_new.open(moved, &aad("riverflow", fp)).unwrap();
            assert_eq!(opened.expose(), password);
        }
        // Nothing left to move.
        let after = c.clone();
        assert_eq!(rewrap("riverflow", &mut c, &both).unwrap(), 0);
        assert_eq!(c, after);

        // A sealed secret moved to another credential does not re-wrap.
        let mut swapped = before.clone();
        let a = swapped["a"].sealed.clone();
        if let Some(b) = swapped.get_mut("b") {
            b.sealed = a;
        }
        let e = rewrap("riverflow", &mut swapped, &both).unwrap_err().to_string();
        assert!(e.contains("\"b\"") && e.contains("kek-old"), "{e}");
    }

    #[test]
    fn the_file_form_round_trips_and_is_checked() {
        use CredentialSlot::*;
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let mut c = Credentials::new();
        set_slot(&mut c, &req("a", Current, Some(1)), now).unwrap();
        set_slot(&mut c, &req("b", Pending, Some(2)), now).unwrap();
        let file = to_file(&c);
        assert_eq!(from_file("riverflow", file.clone()).unwrap(), c);
        let mut two_current = file;
        if let Some(info) = two_current[1].info.as_mut() {
            info.slot = Current as i32;
        }
        assert!(
            from_file("riverflow", two_current)
                .unwrap_err()
                .contains("more than one")
        );
    }
}
