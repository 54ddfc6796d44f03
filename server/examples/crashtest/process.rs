//! The server under test: a child process on fixed loopback ports, killed
//! with SIGKILL and started again on the same data.

use std::{
    fs::OpenOptions,
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

pub(crate) const PASSWORD: &str = "crash-test-admin-password";

pub(crate) struct ServerProcess {
    binary: PathBuf,
    work: PathBuf,
    database_url: String,
    http: SocketAddr,
    node: SocketAddr,
    child: Option<Child>,
}

/// A loopback port free now (the OS's choice), kept for every restart.
fn free_port() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

impl ServerProcess {
    pub(crate) fn new(binary: &Path, work: &Path, database_url: &str) -> anyhow::Result<Self> {
        Ok(Self {
            binary: binary.to_path_buf(),
            work: work.to_path_buf(),
            database_url: database_url.to_owned(),
            http: free_port()?,
            node: free_port()?,
            child: None,
        })
    }

    pub(crate) fn http_addr(&self) -> SocketAddr {
        self.http
    }

    pub(crate) fn node_addr(&self) -> SocketAddr {
        self.node
    }

    /// Starts the server and waits until `/healthz` answers.
    pub(crate) async fn start(&mut self) -> anyhow::Result<()> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.work.join("server.log"))?;
        let child = Command::new(&self.binary)
            .env("P2PNET_SERVER__LISTEN", format!("[\"{}\"]", self.http))
            .env("P2PNET_SERVER__DATA_DIR", self.work.join("data"))
            .env("P2PNET_SERVER__SITE_ROOT", self.work.join("site"))
            .env("P2PNET_DATABASE__URL", &self.database_url)
            .env("P2PNET_AUTH__ADMIN_PASSWORD", PASSWORD)
            .env("P2PNET_NODE__LISTEN", self.node.to_string())
            .env("P2PNET_NODE__DISCOVERY__ENABLED", "false")
            .env("P2PNET_BOOTSTRAP__MODE", "authority")
            .env(
                "P2PNET_BOOTSTRAP__PASSPHRASE",
                "crash-test-authority-passphrase",
            )
            .env("P2PNET_BOOTSTRAP__ANNOUNCES_PER_MINUTE", "1000000")
            .env("P2PNET_WIDESCAN__TEST_MODE", "true")
            .env("P2PNET_LOG__FILTER", "warn")
            .env("NODEVICE_SELECT", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        self.child = Some(child);
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = format!("http://{}/healthz", self.http);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!(
                    "the server exited at start ({status}); see {}",
                    self.work.join("server.log").display()
                );
            }
            if let Ok(r) = client.get(&url).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the server did not answer /healthz within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL, and the exit reaped.
    pub(crate) fn kill(&mut self) -> anyhow::Result<()> {
        let mut child = self.child.take().context("no server running")?;
        child.kill()?;
        child.wait()?;
        Ok(())
    }

    /// A graceful stop (SIGTERM), for the end of the run.
    pub(crate) async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status()?;
            for _ in 0..200 {
                if child.try_wait()?.is_some() {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            child.kill()?;
            child.wait()?;
            bail!("the server did not stop within 10 s of SIGTERM");
        }
        Ok(())
    }
}

impl Drop for ServerProcess {
    /// A run that fails midway leaves no server behind.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
