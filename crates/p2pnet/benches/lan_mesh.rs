//! LAN discovery at scale: N hosts in network namespaces on one bridge,
//! one peer network each, default discovery settings (broadcast + IPv4 and
//! IPv6 multicast). Measures the time from starting every node until each
//! has an open channel to every other, for N = 8, 16, 32; then, for the
//! largest N, the discovery datagrams each node sends and receives per
//! minute once the mesh is stable.
//!
//! Needs root (namespaces). Run: `cargo bench -p p2pnet --bench lan_mesh`.
//! `P2PNET_BENCH_SIZES=8,16` picks sizes; `P2PNET_BENCH_WINDOW=60` sets the
//! steady-state window in seconds (0 skips it).

#[path = "../tests/common/netns.rs"]
#[allow(dead_code, unreachable_pub)]
mod netns;

use std::time::{Duration, Instant};

use netns::{NsNode, full_mesh};
use netns_lab::{Lab, can_run};
use p2pnet::{DiscoveryConfig, IncomingPeerTrustPolicy, PeerNetwork};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn start_concurrently(hosts: &[String]) -> Vec<NsNode> {
    std::thread::scope(|s| {
        let handles: Vec<_> = hosts
            .iter()
            .map(|ns| {
                s.spawn(move || {
                    NsNode::start(ns, || {
                        PeerNetwork::builder()
                            .trust_policy(IncomingPeerTrustPolicy {
                                auto_accept: true,
                                ..IncomingPeerTrustPolicy::default()
                            })
                            .discovery(DiscoveryConfig::default())
                    })
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn main() {
    if !can_run("lan_mesh bench") {
        return;
    }
    let sizes: Vec<usize> = std::env::var("P2PNET_BENCH_SIZES")
        .unwrap_or_else(|_| "8,16,32".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let window = Duration::from_secs(env_or("P2PNET_BENCH_WINDOW", 60));
    let largest = sizes.iter().copied().max().unwrap_or(0);
    println!("lan_mesh: time from start until every node has a channel to every other");
    for &n in &sizes {
        let mut lab = Lab::new(&format!("b{n}"));
        let hosts: Vec<String> = (1..=n)
            .map(|i| {
                lab.host(
                    &format!("h{i}"),
                    &[&format!("10.62.{}.{}/16", i / 250, i % 250 + 1)],
                )
            })
            .collect();
        let t0 = Instant::now();
        let nodes = start_concurrently(&hosts);
        let started = t0.elapsed();
        while !full_mesh(&nodes) {
            assert!(
                t0.elapsed() < Duration::from_secs(120),
                "{n} nodes: no full mesh after 120 s"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        let meshed = t0.elapsed();
        println!(
            "  {n:>3} nodes: full mesh in {:>7.1} ms (all nodes started after {:.1} ms; {} channels)",
            meshed.as_secs_f64() * 1e3,
            started.as_secs_f64() * 1e3,
            n * (n - 1) / 2
        );
        if n == largest && !window.is_zero() {
            // Past the fast phase (0.25 s doubling to 16 s, then 30 s).
            let settle = Duration::from_secs(35).saturating_sub(t0.elapsed());
            std::thread::sleep(settle);
            let snapshot = |nodes: &[NsNode]| -> (u64, u64) {
                nodes
                    .iter()
                    .map(|n| n.network.discovery_status().unwrap())
                    .fold((0, 0), |(s, r), st| {
                        (s + st.datagrams_sent, r + st.datagrams_received)
                    })
            };
            let (sent0, received0) = snapshot(&nodes);
            std::thread::sleep(window);
            let (sent1, received1) = snapshot(&nodes);
            assert!(full_mesh(&nodes), "the mesh held");
            let per_node_minute =
                |delta: u64| delta as f64 / n as f64 * 60.0 / window.as_secs_f64();
            println!(
                "  {n:>3} nodes, stable mesh over {} s: {:.1} discovery datagrams sent and {:.1} received per node per minute",
                window.as_secs(),
                per_node_minute(sent1 - sent0),
                per_node_minute(received1 - received0),
            );
        }
        drop(nodes);
        drop(lab);
    }
}
