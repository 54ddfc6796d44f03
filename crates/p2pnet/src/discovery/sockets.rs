//! Discovery sockets: binding, multicast joins per interface index,
//! sending out of a chosen interface, and receiving with the destination
//! address (which tells broadcast, multicast and unicast apart).
//!
//! Listeners bind the designated ports with `SO_REUSEADDR` and
//! `SO_REUSEPORT`, so several nodes on one host share them: broadcast and
//! multicast datagrams reach every such socket (unicast reaches one).
//! Senders bind an ephemeral port, which is where unicast answers come
//! back, so answers reach exactly the node that asked.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;

use nix::sys::socket::{
    ControlMessage, ControlMessageOwned, MsgFlags, SockaddrIn, SockaddrStorage, recvmsg, sendmsg,
    setsockopt, sockopt,
};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockRef, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// One received datagram.
#[derive(Debug)]
pub(crate) struct Received {
    /// Its bytes (at most the receive buffer).
    pub(crate) data: Vec<u8>,
    /// Who sent it (with the scope id for link-local IPv6 sources).
    pub(crate) source: SocketAddr,
    /// The destination address in its IP header, if the kernel told.
    pub(crate) destination: Option<IpAddr>,
    /// The interface it arrived on (0 if unknown).
    pub(crate) interface: u32,
    /// It was longer than the buffer.
    pub(crate) truncated: bool,
}

fn udp_socket(domain: Domain) -> io::Result<Socket> {
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_nonblocking(true)?;
    if domain == Domain::IPV6 {
        socket.set_only_v6(true)?;
    }
    Ok(socket)
}

fn into_tokio(socket: Socket) -> io::Result<UdpSocket> {
    UdpSocket::from_std(socket.into())
}

fn errno(err: nix::errno::Errno) -> io::Error {
    io::Error::from_raw_os_error(err as i32)
}

/// An IPv4 listener on a designated port, joined to `group` on each
/// `(interface index)` given. Join failures are returned per interface so
/// the caller can report them; the socket is usable regardless.
pub(crate) fn listen_v4(
    port: u16,
    group: Option<Ipv4Addr>,
    interfaces: &[u32],
) -> io::Result<(UdpSocket, Vec<(u32, io::Error)>)> {
    let socket = udp_socket(Domain::IPV4)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    // Only the groups this socket joins, not every group any program on
    // the host joined on this port.
    socket.set_multicast_all_v4(false)?;
    socket.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)).into())?;
    let mut failed = Vec::new();
    if let Some(group) = group {
        for &index in interfaces {
            if let Err(err) =
                socket.join_multicast_v4_n(&group, &InterfaceIndexOrAddress::Index(index))
            {
                failed.push((index, err));
            }
        }
    }
    let socket = into_tokio(socket)?;
    setsockopt(&socket, sockopt::Ipv4PacketInfo, &true).map_err(errno)?;
    Ok((socket, failed))
}

/// An IPv6 listener on a designated port, joined to `group` on each
/// interface index given.
pub(crate) fn listen_v6(
    port: u16,
    group: Option<Ipv6Addr>,
    interfaces: &[u32],
) -> io::Result<(UdpSocket, Vec<(u32, io::Error)>)> {
    let socket = udp_socket(Domain::IPV6)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_multicast_all_v6(false)?;
    socket.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)).into())?;
    let mut failed = Vec::new();
    if let Some(group) = group {
        for &index in interfaces {
            if let Err(err) = socket.join_multicast_v6(&group, index) {
                failed.push((index, err));
            }
        }
    }
    let socket = into_tokio(socket)?;
    setsockopt(&socket, sockopt::Ipv6RecvPacketInfo, &true).map_err(errno)?;
    Ok((socket, failed))
}

/// The IPv4 sender: an ephemeral port that may broadcast; multicast TTL 1
/// and loopback on (other nodes on this host hear us too).
pub(crate) fn sender_v4() -> io::Result<UdpSocket> {
    let socket = udp_socket(Domain::IPV4)?;
    socket.set_broadcast(true)?;
    socket.set_multicast_ttl_v4(1)?;
    socket.set_multicast_loop_v4(true)?;
    socket.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)).into())?;
    let socket = into_tokio(socket)?;
    setsockopt(&socket, sockopt::Ipv4PacketInfo, &true).map_err(errno)?;
    Ok(socket)
}

/// The IPv6 sender: an ephemeral port; multicast hop limit 1, loopback on.
pub(crate) fn sender_v6() -> io::Result<UdpSocket> {
    let socket = udp_socket(Domain::IPV6)?;
    socket.set_multicast_hops_v6(1)?;
    socket.set_multicast_loop_v6(true)?;
    socket.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)).into())?;
    let socket = into_tokio(socket)?;
    setsockopt(&socket, sockopt::Ipv6RecvPacketInfo, &true).map_err(errno)?;
    Ok(socket)
}

/// Receives one datagram into `buf`, with its destination address.
pub(crate) async fn recv(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<Received> {
    socket
        .async_io(Interest::READABLE, || recv_now(socket, buf))
        .await
}

fn recv_now(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<Received> {
    let mut control = nix::cmsg_space!(libc::in_pktinfo, libc::in6_pktinfo);
    let mut iov = [IoSliceMut::new(buf)];
    let message = recvmsg::<SockaddrStorage>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut control),
        MsgFlags::MSG_DONTWAIT,
    )
    .map_err(errno)?;
    let truncated = message.flags.contains(MsgFlags::MSG_TRUNC);
    let bytes = message.bytes;
    let source = message
        .address
        .as_ref()
        .and_then(socket_addr)
        .ok_or_else(|| io::Error::other("datagram without a source address"))?;
    let mut destination = None;
    let mut interface = 0;
    if let Ok(cmsgs) = message.cmsgs() {
        for cmsg in cmsgs {
            match cmsg {
                ControlMessageOwned::Ipv4PacketInfo(info) => {
                    destination = Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                        info.ipi_addr.s_addr,
                    ))));
                    interface = u32::try_from(info.ipi_ifindex).unwrap_or(0);
                }
                ControlMessageOwned::Ipv6PacketInfo(info) => {
                    destination = Some(IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr)));
                    interface = info.ipi6_ifindex;
                }
                _ => {}
            }
        }
    }
    let data = iov[0][..bytes.min(iov[0].len())].to_vec();
    Ok(Received {
        data,
        source,
        destination,
        interface,
        truncated,
    })
}

fn socket_addr(storage: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = storage.as_sockaddr_in() {
        return Some(SocketAddr::V4(SocketAddrV4::from(*v4)));
    }
    storage
        .as_sockaddr_in6()
        .map(|v6| SocketAddr::V6(SocketAddrV6::from(*v6)))
}

/// Sends to `destination` (typically `255.255.255.255`) out of interface
/// `index`, whatever the routing table says: a namespace without a default
/// route can still broadcast on each link.
pub(crate) async fn send_v4_via(
    socket: &UdpSocket,
    payload: &[u8],
    destination: SocketAddrV4,
    index: u32,
) -> io::Result<()> {
    let info = libc::in_pktinfo {
        ipi_ifindex: i32::try_from(index).map_err(|_| io::Error::other("interface index"))?,
        ipi_spec_dst: libc::in_addr { s_addr: 0 },
        ipi_addr: libc::in_addr { s_addr: 0 },
    };
    let to = SockaddrIn::from(destination);
    socket
        .async_io(Interest::WRITABLE, || {
            let cmsgs = [ControlMessage::Ipv4PacketInfo(&info)];
            sendmsg(
                socket.as_raw_fd(),
                &[IoSlice::new(payload)],
                &cmsgs,
                MsgFlags::MSG_DONTWAIT,
                Some(&to),
            )
            .map_err(errno)
        })
        .await
        .map(drop)
}

/// Sends to an IPv4 group out of the interface that has address `via`
/// (`IP_MULTICAST_IF`).
pub(crate) async fn send_multicast_v4(
    socket: &UdpSocket,
    payload: &[u8],
    group: SocketAddrV4,
    via: Ipv4Addr,
) -> io::Result<()> {
    SockRef::from(socket).set_multicast_if_v4(&via)?;
    socket.send_to(payload, group).await.map(drop)
}

/// Sends to an IPv6 group out of interface `index` (`IPV6_MULTICAST_IF`).
pub(crate) async fn send_multicast_v6(
    socket: &UdpSocket,
    payload: &[u8],
    group: Ipv6Addr,
    port: u16,
    index: u32,
) -> io::Result<()> {
    SockRef::from(socket).set_multicast_if_v6(index)?;
    socket
        .send_to(payload, SocketAddrV6::new(group, port, 0, index))
        .await
        .map(drop)
}
