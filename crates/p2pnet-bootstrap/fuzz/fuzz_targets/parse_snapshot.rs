//! Feeds arbitrary text to the bootstrap snapshot parser, as a client
//! reads what a server (or anyone on the path) sends.
//!
//! Checks: no panic; a snapshot that parses is within its bounds.

#![no_main]

use libfuzzer_sys::fuzz_target;
use p2pnet_bootstrap::snapshot::{MAX_SNAPSHOT_PEERS, Snapshot};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(parsed) = Snapshot::parse(&text, "p2pnet", 1_800_000_000, 300) {
        assert!(parsed.peers.len() <= MAX_SNAPSHOT_PEERS);
    }
});
