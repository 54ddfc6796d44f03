//! Probes handed to the kernel per second from one core, through the kernel
//! transport (raw ICMPv6 socket) and the packet transport (`AF_PACKET` frames).
//!
//! The bench builds its own network namespace with a bridge that has no ports, and
//! routes a test prefix through a fake gateway on it: every probe goes through the
//! transport's whole send path (for the kernel transport: routing, neighbour,
//! qdisc; for both: the driver's transmit) and the bridge then frees it. Nothing
//! leaves the namespace, which is deleted afterwards
//! (also on panic). Needs root; skipped otherwise.
//!
//! `cargo bench -j 1 --bench send`
#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use netns_lab::Blackhole;
use widescan::{
    AddressSpace, Contact, Generator, HardwareMode, Identity, Octets, ProbeCodec, ProbeSender,
    RunKey, SenderOptions, TargetSet, Transport,
};

fn codec() -> ProbeCodec {
    ProbeCodec::new(
        RunKey::from_bytes([9; 16]),
        Identity::new(
            7,
            4000,
            Contact::new("https://example.invalid/bench").expect("contact"),
        )
        .expect("id"),
    )
}

/// The blackholed test prefix, admitted in test mode only.
fn sink() -> TargetSet {
    TargetSet::builder()
        .prefix(Blackhole::ROUTED.parse().expect("prefix"))
        .test_mode(true)
        .build()
        .expect("targets")
}

fn targets(n: usize) -> Vec<Octets> {
    let space = AddressSpace::new(sink(), 1).expect("space");
    let mut g = Generator::new(space, HardwareMode::Cpu).expect("gen");
    let mut v = vec![[0u8; 16]; n];
    g.fill(0, &mut v).expect("fill");
    v
}

fn encode(c: &mut Criterion) {
    let codec = codec();
    let addrs = targets(1 << 14);
    let mut group = c.benchmark_group("probe");
    group.throughput(Throughput::Elements(addrs.len() as u64));
    group.bench_function("encode_with_mac", |b| {
        let mut buf = [0u8; widescan::probe::MAX_MESSAGE_LEN];
        b.iter(|| {
            let mut total = 0;
            for a in &addrs {
                total += codec.encode_probe(a, &mut buf);
            }
            std::hint::black_box(total)
        })
    });
    group.finish();
}

#[allow(unsafe_code)] // geteuid
fn send(c: &mut Criterion) {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED send bench: needs root for a network namespace and raw sockets");
        return;
    }
    let ns = Blackhole::new(&format!("wsbench{}", std::process::id()));
    // Criterion runs benchmarks on this thread, so entering the namespace here puts
    // the sender's socket inside it.
    netns_lab::enter(ns.name());
    let addrs = targets(1 << 16);
    let stop = AtomicBool::new(false);
    let mut group = c.benchmark_group("send");
    group.throughput(Throughput::Elements(addrs.len() as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(8));
    let cases = [
        ("kernel", Transport::Kernel, 1usize),
        ("kernel", Transport::Kernel, 64),
        ("packet", Transport::Packet { gateway_mac: None }, 64),
    ];
    for (name, transport, batch) in cases {
        let mut sender = ProbeSender::open(
            codec(),
            &sink(),
            SenderOptions {
                // Unlimited for the measurement: the destination is a dummy device.
                rate_pps: u32::MAX,
                per_subnet_pps: None,
                batch,
                transport,
                ..SenderOptions::default()
            },
        )
        .expect("sender");
        group.bench_function(format!("{name}_sendmmsg_batch_{batch}"), |b| {
            b.iter(|| {
                let out = sender.send(&addrs, &stop).expect("send");
                assert_eq!(out.sent, addrs.len(), "{out:?}");
            })
        });
    }
    group.finish();
    drop(ns);
}

criterion_group!(benches, encode, send);
criterion_main!(benches);
