//! The validated settings of a running network, and its [`Limits`].
//! `builder.rs` fills them from the builder's calls.

use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use p2pnet_proto::ChannelConfig;

/// Connection limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Channels in any state. Default 1024.
    pub max_channels: usize,
    /// Inbound channels in any state. Default 512.
    pub max_inbound: usize,
    /// Channels awaiting approval. Peers approved before never wait, and a
    /// peer on the allow-list is not refused for a queue strangers filled.
    /// Default 64.
    pub max_pending: usize,
    /// Inbound channels still handshaking: the bound on what
    /// unauthenticated connections can hold. Default 64.
    pub max_handshakes: usize,
    /// Inbound channels handshaking or awaiting approval from one source
    /// (an IPv4 address or an IPv6 /64), so one host cannot hold every
    /// slot. Default 8.
    pub max_pending_per_source: usize,
    /// Commands queued per channel before senders wait. Default 64.
    pub command_queue: usize,
    /// Known peers remembered. Default 4096. When full, a new peer makes
    /// the stalest sixteenth of those not approved, persistent or granted
    /// anything forgotten at once.
    pub max_known_peers: usize,
    /// Events buffered per subscriber before the oldest are dropped.
    /// Default 1024.
    pub event_buffer: usize,
    /// Bytes of events buffered per subscriber before the oldest are
    /// dropped (received data and messages count with their payload).
    /// Default 16 MiB.
    pub event_buffer_bytes: usize,
    /// Concurrent incoming file transfers per channel. Default 4.
    pub max_incoming_transfers: usize,
    /// Bytes one speed test asked of this node may move each way (the
    /// peer must also hold the `perf` scope); a larger test is refused.
    /// Each channel answers one test at a time. Default 256 MiB.
    pub max_perf_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_channels: 1024,
            max_inbound: 512,
            max_pending: 64,
            max_handshakes: 64,
            max_pending_per_source: 8,
            command_queue: 64,
            max_known_peers: 4096,
            event_buffer: 1024,
            event_buffer_bytes: 16 << 20,
            max_incoming_transfers: 4,
            max_perf_bytes: 256 << 20,
        }
    }
}

/// The validated settings of a running network.
#[derive(Debug)]
pub(crate) struct NetworkConfig {
    pub(crate) listen_ip: IpAddr,
    pub(crate) ports: RangeInclusive<u16>,
    pub(crate) accept_inbound: bool,
    pub(crate) limits: Limits,
    pub(crate) channel: Arc<ChannelConfig>,
    pub(crate) connect_timeout: Duration,
    pub(crate) approval_timeout: Duration,
    pub(crate) idle_channel_timeout: Option<Duration>,
    pub(crate) reconnect_min: Duration,
    pub(crate) reconnect_max: Duration,
    pub(crate) download_dir: Option<PathBuf>,
    pub(crate) max_file_size: u64,
    pub(crate) default_routines: bool,
    pub(crate) discern_interval: Duration,
}
