//! Without `--virtual-clock-start` and without a virtual clock in etcd the
//! rollout service runs on the system clock: GetTime says so, and Advance,
//! Set and SetRate are refused, writing nothing. Needs only etcd and one
//! replica.

use anyhow::Context as _;
use jiff::{SignedDuration, Timestamp};
use tilewave_proto::clock::v1::clock_service_client::ClockServiceClient;
use tilewave_proto::clock::v1::{AdvanceRequest, GetTimeRequest, SetRateRequest, SetRequest};
use tilewave_testkit::{EtcdCluster, ServiceProcess, ServiceSpec, TestDir, bin_path};
use tonic::Code;

use crate::*;

#[tokio::test]
async fn the_clock_service_refuses_changes_under_the_system_clock() -> anyhow::Result<()> {
    let dir = TestDir::new("rollout-it-clock")?;
    let etcd = EtcdCluster::start(1).await?;
    let replica = ServiceProcess::start(
        ServiceSpec::new("rollout-system-clock", bin_path("tilewave-rollout")?)
            .with_args([
                "--etcd",
                &etcd.endpoints().join(","),
                "--prefix",
                PREFIX,
                // Never called: the registry client connects lazily.
                "--registry",
                "http://127.0.0.1:9",
                "--lease-ttl-ms",
                "3000",
            ])
            .with_health_service(Some(tilewave_rollout::HEALTH_SERVICE)),
        dir.path(),
    )
    .await?;
    let mut clock = ClockServiceClient::new(connect("the clock", &replica, RELEASE_ENGINEER).await?);

    let reading = clock
        .get_time(GetTimeRequest {})
        .await?
        .into_inner()
        .clock
        .context("clock")?;
    assert!(!reading.virtual_clock, "{reading:?}");
    let now = from_ts(&reading.now);
    // Comparing with the system clock is the point here.
    #[allow(clippy::disallowed_methods)]
    let off = now.duration_since(Timestamp::now()).abs();
    assert!(
        off < SignedDuration::from_secs(60),
        "system time {now} is {off:#} off"
    );

    let refusals = [
        clock
            .advance(AdvanceRequest {
                by: Some(dur(SignedDuration::from_hours(1))),
            })
            .await
            .map(|_| ()),
        clock
            .set(SetRequest {
                to: Some(ts(now + SignedDuration::from_hours(24))),
            })
            .await
            .map(|_| ()),
        clock.set_rate(SetRateRequest { rate: 10.0 }).await.map(|_| ()),
    ];
    for r in refusals {
        let e = r.expect_err("a change under the system clock");
        assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
        assert!(e.message().contains("system clock"), "{}", e.message());
    }
    let mut c = etcd.client().await?;
    let clock_key = tilewave_store::Keys::new(PREFIX)?.clock();
    let stored = c.get(clock_key.as_str(), None).await?;
    assert!(stored.kvs().is_empty(), "a refused change wrote {clock_key}");
    Ok(())
}
