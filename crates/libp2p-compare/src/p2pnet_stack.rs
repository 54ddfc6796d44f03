//! p2pnet, driven the way `crates/p2pnet/benches/channel.rs` drives it:
//! Noise-encrypted channels between `PeerNetwork`s on 127.0.0.1.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use p2pnet::proto::packet::{DataTransmission, Payload, PureMessage};
use p2pnet::{
    IncomingPeerTrustPolicy, Limits, PacketContext, PacketHandlers, PeerId, PeerNetwork,
    PeerNetworkBuilder,
};
use tokio::sync::mpsc;

use crate::common::{BULK, Bench, PACKET, Sink, bulk_messages, numbered};

fn open_policy() -> IncomingPeerTrustPolicy {
    IncomingPeerTrustPolicy {
        auto_accept: true,
        allow_enhanced_packet_exchange: true,
        ..Default::default()
    }
}

fn local() -> PeerNetworkBuilder {
    PeerNetwork::builder().listen_ip([127, 0, 0, 1].into())
}

fn text(message: &[u8]) -> anyhow::Result<String> {
    Ok(std::str::from_utf8(message)?.to_owned())
}

/// One elevated channel; `MiscData` packets of 60 KiB, counted by the
/// receiver's `on_misc_data` handler.
pub(crate) struct Bulk {
    sender: PeerNetwork,
    receiver: PeerNetwork,
    id: PeerId,
    payload: p2pnet::Bytes,
    sink: Arc<Sink>,
    runs: u64,
}

impl Bulk {
    pub(crate) async fn new() -> anyhow::Result<Self> {
        let sink = Arc::new(Sink::default());
        let counter = sink.clone();
        let handlers =
            PacketHandlers::default().on_misc_data(move |_: &PacketContext<'_>, p: Payload| {
                counter.add(p.data.len() as u64);
                Ok(())
            });
        let receiver = local()
            .trust_policy(open_policy())
            .handlers(handlers)
            .start()
            .await?;
        let sender = local().trust_policy(open_policy()).start().await?;
        let id = sender
            .connect(receiver.local_addr().context("receiver address")?)
            .await?;
        sender.elevate(id).await?;
        // Let both sides settle at elevated trust (as channel.rs does).
        tokio::time::sleep(Duration::from_millis(50)).await;
        Ok(Self {
            sender,
            receiver,
            id,
            payload: p2pnet::Bytes::from(vec![0xa5; PACKET]),
            sink,
            runs: 0,
        })
    }
}

impl Bench for Bulk {
    /// From the first `send` until the receiver's handler has counted all
    /// 64 MiB.
    async fn once(&mut self, _: usize) -> anyhow::Result<Duration> {
        let run = self.sink.begin();
        for len in bulk_messages() {
            let packet = DataTransmission::MiscData(Payload::new(self.payload.slice(..len)));
            self.sender.send(self.id, packet).await?;
        }
        self.runs += 1;
        self.sink.end(run).await
    }

    async fn finish(self) -> anyhow::Result<()> {
        self.sender.shutdown().await;
        self.receiver.shutdown().await;
        let total = self.sink.bytes();
        ensure!(
            total == self.runs * BULK,
            "p2pnet bulk: {total} bytes arrived"
        );
        Ok(())
    }
}

/// A 32-byte `PureMessage` answered with `ctx.reply` from the receiver's
/// handler; the pinger's handler hands the answer back.
pub(crate) struct Echo {
    pinger: PeerNetwork,
    receiver: PeerNetwork,
    id: PeerId,
    pongs: mpsc::UnboundedReceiver<String>,
}

impl Echo {
    pub(crate) async fn new() -> anyhow::Result<Self> {
        let handlers =
            PacketHandlers::default().on_pure_message(|ctx: &PacketContext<'_>, m: PureMessage| {
                ctx.reply(m)?;
                Ok(())
            });
        let receiver = local()
            .trust_policy(open_policy())
            .handlers(handlers)
            .start()
            .await?;
        let (pong, pongs) = mpsc::unbounded_channel();
        let pinger = local()
            .handlers(PacketHandlers::default().on_pure_message(
                move |_: &PacketContext<'_>, m: PureMessage| {
                    pong.send(m.text)?;
                    Ok(())
                },
            ))
            .start()
            .await?;
        let id = pinger
            .connect(receiver.local_addr().context("receiver address")?)
            .await?;
        ensure!(
            id == receiver.local_peer_id(),
            "connected to the wrong peer"
        );
        Ok(Self {
            pinger,
            receiver,
            id,
            pongs,
        })
    }
}

impl Bench for Echo {
    /// From `send_message` until the pinger's handler has the answer.
    async fn once(&mut self, i: usize) -> anyhow::Result<Duration> {
        let ping = text(&numbered(i))?;
        let started = Instant::now();
        self.pinger.send_message(self.id, ping.clone()).await?;
        let answer = self.pongs.recv().await.context("pinger handler gone")?;
        let elapsed = started.elapsed();
        ensure!(answer == ping, "p2pnet round trip: wrong answer");
        Ok(elapsed)
    }

    async fn finish(self) -> anyhow::Result<()> {
        self.pinger.shutdown().await;
        self.receiver.shutdown().await;
        Ok(())
    }
}

/// A fresh dialer identity each time (as in channel.rs): connect and a
/// 32-byte `PureMessage`.
pub(crate) struct Connect {
    receiver: PeerNetwork,
    target: SocketAddr,
    arrivals: mpsc::UnboundedReceiver<String>,
}

impl Connect {
    pub(crate) async fn new() -> anyhow::Result<Self> {
        let (delivered, arrivals) = mpsc::unbounded_channel();
        let handlers = PacketHandlers::default().on_pure_message(
            move |_: &PacketContext<'_>, m: PureMessage| {
                delivered.send(m.text)?;
                Ok(())
            },
        );
        let receiver = local()
            .trust_policy(open_policy())
            .handlers(handlers)
            .limits(Limits {
                max_pending: 1024,
                ..Default::default()
            })
            .start()
            .await?;
        let target = receiver.local_addr().context("receiver address")?;
        Ok(Self {
            receiver,
            target,
            arrivals,
        })
    }
}

impl Bench for Connect {
    /// From `connect` (TCP + Noise handshake) until the receiver's handler
    /// has the message. Starting the dialer (its key) and shutting it down
    /// are not timed.
    async fn once(&mut self, i: usize) -> anyhow::Result<Duration> {
        let first = text(&numbered(i))?;
        let dialer = PeerNetwork::builder()
            .accept_inbound(false)
            .default_routines(false)
            .start()
            .await?;
        let started = Instant::now();
        let id = dialer.connect(self.target).await?;
        dialer.send_message(id, first.clone()).await?;
        let got = self
            .arrivals
            .recv()
            .await
            .context("receiver handler gone")?;
        let elapsed = started.elapsed();
        ensure!(got == first, "p2pnet connect: wrong first message");
        dialer.shutdown().await;
        Ok(elapsed)
    }

    async fn finish(self) -> anyhow::Result<()> {
        self.receiver.shutdown().await;
        Ok(())
    }
}
