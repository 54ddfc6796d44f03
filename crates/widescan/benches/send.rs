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

use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use netns_lab::run;
use widescan::{
    AddressSpace, Contact, Generator, HardwareMode, Identity, Octets, ProbeCodec, ProbeSender,
    RunKey, SenderOptions, TargetSet, Transport,
};

struct Netns(String);

impl Netns {
    fn blackhole() -> Netns {
        let ns = Netns(format!("wsbench{}", std::process::id()));
        let n = ns.0.as_str();
        run(&["ip", "netns", "add", n]);
        // A bridge with no ports: the kernel routes, resolves the (static) gateway
        // neighbour and transmits every probe on `va`, and the bridge, having no
        // port to forward to, frees it and reports success. Unlike a veth pair,
        // nothing is received on the way (a receive softirq on the sending core
        // took 30 % of its cycles), and unlike a veth with its peer down, nothing
        // is reported dropped (AF_PACKET returns such drops as ENOBUFS). Needs
        // no dummy module.
        run(&["ip", "-n", n, "link", "add", "va", "type", "bridge"]);
        run(&[
            "ip",
            "-n",
            n,
            "addr",
            "add",
            "fd00:5ca7:98::1/64",
            "dev",
            "va",
            "nodad",
        ]);
        run(&["ip", "-n", n, "link", "set", "va", "up"]);
        run(&[
            "ip",
            "-n",
            n,
            "-6",
            "neigh",
            "add",
            "fd00:5ca7:98::2",
            "lladdr",
            "02:00:00:00:00:02",
            "dev",
            "va",
            "nud",
            "permanent",
        ]);
        run(&[
            "ip",
            "-n",
            n,
            "-6",
            "route",
            "add",
            "fd00:5ca7:99::/64",
            "via",
            "fd00:5ca7:98::2",
            "dev",
            "va",
        ]);
        ns
    }

    fn enter(&self) {
        netns_lab::enter(&self.0);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

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
        .prefix("fd00:5ca7:99::/64".parse().expect("prefix"))
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
    let ns = Netns::blackhole();
    // Criterion runs benchmarks on this thread, so entering the namespace here puts
    // the sender's socket inside it.
    ns.enter();
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
