//! `PeerNetwork`: the handle applications hold, and its API.
//!
//! Each method asks the owner of the table it concerns (see `node.rs`)
//! or sends a command to a channel actor; none holds a lock across an
//! `.await`. Dialing is in `dial.rs`, the listener in `accept.rs`, and
//! persistent peers' reconnects in `reconnect.rs`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use ipnet::IpNet;
use p2pnet_proto::packet::{Disconnect, DisconnectReason, Packet, PureMessage, TransferId};
use p2pnet_proto::{Decision, GrantId, IncomingPeerTrustPolicy, PeerId, Scopes, TrustLevel};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::approvals::PendingPeer;
use crate::channels::ChannelInfo;
use crate::command::Command;
use crate::error::{Error, Result};
use crate::event_bus::EventStream;
use crate::node::Node;
use crate::peers::{GrantInfo, GrantRefused, GrantRequest, KnownPeer, Origin, PeerSource};
use crate::perf::{PerfReport, PerfRequest};
use crate::routines::Routines;
use crate::transfer_io::PreparedFile;

fn grant_error(peer: PeerId, refused: GrantRefused) -> Error {
    match refused {
        GrantRefused::UnknownPeer => Error::UnknownPeer(peer),
        GrantRefused::TooMany => {
            Error::LimitReached("grants per peer (15 live at most); revoke one first")
        }
    }
}

/// Cancels the network when the last application handle is dropped.
struct OwnerGuard {
    cancel: CancellationToken,
}

impl Drop for OwnerGuard {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// A peer-to-peer network node: a listener, its channels, its tables and
/// its routines. Cheap to clone; all clones drive the same network.
///
/// Dropping the last clone held by the application starts a graceful
/// shutdown in the background; call [`shutdown`](Self::shutdown) to wait
/// for it.
#[derive(Clone)]
pub struct PeerNetwork {
    node: Arc<Node>,
    _owner: Option<Arc<OwnerGuard>>,
}

impl std::fmt::Debug for PeerNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerNetwork")
            .field("peer_id", &self.node.local_id)
            .field("local_addr", &self.node.local_addr)
            .finish_non_exhaustive()
    }
}

impl PeerNetwork {
    /// A builder with every default; see [`PeerNetworkBuilder`](crate::PeerNetworkBuilder).
    pub fn builder() -> crate::PeerNetworkBuilder {
        crate::PeerNetworkBuilder::default()
    }

    /// A handle for the network's own tasks: it does not keep the network
    /// alive.
    pub(crate) fn internal(node: Arc<Node>) -> Self {
        Self { node, _owner: None }
    }

    pub(crate) fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// The application's first handle: dropping the last clone of it
    /// cancels the network.
    pub(crate) fn owning(node: Arc<Node>, cancel: CancellationToken) -> Self {
        Self {
            node,
            _owner: Some(Arc::new(OwnerGuard { cancel })),
        }
    }

    /// This node's peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.node.local_id
    }

    /// The address the listener is bound to (`None` when inbound
    /// connections are off).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.node.local_addr
    }

    /// Subscribes to the network's events from now on. Each stream has its
    /// own bounded queue (see [`EventStream`]).
    pub fn subscribe(&self) -> EventStream {
        self.node.events.subscribe()
    }

    /// Forgets a peer: stops reconnecting to it, closes its channel and
    /// drops it from KnownPeers with everything decided about it (its
    /// approval too). This is not a block: the peer may connect again
    /// later and will need approval again. Returns whether the peer was
    /// known or connected.
    pub async fn remove_peer(&self, peer: PeerId) -> bool {
        let node = &self.node;
        node.persistent.release(&peer);
        node.approvals.forget_peer(&peer);
        let removed = node.peers.forget(&peer);
        node.transfers.take_interrupted(&peer);
        let commands = node.channels.commands(&peer);
        let connected = commands.is_some();
        if let Some(commands) = commands {
            let _ = commands
                .send(Command::Close(Disconnect::new(DisconnectReason::Normal)))
                .await;
        }
        removed || connected
    }

    /// The approval queue (trust placement `Queue` or `QueueAndEvent`),
    /// oldest first.
    pub fn pending_approvals(&self) -> Vec<PendingPeer> {
        self.node.approvals.snapshot()
    }

    /// Waits for the next peer in the approval queue and takes it off the
    /// queue (it stays pending until [`approve`](Self::approve) or
    /// [`reject`](Self::reject)). `None` once the network shuts down.
    pub async fn next_pending(&self) -> Option<PendingPeer> {
        self.node.approvals.next(&self.node.cancel).await
    }

    /// Approves a peer awaiting approval. Its base grant lets it send what
    /// `trust` permits (the trust policy's default when `None`); its
    /// explicit grants come on top. The approval is remembered: the peer's
    /// later channels, inbound or dialled by discovery, open without asking
    /// until [`reject`](Self::reject) or [`remove_peer`](Self::remove_peer).
    pub async fn approve(&self, peer: PeerId, trust: Option<TrustLevel>) -> Result<()> {
        let node = &self.node;
        let base = trust.map_or_else(|| node.access.initial_scopes(), Scopes::from);
        let commands = node
            .channels
            .pending_commands(&peer)
            .ok_or(Error::NotPending(peer))?;
        if !node.peers.approve(&peer, base, "approval") {
            return Err(Error::UnknownPeer(peer));
        }
        node.approvals.forget_peer(&peer);
        commands
            .send(Command::Approve)
            .await
            .map_err(|_| Error::NotPending(peer))
    }

    /// Rejects a peer awaiting approval; it is told so and disconnected, and
    /// discovery no longer dials it. Its later inbound channels ask again.
    pub async fn reject(&self, peer: PeerId) -> Result<()> {
        let node = &self.node;
        let commands = node
            .channels
            .pending_commands(&peer)
            .ok_or(Error::NotPending(peer))?;
        node.peers.reject(&peer);
        node.approvals.forget_peer(&peer);
        commands
            .send(Command::Reject(Disconnect::new(DisconnectReason::Rejected)))
            .await
            .map_err(|_| Error::NotPending(peer))
    }

    /// Grants a peer the right to send `request.scopes` (and to be sent
    /// them), with an optional file-size cap and lifetime, now and on later
    /// connections. The peer's channel is gated by the union of its live
    /// grants; the change applies at once and is reported as
    /// [`NetworkEvent::GrantChanged`](crate::NetworkEvent::GrantChanged).
    /// A grant that expires ends on the core's clock, at its instant.
    pub async fn grant(&self, peer: PeerId, request: GrantRequest) -> Result<GrantInfo> {
        let info = self
            .node
            .peers
            .grant(&peer, request)
            .map_err(|refused| grant_error(peer, refused))?;
        self.grants_changed(peer).await;
        Ok(info)
    }

    /// Revokes a grant. Transfers it covered are cancelled cleanly on both
    /// sides. Returns whether the peer had it.
    pub async fn revoke(&self, peer: PeerId, grant: GrantId) -> Result<bool> {
        let revoked = self
            .node
            .peers
            .revoke(&peer, grant)
            .map_err(|refused| grant_error(peer, refused))?;
        if revoked {
            self.grants_changed(peer).await;
        }
        Ok(revoked)
    }

    /// A peer's live grants, its base grant ([`BASE_GRANT`](crate::BASE_GRANT)) first when it
    /// was approved; `None` if the peer is not known.
    pub fn grants(&self, peer: &PeerId) -> Option<Vec<GrantInfo>> {
        self.node.peers.grants(peer)
    }

    /// Grants a peer everything (messages, data, tasks, files, peer lists)
    /// without expiry, revocable like any other grant. Idempotent: a peer
    /// that already holds such a grant keeps it, and it is returned.
    pub async fn elevate(&self, peer: PeerId) -> Result<GrantInfo> {
        let (info, added) = self
            .node
            .peers
            .grant_unless_covered(&peer, GrantRequest::new(Scopes::ALL).granted_by("elevate"))
            .map_err(|refused| grant_error(peer, refused))?;
        if added {
            self.grants_changed(peer).await;
        }
        Ok(info)
    }

    /// Back to the trust policy's default: every grant of the peer,
    /// its approval's base grant included, is revoked (the approval itself
    /// stays).
    pub async fn demote(&self, peer: PeerId) -> Result<()> {
        self.node
            .peers
            .demote(&peer)
            .map_err(|refused| grant_error(peer, refused))?;
        self.grants_changed(peer).await;
        Ok(())
    }

    /// Tells the peer's channel, if open, to re-read its grants.
    async fn grants_changed(&self, peer: PeerId) {
        if let Some(commands) = self.node.channels.commands(&peer) {
            let _ = commands.send(Command::GrantsChanged).await;
        }
    }

    /// Blocks a peer id: its channel closes now and it can neither connect
    /// nor be connected to until [`unblock_peer`](Self::unblock_peer).
    pub fn block_peer(&self, peer: PeerId) {
        self.node.access.update(|policy| {
            policy.access.block_peer(peer);
        });
        self.node.persistent.release(&peer);
        self.node.peers.set_persistent(&peer, false);
        self.enforce_access();
    }

    /// Lifts a block (or allow-list entry) on a peer id.
    pub fn unblock_peer(&self, peer: PeerId) -> bool {
        self.node
            .access
            .update(|policy| policy.access.forget_peer(&peer))
    }

    /// Blocks an address or network (a single address is a /32 or /128),
    /// both ways; matching channels close now.
    pub fn block_network(&self, net: IpNet) {
        self.node.access.update(|policy| {
            policy.access.block_network(net);
        });
        self.enforce_access();
    }

    /// Lifts a block (or allow-list entry) on a network.
    pub fn unblock_network(&self, net: IpNet) -> bool {
        self.node
            .access
            .update(|policy| policy.access.forget_network(&net))
    }

    /// Adds a peer id to the allow-list. A non-empty allow-list denies
    /// everyone not on it; channels it now denies close.
    pub fn allow_peer(&self, peer: PeerId) {
        self.node.access.update(|policy| {
            policy.access.allow_peer(peer);
        });
        self.enforce_access();
    }

    /// Adds a network to the allow-list (see [`allow_peer`](Self::allow_peer)).
    pub fn allow_network(&self, net: IpNet) {
        self.node.access.update(|policy| {
            policy.access.allow_network(net);
        });
        self.enforce_access();
    }

    /// Changes the trust policy in force: placement, auto-accept, what
    /// approved peers get by default, the access list. It applies to the
    /// next admissions and approvals; channels a changed access list now
    /// denies close.
    pub fn update_trust_policy(&self, change: impl FnOnce(&mut IncomingPeerTrustPolicy)) {
        self.node.access.update(change);
        self.enforce_access();
    }

    /// The trust policy in force (placement, defaults, access list).
    pub fn trust_policy(&self) -> IncomingPeerTrustPolicy {
        self.node.access.snapshot()
    }

    /// Checks every channel against the access list and closes the ones it
    /// now denies.
    fn enforce_access(&self) {
        let node = &self.node;
        for (info, commands) in node.channels.all_commands() {
            if let Decision::Deny(_) =
                node.access
                    .decide(info.peer.as_ref(), info.addr.ip(), info.direction)
            {
                if let Some(peer) = info.peer {
                    node.approvals.forget_peer(&peer);
                }
                let _ =
                    commands.try_send(Command::Close(Disconnect::new(DisconnectReason::Blocked)));
            }
        }
    }

    /// Queues a packet on the peer's channel, waiting while its buffers are
    /// full. Fails if no channel is open to the peer or its trust level
    /// does not permit the packet's kind.
    pub async fn send(&self, peer: PeerId, packet: impl Into<Packet>) -> Result<()> {
        let commands = self.commands(peer)?;
        let (reply, result) = oneshot::channel();
        commands
            .send(Command::Send {
                packet: Box::new(packet.into()),
                reply: Some(reply),
            })
            .await
            .map_err(|_| Error::NotConnected(peer))?;
        result.await.map_err(|_| Error::ChannelClosed)?
    }

    /// Runs a speed test over the open channel to `peer`: `upload` bytes
    /// up, `download` bytes back, timed on this side (see
    /// [`p2pnet_proto::perf`]). Both sides' grants must include the `perf`
    /// scope, and the peer caps what it answers
    /// ([`Limits::max_perf_bytes`](crate::Limits::max_perf_bytes)). One
    /// test per channel runs at a time.
    pub async fn perf(&self, peer: PeerId, request: PerfRequest) -> Result<PerfReport> {
        let commands = self.commands(peer)?;
        let (reply, result) = oneshot::channel();
        commands
            .send(Command::Perf { request, reply })
            .await
            .map_err(|_| Error::NotConnected(peer))?;
        // On a timeout the dropped receiver tells the actor to cancel.
        match tokio::time::timeout(request.timeout, result).await {
            Err(_) => Err(Error::PerfTimedOut),
            Ok(Err(_)) => Err(Error::ChannelClosed),
            Ok(Ok(report)) => report,
        }
    }

    fn commands(&self, peer: PeerId) -> Result<mpsc::Sender<Command>> {
        self.node
            .channels
            .commands(&peer)
            .ok_or(Error::NotConnected(peer))
    }

    /// Sends a text message.
    pub async fn send_message(&self, peer: PeerId, text: impl Into<String>) -> Result<()> {
        self.send(peer, PureMessage::new(text)).await
    }

    /// Queues a packet on every open channel whose trust permits its kind;
    /// returns how many channels took it.
    pub async fn broadcast(&self, packet: impl Into<Packet>) -> usize {
        let packet = packet.into();
        let needed = Scopes::for_packet(&packet).unwrap_or(Scopes::NONE);
        let targets = self
            .node
            .channels
            .open_with(|scopes| scopes.contains(needed));
        let mut sent = 0;
        for (_, commands) in targets {
            let command = Command::Send {
                packet: Box::new(packet.clone()),
                reply: None,
            };
            if commands.send(command).await.is_ok() {
                sent += 1;
            }
        }
        sent
    }

    /// Offers a file to a peer whose channel permits data transmission. The
    /// file is hashed first (BLAKE3), then streamed in chunks once the peer
    /// accepts; progress and the outcome arrive as events. If the channel
    /// drops, the file is re-offered when it reopens and the peer resumes
    /// from its last verified chunk.
    pub async fn send_file(&self, peer: PeerId, path: impl AsRef<Path>) -> Result<TransferId> {
        let commands = self.commands(peer)?;
        let file = PreparedFile::open(path.as_ref().to_owned(), &self.node.cancel).await?;
        let (reply, result) = oneshot::channel();
        commands
            .send(Command::SendFile {
                file: Box::new(file),
                reply,
            })
            .await
            .map_err(|_| Error::NotConnected(peer))?;
        result.await.map_err(|_| Error::ChannelClosed)?
    }

    /// A snapshot of KnownPeers, most recently seen first.
    pub fn known_peers(&self) -> Vec<KnownPeer> {
        self.node.peers.snapshot()
    }

    /// One known peer.
    pub fn known_peer(&self, peer: &PeerId) -> Option<KnownPeer> {
        self.node.peers.get(peer)
    }

    /// Records a peer learned elsewhere; connects to no one. The address
    /// counts as proven (the application gave it).
    pub fn learn_peer(&self, peer: PeerId, addr: SocketAddr, source: PeerSource) {
        self.node.peers.observe(
            peer,
            Some((crate::scope::canonical(addr), Origin::Proven)),
            source,
        );
    }

    /// Records a peer a directory listed (a bootstrap server: WAN
    /// discovery), with its addresses as claimed, unproven until a channel
    /// proves them; source [`PeerSource::Bootstrap`]. Connects to no one:
    /// see [`dial_listed`](Self::dial_listed). Returns whether there was
    /// room for it.
    pub fn learn_listed(&self, peer: PeerId, addrs: &[SocketAddr]) -> bool {
        let mut room = !addrs.is_empty();
        for addr in addrs {
            room &= self.node.peers.observe(
                peer,
                Some((crate::scope::canonical(*addr), Origin::Claimed)),
                PeerSource::Bootstrap,
            );
        }
        room
    }

    /// Dials a listed peer at `addr`, gated as LAN discovery's dials and
    /// inbound channels are: it waits for approval unless the trust policy
    /// or an earlier decision says otherwise, and the handshake fails
    /// unless the remote proves it is `peer`.
    pub async fn dial_listed(&self, peer: PeerId, addr: SocketAddr) -> Result<PeerId> {
        self.dial(addr, Some(peer), crate::admission::Intent::Discovery)
            .await
    }

    /// Dials an address where a scan (widescan) found another instance,
    /// gated as discovery's dials are: the channel waits for approval
    /// unless the trust policy or an earlier decision says otherwise. The
    /// scan gave an address only; the handshake says who is there, and the
    /// peer is known from then on with source [`PeerSource::Widescan`]
    /// (unless it was known before). Returns its id once the channel is
    /// open or waits for approval.
    pub async fn dial_scanned(&self, addr: SocketAddr) -> Result<PeerId> {
        self.dial(addr, None, crate::admission::Intent::Scanned)
            .await
    }

    /// Signs this node's own record for bootstrap servers: its id and
    /// network, `seq`, the time span and `addresses`.
    pub fn sign_record(
        &self,
        seq: u64,
        issued_at: u64,
        expires_at: u64,
        addresses: Vec<SocketAddr>,
    ) -> Result<p2pnet_proto::record::SignedRecord> {
        let record = p2pnet_proto::record::PeerRecord {
            peer: self.local_peer_id(),
            network: self.node.config.channel.network.clone(),
            seq,
            issued_at,
            expires_at,
            addresses,
        };
        p2pnet_proto::record::SignedRecord::sign(record, &self.node.keypair)
            .map_err(|e| Error::Protocol(e.into()))
    }

    /// Signs a heartbeat for bootstrap servers: this node asking, at
    /// `at_ms` (Unix ms), for the tasks queued after `after_task`.
    pub fn sign_heartbeat(
        &self,
        at_ms: u64,
        after_task: u64,
    ) -> Result<p2pnet_proto::heartbeat::SignedHeartbeat> {
        let heartbeat = p2pnet_proto::heartbeat::Heartbeat {
            peer: self.local_peer_id(),
            network: self.node.config.channel.network.clone(),
            at_ms,
            after_task,
        };
        p2pnet_proto::heartbeat::SignedHeartbeat::sign(heartbeat, &self.node.keypair)
            .map_err(|e| Error::Protocol(e.into()))
    }

    /// The network name bound into every handshake.
    pub fn network_name(&self) -> &str {
        &self.node.config.channel.network
    }

    /// Puts back a peer an application stored (from [`known_peers`](Self::known_peers)
    /// of an earlier run): its addresses with their provenance, source,
    /// times, approval or rejection, grants (expired ones are dropped, the
    /// others end at their time) and persistence. A persistent peer is
    /// reconnected. Call it before peers connect, typically right after
    /// start.
    pub fn restore_peer(&self, known: KnownPeer) -> Result<()> {
        let peer = known.peer_id;
        let persistent = known.persistent;
        if !self.node.peers.restore(known) {
            return Err(Error::LimitReached("max_known_peers"));
        }
        if persistent {
            self.keep_connected(peer);
        }
        Ok(())
    }

    /// A snapshot of ActivePeerChannels.
    pub fn channels(&self) -> Vec<ChannelInfo> {
        self.node.channels.snapshot()
    }

    /// The channel bound to a peer, if any.
    pub fn channel(&self, peer: &PeerId) -> Option<ChannelInfo> {
        self.node.channels.info(peer)
    }

    /// Closes the channel to a peer (with a Disconnect). The peer stays
    /// known; a persistent peer is reconnected.
    pub async fn disconnect(&self, peer: PeerId) -> Result<()> {
        self.commands(peer)?
            .send(Command::Close(Disconnect::new(DisconnectReason::Normal)))
            .await
            .map_err(|_| Error::NotConnected(peer))
    }

    /// The named periodic routines.
    pub fn routines(&self) -> Routines<'_> {
        Routines::new(self)
    }

    /// Bytes sent and received on every channel since the network started
    /// (closed channels included; open ones publish about once a second).
    pub fn traffic(&self) -> crate::Traffic {
        self.node.traffic.total()
    }

    /// Whether shutdown has begun.
    pub fn is_shut_down(&self) -> bool {
        self.node.cancel.is_cancelled()
    }

    /// Closes every channel with a Disconnect, stops the listener, the
    /// routines and reconnects, and returns once every task has ended.
    pub async fn shutdown(&self) {
        tracing::info!(peer_id = %self.node.local_id, "peer network shutting down");
        self.node.cancel.cancel();
        self.node.tracker.close();
        self.node.tracker.wait().await;
        // After the tracker: ending actors put their transfers there.
        self.node.partials.release_all();
    }
}
