//! The listener: an independent raw ICMPv6 socket that turns replies into hits and
//! other instances' probes into peers.
//!
//! It runs on its own thread, classifies every echo and error message with
//! [`ProbeCodec::classify`] (pure, so tested without sockets), de-duplicates, and
//! delivers [`Event`]s through a bounded channel. ICMPv6 errors that quote one of
//! our probes (unreachable, time exceeded, …) are counted per type in
//! [`ListenerStats::errors`] and never reported as hits.
//!
//! When the event channel is full the listener waits (checking for stop) rather
//! than dropping: the host application sets the pace, and the kernel's socket
//! buffer absorbs short stalls.
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
    Discovery, ECHO_REPLY, ECHO_REQUEST, ERROR_TYPES, ErrorType, Ignored, Inbound, MAX_MESSAGE_LEN,
    ProbeCodec,
};
use crate::rate::TokenBucket;
use crate::sys::{self, RecvMeta, SocketOptions};

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
    pub(crate) destination_unreachable: AtomicU64,
    pub(crate) packet_too_big: AtomicU64,
    pub(crate) time_exceeded: AtomicU64,
    pub(crate) parameter_problem: AtomicU64,
    pub(crate) unrelated_errors: AtomicU64,
    pub(crate) events_dropped: AtomicU64,
}

/// A snapshot of the listener's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListenerStats {
    /// ICMPv6 messages (echo and error) read from the socket.
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
    /// ICMPv6 errors that quote one of our probes or answers, per type.
    pub errors: ErrorCounts,
    /// ICMPv6 errors about anything else (other traffic, forged or cut quotes).
    pub unrelated_errors: u64,
    /// Events lost because the receiver was dropped.
    pub events_dropped: u64,
}

/// ICMPv6 errors that quote one of our messages, per type (RFC 4443 §3). A router
/// or the target reported that a probe could not be delivered; none is a hit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ErrorCounts {
    /// Destination unreachable (no route, prohibited, address unreachable, …).
    pub destination_unreachable: u64,
    /// Packet too big.
    pub packet_too_big: u64,
    /// Time exceeded (hop limit reached).
    pub time_exceeded: u64,
    /// Parameter problem.
    pub parameter_problem: u64,
}

impl ErrorCounts {
    /// The count of one type.
    pub fn of(&self, ty: ErrorType) -> u64 {
        match ty {
            ErrorType::DestinationUnreachable => self.destination_unreachable,
            ErrorType::PacketTooBig => self.packet_too_big,
            ErrorType::TimeExceeded => self.time_exceeded,
            ErrorType::ParameterProblem => self.parameter_problem,
        }
    }

    /// All types together.
    pub fn total(&self) -> u64 {
        self.destination_unreachable
            + self.packet_too_big
            + self.time_exceeded
            + self.parameter_problem
    }
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
            errors: ErrorCounts {
                destination_unreachable: g(&self.destination_unreachable),
                packet_too_big: g(&self.packet_too_big),
                time_exceeded: g(&self.time_exceeded),
                parameter_problem: g(&self.parameter_problem),
            },
            unrelated_errors: g(&self.unrelated_errors),
            events_dropped: g(&self.events_dropped),
        }
    }

    fn error(&self, ty: ErrorType) -> &AtomicU64 {
        match ty {
            ErrorType::DestinationUnreachable => &self.destination_unreachable,
            ErrorType::PacketTooBig => &self.packet_too_big,
            ErrorType::TimeExceeded => &self.time_exceeded,
            ErrorType::ParameterProblem => &self.parameter_problem,
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
            pass_types: [ECHO_REQUEST, ECHO_REPLY]
                .into_iter()
                .chain(ERROR_TYPES)
                .collect(),
            pktinfo: true,
            ..SocketOptions::default()
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(ListenerCounters::default());
        let state = State::new(codec, &options, events, stop.clone(), counters.clone());
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
    fn new(
        codec: ProbeCodec,
        options: &ListenerOptions,
        events: Sender<Event>,
        stop: Arc<AtomicBool>,
        counters: Arc<ListenerCounters>,
    ) -> Self {
        State {
            codec,
            events,
            stop,
            counters,
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
        }
    }

    fn run(mut self, sock: &Socket) -> Result<()> {
        tracing::debug!("listening");
        // ICMPv6 errors quote up to 1232 bytes of the offending packet.
        let mut buf = [0u8; 2048];
        while !self.stop.load(Ordering::Relaxed) {
            let meta = match sys::recv_with_pktinfo(sock, &mut buf) {
                Ok(Some(m)) => m,
                Ok(None) => continue,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => continue,
                Err(e) => return Err(Error::io("receiving ICMPv6", e)),
            };
            self.handle(sock, meta, &buf[..meta.len]);
        }
        tracing::debug!("listener stopped");
        Ok(())
    }

    /// Deals with one received message; `sock` is only used to answer peers.
    fn handle(&mut self, sock: &Socket, meta: RecvMeta, msg: &[u8]) {
        self.counters.received.fetch_add(1, Ordering::Relaxed);
        match self.codec.classify(meta.src, msg) {
            Inbound::Hit => self.on_hit(meta.src),
            Inbound::PeerProbe(d) => {
                self.on_peer(meta.src, &d, PeerVia::Probe);
                self.answer(sock, meta.src, meta.dst, &d);
            }
            Inbound::PeerAnswer(d) => self.on_peer(meta.src, &d, PeerVia::Answer),
            Inbound::Error { ty, code, target } => {
                self.counters.error(ty).fetch_add(1, Ordering::Relaxed);
                tracing::trace!(from = %meta.src, %target, ty = ty.as_str(), code, "ICMPv6 error");
            }
            Inbound::Ignore(why) => self.count_ignored(why),
        }
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
            Ignored::UnrelatedError => &self.counters.unrelated_errors,
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

#[cfg(test)]
mod tests {
    use socket2::{Domain, Type};

    use super::*;
    use crate::probe::{Contact, Identity, RunKey, icmp_error, reply_to};

    #[test]
    fn errors_quoting_our_probes_are_counted_per_type_and_are_not_hits() {
        let codec = ProbeCodec::new(
            RunKey::from_bytes([3; 16]),
            Identity::new(0xa, 4000, Contact::default()).expect("identity"),
        );
        let (tx, events) = crossbeam_channel::bounded(16);
        let counters = Arc::new(ListenerCounters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let options = ListenerOptions::default();
        let mut state = State::new(codec.clone(), &options, tx, stop, counters.clone());
        // Only peer probes are answered, and none is fed in; a UDP socket needs no
        // privilege.
        let sock = Socket::new(Domain::IPV6, Type::DGRAM, None).expect("socket");
        let me: Ipv6Addr = "2a00::1".parse().expect("addr");
        let target: Ipv6Addr = "2a00:1::7".parse().expect("addr");
        let router: Ipv6Addr = "2a00:ff::1".parse().expect("addr");
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        let len = codec.encode_probe(&target.octets(), &mut buf);
        let probe = &buf[..len];
        let mut feed = |src: Ipv6Addr, msg: &[u8]| {
            let meta = RecvMeta {
                len: msg.len(),
                src,
                dst: Some((me, 1)),
            };
            state.handle(&sock, meta, msg);
        };

        feed(router, &icmp_error(3, 0, me, target, probe)); // hop limit exceeded
        feed(router, &icmp_error(1, 3, me, target, probe)); // address unreachable
        feed(target, &icmp_error(1, 4, me, target, probe)); // port unreachable
        // About a packet to another address: not ours, whatever it says.
        feed(router, &icmp_error(1, 3, me, router, probe));
        let stats = counters.snapshot();
        assert_eq!(
            stats.errors,
            ErrorCounts {
                destination_unreachable: 2,
                time_exceeded: 1,
                ..ErrorCounts::default()
            }
        );
        assert_eq!(stats.errors.total(), 3);
        assert_eq!(stats.errors.of(ErrorType::TimeExceeded), 1);
        assert_eq!(stats.unrelated_errors, 1);
        assert_eq!(stats.received, 4);
        assert_eq!((stats.hits, stats.peers, stats.malformed), (0, 0, 0));
        assert!(events.try_recv().is_err(), "errors are not events");

        // The target's own echo reply is still the one thing that makes a hit.
        feed(target, &reply_to(probe).expect("reply"));
        assert_eq!(counters.snapshot().hits, 1);
        assert!(matches!(events.try_recv(), Ok(Event::Hit { addr, .. }) if addr == target));
    }
}
