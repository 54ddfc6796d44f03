//! The channel actor: one task per connection driving one protocol
//! [`Channel`] over one TCP stream.
//!
//! The actor owns the socket, the channel, its transfers and the receiving
//! end of a bounded command queue. Its loop first does every piece of work
//! that is ready without waiting (hand transmits to the write buffer,
//! process channel events, retry held sends, read the next file chunks),
//! then waits for whichever comes first: the socket is readable, the write
//! buffer can be flushed, a command, the channel's next timer, or
//! cancellation. Reads and writes are separate `select!` branches, so a peer
//! that stops reading can never stop us from reading (no write/write
//! deadlock), and everything the actor holds is bounded:
//!
//! * the write buffer, by [`WRITE_BUFFER`] (further data waits inside the
//!   channel, bounded by its `send_buffer_limit`);
//! * the read buffer, between [`MIN_READ_BUFFER`] and [`MAX_READ_BUFFER`],
//!   shrinking back when the channel goes idle (10,000 idle channels must
//!   stay cheap);
//! * queued commands, by the channel's queue capacity: senders wait
//!   (backpressure) while the channel's send buffer is full.
//!
//! The actor reaches the rest of the network only through its
//! [`ActorContext`]: it *reports* to the owners of the tables (its state to
//! `Channels`, what it learned to `Peers`, its end to `Persistent` and
//! discovery) and never holds a lock of theirs.
//!
//! Files: `lifecycle.rs` (handshake to close: admission, approval, open,
//! close, the final settling), `dispatch.rs` (packets to handlers, commands,
//! held sends), `files.rs` (the transfer sub-protocol's IO).

mod dispatch;
mod files;
mod lifecycle;
mod perf;
mod write_queue;

use std::collections::{HashMap, VecDeque};
use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use p2pnet_proto::packet::{Disconnect, DisconnectReason, Packet, TransferId};
use p2pnet_proto::{Channel, CloseReason, PeerId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::access::Access;
use crate::admission::Intent;
use crate::approvals::Approvals;
use crate::channels::{ChannelId, Channels};
use crate::clock::Clock;
use crate::command::{Command, OpenedTx, SendReply};
use crate::config::NetworkConfig;
use crate::event_bus::EventBus;
use crate::hooks::ApplicationHooks;
use crate::network::PeerNetwork;
use crate::partial_files::PartialFiles;
use crate::peers::Peers;
use crate::persistent::Persistent;
use crate::traffic::TrafficCounters;
use crate::transfer_io::{Incoming, Outgoing};
use crate::transfers::Transfers;
use write_queue::{MAX_WRITE_SLICES, WriteQueue};

/// Bytes taken from the channel ahead of the socket's writes.
pub(crate) const WRITE_BUFFER: usize = 256 * 1024;
/// The read buffer of an idle channel.
pub(crate) const MIN_READ_BUFFER: usize = 2 * 1024;
/// The read buffer of a busy channel.
pub(crate) const MAX_READ_BUFFER: usize = 128 * 1024;
/// Held transfer messages and handler replies beyond which reading pauses.
const MAX_BACKLOG: usize = 64;
/// How often a channel publishes its traffic counters at most.
const TRAFFIC_PUBLISH_INTERVAL: Duration = Duration::from_secs(1);
/// Time a closed channel gets to flush its final Disconnect.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// What a channel actor uses of its network, and nothing more.
pub(crate) struct ActorContext {
    pub(crate) local_id: PeerId,
    pub(crate) clock: Clock,
    pub(crate) config: Arc<NetworkConfig>,
    pub(crate) channels: Arc<Channels>,
    pub(crate) peers: Arc<Peers>,
    pub(crate) approvals: Arc<Approvals>,
    pub(crate) access: Arc<Access>,
    pub(crate) transfers: Arc<Transfers>,
    pub(crate) partials: PartialFiles,
    pub(crate) persistent: Arc<Persistent>,
    pub(crate) traffic: Arc<TrafficCounters>,
    pub(crate) events: EventBus,
    pub(crate) hooks: ApplicationHooks,
    /// Where the end of a peer's channel is reported to discovery.
    pub(crate) discovery_reports: Option<mpsc::Sender<PeerId>>,
    /// The handle handed to packet handlers (it does not keep the network
    /// alive), also used to re-offer interrupted files.
    pub(crate) network: PeerNetwork,
    pub(crate) tracker: TaskTracker,
    pub(crate) cancel: CancellationToken,
}

pub(crate) struct Actor {
    ctx: ActorContext,
    id: ChannelId,
    addr: SocketAddr,
    intent: Intent,
    channel: Channel,
    commands: mpsc::Receiver<Command>,
    opened: Option<OpenedTx>,
    peer: Option<PeerId>,
    /// A send that met a full channel buffer; commands wait behind it.
    stalled: Option<(Packet, Option<SendReply>)>,
    /// Small transfer control messages that met a full buffer.
    backlog: VecDeque<Packet>,
    outgoing: HashMap<TransferId, Outgoing>,
    incoming: HashMap<TransferId, Incoming>,
    shutting_down: bool,
    /// Traffic already published, and when.
    published: (p2pnet_proto::ChannelStats, tokio::time::Instant),
    /// When the TCP connect (dialled) or accept happened.
    connecting_since: tokio::time::Instant,
    /// From `connecting_since` to the end of the handshake.
    connect_time: Option<Duration>,
    /// The speed test this side asked for, and the one it answers (boxed:
    /// rare, and every idle channel's task would carry their room).
    asking: Option<Box<perf::Asking>>,
    answering: Option<Box<p2pnet_proto::perf::PerfAnswerer>>,
    /// Speed tests asked for on this channel (their ids).
    perf_tests: u32,
}

impl Actor {
    pub(crate) fn new(
        ctx: ActorContext,
        id: ChannelId,
        addr: SocketAddr,
        intent: Intent,
        channel: Channel,
        commands: mpsc::Receiver<Command>,
        opened: Option<OpenedTx>,
    ) -> Self {
        Self {
            ctx,
            id,
            addr,
            intent,
            channel,
            commands,
            opened,
            peer: None,
            stalled: None,
            backlog: VecDeque::new(),
            outgoing: HashMap::new(),
            incoming: HashMap::new(),
            shutting_down: false,
            published: (
                p2pnet_proto::ChannelStats::default(),
                tokio::time::Instant::now(),
            ),
            connecting_since: tokio::time::Instant::now(),
            connect_time: None,
            asking: None,
            answering: None,
            perf_tests: 0,
        }
    }

    /// Sets when the connection began (the dial's TCP connect, or the
    /// accept), from which the connect time is measured.
    pub(crate) fn connecting_since(mut self, at: tokio::time::Instant) -> Self {
        self.connecting_since = at;
        self
    }

    /// Drives the channel over `stream`. `written_ahead` is a message the
    /// opener already wrote some bytes of (its first handshake message):
    /// the rest goes out first.
    pub(crate) async fn run(self, stream: TcpStream, written_ahead: Option<(Vec<u8>, usize)>) {
        let span = tracing::info_span!(
            "channel",
            id = self.id,
            addr = %self.addr,
            direction = ?self.channel.direction(),
            peer = tracing::field::Empty,
        );
        self.drive(stream, written_ahead).instrument(span).await;
    }

    async fn drive(mut self, stream: TcpStream, written_ahead: Option<(Vec<u8>, usize)>) {
        let (mut reader, mut writer) = stream.into_split();
        let mut read_buf = vec![0u8; MIN_READ_BUFFER];
        let mut queue = WriteQueue::default();
        if let Some((message, written)) = written_ahead {
            queue.push(message);
            queue.advance(written, |buffer| self.channel.recycle_buffer(buffer));
        }
        let mut read_open = true;
        let mut write_dead = false;
        let mut flush_deadline: Option<tokio::time::Instant> = None;
        loop {
            // Everything that is ready without waiting.
            loop {
                let mut progressed = false;
                if write_dead {
                    queue.clear(|buffer| self.channel.recycle_buffer(buffer));
                }
                while queue.bytes() < WRITE_BUFFER {
                    let Some(message) = self.channel.poll_transmit() else {
                        break;
                    };
                    progressed = true;
                    if write_dead {
                        self.channel.recycle_buffer(message);
                    } else {
                        queue.push(message);
                    }
                }
                progressed |= self.process_events().await;
                progressed |= self.retry_held();
                progressed |= self.pump_transfers().await;
                progressed |= self.pump_perf();
                if !progressed {
                    break;
                }
            }
            if self.channel.is_closed() {
                if self.channel.is_drained() && (queue.is_empty() || write_dead) {
                    break;
                }
                let deadline = *flush_deadline
                    .get_or_insert_with(|| tokio::time::Instant::now() + FLUSH_TIMEOUT);
                if tokio::time::Instant::now() >= deadline {
                    break;
                }
            }
            self.publish_traffic(false);
            let timer = self
                .channel
                .poll_timeout()
                .map(|at| self.ctx.clock.deadline(at))
                .into_iter()
                .chain(flush_deadline)
                .chain(self.traffic_publish_due())
                .min();
            let accept_commands = self.stalled.is_none() && !self.channel.is_closed();
            let mut slices = [IoSlice::new(&[]); MAX_WRITE_SLICES];
            let count = queue.slices(&mut slices);
            tokio::select! {
                () = self.ctx.cancel.cancelled(), if !self.shutting_down => {
                    self.shutting_down = true;
                    let now = self.ctx.clock.now();
                    self.channel.close(now, Disconnect::new(DisconnectReason::Shutdown));
                }
                result = writer.write_vectored(&slices[..count]), if count > 0 && !write_dead => {
                    match result {
                        Ok(n) if n > 0 => {
                            queue.advance(n, |buffer| self.channel.recycle_buffer(buffer));
                        }
                        Ok(_) | Err(_) => {
                            write_dead = true;
                            self.channel.handle_eof();
                        }
                    }
                }
                // While replies wait for buffer space, stop reading: a peer
                // that sends without reading cannot grow the backlog.
                result = reader.read(&mut read_buf), if read_open && self.backlog.len() < MAX_BACKLOG => {
                    match result {
                        Ok(0) | Err(_) => {
                            read_open = false;
                            self.channel.handle_eof();
                        }
                        Ok(n) => {
                            let now = self.ctx.clock.now();
                            // An error has already closed the channel and
                            // queued its Closed event; nothing else to do.
                            let _ = self.channel.handle_bytes_mut(now, &mut read_buf[..n]);
                            if n == read_buf.len() && read_buf.len() < MAX_READ_BUFFER {
                                read_buf.resize(read_buf.len() * 2, 0);
                            }
                        }
                    }
                }
                command = self.commands.recv(), if accept_commands => {
                    if let Some(command) = command {
                        self.handle_command(command);
                    }
                }
                () = sleep_until(timer), if timer.is_some() => {
                    self.channel.handle_timeout(self.ctx.clock.now());
                    // Timers fire when the channel is quiet: give back the
                    // buffers a burst of traffic grew.
                    if read_buf.len() > MIN_READ_BUFFER {
                        read_buf = vec![0; MIN_READ_BUFFER];
                    }
                    self.channel.release_buffers();
                }
            }
        }
        if !write_dead {
            let _ = tokio::time::timeout(Duration::from_secs(1), writer.shutdown()).await;
        }
        self.publish_traffic(true);
        // Boxed: settling waits on disk flushes whose futures are large;
        // inline, every idle channel's task would reserve room for them
        // (measured: 11.7 KiB per idle channel boxed, 20 KiB inline).
        Box::pin(self.finish()).await;
    }
}

impl Actor {
    /// When traffic not yet published is due, so the last bytes of a
    /// burst are published a second later, not at the next keepalive.
    fn traffic_publish_due(&self) -> Option<tokio::time::Instant> {
        (self.channel.stats() != self.published.0)
            .then(|| self.published.1 + TRAFFIC_PUBLISH_INTERVAL)
    }

    /// Publishes the channel's traffic to its table entry and the
    /// network's totals, at most once a second unless `now`.
    fn publish_traffic(&mut self, now: bool) {
        let at = tokio::time::Instant::now();
        if !now && at.duration_since(self.published.1) < TRAFFIC_PUBLISH_INTERVAL {
            return;
        }
        let stats = self.channel.stats();
        let (before, _) = self.published;
        self.ctx.traffic.add(
            stats.bytes_sent - before.bytes_sent,
            stats.bytes_received - before.bytes_received,
        );
        self.ctx.channels.record_traffic(
            self.id,
            stats.bytes_sent,
            stats.bytes_received,
            self.channel.rtt(),
        );
        self.published = (stats, at);
    }
}

/// A close reason in words, for errors.
pub(crate) fn describe(reason: &CloseReason) -> String {
    match reason {
        CloseReason::Disconnect(disconnect) => match &disconnect.message {
            Some(message) => format!("disconnected ({:?}): {message}", disconnect.reason),
            None => format!("disconnected ({:?})", disconnect.reason),
        },
        CloseReason::IdleTimeout => "idle timeout".into(),
        CloseReason::ConnectionLost => "connection lost".into(),
        CloseReason::Error(err) => err.to_string(),
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
