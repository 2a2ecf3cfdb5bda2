//! Envelope encryption across the modules: round trips, tampering, AAD,
//! rotation and re-wrapping, and that nothing shown carries a secret.

use proptest::prelude::*;

use crate::sealed::{NONCE_LEN, TAG_LEN, WRAPPED_DEK_LEN};
use crate::*;

const PLAIN: &str = "partner-user:Sup3r-S3cret-Passw0rd";
const AAD: &[u8] = b"tile-7/3";

fn secret(text: &str) -> Secret {
    Secret::from_text(text).unwrap()
}

fn ring(ids: &[&str]) -> Keyring {
    Keyring::from_keys(ids.iter().map(|id| Kek::generate(id).unwrap()).collect()).unwrap()
}

/// Asserts that no formatting of `err` quotes the plaintext.
fn assert_quiet(err: &Error) {
    for shown in [err.to_string(), format!("{err:?}"), format!("{err:#?}")] {
        assert!(!shown.contains(PLAIN), "{shown}");
        assert!(!shown.contains("Sup3r"), "{shown}");
    }
}

#[test]
fn round_trip() {
    let ring = ring(&["k1"]);
    let sealed = ring.seal(&secret(PLAIN), AAD).unwrap();
    assert_eq!(sealed.kek_id, "k1");
    assert_eq!(sealed.wrapped_dek.len(), WRAPPED_DEK_LEN);
    assert_eq!(sealed.dek_nonce.len(), NONCE_LEN);
    assert_eq!(sealed.nonce.len(), NONCE_LEN);
    assert_eq!(sealed.ciphertext.len(), PLAIN.len() + TAG_LEN);
    assert!(!sealed.ciphertext.windows(5).any(|w| w == b"Sup3r"));
    assert_eq!(ring.open(&sealed, AAD).unwrap().expose(), PLAIN);
    assert!(!sealed.needs_rewrap(&ring));
}

#[test]
fn every_seal_is_fresh() {
    let ring = ring(&["k1"]);
    let a = ring.seal(&secret(PLAIN), AAD).unwrap();
    let b = ring.seal(&secret(PLAIN), AAD).unwrap();
    assert_ne!(a.wrapped_dek, b.wrapped_dek);
    assert_ne!(a.dek_nonce, b.dek_nonce);
    assert_ne!(a.nonce, b.nonce);
    assert_ne!(a.ciphertext, b.ciphertext);
}

#[test]
fn tampering_with_any_field_fails() {
    let ring = ring(&["k1", "k2"]);
    let sealed = ring.seal(&secret(PLAIN), AAD).unwrap();
    let flip = |v: &mut Vec<u8>, i: usize| v[i] ^= 0x01;
    let mut cases: Vec<(&str, Sealed)> = Vec::new();
    for i in [0, WRAPPED_DEK_LEN - 1] {
        let mut s = sealed.clone();
        flip(&mut s.wrapped_dek, i);
        cases.push(("wrapped_dek", s));
    }
    for i in [0, NONCE_LEN - 1] {
        let mut s = sealed.clone();
        flip(&mut s.dek_nonce, i);
        cases.push(("dek_nonce", s));
        let mut s = sealed.clone();
        flip(&mut s.nonce, i);
        cases.push(("nonce", s));
    }
    for i in [0, PLAIN.len() - 1, sealed.ciphertext.len() - 1] {
        let mut s = sealed.clone();
        flip(&mut s.ciphertext, i);
        cases.push(("ciphertext", s));
    }
    // The other key of the ring under the stored id: the wrapped key binds it.
    let mut s = sealed.clone();
    s.kek_id = "k2".into();
    cases.push(("kek_id", s));
    for (field, tampered) in cases {
        let err = ring.open(&tampered, AAD).unwrap_err();
        assert!(matches!(err, Error::Open), "{field}: {err}");
        assert_eq!(
            err.to_string(),
            "the sealed secret does not open: its ciphertext or its AAD does not match"
        );
        assert_quiet(&err);
        assert!(
            matches!(ring.rewrap(&tampered, AAD), Err(Error::Open))
                || field == "nonce"
                || field == "ciphertext"
        );
    }
}

#[test]
fn wrong_lengths_are_malformed() {
    let ring = ring(&["k1"]);
    let sealed = ring.seal(&secret(PLAIN), AAD).unwrap();
    let mut cases = Vec::new();
    let mut s = sealed.clone();
    s.wrapped_dek.pop();
    cases.push((s, "wrapped data key is 47 bytes, expected 48"));
    let mut s = sealed.clone();
    s.dek_nonce.push(0);
    cases.push((s, "data key nonce is 13 bytes, expected 12"));
    let mut s = sealed.clone();
    s.nonce.clear();
    cases.push((s, "nonce is 0 bytes, expected 12"));
    let mut s = sealed.clone();
    s.ciphertext.truncate(TAG_LEN);
    cases.push((s, "ciphertext is 16 bytes, expected 17"));
    let mut s = sealed.clone();
    s.ciphertext = vec![0; MAX_SECRET_LEN + TAG_LEN + 1];
    cases.push((s, "ciphertext is 4113 bytes, expected 4112"));
    for (s, expected) in cases {
        let err = ring.open(&s, AAD).unwrap_err();
        assert!(matches!(err, Error::Malformed { .. }), "{err}");
        assert!(err.to_string().contains(expected), "{err}");
    }
}

#[test]
fn wrong_aad_fails() {
    let ring = ring(&["k1"]);
    let sealed = ring.seal(&secret(PLAIN), AAD).unwrap();
    for aad in [&b"tile-7/4"[..], b"tile-8/3", b"", b"tile-7/3 "] {
        let err = ring.open(&sealed, aad).unwrap_err();
        assert!(matches!(err, Error::Open), "{err}");
        assert!(matches!(ring.rewrap(&sealed, aad), Err(Error::Open)));
    }
    // An empty AAD is an AAD like any other.
    let empty = ring.seal(&secret(PLAIN), b"").unwrap();
    assert_eq!(ring.open(&empty, b"").unwrap().expose(), PLAIN);
    assert!(ring.open(&empty, AAD).is_err());
}

#[test]
fn a_data_key_moved_to_another_secret_does_not_open_it() {
    let ring = ring(&["k1"]);
    let a = ring.seal(&secret(PLAIN), AAD).unwrap();
    let b = ring.seal(&secret("other"), AAD).unwrap();
    let mixed = Sealed {
        wrapped_dek: b.wrapped_dek,
        dek_nonce: b.dek_nonce,
        ..a
    };
    assert!(matches!(ring.open(&mixed, AAD), Err(Error::Open)));
}

#[test]
fn the_same_id_with_another_key_fails() {
    let sealed = ring(&["k1"]).seal(&secret(PLAIN), AAD).unwrap();
    let err = ring(&["k1"]).open(&sealed, AAD).unwrap_err();
    assert!(matches!(err, Error::Open), "{err}");
}

#[test]
fn unknown_kek_names_the_id() {
    let sealed = ring(&["k1"]).seal(&secret(PLAIN), AAD).unwrap();
    let err = ring(&["k2", "k3"]).open(&sealed, AAD).unwrap_err();
    assert!(
        matches!(&err, Error::UnknownKek { id } if id == "\"k1\""),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "the secret is sealed under key \"k1\", which the keyring does not hold"
    );
    assert_quiet(&err);
    // A corrupt id is quoted bounded and escaped.
    let mut odd = sealed.clone();
    odd.kek_id = format!("x\n{}", "y".repeat(1000));
    let shown = ring(&["k2"]).open(&odd, AAD).unwrap_err().to_string();
    assert!(shown.len() < 200 && shown.contains("x\\n"), "{shown}");
}

#[test]
fn rotation_and_rewrap() {
    let k1 = Kek::generate("k1").unwrap();
    let k2 = Kek::generate("k2").unwrap();
    let mut ring = Keyring::new(k1.clone());
    let sealed = ring.seal(&secret(PLAIN), AAD).unwrap();

    // k2 becomes primary: the old ciphertext still opens.
    ring.rotate(k2.clone()).unwrap();
    assert_eq!(ring.primary().id(), "k2");
    assert!(sealed.needs_rewrap(&ring));
    assert_eq!(ring.open(&sealed, AAD).unwrap().expose(), PLAIN);
    // New secrets go under k2.
    assert_eq!(ring.seal(&secret(PLAIN), AAD).unwrap().kek_id, "k2");

    // Rewrap moves the data key to k2 and leaves the ciphertext alone.
    let moved = ring.rewrap(&sealed, AAD).unwrap();
    assert_eq!(moved.kek_id, "k2");
    assert_eq!(moved.nonce, sealed.nonce);
    assert_eq!(moved.ciphertext, sealed.ciphertext);
    assert_ne!(moved.wrapped_dek, sealed.wrapped_dek);
    assert!(!moved.needs_rewrap(&ring));
    assert_eq!(ring.open(&moved, AAD).unwrap().expose(), PLAIN);

    // A ring of k2 alone opens the rewrapped secret, not the old one.
    let only_k2 = Keyring::new(k2);
    assert_eq!(only_k2.open(&moved, AAD).unwrap().expose(), PLAIN);
    assert!(matches!(
        only_k2.open(&sealed, AAD),
        Err(Error::UnknownKek { .. })
    ));
    // The same ring parsed from its text form, the old key retired.
    let mut parsed = Keyring::parse_file_text(&ring.to_file_text()).unwrap();
    assert!(parsed.retire("k1"));
    assert_eq!(parsed.open(&moved, AAD).unwrap().expose(), PLAIN);

    // Rewrapping under the primary again is harmless.
    let again = ring.rewrap(&moved, AAD).unwrap();
    assert_eq!(again.kek_id, "k2");
    assert_eq!(again.ciphertext, moved.ciphertext);
    assert_eq!(only_k2.open(&again, AAD).unwrap().expose(), PLAIN);
}

#[test]
fn serde_round_trip_with_base64_bytes() {
    let ring = ring(&["k1"]);
    let sealed = ring.seal(&secret(PLAIN), AAD).unwrap();
    let json = serde_json::to_string(&sealed).unwrap();
    assert!(json.contains("\"kek_id\":\"k1\""), "{json}");
    assert!(!json.contains('['), "bytes are base64 strings: {json}");
    let back: Sealed = serde_json::from_str(&json).unwrap();
    assert_eq!(back, sealed);
    assert_eq!(ring.open(&back, AAD).unwrap().expose(), PLAIN);
    let bad = json.replacen("\"nonce\":\"", "\"nonce\":\"!", 1);
    assert!(serde_json::from_str::<Sealed>(&bad).is_err());
}

#[test]
fn nothing_shown_carries_the_secret() {
    let s = secret(PLAIN);
    let basic = BasicCredential::parse(&s).unwrap();
    let kek = Kek::generate("k1").unwrap();
    let key_text = kek.to_text();
    let key_b64 = key_text.split_once(':').unwrap().1;
    let ring = Keyring::new(kek.clone());
    let sealed = ring.seal(&s, AAD).unwrap();
    let shown = [
        format!("{s:?}"),
        format!("{s}"),
        format!("{basic:?}"),
        format!("{basic}"),
        format!("{kek:?}"),
        format!("{kek}"),
        format!("{ring:?}"),
        format!("{ring}"),
        format!("{sealed:?}"),
        fingerprint("tile-7", &s),
    ];
    for text in shown {
        assert!(!text.contains(PLAIN) && !text.contains("Sup3r"), "{text}");
        assert!(!text.contains(key_b64), "{text}");
    }
}

#[test]
fn errors_never_carry_the_plaintext() {
    // Every refusal of a secret holding PLAIN.
    let inputs = [
        format!("{PLAIN}\n"),
        format!("{PLAIN}\0"),
        format!("\t{PLAIN}"),
        PLAIN.repeat(200),
        format!("{PLAIN}\u{7f}"),
    ];
    for input in inputs {
        let err = Secret::from_text(&input).unwrap_err();
        assert_quiet(&err);
    }
    let mut bad_utf8 = PLAIN.as_bytes().to_vec();
    bad_utf8.push(0xff);
    assert_quiet(&Secret::from_bytes(bad_utf8).unwrap_err());
    assert_quiet(&BasicCredential::parse(&secret(":Sup3r")).unwrap_err());
    assert_quiet(&BasicCredential::parse(&secret("Sup3r")).unwrap_err());
    // A failed open, wrong AAD or wrong key.
    let sealed = ring(&["k1"]).seal(&secret(PLAIN), AAD).unwrap();
    assert_quiet(&ring(&["k1"]).open(&sealed, AAD).unwrap_err());
}

proptest! {
    #[test]
    fn seal_open_round_trip(
        text in "[^\\p{Cc}]{1,300}",
        aad in proptest::collection::vec(any::<u8>(), 0..64),
        other_aad in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let s = Secret::from_text(&text).unwrap();
        let ring = ring(&["k1"]);
        let sealed = ring.seal(&s, &aad).unwrap();
        prop_assert_eq!(ring.open(&sealed, &aad).unwrap().expose().to_owned(), text.clone());
        let rotated = {
            let mut r = ring.clone();
            r.rotate(Kek::generate("k2").unwrap()).unwrap();
            r
        };
        let moved = rotated.rewrap(&sealed, &aad).unwrap();
        prop_assert_eq!(rotated.open(&moved, &aad).unwrap().expose().to_owned(), text.clone());
        if other_aad != aad {
            prop_assert!(matches!(ring.open(&sealed, &other_aad), Err(Error::Open)));
        }
        let json = serde_json::to_string(&moved).unwrap();
        prop_assert_eq!(serde_json::from_str::<Sealed>(&json).unwrap(), moved);
    }

    #[test]
    fn from_bytes_never_panics_and_accepts_only_clean_text(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let clean = std::str::from_utf8(&bytes).is_ok_and(|t| !t.is_empty() && !t.chars().any(char::is_control));
        prop_assert_eq!(Secret::from_bytes(bytes).is_ok(), clean);
    }
}

#[test]
fn types_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Secret>();
    send_sync::<BasicCredential>();
    send_sync::<Kek>();
    send_sync::<Keyring>();
    send_sync::<Sealed>();
    send_sync::<Error>();
}
