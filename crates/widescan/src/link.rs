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
use std::net::Ipv6Addr;
use std::str::FromStr;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::prefix::TargetSet;
use crate::route;
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

impl LinkPath {
    /// Resolves the path for `targets`. `interface` and `source` must agree with
    /// the route when given (the source defaults to the route's preferred one);
    /// `gateway_mac` skips the neighbour lookup.
    pub fn resolve(
        targets: &TargetSet,
        interface: Option<&str>,
        source: Option<Ipv6Addr>,
        gateway_mac: Option<MacAddr>,
    ) -> Result<LinkPath> {
        let mut first: Option<(Ipv6Addr, route::RouteInfo)> = None;
        for prefix in targets.prefixes() {
            let dst = prefix.network();
            let r = route::route_get(dst)
                .map_err(|e| Error::NoLinkPath(format!("no route to {dst}: {e}")))?;
            let Some(gateway) = r.gateway else {
                return Err(Error::NoLinkPath(format!(
                    "{prefix} is on-link (no gateway): frames would need a neighbour \
                     lookup per target; use the kernel transport"
                )));
            };
            match &first {
                None => first = Some((dst, r)),
                Some((other, f)) if f.ifindex != r.ifindex || f.gateway != Some(gateway) => {
                    return Err(Error::NoLinkPath(format!(
                        "{other} and {dst} leave through different next hops; scan them \
                         separately or use the kernel transport"
                    )));
                }
                Some(_) => {}
            }
        }
        let Some((_, r)) = first else {
            return Err(Error::EmptyTargetSet("no prefixes".into()));
        };
        // Checked above: every route has a gateway.
        let gateway = r
            .gateway
            .ok_or_else(|| Error::NoLinkPath("route without gateway".into()))?;
        let (name, mac) = route::link(r.ifindex)
            .map_err(|e| Error::NoLinkPath(format!("interface {}: {e}", r.ifindex)))?;
        if let Some(want) = interface
            && want != name
        {
            return Err(Error::NoLinkPath(format!(
                "the targets route through {name}, not {want}"
            )));
        }
        let source_mac = match mac {
            Some(m) if m != [0; 6] => MacAddr(m),
            _ => {
                return Err(Error::NoLinkPath(format!("{name} has no Ethernet address")));
            }
        };
        let source = source.or(r.prefsrc).ok_or_else(|| {
            Error::NoLinkPath(format!(
                "the route through {name} names no source address; give one"
            ))
        })?;
        let gateway_mac = match gateway_mac {
            Some(m) => m,
            None => resolve_neighbour(r.ifindex, &name, gateway)?,
        };
        Ok(LinkPath {
            ifindex: r.ifindex,
            interface: name,
            source_mac,
            source,
            gateway,
            gateway_mac,
        })
    }
}

/// The gateway's MAC from the neighbour table, after one ping to make the kernel
/// resolve it if the table has no usable entry.
fn resolve_neighbour(ifindex: u32, name: &str, gateway: Ipv6Addr) -> Result<MacAddr> {
    let lookup = || {
        route::neighbour(ifindex, gateway)
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
    fn loopback_targets_are_refused_as_on_link() {
        let targets = TargetSet::builder()
            .prefix("::1/128".parse().expect("prefix"))
            .test_mode(true)
            .build()
            .expect("targets");
        match LinkPath::resolve(&targets, None, None, None) {
            Err(Error::NoLinkPath(why)) => assert!(why.contains("on-link"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}
