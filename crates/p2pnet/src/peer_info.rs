//! What the application sees of known peers: their records, sources and
//! grants. Plain data; `peers.rs` owns the table they come from.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use p2pnet_proto::discovery::DiscoveryVia;
use p2pnet_proto::{GrantId, PeerId, Scopes};

/// How a peer became known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PeerSource {
    /// Added by the application ([`PeerNetwork::add_peer`](crate::PeerNetwork::add_peer)
    /// or [`connect`](crate::PeerNetwork::connect)).
    Manual,
    /// It connected to us.
    Inbound,
    /// Another peer shared it in a `CollectionShare`.
    Shared {
        /// Who shared it.
        by: PeerId,
    },
    /// LAN discovery.
    Discovery {
        /// How its announce arrived: broadcast, multicast or unicast.
        via: DiscoveryVia,
    },
    /// A bootstrap server's list (WAN discovery): the peer signed its
    /// record, the addresses are as it claimed them.
    Bootstrap,
    /// An address scan (widescan) found an instance there; the channel
    /// this node dialled to it proved who it is.
    Widescan,
}

/// The id of a peer's base grant: what its approval (or, without one, the
/// trust policy) lets it send. Explicit grants get ids from 1.
pub const BASE_GRANT: GrantId = GrantId(0);

/// One grant of a peer, as the application sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantInfo {
    /// Its id ([`BASE_GRANT`] for the approval's own grant).
    pub id: GrantId,
    /// The packet kinds it lets the peer send (and us send to it).
    pub scopes: Scopes,
    /// The largest file it lets the peer offer, if capped.
    pub max_file_size: Option<u64>,
    /// When it ends, if ever.
    pub expires_at: Option<SystemTime>,
    /// Who granted it (free text: an operator, "approval", "elevate").
    pub granted_by: String,
    /// When.
    pub granted_at: SystemTime,
}

/// What to grant (see [`PeerNetwork::grant`](crate::PeerNetwork::grant)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRequest {
    /// The packet kinds to allow.
    pub scopes: Scopes,
    /// A cap on offered file sizes (meaningful with [`Scopes::FILE`]).
    pub max_file_size: Option<u64>,
    /// How long the grant lasts; `None` = until revoked.
    pub ttl: Option<Duration>,
    /// Who grants it, for the record (at most 128 bytes are kept).
    pub granted_by: String,
}

impl GrantRequest {
    /// A grant of `scopes` without cap or expiry.
    pub fn new(scopes: Scopes) -> Self {
        Self {
            scopes,
            max_file_size: None,
            ttl: None,
            granted_by: String::new(),
        }
    }

    /// Caps offered file sizes.
    #[must_use]
    pub fn max_file_size(mut self, bytes: u64) -> Self {
        self.max_file_size = Some(bytes);
        self
    }

    /// Ends the grant after `ttl`.
    #[must_use]
    pub fn lasting(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Records who grants it.
    #[must_use]
    pub fn granted_by(mut self, who: impl Into<String>) -> Self {
        let mut who = who.into();
        if who.len() > MAX_GRANTOR_LEN {
            let mut end = MAX_GRANTOR_LEN;
            while !who.is_char_boundary(end) {
                end -= 1;
            }
            who.truncate(end);
        }
        self.granted_by = who;
        self
    }
}

const MAX_GRANTOR_LEN: usize = 128;

/// One known peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownPeer {
    /// Its id.
    pub peer_id: PeerId,
    /// Addresses it may be reached at, most recent last.
    pub addresses: Vec<SocketAddr>,
    /// The subset of `addresses` the application gave or an authenticated
    /// connection showed; the others were announced or listed by someone.
    pub proven_addresses: Vec<SocketAddr>,
    /// How it was first learned.
    pub source: PeerSource,
    /// When it was first learned.
    pub first_seen: SystemTime,
    /// When anything was last heard from or about it.
    pub last_seen: SystemTime,
    /// Whether it was approved (by the application, its approval hook, an
    /// auto-accepting policy, or a connection the application asked for).
    /// An approved peer's later channels open without asking.
    pub approved: bool,
    /// Whether it was rejected: discovery no longer dials it.
    pub rejected: bool,
    /// Its live grants, the base grant ([`BASE_GRANT`]) first when it was
    /// approved; a connected peer without one is gated by the trust
    /// policy's default plus these.
    pub grants: Vec<GrantInfo>,
    /// Whether the network keeps a channel to it open, reconnecting with
    /// backoff.
    pub persistent: bool,
    /// The last dials to it (at most [`MAX_DIALS_KEPT`]), oldest first: why
    /// it is or is not connected. Not meant to be stored: they describe
    /// one run.
    pub last_dials: Vec<DialRecord>,
}

impl KnownPeer {
    /// A peer with nothing recorded yet but its id and source, seen now;
    /// for an application that builds records to
    /// [`restore_peer`](crate::PeerNetwork::restore_peer).
    pub fn new(peer_id: PeerId, source: PeerSource) -> Self {
        let now = SystemTime::now();
        Self {
            peer_id,
            addresses: Vec::new(),
            proven_addresses: Vec::new(),
            source,
            first_seen: now,
            last_seen: now,
            approved: false,
            rejected: false,
            grants: Vec::new(),
            persistent: false,
            last_dials: Vec::new(),
        }
    }
}

/// Dials remembered per peer.
pub const MAX_DIALS_KEPT: usize = 4;

/// One dial to a known peer and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialRecord {
    /// The address dialled.
    pub addr: SocketAddr,
    /// When it ended.
    pub at: SystemTime,
    /// Why it failed; `None` when the channel opened.
    pub error: Option<String>,
}
