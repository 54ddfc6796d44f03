//! The scan pipeline: generator → bounded queue → sender, with the listener on the
//! side.
//!
//! ```text
//!  generator thread ──AddrBatch──▶ [bounded queue] ──▶ sender thread ──▶ raw socket
//!        ▲                                                  │
//!        └──────────── recycled Vec<Octets> ◀───────────────┘
//!  listener thread ◀── raw socket (independent) ──▶ Event channel ──▶ host application
//! ```
//!
//! The queue holds at most `memory_limit` bytes of addresses, so generation (which
//! is orders of magnitude faster than any permitted send rate) simply waits. Buffers
//! are recycled, so the steady state allocates nothing.
//!
//! A checkpoint is the index of the first address not yet handed to the kernel; a
//! scan built with the same targets and seed and `resume_from(checkpoint)` continues
//! exactly there, with no gap and no repeat.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, SendTimeoutError, Sender, bounded};

use crate::error::{Error, Result};
use crate::generate::{
    ActiveHardware, AddressSpace, Generator, GeneratorOptions, HardwareMode, IndexRange, Octets,
    Shard,
};
use crate::listener::{ErrorCounts, EventReceiver, Listener, ListenerCounters, ListenerOptions};
use crate::prefix::TargetSet;
use crate::probe::{Identity, ProbeCodec, RunKey};
use crate::sender::{ProbeSender, SenderCounters, SenderOptions};

/// Builds a [`Scan`]. Targets and identity are required; everything else has a
/// safe default (10 000 probes/s, 100 per /64, random seed and run key).
#[derive(Clone, Debug)]
pub struct ScanBuilder {
    targets: TargetSet,
    identity: Identity,
    seed: Option<u64>,
    shard: Shard,
    resume_from: Option<u128>,
    hardware: HardwareMode,
    memory_limit: usize,
    batch_len: usize,
    key: Option<RunKey>,
    sender: SenderOptions,
    listener: ListenerOptions,
    listen: bool,
    cooldown: Duration,
}

impl ScanBuilder {
    /// Seed of the scan order (default: random; read it back from the report to
    /// resume).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Scan only this shard of the index space.
    pub fn shard(mut self, shard: Shard) -> Self {
        self.shard = shard;
        self
    }

    /// Continue from a checkpoint of an earlier run (same targets, seed and shard).
    pub fn resume_from(mut self, checkpoint: u128) -> Self {
        self.resume_from = Some(checkpoint);
        self
    }

    /// Where addresses are generated (default [`HardwareMode::Auto`]).
    pub fn hardware(mut self, mode: HardwareMode) -> Self {
        self.hardware = mode;
        self
    }

    /// Upper bound on bytes of generated addresses in flight (default 64 MiB).
    pub fn memory_limit(mut self, bytes: usize) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// Addresses per generated batch (default 64 Ki; lowered to fit the memory limit).
    pub fn batch_len(mut self, n: usize) -> Self {
        self.batch_len = n;
        self
    }

    /// Run key for probe MACs (default: random per run).
    pub fn run_key(mut self, key: RunKey) -> Self {
        self.key = Some(key);
        self
    }

    /// Global probe rate (default 10 000/s).
    pub fn rate(mut self, pps: u32) -> Self {
        self.sender.rate_pps = pps;
        self
    }

    /// Per-/64 probe rate (default 100/s); `None` disables the cap.
    pub fn per_subnet_rate(mut self, pps: Option<u32>) -> Self {
        self.sender.per_subnet_pps = pps;
        self
    }

    /// All sender options at once.
    pub fn sender_options(mut self, options: SenderOptions) -> Self {
        self.sender = options;
        self
    }

    /// All listener options at once. The scan sets
    /// [`ListenerOptions::hit_targets`] to its own targets, and an unset
    /// [`ListenerOptions::answer_policy`] to their policy.
    pub fn listener_options(mut self, options: ListenerOptions) -> Self {
        self.listener = options;
        self
    }

    /// Send and listen on one interface only.
    pub fn interface(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.sender.interface = Some(name.clone());
        self.listener.interface = Some(name);
        self
    }

    /// How probes leave (default: the kernel transport, a raw ICMPv6 socket).
    pub fn transport(mut self, transport: crate::sender::Transport) -> Self {
        self.sender.transport = transport;
        self
    }

    /// Source address for probes (default: chosen by the kernel per route).
    pub fn source(mut self, addr: std::net::Ipv6Addr) -> Self {
        self.sender.source = Some(addr);
        self
    }

    /// Whether to run the listener (default true). Without it nothing is learned;
    /// useful when a separate [`Listener`] with the same codec is already running.
    pub fn listen(mut self, enabled: bool) -> Self {
        self.listen = enabled;
        self
    }

    /// How long to keep listening after the last probe (default 3 s).
    pub fn cooldown(mut self, d: Duration) -> Self {
        self.cooldown = d;
        self
    }

    /// Validates everything and fixes the index range.
    pub fn build(self) -> Result<Scan> {
        self.sender.validate()?;
        if self.memory_limit < 64 * 16 {
            return Err(Error::InvalidConfig("memory limit below 1 KiB".into()));
        }
        if self.batch_len == 0 {
            return Err(Error::InvalidConfig("batch length must be positive".into()));
        }
        self.listener.validate()?;
        let seed = match self.seed {
            Some(s) => s,
            None => {
                let mut b = [0u8; 8];
                getrandom::fill(&mut b).map_err(|e| Error::io("reading random bytes", e.into()))?;
                u64::from_le_bytes(b)
            }
        };
        let key = match self.key {
            Some(k) => k,
            None => RunKey::random()?,
        };
        let space = AddressSpace::new(self.targets, seed)?;
        let mut range = self.shard.range(space.len());
        if let Some(c) = self.resume_from {
            range = range.resume_from(c)?;
        }
        // Three batches live at once outside the queue (generating, sending, spare).
        // The checkpoint moves once per batch sent, so a batch is at most a
        // tenth of a second of probes: progress (and the checkpoint a crash
        // would resume from) stays current at any rate.
        let per_tenth = (self.sender.rate_pps / 10) as usize;
        let batch_len = self
            .batch_len
            .min(self.memory_limit / 16 / 4)
            .min(per_tenth)
            .max(64);
        let queue = (self.memory_limit / (batch_len * 16))
            .saturating_sub(3)
            .max(1);
        Ok(Scan {
            space,
            range,
            seed,
            codec: ProbeCodec::new(key, self.identity),
            hardware: self.hardware,
            batch_len,
            queue,
            sender: self.sender,
            listener: self.listener,
            listen: self.listen,
            cooldown: self.cooldown,
        })
    }
}

/// A validated scan, ready to start.
#[derive(Clone, Debug)]
pub struct Scan {
    space: AddressSpace,
    range: IndexRange,
    seed: u64,
    codec: ProbeCodec,
    hardware: HardwareMode,
    batch_len: usize,
    queue: usize,
    sender: SenderOptions,
    listener: ListenerOptions,
    listen: bool,
    cooldown: Duration,
}

impl Scan {
    /// Starts building a scan of `targets`, announcing `identity`.
    pub fn builder(targets: TargetSet, identity: Identity) -> ScanBuilder {
        ScanBuilder {
            targets,
            identity,
            seed: None,
            shard: Shard::WHOLE,
            resume_from: None,
            hardware: HardwareMode::Auto,
            memory_limit: 64 << 20,
            batch_len: 1 << 16,
            key: None,
            sender: SenderOptions::default(),
            listener: ListenerOptions::default(),
            listen: true,
            cooldown: Duration::from_secs(3),
        }
    }

    /// The permuted target space.
    pub fn space(&self) -> &AddressSpace {
        &self.space
    }

    /// The indices this run covers.
    pub fn range(&self) -> IndexRange {
        self.range
    }

    /// The seed in use.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The probe codec (identity and run key), e.g. for a separate [`Listener`].
    pub fn codec(&self) -> &ProbeCodec {
        &self.codec
    }

    /// The listener's options with this scan's policy: replies count only from its
    /// targets, and probes are answered from the sources its policy admits unless
    /// the caller chose an answer policy.
    fn listener_options(&self) -> ListenerOptions {
        let targets = self.space.targets();
        ListenerOptions {
            answer_policy: Some(
                self.listener
                    .answer_policy
                    .clone()
                    .unwrap_or_else(|| targets.policy().clone()),
            ),
            hit_targets: Some(targets.clone()),
            ..self.listener.clone()
        }
    }

    /// Opens the sockets and the generator, then starts the threads. Fails fast on
    /// missing permissions or an unavailable explicit GPU.
    pub fn start(self) -> Result<ScanHandle> {
        let span = tracing::info_span!("widescan", seed = self.seed, start = %self.range.start, end = %self.range.end);
        let _g = span.enter();
        let (event_tx, event_rx) = bounded(self.listener.event_capacity.max(1));
        // Listen first so no early reply is missed.
        let listener = if self.listen {
            Some(Listener::start_with(
                self.codec.clone(),
                self.listener_options(),
                event_tx,
            )?)
        } else {
            drop(event_tx);
            None
        };
        let sender = ProbeSender::open(
            self.codec.clone(),
            self.space.targets(),
            self.sender.clone(),
        )?;
        let generator = Generator::with_options(
            self.space.clone(),
            GeneratorOptions {
                mode: self.hardware,
                max_gpu_batch: self.batch_len,
            },
        )?;
        let hardware = generator.hardware();
        tracing::info!(%hardware, targets = %self.range.len(), rate = self.sender.rate_pps, "scan starting");

        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            phase: AtomicU8::new(PHASE_SENDING),
            checkpoint: Mutex::new(self.range.start),
            sender: sender.counters(),
            listener: listener.as_ref().map(Listener::counters),
            started: Instant::now(),
            send_elapsed: Mutex::new(None),
            generated: AtomicU64::new(0),
            generate_busy_ns: AtomicU64::new(0),
        });
        let (work_tx, work_rx) = bounded::<AddrBatch>(self.queue);
        let (recycle_tx, recycle_rx) = bounded::<Vec<Octets>>(self.queue + 3);

        let gen_thread = spawn("widescan-gen", span.clone(), {
            let shared = shared.clone();
            let (range, batch_len) = (self.range, self.batch_len);
            move || generate(generator, range, batch_len, &work_tx, &recycle_rx, &shared)
        })?;
        let send_thread = spawn("widescan-send", span.clone(), {
            let shared = shared.clone();
            move || send(sender, &work_rx, &recycle_tx, &shared)
        })?;
        let coordinator = spawn("widescan-scan", span.clone(), {
            let shared = shared.clone();
            let cooldown = self.cooldown;
            move || coordinate(gen_thread, send_thread, listener, cooldown, &shared)
        })?;
        Ok(ScanHandle {
            events: event_rx,
            shared,
            coordinator: Some(coordinator),
            range: self.range,
            seed: self.seed,
            hardware,
        })
    }
}

/// A contiguous run of generated addresses, starting at scan index `start`.
struct AddrBatch {
    start: u128,
    addrs: Vec<Octets>,
}

const PHASE_SENDING: u8 = 0;
const PHASE_COOLDOWN: u8 = 1;
const PHASE_FINISHED: u8 = 2;

struct Shared {
    stop: AtomicBool,
    phase: AtomicU8,
    checkpoint: Mutex<u128>,
    sender: Arc<SenderCounters>,
    listener: Option<Arc<ListenerCounters>>,
    started: Instant,
    send_elapsed: Mutex<Option<Duration>>,
    /// Addresses generated, and the time spent generating them: the
    /// generator's own rate, whatever the send rate lets it do.
    generated: AtomicU64,
    generate_busy_ns: AtomicU64,
}

impl Shared {
    fn checkpoint(&self) -> u128 {
        *self
            .checkpoint
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

fn spawn<T: Send + 'static>(
    name: &str,
    span: tracing::Span,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<JoinHandle<T>> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let _g = span.entered();
            f()
        })
        .map_err(|e| Error::io("spawning a scan thread", e))
}

fn generate(
    mut generator: Generator,
    range: IndexRange,
    batch_len: usize,
    work: &Sender<AddrBatch>,
    recycle: &Receiver<Vec<Octets>>,
    shared: &Shared,
) -> Result<()> {
    let mut next = range.start;
    while next < range.end && !shared.stop.load(Ordering::Relaxed) {
        let len = usize::try_from(range.end - next).map_or(batch_len, |left| left.min(batch_len));
        let mut addrs = recycle
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(batch_len));
        addrs.resize(len, [0; 16]);
        let began = Instant::now();
        generator.fill(next, &mut addrs)?;
        let busy = u64::try_from(began.elapsed().as_nanos()).unwrap_or(u64::MAX);
        shared.generate_busy_ns.fetch_add(busy, Ordering::Relaxed);
        shared.generated.fetch_add(len as u64, Ordering::Relaxed);
        let mut batch = AddrBatch { start: next, addrs };
        loop {
            match work.send_timeout(batch, Duration::from_millis(50)) {
                Ok(()) => break,
                Err(SendTimeoutError::Timeout(b)) => {
                    if shared.stop.load(Ordering::Relaxed) {
                        return Ok(());
                    }
                    batch = b;
                }
                // The sender is gone (it failed); it reports its own error.
                Err(SendTimeoutError::Disconnected(_)) => return Ok(()),
            }
        }
        next += len as u128;
    }
    Ok(())
}

fn send(
    mut sender: ProbeSender,
    work: &Receiver<AddrBatch>,
    recycle: &Sender<Vec<Octets>>,
    shared: &Shared,
) -> Result<()> {
    let started = Instant::now();
    let result = (|| {
        for batch in work {
            let outcome = sender.send(&batch.addrs, &shared.stop)?;
            *shared
                .checkpoint
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = batch.start + outcome.handled as u128;
            if outcome.handled < batch.addrs.len() {
                break;
            }
            let _ = recycle.try_send(batch.addrs);
        }
        Ok(())
    })();
    *shared
        .send_elapsed
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = Some(started.elapsed());
    if result.is_err() {
        shared.stop.store(true, Ordering::Relaxed);
    }
    result
}

fn coordinate(
    gen_thread: JoinHandle<Result<()>>,
    send_thread: JoinHandle<Result<()>>,
    listener: Option<Listener>,
    cooldown: Duration,
    shared: &Shared,
) -> Result<()> {
    let gen_result = gen_thread
        .join()
        .map_err(|_| Error::WorkerPanicked("generator"));
    if !matches!(gen_result, Ok(Ok(()))) {
        shared.stop.store(true, Ordering::Relaxed);
    }
    let send_result = send_thread
        .join()
        .map_err(|_| Error::WorkerPanicked("sender"));
    shared.phase.store(PHASE_COOLDOWN, Ordering::Relaxed);
    let until = Instant::now() + cooldown;
    while Instant::now() < until && !shared.stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let listen_result = listener.map(Listener::join).transpose();
    shared.phase.store(PHASE_FINISHED, Ordering::Relaxed);
    gen_result??;
    send_result??;
    listen_result?;
    Ok(())
}

/// Where a scan is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Probes are being sent.
    Sending,
    /// All probes are out; still listening for late replies.
    Cooldown,
    /// Done (or stopped).
    Finished,
}

/// A point-in-time view of a running scan.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Progress {
    /// Phase.
    pub phase: Phase,
    /// Since start.
    pub elapsed: Duration,
    /// Indices this run covers.
    pub total: u128,
    /// Indices handled so far.
    pub done: u128,
    /// Next index to send (resume from here).
    pub checkpoint: u128,
    /// Probes accepted by the kernel.
    pub sent: u64,
    /// Probes that could not be sent (no route, …).
    pub send_errors: u64,
    /// ICMPv6 messages (echo and error) the listener read.
    pub received: u64,
    /// Distinct live hosts.
    pub hits: u64,
    /// Distinct peers.
    pub peers: u64,
    /// ICMPv6 errors about our probes, per type (never hits).
    pub errors: ErrorCounts,
    /// Addresses generated so far (ahead of `done` by what is queued).
    pub generated: u64,
    /// Time the generator spent generating them.
    pub generate_busy: Duration,
}

/// Rates between two [`Progress`] snapshots.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rates {
    /// Probes sent per second.
    pub sent_per_sec: f64,
    /// ICMPv6 messages received per second.
    pub received_per_sec: f64,
}

impl Progress {
    /// Fraction done, 0.0 to 1.0.
    pub fn fraction(&self) -> f64 {
        if self.total == 0 {
            1.0
        } else {
            self.done as f64 / self.total as f64
        }
    }

    /// Estimated time to send the rest at the average rate so far.
    pub fn eta(&self) -> Option<Duration> {
        if self.done == 0 || self.phase != Phase::Sending {
            return (self.phase != Phase::Sending).then_some(Duration::ZERO);
        }
        let per_index = self.elapsed.as_secs_f64() / self.done as f64;
        let left = (self.total - self.done.min(self.total)) as f64 * per_index;
        (left.is_finite() && left < 1e12).then(|| Duration::from_secs_f64(left))
    }

    /// Addresses the generator makes a second while it works (0 before
    /// its first batch).
    pub fn generated_per_sec(&self) -> f64 {
        let busy = self.generate_busy.as_secs_f64();
        if busy > 0.0 {
            self.generated as f64 / busy
        } else {
            0.0
        }
    }

    /// Rates since an earlier snapshot of the same scan.
    pub fn rates_since(&self, earlier: &Progress) -> Rates {
        let dt = self.elapsed.saturating_sub(earlier.elapsed).as_secs_f64();
        if dt <= 0.0 {
            return Rates {
                sent_per_sec: 0.0,
                received_per_sec: 0.0,
            };
        }
        Rates {
            sent_per_sec: self.sent.saturating_sub(earlier.sent) as f64 / dt,
            received_per_sec: self.received.saturating_sub(earlier.received) as f64 / dt,
        }
    }
}

/// The outcome of a scan.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ScanReport {
    /// Seed used (needed to resume).
    pub seed: u64,
    /// The range this run covered.
    pub range: IndexRange,
    /// First index not handled: `range.end` when complete.
    pub checkpoint: u128,
    /// Whether every index of the range was handled.
    pub completed: bool,
    /// Probes the kernel accepted.
    pub sent: u64,
    /// Probes that could not be sent.
    pub send_errors: u64,
    /// Distinct live hosts.
    pub hits: u64,
    /// Distinct peers.
    pub peers: u64,
    /// ICMPv6 errors about our probes, per type (never hits).
    pub errors: ErrorCounts,
    /// ICMPv6 messages (echo and error) the listener read.
    pub received: u64,
    /// Whole run, cooldown included.
    pub elapsed: Duration,
    /// Time spent sending.
    pub send_elapsed: Duration,
    /// Where addresses were generated.
    pub hardware: ActiveHardware,
}

/// A running scan. Dropping it stops the scan and waits for its threads.
pub struct ScanHandle {
    events: EventReceiver,
    shared: Arc<Shared>,
    coordinator: Option<JoinHandle<Result<()>>>,
    range: IndexRange,
    seed: u64,
    hardware: ActiveHardware,
}

impl std::fmt::Debug for ScanHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScanHandle")
            .field("range", &self.range)
            .field("seed", &self.seed)
            .field("progress", &self.progress())
            .finish_non_exhaustive()
    }
}

impl ScanHandle {
    /// Hits and peers, as they are found. Consume them: when the channel is full
    /// the listener waits.
    pub fn events(&self) -> &EventReceiver {
        &self.events
    }

    /// The seed in use.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Where addresses are generated.
    pub fn hardware(&self) -> &ActiveHardware {
        &self.hardware
    }

    /// A progress snapshot.
    pub fn progress(&self) -> Progress {
        let s = &self.shared;
        let phase = match s.phase.load(Ordering::Relaxed) {
            PHASE_SENDING => Phase::Sending,
            PHASE_COOLDOWN => Phase::Cooldown,
            _ => Phase::Finished,
        };
        let l = s
            .listener
            .as_ref()
            .map(|c| c.snapshot())
            .unwrap_or_default();
        let checkpoint = s.checkpoint();
        Progress {
            phase,
            elapsed: s.started.elapsed(),
            total: self.range.len(),
            done: checkpoint - self.range.start,
            checkpoint,
            sent: s.sender.sent.load(Ordering::Relaxed),
            send_errors: s.sender.failed.load(Ordering::Relaxed),
            received: l.received,
            hits: l.hits,
            peers: l.peers,
            errors: l.errors,
            generated: s.generated.load(Ordering::Relaxed),
            generate_busy: Duration::from_nanos(s.generate_busy_ns.load(Ordering::Relaxed)),
        }
    }

    /// Whether the scan has finished (cooldown included).
    pub fn is_finished(&self) -> bool {
        self.shared.phase.load(Ordering::Relaxed) == PHASE_FINISHED
    }

    /// Stops sending and listening promptly; the checkpoint says where to resume.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }

    /// Waits for the scan to end. Events still queued stay readable from
    /// [`ScanHandle::events`] until the handle is dropped, so call this after
    /// draining, or drain a clone of the receiver on another thread.
    pub fn join(mut self) -> Result<ScanReport> {
        let result = match self.coordinator.take() {
            Some(t) => t.join().map_err(|_| Error::WorkerPanicked("coordinator"))?,
            None => Ok(()),
        };
        result?;
        let p = self.progress();
        let send_elapsed = self
            .shared
            .send_elapsed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .unwrap_or_default();
        Ok(ScanReport {
            seed: self.seed,
            range: self.range,
            checkpoint: p.checkpoint,
            completed: p.checkpoint == self.range.end,
            sent: p.sent,
            send_errors: p.send_errors,
            hits: p.hits,
            peers: p.peers,
            errors: p.errors,
            received: p.received,
            elapsed: p.elapsed,
            send_elapsed,
            hardware: self.hardware.clone(),
        })
    }
}

impl Drop for ScanHandle {
    fn drop(&mut self) {
        if let Some(t) = self.coordinator.take() {
            self.stop();
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Contact;

    fn targets() -> TargetSet {
        TargetSet::builder()
            .prefix("2a00::/120".parse().expect("prefix"))
            .build()
            .expect("targets")
    }

    fn identity() -> Identity {
        Identity::new(1, 4000, Contact::default()).expect("identity")
    }

    #[test]
    fn builder_validates_and_computes_ranges() {
        let s = Scan::builder(targets(), identity())
            .seed(5)
            .shard(Shard::new(1, 4).expect("shard"))
            .resume_from(70)
            .build()
            .expect("scan");
        assert_eq!(
            s.range(),
            IndexRange {
                start: 70,
                end: 128
            }
        );
        assert_eq!(s.seed(), 5);
        let bad = |b: ScanBuilder| b.build().expect_err("invalid");
        assert!(matches!(
            bad(Scan::builder(targets(), identity()).rate(0)),
            Error::InvalidConfig(_)
        ));
        assert!(matches!(
            bad(Scan::builder(targets(), identity()).per_subnet_rate(Some(0))),
            Error::InvalidConfig(_)
        ));
        assert!(matches!(
            bad(Scan::builder(targets(), identity()).memory_limit(10)),
            Error::InvalidConfig(_)
        ));
        assert!(matches!(
            bad(Scan::builder(targets(), identity()).batch_len(0)),
            Error::InvalidConfig(_)
        ));
        assert!(matches!(
            bad(Scan::builder(targets(), identity())
                .shard(Shard::new(0, 2).expect("shard"))
                .resume_from(200)),
            Error::InvalidRange(_)
        ));
    }

    #[test]
    fn the_listener_gets_the_scans_targets_and_policy() {
        let test_targets = TargetSet::builder()
            .prefix("fd00:5ca7:1::/120".parse().expect("prefix"))
            .exclude("fd00:5ca7:1::1/128".parse().expect("prefix"))
            .test_mode(true)
            .build()
            .expect("targets");
        let s = Scan::builder(test_targets.clone(), identity())
            .build()
            .expect("scan");
        let o = s.listener_options();
        assert_eq!(o.hit_targets.as_ref(), Some(&test_targets));
        assert_eq!(o.answer_policy.as_ref(), Some(test_targets.policy()));

        // A chosen answer policy stays; the hit targets are always the scan's own.
        let s = Scan::builder(targets(), identity())
            .listener_options(ListenerOptions {
                answer_policy: Some(crate::prefix::AddressPolicy::default().test_mode(true)),
                hit_targets: Some(test_targets),
                ..ListenerOptions::default()
            })
            .build()
            .expect("scan");
        let o = s.listener_options();
        assert!(o.answer_policy.is_some_and(|p| p.is_test_mode()));
        assert_eq!(o.hit_targets, Some(targets()));
        assert!(matches!(
            Scan::builder(targets(), identity())
                .listener_options(ListenerOptions {
                    subnet_answers_per_minute: 0,
                    ..ListenerOptions::default()
                })
                .build(),
            Err(Error::InvalidConfig(_))
        ));
    }

    #[test]
    fn batches_hold_a_tenth_of_a_second_of_probes() {
        let batch = |rate| {
            Scan::builder(targets(), identity())
                .rate(rate)
                .build()
                .expect("scan")
                .batch_len
        };
        assert_eq!(batch(10_000), 1000);
        assert_eq!(batch(20), 64, "never below 64");
        assert_eq!(batch(10_000_000), 1 << 16, "never above the batch length");
    }

    #[test]
    fn memory_limit_bounds_batches_and_queue() {
        let s = Scan::builder(targets(), identity())
            .memory_limit(1 << 20)
            .batch_len(1 << 20)
            .rate(100_000_000)
            .build()
            .expect("scan");
        assert!(s.batch_len * 16 * (s.queue + 3) <= 1 << 20 || s.queue == 1);
        assert_eq!(s.batch_len, (1 << 20) / 64);
    }

    #[test]
    fn progress_math() {
        let p = Progress {
            phase: Phase::Sending,
            elapsed: Duration::from_secs(10),
            total: 1000,
            done: 250,
            checkpoint: 250,
            sent: 250,
            send_errors: 0,
            received: 40,
            hits: 3,
            peers: 1,
            errors: ErrorCounts::default(),
            generated: 1000,
            generate_busy: Duration::from_millis(2),
        };
        assert!((p.fraction() - 0.25).abs() < 1e-9);
        assert!((p.generated_per_sec() - 500_000.0).abs() < 1e-6);
        assert_eq!(p.eta(), Some(Duration::from_secs(30)));
        let earlier = Progress {
            elapsed: Duration::from_secs(5),
            sent: 100,
            received: 20,
            ..p
        };
        let r = p.rates_since(&earlier);
        assert!((r.sent_per_sec - 30.0).abs() < 1e-9);
        assert!((r.received_per_sec - 4.0).abs() < 1e-9);
    }
}
