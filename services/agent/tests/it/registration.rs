//! Registration under `agents/<region>` on a lease.

use tilewave_proto::agent::v1::AgentInfo;
use tilewave_testkit::eventually;

use crate::*;

async fn registered(stack: &Stack) -> Result<Option<AgentInfo>> {
    let mut c = stack.etcd.client().await?;
    let resp = c.get(stack.agent_key()?, None).await?;
    Ok(match resp.kvs().first() {
        Some(kv) => Some(prost::Message::decode(kv.value())?),
        None => None,
    })
}

#[tokio::test]
async fn registers_and_the_key_expires_after_kill_9() -> Result<()> {
    let mut stack = Stack::start().await?;
    // SERVING is reported only after registration, so the key is there now.
    let info = registered(&stack)
        .await?
        .context("no registration after SERVING")?;
    assert_eq!(info.region, REGION);
    assert_eq!(info.cloud, "aws");
    assert_eq!(info.address, stack.agent.addr().to_string());
    assert!(info.started_at.is_some());
    assert!(!info.version.is_empty());

    stack.agent.kill()?;
    let gone = eventually("the registration to expire", WAIT, || async {
        match registered(&stack).await {
            Ok(None) => Ok(()),
            Ok(Some(_)) => Err(anyhow::anyhow!("still registered")),
            Err(e) => Err(e),
        }
    })
    .await;
    gone?;
    Ok(())
}

#[tokio::test]
async fn a_clean_shutdown_deregisters_at_once_and_a_restart_registers_again() -> Result<()> {
    let mut stack = Stack::start().await?;
    assert!(registered(&stack).await?.is_some());
    stack.agent.terminate(std::time::Duration::from_secs(10)).await?;
    // Revoked on the way out: gone without waiting for the TTL.
    assert!(
        registered(&stack).await?.is_none(),
        "the key outlived a clean shutdown"
    );
    stack.agent.restart().await?;
    assert!(registered(&stack).await?.is_some());
    Ok(())
}
