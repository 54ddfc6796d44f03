//! Application framing and packet encoding.
//!
//! After the handshake, each side's decrypted transport stream is a sequence
//! of *frames*:
//!
//! ```text
//! +---------+----------+----------------------+-------------------------+
//! | version | kind tag | body length (u32 BE) | body: postcard encoding |
//! | 1 byte  | 1 byte   | 4 bytes              | of the variant's struct |
//! +---------+----------+----------------------+-------------------------+
//! ```
//!
//! * `version` is [`FRAME_VERSION`]; any other
//!   value is [`DecodeError::UnknownVersion`]. Frames have not changed
//!   since protocol version 2, so they still say 2.
//! * `kind tag` is [`PacketKind::tag`]; unknown tags are
//!   [`DecodeError::UnknownPacketType`]. Because the kind precedes the body,
//!   a channel can refuse a packet its grants cannot permit without
//!   deserializing it.
//! * `body length` is checked against the receiver's maximum frame size as
//!   soon as the six header bytes are in, *before* any body byte is
//!   buffered: an oversized declaration is [`DecodeError::Oversized`] at
//!   once.
//! * The body is the [postcard](https://docs.rs/postcard) encoding of the
//!   variant's struct (for example [`PureMessage`](crate::packet::PureMessage)
//!   for kind 1). It must be consumed exactly, and the decoded packet must
//!   pass [`Packet::validate`].
//!
//! A frame may be larger than one Noise transport message (65535 bytes);
//! the channel splits the stream across as many Noise messages as needed
//! and [`FrameDecoder`] reassembles it, so frame boundaries and Noise
//! message boundaries are independent.

use crate::error::{DecodeError, Error, InvalidPacket};
use crate::packet::{Packet, PacketKind};

/// The version byte of every frame header: the frame layout's version,
/// unchanged since protocol version 2.
pub const FRAME_VERSION: u8 = 2;
/// Length of the frame header.
pub const FRAME_HEADER_LEN: usize = 6;
/// Default maximum frame body size: 1 MiB.
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 1024 * 1024;
/// Hard ceiling for the maximum frame body size: 16 MiB.
pub const MAX_FRAME_SIZE_CEILING: u32 = 16 * 1024 * 1024;
/// Smallest acceptable maximum frame body size: 16 KiB.
pub const MIN_MAX_FRAME_SIZE: u32 = 16 * 1024;

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// The packet kind.
    pub kind: PacketKind,
    /// Declared body length.
    pub body_len: u32,
}

impl FrameHeader {
    /// Parses and checks a header against `max_frame_size`.
    pub fn parse(bytes: &[u8; FRAME_HEADER_LEN], max_frame_size: u32) -> Result<Self, DecodeError> {
        let [version, tag, l0, l1, l2, l3] = *bytes;
        if version != FRAME_VERSION {
            return Err(DecodeError::UnknownVersion(version));
        }
        let kind = PacketKind::from_tag(tag).ok_or(DecodeError::UnknownPacketType(tag))?;
        let body_len = u32::from_be_bytes([l0, l1, l2, l3]);
        if body_len > max_frame_size {
            return Err(DecodeError::Oversized {
                declared: body_len,
                limit: max_frame_size,
            });
        }
        Ok(Self { kind, body_len })
    }

    /// The header's wire bytes.
    pub fn to_bytes(self) -> [u8; FRAME_HEADER_LEN] {
        let [l0, l1, l2, l3] = self.body_len.to_be_bytes();
        [FRAME_VERSION, self.kind.tag(), l0, l1, l2, l3]
    }
}

/// Encodes `packet` as a complete frame (header and body).
///
/// Validates the packet first. Fails with [`Error::PacketTooLarge`] if the
/// body exceeds `max_frame_size` (which is itself capped at
/// [`MAX_FRAME_SIZE_CEILING`]).
pub fn encode_frame(packet: &Packet, max_frame_size: u32) -> Result<Vec<u8>, Error> {
    let mut frame = Vec::new();
    encode_frame_into(packet, max_frame_size, &mut frame)?;
    Ok(frame)
}

/// As [`encode_frame`], appending the frame to `out`. An invalid or
/// oversized packet leaves `out` as it was; should serializing fail after
/// sizing succeeded (it does not for these types), `out` is emptied.
pub fn encode_frame_into(
    packet: &Packet,
    max_frame_size: u32,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    packet.validate()?;
    let unserializable = |_| InvalidPacket::OutOfRange {
        field: "body",
        reason: "not serializable",
    };
    // Sized first (counting, no copy), so the frame is written into room
    // reserved once at its exact size: growing by doubling would copy a
    // large body several times.
    let body_len = match packet {
        Packet::PureMessage(p) => serialized_size(p),
        Packet::DataTransmission(p) => serialized_size(p),
        Packet::Identifier(p) => serialized_size(p),
        Packet::CollectionShare(p) => serialized_size(p),
        Packet::Disconnect(p) => serialized_size(p),
        Packet::Keepalive(p) => serialized_size(p),
        Packet::Perf(p) => serialized_size(p),
    }
    .map_err(unserializable)?;
    let limit = max_frame_size.min(MAX_FRAME_SIZE_CEILING);
    let body_len = u32::try_from(body_len)
        .ok()
        .filter(|len| *len <= limit)
        .ok_or(Error::PacketTooLarge {
            size: body_len,
            limit: limit as usize,
        })?;
    let header = FrameHeader {
        kind: packet.kind(),
        body_len,
    };
    let start = out.len();
    out.reserve(FRAME_HEADER_LEN + body_len as usize);
    out.extend_from_slice(&header.to_bytes());
    let frame = std::mem::take(out);
    let written = match packet {
        Packet::PureMessage(p) => postcard::serialize_with_flavor(p, AppendToVec(frame)),
        Packet::DataTransmission(p) => postcard::serialize_with_flavor(p, AppendToVec(frame)),
        Packet::Identifier(p) => postcard::serialize_with_flavor(p, AppendToVec(frame)),
        Packet::CollectionShare(p) => postcard::serialize_with_flavor(p, AppendToVec(frame)),
        Packet::Disconnect(p) => postcard::serialize_with_flavor(p, AppendToVec(frame)),
        Packet::Keepalive(p) => postcard::serialize_with_flavor(p, AppendToVec(frame)),
        Packet::Perf(p) => postcard::serialize_with_flavor(p, AppendToVec(frame)),
    };
    match written {
        Ok(frame) => {
            *out = frame;
            debug_assert_eq!(out.len(), start + FRAME_HEADER_LEN + body_len as usize);
            Ok(())
        }
        Err(err) => Err(unserializable(err).into()),
    }
}

/// postcard's output appended to a `Vec`, byte strings with
/// `extend_from_slice` (one `memcpy`). postcard's own `to_extend` appends
/// them through an iterator, byte by byte: 5% of a bulk transfer's CPU.
struct AppendToVec(Vec<u8>);

impl postcard::ser_flavors::Flavor for AppendToVec {
    type Output = Vec<u8>;

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<Vec<u8>> {
        Ok(self.0)
    }
}

/// The length of `value`'s postcard encoding, counted without writing it.
fn serialized_size<T: serde::Serialize>(value: &T) -> Result<usize, postcard::Error> {
    postcard::serialize_with_flavor(value, postcard::ser_flavors::Size::default())
}

/// Decodes and validates the body of a frame of the given kind.
pub fn decode_body(kind: PacketKind, body: &[u8]) -> Result<Packet, DecodeError> {
    fn take<'a, T: serde::Deserialize<'a>>(
        kind: PacketKind,
        body: &'a [u8],
    ) -> Result<T, DecodeError> {
        let (value, rest) =
            postcard::take_from_bytes(body).map_err(|e| DecodeError::Malformed {
                kind,
                reason: postcard_reason(&e),
            })?;
        if !rest.is_empty() {
            return Err(DecodeError::TrailingBytes {
                kind,
                count: rest.len(),
            });
        }
        Ok(value)
    }
    let packet = match kind {
        PacketKind::PureMessage => Packet::PureMessage(take(kind, body)?),
        PacketKind::DataTransmission => Packet::DataTransmission(take(kind, body)?),
        PacketKind::Identifier => Packet::Identifier(take(kind, body)?),
        PacketKind::CollectionShare => Packet::CollectionShare(take(kind, body)?),
        PacketKind::Disconnect => Packet::Disconnect(take(kind, body)?),
        PacketKind::Keepalive => Packet::Keepalive(take(kind, body)?),
        PacketKind::Perf => Packet::Perf(take(kind, body)?),
    };
    packet.validate()?;
    Ok(packet)
}

/// Decodes one complete frame from the start of `input`.
///
/// Returns the packet and the number of bytes consumed. Fails with
/// [`DecodeError::Truncated`] if `input` holds less than one frame. For a
/// stream that arrives in pieces, use [`FrameDecoder`].
pub fn decode_frame(input: &[u8], max_frame_size: u32) -> Result<(Packet, usize), DecodeError> {
    let Some(header_bytes) = input.first_chunk::<FRAME_HEADER_LEN>() else {
        return Err(DecodeError::Truncated {
            needed: FRAME_HEADER_LEN - input.len(),
        });
    };
    let header = FrameHeader::parse(header_bytes, max_frame_size.min(MAX_FRAME_SIZE_CEILING))?;
    let total = FRAME_HEADER_LEN + header.body_len as usize;
    let Some(body) = input.get(FRAME_HEADER_LEN..total) else {
        return Err(DecodeError::Truncated {
            needed: total - input.len(),
        });
    };
    Ok((decode_body(header.kind, body)?, total))
}

/// A frame whose header has been checked and whose body has not yet been
/// deserialized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    /// The packet kind from the header.
    pub kind: PacketKind,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl RawFrame {
    /// Deserializes and validates the body.
    pub fn decode(&self) -> Result<Packet, DecodeError> {
        decode_body(self.kind, &self.body)
    }
}

/// A complete frame borrowed from the input or from the decoder's buffer
/// ([`FrameDecoder::next_frame`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRef<'a> {
    /// The packet kind from the header.
    pub kind: PacketKind,
    /// The body bytes.
    pub body: &'a [u8],
}

/// Capacity the decoder's body buffer keeps between frames; a buffer that
/// grew beyond it for one large frame is released.
const RETAINED_BODY_CAPACITY: usize = 128 * 1024;

/// Incremental frame decoder.
///
/// Feed it bytes in whatever pieces they arrive (one byte at a time works).
/// It holds at most one partial frame, whose size is bounded by the maximum
/// frame size checked when the header completes. After an error the stream
/// is desynchronized: the decoder keeps returning that error.
#[derive(Debug)]
pub struct FrameDecoder {
    max_frame_size: u32,
    header: [u8; FRAME_HEADER_LEN],
    header_len: usize,
    body: Option<PartialBody>,
    /// The body being gathered; reused from frame to frame.
    buf: Vec<u8>,
    /// `buf` holds a frame handed out by the last call.
    handed_out: bool,
    failed: Option<DecodeError>,
}

#[derive(Debug)]
struct PartialBody {
    kind: PacketKind,
    len: usize,
}

impl FrameDecoder {
    /// A decoder accepting bodies up to `max_frame_size` bytes (capped at
    /// [`MAX_FRAME_SIZE_CEILING`]).
    pub fn new(max_frame_size: u32) -> Self {
        Self {
            max_frame_size: max_frame_size.min(MAX_FRAME_SIZE_CEILING),
            header: [0; FRAME_HEADER_LEN],
            header_len: 0,
            body: None,
            buf: Vec::new(),
            handed_out: false,
            failed: None,
        }
    }

    /// Consumes bytes from the front of `input` until one frame is complete
    /// (returned) or `input` is exhausted (`Ok(None)`). Call again with the
    /// remaining input until it is empty.
    pub fn decode(&mut self, input: &mut &[u8]) -> Result<Option<RawFrame>, DecodeError> {
        Ok(self.next_frame(input)?.map(|frame| RawFrame {
            kind: frame.kind,
            body: frame.body.to_vec(),
        }))
    }

    /// As [`decode`](Self::decode), but the frame is borrowed: straight
    /// from `input` when it holds the whole frame (no copy), else from the
    /// decoder's buffer, which the next call reuses.
    pub fn next_frame<'s, 'a: 's>(
        &'s mut self,
        input: &mut &'a [u8],
    ) -> Result<Option<FrameRef<'s>>, DecodeError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        if self.handed_out {
            self.handed_out = false;
            self.buf.clear();
            if self.buf.capacity() > RETAINED_BODY_CAPACITY {
                self.buf = Vec::new();
            }
        }
        if self.body.is_none()
            && self.header_len == 0
            && let Some(header) = input.first_chunk::<FRAME_HEADER_LEN>()
        {
            let header = self.check(header)?;
            let total = FRAME_HEADER_LEN + header.body_len as usize;
            if let Some(frame) = input.get(FRAME_HEADER_LEN..total) {
                *input = &input[total..];
                return Ok(Some(FrameRef {
                    kind: header.kind,
                    body: frame,
                }));
            }
        }
        if self.body.is_none() {
            let take = (FRAME_HEADER_LEN - self.header_len).min(input.len());
            let (head, rest) = input.split_at(take);
            self.header[self.header_len..self.header_len + take].copy_from_slice(head);
            self.header_len += take;
            *input = rest;
            if self.header_len < FRAME_HEADER_LEN {
                return Ok(None);
            }
            let header_bytes = self.header;
            let header = self.check(&header_bytes)?;
            self.header_len = 0;
            let len = header.body_len as usize;
            // Never reserve more than one Noise message worth for a
            // declared length: the bytes have to actually arrive first.
            self.buf.reserve(len.min(64 * 1024));
            self.body = Some(PartialBody {
                kind: header.kind,
                len,
            });
        }
        let Some(body) = self.body.as_ref() else {
            return Ok(None);
        };
        let take = (body.len - self.buf.len()).min(input.len());
        let (head, rest) = input.split_at(take);
        self.buf.extend_from_slice(head);
        *input = rest;
        if self.buf.len() < body.len {
            return Ok(None);
        }
        let kind = body.kind;
        self.body = None;
        self.handed_out = true;
        Ok(Some(FrameRef {
            kind,
            body: &self.buf,
        }))
    }

    /// Parses a header; a bad one desynchronizes the stream for good.
    fn check(&mut self, header: &[u8; FRAME_HEADER_LEN]) -> Result<FrameHeader, DecodeError> {
        FrameHeader::parse(header, self.max_frame_size).inspect_err(|err| {
            self.failed = Some(err.clone());
        })
    }

    /// Whether the decoder sits between frames (no partial frame held).
    pub fn is_idle(&self) -> bool {
        self.header_len == 0 && self.body.is_none()
    }

    /// Bytes of the current partial frame held in memory.
    pub fn buffered_len(&self) -> usize {
        self.header_len
            + if self.body.is_some() {
                self.buf.len()
            } else {
                0
            }
    }

    /// Releases the body buffer's memory if no partial frame needs it.
    pub fn release_buffer(&mut self) {
        if self.body.is_none() {
            self.buf = Vec::new();
            self.handed_out = false;
        }
    }

    /// The maximum body size this decoder accepts.
    pub fn max_frame_size(&self) -> u32 {
        self.max_frame_size
    }
}

fn postcard_reason(err: &postcard::Error) -> &'static str {
    use postcard::Error as E;
    match err {
        E::DeserializeUnexpectedEnd => "unexpected end of body",
        E::DeserializeBadVarint => "bad varint",
        E::DeserializeBadBool => "bad bool",
        E::DeserializeBadChar => "bad char",
        E::DeserializeBadUtf8 => "invalid UTF-8",
        E::DeserializeBadOption => "bad option tag",
        E::DeserializeBadEnum => "unknown enum variant",
        E::DeserializeBadEncoding => "bad encoding",
        _ => "undecodable body",
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

    use proptest::prelude::*;

    use super::*;
    use crate::identity::PeerId;
    use crate::packet::*;
    use crate::perf::{MAX_PERF_CHUNK, PerfRefusal};

    fn samples() -> Vec<Packet> {
        let id = PeerId::from_bytes([9; 32]);
        vec![
            PureMessage::new("hello, peer").into(),
            PureMessage::new("").into(),
            DataTransmission::Task(Payload::labelled("sync", vec![1, 2, 3])).into(),
            DataTransmission::MiscData(Payload::new(vec![0; 1000])).into(),
            DataTransmission::File(FileMessage::Offer(FileOffer {
                transfer_id: TransferId(7),
                name: FileName::new("movie.mkv").unwrap(),
                size: 1 << 40,
                chunk_size: DEFAULT_CHUNK_SIZE,
                hash: ContentHash::of(b"x"),
            }))
            .into(),
            DataTransmission::File(FileMessage::Accept(FileAccept {
                transfer_id: TransferId(7),
                resume_from: 65536,
            }))
            .into(),
            DataTransmission::File(FileMessage::Reject(FileReject {
                transfer_id: TransferId(7),
                reason: "no space".into(),
            }))
            .into(),
            DataTransmission::File(FileMessage::Chunk(FileChunk {
                transfer_id: TransferId(7),
                offset: 65536,
                data: vec![0xee; 300],
            }))
            .into(),
            DataTransmission::File(FileMessage::Done(FileDone {
                transfer_id: TransferId(7),
            }))
            .into(),
            DataTransmission::File(FileMessage::Cancel(FileCancel {
                transfer_id: TransferId(7),
                reason: None,
            }))
            .into(),
            Identifier {
                peer_id: id,
                listening_port: 8051,
                addresses: vec![
                    IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
                    IpAddr::V6(Ipv6Addr::LOCALHOST),
                ],
            }
            .into(),
            CollectionShare {
                peers: vec![PeerRecord {
                    peer_id: id,
                    addresses: vec![SocketAddr::new(
                        IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2)),
                        9000,
                    )],
                }],
            }
            .into(),
            Disconnect::with_message(DisconnectReason::Shutdown, "bye").into(),
            Disconnect::new(DisconnectReason::Other(4242)).into(),
            Keepalive::Ping(u64::MAX).into(),
            Keepalive::Pong(0).into(),
            Perf::Request {
                id: u32::MAX,
                upload: u64::MAX,
                download: 0,
            }
            .into(),
            Perf::Accepted { id: 1 }.into(),
            Perf::Refused {
                id: 2,
                reason: PerfRefusal::TooLarge { cap: 1 << 30 },
            }
            .into(),
            Perf::Data {
                id: 3,
                bytes: vec![7; MAX_PERF_CHUNK].into(),
            }
            .into(),
            Perf::Received { id: 4 }.into(),
            Perf::Cancel { id: 5 }.into(),
        ]
    }

    #[test]
    fn every_packet_round_trips() {
        for packet in samples() {
            let frame = encode_frame(&packet, DEFAULT_MAX_FRAME_SIZE).unwrap();
            assert_eq!(frame[0], FRAME_VERSION);
            assert_eq!(frame[1], packet.kind().tag());
            let len = u32::from_be_bytes(frame[2..6].try_into().unwrap()) as usize;
            assert_eq!(len, frame.len() - FRAME_HEADER_LEN);
            let (back, used) = decode_frame(&frame, DEFAULT_MAX_FRAME_SIZE).unwrap();
            assert_eq!(used, frame.len());
            assert_eq!(back, packet);
        }
    }

    #[test]
    fn encoding_is_compact() {
        let frame = encode_frame(&Keepalive::Ping(1).into(), DEFAULT_MAX_FRAME_SIZE).unwrap();
        assert_eq!(frame.len(), FRAME_HEADER_LEN + 2);
        let frame = encode_frame(&PureMessage::new("hi").into(), DEFAULT_MAX_FRAME_SIZE).unwrap();
        assert_eq!(&frame[FRAME_HEADER_LEN..], &[2, b'h', b'i']);
    }

    #[test]
    fn incremental_decoder_one_byte_at_a_time() {
        let packets = samples();
        let stream: Vec<u8> = packets
            .iter()
            .flat_map(|p| encode_frame(p, DEFAULT_MAX_FRAME_SIZE).unwrap())
            .collect();
        let mut decoder = FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE);
        let mut out = Vec::new();
        for byte in stream.chunks(1) {
            let mut input = byte;
            while let Some(frame) = decoder.decode(&mut input).unwrap() {
                out.push(frame.decode().unwrap());
            }
            assert!(input.is_empty());
        }
        assert_eq!(out, packets);
        assert!(decoder.is_idle());
    }

    #[test]
    fn whole_frames_are_borrowed_from_the_input_and_split_ones_gathered() {
        let big = Packet::from(DataTransmission::MiscData(Payload::new(vec![3; 70_000])));
        let small = Packet::from(PureMessage::new("hi"));
        let stream: Vec<u8> = [&small, &big, &small]
            .iter()
            .flat_map(|p| encode_frame(p, DEFAULT_MAX_FRAME_SIZE).unwrap())
            .collect();
        let inside = |body: &[u8]| stream.as_ptr_range().contains(&body.as_ptr());
        let mut decoder = FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE);
        // All at once: every frame straight from the input.
        let mut input = &stream[..];
        let mut seen = Vec::new();
        while let Some(frame) = decoder.next_frame(&mut input).unwrap() {
            assert!(inside(frame.body), "borrowed");
            seen.push(decode_body(frame.kind, frame.body).unwrap());
        }
        assert_eq!(seen, vec![small.clone(), big.clone(), small.clone()]);
        // Cut inside the big frame: it is gathered, the others borrowed.
        let cut = 20_000;
        let mut seen = Vec::new();
        for mut piece in [&stream[..cut], &stream[cut..]] {
            while let Some(frame) = decoder.next_frame(&mut piece).unwrap() {
                let gathered = frame.kind == PacketKind::DataTransmission;
                assert_eq!(inside(frame.body), !gathered);
                seen.push(decode_body(frame.kind, frame.body).unwrap());
            }
        }
        assert_eq!(seen, vec![small.clone(), big, small]);
        assert!(decoder.is_idle());
        decoder.release_buffer();
        assert_eq!(decoder.buffered_len(), 0);
    }

    #[test]
    fn bodies_are_postcards_own_encoding_byte_for_byte() {
        // The frame body goes through our Vec flavor; it must be exactly
        // what postcard itself writes, or old and new nodes disagree.
        let misc = DataTransmission::MiscData(Payload::labelled("l", vec![7; 70_000]));
        let frame = encode_frame(&misc.clone().into(), MAX_FRAME_SIZE_CEILING).unwrap();
        assert_eq!(
            frame[FRAME_HEADER_LEN..],
            postcard::to_allocvec(&misc).unwrap()
        );
        let text = PureMessage::new("héllo");
        let frame = encode_frame(&text.clone().into(), DEFAULT_MAX_FRAME_SIZE).unwrap();
        assert_eq!(
            frame[FRAME_HEADER_LEN..],
            postcard::to_allocvec(&text).unwrap()
        );
    }

    #[test]
    fn encode_frame_into_appends_and_refuses_without_writing() {
        let mut out = b"kept".to_vec();
        let packet = Packet::from(PureMessage::new("hi"));
        encode_frame_into(&packet, DEFAULT_MAX_FRAME_SIZE, &mut out).unwrap();
        assert_eq!(&out[..4], b"kept");
        assert_eq!(
            out[4..],
            encode_frame(&packet, DEFAULT_MAX_FRAME_SIZE).unwrap()
        );
        let big = Packet::from(DataTransmission::MiscData(Payload::new(vec![0; 20_000])));
        let before = out.clone();
        assert!(matches!(
            encode_frame_into(&big, MIN_MAX_FRAME_SIZE, &mut out),
            Err(Error::PacketTooLarge { .. })
        ));
        assert_eq!(out, before);
    }

    #[test]
    fn incremental_decoder_whole_stream_at_once() {
        let packets = samples();
        let stream: Vec<u8> = packets
            .iter()
            .flat_map(|p| encode_frame(p, DEFAULT_MAX_FRAME_SIZE).unwrap())
            .collect();
        let mut decoder = FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE);
        let mut input = &stream[..];
        let mut out = Vec::new();
        while let Some(frame) = decoder.decode(&mut input).unwrap() {
            out.push(frame.decode().unwrap());
        }
        assert_eq!(out, packets);
    }

    #[test]
    fn oversized_declaration_fails_on_the_header_alone() {
        let mut decoder = FrameDecoder::new(1024);
        let header = FrameHeader {
            kind: PacketKind::PureMessage,
            body_len: 1025,
        }
        .to_bytes();
        let mut input = &header[..5];
        assert_eq!(decoder.decode(&mut input), Ok(None));
        let mut input = &header[5..];
        assert_eq!(
            decoder.decode(&mut input),
            Err(DecodeError::Oversized {
                declared: 1025,
                limit: 1024
            })
        );
        assert_eq!(decoder.buffered_len(), FRAME_HEADER_LEN);
        // The stream is dead: further input keeps failing.
        let mut more: &[u8] = &[0; 10];
        assert!(matches!(
            decoder.decode(&mut more),
            Err(DecodeError::Oversized { .. })
        ));
        // Exactly at the limit is fine.
        let mut decoder = FrameDecoder::new(1024);
        let header = FrameHeader {
            kind: PacketKind::PureMessage,
            body_len: 1024,
        }
        .to_bytes();
        assert_eq!(decoder.decode(&mut &header[..]), Ok(None));
    }

    #[test]
    fn ceiling_caps_configured_limit() {
        let decoder = FrameDecoder::new(u32::MAX);
        assert_eq!(decoder.max_frame_size(), MAX_FRAME_SIZE_CEILING);
        let header = FrameHeader {
            kind: PacketKind::PureMessage,
            body_len: MAX_FRAME_SIZE_CEILING + 1,
        };
        assert!(matches!(
            decode_frame(&header.to_bytes(), u32::MAX),
            Err(DecodeError::Oversized { .. })
        ));
    }

    #[test]
    fn unknown_version_and_tag() {
        let mut frame =
            encode_frame(&PureMessage::new("x").into(), DEFAULT_MAX_FRAME_SIZE).unwrap();
        frame[0] = 9;
        assert_eq!(
            decode_frame(&frame, DEFAULT_MAX_FRAME_SIZE),
            Err(DecodeError::UnknownVersion(9))
        );
        frame[0] = FRAME_VERSION;
        frame[1] = 200;
        assert_eq!(
            decode_frame(&frame, DEFAULT_MAX_FRAME_SIZE),
            Err(DecodeError::UnknownPacketType(200))
        );
        frame[1] = 0;
        assert_eq!(
            decode_frame(&frame, DEFAULT_MAX_FRAME_SIZE),
            Err(DecodeError::UnknownPacketType(0))
        );
    }

    #[test]
    fn truncated_malformed_trailing_invalid() {
        let frame =
            encode_frame(&PureMessage::new("hello").into(), DEFAULT_MAX_FRAME_SIZE).unwrap();
        assert_eq!(
            decode_frame(&frame[..3], DEFAULT_MAX_FRAME_SIZE),
            Err(DecodeError::Truncated { needed: 3 })
        );
        assert_eq!(
            decode_frame(&frame[..frame.len() - 2], DEFAULT_MAX_FRAME_SIZE),
            Err(DecodeError::Truncated { needed: 2 })
        );

        // Body claims a 5-byte string but holds 2.
        assert!(matches!(
            decode_body(PacketKind::PureMessage, &[5, b'a', b'b']),
            Err(DecodeError::Malformed {
                kind: PacketKind::PureMessage,
                ..
            })
        ));
        assert_eq!(
            decode_body(PacketKind::PureMessage, &[1, b'a', 0, 0]),
            Err(DecodeError::TrailingBytes {
                kind: PacketKind::PureMessage,
                count: 2
            })
        );
        // Invalid UTF-8.
        assert_eq!(
            decode_body(PacketKind::PureMessage, &[2, 0xff, 0xfe]),
            Err(DecodeError::Malformed {
                kind: PacketKind::PureMessage,
                reason: "invalid UTF-8"
            })
        );
        // Unknown Keepalive variant.
        assert!(matches!(
            decode_body(PacketKind::Keepalive, &[9, 0]),
            Err(DecodeError::Malformed { .. })
        ));

        // A well-formed body carrying an unsafe file name is rejected by validation.
        let offer = FileOffer {
            transfer_id: TransferId(1),
            name: FileName::new("ok").unwrap(),
            size: 1,
            chunk_size: 1,
            hash: ContentHash([0; 32]),
        };
        let mut body =
            postcard::to_allocvec(&DataTransmission::File(FileMessage::Offer(offer))).unwrap();
        // Layout: variant(0) variant(0) transfer_id(1) name_len(2) "ok" ...
        let name_at = body.iter().position(|&b| b == b'o').unwrap();
        body[name_at..name_at + 2].copy_from_slice(b"..");
        assert_eq!(
            decode_body(PacketKind::DataTransmission, &body),
            Err(DecodeError::Invalid(InvalidPacket::FileName(
                "`.` and `..` are not file names"
            )))
        );
    }

    #[test]
    fn encode_rejects_invalid_and_oversized() {
        let long = PureMessage::new("x".repeat(MAX_TEXT_LEN + 1)).into();
        assert!(matches!(
            encode_frame(&long, DEFAULT_MAX_FRAME_SIZE),
            Err(Error::InvalidPacket(_))
        ));
        let big = DataTransmission::MiscData(Payload::new(vec![0; 20_000])).into();
        assert!(matches!(
            encode_frame(&big, MIN_MAX_FRAME_SIZE),
            Err(Error::PacketTooLarge { limit, .. }) if limit == MIN_MAX_FRAME_SIZE as usize
        ));
        assert!(encode_frame(&big, DEFAULT_MAX_FRAME_SIZE).is_ok());
    }

    proptest! {
        #[test]
        fn arbitrary_payloads_round_trip_under_arbitrary_splits(
            texts in proptest::collection::vec(".{0,200}", 1..8),
            blobs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..3000), 0..4),
            label in proptest::option::of("[a-z]{0,16}"),
            cut in 1usize..97,
        ) {
            let mut packets: Vec<Packet> = texts.into_iter().map(|t| PureMessage::new(t).into()).collect();
            packets.extend(blobs.into_iter().map(|b| {
                DataTransmission::MiscData(Payload { label: label.clone(), data: b.into() }).into()
            }));
            let stream: Vec<u8> = packets.iter().flat_map(|p| encode_frame(p, DEFAULT_MAX_FRAME_SIZE).unwrap()).collect();
            let mut decoder = FrameDecoder::new(DEFAULT_MAX_FRAME_SIZE);
            let mut out = Vec::new();
            for piece in stream.chunks(cut) {
                let mut input = piece;
                while let Some(frame) = decoder.decode(&mut input).unwrap() {
                    out.push(frame.decode().unwrap());
                }
            }
            prop_assert_eq!(out, packets);
            prop_assert!(decoder.is_idle());
        }

        #[test]
        fn decoder_never_panics_on_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut decoder = FrameDecoder::new(256);
            let mut input = &bytes[..];
            while !input.is_empty() {
                match decoder.decode(&mut input) {
                    Ok(Some(frame)) => { let _ = frame.decode(); }
                    Ok(None) => {}
                    Err(_) => break,
                }
            }
            prop_assert!(decoder.buffered_len() <= FRAME_HEADER_LEN + 256);
        }
    }
}
