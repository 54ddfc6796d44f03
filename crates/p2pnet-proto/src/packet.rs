//! Application packets.
//!
//! One [`Packet`] enum with one type per variant. Every packet has a
//! [`PacketKind`], which is written in the frame header (see
//! [`codec`](crate::codec)) so that a channel can apply coarse grant gating
//! ([`Scopes::for_kind`](crate::Scopes::for_kind)) and dispatch *before*
//! deserializing the body.
//!
//! Every bound in this module is enforced in both directions:
//! [`Packet::validate`] runs before a packet is sent and after one is
//! decoded, so a packet obtained from the decoder always satisfies them.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::InvalidPacket;
use crate::identity::PeerId;
pub use crate::perf::Perf;

/// Maximum length of a [`PureMessage`] text, in bytes.
pub const MAX_TEXT_LEN: usize = 64 * 1024;
/// Maximum length of a [`Payload`] label, in bytes.
pub const MAX_LABEL_LEN: usize = 128;
/// Maximum length of a [`FileName`], in bytes.
pub const MAX_FILE_NAME_LEN: usize = 255;
/// Maximum length of a human-readable reason (disconnect message, file
/// reject or cancel reason), in bytes.
pub const MAX_REASON_LEN: usize = 256;
/// Maximum number of addresses in an [`Identifier`] or [`PeerRecord`].
pub const MAX_ADDRESSES: usize = 16;
/// Maximum number of peers in a [`CollectionShare`].
pub const MAX_SHARED_PEERS: usize = 128;
/// Largest chunk size a [`FileOffer`] may announce.
pub const MAX_CHUNK_SIZE: u32 = 1024 * 1024;
/// Chunk size a sender uses unless told otherwise.
pub const DEFAULT_CHUNK_SIZE: u32 = 64 * 1024;

/// The kind of a packet, carried in the frame header.
///
/// The numeric tags are part of the wire format and never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum PacketKind {
    /// [`PureMessage`]: default communication.
    PureMessage = 1,
    /// [`DataTransmission`]: enhanced exchange.
    DataTransmission = 2,
    /// [`Identifier`]: enhanced exchange.
    Identifier = 3,
    /// [`CollectionShare`]: enhanced exchange.
    CollectionShare = 4,
    /// [`Disconnect`]: channel control, always permitted.
    Disconnect = 5,
    /// [`Keepalive`]: channel control, always permitted.
    Keepalive = 6,
    /// [`Perf`]: the speed test, enhanced exchange (protocol version 3).
    Perf = 7,
}

impl PacketKind {
    /// All kinds, in tag order.
    pub const ALL: [Self; 7] = [
        Self::PureMessage,
        Self::DataTransmission,
        Self::Identifier,
        Self::CollectionShare,
        Self::Disconnect,
        Self::Keepalive,
        Self::Perf,
    ];

    /// The wire tag.
    pub const fn tag(self) -> u8 {
        self as u8
    }

    /// The kind with this wire tag, if any.
    pub const fn from_tag(tag: u8) -> Option<Self> {
        Some(match tag {
            1 => Self::PureMessage,
            2 => Self::DataTransmission,
            3 => Self::Identifier,
            4 => Self::CollectionShare,
            5 => Self::Disconnect,
            6 => Self::Keepalive,
            7 => Self::Perf,
            _ => return None,
        })
    }

    /// The permission class that governs this kind.
    pub const fn class(self) -> PermissionClass {
        match self {
            Self::Disconnect | Self::Keepalive => PermissionClass::Control,
            Self::PureMessage => PermissionClass::DefaultCommunication,
            Self::DataTransmission | Self::Identifier | Self::CollectionShare | Self::Perf => {
                PermissionClass::EnhancedExchange
            }
        }
    }
}

impl fmt::Display for PacketKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Which part of a [`TrustLevel`](crate::TrustLevel) preset a packet kind
/// falls under. Channels are gated more finely, by
/// [`Scopes`](crate::Scopes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PermissionClass {
    /// Keepalive and Disconnect: always permitted once the handshake is
    /// done. Without them a channel could neither stay alive nor be closed
    /// cleanly, so no preset or grant can turn them off.
    Control,
    /// Plain text messages; on by default.
    DefaultCommunication,
    /// Data transmission, identifiers and peer lists; off until elevated.
    EnhancedExchange,
}

/// An application packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// A text message.
    PureMessage(PureMessage),
    /// Files, tasks and opaque data.
    DataTransmission(DataTransmission),
    /// The sender's own contact information.
    Identifier(Identifier),
    /// A list of other peers.
    CollectionShare(CollectionShare),
    /// The sender is closing the channel.
    Disconnect(Disconnect),
    /// Liveness probe and answer.
    Keepalive(Keepalive),
    /// The speed test.
    Perf(Perf),
}

impl Packet {
    /// This packet's kind.
    pub const fn kind(&self) -> PacketKind {
        match self {
            Self::PureMessage(_) => PacketKind::PureMessage,
            Self::DataTransmission(_) => PacketKind::DataTransmission,
            Self::Identifier(_) => PacketKind::Identifier,
            Self::CollectionShare(_) => PacketKind::CollectionShare,
            Self::Disconnect(_) => PacketKind::Disconnect,
            Self::Keepalive(_) => PacketKind::Keepalive,
            Self::Perf(_) => PacketKind::Perf,
        }
    }

    /// Checks every protocol bound.
    pub fn validate(&self) -> Result<(), InvalidPacket> {
        match self {
            Self::PureMessage(p) => p.validate(),
            Self::DataTransmission(p) => p.validate(),
            Self::Identifier(p) => p.validate(),
            Self::CollectionShare(p) => p.validate(),
            Self::Disconnect(p) => p.validate(),
            Self::Keepalive(_) => Ok(()),
            Self::Perf(p) => p.validate(),
        }
    }
}

macro_rules! impl_from_variant {
    ($($variant:ident),*) => {$(
        impl From<$variant> for Packet {
            fn from(p: $variant) -> Self {
                Self::$variant(p)
            }
        }
    )*};
}
impl_from_variant!(
    PureMessage,
    DataTransmission,
    Identifier,
    CollectionShare,
    Disconnect,
    Keepalive,
    Perf
);

/// A text message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PureMessage {
    /// The text, at most [`MAX_TEXT_LEN`] bytes of UTF-8.
    pub text: String,
}

impl PureMessage {
    /// A message with this text.
    pub fn new(text: impl Into<String>) -> Self {
        Self { text: text.into() }
    }

    fn validate(&self) -> Result<(), InvalidPacket> {
        check_len("text", self.text.len(), MAX_TEXT_LEN)
    }
}

/// Files, tasks and opaque data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DataTransmission {
    /// A message of the resumable file transfer sub-protocol (see
    /// [`transfer`](crate::transfer)).
    File(FileMessage),
    /// A task for the receiver to run; the payload format is the
    /// application's.
    Task(Payload),
    /// Opaque application data.
    MiscData(Payload),
}

impl DataTransmission {
    /// Which of the three data kinds this is.
    pub const fn data_kind(&self) -> DataKind {
        match self {
            Self::File(_) => DataKind::File,
            Self::Task(_) => DataKind::Task,
            Self::MiscData(_) => DataKind::MiscData,
        }
    }

    fn validate(&self) -> Result<(), InvalidPacket> {
        match self {
            Self::File(m) => m.validate(),
            Self::Task(p) | Self::MiscData(p) => p.validate(),
        }
    }
}

/// The kind of a [`DataTransmission`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataKind {
    /// File transfer.
    File,
    /// Task.
    Task,
    /// Opaque data.
    MiscData,
}

/// A task or opaque data payload.
///
/// The bytes are shared ([`Bytes`]): the same data sent again, or to many
/// peers, is not copied per packet; a `Vec<u8>` converts without a copy.
/// On the wire they are a postcard byte string, as a `Vec<u8>` would be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    /// Optional application-defined label, at most [`MAX_LABEL_LEN`] bytes.
    pub label: Option<String>,
    /// The bytes; bounded only by the frame size.
    pub data: Bytes,
}

impl Payload {
    /// An unlabelled payload.
    pub fn new(data: impl Into<Bytes>) -> Self {
        Self {
            label: None,
            data: data.into(),
        }
    }

    /// A labelled payload.
    pub fn labelled(label: impl Into<String>, data: impl Into<Bytes>) -> Self {
        Self {
            label: Some(label.into()),
            data: data.into(),
        }
    }

    fn validate(&self) -> Result<(), InvalidPacket> {
        check_opt_len("label", self.label.as_deref(), MAX_LABEL_LEN)
    }
}

/// Identifies one file transfer within a channel. Chosen by the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TransferId(pub u64);

impl fmt::Display for TransferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A BLAKE3 hash of a file's whole content.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ContentHash(pub [u8; 32]);

impl ContentHash {
    /// Hashes `data` in one go (convenient for tests and small files).
    pub fn of(data: &[u8]) -> Self {
        Self(*blake3::hash(data).as_bytes())
    }
}

impl From<blake3::Hash> for ContentHash {
    fn from(hash: blake3::Hash) -> Self {
        Self(*hash.as_bytes())
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&data_encoding::HEXLOWER.encode(&self.0))
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({self})")
    }
}

/// A file transfer message. The flow is
/// `Offer → (Accept | Reject) → Chunk* → Done`, with `Cancel` allowed from
/// either side at any point after the offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileMessage {
    /// Sender → receiver: a file is available.
    Offer(FileOffer),
    /// Receiver → sender: send it, starting at `resume_from`.
    Accept(FileAccept),
    /// Receiver → sender: not wanted.
    Reject(FileReject),
    /// Sender → receiver: content at an offset.
    Chunk(FileChunk),
    /// Sender → receiver: all chunks sent; verify the hash.
    Done(FileDone),
    /// Either side: abandon the transfer.
    Cancel(FileCancel),
}

impl FileMessage {
    /// The transfer this message belongs to.
    pub const fn transfer_id(&self) -> TransferId {
        match self {
            Self::Offer(m) => m.transfer_id,
            Self::Accept(m) => m.transfer_id,
            Self::Reject(m) => m.transfer_id,
            Self::Chunk(m) => m.transfer_id,
            Self::Done(m) => m.transfer_id,
            Self::Cancel(m) => m.transfer_id,
        }
    }

    fn validate(&self) -> Result<(), InvalidPacket> {
        match self {
            Self::Offer(m) => {
                m.name.validate()?;
                if m.chunk_size == 0 || m.chunk_size > MAX_CHUNK_SIZE {
                    return Err(InvalidPacket::OutOfRange {
                        field: "chunk_size",
                        reason: "must be between 1 and MAX_CHUNK_SIZE",
                    });
                }
                Ok(())
            }
            Self::Accept(_) | Self::Done(_) => Ok(()),
            Self::Reject(m) => check_len("reason", m.reason.len(), MAX_REASON_LEN),
            Self::Chunk(m) => {
                if m.data.len() > MAX_CHUNK_SIZE as usize {
                    return Err(InvalidPacket::TooLong {
                        field: "chunk data",
                        len: m.data.len(),
                        max: MAX_CHUNK_SIZE as usize,
                    });
                }
                if m.offset.checked_add(m.data.len() as u64).is_none() {
                    return Err(InvalidPacket::OutOfRange {
                        field: "offset",
                        reason: "offset + length overflows",
                    });
                }
                Ok(())
            }
            Self::Cancel(m) => check_opt_len("reason", m.reason.as_deref(), MAX_REASON_LEN),
        }
    }
}

/// Offer of a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileOffer {
    /// Sender-chosen transfer id.
    pub transfer_id: TransferId,
    /// The file's name: a single safe path component.
    pub name: FileName,
    /// Total size in bytes.
    pub size: u64,
    /// Size of every chunk but the last, 1..=[`MAX_CHUNK_SIZE`].
    pub chunk_size: u32,
    /// BLAKE3 hash of the whole content.
    pub hash: ContentHash,
}

/// Acceptance of an offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileAccept {
    /// The offer's transfer id.
    pub transfer_id: TransferId,
    /// Offset to start sending from: the bytes the receiver already holds,
    /// rounded down to a chunk boundary. Zero for a fresh transfer.
    pub resume_from: u64,
}

/// Rejection of an offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileReject {
    /// The offer's transfer id.
    pub transfer_id: TransferId,
    /// Human-readable reason, at most [`MAX_REASON_LEN`] bytes.
    pub reason: String,
}

/// A piece of file content.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChunk {
    /// The transfer.
    pub transfer_id: TransferId,
    /// Offset of `data` in the file.
    pub offset: u64,
    /// The content.
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

impl fmt::Debug for FileChunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileChunk")
            .field("transfer_id", &self.transfer_id)
            .field("offset", &self.offset)
            .field("len", &self.data.len())
            .finish()
    }
}

/// The sender has sent every chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDone {
    /// The transfer.
    pub transfer_id: TransferId,
}

/// Either side abandons a transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileCancel {
    /// The transfer.
    pub transfer_id: TransferId,
    /// Optional human-readable reason, at most [`MAX_REASON_LEN`] bytes.
    pub reason: Option<String>,
}

/// A file name that is safe to use as a single path component.
///
/// The receiver joins it onto its download directory, so it must not be
/// able to escape it: a `FileName` is non-empty, at most
/// [`MAX_FILE_NAME_LEN`] bytes, not `.` or `..`, and contains no `/`, `\`,
/// `:` (Windows drive letters and alternate data streams), and no control
/// characters (NUL included). Names the host OS reserves (such as `CON` on
/// Windows) are the runtime's concern.
///
/// The only constructors are [`FileName::new`] and deserialization through
/// this crate's codec, which validates every decoded packet.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct FileName(String);

impl FileName {
    /// Validates `name`.
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidPacket> {
        let name = Self(name.into());
        name.validate()?;
        Ok(name)
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn validate(&self) -> Result<(), InvalidPacket> {
        let name = self.0.as_str();
        if name.is_empty() {
            return Err(InvalidPacket::FileName("empty"));
        }
        check_len("file name", name.len(), MAX_FILE_NAME_LEN)?;
        if name == "." || name == ".." {
            return Err(InvalidPacket::FileName("`.` and `..` are not file names"));
        }
        if name.contains(['/', '\\']) {
            return Err(InvalidPacket::FileName("contains a path separator"));
        }
        if name.contains(':') {
            return Err(InvalidPacket::FileName("contains `:`"));
        }
        if name.chars().any(char::is_control) {
            return Err(InvalidPacket::FileName("contains a control character"));
        }
        Ok(())
    }
}

impl fmt::Display for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl Serialize for FileName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for FileName {
    /// Deserializes without validating; the codec validates every decoded
    /// packet (see [`Packet::validate`]) and reports a precise reason.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self)
    }
}

/// The sender's own contact information ("connect to me").
///
/// The receiving channel checks that `peer_id` is the peer it completed
/// the handshake with; an `Identifier` claiming another identity is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identifier {
    /// The sender's peer id.
    pub peer_id: PeerId,
    /// The TCP port the sender accepts connections on.
    pub listening_port: u16,
    /// Addresses the sender believes it is reachable at, at most
    /// [`MAX_ADDRESSES`].
    pub addresses: Vec<IpAddr>,
}

impl Identifier {
    fn validate(&self) -> Result<(), InvalidPacket> {
        check_count("addresses", self.addresses.len(), MAX_ADDRESSES)
    }
}

/// A list of known peers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionShare {
    /// At most [`MAX_SHARED_PEERS`] records.
    pub peers: Vec<PeerRecord>,
}

impl CollectionShare {
    fn validate(&self) -> Result<(), InvalidPacket> {
        check_count("peers", self.peers.len(), MAX_SHARED_PEERS)?;
        self.peers
            .iter()
            .try_for_each(|p| check_count("peer addresses", p.addresses.len(), MAX_ADDRESSES))
    }
}

/// One peer in a [`CollectionShare`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerRecord {
    /// The peer's id; a connection to it proves or disproves it.
    pub peer_id: PeerId,
    /// Where it may be reached, at most [`MAX_ADDRESSES`].
    pub addresses: Vec<SocketAddr>,
}

/// The sender is closing the channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disconnect {
    /// Machine-readable reason.
    pub reason: DisconnectReason,
    /// Optional human-readable detail, at most [`MAX_REASON_LEN`] bytes.
    pub message: Option<String>,
}

impl Disconnect {
    /// A disconnect with a reason and no message.
    pub const fn new(reason: DisconnectReason) -> Self {
        Self {
            reason,
            message: None,
        }
    }

    /// A disconnect with a reason and a message.
    pub fn with_message(reason: DisconnectReason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: Some(message.into()),
        }
    }

    fn validate(&self) -> Result<(), InvalidPacket> {
        check_opt_len("message", self.message.as_deref(), MAX_REASON_LEN)
    }
}

impl From<DisconnectReason> for Disconnect {
    fn from(reason: DisconnectReason) -> Self {
        Self::new(reason)
    }
}

/// Why a channel is closed.
///
/// Encoded as a `u16` code so that reasons added by later versions decode
/// as [`Other`](Self::Other) instead of failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DisconnectReason {
    /// Normal close requested by the application (code 0).
    Normal,
    /// The peer is shutting down (code 1).
    Shutdown,
    /// The peer was not approved (code 2).
    Rejected,
    /// The peer is on a block list (code 3).
    Blocked,
    /// No traffic for the idle timeout (code 4).
    IdleTimeout,
    /// The remote broke the protocol (code 5).
    ProtocolViolation,
    /// Connection limit reached (code 6).
    TooManyConnections,
    /// A channel to this peer already exists (code 7).
    Duplicate,
    /// A code this version does not know.
    Other(u16),
}

/// The reason in words, for logs, events and user interfaces.
impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Normal => f.write_str("closed normally"),
            Self::Shutdown => f.write_str("shutting down"),
            Self::Rejected => f.write_str("rejected"),
            Self::Blocked => f.write_str("blocked"),
            Self::IdleTimeout => f.write_str("idle timeout"),
            Self::ProtocolViolation => f.write_str("protocol violation"),
            Self::TooManyConnections => f.write_str("too many connections"),
            Self::Duplicate => f.write_str("a duplicate channel"),
            Self::Other(code) => write!(f, "reason code {code}"),
        }
    }
}

impl DisconnectReason {
    /// The wire code.
    pub const fn code(self) -> u16 {
        match self {
            Self::Normal => 0,
            Self::Shutdown => 1,
            Self::Rejected => 2,
            Self::Blocked => 3,
            Self::IdleTimeout => 4,
            Self::ProtocolViolation => 5,
            Self::TooManyConnections => 6,
            Self::Duplicate => 7,
            Self::Other(code) => code,
        }
    }

    /// The reason with this wire code.
    pub const fn from_code(code: u16) -> Self {
        match code {
            0 => Self::Normal,
            1 => Self::Shutdown,
            2 => Self::Rejected,
            3 => Self::Blocked,
            4 => Self::IdleTimeout,
            5 => Self::ProtocolViolation,
            6 => Self::TooManyConnections,
            7 => Self::Duplicate,
            other => Self::Other(other),
        }
    }
}

impl Serialize for DisconnectReason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.code().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for DisconnectReason {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        u16::deserialize(deserializer).map(Self::from_code)
    }
}

/// Liveness probe. Handled by the channel; never surfaced as an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Keepalive {
    /// Please answer with a `Pong` carrying the same nonce.
    Ping(u64),
    /// Answer to the `Ping` with this nonce.
    Pong(u64),
}

fn check_len(field: &'static str, len: usize, max: usize) -> Result<(), InvalidPacket> {
    if len > max {
        return Err(InvalidPacket::TooLong { field, len, max });
    }
    Ok(())
}

fn check_opt_len(field: &'static str, s: Option<&str>, max: usize) -> Result<(), InvalidPacket> {
    s.map_or(Ok(()), |s| check_len(field, s.len(), max))
}

fn check_count(field: &'static str, count: usize, max: usize) -> Result<(), InvalidPacket> {
    if count > max {
        return Err(InvalidPacket::TooMany { field, count, max });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_and_are_stable() {
        for kind in PacketKind::ALL {
            assert_eq!(PacketKind::from_tag(kind.tag()), Some(kind));
        }
        assert_eq!(PacketKind::PureMessage.tag(), 1);
        assert_eq!(PacketKind::Keepalive.tag(), 6);
        assert_eq!(PacketKind::Perf.tag(), 7);
        assert_eq!(PacketKind::from_tag(0), None);
        assert_eq!(PacketKind::from_tag(8), None);
    }

    #[test]
    fn file_names_are_sanitized() {
        for ok in ["report.pdf", "a", "..hidden", "名前.txt", "x y"] {
            assert!(FileName::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../etc/passwd",
            "a/b",
            "a\\b",
            "C:evil",
            "nul\0byte",
            "new\nline",
        ] {
            assert!(
                matches!(FileName::new(bad), Err(InvalidPacket::FileName(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            FileName::new("a".repeat(MAX_FILE_NAME_LEN + 1)),
            Err(InvalidPacket::TooLong { .. })
        ));
        assert!(FileName::new("a".repeat(MAX_FILE_NAME_LEN)).is_ok());
    }

    #[test]
    fn bounds_are_enforced() {
        let long = Packet::PureMessage(PureMessage::new("x".repeat(MAX_TEXT_LEN + 1)));
        assert!(matches!(
            long.validate(),
            Err(InvalidPacket::TooLong { field: "text", .. })
        ));
        let ok = Packet::PureMessage(PureMessage::new("x".repeat(MAX_TEXT_LEN)));
        assert!(ok.validate().is_ok());

        let peers = (0..=MAX_SHARED_PEERS)
            .map(|_| PeerRecord {
                peer_id: PeerId::from_bytes([0; 32]),
                addresses: vec![],
            })
            .collect();
        let share = Packet::CollectionShare(CollectionShare { peers });
        assert!(matches!(
            share.validate(),
            Err(InvalidPacket::TooMany { field: "peers", .. })
        ));

        let label = Packet::DataTransmission(DataTransmission::Task(Payload::labelled(
            "l".repeat(MAX_LABEL_LEN + 1),
            vec![],
        )));
        assert!(matches!(
            label.validate(),
            Err(InvalidPacket::TooLong { field: "label", .. })
        ));

        let chunk = FileMessage::Offer(FileOffer {
            transfer_id: TransferId(1),
            name: FileName::new("f").unwrap(),
            size: 1,
            chunk_size: 0,
            hash: ContentHash([0; 32]),
        });
        assert!(matches!(
            Packet::DataTransmission(DataTransmission::File(chunk)).validate(),
            Err(InvalidPacket::OutOfRange {
                field: "chunk_size",
                ..
            })
        ));

        let overflow = FileMessage::Chunk(FileChunk {
            transfer_id: TransferId(1),
            offset: u64::MAX,
            data: vec![1],
        });
        assert!(overflow.validate().is_err());
    }

    #[test]
    fn disconnect_reason_codes_are_forward_compatible() {
        for code in 0..20u16 {
            assert_eq!(DisconnectReason::from_code(code).code(), code);
        }
        assert_eq!(
            DisconnectReason::from_code(999),
            DisconnectReason::Other(999)
        );
        let bytes = postcard::to_allocvec(&DisconnectReason::Rejected).unwrap();
        assert_eq!(bytes, vec![2]);
    }

    #[test]
    fn permission_classes() {
        assert_eq!(PacketKind::Keepalive.class(), PermissionClass::Control);
        assert_eq!(PacketKind::Disconnect.class(), PermissionClass::Control);
        assert_eq!(
            PacketKind::PureMessage.class(),
            PermissionClass::DefaultCommunication
        );
        for k in [
            PacketKind::DataTransmission,
            PacketKind::Identifier,
            PacketKind::CollectionShare,
        ] {
            assert_eq!(k.class(), PermissionClass::EnhancedExchange);
        }
    }
}
