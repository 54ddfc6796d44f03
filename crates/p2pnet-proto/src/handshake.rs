//! Noise handshake and transport encryption.
//!
//! # Wire format
//!
//! Every message on the TCP stream, handshake or transport, is a Noise
//! message preceded by its length as a big-endian `u16`:
//!
//! ```text
//! +----------------+------------------------------+
//! | length (u16 BE)| Noise message (length bytes) |
//! +----------------+------------------------------+
//! ```
//!
//! The pattern is [`NOISE_PARAMS`] (`Noise_XX_25519_ChaChaPoly_BLAKE2s`):
//!
//! ```text
//! -> e                      payload: empty (nothing is encrypted yet)
//! <- e, ee, s, es           payload: responder's Hello
//! -> s, se                  payload: initiator's Hello
//! ```
//!
//! The prologue is `"p2pnet/v1\0"` followed by the network name (see
//! [`ChannelConfig::network`](crate::ChannelConfig::network)), so peers of
//! another network fail the handshake instead of talking past each other.
//! The `v1` names this handshake's shape and stays fixed: protocol versions
//! are told apart by the hello's first byte, which each side reads before
//! the rest, so a peer of another version is told "incompatible version"
//! rather than failing on a bare authentication error.
//!
//! Each `Hello` travels encrypted and is bound to the handshake transcript:
//! it is authenticated by the sender's static key. It carries the sender's
//! [`PeerId`] (its Ed25519 key), which is accepted only if it maps to that
//! static key (see [`identity`](crate::identity)). An initiator that
//! expects a specific peer checks the responder's identity on message 2
//! and aborts *before* message 3, so it never reveals its own identity to
//! an impostor.
//!
//! # Versions and the transport cipher
//!
//! A hello starts with the sender's protocol version. Version 2 hellos end
//! after the sender's identity; version 3 appends the transport ciphers the
//! sender accepts, and later versions may only append more: a reader takes
//! the fields it knows and ignores what follows. The responder sends its
//! hello first, at its own version; the initiator answers at the lower of
//! the two, so a node of this version dials a version 2 node as version 2.
//! Both sides then pick the transport cipher with
//! [`Cipher::negotiate`](crate::Cipher::negotiate); a version 2 hello
//! offers ChaCha20-Poly1305 alone. With no cipher in common the initiator
//! aborts before message 3.
//!
//! After the handshake each transport message carries at most
//! [`MAX_NOISE_PAYLOAD_LEN`] bytes of the application stream (see
//! [`codec`](crate::codec)), sealed by the negotiated cipher under keys
//! from Noise's `Split()` (see `transport.rs`). Nonces are implicit
//! counters, so any tampered, replayed, reordered or dropped message fails
//! authentication, which is fatal for the channel.
//!
//! # Randomness
//!
//! The ephemeral keys come from a seed the caller draws from its own RNG
//! when creating the channel, expanded with BLAKE3 in XOF mode. `snow` is
//! built without its OS RNG, so nothing in this crate reads system
//! randomness and a seeded test RNG makes handshakes reproducible.

use std::cell::Cell;
use std::sync::Arc;

use snow::params::{CipherChoice, DHChoice, HashChoice, NoiseParams};
use snow::resolvers::{CryptoResolver, DefaultResolver, RingResolver};
use snow::types::{Cipher as NoiseCipher, Dh, Hash, Random};
use zeroize::Zeroizing;

use crate::cipher::Cipher;
use crate::codec::{MAX_FRAME_SIZE_CEILING, MIN_MAX_FRAME_SIZE};
use crate::error::{Error, HandshakeError};
use crate::identity::{Keypair, PeerId};
use crate::transport::{TAG_LEN, Transport};
use crate::trust::Direction;
use crate::x25519::{AwsLcX25519, LoadedKey};
use crate::{MIN_PROTOCOL_VERSION, PROTOCOL_VERSION};

/// The Noise protocol name.
pub const NOISE_PARAMS: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";
/// Largest Noise message, the limit of the `u16` length prefix.
pub const MAX_NOISE_MESSAGE_LEN: usize = 65535;
/// Length of the AEAD tag in every transport message.
pub const NOISE_TAG_LEN: usize = TAG_LEN;
/// Most plaintext one transport message carries.
pub const MAX_NOISE_PAYLOAD_LEN: usize = MAX_NOISE_MESSAGE_LEN - NOISE_TAG_LEN;
/// Largest handshake message accepted. Real ones are under 300 bytes; the
/// bound makes a non-P2PNet client fail fast.
pub const MAX_HANDSHAKE_MESSAGE_LEN: usize = 1024;
/// Largest [`Hello::agent`], in bytes.
pub const MAX_AGENT_LEN: usize = 64;
/// Largest network name bound into the prologue, in bytes.
pub const MAX_NETWORK_LEN: usize = 64;

/// Length of the prefix giving each Noise message's length.
pub(crate) const LEN_PREFIX: usize = 2;

/// What each peer tells the other inside the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Hello {
    /// The version the sender wrote this hello at: [`PROTOCOL_VERSION`],
    /// or lower when answering an older responder.
    pub protocol_version: u8,
    /// The TCP port the sender accepts connections on, if any.
    pub listening_port: Option<u16>,
    /// Free-form software name and version, at most [`MAX_AGENT_LEN`]
    /// bytes.
    pub agent: String,
    /// The largest frame body the sender accepts; the other side never
    /// sends more.
    pub max_frame_size: u32,
    /// The transport ciphers the sender accepts (a version 2 hello:
    /// ChaCha20-Poly1305 alone). Ciphers this version does not know are
    /// left out when decoding.
    pub ciphers: Vec<Cipher>,
}

impl Hello {
    /// A hello for the current protocol version, offering
    /// [`Cipher::defaults`].
    pub fn new(listening_port: Option<u16>, agent: impl Into<String>, max_frame_size: u32) -> Self {
        Self {
            protocol_version: PROTOCOL_VERSION,
            listening_port,
            agent: agent.into(),
            max_frame_size,
            ciphers: Cipher::defaults(),
        }
    }

    /// The payload at `version`: this hello, then the sender's identity,
    /// then (version 3 on) the cipher tags.
    fn encode(&self, version: u8, identity: PeerId) -> Result<Vec<u8>, Error> {
        self.validate().map_err(Error::InvalidConfig)?;
        let unserializable = |_| Error::InvalidConfig("hello is not serializable");
        let prefix = (
            version,
            self.listening_port,
            self.agent.as_str(),
            self.max_frame_size,
            identity,
        );
        let bytes = postcard::to_allocvec(&prefix).map_err(unserializable)?;
        if version < 3 {
            return Ok(bytes);
        }
        let tags: Vec<u8> = self.ciphers.iter().map(|c| c.tag()).collect();
        postcard::to_extend(&tags, bytes).map_err(unserializable)
    }

    /// The sender's hello and claimed identity (checked by the caller
    /// against the static key).
    fn decode(payload: &[u8]) -> Result<(Self, PeerId), HandshakeError> {
        // The version byte comes first so that an unknown layout is
        // reported as a version mismatch rather than as garbage.
        let Some(&remote) = payload.first() else {
            return Err(HandshakeError::InvalidHello("empty"));
        };
        if remote < MIN_PROTOCOL_VERSION {
            return Err(HandshakeError::IncompatibleVersion {
                local: PROTOCOL_VERSION,
                remote,
            });
        }
        let undecodable = |_| HandshakeError::InvalidHello("undecodable");
        type Prefix = (u8, Option<u16>, String, u32, PeerId);
        let ((_, listening_port, agent, max_frame_size, identity), mut rest): (Prefix, _) =
            postcard::take_from_bytes(payload).map_err(undecodable)?;
        let ciphers = if remote < 3 {
            vec![Cipher::ChaCha20Poly1305]
        } else {
            let (tags, after): (Vec<u8>, _) =
                postcard::take_from_bytes(rest).map_err(undecodable)?;
            rest = after;
            if tags.len() > Cipher::MAX_OFFERED {
                return Err(HandshakeError::InvalidHello("too many ciphers"));
            }
            tags.into_iter().filter_map(Cipher::from_tag).collect()
        };
        // Later versions append fields this one does not know.
        if remote <= PROTOCOL_VERSION && !rest.is_empty() {
            return Err(HandshakeError::InvalidHello("trailing bytes"));
        }
        let hello = Self {
            protocol_version: remote,
            listening_port,
            agent,
            max_frame_size,
            ciphers,
        };
        hello.validate().map_err(HandshakeError::InvalidHello)?;
        Ok((hello, identity))
    }

    fn validate(&self) -> Result<(), &'static str> {
        if self.agent.len() > MAX_AGENT_LEN {
            return Err("agent string too long");
        }
        if self.ciphers.len() > Cipher::MAX_OFFERED {
            return Err("too many ciphers");
        }
        if !(MIN_MAX_FRAME_SIZE..=MAX_FRAME_SIZE_CEILING).contains(&self.max_frame_size) {
            return Err("max_frame_size out of range");
        }
        Ok(())
    }
}

/// The prologue both sides mix into the handshake.
pub(crate) fn prologue(network: &str) -> Vec<u8> {
    let mut p = b"p2pnet/v1".to_vec();
    p.push(0);
    p.extend_from_slice(network.as_bytes());
    p
}

/// Reassembles length-prefixed Noise messages from a byte stream.
#[derive(Debug, Default)]
pub(crate) struct MessageReader {
    len_buf: [u8; LEN_PREFIX],
    len_have: usize,
    want: Option<usize>,
    msg: Vec<u8>,
    ready: bool,
}

/// A declared message length above the reader's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooLarge(pub(crate) usize);

impl MessageReader {
    /// Consumes bytes from `input` until one message is complete (returned)
    /// or `input` is exhausted.
    pub(crate) fn read(
        &mut self,
        input: &mut &[u8],
        limit: usize,
    ) -> Result<Option<&[u8]>, TooLarge> {
        if self.ready {
            self.ready = false;
            self.msg.clear();
        }
        let want = match self.want {
            Some(want) => want,
            None => {
                let take = (LEN_PREFIX - self.len_have).min(input.len());
                let (head, rest) = input.split_at(take);
                self.len_buf[self.len_have..self.len_have + take].copy_from_slice(head);
                self.len_have += take;
                *input = rest;
                if self.len_have < LEN_PREFIX {
                    return Ok(None);
                }
                self.len_have = 0;
                let want = usize::from(u16::from_be_bytes(self.len_buf));
                if want > limit {
                    return Err(TooLarge(want));
                }
                self.want = Some(want);
                want
            }
        };
        let take = (want - self.msg.len()).min(input.len());
        let (head, rest) = input.split_at(take);
        self.msg.extend_from_slice(head);
        *input = rest;
        if self.msg.len() < want {
            return Ok(None);
        }
        self.want = None;
        self.ready = true;
        Ok(Some(&self.msg))
    }

    /// Lends out the message just completed, so it can be opened in
    /// place; give the buffer back with
    /// [`return_message`](Self::return_message) to keep its capacity.
    pub(crate) fn take_message(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.msg)
    }

    /// Takes back the buffer lent by [`take_message`](Self::take_message).
    pub(crate) fn return_message(&mut self, message: Vec<u8>) {
        self.msg = message;
    }

    /// Whether no message is half read.
    pub(crate) fn is_idle(&self) -> bool {
        self.want.is_none() && self.len_have == 0
    }

    /// Frees the message buffer if no message is half read.
    pub(crate) fn release_buffer(&mut self) {
        if self.is_idle() {
            self.msg = Vec::new();
            self.ready = false;
        }
    }
}

/// What a completed handshake yields.
pub(crate) struct Established {
    pub(crate) transport: Transport,
    pub(crate) peer_id: PeerId,
    pub(crate) hello: Hello,
    pub(crate) handshake_hash: [u8; 32],
}

/// One side of an XX handshake in progress.
pub(crate) struct Handshake {
    state: snow::HandshakeState,
    role: Direction,
    local_id: PeerId,
    local_hello: Hello,
    expected: Option<PeerId>,
    remote: Option<(PeerId, Hello)>,
    cipher: Option<Cipher>,
    /// The version this side writes its hellos at: [`PROTOCOL_VERSION`]
    /// (tests lower it to play an older node).
    version: u8,
    messages_read: u8,
}

impl Handshake {
    /// Starts a handshake. An initiator's first message is appended to
    /// `out` (length-prefixed).
    pub(crate) fn new(
        role: Direction,
        identity: &Keypair,
        network: &str,
        hello: &Hello,
        expected: Option<PeerId>,
        rng_seed: Zeroizing<[u8; 32]>,
        out: &mut Vec<u8>,
    ) -> Result<Self, Error> {
        let params: NoiseParams = NOISE_PARAMS
            .parse()
            .map_err(|_| Error::InvalidConfig("unsupported noise parameters"))?;
        let prologue = prologue(network);
        let resolver = Box::new(SeededResolver {
            seed: rng_seed,
            calls: Cell::new(0),
            static_key: identity.noise_key(),
        });
        let noise_secret = identity.noise_secret();
        let builder = snow::Builder::with_resolver(params, resolver)
            .local_private_key(noise_secret.as_ref())
            .and_then(|b| b.prologue(&prologue))
            .map_err(|_| Error::InvalidConfig("noise builder rejected key or prologue"))?;
        let state = match role {
            Direction::Outbound => builder.build_initiator(),
            Direction::Inbound => builder.build_responder(),
        }
        .map_err(|_| Error::InvalidConfig("noise handshake state could not be built"))?;
        // Checked now, so a bad hello fails the constructor, not a peer.
        hello.validate().map_err(Error::InvalidConfig)?;
        let mut hs = Self {
            state,
            role,
            local_id: identity.peer_id(),
            local_hello: hello.clone(),
            expected,
            remote: None,
            cipher: None,
            version: PROTOCOL_VERSION,
            messages_read: 0,
        };
        if role == Direction::Outbound {
            hs.write(&[], out)?;
        }
        Ok(hs)
    }

    /// Processes one handshake message; any reply is appended to `out`.
    /// Returns whether the handshake is complete.
    pub(crate) fn read(&mut self, msg: &[u8], out: &mut Vec<u8>) -> Result<bool, Error> {
        let mut payload = vec![0u8; msg.len()];
        let n = self
            .state
            .read_message(msg, &mut payload)
            .map_err(|_| HandshakeError::Crypto)?;
        payload.truncate(n);
        self.messages_read += 1;
        match (self.role, self.messages_read) {
            // Responder, `-> e`: nothing is authenticated yet, so a payload
            // would be unauthenticated plaintext. Refuse it.
            (Direction::Inbound, 1) => {
                if !payload.is_empty() {
                    return Err(HandshakeError::UnexpectedPayload.into());
                }
                let hello = self.local_hello.encode(self.version, self.local_id)?;
                self.write(&hello, out)?;
                Ok(false)
            }
            // Initiator, `<- e, ee, s, es`: the responder is now known, and
            // it is checked before this side reveals itself in message 3.
            (Direction::Outbound, 1) => {
                let version = self.accept_remote(&payload)?;
                let hello = self.local_hello.encode(version, self.local_id)?;
                self.write(&hello, out)?;
                Ok(true)
            }
            // Responder, `-> s, se`.
            (Direction::Inbound, 2) => {
                self.accept_remote(&payload)?;
                Ok(true)
            }
            _ => Err(HandshakeError::Crypto.into()),
        }
    }

    /// Decodes and checks the remote's hello, settles the cipher, and
    /// returns the version to answer at.
    fn accept_remote(&mut self, payload: &[u8]) -> Result<u8, Error> {
        let (hello, identity) = Hello::decode(payload)?;
        let peer = self.check_remote(identity)?;
        let cipher = Cipher::negotiate(&self.local_hello.ciphers, &hello.ciphers).ok_or(
            HandshakeError::NoCommonCipher {
                remote_version: hello.protocol_version,
            },
        )?;
        let version = hello.protocol_version.min(self.version);
        self.cipher = Some(cipher);
        self.remote = Some((peer, hello));
        Ok(version)
    }

    /// Converts a completed handshake into transport mode.
    pub(crate) fn finish(mut self) -> Result<Established, Error> {
        let (Some((peer_id, hello)), Some(cipher)) = (self.remote.take(), self.cipher) else {
            return Err(HandshakeError::Crypto.into());
        };
        if !self.state.is_handshake_finished() {
            return Err(HandshakeError::Crypto.into());
        }
        let mut handshake_hash = [0u8; 32];
        let hh = self.state.get_handshake_hash();
        if hh.len() != handshake_hash.len() {
            return Err(HandshakeError::Crypto.into());
        }
        handshake_hash.copy_from_slice(hh);
        // Noise's Split(): the first key seals what the initiator sends.
        let (first, second) = self.state.dangerously_get_raw_split();
        let (first, second) = (Zeroizing::new(first), Zeroizing::new(second));
        Ok(Established {
            transport: Transport::new(cipher, self.role, &first, &second)?,
            peer_id,
            hello,
            handshake_hash,
        })
    }

    fn write(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        let mut msg = vec![0u8; MAX_HANDSHAKE_MESSAGE_LEN];
        let n = self
            .state
            .write_message(payload, &mut msg)
            .map_err(|_| HandshakeError::Crypto)?;
        let len = u16::try_from(n).map_err(|_| HandshakeError::Crypto)?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&msg[..n]);
        Ok(())
    }

    /// Accepts the identity the remote claims only if it maps to the
    /// static key the remote has just proved it holds.
    fn check_remote(&self, actual: PeerId) -> Result<PeerId, Error> {
        let key = self
            .state
            .get_remote_static()
            .ok_or(HandshakeError::Crypto)?;
        let claimed = actual
            .noise_key()
            .map_err(|_| HandshakeError::InvalidHello("identity is not an Ed25519 key"))?;
        if claimed.as_slice() != key {
            return Err(
                HandshakeError::InvalidHello("identity does not match the static key").into(),
            );
        }
        if actual == self.local_id {
            return Err(HandshakeError::SelfConnection.into());
        }
        if let Some(expected) = self.expected
            && expected != actual
        {
            return Err(HandshakeError::PeerIdMismatch { expected, actual }.into());
        }
        Ok(actual)
    }
}

/// Resolves `snow`'s primitives from its default resolver, except the RNG,
/// which is a BLAKE3 XOF keyed by a caller-provided seed, the cipher, which
/// is ring's, and X25519, which is AWS-LC's (`x25519.rs`).
struct SeededResolver {
    seed: Zeroizing<[u8; 32]>,
    calls: Cell<u64>,
    /// The node's static key, already loaded.
    static_key: Option<Arc<LoadedKey>>,
}

impl CryptoResolver for SeededResolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        // Each call gets an independent stream, so no two RNGs handed out by
        // one resolver ever repeat output.
        let call = self.calls.get();
        self.calls.set(call.wrapping_add(1));
        let mut hasher = blake3::Hasher::new_keyed(&self.seed);
        hasher.update(b"p2pnet noise ephemeral rng");
        hasher.update(&call.to_le_bytes());
        Some(Box::new(XofRng(hasher.finalize_xof())))
    }

    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        match choice {
            DHChoice::Curve25519 => {
                Some(Box::new(AwsLcX25519::with_known(self.static_key.clone())))
            }
            other => DefaultResolver.resolve_dh(other),
        }
    }

    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        DefaultResolver.resolve_hash(choice)
    }

    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn NoiseCipher>> {
        // ring's ChaCha20-Poly1305 (assembly, vectorised) first: the same
        // cipher on the wire, several times faster than the portable one.
        RingResolver
            .resolve_cipher(choice)
            .or_else(|| DefaultResolver.resolve_cipher(choice))
    }
}

struct XofRng(blake3::OutputReader);

impl Random for XofRng {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        self.0.fill(dest);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_and_the_portable_cipher_agree_on_the_wire() {
        // Nodes built before the switch to ring's cipher encrypt with the
        // portable one: both must give the same bytes for the same key,
        // nonce and associated data, each way.
        let choice = CipherChoice::ChaChaPoly;
        let mut fast = RingResolver.resolve_cipher(&choice).expect("ring");
        let mut portable = DefaultResolver.resolve_cipher(&choice).expect("default");
        let key = [7u8; 32];
        fast.set(&key);
        portable.set(&key);
        for (nonce, len) in [
            (0u64, 0usize),
            (1, 1),
            (2, 64),
            (u64::MAX - 1, 1500),
            (9, 65_519),
        ] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let mut a = vec![0u8; len + 16];
            let mut b = vec![0u8; len + 16];
            assert_eq!(fast.encrypt(nonce, b"ad", &plain, &mut a), len + 16);
            assert_eq!(portable.encrypt(nonce, b"ad", &plain, &mut b), len + 16);
            assert_eq!(a, b, "nonce {nonce}, {len} bytes");
            let mut back = vec![0u8; len];
            assert_eq!(
                portable
                    .decrypt(nonce, b"ad", &a, &mut back)
                    .expect("opens"),
                len
            );
            assert_eq!(back, plain);
            assert_eq!(
                fast.decrypt(nonce, b"ad", &b, &mut back).expect("opens"),
                len
            );
            a[0] ^= 1;
            assert!(
                fast.decrypt(nonce, b"ad", &a, &mut back).is_err(),
                "tampered"
            );
        }
    }

    #[test]
    fn message_reader_reassembles_split_messages() {
        let mut stream = Vec::new();
        for len in [0usize, 1, 300, 5] {
            stream.extend_from_slice(&(len as u16).to_be_bytes());
            stream.extend(std::iter::repeat_n(len as u8, len));
        }
        let mut reader = MessageReader::default();
        let mut got = Vec::new();
        for piece in stream.chunks(1) {
            let mut input = piece;
            while !input.is_empty() {
                if let Some(msg) = reader.read(&mut input, 1024).unwrap() {
                    got.push(msg.to_vec());
                }
            }
        }
        let lens: Vec<usize> = got.iter().map(Vec::len).collect();
        assert_eq!(lens, vec![0, 1, 300, 5]);
        assert!(got[2].iter().all(|&b| b == 44));
    }

    #[test]
    fn message_reader_rejects_declared_length_over_limit() {
        let mut reader = MessageReader::default();
        let mut input: &[u8] = b"GET / HTTP/1.1\r\n";
        assert_eq!(
            reader.read(&mut input, MAX_HANDSHAKE_MESSAGE_LEN),
            Err(TooLarge(0x4745))
        );
    }

    #[test]
    fn hello_round_trip_and_checks() {
        let hello = Hello::new(Some(8051), "p2pnet/0.1", 1 << 20);
        let id = PeerId::from_bytes([5; 32]);
        let bytes = hello.encode(PROTOCOL_VERSION, id).unwrap();
        assert_eq!(Hello::decode(&bytes).unwrap(), (hello.clone(), id));

        let mut other = bytes.clone();
        other[0] = 1;
        assert_eq!(
            Hello::decode(&other),
            Err(HandshakeError::IncompatibleVersion {
                local: PROTOCOL_VERSION,
                remote: 1
            })
        );
        assert_eq!(
            Hello::decode(&[]),
            Err(HandshakeError::InvalidHello("empty"))
        );
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(
            Hello::decode(&trailing),
            Err(HandshakeError::InvalidHello("trailing bytes"))
        );
        assert_eq!(
            Hello::decode(&bytes[..3]),
            Err(HandshakeError::InvalidHello("undecodable"))
        );

        let long = Hello::new(None, "a".repeat(MAX_AGENT_LEN + 1), 1 << 20);
        assert!(long.encode(PROTOCOL_VERSION, id).is_err());
        let bytes = postcard::to_allocvec(&(2u8, None::<u16>, "", 100u32, id)).unwrap();
        assert_eq!(
            Hello::decode(&bytes),
            Err(HandshakeError::InvalidHello("max_frame_size out of range"))
        );
    }

    #[test]
    fn seeded_resolver_streams_differ_per_call() {
        let r = SeededResolver {
            seed: Zeroizing::new([1; 32]),
            calls: Cell::new(0),
            static_key: None,
        };
        let (mut a, mut b) = (r.resolve_rng().unwrap(), r.resolve_rng().unwrap());
        let (mut x, mut y) = ([0u8; 32], [0u8; 32]);
        a.try_fill_bytes(&mut x).unwrap();
        b.try_fill_bytes(&mut y).unwrap();
        assert_ne!(x, y);
    }

    #[test]
    fn prologue_binds_the_network() {
        assert_eq!(prologue("lan"), b"p2pnet/v1\0lan");
        assert_ne!(prologue("a"), prologue("b"));
    }

    fn start(
        role: Direction,
        keys: &Keypair,
        expected: Option<PeerId>,
        out: &mut Vec<u8>,
    ) -> Handshake {
        let hello = Hello::new(None, "test", 1 << 20);
        let seed = Zeroizing::new([u8::from(role == Direction::Inbound); 32]);
        Handshake::new(role, keys, "lan", &hello, expected, seed, out).unwrap()
    }

    /// Runs `initiator` against `responder` to message 2; what the
    /// initiator makes of it, and whether it sent message 3.
    fn to_message_two(
        mut initiator: Handshake,
        mut responder: Handshake,
        first: &[u8],
    ) -> (Result<bool, Error>, bool) {
        let mut reader = MessageReader::default();
        let mut input = first;
        let msg1 = reader
            .read(&mut input, MAX_HANDSHAKE_MESSAGE_LEN)
            .unwrap()
            .unwrap()
            .to_vec();
        let mut second = Vec::new();
        assert_eq!(responder.read(&msg1, &mut second), Ok(false));
        let mut input = second.as_slice();
        let msg2 = reader
            .read(&mut input, MAX_HANDSHAKE_MESSAGE_LEN)
            .unwrap()
            .unwrap()
            .to_vec();
        let mut third = Vec::new();
        let result = initiator.read(&msg2, &mut third);
        (result, !third.is_empty())
    }

    /// One message from `out`, unframed.
    fn unframe(out: &[u8]) -> Vec<u8> {
        let mut input = out;
        MessageReader::default()
            .read(&mut input, MAX_HANDSHAKE_MESSAGE_LEN)
            .unwrap()
            .unwrap()
            .to_vec()
    }

    #[test]
    fn a_version_2_responder_is_answered_at_version_2_with_its_own_wire() {
        // Bob plays a node of protocol version 2: a version 2 hello, and
        // snow's own transport mode, as those nodes run.
        let (alice, bob) = (Keypair::from_seed(&[1; 32]), Keypair::from_seed(&[2; 32]));
        let mut first = Vec::new();
        let mut initiator = start(Direction::Outbound, &alice, None, &mut first);
        let mut responder = start(Direction::Inbound, &bob, None, &mut Vec::new());
        responder.version = 2;
        let mut second = Vec::new();
        assert_eq!(responder.read(&unframe(&first), &mut second), Ok(false));
        let mut third = Vec::new();
        assert_eq!(initiator.read(&unframe(&second), &mut third), Ok(true));
        assert_eq!(responder.read(&unframe(&third), &mut Vec::new()), Ok(true));
        let (_, alices_hello) = responder.remote.as_ref().unwrap();
        assert_eq!(
            alices_hello.protocol_version, 2,
            "answered at the lower version"
        );
        assert_eq!(responder.cipher, Some(Cipher::ChaCha20Poly1305));

        let mut alice_side = initiator.finish().unwrap().transport;
        assert_eq!(alice_side.cipher(), Cipher::ChaCha20Poly1305);
        let mut bob_side = responder.state.into_transport_mode().unwrap();
        for len in [0usize, 1, 1000, MAX_NOISE_PAYLOAD_LEN] {
            let plain: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
            let mut sealed = plain.clone();
            alice_side.seal(&mut sealed, 0).unwrap();
            let mut opened = vec![0u8; sealed.len()];
            let n = bob_side.read_message(&sealed, &mut opened).unwrap();
            assert_eq!(&opened[..n], &plain[..], "snow opens ours");
            let mut reply = vec![0u8; len + NOISE_TAG_LEN];
            let n = bob_side.write_message(&plain, &mut reply).unwrap();
            reply.truncate(n);
            assert_eq!(
                alice_side.open(&mut reply).unwrap(),
                &plain[..],
                "we open snow's"
            );
        }
    }

    #[test]
    fn a_hello_from_a_later_version_is_read_as_far_as_known() {
        let hello = Hello::new(Some(1), "future", 1 << 20);
        let id = PeerId::from_bytes([5; 32]);
        let mut bytes = hello.encode(PROTOCOL_VERSION, id).unwrap();
        bytes[0] = PROTOCOL_VERSION + 1;
        bytes.extend_from_slice(b"a field from later");
        let (read, read_id) = Hello::decode(&bytes).unwrap();
        assert_eq!(read_id, id);
        assert_eq!(read.protocol_version, PROTOCOL_VERSION + 1);
        assert_eq!(read.ciphers, hello.ciphers);
        // At this version the same bytes are trailing garbage.
        bytes[0] = PROTOCOL_VERSION;
        assert_eq!(
            Hello::decode(&bytes),
            Err(HandshakeError::InvalidHello("trailing bytes"))
        );
        // Unknown cipher tags are skipped; too many are refused.
        let mut unknown = postcard::to_allocvec(&(3u8, None::<u16>, "", 1u32 << 20, id)).unwrap();
        unknown.extend_from_slice(&[3, 9, 1, 200]);
        assert_eq!(
            Hello::decode(&unknown).unwrap().0.ciphers,
            vec![Cipher::ChaCha20Poly1305]
        );
        let mut many = postcard::to_allocvec(&(3u8, None::<u16>, "", 1u32 << 20, id)).unwrap();
        many.push(17);
        many.extend_from_slice(&[1; 17]);
        assert_eq!(
            Hello::decode(&many),
            Err(HandshakeError::InvalidHello("too many ciphers"))
        );
    }

    #[test]
    fn an_identity_that_is_not_the_static_key_is_refused() {
        let (alice, bob, carol) = (
            Keypair::from_seed(&[1; 32]),
            Keypair::from_seed(&[2; 32]),
            Keypair::from_seed(&[3; 32]),
        );
        // Bob claims Carol's identity while proving his own static key.
        let mut first = Vec::new();
        let initiator = start(Direction::Outbound, &alice, None, &mut first);
        let mut responder = start(Direction::Inbound, &bob, None, &mut Vec::new());
        responder.local_id = carol.peer_id();
        let (result, sent_third) = to_message_two(initiator, responder, &first);
        assert_eq!(
            result,
            Err(HandshakeError::InvalidHello("identity does not match the static key").into())
        );
        assert!(!sent_third, "alice never reveals herself to the impostor");

        // Honest Bob, but Alice dialled for Carol: refused before message 3.
        let mut first = Vec::new();
        let initiator = start(
            Direction::Outbound,
            &alice,
            Some(carol.peer_id()),
            &mut first,
        );
        let responder = start(Direction::Inbound, &bob, None, &mut Vec::new());
        let (result, sent_third) = to_message_two(initiator, responder, &first);
        assert_eq!(
            result,
            Err(HandshakeError::PeerIdMismatch {
                expected: carol.peer_id(),
                actual: bob.peer_id()
            }
            .into())
        );
        assert!(!sent_third);

        // Honest and expected: the handshake goes on.
        let mut first = Vec::new();
        let initiator = start(Direction::Outbound, &alice, Some(bob.peer_id()), &mut first);
        let responder = start(Direction::Inbound, &bob, None, &mut Vec::new());
        assert_eq!(
            to_message_two(initiator, responder, &first),
            (Ok(true), true)
        );
    }
}
