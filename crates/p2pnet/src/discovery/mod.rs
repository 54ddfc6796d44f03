//! LAN and WAN discovery: UDP broadcast, IPv4 and IPv6 multicast, and
//! unicast announces to static hosts on designated ports.
//!
//! Enabled with [`PeerNetworkBuilder::discovery`](crate::PeerNetworkBuilder::discovery).
//! One task per network (`driver.rs`) owns the sockets (`sockets.rs`) and
//! the sans-IO [`Discovery`](p2pnet_proto::discovery::Discovery) machine,
//! which decides when to announce and whom to answer. A heard peer is
//! recorded in KnownPeers (source [`PeerSource::Discovery`](crate::PeerSource::Discovery),
//! with how it was heard) and, unless auto-connect is off or the access
//! list denies it, dialled with [`connect_to`](crate::PeerNetwork::connect_to):
//! the handshake proves the id the announce claimed. Peers that go quiet
//! and have no channel are pruned from KnownPeers.
//!
//! Two routines come with it (when default routines are on):
//! `RotateBroadcastPort` moves broadcasts and multicasts to the next
//! designated port, and `RescanInterfaces` reloads the local interfaces
//! and re-announces at once when they change.

mod candidates;
mod config;
mod driver;
mod sockets;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use p2pnet_proto::PeerId;
pub use p2pnet_proto::discovery::{DiscoveryParams, DiscoveryVia};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::discovery_link::{Command, Link};
pub use crate::discovery_link::{DiscoveryStatus, HeardPeerStatus};
pub use config::{
    DEFAULT_DESIGNATED_PORTS, DEFAULT_MULTICAST_V4, DEFAULT_MULTICAST_V6, DiscoveryConfig,
    MAX_DESIGNATED_PORTS, MAX_STATIC_HOSTS,
};
use driver::Driver;

use crate::access::Access;
use crate::channels::Channels;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::network::PeerNetwork;
use crate::peers::Peers;

/// Name of the routine that moves broadcasts to the next designated port.
pub const ROTATE_BROADCAST_PORT: &str = "RotateBroadcastPort";
/// Name of the routine that reloads local interfaces.
pub const RESCAN_INTERFACES: &str = "RescanInterfaces";

/// What the discovery task uses of its network, and nothing more.
pub(crate) struct DiscoveryContext {
    pub(crate) local_id: PeerId,
    pub(crate) local_addr: Option<SocketAddr>,
    pub(crate) listen_ip: IpAddr,
    pub(crate) network_name: String,
    pub(crate) clock: Clock,
    pub(crate) cancel: CancellationToken,
    pub(crate) tracker: TaskTracker,
    pub(crate) access: Arc<Access>,
    pub(crate) peers: Arc<Peers>,
    pub(crate) channels: Arc<Channels>,
    /// Dials heard peers; such channels are gated like inbound ones.
    pub(crate) dialer: PeerNetwork,
}

/// Starts discovery for `network`. Returns where channel actors report
/// that a peer's channel ended (discovery prunes a peer that went quiet
/// once its channel is gone).
pub(crate) fn start(
    network: &PeerNetwork,
    config: DiscoveryConfig,
) -> Result<mpsc::Sender<PeerId>> {
    let node = network.node();
    let (commands, receiver) = mpsc::channel(16);
    let (reports, ended) = mpsc::channel(node.config.limits.max_channels);
    let link = Arc::new(Link {
        commands,
        status: Mutex::new(DiscoveryStatus::default()),
    });
    if node.discovery.get().is_some() {
        return Err(Error::InvalidConfig("discovery started twice".into()));
    }
    let ctx = DiscoveryContext {
        local_id: node.local_id,
        local_addr: node.local_addr,
        listen_ip: node.config.listen_ip,
        network_name: node.config.channel.network.clone(),
        clock: node.clock,
        cancel: node.cancel.clone(),
        tracker: node.tracker.clone(),
        access: node.access.clone(),
        peers: node.peers.clone(),
        channels: node.channels.clone(),
        dialer: PeerNetwork::internal(node.clone()),
    };
    let rotate = config.rotate_interval;
    let rescan = config.rescan_interval;
    let mut driver = Driver::new(ctx, ended, config, link.clone())?;
    // Bound and published before `start` returns, so the status is never
    // empty.
    driver.open_sockets();
    driver.publish();
    if node.discovery.set(link).is_err() {
        return Err(Error::InvalidConfig("discovery started twice".into()));
    }
    node.tracker.spawn(driver.run(receiver));
    if node.config.default_routines {
        let routines = network.routines();
        // A routine runs once when it starts; rotation skips that run, so
        // broadcasts begin on the first designated port and move after a
        // full interval.
        let started = Arc::new(AtomicBool::new(false));
        routines.add(
            ROTATE_BROADCAST_PORT,
            rotate,
            move |network: PeerNetwork| {
                let first = !started.swap(true, Ordering::Relaxed);
                async move {
                    if !first {
                        network.rotate_broadcast_port().await?;
                    }
                    Ok(())
                }
            },
        )?;
        routines.start(ROTATE_BROADCAST_PORT)?;
        routines.add(
            RESCAN_INTERFACES,
            rescan,
            |network: PeerNetwork| async move {
                network.rescan_interfaces().await?;
                Ok(())
            },
        )?;
        routines.start(RESCAN_INTERFACES)?;
    }
    Ok(reports)
}

impl PeerNetwork {
    fn discovery_link(&self) -> Result<&Arc<Link>> {
        self.node().discovery.get().ok_or(Error::DiscoveryOff)
    }

    async fn discovery_command(&self, command: Command) -> Result<()> {
        self.discovery_link()?
            .commands
            .send(command)
            .await
            .map_err(|_| Error::Shutdown)
    }

    /// Discovery's current state, or `None` if discovery is off.
    pub fn discovery_status(&self) -> Option<DiscoveryStatus> {
        self.node()
            .discovery
            .get()
            .map(|link| link.status().clone())
    }

    /// Moves broadcasts and multicasts to the next designated port and
    /// returns it (what the `RotateBroadcastPort` routine does).
    ///
    /// # Errors
    /// [`Error::DiscoveryOff`], or [`Error::Shutdown`].
    pub async fn rotate_broadcast_port(&self) -> Result<u16> {
        let (reply, port) = oneshot::channel();
        self.discovery_command(Command::Rotate(reply)).await?;
        port.await.map_err(|_| Error::Shutdown)
    }

    /// Reloads the local interfaces; if they changed, rebinds the sockets
    /// and re-announces at once (what `RescanInterfaces` does).
    ///
    /// # Errors
    /// [`Error::DiscoveryOff`], or [`Error::Shutdown`].
    pub async fn rescan_interfaces(&self) -> Result<()> {
        self.discovery_command(Command::Rescan).await
    }

    /// Starts a fast announce phase now, soliciting answers.
    ///
    /// # Errors
    /// [`Error::DiscoveryOff`], or [`Error::Shutdown`].
    pub async fn announce_now(&self) -> Result<()> {
        self.discovery_command(Command::AnnounceNow).await
    }
}
