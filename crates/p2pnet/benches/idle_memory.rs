//! Memory per idle channel with 10,000 channels.
//!
//! The hub (this process) accepts 10,000 channels from as many identities
//! (one channel per peer), dialed by a child process so that the dialers'
//! own memory does not count. The hub's resident memory before and after,
//! divided by the channel count, is the per-channel cost: actor task,
//! protocol channel with its Noise transport state, read/write buffers,
//! command queue and registry entry. Kernel socket buffers are not
//! process memory and are not included.
//!
//! Run: `cargo bench -p p2pnet --bench idle_memory` (optionally
//! `-- --channels N`). Needs about 2 × N + 100 file descriptors per process
//! (`ulimit -n`).

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use p2pnet::{IncomingPeerTrustPolicy, Limits, PeerNetwork};

fn rss_kib(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

fn arg_after(args: &[String], flag: &str) -> Option<String> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(target) = arg_after(&args, "--dialer") {
        let count: usize = arg_after(&args, "--count")
            .and_then(|c| c.parse().ok())
            .unwrap_or(10_000);
        dial(target.parse().expect("target address"), count);
        return;
    }
    if args.iter().any(|a| a == "--list") {
        // `cargo bench -- --list` support: nothing to list beyond this bench.
        println!("idle_memory: bench");
        return;
    }
    let count: usize = arg_after(&args, "--channels")
        .and_then(|c| c.parse().ok())
        .unwrap_or(10_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let limits = Limits {
        max_channels: count + 16,
        max_inbound: count + 16,
        max_pending: count + 16,
        // Every dialer is on loopback: one source.
        max_handshakes: count + 16,
        max_pending_per_source: count + 16,
        ..Limits::default()
    };
    let hub = rt
        .block_on(
            PeerNetwork::builder()
                .listen_ip("127.0.0.1".parse().expect("ip"))
                .limits(limits)
                .trust_policy(IncomingPeerTrustPolicy {
                    auto_accept: true,
                    ..Default::default()
                })
                .start(),
        )
        .expect("hub");
    std::thread::sleep(Duration::from_millis(300));
    let before = rss_kib("self");
    let started = Instant::now();
    let mut child = Command::new(std::env::current_exe().expect("exe"))
        .args([
            "--dialer",
            &hub.local_addr().expect("addr").to_string(),
            "--count",
            &count.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("dialer process");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let ready = lines.next().and_then(Result::ok).unwrap_or_default();
    assert!(ready.starts_with("ready"), "dialer said {ready:?}");
    let open = |hub: &PeerNetwork| {
        hub.channels()
            .iter()
            .filter(|c| matches!(c.state, p2pnet::proto::ChannelState::Open { .. }))
            .count()
    };
    while open(&hub) < count {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "only {} channels opened",
            open(&hub)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let setup = started.elapsed();
    // Let allocations settle (handshake state freed, buffers shrunk).
    std::thread::sleep(Duration::from_secs(2));
    let after = rss_kib("self");
    let child_rss = rss_kib(&child.id().to_string());
    let per_channel = (after.saturating_sub(before)) as f64 * 1024.0 / count as f64;
    println!("idle_memory/channels            {count}");
    println!(
        "idle_memory/setup               {:.2} s ({:.0} channels/s)",
        setup.as_secs_f64(),
        count as f64 / setup.as_secs_f64()
    );
    println!("idle_memory/hub_rss_before      {before} KiB");
    println!("idle_memory/hub_rss_after       {after} KiB");
    println!(
        "idle_memory/per_channel         {per_channel:.0} bytes ({:.2} KiB; target <= 16 KiB)",
        per_channel / 1024.0
    );
    println!(
        "idle_memory/dialer_per_network  {:.0} bytes (a whole PeerNetwork plus its channel, in the child)",
        child_rss as f64 * 1024.0 / count as f64
    );
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(b"stop\n");
    }
    let _ = child.wait();
    rt.block_on(hub.shutdown());
}

/// Child process: `count` networks, each dialing the hub once.
fn dial(target: SocketAddr, count: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let mut networks = Vec::with_capacity(count);
        for _ in 0..count {
            let network = PeerNetwork::builder()
                .accept_inbound(false)
                .default_routines(false)
                .limits(Limits {
                    event_buffer: 1,
                    ..Limits::default()
                })
                .start()
                .await
                .expect("dialer network");
            networks.push(network);
        }
        println!("ready");
        let _ = std::io::stdout().flush();
        let mut pending = Vec::new();
        for chunk in networks.chunks(64) {
            pending.clear();
            for network in chunk {
                let network = network.clone();
                pending.push(tokio::spawn(async move { network.connect(target).await }));
            }
            for task in pending.drain(..) {
                task.await.expect("join").expect("connect");
            }
        }
        // Idle until the parent says stop (or dies).
        let _ = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
        })
        .await;
        for network in networks {
            network.shutdown().await;
        }
    });
}
