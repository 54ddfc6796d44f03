//! Feeds ICMPv6 messages to the probe classifier, the listener's decoder
//! of everything that arrives on the raw socket.
//!
//! Random bytes rarely get past the header, so the first byte picks a
//! genuine message to start from (raw input, our own probe echoed back,
//! another instance's probe, another instance's answer) and the rest is
//! XORed over it: the classifier meets messages that are almost right.
//! Checks: no panic, and a message only counts as a hit if it is exactly
//! the echo of our own probe (the MAC binds the rest).

#![no_main]

use std::{net::Ipv6Addr, sync::LazyLock};

use libfuzzer_sys::fuzz_target;
use widescan::{
    Contact, Identity, ProbeCodec, RunKey,
    probe::{ECHO_REPLY, Inbound, MAX_MESSAGE_LEN},
};

fn codec(instance: u64, key: u8) -> ProbeCodec {
    let contact = Contact::new(format!("fuzz-{instance}")).expect("contact");
    ProbeCodec::new(
        RunKey::from_bytes([key; 16]),
        Identity::new(instance, 4000, contact).expect("identity"),
    )
}

static OURS: LazyLock<ProbeCodec> = LazyLock::new(|| codec(1, 0x11));
static THEIRS: LazyLock<ProbeCodec> = LazyLock::new(|| codec(2, 0x22));

const SRC: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10);

fuzz_target!(|data: &[u8]| {
    let Some((&pick, flips)) = data.split_first() else {
        return;
    };
    let dst = SRC.octets();
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    let (mut msg, genuine_hit) = match pick % 4 {
        0 => (flips.to_vec(), false),
        1 => {
            let n = OURS.encode_probe(&dst, &mut buf);
            buf[0] = ECHO_REPLY;
            (buf[..n].to_vec(), true)
        }
        2 => {
            let n = THEIRS.encode_probe(&dst, &mut buf);
            (buf[..n].to_vec(), false)
        }
        _ => {
            let n = THEIRS.encode_answer(&dst, u64::from(pick), &mut buf);
            (buf[..n].to_vec(), false)
        }
    };
    // Only the flips that land on the message change it.
    let flips = &flips[..flips.len().min(msg.len())];
    let untouched = pick % 4 != 0 && flips.iter().all(|&b| b == 0);
    if pick % 4 != 0 {
        for (byte, flip) in msg.iter_mut().zip(flips) {
            *byte ^= flip;
        }
    }
    let verdict = OURS.classify(SRC, &msg);
    if matches!(verdict, Inbound::Hit) {
        // Bytes 2..4 are the ICMPv6 checksum, which the kernel checks and
        // the classifier leaves alone; anything else changed must not hit.
        let changed_outside_checksum = flips
            .iter()
            .enumerate()
            .any(|(i, &b)| b != 0 && !(2..4).contains(&i));
        assert!(
            genuine_hit && !changed_outside_checksum,
            "a forged message classified as a hit"
        );
    } else if genuine_hit && untouched {
        panic!("our own echoed probe was not a hit: {verdict:?}");
    }
});
