//! The baseline: plain tokio TCP on loopback, no encryption, no framing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::common::{BULK, Bench, PACKET, READ_BUF, SMALL, Sink, bulk_messages, numbered};

async fn listener() -> anyhow::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

/// One connection (Nagle on, as in channel.rs's baseline); 60 KiB writes,
/// the receiver counts what it reads.
pub(crate) struct Bulk {
    client: TcpStream,
    payload: Vec<u8>,
    sink: Arc<Sink>,
    receiver: JoinHandle<anyhow::Result<u64>>,
    runs: u64,
}

impl Bulk {
    pub(crate) async fn new() -> anyhow::Result<Self> {
        let (listener, addr) = listener().await?;
        let sink = Arc::new(Sink::default());
        let counter = sink.clone();
        let receiver = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await?;
            let mut buf = vec![0u8; READ_BUF];
            loop {
                let n = stream.read(&mut buf).await?;
                if n == 0 {
                    return Ok(counter.bytes());
                }
                counter.add(n as u64);
            }
        });
        Ok(Self {
            client: TcpStream::connect(addr).await?,
            payload: vec![0xa5; PACKET],
            sink,
            receiver,
            runs: 0,
        })
    }
}

impl Bench for Bulk {
    /// From the first write until the receiver has read all 64 MiB.
    async fn once(&mut self, _: usize) -> anyhow::Result<Duration> {
        let run = self.sink.begin();
        for len in bulk_messages() {
            self.client.write_all(&self.payload[..len]).await?;
        }
        self.runs += 1;
        self.sink.end(run).await
    }

    async fn finish(mut self) -> anyhow::Result<()> {
        self.client.shutdown().await?;
        let total = self.receiver.await??;
        ensure!(total == self.runs * BULK, "tcp bulk: {total} bytes arrived");
        Ok(())
    }
}

/// A 32-byte ping echoed by the peer, one connection, `TCP_NODELAY`.
pub(crate) struct Echo {
    client: TcpStream,
    echo: JoinHandle<anyhow::Result<()>>,
}

impl Echo {
    pub(crate) async fn new() -> anyhow::Result<Self> {
        let (listener, addr) = listener().await?;
        let echo = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            let mut buf = [0u8; SMALL];
            while stream.read_exact(&mut buf).await.is_ok() {
                stream.write_all(&buf).await?;
            }
            Ok(())
        });
        let client = TcpStream::connect(addr).await?;
        client.set_nodelay(true)?;
        Ok(Self { client, echo })
    }
}

impl Bench for Echo {
    /// From the write until the echo is read.
    async fn once(&mut self, i: usize) -> anyhow::Result<Duration> {
        let ping = numbered(i);
        let mut pong = [0u8; SMALL];
        let started = Instant::now();
        self.client.write_all(&ping).await?;
        self.client.read_exact(&mut pong).await?;
        let elapsed = started.elapsed();
        ensure!(pong == ping, "tcp round trip: wrong echo");
        Ok(elapsed)
    }

    async fn finish(self) -> anyhow::Result<()> {
        drop(self.client);
        self.echo.await?
    }
}

/// A fresh connection (`TCP_NODELAY`) and a 32-byte message.
pub(crate) struct Connect {
    addr: SocketAddr,
    arrivals: mpsc::UnboundedReceiver<[u8; SMALL]>,
    acceptor: JoinHandle<()>,
}

impl Connect {
    pub(crate) async fn new() -> anyhow::Result<Self> {
        let (listener, addr) = listener().await?;
        let (delivered, arrivals) = mpsc::unbounded_channel();
        let acceptor = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let delivered = delivered.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; SMALL];
                    if stream.read_exact(&mut buf).await.is_ok() {
                        let _ = delivered.send(buf);
                    }
                });
            }
        });
        Ok(Self {
            addr,
            arrivals,
            acceptor,
        })
    }
}

impl Bench for Connect {
    /// From `connect` until the listener has read the 32 bytes.
    async fn once(&mut self, i: usize) -> anyhow::Result<Duration> {
        let first = numbered(i);
        let started = Instant::now();
        let mut stream = TcpStream::connect(self.addr).await?;
        stream.set_nodelay(true)?;
        stream.write_all(&first).await?;
        let got = self.arrivals.recv().await.context("tcp acceptor ended")?;
        let elapsed = started.elapsed();
        ensure!(got == first, "tcp connect: wrong first message");
        Ok(elapsed)
    }

    async fn finish(self) -> anyhow::Result<()> {
        self.acceptor.abort();
        Ok(())
    }
}
