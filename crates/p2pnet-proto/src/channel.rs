//! The channel state machine: one authenticated, encrypted connection to
//! one peer.
//!
//! A [`Channel`] performs no IO and reads no clock. The runtime owns the
//! socket and drives the channel:
//!
//! ```text
//! loop {
//!     while let Some(bytes) = channel.poll_transmit() { socket.write_all(&bytes) }
//!     while let Some(event) = channel.poll_event()    { handle(event) }
//!     if channel.is_drained() { break }               // closed and flushed
//!     select! {
//!         n = socket.read(&mut buf)        => match n {
//!             0 => channel.handle_eof(),
//!             n => channel.handle_bytes(now(), &buf[..n])?,   // Err: already closed
//!         },
//!         _ = sleep_until(channel.poll_timeout()) => channel.handle_timeout(now()),
//!         cmd = commands.recv()            => channel.send(..) / approve / close,
//!     }
//! }
//! ```
//!
//! # States
//!
//! ```text
//!                                                   ┌───────┐  set_grants(), grant expiry
//!                                                   ▼       │
//!  Handshaking ──► PendingApproval ──approve()──► Open{scopes} ──close()──► Closing ──► Closed
//!       │                 └──reject()──► Closing                            (drained or timed out)
//!       └── errors, timeouts, EOF, remote Disconnect: straight to Closed ──────────────────┘
//! ```
//!
//! * **Handshaking**: the Noise XX handshake (see
//!   [`handshake`](crate::handshake)), bounded by
//!   [`ChannelConfig::handshake_timeout`].
//! * **PendingApproval**: the peer is authenticated
//!   ([`ChannelEvent::HandshakeComplete`]) and waits for the runtime's
//!   decision ([`ChannelEvent::AwaitingApproval`]). Both directions pass
//!   through it: the runtime approves an outbound channel as soon as the
//!   access list allows the authenticated id, and an inbound one according
//!   to its [`IncomingPeerTrustPolicy`](crate::IncomingPeerTrustPolicy).
//!   Nothing is delivered and nothing can be sent in this state. Keepalive
//!   and Disconnect are processed (a peer waiting on a human must not be
//!   timed out, and must be able to give up). Application packets that
//!   arrive meanwhile (the remote may legitimately have approved us first)
//!   are decoded, validated and **held**, at most
//!   [`ChannelConfig::pending_packet_limit`] packets and
//!   [`ChannelConfig::pending_byte_limit`] bytes; more is a
//!   [`ProtocolViolation::PendingApprovalOverflow`] and closes the channel.
//!   On approval the held packets pass through the grant gate in order; on
//!   rejection they are discarded unseen.
//! * **Open**: packets flow, gated by the channel's [`Grants`] (see
//!   [Grants](#grants)).
//! * **Closing**: a graceful close: queued data, then a `Disconnect`, are
//!   flushed; the channel becomes Closed when [`poll_transmit`] has handed
//!   out the last byte, or after [`ChannelConfig::close_timeout`].
//! * **Closed**: terminal. After a local error or idle timeout the channel
//!   may still hold a final `Disconnect` for [`poll_transmit`]: write it
//!   best-effort, then drop the socket once [`is_drained`] is true.
//!
//! # Grants
//!
//! An open channel holds a bounded set of [`Grants`], given by
//! [`approve`](Channel::approve) and replaced by
//! [`set_grants`](Channel::set_grants). What it exchanges is the union of
//! the grants live at the latest instant the channel was given
//! ([`Channel::permissions`]), in both directions:
//!
//! * Control packets (Keepalive, Disconnect) always pass, and so do a file
//!   transfer's `Cancel` and `Reject`
//!   ([`winds_down_transfer`](crate::grant::winds_down_transfer)).
//!   Grants apply to both directions.
//! * A received frame none of whose possible scopes
//!   ([`Scopes::for_kind`]) is live is refused without deserializing its
//!   body; otherwise the body is decoded and its exact scope
//!   ([`Scopes::for_packet`]) decides. A refused packet is reported as
//!   [`ChannelEvent::PacketRefused`] with [`RefuseReason::NotPermitted`];
//!   after [`ChannelConfig::max_refused_packets`] refusals the channel
//!   closes with [`ProtocolViolation::TooManyRefusedPackets`].
//! * Sending a packet no live grant permits fails with
//!   [`Error::NotPermitted`].
//! * Grants expire on the core clock: [`poll_timeout`](Channel::poll_timeout)
//!   includes the next expiry, and [`handle_timeout`](Channel::handle_timeout)
//!   and [`handle_bytes`](Channel::handle_bytes) expire grants before
//!   anything else, reporting [`ChannelEvent::GrantsExpired`].
//! * When the permitted scopes narrow (a grant expires, or `set_grants`
//!   takes scopes away), packets of the scopes taken away that arrive
//!   within [`REVOCATION_GRACE`] were most likely in flight already: they
//!   are dropped quietly, reported with [`RefuseReason::Revoked`] and not
//!   counted as refusals.
//!
//! # Keepalive
//!
//! Any authenticated message from the peer counts as activity. After
//! [`ChannelConfig::keepalive_interval`] without activity the channel sends
//! a `Ping` (and another every interval after that); the peer answers with
//! a `Pong`, which also yields an RTT sample ([`Channel::rtt`]). After
//! [`ChannelConfig::idle_timeout`] without activity the channel closes with
//! [`CloseReason::IdleTimeout`].
//!
//! # Backpressure
//!
//! [`Channel::send`] queues at most [`ChannelConfig::send_buffer_limit`]
//! bytes (a frame is always accepted into an empty queue, so the bound is
//! the limit plus one frame) and otherwise fails with
//! [`Error::SendBufferFull`]; once the runtime has drained the queue below
//! half the limit, [`ChannelEvent::Writable`] says to try again. Pongs are
//! coalesced (only the latest is owed), so a peer cannot grow the queue by
//! flooding pings while not reading.
//!
//! [`poll_transmit`]: Channel::poll_transmit
//! [`is_drained`]: Channel::is_drained

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

mod gate;

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::cipher::Cipher;
use crate::codec::{
    DEFAULT_MAX_FRAME_SIZE, FrameDecoder, FrameRef, MAX_FRAME_SIZE_CEILING, MIN_MAX_FRAME_SIZE,
    decode_body, encode_frame_into,
};
use crate::error::HandshakeError;
use crate::error::{Error, InvalidPacket, ProtocolViolation};
use crate::grant::{GrantId, Grants, Permissions, Scopes};
use crate::handshake::{
    Handshake, Hello, LEN_PREFIX, MAX_AGENT_LEN, MAX_HANDSHAKE_MESSAGE_LEN, MAX_NETWORK_LEN,
    MAX_NOISE_MESSAGE_LEN, MAX_NOISE_PAYLOAD_LEN, MessageReader, NOISE_TAG_LEN, TooLarge,
};
use crate::identity::{Keypair, PeerId};
use crate::packet::{
    Disconnect, DisconnectReason, Keepalive, MAX_REASON_LEN, Packet, PacketKind, PermissionClass,
};
use crate::perf::{Perf, PerfRefusal};
use crate::time::Instant;
use crate::transport::Transport;
use crate::trust::Direction;
use gate::{GrantGate, Verdict};

pub use gate::REVOCATION_GRACE;

/// Channel parameters. Shared by many channels through an [`Arc`].
///
/// Construct with [`Default`] and adjust fields; the channel constructors
/// validate the values.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelConfig {
    /// Network name bound into the handshake prologue: peers configured
    /// with different names cannot connect. At most
    /// [`MAX_NETWORK_LEN`] bytes. Default `"p2pnet"`.
    pub network: String,
    /// Software name sent in the [`Hello`], at most [`MAX_AGENT_LEN`] bytes.
    pub agent: String,
    /// Listening port announced in the [`Hello`].
    pub listening_port: Option<u16>,
    /// Largest frame body accepted from the peer (and announced to it).
    /// Between [`MIN_MAX_FRAME_SIZE`] and [`MAX_FRAME_SIZE_CEILING`];
    /// default [`DEFAULT_MAX_FRAME_SIZE`] (1 MiB).
    pub max_frame_size: u32,
    /// Time allowed for the whole handshake. Default 10 s.
    pub handshake_timeout: Duration,
    /// Idle time before a `Ping` is sent. Default 15 s.
    pub keepalive_interval: Duration,
    /// Idle time before the channel is closed. Must exceed
    /// `keepalive_interval`. Default 45 s.
    pub idle_timeout: Duration,
    /// Time a graceful close waits for the queue to drain. Default 5 s.
    pub close_timeout: Duration,
    /// Bound on queued outbound bytes. Default 4 MiB.
    pub send_buffer_limit: usize,
    /// Application packets held while awaiting approval. Default 32.
    pub pending_packet_limit: usize,
    /// Body bytes held while awaiting approval. Default 256 KiB.
    pub pending_byte_limit: usize,
    /// Refused packets tolerated before the channel closes. Default 16.
    pub max_refused_packets: u32,
    /// Transport ciphers offered in the [`Hello`]; the handshake picks one
    /// both sides offer (see [`Cipher::negotiate`]). Default
    /// [`Cipher::defaults`]. Leave ChaCha20-Poly1305 in to reach peers of
    /// protocol version 2.
    pub ciphers: Vec<Cipher>,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        Self {
            network: "p2pnet".into(),
            agent: concat!("p2pnet-proto/", env!("CARGO_PKG_VERSION")).into(),
            listening_port: None,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            handshake_timeout: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(45),
            close_timeout: Duration::from_secs(5),
            send_buffer_limit: 4 * 1024 * 1024,
            pending_packet_limit: 32,
            pending_byte_limit: 256 * 1024,
            max_refused_packets: 16,
            ciphers: Cipher::defaults(),
        }
    }
}

impl ChannelConfig {
    /// Checks every value; the channel constructors call this.
    pub fn validate(&self) -> Result<(), Error> {
        let fail = |msg| Err(Error::InvalidConfig(msg));
        if self.network.len() > MAX_NETWORK_LEN {
            return fail("network name longer than MAX_NETWORK_LEN");
        }
        if self.agent.len() > MAX_AGENT_LEN {
            return fail("agent longer than MAX_AGENT_LEN");
        }
        if !(MIN_MAX_FRAME_SIZE..=MAX_FRAME_SIZE_CEILING).contains(&self.max_frame_size) {
            return fail("max_frame_size outside MIN_MAX_FRAME_SIZE..=MAX_FRAME_SIZE_CEILING");
        }
        if self.handshake_timeout.is_zero() {
            return fail("handshake_timeout must be positive");
        }
        if self.keepalive_interval.is_zero() {
            return fail("keepalive_interval must be positive");
        }
        if self.idle_timeout <= self.keepalive_interval {
            return fail("idle_timeout must exceed keepalive_interval");
        }
        if self.send_buffer_limit == 0 {
            return fail("send_buffer_limit must be positive");
        }
        if self.ciphers.is_empty() {
            return fail("ciphers must name at least one cipher");
        }
        if self.ciphers.len() > Cipher::MAX_OFFERED {
            return fail("ciphers names more than Cipher::MAX_OFFERED");
        }
        Ok(())
    }
}

/// The public view of a channel's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelState {
    /// Noise handshake in progress.
    Handshaking,
    /// Authenticated; waiting for [`Channel::approve`] or [`Channel::reject`].
    PendingApproval,
    /// Exchanging packets under its grants.
    Open {
        /// What the live grants permit (see [`Channel::permissions`]).
        scopes: Scopes,
    },
    /// Flushing queued data and a `Disconnect`.
    Closing,
    /// Terminal.
    Closed,
}

impl ChannelState {
    /// A lowercase name, for errors and logs.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Handshaking => "handshaking",
            Self::PendingApproval => "pending approval",
            Self::Open { .. } => "open",
            Self::Closing => "closing",
            Self::Closed => "closed",
        }
    }
}

/// What a channel reports to the runtime, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelEvent {
    /// The handshake completed; the remote is authenticated as `peer_id`.
    HandshakeComplete {
        /// The remote's authenticated identity.
        peer_id: PeerId,
        /// What the remote said about itself.
        hello: Hello,
    },
    /// The channel waits for [`Channel::approve`] or [`Channel::reject`].
    AwaitingApproval,
    /// The channel was approved and is open.
    Opened {
        /// What the grants it was approved with permit.
        scopes: Scopes,
    },
    /// Grants reached their expiry on the channel's clock and were removed.
    /// Packets of the scopes this took away get [`REVOCATION_GRACE`].
    GrantsExpired {
        /// The expired grants, in id order.
        expired: Vec<GrantId>,
        /// What the remaining grants permit.
        scopes: Scopes,
    },
    /// A packet arrived.
    Packet(Packet),
    /// A packet was dropped by the grant gate (or the identity check).
    PacketRefused {
        /// Its kind.
        kind: PacketKind,
        /// Why.
        reason: RefuseReason,
    },
    /// The send buffer, which was full, has room again.
    Writable,
    /// The channel is closed. Always the last event.
    Closed {
        /// Why.
        reason: CloseReason,
        /// Whether the remote initiated it (a `Disconnect` from the peer, or
        /// the connection dropping).
        by_remote: bool,
    },
}

/// Why a received packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefuseReason {
    /// No live grant permits it. Counts towards
    /// [`ChannelConfig::max_refused_packets`].
    NotPermitted,
    /// Its scope was taken away less than [`REVOCATION_GRACE`] ago, so it
    /// was most likely in flight already: dropped quietly, not counted.
    Revoked,
    /// An [`Identifier`](crate::packet::Identifier) claimed a peer id other
    /// than the one the handshake authenticated.
    IdentityMismatch,
}

/// Why a channel closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// A graceful close with this `Disconnect`, sent by the side given by
    /// `by_remote`.
    Disconnect(Disconnect),
    /// Nothing was received for the idle timeout.
    IdleTimeout,
    /// The runtime reported end of stream.
    ConnectionLost,
    /// An error: handshake failure or timeout, decryption failure, decode
    /// error or protocol violation.
    Error(Error),
}

/// Traffic counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChannelStats {
    /// Bytes handed out by [`Channel::poll_transmit`].
    pub bytes_sent: u64,
    /// Bytes passed to [`Channel::handle_bytes`].
    pub bytes_received: u64,
    /// Application packets queued by [`Channel::send`].
    pub packets_sent: u64,
    /// Frames received and decoded (control packets included).
    pub packets_received: u64,
}

/// One connection to one peer. See the [module docs](self).
pub struct Channel {
    config: Arc<ChannelConfig>,
    direction: Direction,
    local_id: PeerId,
    state: State,
    remote: Option<Remote>,
    /// Boxed: its two expanded AES-GCM keys are about 1 KiB, which every
    /// channel's struct (and whatever holds it by value) would carry from
    /// its first byte.
    transport: Option<Box<Transport>>,
    reader: MessageReader,
    decoder: FrameDecoder,
    handshake_out: VecDeque<Vec<u8>>,
    outbound: OutboundQueue,
    pong_owed: Option<u64>,
    ping_owed: Option<u64>,
    events: VecDeque<ChannelEvent>,
    handshake_deadline: Instant,
    last_activity: Instant,
    last_ping_sent: Option<Instant>,
    ping_in_flight: Option<(u64, Instant)>,
    next_ping_nonce: u64,
    rtt: Option<Duration>,
    close_deadline: Option<Instant>,
    /// The latest instant an input carried. [`approve`](Self::approve)
    /// takes none and opens the grant gate at this one.
    now: Instant,
    closing_with: Option<Disconnect>,
    pending: Vec<Packet>,
    pending_bytes: usize,
    refused: u32,
    writer_blocked: bool,
    stats: ChannelStats,
}

enum State {
    Handshaking(Box<Handshake>),
    PendingApproval,
    Open(GrantGate),
    Closing,
    Closed,
}

struct Remote {
    peer_id: PeerId,
    hello: Hello,
    handshake_hash: [u8; 32],
}

impl Channel {
    /// Starts an outbound channel (we dialed; Noise initiator). The first
    /// handshake message is ready in [`poll_transmit`](Self::poll_transmit).
    ///
    /// With `expected_peer`, a responder with another identity fails the
    /// handshake with [`HandshakeError::PeerIdMismatch`] before we reveal
    /// our own identity.
    pub fn new_outbound<R: CryptoRng + ?Sized>(
        config: Arc<ChannelConfig>,
        identity: &Keypair,
        expected_peer: Option<PeerId>,
        now: Instant,
        rng: &mut R,
    ) -> Result<Self, Error> {
        Self::new(
            config,
            Direction::Outbound,
            identity,
            expected_peer,
            now,
            rng,
        )
    }

    /// Starts an inbound channel (the peer dialed us; Noise responder).
    pub fn new_inbound<R: CryptoRng + ?Sized>(
        config: Arc<ChannelConfig>,
        identity: &Keypair,
        now: Instant,
        rng: &mut R,
    ) -> Result<Self, Error> {
        Self::new(config, Direction::Inbound, identity, None, now, rng)
    }

    fn new<R: CryptoRng + ?Sized>(
        config: Arc<ChannelConfig>,
        direction: Direction,
        identity: &Keypair,
        expected_peer: Option<PeerId>,
        now: Instant,
        rng: &mut R,
    ) -> Result<Self, Error> {
        config.validate()?;
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(seed.as_mut());
        let mut hello = Hello::new(
            config.listening_port,
            config.agent.clone(),
            config.max_frame_size,
        );
        hello.ciphers.clone_from(&config.ciphers);
        let mut first = Vec::new();
        let handshake = Handshake::new(
            direction,
            identity,
            &config.network,
            &hello,
            expected_peer,
            seed,
            &mut first,
        )?;
        let mut handshake_out = VecDeque::new();
        if !first.is_empty() {
            handshake_out.push_back(first);
        }
        Ok(Self {
            decoder: FrameDecoder::new(config.max_frame_size),
            handshake_deadline: now + config.handshake_timeout,
            config,
            direction,
            local_id: identity.peer_id(),
            state: State::Handshaking(Box::new(handshake)),
            remote: None,
            transport: None,
            reader: MessageReader::default(),
            handshake_out,
            outbound: OutboundQueue::default(),
            pong_owed: None,
            ping_owed: None,
            events: VecDeque::new(),
            last_activity: now,
            last_ping_sent: None,
            ping_in_flight: None,
            next_ping_nonce: 0,
            rtt: None,
            close_deadline: None,
            now,
            closing_with: None,
            pending: Vec::new(),
            pending_bytes: 0,
            refused: 0,
            writer_blocked: false,
            stats: ChannelStats::default(),
        })
    }

    /// Processes bytes read from the socket, in any split.
    ///
    /// An `Err` means the channel has closed itself (a
    /// [`ChannelEvent::Closed`] with the same error is queued, and a final
    /// `Disconnect` may be waiting in [`poll_transmit`](Self::poll_transmit)).
    /// Input after the channel started closing is ignored.
    ///
    /// Grants that expire at or before `now` are removed first (see
    /// [Grants](self#grants)).
    pub fn handle_bytes(&mut self, now: Instant, data: &[u8]) -> Result<(), Error> {
        self.stats.bytes_received += data.len() as u64;
        self.advance_clock(now);
        self.receive(now, data)
    }

    /// As [`handle_bytes`](Self::handle_bytes), but the bytes may be
    /// overwritten: each whole transport message in them is opened where it
    /// lies, and only a message split across reads is copied aside.
    pub fn handle_bytes_mut(&mut self, now: Instant, mut data: &mut [u8]) -> Result<(), Error> {
        self.stats.bytes_received += data.len() as u64;
        self.advance_clock(now);
        while matches!(self.state, State::PendingApproval | State::Open(_)) && self.reader.is_idle()
        {
            let Some(prefix) = data.first_chunk::<LEN_PREFIX>() else {
                break;
            };
            let total = LEN_PREFIX + usize::from(u16::from_be_bytes(*prefix));
            if data.len() < total {
                break;
            }
            let (message, rest) = std::mem::take(&mut data).split_at_mut(total);
            data = rest;
            self.open_and_handle(now, &mut message[LEN_PREFIX..])?;
        }
        self.receive(now, data)
    }

    fn receive(&mut self, now: Instant, mut data: &[u8]) -> Result<(), Error> {
        while !data.is_empty() {
            match &mut self.state {
                State::Closing | State::Closed => return Ok(()),
                State::Handshaking(handshake) => {
                    let mut reply = Vec::new();
                    let result = match self.reader.read(&mut data, MAX_HANDSHAKE_MESSAGE_LEN) {
                        Ok(None) => break,
                        Ok(Some(msg)) => handshake.read(msg, &mut reply),
                        Err(TooLarge(len)) => Err(HandshakeError::MessageTooLarge {
                            len,
                            max: MAX_HANDSHAKE_MESSAGE_LEN,
                        }
                        .into()),
                    };
                    if !reply.is_empty() {
                        self.handshake_out.push_back(reply);
                    }
                    match result {
                        Ok(true) => self.complete_handshake(now)?,
                        Ok(false) => {}
                        Err(err) => return Err(self.fail(err)),
                    }
                }
                State::PendingApproval | State::Open(_) => {
                    match self.reader.read(&mut data, MAX_NOISE_MESSAGE_LEN) {
                        Ok(None) => break,
                        Ok(Some(_)) => {}
                        // Unreachable: a u16 prefix cannot exceed the limit.
                        Err(TooLarge(_)) => return Err(self.fail(Error::Decrypt)),
                    }
                    // Opened in place, in the reader's own buffer, which
                    // goes back to it afterwards.
                    let mut message = self.reader.take_message();
                    let result = self.open_and_handle(now, &mut message);
                    self.reader.return_message(message);
                    result?;
                }
            }
        }
        Ok(())
    }

    /// Opens one transport message in place and handles its plaintext.
    fn open_and_handle(&mut self, now: Instant, message: &mut [u8]) -> Result<(), Error> {
        let opened = match self.transport.as_mut() {
            Some(transport) => transport.open(message).map(|plaintext| plaintext.len()),
            None => Err(Error::Decrypt),
        };
        match opened {
            Ok(len) => {
                self.last_activity = now;
                self.handle_plaintext(now, &message[..len])
            }
            Err(err) => Err(self.fail(err)),
        }
    }

    /// Starts the handshake's timeout again from `now`, while the
    /// handshake runs. A dialler builds its channel (and its first message)
    /// before TCP has connected, to make its key meanwhile; it calls this
    /// once connected, so a slow connect does not eat into the handshake's
    /// time.
    pub fn restart_handshake_timeout(&mut self, now: Instant) {
        if matches!(self.state, State::Handshaking(_)) {
            self.handshake_deadline = now + self.config.handshake_timeout;
        }
    }

    /// Fires whatever timers are due at `now`: grant expiry, handshake
    /// timeout, keepalive ping, idle timeout, close timeout.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance_clock(now);
        match self.state {
            State::Handshaking(_) => {
                if now >= self.handshake_deadline {
                    self.fail(HandshakeError::Timeout.into());
                }
            }
            State::PendingApproval | State::Open(_) => {
                if now >= self.idle_deadline() {
                    self.abort(
                        Some(Disconnect::new(DisconnectReason::IdleTimeout)),
                        CloseReason::IdleTimeout,
                        false,
                    );
                } else if now >= self.keepalive_deadline() {
                    let nonce = self.next_ping_nonce;
                    self.next_ping_nonce = self.next_ping_nonce.wrapping_add(1);
                    self.ping_owed = Some(nonce);
                    self.ping_in_flight = Some((nonce, now));
                    self.last_ping_sent = Some(now);
                }
            }
            State::Closing => {
                if self.close_deadline.is_some_and(|deadline| now >= deadline) {
                    self.outbound.clear();
                    self.finish_close();
                }
            }
            State::Closed => {}
        }
    }

    /// Reports that the peer closed its side of the stream.
    pub fn handle_eof(&mut self) {
        match self.state {
            State::Closed => {}
            State::Closing => self.finish_close(),
            _ => self.abort(None, CloseReason::ConnectionLost, true),
        }
    }

    /// Queues an application packet.
    ///
    /// Fails if the channel is not open, if the packet is a control packet
    /// ([`Error::ControlPacket`]), not permitted by the live grants
    /// ([`Error::NotPermitted`]; a file `Cancel` or `Reject` always is, see
    /// [`winds_down_transfer`](crate::grant::winds_down_transfer)), invalid,
    /// larger than the peer's maximum frame ([`Error::PacketTooLarge`]), or
    /// if the send buffer is full ([`Error::SendBufferFull`]). An
    /// [`Identifier`](crate::packet::Identifier) must carry the local peer
    /// id.
    pub fn send(&mut self, packet: impl Into<Packet>) -> Result<(), Error> {
        let packet = packet.into();
        let kind = packet.kind();
        if kind.class() == PermissionClass::Control {
            return Err(Error::ControlPacket(kind));
        }
        let State::Open(gate) = &self.state else {
            return Err(self.invalid_state("send"));
        };
        if !gate.permissions().permits(&packet) {
            return Err(Error::NotPermitted(kind));
        }
        if let Packet::Identifier(id) = &packet
            && id.peer_id != self.local_id
        {
            return Err(InvalidPacket::OutOfRange {
                field: "peer_id",
                reason: "an Identifier must carry the local peer id",
            }
            .into());
        }
        let limit = self
            .remote
            .as_ref()
            .map_or(MIN_MAX_FRAME_SIZE, |r| r.hello.max_frame_size);
        let frame = queued_frame(&packet, limit, self.outbound.spare_buffer())?;
        let pending = self.outbound.bytes;
        if pending > 0 && pending + frame.len() - HEADROOM > self.config.send_buffer_limit {
            self.outbound.recycle(frame);
            self.writer_blocked = true;
            return Err(Error::SendBufferFull {
                pending,
                limit: self.config.send_buffer_limit,
            });
        }
        self.outbound.push_back(frame);
        self.stats.packets_sent += 1;
        Ok(())
    }

    /// Approves a channel in [`ChannelState::PendingApproval`] with
    /// `grants`, at the latest instant the channel was given. Packets held
    /// while pending are then delivered (or refused) in order.
    ///
    /// [`ChannelEvent::Opened`] reports what the grants permit; grants
    /// already expired are removed at once and reported by a
    /// [`ChannelEvent::GrantsExpired`] right after it.
    pub fn approve(&mut self, grants: Grants) -> Result<(), Error> {
        if !matches!(self.state, State::PendingApproval) {
            return Err(self.invalid_state("approve"));
        }
        let (gate, expired) = GrantGate::open(grants, self.now);
        let scopes = gate.permissions().scopes;
        self.state = State::Open(gate);
        self.events.push_back(ChannelEvent::Opened { scopes });
        if !expired.is_empty() {
            self.events
                .push_back(ChannelEvent::GrantsExpired { expired, scopes });
        }
        self.pending_bytes = 0;
        for packet in std::mem::take(&mut self.pending) {
            if self.admit(packet).is_err() {
                // The channel closed itself; the Closed event says why.
                break;
            }
        }
        Ok(())
    }

    /// Rejects a channel in [`ChannelState::PendingApproval`]: held packets
    /// are discarded, and `disconnect` (typically
    /// [`DisconnectReason::Rejected`] or [`DisconnectReason::Blocked`]) is
    /// sent before the channel closes.
    pub fn reject(&mut self, now: Instant, disconnect: impl Into<Disconnect>) -> Result<(), Error> {
        if !matches!(self.state, State::PendingApproval) {
            return Err(self.invalid_state("reject"));
        }
        self.close(now, disconnect);
        Ok(())
    }

    /// Replaces the grants of an open channel at `now` (widening,
    /// narrowing, revoking or renewing).
    ///
    /// No event reports the change, the caller knows it, except that new
    /// grants already expired at `now` are removed and reported by
    /// [`ChannelEvent::GrantsExpired`]. Scopes this takes away get
    /// [`REVOCATION_GRACE`] for packets already in flight.
    pub fn set_grants(&mut self, now: Instant, grants: Grants) -> Result<(), Error> {
        self.now = self.now.max(now);
        let State::Open(gate) = &mut self.state else {
            return Err(self.invalid_state("set_grants"));
        };
        let expired = gate.replace(grants, now);
        if !expired.is_empty() {
            let scopes = gate.permissions().scopes;
            self.events
                .push_back(ChannelEvent::GrantsExpired { expired, scopes });
        }
        Ok(())
    }

    /// Closes the channel gracefully.
    ///
    /// Once authenticated, queued data is flushed, then `disconnect` (its
    /// message truncated to [`MAX_REASON_LEN`]), then the channel is Closed.
    /// During the handshake there is no one to tell: the channel closes at
    /// once. Closing a closing or closed channel does nothing.
    pub fn close(&mut self, now: Instant, disconnect: impl Into<Disconnect>) {
        self.now = self.now.max(now);
        let mut disconnect = disconnect.into();
        if let Some(message) = &mut disconnect.message {
            truncate_at_char_boundary(message, MAX_REASON_LEN);
        }
        match self.state {
            State::Closing | State::Closed => {}
            State::Handshaking(_) => self.abort(None, CloseReason::Disconnect(disconnect), false),
            State::PendingApproval | State::Open(_) => {
                self.pending.clear();
                self.pending_bytes = 0;
                self.pong_owed = None;
                self.ping_owed = None;
                self.writer_blocked = false;
                if let Ok(frame) = queued_frame(
                    &disconnect.clone().into(),
                    MAX_FRAME_SIZE_CEILING,
                    Vec::new(),
                ) {
                    self.outbound.push_back(frame);
                }
                self.state = State::Closing;
                self.close_deadline = Some(now + self.config.close_timeout);
                self.closing_with = Some(disconnect);
            }
        }
    }

    /// The next bytes to write to the socket, if any: one length-prefixed
    /// Noise message. Give the buffer back with
    /// [`recycle_buffer`](Self::recycle_buffer) once written, and the next
    /// frames are encoded into it: a stream of packets then allocates
    /// nothing.
    ///
    /// A frame that makes a message alone is sealed in the buffer it was
    /// encoded into (each queued frame keeps room in front for the length
    /// prefix), so it is not copied at all; smaller frames are gathered
    /// into one message.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if let Some(bytes) = self.handshake_out.pop_front() {
            self.stats.bytes_sent += bytes.len() as u64;
            return Some(bytes);
        }
        let transport = self.transport.as_mut()?;
        for keepalive in [
            self.pong_owed.take().map(Keepalive::Pong),
            self.ping_owed.take().map(Keepalive::Ping),
        ]
        .into_iter()
        .flatten()
        {
            if let Ok(frame) = queued_frame(&keepalive.into(), MAX_FRAME_SIZE_CEILING, Vec::new()) {
                self.outbound.push_control(frame);
            }
        }
        if self.outbound.is_empty() {
            return None;
        }
        let mut message = match self.outbound.take_alone(MAX_NOISE_PAYLOAD_LEN) {
            Some(frame) => frame,
            None => {
                let payload = self.outbound.bytes.min(MAX_NOISE_PAYLOAD_LEN);
                let mut message = self.outbound.spare_buffer();
                message.reserve(LEN_PREFIX + payload + NOISE_TAG_LEN);
                message.extend_from_slice(&[0; LEN_PREFIX]);
                self.outbound.fill(&mut message, LEN_PREFIX + payload);
                message
            }
        };
        let sealed = transport.seal(&mut message, LEN_PREFIX);
        let Some(len) = sealed
            .ok()
            .and_then(|()| u16::try_from(message.len() - LEN_PREFIX).ok())
        else {
            self.fail(Error::Encrypt);
            return None;
        };
        message[..LEN_PREFIX].copy_from_slice(&len.to_be_bytes());
        self.stats.bytes_sent += message.len() as u64;
        if self.writer_blocked && self.outbound.bytes <= self.config.send_buffer_limit / 2 {
            self.writer_blocked = false;
            self.events.push_back(ChannelEvent::Writable);
        }
        if matches!(self.state, State::Closing) && self.outbound.is_empty() {
            self.finish_close();
        }
        Some(message)
    }

    /// Appends the next message to `out`, if there is one, and says whether
    /// it did: [`poll_transmit`](Self::poll_transmit) for a caller that
    /// gathers messages in one buffer of its own.
    pub fn poll_transmit_into(&mut self, out: &mut Vec<u8>) -> bool {
        let Some(message) = self.poll_transmit() else {
            return false;
        };
        out.extend_from_slice(&message);
        self.recycle_buffer(message);
        true
    }

    /// Takes back a buffer [`poll_transmit`](Self::poll_transmit) returned,
    /// once written, to encode later frames into (a few are kept).
    pub fn recycle_buffer(&mut self, buffer: Vec<u8>) {
        self.outbound.recycle(buffer);
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ChannelEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called,
    /// if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::Handshaking(_) => Some(self.handshake_deadline),
            State::PendingApproval => Some(self.idle_deadline().min(self.keepalive_deadline())),
            State::Open(gate) => {
                let timers = self.idle_deadline().min(self.keepalive_deadline());
                Some(
                    gate.next_expiry()
                        .map_or(timers, |expiry| expiry.min(timers)),
                )
            }
            State::Closing => self.close_deadline,
            State::Closed => None,
        }
    }

    /// The current state.
    pub fn state(&self) -> ChannelState {
        match &self.state {
            State::Handshaking(_) => ChannelState::Handshaking,
            State::PendingApproval => ChannelState::PendingApproval,
            State::Open(gate) => ChannelState::Open {
                scopes: gate.permissions().scopes,
            },
            State::Closing => ChannelState::Closing,
            State::Closed => ChannelState::Closed,
        }
    }

    /// Who dialed.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// Our own peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_id
    }

    /// The remote's authenticated id, once the handshake completed.
    pub fn peer_id(&self) -> Option<PeerId> {
        self.remote.as_ref().map(|r| r.peer_id)
    }

    /// The remote's [`Hello`], once the handshake completed.
    pub fn remote_hello(&self) -> Option<&Hello> {
        self.remote.as_ref().map(|r| &r.hello)
    }

    /// Gives back the memory of buffers kept for reuse while traffic
    /// flowed (frame buffers, the frame decoder's, the message reader's):
    /// call it when the channel has been quiet for a while.
    pub fn release_buffers(&mut self) {
        self.outbound.release_spare();
        self.decoder.release_buffer();
        self.reader.release_buffer();
    }

    /// The transport cipher the handshake settled on, once it is done.
    pub fn cipher(&self) -> Option<Cipher> {
        self.transport.as_ref().map(|t| t.cipher())
    }

    /// The Noise handshake hash, identical on both sides: usable for
    /// channel binding or a short authentication string.
    pub fn handshake_hash(&self) -> Option<&[u8; 32]> {
        self.remote.as_ref().map(|r| &r.handshake_hash)
    }

    /// The grants, while open; all of them live at the latest instant the
    /// channel was given.
    pub fn grants(&self) -> Option<&Grants> {
        match &self.state {
            State::Open(gate) => Some(gate.grants()),
            _ => None,
        }
    }

    /// What the grants permit, while open, at the latest instant the
    /// channel was given (its last `handle_bytes`, `handle_timeout`,
    /// `set_grants` or `close`). The runtime reads
    /// [`max_file_size`](Permissions::max_file_size) here when a file offer
    /// arrives.
    pub fn permissions(&self) -> Option<Permissions> {
        match &self.state {
            State::Open(gate) => Some(gate.permissions()),
            _ => None,
        }
    }

    /// The latest round-trip time measured by keepalive.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// Outbound bytes queued and not yet handed out by
    /// [`poll_transmit`](Self::poll_transmit).
    pub fn pending_send_bytes(&self) -> usize {
        self.outbound.bytes + self.handshake_out.iter().map(Vec::len).sum::<usize>()
    }

    /// Traffic counters.
    pub fn stats(&self) -> ChannelStats {
        self.stats
    }

    /// Whether the channel is closed (it may still hold a final transmit).
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Whether the channel is closed and has nothing left to transmit: the
    /// runtime can drop the socket.
    pub fn is_drained(&self) -> bool {
        self.is_closed() && self.handshake_out.is_empty() && self.outbound.is_empty()
    }

    fn complete_handshake(&mut self, now: Instant) -> Result<(), Error> {
        let State::Handshaking(handshake) =
            std::mem::replace(&mut self.state, State::PendingApproval)
        else {
            return Ok(());
        };
        let established = match handshake.finish() {
            Ok(established) => established,
            Err(err) => return Err(self.fail(err)),
        };
        self.transport = Some(Box::new(established.transport));
        self.last_activity = now;
        self.events.push_back(ChannelEvent::HandshakeComplete {
            peer_id: established.peer_id,
            hello: established.hello.clone(),
        });
        self.events.push_back(ChannelEvent::AwaitingApproval);
        self.remote = Some(Remote {
            peer_id: established.peer_id,
            hello: established.hello,
            handshake_hash: established.handshake_hash,
        });
        Ok(())
    }

    fn handle_plaintext(&mut self, now: Instant, mut plaintext: &[u8]) -> Result<(), Error> {
        // The decoder is set aside while its frames, borrowed from it or
        // from `plaintext`, are handled.
        let mut decoder = std::mem::replace(&mut self.decoder, FrameDecoder::new(0));
        let mut result = Ok(());
        while !plaintext.is_empty() && matches!(self.state, State::PendingApproval | State::Open(_))
        {
            match decoder.next_frame(&mut plaintext) {
                Ok(Some(frame)) => {
                    self.stats.packets_received += 1;
                    if let Err(err) = self.handle_frame(now, frame) {
                        result = Err(err);
                        break;
                    }
                }
                Ok(None) => {}
                Err(err) => {
                    result = Err(self.fail(err.into()));
                    break;
                }
            }
        }
        self.decoder = decoder;
        result
    }

    fn handle_frame(&mut self, now: Instant, frame: FrameRef<'_>) -> Result<(), Error> {
        match (frame.kind.class(), &self.state) {
            (PermissionClass::Control, _) => match self.decode(frame)? {
                Packet::Keepalive(Keepalive::Ping(nonce)) => self.pong_owed = Some(nonce),
                Packet::Keepalive(Keepalive::Pong(nonce)) => {
                    if let Some((expected, sent)) = self.ping_in_flight
                        && expected == nonce
                    {
                        self.rtt = Some(now - sent);
                        self.ping_in_flight = None;
                    }
                }
                Packet::Disconnect(disconnect) => {
                    self.abort(None, CloseReason::Disconnect(disconnect), true);
                }
                _ => {}
            },
            (_, State::PendingApproval) => {
                let packet = self.decode(frame)?;
                self.pending_bytes += frame.body.len();
                self.pending.push(packet);
                if self.pending.len() > self.config.pending_packet_limit
                    || self.pending_bytes > self.config.pending_byte_limit
                {
                    let violation = ProtocolViolation::PendingApprovalOverflow {
                        packets: self.pending.len(),
                        bytes: self.pending_bytes,
                    };
                    return Err(self.fail(violation.into()));
                }
            }
            (_, State::Open(gate)) => {
                if !gate.worth_decoding(frame.kind, frame.body.len()) {
                    // Refused without deserializing the body.
                    return self.refuse(frame.kind, RefuseReason::NotPermitted);
                }
                let packet = self.decode(frame)?;
                self.admit(packet)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Delivers a decoded packet of an open channel through the grant gate.
    fn admit(&mut self, packet: Packet) -> Result<(), Error> {
        let kind = packet.kind();
        // Only an open channel admits; `approve` opens it before it passes
        // the held packets here.
        let State::Open(gate) = &self.state else {
            return Ok(());
        };
        match gate.verdict(&packet) {
            Verdict::Admit => {}
            Verdict::Revoked => {
                self.events.push_back(ChannelEvent::PacketRefused {
                    kind,
                    reason: RefuseReason::Revoked,
                });
                return Ok(());
            }
            Verdict::NotPermitted => {
                // A speed test the grants do not allow is answered at once,
                // so the asker does not wait out its timeout.
                if let Packet::Perf(Perf::Request { id, .. }) = packet {
                    let refusal = Perf::Refused {
                        id,
                        reason: PerfRefusal::NotGranted,
                    };
                    if let Ok(frame) =
                        queued_frame(&refusal.into(), MAX_FRAME_SIZE_CEILING, Vec::new())
                    {
                        self.outbound.push_back(frame);
                    }
                }
                return self.refuse(kind, RefuseReason::NotPermitted);
            }
        }
        if let Packet::Identifier(id) = &packet
            && Some(id.peer_id) != self.peer_id()
        {
            return self.refuse(kind, RefuseReason::IdentityMismatch);
        }
        self.events.push_back(ChannelEvent::Packet(packet));
        Ok(())
    }

    fn refuse(&mut self, kind: PacketKind, reason: RefuseReason) -> Result<(), Error> {
        self.refused = self.refused.saturating_add(1);
        self.events
            .push_back(ChannelEvent::PacketRefused { kind, reason });
        if self.refused > self.config.max_refused_packets {
            let violation = ProtocolViolation::TooManyRefusedPackets {
                count: self.refused,
                limit: self.config.max_refused_packets,
            };
            return Err(self.fail(violation.into()));
        }
        Ok(())
    }

    fn decode(&mut self, frame: FrameRef<'_>) -> Result<Packet, Error> {
        decode_body(frame.kind, frame.body).map_err(|err| self.fail(err.into()))
    }

    /// Closes the channel because of `err` and returns it. Once the peer is
    /// authenticated, it is told why with a `Disconnect`.
    fn fail(&mut self, err: Error) -> Error {
        let farewell = match &err {
            Error::Handshake(_) => None,
            other => {
                let mut message = other.to_string();
                truncate_at_char_boundary(&mut message, MAX_REASON_LEN);
                Some(Disconnect::with_message(
                    DisconnectReason::ProtocolViolation,
                    message,
                ))
            }
        };
        self.abort(farewell, CloseReason::Error(err.clone()), false);
        err
    }

    /// Moves straight to Closed, dropping queued data; `farewell` is queued
    /// for a best-effort final transmit.
    fn abort(&mut self, farewell: Option<Disconnect>, reason: CloseReason, by_remote: bool) {
        if matches!(self.state, State::Closed) {
            return;
        }
        if self.transport.is_none() {
            self.handshake_out.clear();
        }
        self.outbound.clear();
        self.pending.clear();
        self.pending_bytes = 0;
        self.pong_owed = None;
        self.ping_owed = None;
        self.writer_blocked = false;
        if let (Some(farewell), Some(_)) = (farewell, &self.transport)
            && let Ok(frame) = queued_frame(&farewell.into(), MAX_FRAME_SIZE_CEILING, Vec::new())
        {
            self.outbound.push_back(frame);
        }
        self.state = State::Closed;
        self.events
            .push_back(ChannelEvent::Closed { reason, by_remote });
    }

    fn finish_close(&mut self) {
        let disconnect = self
            .closing_with
            .take()
            .unwrap_or_else(|| Disconnect::new(DisconnectReason::Normal));
        self.state = State::Closed;
        self.events.push_back(ChannelEvent::Closed {
            reason: CloseReason::Disconnect(disconnect),
            by_remote: false,
        });
    }

    /// Moves the channel's clock to `now` and, while open, expires grants.
    fn advance_clock(&mut self, now: Instant) {
        self.now = self.now.max(now);
        if let State::Open(gate) = &mut self.state {
            let expired = gate.advance(now);
            if !expired.is_empty() {
                let scopes = gate.permissions().scopes;
                self.events
                    .push_back(ChannelEvent::GrantsExpired { expired, scopes });
            }
        }
    }

    fn idle_deadline(&self) -> Instant {
        self.last_activity + self.config.idle_timeout
    }

    fn keepalive_deadline(&self) -> Instant {
        let base = self
            .last_ping_sent
            .map_or(self.last_activity, |p| p.max(self.last_activity));
        base + self.config.keepalive_interval
    }

    fn invalid_state(&self, operation: &'static str) -> Error {
        Error::InvalidState {
            operation,
            state: self.state().name(),
        }
    }

    /// Test hook: queues raw plaintext as if it were encoded frames, to
    /// craft malformed streams.
    #[cfg(test)]
    pub(crate) fn inject_plaintext(&mut self, bytes: Vec<u8>) {
        let mut frame = vec![0; HEADROOM];
        frame.extend_from_slice(&bytes);
        self.outbound.push_back(frame);
    }
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("direction", &self.direction)
            .field("state", &self.state())
            .field("local", &self.local_id)
            .field("remote", &self.peer_id())
            .finish_non_exhaustive()
    }
}

/// Bytes kept free in front of every queued frame: where a frame that
/// makes a message alone gets its length prefix, so it is sealed and sent
/// from the buffer it was encoded into.
const HEADROOM: usize = LEN_PREFIX;

/// `packet` encoded for the queue, in `buffer` (cleared first), behind
/// [`HEADROOM`] free bytes.
fn queued_frame(packet: &Packet, limit: u32, mut buffer: Vec<u8>) -> Result<Vec<u8>, Error> {
    buffer.clear();
    buffer.extend_from_slice(&[0; HEADROOM]);
    encode_frame_into(packet, limit, &mut buffer)?;
    Ok(buffer)
}

/// Encoded frames waiting for [`Channel::poll_transmit`], each behind its
/// [`HEADROOM`].
#[derive(Default)]
struct OutboundQueue {
    frames: VecDeque<Vec<u8>>,
    /// Bytes of the front frame already handed out.
    offset: usize,
    /// Bytes not yet handed out.
    bytes: usize,
    /// Buffers of frames already sent, for the next frames to reuse.
    spare: Vec<Vec<u8>>,
}

/// Frame buffers kept for reuse, and the capacities kept: enough for a
/// stream of bulk packets to allocate none, while small buffers (cheap to
/// allocate, and what an idle channel's last messages leave) are freed.
const SPARE_BUFFERS: usize = 4;
const SPARE_CAPACITY: std::ops::RangeInclusive<usize> = 4 * 1024..=128 * 1024;

/// A queued frame's length, without its headroom.
fn frame_len(frame: &[u8]) -> usize {
    frame.len() - HEADROOM
}

impl OutboundQueue {
    fn push_back(&mut self, frame: Vec<u8>) {
        self.bytes += frame_len(&frame);
        self.frames.push_back(frame);
    }

    /// Queues a control frame ahead of application data, at the first frame
    /// boundary (never inside a partly sent frame).
    fn push_control(&mut self, frame: Vec<u8>) {
        self.bytes += frame_len(&frame);
        if self.offset == 0 {
            self.frames.push_front(frame);
        } else {
            self.frames.insert(1, frame);
        }
    }

    /// An empty buffer to encode the next frame into.
    fn spare_buffer(&mut self) -> Vec<u8> {
        self.spare.pop().unwrap_or_default()
    }

    /// Keeps `buffer` for a later frame, within the bounds.
    fn recycle(&mut self, mut buffer: Vec<u8>) {
        if self.spare.len() < SPARE_BUFFERS && SPARE_CAPACITY.contains(&buffer.capacity()) {
            buffer.clear();
            self.spare.push(buffer);
        }
    }

    /// The front frame with its headroom, if it makes a message of at most
    /// `max` bytes alone: it is whole, fits, and the frame behind it would
    /// not fit with it.
    fn take_alone(&mut self, max: usize) -> Option<Vec<u8>> {
        let len = frame_len(self.frames.front()?);
        let next = self.frames.get(1).map(|f| frame_len(f));
        if self.offset != 0 || len > max || next.is_some_and(|next| len + next <= max) {
            return None;
        }
        self.bytes -= len;
        self.frames.pop_front()
    }

    /// Moves up to `max` bytes of the stream into `buf`. A frame that would
    /// not fit whole waits for the next message, unless the message is
    /// still empty or the frame could not fit in any: so most frames lie
    /// within one message, and the receiver decodes them where they were
    /// opened, without gathering them.
    fn fill(&mut self, buf: &mut Vec<u8>, max: usize) {
        let begin = buf.len();
        while buf.len() < max {
            let Some(front) = self.frames.front() else {
                break;
            };
            let room = max - buf.len();
            let whole = frame_len(front);
            if self.offset == 0 && buf.len() > begin && whole > room && whole <= max - begin {
                break;
            }
            let rest = &front[HEADROOM + self.offset..];
            let take = rest.len().min(room);
            buf.extend_from_slice(&rest[..take]);
            self.offset += take;
            self.bytes -= take;
            if self.offset == whole {
                if let Some(sent) = self.frames.pop_front() {
                    self.recycle(sent);
                }
                self.offset = 0;
            }
        }
    }

    /// Releases the spare buffers (the channel is quiet).
    fn release_spare(&mut self) {
        self.spare = Vec::new();
    }

    fn clear(&mut self) {
        self.frames.clear();
        self.offset = 0;
        self.bytes = 0;
    }

    fn is_empty(&self) -> bool {
        self.bytes == 0
    }
}

fn truncate_at_char_boundary(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A queued frame of `len` bytes (behind its headroom).
    fn frame(len: usize, fill: u8) -> Vec<u8> {
        let mut frame = vec![0; HEADROOM];
        frame.extend(std::iter::repeat_n(fill, len));
        frame
    }

    /// The messages `queue` makes of its frames, each at most `max` bytes.
    fn messages(queue: &mut OutboundQueue, max: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while !queue.is_empty() {
            let mut message = Vec::new();
            queue.fill(&mut message, max);
            out.push(message);
        }
        out
    }

    #[test]
    fn a_frame_that_fits_a_message_is_never_split() {
        let mut queue = OutboundQueue::default();
        for (len, fill) in [(300, 1), (700, 2), (600, 3), (100, 4)] {
            queue.push_back(frame(len, fill));
        }
        let lens: Vec<usize> = messages(&mut queue, 1000).iter().map(Vec::len).collect();
        // 300+700 fill one message; 600 would not fit after them, so it
        // starts the next one, with the 100 behind it.
        assert_eq!(lens, vec![1000, 700]);
    }

    #[test]
    fn a_frame_that_makes_a_message_alone_is_handed_over_in_its_own_buffer() {
        let mut queue = OutboundQueue::default();
        queue.push_back(frame(900, 1));
        queue.push_back(frame(300, 2));
        queue.push_back(frame(200, 3));
        // 900 + 300 would not fit in 1000: the first goes alone, as it is.
        let alone = queue.take_alone(1000).expect("alone");
        assert_eq!(alone.len(), HEADROOM + 900);
        assert!(alone[HEADROOM..].iter().all(|&b| b == 1));
        // 300 + 200 fit together: gathered, not alone.
        assert_eq!(queue.take_alone(1000), None);
        assert_eq!(messages(&mut queue, 1000).concat().len(), 500);
        // A frame too large for one message is never alone.
        queue.push_back(frame(1500, 4));
        assert_eq!(queue.take_alone(1000), None);
        assert_eq!(queue.bytes, 1500);
    }

    #[test]
    fn a_frame_larger_than_a_message_spans_from_the_current_one() {
        let mut queue = OutboundQueue::default();
        queue.push_back(frame(200, 1));
        queue.push_back(frame(2500, 2));
        let sent = messages(&mut queue, 1000);
        let lens: Vec<usize> = sent.iter().map(Vec::len).collect();
        assert_eq!(lens, vec![1000, 1000, 700]);
        assert_eq!(sent.concat().len(), 2700);
        // Small buffers are not worth keeping; bulk-sized ones are, to a
        // bound, and a quiet channel releases them.
        assert!(queue.spare.is_empty());
        queue.recycle(Vec::with_capacity(100));
        queue.recycle(Vec::with_capacity(1 << 20));
        assert!(queue.spare.is_empty());
        for _ in 0..SPARE_BUFFERS + 2 {
            queue.recycle(vec![7; 8192]);
        }
        assert_eq!(queue.spare.len(), SPARE_BUFFERS);
        let reused = queue.spare_buffer();
        assert!(reused.is_empty() && reused.capacity() >= 8192);
        queue.release_spare();
        assert!(queue.spare.is_empty());
    }
}
