//! What the server acknowledged, and the check that the database holds it.
//!
//! Each writer sends one write at a time. Before it sends, the write is
//! *pending*; once answered with success it is *acknowledged*. A kill can
//! catch one pending write per writer: the database may hold it or not.
//! After each kill the stored state must be the acknowledged one, or the
//! pending one where a write was in flight; what is found becomes the new
//! acknowledged state.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::Duration,
};

use anyhow::{Context, bail, ensure};
use server::store::{AccessKind, Store};
use sqlx::Connection;

/// A value as acknowledged, and the one a write in flight would leave.
#[derive(Clone, Debug, Default)]
pub(crate) struct Expect<T> {
    acked: T,
    pending: Option<T>,
}

impl<T: Clone + PartialEq + std::fmt::Debug> Expect<T> {
    fn new(acked: T) -> Self {
        Self {
            acked,
            pending: None,
        }
    }

    /// Whether `stored` is a state the writes allow; it becomes the truth.
    fn settle(&mut self, what: &str, stored: T) -> anyhow::Result<()> {
        if stored != self.acked && self.pending.as_ref() != Some(&stored) {
            bail!(
                "{what}: stored {stored:?}, but {:?} was acknowledged (in flight: {:?})",
                self.acked,
                self.pending
            );
        }
        self.acked = stored;
        self.pending = None;
        Ok(())
    }
}

/// The expected state of one dialling peer, as the node keeps it.
#[derive(Clone, Debug, Default)]
struct PeerExpect {
    approved: Expect<bool>,
    elevated: Expect<bool>,
}

#[derive(Default)]
pub(crate) struct Ledger {
    blocks: BTreeMap<String, Expect<bool>>,
    node_name: Expect<Option<String>>,
    announces: BTreeMap<String, Expect<i64>>,
    tasks: BTreeSet<String>,
    pending_tasks: BTreeSet<String>,
    peers: BTreeMap<String, PeerExpect>,
    /// Acknowledged writes that append an audit entry.
    audited: usize,
    scan: Option<(i64, i64)>,
    acked: u64,
    unacked: u64,
    refused: u64,
}

/// Which write a writer is about to send.
#[derive(Clone, Debug)]
pub(crate) enum Write {
    Block(String, bool),
    NodeName(String),
    Announce(String, i64),
    Task(String),
    Approve(String),
    Elevate(String, bool),
}

impl Ledger {
    /// `write` is about to be sent.
    pub(crate) fn pending(&mut self, write: &Write) {
        match write {
            Write::Block(target, present) => {
                self.blocks
                    .entry(target.clone())
                    .or_insert_with(|| Expect::new(false))
                    .pending = Some(*present);
            }
            Write::NodeName(name) => self.node_name.pending = Some(Some(name.clone())),
            Write::Announce(peer, seq) => {
                self.announces
                    .entry(peer.clone())
                    .or_insert_with(|| Expect::new(0))
                    .pending = Some(*seq);
            }
            Write::Task(text) => {
                self.pending_tasks.insert(text.clone());
            }
            Write::Approve(peer) => {
                self.peers.entry(peer.clone()).or_default().approved.pending = Some(true);
            }
            Write::Elevate(peer, on) => {
                self.peers.entry(peer.clone()).or_default().elevated.pending = Some(*on);
            }
        }
    }

    /// `write` was answered with success: it must survive any kill.
    pub(crate) fn acknowledged(&mut self, write: &Write) {
        self.acked += 1;
        match write {
            Write::Block(target, present) => {
                self.blocks.insert(target.clone(), Expect::new(*present));
                self.audited += 1;
            }
            Write::NodeName(name) => self.node_name = Expect::new(Some(name.clone())),
            Write::Announce(peer, seq) => {
                self.announces.insert(peer.clone(), Expect::new(*seq));
            }
            Write::Task(text) => {
                self.pending_tasks.remove(text);
                self.tasks.insert(text.clone());
            }
            Write::Approve(peer) => {
                self.peers.entry(peer.clone()).or_default().approved = Expect::new(true);
                self.audited += 1;
            }
            Write::Elevate(peer, on) => {
                self.peers.entry(peer.clone()).or_default().elevated = Expect::new(*on);
                self.audited += 1;
            }
        }
    }

    /// `write` got no success answer: the server died first, or refused it.
    pub(crate) fn unanswered(&mut self, refused: bool) {
        if refused {
            self.refused += 1;
        } else {
            self.unacked += 1;
        }
    }

    /// A block whose addition was acknowledged, at random.
    pub(crate) fn a_block(&self, rng: &mut impl rand::Rng) -> Option<String> {
        let present: Vec<&String> = self
            .blocks
            .iter()
            .filter(|(_, e)| e.acked && e.pending.is_none())
            .map(|(t, _)| t)
            .collect();
        (!present.is_empty()).then(|| present[rng.random_range(0..present.len())].clone())
    }

    /// Whether blocking `target` was the last acknowledged word on it.
    pub(crate) fn blocked(&self, target: &str) -> bool {
        self.blocks.get(target).is_some_and(|e| e.acked)
    }

    /// The acknowledged state of `peer`'s decision.
    pub(crate) fn approved(&self, peer: &str) -> bool {
        self.peers.get(peer).is_some_and(|p| p.approved.acked)
    }

    /// The next sequence number to announce for `peer`.
    pub(crate) fn next_seq(&self, peer: &str) -> i64 {
        self.announces
            .get(peer)
            .map_or(0, |e| e.acked.max(e.pending.unwrap_or(0)))
            + 1
    }

    pub(crate) fn scan_started(&mut self, line: &str) -> anyhow::Result<()> {
        let id = line
            .split_whitespace()
            .skip_while(|w| *w != "job")
            .nth(1)
            .and_then(|w| w.parse().ok())
            .with_context(|| format!("no job id in {line:?}"))?;
        self.scan = Some((id, 0));
        Ok(())
    }

    /// Acknowledged, unanswered and refused writes.
    pub(crate) fn totals(&self) -> (u64, u64, u64) {
        (self.acked, self.unacked, self.refused)
    }

    /// After a restart, `peers` (the terminal's list) shows each peer with
    /// its acknowledged decision and grants, and the block `subject` as
    /// blocked exactly when its block was acknowledged last.
    pub(crate) fn check_peers_listed(&self, shown: &str, subject: &str) -> anyhow::Result<()> {
        // Listed once the node saved what it learned of the peer (every
        // 10 s); the block itself is checked by dialling (see main.rs).
        let listed = shown.lines().find(|l| l.starts_with(subject));
        if let (Some(expect), Some(line)) = (self.blocks.get(subject), listed) {
            ensure!(
                line.contains("blocked") == expect.acked,
                "peer {subject}: blocked is not {} after a restart: {line}",
                expect.acked
            );
        }
        for (peer, expect) in &self.peers {
            let line = shown.lines().find(|l| l.starts_with(peer.as_str()));
            if expect.approved.acked {
                let line = line.with_context(|| format!("peer {peer} is gone after a restart"))?;
                ensure!(
                    line.contains("approved"),
                    "peer {peer} lost its approval: {line}"
                );
                ensure!(
                    expect.elevated.acked != line.contains("grants: -"),
                    "peer {peer}: grants are not as acknowledged (elevated: {}): {line}",
                    expect.elevated.acked
                );
            }
        }
        Ok(())
    }

    /// Checks the stored state against every acknowledged write; the
    /// number of writes checked.
    pub(crate) async fn verify(&mut self, store: &dyn Store) -> anyhow::Result<u64> {
        let mut checked = 0;
        let access = store.access_list().await?;
        for (target, expect) in &mut self.blocks {
            let present = access
                .iter()
                .any(|e| e.kind == AccessKind::Block && &e.target == target);
            expect.settle(&format!("block {target}"), present)?;
            checked += 1;
        }
        let name = store.setting(server::settings::NODE_NAME).await?;
        if self.node_name.acked.is_some() || self.node_name.pending.is_some() {
            self.node_name.settle("node name", name)?;
            checked += 1;
        }
        let (_, records) = store.live_records(0).await?;
        for (peer, expect) in &mut self.announces {
            let seq = records
                .iter()
                .find(|r| &r.peer_id == peer)
                .map_or(0, |r| r.seq);
            expect.settle(&format!("announce of {}", &peer[..12]), seq)?;
            checked += 1;
        }
        // Each stored task's message, exactly (`…-task-1` must not be
        // found inside `…-task-10`).
        let messages: BTreeSet<String> = store
            .recent_tasks(i64::MAX)
            .await?
            .into_iter()
            .filter_map(|t| {
                let task: serde_json::Value = serde_json::from_str(&t.task).ok()?;
                task["action"]["text"].as_str().map(str::to_owned)
            })
            .collect();
        for text in &self.tasks {
            ensure!(
                messages.contains(text),
                "acknowledged task {text:?} is gone"
            );
            checked += 1;
        }
        for text in std::mem::take(&mut self.pending_tasks) {
            if messages.contains(&text) {
                self.tasks.insert(text);
            }
        }
        let known = store.known_peers().await?;
        for (peer, expect) in &mut self.peers {
            let record = known.iter().find(|r| &r.peer_id == peer);
            let approved = record.is_some_and(|r| r.decision == "approved");
            let elevated = record.is_some_and(|r| !r.grants.is_empty());
            expect
                .approved
                .settle(&format!("approval of {}", &peer[..12]), approved)?;
            expect
                .elevated
                .settle(&format!("grants of {}", &peer[..12]), elevated)?;
            checked += 2;
        }
        let audit = store.recent_audit(u32::MAX).await?.len();
        ensure!(
            audit >= self.audited,
            "{audit} audit entries, but {} audited writes were acknowledged",
            self.audited
        );
        self.audited = audit;
        checked += 1;
        if let Some((id, last_sent)) = &mut self.scan {
            let job = store
                .scan_job(*id)
                .await?
                .with_context(|| format!("scan job {id} is gone"))?;
            ensure!(
                job.sent >= *last_sent,
                "scan job {id}'s checkpoint went back: {} probes sent, {last_sent} before",
                job.sent
            );
            ensure!(
                ["running", "completed"].contains(&job.state.as_str()),
                "scan job {id} is {} ({:?})",
                job.state,
                job.error
            );
            *last_sent = job.sent;
            checked += 1;
        }
        Ok(checked)
    }
}

/// Opens the store the server used (the server is down).
pub(crate) async fn open(url: &str) -> anyhow::Result<Arc<dyn Store>> {
    Ok(server::store::connect(url, 2, Duration::from_secs(10)).await?)
}

/// The database's own consistency check: SQLite's `integrity_check` and
/// `foreign_key_check`; on PostgreSQL, amcheck over every B-tree index.
pub(crate) async fn integrity(url: &str) -> anyhow::Result<()> {
    if url.starts_with("sqlite:") {
        let mut db = sqlx::SqliteConnection::connect(url).await?;
        let verdict: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&mut db)
            .await?;
        ensure!(verdict == "ok", "SQLite integrity_check: {verdict}");
        let broken: Vec<(String,)> = sqlx::query_as("PRAGMA foreign_key_check")
            .fetch_all(&mut db)
            .await?;
        ensure!(broken.is_empty(), "foreign keys broken in {broken:?}");
        db.close().await?;
    } else {
        let mut db = sqlx::PgConnection::connect(url).await?;
        sqlx::query("CREATE EXTENSION IF NOT EXISTS amcheck")
            .execute(&mut db)
            .await?;
        let indexes: Vec<(String,)> = sqlx::query_as(
            "SELECT c.relname::text FROM pg_index i \
             JOIN pg_class c ON c.oid = i.indexrelid \
             JOIN pg_am a ON a.oid = c.relam \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE a.amname = 'btree' AND n.nspname = 'public'",
        )
        .fetch_all(&mut db)
        .await?;
        ensure!(!indexes.is_empty(), "no indexes found to check");
        for (index,) in indexes {
            sqlx::query("SELECT bt_index_check($1::regclass, true)")
                .bind(&index)
                .execute(&mut db)
                .await
                .with_context(|| format!("amcheck on {index}"))?;
        }
        db.close().await?;
    }
    Ok(())
}

/// The figures of a run.
#[derive(Default)]
pub(crate) struct Tally {
    pub(crate) kills: u32,
    pub(crate) database_crashes: u32,
    pub(crate) block_refused: u32,
    pub(crate) block_admitted: u32,
    pub(crate) restarts_checked: u32,
    pub(crate) writes_verified: u64,
    pub(crate) restart_ms: Vec<u64>,
}

impl Tally {
    pub(crate) fn print(&self, database: &str, totals: (u64, u64, u64), took: Duration) {
        let (acked, unacked, refused) = totals;
        let mut restart = self.restart_ms.clone();
        restart.sort_unstable();
        let median = restart.get(restart.len() / 2).copied().unwrap_or(0);
        let max = restart.last().copied().unwrap_or(0);
        let backend = if database == "sqlite" {
            "SQLite"
        } else {
            "PostgreSQL"
        };
        println!();
        println!("| figure | {backend} |");
        println!("|---|---|");
        println!("| kills (SIGKILL) survived | {} |", self.kills);
        if self.database_crashes > 0 {
            println!(
                "| of which PostgreSQL crashed too (immediate stop) | {} |",
                self.database_crashes
            );
        }
        println!(
            "| restarts that came back with their peers | {} |",
            self.restarts_checked
        );
        println!(
            "| restarts: the peer's block held (refused / let in when lifted) | {} / {} |",
            self.block_refused, self.block_admitted
        );
        println!("| writes acknowledged | {acked} |");
        println!("| writes in flight at a kill (outcome free) | {unacked} |");
        println!("| writes refused by the server | {refused} |");
        println!(
            "| stored values checked against the acknowledgements (summed over kills) | {} |",
            self.writes_verified
        );
        println!("| integrity checks passed | {} |", self.kills);
        println!("| restart to healthy, median / max | {median} ms / {max} ms |");
        println!("| run time | {:.0} s |", took.as_secs_f64());
    }
}
