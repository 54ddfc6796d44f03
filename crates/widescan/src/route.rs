//! What the kernel knows about the way out: route, neighbour and link lookups over
//! `NETLINK_ROUTE` (netlink-packet-route), synchronous and bounded. The packet
//! transport uses them to find the interface, source address and next-hop MAC
//! that the kernel itself would use.

use std::io;
use std::net::Ipv6Addr;
use std::time::Duration;

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, NetlinkBuffer, NetlinkHeader,
    NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::{
    AddressFamily, RouteNetlinkMessage,
    link::{LinkAttribute, LinkMessage},
    neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState},
    route::{RouteAddress, RouteAttribute, RouteMessage},
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

/// How the kernel routes one destination (`ip -6 route get`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RouteInfo {
    pub(crate) ifindex: u32,
    pub(crate) gateway: Option<Ipv6Addr>,
    pub(crate) prefsrc: Option<Ipv6Addr>,
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("netlink: {e}"))
}

/// Sends one request and collects the reply messages: the first one, or every one
/// up to `NLMSG_DONE` for a dump.
fn request(msg: RouteNetlinkMessage, dump: bool) -> io::Result<Vec<RouteNetlinkMessage>> {
    let mut sock = Socket::new(NETLINK_ROUTE)?;
    let local = sock.bind_auto()?;
    sock.connect(&SocketAddr::new(0, 0))?;
    socket2::SockRef::from(&sock).set_read_timeout(Some(REPLY_TIMEOUT))?;
    let port = local.port_number();
    let seq: u32 = 1;

    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | if dump { NLM_F_DUMP } else { 0 };
    header.sequence_number = seq;
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
    let mut buf: Vec<u8> = Vec::with_capacity(RECV_BUF);
    for _ in 0..MAX_DATAGRAMS {
        buf.clear();
        // MSG_TRUNC: the return value is the datagram's real length.
        let n = sock.recv(&mut buf, libc::MSG_TRUNC)?;
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
            if m.header.sequence_number != seq || m.header.port_number != port {
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
    msg: RouteNetlinkMessage,
    what: &str,
    pick: impl FnMut(RouteNetlinkMessage) -> Option<T>,
) -> io::Result<T> {
    request(msg, false)?
        .into_iter()
        .find_map(pick)
        .ok_or_else(|| invalid(format!("no {what} in the reply")))
}

fn mac(bytes: &[u8]) -> Option<[u8; 6]> {
    <[u8; 6]>::try_from(bytes).ok()
}

/// How the kernel would route `dst`.
pub(crate) fn route_get(dst: Ipv6Addr) -> io::Result<RouteInfo> {
    let mut msg = RouteMessage::default();
    msg.header.address_family = AddressFamily::Inet6;
    msg.header.destination_prefix_length = 128;
    msg.attributes
        .push(RouteAttribute::Destination(RouteAddress::Inet6(dst)));
    let reply = reply(RouteNetlinkMessage::GetRoute(msg), "route", |m| match m {
        RouteNetlinkMessage::NewRoute(r) => Some(r),
        _ => None,
    })?;
    let (mut ifindex, mut gateway, mut prefsrc) = (None, None, None);
    for attr in &reply.attributes {
        match attr {
            RouteAttribute::Oif(i) => ifindex = Some(*i),
            RouteAttribute::Gateway(RouteAddress::Inet6(a)) => gateway = Some(*a),
            RouteAttribute::PrefSource(RouteAddress::Inet6(a)) => prefsrc = Some(*a),
            _ => {}
        }
    }
    Ok(RouteInfo {
        ifindex: ifindex.ok_or_else(|| invalid("the route has no output interface"))?,
        gateway,
        prefsrc,
    })
}

/// The MAC the neighbour table holds for `addr` on `ifindex`, if it is usable
/// (not incomplete or failed).
pub(crate) fn neighbour(ifindex: u32, addr: Ipv6Addr) -> io::Result<Option<[u8; 6]>> {
    let mut msg = NeighbourMessage::default();
    msg.header.family = AddressFamily::Inet6;
    msg.header.ifindex = ifindex;
    for m in request(RouteNetlinkMessage::GetNeighbour(msg), true)? {
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

/// An interface's name and Ethernet address (`None` for links without one).
pub(crate) fn link(ifindex: u32) -> io::Result<(String, Option<[u8; 6]>)> {
    let mut msg = LinkMessage::default();
    msg.header.index = ifindex;
    let reply = reply(RouteNetlinkMessage::GetLink(msg), "link", |m| match m {
        RouteNetlinkMessage::NewLink(l) => Some(l),
        _ => None,
    })?;
    let (mut name, mut address) = (None, None);
    for attr in &reply.attributes {
        match attr {
            LinkAttribute::IfName(n) => name = Some(n.clone()),
            LinkAttribute::Address(a) => address = mac(a),
            _ => {}
        }
    }
    Ok((
        name.ok_or_else(|| invalid("the link has no name"))?,
        address,
    ))
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
        let r = route_get(Ipv6Addr::LOCALHOST).expect("route to ::1");
        assert_eq!((r.ifindex, r.gateway), (lo, None), "{r:?}");
        let (name, address) = link(lo).expect("link");
        assert_eq!((name.as_str(), address), ("lo", Some([0; 6])));
        // lo has no neighbours: the dump ends cleanly with nothing found.
        assert_eq!(neighbour(lo, Ipv6Addr::LOCALHOST).expect("dump"), None);
    }

    #[test]
    fn kernel_errors_come_back_as_errno() {
        let e = link(0x7fff_fff0).expect_err("no such link");
        assert_eq!(e.raw_os_error(), Some(libc::ENODEV), "{e}");
    }
}
