//! rust-libp2p: TCP + Noise + Yamux with the library's default configs, a
//! `Swarm` per side, and raw byte streams from `libp2p-stream`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm, SwarmBuilder, noise, tcp, yamux};
use libp2p_stream::{Behaviour, Control, IncomingStreams};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::common::{BULK, Bench, PACKET, READ_BUF, SMALL, Sink, bulk_messages, numbered};

const BULK_PROTOCOL: StreamProtocol = StreamProtocol::new("/p2pnet-compare/bulk/1");
const ECHO_PROTOCOL: StreamProtocol = StreamProtocol::new("/p2pnet-compare/echo/1");
const FIRST_PROTOCOL: StreamProtocol = StreamProtocol::new("/p2pnet-compare/first/1");

/// A swarm with a fresh Ed25519 identity.
fn swarm() -> anyhow::Result<Swarm<Behaviour>> {
    Ok(SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_behaviour(|_| Behaviour::new())?
        // Keeps connections open between rounds; no effect on the data path.
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build())
}

/// Polls a swarm on its own task until dropped.
struct Driver(JoinHandle<()>);

impl Driver {
    fn spawn(mut swarm: Swarm<Behaviour>) -> Self {
        Self(tokio::spawn(async move {
            while swarm.next().await.is_some() {}
        }))
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The accepting side: its id, its address and the task polling its swarm.
struct Listener {
    peer: PeerId,
    addr: Multiaddr,
    _driver: Driver,
}

/// Listens on 127.0.0.1 and accepts `protocol` streams.
async fn listen(protocol: StreamProtocol) -> anyhow::Result<(Listener, IncomingStreams)> {
    let mut swarm = swarm()?;
    let incoming = swarm.behaviour().new_control().accept(protocol)?;
    swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse()?)?;
    let addr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
            break address;
        }
    };
    let peer = *swarm.local_peer_id();
    let listener = Listener {
        peer,
        addr: addr.with(Protocol::P2p(peer)),
        _driver: Driver::spawn(swarm),
    };
    Ok((listener, incoming))
}

/// A connection from `swarm` to `to`, with a `protocol` stream on it.
struct Dialed {
    stream: libp2p::Stream,
    _control: Control,
    _driver: Driver,
}

/// Dials `to` from `swarm` and opens a `protocol` stream on the connection.
async fn open(
    mut swarm: Swarm<Behaviour>,
    to: &Listener,
    protocol: StreamProtocol,
) -> anyhow::Result<Dialed> {
    swarm.dial(to.addr.clone())?;
    let mut control = swarm.behaviour().new_control();
    let driver = Driver::spawn(swarm);
    let stream = control.open_stream(to.peer, protocol).await?;
    Ok(Dialed {
        stream,
        _control: control,
        _driver: driver,
    })
}

/// One stream; 60 KiB writes, the receiver counts what it reads.
pub(crate) struct Bulk {
    dialed: Dialed,
    payload: Vec<u8>,
    sink: Arc<Sink>,
    receiver: JoinHandle<anyhow::Result<u64>>,
    runs: u64,
    _listener: Listener,
}

impl Bulk {
    pub(crate) async fn new() -> anyhow::Result<Self> {
        let (listener, mut incoming) = listen(BULK_PROTOCOL).await?;
        let dialed = open(swarm()?, &listener, BULK_PROTOCOL).await?;
        let (_, mut inbound) = incoming.next().await.context("no inbound stream")?;
        let sink = Arc::new(Sink::default());
        let counter = sink.clone();
        let receiver = tokio::spawn(async move {
            let mut buf = vec![0u8; READ_BUF];
            loop {
                let n = inbound.read(&mut buf).await?;
                if n == 0 {
                    return Ok(counter.bytes());
                }
                counter.add(n as u64);
            }
        });
        Ok(Self {
            dialed,
            payload: vec![0xa5; PACKET],
            sink,
            receiver,
            runs: 0,
            _listener: listener,
        })
    }
}

impl Bench for Bulk {
    /// From the first write until the receiver has read all 64 MiB.
    async fn once(&mut self, _: usize) -> anyhow::Result<Duration> {
        let run = self.sink.begin();
        let stream = &mut self.dialed.stream;
        for len in bulk_messages() {
            stream.write_all(&self.payload[..len]).await?;
        }
        stream.flush().await?;
        self.runs += 1;
        self.sink.end(run).await
    }

    async fn finish(mut self) -> anyhow::Result<()> {
        self.dialed.stream.close().await?;
        let total = self.receiver.await??;
        ensure!(
            total == self.runs * BULK,
            "libp2p bulk: {total} bytes arrived"
        );
        Ok(())
    }
}

/// A 32-byte ping echoed by the peer on one stream.
pub(crate) struct Echo {
    dialed: Dialed,
    echo: JoinHandle<anyhow::Result<()>>,
    _listener: Listener,
}

impl Echo {
    pub(crate) async fn new() -> anyhow::Result<Self> {
        let (listener, mut incoming) = listen(ECHO_PROTOCOL).await?;
        let dialed = open(swarm()?, &listener, ECHO_PROTOCOL).await?;
        let (_, mut inbound) = incoming.next().await.context("no inbound stream")?;
        let echo = tokio::spawn(async move {
            let mut buf = [0u8; SMALL];
            while inbound.read_exact(&mut buf).await.is_ok() {
                inbound.write_all(&buf).await?;
                inbound.flush().await?;
            }
            Ok(())
        });
        Ok(Self {
            dialed,
            echo,
            _listener: listener,
        })
    }
}

impl Bench for Echo {
    /// From the write until the echo is read.
    async fn once(&mut self, i: usize) -> anyhow::Result<Duration> {
        let ping = numbered(i);
        let mut pong = [0u8; SMALL];
        let stream = &mut self.dialed.stream;
        let started = Instant::now();
        stream.write_all(&ping).await?;
        stream.flush().await?;
        stream.read_exact(&mut pong).await?;
        let elapsed = started.elapsed();
        ensure!(pong == ping, "libp2p round trip: wrong echo");
        Ok(elapsed)
    }

    async fn finish(mut self) -> anyhow::Result<()> {
        self.dialed.stream.close().await?;
        self.echo.await?
    }
}

/// A fresh swarm identity each time: dial, open a stream, 32 bytes.
pub(crate) struct Connect {
    listener: Listener,
    arrivals: mpsc::UnboundedReceiver<[u8; SMALL]>,
    acceptor: JoinHandle<()>,
}

impl Connect {
    pub(crate) async fn new() -> anyhow::Result<Self> {
        let (listener, mut incoming) = listen(FIRST_PROTOCOL).await?;
        let (delivered, arrivals) = mpsc::unbounded_channel();
        let acceptor = tokio::spawn(async move {
            while let Some((_, mut inbound)) = incoming.next().await {
                let delivered = delivered.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; SMALL];
                    if inbound.read_exact(&mut buf).await.is_ok() {
                        let _ = delivered.send(buf);
                    }
                });
            }
        });
        Ok(Self {
            listener,
            arrivals,
            acceptor,
        })
    }
}

impl Bench for Connect {
    /// From `dial` (TCP, multistream-select, Noise XX, Yamux) through
    /// opening the stream until the listener has read the 32 bytes.
    /// Building the swarm (its key) and dropping it are not timed.
    async fn once(&mut self, i: usize) -> anyhow::Result<Duration> {
        let first = numbered(i);
        let dialer = swarm()?;
        let started = Instant::now();
        let mut dialed = open(dialer, &self.listener, FIRST_PROTOCOL).await?;
        dialed.stream.write_all(&first).await?;
        dialed.stream.flush().await?;
        let got = self
            .arrivals
            .recv()
            .await
            .context("libp2p acceptor ended")?;
        let elapsed = started.elapsed();
        ensure!(got == first, "libp2p connect: wrong first message");
        Ok(elapsed)
    }

    async fn finish(self) -> anyhow::Result<()> {
        self.acceptor.abort();
        Ok(())
    }
}
