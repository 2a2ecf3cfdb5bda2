//! The services the CLI talks to, one line each in [`endpoints!`]. A
//! service's name gives everything else: the flag `--<name>`, the
//! environment variable `TILEWAVE_<NAME>`, the config file key `<name>`,
//! the `dev up` saved setting, and with its port the default URL
//! `http://127.0.0.1:<port>`. Adding a service the CLI calls is one line
//! here (and, when `dev up` starts it, one line in `dev::services`).

use std::collections::BTreeMap;

/// A service the CLI talks to: where its address setting comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    /// Flag, config key and the lower-case part of the variable name.
    pub name: &'static str,
    /// The port of its default URL on 127.0.0.1.
    pub port: u16,
    /// How help text names it ("the registry").
    pub title: &'static str,
}

/// Declares each endpoint as a constant and lists them all in `ENDPOINTS`.
macro_rules! endpoints {
    ($($(#[$doc:meta])* $konst:ident = $name:literal, $port:literal, $title:literal;)+) => {
        $($(#[$doc])* pub const $konst: Endpoint = Endpoint { name: $name, port: $port, title: $title };)+
        /// Every service the CLI talks to, in help order.
        pub const ENDPOINTS: &[Endpoint] = &[$($konst),+];
    };
}

endpoints! {
    /// The registry: tiles, sign-offs, GA dates.
    REGISTRY = "registry", 7401, "the registry";
    /// The rollout service: roll-outs, the freeze, the virtual clock.
    ROLLOUT = "rollout", 7402, "the rollout service";
    /// The credentials service: partner credentials and their rotations.
    CREDENTIALS = "credentials", 7403, "the credentials service";
    /// The escalation service: incidents, on-call schedules, policies, SOPs.
    ESCALATION = "escalation", 7404, "the escalation service";
}

impl Endpoint {
    /// The config file key (and the `dev up` saved setting).
    pub fn key(self) -> &'static str {
        self.name
    }

    /// The long flag, without dashes (clap's id and long name).
    pub fn flag(self) -> &'static str {
        self.name
    }

    /// The environment variable: `TILEWAVE_<NAME>`.
    pub fn env(self) -> String {
        format!("TILEWAVE_{}", self.name.to_ascii_uppercase().replace('-', "_"))
    }

    /// The URL when nothing else is configured.
    pub fn default_url(self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The endpoint whose config key is `key`.
    pub fn by_key(key: &str) -> Option<Self> {
        ENDPOINTS.iter().copied().find(|e| e.key() == key)
    }
}

/// The URL flags (`--registry URL`, ...), one per endpoint, global to every
/// command: built from [`ENDPOINTS`] rather than declared one by one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointFlags(pub BTreeMap<&'static str, String>);

impl clap::FromArgMatches for EndpointFlags {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut urls = BTreeMap::new();
        for e in ENDPOINTS {
            if let Some(v) = m.try_get_one::<String>(e.flag()).ok().flatten() {
                urls.insert(e.name, v.clone());
            }
        }
        Ok(Self(urls))
    }

    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        let more = Self::from_arg_matches(m)?;
        self.0.extend(more.0);
        Ok(())
    }
}

impl clap::Args for EndpointFlags {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        ENDPOINTS.iter().fold(cmd, |cmd, e| {
            let mut title = e.title.to_owned();
            if let Some(first) = title.get(..1).map(str::to_ascii_uppercase) {
                title.replace_range(..1, &first);
            }
            cmd.arg(
                clap::Arg::new(e.flag())
                    .long(e.flag())
                    .global(true)
                    .value_name("URL")
                    .help(format!(
                        "{title}'s gRPC URL [env: {}] [config: {}] [default: the dev stack's, else {}].",
                        e.env(),
                        e.key(),
                        e.default_url()
                    )),
            )
        })
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_derives_from_the_name_and_port() {
        // (endpoint, flag, env, key, default URL)
        let cases = [
            (
                REGISTRY,
                "registry",
                "TILEWAVE_REGISTRY",
                "registry",
                "http://127.0.0.1:7401",
            ),
            (
                ROLLOUT,
                "rollout",
                "TILEWAVE_ROLLOUT",
                "rollout",
                "http://127.0.0.1:7402",
            ),
            (
                CREDENTIALS,
                "credentials",
                "TILEWAVE_CREDENTIALS",
                "credentials",
                "http://127.0.0.1:7403",
            ),
            (
                ESCALATION,
                "escalation",
                "TILEWAVE_ESCALATION",
                "escalation",
                "http://127.0.0.1:7404",
            ),
        ];
        for (e, flag, env, key, url) in cases {
            assert_eq!(
                (e.flag(), e.env().as_str(), e.key(), e.default_url().as_str()),
                (flag, env, key, url)
            );
            assert_eq!(Endpoint::by_key(key), Some(e));
        }
        assert_eq!(Endpoint::by_key("actor"), None);
        let names: std::collections::HashSet<&str> = ENDPOINTS.iter().map(|e| e.name).collect();
        assert_eq!(names.len(), ENDPOINTS.len(), "names are unique");
        let ports: std::collections::HashSet<u16> = ENDPOINTS.iter().map(|e| e.port).collect();
        assert_eq!(ports.len(), ENDPOINTS.len(), "default ports are unique");
    }
}
