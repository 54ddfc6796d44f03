//! Plain TCP vs p2pnet vs rust-libp2p (TCP + Noise + Yamux) on 127.0.0.1,
//! in one process on one tokio runtime (2 worker threads): bulk transfer,
//! round trip and connect, each figure beside its ratio to plain TCP.
//!
//! Run: `cd crates/libp2p-compare && cargo run --release`.

mod common;
mod libp2p_stack;
mod p2pnet_stack;
mod report;
mod tcp_stack;

use common::{BULK, PACKET, SMALL, Schedule, interleave};
use report::{Metric, Workload};

const COMMAND: &str = "cd crates/libp2p-compare && cargo run --release";
const WORKER_THREADS: usize = 2;
const STACKS: [&str; 3] = ["plain TCP", "p2pnet", "rust-libp2p"];

const BULK_SCHEDULE: Schedule = Schedule {
    warmup: 1,
    rounds: 5,
    per_round: 1,
};
const ROUND_TRIP_SCHEDULE: Schedule = Schedule {
    warmup: 1_000,
    rounds: 10,
    per_round: 1_000,
};
const CONNECT_SCHEDULE: Schedule = Schedule {
    warmup: 20,
    rounds: 10,
    per_round: 20,
};

async fn run_all() -> anyhow::Result<Vec<Workload>> {
    eprintln!("bulk ...");
    let bulk = interleave(
        (
            tcp_stack::Bulk::new().await?,
            p2pnet_stack::Bulk::new().await?,
            libp2p_stack::Bulk::new().await?,
        ),
        BULK_SCHEDULE,
    )
    .await?;
    eprintln!("round trip ...");
    let round_trip = interleave(
        (
            tcp_stack::Echo::new().await?,
            p2pnet_stack::Echo::new().await?,
            libp2p_stack::Echo::new().await?,
        ),
        ROUND_TRIP_SCHEDULE,
    )
    .await?;
    eprintln!("connect ...");
    let connect = interleave(
        (
            tcp_stack::Connect::new().await?,
            p2pnet_stack::Connect::new().await?,
            libp2p_stack::Connect::new().await?,
        ),
        CONNECT_SCHEDULE,
    )
    .await?;
    Ok(vec![
        Workload::new(
            format!(
                "bulk: {} MiB in {} KiB messages, {} runs",
                BULK >> 20,
                PACKET >> 10,
                BULK_SCHEDULE.samples()
            ),
            Metric::Throughput,
            STACKS,
            bulk,
        ),
        Workload::new(
            format!(
                "round trip: {SMALL} B echo, {} times",
                ROUND_TRIP_SCHEDULE.samples()
            ),
            Metric::Latency,
            STACKS,
            round_trip,
        ),
        Workload::new(
            format!(
                "connect + first {SMALL} B delivered, {} times",
                CONNECT_SCHEDULE.samples()
            ),
            Metric::Latency,
            STACKS,
            connect,
        ),
    ])
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKER_THREADS)
        .enable_all()
        .build()?;
    // The measuring code runs as a task on the workers, as an application's
    // would, not on the thread that blocks on the runtime.
    let workloads = runtime.block_on(async { tokio::spawn(run_all()).await? })?;
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    println!("# p2pnet vs rust-libp2p vs plain TCP on 127.0.0.1\n");
    println!("Command: `{COMMAND}`\n");
    println!(
        "One process, one multi-thread tokio runtime with {WORKER_THREADS} worker threads, \
         {cpus} CPUs visible. Untimed warm-up per stack: {} bulk run, {} round trips, \
         {} connects; then the stacks take turns in {} rounds (bulk), {} rounds (round trip) \
         and {} rounds (connect).\n",
        BULK_SCHEDULE.warmup,
        ROUND_TRIP_SCHEDULE.warmup,
        CONNECT_SCHEDULE.warmup,
        BULK_SCHEDULE.rounds,
        ROUND_TRIP_SCHEDULE.rounds,
        CONNECT_SCHEDULE.rounds,
    );
    print!("{}", report::table(&workloads));
    println!(
        "\nBulk figures are throughputs (higher is better; median and mean over the runs); \
         round trip and connect figures are times (lower is better). \
         Ratios divide each stack's figure by plain TCP's."
    );
    Ok(())
}
