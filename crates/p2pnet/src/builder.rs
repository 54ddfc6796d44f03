//! `PeerNetworkBuilder`: every setting, with documented defaults, and the
//! wiring that starts a network from them (the listener, the owners of the
//! tables, discovery, the accept loop and the default routines).

use std::net::{IpAddr, Ipv6Addr};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use p2pnet_proto::{ChannelConfig, IncomingPeerTrustPolicy, Keypair};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::accept;
use crate::access::Access;
use crate::approvals::{Approvals, PendingPeer};
use crate::channels::Channels;
use crate::clock::Clock;
use crate::config::{Limits, NetworkConfig};
use crate::discovery::DiscoveryConfig;
use crate::error::{Error, Result};
use crate::event_bus::{EventBus, QueueBounds};
use crate::handler::PacketHandlers;
use crate::hooks::{ApplicationHooks, ApprovalHook, Verdict};
use crate::identity::IdentitySource;
use crate::network::PeerNetwork;
use crate::node::Node;
use crate::partial_files::PartialFiles;
use crate::peers::Peers;
use crate::persistent::Persistent;
use crate::routines::{self, RoutineTable};
use crate::transfers::Transfers;

/// Builds a [`PeerNetwork`]. Every setting has a default:
///
/// | setting | default |
/// |---|---|
/// | identity | ephemeral (a new key per run) |
/// | listen address | `::` (dual stack), port 0 (any free port) |
/// | accept inbound | yes |
/// | limits | [`Limits::default`] |
/// | trust policy | [`IncomingPeerTrustPolicy::default`]: queue nothing, raise an event, no auto-accept, default communication only |
/// | channel | [`ChannelConfig::default`] (keepalive 15 s, idle timeout 45 s, 1 MiB frames) |
/// | connect timeout | 10 s |
/// | approval timeout | 5 min, then the pending peer is rejected |
/// | idle channel timeout | none (keepalive keeps idle channels open) |
/// | reconnect backoff | 250 ms doubling to 60 s, full jitter |
/// | download directory | none: file offers are refused |
/// | max file size | 4 GiB |
/// | default routines | on: `DiscernPeerChannels` every 10 s (and the discovery routines when discovery is on) |
/// | discovery | off; see [`DiscoveryConfig`] |
#[must_use]
pub struct PeerNetworkBuilder {
    identity: IdentitySource,
    listen_ip: IpAddr,
    ports: RangeInclusive<u16>,
    accept_inbound: bool,
    limits: Limits,
    policy: IncomingPeerTrustPolicy,
    channel: ChannelConfig,
    connect_timeout: Duration,
    approval_timeout: Duration,
    idle_channel_timeout: Option<Duration>,
    reconnect: (Duration, Duration),
    download_dir: Option<PathBuf>,
    max_file_size: u64,
    default_routines: bool,
    discern_interval: Duration,
    discovery: Option<DiscoveryConfig>,
    handlers: PacketHandlers,
    approval_hook: Option<ApprovalHook>,
}

impl Default for PeerNetworkBuilder {
    fn default() -> Self {
        Self {
            identity: IdentitySource::Ephemeral,
            listen_ip: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            ports: 0..=0,
            accept_inbound: true,
            limits: Limits::default(),
            policy: IncomingPeerTrustPolicy::default(),
            channel: {
                let mut channel = ChannelConfig::default();
                channel.agent = concat!("p2pnet/", env!("CARGO_PKG_VERSION")).into();
                channel
            },
            connect_timeout: Duration::from_secs(10),
            approval_timeout: Duration::from_secs(300),
            idle_channel_timeout: None,
            reconnect: (Duration::from_millis(250), Duration::from_secs(60)),
            download_dir: None,
            max_file_size: 4 << 30,
            default_routines: true,
            discern_interval: Duration::from_secs(10),
            discovery: None,
            handlers: PacketHandlers::default(),
            approval_hook: None,
        }
    }
}

impl std::fmt::Debug for PeerNetworkBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerNetworkBuilder")
            .field("listen_ip", &self.listen_ip)
            .field("ports", &self.ports)
            .field("accept_inbound", &self.accept_inbound)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl PeerNetworkBuilder {
    /// Uses this keypair as the long-term identity.
    pub fn keypair(mut self, keypair: Keypair) -> Self {
        self.identity = IdentitySource::Keypair(keypair);
        self
    }

    /// Loads the identity from `path`, creating it (mode 0600) on first use.
    pub fn identity_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.identity = IdentitySource::File(path.into());
        self
    }

    /// The address to listen on. Default `::` (IPv4 too on dual-stack
    /// hosts); `127.0.0.1` for loopback only.
    pub fn listen_ip(mut self, ip: IpAddr) -> Self {
        self.listen_ip = ip;
        self
    }

    /// Listens on exactly this port (0: any free port).
    pub fn port(mut self, port: u16) -> Self {
        self.ports = port..=port;
        self
    }

    /// Listens on the first free port of this range.
    pub fn port_range(mut self, ports: RangeInclusive<u16>) -> Self {
        self.ports = ports;
        self
    }

    /// Whether to accept inbound connections at all. Default yes.
    pub fn accept_inbound(mut self, accept: bool) -> Self {
        self.accept_inbound = accept;
        self
    }

    /// Connection and buffer limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The inbound trust policy, with its access list.
    pub fn trust_policy(mut self, policy: IncomingPeerTrustPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Channel parameters (network name, frame size, timeouts, buffers).
    /// The listening port field is filled in by the network.
    pub fn channel_config(mut self, config: ChannelConfig) -> Self {
        self.channel = config;
        self
    }

    /// Time to establish TCP for an outbound connection.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long an inbound peer may wait for approval before it is
    /// rejected.
    pub fn approval_timeout(mut self, timeout: Duration) -> Self {
        self.approval_timeout = timeout;
        self
    }

    /// Closes channels that carried no application packet for this long
    /// (`DiscernPeerChannels`). Default none.
    pub fn idle_channel_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_channel_timeout = timeout;
        self
    }

    /// Reconnect backoff for persistent peers: first delay ceiling and
    /// maximum.
    pub fn reconnect_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.reconnect = (min, max);
        self
    }

    /// Where received files go (created if absent). Without one, file offers
    /// are refused.
    pub fn download_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.download_dir = Some(dir.into());
        self
    }

    /// The largest file accepted. Default 4 GiB.
    pub fn max_file_size(mut self, bytes: u64) -> Self {
        self.max_file_size = bytes;
        self
    }

    /// Whether to start the default routines. Default yes.
    pub fn default_routines(mut self, start: bool) -> Self {
        self.default_routines = start;
        self
    }

    /// Interval of `DiscernPeerChannels`. Default 10 s.
    pub fn discern_interval(mut self, interval: Duration) -> Self {
        self.discern_interval = interval;
        self
    }

    /// Turns on LAN/WAN discovery (broadcast, multicast, static hosts on
    /// designated ports); see [`DiscoveryConfig`] for its defaults. Off by
    /// default.
    pub fn discovery(mut self, config: DiscoveryConfig) -> Self {
        self.discovery = Some(config);
        self
    }

    /// The packet handlers.
    pub fn handlers(mut self, handlers: PacketHandlers) -> Self {
        self.handlers = handlers;
        self
    }

    /// Decides on inbound peers awaiting approval as they arrive (the
    /// "event handler's decision"). Returning `None` leaves the peer to the
    /// queue or event the trust policy's placement names.
    pub fn on_approval_request(
        mut self,
        hook: impl Fn(&PendingPeer) -> Option<Verdict> + Send + Sync + 'static,
    ) -> Self {
        self.approval_hook = Some(Arc::new(hook));
        self
    }

    /// Validates the settings, binds the listener and starts the network.
    /// Must run inside a tokio runtime.
    pub async fn start(self) -> Result<PeerNetwork> {
        self.channel.validate()?;
        let limits = self.limits;
        if limits.max_channels == 0 || limits.command_queue == 0 || limits.event_buffer == 0 {
            return Err(Error::InvalidConfig(
                "max_channels, command_queue and event_buffer must be positive".into(),
            ));
        }
        if limits.max_pending == 0
            || limits.max_handshakes == 0
            || limits.max_pending_per_source == 0
            || limits.event_buffer_bytes == 0
        {
            return Err(Error::InvalidConfig(
                "max_pending, max_handshakes, max_pending_per_source and event_buffer_bytes must be positive".into(),
            ));
        }
        if self.ports.is_empty() {
            return Err(Error::InvalidConfig("the port range is empty".into()));
        }
        let (reconnect_min, reconnect_max) = self.reconnect;
        if reconnect_min.is_zero() || reconnect_max < reconnect_min {
            return Err(Error::InvalidConfig(
                "reconnect backoff needs 0 < min <= max".into(),
            ));
        }
        if self.discern_interval.is_zero() || self.connect_timeout.is_zero() {
            return Err(Error::InvalidConfig(
                "discern_interval and connect_timeout must be positive".into(),
            ));
        }
        if let Some(discovery) = &self.discovery {
            discovery.validate()?;
        }
        let keypair = tokio::task::spawn_blocking(move || self.identity.resolve())
            .await
            .map_err(|err| Error::InvalidConfig(format!("identity loading failed: {err}")))??;
        let config = NetworkConfig {
            listen_ip: self.listen_ip,
            ports: self.ports,
            accept_inbound: self.accept_inbound,
            limits,
            channel: Arc::new(self.channel),
            connect_timeout: self.connect_timeout,
            approval_timeout: self.approval_timeout,
            idle_channel_timeout: self.idle_channel_timeout,
            reconnect_min,
            reconnect_max,
            download_dir: self.download_dir,
            max_file_size: self.max_file_size,
            default_routines: self.default_routines,
            discern_interval: self.discern_interval,
        };
        let hooks = ApplicationHooks {
            handlers: self.handlers,
            approval: self.approval_hook,
        };
        launch(config, keypair, self.policy, hooks, self.discovery).await
    }
}

/// Binds the listener, creates the owners of the tables and starts the
/// tasks.
async fn launch(
    mut config: NetworkConfig,
    keypair: Keypair,
    policy: IncomingPeerTrustPolicy,
    hooks: ApplicationHooks,
    discovery: Option<DiscoveryConfig>,
) -> Result<PeerNetwork> {
    let listener = if config.accept_inbound {
        Some(accept::bind(config.listen_ip, config.ports.clone()).await?)
    } else {
        None
    };
    let local_addr = match &listener {
        Some(listener) => Some(
            listener
                .local_addr()
                .map_err(|err| Error::io("reading the listening address", err))?,
        ),
        None => None,
    };
    let mut channel = (*config.channel).clone();
    channel.listening_port = local_addr.map(|addr| addr.port());
    config.channel = Arc::new(channel);
    let limits = config.limits;
    let cancel = CancellationToken::new();
    let events = EventBus::new(QueueBounds {
        events: limits.event_buffer,
        bytes: limits.event_buffer_bytes,
    });
    let local_id = keypair.peer_id();
    let node = Arc::new(Node {
        local_id,
        keypair,
        local_addr,
        clock: Clock::new(),
        hooks,
        cancel: cancel.clone(),
        tracker: TaskTracker::new(),
        channels: Arc::new(Channels::new(limits)),
        peers: Arc::new(Peers::new(local_id, limits.max_known_peers, events.clone())),
        approvals: Arc::new(Approvals::new(limits.max_pending)),
        access: Arc::new(Access::new(policy)),
        transfers: Arc::new(Transfers::new()),
        partials: PartialFiles::new(cancel.clone(), limits.max_incoming_transfers),
        persistent: Arc::new(Persistent::new(cancel.clone())),
        traffic: Arc::default(),
        routines: RoutineTable::default(),
        discovery: OnceLock::new(),
        discovery_reports: OnceLock::new(),
        events,
        config: Arc::new(config),
    });
    let network = PeerNetwork::owning(node.clone(), cancel);
    if let Some(discovery) = discovery {
        let reports = crate::discovery::start(&network, discovery)?;
        let _ = node.discovery_reports.set(reports);
    }
    if let Some(listener) = listener {
        node.tracker.spawn(accept::accept_loop(
            PeerNetwork::internal(node.clone()),
            listener,
        ));
    }
    if node.config.default_routines {
        routines::install_defaults(&network)?;
    }
    tracing::info!(peer_id = %local_id, addr = ?local_addr, "peer network started");
    Ok(network)
}
