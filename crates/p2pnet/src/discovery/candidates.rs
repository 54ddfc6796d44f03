//! Which heard peers discovery answers and dials, as pure decisions apart
//! from the sockets (time passed in).
//!
//! Announces are unauthenticated and their source address can be forged.
//! So:
//! * a broadcast or multicast announce is answered, and its peer dialled,
//!   only when its source is on the link it arrived on ([`may_answer`]);
//!   a dial follows the same rule as a reply;
//! * a candidate address must be plausible for how the announce came
//!   ([`plausible`]): its own source, or an address on that link (or, heard
//!   by unicast, a global one), never loopback named by a remote host;
//! * dials to addresses no connection has proven are rationed
//!   ([`DialBudget`]) per announce source, per target (an IPv4 address or
//!   an IPv6 /64) and overall, so forged announces under many ids cannot
//!   aim every node at one victim;
//! * failed dials back off per peer ([`DialBackoff`]), and a peer that is
//!   no longer heard leaves no entry behind.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::time::Duration;

use p2pnet_proto::discovery::DiscoveryVia;
use p2pnet_proto::{Backoff, PeerId};
use tokio::time::Instant;

use crate::admission::SourceKey;
use crate::interfaces::LocalInterface;

/// Whether `ip` is inside `network/prefix` (same family only).
pub(crate) fn in_subnet(ip: IpAddr, network: IpAddr, prefix: u8) -> bool {
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// Whether `ip` is on the link of interface `index`: inside one of its
/// subnets, or IPv6 link-local.
pub(crate) fn on_link(interfaces: &[LocalInterface], ip: IpAddr, index: u32) -> bool {
    if let IpAddr::V6(v6) = ip
        && v6.is_unicast_link_local()
    {
        return true;
    }
    interfaces
        .iter()
        .filter(|i| i.index == index)
        .flat_map(|i| i.addresses.iter())
        .any(|a| in_subnet(ip, a.ip, a.prefix))
}

/// Whether an announce heard from `source` via `via` on interface `index`
/// may be answered (and its peer dialled): unicast always (the sender
/// asked us directly), broadcast and multicast only from on the link.
pub(crate) fn may_answer(
    interfaces: &[LocalInterface],
    source: IpAddr,
    via: DiscoveryVia,
    index: u32,
) -> bool {
    via == DiscoveryVia::Unicast || on_link(interfaces, source, index)
}

/// Whether dialing `addr`, claimed by a peer heard from `source` via
/// `via`, is reasonable.
pub(crate) fn plausible(
    interfaces: &[LocalInterface],
    addr: IpAddr,
    source: IpAddr,
    via: DiscoveryVia,
    index: u32,
) -> bool {
    if addr == source {
        return true;
    }
    if addr.is_unspecified() || addr.is_multicast() {
        return false;
    }
    if addr.is_loopback() {
        return source.is_loopback();
    }
    match via {
        // Heard on a link: the peer is on that link.
        DiscoveryVia::Broadcast | DiscoveryVia::Multicast => on_link(interfaces, addr, index),
        // A static host or an answer: its global addresses, or addresses
        // on one of our links.
        DiscoveryVia::Unicast => {
            crate::scope::is_global(addr)
                || interfaces
                    .iter()
                    .any(|i| i.addresses.iter().any(|a| in_subnet(addr, a.ip, a.prefix)))
        }
    }
}

/// Link-local IPv6 addresses need the interface they were heard on.
pub(crate) fn scoped(addr: SocketAddr, source: SocketAddr, interface: u32) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) if v6.ip().is_unicast_link_local() => {
            let scope = match source {
                SocketAddr::V6(s) if s.ip() == v6.ip() && s.scope_id() != 0 => s.scope_id(),
                _ => interface,
            };
            SocketAddr::V6(SocketAddrV6::new(*v6.ip(), v6.port(), 0, scope))
        }
        other => other,
    }
}

/// A token bucket: `burst` tokens, one more every `refill`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Rations dials to addresses no connection has proven.
#[derive(Debug)]
pub(crate) struct DialBudget {
    per_source: HashMap<SourceKey, Bucket>,
    per_target: HashMap<SourceKey, Bucket>,
    overall: Bucket,
}

impl DialBudget {
    /// Unproven dials one announce source may cause, at once.
    pub(crate) const PER_SOURCE_BURST: f64 = 4.0;
    /// Unproven dials to one target (address or IPv6 /64), at once.
    pub(crate) const PER_TARGET_BURST: f64 = 4.0;
    /// Unproven dials overall, at once.
    pub(crate) const OVERALL_BURST: f64 = 32.0;
    /// One token back per bucket this often.
    pub(crate) const REFILL: Duration = Duration::from_secs(15);
    /// Buckets remembered per kind; full buckets are forgotten first.
    const MAX_KEYS: usize = 1024;

    pub(crate) fn new(now: Instant) -> Self {
        Self {
            per_source: HashMap::new(),
            per_target: HashMap::new(),
            overall: Bucket {
                tokens: Self::OVERALL_BURST,
                at: now,
            },
        }
    }

    /// Takes a token from each of the three buckets if all have one.
    pub(crate) fn try_take(&mut self, source: IpAddr, target: IpAddr, now: Instant) -> bool {
        let source = SourceKey::of(source);
        let target = SourceKey::of(target);
        let refill = |bucket: &mut Bucket, burst: f64| {
            let gained = now.duration_since(bucket.at).as_secs_f64() / Self::REFILL.as_secs_f64();
            bucket.tokens = (bucket.tokens + gained).min(burst);
            bucket.at = now;
        };
        for map in [&mut self.per_source, &mut self.per_target] {
            if map.len() >= Self::MAX_KEYS {
                map.retain(|_, b| {
                    now.duration_since(b.at).as_secs_f64() < Self::REFILL.as_secs_f64() * 4.0
                });
            }
        }
        let fresh = |burst| Bucket {
            tokens: burst,
            at: now,
        };
        let mut by_source = *self
            .per_source
            .get(&source)
            .unwrap_or(&fresh(Self::PER_SOURCE_BURST));
        let mut by_target = *self
            .per_target
            .get(&target)
            .unwrap_or(&fresh(Self::PER_TARGET_BURST));
        refill(&mut by_source, Self::PER_SOURCE_BURST);
        refill(&mut by_target, Self::PER_TARGET_BURST);
        refill(&mut self.overall, Self::OVERALL_BURST);
        let granted =
            by_source.tokens >= 1.0 && by_target.tokens >= 1.0 && self.overall.tokens >= 1.0;
        if granted {
            by_source.tokens -= 1.0;
            by_target.tokens -= 1.0;
            self.overall.tokens -= 1.0;
        }
        if self.per_source.len() < Self::MAX_KEYS || self.per_source.contains_key(&source) {
            self.per_source.insert(source, by_source);
        }
        if self.per_target.len() < Self::MAX_KEYS || self.per_target.contains_key(&target) {
            self.per_target.insert(target, by_target);
        }
        granted
    }
}

/// Per-peer backoff after failed discovery dials.
#[derive(Debug, Default)]
pub(crate) struct DialBackoff {
    peers: HashMap<PeerId, (Backoff, Instant)>,
}

impl DialBackoff {
    pub(crate) const MIN: Duration = Duration::from_secs(1);
    pub(crate) const MAX: Duration = Duration::from_secs(60);

    /// Whether `peer` may be dialled now.
    pub(crate) fn ready(&self, peer: &PeerId, now: Instant) -> bool {
        self.peers
            .get(peer)
            .is_none_or(|(_, not_before)| now >= *not_before)
    }

    /// Records a finished dial. A peer that is no longer heard (expired or
    /// pruned while the dial ran) leaves no entry.
    pub(crate) fn finished(
        &mut self,
        peer: PeerId,
        connected: bool,
        still_heard: bool,
        now: Instant,
        jitter: u64,
    ) {
        if connected || !still_heard {
            self.peers.remove(&peer);
            return;
        }
        let entry = self
            .peers
            .entry(peer)
            .or_insert_with(|| (Backoff::new(Self::MIN, Self::MAX), now));
        entry.1 = now + entry.0.next_delay(jitter);
    }

    /// The peer is no longer heard.
    pub(crate) fn forget(&mut self, peer: &PeerId) {
        self.peers.remove(peer);
    }

    pub(crate) fn contains(&self, peer: &PeerId) -> bool {
        self.peers.contains_key(peer)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.peers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interfaces::InterfaceAddress;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn lan() -> Vec<LocalInterface> {
        vec![LocalInterface {
            name: "eth0".into(),
            index: 2,
            mac: None,
            broadcast: true,
            multicast: true,
            addresses: vec![
                InterfaceAddress {
                    ip: ip("192.0.2.10"),
                    prefix: 24,
                    broadcast: Some("192.0.2.255".parse().unwrap()),
                    global: false,
                },
                InterfaceAddress {
                    ip: ip("2001:db8:1::10"),
                    prefix: 64,
                    broadcast: None,
                    global: true,
                },
            ],
        }]
    }

    #[test]
    fn in_subnet_table() {
        let table = [
            ("192.0.2.77", "192.0.2.0", 24, true),
            ("192.0.3.1", "192.0.2.0", 24, false),
            ("10.1.2.3", "0.0.0.0", 0, true),
            ("2001:db8:1::99", "2001:db8:1::", 64, true),
            ("2001:db8:2::1", "2001:db8:1::", 64, false),
            ("192.0.2.1", "2001:db8::", 0, false),
            ("2001:db8::1", "2001:db8::1", 128, true),
        ];
        for (addr, net, prefix, expected) in table {
            assert_eq!(
                in_subnet(ip(addr), ip(net), prefix),
                expected,
                "{addr} in {net}/{prefix}"
            );
        }
    }

    #[test]
    fn answers_and_dials_follow_the_link() {
        let lan = lan();
        let table = [
            ("192.0.2.20", DiscoveryVia::Broadcast, 2, true),
            ("192.0.2.20", DiscoveryVia::Broadcast, 3, false),
            ("198.51.100.7", DiscoveryVia::Broadcast, 2, false),
            ("198.51.100.7", DiscoveryVia::Multicast, 2, false),
            ("fe80::1", DiscoveryVia::Multicast, 2, true),
            ("198.51.100.7", DiscoveryVia::Unicast, 2, true),
        ];
        for (source, via, index, expected) in table {
            assert_eq!(
                may_answer(&lan, ip(source), via, index),
                expected,
                "{source} {via:?} on {index}"
            );
        }
    }

    #[test]
    fn plausible_candidates() {
        let lan = lan();
        let b = DiscoveryVia::Broadcast;
        let u = DiscoveryVia::Unicast;
        let table = [
            // (candidate, source, via, expected)
            ("192.0.2.20", "192.0.2.20", b, true),
            ("192.0.2.21", "192.0.2.20", b, true),
            ("198.51.100.1", "192.0.2.20", b, false),
            ("127.0.0.1", "192.0.2.20", b, false),
            ("127.0.0.1", "127.0.0.1", u, true),
            ("0.0.0.0", "192.0.2.20", b, false),
            ("239.255.83.51", "192.0.2.20", b, false),
            ("2001:db8:1::99", "192.0.2.20", b, true),
            ("2001:db8:9::1", "192.0.2.20", b, false),
            ("2a00:1450::1", "203.0.113.5", u, true),
            ("10.9.9.9", "203.0.113.5", u, false),
            ("192.0.2.99", "203.0.113.5", u, true),
        ];
        for (addr, source, via, expected) in table {
            assert_eq!(
                plausible(&lan, ip(addr), ip(source), via, 2),
                expected,
                "{addr} from {source} via {via:?}"
            );
        }
    }

    #[test]
    fn link_local_candidates_get_a_scope() {
        let source: SocketAddr = "[fe80::1%7]:28351".parse().unwrap();
        let same: SocketAddr = "[fe80::1]:4000".parse().unwrap();
        let other: SocketAddr = "[fe80::2]:4000".parse().unwrap();
        let global: SocketAddr = "[2001:db8::1]:4000".parse().unwrap();
        assert_eq!(scoped(same, source, 3), "[fe80::1%7]:4000".parse().unwrap());
        assert_eq!(
            scoped(other, source, 3),
            "[fe80::2%3]:4000".parse().unwrap()
        );
        assert_eq!(scoped(global, source, 3), global);
    }

    #[test]
    fn the_budget_rations_unproven_dials_per_target_source_and_overall() {
        let start = Instant::now();
        let mut budget = DialBudget::new(start);
        // Many forged sources aiming at one victim: 4 get through.
        let granted = (0..40u8)
            .filter(|n| budget.try_take(IpAddr::from([198, 51, 100, *n]), ip("192.0.2.7"), start))
            .count();
        assert_eq!(granted, DialBudget::PER_TARGET_BURST as usize);
        // One victim's /64 counts as one target.
        let granted = (1..20u16)
            .filter(|n| {
                let target = IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, *n]);
                budget.try_take(ip("198.51.100.200"), target, start)
            })
            .count();
        assert_eq!(granted, DialBudget::PER_TARGET_BURST as usize);
        // One source aiming at many targets: 4 get through.
        let granted = (0..20u8)
            .filter(|n| {
                budget.try_take(ip("203.0.113.9"), IpAddr::from([192, 0, 2, 100 + n]), start)
            })
            .count();
        assert_eq!(granted, DialBudget::PER_SOURCE_BURST as usize);
        // Tokens come back with time.
        let later = start + DialBudget::REFILL;
        assert!(budget.try_take(ip("198.51.100.1"), ip("192.0.2.7"), later));
        assert!(!budget.try_take(ip("198.51.100.2"), ip("192.0.2.7"), later));
        // Overall: many sources, many targets.
        let mut budget = DialBudget::new(start);
        let granted = (0..200u8)
            .filter(|n| {
                budget.try_take(
                    IpAddr::from([198, 51, 100, *n]),
                    IpAddr::from([192, 0, 2, *n]),
                    start,
                )
            })
            .count();
        assert_eq!(granted, DialBudget::OVERALL_BURST as usize);
    }

    #[test]
    fn backoff_grows_and_leaves_nothing_for_a_peer_no_longer_heard() {
        let now = Instant::now();
        let peer = PeerId::from_bytes([4; 32]);
        let mut backoff = DialBackoff::default();
        assert!(backoff.ready(&peer, now));
        backoff.finished(peer, false, true, now, 0);
        assert!(!backoff.ready(&peer, now));
        assert!(backoff.ready(&peer, now + DialBackoff::MAX));
        backoff.finished(peer, true, true, now, 0);
        assert_eq!(backoff.len(), 0, "a success clears the entry");
        // A dial that finishes after its peer expired leaves no entry.
        backoff.finished(peer, false, false, now, 0);
        assert_eq!(backoff.len(), 0);
        backoff.finished(peer, false, true, now, 0);
        backoff.forget(&peer);
        assert!(!backoff.contains(&peer));
    }
}
