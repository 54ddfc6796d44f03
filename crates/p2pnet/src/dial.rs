//! Opening channels: dialing (`connect`, `connect_to`, discovery's and the
//! reconnect loops' dials) and spawning a channel actor for a socket,
//! dialled or accepted.

use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;

use p2pnet_proto::packet::DisconnectReason;
use p2pnet_proto::{Channel, CloseReason, Decision, PeerId};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use crate::actor::{Actor, ActorContext};
use crate::admission::{self, Intent};
use crate::command::OpenedTx;
use crate::error::{Error, Result};
use crate::network::PeerNetwork;
use crate::node::Node;
use crate::scope::canonical;

impl PeerNetwork {
    /// Dials `addr`, completes the handshake and returns the peer's
    /// authenticated id once the channel is open on our side (the remote
    /// may still hold us in its approval queue; what we send meanwhile is
    /// held there, bounded, and delivered on approval). Asking for the
    /// channel is this side's approval of the peer.
    pub async fn connect(&self, addr: SocketAddr) -> Result<PeerId> {
        self.dial(addr, None, Intent::Application).await
    }

    /// Like [`connect`](Self::connect), but the handshake fails unless the
    /// remote proves it is `peer`.
    pub async fn connect_to(&self, peer: PeerId, addr: SocketAddr) -> Result<PeerId> {
        self.dial(addr, Some(peer), Intent::Application).await
    }

    /// Dials `addr` for `intent`. A channel dialled for discovery is gated
    /// like an inbound one: it may wait for approval, and this returns once
    /// it is open (or fails when it is refused or times out).
    pub(crate) async fn dial(
        &self,
        addr: SocketAddr,
        expected: Option<PeerId>,
        intent: Intent,
    ) -> Result<PeerId> {
        let outcome = self.dial_once(addr, expected, intent).await;
        let peer = outcome.as_ref().ok().copied().or(expected);
        if let Some(peer) = peer
            && !matches!(outcome, Err(Error::Shutdown))
        {
            let error = outcome.as_ref().err().map(ToString::to_string);
            self.node().peers.record_dial(&peer, canonical(addr), error);
        }
        outcome
    }

    async fn dial_once(
        &self,
        addr: SocketAddr,
        expected: Option<PeerId>,
        intent: Intent,
    ) -> Result<PeerId> {
        let node = self.node();
        if node.cancel.is_cancelled() {
            return Err(Error::Shutdown);
        }
        let addr = canonical(addr);
        let direction = admission::direction_of(intent);
        if let Decision::Deny(reason) = node.access.decide(expected.as_ref(), addr.ip(), direction)
        {
            return Err(Error::Denied(reason));
        }
        if let Some(peer) = expected
            && node.channels.is_open(&peer)
        {
            return Ok(peer);
        }
        let failed = |reason: String| Error::ConnectFailed { addr, reason };
        let started = tokio::time::Instant::now();
        let connect = tokio::time::timeout(node.config.connect_timeout, TcpStream::connect(addr));
        let mut connect = std::pin::pin!(connect);
        let settle = |connected: std::result::Result<std::io::Result<TcpStream>, _>| match connected
        {
            Err(_) => Err(failed("timed out".into())),
            Ok(Err(err)) => Err(failed(err.to_string())),
            Ok(Ok(stream)) => Ok(stream),
        };
        // The first poll sends the SYN. The handshake's first message (its
        // ephemeral key, an X25519 operation) is then made while TCP's own
        // handshake and the remote's accept run, not after them; a connect
        // that failed at once makes no key.
        let early = match std::future::poll_fn(|cx| Poll::Ready(connect.as_mut().poll(cx))).await {
            Poll::Ready(connected) => Some(settle(connected)?),
            Poll::Pending => None,
        };
        let mut channel = Channel::new_outbound(
            node.config.channel.clone(),
            &node.keypair,
            expected,
            node.clock.now(),
            &mut rand::rng(),
        )?;
        let stream = match early {
            Some(stream) => stream,
            None => settle(tokio::select! {
                () = node.cancel.cancelled() => return Err(Error::Shutdown),
                connected = connect => connected,
            })?,
        };
        // The handshake's time counts from the connection, not from the
        // channel's making: a slow connect must not eat into it.
        channel.restart_handshake_timeout(node.clock.now());
        let mut changes = node.channels.watch();
        let (opened_tx, opened_rx) = oneshot::channel();
        let origin = Origin::Dialled {
            opened: opened_tx,
            started,
        };
        open_channel(node, stream, addr, intent, channel, origin)?;
        let reason = match opened_rx.await {
            Ok(Ok(peer)) => return Ok(peer),
            Ok(Err(reason)) => reason,
            Err(_) => return Err(failed("the channel ended".into())),
        };
        // Lost a duplicate race: the peer's other channel is the one both
        // sides keep; wait (on the channel table, not the lossy event
        // stream) for it to open.
        if matches!(&reason, CloseReason::Disconnect(d) if d.reason == DisconnectReason::Duplicate)
        {
            let wait = async {
                loop {
                    if let Some(peer) = node.channels.open_peer_at(addr, expected) {
                        return Some(peer);
                    }
                    changes.changed().await.ok()?;
                }
            };
            let deadline = node.config.channel.handshake_timeout;
            if let Ok(Some(peer)) = tokio::time::timeout(deadline, wait).await {
                return Ok(peer);
            }
        }
        Err(failed(crate::actor::describe(&reason)))
    }
}

/// How a channel's socket came to be.
pub(crate) enum Origin {
    /// Accepted by the listener at `at`.
    Accepted { at: tokio::time::Instant },
    /// Dialled: the TCP connect started at `started`; `opened` hears how
    /// the channel ends up.
    Dialled {
        opened: OpenedTx,
        started: tokio::time::Instant,
    },
}

/// A channel for a connection the listener accepted.
pub(crate) fn inbound_channel(node: &Node) -> Result<Channel> {
    Ok(Channel::new_inbound(
        node.config.channel.clone(),
        &node.keypair,
        node.clock.now(),
        &mut rand::rng(),
    )?)
}

/// Registers `channel` for `stream` (if the limits leave room) and spawns
/// its actor.
pub(crate) fn open_channel(
    node: &Arc<Node>,
    stream: TcpStream,
    addr: SocketAddr,
    intent: Intent,
    mut channel: Channel,
    origin: Origin,
) -> Result<()> {
    // Small messages must not wait for Nagle.
    let _ = stream.set_nodelay(true);
    let (opened, started) = match origin {
        Origin::Dialled { opened, started } => (Some(opened), started),
        Origin::Accepted { at } => (None, at),
    };
    let (tx, rx) = mpsc::channel(node.config.limits.command_queue);
    let id = node.channels.register(addr, channel.direction(), tx)?;
    // Registered (the limits had room): a dial's first message leaves now,
    // from this task, rather than when the actor's task first runs (a
    // worker's wake-up later); whatever the socket does not take, the
    // actor writes first.
    let written_ahead = channel.poll_transmit().map(|message| {
        let written = stream.try_write(&message).unwrap_or(0);
        (message, written)
    });
    let actor = Actor::new(actor_context(node), id, addr, intent, channel, rx, opened)
        .connecting_since(started);
    node.tracker.spawn(actor.run(stream, written_ahead));
    Ok(())
}

/// The parts of the network a channel actor uses.
fn actor_context(node: &Arc<Node>) -> ActorContext {
    ActorContext {
        local_id: node.local_id,
        clock: node.clock,
        config: node.config.clone(),
        channels: node.channels.clone(),
        peers: node.peers.clone(),
        approvals: node.approvals.clone(),
        access: node.access.clone(),
        transfers: node.transfers.clone(),
        partials: node.partials.clone(),
        persistent: node.persistent.clone(),
        traffic: node.traffic.clone(),
        events: node.events.clone(),
        hooks: node.hooks.clone(),
        discovery_reports: node.discovery_reports.get().cloned(),
        network: PeerNetwork::internal(node.clone()),
        tracker: node.tracker.clone(),
        cancel: node.cancel.child_token(),
    }
}
