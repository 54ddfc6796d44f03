//! Feeds arbitrary tasks to the check a node runs on what a bootstrap
//! server serves: the authority's signature, then the task's JSON and its
//! fields.
//!
//! Checks: no panic. Random input never carries a valid OpenPGP
//! signature, so the first byte picks a path:
//! - most runs give the text to the checks behind the signature directly
//!   (`fuzz_check_signed_text`, built only under `cfg(fuzzing)`): the JSON
//!   decoder and every field check, at full speed;
//! - one run in 16 has the text signed by a test authority first and goes
//!   through `check_task` whole (signing each input is slow);
//! - the rest split the input into a task and an armored "signature" for
//!   the verifier. The authority refuses to sign some texts (those that
//!   could pass for its own statements); those runs end there.

#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use p2pnet_bootstrap::authority::AuthorityKey;
use p2pnet_bootstrap::task::{SignedTask, check_task, fuzz_check_signed_text};
use p2pnet_proto::PeerId;

fn authority() -> &'static AuthorityKey {
    static KEY: OnceLock<AuthorityKey> = OnceLock::new();
    KEY.get_or_init(|| {
        AuthorityKey::generate("fuzz authority", Duration::from_secs(3600)).expect("a key")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let key = authority();
    let me = PeerId::from_bytes([7; 32]);
    let now = SystemTime::now();
    let text = String::from_utf8_lossy(rest);
    let signed = match pick % 16 {
        0 => {
            let Ok(signature) = key.sign_detached(text.as_bytes()) else {
                return;
            };
            SignedTask {
                task: text.into_owned(),
                signature,
            }
        }
        1..=4 => {
            let (task, signature) = text.split_once('\n').unwrap_or((&text, ""));
            SignedTask {
                task: task.to_owned(),
                signature: signature.to_owned(),
            }
        }
        _ => {
            let _ = fuzz_check_signed_text(&text, "p2pnet", me, 0, now);
            return;
        }
    };
    let _ = check_task(&signed, &key.pinned(), "p2pnet", me, 0, now);
});
