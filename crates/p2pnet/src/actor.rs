//! The channel actor: one task per connection driving one protocol
//! [`Channel`] over one TCP stream.
//!
//! The actor owns the socket, the channel, its transfers and the receiving
//! end of a bounded command queue. Its loop first does every piece of work
//! that is ready without waiting (hand transmits to the write buffer,
//! process channel events, retry held sends, read the next file chunks),
//! then waits for whichever comes first: the socket is readable, the write
//! buffer can be flushed, a command, the channel's next timer, or
//! cancellation. Reads and writes are separate `select!` branches, so a peer
//! that stops reading can never stop us from reading (no write/write
//! deadlock), and everything the actor holds is bounded:
//!
//! * the write buffer, by [`WRITE_BUFFER`] (further data waits inside the
//!   channel, bounded by its `send_buffer_limit`);
//! * the read buffer, between [`MIN_READ_BUFFER`] and [`MAX_READ_BUFFER`],
//!   shrinking back when the channel goes idle (10,000 idle channels must
//!   stay cheap);
//! * queued commands, by the channel's queue capacity: senders wait
//!   (backpressure) while the channel's send buffer is full.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use p2pnet_proto::packet::{
    DataTransmission, Disconnect, DisconnectReason, FileCancel, FileMessage, FileOffer, Packet,
    TransferId,
};
use p2pnet_proto::transfer::{FileSender, max_chunk_size_for_frame};
use p2pnet_proto::{
    Admission, Channel, ChannelEvent, ChannelState, CloseReason, Decision, Direction, PacketKind,
    PeerId, TrustLevel,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::error::Error;
use crate::event::{NetworkEvent, TransferDirection};
use crate::handler::{FileDecision, FileOfferInfo, PacketContext, guarded, panic_message};
use crate::known_peers::PeerSource;
use crate::network::{PeerNetwork, PendingPeer, Shared, Verdict};
use crate::registry::{Bind, ChannelId};
use crate::transfer_io::{Incoming, Outgoing, PreparedFile};

/// Bytes gathered from the channel per socket write.
pub(crate) const WRITE_BUFFER: usize = 256 * 1024;
/// The read buffer of an idle channel.
pub(crate) const MIN_READ_BUFFER: usize = 2 * 1024;
/// The read buffer of a busy channel.
pub(crate) const MAX_READ_BUFFER: usize = 128 * 1024;
/// Held transfer messages and handler replies beyond which reading pauses.
const MAX_BACKLOG: usize = 64;
/// Time a closed channel gets to flush its final Disconnect.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// What the network asks of a channel.
#[derive(Debug)]
pub(crate) enum Command {
    // Boxed payloads keep `Command` small: every channel's queue allocates
    // a block of slots up front, and 10,000 idle channels pay for it.
    Send {
        packet: Box<Packet>,
        reply: Option<SendReply>,
    },
    Approve(TrustLevel),
    Reject(Disconnect),
    SetTrust(TrustLevel),
    Close(Disconnect),
    SendFile {
        file: Box<PreparedFile>,
        reply: oneshot::Sender<Result<TransferId, Error>>,
    },
}

/// Answers a `send` call once its packet is queued or refused.
pub(crate) type SendReply = oneshot::Sender<Result<(), Error>>;

/// Tells a `connect` call how its channel ended up.
pub(crate) type OpenedTx = oneshot::Sender<Result<PeerId, CloseReason>>;

pub(crate) struct Actor {
    shared: Arc<Shared>,
    network: PeerNetwork,
    id: ChannelId,
    addr: SocketAddr,
    channel: Channel,
    commands: mpsc::Receiver<Command>,
    cancel: CancellationToken,
    opened: Option<OpenedTx>,
    peer: Option<PeerId>,
    /// A send that met a full channel buffer; commands wait behind it.
    stalled: Option<(Packet, Option<SendReply>)>,
    /// Small transfer control messages that met a full buffer.
    backlog: VecDeque<Packet>,
    outgoing: HashMap<TransferId, Outgoing>,
    incoming: HashMap<TransferId, Incoming>,
    shutting_down: bool,
}

impl Actor {
    pub(crate) fn new(
        shared: Arc<Shared>,
        id: ChannelId,
        addr: SocketAddr,
        channel: Channel,
        commands: mpsc::Receiver<Command>,
        opened: Option<OpenedTx>,
    ) -> Self {
        Self {
            network: PeerNetwork::internal(shared.clone()),
            cancel: shared.cancel.child_token(),
            shared,
            id,
            addr,
            channel,
            commands,
            opened,
            peer: None,
            stalled: None,
            backlog: VecDeque::new(),
            outgoing: HashMap::new(),
            incoming: HashMap::new(),
            shutting_down: false,
        }
    }

    pub(crate) async fn run(self, stream: TcpStream) {
        let span = tracing::info_span!(
            "channel",
            id = self.id,
            addr = %self.addr,
            direction = ?self.channel.direction(),
            peer = tracing::field::Empty,
        );
        self.drive(stream).instrument(span).await;
    }

    async fn drive(mut self, stream: TcpStream) {
        let (mut reader, mut writer) = stream.into_split();
        let mut read_buf = vec![0u8; MIN_READ_BUFFER];
        let mut out: Vec<u8> = Vec::new();
        let mut written = 0usize;
        let mut read_open = true;
        let mut write_dead = false;
        let mut flush_deadline: Option<tokio::time::Instant> = None;
        loop {
            // Everything that is ready without waiting.
            loop {
                let mut progressed = false;
                if written == out.len() || write_dead {
                    out.clear();
                    written = 0;
                    while out.len() < WRITE_BUFFER {
                        let Some(bytes) = self.channel.poll_transmit() else {
                            break;
                        };
                        if !write_dead {
                            out.extend_from_slice(&bytes);
                        }
                        progressed = true;
                    }
                    if write_dead {
                        out.clear();
                    }
                }
                progressed |= self.process_events().await;
                progressed |= self.retry_held();
                progressed |= self.pump_transfers().await;
                if !progressed {
                    break;
                }
            }
            if self.channel.is_closed() {
                if self.channel.is_drained() && (written == out.len() || write_dead) {
                    break;
                }
                let deadline = *flush_deadline
                    .get_or_insert_with(|| tokio::time::Instant::now() + FLUSH_TIMEOUT);
                if tokio::time::Instant::now() >= deadline {
                    break;
                }
            }
            let timer = self
                .channel
                .poll_timeout()
                .map(|at| self.shared.clock.deadline(at))
                .into_iter()
                .chain(flush_deadline)
                .min();
            let accept_commands = self.stalled.is_none() && !self.channel.is_closed();
            tokio::select! {
                () = self.cancel.cancelled(), if !self.shutting_down => {
                    self.shutting_down = true;
                    let now = self.shared.clock.now();
                    self.channel.close(now, Disconnect::new(DisconnectReason::Shutdown));
                }
                result = writer.write(&out[written..]), if written < out.len() && !write_dead => {
                    match result {
                        Ok(n) if n > 0 => written += n,
                        Ok(_) | Err(_) => {
                            write_dead = true;
                            self.channel.handle_eof();
                        }
                    }
                }
                // While replies wait for buffer space, stop reading: a peer
                // that sends without reading cannot grow the backlog.
                result = reader.read(&mut read_buf), if read_open && self.backlog.len() < MAX_BACKLOG => {
                    match result {
                        Ok(0) | Err(_) => {
                            read_open = false;
                            self.channel.handle_eof();
                        }
                        Ok(n) => {
                            let now = self.shared.clock.now();
                            // An error has already closed the channel and
                            // queued its Closed event; nothing else to do.
                            let _ = self.channel.handle_bytes(now, &read_buf[..n]);
                            if n == read_buf.len() && read_buf.len() < MAX_READ_BUFFER {
                                read_buf.resize(read_buf.len() * 2, 0);
                            }
                        }
                    }
                }
                command = self.commands.recv(), if accept_commands => {
                    if let Some(command) = command {
                        self.handle_command(command);
                    }
                }
                () = sleep_until(timer), if timer.is_some() => {
                    self.channel.handle_timeout(self.shared.clock.now());
                    // Timers fire when the channel is quiet: give back the
                    // buffers a burst of traffic grew.
                    if read_buf.len() > MIN_READ_BUFFER {
                        read_buf = vec![0; MIN_READ_BUFFER];
                    }
                    if written == out.len() && out.capacity() > 0 {
                        out = Vec::new();
                        written = 0;
                    }
                }
            }
        }
        if !write_dead {
            let _ = tokio::time::timeout(Duration::from_secs(1), writer.shutdown()).await;
        }
        self.finish().await;
    }

    /// Handles every queued channel event. Returns whether there was any.
    async fn process_events(&mut self) -> bool {
        let mut any = false;
        while let Some(event) = self.channel.poll_event() {
            any = true;
            match event {
                ChannelEvent::HandshakeComplete { peer_id, hello } => {
                    self.on_authenticated(peer_id, hello.listening_port);
                }
                ChannelEvent::AwaitingApproval => self.on_awaiting_approval(),
                ChannelEvent::Opened { trust } => self.on_opened(trust),
                ChannelEvent::Packet(packet) => self.dispatch(packet).await,
                ChannelEvent::PacketRefused { kind, reason } => {
                    if let Some(peer) = self.peer {
                        tracing::debug!(%kind, ?reason, "packet refused by the trust gate");
                        self.shared
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
        let now = self.shared.clock.now();
        let direction = self.channel.direction();
        if peer == self.shared.local_id {
            self.refuse(None, "connected to itself", DisconnectReason::Duplicate);
            return;
        }
        let decision = self
            .shared
            .policy()
            .decide(Some(&peer), self.addr.ip(), direction);
        if let Decision::Deny(reason) = decision {
            tracing::info!(?reason, "peer denied by the access list");
            self.refuse(
                Some(peer),
                &format!("{reason:?}"),
                DisconnectReason::Blocked,
            );
            return;
        }
        let bind = self
            .shared
            .registry()
            .bind_peer(self.id, peer, self.shared.local_id);
        match bind {
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
                if old.try_send(close).is_err() {
                    drop(self.shared.tracker.spawn(async move {
                        let _ = old
                            .send(Command::Close(Disconnect::new(DisconnectReason::Duplicate)))
                            .await;
                    }));
                }
            }
        }
        let (addr, source) = match direction {
            Direction::Outbound => (Some(self.addr), PeerSource::Manual),
            Direction::Inbound => (
                listening_port.map(|port| SocketAddr::new(self.addr.ip(), port)),
                PeerSource::Inbound,
            ),
        };
        self.shared.observe_peer(peer, addr, source);
        self.shared.registry().set_state(
            self.id,
            ChannelState::PendingApproval,
            tokio::time::Instant::now(),
        );
    }

    fn refuse(&mut self, peer: Option<PeerId>, reason: &str, code: DisconnectReason) {
        let now = self.shared.clock.now();
        let _ = self.channel.reject(now, Disconnect::new(code));
        if self.channel.direction() == Direction::Inbound {
            self.shared.emit(NetworkEvent::ConnectionRefused {
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
        let remembered = self.shared.known().get(&peer).and_then(|known| known.trust);
        let admission = match (self.channel.direction(), remembered) {
            (_, Some(trust)) => Admission::Approve(trust),
            (Direction::Outbound, None) => Admission::Approve(self.shared.policy().initial_trust()),
            (Direction::Inbound, None) => self.shared.policy().admission(),
        };
        match admission {
            Admission::Approve(trust) => {
                let _ = self.channel.approve(trust);
            }
            Admission::Defer { queue, event } => {
                let pending = PendingPeer {
                    peer,
                    addr: self.addr,
                    since: std::time::SystemTime::now(),
                };
                let verdict = self.shared.approval_hook.as_ref().and_then(|hook| {
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(&pending)))
                        .unwrap_or_else(|panic| {
                            tracing::error!(error = %panic_message(panic.as_ref()), "approval hook panicked");
                            None
                        })
                });
                match verdict {
                    Some(Verdict::Approve(trust)) => {
                        let _ = self.channel.approve(trust);
                    }
                    Some(Verdict::Reject) => {
                        let now = self.shared.clock.now();
                        let _ = self
                            .channel
                            .reject(now, Disconnect::new(DisconnectReason::Rejected));
                    }
                    None => {
                        if queue && !self.shared.enqueue_approval(pending) {
                            let now = self.shared.clock.now();
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
                            self.shared.emit(NetworkEvent::ApprovalRequested {
                                peer,
                                addr: self.addr,
                            });
                        }
                    }
                }
            }
        }
    }

    fn on_opened(&mut self, trust: TrustLevel) {
        let Some(peer) = self.peer else { return };
        tracing::info!(?trust, "channel open");
        self.shared.registry().set_state(
            self.id,
            ChannelState::Open { trust },
            tokio::time::Instant::now(),
        );
        self.shared.known().set_trust(&peer, Some(trust));
        self.shared.dequeue_approval(&peer);
        self.shared.emit(NetworkEvent::ChannelOpened {
            peer,
            addr: self.addr,
            direction: self.channel.direction(),
            trust,
        });
        if let Some(opened) = self.opened.take() {
            let _ = opened.send(Ok(peer));
        }
        if trust.permits(PacketKind::DataTransmission) {
            self.shared.resume_interrupted_transfers(peer);
        }
    }

    fn on_closed(&mut self, reason: CloseReason, by_remote: bool) {
        tracing::info!(?reason, by_remote, "channel closed");
        self.shared.registry().set_state(
            self.id,
            ChannelState::Closed,
            tokio::time::Instant::now(),
        );
        if let Some(peer) = self.peer {
            self.shared.dequeue_approval(&peer);
        }
        if let Some(opened) = self.opened.take() {
            let _ = opened.send(Err(reason.clone()));
        }
        if let (true, Some(peer), CloseReason::Disconnect(disconnect)) =
            (by_remote, self.peer, &reason)
        {
            let handlers = self.shared.handlers.clone();
            let ctx = self.context(peer);
            let disconnect = disconnect.clone();
            guarded(&ctx, PacketKind::Disconnect, || {
                handlers.disconnect.handle(&ctx, disconnect)
            });
        }
        self.shared.emit(NetworkEvent::ChannelClosed {
            peer: self.peer,
            addr: self.addr,
            reason,
            by_remote,
        });
    }

    fn context(&self, peer: PeerId) -> PacketContext<'_> {
        PacketContext {
            peer,
            addr: self.addr,
            trust: self.channel.trust().unwrap_or(TrustLevel::NONE),
            network: &self.network,
            replies: std::cell::RefCell::default(),
        }
    }

    async fn dispatch(&mut self, packet: Packet) {
        let Some(peer) = self.peer else { return };
        self.shared
            .registry()
            .touch(self.id, tokio::time::Instant::now());
        let kind = packet.kind();
        let handlers = self.shared.handlers.clone();
        let ctx = self.context(peer);
        match packet {
            Packet::PureMessage(message) => {
                guarded(&ctx, kind, || handlers.pure_message.handle(&ctx, message));
            }
            Packet::DataTransmission(DataTransmission::Task(payload)) => {
                guarded(&ctx, kind, || handlers.task.handle(&ctx, payload));
            }
            Packet::DataTransmission(DataTransmission::MiscData(payload)) => {
                guarded(&ctx, kind, || handlers.misc_data.handle(&ctx, payload));
            }
            Packet::Identifier(identifier) => {
                guarded(&ctx, kind, || handlers.identifier.handle(&ctx, identifier));
            }
            Packet::CollectionShare(share) => {
                guarded(&ctx, kind, || handlers.collection_share.handle(&ctx, share));
            }
            Packet::DataTransmission(DataTransmission::File(message)) => {
                drop(ctx);
                // Boxed: the file path's disk futures are large and rare, and
                // would otherwise enlarge every idle channel's task.
                Box::pin(self.on_file_message(peer, message)).await;
                return;
            }
            // Handled inside the channel; never delivered.
            Packet::Disconnect(_) | Packet::Keepalive(_) => {}
        }
        for reply in ctx.replies.into_inner() {
            self.send_or_hold(reply);
        }
    }

    fn handle_command(&mut self, command: Command) {
        let now = self.shared.clock.now();
        match command {
            Command::Send { packet, reply } => self.try_send(*packet, reply),
            Command::Approve(trust) => {
                let _ = self.channel.approve(trust);
            }
            Command::Reject(disconnect) => {
                let _ = self.channel.reject(now, disconnect);
            }
            Command::SetTrust(trust) => {
                if self.channel.set_trust(trust).is_ok()
                    && let Some(peer) = self.peer
                {
                    self.shared.registry().set_state(
                        self.id,
                        ChannelState::Open { trust },
                        tokio::time::Instant::now(),
                    );
                    self.shared.known().set_trust(&peer, Some(trust));
                    self.shared.emit(NetworkEvent::TrustChanged { peer, trust });
                    if trust.permits(PacketKind::DataTransmission) {
                        self.shared.resume_interrupted_transfers(peer);
                    }
                }
            }
            Command::Close(disconnect) => self.channel.close(now, disconnect),
            Command::SendFile { file, reply } => self.start_outgoing(*file, reply),
        }
    }

    fn try_send(&mut self, packet: Packet, reply: Option<SendReply>) {
        if !self.can_queue() {
            self.stalled = Some((packet, reply));
            return;
        }
        let result = self.channel.send(packet);
        if result.is_ok() {
            self.shared
                .registry()
                .touch(self.id, tokio::time::Instant::now());
        }
        if let Some(reply) = reply {
            let _ = reply.send(result.map_err(Error::from));
        }
    }

    /// Whether the channel is sure to accept any frame the peer allows, so
    /// a packet can be handed over by value (no copy kept for a retry).
    fn can_queue(&self) -> bool {
        let pending = self.channel.pending_send_bytes();
        let largest = self
            .channel
            .remote_hello()
            .map_or(p2pnet_proto::codec::MAX_FRAME_SIZE_CEILING, |hello| {
                hello.max_frame_size
            }) as usize
            + p2pnet_proto::codec::FRAME_HEADER_LEN;
        pending == 0 || pending + largest <= self.shared.config.channel.send_buffer_limit
    }

    /// Retries held control messages, then the stalled send, once the
    /// channel's buffer has room.
    fn retry_held(&mut self) -> bool {
        let mut progressed = false;
        while self.can_queue() {
            let Some(packet) = self.backlog.pop_front() else {
                break;
            };
            if let Err(err) = self.channel.send(packet) {
                tracing::debug!(%err, "held packet not sent");
            }
            progressed = true;
        }
        if !self.backlog.is_empty() || (!self.can_queue() && !self.channel.is_closed()) {
            return progressed;
        }
        if let Some((packet, reply)) = self.stalled.take() {
            if self.channel.is_closed() {
                if let Some(reply) = reply {
                    let _ = reply.send(Err(Error::ChannelClosed));
                }
            } else {
                self.try_send(packet, reply);
            }
            progressed = true;
        }
        progressed
    }

    /// Sends a transfer control message or handler reply, holding it (in
    /// order) while the buffer is full.
    fn send_or_hold(&mut self, packet: Packet) {
        if !self.backlog.is_empty() || !self.can_queue() {
            self.backlog.push_back(packet);
        } else if let Err(err) = self.channel.send(packet) {
            tracing::debug!(%err, "packet not sent");
        }
    }

    fn send_file_message(&mut self, message: FileMessage) {
        self.send_or_hold(Packet::DataTransmission(DataTransmission::File(message)));
    }

    fn has_room(&self) -> bool {
        self.backlog.is_empty()
            && self.stalled.is_none()
            && self.channel.pending_send_bytes() < self.shared.config.channel.send_buffer_limit / 2
    }

    fn start_outgoing(
        &mut self,
        file: PreparedFile,
        reply: oneshot::Sender<Result<TransferId, Error>>,
    ) {
        let max_frame = self
            .channel
            .remote_hello()
            .map_or(p2pnet_proto::codec::MIN_MAX_FRAME_SIZE, |hello| {
                hello.max_frame_size
            });
        let chunk_size =
            max_chunk_size_for_frame(max_frame).min(p2pnet_proto::packet::DEFAULT_CHUNK_SIZE);
        let id = self.shared.next_transfer_id();
        let sender = match FileSender::new(id, file.name.clone(), file.size, chunk_size, file.hash)
        {
            Ok(sender) => sender,
            Err(err) => {
                let _ = reply.send(Err(err.into()));
                return;
            }
        };
        let offer = FileMessage::Offer(sender.offer().clone());
        let packet = Packet::DataTransmission(DataTransmission::File(offer));
        if let Err(err) = self.channel.send(packet) {
            let _ = reply.send(Err(err.into()));
            return;
        }
        tracing::info!(transfer = %id, size = file.size, "file offered");
        self.outgoing.insert(id, Outgoing::new(file, sender));
        let _ = reply.send(Ok(id));
    }

    async fn on_file_message(&mut self, peer: PeerId, message: FileMessage) {
        let id = message.transfer_id();
        match message {
            FileMessage::Offer(offer) => self.on_offer(peer, offer).await,
            FileMessage::Accept(accept) => {
                let Some(outgoing) = self.outgoing.get_mut(&id) else {
                    return;
                };
                if let Err(err) = outgoing.sender.handle_accept(&accept) {
                    let cancel = outgoing.sender.cancel(Some(err.to_string()));
                    self.fail_outgoing(peer, id, err.to_string());
                    self.send_file_message(FileMessage::Cancel(cancel));
                } else if accept.resume_from > 0 {
                    tracing::info!(transfer = %id, from = accept.resume_from, "peer resumes the transfer");
                }
            }
            FileMessage::Reject(reject) => {
                self.fail_outgoing(peer, id, format!("rejected: {}", reject.reason));
            }
            FileMessage::Cancel(cancel) => self.on_cancel(peer, cancel).await,
            FileMessage::Chunk(chunk) => {
                let Some(incoming) = self.incoming.get_mut(&id) else {
                    tracing::debug!(transfer = %id, "chunk for an unknown transfer");
                    return;
                };
                match incoming.write(&chunk).await {
                    Ok(()) => {
                        let progress = incoming.receiver.progress();
                        if incoming.progress.due(progress.transferred) {
                            self.shared.emit(NetworkEvent::TransferProgress {
                                peer,
                                transfer: id,
                                direction: TransferDirection::Incoming,
                                transferred: progress.transferred,
                                total: progress.total,
                            });
                        }
                    }
                    Err(reason) => {
                        if let Some(mut incoming) = self.incoming.remove(&id) {
                            let cancel = incoming.receiver.cancel(Some(reason.clone()));
                            self.send_file_message(FileMessage::Cancel(cancel));
                            incoming.suspend().await;
                        }
                        self.emit_failed(peer, id, TransferDirection::Incoming, reason);
                    }
                }
            }
            FileMessage::Done(done) => {
                let Some(incoming) = self.incoming.remove(&id) else {
                    return;
                };
                let resumed_from = incoming.resumed_from;
                match incoming.finish(&done).await {
                    Ok((path, hash)) => {
                        tracing::info!(transfer = %id, path = %path.display(), "file received and verified");
                        self.shared.emit(NetworkEvent::TransferCompleted {
                            peer,
                            transfer: id,
                            direction: TransferDirection::Incoming,
                            path,
                            hash,
                            resumed_from,
                        });
                    }
                    Err(reason) => self.emit_failed(peer, id, TransferDirection::Incoming, reason),
                }
            }
        }
    }

    async fn on_offer(&mut self, peer: PeerId, offer: FileOffer) {
        let id = offer.transfer_id;
        let refuse = |reason: &str| {
            FileMessage::Reject(p2pnet_proto::packet::FileReject {
                transfer_id: id,
                reason: reason.to_owned(),
            })
        };
        let config = &self.shared.config;
        let Some(dir) = config.download_dir.clone() else {
            self.send_file_message(refuse("this peer does not accept files"));
            return;
        };
        if self.incoming.contains_key(&id) {
            self.send_file_message(refuse("duplicate transfer id"));
            return;
        }
        if self.incoming.len() >= config.limits.max_incoming_transfers {
            self.send_file_message(refuse("too many concurrent transfers"));
            return;
        }
        if offer.size > config.max_file_size {
            let reason = format!(
                "file too large ({} bytes, limit {})",
                offer.size, config.max_file_size
            );
            self.send_file_message(refuse(&reason));
            return;
        }
        let info = FileOfferInfo {
            name: offer.name.as_str().to_owned(),
            size: offer.size,
            hash: offer.hash,
        };
        let handlers = self.shared.handlers.clone();
        let ctx = self.context(peer);
        let decision = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            handlers.file_offer.decide(&ctx, &info)
        }))
        .unwrap_or_else(|panic| {
            let error = panic_message(panic.as_ref());
            tracing::error!(%error, "file offer handler panicked");
            self.shared.emit(NetworkEvent::HandlerFailed {
                peer,
                kind: PacketKind::DataTransmission,
                error,
            });
            FileDecision::Reject("the receiver failed to decide".into())
        });
        drop(ctx);
        if let FileDecision::Reject(reason) = decision {
            self.send_file_message(refuse(&reason));
            return;
        }
        let max = self.shared.config.max_file_size;
        match Incoming::start(&dir, &peer, offer, max, &self.shared.partials).await {
            Ok((incoming, accept)) => {
                tracing::info!(transfer = %id, resume_from = accept.resume_from, "file accepted");
                self.incoming.insert(id, incoming);
                self.send_file_message(FileMessage::Accept(accept));
            }
            Err(reason) => {
                tracing::warn!(transfer = %id, %reason, "cannot receive the offered file");
                self.send_file_message(refuse(&reason));
            }
        }
    }

    async fn on_cancel(&mut self, peer: PeerId, cancel: FileCancel) {
        let id = cancel.transfer_id;
        let reason = format!(
            "cancelled by the peer: {}",
            cancel.reason.as_deref().unwrap_or("no reason given")
        );
        if self.outgoing.contains_key(&id) {
            self.fail_outgoing(peer, id, reason);
        } else if let Some(incoming) = self.incoming.remove(&id) {
            // The partial file stays: a later offer of the same content resumes it.
            incoming.suspend().await;
            self.emit_failed(peer, id, TransferDirection::Incoming, reason);
        }
    }

    fn fail_outgoing(&mut self, peer: PeerId, id: TransferId, reason: String) {
        if self.outgoing.remove(&id).is_some() {
            self.emit_failed(peer, id, TransferDirection::Outgoing, reason);
        }
    }

    fn emit_failed(
        &self,
        peer: PeerId,
        id: TransferId,
        direction: TransferDirection,
        reason: String,
    ) {
        tracing::warn!(transfer = %id, ?direction, %reason, "transfer failed");
        self.shared.emit(NetworkEvent::TransferFailed {
            peer,
            transfer: id,
            direction,
            reason,
        });
    }

    /// Reads and queues file chunks while the channel has room, one chunk
    /// per transfer in turn. Returns whether anything was queued.
    async fn pump_transfers(&mut self) -> bool {
        let Some(peer) = self.peer else { return false };
        if self.outgoing.is_empty() || !matches!(self.channel.state(), ChannelState::Open { .. }) {
            return false;
        }
        let mut progressed = false;
        let ids: Vec<TransferId> = self.outgoing.keys().copied().collect();
        for id in ids {
            if !self.has_room() {
                break;
            }
            let Some(outgoing) = self.outgoing.get_mut(&id) else {
                continue;
            };
            let chunk = match Box::pin(outgoing.next_chunk()).await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => {
                    if let Ok(done) = outgoing.sender.done() {
                        let path = outgoing.path.clone();
                        let hash = outgoing.sender.offer().hash;
                        self.outgoing.remove(&id);
                        self.send_file_message(FileMessage::Done(done));
                        self.shared.forget_interrupted(peer, &path);
                        self.shared.emit(NetworkEvent::TransferCompleted {
                            peer,
                            transfer: id,
                            direction: TransferDirection::Outgoing,
                            path,
                            hash,
                            resumed_from: 0,
                        });
                        progressed = true;
                    }
                    continue;
                }
                Err(err) => {
                    let cancel = outgoing
                        .sender
                        .cancel(Some("the sender cannot read the file".into()));
                    self.send_file_message(FileMessage::Cancel(cancel));
                    self.fail_outgoing(peer, id, err.to_string());
                    progressed = true;
                    continue;
                }
            };
            let progress = outgoing.sender.progress();
            let report = outgoing.progress.due(progress.transferred);
            let packet =
                Packet::DataTransmission(DataTransmission::File(FileMessage::Chunk(chunk)));
            if let Err(err) = self.channel.send(packet) {
                // Not permitted any more (demoted) or closed: give up; a
                // later channel re-offers it.
                self.fail_outgoing(peer, id, err.to_string());
                continue;
            }
            progressed = true;
            if report {
                self.shared.emit(NetworkEvent::TransferProgress {
                    peer,
                    transfer: id,
                    direction: TransferDirection::Outgoing,
                    transferred: progress.transferred,
                    total: progress.total,
                });
            }
        }
        progressed
    }

    /// Unregisters the channel and settles what it leaves behind.
    async fn finish(mut self) {
        self.shared.registry().remove(self.id);
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
                        self.shared.remember_interrupted(peer, file.path);
                    }
                    let _ = reply.send(Err(Error::ChannelClosed));
                }
                _ => {}
            }
        }
        let Some(peer) = self.peer else { return };
        for (id, outgoing) in std::mem::take(&mut self.outgoing) {
            self.shared.remember_interrupted(peer, outgoing.path);
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
    }
}

/// A close reason in words, for errors.
pub(crate) fn describe(reason: &CloseReason) -> String {
    match reason {
        CloseReason::Disconnect(disconnect) => match &disconnect.message {
            Some(message) => format!("disconnected ({:?}): {message}", disconnect.reason),
            None => format!("disconnected ({:?})", disconnect.reason),
        },
        CloseReason::IdleTimeout => "idle timeout".into(),
        CloseReason::ConnectionLost => "connection lost".into(),
        CloseReason::Error(err) => err.to_string(),
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
