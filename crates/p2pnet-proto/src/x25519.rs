//! Noise's `25519` Diffie-Hellman for `snow`, computed by AWS-LC.
//!
//! The handshake's cost is its X25519 operations, all on the path of a
//! connect: on each side one makes the ephemeral key and three agree (the
//! static key is loaded once per node: [`LoadedKey`]). AWS-LC's
//! (s2n-bignum, with the CPU's wide multiplies) takes 21 µs where
//! curve25519-dalek's portable ladder takes 41 µs here. Keys
//! come from the caller's seeded RNG as before (`PrivateKey::
//! from_private_key`), so nothing reads OS randomness. A peer's public
//! key of small order (an all-zero shared secret) is refused, as RFC 7748
//! recommends; no honest peer sends one.

use std::sync::Arc;

use aws_lc_rs::agreement::{self, PrivateKey, UnparsedPublicKey, X25519};
use aws_lc_rs::constant_time::verify_slices_are_equal;
use snow::Error;
use snow::types::{Dh, Random};
use zeroize::Zeroizing;

const KEY_LEN: usize = 32;

/// An X25519 private key loaded into AWS-LC, with its public key.
/// Loading derives the public key, itself an X25519 operation: the
/// node's static key is loaded once and shared by every handshake
/// ([`Keypair`](crate::Keypair) keeps it), so a connect pays only for its
/// ephemeral key and its three agreements.
pub(crate) struct LoadedKey {
    key: PrivateKey,
    privkey: Zeroizing<[u8; KEY_LEN]>,
    pubkey: [u8; KEY_LEN],
}

impl LoadedKey {
    pub(crate) fn new(privkey: &[u8; KEY_LEN]) -> Option<Self> {
        let key = PrivateKey::from_private_key(&X25519, &privkey[..]).ok()?;
        let pubkey = key.compute_public_key().ok()?.as_ref().try_into().ok()?;
        Some(Self {
            key,
            privkey: Zeroizing::new(*privkey),
            pubkey,
        })
    }
}

/// One X25519 key pair, as `snow` uses it (its static or ephemeral key).
#[derive(Default)]
pub(crate) struct AwsLcX25519 {
    loaded: Option<Arc<LoadedKey>>,
    /// The node's static key, already loaded: `set` with its secret
    /// adopts it instead of loading it again.
    known: Option<Arc<LoadedKey>>,
}

impl AwsLcX25519 {
    /// A key pair that adopts `known` when `snow` sets its secret.
    pub(crate) fn with_known(known: Option<Arc<LoadedKey>>) -> Self {
        Self {
            loaded: None,
            known,
        }
    }

    fn load(&mut self, privkey: &[u8; KEY_LEN]) {
        let known = self.known.as_ref().filter(|known| {
            // Constant time: both are our own secrets, but a comparison of
            // secrets should never branch on their bytes.
            verify_slices_are_equal(&known.privkey[..], &privkey[..]).is_ok()
        });
        self.loaded = match known {
            Some(known) => Some(known.clone()),
            None => LoadedKey::new(privkey).map(Arc::new),
        };
    }
}

impl Dh for AwsLcX25519 {
    fn name(&self) -> &'static str {
        "25519"
    }

    fn pub_len(&self) -> usize {
        KEY_LEN
    }

    fn priv_len(&self) -> usize {
        KEY_LEN
    }

    fn set(&mut self, privkey: &[u8]) {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        let len = privkey.len().min(KEY_LEN);
        bytes[..len].copy_from_slice(&privkey[..len]);
        self.load(&bytes);
    }

    fn generate(&mut self, rng: &mut dyn Random) -> Result<(), Error> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        rng.try_fill_bytes(bytes.as_mut())?;
        self.load(&bytes);
        Ok(())
    }

    fn pubkey(&self) -> &[u8] {
        self.loaded.as_ref().map_or(&[0; KEY_LEN], |k| &k.pubkey)
    }

    fn privkey(&self) -> &[u8] {
        self.loaded
            .as_ref()
            .map_or(&[0; KEY_LEN], |k| k.privkey.as_ref())
    }

    fn dh(&self, pubkey: &[u8], out: &mut [u8]) -> Result<(), Error> {
        let key = &self.loaded.as_ref().ok_or(Error::Dh)?.key;
        let peer = pubkey.get(..KEY_LEN).ok_or(Error::Dh)?;
        let out = out.get_mut(..KEY_LEN).ok_or(Error::Dh)?;
        agreement::agree(
            key,
            UnparsedPublicKey::new(&X25519, peer),
            Error::Dh,
            |secret| {
                out.copy_from_slice(secret);
                Ok(())
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use snow::params::DHChoice;
    use snow::resolvers::{CryptoResolver, DefaultResolver};

    use super::*;

    fn hex(text: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }

    #[test]
    fn rfc_7748_vectors() {
        // RFC 7748 section 6.1: Alice's and Bob's keys and their secret.
        let mut alice = AwsLcX25519::default();
        alice.set(&hex(
            "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
        ));
        assert_eq!(
            alice.pubkey(),
            hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
        );
        let bob_public = hex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
        let mut shared = [0u8; 32];
        alice.dh(&bob_public, &mut shared).unwrap();
        assert_eq!(
            shared,
            hex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
        );
    }

    #[test]
    fn the_known_static_key_is_adopted_and_any_other_secret_loaded() {
        let secret = [9u8; 32];
        let known = Arc::new(LoadedKey::new(&secret).expect("a key"));
        let mut adopted = AwsLcX25519::with_known(Some(known.clone()));
        adopted.set(&secret);
        assert!(Arc::ptr_eq(adopted.loaded.as_ref().unwrap(), &known));
        let mut portable = DefaultResolver
            .resolve_dh(&DHChoice::Curve25519)
            .expect("dalek");
        portable.set(&secret);
        assert_eq!(adopted.pubkey(), portable.pubkey());

        // Another secret (an ephemeral key) is loaded, never mistaken for it.
        let other = [10u8; 32];
        let mut fresh = AwsLcX25519::with_known(Some(known.clone()));
        fresh.set(&other);
        assert!(!Arc::ptr_eq(fresh.loaded.as_ref().unwrap(), &known));
        portable.set(&other);
        assert_eq!(fresh.pubkey(), portable.pubkey());
        assert_eq!(fresh.privkey(), &other);
    }

    #[test]
    fn agrees_with_the_portable_implementation() {
        let mut portable = DefaultResolver
            .resolve_dh(&DHChoice::Curve25519)
            .expect("dalek");
        for seed in 1u8..20 {
            let ours_secret = [seed; 32];
            let theirs_secret = [seed.wrapping_mul(7); 32];
            let mut ours = AwsLcX25519::default();
            ours.set(&ours_secret);
            portable.set(&ours_secret);
            assert_eq!(ours.pubkey(), portable.pubkey(), "public keys");
            let mut theirs = AwsLcX25519::default();
            theirs.set(&theirs_secret);
            let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
            ours.dh(theirs.pubkey(), &mut a).unwrap();
            portable.dh(theirs.pubkey(), &mut b).unwrap();
            assert_eq!(a, b, "shared secrets");
        }
    }

    #[test]
    fn a_small_order_point_is_refused() {
        let mut ours = AwsLcX25519::default();
        ours.set(&[3; 32]);
        let mut out = [0u8; 32];
        // u = 0 and u = 1 have small order: the secret would be all zero.
        assert!(ours.dh(&[0; 32], &mut out).is_err());
        let mut one = [0u8; 32];
        one[0] = 1;
        assert!(ours.dh(&one, &mut out).is_err());
        assert!(ours.dh(&[1; 8], &mut out).is_err(), "short key");
    }
}
