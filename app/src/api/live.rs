//! The live stream (`GET /api/live`, server-sent events): what the server
//! pushes to open pages.
//!
//! Each message is one [`LiveEvent`] as JSON. A page renders its snapshot
//! first, then applies events; on `lagged` (it fell behind and events were
//! dropped) or a dropped connection it fetches the snapshot again.

use serde::{Deserialize, Serialize};

/// One event of the live stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LiveEvent {
    /// A sequence number, increasing by one per event on the server.
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
