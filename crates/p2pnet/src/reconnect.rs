//! Persistent peers: `add_peer` / `keep_connected`, and one reconnect loop
//! per kept peer that waits, without polling, for the peer's channel to end
//! (a wake-up from its actor), then redials its known addresses with
//! exponential backoff and jitter.

use std::net::SocketAddr;

use p2pnet_proto::{Backoff, PeerId};

use crate::admission::Intent;
use crate::error::Result;
use crate::network::PeerNetwork;
use crate::persistent::KeepAlive;

impl PeerNetwork {
    /// Connects to `addr` and keeps a channel to that peer open from now
    /// on: when it drops, the network reconnects with exponential backoff
    /// and jitter, trying the peer's known addresses, until
    /// [`remove_peer`](Self::remove_peer).
    pub async fn add_peer(&self, addr: SocketAddr) -> Result<PeerId> {
        let peer = self.connect(addr).await?;
        self.keep_connected(peer);
        Ok(peer)
    }

    /// Keeps a channel to a known peer open (see [`add_peer`](Self::add_peer)).
    pub fn keep_connected(&self, peer: PeerId) {
        let node = self.node();
        node.peers.set_persistent(&peer, true);
        let Some(keep) = node.persistent.keep(peer) else {
            return;
        };
        let network = Self::internal(node.clone());
        node.tracker
            .spawn(async move { reconnect_loop(network, peer, keep).await });
    }
}

async fn reconnect_loop(network: PeerNetwork, peer: PeerId, keep: KeepAlive) {
    let node = network.node().clone();
    let config = &node.config;
    let mut backoff = Backoff::new(config.reconnect_min, config.reconnect_max);
    loop {
        // Wait while a channel to the peer exists; its actor wakes us when
        // it ends (a stored permit, so an end before we wait is not lost).
        while node.channels.has(&peer) {
            tokio::select! {
                () = keep.stop.cancelled() => return,
                () = keep.channel_ended.notified() => {}
            }
        }
        let delay = backoff.next_delay(rand::random());
        tokio::select! {
            () = keep.stop.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        for addr in node.peers.addresses(&peer).into_iter().rev() {
            let attempt = tokio::select! {
                () = keep.stop.cancelled() => return,
                attempt = network.dial(addr, Some(peer), Intent::Application) => attempt,
            };
            match attempt {
                Ok(_) => {
                    tracing::info!(%peer, %addr, attempts = backoff.attempts(), "reconnected");
                    backoff.reset();
                    break;
                }
                Err(err) => tracing::debug!(%peer, %addr, %err, "reconnect attempt failed"),
            }
        }
    }
}
