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
//! - `perf.rs`: speed tests run from the panel or the terminal, and the
//!   latest results.
//! - `live.rs`: the node's events as the panel's live feed (`/api/live`),
//!   with recent events for late subscribers and the traffic samples.

pub mod actions;
pub mod config;
pub mod live;
pub mod perf;
mod persist;
pub mod records;
pub mod views;

use std::sync::Arc;

use p2pnet::{PeerNetwork, proto::AccessList};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::store::{AccessKind, Store, StoreError};
pub use config::NodeConfig;
use live::LiveFeed;
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
    live: Arc<LiveFeed>,
    perf: perf::PerfHistory,
    /// Stops the background tasks (the save loop, the live feed).
    stop_tasks: CancellationToken,
    tasks: TaskTracker,
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
        // Subscribed before anything else happens, so the feed misses
        // nothing the restore below reports.
        let events = network.subscribe();
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
            live: Arc::new(LiveFeed::default()),
            perf: perf::PerfHistory::default(),
            stop_tasks: CancellationToken::new(),
            tasks: TaskTracker::new(),
        };
        service.tasks.spawn(persist::save_loop(
            service.network.clone(),
            service.store.clone(),
            service.saver.clone(),
            service.stop_tasks.clone(),
        ));
        service.tasks.spawn(live::run(
            service.live.clone(),
            service.network.clone(),
            events,
            service.stop_tasks.clone(),
        ));
        service.tasks.close();
        Ok(service)
    }

    /// The latest speed tests.
    pub fn perf_history(&self) -> &perf::PerfHistory {
        &self.perf
    }

    /// The network, for views and actions.
    pub fn network(&self) -> &PeerNetwork {
        &self.network
    }

    /// The live feed (`/api/live`).
    pub fn live(&self) -> &Arc<LiveFeed> {
        &self.live
    }

    /// Stops saving and the live feed, saves once more, and shuts the
    /// network down (every channel closes with a Disconnect).
    pub async fn stop(&self) {
        self.stop_tasks.cancel();
        self.tasks.wait().await;
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
