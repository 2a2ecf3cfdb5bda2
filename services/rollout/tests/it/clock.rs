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

/// The virtual clock refuses to move past 2200 (the audit log keys records
/// by i64 nanoseconds, which end in 2262) or to run faster than a million
/// times real time, naming the field and writing nothing; the random-input
/// test found that a clock set to 9999 made every later audited write
/// fail.
#[tokio::test]
async fn the_virtual_clock_stays_within_what_the_audit_log_can_record() -> anyhow::Result<()> {
    let stack = Stack::start(1).await?;
    let mut clock = stack.clock(0).await?;
    let before = stack.dump().await?;
    let reading = |c: &mut ClockServiceClient<tonic::transport::Channel>| {
        let mut c = c.clone();
        async move {
            let r = c.get_time(GetTimeRequest {}).await?.into_inner().clock;
            let r = r.context("a reading")?;
            anyhow::Ok((r.now, r.etag, r.rate.to_bits()))
        }
    };
    let clock_before = reading(&mut clock).await?;
    let year = |y: i16| -> anyhow::Result<prost_types::Timestamp> {
        let t: Timestamp = jiff::civil::date(y, 1, 1)
            .at(0, 0, 0, 0)
            .to_zoned(jiff::tz::TimeZone::UTC)?
            .timestamp();
        Ok(ts(t))
    };
    let refusals = [
        clock
            .set(SetRequest {
                to: Some(year(2300)?),
            })
            .await
            .map(|_| ()),
        clock
            .set(SetRequest {
                to: Some(year(9999)?),
            })
            .await
            .map(|_| ()),
        clock
            .advance(AdvanceRequest {
                by: Some(dur(SignedDuration::from_hours(24 * 366 * 300))),
            })
            .await
            .map(|_| ()),
        clock.set_rate(SetRateRequest { rate: 1e7 }).await.map(|_| ()),
    ];
    for (answer, field) in refusals.into_iter().zip(["to", "to", "by", "rate"]) {
        let status = answer.expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().starts_with(&format!("{field}: ")), "{status:?}");
    }
    assert_eq!(stack.dump().await?, before, "the refusals wrote nothing");
    assert_eq!(reading(&mut clock).await?, clock_before, "nor moved the clock");
    // Within the bounds it moves.
    clock
        .set(SetRequest {
            to: Some(year(2199)?),
        })
        .await?;
    clock.set_rate(SetRateRequest { rate: 1e6 }).await?;
    clock.set_rate(SetRateRequest { rate: 0.0 }).await?;
    Ok(())
}
