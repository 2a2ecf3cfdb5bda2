//! `eventually`: success after some tries, and a clear time-out message.

use std::time::Duration;

use tilewave_testkit::eventually;

#[tokio::test]
async fn returns_the_value_once_the_condition_holds() {
    let mut tries = 0;
    let v = eventually("the third try", Duration::from_secs(5), || {
        tries += 1;
        let t = tries;
        async move { (t >= 3).then_some(t) }
    })
    .await
    .unwrap();
    assert_eq!(v, 3);
}

#[tokio::test]
async fn times_out_naming_what_and_the_last_failure() {
    let start = tokio::time::Instant::now();
    let err = eventually("the moon to turn blue", Duration::from_millis(300), || async {
        Err::<(), _>(anyhow::anyhow!("still grey"))
    })
    .await
    .unwrap_err();
    let elapsed = start.elapsed();
    let msg = format!("{err:#}");
    assert!(msg.contains("timed out after 300ms"), "{msg}");
    assert!(msg.contains("the moon to turn blue"), "{msg}");
    assert!(msg.contains("last failure: still grey"), "{msg}");
    assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
}

#[tokio::test]
async fn a_hanging_try_is_cut_off_at_the_deadline() {
    let start = tokio::time::Instant::now();
    let err = eventually("a hanging call", Duration::from_millis(200), || async {
        std::future::pending::<Option<()>>().await
    })
    .await
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("still running at the deadline"),
        "{err:#}"
    );
    assert!(start.elapsed() < Duration::from_secs(2));
}
