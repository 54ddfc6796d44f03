//! The approval queue: inbound (or discovered) peers waiting for the
//! application's decision, oldest first, and the one place that changes it.
//!
//! Entries are keyed by channel, not only by peer: a peer's old channel
//! that closes must not settle the entry of its newer one.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use p2pnet_proto::PeerId;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::channels::ChannelId;

/// A peer waiting for approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingPeer {
    /// Its authenticated id.
    pub peer: PeerId,
    /// Its address.
    pub addr: SocketAddr,
    /// When it started waiting.
    pub since: SystemTime,
    /// The channel that waits.
    pub channel: ChannelId,
}

/// The owner of the approval queue.
pub(crate) struct Approvals {
    queue: Mutex<VecDeque<PendingPeer>>,
    capacity: usize,
    changed: Notify,
}

impl Approvals {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            queue: Mutex::new(VecDeque::new()),
            capacity,
            changed: Notify::new(),
        }
    }

    fn queue(&self) -> MutexGuard<'_, VecDeque<PendingPeer>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a pending peer, replacing an older entry of the same peer;
    /// false if the queue is full.
    pub(crate) fn enqueue(&self, pending: PendingPeer) -> bool {
        let mut queue = self.queue();
        queue.retain(|p| p.peer != pending.peer);
        if queue.len() >= self.capacity {
            return false;
        }
        queue.push_back(pending);
        drop(queue);
        self.changed.notify_waiters();
        true
    }

    /// The channel was approved, rejected or closed.
    pub(crate) fn settle(&self, channel: ChannelId) {
        self.queue().retain(|p| p.channel != channel);
    }

    /// The peer was decided on, removed or blocked.
    pub(crate) fn forget_peer(&self, peer: &PeerId) {
        self.queue().retain(|p| p.peer != *peer);
    }

    pub(crate) fn snapshot(&self) -> Vec<PendingPeer> {
        self.queue().iter().cloned().collect()
    }

    /// Takes the oldest entry, waiting for one; `None` once `cancel` fires.
    pub(crate) async fn next(&self, cancel: &CancellationToken) -> Option<PendingPeer> {
        loop {
            let changed = self.changed.notified();
            if let Some(pending) = self.queue().pop_front() {
                return Some(pending);
            }
            tokio::select! {
                () = changed => {}
                () = cancel.cancelled() => return None,
            }
        }
    }
}
