//! Fingerprints: how a secret is shown (in `tilewave` output, logs and
//! audit records) when its identity matters but its value must not appear.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use crate::secret::Secret;

/// The domain-separation prefix: a fingerprint is never equal to any other
/// SHA-256 this project (or a partner) computes over the same bytes.
const DOMAIN: &[u8] = b"tilewave-secrets/fingerprint/v1\0";

/// The fingerprint of `secret` for `tile_id`: SHA-256 over a
/// domain-separation prefix, the tile id (length-prefixed, so
/// `("ab", "c...")` and `("a", "bc...")` differ) and the secret, shown as the
/// first 8 and the last 4 hex digits of the first 16 bytes, e.g.
/// `5f2c9a01...e1b4`. The same inputs give the same fingerprint in every
/// process and on every machine.
///
/// The truncation is fine because a fingerprint *identifies*, it does not
/// *authenticate*: it lets an operator see that two places hold the same
/// secret, or that a secret changed, and nothing accepts a fingerprint in
/// place of the secret. 48 shown bits make an accidental match between the
/// handful of secrets of one tile negligible. Mixing in the tile id keeps
/// a password reused across tiles from showing the same fingerprint.
///
/// The hash is not keyed: for a human-chosen, guessable password, a
/// fingerprint allows offline guessing like any unsalted hash (the
/// truncation only adds false positives). Generated secrets
/// ([`crate::generate`], 192 bits) are out of reach.
pub fn fingerprint(tile_id: &str, secret: &Secret) -> String {
    let mut h = Sha256::new();
    h.update(DOMAIN);
    h.update((tile_id.len() as u64).to_be_bytes());
    h.update(tile_id.as_bytes());
    h.update(secret.expose_bytes());
    let digest = h.finalize();
    let mut hex = String::with_capacity(32);
    for b in &digest[..16] {
        let _ = write!(hex, "{b:02x}");
    }
    format!("{}...{}", &hex[..8], &hex[28..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_and_stability() {
        let s = Secret::from_text("correct horse battery staple").unwrap();
        let fp = fingerprint("tile-1", &s);
        assert_eq!(fp.len(), 15);
        assert_eq!(&fp[8..11], "...");
        assert!(
            fp.chars()
                .filter(|c| *c != '.')
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        // Stable across processes and versions: a fixed vector.
        assert_eq!(fp, KNOWN);
        assert_eq!(fingerprint("tile-1", &s), fp);
    }

    const KNOWN: &str = "e7dee889...f2f2";

    #[test]
    fn differs_by_tile_and_secret() {
        let a = Secret::from_text("abc").unwrap();
        let b = Secret::from_text("abd").unwrap();
        assert_ne!(fingerprint("t", &a), fingerprint("t", &b));
        assert_ne!(fingerprint("t1", &a), fingerprint("t2", &a));
        // Length-prefixed tile id: no ambiguity at the boundary.
        let bc = Secret::from_text("bc").unwrap();
        let c = Secret::from_text("c").unwrap();
        assert_ne!(fingerprint("a", &bc), fingerprint("ab", &c));
        assert!(!fingerprint("t", &a).contains("abc"));
    }
}
