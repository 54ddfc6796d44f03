//! Transport-mode encryption of an established channel: one AEAD key and
//! nonce counter per direction, sealing and opening in place (ring's
//! AEADs).
//!
//! The keys are Noise's `Split()` output for the transcript: the first
//! seals what the initiator sends, the second what the responder sends.
//! ChaCha20-Poly1305 uses them as they are (the wire is exactly Noise's
//! transport mode); AES-256-GCM uses a BLAKE3 derivation of each, so no
//! key ever serves two ciphers. Nonces are Noise's: an implicit counter
//! from 0, laid out as the cipher's Noise spec says, never reused, and
//! the channel dies before it would wrap. Associated data is empty.
//!
//! Messages are sealed where they are written and opened where they were
//! read, so a message costs no copy here.

use ring::aead::{AES_256_GCM, Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use zeroize::Zeroizing;

use crate::cipher::Cipher;
use crate::error::Error;
use crate::trust::Direction;

/// Length of the AEAD tag ending every transport message.
pub(crate) const TAG_LEN: usize = 16;

/// BLAKE3 key-derivation context for AES-256-GCM transport keys.
const AES_KEY_CONTEXT: &str = "p2pnet 2026-12 transport key AES-256-GCM";

/// One direction: a key and its next nonce.
struct DirectionKey {
    key: LessSafeKey,
    next: u64,
    cipher: Cipher,
}

impl DirectionKey {
    fn new(cipher: Cipher, split_key: &[u8; 32]) -> Result<Self, Error> {
        let key = match cipher {
            Cipher::ChaCha20Poly1305 => UnboundKey::new(&CHACHA20_POLY1305, split_key),
            Cipher::Aes256Gcm => {
                let derived = Zeroizing::new(blake3::derive_key(AES_KEY_CONTEXT, split_key));
                UnboundKey::new(&AES_256_GCM, derived.as_ref())
            }
        }
        .map_err(|_| Error::InvalidConfig("transport key rejected"))?;
        Ok(Self {
            key: LessSafeKey::new(key),
            next: 0,
            cipher,
        })
    }

    /// The next nonce, laid out as Noise lays it out for this cipher.
    /// `None` once the counter is spent: Noise reserves `u64::MAX`.
    fn take_nonce(&mut self) -> Option<Nonce> {
        let n = self.next;
        if n == u64::MAX {
            return None;
        }
        self.next += 1;
        let mut bytes = [0u8; 12];
        match self.cipher {
            Cipher::ChaCha20Poly1305 => bytes[4..].copy_from_slice(&n.to_le_bytes()),
            Cipher::Aes256Gcm => bytes[4..].copy_from_slice(&n.to_be_bytes()),
        }
        Some(Nonce::assume_unique_for_key(bytes))
    }
}

/// Both directions of an established channel.
pub(crate) struct Transport {
    send: DirectionKey,
    receive: DirectionKey,
}

impl Transport {
    /// Keys the transport from the handshake's split for this side's
    /// `role`.
    pub(crate) fn new(
        cipher: Cipher,
        role: Direction,
        initiator_to_responder: &[u8; 32],
        responder_to_initiator: &[u8; 32],
    ) -> Result<Self, Error> {
        let (send, receive) = match role {
            Direction::Outbound => (initiator_to_responder, responder_to_initiator),
            Direction::Inbound => (responder_to_initiator, initiator_to_responder),
        };
        Ok(Self {
            send: DirectionKey::new(cipher, send)?,
            receive: DirectionKey::new(cipher, receive)?,
        })
    }

    /// The negotiated cipher.
    pub(crate) fn cipher(&self) -> Cipher {
        self.send.cipher
    }

    /// Seals `buf[from..]` in place and appends its tag.
    pub(crate) fn seal(&mut self, buf: &mut Vec<u8>, from: usize) -> Result<(), Error> {
        let nonce = self.send.take_nonce().ok_or(Error::Encrypt)?;
        let plaintext = buf.get_mut(from..).ok_or(Error::Encrypt)?;
        let tag = self
            .send
            .key
            .seal_in_place_separate_tag(nonce, Aad::empty(), plaintext)
            .map_err(|_| Error::Encrypt)?;
        buf.extend_from_slice(tag.as_ref());
        Ok(())
    }

    /// Opens one message (ciphertext and tag) in place; the plaintext is
    /// the returned prefix of `message`.
    pub(crate) fn open<'a>(&mut self, message: &'a mut [u8]) -> Result<&'a mut [u8], Error> {
        let nonce = self.receive.take_nonce().ok_or(Error::Decrypt)?;
        self.receive
            .key
            .open_in_place(nonce, Aad::empty(), message)
            .map_err(|_| Error::Decrypt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(cipher: Cipher) -> (Transport, Transport) {
        let (a, b) = ([1u8; 32], [2u8; 32]);
        (
            Transport::new(cipher, Direction::Outbound, &a, &b).unwrap(),
            Transport::new(cipher, Direction::Inbound, &a, &b).unwrap(),
        )
    }

    #[test]
    fn each_side_opens_what_the_other_sealed_in_order() {
        for cipher in Cipher::PREFERENCE {
            let (mut alice, mut bob) = pair(cipher);
            for (i, len) in [0usize, 1, 1500, 65_519].into_iter().enumerate() {
                let plain: Vec<u8> = (0..len).map(|j| (i + j) as u8).collect();
                let mut buf = b"hd".to_vec();
                buf.extend_from_slice(&plain);
                alice.seal(&mut buf, 2).unwrap();
                assert_eq!(buf.len(), 2 + len + TAG_LEN);
                if len > 0 {
                    assert_ne!(&buf[2..2 + len], &plain[..], "{cipher}: sealed");
                }
                assert_eq!(bob.open(&mut buf[2..]).unwrap(), &plain[..]);
                let mut back = plain.clone();
                bob.seal(&mut back, 0).unwrap();
                assert_eq!(alice.open(&mut back).unwrap(), &plain[..]);
            }
        }
    }

    #[test]
    fn tampered_replayed_or_reordered_messages_fail() {
        let sealed = |alice: &mut Transport, text: &[u8]| {
            let mut msg = text.to_vec();
            alice.seal(&mut msg, 0).unwrap();
            msg
        };
        for cipher in Cipher::PREFERENCE {
            let (mut alice, mut bob) = pair(cipher);
            let _first = sealed(&mut alice, b"one");
            let mut second = sealed(&mut alice, b"two");
            assert_eq!(bob.open(&mut second), Err(Error::Decrypt), "reordered");

            let (mut alice, mut bob) = pair(cipher);
            let mut tampered = sealed(&mut alice, b"hello");
            tampered[0] ^= 1;
            assert_eq!(bob.open(&mut tampered), Err(Error::Decrypt), "tampered");

            let (mut alice, mut bob) = pair(cipher);
            let mut msg = sealed(&mut alice, b"hello");
            let mut replay = msg.clone();
            assert_eq!(bob.open(&mut msg).unwrap(), b"hello");
            assert_eq!(bob.open(&mut replay), Err(Error::Decrypt), "replayed");
        }
    }

    #[test]
    fn the_two_ciphers_never_share_a_key_stream() {
        let (mut chacha, _) = pair(Cipher::ChaCha20Poly1305);
        let (mut aes, _) = pair(Cipher::Aes256Gcm);
        let mut a = vec![0u8; 64];
        let mut b = vec![0u8; 64];
        chacha.seal(&mut a, 0).unwrap();
        aes.seal(&mut b, 0).unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn a_spent_nonce_counter_refuses_to_seal() {
        let (mut alice, _) = pair(Cipher::Aes256Gcm);
        alice.send.next = u64::MAX;
        assert_eq!(alice.seal(&mut b"x".to_vec(), 0), Err(Error::Encrypt));
    }
}
