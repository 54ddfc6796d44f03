//! What the network keeps of its discovery task (`discovery/`): the
//! published status and the command queue. A leaf, so the network's parts
//! can hold it without depending on the task.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use p2pnet_proto::PeerId;
use p2pnet_proto::discovery::{DiscoveryStats, DiscoveryVia};
use tokio::sync::{mpsc, oneshot};

/// A snapshot of discovery, for status pages and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DiscoveryStatus {
    /// The designated port broadcasts and multicasts go to now.
    pub broadcast_port: u16,
    /// Every designated port.
    pub designated_ports: Vec<u16>,
    /// Listening sockets bound (per port and family).
    pub listening: Vec<SocketAddr>,
    /// Interfaces in use.
    pub interfaces: Vec<String>,
    /// Addresses announced.
    pub announced: Vec<IpAddr>,
    /// Peers heard and not expired.
    pub heard: Vec<PeerId>,
    /// The same peers with how and when they were heard (refreshed at most
    /// once a second).
    pub heard_peers: Vec<HeardPeerStatus>,
    /// The machine's counters (garbage, replies, expiries...).
    pub stats: DiscoveryStats,
    /// Datagrams handed to the kernel.
    pub datagrams_sent: u64,
    /// Datagrams received on any discovery socket.
    pub datagrams_received: u64,
    /// Datagrams dropped because the task was behind.
    pub datagrams_dropped: u64,
    /// Sends the kernel refused.
    pub send_errors: u64,
    /// Announces from peers the access list denies.
    pub denied: u64,
    /// Whether every heard peer has an open channel (announces slow down).
    pub settled: bool,
    /// No listener: this node dials but announces nothing.
    pub passive: bool,
}

/// How discovery hears one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeardPeerStatus {
    /// The id its announces claim (proved only by a handshake).
    pub peer_id: PeerId,
    /// How its last announce arrived.
    pub via: DiscoveryVia,
    /// Where its last announce came from.
    pub source: SocketAddr,
    /// When it was first heard.
    pub first_heard: SystemTime,
    /// When it was last heard.
    pub last_heard: SystemTime,
}

/// The handle side of a running discovery task.
pub(crate) struct Link {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) status: Mutex<DiscoveryStatus>,
}

impl Link {
    pub(crate) fn status(&self) -> MutexGuard<'_, DiscoveryStatus> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Requests from the network handle and the routines.
#[derive(Debug)]
pub(crate) enum Command {
    Rotate(oneshot::Sender<u16>),
    Rescan,
    AnnounceNow,
}
