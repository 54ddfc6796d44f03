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
//! probed. A probe's source is not verified (it carries another instance's MAC) and
//! anyone can forge it, so an answer may go to a victim of the forger's choosing.
//! Reflection is therefore bounded four ways:
//!
//! * only sources that [`ListenerOptions::answer_policy`] admits are answered, or
//!   reported as peers: outside test mode, global unicast minus the reserved ranges;
//! * at most one answer per (source, probe MAC), of about the probe's size;
//! * at most [`ListenerOptions::subnet_answers_per_minute`] to any one /64;
//! * at most [`ListenerOptions::answer_rate`] per second in all.
//!
//! A victim's kernel echoes the answer back, with a MAC that verifies, so the
//! listener also counts a reply only from an address it probed: hits and peer
//! answers come only from inside [`ListenerOptions::hit_targets`]. The decisions
//! (`State::handle`) are pure and tested without sockets.

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
use crate::prefix::{AddressPolicy, TargetSet};
use crate::probe::{
    Discovery, ECHO_REPLY, ECHO_REQUEST, ERROR_TYPES, ErrorType, Ignored, Inbound, MAX_MESSAGE_LEN,
    ProbeCodec,
};
use crate::rate::{SubnetLimiter, TokenBucket};
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
    /// Sources whose probes are answered and reported as peers; probes from any
    /// other source are dropped (counted in
    /// [`ListenerStats::answers_refused_policy`]). `None` (the default): inside a
    /// [`Scan`](crate::Scan), the policy of its targets ([`TargetSet::policy`]);
    /// for a standalone listener, [`AddressPolicy::default`], which admits only
    /// global unicast minus the reserved ranges.
    pub answer_policy: Option<AddressPolicy>,
    /// Answers per minute to any one /64, at most one at a time (default 10). Bounds
    /// what forged probes can reflect at one victim; `answer_rate` bounds the sum.
    pub subnet_answers_per_minute: u32,
    /// The probed addresses: echo replies and peer answers count (as hits and
    /// peers) only from inside this set, since nothing else was probed. A scan
    /// always uses its own targets here. `None` (the default) for a standalone
    /// listener, which then reports no hits: a valid reply to one of its answers
    /// proves only that someone, perhaps the victim of a forged probe, echoed it.
    /// Set it to the scan's targets when a separate listener serves a scan built
    /// with `listen(false)`.
    pub hit_targets: Option<TargetSet>,
}

impl Default for ListenerOptions {
    fn default() -> Self {
        ListenerOptions {
            interface: None,
            answer_rate: 100,
            dedup_capacity: 1 << 24,
            event_capacity: 1 << 16,
            recv_buffer: 8 << 20,
            answer_policy: None,
            subnet_answers_per_minute: 10,
            hit_targets: None,
        }
    }
}

impl ListenerOptions {
    /// Checks the bounds; [`Listener::start`] and [`ScanBuilder::build`](crate::ScanBuilder::build)
    /// call it, so bad options fail before any socket is opened.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.answer_rate == 0 {
            return Err(Error::InvalidConfig("answer rate must be positive".into()));
        }
        if self.subnet_answers_per_minute == 0 {
            return Err(Error::InvalidConfig(
                "answers per /64 per minute must be positive".into(),
            ));
        }
        Ok(())
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
    pub(crate) answers_refused_policy: AtomicU64,
    pub(crate) replies_outside_targets: AtomicU64,
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
    /// Answers not sent: a repeat, or over the per-/64 or the global rate.
    pub answers_suppressed: u64,
    /// Peer probes from a source the answer policy refuses (documentation,
    /// link-local, multicast, loopback, …): neither answered nor reported.
    pub answers_refused_policy: u64,
    /// Valid echo replies and peer answers from outside the probed targets (such as
    /// a forged probe's victim echoing our answer): neither hits nor peers.
    pub replies_outside_targets: u64,
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
            answers_refused_policy: g(&self.answers_refused_policy),
            replies_outside_targets: g(&self.replies_outside_targets),
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
        options.validate()?;
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
        let state = State::new(
            codec,
            &options,
            events,
            stop.clone(),
            counters.clone(),
            Instant::now(),
        );
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

/// An answer the listener decided to send.
struct Reply {
    /// The probe's source.
    to: Ipv6Addr,
    /// The address (and interface) the probe came to, to answer from.
    from: Option<(Ipv6Addr, u32)>,
    buf: [u8; MAX_MESSAGE_LEN],
    len: usize,
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
    subnet_answers: SubnetLimiter,
    answer_policy: AddressPolicy,
    hit_targets: Option<TargetSet>,
    dedup_full_warned: bool,
}

impl State {
    fn new(
        codec: ProbeCodec,
        options: &ListenerOptions,
        events: Sender<Event>,
        stop: Arc<AtomicBool>,
        counters: Arc<ListenerCounters>,
        now: Instant,
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
                now,
            ),
            subnet_answers: SubnetLimiter::new(
                f64::from(options.subnet_answers_per_minute) / 60.0,
                now,
            ),
            answer_policy: options.answer_policy.clone().unwrap_or_default(),
            hit_targets: options.hit_targets.clone(),
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
            if let Some(reply) = self.handle(meta, &buf[..meta.len], Instant::now()) {
                self.send(sock, &reply);
            }
        }
        tracing::debug!("listener stopped");
        Ok(())
    }

    /// Deals with one message received at `now`: counts it, reports what it
    /// shows, and returns the answer to send, if any. No IO but the event channel.
    fn handle(&mut self, meta: RecvMeta, msg: &[u8], now: Instant) -> Option<Reply> {
        self.counters.received.fetch_add(1, Ordering::Relaxed);
        match self.codec.classify(meta.src, msg) {
            Inbound::Hit => {
                if self.probed(meta.src) {
                    self.on_hit(meta.src);
                }
            }
            Inbound::PeerProbe(d) => {
                // The source is unverified: answering a refused one would send to
                // whatever a forger chose, and reporting it would pass that on.
                if let Some(why) = self.answer_policy.refusal(meta.src) {
                    self.counters
                        .answers_refused_policy
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::trace!(from = %meta.src, why, "peer probe refused");
                    return None;
                }
                self.on_peer(meta.src, &d, PeerVia::Probe);
                return self.answer(meta.src, meta.dst, &d, now);
            }
            Inbound::PeerAnswer(d) => {
                if self.probed(meta.src) {
                    self.on_peer(meta.src, &d, PeerVia::Answer);
                }
            }
            Inbound::Error { ty, code, target } => {
                self.counters.error(ty).fetch_add(1, Ordering::Relaxed);
                tracing::trace!(from = %meta.src, %target, ty = ty.as_str(), code, "ICMPv6 error");
            }
            Inbound::Ignore(why) => self.count_ignored(why),
        }
        None
    }

    /// Whether a valid reply from `src` counts: the MAC binds it to an address we
    /// sent to, but answers go to sources of probes, which can be forged, so only
    /// the probed targets count.
    fn probed(&self, src: Ipv6Addr) -> bool {
        if self.hit_targets.as_ref().is_some_and(|t| t.contains(src)) {
            return true;
        }
        self.counters
            .replies_outside_targets
            .fetch_add(1, Ordering::Relaxed);
        tracing::trace!(from = %src, "valid reply from outside the targets");
        false
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

    /// The answer to an admitted probe, unless it repeats one or is over the rate.
    fn answer(
        &mut self,
        src: Ipv6Addr,
        local: Option<(Ipv6Addr, u32)>,
        d: &Discovery<'_>,
        now: Instant,
    ) -> Option<Reply> {
        // Bounded: forgetting old entries only risks answering a repeat probe again,
        // which the rate limits still bound.
        if self.answered.len() >= 1 << 16 {
            self.answered.clear();
        }
        // Repeats first, so they spend no tokens; the per-/64 budget before the
        // global one, so a flood aimed at one /64 cannot starve everyone else.
        if !self.answered.insert((u128::from(src), d.mac))
            || self.subnet_answers.try_take(&src.octets(), now).is_err()
            || self.answers.take_up_to(1, now) == 0
        {
            self.counters
                .answers_suppressed
                .fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        let len = self.codec.encode_answer(&src.octets(), d.mac, &mut buf);
        Some(Reply {
            to: src,
            // Only pin the source when it is a unicast address of ours.
            from: local.filter(|(a, _)| !a.is_multicast() && !a.is_unspecified()),
            buf,
            len,
        })
    }

    fn send(&self, sock: &Socket, reply: &Reply) {
        match sys::send_from(sock, &reply.buf[..reply.len], reply.to, reply.from) {
            Ok(()) => {
                self.counters.answers_sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tracing::debug!(to = %reply.to, error = %e, "answer not sent"),
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
    use super::*;
    use crate::prefix::Prefix;
    use crate::probe::{Contact, Identity, RunKey, icmp_error, reply_to};

    fn a(s: &str) -> Ipv6Addr {
        s.parse().expect("addr")
    }

    /// This instance's address.
    fn me() -> Ipv6Addr {
        a("2a00::1")
    }

    fn codec(id: u64, key: u8) -> ProbeCodec {
        ProbeCodec::new(
            RunKey::from_bytes([key; 16]),
            Identity::new(id, 4000, Contact::default()).expect("identity"),
        )
    }

    fn targets(prefix: &str, test_mode: bool) -> TargetSet {
        TargetSet::builder()
            .prefix(prefix.parse::<Prefix>().expect("prefix"))
            .test_mode(test_mode)
            .build()
            .expect("targets")
    }

    /// A listener's decision state with codec `codec(0xa, 3)`, started at `now`.
    fn listener(
        options: ListenerOptions,
        now: Instant,
    ) -> (
        State,
        crossbeam_channel::Receiver<Event>,
        Arc<ListenerCounters>,
    ) {
        let (tx, events) = crossbeam_channel::bounded(64);
        let counters = Arc::new(ListenerCounters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let state = State::new(codec(0xa, 3), &options, tx, stop, counters.clone(), now);
        (state, events, counters)
    }

    fn feed(state: &mut State, src: Ipv6Addr, msg: &[u8], now: Instant) -> Option<Reply> {
        let meta = RecvMeta {
            len: msg.len(),
            src,
            dst: Some((me(), 1)),
        };
        state.handle(meta, msg, now)
    }

    /// Another instance's probe to this one, as anyone may forge it.
    fn peer_probe(from_key: u8) -> Vec<u8> {
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        let n = codec(0xb, from_key).encode_probe(&me().octets(), &mut buf);
        buf[..n].to_vec()
    }

    fn our_probe(to: Ipv6Addr) -> Vec<u8> {
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        let n = codec(0xa, 3).encode_probe(&to.octets(), &mut buf);
        buf[..n].to_vec()
    }

    #[test]
    fn errors_quoting_our_probes_are_counted_per_type_and_are_not_hits() {
        let now = Instant::now();
        let (mut state, events, counters) = listener(
            ListenerOptions {
                hit_targets: Some(targets("2a00:1::/120", false)),
                ..ListenerOptions::default()
            },
            now,
        );
        let target = a("2a00:1::7");
        let router = a("2a00:ff::1");
        let probe = our_probe(target);

        let mut feed = |src: Ipv6Addr, msg: &[u8]| {
            assert!(
                feed(&mut state, src, msg, now).is_none(),
                "nothing to answer"
            );
        };
        feed(router, &icmp_error(3, 0, me(), target, &probe)); // hop limit exceeded
        feed(router, &icmp_error(1, 3, me(), target, &probe)); // address unreachable
        feed(target, &icmp_error(1, 4, me(), target, &probe)); // port unreachable
        // About a packet to another address: not ours, whatever it says.
        feed(router, &icmp_error(1, 3, me(), router, &probe));
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
        feed(target, &reply_to(&probe).expect("reply"));
        assert_eq!(counters.snapshot().hits, 1);
        assert!(matches!(events.try_recv(), Ok(Event::Hit { addr, .. }) if addr == target));
    }

    #[test]
    fn an_answers_echo_from_outside_the_targets_is_not_a_hit() {
        let now = Instant::now() + Duration::from_secs(1);
        let (mut state, events, counters) = listener(
            ListenerOptions {
                answer_policy: Some(AddressPolicy::default().test_mode(true)),
                hit_targets: Some(targets("fd00:5ca7:1::/120", true)),
                ..ListenerOptions::default()
            },
            now - Duration::from_secs(1),
        );
        // A probe forged with a victim's source: admitted (test mode), so answered
        // and reported as a peer hint ...
        let victim = a("fd00:5ca7:9::20");
        let answer = feed(&mut state, victim, &peer_probe(7), now).expect("answered");
        assert_eq!(answer.to, victim);
        assert_eq!(answer.from, Some((me(), 1)));
        assert!(
            matches!(events.try_recv(), Ok(Event::Peer(p)) if p.addr == victim && p.via == PeerVia::Probe)
        );
        // ... but the victim's kernel echoing the answer (its MAC verifies) is no hit.
        let echoed = reply_to(&answer.buf[..answer.len]).expect("echo");
        assert_eq!(state.codec.classify(victim, &echoed), Inbound::Hit);
        assert!(feed(&mut state, victim, &echoed, now).is_none());
        assert!(events.try_recv().is_err(), "no hit outside the targets");
        let stats = counters.snapshot();
        assert_eq!((stats.hits, stats.replies_outside_targets), (0, 1));

        // A reply to a probe of ours to an address outside the targets (a reused run
        // key, a bug) counts no more, nor does a peer's answer from there.
        let outside = a("fd00:5ca7:2::5");
        feed(
            &mut state,
            outside,
            &reply_to(&our_probe(outside)).expect("reply"),
            now,
        );
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        let ours = crate::probe::Discovery::decode(&our_probe(outside)[8..])
            .expect("probe")
            .mac;
        let n = codec(0xb, 7).encode_answer(&me().octets(), ours, &mut buf);
        assert!(matches!(
            state.codec.classify(outside, &buf[..n]),
            Inbound::PeerAnswer(_)
        ));
        feed(&mut state, outside, &buf[..n], now);
        assert!(events.try_recv().is_err(), "no hit, no peer");
        let stats = counters.snapshot();
        assert_eq!(
            (stats.hits, stats.peers, stats.replies_outside_targets),
            (0, 1, 3)
        );

        // Inside the targets, both the echo of an answer and a probe's reply count.
        let target = a("fd00:5ca7:1::20");
        let answer = feed(&mut state, target, &peer_probe(8), now).expect("answered");
        let _peer = events.try_recv().expect("peer");
        let echoed = reply_to(&answer.buf[..answer.len]).expect("echo");
        feed(&mut state, target, &echoed, now);
        assert!(matches!(events.try_recv(), Ok(Event::Hit { addr, .. }) if addr == target));

        // A standalone listener (no targets) never records a hit.
        let (mut alone, events, counters) = listener(
            ListenerOptions {
                answer_policy: Some(AddressPolicy::default().test_mode(true)),
                ..ListenerOptions::default()
            },
            now - Duration::from_secs(1),
        );
        let answer = feed(&mut alone, target, &peer_probe(7), now).expect("answered");
        let _peer = events.try_recv().expect("peer");
        let echoed = reply_to(&answer.buf[..answer.len]).expect("echo");
        feed(&mut alone, target, &echoed, now);
        assert!(events.try_recv().is_err());
        assert_eq!(counters.snapshot().replies_outside_targets, 1);
    }

    #[test]
    fn probes_from_inadmissible_sources_get_no_answer_and_no_peer() {
        let now = Instant::now() + Duration::from_secs(1);
        let start = now - Duration::from_secs(1);
        let probe = peer_probe(7);
        // Outside test mode (the standalone default): global unicast minus reserved.
        let (mut state, events, counters) = listener(ListenerOptions::default(), start);
        let refused = [
            "2001:db8::66",     // documentation
            "3fff::66",         // documentation
            "2002:c000:204::1", // 6to4
            "fe80::66",         // link-local
            "ff02::1",          // multicast
            "::1",              // loopback
            "::",               // unspecified
            "fd00:5ca7:1::66",  // unique local: outside 2000::/3
            "::ffff:192.0.2.1", // IPv4-mapped
        ];
        for src in refused {
            assert!(feed(&mut state, a(src), &probe, now).is_none(), "{src}");
        }
        assert!(events.try_recv().is_err(), "no peer from a refused source");
        let stats = counters.snapshot();
        assert_eq!(stats.answers_refused_policy, refused.len() as u64);
        assert_eq!((stats.peers, stats.answers_suppressed), (0, 0));
        // A global unicast source is answered.
        assert!(feed(&mut state, a("2a00:1::66"), &probe, now).is_some());
        assert!(matches!(events.try_recv(), Ok(Event::Peer(_))));

        // Test mode admits what a test-mode target set admits, and exclusions hold.
        let (mut state, events, counters) = listener(
            ListenerOptions {
                answer_policy: Some(
                    AddressPolicy::default()
                        .test_mode(true)
                        .exclude("fd00:5ca7:9::/48".parse().expect("prefix")),
                ),
                ..ListenerOptions::default()
            },
            start,
        );
        for src in ["fe80::66", "ff02::1", "::", "fd00:5ca7:9::66"] {
            assert!(feed(&mut state, a(src), &probe, now).is_none(), "{src}");
        }
        assert!(events.try_recv().is_err());
        assert_eq!(counters.snapshot().answers_refused_policy, 4);
        for src in ["fd00:5ca7:1::66", "::1"] {
            assert!(feed(&mut state, a(src), &probe, now).is_some(), "{src}");
        }
    }

    #[test]
    fn answers_to_one_64_are_capped() {
        let t0 = Instant::now();
        let (mut state, events, counters) = listener(
            ListenerOptions {
                answer_rate: 10_000,
                subnet_answers_per_minute: 10,
                ..ListenerOptions::default()
            },
            t0,
        );
        let now = t0 + Duration::from_secs(1);
        let probe = peer_probe(7);
        // Forged sources all over one /64: one answer, the rest suppressed (but each
        // still a peer hint).
        let answered = (1..=20)
            .filter(|i| {
                let src = Ipv6Addr::from(u128::from(a("2a00:1::")) | i);
                feed(&mut state, src, &probe, now).is_some()
            })
            .count();
        assert_eq!(answered, 1);
        assert_eq!(counters.snapshot().answers_suppressed, 19);
        assert_eq!(events.try_iter().count(), 20);
        // Another /64 has its own budget.
        assert!(feed(&mut state, a("2a00:2::1"), &probe, now).is_some());
        // The same probe again is never answered twice, whatever the budget.
        let later = now + Duration::from_secs(60);
        assert!(feed(&mut state, a("2a00:2::1"), &probe, later).is_none());
        // The budget refills at 10 a minute: one more after 6 s, not before.
        let src = a("2a00:1::100");
        assert!(feed(&mut state, src, &probe, now + Duration::from_secs(3)).is_none());
        let src = a("2a00:1::101");
        assert!(feed(&mut state, src, &probe, now + Duration::from_secs(7)).is_some());
    }
}
