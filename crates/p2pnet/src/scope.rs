//! Which addresses are globally reachable. Pure classification (std's
//! `is_global` is unstable): what an announce may advertise and what
//! counts as a LAN-only address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Whether `ip` is a globally routable unicast address: not loopback,
/// private, shared (CGNAT), link-local, documentation, benchmarking,
/// reserved, multicast, broadcast or unspecified; for IPv6, inside
/// 2000::/3 and outside its documentation and special-purpose ranges.
pub fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_global_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_global_v4(v4),
            None => is_global_v6(v6),
        },
    }
}

fn is_global_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

fn is_global_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    // Global unicast is 2000::/3; everything else (ULA, link-local,
    // multicast, loopback, unspecified) is not.
    if s[0] & 0xe000 != 0x2000 {
        return false;
    }
    let documentation = s[0] == 0x2001 && s[1] == 0x0db8 || s[0] == 0x3fff && s[1] < 0x1000;
    let special = s[0] == 0x2001 && s[1] < 0x0200; // 2001::/23 IETF protocol assignments
    let six_to_four = s[0] == 0x2002;
    !(documentation || special || six_to_four)
}

/// Maps an IPv4-mapped IPv6 address (from a dual-stack socket) to IPv4.
pub(crate) fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_addresses() {
        for global in [
            "8.8.8.8",
            "1.1.1.1",
            "2a00:1450::1",
            "2600::1",
            "::ffff:8.8.4.4",
        ] {
            assert!(is_global(global.parse().unwrap()), "{global}");
        }
        for local in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.1.1",
            "100.64.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "0.0.0.0",
            "240.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "2001:db8::1",
            "2001::1",
            "2002::1",
            "3fff::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_global(local.parse().unwrap()), "{local}");
        }
    }
}
