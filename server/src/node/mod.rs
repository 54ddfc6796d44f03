//! The embedded peer node: it owns the server's `PeerNetwork`.
//!
//! - `config.rs`: `[node]` as written, validated into `NodeConfig`.
//! - `mod.rs` (here): start from the configuration and the stored decisions,
//!   stop (a last save, then the network's graceful shutdown).
//! - `persist.rs`: the node's peers and access list in the store; a restart
//!   forgets nothing the administrator decided.
//! - `actions.rs`: what the panel and the terminal may do (`NodeAction`),
//!   audited, with peers named by any unambiguous id prefix.
//! - `views.rs`: what the panel and the terminal show (summary, peers,
//!   channels, the "why not connected?" report, routines).
//! - `records.rs`: conversions between the node's peers and stored rows.

pub mod actions;
pub mod config;
mod persist;
pub mod records;
pub mod views;

use std::sync::Arc;

use p2pnet::{PeerNetwork, proto::AccessList};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::store::{AccessKind, Store, StoreError};
pub use config::NodeConfig;
use persist::Saver;

/// Why the node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The network refused its settings or could not bind.
    #[error("peer node: {0}")]
    Network(#[from] p2pnet::Error),
    /// The stored state could not be read.
    #[error("peer node state: {0}")]
    Store(#[from] StoreError),
}

/// The running node and what keeps its state stored.
pub struct NodeService {
    network: PeerNetwork,
    store: Arc<dyn Store>,
    saver: Arc<Saver>,
    save_loop: std::sync::Mutex<Option<(CancellationToken, JoinHandle<()>)>>,
}

impl NodeService {
    /// Starts the node: the access list and the known peers come back from
    /// the store, then the listener and discovery start.
    pub async fn start(config: &NodeConfig, store: Arc<dyn Store>) -> Result<Self, NodeError> {
        let mut policy = config.policy.clone();
        policy.access = restore_access_list(store.as_ref()).await?;
        let mut builder = PeerNetwork::builder()
            .identity_file(&config.identity_file)
            .listen_ip(config.listen.ip())
            .port(config.listen.port())
            .accept_inbound(config.accept_inbound)
            .trust_policy(policy)
            .approval_timeout(config.approval_timeout)
            .download_dir(&config.download_dir)
            .max_file_size(config.max_file_size)
            .limits(config.limits);
        if let Some(discovery) = &config.discovery {
            builder = builder.discovery(discovery.clone());
        }
        let network = builder.start().await?;
        let saver = Arc::new(Saver::default());
        let mut restored = 0usize;
        for record in store.known_peers().await? {
            match records::known_peer(&record) {
                Ok(peer) => match network.restore_peer(peer) {
                    Ok(()) => {
                        saver.saved(record);
                        restored += 1;
                    }
                    Err(e) => {
                        tracing::warn!(peer = %record.peer_id, error = %e, "stored peer not restored")
                    }
                },
                Err(reason) => tracing::warn!(%reason, "stored peer skipped"),
            }
        }
        tracing::info!(
            peer_id = %network.local_peer_id(),
            addr = ?network.local_addr(),
            restored,
            "peer node started"
        );
        let service = Self {
            network,
            store,
            saver,
            save_loop: std::sync::Mutex::new(None),
        };
        service.start_save_loop();
        Ok(service)
    }

    fn start_save_loop(&self) {
        let token = CancellationToken::new();
        let task = tokio::spawn(persist::save_loop(
            self.network.clone(),
            self.store.clone(),
            self.saver.clone(),
            token.clone(),
        ));
        *self
            .save_loop
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((token, task));
    }

    /// The network, for views and actions.
    pub fn network(&self) -> &PeerNetwork {
        &self.network
    }

    /// Stops saving, saves once more, and shuts the network down (every
    /// channel closes with a Disconnect).
    pub async fn stop(&self) {
        let running = self
            .save_loop
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some((token, task)) = running {
            token.cancel();
            let _ = task.await;
        }
        self.network.shutdown().await;
        // After the shutdown: nothing changes any more, and what the last
        // channels taught is in.
        if let Err(e) = persist::save_changes(&self.network, self.store.as_ref(), &self.saver).await
        {
            tracing::warn!(error = %e, "cannot save the node's peers at shutdown");
        }
        tracing::info!("peer node stopped");
    }

    /// Saves `peer`'s record now (after a decision about it).
    pub(crate) async fn save_peer(&self, peer: &p2pnet::PeerId) -> Result<(), StoreError> {
        persist::save_peer(&self.network, self.store.as_ref(), &self.saver, peer).await
    }

    pub(crate) fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }
}

/// The stored access list as the policy's; a row that no longer parses is
/// logged and skipped.
async fn restore_access_list(store: &dyn Store) -> Result<AccessList, StoreError> {
    let mut access = AccessList::default();
    for entry in store.access_list().await? {
        match (actions::AccessTarget::parse(&entry.target), entry.kind) {
            (Ok(actions::AccessTarget::Peer(peer)), AccessKind::Block) => {
                access.block_peer(peer);
            }
            (Ok(actions::AccessTarget::Peer(peer)), AccessKind::Allow) => {
                access.allow_peer(peer);
            }
            (Ok(actions::AccessTarget::Network(net)), AccessKind::Block) => {
                access.block_network(net);
            }
            (Ok(actions::AccessTarget::Network(net)), AccessKind::Allow) => {
                access.allow_network(net);
            }
            (Err(reason), _) => {
                tracing::warn!(target = %entry.target, %reason, "stored access entry skipped")
            }
        }
    }
    Ok(access)
}
