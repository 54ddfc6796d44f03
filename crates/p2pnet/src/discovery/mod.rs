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

mod config;
mod driver;
mod sockets;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use p2pnet_proto::PeerId;
use p2pnet_proto::discovery::DiscoveryStats;
pub use p2pnet_proto::discovery::{DiscoveryParams, DiscoveryVia};
use tokio::sync::{mpsc, oneshot};

pub use config::{
    DEFAULT_DESIGNATED_PORTS, DEFAULT_MULTICAST_V4, DEFAULT_MULTICAST_V6, DiscoveryConfig,
    MAX_DESIGNATED_PORTS, MAX_STATIC_HOSTS,
};
use driver::{Command, Driver};

use crate::error::{Error, Result};
use crate::network::PeerNetwork;

/// Name of the routine that moves broadcasts to the next designated port.
pub const ROTATE_BROADCAST_PORT: &str = "RotateBroadcastPort";
/// Name of the routine that reloads local interfaces.
pub const RESCAN_INTERFACES: &str = "RescanInterfaces";

/// A snapshot of discovery, for status pages and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DiscoveryStatus {
    /// The designated port broadcasts and multicasts go to now.
    pub broadcast_port: u16,
    /// Every designated port.
    pub designated_ports: Vec<u16>,
    /// Listening sockets bound (per port and family).
    pub listening: Vec<SocketAddr>,
    /// Interfaces in use.
    pub interfaces: Vec<String>,
    /// Addresses announced.
    pub announced: Vec<IpAddr>,
    /// Peers heard and not expired.
    pub heard: Vec<PeerId>,
    /// The machine's counters (garbage, replies, expiries...).
    pub stats: DiscoveryStats,
    /// Datagrams handed to the kernel.
    pub datagrams_sent: u64,
    /// Datagrams received on any discovery socket.
    pub datagrams_received: u64,
    /// Datagrams dropped because the task was behind.
    pub datagrams_dropped: u64,
    /// Sends the kernel refused.
    pub send_errors: u64,
    /// Announces from peers the access list denies.
    pub denied: u64,
    /// Whether every heard peer has an open channel (announces slow down).
    pub settled: bool,
    /// No listener: this node dials but announces nothing.
    pub passive: bool,
}

/// The handle side of a running discovery task.
pub(crate) struct Link {
    commands: mpsc::Sender<Command>,
    status: Mutex<DiscoveryStatus>,
}

impl Link {
    fn status(&self) -> MutexGuard<'_, DiscoveryStatus> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Starts discovery for `network` and installs its routines.
pub(crate) fn start(network: &PeerNetwork, config: DiscoveryConfig) -> Result<()> {
    let shared = network.shared();
    let (commands, receiver) = mpsc::channel(16);
    let link = Arc::new(Link {
        commands,
        status: Mutex::new(DiscoveryStatus::default()),
    });
    if shared.discovery.get().is_some() {
        return Err(Error::InvalidConfig("discovery started twice".into()));
    }
    let rotate = config.rotate_interval;
    let rescan = config.rescan_interval;
    let mut driver = Driver::new(PeerNetwork::internal(shared.clone()), config, link.clone())?;
    // Bound and published before `start` returns, so the status is never
    // empty.
    driver.open_sockets();
    driver.publish();
    if shared.discovery.set(link).is_err() {
        return Err(Error::InvalidConfig("discovery started twice".into()));
    }
    shared.tracker.spawn(driver.run(receiver));
    if shared.config.default_routines {
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
    Ok(())
}

impl PeerNetwork {
    fn discovery_link(&self) -> Result<&Arc<Link>> {
        self.shared().discovery.get().ok_or(Error::DiscoveryOff)
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
        self.shared()
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
