//! The connection cap and the idle bound at process level: a registry
//! started with `TILEWAVE_MAX_CONNECTIONS=3` holds a gRPC client and two
//! silent connections, closes the fourth at once (and logs it), keeps
//! answering the client, and lets a new client in once a connection goes;
//! one started with `TILEWAVE_CONNECTION_IDLE_SECS=1` closes a connection
//! that sends nothing and still answers.

use std::net::SocketAddr;
use std::time::Duration;

use tilewave_proto::registry::v1::ListTilesRequest;
use tilewave_proto::registry::v1::registry_service_client::RegistryServiceClient;
use tilewave_testkit::{EtcdCluster, ServiceProcess, ServiceSpec, TestDir, bin_path, eventually};
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpStream;
use tonic::transport::{Channel, Endpoint};

use crate::PREFIX;

/// A registry with `env` set, on a fresh etcd.
async fn registry(name: &str, env: &[(&str, &str)]) -> (ServiceProcess, EtcdCluster, TestDir) {
    let dir = TestDir::new(name).unwrap();
    let etcd = EtcdCluster::start_insecure(1).await.unwrap();
    let mut spec = ServiceSpec::new(name, bin_path("tilewave-registry").unwrap())
        .with_args(["--etcd", &etcd.endpoints().join(","), "--prefix", PREFIX])
        .with_health_service(Some(tilewave_registry::HEALTH_SERVICE))
        // What is counted is TCP connections: plaintext keeps the test to that.
        .insecure();
    for (k, v) in env {
        spec = spec.with_env(*k, *v);
    }
    (ServiceProcess::start(spec, dir.path()).await.unwrap(), etcd, dir)
}

/// Whether the server closed `conn`: reading (past the server's HTTP/2
/// settings, if it sent them) sees the end or an error within `within`;
/// `false` when it is still open then.
async fn closed_within(conn: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0_u8; 256];
    let until_closed = async {
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(within, until_closed).await.is_ok()
}

/// A connection the server holds (still open after a moment), retried
/// while earlier connections (the start-up health checks') are closing.
async fn held(addr: SocketAddr) -> TcpStream {
    eventually("a connection is held", Duration::from_secs(20), || async move {
        let mut c = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        if closed_within(&mut c, Duration::from_millis(300)).await {
            Err("closed at once".to_owned())
        } else {
            Ok(c)
        }
    })
    .await
    .unwrap()
}

/// A client on a connection of its own that has answered a call.
async fn answering(addr: SocketAddr) -> RegistryServiceClient<Channel> {
    eventually(
        "a new client is answered",
        Duration::from_secs(20),
        || async move {
            let channel = Endpoint::from_shared(format!("http://{addr}"))
                .map_err(|e| e.to_string())?
                .timeout(Duration::from_secs(3))
                .connect()
                .await
                .map_err(|e| format!("{e:?}"))?;
            let mut client = RegistryServiceClient::new(channel);
            client
                .list_tiles(ListTilesRequest::default())
                .await
                .map_err(|e| format!("{e:?}"))?;
            Ok::<_, String>(client)
        },
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_cap_a_connection_is_closed_at_once_and_a_freed_one_lets_the_next_in() {
    let (registry, _etcd, _dir) = registry("registry-conn-cap", &[("TILEWAVE_MAX_CONNECTIONS", "3")]).await;
    let addr = registry.addr();

    // Three held: a client and two silent connections.
    let mut client = answering(addr).await;
    let first = held(addr).await;
    let _second = held(addr).await;

    // The fourth is closed at once, again and again.
    for _ in 0..3 {
        let mut over = TcpStream::connect(addr).await.unwrap();
        assert!(
            closed_within(&mut over, Duration::from_secs(5)).await,
            "a connection over the cap is closed"
        );
    }
    // A new gRPC client cannot get in either.
    let refused = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .timeout(Duration::from_secs(3))
        .connect_lazy();
    let err = RegistryServiceClient::new(refused)
        .list_tiles(ListTilesRequest::default())
        .await
        .expect_err("over the cap");
    // Closed before or just after its HTTP/2 handshake: a transport error
    // (UNAVAILABLE, CANCELLED or UNKNOWN as the client reads the reset),
    // never an answer of the server's.
    assert!(
        matches!(
            err.code(),
            tonic::Code::Unavailable | tonic::Code::Cancelled | tonic::Code::Unknown
        ) && std::error::Error::source(&err).is_some(),
        "{err:?}"
    );

    // The client it holds still answers.
    client.list_tiles(ListTilesRequest::default()).await.unwrap();

    // A freed connection lets the next one in.
    drop(first);
    let mut next = answering(addr).await;
    next.list_tiles(ListTilesRequest::default()).await.unwrap();
    client.list_tiles(ListTilesRequest::default()).await.unwrap();

    let log = std::fs::read_to_string(registry.log_path()).unwrap();
    assert!(
        log.contains("closed a new connection: the server holds as many as it may")
            && log.contains("TILEWAVE_MAX_CONNECTIONS"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_sends_nothing_is_closed_after_the_idle_bound() {
    let (registry, _etcd, _dir) =
        registry("registry-conn-idle", &[("TILEWAVE_CONNECTION_IDLE_SECS", "1")]).await;
    let addr = registry.addr();
    let mut silent = TcpStream::connect(addr).await.unwrap();
    assert!(
        closed_within(&mut silent, Duration::from_secs(10)).await,
        "closed within twice the bound (and some)"
    );
    let mut client = answering(addr).await;
    client.list_tiles(ListTilesRequest::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_limit_stops_the_start_naming_the_variable() {
    let dir = TestDir::new("registry-conn-bad").unwrap();
    let etcd = EtcdCluster::start_insecure(1).await.unwrap();
    let spec = ServiceSpec::new("registry-conn-bad", bin_path("tilewave-registry").unwrap())
        .with_args(["--etcd", &etcd.endpoints().join(","), "--prefix", PREFIX])
        .with_env("TILEWAVE_MAX_CONNECTIONS", "0")
        .with_health_service(Some(tilewave_registry::HEALTH_SERVICE));
    let Err(err) = ServiceProcess::start(spec, dir.path()).await else {
        panic!("a cap of 0 must stop the start");
    };
    let text = format!("{err:#}");
    assert!(
        text.contains("TILEWAVE_MAX_CONNECTIONS=\"0\"") && text.contains("at least 1"),
        "{text}"
    );
}
