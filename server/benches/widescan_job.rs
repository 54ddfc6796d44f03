//! A scan job in the server sends as fast as the same scan run by the
//! widescan CLI: the live feed, the stored checkpoints and findings must
//! not slow the pipeline (issue 12: at least 0.95 of the CLI's rate).
//!
//! Both run in a network namespace this bench creates and deletes
//! (`netns_lab::Blackhole`, as the widescan crate's `send` bench): a test
//! prefix routed to a bridge with no ports, so every probe crosses the
//! kernel's whole send path and is then freed; nothing leaves it. Same prefix, seed, rate
//! (unlimited in practice), CPU generation and kernel transport; each
//! rate is probes sent over the time spent sending, alternated over
//! several rounds. Needs root; skipped otherwise.
//!
//! `sudo cargo bench -p server --bench widescan_job`

mod common;

use std::{
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use common::{ServerProcess, free_port, server_command};

const PASSWORD: &str = "widescan-bench-password";
/// 2^23 addresses: several seconds of sending on a small machine.
const PREFIX: &str = "fd00:5ca7:99::/105";
const RATE: &str = "10000000";
const ROUNDS: usize = 3;

fn main() -> Result<()> {
    if !nix_is_root() {
        eprintln!("SKIPPED widescan_job: needs root for a network namespace");
        return Ok(());
    }
    let cli = build_cli()?;
    let lab = netns_lab::Blackhole::new(&format!("wsjob{}", std::process::id()));
    // This thread (and the runtime's, spawned from it) talks to the server
    // in the namespace.
    netns_lab::enter(lab.name());
    let runtime = tokio::runtime::Runtime::new()?;
    let mut cli_rates = Vec::new();
    let mut job_rates = Vec::new();
    println!("scan of {PREFIX} (8,388,608 probes), CPU generation, kernel transport");
    println!(
        "{:>5} {:>14} {:>14} {:>7}",
        "round", "CLI probes/s", "job probes/s", "ratio"
    );
    for round in 1..=ROUNDS {
        let cli_rate = run_cli(&cli, lab.name())?;
        let job_rate = runtime.block_on(run_job(lab.name()))?;
        println!(
            "{round:>5} {cli_rate:>14} {job_rate:>14} {:>7.3}",
            job_rate as f64 / cli_rate as f64
        );
        cli_rates.push(cli_rate);
        job_rates.push(job_rate);
    }
    cli_rates.sort_unstable();
    job_rates.sort_unstable();
    let (cli, job) = (cli_rates[ROUNDS / 2], job_rates[ROUNDS / 2]);
    println!(
        "median {cli:>13} {job:>14} {:>7.3}  (target: job ≥ 0.95 × CLI)",
        job as f64 / cli as f64
    );
    Ok(())
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|ids| ids.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// The release widescan CLI, built beside the server.
fn build_cli() -> Result<std::path::PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "-p",
            "widescan",
            "--bin",
            "widescan",
            "--locked",
        ])
        .status()?;
    if !status.success() {
        bail!("cannot build the widescan CLI");
    }
    let server = std::path::Path::new(env!("CARGO_BIN_EXE_p2pnet-server"));
    Ok(server.with_file_name("widescan"))
}

/// The CLI's rate: probes sent over its time sending, as it reports them.
fn run_cli(cli: &std::path::Path, ns: &str) -> Result<u64> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(cli)
        .args([
            "scan",
            "--test-mode",
            "-p",
            PREFIX,
            "--port",
            "4000",
            "--rate",
            RATE,
        ])
        .args([
            "--per-subnet-rate",
            "0",
            "--hardware",
            "cpu",
            "--cooldown",
            "0",
        ])
        .args(["--seed", "1", "--output", "/dev/null"])
        .env("NODEVICE_SELECT", "1")
        .output()?;
    let text = String::from_utf8_lossy(&out.stderr);
    // "widescan: sent N (F failed) in S.Ss, …"
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("widescan: sent "))
        .with_context(|| format!("no summary from the CLI: {text}"))?;
    let sent: u64 = line.split_whitespace().next().context("sent")?.parse()?;
    let secs: f64 = line
        .split(" in ")
        .nth(1)
        .and_then(|r| r.split('s').next())
        .context("time")?
        .parse()?;
    Ok((sent as f64 / secs) as u64)
}

/// A server job's rate: probes sent over its stored time sending.
async fn run_job(ns: &str) -> Result<u64> {
    let data = tempfile::tempdir()?;
    let port = free_port()?;
    let mut command = Command::new("ip");
    command
        .args(["netns", "exec", ns])
        .arg(server_command(data.path(), port).get_program());
    command.args(server_command(data.path(), port).get_args());
    command
        .env("P2PNET_AUTH__ADMIN_PASSWORD", PASSWORD)
        .env("P2PNET_NODE__LISTEN", "127.0.0.1:0")
        .env("P2PNET_NODE__DISCOVERY__ENABLED", "false")
        .env("P2PNET_WIDESCAN__TEST_MODE", "true")
        .env("P2PNET_WIDESCAN__MAX_RATE", RATE)
        .env("P2PNET_WIDESCAN__COOLDOWN_SECS", "0");
    let _server = ServerProcess::spawn(command)?;
    let base = format!("http://127.0.0.1:{port}");
    let cookie = common::login(&base, PASSWORD).await?;
    let page = reqwest::Client::new()
        .get(format!("{base}/"))
        .header("cookie", &cookie)
        .send()
        .await?
        .text()
        .await?;
    let csrf = page
        .split("name=\"csrf-token\" content=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .context("csrf token")?
        .to_owned();
    let terminal = |line: String| {
        let (base, cookie, csrf) = (base.clone(), cookie.clone(), csrf.clone());
        async move {
            let body: serde_json::Value = reqwest::Client::new()
                .post(format!("{base}/api/parser/input"))
                .header("cookie", cookie)
                .header("x-csrf-token", csrf)
                .header("origin", &base)
                .json(&serde_json::json!({ "line": line }))
                .send()
                .await?
                .json()
                .await?;
            Ok::<String, anyhow::Error>(body["lines"].to_string())
        }
    };
    let started = terminal(format!(
        "scan start -p {PREFIX} --rate {RATE} --per-subnet-rate 0 --hardware cpu --seed 1"
    ))
    .await?;
    if !started.contains("started") {
        bail!("the job did not start: {started}");
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let shown = terminal("scan show 1".into()).await?;
        if shown.contains("· completed ·") {
            // "probes    N sent (…; M ms sending, …"
            let probes = shown.split("probes    ").nth(1).context("probes line")?;
            let sent: u64 = probes.split_whitespace().next().context("sent")?.parse()?;
            let ms: u64 = probes
                .split("; ")
                .nth(1)
                .and_then(|r| r.split(" ms").next())
                .context("ms")?
                .parse()?;
            return Ok(sent * 1000 / ms.max(1));
        }
        if shown.contains("failed") || Instant::now() > deadline {
            bail!("the job did not complete: {shown}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
