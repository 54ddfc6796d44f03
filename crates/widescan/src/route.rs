//! What the kernel knows about the way out: route, neighbour and link lookups over
//! one `NETLINK_ROUTE` socket (netlink-packet-route), synchronous and bounded. The
//! packet transport uses them to find the interface, source address and next-hop
//! MAC that the kernel itself would use.

use std::io;
use std::net::Ipv6Addr;
use std::time::Duration;

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, NetlinkBuffer, NetlinkHeader,
    NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::{
    AddressFamily, RouteNetlinkMessage,
    link::{LinkAttribute, LinkLayerType, LinkMessage},
    neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState},
    route::{RouteAddress, RouteAttribute, RouteMessage, RouteType},
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

/// Receive buffer: the kernel caps dump datagrams at 32 KiB; a bigger one is
/// reported, never silently cut.
const RECV_BUF: usize = 64 * 1024;
/// Datagrams read for one request at most (a neighbour table is finite; this only
/// guards against a kernel that never says DONE).
const MAX_DATAGRAMS: usize = 100_000;
/// How long one reply may take.
const REPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// How the kernel routes one destination (`ip -6 route get`), or one route of
/// the routing tables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RouteInfo {
    /// Unicast, local, blackhole, unreachable, …
    pub(crate) kind: RouteType,
    /// The route's destination prefix (the queried address, /128, for a lookup).
    pub(crate) destination: Option<(Ipv6Addr, u8)>,
    pub(crate) table: u32,
    pub(crate) ifindex: Option<u32>,
    pub(crate) gateway: Option<Ipv6Addr>,
    pub(crate) prefsrc: Option<Ipv6Addr>,
}

impl RouteInfo {
    fn from_message(r: &RouteMessage) -> RouteInfo {
        let mut info = RouteInfo {
            kind: r.header.kind,
            destination: None,
            table: u32::from(r.header.table),
            ifindex: None,
            gateway: None,
            prefsrc: None,
        };
        for attr in &r.attributes {
            match attr {
                RouteAttribute::Destination(RouteAddress::Inet6(a)) => {
                    info.destination = Some((*a, r.header.destination_prefix_length));
                }
                RouteAttribute::Table(t) => info.table = *t,
                RouteAttribute::Oif(i) => info.ifindex = Some(*i),
                RouteAttribute::Gateway(RouteAddress::Inet6(a)) => info.gateway = Some(*a),
                RouteAttribute::PrefSource(RouteAddress::Inet6(a)) => info.prefsrc = Some(*a),
                _ => {}
            }
        }
        if info.destination.is_none() && r.header.destination_prefix_length == 0 {
            info.destination = Some((Ipv6Addr::UNSPECIFIED, 0));
        }
        info
    }
}

/// An interface as netlink describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LinkInfo {
    pub(crate) name: String,
    /// Ethernet-like (`ARPHRD_ETHER`).
    pub(crate) ethernet: bool,
    pub(crate) address: Option<[u8; 6]>,
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("netlink: {e}"))
}

/// One `NETLINK_ROUTE` socket for a series of requests.
pub(crate) struct Rtnl {
    sock: Socket,
    port: u32,
    seq: u32,
    buf: Vec<u8>,
}

impl Rtnl {
    pub(crate) fn open() -> io::Result<Rtnl> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        let local = sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        socket2::SockRef::from(&sock).set_read_timeout(Some(REPLY_TIMEOUT))?;
        Ok(Rtnl {
            sock,
            port: local.port_number(),
            seq: 0,
            buf: Vec::with_capacity(RECV_BUF),
        })
    }

    /// Sends one request and collects the reply messages: the first one, or every
    /// one up to `NLMSG_DONE` for a dump.
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        dump: bool,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let Rtnl {
            sock,
            port,
            seq,
            buf,
        } = self;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | if dump { NLM_F_DUMP } else { 0 };
        header.sequence_number = *seq;
        let mut req = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        req.finalize();
        let mut out = vec![0u8; req.buffer_len()];
        req.serialize(&mut out);
        if sock.send(&out, 0)? != out.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "netlink: short send",
            ));
        }

        let mut results = Vec::new();
        for _ in 0..MAX_DATAGRAMS {
            buf.clear();
            // MSG_TRUNC: the return value is the datagram's real length.
            let n = sock.recv(buf, libc::MSG_TRUNC)?;
            if n > buf.len() {
                return Err(invalid(format!(
                    "a {n}-byte datagram exceeds the {RECV_BUF}-byte buffer"
                )));
            }
            let mut off = 0usize;
            while off < buf.len() {
                let chunk = &buf[off..];
                let raw = NetlinkBuffer::new_checked(chunk).map_err(invalid)?;
                // new_checked guarantees a header-sized length within the chunk.
                let len = raw.length() as usize;
                let control = matches!(raw.message_type(), NLMSG_DONE | NLMSG_ERROR);
                let parsed = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&chunk[..len]);
                off = off.saturating_add((len + 3) & !3);
                let m = match parsed {
                    Ok(m) => m,
                    // An entry of a dump this crate cannot parse is skipped; a single
                    // reply, or a DONE/ERROR, that cannot be parsed is fatal.
                    Err(_) if dump && !control => continue,
                    Err(e) => return Err(invalid(e)),
                };
                // Replies to earlier requests on this socket are not ours.
                if m.header.sequence_number != *seq || m.header.port_number != *port {
                    continue;
                }
                match m.payload {
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(results),
                            Some(_) => Err(e.to_io()),
                        };
                    }
                    NetlinkPayload::Done(d) => {
                        if d.code < 0 {
                            return Err(io::Error::from_raw_os_error(d.code.saturating_neg()));
                        }
                        return Ok(results);
                    }
                    NetlinkPayload::InnerMessage(inner) => {
                        results.push(inner);
                        if !dump {
                            return Ok(results);
                        }
                    }
                    NetlinkPayload::Overrun(_) => return Err(invalid("NLMSG_OVERRUN")),
                    _ => {}
                }
            }
        }
        Err(invalid("too many datagrams"))
    }

    /// The one reply to a non-dump request, picked out by `pick`.
    fn reply<T>(
        &mut self,
        msg: RouteNetlinkMessage,
        what: &str,
        pick: impl FnMut(RouteNetlinkMessage) -> Option<T>,
    ) -> io::Result<T> {
        self.request(msg, false)?
            .into_iter()
            .find_map(pick)
            .ok_or_else(|| invalid(format!("no {what} in the reply")))
    }

    /// How the kernel would route `dst` (from `src`, when given, so that policy
    /// rules on the source apply).
    pub(crate) fn route_get(
        &mut self,
        dst: Ipv6Addr,
        src: Option<Ipv6Addr>,
    ) -> io::Result<RouteInfo> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet6;
        msg.header.destination_prefix_length = 128;
        msg.attributes
            .push(RouteAttribute::Destination(RouteAddress::Inet6(dst)));
        if let Some(src) = src {
            msg.header.source_prefix_length = 128;
            msg.attributes
                .push(RouteAttribute::Source(RouteAddress::Inet6(src)));
        }
        let r = self.reply(RouteNetlinkMessage::GetRoute(msg), "route", |m| match m {
            RouteNetlinkMessage::NewRoute(r) => Some(r),
            _ => None,
        })?;
        Ok(RouteInfo::from_message(&r))
    }

    /// Every IPv6 route of every table.
    pub(crate) fn routes(&mut self) -> io::Result<Vec<RouteInfo>> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = AddressFamily::Inet6;
        Ok(self
            .request(RouteNetlinkMessage::GetRoute(msg), true)?
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r) => Some(RouteInfo::from_message(r)),
                _ => None,
            })
            .collect())
    }

    /// The MAC the neighbour table holds for `addr` on `ifindex`, if it is usable
    /// (not incomplete or failed).
    pub(crate) fn neighbour(
        &mut self,
        ifindex: u32,
        addr: Ipv6Addr,
    ) -> io::Result<Option<[u8; 6]>> {
        let mut msg = NeighbourMessage::default();
        msg.header.family = AddressFamily::Inet6;
        msg.header.ifindex = ifindex;
        for m in self.request(RouteNetlinkMessage::GetNeighbour(msg), true)? {
            let RouteNetlinkMessage::NewNeighbour(n) = m else {
                continue;
            };
            if n.header.ifindex != ifindex || n.header.family != AddressFamily::Inet6 {
                continue;
            }
            let is_it = n.attributes.iter().any(|a| {
                matches!(a, NeighbourAttribute::Destination(NeighbourAddress::Inet6(d)) if *d == addr)
            });
            if !is_it {
                continue;
            }
            if matches!(
                n.header.state,
                NeighbourState::Incomplete | NeighbourState::Failed | NeighbourState::None
            ) {
                return Ok(None);
            }
            return Ok(n.attributes.iter().find_map(|a| match a {
                NeighbourAttribute::LinkLayerAddress(b) => mac(b),
                _ => None,
            }));
        }
        Ok(None)
    }

    /// An interface's name, type and hardware address.
    pub(crate) fn link(&mut self, ifindex: u32) -> io::Result<LinkInfo> {
        let mut msg = LinkMessage::default();
        msg.header.index = ifindex;
        let l = self.reply(RouteNetlinkMessage::GetLink(msg), "link", |m| match m {
            RouteNetlinkMessage::NewLink(l) => Some(l),
            _ => None,
        })?;
        let (mut name, mut address) = (None, None);
        for attr in &l.attributes {
            match attr {
                LinkAttribute::IfName(n) => name = Some(n.clone()),
                LinkAttribute::Address(a) => address = mac(a),
                _ => {}
            }
        }
        Ok(LinkInfo {
            name: name.ok_or_else(|| invalid("the link has no name"))?,
            ethernet: l.header.link_layer_type == LinkLayerType::Ether,
            address,
        })
    }
}

fn mac(bytes: &[u8]) -> Option<[u8; 6]> {
    <[u8; 6]>::try_from(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lo_index() -> u32 {
        std::fs::read_to_string("/sys/class/net/lo/ifindex")
            .expect("lo ifindex")
            .trim()
            .parse()
            .expect("number")
    }

    #[test]
    fn loopback_route_link_and_neighbours() {
        let lo = lo_index();
        let mut nl = Rtnl::open().expect("netlink");
        let r = nl
            .route_get(Ipv6Addr::LOCALHOST, None)
            .expect("route to ::1");
        assert_eq!(
            (r.kind, r.ifindex, r.gateway),
            (RouteType::Local, Some(lo), None),
            "{r:?}"
        );
        let link = nl.link(lo).expect("link");
        assert_eq!(
            (link.name.as_str(), link.address, link.ethernet),
            ("lo", Some([0; 6]), false)
        );
        // lo has no neighbours: the dump ends cleanly with nothing found.
        assert_eq!(nl.neighbour(lo, Ipv6Addr::LOCALHOST).expect("dump"), None);
        // The same socket serves a dump after single replies: ::1 has its route.
        let routes = nl.routes().expect("route dump");
        assert!(
            routes
                .iter()
                .any(|r| r.destination == Some((Ipv6Addr::LOCALHOST, 128))
                    && r.kind == RouteType::Local),
            "{routes:?}"
        );
    }

    #[test]
    fn kernel_errors_come_back_as_errno() {
        let mut nl = Rtnl::open().expect("netlink");
        let e = nl.link(0x7fff_fff0).expect_err("no such link");
        assert_eq!(e.raw_os_error(), Some(libc::ENODEV), "{e}");
        // The socket stays usable after an error.
        assert!(nl.link(lo_index()).is_ok());
    }
}
