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
//! One test function runs every scenario in sequence, so namespaces are never
//! built concurrently.

use std::collections::BTreeSet;
use std::net::Ipv6Addr;
use std::process::{Command, Stdio};
use std::time::Duration;

use netns_lab::{Lab, can_run, run};
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
        lab.host("t2", &["fd00:5ca7:1::20/64"]);
        let silent = lab.host("t3", &["fd00:5ca7:1::30/64"]);
        let peer_ns = lab.host("t4", &["fd00:5ca7:1::40/64"]);
        lab.silence(&silent);

        discovery_hits_and_silence(&lab, &scanner, &peer_ns);
        rate_limits_hold(&lab, &scanner);
        stop_and_resume_cover_everything_once(&lab, &scanner);
        sender_refuses_addresses_outside_its_targets(&lab, &scanner);
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
    let (b_listener, b_events) = lab.within(peer_ns, || {
        Listener::start(b_codec, ListenerOptions::default()).expect("listener B starts")
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

    // ... and B learns the scanner from its probe, and sees the scanner as live
    // (the scanner's kernel echoed B's answer).
    let b_peers = peers(&b_seen);
    assert_eq!(b_peers.len(), 1, "{b_peers:?}");
    let q = &b_peers[0];
    assert_eq!(
        (q.addr, q.tcp_port, q.instance_id, q.via),
        (a("fd00:5ca7:1::1"), 4000, 0xaaaa_0001, PeerVia::Probe)
    );
    assert_eq!(q.contact, "https://example.invalid/widescan-test");
    assert_eq!(hits(&b_seen), [a("fd00:5ca7:1::1")].into());
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
