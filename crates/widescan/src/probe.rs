//! The discovery probe: ICMPv6 echo messages that carry who sent them, and the
//! stateless classification of everything the listener receives.
//!
//! # Wire format
//!
//! An ICMPv6 echo request (type 128, code 0; the kernel fills in the checksum) with
//! a discovery payload, all integers big-endian:
//!
//! ```text
//! ICMPv6  0  type (128 request / 129 reply)   1  code (0)   2..4 checksum
//!         4..6  identifier = MAC bits 63..48   6..8 sequence = MAC bits 47..32
//! payload 0..4   magic "P2PW"
//!         4      version (1)
//!         5      kind: 1 = probe, 2 = answer to a probe
//!         6..8   TCP port the sender's p2pnet node listens on (non-zero)
//!         8..16  sender's instance id (non-zero, random per run)
//!         16..24 MAC = SipHash-2-4(run key, payload[0..16] ‖ payload[24..33+L] ‖ dst)
//!         24..32 echo: for an answer, the MAC of the probe it answers; else 0
//!         32     contact length L (0..=64)
//!         33..   contact, printable ASCII (e.g. a URL explaining the scan)
//! ```
//!
//! # What is checked, and what is trusted
//!
//! * An **echo reply** is a *hit* only if it carries our instance id and its MAC,
//!   recomputed with our run key for the reply's *source* address, matches (and the
//!   identifier/sequence agree). RFC 4443 makes hosts echo the data unchanged, so a
//!   valid reply proves that this exact address answered a probe we sent: a forged
//!   or misdirected reply passes with probability 2^-64. No per-probe state is kept.
//! * An **echo request with a discovery payload from another instance** was keyed
//!   with *that* instance's run key, which we do not know, so its MAC cannot be
//!   verified. Only its format is checked (magic, version, kind, non-zero port and
//!   id, bounded printable contact). It is reported as a peer and answered.
//! * An **answer** echoes the MAC of the probe it answers; we recompute the probe we
//!   would have sent to the answer's source and compare, so an answer is verified
//!   to come from an address we actually probed.
//! * An **ICMPv6 error** (destination unreachable, packet too big, time exceeded,
//!   parameter problem) quotes the packet that caused it: an IPv6 header, then our
//!   message. It is ours only if the quoted message carries our instance id and its
//!   MAC verifies for the quoted *destination*; then it is reported as
//!   [`Inbound::Error`] and counted per type. It is never a hit: it proves only
//!   that some router or host on the way could not (or would not) deliver the probe.
//!
//! Discovery data is never proof of identity: a peer's instance id and port are
//! hints for where to connect. Identity is established later by the p2pnet channel
//! handshake.

use std::hash::Hasher;
use std::net::Ipv6Addr;

use siphasher::sip::SipHasher24;

use crate::error::{Error, Result};

/// Payload magic.
pub const MAGIC: [u8; 4] = *b"P2PW";
/// Payload version this crate writes and accepts.
pub const VERSION: u8 = 1;
/// ICMPv6 echo request type.
pub const ECHO_REQUEST: u8 = 128;
/// ICMPv6 echo reply type.
pub const ECHO_REPLY: u8 = 129;
/// ICMPv6 error types (RFC 4443 §3), all of which quote the offending packet.
pub const ERROR_TYPES: [u8; 4] = [1, 2, 3, 4];
/// IPv6 header bytes; an ICMPv6 error quotes the offending packet from its IPv6
/// header on.
pub const IPV6_HEADER_LEN: usize = 40;
/// IPv6 next-header value of ICMPv6.
const NEXT_HEADER_ICMPV6: u8 = 58;
/// ICMPv6 header bytes (type, code, checksum, identifier, sequence).
pub const ICMP_HEADER_LEN: usize = 8;
/// Fixed part of the discovery payload.
pub const PAYLOAD_FIXED_LEN: usize = 33;
/// Longest contact string.
pub const MAX_CONTACT_LEN: usize = 64;
/// Longest discovery message (ICMPv6 header included).
pub const MAX_MESSAGE_LEN: usize = ICMP_HEADER_LEN + PAYLOAD_FIXED_LEN + MAX_CONTACT_LEN;

/// A 128-bit SipHash key, fresh for each run unless the host application pins one.
#[derive(Clone, PartialEq, Eq)]
pub struct RunKey([u8; 16]);

impl RunKey {
    /// A key from the operating system's random source.
    pub fn random() -> Result<Self> {
        let mut k = [0u8; 16];
        getrandom::fill(&mut k).map_err(|e| Error::io("reading random bytes", e.into()))?;
        Ok(RunKey(k))
    }

    /// A fixed key (tests, or resuming a scan whose replies are still arriving).
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        RunKey(bytes)
    }

    /// The key bytes.
    pub fn to_bytes(&self) -> [u8; 16] {
        self.0
    }
}

impl std::fmt::Debug for RunKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RunKey(..)")
    }
}

/// A bounded, printable-ASCII contact string (e.g. a URL explaining the scan).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Contact(String);

impl Contact {
    /// Validates a contact string: at most [`MAX_CONTACT_LEN`] printable ASCII bytes.
    pub fn new(s: impl Into<String>) -> Result<Self> {
        let s = s.into();
        check_contact(s.as_bytes())
            .map_err(|why| Error::InvalidConfig(format!("contact: {why}")))?;
        Ok(Contact(s))
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn check_contact(b: &[u8]) -> std::result::Result<(), &'static str> {
    if b.len() > MAX_CONTACT_LEN {
        return Err("longer than 64 bytes");
    }
    if !b.iter().all(|c| (0x20..0x7f).contains(c)) {
        return Err("only printable ASCII is allowed");
    }
    Ok(())
}

/// Who this instance is, as announced in its probes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    instance_id: u64,
    tcp_port: u16,
    contact: Contact,
}

impl Identity {
    /// An identity; the instance id and port must be non-zero.
    pub fn new(instance_id: u64, tcp_port: u16, contact: Contact) -> Result<Self> {
        if instance_id == 0 {
            return Err(Error::InvalidConfig("instance id must be non-zero".into()));
        }
        if tcp_port == 0 {
            return Err(Error::InvalidConfig("TCP port must be non-zero".into()));
        }
        Ok(Identity {
            instance_id,
            tcp_port,
            contact,
        })
    }

    /// An identity with a random instance id.
    pub fn random(tcp_port: u16, contact: Contact) -> Result<Self> {
        let mut b = [0u8; 8];
        loop {
            getrandom::fill(&mut b).map_err(|e| Error::io("reading random bytes", e.into()))?;
            let id = u64::from_be_bytes(b);
            if id != 0 {
                return Identity::new(id, tcp_port, contact);
            }
        }
    }

    /// The instance id.
    pub fn instance_id(&self) -> u64 {
        self.instance_id
    }

    /// The announced TCP port.
    pub fn tcp_port(&self) -> u16 {
        self.tcp_port
    }

    /// The announced contact string.
    pub fn contact(&self) -> &Contact {
        &self.contact
    }
}

/// Message kind in the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Sent by a scanner to a target.
    Probe,
    /// Sent by an instance in response to another instance's probe.
    Answer,
}

impl Kind {
    fn to_byte(self) -> u8 {
        match self {
            Kind::Probe => 1,
            Kind::Answer => 2,
        }
    }

    fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(Kind::Probe),
            2 => Some(Kind::Answer),
            _ => None,
        }
    }
}

/// An ICMPv6 echo message, parsed but not yet interpreted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Echo<'a> {
    /// Request or reply.
    pub is_reply: bool,
    /// Identifier field.
    pub ident: u16,
    /// Sequence field.
    pub seq: u16,
    /// Echo data.
    pub data: &'a [u8],
}

impl<'a> Echo<'a> {
    /// Parses an ICMPv6 message (no IPv6 header, as raw sockets deliver it). Only
    /// echo request/reply with code 0 are accepted.
    pub fn parse(msg: &'a [u8]) -> Result<Self> {
        let (hdr, data) = msg
            .split_first_chunk::<ICMP_HEADER_LEN>()
            .ok_or(Error::Malformed("shorter than an ICMPv6 echo header"))?;
        let is_reply = match hdr[0] {
            ECHO_REQUEST => false,
            ECHO_REPLY => true,
            _ => return Err(Error::Malformed("not an ICMPv6 echo message")),
        };
        if hdr[1] != 0 {
            return Err(Error::Malformed("echo message with non-zero code"));
        }
        Ok(Echo {
            is_reply,
            ident: u16::from_be_bytes([hdr[4], hdr[5]]),
            seq: u16::from_be_bytes([hdr[6], hdr[7]]),
            data,
        })
    }
}

/// A decoded discovery payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Discovery<'a> {
    /// Probe or answer.
    pub kind: Kind,
    /// The sender's TCP port.
    pub tcp_port: u16,
    /// The sender's instance id.
    pub instance_id: u64,
    /// The sender's MAC.
    pub mac: u64,
    /// For answers, the MAC of the probe being answered.
    pub echo: u64,
    /// The sender's contact string.
    pub contact: &'a str,
}

impl<'a> Discovery<'a> {
    /// Decodes and format-checks a payload. Never panics; trailing bytes are an
    /// error (a reply must echo exactly what was sent).
    pub fn decode(data: &'a [u8]) -> Result<Self> {
        let (fixed, rest) =
            data.split_first_chunk::<PAYLOAD_FIXED_LEN>()
                .ok_or(Error::Malformed(
                    "payload shorter than the discovery header",
                ))?;
        if fixed[0..4] != MAGIC {
            return Err(Error::Malformed("bad magic"));
        }
        if fixed[4] != VERSION {
            return Err(Error::Malformed("unsupported version"));
        }
        let kind = Kind::from_byte(fixed[5]).ok_or(Error::Malformed("unknown kind"))?;
        let tcp_port = u16::from_be_bytes([fixed[6], fixed[7]]);
        let instance_id = be_u64(&fixed[8..16]);
        let mac = be_u64(&fixed[16..24]);
        let echo = be_u64(&fixed[24..32]);
        let contact_len = usize::from(fixed[32]);
        if tcp_port == 0 {
            return Err(Error::Malformed("zero TCP port"));
        }
        if instance_id == 0 {
            return Err(Error::Malformed("zero instance id"));
        }
        if (kind == Kind::Probe) != (echo == 0) {
            return Err(Error::Malformed(
                "echo field must be set exactly for answers",
            ));
        }
        if rest.len() != contact_len {
            return Err(Error::Malformed(
                "contact length does not match the payload",
            ));
        }
        check_contact(rest).map_err(Error::Malformed)?;
        let contact =
            std::str::from_utf8(rest).map_err(|_| Error::Malformed("contact is not ASCII"))?;
        Ok(Discovery {
            kind,
            tcp_port,
            instance_id,
            mac,
            echo,
            contact,
        })
    }
}

fn be_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_be_bytes(a)
}

/// An ICMPv6 error message type (RFC 4443 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorType {
    /// Type 1: no route, administratively prohibited, address unreachable, …
    DestinationUnreachable,
    /// Type 2: the probe did not fit a link's MTU.
    PacketTooBig,
    /// Type 3: the hop limit ran out on the way.
    TimeExceeded,
    /// Type 4: a router or host could not parse the probe's headers.
    ParameterProblem,
}

impl ErrorType {
    /// The type for an ICMPv6 type byte, if it is an error type.
    pub fn from_type(ty: u8) -> Option<Self> {
        match ty {
            1 => Some(ErrorType::DestinationUnreachable),
            2 => Some(ErrorType::PacketTooBig),
            3 => Some(ErrorType::TimeExceeded),
            4 => Some(ErrorType::ParameterProblem),
            _ => None,
        }
    }

    /// `"destination_unreachable"`, `"packet_too_big"`, `"time_exceeded"` or
    /// `"parameter_problem"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorType::DestinationUnreachable => "destination_unreachable",
            ErrorType::PacketTooBig => "packet_too_big",
            ErrorType::TimeExceeded => "time_exceeded",
            ErrorType::ParameterProblem => "parameter_problem",
        }
    }
}

/// What an inbound ICMPv6 message means to this instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inbound<'a> {
    /// A valid reply to one of our probes or answers: the source is alive.
    Hit,
    /// Another instance probed us. Format-checked only (see the module docs); answer
    /// it so it learns about us too.
    PeerProbe(Discovery<'a>),
    /// Another instance answered one of our probes; the echoed MAC was verified.
    PeerAnswer(Discovery<'a>),
    /// An ICMPv6 error about one of our probes or answers (the quoted MAC was
    /// verified). Counted, never a hit: the message's source is whoever reported
    /// the failure, not the target.
    Error {
        /// The error's type.
        ty: ErrorType,
        /// The error's code (e.g. 1 = administratively prohibited, 3 = address
        /// unreachable for [`ErrorType::DestinationUnreachable`]).
        code: u8,
        /// The address the quoted probe was sent to.
        target: Ipv6Addr,
    },
    /// Not for us, or not valid.
    Ignore(Ignored),
}

/// Why an inbound message was ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ignored {
    /// Not a well-formed echo message with a discovery payload.
    Malformed(&'static str),
    /// One of our own probes (we scanned an address of our own).
    Own,
    /// A reply carrying another instance's probe.
    Foreign,
    /// Carries our instance id but the MAC (or identifier/sequence) is wrong.
    BadMac,
    /// An answer whose echoed MAC is not one of our probes to that address.
    UnsolicitedAnswer,
    /// An ICMPv6 error that does not quote a complete, valid message of ours
    /// (another program's traffic, another instance's probe, a truncated or forged
    /// quote).
    UnrelatedError,
}

/// Encodes our probes and classifies inbound messages with one run key.
#[derive(Clone)]
pub struct ProbeCodec {
    key: RunKey,
    identity: Identity,
    /// Probe payload with the MAC field zeroed.
    probe_template: [u8; PAYLOAD_FIXED_LEN + MAX_CONTACT_LEN],
    payload_len: usize,
    /// SipHash state after absorbing the probe's fields: only `dst` is left to add.
    probe_prefix: SipHasher24,
}

impl std::fmt::Debug for ProbeCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeCodec")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl ProbeCodec {
    /// A codec for `identity` under `key`.
    pub fn new(key: RunKey, identity: Identity) -> Self {
        let mut probe_template = [0u8; PAYLOAD_FIXED_LEN + MAX_CONTACT_LEN];
        let payload_len = write_payload(&identity, Kind::Probe, 0, &mut probe_template);
        let probe_prefix = mac_prefix(&key, &probe_template[..payload_len]);
        ProbeCodec {
            key,
            identity,
            probe_template,
            payload_len,
            probe_prefix,
        }
    }

    /// This instance's identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Length of every probe this codec writes.
    pub fn probe_len(&self) -> usize {
        ICMP_HEADER_LEN + self.payload_len
    }

    /// Writes the probe for `dst` into `buf` (at least [`MAX_MESSAGE_LEN`] bytes;
    /// shorter buffers get a truncated, useless probe but never a panic) and returns
    /// its length. No allocation: this is the sender's per-packet path.
    #[inline]
    pub fn encode_probe(&self, dst: &[u8; 16], buf: &mut [u8]) -> usize {
        let mac = self.probe_mac(dst);
        self.write_message(
            ECHO_REQUEST,
            mac,
            &self.probe_template[..self.payload_len],
            buf,
        )
    }

    /// Writes an answer to a probe whose MAC was `echo`, for `dst`.
    pub fn encode_answer(&self, dst: &[u8; 16], echo: u64, buf: &mut [u8]) -> usize {
        let mut payload = [0u8; PAYLOAD_FIXED_LEN + MAX_CONTACT_LEN];
        let len = write_payload(&self.identity, Kind::Answer, echo, &mut payload);
        let mut h = mac_prefix(&self.key, &payload[..len]);
        h.write(dst);
        self.write_message(ECHO_REQUEST, h.finish(), &payload[..len], buf)
    }

    /// Classifies a raw ICMPv6 message received from `src`. Pure and total: any byte
    /// string gives an answer, never a panic.
    pub fn classify<'a>(&self, src: Ipv6Addr, msg: &'a [u8]) -> Inbound<'a> {
        if let Some(ty) = msg.first().copied().and_then(ErrorType::from_type) {
            return self.classify_error(ty, msg);
        }
        let echo = match Echo::parse(msg) {
            Ok(e) => e,
            Err(Error::Malformed(why)) => return Inbound::Ignore(Ignored::Malformed(why)),
            Err(_) => return Inbound::Ignore(Ignored::Malformed("unparsable")),
        };
        let d = match Discovery::decode(echo.data) {
            Ok(d) => d,
            Err(Error::Malformed(why)) => return Inbound::Ignore(Ignored::Malformed(why)),
            Err(_) => return Inbound::Ignore(Ignored::Malformed("unparsable")),
        };
        let mine = d.instance_id == self.identity.instance_id;
        match (echo.is_reply, mine) {
            (true, false) => Inbound::Ignore(Ignored::Foreign),
            // The echoed MAC must verify for the reply's source.
            (true, true) if self.sent_by_us(&echo, &d, src) => Inbound::Hit,
            (true, true) => Inbound::Ignore(Ignored::BadMac),
            (false, true) => Inbound::Ignore(Ignored::Own),
            (false, false) => match d.kind {
                Kind::Probe => Inbound::PeerProbe(d),
                Kind::Answer => {
                    if d.echo == self.probe_mac(&src.octets()) {
                        Inbound::PeerAnswer(d)
                    } else {
                        Inbound::Ignore(Ignored::UnsolicitedAnswer)
                    }
                }
            },
        }
    }

    /// An ICMPv6 error: ours only if it quotes, after the IPv6 header, a complete
    /// echo request of ours whose MAC verifies for the quoted destination.
    fn classify_error<'a>(&self, ty: ErrorType, msg: &[u8]) -> Inbound<'a> {
        let unrelated = Inbound::Ignore(Ignored::UnrelatedError);
        let Some((hdr, quoted)) = msg.split_first_chunk::<ICMP_HEADER_LEN>() else {
            return Inbound::Ignore(Ignored::Malformed("shorter than an ICMPv6 error header"));
        };
        let Some((ip, rest)) = quoted.split_first_chunk::<IPV6_HEADER_LEN>() else {
            return unrelated;
        };
        // Our messages carry no extension headers, so anything else is not ours.
        if ip[0] >> 4 != 6 || ip[6] != NEXT_HEADER_ICMPV6 {
            return unrelated;
        }
        // The quote must hold the whole message (ours are far below the 1280-byte
        // minimum MTU, so a conforming quote is never cut); bytes past the quoted
        // payload length are padding, not message.
        let payload_len = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
        let Some(inner) = rest.get(..payload_len) else {
            return unrelated;
        };
        let mut target = [0u8; 16];
        target.copy_from_slice(&ip[24..40]);
        let target = Ipv6Addr::from(target);
        let Ok(echo) = Echo::parse(inner) else {
            return unrelated;
        };
        let Ok(d) = Discovery::decode(echo.data) else {
            return unrelated;
        };
        if echo.is_reply
            || d.instance_id != self.identity.instance_id
            || !self.sent_by_us(&echo, &d, target)
        {
            return unrelated;
        }
        Inbound::Error {
            ty,
            code: hdr[1],
            target,
        }
    }

    /// Whether `echo` (carrying our instance id) is a message this codec wrote for
    /// `peer`: its MAC, recomputed over the payload for that address, matches, and
    /// so do the identifier and sequence derived from it.
    fn sent_by_us(&self, echo: &Echo<'_>, d: &Discovery<'_>, peer: Ipv6Addr) -> bool {
        let mut h = mac_prefix(&self.key, echo.data);
        h.write(&peer.octets());
        let want = h.finish();
        want == d.mac && (echo.ident, echo.seq) == ident_seq(want)
    }

    #[inline]
    fn probe_mac(&self, dst: &[u8; 16]) -> u64 {
        let mut h = self.probe_prefix;
        h.write(dst);
        h.finish()
    }

    #[inline]
    fn write_message(&self, ty: u8, mac: u64, payload: &[u8], buf: &mut [u8]) -> usize {
        let (ident, seq) = ident_seq(mac);
        let mut hdr = [0u8; ICMP_HEADER_LEN];
        hdr[0] = ty;
        hdr[4..6].copy_from_slice(&ident.to_be_bytes());
        hdr[6..8].copy_from_slice(&seq.to_be_bytes());
        let len = (ICMP_HEADER_LEN + payload.len()).min(buf.len());
        let (h, p) = buf[..len].split_at_mut(ICMP_HEADER_LEN.min(len));
        h.copy_from_slice(&hdr[..h.len()]);
        p.copy_from_slice(&payload[..p.len()]);
        if let Some(m) = p.get_mut(16..24) {
            m.copy_from_slice(&mac.to_be_bytes());
        }
        len
    }
}

fn ident_seq(mac: u64) -> (u16, u16) {
    ((mac >> 48) as u16, (mac >> 32) as u16)
}

/// SipHash state after absorbing a payload whose MAC field is zero, minus the MAC
/// field itself (bytes 16..24 are skipped).
fn mac_prefix(key: &RunKey, payload: &[u8]) -> SipHasher24 {
    let mut h = SipHasher24::new_with_key(&key.0);
    h.write(payload.get(..16).unwrap_or(payload));
    if let Some(rest) = payload.get(24..) {
        h.write(rest);
    }
    h
}

/// Writes a payload with a zero MAC field; returns its length.
fn write_payload(
    id: &Identity,
    kind: Kind,
    echo: u64,
    out: &mut [u8; PAYLOAD_FIXED_LEN + MAX_CONTACT_LEN],
) -> usize {
    let contact = id.contact.0.as_bytes();
    out[0..4].copy_from_slice(&MAGIC);
    out[4] = VERSION;
    out[5] = kind.to_byte();
    out[6..8].copy_from_slice(&id.tcp_port.to_be_bytes());
    out[8..16].copy_from_slice(&id.instance_id.to_be_bytes());
    out[16..24].fill(0);
    out[24..32].copy_from_slice(&echo.to_be_bytes());
    // Contact::new bounds the length to 64.
    out[32] = contact.len() as u8;
    out[33..33 + contact.len()].copy_from_slice(contact);
    PAYLOAD_FIXED_LEN + contact.len()
}

/// Turns a request we received into the reply a kernel would send (type 129, same
/// identifier, sequence and data). For tests and for simulated targets.
pub fn reply_to(request: &[u8]) -> Option<Vec<u8>> {
    let echo = Echo::parse(request).ok()?;
    if echo.is_reply {
        return None;
    }
    let mut r = request.to_vec();
    r[0] = ECHO_REPLY;
    r[2] = 0;
    r[3] = 0;
    Some(r)
}

/// The ICMPv6 error a router sends about `quoted` (a message from `src` to `dst`):
/// type, code, checksum, four bytes (unused, MTU or pointer), then the offending
/// packet from its IPv6 header on. Listener tests feed it in as received.
#[cfg(test)]
pub(crate) fn icmp_error(ty: u8, code: u8, src: Ipv6Addr, dst: Ipv6Addr, quoted: &[u8]) -> Vec<u8> {
    let mut m = vec![ty, code, 0x12, 0x34, 0, 0, 0x05, 0x00];
    m.extend_from_slice(&[0x60, 0, 0, 0]); // version 6, traffic class and flow 0
    m.extend_from_slice(
        &u16::try_from(quoted.len())
            .unwrap_or(u16::MAX)
            .to_be_bytes(),
    );
    m.extend_from_slice(&[NEXT_HEADER_ICMPV6, 1]); // hop limit as it arrived
    m.extend_from_slice(&src.octets());
    m.extend_from_slice(&dst.octets());
    m.extend_from_slice(quoted);
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn codec(id: u64, port: u16, contact: &str, key: u8) -> ProbeCodec {
        ProbeCodec::new(
            RunKey::from_bytes([key; 16]),
            Identity::new(id, port, Contact::new(contact).expect("contact")).expect("identity"),
        )
    }

    fn addr(s: &str) -> Ipv6Addr {
        s.parse().expect("addr")
    }

    fn probe(c: &ProbeCodec, dst: Ipv6Addr) -> Vec<u8> {
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        let n = c.encode_probe(&dst.octets(), &mut buf);
        buf[..n].to_vec()
    }

    #[test]
    fn probe_round_trips_and_reply_is_a_hit() {
        let a = codec(0xa, 4000, "https://example.invalid/scan", 1);
        let dst = addr("fd00:5ca7:1::7");
        let p = probe(&a, dst);
        assert_eq!(p.len(), a.probe_len());
        assert_eq!(p.len(), 8 + 33 + 28);
        let e = Echo::parse(&p).expect("echo");
        assert!(!e.is_reply);
        let d = Discovery::decode(e.data).expect("discovery");
        assert_eq!(
            (d.kind, d.tcp_port, d.instance_id),
            (Kind::Probe, 4000, 0xa)
        );
        assert_eq!(d.contact, "https://example.invalid/scan");
        assert_eq!((e.ident, e.seq), ident_seq(d.mac));
        let reply = reply_to(&p).expect("reply");
        assert_eq!(a.classify(dst, &reply), Inbound::Hit);
    }

    #[test]
    fn replies_from_the_wrong_source_or_tampered_are_not_hits() {
        let a = codec(0xa, 4000, "", 1);
        let dst = addr("2a00::7");
        let reply = reply_to(&probe(&a, dst)).expect("reply");
        assert_eq!(
            a.classify(addr("2a00::8"), &reply),
            Inbound::Ignore(Ignored::BadMac)
        );
        // Same instance id but another run key (a previous run): not a hit.
        let old = codec(0xa, 4000, "", 2);
        assert_eq!(old.classify(dst, &reply), Inbound::Ignore(Ignored::BadMac));
        // Any single flipped bit in the payload or id/seq breaks it.
        for i in 4..reply.len() {
            for bit in 0..8 {
                let mut t = reply.clone();
                t[i] ^= 1 << bit;
                let got = a.classify(dst, &t);
                assert_ne!(got, Inbound::Hit, "byte {i} bit {bit}");
            }
        }
        // Another instance's reply is foreign.
        let b = codec(0xb, 4001, "", 3);
        assert_eq!(b.classify(dst, &reply), Inbound::Ignore(Ignored::Foreign));
    }

    #[test]
    fn peers_learn_each_other_through_probe_and_answer() {
        let a = codec(0xa, 4000, "a", 1);
        let b = codec(0xb, 5000, "b", 2);
        let (a_addr, b_addr) = (addr("fd00:5ca7:1::1"), addr("fd00:5ca7:1::2"));
        // A probes B; B sees a peer probe (unverifiable) ...
        let p = probe(&a, b_addr);
        let Inbound::PeerProbe(d) = b.classify(a_addr, &p) else {
            panic!("B should see A's probe");
        };
        assert_eq!((d.instance_id, d.tcp_port, d.contact), (0xa, 4000, "a"));
        // ... and answers, echoing A's MAC; A verifies the echo.
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        let n = b.encode_answer(&a_addr.octets(), d.mac, &mut buf);
        let Inbound::PeerAnswer(ans) = a.classify(b_addr, &buf[..n]) else {
            panic!("A should accept B's answer");
        };
        assert_eq!(
            (ans.instance_id, ans.tcp_port, ans.kind),
            (0xb, 5000, Kind::Answer)
        );
        // An answer from an address A never probed, or echoing a wrong MAC, is refused.
        assert_eq!(
            a.classify(addr("fd00:5ca7:1::3"), &buf[..n]),
            Inbound::Ignore(Ignored::UnsolicitedAnswer)
        );
        let n2 = b.encode_answer(&a_addr.octets(), d.mac ^ 1, &mut buf);
        assert_eq!(
            a.classify(b_addr, &buf[..n2]),
            Inbound::Ignore(Ignored::UnsolicitedAnswer)
        );
        // A's kernel echoes B's answer back to B, which counts A as a hit.
        let n = b.encode_answer(&a_addr.octets(), d.mac, &mut buf);
        let echoed = reply_to(&buf[..n]).expect("reply");
        assert_eq!(b.classify(a_addr, &echoed), Inbound::Hit);
        // A hearing its own probe is ignored.
        assert_eq!(
            a.classify(a_addr, &probe(&a, a_addr)),
            Inbound::Ignore(Ignored::Own)
        );
    }

    #[test]
    fn plain_pings_and_other_icmp_are_ignored() {
        let a = codec(0xa, 4000, "", 1);
        let src = addr("2a00::1");
        let ping = [128u8, 0, 0, 0, 0, 1, 0, 1, b'a', b'b', b'c'];
        assert!(matches!(
            a.classify(src, &ping),
            Inbound::Ignore(Ignored::Malformed(_))
        ));
        let na = [136u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert!(matches!(
            a.classify(src, &na),
            Inbound::Ignore(Ignored::Malformed(_))
        ));
        let mut p = probe(&a, src);
        p[1] = 1; // code 1, as the original C# sent
        assert!(matches!(
            a.classify(src, &p),
            Inbound::Ignore(Ignored::Malformed(_))
        ));
    }

    #[test]
    fn errors_quoting_our_probes_are_classified_and_never_hits() {
        let a = codec(0xa, 4000, "https://example.invalid/scan", 1);
        let (me, target, router) = (addr("2a00::1"), addr("2a00:1::7"), addr("2a00:ff::1"));
        let p = probe(&a, target);
        for (ty, code, want) in [
            (1, 3, ErrorType::DestinationUnreachable),
            (1, 1, ErrorType::DestinationUnreachable),
            (2, 0, ErrorType::PacketTooBig),
            (3, 0, ErrorType::TimeExceeded),
            (4, 1, ErrorType::ParameterProblem),
        ] {
            let e = icmp_error(ty, code, me, target, &p);
            let classified = Inbound::Error {
                ty: want,
                code,
                target,
            };
            assert_eq!(a.classify(router, &e), classified, "type {ty} code {code}");
            // Reported by the target itself (e.g. port unreachable): still no hit.
            assert_eq!(a.classify(target, &e), classified, "type {ty} from target");
        }
        // Errors about our answers to other instances are ours too.
        let mut buf = [0u8; MAX_MESSAGE_LEN];
        let n = a.encode_answer(&target.octets(), 0x1234, &mut buf);
        assert_eq!(
            a.classify(router, &icmp_error(1, 4, me, target, &buf[..n])),
            Inbound::Error {
                ty: ErrorType::DestinationUnreachable,
                code: 4,
                target
            }
        );
        // Bytes past the quoted payload length are padding.
        let mut padded = icmp_error(3, 0, me, target, &p);
        padded.extend_from_slice(&[0; 8]);
        assert!(matches!(
            a.classify(router, &padded),
            Inbound::Error {
                ty: ErrorType::TimeExceeded,
                ..
            }
        ));
    }

    #[test]
    fn errors_not_quoting_a_valid_message_of_ours_are_unrelated() {
        let a = codec(0xa, 4000, "contact", 1);
        let (me, target, router) = (addr("2a00::1"), addr("2a00:1::7"), addr("2a00:ff::1"));
        let p = probe(&a, target);
        let unrelated = Inbound::Ignore(Ignored::UnrelatedError);
        // The MAC binds the destination: our probe, quoted as sent elsewhere.
        let moved = icmp_error(1, 3, me, addr("2a00:1::8"), &p);
        assert_eq!(a.classify(router, &moved), unrelated);
        // Another instance's probe, and one of ours from an earlier run (other key).
        let b = codec(0xb, 4001, "", 2);
        let theirs = icmp_error(1, 3, me, target, &probe(&b, target));
        assert_eq!(a.classify(router, &theirs), unrelated);
        let old = codec(0xa, 4000, "contact", 2);
        let stale = icmp_error(1, 3, me, target, &probe(&old, target));
        assert_eq!(a.classify(router, &stale), unrelated);
        // A quoted echo reply: kernels send those, we never do.
        let reply = icmp_error(1, 3, me, target, &reply_to(&p).expect("reply"));
        assert_eq!(a.classify(router, &reply), unrelated);
        // Another upper layer, and a quoted IPv4 header.
        let mut udp = icmp_error(1, 4, me, target, &p);
        udp[ICMP_HEADER_LEN + 6] = 17;
        assert_eq!(a.classify(router, &udp), unrelated);
        let mut v4 = icmp_error(1, 4, me, target, &p);
        v4[ICMP_HEADER_LEN] = 0x45;
        assert_eq!(a.classify(router, &v4), unrelated);

        let e = icmp_error(1, 3, me, target, &p);
        for len in 0..e.len() {
            let got = a.classify(router, &e[..len]);
            assert!(
                matches!(
                    got,
                    Inbound::Ignore(Ignored::UnrelatedError | Ignored::Malformed(_))
                ),
                "len {len}: {got:?}"
            );
        }
        // Any flipped bit in the quoted destination or message, except the quoted
        // checksum (kernels fill it in; nobody checks it), breaks it.
        let quoted_dst = ICMP_HEADER_LEN + 24;
        let quoted_msg = ICMP_HEADER_LEN + IPV6_HEADER_LEN;
        for i in (quoted_dst..e.len()).filter(|&i| !(quoted_msg + 2..quoted_msg + 4).contains(&i)) {
            for bit in 0..8 {
                let mut t = e.clone();
                t[i] ^= 1 << bit;
                let got = a.classify(router, &t);
                assert!(
                    matches!(got, Inbound::Ignore(_)),
                    "byte {i} bit {bit}: {got:?}"
                );
            }
        }
    }

    #[test]
    fn every_truncation_and_extension_is_rejected_cleanly() {
        let a = codec(0xa, 4000, "https://example.invalid", 1);
        let dst = addr("2a00::9");
        let reply = reply_to(&probe(&a, dst)).expect("reply");
        for len in 0..reply.len() {
            assert_ne!(a.classify(dst, &reply[..len]), Inbound::Hit, "len {len}");
            let _ = Echo::parse(&reply[..len]);
            let _ = Discovery::decode(reply.get(8..len).unwrap_or(&[]));
        }
        let mut longer = reply.clone();
        longer.push(b'x');
        assert_ne!(a.classify(dst, &longer), Inbound::Hit);
    }

    #[test]
    fn bad_identities_and_contacts_are_errors() {
        assert!(Identity::new(0, 1, Contact::default()).is_err());
        assert!(Identity::new(1, 0, Contact::default()).is_err());
        assert!(Contact::new("x".repeat(65)).is_err());
        assert!(Contact::new("tab\there").is_err());
        assert!(Contact::new("naïve").is_err());
        assert!(Contact::new("x".repeat(64)).is_ok());
        let id = Identity::random(1, Contact::default()).expect("random");
        assert_ne!(id.instance_id(), 0);
        assert_ne!(
            RunKey::random().expect("key"),
            RunKey::random().expect("key")
        );
    }

    #[test]
    fn short_buffers_never_panic() {
        let a = codec(0xa, 4000, "contact", 1);
        for len in 0..MAX_MESSAGE_LEN {
            let mut buf = vec![0u8; len];
            let n = a.encode_probe(&[1; 16], &mut buf);
            assert!(n <= len);
            let n = a.encode_answer(&[1; 16], 5, &mut buf);
            assert!(n <= len);
        }
    }

    proptest! {
        #[test]
        fn classify_is_total(msg in proptest::collection::vec(any::<u8>(), 0..200), src in any::<u128>()) {
            let a = codec(0xa, 4000, "", 1);
            let _ = a.classify(Ipv6Addr::from(src), &msg);
        }

        #[test]
        fn structured_garbage_never_panics_nor_hits(
            ty in prop_oneof![Just(128u8), Just(129u8), 1u8..=4],
            body in proptest::collection::vec(any::<u8>(), 0..120),
            magic in any::<bool>(),
        ) {
            let a = codec(0xa, 4000, "", 1);
            let mut msg = vec![ty, 0, 0, 0, 1, 2, 3, 4];
            if magic {
                msg.extend_from_slice(&MAGIC);
                msg.push(VERSION);
            }
            msg.extend_from_slice(&body);
            prop_assert_ne!(a.classify(Ipv6Addr::LOCALHOST, &msg), Inbound::Hit);
        }
    }
}
