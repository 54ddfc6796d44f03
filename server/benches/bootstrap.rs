//! The bootstrap API under load, in authority mode with 10,000 registered
//! peers: announces a second, `GET /api/Bootstrap/peers` requests a second
//! (full body, and conditional with `If-None-Match`) beside a trivial JSON
//! route of the same server in the same run, and the time to sign and to
//! verify one snapshot.
//!
//! `cargo bench -p server --bench bootstrap` (needs `wrk`: `apt-get install
//! wrk`). When there are two CPUs the server is pinned to CPU 0, and the
//! load (this process's announcing clients, then wrk) to CPU 1.
//!
//! The release server runs as its own process on loopback.

mod common;

use std::{
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use anyhow::{Context, Result, bail};
use common::{ServerProcess, free_port, server_command};
use p2pnet::proto::{
    Keypair,
    record::{PeerRecord, SignedRecord},
};
use p2pnet_bootstrap::authority::{AuthorityKey, PinnedAuthority};
use tokio::sync::Semaphore;

const PEERS: usize = 10_000;
const PASSPHRASE: &str = "bootstrap bench passphrase";
const WRK_SECONDS: u32 = 10;
const CONNECTIONS: u32 = 64;

fn main() -> Result<()> {
    // Before the runtime starts its threads, which inherit the affinity.
    pin_process(std::process::id(), 1);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> Result<()> {
    let data = tempfile::tempdir()?;
    let port = free_port()?;
    let mut command = server_command(data.path(), port);
    command
        .env("P2PNET_AUTH__ADMIN_PASSWORD", "bootstrap-bench-admin")
        .env("P2PNET_NODE__ENABLED", "false")
        .env("P2PNET_BOOTSTRAP__MODE", "authority")
        .env("P2PNET_BOOTSTRAP__PASSPHRASE", PASSPHRASE)
        .env("P2PNET_BOOTSTRAP__ANNOUNCES_PER_MINUTE", "1000000");
    let mut server = ServerProcess::spawn(command)?;
    pin_process(server.id(), 0);
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&base).await?;

    // Announces: 10,000 peers, 32 in flight.
    let client = reqwest::Client::new();
    let now = unix_now();
    let records: Vec<String> = (0..PEERS)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
            let keys = Keypair::from_seed(&seed);
            let port = 4000 + (i % 20_000) as u16;
            SignedRecord::sign(
                PeerRecord {
                    peer: keys.peer_id(),
                    network: "p2pnet".into(),
                    seq: 1,
                    issued_at: now,
                    expires_at: now + 3600,
                    addresses: vec![
                        format!("198.51.100.{}:{port}", i % 250 + 1).parse()?,
                        format!("[2001:db8::{:x}]:{port}", i + 1).parse()?,
                    ],
                },
                &keys,
            )
            .map(|r| r.as_str().to_owned())
            .map_err(anyhow::Error::from)
        })
        .collect::<Result<_>>()?;
    let in_flight = Arc::new(Semaphore::new(32));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(PEERS);
    for record in records {
        let permit = in_flight.clone().acquire_owned().await?;
        let client = client.clone();
        let url = format!("{base}/api/v1/bootstrap/announce");
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .json(&serde_json::json!({ "record": record }))
                .send()
                .await;
            drop(permit);
            r.map(|r| r.status().is_success()).unwrap_or(false)
        }));
    }
    let mut ok = 0;
    for task in tasks {
        ok += usize::from(task.await?);
    }
    let announce_secs = started.elapsed().as_secs_f64();
    if ok != PEERS {
        bail!("{} of {PEERS} announces failed", PEERS - ok);
    }

    // Wait for the snapshot to list them all, then time signing and
    // verifying one of that size here.
    let (text, signature, etag, body_len) = loop {
        let r = client
            .get(format!("{base}/api/Bootstrap/peers"))
            .send()
            .await?;
        let etag = r
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body: serde_json::Value = r.json().await?;
        let text = body["snapshot"].as_str().unwrap_or_default().to_owned();
        if text.matches("\"record\"").count() >= PEERS {
            let signature = body["signature"].as_str().unwrap_or_default().to_owned();
            let len = serde_json::to_vec(&body)?.len();
            break (text, signature, etag, len);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let authority: serde_json::Value = client
        .get(format!("{base}/api/Bootstrap/authority"))
        .send()
        .await?
        .json()
        .await?;
    let pin = PinnedAuthority::from_armored(authority["certificate"].as_str().unwrap_or_default())?;
    let verify = time(20, || {
        pin.verify_detached(text.as_bytes(), &signature, SystemTime::now())
            .map_err(anyhow::Error::from)
    })?;
    let key = AuthorityKey::generate("bench", Duration::from_secs(3600))?;
    let sign = time(20, || {
        key.sign_detached(text.as_bytes())
            .map(|_| ())
            .map_err(anyhow::Error::from)
    })?;
    let rss = server.rss_kib()?;

    println!(
        "bootstrap API, authority mode, {PEERS} peers (snapshot {} bytes of JSON)\n",
        body_len
    );
    println!(
        "announces: {PEERS} in {announce_secs:.2} s = {:.0}/s (32 in flight)",
        PEERS as f64 / announce_secs
    );
    println!(
        "sign one snapshot: {:.2} ms; verify it: {:.2} ms",
        sign * 1e3,
        verify * 1e3
    );
    println!("server RSS after announces: {rss} KiB\n");

    let Some(wrk) = which("wrk") else {
        println!("wrk is not installed (apt-get install wrk): request rates skipped");
        server.stop();
        return Ok(());
    };
    let trivial = format!("{base}/api/Bootstrap/publicip");
    let peers = format!("{base}/api/Bootstrap/peers");
    let if_none_match = format!("If-None-Match: {etag}");
    let rows = [
        ("trivial JSON route (publicip)", trivial.as_str(), None),
        ("GET peers, full body", peers.as_str(), None),
        (
            "GET peers, full body gzipped",
            peers.as_str(),
            Some("Accept-Encoding: gzip"),
        ),
        (
            "GET peers, If-None-Match (304)",
            peers.as_str(),
            Some(if_none_match.as_str()),
        ),
    ];
    println!("| route | requests/s | p50 | p99 | vs trivial |\n|---|---|---|---|---|");
    let mut baseline = None;
    for (name, url, header) in rows {
        let (rate, p50, p99) = run_wrk(&wrk, url, header)?;
        let base_rate = *baseline.get_or_insert(rate);
        println!(
            "| {name} | {rate:.0} | {p50} | {p99} | {:.2}× |",
            rate / base_rate
        );
    }
    println!("\nserver RSS at the end: {} KiB", server.rss_kib()?);
    server.stop();
    Ok(())
}

fn time(n: u32, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    let started = Instant::now();
    for _ in 0..n {
        f()?;
    }
    Ok(started.elapsed().as_secs_f64() / f64::from(n))
}

fn run_wrk(wrk: &str, url: &str, header: Option<&str>) -> Result<(f64, String, String)> {
    let mut command = pinned(1, wrk);
    command.args([
        "-t1",
        &format!("-c{CONNECTIONS}"),
        &format!("-d{WRK_SECONDS}s"),
        "--latency",
    ]);
    if let Some(header) = header {
        command.args(["-H", header]);
    }
    let out = command.arg(url).output().context("run wrk")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let rate = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .with_context(|| format!("wrk output: {text}"))?;
    let percentile = |p: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(p))
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    // A 304 counts as "Non-2xx" to wrk: only the other errors are news.
    if let Some(errors) = text
        .lines()
        .find(|l| l.contains("Non-2xx") || l.contains("Socket errors"))
        && !(header.is_some_and(|h| h.starts_with("If-None-Match")) && errors.contains("Non-2xx"))
    {
        println!("  ({url}: {})", errors.trim());
    }
    Ok((rate, percentile("50%"), percentile("99%")))
}

/// `program` pinned to `cpu` with taskset when the machine has more than
/// one CPU and taskset is there.
fn pinned(cpu: usize, program: &str) -> Command {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    match which("taskset") {
        Some(taskset) if cpus > 1 => {
            let mut c = Command::new(taskset);
            c.args(["-c", &cpu.to_string(), program]);
            c
        }
        _ => Command::new(program),
    }
}

fn which(program: &str) -> Option<String> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
            .map(|p| p.display().to_string())
    })
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn wait_ready(base: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("{base}/healthz")).await.is_err() {
        if Instant::now() > deadline {
            bail!("the server did not start");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Pins every thread of process `pid` to `cpu` (threads started later
/// inherit it), when there are two CPUs and taskset is there.
fn pin_process(pid: u32, cpu: usize) {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if let Some(taskset) = which("taskset").filter(|_| cpus > 1) {
        let _ = Command::new(taskset)
            .args(["-a", "-p", "-c", &cpu.to_string(), &pid.to_string()])
            .stdout(Stdio::null())
            .status();
    }
}
