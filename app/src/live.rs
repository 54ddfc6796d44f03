//! The live stream as the pages see it: one `EventSource` on `/api/live`
//! per page load, opened by the layout, and signals any page can read.
//!
//! - [`Live::events`]: the recent feed (not traffic), newest last;
//! - [`Live::changes`]: a counter that goes up when the node changed (an
//!   event arrived, the stream reconnected, or the server said we lagged):
//!   pages put it in their `Resource`'s source and refetch their snapshot;
//! - [`Live::traffic`]: the byte counters, one sample a second;
//! - [`Live::status`]: whether the stream is up.
//!
//! Bursts of events cost one refetch: a change schedules it a moment later
//! and the events arriving meanwhile join it. Dropped connections reconnect
//! with exponential backoff, resuming after the last `seq` seen. Everything
//! kept here is bounded ([`FEED_LEN`], [`TRAFFIC_LEN`]).
//!
//! Only the browser opens the stream (`hydrate` without `ssr`); the server
//! renders the empty signals, which is also what hydration starts from.

use std::collections::VecDeque;

use leptos::prelude::*;

use crate::api::{LAGGED, LiveEvent, SCAN_PROGRESS, TRAFFIC, TrafficSample};

/// Feed entries kept in the page.
pub const FEED_LEN: usize = 100;
/// Traffic samples kept in the page: five minutes at one a second, as on
/// the server.
pub const TRAFFIC_LEN: usize = 300;

/// The state of the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiveStatus {
    /// Not opened yet (the server's rendering), or opening.
    Connecting,
    /// Receiving.
    Live,
    /// Dropped; a reconnect is scheduled.
    Offline,
}

impl LiveStatus {
    /// Its class in the top bar (the style sheet colours it).
    pub fn class(self) -> &'static str {
        match self {
            Self::Connecting => "live-status connecting",
            Self::Live => "live-status live",
            Self::Offline => "live-status offline",
        }
    }

    /// How the top bar shows it.
    pub fn word(self) -> &'static str {
        match self {
            Self::Connecting => "connecting…",
            Self::Live => "live",
            Self::Offline => "offline, retrying",
        }
    }
}

/// One entry of the feed. `key` is the page's own counter, so entries of
/// two server runs (whose `seq`s restart) never share a key.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedItem {
    /// Unique in this page.
    pub key: u64,
    /// The event.
    pub event: LiveEvent,
}

/// The signals of the live stream; cheap to copy. Get it with
/// [`use_live`].
#[derive(Clone, Copy)]
pub struct Live {
    /// The recent feed, newest last, at most [`FEED_LEN`].
    pub events: RwSignal<VecDeque<FeedItem>>,
    /// Goes up when pages should fetch their snapshot again.
    pub changes: RwSignal<u64>,
    /// Byte counters, oldest first, at most [`TRAFFIC_LEN`].
    pub traffic: RwSignal<VecDeque<TrafficSample>>,
    /// Whether the stream is up.
    pub status: RwSignal<LiveStatus>,
    /// Goes up with every scan job's progress event (once a second per
    /// running job): the Widescan page refetches on it, the others do not.
    pub scan_ticks: RwSignal<u64>,
    cursor: StoredValue<Cursor>,
}

/// What the page remembers of the stream between events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Cursor {
    /// The last `seq` applied: the resume point, and older ones are
    /// duplicates of a replay.
    last_seq: Option<u64>,
    next_key: u64,
    /// A refetch is scheduled; changes until then join it.
    refetch_pending: bool,
}

/// What an event asks of the page, besides what [`Cursor::apply`] did.
#[derive(Debug, PartialEq)]
enum Applied {
    /// Nothing (a duplicate).
    Skip,
    /// A traffic sample.
    Sample(TrafficSample),
    /// A scan job's figures changed.
    ScanTick,
    /// A feed entry; the snapshot is stale.
    Feed(FeedItem),
}

impl Cursor {
    fn apply(&mut self, event: LiveEvent) -> Applied {
        if event.kind == LAGGED {
            // What follows may restart the sequence (a new server run).
            self.last_seq = None;
        } else {
            if self.last_seq.is_some_and(|last| event.seq <= last) {
                return Applied::Skip;
            }
            self.last_seq = Some(event.seq);
            if event.kind == TRAFFIC {
                return event
                    .traffic_sample()
                    .map_or(Applied::Skip, Applied::Sample);
            }
            if event.kind == SCAN_PROGRESS {
                return Applied::ScanTick;
            }
        }
        self.next_key += 1;
        Applied::Feed(FeedItem {
            key: self.next_key,
            event,
        })
    }
}

fn push_bounded<T>(queue: &mut VecDeque<T>, item: T, bound: usize) {
    if queue.len() >= bound {
        queue.pop_front();
    }
    queue.push_back(item);
}

impl Live {
    fn new() -> Self {
        Self {
            events: RwSignal::new(VecDeque::new()),
            changes: RwSignal::new(0),
            traffic: RwSignal::new(VecDeque::new()),
            status: RwSignal::new(LiveStatus::Connecting),
            scan_ticks: RwSignal::new(0),
            cursor: StoredValue::new(Cursor::default()),
        }
    }

    /// Applies one event from the stream.
    pub fn receive(self, event: LiveEvent) {
        let mut applied = Applied::Skip;
        self.cursor.update_value(|c| applied = c.apply(event));
        match applied {
            Applied::Skip => {}
            Applied::Sample(sample) => self
                .traffic
                .update(|t| push_bounded(t, sample, TRAFFIC_LEN)),
            Applied::ScanTick => self.scan_ticks.update(|n| *n += 1),
            Applied::Feed(item) => {
                self.events.update(|e| push_bounded(e, item, FEED_LEN));
                self.refetch_soon();
            }
        }
    }

    /// Asks the pages to fetch their snapshots again, now.
    pub fn refetch(self) {
        self.changes.update(|n| *n += 1);
    }

    /// Asks for a refetch a moment from now; every change until then joins
    /// it, so a burst of events costs one fetch.
    pub fn refetch_soon(self) {
        let mut schedule = false;
        self.cursor.update_value(|c| {
            schedule = !c.refetch_pending;
            c.refetch_pending = true;
        });
        if schedule {
            after(std::time::Duration::from_millis(200), move || {
                self.cursor.update_value(|c| c.refetch_pending = false);
                self.refetch();
            });
        }
    }

    /// The last event about `peer` in the feed, if any (untracked).
    pub fn last_about(self, peer: &str) -> Option<LiveEvent> {
        self.events.with_untracked(|events| {
            events
                .iter()
                .rev()
                .find(|item| item.event.peer.as_deref() == Some(peer))
                .map(|item| item.event.clone())
        })
    }

    /// The resume point for a reconnect.
    #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
    fn last_seq(self) -> Option<u64> {
        self.cursor.with_value(|c| c.last_seq)
    }
}

/// Runs `f` after `delay` in the browser; never on the server.
fn after(delay: std::time::Duration, f: impl FnOnce() + 'static) {
    #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
    set_timeout(f, delay);
    #[cfg(not(all(feature = "hydrate", not(feature = "ssr"))))]
    let _ = (delay, f);
}

/// Creates the signals for the pages below, and in the browser opens the
/// stream. Called once, by the layout.
pub fn provide_live() -> Live {
    let live = Live::new();
    provide_context(live);
    // Effects run in the browser only, after hydration.
    #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
    Effect::new(move |_| untrack(|| browser::open(live)));
    live
}

/// The live signals; the layout provides them to every page.
pub fn use_live() -> Live {
    use_context::<Live>().unwrap_or_else(|| {
        // A page rendered outside the layout: it gets signals that never
        // change rather than a panic.
        Live::new()
    })
}

/// The samples to chart: the snapshot's history, then the live samples
/// newer than it, at most [`TRAFFIC_LEN`].
pub fn merge_traffic(
    history: &[TrafficSample],
    live: &VecDeque<TrafficSample>,
) -> Vec<TrafficSample> {
    let since = history.last().map_or(i64::MIN, |s| s.at_ms);
    let mut merged: Vec<TrafficSample> = history
        .iter()
        .copied()
        .chain(live.iter().copied().filter(|s| s.at_ms > since))
        .collect();
    let excess = merged.len().saturating_sub(TRAFFIC_LEN);
    merged.drain(..excess);
    merged
}

#[cfg(all(feature = "hydrate", not(feature = "ssr")))]
mod browser {
    //! The `EventSource` and its reconnects.

    use std::{cell::RefCell, rc::Rc, time::Duration};

    use leptos::prelude::*;
    use wasm_bindgen::{JsCast, closure::Closure};
    use web_sys::{Event, EventSource, MessageEvent};

    use super::{Live, LiveStatus};
    use crate::api::LiveEvent;

    const FIRST_RETRY: Duration = Duration::from_secs(1);
    const MAX_RETRY: Duration = Duration::from_secs(30);

    /// One open stream and the callbacks it calls (dropped with it).
    struct Connection {
        source: EventSource,
        _on_open: Closure<dyn FnMut(Event)>,
        _on_message: Closure<dyn FnMut(MessageEvent)>,
        _on_error: Closure<dyn FnMut(Event)>,
    }

    #[derive(Default)]
    struct Stream {
        connection: Option<Connection>,
        /// Failures since the last successful open.
        failures: u32,
        /// Whether any connection opened before: a later open is a reconnect.
        opened_before: bool,
    }

    pub(super) fn open(live: Live) {
        // Opened for the page's life: the layout that calls this stays
        // mounted until the page unloads, which closes the stream.
        connect(live, Rc::new(RefCell::new(Stream::default())));
    }

    fn connect(live: Live, stream: Rc<RefCell<Stream>>) {
        // Replaced (and its callbacks dropped) here, never from inside one
        // of its own callbacks.
        if let Some(old) = stream.borrow_mut().connection.take() {
            old.source.close();
        }
        live.status.set(LiveStatus::Connecting);
        let url = match live.last_seq() {
            Some(seq) => format!("/api/live?after={seq}"),
            None => "/api/live".to_owned(),
        };
        let Ok(source) = EventSource::new(&url) else {
            retry(live, stream);
            return;
        };
        let on_open = Closure::<dyn FnMut(Event)>::new({
            let stream = stream.clone();
            move |_| {
                live.status.set(LiveStatus::Live);
                let mut s = stream.borrow_mut();
                s.failures = 0;
                // Whatever happened while we were away, or between the
                // page's rendering and now: fetch the snapshot again.
                if s.opened_before {
                    live.refetch();
                } else {
                    live.refetch_soon();
                }
                s.opened_before = true;
            }
        });
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            if let Some(text) = e.data().as_string()
                && let Ok(event) = serde_json::from_str::<LiveEvent>(&text)
            {
                live.receive(event);
            }
        });
        let on_error = Closure::<dyn FnMut(Event)>::new({
            let stream = stream.clone();
            let source = source.clone();
            move |_| {
                // The browser would retry by itself, but not after an HTTP
                // error (401, 503): one policy for both, with backoff.
                source.close();
                live.status.set(LiveStatus::Offline);
                retry(live, stream.clone());
            }
        });
        source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        source.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        stream.borrow_mut().connection = Some(Connection {
            source,
            _on_open: on_open,
            _on_message: on_message,
            _on_error: on_error,
        });
    }

    fn retry(live: Live, stream: Rc<RefCell<Stream>>) {
        let delay = {
            let mut s = stream.borrow_mut();
            let delay = FIRST_RETRY
                .saturating_mul(2u32.saturating_pow(s.failures))
                .min(MAX_RETRY);
            s.failures = s.failures.saturating_add(1);
            delay
        };
        set_timeout(move || connect(live, stream), delay);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64, kind: &str) -> LiveEvent {
        LiveEvent {
            seq,
            at_ms: i64::try_from(seq).unwrap() * 1000,
            kind: kind.into(),
            peer: None,
            text: String::new(),
            traffic: (kind == TRAFFIC).then_some((seq, seq)),
        }
    }

    #[test]
    fn events_apply_once_in_order_and_lagged_restarts_the_sequence() {
        let mut cursor = Cursor::default();
        assert!(matches!(
            cursor.apply(event(5, "peer.added")),
            Applied::Feed(_)
        ));
        assert!(matches!(cursor.apply(event(6, TRAFFIC)), Applied::Sample(s) if s.bytes_sent == 6));
        assert_eq!(
            cursor.apply(event(7, SCAN_PROGRESS)),
            Applied::ScanTick,
            "no feed entry"
        );
        assert_eq!(
            cursor.apply(event(5, "peer.added")),
            Applied::Skip,
            "a replayed duplicate"
        );
        assert_eq!(
            cursor.last_seq,
            Some(7),
            "traffic and progress move the resume point"
        );
        assert!(matches!(cursor.apply(event(0, LAGGED)), Applied::Feed(_)));
        // A restarted server counts from 1 again.
        let Applied::Feed(item) = cursor.apply(event(1, "peer.added")) else {
            panic!("accepted after lagged");
        };
        assert_eq!(item.key, 3, "keys stay unique across runs");
    }

    #[test]
    fn the_chart_takes_history_then_newer_live_samples_bounded() {
        let sample = |at_ms| TrafficSample {
            at_ms,
            bytes_sent: 0,
            bytes_received: 0,
        };
        let history: Vec<_> = (0..TRAFFIC_LEN as i64).map(sample).collect();
        let live: VecDeque<_> = (TRAFFIC_LEN as i64 - 5..TRAFFIC_LEN as i64 + 10)
            .map(sample)
            .collect();
        let merged = merge_traffic(&history, &live);
        assert_eq!(merged.len(), TRAFFIC_LEN);
        assert!(merged.windows(2).all(|w| w[1].at_ms == w[0].at_ms + 1));
        assert_eq!(merged.last().unwrap().at_ms, TRAFFIC_LEN as i64 + 9);
        assert_eq!(merge_traffic(&[], &live).len(), live.len());
    }
}
