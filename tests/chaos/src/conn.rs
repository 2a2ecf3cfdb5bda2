//! Channels to the compose cluster from the host: two published replicas
//! per service, tried in turn while containers are being killed.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use tilewave_tls::Tls;
use tonic::transport::Channel;
use tonic::{Code, Status};

/// How long one logical call keeps trying replicas through restarts.
pub const CALL_DEADLINE: Duration = Duration::from_secs(90);

/// The channels of one service: replica 1, replica 2.
#[derive(Debug, Clone)]
pub struct Replicas {
    /// What the service is called in messages.
    pub name: &'static str,
    channels: Vec<Channel>,
}

impl Replicas {
    /// Lazy channels to each `127.0.0.1:PORT`, with `tls`.
    pub fn new(name: &'static str, ports: &[u16], tls: &Tls) -> anyhow::Result<Self> {
        let channels = ports
            .iter()
            .map(|p| {
                Ok(tilewave_tls::endpoint(&format!("127.0.0.1:{p}"), Some(tls))?
                    .connect_timeout(Duration::from_secs(2))
                    .timeout(Duration::from_secs(10))
                    .connect_lazy())
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self { name, channels })
    }

    /// Calls `f` with a channel, trying the replicas in turn on an answer
    /// that says "not reached" (a killed or restarting container), until
    /// [`CALL_DEADLINE`]. Other answers are returned as they are.
    pub async fn call<T, F, Fut>(&self, what: &str, mut f: F) -> Result<T, Status>
    where
        F: FnMut(Channel) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let mut tries = 0usize;
        let mut waited = Duration::ZERO;
        loop {
            let channel = self.channels[tries % self.channels.len()].clone();
            tries += 1;
            match f(channel).await {
                Err(s) if transient(&s) && waited < CALL_DEADLINE => {
                    let pause = Duration::from_millis(200);
                    tokio::time::sleep(pause).await;
                    waited += pause;
                    if tries.is_multiple_of(20) {
                        eprintln!("chaos: {} {what}: still retrying ({})", self.name, s.message());
                    }
                }
                other => return other,
            }
        }
    }
}

/// A status that says the server was not reached or went away mid-call.
pub fn transient(s: &Status) -> bool {
    matches!(
        s.code(),
        Code::Unavailable | Code::DeadlineExceeded | Code::Unknown | Code::Cancelled | Code::Internal
    ) && !s.message().contains("injected")
}

/// The TLS settings of one certificate in `dir` (`NAME.crt`, `NAME.key`,
/// `ca.crt`).
pub fn tls_of(dir: &Path, name: &str) -> anyhow::Result<Tls> {
    Tls::from_files(
        &dir.join(format!("{name}.crt")),
        &dir.join(format!("{name}.key")),
        &dir.join("ca.crt"),
    )
    .with_context(|| format!("the certificate {name} in {}", dir.display()))
}

/// Sends an HTTP request to a test double's admin API and reads its JSON
/// answer (a non-2xx answer is an error).
pub async fn json(request: reqwest::RequestBuilder) -> anyhow::Result<serde_json::Value> {
    let answer = request.send().await?.error_for_status()?.text().await?;
    answer.parse().context("the double's answer is not JSON")
}
