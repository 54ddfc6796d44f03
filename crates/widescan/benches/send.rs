//! Probes handed to the kernel per second from one core, through the kernel
//! transport (raw ICMPv6 socket) and the packet transport (`AF_PACKET` frames).
//!
//! The bench builds its own network namespace with a veth pair and routes a test
//! prefix through a fake gateway on it: every probe goes through the transport's
//! whole send path (for the kernel transport: routing, neighbour, qdisc; for both:
//! the driver) and is dropped on arrival at the other end of the pair. Nothing leaves the namespace, which is deleted afterwards
//! (also on panic). Needs root; skipped otherwise.
//!
//! `cargo bench -j 1 --bench send`
#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use widescan::{
    AddressSpace, Contact, Generator, HardwareMode, Identity, Octets, ProbeCodec, ProbeSender,
    RunKey, SenderOptions, TargetSet, Transport,
};

struct Netns(String);

impl Netns {
    fn sh(args: &[&str]) {
        let ok = Command::new(args[0])
            .args(&args[1..])
            .status()
            .map(|s| s.success());
        assert!(matches!(ok, Ok(true)), "{args:?} failed");
    }

    fn blackhole() -> Netns {
        let ns = Netns(format!("wsbench{}", std::process::id()));
        let n = ns.0.as_str();
        Self::sh(&["ip", "netns", "add", n]);
        // A veth pair: the kernel routes, resolves the (static) gateway neighbour
        // and transmits every probe on `va`; `vb` receives it and drops it at once,
        // as it is addressed to another host's MAC and vb has IPv6 disabled. The
        // peer must be up: veth reports frames for a down peer as dropped, which
        // AF_PACKET (unlike the raw socket) returns as ENOBUFS. No dummy module
        // needed.
        Self::sh(&[
            "ip", "-n", n, "link", "add", "va", "type", "veth", "peer", "name", "vb",
        ]);
        Self::sh(&[
            "ip",
            "netns",
            "exec",
            n,
            "sysctl",
            "-qw",
            "net.ipv6.conf.vb.disable_ipv6=1",
        ]);
        Self::sh(&["ip", "-n", n, "link", "set", "vb", "up"]);
        Self::sh(&[
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
        Self::sh(&["ip", "-n", n, "link", "set", "va", "up"]);
        Self::sh(&[
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
        Self::sh(&[
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

    #[allow(unsafe_code)] // setns
    fn enter(&self) {
        let f = File::open(format!("/run/netns/{}", self.0)).expect("netns file");
        // SAFETY: `f` is a namespace file; setns only changes this thread's netns.
        let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
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
