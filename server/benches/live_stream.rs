//! How many events a second the live stream (`GET /api/live`) carries to
//! ten browsers at once, and what the server's memory does meanwhile.
//!
//! `cargo bench -p server --bench live_stream`
//!
//! The release server runs as its own process (so its RSS is its own), on
//! loopback with discovery off. Ten SSE clients, each its own connection
//! like ten browser tabs, follow the stream. A p2pnet node in this process
//! connects to the server's node (auto-accepted) and sends text messages
//! at a stepped rate; each becomes a `message.received` event that every
//! client must see. Each step reports, per client, the events delivered,
//! `lagged` notices (a client that fell more than the feed's ring behind)
//! and the latency from send to arrival, and the server's RSS. The rate
//! sustained is the highest step every client followed in full.

mod common;

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use common::{ServerProcess, free_port, server_command};
use p2pnet::{PeerId, PeerNetwork};
use tokio::sync::Mutex;

const BROWSERS: usize = 10;
const PASSWORD: &str = "live-stream-bench-password";
/// Offered message rates, per second; 0 means as fast as the sender goes.
const STEPS: [u64; 8] = [500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 0];
const STEP: Duration = Duration::from_secs(3);
/// How long the clients get to drain a step before it is counted.
const DRAIN: Duration = Duration::from_secs(2);

/// What one client saw during a step.
#[derive(Default)]
struct Seen {
    messages: u64,
    lagged: u64,
    latencies_us: Vec<u64>,
}

fn main() -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> Result<()> {
    let data = tempfile::tempdir()?;
    let http_port = free_port()?;
    let node_port = free_port()?;
    let mut command = server_command(data.path(), http_port);
    command
        .env("P2PNET_AUTH__ADMIN_PASSWORD", PASSWORD)
        .env("P2PNET_NODE__LISTEN", format!("127.0.0.1:{node_port}"))
        .env("P2PNET_NODE__DISCOVERY__ENABLED", "false")
        .env("P2PNET_NODE__TRUST__AUTO_ACCEPT", "true");
    let mut server = ServerProcess::spawn(command)?;
    let base = format!("http://127.0.0.1:{http_port}");
    let cookie = common::login(&base, PASSWORD).await?;

    let epoch = Instant::now();
    let clients: Vec<Arc<Mutex<Seen>>> = (0..BROWSERS)
        .map(|_| Arc::new(Mutex::new(Seen::default())))
        .collect();
    let opened = Arc::new(AtomicU64::new(0));
    for seen in &clients {
        tokio::spawn(follow(
            base.clone(),
            cookie.clone(),
            seen.clone(),
            opened.clone(),
            epoch,
        ));
    }
    while opened.load(Ordering::Relaxed) < BROWSERS as u64 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let sender = PeerNetwork::builder()
        .listen_ip("127.0.0.1".parse()?)
        .start()
        .await?;
    let target = sender
        .connect(SocketAddr::from(([127, 0, 0, 1], node_port)))
        .await
        .context("connect to the server's node")?;
    // The server's node auto-accepts; wait until the channel takes messages.
    wait_open(&sender, target).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_start = server.rss_kib()?;
    println!(
        "live stream to {BROWSERS} clients; server RSS before: {rss_start} KiB\n\n\
         | offered/s | sent/s | delivered/s (slowest client) | complete | lagged | latency p50 / p99 | server RSS |\n\
         |---|---|---|---|---|---|---|"
    );
    let mut sustained = 0;
    for rate in STEPS {
        for seen in &clients {
            *seen.lock().await = Seen::default();
        }
        let started = Instant::now();
        let sent = send_for(&sender, target, rate, STEP, epoch).await?;
        let elapsed = started.elapsed();
        tokio::time::sleep(DRAIN).await;
        let rss = server.rss_kib()?;
        let mut slowest = u64::MAX;
        let mut lagged = 0;
        let mut latencies = Vec::new();
        for seen in &clients {
            let seen = seen.lock().await;
            slowest = slowest.min(seen.messages);
            lagged += seen.lagged;
            latencies.extend_from_slice(&seen.latencies_us);
        }
        latencies.sort_unstable();
        let complete = slowest == sent && lagged == 0;
        if complete {
            sustained = sustained.max(per_second(sent, elapsed));
        }
        println!(
            "| {} | {} | {} | {} | {lagged} | {} / {} ms | {rss} KiB |",
            if rate == 0 {
                "max".to_owned()
            } else {
                rate.to_string()
            },
            per_second(sent, elapsed),
            per_second(slowest, elapsed),
            if complete { "yes" } else { "no" },
            millis(percentile(&latencies, 50)),
            millis(percentile(&latencies, 99)),
        );
    }
    let rss_end = server.rss_kib()?;
    let peak = server.peak_rss_kib()?;
    println!(
        "\nsustained to every client in full: {sustained} events/s; \
         server RSS {rss_start} → {rss_end} KiB (peak {peak} KiB)"
    );
    sender.shutdown().await;
    server.stop();
    Ok(())
}

/// Sends messages at `rate` a second (0: unpaced) for `length`; how many.
async fn send_for(
    sender: &PeerNetwork,
    target: PeerId,
    rate: u64,
    length: Duration,
    epoch: Instant,
) -> Result<u64> {
    let started = Instant::now();
    let mut sent = 0u64;
    while started.elapsed() < length {
        if rate > 0 {
            let due = u64::try_from(started.elapsed().as_micros())? * rate / 1_000_000;
            if sent >= due {
                tokio::time::sleep(Duration::from_micros(500)).await;
                continue;
            }
        }
        let at = epoch.elapsed().as_micros();
        sender
            .send_message(target, format!("m{sent} {at}"))
            .await
            .context("send")?;
        sent += 1;
    }
    Ok(sent)
}

/// One browser: follows the stream, counting what arrives.
async fn follow(
    base: String,
    cookie: String,
    seen: Arc<Mutex<Seen>>,
    opened: Arc<AtomicU64>,
    epoch: Instant,
) -> Result<()> {
    let mut response = reqwest::Client::new()
        .get(format!("{base}/api/live"))
        .header("cookie", cookie)
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("stream refused: {}", response.status());
    }
    opened.fetch_add(1, Ordering::Relaxed);
    let mut pending = Vec::<u8>::new();
    while let Some(chunk) = response.chunk().await? {
        pending.extend_from_slice(&chunk);
        let mut lines = Vec::new();
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            lines.push(line);
        }
        let now = epoch.elapsed().as_micros();
        let mut seen = seen.lock().await;
        for line in lines {
            let Some(data) = line.strip_prefix(b"data: ") else {
                continue;
            };
            let data = String::from_utf8_lossy(data);
            if data.contains("\"kind\":\"lagged\"") {
                seen.lagged += 1;
            } else if data.contains("\"kind\":\"message.received\"") {
                seen.messages += 1;
                // The text ends with the send time, µs since `epoch`.
                if let Some(at) = data
                    .rsplit_once(' ')
                    .and_then(|(_, rest)| rest.split('"').next())
                    .and_then(|at| at.parse::<u128>().ok())
                {
                    seen.latencies_us
                        .push(u64::try_from(now.saturating_sub(at)).unwrap_or(u64::MAX));
                }
            }
        }
    }
    Ok(())
}

async fn wait_open(sender: &PeerNetwork, target: PeerId) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while sender.send_message(target, "warm-up 0").await.is_err() {
        if Instant::now() > deadline {
            bail!("the server's node never accepted the channel");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

fn per_second(count: u64, over: Duration) -> u64 {
    (u128::from(count) * 1_000_000 / over.as_micros().max(1))
        .try_into()
        .unwrap_or(u64::MAX)
}

fn percentile(sorted: &[u64], p: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[(sorted.len() - 1) * p / 100]
}

fn millis(us: u64) -> String {
    format!("{}.{}", us / 1000, us % 1000 / 100)
}
