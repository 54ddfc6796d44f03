//! Peer discovery without sockets: the announce datagram and the state
//! machine that decides when to announce, whom to answer and when a peer
//! has gone quiet.
//!
//! * [`announce`]: the datagram (fixed layout, every field bounded, one
//!   encoding per announce).
//! * [`machine`]: [`Discovery`], fed received datagrams and the time, and
//!   polled for datagrams to send and for peers heard or expired. The
//!   runtime owns the sockets and decides where "everywhere" is (broadcast,
//!   multicast groups, static hosts).
//!
//! Nothing here is trusted for identity: an announce only says where a
//! peer claiming an id might listen. The channel handshake proves the id.

pub mod announce;
pub mod machine;

pub use announce::{
    ANNOUNCE_MAGIC, ANNOUNCE_VERSION, Announce, AnnounceError, MAX_ANNOUNCE_ADDRESSES,
    MAX_ANNOUNCE_LEN, MAX_ANNOUNCE_PORTS, network_tag,
};
pub use machine::{
    Destination, Discovery, DiscoveryEvent, DiscoveryParams, DiscoveryStats, DiscoveryVia,
    HeardPeer, MAX_PENDING_REPLIES, SOLICITING_ANNOUNCES, Transmit,
};
