//! KnownPeers: every peer this network has heard of, bounded, and the one
//! place that changes it.
//!
//! `Peers` is the owner: tasks call its intention-named methods (a channel
//! observed a peer, the application approved one, a peer list named some)
//! and it mutates the table behind its own short mutex, emitting
//! `PeerAdded` / `PeerRemoved` itself. `PeerTable` is the pure table under
//! it (no IO, time passed in), tested on its own.
//!
//! Each peer also carries what the application decided about it (approved
//! or rejected) and its grants: which packet kinds it may send, up to which
//! file size, until when, granted by whom and when. A channel is gated by
//! the union of its peer's live grants (see [`Grant`](p2pnet_proto::Grant)).
//!
//! Addresses carry their provenance. A *proven* address was given by the
//! application or seen on an authenticated connection; a *claimed* one
//! comes from an unauthenticated announce or from another peer's list. A
//! claimed address never displaces a proven one, and a claimed address that
//! cannot be a peer's (unspecified, multicast, broadcast, port 0, loopback
//! named by a remote host) is never recorded, so a peer list cannot push
//! out the addresses a persistent peer is reconnected at.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use p2pnet_proto::packet::PeerRecord;
use p2pnet_proto::{Grant, GrantId, Grants, MAX_GRANTS, PeerId, Scopes};
use tokio::time::Instant;

use crate::clock::Clock;
use crate::event::{GrantChange, NetworkEvent};
use crate::event_bus::EventBus;
pub(crate) use crate::peer_info::{
    BASE_GRANT, DialRecord, GrantInfo, GrantRequest, KnownPeer, MAX_DIALS_KEPT, PeerSource,
};

/// Addresses remembered per peer; the oldest claimed one is forgotten first.
pub(crate) const MAX_ADDRESSES_PER_PEER: usize = 8;
/// Peers one sender's lists may add to the table.
pub(crate) const MAX_PEERS_PER_SHARER: usize = 64;
/// A full table evicts this share of its capacity at once.
const EVICTION_SHARE: usize = 16;

/// Where an address came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Origin {
    /// Given by the application or seen on an authenticated connection.
    Proven,
    /// Announced or listed by someone, unverified.
    Claimed,
}

/// What the application decided about a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Decision {
    /// Nothing yet: an inbound or discovered channel waits for approval.
    #[default]
    Undecided,
    /// Approved: later channels open without asking.
    Approved,
    /// Rejected: discovery does not dial it; its inbound channels ask again.
    Rejected,
}

/// A grant as the table keeps it: the public record plus its deadline on
/// the runtime's clock (which the core's clock is derived from).
#[derive(Debug, Clone, PartialEq, Eq)]
struct StoredGrant {
    info: GrantInfo,
    deadline: Option<Instant>,
}

impl StoredGrant {
    fn live(&self, now: Instant) -> bool {
        self.deadline.is_none_or(|deadline| now < deadline)
    }

    fn core(&self, clock: &Clock) -> Grant {
        Grant {
            id: self.info.id,
            scopes: self.info.scopes,
            max_file_size: self.info.max_file_size,
            expires_at: self.deadline.map(|deadline| clock.at(deadline)),
        }
    }
}

/// Why a grant could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GrantRefused {
    UnknownPeer,
    TooMany,
}

#[derive(Debug, Clone)]
struct Entry {
    peer_id: PeerId,
    addresses: Vec<(SocketAddr, Origin)>,
    source: PeerSource,
    first_seen: SystemTime,
    last_seen: SystemTime,
    decision: Decision,
    /// The base grant: set by an approval, cleared by a demotion.
    base: Option<StoredGrant>,
    /// Explicit grants, ids from 1, at most `MAX_GRANTS - 1`.
    grants: Vec<StoredGrant>,
    persistent: bool,
    dials: std::collections::VecDeque<DialRecord>,
}

impl Entry {
    fn protected(&self) -> bool {
        self.persistent || self.decision == Decision::Approved || !self.grants.is_empty()
    }

    fn public(&self) -> KnownPeer {
        KnownPeer {
            peer_id: self.peer_id,
            addresses: self.addresses.iter().map(|(a, _)| *a).collect(),
            proven_addresses: self
                .addresses
                .iter()
                .filter(|(_, o)| *o == Origin::Proven)
                .map(|(a, _)| *a)
                .collect(),
            source: self.source,
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            approved: self.decision == Decision::Approved,
            rejected: self.decision == Decision::Rejected,
            grants: self
                .base
                .iter()
                .chain(&self.grants)
                .map(|g| g.info.clone())
                .collect(),
            persistent: self.persistent,
            last_dials: self.dials.iter().cloned().collect(),
        }
    }

    /// Records `addr`, most recent last. A claimed address never pushes out
    /// a proven one; a proven address pushes out the oldest claimed one
    /// first.
    fn remember(&mut self, addr: SocketAddr, origin: Origin) {
        if let Some(i) = self.addresses.iter().position(|(a, _)| *a == addr) {
            let (_, had) = self.addresses.remove(i);
            let origin = if had == Origin::Proven { had } else { origin };
            self.addresses.push((addr, origin));
            return;
        }
        if self.addresses.len() >= MAX_ADDRESSES_PER_PEER {
            let victim = self
                .addresses
                .iter()
                .position(|(_, o)| *o == Origin::Claimed)
                .or(match origin {
                    Origin::Proven => Some(0),
                    Origin::Claimed => None,
                });
            let Some(victim) = victim else { return };
            self.addresses.remove(victim);
        }
        self.addresses.push((addr, origin));
    }
}

/// What [`PeerTable::observe`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Observed {
    /// A new entry.
    Added,
    /// An existing entry was refreshed.
    Updated,
    /// The table is full of peers that may not be evicted, or the sender's
    /// share is used up.
    Refused,
}

/// The pure table. Holds at most `capacity` peers; when full, the least
/// recently seen peer that is neither persistent nor approved makes room.
#[derive(Debug)]
pub(crate) struct PeerTable {
    peers: HashMap<PeerId, Entry>,
    capacity: usize,
}

impl PeerTable {
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
        addr: Option<(SocketAddr, Origin)>,
        source: PeerSource,
        now: SystemTime,
    ) -> Observed {
        if let Some(known) = self.peers.get_mut(&peer) {
            known.last_seen = now;
            if let Some((addr, origin)) = addr {
                known.remember(addr, origin);
            }
            return Observed::Updated;
        }
        if let PeerSource::Shared { by } = source {
            let shared_by = self
                .peers
                .values()
                .filter(|p| p.source == PeerSource::Shared { by })
                .count();
            if shared_by >= MAX_PEERS_PER_SHARER {
                return Observed::Refused;
            }
        }
        if self.peers.len() >= self.capacity && !self.evict_stalest() {
            return Observed::Refused;
        }
        self.peers.insert(
            peer,
            Entry {
                peer_id: peer,
                addresses: addr.into_iter().collect(),
                source,
                first_seen: now,
                last_seen: now,
                decision: Decision::Undecided,
                base: None,
                grants: Vec::new(),
                persistent: false,
                dials: std::collections::VecDeque::new(),
            },
        );
        Observed::Added
    }

    /// Puts back a peer an application stored earlier, replacing any entry
    /// of that id. False when the table is full of protected peers.
    fn restore(&mut self, entry: Entry) -> bool {
        if !self.peers.contains_key(&entry.peer_id)
            && self.peers.len() >= self.capacity
            && !self.evict_stalest()
        {
            return false;
        }
        self.peers.insert(entry.peer_id, entry);
        true
    }

    /// Makes room in a full table: the stalest unprotected peers go, a
    /// sixteenth of the table at once (at least one), so a stream of new
    /// peers pays one scan per sixteenth of the table, not one per peer.
    /// False when every peer is protected.
    fn evict_stalest(&mut self) -> bool {
        let mut candidates: Vec<_> = self
            .peers
            .values()
            .filter(|p| !p.protected())
            .map(|p| (p.last_seen, p.peer_id))
            .collect();
        if candidates.is_empty() {
            return false;
        }
        let batch = (self.capacity / EVICTION_SHARE).clamp(1, candidates.len());
        if batch < candidates.len() {
            candidates.select_nth_unstable(batch - 1);
        }
        for (_, peer) in &candidates[..batch] {
            self.peers.remove(peer);
        }
        true
    }

    fn get_mut(&mut self, peer: &PeerId) -> Option<&mut Entry> {
        self.peers.get_mut(peer)
    }

    fn get(&self, peer: &PeerId) -> Option<&Entry> {
        self.peers.get(peer)
    }

    fn remove(&mut self, peer: &PeerId) -> Option<Entry> {
        self.peers.remove(peer)
    }

    fn snapshot(&self) -> Vec<KnownPeer> {
        let mut all: Vec<_> = self.peers.values().map(Entry::public).collect();
        all.sort_by_key(|peer| std::cmp::Reverse(peer.last_seen));
        all
    }
}

/// Whether `addr`, named by a host at `told_by`, can be a peer's address.
pub(crate) fn plausible_peer_address(addr: SocketAddr, told_by: IpAddr) -> bool {
    let ip = addr.ip().to_canonical();
    let broadcast = matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
    if addr.port() == 0 || ip.is_unspecified() || ip.is_multicast() || broadcast {
        return false;
    }
    // A remote host naming our loopback is aiming us at ourselves.
    !ip.is_loopback() || told_by.to_canonical().is_loopback()
}

/// The owner of KnownPeers.
#[derive(Debug)]
pub(crate) struct Peers {
    table: Mutex<PeerTable>,
    local: PeerId,
    events: EventBus,
    next_grant: std::sync::atomic::AtomicU64,
}

impl Peers {
    pub(crate) fn new(local: PeerId, capacity: usize, events: EventBus) -> Self {
        Self {
            table: Mutex::new(PeerTable::new(capacity)),
            local,
            events,
            next_grant: std::sync::atomic::AtomicU64::new(1),
        }
    }

    fn table(&self) -> MutexGuard<'_, PeerTable> {
        // A panic inside one of these short sections leaves plain data,
        // still consistent enough to serve and shut down.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records that `peer` exists, maybe at `addr`; emits `PeerAdded` for a
    /// new one. False when there was no room for it (or it is us).
    pub(crate) fn observe(
        &self,
        peer: PeerId,
        addr: Option<(SocketAddr, Origin)>,
        source: PeerSource,
    ) -> bool {
        if peer == self.local {
            return false;
        }
        let observed = self.table().observe(peer, addr, source, SystemTime::now());
        match observed {
            Observed::Added => self.events.emit(NetworkEvent::PeerAdded { peer, source }),
            Observed::Updated => {}
            Observed::Refused => {
                tracing::debug!(%peer, ?source, "peer not recorded (table or share full)");
                return false;
            }
        }
        true
    }

    /// Records the peers of a `CollectionShare` from `by` (heard at
    /// `by_addr`): implausible addresses are dropped, and one sender adds
    /// at most [`MAX_PEERS_PER_SHARER`] peers.
    pub(crate) fn learn_shared(&self, by: PeerId, by_addr: SocketAddr, records: Vec<PeerRecord>) {
        let source = PeerSource::Shared { by };
        for record in records {
            let addresses: Vec<_> = record
                .addresses
                .into_iter()
                .filter(|a| plausible_peer_address(*a, by_addr.ip()))
                .collect();
            if addresses.is_empty() {
                self.observe(record.peer_id, None, source);
            }
            for addr in addresses {
                self.observe(record.peer_id, Some((addr, Origin::Claimed)), source);
            }
        }
    }

    /// The peer's addresses to dial, most recent last.
    pub(crate) fn addresses(&self, peer: &PeerId) -> Vec<SocketAddr> {
        self.table()
            .get(peer)
            .map(|p| p.addresses.iter().map(|(a, _)| *a).collect())
            .unwrap_or_default()
    }

    pub(crate) fn decision(&self, peer: &PeerId) -> Decision {
        self.table()
            .get(peer)
            .map(|p| p.decision)
            .unwrap_or_default()
    }

    /// Whether `peer` was learned otherwise than by discovery (the
    /// application, a connection): discovery then adds no addresses.
    pub(crate) fn learned_otherwise(&self, peer: &PeerId) -> bool {
        self.table()
            .get(peer)
            .is_some_and(|p| !matches!(p.source, PeerSource::Discovery { .. }))
    }

    /// Records an approval whose base grant lets the peer send `base`;
    /// false if the peer is not known. Explicit grants stay.
    pub(crate) fn approve(&self, peer: &PeerId, base: Scopes, by: &str) -> bool {
        let mut table = self.table();
        let Some(entry) = table.get_mut(peer) else {
            return false;
        };
        entry.decision = Decision::Approved;
        entry.base = Some(StoredGrant {
            info: GrantInfo {
                id: BASE_GRANT,
                scopes: base,
                max_file_size: None,
                expires_at: None,
                granted_by: by.to_owned(),
                granted_at: SystemTime::now(),
            },
            deadline: None,
        });
        true
    }

    /// Puts back a peer as the application stored it: addresses with their
    /// provenance, source, times, decision, base and explicit grants
    /// (expired ones are dropped), persistence. Grant ids stay unique: the
    /// counter moves past the restored ones. False when the table is full
    /// of peers that may not be evicted.
    pub(crate) fn restore(&self, known: KnownPeer) -> bool {
        if known.peer_id == self.local {
            return false;
        }
        let now = Instant::now();
        let wall = SystemTime::now();
        let stored = |info: GrantInfo| -> Option<StoredGrant> {
            let deadline = match info.expires_at {
                None => None,
                Some(at) => Some(now + at.duration_since(wall).ok()?),
            };
            Some(StoredGrant { info, deadline })
        };
        let mut base = None;
        let mut grants = Vec::new();
        for info in known.grants {
            if info.id == BASE_GRANT {
                base = stored(info);
            } else if grants.len() < MAX_GRANTS - 1
                && let Some(grant) = stored(info)
            {
                self.next_grant
                    .fetch_max(grant.info.id.0 + 1, std::sync::atomic::Ordering::Relaxed);
                grants.push(grant);
            }
        }
        let decision = if known.approved {
            Decision::Approved
        } else if known.rejected {
            Decision::Rejected
        } else {
            Decision::Undecided
        };
        let mut entry = Entry {
            peer_id: known.peer_id,
            addresses: Vec::new(),
            source: known.source,
            first_seen: known.first_seen,
            last_seen: known.last_seen,
            decision,
            base,
            grants,
            persistent: known.persistent,
            dials: std::collections::VecDeque::new(),
        };
        for addr in known.addresses {
            let origin = if known.proven_addresses.contains(&addr) {
                Origin::Proven
            } else {
                Origin::Claimed
            };
            entry.remember(addr, origin);
        }
        self.table().restore(entry)
    }

    /// Records how a dial to a known peer ended (unknown peers are not
    /// added for it).
    pub(crate) fn record_dial(&self, peer: &PeerId, addr: SocketAddr, error: Option<String>) {
        if let Some(entry) = self.table().get_mut(peer) {
            if entry.dials.len() >= MAX_DIALS_KEPT {
                entry.dials.pop_front();
            }
            entry.dials.push_back(DialRecord {
                addr,
                at: SystemTime::now(),
                error,
            });
        }
    }

    /// Records a rejection: the peer's approval and grants are gone.
    pub(crate) fn reject(&self, peer: &PeerId) {
        if let Some(entry) = self.table().get_mut(peer) {
            entry.decision = Decision::Rejected;
            entry.base = None;
            entry.grants.clear();
        }
    }

    /// Adds a grant; emits `GrantChanged`.
    pub(crate) fn grant(
        &self,
        peer: &PeerId,
        request: GrantRequest,
    ) -> Result<GrantInfo, GrantRefused> {
        self.add_grant(peer, request, false).map(|(info, _)| info)
    }

    /// Adds a grant unless a live one already gives at least its scopes
    /// with no size cap and no expiry, which is returned instead; whether
    /// one was added. Emits `GrantChanged` only for an addition.
    pub(crate) fn grant_unless_covered(
        &self,
        peer: &PeerId,
        request: GrantRequest,
    ) -> Result<(GrantInfo, bool), GrantRefused> {
        self.add_grant(peer, request, true)
    }

    fn add_grant(
        &self,
        peer: &PeerId,
        request: GrantRequest,
        reuse: bool,
    ) -> Result<(GrantInfo, bool), GrantRefused> {
        let now = Instant::now();
        let wall = SystemTime::now();
        let mut table = self.table();
        let entry = table.get_mut(peer).ok_or(GrantRefused::UnknownPeer)?;
        entry.grants.retain(|g| g.live(now));
        if reuse
            && let Some(existing) = entry.grants.iter().find(|g| {
                g.info.scopes.contains(request.scopes)
                    && g.info.max_file_size.is_none()
                    && g.info.expires_at.is_none()
            })
        {
            return Ok((existing.info.clone(), false));
        }
        if entry.grants.len() >= MAX_GRANTS - 1 {
            return Err(GrantRefused::TooMany);
        }
        let id = GrantId(
            self.next_grant
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        );
        let info = GrantInfo {
            id,
            scopes: request.scopes,
            max_file_size: request.max_file_size,
            expires_at: request.ttl.map(|ttl| wall + ttl),
            granted_by: request.granted_by,
            granted_at: wall,
        };
        entry.grants.push(StoredGrant {
            info: info.clone(),
            deadline: request.ttl.map(|ttl| now + ttl),
        });
        drop(table);
        self.events.emit(NetworkEvent::GrantChanged {
            peer: *peer,
            grant: info.clone(),
            change: GrantChange::Granted,
        });
        Ok((info, true))
    }

    /// Removes an explicit grant; emits `GrantChanged`. `Ok(false)` when
    /// the peer has no such grant.
    pub(crate) fn revoke(&self, peer: &PeerId, id: GrantId) -> Result<bool, GrantRefused> {
        let mut table = self.table();
        let entry = table.get_mut(peer).ok_or(GrantRefused::UnknownPeer)?;
        let Some(i) = entry.grants.iter().position(|g| g.info.id == id) else {
            return Ok(false);
        };
        let gone = entry.grants.remove(i);
        drop(table);
        self.events.emit(NetworkEvent::GrantChanged {
            peer: *peer,
            grant: gone.info,
            change: GrantChange::Revoked,
        });
        Ok(true)
    }

    /// Back to the policy's default: the base grant and every explicit
    /// grant go (the approval stays); emits `GrantChanged` for each.
    pub(crate) fn demote(&self, peer: &PeerId) -> Result<(), GrantRefused> {
        let mut table = self.table();
        let entry = table.get_mut(peer).ok_or(GrantRefused::UnknownPeer)?;
        let gone: Vec<_> = entry
            .base
            .take()
            .into_iter()
            .chain(entry.grants.drain(..))
            .collect();
        drop(table);
        for grant in gone {
            self.events.emit(NetworkEvent::GrantChanged {
                peer: *peer,
                grant: grant.info,
                change: GrantChange::Revoked,
            });
        }
        Ok(())
    }

    /// The core grants that gate `peer`'s channel now: its base grant (or
    /// the policy's `default` scopes) and its live explicit grants. Expired
    /// grants are dropped first, with their events.
    pub(crate) fn channel_grants(&self, peer: &PeerId, default: Scopes, clock: &Clock) -> Grants {
        self.expire(peer);
        let table = self.table();
        let entry = table.get(peer);
        let base = entry
            .and_then(|e| e.base.as_ref())
            .map_or(Grant::new(BASE_GRANT, default), |base| base.core(clock));
        let mut grants = Grants::single(base);
        for grant in entry.map(|e| e.grants.as_slice()).unwrap_or_default() {
            // At most MAX_GRANTS - 1 explicit grants: always room.
            let _ = grants.insert(grant.core(clock));
        }
        grants
    }

    /// Drops `peer`'s grants that ended; emits `GrantChanged` for each.
    pub(crate) fn expire(&self, peer: &PeerId) {
        let now = Instant::now();
        let mut table = self.table();
        let Some(entry) = table.get_mut(peer) else {
            return;
        };
        let mut ended = Vec::new();
        entry.grants.retain(|g| {
            let live = g.live(now);
            if !live {
                ended.push(g.info.clone());
            }
            live
        });
        drop(table);
        for grant in ended {
            self.events.emit(NetworkEvent::GrantChanged {
                peer: *peer,
                grant,
                change: GrantChange::Expired,
            });
        }
    }

    /// `peer`'s live grants, base first; `None` if it is not known.
    pub(crate) fn grants(&self, peer: &PeerId) -> Option<Vec<GrantInfo>> {
        self.expire(peer);
        self.table().get(peer).map(|e| e.public().grants)
    }

    pub(crate) fn set_persistent(&self, peer: &PeerId, persistent: bool) {
        if let Some(entry) = self.table().get_mut(peer) {
            entry.persistent = persistent;
        }
    }

    /// Forgets a peer with everything decided about it; emits
    /// `PeerRemoved`.
    pub(crate) fn forget(&self, peer: &PeerId) -> bool {
        let removed = self.table().remove(peer).is_some();
        if removed {
            self.events.emit(NetworkEvent::PeerRemoved { peer: *peer });
        }
        removed
    }

    /// Forgets a peer that discovery found, now that it went quiet and has
    /// no channel; peers the application added, keeps or approved stay.
    pub(crate) fn prune_discovered(&self, peer: &PeerId) -> bool {
        let mut table = self.table();
        let prunable = table
            .get(peer)
            .is_some_and(|k| matches!(k.source, PeerSource::Discovery { .. }) && !k.protected());
        if prunable {
            table.remove(peer);
            drop(table);
            tracing::debug!(%peer, "pruned a discovered peer that left");
            self.events.emit(NetworkEvent::PeerRemoved { peer: *peer });
        }
        prunable
    }

    pub(crate) fn get(&self, peer: &PeerId) -> Option<KnownPeer> {
        self.table().get(peer).map(Entry::public)
    }

    pub(crate) fn snapshot(&self) -> Vec<KnownPeer> {
        self.table().snapshot()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use p2pnet_proto::discovery::DiscoveryVia;

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

    fn claimed(port: u16) -> Option<(SocketAddr, Origin)> {
        Some((addr(port), Origin::Claimed))
    }

    fn proven(port: u16) -> Option<(SocketAddr, Origin)> {
        Some((addr(port), Origin::Proven))
    }

    fn addresses(table: &PeerTable, peer: u8) -> Vec<SocketAddr> {
        table
            .get(&id(peer))
            .unwrap()
            .addresses
            .iter()
            .map(|(a, _)| *a)
            .collect()
    }

    #[test]
    fn observe_adds_then_refreshes_and_keeps_first_source() {
        let mut table = PeerTable::new(4);
        assert_eq!(
            table.observe(id(1), proven(1), PeerSource::Manual, at(1)),
            Observed::Added
        );
        assert_eq!(
            table.observe(id(1), proven(2), PeerSource::Inbound, at(5)),
            Observed::Updated
        );
        let peer = table.get(&id(1)).unwrap().public();
        assert_eq!(peer.source, PeerSource::Manual);
        assert_eq!(peer.first_seen, at(1));
        assert_eq!(peer.last_seen, at(5));
        assert_eq!(peer.addresses, vec![addr(1), addr(2)]);
    }

    #[test]
    fn addresses_are_bounded_and_deduplicated_most_recent_last() {
        let mut table = PeerTable::new(4);
        let source = PeerSource::Discovery {
            via: DiscoveryVia::Broadcast,
        };
        for port in 0..20 {
            table.observe(id(1), claimed(port % 10), source, at(1));
        }
        let addresses = addresses(&table, 1);
        assert_eq!(addresses.len(), MAX_ADDRESSES_PER_PEER);
        assert_eq!(*addresses.last().unwrap(), addr(9));
        assert_eq!(addresses[0], addr(2));
    }

    #[test]
    fn claimed_addresses_never_displace_proven_ones() {
        let mut table = PeerTable::new(4);
        let by = PeerSource::Shared { by: id(9) };
        for port in 1..=MAX_ADDRESSES_PER_PEER as u16 {
            table.observe(id(1), proven(port), PeerSource::Manual, at(1));
        }
        for port in 100..200 {
            table.observe(id(1), claimed(port), by, at(2));
        }
        let proven_ports: Vec<u16> = (1..=MAX_ADDRESSES_PER_PEER as u16).collect();
        let kept: Vec<u16> = addresses(&table, 1).iter().map(SocketAddr::port).collect();
        assert_eq!(kept, proven_ports, "every proven address survives");
        // A claimed address already known as proven stays proven.
        table.observe(id(1), claimed(3), by, at(3));
        let peer = table.get(&id(1)).unwrap().public();
        assert_eq!(peer.proven_addresses.len(), MAX_ADDRESSES_PER_PEER);
        // A proven address pushes out claimed ones first.
        let mut table = PeerTable::new(4);
        table.observe(id(1), proven(1), PeerSource::Manual, at(1));
        for port in 100..107 {
            table.observe(id(1), claimed(port), by, at(1));
        }
        table.observe(id(1), proven(2), PeerSource::Manual, at(1));
        let peer = table.get(&id(1)).unwrap().public();
        assert_eq!(peer.proven_addresses, vec![addr(1), addr(2)]);
        assert!(!peer.addresses.contains(&addr(100)));
    }

    #[test]
    fn a_full_table_evicts_a_sixteenth_of_its_stalest_unprotected_peers() {
        let mut table = PeerTable::new(64);
        for n in 0..64u8 {
            table.observe(id(n), None, PeerSource::Inbound, at(u64::from(n) + 1));
        }
        table.get_mut(&id(0)).unwrap().persistent = true;
        assert_eq!(
            table.observe(id(200), None, PeerSource::Inbound, at(100)),
            Observed::Added
        );
        // The 4 stalest unprotected (1..=4) went; the protected stalest stayed.
        assert!(table.get(&id(0)).is_some());
        for gone in 1..=4 {
            assert!(table.get(&id(gone)).is_none(), "{gone}");
        }
        assert!(table.get(&id(5)).is_some());
        assert_eq!(table.snapshot().len(), 61);
    }

    #[test]
    fn a_full_table_evicts_the_stalest_unprotected_peer() {
        let mut table = PeerTable::new(3);
        table.observe(id(1), None, PeerSource::Manual, at(1));
        table.observe(id(2), None, PeerSource::Inbound, at(2));
        table.observe(id(3), None, PeerSource::Inbound, at(3));
        table.get_mut(&id(1)).unwrap().persistent = true;
        table.get_mut(&id(2)).unwrap().decision = Decision::Approved;
        assert_eq!(
            table.observe(id(4), None, PeerSource::Inbound, at(4)),
            Observed::Added
        );
        assert!(table.get(&id(3)).is_none(), "the only evictable peer goes");
        table.get_mut(&id(4)).unwrap().decision = Decision::Approved;
        assert_eq!(
            table.observe(id(5), None, PeerSource::Inbound, at(5)),
            Observed::Refused
        );
        assert_eq!(table.snapshot().len(), 3);
    }

    #[test]
    fn one_sender_adds_a_bounded_number_of_peers() {
        let mut table = PeerTable::new(4096);
        let by = PeerSource::Shared { by: id(0) };
        let mut added = 0;
        for n in 0..200u16 {
            let mut bytes = [1u8; 32];
            bytes[..2].copy_from_slice(&n.to_be_bytes());
            if table.observe(PeerId::from_bytes(bytes), None, by, at(1)) == Observed::Added {
                added += 1;
            }
        }
        assert_eq!(added, MAX_PEERS_PER_SHARER);
    }

    #[test]
    fn snapshot_lists_most_recent_first() {
        let mut table = PeerTable::new(8);
        table.observe(id(1), None, PeerSource::Manual, at(10));
        table.observe(id(2), None, PeerSource::Manual, at(30));
        table.observe(id(3), None, PeerSource::Manual, at(20));
        let order: Vec<_> = table.snapshot().iter().map(|p| p.peer_id).collect();
        assert_eq!(order, vec![id(2), id(3), id(1)]);
    }

    #[test]
    fn implausible_addresses_are_refused() {
        let remote: IpAddr = "192.0.2.9".parse().unwrap();
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let table = [
            ("192.0.2.10:4000", remote, true),
            ("[2001:db8::1]:4000", remote, true),
            ("192.0.2.10:0", remote, false),
            ("0.0.0.0:4000", remote, false),
            ("[::]:4000", remote, false),
            ("224.0.0.1:4000", remote, false),
            ("[ff02::1]:4000", remote, false),
            ("255.255.255.255:4000", remote, false),
            ("127.0.0.1:4000", remote, false),
            ("[::1]:4000", remote, false),
            ("[::ffff:127.0.0.1]:4000", remote, false),
            ("127.0.0.1:4000", local, true),
        ];
        for (addr, told_by, expected) in table {
            let addr: SocketAddr = addr.parse().unwrap();
            assert_eq!(
                plausible_peer_address(addr, told_by),
                expected,
                "{addr} told by {told_by}"
            );
        }
    }
}
