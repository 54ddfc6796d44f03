//! Raw ICMPv6 and `AF_PACKET` sockets, and the libc calls socket2 does not wrap:
//! `sendmmsg`, `ICMP6_FILTER`, `PACKET_QDISC_BYPASS` and `IPV6_PKTINFO` ancillary
//! data. All of the crate's socket `unsafe` lives here.
#![allow(unsafe_code)]

use std::io;
use std::mem;
use std::net::{Ipv6Addr, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::error::{Error, Result};
use crate::frame::MAX_FRAME_LEN;

/// `ICMP6_FILTER` from `<netinet/icmp6.h>` (libc does not export it).
const ICMP6_FILTER: libc::c_int = 1;
/// `PACKET_QDISC_BYPASS` from `<linux/if_packet.h>` (libc does not export it).
const PACKET_QDISC_BYPASS: libc::c_int = 20;

/// Options for opening a raw ICMPv6 socket.
#[derive(Clone, Debug, Default)]
pub(crate) struct SocketOptions {
    pub(crate) interface: Option<String>,
    pub(crate) source: Option<Ipv6Addr>,
    pub(crate) hop_limit: Option<u8>,
    pub(crate) read_timeout: Option<Duration>,
    pub(crate) write_timeout: Option<Duration>,
    pub(crate) recv_buffer: Option<usize>,
    pub(crate) send_buffer: Option<usize>,
    /// ICMPv6 types to receive; empty means receive nothing (a send-only socket).
    pub(crate) pass_types: Vec<u8>,
    pub(crate) pktinfo: bool,
}

/// Opens a raw ICMPv6 socket; a missing `CAP_NET_RAW` is a distinct error.
pub(crate) fn open_icmpv6(opts: &SocketOptions) -> Result<Socket> {
    let sock = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6)).map_err(|e| match e
        .raw_os_error()
    {
        Some(libc::EPERM) | Some(libc::EACCES) => Error::RawSocketPermission(e),
        _ => Error::io("opening a raw ICMPv6 socket", e),
    })?;
    set_icmp6_filter(&sock, &opts.pass_types).map_err(|e| Error::io("setting ICMP6_FILTER", e))?;
    if let Some(ifname) = &opts.interface {
        sock.bind_device(Some(ifname.as_bytes()))
            .map_err(|e| Error::io("binding to the interface", e))?;
    }
    if let Some(src) = opts.source {
        sock.bind(&SockAddr::from(SocketAddrV6::new(src, 0, 0, 0)))
            .map_err(|e| Error::io("binding the source address", e))?;
    }
    if let Some(h) = opts.hop_limit {
        sock.set_unicast_hops_v6(u32::from(h))
            .map_err(|e| Error::io("setting the hop limit", e))?;
    }
    sock.set_read_timeout(opts.read_timeout)
        .map_err(|e| Error::io("setting the receive timeout", e))?;
    sock.set_write_timeout(opts.write_timeout)
        .map_err(|e| Error::io("setting the send timeout", e))?;
    // Buffer sizes are hints: the kernel clamps them to its sysctl limits.
    if let Some(n) = opts.recv_buffer {
        let _ = sock.set_recv_buffer_size(n);
    }
    if let Some(n) = opts.send_buffer {
        let _ = sock.set_send_buffer_size(n);
    }
    if opts.pktinfo {
        setsockopt_int(&sock, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1)
            .map_err(|e| Error::io("enabling IPV6_RECVPKTINFO", e))?;
    }
    Ok(sock)
}

/// A send-only `AF_PACKET` socket for whole Ethernet frames, bound to interface
/// `ifindex` so that messages need no address. Protocol 0 (in the socket and the
/// binding) means the kernel hands it no received packets; the kernel takes each
/// frame's protocol from its Ethernet header. Frames bypass the queueing
/// discipline (where the kernel allows it) as they are already rate-limited here.
pub(crate) fn open_packet(ifindex: u32, send_buffer: usize) -> Result<Socket> {
    let sock =
        Socket::new(Domain::PACKET, Type::RAW, None).map_err(|e| match e.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => Error::RawSocketPermission(e),
            _ => Error::io("opening an AF_PACKET socket", e),
        })?;
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut sa: libc::sockaddr_ll = unsafe { mem::zeroed() };
    sa.sll_family = libc::AF_PACKET as libc::c_ushort;
    sa.sll_ifindex = ifindex as libc::c_int;
    // SAFETY: `sa` is a live sockaddr_ll and the length passed is its size.
    let rc = unsafe {
        libc::bind(
            sock.as_raw_fd(),
            (&raw const sa).cast(),
            mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(Error::io(
            "binding the AF_PACKET socket to its interface",
            io::Error::last_os_error(),
        ));
    }
    if let Err(e) = setsockopt_int(&sock, libc::SOL_PACKET, PACKET_QDISC_BYPASS, 1) {
        tracing::debug!(error = %e, "PACKET_QDISC_BYPASS refused; frames go through the qdisc");
    }
    let _ = sock.set_send_buffer_size(send_buffer);
    sock.set_write_timeout(Some(Duration::from_millis(100)))
        .map_err(|e| Error::io("setting the send timeout", e))?;
    Ok(sock)
}

fn setsockopt_int(
    sock: &Socket,
    level: libc::c_int,
    name: libc::c_int,
    v: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `v` is a live c_int and the length passed is its size.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            name,
            (&raw const v).cast(),
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// On Linux a *set* bit in `icmp6_filter` blocks that type.
fn set_icmp6_filter(sock: &Socket, pass: &[u8]) -> io::Result<()> {
    let mut filter = [u32::MAX; 8];
    for &t in pass {
        filter[usize::from(t >> 5)] &= !(1u32 << (t & 31));
    }
    // SAFETY: `filter` is a live 32-byte array matching `struct icmp6_filter`.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_ICMPV6,
            ICMP6_FILTER,
            filter.as_ptr().cast(),
            mem::size_of_val(&filter) as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn sockaddr(addr: &[u8; 16]) -> libc::sockaddr_in6 {
    // SAFETY: sockaddr_in6 is plain old data; all-zero is a valid value.
    let mut sa: libc::sockaddr_in6 = unsafe { mem::zeroed() };
    sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
    sa.sin6_addr.s6_addr = *addr;
    sa
}

/// A batch of messages for one `sendmmsg` call, with storage allocated once:
/// ICMPv6 messages each addressed to its target (raw socket), or whole frames
/// that carry their addresses themselves (`AF_PACKET`, bound to its interface).
pub(crate) struct SendBatch {
    bufs: Vec<[u8; MAX_FRAME_LEN]>,
    lens: Vec<usize>,
    addrs: Vec<libc::sockaddr_in6>,
    /// Frames: messages go without an address.
    frames: bool,
    len: usize,
    /// Scratch for `sendmmsg`, rebuilt on every call.
    iov: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
}

// SAFETY: the raw pointers inside `iov` and `hdrs` are scratch: they are rewritten
// from `bufs`/`addrs` immediately before each `sendmmsg` and never read otherwise,
// so moving the batch to another thread cannot leave a dangling use.
unsafe impl Send for SendBatch {}

impl SendBatch {
    /// A batch of ICMPv6 messages for a raw socket.
    pub(crate) fn new(capacity: usize) -> Self {
        Self::with(capacity, false)
    }

    /// A batch of Ethernet frames for a bound `AF_PACKET` socket.
    pub(crate) fn frames(capacity: usize) -> Self {
        Self::with(capacity, true)
    }

    fn with(capacity: usize, frames: bool) -> Self {
        let capacity = capacity.max(1);
        SendBatch {
            bufs: vec![[0u8; MAX_FRAME_LEN]; capacity],
            lens: vec![0; capacity],
            addrs: vec![sockaddr(&[0; 16]); capacity],
            frames,
            len: 0,
            iov: Vec::with_capacity(capacity),
            hdrs: Vec::with_capacity(capacity),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_full(&self) -> bool {
        self.len == self.bufs.len()
    }

    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    /// Adds a message for `dst`; `write` fills the buffer and returns the length.
    /// Returns false when the batch is full.
    pub(crate) fn push(&mut self, dst: &[u8; 16], write: impl FnOnce(&mut [u8]) -> usize) -> bool {
        if self.is_full() {
            return false;
        }
        let i = self.len;
        self.lens[i] = write(&mut self.bufs[i]);
        self.addrs[i] = sockaddr(dst);
        self.len += 1;
        true
    }

    /// The destination of message `i`.
    pub(crate) fn dst(&self, i: usize) -> Ipv6Addr {
        Ipv6Addr::from(self.addrs[i].sin6_addr.s6_addr)
    }

    /// Sends messages `from..from + count` with one `sendmmsg`; returns how many the
    /// kernel accepted (at least one) or the error of the first message.
    pub(crate) fn send(&mut self, sock: &Socket, from: usize, count: usize) -> io::Result<usize> {
        let end = (from + count).min(self.len);
        if from >= end {
            return Ok(0);
        }
        let n = end - from;
        // Capacity equals the batch capacity, so these pushes never reallocate and
        // the pointers taken below stay valid until the call returns.
        self.iov.clear();
        for i in from..end {
            self.iov.push(libc::iovec {
                iov_base: self.bufs[i].as_mut_ptr().cast(),
                iov_len: self.lens[i],
            });
        }
        self.hdrs.clear();
        for (k, i) in (from..end).enumerate() {
            // SAFETY: msghdr is plain old data; all-zero is a valid value.
            let mut h: libc::msghdr = unsafe { mem::zeroed() };
            if !self.frames {
                h.msg_name = (&raw mut self.addrs[i]).cast();
                h.msg_namelen = mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
            }
            h.msg_iov = &raw mut self.iov[k];
            h.msg_iovlen = 1;
            self.hdrs.push(libc::mmsghdr {
                msg_hdr: h,
                msg_len: 0,
            });
        }
        // SAFETY: every pointer in `hdrs` points into `self.bufs`, `self.addrs` or
        // `self.iov`, which are not touched again before the call returns, and the
        // lengths match the pointed-to storage.
        let rc = unsafe {
            libc::sendmmsg(
                sock.as_raw_fd(),
                self.hdrs.as_mut_ptr(),
                n as libc::c_uint,
                0,
            )
        };
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(rc as usize)
        }
    }
}

/// One received message's addresses.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RecvMeta {
    pub(crate) len: usize,
    pub(crate) src: Ipv6Addr,
    /// The local address it was sent to, and the interface, when the kernel says.
    pub(crate) dst: Option<(Ipv6Addr, u32)>,
}

/// `recvmsg` with `IPV6_PKTINFO`; `Ok(None)` on timeout.
pub(crate) fn recv_with_pktinfo(sock: &Socket, buf: &mut [u8]) -> io::Result<Option<RecvMeta>> {
    // SAFETY (whole function): every pointer handed to recvmsg refers to live local
    // storage of the stated length; CMSG_* walk only the control buffer the kernel
    // filled, bounded by msg_controllen.
    unsafe {
        let mut src: libc::sockaddr_in6 = mem::zeroed();
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut control = [0u64; 16]; // 128 bytes, 8-aligned, fits in6_pktinfo easily
        let mut msg: libc::msghdr = mem::zeroed();
        msg.msg_name = (&raw mut src).cast();
        msg.msg_namelen = mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
        msg.msg_iov = &raw mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = mem::size_of_val(&control);
        let rc = libc::recvmsg(sock.as_raw_fd(), &raw mut msg, 0);
        if rc < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock
                | io::ErrorKind::TimedOut
                | io::ErrorKind::Interrupted => Ok(None),
                _ => Err(e),
            };
        }
        let mut dst = None;
        let mut cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::IPPROTO_IPV6 && (*cmsg).cmsg_type == libc::IPV6_PKTINFO {
                let info: libc::in6_pktinfo =
                    std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                dst = Some((Ipv6Addr::from(info.ipi6_addr.s6_addr), info.ipi6_ifindex));
            }
            cmsg = libc::CMSG_NXTHDR(&raw const msg, cmsg);
        }
        Ok(Some(RecvMeta {
            len: (rc as usize).min(buf.len()),
            src: Ipv6Addr::from(src.sin6_addr.s6_addr),
            dst,
        }))
    }
}

/// `sendmsg` to `dst`, from the local address and interface in `from` when given
/// (so an answer leaves from the address the probe was sent to).
pub(crate) fn send_from(
    sock: &Socket,
    msg_bytes: &[u8],
    dst: Ipv6Addr,
    from: Option<(Ipv6Addr, u32)>,
) -> io::Result<()> {
    // SAFETY (whole function): as in `recv_with_pktinfo`; the control buffer is
    // large and aligned enough for one in6_pktinfo cmsg.
    unsafe {
        let mut sa = sockaddr(&dst.octets());
        let mut iov = libc::iovec {
            iov_base: msg_bytes.as_ptr().cast_mut().cast(),
            iov_len: msg_bytes.len(),
        };
        let mut control = [0u64; 8];
        let mut msg: libc::msghdr = mem::zeroed();
        msg.msg_name = (&raw mut sa).cast();
        msg.msg_namelen = mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
        msg.msg_iov = &raw mut iov;
        msg.msg_iovlen = 1;
        if let Some((src, ifindex)) = from {
            let space = libc::CMSG_SPACE(mem::size_of::<libc::in6_pktinfo>() as u32) as usize;
            debug_assert!(space <= mem::size_of_val(&control));
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = space;
            let cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
            (*cmsg).cmsg_level = libc::IPPROTO_IPV6;
            (*cmsg).cmsg_type = libc::IPV6_PKTINFO;
            (*cmsg).cmsg_len = libc::CMSG_LEN(mem::size_of::<libc::in6_pktinfo>() as u32) as usize;
            let info = libc::in6_pktinfo {
                ipi6_addr: libc::in6_addr {
                    s6_addr: src.octets(),
                },
                ipi6_ifindex: ifindex,
            };
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast(), info);
        }
        let rc = libc::sendmsg(sock.as_raw_fd(), &raw const msg, 0);
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}
