//! `KnownPeers`: every peer this network has heard of, bounded.
//!
//! Pure bookkeeping (no IO, time passed in). The network keeps one table
//! behind a mutex and records here whatever it learns: manual additions,
//! inbound peers, `Identifier` and `CollectionShare` packets, discovery.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::SystemTime;

use p2pnet_proto::discovery::DiscoveryVia;
use p2pnet_proto::{PeerId, TrustLevel};

/// Addresses remembered per peer; the oldest is forgotten first.
pub(crate) const MAX_ADDRESSES_PER_PEER: usize = 8;

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
    /// LAN or WAN discovery.
    Discovery {
        /// How its announce arrived: broadcast, multicast or unicast.
        via: DiscoveryVia,
    },
}

/// One known peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownPeer {
    /// Its id.
    pub peer_id: PeerId,
    /// Addresses it may be reached at, most recent last.
    pub addresses: Vec<SocketAddr>,
    /// How it was first learned.
    pub source: PeerSource,
    /// When it was first learned.
    pub first_seen: SystemTime,
    /// When anything was last heard from or about it.
    pub last_seen: SystemTime,
    /// The trust level it was last approved at; an inbound reconnect at a
    /// remembered level skips the approval queue.
    pub trust: Option<TrustLevel>,
    /// Whether the network keeps a channel to it open, reconnecting with
    /// backoff.
    pub persistent: bool,
}

/// The table. Holds at most `capacity` peers; when full, the least recently
/// seen peer that is neither persistent nor trusted makes room. The
/// application sees it through [`PeerNetwork::known_peers`](crate::PeerNetwork::known_peers).
#[derive(Debug)]
pub(crate) struct KnownPeers {
    peers: HashMap<PeerId, KnownPeer>,
    capacity: usize,
}

/// What [`KnownPeers::observe`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Observed {
    /// A new entry.
    Added,
    /// An existing entry was refreshed.
    Updated,
    /// The table is full of peers that may not be evicted.
    Full,
}

impl KnownPeers {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            peers: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    /// Records that `peer` exists, maybe at `addr`.
    pub(crate) fn observe(
        &mut self,
        peer: PeerId,
        addr: Option<SocketAddr>,
        source: PeerSource,
        now: SystemTime,
    ) -> Observed {
        if let Some(known) = self.peers.get_mut(&peer) {
            known.last_seen = now;
            if let Some(addr) = addr {
                remember(&mut known.addresses, addr);
            }
            return Observed::Updated;
        }
        if self.peers.len() >= self.capacity && !self.evict_one() {
            return Observed::Full;
        }
        self.peers.insert(
            peer,
            KnownPeer {
                peer_id: peer,
                addresses: addr.into_iter().collect(),
                source,
                first_seen: now,
                last_seen: now,
                trust: None,
                persistent: false,
            },
        );
        Observed::Added
    }

    fn evict_one(&mut self) -> bool {
        let victim = self
            .peers
            .values()
            .filter(|p| !p.persistent && p.trust.is_none())
            .min_by_key(|p| p.last_seen)
            .map(|p| p.peer_id);
        victim.is_some_and(|id| self.peers.remove(&id).is_some())
    }

    pub(crate) fn set_trust(&mut self, peer: &PeerId, trust: Option<TrustLevel>) {
        if let Some(known) = self.peers.get_mut(peer) {
            known.trust = trust;
        }
    }

    pub(crate) fn set_persistent(&mut self, peer: &PeerId, persistent: bool) {
        if let Some(known) = self.peers.get_mut(peer) {
            known.persistent = persistent;
        }
    }

    pub(crate) fn remove(&mut self, peer: &PeerId) -> Option<KnownPeer> {
        self.peers.remove(peer)
    }

    /// One peer.
    pub(crate) fn get(&self, peer: &PeerId) -> Option<&KnownPeer> {
        self.peers.get(peer)
    }

    /// Every peer, most recently seen first.
    pub(crate) fn snapshot(&self) -> Vec<KnownPeer> {
        let mut all: Vec<_> = self.peers.values().cloned().collect();
        all.sort_by_key(|peer| std::cmp::Reverse(peer.last_seen));
        all
    }
}

fn remember(addresses: &mut Vec<SocketAddr>, addr: SocketAddr) {
    addresses.retain(|a| *a != addr);
    if addresses.len() >= MAX_ADDRESSES_PER_PEER {
        addresses.remove(0);
    }
    addresses.push(addr);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn id(n: u8) -> PeerId {
        PeerId::from_bytes([n; 32])
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn observe_adds_then_refreshes_and_keeps_first_source() {
        let mut table = KnownPeers::new(4);
        assert_eq!(
            table.observe(id(1), Some(addr(1)), PeerSource::Manual, at(1)),
            Observed::Added
        );
        assert_eq!(
            table.observe(id(1), Some(addr(2)), PeerSource::Inbound, at(5)),
            Observed::Updated
        );
        let peer = table.get(&id(1)).unwrap();
        assert_eq!(peer.source, PeerSource::Manual);
        assert_eq!(peer.first_seen, at(1));
        assert_eq!(peer.last_seen, at(5));
        assert_eq!(peer.addresses, vec![addr(1), addr(2)]);
    }

    #[test]
    fn addresses_are_bounded_and_deduplicated_most_recent_last() {
        let mut table = KnownPeers::new(4);
        for port in 0..20 {
            table.observe(
                id(1),
                Some(addr(port % 10)),
                PeerSource::Discovery {
                    via: DiscoveryVia::Broadcast,
                },
                at(1),
            );
        }
        let addresses = &table.get(&id(1)).unwrap().addresses;
        assert_eq!(addresses.len(), MAX_ADDRESSES_PER_PEER);
        assert_eq!(*addresses.last().unwrap(), addr(9));
        assert_eq!(addresses[0], addr(2));
    }

    #[test]
    fn a_full_table_evicts_the_stalest_unprotected_peer() {
        let mut table = KnownPeers::new(3);
        table.observe(id(1), None, PeerSource::Manual, at(1));
        table.observe(id(2), None, PeerSource::Inbound, at(2));
        table.observe(id(3), None, PeerSource::Inbound, at(3));
        table.set_persistent(&id(1), true);
        table.set_trust(&id(2), Some(TrustLevel::DEFAULT));
        assert_eq!(
            table.observe(id(4), None, PeerSource::Inbound, at(4)),
            Observed::Added
        );
        assert!(table.get(&id(3)).is_none(), "the only evictable peer goes");
        table.set_trust(&id(4), Some(TrustLevel::DEFAULT));
        assert_eq!(
            table.observe(id(5), None, PeerSource::Inbound, at(5)),
            Observed::Full
        );
        assert_eq!(table.snapshot().len(), 3);
    }

    #[test]
    fn snapshot_lists_most_recent_first() {
        let mut table = KnownPeers::new(8);
        table.observe(id(1), None, PeerSource::Manual, at(10));
        table.observe(id(2), None, PeerSource::Manual, at(30));
        table.observe(id(3), None, PeerSource::Manual, at(20));
        let order: Vec<_> = table.snapshot().iter().map(|p| p.peer_id).collect();
        assert_eq!(order, vec![id(2), id(3), id(1)]);
    }
}
