//! Packets to their handlers, commands from the network, and the sends
//! that wait for buffer space.

use p2pnet_proto::PeerId;
use p2pnet_proto::packet::{DataTransmission, Packet};

use super::Actor;
use crate::command::{Command, SendReply};
use crate::error::Error;
use crate::handler::{PacketContext, guarded};

impl Actor {
    pub(super) fn context(&self, peer: PeerId) -> PacketContext<'_> {
        PacketContext {
            peer,
            addr: self.addr,
            scopes: self.scopes(),
            network: &self.ctx.network,
            events: &self.ctx.events,
            peers: &self.ctx.peers,
            replies: std::cell::RefCell::default(),
        }
    }

    pub(super) async fn dispatch(&mut self, packet: Packet) {
        let Some(peer) = self.peer else { return };
        self.ctx.channels.touch(self.id);
        let kind = packet.kind();
        let handlers = self.ctx.hooks.handlers.clone();
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
            Packet::Perf(perf) => {
                drop(ctx);
                self.on_perf(peer, perf);
                return;
            }
            // Handled inside the channel; never delivered.
            Packet::Disconnect(_) | Packet::Keepalive(_) => {}
        }
        for reply in ctx.replies.into_inner() {
            self.send_or_hold(reply);
        }
    }

    pub(super) fn handle_command(&mut self, command: Command) {
        let now = self.ctx.clock.now();
        match command {
            Command::Send { packet, reply } => self.try_send(*packet, reply),
            Command::Approve => self.on_approved(),
            Command::Reject(disconnect) => {
                let _ = self.channel.reject(now, disconnect);
            }
            Command::GrantsChanged => self.on_grants_changed(),
            Command::Close(disconnect) => self.channel.close(now, disconnect),
            Command::SendFile { file, reply } => self.start_outgoing(*file, reply),
            Command::Perf { request, reply } => self.start_perf(request, reply),
        }
    }

    fn try_send(&mut self, packet: Packet, reply: Option<SendReply>) {
        if !self.can_queue() {
            self.stalled = Some((packet, reply));
            return;
        }
        let result = self.channel.send(packet);
        if result.is_ok() {
            self.ctx.channels.touch(self.id);
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
        pending == 0 || pending + largest <= self.ctx.config.channel.send_buffer_limit
    }

    /// Retries held control messages, then the stalled send, once the
    /// channel's buffer has room.
    pub(super) fn retry_held(&mut self) -> bool {
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
    pub(super) fn send_or_hold(&mut self, packet: Packet) {
        if !self.backlog.is_empty() || !self.can_queue() {
            self.backlog.push_back(packet);
        } else if let Err(err) = self.channel.send(packet) {
            tracing::debug!(%err, "packet not sent");
        }
    }

    pub(super) fn has_room(&self) -> bool {
        self.backlog.is_empty()
            && self.stalled.is_none()
            && self.channel.pending_send_bytes() < self.ctx.config.channel.send_buffer_limit / 2
    }
}
