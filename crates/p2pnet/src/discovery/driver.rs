//! The discovery task. It owns the sockets and the sans-IO
//! [`Discovery`] machine: receive tasks feed it datagrams, it says what to
//! send, and heard peers become KnownPeers entries and dials.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use p2pnet_proto::discovery::{
    Announce, Destination, Discovery, DiscoveryEvent, DiscoveryVia, MAX_ANNOUNCE_ADDRESSES,
    MAX_ANNOUNCE_LEN,
};
use p2pnet_proto::{Backoff, ChannelState, Decision, Direction, PeerId};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::Link;
use super::config::{DiscoveryConfig, StaticHost};
use super::sockets::{self, Received};
use crate::event::NetworkEvent;
use crate::interfaces::{LocalInterface, local_interfaces};
use crate::known_peers::PeerSource;
use crate::network::PeerNetwork;

/// How long the peer with the larger id waits for the smaller one to dial
/// before dialing itself (both dialing at once works, but costs a
/// handshake that the duplicate rule then throws away).
const DIAL_GRACE: Duration = Duration::from_millis(1500);
/// Addresses tried per dial.
const MAX_DIAL_CANDIDATES: usize = 8;
/// Received datagrams waiting for the task; more are dropped and counted.
const INBOUND_QUEUE: usize = 512;
/// How often names of static hosts are resolved again.
const RESOLVE_INTERVAL: Duration = Duration::from_secs(300);

/// Requests from the network handle and the routines.
#[derive(Debug)]
pub(crate) enum Command {
    Rotate(oneshot::Sender<u16>),
    Rescan,
    AnnounceNow,
}

struct Inbound {
    received: Received,
    /// The socket it arrived on: unicast answers leave through it, so they
    /// come from the port the asker sent to (NAT and stateful firewalls
    /// on its side let them in).
    socket: Arc<UdpSocket>,
}

/// Counters the receive tasks update without going through the task.
#[derive(Debug, Default)]
struct IoCounters {
    received: AtomicU64,
    dropped: AtomicU64,
}

/// The open sockets; rebuilt when the interfaces change.
struct SocketSet {
    sender_v4: Option<Arc<UdpSocket>>,
    sender_v6: Option<Arc<UdpSocket>>,
    listening: Vec<SocketAddr>,
    /// Cancels this set's receive tasks.
    token: CancellationToken,
}

struct StaticTarget {
    host: StaticHost,
    addresses: Vec<IpAddr>,
    resolved_at: Option<tokio::time::Instant>,
}

pub(crate) struct Driver {
    network: PeerNetwork,
    config: DiscoveryConfig,
    link: Arc<Link>,
    machine: Discovery,
    interfaces: Vec<LocalInterface>,
    sockets: Option<SocketSet>,
    port_index: usize,
    passive: bool,
    dialing: HashSet<PeerId>,
    backoff: HashMap<PeerId, (Backoff, tokio::time::Instant)>,
    statics: Vec<StaticTarget>,
    counters: Arc<IoCounters>,
    sent: u64,
    send_errors: u64,
    settled: bool,
    /// The published status lacks a change beyond its counters (heard
    /// peers, interfaces, port): the next publish copies everything.
    dirty: bool,
    /// Sockets that received datagrams from these sources since the last
    /// flush: answers to them leave through the same socket.
    answer_via: HashMap<SocketAddr, Arc<UdpSocket>>,
    inbound_tx: mpsc::Sender<Inbound>,
    inbound_rx: mpsc::Receiver<Inbound>,
    dial_tx: mpsc::Sender<(PeerId, bool)>,
    dial_rx: mpsc::Receiver<(PeerId, bool)>,
    resolved_tx: mpsc::Sender<(usize, Vec<IpAddr>)>,
    resolved_rx: mpsc::Receiver<(usize, Vec<IpAddr>)>,
}

impl Driver {
    pub(crate) fn new(
        network: PeerNetwork,
        config: DiscoveryConfig,
        link: Arc<Link>,
    ) -> crate::Result<Self> {
        let shared = network.shared();
        let interfaces = local_interfaces();
        let passive = shared.local_addr.is_none();
        // A node without a listener still listens for announces and dials,
        // but has nothing to announce; its machine gets a placeholder port
        // and its transmits are dropped.
        let ports = match shared.local_addr {
            Some(addr) => vec![addr.port()],
            None => vec![config.ports[0]],
        };
        let local = Announce {
            reply: false,
            solicit: false,
            peer_id: shared.local_id,
            instance: rand::random(),
            ports,
            addresses: announced_addresses(&interfaces, shared.config.listen_ip),
        };
        let machine = Discovery::new(
            shared.config.channel.network.clone(),
            local,
            config.params.clone(),
            shared.clock.now(),
            rand::random(),
        )?;
        let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_QUEUE);
        let (dial_tx, dial_rx) = mpsc::channel(config.max_dials);
        let (resolved_tx, resolved_rx) = mpsc::channel(config.static_hosts.len().max(1));
        let statics = config
            .static_hosts
            .iter()
            .map(|host| StaticTarget {
                addresses: match host {
                    StaticHost::Address(ip, _) => vec![*ip],
                    StaticHost::Name(..) => Vec::new(),
                },
                host: host.clone(),
                resolved_at: None,
            })
            .collect();
        Ok(Self {
            network,
            link,
            machine,
            interfaces,
            sockets: None,
            port_index: 0,
            passive,
            dialing: HashSet::new(),
            backoff: HashMap::new(),
            statics,
            counters: Arc::default(),
            sent: 0,
            send_errors: 0,
            settled: false,
            dirty: true,
            answer_via: HashMap::new(),
            inbound_tx,
            inbound_rx,
            dial_tx,
            dial_rx,
            resolved_tx,
            resolved_rx,
            config,
        })
    }

    pub(crate) async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let shared = self.network.shared().clone();
        let cancel = shared.cancel.clone();
        let mut events = shared.subscribe();
        self.resolve_names();
        tracing::info!(
            ports = ?self.config.ports,
            interfaces = self.interfaces.len(),
            passive = self.passive,
            "discovery started"
        );
        loop {
            self.flush().await;
            let deadline = shared.clock.deadline(self.machine.poll_timeout());
            tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                // Inbound datagrams come last, so a flood cannot starve
                // commands, dial results or channel events.
                Some(command) = commands.recv() => self.on_command(command),
                Some((peer, connected)) = self.dial_rx.recv() => self.on_dial_done(peer, connected),
                Some((index, addresses)) = self.resolved_rx.recv() => {
                    if let Some(target) = self.statics.get_mut(index) {
                        target.addresses = addresses;
                        target.resolved_at = Some(tokio::time::Instant::now());
                    }
                }
                event = events.recv() => match event {
                    None => break,
                    Some(NetworkEvent::ChannelClosed { peer: Some(peer), .. }) => {
                        self.on_channel_closed(peer);
                    }
                    Some(_) => {}
                },
                Some(inbound) = self.inbound_rx.recv() => self.on_inbound(inbound),
                () = tokio::time::sleep_until(deadline) => {}
            }
        }
        if let Some(sockets) = self.sockets.take() {
            sockets.token.cancel();
        }
        tracing::debug!("discovery stopped");
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Rotate(reply) => {
                self.port_index = (self.port_index + 1) % self.config.ports.len();
                let port = self.config.ports[self.port_index];
                self.dirty = true;
                tracing::debug!(port, "broadcast port rotated");
                let _ = reply.send(port);
            }
            Command::Rescan => {
                let now = local_interfaces();
                if now != self.interfaces {
                    tracing::info!(
                        before = self.interfaces.len(),
                        after = now.len(),
                        "interfaces changed; re-announcing"
                    );
                    self.interfaces = now;
                    self.dirty = true;
                    self.open_sockets();
                    let addresses = announced_addresses(
                        &self.interfaces,
                        self.network.shared().config.listen_ip,
                    );
                    let ports = self.machine.local().ports.clone();
                    let now = self.network.shared().clock.now();
                    if let Err(err) = self.machine.set_local(ports, addresses, now) {
                        tracing::warn!(%err, "cannot announce the new addresses");
                    }
                    // A new link has new neighbours, even when the
                    // announced addresses stay the same.
                    self.machine.restart(now);
                }
                self.resolve_names();
            }
            Command::AnnounceNow => self.machine.restart(self.network.shared().clock.now()),
        }
    }

    /// (Re)binds every socket for the current interfaces. A failure on one
    /// port or family is logged and the others still work.
    pub(crate) fn open_sockets(&mut self) {
        if let Some(old) = self.sockets.take() {
            old.token.cancel();
        }
        let token = self.network.shared().cancel.child_token();
        let mut set = SocketSet {
            sender_v4: None,
            sender_v6: None,
            listening: Vec::new(),
            token,
        };
        let v4_groups: Vec<u32> = self
            .interfaces
            .iter()
            .filter(|i| i.multicast && i.addresses.iter().any(|a| a.ip.is_ipv4()))
            .map(|i| i.index)
            .collect();
        let v6_groups: Vec<u32> = self
            .interfaces
            .iter()
            .filter(|i| i.multicast && i.has_ipv6())
            .map(|i| i.index)
            .collect();
        match sockets::sender_v4() {
            Ok(socket) => set.sender_v4 = Some(self.spawn_receiver(socket, &set.token)),
            Err(err) => tracing::warn!(%err, "discovery: no IPv4 sender"),
        }
        match sockets::sender_v6() {
            Ok(socket) => set.sender_v6 = Some(self.spawn_receiver(socket, &set.token)),
            Err(err) => tracing::debug!(%err, "discovery: no IPv6 sender (IPv6 off?)"),
        }
        for &port in &self.config.ports {
            // Both families, whatever the mechanisms: nodes that list this
            // host announce to it by unicast on either.
            let listeners = [
                (
                    SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)),
                    sockets::listen_v4(port, self.config.multicast_v4, &v4_groups),
                ),
                (
                    SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)),
                    sockets::listen_v6(port, self.config.multicast_v6, &v6_groups),
                ),
            ];
            for (addr, bound) in listeners {
                match bound {
                    Ok((socket, failed)) => {
                        for (index, err) in failed {
                            tracing::warn!(%addr, index, %err, "discovery: multicast join failed");
                        }
                        set.listening.push(addr);
                        self.spawn_receiver(socket, &set.token);
                    }
                    // Expected where IPv6 is off; worth a warning for IPv4.
                    Err(err) if addr.is_ipv6() => {
                        tracing::debug!(%addr, %err, "discovery: cannot listen");
                    }
                    Err(err) => tracing::warn!(%addr, %err, "discovery: cannot listen"),
                }
            }
        }
        if set.listening.is_empty() {
            tracing::warn!(ports = ?self.config.ports, "discovery: no designated port could be bound");
        }
        self.sockets = Some(set);
    }

    /// Starts a task reading `socket` into the inbound queue.
    fn spawn_receiver(&self, socket: UdpSocket, token: &CancellationToken) -> Arc<UdpSocket> {
        let socket = Arc::new(socket);
        let reader = socket.clone();
        let token = token.clone();
        let queue = self.inbound_tx.clone();
        let counters = self.counters.clone();
        self.network.shared().tracker.spawn(async move {
            // One byte more than any valid announce, to see oversize ones.
            let mut buf = vec![0u8; MAX_ANNOUNCE_LEN + 1];
            loop {
                let received = tokio::select! {
                    () = token.cancelled() => return,
                    received = sockets::recv(&reader, &mut buf) => received,
                };
                match received {
                    Ok(received) => {
                        counters.received.fetch_add(1, Ordering::Relaxed);
                        let inbound = Inbound {
                            received,
                            socket: reader.clone(),
                        };
                        if queue.try_send(inbound).is_err() {
                            counters.dropped.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(err) => {
                        // ICMP errors of earlier sends surface here
                        // (ECONNREFUSED); a short pause keeps a persistent
                        // error from spinning.
                        tracing::trace!(%err, "discovery receive error");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        });
        socket
    }

    fn via(&self, received: &Received) -> DiscoveryVia {
        match received.destination {
            Some(ip) if ip.is_multicast() => DiscoveryVia::Multicast,
            Some(IpAddr::V4(v4))
                if v4.is_broadcast()
                    || self
                        .interfaces
                        .iter()
                        .flat_map(LocalInterface::broadcast_addresses)
                        .any(|b| b == v4) =>
            {
                DiscoveryVia::Broadcast
            }
            _ => DiscoveryVia::Unicast,
        }
    }

    fn on_inbound(&mut self, inbound: Inbound) {
        let Inbound {
            mut received,
            socket,
        } = inbound;
        let shared = self.network.shared().clone();
        let via = self.via(&received);
        let now = shared.clock.now();
        if received.truncated && received.data.len() <= MAX_ANNOUNCE_LEN {
            // Never valid: make sure the decoder sees it as too long.
            received.data.resize(MAX_ANNOUNCE_LEN + 1, 0);
        }
        // Broadcast and multicast stay on the link: a source outside the
        // link's subnets is forged, and is not answered.
        let may_reply =
            via == DiscoveryVia::Unicast || self.on_link(received.source.ip(), received.interface);
        if via == DiscoveryVia::Unicast {
            self.answer_via.insert(received.source, socket);
        }
        // The access list is checked before anything is answered or
        // remembered.
        let admit = |announce: &Announce| match shared.policy().decide(
            Some(&announce.peer_id),
            received.source.ip(),
            Direction::Outbound,
        ) {
            Decision::Allow => true,
            Decision::Deny(reason) => {
                tracing::debug!(peer = %announce.peer_id, ?reason, "announce from a denied peer ignored");
                false
            }
        };
        let outcome = self.machine.on_datagram_admitting(
            now,
            &received.data,
            received.source,
            via,
            may_reply,
            admit,
        );
        match outcome {
            Ok(Some(event)) => {
                self.dirty |= event.new;
                self.on_heard(event, received.interface);
            }
            Ok(None) => {}
            Err(err) => {
                tracing::trace!(source = %received.source, %err, "discovery datagram dropped");
            }
        }
    }

    /// Whether `ip` is on the link of interface `index`: inside one of its
    /// subnets, or IPv6 link-local.
    fn on_link(&self, ip: IpAddr, index: u32) -> bool {
        if let IpAddr::V6(v6) = ip
            && v6.is_unicast_link_local()
        {
            return true;
        }
        self.interfaces
            .iter()
            .filter(|i| i.index == index)
            .flat_map(|i| i.addresses.iter())
            .any(|a| in_subnet(ip, a.ip, a.prefix))
    }

    /// Whether dialing `addr`, claimed by a peer heard from `source` via
    /// `via`, is reasonable. Announces are unauthenticated: without this,
    /// one forged broadcast would make every node connect to any address
    /// and port (a local service, a host elsewhere).
    fn plausible(&self, addr: IpAddr, source: IpAddr, via: DiscoveryVia, index: u32) -> bool {
        if addr == source {
            return true;
        }
        if addr.is_unspecified() || addr.is_multicast() {
            return false;
        }
        if addr.is_loopback() {
            return source.is_loopback();
        }
        match via {
            // Heard on a link: the peer is on that link.
            DiscoveryVia::Broadcast | DiscoveryVia::Multicast => self.on_link(addr, index),
            // A static host or an answer: its global addresses, or
            // addresses on one of our links.
            DiscoveryVia::Unicast => {
                crate::scope::is_global(addr)
                    || self
                        .interfaces
                        .iter()
                        .any(|i| i.addresses.iter().any(|a| in_subnet(addr, a.ip, a.prefix)))
            }
        }
    }

    fn on_heard(&mut self, event: DiscoveryEvent, interface: u32) {
        let shared = self.network.shared().clone();
        let heard = &event.peer;
        let peer = heard.peer_id;
        if event.new || event.restarted {
            tracing::debug!(%peer, via = ?heard.via, source = %heard.source, restarted = event.restarted, "peer discovered");
        }
        let candidates: Vec<SocketAddr> = heard
            .candidates()
            .filter(|addr| self.plausible(addr.ip(), heard.source.ip(), heard.via, interface))
            .map(|addr| scoped(addr, heard.source, interface))
            .take(MAX_DIAL_CANDIDATES)
            .collect();
        let source = PeerSource::Discovery { via: heard.via };
        let learned_otherwise = shared
            .known()
            .get(&peer)
            .is_some_and(|k| !matches!(k.source, PeerSource::Discovery { .. }));
        if learned_otherwise {
            // Addresses the application gave or a handshake proved are not
            // pushed out by unauthenticated announces.
            shared.observe_peer(peer, None, source);
        } else {
            // KnownPeers keeps the most recent address last: record the
            // best candidate last.
            for addr in candidates.iter().rev() {
                shared.observe_peer(peer, Some(*addr), source);
            }
        }
        let first_heard = heard.first_heard;
        self.maybe_dial(peer, candidates, first_heard);
    }

    fn maybe_dial(
        &mut self,
        peer: PeerId,
        candidates: Vec<SocketAddr>,
        first_heard: p2pnet_proto::Instant,
    ) {
        let shared = self.network.shared().clone();
        if !self.config.auto_connect
            || candidates.is_empty()
            || self.dialing.contains(&peer)
            || self.dialing.len() >= self.config.max_dials
            || shared.registry().by_peer(&peer).is_some()
        {
            return;
        }
        if let Some((_, not_before)) = self.backoff.get(&peer)
            && tokio::time::Instant::now() < *not_before
        {
            return;
        }
        if shared.local_id > peer && shared.clock.now() - first_heard < DIAL_GRACE {
            return;
        }
        self.dialing.insert(peer);
        let network = self.network.clone();
        let done = self.dial_tx.clone();
        shared.tracker.spawn(async move {
            let mut connected = false;
            for addr in candidates {
                match network.connect_to(peer, addr).await {
                    Ok(_) => {
                        connected = true;
                        break;
                    }
                    Err(crate::Error::Shutdown) => break,
                    // A denied address (a blocked network): try the others.
                    Err(crate::Error::Denied(_)) => continue,
                    Err(err) => tracing::debug!(%peer, %addr, %err, "discovery dial failed"),
                }
            }
            let _ = done.send((peer, connected)).await;
        });
    }

    fn on_dial_done(&mut self, peer: PeerId, connected: bool) {
        self.dialing.remove(&peer);
        if connected {
            self.backoff.remove(&peer);
            return;
        }
        let entry = self.backoff.entry(peer).or_insert_with(|| {
            (
                Backoff::new(Duration::from_secs(1), Duration::from_secs(60)),
                tokio::time::Instant::now(),
            )
        });
        entry.1 = tokio::time::Instant::now() + entry.0.next_delay(rand::random());
    }

    fn on_channel_closed(&mut self, peer: PeerId) {
        // A peer that went quiet while its channel was still open is
        // pruned once the channel is gone too.
        if self.machine.peer(&peer).is_none() {
            self.network.shared().prune_discovered(&peer);
        }
    }

    /// Sends what the machine wants sent, expires quiet peers, recomputes
    /// "settled" and publishes the status.
    async fn flush(&mut self) {
        let shared = self.network.shared().clone();
        let now = shared.clock.now();
        while let Some(transmit) = self.machine.poll_transmit(now) {
            if self.passive {
                continue;
            }
            match transmit.to {
                Destination::Everywhere => self.send_everywhere(&transmit.payload).await,
                Destination::Unicast(to) => match self.answer_via.get(&to).cloned() {
                    Some(socket) => {
                        let outcome = socket.send_to(&transmit.payload, to).await.map(drop);
                        self.count_send(outcome);
                    }
                    None => self.send_unicast(&transmit.payload, to).await,
                },
            }
        }
        self.answer_via.clear();
        for peer in self.machine.expire(now) {
            self.dirty = true;
            self.backoff.remove(&peer);
            if shared.registry().by_peer(&peer).is_none() {
                shared.prune_discovered(&peer);
            }
            tracing::debug!(%peer, "discovered peer went quiet");
        }
        // Settled: nothing left for discovery to do. Every heard peer has
        // a channel (open, or waiting for approval), or cannot be dialled
        // now (in backoff), or dialing is the application's business.
        let settled = !self.config.auto_connect || {
            let registry = shared.registry();
            self.machine.peers().all(|heard| {
                self.backoff.contains_key(&heard.peer_id)
                    || registry.by_peer(&heard.peer_id).is_some_and(|e| {
                        matches!(
                            e.info.state,
                            ChannelState::Open { .. } | ChannelState::PendingApproval
                        )
                    })
            })
        };
        if settled != self.settled {
            self.settled = settled;
            self.machine.set_settled(settled, now);
        }
        self.publish();
    }

    async fn send_everywhere(&mut self, payload: &[u8]) {
        let Some(set) = &self.sockets else { return };
        let port = self.config.ports[self.port_index];
        let mut outcomes = Vec::new();
        if let Some(v4) = &set.sender_v4 {
            for interface in &self.interfaces {
                let Some(first_v4) = interface.addresses.iter().find_map(|a| match a.ip {
                    IpAddr::V4(v4) => Some(v4),
                    IpAddr::V6(_) => None,
                }) else {
                    continue;
                };
                if self.config.broadcast && interface.broadcast {
                    let limited = SocketAddrV4::new(Ipv4Addr::BROADCAST, port);
                    outcomes
                        .push(sockets::send_v4_via(v4, payload, limited, interface.index).await);
                    for subnet in interface.broadcast_addresses() {
                        let to = SocketAddr::from((subnet, port));
                        outcomes.push(v4.send_to(payload, to).await.map(drop));
                    }
                }
                if let Some(group) = self.config.multicast_v4
                    && interface.multicast
                {
                    let to = SocketAddrV4::new(group, port);
                    outcomes.push(sockets::send_multicast_v4(v4, payload, to, first_v4).await);
                }
            }
        }
        if let (Some(v6), Some(group)) = (&set.sender_v6, self.config.multicast_v6) {
            for interface in self
                .interfaces
                .iter()
                .filter(|i| i.multicast && i.has_ipv6())
            {
                outcomes.push(
                    sockets::send_multicast_v6(v6, payload, group, port, interface.index).await,
                );
            }
        }
        // Static hosts hear us only by unicast: always ask them to answer,
        // which is how we keep hearing them.
        let soliciting = self.machine.soliciting_announce();
        let statics: Vec<SocketAddr> = self
            .statics
            .iter()
            .flat_map(|target| {
                let port = match &target.host {
                    StaticHost::Address(_, p) | StaticHost::Name(_, p) => p.unwrap_or(port),
                };
                target
                    .addresses
                    .iter()
                    .map(move |ip| SocketAddr::new(*ip, port))
            })
            .collect();
        for outcome in outcomes {
            self.count_send(outcome);
        }
        for to in statics {
            self.send_unicast(&soliciting, to).await;
        }
    }

    async fn send_unicast(&mut self, payload: &[u8], to: SocketAddr) {
        let Some(set) = &self.sockets else { return };
        let socket = match to {
            SocketAddr::V4(_) => &set.sender_v4,
            SocketAddr::V6(_) => &set.sender_v6,
        };
        let outcome = match socket {
            Some(socket) => socket.send_to(payload, to).await.map(drop),
            None => Err(std::io::Error::other("no socket for this address family")),
        };
        self.count_send(outcome);
    }

    fn count_send(&mut self, outcome: std::io::Result<()>) {
        match outcome {
            Ok(()) => self.sent += 1,
            Err(err) => {
                self.send_errors += 1;
                tracing::debug!(%err, "discovery send failed");
            }
        }
    }

    /// Resolves static host names that are due, in background tasks.
    fn resolve_names(&mut self) {
        let now = tokio::time::Instant::now();
        for (index, target) in self.statics.iter_mut().enumerate() {
            let StaticHost::Name(name, _) = &target.host else {
                continue;
            };
            if target
                .resolved_at
                .is_some_and(|at| now.duration_since(at) < RESOLVE_INTERVAL)
            {
                continue;
            }
            let name = name.clone();
            let done = self.resolved_tx.clone();
            let cancel = self.network.shared().cancel.clone();
            self.network.shared().tracker.spawn(async move {
                // A failed lookup is retried at the next rescan.
                let lookup = tokio::select! {
                    () = cancel.cancelled() => return,
                    lookup = tokio::time::timeout(
                        Duration::from_secs(10),
                        tokio::net::lookup_host((name.as_str(), 0)),
                    ) => lookup,
                };
                match lookup {
                    Ok(Ok(found)) => {
                        let mut addresses: Vec<IpAddr> = found.map(|a| a.ip()).collect();
                        addresses.dedup();
                        addresses.truncate(4);
                        let _ = done.try_send((index, addresses));
                    }
                    Ok(Err(err)) => {
                        tracing::warn!(host = %name, %err, "static host does not resolve")
                    }
                    Err(_) => tracing::warn!(host = %name, "static host lookup timed out"),
                }
            });
        }
    }

    /// Copies the state into the shared status. Counters are copied on
    /// every call; the lists only when they changed, since this runs once
    /// per received datagram.
    pub(crate) fn publish(&mut self) {
        let mut status = self.link.status();
        if std::mem::take(&mut self.dirty) {
            status.broadcast_port = self.config.ports[self.port_index];
            status.designated_ports.clone_from(&self.config.ports);
            status.listening = self
                .sockets
                .as_ref()
                .map(|s| s.listening.clone())
                .unwrap_or_default();
            status.interfaces = self.interfaces.iter().map(|i| i.name.clone()).collect();
            status.announced.clone_from(&self.machine.local().addresses);
            status.heard = self.machine.peers().map(|p| p.peer_id).collect();
        }
        let stats = self.machine.stats();
        status.stats = stats;
        status.denied = stats.denied;
        status.datagrams_sent = self.sent;
        status.datagrams_received = self.counters.received.load(Ordering::Relaxed);
        status.datagrams_dropped = self.counters.dropped.load(Ordering::Relaxed);
        status.send_errors = self.send_errors;
        status.settled = self.settled;
        status.passive = self.passive;
    }
}

/// Whether `ip` is inside `network/prefix` (same family only).
fn in_subnet(ip: IpAddr, network: IpAddr, prefix: u8) -> bool {
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// Link-local IPv6 addresses need the interface they were heard on.
fn scoped(addr: SocketAddr, source: SocketAddr, interface: u32) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) if v6.ip().is_unicast_link_local() => {
            let scope = match source {
                SocketAddr::V6(s) if s.ip() == v6.ip() && s.scope_id() != 0 => s.scope_id(),
                _ => interface,
            };
            SocketAddr::V6(SocketAddrV6::new(*v6.ip(), v6.port(), 0, scope))
        }
        other => other,
    }
}

/// The addresses to announce: what the listener accepts on, global ones
/// first, then IPv4, then other IPv6, link-local last.
fn announced_addresses(interfaces: &[LocalInterface], listen_ip: IpAddr) -> Vec<IpAddr> {
    if !listen_ip.is_unspecified() {
        return vec![listen_ip];
    }
    let v4_only = listen_ip.is_ipv4();
    let mut ranked: Vec<(u8, IpAddr)> = interfaces
        .iter()
        .flat_map(|i| i.addresses.iter())
        .filter(|a| !(v4_only && a.ip.is_ipv6()))
        .map(|a| {
            let rank = match a.ip {
                _ if a.global => 0,
                IpAddr::V4(_) => 1,
                IpAddr::V6(v6) if !v6.is_unicast_link_local() => 2,
                IpAddr::V6(_) => 3,
            };
            (rank, a.ip)
        })
        .collect();
    ranked.sort();
    ranked.dedup_by_key(|(_, ip)| *ip);
    ranked
        .into_iter()
        .map(|(_, ip)| ip)
        .take(MAX_ANNOUNCE_ADDRESSES)
        .collect()
}
