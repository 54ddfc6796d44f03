//! The crash-durability campaign (`scripts/crashtest.sh` runs it).
//!
//! The real server binary runs as a child process under a steady stream of
//! writes through its public interfaces: settings (a panel form), peer
//! decisions and grants (terminal, with real peers dialling the node),
//! blocks (terminal), announces (bootstrap API), signed tasks (terminal),
//! scan checkpoints (a scan job on the prefix given, a veth pair the script
//! made), and the audit entries all of these append. At a random
//! moment the server is killed with SIGKILL, many times over. After each
//! kill, before the restart, the database must pass its integrity check
//! and hold every write the server acknowledged (a write in flight at the
//! kill may land or not); after the restart the node must come back with
//! its peers, decisions and grants. A table of figures ends the run.
//!
//! ```text
//! crashtest --server target/release/p2pnet-server --database sqlite --kills 40
//! crashtest --server … --database postgres://user@127.0.0.1:5432/db --kills 40
//! ```

mod client;
mod ledger;
mod peers;
mod process;

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::Parser;
use rand::{Rng, SeedableRng, rngs::StdRng};
use tokio::sync::Mutex;

use client::Panel;
use ledger::{Ledger, Tally};
use process::ServerProcess;

#[derive(Parser)]
struct Args {
    /// The server binary (a release build).
    #[arg(long)]
    server: PathBuf,
    /// `sqlite` (a file in the work directory) or a PostgreSQL URL.
    #[arg(long, default_value = "sqlite")]
    database: String,
    /// How many times the server is killed.
    #[arg(long, default_value_t = 40)]
    kills: u32,
    /// Where the data, keys and logs go (emptied first).
    #[arg(long)]
    work: PathBuf,
    /// A prefix routed to a silent veth pair in this network namespace, for
    /// the scan job (nothing answers but this host's own address).
    #[arg(long)]
    scan_prefix: Option<String>,
    /// A shell command that crashes and restarts the database server; run
    /// after every fifth kill (PostgreSQL only).
    #[arg(long)]
    database_crash: Option<String>,
    /// Seed of the kill schedule and the writes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.work.exists() {
        std::fs::remove_dir_all(&args.work).context("emptying the work directory")?;
    }
    std::fs::create_dir_all(&args.work)?;
    let database_url = if args.database == "sqlite" {
        format!("sqlite://{}/data/p2pnet.db", args.work.display())
    } else {
        args.database.clone()
    };
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut server = ServerProcess::new(&args.server, &args.work, &database_url)?;
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    // Three peers for decisions and grants, the fourth to block and unblock.
    let peers = peers::Dialers::start(&args.work, 4).await?;
    let announcers = Arc::new(
        (0..4u8)
            .map(|i| p2pnet::proto::Keypair::from_seed(&[i.wrapping_add(args.seed as u8); 32]))
            .collect::<Vec<_>>(),
    );
    let mut tally = Tally::default();
    let started = Instant::now();

    for round in 0..=args.kills {
        let boot = Instant::now();
        server.start().await?;
        tally.restart_ms.push(boot.elapsed().as_millis() as u64);
        let panel = Panel::login(server.http_addr()).await?;
        if round > 0 {
            // The node is back with its peers, decisions and grants.
            let shown = panel.terminal("peers").await?.join("\n");
            let ledger = ledger.lock().await;
            let subject = peers.block_subject();
            ledger.check_peers_listed(&shown, &subject)?;
            let blocked = ledger.blocked(&subject);
            if peers.subject_admitted(server.node_addr()).await == blocked {
                bail!(
                    "after a restart the node does not enforce the block of {subject} ({blocked})"
                );
            }
            if blocked {
                tally.block_refused += 1;
            } else {
                tally.block_admitted += 1;
            }
            tally.restarts_checked += 1;
        }
        if round == args.kills {
            break;
        }
        if let Some(prefix) = args.scan_prefix.as_ref().filter(|_| round == 0) {
            let line = panel
                .terminal(&format!("scan start -p {prefix} --rate 300"))
                .await?
                .join(" ");
            ledger.lock().await.scan_started(&line)?;
        }
        peers.dial_all(server.node_addr()).await;

        // Writers run until the kill; each records what was acknowledged.
        let stop = tokio_util::sync::CancellationToken::new();
        let writers = client::spawn_writers(
            &panel,
            &peers,
            &announcers,
            ledger.clone(),
            stop.clone(),
            rng.random(),
        );
        let live_for = Duration::from_millis(rng.random_range(400..2_500));
        tokio::time::sleep(live_for).await;
        server.kill()?;
        stop.cancel();
        for writer in writers {
            writer.await.context("a writer panicked")??;
        }
        peers.forget_channels().await;
        if let Some(crash) = args.database_crash.as_ref().filter(|_| round % 5 == 4) {
            let status = std::process::Command::new("sh")
                .arg("-c")
                .arg(crash)
                .status()?;
            if !status.success() {
                bail!("the database crash command failed ({status})");
            }
            tally.database_crashes += 1;
        }

        // The database alone, server down: integrity and every ack.
        let store = ledger::open(&database_url).await?;
        ledger::integrity(&database_url).await?;
        let verified = ledger.lock().await.verify(&*store).await?;
        store.close().await;
        tally.kills += 1;
        tally.writes_verified += verified;
        eprintln!(
            "kill {:>3}/{}: after {:>4} ms, {verified} stored values match the acknowledgements",
            round + 1,
            args.kills,
            live_for.as_millis()
        );
    }
    let totals = ledger.lock().await.totals();
    server.stop().await?;
    peers.shutdown().await;
    tally.print(&args.database, totals, started.elapsed());
    if totals.2 > 0 {
        bail!("the server refused {} writes chosen to be valid", totals.2);
    }
    Ok(())
}
