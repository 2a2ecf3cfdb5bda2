//! What the role check pays to know who is calling: reading the identity
//! of a client certificate (X.509 parsed from DER, `identity_from_der`)
//! against the memo the check reads it through (`identity_of`, the same
//! certificate every call of a connection). Quote `read / remembered`.

use std::hint::black_box;

use criterion::Criterion;
use rcgen::{CertificateParams, DnType, KeyPair, SerialNumber};
use tilewave_auth::{IdentityMemo, identity_from_der};

/// A client certificate like the development CA's: a CN, two DNS SANs and
/// a 16-byte serial.
fn certificate() -> anyhow::Result<Vec<u8>> {
    let mut params = CertificateParams::new(vec!["tilewave-rollout".to_owned(), "localhost".to_owned()])?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "tilewave-rollout");
    params.serial_number = Some(SerialNumber::from_slice(&[0x5a; 16]));
    let key = KeyPair::generate()?;
    Ok(params.self_signed(&key)?.der().to_vec())
}

fn main() -> anyhow::Result<()> {
    let der = certificate()?;
    let memo = IdentityMemo::new(16);
    anyhow::ensure!(
        memo.identity(&der) == identity_from_der(&der),
        "the memo reads differently"
    );
    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("client_certificate_identity");
    g.bench_function("read", |b| b.iter(|| identity_from_der(black_box(&der))));
    g.bench_function("remembered", |b| b.iter(|| memo.identity(black_box(&der))));
    g.finish();
    c.final_summary();
    Ok(())
}
