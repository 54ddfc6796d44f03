//! ActivePeerChannels: the channels that exist right now, and the one place
//! that changes that table.
//!
//! One entry per channel actor (registered when the socket exists, removed
//! when the actor ends), an index by authenticated peer id, the counts the
//! connection limits apply to (`admission.rs` decides on them), and the rule
//! that keeps exactly one channel per peer. Actors report their state here;
//! the network reads snapshots and the actors' command queues. Every change
//! of state bumps a `watch` so a dial can wait for a channel to open
//! without listening to the lossy public event stream.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use p2pnet_proto::{ChannelState, Direction, PeerId, Scopes};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::admission::{self, Counts, SourceKey};
use crate::command::Command;
use crate::config::Limits;
use crate::error::{Error, Result};

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
    /// The last keepalive round trip, once measured.
    pub rtt: Option<Duration>,
    /// Bytes sent on the socket so far (published about once a second).
    pub bytes_sent: u64,
    /// Bytes received on the socket so far (published about once a second).
    pub bytes_received: u64,
}

struct Entry {
    info: ChannelInfo,
    source: SourceKey,
    commands: mpsc::Sender<Command>,
    /// When the channel started waiting for approval.
    pending_since: Option<Instant>,
    /// When an application packet last crossed the channel.
    last_app_activity: Instant,
}

impl Entry {
    fn waiting(&self) -> bool {
        matches!(
            self.info.state,
            ChannelState::Handshaking | ChannelState::PendingApproval
        )
    }
}

/// What [`Channels::bind`] decided.
#[derive(Debug)]
pub(crate) enum Bind {
    /// The channel is the peer's only one.
    Bound,
    /// Another channel to the peer wins; close this one as a duplicate.
    Duplicate,
    /// This channel wins; close the other one (its commands) as a duplicate.
    Replaces(mpsc::Sender<Command>),
}

/// A channel that the periodic check found should close, and how.
#[derive(Debug)]
pub(crate) struct Discerned {
    pub(crate) id: ChannelId,
    pub(crate) peer: Option<PeerId>,
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) why: Discern,
}

/// Why [`Channels::discern`] picked a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Discern {
    /// The access list now denies it.
    Denied,
    /// It waited for approval longer than the approval timeout.
    ApprovalTimedOut,
    /// No application packet crossed it for the idle timeout.
    Idle,
}

#[derive(Default)]
struct Table {
    entries: HashMap<ChannelId, Entry>,
    by_peer: HashMap<PeerId, ChannelId>,
    next_id: ChannelId,
}

/// The owner of ActivePeerChannels.
pub(crate) struct Channels {
    table: Mutex<Table>,
    limits: Limits,
    changed: watch::Sender<u64>,
}

impl Channels {
    pub(crate) fn new(limits: Limits) -> Self {
        Self {
            table: Mutex::new(Table::default()),
            limits,
            changed: watch::Sender::new(0),
        }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        // A panic inside one of these short sections leaves plain data,
        // still consistent enough to serve and shut down.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn bump(&self) {
        self.changed
            .send_modify(|version| *version = version.wrapping_add(1));
    }

    /// Waits for changes of any channel's state.
    pub(crate) fn watch(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Registers a new channel if the limits leave room for it.
    pub(crate) fn register(
        &self,
        addr: SocketAddr,
        direction: Direction,
        commands: mpsc::Sender<Command>,
    ) -> Result<ChannelId> {
        let source = SourceKey::of(addr.ip());
        let mut table = self.table();
        let counts = Counts {
            total: table.entries.len(),
            inbound: table
                .entries
                .values()
                .filter(|e| e.info.direction == Direction::Inbound)
                .count(),
            handshaking: table
                .entries
                .values()
                .filter(|e| {
                    e.info.direction == Direction::Inbound
                        && e.info.state == ChannelState::Handshaking
                })
                .count(),
            from_source: table
                .entries
                .values()
                .filter(|e| e.source == source && e.waiting())
                .count(),
            awaiting: 0,
        };
        admission::room_for_channel(counts, &self.limits, direction)
            .map_err(Error::LimitReached)?;
        table.next_id += 1;
        let id = table.next_id;
        let now = Instant::now();
        table.entries.insert(
            id,
            Entry {
                info: ChannelInfo {
                    id,
                    peer: None,
                    addr,
                    direction,
                    state: ChannelState::Handshaking,
                    since: SystemTime::now(),
                    rtt: None,
                    bytes_sent: 0,
                    bytes_received: 0,
                },
                source,
                commands,
                pending_since: None,
                last_app_activity: now,
            },
        );
        Ok(id)
    }

    /// Records the authenticated id of channel `id`, resolving duplicates.
    ///
    /// Two channels to one peer happen when both sides dial at once, or when
    /// a peer reconnects before its old connection timed out. Both sides
    /// must keep the same one without talking, so: if the two channels were
    /// dialed by different sides, the channel dialed by the smaller peer id
    /// wins; if by the same side, the newer channel wins (the old one is
    /// most likely dead).
    pub(crate) fn bind(&self, id: ChannelId, peer: PeerId, local: PeerId) -> Bind {
        let mut table = self.table();
        let Some(direction) = table.entries.get(&id).map(|e| e.info.direction) else {
            return Bind::Duplicate;
        };
        let dialer = |direction| match direction {
            Direction::Outbound => local,
            Direction::Inbound => peer,
        };
        let mut outcome = Bind::Bound;
        if let Some(&other) = table.by_peer.get(&peer)
            && other != id
            && let Some(existing) = table.entries.get(&other)
        {
            let (new_dialer, old_dialer) = (dialer(direction), dialer(existing.info.direction));
            if new_dialer != old_dialer && old_dialer < new_dialer {
                return Bind::Duplicate;
            }
            outcome = Bind::Replaces(existing.commands.clone());
        }
        table.by_peer.insert(peer, id);
        if let Some(entry) = table.entries.get_mut(&id) {
            entry.info.peer = Some(peer);
        }
        outcome
    }

    /// How many channels wait for approval, overall and from the source of
    /// channel `id` (which is not counted).
    pub(crate) fn awaiting(&self, id: ChannelId) -> (usize, usize) {
        let table = self.table();
        let source = table.entries.get(&id).map(|e| e.source);
        let waiting = table
            .entries
            .values()
            .filter(|e| e.info.id != id && e.info.state == ChannelState::PendingApproval);
        let (mut all, mut from_source) = (0, 0);
        for entry in waiting {
            all += 1;
            if Some(entry.source) == source {
                from_source += 1;
            }
        }
        (all, from_source)
    }

    /// Records a channel's new state.
    pub(crate) fn set_state(&self, id: ChannelId, state: ChannelState) {
        let now = Instant::now();
        if let Some(entry) = self.table().entries.get_mut(&id) {
            entry.pending_since = match state {
                ChannelState::PendingApproval => entry.pending_since.or(Some(now)),
                _ => None,
            };
            entry.info.state = state;
        }
        self.bump();
    }

    /// The channel's traffic so far and its last round trip.
    pub(crate) fn record_traffic(
        &self,
        id: ChannelId,
        sent: u64,
        received: u64,
        rtt: Option<Duration>,
    ) {
        if let Some(entry) = self.table().entries.get_mut(&id) {
            entry.info.bytes_sent = sent;
            entry.info.bytes_received = received;
            entry.info.rtt = rtt.or(entry.info.rtt);
        }
    }

    /// An application packet crossed channel `id`.
    pub(crate) fn touch(&self, id: ChannelId) {
        if let Some(entry) = self.table().entries.get_mut(&id) {
            entry.last_app_activity = Instant::now();
        }
    }

    /// Forgets channel `id` (its actor ended).
    pub(crate) fn remove(&self, id: ChannelId) {
        let mut table = self.table();
        if let Some(entry) = table.entries.remove(&id)
            && let Some(peer) = entry.info.peer
            && table.by_peer.get(&peer) == Some(&id)
        {
            table.by_peer.remove(&peer);
        }
        drop(table);
        self.bump();
    }

    /// The command queue of the channel bound to `peer`.
    pub(crate) fn commands(&self, peer: &PeerId) -> Option<mpsc::Sender<Command>> {
        let table = self.table();
        let id = table.by_peer.get(peer)?;
        table.entries.get(id).map(|e| e.commands.clone())
    }

    /// The command queue of `peer`'s channel if it waits for approval.
    pub(crate) fn pending_commands(&self, peer: &PeerId) -> Option<mpsc::Sender<Command>> {
        let table = self.table();
        let id = table.by_peer.get(peer)?;
        table
            .entries
            .get(id)
            .filter(|e| e.info.state == ChannelState::PendingApproval)
            .map(|e| e.commands.clone())
    }

    /// Open channels whose scopes `permit`, with their command queues.
    pub(crate) fn open_with(
        &self,
        permit: impl Fn(Scopes) -> bool,
    ) -> Vec<(PeerId, mpsc::Sender<Command>)> {
        self.table()
            .entries
            .values()
            .filter_map(|e| match (e.info.state, e.info.peer) {
                (ChannelState::Open { scopes }, Some(peer)) if permit(scopes) => {
                    Some((peer, e.commands.clone()))
                }
                _ => None,
            })
            .collect()
    }

    /// The channel bound to `peer`.
    pub(crate) fn info(&self, peer: &PeerId) -> Option<ChannelInfo> {
        let table = self.table();
        let id = table.by_peer.get(peer)?;
        table.entries.get(id).map(|e| e.info.clone())
    }

    /// Whether a channel (in any state) is bound to `peer`.
    pub(crate) fn has(&self, peer: &PeerId) -> bool {
        self.table().by_peer.contains_key(peer)
    }

    /// Whether `peer`'s channel is open, or waiting for its approval.
    pub(crate) fn is_settled(&self, peer: &PeerId) -> bool {
        self.info(peer).is_some_and(|info| {
            matches!(
                info.state,
                ChannelState::Open { .. } | ChannelState::PendingApproval
            )
        })
    }

    pub(crate) fn is_open(&self, peer: &PeerId) -> bool {
        self.info(peer)
            .is_some_and(|info| matches!(info.state, ChannelState::Open { .. }))
    }

    /// The peer of an open channel that is `expected`, or (when no id is
    /// expected) at `addr`'s address.
    pub(crate) fn open_peer_at(
        &self,
        addr: SocketAddr,
        expected: Option<PeerId>,
    ) -> Option<PeerId> {
        self.table()
            .entries
            .values()
            .filter(|e| matches!(e.info.state, ChannelState::Open { .. }))
            .filter_map(|e| e.info.peer.map(|p| (p, e.info.addr)))
            .find(|(peer, at)| match expected {
                Some(expected) => *peer == expected,
                None => at.ip() == addr.ip(),
            })
            .map(|(peer, _)| peer)
    }

    /// Channels that should close now: denied by `denies`, waiting for
    /// approval longer than `approval_timeout`, or idle longer than
    /// `idle_timeout`.
    pub(crate) fn discern(
        &self,
        approval_timeout: Duration,
        idle_timeout: Option<Duration>,
        denies: impl Fn(&ChannelInfo) -> bool,
    ) -> Vec<Discerned> {
        let now = Instant::now();
        self.table()
            .entries
            .values()
            .filter_map(|entry| {
                let info = &entry.info;
                let why = if denies(info) {
                    Discern::Denied
                } else if entry
                    .pending_since
                    .is_some_and(|since| now.duration_since(since) >= approval_timeout)
                {
                    Discern::ApprovalTimedOut
                } else if matches!(info.state, ChannelState::Open { .. })
                    && idle_timeout
                        .is_some_and(|idle| now.duration_since(entry.last_app_activity) >= idle)
                {
                    Discern::Idle
                } else {
                    return None;
                };
                Some(Discerned {
                    id: info.id,
                    peer: info.peer,
                    commands: entry.commands.clone(),
                    why,
                })
            })
            .collect()
    }

    /// Every channel, by id.
    pub(crate) fn snapshot(&self) -> Vec<ChannelInfo> {
        let mut all: Vec<_> = self
            .table()
            .entries
            .values()
            .map(|e| e.info.clone())
            .collect();
        all.sort_by_key(|info| info.id);
        all
    }

    /// Every channel's command queue, for a message to all.
    pub(crate) fn all_commands(&self) -> Vec<(ChannelInfo, mpsc::Sender<Command>)> {
        self.table()
            .entries
            .values()
            .map(|e| (e.info.clone(), e.commands.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> PeerId {
        PeerId::from_bytes([n; 32])
    }

    fn addr(last: u8) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, last], 1))
    }

    fn insert(t: &Channels, direction: Direction) -> ChannelId {
        insert_from(t, direction, 1).unwrap()
    }

    fn insert_from(t: &Channels, direction: Direction, last: u8) -> Result<ChannelId> {
        let (tx, _rx) = mpsc::channel(1);
        t.register(addr(last), direction, tx)
    }

    #[test]
    fn crossed_dials_keep_the_channel_dialed_by_the_smaller_id_on_both_sides() {
        let (a, b) = (id(1), id(2));
        // On A: A's outbound (dialer A) and B's inbound (dialer B).
        let on_a = Channels::new(Limits::default());
        let a_out = insert(&on_a, Direction::Outbound);
        let a_in = insert(&on_a, Direction::Inbound);
        assert!(matches!(on_a.bind(a_in, b, a), Bind::Bound));
        assert!(matches!(on_a.bind(a_out, b, a), Bind::Replaces(_)));
        assert_eq!(on_a.info(&b).unwrap().id, a_out);
        // On B, completion in the other order: same winner (dialed by A).
        let on_b = Channels::new(Limits::default());
        let b_out = insert(&on_b, Direction::Outbound);
        let b_in = insert(&on_b, Direction::Inbound);
        assert!(matches!(on_b.bind(b_in, a, b), Bind::Bound));
        assert!(matches!(on_b.bind(b_out, a, b), Bind::Duplicate));
        assert_eq!(on_b.info(&a).unwrap().id, b_in);
    }

    #[test]
    fn a_reconnect_from_the_same_side_replaces_the_old_channel() {
        let t = Channels::new(Limits::default());
        let old = insert(&t, Direction::Inbound);
        let new = insert(&t, Direction::Inbound);
        assert!(matches!(t.bind(old, id(9), id(1)), Bind::Bound));
        assert!(matches!(t.bind(new, id(9), id(1)), Bind::Replaces(_)));
        // Removing the loser does not unbind the winner.
        t.remove(old);
        assert_eq!(t.info(&id(9)).unwrap().id, new);
    }

    #[test]
    fn one_source_cannot_hold_every_handshake_slot() {
        let limits = Limits::default();
        let t = Channels::new(limits);
        for _ in 0..limits.max_pending_per_source {
            insert_from(&t, Direction::Inbound, 7).unwrap();
        }
        assert!(matches!(
            insert_from(&t, Direction::Inbound, 7),
            Err(Error::LimitReached("max_pending_per_source"))
        ));
        insert_from(&t, Direction::Inbound, 8).expect("another source still gets in");
        insert_from(&t, Direction::Outbound, 7).expect("our own dials are not bounded per source");
    }

    #[test]
    fn states_counts_and_discern() {
        let t = Channels::new(Limits::default());
        let a = insert(&t, Direction::Inbound);
        let b = insert(&t, Direction::Outbound);
        t.bind(a, id(2), id(1));
        t.bind(b, id(3), id(1));
        t.set_state(a, ChannelState::PendingApproval);
        assert_eq!(t.awaiting(b), (1, 1));
        assert_eq!(t.awaiting(a), (0, 0));
        t.set_state(
            b,
            ChannelState::Open {
                scopes: Scopes::MESSAGE,
            },
        );
        assert_eq!(t.open_with(|s| s.contains(Scopes::MESSAGE)).len(), 1);
        assert!(t.open_with(|s| s.contains(Scopes::FILE)).is_empty());
        let picked = t.discern(Duration::ZERO, None, |_| false);
        assert_eq!(picked.len(), 1);
        assert_eq!(
            (picked[0].id, picked[0].why),
            (a, Discern::ApprovalTimedOut)
        );
        let picked = t.discern(Duration::from_secs(60), Some(Duration::ZERO), |_| false);
        assert_eq!((picked[0].id, picked[0].why), (b, Discern::Idle));
        let picked = t.discern(Duration::from_secs(60), None, |info| info.id == a);
        assert_eq!((picked[0].id, picked[0].why), (a, Discern::Denied));
        t.remove(a);
        assert!(!t.has(&id(2)));
        assert_eq!(t.snapshot().len(), 1);
    }
}
