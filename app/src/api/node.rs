//! The embedded peer node as the panel sees it: its summary, and the actions
//! the panel and the terminal share.

use serde::{Deserialize, Serialize};

/// The node in figures (Overview).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeSummary {
    /// The node's peer id (its public key), printable.
    pub peer_id: String,
    /// Where it accepts peer channels.
    pub listen: Vec<String>,
    /// Channels open.
    pub channels_open: u32,
    /// Channels waiting for approval.
    pub channels_pending: u32,
    /// Channels still handshaking.
    pub channels_handshaking: u32,
    /// Peers in KnownPeers.
    pub known_peers: u32,
    /// Peers waiting for the administrator's approval.
    pub pending_approvals: u32,
    /// Bytes sent on every channel since the node started.
    pub bytes_sent: u64,
    /// Bytes received on every channel since the node started.
    pub bytes_received: u64,
    /// LAN discovery, when it runs.
    pub discovery: Option<DiscoverySummary>,
    /// The byte counters of the last minutes, one sample a second, oldest
    /// first: the throughput chart's history (the live stream adds to it).
    pub traffic: Vec<super::TrafficSample>,
}

/// LAN discovery in figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiscoverySummary {
    /// The designated ports.
    pub ports: Vec<u16>,
    /// The port broadcasts go to now.
    pub broadcast_port: u16,
    /// Sockets bound (address:port).
    pub listening: Vec<String>,
    /// Interfaces announced on.
    pub interfaces: Vec<String>,
    /// Datagrams sent.
    pub sent: u64,
    /// Datagrams received.
    pub received: u64,
    /// Datagrams dropped (queue full).
    pub dropped: u64,
    /// Announces refused by the access list.
    pub refused: u64,
    /// Peers heard and not expired.
    pub heard: u32,
    /// Whether every heard peer is connected or backing off.
    pub settled: bool,
}

/// What an administrator can do to the node, from the panel or the
/// terminal. Peers are named by id or any unambiguous prefix of one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum NodeAction {
    /// Approve a peer waiting for approval.
    Approve { peer: String },
    /// Reject a peer waiting for approval.
    Reject { peer: String },
    /// Dial `ADDR` or `ID@ADDR` (the handshake must prove the id).
    Connect { target: String },
    /// Close the channel to a peer.
    Disconnect { peer: String },
    /// Forget a peer with everything decided about it.
    Remove { peer: String },
    /// Block a peer id or a network (CIDR or address).
    Block { target: String },
    /// Lift a block on a peer id or a network.
    Unblock { target: String },
    /// Grant a peer everything, without expiry.
    Elevate { peer: String },
    /// Revoke every grant of a peer (back to the trust policy's default).
    Demote { peer: String },
    /// Send a text message.
    Send { peer: String, text: String },
    /// Run a speed test over the channel to a peer: sizes as typed (empty
    /// is the default, a bare number MiB, or with `K`/`M`/`G`).
    Perf {
        peer: String,
        upload: String,
        download: String,
    },
    /// Start a routine.
    RoutineStart { name: String },
    /// Stop a routine.
    RoutineStop { name: String },
    /// Change a routine's interval.
    RoutineInterval { name: String, secs: u64 },
    /// Not the node's: a network task for the bootstrap server's peers,
    /// signed by its authority (`target` is `*` or a registered peer;
    /// `task` as the terminal's `task` takes it, e.g. `block ID`). The
    /// panel sends it through the same controls as the node's actions.
    QueueTask { target: String, task: String },
    /// Not the node's: start a widescan job. The form's fields by name
    /// (`prefixes`, `excludes`, `rate`, `per_subnet_rate`, `hardware`,
    /// `transport`, `seed`, `shard`, `contact`); an empty value takes the
    /// server's default.
    ScanStart { fields: Vec<(String, String)> },
    /// Not the node's: stop a running scan job (it can be resumed).
    ScanStop { job: i64 },
    /// Not the node's: resume a stopped, interrupted or failed scan job
    /// from its checkpoint.
    ScanResume { job: i64 },
}

impl NodeAction {
    /// A short name for the audit log (`node.approve`, ...).
    pub fn audit_name(&self) -> &'static str {
        match self {
            Self::Approve { .. } => "node.approve",
            Self::Reject { .. } => "node.reject",
            Self::Connect { .. } => "node.connect",
            Self::Disconnect { .. } => "node.disconnect",
            Self::Remove { .. } => "node.remove",
            Self::Block { .. } => "node.block",
            Self::Unblock { .. } => "node.unblock",
            Self::Elevate { .. } => "node.elevate",
            Self::Demote { .. } => "node.demote",
            Self::Send { .. } => "node.send",
            Self::Perf { .. } => "node.perf",
            Self::RoutineStart { .. } => "node.routine_start",
            Self::RoutineStop { .. } => "node.routine_stop",
            Self::RoutineInterval { .. } => "node.routine_interval",
            Self::QueueTask { .. } => "bootstrap.task",
            Self::ScanStart { .. } => "widescan.start",
            Self::ScanStop { .. } => "widescan.stop",
            Self::ScanResume { .. } => "widescan.resume",
        }
    }
}
