//! WAN discovery for P2PNet through bootstrap servers.
//!
//! A peer signs its own record (`p2pnet_proto::record`) and announces it
//! to a bootstrap server; the server lists the records it holds in a
//! snapshot, as is (trustless mode) or signed by its OpenPGP authority key
//! ([`authority`]), so that a client can tell the list comes from the
//! authority it pinned and a relay can alter nothing.
//!
//! # Layout
//!
//! * [`authority`]: the authority's OpenPGP key (generated, stored with its
//!   secret encrypted, rotated) and the pinned certificate a client checks
//!   signatures with.
//! * [`snapshot`]: the list a server serves, as the exact text it signs,
//!   and the freshness rules a client applies (rollback, freeze).
//! * [`task`]: network tasks the authority signs (block, disconnect,
//!   authorize, revoke, message, ping) and the checks before one applies.
//! * [`verify`]: what a client accepts (policy, pin, sequences), with no IO.
//! * [`client`]: [`BootstrapClient`](client::BootstrapClient), which
//!   announces, fetches, verifies and hands the peers to a `PeerNetwork`.
//! * [`error`]: [`Error`], the crate's one error type.

pub mod authority;
pub mod client;
pub mod error;
pub mod snapshot;
pub mod task;
pub mod verify;

pub use error::{Error, Result};

/// Seconds since the Unix epoch at `at` (0 before it).
pub(crate) fn unix_secs(at: std::time::SystemTime) -> u64 {
    at.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Milliseconds since the Unix epoch at `at` (0 before it).
pub(crate) fn unix_ms(at: std::time::SystemTime) -> u64 {
    at.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
