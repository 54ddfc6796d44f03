//! Feeds arbitrary datagrams to the discovery announce decoder.
//!
//! Checks: no panic; nothing valid is longer than the bound; every announce
//! that decodes re-encodes to exactly the same bytes (the format has one
//! encoding per announce).

#![no_main]

use libfuzzer_sys::fuzz_target;
use p2pnet_proto::discovery::{ANNOUNCE_MAGIC, Announce, MAX_ANNOUNCE_LEN};

fuzz_target!(|data: &[u8]| {
    // Most inputs would die at the magic; prepend it half of the time.
    let datagram: Vec<u8> = if data.first().is_some_and(|b| b & 1 == 1) {
        ANNOUNCE_MAGIC.iter().chain(&data[1..]).copied().collect()
    } else {
        data.to_vec()
    };
    if let Ok(announce) = Announce::decode(&datagram, "p2pnet") {
        assert!(datagram.len() <= MAX_ANNOUNCE_LEN);
        let again = announce.encode("p2pnet").expect("a decoded announce re-encodes");
        assert_eq!(again, datagram);
    }
});
