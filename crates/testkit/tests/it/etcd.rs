//! Real etcd: one member, three members with a member killed and restarted,
//! SIGSTOP/SIGCONT, and clean-up on drop.

use std::time::Duration;

use etcd_client::{Client, GetOptions};
use tilewave_testkit::{EtcdCluster, MemberState, eventually, member_health, member_health_with};

/// The value of `key` read from member `i`'s own state (serializable read:
/// no quorum round, so it shows what that member has applied).
async fn local_value(cluster: &EtcdCluster, i: usize, key: &str) -> anyhow::Result<Option<String>> {
    let mut c = cluster.member_client(i).await?;
    let resp = c.get(key, Some(GetOptions::new().with_serializable())).await?;
    Ok(resp.kvs().first().map(|kv| kv.value_str().unwrap().to_owned()))
}

/// Puts through a client on the given endpoints, retried until it succeeds
/// (a put may fail while leadership moves).
async fn put(cluster: &EtcdCluster, endpoints: Vec<String>, key: &str, value: &str) {
    eventually(&format!("put {key}"), Duration::from_secs(15), || {
        let endpoints = endpoints.clone();
        async move {
            let mut c = Client::connect(endpoints, Some(cluster.connect_options())).await?;
            c.put(key, value, None).await?;
            anyhow::Ok(())
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn one_member_starts_and_serves_put_and_get() {
    let cluster = EtcdCluster::start(1).await.unwrap();
    assert_eq!(cluster.endpoints(), vec![cluster.member_endpoint(0)]);
    assert!(cluster.member_endpoint(0).starts_with("https://127.0.0.1:"));
    let mut c = cluster.client().await.unwrap();
    c.put("k", "v", None).await.unwrap();
    let resp = c.get("k", None).await.unwrap();
    assert_eq!(resp.kvs()[0].value_str().unwrap(), "v");
    assert!(cluster.dir().join("m0.log").is_file());
    assert!(cluster.dir().join("m0.etcd").is_dir());
}

#[tokio::test]
async fn a_killed_member_rejoins_and_serves_the_writes_it_missed() {
    let mut cluster = EtcdCluster::start(3).await.unwrap();
    put(&cluster, cluster.endpoints(), "before", "1").await;

    cluster.kill(1).unwrap();
    assert_eq!(cluster.member_state(1), Some(MemberState::Killed));
    assert_eq!(cluster.member_pid(1), None);
    // The two others still form a quorum and accept writes.
    let live = cluster.running_endpoints();
    assert_eq!(live.len(), 2);
    for i in 0..20 {
        put(&cluster, live.clone(), &format!("missed/{i}"), &i.to_string()).await;
    }

    cluster.restart(1).await.unwrap();
    assert_eq!(cluster.member_state(1), Some(MemberState::Running));
    // Linearizable read through member 1 ...
    let mut c = cluster.member_client(1).await.unwrap();
    let resp = c.get("missed/19", None).await.unwrap();
    assert_eq!(resp.kvs()[0].value_str().unwrap(), "19");
    // ... and its own applied state holds everything it missed.
    for i in [0, 10, 19] {
        let key = format!("missed/{i}");
        let v = eventually("member 1 to catch up", Duration::from_secs(10), || async {
            local_value(&cluster, 1, &key)
                .await
                .map(|v| v.filter(|v| *v == i.to_string()))
        })
        .await
        .unwrap();
        assert_eq!(v.unwrap(), i.to_string());
    }
    let log = crate::read_log(&cluster.member_log(1).unwrap());
    assert!(
        log.contains("--initial-cluster-state=existing"),
        "restart flags not in the log"
    );
    cluster.wait_healthy(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test]
async fn a_stopped_member_answers_nothing_and_catches_up_after_cont() {
    let cluster = EtcdCluster::start(3).await.unwrap();
    cluster.stop(2).unwrap();
    assert_eq!(cluster.member_state(2), Some(MemberState::Stopped));
    let err = member_health_with(&cluster.member_endpoint(2), cluster.client_tls())
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains(&cluster.member_endpoint(2)),
        "{err:#}"
    );
    // The others keep serving, and wait_healthy ignores the stopped member.
    put(&cluster, cluster.running_endpoints(), "while-stopped", "yes").await;
    cluster.wait_healthy(Duration::from_secs(10)).await.unwrap();

    cluster.cont(2).unwrap();
    cluster.wait_healthy(Duration::from_secs(15)).await.unwrap();
    eventually("member 2 to apply the write", Duration::from_secs(10), || {
        local_value(&cluster, 2, "while-stopped")
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn drop_ends_the_members_and_removes_the_directory() {
    let cluster = EtcdCluster::start(1).await.unwrap();
    let pid = cluster.member_pid(0).unwrap();
    let dir = cluster.dir().to_path_buf();
    assert!(crate::pid_exists(pid));
    drop(cluster);
    assert!(!crate::pid_exists(pid), "etcd pid {pid} still exists after drop");
    assert!(!dir.exists(), "{} not removed", dir.display());
}

/// With TLS the members serve `https://`, the kit's clients present a
/// certificate, and a client without one is refused.
#[tokio::test]
async fn a_tls_cluster_serves_only_clients_with_a_certificate_of_its_ca() {
    let pki = tilewave_testkit::Pki::shared().unwrap();
    let cluster = EtcdCluster::start(1).await.unwrap();
    assert_eq!(cluster.tls_files(), Some(&pki.files("etcd")));
    let url = cluster.member_endpoint(0);
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let mut c = cluster.client().await.unwrap();
    c.put("tls-k", "v", None).await.unwrap();
    assert_eq!(cluster.dump("tls-").await.unwrap()["tls-k"].0, b"v");
    member_health_with(&url, cluster.client_tls()).await.unwrap();
    // Trusting the CA but presenting no certificate: refused.
    let ca = tonic::transport::Certificate::from_pem(std::fs::read(pki.ca_cert()).unwrap());
    let opts = etcd_client::ConnectOptions::new()
        .with_tls(tonic::transport::ClientTlsConfig::new().ca_certificate(ca))
        .with_connect_timeout(Duration::from_secs(2))
        .with_timeout(Duration::from_secs(2));
    let refused = match Client::connect([url.as_str()], Some(opts)).await {
        Ok(mut c) => c.get("tls-k", None).await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(refused.is_err(), "etcd answered a client without a certificate");
    // A plaintext client is refused too.
    assert!(member_health(&url.replace("https://", "http://")).await.is_err());
}

/// `start_insecure`: plaintext client URLs, no certificates.
#[tokio::test]
async fn an_insecure_cluster_serves_plaintext() {
    let cluster = EtcdCluster::start_insecure(1).await.unwrap();
    let url = cluster.member_endpoint(0);
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(cluster.client_tls().is_none());
    member_health(&url).await.unwrap();
    let mut c = cluster.client().await.unwrap();
    c.put("k", "v", None).await.unwrap();
}
