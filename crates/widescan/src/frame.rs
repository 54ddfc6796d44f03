//! Ethernet and IPv6 framing of probes for the packet transport: what the kernel's
//! IPv6 stack does for the raw-socket transport (headers, ICMPv6 checksum), done
//! here once per probe with a precomputed header. No IO.

use std::net::Ipv6Addr;

use crate::probe::MAX_MESSAGE_LEN;

/// Ethernet II header: destination MAC, source MAC, EtherType.
pub(crate) const ETHERNET_HEADER_LEN: usize = 14;
/// The fixed IPv6 header.
pub(crate) const IPV6_HEADER_LEN: usize = 40;
/// Bytes in front of the ICMPv6 message.
pub(crate) const HEADERS_LEN: usize = ETHERNET_HEADER_LEN + IPV6_HEADER_LEN;
/// The largest frame a probe needs.
pub(crate) const MAX_FRAME_LEN: usize = HEADERS_LEN + MAX_MESSAGE_LEN;

const ETHERTYPE_IPV6: u16 = 0x86dd;
const NEXT_HEADER_ICMPV6: u8 = 58;
/// Offsets inside the frame.
const PAYLOAD_LEN_AT: usize = ETHERNET_HEADER_LEN + 4;
const DST_AT: usize = ETHERNET_HEADER_LEN + 24;
const CHECKSUM_AT: usize = HEADERS_LEN + 2;

/// The headers every probe of one sender shares, and the part of the ICMPv6
/// checksum they fix (source address and next header).
#[derive(Clone, Debug)]
pub(crate) struct FrameTemplate {
    headers: [u8; HEADERS_LEN],
    fixed_sum: u64,
}

impl FrameTemplate {
    pub(crate) fn new(src_mac: [u8; 6], dst_mac: [u8; 6], src: Ipv6Addr, hop_limit: u8) -> Self {
        let mut h = [0u8; HEADERS_LEN];
        h[..6].copy_from_slice(&dst_mac);
        h[6..12].copy_from_slice(&src_mac);
        h[12..14].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
        let ip = &mut h[ETHERNET_HEADER_LEN..];
        ip[0] = 0x60; // version 6, traffic class 0, flow label 0
        ip[6] = NEXT_HEADER_ICMPV6;
        ip[7] = hop_limit;
        ip[8..24].copy_from_slice(&src.octets());
        FrameTemplate {
            headers: h,
            fixed_sum: sum_words(&src.octets()) + u64::from(NEXT_HEADER_ICMPV6),
        }
    }

    /// Writes a frame to `dst` into `buf` (at least [`MAX_FRAME_LEN`] bytes):
    /// `message` writes the ICMPv6 message, checksum field zero, after the headers
    /// and returns its length. Returns the frame's length.
    #[inline]
    pub(crate) fn write(
        &self,
        dst: &[u8; 16],
        buf: &mut [u8],
        message: impl FnOnce(&mut [u8]) -> usize,
    ) -> usize {
        if buf.len() < MAX_FRAME_LEN {
            return 0;
        }
        buf[..HEADERS_LEN].copy_from_slice(&self.headers);
        let len = message(&mut buf[HEADERS_LEN..MAX_FRAME_LEN]).min(MAX_MESSAGE_LEN);
        // MAX_MESSAGE_LEN is far below 64 KiB, so the length fits the field.
        let len16 = len as u16;
        buf[PAYLOAD_LEN_AT..PAYLOAD_LEN_AT + 2].copy_from_slice(&len16.to_be_bytes());
        buf[DST_AT..DST_AT + 16].copy_from_slice(dst);
        buf[CHECKSUM_AT..CHECKSUM_AT + 2].fill(0);
        // RFC 8200 §8.1: the pseudo-header is source, destination, upper-layer
        // length and next header.
        let sum = self.fixed_sum
            + sum_words(dst)
            + u64::from(len16)
            + sum_words(&buf[HEADERS_LEN..HEADERS_LEN + len]);
        let checksum = !fold(sum);
        buf[CHECKSUM_AT..CHECKSUM_AT + 2].copy_from_slice(&checksum.to_be_bytes());
        HEADERS_LEN + len
    }
}

/// Sum of big-endian 16-bit words, an odd last byte padded with zero.
#[inline]
fn sum_words(bytes: &[u8]) -> u64 {
    let mut chunks = bytes.chunks_exact(2);
    let mut sum: u64 = chunks
        .by_ref()
        .map(|w| u64::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    if let [last] = chunks.remainder() {
        sum += u64::from(*last) << 8;
    }
    sum
}

/// Folds a sum of words into the 16-bit ones' complement sum.
#[inline]
fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The receiver's check, written independently: the ones' complement sum of
    /// the pseudo-header and the message, checksum included, is all ones.
    fn verifies(frame: &[u8]) -> bool {
        let ip = &frame[ETHERNET_HEADER_LEN..];
        let len = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
        let msg = &ip[IPV6_HEADER_LEN..IPV6_HEADER_LEN + len];
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&ip[8..40]);
        pseudo.extend_from_slice(&(len as u32).to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, ip[6]]);
        pseudo.extend_from_slice(msg);
        if pseudo.len() % 2 == 1 {
            pseudo.push(0);
        }
        let mut sum: u32 = 0;
        for w in pseudo.chunks(2) {
            sum += u32::from(w[0]) << 8 | u32::from(w[1]);
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum == 0xffff
    }

    #[test]
    fn frames_carry_the_headers_and_a_valid_checksum() {
        let src: Ipv6Addr = "2a00:1450::1".parse().expect("addr");
        let t = FrameTemplate::new([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], src, 64);
        let dst: Ipv6Addr = "2a00:1450:4001:81c::200e".parse().expect("addr");
        let mut buf = [0u8; MAX_FRAME_LEN];
        for msg_len in [8usize, 9, 40, 77, MAX_MESSAGE_LEN] {
            let n = t.write(&dst.octets(), &mut buf, |m| {
                m[0] = 128;
                for (i, b) in m[4..msg_len].iter_mut().enumerate() {
                    *b = (i * 37 + msg_len) as u8;
                }
                msg_len
            });
            assert_eq!(n, HEADERS_LEN + msg_len);
            assert_eq!(&buf[..6], &[2, 0, 0, 0, 0, 2], "destination MAC first");
            assert_eq!(&buf[6..12], &[2, 0, 0, 0, 0, 1]);
            assert_eq!(&buf[12..14], &[0x86, 0xdd]);
            let ip = &buf[ETHERNET_HEADER_LEN..];
            assert_eq!((ip[0], ip[6], ip[7]), (0x60, 58, 64));
            assert_eq!(usize::from(u16::from_be_bytes([ip[4], ip[5]])), msg_len);
            assert_eq!(&ip[8..24], &src.octets());
            assert_eq!(&ip[24..40], &dst.octets());
            assert!(verifies(&buf[..n]), "checksum of a {msg_len}-byte message");
            // Any flipped bit in the message or addresses breaks it.
            buf[HEADERS_LEN + msg_len - 1] ^= 0x10;
            assert!(!verifies(&buf[..n]));
        }
    }

    #[test]
    fn a_short_buffer_gets_no_frame() {
        let t = FrameTemplate::new([0; 6], [0; 6], Ipv6Addr::LOCALHOST, 1);
        let mut buf = [0u8; HEADERS_LEN + 8];
        assert_eq!(t.write(&[0; 16], &mut buf, |_| 8), 0);
    }
}
