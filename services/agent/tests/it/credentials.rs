//! InstallCredential and VerifyCredential against the partner API double
//! (`tilewave_testkit::PartnerDouble`): a rotation from install to retire,
//! the health probe presenting the CURRENT credential, credentials sealed
//! in the catalog file across a restart, re-wrapped under a new KEK at
//! start-up (and a start refused without the key they need), retries of a
//! partner's 500s, and bad input refused with the catalog file unchanged.

use std::collections::BTreeMap;

use tilewave_proto::agent::v1::install_credential_request::Secret as RequestSecret;
use tilewave_proto::common::v1::TestStatus;
use tilewave_proto::credentials::v1::{CredentialKind, EncryptedSecret};
use tilewave_secrets::{Kek, Keyring, Secret};
use tilewave_testkit::{PartnerDouble, partner::TEST_CONNECTION_PATH};
use tonic::Code;

use crate::*;

const TILE: &str = "riverflow-ingest";
const USER: &str = "tilewave";
const OLD: &str = "old-password-5f2c9a01";
const NEW: &str = "new-password-e1b4aa77";
/// The fencing token of the tests' calls.
const TOKEN: i64 = 5;

fn fp(password: &str) -> Result<String> {
    Ok(tilewave_secrets::fingerprint(TILE, &Secret::from_text(password)?))
}

/// An install of `password` (plain text) in `slot`.
fn plain(password: &str, slot: CredentialSlot) -> Result<InstallCredentialRequest> {
    Ok(InstallCredentialRequest {
        tile_id: TILE.into(),
        kind: CredentialKind::PartnerBasicAuth as i32,
        fingerprint: fp(password)?,
        username: USER.into(),
        slot: slot as i32,
        secret: Some(RequestSecret::Plaintext(password.into())),
        fencing_token: TOKEN,
        credential_id: String::new(),
        partner: None,
    })
}

/// An install of `password` sealed by `ring` as the credentials service
/// seals it (associated data `<tile>/<credential_id>`).
fn encrypted(
    ring: &Keyring,
    password: &str,
    credential_id: &str,
    slot: CredentialSlot,
) -> Result<InstallCredentialRequest> {
    let sealed = ring.seal(
        &Secret::from_text(password)?,
        format!("{TILE}/{credential_id}").as_bytes(),
    )?;
    Ok(InstallCredentialRequest {
        secret: Some(RequestSecret::Encrypted(EncryptedSecret {
            kek_id: sealed.kek_id,
            dek_nonce: sealed.dek_nonce,
            wrapped_dek: sealed.wrapped_dek,
            nonce: sealed.nonce,
            ciphertext: sealed.ciphertext,
        })),
        credential_id: credential_id.into(),
        ..plain(password, slot)?
    })
}

/// A promotion or retirement of an installed credential (no secret).
fn moved(password: &str, slot: CredentialSlot) -> Result<InstallCredentialRequest> {
    Ok(InstallCredentialRequest {
        secret: None,
        ..plain(password, slot)?
    })
}

/// An agent with the test KEK, a partner double, and [`TILE`] applied
/// with the double's test-connection endpoint.
async fn start(with_kek: bool) -> Result<(Stack, PartnerDouble)> {
    let partner = PartnerDouble::start().await?;
    let stack = if with_kek {
        Stack::start_with_kek().await?
    } else {
        Stack::start().await?
    };
    stack
        .client()
        .await?
        .apply_tile(ApplyTileRequest {
            config: Some(config(&partner.base_url(), TEST_CONNECTION_PATH)),
            ..apply(TILE, 1, 1)
        })
        .await?;
    Ok((stack, partner))
}

async fn verify(stack: &Stack, fingerprint: &str) -> Result<VerifyCredentialResponse> {
    Ok(stack
        .client()
        .await?
        .verify_credential(VerifyCredentialRequest {
            tile_id: TILE.into(),
            fingerprint: fingerprint.into(),
        })
        .await?
        .into_inner())
}

/// The tile's credentials as (fingerprint, slot), and the entry's
/// `credential_fingerprint`.
async fn slots(stack: &Stack) -> Result<(Vec<(String, CredentialSlot)>, String)> {
    let list = stack.list().await?;
    let entry = list
        .entries
        .into_iter()
        .find(|e| e.tile_id == TILE)
        .context("the tile is not listed")?;
    Ok((
        entry
            .credentials
            .iter()
            .map(|c| (c.fingerprint.clone(), c.slot()))
            .collect(),
        entry.credential_fingerprint,
    ))
}

fn sorted(mut v: Vec<(String, CredentialSlot)>) -> Vec<(String, CredentialSlot)> {
    v.sort();
    v
}

#[tokio::test]
async fn a_credential_is_verified_before_its_tile_is_live_here() -> Result<()> {
    // The launch's pre-flight: the tile is not applied in the region yet,
    // but its credential, installed with the partner's API, is verified
    // against the partner from here, and stays after a restart.
    let partner = PartnerDouble::start().await?;
    let mut stack = Stack::start_with_kek().await?;
    partner.accept(USER, OLD);
    let mut c = stack.client().await?;
    let without = c
        .install_credential(plain(OLD, CredentialSlot::Current)?)
        .await
        .expect_err("no partner API for a tile not live here");
    assert_eq!(without.code(), Code::FailedPrecondition, "{without:?}");
    assert!(without.message().contains("partner"), "{without:?}");
    c.install_credential(InstallCredentialRequest {
        partner: Some(config(&partner.base_url(), TEST_CONNECTION_PATH)),
        ..plain(OLD, CredentialSlot::Current)?
    })
    .await?;
    assert!(
        stack.list().await?.entries.iter().all(|e| e.tile_id != TILE),
        "a credential does not make the tile live"
    );
    let v = verify(&stack, "").await?;
    assert!(v.ok, "{v:?}");
    assert_eq!(v.fingerprint, fp(OLD)?);
    assert_eq!(partner.auth_failures(), 0);
    stack.agent.restart().await?;
    let v = verify(&stack, "").await?;
    assert!(v.ok, "after a restart: {v:?}");
    // A credential the partner does not accept fails verification.
    partner.reject(USER, OLD);
    let v = verify(&stack, "").await?;
    assert!(!v.ok, "{v:?}");
    Ok(())
}

#[tokio::test]
async fn a_rotation_from_install_to_retire() -> Result<()> {
    let (mut stack, partner) = start(true).await?;
    let mut c = stack.client().await?;
    let old_id = partner.accept(USER, OLD);
    let (fp_old, fp_new) = (fp(OLD)?, fp(NEW)?);

    // The credential in use, then the new one beside it.
    let r = c
        .install_credential(plain(OLD, CredentialSlot::Current)?)
        .await?
        .into_inner();
    assert!(r.changed);
    assert_eq!(
        (r.fingerprint.as_str(), r.slot()),
        (fp_old.as_str(), CredentialSlot::Current)
    );
    let again = c
        .install_credential(plain(OLD, CredentialSlot::Current)?)
        .await?
        .into_inner();
    assert!(!again.changed, "idempotent");
    let ring = Keyring::new(test_kek()?);
    let pending = encrypted(&ring, NEW, "riverflow-ingest/basic/2", CredentialSlot::Pending)?;
    assert!(c.install_credential(pending.clone()).await?.into_inner().changed);
    assert!(!c.install_credential(pending).await?.into_inner().changed);
    assert_eq!(
        slots(&stack).await?,
        (
            sorted(vec![
                (fp_old.clone(), CredentialSlot::Current),
                (fp_new.clone(), CredentialSlot::Pending)
            ]),
            fp_old.clone()
        )
    );

    // The partner does not know the new one yet: not ok.
    let rejected = verify(&stack, &fp_new).await?;
    assert!(!rejected.ok, "{rejected:?}");
    let probe = rejected.probe.context("no probe")?;
    assert_eq!(
        (probe.http_status, probe.error_reason.as_str()),
        (401, "unauthorized")
    );
    assert!(!format!("{probe:?}").contains(NEW));
    // Once it does: ok, and CURRENT (the empty fingerprint) is still fine.
    let new_id = partner.accept(USER, NEW);
    let accepted = verify(&stack, &fp_new).await?;
    assert!(accepted.ok, "{accepted:?}");
    assert_eq!(accepted.fingerprint, fp_new);
    let current = verify(&stack, "").await?;
    assert!(current.ok && current.fingerprint == fp_old, "{current:?}");

    // Promote: the old one becomes PREVIOUS.
    let r = c
        .install_credential(moved(NEW, CredentialSlot::Current)?)
        .await?
        .into_inner();
    assert!(r.changed);
    assert_eq!(
        slots(&stack).await?,
        (
            sorted(vec![
                (fp_old.clone(), CredentialSlot::Previous),
                (fp_new.clone(), CredentialSlot::Current)
            ]),
            fp_new.clone()
        )
    );

    // The health probe presents CURRENT: the double saw the new credential
    // and no authentication failure.
    partner.clear_requests();
    let health = c
        .health(HealthRequest {
            tile_ids: vec![TILE.into()],
            probe_now: true,
        })
        .await?
        .into_inner();
    let probe = health.tiles[0].probe.clone().context("no probe")?;
    assert_eq!(probe.status(), TestStatus::Pass, "{probe:?}");
    let seen = partner.requests();
    assert!(!seen.is_empty());
    assert!(seen.iter().all(|r| r.matched == Some(new_id)), "{seen:?}");
    assert_eq!(partner.auth_failures(), 0, "{seen:?}");
    assert_ne!(old_id, new_id);

    // A restart keeps them, sealed: no plaintext in the catalog's files
    // (the snapshot and the change log).
    stack.agent.restart().await?;
    assert_eq!(slots(&stack).await?.1, fp_new);
    for name in ["catalog.pb", "catalog.log"] {
        let file = match std::fs::read(stack.data_dir().join(name)) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
        for secret in [OLD, NEW] {
            assert!(
                !file.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{name} holds a plaintext secret"
            );
        }
    }
    let after = verify(&stack, "").await?;
    assert!(after.ok && after.fingerprint == fp_new, "{after:?}");

    // Retire the old one; the CURRENT one cannot be retired; a stale token
    // is refused.
    let mut c = stack.client().await?;
    assert!(
        c.install_credential(moved(OLD, CredentialSlot::Retired)?)
            .await?
            .into_inner()
            .changed
    );
    assert!(
        !c.install_credential(moved(OLD, CredentialSlot::Retired)?)
            .await?
            .into_inner()
            .changed
    );
    assert_eq!(
        slots(&stack).await?.0,
        [(fp_new.clone(), CredentialSlot::Current)]
    );
    let e = c
        .install_credential(moved(NEW, CredentialSlot::Retired)?)
        .await
        .expect_err("the CURRENT credential was retired");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let stale = InstallCredentialRequest {
        fencing_token: TOKEN - 1,
        ..moved(NEW, CredentialSlot::Current)?
    };
    let e = c
        .install_credential(stale)
        .await
        .expect_err("a stale token was accepted");
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("stale fencing token"), "{e:?}");
    // Nothing in the agent's log holds a secret.
    let log = std::fs::read_to_string(stack.agent.log_path())?;
    assert!(
        !log.contains(OLD) && !log.contains(NEW),
        "a secret reached the log"
    );
    Ok(())
}

#[tokio::test]
async fn a_partners_500s_are_retried() -> Result<()> {
    let (stack, partner) = start(true).await?;
    let mut c = stack.client().await?;
    partner.accept(USER, OLD);
    c.install_credential(plain(OLD, CredentialSlot::Current)?).await?;
    partner.clear_requests();
    partner.fail_next(2);
    let r = verify(&stack, "").await?;
    assert!(r.ok, "{r:?}");
    let probe = r.probe.context("no probe")?;
    assert!(probe.message.contains("after 2 retries"), "{}", probe.message);
    let statuses: Vec<u16> = partner.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 500, 200]);

    // Three retries, then the 500 stands.
    partner.clear_requests();
    partner.fail_next(10);
    let r = verify(&stack, "").await?;
    assert!(!r.ok);
    assert_eq!(r.probe.context("no probe")?.http_status, 500);
    assert_eq!(partner.requests().len(), 4);
    Ok(())
}

#[tokio::test]
async fn retries_end_before_the_callers_deadline() -> Result<()> {
    // Production waits (1, 2 and 4 s) against a 1 s gRPC deadline: the
    // agent answers the 500 in time instead of DEADLINE_EXCEEDED.
    let partner = PartnerDouble::start().await?;
    let dir = TestDir::new("agent-it")?;
    let etcd = EtcdCluster::start(1).await?;
    let kek_file = dir.path().join("kek");
    std::fs::write(&kek_file, test_kek()?.to_text().as_bytes())?;
    let spec = spec_with_retry_delays(&etcd, &dir, "1s,2s,4s")?
        .with_args(["--kek-file", &kek_file.display().to_string()]);
    let agent = ServiceProcess::start(spec, dir.path()).await?;
    let stack = Stack { agent, etcd, dir };
    let mut c = stack.client().await?;
    c.apply_tile(ApplyTileRequest {
        config: Some(config(&partner.base_url(), TEST_CONNECTION_PATH)),
        ..apply(TILE, 1, 1)
    })
    .await?;
    partner.accept(USER, OLD);
    c.install_credential(plain(OLD, CredentialSlot::Current)?).await?;
    partner.fail_next(10);
    let mut req = tonic::Request::new(VerifyCredentialRequest {
        tile_id: TILE.into(),
        fingerprint: String::new(),
    });
    req.set_timeout(std::time::Duration::from_secs(1));
    let r = c.verify_credential(req).await?.into_inner();
    assert!(!r.ok);
    assert_eq!(r.probe.context("no probe")?.http_status, 500);
    assert_eq!(partner.requests().len(), 1, "no retry fits in the deadline");
    Ok(())
}

#[tokio::test]
async fn a_partner_over_https_is_called_with_the_partner_ca() -> Result<()> {
    let pki = tilewave_testkit::Pki::shared()?;
    let partner = PartnerDouble::start_https(Default::default(), pki).await?;
    let stack = Stack::start_with_kek_and(&["--partner-ca", &pki.ca_cert().display().to_string()]).await?;
    let mut c = stack.client().await?;
    c.apply_tile(ApplyTileRequest {
        config: Some(config(&partner.base_url(), TEST_CONNECTION_PATH)),
        ..apply(TILE, 1, 1)
    })
    .await?;
    let id = partner.accept(USER, OLD);
    c.install_credential(plain(OLD, CredentialSlot::Current)?).await?;
    let r = verify(&stack, "").await?;
    assert!(r.ok, "{r:?}");
    let health = c
        .health(HealthRequest {
            tile_ids: vec![TILE.into()],
            probe_now: true,
        })
        .await?
        .into_inner();
    let probe = health.tiles[0].probe.clone().context("no probe")?;
    assert_eq!(probe.status(), TestStatus::Pass, "{probe:?}");
    assert!(partner.requests().iter().all(|r| r.matched == Some(id)));
    assert_eq!(partner.auth_failures(), 0);
    Ok(())
}

#[tokio::test]
async fn bad_input_is_refused_and_the_catalog_unchanged() -> Result<()> {
    let (stack, partner) = start(true).await?;
    partner.accept(USER, OLD);
    let mut c = stack.client().await?;
    c.install_credential(plain(OLD, CredentialSlot::Current)?).await?;
    let catalog = stack.data_dir().join("catalog.pb");
    let before = std::fs::read(&catalog)?;

    let other_ring = Keyring::new(Kek::new("other-kek", [9; 32])?);
    let cases = [
        (
            InstallCredentialRequest {
                tile_id: "unknown-tile".into(),
                ..moved(OLD, CredentialSlot::Current)?
            },
            Code::FailedPrecondition,
            "not installed in this region",
        ),
        (
            InstallCredentialRequest {
                fingerprint: fp(OLD)?,
                ..plain(NEW, CredentialSlot::Pending)?
            },
            Code::InvalidArgument,
            "fingerprint: ",
        ),
        (
            encrypted(
                &other_ring,
                NEW,
                "riverflow-ingest/basic/2",
                CredentialSlot::Pending,
            )?,
            Code::FailedPrecondition,
            "other-kek",
        ),
        (
            InstallCredentialRequest {
                credential_id: "riverflow-ingest/basic/9".into(),
                ..encrypted(
                    &Keyring::new(test_kek()?),
                    NEW,
                    "riverflow-ingest/basic/2",
                    CredentialSlot::Pending,
                )?
            },
            Code::InvalidArgument,
            "encrypted: ",
        ),
        (
            moved(NEW, CredentialSlot::Pending)?,
            Code::InvalidArgument,
            "secret: ",
        ),
        (
            InstallCredentialRequest {
                slot: 0,
                ..plain(NEW, CredentialSlot::Pending)?
            },
            Code::InvalidArgument,
            "slot: ",
        ),
    ];
    for (req, code, says) in cases {
        let e = c
            .install_credential(req)
            .await
            .expect_err("bad input was accepted");
        assert_eq!(e.code(), code, "{e:?}");
        assert!(e.message().contains(says), "{e:?}");
        assert!(!e.message().contains(NEW) && !e.message().contains(OLD), "{e:?}");
    }
    let e = c
        .verify_credential(VerifyCredentialRequest {
            tile_id: "unknown-tile".into(),
            fingerprint: String::new(),
        })
        .await
        .expect_err("a verification of an unknown tile");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let e = c
        .verify_credential(VerifyCredentialRequest {
            tile_id: TILE.into(),
            fingerprint: fp(NEW)?,
        })
        .await
        .expect_err("a verification of a credential not installed");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert_eq!(std::fs::read(&catalog)?, before, "a refusal changed the catalog");
    Ok(())
}

#[tokio::test]
async fn without_a_kek_install_is_refused_naming_the_flag() -> Result<()> {
    let (stack, _partner) = start(false).await?;
    let catalog = stack.data_dir().join("catalog.pb");
    let before = std::fs::read(&catalog)?;
    let e = stack
        .client()
        .await?
        .install_credential(plain(OLD, CredentialSlot::Current)?)
        .await
        .expect_err("installed without a KEK");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("--kek-file"), "{e:?}");
    assert_eq!(std::fs::read(&catalog)?, before);
    Ok(())
}

/// The KEK id of every credential in the agent's catalog files (the
/// snapshot and the change log), with its ciphertext, by fingerprint.
fn stored_keks(stack: &Stack) -> Result<BTreeMap<String, (String, Vec<u8>)>> {
    let file = tilewave_agent::persist::DataDir::new(stack.data_dir())
        .load(REGION)?
        .context("no catalog on disk")?
        .to_file();
    let mut out = BTreeMap::new();
    for record in file.tiles {
        for c in record.credentials {
            let fp = c.info.context("a credential without info")?.fingerprint;
            let sealed = c.sealed.context("a credential without its secret")?;
            out.insert(fp, (sealed.kek_id, sealed.ciphertext));
        }
    }
    Ok(out)
}

/// Writes the agent's `--kek-file` (the one [`Stack::start_with_kek`]
/// gave it) with `keys`, the first primary.
fn write_kek_file(stack: &Stack, keys: &[&Kek]) -> Result<()> {
    let text: Vec<String> = keys.iter().map(|k| k.to_text().to_string()).collect();
    std::fs::write(stack.dir.path().join("kek"), text.join("\n"))?;
    Ok(())
}

#[tokio::test]
async fn after_a_kek_rotation_the_agent_rewraps_its_stored_credentials() -> Result<()> {
    let grace = std::time::Duration::from_secs(5);
    let (mut stack, partner) = start(true).await?;
    partner.accept(USER, OLD);
    partner.accept(USER, NEW);
    let mut c = stack.client().await?;
    c.install_credential(plain(OLD, CredentialSlot::Current)?).await?;
    c.install_credential(plain(NEW, CredentialSlot::Pending)?).await?;
    let (fp_old, fp_new) = (fp(OLD)?, fp(NEW)?);
    let before = stored_keks(&stack)?;
    let kek_ids = |m: &BTreeMap<String, (String, Vec<u8>)>| -> Vec<(String, String)> {
        m.iter().map(|(fp, (id, _))| (fp.clone(), id.clone())).collect()
    };
    assert_eq!(
        kek_ids(&before),
        sorted_pairs([(&fp_old, "test-kek"), (&fp_new, "test-kek")])
    );

    // A new primary first, the old key second: the stored data keys move
    // under the new one at start-up, the ciphertexts untouched.
    let new_kek = Kek::new("kek-2", [11; 32])?;
    stack.agent.terminate(grace).await?;
    write_kek_file(&stack, &[&new_kek, &test_kek()?])?;
    stack.agent.restart().await?;
    let moved = stored_keks(&stack)?;
    assert_eq!(
        kek_ids(&moved),
        sorted_pairs([(&fp_old, "kek-2"), (&fp_new, "kek-2")])
    );
    for (fp, (_, ciphertext)) in &moved {
        assert_eq!(Some(ciphertext), before.get(fp).map(|(_, c)| c), "{fp}");
    }
    let log = std::fs::read_to_string(stack.agent.log_path())?;
    let said = log
        .lines()
        .filter(|l| l.contains("re-wrapped stored credentials"))
        .collect::<Vec<_>>();
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(said[0].contains("\"moved\":2"), "{}", said[0]);
    assert!(said[0].contains("kek-2"), "{}", said[0]);
    for (name, secret) in [("old", OLD), ("new", NEW)] {
        assert!(!log.contains(secret), "the {name} secret reached the log");
    }
    // Both still work against the partner.
    for fingerprint in ["", fp_new.as_str()] {
        let r = verify(&stack, fingerprint).await?;
        assert!(r.ok, "{fingerprint:?}: {r:?}");
    }

    // Only the new key: nothing left to move, and it still works.
    stack.agent.terminate(grace).await?;
    write_kek_file(&stack, &[&new_kek])?;
    stack.agent.restart().await?;
    assert_eq!(stored_keks(&stack)?, moved, "nothing moved again");
    let r = verify(&stack, "").await?;
    assert!(r.ok && r.fingerprint == fp_old, "{r:?}");
    assert_eq!(partner.auth_failures(), 0, "{:?}", partner.requests());

    // A key ring without the key they are sealed under: the agent refuses
    // to start, naming the key, and the catalog file is unchanged.
    let file = std::fs::read(stack.data_dir().join("catalog.pb"))?;
    stack.agent.terminate(grace).await?;
    write_kek_file(&stack, &[&Kek::new("kek-3", [12; 32])?])?;
    let e = stack
        .agent
        .restart()
        .await
        .expect_err("the agent started without the key its credentials need");
    let e = format!("{e:#}");
    assert!(e.contains("exited during start-up"), "{e}");
    assert!(e.contains("sealed under key \"kek-2\""), "{e}");
    assert!(e.contains("holding key kek-2"), "{e}");
    assert!(!e.contains(OLD) && !e.contains(NEW), "{e}");
    assert_eq!(std::fs::read(stack.data_dir().join("catalog.pb"))?, file);
    Ok(())
}

fn sorted_pairs<const N: usize>(pairs: [(&String, &str); N]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = pairs
        .into_iter()
        .map(|(fp, id)| (fp.clone(), id.to_owned()))
        .collect();
    v.sort();
    v
}
