//! Peer networks running inside the namespaces of a [`netns_lab::Lab`].

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use netns_lab::enter;
use p2pnet::{PeerId, PeerNetwork, PeerNetworkBuilder};

/// A peer network running on its own thread and runtime inside a
/// namespace. Every socket it opens (listener, dials, discovery) belongs to
/// that namespace, blocking-pool threads included. The test thread may
/// read its tables and send through it; dropping it shuts it down.
pub struct NsNode {
    pub network: PeerNetwork,
    pub ns: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl NsNode {
    pub fn start(
        ns: &str,
        builder: impl FnOnce() -> PeerNetworkBuilder + Send + 'static,
    ) -> NsNode {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let name = ns.to_owned();
        let thread = std::thread::spawn(move || {
            enter(&name);
            let name = Arc::new(name);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .on_thread_start(move || enter(&name))
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let network = builder().start().await.expect("node starts");
                ready_tx.send(network.clone()).expect("test waits");
                let _ = stopped.await;
                network.shutdown().await;
            });
        });
        let network = ready_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("node started");
        NsNode {
            network,
            ns: ns.to_owned(),
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn id(&self) -> PeerId {
        self.network.local_peer_id()
    }

    /// Peers this node has an open channel to.
    pub fn open_peers(&self) -> Vec<PeerId> {
        self.network
            .channels()
            .into_iter()
            .filter(|c| matches!(c.state, p2pnet::proto::ChannelState::Open { .. }))
            .filter_map(|c| c.peer)
            .collect()
    }
}

impl Drop for NsNode {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Whether every node has an open channel to every other.
pub fn full_mesh(nodes: &[NsNode]) -> bool {
    nodes.iter().all(|node| {
        let open = node.open_peers();
        nodes
            .iter()
            .filter(|other| other.id() != node.id())
            .all(|other| open.contains(&other.id()))
    })
}
