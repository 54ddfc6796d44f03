//! What a network tells the application.
//!
//! Every subscriber sees every event through its own queue, bounded in
//! events and bytes (`event_bus.rs`); a subscriber that falls behind loses
//! the oldest ones and is told how many ([`NetworkEvent::EventsLost`])
//! instead of making the network buffer without bound.

use std::net::SocketAddr;
use std::path::PathBuf;

use p2pnet_proto::packet::{ContentHash, DataKind, Disconnect, TransferId};
use p2pnet_proto::{CloseReason, Direction, PacketKind, PeerId, RefuseReason, Scopes};

use crate::peer_info::{GrantInfo, PeerSource};

/// What happened to a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GrantChange {
    /// It was made.
    Granted,
    /// The application revoked it (or demoted the peer).
    Revoked,
    /// It reached its expiry.
    Expired,
}

/// Which way a file moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransferDirection {
    /// We send it.
    Outgoing,
    /// We receive it.
    Incoming,
}

/// One thing that happened in a [`PeerNetwork`](crate::PeerNetwork).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum NetworkEvent {
    /// A peer entered the known-peers table.
    PeerAdded {
        /// Its id.
        peer: PeerId,
        /// How it was learned.
        source: PeerSource,
    },
    /// A peer left the known-peers table.
    PeerRemoved {
        /// Its id.
        peer: PeerId,
    },
    /// A TCP connection arrived (before the handshake: no identity yet).
    IncomingConnectionAttempt {
        /// Its address.
        addr: SocketAddr,
    },
    /// An inbound connection was refused before or after its handshake.
    ConnectionRefused {
        /// Its address.
        addr: SocketAddr,
        /// Its authenticated id, if the handshake completed.
        peer: Option<PeerId>,
        /// Why.
        reason: String,
    },
    /// An authenticated inbound peer waits for
    /// [`PeerNetwork::approve`](crate::PeerNetwork::approve) or
    /// [`reject`](crate::PeerNetwork::reject) (trust policy placement
    /// `Event` or `QueueAndEvent`).
    ApprovalRequested {
        /// Its id.
        peer: PeerId,
        /// Its address.
        addr: SocketAddr,
    },
    /// A channel opened.
    ChannelOpened {
        /// The peer.
        peer: PeerId,
        /// Its address.
        addr: SocketAddr,
        /// Who dialed.
        direction: Direction,
        /// What may be exchanged: the union of the peer's live grants.
        scopes: Scopes,
    },
    /// What an open channel lets through changed (a grant was made,
    /// revoked or expired).
    ScopesChanged {
        /// The peer.
        peer: PeerId,
        /// The union of its live grants now.
        scopes: Scopes,
    },
    /// A peer's grant was made, revoked or expired.
    GrantChanged {
        /// The peer.
        peer: PeerId,
        /// The grant.
        grant: GrantInfo,
        /// What happened to it.
        change: GrantChange,
    },
    /// A channel closed.
    ChannelClosed {
        /// The peer, if it had authenticated.
        peer: Option<PeerId>,
        /// Its address.
        addr: SocketAddr,
        /// Why.
        reason: CloseReason,
        /// Whether the remote side ended it.
        by_remote: bool,
    },
    /// A text message arrived (default PureMessage handler).
    MessageReceived {
        /// The sender.
        peer: PeerId,
        /// The text.
        text: String,
    },
    /// A task or opaque data arrived (default handlers).
    DataReceived {
        /// The sender.
        peer: PeerId,
        /// Task or misc data.
        kind: DataKind,
        /// The application label, if any.
        label: Option<String>,
        /// The bytes (shared: every subscriber's copy of the event holds
        /// the same buffer).
        data: p2pnet_proto::Bytes,
    },
    /// The remote closed with a Disconnect (default Disconnect handler).
    Disconnected {
        /// The peer.
        peer: PeerId,
        /// What it said.
        disconnect: Disconnect,
    },
    /// A received packet was dropped by the trust gate.
    PacketRefused {
        /// The sender.
        peer: PeerId,
        /// Its kind.
        kind: PacketKind,
        /// Why.
        reason: RefuseReason,
    },
    /// Bytes of a file moved.
    TransferProgress {
        /// The peer.
        peer: PeerId,
        /// The transfer.
        transfer: TransferId,
        /// Which way.
        direction: TransferDirection,
        /// Bytes done, a resumed prefix included.
        transferred: u64,
        /// File size.
        total: u64,
    },
    /// A file arrived complete, its hash verified, under `path`; or was
    /// entirely sent.
    TransferCompleted {
        /// The peer.
        peer: PeerId,
        /// The transfer.
        transfer: TransferId,
        /// Which way.
        direction: TransferDirection,
        /// Where the file is.
        path: PathBuf,
        /// Its verified BLAKE3 hash.
        hash: ContentHash,
        /// Bytes resumed from an earlier, interrupted attempt.
        resumed_from: u64,
    },
    /// A transfer ended without completing.
    TransferFailed {
        /// The peer.
        peer: PeerId,
        /// The transfer.
        transfer: TransferId,
        /// Which way.
        direction: TransferDirection,
        /// Why.
        reason: String,
    },
    /// A packet handler returned an error or panicked. The channel lives on.
    HandlerFailed {
        /// The peer whose packet it was.
        peer: PeerId,
        /// The packet kind.
        kind: PacketKind,
        /// The error or panic message.
        error: String,
    },
    /// A routine's run failed.
    RoutineFailed {
        /// Its name.
        name: String,
        /// The error.
        error: String,
    },
    /// This subscriber fell behind and missed `count` events.
    EventsLost {
        /// How many.
        count: u64,
    },
}

impl NetworkEvent {
    /// Roughly the memory one queued copy of this event holds: its inline
    /// size plus the heap bytes it owns. Queues are bounded by the sum.
    pub(crate) fn cost(&self) -> usize {
        let heap = match self {
            Self::ConnectionRefused { reason, .. } | Self::TransferFailed { reason, .. } => {
                reason.len()
            }
            Self::MessageReceived { text, .. } => text.len(),
            Self::DataReceived { label, data, .. } => {
                data.len() + label.as_ref().map_or(0, String::len)
            }
            Self::Disconnected { disconnect, .. } => {
                disconnect.message.as_ref().map_or(0, String::len)
            }
            Self::TransferCompleted { path, .. } => path.as_os_str().len(),
            Self::HandlerFailed { error, .. } => error.len(),
            Self::RoutineFailed { name, error } => name.len() + error.len(),
            Self::GrantChanged { grant, .. } => grant.granted_by.len(),
            _ => 0,
        };
        std::mem::size_of::<Self>() + heap
    }
}
