//! What the server's benches share: the release server run as its own
//! process (so its memory is its own), its memory, a free port.

use std::{
    net::TcpListener,
    path::Path,
    process::{Child, Command, Stdio},
};

use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// The release server, run as its own process; killed when dropped.
pub(crate) struct ServerProcess(Child);

impl ServerProcess {
    /// Starts `command` (from [`server_command`], configured further),
    /// its standard output discarded.
    pub(crate) fn spawn(mut command: Command) -> Result<Self> {
        let child = command
            .stdout(Stdio::null())
            .spawn()
            .context("start p2pnet-server")?;
        Ok(Self(child))
    }

    /// Its process id.
    #[allow(dead_code)] // not every bench needs it
    pub(crate) fn id(&self) -> u32 {
        self.0.id()
    }

    /// Its resident memory, KiB.
    #[allow(dead_code)] // not every bench reports it
    pub(crate) fn rss_kib(&self) -> Result<u64> {
        self.status_kib("VmRSS:")
    }

    /// Its peak resident memory, KiB.
    #[allow(dead_code)] // not every bench reports it
    pub(crate) fn peak_rss_kib(&self) -> Result<u64> {
        self.status_kib("VmHWM:")
    }

    fn status_kib(&self, field: &str) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.0.id()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .with_context(|| format!("{field} in /proc/PID/status"))
    }

    /// Kills it and waits for it.
    pub(crate) fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The release server listening on `127.0.0.1:port` over `data`, logging
/// warnings only; the caller adds the environment it needs.
pub(crate) fn server_command(data: &Path, port: u16) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_p2pnet-server"));
    command
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(data)
        .args(["--log-filter", "warn"]);
    command
}

/// A loopback port nothing listens on now.
pub(crate) fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Logs in as `admin` (retrying while the server starts); the session
/// cookie.
#[allow(dead_code)] // not every bench logs in
pub(crate) async fn login(base: &str, password: &str) -> Result<String> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match client
            .post(format!("{base}/auth/login"))
            .form(&[("username", "admin"), ("password", password), ("next", "/")])
            .send()
            .await
        {
            Ok(r) => {
                let cookie = r
                    .headers()
                    .get("set-cookie")
                    .context("no session cookie")?
                    .to_str()?
                    .split(';')
                    .next()
                    .context("cookie")?
                    .to_owned();
                return Ok(cookie);
            }
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e).context("the server never answered"),
        }
    }
}
