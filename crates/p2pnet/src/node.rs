//! `Node`: what one network is made of. The handle (`PeerNetwork`) holds
//! it; tasks never do. Each task is handed the few parts it uses (an
//! `ActorContext`, a `DiscoveryContext`), so what a task can touch is
//! written in its constructor.
//!
//! Every table has one owner with intention-named methods, each behind its
//! own short mutex (never held across an `.await`):
//!
//! | table | owner |
//! |---|---|
//! | active channels | [`Channels`](crate::channels::Channels) |
//! | known peers, their decisions and addresses | [`Peers`](crate::peers::Peers) |
//! | approval queue | [`Approvals`](crate::approvals::Approvals) |
//! | trust policy and access list | [`Access`](crate::access::Access) |
//! | transfer ids, interrupted sends | [`Transfers`](crate::transfers::Transfers) |
//! | partial files being received | [`PartialFiles`](crate::partial_files::PartialFiles) |
//! | persistent peers | [`Persistent`](crate::persistent::Persistent) |
//! | routines | [`RoutineTable`](crate::routines::RoutineTable) |

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use p2pnet_proto::{Keypair, PeerId};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access::Access;
use crate::approvals::Approvals;
use crate::channels::Channels;
use crate::clock::Clock;
use crate::config::NetworkConfig;
use crate::discovery_link::Link;
use crate::event_bus::EventBus;
use crate::hooks::ApplicationHooks;
use crate::partial_files::PartialFiles;
use crate::peers::Peers;
use crate::persistent::Persistent;
use crate::routines::RoutineTable;
use crate::traffic::TrafficCounters;
use crate::transfers::Transfers;

/// One network's parts.
pub(crate) struct Node {
    pub(crate) config: Arc<NetworkConfig>,
    pub(crate) keypair: Keypair,
    pub(crate) local_id: PeerId,
    pub(crate) local_addr: Option<SocketAddr>,
    pub(crate) clock: Clock,
    pub(crate) cancel: CancellationToken,
    pub(crate) tracker: TaskTracker,
    pub(crate) hooks: ApplicationHooks,
    pub(crate) events: EventBus,
    pub(crate) channels: Arc<Channels>,
    pub(crate) peers: Arc<Peers>,
    pub(crate) approvals: Arc<Approvals>,
    pub(crate) access: Arc<Access>,
    pub(crate) transfers: Arc<Transfers>,
    /// Partial files being received, each locked by one writer (clones
    /// share the table).
    pub(crate) partials: PartialFiles,
    pub(crate) persistent: Arc<Persistent>,
    pub(crate) traffic: Arc<TrafficCounters>,
    pub(crate) routines: RoutineTable,
    /// Discovery's status and commands, when it runs.
    pub(crate) discovery: OnceLock<Arc<Link>>,
    /// Where channel actors report that a peer's channel ended, for
    /// discovery (a dedicated bounded channel, not the public stream).
    pub(crate) discovery_reports: OnceLock<mpsc::Sender<PeerId>>,
}
