#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt as _;

use super::*;
use crate::files::{pair_paths, write_pair};

fn days(n: i64) -> jiff::SignedDuration {
    jiff::SignedDuration::from_hours(24 * n)
}

#[test]
fn a_service_certificate_names_the_service_and_loopback() {
    let ca = Ca::generate().unwrap();
    let issued = ca
        .issue_service("registry", &["registry.internal".to_owned()])
        .unwrap();
    let info = inspect::parse_cert_pem("registry.crt".as_ref(), issued.cert_pem.as_bytes()).unwrap();
    assert_eq!(info.common_name.as_deref(), Some("registry"));
    assert!(info.subject.contains("CN=registry"), "{}", info.subject);
    assert_eq!(info.sans, ["127.0.0.1", "::1", "localhost", "registry.internal"]);
    assert!(!info.is_ca);
    assert_eq!(info.serial.len(), 32, "128-bit serial: {}", info.serial);
    let now = crate::wall_clock_now();
    let left = info.days_left(now);
    assert!(
        (certs::LEAF_VALIDITY_DAYS - 1..=certs::LEAF_VALIDITY_DAYS).contains(&left),
        "{left}"
    );
    assert!(!info.expires_within(now, EXPIRY_WARNING_DAYS));
    let ca_info = inspect::parse_cert_pem("ca.crt".as_ref(), ca.cert_pem().as_bytes()).unwrap();
    assert!(ca_info.is_ca);
    assert_eq!(ca_info.common_name.as_deref(), Some(certs::CA_COMMON_NAME));
}

#[test]
fn serials_differ_and_user_certificates_carry_the_identity() {
    let ca = Ca::generate().unwrap();
    let a = ca.issue_client("ada").unwrap();
    let b = ca.issue_client("ada").unwrap();
    let read = |i: &Issued| inspect::parse_cert_pem("x".as_ref(), i.cert_pem.as_bytes()).unwrap();
    let (ia, ib) = (read(&a), read(&b));
    assert_eq!(ia.common_name.as_deref(), Some("ada"));
    assert!(ia.sans.is_empty());
    assert_ne!(ia.serial, ib.serial);
    assert!(ca.issue_client("").is_err());
    assert!(ca.issue_client("a\nb").is_err());
}

#[test]
fn written_pairs_are_0600_read_back_and_are_not_overwritten_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::generate().unwrap();
    let issued = ca.issue_client("grace").unwrap();
    let (cert, key) = write_pair(dir.path(), "grace", &issued, false).unwrap();
    for p in [&cert, &key] {
        let mode = std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", p.display());
    }
    let info = inspect::read_cert(&cert).unwrap();
    assert_eq!(info.common_name.as_deref(), Some("grace"));
    let again = write_pair(dir.path(), "grace", &issued, false).unwrap_err();
    assert!(again.to_string().contains("already exists"), "{again}");
    write_pair(dir.path(), "grace", &ca.issue_client("grace").unwrap(), true).unwrap();
    assert_ne!(inspect::read_cert(&cert).unwrap().serial, info.serial);
}

#[test]
fn a_saved_ca_issues_certificates_that_chain_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::generate().unwrap();
    let (ca_cert, ca_key) = write_pair(dir.path(), "ca", &ca.issued(), false).unwrap();
    let loaded = Ca::load(&ca_cert, &ca_key).unwrap();
    let issued = loaded.issue_client("lin").unwrap();
    write_pair(dir.path(), "lin", &issued, false).unwrap();
    let (cert, key) = pair_paths(dir.path(), "lin");
    let tls = Tls::from_files(&cert, &key, &ca_cert).unwrap();
    assert_eq!(tls.cert.common_name.as_deref(), Some("lin"));
    // The issuer of the new certificate is the saved CA's subject.
    let der = x509_parser::pem::parse_x509_pem(issued.cert_pem.as_bytes())
        .unwrap()
        .1;
    let (_, parsed) = x509_parser::parse_x509_certificate(&der.contents).unwrap();
    assert_eq!(parsed.issuer().to_string(), tls.ca.subject);
}

#[test]
fn bad_files_are_named_with_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::generate().unwrap();
    let (ca_cert, ca_key) = write_pair(dir.path(), "ca", &ca.issued(), false).unwrap();
    let (cert, key) = write_pair(dir.path(), "svc", &ca.issue_service("svc", &[]).unwrap(), false).unwrap();
    let (_, other_key) = write_pair(dir.path(), "other", &ca.issue_client("other").unwrap(), false).unwrap();
    let not_pem = dir.path().join("notes.txt");
    std::fs::write(&not_pem, "hello").unwrap();
    let missing = dir.path().join("missing.crt");

    // (cert, key, ca, expected file, expected words)
    let cases = [
        (&missing, &key, &ca_cert, &missing, "does not exist"),
        (&not_pem, &key, &ca_cert, &not_pem, "is not PEM"),
        (&cert, &not_pem, &ca_cert, &not_pem, "is not a PEM private key"),
        (
            &cert,
            &other_key,
            &ca_cert,
            &other_key,
            "does not match the certificate",
        ),
        (&cert, &key, &cert, &cert, "is not a CA certificate"),
        (&key, &key, &ca_cert, &key, "no CERTIFICATE block"),
    ];
    for (c, k, a, file, words) in cases {
        let err = Tls::from_files(c, k, a).unwrap_err().to_string();
        assert!(
            err.starts_with(&file.display().to_string()) && err.contains(words),
            "({}, {}, {}): {err}",
            c.display(),
            k.display(),
            a.display()
        );
    }
    assert!(Tls::from_files(&cert, &key, &ca_cert).is_ok());
    let err = Ca::load(&ca_cert, &key).unwrap_err().to_string();
    assert!(err.contains("does not match"), "{err}");
    let err = Ca::load(&cert, &key).unwrap_err().to_string();
    assert!(err.contains("is not a CA certificate"), "{err}");
    assert!(Ca::load(&ca_cert, &ca_key).is_ok());
}

#[test]
fn expiry_within_fourteen_days_is_warned_about() {
    let ca = Ca::generate().unwrap();
    let now = crate::wall_clock_now();
    let soon = Validity {
        not_before: now - days(30),
        not_after: now + days(10) + jiff::SignedDuration::from_secs(3600),
    };
    let issued = ca.issue_client_with("soon", soon).unwrap();
    let info = inspect::parse_cert_pem("soon.crt".as_ref(), issued.cert_pem.as_bytes()).unwrap();
    assert_eq!(info.not_after.as_second(), soon.not_after.as_second());
    assert_eq!(info.days_left(now), 10);
    assert!(info.expires_within(now, EXPIRY_WARNING_DAYS));
    let w = info.expiry_warning("certificate soon.crt", now).unwrap();
    assert!(w.contains("expires in 10 days"), "{w}");

    let past = Validity {
        not_before: now - days(30),
        not_after: now - days(1),
    };
    let issued = ca.issue_client_with("old", past).unwrap();
    let info = inspect::parse_cert_pem("old.crt".as_ref(), issued.cert_pem.as_bytes()).unwrap();
    assert!(info.days_left(now) < 0);
    let w = info.expiry_warning("certificate old.crt", now).unwrap();
    assert!(w.contains("expired on"), "{w}");

    let fresh = ca.issue_client("fresh").unwrap();
    let info = inspect::parse_cert_pem("f".as_ref(), fresh.cert_pem.as_bytes()).unwrap();
    assert_eq!(info.expiry_warning("f", now), None);
}

#[test]
fn tls_flags_are_all_or_nothing() {
    assert_eq!(TlsArgs::default().files().unwrap(), None);
    let some = TlsArgs {
        tls_cert: Some("a.crt".into()),
        ..TlsArgs::default()
    };
    let err = some.files().unwrap_err().to_string();
    assert!(err.contains("missing --tls-key, --tls-ca"), "{err}");
    let all = TlsArgs {
        tls_cert: Some("a.crt".into()),
        tls_key: Some("a.key".into()),
        tls_ca: Some("ca.crt".into()),
        insecure: false,
    };
    assert_eq!(all.files().unwrap().map(|f| f.ca), Some("ca.crt".into()));
}

#[test]
fn endpoints_switch_to_https_with_tls_only() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::generate().unwrap();
    let (ca_cert, _) = write_pair(dir.path(), "ca", &ca.issued(), false).unwrap();
    let (cert, key) = write_pair(dir.path(), "u", &ca.issue_client("u").unwrap(), false).unwrap();
    let tls = Tls::from_files(&cert, &key, &ca_cert).unwrap();
    let uri = |url: &str, tls: Option<&Tls>| endpoint(url, tls).unwrap().uri().to_string();
    assert_eq!(uri("http://127.0.0.1:7401", None), "http://127.0.0.1:7401/");
    assert_eq!(uri("127.0.0.1:7401", None), "http://127.0.0.1:7401/");
    assert_eq!(
        uri("http://127.0.0.1:7401", Some(&tls)),
        "https://127.0.0.1:7401/"
    );
    assert_eq!(uri("127.0.0.1:7401", Some(&tls)), "https://127.0.0.1:7401/");
    assert_eq!(uri("https://localhost:1", Some(&tls)), "https://localhost:1/");
    assert!(endpoint("http://bad host", None).is_err());
}

#[test]
fn the_flags_flatten_into_a_service_config() {
    use clap::Parser as _;
    #[derive(Debug, clap::Parser)]
    struct Svc {
        #[command(flatten)]
        tls: TlsArgs,
    }
    let svc = Svc::try_parse_from([
        "svc",
        "--tls-cert",
        "a.crt",
        "--tls-key",
        "a.key",
        "--tls-ca",
        "ca.crt",
    ])
    .unwrap();
    assert_eq!(
        svc.tls.files().unwrap(),
        Some(TlsFiles {
            cert: "a.crt".into(),
            key: "a.key".into(),
            ca: "ca.crt".into()
        })
    );
    let none = Svc::try_parse_from(["svc"]).unwrap();
    let err = none.tls.load().unwrap_err().to_string();
    for needle in [
        "TLS certificates are needed",
        "--tls-cert, --tls-key and --tls-ca",
        "tilewave certs init",
        "--insecure",
    ] {
        assert!(
            err.contains(needle),
            "no files, no --insecure: {needle} missing from {err}"
        );
    }
    let insecure = Svc::try_parse_from(["svc", "--insecure"]).unwrap();
    assert!(insecure.tls.insecure);
    assert!(insecure.tls.load().unwrap().is_none(), "--insecure: plaintext");
    let err = Svc::try_parse_from(["svc", "--tls-ca", "ca.crt"])
        .unwrap()
        .tls
        .load()
        .unwrap_err();
    assert!(err.to_string().contains("missing --tls-cert, --tls-key"), "{err}");
}

#[test]
fn files_and_insecure_together_are_refused_and_files_alone_load() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::generate().unwrap();
    let (ca_cert, _) = write_pair(dir.path(), "ca", &ca.issued(), false).unwrap();
    let (cert, key) = write_pair(dir.path(), "svc", &ca.issue_service("svc", &[]).unwrap(), false).unwrap();
    let mut args = TlsArgs {
        tls_cert: Some(cert),
        tls_key: Some(key),
        tls_ca: Some(ca_cert),
        insecure: false,
    };
    let tls = args.load().unwrap().expect("all three files: TLS");
    assert_eq!(tls.cert.common_name.as_deref(), Some("svc"));
    args.insecure = true;
    let err = args.load().unwrap_err().to_string();
    assert!(err.contains("contradict"), "{err}");
    assert!(err.contains("--insecure") && err.contains("--tls-cert"), "{err}");
}
