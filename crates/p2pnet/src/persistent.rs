//! Persistent peers: those the network keeps a channel to, and the one
//! place that changes that set. Each has a reconnect loop (`reconnect.rs`)
//! with its own cancellation token and a wake-up that the peer's channel
//! actor triggers when it ends: an internal signal, never the lossy public
//! event stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use p2pnet_proto::PeerId;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// What a reconnect loop waits on.
#[derive(Clone)]
pub(crate) struct KeepAlive {
    /// Cancelled when the peer is no longer kept.
    pub(crate) stop: CancellationToken,
    /// Notified when the peer's channel ends.
    pub(crate) channel_ended: Arc<Notify>,
}

/// The owner of the persistent-peer set.
pub(crate) struct Persistent {
    peers: Mutex<HashMap<PeerId, KeepAlive>>,
    parent: CancellationToken,
}

impl Persistent {
    pub(crate) fn new(parent: CancellationToken) -> Self {
        Self {
            peers: Mutex::new(HashMap::new()),
            parent,
        }
    }

    fn peers(&self) -> MutexGuard<'_, HashMap<PeerId, KeepAlive>> {
        self.peers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts keeping `peer`; `None` if it is kept already.
    pub(crate) fn keep(&self, peer: PeerId) -> Option<KeepAlive> {
        let mut peers = self.peers();
        if peers.contains_key(&peer) {
            return None;
        }
        let keep = KeepAlive {
            stop: self.parent.child_token(),
            channel_ended: Arc::new(Notify::new()),
        };
        peers.insert(peer, keep.clone());
        Some(keep)
    }

    /// Stops keeping `peer`; returns whether it was kept.
    pub(crate) fn release(&self, peer: &PeerId) -> bool {
        match self.peers().remove(peer) {
            Some(keep) => {
                keep.stop.cancel();
                true
            }
            None => false,
        }
    }

    /// `peer`'s channel ended: wake its reconnect loop.
    pub(crate) fn channel_ended(&self, peer: &PeerId) {
        if let Some(keep) = self.peers().get(peer) {
            // A stored permit: a loop that is not waiting yet still sees it.
            keep.channel_ended.notify_one();
        }
    }
}
