//! The soak campaign's peers (`scripts/load.sh` runs it): `--peers` p2pnet
//! nodes in this process connect to the server's node, send it messages,
//! and churn (a channel closed and dialled again, or the node stopped and
//! started again under its other identity) for `--minutes`. Every
//! `--sample-secs` the server's `/metrics` is read: resident memory, open
//! descriptors, threads and live tasks. At the end every peer leaves and
//! the server must fall back to its idle figures: descriptors and tasks
//! that stay are leaks. Prints a table; exits non-zero on a leak.
//!
//! ```text
//! soak --node 127.0.0.1:4000 --metrics http://127.0.0.1:3000/metrics --peers 200 --minutes 10
//! ```

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::Parser;
use p2pnet::{PeerNetwork, proto::Keypair};
use rand::{Rng, SeedableRng, rngs::StdRng};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
struct Args {
    /// The server's node.
    #[arg(long)]
    node: SocketAddr,
    /// The server's `/metrics` URL.
    #[arg(long)]
    metrics: String,
    #[arg(long, default_value_t = 200)]
    peers: usize,
    #[arg(long, default_value_t = 10.0)]
    minutes: f64,
    #[arg(long, default_value_t = 10)]
    sample_secs: u64,
}

/// What the peers did, all together.
#[derive(Default)]
struct Counts {
    connects: AtomicU64,
    connect_errors: AtomicU64,
    messages: AtomicU64,
    send_errors: AtomicU64,
    redials: AtomicU64,
    restarts: AtomicU64,
    connected: AtomicU64,
}

/// One reading of the server's process gauges.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    rss: f64,
    fds: f64,
    threads: f64,
    tasks: f64,
}

async fn sample(client: &reqwest::Client, url: &str) -> anyhow::Result<Sample> {
    let text = client.get(url).send().await?.text().await?;
    let value = |name: &str| -> anyhow::Result<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
            .with_context(|| format!("{name} missing from /metrics"))
    };
    Ok(Sample {
        rss: value("p2pnet_process_resident_memory_bytes")?,
        fds: value("p2pnet_process_open_fds")?,
        threads: value("p2pnet_process_threads")?,
        tasks: value("p2pnet_tokio_alive_tasks")?,
    })
}

/// One peer slot: connects, sends a message about every second, and after
/// a random while churns; two identities, used in turn, so the server
/// knows a bounded set of peers and any growth is not legitimate state.
async fn peer_slot(
    slot: usize,
    node: SocketAddr,
    counts: Arc<Counts>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(slot as u64);
    let identities = [0u8, 1].map(|i| {
        let mut seed = [i; 32];
        seed[..8].copy_from_slice(&(slot as u64).to_le_bytes());
        Keypair::from_seed(&seed)
    });
    let mut turn = 0;
    // Staggered starts: the server sees arrivals, not one burst.
    tokio::time::sleep(Duration::from_millis(rng.random_range(0..20_000))).await;
    while !stop.is_cancelled() {
        let network = PeerNetwork::builder()
            .keypair(identities[turn % 2].clone())
            .listen_ip("127.0.0.1".parse()?)
            .port(0)
            .start()
            .await?;
        turn += 1;
        loop {
            let remote = match network.connect(node).await {
                Ok(remote) => remote,
                Err(_) => {
                    counts.connect_errors.fetch_add(1, Ordering::Relaxed);
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        () = stop.cancelled() => break,
                    }
                }
            };
            counts.connects.fetch_add(1, Ordering::Relaxed);
            counts.connected.fetch_add(1, Ordering::Relaxed);
            let lifetime = Duration::from_secs(rng.random_range(15..90));
            let until = Instant::now() + lifetime;
            let mut n = 0u64;
            while Instant::now() < until && !stop.is_cancelled() {
                n += 1;
                match network
                    .send_message(remote, format!("soak {slot} message {n}"))
                    .await
                {
                    Ok(()) => counts.messages.fetch_add(1, Ordering::Relaxed),
                    Err(_) => counts.send_errors.fetch_add(1, Ordering::Relaxed),
                };
                let pause = Duration::from_millis(rng.random_range(500..1_500));
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = stop.cancelled() => {}
                }
            }
            counts.connected.fetch_sub(1, Ordering::Relaxed);
            let _ = network.disconnect(remote).await;
            if stop.is_cancelled() || rng.random_bool(0.5) {
                break;
            }
            // Churn, kind one: the same node dials again.
            counts.redials.fetch_add(1, Ordering::Relaxed);
        }
        network.shutdown().await;
        if !stop.is_cancelled() {
            // Churn, kind two: the node goes and comes back as the other identity.
            counts.restarts.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let client = reqwest::Client::new();
    let idle = sample(&client, &args.metrics).await?;
    let counts = Arc::new(Counts::default());
    let stop = CancellationToken::new();
    let slots: Vec<_> = (0..args.peers)
        .map(|slot| tokio::spawn(peer_slot(slot, args.node, counts.clone(), stop.clone())))
        .collect();

    let started = Instant::now();
    let run_for = Duration::from_secs_f64(args.minutes * 60.0);
    let warm_at = run_for.min(Duration::from_secs(60));
    let mut warm = None;
    let mut last = idle;
    let mut peak = idle;
    println!("   time  connected   RSS MiB   fds  threads  tasks  messages");
    while started.elapsed() < run_for {
        tokio::time::sleep(Duration::from_secs(args.sample_secs)).await;
        last = sample(&client, &args.metrics).await?;
        peak.rss = peak.rss.max(last.rss);
        peak.fds = peak.fds.max(last.fds);
        peak.tasks = peak.tasks.max(last.tasks);
        peak.threads = peak.threads.max(last.threads);
        if warm.is_none() && started.elapsed() >= warm_at {
            warm = Some(last);
        }
        println!(
            "{:>6.0}s  {:>9}  {:>8.1}  {:>4}  {:>7}  {:>5}  {:>8}",
            started.elapsed().as_secs_f64(),
            counts.connected.load(Ordering::Relaxed),
            last.rss / 1_048_576.0,
            last.fds,
            last.threads,
            last.tasks,
            counts.messages.load(Ordering::Relaxed)
        );
    }
    let end = last;
    stop.cancel();
    for slot in slots {
        slot.await.context("a peer slot panicked")??;
    }
    // The server notices every departure, then falls back to idle.
    let mut after = sample(&client, &args.metrics).await?;
    for _ in 0..30 {
        if after.fds <= idle.fds + 2.0 && after.tasks <= idle.tasks + 2.0 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        after = sample(&client, &args.metrics).await?;
    }
    let warm = warm.unwrap_or(end);
    let mib = |s: &Sample| s.rss / 1_048_576.0;
    println!();
    println!("| figure | idle | warm (1 min) | peak | end | all peers gone |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| RSS MiB | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
        mib(&idle),
        mib(&warm),
        mib(&peak),
        mib(&end),
        mib(&after)
    );
    for (name, get) in [
        ("open fds", (|s: &Sample| s.fds) as fn(&Sample) -> f64),
        ("threads", |s| s.threads),
        ("live tasks", |s| s.tasks),
    ] {
        println!(
            "| {name} | {} | {} | {} | {} | {} |",
            get(&idle),
            get(&warm),
            get(&peak),
            get(&end),
            get(&after)
        );
    }
    let c = |a: &AtomicU64| a.load(Ordering::Relaxed);
    println!();
    println!(
        "{} peers for {:.1} min: {} connects ({} refused or failed), {} redials, {} restarts \
         under the other identity, {} messages ({} send errors)",
        args.peers,
        started.elapsed().as_secs_f64() / 60.0,
        c(&counts.connects),
        c(&counts.connect_errors),
        c(&counts.redials),
        c(&counts.restarts),
        c(&counts.messages),
        c(&counts.send_errors)
    );
    if after.fds > idle.fds + 2.0 || after.tasks > idle.tasks + 2.0 {
        bail!(
            "leak: with every peer gone, {} fds and {} tasks (idle: {} and {})",
            after.fds,
            after.tasks,
            idle.fds,
            idle.tasks
        );
    }
    if c(&counts.connects) == 0 || c(&counts.messages) == 0 {
        bail!("no peer got through");
    }
    Ok(())
}
