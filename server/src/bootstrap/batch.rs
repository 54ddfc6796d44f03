//! Announces are written in batches: one task takes the announces waiting
//! and stores them in one transaction (`BootstrapStore::announce_batch`),
//! then answers each. Nothing waits on purpose: a lone announce is a
//! batch of one; under load, the announces that arrive while a batch is
//! written form the next, so the cost of a transaction (the state row,
//! the commit) is shared. An announce is answered only once its batch is
//! committed, so what is acknowledged is stored.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::store::{Announced, AnnouncedRecord, Store, StoreError};

/// Announces waiting for a batch at most; beyond, senders wait (HTTP
/// requests are bounded by the server's connections and timeouts).
const QUEUE: usize = 1024;
/// Most announces in one transaction.
pub(super) const MAX_BATCH: usize = 256;

type Reply = oneshot::Sender<Result<Announced, Arc<StoreError>>>;

/// The writer's handle.
pub(super) struct Batcher {
    queue: mpsc::Sender<(AnnouncedRecord, Reply)>,
}

impl Batcher {
    /// Starts the writer task over `store`; it ends when the handle is
    /// dropped and the queue is drained.
    pub(super) fn start(store: Arc<dyn Store>, max_peers: i64) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(write(store, max_peers, receiver));
        Self { queue }
    }

    /// Stores `record` with the next batch; what became of it.
    pub(super) async fn announce(
        &self,
        record: AnnouncedRecord,
    ) -> Result<Announced, Arc<StoreError>> {
        let (reply, answer) = oneshot::channel();
        let gone = || Arc::new(StoreError::Query(sqlx::Error::PoolClosed));
        self.queue.send((record, reply)).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

async fn write(
    store: Arc<dyn Store>,
    max_peers: i64,
    mut receiver: mpsc::Receiver<(AnnouncedRecord, Reply)>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (records, replies): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
        let now_s = i64::try_from(super::unix_now()).unwrap_or(i64::MAX);
        match store.announce_batch(&records, max_peers, now_s).await {
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    // The requester may have gone (timeout): nothing to do.
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, announces = records.len(), "storing announces failed");
                let e = Arc::new(e);
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}
