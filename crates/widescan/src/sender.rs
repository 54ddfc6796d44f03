//! The sender: probes out with `sendmmsg`, under a global token bucket and a
//! per-/64 budget, through one of two [`Transport`]s:
//!
//! * **Kernel** (default): ICMPv6 messages on a raw socket. The kernel routes each
//!   probe, resolves neighbours and writes headers and checksum, so any route
//!   works, on-link targets included.
//! * **Packet**: whole Ethernet frames on an `AF_PACKET` socket, all to the
//!   gateway that the kernel's route to the targets names ([`LinkPath`]), past the
//!   IPv6 stack and (where allowed) the qdisc: ZMap's send path, several times the
//!   kernel transport's rate from one core.
//!
//! [`ProbeSender`] is the synchronous core (also used by benchmarks): hand it
//! addresses, it encodes each probe into a preallocated batch and sends the batch
//! with one system call once the rate limits allow. The scan pipeline runs it on its
//! own thread behind a bounded queue, so a slow network pushes back on generation.
//!
//! Defence in depth: the sender only sends to members of the validated
//! [`TargetSet`] it was opened with, so a generator bug (the original's failure
//! mode) becomes an error instead of stray traffic.
//!
//! Send errors: `ENOBUFS`/`EAGAIN`/`EINTR` are transient and retried;
//! per-destination failures (no route, unreachable, refused by a firewall) skip that
//! target and count; after `max_consecutive_failures` in a row the sender gives up
//! (ZMap's "abort after repeated sendto failures").

use std::io;
use std::net::Ipv6Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use socket2::Socket;

use crate::error::{Error, Result};
use crate::frame::FrameTemplate;
use crate::generate::Octets;
use crate::link::{LinkPath, MacAddr};
use crate::prefix::TargetSet;
use crate::probe::ProbeCodec;
use crate::rate::{SubnetLimiter, TokenBucket};
use crate::sys::{self, SendBatch, SocketOptions};

/// Default global rate: ZMap's default, well below what disturbs networks.
pub const DEFAULT_RATE_PPS: u32 = 10_000;
/// Default cap per /64.
pub const DEFAULT_PER_SUBNET_PPS: u32 = 100;
/// Socket send buffer asked for (the kernel clamps it to `wmem_max`).
const SEND_BUFFER: usize = 4 << 20;

/// How probes reach the network.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Transport {
    /// A raw ICMPv6 socket: the kernel routes, resolves and frames each probe.
    #[default]
    Kernel,
    /// Ethernet frames on an `AF_PACKET` socket, all to the targets' gateway. Every
    /// target prefix must route through one gateway on one Ethernet interface.
    Packet {
        /// The gateway's MAC; looked up in the neighbour table when `None`.
        gateway_mac: Option<MacAddr>,
    },
}

/// Sender settings.
#[derive(Clone, Debug)]
pub struct SenderOptions {
    /// Probes per second, all targets together (default 10 000).
    pub rate_pps: u32,
    /// Probes per second into any one /64 (default 100); `None` disables the cap.
    pub per_subnet_pps: Option<u32>,
    /// Messages per `sendmmsg` call (default 64, ZMap's batch).
    pub batch: usize,
    /// Hop limit of probes (default 64).
    pub hop_limit: u8,
    /// Send through one interface only (`SO_BINDTODEVICE`).
    pub interface: Option<String>,
    /// Source address to bind; `None` lets the kernel choose per route.
    pub source: Option<Ipv6Addr>,
    /// Give up after this many consecutive failed sends (default 1000).
    pub max_consecutive_failures: u32,
    /// Raw socket or Ethernet frames (default: raw socket).
    pub transport: Transport,
}

impl Default for SenderOptions {
    fn default() -> Self {
        SenderOptions {
            rate_pps: DEFAULT_RATE_PPS,
            per_subnet_pps: Some(DEFAULT_PER_SUBNET_PPS),
            batch: 64,
            hop_limit: 64,
            interface: None,
            source: None,
            max_consecutive_failures: 1000,
            transport: Transport::Kernel,
        }
    }
}

impl SenderOptions {
    pub(crate) fn validate(&self) -> Result<()> {
        if self.rate_pps == 0 {
            return Err(Error::InvalidConfig(
                "rate must be at least 1 probe/s".into(),
            ));
        }
        if self.per_subnet_pps == Some(0) {
            return Err(Error::InvalidConfig(
                "per-/64 rate must be at least 1 probe/s".into(),
            ));
        }
        if self.batch == 0 || self.batch > 1024 {
            return Err(Error::InvalidConfig(
                "sendmmsg batch must be 1..=1024".into(),
            ));
        }
        if self.hop_limit == 0 {
            return Err(Error::InvalidConfig("hop limit must be positive".into()));
        }
        if self.max_consecutive_failures == 0 {
            return Err(Error::InvalidConfig(
                "max_consecutive_failures must be positive".into(),
            ));
        }
        Ok(())
    }
}

/// Sender counters, shared with progress reporting.
#[derive(Debug, Default)]
pub(crate) struct SenderCounters {
    pub(crate) sent: AtomicU64,
    pub(crate) failed: AtomicU64,
}

/// Outcome of [`ProbeSender::send`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendOutcome {
    /// Addresses dealt with, in order: sent, or skipped after a per-destination
    /// error. The rest were not touched because `stop` was set.
    pub handled: usize,
    /// Probes the kernel accepted.
    pub sent: usize,
    /// Destinations skipped after an error.
    pub failed: usize,
}

/// Synchronous probe sender over one raw socket.
pub struct ProbeSender {
    sock: Socket,
    /// Set for the packet transport: the headers around each probe.
    frame: Option<FrameTemplate>,
    path: Option<LinkPath>,
    codec: ProbeCodec,
    targets: TargetSet,
    options: SenderOptions,
    batch: SendBatch,
    bucket: TokenBucket,
    subnets: Option<SubnetLimiter>,
    consecutive_failures: u32,
    counters: std::sync::Arc<SenderCounters>,
}

impl std::fmt::Debug for ProbeSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeSender")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl ProbeSender {
    /// Opens the transport's socket (a missing `CAP_NET_RAW` gives
    /// [`Error::RawSocketPermission`]); the packet transport first resolves its
    /// [`LinkPath`]. Probes go only to members of `targets`.
    pub fn open(codec: ProbeCodec, targets: &TargetSet, options: SenderOptions) -> Result<Self> {
        options.validate()?;
        let (sock, batch, frame, path) = match &options.transport {
            Transport::Kernel => {
                let sock = sys::open_icmpv6(&SocketOptions {
                    interface: options.interface.clone(),
                    source: options.source,
                    hop_limit: Some(options.hop_limit),
                    write_timeout: Some(Duration::from_millis(100)),
                    send_buffer: Some(SEND_BUFFER),
                    pass_types: Vec::new(),
                    ..SocketOptions::default()
                })?;
                (sock, SendBatch::new(options.batch), None, None)
            }
            Transport::Packet { gateway_mac } => {
                let path = LinkPath::resolve(
                    targets,
                    options.interface.as_deref(),
                    options.source,
                    *gateway_mac,
                )?;
                tracing::info!(
                    interface = %path.interface,
                    source = %path.source,
                    gateway = %path.gateway,
                    gateway_mac = %path.gateway_mac,
                    "packet transport"
                );
                let sock = sys::open_packet(path.ifindex, SEND_BUFFER)?;
                let frame = FrameTemplate::new(
                    path.source_mac.0,
                    path.gateway_mac.0,
                    path.source,
                    options.hop_limit,
                );
                let batch = SendBatch::frames(options.batch);
                (sock, batch, Some(frame), Some(path))
            }
        };
        let now = Instant::now();
        let rate = f64::from(options.rate_pps);
        // A burst of at most 10 ms of traffic, and never more than one batch.
        let burst = (rate / 100.0).clamp(1.0, options.batch as f64);
        Ok(ProbeSender {
            sock,
            codec,
            frame,
            path,
            targets: targets.clone(),
            batch,
            bucket: TokenBucket::new(rate, burst, now),
            subnets: options
                .per_subnet_pps
                .map(|r| SubnetLimiter::new(f64::from(r), now)),
            options,
            consecutive_failures: 0,
            counters: Default::default(),
        })
    }

    pub(crate) fn counters(&self) -> std::sync::Arc<SenderCounters> {
        self.counters.clone()
    }

    /// The packet transport's path; `None` for the kernel transport.
    pub fn link_path(&self) -> Option<&LinkPath> {
        self.path.as_ref()
    }

    /// Total probes the kernel accepted so far.
    pub fn sent(&self) -> u64 {
        self.counters.sent.load(Ordering::Relaxed)
    }

    /// Sends a probe to every address in order, blocking as the rate limits
    /// require. Returns early, with `handled < addrs.len()`, once `stop` is set.
    pub fn send(&mut self, addrs: &[Octets], stop: &AtomicBool) -> Result<SendOutcome> {
        let mut out = SendOutcome {
            handled: 0,
            sent: 0,
            failed: 0,
        };
        let mut i = 0;
        while i < addrs.len() {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let a = &addrs[i];
            if !self.targets.contains(Ipv6Addr::from(*a)) {
                self.flush(stop, &mut out)?;
                return Err(Error::PrefixRefused {
                    prefix: Ipv6Addr::from(*a).to_string(),
                    reason: "not in the target set this sender was opened with".into(),
                });
            }
            if let Some(limiter) = &mut self.subnets
                && let Err(wait) = limiter.try_take(a, Instant::now())
            {
                // Send what is queued, then wait for this /64's budget.
                let flushed = self.flush(stop, &mut out)?;
                if !flushed {
                    break;
                }
                sleep_unless_stopped(wait, stop);
                continue;
            }
            let codec = &self.codec;
            match &self.frame {
                Some(frame) => self
                    .batch
                    .push(a, |buf| frame.write(a, buf, |m| codec.encode_probe(a, m))),
                None => self.batch.push(a, |buf| codec.encode_probe(a, buf)),
            };
            i += 1;
            if self.batch.is_full() && !self.flush(stop, &mut out)? {
                break;
            }
        }
        self.flush(stop, &mut out)?;
        Ok(out)
    }

    /// Sends the queued batch under the global rate limit. Returns false if `stop`
    /// interrupted it; unsent messages are then discarded and not counted as handled.
    fn flush(&mut self, stop: &AtomicBool, out: &mut SendOutcome) -> Result<bool> {
        let total = self.batch.len();
        let mut next = 0;
        // About ten seconds of back-to-back transient errors means the kernel is not
        // draining the queue at all; report instead of spinning forever.
        let mut transient_in_a_row = 0u32;
        while next < total {
            let want = total - next;
            let granted = self.bucket.take_up_to(want, Instant::now());
            if granted == 0 {
                if stop.load(Ordering::Relaxed) {
                    self.batch.clear();
                    return Ok(false);
                }
                std::thread::sleep(
                    self.bucket
                        .wait_for_one(Instant::now())
                        .max(Duration::from_micros(20)),
                );
                continue;
            }
            let end = next + granted;
            while next < end {
                match self.batch.send(&self.sock, next, end - next) {
                    Ok(n) => {
                        transient_in_a_row = 0;
                        next += n;
                        out.sent += n;
                        out.handled += n;
                        self.counters.sent.fetch_add(n as u64, Ordering::Relaxed);
                        self.consecutive_failures = 0;
                    }
                    Err(e) => match classify_send_error(&e) {
                        SendError::Transient => {
                            if stop.load(Ordering::Relaxed) {
                                self.batch.clear();
                                return Ok(false);
                            }
                            transient_in_a_row += 1;
                            if transient_in_a_row > 50_000 {
                                self.batch.clear();
                                return Err(Error::SendAborted {
                                    failures: transient_in_a_row,
                                    last: e,
                                });
                            }
                            std::thread::sleep(Duration::from_micros(200));
                        }
                        SendError::Destination => {
                            tracing::debug!(dst = %self.batch.dst(next), error = %e, "probe not sent");
                            next += 1;
                            out.failed += 1;
                            out.handled += 1;
                            self.counters.failed.fetch_add(1, Ordering::Relaxed);
                            self.consecutive_failures += 1;
                            if self.consecutive_failures >= self.options.max_consecutive_failures {
                                self.batch.clear();
                                return Err(Error::SendAborted {
                                    failures: self.consecutive_failures,
                                    last: e,
                                });
                            }
                        }
                        SendError::Fatal => {
                            self.batch.clear();
                            return Err(Error::io("sending probes", e));
                        }
                    },
                }
            }
        }
        self.batch.clear();
        Ok(true)
    }
}

enum SendError {
    Transient,
    Destination,
    Fatal,
}

fn classify_send_error(e: &io::Error) -> SendError {
    match e.raw_os_error() {
        Some(libc::EINTR | libc::EAGAIN | libc::ENOBUFS) => SendError::Transient,
        Some(libc::EBADF | libc::ENOTSOCK | libc::EFAULT | libc::ENOMEM) => SendError::Fatal,
        _ if e.kind() == io::ErrorKind::TimedOut => SendError::Transient,
        _ => SendError::Destination,
    }
}

fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) {
    let until = Instant::now() + d;
    loop {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let now = Instant::now();
        if now >= until {
            return;
        }
        std::thread::sleep((until - now).min(Duration::from_millis(20)));
    }
}
