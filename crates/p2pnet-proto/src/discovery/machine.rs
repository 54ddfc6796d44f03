//! The discovery state machine: when to announce, whom to answer, who has
//! gone quiet.
//!
//! [`Discovery`] never touches a socket or a clock. The runtime feeds it
//! every datagram received on a discovery socket ([`Discovery::on_datagram`],
//! with how it arrived) and the current time, and polls it:
//!
//! * [`poll_transmit`](Discovery::poll_transmit): an announce for
//!   [`Destination::Everywhere`] (the runtime expands that into broadcast,
//!   multicast and static hosts) or a unicast reply to one source;
//! * [`poll_timeout`](Discovery::poll_timeout): when to call again;
//! * [`expire`](Discovery::expire): peers not heard for the TTL.
//!
//! # Schedule
//!
//! Fast, then quiet. The first announce goes out at once, then again after
//! [`first_repeat`](DiscoveryParams::first_repeat), doubling until the
//! quiet interval is reached. The first [`SOLICITING_ANNOUNCES`] ask for
//! unicast answers, and a receiver answers a peer it has never heard (or
//! that restarted) at once, so two nodes learn each other within one round
//! trip. Afterwards the node announces every
//! [`quiet_interval`](DiscoveryParams::quiet_interval), or every
//! [`settled_interval`](DiscoveryParams::settled_interval) once the runtime
//! reports that every heard peer is connected. Every interval is jittered
//! so that nodes started together do not stay in lockstep. An address
//! change starts over with the fast phase.
//!
//! # Bounds
//!
//! Replies are limited per peer (one per
//! [`reply_interval`](DiscoveryParams::reply_interval) for solicitations)
//! and overall (a token bucket of
//! [`replies_per_second`](DiscoveryParams::replies_per_second)), so spoofed
//! announces cannot turn a node into a reflector; a reply is never larger
//! than the announce that caused it (it carries fewer addresses if need
//! be), and the runtime refuses replies where the source could be spoofed
//! from afar (`may_reply`). At most [`MAX_PENDING_REPLIES`] wait to be
//! sent. The table of heard peers holds at most
//! [`max_peers`](DiscoveryParams::max_peers); a new peer in a full table
//! evicts the one heard least recently.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::announce::{Announce, AnnounceError, MAX_ANNOUNCE_ADDRESSES};
use crate::error::Error;
use crate::identity::PeerId;
use crate::time::Instant;

/// Announces at the start of a fast phase that ask for unicast answers.
pub const SOLICITING_ANNOUNCES: u32 = 3;
/// Replies waiting to be sent.
pub const MAX_PENDING_REPLIES: usize = 64;

/// How an announce reached this node (from the destination address of the
/// received datagram).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DiscoveryVia {
    /// An IPv4 broadcast (limited or subnet).
    Broadcast,
    /// An IPv4 or IPv6 multicast group.
    Multicast,
    /// Sent to one of this node's addresses: a reply, or an announce to a
    /// designated port from a node that lists this host.
    Unicast,
}

/// Timing and bounds of a [`Discovery`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryParams {
    /// Delay before the first repeat of the start announce; doubles on every
    /// repeat until it reaches `quiet_interval`. Default 250 ms.
    pub first_repeat: Duration,
    /// Interval between announces after the fast phase. Default 30 s.
    pub quiet_interval: Duration,
    /// Interval once every heard peer is connected. Default 60 s.
    pub settled_interval: Duration,
    /// Each interval is drawn uniformly from `interval × (1 ± jitter/100)`.
    /// Default 20, at most 50.
    pub jitter_percent: u8,
    /// A peer not heard for this long is expired. Default 150 s, at least
    /// twice `settled_interval`.
    pub peer_ttl: Duration,
    /// Solicitations from one peer are answered at most once per this.
    /// Default 1 s.
    pub reply_interval: Duration,
    /// Unicast replies per second, overall; also the burst. Default 32.
    pub replies_per_second: u32,
    /// Peers remembered. Default 1024.
    pub max_peers: usize,
}

impl Default for DiscoveryParams {
    fn default() -> Self {
        Self {
            first_repeat: Duration::from_millis(250),
            quiet_interval: Duration::from_secs(30),
            settled_interval: Duration::from_secs(60),
            jitter_percent: 20,
            peer_ttl: Duration::from_secs(150),
            reply_interval: Duration::from_secs(1),
            replies_per_second: 32,
            max_peers: 1024,
        }
    }
}

impl DiscoveryParams {
    /// Checks the relations between the values; the message names the
    /// offending field.
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.first_repeat.is_zero() {
            return Err("first_repeat must be positive");
        }
        if self.quiet_interval < self.first_repeat {
            return Err("quiet_interval must be at least first_repeat");
        }
        if self.settled_interval < self.quiet_interval {
            return Err("settled_interval must be at least quiet_interval");
        }
        if self.jitter_percent > 50 {
            return Err("jitter_percent must be at most 50");
        }
        if self.peer_ttl < self.settled_interval.saturating_mul(2) {
            return Err("peer_ttl must be at least twice settled_interval");
        }
        if self.replies_per_second == 0 {
            return Err("replies_per_second must be positive");
        }
        if self.max_peers == 0 {
            return Err("max_peers must be positive");
        }
        Ok(())
    }
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where.
    pub to: Destination,
    /// The encoded announce.
    pub payload: Vec<u8>,
}

/// Where a [`Transmit`] goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// Every enabled mechanism: broadcast, multicast groups, static hosts.
    Everywhere,
    /// One address: the source of an announce being answered.
    Unicast(SocketAddr),
}

/// What this node knows of a peer it has heard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeardPeer {
    /// The claimed id (proved only by a handshake).
    pub peer_id: PeerId,
    /// Its instance id.
    pub instance: u64,
    /// How its last announce arrived.
    pub via: DiscoveryVia,
    /// Where its last announce came from.
    pub source: SocketAddr,
    /// The TCP ports it listens on.
    pub ports: Vec<u16>,
    /// Addresses to try, the source first (see
    /// [`Announce::candidate_addresses`]).
    pub addresses: Vec<IpAddr>,
    /// When it was first heard.
    pub first_heard: Instant,
    /// When it was last heard.
    pub last_heard: Instant,
    last_replied: Option<Instant>,
}

impl HeardPeer {
    /// Every address × port to dial, in order of preference.
    pub fn candidates(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.addresses.iter().flat_map(|ip| {
            self.ports
                .iter()
                .map(move |port| SocketAddr::new(*ip, *port))
        })
    }
}

/// A peer was heard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryEvent {
    /// What is known of it now.
    pub peer: HeardPeer,
    /// First time heard (or heard again after it expired or was evicted).
    pub new: bool,
    /// Its instance id changed: it restarted.
    pub restarted: bool,
}

/// Counters, for status displays and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiscoveryStats {
    /// Datagrams handed to [`Discovery::on_datagram`].
    pub received: u64,
    /// Valid announces from other peers.
    pub accepted: u64,
    /// Our own announces (looped back by broadcast or multicast).
    pub own: u64,
    /// Announces with our peer id but another instance: another process
    /// uses the same identity.
    pub identity_clashes: u64,
    /// Datagrams of another protocol (bad magic).
    pub foreign: u64,
    /// Announces of another network name.
    pub other_network: u64,
    /// Announces that break the format (truncated, too long, bad fields,
    /// unknown version or flags).
    pub malformed: u64,
    /// Announces produced for every destination.
    pub announces_sent: u64,
    /// Unicast replies produced.
    pub replies_sent: u64,
    /// Replies not sent because of the rate limits or a full queue.
    pub replies_suppressed: u64,
    /// Peers evicted from a full table.
    pub evicted: u64,
    /// Peers expired after the TTL.
    pub expired: u64,
    /// Valid announces the runtime refused (its access list denies the
    /// peer): neither answered nor remembered.
    pub denied: u64,
}

impl DiscoveryStats {
    /// Datagrams dropped as not ours or not valid.
    pub fn garbage(&self) -> u64 {
        self.foreign + self.other_network + self.malformed
    }
}

/// The discovery state machine; see the [module docs](self).
#[derive(Debug)]
pub struct Discovery {
    network: String,
    local: Announce,
    params: DiscoveryParams,
    next_announce: Instant,
    /// The next fast-phase delay; `None` in the quiet phase.
    fast_delay: Option<Duration>,
    solicits_left: u32,
    settled: bool,
    peers: BTreeMap<PeerId, HeardPeer>,
    /// Destinations and the size of the announce each one sent.
    replies: VecDeque<(SocketAddr, usize)>,
    /// Peers evicted from a full table, reported by [`Self::expire`].
    evicted: Vec<PeerId>,
    /// Token bucket as a theoretical arrival time (GCRA).
    reply_tat: Instant,
    rng: u64,
    stats: DiscoveryStats,
}

impl Discovery {
    /// A machine announcing `local` (its `reply`/`solicit` flags are
    /// ignored) on network `network`, starting at `now`. `seed` drives the
    /// jitter.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for inconsistent parameters,
    /// [`Error::Announce`] if `local` does not encode.
    pub fn new(
        network: impl Into<String>,
        local: Announce,
        params: DiscoveryParams,
        now: Instant,
        seed: u64,
    ) -> Result<Self, Error> {
        params.validate().map_err(Error::InvalidConfig)?;
        let network = network.into();
        local.encode(&network)?;
        Ok(Self {
            network,
            local,
            params,
            next_announce: now,
            fast_delay: None,
            solicits_left: 0,
            settled: false,
            peers: BTreeMap::new(),
            replies: VecDeque::new(),
            evicted: Vec::new(),
            reply_tat: now,
            rng: seed,
            stats: DiscoveryStats::default(),
        }
        .restarted(now))
    }

    fn restarted(mut self, now: Instant) -> Self {
        self.restart(now);
        self
    }

    /// Starts a fast phase now (the runtime's addresses changed, or it
    /// wants to be found quickly again).
    pub fn restart(&mut self, now: Instant) {
        self.next_announce = now;
        self.fast_delay = Some(self.params.first_repeat);
        self.solicits_left = SOLICITING_ANNOUNCES;
    }

    /// Replaces the ports and addresses announced; a change restarts the
    /// fast phase. Addresses beyond [`MAX_ANNOUNCE_ADDRESSES`] are dropped.
    ///
    /// # Errors
    /// The ports are invalid (none, more than four, or port 0).
    pub fn set_local(
        &mut self,
        ports: Vec<u16>,
        mut addresses: Vec<IpAddr>,
        now: Instant,
    ) -> Result<(), AnnounceError> {
        addresses.truncate(MAX_ANNOUNCE_ADDRESSES);
        if ports == self.local.ports && addresses == self.local.addresses {
            return Ok(());
        }
        let candidate = Announce {
            ports,
            addresses,
            ..self.local.clone()
        };
        candidate.encode(&self.network)?;
        self.local = candidate;
        self.restart(now);
        Ok(())
    }

    /// Tells whether every heard peer is connected; a settled node
    /// announces less often.
    pub fn set_settled(&mut self, settled: bool, now: Instant) {
        if self.settled && !settled && self.fast_delay.is_none() {
            let sooner = now + self.params.quiet_interval;
            self.next_announce = self.next_announce.min(sooner);
        }
        self.settled = settled;
    }

    /// The announce this node sends.
    pub fn local(&self) -> &Announce {
        &self.local
    }

    /// Counters.
    pub fn stats(&self) -> DiscoveryStats {
        self.stats
    }

    /// Peers heard and not yet expired.
    pub fn peers(&self) -> impl Iterator<Item = &HeardPeer> {
        self.peers.values()
    }

    /// One heard peer.
    pub fn peer(&self, peer: &PeerId) -> Option<&HeardPeer> {
        self.peers.get(peer)
    }

    /// Handles one received datagram. `Ok(None)`: our own announce.
    /// `may_reply` is false where the runtime cannot trust the source
    /// address enough to send anything to it (a broadcast from a source
    /// outside the link's subnets).
    ///
    /// # Errors
    /// The datagram is not a valid announce of this network; it is counted
    /// and otherwise ignored.
    pub fn on_datagram(
        &mut self,
        now: Instant,
        datagram: &[u8],
        source: SocketAddr,
        via: DiscoveryVia,
        may_reply: bool,
    ) -> Result<Option<DiscoveryEvent>, AnnounceError> {
        self.on_datagram_admitting(now, datagram, source, via, may_reply, |_| true)
    }

    /// [`on_datagram`](Self::on_datagram) with the runtime's access check:
    /// an announce from another peer that `admit` refuses is counted as
    /// denied and changes nothing (`Ok(None)`): no answer, no record.
    ///
    /// # Errors
    /// As [`on_datagram`](Self::on_datagram).
    pub fn on_datagram_admitting(
        &mut self,
        now: Instant,
        datagram: &[u8],
        source: SocketAddr,
        via: DiscoveryVia,
        may_reply: bool,
        admit: impl FnOnce(&Announce) -> bool,
    ) -> Result<Option<DiscoveryEvent>, AnnounceError> {
        self.stats.received += 1;
        let announce = match Announce::decode(datagram, &self.network) {
            Ok(announce) => announce,
            Err(err) => {
                match err {
                    AnnounceError::Foreign => self.stats.foreign += 1,
                    AnnounceError::OtherNetwork => self.stats.other_network += 1,
                    _ => self.stats.malformed += 1,
                }
                return Err(err);
            }
        };
        if announce.peer_id == self.local.peer_id {
            self.stats.own += 1;
            if announce.instance != self.local.instance {
                self.stats.identity_clashes += 1;
            }
            return Ok(None);
        }
        if !admit(&announce) {
            self.stats.denied += 1;
            return Ok(None);
        }
        self.stats.accepted += 1;
        let addresses = announce.candidate_addresses(source.ip());
        let (new, restarted) = match self.peers.get_mut(&announce.peer_id) {
            Some(peer) => {
                let restarted = peer.instance != announce.instance;
                peer.instance = announce.instance;
                peer.via = via;
                peer.source = source;
                peer.ports.clone_from(&announce.ports);
                peer.addresses = addresses;
                peer.last_heard = now;
                (false, restarted)
            }
            None => {
                if self.peers.len() >= self.params.max_peers {
                    self.evict_one();
                }
                self.peers.insert(
                    announce.peer_id,
                    HeardPeer {
                        peer_id: announce.peer_id,
                        instance: announce.instance,
                        via,
                        source,
                        ports: announce.ports.clone(),
                        addresses,
                        first_heard: now,
                        last_heard: now,
                        last_replied: None,
                    },
                );
                (true, false)
            }
        };
        if !announce.reply && may_reply {
            self.maybe_reply(now, &announce, datagram.len(), new || restarted);
        }
        let peer = self.peers.get(&announce.peer_id).cloned();
        Ok(peer.map(|peer| DiscoveryEvent {
            peer,
            new,
            restarted,
        }))
    }

    fn maybe_reply(&mut self, now: Instant, announce: &Announce, len: usize, first_contact: bool) {
        let Some(peer) = self.peers.get(&announce.peer_id) else {
            return;
        };
        let source = peer.source;
        let solicited = announce.solicit
            && peer
                .last_replied
                .is_none_or(|at| now - at >= self.params.reply_interval);
        if !(first_contact || solicited) {
            return;
        }
        if self.replies.len() >= MAX_PENDING_REPLIES || !self.take_reply_token(now) {
            self.stats.replies_suppressed += 1;
            return;
        }
        if let Some(peer) = self.peers.get_mut(&announce.peer_id) {
            peer.last_replied = Some(now);
        }
        self.replies.push_back((source, len));
    }

    /// GCRA: one token per `1 s / rate`, a burst of `rate`.
    fn take_reply_token(&mut self, now: Instant) -> bool {
        let rate = self.params.replies_per_second.max(1);
        let emission = Duration::from_secs(1) / rate;
        let burst = Duration::from_secs(1);
        let tat = self.reply_tat.max(now);
        if tat - now + emission > burst {
            return false;
        }
        self.reply_tat = tat + emission;
        true
    }

    fn evict_one(&mut self) {
        let oldest = self
            .peers
            .values()
            .min_by_key(|peer| peer.last_heard)
            .map(|peer| peer.peer_id);
        if let Some(oldest) = oldest {
            self.peers.remove(&oldest);
            self.stats.evicted += 1;
            self.evicted.push(oldest);
        }
    }

    /// The next datagram to send at `now`, if any: pending replies first,
    /// then a due announce.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        if let Some((to, max_len)) = self.replies.pop_front() {
            self.stats.replies_sent += 1;
            return Some(Transmit {
                to: Destination::Unicast(to),
                payload: self.encode_within(max_len),
            });
        }
        if now < self.next_announce {
            return None;
        }
        let solicit = self.solicits_left > 0;
        self.solicits_left = self.solicits_left.saturating_sub(1);
        let interval = match self.fast_delay {
            Some(delay) => {
                let next = delay.saturating_mul(2);
                self.fast_delay = (next < self.params.quiet_interval).then_some(next);
                delay
            }
            None if self.settled => self.params.settled_interval,
            None => self.params.quiet_interval,
        };
        self.next_announce = now + self.jittered(interval);
        self.stats.announces_sent += 1;
        Some(Transmit {
            to: Destination::Everywhere,
            payload: self.encode(false, solicit),
        })
    }

    fn encode(&self, reply: bool, solicit: bool) -> Vec<u8> {
        let announce = Announce {
            reply,
            solicit,
            ..self.local.clone()
        };
        // `local` was checked to encode when it was set, and the flags
        // cannot make it invalid.
        announce.encode(&self.network).unwrap_or_default()
    }

    /// A reply no longer than `max_len`: addresses, then ports beyond the
    /// first, are dropped until it fits (the receiver still has our source
    /// address). Any valid announce is at least as long as ours with one
    /// port and no address.
    fn encode_within(&self, max_len: usize) -> Vec<u8> {
        let mut announce = Announce {
            reply: true,
            solicit: false,
            ..self.local.clone()
        };
        loop {
            let bytes = announce.encode(&self.network).unwrap_or_default();
            if bytes.len() <= max_len {
                return bytes;
            }
            if announce.addresses.pop().is_none() {
                if announce.ports.len() <= 1 {
                    return bytes;
                }
                announce.ports.truncate(1);
            }
        }
    }

    /// An announce asking for answers, for destinations that hear this
    /// node only by unicast (static hosts): their answers are how it learns
    /// that they are still there.
    pub fn soliciting_announce(&self) -> Vec<u8> {
        self.encode(false, true)
    }

    fn jittered(&mut self, interval: Duration) -> Duration {
        let jitter = u64::from(self.params.jitter_percent);
        if jitter == 0 {
            return interval;
        }
        // A factor in [100 - jitter, 100 + jitter] percent, in 1/10000ths.
        let span = 2 * jitter * 100 + 1;
        let factor = (100 - jitter) * 100 + self.next_random() % span;
        let nanos = interval.as_nanos() * u128::from(factor) / 10_000;
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// splitmix64: cheap, deterministic for a seed, good enough for jitter.
    fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// When to call [`poll_transmit`](Self::poll_transmit) or
    /// [`expire`](Self::expire) next.
    pub fn poll_timeout(&self) -> Instant {
        if !self.replies.is_empty() {
            return Instant::ZERO;
        }
        let expiry = self
            .peers
            .values()
            .map(|peer| peer.last_heard + self.params.peer_ttl)
            .min();
        expiry.map_or(self.next_announce, |at| at.min(self.next_announce))
    }

    /// Forgets peers not heard for the TTL and returns them, with the
    /// peers evicted from a full table since the last call.
    pub fn expire(&mut self, now: Instant) -> Vec<PeerId> {
        let ttl = self.params.peer_ttl;
        let expired: Vec<PeerId> = self
            .peers
            .values()
            .filter(|peer| now - peer.last_heard >= ttl)
            .map(|peer| peer.peer_id)
            .collect();
        for peer in &expired {
            self.peers.remove(peer);
        }
        self.stats.expired += expired.len() as u64;
        let mut gone = std::mem::take(&mut self.evicted);
        gone.extend(expired);
        gone
    }

    /// Forgets one peer (the application removed or blocked it); it is new
    /// again when next heard.
    pub fn forget(&mut self, peer: &PeerId) -> bool {
        self.peers.remove(peer).is_some()
    }
}

#[cfg(test)]
mod tests;
