//! Network tasks: instructions the bootstrap authority sends to peers
//! (block a peer or a network, disconnect, authorize, revoke, a message,
//! a ping), signed by its OpenPGP key.
//!
//! A task is one JSON text; the authority signs exactly those bytes with a
//! detached signature, as it signs snapshots. A peer collects the tasks
//! queued for it (or for all) with a heartbeat and applies one only if
//! [`check_task`] accepts it: signed by the pinned authority (checked
//! before the text is read), for its network and for it, not expired, and
//! numbered above the last task it applied, so tasks apply in order and
//! never twice.

use std::{str::FromStr, time::SystemTime};

use p2pnet::proto::PeerId;
use serde::{Deserialize, Serialize};

use crate::authority::{AuthorityError, PinnedAuthority};

/// The `format` of every task.
pub const TASK_FORMAT: &str = "p2pnet-bootstrap-task/1";
/// Longest task text, in bytes.
pub const MAX_TASK_LEN: usize = 4096;
/// Longest message a task carries, in bytes.
pub const MAX_TASK_MESSAGE_LEN: usize = 1000;

/// Whom a task is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskTarget {
    /// Every peer.
    All,
    /// One peer.
    Peer(PeerId),
}

impl Serialize for TaskTarget {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::All => s.serialize_str("*"),
            Self::Peer(peer) => s.collect_str(peer),
        }
    }
}

impl<'de> Deserialize<'de> for TaskTarget {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl FromStr for TaskTarget {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "*" | "all" => Ok(Self::All),
            id => id
                .parse()
                .map(Self::Peer)
                .map_err(|e| format!("`{id}` is neither `*` nor a peer id: {e}")),
        }
    }
}

/// What a task asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TaskAction {
    /// Block a peer id (its channel closes; it cannot connect).
    BlockPeer {
        /// The peer.
        peer: PeerId,
    },
    /// Block a network, as CIDR.
    BlockNetwork {
        /// The network, e.g. `198.51.100.0/24`.
        cidr: String,
    },
    /// Close the channel to a peer.
    Disconnect {
        /// The peer.
        peer: PeerId,
    },
    /// Grant a peer scopes (`message,data,task,file,peer_list`).
    Authorize {
        /// The peer.
        peer: PeerId,
        /// The scopes, comma-separated.
        scopes: String,
        /// How long the grant lasts, seconds; none: until revoked.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ttl_secs: Option<u64>,
    },
    /// Revoke every grant of a peer.
    Revoke {
        /// The peer.
        peer: PeerId,
    },
    /// A message from the authority, shown to the node's operator.
    Message {
        /// The text.
        text: String,
    },
    /// Nothing to do but be seen: the next heartbeat acknowledges it.
    Ping,
}

impl TaskAction {
    /// Its kind, as in the JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::BlockPeer { .. } => "block_peer",
            Self::BlockNetwork { .. } => "block_network",
            Self::Disconnect { .. } => "disconnect",
            Self::Authorize { .. } => "authorize",
            Self::Revoke { .. } => "revoke",
            Self::Message { .. } => "message",
            Self::Ping => "ping",
        }
    }

    /// Checks the fields a type cannot: the CIDR, the scopes, the length
    /// of a message.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Self::BlockNetwork { cidr } => cidr
                .parse::<ipnet::IpNet>()
                .map(|_| ())
                .map_err(|_| format!("`{cidr}` is not a network in CIDR form")),
            Self::Authorize { scopes, .. } => scopes
                .parse::<p2pnet::proto::Scopes>()
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Self::Message { text } if text.len() > MAX_TASK_MESSAGE_LEN => {
                Err(format!("a message is at most {MAX_TASK_MESSAGE_LEN} bytes"))
            }
            _ => Ok(()),
        }
    }
}

/// A task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    /// [`TASK_FORMAT`].
    pub format: String,
    /// The network it is for.
    pub network: String,
    /// Rises with every task the server queues.
    pub seq: u64,
    /// When it was queued, Unix seconds.
    pub issued_at: u64,
    /// After this it is not applied, Unix seconds.
    pub expires_at: u64,
    /// Whom it is for.
    pub target: TaskTarget,
    /// What it asks.
    pub action: TaskAction,
}

impl Task {
    /// The text to sign.
    pub fn to_text(&self) -> Result<String, String> {
        serde_json::to_string(self).map_err(|e| e.to_string())
    }
}

/// A task as served: its exact text and the authority's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedTask {
    /// The task's text, exactly as signed.
    pub task: String,
    /// The armored detached signature.
    pub signature: String,
}

/// Why a task was not applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TaskError {
    /// Longer than [`MAX_TASK_LEN`].
    #[error("task too large ({0} bytes)")]
    TooLarge(usize),
    /// Not signed by the pinned authority.
    #[error("forged: {0}")]
    Forged(#[from] AuthorityError),
    /// Signed, but not a task this version reads.
    #[error("malformed task: {0}")]
    Malformed(String),
    /// Another network's, or another peer's.
    #[error("not for this node: {0}")]
    NotForUs(String),
    /// Applied already, or older than one applied: a replay.
    #[error("task {seq} was applied already (last applied {last})")]
    Replayed {
        /// Its sequence.
        seq: u64,
        /// The last applied.
        last: u64,
    },
    /// Past its expiry.
    #[error("task {seq} expired at {expires_at}")]
    Expired {
        /// Its sequence.
        seq: u64,
        /// Its expiry, Unix seconds.
        expires_at: u64,
    },
}

/// Accepts `signed` for the node `me` of `network`, or says why not. See
/// the module docs for the order of the checks.
pub fn check_task(
    signed: &SignedTask,
    authority: &PinnedAuthority,
    network: &str,
    me: PeerId,
    last_applied: u64,
    now: SystemTime,
) -> Result<Task, TaskError> {
    if signed.task.len() > MAX_TASK_LEN {
        return Err(TaskError::TooLarge(signed.task.len()));
    }
    authority.verify_detached(signed.task.as_bytes(), &signed.signature, now)?;
    check_signed_text(&signed.task, network, me, last_applied, now)
}

/// The checks behind the signature: the task's JSON and its fields. Only
/// [`check_task`] calls it, after verifying the signature; the fuzz target
/// reaches it directly (`cfg(fuzzing)`), at thousands of times the speed of
/// signing each input.
#[cfg(fuzzing)]
pub fn fuzz_check_signed_text(
    text: &str,
    network: &str,
    me: PeerId,
    last_applied: u64,
    now: SystemTime,
) -> Result<Task, TaskError> {
    check_signed_text(text, network, me, last_applied, now)
}

fn check_signed_text(
    text: &str,
    network: &str,
    me: PeerId,
    last_applied: u64,
    now: SystemTime,
) -> Result<Task, TaskError> {
    let task: Task = serde_json::from_str(text).map_err(|e| TaskError::Malformed(e.to_string()))?;
    if task.format != TASK_FORMAT {
        return Err(TaskError::Malformed(format!(
            "unknown format {:?}",
            task.format
        )));
    }
    task.action.validate().map_err(TaskError::Malformed)?;
    if task.network != network {
        return Err(TaskError::NotForUs(format!("network {:?}", task.network)));
    }
    if let TaskTarget::Peer(peer) = task.target
        && peer != me
    {
        return Err(TaskError::NotForUs(format!("peer {}", peer.short())));
    }
    if task.seq <= last_applied {
        return Err(TaskError::Replayed {
            seq: task.seq,
            last: last_applied,
        });
    }
    if task.expires_at <= crate::unix_secs(now) {
        return Err(TaskError::Expired {
            seq: task.seq,
            expires_at: task.expires_at,
        });
    }
    Ok(task)
}
