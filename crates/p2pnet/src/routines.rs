//! `NetworkRoutines`: named periodic jobs with add / start / stop /
//! set interval / list.
//!
//! Each running routine is one task, a child of the network's cancellation
//! token. It runs once at start and then every interval; each run executes
//! in its own task so a panic is caught and recorded as the routine's last
//! error (and a [`NetworkEvent::RoutineFailed`]) without killing the loop.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use p2pnet_proto::Decision;
use p2pnet_proto::packet::{Disconnect, DisconnectReason};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::channels::{Discern, Discerned};
use crate::command::Command;
use crate::error::{Error, Result};
use crate::event::NetworkEvent;
use crate::network::PeerNetwork;

/// The default routine that prunes channels.
pub const DISCERN_PEER_CHANNELS: &str = "DiscernPeerChannels";

/// What a routine run returns; the error is recorded, never fatal.
pub type RoutineResult = std::result::Result<(), Box<dyn std::error::Error + Send + Sync>>;

type BoxFuture = Pin<Box<dyn Future<Output = RoutineResult> + Send>>;

/// A periodic job. Closures `Fn(PeerNetwork) -> impl Future<Output =
/// RoutineResult>` implement it; the handle they get does not keep the
/// network alive.
pub trait Routine: Send + Sync + 'static {
    /// One run.
    fn run(&self, network: PeerNetwork) -> Pin<Box<dyn Future<Output = RoutineResult> + Send>>;
}

impl<F, Fut> Routine for F
where
    F: Fn(PeerNetwork) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = RoutineResult> + Send + 'static,
{
    fn run(&self, network: PeerNetwork) -> BoxFuture {
        Box::pin(self(network))
    }
}

/// A routine's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutineInfo {
    /// Its name.
    pub name: String,
    /// Time between runs.
    pub interval: Duration,
    /// Whether it is started.
    pub running: bool,
    /// When its last run ended.
    pub last_run: Option<SystemTime>,
    /// The error of its last run, if that run failed.
    pub last_error: Option<String>,
    /// Runs completed.
    pub runs: u64,
}

struct Slot {
    routine: Arc<dyn Routine>,
    interval: watch::Sender<Duration>,
    token: Option<CancellationToken>,
    status: Arc<Mutex<Status>>,
}

#[derive(Default)]
struct Status {
    last_run: Option<SystemTime>,
    last_error: Option<String>,
    runs: u64,
}

/// The routines of one network.
#[derive(Default)]
pub(crate) struct RoutineTable {
    slots: Mutex<BTreeMap<String, Slot>>,
}

impl RoutineTable {
    fn slots(&self) -> MutexGuard<'_, BTreeMap<String, Slot>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn status(status: &Mutex<Status>) -> MutexGuard<'_, Status> {
    status.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The routines of a network; from [`PeerNetwork::routines`].
#[derive(Debug)]
pub struct Routines<'a> {
    network: &'a PeerNetwork,
}

impl<'a> Routines<'a> {
    pub(crate) fn new(network: &'a PeerNetwork) -> Self {
        Self { network }
    }

    fn table(&self) -> &RoutineTable {
        &self.network.node().routines
    }

    /// Adds a stopped routine.
    pub fn add(
        &self,
        name: impl Into<String>,
        interval: Duration,
        routine: impl Routine,
    ) -> Result<()> {
        let name = name.into();
        if interval.is_zero() {
            return Err(Error::InvalidConfig(format!(
                "routine {name:?}: the interval must be positive"
            )));
        }
        let mut slots = self.table().slots();
        if slots.contains_key(&name) {
            return Err(Error::DuplicateRoutine(name));
        }
        slots.insert(
            name,
            Slot {
                routine: Arc::new(routine),
                interval: watch::Sender::new(interval),
                token: None,
                status: Arc::default(),
            },
        );
        Ok(())
    }

    /// Starts a routine: it runs now and then every interval.
    pub fn start(&self, name: &str) -> Result<()> {
        let node = self.network.node();
        if node.cancel.is_cancelled() {
            return Err(Error::Shutdown);
        }
        let mut slots = self.table().slots();
        let slot = slots
            .get_mut(name)
            .ok_or_else(|| Error::UnknownRoutine(name.into()))?;
        if slot.token.is_some() {
            return Ok(());
        }
        let token = node.cancel.child_token();
        slot.token = Some(token.clone());
        let task = RoutineTask {
            name: name.to_owned(),
            routine: slot.routine.clone(),
            interval: slot.interval.subscribe(),
            status: slot.status.clone(),
            network: PeerNetwork::internal(node.clone()),
            token,
        };
        node.tracker.spawn(task.run());
        Ok(())
    }

    /// Stops a routine (a run in progress finishes).
    pub fn stop(&self, name: &str) -> Result<()> {
        let mut slots = self.table().slots();
        let slot = slots
            .get_mut(name)
            .ok_or_else(|| Error::UnknownRoutine(name.into()))?;
        if let Some(token) = slot.token.take() {
            token.cancel();
        }
        Ok(())
    }

    /// Changes a routine's interval; a running routine's next run is one
    /// new interval from now.
    pub fn set_interval(&self, name: &str, interval: Duration) -> Result<()> {
        if interval.is_zero() {
            return Err(Error::InvalidConfig(
                "a routine interval must be positive".into(),
            ));
        }
        let slots = self.table().slots();
        let slot = slots
            .get(name)
            .ok_or_else(|| Error::UnknownRoutine(name.into()))?;
        slot.interval.send_replace(interval);
        Ok(())
    }

    /// Stops and removes a routine.
    pub fn remove(&self, name: &str) -> Result<()> {
        let slot = self
            .table()
            .slots()
            .remove(name)
            .ok_or_else(|| Error::UnknownRoutine(name.into()))?;
        if let Some(token) = slot.token {
            token.cancel();
        }
        Ok(())
    }

    /// Every routine, by name.
    pub fn list(&self) -> Vec<RoutineInfo> {
        self.table()
            .slots()
            .iter()
            .map(|(name, slot)| {
                let status = status(&slot.status);
                RoutineInfo {
                    name: name.clone(),
                    interval: *slot.interval.borrow(),
                    running: slot.token.as_ref().is_some_and(|t| !t.is_cancelled()),
                    last_run: status.last_run,
                    last_error: status.last_error.clone(),
                    runs: status.runs,
                }
            })
            .collect()
    }

    /// One routine.
    pub fn get(&self, name: &str) -> Option<RoutineInfo> {
        self.list().into_iter().find(|info| info.name == name)
    }
}

struct RoutineTask {
    name: String,
    routine: Arc<dyn Routine>,
    interval: watch::Receiver<Duration>,
    status: Arc<Mutex<Status>>,
    network: PeerNetwork,
    token: CancellationToken,
}

impl RoutineTask {
    async fn run(mut self) {
        loop {
            self.run_once().await;
            let interval = *self.interval.borrow_and_update();
            tokio::select! {
                () = self.token.cancelled() => return,
                () = tokio::time::sleep(interval) => {}
                changed = self.interval.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    // Wait one new interval before the next run.
                    let interval = *self.interval.borrow_and_update();
                    tokio::select! {
                        () = self.token.cancelled() => return,
                        () = tokio::time::sleep(interval) => {}
                    }
                }
            }
        }
    }

    async fn run_once(&self) {
        let node = self.network.node();
        let future = self.routine.run(self.network.clone());
        let outcome = node.tracker.spawn(future).await;
        let error = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(err)) => Some(err.to_string()),
            Err(join) => Some(match join.try_into_panic() {
                Ok(panic) => crate::handler::panic_message(panic.as_ref()),
                Err(_) => "cancelled".to_owned(),
            }),
        };
        if let Some(error) = &error {
            tracing::warn!(routine = %self.name, %error, "routine run failed");
            node.events.emit(NetworkEvent::RoutineFailed {
                name: self.name.clone(),
                error: error.clone(),
            });
        }
        let mut status = status(&self.status);
        status.last_run = Some(SystemTime::now());
        status.last_error = error;
        status.runs += 1;
    }
}

/// Adds and starts the default routines.
pub(crate) fn install_defaults(network: &PeerNetwork) -> Result<()> {
    let routines = network.routines();
    let interval = network.node().config.discern_interval;
    routines.add(
        DISCERN_PEER_CHANNELS,
        interval,
        |network: PeerNetwork| async move {
            discern_peer_channels(&network);
            Ok(())
        },
    )?;
    routines.start(DISCERN_PEER_CHANNELS)
}

/// `DiscernPeerChannels`: rejects peers left awaiting approval past the
/// approval timeout, closes channels idle past the idle-channel timeout,
/// and closes channels the access list now denies. Dead channels need no
/// pruning: an actor unregisters itself when its channel closes.
fn discern_peer_channels(network: &PeerNetwork) {
    let node = network.node();
    let config = &node.config;
    let picked = node.channels.discern(
        config.approval_timeout,
        config.idle_channel_timeout,
        |info| {
            matches!(
                node.access
                    .decide(info.peer.as_ref(), info.addr.ip(), info.direction),
                Decision::Deny(_)
            )
        },
    );
    for Discerned {
        id,
        peer,
        commands,
        why,
    } in picked
    {
        tracing::debug!(channel = id, ?peer, ?why, "discerned a channel to close");
        if let Some(peer) = peer {
            node.approvals.forget_peer(&peer);
        }
        let command = match why {
            Discern::Denied => Command::Close(Disconnect::new(DisconnectReason::Blocked)),
            Discern::ApprovalTimedOut => Command::Reject(Disconnect::with_message(
                DisconnectReason::Rejected,
                "approval timed out",
            )),
            Discern::Idle => Command::Close(Disconnect::new(DisconnectReason::IdleTimeout)),
        };
        // A full queue means the channel is busy, hence alive; the next
        // round retries.
        let _ = commands.try_send(command);
    }
}
