//! The packet transport's way out: the Ethernet interface, source address and
//! next-hop MAC that the kernel's own routing names for the targets.
//!
//! Resolution asks the kernel (see `route.rs`) how it routes the first address
//! of every target prefix. All of them must leave through one interface to one
//! gateway: frames are addressed to that gateway's MAC, as ZMap does. On-link
//! targets (no gateway) would need a neighbour lookup per target, which is the
//! kernel transport's job, so they are refused with a pointer to it. A gateway
//! missing from the neighbour table is pinged once through a raw socket, which
//! makes the kernel resolve it, and looked up again.

use std::fmt;
use std::net::{Ipv6Addr, SocketAddrV6, UdpSocket};
use std::str::FromStr;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use netlink_packet_route::route::RouteType;

use crate::prefix::{Prefix, TargetSet};
use crate::route::Rtnl;
use crate::sys::{self, SocketOptions};

/// How long to wait for the kernel to resolve the gateway's MAC.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);
const RESOLVE_POLL: Duration = Duration::from_millis(50);

/// An Ethernet (EUI-48) address.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl FromStr for MacAddr {
    type Err = Error;

    /// Parses `02:00:5e:10:00:01` (or with `-` between the bytes).
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::InvalidConfig(format!(
                "MAC address {s:?}: expected six hex bytes like 02:00:5e:10:00:01"
            ))
        };
        let mut out = [0u8; 6];
        let mut parts = s.trim().split([':', '-']);
        for b in &mut out {
            let part = parts.next().ok_or_else(bad)?;
            if part.is_empty() || part.len() > 2 {
                return Err(bad());
            }
            *b = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(MacAddr(out))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Where the packet transport's frames go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkPath {
    /// Output interface index.
    pub ifindex: u32,
    /// Its name.
    pub interface: String,
    /// Its MAC: the frames' source.
    pub source_mac: MacAddr,
    /// The probes' source address.
    pub source: Ipv6Addr,
    /// The next hop.
    pub gateway: Ipv6Addr,
    /// The next hop's MAC: the frames' destination.
    pub gateway_mac: MacAddr,
}

impl MacAddr {
    /// Whether this can be a frame's destination host: not all zeros, and not a
    /// group (multicast or broadcast) address.
    pub fn is_unicast(&self) -> bool {
        self.0 != [0; 6] && self.0[0] & 1 == 0
    }
}

impl LinkPath {
    /// Resolves the path for `targets`. `interface` must match the route's when
    /// given; `source` must be an address of this host, and is used in the route
    /// lookups (the route's preferred source otherwise); `gateway_mac` skips the
    /// neighbour lookup.
    ///
    /// Refused, with the reason: a prefix the kernel does not route by unicast
    /// through a gateway (on-link, local, blackhole, unreachable), prefixes that
    /// leave through different next hops, and prefixes that hold a more specific
    /// route the frames would bypass (a blackhole, another gateway, an on-link
    /// subnet).
    pub fn resolve(
        targets: &TargetSet,
        interface: Option<&str>,
        source: Option<Ipv6Addr>,
        gateway_mac: Option<MacAddr>,
    ) -> Result<LinkPath> {
        if let Some(src) = source {
            // Frames carry whatever source they are given; refuse one this host
            // does not own, as the kernel transport's bind would.
            UdpSocket::bind(SocketAddrV6::new(src, 0, 0, 0)).map_err(|e| {
                Error::NoLinkPath(format!("source {src} is not an address of this host: {e}"))
            })?;
        }
        let mut nl = Rtnl::open().map_err(|e| Error::io("opening a netlink socket", e))?;
        let mut first: Option<(Ipv6Addr, u32, Ipv6Addr, Option<Ipv6Addr>)> = None;
        for prefix in targets.prefixes() {
            let dst = prefix.network();
            let r = nl
                .route_get(dst, source)
                .map_err(|e| Error::NoLinkPath(format!("no route to {dst}: {e}")))?;
            let (Some(ifindex), Some(gateway)) = (r.ifindex, r.gateway) else {
                return Err(Error::NoLinkPath(match r.kind {
                    RouteType::Local => format!("{prefix} holds an address of this host"),
                    RouteType::Unicast => format!(
                        "{prefix} is on-link (no gateway): frames would need a neighbour \
                         lookup per target; use the kernel transport"
                    ),
                    other => format!("the kernel's route to {dst} is {other:?}, not a gateway"),
                }));
            };
            if r.kind != RouteType::Unicast {
                return Err(Error::NoLinkPath(format!(
                    "the kernel's route to {dst} is {:?}, not unicast",
                    r.kind
                )));
            }
            match first {
                None => first = Some((dst, ifindex, gateway, r.prefsrc)),
                Some((other, i, g, _)) if i != ifindex || g != gateway => {
                    return Err(Error::NoLinkPath(format!(
                        "{other} and {dst} leave through different next hops; scan them \
                         separately or use the kernel transport"
                    )));
                }
                Some(_) => {}
            }
        }
        let Some((_, ifindex, gateway, prefsrc)) = first else {
            return Err(Error::EmptyTargetSet("no prefixes".into()));
        };
        check_inner_routes(&mut nl, targets, ifindex, gateway)?;
        let link = nl
            .link(ifindex)
            .map_err(|e| Error::NoLinkPath(format!("interface {ifindex}: {e}")))?;
        let name = link.name;
        if let Some(want) = interface
            && want != name
        {
            return Err(Error::NoLinkPath(format!(
                "the targets route through {name}, not {want}"
            )));
        }
        let source_mac = match link.address.map(MacAddr) {
            Some(m) if link.ethernet && m.is_unicast() => m,
            _ => {
                return Err(Error::NoLinkPath(format!(
                    "{name} is not an Ethernet interface"
                )));
            }
        };
        let source = source.or(prefsrc).ok_or_else(|| {
            Error::NoLinkPath(format!(
                "the route through {name} names no source address; give one"
            ))
        })?;
        let gateway_mac = match gateway_mac {
            Some(m) => m,
            None => resolve_neighbour(&mut nl, ifindex, &name, gateway)?,
        };
        if !gateway_mac.is_unicast() {
            return Err(Error::NoLinkPath(format!(
                "gateway MAC {gateway_mac} is not a unicast Ethernet address"
            )));
        }
        Ok(LinkPath {
            ifindex,
            interface: name,
            source_mac,
            source,
            gateway,
            gateway_mac,
        })
    }
}

/// Refuses when a route more specific than a target prefix lies inside it and
/// does not lead to the same gateway: frames to the gateway would bypass it (an
/// operator's blackhole, say), where the kernel transport would honour it. All
/// tables count, so policy routing errs on the side of refusing.
fn check_inner_routes(
    nl: &mut Rtnl,
    targets: &TargetSet,
    ifindex: u32,
    gateway: Ipv6Addr,
) -> Result<()> {
    let routes = nl
        .routes()
        .map_err(|e| Error::NoLinkPath(format!("reading the routing tables: {e}")))?;
    for r in routes {
        let Some((dst, len)) = r.destination else {
            continue;
        };
        let Ok(inner) = Prefix::new(dst, len) else {
            continue;
        };
        // Target prefixes are disjoint: the one holding the route's first
        // address, if shorter, is the only one that can contain the route.
        let Some(outer) = targets
            .prefix_of(inner.network())
            .filter(|p| p.len() < inner.len())
        else {
            continue;
        };
        let same = r.kind == RouteType::Unicast
            && r.ifindex == Some(ifindex)
            && r.gateway == Some(gateway);
        if !same {
            return Err(Error::NoLinkPath(format!(
                "{outer} contains {inner}, which table {} routes otherwise ({:?}{}); \
                 frames to the gateway would bypass that route: exclude it, scan it \
                 separately or use the kernel transport",
                r.table,
                r.kind,
                r.gateway.map(|g| format!(" via {g}")).unwrap_or_default()
            )));
        }
    }
    Ok(())
}

/// The gateway's MAC from the neighbour table, after one ping to make the kernel
/// resolve it if the table has no usable entry. The ping goes to the gateway, not
/// to a target: it is the one packet the packet transport sends outside the
/// target set, and what the kernel would send before its first probe anyway.
fn resolve_neighbour(
    nl: &mut Rtnl,
    ifindex: u32,
    name: &str,
    gateway: Ipv6Addr,
) -> Result<MacAddr> {
    let mut lookup = || {
        nl.neighbour(ifindex, gateway)
            .map_err(|e| Error::NoLinkPath(format!("neighbour table: {e}")))
    };
    if let Some(m) = lookup()? {
        return Ok(MacAddr(m));
    }
    let sock = sys::open_icmpv6(&SocketOptions {
        interface: Some(name.to_string()),
        ..SocketOptions::default()
    })?;
    // An echo request with no data; the kernel fills in the checksum.
    let echo = [128u8, 0, 0, 0, 0x77, 0x73, 0, 1];
    sys::send_from(&sock, &echo, gateway, None)
        .map_err(|e| Error::io("pinging the gateway to resolve its MAC", e))?;
    let until = Instant::now() + RESOLVE_TIMEOUT;
    while Instant::now() < until {
        std::thread::sleep(RESOLVE_POLL);
        if let Some(m) = lookup()? {
            return Ok(MacAddr(m));
        }
    }
    Err(Error::NoLinkPath(format!(
        "the MAC of gateway {gateway} on {name} is unknown (no neighbour entry after \
         {RESOLVE_TIMEOUT:?}); give it explicitly"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_addresses_parse_and_print() {
        let m: MacAddr = "02:00:5E:10:00:0a".parse().expect("mac");
        assert_eq!(m.0, [2, 0, 0x5e, 0x10, 0, 10]);
        assert_eq!(m.to_string(), "02:00:5e:10:00:0a");
        assert_eq!("02-00-5e-10-00-0a".parse::<MacAddr>().expect("mac"), m);
        for bad in [
            "",
            "02:00:5e:10:00",
            "02:00:5e:10:00:0a:01",
            "02:00:5e:10:00:0g",
            "002:00:5e:10:00:0a",
            "02::5e:10:00:0a",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn own_addresses_are_refused() {
        let targets = TargetSet::builder()
            .prefix("::1/128".parse().expect("prefix"))
            .test_mode(true)
            .build()
            .expect("targets");
        match LinkPath::resolve(&targets, None, None, None) {
            Err(Error::NoLinkPath(why)) => assert!(why.contains("address of this host"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_source_this_host_does_not_own_is_refused_before_any_lookup() {
        let targets = TargetSet::builder()
            .prefix("2a00:1450::/64".parse().expect("prefix"))
            .build()
            .expect("targets");
        let foreign = "2001:db8::99".parse().ok();
        match LinkPath::resolve(&targets, None, foreign, None) {
            Err(Error::NoLinkPath(why)) => {
                assert!(why.contains("not an address of this host"), "{why}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn group_and_zero_macs_are_not_unicast() {
        assert!(MacAddr([2, 0, 0x5e, 0, 0x53, 1]).is_unicast());
        assert!(!MacAddr([0; 6]).is_unicast());
        assert!(!MacAddr([0xff; 6]).is_unicast());
        assert!(!MacAddr([0x33, 0x33, 0, 0, 0, 1]).is_unicast());
    }
}
