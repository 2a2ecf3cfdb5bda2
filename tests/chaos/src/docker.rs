//! The compose project's containers, by the labels compose gives them
//! (the same for docker-compose 1.29 and `docker compose` v2), and the
//! faults: kill, stop and start, network disconnect and connect.

use anyhow::Context as _;
use tokio::process::Command;

/// Runs `docker ARGS` and returns its standard output, trimmed.
pub async fn docker(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("docker")
        .args(args)
        .output()
        .await
        .context("running docker")?;
    if !out.status.success() {
        anyhow::bail!(
            "docker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The compose project under test.
#[derive(Debug, Clone)]
pub struct Project {
    /// Its name (`-p`).
    pub name: String,
}

impl Project {
    /// The container id of a compose service (its one container).
    pub async fn container(&self, service: &str) -> anyhow::Result<String> {
        let id = docker(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label=com.docker.compose.project={}", self.name),
            "--filter",
            &format!("label=com.docker.compose.service={service}"),
        ])
        .await?;
        id.lines()
            .next()
            .map(str::to_owned)
            .with_context(|| format!("no container of {service} in project {}", self.name))
    }

    /// The project's network (the compose file's `tilewave`).
    pub async fn network(&self) -> anyhow::Result<String> {
        let name = docker(&[
            "network",
            "ls",
            "-q",
            "--filter",
            &format!("label=com.docker.compose.project={}", self.name),
            "--filter",
            "label=com.docker.compose.network=tilewave",
        ])
        .await?;
        name.lines()
            .next()
            .map(str::to_owned)
            .with_context(|| format!("no tilewave network in project {}", self.name))
    }

    /// SIGKILL to a service's container (no chance to clean up).
    pub async fn kill(&self, service: &str) -> anyhow::Result<()> {
        let id = self.container(service).await?;
        docker(&["kill", "--signal", "KILL", &id]).await.map(drop)
    }

    /// A graceful stop (SIGTERM, then SIGKILL after `grace_secs`).
    pub async fn stop(&self, service: &str, grace_secs: u32) -> anyhow::Result<()> {
        let id = self.container(service).await?;
        docker(&["stop", "-t", &grace_secs.to_string(), &id])
            .await
            .map(drop)
    }

    /// Starts a stopped or killed container again (a no-op when running).
    pub async fn start(&self, service: &str) -> anyhow::Result<()> {
        let id = self.container(service).await?;
        docker(&["start", &id]).await.map(drop)
    }

    /// Cuts a container off the project's network.
    pub async fn disconnect(&self, service: &str) -> anyhow::Result<()> {
        let (net, id) = (self.network().await?, self.container(service).await?);
        docker(&["network", "disconnect", "--force", &net, &id])
            .await
            .map(drop)
    }

    /// Connects it again, under its service name.
    pub async fn connect(&self, service: &str) -> anyhow::Result<()> {
        let (net, id) = (self.network().await?, self.container(service).await?);
        docker(&["network", "connect", "--alias", service, &net, &id])
            .await
            .map(drop)
    }

    /// The health docker reports for a service's container ("healthy",
    /// "starting", "unhealthy", or the state when it has no health check).
    pub async fn health(&self, service: &str) -> anyhow::Result<String> {
        let id = self.container(service).await?;
        docker(&[
            "inspect",
            "-f",
            "{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}",
            &id,
        ])
        .await
    }

    /// The container's log (standard output and error).
    pub async fn logs(&self, service: &str) -> anyhow::Result<String> {
        let id = self.container(service).await?;
        let out = Command::new("docker")
            .args(["logs", &id])
            .output()
            .await
            .context("running docker logs")?;
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        Ok(text)
    }
}
