//! Transport ciphers: the AEAD that seals a channel's messages once the
//! handshake is done.
//!
//! The handshake itself always runs `Noise_XX_25519_ChaChaPoly_BLAKE2s`.
//! Each side's [`Hello`](crate::Hello) (protocol version 3 and later)
//! lists the transport ciphers it accepts; both sides then compute the same
//! choice with [`Cipher::negotiate`]: the first cipher of
//! [`Cipher::PREFERENCE`] that both lists contain. A peer whose hello is
//! version 2 lists nothing and speaks ChaCha20-Poly1305.
//!
//! The lists travel inside the encrypted, transcript-bound hellos, so an
//! attacker on the path cannot strip a cipher from them: any change fails
//! the handshake.
//!
//! The default list ([`Cipher::defaults`]) names AES-256-GCM only where the
//! CPU has AES and carry-less multiply instructions: without them AES is
//! several times slower than ChaCha20-Poly1305 (and harder to make constant
//! time), so two nodes use AES only when both run it in hardware.

use serde::{Deserialize, Serialize};

/// A transport AEAD.
///
/// The numeric tags are part of the wire format and never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum Cipher {
    /// ChaCha20-Poly1305, Noise's `ChaChaPoly`: what every version speaks.
    /// Its keys are exactly Noise's `Split()` output, so the wire is the
    /// same as `Noise_XX_25519_ChaChaPoly_BLAKE2s` in transport mode.
    ChaCha20Poly1305 = 1,
    /// AES-256-GCM with Noise's `AESGCM` nonce layout, keyed by a BLAKE3
    /// derivation of each `Split()` key (so no key ever serves two
    /// ciphers). Several times faster where the CPU has AES instructions.
    Aes256Gcm = 2,
}

impl Cipher {
    /// The order in which a negotiation picks a cipher both sides list.
    pub const PREFERENCE: [Self; 2] = [Self::Aes256Gcm, Self::ChaCha20Poly1305];

    /// Most ciphers a hello may list (unknown ones included).
    pub const MAX_OFFERED: usize = 16;

    /// The wire tag.
    pub const fn tag(self) -> u8 {
        self as u8
    }

    /// The cipher with this wire tag, if this version knows it.
    pub const fn from_tag(tag: u8) -> Option<Self> {
        match tag {
            1 => Some(Self::ChaCha20Poly1305),
            2 => Some(Self::Aes256Gcm),
            _ => None,
        }
    }

    /// A lowercase name, for logs and the panel.
    pub const fn name(self) -> &'static str {
        match self {
            Self::ChaCha20Poly1305 => "chacha20-poly1305",
            Self::Aes256Gcm => "aes-256-gcm",
        }
    }

    /// The cipher named `name` (as [`name`](Self::name) writes it).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::PREFERENCE.into_iter().find(|c| c.name() == name)
    }

    /// What a node offers unless configured otherwise: AES-256-GCM where
    /// this CPU runs it in hardware, then ChaCha20-Poly1305.
    pub fn defaults() -> Vec<Self> {
        if aes_in_hardware() {
            vec![Self::Aes256Gcm, Self::ChaCha20Poly1305]
        } else {
            vec![Self::ChaCha20Poly1305]
        }
    }

    /// The cipher two offers agree on: the first of
    /// [`PREFERENCE`](Self::PREFERENCE) both contain. Symmetric, so both
    /// sides compute the same answer.
    pub fn negotiate(a: &[Self], b: &[Self]) -> Option<Self> {
        Self::PREFERENCE
            .into_iter()
            .find(|c| a.contains(c) && b.contains(c))
    }
}

impl std::fmt::Display for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether this CPU has the instructions ring's AES-GCM needs to be fast
/// and constant-time (AES rounds and carry-less multiplication).
fn aes_in_hardware() -> bool {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    {
        std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("aes")
            && std::arch::is_aarch64_feature_detected!("pmull")
    }
    #[cfg(not(any(target_arch = "x86", target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_is_symmetric_and_prefers_aes() {
        use Cipher::*;
        let both = [Aes256Gcm, ChaCha20Poly1305];
        let chacha = [ChaCha20Poly1305];
        let aes = [Aes256Gcm];
        assert_eq!(Cipher::negotiate(&both, &both), Some(Aes256Gcm));
        assert_eq!(Cipher::negotiate(&both, &chacha), Some(ChaCha20Poly1305));
        assert_eq!(Cipher::negotiate(&chacha, &both), Some(ChaCha20Poly1305));
        // Order within an offer does not matter: the preference is global.
        assert_eq!(
            Cipher::negotiate(&[ChaCha20Poly1305, Aes256Gcm], &both),
            Some(Aes256Gcm)
        );
        assert_eq!(Cipher::negotiate(&aes, &chacha), None);
        assert_eq!(Cipher::negotiate(&[], &both), None);
    }

    #[test]
    fn tags_and_names_round_trip() {
        for cipher in Cipher::PREFERENCE {
            assert_eq!(Cipher::from_tag(cipher.tag()), Some(cipher));
            assert_eq!(Cipher::from_name(cipher.name()), Some(cipher));
        }
        assert_eq!(Cipher::from_tag(0), None);
        assert_eq!(Cipher::from_tag(9), None);
        assert_eq!(Cipher::from_name("rot13"), None);
    }

    #[test]
    fn every_default_offer_includes_chacha() {
        // ChaCha20-Poly1305 is what version 2 peers speak.
        assert!(Cipher::defaults().contains(&Cipher::ChaCha20Poly1305));
    }
}
