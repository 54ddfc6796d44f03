//! Feeds arbitrary text to the peer-record parser.
//!
//! Checks: no panic; what parses is within the bounds and keeps its exact
//! text. Random input almost never carries a valid signature, so half of
//! the runs sign the fuzzer's bytes as a payload first, which reaches the
//! decoder and the field checks behind the signature.

#![no_main]

use libfuzzer_sys::fuzz_target;
use p2pnet_proto::Keypair;
use p2pnet_proto::identity::PEER_ID_LEN;
use p2pnet_proto::record::{MAX_RECORD_TEXT_LEN, RECORD_DOMAIN, SignedRecord};

fuzz_target!(|data: &[u8]| {
    let text = if data.first().is_some_and(|b| b & 1 == 1) {
        let keys = Keypair::from_seed(&[5; 32]);
        let mut payload = keys.peer_id().as_bytes().to_vec();
        payload.extend_from_slice(&data[1..]);
        debug_assert!(payload.len() >= PEER_ID_LEN);
        let signature = keys.sign(RECORD_DOMAIN, &payload).expect("a valid domain");
        let b64 = &data_encoding::BASE64URL_NOPAD;
        format!("{}.{}", b64.encode(&payload), b64.encode(&signature))
    } else {
        String::from_utf8_lossy(data).into_owned()
    };
    if let Ok(record) = SignedRecord::parse(&text) {
        assert!(text.len() <= MAX_RECORD_TEXT_LEN);
        assert_eq!(record.as_str(), text);
    }
});
