//! What `tilewave dev up` starts after etcd: one spec per service. Adding a
//! service to the local stack is one line in [`SERVICES`]; a service whose
//! binary is not built yet is skipped with a note.

use super::tls::StackCerts;
use crate::endpoints::{CREDENTIALS, ESCALATION, Endpoint, REGISTRY, ROLLOUT};

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
    /// The rollout service's URL, once started (the escalation service's
    /// mitigations call it).
    pub rollout_url: Option<String>,
    /// The credentials service's URL, once started (the escalation
    /// service's emergency rotations call it).
    pub credentials_url: Option<String>,
    /// The region of a per-region instance.
    pub region: Option<String>,
    /// The stack's region catalog when `--regions N` narrows it (the
    /// regions with agents); empty: every region of the catalog.
    pub catalog: Vec<String>,
    /// The stack's certificates; `None`: it runs `--insecure`.
    pub certs: Option<StackCerts>,
    /// The stack's development key-encryption key file (`<dir>/kek`).
    pub kek_file: Option<std::path::PathBuf>,
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
    /// Environment variables it gets (on top of what it inherits).
    pub env: fn(&StackEnv) -> Vec<(String, String)>,
    /// One, or one per region.
    pub replicas: Replicas,
}

/// The services in start order (each may use the ones before it).
#[rustfmt::skip]
pub const SERVICES: &[ServiceDef] = &[
    ServiceDef { name: "registry", binary: "tilewave-registry", health_service: "", setting: Some(REGISTRY), args: store_args, env: no_env, replicas: Replicas::One },
    ServiceDef { name: "rollout", binary: "tilewave-rollout", health_service: "tilewave.rollout.v1.RolloutService", setting: Some(ROLLOUT), args: rollout_args, env: no_env, replicas: Replicas::One },
    ServiceDef { name: "credentials", binary: "tilewave-credentials", health_service: "tilewave.credentials.v1.CredentialsService", setting: Some(CREDENTIALS), args: credentials_args, env: no_env, replicas: Replicas::One },
    ServiceDef { name: "escalation", binary: "tilewave-escalation", health_service: "tilewave.escalation.v1.EscalationService", setting: Some(ESCALATION), args: escalation_args, env: no_env, replicas: Replicas::One },
    ServiceDef { name: "agent", binary: "tilewave-agent", health_service: "tilewave.agent.v1.AgentService", setting: None, args: agent_args, env: kek_env, replicas: Replicas::PerRegion },
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

/// The credentials service: the store, the stack's region catalog (as
/// the rollout service gets it) and the development key-encryption key.
pub fn credentials_args(env: &StackEnv) -> Vec<String> {
    let mut args = store_args(env);
    if !env.catalog.is_empty() {
        args.extend(["--regions".into(), env.catalog.join(",")]);
    }
    if let Some(kek) = &env.kek_file {
        args.extend(["--kek-file".into(), kek.display().to_string()]);
    }
    args
}

/// The escalation service: the store and the development key-encryption
/// key (sealing webhook signing secrets). It gets no `--rollout` yet (the
/// stack's environment has no rollout address), so its roll-out
/// mitigations are refused with a message saying so.
pub fn escalation_args(env: &StackEnv) -> Vec<String> {
    let mut args = store_args(env);
    if let Some(kek) = &env.kek_file {
        args.extend(["--kek-file".into(), kek.display().to_string()]);
    }
    if let Some(url) = &env.rollout_url {
        args.extend(["--rollout".into(), url.clone()]);
    }
    if let Some(url) = &env.credentials_url {
        args.extend(["--credentials".into(), url.clone()]);
    }
    args
}

/// No environment of its own.
pub fn no_env(_: &StackEnv) -> Vec<(String, String)> {
    Vec::new()
}

/// The development key-encryption key as `TILEWAVE_KEK_FILE`: how agents
/// get it (an agent without a `--kek-file` flag yet ignores the variable,
/// where it would refuse the flag and not start).
pub fn kek_env(env: &StackEnv) -> Vec<(String, String)> {
    env.kek_file
        .iter()
        .map(|k| (KEK_FILE_ENV.to_owned(), k.display().to_string()))
        .collect()
}

/// The variable naming a key-encryption key file.
pub const KEK_FILE_ENV: &str = "TILEWAVE_KEK_FILE";

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
            rollout_url: Some("http://127.0.0.1:7402".into()),
            credentials_url: Some("http://127.0.0.1:7403".into()),
            region: Some("aws:eu-west-1".into()),
            catalog: Vec::new(),
            certs: Some(StackCerts {
                dir: "/d/certs".into(),
                user: "ada".into(),
            }),
            kek_file: Some("/d/kek".into()),
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
        assert_eq!(
            names,
            ["registry", "rollout", "credentials", "escalation", "agent"]
        );
        assert_eq!(SERVICES[4].replicas, Replicas::PerRegion);
        assert_eq!(SERVICES[3].setting, Some(ESCALATION));
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

    #[test]
    fn the_credentials_service_and_the_agents_get_the_stack_key() {
        let c = &SERVICES[2];
        assert_eq!(
            (c.name, c.binary, c.health_service, c.setting),
            (
                "credentials",
                "tilewave-credentials",
                "tilewave.credentials.v1.CredentialsService",
                Some(CREDENTIALS)
            )
        );
        assert_eq!(
            (c.args)(&env()),
            vec![
                "--etcd",
                "http://127.0.0.1:2379",
                "--prefix",
                "/tilewave/",
                "--kek-file",
                "/d/kek"
            ]
        );
        assert!((c.env)(&env()).is_empty());
        let six = StackEnv {
            catalog: stack_catalog(6),
            ..env()
        };
        let a = credentials_args(&six);
        let at = a.iter().position(|x| x == "--regions").expect("--regions");
        assert_eq!(a[at + 1], six.catalog.join(","));
        let agent = &SERVICES[4];
        let esc = escalation_args(&env());
        let at = esc.iter().position(|x| x == "--kek-file").expect("--kek-file");
        assert_eq!(esc[at + 1], "/d/kek");
        let at = esc.iter().position(|x| x == "--rollout").expect("--rollout");
        assert_eq!(
            esc[at + 1],
            "http://127.0.0.1:7402",
            "mitigations call the rollout service"
        );
        assert_eq!(security_args(&env(), "escalation")[1], "/d/certs/escalation.crt");
        assert_eq!(
            (agent.env)(&env()),
            vec![("TILEWAVE_KEK_FILE".to_owned(), "/d/kek".to_owned())]
        );
        assert!(
            !(agent.args)(&env()).iter().any(|a| a.contains("kek")),
            "agents get the key through the environment"
        );
        let none = StackEnv {
            kek_file: None,
            ..env()
        };
        assert!(!credentials_args(&none).contains(&"--kek-file".to_owned()));
        assert!((agent.env)(&none).is_empty());
        for def in SERVICES.iter().filter(|d| d.name != "agent") {
            assert!((def.env)(&env()).is_empty(), "{}", def.name);
        }
        let sec = security_args(&env(), "credentials");
        assert_eq!(sec[1], "/d/certs/credentials.crt");
    }
}
