//! Long-term peer identity.
//!
//! A peer is identified by its long-term X25519 public key, the same key it
//! uses as the Noise static key. A completed handshake therefore *proves*
//! the remote's [`PeerId`]: there is no separate identifier a peer could
//! claim without holding the matching secret key.

use std::fmt;
use std::str::FromStr;

use curve25519_dalek::montgomery::MontgomeryPoint;
use rand_core::CryptoRng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

use crate::error::Error;

/// Length of a [`PeerId`] in bytes.
pub const PEER_ID_LEN: usize = 32;

/// Length of the printable form of a [`PeerId`] (unpadded base32 of 32 bytes).
pub const PEER_ID_STR_LEN: usize = 52;

/// Length of [`Keypair::to_bytes`]' output.
pub const KEYPAIR_ENCODED_LEN: usize = KEYPAIR_MAGIC.len() + 1 + 32 + 32;

const KEYPAIR_MAGIC: &[u8; 4] = b"P2PK";
const KEYPAIR_FORMAT_VERSION: u8 = 1;

/// A peer's identity: its 32-byte X25519 static public key.
///
/// The printable form ([`Display`](fmt::Display) / [`FromStr`]) is
/// lowercase RFC 4648 base32 without padding, 52 characters. Parsing is
/// case-insensitive. [`Debug`](fmt::Debug) prints a short prefix.
///
/// With serde, human-readable formats (JSON, TOML) use the printable string
/// and binary formats the raw 32 bytes.
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

/// A long-term X25519 keypair: the local peer's identity.
///
/// The secret key is zeroized on drop and never printed. Persist it with
/// [`to_bytes`](Self::to_bytes) (the runtime writes it with file mode 0600)
/// and restore it with [`from_bytes`](Self::from_bytes).
#[derive(Clone)]
pub struct Keypair {
    secret: Zeroizing<[u8; 32]>,
    public: PeerId,
}

impl Keypair {
    /// Generates a fresh keypair from a cryptographically secure RNG.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut secret = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(secret.as_mut());
        Self::from_secret(secret)
    }

    /// Rebuilds a keypair from its 32-byte secret key; the public key is
    /// derived. Prefer [`from_bytes`](Self::from_bytes) for persisted keys,
    /// which also checks the stored public key.
    pub fn from_secret_bytes(secret: [u8; 32]) -> Self {
        Self::from_secret(Zeroizing::new(secret))
    }

    /// Parses the encoding produced by [`to_bytes`](Self::to_bytes).
    ///
    /// The layout is `b"P2PK"`, a format version byte (1), the 32-byte
    /// secret, then the 32-byte public key. The public key is redundant and
    /// checked, which catches truncation and corruption of the stored file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() != KEYPAIR_ENCODED_LEN {
            return Err(Error::InvalidKeypair("wrong length"));
        }
        let (magic, rest) = bytes.split_at(KEYPAIR_MAGIC.len());
        if magic != KEYPAIR_MAGIC {
            return Err(Error::InvalidKeypair("bad magic"));
        }
        let (version, rest) = rest.split_at(1);
        if version != [KEYPAIR_FORMAT_VERSION] {
            return Err(Error::InvalidKeypair("unsupported format version"));
        }
        let (secret_bytes, public_bytes) = rest.split_at(32);
        let mut secret = Zeroizing::new([0u8; 32]);
        secret.copy_from_slice(secret_bytes);
        let keypair = Self::from_secret(secret);
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
        out.extend_from_slice(self.secret.as_ref());
        out.extend_from_slice(self.public.as_bytes());
        out
    }

    /// This keypair's peer id (its public key).
    pub fn peer_id(&self) -> PeerId {
        self.public
    }

    pub(crate) fn secret(&self) -> &[u8; 32] {
        &self.secret
    }

    fn from_secret(secret: Zeroizing<[u8; 32]>) -> Self {
        let public = MontgomeryPoint::mul_base_clamped(*secret).to_bytes();
        Self {
            secret,
            public: PeerId(public),
        }
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
    use super::*;

    fn hex(s: &str) -> [u8; 32] {
        let v = data_encoding::HEXLOWER.decode(s.as_bytes()).unwrap();
        v.try_into().unwrap()
    }

    #[test]
    fn public_key_matches_rfc7748_vector() {
        // RFC 7748 section 6.1, Alice.
        let kp = Keypair::from_secret_bytes(hex(
            "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
        ));
        assert_eq!(
            kp.peer_id().as_bytes(),
            &hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
        );
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
        let kp = Keypair::from_secret_bytes([42; 32]);
        let bytes = kp.to_bytes();
        assert_eq!(bytes.len(), KEYPAIR_ENCODED_LEN);
        let back = Keypair::from_bytes(&bytes).unwrap();
        assert_eq!(back.peer_id(), kp.peer_id());
        assert_eq!(back.secret(), kp.secret());

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
    fn debug_never_shows_the_secret() {
        let kp = Keypair::from_secret_bytes([0xab; 32]);
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
