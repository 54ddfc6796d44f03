//! The public event stream: every subscriber gets its own queue, bounded
//! both in events and in bytes.
//!
//! A `tokio::sync::broadcast` channel bounds by count only, and one
//! `DataReceived` may carry a frame's worth of bytes: 1,024 of them held for
//! a slow subscriber would be over 100 MiB. Here each subscriber's queue
//! drops its oldest events once either bound is passed and tells the
//! subscriber how many it lost ([`NetworkEvent::EventsLost`]).
//!
//! This stream is lossy by design, so nothing inside the runtime listens
//! to it: internal signals (a channel ended, a dial finished) travel on
//! their own channels.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use tokio::sync::Notify;

use crate::event::NetworkEvent;

/// Bounds of each subscriber's queue.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueBounds {
    pub(crate) events: usize,
    pub(crate) bytes: usize,
}

/// The sending side. Cheap to clone; when the last clone is dropped, every
/// stream ends after delivering what it holds.
#[derive(Clone)]
pub(crate) struct EventBus {
    inner: Arc<BusInner>,
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBus").finish_non_exhaustive()
    }
}

struct BusInner {
    bounds: QueueBounds,
    subscribers: Mutex<Vec<Weak<Subscriber>>>,
}

struct Subscriber {
    queue: Mutex<Queue>,
    ready: Notify,
}

#[derive(Default)]
struct Queue {
    events: VecDeque<(NetworkEvent, usize)>,
    bytes: usize,
    lost: u64,
    closed: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl EventBus {
    pub(crate) fn new(bounds: QueueBounds) -> Self {
        Self {
            inner: Arc::new(BusInner {
                bounds,
                subscribers: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Delivers `event` to every subscriber. Never waits: a full queue
    /// loses its oldest events instead.
    pub(crate) fn emit(&self, event: NetworkEvent) {
        let cost = event.cost();
        let bounds = self.inner.bounds;
        let mut subscribers = lock(&self.inner.subscribers);
        subscribers.retain(|weak| weak.strong_count() > 0);
        let live: Vec<Arc<Subscriber>> = subscribers.iter().filter_map(Weak::upgrade).collect();
        drop(subscribers);
        let Some((last, others)) = live.split_last() else {
            return;
        };
        for subscriber in others {
            subscriber.push(event.clone(), cost, bounds);
        }
        last.push(event, cost, bounds);
    }

    pub(crate) fn subscribe(&self) -> EventStream {
        let subscriber = Arc::new(Subscriber {
            queue: Mutex::new(Queue::default()),
            ready: Notify::new(),
        });
        lock(&self.inner.subscribers).push(Arc::downgrade(&subscriber));
        EventStream { subscriber }
    }
}

impl Drop for BusInner {
    fn drop(&mut self) {
        for subscriber in lock(&self.subscribers).iter().filter_map(Weak::upgrade) {
            lock(&subscriber.queue).closed = true;
            subscriber.ready.notify_one();
        }
    }
}

impl Subscriber {
    fn push(&self, event: NetworkEvent, cost: usize, bounds: QueueBounds) {
        let mut queue = lock(&self.queue);
        queue.events.push_back((event, cost));
        queue.bytes += cost;
        while queue.events.len() > bounds.events || queue.bytes > bounds.bytes {
            let Some((_, dropped)) = queue.events.pop_front() else {
                break;
            };
            queue.bytes -= dropped;
            queue.lost += 1;
        }
        drop(queue);
        self.ready.notify_one();
    }

    fn pop(&self) -> Popped {
        let mut queue = lock(&self.queue);
        if queue.lost > 0 {
            return Popped::Event(NetworkEvent::EventsLost {
                count: std::mem::take(&mut queue.lost),
            });
        }
        match queue.events.pop_front() {
            Some((event, cost)) => {
                queue.bytes -= cost;
                Popped::Event(event)
            }
            None if queue.closed => Popped::Closed,
            None => Popped::Empty,
        }
    }
}

enum Popped {
    Event(NetworkEvent),
    Empty,
    Closed,
}

/// A subscription to a network's events (see [`PeerNetwork::subscribe`](crate::PeerNetwork::subscribe)).
///
/// Each stream has its own queue, bounded in events and bytes
/// ([`Limits::event_buffer`](crate::Limits::event_buffer),
/// [`Limits::event_buffer_bytes`](crate::Limits::event_buffer_bytes)). A
/// subscriber that falls behind loses the oldest events and receives
/// [`NetworkEvent::EventsLost`] with their count.
#[derive(Debug)]
pub struct EventStream {
    subscriber: Arc<Subscriber>,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber").finish_non_exhaustive()
    }
}

impl EventStream {
    /// The next event; `None` once the network is gone and every queued
    /// event has been read.
    pub async fn recv(&mut self) -> Option<NetworkEvent> {
        loop {
            match self.subscriber.pop() {
                Popped::Event(event) => return Some(event),
                Popped::Closed => return None,
                // `notify_one` stores a permit when nobody waits, so an
                // event pushed between `pop` and here still wakes us.
                Popped::Empty => self.subscriber.ready.notified().await,
            }
        }
    }

    /// The next event if one is queued.
    pub fn try_recv(&mut self) -> Option<NetworkEvent> {
        match self.subscriber.pop() {
            Popped::Event(event) => Some(event),
            Popped::Empty | Popped::Closed => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use p2pnet_proto::PeerId;
    use p2pnet_proto::packet::DataKind;

    use super::*;

    fn data(n: usize) -> NetworkEvent {
        NetworkEvent::DataReceived {
            peer: PeerId::from_bytes([1; 32]),
            kind: DataKind::MiscData,
            label: None,
            data: vec![0; n].into(),
        }
    }

    #[tokio::test]
    async fn a_slow_subscriber_keeps_the_newest_events_within_its_byte_bound() {
        let bus = EventBus::new(QueueBounds {
            events: 1_000,
            bytes: 1 << 20,
        });
        let mut slow = bus.subscribe();
        for _ in 0..100 {
            bus.emit(data(64 * 1024));
        }
        let held = lock(&slow.subscriber.queue).bytes;
        assert!(held <= 1 << 20, "held {held} bytes");
        let Some(NetworkEvent::EventsLost { count }) = slow.recv().await else {
            panic!("the loss is reported first");
        };
        let mut kept = 0;
        while slow.try_recv().is_some() {
            kept += 1;
        }
        assert_eq!(count + kept, 100);
        assert!(
            kept >= 14,
            "about 1 MiB of 64 KiB events is kept, got {kept}"
        );
    }

    #[tokio::test]
    async fn count_bound_and_close() {
        let bus = EventBus::new(QueueBounds {
            events: 3,
            bytes: usize::MAX,
        });
        let mut stream = bus.subscribe();
        for _ in 0..5 {
            bus.emit(NetworkEvent::EventsLost { count: 0 });
        }
        assert!(matches!(
            stream.recv().await,
            Some(NetworkEvent::EventsLost { count: 2 })
        ));
        drop(bus);
        let mut rest = 0;
        while stream.recv().await.is_some() {
            rest += 1;
        }
        assert_eq!(
            rest, 3,
            "queued events outlive the bus, then the stream ends"
        );
    }

    #[tokio::test]
    async fn a_dropped_stream_costs_nothing() {
        let bus = EventBus::new(QueueBounds {
            events: 8,
            bytes: 1 << 20,
        });
        drop(bus.subscribe());
        bus.emit(data(10));
        assert!(lock(&bus.inner.subscribers).is_empty());
    }
}
