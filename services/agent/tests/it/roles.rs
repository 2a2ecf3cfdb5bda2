//! The agent with TLS and the test PKI's access policy answers only the
//! `service` role: a release engineer's and a viewer's certificates are
//! refused PERMISSION_DENIED on AgentService and FaultInjectionService, an
//! identity without a role UNAUTHENTICATED, and the rollout service's
//! certificate is served.

use tilewave_proto::agent::v1::agent_service_client::AgentServiceClient;
use tilewave_proto::agent::v1::fault_injection_service_client::FaultInjectionServiceClient;
use tilewave_proto::agent::v1::{GetFaultsRequest, ListTilesRequest};
use tilewave_testkit::pki::{NO_ROLE, RELEASE_ENGINEER, VIEWER};

use crate::{CALLER, Stack};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_answers_only_the_service_role() {
    let stack = Stack::start().await.unwrap();
    assert!(stack.agent.endpoint().starts_with("https://"));
    stack
        .client()
        .await
        .unwrap()
        .list_tiles(ListTilesRequest::default())
        .await
        .unwrap();
    stack
        .faults()
        .await
        .unwrap()
        .get_faults(GetFaultsRequest::default())
        .await
        .unwrap();
    assert_eq!(CALLER, "rollout");

    for (who, code) in [
        (RELEASE_ENGINEER, tonic::Code::PermissionDenied),
        (VIEWER, tonic::Code::PermissionDenied),
        (NO_ROLE, tonic::Code::Unauthenticated),
    ] {
        let channel = stack.channel(who).await.unwrap();
        let status = AgentServiceClient::new(channel.clone())
            .list_tiles(ListTilesRequest::default())
            .await
            .expect_err("refused");
        assert_eq!(status.code(), code, "{who}: {status:?}");
        let status = FaultInjectionServiceClient::new(channel)
            .get_faults(GetFaultsRequest::default())
            .await
            .expect_err("refused");
        assert_eq!(status.code(), code, "{who}: {status:?}");
    }
}
