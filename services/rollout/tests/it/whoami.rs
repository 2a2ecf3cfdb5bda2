//! `AuthService/WhoAmI` on every server of a plaintext stack: the rollout
//! service names itself and lists its own and the clock's RPCs, the agent
//! (fault injection on) its own and the fault injection's, the registry
//! its own; none has an identity or a role check, so every RPC it hosts
//! is listed, and none another server's.

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
        (
            stack.rollouts[0].endpoint(),
            "tilewave-rollout",
            vec![ROLLOUT, CLOCK],
        ),
        (
            stack.agents[region].endpoint(),
            "tilewave-agent",
            vec![AGENT, FAULTS],
        ),
        (stack.registry.endpoint(), "tilewave-registry", vec![REGISTRY]),
    ];
    for (endpoint, name, hosted) in servers {
        let mut client = connect(name, &endpoint, AuthServiceClient::connect).await?;
        let answer = client.who_am_i(WhoAmIRequest {}).await?.into_inner();
        assert_eq!(answer.service, name);
        assert_eq!((answer.tls, answer.role_checks), (false, false), "{name}");
        assert_eq!(
            (
                answer.identity.as_str(),
                answer.role.as_str(),
                answer.certificate_serial.as_str()
            ),
            ("", "", ""),
            "{name}"
        );
        let listed: Vec<String> = answer.rpcs.iter().map(|r| r.path.clone()).collect();
        let want: Vec<String> = TABLE
            .iter()
            .filter(|r| hosted.contains(&r.service) || ON_EVERY_SERVER.contains(&r.service))
            .map(|r| r.path())
            .collect();
        assert_eq!(listed, want, "{name}");
        assert!(answer.rpcs.iter().all(|r| !r.own_tiles_only), "{name}");
    }
    Ok(())
}
