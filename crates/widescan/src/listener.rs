//! The listener: an independent raw ICMPv6 socket that turns replies into hits and
//! other instances' probes into peers.
//!
//! It runs on its own thread, classifies every echo message with
//! [`ProbeCodec::classify`] (pure, so tested without sockets), de-duplicates, and
//! delivers [`Event`]s through a bounded channel. When the channel is full it waits
//! (checking for stop) rather than dropping: the host application sets the pace,
//! and the kernel's socket buffer absorbs short stalls.
//!
//! Answers to other instances' probes leave from the address the probe was sent to
//! (`IPV6_PKTINFO`), because the prober verifies an answer against the address it
//! probed. They are rate-limited and sent at most once per (source, probe MAC), so
//! spoofed probes cannot turn the listener into an amplifier: one answer per probe,
//! of similar size, at a bounded rate.

use std::collections::HashSet;
use std::net::Ipv6Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{SendTimeoutError, Sender};
use socket2::Socket;

use crate::error::{Error, Result};
use crate::event::{Event, Peer, PeerVia, unix_ms_now};
use crate::probe::{
    Discovery, ECHO_REPLY, ECHO_REQUEST, Ignored, Inbound, MAX_MESSAGE_LEN, ProbeCodec,
};
use crate::rate::TokenBucket;
use crate::sys::{self, SocketOptions};

/// The receiving end of the event channel.
pub type EventReceiver = crossbeam_channel::Receiver<Event>;

/// Listener settings.
#[derive(Clone, Debug)]
pub struct ListenerOptions {
    /// Restrict to one interface (`SO_BINDTODEVICE`); `None` listens on all.
    pub interface: Option<String>,
    /// Answers to other instances per second (default 100).
    pub answer_rate: u32,
    /// Addresses remembered for de-duplication (default 16 Mi, about 0.5 GiB at
    /// worst). Past it, new hits are still reported but may repeat.
    pub dedup_capacity: usize,
    /// Event channel capacity (default 64 Ki).
    pub event_capacity: usize,
    /// Socket receive buffer request in bytes (default 8 MiB; the kernel clamps it
    /// to `net.core.rmem_max`).
    pub recv_buffer: usize,
}

impl Default for ListenerOptions {
    fn default() -> Self {
        ListenerOptions {
            interface: None,
            answer_rate: 100,
            dedup_capacity: 1 << 24,
            event_capacity: 1 << 16,
            recv_buffer: 8 << 20,
        }
    }
}

/// Listener counters, readable while it runs.
#[derive(Debug, Default)]
pub(crate) struct ListenerCounters {
    pub(crate) received: AtomicU64,
    pub(crate) hits: AtomicU64,
    pub(crate) duplicate_hits: AtomicU64,
    pub(crate) peers: AtomicU64,
    pub(crate) answers_sent: AtomicU64,
    pub(crate) answers_suppressed: AtomicU64,
    pub(crate) malformed: AtomicU64,
    pub(crate) bad_mac: AtomicU64,
    pub(crate) own: AtomicU64,
    pub(crate) foreign: AtomicU64,
    pub(crate) unsolicited: AtomicU64,
    pub(crate) events_dropped: AtomicU64,
}

/// A snapshot of the listener's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListenerStats {
    /// Echo messages read from the socket.
    pub received: u64,
    /// Distinct live hosts reported.
    pub hits: u64,
    /// Valid replies from hosts already reported.
    pub duplicate_hits: u64,
    /// Distinct peers reported.
    pub peers: u64,
    /// Answers sent to other instances.
    pub answers_sent: u64,
    /// Answers not sent (rate limit or repeat).
    pub answers_suppressed: u64,
    /// Echo messages without a valid discovery payload (plain pings, garbage).
    pub malformed: u64,
    /// Replies with our instance id but a wrong MAC.
    pub bad_mac: u64,
    /// Our own probes.
    pub own: u64,
    /// Replies to other instances' probes.
    pub foreign: u64,
    /// Answers that echo no probe of ours.
    pub unsolicited: u64,
    /// Events lost because the receiver was dropped.
    pub events_dropped: u64,
}

impl ListenerCounters {
    pub(crate) fn snapshot(&self) -> ListenerStats {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ListenerStats {
            received: g(&self.received),
            hits: g(&self.hits),
            duplicate_hits: g(&self.duplicate_hits),
            peers: g(&self.peers),
            answers_sent: g(&self.answers_sent),
            answers_suppressed: g(&self.answers_suppressed),
            malformed: g(&self.malformed),
            bad_mac: g(&self.bad_mac),
            own: g(&self.own),
            foreign: g(&self.foreign),
            unsolicited: g(&self.unsolicited),
            events_dropped: g(&self.events_dropped),
        }
    }
}

/// A running listener. Dropping it stops it.
#[derive(Debug)]
pub struct Listener {
    stop: Arc<AtomicBool>,
    counters: Arc<ListenerCounters>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl Listener {
    /// Opens the socket (so a missing `CAP_NET_RAW` fails here, synchronously) and
    /// starts listening; returns the listener and its event stream.
    pub fn start(codec: ProbeCodec, options: ListenerOptions) -> Result<(Listener, EventReceiver)> {
        let (tx, rx) = crossbeam_channel::bounded(options.event_capacity.max(1));
        let l = Self::start_with(codec, options, tx)?;
        Ok((l, rx))
    }

    /// Like [`Listener::start`] but delivering into an existing channel.
    pub fn start_with(
        codec: ProbeCodec,
        options: ListenerOptions,
        events: Sender<Event>,
    ) -> Result<Listener> {
        if options.answer_rate == 0 {
            return Err(Error::InvalidConfig("answer_rate must be positive".into()));
        }
        let sock = sys::open_icmpv6(&SocketOptions {
            interface: options.interface.clone(),
            read_timeout: Some(Duration::from_millis(50)),
            write_timeout: Some(Duration::from_millis(50)),
            recv_buffer: Some(options.recv_buffer),
            pass_types: vec![ECHO_REQUEST, ECHO_REPLY],
            pktinfo: true,
            ..SocketOptions::default()
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(ListenerCounters::default());
        let state = State {
            codec,
            events,
            stop: stop.clone(),
            counters: counters.clone(),
            hits: HashSet::new(),
            peers: HashSet::new(),
            answered: HashSet::new(),
            dedup_capacity: options.dedup_capacity,
            answers: TokenBucket::new(
                f64::from(options.answer_rate),
                f64::from(options.answer_rate.div_ceil(10)),
                Instant::now(),
            ),
            dedup_full_warned: false,
        };
        let span = tracing::info_span!("widescan_listener", instance = %format!("{:016x}", state.codec.identity().instance_id()));
        let thread = std::thread::Builder::new()
            .name("widescan-listen".into())
            .spawn(move || {
                let _g = span.entered();
                state.run(&sock)
            })
            .map_err(|e| Error::io("spawning the listener thread", e))?;
        Ok(Listener {
            stop,
            counters,
            thread: Some(thread),
        })
    }

    /// Asks the listener to stop; returns at once (see [`Listener::join`]).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Current counters.
    pub fn stats(&self) -> ListenerStats {
        self.counters.snapshot()
    }

    pub(crate) fn counters(&self) -> Arc<ListenerCounters> {
        self.counters.clone()
    }

    /// Stops the listener and waits for it; returns its final counters or the error
    /// that ended it.
    pub fn join(mut self) -> Result<ListenerStats> {
        self.stop();
        let r = match self.thread.take() {
            Some(t) => t.join().map_err(|_| Error::WorkerPanicked("listener"))?,
            None => Ok(()),
        };
        r.map(|()| self.counters.snapshot())
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct State {
    codec: ProbeCodec,
    events: Sender<Event>,
    stop: Arc<AtomicBool>,
    counters: Arc<ListenerCounters>,
    hits: HashSet<u128>,
    peers: HashSet<(u128, u64)>,
    answered: HashSet<(u128, u64)>,
    dedup_capacity: usize,
    answers: TokenBucket,
    dedup_full_warned: bool,
}

impl State {
    fn run(mut self, sock: &Socket) -> Result<()> {
        tracing::debug!("listening");
        let mut buf = [0u8; 2048];
        while !self.stop.load(Ordering::Relaxed) {
            let meta = match sys::recv_with_pktinfo(sock, &mut buf) {
                Ok(Some(m)) => m,
                Ok(None) => continue,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => continue,
                Err(e) => return Err(Error::io("receiving ICMPv6", e)),
            };
            self.counters.received.fetch_add(1, Ordering::Relaxed);
            let msg = &buf[..meta.len];
            match self.codec.classify(meta.src, msg) {
                Inbound::Hit => self.on_hit(meta.src),
                Inbound::PeerProbe(d) => {
                    self.on_peer(meta.src, &d, PeerVia::Probe);
                    self.answer(sock, meta.src, meta.dst, &d);
                }
                Inbound::PeerAnswer(d) => self.on_peer(meta.src, &d, PeerVia::Answer),
                Inbound::Ignore(why) => self.count_ignored(why),
            }
        }
        tracing::debug!("listener stopped");
        Ok(())
    }

    fn remember<T: std::hash::Hash + Eq>(
        set: &mut HashSet<T>,
        cap: usize,
        v: T,
        warned: &mut bool,
    ) -> bool {
        if set.contains(&v) {
            return false;
        }
        if set.len() < cap {
            set.insert(v);
        } else if !*warned {
            *warned = true;
            tracing::warn!(cap, "de-duplication table full; later results may repeat");
        }
        true
    }

    fn on_hit(&mut self, src: Ipv6Addr) {
        if !Self::remember(
            &mut self.hits,
            self.dedup_capacity,
            u128::from(src),
            &mut self.dedup_full_warned,
        ) {
            self.counters.duplicate_hits.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.counters.hits.fetch_add(1, Ordering::Relaxed);
        tracing::trace!(addr = %src, "hit");
        self.emit(Event::Hit {
            addr: src,
            unix_ms: unix_ms_now(),
        });
    }

    fn on_peer(&mut self, src: Ipv6Addr, d: &Discovery<'_>, via: PeerVia) {
        let key = (u128::from(src), d.instance_id);
        if !Self::remember(
            &mut self.peers,
            self.dedup_capacity,
            key,
            &mut self.dedup_full_warned,
        ) {
            return;
        }
        self.counters.peers.fetch_add(1, Ordering::Relaxed);
        tracing::info!(addr = %src, port = d.tcp_port, instance = %format!("{:016x}", d.instance_id), via = via.as_str(), "peer");
        self.emit(Event::Peer(Peer {
            addr: src,
            tcp_port: d.tcp_port,
            instance_id: d.instance_id,
            contact: d.contact.to_string(),
            via,
            unix_ms: unix_ms_now(),
        }));
    }

    fn answer(
        &mut self,
        sock: &Socket,
        src: Ipv6Addr,
        local: Option<(Ipv6Addr, u32)>,
        d: &Discovery<'_>,
    ) {
        // Bounded: forgetting old entries only risks answering a repeat probe again,
        // which the rate limit still bounds.
        if self.answered.len() >= 1 << 16 {
            self.answered.clear();
        }
        if !self.answered.insert((u128::from(src), d.mac))
            || self.answers.take_up_to(1, Instant::now()) == 0
        {
            self.counters
                .answers_suppressed
                .fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        let n = self.codec.encode_answer(&src.octets(), d.mac, &mut buf);
        // Only pin the source when it is a unicast address of ours.
        let from = local.filter(|(a, _)| !a.is_multicast() && !a.is_unspecified());
        match sys::send_from(sock, &buf[..n], src, from) {
            Ok(()) => {
                self.counters.answers_sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tracing::debug!(to = %src, error = %e, "answer not sent"),
        }
    }

    fn count_ignored(&self, why: Ignored) {
        let c = match why {
            Ignored::Malformed(_) => &self.counters.malformed,
            Ignored::Own => &self.counters.own,
            Ignored::Foreign => &self.counters.foreign,
            Ignored::BadMac => &self.counters.bad_mac,
            Ignored::UnsolicitedAnswer => &self.counters.unsolicited,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    fn emit(&self, mut ev: Event) {
        loop {
            match self.events.send_timeout(ev, Duration::from_millis(50)) {
                Ok(()) => return,
                Err(SendTimeoutError::Timeout(back)) => {
                    if self.stop.load(Ordering::Relaxed) {
                        self.counters.events_dropped.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    ev = back;
                }
                Err(SendTimeoutError::Disconnected(_)) => {
                    self.counters.events_dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
    }
}
