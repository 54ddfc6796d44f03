//! End-to-end scans inside network namespaces this test creates and deletes.
//!
//! Topology (all in namespaces named `ws<pid>…`, prefix `fd00:5ca7:1::/120`):
//!
//! ```text
//!   scanner ::1 ─┐
//!   live    ::10 ├── br0 (own namespace)   last scenario: also a router
//!   live    ::20 │
//!   silent  ::30 │   echo_ignore_all=1
//!   peer    ::40 ┘   runs a second widescan listener
//! ```
//!
//! A forger in the silent host's namespace sends probes with made-up sources; the
//! live host `::20` also holds `::1:20`, outside the targets, as their victim.
//!
//! One test function runs every scenario in sequence, so namespaces are never
//! built concurrently.

use std::collections::BTreeSet;
use std::net::{Ipv6Addr, SocketAddrV6};
use std::process::{Command, Stdio};
use std::time::Duration;

use netns_lab::{Lab, can_run, run};
use socket2::{Domain, Protocol, Socket, Type};
use widescan::prefix::AddressPolicy;
use widescan::{
    Contact, Error, Event, HardwareMode, Identity, Listener, ListenerOptions, MacAddr, Peer,
    PeerVia, Prefix, ProbeCodec, ProbeSender, RunKey, Scan, ScanBuilder, ScanReport, SenderOptions,
    TargetSet, Transport,
};

const PREFIX: &str = "fd00:5ca7:1::/120";

fn a(s: &str) -> Ipv6Addr {
    s.parse().expect("addr")
}

fn targets() -> TargetSet {
    TargetSet::builder()
        .prefix(PREFIX.parse::<Prefix>().expect("prefix"))
        // Do not probe ourselves.
        .exclude("fd00:5ca7:1::1/128".parse().expect("prefix"))
        .test_mode(true)
        .build()
        .expect("targets")
}

/// The hosts that answer echo requests (the silent one does not).
fn live() -> BTreeSet<Ipv6Addr> {
    ["fd00:5ca7:1::10", "fd00:5ca7:1::20", "fd00:5ca7:1::40"]
        .map(a)
        .into()
}

/// A scan of [`targets`] from the scanner. Generation is pinned to the CPU: these
/// scenarios test the network path, and `Auto` would only open a GPU instance to
/// turn down a software adapter (`tests/gpu_differential.rs` covers the GPU).
fn scan() -> ScanBuilder {
    Scan::builder(targets(), scanner_identity()).hardware(HardwareMode::Cpu)
}

fn scanner_identity() -> Identity {
    Identity::new(
        0xaaaa_0001,
        4000,
        Contact::new("https://example.invalid/widescan-test").expect("contact"),
    )
    .expect("identity")
}

/// Runs a scan to the end in namespace `ns`, collecting its events.
fn scan_in(lab: &Lab, ns: &str, build: impl FnOnce() -> Scan + Send) -> (ScanReport, Vec<Event>) {
    let handle = lab.within(ns, || build().start().expect("scan starts"));
    let mut events = Vec::new();
    while !handle.is_finished() {
        if let Ok(e) = handle.events().recv_timeout(Duration::from_millis(50)) {
            events.push(e);
        }
    }
    events.extend(handle.events().try_iter());
    let report = handle.join().expect("scan succeeds");
    (report, events)
}

/// Routes `prefix` in namespace `ns` through `gateway`.
fn route_via(ns: &str, prefix: &str, gateway: &str) {
    run(&["ip", "-n", ns, "-6", "route", "add", prefix, "via", gateway]);
}

fn hits(events: &[Event]) -> BTreeSet<Ipv6Addr> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Hit { addr, .. } => Some(*addr),
            _ => None,
        })
        .collect()
}

fn peers(events: &[Event]) -> Vec<Peer> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Peer(p) => Some(p.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn netns_scenarios() {
    if !can_run("netns_scenarios") {
        return;
    }
    let tag;
    {
        let mut lab = Lab::new("n");
        tag = lab.tag().to_string();
        let scanner = lab.host("s", &["fd00:5ca7:1::1/64"]);
        let router = lab.host("t1", &["fd00:5ca7:1::10/64"]);
        let victim = lab.host("t2", &["fd00:5ca7:1::20/64", "fd00:5ca7:1::1:20/64"]);
        let silent = lab.host("t3", &["fd00:5ca7:1::30/64"]);
        let peer_ns = lab.host("t4", &["fd00:5ca7:1::40/64"]);
        lab.silence(&silent);

        discovery_hits_and_silence(&lab, &scanner, &peer_ns);
        rate_limits_hold(&lab, &scanner);
        stop_and_resume_cover_everything_once(&lab, &scanner);
        sender_refuses_addresses_outside_its_targets(&lab, &scanner);
        forged_probes_are_not_reflected_nor_hits(&lab, &scanner, &silent, &victim);
        command_line_scan_and_listen(&scanner, &peer_ns);
        packet_transport_through_the_router(&lab, &scanner, &router);
        icmp_errors_are_counted_never_hits(&lab, &scanner, &router);
    }
    assert!(
        Lab::leftovers(&tag).is_empty(),
        "namespaces left behind: {:?}",
        Lab::leftovers(&tag)
    );
}

fn discovery_hits_and_silence(lab: &Lab, scanner: &str, peer_ns: &str) {
    // Instance B: a listener only, with its own identity and run key.
    let b_identity = Identity::new(
        0xbbbb_0002,
        5000,
        Contact::new("instance-b").expect("contact"),
    )
    .expect("id");
    let b_codec = ProbeCodec::new(RunKey::random().expect("key"), b_identity);
    // The lab is a ULA network: B answers it only in test mode.
    let b_options = ListenerOptions {
        answer_policy: Some(AddressPolicy::default().test_mode(true)),
        ..ListenerOptions::default()
    };
    let (b_listener, b_events) = lab.within(peer_ns, || {
        Listener::start(b_codec, b_options).expect("listener B starts")
    });

    let (report, events) = scan_in(lab, scanner, || {
        scan()
            .seed(0x5ca7)
            .rate(2000)
            .per_subnet_rate(None)
            .cooldown(Duration::from_millis(1500))
            .build()
            .expect("scan builds")
    });
    std::thread::sleep(Duration::from_millis(200));
    let b_stats = b_listener.join().expect("listener B");
    let b_seen: Vec<Event> = b_events.try_iter().collect();

    assert!(report.completed, "{report:?}");
    assert_eq!(report.sent, 255, "every target probed once: {report:?}");
    assert_eq!(report.send_errors, 0);

    // Exactly the live hosts: 100 % recall, no false positives, silent host absent.
    assert_eq!(hits(&events), live(), "hits");
    assert!(
        !hits(&events).contains(&a("fd00:5ca7:1::30")),
        "silent host must not be a hit"
    );
    assert_eq!(report.hits, 3);

    // The scanner learns B from B's verified answer ...
    let a_peers = peers(&events);
    assert_eq!(a_peers.len(), 1, "{a_peers:?}");
    let p = &a_peers[0];
    assert_eq!(
        (p.addr, p.tcp_port, p.instance_id, p.via),
        (a("fd00:5ca7:1::40"), 5000, 0xbbbb_0002, PeerVia::Answer)
    );
    assert_eq!(p.contact, "instance-b");

    // ... and B learns the scanner from its probe. The scanner's kernel echoes B's
    // answer, but B probed nothing, so that is no hit.
    let b_peers = peers(&b_seen);
    assert_eq!(b_peers.len(), 1, "{b_peers:?}");
    let q = &b_peers[0];
    assert_eq!(
        (q.addr, q.tcp_port, q.instance_id, q.via),
        (a("fd00:5ca7:1::1"), 4000, 0xaaaa_0001, PeerVia::Probe)
    );
    assert_eq!(q.contact, "https://example.invalid/widescan-test");
    assert!(hits(&b_seen).is_empty(), "{b_seen:?}");
    assert_eq!(b_stats.replies_outside_targets, 1, "{b_stats:?}");
    assert_eq!(b_stats.answers_sent, 1, "{b_stats:?}");
    assert_eq!(b_stats.bad_mac, 0);
}

fn rate_limits_hold(lab: &Lab, scanner: &str) {
    // Global token bucket.
    let rate = 400u32;
    let (report, _) = scan_in(lab, scanner, || {
        scan()
            .seed(1)
            .rate(rate)
            .per_subnet_rate(None)
            .listen(false)
            .cooldown(Duration::ZERO)
            .build()
            .expect("scan builds")
    });
    let measured = report.sent as f64 / report.send_elapsed.as_secs_f64();
    eprintln!(
        "global limit {rate}/s: measured {measured:.0}/s over {:?}",
        report.send_elapsed
    );
    assert_eq!(report.sent, 255);
    assert!(
        measured <= 1.2 * f64::from(rate),
        "rate {measured:.0} > 1.2 × {rate}"
    );
    assert!(
        measured >= 0.5 * f64::from(rate),
        "rate {measured:.0} far below {rate}"
    );

    // Per-/64 cap: the whole /120 is one /64, so the cap sets the pace even though
    // the global rate is high. The first `cap/10` probes are an allowed burst.
    let cap = 300u32;
    let (report, _) = scan_in(lab, scanner, || {
        scan()
            .seed(2)
            .rate(100_000)
            .per_subnet_rate(Some(cap))
            .listen(false)
            .cooldown(Duration::ZERO)
            .build()
            .expect("scan builds")
    });
    let burst = f64::from(cap / 10);
    let measured = (report.sent as f64 - burst) / report.send_elapsed.as_secs_f64();
    eprintln!(
        "per-/64 cap {cap}/s: measured {measured:.0}/s over {:?}",
        report.send_elapsed
    );
    assert_eq!(report.sent, 255);
    assert!(
        measured <= 1.2 * f64::from(cap),
        "per-/64 rate {measured:.0} > 1.2 × {cap}"
    );
}

fn stop_and_resume_cover_everything_once(lab: &Lab, scanner: &str) {
    let key = RunKey::random().expect("key");
    let build = |resume: Option<u128>| {
        let mut b = scan()
            .seed(77)
            .run_key(key.clone())
            .rate(300)
            .per_subnet_rate(None)
            .cooldown(Duration::from_millis(800));
        if let Some(c) = resume {
            b = b.resume_from(c);
        }
        b.build().expect("scan builds")
    };
    // First run: stop after a fraction of a second.
    let handle = lab.within(scanner, || build(None).start().expect("starts"));
    std::thread::sleep(Duration::from_millis(350));
    handle.stop();
    let mut first_events: Vec<Event> = Vec::new();
    while !handle.is_finished() {
        first_events.extend(handle.events().recv_timeout(Duration::from_millis(20)));
    }
    first_events.extend(handle.events().try_iter());
    let first = handle.join().expect("first run");
    assert!(
        !first.completed && first.checkpoint > 0 && first.checkpoint < 255,
        "{first:?}"
    );
    assert_eq!(
        u128::from(first.sent),
        first.checkpoint,
        "checkpoint = probes handed over"
    );

    // Second run resumes at the checkpoint and finishes.
    let (second, second_events) = scan_in(lab, scanner, || build(Some(first.checkpoint)));
    assert!(second.completed, "{second:?}");
    assert_eq!(first.sent + second.sent, 255, "no gap, no repeat");
    let all: BTreeSet<Ipv6Addr> = hits(&first_events)
        .union(&hits(&second_events))
        .copied()
        .collect();
    // The listener of the stopped run may miss replies to its last probes, so check
    // the union is a subset of the live hosts and that the resumed run's probes
    // were the complement of the first run's.
    assert!(all.is_subset(&live()), "{all:?}");
    let space = build(None).space().clone();
    let probed_first: BTreeSet<Ipv6Addr> = (0..first.checkpoint)
        .filter_map(|i| space.address(i))
        .collect();
    let probed_second: BTreeSet<Ipv6Addr> = (first.checkpoint..255)
        .filter_map(|i| space.address(i))
        .collect();
    assert!(probed_first.is_disjoint(&probed_second));
    assert_eq!(probed_first.len() + probed_second.len(), 255);
    for h in hits(&second_events) {
        assert!(
            probed_second.contains(&h),
            "{h} was not probed by the resumed run"
        );
    }
}

/// The binary end to end: `widescan listen` in the peer namespace, `widescan scan`
/// in the scanner namespace, CSV and NDJSON files checked afterwards.
fn command_line_scan_and_listen(scanner: &str, peer_ns: &str) {
    let Some(bin) = option_env!("CARGO_BIN_EXE_widescan") else {
        eprintln!("SKIPPED command-line scenario: built without the `cli` feature");
        return;
    };
    let dir = std::env::temp_dir();
    let pid = std::process::id();
    let scan_out = dir.join(format!("widescan-scan-{pid}.csv"));
    let listen_out = dir.join(format!("widescan-listen-{pid}.ndjson"));
    let mut listener = Command::new("ip")
        .args([
            "netns",
            "exec",
            peer_ns,
            bin,
            "listen",
            "--test-mode",
            "--port",
            "5001",
            "--contact",
            "cli-b",
        ])
        .arg("--output")
        .arg(&listen_out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn widescan listen");
    std::thread::sleep(Duration::from_millis(500));
    let scan = Command::new("ip")
        .args([
            "netns",
            "exec",
            scanner,
            bin,
            "scan",
            "--test-mode",
            "-p",
            PREFIX,
        ])
        .args([
            "--exclude",
            "fd00:5ca7:1::1",
            "--port",
            "4001",
            "--rate",
            "2000",
        ])
        .args([
            "--per-subnet-rate",
            "0",
            "--cooldown",
            "1",
            "--seed",
            "5",
            "--hardware",
            "cpu",
        ])
        .args(["--format", "csv", "--output"])
        .arg(&scan_out)
        .output()
        .expect("run widescan scan");
    // SAFETY: plain kill(2) of our own child; SIGINT asks it to stop cleanly.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(listener.id() as libc::pid_t, libc::SIGINT);
    }
    let status = listener.wait().expect("listener exits");
    let scan_csv = std::fs::read_to_string(&scan_out).unwrap_or_default();
    let listen_json = std::fs::read_to_string(&listen_out).unwrap_or_default();
    let _ = std::fs::remove_file(&scan_out);
    let _ = std::fs::remove_file(&listen_out);
    assert!(
        scan.status.success(),
        "scan failed: {}",
        String::from_utf8_lossy(&scan.stderr)
    );
    assert!(status.success(), "listen exited with {status}");

    let mut rows = scan_csv.lines();
    assert_eq!(
        rows.next(),
        Some("type,addr,tcp_port,instance_id,contact,via,unix_ms")
    );
    let rows: Vec<Vec<&str>> = rows.map(|l| l.split(',').collect()).collect();
    let hit_addrs: BTreeSet<Ipv6Addr> = rows
        .iter()
        .filter(|r| r[0] == "hit")
        .map(|r| a(r[1]))
        .collect();
    assert_eq!(hit_addrs, live(), "{scan_csv}");
    let peer_rows: Vec<&Vec<&str>> = rows.iter().filter(|r| r[0] == "peer").collect();
    assert_eq!(peer_rows.len(), 1, "{scan_csv}");
    assert_eq!(
        (
            peer_rows[0][1],
            peer_rows[0][2],
            peer_rows[0][4],
            peer_rows[0][5]
        ),
        ("fd00:5ca7:1::40", "5001", "cli-b", "answer")
    );

    let peers: Vec<serde_json::Value> = listen_json
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("ndjson"))
        .filter(|v| v["type"] == "peer")
        .collect();
    assert_eq!(peers.len(), 1, "{listen_json}");
    assert_eq!(peers[0]["addr"], "fd00:5ca7:1::1");
    assert_eq!(peers[0]["tcp_port"], 4001);
    assert_eq!(peers[0]["via"], "probe");
}

/// The sender is a last line of defence: an address outside the target set it was
/// opened with is an error, and nothing after it is sent.
fn sender_refuses_addresses_outside_its_targets(lab: &Lab, scanner: &str) {
    let codec = ProbeCodec::new(RunKey::random().expect("key"), scanner_identity());
    let (result, sent) = lab.within(scanner, || {
        let mut sender =
            ProbeSender::open(codec, &targets(), SenderOptions::default()).expect("sender");
        let addrs = [
            a("fd00:5ca7:1::10").octets(),
            a("fd00:5ca7:2::10").octets(),
            a("fd00:5ca7:1::20").octets(),
        ];
        let r = sender.send(&addrs, &std::sync::atomic::AtomicBool::new(false));
        (r, sender.sent())
    });
    let err = result.expect_err("outside the target set");
    assert!(matches!(err, Error::PrefixRefused { .. }), "{err}");
    assert_eq!(sent, 1, "only the probe before the stray address went out");
}

/// The ICMPv6 checksum (RFC 4443 §2.3) of `msg` from `src` to `dst`.
fn icmpv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, msg: &[u8]) -> u16 {
    let len = u32::try_from(msg.len()).expect("short message");
    let mut bytes = Vec::with_capacity(40 + msg.len() + 1);
    bytes.extend_from_slice(&src.octets());
    bytes.extend_from_slice(&dst.octets());
    bytes.extend_from_slice(&len.to_be_bytes());
    bytes.extend_from_slice(&[0, 0, 0, 58]);
    bytes.extend_from_slice(msg);
    if bytes.len() % 2 == 1 {
        bytes.push(0);
    }
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Sends ICMPv6 message `msg` to `dst` with a hand-made IPv6 header that names
/// `src` as its source, whoever owns it: what a forger does. An `IPPROTO_RAW`
/// socket takes the header as given.
fn send_forged(src: Ipv6Addr, dst: Ipv6Addr, msg: &[u8]) {
    let mut msg = msg.to_vec();
    msg[2..4].fill(0);
    let sum = icmpv6_checksum(src, dst, &msg);
    msg[2..4].copy_from_slice(&sum.to_be_bytes());
    let mut packet = vec![0x60, 0, 0, 0];
    packet.extend_from_slice(&u16::try_from(msg.len()).expect("short").to_be_bytes());
    packet.extend_from_slice(&[58, 64]); // ICMPv6, hop limit
    packet.extend_from_slice(&src.octets());
    packet.extend_from_slice(&dst.octets());
    packet.extend_from_slice(&msg);
    let sock = Socket::new(
        Domain::IPV6,
        Type::RAW,
        Some(Protocol::from(libc::IPPROTO_RAW)),
    )
    .expect("raw socket");
    sock.send_to(&packet, &SocketAddrV6::new(dst, 0, 0, 0).into())
        .expect("send the forged probe");
}

/// A forger probes the scanner's listener in another host's name. A victim inside
/// the policy but outside the targets is answered once (then the per-/64 cap
/// holds), and its kernel's echo of the answer is no hit; a link-local source is
/// not answered, nor reported. A listener outside test mode answers no ULA source.
fn forged_probes_are_not_reflected_nor_hits(
    lab: &Lab,
    scanner: &str,
    forger: &str,
    victim_ns: &str,
) {
    let scanner_addr = a("fd00:5ca7:1::1");
    let victim = a("fd00:5ca7:1::1:20");
    assert!(!targets().contains(victim));
    let probe = |key: u8| {
        let forger_id = Identity::new(0xf0f0, 6000, Contact::default()).expect("id");
        let codec = ProbeCodec::new(RunKey::from_bytes([key; 16]), forger_id);
        let mut buf = [0u8; 128];
        let n = codec.encode_probe(&scanner_addr.octets(), &mut buf);
        buf[..n].to_vec()
    };
    // What a scan of `targets()` hands its listener.
    let scan_like = ListenerOptions {
        answer_policy: Some(targets().policy().clone()),
        hit_targets: Some(targets()),
        ..ListenerOptions::default()
    };
    let listen = |options: ListenerOptions, forged: &[(Ipv6Addr, u8)]| {
        let codec = ProbeCodec::new(RunKey::random().expect("key"), scanner_identity());
        let (listener, events) = lab.within(scanner, || {
            Listener::start(codec, options).expect("listener starts")
        });
        // The answer budget starts empty and fills at `answer_rate`.
        std::thread::sleep(Duration::from_millis(200));
        lab.within(forger, || {
            for &(src, key) in forged {
                send_forged(src, scanner_addr, &probe(key));
            }
        });
        std::thread::sleep(Duration::from_millis(700));
        let stats = listener.join().expect("listener");
        (stats, events.try_iter().collect::<Vec<Event>>())
    };

    let link_local = a("fe80::5ca7:66");
    let (stats, events) = listen(scan_like, &[(victim, 1), (link_local, 2), (victim, 3)]);
    assert_eq!(
        stats.received, 4,
        "three probes and the victim's echo: {stats:?}"
    );
    assert_eq!(stats.answers_sent, 1, "{stats:?}");
    assert_eq!(stats.answers_suppressed, 1, "per-/64 cap: {stats:?}");
    assert_eq!(stats.answers_refused_policy, 1, "link-local: {stats:?}");
    assert_eq!(stats.replies_outside_targets, 1, "{stats:?}");
    assert_eq!(stats.hits, 0, "{stats:?}");
    assert!(hits(&events).is_empty(), "{events:?}");
    let hints: BTreeSet<Ipv6Addr> = peers(&events).iter().map(|p| p.addr).collect();
    assert_eq!(hints, [victim].into(), "a peer hint, never link-local");

    // Outside test mode nothing in this ULA lab is answered.
    let (stats, events) = listen(ListenerOptions::default(), &[(victim, 4)]);
    assert_eq!(
        (stats.answers_sent, stats.answers_refused_policy),
        (0, 1),
        "{stats:?}"
    );
    assert!(events.is_empty(), "{events:?}");
    // The victim's address was really reachable: it answers pings.
    run(&[
        "ip", "netns", "exec", victim_ns, "ping", "-6", "-c1", "-W1", "-q", "::1",
    ]);
}

/// The packet transport: frames to the router's MAC reach the two addresses it
/// owns behind itself (and only those answer); frames to a MAC nobody has reach
/// nothing, which shows the frames are really built here; on-link targets, a
/// source this host does not own and a blackhole inside the prefix are refused.
fn packet_transport_through_the_router(lab: &Lab, scanner: &str, router: &str) {
    let routed = "fd00:5ca7:5::/120";
    let owned = [a("fd00:5ca7:5::1"), a("fd00:5ca7:5::2")];
    for addr in owned {
        run(&[
            "ip",
            "-n",
            router,
            "addr",
            "add",
            &format!("{addr}/128"),
            "dev",
            "lo",
        ]);
    }
    route_via(scanner, routed, "fd00:5ca7:1::10");
    let targets = || {
        TargetSet::builder()
            .prefix(routed.parse::<Prefix>().expect("prefix"))
            .test_mode(true)
            .build()
            .expect("targets")
    };
    let packet_scan = |gateway_mac: Option<MacAddr>| {
        scan_in(lab, scanner, || {
            Scan::builder(targets(), scanner_identity())
                .hardware(HardwareMode::Cpu)
                .sender_options(SenderOptions {
                    rate_pps: 2000,
                    per_subnet_pps: None,
                    transport: Transport::Packet { gateway_mac },
                    ..SenderOptions::default()
                })
                .cooldown(Duration::from_millis(1000))
                .build()
                .expect("scan builds")
        })
    };

    let (report, events) = packet_scan(None);
    assert!(report.completed, "{report:?}");
    assert_eq!(report.sent, 256, "{report:?}");
    assert_eq!(hits(&events), owned.into(), "{report:?}");
    assert_eq!(report.hits, 2, "{report:?}");

    let nobody: MacAddr = "02:00:5e:00:53:99".parse().expect("mac");
    let (report, events) = packet_scan(Some(nobody));
    assert_eq!(report.sent, 256, "{report:?}");
    assert!(hits(&events).is_empty(), "{events:?}");

    let open = |targets: TargetSet, source: Option<Ipv6Addr>| {
        let codec = ProbeCodec::new(RunKey::random().expect("key"), scanner_identity());
        lab.within(scanner, || {
            ProbeSender::open(
                codec,
                &targets,
                SenderOptions {
                    transport: Transport::Packet { gateway_mac: None },
                    source,
                    ..SenderOptions::default()
                },
            )
            .map(|_| ())
        })
    };
    let refused = |result: Result<(), Error>, why: &str| match result {
        Err(Error::NoLinkPath(reason)) => assert!(reason.contains(why), "{reason}"),
        other => panic!("expected a refusal ({why}): {other:?}"),
    };
    refused(open(self::targets(), None), "on-link");
    refused(
        open(targets(), Some(a("fd00:5ca7:9::1"))),
        "not an address of this host",
    );
    // A blackhole inside the prefix: frames to the gateway would bypass it.
    let hole = "fd00:5ca7:5::80/121";
    run(&["ip", "-n", scanner, "-6", "route", "add", "blackhole", hole]);
    refused(open(targets(), None), "bypass");
    run(&["ip", "-n", scanner, "-6", "route", "del", "blackhole", hole]);
    assert!(open(targets(), Some(a("fd00:5ca7:1::1"))).is_ok());
}

/// ICMPv6 errors about our probes are counted per type and are never hits. Host t1
/// becomes a router: it refuses `fd00:5ca7:2::/127` (a `prohibit` route: destination
/// unreachable, code 1) and would forward `fd00:5ca7:3::/127` to t2, but probes sent
/// with hop limit 1 expire on it (time exceeded). Two probes of each kind stay well
/// inside the kernel's ICMPv6 error burst, so every error arrives.
fn icmp_errors_are_counted_never_hits(lab: &Lab, scanner: &str, router: &str) {
    let (refused, expiring) = ("fd00:5ca7:2::/127", "fd00:5ca7:3::/127");
    run(&[
        "ip",
        "netns",
        "exec",
        router,
        "sysctl",
        "-qw",
        "net.ipv6.conf.all.forwarding=1",
    ]);
    run(&[
        "ip", "-n", router, "-6", "route", "add", "prohibit", refused,
    ]);
    route_via(router, expiring, "fd00:5ca7:1::20");
    for prefix in [refused, expiring] {
        route_via(scanner, prefix, "fd00:5ca7:1::10");
    }
    let targets = TargetSet::builder()
        .prefixes([refused, expiring].map(|p| p.parse::<Prefix>().expect("prefix")))
        .test_mode(true)
        .build()
        .expect("targets");
    let (report, events) = scan_in(lab, scanner, || {
        Scan::builder(targets, scanner_identity())
            .hardware(HardwareMode::Cpu)
            .sender_options(SenderOptions {
                hop_limit: 1,
                rate_pps: 1000,
                per_subnet_pps: None,
                ..SenderOptions::default()
            })
            .cooldown(Duration::from_millis(1000))
            .build()
            .expect("scan builds")
    });
    assert!(report.completed, "{report:?}");
    assert_eq!(report.sent, 4, "{report:?}");
    let e = report.errors;
    assert_eq!(
        (e.destination_unreachable, e.time_exceeded, e.total()),
        (2, 2, 4),
        "{report:?}"
    );
    assert_eq!(report.hits, 0, "{report:?}");
    assert!(hits(&events).is_empty(), "{events:?}");
}
