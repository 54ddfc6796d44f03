//! Sans-IO protocol core of P2PNet.
//!
//! This crate is the whole peer-to-peer protocol without any IO: it owns
//! identities, packets, framing, the Noise handshake, the per-connection
//! state machine, trust decisions and grants, reconnect backoff and file
//! transfer bookkeeping. It opens no socket, spawns no task, reads no clock
//! and no OS randomness, and holds no global state: time is passed in as
//! an [`Instant`], randomness as a caller-supplied RNG or value. Every
//! state machine is therefore deterministic, and the tests drive pairs of
//! channels on a virtual clock. The `p2pnet` runtime crate supplies the
//! sockets and timers.
//!
//! # Layout
//!
//! * [`identity`]: [`Keypair`] (long-term Ed25519 key, zeroized; its
//!   Curve25519 form is the Noise key) and [`PeerId`] (its public key,
//!   printable as base32), with domain-separated signatures.
//! * [`record`]: self-signed peer records ([`SignedRecord`](record::SignedRecord)),
//!   the unit of WAN discovery: a relay can pass one on but not alter it.
//! * [`signed`]: the `PAYLOAD.SIGNATURE` form of self-signed statements;
//!   [`heartbeat`]: a peer asking a bootstrap server for its tasks.
//! * [`packet`]: the [`Packet`] enum, one type per variant, every protocol
//!   bound, and [`PacketKind`] for gating and dispatch before decoding.
//! * [`perf`]: the speed test between two peers ([`Perf`](perf::Perf)
//!   packets and the asker's and answerer's state machines).
//! * [`codec`]: length-prefixed, versioned frames around postcard bodies;
//!   the incremental [`FrameDecoder`](codec::FrameDecoder).
//! * [`handshake`]: `Noise_XX_25519_ChaChaPoly_BLAKE2s` with a prologue
//!   binding the network name, and the [`Hello`] each side
//!   sends inside it; [`cipher`]: the transport [`Cipher`] both hellos
//!   negotiate (AES-256-GCM where both CPUs have AES, else
//!   ChaCha20-Poly1305), sealing in place with ring.
//! * [`channel`]: the [`Channel`] state machine (handshake, approval,
//!   gating by grants, keepalive, backpressure, close) in the style of
//!   `quinn-proto`: inputs `handle_bytes` / `handle_timeout` / `send` /
//!   `approve` / `set_grants` / `reject` / `close`, outputs
//!   `poll_transmit` / `poll_event` / `poll_timeout`.
//! * [`grant`]: [`Scopes`] (message, data, task, file, peer list) and the
//!   scoped, time-limited [`Grant`]s an open channel holds ([`Grants`]),
//!   which decide what it exchanges.
//! * [`trust`]: [`IncomingPeerTrustPolicy`] (with its [`TrustLevel`]
//!   preset for newly approved peers) and the [`AccessList`] (allow/block
//!   by peer id and CIDR).
//! * [`backoff`]: exponential reconnect [`Backoff`] with full jitter.
//! * [`discovery`]: the announce datagram of LAN/WAN discovery (strict,
//!   bounded, not trusted for identity) and the [`Discovery`](discovery::Discovery)
//!   machine (announce schedule, answers, reply limits, expiry).
//! * [`transfer`]: resumable, BLAKE3-verified file transfer state
//!   ([`FileSender`](transfer::FileSender),
//!   [`FileReceiver`](transfer::FileReceiver)).
//! * [`time`]: the caller-supplied [`Instant`].
//! * [`error`]: the crate's [`Error`] and its nested error enums.
//!
//! # Wire format in one picture
//!
//! ```text
//! TCP stream:   [u16 len][Noise msg] [u16 len][Noise msg] ...
//!                          │ handshake: XX, 3 messages, Hello payloads
//!                          │ then transport: the negotiated AEAD, implicit nonces
//!                          ▼
//! plaintext:    [ver u8][kind u8][len u32][postcard body] [ver][kind][len][body] ...
//!               (a frame may span several Noise messages, and one Noise
//!                message may carry several frames)
//! ```
//!
//! # Example
//!
//! Two channels talking in memory: handshake, approval, one message.
//!
//! ```
//! use std::sync::Arc;
//!
//! use p2pnet_proto::packet::{Packet, PureMessage};
//! use p2pnet_proto::{
//!     Channel, ChannelConfig, ChannelEvent, Error, Grant, GrantId, Grants, Instant, Keypair, Scopes,
//! };
//! use rand::SeedableRng;
//!
//! let mut rng = rand::rngs::StdRng::seed_from_u64(7);
//! let config = Arc::new(ChannelConfig::default());
//! let alice = Keypair::generate(&mut rng);
//! let bob = Keypair::generate(&mut rng);
//! let now = Instant::ZERO;
//!
//! // Alice dials Bob and insists on talking to Bob.
//! let mut dialer = Channel::new_outbound(config.clone(), &alice, Some(bob.peer_id()), now, &mut rng)?;
//! let mut listener = Channel::new_inbound(config, &bob, now, &mut rng)?;
//!
//! // Stand-in for two sockets: move bytes until neither side has any.
//! fn pump(a: &mut Channel, b: &mut Channel, now: Instant) -> Result<(), Error> {
//!     loop {
//!         let mut moved = false;
//!         while let Some(bytes) = a.poll_transmit() {
//!             b.handle_bytes(now, &bytes)?;
//!             moved = true;
//!         }
//!         while let Some(bytes) = b.poll_transmit() {
//!             a.handle_bytes(now, &bytes)?;
//!             moved = true;
//!         }
//!         if !moved {
//!             return Ok(());
//!         }
//!     }
//! }
//!
//! pump(&mut dialer, &mut listener, now)?;
//! // Both sides are authenticated; nothing flows until each approves,
//! // here with one grant for text messages that never expires.
//! assert_eq!(listener.peer_id(), Some(alice.peer_id()));
//! assert_eq!(dialer.handshake_hash(), listener.handshake_hash());
//! let messages = || Grants::single(Grant::new(GrantId(1), Scopes::MESSAGE));
//! dialer.approve(messages())?;
//! listener.approve(messages())?;
//!
//! dialer.send(PureMessage::new("hello, bob"))?;
//! pump(&mut dialer, &mut listener, now)?;
//!
//! let events: Vec<ChannelEvent> = std::iter::from_fn(|| listener.poll_event()).collect();
//! assert!(matches!(
//!     &events[..],
//!     [
//!         ChannelEvent::HandshakeComplete { .. },
//!         ChannelEvent::AwaitingApproval,
//!         ChannelEvent::Opened { scopes: Scopes::MESSAGE },
//!         ChannelEvent::Packet(Packet::PureMessage(message)),
//!     ] if message.text == "hello, bob"
//! ));
//! # Ok::<(), Error>(())
//! ```

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod backoff;
pub mod channel;
pub mod cipher;
pub mod codec;
pub mod discovery;
pub mod error;
pub mod grant;
pub mod handshake;
pub mod heartbeat;
pub mod identity;
pub mod packet;
pub mod perf;
pub mod record;
pub mod signed;
pub mod time;
pub mod transfer;
mod transport;
pub mod trust;
mod x25519;

#[cfg(test)]
mod tests;

pub use backoff::Backoff;
/// The shared byte buffer of [`packet::Payload`]: re-exported, so users
/// name the very type (`p2pnet_proto::Bytes`) without a dependency of their own.
pub use bytes::Bytes;
pub use channel::{
    Channel, ChannelConfig, ChannelEvent, ChannelState, ChannelStats, CloseReason,
    REVOCATION_GRACE, RefuseReason,
};
pub use cipher::Cipher;
pub use error::{
    DecodeError, Error, HandshakeError, InvalidPacket, ProtocolViolation, TransferError,
};
pub use grant::{Grant, GrantId, Grants, MAX_GRANTS, Permissions, ScopeParseError, Scopes};
pub use handshake::Hello;
pub use identity::{Keypair, PeerId};
pub use packet::{Packet, PacketKind};
pub use time::Instant;
pub use trust::{
    AccessList, AccessTarget, Admission, Decision, DenyReason, Direction, IncomingPeerTrustPolicy,
    Placement, TrustLevel,
};

/// The protocol version, sent first in the [`Hello`]. Version 2 made the
/// identity an Ed25519 key; version 3 added the transport cipher offer (see
/// [`handshake`](crate::handshake#versions-and-the-transport-cipher)).
pub const PROTOCOL_VERSION: u8 = 3;

/// The oldest version this one still speaks (answering at it).
pub const MIN_PROTOCOL_VERSION: u8 = 2;
