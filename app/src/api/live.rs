//! The live stream (`GET /api/live`, server-sent events): what the server
//! pushes to open pages.
//!
//! Each message is one [`LiveEvent`] as JSON. A page renders its snapshot
//! first, then applies events; on `lagged` (it fell behind and events were
//! dropped) or a dropped connection it fetches the snapshot again.
//!
//! A client that reconnects passes the last `seq` it saw as `?after=N` (or
//! the browser's `Last-Event-ID`): the server replays what it still holds
//! after it, or starts with `lagged` when it no longer holds everything.

use serde::{Deserialize, Serialize};

/// The event kind a client receives when it missed events: it should fetch
/// its snapshot again.
pub const LAGGED: &str = "lagged";
/// The event kind carrying the node's byte counters, once a second.
pub const TRAFFIC: &str = "traffic";
/// The event kind of a scan job's figures, once a second while it runs: the
/// Widescan page fetches its view again; it is no feed entry.
pub const SCAN_PROGRESS: &str = "widescan.progress";

/// One event of the live stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LiveEvent {
    /// A sequence number, increasing by one per event on the server. A
    /// `lagged` event is addressed to one client and is not part of the
    /// sequence: its `seq` is 0.
    pub seq: u64,
    /// When, Unix ms.
    pub at_ms: i64,
    /// What happened, dotted: `channel.opened`, `approval.requested`,
    /// `message.received`, `peer.added`, `grant.changed`, `traffic`,
    /// `lagged`, ...
    pub kind: String,
    /// The peer concerned, if any.
    pub peer: Option<String>,
    /// A line for the event feed.
    pub text: String,
    /// For `traffic`: total bytes sent and received so far.
    pub traffic: Option<(u64, u64)>,
}

/// The node's byte counters at one instant: what the throughput chart is
/// drawn from (the rate is the difference between two samples).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrafficSample {
    /// When, Unix ms (server clock).
    pub at_ms: i64,
    /// Bytes sent on every channel since the node started.
    pub bytes_sent: u64,
    /// Bytes received on every channel since the node started.
    pub bytes_received: u64,
}

impl LiveEvent {
    /// The sample a `traffic` event carries.
    pub fn traffic_sample(&self) -> Option<TrafficSample> {
        self.traffic
            .map(|(bytes_sent, bytes_received)| TrafficSample {
                at_ms: self.at_ms,
                bytes_sent,
                bytes_received,
            })
    }
}
