//! The network's total traffic: bytes every channel has sent and received,
//! closed channels included. Actors add their deltas; anyone may read.

use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes on the wire, summed over every channel since the network started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Bytes sent.
    pub bytes_sent: u64,
    /// Bytes received.
    pub bytes_received: u64,
}

/// The counters, owned by the node and added to by actors.
#[derive(Debug, Default)]
pub(crate) struct TrafficCounters {
    sent: AtomicU64,
    received: AtomicU64,
}

impl TrafficCounters {
    pub(crate) fn add(&self, sent: u64, received: u64) {
        self.sent.fetch_add(sent, Ordering::Relaxed);
        self.received.fetch_add(received, Ordering::Relaxed);
    }

    pub(crate) fn total(&self) -> Traffic {
        Traffic {
            bytes_sent: self.sent.load(Ordering::Relaxed),
            bytes_received: self.received.load(Ordering::Relaxed),
        }
    }
}
