//! Outside input never panics the parsers: any policy text is a policy or
//! an error naming its line, any bytes are a certificate identity or an
//! error, any role text parses back to itself or is refused, any path is
//! decided. Messages stay bounded whatever the input's size.

#![allow(clippy::unwrap_used, reason = "test code")]

use std::sync::LazyLock;

use proptest::prelude::*;
use tilewave_auth::{CertIdentity, Identity, Peer, Policy, RefusalCode, Role, decide, identity_from_der};

/// A real certificate's DER, to damage.
static CERT: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, "ada");
    let key = rcgen::KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().der().to_vec()
});

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_policy_text_loads_or_names_its_line(text in "(\\PC|\\n|\\[|\\]|=|\"){0,200}") {
        match Policy::parse(&text) {
            Ok(p) => prop_assert_eq!(Policy::parse(&p.to_toml().unwrap()).unwrap(), p),
            Err(e) => {
                let m = e.to_string();
                prop_assert!(m.starts_with("line "), "{}", m);
                prop_assert!(m.len() < 1024, "{}", m);
            }
        }
    }

    #[test]
    fn policy_like_text_loads_or_names_its_line(
        entries in proptest::collection::vec(("[a-z \"]{0,8}", "[a-z:-]{0,20}"), 0..6),
    ) {
        let mut text = String::from("[identities]\n");
        for (name, role) in &entries {
            text.push_str(&format!("\"{name}\" = \"{role}\"\n"));
        }
        if let Err(e) = Policy::parse(&text) {
            prop_assert!(e.to_string().starts_with("line "), "{}", e);
        }
    }

    #[test]
    fn any_bytes_are_an_identity_or_an_error(der in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Err(e) = identity_from_der(&der) {
            prop_assert!(e.to_string().len() < 512);
        }
    }

    #[test]
    fn a_damaged_certificate_is_an_identity_or_an_error(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut der = CERT.clone();
        for (at, byte) in flips {
            let i = at.index(der.len());
            der[i] = byte;
        }
        let keep = cut.index(der.len() + 1);
        for d in [&der[..], &der[..keep]] {
            if let Err(e) = identity_from_der(d) {
                prop_assert!(e.to_string().len() < 512);
            }
        }
    }

    #[test]
    fn any_role_text_round_trips_or_is_refused(text in "\\PC{0,80}") {
        if let Ok(role) = text.parse::<Role>() {
            prop_assert_eq!(role.to_string(), text);
        }
    }

    #[test]
    fn any_path_is_decided(path in "/?\\PC{0,300}") {
        let dev = Peer::Certificate(CertIdentity {
            identity: Identity::parse("dev").unwrap(),
            serial: "1".parse().unwrap(),
        });
        let e = decide(&Policy::dev_default(), dev, &path).unwrap_err();
        prop_assert_eq!(e.code(), RefusalCode::PermissionDenied);
        prop_assert!(e.to_string().len() < 1024, "{}", e);
        let e = decide(&Policy::dev_default(), Peer::NoCertificate, &path).unwrap_err();
        prop_assert!(e.to_string().starts_with("no client certificate"));
    }
}
