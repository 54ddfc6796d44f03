//! `ActivePeerChannels`: the channels that exist right now.
//!
//! Pure bookkeeping behind the network's mutex: one entry per channel actor
//! (inserted when the socket exists, removed when the actor ends), an index
//! by authenticated peer id, the counts the connection limits apply to, and
//! the rule that keeps exactly one channel per peer.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::SystemTime;

use p2pnet_proto::{ChannelState, Direction, PeerId, TrustLevel};
use tokio::sync::mpsc;

use crate::actor::Command;

/// Identifies a channel within one network.
pub type ChannelId = u64;

/// A snapshot of one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelInfo {
    /// The channel.
    pub id: ChannelId,
    /// The remote's authenticated id, once known.
    pub peer: Option<PeerId>,
    /// The remote address.
    pub addr: SocketAddr,
    /// Who dialed.
    pub direction: Direction,
    /// Its state.
    pub state: ChannelState,
    /// When the socket was established.
    pub since: SystemTime,
}

pub(crate) struct Entry {
    pub(crate) info: ChannelInfo,
    pub(crate) commands: mpsc::Sender<Command>,
    /// When the channel started waiting for approval.
    pub(crate) pending_since: Option<tokio::time::Instant>,
    /// When an application packet last crossed the channel.
    pub(crate) last_app_activity: tokio::time::Instant,
}

/// What [`ActivePeerChannels::bind_peer`] decided.
#[derive(Debug)]
pub(crate) enum Bind {
    /// The channel is the peer's only one.
    Bound,
    /// Another channel to the peer wins; close this one as a duplicate.
    Duplicate,
    /// This channel wins; close the other one (its commands) as a duplicate.
    Replaces(mpsc::Sender<Command>),
}

/// The table.
#[derive(Default)]
pub(crate) struct ActivePeerChannels {
    entries: HashMap<ChannelId, Entry>,
    by_peer: HashMap<PeerId, ChannelId>,
    next_id: ChannelId,
}

impl ActivePeerChannels {
    pub(crate) fn insert(
        &mut self,
        addr: SocketAddr,
        direction: Direction,
        commands: mpsc::Sender<Command>,
        now: tokio::time::Instant,
    ) -> ChannelId {
        self.next_id += 1;
        let id = self.next_id;
        self.entries.insert(
            id,
            Entry {
                info: ChannelInfo {
                    id,
                    peer: None,
                    addr,
                    direction,
                    state: ChannelState::Handshaking,
                    since: SystemTime::now(),
                },
                commands,
                pending_since: None,
                last_app_activity: now,
            },
        );
        id
    }

    /// Records the authenticated id of channel `id`, resolving duplicates.
    ///
    /// Two channels to one peer happen when both sides dial at once, or when
    /// a peer reconnects before its old connection timed out. Both sides
    /// must keep the same one without talking, so: if the two channels were
    /// dialed by different sides, the channel dialed by the smaller peer id
    /// wins; if by the same side, the newer channel wins (the old one is
    /// most likely dead).
    pub(crate) fn bind_peer(&mut self, id: ChannelId, peer: PeerId, local: PeerId) -> Bind {
        let Some(direction) = self.entries.get(&id).map(|e| e.info.direction) else {
            return Bind::Duplicate;
        };
        let dialer = |direction| match direction {
            Direction::Outbound => local,
            Direction::Inbound => peer,
        };
        let mut outcome = Bind::Bound;
        if let Some(&other) = self.by_peer.get(&peer)
            && other != id
            && let Some(existing) = self.entries.get(&other)
        {
            let (new_dialer, old_dialer) = (dialer(direction), dialer(existing.info.direction));
            if new_dialer != old_dialer && old_dialer < new_dialer {
                return Bind::Duplicate;
            }
            outcome = Bind::Replaces(existing.commands.clone());
        }
        self.by_peer.insert(peer, id);
        if let Some(entry) = self.entries.get_mut(&id) {
            entry.info.peer = Some(peer);
        }
        outcome
    }

    pub(crate) fn set_state(
        &mut self,
        id: ChannelId,
        state: ChannelState,
        now: tokio::time::Instant,
    ) {
        if let Some(entry) = self.entries.get_mut(&id) {
            entry.pending_since = match state {
                ChannelState::PendingApproval => entry.pending_since.or(Some(now)),
                _ => None,
            };
            entry.info.state = state;
        }
    }

    pub(crate) fn touch(&mut self, id: ChannelId, now: tokio::time::Instant) {
        if let Some(entry) = self.entries.get_mut(&id) {
            entry.last_app_activity = now;
        }
    }

    pub(crate) fn remove(&mut self, id: ChannelId) -> Option<Entry> {
        let entry = self.entries.remove(&id)?;
        if let Some(peer) = entry.info.peer
            && self.by_peer.get(&peer) == Some(&id)
        {
            self.by_peer.remove(&peer);
        }
        Some(entry)
    }

    /// The channel bound to `peer`.
    pub(crate) fn by_peer(&self, peer: &PeerId) -> Option<&Entry> {
        self.by_peer.get(peer).and_then(|id| self.entries.get(id))
    }

    pub(crate) fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn inbound(&self) -> usize {
        self.entries
            .values()
            .filter(|e| e.info.direction == Direction::Inbound)
            .count()
    }

    /// Channels that are handshaking or awaiting approval.
    pub(crate) fn pending(&self) -> usize {
        self.entries
            .values()
            .filter(|e| {
                matches!(
                    e.info.state,
                    ChannelState::Handshaking | ChannelState::PendingApproval
                )
            })
            .count()
    }

    /// Open channels whose trust permits `kind`.
    pub(crate) fn open_with(
        &self,
        permits: impl Fn(TrustLevel) -> bool,
    ) -> Vec<(PeerId, mpsc::Sender<Command>)> {
        self.entries
            .values()
            .filter_map(|e| match (e.info.state, e.info.peer) {
                (ChannelState::Open { trust }, Some(peer)) if permits(trust) => {
                    Some((peer, e.commands.clone()))
                }
                _ => None,
            })
            .collect()
    }

    pub(crate) fn snapshot(&self) -> Vec<ChannelInfo> {
        let mut all: Vec<_> = self.entries.values().map(|e| e.info.clone()).collect();
        all.sort_by_key(|info| info.id);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> PeerId {
        PeerId::from_bytes([n; 32])
    }

    fn addr() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 1))
    }

    fn table() -> (ActivePeerChannels, tokio::time::Instant) {
        (ActivePeerChannels::default(), tokio::time::Instant::now())
    }

    fn insert(
        t: &mut ActivePeerChannels,
        direction: Direction,
        now: tokio::time::Instant,
    ) -> ChannelId {
        let (tx, _rx) = mpsc::channel(1);
        t.insert(addr(), direction, tx, now)
    }

    #[test]
    fn crossed_dials_keep_the_channel_dialed_by_the_smaller_id_on_both_sides() {
        let (a, b) = (id(1), id(2));
        // On A: A's outbound (dialer A) and B's inbound (dialer B).
        let (mut on_a, now) = table();
        let a_out = insert(&mut on_a, Direction::Outbound, now);
        let a_in = insert(&mut on_a, Direction::Inbound, now);
        assert!(matches!(on_a.bind_peer(a_in, b, a), Bind::Bound));
        assert!(matches!(on_a.bind_peer(a_out, b, a), Bind::Replaces(_)));
        assert_eq!(on_a.by_peer(&b).unwrap().info.id, a_out);
        // On B, completion in the other order: same winner (dialed by A).
        let (mut on_b, now) = table();
        let b_out = insert(&mut on_b, Direction::Outbound, now);
        let b_in = insert(&mut on_b, Direction::Inbound, now);
        assert!(matches!(on_b.bind_peer(b_in, a, b), Bind::Bound));
        assert!(matches!(on_b.bind_peer(b_out, a, b), Bind::Duplicate));
        assert_eq!(on_b.by_peer(&a).unwrap().info.id, b_in);
    }

    #[test]
    fn a_reconnect_from_the_same_side_replaces_the_old_channel() {
        let (mut t, now) = table();
        let old = insert(&mut t, Direction::Inbound, now);
        let new = insert(&mut t, Direction::Inbound, now);
        assert!(matches!(t.bind_peer(old, id(9), id(1)), Bind::Bound));
        assert!(matches!(t.bind_peer(new, id(9), id(1)), Bind::Replaces(_)));
        // Removing the loser does not unbind the winner.
        t.remove(old);
        assert_eq!(t.by_peer(&id(9)).unwrap().info.id, new);
    }

    #[test]
    fn counts_follow_direction_and_state() {
        let (mut t, now) = table();
        let a = insert(&mut t, Direction::Inbound, now);
        let b = insert(&mut t, Direction::Outbound, now);
        assert_eq!((t.len(), t.inbound(), t.pending()), (2, 1, 2));
        t.set_state(a, ChannelState::PendingApproval, now);
        assert!(t.entries().any(|e| e.pending_since.is_some()));
        t.set_state(
            b,
            ChannelState::Open {
                trust: TrustLevel::DEFAULT,
            },
            now,
        );
        assert_eq!(t.pending(), 1);
        t.bind_peer(b, id(3), id(1));
        assert_eq!(t.open_with(|trust| trust.default_communication).len(), 1);
        assert!(t.open_with(|trust| trust.enhanced_exchange).is_empty());
        t.remove(a);
        assert_eq!((t.len(), t.inbound(), t.pending()), (1, 0, 0));
    }
}
