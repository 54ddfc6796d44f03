//! The incoming peer policy, its trust presets, and access lists.
//!
//! Trust is enforced in two places:
//!
//! * **Admission** ([`AccessList::decide`]): whether to talk to a peer at
//!   all, checked by IP before the handshake and by [`PeerId`] after it, in
//!   both directions.
//! * **Gating** ([`Grants`](crate::Grants)): which packets an open channel
//!   exchanges, and until when. The channel enforces its grants on every
//!   packet it receives and every packet it is asked to send (see
//!   [`Channel`](crate::Channel) and [`grant`](crate::grant)). The policy
//!   only says what a newly approved peer starts with: a [`TrustLevel`]
//!   preset, as [`Scopes`] through
//!   [`initial_scopes`](IncomingPeerTrustPolicy::initial_scopes).
//!
//! Unlike the original C# library, where the approval queue and event only
//! *informed* while the connection went ahead, an inbound channel here
//! exchanges no application data until the runtime calls
//! [`Channel::approve`](crate::Channel::approve).

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::grant::Scopes;
use crate::identity::PeerId;
use crate::packet::{PacketKind, PermissionClass};

/// Which side opened a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Direction {
    /// The remote connected to us; we are the Noise responder.
    Inbound,
    /// We connected to the remote; we are the Noise initiator.
    Outbound,
}

/// The trust policy's coarse preset of what a peer may exchange.
///
/// A channel is gated by [`Grants`](crate::Grants), not by this: the
/// preset becomes [`Scopes`] through `From` (default communication is
/// [`Scopes::MESSAGE`], enhanced exchange every other scope). Control
/// packets (Keepalive, Disconnect) are always permitted; see
/// [`PermissionClass::Control`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TrustLevel {
    /// Plain text messages ([`PacketKind::PureMessage`]).
    pub default_communication: bool,
    /// Everything else: data transmission (files, tasks, data), identifiers
    /// and peer lists.
    pub enhanced_exchange: bool,
}

impl TrustLevel {
    /// Control packets only.
    pub const NONE: Self = Self {
        default_communication: false,
        enhanced_exchange: false,
    };
    /// Text messages; the default for a newly approved peer.
    pub const DEFAULT: Self = Self {
        default_communication: true,
        enhanced_exchange: false,
    };
    /// Everything: an elevated peer.
    pub const ELEVATED: Self = Self {
        default_communication: true,
        enhanced_exchange: true,
    };

    /// Whether packets of `kind` may be exchanged.
    pub const fn permits(self, kind: PacketKind) -> bool {
        match kind.class() {
            PermissionClass::Control => true,
            PermissionClass::DefaultCommunication => self.default_communication,
            PermissionClass::EnhancedExchange => self.enhanced_exchange,
        }
    }

    /// This level with enhanced exchange granted.
    pub const fn elevated(self) -> Self {
        Self {
            enhanced_exchange: true,
            ..self
        }
    }
}

impl Default for TrustLevel {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// How the runtime surfaces an inbound peer awaiting approval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Placement {
    /// Put it in a queue the application drains.
    Queue,
    /// Raise an event.
    #[default]
    Event,
    /// Both.
    QueueAndEvent,
}

/// How inbound peers are admitted and what they may do once admitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct IncomingPeerTrustPolicy {
    /// Where peers awaiting approval are surfaced.
    pub placement: Placement,
    /// Approve inbound peers without asking (still subject to the access
    /// list). Off by default.
    pub auto_accept: bool,
    /// Grant default communication on approval. On by default.
    pub allow_default_communication: bool,
    /// Grant enhanced exchange on approval. Off by default; a peer can be
    /// elevated later.
    pub allow_enhanced_packet_exchange: bool,
    /// Who may connect at all.
    pub access: AccessList,
}

impl Default for IncomingPeerTrustPolicy {
    fn default() -> Self {
        Self {
            placement: Placement::default(),
            auto_accept: false,
            allow_default_communication: true,
            allow_enhanced_packet_exchange: false,
            access: AccessList::default(),
        }
    }
}

impl IncomingPeerTrustPolicy {
    /// The trust preset a peer gets when approved under this policy.
    pub const fn initial_trust(&self) -> TrustLevel {
        TrustLevel {
            default_communication: self.allow_default_communication,
            enhanced_exchange: self.allow_enhanced_packet_exchange,
        }
    }

    /// The scopes a peer gets when approved under this policy: the
    /// [`initial_trust`](Self::initial_trust) preset as scopes.
    pub fn initial_scopes(&self) -> Scopes {
        Scopes::from(self.initial_trust())
    }

    /// What to do with an inbound channel that completed its handshake and
    /// passed [`decide`](Self::decide).
    pub const fn admission(&self) -> Admission {
        if self.auto_accept {
            return Admission::Approve(self.initial_trust());
        }
        let (queue, event) = match self.placement {
            Placement::Queue => (true, false),
            Placement::Event => (false, true),
            Placement::QueueAndEvent => (true, true),
        };
        Admission::Defer { queue, event }
    }

    /// Shorthand for [`AccessList::decide`] on this policy's access list.
    pub fn decide(&self, peer: Option<&PeerId>, ip: IpAddr, direction: Direction) -> Decision {
        self.access.decide(peer, ip, direction)
    }
}

/// What [`IncomingPeerTrustPolicy::admission`] tells the runtime to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Call [`Channel::approve`](crate::Channel::approve) now, with grants
    /// of this preset's [`Scopes`] (`Scopes::from(level)`).
    Approve(TrustLevel),
    /// Leave the channel pending and surface it to the application.
    Defer {
        /// Put it in the approval queue.
        queue: bool,
        /// Raise an event.
        event: bool,
    },
}

/// One entry of an [`AccessList`]: a peer id or a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccessTarget {
    /// A peer id.
    Peer(PeerId),
    /// An address (a /32 or /128) or a network.
    Network(IpNet),
}

impl std::fmt::Display for AccessTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Peer(peer) => write!(f, "{peer}"),
            Self::Network(net) => write!(f, "{net}"),
        }
    }
}

/// Which connections an [`AccessList`]'s allow-list restricts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AllowListScope {
    /// Inbound and outbound connections.
    #[default]
    Both,
    /// Inbound connections only; the local peer may still dial anyone not
    /// blocked.
    InboundOnly,
}

/// Allow- and block-lists by peer id and by IP network.
///
/// # Precedence
///
/// 1. A blocked peer id is denied.
/// 2. An address inside a blocked network is denied, whatever its peer id
///    (**block wins over allow**).
/// 3. If the allow-list is non-empty and applies to the direction (see
///    [`AllowListScope`]), the connection must match it: its peer id is
///    allowed, or its address is inside an allowed network. A non-empty
///    allow-list therefore means **default deny**.
/// 4. Otherwise the connection is allowed.
///
/// Before the handshake the peer id is unknown (`None`). Blocks by IP apply
/// immediately; an allow-list that names peer ids cannot be decided yet, so
/// the call answers [`Decision::Allow`] and the runtime must call
/// `decide` again with the authenticated id once the handshake completes.
///
/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, as reported by dual-stack
/// sockets) are matched as the IPv4 address they carry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccessList {
    allowed_peers: BTreeSet<PeerId>,
    blocked_peers: BTreeSet<PeerId>,
    allowed_networks: Vec<IpNet>,
    blocked_networks: Vec<IpNet>,
    allow_list_scope: AllowListScope,
}

impl AccessList {
    /// Adds `peer` to the allow-list.
    pub fn allow_peer(&mut self, peer: PeerId) -> &mut Self {
        self.allowed_peers.insert(peer);
        self
    }

    /// Adds `peer` to the block-list.
    pub fn block_peer(&mut self, peer: PeerId) -> &mut Self {
        self.blocked_peers.insert(peer);
        self
    }

    /// Adds `net` (a single address is a /32 or /128) to the allow-list.
    pub fn allow_network(&mut self, net: IpNet) -> &mut Self {
        let net = canonical_net(net);
        if !self.allowed_networks.contains(&net) {
            self.allowed_networks.push(net);
        }
        self
    }

    /// Adds `net` to the block-list.
    pub fn block_network(&mut self, net: IpNet) -> &mut Self {
        let net = canonical_net(net);
        if !self.blocked_networks.contains(&net) {
            self.blocked_networks.push(net);
        }
        self
    }

    /// Removes `peer` from both lists; returns whether it was listed.
    pub fn forget_peer(&mut self, peer: &PeerId) -> bool {
        let allowed = self.allowed_peers.remove(peer);
        let blocked = self.blocked_peers.remove(peer);
        allowed || blocked
    }

    /// Removes `net` from both lists; returns whether it was listed.
    pub fn forget_network(&mut self, net: &IpNet) -> bool {
        let net = canonical_net(*net);
        let before = self.allowed_networks.len() + self.blocked_networks.len();
        self.allowed_networks.retain(|n| *n != net);
        self.blocked_networks.retain(|n| *n != net);
        before != self.allowed_networks.len() + self.blocked_networks.len()
    }

    /// Sets which directions the allow-list restricts.
    pub fn set_allow_list_scope(&mut self, scope: AllowListScope) -> &mut Self {
        self.allow_list_scope = scope;
        self
    }

    /// Whether `peer` is on the allow-list by id.
    pub fn allows_peer(&self, peer: &PeerId) -> bool {
        self.allowed_peers.contains(peer)
    }

    /// Whether `peer` is on the block-list by id.
    pub fn blocks_peer(&self, peer: &PeerId) -> bool {
        self.blocked_peers.contains(peer)
    }

    /// Every blocked peer id and network, ids first.
    pub fn blocked(&self) -> impl Iterator<Item = AccessTarget> + '_ {
        self.blocked_peers
            .iter()
            .copied()
            .map(AccessTarget::Peer)
            .chain(
                self.blocked_networks
                    .iter()
                    .copied()
                    .map(AccessTarget::Network),
            )
    }

    /// Every allow-listed peer id and network, ids first.
    pub fn allowed(&self) -> impl Iterator<Item = AccessTarget> + '_ {
        self.allowed_peers
            .iter()
            .copied()
            .map(AccessTarget::Peer)
            .chain(
                self.allowed_networks
                    .iter()
                    .copied()
                    .map(AccessTarget::Network),
            )
    }

    /// Whether the allow-list has any entry.
    pub fn has_allow_list(&self) -> bool {
        !self.allowed_peers.is_empty() || !self.allowed_networks.is_empty()
    }

    /// Decides whether to talk to a peer. See the type docs for precedence.
    pub fn decide(&self, peer: Option<&PeerId>, ip: IpAddr, direction: Direction) -> Decision {
        let ip = ip.to_canonical();
        if let Some(peer) = peer
            && self.blocked_peers.contains(peer)
        {
            return Decision::Deny(DenyReason::BlockedPeer);
        }
        if self.blocked_networks.iter().any(|net| net.contains(&ip)) {
            return Decision::Deny(DenyReason::BlockedAddress);
        }
        let restricted = match (self.allow_list_scope, direction) {
            (AllowListScope::Both, _) | (AllowListScope::InboundOnly, Direction::Inbound) => {
                self.has_allow_list()
            }
            (AllowListScope::InboundOnly, Direction::Outbound) => false,
        };
        if !restricted {
            return Decision::Allow;
        }
        if self.allowed_networks.iter().any(|net| net.contains(&ip)) {
            return Decision::Allow;
        }
        match peer {
            Some(peer) if self.allowed_peers.contains(peer) => Decision::Allow,
            // Not yet decidable by id: the handshake will tell.
            None if !self.allowed_peers.is_empty() => Decision::Allow,
            _ => Decision::Deny(DenyReason::NotAllowListed),
        }
    }
}

fn canonical_net(net: IpNet) -> IpNet {
    net.trunc()
}

/// The outcome of [`AccessList::decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Go ahead.
    Allow,
    /// Refuse, for this reason.
    Deny(DenyReason),
}

impl Decision {
    /// Whether this is [`Decision::Allow`].
    pub const fn is_allow(self) -> bool {
        matches!(self, Self::Allow)
    }
}

/// Why [`AccessList::decide`] denied a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DenyReason {
    /// The peer id is on the block-list.
    BlockedPeer,
    /// The address is inside a blocked network.
    BlockedAddress,
    /// An allow-list is in force and the peer is not on it.
    NotAllowListed,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> PeerId {
        PeerId::from_bytes([n; 32])
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    const IN: Direction = Direction::Inbound;
    const OUT: Direction = Direction::Outbound;

    #[test]
    fn empty_list_allows_everyone() {
        let acl = AccessList::default();
        assert_eq!(acl.decide(None, ip("203.0.113.9"), IN), Decision::Allow);
        assert_eq!(
            acl.decide(Some(&id(1)), ip("2001:db8::1"), OUT),
            Decision::Allow
        );
    }

    #[test]
    fn blocks_by_id_and_cidr_v4_and_v6() {
        let mut acl = AccessList::default();
        acl.block_peer(id(1))
            .block_network(net("10.0.0.0/8"))
            .block_network(net("2001:db8:bad::/48"));
        assert_eq!(
            acl.decide(Some(&id(1)), ip("192.0.2.1"), IN),
            Decision::Deny(DenyReason::BlockedPeer)
        );
        assert_eq!(
            acl.decide(Some(&id(1)), ip("192.0.2.1"), OUT),
            Decision::Deny(DenyReason::BlockedPeer)
        );
        assert_eq!(
            acl.decide(None, ip("10.200.3.4"), IN),
            Decision::Deny(DenyReason::BlockedAddress)
        );
        assert_eq!(acl.decide(None, ip("11.0.0.1"), IN), Decision::Allow);
        assert_eq!(
            acl.decide(None, ip("2001:db8:bad:1::7"), OUT),
            Decision::Deny(DenyReason::BlockedAddress)
        );
        assert_eq!(
            acl.decide(None, ip("2001:db8:bae::7"), OUT),
            Decision::Allow
        );
        // Pre-handshake, the blocked id is not known yet.
        assert_eq!(acl.decide(None, ip("192.0.2.1"), IN), Decision::Allow);
    }

    #[test]
    fn ipv4_mapped_ipv6_matches_ipv4_rules() {
        let mut acl = AccessList::default();
        acl.block_network(net("192.0.2.0/24"));
        assert_eq!(
            acl.decide(None, ip("::ffff:192.0.2.77"), IN),
            Decision::Deny(DenyReason::BlockedAddress)
        );
    }

    #[test]
    fn block_wins_over_allow() {
        let mut acl = AccessList::default();
        acl.allow_peer(id(2))
            .allow_network(net("192.0.2.0/24"))
            .block_network(net("192.0.2.128/25"));
        // Allowed id, but connecting from a blocked network.
        assert_eq!(
            acl.decide(Some(&id(2)), ip("192.0.2.200"), IN),
            Decision::Deny(DenyReason::BlockedAddress)
        );
        // Allowed network minus blocked part.
        assert_eq!(
            acl.decide(Some(&id(9)), ip("192.0.2.5"), IN),
            Decision::Allow
        );
        // Both allowed and blocked by id.
        acl.block_peer(id(2));
        assert_eq!(
            acl.decide(Some(&id(2)), ip("198.51.100.1"), IN),
            Decision::Deny(DenyReason::BlockedPeer)
        );
    }

    #[test]
    fn non_empty_allow_list_means_default_deny() {
        let mut acl = AccessList::default();
        acl.allow_network(net("fd00::/8"));
        assert_eq!(acl.decide(None, ip("fd12::1"), IN), Decision::Allow);
        assert_eq!(
            acl.decide(None, ip("2001:db8::1"), IN),
            Decision::Deny(DenyReason::NotAllowListed)
        );
        assert_eq!(
            acl.decide(Some(&id(3)), ip("192.0.2.1"), OUT),
            Decision::Deny(DenyReason::NotAllowListed)
        );

        acl.allow_peer(id(3));
        assert_eq!(
            acl.decide(Some(&id(3)), ip("192.0.2.1"), IN),
            Decision::Allow
        );
        assert_eq!(
            acl.decide(Some(&id(4)), ip("192.0.2.1"), IN),
            Decision::Deny(DenyReason::NotAllowListed)
        );
        // Before the handshake an id allow-list cannot be decided: provisional allow...
        assert_eq!(acl.decide(None, ip("192.0.2.1"), IN), Decision::Allow);
        // ...and the post-handshake call decides.
        assert!(!acl.decide(Some(&id(5)), ip("192.0.2.1"), IN).is_allow());
    }

    #[test]
    fn inbound_only_scope_lets_us_dial_out() {
        let mut acl = AccessList::default();
        acl.allow_peer(id(1))
            .block_network(net("198.51.100.0/24"))
            .set_allow_list_scope(AllowListScope::InboundOnly);
        assert_eq!(
            acl.decide(Some(&id(7)), ip("192.0.2.1"), OUT),
            Decision::Allow
        );
        assert_eq!(
            acl.decide(Some(&id(7)), ip("192.0.2.1"), IN),
            Decision::Deny(DenyReason::NotAllowListed)
        );
        // Blocks still apply outbound.
        assert_eq!(
            acl.decide(Some(&id(7)), ip("198.51.100.3"), OUT),
            Decision::Deny(DenyReason::BlockedAddress)
        );
    }

    #[test]
    fn forget_and_normalization() {
        let mut acl = AccessList::default();
        acl.block_network(net("10.1.2.3/8"));
        assert_eq!(
            acl.decide(None, ip("10.9.9.9"), IN),
            Decision::Deny(DenyReason::BlockedAddress)
        );
        assert!(acl.forget_network(&net("10.0.0.0/8")));
        assert_eq!(acl.decide(None, ip("10.9.9.9"), IN), Decision::Allow);
        acl.block_peer(id(1));
        assert!(acl.forget_peer(&id(1)));
        assert!(!acl.forget_peer(&id(1)));
    }

    #[test]
    fn trust_levels_gate_kinds() {
        use PacketKind::*;
        for level in [TrustLevel::NONE, TrustLevel::DEFAULT, TrustLevel::ELEVATED] {
            assert!(level.permits(Keepalive) && level.permits(Disconnect));
        }
        assert!(!TrustLevel::NONE.permits(PureMessage));
        assert!(TrustLevel::DEFAULT.permits(PureMessage));
        for k in [DataTransmission, Identifier, CollectionShare] {
            assert!(!TrustLevel::DEFAULT.permits(k));
            assert!(TrustLevel::ELEVATED.permits(k));
            assert!(TrustLevel::DEFAULT.elevated().permits(k));
        }
        assert_eq!(TrustLevel::default(), TrustLevel::DEFAULT);
    }

    #[test]
    fn policy_defaults_and_admission() {
        let mut policy = IncomingPeerTrustPolicy::default();
        assert!(policy.allow_default_communication);
        assert!(!policy.allow_enhanced_packet_exchange);
        assert_eq!(policy.initial_trust(), TrustLevel::DEFAULT);
        assert_eq!(policy.initial_scopes(), Scopes::MESSAGE);
        assert_eq!(
            policy.admission(),
            Admission::Defer {
                queue: false,
                event: true
            }
        );
        policy.placement = Placement::QueueAndEvent;
        assert_eq!(
            policy.admission(),
            Admission::Defer {
                queue: true,
                event: true
            }
        );
        policy.placement = Placement::Queue;
        assert_eq!(
            policy.admission(),
            Admission::Defer {
                queue: true,
                event: false
            }
        );
        policy.auto_accept = true;
        policy.allow_enhanced_packet_exchange = true;
        assert_eq!(policy.admission(), Admission::Approve(TrustLevel::ELEVATED));
        assert_eq!(policy.initial_scopes(), Scopes::ALL);
    }
}
