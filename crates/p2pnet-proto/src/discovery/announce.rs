//! The announce datagram (LAN broadcast, multicast, unicast to designated
//! ports).
//!
//! An announce says "a peer with this id listens on these ports at these
//! addresses". It is **not trusted for identity**: anyone can send one with
//! any id; the channel handshake that follows proves the id or fails. The
//! datagram exists to be cheap to send and strict to parse:
//!
//! ```text
//! offset  size  field
//! 0       4     magic "P2PA"
//! 4       1     version (1)
//! 5       1     flags: bit 0 = reply (a unicast answer to an announce),
//!               bit 1 = solicit (the sender asks for unicast answers)
//! 6       8     network tag: first 8 bytes of BLAKE3("p2pnet/v1 network" ‖ name)
//! 14      32    peer id
//! 46      8     instance id (random per start: tells a restart from a duplicate)
//! 54      1     port count n (1..=MAX_ANNOUNCE_PORTS)
//! 55      2n    TCP listening ports, big-endian, non-zero
//! ..      1     address count m (0..=MAX_ANNOUNCE_ADDRESSES)
//! ..      ...   m × (family 4 + 4 bytes | family 6 + 16 bytes)
//! ```
//!
//! Every field is bounded, so an announce is at most [`MAX_ANNOUNCE_LEN`]
//! bytes; anything longer, shorter, with unknown bits or trailing bytes is
//! rejected with an [`AnnounceError`] naming the fault. Foreign datagrams
//! (another magic, another network) are rejected before anything else is
//! read.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::identity::{PEER_ID_LEN, PeerId};

/// The first four bytes of every announce.
pub const ANNOUNCE_MAGIC: [u8; 4] = *b"P2PA";
/// The announce format version.
pub const ANNOUNCE_VERSION: u8 = 1;
/// Listening ports per announce.
pub const MAX_ANNOUNCE_PORTS: usize = 4;
/// Addresses per announce.
pub const MAX_ANNOUNCE_ADDRESSES: usize = 8;
/// The largest valid announce.
pub const MAX_ANNOUNCE_LEN: usize =
    FIXED_LEN + 1 + 2 * MAX_ANNOUNCE_PORTS + 1 + MAX_ANNOUNCE_ADDRESSES * 17;

const FIXED_LEN: usize = 4 + 1 + 1 + 8 + PEER_ID_LEN + 8;
const FLAG_REPLY: u8 = 0x01;
const FLAG_SOLICIT: u8 = 0x02;
const KNOWN_FLAGS: u8 = FLAG_REPLY | FLAG_SOLICIT;

/// Why a datagram is not a valid announce.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnnounceError {
    /// Not an announce at all (another protocol on the port).
    #[error("not an announce (bad magic)")]
    Foreign,
    /// An announce of a format version this crate does not speak.
    #[error("unsupported announce version {0}")]
    UnsupportedVersion(u8),
    /// An announce for another network name.
    #[error("announce for another network")]
    OtherNetwork,
    /// The datagram ends inside a field.
    #[error("truncated announce: {0} missing")]
    Truncated(&'static str),
    /// The datagram is longer than any valid announce.
    #[error("announce of {0} bytes exceeds MAX_ANNOUNCE_LEN")]
    TooLong(usize),
    /// A flag bit this version does not define is set.
    #[error("unknown flag bits {0:#04x}")]
    UnknownFlags(u8),
    /// No port, too many ports, or port 0.
    #[error("invalid port list: {0}")]
    Ports(&'static str),
    /// Too many addresses.
    #[error("{0} addresses, at most MAX_ANNOUNCE_ADDRESSES allowed")]
    TooManyAddresses(usize),
    /// An address family byte other than 4 or 6.
    #[error("unknown address family {0}")]
    AddressFamily(u8),
    /// Bytes after the last address.
    #[error("{0} trailing bytes")]
    TrailingBytes(usize),
}

/// The 8-byte tag of a network name carried in announces.
pub fn network_tag(network: &str) -> [u8; 8] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"p2pnet/v1 network\0");
    hasher.update(network.as_bytes());
    let mut tag = [0u8; 8];
    tag.copy_from_slice(&hasher.finalize().as_bytes()[..8]);
    tag
}

/// One announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    /// Whether this is a unicast reply to someone's announce (replies are
    /// never answered, so two nodes cannot ping-pong).
    pub reply: bool,
    /// Whether the sender asks receivers to answer by unicast (it has just
    /// started or its addresses changed, and wants to hear everyone fast).
    pub solicit: bool,
    /// The sender's claimed peer id (proved only by a later handshake).
    pub peer_id: PeerId,
    /// Random per start of the sender.
    pub instance: u64,
    /// TCP ports the sender accepts channels on.
    pub ports: Vec<u16>,
    /// Addresses the sender believes it has; unspecified ones mean "the
    /// address you received this from".
    pub addresses: Vec<IpAddr>,
}

impl Announce {
    /// Encodes for `network`. Fails if a bound is broken.
    pub fn encode(&self, network: &str) -> Result<Vec<u8>, AnnounceError> {
        check_ports(&self.ports)?;
        if self.addresses.len() > MAX_ANNOUNCE_ADDRESSES {
            return Err(AnnounceError::TooManyAddresses(self.addresses.len()));
        }
        let mut out = Vec::with_capacity(MAX_ANNOUNCE_LEN);
        out.extend_from_slice(&ANNOUNCE_MAGIC);
        out.push(ANNOUNCE_VERSION);
        let mut flags = 0;
        if self.reply {
            flags |= FLAG_REPLY;
        }
        if self.solicit {
            flags |= FLAG_SOLICIT;
        }
        out.push(flags);
        out.extend_from_slice(&network_tag(network));
        out.extend_from_slice(self.peer_id.as_bytes());
        out.extend_from_slice(&self.instance.to_be_bytes());
        // Bounded by MAX_ANNOUNCE_PORTS / MAX_ANNOUNCE_ADDRESSES above.
        out.push(self.ports.len() as u8);
        for port in &self.ports {
            out.extend_from_slice(&port.to_be_bytes());
        }
        out.push(self.addresses.len() as u8);
        for address in &self.addresses {
            match address {
                IpAddr::V4(v4) => {
                    out.push(4);
                    out.extend_from_slice(&v4.octets());
                }
                IpAddr::V6(v6) => {
                    out.push(6);
                    out.extend_from_slice(&v6.octets());
                }
            }
        }
        Ok(out)
    }

    /// Decodes a datagram received for `network`.
    pub fn decode(datagram: &[u8], network: &str) -> Result<Self, AnnounceError> {
        if datagram.len() < ANNOUNCE_MAGIC.len() || datagram[..4] != ANNOUNCE_MAGIC {
            return Err(AnnounceError::Foreign);
        }
        if datagram.len() > MAX_ANNOUNCE_LEN {
            return Err(AnnounceError::TooLong(datagram.len()));
        }
        let mut r = Reader(&datagram[4..]);
        let version = r.byte("version")?;
        if version != ANNOUNCE_VERSION {
            return Err(AnnounceError::UnsupportedVersion(version));
        }
        let flags = r.byte("flags")?;
        if flags & !KNOWN_FLAGS != 0 {
            return Err(AnnounceError::UnknownFlags(flags));
        }
        if r.array::<8>("network tag")? != network_tag(network) {
            return Err(AnnounceError::OtherNetwork);
        }
        let peer_id = PeerId::from_bytes(r.array::<PEER_ID_LEN>("peer id")?);
        let instance = u64::from_be_bytes(r.array::<8>("instance id")?);
        let port_count = usize::from(r.byte("port count")?);
        if port_count > MAX_ANNOUNCE_PORTS {
            return Err(AnnounceError::Ports("too many ports"));
        }
        let ports = (0..port_count)
            .map(|_| r.array::<2>("port").map(u16::from_be_bytes))
            .collect::<Result<Vec<_>, _>>()?;
        check_ports(&ports)?;
        let address_count = usize::from(r.byte("address count")?);
        if address_count > MAX_ANNOUNCE_ADDRESSES {
            return Err(AnnounceError::TooManyAddresses(address_count));
        }
        let addresses = (0..address_count)
            .map(|_| match r.byte("address family")? {
                4 => Ok(IpAddr::V4(Ipv4Addr::from(r.array::<4>("IPv4 address")?))),
                6 => Ok(IpAddr::V6(Ipv6Addr::from(r.array::<16>("IPv6 address")?))),
                other => Err(AnnounceError::AddressFamily(other)),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !r.0.is_empty() {
            return Err(AnnounceError::TrailingBytes(r.0.len()));
        }
        Ok(Self {
            reply: flags & FLAG_REPLY != 0,
            solicit: flags & FLAG_SOLICIT != 0,
            peer_id,
            instance,
            ports,
            addresses,
        })
    }

    /// The addresses to try, given the datagram's source address: the
    /// source first (it demonstrably reaches the sender), then the claimed
    /// addresses with unspecified ones replaced by the source and
    /// multicast/broadcast ones dropped, without duplicates.
    pub fn candidate_addresses(&self, source: IpAddr) -> Vec<IpAddr> {
        let mut out = vec![source];
        for address in &self.addresses {
            let address = if address.is_unspecified() {
                source
            } else {
                *address
            };
            let usable = match address {
                IpAddr::V4(v4) => !v4.is_multicast() && !v4.is_broadcast(),
                IpAddr::V6(v6) => !v6.is_multicast(),
            };
            if usable && !out.contains(&address) {
                out.push(address);
            }
        }
        out
    }
}

fn check_ports(ports: &[u16]) -> Result<(), AnnounceError> {
    if ports.is_empty() {
        return Err(AnnounceError::Ports("no port"));
    }
    if ports.len() > MAX_ANNOUNCE_PORTS {
        return Err(AnnounceError::Ports("too many ports"));
    }
    if ports.contains(&0) {
        return Err(AnnounceError::Ports("port 0"));
    }
    Ok(())
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn byte(&mut self, field: &'static str) -> Result<u8, AnnounceError> {
        Ok(self.array::<1>(field)?[0])
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], AnnounceError> {
        let Some((head, rest)) = self.0.split_first_chunk::<N>() else {
            return Err(AnnounceError::Truncated(field));
        };
        self.0 = rest;
        Ok(*head)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn sample() -> Announce {
        Announce {
            reply: false,
            solicit: true,
            peer_id: PeerId::from_bytes([7; 32]),
            instance: 0x0123_4567_89ab_cdef,
            ports: vec![4000, 4001],
            addresses: vec![
                "10.9.8.7".parse().unwrap(),
                "fe80::1".parse().unwrap(),
                "0.0.0.0".parse().unwrap(),
            ],
        }
    }

    #[test]
    fn round_trips_and_has_the_documented_layout() {
        let bytes = sample().encode("p2pnet").unwrap();
        assert_eq!(&bytes[..4], b"P2PA");
        assert_eq!(bytes[4], ANNOUNCE_VERSION);
        assert_eq!(bytes.len(), FIXED_LEN + 1 + 4 + 1 + 5 + 17 + 5);
        assert_eq!(Announce::decode(&bytes, "p2pnet").unwrap(), sample());
    }

    #[test]
    fn a_full_announce_fits_the_bound() {
        let full = Announce {
            ports: vec![1; MAX_ANNOUNCE_PORTS],
            addresses: vec![IpAddr::V6(Ipv6Addr::LOCALHOST); MAX_ANNOUNCE_ADDRESSES],
            ..sample()
        };
        let bytes = full.encode("n").unwrap();
        assert_eq!(bytes.len(), MAX_ANNOUNCE_LEN);
        assert_eq!(Announce::decode(&bytes, "n").unwrap(), full);
    }

    #[test]
    fn foreign_other_network_and_other_versions_are_told_apart() {
        let bytes = sample().encode("p2pnet").unwrap();
        assert_eq!(
            Announce::decode(b"GET / HTTP/1.1", "p2pnet"),
            Err(AnnounceError::Foreign)
        );
        assert_eq!(
            Announce::decode(&bytes, "elsewhere"),
            Err(AnnounceError::OtherNetwork)
        );
        let mut v2 = bytes.clone();
        v2[4] = 2;
        assert_eq!(
            Announce::decode(&v2, "p2pnet"),
            Err(AnnounceError::UnsupportedVersion(2))
        );
        let mut flags = bytes;
        flags[5] = 0x80;
        assert_eq!(
            Announce::decode(&flags, "p2pnet"),
            Err(AnnounceError::UnknownFlags(0x80))
        );
    }

    #[test]
    fn every_truncation_and_any_extension_is_rejected() {
        let bytes = sample().encode("p2pnet").unwrap();
        for len in 0..bytes.len() {
            assert!(
                Announce::decode(&bytes[..len], "p2pnet").is_err(),
                "prefix of {len} bytes"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            Announce::decode(&longer, "p2pnet"),
            Err(AnnounceError::TrailingBytes(1))
        );
        let mut huge = bytes;
        huge.resize(MAX_ANNOUNCE_LEN + 1, 0);
        assert_eq!(
            Announce::decode(&huge, "p2pnet"),
            Err(AnnounceError::TooLong(MAX_ANNOUNCE_LEN + 1))
        );
    }

    #[test]
    fn bounds_hold_on_both_sides() {
        let no_port = Announce {
            ports: vec![],
            ..sample()
        };
        assert_eq!(no_port.encode("n"), Err(AnnounceError::Ports("no port")));
        let zero = Announce {
            ports: vec![0],
            ..sample()
        };
        assert_eq!(zero.encode("n"), Err(AnnounceError::Ports("port 0")));
        let many = Announce {
            addresses: vec![IpAddr::V4(Ipv4Addr::LOCALHOST); MAX_ANNOUNCE_ADDRESSES + 1],
            ..sample()
        };
        assert!(matches!(
            many.encode("n"),
            Err(AnnounceError::TooManyAddresses(_))
        ));
        // A hand-made datagram with port 0 or a bad family.
        let mut bytes = sample().encode("n").unwrap();
        bytes[FIXED_LEN + 1] = 0;
        bytes[FIXED_LEN + 2] = 0;
        assert_eq!(
            Announce::decode(&bytes, "n"),
            Err(AnnounceError::Ports("port 0"))
        );
        let mut bytes = sample().encode("n").unwrap();
        bytes[FIXED_LEN + 1 + 4 + 1] = 5;
        assert_eq!(
            Announce::decode(&bytes, "n"),
            Err(AnnounceError::AddressFamily(5))
        );
    }

    #[test]
    fn candidates_start_with_the_source_and_replace_unspecified() {
        let source: IpAddr = "192.168.5.5".parse().unwrap();
        let announce = Announce {
            addresses: vec![
                "0.0.0.0".parse().unwrap(),
                "10.0.0.1".parse().unwrap(),
                "224.0.0.1".parse().unwrap(),
                "255.255.255.255".parse().unwrap(),
                "ff02::1".parse().unwrap(),
                "10.0.0.1".parse().unwrap(),
            ],
            ..sample()
        };
        assert_eq!(
            announce.candidate_addresses(source),
            vec![source, "10.0.0.1".parse::<IpAddr>().unwrap()]
        );
    }

    proptest! {
        #[test]
        fn decode_never_panics_and_valid_output_re_encodes(data in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut datagram = ANNOUNCE_MAGIC.to_vec();
            datagram.extend_from_slice(&data);
            if let Ok(announce) = Announce::decode(&datagram, "p2pnet") {
                prop_assert_eq!(announce.encode("p2pnet").unwrap(), datagram);
            }
        }

        #[test]
        fn mutated_valid_announces_never_panic_and_re_encode_exactly(
            flips in proptest::collection::vec((0usize..MAX_ANNOUNCE_LEN, any::<u8>()), 1..6),
            cut in 0usize..=MAX_ANNOUNCE_LEN,
        ) {
            // Start from a valid encoding so the mutations reach the fields
            // behind the magic and the network tag.
            let mut datagram = sample().encode("p2pnet").unwrap();
            for (at, byte) in flips {
                if let Some(slot) = datagram.get_mut(at) {
                    *slot = byte;
                }
            }
            datagram.truncate(cut);
            if let Ok(announce) = Announce::decode(&datagram, "p2pnet") {
                prop_assert_eq!(announce.encode("p2pnet").unwrap(), datagram);
            }
        }

        #[test]
        fn any_valid_announce_round_trips(
            reply in any::<bool>(),
            solicit in any::<bool>(),
            id in any::<[u8; 32]>(),
            instance in any::<u64>(),
            ports in proptest::collection::vec(1u16.., 1..=MAX_ANNOUNCE_PORTS),
            v4 in proptest::collection::vec(any::<[u8; 4]>(), 0..4),
            v6 in proptest::collection::vec(any::<[u8; 16]>(), 0..4),
        ) {
            let addresses = v4.into_iter().map(IpAddr::from).chain(v6.into_iter().map(IpAddr::from)).collect();
            let announce = Announce { reply, solicit, peer_id: PeerId::from_bytes(id), instance, ports, addresses };
            let bytes = announce.encode("p2pnet").unwrap();
            prop_assert!(bytes.len() <= MAX_ANNOUNCE_LEN);
            prop_assert_eq!(Announce::decode(&bytes, "p2pnet").unwrap(), announce);
        }
    }
}
