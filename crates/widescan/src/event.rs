//! What a scan finds: the events the listener hands to the host application.

use std::net::Ipv6Addr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Serialize, Serializer};

/// A result of listening, delivered through a bounded channel
/// ([`EventReceiver`](crate::EventReceiver)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// A live host: it sent a valid reply to one of our probes. Reported once per
    /// address (see `ListenerOptions::dedup_capacity`).
    Hit {
        /// The address that answered.
        addr: Ipv6Addr,
        /// When it was seen, milliseconds since the Unix epoch.
        unix_ms: u64,
    },
    /// Another widescan instance.
    Peer(Peer),
}

/// Another instance found through discovery. These are connection *hints*: the
/// identity behind them is proven only by the p2pnet channel handshake.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Peer {
    /// Where its probe or answer came from.
    pub addr: Ipv6Addr,
    /// The TCP port its p2pnet node says it listens on.
    pub tcp_port: u16,
    /// Its instance id (random per run), as 16 hex digits in serialised output.
    #[serde(serialize_with = "hex_u64")]
    pub instance_id: u64,
    /// Its contact string.
    pub contact: String,
    /// How we learned about it.
    pub via: PeerVia,
    /// When, milliseconds since the Unix epoch.
    pub unix_ms: u64,
}

/// How a peer was learned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerVia {
    /// Its probe reached us (format-checked only; we answered it).
    Probe,
    /// It answered one of our probes (the echoed MAC was verified).
    Answer,
}

impl PeerVia {
    /// `"probe"` or `"answer"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            PeerVia::Probe => "probe",
            PeerVia::Answer => "answer",
        }
    }
}

fn hex_u64<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{v:016x}"))
}

pub(crate) fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
