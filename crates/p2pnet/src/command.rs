//! What the network asks of one channel actor, through its bounded queue.

use p2pnet_proto::packet::{Disconnect, Packet, TransferId};
use p2pnet_proto::{CloseReason, PeerId};
use tokio::sync::oneshot;

use crate::error::Error;
use crate::perf::{PerfReport, PerfRequest};
use crate::transfer_io::PreparedFile;

/// A request to a channel actor.
#[derive(Debug)]
pub(crate) enum Command {
    // Boxed payloads keep `Command` small: every channel's queue allocates
    // a block of slots up front, and 10,000 idle channels pay for it.
    /// Queue a packet; answer once it is queued or refused.
    Send {
        packet: Box<Packet>,
        reply: Option<SendReply>,
    },
    /// The peer was approved: read its grants from KnownPeers and open.
    Approve,
    /// The peer was rejected.
    Reject(Disconnect),
    /// The peer's grants changed: read them from KnownPeers and apply
    /// them. No payload: the table is the truth, so concurrent changes
    /// cannot land out of order.
    GrantsChanged,
    /// Close with this Disconnect.
    Close(Disconnect),
    /// Run a speed test.
    Perf {
        request: PerfRequest,
        reply: oneshot::Sender<Result<PerfReport, Error>>,
    },
    /// Offer a prepared file.
    SendFile {
        file: Box<PreparedFile>,
        reply: oneshot::Sender<Result<TransferId, Error>>,
    },
}

/// Answers a `send` call once its packet is queued or refused.
pub(crate) type SendReply = oneshot::Sender<Result<(), Error>>;

/// Tells a dial how its channel ended up: open to this peer, or closed.
pub(crate) type OpenedTx = oneshot::Sender<Result<PeerId, CloseReason>>;
