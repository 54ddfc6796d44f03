//! The discovery task. It owns the sockets and the sans-IO
//! [`Discovery`] machine: receive tasks feed it datagrams, it says what to
//! send, and heard peers become KnownPeers entries and dials.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use p2pnet_proto::discovery::{
    Announce, Destination, Discovery, DiscoveryEvent, DiscoveryVia, MAX_ANNOUNCE_ADDRESSES,
    MAX_ANNOUNCE_LEN,
};
use p2pnet_proto::{Decision, Direction, PeerId};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::DiscoveryContext;
use super::candidates::{self, DialBackoff, DialBudget};
use super::config::{DiscoveryConfig, StaticHost};
use super::sockets::{self, Received};
use crate::admission::Intent;
use crate::discovery_link::{Command, HeardPeerStatus, Link};
use crate::interfaces::{LocalInterface, local_interfaces};
use crate::peers::{Decision as PeerDecision, Origin, PeerSource};

/// How long the peer with the larger id waits for the smaller one to dial
/// before dialing itself (both dialing at once works, but costs a
/// handshake that the duplicate rule then throws away).
const DIAL_GRACE: Duration = Duration::from_millis(1500);
/// Addresses tried per dial.
const MAX_DIAL_CANDIDATES: usize = 8;
/// Received datagrams waiting for the task; more are dropped and counted.
const INBOUND_QUEUE: usize = 512;
/// How often the status's list of heard peers is refreshed at most.
const HEARD_REFRESH: Duration = Duration::from_secs(1);
/// How often names of static hosts are resolved again.
const RESOLVE_INTERVAL: Duration = Duration::from_secs(300);

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
    ctx: DiscoveryContext,
    /// Peers whose channel ended, reported by their actors.
    ended: mpsc::Receiver<PeerId>,
    config: DiscoveryConfig,
    link: Arc<Link>,
    machine: Discovery,
    interfaces: Vec<LocalInterface>,
    sockets: Option<SocketSet>,
    port_index: usize,
    passive: bool,
    dialing: HashSet<PeerId>,
    backoff: DialBackoff,
    budget: DialBudget,
    /// When the status's heard peers were last copied.
    heard_published: Option<tokio::time::Instant>,
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
        ctx: DiscoveryContext,
        ended: mpsc::Receiver<PeerId>,
        config: DiscoveryConfig,
        link: Arc<Link>,
    ) -> crate::Result<Self> {
        let interfaces = local_interfaces();
        let passive = ctx.local_addr.is_none();
        // A node without a listener still listens for announces and dials,
        // but has nothing to announce; its machine gets a placeholder port
        // and its transmits are dropped.
        let ports = match ctx.local_addr {
            Some(addr) => vec![addr.port()],
            None => vec![config.ports[0]],
        };
        let local = Announce {
            reply: false,
            solicit: false,
            peer_id: ctx.local_id,
            instance: rand::random(),
            ports,
            addresses: announced_addresses(&interfaces, ctx.listen_ip),
        };
        let machine = Discovery::new(
            ctx.network_name.clone(),
            local,
            config.params.clone(),
            ctx.clock.now(),
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
            budget: DialBudget::new(tokio::time::Instant::now()),
            heard_published: None,
            ctx,
            ended,
            link,
            machine,
            interfaces,
            sockets: None,
            port_index: 0,
            passive,
            dialing: HashSet::new(),
            backoff: DialBackoff::default(),
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
        let cancel = self.ctx.cancel.clone();
        self.resolve_names();
        tracing::info!(
            ports = ?self.config.ports,
            interfaces = self.interfaces.len(),
            passive = self.passive,
            "discovery started"
        );
        loop {
            self.flush().await;
            let deadline = self.ctx.clock.deadline(self.machine.poll_timeout());
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
                Some(peer) = self.ended.recv() => self.on_channel_closed(peer),
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
                    let addresses = announced_addresses(&self.interfaces, self.ctx.listen_ip);
                    let ports = self.machine.local().ports.clone();
                    let now = self.ctx.clock.now();
                    if let Err(err) = self.machine.set_local(ports, addresses, now) {
                        tracing::warn!(%err, "cannot announce the new addresses");
                    }
                    // A new link has new neighbours, even when the
                    // announced addresses stay the same.
                    self.machine.restart(now);
                }
                self.resolve_names();
            }
            Command::AnnounceNow => self.machine.restart(self.ctx.clock.now()),
        }
    }

    /// (Re)binds every socket for the current interfaces. A failure on one
    /// port or family is logged and the others still work.
    pub(crate) fn open_sockets(&mut self) {
        if let Some(old) = self.sockets.take() {
            old.token.cancel();
        }
        let token = self.ctx.cancel.child_token();
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
        self.ctx.tracker.spawn(async move {
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
        let via = self.via(&received);
        let now = self.ctx.clock.now();
        if received.truncated && received.data.len() <= MAX_ANNOUNCE_LEN {
            // Never valid: make sure the decoder sees it as too long.
            received.data.resize(MAX_ANNOUNCE_LEN + 1, 0);
        }
        // Broadcast and multicast stay on the link: a source outside the
        // link's subnets is forged, and is not answered.
        let may_reply = candidates::may_answer(
            &self.interfaces,
            received.source.ip(),
            via,
            received.interface,
        );
        if via == DiscoveryVia::Unicast {
            self.answer_via.insert(received.source, socket);
        }
        // The access list is checked before anything is answered or
        // remembered.
        let access = self.ctx.access.clone();
        let admit = |announce: &Announce| match access.decide(
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
                // The dial rule follows the reply rule: a forged source
                // we would not answer is not dialled either.
                self.on_heard(event, received.interface, may_reply);
            }
            Ok(None) => {}
            Err(err) => {
                tracing::trace!(source = %received.source, %err, "discovery datagram dropped");
            }
        }
    }

    fn on_heard(&mut self, event: DiscoveryEvent, interface: u32, may_dial: bool) {
        let heard = &event.peer;
        let peer = heard.peer_id;
        if event.new || event.restarted {
            tracing::debug!(%peer, via = ?heard.via, source = %heard.source, restarted = event.restarted, "peer discovered");
        }
        let candidates: Vec<SocketAddr> = heard
            .candidates()
            .filter(|addr| {
                candidates::plausible(
                    &self.interfaces,
                    addr.ip(),
                    heard.source.ip(),
                    heard.via,
                    interface,
                )
            })
            .map(|addr| candidates::scoped(addr, heard.source, interface))
            .take(MAX_DIAL_CANDIDATES)
            .collect();
        let source = PeerSource::Discovery { via: heard.via };
        if self.ctx.peers.learned_otherwise(&peer) {
            // Addresses the application gave or a handshake proved are not
            // pushed out by unauthenticated announces.
            self.ctx.peers.observe(peer, None, source);
        } else {
            // KnownPeers keeps the most recent address last: record the
            // best candidate last.
            for addr in candidates.iter().rev() {
                self.ctx
                    .peers
                    .observe(peer, Some((*addr, Origin::Claimed)), source);
            }
        }
        if may_dial {
            let first_heard = heard.first_heard;
            let source_ip = heard.source.ip();
            self.maybe_dial(peer, source_ip, candidates, first_heard);
        }
    }

    fn maybe_dial(
        &mut self,
        peer: PeerId,
        source: IpAddr,
        candidates: Vec<SocketAddr>,
        first_heard: p2pnet_proto::Instant,
    ) {
        let now = tokio::time::Instant::now();
        if !self.config.auto_connect
            || candidates.is_empty()
            || self.dialing.contains(&peer)
            || self.dialing.len() >= self.config.max_dials
            || self.ctx.channels.has(&peer)
            || !self.backoff.ready(&peer, now)
            // The application said no: only it may dial this peer again.
            || self.ctx.peers.decision(&peer) == PeerDecision::Rejected
        {
            return;
        }
        if self.ctx.local_id > peer && self.ctx.clock.now() - first_heard < DIAL_GRACE {
            return;
        }
        // Addresses a connection proved are dialled freely; the others
        // spend the budget that forged announces cannot exhaust.
        let proven = self
            .ctx
            .peers
            .get(&peer)
            .map(|known| known.proven_addresses)
            .unwrap_or_default();
        let candidates: Vec<SocketAddr> = candidates
            .into_iter()
            .filter(|addr| proven.contains(addr) || self.budget.try_take(source, addr.ip(), now))
            .collect();
        if candidates.is_empty() {
            tracing::debug!(%peer, %source, "discovery dial budget spent; not dialing");
            return;
        }
        self.dialing.insert(peer);
        let dialer = self.ctx.dialer.clone();
        let done = self.dial_tx.clone();
        self.ctx.tracker.spawn(async move {
            let mut connected = false;
            for addr in candidates {
                // Gated like an inbound channel: it may wait for approval.
                match dialer.dial(addr, Some(peer), Intent::Discovery).await {
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
        let still_heard = self.machine.peer(&peer).is_some();
        self.backoff.finished(
            peer,
            connected,
            still_heard,
            tokio::time::Instant::now(),
            rand::random(),
        );
    }

    fn on_channel_closed(&mut self, peer: PeerId) {
        // A peer that went quiet while its channel was still open is
        // pruned once the channel is gone too.
        if self.machine.peer(&peer).is_none() {
            self.ctx.peers.prune_discovered(&peer);
        }
    }

    /// Sends what the machine wants sent, expires quiet peers, recomputes
    /// "settled" and publishes the status.
    async fn flush(&mut self) {
        let now = self.ctx.clock.now();
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
            self.backoff.forget(&peer);
            if !self.ctx.channels.has(&peer) {
                self.ctx.peers.prune_discovered(&peer);
            }
            tracing::debug!(%peer, "discovered peer went quiet");
        }
        // Settled: nothing left for discovery to do. Every heard peer has
        // a channel (open, or waiting for approval), or cannot be dialled
        // now (in backoff), or dialing is the application's business.
        let settled = !self.config.auto_connect
            || self.machine.peers().all(|heard| {
                self.backoff.contains(&heard.peer_id)
                    || self.ctx.channels.is_settled(&heard.peer_id)
            });
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
            let cancel = self.ctx.cancel.clone();
            self.ctx.tracker.spawn(async move {
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
        let now = tokio::time::Instant::now();
        let heard_due = self
            .heard_published
            .is_none_or(|at| now.duration_since(at) >= HEARD_REFRESH);
        let mut status = self.link.status();
        if heard_due || self.dirty {
            self.heard_published = Some(now);
            let core_now = self.ctx.clock.now();
            let wall = std::time::SystemTime::now();
            let when = |at: p2pnet_proto::Instant| wall.checked_sub(core_now - at).unwrap_or(wall);
            status.heard_peers = self
                .machine
                .peers()
                .map(|p| HeardPeerStatus {
                    peer_id: p.peer_id,
                    via: p.via,
                    source: p.source,
                    first_heard: when(p.first_heard),
                    last_heard: when(p.last_heard),
                })
                .collect();
        }
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
