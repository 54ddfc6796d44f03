//! Long-term peer identity.
//!
//! A peer is identified by its long-term Ed25519 public key. The same key
//! signs what the peer says about itself (its [bootstrap
//! records](crate::record), so a server that relays a record cannot forge
//! or alter it) and, mapped to Curve25519, is its Noise static key: the
//! X25519 secret is derived from the Ed25519 one as libsodium's
//! `crypto_sign_ed25519_sk_to_curve25519` does, and the public key by the
//! birational map from Edwards to Montgomery form. A completed handshake
//! therefore *proves* the remote's [`PeerId`]: the remote sends its Ed25519
//! key in its (authenticated) hello, and the receiver checks that it maps
//! to the static key the remote just proved it holds. Nobody can claim an
//! identity without holding its secret.
//!
//! Signatures are domain-separated ([`PeerId::verify`]): a signature made
//! for one purpose never verifies for another.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rand_core::CryptoRng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

use crate::error::Error;
use crate::x25519::LoadedKey;

/// Length of a [`PeerId`] in bytes.
pub const PEER_ID_LEN: usize = 32;

/// Length of the printable form of a [`PeerId`] (unpadded base32 of 32 bytes).
pub const PEER_ID_STR_LEN: usize = 52;

/// Length of a signature ([`Keypair::sign`]).
pub const SIGNATURE_LEN: usize = 64;

/// Length of [`Keypair::to_bytes`]' output.
pub const KEYPAIR_ENCODED_LEN: usize = KEYPAIR_MAGIC.len() + 1 + 32 + 32;

/// Longest signing domain ([`Keypair::sign`]).
pub const MAX_DOMAIN_LEN: usize = 64;

const KEYPAIR_MAGIC: &[u8; 4] = b"P2PK";
/// Format 1 held an X25519 secret, from which no Ed25519 key follows.
const KEYPAIR_FORMAT_X25519: u8 = 1;
const KEYPAIR_FORMAT_VERSION: u8 = 2;

/// A peer's identity: its 32-byte Ed25519 public key.
///
/// The printable form ([`Display`](fmt::Display) / [`FromStr`]) is
/// lowercase RFC 4648 base32 without padding, 52 characters. Parsing is
/// case-insensitive. [`Debug`](fmt::Debug) prints a short prefix.
///
/// With serde, human-readable formats (JSON, TOML) use the printable string
/// and binary formats the raw 32 bytes.
///
/// Any 32 bytes make a `PeerId` (a table key, a parsed address); whether
/// they are a usable key is checked where it matters: [`noise_key`] and
/// [`verify`] refuse bytes that are not a point of the curve or are of
/// small order.
///
/// [`noise_key`]: Self::noise_key
/// [`verify`]: Self::verify
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerId([u8; PEER_ID_LEN]);

impl PeerId {
    /// A peer id from raw public key bytes.
    pub const fn from_bytes(bytes: [u8; PEER_ID_LEN]) -> Self {
        Self(bytes)
    }

    /// A peer id from a slice that must be exactly [`PEER_ID_LEN`] bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        let bytes: [u8; PEER_ID_LEN] = bytes
            .try_into()
            .map_err(|_| Error::InvalidPeerId("expected 32 bytes"))?;
        Ok(Self(bytes))
    }

    /// The raw public key bytes.
    pub const fn as_bytes(&self) -> &[u8; PEER_ID_LEN] {
        &self.0
    }

    /// The first 8 characters of the printable form, for logs.
    pub fn short(&self) -> String {
        let mut s = self.to_string();
        s.truncate(8);
        s
    }

    /// The X25519 public key this identity uses as its Noise static key.
    pub fn noise_key(&self) -> Result<[u8; 32], Error> {
        Ok(self.verifying_key()?.to_montgomery().to_bytes())
    }

    /// Checks `signature` over `message` in `domain` (see
    /// [`Keypair::sign`]). Verification is strict (RFC 8032 with the
    /// canonical-encoding and small-order checks), so a signature has one
    /// encoding and cannot be mauled into another that also verifies.
    pub fn verify(
        &self,
        domain: &str,
        message: &[u8],
        signature: &[u8; SIGNATURE_LEN],
    ) -> Result<(), Error> {
        let key = self.verifying_key()?;
        let signature = ed25519_dalek::Signature::from_bytes(signature);
        key.verify_strict(&signed_bytes(domain, message)?, &signature)
            .map_err(|_| Error::BadSignature)
    }

    fn verifying_key(&self) -> Result<VerifyingKey, Error> {
        let key = VerifyingKey::from_bytes(&self.0)
            .map_err(|_| Error::InvalidPeerId("not an Ed25519 public key"))?;
        if key.is_weak() {
            return Err(Error::InvalidPeerId("a small-order Ed25519 key"));
        }
        Ok(key)
    }
}

/// What a signature covers: the domain's length and bytes, then the
/// message, so that no (domain, message) pair reads as another.
fn signed_bytes(domain: &str, message: &[u8]) -> Result<Vec<u8>, Error> {
    let len = u8::try_from(domain.len())
        .ok()
        .filter(|&len| usize::from(len) <= MAX_DOMAIN_LEN && len > 0)
        .ok_or(Error::InvalidConfig("signing domain must be 1–64 bytes"))?;
    let mut bytes = Vec::with_capacity(1 + domain.len() + message.len());
    bytes.push(len);
    bytes.extend_from_slice(domain.as_bytes());
    bytes.extend_from_slice(message);
    Ok(bytes)
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = data_encoding::BASE32_NOPAD.encode(&self.0);
        s.make_ascii_lowercase();
        f.write_str(&s)
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({}…)", self.short())
    }
}

impl FromStr for PeerId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        if s.len() != PEER_ID_STR_LEN {
            return Err(Error::InvalidPeerId("expected 52 base32 characters"));
        }
        let upper = s.to_ascii_uppercase();
        let bytes = data_encoding::BASE32_NOPAD
            .decode(upper.as_bytes())
            .map_err(|_| Error::InvalidPeerId("not valid base32"))?;
        Self::from_slice(&bytes)
    }
}

impl Serialize for PeerId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            self.0.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for PeerId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
            s.parse().map_err(serde::de::Error::custom)
        } else {
            <[u8; PEER_ID_LEN]>::deserialize(deserializer).map(Self)
        }
    }
}

/// A long-term Ed25519 keypair: the local peer's identity.
///
/// The secret is zeroized on drop and never printed. Persist it with
/// [`to_bytes`](Self::to_bytes) (the runtime writes it with file mode 0600)
/// and restore it with [`from_bytes`](Self::from_bytes).
#[derive(Clone)]
pub struct Keypair {
    // Boxed: the expanded key is a few hundred bytes, and a keypair
    // travels by value through builders and enums.
    signing: Box<SigningKey>,
    public: PeerId,
    /// The Noise static key as AWS-LC holds it, loaded by the first
    /// handshake and shared by every later one: loading derives its
    /// public key, an X25519 operation a connect need not pay again.
    noise_key: OnceLock<Option<Arc<LoadedKey>>>,
}

impl Keypair {
    /// Generates a fresh keypair from a cryptographically secure RNG.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(seed.as_mut());
        Self::from_seed(&seed)
    }

    /// Rebuilds a keypair from its 32-byte Ed25519 secret (RFC 8032's
    /// private key, the seed); the public key is derived. Prefer
    /// [`from_bytes`](Self::from_bytes) for persisted keys, which also
    /// checks the stored public key.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let signing = Box::new(SigningKey::from_bytes(seed));
        let public = PeerId(signing.verifying_key().to_bytes());
        Self {
            signing,
            public,
            noise_key: OnceLock::new(),
        }
    }

    /// Parses the encoding produced by [`to_bytes`](Self::to_bytes).
    ///
    /// The layout is `b"P2PK"`, a format version byte (2), the 32-byte
    /// Ed25519 seed, then the 32-byte public key. The public key is
    /// redundant and checked, which catches truncation and corruption of
    /// the stored file. Format 1 (an X25519 key, which cannot sign) is
    /// refused with a message saying what to do.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() != KEYPAIR_ENCODED_LEN {
            return Err(Error::InvalidKeypair("wrong length"));
        }
        let (magic, rest) = bytes.split_at(KEYPAIR_MAGIC.len());
        if magic != KEYPAIR_MAGIC {
            return Err(Error::InvalidKeypair("bad magic"));
        }
        let (version, rest) = rest.split_at(1);
        match version[0] {
            KEYPAIR_FORMAT_VERSION => {}
            KEYPAIR_FORMAT_X25519 => {
                return Err(Error::InvalidKeypair(
                    "an X25519 identity from an older version, which cannot sign records; \
                     move the file away and a new Ed25519 identity is created \
                     (the peer id changes: peers that pinned the old one must re-approve)",
                ));
            }
            _ => return Err(Error::InvalidKeypair("unsupported format version")),
        }
        let (seed_bytes, public_bytes) = rest.split_at(32);
        let mut seed = Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(seed_bytes);
        let keypair = Self::from_seed(&seed);
        if keypair.public.as_bytes() != public_bytes {
            return Err(Error::InvalidKeypair(
                "public key does not match secret key",
            ));
        }
        Ok(keypair)
    }

    /// Serializes the keypair (see [`from_bytes`](Self::from_bytes) for the
    /// layout). The returned buffer is zeroized when dropped.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(KEYPAIR_ENCODED_LEN));
        out.extend_from_slice(KEYPAIR_MAGIC);
        out.push(KEYPAIR_FORMAT_VERSION);
        out.extend_from_slice(self.signing.as_bytes());
        out.extend_from_slice(self.public.as_bytes());
        out
    }

    /// This keypair's peer id (its public key).
    pub fn peer_id(&self) -> PeerId {
        self.public
    }

    /// Signs `message` in `domain` (1–[`MAX_DOMAIN_LEN`] bytes, naming what
    /// the signature is for, e.g. `p2pnet/record/v1`). The signed bytes
    /// are the domain's length, the domain, then the message; verify with
    /// [`PeerId::verify`] and the same domain.
    pub fn sign(&self, domain: &str, message: &[u8]) -> Result<[u8; SIGNATURE_LEN], Error> {
        Ok(self
            .signing
            .sign(&signed_bytes(domain, message)?)
            .to_bytes())
    }

    /// The X25519 secret of the Noise static key: the first half of
    /// SHA-512 of the seed, as Ed25519 derives its scalar (X25519 clamps
    /// it the same way), so its public key is [`PeerId::noise_key`].
    pub(crate) fn noise_secret(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.signing.to_scalar_bytes())
    }

    /// The Noise static key, loaded into AWS-LC on first use.
    pub(crate) fn noise_key(&self) -> Option<Arc<LoadedKey>> {
        self.noise_key
            .get_or_init(|| LoadedKey::new(&self.noise_secret()).map(Arc::new))
            .clone()
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keypair")
            .field("peer_id", &self.public)
            .field("secret", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use curve25519_dalek::montgomery::MontgomeryPoint;

    use super::*;

    fn hex(s: &str) -> [u8; 32] {
        let v = data_encoding::HEXLOWER.decode(s.as_bytes()).unwrap();
        v.try_into().unwrap()
    }

    #[test]
    fn public_key_matches_rfc8032_vector() {
        // RFC 8032 section 7.1, TEST 1.
        let kp = Keypair::from_seed(&hex(
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        ));
        assert_eq!(
            kp.peer_id().as_bytes(),
            &hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
        );
    }

    #[test]
    fn the_noise_key_is_the_montgomery_form_of_the_identity() {
        // An Ed25519 key and its X25519 form as another implementation
        // (libsodium's crypto_sign_ed25519_pk_to_curve25519) gives them.
        let id = PeerId::from_bytes(hex(
            "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29",
        ));
        assert_eq!(
            id.noise_key().unwrap(),
            hex("5bf55c73b82ebe22be80f3430667af570fae2556a6415e6b30d4065300aa947d")
        );
        // The derived secret's public key is that same key, for any seed.
        for seed in [[1u8; 32], [0x5a; 32], [0xff; 32]] {
            let kp = Keypair::from_seed(&seed);
            let public = MontgomeryPoint::mul_base_clamped(*kp.noise_secret()).to_bytes();
            assert_eq!(public, kp.peer_id().noise_key().unwrap());
        }
    }

    #[test]
    fn signatures_are_bound_to_key_domain_and_message() {
        let kp = Keypair::from_seed(&[3; 32]);
        let other = Keypair::from_seed(&[4; 32]);
        let sig = kp.sign("p2pnet/test", b"hello").unwrap();
        let id = kp.peer_id();
        assert_eq!(id.verify("p2pnet/test", b"hello", &sig), Ok(()));
        assert_eq!(
            id.verify("p2pnet/other", b"hello", &sig),
            Err(Error::BadSignature)
        );
        assert_eq!(
            id.verify("p2pnet/test", b"hellO", &sig),
            Err(Error::BadSignature)
        );
        // A domain cannot swallow the start of the message.
        assert_eq!(
            id.verify("p2pnet/testh", b"ello", &sig),
            Err(Error::BadSignature)
        );
        assert_eq!(
            other.peer_id().verify("p2pnet/test", b"hello", &sig),
            Err(Error::BadSignature)
        );
        let mut flipped = sig;
        flipped[40] ^= 1;
        assert_eq!(
            id.verify("p2pnet/test", b"hello", &flipped),
            Err(Error::BadSignature)
        );
        assert!(kp.sign("", b"x").is_err(), "an empty domain");
        assert!(
            kp.sign(&"d".repeat(65), b"x").is_err(),
            "an overlong domain"
        );
    }

    #[test]
    fn bytes_that_are_no_usable_key_are_refused() {
        // The identity point (small order) and a y with no point on the curve.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        for bytes in [
            identity,
            hex("0200000000000000000000000000000000000000000000000000000000000000"),
        ] {
            let id = PeerId::from_bytes(bytes);
            assert!(
                matches!(id.noise_key(), Err(Error::InvalidPeerId(_))),
                "{id:?}"
            );
            assert!(matches!(
                id.verify("p2pnet/test", b"x", &[0; 64]),
                Err(Error::InvalidPeerId(_))
            ));
        }
    }

    #[test]
    fn peer_id_display_parse_round_trip() {
        let id = PeerId::from_bytes([0xa5; 32]);
        let s = id.to_string();
        assert_eq!(s.len(), PEER_ID_STR_LEN);
        assert!(
            s.bytes()
                .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
        );
        assert_eq!(s.parse::<PeerId>().unwrap(), id);
        assert_eq!(s.to_ascii_uppercase().parse::<PeerId>().unwrap(), id);
        assert_eq!(format!("{id:?}"), format!("PeerId({}…)", &s[..8]));
    }

    #[test]
    fn peer_id_parse_rejects_garbage() {
        assert!(matches!("".parse::<PeerId>(), Err(Error::InvalidPeerId(_))));
        let mut s = PeerId::from_bytes([1; 32]).to_string();
        s.replace_range(0..1, "1"); // '1' is not in the base32 alphabet
        assert!(matches!(s.parse::<PeerId>(), Err(Error::InvalidPeerId(_))));
        assert!(PeerId::from_slice(&[0; 31]).is_err());
    }

    #[test]
    fn peer_id_serde_binary_is_raw_bytes() {
        let id = PeerId::from_bytes([7; 32]);
        let bytes = postcard::to_allocvec(&id).unwrap();
        assert_eq!(bytes, vec![7; 32]);
        assert_eq!(postcard::from_bytes::<PeerId>(&bytes).unwrap(), id);
    }

    #[test]
    fn keypair_bytes_round_trip_and_corruption() {
        let kp = Keypair::from_seed(&[42; 32]);
        let bytes = kp.to_bytes();
        assert_eq!(bytes.len(), KEYPAIR_ENCODED_LEN);
        let back = Keypair::from_bytes(&bytes).unwrap();
        assert_eq!(back.peer_id(), kp.peer_id());
        assert_eq!(back.to_bytes(), kp.to_bytes());

        let mut flipped = bytes.to_vec();
        flipped[10] ^= 1; // inside the secret: public no longer matches
        assert_eq!(
            Keypair::from_bytes(&flipped).unwrap_err(),
            Error::InvalidKeypair("public key does not match secret key")
        );
        let mut bad_magic = bytes.to_vec();
        bad_magic[0] = b'X';
        assert_eq!(
            Keypair::from_bytes(&bad_magic).unwrap_err(),
            Error::InvalidKeypair("bad magic")
        );
        assert_eq!(
            Keypair::from_bytes(&bytes[..40]).unwrap_err(),
            Error::InvalidKeypair("wrong length")
        );
    }

    #[test]
    fn an_x25519_identity_file_is_refused_with_what_to_do() {
        let mut old = b"P2PK\x01".to_vec();
        old.extend_from_slice(&[9; 64]);
        let err = Keypair::from_bytes(&old).unwrap_err().to_string();
        assert!(err.contains("older version"), "{err}");
        assert!(err.contains("move the file away"), "{err}");
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let kp = Keypair::from_seed(&[0xab; 32]);
        let dbg = format!("{kp:?}");
        assert!(dbg.contains("<redacted>"));
        assert!(!dbg.contains("ab, ab") && !dbg.contains("171"), "{dbg}");
    }

    #[test]
    fn generate_uses_the_rng() {
        use rand::SeedableRng;
        let a = Keypair::generate(&mut rand::rngs::StdRng::seed_from_u64(1));
        let b = Keypair::generate(&mut rand::rngs::StdRng::seed_from_u64(1));
        let c = Keypair::generate(&mut rand::rngs::StdRng::seed_from_u64(2));
        assert_eq!(a.peer_id(), b.peer_id());
        assert_ne!(a.peer_id(), c.peer_id());
    }
}
