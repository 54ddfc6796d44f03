//! Keeping the node's peers in the store.
//!
//! Decisions (approve, reject, grants, remove, blocks) are saved by the
//! action that makes them, before it answers. What the node learns by
//! itself (peers heard, addresses, last-seen times) is saved in batches:
//! every [`SAVE_INTERVAL`] the table is compared with what was last written
//! and only the differences go to the store, in one transaction.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use p2pnet::{PeerId, PeerNetwork};
use tokio_util::sync::CancellationToken;

use super::records::peer_record;
use crate::store::{KnownPeerRecord, Store, StoreError};

/// How often learned changes are written.
pub(super) const SAVE_INTERVAL: Duration = Duration::from_secs(10);
/// A last-seen time that moved less than this is not worth a write.
const LAST_SEEN_SLACK_MS: i64 = 60_000;

/// What was last written, per peer id.
#[derive(Default)]
pub(super) struct Saver {
    written: Mutex<HashMap<String, KnownPeerRecord>>,
}

impl Saver {
    fn written(&self) -> MutexGuard<'_, HashMap<String, KnownPeerRecord>> {
        self.written.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `record` is in the store as it is.
    pub(super) fn saved(&self, record: KnownPeerRecord) {
        self.written().insert(record.peer_id.clone(), record);
    }

    /// Whether `record` differs from what was written in a way worth a write.
    fn changed(&self, record: &KnownPeerRecord) -> bool {
        match self.written().get(&record.peer_id) {
            None => true,
            Some(old) => {
                let moved = (record.last_seen_ms - old.last_seen_ms).abs() >= LAST_SEEN_SLACK_MS;
                moved
                    || KnownPeerRecord {
                        last_seen_ms: old.last_seen_ms,
                        ..record.clone()
                    } != *old
            }
        }
    }
}

/// Writes what changed since the last write; deletes peers the node forgot.
pub(super) async fn save_changes(
    network: &PeerNetwork,
    store: &dyn Store,
    saver: &Saver,
) -> Result<(), StoreError> {
    let current: Vec<KnownPeerRecord> = network.known_peers().iter().map(peer_record).collect();
    let changed: Vec<KnownPeerRecord> = current
        .iter()
        .filter(|r| saver.changed(r))
        .cloned()
        .collect();
    let gone: Vec<String> = {
        let present: std::collections::HashSet<&str> =
            current.iter().map(|r| r.peer_id.as_str()).collect();
        saver
            .written()
            .keys()
            .filter(|id| !present.contains(id.as_str()))
            .cloned()
            .collect()
    };
    if !changed.is_empty() {
        store.save_known_peers(&changed).await?;
        for record in changed {
            saver.saved(record);
        }
    }
    if !gone.is_empty() {
        store.delete_known_peers(&gone).await?;
        let mut written = saver.written();
        for id in gone {
            written.remove(&id);
        }
    }
    Ok(())
}

/// Writes (or deletes) one peer now.
pub(super) async fn save_peer(
    network: &PeerNetwork,
    store: &dyn Store,
    saver: &Saver,
    peer: &PeerId,
) -> Result<(), StoreError> {
    match network.known_peer(peer) {
        Some(known) => {
            let record = peer_record(&known);
            store
                .save_known_peers(std::slice::from_ref(&record))
                .await?;
            saver.saved(record);
        }
        None => {
            let id = peer.to_string();
            store.delete_known_peers(std::slice::from_ref(&id)).await?;
            saver.written().remove(&id);
        }
    }
    Ok(())
}

/// Saves changes every [`SAVE_INTERVAL`] until `stop`.
pub(super) async fn save_loop(
    network: PeerNetwork,
    store: std::sync::Arc<dyn Store>,
    saver: std::sync::Arc<Saver>,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(SAVE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {
                if let Err(e) = save_changes(&network, store.as_ref(), &saver).await {
                    tracing::warn!(error = %e, "cannot save the node's peers; retrying");
                }
            }
        }
    }
}
