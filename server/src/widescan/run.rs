//! One run of one scan job.
//!
//! The library's scan runs on its own threads (generator, sender,
//! listener). This task watches it: once a second it stores the job's
//! checkpoint and counters and sends its figures on the live feed (a
//! transient event: the Widescan page refetches, no feed entry); the
//! listener's findings reach it through a bounded channel and are stored
//! in batches; every instance found is handed to the node, which dials it
//! gated like any discovered peer. The run ends when the scan does (all
//! probes out and the cooldown over), on a stop, or at shutdown; the
//! checkpoint stored last is exact, so a resume repeats nothing.
//!
//! A process killed outright loses at most the last second: the stored
//! checkpoint is then up to a second behind, and a resume probes those
//! addresses again.

use std::{
    collections::HashSet,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use widescan::{Contact, Event, IndexRange, Progress, Scan};

use super::{JobContext, LiveFigures, request::JobSpec, state};
use crate::{
    node::live::Draft,
    state::now_ms,
    store::{ScanJobRecord, ScanProgressUpdate, ScanResultRecord},
};

/// How often figures are stored and sent.
const TICK: Duration = Duration::from_secs(1);
/// Findings waiting between the listener's thread and this task.
const EVENT_BUFFER: usize = 4096;
/// Findings stored per transaction at most.
const BATCH: usize = 512;
/// Distinct instances a run dials at most.
const MAX_DIALED: usize = 4096;

/// What the job's earlier runs added up to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Totals {
    pub(super) sent: i64,
    pub(super) received: i64,
    pub(super) send_errors: i64,
    pub(super) send_ms: i64,
}

/// A run about to start.
pub(super) struct JobStart {
    pub(super) id: i64,
    pub(super) spec: JobSpec,
    pub(super) range: IndexRange,
    /// Where this run starts.
    pub(super) checkpoint: u128,
    pub(super) base: Totals,
}

impl JobStart {
    /// A resume of a stored job, or why it cannot be.
    pub(super) fn from_row(row: &ScanJobRecord) -> Result<Self, String> {
        let index = |text: &str, what: &str| {
            text.parse::<u128>()
                .map_err(|_| format!("scan job {}: its stored {what} is corrupt", row.id))
        };
        let spec: JobSpec = serde_json::from_str(&row.spec)
            .map_err(|e| format!("scan job {}: its stored request is corrupt: {e}", row.id))?;
        let range = IndexRange {
            start: index(&row.range_start, "range")?,
            end: index(&row.range_end, "range")?,
        };
        let checkpoint = index(&row.checkpoint, "checkpoint")?;
        if !(range.start..=range.end).contains(&checkpoint) {
            return Err(format!(
                "scan job {}: its checkpoint is outside its range",
                row.id
            ));
        }
        if checkpoint == range.end {
            return Err(format!(
                "scan job {}: every address was probed already",
                row.id
            ));
        }
        Ok(Self {
            id: row.id,
            spec,
            range,
            checkpoint,
            base: Totals {
                sent: row.sent,
                received: row.received,
                send_errors: row.send_errors,
                send_ms: row.send_ms,
            },
        })
    }
}

/// What ends a run early.
pub(super) struct Signals {
    /// An administrator's stop.
    pub(super) stop: CancellationToken,
    /// The server's shutdown.
    pub(super) shutdown: CancellationToken,
}

impl Signals {
    /// Either one.
    async fn ended(&self) {
        tokio::select! {
            () = self.stop.cancelled() => {}
            () = self.shutdown.cancelled() => {}
        }
    }
}

/// Runs the job to its end and stores how it ended.
pub(super) async fn run_job(
    ctx: Arc<JobContext>,
    job: JobStart,
    signals: Signals,
    figures: Arc<Mutex<LiveFigures>>,
) {
    let id = job.id;
    let outcome = drive(&ctx, &job, &signals, &figures).await;
    let (to, error) = match &outcome {
        Ok(true) => (state::COMPLETED, None),
        Ok(false) if signals.stop.is_cancelled() => (state::STOPPED, None),
        Ok(false) => (state::INTERRUPTED, None),
        Err(message) => (state::FAILED, Some(message.as_str())),
    };
    if let Err(e) = ctx
        .store
        .set_scan_state(id, &[state::RUNNING, state::STOPPING], to, error, now_ms())
        .await
    {
        tracing::error!(job = id, error = %e, "cannot store how the scan job ended");
    }
    let text = match error {
        Some(e) => format!("scan job {id} failed: {e}"),
        None => format!("scan job {id} {to}"),
    };
    match error {
        Some(e) => tracing::warn!(job = id, error = %e, "scan job failed"),
        None => tracing::info!(job = id, state = to, "scan job ended"),
    }
    publish(&ctx, "widescan.job", text, false);
}

/// The scan from start to end: `Ok(true)` when it covered its range,
/// `Ok(false)` when it was stopped, `Err` with the reason when it failed.
async fn drive(
    ctx: &Arc<JobContext>,
    job: &JobStart,
    signals: &Signals,
    figures: &Mutex<LiveFigures>,
) -> Result<bool, String> {
    let scan = build(ctx, job)?;
    // Opening the sockets and the GPU blocks; a missing capability fails
    // here, at once, with the library's reason.
    let handle = tokio::task::spawn_blocking(move || scan.start())
        .await
        .map_err(|e| format!("the scan did not start: {e}"))?
        .map_err(|e| e.to_string())?;
    let adapter = handle.hardware().to_string();
    tracing::info!(job = job.id, %adapter, "scan job running");
    publish(
        ctx,
        "widescan.job",
        format!("scan job {} running on {adapter}", job.id),
        false,
    );

    let (tx, mut findings) = mpsc::channel::<Event>(EVENT_BUFFER);
    let events = handle.events().clone();
    // The listener's channel is a blocking one: a thread moves its events
    // over, and ends when the listener does (or this task stopped reading).
    let drain = tokio::task::spawn_blocking(move || {
        for event in events.iter() {
            if tx.blocking_send(event).is_err() {
                break;
            }
        }
    });

    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last: Option<Progress> = None;
    let mut pending = Vec::new();
    let mut dialed = HashSet::new();
    let mut open = true;
    let mut stopping = false;
    // Time spent sending so far: while it sends, the run's time; at the
    // end, the report's exact figure.
    let mut sending = Duration::ZERO;
    loop {
        tokio::select! {
            () = signals.ended(), if !stopping => {
                handle.stop();
                stopping = true;
            }
            found = findings.recv(), if open => match found {
                Some(event) => {
                    take(ctx, job.id, event, &mut pending, &mut dialed);
                    if pending.len() >= BATCH {
                        store_findings(ctx, job.id, &mut pending).await;
                    }
                }
                None => open = false,
            },
            _ = tick.tick() => {
                store_findings(ctx, job.id, &mut pending).await;
                let now = handle.progress();
                if now.phase == widescan::Phase::Sending {
                    sending = now.elapsed;
                }
                report(ctx, job, &now, last.as_ref(), &adapter, figures, sending).await;
                last = Some(now);
                if !open && handle.is_finished() {
                    break;
                }
            }
        }
    }
    let _ = drain.await;
    store_findings(ctx, job.id, &mut pending).await;
    let end = handle.progress();
    // Finished: joining returns at once, but it is a thread join.
    let joined = tokio::task::spawn_blocking(move || handle.join())
        .await
        .map_err(|e| format!("the scan ended abnormally: {e}"))?;
    // The report has the exact time spent sending; without one (the scan
    // failed) the last progress stands.
    if let Ok(r) = &joined {
        sending = r.send_elapsed;
    }
    report(ctx, job, &end, last.as_ref(), &adapter, figures, sending).await;
    Ok(joined.map_err(|e| e.to_string())?.completed)
}

/// The library's scan for this run.
fn build(ctx: &JobContext, job: &JobStart) -> Result<Scan, String> {
    let spec = &job.spec;
    let port = ctx
        .node
        .as_ref()
        .and_then(|n| n.network().local_addr())
        .map(|a| a.port())
        .ok_or("the embedded node is not listening: nothing to announce")?;
    let contact = Contact::new(spec.contact.clone()).map_err(|e| e.to_string())?;
    let identity = widescan::Identity::random(port, contact).map_err(|e| e.to_string())?;
    // The policy of now: a job stored in test mode does not resume once
    // test mode is off.
    let targets = spec
        .targets(ctx.config.test_mode)
        .map_err(|e| e.to_string())?;
    let mut builder = Scan::builder(targets, identity)
        .seed(spec.seed)
        .shard(spec.shard())
        .hardware(spec.hardware_mode())
        .rate(spec.rate)
        .per_subnet_rate(spec.per_subnet_rate)
        .transport(spec.transport())
        .memory_limit(ctx.config.memory_limit)
        .cooldown(ctx.config.cooldown);
    if job.checkpoint > job.range.start {
        builder = builder.resume_from(job.checkpoint);
    }
    if let Some(interface) = &spec.interface {
        builder = builder.interface(interface.clone());
    }
    if let Some(source) = spec.source {
        builder = builder.source(source);
    }
    let scan = builder.build().map_err(|e| e.to_string())?;
    if scan.range()
        != (IndexRange {
            start: job.checkpoint,
            end: job.range.end,
        })
    {
        // The space changed under the job (it cannot, for one spec): refuse
        // rather than probe another range.
        return Err("the job's address space no longer matches its stored range".into());
    }
    Ok(scan)
}

/// Takes one finding: a result row, and for an instance a dial by the node.
fn take(
    ctx: &Arc<JobContext>,
    job: i64,
    event: Event,
    pending: &mut Vec<ScanResultRecord>,
    dialed: &mut HashSet<SocketAddr>,
) {
    match event {
        Event::Hit { addr, unix_ms } => pending.push(ScanResultRecord {
            id: 0,
            kind: "hit".into(),
            addr: addr.to_string(),
            instance_id: String::new(),
            port: 0,
            contact: String::new(),
            via: String::new(),
            at_ms: i64::try_from(unix_ms).unwrap_or(i64::MAX),
        }),
        Event::Peer(peer) => {
            pending.push(ScanResultRecord {
                id: 0,
                kind: "peer".into(),
                addr: peer.addr.to_string(),
                instance_id: format!("{:016x}", peer.instance_id),
                port: i64::from(peer.tcp_port),
                contact: peer.contact.clone(),
                via: peer.via.as_str().into(),
                at_ms: i64::try_from(peer.unix_ms).unwrap_or(i64::MAX),
            });
            let addr = SocketAddr::new(IpAddr::V6(peer.addr), peer.tcp_port);
            if dialed.len() < MAX_DIALED && dialed.insert(addr) {
                hand_to_node(ctx, job, addr);
            }
        }
        // Later kinds of event carry nothing a job keeps.
        _ => {}
    }
}

/// The node dials the instance, gated as discovery's dials are; the
/// outcome is a feed entry.
fn hand_to_node(ctx: &Arc<JobContext>, job: i64, addr: SocketAddr) {
    let Some(node) = ctx.node.clone() else {
        return;
    };
    let dials = ctx.dials.clone();
    let feed = ctx.clone();
    ctx.tasks.spawn(async move {
        let Ok(_permit) = dials.acquire_owned().await else {
            return;
        };
        let text = match node.network().dial_scanned(addr).await {
            Ok(peer) => {
                let pending = node
                    .network()
                    .channel(&peer)
                    .is_some_and(|c| c.state == p2pnet::proto::ChannelState::PendingApproval);
                format!(
                    "scan job {job} found an instance at {addr}: peer {peer}{}",
                    if pending { ", awaiting approval" } else { "" }
                )
            }
            Err(e) => format!("scan job {job} found an instance at {addr}; no channel: {e}"),
        };
        tracing::info!(job, %addr, "{text}");
        publish(&feed, "widescan.peer", text, false);
    });
}

/// Stores the waiting findings in one transaction; on a database error
/// they are logged and dropped (the scan goes on).
async fn store_findings(ctx: &JobContext, job: i64, pending: &mut Vec<ScanResultRecord>) {
    if pending.is_empty() {
        return;
    }
    let batch = std::mem::take(pending);
    match ctx
        .store
        .store_scan_results(job, &batch, ctx.config.max_results_per_job)
        .await
    {
        Ok(stored) if stored.dropped > 0 => tracing::warn!(
            job,
            dropped = stored.dropped,
            "findings past widescan.max_results_per_job were counted, not stored"
        ),
        Ok(_) => {}
        Err(e) => {
            tracing::error!(job, error = %e, lost = batch.len(), "cannot store scan findings")
        }
    }
}

/// Stores the figures and the checkpoint, and sends them on the feed.
async fn report(
    ctx: &JobContext,
    job: &JobStart,
    now: &Progress,
    last: Option<&Progress>,
    adapter: &str,
    figures: &Mutex<LiveFigures>,
    sending: Duration,
) {
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let update = ScanProgressUpdate {
        checkpoint: now.checkpoint.to_string(),
        sent: job.base.sent.saturating_add(count(now.sent)),
        received: job.base.received.saturating_add(count(now.received)),
        send_errors: job.base.send_errors.saturating_add(count(now.send_errors)),
        send_ms: job
            .base
            .send_ms
            .saturating_add(i64::try_from(sending.as_millis()).unwrap_or(i64::MAX)),
        adapter: adapter.to_owned(),
        generated_per_sec: now.generated_per_sec() as i64,
        at_ms: now_ms(),
    };
    if let Err(e) = ctx.store.update_scan_progress(job.id, &update).await {
        tracing::error!(job = job.id, error = %e, "cannot store the scan job's progress");
    }
    let rates = last.map(|l| now.rates_since(l));
    let live = LiveFigures {
        sent_per_sec: rates.map_or(0, |r| r.sent_per_sec.round() as u64),
        received_per_sec: rates.map_or(0, |r| r.received_per_sec.round() as u64),
        eta_secs: now.eta().map(|d| d.as_secs()),
    };
    *figures.lock().unwrap_or_else(PoisonError::into_inner) = live;
    let permille = super::views::permille(now.checkpoint - job.range.start, job.range.len());
    publish(
        ctx,
        app::api::SCAN_PROGRESS,
        format!(
            "scan job {}: {}.{}% · {} sent/s · {} received/s",
            job.id,
            permille / 10,
            permille % 10,
            live.sent_per_sec,
            live.received_per_sec
        ),
        true,
    );
}

/// A live event, when the node (and its feed) runs; `transient` ones are
/// not kept for late subscribers.
fn publish(ctx: &JobContext, kind: &'static str, text: String, transient: bool) {
    let Some(node) = &ctx.node else {
        return;
    };
    let draft = Draft {
        kind,
        peer: None,
        text,
    };
    if transient {
        node.live().publish_transient(draft);
    } else {
        node.live().publish(draft);
    }
}
