//! Drives an inbound channel (Noise responder) with arbitrary bytes.
//!
//! When the first input byte is odd, a genuine first handshake message from
//! a real initiator is sent first, so the fuzzer also reaches the code that
//! handles message 3 and the transport phase. Checks: no panic, bounded
//! output, and a closed channel stays closed.

#![no_main]

use std::convert::Infallible;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use p2pnet_proto::{Channel, ChannelConfig, ChannelState, Instant, Keypair};
use rand_core::{TryCryptoRng, TryRng};

/// Deterministic filler; cryptographic quality is irrelevant here.
struct CounterRng(u64);

impl TryRng for CounterRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        self.try_next_u64().map(|v| v as u32)
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        Ok(self.0)
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(8) {
            let v = self.try_next_u64()?.to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        Ok(())
    }
}

impl TryCryptoRng for CounterRng {}

// Made once: deriving a keypair per input would cost more than the code
// under test.
static SERVER_KEYS: LazyLock<Keypair> = LazyLock::new(|| Keypair::from_seed(&[7; 32]));
static CLIENT_KEYS: LazyLock<Keypair> = LazyLock::new(|| Keypair::from_seed(&[9; 32]));
static CONFIG: LazyLock<Arc<ChannelConfig>> = LazyLock::new(|| Arc::new(ChannelConfig::default()));

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let config = CONFIG.clone();
    let mut rng = CounterRng(u64::from(mode));
    let mut server = Channel::new_inbound(config.clone(), &SERVER_KEYS, Instant::ZERO, &mut rng)
        .expect("valid config");

    let mut input = Vec::new();
    if mode & 1 == 1 {
        let mut client = Channel::new_outbound(config, &CLIENT_KEYS, None, Instant::ZERO, &mut rng)
            .expect("valid config");
        while let Some(bytes) = client.poll_transmit() {
            input.extend_from_slice(&bytes);
        }
    }
    input.extend_from_slice(rest);

    let split = usize::from(mode >> 1).max(1);
    let mut now = Instant::ZERO;
    let mut was_closed = false;
    for piece in input.chunks(split) {
        let _ = server.handle_bytes(now, piece);
        while let Some(bytes) = server.poll_transmit() {
            assert!(bytes.len() <= 2 + 65535);
        }
        while server.poll_event().is_some() {}
        if was_closed {
            assert_eq!(server.state(), ChannelState::Closed);
        }
        was_closed = server.is_closed();
        now += Duration::from_millis(250);
        server.handle_timeout(now);
    }
});
