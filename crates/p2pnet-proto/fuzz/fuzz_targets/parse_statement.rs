//! Feeds arbitrary text to the self-signed statement parsers: peer records
//! and heartbeats.
//!
//! Checks: no panic; what parses is within its bound and keeps its exact
//! text. Random input almost never carries a valid signature, so half of
//! the runs sign the fuzzer's bytes as a payload first (under the domain
//! of the parser they go to), which reaches the decoders and the field
//! checks behind the signature.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use p2pnet_proto::Keypair;
use p2pnet_proto::heartbeat::{HEARTBEAT_DOMAIN, MAX_HEARTBEAT_TEXT_LEN, SignedHeartbeat};
use p2pnet_proto::record::{MAX_RECORD_TEXT_LEN, RECORD_DOMAIN, SignedRecord};

// Made once: deriving the keypair per input cost more than the parsers.
static KEYS: LazyLock<Keypair> = LazyLock::new(|| Keypair::from_seed(&[5; 32]));

fn text(data: &[u8], domain: &str) -> String {
    if data.first().is_some_and(|b| b & 1 == 1) {
        let keys = &*KEYS;
        let mut payload = keys.peer_id().as_bytes().to_vec();
        payload.extend_from_slice(&data[1..]);
        let signature = keys.sign(domain, &payload).expect("a valid domain");
        let b64 = &data_encoding::BASE64URL_NOPAD;
        format!("{}.{}", b64.encode(&payload), b64.encode(&signature))
    } else {
        String::from_utf8_lossy(data).into_owned()
    }
}

fuzz_target!(|data: &[u8]| {
    let record = text(data, RECORD_DOMAIN);
    if let Ok(parsed) = SignedRecord::parse(&record) {
        assert!(record.len() <= MAX_RECORD_TEXT_LEN);
        assert_eq!(parsed.as_str(), record);
    }
    let heartbeat = text(data, HEARTBEAT_DOMAIN);
    if let Ok(parsed) = SignedHeartbeat::parse(&heartbeat) {
        assert!(heartbeat.len() <= MAX_HEARTBEAT_TEXT_LEN);
        assert_eq!(parsed.as_str(), heartbeat);
    }
});
