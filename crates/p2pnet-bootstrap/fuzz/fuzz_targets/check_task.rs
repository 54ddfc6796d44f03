//! Feeds arbitrary tasks to the check a node runs on what a bootstrap
//! server serves: the authority's signature, then the task's JSON and its
//! fields.
//!
//! Checks: no panic. Random input never carries a valid OpenPGP
//! signature, so half of the runs have the fuzzer's bytes signed by a
//! test authority first, which reaches the task decoder and the field
//! checks behind the signature; the other half split the input into a
//! task and an armored "signature".

#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use p2pnet_bootstrap::authority::AuthorityKey;
use p2pnet_bootstrap::task::{SignedTask, check_task};
use p2pnet_proto::PeerId;

fn authority() -> &'static AuthorityKey {
    static KEY: OnceLock<AuthorityKey> = OnceLock::new();
    KEY.get_or_init(|| {
        AuthorityKey::generate("fuzz authority", Duration::from_secs(3600)).expect("a key")
    })
}

fuzz_target!(|data: &[u8]| {
    let key = authority();
    let signed = match data.split_first() {
        Some((flag, rest)) if flag & 1 == 1 && std::str::from_utf8(rest).is_ok() => SignedTask {
            task: String::from_utf8_lossy(rest).into_owned(),
            signature: key.sign_detached(rest).expect("signs"),
        },
        _ => {
            let text = String::from_utf8_lossy(data);
            let (task, signature) = text.split_once('\n').unwrap_or((&text, ""));
            SignedTask {
                task: task.to_owned(),
                signature: signature.to_owned(),
            }
        }
    };
    let me = PeerId::from_bytes([7; 32]);
    let _ = check_task(&signed, &key.pinned(), "p2pnet", me, 0, SystemTime::now());
});
