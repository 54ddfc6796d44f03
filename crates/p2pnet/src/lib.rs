//! P2PNet runtime: a [`PeerNetwork`] on tokio, driving the sans-IO
//! protocol core [`p2pnet_proto`].
//!
//! A `PeerNetwork` listens on a TCP port, dials peers by address, runs one
//! actor per connection (Noise XX handshake, then an encrypted,
//! authenticated channel whose identity is the peer's public key), gates
//! every peer through its [`IncomingPeerTrustPolicy`] and access list,
//! dispatches typed packets to replaceable [`PacketHandlers`], streams
//! resumable, hash-verified files, keeps [`KnownPeers`](PeerNetwork::known_peers) and
//! [`ActivePeerChannels`](PeerNetwork::channels), runs named
//! [`routines`](PeerNetwork::routines) and reports everything as
//! [`NetworkEvent`]s. There is no global state: any number of networks can
//! run in one process, and [`PeerNetwork::shutdown`] ends every task.
//!
//! # Example
//!
//! Two networks on loopback; Bob approves Alice, Alice says hello.
//!
//! ```
//! use p2pnet::{NetworkEvent, PeerNetwork};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> p2pnet::Result<()> {
//! let alice = PeerNetwork::builder().listen_ip("127.0.0.1".parse().unwrap()).start().await?;
//! let bob = PeerNetwork::builder().listen_ip("127.0.0.1".parse().unwrap()).start().await?;
//! let mut bob_events = bob.subscribe();
//!
//! let bob_id = alice.connect(bob.local_addr().unwrap()).await?;
//! assert_eq!(bob_id, bob.local_peer_id());
//!
//! // By default an inbound peer waits for approval, announced by an event.
//! let alice_id = loop {
//!     if let Some(NetworkEvent::ApprovalRequested { peer, .. }) = bob_events.recv().await {
//!         break peer;
//!     }
//! };
//! assert_eq!(alice_id, alice.local_peer_id());
//! bob.approve(alice_id, None).await?;
//!
//! alice.send_message(bob_id, "hello, bob").await?;
//! let text = loop {
//!     if let Some(NetworkEvent::MessageReceived { text, .. }) = bob_events.recv().await {
//!         break text;
//!     }
//! };
//! assert_eq!(text, "hello, bob");
//!
//! alice.shutdown().await;
//! bob.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! * [`PeerNetwork`] (`network.rs`): the handle and its API (approve,
//!   grants, block, send, broadcast, files, shutdown). `dial.rs` opens
//!   channels (`connect`), `accept.rs` is the listener, `reconnect.rs`
//!   keeps persistent peers connected.
//! * [`PeerNetworkBuilder`] (`builder.rs`): settings, defaults, and the
//!   wiring that starts a network; `config.rs` holds the validated settings.
//! * `node.rs`: what one network is made of. Every table has one owner
//!   with intention-named methods: `channels.rs` (ActivePeerChannels),
//!   `peers.rs` (KnownPeers, decisions, grants; public types in
//!   `peer_info.rs`), `approvals.rs`, `access.rs` (trust policy),
//!   `transfers.rs`, `persistent.rs`, `partial_files.rs`.
//! * `actor/`: the per-connection task around a protocol `Channel`; it
//!   sees only its `ActorContext`.
//! * `admission.rs`: who may open a channel, and whether it waits for
//!   approval (pure decisions).
//! * `event.rs` and `event_bus.rs`: the public events and their per
//!   subscriber queues, bounded in count and bytes.
//! * [`handler`] and `hooks.rs`: the application's packet handlers and
//!   approval hook.
//! * `transfer_io.rs`: file hashing, chunk reads and writes, resume;
//!   `partial_file.rs` (a partial file held under an exclusive lock),
//!   `partial_files.rs` (the suspended transfers a network keeps) and
//!   `placement.rs` (moving a verified file in without replacing any).
//! * [`routines`]: named periodic routines, `DiscernPeerChannels`.
//! * [`identity`]: the long-term key file.
//! * [`discovery`]: LAN broadcast, IPv4/IPv6 multicast and static-host
//!   announces on designated ports; heard peers are recorded and dialled
//!   (gated like inbound peers). `discovery_link.rs` is what the node
//!   keeps of it.
//! * [`interfaces`] and [`scope`]: local address loading (pnet_datalink)
//!   and global/LAN address classification, for discovery.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod accept;
mod access;
mod actor;
mod admission;
mod approvals;
mod builder;
mod channels;
mod clock;
mod command;
mod config;
mod dial;
pub mod discovery;
mod discovery_link;
mod error;
mod event;
mod event_bus;
pub mod handler;
mod hooks;
pub mod identity;
pub mod interfaces;
mod network;
mod node;
mod partial_file;
mod partial_files;
mod peer_info;
mod peers;
mod perf;
mod persistent;
mod placement;
mod reconnect;
pub mod routines;
pub mod scope;
mod traffic;
mod transfer_io;
mod transfers;

pub use approvals::PendingPeer;
pub use builder::PeerNetworkBuilder;
pub use channels::{ChannelId, ChannelInfo};
pub use config::Limits;
pub use discovery::{DiscoveryConfig, DiscoveryStatus, DiscoveryVia, HeardPeerStatus};
pub use error::{Error, Result};
pub use event::{GrantChange, NetworkEvent, TransferDirection};
pub use event_bus::EventStream;
pub use handler::{
    FileDecision, FileOfferHandler, FileOfferInfo, PacketContext, PacketHandler, PacketHandlers,
};
pub use hooks::Verdict;
pub use network::PeerNetwork;
pub use peer_info::{
    BASE_GRANT, DialRecord, GrantInfo, GrantRequest, KnownPeer, MAX_DIALS_KEPT, PeerSource,
};
pub use perf::{PerfReport, PerfRequest};
pub use routines::{Routine, RoutineInfo, Routines};
pub use traffic::Traffic;
pub use transfer_io::PARTIAL_DIR;

/// The protocol core, re-exported.
pub use p2pnet_proto as proto;
pub use p2pnet_proto::{
    Bytes, ChannelConfig, CloseReason, Direction, GrantId, IncomingPeerTrustPolicy, Keypair,
    PeerId, Placement, Scopes, TrustLevel,
};
