//! Real peers for the node's decisions: p2pnet nodes with identities kept
//! on disk, which dial the server's node again after every restart.

use std::{net::SocketAddr, path::Path, time::Duration};

use p2pnet::PeerNetwork;

pub(crate) struct Dialers {
    networks: Vec<PeerNetwork>,
}

impl Dialers {
    pub(crate) async fn start(work: &Path, count: usize) -> anyhow::Result<Self> {
        let mut networks = Vec::with_capacity(count);
        for i in 0..count {
            let network = PeerNetwork::builder()
                .identity_file(work.join(format!("dialer-{i}.key")))
                .listen_ip("127.0.0.1".parse()?)
                .port(0)
                .start()
                .await?;
            networks.push(network);
        }
        Ok(Self { networks })
    }

    /// The peer ids the decisions and grants go to, as the terminal prints them.
    pub(crate) fn ids(&self) -> Vec<String> {
        self.networks[..self.networks.len().saturating_sub(1)]
            .iter()
            .map(|n| n.local_peer_id().to_string())
            .collect()
    }

    /// The peer id that is blocked and unblocked (the last one).
    pub(crate) fn block_subject(&self) -> String {
        self.networks
            .last()
            .map(|n| n.local_peer_id().to_string())
            .unwrap_or_default()
    }

    /// Each dials `node` (an error, e.g. a peer still blocked, is not fatal).
    pub(crate) async fn dial_all(&self, node: SocketAddr) {
        for network in &self.networks {
            let _ = tokio::time::timeout(Duration::from_secs(5), network.connect(node)).await;
        }
    }

    /// Whether the block subject's dial to `node` is let in.
    pub(crate) async fn subject_admitted(&self, node: SocketAddr) -> bool {
        let Some(subject) = self.networks.last() else {
            return false;
        };
        let Ok(Ok(server)) =
            tokio::time::timeout(Duration::from_secs(5), subject.connect(node)).await
        else {
            return false;
        };
        // The dialler finishes the handshake before the node has judged
        // its identity; a refused peer sees its channel closed just after.
        tokio::time::sleep(Duration::from_secs(1)).await;
        subject.channel(&server).is_some()
    }

    /// Drops the channels to the killed server at once, so the next dial
    /// does not race the loss being noticed.
    pub(crate) async fn forget_channels(&self) {
        for network in &self.networks {
            for peer in network.channels().into_iter().filter_map(|c| c.peer) {
                let _ = network.disconnect(peer).await;
            }
        }
    }

    pub(crate) async fn shutdown(self) {
        for network in self.networks {
            network.shutdown().await;
        }
    }
}
