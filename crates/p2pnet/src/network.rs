//! `PeerNetwork`: the handle applications hold, and the state its tasks
//! share.
//!
//! Nothing here is global: every network owns its listener, its tasks (in
//! one `TaskTracker`), a `CancellationToken` whose children reach every
//! task, and its tables behind short-lived mutexes (never held across an
//! `.await`). Many networks can run in one process.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock, RwLockReadGuard};
use std::time::SystemTime;

use ipnet::IpNet;
use p2pnet_proto::packet::{Disconnect, DisconnectReason, Packet, PureMessage, TransferId};
use p2pnet_proto::{
    Backoff, Channel, ChannelState, CloseReason, Decision, Direction, IncomingPeerTrustPolicy,
    Keypair, PeerId, TrustLevel,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::actor::{Actor, Command, OpenedTx};
use crate::clock::Clock;
use crate::config::NetworkConfig;
use crate::error::{Error, Result};
use crate::event::{EventStream, NetworkEvent};
use crate::handler::PacketHandlers;
use crate::known_peers::{KnownPeer, KnownPeers, Observed, PeerSource};
use crate::registry::{ActivePeerChannels, ChannelInfo};
use crate::routines::{self, RoutineTable, Routines};
use crate::transfer_io::PreparedFile;

/// Interrupted outgoing transfers remembered per peer for re-offering.
const MAX_INTERRUPTED_PER_PEER: usize = 16;

/// An inbound peer waiting for approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingPeer {
    /// Its authenticated id.
    pub peer: PeerId,
    /// Its address.
    pub addr: SocketAddr,
    /// When it started waiting.
    pub since: SystemTime,
}

/// An approval hook's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Open the channel at this trust level.
    Approve(TrustLevel),
    /// Refuse the peer.
    Reject,
}

pub(crate) type ApprovalHook = Arc<dyn Fn(&PendingPeer) -> Option<Verdict> + Send + Sync>;

/// State shared by the handle and every task of one network.
pub(crate) struct Shared {
    pub(crate) config: NetworkConfig,
    pub(crate) keypair: Keypair,
    pub(crate) local_id: PeerId,
    pub(crate) local_addr: Option<SocketAddr>,
    pub(crate) clock: Clock,
    pub(crate) handlers: PacketHandlers,
    pub(crate) approval_hook: Option<ApprovalHook>,
    pub(crate) cancel: CancellationToken,
    pub(crate) tracker: TaskTracker,
    pub(crate) routines: RoutineTable,
    policy: RwLock<IncomingPeerTrustPolicy>,
    registry: Mutex<ActivePeerChannels>,
    known: Mutex<KnownPeers>,
    approvals: Mutex<VecDeque<PendingPeer>>,
    approvals_changed: Notify,
    persistent: Mutex<HashMap<PeerId, CancellationToken>>,
    interrupted: Mutex<HashMap<PeerId, Vec<PathBuf>>>,
    pub(crate) partials: crate::partial_files::PartialFiles,
    events: broadcast::Sender<NetworkEvent>,
    next_transfer: AtomicU64,
    pub(crate) discovery: OnceLock<Arc<crate::discovery::Link>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these short critical sections leaves
    // plain data behind, still consistent enough to serve and shut down.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn emit(&self, event: NetworkEvent) {
        // No subscriber is not an error.
        let _ = self.events.send(event);
    }

    pub(crate) fn policy(&self) -> RwLockReadGuard<'_, IncomingPeerTrustPolicy> {
        self.policy.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn update_policy<T>(&self, change: impl FnOnce(&mut IncomingPeerTrustPolicy) -> T) -> T {
        change(&mut self.policy.write().unwrap_or_else(PoisonError::into_inner))
    }

    pub(crate) fn registry(&self) -> MutexGuard<'_, ActivePeerChannels> {
        lock(&self.registry)
    }

    pub(crate) fn known(&self) -> MutexGuard<'_, KnownPeers> {
        lock(&self.known)
    }

    pub(crate) fn observe_peer(&self, peer: PeerId, addr: Option<SocketAddr>, source: PeerSource) {
        let observed = self.known().observe(peer, addr, source, SystemTime::now());
        match observed {
            Observed::Added => self.emit(NetworkEvent::PeerAdded { peer, source }),
            Observed::Updated => {}
            Observed::Full => tracing::debug!(%peer, "known-peers table full; peer not recorded"),
        }
    }

    /// Forgets a peer discovery found, now that it has gone quiet and has
    /// no channel; peers the application added or keeps are left alone.
    pub(crate) fn prune_discovered(&self, peer: &PeerId) -> bool {
        let mut known = self.known();
        let prunable = known
            .get(peer)
            .is_some_and(|k| matches!(k.source, PeerSource::Discovery { .. }) && !k.persistent);
        if prunable {
            known.remove(peer);
            drop(known);
            tracing::debug!(%peer, "pruned a discovered peer that left");
            self.emit(NetworkEvent::PeerRemoved { peer: *peer });
        }
        prunable
    }

    /// Queues a pending peer; false if the queue is full.
    pub(crate) fn enqueue_approval(&self, pending: PendingPeer) -> bool {
        let mut queue = lock(&self.approvals);
        if queue.len() >= self.config.limits.max_pending {
            return false;
        }
        queue.retain(|p| p.peer != pending.peer);
        queue.push_back(pending);
        drop(queue);
        self.approvals_changed.notify_waiters();
        true
    }

    pub(crate) fn dequeue_approval(&self, peer: &PeerId) {
        lock(&self.approvals).retain(|p| p.peer != *peer);
    }

    pub(crate) fn next_transfer_id(&self) -> TransferId {
        // Random start: ids from a restarted sender do not collide with
        // transfers the receiver still remembers.
        TransferId(self.next_transfer.fetch_add(1, Ordering::Relaxed))
    }

    pub(crate) fn remember_interrupted(&self, peer: PeerId, path: PathBuf) {
        let mut interrupted = lock(&self.interrupted);
        let paths = interrupted.entry(peer).or_default();
        if !paths.contains(&path) && paths.len() < MAX_INTERRUPTED_PER_PEER {
            paths.push(path);
        }
    }

    pub(crate) fn forget_interrupted(&self, peer: PeerId, path: &Path) {
        let mut interrupted = lock(&self.interrupted);
        if let Some(paths) = interrupted.get_mut(&peer) {
            paths.retain(|p| p != path);
            if paths.is_empty() {
                interrupted.remove(&peer);
            }
        }
    }

    /// Re-offers files whose transfer to `peer` a lost channel interrupted;
    /// the receiver resumes from its partial file.
    pub(crate) fn resume_interrupted_transfers(self: &Arc<Self>, peer: PeerId) {
        let Some(paths) = lock(&self.interrupted).remove(&peer) else {
            return;
        };
        let network = PeerNetwork::internal(self.clone());
        self.tracker.spawn(async move {
            for path in paths {
                tracing::info!(%peer, path = %path.display(), "re-offering an interrupted transfer");
                if let Err(err) = network.send_file(peer, &path).await {
                    tracing::warn!(%peer, path = %path.display(), %err, "cannot re-offer");
                }
            }
        });
    }

    pub(crate) fn subscribe(&self) -> EventStream {
        EventStream::new(self.events.subscribe())
    }

    /// Checks every channel against the access list and closes the ones it
    /// now denies.
    fn enforce_access(&self) {
        let denied: Vec<_> = {
            let policy = self.policy();
            self.registry()
                .entries()
                .filter(|e| {
                    let Decision::Deny(_) =
                        policy.decide(e.info.peer.as_ref(), e.info.addr.ip(), e.info.direction)
                    else {
                        return false;
                    };
                    true
                })
                .map(|e| (e.info.peer, e.commands.clone()))
                .collect()
        };
        for (peer, commands) in denied {
            if let Some(peer) = peer {
                self.dequeue_approval(&peer);
            }
            let _ = commands.try_send(Command::Close(Disconnect::new(DisconnectReason::Blocked)));
        }
    }

    fn spawn_channel(
        self: &Arc<Self>,
        stream: TcpStream,
        addr: SocketAddr,
        direction: Direction,
        expected: Option<PeerId>,
        opened: Option<OpenedTx>,
    ) -> Result<()> {
        // Small messages must not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let channel = {
            let mut rng = rand::rng();
            let now = self.clock.now();
            let config = self.config.channel.clone();
            match direction {
                Direction::Outbound => {
                    Channel::new_outbound(config, &self.keypair, expected, now, &mut rng)?
                }
                Direction::Inbound => Channel::new_inbound(config, &self.keypair, now, &mut rng)?,
            }
        };
        let (tx, rx) = mpsc::channel(self.config.limits.command_queue);
        let id = {
            let mut registry = self.registry();
            let limits = &self.config.limits;
            if registry.len() >= limits.max_channels {
                return Err(Error::LimitReached("max_channels"));
            }
            if direction == Direction::Inbound {
                if registry.inbound() >= limits.max_inbound {
                    return Err(Error::LimitReached("max_inbound"));
                }
                if registry.pending() >= limits.max_pending {
                    return Err(Error::LimitReached("max_pending"));
                }
            }
            registry.insert(addr, direction, tx, tokio::time::Instant::now())
        };
        let actor = Actor::new(self.clone(), id, addr, channel, rx, opened);
        self.tracker.spawn(actor.run(stream));
        Ok(())
    }

    fn on_inbound(self: &Arc<Self>, stream: TcpStream, addr: SocketAddr) {
        let addr = canonical(addr);
        self.emit(NetworkEvent::IncomingConnectionAttempt { addr });
        let refuse = |reason: String| {
            tracing::info!(%addr, %reason, "inbound connection refused");
            self.emit(NetworkEvent::ConnectionRefused {
                addr,
                peer: None,
                reason,
            });
        };
        if let Decision::Deny(reason) = self.policy().decide(None, addr.ip(), Direction::Inbound) {
            // Dropping the stream closes it: nothing is said to a blocked
            // address, not even a handshake.
            refuse(format!("{reason:?}"));
            return;
        }
        if let Err(err) = self.spawn_channel(stream, addr, Direction::Inbound, None, None) {
            refuse(err.to_string());
        }
    }
}

/// Maps an IPv4-mapped IPv6 address (from a dual-stack socket) to IPv4.
fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), addr.port()),
            None => addr,
        },
        IpAddr::V4(_) => addr,
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
    shared: Arc<Shared>,
    _owner: Option<Arc<OwnerGuard>>,
}

impl std::fmt::Debug for PeerNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerNetwork")
            .field("peer_id", &self.shared.local_id)
            .field("local_addr", &self.shared.local_addr)
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
    pub(crate) fn internal(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            _owner: None,
        }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub(crate) async fn start(
        mut config: NetworkConfig,
        keypair: Keypair,
        policy: IncomingPeerTrustPolicy,
        handlers: PacketHandlers,
        approval_hook: Option<ApprovalHook>,
    ) -> Result<Self> {
        let listener = if config.accept_inbound {
            Some(bind(config.listen_ip, config.ports.clone()).await?)
        } else {
            None
        };
        let local_addr = match &listener {
            Some(listener) => Some(
                listener
                    .local_addr()
                    .map_err(|err| Error::io("reading the listening address", err))?,
            ),
            None => None,
        };
        let mut channel = (*config.channel).clone();
        channel.listening_port = local_addr.map(|addr| addr.port());
        config.channel = Arc::new(channel);
        let cancel = CancellationToken::new();
        let (events, _) = broadcast::channel(config.limits.event_buffer);
        let shared = Arc::new(Shared {
            local_id: keypair.peer_id(),
            keypair,
            local_addr,
            clock: Clock::new(),
            handlers,
            approval_hook,
            cancel: cancel.clone(),
            tracker: TaskTracker::new(),
            routines: RoutineTable::default(),
            policy: RwLock::new(policy),
            registry: Mutex::new(ActivePeerChannels::default()),
            known: Mutex::new(KnownPeers::new(config.limits.max_known_peers)),
            approvals: Mutex::new(VecDeque::new()),
            approvals_changed: Notify::new(),
            persistent: Mutex::new(HashMap::new()),
            interrupted: Mutex::new(HashMap::new()),
            partials: crate::partial_files::PartialFiles::new(
                cancel.clone(),
                config.limits.max_incoming_transfers,
            ),
            events,
            next_transfer: AtomicU64::new(rand::random::<u32>().into()),
            discovery: OnceLock::new(),
            config,
        });
        if let Some(listener) = listener {
            let shared2 = shared.clone();
            shared.tracker.spawn(accept_loop(shared2, listener));
        }
        let network = Self {
            shared: shared.clone(),
            _owner: Some(Arc::new(OwnerGuard { cancel })),
        };
        if shared.config.default_routines {
            routines::install_defaults(&network)?;
        }
        if let Some(discovery) = shared.config.discovery.clone() {
            crate::discovery::start(&network, discovery)?;
        }
        tracing::info!(peer_id = %shared.local_id, addr = ?local_addr, "peer network started");
        Ok(network)
    }

    /// This node's peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.shared.local_id
    }

    /// The address the listener is bound to (`None` when inbound
    /// connections are off).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.shared.local_addr
    }

    /// Subscribes to the network's events from now on.
    pub fn subscribe(&self) -> EventStream {
        self.shared.subscribe()
    }

    /// Dials `addr`, completes the handshake and returns the peer's
    /// authenticated id once the channel is open on our side (the remote
    /// may still hold us in its approval queue; what we send meanwhile is
    /// held there, bounded, and delivered on approval).
    pub async fn connect(&self, addr: SocketAddr) -> Result<PeerId> {
        self.connect_inner(addr, None).await
    }

    /// Like [`connect`](Self::connect), but the handshake fails unless the
    /// remote proves it is `peer`.
    pub async fn connect_to(&self, peer: PeerId, addr: SocketAddr) -> Result<PeerId> {
        self.connect_inner(addr, Some(peer)).await
    }

    async fn connect_inner(&self, addr: SocketAddr, expected: Option<PeerId>) -> Result<PeerId> {
        let shared = &self.shared;
        if shared.cancel.is_cancelled() {
            return Err(Error::Shutdown);
        }
        let addr = canonical(addr);
        if let Decision::Deny(reason) =
            shared
                .policy()
                .decide(expected.as_ref(), addr.ip(), Direction::Outbound)
        {
            return Err(Error::Denied(reason));
        }
        if let Some(peer) = expected
            && self.is_open(&peer)
        {
            return Ok(peer);
        }
        let failed = |reason: String| Error::ConnectFailed { addr, reason };
        let stream = tokio::select! {
            () = shared.cancel.cancelled() => return Err(Error::Shutdown),
            result = tokio::time::timeout(shared.config.connect_timeout, TcpStream::connect(addr)) => {
                match result {
                    Err(_) => return Err(failed("timed out".into())),
                    Ok(Err(err)) => return Err(failed(err.to_string())),
                    Ok(Ok(stream)) => stream,
                }
            }
        };
        let mut events = shared.subscribe();
        let (opened_tx, opened_rx) = oneshot::channel();
        shared.spawn_channel(stream, addr, Direction::Outbound, expected, Some(opened_tx))?;
        match opened_rx.await {
            Ok(Ok(peer)) => Ok(peer),
            Ok(Err(reason)) => {
                // Lost a duplicate race: the peer's other channel is the one
                // both sides keep; wait for it to open.
                if matches!(&reason, CloseReason::Disconnect(d) if d.reason == DisconnectReason::Duplicate)
                {
                    let deadline = shared.config.channel.handshake_timeout;
                    let wait = async {
                        loop {
                            if let Some(peer) = self.open_peer_at(addr, expected) {
                                return Some(peer);
                            }
                            match events.recv().await {
                                Some(NetworkEvent::ChannelOpened { peer, .. })
                                    if expected.is_none_or(|e| e == peer) =>
                                {
                                    return Some(peer);
                                }
                                None => return None,
                                _ => {}
                            }
                        }
                    };
                    if let Ok(Some(peer)) = tokio::time::timeout(deadline, wait).await {
                        return Ok(peer);
                    }
                }
                Err(failed(crate::actor::describe(&reason)))
            }
            Err(_) => Err(failed("the channel ended".into())),
        }
    }

    fn is_open(&self, peer: &PeerId) -> bool {
        self.shared
            .registry()
            .by_peer(peer)
            .is_some_and(|e| matches!(e.info.state, ChannelState::Open { .. }))
    }

    fn open_peer_at(&self, addr: SocketAddr, expected: Option<PeerId>) -> Option<PeerId> {
        let registry = self.shared.registry();
        registry
            .entries()
            .filter(|e| matches!(e.info.state, ChannelState::Open { .. }))
            .filter_map(|e| e.info.peer.map(|p| (p, e.info.addr)))
            .find(|(peer, at)| match expected {
                Some(expected) => *peer == expected,
                None => at.ip() == addr.ip(),
            })
            .map(|(peer, _)| peer)
    }

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
        let shared = &self.shared;
        shared.known().set_persistent(&peer, true);
        let mut persistent = lock(&shared.persistent);
        if persistent.contains_key(&peer) {
            return;
        }
        let token = shared.cancel.child_token();
        persistent.insert(peer, token.clone());
        drop(persistent);
        let network = Self::internal(shared.clone());
        shared
            .tracker
            .spawn(async move { network.reconnect_loop(peer, token).await });
    }

    async fn reconnect_loop(self, peer: PeerId, token: CancellationToken) {
        let config = &self.shared.config;
        let mut backoff = Backoff::new(config.reconnect_min, config.reconnect_max);
        let mut events = self.subscribe();
        loop {
            // Wait while a channel to the peer exists.
            while self.shared.registry().by_peer(&peer).is_some() {
                tokio::select! {
                    () = token.cancelled() => return,
                    event = events.recv() => if event.is_none() { return },
                    () = tokio::time::sleep(config.reconnect_max) => {}
                }
            }
            let delay = backoff.next_delay(rand::random());
            tokio::select! {
                () = token.cancelled() => return,
                () = tokio::time::sleep(delay) => {}
            }
            let addresses = self
                .shared
                .known()
                .get(&peer)
                .map(|known| known.addresses.clone())
                .unwrap_or_default();
            for addr in addresses.into_iter().rev() {
                let attempt = tokio::select! {
                    () = token.cancelled() => return,
                    attempt = self.connect_to(peer, addr) => attempt,
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

    /// Forgets a peer: stops reconnecting to it, closes its channel and
    /// drops it from KnownPeers (with its remembered trust). This is not a
    /// block: the peer may connect again later and will need approval
    /// again. Returns whether the peer was known or connected.
    pub async fn remove_peer(&self, peer: PeerId) -> bool {
        let shared = &self.shared;
        if let Some(token) = lock(&shared.persistent).remove(&peer) {
            token.cancel();
        }
        shared.dequeue_approval(&peer);
        let removed = shared.known().remove(&peer).is_some();
        lock(&shared.interrupted).remove(&peer);
        let commands = shared.registry().by_peer(&peer).map(|e| e.commands.clone());
        let connected = commands.is_some();
        if let Some(commands) = commands {
            let _ = commands
                .send(Command::Close(Disconnect::new(DisconnectReason::Normal)))
                .await;
        }
        if removed {
            shared.emit(NetworkEvent::PeerRemoved { peer });
        }
        removed || connected
    }

    /// The approval queue (trust placement `Queue` or `QueueAndEvent`),
    /// oldest first.
    pub fn pending_approvals(&self) -> Vec<PendingPeer> {
        lock(&self.shared.approvals).iter().cloned().collect()
    }

    /// Waits for the next peer in the approval queue and takes it off the
    /// queue (it stays pending until [`approve`](Self::approve) or
    /// [`reject`](Self::reject)). `None` once the network shuts down.
    pub async fn next_pending(&self) -> Option<PendingPeer> {
        loop {
            let changed = self.shared.approvals_changed.notified();
            if let Some(pending) = lock(&self.shared.approvals).pop_front() {
                return Some(pending);
            }
            tokio::select! {
                () = changed => {}
                () = self.shared.cancel.cancelled() => return None,
            }
        }
    }

    /// Approves a peer awaiting approval at the trust policy's initial level
    /// (or `trust`).
    pub async fn approve(&self, peer: PeerId, trust: Option<TrustLevel>) -> Result<()> {
        let trust = trust.unwrap_or_else(|| self.shared.policy().initial_trust());
        let commands = self.pending_commands(&peer)?;
        self.shared.dequeue_approval(&peer);
        commands
            .send(Command::Approve(trust))
            .await
            .map_err(|_| Error::NotPending(peer))
    }

    /// Rejects a peer awaiting approval; it is told so and disconnected.
    pub async fn reject(&self, peer: PeerId) -> Result<()> {
        let commands = self.pending_commands(&peer)?;
        self.shared.dequeue_approval(&peer);
        commands
            .send(Command::Reject(Disconnect::new(DisconnectReason::Rejected)))
            .await
            .map_err(|_| Error::NotPending(peer))
    }

    fn pending_commands(&self, peer: &PeerId) -> Result<mpsc::Sender<Command>> {
        self.shared
            .registry()
            .by_peer(peer)
            .filter(|e| e.info.state == ChannelState::PendingApproval)
            .map(|e| e.commands.clone())
            .ok_or(Error::NotPending(*peer))
    }

    /// Grants a peer enhanced exchange (files, tasks, data, identifiers,
    /// peer lists), now and on later connections.
    pub async fn elevate(&self, peer: PeerId) -> Result<()> {
        self.change_trust(peer, TrustLevel::elevated).await
    }

    /// Withdraws enhanced exchange from a peer.
    pub async fn demote(&self, peer: PeerId) -> Result<()> {
        self.change_trust(peer, |trust| TrustLevel {
            enhanced_exchange: false,
            ..trust
        })
        .await
    }

    async fn change_trust(
        &self,
        peer: PeerId,
        change: impl Fn(TrustLevel) -> TrustLevel,
    ) -> Result<()> {
        let open = self
            .shared
            .registry()
            .by_peer(&peer)
            .and_then(|e| match e.info.state {
                ChannelState::Open { trust } => Some((trust, e.commands.clone())),
                _ => None,
            });
        if let Some((trust, commands)) = open {
            return commands
                .send(Command::SetTrust(change(trust)))
                .await
                .map_err(|_| Error::NotConnected(peer));
        }
        let mut known = self.shared.known();
        let Some(current) = known.get(&peer).map(|k| k.trust) else {
            return Err(Error::UnknownPeer(peer));
        };
        let base = current.unwrap_or_else(|| self.shared.policy().initial_trust());
        known.set_trust(&peer, Some(change(base)));
        Ok(())
    }

    /// Blocks a peer id: its channel closes now and it can neither connect
    /// nor be connected to until [`unblock_peer`](Self::unblock_peer).
    pub fn block_peer(&self, peer: PeerId) {
        self.shared.update_policy(|policy| {
            policy.access.block_peer(peer);
        });
        if let Some(token) = lock(&self.shared.persistent).remove(&peer) {
            token.cancel();
        }
        self.shared.known().set_persistent(&peer, false);
        self.shared.enforce_access();
    }

    /// Lifts a block (or allow-list entry) on a peer id.
    pub fn unblock_peer(&self, peer: PeerId) -> bool {
        self.shared
            .update_policy(|policy| policy.access.forget_peer(&peer))
    }

    /// Blocks an address or network (a single address is a /32 or /128),
    /// both ways; matching channels close now.
    pub fn block_network(&self, net: IpNet) {
        self.shared.update_policy(|policy| {
            policy.access.block_network(net);
        });
        self.shared.enforce_access();
    }

    /// Lifts a block (or allow-list entry) on a network.
    pub fn unblock_network(&self, net: IpNet) -> bool {
        self.shared
            .update_policy(|policy| policy.access.forget_network(&net))
    }

    /// Adds a peer id to the allow-list. A non-empty allow-list denies
    /// everyone not on it; channels it now denies close.
    pub fn allow_peer(&self, peer: PeerId) {
        self.shared.update_policy(|policy| {
            policy.access.allow_peer(peer);
        });
        self.shared.enforce_access();
    }

    /// Adds a network to the allow-list (see [`allow_peer`](Self::allow_peer)).
    pub fn allow_network(&self, net: IpNet) {
        self.shared.update_policy(|policy| {
            policy.access.allow_network(net);
        });
        self.shared.enforce_access();
    }

    /// The trust policy in force (placement, defaults, access list).
    pub fn trust_policy(&self) -> IncomingPeerTrustPolicy {
        self.shared.policy().clone()
    }

    /// Queues a packet on the peer's channel, waiting while its buffers are
    /// full. Fails if no channel is open to the peer or its trust level
    /// does not permit the packet's kind.
    pub async fn send(&self, peer: PeerId, packet: impl Into<Packet>) -> Result<()> {
        let commands = self
            .shared
            .registry()
            .by_peer(&peer)
            .map(|e| e.commands.clone())
            .ok_or(Error::NotConnected(peer))?;
        let (reply, result) = oneshot::channel();
        let packet = packet.into();
        commands
            .send(Command::Send {
                packet: Box::new(packet),
                reply: Some(reply),
            })
            .await
            .map_err(|_| Error::NotConnected(peer))?;
        result.await.map_err(|_| Error::ChannelClosed)?
    }

    /// Sends a text message.
    pub async fn send_message(&self, peer: PeerId, text: impl Into<String>) -> Result<()> {
        self.send(peer, PureMessage::new(text)).await
    }

    /// Queues a packet on every open channel whose trust permits its kind;
    /// returns how many channels took it.
    pub async fn broadcast(&self, packet: impl Into<Packet>) -> usize {
        let packet = packet.into();
        let kind = packet.kind();
        let targets = self
            .shared
            .registry()
            .open_with(|trust| trust.permits(kind));
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
        let commands = self
            .shared
            .registry()
            .by_peer(&peer)
            .map(|e| e.commands.clone())
            .ok_or(Error::NotConnected(peer))?;
        let file = PreparedFile::open(path.as_ref().to_owned(), &self.shared.cancel).await?;
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
        self.shared.known().snapshot()
    }

    /// One known peer.
    pub fn known_peer(&self, peer: &PeerId) -> Option<KnownPeer> {
        self.shared.known().get(peer).cloned()
    }

    /// Records a peer learned elsewhere (discovery); connects to no one.
    pub fn learn_peer(&self, peer: PeerId, addr: SocketAddr, source: PeerSource) {
        if peer != self.shared.local_id {
            self.shared
                .observe_peer(peer, Some(canonical(addr)), source);
        }
    }

    /// A snapshot of ActivePeerChannels.
    pub fn channels(&self) -> Vec<ChannelInfo> {
        self.shared.registry().snapshot()
    }

    /// The channel bound to a peer, if any.
    pub fn channel(&self, peer: &PeerId) -> Option<ChannelInfo> {
        self.shared.registry().by_peer(peer).map(|e| e.info.clone())
    }

    /// Closes the channel to a peer (with a Disconnect). The peer stays
    /// known; a persistent peer is reconnected.
    pub async fn disconnect(&self, peer: PeerId) -> Result<()> {
        let commands = self
            .shared
            .registry()
            .by_peer(&peer)
            .map(|e| e.commands.clone())
            .ok_or(Error::NotConnected(peer))?;
        commands
            .send(Command::Close(Disconnect::new(DisconnectReason::Normal)))
            .await
            .map_err(|_| Error::NotConnected(peer))
    }

    /// The named periodic routines.
    pub fn routines(&self) -> Routines<'_> {
        Routines::new(self)
    }

    /// Whether shutdown has begun.
    pub fn is_shut_down(&self) -> bool {
        self.shared.cancel.is_cancelled()
    }

    /// Closes every channel with a Disconnect, stops the listener, the
    /// routines and reconnects, and returns once every task has ended.
    pub async fn shutdown(&self) {
        tracing::info!(peer_id = %self.shared.local_id, "peer network shutting down");
        self.shared.cancel.cancel();
        self.shared.approvals_changed.notify_waiters();
        self.shared.tracker.close();
        self.shared.tracker.wait().await;
        self.shared.partials.release_all();
    }
}

async fn bind(ip: IpAddr, ports: std::ops::RangeInclusive<u16>) -> Result<TcpListener> {
    let mut last = None;
    for port in ports {
        match TcpListener::bind(SocketAddr::new(ip, port)).await {
            Ok(listener) => return Ok(listener),
            Err(err) => last = Some((port, err)),
        }
    }
    match last {
        Some((port, err)) => Err(Error::io(
            format!("binding {ip} (last port tried: {port})"),
            err,
        )),
        None => Err(Error::InvalidConfig("the port range is empty".into())),
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let accepted = tokio::select! {
            () = shared.cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, addr)) => shared.on_inbound(stream, addr),
            Err(err) => {
                // Typically EMFILE under a connection flood: back off a
                // little instead of spinning, and keep serving.
                tracing::warn!(%err, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
    tracing::debug!("listener stopped");
}
