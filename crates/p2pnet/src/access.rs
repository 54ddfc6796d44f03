//! The trust policy in force (placement, defaults, access list), and the
//! one place that changes it.
//!
//! Readers take a decision, never a guard: `decide` answers for one
//! connection, `update` applies a change and returns its result.

use std::net::IpAddr;
use std::sync::{PoisonError, RwLock};

use p2pnet_proto::{Admission, Decision, Direction, IncomingPeerTrustPolicy, PeerId, Scopes};

/// The owner of the trust policy.
pub(crate) struct Access {
    policy: RwLock<IncomingPeerTrustPolicy>,
}

impl Access {
    pub(crate) fn new(policy: IncomingPeerTrustPolicy) -> Self {
        Self {
            policy: RwLock::new(policy),
        }
    }

    fn read<T>(&self, f: impl FnOnce(&IncomingPeerTrustPolicy) -> T) -> T {
        f(&self.policy.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Whether the access list lets this connection happen.
    pub(crate) fn decide(
        &self,
        peer: Option<&PeerId>,
        ip: IpAddr,
        direction: Direction,
    ) -> Decision {
        self.read(|policy| policy.decide(peer, ip, direction))
    }

    /// What the policy says of an undecided inbound peer.
    pub(crate) fn admission(&self) -> Admission {
        self.read(IncomingPeerTrustPolicy::admission)
    }

    /// What a peer approved by default may send.
    pub(crate) fn initial_scopes(&self) -> Scopes {
        self.read(IncomingPeerTrustPolicy::initial_scopes)
    }

    /// Whether `peer` is on the allow-list by id.
    pub(crate) fn allow_listed(&self, peer: &PeerId) -> bool {
        self.read(|policy| policy.access.allows_peer(peer))
    }

    pub(crate) fn snapshot(&self) -> IncomingPeerTrustPolicy {
        self.read(Clone::clone)
    }

    /// Applies `change` and returns its result.
    pub(crate) fn update<T>(&self, change: impl FnOnce(&mut IncomingPeerTrustPolicy) -> T) -> T {
        change(&mut self.policy.write().unwrap_or_else(PoisonError::into_inner))
    }
}
