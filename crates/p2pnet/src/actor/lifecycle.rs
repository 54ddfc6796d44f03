//! A channel's life from handshake to close: the access list after the
//! handshake, the duplicate rule, admission (open, wait for approval, or
//! refuse), opening, closing, and what the actor settles when it ends.

use std::net::SocketAddr;

use p2pnet_proto::packet::{Disconnect, DisconnectReason};
use p2pnet_proto::{
    ChannelEvent, ChannelState, CloseReason, Decision, Direction, GrantId, PacketKind, PeerId,
    Scopes,
};

use super::Actor;
use crate::admission::{self, Facts, Intent, Verdict};
use crate::approvals::PendingPeer;
use crate::channels::Bind;
use crate::command::Command;
use crate::error::Error;
use crate::event::{NetworkEvent, TransferDirection};
use crate::handler::guarded;
use crate::hooks;
use crate::peers::{Origin, PeerSource};

impl Actor {
    /// Handles every queued channel event. Returns whether there was any.
    pub(super) async fn process_events(&mut self) -> bool {
        let mut any = false;
        while let Some(event) = self.channel.poll_event() {
            any = true;
            match event {
                ChannelEvent::HandshakeComplete { peer_id, hello } => {
                    self.connect_time = Some(self.connecting_since.elapsed());
                    self.on_authenticated(peer_id, hello.listening_port);
                }
                ChannelEvent::AwaitingApproval => self.on_awaiting_approval(),
                ChannelEvent::Opened { scopes } => self.on_opened(scopes),
                ChannelEvent::GrantsExpired { expired, scopes } => {
                    self.on_grants_expired(&expired, scopes);
                }
                ChannelEvent::Packet(packet) => self.dispatch(packet).await,
                ChannelEvent::PacketRefused { kind, reason } => {
                    if let Some(peer) = self.peer {
                        tracing::debug!(%kind, ?reason, "packet refused by the trust gate");
                        self.ctx
                            .events
                            .emit(NetworkEvent::PacketRefused { peer, kind, reason });
                    }
                }
                ChannelEvent::Writable => {}
                ChannelEvent::Closed { reason, by_remote } => self.on_closed(reason, by_remote),
            }
        }
        any
    }

    fn on_authenticated(&mut self, peer: PeerId, listening_port: Option<u16>) {
        self.peer = Some(peer);
        tracing::Span::current().record("peer", tracing::field::display(peer.short()));
        let now = self.ctx.clock.now();
        let direction = self.channel.direction();
        if peer == self.ctx.local_id {
            self.refuse(None, "connected to itself", DisconnectReason::Duplicate);
            return;
        }
        if let Decision::Deny(reason) =
            self.ctx
                .access
                .decide(Some(&peer), self.addr.ip(), direction)
        {
            tracing::info!(?reason, "peer denied by the access list");
            self.refuse(
                Some(peer),
                &format!("{reason:?}"),
                DisconnectReason::Blocked,
            );
            return;
        }
        match self.ctx.channels.bind(self.id, peer, self.ctx.local_id) {
            Bind::Bound => {}
            Bind::Duplicate => {
                tracing::debug!("a channel to this peer exists already");
                let _ = self
                    .channel
                    .reject(now, Disconnect::new(DisconnectReason::Duplicate));
                return;
            }
            Bind::Replaces(old) => {
                let close = Command::Close(Disconnect::new(DisconnectReason::Duplicate));
                if let Err(tokio::sync::mpsc::error::TrySendError::Full(close)) =
                    old.try_send(close)
                {
                    drop(self.ctx.tracker.spawn(async move {
                        let _ = old.send(close).await;
                    }));
                }
            }
        }
        // The address we dialled, or the one it connected from with the
        // port it listens on: both seen on this authenticated connection.
        let (addr, source) = match (direction, self.intent) {
            (Direction::Outbound, Intent::Discovery) => (
                Some(self.addr),
                PeerSource::Discovery {
                    via: p2pnet_proto::discovery::DiscoveryVia::Unicast,
                },
            ),
            (Direction::Outbound, Intent::Scanned) => (Some(self.addr), PeerSource::Widescan),
            (Direction::Outbound, _) => (Some(self.addr), PeerSource::Manual),
            (Direction::Inbound, _) => (
                listening_port.map(|port| SocketAddr::new(self.addr.ip(), port)),
                PeerSource::Inbound,
            ),
        };
        self.ctx
            .peers
            .observe(peer, addr.map(|a| (a, Origin::Proven)), source);
        self.ctx
            .channels
            .set_state(self.id, ChannelState::PendingApproval);
    }

    fn refuse(&mut self, peer: Option<PeerId>, reason: &str, code: DisconnectReason) {
        let now = self.ctx.clock.now();
        let _ = self.channel.reject(now, Disconnect::new(code));
        if self.channel.direction() == Direction::Inbound {
            self.ctx.events.emit(NetworkEvent::ConnectionRefused {
                addr: self.addr,
                peer,
                reason: reason.to_owned(),
            });
        }
    }

    fn on_awaiting_approval(&mut self) {
        let (Some(peer), ChannelState::PendingApproval) = (self.peer, self.channel.state()) else {
            return;
        };
        let (awaiting, awaiting_from_source) = self.ctx.channels.awaiting(self.id);
        let facts = Facts {
            intent: self.intent,
            decision: self.ctx.peers.decision(&peer),
            policy: self.ctx.access.admission(),
            initial: self.ctx.access.initial_scopes(),
            allow_listed: self.ctx.access.allow_listed(&peer),
            awaiting,
            awaiting_from_source,
        };
        match admission::after_handshake(facts, &self.ctx.config.limits) {
            Verdict::Open { base, remember } => {
                if remember {
                    self.ctx.peers.approve(&peer, base, "application");
                }
                self.open_with_grants(peer);
            }
            Verdict::Refuse(why) => {
                tracing::info!(why, "approval wait refused");
                let now = self.ctx.clock.now();
                let _ = self.channel.reject(
                    now,
                    Disconnect::with_message(DisconnectReason::TooManyConnections, why),
                );
            }
            Verdict::Wait { queue, event } => {
                let pending = PendingPeer {
                    peer,
                    addr: self.addr,
                    since: std::time::SystemTime::now(),
                    channel: self.id,
                };
                match self.ctx.hooks.ask_approval(&pending) {
                    Some(hooks::Verdict::Approve(trust)) => {
                        self.ctx.peers.approve(&peer, trust.into(), "approval hook");
                        self.open_with_grants(peer);
                    }
                    Some(hooks::Verdict::Reject) => {
                        self.ctx.peers.reject(&peer);
                        let now = self.ctx.clock.now();
                        let _ = self
                            .channel
                            .reject(now, Disconnect::new(DisconnectReason::Rejected));
                    }
                    None => {
                        if queue && !self.ctx.approvals.enqueue(pending) {
                            let now = self.ctx.clock.now();
                            let _ = self.channel.reject(
                                now,
                                Disconnect::with_message(
                                    DisconnectReason::TooManyConnections,
                                    "approval queue full",
                                ),
                            );
                            return;
                        }
                        if event {
                            self.ctx.events.emit(NetworkEvent::ApprovalRequested {
                                peer,
                                addr: self.addr,
                            });
                        }
                        // A discovery dial is done once its channel waits:
                        // it must not hold a dial slot for the approval
                        // timeout.
                        if self.intent.is_discovery()
                            && let Some(opened) = self.opened.take()
                        {
                            let _ = opened.send(Ok(peer));
                        }
                    }
                }
            }
        }
    }

    /// Opens the channel, gated by the peer's grants as KnownPeers holds
    /// them (or the policy's default when it has no base grant).
    fn open_with_grants(&mut self, peer: PeerId) {
        let grants =
            self.ctx
                .peers
                .channel_grants(&peer, self.ctx.access.initial_scopes(), &self.ctx.clock);
        let _ = self.channel.approve(grants);
    }

    /// The application approved the peer (`Command::Approve`): open with
    /// what it recorded in KnownPeers, unless it changed its mind since.
    pub(super) fn on_approved(&mut self) {
        let Some(peer) = self.peer else { return };
        if self.ctx.peers.decision(&peer) == crate::peers::Decision::Approved {
            self.open_with_grants(peer);
        }
    }

    fn on_opened(&mut self, scopes: Scopes) {
        let Some(peer) = self.peer else { return };
        tracing::info!(%scopes, "channel open");
        self.ctx
            .channels
            .set_state(self.id, ChannelState::Open { scopes });
        self.ctx.approvals.settle(self.id);
        self.ctx.events.emit(NetworkEvent::ChannelOpened {
            peer,
            addr: self.addr,
            direction: self.channel.direction(),
            scopes,
        });
        if let Some(opened) = self.opened.take() {
            let _ = opened.send(Ok(peer));
        }
        if scopes.contains(Scopes::FILE) {
            self.resume_interrupted_transfers(peer);
        }
    }

    /// The peer's grants changed in KnownPeers (`Command::GrantsChanged`):
    /// read them and apply them to the channel.
    pub(super) fn on_grants_changed(&mut self) {
        let Some(peer) = self.peer else { return };
        if !matches!(self.channel.state(), ChannelState::Open { .. }) {
            return;
        }
        let before = self.scopes();
        let grants =
            self.ctx
                .peers
                .channel_grants(&peer, self.ctx.access.initial_scopes(), &self.ctx.clock);
        if self
            .channel
            .set_grants(self.ctx.clock.now(), grants)
            .is_err()
        {
            return;
        }
        let scopes = self.scopes();
        if scopes != before {
            self.scopes_changed(peer, scopes);
        }
        if scopes.contains(Scopes::FILE) && !before.contains(Scopes::FILE) {
            self.resume_interrupted_transfers(peer);
        }
    }

    /// The core expired some of the channel's grants at their instant.
    fn on_grants_expired(&mut self, expired: &[GrantId], scopes: Scopes) {
        let Some(peer) = self.peer else { return };
        tracing::info!(?expired, %scopes, "grants expired");
        // The table's deadlines are the core's: this drops the same grants
        // and reports them.
        self.ctx.peers.expire(&peer);
        self.scopes_changed(peer, scopes);
    }

    fn scopes_changed(&mut self, peer: PeerId, scopes: Scopes) {
        self.ctx
            .channels
            .set_state(self.id, ChannelState::Open { scopes });
        self.ctx
            .events
            .emit(NetworkEvent::ScopesChanged { peer, scopes });
        self.wind_down_transfers(peer);
    }

    /// What the channel lets through now.
    pub(super) fn scopes(&self) -> Scopes {
        self.channel
            .permissions()
            .map_or(Scopes::NONE, |permissions| permissions.scopes)
    }

    /// Re-offers files whose transfer to `peer` a lost channel interrupted;
    /// the receiver resumes from its partial file.
    fn resume_interrupted_transfers(&self, peer: PeerId) {
        let paths = self.ctx.transfers.take_interrupted(&peer);
        if paths.is_empty() {
            return;
        }
        let network = self.ctx.network.clone();
        self.ctx.tracker.spawn(async move {
            for path in paths {
                tracing::info!(%peer, path = %path.display(), "re-offering an interrupted transfer");
                if let Err(err) = network.send_file(peer, &path).await {
                    tracing::warn!(%peer, path = %path.display(), %err, "cannot re-offer");
                }
            }
        });
    }

    fn on_closed(&mut self, reason: CloseReason, by_remote: bool) {
        tracing::info!(?reason, by_remote, "channel closed");
        self.ctx.channels.set_state(self.id, ChannelState::Closed);
        self.ctx.approvals.settle(self.id);
        if let Some(opened) = self.opened.take() {
            let _ = opened.send(Err(reason.clone()));
        }
        if let (true, Some(peer), CloseReason::Disconnect(disconnect)) =
            (by_remote, self.peer, &reason)
        {
            let handlers = self.ctx.hooks.handlers.clone();
            let ctx = self.context(peer);
            let disconnect = disconnect.clone();
            guarded(&ctx, PacketKind::Disconnect, || {
                handlers.disconnect.handle(&ctx, disconnect)
            });
        }
        self.ctx.events.emit(NetworkEvent::ChannelClosed {
            peer: self.peer,
            addr: self.addr,
            reason,
            by_remote,
        });
    }

    /// Unregisters the channel, settles what it leaves behind and reports
    /// its end to whoever waits on it.
    pub(super) async fn finish(mut self) {
        self.ctx.channels.remove(self.id);
        self.ctx.approvals.settle(self.id);
        if let Some(opened) = self.opened.take() {
            let _ = opened.send(Err(CloseReason::ConnectionLost));
        }
        if let Some((_, Some(reply))) = self.stalled.take() {
            let _ = reply.send(Err(Error::ChannelClosed));
        }
        self.commands.close();
        while let Ok(command) = self.commands.try_recv() {
            match command {
                Command::Send {
                    reply: Some(reply), ..
                } => {
                    let _ = reply.send(Err(Error::ChannelClosed));
                }
                Command::SendFile { file, reply } => {
                    if let Some(peer) = self.peer {
                        self.ctx.transfers.interrupted_send(peer, file.path);
                    }
                    let _ = reply.send(Err(Error::ChannelClosed));
                }
                _ => {}
            }
        }
        let Some(peer) = self.peer else { return };
        for (id, outgoing) in std::mem::take(&mut self.outgoing) {
            self.ctx.transfers.interrupted_send(peer, outgoing.path);
            self.emit_failed(
                peer,
                id,
                TransferDirection::Outgoing,
                "the channel closed".into(),
            );
        }
        for (id, incoming) in std::mem::take(&mut self.incoming) {
            // The partial file must be complete on disk before anyone hears
            // of the failure: a resume reads its length.
            incoming.suspend().await;
            self.emit_failed(
                peer,
                id,
                TransferDirection::Incoming,
                "the channel closed".into(),
            );
        }
        // Internal signals, after the channel left the table: the
        // persistent peer's reconnect loop, and discovery (which prunes a
        // peer that went quiet once its channel is gone). A full report
        // queue only delays pruning until the peer's next expiry check.
        self.ctx.persistent.channel_ended(&peer);
        if let Some(reports) = &self.ctx.discovery_reports {
            let _ = reports.try_send(peer);
        }
    }
}
