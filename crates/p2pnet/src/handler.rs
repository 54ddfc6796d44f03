//! `PacketHandleProtocol`: one replaceable handler per packet type.
//!
//! Handlers run on the receiving channel's actor, in arrival order, inside
//! `catch_unwind`: an error or a panic is logged and reported as
//! [`NetworkEvent::HandlerFailed`] and the channel keeps serving. Handlers
//! are synchronous so that a slow one slows only its own channel (TCP
//! backpressure then slows the sender); work that must wait on IO belongs
//! in a task the handler spawns, holding the [`PeerNetwork`] handle from
//! [`PacketContext::network`].
//!
//! File transfers are driven by the runtime (chunking, hashing, resume);
//! the application's say is the [`FileOfferHandler`], which consents to or
//! refuses each offered file.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use p2pnet_proto::packet::{
    CollectionShare, ContentHash, DataKind, Disconnect, Identifier, Payload, PureMessage,
};
use p2pnet_proto::{Packet, PacketKind, PeerId, Scopes};

use crate::event::NetworkEvent;
use crate::event_bus::EventBus;
use crate::network::PeerNetwork;
use crate::peers::{Origin, PeerSource, Peers, plausible_peer_address};

/// Replies one handler call may queue with [`PacketContext::reply`].
pub const MAX_REPLIES_PER_PACKET: usize = 16;

/// What a handler returns; the error is reported, never fatal.
pub type HandlerResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Who sent a packet, and a handle to act on the network.
#[derive(Debug)]
pub struct PacketContext<'a> {
    pub(crate) peer: PeerId,
    pub(crate) addr: SocketAddr,
    pub(crate) scopes: Scopes,
    pub(crate) network: &'a PeerNetwork,
    pub(crate) events: &'a EventBus,
    pub(crate) peers: &'a Peers,
    pub(crate) replies: RefCell<Vec<Packet>>,
}

impl PacketContext<'_> {
    /// The sender's authenticated id.
    pub fn peer(&self) -> PeerId {
        self.peer
    }

    /// The sender's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What the channel lets through: the union of the peer's live
    /// grants.
    pub fn scopes(&self) -> Scopes {
        self.scopes
    }

    /// Queues a packet back to the sender on the same channel, sent as soon
    /// as the handler returns (no task, no extra hop: the cheapest way to
    /// answer). At most [`MAX_REPLIES_PER_PACKET`] per call; the trust gate
    /// applies as to any send.
    pub fn reply(&self, packet: impl Into<Packet>) -> Result<(), crate::Error> {
        let mut replies = self.replies.borrow_mut();
        if replies.len() >= MAX_REPLIES_PER_PACKET {
            return Err(crate::Error::LimitReached("replies per packet"));
        }
        replies.push(packet.into());
        Ok(())
    }

    /// The network the packet arrived on. This handle does not keep the
    /// network alive: shutting down or dropping every application handle
    /// still stops it.
    pub fn network(&self) -> &PeerNetwork {
        self.network
    }
}

/// Handles one packet type. Closures `Fn(&PacketContext, P) -> HandlerResult`
/// implement it.
pub trait PacketHandler<P>: Send + Sync + 'static {
    /// Handles `packet` from `ctx.peer()`.
    fn handle(&self, ctx: &PacketContext<'_>, packet: P) -> HandlerResult;
}

impl<P, F> PacketHandler<P> for F
where
    F: Fn(&PacketContext<'_>, P) -> HandlerResult + Send + Sync + 'static,
{
    fn handle(&self, ctx: &PacketContext<'_>, packet: P) -> HandlerResult {
        self(ctx, packet)
    }
}

/// A file a peer offers to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOfferInfo {
    /// The sender's file name (a single safe path component).
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its BLAKE3 hash.
    pub hash: ContentHash,
}

/// The receiver's answer to a file offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileDecision {
    /// Receive it into the download directory.
    Accept,
    /// Refuse it, telling the sender why.
    Reject(String),
}

/// Consents to or refuses offered files. Offers larger than the network's
/// `max_file_size`, or arriving when no download directory is configured,
/// are refused before this is asked. Closures
/// `Fn(&PacketContext, &FileOfferInfo) -> FileDecision` implement it.
pub trait FileOfferHandler: Send + Sync + 'static {
    /// Decides on `offer` from `ctx.peer()`.
    fn decide(&self, ctx: &PacketContext<'_>, offer: &FileOfferInfo) -> FileDecision;
}

impl<F> FileOfferHandler for F
where
    F: Fn(&PacketContext<'_>, &FileOfferInfo) -> FileDecision + Send + Sync + 'static,
{
    fn decide(&self, ctx: &PacketContext<'_>, offer: &FileOfferInfo) -> FileDecision {
        self(ctx, offer)
    }
}

/// The handler table. [`Default`] installs the [`defaults`]; each `on_*`
/// method replaces one handler.
#[derive(Clone)]
pub struct PacketHandlers {
    pub(crate) pure_message: Arc<dyn PacketHandler<PureMessage>>,
    pub(crate) task: Arc<dyn PacketHandler<Payload>>,
    pub(crate) misc_data: Arc<dyn PacketHandler<Payload>>,
    pub(crate) identifier: Arc<dyn PacketHandler<Identifier>>,
    pub(crate) collection_share: Arc<dyn PacketHandler<CollectionShare>>,
    pub(crate) disconnect: Arc<dyn PacketHandler<Disconnect>>,
    pub(crate) file_offer: Arc<dyn FileOfferHandler>,
}

impl std::fmt::Debug for PacketHandlers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketHandlers").finish_non_exhaustive()
    }
}

impl Default for PacketHandlers {
    fn default() -> Self {
        Self {
            pure_message: Arc::new(defaults::pure_message),
            task: Arc::new(defaults::task),
            misc_data: Arc::new(defaults::misc_data),
            identifier: Arc::new(defaults::identifier),
            collection_share: Arc::new(defaults::collection_share),
            disconnect: Arc::new(defaults::disconnect),
            file_offer: Arc::new(defaults::file_offer),
        }
    }
}

impl PacketHandlers {
    /// Replaces the PureMessage handler.
    pub fn on_pure_message(mut self, handler: impl PacketHandler<PureMessage>) -> Self {
        self.pure_message = Arc::new(handler);
        self
    }

    /// Replaces the handler of `DataTransmission::Task` payloads.
    pub fn on_task(mut self, handler: impl PacketHandler<Payload>) -> Self {
        self.task = Arc::new(handler);
        self
    }

    /// Replaces the handler of `DataTransmission::MiscData` payloads.
    pub fn on_misc_data(mut self, handler: impl PacketHandler<Payload>) -> Self {
        self.misc_data = Arc::new(handler);
        self
    }

    /// Replaces the Identifier handler.
    pub fn on_identifier(mut self, handler: impl PacketHandler<Identifier>) -> Self {
        self.identifier = Arc::new(handler);
        self
    }

    /// Replaces the CollectionShare (peer list) handler.
    pub fn on_collection_share(mut self, handler: impl PacketHandler<CollectionShare>) -> Self {
        self.collection_share = Arc::new(handler);
        self
    }

    /// Replaces the handler called when the remote closes with a
    /// Disconnect. The channel closes whatever the handler does.
    pub fn on_disconnect(mut self, handler: impl PacketHandler<Disconnect>) -> Self {
        self.disconnect = Arc::new(handler);
        self
    }

    /// Replaces the file-offer consent handler.
    pub fn on_file_offer(mut self, handler: impl FileOfferHandler) -> Self {
        self.file_offer = Arc::new(handler);
        self
    }
}

/// Runs `f`, turning an error or a panic into a report.
pub(crate) fn guarded(
    ctx: &PacketContext<'_>,
    kind: PacketKind,
    f: impl FnOnce() -> HandlerResult,
) {
    let error = match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => return,
        Ok(Err(err)) => err.to_string(),
        Err(panic) => panic_message(panic.as_ref()),
    };
    tracing::error!(peer = %ctx.peer, %kind, %error, "packet handler failed");
    ctx.events.emit(NetworkEvent::HandlerFailed {
        peer: ctx.peer,
        kind,
        error,
    });
}

pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        format!("panicked: {s}")
    } else if let Some(s) = panic.downcast_ref::<String>() {
        format!("panicked: {s}")
    } else {
        "panicked".to_owned()
    }
}

/// The default handlers. A replacement can call one to keep the default
/// behaviour as well.
pub mod defaults {
    use super::*;

    /// Raises [`NetworkEvent::MessageReceived`].
    pub fn pure_message(ctx: &PacketContext<'_>, message: PureMessage) -> HandlerResult {
        ctx.events.emit(NetworkEvent::MessageReceived {
            peer: ctx.peer,
            text: message.text,
        });
        Ok(())
    }

    /// Raises [`NetworkEvent::DataReceived`] with [`DataKind::Task`].
    pub fn task(ctx: &PacketContext<'_>, payload: Payload) -> HandlerResult {
        emit_data(ctx, DataKind::Task, payload);
        Ok(())
    }

    /// Raises [`NetworkEvent::DataReceived`] with [`DataKind::MiscData`].
    pub fn misc_data(ctx: &PacketContext<'_>, payload: Payload) -> HandlerResult {
        emit_data(ctx, DataKind::MiscData, payload);
        Ok(())
    }

    fn emit_data(ctx: &PacketContext<'_>, kind: DataKind, payload: Payload) {
        ctx.events.emit(NetworkEvent::DataReceived {
            peer: ctx.peer,
            kind,
            label: payload.label,
            data: payload.data,
        });
    }

    /// Records the sender's listening addresses in KnownPeers. Addresses
    /// are hints: the next connection's handshake proves the id.
    pub fn identifier(ctx: &PacketContext<'_>, identifier: Identifier) -> HandlerResult {
        let port = identifier.listening_port;
        // The address the packet came from was seen on the authenticated
        // connection; the others are the peer's claims.
        let seen = SocketAddr::new(ctx.addr.ip(), port);
        let claimed = identifier
            .addresses
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .filter(|addr| *addr != seen && plausible_peer_address(*addr, ctx.addr.ip()));
        for addr in claimed {
            ctx.peers
                .observe(ctx.peer, Some((addr, Origin::Claimed)), PeerSource::Manual);
        }
        if port != 0 {
            ctx.peers
                .observe(ctx.peer, Some((seen, Origin::Proven)), PeerSource::Manual);
        }
        Ok(())
    }

    /// Records the shared peers in KnownPeers (source
    /// [`PeerSource::Shared`]): implausible addresses are dropped, claimed
    /// addresses never displace proven ones, and one sender adds a bounded
    /// number of peers. Connects to no one.
    pub fn collection_share(ctx: &PacketContext<'_>, share: CollectionShare) -> HandlerResult {
        ctx.peers.learn_shared(ctx.peer, ctx.addr, share.peers);
        Ok(())
    }

    /// Raises [`NetworkEvent::Disconnected`].
    pub fn disconnect(ctx: &PacketContext<'_>, disconnect: Disconnect) -> HandlerResult {
        ctx.events.emit(NetworkEvent::Disconnected {
            peer: ctx.peer,
            disconnect,
        });
        Ok(())
    }

    /// Accepts every offer that reached it (size and download directory
    /// were checked before).
    pub fn file_offer(_ctx: &PacketContext<'_>, _offer: &FileOfferInfo) -> FileDecision {
        FileDecision::Accept
    }
}
