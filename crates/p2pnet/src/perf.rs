//! Speed tests between two peers: what an application asks for and what
//! it gets back. The exchange itself is `p2pnet_proto::perf`; the channel
//! actor runs it (`actor/perf.rs`).

use std::time::Duration;

use p2pnet_proto::perf::PerfOutcome;
use p2pnet_proto::{Cipher, PeerId};

/// A speed test to run over an open channel
/// ([`PeerNetwork::perf`](crate::PeerNetwork::perf)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerfRequest {
    /// Bytes to send to the peer.
    pub upload: u64,
    /// Bytes to ask back from it.
    pub download: u64,
    /// How long the whole test may take. Default 60 s.
    pub timeout: Duration,
}

impl PerfRequest {
    /// A test of `upload` bytes up and `download` bytes down.
    pub fn new(upload: u64, download: u64) -> Self {
        Self {
            upload,
            download,
            timeout: Duration::from_secs(60),
        }
    }
}

/// What a speed test measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PerfReport {
    /// The peer tested.
    pub peer: PeerId,
    /// Round trip, and each direction's bytes and time.
    pub outcome: PerfOutcome,
    /// The channel's transport cipher.
    pub cipher: Cipher,
    /// How long the channel took to connect: TCP connect (when this side
    /// dialled) plus the handshake.
    pub connect_time: Option<Duration>,
}
