//! `AuthService/WhoAmI`, answered by every tilewave server: who the caller
//! is (its certificate identity, role and serial), which server answers,
//! whether TLS and the role check are on, and the RPCs of that server the
//! caller may call, from [`crate::table::TABLE`].
//!
//! A server adds it with one line, from its [`crate::ServerAuth`]:
//! `.add_service(sized!(auth.whoami(&[table::REGISTRY])))`, naming the
//! tilewave services it hosts (health, reflection and `AuthService` itself
//! are on every server). The row of `WhoAmI` is open to every role, and
//! the role check lets a certificate of the CA whose identity has no role
//! through to it as well (the answer: that identity, no role, nothing
//! callable); no certificate, or a revoked one, is UNAUTHENTICATED as for
//! any RPC. With TLS off it answers honestly: no identity, checks off,
//! every RPC of the server callable.

use tilewave_proto::auth::v1::auth_service_server::{AuthService, AuthServiceServer};
use tilewave_proto::auth::v1::{CallableRpc, WhoAmIRequest, WhoAmIResponse};

use crate::decide::{Caller, Peer};
use crate::identity::{Identity, Serial};
use crate::layer::{caller, peer_of};
use crate::role::RoleKind;
use crate::table::{AUTH, HEALTH, REFLECTION, TABLE};

/// The request path of `WhoAmI`.
pub const PATH: &str = "/tilewave.auth.v1.AuthService/WhoAmI";

/// The services every server hosts besides its own.
pub const ON_EVERY_SERVER: &[&str] = &[HEALTH, REFLECTION, AUTH];

/// What one server says about itself: its name, whether TLS and the role
/// check are on, and the tilewave services it hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// The binary's name (`tilewave-registry`).
    pub name: String,
    /// Whether it serves mutual TLS.
    pub tls: bool,
    /// Whether its role check is on.
    pub role_checks: bool,
    /// Its own services (`tilewave.registry.v1.RegistryService`), without
    /// those of [`ON_EVERY_SERVER`].
    pub services: Vec<&'static str>,
}

impl Server {
    /// Whether the server hosts `service`.
    fn hosts(&self, service: &str) -> bool {
        self.services.contains(&service) || ON_EVERY_SERVER.contains(&service)
    }

    /// The answer to a caller: `caller` as the role check established it
    /// (`None` with the check off), `certificate` the identity and serial
    /// of the peer's certificate, if it showed a readable one.
    pub fn answer(
        &self,
        caller: Option<&Caller>,
        certificate: Option<(&Identity, &Serial)>,
    ) -> WhoAmIResponse {
        let role = caller.map(|c| &c.role);
        let kind = role.map(crate::Role::kind);
        let rpcs = TABLE
            .iter()
            .filter(|r| self.hosts(r.service))
            // With the check off every call passes; with it on, the role's rows.
            .filter(|r| !self.role_checks || kind.is_some_and(|k| r.allows(k)))
            .map(|r| CallableRpc {
                rpc: r.rpc(),
                path: r.path(),
                own_tiles_only: kind == Some(RoleKind::Partner) && r.partner_own_tiles,
            })
            .collect();
        let identity = caller
            .map(|c| &c.identity)
            .or(certificate.map(|(i, _)| i))
            .map(ToString::to_string);
        WhoAmIResponse {
            identity: identity.unwrap_or_default(),
            role: role.map(ToString::to_string).unwrap_or_default(),
            certificate_serial: certificate.map(|(_, s)| s.to_string()).unwrap_or_default(),
            service: self.name.clone(),
            tls: self.tls,
            role_checks: self.role_checks,
            rpcs,
        }
    }
}

/// The gRPC service: [`Server::answer`] for the caller of each request.
#[derive(Debug, Clone)]
pub struct WhoAmI {
    server: std::sync::Arc<Server>,
}

impl WhoAmI {
    /// The service of `server`.
    pub fn new(server: Server) -> Self {
        Self {
            server: std::sync::Arc::new(server),
        }
    }

    /// The generated server around it (wrap it in `sized!`).
    pub fn into_server(self) -> AuthServiceServer<Self> {
        AuthServiceServer::new(self)
    }
}

#[tonic::async_trait]
impl AuthService for WhoAmI {
    async fn who_am_i(
        &self,
        request: tonic::Request<WhoAmIRequest>,
    ) -> Result<tonic::Response<WhoAmIResponse>, tonic::Status> {
        let extensions = request.extensions();
        let peer = peer_of(extensions);
        let certificate = match &peer {
            Peer::Certificate(c) => Some((&c.identity, &c.serial)),
            Peer::NoCertificate | Peer::Unreadable(_) => None,
        };
        Ok(tonic::Response::new(
            self.server.answer(caller(extensions), certificate),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::role::Role;
    use crate::table::{FAULTS, REGISTRY};

    fn server(role_checks: bool, services: &[&'static str]) -> Server {
        Server {
            name: "tilewave-registry".into(),
            tls: role_checks,
            role_checks,
            services: services.to_vec(),
        }
    }

    fn caller(name: &str, role: &str) -> Caller {
        Caller {
            identity: Identity::parse(name).unwrap(),
            role: role.parse::<Role>().unwrap(),
        }
    }

    fn rpcs(r: &WhoAmIResponse) -> Vec<&str> {
        r.rpcs.iter().map(|c| c.rpc.as_str()).collect()
    }

    #[test]
    fn a_viewer_sees_its_identity_and_only_the_reads_of_this_server() {
        let viv = caller("viv", "viewer");
        let serial: Serial = "0a1b".parse().unwrap();
        let r = server(true, &[REGISTRY]).answer(Some(&viv), Some((&viv.identity, &serial)));
        assert_eq!(
            (
                r.identity.as_str(),
                r.role.as_str(),
                r.certificate_serial.as_str()
            ),
            ("viv", "viewer", "a1b")
        );
        assert_eq!(r.service, "tilewave-registry");
        assert!(r.tls && r.role_checks);
        assert_eq!(
            rpcs(&r),
            [
                "RegistryService/GetTile",
                "RegistryService/ListTiles",
                "RegistryService/WatchTiles",
                "RegistryService/GetHistory",
                "AuthService/WhoAmI",
                "grpc.health.v1.Health/Check",
                "grpc.health.v1.Health/Watch",
                "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            ]
        );
        assert!(r.rpcs.iter().all(|c| !c.own_tiles_only), "{r:?}");
        assert_eq!(r.rpcs[0].path, "/tilewave.registry.v1.RegistryService/GetTile");
    }

    #[test]
    fn a_partner_s_tile_rows_are_marked_own_tiles_only() {
        let acme = caller("acme-bot", "partner:acme");
        let r = server(true, &[REGISTRY]).answer(Some(&acme), None);
        assert_eq!(r.role, "partner:acme");
        assert_eq!(r.certificate_serial, "");
        let own: Vec<(&str, bool)> = r
            .rpcs
            .iter()
            .map(|c| (c.rpc.as_str(), c.own_tiles_only))
            .collect();
        assert!(own.contains(&("RegistryService/RecordSignOff", true)), "{own:?}");
        assert!(own.contains(&("RegistryService/GetTile", true)), "{own:?}");
        assert!(own.contains(&("grpc.health.v1.Health/Check", false)), "{own:?}");
        assert!(own.contains(&("AuthService/WhoAmI", false)), "{own:?}");
        assert!(!own.iter().any(|(rpc, _)| *rpc == "RegistryService/CreateTile"));
    }

    #[test]
    fn a_service_on_an_agent_may_call_every_rpc_it_hosts_and_no_other_server_s() {
        let svc = caller("tilewave-rollout", "service");
        let agent = Server {
            name: "tilewave-agent".into(),
            tls: true,
            role_checks: true,
            services: vec![crate::table::AGENT],
        };
        let r = agent.answer(Some(&svc), None);
        // Its six, health (2), reflection and WhoAmI.
        assert_eq!(r.rpcs.len(), 10, "{:?}", rpcs(&r));
        assert!(rpcs(&r).iter().all(|p| !p.starts_with("FaultInjectionService/")));
        assert!(rpcs(&r).iter().all(|p| !p.starts_with("RegistryService/")));
        let with_faults = Server {
            services: vec![crate::table::AGENT, FAULTS],
            ..agent
        };
        assert!(rpcs(&with_faults.answer(Some(&svc), None)).contains(&"FaultInjectionService/FailNextCalls"));
        // A release engineer may call nothing of an agent's but the open rows.
        let ada = caller("ada", "release-engineer");
        assert_eq!(
            rpcs(&with_faults.answer(Some(&ada), None)),
            [
                "AuthService/WhoAmI",
                "grpc.health.v1.Health/Check",
                "grpc.health.v1.Health/Watch",
                "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            ]
        );
    }

    #[test]
    fn with_tls_off_there_is_no_identity_and_everything_is_callable() {
        let r = server(false, &[REGISTRY]).answer(None, None);
        assert_eq!((r.identity.as_str(), r.role.as_str()), ("", ""));
        assert!(!r.tls && !r.role_checks);
        let hosted = TABLE
            .iter()
            .filter(|t| t.service == REGISTRY || ON_EVERY_SERVER.contains(&t.service))
            .count();
        assert_eq!(r.rpcs.len(), hosted);
        assert!(rpcs(&r).contains(&"RegistryService/AdvanceLifecycle"));
        assert!(r.rpcs.iter().all(|c| !c.own_tiles_only));
    }

    #[test]
    fn an_identity_without_a_role_may_call_nothing() {
        // The layer lets such a certificate through to WhoAmI alone,
        // without a caller.
        let eve = Identity::parse("eve").unwrap();
        let serial: Serial = "0e".parse().unwrap();
        let r = server(true, &[REGISTRY]).answer(None, Some((&eve, &serial)));
        assert_eq!(
            (
                r.identity.as_str(),
                r.role.as_str(),
                r.certificate_serial.as_str()
            ),
            ("eve", "", "e")
        );
        assert!(r.role_checks && r.rpcs.is_empty(), "{r:?}");
        assert!(server(true, &[REGISTRY]).answer(None, None).rpcs.is_empty());
    }

    #[test]
    fn the_path_is_the_table_s() {
        let rule = crate::table::rule_for(PATH).expect("a row");
        assert_eq!(rule.service, AUTH);
        assert!(crate::RoleKind::ALL.iter().all(|k| rule.allows(*k)));
    }
}
