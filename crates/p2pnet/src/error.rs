//! The crate's one error type.

use std::net::SocketAddr;
use std::path::PathBuf;

use p2pnet_proto::{DenyReason, PeerId};

/// Every error the runtime returns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The protocol core refused an operation (not permitted at this trust
    /// level, invalid packet, invalid state...).
    #[error(transparent)]
    Protocol(#[from] p2pnet_proto::Error),

    /// A socket or file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// A builder value is out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),

    /// The identity file exists but cannot be used.
    #[error("identity file {path}: {reason}")]
    Identity {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The access list denies this peer or address.
    #[error("access denied: {0:?}")]
    Denied(DenyReason),

    /// A configured or protocol limit is reached (its name, and what to do).
    #[error("limit reached: {0}")]
    LimitReached(&'static str),

    /// No channel to this peer is open.
    #[error("no open channel to peer {0}")]
    NotConnected(PeerId),

    /// No channel to this peer is waiting for approval.
    #[error("peer {0} is not awaiting approval")]
    NotPending(PeerId),

    /// The peer is not in the known-peers table.
    #[error("unknown peer {0}")]
    UnknownPeer(PeerId),

    /// Connecting timed out or the channel closed before it opened.
    #[error("connection to {addr} failed: {reason}")]
    ConnectFailed {
        /// The address dialed.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },

    /// A speed test did not finish: refused, cancelled, or broken by the
    /// peer.
    #[error("speed test failed: {0}")]
    Perf(#[from] p2pnet_proto::perf::PerfFailure),

    /// The peer's protocol version has no speed test.
    #[error("the peer speaks protocol version {0}, which has no speed test")]
    PerfUnsupported(u8),

    /// A speed test did not finish in its time.
    #[error("speed test timed out")]
    PerfTimedOut,

    /// The channel closed while the operation was in flight.
    #[error("the channel closed")]
    ChannelClosed,

    /// The network is shutting down or shut down.
    #[error("the network is shut down")]
    Shutdown,

    /// Discovery was not enabled for this network.
    #[error("discovery is off (enable it with PeerNetworkBuilder::discovery)")]
    DiscoveryOff,

    /// No routine has this name.
    #[error("no routine named {0:?}")]
    UnknownRoutine(String),

    /// A routine with this name exists already.
    #[error("a routine named {0:?} exists already")]
    DuplicateRoutine(String),

    /// A file cannot be offered (not a regular file, name not usable...).
    #[error("cannot send {path}: {reason}")]
    InvalidFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
