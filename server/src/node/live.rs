//! The live feed: the node's events as the panel's [`LiveEvent`]s.
//!
//! One task ([`run`]) reads the network's event stream and, every
//! [`TRAFFIC_INTERVAL`], its byte counters; each becomes a `LiveEvent`
//! with the next `seq`. [`LiveFeed`] keeps the last [`RECENT_EVENTS`]
//! events, so a page that subscribes late (or reconnects) gets what it
//! missed, and the last [`TRAFFIC_HISTORY`] traffic samples, which the
//! Overview snapshot carries for the throughput chart. Traffic events are
//! not kept with the others: one a second would push everything else out.
//!
//! Bounds, so that no client can make the server hold more:
//! - every subscriber reads the same broadcast ring of [`CLIENT_BUFFER`]
//!   events through its own cursor; one that falls further behind (a slow
//!   or stalled reader) loses the oldest and is sent a `lagged` event,
//!   after which it should fetch its snapshot again. A client that never
//!   reads costs its replay (at most [`RECENT_EVENTS`] shared events) and
//!   a cursor, however long it stays;
//! - at most [`MAX_STREAMS`] subscriptions at once ([`LiveFeed::subscribe`]
//!   says `Busy` beyond);
//! - an event's text is at most [`MAX_TEXT_CHARS`] characters.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use app::api::{LAGGED, LiveEvent, TRAFFIC, TrafficSample};
use p2pnet::{
    CloseReason, Direction, EventStream, GrantChange, NetworkEvent, PeerId, PeerNetwork, Traffic,
    TransferDirection, proto::RefuseReason,
};
use tokio::sync::{
    OwnedSemaphorePermit, Semaphore,
    broadcast::{self, error::RecvError},
};
use tokio_util::sync::CancellationToken;

use super::records::source_word;
use crate::state::now_ms;

/// Events kept for late subscribers (traffic samples are kept apart).
pub const RECENT_EVENTS: usize = 256;
/// How far one subscriber may fall behind before it loses events and is
/// sent `lagged`.
pub const CLIENT_BUFFER: usize = 64;
/// Subscriptions open at once.
pub const MAX_STREAMS: usize = 64;
/// Traffic samples kept: five minutes at one a second.
pub const TRAFFIC_HISTORY: usize = 300;
/// How often the byte counters are sampled and sent.
pub const TRAFFIC_INTERVAL: Duration = Duration::from_secs(1);
/// Longest event text, in characters; a peer's message is cut there.
pub const MAX_TEXT_CHARS: usize = 300;

/// What one node event says, before it gets its `seq` and time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Draft {
    /// The dotted kind, e.g. `approval.requested`.
    pub kind: &'static str,
    /// The peer concerned.
    pub peer: Option<PeerId>,
    /// The feed line.
    pub text: String,
}

impl Draft {
    /// The event, numbered `seq` and stamped now, its text bounded.
    fn into_event(self, seq: u64) -> Arc<LiveEvent> {
        Arc::new(LiveEvent {
            seq,
            at_ms: now_ms(),
            kind: self.kind.to_owned(),
            peer: self.peer.map(|p| p.to_string()),
            text: bounded_text(&self.text),
            traffic: None,
        })
    }
}

/// The feed: recent events, traffic samples, and the subscribers' ring.
pub struct LiveFeed {
    recent: Mutex<Recent>,
    /// Every subscriber's cursor runs over this one bounded ring.
    sender: broadcast::Sender<Arc<LiveEvent>>,
    streams: Arc<Semaphore>,
}

/// The tables behind the feed's lock. Publishing and subscribing both take
/// it, so a new subscriber's replay and its live events neither overlap
/// nor leave a gap.
struct Recent {
    next_seq: u64,
    events: VecDeque<Arc<LiveEvent>>,
    /// The highest `seq` pushed out of `events` (0: none yet).
    evicted_through: u64,
    traffic: VecDeque<TrafficSample>,
}

/// [`LiveFeed::subscribe`] found [`MAX_STREAMS`] subscriptions open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{MAX_STREAMS} live streams are open already")]
pub struct Busy;

/// The feed's fill, for tests and diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedStats {
    /// Events kept for late subscribers.
    pub recent_events: usize,
    /// Traffic samples kept.
    pub traffic_samples: usize,
    /// Events in the subscribers' ring (at most [`CLIENT_BUFFER`]).
    pub queued: usize,
    /// Subscriptions open.
    pub streams: usize,
}

impl Default for LiveFeed {
    fn default() -> Self {
        let (sender, _) = broadcast::channel(CLIENT_BUFFER);
        Self {
            recent: Mutex::new(Recent {
                next_seq: 1,
                events: VecDeque::with_capacity(RECENT_EVENTS),
                evicted_through: 0,
                traffic: VecDeque::with_capacity(TRAFFIC_HISTORY),
            }),
            sender,
            streams: Arc::new(Semaphore::new(MAX_STREAMS)),
        }
    }
}

impl LiveFeed {
    fn recent(&self) -> MutexGuard<'_, Recent> {
        self.recent.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds an event for every subscriber and keeps it for late ones; its
    /// `seq`.
    pub fn publish(&self, draft: Draft) -> u64 {
        let mut recent = self.recent();
        let seq = recent.take_seq();
        let event = draft.into_event(seq);
        if recent.events.len() >= RECENT_EVENTS
            && let Some(old) = recent.events.pop_front()
        {
            recent.evicted_through = old.seq;
        }
        recent.events.push_back(event.clone());
        // An error only says nobody listens now.
        let _ = self.sender.send(event);
        seq
    }

    /// Sends an event to the subscribers without keeping it for late ones:
    /// a figure that the next one replaces (a scan's progress, once a
    /// second), which would otherwise push every other event out of the
    /// replay, as traffic samples would.
    pub fn publish_transient(&self, draft: Draft) -> u64 {
        let mut recent = self.recent();
        let seq = recent.take_seq();
        let _ = self.sender.send(draft.into_event(seq));
        seq
    }

    /// Adds a `traffic` event and keeps its sample for the chart's history.
    pub fn publish_traffic(&self, traffic: Traffic) -> u64 {
        let mut recent = self.recent();
        let seq = recent.take_seq();
        let sample = TrafficSample {
            at_ms: now_ms(),
            bytes_sent: traffic.bytes_sent,
            bytes_received: traffic.bytes_received,
        };
        if recent.traffic.len() >= TRAFFIC_HISTORY {
            recent.traffic.pop_front();
        }
        recent.traffic.push_back(sample);
        let _ = self.sender.send(Arc::new(LiveEvent {
            seq,
            at_ms: sample.at_ms,
            kind: TRAFFIC.to_owned(),
            peer: None,
            text: format!(
                "{} bytes sent, {} received",
                sample.bytes_sent, sample.bytes_received
            ),
            traffic: Some((sample.bytes_sent, sample.bytes_received)),
        }));
        seq
    }

    /// The traffic samples kept, oldest first.
    pub fn traffic_history(&self) -> Vec<TrafficSample> {
        self.recent().traffic.iter().copied().collect()
    }

    /// A subscription that first replays the kept events after `after`
    /// (all of them without a cursor), then follows live. A cursor the
    /// feed can no longer serve in full (events after it were pushed out,
    /// or it comes from before a restart) gets `lagged` first.
    pub fn subscribe(&self, after: Option<u64>) -> Result<Subscription, Busy> {
        let permit = self.streams.clone().try_acquire_owned().map_err(|_| Busy)?;
        let recent = self.recent();
        let receiver = self.sender.subscribe();
        let backlog = recent.replay(after);
        drop(recent);
        Ok(Subscription {
            backlog,
            receiver,
            _permit: permit,
        })
    }

    /// How full the feed is.
    pub fn stats(&self) -> FeedStats {
        let recent = self.recent();
        FeedStats {
            recent_events: recent.events.len(),
            traffic_samples: recent.traffic.len(),
            queued: self.sender.len(),
            streams: MAX_STREAMS - self.streams.available_permits(),
        }
    }
}

impl Recent {
    fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    fn replay(&self, after: Option<u64>) -> VecDeque<Arc<LiveEvent>> {
        let after = match after {
            None => return self.events.iter().cloned().collect(),
            // A cursor from before a restart: everything kept is news.
            Some(after) if after >= self.next_seq => {
                return std::iter::once(lagged("the server restarted since".into()))
                    .chain(self.events.iter().cloned())
                    .collect();
            }
            Some(after) => after,
        };
        let missed = (after < self.evicted_through).then(|| {
            lagged(format!(
                "events {}–{} are no longer kept",
                after + 1,
                self.evicted_through
            ))
        });
        missed
            .into_iter()
            .chain(self.events.iter().filter(|e| e.seq > after).cloned())
            .collect()
    }
}

/// The `lagged` event: addressed to one client, outside the sequence.
fn lagged(why: String) -> Arc<LiveEvent> {
    Arc::new(LiveEvent {
        seq: 0,
        at_ms: now_ms(),
        kind: LAGGED.to_owned(),
        peer: None,
        text: format!("missed events ({why}); reloading"),
        traffic: None,
    })
}

/// One client's view of the feed; dropping it frees its slot.
pub struct Subscription {
    backlog: VecDeque<Arc<LiveEvent>>,
    receiver: broadcast::Receiver<Arc<LiveEvent>>,
    _permit: OwnedSemaphorePermit,
}

impl Subscription {
    /// The next event: the replay first, then live ones, with `lagged`
    /// where this subscriber fell behind. `None` once the feed is gone.
    pub async fn next(&mut self) -> Option<Arc<LiveEvent>> {
        if let Some(event) = self.backlog.pop_front() {
            return Some(event);
        }
        match self.receiver.recv().await {
            Ok(event) => Some(event),
            Err(RecvError::Lagged(missed)) => {
                Some(lagged(format!("this stream fell {missed} events behind")))
            }
            Err(RecvError::Closed) => None,
        }
    }
}

/// Feeds `feed` from `events` and the network's byte counters until `stop`
/// or the network's end.
pub(super) async fn run(
    feed: Arc<LiveFeed>,
    network: PeerNetwork,
    mut events: EventStream,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(TRAFFIC_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            event = events.recv() => match event {
                None => return,
                Some(event) => {
                    if let Some(draft) = describe(&event) {
                        feed.publish(draft);
                    }
                }
            },
            _ = tick.tick() => {
                feed.publish_traffic(network.traffic());
            }
        }
    }
}

/// What the feed says about a node event; `None` for the ones it leaves
/// out (transfer progress, many a second; a `Disconnected`, which its
/// `channel.closed` repeats).
pub fn describe(event: &NetworkEvent) -> Option<Draft> {
    let draft = |kind, peer: Option<&PeerId>, text: String| {
        Some(Draft {
            kind,
            peer: peer.copied(),
            text,
        })
    };
    match event {
        NetworkEvent::PeerAdded { peer, source } => draft(
            "peer.added",
            Some(peer),
            format!("{} became known ({})", peer.short(), source_word(*source)),
        ),
        NetworkEvent::PeerRemoved { peer } => draft(
            "peer.removed",
            Some(peer),
            format!("{} was forgotten", peer.short()),
        ),
        NetworkEvent::IncomingConnectionAttempt { addr } => draft(
            "connection.incoming",
            None,
            format!("connection from {addr}"),
        ),
        NetworkEvent::ConnectionRefused { addr, peer, reason } => draft(
            "connection.refused",
            peer.as_ref(),
            match peer {
                Some(peer) => format!("refused {} at {addr}: {reason}", peer.short()),
                None => format!("refused {addr}: {reason}"),
            },
        ),
        NetworkEvent::ApprovalRequested { peer, addr } => draft(
            "approval.requested",
            Some(peer),
            format!("{} at {addr} waits for approval", peer.short()),
        ),
        NetworkEvent::ChannelOpened {
            peer,
            addr,
            direction,
            scopes,
        } => draft(
            "channel.opened",
            Some(peer),
            format!(
                "channel with {} at {addr} open ({}; {scopes})",
                peer.short(),
                match direction {
                    Direction::Inbound => "it dialled us",
                    Direction::Outbound => "we dialled it",
                }
            ),
        ),
        NetworkEvent::ScopesChanged { peer, scopes } => draft(
            "scopes.changed",
            Some(peer),
            format!("{} may now exchange: {scopes}", peer.short()),
        ),
        NetworkEvent::GrantChanged {
            peer,
            grant,
            change,
        } => draft(
            "grant.changed",
            Some(peer),
            format!(
                "grant {} of {} {} ({})",
                grant.id,
                peer.short(),
                match change {
                    GrantChange::Granted => "made",
                    GrantChange::Revoked => "revoked",
                    GrantChange::Expired => "expired",
                },
                grant.scopes
            ),
        ),
        NetworkEvent::ChannelClosed {
            peer,
            addr,
            reason,
            by_remote,
        } => draft(
            "channel.closed",
            peer.as_ref(),
            format!(
                "channel with {} closed by {}: {}",
                peer.map_or_else(|| addr.to_string(), |p| format!("{} at {addr}", p.short())),
                if *by_remote { "the peer" } else { "us" },
                close_reason(reason)
            ),
        ),
        NetworkEvent::MessageReceived { peer, text } => draft(
            "message.received",
            Some(peer),
            format!("{}: {text}", peer.short()),
        ),
        NetworkEvent::DataReceived {
            peer, kind, data, ..
        } => draft(
            "data.received",
            Some(peer),
            format!("{} sent {} bytes ({kind:?})", peer.short(), data.len()),
        ),
        NetworkEvent::PacketRefused { peer, kind, reason } => draft(
            "packet.refused",
            Some(peer),
            format!(
                "dropped a {kind} from {}: {}",
                peer.short(),
                match reason {
                    RefuseReason::NotPermitted => "no grant permits it",
                    RefuseReason::Revoked => "its grant was just revoked",
                    RefuseReason::IdentityMismatch => "it claimed another id",
                }
            ),
        ),
        NetworkEvent::TransferCompleted {
            peer,
            transfer,
            direction,
            ..
        } => draft(
            "transfer.completed",
            Some(peer),
            format!(
                "transfer {transfer} {} {} complete",
                transfer_way(*direction),
                peer.short()
            ),
        ),
        NetworkEvent::TransferFailed {
            peer,
            transfer,
            direction,
            reason,
        } => draft(
            "transfer.failed",
            Some(peer),
            format!(
                "transfer {transfer} {} {} failed: {reason}",
                transfer_way(*direction),
                peer.short()
            ),
        ),
        NetworkEvent::HandlerFailed { peer, kind, error } => draft(
            "handler.failed",
            Some(peer),
            format!("handling a {kind} from {} failed: {error}", peer.short()),
        ),
        NetworkEvent::RoutineFailed { name, error } => draft(
            "routine.failed",
            None,
            format!("routine {name} failed: {error}"),
        ),
        NetworkEvent::EventsLost { count } => {
            draft(LAGGED, None, format!("the feed missed {count} node events"))
        }
        _ => None,
    }
}

fn close_reason(reason: &CloseReason) -> String {
    match reason {
        CloseReason::Disconnect(disconnect) => {
            let word = disconnect.reason.to_string();
            match &disconnect.message {
                Some(message) => format!("{word} ({message})"),
                None => word,
            }
        }
        CloseReason::IdleTimeout => "idle timeout".into(),
        CloseReason::ConnectionLost => "connection lost".into(),
        CloseReason::Error(error) => format!("error: {error}"),
    }
}

fn transfer_way(direction: TransferDirection) -> &'static str {
    match direction {
        TransferDirection::Outgoing => "to",
        TransferDirection::Incoming => "from",
    }
}

/// One printable line of at most [`MAX_TEXT_CHARS`] characters: a peer's
/// text may hold anything.
fn bounded_text(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(MAX_TEXT_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().nth(MAX_TEXT_CHARS).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use p2pnet::proto::packet::{Disconnect, DisconnectReason};

    use super::*;

    fn peer(n: u8) -> PeerId {
        PeerId::from_bytes([n; 32])
    }

    fn note(text: &str) -> Draft {
        Draft {
            kind: "test.note",
            peer: None,
            text: text.into(),
        }
    }

    async fn drain(sub: &mut Subscription) -> Vec<Arc<LiveEvent>> {
        let mut out = Vec::new();
        while let Ok(Some(event)) =
            tokio::time::timeout(Duration::from_millis(20), sub.next()).await
        {
            out.push(event);
        }
        out
    }

    #[test]
    fn node_events_become_feed_lines() {
        let approval = describe(&NetworkEvent::ApprovalRequested {
            peer: peer(1),
            addr: "127.0.0.1:4000".parse().unwrap(),
        })
        .unwrap();
        assert_eq!(approval.kind, "approval.requested");
        assert_eq!(approval.peer, Some(peer(1)));
        assert!(approval.text.contains("waits for approval"), "{approval:?}");

        let closed = describe(&NetworkEvent::ChannelClosed {
            peer: Some(peer(2)),
            addr: "127.0.0.1:4001".parse().unwrap(),
            reason: CloseReason::Disconnect(Disconnect::new(DisconnectReason::Blocked)),
            by_remote: false,
        })
        .unwrap();
        assert_eq!(closed.kind, "channel.closed");
        assert!(closed.text.ends_with("closed by us: blocked"), "{closed:?}");

        let lost = describe(&NetworkEvent::EventsLost { count: 3 }).unwrap();
        assert_eq!(lost.kind, LAGGED);
        assert!(
            describe(&NetworkEvent::TransferProgress {
                peer: peer(1),
                transfer: p2pnet::proto::packet::TransferId(1),
                direction: TransferDirection::Incoming,
                transferred: 1,
                total: 2,
            })
            .is_none(),
            "progress would flood the feed"
        );
    }

    #[test]
    fn a_peers_text_is_bounded_and_printable() {
        let feed = LiveFeed::default();
        feed.publish(Draft {
            kind: "message.received",
            peer: Some(peer(1)),
            text: format!("a\u{1b}[2J{}", "x".repeat(10_000)),
        });
        let recent = feed.recent();
        let text = &recent.events[0].text;
        assert_eq!(text.chars().count(), MAX_TEXT_CHARS + 1, "cut, with …");
        assert!(text.starts_with("a [2J") && text.ends_with('…'), "{text}");
    }

    #[tokio::test]
    async fn a_late_subscriber_gets_the_kept_events_then_live_ones() {
        let feed = LiveFeed::default();
        for i in 0..RECENT_EVENTS + 10 {
            feed.publish(note(&i.to_string()));
        }
        feed.publish_traffic(Traffic::default());
        assert_eq!(feed.stats().recent_events, RECENT_EVENTS);
        assert_eq!(feed.traffic_history().len(), 1);

        let mut late = feed.subscribe(None).expect("room");
        let replay = drain(&mut late).await;
        assert_eq!(replay.len(), RECENT_EVENTS, "traffic is not replayed");
        assert_eq!(replay[0].seq, 11, "the oldest kept");
        assert!(replay.windows(2).all(|w| w[1].seq == w[0].seq + 1));

        let seq = feed.publish(note("live"));
        assert_eq!(late.next().await.unwrap().seq, seq);

        // A transient event reaches who listens now, and is never replayed.
        let progress = feed.publish_transient(Draft {
            kind: app::api::SCAN_PROGRESS,
            peer: None,
            text: "scan job 1: 50.0%".into(),
        });
        let live = late.next().await.unwrap();
        assert_eq!(
            (live.seq, live.kind.as_str()),
            (progress, app::api::SCAN_PROGRESS)
        );
        let mut later = feed.subscribe(None).expect("room");
        let replay = drain(&mut later).await;
        assert!(replay.iter().all(|e| e.seq != progress), "not kept");
        assert_eq!(replay.last().map(|e| e.seq), Some(seq));
    }

    #[tokio::test]
    async fn a_cursor_resumes_or_is_told_it_lagged() {
        let feed = LiveFeed::default();
        for i in 0..10 {
            feed.publish(note(&i.to_string()));
        }
        let mut resumed = feed.subscribe(Some(7)).expect("room");
        let seqs: Vec<u64> = drain(&mut resumed).await.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![8, 9, 10]);

        for i in 0..RECENT_EVENTS {
            feed.publish(note(&i.to_string()));
        }
        let mut behind = feed.subscribe(Some(7)).expect("room");
        let events = drain(&mut behind).await;
        assert_eq!(events[0].kind, LAGGED, "events 8..10 were pushed out");
        assert_eq!(events.len(), RECENT_EVENTS + 1);

        let mut stale = feed.subscribe(Some(1_000_000)).expect("room");
        let events = drain(&mut stale).await;
        assert_eq!(events[0].kind, LAGGED, "a cursor from another run");
        assert_eq!(events.len(), RECENT_EVENTS + 1, "and everything kept");
    }

    #[tokio::test]
    async fn a_subscriber_that_does_not_read_loses_the_oldest_and_is_told() {
        let feed = LiveFeed::default();
        let mut idle = feed.subscribe(None).expect("room");
        let mut last = 0;
        for i in 0..10 * CLIENT_BUFFER {
            last = feed.publish(note(&i.to_string()));
            assert!(feed.stats().queued <= CLIENT_BUFFER);
        }
        let events = drain(&mut idle).await;
        assert_eq!(events[0].kind, LAGGED);
        assert_eq!(events.len(), 1 + CLIENT_BUFFER, "only the newest are held");
        assert_eq!(events.last().unwrap().seq, last);
    }

    #[test]
    fn subscriptions_are_capped_and_freed_on_drop() {
        let feed = LiveFeed::default();
        let open: Vec<Subscription> = (0..MAX_STREAMS)
            .map(|_| feed.subscribe(None).expect("room"))
            .collect();
        assert_eq!(feed.stats().streams, MAX_STREAMS);
        assert_eq!(feed.subscribe(None).err(), Some(Busy));
        drop(open);
        assert_eq!(feed.stats().streams, 0);
        assert!(feed.subscribe(None).is_ok());
    }
}
