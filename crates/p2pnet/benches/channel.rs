//! Channel benchmarks on loopback, each beside its baseline measured in the
//! same run:
//!
//! * `throughput/p2pnet` vs `throughput/tcp`: bulk transfer of one
//!   encrypted channel (60 KiB MiscData packets) vs plain TCP writes.
//! * `round_trip/p2pnet` vs `round_trip/tcp`: a 32-byte message answered
//!   by the peer (PureMessage + handler reply) vs TCP ping-pong.
//! * `connect/p2pnet` vs `connect/tcp`: connect + Noise handshake + first
//!   message delivered, vs TCP connect + one round trip.
//! * `sans_io/encrypt_decrypt`: the protocol core alone, two channels in
//!   memory on one thread (encode, encrypt, decrypt, decode): the ceiling
//!   the runtime can reach on this CPU with ChaCha20-Poly1305.
//!
//! Run: `cargo bench -p p2pnet --bench channel`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use p2pnet::proto::packet::{DataTransmission, Payload, PureMessage};
use p2pnet::{Bytes, IncomingPeerTrustPolicy, PacketContext, PacketHandlers, PeerId, PeerNetwork};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::Notify;

const PACKET: usize = 60 * 1024;
const BULK: u64 = 64 << 20;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn open_policy() -> IncomingPeerTrustPolicy {
    IncomingPeerTrustPolicy {
        auto_accept: true,
        allow_enhanced_packet_exchange: true,
        ..Default::default()
    }
}

/// Counts received bytes and wakes the bench when a target is reached.
#[derive(Default)]
struct Sink {
    bytes: AtomicU64,
    target: AtomicU64,
    reached: Notify,
}

impl Sink {
    fn add(&self, n: u64) {
        let total = self.bytes.fetch_add(n, Ordering::AcqRel) + n;
        if total >= self.target.load(Ordering::Acquire) {
            self.reached.notify_one();
        }
    }
}

async fn pair(receiver_handlers: PacketHandlers) -> (PeerNetwork, PeerNetwork, PeerId) {
    let local = || PeerNetwork::builder().listen_ip("127.0.0.1".parse().expect("ip"));
    let receiver = local()
        .trust_policy(open_policy())
        .handlers(receiver_handlers)
        .start()
        .await
        .expect("receiver");
    let sender = local()
        .trust_policy(open_policy())
        .start()
        .await
        .expect("sender");
    let id = sender
        .connect(receiver.local_addr().expect("addr"))
        .await
        .expect("connect");
    sender.elevate(id).await.expect("elevate");
    // Let both sides settle at elevated trust.
    tokio::time::sleep(Duration::from_millis(50)).await;
    (sender, receiver, id)
}

fn throughput(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("throughput");
    group.throughput(Throughput::Bytes(BULK));
    group.sample_size(10);

    let sink = Arc::new(Sink::default());
    let counter = sink.clone();
    let handlers =
        PacketHandlers::default().on_misc_data(move |_: &PacketContext<'_>, p: Payload| {
            counter.add(p.data.len() as u64);
            Ok(())
        });
    let (sender, receiver, id) = rt.block_on(pair(handlers));
    // Shared bytes, sent again and again as the TCP baseline writes the
    // same buffer again and again: a clone is a reference count.
    let payload = Bytes::from(vec![0xa5u8; PACKET]);
    group.bench_function("p2pnet", |b| {
        b.to_async(&rt).iter(|| async {
            let start = sink.bytes.load(Ordering::Acquire);
            sink.target.store(start + BULK, Ordering::Release);
            let mut sent = 0u64;
            while sent < BULK {
                let packet = DataTransmission::MiscData(Payload::new(payload.clone()));
                sender.send(id, packet).await.expect("send");
                sent += PACKET as u64;
            }
            while sink.bytes.load(Ordering::Acquire) < start + BULK {
                sink.reached.notified().await;
            }
        });
    });
    rt.block_on(async {
        sender.shutdown().await;
        receiver.shutdown().await;
    });

    let (listener, addr) = rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        (listener, addr)
    });
    let tcp_sink = Arc::new(Sink::default());
    let counter = tcp_sink.clone();
    rt.spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("accept");
        let mut buf = vec![0u8; 256 * 1024];
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
            counter.add(n as u64);
        }
    });
    // One lock per batch (`iter_custom`), so the baseline pays nothing per
    // iteration for sharing the stream with the async closure.
    let client = Arc::new(tokio::sync::Mutex::new(
        rt.block_on(TcpStream::connect(addr)).expect("connect"),
    ));
    group.bench_function("tcp", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let client = client.clone();
            let sink = tcp_sink.clone();
            let payload = payload.clone();
            async move {
                let mut client = client.lock().await;
                let started = Instant::now();
                for _ in 0..iters {
                    let start = sink.bytes.load(Ordering::Acquire);
                    sink.target.store(start + BULK, Ordering::Release);
                    let mut sent = 0u64;
                    while sent < BULK {
                        client.write_all(&payload).await.expect("write");
                        sent += PACKET as u64;
                    }
                    while sink.bytes.load(Ordering::Acquire) < start + BULK {
                        sink.reached.notified().await;
                    }
                }
                started.elapsed()
            }
        });
    });
    group.finish();
}

fn round_trip(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("round_trip");

    // The receiver answers every ping from its handler; the sender's
    // handler wakes the bench.
    let pong = Arc::new(Notify::new());
    let handlers =
        PacketHandlers::default().on_pure_message(|ctx: &PacketContext<'_>, m: PureMessage| {
            ctx.reply(m)?;
            Ok(())
        });
    let receiver = rt.block_on(async {
        PeerNetwork::builder()
            .listen_ip("127.0.0.1".parse().expect("ip"))
            .trust_policy(open_policy())
            .handlers(handlers)
            .start()
            .await
            .expect("receiver")
    });
    let id = receiver.local_peer_id();
    let waker = pong.clone();
    let pinger = rt.block_on(async {
        PeerNetwork::builder()
            .listen_ip("127.0.0.1".parse().expect("ip"))
            .handlers(PacketHandlers::default().on_pure_message(
                move |_: &PacketContext<'_>, _m: PureMessage| {
                    waker.notify_one();
                    Ok(())
                },
            ))
            .start()
            .await
            .expect("pinger")
    });
    let echo_id = rt
        .block_on(pinger.connect(receiver.local_addr().expect("addr")))
        .expect("connect");
    assert_eq!(echo_id, id);
    let ping = "x".repeat(32);
    group.bench_function("p2pnet", |b| {
        b.to_async(&rt).iter(|| async {
            let notified = pong.notified();
            pinger.send_message(id, ping.clone()).await.expect("send");
            notified.await;
        });
    });
    rt.block_on(async {
        pinger.shutdown().await;
        receiver.shutdown().await;
    });

    let addr = rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            stream.set_nodelay(true).expect("nodelay");
            let mut buf = [0u8; 32];
            while stream.read_exact(&mut buf).await.is_ok() {
                if stream.write_all(&buf).await.is_err() {
                    break;
                }
            }
        });
        addr
    });
    let stream = rt.block_on(TcpStream::connect(addr)).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let client = Arc::new(tokio::sync::Mutex::new(stream));
    group.bench_function("tcp", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let client = client.clone();
            async move {
                let mut client = client.lock().await;
                let started = Instant::now();
                for _ in 0..iters {
                    let mut buf = [7u8; 32];
                    client.write_all(&buf).await.expect("write");
                    client.read_exact(&mut buf).await.expect("read");
                }
                started.elapsed()
            }
        });
    });
    group.finish();
}

fn connect(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("connect");
    group.sample_size(30);
    let arrived = Arc::new(Notify::new());
    let waker = arrived.clone();
    let handlers =
        PacketHandlers::default().on_pure_message(move |_: &PacketContext<'_>, _m: PureMessage| {
            waker.notify_one();
            Ok(())
        });
    let receiver = rt
        .block_on(
            PeerNetwork::builder()
                .listen_ip("127.0.0.1".parse().expect("ip"))
                .trust_policy(open_policy())
                .handlers(handlers)
                .limits(p2pnet::Limits {
                    max_pending: 1024,
                    ..Default::default()
                })
                .start(),
        )
        .expect("receiver");
    let target = receiver.local_addr().expect("addr");
    group.bench_function("p2pnet", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let arrived = arrived.clone();
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    // A fresh identity each time: one channel per peer.
                    let dialer = PeerNetwork::builder()
                        .accept_inbound(false)
                        .default_routines(false)
                        .start()
                        .await
                        .expect("dialer");
                    let started = Instant::now();
                    let notified = arrived.notified();
                    let id = dialer.connect(target).await.expect("connect");
                    dialer.send_message(id, "first").await.expect("send");
                    notified.await;
                    total += started.elapsed();
                    dialer.shutdown().await;
                }
                total
            }
        });
    });
    rt.block_on(receiver.shutdown());

    let addr = rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 32];
                    if stream.read_exact(&mut buf).await.is_ok() {
                        let _ = stream.write_all(&buf).await;
                    }
                });
            }
        });
        addr
    });
    group.bench_function("tcp", |b| {
        b.to_async(&rt).iter(|| async move {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            stream.set_nodelay(true).expect("nodelay");
            let mut buf = [1u8; 32];
            stream.write_all(&buf).await.expect("write");
            stream.read_exact(&mut buf).await.expect("read");
        });
    });
    group.finish();
}

fn sans_io(c: &mut Criterion) {
    use p2pnet::proto::{Channel, ChannelConfig, ChannelEvent, Instant as CoreInstant, Keypair};

    fn pump(a: &mut Channel, b: &mut Channel) {
        loop {
            let mut moved = false;
            while let Some(bytes) = a.poll_transmit() {
                b.handle_bytes(CoreInstant::ZERO, &bytes).expect("bytes");
                moved = true;
            }
            while let Some(bytes) = b.poll_transmit() {
                a.handle_bytes(CoreInstant::ZERO, &bytes).expect("bytes");
                moved = true;
            }
            if !moved {
                return;
            }
        }
    }

    let mut rng = rand::rng();
    let config = Arc::new(ChannelConfig::default());
    let (alice, bob) = (Keypair::generate(&mut rng), Keypair::generate(&mut rng));
    let mut a = Channel::new_outbound(config.clone(), &alice, None, CoreInstant::ZERO, &mut rng)
        .expect("a");
    let mut b = Channel::new_inbound(config, &bob, CoreInstant::ZERO, &mut rng).expect("b");
    pump(&mut a, &mut b);
    let everything = || {
        p2pnet::proto::Grants::single(p2pnet::proto::Grant::new(
            p2pnet::GrantId(0),
            p2pnet::Scopes::ALL,
        ))
    };
    a.approve(everything()).expect("approve");
    b.approve(everything()).expect("approve");
    pump(&mut a, &mut b);
    while b.poll_event().is_some() {}
    let payload = Bytes::from(vec![0x5au8; PACKET]);
    let mut group = c.benchmark_group("sans_io");
    group.throughput(Throughput::Bytes(PACKET as u64));
    group.bench_function("encrypt_decrypt", |bench| {
        bench.iter(|| {
            a.send(DataTransmission::MiscData(Payload::new(payload.clone())))
                .expect("send");
            pump(&mut a, &mut b);
            match b.poll_event() {
                Some(ChannelEvent::Packet(packet)) => packet,
                other => panic!("unexpected {other:?}"),
            }
        });
    });
    group.finish();
}

criterion_group!(benches, throughput, round_trip, connect, sans_io);
criterion_main!(benches);
