//! `[node]`: the embedded peer node's settings as written in the file, and
//! their validation into what `PeerNetworkBuilder` takes. Every rejected
//! value names its key.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use p2pnet::{
    DiscoveryConfig, IncomingPeerTrustPolicy, Limits, Placement,
    discovery::DEFAULT_DESIGNATED_PORTS,
};
use serde::{Deserialize, Serialize};

use crate::config::ConfigError;

/// `[node]`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawNode {
    /// Initial display name; the panel can change it (stored in the database).
    pub name: String,
    /// Run the embedded peer node.
    pub enabled: bool,
    /// Accept channels peers open (off: the node only dials out).
    pub accept_inbound: bool,
    /// Socket address peer channels are accepted on.
    pub listen: String,
    /// The node's identity key (created with mode 0600 on first start);
    /// empty means `<keys_dir>/node.key`.
    pub identity_file: String,
    /// Where received files land; empty means `<data_dir>/downloads`.
    pub download_dir: String,
    /// Largest file a peer may send, in bytes.
    pub max_file_size_bytes: u64,
    /// `[node.trust]`
    pub trust: RawTrust,
    /// `[node.discovery]`
    pub discovery: RawDiscovery,
    /// `[node.limits]`
    pub limits: RawLimits,
}

/// `[node.trust]`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTrust {
    /// Where peers awaiting approval appear: `queue`, `event` or
    /// `queue-and-event` (the panel lists the queue).
    pub placement: String,
    /// Approve every peer that passes the access list, without asking.
    pub auto_accept: bool,
    /// Approved peers may send text messages.
    pub default_exchange: bool,
    /// Approved peers may also send data, tasks, files and peer lists.
    pub enhanced_exchange: bool,
    /// A peer not approved within this many seconds is rejected.
    pub approval_timeout_secs: u64,
}

/// `[node.discovery]`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawDiscovery {
    /// Announce on the LAN and listen for other nodes.
    pub enabled: bool,
    /// Designated UDP ports (1–8).
    pub ports: Vec<u16>,
    /// Announce by IPv4 broadcast.
    pub broadcast: bool,
    /// Announce by IPv4 multicast (239.255.83.51).
    pub multicast_v4: bool,
    /// Announce by IPv6 link-scope multicast (ff12::8351).
    pub multicast_v6: bool,
    /// Hosts announced to by unicast (`host`, `host:port`, `[v6]:port`).
    pub static_hosts: Vec<String>,
    /// Dial the peers discovery hears (they still wait for approval).
    pub auto_connect: bool,
}

/// `[node.limits]`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLimits {
    /// Channels in any state.
    pub max_channels: usize,
    /// Inbound channels.
    pub max_inbound: usize,
    /// Peers waiting for approval.
    pub max_pending: usize,
    /// Handshakes and approval waits from one address (IPv6: one /64).
    pub max_pending_per_source: usize,
    /// Peers in KnownPeers.
    pub max_known_peers: usize,
}

impl Default for RawNode {
    fn default() -> Self {
        Self {
            name: "p2pnet-node".into(),
            enabled: true,
            accept_inbound: true,
            listen: "0.0.0.0:4000".into(),
            identity_file: String::new(),
            download_dir: String::new(),
            max_file_size_bytes: 4 << 30,
            trust: RawTrust::default(),
            discovery: RawDiscovery::default(),
            limits: RawLimits::default(),
        }
    }
}

impl Default for RawTrust {
    fn default() -> Self {
        Self {
            placement: "queue-and-event".into(),
            auto_accept: false,
            default_exchange: true,
            enhanced_exchange: false,
            approval_timeout_secs: 300,
        }
    }
}

impl Default for RawDiscovery {
    fn default() -> Self {
        Self {
            enabled: true,
            ports: DEFAULT_DESIGNATED_PORTS.to_vec(),
            broadcast: true,
            multicast_v4: true,
            multicast_v6: true,
            static_hosts: Vec::new(),
            auto_connect: true,
        }
    }
}

impl Default for RawLimits {
    fn default() -> Self {
        let limits = Limits::default();
        Self {
            max_channels: limits.max_channels,
            max_inbound: limits.max_inbound,
            max_pending: limits.max_pending,
            max_pending_per_source: limits.max_pending_per_source,
            max_known_peers: limits.max_known_peers,
        }
    }
}

/// The validated `[node]` settings.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Whether the node runs.
    pub enabled: bool,
    /// Whether it accepts inbound channels.
    pub accept_inbound: bool,
    /// Listen address.
    pub listen: SocketAddr,
    /// Identity key file.
    pub identity_file: PathBuf,
    /// Download directory.
    pub download_dir: PathBuf,
    /// Largest accepted file.
    pub max_file_size: u64,
    /// Trust policy (its access list is restored from the database).
    pub policy: IncomingPeerTrustPolicy,
    /// Approval timeout.
    pub approval_timeout: Duration,
    /// LAN discovery, when on.
    pub discovery: Option<DiscoveryConfig>,
    /// Connection limits.
    pub limits: Limits,
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

fn in_range(
    key: &'static str,
    value: usize,
    range: std::ops::RangeInclusive<usize>,
) -> Result<usize, ConfigError> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(invalid(
            key,
            format!("must be between {} and {}", range.start(), range.end()),
        ))
    }
}

impl RawNode {
    /// Validates into [`NodeConfig`]; paths default under `data_dir` and
    /// `keys_dir`.
    pub fn validate(&self, data_dir: &Path, keys_dir: &Path) -> Result<NodeConfig, ConfigError> {
        let listen = self.listen.trim().parse::<SocketAddr>().map_err(|_| {
            invalid(
                "node.listen",
                format!("`{}` is not an address:port", self.listen),
            )
        })?;
        let identity_file = match self.identity_file.trim() {
            "" => keys_dir.join("node.key"),
            path => PathBuf::from(path),
        };
        let download_dir = match self.download_dir.trim() {
            "" => data_dir.join("downloads"),
            path => PathBuf::from(path),
        };
        if self.max_file_size_bytes == 0 {
            return Err(invalid("node.max_file_size_bytes", "must be positive"));
        }
        let placement = match self.trust.placement.trim() {
            "queue" => Placement::Queue,
            "event" => Placement::Event,
            "queue-and-event" => Placement::QueueAndEvent,
            other => {
                return Err(invalid(
                    "node.trust.placement",
                    format!("`{other}` is not `queue`, `event` or `queue-and-event`"),
                ));
            }
        };
        if !(10..=86_400).contains(&self.trust.approval_timeout_secs) {
            return Err(invalid(
                "node.trust.approval_timeout_secs",
                "must be between 10 and 86400",
            ));
        }
        let policy = IncomingPeerTrustPolicy {
            placement,
            auto_accept: self.trust.auto_accept,
            allow_default_communication: self.trust.default_exchange,
            allow_enhanced_packet_exchange: self.trust.enhanced_exchange,
            ..IncomingPeerTrustPolicy::default()
        };
        let discovery = if self.discovery.enabled {
            let d = &self.discovery;
            if d.ports.is_empty() || d.ports.len() > p2pnet::discovery::MAX_DESIGNATED_PORTS {
                return Err(invalid(
                    "node.discovery.ports",
                    format!(
                        "must list 1 to {} ports",
                        p2pnet::discovery::MAX_DESIGNATED_PORTS
                    ),
                ));
            }
            if d.ports.contains(&0) {
                return Err(invalid(
                    "node.discovery.ports",
                    "port 0 is not a designated port",
                ));
            }
            let config = DiscoveryConfig::default()
                .designated_ports(d.ports.iter().copied())
                .broadcast(d.broadcast)
                .multicast_v4(
                    d.multicast_v4
                        .then_some(p2pnet::discovery::DEFAULT_MULTICAST_V4),
                )
                .multicast_v6(
                    d.multicast_v6
                        .then_some(p2pnet::discovery::DEFAULT_MULTICAST_V6),
                )
                .auto_connect(d.auto_connect)
                .static_hosts(&d.static_hosts)
                .map_err(|e| invalid("node.discovery.static_hosts", e.to_string()))?;
            config
                .validate()
                .map_err(|e| invalid("node.discovery", e.to_string()))?;
            Some(config)
        } else {
            None
        };
        let l = &self.limits;
        let max_channels = in_range("node.limits.max_channels", l.max_channels, 1..=100_000)?;
        let limits = Limits {
            max_channels,
            max_inbound: in_range("node.limits.max_inbound", l.max_inbound, 1..=max_channels)?,
            max_pending: in_range("node.limits.max_pending", l.max_pending, 1..=max_channels)?,
            max_pending_per_source: in_range(
                "node.limits.max_pending_per_source",
                l.max_pending_per_source,
                1..=max_channels,
            )?,
            max_known_peers: in_range(
                "node.limits.max_known_peers",
                l.max_known_peers,
                1..=1_000_000,
            )?,
            ..Limits::default()
        };
        Ok(NodeConfig {
            enabled: self.enabled,
            accept_inbound: self.accept_inbound,
            listen,
            identity_file,
            download_dir,
            max_file_size: self.max_file_size_bytes,
            policy,
            approval_timeout: Duration::from_secs(self.trust.approval_timeout_secs),
            discovery,
            limits,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validate(raw: RawNode) -> Result<NodeConfig, ConfigError> {
        raw.validate(Path::new("data"), Path::new("keys"))
    }

    #[test]
    fn defaults_are_valid() {
        let c = validate(RawNode::default()).expect("defaults");
        assert_eq!(c.listen, "0.0.0.0:4000".parse::<SocketAddr>().unwrap());
        assert_eq!(c.identity_file, Path::new("keys/node.key"));
        assert_eq!(c.download_dir, Path::new("data/downloads"));
        assert_eq!(c.policy.placement, Placement::QueueAndEvent);
        assert!(!c.policy.auto_accept);
        assert!(c.discovery.is_some());
    }

    #[test]
    fn bad_values_name_their_key() {
        type Change = Box<dyn Fn(&mut RawNode)>;
        let table: Vec<(Change, &str)> = vec![
            (Box::new(|r| r.listen = "nope".into()), "node.listen"),
            (
                Box::new(|r| r.trust.placement = "inbox".into()),
                "node.trust.placement",
            ),
            (
                Box::new(|r| r.trust.approval_timeout_secs = 1),
                "node.trust.approval_timeout_secs",
            ),
            (
                Box::new(|r| r.discovery.ports = vec![]),
                "node.discovery.ports",
            ),
            (
                Box::new(|r| r.discovery.ports = vec![0]),
                "node.discovery.ports",
            ),
            (
                Box::new(|r| r.discovery.static_hosts = vec!["bad host!".into()]),
                "node.discovery.static_hosts",
            ),
            (
                Box::new(|r| r.limits.max_channels = 0),
                "node.limits.max_channels",
            ),
            (
                Box::new(|r| r.limits.max_inbound = 5000),
                "node.limits.max_inbound",
            ),
            (
                Box::new(|r| r.max_file_size_bytes = 0),
                "node.max_file_size_bytes",
            ),
        ];
        for (change, key) in table {
            let mut raw = RawNode::default();
            change(&mut raw);
            let err = validate(raw).expect_err(key);
            assert!(err.to_string().contains(key), "{key}: {err}");
        }
    }
}
