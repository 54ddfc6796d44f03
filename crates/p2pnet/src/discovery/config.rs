//! `DiscoveryConfig`: which mechanisms, which ports and groups, which
//! static hosts, with documented defaults.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use p2pnet_proto::discovery::DiscoveryParams;

use crate::error::{Error, Result};

/// Default designated UDP ports: discovery listens on all of them and
/// broadcasts on one at a time (see [`DiscoveryConfig::designated_ports`]).
pub const DEFAULT_DESIGNATED_PORTS: [u16; 3] = [28351, 28352, 28353];
/// Default IPv4 group, in the IPv4 Local Scope (239.255/16, RFC 2365);
/// sent with TTL 1, so it never leaves the link.
pub const DEFAULT_MULTICAST_V4: Ipv4Addr = Ipv4Addr::new(239, 255, 83, 51);
/// Default IPv6 group: link-local scope, transient (`ff12::/16`), like
/// Syncthing's `ff12::8384`.
pub const DEFAULT_MULTICAST_V6: Ipv6Addr = Ipv6Addr::new(0xff12, 0, 0, 0, 0, 0, 0, 0x8351);
/// Most designated ports.
pub const MAX_DESIGNATED_PORTS: usize = 16;
/// Most static hosts.
pub const MAX_STATIC_HOSTS: usize = 64;

/// LAN and WAN discovery settings; give one to
/// [`PeerNetworkBuilder::discovery`](crate::PeerNetworkBuilder::discovery).
///
/// | setting | default |
/// |---|---|
/// | designated ports | [`DEFAULT_DESIGNATED_PORTS`] (UDP 28351–28353): listen on all, broadcast on one, rotated by `RotateBroadcastPort` |
/// | broadcast | on: `255.255.255.255` and every subnet broadcast, per interface |
/// | IPv4 multicast | on, group [`DEFAULT_MULTICAST_V4`], TTL 1 |
/// | IPv6 multicast | on, group [`DEFAULT_MULTICAST_V6`], hop limit 1 |
/// | static hosts | none (`host` or `host:port`; without a port, the designated port in use) |
/// | auto-connect | on: dial every heard peer the access list allows |
/// | schedule | [`DiscoveryParams::default`]: fast start (0, +250 ms, doubling), then 30 s; 60 s once settled (every heard peer has a channel or is in dial backoff, or auto-connect is off); ±20 % jitter; peers expire after 150 s |
/// | `RotateBroadcastPort` | every 30 s |
/// | `RescanInterfaces` | every 10 s (re-announces at once when addresses change) |
/// | concurrent discovery dials | 16 |
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct DiscoveryConfig {
    pub(crate) ports: Vec<u16>,
    pub(crate) broadcast: bool,
    pub(crate) multicast_v4: Option<Ipv4Addr>,
    pub(crate) multicast_v6: Option<Ipv6Addr>,
    pub(crate) static_hosts: Vec<StaticHost>,
    pub(crate) auto_connect: bool,
    pub(crate) params: DiscoveryParams,
    pub(crate) rotate_interval: Duration,
    pub(crate) rescan_interval: Duration,
    pub(crate) max_dials: usize,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        Self {
            ports: DEFAULT_DESIGNATED_PORTS.to_vec(),
            broadcast: true,
            multicast_v4: Some(DEFAULT_MULTICAST_V4),
            multicast_v6: Some(DEFAULT_MULTICAST_V6),
            static_hosts: Vec::new(),
            auto_connect: true,
            params: DiscoveryParams::default(),
            rotate_interval: Duration::from_secs(30),
            rescan_interval: Duration::from_secs(10),
            max_dials: 16,
        }
    }
}

impl DiscoveryConfig {
    /// The designated UDP ports (1 to [`MAX_DESIGNATED_PORTS`], non-zero).
    /// Every one is listened on; broadcasts and multicasts go to one of
    /// them at a time, and `RotateBroadcastPort` moves to the next. Nodes
    /// whose lists share a port find each other.
    pub fn designated_ports(mut self, ports: impl IntoIterator<Item = u16>) -> Self {
        self.ports = ports.into_iter().collect();
        self
    }

    /// IPv4 broadcast on or off. With every mechanism off and no static
    /// host, a node still listens on its designated ports and answers the
    /// unicast announces of nodes that list it.
    pub fn broadcast(mut self, on: bool) -> Self {
        self.broadcast = on;
        self
    }

    /// IPv4 multicast to `group`, or off with `None`.
    pub fn multicast_v4(mut self, group: Option<Ipv4Addr>) -> Self {
        self.multicast_v4 = group;
        self
    }

    /// IPv6 multicast to `group`, or off with `None`.
    pub fn multicast_v6(mut self, group: Option<Ipv6Addr>) -> Self {
        self.multicast_v6 = group;
        self
    }

    /// Hosts announced to by unicast, for networks broadcast cannot cross:
    /// `192.0.2.7`, `[2001:db8::7]:28351`, `peer.example.org`,
    /// `peer.example.org:28352`.
    ///
    /// # Errors
    /// A malformed entry, named in the error.
    pub fn static_hosts<S: AsRef<str>>(
        mut self,
        hosts: impl IntoIterator<Item = S>,
    ) -> Result<Self> {
        self.static_hosts = hosts
            .into_iter()
            .map(|host| StaticHost::parse(host.as_ref()))
            .collect::<Result<_>>()?;
        Ok(self)
    }

    /// Whether heard peers are dialled. Off: they are only recorded in
    /// KnownPeers, for the application to connect.
    pub fn auto_connect(mut self, on: bool) -> Self {
        self.auto_connect = on;
        self
    }

    /// Schedule, reply limits and the size of the heard-peer table.
    pub fn params(mut self, params: DiscoveryParams) -> Self {
        self.params = params;
        self
    }

    /// Interval of the `RotateBroadcastPort` routine.
    pub fn rotate_interval(mut self, interval: Duration) -> Self {
        self.rotate_interval = interval;
        self
    }

    /// Interval of the `RescanInterfaces` routine.
    pub fn rescan_interval(mut self, interval: Duration) -> Self {
        self.rescan_interval = interval;
        self
    }

    /// Discovery dials in flight at once.
    pub fn max_dials(mut self, dials: usize) -> Self {
        self.max_dials = dials;
        self
    }

    /// Checks the settings as [`PeerNetworkBuilder::start`](crate::PeerNetworkBuilder::start)
    /// will, so an application can report a bad value before starting.
    pub fn validate(&self) -> Result<()> {
        let invalid = |message: &str| Err(Error::InvalidConfig(format!("discovery: {message}")));
        if self.ports.is_empty() || self.ports.len() > MAX_DESIGNATED_PORTS {
            return invalid("designated_ports needs 1 to 16 ports");
        }
        if self.ports.contains(&0) {
            return invalid("designated_ports may not contain port 0");
        }
        let mut unique = self.ports.clone();
        unique.sort_unstable();
        unique.dedup();
        if unique.len() != self.ports.len() {
            return invalid("designated_ports has duplicates");
        }
        if self.multicast_v4.is_some_and(|group| !group.is_multicast()) {
            return invalid("multicast_v4 is not an IPv4 multicast group");
        }
        if self.multicast_v6.is_some_and(|group| !group.is_multicast()) {
            return invalid("multicast_v6 is not an IPv6 multicast group");
        }
        if self.static_hosts.len() > MAX_STATIC_HOSTS {
            return invalid("at most 64 static_hosts");
        }
        if self.rotate_interval.is_zero() || self.rescan_interval.is_zero() {
            return invalid("rotate_interval and rescan_interval must be positive");
        }
        if self.max_dials == 0 {
            return invalid("max_dials must be positive");
        }
        self.params
            .validate()
            .map_err(|message| Error::InvalidConfig(format!("discovery params: {message}")))
    }
}

/// One static host: an address or a name, with or without a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StaticHost {
    /// An address literal.
    Address(IpAddr, Option<u16>),
    /// A DNS name, resolved when announcing.
    Name(String, Option<u16>),
}

impl StaticHost {
    pub(crate) fn parse(spec: &str) -> Result<Self> {
        let invalid = |why: &str| {
            Err(Error::InvalidConfig(format!(
                "discovery: static host {spec:?}: {why}"
            )))
        };
        let spec = spec.trim();
        if spec.is_empty() || spec.len() > 255 {
            return invalid("empty or longer than 255 bytes");
        }
        if let Ok(addr) = spec.parse::<SocketAddr>() {
            if addr.port() == 0 {
                return invalid("port 0");
            }
            return Ok(Self::Address(addr.ip(), Some(addr.port())));
        }
        if let Ok(ip) = spec.trim_matches(['[', ']']).parse::<IpAddr>() {
            return Ok(Self::Address(ip, None));
        }
        let (name, port) = match spec.rsplit_once(':') {
            Some((name, port)) => match port.parse::<u16>() {
                Ok(0) | Err(_) => return invalid("the port must be 1 to 65535"),
                Ok(port) => (name, Some(port)),
            },
            None => (spec, None),
        };
        let label_ok = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if !name.trim_end_matches('.').split('.').all(label_ok) {
            return invalid("not an address or a host name");
        }
        Ok(Self::Name(name.to_owned(), port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_hosts_parse_addresses_names_and_ports() {
        let ok = [
            (
                "192.0.2.7",
                StaticHost::Address("192.0.2.7".parse().unwrap(), None),
            ),
            (
                "192.0.2.7:9",
                StaticHost::Address("192.0.2.7".parse().unwrap(), Some(9)),
            ),
            (
                "2001:db8::7",
                StaticHost::Address("2001:db8::7".parse().unwrap(), None),
            ),
            (
                "[2001:db8::7]",
                StaticHost::Address("2001:db8::7".parse().unwrap(), None),
            ),
            (
                "[2001:db8::7]:28351",
                StaticHost::Address("2001:db8::7".parse().unwrap(), Some(28351)),
            ),
            (
                "peer.example.org",
                StaticHost::Name("peer.example.org".into(), None),
            ),
            (
                "peer.example.org:28352",
                StaticHost::Name("peer.example.org".into(), Some(28352)),
            ),
        ];
        for (spec, expected) in ok {
            assert_eq!(StaticHost::parse(spec).unwrap(), expected, "{spec}");
        }
        for bad in [
            "",
            "host:0",
            "host:99999",
            "host:",
            "-bad.example",
            "a b",
            "x..y",
            "1.2.3.4:0",
            "[::1]:0",
        ] {
            let err = StaticHost::parse(bad).unwrap_err().to_string();
            assert!(err.contains("static host"), "{bad}: {err}");
        }
    }

    #[test]
    fn invalid_configs_name_the_setting() {
        let cases = [
            (
                DiscoveryConfig::default().designated_ports([]),
                "designated_ports",
            ),
            (
                DiscoveryConfig::default().designated_ports([1, 0]),
                "port 0",
            ),
            (
                DiscoveryConfig::default().designated_ports([5, 5]),
                "duplicates",
            ),
            (
                DiscoveryConfig::default().multicast_v4(Some(Ipv4Addr::new(10, 0, 0, 1))),
                "multicast_v4",
            ),
            (
                DiscoveryConfig::default().multicast_v6(Some(Ipv6Addr::LOCALHOST)),
                "multicast_v6",
            ),
            (DiscoveryConfig::default().max_dials(0), "max_dials"),
            (
                DiscoveryConfig::default().params(DiscoveryParams {
                    jitter_percent: 99,
                    ..DiscoveryParams::default()
                }),
                "jitter_percent",
            ),
        ];
        for (config, needle) in cases {
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(needle), "{err} lacks {needle}");
        }
        DiscoveryConfig::default().validate().unwrap();
    }
}
