//! Local address loading: the interfaces discovery can use.
//!
//! Reads the OS interface list through `pnet_datalink` and keeps every
//! interface that is up and not loopback, with its addresses, broadcast
//! addresses, MAC and multicast capability. The discovery routine calls
//! [`local_interfaces`] again on every re-scan and re-announces when the
//! result changes ([`LocalInterface`] is `Eq` for that).

use std::net::{IpAddr, Ipv4Addr};

use crate::scope::is_global;

/// One usable interface.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LocalInterface {
    /// OS name (`eth0`).
    pub name: String,
    /// OS index: what multicast joins and `IPV6_MULTICAST_IF` take.
    pub index: u32,
    /// Hardware address, if it has one.
    pub mac: Option<[u8; 6]>,
    /// Its addresses.
    pub addresses: Vec<InterfaceAddress>,
    /// Whether it supports multicast.
    pub multicast: bool,
    /// Whether it supports broadcast (not point-to-point links or tunnels).
    pub broadcast: bool,
}

/// One address of an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InterfaceAddress {
    /// The address.
    pub ip: IpAddr,
    /// Its prefix length.
    pub prefix: u8,
    /// The subnet broadcast address (IPv4 with a prefix shorter than /31).
    pub broadcast: Option<Ipv4Addr>,
    /// Whether it is globally routable (see [`is_global`]).
    pub global: bool,
}

impl LocalInterface {
    /// Its IPv4 subnet broadcast addresses.
    pub fn broadcast_addresses(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.addresses.iter().filter_map(|a| a.broadcast)
    }

    /// Whether it has an IPv6 address (so an IPv6 multicast join can work).
    pub fn has_ipv6(&self) -> bool {
        self.addresses.iter().any(|a| a.ip.is_ipv6())
    }
}

/// Every interface that is up and not loopback, sorted by index.
pub fn local_interfaces() -> Vec<LocalInterface> {
    let mut found: Vec<_> = pnet_datalink::interfaces()
        .into_iter()
        .filter(|i| i.is_up() && !i.is_loopback())
        .map(|i| LocalInterface {
            multicast: i.is_multicast(),
            broadcast: i.is_broadcast(),
            mac: i.mac.map(|m| m.octets()).filter(|m| *m != [0; 6]),
            addresses: i
                .ips
                .iter()
                .map(|net| {
                    let broadcast = match net {
                        ipnetwork::IpNetwork::V4(v4) if v4.prefix() < 31 => Some(v4.broadcast()),
                        _ => None,
                    };
                    InterfaceAddress {
                        ip: net.ip(),
                        prefix: net.prefix(),
                        broadcast,
                        global: is_global(net.ip()),
                    }
                })
                .collect(),
            index: i.index,
            name: i.name,
        })
        .collect();
    found.sort_by_key(|i| i.index);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_only_interfaces_that_are_up_and_not_loopback() {
        let all = pnet_datalink::interfaces();
        let usable = local_interfaces();
        for interface in &usable {
            let raw = all.iter().find(|r| r.index == interface.index).unwrap();
            assert!(raw.is_up() && !raw.is_loopback(), "{}", interface.name);
            assert_eq!(raw.ips.len(), interface.addresses.len());
            for address in &interface.addresses {
                assert!(!address.ip.is_loopback());
                if let (IpAddr::V4(ip), Some(broadcast)) = (address.ip, address.broadcast) {
                    let mask = u32::MAX
                        .checked_shl(32 - u32::from(address.prefix))
                        .unwrap_or(0);
                    assert_eq!(u32::from(broadcast) & mask, u32::from(ip) & mask);
                    assert_eq!(u32::from(broadcast) | mask, u32::MAX);
                }
            }
        }
        assert!(
            all.iter()
                .filter(|r| r.is_loopback())
                .all(|lo| usable.iter().all(|u| u.index != lo.index))
        );
    }
}
