//! The development set of certificates in one directory: a CA, a
//! certificate per service (SANs for loopback and the service's name, the
//! compose host name), user certificates, and the access policy
//! `policy.toml` giving the services the `service` role (the development
//! defaults) and each user its role. `tilewave certs init`, the test kit's
//! PKI and `tilewave dev up` all write it with [`write_dev_set`].

use std::path::{Path, PathBuf};

use tilewave_auth::{Identity, Policy, Role};

use crate::files::{pair_paths, write_pair, write_private};
use crate::{Ca, Error, Result};

/// The CA's file name stem (`ca.crt`, `ca.key`).
pub const CA_NAME: &str = "ca";
/// The services a development set has a certificate for; each one's SANs
/// are loopback and its own name (the compose host name). The development
/// access policy gives these names the `service` role (etcd needs none).
pub const SERVICES: [&str; 6] = [
    "registry",
    "rollout",
    "credentials",
    "escalation",
    "agent",
    "etcd",
];
/// The access policy's file name in the certificates directory.
pub const POLICY_FILE: &str = "policy.toml";

/// What [`write_dev_set`] wrote.
#[derive(Debug)]
pub struct DevSet {
    /// The CA, to issue more certificates with.
    pub ca: Ca,
    /// The directory.
    pub dir: PathBuf,
    /// Every certificate and key written, in order: the CA, the services
    /// ([`SERVICES`]), the users.
    pub written: Vec<(PathBuf, PathBuf)>,
    /// The access policy file.
    pub policy: PathBuf,
}

impl DevSet {
    /// The CA certificate's path.
    pub fn ca_cert(&self) -> PathBuf {
        pair_paths(&self.dir, CA_NAME).0
    }
}

/// Writes a development set into `dir` (created if missing, files 0600): a
/// new CA, a certificate per service in [`SERVICES`], a client certificate
/// per user, and `policy.toml`: [`Policy::dev_default`] plus each user's
/// role (`None`: the certificate only, no role). With `force`, existing
/// files are replaced; without, an existing file is an error.
pub fn write_dev_set(dir: &Path, users: &[(&str, Option<Role>)], force: bool) -> Result<DevSet> {
    write_dev_set_with_hosts(dir, users, &[], force)
}

/// [`write_dev_set`] with more host names per certificate: each `(name,
/// hosts)` adds `hosts` to the SANs of the service certificate `name` (one
/// of [`SERVICES`]), or issues a server certificate `name` with those SANs
/// (and loopback) when it is not a service's (a deployment's partner API
/// double; it gets no role). A deployment names its containers here:
/// `etcd` for `etcd1,etcd2,etcd3`, `agent` for every region agent's host.
pub fn write_dev_set_with_hosts(
    dir: &Path,
    users: &[(&str, Option<Role>)],
    extra_hosts: &[(String, Vec<String>)],
    force: bool,
) -> Result<DevSet> {
    let ca = Ca::generate()?;
    let mut written = vec![write_pair(dir, CA_NAME, &ca.issued(), force)?];
    let hosts_of = |name: &str| -> Vec<String> {
        let mut hosts = vec![name.to_owned()];
        for (n, extra) in extra_hosts {
            if n == name {
                hosts.extend(
                    extra
                        .iter()
                        .filter(|h| !hosts.contains(h))
                        .cloned()
                        .collect::<Vec<_>>(),
                );
            }
        }
        hosts
    };
    for service in SERVICES {
        let issued = ca.issue_service(service, &hosts_of(service))?;
        written.push(write_pair(dir, service, &issued, force)?);
    }
    let mut others: Vec<&str> = extra_hosts
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| !SERVICES.contains(n))
        .collect();
    others.sort_unstable();
    others.dedup();
    for name in others {
        let issued = ca.issue_service(name, &hosts_of(name))?;
        written.push(write_pair(dir, name, &issued, force)?);
    }
    let mut policy = Policy::dev_default();
    for (user, role) in users {
        let issued = ca.issue_client(user)?;
        written.push(write_pair(dir, user, &issued, force)?);
        if let Some(role) = role {
            let identity = Identity::parse(user).map_err(|e| Error::Generate {
                name: (*user).to_owned(),
                why: e.to_string(),
            })?;
            policy.set_role(identity, role.clone());
        }
    }
    let policy = write_policy(dir, &policy)?;
    Ok(DevSet {
        ca,
        dir: dir.to_owned(),
        written,
        policy,
    })
}

/// Writes `policy` to `<dir>/policy.toml` (atomically, 0600) and returns
/// its path.
pub fn write_policy(dir: &Path, policy: &Policy) -> Result<PathBuf> {
    let path = dir.join(POLICY_FILE);
    let text = policy
        .to_toml()
        .map_err(|e| Error::file(&path, format!("cannot write the access policy: {e}")))?;
    write_private(&path, text.as_bytes())?;
    Ok(path)
}
