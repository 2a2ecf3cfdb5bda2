//! `AuthService/WhoAmI` on every server of the (TLS) stack, asked by a
//! release engineer: the rollout service names itself and lists the RPCs of
//! its own and the clock's that a release engineer may call, the agent
//! (fault injection on) only the rows open to everyone (it serves the
//! `service` role alone), the registry its own; none lists another
//! server's.

use tilewave_auth::RoleKind;
use tilewave_auth::table::{AGENT, CLOCK, FAULTS, REGISTRY, ROLLOUT, TABLE};
use tilewave_auth::whoami::ON_EVERY_SERVER;
use tilewave_proto::auth::v1::WhoAmIRequest;
use tilewave_proto::auth::v1::auth_service_client::AuthServiceClient;

use crate::*;

#[tokio::test]
async fn every_server_answers_whoami_with_the_rpcs_it_hosts() -> anyhow::Result<()> {
    let stack = Stack::start(1).await?;
    let region = REGIONS[0];
    let servers = [
        (&stack.rollouts[0], "tilewave-rollout", vec![ROLLOUT, CLOCK]),
        (&stack.agents[region], "tilewave-agent", vec![AGENT, FAULTS]),
        (&stack.registry, "tilewave-registry", vec![REGISTRY]),
    ];
    for (process, name, hosted) in servers {
        let mut client = AuthServiceClient::new(connect(name, process, RELEASE_ENGINEER).await?);
        let answer = client.who_am_i(WhoAmIRequest {}).await?.into_inner();
        assert_eq!(answer.service, name);
        assert_eq!((answer.tls, answer.role_checks), (true, true), "{name}");
        assert!(!answer.certificate_serial.is_empty(), "{name}");
        assert_eq!(
            (
                answer.identity.as_str(),
                answer.role.as_str(),
                answer.certificate_serial.as_str()
            ),
            (
                RELEASE_ENGINEER,
                "release-engineer",
                answer.certificate_serial.as_str()
            ),
            "{name}"
        );
        let listed: Vec<String> = answer.rpcs.iter().map(|r| r.path.clone()).collect();
        let want: Vec<String> = TABLE
            .iter()
            .filter(|r| hosted.contains(&r.service) || ON_EVERY_SERVER.contains(&r.service))
            .filter(|r| r.allows(RoleKind::ReleaseEngineer))
            .map(|r| r.path())
            .collect();
        assert_eq!(listed, want, "{name}");
        assert!(answer.rpcs.iter().all(|r| !r.own_tiles_only), "{name}");
    }
    Ok(())
}
