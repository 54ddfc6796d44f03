//! Network-wide transfer bookkeeping, and the one place that changes it:
//! transfer ids, and outgoing files a lost channel interrupted (re-offered
//! when the peer's channel opens again, so the receiver resumes).
//!
//! Each channel actor owns the transfers in flight on its channel; only
//! what must outlive a channel lives here.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use p2pnet_proto::PeerId;
use p2pnet_proto::packet::TransferId;

/// Interrupted outgoing transfers remembered per peer.
const MAX_INTERRUPTED_PER_PEER: usize = 16;
/// Peers with interrupted transfers remembered.
const MAX_PEERS_WITH_INTERRUPTED: usize = 1024;

/// The owner of the network's transfer bookkeeping.
pub(crate) struct Transfers {
    next_id: AtomicU64,
    interrupted: Mutex<HashMap<PeerId, Vec<PathBuf>>>,
}

impl Transfers {
    pub(crate) fn new() -> Self {
        Self {
            // Random start: ids from a restarted sender do not collide with
            // transfers the receiver still remembers.
            next_id: AtomicU64::new(rand::random::<u32>().into()),
            interrupted: Mutex::new(HashMap::new()),
        }
    }

    fn interrupted(&self) -> MutexGuard<'_, HashMap<PeerId, Vec<PathBuf>>> {
        self.interrupted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn next_id(&self) -> TransferId {
        TransferId(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// A channel to `peer` closed while `path` was being sent.
    pub(crate) fn interrupted_send(&self, peer: PeerId, path: PathBuf) {
        let mut interrupted = self.interrupted();
        if !interrupted.contains_key(&peer) && interrupted.len() >= MAX_PEERS_WITH_INTERRUPTED {
            return;
        }
        let paths = interrupted.entry(peer).or_default();
        if !paths.contains(&path) && paths.len() < MAX_INTERRUPTED_PER_PEER {
            paths.push(path);
        }
    }

    /// `path` reached `peer` after all.
    pub(crate) fn completed_send(&self, peer: PeerId, path: &Path) {
        let mut interrupted = self.interrupted();
        if let Some(paths) = interrupted.get_mut(&peer) {
            paths.retain(|p| p != path);
            if paths.is_empty() {
                interrupted.remove(&peer);
            }
        }
    }

    /// Takes the files to re-offer to `peer`.
    pub(crate) fn take_interrupted(&self, peer: &PeerId) -> Vec<PathBuf> {
        self.interrupted().remove(peer).unwrap_or_default()
    }
}
