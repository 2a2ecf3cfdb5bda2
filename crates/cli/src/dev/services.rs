//! What `tilewave dev up` starts after etcd: one spec per service. Adding a
//! service to the local stack is one line in [`SERVICES`]; a service whose
//! binary is not built yet is skipped with a note.

use super::tls::StackCerts;
use crate::endpoints::{Endpoint, REGISTRY, ROLLOUT};

/// How many copies of a service run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replicas {
    /// One.
    One,
    /// One per region of the stack (`--regions N`: a representative set).
    PerRegion,
}

/// What the argument builders know about the stack being started.
#[derive(Debug, Clone, PartialEq)]
pub struct StackEnv {
    /// etcd's client URL.
    pub etcd_url: String,
    /// The key prefix every service uses.
    pub prefix: String,
    /// `--virtual-clock`: run domain time on the virtual clock.
    pub virtual_clock: bool,
    /// With `virtual_clock`: the virtual clock's start (RFC 3339).
    pub virtual_clock_start: Option<String>,
    /// With `virtual_clock`: virtual seconds per real second.
    pub rate: f64,
    /// The dev directory (agents keep their catalogs under it).
    pub data_dir: std::path::PathBuf,
    /// The registry's URL, once started (for services that call it).
    pub registry_url: Option<String>,
    /// The region of a per-region instance.
    pub region: Option<String>,
    /// The stack's region catalog when `--regions N` narrows it (the
    /// regions with agents); empty: every region of the catalog.
    pub catalog: Vec<String>,
    /// The stack's certificates; `None`: it runs `--insecure`.
    pub certs: Option<StackCerts>,
}

/// One service of the local stack.
#[derive(Debug, Clone, Copy)]
pub struct ServiceDef {
    /// Instance name: log `<dir>/<name>.log`, entry in `stack.toml`.
    pub name: &'static str,
    /// The binary, found next to `tilewave` or in the cargo target dir.
    pub binary: &'static str,
    /// The gRPC health service whose SERVING means ready (`""`: the server).
    pub health_service: &'static str,
    /// The endpoint its URL is saved as (config key, variable), if the
    /// CLI talks to it.
    pub setting: Option<Endpoint>,
    /// Its arguments (`--listen 127.0.0.1:PORT` is added).
    pub args: fn(&StackEnv) -> Vec<String>,
    /// One, or one per region.
    pub replicas: Replicas,
}

/// The services in start order (each may use the ones before it).
#[rustfmt::skip]
pub const SERVICES: &[ServiceDef] = &[
    ServiceDef { name: "registry", binary: "tilewave-registry", health_service: "", setting: Some(REGISTRY), args: store_args, replicas: Replicas::One },
    ServiceDef { name: "rollout", binary: "tilewave-rollout", health_service: "tilewave.rollout.v1.RolloutService", setting: Some(ROLLOUT), args: rollout_args, replicas: Replicas::One },
    // Next, one line each, once their binaries and flags exist:
    // ServiceDef { name: "credentials", binary: "tilewave-credentials", health_service: "", setting: Some(CREDENTIALS), args: store_args, replicas: Replicas::One },
    // ServiceDef { name: "escalation", binary: "tilewave-escalation", health_service: "", setting: None, args: store_args, replicas: Replicas::One },
    ServiceDef { name: "agent", binary: "tilewave-agent", health_service: "tilewave.agent.v1.AgentService", setting: None, args: agent_args, replicas: Replicas::PerRegion },
];

/// The arguments of a service that keeps its state in etcd.
pub fn store_args(env: &StackEnv) -> Vec<String> {
    vec![
        "--etcd".into(),
        env.etcd_url.clone(),
        "--prefix".into(),
        env.prefix.clone(),
    ]
}

/// The rollout service: the store, the registry, and the clock mode. With
/// `--virtual-clock`, the clock is created at the start `dev up` read (only
/// when etcd holds none yet: a restarted stack keeps its virtual time).
pub fn rollout_args(env: &StackEnv) -> Vec<String> {
    let mut args = store_args(env);
    if let Some(url) = &env.registry_url {
        args.extend(["--registry".into(), url.clone()]);
    }
    if !env.catalog.is_empty() {
        args.extend(["--regions".into(), env.catalog.join(",")]);
    }
    if let (true, Some(start)) = (env.virtual_clock, &env.virtual_clock_start) {
        args.extend([
            "--virtual-clock-start".into(),
            start.clone(),
            "--virtual-clock-rate".into(),
            env.rate.to_string(),
        ]);
    }
    args
}

/// A region agent: its region, etcd to register itself in, and its own
/// catalog directory under the dev directory.
pub fn agent_args(env: &StackEnv) -> Vec<String> {
    let mut args = store_args(env);
    if let Some(region) = &env.region {
        args.extend(["--region".into(), region.clone()]);
        let dir = env
            .data_dir
            .join("agents")
            .join(instance_name("agent", Some(region)));
        args.extend(["--data-dir".into(), dir.display().to_string()]);
    }
    args
}

/// Every service's TLS flags and access policy, from its own certificate
/// of the stack's set (named like the service: `registry`, `rollout`,
/// `agent`), or `--insecure` for a plaintext stack.
pub fn security_args(env: &StackEnv, service: &str) -> Vec<String> {
    match &env.certs {
        Some(certs) => certs.service_args(service),
        None => vec!["--insecure".to_owned()],
    }
}

/// The instance name of a per-region copy: `agent-aws-eu-west-1`.
pub fn instance_name(service: &str, region: Option<&str>) -> String {
    match region {
        None => service.to_owned(),
        Some(r) => format!("{service}-{}", r.replace(':', "-")),
    }
}

/// The `n` regions a stack started with `--regions N` runs agents for: a
/// representative set of the built-in catalog (every cloud's canary, then
/// the others spread round-robin over the clouds); all when `n` covers it.
pub fn regions(n: usize) -> Vec<String> {
    tilewave_core::regions::RegionCatalog::builtin().representative(n)
}

/// The region catalog the rollout service is told for a stack with agents
/// in `n` regions: those regions, or empty (the whole catalog) when `n` is
/// zero or covers the catalog.
pub fn stack_catalog(n: usize) -> Vec<String> {
    let ids = regions(n);
    if n == 0 || ids.len() >= regions(usize::MAX).len() {
        Vec::new()
    } else {
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> StackEnv {
        StackEnv {
            etcd_url: "http://127.0.0.1:2379".into(),
            prefix: "/tilewave/".into(),
            virtual_clock: true,
            virtual_clock_start: Some("2026-12-01T17:00:00Z".into()),
            rate: 10000.0,
            data_dir: "/d".into(),
            registry_url: Some("http://127.0.0.1:7401".into()),
            region: Some("aws:eu-west-1".into()),
            catalog: Vec::new(),
            certs: Some(StackCerts {
                dir: "/d/certs".into(),
                user: "ada".into(),
            }),
        }
    }

    #[test]
    fn every_service_gets_its_certificate_and_the_policy_or_insecure() {
        let a = security_args(&env(), "rollout");
        assert_eq!(
            a,
            [
                "--tls-cert",
                "/d/certs/rollout.crt",
                "--tls-key",
                "/d/certs/rollout.key",
                "--tls-ca",
                "/d/certs/ca.crt",
                "--policy",
                "/d/certs/policy.toml"
            ]
        );
        let plain = StackEnv { certs: None, ..env() };
        assert_eq!(security_args(&plain, "agent"), ["--insecure"]);
    }

    #[test]
    fn the_registry_comes_first_and_is_saved_as_the_registry_setting() {
        let r = &SERVICES[0];
        assert_eq!(
            (r.name, r.binary, r.setting),
            ("registry", "tilewave-registry", Some(REGISTRY))
        );
        assert_eq!(
            (r.args)(&env()),
            vec!["--etcd", "http://127.0.0.1:2379", "--prefix", "/tilewave/"]
        );
        let names: std::collections::HashSet<&str> = SERVICES.iter().map(|s| s.name).collect();
        assert_eq!(names.len(), SERVICES.len(), "instance names are unique");
    }

    #[test]
    fn later_services_get_their_flags() {
        let a = rollout_args(&env());
        assert!(
            a.ends_with(&[
                "--registry".into(),
                "http://127.0.0.1:7401".into(),
                "--virtual-clock-start".into(),
                "2026-12-01T17:00:00Z".into(),
                "--virtual-clock-rate".into(),
                "10000".into(),
            ]),
            "{a:?}"
        );
        let no_clock = StackEnv {
            virtual_clock: false,
            ..env()
        };
        assert!(!rollout_args(&no_clock).iter().any(|a| a.starts_with("--virtual")));
        let a = agent_args(&env());
        assert!(
            a.ends_with(&[
                "--region".into(),
                "aws:eu-west-1".into(),
                "--data-dir".into(),
                "/d/agents/agent-aws-eu-west-1".into()
            ]),
            "{a:?}"
        );
        let names: Vec<&str> = SERVICES.iter().map(|s| s.name).collect();
        assert_eq!(names, ["registry", "rollout", "agent"]);
        assert_eq!(SERVICES[2].replicas, Replicas::PerRegion);
        assert_eq!(SERVICES[1].setting, Some(ROLLOUT));
        assert_eq!(
            instance_name("agent", Some("aws:eu-west-1")),
            "agent-aws-eu-west-1"
        );
        assert_eq!(instance_name("registry", None), "registry");
        assert_eq!(regions(3).len(), 3);
        assert_eq!(regions(1000).len(), regions(70).len());
    }

    #[test]
    fn a_narrowed_stack_tells_the_rollout_service_its_catalog() {
        let six = stack_catalog(6);
        assert_eq!(six.len(), 6);
        let clouds: std::collections::HashSet<&str> =
            six.iter().filter_map(|r| r.split(':').next()).collect();
        assert_eq!(clouds.len(), 3, "every cloud: {six:?}");
        assert!(stack_catalog(0).is_empty());
        assert!(stack_catalog(70).is_empty());
        assert!(stack_catalog(500).is_empty());
        let a = rollout_args(&StackEnv {
            catalog: six.clone(),
            ..env()
        });
        let at = a.iter().position(|x| x == "--regions").expect("--regions");
        assert_eq!(a[at + 1], six.join(","));
        assert!(!rollout_args(&env()).contains(&"--regions".to_owned()));
    }
}
